//! The station set-up kit: everything a new station needs to be created offline, in one file an administrator
//! hands over (USB drive), signed by the server.
//!
//! **Frozen format.** Kits outlive server versions on USB drives in drawers: [`KIT_FORMAT`] and
//! [`KIT_VERSION`] name the format; a reader refuses other versions with a clear message. Adding an optional
//! field is allowed within a version; anything else is a new version.
//!
//! The file is a JSON [`SignedStationKit`]: `format`, `version`, `payload` (the [`StationKit`] as JSON text,
//! exactly the bytes signed) and `signature` (base64 Ed25519 over [`kit_signing_message`]). The payload is
//! what a first sync would deliver (the same [`SyncPage`]s: ID schema, UI specs, master data, the center's
//! operators, device-provider certificates, packet keys), plus the center, a provisional machine id, the
//! server's address and signing key and the recovery public key. It holds the center's operators' password
//! hashes: treat the file as confidential and delete it once the station is set up.
//!
//! The signature is checked with the server key **inside** the kit, so it proves the content is intact and
//! comes from whoever holds that key; trust comes from the officer comparing that key's fingerprint
//! ([`key_fingerprint`]) with the one the administrator wrote on the handover slip. The station then pins that
//! key: enrolling with a server that has another key is refused.
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use tessera_packet::wire::kit::{SignedStationKit, StationKit};
//! let key = SigningKey::from_bytes(&[3u8; 32]); // test vector, never a real key
//! let kit = StationKit {
//!     center_id: "10001".into(),
//!     machine_id: "00000".into(),
//!     server_url: "https://tessera.example:8440".into(),
//!     server_key: tessera_packet::wire::encode_b64(key.verifying_key().as_bytes()),
//!     recovery_key: "age1...".into(),
//!     created_at: chrono::DateTime::UNIX_EPOCH,
//!     sections: vec![],
//! };
//! let bytes = SignedStationKit::sign(&kit, &key).unwrap().to_bytes().unwrap();
//! let back = SignedStationKit::parse(&bytes).unwrap().verify().unwrap();
//! assert_eq!(back, kit);
//! ```

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer as _, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{SyncPage, WireError, decode_public_key, encode_b64, verify_b64_signature};

/// The `format` field of every kit file.
pub const KIT_FORMAT: &str = "tessera-station-kit";

/// The kit version this code writes and reads.
pub const KIT_VERSION: u32 = 1;

/// Largest kit file accepted (the sample country's kit is about 150 KB).
pub const MAX_KIT_BYTES: usize = 16 * 1024 * 1024;

/// What a station is created from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StationKit {
    /// The station's center (5 digits).
    pub center_id: String,
    /// Provisional machine id until enrolment assigns one (5 digits).
    pub machine_id: String,
    /// The server's address, for enrolment and sync.
    pub server_url: String,
    /// The server's Ed25519 signing public key (base64); signs this kit and, later, every server answer.
    pub server_key: String,
    /// The recovery public key (`age1...`) the station seals its recovery key slot to.
    pub recovery_key: String,
    /// When the server made the kit.
    pub created_at: DateTime<Utc>,
    /// What a first sync would deliver, one page per kind, each complete (`has_more: false`).
    pub sections: Vec<SyncPage>,
}

/// The kit file: the signed payload and its format and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedStationKit {
    /// Always [`KIT_FORMAT`].
    pub format: String,
    /// [`KIT_VERSION`] when written by this code.
    pub version: u32,
    /// The [`StationKit`] as JSON text, exactly the bytes signed.
    pub payload: String,
    /// Base64 Ed25519 signature of [`kit_signing_message`] by the key in the payload's `serverKey`.
    pub signature: String,
}

/// Why a kit file cannot be used. Messages say what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KitError {
    /// Larger than [`MAX_KIT_BYTES`].
    #[error(
        "the file is {size} bytes, more than a station kit can be ({MAX_KIT_BYTES}); choose the kit file the administrator gave you"
    )]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// Not JSON, or not the kit's JSON.
    #[error(
        "this file is not a Tessera station kit ({reason}); choose the `.tkit` file the administrator gave you"
    )]
    NotAKit {
        /// What the parser said.
        reason: String,
    },
    /// The JSON stops in the middle.
    #[error(
        "the kit file is incomplete (it stops after {size} bytes): it was cut short while copying; copy it again or ask the administrator for a new one"
    )]
    Truncated {
        /// How many bytes were read.
        size: usize,
    },
    /// Another version of the format.
    #[error("this kit is version {found}, but this station reads version {KIT_VERSION}; {advice}")]
    Version {
        /// The kit's version.
        found: u32,
        /// What to do.
        advice: &'static str,
    },
    /// The signature does not match the payload.
    #[error(
        "the kit was changed after the server made it (its signature does not match its content); do not use it, ask the administrator for a new kit"
    )]
    Tampered,
    /// The payload is not a valid [`StationKit`].
    #[error("the kit's content is not valid: {reason}; ask the administrator for a new kit")]
    BadContent {
        /// What is wrong.
        reason: String,
    },
}

