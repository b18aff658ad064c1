//! Biometric capture from SBI devices (`tessera_sbi::client`): discovery, RCAPTURE with full validation
//! (device signatures chained to a trusted provider CA, hash chain, segments, quality), and storage of the
//! returned ISO 19794 records, qualities and signed data blocks in the draft through
//! [`Station::add_capture`].
//!
//! - The trust store holds the device-provider CA certificates synced from the server (kind
//!   `certificates`, items with a `pem` field) plus any given in [`DeviceOptions::trusted_ca_pem`].
//! - One SBI transaction id and one hash chain per draft, kept in the draft ([`SbiSession`]), so captures
//!   of all modalities of one registration chain together even across restarts.
//! - Missing or injured fingers and irises declared as exceptions in the draft's answers are not
//!   requested; a part whose attributes are all exceptions is skipped.
//! - Below the country's quality threshold (`station-settings.json` `biometrics.qualityThreshold`) the
//!   capture is repeated up to `biometrics.maxRetries` times; the last valid capture is then kept as
//!   force-captured (the packet records it).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tessera_packet::types::{BioAttribute, DeviceRef};
use tessera_sbi::client::{ClientConfig, ClientError, FoundDevice, SbiClient, capture_spec_for};
use tessera_sbi::jws::TrustStore;
use tessera_sbi::protocol::{BioSubType, BioType, DeviceSubId, HashChain, TransactionId};
use tracing::{info, instrument, warn};

use crate::error::{Result, StationError};
use crate::preview::PreviewEnd;
use crate::station::Station;
use crate::workflow::Capture;

/// Where to look for devices and whom to trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct DeviceOptions {
    /// First port of the SBI range (4501).
    pub first_port: u16,
    /// Last port of the SBI range (4600).
    pub last_port: u16,
    /// Extra device-provider CA certificates (PEM), on top of those synced from the server.
    pub trusted_ca_pem: Vec<String>,
    /// Capture timeout sent to the device, in seconds.
    pub capture_timeout_secs: u64,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        Self {
            first_port: 4501,
            last_port: 4600,
            trusted_ca_pem: Vec::new(),
            capture_timeout_secs: 30,
        }
    }
}

/// A part of the body one RCAPTURE takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CapturePart {
    /// Left four fingers (slap).
    LeftSlap,
    /// Right four fingers (slap).
    RightSlap,
    /// Both thumbs.
    Thumbs,
    /// Both irises.
    Irises,
    /// Face.
    Face,
}

impl CapturePart {
    /// Every part, in capture order.
    pub const ALL: [CapturePart; 5] = [
        Self::LeftSlap,
        Self::RightSlap,
        Self::Thumbs,
        Self::Irises,
        Self::Face,
    ];

    pub(crate) fn bio_type(self) -> BioType {
        match self {
            Self::LeftSlap | Self::RightSlap | Self::Thumbs => BioType::Finger,
            Self::Irises => BioType::Iris,
            Self::Face => BioType::Face,
        }
    }

    pub(crate) fn sub_id(self) -> DeviceSubId {
        match self {
            Self::LeftSlap => DeviceSubId::Left,
            Self::RightSlap => DeviceSubId::Right,
            Self::Thumbs | Self::Irises => DeviceSubId::Both,
            Self::Face => DeviceSubId::Unknown,
        }
    }

    /// The attributes this part captures.
    pub fn attributes(self) -> Vec<BioAttribute> {
        match self {
            Self::Face => vec![BioAttribute::Face],
            _ => BioSubType::segments_of(self.bio_type(), self.sub_id())
                .iter()
                .filter_map(|s| attribute_of(*s, self.bio_type()))
                .collect(),
        }
    }
}

/// The packet attribute of an SBI segment.
pub fn attribute_of(s: BioSubType, bio_type: BioType) -> Option<BioAttribute> {
    s.attribute(bio_type)
}

fn format_of(bio_type: BioType) -> &'static str {
    match bio_type {
        BioType::Finger => "ISO19794-4:2011",
        BioType::Iris => "ISO19794-6:2011",
        BioType::Face => "ISO19794-5:2011",
    }
}

/// A device found by discovery, for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Device id.
    pub device_id: String,
    /// Finger, Iris or Face.
    pub bio_type: String,
    /// Slap, Single, Double, Full face.
    pub sub_type: String,
    /// Ready, Busy, Not Ready, Not Registered.
    pub status: String,
    /// Serial number.
    pub serial_no: String,
    /// Make and model.
    pub model: String,
}

/// Ports answering but not usable as SBI devices, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovered {
    /// Devices.
    pub devices: Vec<DeviceView>,
    /// Ports skipped, with why.
    pub ignored: Vec<(u16, String)>,
}

