//! Master data: the country configuration (ID schema, UI specs, lists, centers, ...) as the station
//! receives it, parsed into typed structs and checked for consistency before use.
//!
//! The same documents come from the sample folder (`config/sample-country/`, loaded at `init` or in tests)
//! or, later, from the server's master-data sync. Each document is stored in the `master_data` table by name
//! with its version; [`MasterData::from_documents`] turns the set into a validated [`MasterData`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StationError};
use crate::expr::Expr;

/// Two-language (or more) label: language code to text.
pub type Label = BTreeMap<String, String>;

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Country name.
    pub country: String,
    /// Configuration version.
    pub config_version: String,
    /// ID-schema version.
    pub id_schema_version: String,
    /// Languages.
    pub languages: Languages,
}

/// Data-entry languages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Languages {
    /// Languages every multilingual value must be entered in.
    pub mandatory: Vec<String>,
    /// Languages that may be entered as well.
    pub optional: Vec<String>,
    /// Primary language.
    pub primary: String,
    /// Secondary language.
    pub secondary: String,
}

/// One validator of a field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Validator {
    /// Only `"regex"` is supported.
    #[serde(rename = "type")]
    pub kind: String,
    /// The pattern.
    pub validator: String,
    /// Language the validator applies to (`None` = all).
    #[serde(default)]
    pub lang_code: Option<String>,
    /// Error code reported when it fails.
    #[serde(default)]
    pub error_code: Option<String>,
}

/// Kind of an ID-schema field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FieldType {
    /// Plain string.
    String,
    /// Number.
    Number,
    /// Multilingual value.
    SimpleType,
    /// Document.
    DocumentType,
    /// Biometrics.
    BiometricsType,
}

/// One ID-schema field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaField {
    /// Field id.
    pub id: String,
    /// Kind.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Routing category (pvt, kyc, none, evidence, optional).
    pub field_category: String,
    /// Whether the operator enters it.
    #[serde(default)]
    pub input_required: bool,
    /// Required by the schema.
    #[serde(default)]
    pub required: bool,
    /// UPDATE group.
    #[serde(default)]
    pub group: Option<String>,
    /// Validators.
    #[serde(default)]
    pub validators: Vec<Validator>,
    /// Document category of a document field.
    #[serde(default)]
    pub sub_type: Option<String>,
    /// Dynamic list whose codes are allowed.
    #[serde(default)]
    pub dynamic_list: Option<String>,
    /// Location level.
    #[serde(default)]
    pub location_level: Option<String>,
    /// Whether blocklisted words are checked.
    #[serde(default)]
    pub blocklist_checked: bool,
    /// Maximum length in characters (per language for multilingual fields).
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Biometric attributes.
    #[serde(default)]
    pub bio_attributes: Vec<String>,
}

/// `id-schema.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdSchema {
    /// Version.
    pub id_version: String,
    /// Fields.
    pub fields: Vec<SchemaField>,
}

impl IdSchema {
    /// The field with this id.
    pub fn field(&self, id: &str) -> Option<&SchemaField> {
        self.fields.iter().find(|f| f.id == id)
    }
}

/// An expression holder as written in the UI spec.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExprSpec {
    /// Engine name (MVEL).
    #[serde(default)]
    pub engine: Option<String>,
    /// The expression.
    pub expr: String,
}

/// Age-group specific biometric rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalBio {
    /// Age group code.
    pub age_group: String,
    /// Process or `ALL`.
    pub process: String,
    /// Which captured/excepted attributes suffice.
    pub validation_expr: String,
    /// The attributes to capture.
    pub bio_attributes: Vec<String>,
}

