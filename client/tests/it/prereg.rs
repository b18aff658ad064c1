//! Prefill from a pre-registration synced from the real server (`pre-registrations` kind, center-scoped):
//! by id, by a QR scanner's payload, unknown and other-center ids.

use serde_json::json;
use tessera_packet::wire::SyncKind;
use tessera_station::prereg::parse_reference;
use tessera_station::{ErrorCode, StationError};

use crate::sync::{Server, env_with, now_clock, ready_station};

const PRID: &str = "10001200000042";
const FAR: &str = "10002200000077";

async fn publish(server: &Server, scope: &str, key: &str, body: serde_json::Value) {
    server
        .state()
        .store
        .put_sync_item(SyncKind::PreRegistrations, scope, key, Some(body))
        .await
        .unwrap();
}

#[test]
fn references_are_read_from_ids_and_qr_payloads() {
    for s in [
        PRID,
        "  10001200000042\\n",
        "https://prereg.example/booking?prid=10001200000042&lang=eng",
        r#"{"prid":"10001200000042","name":"x"}"#,
        r#"{"preRegistrationId":"10001200000042"}"#,
        "PRID:10001200000042",
    ] {
        assert_eq!(
            parse_reference(&s.replace("\\n", "\n")).unwrap().as_str(),
            PRID,
            "{s}"
        );
    }
    for bad in [
        "",
        "1234",
        "no id here",
        "10001200000042 10001200000043",
        r#"{"prid":"12"}"#,
        "100012000000421",
    ] {
        let e = parse_reference(bad).unwrap_err();
        assert!(
            matches!(&e, StationError::Validation(f) if f[0].field == "preRegistrationId"),
            "{bad}: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_pre_registration_prefills_a_draft_by_id_or_qr() {
    let clock = now_clock();
    let mut server = Server::start(clock.clone()).await;
    let env = env_with(clock);
    publish(
        &server,
        "10001",
        PRID,
        json!({
            "id": PRID,
            "centerId": "10001",
            "languages": ["eng", "fra"],
            "demographics": {
                "fullName": {"eng": "Amina Diallo", "fra": "Amina Diallo"},
                "dateOfBirth": "1988-03-14",
                "gender": "FLE",
                "phone": "+22501020304"
            }
        }),
    )
    .await;
    // A booking wrongly delivered for another center (the station checks the center itself).
    publish(
        &server,
        "10001",
        FAR,
        json!({"id": FAR, "centerId": "10002", "demographics": {}}),
    )
    .await;
    let mut st = ready_station(&server, &env).await;

    let p = st.pre_registration(PRID).unwrap();
    assert_eq!((p.process.as_str(), p.center_id.as_str()), ("NEW", "10001"));
    let out = st
        .start_draft_from_pre_registration("https://prereg.example/b?prid=10001200000042")
        .unwrap();
    assert_eq!(out.pre_registration_id, PRID);
    let d = st.draft(out.draft).unwrap();
    let a = d.body.answers.clone().unwrap();
    assert_eq!(a.pre_registration_id.as_deref(), Some(PRID));
    assert_eq!(a.languages, vec!["eng", "fra"]);
    assert_eq!(
        serde_json::to_value(&a.demographics["fullName"]).unwrap(),
        json!({"eng": "Amina Diallo", "fra": "Amina Diallo"})
    );
    assert!(!a.consent, "consent is asked again at the station");
    assert!(
        out.problems.iter().any(|p| p.field == "consent"),
        "{:?}",
        out.problems
    );
    assert!(
        !out.problems
            .iter()
            .any(|p| p.field == "fullName" || p.field == "dateOfBirth"),
        "prefilled fields are not missing: {:?}",
        out.problems
    );

    // The command table, as the UI calls it.
    let o = st
        .execute(
            tessera_station::commands::Command::StartDraftFromPreRegistration {
                reference: PRID.into(),
            },
        )
        .unwrap();
    assert!(
        matches!(o, tessera_station::commands::Output::Prefilled(_)),
        "{o:?}"
    );

    // Unknown id, other center: clear typed errors, no draft created.
    let drafts = st.my_drafts().unwrap().len();
    let e = st
        .start_draft_from_pre_registration("10001200009999")
        .unwrap_err();
    assert!(matches!(e, StationError::PreRegistrationNotFound { .. }), "{e}");
    assert!(e.to_string().contains("sync"), "{e}");
    assert_eq!(tessera_station::CommandError::from(e).code, ErrorCode::NotFound);
    let e = st.start_draft_from_pre_registration(FAR).unwrap_err();
    assert!(
        matches!(&e, StationError::PreRegistrationOtherCenter { center, .. } if center == "10002"),
        "{e}"
    );
    assert!(e.to_string().contains("booked at center 10002"), "{e}");
    assert_eq!(st.my_drafts().unwrap().len(), drafts);
    server.stop().await;
}
