//! Sync API wire types shared by the station and the server (API version 1, paths under `/api/v1`).
//!
//! **Frozen format.** Stations in the field speak this protocol for years. Adding an optional field is a
//! minor change; renaming or removing a field, or changing a signing message, is a new API version.
//!
//! What lives here:
//! - request authentication: [`request_signing_message`], [`sign_request`] and the [`headers`] names; the
//!   server checks the same message with the machine's enrolled Ed25519 key;
//! - machine enrolment: [`EnrolmentRequest`] (with a proof of possession of the key,
//!   [`enrolment_proof_message`]) and [`EnrolmentResponse`];
//! - delta sync by cursor: [`SyncKind`], [`SyncPage`], [`SyncItem`];
//! - packet upload (tus 1.0 core, creation and checksum extensions; see `docs/api.md`): [`upload_metadata`],
//!   [`SignedReceipt`] / [`Receipt`];
//! - packet status per RID: [`PacketStatus`], [`PacketStatusResponse`];
//! - the error body every endpoint returns on failure: [`ErrorBody`];
//! - the station set-up kit an administrator hands over to create a station offline: [`kit`].
//!
//! Server responses to station requests carry an Ed25519 signature of the body by the server signing key in
//! [`headers::SERVER_SIGNATURE`]; check it with [`verify_server_signature`].
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use tessera_packet::{ids::MachineId, wire};
//! let key = SigningKey::from_bytes(&[7u8; 32]); // test vector, never a real key
//! let machine: MachineId = "10001".parse().unwrap();
//! let auth = wire::sign_request(&key, &machine, "GET", "/api/v1/machines/me", 1_700_000_000, "00ff", b"");
//! assert!(auth.verify(&key.verifying_key(), "GET", "/api/v1/machines/me", b"").is_ok());
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::ids::{CenterId, MachineId, Rid};

pub mod kit;

/// The API version segment of every path (`/api/v1/...`).
pub const API_VERSION: &str = "v1";

/// The tus protocol version the upload endpoints speak.
pub const TUS_VERSION: &str = "1.0.0";

/// HTTP header names of the protocol (lower case, as HTTP/2 sends them).
pub mod headers {
    /// The enrolled machine id making a signed request.
    pub const MACHINE: &str = "x-tessera-machine";
    /// Unix time in seconds when the station signed the request.
    pub const TIMESTAMP: &str = "x-tessera-timestamp";
    /// A random value, 16 to 64 hex characters, never reused by a machine within the validity window.
    pub const NONCE: &str = "x-tessera-nonce";
    /// Base64 (standard, padded) Ed25519 signature of [`super::request_signing_message`].
    pub const SIGNATURE: &str = "x-tessera-signature";
    /// Base64 Ed25519 signature of the response body by the server signing key.
    pub const SERVER_SIGNATURE: &str = "x-tessera-server-signature";
    /// The request id, echoed on every response (and in [`super::ErrorBody::request_id`]).
    pub const REQUEST_ID: &str = "x-request-id";
}

/// Why a signature, receipt or header failed to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A base64 field could not be decoded.
    #[error("{field} is not valid base64")]
    Base64 {
        /// Which field.
        field: &'static str,
    },
    /// A key or signature has the wrong length.
    #[error("{field} must be {expected} bytes, got {actual}")]
    Length {
        /// Which field.
        field: &'static str,
        /// Required length in bytes.
        expected: usize,
        /// Length received.
        actual: usize,
    },
    /// A public key is not a valid Ed25519 point.
    #[error("{field} is not a valid Ed25519 public key")]
    PublicKey {
        /// Which field.
        field: &'static str,
    },
    /// The signature does not match the message and key.
    #[error("the signature in {field} does not match; the data was altered or signed with another key")]
    BadSignature {
        /// Which field.
        field: &'static str,
    },
    /// A signed JSON payload could not be parsed.
    #[error("{field} is not valid JSON for its type: {reason}")]
    Json {
        /// Which field.
        field: &'static str,
        /// The parser's message.
        reason: String,
    },
}