/// One field on a UI-spec screen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UiField {
    /// ID-schema field id.
    pub id: String,
    /// Control type.
    pub control_type: String,
    /// Label.
    #[serde(default)]
    pub label: Label,
    /// Required.
    #[serde(default)]
    pub required: bool,
    /// Conditional requirement.
    #[serde(default)]
    pub required_on: Vec<ExprSpec>,
    /// Visibility.
    #[serde(default)]
    pub visible: Option<ExprSpec>,
    /// Group override (UPDATE).
    #[serde(default)]
    pub group: Option<String>,
    /// Biometric attributes.
    #[serde(default)]
    pub bio_attributes: Vec<String>,
    /// Age-group rules.
    #[serde(default)]
    pub conditional_bio_attributes: Vec<ConditionalBio>,
    /// Overall biometric sufficiency rule.
    #[serde(default)]
    pub validation_expr: Option<String>,
    /// Whether an exception photo is needed when an attribute is excepted.
    #[serde(default)]
    pub exception_photo_required: bool,
}

/// Consent screen text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentSpec {
    /// Version of the text.
    pub text_version: String,
    /// The text per language.
    pub text: Label,
}

/// One screen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Screen {
    /// Order.
    pub order: u32,
    /// Name.
    pub name: String,
    /// Label.
    #[serde(default)]
    pub label: Label,
    /// Consent text, on the consent screen.
    #[serde(default)]
    pub consent: Option<ConsentSpec>,
    /// Fields.
    #[serde(default)]
    pub fields: Vec<UiField>,
}

/// A UI spec for one process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UiSpec {
    /// Process id (NEW, UPDATE, LOST).
    pub id: String,
    /// Version.
    pub version: String,
    /// ID-schema version it was written for.
    pub id_schema_version: String,
    /// Label.
    #[serde(default)]
    pub label: Label,
    /// Whether the process is enabled.
    #[serde(default = "yes")]
    pub is_active: bool,
    /// Groups always included (UPDATE).
    #[serde(default)]
    pub always_groups: Vec<String>,
    /// Groups an operator may select (UPDATE).
    #[serde(default)]
    pub updatable_groups: Vec<String>,
    /// Screens.
    pub screens: Vec<Screen>,
}

fn yes() -> bool {
    true
}

impl UiSpec {
    /// Every field of every screen, in screen order.
    pub fn fields(&self) -> impl Iterator<Item = &UiField> {
        self.screens.iter().flat_map(|s| s.fields.iter())
    }

    /// The consent text, if the spec has a consent screen.
    pub fn consent(&self) -> Option<&ConsentSpec> {
        self.screens.iter().find_map(|s| s.consent.as_ref())
    }
}

/// An age group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgeGroup {
    /// Code.
    pub code: String,
    /// Minimum age, completed years.
    pub min_age: u32,
    /// Maximum age, inclusive.
    pub max_age: u32,
    /// Default biometric attributes.
    #[serde(default)]
    pub default_bio_attributes: Vec<String>,
}

/// `age-groups.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgeGroups {
    /// Groups.
    pub groups: Vec<AgeGroup>,
}

impl AgeGroups {
    /// The group for an age in completed years.
    pub fn for_age(&self, age: u32) -> Option<&AgeGroup> {
        self.groups.iter().find(|g| g.min_age <= age && age <= g.max_age)
    }
}

/// A registration center.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Center {
    /// 5-digit id.
    pub id: String,
    /// Name.
    pub name: Label,
    /// Location code.
    pub location: String,
    /// Whether active.
    #[serde(default = "yes")]
    pub active: bool,
    /// Working hours per weekday (`mon`..`sun`), `None` when closed.
    #[serde(default)]
    pub working_hours: BTreeMap<String, Option<(String, String)>>,
    /// Exceptional holidays.
    #[serde(default)]
    pub exceptional_holidays: Vec<Holiday>,
}

/// `centers.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Centers {
    /// Centers.
    pub centers: Vec<Center>,
}

/// A holiday.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holiday {
    /// Date, `YYYY-MM-DD`.
    pub date: chrono::NaiveDate,
    /// Location code (public holidays only).
    #[serde(default)]
    pub location: Option<String>,
    /// Name.
    pub name: Label,
}

/// `holidays.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holidays {
    /// Holidays.
    pub holidays: Vec<Holiday>,
}

