//! The registration workflow end to end: draft, answers, documents, captures, review, seal, approval,
//! export, recovery after interruptions, and the freeze on pending approvals.

use chrono::Duration;
use tessera_packet::types::BioAttribute;
use tessera_packet::{Decision, SignOff, SignOffRole};
use tessera_station::workflow::{state, verify_export};
use tessera_station::{ErrorCode, FreezeReason, StationError};

use crate::common::*;

#[test]
fn register_seal_approve_export_end_to_end() {
    let (env, mut st, machine) = init_station();
    let id = complete_adult_draft(&mut st);
    let review = st.review(id).unwrap();
    assert!(review.ready, "{:?}", review.problems);
    let sealed = st.seal_draft(id).unwrap();
    assert_eq!(sealed.rid.len(), 29);
    assert!(sealed.rid.starts_with("1000110077"));
    assert!(sealed.path.exists());
    assert!(sealed.receipt_html.contains(&sealed.rid));
    assert!(sealed.receipt_html.contains("<svg"));
    assert!(sealed.receipt_html.contains("Amina Diallo"));
    assert!(matches!(st.draft(id), Err(StationError::DraftNotFound { .. })));
    let dash = st.dashboard().unwrap();
    assert_eq!((dash.drafts, dash.awaiting_approval), (0, 1));

    // The packet verifies with the machine key, opens with the server key and carries what was captured.
    let mut p = tessera_packet::read_file(&sealed.path).unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(
        &hex::decode(&machine.public_key).unwrap().try_into().unwrap(),
    )
    .unwrap();
    p.verify(&vk).unwrap();
    assert_eq!(p.signoffs().len(), 1);
    assert_eq!(p.signoffs()[0].role, SignOffRole::Officer);
    assert_eq!(p.signoffs()[0].operator_id, "officer1");
    let content = p.open(&env.server).unwrap();
    assert_eq!(content.rid.to_string(), sealed.rid);
    assert_eq!(content.biometrics.len(), 13);
    assert_eq!(content.evidence.len(), 2);
    assert_eq!(
        content
            .evidence
            .iter()
            .find(|d| d.name == "proofOfAddress")
            .unwrap()
            .content,
        PDF
    );
    assert_eq!(content.identity["fullName"][0]["value"], "Amina Diallo");
    assert_eq!(content.identity["proofOfAddress"]["type"], "DOC002");
    assert_eq!(content.meta.operator_id, "officer1");
    assert!(content.meta.audit.iter().any(|e| e.action == "BIO_CAPTURE"));

    // An officer cannot approve; a supervisor can, with a signed sign-off appended to the packet.
    assert_eq!(
        st.approve(&sealed.rid).unwrap_err().code(),
        ErrorCode::NotPermitted
    );
    drop(st);
    let mut sup = login(&env, "super1", SUPERVISOR_PW).unwrap();
    assert_eq!(sup.pending().unwrap().len(), 1);
    let e = sup.reject(&sealed.rid, "BECAUSE").unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation);
    sup.approve(&sealed.rid).unwrap();
    assert_eq!(
        sup.approve(&sealed.rid).unwrap_err().code(),
        ErrorCode::InvalidState
    );
    let p = tessera_packet::read_file(&sealed.path).unwrap();
    let digest = p.manifest_digest();
    let s = p
        .signoffs()
        .iter()
        .find(|s| s.role == SignOffRole::Supervisor)
        .unwrap();
    assert_eq!(s.operator_id, "super1");
    assert_eq!(s.decision, Decision::Approved);
    s.verify(&digest).unwrap();

    // Export: files plus a signed manifest; packets become EXPORTED; tampering is detected.
    let out = env.home().join("usb");
    let report = sup.export(&out).unwrap();
    assert_eq!(report.rids, vec![sealed.rid.clone()]);
    let m = verify_export(&report.manifest).unwrap();
    assert_eq!(m.packets.len(), 1);
    assert_eq!(m.machine_public_key, machine.public_key);
    assert_eq!(sup.dashboard().unwrap().exported, 1);
    assert!(
        sup.export(&out.join("again")).unwrap().rids.is_empty(),
        "nothing exported twice"
    );
    let f = out.join(format!("{}.tpkt", sealed.rid));
    let mut bytes = std::fs::read(&f).unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 1;
    std::fs::write(&f, bytes).unwrap();
    assert!(verify_export(&report.manifest).is_err());
    tessera_station::audit::verify(sup.store().conn()).unwrap();
}

