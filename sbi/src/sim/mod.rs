//! The SBI device simulator (`tessera-sbi simulate`).
//!
//! Each virtual device listens on its own port of `127.0.0.1` and answers the SBI verbs over real HTTP
//! (MOSIPDISC, MOSIPDINFO, RCAPTURE, CAPTURE, STREAM) with data blocks signed by a per-device key whose
//! certificate is issued, at start-up, by a simulated provider CA. CAPTURE (authentication) encrypts
//! each `bioValue` with a session key wrapped to the configured IDA certificate
//! ([`SimConfig::auth_cert_der`], see [`crate::session`]); the simulated devices stay L0 (their digital
//! id is signed by the device key, where a certified L1 device uses its FTM key).
//!
//! Quality: each image's score is measured on the returned image (fingers: the biometrics crate's
//! NFIQ 2-style scorer); `/admin/score` forces a score instead (it wins over the measured one, in the
//! signed `qualityScore`), and `{"qualityScore": null}` returns to the measured score. A control API like MOSIP's mock
//! device service drives it for tests and training:
//!
//! | Route | Body | Effect |
//! |---|---|---|
//! | `GET /admin/status` | — | current simulated state as JSON |
//! | `POST /admin/status` | `{"type":"Finger","deviceStatus":"Busy"}` | reported status |
//! | `POST /admin/score` | `{"type":"Finger","qualityScore":"35"}` | fixed quality score (`null` = image's own) |
//! | `POST /admin/delay` | `{"type":"Finger","delay":"2000","method":["RCAPTURE"]}` | delay before answering |
//! | `POST /admin/profile` | `{"type":"Finger","profileId":"42"}` | synthetic person id (MockMDS name) |
//! | `POST /admin/person` | `{"personId":42}` | synthetic person id |
//! | `POST /admin/missing` | `{"missing":["Right IndexFinger"]}` | fingers/irises the person lacks |
//! | `POST /admin/failure` | `{"mode":"busy"\|"timeout"\|"bad-signature"\|"none"}` | failure mode |
//!
//! Images come from an [`ImageSource`]; the shipped source is the biometrics crate's synthetic
//! generator, so the same person id yields the same fingers on every station.

mod admin;
mod handlers;
mod images;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tessera_packet::clock::Clock;

use crate::jws::{Alg, DeviceSigner, JwsError};
use crate::pki::ProviderCa;
use crate::protocol::{BioSubType, BioType, DeviceStatus, DeviceSubId, DeviceSubType};

pub use images::{
    ImageError, ImageSource, SimImage, SyntheticImages, default_image_source, face_record, finger_record,
    iris_record, measured_contrast_quality, measured_finger_quality, measured_iris_quality,
};

/// An error starting or running the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A port could not be bound.
    #[error(
        "could not listen on 127.0.0.1:{port} for simulated device {device}: {source}; is another SBI service running there?"
    )]
    Bind {
        /// Port asked for.
        port: u16,
        /// Device id.
        device: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Keys or certificates could not be created.
    #[error("could not create the simulated device keys: {0}")]
    Keys(#[from] JwsError),
    /// The authentication encryption certificate cannot be used.
    #[error("the authentication (IDA) encryption certificate cannot be used: {0}")]
    AuthCert(#[from] crate::session::SessionError),
}

/// The kind of a virtual device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    /// Finger slap: left 4 (sub id 1), right 4 (2), two thumbs (3).
    FingerSlap,
    /// Single finger scanner.
    FingerSingle,
    /// Two-iris camera: left (1), right (2), both (3).
    IrisDouble,
    /// Face camera.
    Face,
}

impl DeviceKind {
    /// Modality.
    pub fn bio_type(self) -> BioType {
        match self {
            DeviceKind::FingerSlap | DeviceKind::FingerSingle => BioType::Finger,
            DeviceKind::IrisDouble => BioType::Iris,
            DeviceKind::Face => BioType::Face,
        }
    }

    /// Digital-id sub-type.
    pub fn sub_type(self) -> DeviceSubType {
        match self {
            DeviceKind::FingerSlap => DeviceSubType::Slap,
            DeviceKind::FingerSingle => DeviceSubType::Single,
            DeviceKind::IrisDouble => DeviceSubType::Double,
            DeviceKind::Face => DeviceSubType::FullFace,
        }
    }

    /// Device parts reported in discovery.
    pub fn sub_ids(self) -> Vec<DeviceSubId> {
        match self {
            DeviceKind::FingerSlap | DeviceKind::IrisDouble => {
                vec![DeviceSubId::Left, DeviceSubId::Right, DeviceSubId::Both]
            }
            DeviceKind::FingerSingle | DeviceKind::Face => vec![DeviceSubId::Unknown],
        }
    }

    /// Short model name.
    pub fn model(self) -> &'static str {
        match self {
            DeviceKind::FingerSlap => "TSIM-SLAP-4",
            DeviceKind::FingerSingle => "TSIM-FINGER-1",
            DeviceKind::IrisDouble => "TSIM-IRIS-2",
            DeviceKind::Face => "TSIM-FACE-1",
        }
    }

    /// The default set: slap, single finger, iris double, face.
    pub const DEFAULT_SET: [DeviceKind; 4] = [
        DeviceKind::FingerSlap,
        DeviceKind::FingerSingle,
        DeviceKind::IrisDouble,
        DeviceKind::Face,
    ];
}

