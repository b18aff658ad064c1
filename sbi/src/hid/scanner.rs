//! The barcode-scanner service of the device host.
//!
//! A background thread keeps one allow-listed HID scanner open, decodes its keyboard reports into
//! scans and queues them. Status is truthful: **Not Ready** while no allow-listed scanner is present
//! or after a read fails (the scanner was unplugged), **Ready** again as soon as re-enumeration finds
//! and opens it. The station reads scans over HTTP on the host's scanner port (127.0.0.1 only):
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /scanner` | `{"status":"Ready"\|"Not Ready","device":{...}\|null,"pending":n,"lastError":...}` |
//! | `GET /scanner/scan?waitMs=5000` | the oldest unread scan `{"value","preRegistrationId","device","scannedAt"}`, or `204 No Content` after the wait |
//!
//! `preRegistrationId` is set when the scan is a valid 14-digit pre-registration id (what MOSIP's
//! pre-registration QR code carries). Scanned values are never logged.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tessera_packet::clock::Clock;

use super::keyboard::{KeyboardDecoder, ScanAssembler};
use super::{AllowList, HidBackend, HidDeviceSummary, HidReports, allowed};
use crate::protocol::{DeviceStatus, sbi_time};

/// Scans kept until read; older ones are dropped first.
pub const MAX_QUEUED_SCANS: usize = 16;
/// Longest `waitMs` honoured by `GET /scanner/scan`.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Scanner service settings.
#[derive(Debug, Clone)]
pub struct ScannerConfig {
    /// Devices the service may open.
    pub allow: AllowList,
    /// Report id of the keyboard reports, when the device numbers its reports.
    pub report_id: Option<u8>,
    /// How often to look for the scanner while none is open.
    pub rescan_every: Duration,
    /// How long one report read waits (bounds how fast the thread notices it should stop).
    pub read_timeout: Duration,
}

impl ScannerConfig {
    /// Defaults for `allow`: unnumbered reports, rescan every 250 ms, reads of 100 ms.
    pub fn new(allow: AllowList) -> Self {
        Self {
            allow,
            report_id: None,
            rescan_every: Duration::from_millis(250),
            read_timeout: Duration::from_millis(100),
        }
    }
}

/// One complete scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scan {
    /// The text the scanner read.
    pub value: String,
    /// The value as a pre-registration id, when it is one (14 digits).
    pub pre_registration_id: Option<String>,
    /// `vvvv:pppp` of the scanner.
    pub device: String,
    /// When the scan completed (SBI time format, UTC).
    pub scanned_at: String,
}

/// What `GET /scanner` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScannerState {
    /// Ready while an allow-listed scanner is open, Not Ready otherwise.
    pub status: DeviceStatus,
    /// The open scanner.
    pub device: Option<ScannerDevice>,
    /// Scans waiting to be read.
    pub pending: usize,
    /// Why the scanner is not ready, or the last report error.
    pub last_error: Option<String>,
}

/// The open scanner as reported by `GET /scanner`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScannerDevice {
    /// `vvvv:pppp`.
    pub id: String,
    /// Platform path.
    pub path: String,
    /// Product string.
    pub product: Option<String>,
}

#[derive(Debug)]
struct Inner {
    status: DeviceStatus,
    device: Option<HidDeviceSummary>,
    scans: VecDeque<Scan>,
    last_error: Option<String>,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    notify: tokio::sync::Notify,
}

impl Shared {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        match self.inner.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }
}

/// A running scanner service; dropping it stops the thread.
#[derive(Debug)]
pub struct Scanner {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    wake: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Scanner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        drop(self.wake.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Scanner {
    /// Starts the service thread on `backend`.
    pub fn start(backend: Box<dyn HidBackend>, config: ScannerConfig, clock: Arc<dyn Clock>) -> Self {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                status: DeviceStatus::NotReady,
                device: None,
                scans: VecDeque::new(),
                last_error: Some("no allow-listed scanner found yet".into()),
            }),
            notify: tokio::sync::Notify::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (wake, sleeper) = std::sync::mpsc::channel();
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("hid-scanner".into())
                .spawn(move || run(backend, &config, clock.as_ref(), &shared, &stop, &sleeper))
                .ok()
        };
        Self {
            shared,
            stop,
            wake: Some(wake),
            thread,
        }
    }

    /// The current state.
    pub fn state(&self) -> ScannerState {
        Self::state_of(&self.shared)
    }

    /// The oldest unread scan, waiting up to `wait` for one.
    pub async fn next_scan(&self, wait: Duration) -> Option<Scan> {
        next_scan(&self.shared, wait).await
    }

    /// The HTTP routes (`/scanner`, `/scanner/scan`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/scanner", get(get_state))
            .route("/scanner/scan", get(get_scan))
            .with_state(self.shared.clone())
    }
}

async fn next_scan(shared: &Shared, wait: Duration) -> Option<Scan> {
    let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
    loop {
        let notified = shared.notify.notified();
        if let Some(s) = shared.with(|i| i.scans.pop_front()) {
            return Some(s);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return shared.with(|i| i.scans.pop_front());
        }
    }
}

async fn get_state(State(shared): State<Arc<Shared>>) -> Response {
    let s = Scanner::state_of(&shared);
    json(StatusCode::OK, &s)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScanQuery {
    #[serde(default)]
    wait_ms: Option<u64>,
}

async fn get_scan(State(shared): State<Arc<Shared>>, Query(q): Query<ScanQuery>) -> Response {
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0));
    match next_scan(&shared, wait).await {
        Some(scan) => json(StatusCode::OK, &scan),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

fn json<T: Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            b,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

impl Scanner {
    fn state_of(shared: &Shared) -> ScannerState {
        shared.with(|i| ScannerState {
            status: i.status,
            device: i.device.as_ref().map(|d| ScannerDevice {
                id: d.id(),
                path: d.path.clone(),
                product: d.product.clone(),
            }),
            pending: i.scans.len(),
            last_error: i.last_error.clone(),
        })
    }
}

/// Waits `d` or until the service is dropped; false when it should stop.
fn pause(sleeper: &std::sync::mpsc::Receiver<()>, stop: &AtomicBool, d: Duration) -> bool {
    match sleeper.recv_timeout(d) {
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) | Ok(()) => !stop.load(Ordering::Acquire),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => false,
    }
}

fn run(
    mut backend: Box<dyn HidBackend>,
    config: &ScannerConfig,
    clock: &dyn Clock,
    shared: &Shared,
    stop: &AtomicBool,
    sleeper: &std::sync::mpsc::Receiver<()>,
) {
    let read_ms = i32::try_from(config.read_timeout.as_millis()).unwrap_or(100);
    while !stop.load(Ordering::Acquire) {
        let found = backend.enumerate().map(|all| allowed(all, &config.allow));
        let opened: Option<(HidDeviceSummary, Box<dyn HidReports>)> = match found {
            Ok(devices) if devices.is_empty() => {
                shared.with(|i| {
                    i.last_error = Some(format!(
                        "no scanner from the allow-list ({}) is plugged in",
                        config
                            .allow
                            .entries()
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                });
                None
            }
            Ok(devices) => {
                let mut opened = None;
                for d in devices {
                    match backend.open(&d) {
                        Ok(r) => {
                            opened = Some((d, r));
                            break;
                        }
                        Err(e) => shared.with(|i| i.last_error = Some(e.to_string())),
                    }
                }
                opened
            }
            Err(e) => {
                shared.with(|i| i.last_error = Some(e.to_string()));
                None
            }
        };
        let Some((device, mut reports)) = opened else {
            if !pause(sleeper, stop, config.rescan_every) {
                return;
            }
            continue;
        };
        tracing::info!(device = %device.id(), path = %device.path, "HID scanner opened: Ready");
        let id = device.id();
        shared.with(|i| {
            i.status = DeviceStatus::Ready;
            i.device = Some(device);
            i.last_error = None;
        });
        let mut decoder = KeyboardDecoder::new(config.report_id);
        let mut assembler = ScanAssembler::new();
        let mut buf = [0u8; 64];
        while !stop.load(Ordering::Acquire) {
            match reports.read_report(&mut buf, read_ms) {
                Ok(0) => {}
                Ok(n) => {
                    let report = buf.get(..n).unwrap_or_default();
                    let keys = match decoder.push(report) {
                        Ok(k) => k,
                        Err(e) => {
                            tracing::debug!(error = %e, "HID report ignored");
                            shared.with(|i| i.last_error = Some(e.to_string()));
                            continue;
                        }
                    };
                    for k in keys {
                        match assembler.push(k) {
                            Ok(Some(value)) => {
                                let pre_registration_id = value
                                    .trim()
                                    .parse::<tessera_packet::ids::PreRegId>()
                                    .ok()
                                    .map(|p| p.to_string());
                                tracing::info!(
                                    device = %id,
                                    chars = value.chars().count(),
                                    pre_registration = pre_registration_id.is_some(),
                                    "scan received"
                                );
                                let scan = Scan {
                                    value,
                                    pre_registration_id,
                                    device: id.clone(),
                                    scanned_at: sbi_time(clock.now()),
                                };
                                shared.with(|i| {
                                    if i.scans.len() >= MAX_QUEUED_SCANS {
                                        i.scans.pop_front();
                                    }
                                    i.scans.push_back(scan);
                                });
                                shared.notify.notify_waiters();
                            }
                            Ok(None) => {}
                            Err(e) => shared.with(|i| i.last_error = Some(e.to_string())),
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "HID scanner lost: Not Ready");
                    shared.with(|i| {
                        i.status = DeviceStatus::NotReady;
                        i.device = None;
                        i.last_error = Some(e.to_string());
                    });
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HidError, keyboard::encode_scan};
    use super::*;
    use std::sync::mpsc;
    use tessera_packet::clock::SystemClock;

    /// An in-process HID device: reports go through a channel; dropping the sender is an unplug.
    #[derive(Debug, Default)]
    struct ChannelBackend {
        plugged: Arc<Mutex<Option<mpsc::Receiver<Vec<u8>>>>>,
        vendor: u16,
    }

    struct ChannelReports(mpsc::Receiver<Vec<u8>>);

    impl HidReports for ChannelReports {
        fn read_report(&mut self, buf: &mut [u8], timeout_ms: i32) -> Result<usize, HidError> {
            match self
                .0
                .recv_timeout(Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0)))
            {
                Ok(r) => {
                    let n = r.len().min(buf.len());
                    buf[..n].copy_from_slice(&r[..n]);
                    Ok(n)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => Ok(0),
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(HidError::Read {
                    device: "test".into(),
                    reason: "unplugged".into(),
                }),
            }
        }
    }

    impl HidBackend for ChannelBackend {
        fn enumerate(&mut self) -> Result<Vec<HidDeviceSummary>, HidError> {
            let present = self.plugged.lock().unwrap().is_some();
            Ok(present
                .then(|| HidDeviceSummary {
                    path: "/dev/hidraw-test".into(),
                    vendor_id: self.vendor,
                    product_id: 0x0001,
                    usage_page: 1,
                    usage: 6,
                    interface_number: 0,
                    product: Some("test scanner".into()),
                })
                .into_iter()
                .collect())
        }
        fn open(&mut self, _d: &HidDeviceSummary) -> Result<Box<dyn HidReports>, HidError> {
            let rx = self.plugged.lock().unwrap().take().ok_or(HidError::Backend {
                during: "opening",
                reason: "gone".into(),
            })?;
            Ok(Box::new(ChannelReports(rx)))
        }
    }

    fn plug(slot: &Arc<Mutex<Option<mpsc::Receiver<Vec<u8>>>>>) -> mpsc::Sender<Vec<u8>> {
        let (tx, rx) = mpsc::channel();
        *slot.lock().unwrap() = Some(rx);
        tx
    }

    async fn wait_status(s: &Scanner, want: DeviceStatus) {
        for _ in 0..100 {
            if s.state().status == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("scanner never became {want:?}: {:?}", s.state());
    }

    #[tokio::test]
    async fn scans_unplug_and_replug() {
        let slot = Arc::new(Mutex::new(None));
        let backend = ChannelBackend {
            plugged: slot.clone(),
            vendor: 0x0c2e,
        };
        let mut cfg = ScannerConfig::new(AllowList::parse("0c2e:*").unwrap());
        cfg.rescan_every = Duration::from_millis(20);
        cfg.read_timeout = Duration::from_millis(20);
        let s = Scanner::start(Box::new(backend), cfg, Arc::new(SystemClock));
        assert_eq!(s.state().status, DeviceStatus::NotReady);
        assert!(s.next_scan(Duration::from_millis(50)).await.is_none());
        let tx = plug(&slot);
        wait_status(&s, DeviceStatus::Ready).await;
        // The station's view: the HTTP endpoint.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = s.router();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let st: ScannerState = reqwest::get(format!("http://{addr}/scanner"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(st.status, DeviceStatus::Ready);
        assert_eq!(st.device.unwrap().id, "0c2e:0001");
        let none = reqwest::get(format!("http://{addr}/scanner/scan?waitMs=50"))
            .await
            .unwrap();
        assert_eq!(none.status(), 204);
        for r in encode_scan("12345678901234") {
            tx.send(r.to_vec()).unwrap();
        }
        let scan: Scan = reqwest::get(format!("http://{addr}/scanner/scan?waitMs=5000"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(scan.value, "12345678901234");
        assert_eq!(scan.pre_registration_id.as_deref(), Some("12345678901234"));
        assert_eq!(scan.device, "0c2e:0001");
        drop(tx);
        wait_status(&s, DeviceStatus::NotReady).await;
        let why = s.state().last_error.unwrap();
        assert!(why.contains("unplugged") || why.contains("plugged in"), "{why}");
        let tx = plug(&slot);
        wait_status(&s, DeviceStatus::Ready).await;
        for r in encode_scan("not-a-prid") {
            tx.send(r.to_vec()).unwrap();
        }
        let scan = s.next_scan(Duration::from_secs(5)).await.unwrap();
        assert_eq!(scan.pre_registration_id, None);
    }

    #[tokio::test]
    async fn devices_off_the_allow_list_are_never_opened() {
        let slot = Arc::new(Mutex::new(None));
        let _tx = plug(&slot);
        let backend = ChannelBackend {
            plugged: slot.clone(),
            vendor: 0x046d,
        };
        let mut cfg = ScannerConfig::new(AllowList::parse("0c2e:*").unwrap());
        cfg.rescan_every = Duration::from_millis(20);
        let s = Scanner::start(Box::new(backend), cfg, Arc::new(SystemClock));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let st = s.state();
        assert_eq!(st.status, DeviceStatus::NotReady);
        assert!(st.last_error.unwrap().contains("allow-list"));
        assert!(slot.lock().unwrap().is_some(), "the device was not opened");
    }
}
