//! Forms generated from the ID schema and the UI spec of a process, and the validation of a resident's
//! answers against them: required and conditionally required fields (`requiredOn`, `visible`), regex
//! validators, lengths, dynamic-list and location codes, multilingual values in every entry language,
//! blocklisted words, age groups and the biometric requirement of the age group. Every error names the
//! field (and the language for multilingual values).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use tessera_packet::types::{BioAttribute, ExceptionKind};

use crate::error::{FieldError, Result, StationError};
use crate::expr::{Value, Vars};
use crate::masterdata::{FieldType, MasterData, SchemaField, UiField, UiSpec};

/// A demographic answer: plain text (strings, codes) or one text per language (multilingual fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AnswerValue {
    /// A string or a code.
    Text(String),
    /// Language code to text.
    Multi(BTreeMap<String, String>),
}

/// A document to import for a document field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocumentAnswer {
    /// Document type code, e.g. `DOC002`.
    #[serde(rename = "type")]
    pub doc_type: String,
    /// The scanned file (JPEG, PNG or PDF).
    pub file: PathBuf,
    /// Reference number printed on the document.
    #[serde(default)]
    pub ref_number: Option<String>,
}

/// A biometric exception declared by the officer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExceptionAnswer {
    /// Missing or temporary.
    pub kind: ExceptionKind,
    /// Officer's remark.
    #[serde(default)]
    pub remark: Option<String>,
}

/// Biometric part of the answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BiometricAnswers {
    /// Attributes that cannot be captured.
    #[serde(default)]
    pub exceptions: BTreeMap<BioAttribute, ExceptionAnswer>,
    /// Photo proving the exception (JPEG/PNG), required when there are exceptions.
    #[serde(default)]
    pub exception_photo: Option<PathBuf>,
}

/// Everything an officer enters for one registration (the CLI's `--answers` file; the UI's form state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Answers {
    /// `NEW`, `UPDATE` or `LOST`.
    pub process: String,
    /// Data-entry languages, primary first (e.g. `["eng", "fra"]`).
    pub languages: Vec<String>,
    /// Whether the resident consented.
    pub consent: bool,
    /// Pre-registration id the data came from.
    #[serde(default)]
    pub pre_registration_id: Option<String>,
    /// UPDATE: the field groups that change.
    #[serde(default)]
    pub changed_groups: Vec<String>,
    /// Demographic answers by ID-schema field id.
    #[serde(default)]
    pub demographics: BTreeMap<String, AnswerValue>,
    /// Documents by document field id.
    #[serde(default)]
    pub documents: BTreeMap<String, DocumentAnswer>,
    /// Biometric exceptions.
    #[serde(default)]
    pub biometrics: BiometricAnswers,
}

/// What biometrics a registration needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BioRequirement {
    /// Whether biometrics are captured at all (UPDATE without the Biometrics group: no).
    pub applicable: bool,
    /// Attributes to capture (or except).
    pub attributes: Vec<BioAttribute>,
    /// Sufficiency rule over captured-or-excepted attributes.
    pub validation_expr: Option<String>,
    /// Whether exceptions need an exception photo.
    pub exception_photo_required: bool,
}

/// A document field the registration needs or may have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentSlot {
    /// Field id, e.g. `proofOfAddress`.
    pub field: String,
    /// Category code.
    pub category: String,
    /// Whether required.
    pub required: bool,
    /// Routing category (evidence or optional).
    pub field_category: String,
}

/// The validated form: the identity JSON for the packet and what else the registration needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatedForm {
    /// The identity object (ID-schema field ids to values).
    pub identity: Json,
    /// Age group code.
    pub age_group: String,
    /// Documents applicable to this registration.
    pub documents: Vec<DocumentSlot>,
    /// Biometrics requirement.
    pub biometrics: BioRequirement,
}

fn fe(field: &str, code: &str, language: Option<&str>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        code: code.into(),
        language: language.map(Into::into),
        message: message.into(),
    }
}

