//! Forms from the ID schema + UI spec: required and conditional fields, validators, languages,
//! blocklist, codes, age groups and the biometric requirement.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use proptest::prelude::*;
use serde_json::json;
use tessera_packet::types::BioAttribute;
use tessera_station::StationError;
use tessera_station::forms::{Answers, Form, check_biometrics};
use tessera_station::masterdata::MasterData;

use crate::common::sample_country;

fn md() -> MasterData {
    MasterData::load_folder(&sample_country()).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

pub fn adult_answers() -> serde_json::Value {
    json!({
        "process": "NEW",
        "languages": ["eng", "fra"],
        "consent": true,
        "demographics": {
            "fullName": {"eng": "Amina Diallo", "fra": "Amina Diallo"},
            "dateOfBirth": "1988-03-14",
            "gender": "FLE",
            "residenceStatus": "NFR",
            "addressLine1": {"eng": "12 Hill Street", "fra": "12 rue de la Colline"},
            "region": "NOR",
            "province": "NOR-HL",
            "city": "HLB",
            "postalCode": "10101",
            "phone": "+22501020304",
            "email": "amina@example.org"
        },
        "documents": {
            "proofOfAddress": {"type": "DOC002", "file": "bill.pdf"},
            "proofOfIdentity": {"type": "DOC001", "file": "passport.jpg"}
        }
    })
}

fn answers(v: serde_json::Value) -> Answers {
    serde_json::from_value(v).unwrap()
}

fn errors(
    r: tessera_station::Result<tessera_station::forms::ValidatedForm>,
) -> Vec<(String, String, Option<String>)> {
    match r {
        Err(StationError::Validation(e)) => e.into_iter().map(|e| (e.field, e.code, e.language)).collect(),
        other => panic!("expected validation errors, got {other:?}"),
    }
}

fn has(errs: &[(String, String, Option<String>)], field: &str, code: &str) -> bool {
    errs.iter().any(|(f, c, _)| f == field && c == code)
}

#[test]
fn valid_adult_new_registration_builds_the_identity() {
    let md = md();
    let f = Form::new(&md, "NEW")
        .unwrap()
        .validate(&answers(adult_answers()), today())
        .unwrap();
    assert_eq!(f.age_group, "ADULT");
    assert_eq!(
        f.identity["fullName"],
        json!([{"language": "eng", "value": "Amina Diallo"}, {"language": "fra", "value": "Amina Diallo"}])
    );
    assert_eq!(
        f.identity["gender"],
        json!([{"language": "eng", "value": "FLE"}, {"language": "fra", "value": "FLE"}])
    );
    assert_eq!(f.identity["dateOfBirth"], json!("1988-03-14"));
    assert_eq!(f.identity["IDSchemaVersion"], json!("1.0"));
    assert_eq!(f.biometrics.attributes.len(), 13);
    let required: Vec<&str> = f
        .documents
        .iter()
        .filter(|d| d.required)
        .map(|d| d.field.as_str())
        .collect();
    assert_eq!(required, ["proofOfAddress", "proofOfIdentity"]);
    assert!(
        f.documents.iter().all(|d| d.field != "proofOfRelationship"),
        "hidden for adults"
    );
}

#[test]
fn infant_gets_face_only_and_needs_a_guardian() {
    let md = md();
    let mut a = adult_answers();
    a["demographics"]["dateOfBirth"] = json!("2024-06-01");
    let errs = errors(
        Form::new(&md, "NEW")
            .unwrap()
            .validate(&answers(a.clone()), today()),
    );
    assert!(has(&errs, "parentOrGuardianName", "REQUIRED"), "{errs:?}");
    assert!(has(&errs, "proofOfRelationship", "REQUIRED"), "{errs:?}");
    assert!(has(&errs, "proofOfIdentity", "NOT_APPLICABLE") || !has(&errs, "proofOfIdentity", "REQUIRED"));
    a["demographics"]["parentOrGuardianName"] = json!({"eng": "Moussa Diallo", "fra": "Moussa Diallo"});
    a["documents"]["proofOfRelationship"] = json!({"type": "DOC004", "file": "birth.pdf"});
    a["documents"].as_object_mut().unwrap().remove("proofOfIdentity");
    let f = Form::new(&md, "NEW")
        .unwrap()
        .validate(&answers(a), today())
        .unwrap();
    assert_eq!(f.age_group, "INFANT");
    assert_eq!(f.biometrics.attributes, vec![BioAttribute::Face]);
    let face: BTreeSet<_> = [BioAttribute::Face].into();
    check_biometrics(&f.biometrics, &face, &BTreeSet::new(), false, &md).unwrap();
    let with_finger: BTreeSet<_> = [BioAttribute::Face, BioAttribute::LeftIndex].into();
    let e = check_biometrics(&f.biometrics, &with_finger, &BTreeSet::new(), false, &md).unwrap_err();
    assert!(e.to_string().contains("biometrics.leftIndex"), "{e}");
}

#[test]
fn every_problem_is_reported_at_once_naming_field_and_language() {
    let md = md();
    let mut a = adult_answers();
    a["consent"] = json!(false);
    a["demographics"]["fullName"] = json!({"eng": "Amina the Idiot"});
    a["demographics"]["email"] = json!("not-an-email");
    a["demographics"]["gender"] = json!("XYZ");
    a["demographics"]["city"] = json!("PRT");
    a["demographics"]["nickname"] = json!("Mimi");
    a["demographics"]["dateOfBirth"] = json!("1988-02-30");
    a["demographics"]["addressLine1"] = json!("one language as plain text");
    a["documents"]["proofOfAddress"]["type"] = json!("DOC001");
    let errs = errors(Form::new(&md, "NEW").unwrap().validate(&answers(a), today()));
    assert!(has(&errs, "consent", "REQUIRED"), "{errs:?}");
    assert!(
        errs.contains(&("fullName".into(), "BLOCKLISTED".into(), Some("eng".into()))),
        "{errs:?}"
    );
    assert!(
        errs.contains(&("fullName".into(), "MISSING_LANGUAGE".into(), Some("fra".into()))),
        "{errs:?}"
    );
    assert!(has(&errs, "email", "EMAIL_INVALID"), "{errs:?}");
    assert!(has(&errs, "gender", "UNKNOWN_CODE"), "{errs:?}");
    assert!(has(&errs, "city", "INVALID"), "PRT is not in NOR-HL: {errs:?}");
    assert!(has(&errs, "nickname", "UNKNOWN_FIELD"), "{errs:?}");
    assert!(has(&errs, "dateOfBirth", "INVALID"), "{errs:?}");
    assert!(has(&errs, "addressLine1", "INVALID"), "{errs:?}");
    assert!(has(&errs, "proofOfAddress", "INVALID"), "{errs:?}");
}

#[test]
fn update_checks_only_the_selected_groups_and_the_uin() {
    let md = md();
    let uin = tessera_packet::ids::Uin::from_body("234567890")
        .unwrap()
        .to_string();
    let mut bad = uin.clone().into_bytes();
    let last = bad.len() - 1;
    bad[last] = if bad[last] == b'9' { b'0' } else { bad[last] + 1 };
    let bad = String::from_utf8(bad).unwrap();
    let a = json!({
        "process": "UPDATE", "languages": ["eng", "fra"], "consent": true,
        "changedGroups": ["Address"],
        "demographics": {
            "UIN": uin,
            "addressLine1": {"eng": "3 Harbour Road", "fra": "3 route du Port"},
            "region": "NOR", "province": "NOR-CO", "city": "PRT", "postalCode": "20201"
        },
        "documents": {"proofOfAddress": {"type": "DOC002", "file": "bill.pdf"}}
    });
    let f = Form::new(&md, "UPDATE")
        .unwrap()
        .validate(&answers(a.clone()), today())
        .unwrap();
    assert!(!f.biometrics.applicable);
    assert!(f.identity.get("fullName").is_none());
    let mut b = a.clone();
    b["demographics"]["UIN"] = json!(bad);
    b["demographics"]["fullName"] = json!({"eng": "X", "fra": "X"});
    b["changedGroups"] = json!(["Address", "Nose"]);
    let errs = errors(Form::new(&md, "UPDATE").unwrap().validate(&answers(b), today()));
    assert!(has(&errs, "UIN", "UIN_INVALID"), "{errs:?}");
    assert!(has(&errs, "fullName", "NOT_APPLICABLE"), "{errs:?}");
    assert!(has(&errs, "changedGroups", "INVALID"), "{errs:?}");
    let mut c = a;
    c["changedGroups"] = json!([]);
    let errs = errors(Form::new(&md, "UPDATE").unwrap().validate(&answers(c), today()));
    assert!(has(&errs, "changedGroups", "REQUIRED"), "{errs:?}");
}

#[test]
fn lost_needs_no_demographics_but_all_biometrics() {
    let md = md();
    let a = json!({"process": "LOST", "languages": ["eng", "fra"], "consent": true});
    let f = Form::new(&md, "LOST")
        .unwrap()
        .validate(&answers(a), today())
        .unwrap();
    assert!(f.biometrics.applicable);
    assert_eq!(f.biometrics.attributes.len(), 13);
    let some: BTreeSet<_> = [BioAttribute::Face, BioAttribute::LeftEye].into();
    let e = check_biometrics(&f.biometrics, &some, &BTreeSet::new(), false, &md).unwrap_err();
    assert!(e.to_string().contains("biometrics.rightThumb"), "{e}");
}

#[test]
fn biometric_exceptions_need_a_photo_and_never_cover_the_face() {
    let md = md();
    let f = Form::new(&md, "NEW")
        .unwrap()
        .validate(&answers(adult_answers()), today())
        .unwrap();
    let all: BTreeSet<_> = f.biometrics.attributes.iter().copied().collect();
    check_biometrics(&f.biometrics, &all, &BTreeSet::new(), false, &md).unwrap();
    let mut captured = all.clone();
    captured.remove(&BioAttribute::LeftLittle);
    let exc: BTreeSet<_> = [BioAttribute::LeftLittle].into();
    let e = check_biometrics(&f.biometrics, &captured, &exc, false, &md).unwrap_err();
    assert!(e.to_string().contains("exceptionPhoto"), "{e}");
    check_biometrics(&f.biometrics, &captured, &exc, true, &md).unwrap();
    let mut no_face = all.clone();
    no_face.remove(&BioAttribute::Face);
    let e = check_biometrics(&f.biometrics, &no_face, &[BioAttribute::Face].into(), true, &md).unwrap_err();
    assert!(e.to_string().contains("face cannot be an exception"), "{e}");
}

#[test]
fn unknown_process_and_answer_keys_are_refused() {
    let md = md();
    assert!(Form::new(&md, "REPRINT").is_err());
    let mut a = adult_answers();
    a["surprise"] = json!(1);
    assert!(serde_json::from_value::<Answers>(a).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn arbitrary_names_never_panic_and_errors_name_the_field(eng in "\\PC{0,100}", fra in "\\PC{0,100}") {
        let md = md();
        let mut a = adult_answers();
        a["demographics"]["fullName"] = json!({"eng": eng, "fra": fra});
        match Form::new(&md, "NEW").unwrap().validate(&answers(a), today()) {
            Ok(_) => {}
            Err(StationError::Validation(errs)) => prop_assert!(errs.iter().all(|e| e.field == "fullName")),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}