/// The exact bytes signed: a domain prefix, then the payload.
pub fn kit_signing_message(payload: &str) -> Vec<u8> {
    let mut m = b"TESSERA-STATION-KIT-V1\n".to_vec();
    m.extend_from_slice(payload.as_bytes());
    m
}

/// The fingerprint people compare for a public key: `SHA256:` and the upper-case hex SHA-256 of the key's
/// bytes in groups of four (the format the station shows for its machine key and the server key).
pub fn key_fingerprint(public_key: &[u8]) -> String {
    let hex = hex::encode_upper(Sha256::digest(public_key));
    let groups: Vec<&str> = hex
        .as_bytes()
        .chunks(4)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!("SHA256:{}", groups.join(" "))
}

impl SignedStationKit {
    /// Signs a kit with the server signing key (which must be the kit's `server_key`).
    pub fn sign(kit: &StationKit, key: &SigningKey) -> Result<Self, WireError> {
        let payload = serde_json::to_string(kit).map_err(|e| WireError::Json {
            field: "payload",
            reason: e.to_string(),
        })?;
        let signature = encode_b64(&key.sign(&kit_signing_message(&payload)).to_bytes());
        Ok(Self {
            format: KIT_FORMAT.into(),
            version: KIT_VERSION,
            payload,
            signature,
        })
    }

    /// The file's bytes (pretty JSON, so an administrator can look inside).
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        serde_json::to_vec_pretty(self).map_err(|e| WireError::Json {
            field: "kit",
            reason: e.to_string(),
        })
    }

    /// Parses a kit file's bytes (untrusted: never panics), checking format and version.
    pub fn parse(bytes: &[u8]) -> Result<Self, KitError> {
        if bytes.len() > MAX_KIT_BYTES {
            return Err(KitError::TooLarge { size: bytes.len() });
        }
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_eof() && bytes.iter().any(|b| !b.is_ascii_whitespace()) {
                KitError::Truncated { size: bytes.len() }
            } else {
                KitError::NotAKit {
                    reason: e.to_string(),
                }
            }
        })?;
        if v.get("format").and_then(|f| f.as_str()) != Some(KIT_FORMAT) {
            return Err(KitError::NotAKit {
                reason: format!("its `format` is not \"{KIT_FORMAT}\""),
            });
        }
        match v.get("version").and_then(|f| f.as_u64()) {
            Some(n) if n == u64::from(KIT_VERSION) => {}
            Some(n) => {
                let found = u32::try_from(n).unwrap_or(u32::MAX);
                return Err(KitError::Version {
                    found,
                    advice: if found > KIT_VERSION {
                        "update the station software, or ask the administrator for a kit for this version"
                    } else {
                        "ask the administrator for a new kit"
                    },
                });
            }
            None => {
                return Err(KitError::NotAKit {
                    reason: "it has no `version`".into(),
                });
            }
        }
        serde_json::from_value(v).map_err(|e| KitError::NotAKit {
            reason: e.to_string(),
        })
    }

    /// Checks the signature with the key inside the payload and returns the kit.
    pub fn verify(&self) -> Result<StationKit, KitError> {
        let kit: StationKit = serde_json::from_str(&self.payload).map_err(|e| {
            if e.is_eof() {
                KitError::Tampered
            } else {
                KitError::BadContent {
                    reason: e.to_string(),
                }
            }
        })?;
        let key = decode_public_key("serverKey", &kit.server_key).map_err(|e| KitError::BadContent {
            reason: e.to_string(),
        })?;
        verify_b64_signature(
            &key,
            "signature",
            &kit_signing_message(&self.payload),
            &self.signature,
        )
        .map_err(|e| match e {
            WireError::BadSignature { .. } => KitError::Tampered,
            other => KitError::BadContent {
                reason: other.to_string(),
            },
        })?;
        Ok(kit)
    }
}