/// Decodes standard base64 into exactly `N` bytes.
pub fn decode_fixed<const N: usize>(field: &'static str, b64: &str) -> Result<[u8; N], WireError> {
    let bytes = B64.decode(b64.trim()).map_err(|_| WireError::Base64 { field })?;
    let actual = bytes.len();
    bytes.try_into().map_err(|_| WireError::Length {
        field,
        expected: N,
        actual,
    })
}

/// Encodes bytes as standard padded base64.
pub fn encode_b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Parses a base64 Ed25519 public key.
pub fn decode_public_key(field: &'static str, b64: &str) -> Result<VerifyingKey, WireError> {
    let bytes = decode_fixed::<32>(field, b64)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| WireError::PublicKey { field })
}

fn verify_b64_signature(
    key: &VerifyingKey,
    field: &'static str,
    message: &[u8],
    signature_b64: &str,
) -> Result<(), WireError> {
    let sig = Signature::from_bytes(&decode_fixed::<64>(field, signature_b64)?);
    key.verify_strict(message, &sig)
        .map_err(|_| WireError::BadSignature { field })
}

/// The exact bytes a station signs to authenticate a request:
///
/// ```text
/// TESSERA-REQUEST-V1\n<METHOD>\n<path and query>\n<unix seconds>\n<nonce>\n<hex SHA-256 of the body>
/// ```
/// `path_and_query` is the request target as sent (e.g. `/api/v1/sync/master-data?cursor=0`), without
/// scheme or host, so a proxy that rewrites the host keeps signatures valid.
pub fn request_signing_message(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    request_signing_message_for_digest(
        method,
        path_and_query,
        timestamp,
        nonce,
        &Sha256::digest(body).into(),
    )
}

/// [`request_signing_message`] from the body's SHA-256, for a caller that needs the digest anyway (the
/// server's upload hashes a packet chunk once for the signature and its own checks).
pub fn request_signing_message_for_digest(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body_sha256: &[u8; 32],
) -> Vec<u8> {
    let body_hash = hex::encode(body_sha256);
    format!(
        "TESSERA-REQUEST-V1\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path_and_query,
        timestamp,
        nonce,
        body_hash
    )
    .into_bytes()
}

/// The authentication headers of one signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAuth {
    /// The machine id.
    pub machine_id: MachineId,
    /// Unix seconds at signing.
    pub timestamp: i64,
    /// The nonce (hex).
    pub nonce: String,
    /// Base64 signature.
    pub signature: String,
}

impl RequestAuth {
    /// The four headers as (name, value) pairs, ready to add to a request.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (headers::MACHINE, self.machine_id.as_str().to_owned()),
            (headers::TIMESTAMP, self.timestamp.to_string()),
            (headers::NONCE, self.nonce.clone()),
            (headers::SIGNATURE, self.signature.clone()),
        ]
    }

    /// Checks the signature against `key` for this method, target and body (not expiry or replay, which need
    /// the server's clock and nonce store).
    pub fn verify(
        &self,
        key: &VerifyingKey,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<(), WireError> {
        self.verify_digest(key, method, path_and_query, &Sha256::digest(body).into())
    }

    /// [`RequestAuth::verify`] given the body's SHA-256 instead of the body.
    pub fn verify_digest(
        &self,
        key: &VerifyingKey,
        method: &str,
        path_and_query: &str,
        body_sha256: &[u8; 32],
    ) -> Result<(), WireError> {
        let msg = request_signing_message_for_digest(
            method,
            path_and_query,
            self.timestamp,
            &self.nonce,
            body_sha256,
        );
        verify_b64_signature(key, headers::SIGNATURE, &msg, &self.signature)
    }
}

