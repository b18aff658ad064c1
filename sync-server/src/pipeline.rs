//! The durable processing pipeline. Jobs live in the database (`jobs` table, one per received packet,
//! enqueued in the same transaction that accepts the upload) and are claimed with a lease, on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, so several workers (and processes) share one database. A worker that dies leaves
//! its lease to expire and the job is taken again: processing is at-least-once and every stage is
//! idempotent (UIN allocation returns the RID's UIN; identity, gallery, credential and outbox rows are keyed
//! by RID or UIN and kept when they exist).
//!
//! Stages, in order:
//! 1. **verify** the machine signature, every hash and sign-off signature, **decrypt** with the packet keys,
//!    check the content's RID and machine. Failure → `QUARANTINED` (`verify:*`, `decrypt:*`, `read:*`).
//! 2. **validate** ([`crate::validate`]): ID schema, packet-type rules, documents, biometrics, sign-offs by
//!    registered operator keys. Failure → `REJECTED` (`validate:*`), resident notified.
//! 3. **demographic dedupe** (blocking key) and **biometric 1:N** ([`crate::dedupe`]). Candidates → the
//!    packet is held `ON_HOLD` (`adjudication:demographic`, `adjudication:biometric` or both) for
//!    [`crate::adjudication`]; a `DUPLICATE` decision ends it `DUPLICATE`, `NOT_DUPLICATE` resumes here
//!    without dedupe.
//! 4. **UIN** allocation from the pool.
//! 5. **ID repository** ([`crate::idrepo`]): the identity, documents and finger templates, envelope-encrypted;
//!    the blocking key and gallery templates for later dedupe.
//! 6. **credential** ([`crate::credential`]), read back from the repository by RID: signed VC and QR payload,
//!    stored and written to `<data_dir>/credentials/<RID>.json` and `<RID>.qr.txt`; the resident notification
//!    queued ([`crate::notify`]); the packet `PROCESSED`.
//!
//! LOST packets are verified and validated, then searched 1:N (`lost`): the identity found is sent to the
//! resident through the outbox, never to the station. UPDATE packets are checked 1:1 against the identity
//! named in the packet and applied (`update`). CORRECTION packets are verified and validated, then left
//! `ON_HOLD` with reason `unsupported:<TYPE>` (not dropped; reprocess them once that flow exists).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tessera_biometrics::template::Template;
use tessera_packet::PacketContent;
use tessera_packet::ids::Rid;
use tessera_packet::manifest::SignOff;
use tessera_packet::types::PacketType;
use tessera_packet::wire::PacketStatus;

use crate::AppState;
use crate::credential;
use crate::dedupe;
use crate::device_check;
use crate::idrepo::{self, IdentityDoc, StoredDocument};
use crate::notify::{self, Notification};
use crate::store::{Candidate, IdentityLookup, NewIdentity, StoreError, case_status};
use crate::validate::{self, Rules};

/// How long validation rules are cached before they are read again from the sync tables.
pub const RULES_TTL_SECS: i64 = 60;

/// What processing one packet decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Processed: a NEW packet got this UIN.
    Processed(String),
    /// Quarantined (tampered, undecryptable) with a reason code.
    Quarantined(String),
    /// Rejected by validation with a reason code.
    Rejected(String),
    /// Held for manual adjudication with a reason code.
    Held(String),
    /// Decided a duplicate of this UIN.
    Duplicate(String),
    /// An UPDATE packet was applied to this identity.
    Updated(String),
    /// A LOST packet found this identity (not shown to the station).
    Found(String),
    /// A packet type whose processing is not implemented yet (left `ON_HOLD`).
    Unsupported(String),
}

fn task_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Task(e.to_string())
}

fn corrupt(what: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: e.to_string(),
    }
}

/// Verifies and opens a packet: the content and its sign-offs, or a quarantine reason. When no key in
/// force opens it, the key files are read again once (a rotation by another process or the CLI).
async fn open_packet(
    state: &AppState,
    rid: &Rid,
) -> Result<Result<(PacketContent, Vec<SignOff>), String>, StoreError> {
    let first = open_with(state, rid, state.packet_keys()).await?;
    if matches!(&first, Err(r) if r.starts_with("decrypt:")) {
        match state.reload_packet_keys() {
            Ok(true) => return open_with(state, rid, state.packet_keys()).await,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "packet-recipient keys could not be read again"),
        }
    }
    Ok(first)
}