/// A failure the simulator injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureMode {
    /// Normal behaviour.
    None,
    /// Every capture and stream answers error 111 (Busy); status reports Busy.
    Busy,
    /// Captures never answer within the request's timeout.
    Timeout,
    /// Data blocks carry a signature that does not verify.
    BadSignature,
}

/// What tests and trainers change at run time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimControl {
    /// Reported status (when no failure overrides it).
    pub device_status: DeviceStatus,
    /// Fixed quality score, or `None` for the image source's own.
    pub quality_score: Option<u8>,
    /// Delay before answering RCAPTURE/CAPTURE, ms.
    pub delay_ms: u64,
    /// Synthetic person id.
    pub person_id: u64,
    /// Segments the person lacks (never returned).
    pub missing: BTreeSet<BioSubType>,
    /// Injected failure.
    pub failure: FailureMode,
}

/// Configuration of one simulator run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Devices and their ports (0 = any free port).
    pub devices: Vec<(DeviceKind, u16)>,
    /// Device key algorithm (certified devices use RS256 today).
    pub alg: Alg,
    /// Synthetic person captured at start.
    pub person_id: u64,
    /// Device certificate validity from now, in days.
    pub cert_days: i64,
    /// The authentication server's (IDA) encryption certificate, DER, that CAPTURE encrypts `bioValue`
    /// to. Without it CAPTURE answers error 108 (domain public key missing).
    pub auth_cert_der: Option<Vec<u8>>,
}

impl SimConfig {
    /// The default set on ports 4501-4504.
    pub fn default_set() -> Self {
        Self::from_port(4501)
    }

    /// The default set on consecutive ports from `first` (0 = each on any free port).
    pub fn from_port(first: u16) -> Self {
        let devices = DeviceKind::DEFAULT_SET
            .iter()
            .zip(0u16..)
            .map(|(k, i)| (*k, if first == 0 { 0 } else { first.saturating_add(i) }))
            .collect();
        Self {
            devices,
            alg: Alg::Rs256,
            person_id: 1,
            cert_days: 30,
            auth_cert_der: None,
        }
    }
}

/// Shared state of one virtual device.
pub(crate) struct DeviceState {
    pub kind: DeviceKind,
    pub device_id: String,
    pub serial_no: String,
    pub port: u16,
    pub signer: DeviceSigner,
    pub control: Mutex<SimControl>,
    pub capturing: AtomicBool,
    pub impressions: AtomicU32,
    pub clock: Arc<dyn Clock>,
    pub images: Arc<dyn ImageSource>,
    pub auth: Option<crate::session::SessionKeyEncryptor>,
}

