//! Processing throughput end to end for NEW packets on SQLite: verify, decrypt, validate, demographic
//! dedupe, biometric 1:N (extraction of ten ISO/IEC 19794-4 finger images per packet and an exhaustive
//! search of the growing gallery), UIN, encrypted ID repository, credential and outbox. Packets are
//! received first (through the store, as the upload path does), then workers drain the queue while the
//! clock runs. Prints packets/min; run with `cargo bench -p tessera-server --bench pipeline`.
//! `TESSERA_BENCH_PACKETS` (default 24), `TESSERA_BENCH_WORKERS` (default 2) and `TESSERA_BENCH_FINGERS`
//! (captured fingers per packet, default 10, at least 1; the others are declared exceptions) change the run;
//! `TESSERA_BENCH_MODE=without-1n` is the "processing without biometric 1:N" (see `main`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "benchmark binary"
)]

#[path = "../tests/it/flow.rs"]
mod flow;

use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use sha2::{Digest as _, Sha256};
use tessera_packet::clock::SystemClock;
use tessera_packet::manifest::Decision;
use tessera_packet::types::{BioAttribute, Modality};
use tessera_packet::wire::{MachineStatus, PacketStatus};
use tessera_server::settings::Settings;
use tessera_server::store::{NewMachine, NewUpload, OperatorKeyRecord};

fn letters(mut n: u32) -> String {
    let mut s = String::from("R");
    loop {
        s.push(char::from(b'a' + u8::try_from(n % 26).unwrap()));
        n /= 26;
        if n == 0 {
            return s;
        }
    }
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = env_u32("TESSERA_BENCH_PACKETS", 24);
    let workers = env_u32("TESSERA_BENCH_WORKERS", 2);
    // Named modes: `ten-fingers` (default) and `without-1n`, the "processing without biometric 1:N":
    // one captured finger (the ID schema wants one biometric), searched against the exhaustive in-memory
    // gallery of the run's own persons, so extraction and 1:N cost almost nothing beside the other stages.
    let mode = std::env::var("TESSERA_BENCH_MODE").unwrap_or_else(|_| "ten-fingers".into());
    let without_1n = match mode.as_str() {
        "ten-fingers" => false,
        "without-1n" => true,
        other => panic!("TESSERA_BENCH_MODE {other:?}: use ten-fingers or without-1n"),
    };
    let finger_count = if without_1n {
        1
    } else {
        env_u32("TESSERA_BENCH_FINGERS", 10) as usize
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse().unwrap(),
            uin_pool_target: 2_000,
            uin_pool_low_water: 100,
            pipeline_workers: 0,
            country_config: Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sample-country")),
            // Synthetic packets from no device: no SBI data blocks.
            device_signatures: tessera_server::device_check::DeviceSignatures::WhenPresent,
            dedupe_index: if without_1n {
                tessera_server::settings::DedupeIndex::Exhaustive
            } else {
                tessera_server::settings::DedupeIndex::Gallery
            },
            ..Settings::default()
        };
        let state = tessera_server::prepare(settings, Arc::new(SystemClock)).await.unwrap();
        let store = state.store.clone();
        let machine_key = SigningKey::from_bytes(&[11; 32]); // TEST-ONLY bench keys
        let officer = SigningKey::from_bytes(&[12; 32]);
        let supervisor = SigningKey::from_bytes(&[13; 32]);
        let (m, _) = store
            .enrol_machine(NewMachine {
                center_id: "10001".parse().unwrap(),
                name: "bench".into(),
                public_key: machine_key.verifying_key().to_bytes(),
                at: 0,
            })
            .await
            .unwrap();
        store
            .set_machine_status(&m.machine_id, MachineStatus::Active, None, 0)
            .await
            .unwrap();
        for (k, id) in [(&officer, "officer01"), (&supervisor, "supervisor01")] {
            store
                .register_operator_key(OperatorKeyRecord {
                    operator_id: id.into(),
                    public_key: k.verifying_key().to_bytes(),
                    machine_id: m.machine_id.clone(),
                    center_id: m.center_id.clone(),
                    registered_at: 0,
                })
                .await
                .unwrap();
        }
        let recipients: Vec<age::x25519::Recipient> = state
            .keys
            .packet_identities
            .iter()
            .map(|(_, i)| i.to_public())
            .collect();
        let fingers: Vec<BioAttribute> = BioAttribute::ALL
            .into_iter()
            .filter(|a| a.modality() == Modality::Finger)
            .take(finger_count)
            .collect();
        println!("building {n} NEW packets with {} finger images each...", fingers.len());
        let t0 = Instant::now();
        let mut rids = Vec::new();
        for i in 0..n {
            let r = flow::Resident {
                dob: format!("19{:02}-03-04", 40 + i % 60),
                ..flow::Resident::new(1_000 + u64::from(i), &format!("Bench Resident {}", letters(i)))
            };
            let c = flow::content(&m.machine_id, i + 1, &r, &fingers);
            let data = flow::seal_signed(&c, &recipients, &machine_key, &officer, &supervisor, Decision::Approved);
            let sha = hex::encode(Sha256::digest(&data));
            state
                .blob_store
                .put(&tessera_server::blobs::packet_key(&c.rid), data.clone().into())
                .await
                .unwrap();
            let id = format!("bench-{i}");
            store
                .create_upload(NewUpload {
                    upload_id: id.clone(),
                    machine_id: m.machine_id.clone(),
                    rid: c.rid.clone(),
                    length: data.len() as u64,
                    sha256: sha,
                    at: 1,
                })
                .await
                .unwrap();
            store.advance_upload(&id, 0, data.len() as u64).await.unwrap();
            store.complete_upload(&id, "{}", 1).await.unwrap();
            rids.push(c.rid);
        }
        println!("built in {:.1} s; processing with {workers} worker(s)", t0.elapsed().as_secs_f64());

        let start = Instant::now();
        let tasks: Vec<_> = (0..workers)
            .map(|w| {
                let st = state.clone();
                tokio::spawn(async move {
                    let name = format!("bench-{w}");
                    while tessera_server::pipeline::run_once(&st, &name).await.unwrap() {}
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let mut processed = 0;
        for rid in &rids {
            let p = store.packet(rid).await.unwrap().unwrap();
            if p.status == PacketStatus::Processed {
                processed += 1;
            } else {
                println!("{rid}: {:?} {:?}", p.status, p.reason);
            }
        }
        println!(
            "pipeline ({mode}): {processed}/{n} NEW packets processed in {secs:.2} s = {:.1} packets/min ({:.0} ms/packet), gallery {} persons",
            f64::from(processed) / secs * 60.0,
            secs * 1000.0 / f64::from(processed.max(1)),
            state.gallery.len()
        );
    });
}
