//! The storage conformance suite: every test runs against SQLite and PostgreSQL.

use std::sync::Arc;
use tessera_packet::ids::Rid;
use tessera_packet::wire::{MachineStatus, PacketStatus, SyncKind};

use tessera_server::store::postgres::PgStore;
use tessera_server::store::sqlite::SqliteStore;
use tessera_server::store::{
    Candidate, IdentityLookup, NewIdentity, NewMachine, NewNotification, NewUpload, OperatorKeyRecord,
    PacketEvent, PoolUin, Store, StoreError, SyncChange,
};
use tessera_server::uin::{self, UinCipher};

use crate::common::{drop_schema, pg_store, pg_url, sqlite_store};

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = crate::common::sqlite_store();
                    super::$name(store.as_ref()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((store, schema)) = crate::common::pg_store().await else { return };
                    super::$name(store.as_ref()).await;
                    crate::common::drop_schema(&schema).await;
                }
            )*
        }
    };
}

conformance!(
    migrations_applied,
    machine_enrolment_is_idempotent_and_numbered,
    machine_status_changes_and_unknown_machine,
    nonce_replay_detected_and_expired_nonces_forgotten,
    sync_versions_grow_and_unchanged_items_do_not_bump,
    sync_scopes_are_separate_and_pages_follow_cursor,
    upload_create_is_idempotent_and_conflicts_are_refused,
    upload_advance_is_compare_and_set_and_completion_records_packet,
    uin_allocation_is_idempotent_distinct_and_atomic,
    jobs_are_leased_reclaimed_after_expiry_and_finished_once,
    operator_keys_register_idempotently,
    adjudication_holds_decides_once_and_requeues,
    identity_gallery_and_credential_are_idempotent,
    identity_update_replaces_record_and_gallery_rows,
    outbox_claims_with_lease_and_marks_sent,
    rewrap_touches_only_other_keys,
    sync_batches_apply_together_and_current_items_span_scopes,
    packet_history_lists_and_requeue_of_quarantined_packets,
    outbox_retry_waits_until_the_back_off_ends,
    status_history_of_machines_operators_and_centers,
);

fn key(n: u8) -> [u8; 32] {
    [n; 32]
}

fn rid(machine: &str, seq: u32) -> Rid {
    format!("10001{machine}{seq:05}20261129080000").parse().unwrap()
}

async fn migrations_applied(s: &dyn Store) {
    assert_eq!(s.schema_version().await.unwrap(), 7);
    s.ping().await.unwrap();
}

async fn machine_enrolment_is_idempotent_and_numbered(s: &dyn Store) {
    let new = |k: u8| NewMachine {
        center_id: "10001".parse().unwrap(),
        name: format!("m{k}"),
        public_key: key(k),
        at: 100,
    };
    let (a, a_new) = s.enrol_machine(new(1)).await.unwrap();
    let (b, _) = s.enrol_machine(new(2)).await.unwrap();
    assert!(a_new);
    assert_eq!(a.machine_id.as_str(), "10001");
    assert_eq!(b.machine_id.as_str(), "10002");
    assert_eq!(a.status, MachineStatus::Pending);
    let again = s
        .enrol_machine(NewMachine {
            name: "renamed".into(),
            at: 200,
            ..new(1)
        })
        .await
        .unwrap();
    assert_eq!(
        again,
        (a.clone(), false),
        "same key gives the same machine, unchanged"
    );
    assert_eq!(s.list_machines(None).await.unwrap().len(), 2);
    assert_eq!(
        s.machine(&a.machine_id).await.unwrap().unwrap().public_key,
        key(1)
    );
}

async fn machine_status_changes_and_unknown_machine(s: &dyn Store) {
    let (m, _) = s
        .enrol_machine(NewMachine {
            center_id: "10001".parse().unwrap(),
            name: "x".into(),
            public_key: key(3),
            at: 1,
        })
        .await
        .unwrap();
    let a = s
        .set_machine_status(&m.machine_id, MachineStatus::Active, None, 5)
        .await
        .unwrap();
    assert_eq!((a.status, a.updated_at), (MachineStatus::Active, 5));
    let sus = s
        .set_machine_status(&m.machine_id, MachineStatus::Suspended, Some("stolen".into()), 6)
        .await
        .unwrap();
    assert_eq!(sus.status_reason.as_deref(), Some("stolen"));
    assert_eq!(
        s.list_machines(Some(MachineStatus::Suspended))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.list_machines(Some(MachineStatus::Active))
            .await
            .unwrap()
            .is_empty()
    );
    let err = s
        .set_machine_status(&"99999".parse().unwrap(), MachineStatus::Active, None, 7)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(s.machine(&"99999".parse().unwrap()).await.unwrap().is_none());
}

async fn nonce_replay_detected_and_expired_nonces_forgotten(s: &dyn Store) {
    let m = "10001".parse().unwrap();
    let other = "10002".parse().unwrap();
    assert!(s.use_nonce(&m, "aaaa", 100, 10).await.unwrap());
    assert!(!s.use_nonce(&m, "aaaa", 100, 20).await.unwrap(), "replay");
    assert!(
        s.use_nonce(&other, "aaaa", 100, 20).await.unwrap(),
        "nonces are per machine"
    );
    // After expiry the nonce is purged (the timestamp check refuses such old requests anyway).
    assert!(s.use_nonce(&m, "aaaa", 300, 200).await.unwrap());
}

async fn sync_versions_grow_and_unchanged_items_do_not_bump(s: &dyn Store) {
    let k = SyncKind::MasterData;
    let v1 = s
        .put_sync_item(k, "", "centers/1", Some(serde_json::json!({"a": 1})))
        .await
        .unwrap()
        .unwrap();
    let v2 = s
        .put_sync_item(k, "", "centers/2", Some(serde_json::json!({"a": 2})))
        .await
        .unwrap()
        .unwrap();
    assert!(v2 > v1);
    assert_eq!(
        s.put_sync_item(k, "", "centers/1", Some(serde_json::json!({"a": 1})))
            .await
            .unwrap(),
        None
    );
    let v3 = s
        .put_sync_item(k, "", "centers/1", Some(serde_json::json!({"a": 3})))
        .await
        .unwrap()
        .unwrap();
    assert!(v3 > v2);
    let v4 = s.put_sync_item(k, "", "centers/2", None).await.unwrap().unwrap();
    assert_eq!(
        s.put_sync_item(k, "", "centers/2", None).await.unwrap(),
        None,
        "deleting twice is a no-op"
    );
    assert_eq!(s.put_sync_item(k, "", "never", None).await.unwrap(), None);
    let items = s.sync_items(k, "", 0, 10).await.unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!((items[0].key.as_str(), items[0].version), ("centers/1", v3));
    assert_eq!(items[0].body, serde_json::json!({"a": 3}));
    assert_eq!(
        (items[1].key.as_str(), items[1].deleted, items[1].version),
        ("centers/2", true, v4)
    );
    assert!(items[1].body.is_null());
}