/// Age in completed years on `today`.
pub fn age_on(dob: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - dob.year();
    if (today.month(), today.day()) < (dob.month(), dob.day()) {
        age -= 1;
    }
    age
}

struct FormVars<'a> {
    answers: &'a Answers,
    age_group: &'a str,
}

impl Vars for FormVars<'_> {
    fn field(&self, name: &str) -> Value {
        match name {
            "ageGroup" => Value::Str(self.age_group.into()),
            "process" => Value::Str(self.answers.process.clone()),
            _ => match self.answers.demographics.get(name) {
                Some(AnswerValue::Text(t)) => Value::Str(t.clone()),
                Some(AnswerValue::Multi(m)) => self
                    .answers
                    .languages
                    .first()
                    .and_then(|l| m.get(l))
                    .map_or(Value::Null, |v| Value::Str(v.clone())),
                None => {
                    if self.answers.documents.contains_key(name) {
                        Value::Bool(true)
                    } else {
                        Value::Null
                    }
                }
            },
        }
    }
    fn ident(&self, _: &str) -> Option<Value> {
        None
    }
}

struct BioVars<'a>(&'a BTreeSet<BioAttribute>);

impl Vars for BioVars<'_> {
    fn field(&self, _: &str) -> Value {
        Value::Null
    }
    fn ident(&self, name: &str) -> Option<Value> {
        BioAttribute::ALL
            .iter()
            .find(|a| a.as_str() == name)
            .map(|a| Value::Bool(self.0.contains(a)))
    }
}

/// Parses a MOSIP attribute name.
pub fn bio_attribute(name: &str) -> Option<BioAttribute> {
    BioAttribute::ALL.iter().copied().find(|a| a.as_str() == name)
}

/// The form of one process.
#[derive(Debug)]
pub struct Form<'a> {
    md: &'a MasterData,
    spec: &'a UiSpec,
}

impl<'a> Form<'a> {
    /// The form of `process` (an active UI spec must exist).
    pub fn new(md: &'a MasterData, process: &str) -> Result<Self> {
        match md.ui_spec(process) {
            Some(spec) if spec.is_active => Ok(Self { md, spec }),
            _ => Err(StationError::Validation(vec![fe(
                "process",
                "INVALID",
                None,
                format!("process {process:?} is not available; choose one of NEW, UPDATE, LOST"),
            )])),
        }
    }

    /// The UI spec behind the form.
    pub fn spec(&self) -> &UiSpec {
        self.spec
    }

    fn applicable_groups(&self, answers: &Answers) -> Option<BTreeSet<String>> {
        if self.spec.updatable_groups.is_empty() {
            return None;
        }
        Some(
            self.spec
                .always_groups
                .iter()
                .chain(&answers.changed_groups)
                .cloned()
                .collect(),
        )
    }

    fn group_of(ui: &UiField, sf: &SchemaField) -> Option<String> {
        ui.group.clone().or_else(|| sf.group.clone())
    }

