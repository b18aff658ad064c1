//! Validation at creation time: center, machine and operators active when the packet was created (status
//! history), working days, and clock skew (flagged, never a reason to drop). Both backends.

use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use tessera_packet::ids::Rid;
use tessera_packet::manifest::Decision;
use tessera_packet::types::BioAttribute;
use tessera_packet::wire::{MachineStatus, PacketStatus, SyncKind};
use tessera_server::settings::WorkingDay;

use crate::common::{Backend, TestServer, sample_country};
use crate::flow::{self, CAPTURED, Resident};
use crate::pipeline::{Desk, final_status, upload};

/// Seals and uploads a packet of `r` created at `created`; returns its RID.
async fn submit_at(d: &Desk, seq: u32, r: &Resident, created: DateTime<Utc>) -> Rid {
    let fingers: Vec<BioAttribute> = CAPTURED.iter().map(|(a, _)| *a).collect();
    let mut c = flow::content(&d.s.machine_id, seq, r, &fingers);
    c.created_at = created;
    c.rid = Rid::new(&c.meta.center_id, &d.s.machine_id, seq, created).unwrap();
    for b in &mut c.biometrics {
        b.captured_at = created;
    }
    let data = d.seal(&c, Decision::Approved);
    upload(&d.s, &c.rid, &data).await;
    c.rid
}

async fn outcome(t: &TestServer, d: &Desk, rid: &Rid) -> (PacketStatus, Option<String>, Vec<String>) {
    let st = final_status(&d.s, rid).await;
    let history = t
        .server
        .as_ref()
        .unwrap()
        .state
        .store
        .packet_history(rid)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.reason.filter(|r| r.starts_with("flag:")))
        .collect();
    (st.status, st.reason, history)
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
}

fn operator(id: &str, active: bool) -> serde_json::Value {
    serde_json::json!({"id": id, "name": id, "roles": ["supervisor"], "centerId": "10001", "active": active,
        "passwordHash": "unused"})
}

