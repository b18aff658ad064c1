//! Compact JWS as SBI devices use it: `base64url(header).base64url(payload).base64url(signature)` with
//! header `{"alg":"RS256"|"EdDSA","typ":"JWT","x5c":[<base64 DER leaf>, <intermediates>...]}`.
//!
//! [`DeviceSigner`] signs (device host and simulator). [`TrustStore`] verifies: the signature with the
//! first `x5c` certificate's key, every link of the `x5c` chain, the chain's top up to a trusted
//! device-provider CA, and each certificate's validity period at the time of an injected
//! [`Clock`]. Only RS256 (RSA PKCS#1 v1.5 with SHA-256, >= 2048 bits) and EdDSA (Ed25519) are accepted,
//! as the SBI spec allows ("no other ECC curves"); `alg: none` and everything else is refused.

use base64::Engine as _;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::{SignatureEncoding, Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tessera_packet::clock::Clock;
use x509_cert::Certificate;
use x509_cert::der::{self, Decode, Encode};

use crate::protocol::{b64url_decode, b64url_encode};

/// Largest compact JWS accepted (a capture segment with a lossless image stays far below).
pub const MAX_JWS_BYTES: usize = 16 * 1024 * 1024;
/// Most certificates accepted in `x5c`.
pub const MAX_CHAIN: usize = 5;

const OID_RSA_ENCRYPTION: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA256_WITH_RSA: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_ED25519: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.3.101.112");

/// An error signing or verifying a JWS.
#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    /// The token is not three dot-separated base64url parts.
    #[error("the {what} is not a compact JWS (three base64url parts separated by dots): {reason}")]
    Malformed {
        /// Which token (e.g. "capture data block").
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The token exceeds [`MAX_JWS_BYTES`].
    #[error("the {what} is {len} bytes, above the {max}-byte limit")]
    TooLarge {
        /// Which token.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The header names an algorithm other than RS256 or EdDSA.
    #[error("the {what} uses JWS algorithm {alg:?}; only RS256 and EdDSA are accepted from SBI devices")]
    UnsupportedAlgorithm {
        /// Which token.
        what: &'static str,
        /// The algorithm named.
        alg: String,
    },
    /// The header has no `x5c` chain.
    #[error("the {what} has no x5c certificate chain; the device cannot be identified")]
    MissingChain {
        /// Which token.
        what: &'static str,
    },
    /// A certificate could not be decoded.
    #[error("certificate {index} of the {what} chain cannot be read: {reason}")]
    BadCertificate {
        /// Which token.
        what: &'static str,
        /// Position in `x5c` (0 = leaf).
        index: usize,
        /// Decoder message.
        reason: String,
    },
    /// The signature does not verify with the leaf certificate's key.
    #[error(
        "the signature of the {what} does not match its certificate (signer {subject}); the data was altered or signed by another key"
    )]
    BadSignature {
        /// Which token.
        what: &'static str,
        /// Leaf certificate subject.
        subject: String,
    },
    /// A link of the chain is broken (issuer/subject mismatch, bad signature, or issuer not a CA).
    #[error("the certificate chain of the {what} is broken at certificate {index}: {reason}")]
    BrokenChain {
        /// Which token.
        what: &'static str,
        /// Position of the certificate whose issuer link fails.
        index: usize,
        /// What failed.
        reason: String,
    },
    /// The chain does not lead to a trusted device-provider CA.
    #[error(
        "the {what} is signed by {subject}, issued by {issuer}, which is not a trusted device-provider CA; add the provider's CA certificate to the trust store if this device is certified"
    )]
    UntrustedChain {
        /// Which token.
        what: &'static str,
        /// Subject of the top certificate.
        subject: String,
        /// Its issuer.
        issuer: String,
    },
    /// A certificate is outside its validity period at the clock's time.
    #[error(
        "certificate {subject} in the {what} chain is not valid at {now}: valid from {not_before} to {not_after}; the device needs a renewed certificate"
    )]
    CertificateExpired {
        /// Which token.
        what: &'static str,
        /// Subject.
        subject: String,
        /// Clock time.
        now: String,
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
    },
    /// Key generation or certificate creation failed.
    #[error("could not create {what}: {reason}")]
    KeyGeneration {
        /// What was being created.
        what: &'static str,
        /// Underlying message.
        reason: String,
    },
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// The JWS protected header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwsHeader {
    /// Algorithm.
    pub alg: String,
    /// Type, `JWT` (0.9.5 renamed the old `type` key to `typ`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Certificate chain, standard base64 DER, leaf first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5c: Option<Vec<String>>,
}

