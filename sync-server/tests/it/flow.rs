//! Building valid NEW registration packets as a station would: ID-schema-conforming demographics, ISO/IEC
//! 19794-4 finger images of a synthetic person, documents, exceptions with an exception photo, and officer
//! and supervisor sign-offs by operator keys. Shared by the integration tests and the pipeline bench
//! (`#[path]`-included), so it depends on nothing else in the test crate.
#![allow(dead_code, reason = "each user needs a different part")]

use chrono::{Duration, TimeZone as _, Utc};
use ed25519_dalek::SigningKey;
use serde_json::json;
use tessera_biometrics::iso19794_4::{self, FingerImageRecord, FingerPosition};
use tessera_biometrics::synth::SyntheticPerson;
use tessera_packet::ids::{MachineId, Rid};
use tessera_packet::manifest::{Decision, SignOff, SignOffRole};
use tessera_packet::types::{
    AuditEvent, BioAttribute, BioException, BiometricRecord, Consent, Document, ExceptionKind, Meta,
    PacketContent, PacketType,
};

/// Who a registration is for.
#[derive(Debug, Clone)]
pub struct Resident {
    /// Synthetic person id (same id = same fingers).
    pub person: u64,
    /// Impression number of the fingers (another capture of the same fingers when different).
    pub impression: u32,
    pub name: String,
    pub dob: String,
    pub gender: String,
    pub postal_code: String,
}

impl Resident {
    pub fn new(person: u64, name: &str) -> Self {
        Self {
            person,
            impression: 0,
            name: name.to_owned(),
            dob: "1990-04-12".into(),
            gender: "FLE".into(),
            postal_code: "10101".into(),
        }
    }
}

/// The fingers captured in tests (the others are declared as exceptions, with an exception photo).
pub const CAPTURED: [(BioAttribute, FingerPosition); 2] = [
    (BioAttribute::RightIndex, FingerPosition::RightIndex),
    (BioAttribute::LeftIndex, FingerPosition::LeftIndex),
];

/// ISO/IEC 19794-4 record of one synthetic finger.
pub fn finger_record(person: u64, pos: FingerPosition, impression: u32) -> Vec<u8> {
    let img = SyntheticPerson::new(person).finger(pos, impression);
    let rec = FingerImageRecord::from_gray(pos, &img, 500, 60).unwrap();
    iso19794_4::encode(&[rec])
}

fn finger_position(a: BioAttribute) -> Option<FingerPosition> {
    let i = [
        BioAttribute::RightThumb,
        BioAttribute::RightIndex,
        BioAttribute::RightMiddle,
        BioAttribute::RightRing,
        BioAttribute::RightLittle,
        BioAttribute::LeftThumb,
        BioAttribute::LeftIndex,
        BioAttribute::LeftMiddle,
        BioAttribute::LeftRing,
        BioAttribute::LeftLittle,
    ]
    .iter()
    .position(|x| *x == a)?;
    Some(FingerPosition::TEN[i])
}

/// A NEW packet's content for `r`, registered at center 10001 on `machine` with sequence `seq`.
/// `fingers`: which finger attributes to capture (others are exceptions).
pub fn content(machine: &MachineId, seq: u32, r: &Resident, fingers: &[BioAttribute]) -> PacketContent {
    let center = "10001".parse().unwrap();
    let created = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap() + Duration::seconds(i64::from(seq));
    let rid = Rid::new(&center, machine, seq, created).unwrap();
    let identity = json!({
        "IDSchemaVersion": 1.0,
        "fullName": [{"language": "eng", "value": r.name}],
        "dateOfBirth": r.dob,
        "gender": [{"language": "eng", "value": r.gender}],
        "residenceStatus": [{"language": "eng", "value": "NFR"}],
        "addressLine1": [{"language": "eng", "value": "1 Main Street"}],
        "region": [{"language": "eng", "value": "NOR"}],
        "province": [{"language": "eng", "value": "NOR-HL"}],
        "city": [{"language": "eng", "value": "HLB"}],
        "postalCode": r.postal_code,
        "phone": "+12345678901",
        "proofOfAddress": {"format": "pdf", "type": "DOC002", "value": "proofOfAddress"},
        "individualBiometrics": {"format": "cbeff", "version": 1, "value": "individualBiometrics_bio_CBEFF"}
    });
    let biometrics = BioAttribute::ALL
        .iter()
        .map(|a| {
            let captured = fingers.contains(a);
            BiometricRecord {
                attribute: *a,
                image: if captured {
                    finger_record(r.person, finger_position(*a).unwrap(), r.impression)
                } else {
                    Vec::new()
                },
                format: if captured {
                    "ISO19794_4_2011".into()
                } else {
                    String::new()
                },
                quality: if captured { 60 } else { 0 },
                retries: 0,
                exception: (!captured).then_some(BioException {
                    kind: ExceptionKind::Temporary,
                    remark: None,
                }),
                force_captured: false,
                sbi_data_block: None,
                device: None,
                captured_at: created,
            }
        })
        .collect();
    let doc = |name: &str, category: &str, doc_type: &str| Document {
        name: name.into(),
        category: category.into(),
        doc_type: doc_type.into(),
        mime: "application/pdf".into(),
        ref_number: None,
        content: format!("%PDF-1.4 test document {name}").into_bytes(),
    };
    PacketContent {
        rid,
        packet_type: PacketType::New,
        created_at: created,
        id_schema_version: "1.0".into(),
        identity,
        meta: Meta {
            center_id: center,
            machine_id: machine.clone(),
            operator_id: "officer01".into(),
            supervisor: None,
            devices: vec![],
            geo: None,
            consent: Consent {
                given: true,
                text_version: "consent-v1".into(),
                language: "eng".into(),
            },
            languages: vec!["eng".into()],
            pre_registration_id: None,
            uin: None,
            changed_groups: vec![],
            device_clock: created,
            server_clock_offset_ms: None,
            audit: vec![AuditEvent {
                at: created,
                actor: "officer01".into(),
                action: "REG_SEAL".into(),
                detail: String::new(),
            }],
        },
        biometrics,
        evidence: vec![
            doc("proofOfAddress", "POA", "DOC002"),
            doc("exceptionPhoto", "EXCEPTION_PHOTO", "DOC007"),
        ],
        optional: vec![],
    }
}

/// Seals `c` for `recipients` with the machine key, then appends the officer's and the supervisor's
/// sign-offs. Returns the packet bytes.
pub fn seal_signed(
    c: &PacketContent,
    recipients: &[age::x25519::Recipient],
    machine: &SigningKey,
    officer: &SigningKey,
    supervisor: &SigningKey,
    supervisor_decision: Decision,
) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.tpkt");
    tessera_packet::seal_to_file(c, recipients, machine, &path).unwrap();
    let digest = tessera_packet::read_file(&path).unwrap().manifest_digest();
    let s1 = SignOff::create(
        SignOffRole::Officer,
        "officer01",
        Decision::Approved,
        c.created_at,
        &digest,
        officer,
    )
    .unwrap();
    tessera_packet::append_signoff(&path, &s1).unwrap();
    let s2 = SignOff::create(
        SignOffRole::Supervisor,
        "supervisor01",
        supervisor_decision,
        c.created_at + Duration::minutes(5),
        &digest,
        supervisor,
    )
    .unwrap();
    tessera_packet::append_signoff(&path, &s2).unwrap();
    std::fs::read(&path).unwrap()
}
