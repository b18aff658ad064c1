//! LOST packets on both backends: a resident who lost their UIN registers again; the 1:N search through
//! the server's gallery finds the identity, the station sees only `PROCESSED` / `lost:found` and the
//! resident gets the UIN through the outbox; a LOST packet of somebody never enrolled is rejected
//! `lost:not_found`; one whose fingers match several identities is held (`lost:ambiguous`) until an
//! adjudicator decides which UIN it is (`FOUND`) or none (`NOT_FOUND`).

use tessera_packet::manifest::Decision;
use tessera_packet::types::{BioAttribute, PacketType};
use tessera_packet::wire::PacketStatus;

use serde_json::json;
use tessera_server::store::AdjudicationCase;

use crate::common::{Backend, TestServer, error_code, outbox_notification, sample_country};
use crate::flow::{self, CAPTURED, Resident};
use crate::pipeline::{Desk, final_status, upload};

async fn lost_flow(backend: Backend) {
    let Some(t) = TestServer::start(backend, |st| st.country_config = Some(sample_country())).await else {
        return;
    };
    let state = t.server.as_ref().unwrap().state.clone();
    let d = Desk::new(t.active_station("10001").await).await;
    let enrolled = Resident::new(71, "Kofi Mensah");
    let a = d.submit(1, &enrolled).await;
    assert_eq!(final_status(&d.s, &a).await.status, PacketStatus::Processed);
    let uin = state.store.credential(&a).await.unwrap().unwrap().0;

    let fingers: Vec<BioAttribute> = CAPTURED.iter().map(|(a, _)| *a).collect();
    let lost_packet = |seq: u32, r: &Resident| {
        let mut c = flow::content(&d.s.machine_id, seq, r, &fingers);
        c.packet_type = PacketType::Lost;
        let data = d.seal(&c, Decision::Approved);
        (c.rid, data)
    };

    // The same resident, another capture of the same fingers, no UIN at hand.
    let mut again = enrolled.clone();
    again.impression = 1;
    let (b, data) = lost_packet(2, &again);
    upload(&d.s, &b, &data).await;
    let st = final_status(&d.s, &b).await;
    assert_eq!(
        (st.status, st.reason.as_deref()),
        (PacketStatus::Processed, Some("lost:found"))
    );
    assert!(
        state.store.credential(&b).await.unwrap().is_none(),
        "no new identity or credential"
    );

    // Somebody never enrolled.
    let (c, data) = lost_packet(3, &Resident::new(72, "Ama Owusu"));
    upload(&d.s, &c, &data).await;
    let st = final_status(&d.s, &c).await;
    assert_eq!(
        (st.status, st.reason.as_deref()),
        (PacketStatus::Rejected, Some("lost:not_found"))
    );

    // The resident learns the UIN through the outbox (the station never sees it).
    let found = outbox_notification(&state.settings.data_dir, &b.to_string(), "LOST_FOUND").await;
    assert_eq!(found.unwrap()["uin"], uin.as_str());
    t.stop().await;
}

