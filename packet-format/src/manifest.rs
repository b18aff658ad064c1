//! The manifest (readable without keys, no personal data), the machine signature and sign-offs.
//!
//! **Frozen format.** See `docs/packet-format.md`. Minor versions may add optional fields (unknown fields
//! are ignored on read); a new major version is rejected by this reader.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::PacketError;
use crate::ids::{CenterId, MachineId, Rid};
use crate::keys::key_id;
use crate::types::PacketType;

/// The format name in every manifest.
pub const FORMAT_NAME: &str = "tessera-packet";
/// The major format version this crate writes and reads.
pub const FORMAT_MAJOR: u32 = 1;
/// The minor format version this crate writes.
pub const FORMAT_MINOR: u32 = 0;

const MANIFEST_DOMAIN: &str = "TESSERA-PACKET-MANIFEST-V1";
const SIGNOFF_DOMAIN: &str = "TESSERA-PACKET-SIGNOFF-V1";

/// The three sections, in container order.
pub const SECTIONS: [&str; 3] = ["id", "evidence", "optional"];

/// Size and hashes of one sealed section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SectionInfo {
    /// `id`, `evidence` or `optional`.
    pub name: String,
    /// Container entry name, `<name>.age`.
    pub file: String,
    /// Bytes of the age file.
    pub ciphertext_size: u64,
    /// Lowercase hex SHA-256 of the age file.
    pub ciphertext_sha256: String,
    /// Bytes of the decrypted section (a ustar archive).
    pub plaintext_size: u64,
    /// Lowercase hex SHA-256 of the decrypted section.
    pub plaintext_sha256: String,
}

/// The packet manifest: stored as `manifest.json`, signed by the machine key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always `"tessera-packet"`.
    pub format: String,
    /// `"<major>.<minor>"`.
    pub format_version: String,
    /// Registration id.
    pub rid: Rid,
    /// Process.
    pub packet_type: PacketType,
    /// Center.
    pub center_id: CenterId,
    /// Machine.
    pub machine_id: MachineId,
    /// Creation time (station clock, UTC, RFC 3339 with milliseconds).
    pub created_at: DateTime<Utc>,
    /// ID-schema version of the demographics.
    pub id_schema_version: String,
    /// Key id (hex SHA-256) of the machine key that signed this manifest.
    pub machine_key_id: String,
    /// The age recipients (server packet public keys) the sections are encrypted to.
    pub recipients: Vec<String>,
    /// The sections, in container order.
    pub sections: Vec<SectionInfo>,
}

impl Manifest {
    /// Parses manifest bytes, checking the format name and major version.
    pub fn parse(bytes: &[u8]) -> Result<Self, PacketError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            format: String,
            format_version: String,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| PacketError::Manifest {
            reason: e.to_string(),
        })?;
        if probe.format != FORMAT_NAME {
            return Err(PacketError::Manifest {
                reason: format!("format is {:?}, expected {FORMAT_NAME:?}", probe.format),
            });
        }
        let major = probe
            .format_version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| PacketError::Manifest {
                reason: format!("formatVersion {:?} is not <major>.<minor>", probe.format_version),
            })?;
        if major != FORMAT_MAJOR {
            return Err(PacketError::UnsupportedVersion {
                found: probe.format_version,
                supported: FORMAT_MAJOR,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| PacketError::Manifest {
            reason: e.to_string(),
        })
    }

    /// Serialises the manifest (pretty JSON, stable field order).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PacketError> {
        let mut v = serde_json::to_vec_pretty(self).map_err(|e| PacketError::InvalidInput {
            reason: format!("manifest does not serialise: {e}"),
        })?;
        v.push(b'\n');
        Ok(v)
    }
}

/// SHA-256 of the exact `manifest.json` bytes: what every signature covers.
pub fn manifest_digest(manifest_bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(manifest_bytes).into()
}

/// The machine's signature over the manifest (`manifest.sig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineSignature {
    /// Always `"Ed25519"`.
    pub algorithm: String,
    /// Key id of the signing key.
    pub key_id: String,
    /// Base64 Ed25519 signature over `TESSERA-PACKET-MANIFEST-V1\n<hex manifest digest>\n`.
    pub signature: String,
}

