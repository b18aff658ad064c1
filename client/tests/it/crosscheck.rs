//! Local biometric cross-checks before sealing, with fingers captured from the SBI simulator's synthetic
//! people: the applicant's fingers must not match each other nor the officer's own enrolled fingers.

use tessera_biometrics::iso19794_4::{self, FingerImageRecord, FingerPosition};
use tessera_biometrics::synth::SyntheticPerson;
use tessera_packet::types::BioAttribute;
use tessera_sbi::sim::{DeviceKind, RunningSimulator};
use tessera_station::capture::DeviceOptions;
use tessera_station::crosscheck::CrossCheckFailure;
use tessera_station::station::Station;
use tessera_station::workflow::Capture;
use tessera_station::{ErrorCode, StationError};

use crate::capture::start_sim_at;
use crate::common::{self, PDF, png};

fn opts(sim: &RunningSimulator, base: u16) -> DeviceOptions {
    DeviceOptions {
        first_port: base,
        last_port: base + 3,
        trusted_ca_pem: vec![sim.ca_pem().to_owned()],
        capture_timeout_secs: 20,
    }
}

fn person(sim: &RunningSimulator, id: u64) {
    for k in [DeviceKind::FingerSlap, DeviceKind::IrisDouble, DeviceKind::Face] {
        sim.control(k, |c| c.person_id = id);
    }
}

async fn captured_draft(st: &mut Station, o: &DeviceOptions) -> i64 {
    let id = st.start_draft("NEW").unwrap();
    st.save_answers(id, serde_json::from_value(crate::forms::adult_answers()).unwrap())
        .unwrap();
    st.import_document(id, "proofOfAddress", "DOC002", None, PDF)
        .unwrap();
    st.import_document(id, "proofOfIdentity", "DOC001", None, &png(300, 200))
        .unwrap();
    st.capture_all(id, o).await.unwrap();
    id
}

