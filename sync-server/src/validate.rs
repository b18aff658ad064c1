//! Validation stage: the opened packet against the country's ID schema and master data, the packet-type
//! rules, the documents and biometrics it must carry, and the officer and supervisor sign-offs.
//!
//! A failure is a rejection (`REJECTED`), not a quarantine: the packet is authentic but not acceptable. Each
//! rejection has a stable reason code `validate:<code>[:<field>]` (no personal data), e.g.
//! `validate:required_missing:fullName`, `validate:invalid_format:postalCode`,
//! `validate:unknown_code:gender`, `validate:biometric_missing:leftIndex`,
//! `validate:supervisor_signoff_missing`, `validate:signoff_key_unknown:supervisor`.
//!
//! Rules come from the synced configuration the server already serves to stations: the `id-schema` item of
//! the packet's schema version, and the `master-data` items `dynamicLists`, `locations` and `ageGroups`.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike as _, NaiveDate};
use serde::Deserialize;
use tessera_packet::manifest::{Decision, SignOff, SignOffRole};
use tessera_packet::types::{BioAttribute, Modality, PacketContent, PacketType};
use tessera_packet::wire::SyncKind;

use crate::store::{Store, StoreError};

/// A validation failure: the reason code (without the `validate:` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub String);

impl Rejection {
    pub(crate) fn new(code: &str) -> Self {
        Self(code.to_owned())
    }
    pub(crate) fn field(code: &str, field: &str) -> Self {
        Self(format!("{code}:{field}"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawValidator {
    #[serde(rename = "type")]
    kind: String,
    validator: String,
    #[serde(default)]
    lang_code: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawField {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    max_length: Option<usize>,
    #[serde(default)]
    validators: Vec<RawValidator>,
    #[serde(default)]
    dynamic_list: Option<String>,
    #[serde(default)]
    location_level: Option<String>,
    #[serde(default)]
    sub_type: Option<String>,
    #[serde(default)]
    bio_attributes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawSchema {
    fields: Vec<RawField>,
}

/// One schema field with its compiled validators.
#[derive(Debug, Clone)]
struct Field {
    raw: RawField,
    regexes: Vec<(Option<String>, regex::Regex)>,
}

/// An age group: age range and default biometric attributes.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgeGroup {
    min_age: i64,
    max_age: i64,
    #[serde(default)]
    default_bio_attributes: Vec<String>,
}

/// The rules one ID-schema version and the master data define.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    schemas: HashMap<String, Vec<Field>>,
    lists: HashMap<String, Vec<String>>,
    /// location code -> level name
    locations: HashMap<String, String>,
    age_groups: Vec<AgeGroup>,
    /// The device-provider CA certificates (sync kind `certificates`), for [`crate::device_check`].
    pub devices: tessera_sbi::jws::TrustStore,
    /// location code -> parent code (master data `locations`), for holidays of a center's region.
    location_parents: HashMap<String, String>,
    /// Centers' calendars (master data `centers`).
    centers: HashMap<String, CenterCalendar>,
    /// Public holidays: (date, location code; `TSR` or any level of the hierarchy).
    holidays: Vec<(NaiveDate, String)>,
}

/// When a center is open: from master data `centers` (`workingHours` per weekday, `null` = closed; its
/// `exceptionalHolidays`; its `location` for public holidays; its `timezone`).
#[derive(Debug, Clone)]
struct CenterCalendar {
    location: String,
    /// Monday first; `None` when `workingHours` is absent (no weekday check).
    open_days: Option<[bool; 7]>,
    closed_dates: Vec<NaiveDate>,
    /// The center's time zone (its `timezone`; UTC when absent), for its local date.
    tz: jiff::tz::TimeZone,
}

/// A center's `timezone`: an IANA name (`Africa/Dakar`, with its daylight-saving rules), `UTC`, or a fixed
/// offset `+HH:MM` / `-HH:MM` (optionally after `UTC`). The zone database is bundled with the server.
/// The country configuration is refused at load when a center's zone is none of these
/// ([`crate::sync::plan_country_config`]).
pub fn center_time_zone(tz: &str) -> Result<jiff::tz::TimeZone, String> {
    let t = tz.trim();
    if t.is_empty() || t == "UTC" || t == "Z" {
        return Ok(jiff::tz::TimeZone::UTC);
    }
    let offset = t.strip_prefix("UTC").unwrap_or(t);
    if let Some((sign, rest)) = match offset.as_bytes().first() {
        Some(b'+') => Some((1, &offset[1..])),
        Some(b'-') => Some((-1, &offset[1..])),
        _ => None,
    } {
        let bad = || format!("time zone {tz:?}: an offset is +HH:MM or -HH:MM, from -14:00 to +14:00");
        let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
        let h: i32 = h.parse().map_err(|_| bad())?;
        let m: i32 = m.parse().map_err(|_| bad())?;
        if !(0..=14).contains(&h) || !(0..60).contains(&m) || (h == 14 && m > 0) {
            return Err(bad());
        }
        let secs = sign * (h * 3600 + m * 60);
        return jiff::tz::Offset::from_seconds(secs)
            .map(jiff::tz::TimeZone::fixed)
            .map_err(|_| bad());
    }
    jiff::tz::TimeZone::get(t).map_err(|_| {
        format!(
            "time zone {tz:?} is not known: use an IANA name such as \"Africa/Dakar\", \"UTC\", or an offset \
             such as \"+01:00\""
        )
    })
}

fn center_calendar(c: &serde_json::Value) -> CenterCalendar {
    let open_days = c.get("workingHours").and_then(|w| w.as_object()).map(|w| {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map(|d| w.get(d).is_some_and(|v| !v.is_null()))
    });
    let closed_dates = c
        .get("exceptionalHolidays")
        .and_then(|h| h.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|h| h.get("date")?.as_str())
                .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .collect()
        })
        .unwrap_or_default();
    CenterCalendar {
        location: c
            .get("location")
            .and_then(|l| l.as_str())
            .unwrap_or_default()
            .to_owned(),
        open_days,
        closed_dates,
        // The configuration was checked at load; a zone this server does not know counts as UTC.
        tz: c
            .get("timezone")
            .and_then(|t| t.as_str())
            .and_then(|t| center_time_zone(t).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC),
    }
}

fn rule_error(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: "country configuration",
        detail: format!("{what}: {e}"),
    }
}

impl Rules {
    /// Builds the rules from the ID-schema items (key = version) and master-data items (key = name).
    pub fn from_items(
        schemas: &[(String, serde_json::Value)],
        master: &BTreeMap<String, serde_json::Value>,
    ) -> Result<Self, StoreError> {
        let mut rules = Rules::default();
        for (version, body) in schemas {
            let raw: RawSchema = serde_json::from_value(body.clone())
                .map_err(|e| rule_error(&format!("id-schema {version}"), e))?;
            let mut fields = Vec::with_capacity(raw.fields.len());
            for f in raw.fields {
                let mut regexes = Vec::new();
                for v in f.validators.iter().filter(|v| v.kind == "regex") {
                    let re = regex::Regex::new(&v.validator)
                        .map_err(|e| rule_error(&format!("id-schema {version} field {}", f.id), e))?;
                    regexes.push((v.lang_code.clone(), re));
                }
                fields.push(Field { raw: f, regexes });
            }
            rules.schemas.insert(version.clone(), fields);
        }
        if let Some(lists) = master
            .get("dynamicLists")
            .and_then(|v| v.get("lists"))
            .and_then(|v| v.as_object())
        {
            for (name, entries) in lists {
                let codes = entries
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e.get("code").and_then(|c| c.as_str()).map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                rules.lists.insert(name.clone(), codes);
            }
        }
        if let Some(locs) = master
            .get("locations")
            .and_then(|v| v.get("locations"))
            .and_then(|v| v.as_array())
        {
            for l in locs {
                if let (Some(code), Some(level)) = (
                    l.get("code").and_then(|c| c.as_str()),
                    l.get("level").and_then(|c| c.as_str()),
                ) {
                    rules.locations.insert(code.to_owned(), level.to_owned());
                    if let Some(parent) = l.get("parent").and_then(|p| p.as_str()) {
                        rules.location_parents.insert(code.to_owned(), parent.to_owned());
                    }
                }
            }
        }
        if let Some(centers) = master
            .get("centers")
            .and_then(|v| v.get("centers"))
            .and_then(|v| v.as_array())
        {
            for c in centers {
                if let Some(id) = c.get("id").and_then(|i| i.as_str()) {
                    rules.centers.insert(id.to_owned(), center_calendar(c));
                }
            }
        }
        if let Some(holidays) = master
            .get("holidays")
            .and_then(|v| v.get("holidays"))
            .and_then(|v| v.as_array())
        {
            rules.holidays = holidays
                .iter()
                .filter_map(|h| {
                    let date = NaiveDate::parse_from_str(h.get("date")?.as_str()?, "%Y-%m-%d").ok()?;
                    Some((date, h.get("location")?.as_str()?.to_owned()))
                })
                .collect();
        }
        if let Some(groups) = master.get("ageGroups").and_then(|v| v.get("groups")) {
            rules.age_groups =
                serde_json::from_value(groups.clone()).map_err(|e| rule_error("master-data ageGroups", e))?;
        }
        Ok(rules)
    }