/// Signs a request with the machine key. `nonce` must be fresh (e.g. 16 random bytes in hex).
pub fn sign_request(
    key: &SigningKey,
    machine_id: &MachineId,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> RequestAuth {
    let msg = request_signing_message(method, path_and_query, timestamp, nonce, body);
    RequestAuth {
        machine_id: machine_id.clone(),
        timestamp,
        nonce: nonce.to_owned(),
        signature: encode_b64(&key.sign(&msg).to_bytes()),
    }
}

/// Verifies a server response signature ([`headers::SERVER_SIGNATURE`]) over the exact body bytes.
pub fn verify_server_signature(
    server_key: &VerifyingKey,
    body: &[u8],
    signature_b64: &str,
) -> Result<(), WireError> {
    verify_b64_signature(server_key, headers::SERVER_SIGNATURE, body, signature_b64)
}

/// `GET /api/v1/server-info` (no authentication): what a station pins and its clock offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerInfo {
    /// The API version, `"v1"`.
    pub api_version: String,
    /// The server's clock when it answered; stations record the offset (never a reason to refuse).
    pub server_time: DateTime<Utc>,
    /// Base64 Ed25519 public key that signs responses and receipts.
    pub signing_public_key: String,
    /// Largest sealed packet the server accepts, in bytes.
    pub max_packet_bytes: u64,
    /// How far a request timestamp may be from the server clock, in seconds.
    pub request_validity_secs: u64,
}

/// The message a station signs with the key it enrols, proving it holds the private half:
/// `TESSERA-ENROL-V1\n<center id>\n<base64 public key>\n<name>`.
pub fn enrolment_proof_message(center_id: &CenterId, public_key_b64: &str, name: &str) -> Vec<u8> {
    format!("TESSERA-ENROL-V1\n{}\n{}\n{}", center_id, public_key_b64, name).into_bytes()
}

/// `POST /api/v1/machines/enrol` (no authentication; proof of possession in the body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentRequest {
    /// Base64 Ed25519 public key of the machine.
    pub public_key: String,
    /// The center the machine serves.
    pub center_id: CenterId,
    /// A human label (host name, asset tag); 1 to 100 characters, no control characters.
    pub name: String,
    /// Base64 signature of [`enrolment_proof_message`] by the machine key.
    pub proof: String,
}

impl EnrolmentRequest {
    /// Builds a request and its proof for `key`.
    pub fn new(key: &SigningKey, center_id: CenterId, name: impl Into<String>) -> Self {
        let name = name.into();
        let public_key = encode_b64(key.verifying_key().as_bytes());
        let proof = encode_b64(
            &key.sign(&enrolment_proof_message(&center_id, &public_key, &name))
                .to_bytes(),
        );
        Self {
            public_key,
            center_id,
            name,
            proof,
        }
    }

    /// Checks the proof of possession and returns the public key.
    pub fn verify(&self) -> Result<VerifyingKey, WireError> {
        let key = decode_public_key("public_key", &self.public_key)?;
        let msg = enrolment_proof_message(&self.center_id, &self.public_key, &self.name);
        verify_b64_signature(&key, "proof", &msg, &self.proof)?;
        Ok(key)
    }
}

/// Where a machine stands with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MachineStatus {
    /// Enrolment requested, waiting for an administrator.
    Pending,
    /// Approved: may sync and upload.
    Active,
    /// Suspended by an administrator: every signed request is refused with `machine_suspended`.
    Suspended,
}

impl MachineStatus {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(Self::Pending),
            "ACTIVE" => Some(Self::Active),
            "SUSPENDED" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// Answer to an enrolment request (the same machine id again when the key was already enrolled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentResponse {
    /// The machine id the server assigned; it goes into every RID the station makes.
    pub machine_id: MachineId,
    /// Pending until an administrator approves.
    pub status: MachineStatus,
}

/// A machine as the server knows it (`GET /api/v1/machines/me`, admin listing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineInfo {
    /// Machine id.
    pub machine_id: MachineId,
    /// Center id.
    pub center_id: CenterId,
    /// Label given at enrolment.
    pub name: String,
    /// Base64 public key.
    pub public_key: String,
    /// Current status.
    pub status: MachineStatus,
    /// When enrolment was requested.
    pub requested_at: DateTime<Utc>,
    /// Why the machine was suspended, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