/// Signature algorithm of a device key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rs256,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    /// The JWS `alg` name.
    pub fn jws_name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::EdDsa => "EdDSA",
        }
    }

    fn from_name(what: &'static str, name: &str) -> Result<Self, JwsError> {
        match name {
            "RS256" => Ok(Alg::Rs256),
            "EdDSA" => Ok(Alg::EdDsa),
            other => Err(JwsError::UnsupportedAlgorithm {
                what,
                alg: other.chars().take(20).collect(),
            }),
        }
    }
}

/// A private signing key.
pub enum PrivateKey {
    /// RSA key.
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    /// Ed25519 key.
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrivateKey::Rsa(_) => f.write_str("PrivateKey::Rsa(<redacted>)"),
            PrivateKey::Ed25519(_) => f.write_str("PrivateKey::Ed25519(<redacted>)"),
        }
    }
}

impl PrivateKey {
    /// The JWS algorithm of this key.
    pub fn alg(&self) -> Alg {
        match self {
            PrivateKey::Rsa(_) => Alg::Rs256,
            PrivateKey::Ed25519(_) => Alg::EdDsa,
        }
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, JwsError> {
        match self {
            PrivateKey::Rsa(k) => k
                .try_sign(msg)
                .map(|s| s.to_vec())
                .map_err(|e| JwsError::Signing(e.to_string())),
            PrivateKey::Ed25519(k) => Ok(ed25519_dalek::Signer::sign(k.as_ref(), msg).to_bytes().to_vec()),
        }
    }

    /// Loads a PKCS#8 DER private key (RSA or Ed25519).
    pub fn from_pkcs8_der(der_bytes: &[u8]) -> Result<Self, JwsError> {
        let info = rsa::pkcs8::PrivateKeyInfo::try_from(der_bytes).map_err(|e| JwsError::KeyGeneration {
            what: "private key",
            reason: format!("not PKCS#8: {e}"),
        })?;
        if info.algorithm.oid == OID_ED25519 {
            // The private key is an OCTET STRING holding the 32-byte seed.
            let seed = der::asn1::OctetStringRef::from_der(info.private_key).map_err(|e| {
                JwsError::KeyGeneration {
                    what: "Ed25519 key",
                    reason: e.to_string(),
                }
            })?;
            let seed: [u8; 32] = seed.as_bytes().try_into().map_err(|_| JwsError::KeyGeneration {
                what: "Ed25519 key",
                reason: "seed is not 32 bytes".into(),
            })?;
            Ok(PrivateKey::Ed25519(Box::new(
                ed25519_dalek::SigningKey::from_bytes(&seed),
            )))
        } else if info.algorithm.oid == OID_RSA_ENCRYPTION {
            use rsa::pkcs8::DecodePrivateKey;
            let k = rsa::RsaPrivateKey::from_pkcs8_der(der_bytes).map_err(|e| JwsError::KeyGeneration {
                what: "RSA key",
                reason: e.to_string(),
            })?;
            Ok(PrivateKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(k))))
        } else {
            Err(JwsError::KeyGeneration {
                what: "private key",
                reason: format!("unsupported key algorithm {}", info.algorithm.oid),
            })
        }
    }
}

/// A device's signing identity: its key and certificate chain (leaf first, DER).
#[derive(Debug)]
pub struct DeviceSigner {
    key: PrivateKey,
    chain: Vec<Vec<u8>>,
}

impl DeviceSigner {
    /// A signer from a key and a chain (leaf first).
    pub fn new(key: PrivateKey, chain: Vec<Vec<u8>>) -> Self {
        Self { key, chain }
    }

    /// The algorithm.
    pub fn alg(&self) -> Alg {
        self.key.alg()
    }

    /// The same signer sending only its own certificate in `x5c` (as some devices do); verifiers then
    /// find the issuer among their trust anchors.
    pub fn without_ca(mut self) -> Self {
        self.chain.truncate(1);
        self
    }

    /// The leaf certificate (DER).
    pub fn leaf_der(&self) -> Option<&[u8]> {
        self.chain.first().map(Vec::as_slice)
    }

