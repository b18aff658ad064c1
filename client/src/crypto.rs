//! Small cryptographic helpers: randomness, Argon2id key derivation, XChaCha20-Poly1305 key wrapping,
//! atomic file writes and fingerprints.

use std::io::Write;
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Result, StationError};

/// Fills a fresh array with operating-system randomness.
pub fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| StationError::Crypto {
        context: "reading operating-system randomness",
        detail: e.to_string(),
    })?;
    Ok(b)
}

/// Argon2id parameters recorded next to every derived key so they can be raised later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Parallelism.
    pub p: u32,
}

impl KdfParams {
    /// OWASP's recommended minimum for Argon2id (19 MiB, 2 passes, 1 lane).
    pub const DEFAULT: Self = Self {
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
    };
    /// Fast parameters for tests only; never used by the binary.
    pub const TEST_ONLY_FAST: Self = Self {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    fn check(&self) -> Result<Params> {
        if self.m_kib > 4 * 1024 * 1024 || self.t > 64 || self.p > 16 {
            return Err(StationError::Crypto {
                context: "checking Argon2id parameters",
                detail: format!(
                    "parameters {self:?} exceed the station's limits (4 GiB, 64 passes, 16 lanes)"
                ),
            });
        }
        Params::new(self.m_kib, self.t, self.p, Some(32)).map_err(|e| StationError::Crypto {
            context: "checking Argon2id parameters",
            detail: e.to_string(),
        })
    }
}

/// Derives a 256-bit key-encryption key from a password with Argon2id.
pub fn derive_kek(password: &str, salt: &[u8], params: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.check()?);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(password.as_bytes(), salt, out.as_mut_slice())
        .map_err(|e| StationError::Crypto {
            context: "deriving a key from the password",
            detail: e.to_string(),
        })?;
    Ok(out)
}

/// XChaCha20-Poly1305 encryption of `plain` under `key`, bound to `aad`. Returns nonce and ciphertext.
pub fn wrap(key: &[u8; 32], plain: &[u8], aad: &[u8]) -> Result<([u8; 24], Vec<u8>)> {
    let nonce: [u8; 24] = random()?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| StationError::Crypto {
            context: "wrapping a key",
            detail: "AEAD encryption failed".into(),
        })?;
    Ok((nonce, ct))
}

/// Reverses [`wrap`]; `None` when the key is wrong or the data was altered.
pub fn unwrap(key: &[u8; 32], nonce: &[u8; 24], ct: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A human-comparable fingerprint of a public key: `SHA256:` and the hex digest in groups of four (the
/// format the server and the set-up kit use too).
pub fn fingerprint(public_key: &[u8]) -> String {
    tessera_packet::wire::kit::key_fingerprint(public_key)
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new content, never a mix:
/// temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{file_name}.tmp"));
    {
        let mut f =
            std::fs::File::create(&tmp).map_err(StationError::io("creating a temporary file", &tmp))?;
        f.write_all(bytes)
            .map_err(StationError::io("writing a temporary file", &tmp))?;
        f.sync_all()
            .map_err(StationError::io("syncing a temporary file", &tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(StationError::io("replacing a file", path))?;
    sync_dir(dir)
}

/// Fsyncs a directory so a rename or create in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = std::fs::File::open(dir).map_err(StationError::io("opening a directory to sync it", dir))?;
    d.sync_all().map_err(StationError::io("syncing a directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trips_and_detects_wrong_key_and_aad() {
        let k = [7u8; 32];
        let (n, ct) = wrap(&k, b"secret", b"slot:a").unwrap();
        assert_eq!(unwrap(&k, &n, &ct, b"slot:a").unwrap().as_slice(), b"secret");
        assert!(unwrap(&[8u8; 32], &n, &ct, b"slot:a").is_none());
        assert!(unwrap(&k, &n, &ct, b"slot:b").is_none());
    }

    #[test]
    fn kek_depends_on_password_and_salt() {
        let p = KdfParams::TEST_ONLY_FAST;
        let a = derive_kek("pw", b"saltsaltsaltsalt", p).unwrap();
        let b = derive_kek("pw", b"saltsaltsaltsalt", p).unwrap();
        let c = derive_kek("pw2", b"saltsaltsaltsalt", p).unwrap();
        let d = derive_kek("pw", b"othersaltothersa", p).unwrap();
        assert_eq!(*a, *b);
        assert_ne!(*a, *c);
        assert_ne!(*a, *d);
    }

    #[test]
    fn fingerprint_is_grouped_hex() {
        let f = fingerprint(&[0u8; 32]);
        assert!(f.starts_with("SHA256:6668 7AAD "));
        assert_eq!(f.len(), "SHA256:".len() + 64 + 15);
    }
}
