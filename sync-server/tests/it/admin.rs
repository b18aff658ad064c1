//! The administration API (admin token): operators, device-provider CA certificates, country configuration,
//! packet-recipient key rotation, the quarantine and reprocessing; each with its bad input (malformed bodies,
//! wrong tokens, the adjudicator's token, unknown ids: clear codes, nothing written). Both backends where the
//! store is involved.

use chrono::Duration;
use serde_json::{Value, json};
use tessera_packet::manifest::Decision;
use tessera_packet::wire::{PacketStatus, SyncKind, SyncPage};
use tessera_sbi::jws::Alg;
use tessera_sbi::pki::ProviderCa;

use crate::common::{Backend, TestServer, error_code, sample_country};
use crate::flow::Resident;
use crate::pipeline::{Desk, final_status, recipients, upload};

/// Every admin route added for administration, as (method, path, body).
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/admin/operators", ""),
    ("POST", "/api/v1/admin/operators", "{}"),
    ("DELETE", "/api/v1/admin/operators/op1", ""),
    ("GET", "/api/v1/admin/certificates", ""),
    ("PUT", "/api/v1/admin/certificates/ca1", "{}"),
    ("DELETE", "/api/v1/admin/certificates/ca1", ""),
    ("POST", "/api/v1/admin/country-config", "{}"),
    ("GET", "/api/v1/admin/packet-keys", ""),
    ("POST", "/api/v1/admin/packet-keys/rotate", ""),
    ("GET", "/api/v1/admin/packets", ""),
    ("GET", "/api/v1/admin/packets/10001100010000120261120090001", ""),
    (
        "POST",
        "/api/v1/admin/packets/10001100010000120261120090001/reprocess",
        "",
    ),
    ("GET", "/api/v1/admin/status-history/machine/10001", ""),
];

