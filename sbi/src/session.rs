//! Session-key encryption of the `bioValue` of auth captures (CAPTURE), as SBI 0.9.5 specifies:
//!
//! 1. a random AES-256 session key per segment;
//! 2. `X = XOR(timestamp bytes, transactionId bytes)`, the shorter one left-padded with zero bytes;
//!    the last 12 bytes of `X` are the AES-GCM nonce, the last 16 bytes the additional data;
//! 3. `bioValue = base64url(AES-256-GCM(key, nonce, iso, aad))` (ciphertext then tag);
//! 4. `sessionKey = base64url(RSA-OAEP(IDA certificate key, session key))` (SHA-256 digest and
//!    SHA-256 MGF1);
//! 5. `thumbprint = UPPERHEX(SHA-256(IDA certificate DER))`.
//!
//! The device (or the simulator) encrypts with [`SessionKeyEncryptor`]; only the holder of the IDA
//! private key can decrypt ([`SessionKeyDecryptor`]: the authentication server, and tests).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};

use crate::protocol::{b64url_decode, b64url_encode};

/// A session-key encryption or decryption failure.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The IDA certificate or key cannot be used.
    #[error("the authentication encryption {what} cannot be used: {reason}")]
    Key {
        /// Certificate or key.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The data was encrypted for another certificate.
    #[error("the capture was encrypted for certificate {got}, not {expected}; check the device's domain key")]
    Thumbprint {
        /// Our certificate's thumbprint.
        expected: String,
        /// The capture's.
        got: String,
    },
    /// A field is not valid base64url.
    #[error("{field} is not valid base64url")]
    Encoding {
        /// Which field.
        field: &'static str,
    },
    /// Encryption or decryption failed (wrong key, altered data, wrong timestamp/transaction id).
    #[error("{step} failed: the data was altered or encrypted with other parameters")]
    Crypto {
        /// Which step.
        step: &'static str,
    },
}

/// Uppercase hex SHA-256 of a certificate.
pub fn thumbprint(cert_der: &[u8]) -> String {
    hex::encode_upper(Sha256::digest(cert_der))
}

/// The nonce (12 bytes) and additional data (16 bytes) from the capture's timestamp and transaction id.
pub fn nonce_and_aad(timestamp: &str, transaction_id: &str) -> ([u8; 12], [u8; 16]) {
    let (a, b) = (timestamp.as_bytes(), transaction_id.as_bytes());
    let n = a.len().max(b.len()).max(16);
    let at = |s: &[u8], i: usize| -> u8 {
        // left-pad with zeros to n bytes
        let pad = n - s.len();
        if i < pad {
            0
        } else {
            s.get(i - pad).copied().unwrap_or(0)
        }
    };
    let x: Vec<u8> = (0..n).map(|i| at(a, i) ^ at(b, i)).collect();
    let mut nonce = [0u8; 12];
    let mut aad = [0u8; 16];
    nonce.copy_from_slice(x.get(n - 12..).unwrap_or(&[0; 12]));
    aad.copy_from_slice(x.get(n - 16..).unwrap_or(&[0; 16]));
    (nonce, aad)
}

/// One encrypted segment as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedBio {
    /// base64url of the AES-GCM ciphertext and tag.
    pub bio_value: String,
    /// base64url of the RSA-OAEP-wrapped session key.
    pub session_key: String,
    /// Uppercase hex SHA-256 of the IDA certificate.
    pub thumbprint: String,
}

/// Encrypts for one IDA certificate.
#[derive(Debug, Clone)]
pub struct SessionKeyEncryptor {
    key: RsaPublicKey,
    thumbprint: String,
}

impl SessionKeyEncryptor {
    /// From the IDA (domain) certificate, DER; its key must be RSA.
    pub fn from_cert_der(cert_der: &[u8]) -> Result<Self, SessionError> {
        let bad = |reason: String| SessionError::Key {
            what: "certificate",
            reason,
        };
        let cert = x509_cert::Certificate::from_der(cert_der).map_err(|e| bad(e.to_string()))?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| bad(e.to_string()))?;
        let key =
            RsaPublicKey::from_public_key_der(&spki).map_err(|e| bad(format!("not an RSA key: {e}")))?;
        Ok(Self {
            key,
            thumbprint: thumbprint(cert_der),
        })
    }

    /// The certificate's thumbprint.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Encrypts one ISO record.
    pub fn encrypt(
        &self,
        iso: &[u8],
        timestamp: &str,
        transaction_id: &str,
    ) -> Result<EncryptedBio, SessionError> {
        let mut session = [0u8; 32];
        getrandom::fill(&mut session).map_err(|_| SessionError::Crypto {
            step: "session key generation",
        })?;
        let (nonce, aad) = nonce_and_aad(timestamp, transaction_id);
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&session).map_err(|_| SessionError::Crypto {
            step: "AES key setup",
        })?;
        let ct = cipher
            .encrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload { msg: iso, aad: &aad },
            )
            .map_err(|_| SessionError::Crypto {
                step: "AES-GCM encryption",
            })?;
        let wrapped = self
            .key
            .encrypt(&mut rand_core::OsRng, Oaep::new::<Sha256>(), &session)
            .map_err(|_| SessionError::Crypto {
                step: "RSA-OAEP key wrapping",
            })?;
        Ok(EncryptedBio {
            bio_value: b64url_encode(&ct),
            session_key: b64url_encode(&wrapped),
            thumbprint: self.thumbprint.clone(),
        })
    }
}