async fn open_with(
    state: &AppState,
    rid: &Rid,
    keys: Arc<Vec<crate::PacketKey>>,
) -> Result<Result<(PacketContent, Vec<SignOff>), String>, StoreError> {
    let Some(machine) = state.store.machine(&rid.machine_id()).await? else {
        return Ok(Err("verify:machine_unknown".into()));
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&machine.public_key) else {
        return Ok(Err("verify:machine_key_invalid".into()));
    };
    let bytes = match state.blob_store.get(&crate::blobs::packet_key(rid)).await {
        Ok(b) => b,
        Err(crate::blobs::BlobError::NotFound { .. }) => return Ok(Err("read:packet_missing".into())),
        // Storage unreachable: not the packet's fault; the job is retried after its lease.
        Err(e) => return Err(StoreError::Task(e.to_string())),
    };
    let expected = rid.clone();
    tokio::task::spawn_blocking(move || -> Result<(PacketContent, Vec<SignOff>), String> {
        let mut packet = tessera_packet::SealedPacket::read(std::io::Cursor::new(bytes))
            .map_err(|e| format!("read:{}", e.kind()))?;
        packet.verify(&key).map_err(|e| format!("verify:{}", e.kind()))?;
        let signoffs = packet.signoffs().to_vec();
        let mut last = String::from("decrypt:no_packet_key");
        for (_, id) in keys.iter() {
            match packet.open(id) {
                Ok(content) => {
                    if content.rid != expected || content.meta.machine_id != expected.machine_id() {
                        return Err("validate:rid_mismatch".into());
                    }
                    return Ok((content, signoffs));
                }
                Err(e) => last = format!("decrypt:{}", e.kind()),
            }
        }
        Err(last)
    })
    .await
    .map_err(task_err)
}

/// The validation rules, cached for [`RULES_TTL_SECS`].
pub async fn rules(state: &AppState) -> Result<Arc<Rules>, StoreError> {
    let now = state.clock.now().timestamp();
    if let Some((at, r)) = state.rules.read().await.as_ref()
        && now - at < RULES_TTL_SECS
    {
        return Ok(Arc::clone(r));
    }
    let fresh = Arc::new(Rules::load(state.store.as_ref()).await?);
    *state.rules.write().await = Some((now, Arc::clone(&fresh)));
    Ok(fresh)
}

fn primary_value(identity: &serde_json::Value, field: &str, lang: Option<&str>) -> String {
    match identity.get(field) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(a)) => {
            let pick = |e: &serde_json::Value| e.get("value").and_then(|v| v.as_str()).map(str::to_owned);
            a.iter()
                .find(|e| lang.is_some() && e.get("language").and_then(|l| l.as_str()) == lang)
                .and_then(pick)
                .or_else(|| a.first().and_then(pick))
                .unwrap_or_default()
        }
        _ => String::new(),
    }
}

async fn notify_outcome(
    state: &AppState,
    content: &PacketContent,
    kind: &str,
    uin: Option<String>,
    reason: Option<String>,
) -> Result<(), StoreError> {
    let (channel, address) = notify::contact(&content.identity);
    notify::enqueue(
        state,
        &Notification {
            rid: content.rid.to_string(),
            kind: kind.to_owned(),
            uin,
            reason,
            channel,
            address,
            language: content.meta.languages.first().cloned(),
        },
    )
    .await
}

async fn reject(state: &AppState, content: &PacketContent, code: String) -> Result<Outcome, StoreError> {
    reject_with(state, content, notify::kind::REJECTED, format!("validate:{code}")).await
}

/// Rejects the packet with `reason`: the resident is notified (`kind`) and the job finished `REJECTED`.
async fn reject_with(
    state: &AppState,
    content: &PacketContent,
    kind: &str,
    reason: String,
) -> Result<Outcome, StoreError> {
    notify_outcome(state, content, kind, None, Some(reason.clone())).await?;
    state
        .store
        .finish_job(
            &content.rid,
            PacketStatus::Rejected,
            Some(reason.clone()),
            state.clock.now().timestamp(),
        )
        .await?;
    Ok(Outcome::Rejected(reason))
}