    /// Signs `payload` into a compact JWS with the `x5c` chain.
    pub fn sign(&self, payload: &[u8]) -> Result<String, JwsError> {
        let header = JwsHeader {
            alg: self.alg().jws_name().to_string(),
            typ: Some("JWT".to_string()),
            x5c: Some(
                self.chain
                    .iter()
                    .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
                    .collect(),
            ),
        };
        let header_json = serde_json::to_vec(&header).map_err(|e| JwsError::Signing(e.to_string()))?;
        let signing_input = format!("{}.{}", b64url_encode(&header_json), b64url_encode(payload));
        let sig = self.key.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", b64url_encode(&sig)))
    }

    /// Signs with the right key but reports a wrong signature (simulator failure mode "bad signature").
    pub fn sign_corrupted(&self, payload: &[u8]) -> Result<String, JwsError> {
        let good = self.sign(payload)?;
        let (head, sig) = good
            .rsplit_once('.')
            .ok_or_else(|| JwsError::Signing("signed token lost its signature part".to_string()))?;
        let mut raw = b64url_decode("signature", sig).map_err(|e| JwsError::Signing(e.to_string()))?;
        if let Some(b) = raw.first_mut() {
            *b ^= 0x5a;
        }
        Ok(format!("{head}.{}", b64url_encode(&raw)))
    }
}

/// A JWS split into its parts, not yet verified.
#[derive(Debug, Clone)]
pub struct UnverifiedJws<'a> {
    /// Decoded header.
    pub header: JwsHeader,
    /// Decoded payload.
    pub payload: Vec<u8>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// Splits and decodes a compact JWS without checking anything but its shape. Use only for display or
/// when the caller verifies separately.
pub fn decode_unverified<'a>(what: &'static str, token: &'a str) -> Result<UnverifiedJws<'a>, JwsError> {
    if token.len() > MAX_JWS_BYTES {
        return Err(JwsError::TooLarge {
            what,
            len: token.len(),
            max: MAX_JWS_BYTES,
        });
    }
    let malformed = |reason: &str| JwsError::Malformed {
        what,
        reason: reason.to_string(),
    };
    let (signing_input, sig_b64) = token
        .rsplit_once('.')
        .ok_or_else(|| malformed("no '.' separators"))?;
    let (header_b64, payload_b64) = signing_input
        .split_once('.')
        .ok_or_else(|| malformed("only two parts"))?;
    if payload_b64.contains('.') {
        return Err(malformed("more than three parts"));
    }
    let header_bytes = b64url_decode("JWS header", header_b64).map_err(|e| malformed(&e.to_string()))?;
    let header: JwsHeader = serde_json::from_slice(&header_bytes)
        .map_err(|e| malformed(&format!("header is not JSON with \"alg\": {e}")))?;
    let payload = b64url_decode("JWS payload", payload_b64).map_err(|e| malformed(&e.to_string()))?;
    let signature = b64url_decode("JWS signature", sig_b64).map_err(|e| malformed(&e.to_string()))?;
    Ok(UnverifiedJws {
        header,
        payload,
        signing_input,
        signature,
    })
}

/// The result of a successful verification.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// The algorithm used.
    pub alg: Alg,
    /// The signer (leaf) certificate, DER.
    pub signer_der: Vec<u8>,
    /// The signer's subject, RFC 4514.
    pub signer_subject: String,
    /// The signer's subject common name, when present.
    pub signer_cn: Option<String>,
    /// Subject of the trust anchor the chain ends at.
    pub anchor_subject: String,
}

#[derive(Debug, Clone)]
struct Anchor {
    der: Vec<u8>,
    cert: Certificate,
}

/// Trusted device-provider CA certificates.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    anchors: Vec<Anchor>,
}

fn subject_string(c: &Certificate) -> String {
    c.tbs_certificate.subject.to_string()
}

fn common_name(c: &Certificate) -> Option<String> {
    const CN: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.4.3");
    for rdn in c.tbs_certificate.subject.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == CN {
                if let Ok(s) = der::asn1::Utf8StringRef::try_from(&atv.value) {
                    return Some(s.as_str().to_string());
                }
                if let Ok(s) = der::asn1::PrintableStringRef::try_from(&atv.value) {
                    return Some(s.as_str().to_string());
                }
            }
        }
    }
    None
}

fn time_string(t: &x509_cert::time::Time) -> String {
    let secs = t.to_unix_duration().as_secs();
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::<chrono::Utc>::from_timestamp(s, 0))
        .map(|d| d.to_rfc3339())
        .unwrap_or_else(|| format!("{secs}s after 1970"))
}