    /// Validates `answers` on `today` (for the age). Returns every problem at once.
    pub fn validate(&self, answers: &Answers, today: NaiveDate) -> Result<ValidatedForm> {
        let md = self.md;
        let mut errs = Vec::new();
        if answers.process != self.spec.id {
            errs.push(fe(
                "process",
                "INVALID",
                None,
                format!(
                    "answers are for {}, the form is {}",
                    answers.process, self.spec.id
                ),
            ));
        }
        let langs = &md.manifest.languages;
        let allowed: BTreeSet<&str> = langs
            .mandatory
            .iter()
            .chain(&langs.optional)
            .map(String::as_str)
            .collect();
        if answers.languages.is_empty() {
            errs.push(fe(
                "languages",
                "REQUIRED",
                None,
                "choose at least the primary data-entry language",
            ));
        }
        for l in &answers.languages {
            if !allowed.contains(l.as_str()) {
                errs.push(fe(
                    "languages",
                    "INVALID",
                    Some(l),
                    format!("language {l} is not configured"),
                ));
            }
        }
        for l in &langs.mandatory {
            if !answers.languages.contains(l) {
                errs.push(fe(
                    "languages",
                    "REQUIRED",
                    Some(l),
                    format!("language {l} is mandatory"),
                ));
            }
        }
        if !answers.consent {
            errs.push(fe(
                "consent",
                "REQUIRED",
                None,
                "the resident must give consent before registration",
            ));
        }
        if let Some(p) = &answers.pre_registration_id
            && p.parse::<tessera_packet::ids::PreRegId>().is_err()
        {
            errs.push(fe(
                "preRegistrationId",
                "INVALID",
                None,
                "a pre-registration id has 14 digits",
            ));
        }
        let groups = self.applicable_groups(answers);
        if groups.is_some() {
            if answers.changed_groups.is_empty() {
                errs.push(fe(
                    "changedGroups",
                    "REQUIRED",
                    None,
                    "choose at least one group of details to update",
                ));
            }
            for g in &answers.changed_groups {
                if !self.spec.updatable_groups.contains(g) {
                    errs.push(fe(
                        "changedGroups",
                        "INVALID",
                        None,
                        format!(
                            "{g} cannot be updated; choose from {}",
                            self.spec.updatable_groups.join(", ")
                        ),
                    ));
                }
            }
        } else if !answers.changed_groups.is_empty() {
            errs.push(fe(
                "changedGroups",
                "NOT_APPLICABLE",
                None,
                "only an UPDATE selects changed groups",
            ));
        }

        // Age group from the date of birth (ADULT when unknown, e.g. LOST without a date of birth).
        let dob = match answers.demographics.get("dateOfBirth") {
            Some(AnswerValue::Text(t)) => NaiveDate::parse_from_str(t, "%Y-%m-%d").ok(),
            _ => None,
        };
        let age = dob.map(|d| age_on(d, today));
        let age_group = match age {
            Some(a) if a >= 0 => md
                .age_groups
                .for_age(u32::try_from(a).unwrap_or(u32::MAX))
                .map_or_else(|| "ADULT".to_owned(), |g| g.code.clone()),
            _ => "ADULT".to_owned(),
        };
        if let (Some(a), Some(_)) = (age, dob)
            && !(0..=150).contains(&a)
        {
            errs.push(fe(
                "dateOfBirth",
                "INVALID",
                None,
                "the date of birth must be in the past and at most 150 years ago",
            ));
        }

        let vars = FormVars {
            answers,
            age_group: &age_group,
        };
        let mut identity = serde_json::Map::new();
        identity.insert("IDSchemaVersion".into(), json!(md.schema.id_version));
        let mut documents = Vec::new();
        let mut bio = BioRequirement {
            applicable: false,
            attributes: vec![],
            validation_expr: None,
            exception_photo_required: false,
        };
        let mut known: BTreeSet<&str> = BTreeSet::new();
        for ui in self.spec.fields() {
            let Some(sf) = md.schema.field(&ui.id) else {
                continue;
            };
            known.insert(ui.id.as_str());
            let in_group = match (&groups, Self::group_of(ui, sf)) {
                (Some(gs), Some(g)) => gs.contains(&g),
                (Some(_), None) => false,
                (None, _) => true,
            };
            let visible = match &ui.visible {
                Some(e) => md.expr(&e.expr)?.eval(&vars)?,
                None => true,
            };
            let applicable = in_group && visible;
            let mut required = ui.required;
            for e in &ui.required_on {
                required |= md.expr(&e.expr)?.eval(&vars)?;
            }
            match sf.kind {
                FieldType::DocumentType => {
                    let given = answers.documents.get(&ui.id);
                    if !applicable {
                        if given.is_some() {
                            errs.push(fe(
                                &ui.id,
                                "NOT_APPLICABLE",
                                None,
                                "this document is not needed for this registration",
                            ));
                        }
                        continue;
                    }
                    let category = sf.sub_type.clone().unwrap_or_default();
                    match given {
                        None if required => {
                            errs.push(fe(&ui.id, "REQUIRED", None, "this document is required"))
                        }
                        None => {}
                        Some(d) => {
                            let ok = md.documents.valid_documents.iter().any(|v| {
                                v.category == category
                                    && v.doc_type == d.doc_type
                                    && v.age_groups.contains(&age_group)
                            });
                            if !ok {
                                errs.push(fe(
                                    &ui.id,
                                    "INVALID",
                                    None,
                                    format!(
                                        "document type {} does not prove {category} for age group {age_group}",
                                        d.doc_type
                                    ),
                                ));
                            }
                            if d.ref_number.as_ref().is_some_and(|r| r.chars().count() > 64) {
                                errs.push(fe(
                                    &ui.id,
                                    "INVALID",
                                    None,
                                    "the reference number is longer than 64 characters",
                                ));
                            }
                        }
                    }
                    documents.push(DocumentSlot {
                        field: ui.id.clone(),
                        category,
                        required,
                        field_category: sf.field_category.clone(),
                    });
                }
                FieldType::BiometricsType => {
                    bio = self.bio_requirement(ui, &age_group, applicable)?;
                    identity.insert(
                        ui.id.clone(),
                        json!({"format": "cbeff", "version": 1, "value": format!("{}_bio_CBEFF", ui.id)}),
                    );
                }
                _ => {
                    let given = answers.demographics.get(&ui.id).filter(|v| !is_blank(v));
                    if !applicable {
                        if given.is_some() {
                            errs.push(fe(
                                &ui.id,
                                "NOT_APPLICABLE",
                                None,
                                "this field does not apply to this registration",
                            ));
                        }
                        continue;
                    }
                    match given {
                        None if required => errs.push(fe(&ui.id, "REQUIRED", None, "this field is required")),
                        None => {}
                        Some(v) => {
                            if let Some(j) = self.check_value(sf, v, answers, &mut errs) {
                                identity.insert(ui.id.clone(), j);
                            }
                        }
                    }
                }
            }
        }
        for k in answers.demographics.keys().chain(answers.documents.keys()) {
            if !known.contains(k.as_str()) {
                errs.push(fe(
                    k,
                    "UNKNOWN_FIELD",
                    None,
                    format!("{k} is not a field of the {} form", self.spec.id),
                ));
            }
        }
        self.check_location_chain(answers, &mut errs);
        if errs.is_empty() {
            Ok(ValidatedForm {
                identity: Json::Object(identity),
                age_group,
                documents,
                biometrics: bio,
            })
        } else {
            Err(StationError::Validation(errs))
        }
    }

