//! Station benchmarks (prints figures; run with `cargo bench -p tessera-station --bench station`):
//! - last capture to sealed, fsynced, officer-signed packet for a full packet (10 fingers, 2 irises, face,
//!   3 documents; about 3 MB);
//! - dashboard counts and queue listing with 10,000 packets queued;
//! - CLI cold start (`--help`, and `status` including the Argon2id login and opening SQLCipher);
//! - upload throughput of `sync` (tus chunks of 8 MiB, checksums, signed requests, receipt checks) to the
//!   real server in-process on loopback (embedded SQLite).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "benchmark program"
)]
#![allow(clippy::disallowed_methods, reason = "benchmarks read the real clock")]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::params;
use serde_json::json;
use tessera_packet::clock::SystemClock;
use tessera_packet::sample::filler;
use tessera_packet::types::{BioAttribute, Modality};
use tessera_station::crypto::KdfParams;
use tessera_station::forms::Answers;
use tessera_station::masterdata::read_folder;
use tessera_station::operators::{Operator, OperatorBundle, Role, hash_password};
use tessera_station::station::{InitParams, Station};
use tessera_station::workflow::Capture;

const PW: &str = "bench-password";

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], *v.last().unwrap())
}

fn station(home: &std::path::Path, kdf: KdfParams) -> Station {
    let mut docs =
        read_folder(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/sample-country")).unwrap();
    let d = docs.iter_mut().find(|d| d.name == "station-settings").unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&d.body).unwrap();
    v["freeze"]["maxPacketsAwaitingApproval"] = 1_000_000.into();
    d.body = v.to_string();
    let bundle = OperatorBundle {
        version: "1".into(),
        operators: vec![Operator {
            id: "officer1".into(),
            name: "Bench".into(),
            roles: vec![Role::Officer, Role::Supervisor],
            center_id: "10001".into(),
            active: true,
            password_hash: hash_password(PW).unwrap(),
        }],
    };
    let (st, _) = Station::init(
        InitParams {
            home,
            center_id: "10001".parse().unwrap(),
            machine_id: "10077".parse().unwrap(),
            recovery_recipient: &age::x25519::Identity::generate().to_public().to_string(),
            master_data: docs,
            operators: bundle,
            packet_recipients: vec![age::x25519::Identity::generate().to_public().to_string()],
            operator_id: "officer1",
            password: PW,
            kdf,
        },
        Arc::new(SystemClock),
    )
    .unwrap();
    st
}

/// A finger image record (ISO/IEC 19794-4) of synthetic person `person`.
fn finger_record(person: &tessera_biometrics::synth::SyntheticPerson, a: BioAttribute) -> Vec<u8> {
    let pos = tessera_station::crosscheck::finger_position(a).unwrap();
    let img = person.finger(pos, 0);
    tessera_biometrics::iso19794_4::encode(&[tessera_biometrics::FingerImageRecord::from_gray(
        pos, &img, 500, 80,
    )
    .unwrap()])
}

/// [`full_draft`] with real synthetic fingers (so the cross-checks run at sealing).
fn full_draft_real_fingers(st: &mut Station, n: u64) -> i64 {
    let id = full_draft(st, n);
    let person = tessera_biometrics::synth::SyntheticPerson::new(10_000 + n);
    for a in BioAttribute::ALL
        .iter()
        .filter(|a| a.modality() == Modality::Finger)
    {
        st.add_capture(
            id,
            Capture {
                attribute: *a,
                image: finger_record(&person, *a),
                format: "ISO19794-4:2011".into(),
                quality: 90,
                retries: 1,
                force_captured: false,
                sbi_data_block: Some("eyJhbGciOiJFZERTQSJ9.e30.c2ln".into()),
                device: None,
                captured_at: chrono::Utc::now(),
            },
        )
        .unwrap();
    }
    id
}

