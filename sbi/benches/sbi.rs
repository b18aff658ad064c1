//! SBI benchmarks: discovery of a 100-port range, the RCAPTURE round trip of a 4-finger slap on the
//! simulator with zero configured delay, and our own overhead split out (request building + response
//! parsing + signature/chain/hash validation, and the bare HTTP exchange).
//!
//! Run: `cargo bench -p tessera-sbi --bench sbi`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    missing_docs,
    reason = "benchmark harness"
)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_packet::clock::SystemClock;
use tessera_sbi::client::{ClientConfig, SbiClient, capture_spec_for, validate};
use tessera_sbi::jws::{Alg, TrustStore};
use tessera_sbi::protocol::{
    BioSubType, CaptureResponse, DeviceSubId, DiscoverType, HashChain, TransactionId, parse,
};
use tessera_sbi::sim::{self, ImageError, ImageSource, SimConfig, SimImage, finger_record};

/// Real fingerprint photographs from biometrics/testdata wrapped in ISO 19794-4 records with their
/// measured NFIQ 2-style quality; the records are built once, so the benchmark measures SBI work, not
/// image synthesis or scoring (scoring is measured separately below).
#[derive(Debug)]
struct PreparedFingers {
    records: Vec<(BioSubType, Vec<u8>, image::GrayImage)>,
    quality: u8,
}

impl PreparedFingers {
    fn load() -> Self {
        let img = image::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../biometrics/testdata/p1_1.png"
        ))
        .unwrap()
        .to_luma8();
        let quality = sim::measured_finger_quality(&img);
        let records = BioSubType::FINGERS
            .iter()
            .map(|p| (*p, finger_record(*p, &img, quality).unwrap(), img.clone()))
            .collect();
        Self { records, quality }
    }
}

impl ImageSource for PreparedFingers {
    fn finger(&self, _person: u64, position: BioSubType, _i: u32) -> Result<SimImage, ImageError> {
        let (_, iso, preview) = self.records.iter().find(|(p, _, _)| *p == position).unwrap();
        Ok(SimImage {
            iso: iso.clone(),
            preview: preview.clone(),
            quality: self.quality,
        })
    }
    fn iris(&self, person: u64, _p: BioSubType, i: u32) -> Result<SimImage, ImageError> {
        self.finger(person, BioSubType::LeftIndex, i)
    }
    fn face(&self, person: u64, i: u32) -> Result<SimImage, ImageError> {
        self.finger(person, BioSubType::LeftIndex, i)
    }
}

fn free_block(n: u16) -> u16 {
    for start in (21000..60000u16).step_by(usize::from(n) + 7) {
        let held: Vec<_> = (start..start + n)
            .map_while(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return start;
        }
    }
    panic!("no free port block")
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let first = free_block(100);
    let empty_first = free_block(100);
    let mut cfg = SimConfig::from_port(first);
    cfg.alg = Alg::Rs256;
    let sim = rt
        .block_on(sim::start(
            cfg,
            Arc::new(SystemClock),
            Arc::new(PreparedFingers::load()),
        ))
        .unwrap();
    let mut trust = TrustStore::new();
    trust.add_pem(sim.ca_pem()).unwrap();
    let trust = Arc::new(trust);
    let client = SbiClient::new(
        ClientConfig {
            first_port: first,
            last_port: first + 99,
            ..ClientConfig::default()
        },
        trust.clone(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let empty = SbiClient::new(
        ClientConfig {
            first_port: empty_first,
            last_port: empty_first + 99,
            ..ClientConfig::default()
        },
        trust.clone(),
        Arc::new(SystemClock),
    )
    .unwrap();

    let mut g = c.benchmark_group("discovery");
    g.sample_size(20);
    g.bench_function("100 ports, nothing listening", |b| {
        b.iter(|| rt.block_on(empty.discover()))
    });
    g.bench_function("100 ports, 4 simulated devices", |b| {
        b.iter(|| {
            let d = rt.block_on(client.discover());
            assert_eq!(d.devices.len(), 4);
        })
    });
    g.finish();

    let slap = rt
        .block_on(client.discover_port(first, DiscoverType::Finger))
        .unwrap()
        .remove(0);
    let spec = capture_spec_for(
        &slap,
        DeviceSubId::Left,
        TransactionId::parse("bench-0001").unwrap(),
        vec![],
        40,
        Duration::from_secs(10),
    );
    let mut g = c.benchmark_group("rcapture 4-finger slap (RS256, zero delay)");
    g.sample_size(30);
    g.bench_function("round trip incl. validation", |b| {
        b.iter(|| {
            let cap = rt
                .block_on(client.rcapture(&slap, &spec, &HashChain::new()))
                .unwrap();
            assert_eq!(cap.segments.len(), 4);
        })
    });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let body = serde_json::to_vec(&client.rcapture_request(&spec, &HashChain::new())).unwrap();
    let url = format!("http://127.0.0.1:{first}/capture");
    let fetch = || {
        rt.block_on(async {
            http.request(reqwest::Method::from_bytes(b"RCAPTURE").unwrap(), &url)
                .body(body.clone())
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        })
    };
    g.bench_function("bare HTTP exchange (simulator work + transport)", |b| {
        b.iter(fetch)
    });
    let bytes = fetch();
    g.bench_function("client overhead: parse + verify + validate", |b| {
        b.iter(|| {
            let resp: CaptureResponse = parse("RCAPTURE response", &bytes).unwrap();
            validate::validate_capture(&resp, &spec, &slap, &HashChain::new(), &trust, &SystemClock).unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("measured quality");
    g.sample_size(20);
    let img = image::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../biometrics/testdata/p1_1.png"
    ))
    .unwrap()
    .to_luma8();
    g.bench_function("NFIQ 2-style score of one finger image (biometrics crate)", |b| {
        b.iter(|| sim::measured_finger_quality(&img))
    });
    g.finish();
    drop(sim);
}

criterion_group!(sbi, benches);
criterion_main!(sbi);