/// Verifies `signature` over `msg` with the key in `spki` under `alg`.
fn verify_with_spki(
    spki: &x509_cert::spki::SubjectPublicKeyInfoOwned,
    alg: Alg,
    msg: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    match alg {
        Alg::Rs256 => {
            if spki.algorithm.oid != OID_RSA_ENCRYPTION {
                return Err("RS256 signature but the certificate key is not RSA".into());
            }
            let spki_der = spki.to_der().map_err(|e| e.to_string())?;
            let key = rsa::RsaPublicKey::from_public_key_der(&spki_der).map_err(|e| e.to_string())?;
            if rsa::traits::PublicKeyParts::size(&key) < 256 {
                return Err("RSA key shorter than 2048 bits".into());
            }
            let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key);
            let sig = rsa::pkcs1v15::Signature::try_from(signature).map_err(|e| e.to_string())?;
            vk.verify(msg, &sig).map_err(|e| e.to_string())
        }
        Alg::EdDsa => {
            if spki.algorithm.oid != OID_ED25519 {
                return Err("EdDSA signature but the certificate key is not Ed25519".into());
            }
            let pk: [u8; 32] = spki
                .subject_public_key
                .raw_bytes()
                .try_into()
                .map_err(|_| "Ed25519 key is not 32 bytes".to_string())?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).map_err(|e| e.to_string())?;
            let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|e| e.to_string())?;
            vk.verify_strict(msg, &sig).map_err(|e| e.to_string())
        }
    }
}

/// Verifies that `issuer` signed `cert`.
fn verify_cert_signature(cert: &Certificate, issuer: &Certificate) -> Result<(), String> {
    let alg = if cert.signature_algorithm.oid == OID_SHA256_WITH_RSA {
        Alg::Rs256
    } else if cert.signature_algorithm.oid == OID_ED25519 {
        Alg::EdDsa
    } else {
        return Err(format!(
            "certificate signature algorithm {} is not sha256WithRSAEncryption or Ed25519",
            cert.signature_algorithm.oid
        ));
    };
    let tbs = cert.tbs_certificate.to_der().map_err(|e| e.to_string())?;
    let sig = cert
        .signature
        .as_bytes()
        .ok_or_else(|| "signature bit string has unused bits".to_string())?;
    verify_with_spki(&issuer.tbs_certificate.subject_public_key_info, alg, &tbs, sig)
}

fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate
            .get::<x509_cert::ext::pkix::BasicConstraints>(),
        Ok(Some((_, bc))) if bc.ca
    )
}

fn check_validity(what: &'static str, cert: &Certificate, clock: &dyn Clock) -> Result<(), JwsError> {
    let now = clock.now();
    let now_secs = u64::try_from(now.timestamp()).unwrap_or(0);
    let v = &cert.tbs_certificate.validity;
    let nb = v.not_before.to_unix_duration().as_secs();
    let na = v.not_after.to_unix_duration().as_secs();
    if now_secs < nb || now_secs > na {
        return Err(JwsError::CertificateExpired {
            what,
            subject: subject_string(cert),
            now: now.to_rfc3339(),
            not_before: time_string(&v.not_before),
            not_after: time_string(&v.not_after),
        });
    }
    Ok(())
}

impl TrustStore {
    /// An empty store (trusts nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a CA certificate in DER.
    pub fn add_der(&mut self, der_bytes: &[u8]) -> Result<(), JwsError> {
        let cert = Certificate::from_der(der_bytes).map_err(|e| JwsError::BadCertificate {
            what: "trust store",
            index: self.anchors.len(),
            reason: e.to_string(),
        })?;
        self.anchors.push(Anchor {
            der: der_bytes.to_vec(),
            cert,
        });
        Ok(())
    }

    /// Adds every `CERTIFICATE` block of a PEM text; returns how many were added.
    pub fn add_pem(&mut self, pem_text: &str) -> Result<usize, JwsError> {
        let mut n = 0;
        for block in pem_blocks(pem_text) {
            let der_bytes = base64::engine::general_purpose::STANDARD
                .decode(block.as_bytes())
                .map_err(|e| JwsError::BadCertificate {
                    what: "trust store PEM",
                    index: n,
                    reason: e.to_string(),
                })?;
            self.add_der(&der_bytes)?;
            n += 1;
        }
        Ok(n)
    }

