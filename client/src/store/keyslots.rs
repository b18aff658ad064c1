//! Key slots: the one random 256-bit database key, wrapped once per operator (Argon2id of the password,
//! XChaCha20-Poly1305) and once for recovery (sealed with `age` to the server's recovery public key).
//!
//! The slots live in `keyslots.json` next to the database because they are needed before the database can be
//! opened. The file holds no secret in the clear: each slot is only as strong as the operator's password
//! under Argon2id, or the server's recovery key. Failed-login counters live here too, since a wrong
//! password cannot open the database to record them.
//!
//! Each operator slot also wraps the operator's Ed25519 signing key under the same password-derived key,
//! so a sign-off or approval needs that operator's password.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{self, KdfParams};
use crate::error::{Result, StationError};

/// Format version of `keyslots.json`.
pub const SLOT_FILE_FORMAT: u32 = 1;
const MAX_SLOT_FILE: u64 = 1024 * 1024;

/// The login policy enforced before the database is open; copied here from the synced station settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginPolicy {
    /// Failed attempts before a lockout.
    pub max_failed_attempts: u32,
    /// Lockout length in seconds.
    pub lockout_seconds: i64,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            max_failed_attempts: 5,
            lockout_seconds: 120,
        }
    }
}

/// The contents of `keyslots.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlotFile {
    /// Always [`SLOT_FILE_FORMAT`].
    pub format: u32,
    /// Login policy.
    pub policy: LoginPolicy,
    /// The slots.
    pub slots: Vec<Slot>,
}

/// One key slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Slot {
    /// An operator's slot.
    Operator(OperatorSlot),
    /// The recovery slot.
    Recovery(RecoverySlot),
}

/// A database key wrapped under an operator's password.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorSlot {
    /// Operator id.
    pub operator_id: String,
    /// Argon2id parameters.
    pub kdf: KdfParams,
    /// Argon2id salt (base64).
    pub salt: String,
    /// Nonce of the wrapped database key (base64).
    pub nonce: String,
    /// The wrapped database key (base64).
    pub wrapped_key: String,
    /// Nonce of the wrapped signing key (base64).
    pub signing_nonce: String,
    /// The operator's wrapped Ed25519 signing key (base64).
    pub wrapped_signing_key: String,
    /// The operator's Ed25519 public key (hex).
    pub public_key: String,
    /// Consecutive failed logins.
    #[serde(default)]
    pub failed_attempts: u32,
    /// Locked until, after too many failures.
    #[serde(default)]
    pub locked_until: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for OperatorSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorSlot")
            .field("operator_id", &self.operator_id)
            .field("public_key", &self.public_key)
            .field("failed_attempts", &self.failed_attempts)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

/// A database key sealed with age to the server's recovery key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecoverySlot {
    /// The age recipient (`age1...`) the key is sealed to.
    pub recipient: String,
    /// The age ciphertext (base64).
    pub sealed_key: String,
}

/// What unlocking an operator slot yields.
pub struct Unlocked {
    /// The database key.
    pub db_key: Zeroizing<[u8; 32]>,
    /// The operator's signing key.
    pub signing_key: SigningKey,
}

impl std::fmt::Debug for Unlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unlocked { .. }")
    }
}

fn aad_db(operator: &str) -> Vec<u8> {
    format!("tessera-station/db-key/v1/{operator}").into_bytes()
}
fn aad_sign(operator: &str) -> Vec<u8> {
    format!("tessera-station/signing-key/v1/{operator}").into_bytes()
}

fn decode<const N: usize>(path: &Path, what: &str, s: &str) -> Result<Vec<u8>> {
    let v = B64.decode(s).map_err(|e| StationError::SlotFile {
        path: path.to_path_buf(),
        detail: format!("{what} is not valid base64: {e}"),
    })?;
    if N != 0 && v.len() != N {
        return Err(StationError::SlotFile {
            path: path.to_path_buf(),
            detail: format!("{what} has {} bytes, expected {N}", v.len()),
        });
    }
    Ok(v)
}

fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    for (d, s) in a.iter_mut().zip(v) {
        *d = *s;
    }
    a
}

impl OperatorSlot {
    /// Wraps `db_key` and `signing_key` under `password`.
    pub fn create(
        operator_id: &str,
        password: &str,
        db_key: &[u8; 32],
        signing_key: &SigningKey,
        kdf: KdfParams,
    ) -> Result<Self> {
        let salt: [u8; 16] = crypto::random()?;
        let kek = crypto::derive_kek(password, &salt, kdf)?;
        let (nonce, wrapped) = crypto::wrap(&kek, db_key, &aad_db(operator_id))?;
        let (snonce, swrapped) = crypto::wrap(&kek, signing_key.as_bytes(), &aad_sign(operator_id))?;
        Ok(Self {
            operator_id: operator_id.to_owned(),
            kdf,
            salt: B64.encode(salt),
            nonce: B64.encode(nonce),
            wrapped_key: B64.encode(wrapped),
            signing_nonce: B64.encode(snonce),
            wrapped_signing_key: B64.encode(swrapped),
            public_key: hex::encode(signing_key.verifying_key().as_bytes()),
            failed_attempts: 0,
            locked_until: None,
        })
    }

    /// Unwraps the keys with `password`; `Ok(None)` when the password is wrong.
    pub fn unlock(&self, path: &Path, password: &str) -> Result<Option<Unlocked>> {
        let salt = decode::<16>(path, "salt", &self.salt)?;
        let nonce = decode::<24>(path, "nonce", &self.nonce)?;
        let wrapped = decode::<0>(path, "wrappedKey", &self.wrapped_key)?;
        let snonce = decode::<24>(path, "signingNonce", &self.signing_nonce)?;
        let swrapped = decode::<0>(path, "wrappedSigningKey", &self.wrapped_signing_key)?;
        let kek = crypto::derive_kek(password, &salt, self.kdf)?;
        let Some(db) = crypto::unwrap(&kek, &arr(&nonce), &wrapped, &aad_db(&self.operator_id)) else {
            return Ok(None);
        };
        let Some(seed) = crypto::unwrap(&kek, &arr(&snonce), &swrapped, &aad_sign(&self.operator_id)) else {
            return Err(StationError::SlotFile {
                path: path.to_path_buf(),
                detail: format!(
                    "the signing key of operator {} does not decrypt",
                    self.operator_id
                ),
            });
        };
        if db.len() != 32 || seed.len() != 32 {
            return Err(StationError::SlotFile {
                path: path.to_path_buf(),
                detail: format!(
                    "the slot of operator {} holds keys of the wrong length",
                    self.operator_id
                ),
            });
        }
        let signing_key = SigningKey::from_bytes(&arr(&seed));
        Ok(Some(Unlocked {
            db_key: Zeroizing::new(arr(&db)),
            signing_key,
        }))
    }
}

impl RecoverySlot {
    /// Seals `db_key` to the age recipient `recipient` (`age1...`).
    pub fn create(recipient: &str, db_key: &[u8; 32]) -> Result<Self> {
        let r: age::x25519::Recipient = recipient.trim().parse().map_err(|e: &str| StationError::Crypto {
            context: "parsing the server's recovery public key",
            detail: format!("{e}; expected an age X25519 recipient starting with age1"),
        })?;
        let sealed = age::encrypt(&r, db_key).map_err(|e| StationError::Crypto {
            context: "sealing the database key to the recovery key",
            detail: e.to_string(),
        })?;
        Ok(Self {
            recipient: r.to_string(),
            sealed_key: B64.encode(sealed),
        })
    }