impl TestServer {
    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut rb = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().await.unwrap()
    }

    async fn admin_ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.admin(method, path, body).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    async fn admin_raw(&self, method: &str, path: &str, body: &'static str) -> reqwest::Response {
        self.http
            .request(method.parse().unwrap(), self.url(path))
            .bearer_auth(&self.admin_token)
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn admin_routes_refuse_missing_wrong_and_adjudicator_tokens_and_are_documented() {
    let t = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    for (method, path, body) in ROUTES {
        let send = |token: Option<&str>| {
            let mut rb = t.http.request(method.parse().unwrap(), t.url(path)).body(*body);
            if let Some(tok) = token {
                rb = rb.bearer_auth(tok);
            }
            rb.send()
        };
        let r = send(None).await.unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
        assert_eq!(error_code(r).await, "admin_auth_missing", "{method} {path}");
        let r = send(Some("not-the-token")).await.unwrap();
        assert_eq!(error_code(r).await, "admin_auth_invalid", "{method} {path}");
        let r = send(Some(&t.adjudicator_token)).await.unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        assert_eq!(error_code(r).await, "role_forbidden", "{method} {path}");
    }
    // Query strings that do not parse get a JSON error with a code on the older admin routes too.
    for (path, token) in [
        ("/api/v1/admin/machines?bogus=1", &t.admin_token),
        ("/api/v1/admin/adjudication?bogus=1", &t.adjudicator_token),
    ] {
        let r = t.http.get(t.url(path)).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(error_code(r).await, "malformed_query", "{path}");
    }
    // Nothing was written by the refused requests.
    let keys: Value = t.admin_ok("GET", "/api/v1/admin/packet-keys", None).await;
    assert_eq!(keys.as_array().unwrap().len(), 1, "no rotation happened");

    let doc: Value = t
        .http
        .get(t.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (method, path, _) in ROUTES {
        let templated = path
            .replace("/op1", "/{id}")
            .replace("/ca1", "/{id}")
            .replace("10001100010000120261120090001", "{rid}")
            .replace("/machine/10001", "/{kind}/{id}");
        assert!(
            doc["paths"][&templated][method.to_ascii_lowercase()].is_object(),
            "{method} {templated} missing from the OpenAPI document"
        );
    }
    t.stop().await;
}

fn demo_operators() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/demo/operators.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

async fn operators_flow(backend: Backend) {
    let Some(t) = TestServer::start(backend, |s| s.country_config = Some(sample_country())).await else {
        return;
    };
    let a = t.active_station("10001").await;
    let b = t.active_station("10002").await;
    let ops_page = |s: &crate::common::Station, cursor: String| {
        let s = s.clone();
        async move {
            let page: SyncPage = s
                .get(&format!("/api/v1/sync/operators?cursor={cursor}"))
                .await
                .json()
                .await
                .unwrap();
            page
        }
    };

    // The demo bundle, as an administrator would publish it.
    let out = t
        .admin_ok("POST", "/api/v1/admin/operators", Some(demo_operators()))
        .await;
    assert_eq!(out.as_array().unwrap().len(), 2, "{out}");
    assert!(out.as_array().unwrap().iter().all(|o| o["changed"] == true));
    let page = ops_page(&a, String::new()).await;
    let keys: Vec<&str> = page.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["officer1", "super1"]);
    assert!(
        page.items[0].body["passwordHash"]
            .as_str()
            .unwrap()
            .starts_with("$argon2id$"),
        "stations receive the hash to check passwords offline"
    );
    assert!(ops_page(&b, String::new()).await.items.is_empty(), "per center");
    let list = t.admin_ok("GET", "/api/v1/admin/operators", None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains("argon2"),
        "no hash in listings: {list}"
    );
    assert_eq!(list[1]["roles"], json!(["supervisor", "officer"]));

    // Publishing the same again changes nothing; stations see no new item.
    let again = t
        .admin_ok("POST", "/api/v1/admin/operators", Some(demo_operators()))
        .await;
    assert!(again.as_array().unwrap().iter().all(|o| o["changed"] == false));
    assert!(ops_page(&a, page.next_cursor.clone()).await.items.is_empty());

    // Moving officer1 to center 10002: station A drops it, station B gets it.
    let mut moved = demo_operators()["operators"][0].clone();
    moved["centerId"] = json!("10002");
    let out = t.admin_ok("POST", "/api/v1/admin/operators", Some(moved)).await;
    assert_eq!(out[0]["moved_from"], "10001");
    let delta = ops_page(&a, page.next_cursor.clone()).await;
    assert!(delta.items.len() == 1 && delta.items[0].deleted && delta.items[0].key == "officer1");
    assert_eq!(ops_page(&b, String::new()).await.items[0].key, "officer1");

    // Bad input: clear codes, nothing written.
    let before = t.admin_ok("GET", "/api/v1/admin/operators", None).await;
    let good = demo_operators()["operators"][1].clone();
    let with = |k: &str, v: Value| {
        let mut o = good.clone();
        o[k] = v;
        o
    };
    let cases = [
        (with("id", json!("bad id!")), "invalid_operator_id"),
        (with("name", json!(" ")), "invalid_operator_name"),
        (with("roles", json!([])), "invalid_roles"),
        (with("roles", json!(["officer", "officer"])), "invalid_roles"),
        (with("roles", json!(["admin"])), "malformed_body"),
        (with("centerId", json!("1234")), "invalid_center_id"),
        (with("centerId", json!("99999")), "unknown_center"),
        (with("passwordHash", json!("hunter2")), "invalid_password_hash"),
        (with("surprise", json!(1)), "malformed_body"),
        (json!([good.clone(), good.clone()]), "duplicate_operator"),
        (json!({"operators": []}), "malformed_body"),
        (json!("officer"), "malformed_body"),
    ];
    for (body, code) in cases {
        let r = t
            .admin("POST", "/api/v1/admin/operators", Some(body.clone()))
            .await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(error_code(r).await, code, "{body}");
    }
    // A batch with one bad operator publishes none of them.
    let new_op = with("id", json!("officer9"));
    let r = t
        .admin(
            "POST",
            "/api/v1/admin/operators",
            Some(json!([new_op, with("passwordHash", json!("x"))])),
        )
        .await;
    assert_eq!(error_code(r).await, "invalid_password_hash");
    let r = t.admin_raw("POST", "/api/v1/admin/operators", "{not json").await;
    assert_eq!(error_code(r).await, "malformed_body");
    assert_eq!(t.admin_ok("GET", "/api/v1/admin/operators", None).await, before);
    let r = t.admin("GET", "/api/v1/admin/operators?center=abc", None).await;
    assert_eq!(error_code(r).await, "invalid_center_id");
    let r = t.admin("GET", "/api/v1/admin/operators?bogus=1", None).await;
    assert_eq!(error_code(r).await, "malformed_query");

    // Revocation.
    let r = t.admin_ok("DELETE", "/api/v1/admin/operators/super1", None).await;
    assert_eq!(r["revoked_from"], json!(["10001"]));
    let delta = ops_page(&a, page.next_cursor.clone()).await;
    assert!(delta.items.iter().any(|i| i.key == "super1" && i.deleted));
    let r = t.admin("DELETE", "/api/v1/admin/operators/super1", None).await;
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "not_found");
    let r = t.admin("DELETE", "/api/v1/admin/operators/no%20such", None).await;
    assert_eq!(error_code(r).await, "invalid_operator_id");

    // What validation reads for "active when the packet was created": each status from when.
    let statuses = |h: &Value| -> Vec<String> {
        h.as_array()
            .unwrap()
            .iter()
            .map(|e| e["status"].as_str().unwrap().to_owned())
            .collect()
    };
    let h = t
        .admin_ok("GET", "/api/v1/admin/status-history/operator/super1", None)
        .await;
    assert_eq!(statuses(&h), ["ACTIVE", "INACTIVE"], "{h}");
    assert!(h[0]["from"].as_i64().unwrap() <= h[1]["from"].as_i64().unwrap());
    let path = format!("/api/v1/admin/status-history/machine/{}", a.machine_id);
    let h = t.admin_ok("GET", &path, None).await;
    assert_eq!(statuses(&h), ["PENDING", "ACTIVE"], "{h}");
    let r = t
        .admin("GET", "/api/v1/admin/status-history/resident/x", None)
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "invalid_kind");
    let r = t
        .admin("GET", "/api/v1/admin/status-history/operator/nobody", None)
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "not_found");
    t.stop().await;
}

