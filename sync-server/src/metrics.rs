//! Prometheus metrics, kept in process and rendered in the text exposition format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// (method, route, status) -> (count, seconds).
type RequestTable = BTreeMap<(String, String, u16), (u64, f64)>;

/// Request counters and latency sums by (method, route template, status), plus packet counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<RequestTable>,
    packets_received: AtomicU64,
    upload_bytes: AtomicU64,
    /// outcome -> (packets, seconds spent in the pipeline).
    pipeline: Mutex<BTreeMap<&'static str, (u64, f64)>>,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            let e = m
                .entry((method.to_owned(), route.to_owned(), status))
                .or_insert((0, 0.0));
            e.0 += 1;
            e.1 += seconds;
        }
    }

    /// Counts a completely received packet.
    pub fn packet_received(&self) {
        self.packets_received.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one packet through the pipeline with its outcome (`processed`, `rejected`, `quarantined`,
    /// `held`, `duplicate`, `unsupported`) and the time it took.
    pub fn pipeline_outcome(&self, outcome: &'static str, seconds: f64) {
        if let Ok(mut m) = self.pipeline.lock() {
            let e = m.entry(outcome).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += seconds;
        }
    }

    /// Counts received upload bytes.
    pub fn add_upload_bytes(&self, n: u64) {
        self.upload_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Renders every metric; `gauges` are (name, help, value) read at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP tessera_http_requests_total HTTP requests by method, route and status."
        );
        let _ = writeln!(out, "# TYPE tessera_http_requests_total counter");
        let snapshot = self.requests.lock().map(|m| m.clone()).unwrap_or_default();
        for ((method, route, status), (count, _)) in &snapshot {
            let _ = writeln!(
                out,
                "tessera_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP tessera_http_request_seconds_sum Total time spent serving requests."
        );
        let _ = writeln!(out, "# TYPE tessera_http_request_seconds_sum counter");
        for ((method, route, status), (_, secs)) in &snapshot {
            let _ = writeln!(
                out,
                "tessera_http_request_seconds_sum{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {secs}"
            );
        }
        let pipeline = self.pipeline.lock().map(|m| m.clone()).unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP tessera_pipeline_packets_total Packets through the processing pipeline by outcome.\n# TYPE tessera_pipeline_packets_total counter"
        );
        for (outcome, (n, _)) in &pipeline {
            let _ = writeln!(out, "tessera_pipeline_packets_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP tessera_pipeline_seconds_sum Time spent processing packets, by outcome.\n# TYPE tessera_pipeline_seconds_sum counter"
        );
        for (outcome, (_, secs)) in &pipeline {
            let _ = writeln!(
                out,
                "tessera_pipeline_seconds_sum{{outcome=\"{outcome}\"}} {secs}"
            );
        }
        let counters = [
            (
                "tessera_packets_received_total",
                "Packets completely received.",
                &self.packets_received,
            ),
            (
                "tessera_upload_bytes_total",
                "Packet bytes received.",
                &self.upload_bytes,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}