async fn sync_scopes_are_separate_and_pages_follow_cursor(s: &dyn Store) {
    for i in 0..5 {
        s.put_sync_item(
            SyncKind::Operators,
            "10001",
            &format!("op{i}"),
            Some(serde_json::json!(i)),
        )
        .await
        .unwrap();
    }
    s.put_sync_item(SyncKind::Operators, "10002", "other", Some(serde_json::json!(0)))
        .await
        .unwrap();
    s.put_sync_item(SyncKind::UiSpec, "", "NEW", Some(serde_json::json!({})))
        .await
        .unwrap();
    let p1 = s.sync_items(SyncKind::Operators, "10001", 0, 2).await.unwrap();
    assert_eq!(
        p1.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
        ["op0", "op1"]
    );
    let p2 = s
        .sync_items(SyncKind::Operators, "10001", p1[1].version, 10)
        .await
        .unwrap();
    assert_eq!(
        p2.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
        ["op2", "op3", "op4"]
    );
    assert!(
        s.sync_items(SyncKind::Operators, "10001", p2[2].version, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.sync_items(SyncKind::Operators, "10002", 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.sync_items(SyncKind::UiSpec, "", 0, 10).await.unwrap().len(), 1);
}

fn upload(id: &str, machine: &str, seq: u32, len: u64, sha: &str) -> NewUpload {
    NewUpload {
        upload_id: id.into(),
        machine_id: machine.parse().unwrap(),
        rid: rid(machine, seq),
        length: len,
        sha256: sha.into(),
        at: 1000,
    }
}

async fn upload_create_is_idempotent_and_conflicts_are_refused(s: &dyn Store) {
    let sha = "ab".repeat(32);
    let a = s.create_upload(upload("u1", "10001", 1, 10, &sha)).await.unwrap();
    assert_eq!(
        (a.upload_id.as_str(), a.received, a.completed_at),
        ("u1", 0, None)
    );
    let again = s.create_upload(upload("u2", "10001", 1, 10, &sha)).await.unwrap();
    assert_eq!(again.upload_id, "u1", "retry finds the first upload");
    let err = s
        .create_upload(upload("u3", "10001", 1, 11, &sha))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let err = s
        .create_upload(upload("u4", "10001", 1, 10, &"cd".repeat(32)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(s.upload("u3").await.unwrap().is_none(), "nothing half-written");
    assert_eq!(s.uploads_since(&"10001".parse().unwrap(), 1000).await.unwrap(), 1);
    assert_eq!(s.uploads_since(&"10001".parse().unwrap(), 1001).await.unwrap(), 0);
}

async fn upload_advance_is_compare_and_set_and_completion_records_packet(s: &dyn Store) {
    let sha = "ab".repeat(32);
    s.create_upload(upload("u1", "10001", 2, 10, &sha)).await.unwrap();
    assert!(s.advance_upload("u1", 0, 4).await.unwrap());
    assert!(
        !s.advance_upload("u1", 0, 4).await.unwrap(),
        "stale offset refused"
    );
    let err = s.complete_upload("u1", "{}", 2000).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { .. }),
        "incomplete upload cannot complete: {err}"
    );
    assert!(s.advance_upload("u1", 4, 10).await.unwrap());
    let p = s.complete_upload("u1", "{\"r\":1}", 2000).await.unwrap();
    assert_eq!(
        (p.status, p.size, p.receipt.as_str(), p.received_at),
        (PacketStatus::Received, 10, "{\"r\":1}", 2000)
    );
    let again = s.complete_upload("u1", "{\"r\":2}", 3000).await.unwrap();
    assert_eq!(again, p, "completion is idempotent");
    assert!(
        !s.advance_upload("u1", 10, 0).await.unwrap(),
        "a completed upload no longer moves"
    );
    assert_eq!(s.packet(&rid("10001", 2)).await.unwrap().unwrap(), p);
    assert!(s.packet(&rid("10001", 3)).await.unwrap().is_none());

    // The last chunk and the completion in one transaction.
    s.create_upload(upload("u5", "10001", 5, 10, &sha)).await.unwrap();
    assert!(s.advance_upload("u5", 0, 4).await.unwrap());
    let err = s.finish_upload("u5", 0, "{}", 2100).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "stale offset: {err}");
    assert!(
        s.packet(&rid("10001", 5)).await.unwrap().is_none(),
        "nothing recorded"
    );
    let p5 = s.finish_upload("u5", 4, "{\"r\":5}", 2100).await.unwrap();
    assert_eq!((p5.status, p5.size), (PacketStatus::Received, 10));
    let up = s.upload("u5").await.unwrap().unwrap();
    assert_eq!((up.received, up.completed_at), (10, Some(2100)));
    assert_eq!(
        s.finish_upload("u5", 4, "{}", 2200).await.unwrap(),
        p5,
        "idempotent"
    );
    assert!(matches!(
        s.finish_upload("nope", 0, "{}", 1).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert_eq!(
        s.claim_job("w", 3000, 60).await.unwrap(),
        Some(rid("10001", 2)),
        "jobs enqueued in order"
    );
    assert_eq!(s.claim_job("w", 3000, 60).await.unwrap(), Some(rid("10001", 5)));
    assert_eq!(s.upload("u1").await.unwrap().unwrap().completed_at, Some(2000));
}

fn cipher() -> Arc<UinCipher> {
    crate::common::test_cipher()
}

fn h(uin: &str) -> String {
    crate::common::uin_hash(uin)
}

fn sealed(c: &UinCipher, uins: &[String]) -> Vec<PoolUin> {
    uins.iter().map(|u| c.seal(u).unwrap()).collect()
}

async fn uin_allocation_is_idempotent_distinct_and_atomic(s: &dyn Store) {
    let c = cipher();
    let uins: Vec<String> = (0..6).map(|i| format!("2{i}00000000")).collect();
    assert_eq!(s.add_uins(sealed(&c, &uins)).await.unwrap(), 6);
    assert_eq!(
        s.add_uins(sealed(&c, &uins)).await.unwrap(),
        0,
        "the same UINs sealed again are recognised by their hash"
    );
    assert_eq!(s.uins_available().await.unwrap(), 6);
    let a = uin::allocate(s, &c, vec![rid("10001", 1), rid("10001", 2)], 10)
        .await
        .unwrap();
    assert_ne!(a[0].1, a[1].1);
    assert!(uins.contains(&a[0].1) && uins.contains(&a[1].1), "{a:?}");
    let dup = uin::allocate(s, &c, vec![rid("10001", 9), rid("10001", 9)], 11)
        .await
        .unwrap();
    assert_eq!(dup[0].1, dup[1].1, "a RID twice in one batch gets one UIN");
    let again = uin::allocate(s, &c, vec![rid("10001", 1)], 11).await.unwrap();
    assert_eq!(again[0].1, a[0].1, "same RID, same UIN");
    assert_eq!(s.uins_available().await.unwrap(), 3);
    assert_eq!(
        s.add_uins(sealed(&c, &[a[0].1.clone(), dup[0].1.clone()]))
            .await
            .unwrap(),
        0,
        "an assigned UIN is never put back in the pool"
    );
    assert_eq!(s.uins_available().await.unwrap(), 3);
    let rids: Vec<Rid> = (3..9).map(|i| rid("10001", i)).collect();
    let err = s.allocate_uins(rids, 12).await.unwrap_err();
    assert!(matches!(err, StoreError::PoolEmpty), "{err}");
    assert_eq!(
        s.uins_available().await.unwrap(),
        3,
        "a failed batch allocates nothing"
    );
    // The store hands out sealed entries; another salt cannot open them.
    let entry = s
        .allocate_uins(vec![rid("10001", 1)], 13)
        .await
        .unwrap()
        .remove(0)
        .1;
    assert_eq!(c.open(&entry).unwrap(), a[0].1);
    assert!(
        !entry.sealed.windows(10).any(|w| w == a[0].1.as_bytes()),
        "sealed, not in clear"
    );
    assert!(UinCipher::new(&[8; 32]).open(&entry).is_err());
    // Whatever the starting point, the rest of the pool is reachable (the order wraps around).
    let last = uin::allocate(s, &c, (20..23).map(|i| rid("10001", i)).collect(), 14)
        .await
        .unwrap();
    let all: std::collections::HashSet<_> = a
        .iter()
        .chain(&dup[..1])
        .chain(&last)
        .map(|(_, u)| u.clone())
        .collect();
    assert_eq!(all.len(), 6, "every pooled UIN handed out once");
    assert_eq!(s.uins_available().await.unwrap(), 0);
    assert!(s.allocate_uins(vec![rid("10001", 30)], 15).await.is_err());
}

/// The rows a store of schema version 3 held: free UINs and RID → UIN assignments in clear.
const LEGACY_FREE: [&str; 3] = ["2930475917", "2930475925", "2930475933"];
const LEGACY_ASSIGNED: [(&str, u32); 2] = [("2930475941", 1), ("2930475958", 2)];

async fn legacy_pool_converts_once(s: &dyn Store) {
    let c = cipher();
    assert_eq!(s.protect_legacy_uins(c.clone()).await.unwrap(), 5);
    assert_eq!(
        s.protect_legacy_uins(c.clone()).await.unwrap(),
        0,
        "converted once"
    );
    assert_eq!(s.uins_available().await.unwrap(), 3);
    for (uin, seq) in LEGACY_ASSIGNED {
        let got = uin::allocate(s, &c, vec![rid("10001", seq)], 50).await.unwrap();
        assert_eq!(got[0].1, uin, "an old assignment keeps its UIN");
    }
    assert_eq!(
        s.add_uins(sealed(&c, &[LEGACY_ASSIGNED[0].0.to_owned()]))
            .await
            .unwrap(),
        0,
        "an old assignment blocks reuse"
    );
    let fresh = uin::allocate(s, &c, (10..13).map(|i| rid("10001", i)).collect(), 51)
        .await
        .unwrap();
    let mut got: Vec<_> = fresh.into_iter().map(|(_, u)| u).collect();
    got.sort();
    assert_eq!(got, LEGACY_FREE, "old free UINs are handed out");
}

#[tokio::test]
async fn sqlite_legacy_uin_pool_is_converted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let key = [9u8; 32];
    drop(SqliteStore::open_at_version(&path, &key, 3).unwrap());
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(key)))
            .unwrap();
        for (i, u) in LEGACY_FREE.iter().enumerate() {
            c.execute(
                "INSERT INTO uin_pool (uin, pick) VALUES (?1, ?2)",
                rusqlite::params![u, i as i64],
            )
            .unwrap();
        }
        for (u, seq) in LEGACY_ASSIGNED {
            c.execute(
                "INSERT INTO uin_pool (uin, pick, rid, allocated_at) VALUES (?1, 0, ?2, 5)",
                rusqlite::params![u, rid("10001", seq).as_str()],
            )
            .unwrap();
        }
    }
    let s = SqliteStore::open(&path, &key).unwrap();
    legacy_pool_converts_once(&s).await;
}