    fn bio_requirement(&self, ui: &UiField, age_group: &str, applicable: bool) -> Result<BioRequirement> {
        let cond = ui
            .conditional_bio_attributes
            .iter()
            .find(|c| c.age_group == age_group && (c.process == "ALL" || c.process == self.spec.id));
        let (names, expr) = match cond {
            Some(c) => (&c.bio_attributes, Some(c.validation_expr.clone())),
            None => (&ui.bio_attributes, ui.validation_expr.clone()),
        };
        Ok(BioRequirement {
            applicable,
            attributes: if applicable {
                names.iter().filter_map(|n| bio_attribute(n)).collect()
            } else {
                vec![]
            },
            validation_expr: if applicable { expr } else { None },
            exception_photo_required: ui.exception_photo_required
                || self.md.settings.biometrics.exception_photo_required,
        })
    }

    fn check_value(
        &self,
        sf: &SchemaField,
        v: &AnswerValue,
        answers: &Answers,
        errs: &mut Vec<FieldError>,
    ) -> Option<Json> {
        let md = self.md;
        let id = sf.id.as_str();
        let coded = sf.dynamic_list.is_some() || sf.location_level.is_some();
        match (sf.kind, v) {
            (FieldType::SimpleType, AnswerValue::Text(code)) if coded => {
                if let Some(list) = &sf.dynamic_list {
                    let ok = md
                        .lists
                        .lists
                        .get(list)
                        .is_some_and(|l| l.iter().any(|c| &c.code == code));
                    if !ok {
                        errs.push(fe(
                            id,
                            "UNKNOWN_CODE",
                            None,
                            format!("{code:?} is not in the {list} list"),
                        ));
                        return None;
                    }
                }
                if let Some(level) = &sf.location_level
                    && md.locations.get(code).is_none_or(|l| &l.level != level)
                {
                    errs.push(fe(
                        id,
                        "UNKNOWN_CODE",
                        None,
                        format!("{code:?} is not a known {level}"),
                    ));
                    return None;
                }
                Some(Json::Array(
                    answers
                        .languages
                        .iter()
                        .map(|l| json!({"language": l, "value": code}))
                        .collect(),
                ))
            }
            (FieldType::SimpleType, AnswerValue::Multi(m)) if !coded => {
                let before = errs.len();
                for l in &answers.languages {
                    match m.get(l).map(|s| s.trim()).filter(|s| !s.is_empty()) {
                        None => errs.push(fe(
                            id,
                            "MISSING_LANGUAGE",
                            Some(l),
                            format!("enter this field in {l} too"),
                        )),
                        Some(text) => self.check_text(sf, text, Some(l), errs),
                    }
                }
                for l in m.keys() {
                    if !answers.languages.contains(l) {
                        errs.push(fe(
                            id,
                            "INVALID",
                            Some(l),
                            format!("{l} is not one of the chosen entry languages"),
                        ));
                    }
                }
                (errs.len() == before).then(|| {
                    Json::Array(
                        answers
                            .languages
                            .iter()
                            .filter_map(|l| m.get(l).map(|v| json!({"language": l, "value": v.trim()})))
                            .collect(),
                    )
                })
            }
            (FieldType::String | FieldType::Number, AnswerValue::Text(t)) => {
                let before = errs.len();
                let t = t.trim();
                self.check_text(sf, t, None, errs);
                if errs.len() == before
                    && (id == "UIN" || id.ends_with("UIN"))
                    && t.parse::<tessera_packet::ids::Uin>().is_err()
                {
                    errs.push(fe(
                        id,
                        "UIN_INVALID",
                        None,
                        "this UIN's check digit is wrong; re-read it from the card",
                    ));
                }
                if errs.len() == before
                    && id == "dateOfBirth"
                    && NaiveDate::parse_from_str(t, "%Y-%m-%d").is_err()
                {
                    errs.push(fe(id, "INVALID", None, "not a real calendar date (YYYY-MM-DD)"));
                }
                (errs.len() == before).then(|| json!(t))
            }
            _ => {
                let expected = if sf.kind == FieldType::SimpleType && !coded {
                    "one text per language, e.g. {\"eng\": \"...\", \"fra\": \"...\"}"
                } else {
                    "a single text or code"
                };
                errs.push(fe(id, "INVALID", None, format!("expected {expected}")));
                None
            }
        }
    }

