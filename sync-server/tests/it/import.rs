//! USB import: an export folder in the station's format (signed `export-<machine>-<time>.json` + `.sig`,
//! `<RID>.tpkt` files) imported into a running server, on both backends: packets processed as if
//! uploaded, a re-import changes nothing, a packet that differs from the manifest is quarantined with its
//! reason, a manifest signed by another key is refused whole.

use std::path::Path;

use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest as _, Sha256};
use tessera_packet::manifest::Decision;
use tessera_packet::wire::{self, PacketStatus};
use tessera_server::import::{ImportError, PacketOutcome, import_folder};

use crate::common::{Backend, TestServer, sample_country};
use crate::flow::Resident;
use crate::pipeline::{Desk, final_status};

/// Writes an export folder as `tessera-station` does (`client/src/workflow.rs`, `export`).
fn export(dir: &Path, d: &Desk, packets: &[(String, Vec<u8>)], signer: &SigningKey) {
    std::fs::create_dir_all(dir).unwrap();
    let entries: Vec<serde_json::Value> = packets
        .iter()
        .map(|(rid, data)| {
            let file = format!("{rid}.tpkt");
            std::fs::write(dir.join(&file), data).unwrap();
            serde_json::json!({
                "rid": rid,
                "file": file,
                "size": data.len(),
                "sha256": hex::encode(Sha256::digest(data)),
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "format": "tessera-export",
        "version": 1,
        "centerId": "10001",
        "machineId": d.s.machine_id.to_string(),
        "machinePublicKey": hex::encode(signer.verifying_key().as_bytes()),
        "exportedAt": "2026-11-29T10:00:00Z",
        "operatorId": "officer01",
        "packets": entries,
    });
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let name = format!("export-{}-20261129T100000Z", d.s.machine_id);
    std::fs::write(dir.join(format!("{name}.json")), &bytes).unwrap();
    std::fs::write(
        dir.join(format!("{name}.sig")),
        wire::encode_b64(&signer.sign(&bytes).to_bytes()),
    )
    .unwrap();
}

async fn import_round_trip(backend: Backend) {
    let Some(t) = TestServer::start(backend, |st| st.country_config = Some(sample_country())).await else {
        return;
    };
    let state = t.server.as_ref().unwrap().state.clone();
    let d = Desk::new(t.active_station("10001").await).await;
    let usb = t.dir.path().join("usb");
    let packets: Vec<(String, Vec<u8>)> = (1..=3)
        .map(|i| {
            let r = Resident::new(
                40 + u64::from(i),
                &format!("Usb Resident {}", crate::pipeline::letters(i)),
            );
            let (rid, data) = d.packet(i, &r, Decision::Approved);
            (rid.to_string(), data)
        })
        .collect();
    export(&usb, &d, &packets, &d.s.key);

    // First import: every packet queued, then processed by the server's workers.
    let mut printed = Vec::new();
    let lines = import_folder(&state, &usb, |l, done, total| {
        printed.push((l.to_string(), done, total))
    })
    .await
    .unwrap();
    assert_eq!(lines.len(), 3);
    assert!(
        lines.iter().all(|l| l.outcome == PacketOutcome::Ingested),
        "{lines:?}"
    );
    assert_eq!(printed.len(), 3);
    assert_eq!((printed[2].1, printed[2].2), (3, 3));
    assert!(printed[0].0.contains("imported"), "{}", printed[0].0);
    for (rid, data) in &packets {
        let rid = rid.parse().unwrap();
        let st = final_status(&d.s, &rid).await;
        assert_eq!(st.status, PacketStatus::Processed, "{rid}: {:?}", st.reason);
        let rec = state.store.packet(&rid).await.unwrap().unwrap();
        assert_eq!(rec.sha256, hex::encode(Sha256::digest(data)));
        assert!(!rec.receipt.is_empty(), "signed receipt stored");
    }

    // Re-import: nothing changes.
    let again = import_folder(&state, &usb, |_, _, _| {}).await.unwrap();
    assert!(
        again
            .iter()
            .all(|l| l.outcome == PacketOutcome::AlreadyReceived(PacketStatus::Processed)),
        "{again:?}"
    );

    // A tampered packet (one byte changed after export): quarantined with the reason, the others imported.
    let usb2 = t.dir.path().join("usb2");
    let more: Vec<(String, Vec<u8>)> = (4..=5)
        .map(|i| {
            let r = Resident::new(
                40 + u64::from(i),
                &format!("Usb Resident {}", crate::pipeline::letters(i)),
            );
            let (rid, data) = d.packet(i, &r, Decision::Approved);
            (rid.to_string(), data)
        })
        .collect();
    export(&usb2, &d, &more, &d.s.key);
    let victim = usb2.join(format!("{}.tpkt", more[0].0));
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();
    let lines = import_folder(&state, &usb2, |_, _, _| {}).await.unwrap();
    assert!(
        matches!(&lines[0].outcome, PacketOutcome::Quarantined(r) if r.starts_with("import:hash_mismatch")),
        "{lines:?}"
    );
    assert_eq!(lines[1].outcome, PacketOutcome::Ingested);
    let q = final_status(&d.s, &more[0].0.parse().unwrap()).await;
    assert_eq!(q.status, PacketStatus::Quarantined);
    assert!(q.reason.unwrap().starts_with("import:hash_mismatch"));
    assert_eq!(
        final_status(&d.s, &more[1].0.parse().unwrap()).await.status,
        PacketStatus::Processed
    );
    // Importing the tampered folder again is a no-op too (the quarantined copy is kept).
    let lines = import_folder(&state, &usb2, |_, _, _| {}).await.unwrap();
    assert_eq!(
        lines[0].outcome,
        PacketOutcome::AlreadyReceived(PacketStatus::Quarantined)
    );

    // A manifest signed by another key (or altered after signing) is refused whole.
    let usb3 = t.dir.path().join("usb3");
    let r = Resident::new(60, "Usb Resident Forged");
    let (rid6, data6) = d.packet(6, &r, Decision::Approved);
    let forger = SigningKey::from_bytes(&[77; 32]);
    export(&usb3, &d, &[(rid6.to_string(), data6)], &forger);
    let err = import_folder(&state, &usb3, |_, _, _| {}).await.unwrap_err();
    assert!(matches!(err, ImportError::Manifest { .. }), "{err}");
    assert!(err.to_string().contains("does not verify"), "{err}");
    assert!(
        state.store.packet(&rid6).await.unwrap().is_none(),
        "nothing imported"
    );

    // An empty folder says what it expected.
    let empty = t.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = import_folder(&state, &empty, |_, _, _| {}).await.unwrap_err();
    assert!(matches!(err, ImportError::NoManifest(_)), "{err}");
    t.stop().await;
}

#[tokio::test]
async fn usb_import_sqlite() {
    import_round_trip(Backend::Sqlite).await;
}

#[tokio::test]
async fn usb_import_postgres() {
    import_round_trip(Backend::Postgres).await;
}