/// A coded entry with a label.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Coded {
    /// Code.
    pub code: String,
    /// Label.
    pub label: Label,
}

/// Which document type proves which category for which age groups.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidDocument {
    /// Category.
    pub category: String,
    /// Type.
    #[serde(rename = "type")]
    pub doc_type: String,
    /// Age groups.
    pub age_groups: Vec<String>,
}

/// `documents.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Documents {
    /// Categories.
    pub categories: Vec<Coded>,
    /// Types.
    pub types: Vec<Coded>,
    /// Valid combinations.
    pub valid_documents: Vec<ValidDocument>,
    /// Accepted MIME types.
    pub accepted_formats: Vec<String>,
    /// Size limit in KiB.
    pub max_size_kb: u64,
}

/// `dynamic-lists.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DynamicLists {
    /// Lists by name.
    pub lists: BTreeMap<String, Vec<Coded>>,
}

/// A location level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocationLevel {
    /// Depth.
    pub level: u32,
    /// Name.
    pub name: String,
}

/// A location.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Location {
    /// Code.
    pub code: String,
    /// Level name.
    pub level: String,
    /// Parent code.
    pub parent: Option<String>,
    /// Name.
    pub name: Label,
}

/// `locations.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Locations {
    /// Levels.
    pub hierarchy: Vec<LocationLevel>,
    /// Locations.
    pub locations: Vec<Location>,
}

impl Locations {
    /// The location with this code.
    pub fn get(&self, code: &str) -> Option<&Location> {
        self.locations.iter().find(|l| l.code == code)
    }
}

/// A blocklisted word.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockedWord {
    /// The word.
    pub word: String,
    /// Language, `None` = all.
    pub lang: Option<String>,
}

/// `blocklisted-words.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Blocklist {
    /// Words.
    pub words: Vec<BlockedWord>,
}

/// A reason category.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReasonCategory {
    /// Code.
    pub code: String,
    /// Label.
    pub label: Label,
    /// Reasons.
    pub reasons: Vec<Coded>,
}

/// `reasons.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reasons {
    /// Categories.
    pub categories: Vec<ReasonCategory>,
}

impl Reasons {
    /// The reasons of a category.
    pub fn category(&self, code: &str) -> Option<&ReasonCategory> {
        self.categories.iter().find(|c| c.code == code)
    }
}

/// Freeze rules.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FreezeSettings {
    /// Days without master-data sync before registration stops.
    pub max_days_without_master_data_sync: i64,
    /// Packets awaiting approval before registration stops.
    pub max_packets_awaiting_approval: u64,
    /// Minimum free disk in MB.
    pub min_free_disk_mb: u64,
}

/// Login settings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginSettings {
    /// Failed attempts before lockout.
    pub max_failed_attempts: u32,
    /// Lockout minutes.
    pub lockout_minutes: i64,
    /// Idle logout seconds.
    pub idle_logout_seconds: i64,
    /// Idle warning seconds.
    pub idle_warning_seconds: i64,
}

/// Quality thresholds per modality.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Thresholds {
    /// Finger.
    pub finger: u8,
    /// Iris.
    pub iris: u8,
    /// Face.
    pub face: u8,
}

/// Biometric settings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BioSettings {
    /// Quality thresholds.
    pub quality_threshold: Thresholds,
    /// Retries.
    pub max_retries: u32,
    /// Exception photo required.
    pub exception_photo_required: bool,
    /// What sealing does when the officer has no enrolled fingers (the applicant cannot be checked
    /// against them): `warn` (default) or `block`.
    #[serde(default)]
    pub operator_without_fingers: OperatorFingersPolicy,
}

/// What sealing does when the officer has no enrolled fingers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OperatorFingersPolicy {
    /// The review shows a warning; sealing goes on (the operator cross-check is skipped).
    #[default]
    Warn,
    /// Sealing is refused until the officer enrols their fingers.
    Block,
}