/// Runs every stage for one packet and records the result (job finished, held or left leased on a database
/// error, which is returned so the job is retried after its lease).
pub async fn process(state: &AppState, rid: &Rid) -> Result<Outcome, StoreError> {
    let now = || state.clock.now().timestamp();
    // A packet the importer quarantined (it differs from its signed export manifest) keeps that reason.
    if let Some(p) = state.store.packet(rid).await?
        && p.status == PacketStatus::Quarantined
        && let Some(reason) = p.reason.filter(|r| r.starts_with("import:"))
    {
        return Ok(Outcome::Quarantined(reason));
    }
    let (content, signoffs) = match open_packet(state, rid).await? {
        Ok(opened) => opened,
        Err(reason) => {
            state
                .store
                .finish_job(rid, PacketStatus::Quarantined, Some(reason.clone()), now())
                .await?;
            return Ok(Outcome::Quarantined(reason));
        }
    };

    // Validation.
    let rules = rules(state).await?;
    if !rules.has_schema() {
        return reject(state, &content, "id_schema_unknown".into()).await;
    }
    if let Err(r) = validate::check_content(&rules, &content) {
        return reject(state, &content, r.0).await;
    }
    if let Err(r) = device_check::check(&rules.devices, state.settings.device_signatures, &content) {
        return reject(state, &content, r.0).await;
    }
    let mut known: HashMap<String, Vec<[u8; 32]>> = HashMap::new();
    for op in validate::signoff_operators(&content, &signoffs) {
        let keys = state
            .store
            .operator_keys(&op)
            .await?
            .into_iter()
            .filter(|k| k.center_id == content.meta.center_id)
            .map(|k| k.public_key)
            .collect();
        known.insert(op, keys);
    }
    if let Err(r) = validate::check_signoffs(&content, &signoffs, &known) {
        return reject(state, &content, r.0).await;
    }
    let received_at = state.store.packet(rid).await?.map_or(now(), |p| p.received_at);
    let machine = state.store.machine(&content.meta.machine_id).await?;
    let supervisor = signoffs
        .iter()
        .rev()
        .find(|s| s.role == tessera_packet::manifest::SignOffRole::Supervisor)
        .map(|s| s.operator_id.clone());
    let creation = validate::check_creation(
        state.store.as_ref(),
        &rules,
        state.settings.validation.working_day,
        i64::from(state.settings.validation.clock_skew_secs),
        &validate::CreationFacts {
            center: content.meta.center_id.as_str(),
            machine: content.meta.machine_id.as_str(),
            officer: &content.meta.operator_id,
            supervisor: supervisor.as_deref(),
            created_at: content.created_at.timestamp(),
            received_at,
            machine_requested_at: machine.map(|m| m.requested_at),
        },
    )
    .await?;
    for flag in &creation.flags {
        // Idempotent across re-runs of the job: a flag already in the history is not added again.
        if !state
            .store
            .packet_history(rid)
            .await?
            .iter()
            .any(|e| e.reason.as_deref() == Some(flag.as_str()))
        {
            state.store.add_packet_flag(rid, flag, now()).await?;
        }
    }
    if let Some(r) = creation.rejection {
        return reject(state, &content, r.0).await;
    }
    if content.packet_type == PacketType::Lost {
        return lost(state, content).await;
    }
    if content.packet_type == PacketType::Update {
        return update(state, content).await;
    }
    if content.packet_type != PacketType::New {
        let reason = format!("unsupported:{}", content.packet_type);
        state
            .store
            .finish_job(rid, PacketStatus::OnHold, Some(reason.clone()), now())
            .await?;
        return Ok(Outcome::Unsupported(reason));
    }

    // Adjudication already decided?
    let case = state.store.adjudication_case(rid).await?;
    if let Some(c) = &case {
        if c.status == case_status::DUPLICATE {
            let of = c.duplicate_of.clone().unwrap_or_default();
            notify_outcome(state, &content, notify::kind::DUPLICATE, None, None).await?;
            state
                .store
                .finish_job(
                    rid,
                    PacketStatus::Duplicate,
                    Some("adjudication:duplicate".into()),
                    now(),
                )
                .await?;
            return Ok(Outcome::Duplicate(of));
        }
        if c.status == case_status::PENDING {
            let reason = "adjudication:pending".to_owned();
            state
                .store
                .hold_for_adjudication(rid, c.candidates.clone(), &reason, now())
                .await?;
            return Ok(Outcome::Held(reason));
        }
    }

    // Templates (needed for the biometric search and for the gallery).
    let (content, templates) = tokio::task::spawn_blocking(move || {
        let t = dedupe::extract_templates(&content);
        (content, t)
    })
    .await
    .map_err(task_err)?;
    let block = dedupe::blocking_key(&content);

    // Dedupe, unless an adjudicator already said NOT_DUPLICATE, or an earlier run of this job already passed
    // dedupe and stored the identity (it would find itself).
    let stored = state
        .store
        .identity(IdentityLookup::Rid(rid.clone()))
        .await?
        .is_some();
    if case.is_none() && !stored {
        let mut candidates: Vec<Candidate> =
            dedupe::demographic_candidates(state.store.as_ref(), block.as_deref()).await?;
        if !templates.is_empty() {
            state
                .gallery_loader
                .refresh(&state.gallery, state.store.as_ref())
                .await?;
            let gallery = Arc::clone(&state.gallery);
            let probe = templates.clone();
            let matches = tokio::task::spawn_blocking(move || gallery.search(&probe))
                .await
                .map_err(task_err)?;
            candidates.extend(bio_candidates(state, matches.into_iter().take(20).collect()).await?);
        }
        if !candidates.is_empty() {
            let demo = candidates.iter().any(|c| c.kind == "demographic");
            let bio = candidates.iter().any(|c| c.kind == "biometric");
            let reason = match (demo, bio) {
                (true, true) => "adjudication:demographic+biometric",
                (true, false) => "adjudication:demographic",
                _ => "adjudication:biometric",
            }
            .to_owned();
            state
                .store
                .hold_for_adjudication(rid, candidates, &reason, now())
                .await?;
            return Ok(Outcome::Held(reason));
        }
    }

    // UIN.
    let cipher = crate::uin::UinCipher::new(&state.keys.uin_salt);
    let uin = crate::uin::allocate(state.store.as_ref(), &cipher, vec![rid.clone()], now())
        .await?
        .into_iter()
        .next()
        .map(|(_, u)| u)
        .ok_or(StoreError::PoolEmpty)?;

    // ID repository.
    let uin_hash = idrepo::uin_hash(&state.keys.uin_salt, &uin);
    let doc = IdentityDoc {
        uin: uin.clone(),
        rid: rid.to_string(),
        id_schema_version: content.id_schema_version.clone(),
        identity: content.identity.clone(),
        languages: content.meta.languages.clone(),
        documents: content
            .evidence
            .iter()
            .chain(&content.optional)
            .map(|d| StoredDocument {
                name: d.name.clone(),
                category: d.category.clone(),
                doc_type: d.doc_type.clone(),
                mime: d.mime.clone(),
                content_b64: STANDARD.encode(&d.content),
            })
            .collect(),
        finger_templates: templates
            .iter()
            .map(|t| (t.position.code(), STANDARD.encode(t.to_bytes())))
            .collect(),
        center_id: content.meta.center_id.to_string(),
        registered_at: content.created_at.to_rfc3339(),
    };
    let plain = serde_json::to_vec(&doc).map_err(|e| corrupt("identity record", e))?;
    let sealed =
        idrepo::seal(state.master_key(), &uin_hash, &plain).map_err(|e| corrupt("identity record", e))?;
    state
        .store
        .store_identity(NewIdentity {
            rid: rid.clone(),
            uin: uin.clone(),
            uin_hash,
            key_id: sealed.key_id,
            wrapped_key: sealed.wrapped_key,
            ciphertext: sealed.ciphertext,
            blocking_key: block.unwrap_or_default(),
            templates: templates
                .iter()
                .map(|t| (t.position.code(), t.to_bytes()))
                .collect(),
            at: now(),
        })
        .await?;
    state
        .gallery_loader
        .refresh(&state.gallery, state.store.as_ref())
        .await?;

    // Credential, from the repository record.
    let doc = fetch(state, IdentityLookup::Rid(rid.clone()))
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "identity",
            id: rid.to_string(),
        })?;
    let body = write_credential(state, rid, &uin, &doc, face_image(&content)).await?;
    notify_outcome(state, &content, notify::kind::UIN_ISSUED, Some(uin.clone()), None).await?;
    state.store.store_credential(rid, &uin, &body, now()).await?;
    Ok(Outcome::Processed(uin))
}

