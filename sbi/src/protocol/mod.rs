//! SBI 0.9.5 wire types: requests, responses and signed payloads.
//!
//! **Frozen wire format.** Every field name, type and enum spelling here is what certified devices and
//! MOSIP's compliance toolkit (CTK, `resources/schemas/sbi/0.9.5/*`) expect. Several numbers travel as
//! JSON strings (`count`, `requestedScore`, `qualityScore`, `timeout`, `deviceSubId`, `errorCode`); they are
//! modelled with [`NumStr`], which writes a string and rejects a JSON number. Types whose CTK schema sets
//! `additionalProperties: false` use `#[serde(deny_unknown_fields)]`. Change nothing here without a
//! schema-conformance test showing the new form is still accepted by the CTK schemas.

mod codes;
mod hash;
mod numstr;
mod txn;

use serde::{Deserialize, Serialize};
use tessera_packet::types::BioAttribute;

pub use codes::{ErrorInfo, SbiErrorCode};
pub use hash::{HashChain, chain_hash, empty_hash, parse_hash};
pub use numstr::NumStr;
pub use txn::TransactionId;

/// The SBI specification version Tessera builds its messages with.
pub const SPEC_VERSION: &str = "0.9.5";

/// An error reading or validating an SBI message.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The bytes are not the JSON shape the named message requires.
    #[error(
        "the {message} is not valid SBI 0.9.5 JSON: {source}; the device or client does not follow the spec"
    )]
    Json {
        /// Which message was being read (e.g. "RCAPTURE response").
        message: &'static str,
        /// The parser's description, naming the field and position.
        #[source]
        source: serde_json::Error,
    },
    /// A message was larger than the size this reader accepts.
    #[error("the {message} is {len} bytes, more than the {max} bytes accepted; refusing to read it")]
    TooLarge {
        /// Which message.
        message: &'static str,
        /// Its size in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A transactionId is not 4-50 characters of `[A-Za-z0-9-]` (SBI error 112).
    #[error("transactionId {value:?} is invalid: it must be 4 to 50 characters of A-Z, a-z, 0-9 and '-'")]
    InvalidTransactionId {
        /// The rejected value (transaction ids carry no personal data).
        value: String,
    },
    /// An error code was not a decimal number.
    #[error("errorCode {value:?} is not a decimal number")]
    InvalidErrorCode {
        /// The rejected value.
        value: String,
    },
    /// A hash in the capture hash chain is not 64 hex digits.
    #[error("{field} {value:?} is not a SHA-256 hash in 64 hex digits")]
    InvalidHash {
        /// Which field held it.
        field: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A numeric-string field did not hold a decimal number.
    #[error("{field} {value:?} is not a decimal number in a string")]
    InvalidNumber {
        /// Which field.
        field: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A base64url field did not decode.
    #[error("{field} is not valid base64url: {reason}")]
    InvalidBase64 {
        /// Which field.
        field: &'static str,
        /// What the decoder said.
        reason: String,
    },
}

/// Largest SBI JSON message this crate parses (a 10-finger capture of lossless images stays well under).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// Parses one SBI message with a size bound and a typed error naming the message.
pub fn parse<T: serde::de::DeserializeOwned>(
    message: &'static str,
    bytes: &[u8],
) -> Result<T, ProtocolError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge {
            message,
            len: bytes.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    serde_json::from_slice(bytes).map_err(|source| ProtocolError::Json { message, source })
}

/// Decodes base64url without padding (as SBI uses for `bioValue`, `digitalId` payloads and JWS parts).
/// Padding, if a device adds it, is tolerated.
pub fn b64url_decode(field: &'static str, s: &str) -> Result<Vec<u8>, ProtocolError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| ProtocolError::InvalidBase64 {
            field,
            reason: e.to_string(),
        })
}

/// Encodes base64url without padding.
pub fn b64url_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Device status as reported by discovery and device info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeviceStatus {
    /// Ready to capture.
    #[serde(rename = "Ready")]
    Ready,
    /// Capturing or streaming for another call.
    #[serde(rename = "Busy")]
    Busy,
    /// Present but unable to capture (e.g. unplugged, warming up).
    #[serde(rename = "Not Ready")]
    NotReady,
    /// No device certificate from the provider's management server.
    #[serde(rename = "Not Registered")]
    NotRegistered,
}

