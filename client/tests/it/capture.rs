//! Biometric capture from the SBI simulator (`tessera_sbi::sim`, started in-process on free ports) into a
//! draft: discovery, every part, exceptions, recapture limits, and clear errors.

use std::sync::Arc;

use tessera_packet::types::BioAttribute;
use tessera_sbi::protocol::BioSubType;
use tessera_sbi::sim::{self, DeviceKind, RunningSimulator, SimConfig, SimError};
use tessera_station::StationError;
use tessera_station::capture::{CapturePart, DeviceOptions};
use tessera_station::station::Station;

use crate::common::{self, PDF, png};

async fn start_sim(clock: Arc<tessera_packet::clock::FixedClock>) -> (RunningSimulator, u16) {
    start_sim_at(clock).await
}

/// Starts the simulator's four devices on a free block of consecutive ports; returns the first port.
pub async fn start_sim_at(clock: Arc<dyn tessera_packet::clock::Clock>) -> (RunningSimulator, u16) {
    for _ in 0..50 {
        let mut r = [0u8; 2];
        getrandom::fill(&mut r).unwrap();
        let base = 20_000 + u16::from_le_bytes(r) % 40_000;
        match sim::start(
            SimConfig::from_port(base),
            clock.clone(),
            sim::default_image_source().unwrap(),
        )
        .await
        {
            Ok(s) => return (s, base),
            Err(SimError::Bind { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free block of 4 ports");
}

fn opts(sim: &RunningSimulator, base: u16) -> DeviceOptions {
    DeviceOptions {
        first_port: base,
        last_port: base + 3,
        trusted_ca_pem: vec![sim.ca_pem().to_owned()],
        capture_timeout_secs: 20,
    }
}

fn draft_with(st: &mut Station, answers: serde_json::Value) -> i64 {
    let id = st.start_draft("NEW").unwrap();
    st.save_answers(id, serde_json::from_value(answers).unwrap())
        .unwrap();
    st.import_document(id, "proofOfAddress", "DOC002", None, PDF)
        .unwrap();
    st.import_document(id, "proofOfIdentity", "DOC001", None, &png(300, 200))
        .unwrap();
    id
}

/// A NEW adult draft with its documents, ready for captures.
pub fn draft_for_preview(st: &mut Station) -> i64 {
    draft_with(st, crate::forms::adult_answers())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_part_is_captured_from_the_devices_and_the_packet_seals() {
    let (env, mut st, _) = common::init_station();
    let (sim, base) = start_sim(env.clock.clone()).await;
    let o = opts(&sim, base);
    let found = st.discover_devices(&o).await.unwrap();
    assert_eq!(found.devices.len(), 4, "{found:?}");
    assert!(found.devices.iter().all(|d| d.status == "Ready"));

    let id = draft_with(&mut st, crate::forms::adult_answers());
    let parts = st.capture_all(id, &o).await.unwrap();
    assert_eq!(
        parts.iter().map(|p| p.part).collect::<Vec<_>>(),
        CapturePart::ALL.to_vec()
    );
    assert!(
        parts.iter().all(|p| p.attempts == 1 && !p.force_captured),
        "{parts:?}"
    );
    let d = st.draft(id).unwrap();
    assert_eq!(d.body.captures.len(), 13);
    for (a, c) in &d.body.captures {
        assert!(c.format.starts_with("ISO19794-"), "{a}: {}", c.format);
        assert!(
            c.sbi_data_block
                .as_deref()
                .is_some_and(|j| j.split('.').count() == 3),
            "{a}"
        );
        assert!(c.device.is_some(), "{a}");
    }
    let session = d.body.sbi.clone().unwrap();
    assert_eq!(session.chain.len(), 64);
    // Nothing more to capture: a second run asks the devices for nothing.
    assert!(st.capture_all(id, &o).await.unwrap().is_empty());
    // One part again (a recapture) keeps the same transaction and extends the chain.
    st.capture_part(id, CapturePart::Face, &o).await.unwrap();
    let again = st.draft(id).unwrap().body.sbi.unwrap();
    assert_eq!(again.transaction_id, session.transaction_id);
    assert_ne!(again.chain, session.chain);

    let review = st.review(id).unwrap();
    assert!(review.ready, "{:?}", review.problems);
    let sealed = st.seal_draft(id).unwrap();
    assert!(sealed.size > 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_are_not_requested_and_low_quality_is_kept_after_the_retries() {
    let (env, mut st, _) = common::init_station();
    let (sim, base) = start_sim(env.clock.clone()).await;
    let o = opts(&sim, base);
    // The resident has no left little finger; the iris camera gives poor images.
    sim.control(DeviceKind::FingerSlap, |c| {
        c.missing.insert(BioSubType::LeftLittle);
    });
    sim.control(DeviceKind::IrisDouble, |c| c.quality_score = Some(10));
    let mut answers = crate::forms::adult_answers();
    answers["biometrics"] = serde_json::json!({
        "exceptions": {"leftLittle": {"kind": "MISSING", "remark": "amputated"}}
    });
    let id = draft_with(&mut st, answers);
    st.import_exception_photo(id, &png(200, 200)).unwrap();
    let parts = st.capture_all(id, &o).await.unwrap();
    let iris = parts.iter().find(|p| p.part == CapturePart::Irises).unwrap();
    let max = st.master().settings.biometrics.max_retries;
    assert_eq!(iris.attempts, max + 1, "retried up to the country's limit");
    assert!(iris.force_captured);
    let left = parts.iter().find(|p| p.part == CapturePart::LeftSlap).unwrap();
    assert_eq!(
        left.qualities.len(),
        3,
        "three fingers, the exception not asked for"
    );
    let d = st.draft(id).unwrap();
    assert!(!d.body.captures.contains_key(&BioAttribute::LeftLittle));
    assert!(d.body.captures[&BioAttribute::LeftEye].force_captured);
    let review = st.review(id).unwrap();
    assert!(review.ready, "{:?}", review.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_or_absent_devices_give_clear_errors() {
    let (env, mut st, _) = common::init_station();
    let (sim, base) = start_sim(env.clock.clone()).await;
    let id = draft_with(&mut st, crate::forms::adult_answers());

    // No provider CA trusted (none synced, none given).
    let mut o = opts(&sim, base);
    o.trusted_ca_pem.clear();
    let e = st.capture_all(id, &o).await.unwrap_err();
    assert!(
        matches!(e, StationError::Device { .. }) && e.to_string().contains("CA"),
        "{e}"
    );

    // A CA the devices do not chain to: the signature check refuses the capture.
    let (other, other_base) = start_sim(env.clock.clone()).await;
    let mut o = opts(&sim, base);
    o.trusted_ca_pem = vec![other.ca_pem().to_owned()];
    let e = st.capture_part(id, CapturePart::Face, &o).await.unwrap_err();
    assert!(matches!(e, StationError::Device { .. }), "{e}");
    drop(other);
    let _ = other_base;

    // Nothing listening in the range.
    let o = DeviceOptions {
        first_port: 1,
        last_port: 2,
        trusted_ca_pem: vec![sim.ca_pem().to_owned()],
        capture_timeout_secs: 5,
    };
    let e = st.capture_part(id, CapturePart::Face, &o).await.unwrap_err();
    assert!(e.to_string().contains("no Face device found"), "{e}");
    assert!(
        st.draft(id).unwrap().body.captures.is_empty(),
        "nothing half-stored"
    );
}
