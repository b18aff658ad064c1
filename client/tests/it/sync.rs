//! The sync engine against the real server (`tessera-server` in-process on port 0, temporary SQLite data
//! directory): enrolment, master data, upload with receipts, status, retention, interrupted uploads and a
//! server that is down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tessera_packet::clock::{Clock, FixedClock, SystemClock};
use tessera_packet::wire::{MachineStatus, SyncKind};
use tessera_server::settings::Settings;
use tessera_server::{RunningServer, prepare, start};
use tessera_station::station::Station;
use tessera_station::sync::{PROCESSED, Progress, SyncOptions, UPLOADED};
use tessera_station::workflow::state;

use crate::common::{self, Env, SUPERVISOR_PW};

pub struct Server {
    pub running: Option<RunningServer>,
    pub addr: SocketAddr,
    pub data: tempfile::TempDir,
    pub clock: Arc<FixedClock>,
    /// PostgreSQL URL (with the test's own schema) when not on embedded SQLite.
    pub database_url: Option<String>,
    pub schema: Option<String>,
}

fn pg_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl Server {
    pub async fn start(clock: Arc<FixedClock>) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut s = Self {
            running: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            data,
            clock,
            database_url: None,
            schema: None,
        };
        s.restart().await;
        s
    }

    /// A server on PostgreSQL in a fresh schema; None (skip, with a notice) when PostgreSQL is unreachable
    /// and TESSERA_TEST_REQUIRE_ALL is not 1.
    pub async fn start_pg(clock: Arc<FixedClock>) -> Option<Self> {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).unwrap();
        let schema = format!("station_{}", hex::encode(r));
        if let Err(e) = tessera_server::store::postgres::PgStore::connect(&pg_url(), 2, Some(&schema)).await {
            assert!(
                std::env::var("TESSERA_TEST_REQUIRE_ALL").as_deref() != Ok("1"),
                "PostgreSQL required (TESSERA_TEST_REQUIRE_ALL=1) but unreachable: {e:?}"
            );
            eprintln!("SKIP: PostgreSQL unreachable at {} ({e:?})", pg_url());
            return None;
        }
        let mut s = Self {
            running: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            data: tempfile::tempdir().unwrap(),
            clock,
            database_url: Some(format!("{}?options=-c%20search_path%3D{schema}", pg_url())),
            schema: Some(schema),
        };
        s.restart().await;
        Some(s)
    }

    /// (Re)starts on the same address and data directory.
    pub async fn restart(&mut self) {
        let settings = Settings {
            data_dir: self.data.path().join("data"),
            listen: self.addr,
            country_config: Some(common::sample_country()),
            uin_pool_target: 100,
            uin_pool_low_water: 10,
            database_url: self
                .database_url
                .clone()
                .map(tessera_server::settings::Secret::new),
            // These stations trust their simulator's CA locally; this server is not given it (the demo and the
            // server's tests check device signatures).
            device_signatures: tessera_server::device_check::DeviceSignatures::Off,
            ..Settings::default()
        };
        let state = prepare(settings, self.clock.clone()).await.unwrap();
        let running = start(state).await.unwrap();
        self.addr = running.addr;
        self.running = Some(running);
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
        if let Some(schema) = self.schema.take() {
            let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
                .await
                .unwrap();
            let task = tokio::spawn(conn);
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await
                .unwrap();
            drop(client);
            let _ = task.await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &tessera_server::AppState {
        &self.running.as_ref().unwrap().state
    }

    /// Publishes the test operators for center 10001 (what an administrator does on the server).
    pub async fn publish_operators(&self) {
        for o in common::bundle().operators {
            let body = serde_json::to_value(&o).unwrap();
            self.state()
                .store
                .put_sync_item(SyncKind::Operators, &o.center_id, &o.id, Some(body))
                .await
                .unwrap();
        }
    }

    pub async fn approve(&self, machine: &str) {
        let now = self.clock.now().timestamp();
        tessera_server::machines::set_status(
            self.state().store.as_ref(),
            machine,
            MachineStatus::Active,
            None,
            now,
        )
        .await
        .unwrap();
    }

    pub async fn packet(&self, rid: &str) -> Option<tessera_server::store::PacketRecord> {
        self.state().store.packet(&rid.parse().unwrap()).await.unwrap()
    }
}

/// A clock at the real time, shared by station and server (requests are checked against it).
pub fn now_clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(SystemClock.now()))
}

pub fn env_with(clock: Arc<FixedClock>) -> Env {
    Env {
        clock,
        ..common::new_env()
    }
}