/// Packet retention.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PacketSettings {
    /// Days after processing before deletion.
    pub retention_days_after_processed: i64,
    /// Days an approved packet may stay unexported.
    pub max_days_approved_not_exported: i64,
}

/// `station-settings.json`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StationSettings {
    /// Freeze rules.
    pub freeze: FreezeSettings,
    /// Login.
    pub login: LoginSettings,
    /// Biometrics.
    pub biometrics: BioSettings,
    /// Packets.
    pub packets: PacketSettings,
}

/// A labels file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Labels {
    /// Language.
    pub language: String,
    /// Key to text.
    pub labels: BTreeMap<String, String>,
}

/// The document names a complete master-data set consists of (the `master_data` table's keys).
pub const DOCUMENTS: &[&str] = &[
    "manifest",
    "id-schema",
    "ui-spec/NEW",
    "ui-spec/UPDATE",
    "ui-spec/LOST",
    "age-groups",
    "centers",
    "holidays",
    "documents",
    "dynamic-lists",
    "locations",
    "blocklisted-words",
    "reasons",
    "station-settings",
    "labels/eng",
    "labels/fra",
];

/// The validated master data the station works with.
#[derive(Debug, Clone)]
pub struct MasterData {
    /// Manifest.
    pub manifest: Manifest,
    /// ID schema.
    pub schema: IdSchema,
    /// UI specs by process id.
    pub ui_specs: BTreeMap<String, UiSpec>,
    /// Age groups.
    pub age_groups: AgeGroups,
    /// Centers.
    pub centers: Centers,
    /// Holidays.
    pub holidays: Holidays,
    /// Documents.
    pub documents: Documents,
    /// Dynamic lists.
    pub lists: DynamicLists,
    /// Locations.
    pub locations: Locations,
    /// Blocklist.
    pub blocklist: Blocklist,
    /// Reasons.
    pub reasons: Reasons,
    /// Station settings.
    pub settings: StationSettings,
    /// Labels by language.
    pub labels: BTreeMap<String, Labels>,
    /// Compiled regexes by field id (with the language they apply to).
    pub regexes: BTreeMap<String, Vec<(Option<String>, String, regex::Regex)>>,
    /// Compiled expressions by their text.
    pub exprs: BTreeMap<String, Expr>,
}

/// A raw master-data document: its name, version and JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Name from [`DOCUMENTS`].
    pub name: String,
    /// Version (from the document's `version`/`idVersion`/`configVersion`).
    pub version: String,
    /// JSON text.
    pub body: String,
}

const MAX_DOCUMENT: u64 = 4 * 1024 * 1024;

/// Reads the documents of a configuration folder (the layout of `config/sample-country/`).
pub fn read_folder(dir: &Path) -> Result<Vec<Document>> {
    let mut out = Vec::new();
    for name in DOCUMENTS {
        let path = dir.join(format!("{name}.json"));
        let meta = std::fs::metadata(&path).map_err(|source| StationError::ConfigRead {
            path: path.clone(),
            source,
        })?;
        if meta.len() > MAX_DOCUMENT {
            return Err(StationError::ConfigInvalid {
                file: (*name).into(),
                detail: format!("{} bytes is more than the {MAX_DOCUMENT} allowed", meta.len()),
            });
        }
        let body = std::fs::read_to_string(&path).map_err(|source| StationError::ConfigRead {
            path: path.clone(),
            source,
        })?;
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| StationError::ConfigParse {
            file: (*name).into(),
            detail: e.to_string(),
        })?;
        let version = ["version", "idVersion", "configVersion"]
            .iter()
            .find_map(|k| v.get(k).and_then(|x| x.as_str()))
            .unwrap_or("0")
            .to_owned();
        out.push(Document {
            name: (*name).into(),
            version,
            body,
        });
    }
    Ok(out)
}

fn parse<T: DeserializeOwned>(docs: &BTreeMap<&str, &Document>, name: &str) -> Result<T> {
    let d = docs.get(name).ok_or_else(|| StationError::ConfigInvalid {
        file: name.into(),
        detail: "the document is missing from the master data; sync master data again".into(),
    })?;
    serde_json::from_str(&d.body).map_err(|e| StationError::ConfigParse {
        file: name.into(),
        detail: e.to_string(),
    })
}