/// What a station can sync; the path segment of `GET /api/v1/sync/{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncKind {
    /// ID schema versions (key: version).
    IdSchema,
    /// UI specifications per process (key: process name).
    UiSpec,
    /// Master data: centers, document types, dynamic lists, locations, holidays, ... (key: `<table>/<code>`).
    MasterData,
    /// Operators and supervisors of the station's center (key: operator id).
    Operators,
    /// Device provider CA certificates and other trust anchors (key: certificate id).
    Certificates,
    /// The server's active packet-recipient (age X25519) public keys (key: key id).
    PacketKeys,
    /// Pre-registrations booked at the station's center (key: pre-registration id).
    PreRegistrations,
}

impl SyncKind {
    /// Every kind, in the order a first sync should fetch them.
    pub const ALL: [SyncKind; 7] = [
        Self::IdSchema,
        Self::UiSpec,
        Self::MasterData,
        Self::Operators,
        Self::Certificates,
        Self::PacketKeys,
        Self::PreRegistrations,
    ];

    /// The path segment and database name, e.g. `"master-data"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdSchema => "id-schema",
            Self::UiSpec => "ui-spec",
            Self::MasterData => "master-data",
            Self::Operators => "operators",
            Self::Certificates => "certificates",
            Self::PacketKeys => "packet-keys",
            Self::PreRegistrations => "pre-registrations",
        }
    }

    /// Parses the path segment.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether items of this kind are scoped to a center (a station only receives its own center's).
    pub fn center_scoped(self) -> bool {
        matches!(self, Self::Operators | Self::PreRegistrations)
    }
}

/// One changed item in a sync page. A deleted item has `deleted: true` and a `null` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncItem {
    /// The item's key within its kind.
    pub key: String,
    /// Monotonic change number; a later change of the same key has a larger one.
    pub version: i64,
    /// True when the item was removed.
    pub deleted: bool,
    /// The item itself (JSON), `null` when deleted.
    pub body: serde_json::Value,
}

/// `GET /api/v1/sync/{kind}?cursor=<cursor>&limit=<n>`: the changes after `cursor`, oldest first.
///
/// Start with no cursor; store `next_cursor` only after applying the page; repeat while `has_more`.
/// The cursor is opaque to stations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncPage {
    /// Which kind this page holds.
    pub kind: SyncKind,
    /// Changed items, in change order.
    pub items: Vec<SyncItem>,
    /// Cursor to send next time.
    pub next_cursor: String,
    /// Whether more changes are waiting.
    pub has_more: bool,
}

/// The tus `Upload-Metadata` header value for a packet: `rid <b64>,sha256 <b64 of hex digest>`.
pub fn upload_metadata(rid: &Rid, sha256_hex: &str) -> String {
    format!(
        "rid {},sha256 {}",
        encode_b64(rid.as_str().as_bytes()),
        encode_b64(sha256_hex.as_bytes())
    )
}

/// The tus `Upload-Checksum` header value for a chunk: `sha256 <b64 of the raw digest>`.
pub fn upload_checksum(chunk: &[u8]) -> String {
    format!("sha256 {}", encode_b64(&Sha256::digest(chunk)))
}

/// What the server acknowledges once a packet is completely received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The packet.
    pub rid: Rid,
    /// The machine that uploaded it.
    pub machine_id: MachineId,
    /// Hex SHA-256 of the whole sealed packet file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// When the server stored it.
    pub received_at: DateTime<Utc>,
}

/// A receipt signed by the server signing key: the station may delete its copy of the packet after checking
/// it (`verify`) and after the status reaches a final state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    /// The [`Receipt`] as JSON text, exactly the bytes signed.
    pub payload: String,
    /// Base64 Ed25519 signature of `payload`'s UTF-8 bytes.
    pub signature: String,
}

impl SignedReceipt {
    /// Signs a receipt.
    pub fn sign(receipt: &Receipt, key: &SigningKey) -> Result<Self, WireError> {
        let payload = serde_json::to_string(receipt).map_err(|e| WireError::Json {
            field: "payload",
            reason: e.to_string(),
        })?;
        let signature = encode_b64(&key.sign(payload.as_bytes()).to_bytes());
        Ok(Self { payload, signature })
    }