/// A fresh schema migrated only up to `version`, and a plain client to write rows as a server of that version
/// did (close it with `drop(client); let _ = task.await;`). `None` when PostgreSQL is not configured.
async fn pg_schema_at_version(
    version: i64,
) -> Option<(
    String,
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
)> {
    let (probe, schema) = pg_store().await?;
    drop(probe);
    drop_schema(&schema).await;
    drop(
        PgStore::connect_at_version(&pg_url(), 2, Some(&schema), version)
            .await
            .unwrap(),
    );
    let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    Some((schema, client, tokio::spawn(conn)))
}

#[tokio::test]
async fn postgres_legacy_uin_pool_is_converted() {
    let Some((schema, client, task)) = pg_schema_at_version(3).await else {
        return;
    };
    for (i, u) in LEGACY_FREE.iter().enumerate() {
        client
            .execute(
                &format!("INSERT INTO {schema}.uin_pool (uin, pick) VALUES ($1, $2)"),
                &[u, &(i as i64)],
            )
            .await
            .unwrap();
    }
    for (u, seq) in LEGACY_ASSIGNED {
        client
            .execute(
                &format!(
                    "INSERT INTO {schema}.uin_pool (uin, pick, rid, allocated_at) VALUES ($1, 0, $2, 5)"
                ),
                &[&u, &rid("10001", seq).as_str()],
            )
            .await
            .unwrap();
    }
    drop(client);
    let _ = task.await;
    let s = PgStore::connect(&pg_url(), 2, Some(&schema)).await.unwrap();
    legacy_pool_converts_once(&s).await;
    drop_schema(&schema).await;
}

