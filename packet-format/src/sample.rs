//! Synthetic sample content for demos, tests, test vectors and benchmarks. No real person: names are
//! invented and image and document bytes are deterministic pseudo-random filler (incompressible, like real
//! compressed images), labelled with the format `"SAMPLE"` so nobody mistakes them for ISO records.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use crate::ids::{CenterId, MachineId, PreRegId, Rid};
use crate::types::{
    AuditEvent, BioAttribute, BioException, BiometricRecord, Consent, DeviceRef, Document, ExceptionKind,
    GeoLocation, Meta, PacketContent, PacketType,
};

/// How big the sample's binary parts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleSize {
    /// A few hundred bytes per image: for unit and property tests.
    Small,
    /// The benchmark's typical packet: ten finger images of 100 KB, two irises of 100 KB, a face of 300 KB
    /// and three documents of 500 KB (about 3 MB in all).
    Typical,
}

/// Deterministic filler bytes (xorshift64*), seeded.
pub fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn at(n: u64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0)
        .single()
        .unwrap_or_default()
        + Duration::seconds(i64::try_from(n % 100_000).unwrap_or(0))
}

/// Sample content number `n` (deterministic).
#[allow(
    clippy::expect_used,
    reason = "the ids are built from literals that are valid by construction"
)]
pub fn sample_content(n: u64, size: SampleSize) -> PacketContent {
    let (finger, iris, face, doc) = match size {
        SampleSize::Small => (300, 200, 400, 500),
        SampleSize::Typical => (100_000, 100_000, 300_000, 500_000),
    };
    let center = CenterId::from_number(10001).expect("valid center id");
    let machine = MachineId::from_number(10077).expect("valid machine id");
    let created = at(n);
    let seq = u32::try_from(n % 99_999).unwrap_or(0) + 1;
    let rid = Rid::new(&center, &machine, seq, created).expect("valid RID");
    let device = |sub: &str| DeviceRef {
        serial_no: format!("SIM-{sub}-0001"),
        provider: "Tessera".into(),
        model: "Simulator".into(),
        device_sub_type: sub.into(),
        spec_version: "0.9.5".into(),
    };
    let biometrics = BioAttribute::ALL
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let (len, dev) = match a.modality() {
                crate::types::Modality::Finger => (finger, device("Slap")),
                crate::types::Modality::Iris => (iris, device("Double")),
                crate::types::Modality::Face => (face, device("Full face")),
            };
            let excepted = *a == BioAttribute::LeftLittle && n % 5 == 4;
            BiometricRecord {
                attribute: *a,
                image: if excepted {
                    Vec::new()
                } else {
                    filler(n * 100 + i as u64, len)
                },
                format: "SAMPLE".into(),
                quality: if excepted {
                    0
                } else {
                    60 + u8::try_from(i * 3 % 35).unwrap_or(0)
                },
                retries: u32::from(i % 3 == 0),
                exception: excepted.then_some(BioException {
                    kind: ExceptionKind::Missing,
                    remark: None,
                }),
                force_captured: false,
                sbi_data_block: (!excepted).then(|| format!("eyJhbGciOiJFZERTQSJ9.sample-{n}-{a}.c2ln")),
                device: Some(dev),
                captured_at: created - Duration::seconds(60 - i as i64),
            }
        })
        .collect();
    let doc_of = |k: u64, name: &str, category: &str| Document {
        name: name.into(),
        category: category.into(),
        doc_type: "DOC001".into(),
        mime: "application/pdf".into(),
        ref_number: Some(format!("REF{n:06}{k}")),
        content: filler(n * 1000 + k, doc),
    };
    PacketContent {
        rid,
        packet_type: PacketType::New,
        created_at: created,
        id_schema_version: "1.0".into(),
        identity: json!({
            "fullName": [
                {"language": "eng", "value": format!("Sample Resident {n}")},
                {"language": "fra", "value": format!("Résident Exemple {n}")}
            ],
            "dateOfBirth": "1990/04/12",
            "gender": [{"language": "eng", "value": "FLE"}],
            "addressLine1": [{"language": "eng", "value": "1 Sample Street"}],
            "region": [{"language": "eng", "value": "RSK"}],
            "phone": "+000000000",
            "proofOfAddress": {"format": "pdf", "type": "DOC001", "value": "proofOfAddress"},
            "individualBiometrics": {"format": "iso", "version": 1.0, "value": "biometrics.json"}
        }),
        meta: Meta {
            center_id: center,
            machine_id: machine,
            operator_id: "officer01".into(),
            supervisor: None,
            devices: vec![device("Slap"), device("Double"), device("Full face")],
            geo: Some(GeoLocation {
                latitude: 34.02,
                longitude: -6.83,
                accuracy_m: Some(25.0),
            }),
            consent: Consent {
                given: true,
                text_version: "consent-v1".into(),
                language: "eng".into(),
            },
            languages: vec!["eng".into(), "fra".into()],
            pre_registration_id: "10001200000042".parse::<PreRegId>().ok(),
            uin: None,
            changed_groups: Vec::new(),
            device_clock: created,
            server_clock_offset_ms: Some(-1250),
            audit: vec![
                AuditEvent {
                    at: created - Duration::seconds(300),
                    actor: "officer01".into(),
                    action: "REG_START".into(),
                    detail: String::new(),
                },
                AuditEvent {
                    at: created,
                    actor: "officer01".into(),
                    action: "REG_SEAL".into(),
                    detail: "13 biometrics".into(),
                },
            ],
        },
        biometrics,
        evidence: vec![
            doc_of(1, "proofOfAddress", "POA"),
            doc_of(2, "proofOfIdentity", "POI"),
            doc_of(3, "proofOfBirth", "POB"),
        ],
        optional: Vec::new(),
    }
}

