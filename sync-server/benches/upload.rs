//! Upload throughput: packets of 2 MB through the tus API on loopback (create + one PATCH each, signed requests,
//! whole-file SHA-256, fsync, signed receipt), 4 concurrent stations, SQLite backend. Prints figures; run with
//! `cargo bench -p tessera-server --bench upload`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark binary"
)]

use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use sha2::{Digest as _, Sha256};
use tessera_packet::clock::{Clock as _, SystemClock};
use tessera_packet::ids::{MachineId, Rid};
use tessera_packet::wire::{self, MachineStatus};
use tessera_server::settings::Settings;

const PACKETS_PER_STATION: u32 = 40;
const STATIONS: u32 = 4;
const SIZE: usize = 2 * 1024 * 1024;

#[allow(
    clippy::too_many_arguments,
    reason = "benchmark helper mirroring one signed request"
)]
async fn send(
    http: &reqwest::Client,
    base: &str,
    key: &SigningKey,
    m: &MachineId,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    nonce: u64,
) -> reqwest::Response {
    let nonce = format!("{nonce:032x}");
    let auth = wire::sign_request(key, m, method, path, SystemClock.now().timestamp(), &nonce, &body);
    let mut rb = http.request(method.parse().unwrap(), format!("{base}{path}"));
    for (k, v) in auth
        .headers()
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .chain(headers.iter().map(|(k, v)| (*k, v.clone())))
    {
        rb = rb.header(k, v);
    }
    rb.body(body).send().await.unwrap()
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse().unwrap(),
            uin_pool_target: 100,
            uin_pool_low_water: 10,
            pipeline_workers: 0,
            ..Settings::default()
        };
        let state = tessera_server::prepare(settings, Arc::new(SystemClock)).await.unwrap();
        let server = tessera_server::start(state.clone()).await.unwrap();
        let base = format!("http://{}", server.addr);
        let http = reqwest::Client::new();
        let mut stations = Vec::new();
        for i in 0..STATIONS {
            let key = SigningKey::from_bytes(&[u8::try_from(i).unwrap() + 1; 32]);
            let req = wire::EnrolmentRequest::new(&key, "10001".parse().unwrap(), "bench");
            let r: wire::EnrolmentResponse =
                http.post(format!("{base}/api/v1/machines/enrol")).json(&req).send().await.unwrap().json().await.unwrap();
            state.store.set_machine_status(&r.machine_id, MachineStatus::Active, None, 0).await.unwrap();
            stations.push((key, r.machine_id));
        }
        let data: Arc<Vec<u8>> = Arc::new((0..SIZE).map(|i| u8::try_from(i % 251).unwrap()).collect());
        let sha = hex::encode(Sha256::digest(data.as_slice()));
        let t = Instant::now();
        let mut tasks = Vec::new();
        for (si, (key, m)) in stations.into_iter().enumerate() {
            let (http, base, data, sha) = (http.clone(), base.clone(), data.clone(), sha.clone());
            tasks.push(tokio::spawn(async move {
                for seq in 1..=PACKETS_PER_STATION {
                    let rid: Rid = format!("10001{m}{seq:05}20261129080000").parse().unwrap();
                    let n = u64::try_from(si).unwrap() << 32 | u64::from(seq) << 1;
                    let meta = wire::upload_metadata(&rid, &sha);
                    let h = [
                        ("tus-resumable", "1.0.0".to_owned()),
                        ("upload-length", SIZE.to_string()),
                        ("upload-metadata", meta),
                    ];
                    let r = send(&http, &base, &key, &m, "POST", "/api/v1/uploads", &h, vec![], n).await;
                    assert_eq!(r.status(), 201);
                    let loc = r.headers()["location"].to_str().unwrap().to_owned();
                    let h = [
                        ("tus-resumable", "1.0.0".to_owned()),
                        ("content-type", "application/offset+octet-stream".to_owned()),
                        ("upload-offset", "0".to_owned()),
                    ];
                    let r = send(&http, &base, &key, &m, "PATCH", &loc, &h, data.as_ref().clone(), n | 1).await;
                    assert_eq!(r.status(), 200);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let el = t.elapsed().as_secs_f64();
        let n = f64::from(PACKETS_PER_STATION * STATIONS);
        println!(
            "upload: {n} packets of 2 MiB, {STATIONS} concurrent stations, SQLite: {el:.2} s = {:.1} packets/s ({:.0} MiB/s)",
            n / el,
            n * 2.0 / el
        );
        server.stop().await.unwrap();
    });
}