#[test]
fn rejected_packets_are_never_exported() {
    let (env, mut st, _) = init_station();
    let id = complete_adult_draft(&mut st);
    let rid = st.seal_draft(id).unwrap().rid;
    drop(st);
    let mut sup = login(&env, "super1", SUPERVISOR_PW).unwrap();
    sup.reject(&rid, "REJ_PHOTO_QUALITY").unwrap();
    let q = sup.queue(Some(state::REJECTED), 10, 0).unwrap();
    assert_eq!(q[0].reason.as_deref(), Some("REJ_PHOTO_QUALITY"));
    assert!(sup.export(&env.home().join("usb")).unwrap().rids.is_empty());
}

#[test]
fn incomplete_drafts_cannot_be_sealed_and_resume_later() {
    let (env, mut st, _) = init_station();
    let id = st.start_draft("NEW").unwrap();
    let mut a: tessera_station::forms::Answers =
        serde_json::from_value(crate::forms::adult_answers()).unwrap();
    a.demographics.remove("fullName");
    let problems = st.save_answers(id, a).unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.field == "fullName" && p.code == "REQUIRED")
    );
    let e = st.seal_draft(id).unwrap_err();
    assert!(e.to_string().contains("fullName"), "{e}");
    drop(st);
    // Resume after a new login: the draft and its answers are still there.
    let mut st = login(&env, "officer1", OFFICER_PW).unwrap();
    let drafts = st.my_drafts().unwrap();
    assert_eq!(drafts.len(), 1);
    assert!(drafts[0].body.answers.is_some());
    // Missing scans and captures are reported by review.
    let answers: tessera_station::forms::Answers =
        serde_json::from_value(crate::forms::adult_answers()).unwrap();
    st.save_answers(id, answers).unwrap();
    let r = st.review(id).unwrap();
    assert!(!r.ready);
    assert!(
        r.problems
            .iter()
            .any(|p| p.field == "proofOfAddress" && p.code == "DOCUMENT")
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.field == "biometrics.face" && p.code == "REQUIRED")
    );
}

#[test]
fn low_quality_capture_needs_retries_before_force_capture() {
    let (_env, mut st, _) = init_station();
    let id = st.start_draft("NEW").unwrap();
    let mut c = capture(BioAttribute::RightIndex, 20);
    let e = st.add_capture(id, c.clone()).unwrap_err();
    assert!(e.to_string().contains("capture again"), "{e}");
    c.force_captured = true;
    assert!(
        st.add_capture(id, c.clone()).is_err(),
        "force capture needs the retries used up"
    );
    c.retries = 3;
    st.add_capture(id, c).unwrap();
    let d = st.draft(id).unwrap();
    assert!(d.body.captures[&BioAttribute::RightIndex].force_captured);
}