/// Rows a store of schema version 5 held with UINs in clear: persons, gallery, a credential, a decided
/// adjudication case.
const V5_UINS: [&str; 2] = ["2930475966", "2930475974"];

fn v5_rows() -> Vec<(String, Vec<String>)> {
    let (u1, u2) = (V5_UINS[0], V5_UINS[1]);
    let (r1, r2, r3) = (rid("10001", 1), rid("10001", 2), rid("10001", 3));
    let cands = serde_json::to_string(&vec![
        candidate(u1, "biometric", 0.9),
        candidate(u2, "demographic", 1.0),
    ])
    .unwrap();
    vec![
        (
            "INSERT INTO persons (uin, blocking_key, rid) VALUES ($1, $2, $3)".into(),
            vec![u1.into(), "b1".into(), r1.to_string()],
        ),
        (
            "INSERT INTO persons (uin, blocking_key, rid) VALUES ($1, $2, $3)".into(),
            vec![u2.into(), "b1".into(), r2.to_string()],
        ),
        (
            "INSERT INTO credentials (rid, uin, body, created_at) VALUES ($1, $2, $3, 7)".into(),
            vec![r1.to_string(), u1.into(), format!("{{\"uin\":\"{u1}\"}}")],
        ),
        (
            "INSERT INTO adjudication_cases (rid, status, candidates, created_at, decided_at, decided_by, duplicate_of)
             VALUES ($1, 'DUPLICATE', $2, 8, 9, 'adjudicator', $3)"
                .into(),
            vec![r3.to_string(), cands, u1.into()],
        ),
    ]
}

/// Gallery rows of the old schema: (seq, UIN, position).
const V5_GALLERY: [(i64, &str, i64); 3] = [(1, V5_UINS[0], 2), (2, V5_UINS[0], 7), (5, V5_UINS[1], 2)];

async fn v5_rows_convert_once(s: &dyn Store) {
    let c = cipher();
    assert_eq!(s.schema_version().await.unwrap(), 7);
    assert_eq!(s.protect_legacy_uins(c.clone()).await.unwrap(), 7);
    assert_eq!(
        s.protect_legacy_uins(c.clone()).await.unwrap(),
        0,
        "converted once"
    );
    let (u1, u2) = (V5_UINS[0].to_owned(), V5_UINS[1].to_owned());
    let mut both = vec![u1.clone(), u2.clone()];
    both.sort();
    assert_eq!(s.persons_by_blocking_key("b1").await.unwrap(), both);
    assert_eq!(
        s.person_uins(vec![h(&u2), "nope".into(), h(&u1)]).await.unwrap(),
        [(h(&u2), u2.clone()), (h(&u1), u1.clone())]
    );
    let g = s.gallery_since(0, 100).await.unwrap();
    assert_eq!(
        g.iter()
            .map(|r| (r.seq, r.uin_hash.clone(), i64::from(r.position)))
            .collect::<Vec<_>>(),
        V5_GALLERY
            .iter()
            .map(|(seq, u, p)| (*seq, h(u), *p))
            .collect::<Vec<_>>(),
        "sequence numbers kept, keyed by hash"
    );
    assert_eq!(g[0].template, vec![1, 2, 3]);
    assert_eq!(
        s.credential(&rid("10001", 1)).await.unwrap(),
        Some((u1.clone(), format!("{{\"uin\":\"{u1}\"}}")))
    );
    let case = s.adjudication_case(&rid("10001", 3)).await.unwrap().unwrap();
    assert_eq!(
        (
            case.status.as_str(),
            case.duplicate_of.as_deref(),
            case.decided_at
        ),
        ("DUPLICATE", Some(u1.as_str()), Some(9))
    );
    assert_eq!(
        case.candidates,
        [
            candidate(&u1, "biometric", 0.9),
            candidate(&u2, "demographic", 1.0)
        ]
    );
    // New rows follow the old sequence.
    let r = claimed_packet(s, "v6", 4, 100).await;
    s.store_identity(NewIdentity {
        rid: r,
        uin: "2930475982".into(),
        uin_hash: h("2930475982"),
        key_id: "k1".into(),
        wrapped_key: vec![1; 72],
        ciphertext: vec![2; 10],
        blocking_key: "b2".into(),
        templates: vec![(3, vec![4; 10])],
        at: 100,
    })
    .await
    .unwrap();
    assert!(s.gallery_since(5, 10).await.unwrap()[0].seq > 5);
}

#[tokio::test]
async fn sqlite_v5_tables_holding_uins_are_converted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let key = [9u8; 32];
    drop(SqliteStore::open_at_version(&path, &key, 5).unwrap());
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(key)))
            .unwrap();
        for (sql, args) in v5_rows() {
            c.execute(&sql.replace('$', "?"), rusqlite::params_from_iter(args))
                .unwrap();
        }
        for (seq, u, p) in V5_GALLERY {
            c.execute(
                "INSERT INTO gallery (seq, uin, position, template) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![seq, u, p, vec![1u8, 2, 3]],
            )
            .unwrap();
        }
    }
    let s = SqliteStore::open(&path, &key).unwrap().with_uin_cipher(cipher());
    v5_rows_convert_once(&s).await;
    drop(s);
    crate::common::assert_no_uin_in_clear(
        crate::common::Backend::Sqlite,
        crate::common::ScanTarget::Sqlite {
            path: path.clone(),
            key: key.to_vec(),
        },
        &V5_UINS.map(str::to_owned),
    )
    .await;
}