/// 1:1 of a packet's finger templates against an identity's stored ones (same positions): the fused
/// `-log10(FMR)` and the number of fingers compared.
pub fn verify_fingers(probe: &[Template], stored: &[(u8, String)]) -> (f64, usize) {
    use tessera_biometrics::calibration;
    use tessera_biometrics::mcc::{Matcher, MccTemplate};
    let mut fmrs = Vec::new();
    for t in probe {
        let code = t.position.code();
        let Some(bytes) = stored
            .iter()
            .find(|(p, _)| *p == code)
            .and_then(|(_, b64)| STANDARD.decode(b64).ok())
        else {
            continue;
        };
        let Ok(enrolled) = Template::from_bytes(&bytes) else {
            continue;
        };
        let mut m = Matcher::new(MccTemplate::new(&t.minutiae));
        fmrs.push(calibration::fmr_for_score(
            m.compare(&MccTemplate::new(&enrolled.minutiae)),
        ));
    }
    if fmrs.is_empty() {
        return (0.0, 0);
    }
    (-calibration::fuse(&fmrs).log10(), fmrs.len())
}

/// An UPDATE packet: the identity named by `meta.uin` must exist (`update:uin_unknown`); the packet's fingers
/// are compared 1:1 with the stored templates of the same positions and must reach the gallery threshold
/// (`bio_index_min_score`; `update:biometric_missing` when no position is in common,
/// `update:biometric_mismatch` below it). Then the packet's identity fields replace the record's (the packet
/// carries the changed groups' fields), its documents replace those of the same category, and with the
/// `Biometrics` group its finger templates replace the stored ones (gallery rows rewritten); the record is
/// re-encrypted, a new credential is issued under the UPDATE's RID and the resident notified (`UPDATED`).
async fn update(state: &AppState, content: PacketContent) -> Result<Outcome, StoreError> {
    let now = || state.clock.now().timestamp();
    let rid = content.rid.clone();
    let uin = content
        .meta
        .uin
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let Some(mut doc) = fetch_by_uin(state, &uin).await? else {
        return reject_with(
            state,
            &content,
            notify::kind::REJECTED,
            "update:uin_unknown".into(),
        )
        .await;
    };
    let stored = doc.finger_templates.clone();
    let (content, templates, (score, compared)) = tokio::task::spawn_blocking(move || {
        let t = dedupe::extract_templates(&content);
        let v = verify_fingers(&t, &stored);
        (content, t, v)
    })
    .await
    .map_err(task_err)?;
    let min = f64::from(state.settings.bio_index_min_score) / 100.0;
    if compared == 0 || score < min {
        let reason = if compared == 0 {
            "update:biometric_missing"
        } else {
            "update:biometric_mismatch"
        };
        tracing::info!(%rid, compared, score, "UPDATE refused: fingers do not match the identity");
        return reject_with(state, &content, notify::kind::REJECTED, reason.into()).await;
    }
    // Apply the changed groups.
    if let (Some(rec), Some(new)) = (doc.identity.as_object_mut(), content.identity.as_object()) {
        for (k, v) in new {
            rec.insert(k.clone(), v.clone());
        }
    }
    for d in content.evidence.iter().chain(&content.optional) {
        doc.documents.retain(|old| old.category != d.category);
        doc.documents.push(StoredDocument {
            name: d.name.clone(),
            category: d.category.clone(),
            doc_type: d.doc_type.clone(),
            mime: d.mime.clone(),
            content_b64: STANDARD.encode(&d.content),
        });
    }
    let biometrics_changed = content.meta.changed_groups.iter().any(|g| g == "Biometrics");
    let mut new_templates = Vec::new();
    if biometrics_changed && !templates.is_empty() {
        let mut merged: Vec<(u8, String)> = doc
            .finger_templates
            .iter()
            .filter(|(p, _)| !templates.iter().any(|t| t.position.code() == *p))
            .cloned()
            .collect();
        merged.extend(
            templates
                .iter()
                .map(|t| (t.position.code(), STANDARD.encode(t.to_bytes()))),
        );
        for (p, b64) in &merged {
            if let Ok(b) = STANDARD.decode(b64) {
                new_templates.push((*p, b));
            }
        }
        doc.finger_templates = merged;
    }
    if let Some(lang) = content.meta.languages.first()
        && !doc.languages.contains(lang)
    {
        doc.languages.push(lang.clone());
    }
    let uin_hash = idrepo::uin_hash(&state.keys.uin_salt, &uin);
    let plain = serde_json::to_vec(&doc).map_err(|e| corrupt("identity record", e))?;
    let sealed =
        idrepo::seal(state.master_key(), &uin_hash, &plain).map_err(|e| corrupt("identity record", e))?;
    let block = dedupe::blocking_key(&PacketContent {
        identity: doc.identity.clone(),
        ..content.clone()
    });
    state
        .store
        .update_identity(NewIdentity {
            rid: rid.clone(),
            uin: uin.clone(),
            uin_hash,
            key_id: sealed.key_id,
            wrapped_key: sealed.wrapped_key,
            ciphertext: sealed.ciphertext,
            blocking_key: block.unwrap_or_default(),
            templates: new_templates,
            at: now(),
        })
        .await?;
    state
        .gallery_loader
        .refresh(&state.gallery, state.store.as_ref())
        .await?;
    let body = write_credential(state, &rid, &uin, &doc, face_image(&content)).await?;
    notify_outcome(state, &content, notify::kind::UPDATED, Some(uin.clone()), None).await?;
    state.store.store_credential(&rid, &uin, &body, now()).await?;
    Ok(Outcome::Updated(uin))
}

