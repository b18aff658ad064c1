//! Packet blobs on an S3-compatible object store: a real S3 server (moto's `moto_server`, from PyPI
//! `moto[server]`) on loopback. Skipped with a notice when `moto_server` is not installed; fails instead under
//! `TESSERA_TEST_REQUIRE_ALL=1`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use tessera_packet::wire::PacketStatus;
use tessera_server::blobs::{BlobError, BlobStore};
use tessera_server::settings::{BlobSettings, Secret};

use crate::common::{Backend, TestServer, sample_country};
use crate::flow::Resident;
use crate::pipeline::{Desk, final_status, upload};

/// A `moto_server` on a free loopback port, killed when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn s3_server() -> Option<S3Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spawned = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("TESSERA_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
                panic!("moto_server required (TESSERA_TEST_REQUIRE_ALL=1) but not runnable: {e}");
            }
            eprintln!(
                "SKIP: moto_server not runnable ({e}); `pip install 'moto[server]'`, or set TESSERA_TEST_REQUIRE_ALL=1 to fail"
            );
            return None;
        }
    };
    let server = S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http.get(&server.endpoint).send().await.is_ok() {
            return Some(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("moto_server did not answer on {} within 15 s", server.endpoint);
}

/// Creates a bucket (moto accepts unsigned requests) and returns the `[blobs]` settings for it.
async fn bucket(s3: &S3Server, name: &str, prefix: &str) -> BlobSettings {
    let r = reqwest::Client::new()
        .put(format!("{}/{name}", s3.endpoint))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    BlobSettings {
        url: Some(format!("s3://{name}/{prefix}")),
        endpoint: Some(s3.endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some(Secret::new("testing")),
        secret_access_key: Some(Secret::new("testing")),
    }
}

/// Keys in a bucket, from its ListObjectsV2 XML.
async fn keys_in(s3: &S3Server, name: &str) -> Vec<String> {
    let xml = reqwest::Client::new()
        .get(format!("{}/{name}?list-type=2", s3.endpoint))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    xml.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn s3_blob_store_puts_gets_replaces_and_deletes_under_its_prefix() {
    let Some(s3) = s3_server().await else { return };
    let settings = bucket(&s3, "tessera-unit", "site-a/packets-v1").await;
    let store = BlobStore::from_settings(&settings, std::path::Path::new("/nonexistent")).unwrap();
    let key = "packets/10001100010000120261129080000.tpkt";
    assert!(matches!(store.get(key).await, Err(BlobError::NotFound { .. })));
    assert_eq!(store.size(key).await.unwrap(), None);
    let big: Bytes = (0..3_000_000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    store.put(key, big.clone()).await.unwrap();
    assert_eq!(store.get(key).await.unwrap(), big);
    assert_eq!(store.size(key).await.unwrap(), Some(3_000_000));
    assert_eq!(
        keys_in(&s3, "tessera-unit").await,
        [format!("site-a/packets-v1/{key}")],
        "stored under the URL's prefix"
    );
    store.put(key, Bytes::from_static(b"replaced")).await.unwrap();
    assert_eq!(store.get(key).await.unwrap(), Bytes::from_static(b"replaced"));
    store.delete(key).await.unwrap();
    store.delete(key).await.unwrap();
    assert!(keys_in(&s3, "tessera-unit").await.is_empty());

    // Wrong credentials are not checked by moto, but a missing bucket is an error naming the store.
    let missing = BlobSettings {
        url: Some("s3://no-such-bucket".into()),
        ..settings
    };
    let err = BlobStore::from_settings(&missing, std::path::Path::new("/x"))
        .unwrap()
        .put(key, Bytes::from_static(b"x"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-bucket"), "{err}");
}

#[tokio::test]
async fn packets_uploaded_to_a_server_on_s3_are_stored_there_and_processed() {
    let Some(s3) = s3_server().await else { return };
    let blobs = bucket(&s3, "tessera-e2e", "prod").await;
    let t = TestServer::start(Backend::Sqlite, |st| {
        st.country_config = Some(sample_country());
        st.dedupe_index = tessera_server::settings::DedupeIndex::Exhaustive;
        st.blobs = blobs;
    })
    .await
    .unwrap();
    let d = Desk::new(t.active_station("10001").await).await;
    let (rid, data) = d.packet(
        1,
        &Resident::new(4_001, "Blob Resident"),
        tessera_packet::manifest::Decision::Approved,
    );
    upload(&d.s, &rid, &data).await;
    let st = final_status(&d.s, &rid).await;
    assert_eq!(st.status, PacketStatus::Processed, "{:?}", st.reason);
    assert_eq!(
        keys_in(&s3, "tessera-e2e").await,
        [format!("prod/packets/{rid}.tpkt")]
    );
    let local = t.dir.path().join("data/blobs/packets");
    assert_eq!(
        std::fs::read_dir(&local).unwrap().count(),
        0,
        "nothing stored locally"
    );
    let state = &t.server.as_ref().unwrap().state;
    assert_eq!(
        state
            .blob_store
            .get(&tessera_server::blobs::packet_key(&rid))
            .await
            .unwrap(),
        Bytes::from(data)
    );
    t.stop().await;
}