fn fast() -> SyncOptions {
    SyncOptions {
        max_retries: 2,
        backoff_initial_ms: 10,
        backoff_max_ms: 50,
        request_timeout_secs: 10,
        ..SyncOptions::default()
    }
}

/// An enrolled, approved, synced station (officer1 logged in).
pub async fn ready_station(server: &Server, env: &Env) -> Station {
    let (mut st, _) = common::init_in(env, common::master_docs()).unwrap();
    server.publish_operators().await;
    let e = st.enrol_machine(&server.url(), "desk-1").await.unwrap();
    server.approve(&e.machine_id).await;
    let r = st.sync(&fast()).await.unwrap();
    assert!(r.stopped.is_none(), "{r:?}");
    st
}

/// Seals a complete registration as the logged-in officer and approves it as super1.
fn sealed_and_approved(env: &Env, st: &mut Station) -> String {
    let id = common::complete_adult_draft(st);
    let sealed = st.seal_draft(id).unwrap();
    let mut sup = common::login(env, "super1", SUPERVISOR_PW).unwrap();
    sup.approve(&sealed.rid).unwrap();
    sealed.rid
}

async fn wait_final(st: &mut Station, rid: &str) {
    let opts = SyncOptions {
        master_data: false,
        ..fast()
    };
    for _ in 0..100 {
        st.sync(&opts).await.unwrap();
        let u = st.uploads().unwrap();
        if u.iter().any(|u| u.rid == rid && u.state == PROCESSED) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{rid} never reached a final status: {:?}", st.uploads().unwrap());
}

fn packet_file_exists(env: &Env, rid: &str) -> bool {
    env.home().join("packets").join(format!("{rid}.tpkt")).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_sync_upload_receipt_status_and_retention() {
    let clock = now_clock();
    let mut server = Server::start(clock.clone()).await;
    let env = env_with(clock.clone());
    let (mut st, id) = common::init_in(&env, common::master_docs()).unwrap();
    assert_eq!(id.machine_id, "10077");
    server.publish_operators().await;

    // Not enrolled: a clear error, nothing else happens.
    let e = st.sync(&fast()).await.unwrap_err();
    assert!(e.to_string().contains("not enrolled"), "{e}");

    // Enrolment: the server assigns the machine id; the machine waits for approval.
    let en = st.enrol_machine(&server.url(), "desk-1").await.unwrap();
    assert_eq!(en.status, "PENDING");
    assert!(en.machine_id_changed);
    assert_eq!(st.machine_identity().machine_id, en.machine_id);
    assert_eq!(en.fingerprint, id.fingerprint);
    let r = st.sync(&fast()).await.unwrap();
    assert!(
        r.stopped
            .as_deref()
            .unwrap()
            .contains("waiting for an administrator"),
        "{r:?}"
    );

    // Approved: master data, operators and the server's packet key arrive.
    server.approve(&en.machine_id).await;
    let r = st.sync(&fast()).await.unwrap();
    assert!(r.stopped.is_none(), "{r:?}");
    assert!(r.master_data_error.is_none(), "{r:?}");
    for kind in ["id-schema", "ui-spec", "master-data", "operators", "packet-keys"] {
        assert!(
            r.master_data_items.get(kind).copied().unwrap_or(0) > 0,
            "{kind}: {r:?}"
        );
    }
    // A second round fetches nothing new (delta by cursor).
    let r2 = st.sync(&fast()).await.unwrap();
    assert!(r2.master_data_items.is_empty(), "{r2:?}");
    let status = st.status().unwrap();
    assert!(status.last_master_sync.is_some());
    assert_eq!(status.server.unwrap().machine_status, "ACTIVE");

    // A packet sealed now is encrypted to the server's synced key, uploaded, processed.
    let rid = sealed_and_approved(&env, &mut st);
    assert!(rid.starts_with(&format!("10001{}", en.machine_id)));
    let mut events = Vec::new();
    let r = st
        .sync_with(&fast(), &mut |p: &Progress| events.push(p.clone()))
        .await
        .unwrap();
    assert_eq!(r.uploaded, vec![rid.clone()], "{r:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Progress::Uploaded { rid: r } if *r == rid))
    );
    let on_server = server.packet(&rid).await.unwrap();
    let local = st.queue(None, 10, 0).unwrap();
    assert_eq!(local[0].sha256, on_server.sha256);
    wait_final(&mut st, &rid).await;
    let u = st.uploads().unwrap();
    assert_eq!(u[0].server_status.as_deref(), Some("PROCESSED"), "{u:?}");
    assert_eq!(st.dashboard().unwrap().processed, 1);

    // Retention: the file stays for the country's period (1 day), then goes.
    assert!(st.apply_retention(&fast()).unwrap().is_empty());
    assert!(packet_file_exists(&env, &rid));
    clock.advance(chrono::Duration::days(2));
    let deleted = st.apply_retention(&fast()).unwrap();
    assert_eq!(deleted, vec![rid.clone()]);
    assert!(!packet_file_exists(&env, &rid));
    assert!(st.uploads().unwrap()[0].file_deleted_at.is_some());
    server.stop().await;
}

/// The same round trip with the server on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_receipt_and_status_with_the_server_on_postgresql() {
    let clock = now_clock();
    let Some(mut server) = Server::start_pg(clock.clone()).await else {
        return;
    };
    let env = env_with(clock.clone());
    let mut st = ready_station(&server, &env).await;
    let rid = sealed_and_approved(&env, &mut st);
    let r = st.sync(&fast()).await.unwrap();
    assert_eq!(r.uploaded, vec![rid.clone()], "{r:?}");
    wait_final(&mut st, &rid).await;
    assert_eq!(
        server.packet(&rid).await.unwrap().sha256,
        st.queue(None, 10, 0).unwrap()[0].sha256
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_uploads_resume_and_nothing_is_lost_or_duplicated() {
    let clock = now_clock();
    let mut server = Server::start(clock.clone()).await;
    let env = env_with(clock.clone());
    let mut st = ready_station(&server, &env).await;
    let rids: Vec<String> = (0..2).map(|_| sealed_and_approved(&env, &mut st)).collect();
    let opts = SyncOptions {
        chunk_bytes: 4096,
        master_data: false,
        status: false,
        ..fast()
    };
    // Cut the round off after k progress events, for growing k (a kill at an await point: the future is
    // dropped with requests in flight), until everything is through.
    let mut k = 1;
    let mut rounds = 0;
    loop {
        let seen = AtomicUsize::new(0);
        let mut count = |_: &Progress| {
            seen.fetch_add(1, Ordering::SeqCst);
        };
        let dropped = {
            let fut = st.sync_with(&opts, &mut count);
            tokio::pin!(fut);
            let watch = async {
                while seen.load(Ordering::SeqCst) < k {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            };
            tokio::select! {
                r = &mut fut => { r.unwrap(); false }
                () = watch => true,
            }
        };
        rounds += 1;
        // The station is consistent after every cut: each packet is approved (queued) or uploaded with a
        // stored receipt, never anything else.
        for u in st.uploads().unwrap() {
            assert!(u.state == state::APPROVED || u.state == UPLOADED, "{u:?}");
        }
        if !dropped {
            break;
        }
        k += 3;
        assert!(rounds < 200, "upload never finished");
    }
    let r = st.sync(&opts).await.unwrap();
    assert!(r.failed.is_empty(), "{r:?}");
    for rid in &rids {
        let p = server.packet(rid).await.unwrap();
        let local = st.queue(Some(UPLOADED), 10, 0).unwrap();
        let l = local.iter().find(|l| &l.rid == rid).unwrap();
        assert_eq!(p.sha256, l.sha256, "server holds the same bytes");
        assert_eq!(p.size, u64::try_from(l.size).unwrap());
    }
    assert_eq!(st.queue(Some(UPLOADED), 10, 0).unwrap().len(), 2);
    assert!(rounds > 2, "the test cut at least one upload ({rounds} rounds)");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_keeps_the_queue_and_says_so() {
    let clock = now_clock();
    let mut server = Server::start(clock.clone()).await;
    let env = env_with(clock.clone());
    let mut st = ready_station(&server, &env).await;
    let rid = sealed_and_approved(&env, &mut st);
    server.stop().await;

    let mut retries = 0;
    let r = st
        .sync_with(&fast(), &mut |p: &Progress| {
            if matches!(p, Progress::Retrying { .. }) {
                retries += 1;
            }
        })
        .await
        .unwrap();
    let why = r.stopped.clone().unwrap();
    assert!(why.contains("cannot be reached"), "{why}");
    assert_eq!(retries, 2, "retried with back-off before giving up");
    assert_eq!(r.queued, 1);
    assert!(r.uploaded.is_empty());
    assert_eq!(st.count_packets(state::APPROVED).unwrap(), 1);
    assert!(packet_file_exists(&env, &rid));
    let link = st.status().unwrap().server.unwrap();
    assert!(link.last_error.unwrap().contains("cannot be reached"));

    // Back up on the same address: the queue drains.
    server.restart().await;
    let r = st.sync(&fast()).await.unwrap();
    assert_eq!(r.uploaded, vec![rid.clone()], "{r:?}");
    assert_eq!(r.queued, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_machine_stops_the_batch_with_the_reason() {
    let clock = now_clock();
    let server = Server::start(clock.clone()).await;
    let env = env_with(clock.clone());
    let mut st = ready_station(&server, &env).await;
    sealed_and_approved(&env, &mut st);
    let machine = st.machine_identity().machine_id;
    tessera_server::machines::set_status(
        server.state().store.as_ref(),
        &machine,
        MachineStatus::Suspended,
        Some("reported stolen".into()),
        clock.now().timestamp(),
    )
    .await
    .unwrap();
    let r = st.sync(&fast()).await.unwrap();
    let why = r.stopped.unwrap();
    assert!(
        why.contains("suspended") && why.contains("reported stolen"),
        "{why}"
    );
    assert_eq!(r.queued, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_refuses_a_server_with_another_key() {
    let clock = now_clock();
    let mut a = Server::start(clock.clone()).await;
    let env = env_with(clock.clone());
    let (mut st, _) = common::init_in(&env, common::master_docs()).unwrap();
    st.enrol_machine(&a.url(), "desk-1").await.unwrap();
    let b = Server::start(clock.clone()).await;
    let e = st.enrol_machine(&b.url(), "desk-1").await.unwrap_err();
    assert!(e.to_string().contains("signing key"), "{e}");
    a.stop().await;
}

#[test]
fn commands_run_sync_from_the_command_table() {
    // Outside any runtime the command table runs the network operation on its own runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clock = now_clock();
    let server = rt.block_on(Server::start(clock.clone()));
    rt.block_on(server.publish_operators());
    let env = env_with(clock.clone());
    let (mut st, _) = common::init_in(&env, common::master_docs()).unwrap();
    let out = st
        .execute(tessera_station::commands::Command::EnrolMachine {
            server_url: server.url(),
            name: "desk-9".into(),
        })
        .unwrap();
    let tessera_station::commands::Output::Enrolled(e) = out else {
        panic!("{out:?}")
    };
    rt.block_on(server.approve(&e.machine_id));
    let out = st
        .execute(
            serde_json::from_value(
                serde_json::json!({"op": "sync", "input": {"options": {"maxRetries": 1}}}),
            )
            .unwrap(),
        )
        .unwrap();
    let tessera_station::commands::Output::Synced(r) = out else {
        panic!("{out:?}")
    };
    assert!(r.stopped.is_none() && r.master_data_applied, "{r:?}");
    drop(rt);
}

/// `tessera-station sync` killed with SIGKILL at varied moments while it uploads and while it verifies and
/// records the server's receipts, 100 times (more packets are sealed and approved whenever all are
/// uploaded, so every run has work): after every kill the station is consistent (each packet queued, or
/// uploaded with a verified receipt and on the server with the same hash), and the final round leaves every
/// packet on the server exactly as sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_sync_process_100_times_during_upload_and_receipts_loses_nothing() {
    let clock = now_clock();
    let mut server = Server::start(clock.clone()).await;
    let env = env_with(clock.clone());
    let mut st = ready_station(&server, &env).await;
    let mut rids: Vec<String> = (0..3).map(|_| sealed_and_approved(&env, &mut st)).collect();
    drop(st);
    let mut kills = 0;
    for i in 0..100u64 {
        let mut child = std::process::Command::new(crate::cli::bin())
            .args([
                "sync",
                "-o",
                "officer1",
                "--upload-only",
                "--chunk-kib",
                "4",
                "--retries",
                "1",
            ])
            .env("TESSERA_STATION_HOME", env.home())
            .env("TESSERA_STATION_PASSWORD", common::OFFICER_PW)
            .env_remove("TESSERA_STATION_OPERATOR")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // A run takes ~150-200 ms on an idle 2-core machine (longer under load): most are cut short.
        tokio::time::sleep(Duration::from_millis(5 + (i * 37) % 200)).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        let st = common::login(&env, "officer1", common::OFFICER_PW).unwrap();
        let mut done = 0;
        for u in st.uploads().unwrap() {
            match u.state.as_str() {
                s if s == state::APPROVED => {}
                s if s == UPLOADED || s == PROCESSED => {
                    done += 1;
                    let p = server
                        .packet(&u.rid)
                        .await
                        .expect("uploaded means the server has it");
                    let local = st.queue(None, 1000, 0).unwrap();
                    let l = local.iter().find(|l| l.rid == u.rid).unwrap();
                    assert_eq!(p.sha256, l.sha256);
                }
                other => panic!("unexpected state {other} for {}", u.rid),
            }
        }
        drop(st);
        if done == rids.len() {
            // Everything is up: give the next runs more to upload.
            let mut st = common::login(&env, "officer1", common::OFFICER_PW).unwrap();
            rids.push(sealed_and_approved(&env, &mut st));
            rids.push(sealed_and_approved(&env, &mut st));
        }
    }
    let mut st = common::login(&env, "officer1", common::OFFICER_PW).unwrap();
    let r = st.sync(&fast()).await.unwrap();
    assert!(r.failed.is_empty() && r.stopped.is_none(), "{r:?}");
    assert_eq!(
        st.queue(Some(UPLOADED), 1000, 0).unwrap().len()
            + usize::try_from(st.count_packets(PROCESSED).unwrap()).unwrap(),
        rids.len()
    );
    for rid in &rids {
        assert!(server.packet(rid).await.is_some(), "{rid} on the server");
    }
    eprintln!("{kills} of 100 sync runs killed, {} packets", rids.len());
    assert!(kills >= 50, "most runs are killed mid-way ({kills})");
    server.stop().await;
}

/// The operator's path through the CLI: enrol, sync, register capturing from SBI devices, approve, sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_enrols_syncs_and_registers_with_sbi_capture() {
    let clock = now_clock();
    let server = Server::start(clock.clone()).await;
    server.publish_operators().await;
    let env = env_with(clock.clone());
    drop(common::init_in(&env, common::master_docs()).unwrap());
    let cli = |pw: &str, args: &[&str]| {
        let o = std::process::Command::new(crate::cli::bin())
            .args(args)
            .env("TESSERA_STATION_HOME", env.home())
            .env("TESSERA_STATION_PASSWORD", pw)
            .env_remove("TESSERA_STATION_OPERATOR")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let officer = common::OFFICER_PW;
    let url = server.url();
    let (code, out) = cli(
        officer,
        &[
            "enrol-machine",
            "-o",
            "officer1",
            "--server",
            &url,
            "--name",
            "desk-3",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Waiting for the administrator"), "{out}");
    let (code, out) = cli(officer, &["sync", "-o", "officer1", "--retries", "0"]);
    assert_eq!(code, Some(7), "not yet approved: {out}");
    assert!(out.contains("waiting for an administrator"), "{out}");
    server.approve("10001").await;
    let (code, out) = cli(officer, &["sync", "-o", "officer1"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Master data:"), "{out}");

    let (sim, base) = crate::capture::start_sim_at(Arc::new(SystemClock)).await;
    let ca = env.home().join("sim-ca.pem");
    std::fs::write(&ca, sim.ca_pem()).unwrap();
    let ports = format!("{base}-{}", base + 3);
    let answers = crate::cli::demo().join("answers-new-adult.json");
    let (code, out) = cli(
        officer,
        &[
            "register",
            "-o",
            "officer1",
            "--json",
            "--answers",
            answers.to_str().unwrap(),
            "--sbi",
            "--sbi-ports",
            &ports,
            "--trust-ca",
            ca.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"rid\""), "{out}");
    let (code, out) = cli(SUPERVISOR_PW, &["approve", "-o", "super1", "--all"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = cli(officer, &["upload", "-o", "officer1"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Uploaded 1 packet(s); 0 failed; 0 still queued."),
        "{out}"
    );
    let (code, out) = cli(officer, &["uploads", "-o", "officer1"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("UPLOADED") || out.contains("PROCESSED"), "{out}");
    let (code, out) = cli(officer, &["status", "-o", "officer1"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("Server {url} (machine ACTIVE)")), "{out}");
}

/// A TCP proxy in front of the server: passes traffic through, cuts connections after a few KiB sent to
/// the server (a connection closing mid-chunk), or answers garbage.
struct Proxy {
    addr: SocketAddr,
    /// 0 pass through, 1 cut after 16 KiB upstream, 2 answer `200 garbage`, 3 answer `502` with HTML.
    mode: Arc<AtomicUsize>,
}

async fn proxy(target: SocketAddr) -> Proxy {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mode = Arc::new(AtomicUsize::new(0));
    let m = mode.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let mode = m.load(Ordering::SeqCst);
            tokio::spawn(async move {
                if mode >= 2 {
                    let mut buf = vec![0u8; 4096];
                    let _ = inbound.read(&mut buf).await;
                    let resp: &[u8] = if mode == 2 {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\ngarbage"
                    } else {
                        b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: 13\r\nconnection: close\r\n\r\n<h1>502</h1>\n"
                    };
                    let _ = inbound.write_all(resp).await;
                    return;
                }
                let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let (mut ri, mut wi) = inbound.into_split();
                let (mut ro, mut wo) = outbound.into_split();
                let down = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut ro, &mut wi).await;
                });
                let mut sent = 0usize;
                let mut buf = vec![0u8; 8192];
                loop {
                    let n = match ri.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    sent += n;
                    if mode == 1 && sent > 16 * 1024 {
                        break; // drop both directions mid-request
                    }
                    if wo.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                if mode == 1 {
                    down.abort();
                } else {
                    let _ = wo.shutdown().await;
                    let _ = down.await;
                }
            });
        }
    });
    Proxy { addr, mode }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_mid_chunk_or_garbage_answers_lose_nothing() {
    let clock = now_clock();
    let server = Server::start(clock.clone()).await;
    server.publish_operators().await;
    let p = proxy(server.addr).await;
    let env = env_with(clock.clone());
    let (mut st, _) = common::init_in(&env, common::master_docs()).unwrap();
    let e = st
        .enrol_machine(&format!("http://{}", p.addr), "desk-4")
        .await
        .unwrap();
    server.approve(&e.machine_id).await;
    assert!(st.sync(&fast()).await.unwrap().stopped.is_none());
    let rid = sealed_and_approved(&env, &mut st);
    let size = st.queue(None, 1, 0).unwrap()[0].size;
    assert!(size > 32 * 1024, "the packet ({size} bytes) spans the cut");
    let opts = SyncOptions {
        master_data: false,
        ..fast()
    };

    // Connections close mid-chunk: retried with back-off, then the round stops; the packet stays queued.
    p.mode.store(1, Ordering::SeqCst);
    let r = st.sync(&opts).await.unwrap();
    assert!(r.uploaded.is_empty(), "{r:?}");
    let why = r.stopped.unwrap();
    assert!(
        why.contains("cannot be reached") || why.contains("broke"),
        "{why}"
    );
    assert_eq!(st.count_packets(state::APPROVED).unwrap(), 1);
    assert!(server.packet(&rid).await.is_none(), "nothing half-accepted");

    // Garbage with a 200: refused as unsigned, the batch stops at once and says why.
    p.mode.store(2, Ordering::SeqCst);
    let r = st.sync(&opts).await.unwrap();
    assert!(
        r.stopped.unwrap().contains("not signed by the server"),
        "garbage refused"
    );
    // A proxy error page: retried, then reported.
    p.mode.store(3, Ordering::SeqCst);
    let r = st.sync(&opts).await.unwrap();
    assert!(r.stopped.unwrap().contains("HTTP 502"), "proxy error reported");
    assert_eq!(st.count_packets(state::APPROVED).unwrap(), 1);

    // The network heals: the upload completes and the server holds exactly the sealed bytes.
    p.mode.store(0, Ordering::SeqCst);
    let r = st.sync(&opts).await.unwrap();
    assert_eq!(r.uploaded, vec![rid.clone()], "{r:?}");
    assert_eq!(
        server.packet(&rid).await.unwrap().sha256,
        st.queue(None, 1, 0).unwrap()[0].sha256
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_clock_far_off_is_corrected_from_the_server() {
    let clock = now_clock();
    let server = Server::start(clock.clone()).await;
    let station_clock = Arc::new(FixedClock::new(clock.now()));
    let env = env_with(station_clock.clone());
    let mut st = ready_station(&server, &env).await;
    drop(st.logout());
    // The station's clock jumps an hour ahead (the server allows 5 minutes).
    station_clock.advance(chrono::Duration::hours(1));
    st = common::login(&env, "officer1", common::OFFICER_PW).unwrap();
    let r = st.sync(&fast()).await.unwrap();
    assert!(r.stopped.is_none(), "{r:?}");
    let offset: i64 = st
        .store()
        .conn()
        .query_row("SELECT server_clock_offset_ms FROM station", [], |r| r.get(0))
        .unwrap();
    assert!((offset + 3_600_000).abs() < 5_000, "offset {offset} ms");
}
