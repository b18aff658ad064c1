//! The processing pipeline end to end through the API, on both stores: verify/decrypt (quarantine),
//! validation (rejection), demographic and biometric dedupe, manual adjudication, UIN, ID repository,
//! credential and notification; restarts, kill -9 of the server process, and two processes on one
//! PostgreSQL database.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use sha2::{Digest as _, Sha256};
use tessera_packet::ids::Rid;
use tessera_packet::manifest::Decision;
use tessera_packet::types::{BioAttribute, PacketContent};
use tessera_packet::wire::{self, OperatorKeyRegistration, PacketStatus, PacketStatusResponse, SyncPage};
use tessera_server::store::AdjudicationCase;

use crate::common::{Backend, Station, TestServer, error_code, random_hex, sample_country};
use crate::flow::{self, CAPTURED, Resident};

pub async fn recipients(s: &Station) -> Vec<age::x25519::Recipient> {
    let page: SyncPage = s.get("/api/v1/sync/packet-keys").await.json().await.unwrap();
    page.items
        .iter()
        .filter(|i| !i.deleted)
        .map(|i| i.body["recipient"].as_str().unwrap().parse().unwrap())
        .collect()
}

pub async fn upload(s: &Station, rid: &Rid, data: &[u8]) {
    let sha = hex::encode(Sha256::digest(data));
    let r = s
        .send(
            "POST",
            "/api/v1/uploads",
            &[
                ("tus-resumable", "1.0.0".into()),
                ("upload-length", data.len().to_string()),
                ("upload-metadata", wire::upload_metadata(rid, &sha)),
            ],
            vec![],
        )
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = s
        .send(
            "PATCH",
            &location,
            &[
                ("tus-resumable", "1.0.0".into()),
                ("content-type", "application/offset+octet-stream".into()),
                ("upload-offset", "0".into()),
            ],
            data.to_vec(),
        )
        .await;
    assert_eq!(r.status(), 200);
}

pub async fn status(s: &Station, rid: &Rid) -> PacketStatusResponse {
    s.get(&format!("/api/v1/packets/{rid}/status"))
        .await
        .json()
        .await
        .unwrap()
}