/// Runs the packet demo in `dir` (which should be empty): creates a machine key, an officer key, a
/// supervisor key and a server packet key, seals sample packet 1, signs it off, then inspects, verifies and
/// opens it into `dir/opened`. Returns a human-readable report.
pub fn run_demo(dir: &std::path::Path) -> Result<String, crate::PacketError> {
    use std::fmt::Write as _;

    use crate::keys;
    use crate::manifest::{Decision, SignOff, SignOffRole};

    let mut out = String::new();
    let machine = keys::generate_signing_key()?;
    let officer = keys::generate_signing_key()?;
    let supervisor = keys::generate_signing_key()?;
    let server = keys::generate_packet_identity();
    keys::write_secret_file(&dir.join("machine.key"), &keys::encode_signing_key(&machine))?;
    std::fs::write(
        dir.join("machine.pub"),
        keys::encode_verifying_key(&machine.verifying_key()),
    )
    .map_err(crate::PacketError::io("writing machine.pub"))?;
    keys::write_secret_file(&dir.join("server.key"), &keys::encode_packet_identity(&server))?;
    let _ = writeln!(
        out,
        "1. keys       machine {} / server {}",
        keys::fingerprint(&machine.verifying_key()),
        server.to_public()
    );

    let content = sample_content(1, SampleSize::Typical);
    let path = dir.join(format!("{}.tpkt", content.rid));
    let manifest = crate::seal_to_file(&content, &[server.to_public()], &machine, &path)?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let _ = writeln!(
        out,
        "2. sealed     {} ({} bytes, {} sections)",
        path.display(),
        size,
        manifest.sections.len()
    );

    let digest = crate::read_file(&path)?.manifest_digest();
    let t = content.created_at;
    let s1 = SignOff::create(
        SignOffRole::Officer,
        "officer01",
        Decision::Approved,
        t,
        &digest,
        &officer,
    )?;
    crate::append_signoff(&path, &s1)?;
    let s2 = SignOff::create(
        SignOffRole::Supervisor,
        "supervisor01",
        Decision::Approved,
        t + Duration::minutes(5),
        &digest,
        &supervisor,
    )?;
    crate::append_signoff(&path, &s2)?;
    let _ = writeln!(
        out,
        "3. signed off officer01 (officer), supervisor01 (supervisor)"
    );

    let mut packet = crate::read_file(&path)?;
    let m = packet.manifest();
    let _ = writeln!(
        out,
        "4. inspected  RID {} type {} center {} machine {} (no keys needed)",
        m.rid, m.packet_type, m.center_id, m.machine_id
    );
    packet.verify(&machine.verifying_key())?;
    let _ = writeln!(
        out,
        "5. verified   machine signature, 3 section hashes, {} sign-offs",
        packet.signoffs().len()
    );
    let opened = packet.open(&server)?;
    if opened != content {
        return Err(crate::PacketError::InvalidInput {
            reason: "opened content differs from what was sealed".into(),
        });
    }
    let mut packet = crate::read_file(&path)?;
    packet.open_to_dir(&server, &dir.join("opened"))?;
    let _ = writeln!(
        out,
        "6. opened     {} biometrics, {} documents, identical to what was sealed; files in {}",
        opened.biometrics.len(),
        opened.evidence.len(),
        dir.join("opened").display()
    );
    let _ = writeln!(
        out,
        "   try: age -d -i {} (after tessera-packet extract --section id)",
        dir.join("server.key").display()
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_sample_is_about_three_megabytes() {
        let c = sample_content(1, SampleSize::Typical);
        let total: usize = c.biometrics.iter().map(|b| b.image.len()).sum::<usize>()
            + c.evidence.iter().map(|d| d.content.len()).sum::<usize>();
        assert!((2_900_000..3_200_000).contains(&total), "{total}");
        assert_eq!(c.rid.center_id(), c.meta.center_id);
    }
}
