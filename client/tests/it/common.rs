//! Shared helpers: a station initialised in a temporary directory with a fixed clock and test operators.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, TimeZone, Utc};
use tessera_packet::clock::FixedClock;
use tessera_station::crypto::KdfParams;
use tessera_station::masterdata::{Document, read_folder};
use tessera_station::operators::{Operator, OperatorBundle, Role, hash_password};
use tessera_station::station::{InitParams, MachineIdentity, Station};

/// The sample country configuration folder.
pub fn sample_country() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/sample-country")
}

/// Test passwords (test vectors only).
pub const OFFICER_PW: &str = "officer-test-password";
pub const SUPERVISOR_PW: &str = "supervisor-test-password";
pub const OTHER_PW: &str = "other-test-password";

/// 2026-11-20 09:00 UTC.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap()
}

fn hashes() -> &'static (String, String, String) {
    static H: OnceLock<(String, String, String)> = OnceLock::new();
    H.get_or_init(|| {
        (
            hash_password(OFFICER_PW).unwrap(),
            hash_password(SUPERVISOR_PW).unwrap(),
            hash_password(OTHER_PW).unwrap(),
        )
    })
}

/// Operators: officer1 (officer, 10001), super1 (supervisor+officer, 10001), far1 (officer, 10002),
/// gone1 (inactive officer, 10001).
pub fn bundle() -> OperatorBundle {
    let (o, s, x) = hashes().clone();
    let op = |id: &str, roles: Vec<Role>, center: &str, active: bool, h: &str| Operator {
        id: id.into(),
        name: format!("Test {id}"),
        roles,
        center_id: center.into(),
        active,
        password_hash: h.into(),
    };
    OperatorBundle {
        version: "1".into(),
        operators: vec![
            op("officer1", vec![Role::Officer], "10001", true, &o),
            op("super1", vec![Role::Supervisor, Role::Officer], "10001", true, &s),
            op("far1", vec![Role::Officer], "10002", true, &x),
            op("gone1", vec![Role::Officer], "10001", false, &x),
        ],
    }
}

/// A test environment.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub clock: Arc<FixedClock>,
    pub recovery: age::x25519::Identity,
    /// The server's packet key (test vector).
    pub server: age::x25519::Identity,
}

impl Env {
    pub fn home(&self) -> &Path {
        self.dir.path()
    }
}

pub fn master_docs() -> Vec<Document> {
    read_folder(&sample_country()).unwrap()
}

/// Initialises a station (center 10001, machine 10077) as officer1; also gives super1 a slot.
pub fn init_station() -> (Env, Station, MachineIdentity) {
    init_station_with(master_docs())
}

pub fn new_env() -> Env {
    Env {
        dir: tempfile::tempdir().unwrap(),
        clock: Arc::new(FixedClock::new(t0())),
        recovery: age::x25519::Identity::generate(),
        server: age::x25519::Identity::generate(),
    }
}

pub fn init_station_with(docs: Vec<Document>) -> (Env, Station, MachineIdentity) {
    let env = new_env();
    let (st, id) = init_in(&env, docs).unwrap();
    (env, st, id)
}

pub fn init_in(env: &Env, docs: Vec<Document>) -> tessera_station::Result<(Station, MachineIdentity)> {
    let recipient = env.recovery.to_public().to_string();
    let (mut st, id) = Station::init(
        InitParams {
            home: env.dir.path(),
            center_id: "10001".parse().unwrap(),
            machine_id: "10077".parse().unwrap(),
            recovery_recipient: &recipient,
            master_data: docs,
            operators: bundle(),
            packet_recipients: vec![env.server.to_public().to_string()],
            operator_id: "officer1",
            password: OFFICER_PW,
            kdf: KdfParams::TEST_ONLY_FAST,
        },
        env.clock.clone(),
    )?;
    st.add_operator_slot("super1", SUPERVISOR_PW)?;
    Ok((st, id))
}

pub fn login(env: &Env, operator: &str, password: &str) -> tessera_station::Result<Station> {
    Station::login_with(
        env.home(),
        operator,
        password,
        env.clock.clone(),
        KdfParams::TEST_ONLY_FAST,
    )
}

/// A tiny PDF (test data).
pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

/// A PNG of `w` x `h` pixels (test data).
#[allow(clippy::cast_possible_truncation, reason = "test pattern wraps on purpose")]
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, 77]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// A capture of `a`: fingers get a well-formed ISO/IEC 19794-4 record (of a patterned image, not a real
/// fingerprint: the server validates the record's structure), other attributes synthetic bytes.
pub fn capture(a: tessera_packet::types::BioAttribute, quality: u8) -> tessera_station::workflow::Capture {
    let image = if a.modality() == tessera_packet::types::Modality::Finger {
        let img = image::GrayImage::from_fn(160, 200, |x, y| {
            image::Luma([((x * 7 + y * 13 + a as u32 * 31) % 256).to_le_bytes()[0]])
        });
        let rec = tessera_biometrics::FingerImageRecord::from_gray(
            tessera_biometrics::iso19794_4::FingerPosition::Unknown,
            &img,
            500,
            quality,
        )
        .unwrap();
        tessera_biometrics::iso19794_4::encode(&[rec])
    } else {
        tessera_packet::sample::filler(a as u64 + 1, 2_000)
    };
    tessera_station::workflow::Capture {
        attribute: a,
        image,
        format: "SAMPLE".into(),
        quality,
        retries: 1,
        force_captured: false,
        sbi_data_block: Some(format!("eyJhbGciOiJFZERTQSJ9.{a}.c2ln")),
        device: None,
        captured_at: t0(),
    }
}

/// Fills a NEW adult draft completely and returns its id.
pub fn complete_adult_draft(st: &mut Station) -> i64 {
    let id = st.start_draft("NEW").unwrap();
    let answers: tessera_station::forms::Answers =
        serde_json::from_value(crate::forms::adult_answers()).unwrap();
    st.save_answers(id, answers).unwrap();
    st.import_document(id, "proofOfAddress", "DOC002", Some("BILL-1".into()), PDF)
        .unwrap();
    st.import_document(id, "proofOfIdentity", "DOC001", None, &png(300, 200))
        .unwrap();
    for a in tessera_packet::types::BioAttribute::ALL {
        st.add_capture(id, capture(a, 80)).unwrap();
    }
    id
}
