//! The sample country configuration loads and is consistent; broken configurations are refused with
//! errors naming the file and the problem.

use tessera_station::StationError;
use tessera_station::masterdata::{MasterData, read_folder};

use crate::common::sample_country;

#[test]
fn config_sample_country_is_consistent() {
    let md = MasterData::load_folder(&sample_country()).expect("sample country loads");
    assert_eq!(md.schema.id_version, "1.0");
    assert_eq!(md.ui_specs.len(), 3);
    let bio = md.schema.field("individualBiometrics").unwrap();
    assert_eq!(bio.bio_attributes.len(), 13);
    assert_eq!(md.age_groups.for_age(3).unwrap().code, "INFANT");
    assert_eq!(md.age_groups.for_age(5).unwrap().code, "MINOR");
    assert_eq!(md.age_groups.for_age(40).unwrap().code, "ADULT");
    assert!(md.centers.centers.len() >= 3);
    assert!(md.reasons.category("SUPERVISOR_REJECTION").unwrap().reasons.len() >= 3);
    assert_eq!(md.labels.len(), 2);
    // Every expression used by the specs compiled.
    for spec in md.ui_specs.values() {
        for f in spec.fields() {
            for e in &f.required_on {
                md.expr(&e.expr).unwrap();
            }
        }
    }
}

fn with_doc(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Result<MasterData, StationError> {
    let mut docs = read_folder(&sample_country()).unwrap();
    let d = docs.iter_mut().find(|d| d.name == name).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&d.body).unwrap();
    edit(&mut v);
    d.body = v.to_string();
    MasterData::from_documents(&docs)
}

fn assert_invalid(r: Result<MasterData, StationError>, file: &str, needle: &str) {
    match r {
        Err(StationError::ConfigInvalid { file: f, detail }) => {
            assert_eq!(f, file);
            assert!(detail.contains(needle), "{detail}");
        }
        Err(StationError::ConfigParse { file: f, .. }) => assert_eq!(f, file),
        other => panic!("expected an invalid-config error for {file}, got {other:?}"),
    }
}

#[test]
fn corrupt_master_data_is_refused_naming_file_and_problem() {
    assert_invalid(
        with_doc("ui-spec/NEW", |v| {
            v["screens"][1]["fields"][0]["id"] = "nickname".into()
        }),
        "ui-spec/NEW",
        "nickname",
    );
    assert_invalid(
        with_doc("ui-spec/NEW", |v| {
            v["screens"][2]["fields"][1]["requiredOn"][0]["expr"] = "identity.isAdult()".into();
        }),
        "ui-spec/NEW",
        "proofOfIdentity",
    );
    assert_invalid(
        with_doc("id-schema", |v| {
            v["fields"][2]["validators"][0]["validator"] = "([a-z".into()
        }),
        "id-schema",
        "regex",
    );
    assert_invalid(
        with_doc("age-groups", |v| v["groups"][1]["minAge"] = 4.into()),
        "age-groups",
        "age 4",
    );
    assert_invalid(
        with_doc("locations", |v| v["locations"][6]["parent"] = "NOWHERE".into()),
        "locations",
        "NOWHERE",
    );
    assert_invalid(
        with_doc("id-schema", |v| v["fields"] = "oops".into()),
        "id-schema",
        "",
    );
    let mut docs = read_folder(&sample_country()).unwrap();
    docs.retain(|d| d.name != "reasons");
    assert_invalid(MasterData::from_documents(&docs), "reasons", "missing");
}