    fn check_text(&self, sf: &SchemaField, text: &str, lang: Option<&str>, errs: &mut Vec<FieldError>) {
        let id = sf.id.as_str();
        if let Some(max) = sf.max_length
            && text.chars().count() > max
        {
            errs.push(fe(id, "INVALID", lang, format!("longer than {max} characters")));
            return;
        }
        for (vlang, code, re) in self.md.regexes.get(id).into_iter().flatten() {
            let applies = vlang.as_deref().is_none_or(|v| Some(v) == lang);
            if applies && !re.is_match(text) {
                errs.push(fe(id, code, lang, "the value does not have the expected format"));
                return;
            }
        }
        if sf.blocklist_checked {
            let lower = text.to_lowercase();
            let words: BTreeSet<&str> = lower
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .collect();
            let hit = self.md.blocklist.words.iter().find(|w| {
                w.lang.as_deref().is_none_or(|l| Some(l) == lang)
                    && words.contains(w.word.to_lowercase().as_str())
            });
            if hit.is_some() {
                errs.push(fe(id, "BLOCKLISTED", lang, "contains a word that is not allowed"));
            }
        }
    }

    fn check_location_chain(&self, answers: &Answers, errs: &mut Vec<FieldError>) {
        // Each chosen location must lie inside the chosen location one level up.
        let mut by_level: BTreeMap<u32, (&str, &str)> = BTreeMap::new();
        for sf in &self.md.schema.fields {
            let (Some(level), Some(AnswerValue::Text(code))) =
                (&sf.location_level, answers.demographics.get(&sf.id))
            else {
                continue;
            };
            if let Some(l) = self.md.locations.hierarchy.iter().find(|h| &h.name == level) {
                by_level.insert(l.level, (sf.id.as_str(), code.as_str()));
            }
        }
        let levels: Vec<(u32, (&str, &str))> = by_level.into_iter().collect();
        for w in levels.windows(2) {
            if let [(la, (_, upper)), (lb, (field, code))] = w
                && *lb == la + 1
                && let Some(loc) = self.md.locations.get(code)
                && loc.parent.as_deref() != Some(*upper)
            {
                errs.push(fe(
                    field,
                    "INVALID",
                    None,
                    format!("{code} does not lie in {upper}"),
                ));
            }
        }
    }
}

