//! Test helpers: stores for both backends, a server on port 0, a signing station client.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use tessera_packet::clock::{Clock as _, SystemClock};
use tessera_packet::ids::MachineId;
use tessera_packet::wire::{self, EnrolmentRequest, EnrolmentResponse};
use tessera_server::settings::{Secret, Settings};
use tessera_server::store::Store;
use tessera_server::store::postgres::PgStore;
use tessera_server::store::sqlite::SqliteStore;
use tessera_server::{RunningServer, prepare, start};

pub fn pg_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).unwrap();
    hex::encode(b)
}

/// The UIN cipher of the test stores ([`sqlite_store`], [`pg_store`]).
pub fn test_cipher() -> Arc<tessera_server::uin::UinCipher> {
    Arc::new(tessera_server::uin::UinCipher::new(&[7; 32])) // TEST-ONLY salt
}

/// The salted hash of a UIN under the test stores' salt.
pub fn uin_hash(uin: &str) -> String {
    test_cipher().hash(uin)
}

/// A fresh schema name for one test.
pub fn fresh_schema() -> String {
    format!("t_{}", random_hex(8))
}

/// Connects to PostgreSQL in a fresh schema, or returns None (printing a skip notice) when unreachable and
/// TESSERA_TEST_REQUIRE_ALL is not 1.
pub async fn pg_store() -> Option<(Arc<dyn Store>, String)> {
    let schema = fresh_schema();
    match PgStore::connect(&pg_url(), 4, Some(&schema)).await {
        Ok(s) => Some((Arc::new(s.with_uin_cipher(test_cipher())), schema)),
        Err(e) => {
            if std::env::var("TESSERA_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
                panic!("PostgreSQL required (TESSERA_TEST_REQUIRE_ALL=1) but unreachable: {e}");
            }
            eprintln!(
                "SKIP: PostgreSQL unreachable at {} ({e}); set TESSERA_TEST_REQUIRE_ALL=1 to fail",
                pg_url()
            );
            None
        }
    }
}

/// Drops a test schema.
pub async fn drop_schema(schema: &str) {
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

pub fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("t.db"), &[9u8; 32]).unwrap();
    (Arc::new(s.with_uin_cipher(test_cipher())), dir)
}

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub admin_token: String,
    pub adjudicator_token: String,
    pub schema: Option<String>,
}

/// The sample country configuration folder of the repository.
pub fn sample_country() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sample-country")
}

impl TestServer {
    /// Starts a server; None when the backend is Postgres and it is unreachable (skip).
    pub async fn start(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse().unwrap(),
            uin_pool_target: 200,
            uin_pool_low_water: 50,
            // Synthetic packets from no device: no SBI data blocks (the demo checks real ones).
            device_signatures: tessera_server::device_check::DeviceSignatures::WhenPresent,
            ..Settings::default()
        };
        let mut schema = None;
        if backend == Backend::Postgres {
            // Probe and create a schema; the server then connects with search_path through the URL options.
            let (_, s) = pg_store().await?;
            settings.database_url = Some(Secret::new(format!(
                "{}?options=-c%20search_path%3D{s}",
                pg_url()
            )));
            schema = Some(s);
        }
        tweak(&mut settings);
        let state = prepare(settings, Arc::new(SystemClock)).await.unwrap();
        let admin_token = state.keys.admin_token.expose().to_owned();
        let adjudicator_token = state.keys.adjudicator_token.expose().to_owned();
        let server = start(state).await.unwrap();
        let base = format!("http://{}", server.addr);
        Some(Self {
            server: Some(server),
            base,
            http: reqwest::Client::new(),
            dir,
            admin_token,
            adjudicator_token,
            schema,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn server_key(&self) -> ed25519_dalek::VerifyingKey {
        self.server.as_ref().unwrap().state.keys.signing.verifying_key()
    }

    pub async fn admin_post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Enrols a new station key at `center` and returns the station.
    pub async fn enrol(&self, center: &str) -> Station {
        let key = SigningKey::from_bytes(&random_hex(32).as_bytes()[..32].try_into().unwrap());
        let req = EnrolmentRequest::new(&key, center.parse().unwrap(), "test-station");
        let resp = self
            .http
            .post(self.url("/api/v1/machines/enrol"))
            .json(&req)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let r: EnrolmentResponse = resp.json().await.unwrap();
        Station {
            key,
            machine_id: r.machine_id,
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    /// Enrols and approves a station.
    pub async fn active_station(&self, center: &str) -> Station {
        let s = self.enrol(center).await;
        let r = self
            .admin_post(
                &format!("/api/v1/admin/machines/{}/approve", s.machine_id),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(r.status(), 200);
        s
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.unwrap();
        }
        if let Some(schema) = &self.schema {
            drop_schema(schema).await;
        }
    }
}

/// A station client that signs its requests.
#[derive(Clone)]
pub struct Station {
    pub key: SigningKey,
    pub machine_id: MachineId,
    pub base: String,
    pub http: reqwest::Client,
}

impl Station {
    pub fn now() -> i64 {
        SystemClock.now().timestamp()
    }

    /// Sends a signed request with the given timestamp and nonce.
    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timestamp: i64,
        nonce: &str,
    ) -> reqwest::Response {
        let auth = wire::sign_request(&self.key, &self.machine_id, method, path, timestamp, nonce, &body);
        let mut rb = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path));
        for (k, v) in auth.headers() {
            rb = rb.header(k, v);
        }
        for (k, v) in headers {
            rb = rb.header(*k, v);
        }
        rb.body(body).send().await.unwrap()
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        self.send_with(method, path, headers, body, Self::now(), &random_hex(16))
            .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.send("GET", path, &[], Vec::new()).await
    }
}

/// Reads an error body and returns its code, checking the request id is echoed.
pub async fn error_code(resp: reqwest::Response) -> String {
    let header_id = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body: wire::ErrorBody = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}, body {text:?} is not an ErrorBody: {e}"));
    assert_eq!(
        header_id.as_deref(),
        Some(body.request_id.as_str()),
        "request id echoed in header and body"
    );
    assert!(!body.message.is_empty());
    body.code
}