/// What one part's capture stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartCapture {
    /// The part.
    pub part: CapturePart,
    /// Attempts made (1 = first capture was good).
    pub attempts: u32,
    /// Stored attributes and their quality.
    pub qualities: Vec<(BioAttribute, u8)>,
    /// Whether the capture was kept below threshold after the retries.
    pub force_captured: bool,
    /// Device serial number.
    pub device: String,
}

/// The SBI session of one registration: one transaction id, one hash chain across all its captures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SbiSession {
    /// Transaction id sent with every capture.
    pub transaction_id: String,
    /// Current chain hash (hex) after the kept captures.
    pub chain: String,
}

impl Station {
    /// The SBI client settings and the device trust store (synced provider CAs plus those in `opts`).
    pub(crate) fn sbi_parts(&self, opts: &DeviceOptions) -> Result<(ClientConfig, Arc<TrustStore>)> {
        let mut trust = TrustStore::new();
        let mut pems = self.synced_certificates()?;
        pems.extend(opts.trusted_ca_pem.iter().cloned());
        for pem in &pems {
            trust.add_pem(pem).map_err(|e| StationError::Device {
                context: "loading device-provider CA certificates".into(),
                detail: format!("{e}; sync master data again or fix the certificate"),
            })?;
        }
        if pems.is_empty() {
            return Err(StationError::Device {
                context: "capturing biometrics".into(),
                detail: "no device-provider CA certificate is trusted yet; sync with the server (certificates) or give the provider's CA".into(),
            });
        }
        let config = ClientConfig {
            first_port: opts.first_port,
            last_port: opts.last_port.max(opts.first_port),
            ..ClientConfig::default()
        };
        Ok((config, Arc::new(trust)))
    }

    pub(crate) fn sbi_client(&self, opts: &DeviceOptions) -> Result<SbiClient> {
        let (config, trust) = self.sbi_parts(opts)?;
        SbiClient::new(config, trust, self.clock.clone()).map_err(|e| StationError::Device {
            context: "setting up the SBI client".into(),
            detail: e.to_string(),
        })
    }

    /// Lists the SBI devices on this computer.
    #[instrument(skip_all)]
    pub async fn discover_devices(&mut self, opts: &DeviceOptions) -> Result<Discovered> {
        self.session()?;
        let client = self.sbi_client(opts)?;
        let d = client.discover().await;
        Ok(Discovered {
            devices: d.devices.iter().map(view).collect(),
            ignored: d.ignored,
        })
    }

    /// Captures every part the draft still needs (required attributes not excepted and not yet captured).
    pub async fn capture_all(&mut self, draft: i64, opts: &DeviceOptions) -> Result<Vec<PartCapture>> {
        self.previews.stop(PreviewEnd::Capture);
        let review = self.review(draft)?;
        let required: Vec<BioAttribute> = match &review.form {
            Some(f) if !f.biometrics.applicable => Vec::new(),
            Some(f) => f.biometrics.attributes.clone(),
            None => BioAttribute::ALL.to_vec(),
        };
        let d = self.draft(draft)?;
        let exceptions: Vec<BioAttribute> = d
            .body
            .answers
            .as_ref()
            .map(|a| a.biometrics.exceptions.keys().copied().collect())
            .unwrap_or_default();
        let client = self.sbi_client(opts)?;
        let found = client.discover().await;
        let mut out = Vec::new();
        for part in CapturePart::ALL {
            let wanted = part.attributes().into_iter().any(|a| {
                required.contains(&a) && !exceptions.contains(&a) && !d.body.captures.contains_key(&a)
            });
            if wanted {
                out.push(
                    self.capture_part_with(&client, &found.devices, draft, part, opts)
                        .await?,
                );
            }
        }
        Ok(out)
    }

    /// Captures one part from the first ready device of its modality and stores it in the draft.
    pub async fn capture_part(
        &mut self,
        draft: i64,
        part: CapturePart,
        opts: &DeviceOptions,
    ) -> Result<PartCapture> {
        self.session()?;
        self.previews.stop(PreviewEnd::Capture);
        let client = self.sbi_client(opts)?;
        let found = client.discover().await;
        self.capture_part_with(&client, &found.devices, draft, part, opts)
            .await
    }

