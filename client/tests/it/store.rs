//! The encrypted store: key slots, wrong keys, plain files, recovery, lockout, idle logout, center rule,
//! freeze rules, migrations and the audit chain.

use chrono::Duration;
use tessera_station::store::{SCHEMA_VERSION, StorePaths};
use tessera_station::{ErrorCode, FreezeReason, StationError};

use crate::common::*;

#[test]
fn init_then_offline_login_for_each_slot_holder() {
    let (env, st, id) = init_station();
    assert_eq!(id.center_id, "10001");
    assert_eq!(id.machine_id, "10077");
    assert!(id.fingerprint.starts_with("SHA256:"));
    assert_eq!(st.store().schema_version().unwrap(), SCHEMA_VERSION);
    drop(st);
    let mut st = login(&env, "officer1", OFFICER_PW).unwrap();
    assert_eq!(st.session().unwrap().operator.id, "officer1");
    assert_eq!(
        st.machine_identity(),
        id,
        "machine identity is stable across logins"
    );
    drop(st);
    let mut st = login(&env, "super1", SUPERVISOR_PW).unwrap();
    assert_eq!(st.session().unwrap().operator.id, "super1");
    // The database file is not readable as plain SQLite.
    let head = std::fs::read(StorePaths::new(env.home()).db).unwrap();
    assert_ne!(&head[..16], b"SQLite format 3\0");
}

#[test]
fn wrong_password_counts_down_then_locks_out_then_recovers() {
    let (env, st, _) = init_station();
    drop(st);
    for left in (1..=4).rev() {
        match login(&env, "officer1", "nope") {
            Err(StationError::WrongPassword { attempts_left, .. }) => assert_eq!(attempts_left, left),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        login(&env, "officer1", "nope"),
        Err(StationError::LockedOut { .. })
    ));
    // Even the right password is refused while locked out.
    let e = login(&env, "officer1", OFFICER_PW).unwrap_err();
    assert_eq!(e.code(), ErrorCode::LockedOut);
    assert!(e.to_string().contains("try again"), "{e}");
    env.clock.advance(Duration::minutes(3));
    login(&env, "officer1", OFFICER_PW).unwrap();
}

#[test]
fn missing_slot_wrong_center_and_inactive_operators_get_clear_errors() {
    let (env, mut st, _) = init_station();
    let e = st.add_operator_slot("far1", OTHER_PW).unwrap_err();
    assert!(matches!(e, StationError::WrongCenter { .. }), "{e}");
    assert!(e.to_string().contains("10002") && e.to_string().contains("10001"));
    let e = st.add_operator_slot("gone1", OTHER_PW).unwrap_err();
    assert!(matches!(e, StationError::OperatorInactive { .. }), "{e}");
    let e = st.add_operator_slot("nobody", OTHER_PW).unwrap_err();
    assert!(matches!(e, StationError::UnknownOperator { .. }), "{e}");
    let e = st.add_operator_slot("super1", "wrong").unwrap_err();
    assert!(matches!(e, StationError::WrongPassword { .. }), "{e}");
    drop(st);
    let e = login(&env, "far1", OTHER_PW).unwrap_err();
    assert!(matches!(e, StationError::NoSlot { .. }));
    assert!(
        e.to_string().contains("add-slot"),
        "the error says what to do: {e}"
    );
}

#[test]
fn plain_sqlite_file_and_foreign_slot_file_are_refused_with_advice() {
    let (env, st, _) = init_station();
    drop(st);
    let paths = StorePaths::new(env.home());
    // Slot file of another station: its key does not open this database.
    let (env2, st2, _) = init_station();
    drop(st2);
    std::fs::copy(StorePaths::new(env2.home()).slots, &paths.slots).unwrap();
    let e = login(&env, "officer1", OFFICER_PW).unwrap_err();
    assert!(matches!(e, StationError::WrongDatabaseKey { .. }), "{e}");
    assert!(e.to_string().contains("backup"));
    // A plain SQLite database in place of the store.
    std::fs::remove_file(&paths.db).unwrap();
    let c = rusqlite::Connection::open(&paths.db).unwrap();
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(c);
    let e = login(&env2, "officer1", OFFICER_PW)
        .map(|_| ())
        .and_then(|_| login(&env, "officer1", OFFICER_PW).map(|_| ()));
    let e = e.unwrap_err();
    assert!(matches!(e, StationError::PlainDatabase { .. }), "{e}");
    assert!(e.to_string().contains("unencrypted"));
    // A damaged slot file.
    std::fs::write(&paths.slots, b"{ not json").unwrap();
    let e = login(&env, "officer1", OFFICER_PW).unwrap_err();
    assert!(matches!(e, StationError::SlotFile { .. }), "{e}");
    assert!(e.to_string().contains("recovery key"));
}