#[tokio::test]
async fn postgres_v5_tables_holding_uins_are_converted() {
    let Some((schema, client, task)) = pg_schema_at_version(5).await else {
        return;
    };
    client
        .batch_execute(&format!("SET search_path = {schema}"))
        .await
        .unwrap();
    for (sql, args) in v5_rows() {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args
            .iter()
            .map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        client.execute(&sql, &params).await.unwrap();
    }
    for (seq, u, p) in V5_GALLERY {
        client
            .execute(
                "INSERT INTO gallery (seq, uin, position, template) VALUES ($1, $2, $3, $4)",
                &[&seq, &u, &p, &vec![1u8, 2, 3]],
            )
            .await
            .unwrap();
    }
    // The old table's sequence as a server would have left it.
    client
        .batch_execute("SELECT setval('gallery_seq_seq', 5)")
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
    let s = PgStore::connect(&pg_url(), 2, Some(&schema))
        .await
        .unwrap()
        .with_uin_cipher(cipher());
    v5_rows_convert_once(&s).await;
    drop(s);
    crate::common::assert_no_uin_in_clear(
        crate::common::Backend::Postgres,
        crate::common::ScanTarget::Postgres {
            schema: schema.clone(),
        },
        &V5_UINS.map(str::to_owned),
    )
    .await;
    drop_schema(&schema).await;
}

#[tokio::test]
async fn sqlite_file_is_encrypted_and_wrong_key_is_refused() {
    let (store, dir) = sqlite_store();
    store
        .put_sync_item(
            SyncKind::MasterData,
            "",
            "secret-marker",
            Some(serde_json::json!("visible?")),
        )
        .await
        .unwrap();
    drop(store);
    let path = dir.path().join("t.db");
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.starts_with(b"SQLite format 3"), "header must be encrypted");
    assert!(!bytes.windows(13).any(|w| w == b"secret-marker"));
    let err = tessera_server::store::sqlite::SqliteStore::open(&path, &[1u8; 32]).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
    let reopened = tessera_server::store::sqlite::SqliteStore::open(&path, &[9u8; 32]).unwrap();
    assert_eq!(
        reopened.schema_version().await.unwrap(),
        7,
        "reopening does not re-migrate"
    );
}

#[tokio::test]
async fn postgres_concurrent_allocation_never_gives_one_uin_twice() {
    let Some((store, schema)) = pg_store().await else {
        return;
    };
    let c = cipher();
    let uins: Vec<String> = (0..400).map(|i| format!("3{i:09}")).collect();
    store.add_uins(sealed(&c, &uins)).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8u32 {
        let (s, c) = (store.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..40u32 {
                // Every worker also asks for RIDs the others ask for: each RID must still get one UIN.
                let r = rid("10001", (i * 8 + w) % 200 + 1);
                got.extend(uin::allocate(s.as_ref(), &c, vec![r], 1).await.unwrap());
            }
            got
        }));
    }
    let mut by_rid = std::collections::HashMap::new();
    for t in tasks {
        for (r, u) in t.await.unwrap() {
            let prev = by_rid.insert(r.clone(), u.clone());
            if let Some(p) = prev {
                assert_eq!(p, u, "RID {r} got two UINs");
            }
        }
    }
    let distinct: std::collections::HashSet<_> = by_rid.values().collect();
    assert_eq!(distinct.len(), by_rid.len(), "no UIN given to two RIDs");
    assert_eq!(store.uins_available().await.unwrap(), 400 - by_rid.len() as u64);
    drop_schema(&schema).await;
}

async fn jobs_are_leased_reclaimed_after_expiry_and_finished_once(s: &dyn Store) {
    let sha = "ab".repeat(32);
    for (i, id) in [(1, "j1"), (2, "j2")] {
        s.create_upload(upload(id, "10001", i, 4, &sha)).await.unwrap();
        assert!(s.advance_upload(id, 0, 4).await.unwrap());
        s.complete_upload(id, "{}", 100 + i64::from(i)).await.unwrap();
    }
    let first = s.claim_job("w1", 200, 60).await.unwrap().unwrap();
    assert_eq!(first, rid("10001", 1), "oldest first");
    assert_eq!(
        s.packet(&first).await.unwrap().unwrap().status,
        PacketStatus::Processing
    );
    let second = s.claim_job("w2", 200, 60).await.unwrap().unwrap();
    assert_eq!(second, rid("10001", 2), "a leased job is skipped");
    assert!(s.claim_job("w3", 210, 60).await.unwrap().is_none());
    // w1 "dies": after its lease the job is taken again.
    let again = s.claim_job("w3", 261, 60).await.unwrap().unwrap();
    assert_eq!(again, first);
    s.finish_job(
        &again,
        PacketStatus::Quarantined,
        Some("verify:bad_signature".into()),
        270,
    )
    .await
    .unwrap();
    let p = s.packet(&again).await.unwrap().unwrap();
    assert_eq!(
        (p.status, p.reason.as_deref()),
        (PacketStatus::Quarantined, Some("verify:bad_signature"))
    );
    s.finish_job(&second, PacketStatus::Processed, None, 270)
        .await
        .unwrap();
    assert!(
        s.claim_job("w3", 10_000, 60).await.unwrap().is_none(),
        "finished jobs are never claimed again"
    );
}

/// A received packet with a job, claimed (as the pipeline sees it).
pub async fn claimed_packet(s: &dyn Store, id: &str, seq: u32, at: i64) -> Rid {
    let sha = "ab".repeat(32);
    s.create_upload(upload(id, "10001", seq, 4, &sha)).await.unwrap();
    assert!(s.advance_upload(id, 0, 4).await.unwrap());
    s.complete_upload(id, "{}", at).await.unwrap();
    s.claim_job("w", at, 60).await.unwrap().unwrap()
}

async fn operator_keys_register_idempotently(s: &dyn Store) {
    let rec = |k: u8, at: i64| OperatorKeyRecord {
        operator_id: "officer01".into(),
        public_key: key(k),
        machine_id: "10001".parse().unwrap(),
        center_id: "10001".parse().unwrap(),
        registered_at: at,
    };
    assert!(s.register_operator_key(rec(1, 10)).await.unwrap());
    assert!(
        !s.register_operator_key(rec(1, 20)).await.unwrap(),
        "same key again"
    );
    assert!(s.register_operator_key(rec(2, 30)).await.unwrap());
    let keys = s.operator_keys("officer01").await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], rec(1, 10), "first registration kept");
    assert!(s.operator_keys("nobody").await.unwrap().is_empty());
}

fn candidate(uin: &str, kind: &str, score: f64) -> Candidate {
    Candidate {
        uin: uin.into(),
        kind: kind.into(),
        score,
        fingers_compared: 2,
    }
}