fn is_blank(v: &AnswerValue) -> bool {
    match v {
        AnswerValue::Text(t) => t.trim().is_empty(),
        AnswerValue::Multi(m) => m.values().all(|t| t.trim().is_empty()),
    }
}

/// Checks captured and excepted biometrics against the requirement. `captured` are attributes with an image.
pub fn check_biometrics(
    req: &BioRequirement,
    captured: &BTreeSet<BioAttribute>,
    exceptions: &BTreeSet<BioAttribute>,
    has_exception_photo: bool,
    md: &MasterData,
) -> Result<()> {
    let mut errs = Vec::new();
    let name = |a: &BioAttribute| format!("biometrics.{}", a.as_str());
    if !req.applicable {
        for a in captured.iter().chain(exceptions) {
            errs.push(fe(
                &name(a),
                "NOT_APPLICABLE",
                None,
                "biometrics are not part of this registration",
            ));
        }
        return if errs.is_empty() {
            Ok(())
        } else {
            Err(StationError::Validation(errs))
        };
    }
    for a in &req.attributes {
        if !captured.contains(a) && !exceptions.contains(a) {
            errs.push(fe(
                &name(a),
                "REQUIRED",
                None,
                "capture this biometric or mark it as an exception",
            ));
        }
    }
    for a in captured.iter().chain(exceptions) {
        if !req.attributes.contains(a) {
            errs.push(fe(
                &name(a),
                "NOT_APPLICABLE",
                None,
                "this biometric is not captured for this age group",
            ));
        }
        if captured.contains(a) && exceptions.contains(a) {
            errs.push(fe(
                &name(a),
                "INVALID",
                None,
                "captured and marked as an exception at the same time",
            ));
        }
    }
    if exceptions.contains(&BioAttribute::Face) {
        errs.push(fe(
            "biometrics.face",
            "INVALID",
            None,
            "the face cannot be an exception; capture a photo",
        ));
    }
    if !exceptions.is_empty() && req.exception_photo_required && !has_exception_photo {
        errs.push(fe(
            "biometrics.exceptionPhoto",
            "REQUIRED",
            None,
            "exceptions need an exception photo",
        ));
    }
    if let Some(e) = &req.validation_expr {
        let present: BTreeSet<BioAttribute> = captured.union(exceptions).copied().collect();
        if !md.expr(e)?.eval(&BioVars(&present))? {
            errs.push(fe(
                "biometrics",
                "INSUFFICIENT",
                None,
                format!("the captured set does not satisfy {e}"),
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(StationError::Validation(errs))
    }
}