impl std::fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceState")
            .field("device_id", &self.device_id)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl DeviceState {
    pub(crate) fn control(&self) -> SimControl {
        match self.control.lock() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut SimControl)) {
        match self.control.lock() {
            Ok(mut c) => f(&mut c),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    pub(crate) fn next_impression(&self) -> u32 {
        self.impressions.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn callback_id(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

/// A running simulator; dropping it stops every device.
#[derive(Debug)]
pub struct RunningSimulator {
    devices: Vec<(DeviceKind, SocketAddr)>,
    states: Vec<Arc<DeviceState>>,
    ca_pem: String,
    ca_der: Vec<u8>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl RunningSimulator {
    /// Each device's kind and address.
    pub fn devices(&self) -> &[(DeviceKind, SocketAddr)] {
        &self.devices
    }

    /// The port of the first device of `kind`.
    pub fn port_of(&self, kind: DeviceKind) -> Option<u16> {
        self.devices
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| a.port())
    }

    /// The provider CA certificate (PEM) a station must trust to accept these devices.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The provider CA certificate (DER).
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// Changes the control state of every device of `kind` in-process (tests; the HTTP admin API does
    /// the same over the wire).
    pub fn control(&self, kind: DeviceKind, f: impl Fn(&mut SimControl)) {
        for s in self.states.iter().filter(|s| s.kind == kind) {
            s.update(&f);
        }
    }

    /// Stops every device.
    pub fn stop(self) {}
}

/// Starts the simulator: generates a provider CA and one device key per device, binds every port on
/// 127.0.0.1 and serves until the returned handle is dropped.
pub async fn start(
    config: SimConfig,
    clock: Arc<dyn Clock>,
    images: Arc<dyn ImageSource>,
) -> Result<RunningSimulator, SimError> {
    let now = clock.now();
    let ca = ProviderCa::generate(
        "Tessera Simulated Device Provider CA",
        config.alg,
        now - chrono::Duration::days(1),
        now + chrono::Duration::days(3650),
    )?;
    let auth = match &config.auth_cert_der {
        Some(der) => Some(crate::session::SessionKeyEncryptor::from_cert_der(der)?),
        None => None,
    };
    let mut devices = Vec::new();
    let mut states = Vec::new();
    let mut tasks = Vec::new();
    for (i, (kind, port)) in config.devices.iter().enumerate() {
        let mut serial_rand = [0u8; 4];
        getrandom::fill(&mut serial_rand).map_err(|e| {
            SimError::Keys(JwsError::KeyGeneration {
                what: "device serial number",
                reason: e.to_string(),
            })
        })?;
        let serial_no = format!("TSIM{:02}{}", i, hex::encode_upper(serial_rand));
        let device_id = format!("{}", i + 1);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", *port))
            .await
            .map_err(|source| SimError::Bind {
                port: *port,
                device: device_id.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            port: *port,
            device: device_id.clone(),
            source,
        })?;
        let signer = ca.issue_device(
            &serial_no,
            config.alg,
            now - chrono::Duration::hours(1),
            now + chrono::Duration::days(config.cert_days),
        )?;
        let state = Arc::new(DeviceState {
            kind: *kind,
            device_id,
            serial_no,
            port: addr.port(),
            signer,
            control: Mutex::new(SimControl {
                device_status: DeviceStatus::Ready,
                quality_score: None,
                delay_ms: 0,
                person_id: config.person_id,
                missing: BTreeSet::new(),
                failure: FailureMode::None,
            }),
            capturing: AtomicBool::new(false),
            impressions: AtomicU32::new(0),
            clock: clock.clone(),
            images: images.clone(),
            auth: auth.clone(),
        });
        let app = handlers::router(state.clone());
        tracing::info!(port = addr.port(), kind = ?kind, "simulated SBI device listening");
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "simulated device server stopped");
            }
        }));
        devices.push((*kind, addr));
        states.push(state);
    }
    Ok(RunningSimulator {
        devices,
        states,
        ca_pem: ca.cert_pem().to_string(),
        ca_der: ca.cert_der().to_vec(),
        tasks,
    })
}

/// How long a "timeout" failure holds a capture beyond the request's own timeout.
pub(crate) const TIMEOUT_FAILURE_EXTRA: Duration = Duration::from_secs(5);