/// A LOST packet: 1:N of its fingers against the gallery. Found → `PROCESSED` with reason `lost:found` (the
/// station sees only that; the UIN goes to the resident through the outbox, to the contact in the packet or
/// else the one on record); several persons above the threshold → `ON_HOLD` (`lost:ambiguous`) for an
/// officer; nobody → `REJECTED` (`lost:not_found`), resident notified; no usable finger → `REJECTED`
/// (`lost:no_fingers`).
async fn lost(state: &AppState, content: PacketContent) -> Result<Outcome, StoreError> {
    let now = || state.clock.now().timestamp();
    let rid = content.rid.clone();
    // An officer decided an ambiguous case (`crate::adjudication`).
    if let Some(case) = state.store.adjudication_case(&rid).await? {
        use crate::adjudication::{LOST_AMBIGUOUS, lost_status};
        match case.status.as_str() {
            lost_status::FOUND => {
                let uin = case.duplicate_of.unwrap_or_default();
                return lost_found(state, &content, &uin).await;
            }
            lost_status::NOT_FOUND => {
                return reject_with(
                    state,
                    &content,
                    notify::kind::LOST_NOT_FOUND,
                    "lost:not_found".into(),
                )
                .await;
            }
            _ => {
                state
                    .store
                    .hold_for_adjudication(&rid, case.candidates, LOST_AMBIGUOUS, now())
                    .await?;
                return Ok(Outcome::Held(LOST_AMBIGUOUS.to_owned()));
            }
        }
    }
    let (content, templates) = tokio::task::spawn_blocking(move || {
        let t = dedupe::extract_templates(&content);
        (content, t)
    })
    .await
    .map_err(task_err)?;
    if templates.is_empty() {
        return reject_with(state, &content, notify::kind::REJECTED, "lost:no_fingers".into()).await;
    }
    state
        .gallery_loader
        .refresh(&state.gallery, state.store.as_ref())
        .await?;
    let gallery = Arc::clone(&state.gallery);
    let matches = tokio::task::spawn_blocking(move || gallery.search(&templates))
        .await
        .map_err(task_err)?;
    match matches.as_slice() {
        [] => {
            reject_with(
                state,
                &content,
                notify::kind::LOST_NOT_FOUND,
                "lost:not_found".into(),
            )
            .await
        }
        [found] => {
            let uin = bio_candidates(state, vec![found.clone()])
                .await?
                .into_iter()
                .next()
                .map(|c| c.uin)
                .ok_or_else(|| StoreError::NotFound {
                    what: "identity of a gallery entry",
                    id: found.uin_hash.get(..12).unwrap_or_default().to_owned(),
                })?;
            lost_found(state, &content, &uin).await
        }
        several => {
            let reason = crate::adjudication::LOST_AMBIGUOUS.to_owned();
            let candidates = bio_candidates(state, several.to_vec()).await?;
            state
                .store
                .hold_for_adjudication(&rid, candidates, &reason, now())
                .await?;
            Ok(Outcome::Held(reason))
        }
    }
}

