//! The processing pipeline: sealed packets uploaded through the API are verified, opened and given a UIN, or
//! quarantined with a reason.

use std::io::Cursor;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tessera_packet::ids::Rid;
use tessera_packet::sample::{SampleSize, sample_content};
use tessera_packet::wire::{self, PacketStatus, PacketStatusResponse, SyncPage};

use crate::common::{Backend, Station, TestServer};

async fn recipients(s: &Station) -> Vec<age::x25519::Recipient> {
    let page: SyncPage = s.get("/api/v1/sync/packet-keys").await.json().await.unwrap();
    page.items
        .iter()
        .map(|i| i.body["recipient"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn sealed(
    s: &Station,
    seq: u32,
    recipients: &[age::x25519::Recipient],
    key: &ed25519_dalek::SigningKey,
) -> (Rid, Vec<u8>) {
    let mut c = sample_content(u64::from(seq), SampleSize::Small);
    let center = "10001".parse().unwrap();
    c.rid = Rid::new(&center, &s.machine_id, seq, c.created_at).unwrap();
    c.meta.center_id = center;
    c.meta.machine_id = s.machine_id.clone();
    let mut buf = Cursor::new(Vec::new());
    tessera_packet::seal(&c, recipients, key, &mut buf).unwrap();
    (c.rid, buf.into_inner())
}

async fn upload(s: &Station, rid: &Rid, data: &[u8]) {
    let sha = hex::encode(Sha256::digest(data));
    let r = s
        .send(
            "POST",
            "/api/v1/uploads",
            &[
                ("tus-resumable", "1.0.0".into()),
                ("upload-length", data.len().to_string()),
                ("upload-metadata", wire::upload_metadata(rid, &sha)),
            ],
            vec![],
        )
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = s
        .send(
            "PATCH",
            &location,
            &[
                ("tus-resumable", "1.0.0".into()),
                ("content-type", "application/offset+octet-stream".into()),
                ("upload-offset", "0".into()),
            ],
            data.to_vec(),
        )
        .await;
    assert_eq!(r.status(), 200);
}

async fn final_status(s: &Station, rid: &Rid) -> PacketStatusResponse {
    for _ in 0..100 {
        let st: PacketStatusResponse = s
            .get(&format!("/api/v1/packets/{rid}/status"))
            .await
            .json()
            .await
            .unwrap();
        if !matches!(st.status, PacketStatus::Received | PacketStatus::Processing) {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("packet {rid} was not processed in 10 s");
}

async fn pipeline_flow(backend: Backend) {
    let Some(t) = TestServer::start(backend, |_| {}).await else {
        return;
    };
    let s = t.active_station("10001").await;
    let keys = recipients(&s).await;
    let before = t
        .server
        .as_ref()
        .unwrap()
        .state
        .store
        .uins_available()
        .await
        .unwrap();

    let (good, data) = sealed(&s, 1, &keys, &s.key);
    upload(&s, &good, &data).await;
    let st = final_status(&s, &good).await;
    assert_eq!((st.status, st.reason), (PacketStatus::Processed, None));
    let store = &t.server.as_ref().unwrap().state.store;
    assert_eq!(
        store.uins_available().await.unwrap(),
        before - 1,
        "one UIN issued"
    );

    // Tampered after sealing (one byte in the middle of the encrypted sections): quarantined, not dropped.
    let (bad, mut data) = sealed(&s, 2, &keys, &s.key);
    let mid = data.len() / 2;
    data[mid] ^= 0x01;
    upload(&s, &bad, &data).await;
    let st = final_status(&s, &bad).await;
    assert_eq!(st.status, PacketStatus::Quarantined);
    assert!(
        st.reason.as_deref().unwrap().starts_with("verify:"),
        "{:?}",
        st.reason
    );

    // Signed with a key that is not the machine's.
    let other = ed25519_dalek::SigningKey::from_bytes(&[99; 32]);
    let (forged, data) = sealed(&s, 3, &keys, &other);
    upload(&s, &forged, &data).await;
    let st = final_status(&s, &forged).await;
    assert_eq!(st.status, PacketStatus::Quarantined);
    assert!(
        st.reason.as_deref().unwrap().starts_with("verify:"),
        "{:?}",
        st.reason
    );
    assert_eq!(
        store.uins_available().await.unwrap(),
        before - 1,
        "no UIN for quarantined packets"
    );
    t.stop().await;
}

#[tokio::test]
async fn sealed_packets_are_processed_or_quarantined_sqlite() {
    pipeline_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn sealed_packets_are_processed_or_quarantined_postgres() {
    pipeline_flow(Backend::Postgres).await;
}

#[tokio::test]
async fn jobs_survive_a_restart_of_the_server() {
    use std::sync::Arc;
    use tessera_packet::clock::SystemClock;
    use tessera_server::settings::Settings;

    let dir = tempfile::tempdir().unwrap();
    let settings = |workers: u32| Settings {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        uin_pool_target: 50,
        uin_pool_low_water: 10,
        pipeline_workers: workers,
        ..Settings::default()
    };
    // First run: receive only (no workers), as if the process died before processing.
    let state = tessera_server::prepare(settings(0), Arc::new(SystemClock))
        .await
        .unwrap();
    let server = tessera_server::start(state.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let key = ed25519_dalek::SigningKey::from_bytes(&[21; 32]);
    let req = wire::EnrolmentRequest::new(&key, "10001".parse().unwrap(), "restart");
    let r: wire::EnrolmentResponse = http
        .post(format!("{base}/api/v1/machines/enrol"))
        .json(&req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state
        .store
        .set_machine_status(&r.machine_id, wire::MachineStatus::Active, None, 0)
        .await
        .unwrap();
    let s = Station {
        key: key.clone(),
        machine_id: r.machine_id,
        base,
        http,
    };
    let keys = recipients(&s).await;
    let (rid, data) = sealed(&s, 7, &keys, &key);
    upload(&s, &rid, &data).await;
    let st: PacketStatusResponse = s
        .get(&format!("/api/v1/packets/{rid}/status"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(st.status, PacketStatus::Received);
    server.stop().await.unwrap();
    drop(state);

    // Second run on the same data directory, with a worker: the job is still there and gets processed.
    let state = tessera_server::prepare(settings(1), Arc::new(SystemClock))
        .await
        .unwrap();
    let server = tessera_server::start(state).await.unwrap();
    let s = Station {
        base: format!("http://{}", server.addr),
        ..s
    };
    let st = final_status(&s, &rid).await;
    assert_eq!(st.status, PacketStatus::Processed);
    server.stop().await.unwrap();
}