    /// Loads the rules from the store's sync items.
    pub async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let schemas = store
            .sync_items(SyncKind::IdSchema, "", 0, 10_000)
            .await?
            .into_iter()
            .filter(|i| !i.deleted)
            .map(|i| (i.key, i.body))
            .collect::<Vec<_>>();
        let master = store
            .sync_items(SyncKind::MasterData, "", 0, 10_000)
            .await?
            .into_iter()
            .filter(|i| !i.deleted)
            .map(|i| (i.key, i.body))
            .collect::<BTreeMap<_, _>>();
        let mut rules = Self::from_items(&schemas, &master)?;
        let certificates = store
            .sync_items(SyncKind::Certificates, "", 0, 10_000)
            .await?
            .into_iter()
            .filter(|i| !i.deleted)
            .collect::<Vec<_>>();
        rules.devices =
            crate::device_check::trust_from_items(certificates.iter().map(|i| (i.key.as_str(), &i.body)))
                .map_err(|e| rule_error("device-provider certificates", e))?;
        Ok(rules)
    }

    /// Whether any ID schema is configured.
    pub fn has_schema(&self) -> bool {
        !self.schemas.is_empty()
    }

    /// Whether `center` was open on the day of `at` (Unix seconds) in the center's local time: its weekday has
    /// working hours, and the date is neither a public holiday of its location (or a parent location, `TSR`
    /// = the whole country) nor one of its exceptional holidays. `None` when the center is not in the master
    /// data (nothing to check).
    pub fn is_working_day(&self, center: &str, at: i64) -> Option<bool> {
        let cal = self.centers.get(center)?;
        let day = cal.tz.to_datetime(jiff::Timestamp::from_second(at).ok()?).date();
        let local = NaiveDate::from_ymd_opt(i32::from(day.year()), day.month() as u32, day.day() as u32)?;
        if let Some(days) = cal.open_days
            && days.get(local.weekday().num_days_from_monday() as usize) == Some(&false)
        {
            return Some(false);
        }
        if cal.closed_dates.contains(&local) {
            return Some(false);
        }
        let mut places = vec!["TSR".to_owned()];
        let mut loc = Some(cal.location.clone());
        while let Some(l) = loc.filter(|l| !l.is_empty() && !places.contains(l)) {
            loc = self.location_parents.get(&l).cloned();
            places.push(l);
        }
        Some(
            !self
                .holidays
                .iter()
                .any(|(d, l)| *d == local && places.contains(l)),
        )
    }
}