/// Device certification level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Certification {
    /// Software keys, registration only.
    L0,
    /// Keys in a certified FTM chip.
    L1,
}

/// Purpose a device is registered for. Unregistered devices report an empty string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Purpose {
    /// Authentication (CAPTURE).
    Auth,
    /// Registration (RCAPTURE).
    Registration,
    /// Not registered: the wire value is `""`.
    #[serde(rename = "")]
    Unregistered,
}

/// Target environment of the device registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Env {
    /// Staging.
    Staging,
    /// Developer.
    Developer,
    /// Pre-production.
    #[serde(rename = "Pre-Production")]
    PreProduction,
    /// Production.
    Production,
    /// An unregistered device reports `None`.
    None,
}

/// Biometric modality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BioType {
    /// Fingerprint.
    Finger,
    /// Iris.
    Iris,
    /// Face.
    Face,
}

impl BioType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BioType::Finger => "Finger",
            BioType::Iris => "Iris",
            BioType::Face => "Face",
        }
    }
}

/// The `type` of a MOSIPDISC request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DiscoverType {
    /// Every device.
    #[serde(rename = "Biometric Device")]
    BiometricDevice,
    /// Fingerprint devices.
    Finger,
    /// Iris devices.
    Iris,
    /// Face devices.
    Face,
}

impl DiscoverType {
    /// Whether a device of `bio_type` answers this discovery.
    pub fn matches(self, bio_type: BioType) -> bool {
        match self {
            DiscoverType::BiometricDevice => true,
            DiscoverType::Finger => bio_type == BioType::Finger,
            DiscoverType::Iris => bio_type == BioType::Iris,
            DiscoverType::Face => bio_type == BioType::Face,
        }
    }
}

/// Device sub-type inside the digital id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeviceSubType {
    /// Four-finger slap scanner.
    Slap,
    /// Single finger (or single iris).
    Single,
    /// Touchless finger scanner.
    Touchless,
    /// Two-iris camera.
    Double,
    /// Face camera.
    #[serde(rename = "Full face")]
    FullFace,
}

impl DeviceSubType {
    /// Whether this sub-type is allowed for `bio_type` (CTK schema `allOf` rules).
    pub fn allowed_for(self, bio_type: BioType) -> bool {
        matches!(
            (bio_type, self),
            (
                BioType::Finger,
                DeviceSubType::Slap | DeviceSubType::Single | DeviceSubType::Touchless
            ) | (BioType::Iris, DeviceSubType::Single | DeviceSubType::Double)
                | (BioType::Face, DeviceSubType::FullFace)
        )
    }
}

/// `deviceSubId`: which part of a multi-part device. Travels as a string `"0"`..`"3"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceSubId {
    /// 0: unknown / whole device (single finger, face).
    Unknown,
    /// 1: left slap or left iris.
    Left,
    /// 2: right slap or right iris.
    Right,
    /// 3: two thumbs or both irises.
    Both,
}

impl DeviceSubId {
    /// The wire number.
    pub fn code(self) -> u8 {
        match self {
            DeviceSubId::Unknown => 0,
            DeviceSubId::Left => 1,
            DeviceSubId::Right => 2,
            DeviceSubId::Both => 3,
        }
    }

    /// From the wire number.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(DeviceSubId::Unknown),
            1 => Some(DeviceSubId::Left),
            2 => Some(DeviceSubId::Right),
            3 => Some(DeviceSubId::Both),
            _ => None,
        }
    }
}

impl Serialize for DeviceSubId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            DeviceSubId::Unknown => "0",
            DeviceSubId::Left => "1",
            DeviceSubId::Right => "2",
            DeviceSubId::Both => "3",
        })
    }
}

impl<'de> Deserialize<'de> for DeviceSubId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<u8>()
            .ok()
            .and_then(DeviceSubId::from_code)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "deviceSubId {s:?} is not one of \"0\", \"1\", \"2\", \"3\""
                ))
            })
    }
}

