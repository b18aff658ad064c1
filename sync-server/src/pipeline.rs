//! The durable processing pipeline (first stages). Jobs live in the database (`jobs` table, one per received
//! packet, enqueued in the same transaction that accepts the upload) and are claimed with a lease, on
//! PostgreSQL with `FOR UPDATE SKIP LOCKED`, so several workers share one database. A worker that dies leaves
//! its lease to expire and the job is taken again: processing is at-least-once, and every stage is idempotent
//! (UIN allocation returns the RID's existing UIN).
//!
//! Stages done here: verify the machine signature and every hash → decrypt with the packet-recipient keys →
//! check the content matches the manifest (RID, machine) → allocate a UIN (NEW packets). Invalid or tampered
//! packets are `QUARANTINED` with a stable reason code (`PacketError::kind`, prefixed by the stage), never
//! dropped. Not yet: schema validation, demographic and biometric dedupe, ID repository, credentials.

use std::time::Duration;

use tessera_packet::ids::Rid;
use tessera_packet::types::PacketType;
use tessera_packet::wire::PacketStatus;

use crate::AppState;
use crate::store::StoreError;

/// How long a claimed job stays leased to one worker.
pub const LEASE_SECS: i64 = 300;

/// What processing one packet decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Processed (UIN allocated for a NEW packet).
    Processed,
    /// Quarantined with a reason code.
    Quarantined(String),
}

/// Verifies, opens and allocates for one packet. Returns the outcome; database errors are returned as errors
/// (the job stays leased and is retried after the lease).
pub async fn process(state: &AppState, rid: &Rid) -> Result<Outcome, StoreError> {
    let Some(machine) = state.store.machine(&rid.machine_id()).await? else {
        return Ok(Outcome::Quarantined("verify:machine_unknown".into()));
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&machine.public_key) else {
        return Ok(Outcome::Quarantined("verify:machine_key_invalid".into()));
    };
    let path = crate::upload::packet_path(state, rid);
    let identities: Vec<age::x25519::Identity> = state
        .keys
        .packet_identities
        .iter()
        .map(|(_, i)| i.clone())
        .collect();
    let expected = rid.clone();
    let checked = tokio::task::spawn_blocking(move || -> Result<PacketType, String> {
        let mut packet = tessera_packet::read_file(&path).map_err(|e| format!("read:{}", e.kind()))?;
        packet.verify(&key).map_err(|e| format!("verify:{}", e.kind()))?;
        let mut last = String::from("decrypt:no_packet_key");
        for id in &identities {
            match packet.open(id) {
                Ok(content) => {
                    if content.rid != expected || content.meta.machine_id != expected.machine_id() {
                        return Err("validate:rid_mismatch".into());
                    }
                    return Ok(content.packet_type);
                }
                Err(e) => last = format!("decrypt:{}", e.kind()),
            }
        }
        Err(last)
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))?;
    let packet_type = match checked {
        Ok(t) => t,
        Err(reason) => return Ok(Outcome::Quarantined(reason)),
    };
    if packet_type == PacketType::New {
        state
            .store
            .allocate_uins(vec![rid.clone()], state.clock.now().timestamp())
            .await?;
    }
    Ok(Outcome::Processed)
}

/// Claims and processes one job; returns whether there was one.
pub async fn run_once(state: &AppState, worker: &str) -> Result<bool, StoreError> {
    let now = state.clock.now().timestamp();
    let Some(rid) = state.store.claim_job(worker, now, LEASE_SECS).await? else {
        return Ok(false);
    };
    let outcome = process(state, &rid).await?;
    let now = state.clock.now().timestamp();
    match outcome {
        Outcome::Processed => {
            state
                .store
                .finish_job(&rid, PacketStatus::Processed, None, now)
                .await?;
            tracing::info!(%rid, "packet processed");
        }
        Outcome::Quarantined(reason) => {
            tracing::warn!(%rid, %reason, "packet quarantined");
            state
                .store
                .finish_job(&rid, PacketStatus::Quarantined, Some(reason), now)
                .await?;
        }
    }
    Ok(true)
}

/// Runs a worker until the task is dropped: processes jobs, sleeps briefly when the queue is empty or the
/// database fails.
pub async fn worker_loop(state: AppState, worker: String) {
    loop {
        match run_once(&state, &worker).await {
            Ok(true) => {}
            Ok(false) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => {
                tracing::error!(error = %e, "pipeline worker: database error; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