    /// Number of anchors.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// Verifies a compact JWS: algorithm, signature, `x5c` chain up to a trusted CA and validity at
    /// `clock`'s time. `what` names the token in errors.
    pub fn verify(
        &self,
        what: &'static str,
        token: &str,
        clock: &dyn Clock,
    ) -> Result<VerifiedJws, JwsError> {
        let jws = decode_unverified(what, token)?;
        let alg = Alg::from_name(what, &jws.header.alg)?;
        let x5c = jws
            .header
            .x5c
            .as_ref()
            .filter(|c| !c.is_empty())
            .ok_or(JwsError::MissingChain { what })?;
        if x5c.len() > MAX_CHAIN {
            return Err(JwsError::BrokenChain {
                what,
                index: MAX_CHAIN,
                reason: format!("{} certificates, more than {MAX_CHAIN}", x5c.len()),
            });
        }
        let mut chain = Vec::with_capacity(x5c.len());
        for (index, c) in x5c.iter().enumerate() {
            let der_bytes = base64::engine::general_purpose::STANDARD
                .decode(c.as_bytes())
                .or_else(|_| b64url_decode("x5c", c).map_err(|e| e.to_string()))
                .map_err(|e| JwsError::BadCertificate {
                    what,
                    index,
                    reason: format!("not base64: {e}"),
                })?;
            let cert = Certificate::from_der(&der_bytes).map_err(|e| JwsError::BadCertificate {
                what,
                index,
                reason: e.to_string(),
            })?;
            chain.push((der_bytes, cert));
        }
        let (leaf_der, leaf) = chain.first().ok_or(JwsError::MissingChain { what })?;
        verify_with_spki(
            &leaf.tbs_certificate.subject_public_key_info,
            alg,
            jws.signing_input.as_bytes(),
            &jws.signature,
        )
        .map_err(|_| JwsError::BadSignature {
            what,
            subject: subject_string(leaf),
        })?;
        // Links inside x5c.
        for (index, pair) in chain.windows(2).enumerate() {
            let [(_, child), (_, parent)] = pair else {
                continue;
            };
            if child.tbs_certificate.issuer != parent.tbs_certificate.subject {
                return Err(JwsError::BrokenChain {
                    what,
                    index,
                    reason: format!(
                        "issuer {} is not the next certificate's subject {}",
                        child.tbs_certificate.issuer,
                        subject_string(parent)
                    ),
                });
            }
            if !is_ca(parent) {
                return Err(JwsError::BrokenChain {
                    what,
                    index,
                    reason: format!("issuer {} is not a CA certificate", subject_string(parent)),
                });
            }
            verify_cert_signature(child, parent).map_err(|reason| JwsError::BrokenChain {
                what,
                index,
                reason,
            })?;
        }
        for (_, c) in &chain {
            check_validity(what, c, clock)?;
        }
        // The top must be an anchor or be issued by one.
        let (top_der, top) = chain.last().ok_or(JwsError::MissingChain { what })?;
        let anchor = self
            .anchors
            .iter()
            .find(|a| a.der == *top_der)
            .or_else(|| {
                self.anchors.iter().find(|a| {
                    a.cert.tbs_certificate.subject == top.tbs_certificate.issuer
                        && is_ca(&a.cert)
                        && verify_cert_signature(top, &a.cert).is_ok()
                })
            })
            .ok_or_else(|| JwsError::UntrustedChain {
                what,
                subject: subject_string(top),
                issuer: top.tbs_certificate.issuer.to_string(),
            })?;
        check_validity(what, &anchor.cert, clock)?;
        Ok(VerifiedJws {
            payload: jws.payload,
            alg,
            signer_der: leaf_der.clone(),
            signer_subject: subject_string(leaf),
            signer_cn: common_name(leaf),
            anchor_subject: subject_string(&anchor.cert),
        })
    }
}

/// The base64 bodies of `-----BEGIN CERTIFICATE-----` blocks.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let l = line.trim();
        if l == "-----BEGIN CERTIFICATE-----" {
            cur = Some(String::new());
        } else if l == "-----END CERTIFICATE-----" {
            if let Some(b) = cur.take() {
                out.push(b);
            }
        } else if let Some(b) = cur.as_mut() {
            b.push_str(l);
        }
    }
    out
}

/// Reads the common name of a DER certificate (used to tie a signer to a serial number).
pub fn certificate_common_name(der_bytes: &[u8]) -> Option<String> {
    Certificate::from_der(der_bytes)
        .ok()
        .as_ref()
        .and_then(common_name)
}
