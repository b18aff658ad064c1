//! UPDATE packets on both backends: the fingers are verified 1:1 against the identity named in the packet;
//! a match applies the changed fields to the ID-repository record and issues a new credential under the
//! UPDATE's RID; other fingers are rejected `update:biometric_mismatch` and change nothing.

use tessera_packet::manifest::Decision;
use tessera_packet::types::{BioAttribute, PacketType};
use tessera_packet::wire::PacketStatus;

use crate::common::{Backend, TestServer, outbox_notification, sample_country};
use crate::flow::{self, CAPTURED, Resident};
use crate::pipeline::{Desk, final_status, upload};

async fn update_flow(backend: Backend) {
    let Some(t) = TestServer::start(backend, |st| st.country_config = Some(sample_country())).await else {
        return;
    };
    let state = t.server.as_ref().unwrap().state.clone();
    let d = Desk::new(t.active_station("10001").await).await;
    let a = d.submit(1, &Resident::new(81, "Yaw Boateng")).await;
    assert_eq!(final_status(&d.s, &a).await.status, PacketStatus::Processed);
    let uin = state.store.credential(&a).await.unwrap().unwrap().0;

    let fingers: Vec<BioAttribute> = CAPTURED.iter().map(|(a, _)| *a).collect();
    let update_packet = |seq: u32, r: &Resident, groups: &[&str]| {
        let mut c = flow::content(&d.s.machine_id, seq, r, &fingers);
        c.packet_type = PacketType::Update;
        c.meta.uin = Some(uin.parse().unwrap());
        c.meta.changed_groups = groups.iter().map(|g| (*g).to_owned()).collect();
        let data = d.seal(&c, Decision::Approved);
        (c.rid, data)
    };

    // Somebody else's fingers: refused, the record unchanged.
    let (b, data) = update_packet(2, &Resident::new(82, "Yaw Boateng Impostor"), &["FullName"]);
    upload(&d.s, &b, &data).await;
    let st = final_status(&d.s, &b).await;
    assert_eq!(
        (st.status, st.reason.as_deref()),
        (PacketStatus::Rejected, Some("update:biometric_mismatch"))
    );
    let doc = tessera_server::pipeline::fetch_by_uin(&state, &uin)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.identity["fullName"][0]["value"], "Yaw Boateng");

    // The resident (another capture of the same fingers) changes name and fingers.
    let mut me = Resident::new(81, "Yaw Boateng Mensah");
    me.impression = 1;
    let (c, data) = update_packet(3, &me, &["FullName", "Biometrics"]);
    let before = state.store.gallery_since(0, 10_000).await.unwrap();
    upload(&d.s, &c, &data).await;
    let st = final_status(&d.s, &c).await;
    assert_eq!((st.status, st.reason), (PacketStatus::Processed, None));
    let doc = tessera_server::pipeline::fetch_by_uin(&state, &uin)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.identity["fullName"][0]["value"], "Yaw Boateng Mensah");
    assert_eq!(doc.rid, a.to_string(), "the record keeps the RID that created it");
    assert_eq!(doc.finger_templates.len(), 2);
    let after = state.store.gallery_since(0, 10_000).await.unwrap();
    let uin_hash = tessera_server::idrepo::uin_hash(&state.keys.uin_salt, &uin);
    let mine = |rows: &[tessera_server::store::GalleryRow]| -> Vec<i64> {
        rows.iter()
            .filter(|r| r.uin_hash == uin_hash)
            .map(|r| r.seq)
            .collect()
    };
    assert_eq!(mine(&after).len(), 2, "gallery rows replaced, not added");
    assert!(
        mine(&after).iter().all(|s| !mine(&before).contains(s)),
        "new sequence numbers"
    );
    let (cred_uin, body) = state.store.credential(&c).await.unwrap().unwrap();
    assert_eq!(cred_uin, uin);
    assert!(body.contains("Yaw Boateng Mensah"));
    assert!(state.credentials_dir.join(format!("{c}.json")).is_file());
    let issuer = state.keys.issuer.verifying_key();
    assert_eq!(
        tessera_server::credential::verify(&body, &issuer).unwrap().uin,
        uin
    );

    // The resident is told.
    let told = outbox_notification(&state.settings.data_dir, &c.to_string(), "UPDATED").await;
    assert_eq!(told.unwrap()["uin"], uin.as_str());
    t.stop().await;
}

#[tokio::test]
async fn update_packet_verifies_fingers_and_applies_sqlite() {
    update_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn update_packet_verifies_fingers_and_applies_postgres() {
    update_flow(Backend::Postgres).await;
}
