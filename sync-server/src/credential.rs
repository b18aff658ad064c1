//! Credentials: a W3C Verifiable Credential 2.0-style JSON document with an Ed25519 proof by the server's
//! credential-issuer key, and a compact signed QR payload for printed cards. Both verify offline with the
//! issuer's public key (`tessera-server verify`).
//!
//! **Frozen format** once cards are printed. The proof signs
//! `TESSERA-VC-V1\n<canonical credential without proof>\n<canonical proof without proofValue>`, where
//! canonical JSON has object keys sorted and no insignificant whitespace (JCS-like for the strings and
//! integers Tessera writes). The QR payload is `TSR1.<b64url canonical record>.<b64url signature>`, the
//! signature covering `TESSERA-QR-V1\n<b64url canonical record>`. The credential carries only the UIN, the
//! full name, the date of birth and the gender (data minimisation).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The cryptosuite name in the proof.
pub const CRYPTOSUITE: &str = "tessera-eddsa-jcs-2026";
/// Prefix of QR payloads.
pub const QR_PREFIX: &str = "TSR1.";

/// Why a credential or QR payload does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not JSON, or a required member is missing or of the wrong type.
    #[error("malformed credential: {0}")]
    Malformed(String),
    /// The issuer in the credential is not the key given.
    #[error("issued by {found}, not by the issuer key given ({expected})")]
    WrongIssuer {
        /// Issuer id of the key given.
        expected: String,
        /// Issuer id in the credential.
        found: String,
    },
    /// The signature does not match: altered or forged.
    #[error("the signature does not match: the credential was altered or not issued by this key")]
    BadSignature,
}

/// Canonical JSON: keys sorted, compact.
pub fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String(k.clone()),
                        map.get(k).map(canonical).unwrap_or_default()
                    )
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The issuer id of a key: `urn:tessera:issuer:<first 8 bytes of SHA-256 of the key, hex>`.
pub fn issuer_id(key: &VerifyingKey) -> String {
    let d = Sha256::digest(key.as_bytes());
    format!(
        "urn:tessera:issuer:{}",
        hex::encode(d.get(..8).unwrap_or_default())
    )
}

/// The subject facts a credential carries.
#[derive(Clone, PartialEq, Eq)]
pub struct Subject {
    /// UIN.
    pub uin: String,
    /// Full name in the primary language.
    pub full_name: String,
    /// Date of birth `YYYY-MM-DD` (may be empty).
    pub date_of_birth: String,
    /// Gender code (may be empty).
    pub gender: String,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject").finish_non_exhaustive()
    }
}

fn proof_message(unsigned: &Value, proof_config: &Value) -> Vec<u8> {
    format!(
        "TESSERA-VC-V1\n{}\n{}",
        canonical(unsigned),
        canonical(proof_config)
    )
    .into_bytes()
}

/// Issues the credential of a packet (`rid`) for `subject`.
pub fn issue(issuer: &SigningKey, rid: &str, subject: &Subject, at: DateTime<Utc>) -> Value {
    let issuer_uri = issuer_id(&issuer.verifying_key());
    let now = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let unsigned = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": format!("urn:tessera:credential:{rid}"),
        "type": ["VerifiableCredential", "TesseraIdentityCredential"],
        "issuer": issuer_uri,
        "validFrom": now,
        "credentialSubject": {
            "id": format!("urn:tessera:uin:{}", subject.uin),
            "uin": subject.uin,
            "fullName": subject.full_name,
            "dateOfBirth": subject.date_of_birth,
            "gender": subject.gender,
        },
    });
    let proof_config = json!({
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": now,
        "verificationMethod": format!("{issuer_uri}#key-1"),
        "proofPurpose": "assertionMethod",
        "publicKeyBase64": STANDARD.encode(issuer.verifying_key().as_bytes()),
    });
    let sig = issuer.sign(&proof_message(&unsigned, &proof_config));
    let mut proof = proof_config;
    if let Some(p) = proof.as_object_mut() {
        p.insert(
            "proofValue".into(),
            Value::String(STANDARD.encode(sig.to_bytes())),
        );
    }
    let mut vc = unsigned;
    if let Some(o) = vc.as_object_mut() {
        o.insert("proof".into(), proof);
    }
    vc
}

fn sig_from_b64(engine: &impl base64::Engine, s: &str) -> Result<Signature, CredentialError> {
    let bytes = engine
        .decode(s)
        .map_err(|_| CredentialError::Malformed("the signature is not base64".into()))?;
    let arr: [u8; 64] = bytes
        .try_into()
        .map_err(|_| CredentialError::Malformed("the signature is not 64 bytes".into()))?;
    Ok(Signature::from_bytes(&arr))
}

