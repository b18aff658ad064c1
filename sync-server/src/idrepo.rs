//! The ID repository: one encrypted record per identity (UIN), with envelope encryption.
//!
//! Each record gets its own random 256-bit data key; the record is sealed with XChaCha20-Poly1305 under that
//! key, and the data key is wrapped (XChaCha20-Poly1305 again) by the ID-repository master key from
//! `keys/`. Rows carry the master key's id, so rotating the master key means re-wrapping 72-byte data keys,
//! never re-encrypting records, and both keys can be live during a rotation. The UIN is stored only as a
//! salted SHA-256 (the lookup key) and inside the ciphertext. Documents and finger templates are in the
//! record, so they are encrypted too.
//!
//! Layouts (frozen once shipped): wrapped key = nonce (24) ‖ ciphertext of the 32-byte key (48);
//! record = nonce (24) ‖ ciphertext. The AAD binds the record to its UIN hash and the wrapped key to the
//! master key id and UIN hash, so swapping rows or keys fails authentication.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::keys::random_bytes;

/// Why a record could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No master key with the record's key id is configured.
    #[error("no ID-repository master key with id {key_id}; restore that key file from backup")]
    UnknownMasterKey {
        /// The id in the row.
        key_id: String,
    },
    /// Authentication failed: wrong key, or the row was altered.
    #[error("the {what} does not decrypt (altered row or wrong master key)")]
    Decrypt {
        /// Which part.
        what: &'static str,
    },
    /// The OS random source failed.
    #[error("random source: {0}")]
    Random(String),
    /// The decrypted record is not a valid identity document.
    #[error("the decrypted record is not valid: {0}")]
    Record(String),
}

/// A master key and its id (first 8 bytes of a domain-separated SHA-256, hex).
pub struct MasterKey {
    /// Key id stored beside each wrapped key.
    pub id: String,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// Wraps key material.
    pub fn new(key: Zeroizing<[u8; 32]>) -> Self {
        let mut h = Sha256::new();
        h.update(b"TESSERA-IDREPO-MASTER-KEY-ID\n");
        h.update(key.as_slice());
        let digest = h.finalize();
        let id = hex::encode(digest.get(..8).unwrap_or_default());
        Self { id, key }
    }
}

/// The salted lookup hash of a UIN (hex SHA-256 of salt ‖ UIN).
pub fn uin_hash(salt: &[u8; 32], uin: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"TESSERA-UIN-HASH-V1\n");
    h.update(salt);
    h.update(uin.as_bytes());
    hex::encode(h.finalize())
}

fn seal_with(key: &[u8; 32], aad: &[u8], plaintext: &[u8], what: &'static str) -> Result<Vec<u8>, RepoError> {
    let nonce = random_bytes::<24>().map_err(|e| RepoError::Random(e.to_string()))?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .map_err(|_| RepoError::Decrypt { what })?;
    let mut out = Vec::with_capacity(24 + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_with(key: &[u8; 32], aad: &[u8], sealed: &[u8], what: &'static str) -> Result<Vec<u8>, RepoError> {
    let (Some(nonce), Some(ct)) = (sealed.get(..24), sealed.get(24..)) else {
        return Err(RepoError::Decrypt { what });
    };
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| RepoError::Decrypt { what })
}

fn wrap_aad(key_id: &str, context: &str) -> Vec<u8> {
    format!("TESSERA-DEK-V1\n{key_id}\n{context}").into_bytes()
}

fn record_aad(context: &str) -> Vec<u8> {
    format!("TESSERA-RECORD-V1\n{context}").into_bytes()
}

/// An envelope-encrypted value: (master key id, wrapped data key, ciphertext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Master key id.
    pub key_id: String,
    /// Wrapped data key.
    pub wrapped_key: Vec<u8>,
    /// Ciphertext.
    pub ciphertext: Vec<u8>,
}

/// Seals `plaintext` under a fresh data key wrapped by `master`, bound to `context` (e.g. the UIN hash).
pub fn seal(master: &MasterKey, context: &str, plaintext: &[u8]) -> Result<Sealed, RepoError> {
    let dek = Zeroizing::new(random_bytes::<32>().map_err(|e| RepoError::Random(e.to_string()))?);
    let ciphertext = seal_with(&dek, &record_aad(context), plaintext, "record")?;
    let wrapped_key = seal_with(
        &master.key,
        &wrap_aad(&master.id, context),
        dek.as_slice(),
        "data key",
    )?;
    Ok(Sealed {
        key_id: master.id.clone(),
        wrapped_key,
        ciphertext,
    })
}

fn unwrap_dek(
    masters: &[MasterKey],
    key_id: &str,
    wrapped: &[u8],
    context: &str,
) -> Result<Zeroizing<[u8; 32]>, RepoError> {
    let master = masters
        .iter()
        .find(|m| m.id == key_id)
        .ok_or_else(|| RepoError::UnknownMasterKey {
            key_id: key_id.to_owned(),
        })?;
    let dek = Zeroizing::new(open_with(
        &master.key,
        &wrap_aad(key_id, context),
        wrapped,
        "data key",
    )?);
    let arr: [u8; 32] = dek
        .as_slice()
        .try_into()
        .map_err(|_| RepoError::Decrypt { what: "data key" })?;
    Ok(Zeroizing::new(arr))
}