/// What [`check_creation`] found: a rejection, and flags to record in the packet's history either way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreationCheck {
    /// The rejection (reason code without `validate:`), if any.
    pub rejection: Option<Rejection>,
    /// Flags (`flag:clock_ahead`, `flag:clock_behind`, `flag:not_working_day`).
    pub flags: Vec<String>,
}

/// The facts [`check_creation`] works on.
#[derive(Debug, Clone)]
pub struct CreationFacts<'a> {
    /// The packet's center.
    pub center: &'a str,
    /// The packet's machine.
    pub machine: &'a str,
    /// The officer (`meta.operator_id`).
    pub officer: &'a str,
    /// The approving supervisor's operator id, when there is one.
    pub supervisor: Option<&'a str>,
    /// `meta.created_at` (Unix seconds, station clock).
    pub created_at: i64,
    /// When the server received the packet.
    pub received_at: i64,
    /// When the machine's enrolment was requested, when known.
    pub machine_requested_at: Option<i64>,
}

/// Validation at creation time: center, machine, officer and supervisor must have been active when the packet
/// was created (`center_inactive_at_creation`, `machine_inactive_at_creation`,
/// `operator_inactive_at_creation:officer|supervisor`); the day must be a working day of the center (per
/// `working_day`: `not_working_day`, or a flag); a station clock ahead of the receipt or behind the machine's
/// enrolment by more than `skew_secs` is flagged, never rejected, and the statuses are then taken at the
/// earlier of creation and receipt. Status history unknown that early counts as active.
pub async fn check_creation(
    store: &dyn Store,
    rules: &Rules,
    working_day: crate::settings::WorkingDay,
    skew_secs: i64,
    f: &CreationFacts<'_>,
) -> Result<CreationCheck, StoreError> {
    use crate::settings::WorkingDay;
    use crate::store::status_kind as k;
    let mut out = CreationCheck::default();
    if f.created_at > f.received_at + skew_secs {
        out.flags.push("flag:clock_ahead".into());
    }
    if let Some(req) = f.machine_requested_at
        && f.created_at < req - skew_secs
    {
        out.flags.push("flag:clock_behind".into());
    }
    let at = f.created_at.min(f.received_at);
    let checks: [(&str, Option<&str>, &str, Rejection); 4] = [
        (
            k::CENTER,
            Some(f.center),
            k::INACTIVE,
            Rejection::new("center_inactive_at_creation"),
        ),
        (
            k::MACHINE,
            Some(f.machine),
            tessera_packet::wire::MachineStatus::Suspended.as_str(),
            Rejection::new("machine_inactive_at_creation"),
        ),
        (
            k::OPERATOR,
            Some(f.officer),
            k::INACTIVE,
            Rejection::field("operator_inactive_at_creation", "officer"),
        ),
        (
            k::OPERATOR,
            f.supervisor,
            k::INACTIVE,
            Rejection::field("operator_inactive_at_creation", "supervisor"),
        ),
    ];
    for (kind, item, inactive, rejection) in checks {
        let Some(item) = item else { continue };
        if store.status_at(kind, item, at).await?.as_deref() == Some(inactive) {
            out.rejection = Some(rejection);
            return Ok(out);
        }
    }
    if working_day != WorkingDay::Off && rules.is_working_day(f.center, at) == Some(false) {
        match working_day {
            WorkingDay::Reject => out.rejection = Some(Rejection::new("not_working_day")),
            _ => out.flags.push("flag:not_working_day".into()),
        }
    }
    Ok(out)
}

