//! Device signatures on captured biometrics, checked in the validation stage.
//!
//! Each biometric a station captures through SBI keeps the device's signed data block (a compact JWS with an
//! `x5c` chain, see `docs/devices.md`). The server verifies it again, independently of the station:
//! - the chain leads to a device-provider CA certificate the server publishes to stations (sync kind
//!   `certificates`, items with a `pem` field) and every certificate was valid when the packet was created;
//! - the signed `bioValue` is byte for byte the ISO record the packet carries for that attribute, the signed
//!   segment is that attribute (a right index finger cannot be passed off as a left thumb), and the purpose is
//!   registration;
//! - the signed digital id (same chain rules) names the device the packet's device reference names.
//!
//! A failure rejects the packet (`validate:device_signature_invalid:<attribute>` and its siblings): the
//! station vouched for a biometric no certified device vouches for. How missing blocks are treated is the
//! [`DeviceSignatures`] policy.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tessera_packet::clock::FixedClock;
use tessera_packet::types::{BiometricRecord, PacketContent};
use tessera_sbi::jws::TrustStore;
use tessera_sbi::protocol::{BioSubType, CaptureData, DigitalId, Purpose, b64url_decode};

use crate::validate::Rejection;

/// How the validation stage treats the device signatures of captured biometrics
/// (`device_signatures` in the settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceSignatures {
    /// Every captured biometric must carry a device-signed data block that verifies (the default: what a
    /// ministry certifying its devices expects).
    #[default]
    Require,
    /// Blocks that are present must verify; biometrics without one are accepted (a transition period, or
    /// packets from stations whose devices predate certification).
    WhenPresent,
    /// Not checked (tests and laboratories only).
    Off,
}