/// Opens a sealed value with whichever of `masters` has its key id.
pub fn open(masters: &[MasterKey], context: &str, sealed: &Sealed) -> Result<Vec<u8>, RepoError> {
    let dek = unwrap_dek(masters, &sealed.key_id, &sealed.wrapped_key, context)?;
    open_with(&dek, &record_aad(context), &sealed.ciphertext, "record")
}

/// Re-wraps a data key under `new` (the record itself is untouched).
pub fn rewrap(
    masters: &[MasterKey],
    new: &MasterKey,
    context: &str,
    key_id: &str,
    wrapped: &[u8],
) -> Result<Vec<u8>, RepoError> {
    let dek = unwrap_dek(masters, key_id, wrapped, context)?;
    seal_with(&new.key, &wrap_aad(&new.id, context), dek.as_slice(), "data key")
}

/// Packs a [`Sealed`] into one byte string (outbox payloads): key id (16 hex chars) ‖ wrapped key (72) ‖
/// ciphertext.
pub fn pack(s: &Sealed) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + s.wrapped_key.len() + s.ciphertext.len());
    out.extend_from_slice(s.key_id.as_bytes());
    out.extend_from_slice(&s.wrapped_key);
    out.extend_from_slice(&s.ciphertext);
    out
}

/// Reverses [`pack`].
pub fn unpack(bytes: &[u8]) -> Result<Sealed, RepoError> {
    let bad = || RepoError::Decrypt { what: "packed value" };
    let key_id = std::str::from_utf8(bytes.get(..16).ok_or_else(bad)?).map_err(|_| bad())?;
    Ok(Sealed {
        key_id: key_id.to_owned(),
        wrapped_key: bytes.get(16..88).ok_or_else(bad)?.to_vec(),
        ciphertext: bytes.get(88..).ok_or_else(bad)?.to_vec(),
    })
}

/// A document kept in the repository.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDocument {
    /// Name (the ID-schema field).
    pub name: String,
    /// Category code.
    pub category: String,
    /// Document type code.
    pub doc_type: String,
    /// MIME type.
    pub mime: String,
    /// Bytes, base64.
    pub content_b64: String,
}

impl std::fmt::Debug for StoredDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredDocument")
            .field("name", &self.name)
            .field("category", &self.category)
            .finish_non_exhaustive()
    }
}

/// The identity as the repository stores it (inside the ciphertext).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityDoc {
    /// The UIN.
    pub uin: String,
    /// The packet that created it.
    pub rid: String,
    /// ID-schema version.
    pub id_schema_version: String,
    /// Demographics (ID-schema JSON).
    pub identity: serde_json::Value,
    /// Data-entry languages, primary first.
    pub languages: Vec<String>,
    /// Documents.
    pub documents: Vec<StoredDocument>,
    /// Finger templates: (ISO position, base64 template bytes).
    pub finger_templates: Vec<(u8, String)>,
    /// Registration center.
    pub center_id: String,
    /// When the packet was created (station clock, RFC 3339).
    pub registered_at: String,
}

impl std::fmt::Debug for IdentityDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print demographics, documents or templates.
        f.debug_struct("IdentityDoc")
            .field("rid", &self.rid)
            .field("documents", &self.documents.len())
            .field("fingers", &self.finger_templates.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(b: u8) -> MasterKey {
        MasterKey::new(Zeroizing::new([b; 32]))
    }

    #[test]
    fn seal_open_rewrap_and_tamper() {
        let (m1, m2) = (master(1), master(2));
        let s = seal(&m1, "ctx", b"hello").unwrap();
        assert_eq!(open(std::slice::from_ref(&m1), "ctx", &s).unwrap(), b"hello");
        assert!(
            open(std::slice::from_ref(&m1), "other", &s).is_err(),
            "bound to context"
        );
        assert!(matches!(
            open(std::slice::from_ref(&m2), "ctx", &s),
            Err(RepoError::UnknownMasterKey { .. })
        ));
        let wrapped = rewrap(std::slice::from_ref(&m1), &m2, "ctx", &s.key_id, &s.wrapped_key).unwrap();
        let r = Sealed {
            key_id: m2.id.clone(),
            wrapped_key: wrapped,
            ciphertext: s.ciphertext.clone(),
        };
        assert_eq!(open(&[m2], "ctx", &r).unwrap(), b"hello");
        let mut t = s.clone();
        if let Some(b) = t.ciphertext.last_mut() {
            *b ^= 1;
        }
        assert!(open(&[m1], "ctx", &t).is_err());
        let packed = pack(&s);
        assert_eq!(unpack(&packed).unwrap(), s);
        assert!(unpack(&packed[..20]).is_err());
    }

    #[test]
    fn uin_hash_is_salted() {
        assert_ne!(uin_hash(&[1; 32], "2345678901"), uin_hash(&[2; 32], "2345678901"));
        assert_eq!(uin_hash(&[1; 32], "2345678901").len(), 64);
    }
}
