//! LOST packets on both backends: a resident who lost their UIN registers again; the 1:N search through
//! the server's gallery finds the identity, the station sees only `PROCESSED` / `lost:found` and the
//! resident gets the UIN through the outbox; a LOST packet of somebody never enrolled is rejected
//! `lost:not_found`.

use tessera_packet::manifest::Decision;
use tessera_packet::types::{BioAttribute, PacketType};
use tessera_packet::wire::PacketStatus;

use crate::common::{Backend, TestServer, outbox_notification, sample_country};
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
        let data = flow::seal_signed(
            &c,
            &d.keys,
            &d.s.key,
            &d.officer,
            &d.supervisor,
            Decision::Approved,
        );
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