fn invalid(file: &str, detail: impl Into<String>) -> StationError {
    StationError::ConfigInvalid {
        file: file.into(),
        detail: detail.into(),
    }
}

impl MasterData {
    /// Parses and validates a complete document set.
    pub fn from_documents(docs: &[Document]) -> Result<Self> {
        let map: BTreeMap<&str, &Document> = docs.iter().map(|d| (d.name.as_str(), d)).collect();
        let mut ui_specs = BTreeMap::new();
        for p in ["NEW", "UPDATE", "LOST"] {
            let spec: UiSpec = parse(&map, &format!("ui-spec/{p}"))?;
            ui_specs.insert(p.to_owned(), spec);
        }
        let mut labels = BTreeMap::new();
        for l in ["eng", "fra"] {
            let lab: Labels = parse(&map, &format!("labels/{l}"))?;
            labels.insert(l.to_owned(), lab);
        }
        let mut md = Self {
            manifest: parse(&map, "manifest")?,
            schema: parse(&map, "id-schema")?,
            ui_specs,
            age_groups: parse(&map, "age-groups")?,
            centers: parse(&map, "centers")?,
            holidays: parse(&map, "holidays")?,
            documents: parse(&map, "documents")?,
            lists: parse(&map, "dynamic-lists")?,
            locations: parse(&map, "locations")?,
            blocklist: parse(&map, "blocklisted-words")?,
            reasons: parse(&map, "reasons")?,
            settings: parse(&map, "station-settings")?,
            labels,
            regexes: BTreeMap::new(),
            exprs: BTreeMap::new(),
        };
        md.validate()?;
        Ok(md)
    }

    /// Loads and validates a configuration folder.
    pub fn load_folder(dir: &Path) -> Result<Self> {
        Self::from_documents(&read_folder(dir)?)
    }

    /// The UI spec of a process.
    pub fn ui_spec(&self, process: &str) -> Option<&UiSpec> {
        self.ui_specs.get(process)
    }

    /// A compiled expression (all are compiled at load).
    pub fn expr(&self, text: &str) -> Result<&Expr> {
        self.exprs
            .get(text)
            .ok_or_else(|| invalid("ui-spec", format!("expression {text:?} was not compiled")))
    }