fn age_on(dob: NaiveDate, on: NaiveDate) -> i64 {
    let mut age = i64::from(on.year() - dob.year());
    if (on.month(), on.day()) < (dob.month(), dob.day()) {
        age -= 1;
    }
    age
}

fn is_lang_values(v: &serde_json::Value) -> bool {
    v.as_array().is_some_and(|a| {
        !a.is_empty()
            && a.iter().all(|e| {
                e.get("language").and_then(|l| l.as_str()).is_some()
                    && e.get("value").and_then(|l| l.as_str()).is_some()
            })
    })
}

/// (language, text) pairs of a value: the entries of a multilingual value, or the string itself.
fn texts(v: &serde_json::Value) -> Vec<(Option<&str>, &str)> {
    match v {
        serde_json::Value::String(s) => vec![(None, s.as_str())],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|e| {
                Some((
                    e.get("language").and_then(|l| l.as_str()),
                    e.get("value").and_then(|l| l.as_str())?,
                ))
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn bio_attribute(name: &str) -> Option<BioAttribute> {
    BioAttribute::ALL.into_iter().find(|a| a.as_str() == name)
}

/// Checks the demographics, documents and biometrics of `content` (the sign-offs are checked by
/// [`check_signoffs`]).
pub fn check_content(rules: &Rules, content: &PacketContent) -> Result<(), Rejection> {
    let t = content.packet_type;
    if !t.station_created() {
        return Err(Rejection::field("packet_type_not_allowed", t.as_str()));
    }
    if !content.meta.consent.given {
        return Err(Rejection::new("consent_missing"));
    }
    let fields = rules
        .schemas
        .get(&content.id_schema_version)
        .ok_or_else(|| Rejection::new("id_schema_unknown"))?;
    let identity = content
        .identity
        .as_object()
        .ok_or_else(|| Rejection::new("identity_not_object"))?;
    let by_id: HashMap<&str, &Field> = fields.iter().map(|f| (f.raw.id.as_str(), f)).collect();
    for key in identity.keys() {
        if !by_id.contains_key(key.as_str()) {
            return Err(Rejection::field("unknown_field", key));
        }
    }
    match t {
        PacketType::New if content.meta.uin.is_some() => {
            return Err(Rejection::new("uin_not_allowed_for_new"));
        }
        PacketType::Update | PacketType::Correction => {
            if content.meta.uin.is_none() {
                return Err(Rejection::new("uin_missing"));
            }
            if t == PacketType::Update && content.meta.changed_groups.is_empty() {
                return Err(Rejection::new("changed_groups_missing"));
            }
        }
        _ => {}
    }
    let mut dob: Option<NaiveDate> = None;
    for f in fields {
        let id = f.raw.id.as_str();
        let value = identity.get(id).filter(|v| !v.is_null());
        let Some(value) = value else {
            // Only NEW registrations must carry every required field; UPDATE, LOST and CORRECTION carry what
            // changes or what is known.
            if f.raw.required && t == PacketType::New && f.raw.kind != "biometricsType" {
                return Err(Rejection::field("required_missing", id));
            }
            continue;
        };
        match f.raw.kind.as_str() {
            "string" => {
                if !value.is_string() {
                    return Err(Rejection::field("wrong_type", id));
                }
            }
            "number" => {
                if !(value.is_number() || value.as_str().is_some_and(|s| s.parse::<f64>().is_ok())) {
                    return Err(Rejection::field("wrong_type", id));
                }
            }
            "simpleType" => {
                if !is_lang_values(value) {
                    return Err(Rejection::field("wrong_type", id));
                }
            }
            "documentType" => {
                let name = value
                    .get("value")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| Rejection::field("wrong_type", id))?;
                let doc = content
                    .evidence
                    .iter()
                    .chain(&content.optional)
                    .find(|d| d.name == name)
                    .ok_or_else(|| Rejection::field("document_missing", id))?;
                if doc.content.is_empty() {
                    return Err(Rejection::field("document_empty", id));
                }
                if let Some(sub) = &f.raw.sub_type
                    && &doc.category != sub
                {
                    return Err(Rejection::field("document_category", id));
                }
                continue;
            }
            "biometricsType" => {
                if !value.is_object() {
                    return Err(Rejection::field("wrong_type", id));
                }
                continue;
            }
            _ => continue,
        }
        for (lang, text) in texts(value) {
            if let Some(max) = f.raw.max_length
                && text.chars().count() > max
            {
                return Err(Rejection::field("too_long", id));
            }
            for (vlang, re) in &f.regexes {
                let applies = vlang.as_deref().is_none_or(|v| Some(v) == lang);
                if applies && !re.is_match(text) {
                    return Err(Rejection::field("invalid_format", id));
                }
            }
            if let Some(list) = &f.raw.dynamic_list
                && let Some(codes) = rules.lists.get(list)
                && !codes.iter().any(|c| c == text)
            {
                return Err(Rejection::field("unknown_code", id));
            }
            if let Some(level) = &f.raw.location_level
                && !rules.locations.is_empty()
                && rules.locations.get(text) != Some(level)
            {
                return Err(Rejection::field("unknown_location", id));
            }
        }
        if id == "dateOfBirth" {
            let text = value.as_str().unwrap_or_default();
            let d = NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| Rejection::field("invalid_date", id))?;
            let on = content.created_at.date_naive();
            let age = age_on(d, on);
            if !(0..=150).contains(&age) {
                return Err(Rejection::field("invalid_date", id));
            }
            dob = Some(d);
        }
    }
    check_biometrics(rules, fields, content, dob)
}

fn check_biometrics(
    rules: &Rules,
    fields: &[Field],
    content: &PacketContent,
    dob: Option<NaiveDate>,
) -> Result<(), Rejection> {
    let t = content.packet_type;
    let needed = match t {
        PacketType::New | PacketType::Lost | PacketType::Correction => true,
        PacketType::Update => content.meta.changed_groups.iter().any(|g| g == "Biometrics"),
        _ => false,
    };
    let mut seen = std::collections::HashSet::new();
    for b in &content.biometrics {
        if !seen.insert(b.attribute) {
            return Err(Rejection::field("biometric_duplicated", b.attribute.as_str()));
        }
        if b.exception.is_none() && b.image.is_empty() {
            return Err(Rejection::field("biometric_empty", b.attribute.as_str()));
        }
        if b.exception.is_none() && b.attribute.modality() == Modality::Finger {
            let records = tessera_biometrics::iso19794_4::decode(&b.image)
                .map_err(|_| Rejection::field("biometric_invalid", b.attribute.as_str()))?;
            if records.is_empty() {
                return Err(Rejection::field("biometric_invalid", b.attribute.as_str()));
            }
        }
    }
    if !needed {
        return Ok(());
    }
    let schema_attrs: Vec<BioAttribute> = fields
        .iter()
        .filter(|f| f.raw.kind == "biometricsType")
        .flat_map(|f| f.raw.bio_attributes.iter().filter_map(|a| bio_attribute(a)))
        .collect();
    let age = dob.map(|d| age_on(d, content.created_at.date_naive()));
    let group = age.and_then(|a| rules.age_groups.iter().find(|g| g.min_age <= a && a <= g.max_age));
    let required: Vec<BioAttribute> = match group {
        Some(g) if !g.default_bio_attributes.is_empty() => g
            .default_bio_attributes
            .iter()
            .filter_map(|a| bio_attribute(a))
            .filter(|a| schema_attrs.is_empty() || schema_attrs.contains(a))
            .collect(),
        _ => schema_attrs,
    };
    for a in required {
        if !content.biometrics.iter().any(|b| b.attribute == a) {
            return Err(Rejection::field("biometric_missing", a.as_str()));
        }
    }
    let excepted = content.biometrics.iter().any(|b| b.exception.is_some());
    if excepted
        && !content
            .evidence
            .iter()
            .any(|d| (d.category == "EXCEPTION_PHOTO" || d.category == "POE") && !d.content.is_empty())
    {
        return Err(Rejection::new("exception_proof_missing"));
    }
    if !content
        .biometrics
        .iter()
        .any(|b| b.exception.is_none() && !b.image.is_empty())
    {
        return Err(Rejection::new("no_biometric_captured"));
    }
    Ok(())
}

/// The operator ids whose registered keys [`check_signoffs`] needs.
pub fn signoff_operators(content: &PacketContent, signoffs: &[SignOff]) -> Vec<String> {
    let mut ids: Vec<String> = signoffs.iter().map(|s| s.operator_id.clone()).collect();
    ids.push(content.meta.operator_id.clone());
    ids.sort();
    ids.dedup();
    ids
}

/// Checks the sign-offs (their signatures were verified with the packet): an approving officer sign-off by
/// the packet's operator, an approving supervisor sign-off, and every sign-off key registered for its
/// operator (`known`: operator id → registered public keys, from stations of the packet's center).
pub fn check_signoffs(
    content: &PacketContent,
    signoffs: &[SignOff],
    known: &HashMap<String, Vec<[u8; 32]>>,
) -> Result<(), Rejection> {
    let officer = signoffs
        .iter()
        .find(|s| s.role == SignOffRole::Officer && s.operator_id == content.meta.operator_id)
        .ok_or_else(|| Rejection::new("officer_signoff_missing"))?;
    if officer.decision != Decision::Approved {
        return Err(Rejection::new("officer_signoff_not_approved"));
    }
    let supervisor = signoffs
        .iter()
        .rev()
        .find(|s| s.role == SignOffRole::Supervisor)
        .ok_or_else(|| Rejection::new("supervisor_signoff_missing"))?;
    if let Decision::Rejected { .. } = supervisor.decision {
        return Err(Rejection::new("supervisor_rejected"));
    }
    for s in signoffs {
        let role = match s.role {
            SignOffRole::Officer => "officer",
            SignOffRole::Supervisor => "supervisor",
        };
        let key = s
            .verifying_key()
            .map_err(|_| Rejection::field("signoff_key_invalid", role))?;
        let registered = known
            .get(&s.operator_id)
            .is_some_and(|keys| keys.iter().any(|k| k == key.as_bytes()));
        if !registered {
            return Err(Rejection::field("signoff_key_unknown", role));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tessera_packet::sample::{SampleSize, sample_content};

    fn sample_rules() -> Rules {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sample-country");
        let read = |f: &str| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
        };
        let master: BTreeMap<String, serde_json::Value> = [
            ("dynamicLists".to_owned(), read("dynamic-lists.json")),
            ("locations".to_owned(), read("locations.json")),
            ("ageGroups".to_owned(), read("age-groups.json")),
            ("centers".to_owned(), read("centers.json")),
            ("holidays".to_owned(), read("holidays.json")),
        ]
        .into_iter()
        .collect();
        Rules::from_items(&[("1.0".to_owned(), read("id-schema.json"))], &master).unwrap()
    }

    #[test]
    fn working_days_follow_hours_holidays_and_the_center_offset() {
        let rules = sample_rules();
        let at = |y, m, d, h| {
            chrono::Utc
                .with_ymd_and_hms(y, m, d, h, 0, 0)
                .unwrap()
                .timestamp()
        };
        use chrono::TimeZone as _;
        assert_eq!(
            rules.is_working_day("10001", at(2026, 11, 20, 10)),
            Some(true),
            "a Friday"
        );
        assert_eq!(
            rules.is_working_day("10001", at(2026, 11, 21, 10)),
            Some(false),
            "no Saturday hours"
        );
        assert_eq!(
            rules.is_working_day("10002", at(2026, 11, 21, 10)),
            Some(true),
            "10002 opens Saturdays"
        );
        assert_eq!(
            rules.is_working_day("10001", at(2026, 12, 25, 10)),
            Some(false),
            "TSR holiday"
        );
        assert_eq!(
            rules.is_working_day("10001", at(2026, 12, 24, 10)),
            Some(false),
            "its own closure"
        );
        assert_eq!(
            rules.is_working_day("10002", at(2026, 12, 24, 10)),
            Some(true),
            "not 10002's"
        );
        assert_eq!(
            rules.is_working_day("10001", at(2026, 9, 21, 10)),
            Some(false),
            "holiday of a parent region"
        );
        assert_eq!(
            rules.is_working_day("10003", at(2026, 9, 21, 10)),
            Some(true),
            "another region"
        );
        assert_eq!(
            rules.is_working_day("99999", at(2026, 12, 25, 10)),
            None,
            "unknown center"
        );
    }

    #[test]
    fn center_time_zones_names_offsets_and_errors() {
        let at = |secs: i64, tz: &str| {
            jiff::Timestamp::from_second(secs)
                .unwrap()
                .to_zoned_datetime(center_time_zone(tz).unwrap())
                .offset()
                .seconds()
        };
        // 2026-07-01 12:00 UTC and 2026-01-15 12:00 UTC.
        let (july, january) = (1_782_907_200, 1_768_478_400);
        assert_eq!(at(july, "UTC"), 0);
        assert_eq!(at(july, ""), 0);
        assert_eq!(at(july, "+01:30"), 5400);
        assert_eq!(at(july, "UTC-05:00"), -18000);
        assert_eq!(at(july, "Africa/Dakar"), 0);
        assert_eq!(at(july, "Asia/Kolkata"), 19800);
        assert_eq!(at(july, "Europe/Paris"), 7200, "summer time");
        assert_eq!(at(january, "Europe/Paris"), 3600, "winter time");
        for bad in ["+99:00", "+14:30", "+1x:00", "Mars/Olympus_Mons", "GMT+25"] {
            let e = center_time_zone(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn a_named_zone_moves_the_local_date() {
        let mut rules = sample_rules();
        // Friday 2026-11-20 20:00 UTC is already Saturday 05:00 in Tokyo: 10001 has no Saturday hours.
        let friday_evening = 1_795_204_800;
        assert_eq!(rules.is_working_day("10001", friday_evening), Some(true));
        rules.centers.get_mut("10001").unwrap().tz = center_time_zone("Asia/Tokyo").unwrap();
        assert_eq!(rules.is_working_day("10001", friday_evening), Some(false));
    }

    #[test]
    fn sample_content_is_rejected_with_a_field_reason() {
        // The packet crate's sample uses "1990/04/12" for the date of birth, which the schema's regex refuses.
        let rules = sample_rules();
        let c = sample_content(1, SampleSize::Small);
        let err = check_content(&rules, &c).unwrap_err();
        assert!(err.0.contains(':'), "{err:?}");
        let mut bad = c.clone();
        bad.id_schema_version = "9.9".into();
        assert_eq!(check_content(&rules, &bad).unwrap_err().0, "id_schema_unknown");
        let mut bad = c;
        bad.meta.consent.given = false;
        assert_eq!(check_content(&rules, &bad).unwrap_err().0, "consent_missing");
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,20}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn validation_never_panics_on_arbitrary_identities(
            fields in prop::collection::btree_map(
                prop_oneof![
                    Just("fullName".to_owned()), Just("dateOfBirth".to_owned()), Just("gender".to_owned()),
                    Just("postalCode".to_owned()), Just("proofOfAddress".to_owned()),
                    Just("individualBiometrics".to_owned()), "[a-z]{1,8}"
                ],
                json_value(),
                0..8,
            )
        ) {
            let rules = sample_rules();
            let mut c = sample_content(2, SampleSize::Small);
            c.identity = serde_json::Value::Object(fields.into_iter().collect());
            let _ = check_content(&rules, &c);
        }
    }
}