/// A biometric sub-type: a finger position, an iris side, or `UNKNOWN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BioSubType {
    /// Left index finger.
    #[serde(rename = "Left IndexFinger")]
    LeftIndex,
    /// Left middle finger.
    #[serde(rename = "Left MiddleFinger")]
    LeftMiddle,
    /// Left ring finger.
    #[serde(rename = "Left RingFinger")]
    LeftRing,
    /// Left little finger.
    #[serde(rename = "Left LittleFinger")]
    LeftLittle,
    /// Left thumb.
    #[serde(rename = "Left Thumb")]
    LeftThumb,
    /// Right index finger.
    #[serde(rename = "Right IndexFinger")]
    RightIndex,
    /// Right middle finger.
    #[serde(rename = "Right MiddleFinger")]
    RightMiddle,
    /// Right ring finger.
    #[serde(rename = "Right RingFinger")]
    RightRing,
    /// Right little finger.
    #[serde(rename = "Right LittleFinger")]
    RightLittle,
    /// Right thumb.
    #[serde(rename = "Right Thumb")]
    RightThumb,
    /// Left iris.
    Left,
    /// Right iris.
    Right,
    /// Position not known.
    #[serde(rename = "UNKNOWN")]
    Unknown,
}

impl BioSubType {
    /// All ten finger positions in ISO order (right thumb .. left little) — useful for iteration.
    pub const FINGERS: [BioSubType; 10] = [
        BioSubType::RightThumb,
        BioSubType::RightIndex,
        BioSubType::RightMiddle,
        BioSubType::RightRing,
        BioSubType::RightLittle,
        BioSubType::LeftThumb,
        BioSubType::LeftIndex,
        BioSubType::LeftMiddle,
        BioSubType::LeftRing,
        BioSubType::LeftLittle,
    ];