#[test]
fn interrupted_seal_is_rolled_back_or_completed_at_login() {
    let (env, mut st, _) = init_station();
    // Interrupted before the file was complete: the draft comes back, a partial file disappears.
    let id = complete_adult_draft(&mut st);
    let conn = st.store().conn();
    // (as transaction 1 leaves it: sequence advanced, RID reserved on the draft)
    conn.execute("UPDATE station SET rid_sequence = 1", []).unwrap();
    conn.execute(
        "UPDATE drafts SET state = 'SEALING', rid = '10001100770000120261120090000' WHERE id = ?1",
        [id],
    )
    .unwrap();
    std::fs::write(
        env.home()
            .join("packets/10001100770000120261120090000.tpkt.partial"),
        b"half",
    )
    .unwrap();
    drop(st);
    let mut st = login(&env, "officer1", OFFICER_PW).unwrap();
    let r = st.last_recovery().clone();
    assert_eq!(
        r.seals_rolled_back,
        vec!["10001100770000120261120090000".to_string()]
    );
    assert_eq!(r.temp_files_removed, 1);
    assert_eq!(st.draft(id).unwrap().state, state::DRAFT);
    // Sealing again reuses the reserved RID: no gap, no duplicate.
    let sealed = st.seal_draft(id).unwrap();
    assert_eq!(sealed.rid, "10001100770000120261120090000");

    // Interrupted after the signed file was written but before the database recorded it: completed.
    let id2 = complete_adult_draft(&mut st);
    let sealed2 = st.seal_draft(id2).unwrap();
    let conn = st.store().conn();
    conn.execute("DELETE FROM packets WHERE rid = ?1", [&sealed2.rid])
        .unwrap();
    // (Sealing kept the draft as the supervisor's review copy; the crash came before that.)
    conn.execute("DELETE FROM drafts WHERE id = ?1", [id2]).unwrap();
    conn.execute(
        "INSERT INTO drafts (id, process, operator_id, state, body, rid, created_at, updated_at)
         VALUES (?1, 'NEW', 'officer1', 'SEALING', '{}', ?2, '2026-11-20T09:00:00Z', '2026-11-20T09:00:00Z')",
        rusqlite::params![id2, sealed2.rid],
    )
    .unwrap();
    drop(st);
    let st = login(&env, "officer1", OFFICER_PW).unwrap();
    let r = st.last_recovery().clone();
    assert_eq!(r.seals_completed, vec![sealed2.rid.clone()]);
    assert_eq!(st.dashboard().unwrap().awaiting_approval, 2);
    assert_eq!(st.dashboard().unwrap().drafts, 0);
}

#[test]
fn approval_in_the_file_but_not_the_database_is_reconciled() {
    let (env, mut st, _) = init_station();
    let id = complete_adult_draft(&mut st);
    let sealed = st.seal_draft(id).unwrap();
    // What a kill between appending the sign-off and committing leaves: a supervisor sign-off in the file only.
    let digest = tessera_packet::read_file(&sealed.path).unwrap().manifest_digest();
    let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let s = SignOff::create(
        SignOffRole::Supervisor,
        "super1",
        Decision::Approved,
        t0(),
        &digest,
        &key,
    )
    .unwrap();
    tessera_packet::append_signoff(&sealed.path, &s).unwrap();
    drop(st);
    let st = login(&env, "super1", SUPERVISOR_PW).unwrap();
    let r = st.last_recovery().clone();
    assert_eq!(r.decisions_reconciled, vec![sealed.rid.clone()]);
    assert_eq!(st.dashboard().unwrap().approved, 1);
}

#[test]
fn too_many_packets_awaiting_approval_freezes_registration() {
    let mut docs = master_docs();
    let d = docs.iter_mut().find(|d| d.name == "station-settings").unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&d.body).unwrap();
    v["freeze"]["maxPacketsAwaitingApproval"] = 1.into();
    d.body = v.to_string();
    let (env, mut st, _) = init_station_with(docs);
    let id = complete_adult_draft(&mut st);
    st.seal_draft(id).unwrap();
    let e = st.start_draft("NEW").unwrap_err();
    assert!(
        matches!(
            e,
            StationError::Frozen(FreezeReason::TooManyAwaitingApproval { count: 1, limit: 1 })
        ),
        "{e}"
    );
    let ce = tessera_station::CommandError::from(e);
    assert_eq!(ce.code, ErrorCode::Frozen);
    assert!(ce.freeze.is_some());
    env.clock.advance(Duration::minutes(1));
}