    fn validate(&mut self) -> Result<()> {
        const BIO: [&str; 13] = [
            "leftEye",
            "rightEye",
            "leftIndex",
            "leftMiddle",
            "leftRing",
            "leftLittle",
            "leftThumb",
            "rightIndex",
            "rightMiddle",
            "rightRing",
            "rightLittle",
            "rightThumb",
            "face",
        ];
        let langs: BTreeSet<&str> = self
            .manifest
            .languages
            .mandatory
            .iter()
            .chain(&self.manifest.languages.optional)
            .map(String::as_str)
            .collect();
        if !langs.contains(self.manifest.languages.primary.as_str()) {
            return Err(invalid(
                "manifest",
                "the primary language is not among the mandatory/optional languages",
            ));
        }
        if self.schema.id_version != self.manifest.id_schema_version {
            return Err(invalid(
                "id-schema",
                format!(
                    "idVersion {} differs from the manifest's idSchemaVersion {}",
                    self.schema.id_version, self.manifest.id_schema_version
                ),
            ));
        }
        let categories: BTreeSet<&str> = self
            .documents
            .categories
            .iter()
            .map(|c| c.code.as_str())
            .collect();
        let types: BTreeSet<&str> = self.documents.types.iter().map(|c| c.code.as_str()).collect();
        let age_codes: BTreeSet<&str> = self.age_groups.groups.iter().map(|g| g.code.as_str()).collect();
        let levels: BTreeSet<&str> = self.locations.hierarchy.iter().map(|l| l.name.as_str()).collect();
        let mut seen = BTreeSet::new();
        for f in &self.schema.fields {
            let file = "id-schema";
            if !seen.insert(f.id.as_str()) {
                return Err(invalid(file, format!("field {} appears twice", f.id)));
            }
            if !["pvt", "kyc", "none", "evidence", "optional"].contains(&f.field_category.as_str()) {
                return Err(invalid(
                    file,
                    format!("field {}: unknown fieldCategory {}", f.id, f.field_category),
                ));
            }
            if let Some(l) = &f.dynamic_list
                && !self.lists.lists.contains_key(l)
            {
                return Err(invalid(
                    file,
                    format!("field {}: dynamic list {l} does not exist", f.id),
                ));
            }
            if let Some(l) = &f.location_level
                && !levels.contains(l.as_str())
            {
                return Err(invalid(
                    file,
                    format!("field {}: location level {l} does not exist", f.id),
                ));
            }
            if f.kind == FieldType::DocumentType {
                match &f.sub_type {
                    Some(c) if categories.contains(c.as_str()) => {}
                    other => {
                        return Err(invalid(
                            file,
                            format!("field {}: document category {other:?} does not exist", f.id),
                        ));
                    }
                }
            }
            for a in &f.bio_attributes {
                if !BIO.contains(&a.as_str()) {
                    return Err(invalid(
                        file,
                        format!("field {}: unknown biometric attribute {a}", f.id),
                    ));
                }
            }
            let mut compiled = Vec::new();
            for v in &f.validators {
                if v.kind != "regex" {
                    return Err(invalid(
                        file,
                        format!("field {}: validator type {} is not supported", f.id, v.kind),
                    ));
                }
                let re = regex::RegexBuilder::new(&v.validator)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| invalid(file, format!("field {}: regex does not compile: {e}", f.id)))?;
                let code = v.error_code.clone().unwrap_or_else(|| "INVALID".into());
                compiled.push((v.lang_code.clone(), code, re));
            }
            self.regexes.insert(f.id.clone(), compiled);
        }
        if self
            .schema
            .fields
            .iter()
            .filter(|f| f.kind == FieldType::BiometricsType)
            .any(|f| f.bio_attributes.len() != 13)
        {
            return Err(invalid(
                "id-schema",
                "the biometrics field must list all 13 bioAttributes",
            ));
        }
        for (p, spec) in &self.ui_specs {
            let file = format!("ui-spec/{p}");
            if &spec.id != p {
                return Err(invalid(&file, format!("id {} does not match the file", spec.id)));
            }
            if spec.id_schema_version != self.schema.id_version {
                return Err(invalid(
                    &file,
                    format!("written for ID schema {}", spec.id_schema_version),
                ));
            }
            for f in spec.fields() {
                let Some(sf) = self.schema.field(&f.id) else {
                    return Err(invalid(&file, format!("field {} is not in the ID schema", f.id)));
                };
                let mut texts: Vec<&str> = f.required_on.iter().map(|e| e.expr.as_str()).collect();
                texts.extend(f.visible.iter().map(|e| e.expr.as_str()));
                for t in texts {
                    let e = Expr::parse(t).map_err(|e| invalid(&file, format!("field {}: {e}", f.id)))?;
                    if let Some(id) = e.identifiers().first() {
                        return Err(invalid(
                            &file,
                            format!("field {}: bare identifier {id} is not allowed here", f.id),
                        ));
                    }
                    self.exprs.insert(t.to_owned(), e);
                }
                let mut bio_texts: Vec<&str> = f
                    .conditional_bio_attributes
                    .iter()
                    .map(|c| c.validation_expr.as_str())
                    .collect();
                bio_texts.extend(f.validation_expr.as_deref());
                for t in bio_texts {
                    let e = Expr::parse(t).map_err(|e| invalid(&file, format!("field {}: {e}", f.id)))?;
                    for id in e.identifiers() {
                        if !BIO.contains(&id.as_str()) {
                            return Err(invalid(
                                &file,
                                format!("field {}: {id} is not a biometric attribute", f.id),
                            ));
                        }
                    }
                    self.exprs.insert(t.to_owned(), e);
                }
                for c in &f.conditional_bio_attributes {
                    if !age_codes.contains(c.age_group.as_str()) {
                        return Err(invalid(
                            &file,
                            format!("field {}: age group {} does not exist", f.id, c.age_group),
                        ));
                    }
                }
                if sf.kind == FieldType::BiometricsType
                    && f.bio_attributes.iter().any(|a| !sf.bio_attributes.contains(a))
                {
                    return Err(invalid(
                        &file,
                        format!("field {}: bioAttributes outside the schema's", f.id),
                    ));
                }
            }
            for g in spec.updatable_groups.iter().chain(&spec.always_groups) {
                if !self.schema.fields.iter().any(|f| f.group.as_ref() == Some(g)) {
                    return Err(invalid(&file, format!("group {g} has no field in the ID schema")));
                }
            }
        }
        // Age groups cover 0..=150 exactly once.
        for age in 0..=150u32 {
            let n = self
                .age_groups
                .groups
                .iter()
                .filter(|g| g.min_age <= age && age <= g.max_age)
                .count();
            if n != 1 {
                return Err(invalid(
                    "age-groups",
                    format!("age {age} is covered by {n} groups, expected exactly 1"),
                ));
            }
        }
        for v in &self.documents.valid_documents {
            if !categories.contains(v.category.as_str()) || !types.contains(v.doc_type.as_str()) {
                return Err(invalid(
                    "documents",
                    format!(
                        "valid document {}/{} refers to unknown codes",
                        v.category, v.doc_type
                    ),
                ));
            }
            if let Some(g) = v.age_groups.iter().find(|g| !age_codes.contains(g.as_str())) {
                return Err(invalid(
                    "documents",
                    format!(
                        "valid document {}/{}: unknown age group {g}",
                        v.category, v.doc_type
                    ),
                ));
            }
        }
        let codes: BTreeSet<&str> = self.locations.locations.iter().map(|l| l.code.as_str()).collect();
        let depth: BTreeMap<&str, u32> = self
            .locations
            .hierarchy
            .iter()
            .map(|l| (l.name.as_str(), l.level))
            .collect();
        for l in &self.locations.locations {
            let Some(d) = depth.get(l.level.as_str()) else {
                return Err(invalid(
                    "locations",
                    format!("location {}: unknown level {}", l.code, l.level),
                ));
            };
            match (&l.parent, d) {
                (None, 0) => {}
                (Some(p), d) if *d > 0 => {
                    let parent = self.locations.get(p).filter(|_| codes.contains(p.as_str()));
                    let ok = parent
                        .and_then(|pl| depth.get(pl.level.as_str()))
                        .is_some_and(|pd| pd + 1 == *d);
                    if !ok {
                        return Err(invalid(
                            "locations",
                            format!("location {}: parent {p} missing or not one level up", l.code),
                        ));
                    }
                }
                _ => {
                    return Err(invalid(
                        "locations",
                        format!("location {}: parent does not fit level {}", l.code, l.level),
                    ));
                }
            }
        }
        for c in &self.centers.centers {
            if c.id.len() != 5 || !c.id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("centers", format!("center id {} is not 5 digits", c.id)));
            }
            if !codes.contains(c.location.as_str()) {
                return Err(invalid(
                    "centers",
                    format!("center {}: location {} does not exist", c.id, c.location),
                ));
            }
        }
        if self.reasons.category("SUPERVISOR_REJECTION").is_none() {
            return Err(invalid("reasons", "the SUPERVISOR_REJECTION category is missing"));
        }
        let keys: Vec<BTreeSet<&String>> = self.labels.values().map(|l| l.labels.keys().collect()).collect();
        if keys.windows(2).any(|w| w.first() != w.get(1)) {
            return Err(invalid("labels", "the label files do not have the same keys"));
        }
        Ok(())
    }
}