    /// The wire spelling, also used in user-facing messages.
    pub fn as_str(self) -> &'static str {
        match self {
            BioSubType::LeftIndex => "Left IndexFinger",
            BioSubType::LeftMiddle => "Left MiddleFinger",
            BioSubType::LeftRing => "Left RingFinger",
            BioSubType::LeftLittle => "Left LittleFinger",
            BioSubType::LeftThumb => "Left Thumb",
            BioSubType::RightIndex => "Right IndexFinger",
            BioSubType::RightMiddle => "Right MiddleFinger",
            BioSubType::RightRing => "Right RingFinger",
            BioSubType::RightLittle => "Right LittleFinger",
            BioSubType::RightThumb => "Right Thumb",
            BioSubType::Left => "Left",
            BioSubType::Right => "Right",
            BioSubType::Unknown => "UNKNOWN",
        }
    }

    /// A phrase for operators, e.g. "Right index finger", "Left iris".
    pub fn human(self) -> &'static str {
        match self {
            BioSubType::LeftIndex => "Left index finger",
            BioSubType::LeftMiddle => "Left middle finger",
            BioSubType::LeftRing => "Left ring finger",
            BioSubType::LeftLittle => "Left little finger",
            BioSubType::LeftThumb => "Left thumb",
            BioSubType::RightIndex => "Right index finger",
            BioSubType::RightMiddle => "Right middle finger",
            BioSubType::RightRing => "Right ring finger",
            BioSubType::RightLittle => "Right little finger",
            BioSubType::RightThumb => "Right thumb",
            BioSubType::Left => "Left iris",
            BioSubType::Right => "Right iris",
            BioSubType::Unknown => "Unknown position",
        }
    }

    /// The packet's biometric attribute for this segment of a `bio_type` capture (a face segment is
    /// `UNKNOWN`); `None` for an `UNKNOWN` finger or iris.
    pub fn attribute(self, bio_type: BioType) -> Option<BioAttribute> {
        use BioSubType as S;
        Some(match self {
            S::LeftIndex => BioAttribute::LeftIndex,
            S::LeftMiddle => BioAttribute::LeftMiddle,
            S::LeftRing => BioAttribute::LeftRing,
            S::LeftLittle => BioAttribute::LeftLittle,
            S::LeftThumb => BioAttribute::LeftThumb,
            S::RightIndex => BioAttribute::RightIndex,
            S::RightMiddle => BioAttribute::RightMiddle,
            S::RightRing => BioAttribute::RightRing,
            S::RightLittle => BioAttribute::RightLittle,
            S::RightThumb => BioAttribute::RightThumb,
            S::Left => BioAttribute::LeftEye,
            S::Right => BioAttribute::RightEye,
            S::Unknown if bio_type == BioType::Face => BioAttribute::Face,
            S::Unknown => return None,
        })
    }

    /// The segment that captures the packet attribute `a` (`UNKNOWN` for the face).
    pub fn of_attribute(a: BioAttribute) -> Self {
        use BioSubType as S;
        match a {
            BioAttribute::LeftIndex => S::LeftIndex,
            BioAttribute::LeftMiddle => S::LeftMiddle,
            BioAttribute::LeftRing => S::LeftRing,
            BioAttribute::LeftLittle => S::LeftLittle,
            BioAttribute::LeftThumb => S::LeftThumb,
            BioAttribute::RightIndex => S::RightIndex,
            BioAttribute::RightMiddle => S::RightMiddle,
            BioAttribute::RightRing => S::RightRing,
            BioAttribute::RightLittle => S::RightLittle,
            BioAttribute::RightThumb => S::RightThumb,
            BioAttribute::LeftEye => S::Left,
            BioAttribute::RightEye => S::Right,
            BioAttribute::Face => S::Unknown,
        }
    }

    /// Whether this sub-type belongs to `bio_type` (UNKNOWN belongs to finger and iris).
    pub fn belongs_to(self, bio_type: BioType) -> bool {
        match bio_type {
            BioType::Finger => !matches!(self, BioSubType::Left | BioSubType::Right),
            BioType::Iris => matches!(self, BioSubType::Left | BioSubType::Right | BioSubType::Unknown),
            BioType::Face => false,
        }
    }

    /// The segments a device part captures (slap left/right/thumbs, iris left/right/both).
    pub fn segments_of(bio_type: BioType, sub_id: DeviceSubId) -> &'static [BioSubType] {
        use BioSubType::*;
        match (bio_type, sub_id) {
            (BioType::Finger, DeviceSubId::Left) => &[LeftIndex, LeftMiddle, LeftRing, LeftLittle],
            (BioType::Finger, DeviceSubId::Right) => &[RightIndex, RightMiddle, RightRing, RightLittle],
            (BioType::Finger, DeviceSubId::Both) => &[LeftThumb, RightThumb],
            (BioType::Iris, DeviceSubId::Left) => &[Left],
            (BioType::Iris, DeviceSubId::Right) => &[Right],
            (BioType::Iris, DeviceSubId::Both) => &[Left, Right],
            _ => &[],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery (MOSIPDISC /device)
// ---------------------------------------------------------------------------------------------

/// MOSIPDISC request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoverRequest {
    /// Which devices to list.
    #[serde(rename = "type")]
    pub device_type: DiscoverType,
}

/// One entry of the MOSIPDISC response array (unsigned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredDevice {
    /// Device id within the SBI service (used in capture requests).
    pub device_id: String,
    /// Current status.
    pub device_status: DeviceStatus,
    /// Certification level.
    pub certification: Certification,
    /// Version of the device service.
    pub service_version: String,
    /// Parts of the device (slap left/right/thumbs, iris left/right/both, or 0).
    pub device_sub_id: Vec<DeviceSubId>,
    /// Base URL to call, e.g. `http://127.0.0.1:4501/`.
    pub callback_id: String,
    /// base64url of the [`DigitalId`] JSON, **unsigned** in discovery.
    pub digital_id: String,
    /// Device code (the serial number).
    pub device_code: String,
    /// Spec versions supported; the first is the one this response follows.
    pub spec_version: Vec<String>,
    /// Purpose.
    pub purpose: Purpose,
    /// Status of this entry.
    pub error: ErrorInfo,
}

// ---------------------------------------------------------------------------------------------
// Digital id and device info (MOSIPDINFO /info)
// ---------------------------------------------------------------------------------------------

