//! Packet upload through tus: chunks, resume, checksums, limits, quota, receipts, status.

use sha2::{Digest as _, Sha256};
use tessera_packet::ids::Rid;
use tessera_packet::wire::{self, PacketStatus, PacketStatusResponse, SignedReceipt};

use crate::common::{Backend, Station, TestServer, error_code};

fn rid_for(s: &Station, seq: u32) -> Rid {
    format!("10001{}{seq:05}20261129080000", s.machine_id)
        .parse()
        .unwrap()
}

fn packet(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| u8::try_from(i % 251).unwrap().wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn tus() -> (&'static str, String) {
    ("tus-resumable", "1.0.0".into())
}

async fn create(s: &Station, rid: &Rid, data: &[u8]) -> reqwest::Response {
    let sha = hex::encode(Sha256::digest(data));
    s.send(
        "POST",
        "/api/v1/uploads",
        &[
            tus(),
            ("upload-length", data.len().to_string()),
            ("upload-metadata", wire::upload_metadata(rid, &sha)),
        ],
        vec![],
    )
    .await
}

async fn patch(
    s: &Station,
    location: &str,
    offset: usize,
    chunk: &[u8],
    checksum: Option<String>,
) -> reqwest::Response {
    let mut h = vec![
        tus(),
        ("content-type", "application/offset+octet-stream".to_owned()),
        ("upload-offset", offset.to_string()),
    ];
    if let Some(c) = checksum {
        h.push(("upload-checksum", c));
    }
    s.send("PATCH", location, &h, chunk.to_vec()).await
}

async fn upload_flow(backend: Backend) {
    let Some(t) = TestServer::start(backend, |st| st.pipeline_workers = 0).await else {
        return;
    };
    let s = t.active_station("10001").await;
    let rid = rid_for(&s, 1);
    let data = packet(300_000, 1);

    let r = create(&s, &rid, &data).await;
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(r.headers()["upload-offset"], "0");

    // First chunk with a checksum.
    let r = patch(
        &s,
        &location,
        0,
        &data[..100_000],
        Some(wire::upload_checksum(&data[..100_000])),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["upload-offset"], "100000");

    // A corrupted chunk is refused and nothing is written.
    let mut bad = data[100_000..200_000].to_vec();
    let checksum = wire::upload_checksum(&bad);
    bad[5] ^= 1;
    assert_eq!(
        error_code(patch(&s, &location, 100_000, &bad, Some(checksum)).await).await,
        "checksum_mismatch"
    );
    // Wrong offset.
    assert_eq!(
        error_code(patch(&s, &location, 5, &data[5..10], None).await).await,
        "offset_mismatch"
    );
    // Wrong content type.
    let r = s
        .send(
            "PATCH",
            &location,
            &[tus(), ("upload-offset", "100000".into())],
            vec![1],
        )
        .await;
    assert_eq!(error_code(r).await, "wrong_content_type");

    // Resume: ask the offset, as after a dropped connection.
    let r = s.send("HEAD", &location, &[tus()], vec![]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["upload-offset"], "100000");
    assert_eq!(r.headers()["upload-length"], "300000");

    // Creating again (a station retry) finds the same upload and offset.
    let r = create(&s, &rid, &data).await;
    assert_eq!(r.headers()["location"].to_str().unwrap(), location);
    assert_eq!(r.headers()["upload-offset"], "100000");

    let r = patch(&s, &location, 100_000, &data[100_000..200_000], None).await;
    assert_eq!(r.status(), 204);
    // Beyond the declared length.
    let mut long = data[200_000..].to_vec();
    long.push(0);
    assert_eq!(
        error_code(patch(&s, &location, 200_000, &long, None).await).await,
        "upload_exceeds_length"
    );

    let r = patch(
        &s,
        &location,
        200_000,
        &data[200_000..],
        Some(wire::upload_checksum(&data[200_000..])),
    )
    .await;
    assert_eq!(r.status(), 200);
    let sig = r.headers()[wire::headers::SERVER_SIGNATURE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = r.bytes().await.unwrap();
    wire::verify_server_signature(&t.server_key(), &body, &sig).unwrap();
    let signed: SignedReceipt = serde_json::from_slice(&body).unwrap();
    let receipt = signed.verify(&t.server_key()).unwrap();
    assert_eq!(receipt.rid, rid);
    assert_eq!(receipt.size, 300_000);
    assert_eq!(receipt.sha256, hex::encode(Sha256::digest(&data)));

    // The stored packet is byte-identical.
    let stored = t
        .dir
        .path()
        .join("data/blobs/packets")
        .join(format!("{rid}.tpkt"));
    assert_eq!(std::fs::read(stored).unwrap(), data);

    // Status, receipt again, and a repeated final PATCH are idempotent.
    let st: PacketStatusResponse = s
        .get(&format!("/api/v1/packets/{rid}/status"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(st.status, PacketStatus::Received);
    let again: SignedReceipt = s
        .get(&format!("/api/v1/packets/{rid}/receipt"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, signed);
    let r = patch(&s, &location, 200_000, &data[200_000..], None).await;
    assert_eq!(r.status(), 200);
    let r = create(&s, &rid, &data).await;
    assert_eq!(
        r.headers()["upload-offset"],
        "300000",
        "a completed packet reports its full length"
    );

    // Another machine cannot see it.
    let other = t.active_station("10001").await;
    assert_eq!(
        error_code(other.get(&format!("/api/v1/packets/{rid}/status")).await).await,
        "not_found"
    );
    assert_eq!(
        other.send("HEAD", &location, &[tus()], vec![]).await.status(),
        404,
        "HEAD has no body"
    );
    t.stop().await;
}

#[tokio::test]
async fn resumable_checksummed_upload_sqlite() {
    upload_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn resumable_checksummed_upload_postgres() {
    upload_flow(Backend::Postgres).await;
}

#[tokio::test]
async fn whole_packet_digest_mismatch_resets_the_upload() {
    let t = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let s = t.active_station("10001").await;
    let rid = rid_for(&s, 2);
    let data = packet(1000, 2);
    let location = create(&s, &rid, &data).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut tampered = data.clone();
    tampered[10] ^= 0xff;
    assert_eq!(
        error_code(patch(&s, &location, 0, &tampered, None).await).await,
        "packet_checksum_mismatch"
    );
    let r = s.send("HEAD", &location, &[tus()], vec![]).await;
    assert_eq!(r.headers()["upload-offset"], "0");
    assert_eq!(
        error_code(s.get(&format!("/api/v1/packets/{rid}/status")).await).await,
        "not_found"
    );
    assert_eq!(patch(&s, &location, 0, &data, None).await.status(), 200);
    t.stop().await;
}

#[tokio::test]
async fn chunked_upload_digest_is_checked_with_and_without_the_running_hash() {
    let t = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let state = t.server.as_ref().unwrap().state.clone();
    let s = t.active_station("10001").await;
    let rid = rid_for(&s, 3);
    let data = packet(9_000, 3);
    let location = create(&s, &rid, &data).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let part = t.dir.path().join(format!(
        "data/blobs/uploads/{}.part",
        location.rsplit('/').next().unwrap()
    ));
    assert!(!part.exists(), "no part file before the first chunk");
    // A bad last chunk (the running digest says so): reset to 0, nothing stored.
    assert_eq!(patch(&s, &location, 0, &data[..4_000], None).await.status(), 204);
    assert!(part.exists());
    let mut bad = data[4_000..].to_vec();
    bad[7] ^= 1;
    assert_eq!(
        error_code(patch(&s, &location, 4_000, &bad, None).await).await,
        "packet_checksum_mismatch"
    );
    let r = s.send("HEAD", &location, &[tus()], vec![]).await;
    assert_eq!(r.headers()["upload-offset"], "0");
    let stored = t.dir.path().join(format!("data/blobs/packets/{rid}.tpkt"));
    assert!(!stored.exists(), "nothing half-written is stored");
    // Resent in three chunks, with the running digests forgotten in between (as after a restart): the
    // part file is read back once and the packet is accepted.
    assert_eq!(patch(&s, &location, 0, &data[..3_000], None).await.status(), 204);
    state.upload_hashes.lock().unwrap().clear();
    assert_eq!(
        patch(&s, &location, 3_000, &data[3_000..6_000], None)
            .await
            .status(),
        204
    );
    assert_eq!(
        patch(&s, &location, 6_000, &data[6_000..], None).await.status(),
        200
    );
    assert_eq!(std::fs::read(&stored).unwrap(), data);
    assert!(
        !part.exists(),
        "the part file is removed once the packet is recorded"
    );
    t.stop().await;
}

#[tokio::test]
async fn limits_quota_and_bad_creation_requests() {
    let t = TestServer::start(Backend::Sqlite, |c| {
        c.max_packet_bytes = 10_000;
        c.max_chunk_bytes = 4_096;
        c.machine_daily_quota = 2;
    })
    .await
    .unwrap();
    let s = t.active_station("10001").await;
    assert_eq!(
        error_code(create(&s, &rid_for(&s, 1), &packet(10_001, 0)).await).await,
        "packet_too_large"
    );

    let data = packet(8_000, 0);
    let location = create(&s, &rid_for(&s, 1), &data).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        error_code(patch(&s, &location, 0, &data, None).await).await,
        "body_too_large"
    );

    // A RID of another machine.
    let foreign: Rid = "10001199990000120261129080000".parse().unwrap();
    assert_eq!(
        error_code(create(&s, &foreign, &data).await).await,
        "rid_machine_mismatch"
    );
    // Same RID, different content.
    assert_eq!(
        error_code(create(&s, &rid_for(&s, 1), &packet(8_000, 9)).await).await,
        "rid_conflict"
    );
    // Missing tus header, bad metadata.
    let r = s
        .send(
            "POST",
            "/api/v1/uploads",
            &[("upload-length", "10".into())],
            vec![],
        )
        .await;
    assert_eq!(error_code(r).await, "tus_version_unsupported");
    let r = s
        .send(
            "POST",
            "/api/v1/uploads",
            &[
                tus(),
                ("upload-length", "10".into()),
                ("upload-metadata", "rid !!".into()),
            ],
            vec![],
        )
        .await;
    assert_eq!(error_code(r).await, "malformed_metadata");
    let r = s
        .send(
            "POST",
            "/api/v1/uploads",
            &[tus(), ("upload-length", "x".into())],
            vec![],
        )
        .await;
    assert_eq!(error_code(r).await, "malformed_header");

    assert_eq!(create(&s, &rid_for(&s, 2), &data).await.status(), 201);
    assert_eq!(
        error_code(create(&s, &rid_for(&s, 3), &data).await).await,
        "quota_exceeded"
    );

    let r = t
        .http
        .request(reqwest::Method::OPTIONS, t.url("/api/v1/uploads"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["tus-extension"], "creation,checksum");
    assert_eq!(r.headers()["tus-max-size"], "10000");
    t.stop().await;
}