    #[instrument(skip_all, fields(draft, part = ?part))]
    async fn capture_part_with(
        &mut self,
        client: &SbiClient,
        devices: &[FoundDevice],
        draft: i64,
        part: CapturePart,
        opts: &DeviceOptions,
    ) -> Result<PartCapture> {
        let d = self.draft(draft)?;
        let bio_type = part.bio_type();
        let device = crate::preview::device_for(devices, part).ok_or_else(|| StationError::Device {
            context: format!("capturing {part:?}"),
            detail: format!(
                "no {} device found on ports {}-{}; connect the device and check its service runs",
                bio_type.as_str(),
                opts.first_port,
                opts.last_port
            ),
        })?;
        let exceptions: Vec<BioSubType> = d
            .body
            .answers
            .as_ref()
            .map(|a| {
                a.biometrics
                    .exceptions
                    .keys()
                    .filter(|a| part.attributes().contains(*a))
                    .map(|a| BioSubType::of_attribute(*a))
                    .collect()
            })
            .unwrap_or_default();
        let session = match &d.body.sbi {
            Some(s) => s.clone(),
            None => SbiSession {
                transaction_id: TransactionId::random()
                    .map_err(|e| StationError::Crypto {
                        context: "creating an SBI transaction id",
                        detail: e.to_string(),
                    })?
                    .as_str()
                    .to_owned(),
                chain: HashChain::new().current_hex(),
            },
        };
        let txn = TransactionId::parse(&session.transaction_id).map_err(|e| StationError::Device {
            context: "resuming the draft's SBI session".into(),
            detail: e.to_string(),
        })?;
        let chain = parse_chain(&session.chain)?;
        let threshold = {
            let t = self.master.settings.biometrics.quality_threshold;
            match bio_type {
                BioType::Finger => t.finger,
                BioType::Iris => t.iris,
                BioType::Face => t.face,
            }
        };
        let max_retries = self.master.settings.biometrics.max_retries;
        let spec = capture_spec_for(
            device,
            part.sub_id(),
            txn,
            exceptions,
            threshold.max(1),
            Duration::from_secs(opts.capture_timeout_secs.max(1)),
        );
        let mut attempt = 0u32;
        let (capture, forced) = loop {
            attempt += 1;
            match client.rcapture(device, &spec, &chain).await {
                Ok(c) => break (c, false),
                Err(ClientError::QualityBelowThreshold {
                    capture,
                    average,
                    required,
                    ..
                }) => {
                    if attempt > max_retries {
                        warn!(
                            attempt,
                            average, required, "quality still low after the retries; force-capturing"
                        );
                        break (*capture, true);
                    }
                    info!(
                        attempt,
                        average, required, "quality below threshold; capturing again"
                    );
                }
                Err(e) => {
                    return Err(StationError::Device {
                        context: format!("capturing {part:?} from device {}", device.digital_id.serial_no),
                        detail: e.to_string(),
                    });
                }
            }
        };
        let device_ref = DeviceRef {
            serial_no: capture.digital_id.serial_no.clone(),
            provider: capture.digital_id.device_provider.clone(),
            model: capture.digital_id.model.clone(),
            device_sub_type: serde_json::to_value(capture.digital_id.device_sub_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            spec_version: tessera_sbi::protocol::SPEC_VERSION.to_owned(),
        };
        let now = self.clock.now();
        let mut qualities = Vec::new();
        for seg in &capture.segments {
            let attribute = match seg.bio_sub_type {
                Some(s) => attribute_of(s, bio_type),
                None if bio_type == BioType::Face => Some(BioAttribute::Face),
                None => None,
            };
            let Some(attribute) = attribute else { continue };
            let quality = u8::try_from(seg.quality.min(100)).unwrap_or(100);
            self.add_capture(
                draft,
                Capture {
                    attribute,
                    image: seg.iso.clone(),
                    format: format_of(bio_type).into(),
                    quality,
                    retries: if forced { attempt.max(max_retries) } else { attempt },
                    force_captured: forced,
                    sbi_data_block: Some(seg.data_jws.clone()),
                    device: Some(device_ref.clone()),
                    captured_at: now,
                },
            )?;
            qualities.push((attribute, quality));
        }
        // Keep the chain only once the capture is stored.
        self.set_sbi_session(
            draft,
            SbiSession {
                transaction_id: session.transaction_id,
                chain: capture.chain_after.current_hex(),
            },
        )?;
        Ok(PartCapture {
            part,
            attempts: attempt,
            qualities,
            force_captured: forced,
            device: device_ref.serial_no,
        })
    }
}

fn parse_chain(hex_hash: &str) -> Result<HashChain> {
    let bytes = hex::decode(hex_hash)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| StationError::Device {
            context: "resuming the draft's SBI session".into(),
            detail: "the stored hash chain is not 32 bytes of hex".into(),
        })?;
    Ok(HashChain::from_hash(bytes))
}

pub(crate) fn view(f: &FoundDevice) -> DeviceView {
    let text = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    DeviceView {
        port: f.port,
        device_id: f.entry.device_id.clone(),
        bio_type: f.bio_type().as_str().into(),
        sub_type: text(serde_json::to_value(f.digital_id.device_sub_type)),
        status: text(serde_json::to_value(f.entry.device_status)),
        serial_no: f.digital_id.serial_no.clone(),
        model: format!("{} {}", f.digital_id.make, f.digital_id.model),
    }
}