impl StationKit {
    /// The server key's fingerprint ([`key_fingerprint`]), for the officer to compare.
    pub fn server_key_fingerprint(&self) -> Result<String, KitError> {
        let key = decode_public_key("serverKey", &self.server_key).map_err(|e| KitError::BadContent {
            reason: e.to_string(),
        })?;
        Ok(key_fingerprint(key.as_bytes()))
    }

    /// The section of one kind, if the kit has it.
    pub fn section(&self, kind: super::SyncKind) -> Option<&SyncPage> {
        self.sections.iter().find(|p| p.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{SyncItem, SyncKind};
    use proptest::prelude::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[5u8; 32]) // test vector
    }

    fn kit() -> StationKit {
        StationKit {
            center_id: "10001".into(),
            machine_id: "00000".into(),
            server_url: "http://127.0.0.1:8440".into(),
            server_key: encode_b64(key().verifying_key().as_bytes()),
            recovery_key: "age1qqqq".into(),
            created_at: DateTime::UNIX_EPOCH,
            sections: vec![SyncPage {
                kind: SyncKind::Operators,
                items: vec![SyncItem {
                    key: "officer1".into(),
                    version: 7,
                    deleted: false,
                    body: serde_json::json!({"id": "officer1"}),
                }],
                next_cursor: "7".into(),
                has_more: false,
            }],
        }
    }

    #[test]
    fn round_trip_and_fingerprint() {
        let bytes = SignedStationKit::sign(&kit(), &key())
            .unwrap()
            .to_bytes()
            .unwrap();
        let back = SignedStationKit::parse(&bytes).unwrap().verify().unwrap();
        assert_eq!(back, kit());
        assert!(back.section(SyncKind::Operators).is_some());
        assert!(back.section(SyncKind::PacketKeys).is_none());
        let fp = back.server_key_fingerprint().unwrap();
        assert!(fp.starts_with("SHA256:") && fp.len() == 7 + 64 + 15, "{fp}");
    }

    #[test]
    fn bad_kits_are_named() {
        let signed = SignedStationKit::sign(&kit(), &key()).unwrap();
        let bytes = signed.to_bytes().unwrap();
        // Truncated while copying.
        assert!(matches!(
            SignedStationKit::parse(&bytes[..bytes.len() / 2]),
            Err(KitError::Truncated { .. })
        ));
        // Not a kit at all.
        assert!(matches!(
            SignedStationKit::parse(b"%PDF-1.4"),
            Err(KitError::NotAKit { .. })
        ));
        assert!(matches!(
            SignedStationKit::parse(br#"{"format":"other","version":1}"#),
            Err(KitError::NotAKit { .. })
        ));
        // Another version.
        let mut v2 = signed.clone();
        v2.version = 2;
        let e = SignedStationKit::parse(&v2.to_bytes().unwrap()).unwrap_err();
        assert!(
            matches!(e, KitError::Version { found: 2, .. })
                && e.to_string().contains("update the station software"),
            "{e}"
        );
        // Tampered: another center, same signature.
        let mut t = signed.clone();
        t.payload = t.payload.replace("10001", "10002");
        assert_eq!(t.verify(), Err(KitError::Tampered));
        // Tampered: a different server key, signature by the first one.
        let mut other = kit();
        other.server_key = encode_b64(SigningKey::from_bytes(&[6u8; 32]).verifying_key().as_bytes());
        let mut t = signed.clone();
        t.payload = serde_json::to_string(&other).unwrap();
        assert_eq!(t.verify(), Err(KitError::Tampered));
        // Too large.
        assert!(matches!(
            SignedStationKit::parse(&vec![b' '; MAX_KIT_BYTES + 1]),
            Err(KitError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(k) = SignedStationKit::parse(&bytes) {
                let _ = k.verify();
            }
        }

        #[test]
        fn any_flipped_payload_byte_is_refused(i in 0usize..4096, bit in 0u8..8) {
            let signed = SignedStationKit::sign(&kit(), &key()).unwrap();
            let mut p = signed.payload.clone().into_bytes();
            let at = i % p.len();
            p[at] ^= 1 << bit;
            if let Ok(payload) = String::from_utf8(p) {
                let t = SignedStationKit { payload, ..signed };
                prop_assert!(t.verify().is_err());
            }
        }
    }
}