#[tokio::test]
async fn lost_packet_finds_the_uin_sqlite() {
    lost_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn lost_packet_finds_the_uin_postgres() {
    lost_flow(Backend::Postgres).await;
}

async fn decide(
    t: &TestServer,
    rid: &tessera_packet::ids::Rid,
    body: serde_json::Value,
) -> reqwest::Response {
    t.http
        .post(t.url(&format!("/api/v1/admin/adjudication/{rid}/decision")))
        .bearer_auth(&t.adjudicator_token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn ambiguous_flow(backend: Backend) {
    let Some(t) = TestServer::start(backend, |st| st.country_config = Some(sample_country())).await else {
        return;
    };
    let state = t.server.as_ref().unwrap().state.clone();
    let d = Desk::new(t.active_station("10001").await).await;
    // Two identities with the same fingers (an adjudicator judged them different people).
    let first = Resident::new(91, "Abena Owusu");
    let a = d.submit(1, &first).await;
    assert_eq!(final_status(&d.s, &a).await.status, PacketStatus::Processed);
    let mut second = Resident::new(91, "Adwoa Owusu");
    second.impression = 1;
    second.dob = "1991-06-01".into();
    let b = d.submit(2, &second).await;
    assert_eq!(final_status(&d.s, &b).await.status, PacketStatus::OnHold);
    assert_eq!(
        decide(&t, &b, json!({"decision": "NOT_DUPLICATE"}))
            .await
            .status(),
        200
    );
    assert_eq!(final_status(&d.s, &b).await.status, PacketStatus::Processed);
    let uin_a = state.store.credential(&a).await.unwrap().unwrap().0;
    let uin_b = state.store.credential(&b).await.unwrap().unwrap().0;

    let fingers: Vec<BioAttribute> = CAPTURED.iter().map(|(a, _)| *a).collect();
    let lost_packet = |seq: u32, impression: u32| {
        let mut r = first.clone();
        r.impression = impression;
        let mut c = flow::content(&d.s.machine_id, seq, &r, &fingers);
        c.packet_type = PacketType::Lost;
        let data = d.seal(&c, Decision::Approved);
        (c.rid, data)
    };
    let (c, data) = lost_packet(3, 2);
    upload(&d.s, &c, &data).await;
    let st = final_status(&d.s, &c).await;
    assert_eq!(
        (st.status, st.reason.as_deref()),
        (PacketStatus::OnHold, Some("lost:ambiguous"))
    );
    let k: AdjudicationCase = t
        .http
        .get(t.url(&format!("/api/v1/admin/adjudication/{c}")))
        .bearer_auth(&t.adjudicator_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut uins: Vec<&str> = k.candidates.iter().map(|c| c.uin.as_str()).collect();
    uins.sort_unstable();
    let mut expected = [uin_a.as_str(), uin_b.as_str()];
    expected.sort_unstable();
    assert_eq!(uins, expected);

    // NEW decisions do not apply; the UIN must be a candidate; nothing is decided by a refusal.
    for (body, code) in [
        (
            json!({"decision": "DUPLICATE", "duplicate_of": uin_a}),
            "malformed_body",
        ),
        (json!({"decision": "NOT_DUPLICATE"}), "invalid_decision"),
        (json!({"decision": "FOUND"}), "malformed_body"),
        (
            json!({"decision": "FOUND", "uin": "2999999999"}),
            "not_a_candidate",
        ),
        (json!({"decision": "NOT_FOUND", "uin": uin_a}), "malformed_body"),
        (
            json!({"decision": "FOUND", "uin": uin_a, "extra": 1}),
            "malformed_body",
        ),
    ] {
        let r = decide(&t, &c, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(error_code(r).await, code, "{body}");
    }
    let r = decide(&t, &a, json!({"decision": "FOUND", "uin": uin_a})).await;
    assert_eq!(error_code(r).await, "not_found", "a NEW packet without a case");

    let r = decide(&t, &c, json!({"decision": "FOUND", "uin": uin_a})).await;
    assert_eq!(r.status(), 200);
    let decided: AdjudicationCase = r.json().await.unwrap();
    assert_eq!(
        (decided.status.as_str(), decided.duplicate_of.as_deref()),
        ("FOUND", Some(uin_a.as_str()))
    );
    let st = final_status(&d.s, &c).await;
    assert_eq!(
        (st.status, st.reason.as_deref()),
        (PacketStatus::Processed, Some("lost:found"))
    );
    let found = outbox_notification(&state.settings.data_dir, &c.to_string(), "LOST_FOUND").await;
    assert_eq!(found.unwrap()["uin"], uin_a.as_str());
    assert!(
        state.store.credential(&c).await.unwrap().is_none(),
        "no new identity"
    );
    let r = decide(&t, &c, json!({"decision": "NOT_FOUND"})).await;
    assert_eq!(error_code(r).await, "already_decided");

    // None of them: rejected, the resident told.
    let (e, data) = lost_packet(4, 3);
    upload(&d.s, &e, &data).await;
    assert_eq!(
        final_status(&d.s, &e).await.reason.as_deref(),
        Some("lost:ambiguous")
    );
    assert_eq!(
        decide(&t, &e, json!({"decision": "NOT_FOUND"})).await.status(),
        200
    );
    let st = final_status(&d.s, &e).await;
    assert_eq!(
        (st.status, st.reason.as_deref()),
        (PacketStatus::Rejected, Some("lost:not_found"))
    );
    assert!(
        outbox_notification(&state.settings.data_dir, &e.to_string(), "LOST_NOT_FOUND")
            .await
            .is_some()
    );
    let listed: Vec<AdjudicationCase> = t
        .http
        .get(t.url("/api/v1/admin/adjudication?status=NOT_FOUND"))
        .bearer_auth(&t.adjudicator_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].rid, e);
    // The LOST cases (candidates, FOUND with its UIN) are in the database without a UIN in clear.
    let (backend, target) = t.scan_target();
    crate::common::assert_no_uin_in_clear(backend, target, &[uin_a.clone(), uin_b.clone()]).await;
    t.stop().await;
}

#[tokio::test]
async fn ambiguous_lost_packet_is_decided_by_an_adjudicator_sqlite() {
    ambiguous_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn ambiguous_lost_packet_is_decided_by_an_adjudicator_postgres() {
    ambiguous_flow(Backend::Postgres).await;
}