/// Decrypts with the IDA private key.
pub struct SessionKeyDecryptor {
    key: RsaPrivateKey,
    thumbprint: String,
}

impl std::fmt::Debug for SessionKeyDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeyDecryptor")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl SessionKeyDecryptor {
    /// From the IDA private key (PKCS#8 DER) and its certificate (DER).
    pub fn from_pkcs8_der(key_der: &[u8], cert_der: &[u8]) -> Result<Self, SessionError> {
        let key = RsaPrivateKey::from_pkcs8_der(key_der).map_err(|e| SessionError::Key {
            what: "private key",
            reason: e.to_string(),
        })?;
        Ok(Self {
            key,
            thumbprint: thumbprint(cert_der),
        })
    }

    /// The certificate's thumbprint.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Decrypts one segment back to its ISO record.
    pub fn decrypt(
        &self,
        enc: &EncryptedBio,
        timestamp: &str,
        transaction_id: &str,
    ) -> Result<Vec<u8>, SessionError> {
        if enc.thumbprint != self.thumbprint {
            return Err(SessionError::Thumbprint {
                expected: self.thumbprint.clone(),
                got: enc.thumbprint.chars().take(64).collect(),
            });
        }
        let wrapped = b64url_decode("sessionKey", &enc.session_key)
            .map_err(|_| SessionError::Encoding { field: "sessionKey" })?;
        let ct = b64url_decode("bioValue", &enc.bio_value)
            .map_err(|_| SessionError::Encoding { field: "bioValue" })?;
        let session =
            self.key
                .decrypt(Oaep::new::<Sha256>(), &wrapped)
                .map_err(|_| SessionError::Crypto {
                    step: "RSA-OAEP key unwrapping",
                })?;
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&session).map_err(|_| SessionError::Crypto {
            step: "AES key setup",
        })?;
        let (nonce, aad) = nonce_and_aad(timestamp, transaction_id);
        cipher
            .decrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload { msg: &ct, aad: &aad },
            )
            .map_err(|_| SessionError::Crypto {
                step: "AES-GCM decryption",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_and_aad_are_the_tail_of_the_left_padded_xor() {
        let (n, a) = nonce_and_aad("2026-11-29T10:00:00Z", "abcd");
        // timestamp is 20 bytes, "abcd" padded to 20: only the last 4 bytes are XORed.
        let ts = b"2026-11-29T10:00:00Z";
        let mut x = ts.to_vec();
        for (i, c) in b"abcd".iter().enumerate() {
            x[16 + i] ^= c;
        }
        assert_eq!(&n[..], &x[8..]);
        assert_eq!(&a[..], &x[4..]);
    }

    #[test]
    fn round_trip_and_tamper() {
        let (cert, key) = crate::pki::encryption_certificate(
            "Test IDA",
            chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
        )
        .unwrap();
        let enc = SessionKeyEncryptor::from_cert_der(&cert).unwrap();
        let dec = SessionKeyDecryptor::from_pkcs8_der(&key, &cert).unwrap();
        let e = enc
            .encrypt(b"ISO RECORD", "2026-11-29T10:00:00Z", "txn-1")
            .unwrap();
        assert_eq!(e.thumbprint, dec.thumbprint());
        assert_eq!(
            dec.decrypt(&e, "2026-11-29T10:00:00Z", "txn-1").unwrap(),
            b"ISO RECORD"
        );
        assert!(matches!(
            dec.decrypt(&e, "2026-11-29T10:00:01Z", "txn-1"),
            Err(SessionError::Crypto { .. })
        ));
        let mut other = e.clone();
        other.thumbprint = "00".repeat(32);
        assert!(matches!(
            dec.decrypt(&other, "2026-11-29T10:00:00Z", "txn-1"),
            Err(SessionError::Thumbprint { .. })
        ));
    }
}