/// The digital id payload (signed by the device/FTM key in device info and capture data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DigitalId {
    /// Serial number (matches the printed label).
    pub serial_no: String,
    /// Make.
    pub make: String,
    /// Model.
    pub model: String,
    /// Modality.
    #[serde(rename = "type")]
    pub bio_type: BioType,
    /// Sub-type.
    pub device_sub_type: DeviceSubType,
    /// Provider name.
    pub device_provider: String,
    /// Provider id.
    pub device_provider_id: String,
    /// ISO-8601 time the digital id was produced.
    pub date_time: String,
}

/// One entry of the MOSIPDINFO response array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceInfoEntry {
    /// JWS of [`DeviceInfo`] signed by the device key; base64url payload only (no signature) when the
    /// device is not registered; absent or null on some errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_info: Option<String>,
    /// Status.
    pub error: ErrorInfo,
}

/// The device info payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceInfo {
    /// Status.
    pub device_status: DeviceStatus,
    /// Device id.
    pub device_id: String,
    /// Firmware version.
    pub firmware: String,
    /// Certification level.
    pub certification: Certification,
    /// Device service version.
    pub service_version: String,
    /// Device parts.
    pub device_sub_id: Vec<DeviceSubId>,
    /// Base URL.
    pub callback_id: String,
    /// Digital id as a signed JWS.
    pub digital_id: String,
    /// Device code.
    pub device_code: String,
    /// Environment.
    pub env: Env,
    /// Purpose.
    pub purpose: Purpose,
    /// Spec versions.
    pub spec_version: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Capture (RCAPTURE / CAPTURE /capture)
// ---------------------------------------------------------------------------------------------

/// One modality requested in a capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BioRequest {
    /// Modality.
    #[serde(rename = "type")]
    pub bio_type: BioType,
    /// Number of segments wanted (string on the wire).
    pub count: NumStr,
    /// Specific segments wanted; empty for "whatever the device part captures".
    #[serde(default)]
    pub bio_sub_type: Vec<BioSubType>,
    /// Segments the resident does not have (missing fingers or irises).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exception: Vec<BioSubType>,
    /// Quality to reach, 1-100 (string on the wire).
    pub requested_score: NumStr,
    /// Device id from discovery.
    pub device_id: String,
    /// Device part.
    pub device_sub_id: DeviceSubId,
    /// The previous capture's hash (uppercase hex), or the hash of empty input / `""` for the first.
    pub previous_hash: String,
}

/// RCAPTURE request (registration capture).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RCaptureRequest {
    /// Environment.
    pub env: Env,
    /// Always `Registration`.
    pub purpose: Purpose,
    /// Spec version, "0.9.5".
    pub spec_version: String,
    /// Capture timeout in milliseconds (string on the wire).
    pub timeout: NumStr,
    /// ISO-8601 time of the request.
    pub capture_time: String,
    /// Transaction id (4-50 of `[A-Za-z0-9-]`); validated by the device, error 112 when wrong.
    pub transaction_id: String,
    /// Modalities to capture (one per call in practice).
    pub bio: Vec<BioRequest>,
    /// Vendor options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_opts: Option<serde_json::Value>,
}

/// CAPTURE request (authentication capture): RCAPTURE's fields plus `domainUri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureRequest {
    /// Environment.
    pub env: Env,
    /// Always `Auth`.
    pub purpose: Purpose,
    /// Spec version.
    pub spec_version: String,
    /// Timeout in ms (string).
    pub timeout: NumStr,
    /// Request time.
    pub capture_time: String,
    /// IDA domain URI (federation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_uri: Option<String>,
    /// Transaction id.
    pub transaction_id: String,
    /// Modalities.
    pub bio: Vec<BioRequest>,
    /// Vendor options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_opts: Option<serde_json::Value>,
}

/// The RCAPTURE / CAPTURE response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureResponse {
    /// One entry per captured segment (or one error entry).
    pub biometrics: Vec<BiometricEntry>,
}

/// One segment of a capture response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BiometricEntry {
    /// Spec version; null on some errors.
    #[serde(default)]
    pub spec_version: Option<String>,
    /// JWS of [`CaptureData`], signed by the device key; null on errors.
    #[serde(default)]
    pub data: Option<String>,
    /// Chained hash (uppercase hex); null on errors.
    #[serde(default)]
    pub hash: Option<String>,
    /// Auth capture only: the session key wrapped for IDA (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    /// Auth capture only: uppercase hex SHA-256 of the IDA certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbprint: Option<String>,
    /// Status.
    pub error: ErrorInfo,
}