fn manifest_message(digest: &[u8; 32]) -> String {
    format!("{MANIFEST_DOMAIN}\n{}\n", hex::encode(digest))
}

impl MachineSignature {
    /// Signs a manifest digest.
    pub fn sign(digest: &[u8; 32], key: &SigningKey) -> Self {
        let sig = key.sign(manifest_message(digest).as_bytes());
        Self {
            algorithm: "Ed25519".into(),
            key_id: key_id(&key.verifying_key()),
            signature: STANDARD.encode(sig.to_bytes()),
        }
    }

    /// Verifies against a digest and the expected machine key.
    pub fn verify(
        &self,
        digest: &[u8; 32],
        key: &VerifyingKey,
        machine: &MachineId,
    ) -> Result<(), PacketError> {
        if self.algorithm != "Ed25519" {
            return Err(PacketError::BadSignature {
                what: format!(
                    "machine signature (algorithm {:?} is not Ed25519)",
                    self.algorithm
                ),
            });
        }
        let expected = key_id(key);
        if self.key_id != expected {
            return Err(PacketError::WrongMachineKey {
                expected,
                found: self.key_id.clone(),
                machine: machine.to_string(),
            });
        }
        let sig = decode_signature(&self.signature, "machine signature")?;
        key.verify(manifest_message(digest).as_bytes(), &sig)
            .map_err(|_| PacketError::BadSignature {
                what: "machine signature".into(),
            })
    }
}

fn decode_signature(b64: &str, what: &str) -> Result<Signature, PacketError> {
    let bytes = STANDARD.decode(b64).map_err(|e| PacketError::BadSignature {
        what: format!("{what} (signature is not base64: {e})"),
    })?;
    let arr: [u8; 64] = bytes.try_into().map_err(|_| PacketError::BadSignature {
        what: format!("{what} (signature is not 64 bytes)"),
    })?;
    Ok(Signature::from_bytes(&arr))
}

/// Who signs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignOffRole {
    /// The registration officer who captured the packet.
    Officer,
    /// The supervisor who reviewed it.
    Supervisor,
}

impl SignOffRole {
    fn as_str(self) -> &'static str {
        match self {
            Self::Officer => "officer",
            Self::Supervisor => "supervisor",
        }
    }
}

/// The decision a sign-off records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum Decision {
    /// Approved (for an officer: "I captured this").
    Approved,
    /// Rejected, with a reason code from the synced reason list.
    Rejected {
        /// Reason code.
        reason: String,
    },
}

/// An officer's or supervisor's signature over the manifest digest, stored as `signoff-<n>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignOff {
    /// Role.
    pub role: SignOffRole,
    /// Operator id (no newlines; 1-64 characters).
    pub operator_id: String,
    /// Decision.
    #[serde(flatten)]
    pub decision: Decision,
    /// When (station clock).
    pub at: DateTime<Utc>,
    /// The signer's Ed25519 public key, base64. The server checks it belongs to `operator_id`.
    pub public_key: String,
    /// Base64 Ed25519 signature over the sign-off message (see `docs/packet-format.md`).
    pub signature: String,
}

fn valid_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| !c.is_control())
}

impl SignOff {
    fn message(
        role: SignOffRole,
        operator_id: &str,
        decision: &Decision,
        at: &DateTime<Utc>,
        digest: &[u8; 32],
    ) -> String {
        let (d, reason) = match decision {
            Decision::Approved => ("approved", ""),
            Decision::Rejected { reason } => ("rejected", reason.as_str()),
        };
        format!(
            "{SIGNOFF_DOMAIN}\n{}\n{}\n{operator_id}\n{d}\n{reason}\n{}\n",
            hex::encode(digest),
            role.as_str(),
            at.to_rfc3339_opts(SecondsFormat::Millis, true)
        )
    }

