//! Prefill a new draft from a pre-registration booked at this center.
//!
//! Pre-registrations arrive by sync (kind `pre-registrations`, stored in `sync_items`; the server sends
//! only those booked at the station's center). An item is a JSON object:
//!
//! ```json
//! {"id": "10001200000042", "centerId": "10001", "process": "NEW", "languages": ["eng", "fra"],
//!  "demographics": {"fullName": {"eng": "Amina Diallo", "fra": "Amina Diallo"}, "dateOfBirth": "1988-03-14"}}
//! ```
//!
//! `id` (or `preRegistrationId`, or the item key) is the 14-digit pre-registration id; `centerId` (or
//! `center_id`) the booking center; `process` defaults to `NEW`; `languages` to the country's primary and
//! secondary languages; `demographics` uses the answers-file shape (ID-schema field ids). Documents and
//! biometrics are never prefilled: they are captured at the station. Consent is asked again.
//!
//! The officer gives the id, or whatever a QR scanner types for the booking slip's QR code: the bare id, a
//! URL or text holding it (e.g. `https://prereg.example/booking?prid=10001200000042`), or JSON with a `prid`,
//! `preRegistrationId` or `id` field. Exactly one 14-digit number must be found.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tessera_packet::ids::PreRegId;
use tessera_packet::wire::SyncKind;

use crate::audit;
use crate::error::{FieldError, Result, StationError};
use crate::forms::{AnswerValue, Answers};
use crate::station::Station;

/// A pre-registration as the station uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreRegistration {
    /// The pre-registration id.
    pub id: String,
    /// The booking center.
    pub center_id: String,
    /// NEW, UPDATE or LOST.
    pub process: String,
    /// Data-entry languages, primary first.
    pub languages: Vec<String>,
    /// Demographic answers by ID-schema field id.
    pub demographics: BTreeMap<String, AnswerValue>,
}

/// A draft started from a pre-registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prefilled {
    /// The new draft.
    pub draft: i64,
    /// The pre-registration id.
    pub pre_registration_id: String,
    /// What is still missing or wrong (consent, documents, biometrics are always still to do).
    pub problems: Vec<FieldError>,
}

fn bad_reference(detail: &str) -> StationError {
    StationError::Validation(vec![FieldError {
        field: "preRegistrationId".into(),
        code: "INVALID".into(),
        language: None,
        message: detail.into(),
    }])
}

/// The pre-registration id in what the officer typed or a QR scanner sent.
pub fn parse_reference(input: &str) -> Result<PreRegId> {
    let s = input.trim();
    if s.is_empty() {
        return Err(bad_reference("no pre-registration id given"));
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(s)
        && let Some(obj) = v.as_object()
    {
        for k in ["prid", "preRegistrationId", "pre_registration_id", "id"] {
            if let Some(id) = obj.get(k).and_then(|v| v.as_str()) {
                return id.trim().parse().map_err(|e| {
                    bad_reference(&format!("the QR code's {k} is not a pre-registration id: {e}"))
                });
            }
        }
    }
    let runs: Vec<&str> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|r| r.len() == 14)
        .collect();
    match runs.as_slice() {
        [one] => one
            .parse()
            .map_err(|e| bad_reference(&format!("not a pre-registration id: {e}"))),
        [] => Err(bad_reference(
            "no 14-digit pre-registration id found; type the id from the booking slip or scan its QR code again",
        )),
        _ => Err(bad_reference(
            "more than one 14-digit number found; type the pre-registration id from the booking slip",
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    #[serde(default, alias = "preRegistrationId")]
    id: Option<String>,
    #[serde(default, alias = "center_id")]
    center_id: Option<String>,
    #[serde(default)]
    process: Option<String>,
    #[serde(default)]
    languages: Vec<String>,
    #[serde(default)]
    demographics: BTreeMap<String, AnswerValue>,
}

impl Station {
    /// The synced pre-registration `reference` (an id or a QR payload) names, if booked at this center.
    pub fn pre_registration(&self, reference: &str) -> Result<PreRegistration> {
        let id = parse_reference(reference)?;
        let id = id.as_str();
        let mut found = None;
        for (key, _, body) in self.synced_items(SyncKind::PreRegistrations)? {
            let Ok(item) = serde_json::from_str::<Item>(&body) else {
                continue;
            };
            let item_id = item
                .id
                .clone()
                .unwrap_or_else(|| key.rsplit('/').next().unwrap_or_default().to_owned());
            if item_id == id {
                found = Some(item);
                break;
            }
        }
        let item = found.ok_or_else(|| StationError::PreRegistrationNotFound { id: id.into() })?;
        let here = self.center_id.to_string();
        let center = item.center_id.unwrap_or_else(|| here.clone());
        if center != here {
            return Err(StationError::PreRegistrationOtherCenter {
                id: id.into(),
                center,
                here,
            });
        }
        let languages = if item.languages.is_empty() {
            let l = &self.master.manifest.languages;
            let mut v = vec![l.primary.clone()];
            if !l.secondary.is_empty() && l.secondary != l.primary {
                v.push(l.secondary.clone());
            }
            v
        } else {
            item.languages
        };
        Ok(PreRegistration {
            id: id.into(),
            center_id: center,
            process: item.process.unwrap_or_else(|| "NEW".into()),
            languages,
            demographics: item.demographics,
        })
    }

    /// Starts a draft prefilled from a pre-registration (by id or QR payload). Consent, documents and
    /// biometrics are still to be done at the station.
    pub fn start_draft_from_pre_registration(&mut self, reference: &str) -> Result<Prefilled> {
        let me = self.session()?.operator.id.clone();
        let p = self.pre_registration(reference)?;
        let draft = self.start_draft(&p.process)?;
        let answers = Answers {
            process: p.process.clone(),
            languages: p.languages.clone(),
            consent: false,
            pre_registration_id: Some(p.id.clone()),
            changed_groups: Vec::new(),
            demographics: p.demographics.clone(),
            documents: BTreeMap::new(),
            biometrics: Default::default(),
        };
        let problems = self.save_answers(draft, answers)?;
        let now = self.clock.now();
        self.store
            .tx(|tx| audit::append(tx, now, &me, "DRAFT_PREFILLED", &draft.to_string(), &p.id))?;
        Ok(Prefilled {
            draft,
            pre_registration_id: p.id,
            problems,
        })
    }
}