async fn adjudication_holds_decides_once_and_requeues(s: &dyn Store) {
    let r = claimed_packet(s, "a1", 1, 100).await;
    let cands = vec![candidate("2345678901", "biometric", 0.42)];
    s.hold_for_adjudication(&r, cands.clone(), "adjudication:biometric", 110)
        .await
        .unwrap();
    // A re-run (at-least-once) keeps the first case.
    s.hold_for_adjudication(&r, vec![], "adjudication:biometric", 111)
        .await
        .unwrap();
    let p = s.packet(&r).await.unwrap().unwrap();
    assert_eq!(
        (p.status, p.reason.as_deref()),
        (PacketStatus::OnHold, Some("adjudication:biometric"))
    );
    assert!(
        s.claim_job("w", 10_000, 60).await.unwrap().is_none(),
        "a held job is not claimed"
    );
    let pending = s.adjudication_cases(Some("PENDING".into())).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].candidates, cands);
    assert!(
        s.adjudication_cases(Some("DUPLICATE".into()))
            .await
            .unwrap()
            .is_empty()
    );
    let c = s
        .decide_adjudication(&r, "DUPLICATE", Some("2345678901".into()), "adjudicator", 120)
        .await
        .unwrap();
    assert_eq!(
        (
            c.status.as_str(),
            c.duplicate_of.as_deref(),
            c.decided_by.as_deref(),
            c.decided_at
        ),
        ("DUPLICATE", Some("2345678901"), Some("adjudicator"), Some(120))
    );
    let err = s
        .decide_adjudication(&r, "NOT_DUPLICATE", None, "adjudicator", 130)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        s.claim_job("w", 200, 60).await.unwrap(),
        Some(r.clone()),
        "the decision puts the job back in the queue"
    );
    assert_eq!(s.adjudication_case(&r).await.unwrap().unwrap(), c);
    let err = s
        .decide_adjudication(&rid("10001", 9), "DUPLICATE", None, "x", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
}

