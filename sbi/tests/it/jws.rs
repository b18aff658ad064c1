//! JWS signing and verification: RS256 with x5c and EdDSA, chain, trust, validity.

use chrono::{Duration, TimeZone as _, Utc};
use tessera_packet::clock::FixedClock;
use tessera_sbi::jws::{Alg, JwsError, TrustStore, decode_unverified};
use tessera_sbi::pki::ProviderCa;
use tessera_sbi::protocol::b64url_encode;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap()
}

fn ca(alg: Alg) -> ProviderCa {
    ProviderCa::generate(
        "Test Provider CA",
        alg,
        t0() - Duration::days(1),
        t0() + Duration::days(365),
    )
    .unwrap()
}

fn store(ca: &ProviderCa) -> TrustStore {
    let mut s = TrustStore::new();
    s.add_der(ca.cert_der()).unwrap();
    s
}

#[test]
fn rs256_and_eddsa_round_trip_with_x5c() {
    for alg in [Alg::Rs256, Alg::EdDsa] {
        let ca = ca(alg);
        let dev = ca
            .issue_device(
                "SN0000000001",
                alg,
                t0() - Duration::hours(1),
                t0() + Duration::days(30),
            )
            .unwrap();
        let token = dev.sign(br#"{"hello":"world"}"#).unwrap();
        let un = decode_unverified("test", &token).unwrap();
        assert_eq!(un.header.alg, alg.jws_name());
        assert_eq!(un.header.typ.as_deref(), Some("JWT"));
        assert_eq!(un.header.x5c.as_ref().unwrap().len(), 2);
        let v = store(&ca).verify("test", &token, &FixedClock::new(t0())).unwrap();
        assert_eq!(v.payload, br#"{"hello":"world"}"#);
        assert_eq!(v.alg, alg);
        assert_eq!(v.signer_cn.as_deref(), Some("SN0000000001"));
    }
}

#[test]
fn mixed_algorithms_chain_verifies() {
    // RSA provider CA issuing an Ed25519 device key, and the reverse.
    for (ca_alg, dev_alg) in [(Alg::Rs256, Alg::EdDsa), (Alg::EdDsa, Alg::Rs256)] {
        let ca = ca(ca_alg);
        let dev = ca
            .issue_device("SN0000000002", dev_alg, t0(), t0() + Duration::days(1))
            .unwrap();
        let token = dev.sign(b"{}").unwrap();
        store(&ca).verify("test", &token, &FixedClock::new(t0())).unwrap();
    }
}

#[test]
fn wrong_signature_is_rejected() {
    let ca = ca(Alg::EdDsa);
    let dev = ca
        .issue_device("SN1", Alg::EdDsa, t0(), t0() + Duration::days(1))
        .unwrap();
    let bad = dev.sign_corrupted(b"{}").unwrap();
    let err = store(&ca)
        .verify("capture data block", &bad, &FixedClock::new(t0()))
        .unwrap_err();
    assert!(matches!(err, JwsError::BadSignature { .. }), "{err}");
    // A payload swapped under a valid signature.
    let good = dev.sign(br#"{"q":"90"}"#).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], b64url_encode(br#"{"q":"10"}"#), parts[2]);
    let err = store(&ca)
        .verify("x", &forged, &FixedClock::new(t0()))
        .unwrap_err();
    assert!(matches!(err, JwsError::BadSignature { .. }), "{err}");
}

#[test]
fn untrusted_chain_is_rejected() {
    let trusted = ca(Alg::EdDsa);
    let rogue = ca(Alg::EdDsa); // same name, different key
    let dev = rogue
        .issue_device("SN1", Alg::EdDsa, t0(), t0() + Duration::days(1))
        .unwrap();
    let token = dev.sign(b"{}").unwrap();
    let err = store(&trusted)
        .verify("device info", &token, &FixedClock::new(t0()))
        .unwrap_err();
    assert!(matches!(err, JwsError::UntrustedChain { .. }), "{err}");
    assert!(
        err.to_string().contains("not a trusted device-provider CA"),
        "{err}"
    );
    let err = TrustStore::new()
        .verify("device info", &token, &FixedClock::new(t0()))
        .unwrap_err();
    assert!(matches!(err, JwsError::UntrustedChain { .. }), "{err}");
}

#[test]
fn expired_and_not_yet_valid_certificates_are_rejected() {
    let ca = ca(Alg::EdDsa);
    let dev = ca
        .issue_device("SN1", Alg::EdDsa, t0(), t0() + Duration::days(30))
        .unwrap();
    let token = dev.sign(b"{}").unwrap();
    let s = store(&ca);
    s.verify("x", &token, &FixedClock::new(t0() + Duration::days(29)))
        .unwrap();
    let err = s
        .verify("x", &token, &FixedClock::new(t0() + Duration::days(31)))
        .unwrap_err();
    assert!(matches!(err, JwsError::CertificateExpired { .. }), "{err}");
    assert!(err.to_string().contains("renewed certificate"), "{err}");
    let err = s
        .verify("x", &token, &FixedClock::new(t0() - Duration::days(1)))
        .unwrap_err();
    assert!(matches!(err, JwsError::CertificateExpired { .. }), "{err}");
}

#[test]
fn leaf_only_chain_and_pem_trust() {
    let ca = ca(Alg::EdDsa);
    let mut s = TrustStore::new();
    assert_eq!(s.add_pem(ca.cert_pem()).unwrap(), 1);
    let dev = ca
        .issue_device("SN1", Alg::EdDsa, t0(), t0() + Duration::days(1))
        .unwrap();
    let token = dev.sign(b"{}").unwrap();
    s.verify("x", &token, &FixedClock::new(t0())).unwrap();
    // Editing x5c breaks the signature, since the header is signed.
    let un = decode_unverified("x", &token).unwrap();
    let mut header = un.header.clone();
    header.x5c.as_mut().unwrap().truncate(1);
    let h = b64url_encode(&serde_json::to_vec(&header).unwrap());
    let p: Vec<&str> = token.split('.').collect();
    // Re-signing is needed because the header is part of the signing input.
    let leaf_only = format!("{h}.{}.{}", p[1], p[2]);
    let err = s.verify("x", &leaf_only, &FixedClock::new(t0())).unwrap_err();
    assert!(
        matches!(err, JwsError::BadSignature { .. }),
        "header change must break the signature: {err}"
    );
    // A device that sends only its own certificate still chains to the anchor.
    let token = dev.without_ca().sign(b"{}").unwrap();
    assert_eq!(
        decode_unverified("x", &token).unwrap().header.x5c.unwrap().len(),
        1
    );
    s.verify("x", &token, &FixedClock::new(t0())).unwrap();
}

#[test]
fn malformed_tokens_give_typed_errors() {
    let s = TrustStore::new();
    let clock = FixedClock::new(t0());
    for bad in ["", "a", "a.b", "a.b.c.d", "!!!.e30.AA", "e30.e30.AA"] {
        let err = s.verify("x", bad, &clock).unwrap_err();
        assert!(
            matches!(
                err,
                JwsError::Malformed { .. }
                    | JwsError::UnsupportedAlgorithm { .. }
                    | JwsError::MissingChain { .. }
            ),
            "{bad}: {err}"
        );
    }
    let none = format!(
        "{}.{}.",
        b64url_encode(br#"{"alg":"none"}"#),
        b64url_encode(b"{}")
    );
    assert!(matches!(
        s.verify("x", &none, &clock).unwrap_err(),
        JwsError::UnsupportedAlgorithm { .. }
    ));
    let hs = format!(
        "{}.{}.AA",
        b64url_encode(br#"{"alg":"HS256"}"#),
        b64url_encode(b"{}")
    );
    assert!(matches!(
        s.verify("x", &hs, &clock).unwrap_err(),
        JwsError::UnsupportedAlgorithm { .. }
    ));
    let no_chain = format!(
        "{}.{}.AA",
        b64url_encode(br#"{"alg":"RS256"}"#),
        b64url_encode(b"{}")
    );
    assert!(matches!(
        s.verify("x", &no_chain, &clock).unwrap_err(),
        JwsError::MissingChain { .. }
    ));
    let bad_cert = format!(
        "{}.{}.AA",
        b64url_encode(br#"{"alg":"RS256","x5c":["AAAA"]}"#),
        b64url_encode(b"{}")
    );
    assert!(matches!(
        s.verify("x", &bad_cert, &clock).unwrap_err(),
        JwsError::BadCertificate { index: 0, .. }
    ));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn verify_never_panics(s in ".{0,300}") {
            let _ = TrustStore::new().verify("x", &s, &FixedClock::new(t0()));
        }
        #[test]
        fn verify_never_panics_on_dotted(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,80}", c in "[A-Za-z0-9_-]{0,80}") {
            let _ = TrustStore::new().verify("x", &format!("{a}.{b}.{c}"), &FixedClock::new(t0()));
        }
    }
}