fn full_draft(st: &mut Station, n: u64) -> i64 {
    let id = st.start_draft("NEW").unwrap();
    let answers: Answers = serde_json::from_value(json!({
        "process": "NEW", "languages": ["eng", "fra"], "consent": true,
        "demographics": {
            "fullName": {"eng": "Bench Resident", "fra": "Résident Banc"}, "dateOfBirth": "1980-01-01",
            "gender": "MLE", "residenceStatus": "NFR",
            "addressLine1": {"eng": "1 Bench Road", "fra": "1 rue du Banc"},
            "region": "NOR", "province": "NOR-HL", "city": "HLB", "postalCode": "10101"
        },
        "documents": {
            "proofOfAddress": {"type": "DOC002", "file": "a.pdf"},
            "proofOfIdentity": {"type": "DOC001", "file": "b.pdf"},
            "proofOfDateOfBirth": {"type": "DOC004", "file": "c.pdf"}
        }
    }))
    .unwrap();
    st.save_answers(id, answers).unwrap();
    for (k, f) in ["proofOfAddress", "proofOfIdentity", "proofOfDateOfBirth"]
        .iter()
        .enumerate()
    {
        let mut pdf = b"%PDF-1.4\n".to_vec();
        pdf.extend(filler(n * 10 + k as u64, 500_000));
        let t = ["DOC002", "DOC001", "DOC004"][k];
        st.import_document(id, f, t, None, &pdf).unwrap();
    }
    for (i, a) in BioAttribute::ALL.iter().enumerate() {
        let len = match a.modality() {
            Modality::Finger | Modality::Iris => 100_000,
            Modality::Face => 300_000,
        };
        st.add_capture(
            id,
            Capture {
                attribute: *a,
                image: filler(n * 100 + i as u64, len),
                format: "SAMPLE".into(),
                quality: 90,
                retries: 1,
                force_captured: false,
                sbi_data_block: Some("eyJhbGciOiJFZERTQSJ9.e30.c2ln".into()),
                device: None,
                captured_at: chrono::Utc::now(),
            },
        )
        .unwrap();
    }
    id
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    println!("tessera-station benchmarks (figures: median / max)");

    // 1. Seal a full packet.
    let mut st = station(&dir.path().join("seal"), KdfParams::TEST_ONLY_FAST);
    let mut times = Vec::new();
    let mut size = 0;
    for n in 0..12 {
        let id = full_draft(&mut st, n);
        let t = Instant::now();
        let s = st.seal_draft(id).unwrap();
        times.push(t.elapsed());
        size = s.size;
    }
    let (m, x) = median(times);
    println!(
        "seal full packet ({:.1} MB: 10 fingers, 2 irises, face, 3 documents; fsynced, officer-signed): {:.1} ms / {:.1} ms",
        size as f64 / 1e6,
        m.as_secs_f64() * 1e3,
        x.as_secs_f64() * 1e3
    );

    // 2. Dashboard and queue with 10,000 packets.
    // The same with real synthetic fingers and an officer with ten enrolled fingers: the cross-checks
    // (45 finger pairs of the applicant, 10 x 10 against the officer) run inside the timed seal.
    let mut st = station(&dir.path().join("seal-xcheck"), KdfParams::TEST_ONLY_FAST);
    let officer = tessera_biometrics::synth::SyntheticPerson::new(9_999);
    let fingers: Vec<(BioAttribute, Vec<u8>)> = BioAttribute::ALL
        .iter()
        .filter(|a| a.modality() == Modality::Finger)
        .map(|a| (*a, finger_record(&officer, *a)))
        .collect();
    let enrolled = st.enrol_operator_fingers(&fingers).unwrap();
    assert_eq!(enrolled.fingers.len(), 10);
    let mut times = Vec::new();
    for n in 0..12 {
        let id = full_draft_real_fingers(&mut st, n);
        let t = Instant::now();
        let s = st.seal_draft(id).unwrap();
        times.push(t.elapsed());
        size = s.size;
    }
    let (m, x) = median(times);
    println!(
        "seal full packet with real fingers and the biometric cross-checks ({:.1} MB): {:.1} ms / {:.1} ms",
        size as f64 / 1e6,
        m.as_secs_f64() * 1e3,
        x.as_secs_f64() * 1e3
    );

    let home = dir.path().join("queue");
    let st = station(&home, KdfParams::TEST_ONLY_FAST);
    {
        let conn = st.store().conn();
        conn.execute_batch("BEGIN").unwrap();
        let states = ["AWAITING_APPROVAL", "APPROVED", "REJECTED", "EXPORTED"];
        for i in 0..10_000u32 {
            conn.execute(
                "INSERT INTO packets (rid, process, state, operator_id, file_name, size, sha256, created_at, updated_at)
                 VALUES (?1, 'NEW', ?2, 'officer1', ?3, 3000000, ?4, ?5, ?5)",
                params![
                    format!("1000110077{:05}20261120{:06}", i % 99_999 + 1, i),
                    states[(i % 4) as usize],
                    format!("{i}.tpkt"),
                    format!("{i:064}"),
                    format!("2026-11-20T09:{:02}:{:02}.{:06}Z", (i / 60) % 60, i % 60, i),
                ],
            )
            .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    }
    let mut dash = Vec::new();
    let mut queue = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let d = st.dashboard().unwrap();
        dash.push(t.elapsed());
        assert_eq!(d.awaiting_approval + d.approved + d.rejected + d.exported, 10_000);
        let t = Instant::now();
        let q = st.queue(Some("AWAITING_APPROVAL"), 50, 1_000).unwrap();
        queue.push(t.elapsed());
        assert_eq!(q.len(), 50);
    }
    let (m, x) = median(dash);
    println!(
        "dashboard counts, 10,000 packets queued: {:.2} ms / {:.2} ms",
        m.as_secs_f64() * 1e3,
        x.as_secs_f64() * 1e3
    );
    let (m, x) = median(queue);
    println!(
        "queue listing (page of 50 at offset 1,000), 10,000 packets: {:.2} ms / {:.2} ms",
        m.as_secs_f64() * 1e3,
        x.as_secs_f64() * 1e3
    );
    drop(st);

    // 3. CLI cold start.
    let bin = env!("CARGO_BIN_EXE_tessera-station");
    let mut help = Vec::new();
    let mut status = Vec::new();
    let cli_home = dir.path().join("cli");
    drop(station(&cli_home, KdfParams::DEFAULT));
    for _ in 0..10 {
        let t = Instant::now();
        assert!(Command::new(bin).arg("--help").output().unwrap().status.success());
        help.push(t.elapsed());
        let t = Instant::now();
        let o = Command::new(bin)
            .args(["status", "-o", "officer1"])
            .env("TESSERA_STATION_HOME", &cli_home)
            .env("TESSERA_STATION_PASSWORD", PW)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        status.push(t.elapsed());
    }
    let (m, x) = median(help);
    println!(
        "CLI cold start, --help: {:.1} ms / {:.1} ms",
        m.as_secs_f64() * 1e3,
        x.as_secs_f64() * 1e3
    );
    let (m, x) = median(status);
    println!(
        "CLI cold start, status (Argon2id 19 MiB login + SQLCipher open + recovery check): {:.1} ms / {:.1} ms",
        m.as_secs_f64() * 1e3,
        x.as_secs_f64() * 1e3
    );

    // 4. Upload throughput to the real server over loopback.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        let settings = tessera_server::settings::Settings {
            data_dir: dir.path().join("server"),
            listen: "127.0.0.1:0".parse().unwrap(),
            uin_pool_target: 100,
            uin_pool_low_water: 10,
            pipeline_workers: 0,
            ..tessera_server::settings::Settings::default()
        };
        let state = tessera_server::prepare(settings, Arc::new(SystemClock))
            .await
            .unwrap();
        tessera_server::start(state).await.unwrap()
    });
    let mut st = station(&dir.path().join("upload"), KdfParams::TEST_ONLY_FAST);
    let e = rt
        .block_on(st.enrol_machine(&format!("http://{}", server.addr), "bench"))
        .unwrap();
    rt.block_on(tessera_server::machines::set_status(
        server.state.store.as_ref(),
        &e.machine_id,
        tessera_packet::wire::MachineStatus::Active,
        None,
        chrono::Utc::now().timestamp(),
    ))
    .unwrap();
    let mut bytes = 0u64;
    for n in 0..10 {
        let id = full_draft(&mut st, 1000 + n);
        let s = st.seal_draft(id).unwrap();
        st.approve(&s.rid).unwrap();
        bytes += s.size;
    }
    let opts = tessera_station::sync::SyncOptions {
        master_data: false,
        status: false,
        retention: false,
        chunk_bytes: 8 * 1024 * 1024,
        ..Default::default()
    };
    let t = Instant::now();
    let r = rt.block_on(st.sync(&opts)).unwrap();
    let took = t.elapsed();
    assert_eq!(r.uploaded.len(), 10, "{r:?}");
    println!(
        "sync upload, 10 full packets ({:.1} MB) to the server on loopback: {:.0} ms, {:.1} MB/s",
        bytes as f64 / 1e6,
        took.as_secs_f64() * 1e3,
        bytes as f64 / 1e6 / took.as_secs_f64()
    );
    rt.block_on(server.stop()).unwrap();
}
