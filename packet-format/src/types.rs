//! The plaintext content of a packet: what the station captured, before sealing and after opening.
//!
//! **Frozen format.** These types are serialised into sealed packets that live for years. Adding an
//! optional field is a minor version change; renaming or removing one is a major version change (see
//! `docs/packet-format.md`). Unknown fields are tolerated on read so that minor additions stay readable.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CenterId, MachineId, PreRegId, Rid, Uin};

/// The registration process that produced a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PacketType {
    /// First registration of a resident.
    New,
    /// Update of an existing identity (UIN plus the changed field groups).
    Update,
    /// A resident who lost their UIN: biometrics mandatory, 1:N to find it.
    Lost,
    /// Biometric correction requested by the server.
    Correction,
    /// Server-generated: an update requested by the resident through the portal.
    ResUpdate,
    /// Server-generated: a credential reprint.
    Reprint,
}

impl PacketType {
    /// Whether stations may create this type (the others are server-generated).
    pub fn station_created(self) -> bool {
        matches!(self, Self::New | Self::Update | Self::Lost | Self::Correction)
    }

    /// The wire name, e.g. `"NEW"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Update => "UPDATE",
            Self::Lost => "LOST",
            Self::Correction => "CORRECTION",
            Self::ResUpdate => "RES_UPDATE",
            Self::Reprint => "REPRINT",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PacketType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "NEW" => Self::New,
            "UPDATE" => Self::Update,
            "LOST" => Self::Lost,
            "CORRECTION" => Self::Correction,
            "RES_UPDATE" => Self::ResUpdate,
            "REPRINT" => Self::Reprint,
            other => {
                return Err(format!(
                    "unknown packet type {other:?}; expected NEW, UPDATE, LOST, CORRECTION, RES_UPDATE or REPRINT"
                ));
            }
        })
    }
}

/// Biometric modality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    /// Fingerprint (ISO/IEC 19794-4 image).
    Finger,
    /// Iris (ISO/IEC 19794-6 image).
    Iris,
    /// Face (ISO/IEC 19794-5 image).
    Face,
}

/// One of the 13 MOSIP biometric attributes (ten fingers, two irises, face).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BioAttribute {
    /// Left iris.
    LeftEye,
    /// Right iris.
    RightEye,
    /// Left index finger.
    LeftIndex,
    /// Left middle finger.
    LeftMiddle,
    /// Left ring finger.
    LeftRing,
    /// Left little finger.
    LeftLittle,
    /// Left thumb.
    LeftThumb,
    /// Right index finger.
    RightIndex,
    /// Right middle finger.
    RightMiddle,
    /// Right ring finger.
    RightRing,
    /// Right little finger.
    RightLittle,
    /// Right thumb.
    RightThumb,
    /// Face.
    Face,
}

impl BioAttribute {
    /// All 13 attributes in a stable order.
    pub const ALL: [BioAttribute; 13] = [
        Self::RightThumb,
        Self::RightIndex,
        Self::RightMiddle,
        Self::RightRing,
        Self::RightLittle,
        Self::LeftThumb,
        Self::LeftIndex,
        Self::LeftMiddle,
        Self::LeftRing,
        Self::LeftLittle,
        Self::RightEye,
        Self::LeftEye,
        Self::Face,
    ];

    /// The modality this attribute belongs to.
    pub fn modality(self) -> Modality {
        match self {
            Self::LeftEye | Self::RightEye => Modality::Iris,
            Self::Face => Modality::Face,
            _ => Modality::Finger,
        }
    }

    /// The MOSIP attribute name, e.g. `"rightIndex"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeftEye => "leftEye",
            Self::RightEye => "rightEye",
            Self::LeftIndex => "leftIndex",
            Self::LeftMiddle => "leftMiddle",
            Self::LeftRing => "leftRing",
            Self::LeftLittle => "leftLittle",
            Self::LeftThumb => "leftThumb",
            Self::RightIndex => "rightIndex",
            Self::RightMiddle => "rightMiddle",
            Self::RightRing => "rightRing",
            Self::RightLittle => "rightLittle",
            Self::RightThumb => "rightThumb",
            Self::Face => "face",
        }
    }
}

impl fmt::Display for BioAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a biometric could not be captured normally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BioException {
    /// Kind of exception.
    pub kind: ExceptionKind,
    /// Officer's free-text remark (no personal data beyond what the officer writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
}

/// Kind of biometric exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExceptionKind {
    /// Permanently missing (amputation, congenital).
    Missing,
    /// Temporarily unusable (injury, bandage).
    Temporary,
}

/// The device that captured a biometric, as reported by SBI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRef {
    /// Device serial number.
    pub serial_no: String,
    /// Device provider (make).
    pub provider: String,
    /// Model.
    pub model: String,
    /// Device sub-type, e.g. "Slap", "Single", "Double", "Full face".
    pub device_sub_type: String,
    /// SBI spec version the device spoke, e.g. "0.9.5".
    pub spec_version: String,
}