/// Biometric candidates from gallery matches: the gallery knows identities by UIN hash; the UINs come from
/// their sealed form in the store. A hash with no identity (removed since) is left out.
async fn bio_candidates(
    state: &AppState,
    matches: Vec<dedupe::BioMatch>,
) -> Result<Vec<Candidate>, StoreError> {
    let uins: std::collections::HashMap<String, String> = state
        .store
        .person_uins(matches.iter().map(|m| m.uin_hash.clone()).collect())
        .await?
        .into_iter()
        .collect();
    Ok(matches
        .into_iter()
        .filter_map(|m| {
            uins.get(&m.uin_hash).map(|uin| Candidate {
                uin: uin.clone(),
                kind: "biometric".into(),
                score: f64::from((m.score * 1000.0).round() / 1000.0),
                fingers_compared: m.fingers,
            })
        })
        .collect())
}

/// A LOST packet's identity is `uin`: the UIN goes to the resident through the outbox (to the contact in the
/// packet, else the one on record), the packet ends `PROCESSED` with reason `lost:found`.
async fn lost_found(state: &AppState, content: &PacketContent, uin: &str) -> Result<Outcome, StoreError> {
    let (mut channel, mut address) = notify::contact(&content.identity);
    if channel.is_none()
        && let Some(doc) = fetch_by_uin(state, uin).await?
    {
        (channel, address) = notify::contact(&doc.identity);
    }
    notify::enqueue(
        state,
        &Notification {
            rid: content.rid.to_string(),
            kind: notify::kind::LOST_FOUND.to_owned(),
            uin: Some(uin.to_owned()),
            reason: None,
            channel,
            address,
            language: content.meta.languages.first().cloned(),
        },
    )
    .await?;
    state
        .store
        .finish_job(
            &content.rid,
            PacketStatus::Processed,
            Some("lost:found".into()),
            state.clock.now().timestamp(),
        )
        .await?;
    Ok(Outcome::Found(uin.to_owned()))
}