/// The signed payload of one captured segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaptureData {
    /// The digital id as a signed JWS.
    pub digital_id: String,
    /// Modality.
    pub bio_type: BioType,
    /// Segment; absent for face.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio_sub_type: Option<BioSubType>,
    /// Device code.
    pub device_code: String,
    /// Device service version.
    pub device_service_version: String,
    /// Purpose.
    pub purpose: Purpose,
    /// Environment.
    pub env: Env,
    /// Auth capture only: the IDA domain URI echoed from the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_uri: Option<String>,
    /// base64url ISO 19794-4/5/6 record (encrypted for auth capture).
    pub bio_value: String,
    /// Transaction id echoed.
    pub transaction_id: String,
    /// ISO-8601 capture time.
    pub timestamp: String,
    /// Requested score echoed (string).
    pub requested_score: NumStr,
    /// Achieved quality, 0-100 (string).
    pub quality_score: NumStr,
}

// ---------------------------------------------------------------------------------------------
// Stream (STREAM /stream)
// ---------------------------------------------------------------------------------------------

/// STREAM request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamRequest {
    /// Device id.
    pub device_id: String,
    /// Device part.
    pub device_sub_id: DeviceSubId,
    /// Stream timeout in ms (string); default 5 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<NumStr>,
}

/// The error-only response some verbs send (e.g. STREAM refused): `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorInfo,
}

/// Formats a time the way SBI expects (`yyyy-MM-ddTHH:mm:ssZ`, UTC).
pub fn sbi_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_packet_attribute_round_trips_through_its_segment() {
        for a in BioAttribute::ALL {
            let bio_type = match a.modality() {
                tessera_packet::types::Modality::Finger => BioType::Finger,
                tessera_packet::types::Modality::Iris => BioType::Iris,
                tessera_packet::types::Modality::Face => BioType::Face,
            };
            assert_eq!(BioSubType::of_attribute(a).attribute(bio_type), Some(a), "{a:?}");
        }
        assert_eq!(BioSubType::Unknown.attribute(BioType::Finger), None);
    }

    #[test]
    fn device_sub_id_travels_as_string() {
        assert_eq!(serde_json::to_string(&DeviceSubId::Left).unwrap(), "\"1\"");
        let v: DeviceSubId = serde_json::from_str("\"3\"").unwrap();
        assert_eq!(v, DeviceSubId::Both);
        assert!(serde_json::from_str::<DeviceSubId>("3").is_err());
        assert!(serde_json::from_str::<DeviceSubId>("\"4\"").is_err());
    }

    #[test]
    fn status_and_subtype_spellings() {
        assert_eq!(
            serde_json::to_string(&DeviceStatus::NotRegistered).unwrap(),
            "\"Not Registered\""
        );
        assert_eq!(
            serde_json::to_string(&DeviceSubType::FullFace).unwrap(),
            "\"Full face\""
        );
        assert_eq!(
            serde_json::to_string(&BioSubType::RightIndex).unwrap(),
            "\"Right IndexFinger\""
        );
        assert_eq!(serde_json::to_string(&Purpose::Unregistered).unwrap(), "\"\"");
        assert_eq!(
            serde_json::to_string(&Env::PreProduction).unwrap(),
            "\"Pre-Production\""
        );
    }

    #[test]
    fn capture_response_rejects_extras() {
        let bad = br#"{"biometrics":[],"extra":1}"#;
        let err = parse::<CaptureResponse>("RCAPTURE response", bad).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }

    #[test]
    fn segments_of_slaps() {
        assert_eq!(
            BioSubType::segments_of(BioType::Finger, DeviceSubId::Both),
            &[BioSubType::LeftThumb, BioSubType::RightThumb]
        );
        for s in BioSubType::FINGERS {
            assert!(s.belongs_to(BioType::Finger));
            assert!(!s.belongs_to(BioType::Iris));
        }
    }
}
