//! HTTP API: operations endpoints, machine onboarding, request authentication, sync.

use tessera_packet::wire::{self, MachineInfo, ServerInfo, SyncKind, SyncPage};

use crate::common::{Backend, Station, TestServer, error_code, random_hex};

#[tokio::test]
async fn ops_endpoints_answer_and_echo_request_ids() {
    let t = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let r = t
        .http
        .get(t.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    assert_eq!(t.http.get(t.url("/readyz")).send().await.unwrap().status(), 200);
    let doc: serde_json::Value = t
        .http
        .get(t.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/uploads/{id}"]["patch"].is_object(), "{doc}");
    assert!(doc["paths"]["/api/v1/sync/{kind}"]["get"].is_object());
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
        metrics.contains("tessera_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("tessera_uin_pool_available 200"), "{metrics}");
    let r = t.http.get(t.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "not_found");
    t.stop().await;
}

#[tokio::test]
async fn server_info_is_signed_by_the_server_key() {
    let t = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let r = t.http.get(t.url("/api/v1/server-info")).send().await.unwrap();
    let sig = r.headers()[wire::headers::SERVER_SIGNATURE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = r.bytes().await.unwrap();
    wire::verify_server_signature(&t.server_key(), &body, &sig).unwrap();
    let info: ServerInfo = serde_json::from_slice(&body).unwrap();
    assert_eq!(info.api_version, "v1");
    assert_eq!(
        wire::decode_public_key("k", &info.signing_public_key).unwrap(),
        t.server_key()
    );
    t.stop().await;
}

async fn onboarding_flow(backend: Backend) {
    let Some(t) = TestServer::start(backend, |_| {}).await else {
        return;
    };
    let s = t.enrol("10001").await;
    // Re-enrolling the same key is idempotent (200, same id).
    let again = wire::EnrolmentRequest::new(&s.key, "10001".parse().unwrap(), "test-station");
    let r = t
        .http
        .post(t.url("/api/v1/machines/enrol"))
        .json(&again)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<wire::EnrolmentResponse>().await.unwrap().machine_id,
        s.machine_id
    );

    // Pending: may read its own status, nothing else.
    let me: MachineInfo = s.get("/api/v1/machines/me").await.json().await.unwrap();
    assert_eq!(me.status, wire::MachineStatus::Pending);
    assert_eq!(
        error_code(s.get("/api/v1/sync/ui-spec").await).await,
        "machine_pending"
    );

    // Admin API needs the token.
    let r = t
        .http
        .post(t.url(&format!("/api/v1/admin/machines/{}/approve", s.machine_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "admin_auth_missing");
    let r = t
        .http
        .post(t.url(&format!("/api/v1/admin/machines/{}/approve", s.machine_id)))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "admin_auth_invalid");
    let r = t
        .admin_post(
            &format!("/api/v1/admin/machines/{}/approve", s.machine_id),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.get("/api/v1/sync/ui-spec").await.status(), 200);

    // Suspension needs a reason, then refuses the machine with a clear code.
    let path = format!("/api/v1/admin/machines/{}/suspend", s.machine_id);
    assert_eq!(
        error_code(t.admin_post(&path, serde_json::json!({"reason": " "})).await).await,
        "reason_required"
    );
    assert_eq!(
        t.admin_post(&path, serde_json::json!({"reason": "reported stolen"}))
            .await
            .status(),
        200
    );
    assert_eq!(
        error_code(s.get("/api/v1/sync/ui-spec").await).await,
        "machine_suspended"
    );
    let list: Vec<MachineInfo> = t
        .http
        .get(t.url("/api/v1/admin/machines?status=SUSPENDED"))
        .bearer_auth(&t.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status_reason.as_deref(), Some("reported stolen"));
    let r = t
        .admin_post("/api/v1/admin/machines/99999/approve", serde_json::json!({}))
        .await;
    assert_eq!(error_code(r).await, "not_found");
    t.stop().await;
}

#[tokio::test]
async fn onboarding_approval_and_suspension_sqlite() {
    onboarding_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn onboarding_approval_and_suspension_postgres() {
    onboarding_flow(Backend::Postgres).await;
}

#[tokio::test]
async fn enrolment_bad_input_is_refused() {
    let t = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let post = |body: Vec<u8>| t.http.post(t.url("/api/v1/machines/enrol")).body(body).send();
    assert_eq!(
        error_code(post(b"{not json".to_vec()).await.unwrap()).await,
        "malformed_body"
    );
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let mut req = wire::EnrolmentRequest::new(&key, "10001".parse().unwrap(), "a");
    req.center_id = "10002".parse().unwrap();
    let r = post(serde_json::to_vec(&req).unwrap()).await.unwrap();
    assert_eq!(error_code(r).await, "enrolment_proof_invalid");
    let bad_name = wire::EnrolmentRequest::new(&key, "10001".parse().unwrap(), "a\u{7}b");
    let r = post(serde_json::to_vec(&bad_name).unwrap()).await.unwrap();
    assert_eq!(error_code(r).await, "invalid_machine_name");
    let mut extra =
        serde_json::to_value(wire::EnrolmentRequest::new(&key, "10001".parse().unwrap(), "a")).unwrap();
    extra["surprise"] = serde_json::json!(1);
    let r = post(serde_json::to_vec(&extra).unwrap()).await.unwrap();
    assert_eq!(error_code(r).await, "malformed_body");
    t.stop().await;
}

#[tokio::test]
async fn signed_requests_refuse_missing_expired_forged_replayed_and_unknown() {
    let t = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let s = t.active_station("10001").await;
    let path = "/api/v1/sync/master-data";

    let r = t.http.get(t.url(path)).send().await.unwrap();
    assert_eq!(error_code(r).await, "auth_missing");

    let old = Station::now() - 3600;
    let r = s.send_with("GET", path, &[], vec![], old, &random_hex(16)).await;
    assert_eq!(error_code(r).await, "request_expired");

    let r = s.send_with("GET", path, &[], vec![], Station::now(), "xyz").await;
    assert_eq!(error_code(r).await, "auth_malformed");

    // Signed for another path, sent to this one.
    let auth = wire::sign_request(
        &s.key,
        &s.machine_id,
        "GET",
        "/api/v1/sync/ui-spec",
        Station::now(),
        &random_hex(16),
        b"",
    );
    let mut rb = t.http.get(t.url(path));
    for (k, v) in auth.headers() {
        rb = rb.header(k, v);
    }
    assert_eq!(error_code(rb.send().await.unwrap()).await, "signature_invalid");

    // Another key claiming this machine id.
    let mut forger = s.clone();
    forger.key = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
    assert_eq!(error_code(forger.get(path).await).await, "signature_invalid");

    // Replay: the same nonce twice.
    let nonce = random_hex(16);
    let now = Station::now();
    assert_eq!(
        s.send_with("GET", path, &[], vec![], now, &nonce).await.status(),
        200
    );
    assert_eq!(
        error_code(s.send_with("GET", path, &[], vec![], now, &nonce).await).await,
        "replayed_request"
    );

    let mut stranger = s.clone();
    stranger.machine_id = "99999".parse().unwrap();
    assert_eq!(error_code(stranger.get(path).await).await, "machine_unknown");
    t.stop().await;
}

fn write_config(dir: &std::path::Path) {
    let md = dir.join("master-data");
    std::fs::create_dir_all(&md).unwrap();
    std::fs::create_dir_all(dir.join("id-schema")).unwrap();
    std::fs::create_dir_all(dir.join("operators")).unwrap();
    std::fs::write(
        dir.join("id-schema/0.1.json"),
        r#"{"version": "0.1", "fields": []}"#,
    )
    .unwrap();
    let centers: Vec<_> = (1..=7)
        .map(|i| serde_json::json!({"code": format!("1000{i}"), "name": format!("C{i}")}))
        .collect();
    std::fs::write(md.join("centers.json"), serde_json::to_string(&centers).unwrap()).unwrap();
    std::fs::write(
        dir.join("operators/ops.json"),
        r#"[{"id": "op1", "name": "Op One", "roles": ["officer"], "centerId": "10001", "active": true,
             "passwordHash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"},
            {"id": "op2", "name": "Op Two", "roles": ["supervisor"], "centerId": "10002", "active": true,
             "passwordHash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"}]"#,
    )
    .unwrap();
}

async fn sync_flow(backend: Backend) {
    let cfg = tempfile::tempdir().unwrap();
    write_config(cfg.path());
    let path = cfg.path().to_path_buf();
    let Some(t) = TestServer::start(backend, move |s| s.country_config = Some(path)).await else {
        return;
    };
    let s = t.active_station("10001").await;

    // Master data in pages of 3, following the cursor; every page signed by the server.
    let mut cursor = String::new();
    let mut keys = Vec::new();
    loop {
        let r = s
            .get(&format!("/api/v1/sync/master-data?limit=3&cursor={cursor}"))
            .await;
        assert_eq!(r.status(), 200);
        let sig = r.headers()[wire::headers::SERVER_SIGNATURE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = r.bytes().await.unwrap();
        wire::verify_server_signature(&t.server_key(), &body, &sig).unwrap();
        let page: SyncPage = serde_json::from_slice(&body).unwrap();
        assert_eq!(page.kind, SyncKind::MasterData);
        assert!(page.items.len() <= 3);
        keys.extend(page.items.iter().map(|i| i.key.clone()));
        cursor = page.next_cursor;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(keys.len(), 7);
    assert_eq!(keys[0], "centers/10001");
    let empty: SyncPage = s
        .get(&format!("/api/v1/sync/master-data?cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(empty.items.is_empty() && !empty.has_more);

    // Operators are per center.
    let ops: SyncPage = s.get("/api/v1/sync/operators").await.json().await.unwrap();
    assert_eq!(
        ops.items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
        ["ops/op1"]
    );

    // Packet keys are published on start, as age recipients.
    let keys: SyncPage = s.get("/api/v1/sync/packet-keys").await.json().await.unwrap();
    let recipient = keys.items[0].body["recipient"].as_str().unwrap();
    assert!(recipient.parse::<age::x25519::Recipient>().is_ok());

    assert_eq!(
        error_code(s.get("/api/v1/sync/nonsense").await).await,
        "unknown_sync_kind"
    );
    assert_eq!(
        error_code(s.get("/api/v1/sync/ui-spec?cursor=abc").await).await,
        "bad_cursor"
    );
    assert_eq!(
        error_code(s.get("/api/v1/sync/ui-spec?bogus=1").await).await,
        "malformed_query"
    );
    t.stop().await;
}

#[tokio::test]
async fn sync_pages_follow_the_cursor_sqlite() {
    sync_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn sync_pages_follow_the_cursor_postgres() {
    sync_flow(Backend::Postgres).await;
}

#[tokio::test]
async fn sample_country_configuration_is_served_to_stations() {
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sample-country");
    let t = TestServer::start(Backend::Sqlite, move |s| s.country_config = Some(cfg))
        .await
        .unwrap();
    let s = t.active_station("10001").await;
    let schema: SyncPage = s.get("/api/v1/sync/id-schema").await.json().await.unwrap();
    assert_eq!(schema.items.len(), 1);
    assert_eq!(schema.items[0].key, "1.0");
    let ui: SyncPage = s.get("/api/v1/sync/ui-spec").await.json().await.unwrap();
    let mut processes: Vec<_> = ui.items.iter().map(|i| i.key.as_str()).collect();
    processes.sort_unstable();
    assert_eq!(processes, ["LOST", "NEW", "UPDATE"]);
    let md: SyncPage = s
        .get("/api/v1/sync/master-data?limit=500")
        .await
        .json()
        .await
        .unwrap();
    let keys: Vec<_> = md.items.iter().map(|i| i.key.as_str()).collect();
    for k in [
        "centers",
        "documents",
        "dynamicLists",
        "locations",
        "labels/eng",
        "labels/fra",
        "manifest",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    let centers = &md.items.iter().find(|i| i.key == "centers").unwrap().body;
    assert_eq!(centers["centers"][0]["id"], "10001");
    t.stop().await;
}