async fn identity_update_replaces_record_and_gallery_rows(s: &dyn Store) {
    let r = claimed_packet(s, "u1", 1, 100).await;
    let new = NewIdentity {
        rid: r.clone(),
        uin: "2345678901".into(),
        uin_hash: h("2345678901"),
        key_id: "k1".into(),
        wrapped_key: vec![1; 72],
        ciphertext: vec![2; 50],
        blocking_key: "b1".into(),
        templates: vec![(2, vec![7; 20]), (7, vec![8; 20])],
        at: 110,
    };
    s.store_identity(new.clone()).await.unwrap();
    let first = s.gallery_since(0, 100).await.unwrap();
    // Record only: the gallery rows stay.
    let upd = NewIdentity {
        key_id: "k2".into(),
        ciphertext: vec![3; 60],
        blocking_key: "b2".into(),
        templates: Vec::new(),
        ..new.clone()
    };
    assert!(s.update_identity(upd.clone()).await.unwrap());
    let rec = s
        .identity(IdentityLookup::UinHash(h("2345678901")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (rec.rid.clone(), rec.key_id.clone(), rec.ciphertext.clone()),
        (r.clone(), "k2".into(), vec![3; 60])
    );
    assert_eq!(s.persons_by_blocking_key("b2").await.unwrap(), ["2345678901"]);
    assert!(s.persons_by_blocking_key("b1").await.unwrap().is_empty());
    assert_eq!(s.gallery_since(0, 100).await.unwrap(), first);
    // With templates: all of the person's rows replaced, with new sequence numbers.
    let with = NewIdentity {
        templates: vec![(2, vec![9; 20]), (7, vec![9; 21])],
        ..upd
    };
    assert!(s.update_identity(with.clone()).await.unwrap());
    assert!(s.update_identity(with).await.unwrap(), "idempotent");
    let g = s.gallery_since(0, 100).await.unwrap();
    assert_eq!(g.len(), 2);
    assert!(g.iter().all(|row| row.seq > first[1].seq));
    assert_eq!(g[1].template, vec![9; 21]);
    // Unknown identity.
    assert!(
        !s.update_identity(NewIdentity {
            uin_hash: "nope".into(),
            ..new
        })
        .await
        .unwrap()
    );
}

async fn identity_gallery_and_credential_are_idempotent(s: &dyn Store) {
    let r = claimed_packet(s, "i1", 1, 100).await;
    let new = NewIdentity {
        rid: r.clone(),
        uin: "2345678901".into(),
        uin_hash: h("2345678901"),
        key_id: "k1".into(),
        wrapped_key: vec![1; 72],
        ciphertext: vec![2; 50],
        blocking_key: "b1".into(),
        templates: vec![(2, vec![7; 20]), (7, vec![8; 20])],
        at: 110,
    };
    s.store_identity(new.clone()).await.unwrap();
    s.store_identity(NewIdentity {
        ciphertext: vec![3; 50],
        templates: vec![(2, vec![9; 20])],
        ..new.clone()
    })
    .await
    .unwrap();
    let rec = s
        .identity(IdentityLookup::UinHash(h("2345678901")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (rec.rid.clone(), rec.ciphertext.clone()),
        (r.clone(), vec![2; 50]),
        "first write kept"
    );
    assert_eq!(
        s.identity(IdentityLookup::Rid(r.clone())).await.unwrap(),
        Some(rec)
    );
    assert!(
        s.identity(IdentityLookup::UinHash("nope".into()))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.persons_by_blocking_key("b1").await.unwrap(), ["2345678901"]);
    assert!(s.persons_by_blocking_key("b2").await.unwrap().is_empty());
    let g = s.gallery_since(0, 100).await.unwrap();
    assert_eq!(g.len(), 2);
    assert_eq!((g[0].position, g[0].template.clone()), (2, vec![7; 20]));
    assert!(s.gallery_since(g[1].seq, 100).await.unwrap().is_empty(), "cursor");
    assert_eq!(s.gallery_since(0, 1).await.unwrap().len(), 1, "limit");
    assert!(s.credential(&r).await.unwrap().is_none());
    s.store_credential(&r, "2345678901", "{\"vc\":1}", 120)
        .await
        .unwrap();
    s.store_credential(&r, "2345678901", "{\"vc\":2}", 130)
        .await
        .unwrap();
    assert_eq!(
        s.credential(&r).await.unwrap(),
        Some(("2345678901".into(), "{\"vc\":1}".into()))
    );
    let p = s.packet(&r).await.unwrap().unwrap();
    assert_eq!((p.status, p.reason), (PacketStatus::Processed, None));
    assert!(s.claim_job("w", 10_000, 60).await.unwrap().is_none(), "job done");
}

async fn outbox_claims_with_lease_and_marks_sent(s: &dyn Store) {
    let n = |seq: u32, kind: &str| NewNotification {
        rid: rid("10001", seq),
        kind: kind.into(),
        payload: vec![u8::try_from(seq).unwrap(); 100],
        at: 10,
    };
    s.enqueue_notification(n(1, "UIN_ISSUED")).await.unwrap();
    s.enqueue_notification(n(1, "UIN_ISSUED")).await.unwrap();
    s.enqueue_notification(n(2, "REJECTED")).await.unwrap();
    let a = s.claim_notification("w", 100, 60).await.unwrap().unwrap();
    assert_eq!(
        (a.rid.clone(), a.kind.as_str(), a.attempts),
        (rid("10001", 1), "UIN_ISSUED", 1)
    );
    let b = s.claim_notification("w", 100, 60).await.unwrap().unwrap();
    assert_eq!(b.rid, rid("10001", 2));
    assert!(
        s.claim_notification("w", 120, 60).await.unwrap().is_none(),
        "both leased; duplicates ignored"
    );
    s.notification_sent(a.id, 130).await.unwrap();
    let again = s.claim_notification("w", 161, 60).await.unwrap().unwrap();
    assert_eq!(
        (again.id, again.attempts),
        (b.id, 2),
        "unsent one comes back after its lease"
    );
    s.notification_sent(b.id, 170).await.unwrap();
    assert!(s.claim_notification("w", 10_000, 60).await.unwrap().is_none());
}

async fn rewrap_touches_only_other_keys(s: &dyn Store) {
    for (i, k) in [(1u32, "old"), (2, "new"), (3, "old")] {
        let r = claimed_packet(s, &format!("r{i}"), i, 100).await;
        s.store_identity(NewIdentity {
            rid: r,
            uin: format!("234567890{i}"),
            uin_hash: h(&format!("234567890{i}")),
            key_id: k.into(),
            wrapped_key: vec![1; 72],
            ciphertext: vec![2; 10],
            blocking_key: String::new(),
            templates: vec![],
            at: 100,
        })
        .await
        .unwrap();
    }
    let todo = s.identity_keys_to_rewrap("new", 10).await.unwrap();
    let mut old = [h("2345678901"), h("2345678903")];
    old.sort();
    assert_eq!(todo.iter().map(|t| t.0.clone()).collect::<Vec<_>>(), old);
    let h1 = h("2345678901");
    assert!(
        s.rewrap_identity_key(&h1, "old", "new", vec![5; 72])
            .await
            .unwrap()
    );
    assert!(
        !s.rewrap_identity_key(&h1, "old", "new", vec![6; 72])
            .await
            .unwrap(),
        "compare and set"
    );
    let rec = s
        .identity(IdentityLookup::UinHash(h("2345678901")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rec.key_id.as_str(), rec.wrapped_key), ("new", vec![5; 72]));
    assert_eq!(s.identity_keys_to_rewrap("new", 10).await.unwrap().len(), 1);
}

fn change(kind: SyncKind, scope: &str, key: &str, body: Option<serde_json::Value>) -> SyncChange {
    SyncChange {
        kind,
        scope: scope.into(),
        key: key.into(),
        body,
    }
}

async fn sync_batches_apply_together_and_current_items_span_scopes(s: &dyn Store) {
    let v = s
        .put_sync_items(vec![
            change(
                SyncKind::Operators,
                "10001",
                "op1",
                Some(serde_json::json!({"id": "op1"})),
            ),
            change(
                SyncKind::Operators,
                "10002",
                "op2",
                Some(serde_json::json!({"id": "op2"})),
            ),
            change(SyncKind::Operators, "10002", "ghost", None),
            change(
                SyncKind::Certificates,
                "",
                "ca",
                Some(serde_json::json!({"pem": "x"})),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(v.len(), 4);
    assert!(
        v[0].unwrap() < v[1].unwrap() && v[1].unwrap() < v[3].unwrap(),
        "{v:?}"
    );
    assert_eq!(v[2], None, "deleting an item that never existed changes nothing");
    // The same batch again changes nothing; a deletion and a change in one batch.
    let again = s
        .put_sync_items(vec![
            change(
                SyncKind::Operators,
                "10001",
                "op1",
                Some(serde_json::json!({"id": "op1"})),
            ),
            change(SyncKind::Operators, "10002", "op2", None),
        ])
        .await
        .unwrap();
    assert_eq!(again[0], None);
    assert!(again[1].unwrap() > v[3].unwrap());
    let ops = s.current_sync_items(SyncKind::Operators).await.unwrap();
    assert_eq!(ops.len(), 1, "deleted items are not current: {ops:?}");
    assert_eq!(
        (ops[0].scope.as_str(), ops[0].item.key.as_str()),
        ("10001", "op1")
    );
    assert_eq!(ops[0].item.body["id"], "op1");
    s.put_sync_item(
        SyncKind::Operators,
        "10003",
        "op3",
        Some(serde_json::json!({"id": "op3"})),
    )
    .await
    .unwrap();
    let scopes: Vec<String> = s
        .current_sync_items(SyncKind::Operators)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.scope)
        .collect();
    assert_eq!(scopes, ["10001", "10003"]);
    assert_eq!(
        s.current_sync_items(SyncKind::Certificates).await.unwrap().len(),
        1
    );
    // Stations still see the deletion through the cursor.
    let page = s.sync_items(SyncKind::Operators, "10002", 0, 10).await.unwrap();
    assert!(page.len() == 1 && page[0].deleted, "{page:?}");
}

async fn packet_history_lists_and_requeue_of_quarantined_packets(s: &dyn Store) {
    let a = claimed_packet(s, "h1", 1, 100).await;
    let b = claimed_packet(s, "h2", 2, 101).await;
    s.finish_job(
        &a,
        PacketStatus::Quarantined,
        Some("decrypt:no_packet_key".into()),
        110,
    )
    .await
    .unwrap();
    s.finish_job(&b, PacketStatus::Processed, None, 111)
        .await
        .unwrap();
    let q = s
        .packets_by_status(Some(PacketStatus::Quarantined), 10)
        .await
        .unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(
        (q[0].rid.clone(), q[0].reason.as_deref()),
        (a.clone(), Some("decrypt:no_packet_key"))
    );
    let all = s.packets_by_status(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|p| p.rid.clone()).collect::<Vec<_>>(),
        [a.clone(), b.clone()]
    );
    assert_eq!(s.packets_by_status(None, 1).await.unwrap().len(), 1, "limit");

    // Only a packet with the expected status is requeued.
    assert!(
        !s.requeue_packet(&b, PacketStatus::Quarantined, 120)
            .await
            .unwrap()
    );
    assert_eq!(
        s.packet(&b).await.unwrap().unwrap().status,
        PacketStatus::Processed
    );
    assert!(
        s.requeue_packet(&a, PacketStatus::Quarantined, 120)
            .await
            .unwrap()
    );
    let p = s.packet(&a).await.unwrap().unwrap();
    assert_eq!((p.status, p.reason), (PacketStatus::Received, None));
    assert!(
        !s.requeue_packet(&a, PacketStatus::Quarantined, 121)
            .await
            .unwrap(),
        "once"
    );
    assert_eq!(
        s.claim_job("w", 130, 60).await.unwrap(),
        Some(a.clone()),
        "back in the queue"
    );
    let unknown = rid("10001", 99);
    assert!(matches!(
        s.requeue_packet(&unknown, PacketStatus::Quarantined, 130).await,
        Err(StoreError::NotFound { .. })
    ));

    let ev = |status, reason: Option<&str>, at| PacketEvent {
        status,
        reason: reason.map(str::to_owned),
        at,
    };
    assert_eq!(
        s.packet_history(&a).await.unwrap(),
        [
            ev(PacketStatus::Received, None, 100),
            ev(PacketStatus::Processing, None, 100),
            ev(PacketStatus::Quarantined, Some("decrypt:no_packet_key"), 110),
            ev(PacketStatus::Received, None, 120),
            ev(PacketStatus::Processing, None, 130),
        ]
    );
    assert!(s.packet_history(&unknown).await.unwrap().is_empty());
}

async fn outbox_retry_waits_until_the_back_off_ends(s: &dyn Store) {
    s.enqueue_notification(NewNotification {
        rid: rid("10001", 7),
        kind: "UIN_ISSUED".into(),
        payload: vec![1; 10],
        at: 10,
    })
    .await
    .unwrap();
    let a = s.claim_notification("w", 100, 60).await.unwrap().unwrap();
    // The delivery failed: back off for 10 minutes, past the 60 s lease.
    s.notification_retry_at(a.id, 700).await.unwrap();
    assert!(s.claim_notification("w", 200, 60).await.unwrap().is_none());
    assert!(s.claim_notification("w", 699, 60).await.unwrap().is_none());
    let again = s.claim_notification("w", 700, 60).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (a.id, 2));
    s.notification_sent(a.id, 710).await.unwrap();
    s.notification_retry_at(a.id, 0).await.unwrap();
    assert!(
        s.claim_notification("w", 10_000, 60).await.unwrap().is_none(),
        "a sent notification stays sent"
    );
}

async fn status_history_of_machines_operators_and_centers(s: &dyn Store) {
    use tessera_server::store::status_kind as k;
    // Machines: every status change, with its time (trigger).
    let (m, _) = s
        .enrol_machine(NewMachine {
            center_id: "10001".parse().unwrap(),
            name: "m".into(),
            public_key: [3; 32],
            at: 100,
        })
        .await
        .unwrap();
    let id = m.machine_id.clone();
    s.set_machine_status(&id, MachineStatus::Active, None, 200)
        .await
        .unwrap();
    s.set_machine_status(&id, MachineStatus::Suspended, None, 300)
        .await
        .unwrap();
    s.set_machine_status(&id, MachineStatus::Suspended, Some("again".into()), 350)
        .await
        .unwrap();
    s.set_machine_status(&id, MachineStatus::Active, None, 400)
        .await
        .unwrap();
    let at = |t: i64| {
        let id = id.clone();
        async move { s.status_at(k::MACHINE, id.as_str(), t).await.unwrap() }
    };
    assert_eq!(at(99).await, None, "unknown before the request");
    assert_eq!(at(150).await.as_deref(), Some("PENDING"));
    assert_eq!(at(299).await.as_deref(), Some("ACTIVE"));
    assert_eq!(at(360).await.as_deref(), Some("SUSPENDED"));
    assert_eq!(at(400).await.as_deref(), Some("ACTIVE"));
    // Operators: from their sync item (revoked = inactive); centers from the master data.
    let op = |active: bool| serde_json::json!({"id": "op1", "active": active});
    s.put_sync_item(SyncKind::Operators, "10001", "op1", Some(op(true)))
        .await
        .unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    assert_eq!(
        s.status_at(k::OPERATOR, "op1", 0).await.unwrap(),
        None,
        "new: unknown before"
    );
    assert_eq!(
        s.status_at(k::OPERATOR, "op1", now() + 5)
            .await
            .unwrap()
            .as_deref(),
        Some(k::ACTIVE)
    );
    s.put_sync_item(SyncKind::Operators, "10001", "op1", None)
        .await
        .unwrap();
    assert_eq!(
        s.status_at(k::OPERATOR, "op1", now() + 5)
            .await
            .unwrap()
            .as_deref(),
        Some(k::INACTIVE)
    );
    let centers = |a: bool| serde_json::json!({"centers": [{"id": "10001", "active": a}, {"id": "10002"}]});
    s.put_sync_item(SyncKind::MasterData, "", "centers", Some(centers(true)))
        .await
        .unwrap();
    s.put_sync_item(SyncKind::MasterData, "", "centers", Some(centers(false)))
        .await
        .unwrap();
    let later = now() + 5;
    assert_eq!(
        s.status_at(k::CENTER, "10001", later).await.unwrap().as_deref(),
        Some(k::INACTIVE)
    );
    assert_eq!(
        s.status_at(k::CENTER, "10002", later).await.unwrap().as_deref(),
        Some(k::ACTIVE)
    );
    // A flag joins the packet's history without changing the packet.
    let r = claimed_packet(s, "f1", 1, 100).await;
    s.add_packet_flag(&r, "flag:clock_ahead", 120).await.unwrap();
    let h = s.packet_history(&r).await.unwrap();
    assert_eq!(h.last().unwrap().reason.as_deref(), Some("flag:clock_ahead"));
    assert_eq!(s.packet(&r).await.unwrap().unwrap().reason, None);
}