/// One captured (or excepted) biometric.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BiometricRecord {
    /// Which finger, iris or face.
    pub attribute: BioAttribute,
    /// ISO/IEC 19794-4/-5/-6 image record bytes; empty when `exception` is set and nothing was captured.
    /// Serialised as base64 in JSON (the packet itself stores it as a separate file, see `docs/packet-format.md`).
    #[serde(with = "b64", default)]
    pub image: Vec<u8>,
    /// Format name of `image`, e.g. `"ISO19794_4_2011"`.
    pub format: String,
    /// Quality score 0-100 as computed at capture.
    pub quality: u8,
    /// How many capture attempts were made.
    pub retries: u32,
    /// Set when the biometric is missing or unusable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<BioException>,
    /// True when the officer accepted a capture below the quality threshold.
    #[serde(default)]
    pub force_captured: bool,
    /// The device's signed SBI data block (compact JWS) so the server can re-verify the device signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbi_data_block: Option<String>,
    /// The capturing device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceRef>,
    /// Capture time (device clock).
    pub captured_at: DateTime<Utc>,
}

impl fmt::Debug for BiometricRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print image bytes or the data block.
        f.debug_struct("BiometricRecord")
            .field("attribute", &self.attribute)
            .field("image_len", &self.image.len())
            .field("quality", &self.quality)
            .field("retries", &self.retries)
            .field("exception", &self.exception.as_ref().map(|e| e.kind))
            .finish_non_exhaustive()
    }
}

/// A document or exception photo (evidence section) or any optional attachment.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// Name unique within its section, `[A-Za-z0-9._-]{1,64}`, e.g. `"proofOfAddress"`.
    pub name: String,
    /// Document category code (POA, POI, POR, POE, POB) or `"EXCEPTION_PHOTO"`.
    pub category: String,
    /// Document type code from master data, e.g. `"DOC001"`.
    pub doc_type: String,
    /// MIME type of `content`, e.g. `"application/pdf"`, `"image/jpeg"`.
    pub mime: String,
    /// Reference number printed on the document, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_number: Option<String>,
    /// The bytes (base64 in JSON; a separate file inside the packet).
    #[serde(with = "b64", default)]
    pub content: Vec<u8>,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("name", &self.name)
            .field("category", &self.category)
            .field("mime", &self.mime)
            .field("len", &self.content.len())
            .finish_non_exhaustive()
    }
}

/// Geo-location of the capture, if the station has it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeoLocation {
    /// Latitude in degrees.
    pub latitude: f64,
    /// Longitude in degrees.
    pub longitude: f64,
    /// Accuracy radius in metres, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
}

/// The resident's consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    /// Whether consent was given.
    pub given: bool,
    /// Which consent text (template id or version) was shown.
    pub text_version: String,
    /// Language the text was shown in.
    pub language: String,
}

/// A supervisor's decision recorded at capture time (when the supervisor is present at the desk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupervisorDecision {
    /// Supervisor operator id.
    pub supervisor_id: String,
    /// Approved or not.
    pub approved: bool,
    /// Reason code from the synced reason list (rejections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// One event of the registration's audit trail. Never holds personal data: ids and actions only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// When (device clock).
    pub at: DateTime<Utc>,
    /// Operator id (or "system").
    pub actor: String,
    /// Action code, e.g. `"BIO_CAPTURE"`.
    pub action: String,
    /// Non-personal detail, e.g. `"rightIndex quality=72"`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Registration metadata, sealed inside the `id` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// Center.
    pub center_id: CenterId,
    /// Machine.
    pub machine_id: MachineId,
    /// Registration officer.
    pub operator_id: String,
    /// Supervisor decision at capture time, if taken then (post-seal approvals are sign-offs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<SupervisorDecision>,
    /// Devices used.
    #[serde(default)]
    pub devices: Vec<DeviceRef>,
    /// Geo-location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<GeoLocation>,
    /// Consent.
    pub consent: Consent,
    /// Languages used for data entry (primary first), ISO 639-3 codes such as `"eng"`, `"fra"`.
    pub languages: Vec<String>,
    /// Pre-registration id, if the registration was prefilled from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_registration_id: Option<PreRegId>,
    /// For UPDATE, LOST-found and CORRECTION: the identity concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uin: Option<Uin>,
    /// For UPDATE: the ID-schema field groups that change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_groups: Vec<String>,
    /// Station clock when the packet was created.
    pub device_clock: DateTime<Utc>,
    /// Last known offset (server minus station clock), in milliseconds, if the station ever synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_clock_offset_ms: Option<i64>,
    /// Audit trail of this registration.
    #[serde(default)]
    pub audit: Vec<AuditEvent>,
}

/// Everything a packet carries in plaintext. Sealing turns it into a [`crate::SealedPacket`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacketContent {
    /// Registration id.
    pub rid: Rid,
    /// Process.
    pub packet_type: PacketType,
    /// Creation time (station clock, UTC).
    pub created_at: DateTime<Utc>,
    /// ID-schema version the demographics follow, e.g. `"1.0"`.
    pub id_schema_version: String,
    /// Demographics as the ID-schema JSON object (`{"fullName": [{"language":"eng","value":"..."}], ...}`).
    pub identity: serde_json::Value,
    /// Registration metadata.
    pub meta: Meta,
    /// Biometric records (id section).
    pub biometrics: Vec<BiometricRecord>,
    /// Documents and exception photos (evidence section).
    pub evidence: Vec<Document>,
    /// Optional attachments (optional section).
    pub optional: Vec<Document>,
}

/// Serde helper: bytes as standard base64 strings.
mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}