#[test]
fn a_failed_write_while_sealing_gives_the_draft_back_and_loses_nothing() {
    let (env, mut st, _) = init_station();
    let id = complete_adult_draft(&mut st);
    // Make the packet folder unwritable in a way root cannot override: replace it with a file.
    let packets = env.home().join("packets");
    std::fs::remove_dir(&packets).unwrap();
    std::fs::write(&packets, b"not a folder").unwrap();
    let e = st.seal_draft(id).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Packet, "{e}");
    assert!(
        e.to_string().contains("packet 1000110077"),
        "the error names the packet: {e}"
    );
    let d = st.draft(id).unwrap();
    assert_eq!(d.state, state::DRAFT, "the draft is kept for a retry");
    std::fs::remove_file(&packets).unwrap();
    std::fs::create_dir(&packets).unwrap();
    let sealed = st.seal_draft(id).unwrap();
    assert!(
        sealed.rid.starts_with("1000110077000012026"),
        "the reserved RID is reused: {}",
        sealed.rid
    );
    assert_eq!(st.dashboard().unwrap().awaiting_approval, 1);
}

#[test]
fn the_supervisor_reviews_the_draft_copy_until_the_decision_and_drafts_resume_at_their_step() {
    let (env, mut st, _) = init_station();
    let id = complete_adult_draft(&mut st);
    // Where the officer is in the wizard: kept in the draft, not in the audit trail.
    let audit_before = st.draft(id).unwrap().body.audit.len();
    st.set_draft_step(id, "documents").unwrap();
    st.set_draft_step(id, "documents").unwrap();
    let d = st.draft(id).unwrap();
    assert_eq!(d.body.resume_step.as_deref(), Some("documents"));
    assert_eq!(d.body.audit.len(), audit_before);
    assert!(st.set_draft_step(id, "../../etc").is_err());
    // The officer previews a stored document of their draft.
    let (mime, bytes) = st.draft_document(id, "proofOfIdentity").unwrap();
    assert_eq!(mime, "image/jpeg");
    assert!(bytes.starts_with(&[0xFF, 0xD8]));
    assert!(st.draft_document(id, "proofOfRelationship").is_err());

    let sealed = st.seal_draft(id).unwrap();
    assert_eq!(
        st.dashboard().unwrap().drafts,
        0,
        "the review copy is not a draft"
    );
    assert!(st.my_drafts().unwrap().is_empty());
    // Officers cannot read it; the document of a sealed draft is not the officer's to preview any more.
    assert!(matches!(
        st.review_copy(&sealed.rid),
        Err(StationError::NotPermitted { .. })
    ));
    assert!(st.draft_document(id, "proofOfIdentity").is_err());
    drop(st);

    let mut sup = login(&env, "super1", SUPERVISOR_PW).unwrap();
    let copy = sup.review_copy(&sealed.rid).unwrap();
    assert_eq!(copy.id, id);
    let answers = copy.body.answers.clone().unwrap();
    assert!(
        serde_json::to_string(&answers.demographics)
            .unwrap()
            .contains("Amina Diallo")
    );
    assert_eq!(copy.body.captures.len(), 13);
    let (mime, _) = sup.draft_document(copy.id, "proofOfAddress").unwrap();
    assert_eq!(mime, "application/pdf");
    // The decision deletes the copy (documents included); the packet itself is untouched.
    sup.approve(&sealed.rid).unwrap();
    assert!(matches!(
        sup.review_copy(&sealed.rid),
        Err(StationError::PacketNotFound { .. })
    ));
    let blobs: i64 = sup
        .store()
        .conn()
        .query_row(
            "SELECT count(*) FROM draft_blobs WHERE draft_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(blobs, 0);
    assert_eq!(sup.dashboard().unwrap().approved, 1);
}