    /// Checks the signature with the server key and returns the receipt.
    pub fn verify(&self, server_key: &VerifyingKey) -> Result<Receipt, WireError> {
        verify_b64_signature(server_key, "signature", self.payload.as_bytes(), &self.signature)?;
        serde_json::from_str(&self.payload).map_err(|e| WireError::Json {
            field: "payload",
            reason: e.to_string(),
        })
    }
}

/// Where a packet is in the server's pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PacketStatus {
    /// An upload was started but is not complete.
    Uploading,
    /// Completely received and queued for processing.
    Received,
    /// In the processing pipeline.
    Processing,
    /// Held for manual adjudication (possible duplicate).
    OnHold,
    /// Processed: identity created or updated.
    Processed,
    /// Rejected as a duplicate of an existing identity.
    Duplicate,
    /// Rejected: invalid or tampered; `reason` says why. May be reprocessed after a fix.
    Quarantined,
    /// Rejected by validation (ID schema, packet type rules, missing documents or biometrics, sign-offs):
    /// `reason` carries a stable code such as `validate:required_missing:fullName`. Final: the resident must
    /// register again.
    Rejected,
}

impl PacketStatus {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploading => "UPLOADING",
            Self::Received => "RECEIVED",
            Self::Processing => "PROCESSING",
            Self::OnHold => "ON_HOLD",
            Self::Processed => "PROCESSED",
            Self::Duplicate => "DUPLICATE",
            Self::Quarantined => "QUARANTINED",
            Self::Rejected => "REJECTED",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Uploading,
            Self::Received,
            Self::Processing,
            Self::OnHold,
            Self::Processed,
            Self::Duplicate,
            Self::Quarantined,
            Self::Rejected,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Whether the station may delete its copy (the server will not ask for it again).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Processed | Self::Duplicate | Self::Rejected)
    }
}

/// The message an operator's key signs to prove possession when a station registers it:
/// `TESSERA-OPERATOR-KEY-V1\n<machine id>\n<operator id>\n<base64 public key>`.
pub fn operator_key_proof_message(
    machine_id: &MachineId,
    operator_id: &str,
    public_key_b64: &str,
) -> Vec<u8> {
    format!("TESSERA-OPERATOR-KEY-V1\n{machine_id}\n{operator_id}\n{public_key_b64}").into_bytes()
}

/// `POST /api/v1/operators/keys` (signed by the machine): registers the Ed25519 key an operator signs
/// packet sign-offs with on this station. The server accepts sign-offs only from registered keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorKeyRegistration {
    /// Operator id (1-64 of `[A-Za-z0-9._-]`).
    pub operator_id: String,
    /// Base64 Ed25519 public key.
    pub public_key: String,
    /// Base64 signature of [`operator_key_proof_message`] by the operator key.
    pub proof: String,
}

impl OperatorKeyRegistration {
    /// Builds a registration of `key` for `operator_id` on `machine_id`.
    pub fn new(key: &SigningKey, machine_id: &MachineId, operator_id: &str) -> Self {
        let public_key = encode_b64(key.verifying_key().as_bytes());
        let proof = encode_b64(
            &key.sign(&operator_key_proof_message(machine_id, operator_id, &public_key))
                .to_bytes(),
        );
        Self {
            operator_id: operator_id.to_owned(),
            public_key,
            proof,
        }
    }

    /// Checks the proof of possession for `machine_id` and returns the key.
    pub fn verify(&self, machine_id: &MachineId) -> Result<VerifyingKey, WireError> {
        let key = decode_public_key("public_key", &self.public_key)?;
        let msg = operator_key_proof_message(machine_id, &self.operator_id, &self.public_key);
        verify_b64_signature(&key, "proof", &msg, &self.proof)?;
        Ok(key)
    }
}

/// `GET /api/v1/packets/{rid}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketStatusResponse {
    /// The packet.
    pub rid: Rid,
    /// Its status.
    pub status: PacketStatus,
    /// A stable reason code when quarantined or on hold (never personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the status last changed.
    pub updated_at: DateTime<Utc>,
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Stable machine code, e.g. `machine_suspended`, `signature_invalid`, `replayed_request`.
    pub code: String,
    /// A message for the operator, saying what to do.
    pub message: String,
    /// The request id (also in the `x-request-id` header); quote it when reporting a problem.
    pub request_id: String,
}