pub async fn final_status(s: &Station, rid: &Rid) -> PacketStatusResponse {
    for _ in 0..600 {
        let st = status(s, rid).await;
        if !matches!(st.status, PacketStatus::Received | PacketStatus::Processing) {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("packet {rid} was not processed in 60 s");
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&random_hex(32).as_bytes()[..32].try_into().unwrap())
}

/// A station with registered officer and supervisor keys.
pub struct Desk {
    pub s: Station,
    pub officer: SigningKey,
    pub supervisor: SigningKey,
    pub keys: Vec<age::x25519::Recipient>,
}

impl Desk {
    pub async fn new(s: Station) -> Self {
        let (officer, supervisor) = (key(), key());
        for (k, id) in [(&officer, "officer01"), (&supervisor, "supervisor01")] {
            let reg = OperatorKeyRegistration::new(k, &s.machine_id, id);
            let r = s
                .send(
                    "POST",
                    "/api/v1/operators/keys",
                    &[],
                    serde_json::to_vec(&reg).unwrap(),
                )
                .await;
            assert_eq!(r.status(), 201);
        }
        let keys = recipients(&s).await;
        Self {
            s,
            officer,
            supervisor,
            keys,
        }
    }

    pub fn packet(&self, seq: u32, r: &Resident, decision: Decision) -> (Rid, Vec<u8>) {
        let fingers: Vec<BioAttribute> = CAPTURED.iter().map(|(a, _)| *a).collect();
        let c = flow::content(&self.s.machine_id, seq, r, &fingers);
        let data = self.seal(&c, decision);
        (c.rid, data)
    }

    /// Seals `c` for the server with this desk's station, officer and supervisor sign-offs.
    pub fn seal(&self, c: &PacketContent, decision: Decision) -> Vec<u8> {
        flow::seal_signed(
            c,
            &self.keys,
            &self.s.key,
            &self.officer,
            &self.supervisor,
            decision,
        )
    }

    pub async fn submit(&self, seq: u32, r: &Resident) -> Rid {
        let (rid, data) = self.packet(seq, r, Decision::Approved);
        upload(&self.s, &rid, &data).await;
        rid
    }
}

async fn case(t: &TestServer, rid: &Rid, token: &str) -> reqwest::Response {
    t.http
        .get(t.url(&format!("/api/v1/admin/adjudication/{rid}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn decide(t: &TestServer, rid: &Rid, body: serde_json::Value) -> reqwest::Response {
    t.http
        .post(t.url(&format!("/api/v1/admin/adjudication/{rid}/decision")))
        .bearer_auth(&t.adjudicator_token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn credential_uin(t: &TestServer, rid: &Rid) -> String {
    let r = t
        .http
        .get(t.url(&format!("/api/v1/admin/credentials/{rid}")))
        .bearer_auth(&t.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let issuer = t.server.as_ref().unwrap().state.keys.issuer.verifying_key();
    tessera_server::credential::verify(&text, &issuer).unwrap().uin
}

async fn every_stage(backend: Backend) {
    let Some(t) = TestServer::start(backend, |st| st.country_config = Some(sample_country())).await else {
        return;
    };
    let state = t.server.as_ref().unwrap().state.clone();
    let before = state.store.uins_available().await.unwrap();
    let d = Desk::new(t.active_station("10001").await).await;

    // 1. A valid registration: UIN, ID repository, credential, notification.
    let amina = Resident::new(1, "Amina Diallo");
    let a = d.submit(1, &amina).await;
    let st = final_status(&d.s, &a).await;
    assert_eq!((st.status, st.reason), (PacketStatus::Processed, None));
    let uin_a = credential_uin(&t, &a).await;
    let doc = tessera_server::pipeline::fetch_by_uin(&state, &uin_a)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.rid, a.to_string());
    assert_eq!(doc.identity["fullName"][0]["value"], "Amina Diallo");
    assert_eq!(doc.finger_templates.len(), 2, "templates kept, encrypted");
    let issuer = state.keys.issuer.verifying_key();
    let file = std::fs::read_to_string(state.credentials_dir.join(format!("{a}.json"))).unwrap();
    assert_eq!(
        tessera_server::credential::verify(&file, &issuer).unwrap().uin,
        uin_a
    );
    let qr = std::fs::read_to_string(state.credentials_dir.join(format!("{a}.qr.txt"))).unwrap();
    assert_eq!(
        tessera_server::credential::verify_qr(&qr, &issuer).unwrap().uin,
        uin_a
    );

    // 2. Invalid demographics: rejected with a reason code, no UIN.
    let mut bad = Resident::new(2, "Bakary Sow");
    bad.postal_code = "ABCDE".into();
    let b = d.submit(2, &bad).await;
    let st = final_status(&d.s, &b).await;
    assert_eq!(st.status, PacketStatus::Rejected);
    assert_eq!(st.reason.as_deref(), Some("validate:invalid_format:postalCode"));

    // 3. The same fingers under another name: biometric duplicate, held, adjudicated DUPLICATE.
    let mut again = Resident::new(1, "Fatou Ndiaye");
    again.impression = 1;
    again.dob = "1985-02-03".into();
    let c = d.submit(3, &again).await;
    let st = final_status(&d.s, &c).await;
    assert_eq!(st.status, PacketStatus::OnHold);
    assert_eq!(st.reason.as_deref(), Some("adjudication:biometric"));
    assert_eq!(
        error_code(case(&t, &c, &t.admin_token).await).await,
        "role_forbidden"
    );
    let r = t
        .http
        .get(t.url("/api/v1/admin/machines"))
        .bearer_auth(&t.adjudicator_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(r).await,
        "role_forbidden",
        "the adjudicator is not an admin"
    );
    let r = case(&t, &c, &t.adjudicator_token).await;
    assert_eq!(r.status(), 200);
    let k: AdjudicationCase = r.json().await.unwrap();
    assert_eq!(k.status, "PENDING");
    assert_eq!(k.candidates.len(), 1, "{:?}", k.candidates);
    assert_eq!(k.candidates[0].uin, uin_a);
    assert_eq!(k.candidates[0].kind, "biometric");
    let r = decide(
        &t,
        &c,
        serde_json::json!({"decision": "DUPLICATE", "duplicate_of": "2999999999"}),
    )
    .await;
    assert_eq!(error_code(r).await, "not_a_candidate");
    let r = decide(
        &t,
        &c,
        serde_json::json!({"decision": "DUPLICATE", "duplicate_of": uin_a}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = decide(&t, &c, serde_json::json!({"decision": "NOT_DUPLICATE"})).await;
    assert_eq!(error_code(r).await, "already_decided");
    let st = final_status(&d.s, &c).await;
    assert_eq!(st.status, PacketStatus::Duplicate);

    // 4. Same normalised name, date of birth and gender, other fingers: demographic candidate, NOT_DUPLICATE.
    let twin = Resident::new(3, "DIALLO  amina");
    let e = d.submit(4, &twin).await;
    let st = final_status(&d.s, &e).await;
    assert_eq!(st.status, PacketStatus::OnHold);
    assert_eq!(st.reason.as_deref(), Some("adjudication:demographic"));
    let r = decide(&t, &e, serde_json::json!({"decision": "NOT_DUPLICATE"})).await;
    assert_eq!(r.status(), 200);
    let st = final_status(&d.s, &e).await;
    assert_eq!(st.status, PacketStatus::Processed);
    let uin_e = credential_uin(&t, &e).await;
    assert_ne!(uin_e, uin_a);

    // 5. The supervisor rejected it at the station.
    let (f, data) = d.packet(
        5,
        &Resident::new(5, "Idrissa Ba"),
        Decision::Rejected {
            reason: "BLURRED".into(),
        },
    );
    upload(&d.s, &f, &data).await;
    let st = final_status(&d.s, &f).await;
    assert_eq!(
        (st.status, st.reason.as_deref()),
        (PacketStatus::Rejected, Some("validate:supervisor_rejected"))
    );

    // 6. Signed off by an officer key the server does not know.
    let rogue = Desk {
        s: d.s.clone(),
        officer: key(),
        supervisor: d.supervisor.clone(),
        keys: d.keys.clone(),
    };
    let g = rogue.submit(6, &Resident::new(6, "Moussa Kane")).await;
    let st = final_status(&d.s, &g).await;
    assert_eq!(
        (st.status, st.reason.as_deref()),
        (
            PacketStatus::Rejected,
            Some("validate:signoff_key_unknown:officer")
        )
    );

    // 7. Tampered after sealing: quarantined.
    let (h, mut data) = d.packet(7, &Resident::new(7, "Awa Sy"), Decision::Approved);
    let mid = data.len() / 2;
    data[mid] ^= 0x01;
    upload(&d.s, &h, &data).await;
    let st = final_status(&d.s, &h).await;
    assert_eq!(st.status, PacketStatus::Quarantined);

    let metrics = t
        .http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tessera_pipeline_packets_total{outcome=\"processed\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tessera_pipeline_packets_total{outcome=\"rejected\"} 3"),
        "{metrics}"
    );

    // Two UINs issued in all; the resident notifications reach the outbox file.
    assert_eq!(state.store.uins_available().await.unwrap(), before - 2);
    let outbox = state.settings.data_dir.join("outbox/notifications.jsonl");
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = std::fs::read_to_string(&outbox)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect();
        if lines.len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kinds = |rid: &Rid| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["rid"] == rid.to_string())
            .map(|l| l["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(kinds(&a), ["UIN_ISSUED"]);
    assert_eq!(kinds(&b), ["REJECTED"]);
    assert_eq!(kinds(&c), ["DUPLICATE"]);
    assert_eq!(kinds(&e), ["UIN_ISSUED"]);
    assert!(kinds(&h).is_empty(), "no notification for a quarantined packet");
    assert!(
        lines
            .iter()
            .any(|l| l["uin"] == uin_a.as_str() && l["address"] == "+12345678901")
    );
    // Identities, gallery, credentials and the decided case (duplicate of uin_a) are all in the database: none
    // of it holds a UIN in clear.
    let (backend, target) = t.scan_target();
    crate::common::assert_no_uin_in_clear(backend, target, &[uin_a.clone(), uin_e.clone()]).await;
    t.stop().await;
}

#[tokio::test]
async fn every_stage_sqlite() {
    every_stage(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_stage_postgres() {
    every_stage(Backend::Postgres).await;
}

#[tokio::test]
async fn unknown_operator_key_registration_is_refused() {
    let Some(t) = TestServer::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let s = t.active_station("10001").await;
    let k = key();
    let mut reg = OperatorKeyRegistration::new(&k, &s.machine_id, "officer01");
    reg.operator_id = "officer02".into();
    let r = s
        .send(
            "POST",
            "/api/v1/operators/keys",
            &[],
            serde_json::to_vec(&reg).unwrap(),
        )
        .await;
    assert_eq!(error_code(r).await, "operator_key_proof_invalid");
    let reg = OperatorKeyRegistration::new(&k, &s.machine_id, "bad id\n");
    let r = s
        .send(
            "POST",
            "/api/v1/operators/keys",
            &[],
            serde_json::to_vec(&reg).unwrap(),
        )
        .await;
    assert_eq!(error_code(r).await, "invalid_operator_id");
    let r = s.send("POST", "/api/v1/operators/keys", &[], b"{".to_vec()).await;
    assert_eq!(error_code(r).await, "malformed_body");
    let reg = OperatorKeyRegistration::new(&k, &s.machine_id, "officer01");
    let body = serde_json::to_vec(&reg).unwrap();
    assert_eq!(
        s.send("POST", "/api/v1/operators/keys", &[], body.clone())
            .await
            .status(),
        201
    );
    assert_eq!(
        s.send("POST", "/api/v1/operators/keys", &[], body).await.status(),
        200
    );
    t.stop().await;
}

#[tokio::test]
async fn jobs_survive_a_restart_of_the_server() {
    use std::sync::Arc;
    use tessera_packet::clock::SystemClock;
    use tessera_server::settings::Settings;

    let dir = tempfile::tempdir().unwrap();
    let settings = |workers: u32| Settings {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        uin_pool_target: 50,
        uin_pool_low_water: 10,
        pipeline_workers: workers,
        country_config: Some(sample_country()),
        // Synthetic packets from no device: no SBI data blocks.
        device_signatures: tessera_server::device_check::DeviceSignatures::WhenPresent,
        ..Settings::default()
    };
    // First run: receive only (no workers), as if the process died before processing.
    let state = tessera_server::prepare(settings(0), Arc::new(SystemClock))
        .await
        .unwrap();
    let server = tessera_server::start(state.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let mkey = SigningKey::from_bytes(&[21; 32]);
    let req = wire::EnrolmentRequest::new(&mkey, "10001".parse().unwrap(), "restart");
    let r: wire::EnrolmentResponse = http
        .post(format!("{base}/api/v1/machines/enrol"))
        .json(&req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state
        .store
        .set_machine_status(&r.machine_id, wire::MachineStatus::Active, None, 0)
        .await
        .unwrap();
    let s = Station {
        key: mkey,
        machine_id: r.machine_id,
        base,
        http,
    };
    let d = Desk::new(s).await;
    let rid = d.submit(7, &Resident::new(70, "Khady Fall")).await;
    assert_eq!(status(&d.s, &rid).await.status, PacketStatus::Received);
    server.stop().await.unwrap();
    drop(state);

    // Second run on the same data directory, with a worker: the job is still there and gets processed.
    let state = tessera_server::prepare(settings(1), Arc::new(SystemClock))
        .await
        .unwrap();
    let server = tessera_server::start(state).await.unwrap();
    let s = Station {
        base: format!("http://{}", server.addr),
        ..d.s.clone()
    };
    let st = final_status(&s, &rid).await;
    assert_eq!(st.status, PacketStatus::Processed);
    server.stop().await.unwrap();
}

/// A name made of letters only (the ID schema refuses digits in names): 12 -> "Bc".
pub fn letters(mut n: u32) -> String {
    let mut s = String::new();
    loop {
        s.push(char::from(b'a' + u8::try_from(n % 26).unwrap()));
        n /= 26;
        if n == 0 {
            break;
        }
    }
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap()
}

/// Packets built before a test starts a server: (rid, bytes) for `n` distinct residents.
fn packets(d: &Desk, first_seq: u32, n: u32) -> Vec<(Rid, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let r = Resident {
                dob: format!("19{:02}-01-01", 50 + i),
                ..Resident::new(
                    100 + u64::from(first_seq + i),
                    &format!("Resident {}", letters(first_seq + i)),
                )
            };
            d.packet(first_seq + i, &r, Decision::Approved)
        })
        .collect()
}

#[tokio::test]
async fn two_server_processes_on_one_postgres_never_process_a_job_twice() {
    use std::sync::Arc;
    use tessera_packet::clock::SystemClock;

    let Some(t) = TestServer::start(Backend::Postgres, |st| {
        st.country_config = Some(sample_country());
        st.pipeline_workers = 0;
    })
    .await
    else {
        return;
    };
    let d = Desk::new(t.active_station("10001").await).await;
    let list = packets(&d, 10, 8);
    for (rid, data) in &list {
        upload(&d.s, rid, data).await;
    }
    // Two more "processes" (each its own state, pool and workers) on the same database and data directory.
    let mut others = Vec::new();
    for _ in 0..2 {
        let mut settings = t.server.as_ref().unwrap().state.settings.clone();
        settings.pipeline_workers = 2;
        let state = tessera_server::prepare(settings, Arc::new(SystemClock))
            .await
            .unwrap();
        others.push(tessera_server::start(state).await.unwrap());
    }
    let mut uins = std::collections::BTreeSet::new();
    for (rid, _) in &list {
        let st = final_status(&d.s, rid).await;
        assert_eq!(st.status, PacketStatus::Processed, "{rid}: {:?}", st.reason);
        assert!(uins.insert(credential_uin(&t, rid).await), "distinct UINs");
    }
    let (client, conn) = tokio_postgres::connect(&crate::common::pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    let schema = t.schema.clone().unwrap();
    let row = client
        .query_one(&format!("SELECT count(*), max(attempts) FROM {schema}.jobs"), &[])
        .await
        .unwrap();
    let (n, max): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!((n, max), (8, 1), "each job claimed exactly once");
    let allocated: i64 = client
        .query_one(&format!("SELECT count(*) FROM {schema}.uin_assigned"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(allocated, 8);
    drop(client);
    let _ = task.await;
    for o in others {
        o.stop().await.unwrap();
    }
    t.stop().await;
}

/// Small packets with one captured finger (validation wants at least one biometric; the others are declared
/// exceptions, with an exception photo): quick to build and to process, for tests that need many.
fn plain_packets(d: &Desk, first_seq: u32, n: u32) -> Vec<(Rid, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let r = Resident {
                dob: format!("19{:02}-0{}-1{}", 30 + i % 60, 1 + i % 9, i % 10),
                ..Resident::new(
                    100 + u64::from(first_seq + i),
                    &format!("Resident {}", letters(first_seq + i)),
                )
            };
            let c = flow::content(&d.s.machine_id, first_seq + i, &r, &[CAPTURED[0].0]);
            let data = d.seal(&c, Decision::Approved);
            (c.rid, data)
        })
        .collect()
}

/// A random number of milliseconds in `range` (the OS random source: each run kills at other points).
fn random_ms(range: std::ops::Range<u64>) -> Duration {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    Duration::from_millis(range.start + u64::from_le_bytes(b) % (range.end - range.start))
}

/// The crash test: the server process (2 workers) is killed with SIGKILL at a random point 100 times
/// (`TESSERA_TEST_KILLS` changes the count) while it processes a queue of packets: mostly a random 10-200 ms
/// after it answers `/readyz`, every eighth time during start-up. After a last restart every packet ends
/// processed exactly once: one UIN each (the pool shrank by exactly the packet count, the assigned table holds
/// one entry per packet), one identity, one credential and one notification each, every job done, and jobs
/// were taken again after kills at least 10 times (kills landed mid-stage). SQLite, small packets without
/// biometrics but one finger, 1-second leases, so it stays well under a minute.
#[tokio::test]
async fn kill_dash_nine_100_times_mid_processing_each_packet_processed_exactly_once() {
    use std::process::{Command, Stdio};
    let kills: usize = std::env::var("TESSERA_TEST_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    const PACKETS: u32 = 120;
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exe = env!("CARGO_BIN_EXE_tessera-server");
    let spawn = |workers: &str| {
        Command::new(exe)
            .env_clear()
            .env("TESSERA_DATA_DIR", &data)
            .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
            .env("TESSERA_UIN_POOL_TARGET", "300")
            .env("TESSERA_UIN_POOL_LOW_WATER", "10")
            .env("TESSERA_COUNTRY_CONFIG", sample_country())
            .env("TESSERA_PIPELINE_WORKERS", workers)
            .env("TESSERA_JOB_LEASE_SECS", "1")
            .env("TESSERA_DEVICE_SIGNATURES", "when-present")
            .env("TESSERA_DEDUPE_INDEX", "exhaustive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let wait_ready = || {
        let (http, base) = (http.clone(), base.clone());
        async move {
            for _ in 0..1000 {
                if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                    && r.status() == 200
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("server did not become ready");
        }
    };
    // Receive everything first (no workers), so every kill lands while the queue is full.
    let mut child = spawn("0");
    wait_ready().await;
    let admin = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let mkey = SigningKey::from_bytes(&[33; 32]);
    let req = wire::EnrolmentRequest::new(&mkey, "10001".parse().unwrap(), "kill");
    let r: wire::EnrolmentResponse = http
        .post(format!("{base}/api/v1/machines/enrol"))
        .json(&req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ok = http
        .post(format!("{base}/api/v1/admin/machines/{}/approve", r.machine_id))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let s = Station {
        key: mkey,
        machine_id: r.machine_id,
        base: base.clone(),
        http: http.clone(),
    };
    let d = Desk::new(s).await;
    let list = plain_packets(&d, 20, PACKETS);
    for (rid, bytes) in &list {
        upload(&d.s, rid, bytes).await;
    }
    let pool = |admin: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let v: serde_json::Value = http
                .get(format!("{base}/api/v1/admin/uin-pool"))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["available"].as_u64().unwrap()
        }
    };
    let before = pool(admin.clone()).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let received_in = started.elapsed();

    for i in 0..kills {
        let mut child = spawn("2");
        if i % 8 == 7 {
            tokio::time::sleep(random_ms(0..60)).await;
        } else {
            wait_ready().await;
            tokio::time::sleep(random_ms(10..200)).await;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let killed_in = started.elapsed();

    // Restart: leases expire, jobs are taken again, and each packet ends with exactly one UIN.
    let mut child = spawn("2");
    wait_ready().await;
    let mut uins = std::collections::BTreeSet::new();
    for (rid, _) in &list {
        let st = final_status(&d.s, rid).await;
        assert_eq!(st.status, PacketStatus::Processed, "{rid}: {:?}", st.reason);
        let r = http
            .get(format!("{base}/api/v1/admin/credentials/{rid}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let vc: serde_json::Value = r.json().await.unwrap();
        assert!(
            uins.insert(vc["credentialSubject"]["uin"].as_str().unwrap().to_owned()),
            "a UIN issued twice"
        );
    }
    assert_eq!(
        pool(admin.clone()).await,
        before - u64::from(PACKETS),
        "exactly one UIN per packet"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    // The database agrees, row by row.
    let keys = tessera_server::keys::ServerKeys::load_or_create(&data, None).unwrap();
    let db = rusqlite::Connection::open(data.join("tessera.db")).unwrap();
    db.execute_batch(&format!(
        "PRAGMA key = \"x'{}'\";",
        hex::encode(keys.database_key.as_slice())
    ))
    .unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    let n = i64::from(PACKETS);
    assert_eq!(
        count("SELECT count(*) FROM uin_assigned"),
        n,
        "one UIN per packet"
    );
    assert_eq!(count("SELECT count(DISTINCT uin_hash) FROM uin_assigned"), n);
    assert_eq!(
        count("SELECT count(*) FROM identities"),
        n,
        "one identity per packet"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM identities i JOIN uin_assigned a ON a.rid = i.rid AND a.uin_hash = i.uin_hash"
        ),
        n,
        "each identity has its packet's UIN"
    );
    assert_eq!(count("SELECT count(*) FROM credentials"), n);
    assert_eq!(count("SELECT count(*) FROM outbox WHERE kind = 'UIN_ISSUED'"), n);
    assert_eq!(
        count("SELECT count(*) FROM jobs WHERE state = 'done'"),
        n,
        "every job finished"
    );
    assert_eq!(
        count("SELECT count(*) FROM packets WHERE status = 'PROCESSED'"),
        n
    );
    let attempts = count("SELECT sum(attempts) FROM jobs");
    assert!(
        attempts - n >= 10,
        "jobs were taken again only {} times: the kills did not land mid-stage ({attempts} claims for {n} jobs)",
        attempts - n
    );
    drop(db);
    eprintln!(
        "{kills} kills: received {PACKETS} packets in {:.1} s, killed {kills} times by {:.1} s, all processed by \
         {:.1} s; {attempts} job claims for {n} jobs",
        received_in.as_secs_f64(),
        killed_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // The credential files verify offline with the CLI; an altered copy does not.
    let (rid, _) = &list[0];
    let file = data.join("credentials").join(format!("{rid}.json"));
    let key = data.join("credentials/issuer-public-key.txt");
    let verify = |f: &std::path::Path| {
        Command::new(exe)
            .env_clear()
            .args([
                "verify",
                f.to_str().unwrap(),
                "--issuer-key",
                key.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let out = verify(&file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("VALID credential for UIN "));
    let out = verify(&data.join("credentials").join(format!("{rid}.qr.txt")));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let forged = dir.path().join("forged.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"gender\": \"FLE\""));
    std::fs::write(
        &forged,
        text.replace("\"gender\": \"FLE\"", "\"gender\": \"MLE\""),
    )
    .unwrap();
    let out = verify(&forged);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("INVALID"));

    // Master key rotation re-wraps every record; they stay readable with the new key set.
    let out = Command::new(exe)
        .env_clear()
        .env("TESSERA_DATA_DIR", &data)
        .args(["id-repo", "rotate-master-key"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("re-wrapped {PACKETS} records")), "{text}");
    let settings = tessera_server::settings::Settings {
        data_dir: data.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        pipeline_workers: 0,
        device_signatures: tessera_server::device_check::DeviceSignatures::WhenPresent,
        ..tessera_server::settings::Settings::default()
    };
    let state = tessera_server::prepare(settings, std::sync::Arc::new(tessera_packet::clock::SystemClock))
        .await
        .unwrap();
    assert_eq!(state.master_keys.len(), 2);
    for uin in &uins {
        let doc = tessera_server::pipeline::fetch_by_uin(&state, uin)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&doc.uin, uin);
    }
    assert!(
        state
            .store
            .identity_keys_to_rewrap(&state.master_key().id, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