#[tokio::test]
async fn operators_are_published_moved_and_revoked_sqlite() {
    operators_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn operators_are_published_moved_and_revoked_postgres() {
    operators_flow(Backend::Postgres).await;
}

#[tokio::test]
async fn device_provider_certificates_are_published_and_revoked() {
    let t = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let s = t.active_station("10001").await;
    let now = tessera_packet::clock::Clock::now(&tessera_packet::clock::SystemClock);
    let ca = ProviderCa::generate(
        "Acme Devices CA",
        Alg::EdDsa,
        now - Duration::days(1),
        now + Duration::days(365),
    )
    .unwrap();
    let out = t
        .admin_ok(
            "PUT",
            "/api/v1/admin/certificates/acme-ca",
            Some(json!({"pem": ca.cert_pem()})),
        )
        .await;
    assert_eq!(out["subjects"], json!(["Acme Devices CA"]));
    let page: SyncPage = s.get("/api/v1/sync/certificates").await.json().await.unwrap();
    assert_eq!(page.kind, SyncKind::Certificates);
    assert_eq!(page.items[0].key, "acme-ca");
    assert_eq!(page.items[0].body["pem"], ca.cert_pem());
    let list = t.admin_ok("GET", "/api/v1/admin/certificates", None).await;
    assert_eq!(list[0]["id"], "acme-ca");

    for (path, body, code) in [
        (
            "/api/v1/admin/certificates/acme-ca",
            json!({"pem": "hello"}),
            "invalid_certificate",
        ),
        (
            "/api/v1/admin/certificates/acme-ca",
            json!({"pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
            "invalid_certificate",
        ),
        (
            "/api/v1/admin/certificates/acme-ca",
            json!({"cert": "x"}),
            "malformed_body",
        ),
        (
            "/api/v1/admin/certificates/a%20b",
            json!({"pem": ca.cert_pem()}),
            "invalid_certificate_id",
        ),
    ] {
        let r = t.admin("PUT", path, Some(body.clone())).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(error_code(r).await, code, "{body}");
    }
    let unchanged: SyncPage = s
        .get(&format!("/api/v1/sync/certificates?cursor={}", page.next_cursor))
        .await
        .json()
        .await
        .unwrap();
    assert!(unchanged.items.is_empty(), "refused requests wrote nothing");

    t.admin_ok("DELETE", "/api/v1/admin/certificates/acme-ca", None)
        .await;
    let delta: SyncPage = s
        .get(&format!("/api/v1/sync/certificates?cursor={}", page.next_cursor))
        .await
        .json()
        .await
        .unwrap();
    assert!(delta.items[0].deleted);
    let r = t
        .admin("DELETE", "/api/v1/admin/certificates/acme-ca", None)
        .await;
    assert_eq!(error_code(r).await, "not_found");
    t.stop().await;
}

/// A copy of the sample country configuration to edit.
fn country_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                std::fs::create_dir_all(to.join(e.file_name())).unwrap();
                for f in std::fs::read_dir(e.path()).unwrap() {
                    let f = f.unwrap();
                    std::fs::copy(f.path(), to.join(e.file_name()).join(f.file_name())).unwrap();
                }
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    };
    copy(&sample_country(), dir.path());
    dir
}

fn edit_json(path: &std::path::Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

async fn country_config_flow(backend: Backend) {
    let Some(t) = TestServer::start(backend, |s| s.country_config = Some(sample_country())).await else {
        return;
    };
    let s = t.active_station("10001").await;
    let md: SyncPage = s
        .get("/api/v1/sync/master-data?limit=500")
        .await
        .json()
        .await
        .unwrap();
    let cfg = country_copy();
    let dir = cfg.path().to_str().unwrap().to_owned();
    let reload = |body: Value| t.admin("POST", "/api/v1/admin/country-config", Some(body));

    // The same folder again: nothing to change.
    let r = t
        .admin_ok(
            "POST",
            "/api/v1/admin/country-config",
            Some(json!({"folder": dir})),
        )
        .await;
    assert_eq!(
        (r["changes"].as_array().unwrap().len(), &r["applied"]),
        (0, &json!(false))
    );

    // A change without a new configVersion is refused.
    edit_json(&cfg.path().join("dynamic-lists.json"), |v| {
        v["lists"]["gender"]
            .as_array_mut()
            .unwrap()
            .push(json!({"code": "OTH", "label": {"eng": "Other", "fra": "Autre"}}));
    });
    let r = reload(json!({"folder": dir})).await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "config_version_unchanged");

    // A dangling reference names the file and field; nothing is written.
    edit_json(&cfg.path().join("manifest.json"), |v| {
        v["configVersion"] = json!("2026.12.1")
    });
    edit_json(&cfg.path().join("ui-spec/NEW.json"), |v| {
        v["screens"][1]["fields"][0]["id"] = json!("favouriteColour");
    });
    let r = reload(json!({"folder": dir})).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_country_config");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("NEW.json") && msg.contains("favouriteColour"),
        "{msg}"
    );
    std::fs::copy(
        sample_country().join("ui-spec/NEW.json"),
        cfg.path().join("ui-spec/NEW.json"),
    )
    .unwrap();

    // A center's time zone the server does not know is refused (it would silently count as UTC).
    edit_json(&cfg.path().join("centers.json"), |v| {
        v["centers"][1]["timezone"] = json!("Mars/Olympus_Mons");
    });
    let body: Value = reload(json!({"folder": dir})).await.json().await.unwrap();
    assert_eq!(body["code"], "invalid_country_config");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("centers.json") && msg.contains("10002") && msg.contains("Mars/Olympus_Mons"),
        "{msg}"
    );
    // An IANA name is accepted (checked by a dry run; the real run below applies the sample's own zones).
    edit_json(&cfg.path().join("centers.json"), |v| {
        v["centers"][1]["timezone"] = json!("Africa/Casablanca");
    });
    let r = reload(json!({"folder": dir, "dry_run": true})).await;
    assert_eq!(r.status(), 200);
    std::fs::copy(
        sample_country().join("centers.json"),
        cfg.path().join("centers.json"),
    )
    .unwrap();

    // A published ID-schema version cannot change.
    edit_json(&cfg.path().join("id-schema.json"), |v| {
        v["title"] = json!("changed")
    });
    let r = reload(json!({"folder": dir})).await;
    assert_eq!(error_code(r).await, "id_schema_version_frozen");
    std::fs::copy(
        sample_country().join("id-schema.json"),
        cfg.path().join("id-schema.json"),
    )
    .unwrap();

    // Other bad requests.
    for (body, code) in [
        (json!({"folder": "/no/such/folder"}), "country_config_unreadable"),
        (json!({"folder": dir, "extra": 1}), "malformed_body"),
        (json!({"dry_run": "yes"}), "malformed_body"),
    ] {
        let r = reload(body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(error_code(r).await, code, "{body}");
    }
    std::fs::write(cfg.path().join("holidays.json"), "{ not json").unwrap();
    assert_eq!(
        error_code(reload(json!({"folder": dir})).await).await,
        "invalid_country_config"
    );
    std::fs::copy(
        sample_country().join("holidays.json"),
        cfg.path().join("holidays.json"),
    )
    .unwrap();
    let unchanged: SyncPage = s
        .get(&format!("/api/v1/sync/master-data?cursor={}", md.next_cursor))
        .await
        .json()
        .await
        .unwrap();
    assert!(unchanged.items.is_empty(), "refused reloads wrote nothing");

    // A dry run lists the changes; the real run applies them; stations get only the delta.
    let r = t
        .admin_ok(
            "POST",
            "/api/v1/admin/country-config",
            Some(json!({"folder": dir, "dry_run": true})),
        )
        .await;
    assert_eq!(r["applied"], false);
    assert_eq!(
        r["changes"],
        json!(["master-data/dynamicLists", "master-data/manifest"])
    );
    let r = t
        .admin_ok(
            "POST",
            "/api/v1/admin/country-config",
            Some(json!({"folder": dir})),
        )
        .await;
    assert_eq!(
        (&r["applied"], &r["config_version"]),
        (&json!(true), &json!("2026.12.1"))
    );
    let delta: SyncPage = s
        .get(&format!("/api/v1/sync/master-data?cursor={}", md.next_cursor))
        .await
        .json()
        .await
        .unwrap();
    let keys: Vec<&str> = delta.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.contains(&"dynamicLists") && keys.contains(&"manifest"),
        "{keys:?}"
    );

    // A new ID-schema version is added beside the old one (packets of 1.0 are still validated).
    edit_json(&cfg.path().join("manifest.json"), |v| {
        v["configVersion"] = json!("2027.1.1");
        v["idSchemaVersion"] = json!("1.1");
    });
    edit_json(&cfg.path().join("id-schema.json"), |v| {
        v["idVersion"] = json!("1.1")
    });
    for p in ["NEW", "UPDATE", "LOST"] {
        edit_json(&cfg.path().join(format!("ui-spec/{p}.json")), |v| {
            v["idSchemaVersion"] = json!("1.1");
        });
    }
    let r = t
        .admin_ok(
            "POST",
            "/api/v1/admin/country-config",
            Some(json!({"folder": dir})),
        )
        .await;
    assert_eq!(r["id_schema_versions"], json!(["1.1"]));
    let schemas: SyncPage = s.get("/api/v1/sync/id-schema").await.json().await.unwrap();
    let versions: Vec<&str> = schemas.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(versions, ["1.0", "1.1"]);
    t.stop().await;
}