/// Writes a file atomically (temporary file, fsync, rename) with mode 0600.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Reads and decrypts an identity record from the repository.
pub async fn fetch(state: &AppState, lookup: IdentityLookup) -> Result<Option<IdentityDoc>, StoreError> {
    let Some(rec) = state.store.identity(lookup).await? else {
        return Ok(None);
    };
    let sealed = idrepo::Sealed {
        key_id: rec.key_id,
        wrapped_key: rec.wrapped_key,
        ciphertext: rec.ciphertext,
    };
    let plain = idrepo::open(&state.master_keys, &rec.uin_hash, &sealed)
        .map_err(|e| corrupt("identity record", e))?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|e| corrupt("identity record", e))
}

/// Reads an identity by UIN (salted hash lookup).
pub async fn fetch_by_uin(state: &AppState, uin: &str) -> Result<Option<IdentityDoc>, StoreError> {
    fetch(
        state,
        IdentityLookup::UinHash(idrepo::uin_hash(&state.keys.uin_salt, uin)),
    )
    .await
}

/// Claims and processes one job; returns whether there was one.
pub async fn run_once(state: &AppState, worker: &str) -> Result<bool, StoreError> {
    let now = state.clock.now().timestamp();
    let lease = i64::from(state.settings.job_lease_secs);
    let Some(rid) = state.store.claim_job(worker, now, lease).await? else {
        return Ok(false);
    };
    let started = std::time::Instant::now();
    let outcome = process(state, &rid).await?;
    let label = match &outcome {
        Outcome::Processed(_) => {
            tracing::info!(%rid, "packet processed: UIN issued");
            "processed"
        }
        Outcome::Quarantined(reason) => {
            tracing::warn!(%rid, %reason, "packet quarantined");
            "quarantined"
        }
        Outcome::Rejected(reason) => {
            tracing::info!(%rid, %reason, "packet rejected");
            "rejected"
        }
        Outcome::Held(reason) => {
            tracing::info!(%rid, %reason, "packet held for adjudication");
            "held"
        }
        Outcome::Duplicate(_) => {
            tracing::info!(%rid, "packet is a duplicate");
            "duplicate"
        }
        Outcome::Updated(_) => {
            tracing::info!(%rid, "UPDATE packet applied, credential issued");
            "updated"
        }
        Outcome::Found(_) => {
            tracing::info!(%rid, "LOST packet: identity found, resident notified");
            "lost_found"
        }
        Outcome::Unsupported(reason) => {
            tracing::warn!(%rid, %reason, "packet type not processed yet");
            "unsupported"
        }
    };
    state
        .metrics
        .pipeline_outcome(label, started.elapsed().as_secs_f64());
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

/// The packet's face image record (ISO/IEC 19794-5), if one was captured.
fn face_image(content: &PacketContent) -> Option<Vec<u8>> {
    content
        .biometrics
        .iter()
        .find(|b| b.attribute == tessera_packet::types::BioAttribute::Face && !b.image.is_empty())
        .map(|b| b.image.clone())
}

/// Issues the credential of `rid` for `uin` from the repository record `doc` (or finds the one issued before, so
/// a retried job issues nothing new) and writes its files to the credentials folder: `<rid>.json`, `<rid>.qr.txt`
/// and the printable card `<rid>.card.pdf` ([`crate::card`], with the packet's `face` image when there is one).
/// Returns the credential's body.
async fn write_credential(
    state: &AppState,
    rid: &Rid,
    uin: &str,
    doc: &IdentityDoc,
    face: Option<Vec<u8>>,
) -> Result<String, StoreError> {
    let lang = doc.languages.first().map(String::as_str);
    let subject = credential::Subject {
        uin: uin.to_owned(),
        full_name: primary_value(&doc.identity, "fullName", lang),
        date_of_birth: primary_value(&doc.identity, "dateOfBirth", None),
        gender: primary_value(&doc.identity, "gender", lang),
    };
    let at = state.clock.now();
    let body = match state.store.credential(rid).await? {
        Some((_, body)) => body,
        None => {
            serde_json::to_string_pretty(&credential::issue(&state.keys.issuer, rid.as_str(), &subject, at))
                .map_err(|e| corrupt("credential", e))?
        }
    };
    let qr = credential::qr_payload(&state.keys.issuer, &subject, at);
    let card = crate::card::CardData {
        full_name: subject.full_name.clone(),
        uin: uin.to_owned(),
        date_of_birth: subject.date_of_birth.clone(),
        gender: subject.gender.clone(),
        issuer: credential::issuer_id(&state.keys.issuer.verifying_key()),
        issued: at.format("%Y-%m-%d").to_string(),
        qr_payload: qr.clone(),
    };
    let dir = state.credentials_dir.clone();
    let name = rid.to_string();
    let body_for_file = body.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let photo = face.as_deref().and_then(crate::card::photo_from_face_record);
        let pdf = crate::card::card_pdf(&card, photo.as_ref()).map_err(std::io::Error::other)?;
        write_private(&dir.join(format!("{name}.json")), body_for_file.as_bytes())?;
        write_private(&dir.join(format!("{name}.qr.txt")), format!("{qr}\n").as_bytes())?;
        write_private(&dir.join(format!("{name}.card.pdf")), &pdf)
    })
    .await
    .map_err(task_err)?
    .map_err(|e| StoreError::Task(format!("writing the credential files: {e}")))?;
    Ok(body)
}