#[test]
fn recovery_key_opens_the_store_and_a_wrong_one_does_not() {
    let (env, st, id) = init_station();
    drop(st);
    let st =
        tessera_station::station::Station::open_with_recovery(env.home(), &env.recovery, env.clock.clone())
            .unwrap();
    assert_eq!(st.machine_identity(), id);
    drop(st);
    let other = age::x25519::Identity::generate();
    let e = tessera_station::station::Station::open_with_recovery(env.home(), &other, env.clock.clone())
        .unwrap_err();
    assert!(matches!(e, StationError::WrongRecoveryKey { .. }), "{e}");
}

#[test]
fn idle_session_is_logged_out() {
    let (env, mut st, _) = init_station();
    env.clock.advance(Duration::seconds(899));
    st.session().unwrap();
    env.clock.advance(Duration::seconds(901));
    assert!(matches!(
        st.session(),
        Err(StationError::IdleLogout {
            idle_seconds: 900,
            ..
        })
    ));
    assert!(matches!(st.session(), Err(StationError::NotLoggedIn)));
}

#[test]
fn freeze_rules_stop_registration_with_the_reason() {
    let (env, mut st, _) = init_station();
    st.check_freeze().unwrap();
    env.clock.advance(Duration::days(6));
    match st.check_freeze() {
        Err(StationError::Frozen(FreezeReason::MasterDataStale { days: 6, limit: 5 })) => {}
        other => panic!("{other:?}"),
    }
    st.apply_master_data(&master_docs()).unwrap();
    st.check_freeze().unwrap();
    st.set_free_disk_probe(Box::new(|_| Some(10 * 1024 * 1024)));
    let e = st.check_freeze().unwrap_err();
    assert!(
        matches!(
            e,
            StationError::Frozen(FreezeReason::LowDisk {
                free_mb: 10,
                min_mb: 50
            })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("free disk space"));
}

#[test]
fn audit_chain_covers_logins_and_verifies() {
    let (env, st, _) = init_station();
    drop(st);
    let _ = login(&env, "officer1", "bad");
    let st = login(&env, "officer1", OFFICER_PW).unwrap();
    let n = tessera_station::audit::verify(st.store().conn()).unwrap();
    let entries = tessera_station::audit::list(st.store().conn(), 0, 100).unwrap();
    assert_eq!(n, i64::try_from(entries.len()).unwrap());
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["STATION_INIT", "SLOT_ADDED", "LOGIN"]);
}

#[test]
fn half_finished_init_is_replaced_and_a_finished_one_is_protected() {
    let env = new_env();
    // What a kill during init leaves behind: a partial database under the temporary name.
    std::fs::write(env.home().join("station.db.init"), b"garbage from a killed init").unwrap();
    std::fs::write(env.home().join("station.db.init-wal"), b"more garbage").unwrap();
    let (st, _) = init_in(&env, master_docs()).unwrap();
    drop(st);
    assert!(!env.home().join("station.db.init").exists());
    login(&env, "officer1", OFFICER_PW).unwrap();
    assert!(matches!(
        init_in(&env, master_docs()),
        Err(StationError::AlreadyInitialised { .. })
    ));
}

#[test]
fn operators_removed_from_the_synced_list_can_no_longer_log_in() {
    let (env, mut st, _) = init_station();
    let mut b = bundle();
    b.operators.retain(|o| o.id != "super1");
    b.version = "2".into();
    st.apply_operators(&b).unwrap();
    drop(st);
    let e = login(&env, "super1", SUPERVISOR_PW).unwrap_err();
    assert!(matches!(e, StationError::OperatorInactive { .. }), "{e}");
    let st = login(&env, "officer1", OFFICER_PW).unwrap();
    let actions: Vec<String> = tessera_station::audit::list(st.store().conn(), 0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"LOGIN_REFUSED".to_string()));
}

#[test]
fn an_older_store_is_migrated_on_open_and_a_newer_one_refused() {
    let (env, st, _) = init_station();
    // Make it look like a store written by the first release (schema 1).
    st.store()
        .conn()
        .execute_batch(
            "DROP TABLE packet_recipients; DROP TABLE uploads; DROP TABLE sync_items; DROP TABLE sync_cursors;
             DROP TABLE server_link; DROP TABLE operator_keys; DROP TABLE operator_fingers; DROP TABLE station_kit;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    drop(st);
    let st = login(&env, "officer1", OFFICER_PW).unwrap();
    assert_eq!(st.store().schema_version().unwrap(), SCHEMA_VERSION);
    let n: i64 = st
        .store()
        .conn()
        .query_row("SELECT count(*) FROM packet_recipients", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0, "the table is back (the keys must be synced again)");
    st.store()
        .conn()
        .execute_batch(&format!("PRAGMA user_version = {};", SCHEMA_VERSION + 1))
        .unwrap();
    drop(st);
    let e = login(&env, "officer1", OFFICER_PW).unwrap_err();
    assert!(matches!(e, StationError::StoreTooNew { .. }), "{e}");
    assert!(e.to_string().contains("update tessera-station"));
}