    /// Opens the slot with the server's recovery identity.
    pub fn open(&self, path: &Path, identity: &age::x25519::Identity) -> Result<Zeroizing<[u8; 32]>> {
        let sealed = decode::<0>(path, "sealedKey", &self.sealed_key)?;
        let key = age::decrypt(identity, &sealed).map_err(|_| StationError::WrongRecoveryKey {
            recipient: self.recipient.clone(),
        })?;
        let key = Zeroizing::new(key);
        if key.len() != 32 {
            return Err(StationError::SlotFile {
                path: path.to_path_buf(),
                detail: "the recovery slot holds a key of the wrong length".into(),
            });
        }
        Ok(Zeroizing::new(arr(&key)))
    }
}

impl SlotFile {
    /// A new file with the given recovery slot.
    pub fn new(recovery: RecoverySlot, policy: LoginPolicy) -> Self {
        Self {
            format: SLOT_FILE_FORMAT,
            policy,
            slots: vec![Slot::Recovery(recovery)],
        }
    }

    /// Reads and checks `keyslots.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(StationError::io("reading the key-slot file", path))?;
        if meta.len() > MAX_SLOT_FILE {
            return Err(StationError::SlotFile {
                path: path.to_path_buf(),
                detail: format!(
                    "it is {} bytes, more than the {MAX_SLOT_FILE} allowed",
                    meta.len()
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(StationError::io("reading the key-slot file", path))?;
        let file: SlotFile = serde_json::from_slice(&bytes).map_err(|e| StationError::SlotFile {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        if file.format != SLOT_FILE_FORMAT {
            return Err(StationError::SlotFile {
                path: path.to_path_buf(),
                detail: format!("format {} is not the supported {SLOT_FILE_FORMAT}", file.format),
            });
        }
        Ok(file)
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| StationError::SlotFile {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        crypto::write_atomic(path, &bytes)
    }

    /// The slot of `operator`, if any.
    pub fn operator(&self, operator: &str) -> Option<&OperatorSlot> {
        self.slots.iter().find_map(|s| match s {
            Slot::Operator(o) if o.operator_id == operator => Some(o),
            _ => None,
        })
    }

    fn operator_mut(&mut self, operator: &str) -> Option<&mut OperatorSlot> {
        self.slots.iter_mut().find_map(|s| match s {
            Slot::Operator(o) if o.operator_id == operator => Some(o),
            _ => None,
        })
    }

    /// The recovery slot, if any.
    pub fn recovery(&self) -> Option<&RecoverySlot> {
        self.slots.iter().find_map(|s| match s {
            Slot::Recovery(r) => Some(r),
            Slot::Operator(_) => None,
        })
    }

    /// Adds or replaces an operator's slot.
    pub fn put_operator(&mut self, slot: OperatorSlot) {
        self.slots
            .retain(|s| !matches!(s, Slot::Operator(o) if o.operator_id == slot.operator_id));
        self.slots.push(Slot::Operator(slot));
    }

    /// Tries `password` for `operator` under the lockout policy, updating the counters in `self` (the caller
    /// saves the file). Errors: no slot, locked out, wrong password.
    pub fn try_unlock(
        &mut self,
        path: &Path,
        operator: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<Unlocked> {
        let policy = self.policy;
        let slot = self.operator_mut(operator).ok_or_else(|| StationError::NoSlot {
            operator: operator.into(),
        })?;
        if let Some(until) = slot.locked_until {
            if now < until {
                return Err(StationError::LockedOut {
                    operator: operator.into(),
                    until,
                });
            }
            slot.locked_until = None;
            slot.failed_attempts = 0;
        }
        match slot.unlock(path, password)? {
            Some(u) => {
                slot.failed_attempts = 0;
                Ok(u)
            }
            None => {
                slot.failed_attempts = slot.failed_attempts.saturating_add(1);
                if slot.failed_attempts >= policy.max_failed_attempts {
                    let until = now + Duration::seconds(policy.lockout_seconds);
                    slot.locked_until = Some(until);
                    return Err(StationError::LockedOut {
                        operator: operator.into(),
                        until,
                    });
                }
                Err(StationError::WrongPassword {
                    operator: operator.into(),
                    attempts_left: policy.max_failed_attempts.saturating_sub(slot.failed_attempts),
                })
            }
        }
    }
}