/// Waits up to 10 s for the notification of `kind` about `rid` in the server's local outbox file
/// (`<data_dir>/outbox/notifications.jsonl`) and returns it.
pub async fn outbox_notification(
    data_dir: &std::path::Path,
    rid: &str,
    kind: &str,
) -> Option<serde_json::Value> {
    let outbox = data_dir.join("outbox/notifications.jsonl");
    for _ in 0..100 {
        let text = std::fs::read_to_string(&outbox).unwrap_or_default();
        let found = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|n| n["rid"] == rid && n["kind"] == kind);
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

/// Fails if any of `uins` appears in clear in any table of the database: as text in any column, or as
/// bytes inside a binary column (SQLite), or in a row's text form including the hex form of binary columns
/// (PostgreSQL).
pub async fn assert_no_uin_in_clear(backend: Backend, db: ScanTarget, uins: &[String]) {
    assert!(!uins.is_empty());
    let needles: Vec<(String, String)> = uins
        .iter()
        .map(|u| (u.clone(), hex::encode(u.as_bytes())))
        .collect();
    let mut scanned = Vec::new();
    match (backend, db) {
        (Backend::Sqlite, ScanTarget::Sqlite { path, key }) => {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(&key)))
                .unwrap();
            let tables: Vec<String> = c
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for t in tables {
                let mut stmt = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
                let cols = stmt.column_count();
                let mut rows = stmt.query([]).unwrap();
                while let Some(row) = rows.next().unwrap() {
                    for i in 0..cols {
                        let bytes: Vec<u8> = match row.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                                b.to_vec()
                            }
                            rusqlite::types::ValueRef::Integer(n) => n.to_string().into_bytes(),
                            _ => continue,
                        };
                        for (u, _) in &needles {
                            assert!(
                                !bytes.windows(u.len()).any(|w| w == u.as_bytes()),
                                "a UIN in clear in table {t}, column {i}"
                            );
                        }
                    }
                }
                scanned.push(t);
            }
        }
        (Backend::Postgres, ScanTarget::Postgres { schema }) => {
            let schema = schema.as_str();
            let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
                .await
                .unwrap();
            let task = tokio::spawn(conn);
            let tables: Vec<String> = client
                .query(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                    &[&schema],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            for t in tables {
                let rows = client
                    .query(&format!("SELECT r::text FROM {schema}.\"{t}\" r"), &[])
                    .await
                    .unwrap();
                for row in rows {
                    let text: String = row.get(0);
                    for (u, hexed) in &needles {
                        assert!(
                            !text.contains(u.as_str()) && !text.contains(hexed.as_str()),
                            "a UIN in clear in table {t}"
                        );
                    }
                }
                scanned.push(t);
            }
            drop(client);
            let _ = task.await;
        }
        _ => panic!("scan target does not match the backend"),
    }
    for must in [
        "persons",
        "gallery",
        "credentials",
        "adjudication_cases",
        "identities",
        "uin_assigned",
    ] {
        assert!(
            scanned.iter().any(|t| t == must),
            "table {must} scanned: {scanned:?}"
        );
    }
}

/// Where [`assert_no_uin_in_clear`] looks.
pub enum ScanTarget {
    /// The SQLCipher file and its key.
    Sqlite { path: std::path::PathBuf, key: Vec<u8> },
    /// A PostgreSQL schema at [`pg_url`].
    Postgres { schema: String },
}

impl TestServer {
    /// The scan target of this server's database.
    pub fn scan_target(&self) -> (Backend, ScanTarget) {
        let state = &self.server.as_ref().unwrap().state;
        match &self.schema {
            Some(schema) => (
                Backend::Postgres,
                ScanTarget::Postgres {
                    schema: schema.clone(),
                },
            ),
            None => (
                Backend::Sqlite,
                ScanTarget::Sqlite {
                    path: state.settings.data_dir.join("tessera.db"),
                    key: state.keys.database_key.to_vec(),
                },
            ),
        }
    }
}