fn audit_actions(st: &mut Station) -> Vec<(String, String)> {
    match st
        .execute(tessera_station::commands::Command::Audit {
            after: 0,
            limit: 1000,
        })
        .unwrap()
    {
        tessera_station::commands::Output::Audit(v) => v.into_iter().map(|e| (e.action, e.detail)).collect(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_registering_themself_is_refused_and_audited() {
    let (env, mut st, _) = common::init_station();
    let (sim, base) = start_sim_at(env.clock.clone()).await;
    let o = opts(&sim, base);

    // No fingers yet: the review warns (default policy), nothing blocks.
    assert!(st.operator_fingers("officer1").unwrap().fingers.is_empty());

    // The officer (synthetic person 4242) enrols their own ten fingers through the scanner.
    person(&sim, 4242);
    let enrolled = st.enrol_operator_biometrics(&o).await.unwrap();
    assert_eq!(enrolled.operator_id, "officer1");
    assert!(enrolled.fingers.len() >= 8, "{enrolled:?}");
    assert!(
        enrolled
            .fingers
            .iter()
            .all(|a| tessera_station::crosscheck::finger_position(*a).is_some())
    );

    // A real applicant (person 4243) seals normally.
    person(&sim, 4243);
    let ok = captured_draft(&mut st, &o).await;
    let review = st.review(ok).unwrap();
    assert!(review.ready && review.warnings.is_empty(), "{review:?}");
    st.seal_draft(ok).unwrap();

    // The officer registers themself: refused, naming the fingers, not sealed, audited.
    person(&sim, 4242);
    let me = captured_draft(&mut st, &o).await;
    let e = st.seal_draft(me).unwrap_err();
    let StationError::BiometricCrossCheck { failures } = &e else {
        panic!("{e}");
    };
    assert!(
        failures
            .iter()
            .any(|f| matches!(f, CrossCheckFailure::MatchesOfficer { officer, fingers } if officer == "officer1" && !fingers.is_empty())),
        "{failures:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("officer1") && msg.contains("may not register themself"),
        "{msg}"
    );
    assert_eq!(
        tessera_station::CommandError::from(e).code,
        ErrorCode::BiometricCrossCheck
    );
    let d = st.draft(me).unwrap();
    assert_eq!(d.state, "DRAFT", "the draft stays editable");
    assert_eq!(
        st.dashboard().unwrap().awaiting_approval,
        1,
        "only the real applicant was sealed"
    );
    let audit = audit_actions(&mut st);
    assert!(
        audit
            .iter()
            .any(|(a, d)| a == "SEAL_REFUSED" && d == "matches-officer"),
        "{audit:?}"
    );
    assert!(audit.iter().any(|(a, _)| a == "OPERATOR_BIOMETRICS_ENROLLED"));
    // A second officer of the same center, without enrolled fingers, is warned in review.
    st.logout().unwrap();
    let mut sup = common::login(&env, "super1", common::SUPERVISOR_PW).unwrap();
    let other = captured_draft(&mut sup, &o).await;
    let review = sup.review(other).unwrap();
    assert!(review.ready);
    assert_eq!(review.warnings.len(), 1, "{review:?}");
    assert_eq!(review.warnings[0].code, "OPERATOR_NOT_ENROLLED");
    drop(sim);
}

fn finger_iso(p: &SyntheticPerson, pos: FingerPosition, impression: u32) -> Vec<u8> {
    let img = p.finger(pos, impression);
    iso19794_4::encode(&[FingerImageRecord::from_gray(pos, &img, 500, 80).unwrap()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_finger_presented_twice_is_refused_naming_the_positions() {
    let (env, mut st, _) = common::init_station();
    let (sim, base) = start_sim_at(env.clock.clone()).await;
    let o = opts(&sim, base);
    person(&sim, 5150);
    let id = captured_draft(&mut st, &o).await;
    // The applicant presents the right index again in place of the right middle finger.
    let p = SyntheticPerson::new(5150);
    st.add_capture(
        id,
        Capture {
            attribute: BioAttribute::RightMiddle,
            image: finger_iso(&p, FingerPosition::RightIndex, 7),
            format: "ISO19794-4:2011".into(),
            quality: 80,
            retries: 1,
            force_captured: false,
            sbi_data_block: None,
            device: None,
            captured_at: common::t0(),
        },
    )
    .unwrap();
    let e = st.seal_draft(id).unwrap_err();
    let StationError::BiometricCrossCheck { failures } = &e else {
        panic!("{e}");
    };
    let pairs = failures
        .iter()
        .find_map(|f| match f {
            CrossCheckFailure::DuplicateFingers { pairs } => Some(pairs.clone()),
            _ => None,
        })
        .expect("duplicate fingers reported");
    assert!(
        pairs.iter().any(|(a, b)| {
            let mut v = [*a, *b];
            v.sort();
            let mut w = [BioAttribute::RightIndex, BioAttribute::RightMiddle];
            w.sort();
            v == w
        }),
        "{pairs:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("rightIndex") && msg.contains("rightMiddle"), "{msg}");
    let audit = audit_actions(&mut st);
    assert!(
        audit.iter().any(|(a, d)| a == "SEAL_REFUSED"
            && d.starts_with("duplicate-fingers")
            && d.contains("rightMiddle")),
        "{audit:?}"
    );
    assert_eq!(st.dashboard().unwrap().awaiting_approval, 0);
    // Recapturing the right finger from the device lets the registration seal.
    st.capture_part(id, tessera_station::capture::CapturePart::RightSlap, &o)
        .await
        .unwrap();
    st.seal_draft(id).unwrap();
}

#[test]
fn the_block_policy_refuses_an_officer_without_enrolled_fingers() {
    let docs = common::master_docs()
        .into_iter()
        .map(|mut d| {
            if d.name == "station-settings" {
                let mut v: serde_json::Value = serde_json::from_str(&d.body).unwrap();
                v["biometrics"]["operatorWithoutFingers"] = "block".into();
                d.body = v.to_string();
            }
            d
        })
        .collect();
    let (_env, mut st, _) = common::init_station_with(docs);
    let id = common::complete_adult_draft(&mut st);
    assert!(
        st.review(id).unwrap().warnings.is_empty(),
        "block: no warning, a refusal"
    );
    let e = st.seal_draft(id).unwrap_err();
    assert!(
        matches!(&e, StationError::BiometricCrossCheck { failures } if failures == &[CrossCheckFailure::OfficerNotEnrolled { officer: "officer1".into() }]),
        "{e}"
    );
    assert!(e.to_string().contains("enrol-biometrics"), "{e}");
}

#[test]
fn operator_enrolment_needs_a_usable_finger_and_only_fingers() {
    let (_env, mut st, _) = common::init_station();
    let e = st
        .enrol_operator_fingers(&[(BioAttribute::Face, vec![1, 2, 3])])
        .unwrap_err();
    assert!(matches!(e, StationError::Validation(_)), "{e}");
    let e = st
        .enrol_operator_fingers(&[(BioAttribute::LeftIndex, b"not an ISO record".to_vec())])
        .unwrap_err();
    assert!(
        matches!(e, StationError::Device { .. }) && e.to_string().contains("capture again"),
        "{e}"
    );
    assert!(
        st.operator_fingers("officer1").unwrap().fingers.is_empty(),
        "nothing half-stored"
    );
    let p = SyntheticPerson::new(99);
    let f = st
        .enrol_operator_fingers(&[
            (
                BioAttribute::LeftIndex,
                finger_iso(&p, FingerPosition::LeftIndex, 0),
            ),
            (BioAttribute::LeftThumb, b"junk".to_vec()),
        ])
        .unwrap();
    assert_eq!(f.fingers, vec![BioAttribute::LeftIndex]);
    assert_eq!(f.unusable, vec![BioAttribute::LeftThumb]);
}