#[tokio::test]
async fn country_config_is_checked_then_applied_as_a_new_version_sqlite() {
    country_config_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn country_config_is_checked_then_applied_as_a_new_version_postgres() {
    country_config_flow(Backend::Postgres).await;
}

#[tokio::test]
async fn country_config_reload_needs_a_folder() {
    let t = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let r = t.admin("POST", "/api/v1/admin/country-config", None).await;
    assert_eq!(error_code(r).await, "country_config_unset");
    t.stop().await;
}

async fn rotation_and_reprocessing_flow(backend: Backend) {
    let Some(t) = TestServer::start(backend, |s| s.country_config = Some(sample_country())).await else {
        return;
    };
    let data_dir = t.server.as_ref().unwrap().state.settings.data_dir.clone();
    let mut d = Desk::new(t.active_station("10001").await).await;
    let old_keys = d.keys.clone();

    // Rotation: stations now receive only the new key; packets made for the old one still open.
    let keys = t.admin_ok("POST", "/api/v1/admin/packet-keys/rotate", None).await;
    assert_eq!(keys[0]["key_id"], "packet-recipient-2");
    assert_eq!(
        (&keys[0]["published"], &keys[1]["published"]),
        (&json!(true), &json!(false))
    );
    let new_keys = recipients(&d.s).await;
    assert_eq!(new_keys.len(), 1);
    assert_ne!(new_keys[0].to_string(), old_keys[0].to_string());
    assert_eq!(new_keys[0].to_string(), keys[0]["recipient"]);
    let late = d.submit(1, &Resident::new(81, "Esi Boateng")).await;
    d.keys = new_keys;
    let fresh = d.submit(2, &Resident::new(82, "Yaw Darko")).await;
    for rid in [&late, &fresh] {
        assert_eq!(
            final_status(&d.s, rid).await.status,
            PacketStatus::Processed,
            "{rid}"
        );
    }

    // A station that encrypted to a key this server does not have (restored from another server's backup):
    // quarantined, listed, and processed once the key file is put back and the packet reprocessed.
    let foreign = age::x25519::Identity::generate();
    d.keys = vec![foreign.to_public()];
    let (rid, data) = d.packet(3, &Resident::new(83, "Kwame Asante"), Decision::Approved);
    upload(&d.s, &rid, &data).await;
    let st = final_status(&d.s, &rid).await;
    assert_eq!(st.status, PacketStatus::Quarantined);
    assert!(st.reason.as_deref().unwrap().starts_with("decrypt:"), "{st:?}");
    let q = t
        .admin_ok("GET", "/api/v1/admin/packets?status=QUARANTINED", None)
        .await;
    assert_eq!(q.as_array().unwrap().len(), 1);
    assert_eq!(q[0]["rid"], rid.to_string());
    let r = t
        .admin("POST", &format!("/api/v1/admin/packets/{late}/reprocess"), None)
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "not_quarantined");

    {
        use age::secrecy::ExposeSecret as _;
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(data_dir.join("keys/packet-recipient-3.key"))
            .unwrap();
        writeln!(f, "{}", foreign.to_string().expose_secret()).unwrap();
    }
    let r = t
        .admin("POST", &format!("/api/v1/admin/packets/{rid}/reprocess"), None)
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(final_status(&d.s, &rid).await.status, PacketStatus::Processed);
    let detail = t
        .admin_ok("GET", &format!("/api/v1/admin/packets/{rid}"), None)
        .await;
    let history: Vec<(String, Option<String>)> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["status"].as_str().unwrap().to_owned(),
                e["reason"].as_str().map(str::to_owned),
            )
        })
        .collect();
    // The test packets were created (20 November) before their machine's enrolment: the validation stage
    // flags the station clock in the history, without a status change.
    assert!(
        history
            .iter()
            .any(|(s, r)| s == "PROCESSING" && r.as_deref() == Some("flag:clock_behind")),
        "{detail}"
    );
    let history: Vec<(String, Option<String>)> = history
        .into_iter()
        .filter(|(_, r)| !r.as_deref().is_some_and(|r| r.starts_with("flag:")))
        .collect();
    let statuses: Vec<&str> = history.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "RECEIVED",
            "PROCESSING",
            "QUARANTINED",
            "RECEIVED",
            "PROCESSING",
            "PROCESSED"
        ],
        "{detail}"
    );
    assert!(history[2].1.as_deref().unwrap().starts_with("decrypt:"));

    // Bad input.
    for (path, status, code) in [
        ("/api/v1/admin/packets/123", 400, "invalid_rid"),
        (
            "/api/v1/admin/packets/10001100010009920261120090001",
            404,
            "not_found",
        ),
        ("/api/v1/admin/packets?status=LOST", 400, "invalid_status"),
        ("/api/v1/admin/packets?limit=-1", 400, "malformed_query"),
    ] {
        let r = t.admin("GET", path, None).await;
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(error_code(r).await, code, "{path}");
    }
    for (rid, status, code) in [
        ("123", 400, "invalid_rid"),
        ("10001100010009920261120090001", 404, "not_found"),
    ] {
        let r = t
            .admin("POST", &format!("/api/v1/admin/packets/{rid}/reprocess"), None)
            .await;
        assert_eq!(r.status(), status, "{rid}");
        assert_eq!(error_code(r).await, code, "{rid}");
    }
    t.stop().await;
}

#[tokio::test]
async fn packet_keys_rotate_and_quarantined_packets_are_reprocessed_after_a_fix_sqlite() {
    rotation_and_reprocessing_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn packet_keys_rotate_and_quarantined_packets_are_reprocessed_after_a_fix_postgres() {
    rotation_and_reprocessing_flow(Backend::Postgres).await;
}