/// The trust store of the device-provider CA certificates in the sync items' bodies (`{"pem": "..."}`).
/// Items without a `pem` field are skipped; a `pem` field that holds no valid certificate is an error
/// naming the item.
pub fn trust_from_items<'a>(
    items: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
) -> Result<TrustStore, String> {
    let mut trust = TrustStore::new();
    for (key, body) in items {
        let Some(pem) = body.get("pem").and_then(|p| p.as_str()) else {
            continue;
        };
        match trust.add_pem(pem) {
            Ok(0) => {
                return Err(format!(
                    "certificates item {key}: no certificate in its pem field"
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("certificates item {key}: {e}")),
        }
    }
    Ok(trust)
}

/// Checks the device signatures of `content`'s captured biometrics (excepted ones carry none).
pub fn check(trust: &TrustStore, policy: DeviceSignatures, content: &PacketContent) -> Result<(), Rejection> {
    if policy == DeviceSignatures::Off {
        return Ok(());
    }
    let at = FixedClock::new(content.created_at);
    for b in content
        .biometrics
        .iter()
        .filter(|b| b.exception.is_none() && !b.image.is_empty())
    {
        let Some(token) = b.sbi_data_block.as_deref() else {
            if policy == DeviceSignatures::Require {
                return Err(Rejection::field("device_signature_missing", b.attribute.as_str()));
            }
            continue;
        };
        if trust.is_empty() {
            return Err(Rejection::new("device_ca_not_configured"));
        }
        check_one(trust, &at, b, token, content.created_at)?;
    }
    Ok(())
}

fn check_one(
    trust: &TrustStore,
    at: &FixedClock,
    b: &BiometricRecord,
    token: &str,
    created_at: DateTime<Utc>,
) -> Result<(), Rejection> {
    let attr = b.attribute.as_str();
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        // The reason names the attribute only; the detail (certificate subjects, no biometric data) is for
        // the operator's log.
        tracing::info!(attribute = attr, %created_at, "device signature rejected: {what}: {e}");
        Rejection::field("device_signature_invalid", attr)
    };
    let data = trust
        .verify("SBI data block", token, at)
        .map_err(|e| invalid("data block", &e))?;
    let data: CaptureData =
        serde_json::from_slice(&data.payload).map_err(|e| invalid("data block payload", &e))?;
    let mismatch = |what: &str| {
        tracing::info!(
            attribute = attr,
            "device data block does not match the packet: {what}"
        );
        Rejection::field("device_data_mismatch", attr)
    };
    if data.purpose != Purpose::Registration {
        return Err(mismatch("purpose is not registration"));
    }
    let segment = data.bio_sub_type.unwrap_or(BioSubType::Unknown);
    if segment.attribute(data.bio_type) != Some(b.attribute) {
        return Err(mismatch("signed segment is another attribute"));
    }
    let iso = b64url_decode("bioValue", &data.bio_value).map_err(|e| invalid("bioValue", &e))?;
    if iso != b.image {
        return Err(mismatch("signed record differs from the packet's record"));
    }
    let did = trust
        .verify("digital id", &data.digital_id, at)
        .map_err(|e| invalid("digital id", &e))?;
    let did: DigitalId =
        serde_json::from_slice(&did.payload).map_err(|e| invalid("digital id payload", &e))?;
    if did.serial_no != data.device_code || did.bio_type != data.bio_type {
        return Err(mismatch("digital id names another device"));
    }
    if let Some(dev) = &b.device
        && dev.serial_no != did.serial_no
    {
        return Err(mismatch("packet's device reference names another serial number"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use tessera_packet::sample::{SampleSize, sample_content};
    use tessera_packet::types::BioAttribute;
    use tessera_sbi::jws::{Alg, DeviceSigner};
    use tessera_sbi::pki::ProviderCa;
    use tessera_sbi::protocol::b64url_encode;

    struct Rig {
        ca: ProviderCa,
        signer: DeviceSigner,
        trust: TrustStore,
    }

    fn rig(now: DateTime<Utc>) -> Rig {
        let ca = ProviderCa::generate(
            "Test Provider CA",
            Alg::EdDsa,
            now - Duration::days(1),
            now + Duration::days(365),
        )
        .unwrap();
        let signer = ca
            .issue_device(
                "SER-1",
                Alg::EdDsa,
                now - Duration::days(1),
                now + Duration::days(30),
            )
            .unwrap();
        let trust = trust_from_items([("ca", &serde_json::json!({"pem": ca.cert_pem()}))]).unwrap();
        Rig { ca, signer, trust }
    }

    fn block(signer: &DeviceSigner, serial: &str, sub: &str, iso: &[u8], purpose: &str) -> String {
        let did = serde_json::json!({"serialNo": serial, "make": "Make", "model": "M1", "type": "Finger",
            "deviceSubType": "Slap", "deviceProvider": "Provider", "deviceProviderId": "P1",
            "dateTime": "2026-11-29T09:00:00Z"});
        let did = signer.sign(&serde_json::to_vec(&did).unwrap()).unwrap();
        let data = serde_json::json!({"digitalId": did, "bioType": "Finger", "bioSubType": sub,
            "deviceCode": serial, "deviceServiceVersion": "1.0", "purpose": purpose, "env": "Developer",
            "bioValue": b64url_encode(iso), "transactionId": "t-1", "timestamp": "2026-11-29T09:00:00Z",
            "requestedScore": "40", "qualityScore": "80"});
        signer.sign(&serde_json::to_vec(&data).unwrap()).unwrap()
    }

    /// A packet with only its right index finger captured, signed by `signer`'s device.
    fn content(signer: &DeviceSigner) -> PacketContent {
        let mut c = sample_content(1, SampleSize::Small);
        c.biometrics.retain(|b| b.attribute == BioAttribute::RightIndex);
        let b = c.biometrics.first_mut().unwrap();
        b.exception = None;
        b.device.as_mut().unwrap().serial_no = "SER-1".into();
        b.sbi_data_block = Some(block(
            signer,
            "SER-1",
            "Right IndexFinger",
            &b.image,
            "Registration",
        ));
        c
    }

    fn reason(r: Result<(), Rejection>) -> String {
        r.unwrap_err().0
    }

    #[test]
    fn a_block_signed_by_a_certified_device_verifies() {
        let c = sample_content(1, SampleSize::Small);
        let r = rig(c.created_at);
        let c = content(&r.signer);
        check(&r.trust, DeviceSignatures::Require, &c).unwrap();
    }

    #[test]
    fn a_swapped_record_a_relabelled_finger_and_another_device_are_mismatches() {
        let base = sample_content(1, SampleSize::Small);
        let r = rig(base.created_at);
        let mut c = content(&r.signer);
        c.biometrics[0].image.push(0);
        assert_eq!(
            reason(check(&r.trust, DeviceSignatures::Require, &c)),
            "device_data_mismatch:rightIndex"
        );

        let mut c = content(&r.signer);
        c.biometrics[0].attribute = BioAttribute::LeftThumb;
        assert_eq!(
            reason(check(&r.trust, DeviceSignatures::Require, &c)),
            "device_data_mismatch:leftThumb"
        );

        let mut c = content(&r.signer);
        c.biometrics[0].device.as_mut().unwrap().serial_no = "SER-2".into();
        assert_eq!(
            reason(check(&r.trust, DeviceSignatures::Require, &c)),
            "device_data_mismatch:rightIndex"
        );

        let mut c = content(&r.signer);
        let img = c.biometrics[0].image.clone();
        c.biometrics[0].sbi_data_block = Some(block(&r.signer, "SER-1", "Right IndexFinger", &img, "Auth"));
        assert_eq!(
            reason(check(&r.trust, DeviceSignatures::Require, &c)),
            "device_data_mismatch:rightIndex"
        );
    }

    #[test]
    fn an_untrusted_provider_a_forged_signature_or_an_expired_device_is_invalid() {
        let base = sample_content(1, SampleSize::Small);
        let r = rig(base.created_at);
        let other = rig(base.created_at);
        let c = content(&other.signer);
        assert_eq!(
            reason(check(&r.trust, DeviceSignatures::Require, &c)),
            "device_signature_invalid:rightIndex"
        );

        let mut c = content(&r.signer);
        let img = c.biometrics[0].image.clone();
        let forged = r.signer.sign_corrupted(b"{}").unwrap();
        let good = block(&r.signer, "SER-1", "Right IndexFinger", &img, "Registration");
        // The header and payload of a good block with the signature of another message.
        let (head, _) = good.rsplit_once('.').unwrap();
        let (_, sig) = forged.rsplit_once('.').unwrap();
        c.biometrics[0].sbi_data_block = Some(format!("{head}.{sig}"));
        assert_eq!(
            reason(check(&r.trust, DeviceSignatures::Require, &c)),
            "device_signature_invalid:rightIndex"
        );

        // A packet created after the device certificate expired.
        let mut c = content(&r.signer);
        c.created_at += Duration::days(60);
        assert_eq!(
            reason(check(&r.trust, DeviceSignatures::Require, &c)),
            "device_signature_invalid:rightIndex"
        );
        drop(r.ca);
    }

    #[test]
    fn the_policy_decides_about_missing_blocks() {
        let base = sample_content(1, SampleSize::Small);
        let r = rig(base.created_at);
        let mut c = content(&r.signer);
        c.biometrics[0].sbi_data_block = None;
        assert_eq!(
            reason(check(&r.trust, DeviceSignatures::Require, &c)),
            "device_signature_missing:rightIndex"
        );
        check(&r.trust, DeviceSignatures::WhenPresent, &c).unwrap();
        // Present blocks are still checked under `when-present`; nothing is under `off`.
        let mut c = content(&r.signer);
        c.biometrics[0].image.push(1);
        assert!(check(&r.trust, DeviceSignatures::WhenPresent, &c).is_err());
        check(&r.trust, DeviceSignatures::Off, &c).unwrap();
        // No CA configured at all.
        let c = content(&r.signer);
        assert_eq!(
            reason(check(&TrustStore::new(), DeviceSignatures::Require, &c)),
            "device_ca_not_configured"
        );
    }

    #[test]
    fn certificate_items_without_a_certificate_are_named() {
        let err = trust_from_items([("bad", &serde_json::json!({"pem": "not a pem"}))]).unwrap_err();
        assert!(err.contains("certificates item bad"), "{err}");
        let t = trust_from_items([("other", &serde_json::json!({"name": "x"}))]).unwrap();
        assert!(t.is_empty());
    }
}