// ---------------------------------------------------------------------------------------------
// Offline transfer (USB export by a station, import by the server)
// ---------------------------------------------------------------------------------------------

/// One entry of an export manifest: a packet file in the export folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportEntry {
    /// RID.
    pub rid: String,
    /// File name in the folder.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (hex) of the file.
    pub sha256: String,
}

/// `export-manifest.json`: what a station exported, signed with the machine key in `export-manifest.sig`
/// (base64 Ed25519 signature over the exact bytes of the manifest file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportManifest {
    /// Always `tessera-export`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// Center.
    pub center_id: String,
    /// Machine.
    pub machine_id: String,
    /// Machine public key (hex) that signed it.
    pub machine_public_key: String,
    /// When.
    pub exported_at: DateTime<Utc>,
    /// Exporting operator.
    pub operator_id: String,
    /// Packets.
    pub packets: Vec<ExportEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn signed_request_verifies_and_detects_changes() {
        let k = key(1);
        let m: MachineId = "10001".parse().unwrap();
        let auth = sign_request(&k, &m, "post", "/api/v1/x?a=1", 1_700_000_000, "abcd", b"{}");
        auth.verify(&k.verifying_key(), "POST", "/api/v1/x?a=1", b"{}")
            .unwrap();
        assert!(
            auth.verify(&k.verifying_key(), "POST", "/api/v1/x?a=2", b"{}")
                .is_err()
        );
        assert!(
            auth.verify(&k.verifying_key(), "PUT", "/api/v1/x?a=1", b"{}")
                .is_err()
        );
        assert!(
            auth.verify(&k.verifying_key(), "POST", "/api/v1/x?a=1", b"{ }")
                .is_err()
        );
        assert!(
            auth.verify(&key(2).verifying_key(), "POST", "/api/v1/x?a=1", b"{}")
                .is_err()
        );
        let digest: [u8; 32] = Sha256::digest(b"{}").into();
        auth.verify_digest(&k.verifying_key(), "POST", "/api/v1/x?a=1", &digest)
            .unwrap();
        let other: [u8; 32] = Sha256::digest(b"{ }").into();
        assert!(
            auth.verify_digest(&k.verifying_key(), "POST", "/api/v1/x?a=1", &other)
                .is_err()
        );
    }

    #[test]
    fn enrolment_proof_binds_center_and_name() {
        let k = key(3);
        let mut req = EnrolmentRequest::new(&k, "10002".parse().unwrap(), "desk-1");
        assert_eq!(req.verify().unwrap(), k.verifying_key());
        req.name = "desk-2".into();
        assert_eq!(req.verify(), Err(WireError::BadSignature { field: "proof" }));
    }

    #[test]
    fn receipt_round_trip_and_tamper() {
        let k = key(4);
        let r = Receipt {
            rid: "10001100010000120261129080000".parse().unwrap(),
            machine_id: "10001".parse().unwrap(),
            sha256: "00".repeat(32),
            size: 10,
            received_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let s = SignedReceipt::sign(&r, &k).unwrap();
        assert_eq!(s.verify(&k.verifying_key()).unwrap(), r);
        let mut t = s.clone();
        t.payload = t.payload.replace("\"size\":10", "\"size\":11");
        assert!(t.verify(&k.verifying_key()).is_err());
    }

    #[test]
    fn sync_kind_names_round_trip() {
        for k in SyncKind::ALL {
            assert_eq!(SyncKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
        }
    }

    proptest! {
        #[test]
        fn decode_fixed_never_panics(s in ".{0,200}") {
            let _ = decode_fixed::<32>("x", &s);
            let _ = decode_public_key("x", &s);
        }

        #[test]
        fn signature_check_never_panics(sig in ".{0,120}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let auth = RequestAuth { machine_id: "10001".parse().unwrap(), timestamp: 0, nonce: "aa".into(), signature: sig };
            prop_assert!(auth.verify(&key(9).verifying_key(), "GET", "/", &body).is_err());
        }
    }
}