/// Verifies a credential against the trusted issuer key and returns its subject.
pub fn verify(text: &str, issuer: &VerifyingKey) -> Result<Subject, CredentialError> {
    let mut vc: Value = serde_json::from_str(text).map_err(|e| CredentialError::Malformed(e.to_string()))?;
    let obj = vc
        .as_object_mut()
        .ok_or_else(|| CredentialError::Malformed("not a JSON object".into()))?;
    let mut proof = obj
        .remove("proof")
        .ok_or_else(|| CredentialError::Malformed("no proof".into()))?;
    let expected = issuer_id(issuer);
    let found = obj
        .get("issuer")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    if found != expected {
        return Err(CredentialError::WrongIssuer { expected, found });
    }
    let value = proof
        .as_object_mut()
        .and_then(|p| p.remove("proofValue"))
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or_else(|| CredentialError::Malformed("proof has no proofValue".into()))?;
    if proof.get("cryptosuite").and_then(|v| v.as_str()) != Some(CRYPTOSUITE) {
        return Err(CredentialError::Malformed(format!(
            "cryptosuite is not {CRYPTOSUITE}"
        )));
    }
    let sig = sig_from_b64(&STANDARD, &value)?;
    issuer
        .verify_strict(&proof_message(&vc, &proof), &sig)
        .map_err(|_| CredentialError::BadSignature)?;
    let s = vc
        .get("credentialSubject")
        .ok_or_else(|| CredentialError::Malformed("no credentialSubject".into()))?;
    let field = |k: &str| s.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    Ok(Subject {
        uin: field("uin"),
        full_name: field("fullName"),
        date_of_birth: field("dateOfBirth"),
        gender: field("gender"),
    })
}

/// The compact QR payload of a card.
pub fn qr_payload(issuer: &SigningKey, subject: &Subject, at: DateTime<Utc>) -> String {
    let record = json!({
        "v": 1,
        "u": subject.uin,
        "n": subject.full_name,
        "d": subject.date_of_birth,
        "g": subject.gender,
        "i": at.format("%Y-%m-%d").to_string(),
    });
    let body = URL_SAFE_NO_PAD.encode(canonical(&record).as_bytes());
    let sig = issuer.sign(format!("TESSERA-QR-V1\n{body}").as_bytes());
    format!("{QR_PREFIX}{body}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// Verifies a QR payload against the issuer key and returns its subject.
pub fn verify_qr(payload: &str, issuer: &VerifyingKey) -> Result<Subject, CredentialError> {
    let rest = payload
        .trim()
        .strip_prefix(QR_PREFIX)
        .ok_or_else(|| CredentialError::Malformed(format!("a QR payload starts with {QR_PREFIX}")))?;
    let (body, sig) = rest
        .split_once('.')
        .ok_or_else(|| CredentialError::Malformed("a QR payload has two parts after the prefix".into()))?;
    let sig = sig_from_b64(&URL_SAFE_NO_PAD, sig)?;
    issuer
        .verify_strict(format!("TESSERA-QR-V1\n{body}").as_bytes(), &sig)
        .map_err(|_| CredentialError::BadSignature)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CredentialError::Malformed("the record is not base64url".into()))?;
    let record: Value =
        serde_json::from_slice(&bytes).map_err(|e| CredentialError::Malformed(e.to_string()))?;
    let field = |k: &str| {
        record
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Subject {
        uin: field("u"),
        full_name: field("n"),
        date_of_birth: field("d"),
        gender: field("g"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn subject() -> Subject {
        Subject {
            uin: "2345678901".into(),
            full_name: "Test Person".into(),
            date_of_birth: "1990-04-12".into(),
            gender: "FLE".into(),
        }
    }

    #[test]
    fn credential_and_qr_verify_and_detect_tampering() {
        let k = SigningKey::from_bytes(&[5; 32]); // TEST-ONLY key
        let other = SigningKey::from_bytes(&[6; 32]);
        let at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let vc = issue(&k, "10001100010000120261129080000", &subject(), at);
        let text = serde_json::to_string_pretty(&vc).unwrap();
        assert_eq!(verify(&text, &k.verifying_key()).unwrap(), subject());
        assert!(matches!(
            verify(&text, &other.verifying_key()),
            Err(CredentialError::WrongIssuer { .. })
        ));
        let forged = text.replace("Test Person", "Evil Person");
        assert_eq!(
            verify(&forged, &k.verifying_key()),
            Err(CredentialError::BadSignature)
        );
        let qr = qr_payload(&k, &subject(), at);
        assert_eq!(verify_qr(&qr, &k.verifying_key()).unwrap(), subject());
        assert_eq!(
            verify_qr(&qr, &other.verifying_key()),
            Err(CredentialError::BadSignature)
        );
        let mut bad = qr.clone();
        bad.insert(8, 'A');
        assert!(verify_qr(&bad, &k.verifying_key()).is_err());
    }

    #[test]
    fn canonical_sorts_keys() {
        assert_eq!(
            canonical(&json!({"b": 1, "a": [true, "x"]})),
            r#"{"a":[true,"x"],"b":1}"#
        );
    }

    proptest! {
        #[test]
        fn verifiers_never_panic(s in ".{0,300}") {
            let k = SigningKey::from_bytes(&[5; 32]).verifying_key();
            prop_assert!(verify(&s, &k).is_err());
            prop_assert!(verify_qr(&s, &k).is_err());
            let with_prefix = format!("{QR_PREFIX}{s}");
            prop_assert!(verify_qr(&with_prefix, &k).is_err());
        }
    }
}