async fn statuses_flags_and_skew(backend: Backend) {
    let Some(t) = TestServer::start(backend, |st| st.country_config = Some(sample_country())).await else {
        return;
    };
    let state = t.server.as_ref().unwrap().state.clone();
    let store = state.store.clone();
    let d = Desk::new(t.active_station("10001").await).await;
    let m = d.s.machine_id.clone();

    // The machine: active from 19 November, suspended on 20 November 09:30-10:00 (admin changes with their
    // times), active again since.
    for (status, at) in [
        (MachineStatus::Pending, utc(2026, 11, 19, 8, 0, 0)),
        (MachineStatus::Active, utc(2026, 11, 19, 12, 0, 0)),
        (MachineStatus::Suspended, utc(2026, 11, 20, 9, 30, 0)),
        (MachineStatus::Active, utc(2026, 11, 20, 10, 0, 0)),
    ] {
        store
            .set_machine_status(&m, status, None, at.timestamp())
            .await
            .unwrap();
    }
    // Friday 20 November 09:00: created before the suspension, accepted (the station's clock is behind the
    // machine's enrolment of today: flagged).
    let a = submit_at(
        &d,
        1,
        &Resident::new(11, "Amadou Diop"),
        utc(2026, 11, 20, 9, 0, 0),
    )
    .await;
    let (status, reason, flags) = outcome(&t, &d, &a).await;
    assert_eq!((status, reason), (PacketStatus::Processed, None));
    assert_eq!(flags, ["flag:clock_behind"]);
    // Created during the suspension: rejected, whenever uploaded.
    let b = submit_at(
        &d,
        2,
        &Resident::new(12, "Binta Fall"),
        utc(2026, 11, 20, 9, 45, 0),
    )
    .await;
    assert_eq!(
        outcome(&t, &d, &b).await.1.as_deref(),
        Some("validate:machine_inactive_at_creation")
    );

    // Sunday 22 November: the center is closed on Sundays; the default setting flags and processes.
    let c = submit_at(
        &d,
        3,
        &Resident::new(13, "Coumba Sarr"),
        utc(2026, 11, 22, 10, 0, 0),
    )
    .await;
    let (status, _, flags) = outcome(&t, &d, &c).await;
    assert_eq!(status, PacketStatus::Processed);
    assert!(flags.contains(&"flag:not_working_day".to_owned()), "{flags:?}");

    // A station clock an hour ahead: flagged, processed.
    let ahead = state.clock.now() + chrono::Duration::hours(1);
    let e = submit_at(&d, 4, &Resident::new(14, "Demba Ka"), ahead).await;
    let (status, reason, flags) = outcome(&t, &d, &e).await;
    assert_eq!((status, reason), (PacketStatus::Processed, None));
    assert!(flags.contains(&"flag:clock_ahead".to_owned()), "{flags:?}");

    // The supervisor: published (active), a packet created, then deactivated: that packet is accepted; one
    // created after the deactivation is rejected. History times are the database's (second resolution).
    store
        .put_sync_item(
            SyncKind::Operators,
            "10001",
            "supervisor01",
            Some(operator("supervisor01", true)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let before = state.clock.now();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    store
        .put_sync_item(
            SyncKind::Operators,
            "10001",
            "supervisor01",
            Some(operator("supervisor01", false)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let after = state.clock.now();
    let f = submit_at(&d, 5, &Resident::new(15, "Fanta Cisse"), before).await;
    assert_eq!(outcome(&t, &d, &f).await.0, PacketStatus::Processed);
    let g = submit_at(&d, 6, &Resident::new(16, "Gora Mbaye"), after).await;
    assert_eq!(
        outcome(&t, &d, &g).await.1.as_deref(),
        Some("validate:operator_inactive_at_creation:supervisor")
    );
    t.stop().await;
}

async fn working_day_reject(backend: Backend) {
    let Some(t) = TestServer::start(backend, |st| {
        st.country_config = Some(sample_country());
        st.validation.working_day = WorkingDay::Reject;
    })
    .await
    else {
        return;
    };
    let d = Desk::new(t.active_station("10001").await).await;
    // Christmas (a public holiday of the whole country, TSR), a Friday.
    let a = submit_at(&d, 1, &Resident::new(21, "Hawa Ly"), utc(2026, 12, 25, 10, 0, 0)).await;
    assert_eq!(
        outcome(&t, &d, &a).await.1.as_deref(),
        Some("validate:not_working_day")
    );
    // 24 December: the center's own exceptional holiday (a Thursday).
    let b = submit_at(
        &d,
        2,
        &Resident::new(22, "Ibou Ndao"),
        utc(2026, 12, 24, 10, 0, 0),
    )
    .await;
    assert_eq!(
        outcome(&t, &d, &b).await.1.as_deref(),
        Some("validate:not_working_day")
    );
    // A Saturday: center 10001 has no Saturday hours.
    let c = submit_at(
        &d,
        3,
        &Resident::new(23, "Jeanne Faye"),
        utc(2026, 11, 21, 10, 0, 0),
    )
    .await;
    assert_eq!(
        outcome(&t, &d, &c).await.1.as_deref(),
        Some("validate:not_working_day")
    );
    // A working Friday is processed.
    let e = submit_at(
        &d,
        4,
        &Resident::new(24, "Khady Gueye"),
        utc(2026, 11, 20, 10, 0, 0),
    )
    .await;
    assert_eq!(outcome(&t, &d, &e).await.0, PacketStatus::Processed);
    // A center deactivated in the master data: packets created since are rejected.
    let store = t.server.as_ref().unwrap().state.store.clone();
    let centers = store
        .current_sync_items(SyncKind::MasterData)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.item.key == "centers")
        .unwrap()
        .item
        .body;
    let mut off = centers.clone();
    off["centers"][0]["active"] = serde_json::json!(false);
    assert_eq!(off["centers"][0]["id"], "10001");
    store
        .put_sync_item(SyncKind::MasterData, "", "centers", Some(off))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let now = t.server.as_ref().unwrap().state.clock.now();
    let g = submit_at(&d, 5, &Resident::new(25, "Lamine Seck"), now).await;
    assert_eq!(
        outcome(&t, &d, &g).await.1.as_deref(),
        Some("validate:center_inactive_at_creation")
    );
    t.stop().await;
}

#[tokio::test]
async fn creation_time_statuses_flags_and_skew_sqlite() {
    statuses_flags_and_skew(Backend::Sqlite).await;
}

#[tokio::test]
async fn creation_time_statuses_flags_and_skew_postgres() {
    statuses_flags_and_skew(Backend::Postgres).await;
}

#[tokio::test]
async fn creation_time_working_day_reject_sqlite() {
    working_day_reject(Backend::Sqlite).await;
}

#[tokio::test]
async fn creation_time_working_day_reject_postgres() {
    working_day_reject(Backend::Postgres).await;
}