    /// Creates and signs a sign-off over `digest`.
    pub fn create(
        role: SignOffRole,
        operator_id: &str,
        decision: Decision,
        at: DateTime<Utc>,
        digest: &[u8; 32],
        key: &SigningKey,
    ) -> Result<Self, PacketError> {
        if !valid_token(operator_id) {
            return Err(PacketError::InvalidInput {
                reason: "operator id must be 1-64 characters without control characters".into(),
            });
        }
        if let Decision::Rejected { reason } = &decision
            && !valid_token(reason)
        {
            return Err(PacketError::InvalidInput {
                reason: "rejection reason must be 1-64 characters without control characters".into(),
            });
        }
        // Normalise to millisecond precision so the signed text and the stored time agree.
        let at = DateTime::parse_from_rfc3339(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(at);
        let sig = key.sign(Self::message(role, operator_id, &decision, &at, digest).as_bytes());
        Ok(Self {
            role,
            operator_id: operator_id.to_owned(),
            decision,
            at,
            public_key: STANDARD.encode(key.verifying_key().as_bytes()),
            signature: STANDARD.encode(sig.to_bytes()),
        })
    }

    /// The signer's public key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, PacketError> {
        let what = format!("sign-off by {} {}", self.role.as_str(), self.operator_id);
        let bytes = STANDARD
            .decode(&self.public_key)
            .map_err(|_| PacketError::BadSignature {
                what: format!("{what} (public key is not base64)"),
            })?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| PacketError::BadSignature {
            what: format!("{what} (public key is not 32 bytes)"),
        })?;
        VerifyingKey::from_bytes(&arr).map_err(|_| PacketError::BadSignature {
            what: format!("{what} (not an Ed25519 public key)"),
        })
    }

    /// Verifies the signature over `digest` with the embedded public key. Whether that key belongs to
    /// `operator_id` is for the caller to check against its operator registry.
    pub fn verify(&self, digest: &[u8; 32]) -> Result<(), PacketError> {
        let what = format!("sign-off by {} {}", self.role.as_str(), self.operator_id);
        let key = self.verifying_key()?;
        let sig = decode_signature(&self.signature, &what)?;
        key.verify(
            Self::message(self.role, &self.operator_id, &self.decision, &self.at, digest).as_bytes(),
            &sig,
        )
        .map_err(|_| PacketError::BadSignature { what })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate_signing_key;

    #[test]
    fn signoff_verifies_and_detects_changes() {
        let k = generate_signing_key().unwrap();
        let d = [7u8; 32];
        let s = SignOff::create(
            SignOffRole::Supervisor,
            "sup01",
            Decision::Rejected {
                reason: "BLURRED_PHOTO".into(),
            },
            DateTime::UNIX_EPOCH,
            &d,
            &k,
        )
        .unwrap();
        s.verify(&d).unwrap();
        assert!(s.verify(&[8u8; 32]).is_err());
        let mut t = s.clone();
        t.decision = Decision::Approved;
        assert_eq!(t.verify(&d).unwrap_err().kind(), "bad_signature");
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"decision\":\"rejected\""), "{json}");
        let back: SignOff = serde_json::from_str(&json).unwrap();
        back.verify(&d).unwrap();
    }

    #[test]
    fn signoff_rejects_newlines_in_ids() {
        let k = generate_signing_key().unwrap();
        let e = SignOff::create(
            SignOffRole::Officer,
            "a\nb",
            Decision::Approved,
            DateTime::UNIX_EPOCH,
            &[0; 32],
            &k,
        )
        .unwrap_err();
        assert_eq!(e.kind(), "invalid_input");
    }

    #[test]
    fn unknown_major_version_is_rejected_and_minor_tolerated() {
        let e = Manifest::parse(br#"{"format":"tessera-packet","formatVersion":"2.0"}"#).unwrap_err();
        assert!(
            matches!(e, PacketError::UnsupportedVersion { supported: 1, .. }),
            "{e}"
        );
        let e = Manifest::parse(br#"{"format":"zip","formatVersion":"1.0"}"#).unwrap_err();
        assert_eq!(e.kind(), "malformed_manifest");
        let e = Manifest::parse(b"{not json").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}
