//! Local biometric cross-checks before sealing: the applicant's fingers must not match each other (the
//! same finger presented twice), and must not match the officer's own (an officer registering themself).
//!
//! - Finger templates (minutiae, `tessera_biometrics::template::Template` bytes) are extracted when a
//!   finger is captured and kept beside the image in the draft (`draft_blobs`, name `tpl:<attribute>`; an
//!   empty blob means the image gave no usable finger). Sealing extracts any that are missing.
//! - Operators enrol their own fingers on the station ([`Station::enrol_operator_biometrics`], captured
//!   through the SBI client like an applicant's); only templates are kept, in the encrypted store
//!   (table `operator_fingers`), never images.
//! - Sealing runs [`tessera_biometrics::cross_check::duplicate_fingers`] and
//!   [`tessera_biometrics::cross_check::matches_person`]; a hit refuses the seal with
//!   [`StationError::BiometricCrossCheck`] naming the finger positions, and the audit log records
//!   `SEAL_REFUSED`. Messages and logs carry positions and counts only, never scores or templates.
//! - An officer with no enrolled fingers: `station-settings.json` `biometrics.operatorWithoutFingers` is
//!   `"warn"` (default: the review shows a warning and sealing goes on, so a new officer is not stopped
//!   from working before their fingers are enrolled) or `"block"` (sealing is refused until they enrol).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use tessera_biometrics::cross_check;
use tessera_biometrics::iso19794_4::{self, FingerPosition};
use tessera_biometrics::minutiae::Minutia;
use tessera_biometrics::template::Template;
use tessera_packet::types::{BioAttribute, Modality};
use tessera_sbi::client::{ClientError, capture_spec_for};
use tessera_sbi::protocol::{BioType, HashChain, TransactionId};
use tracing::{debug, info, warn};

use crate::audit;
use crate::capture::{CapturePart, DeviceOptions, attribute_of};
use crate::error::{FieldError, Result, StationError};
use crate::masterdata::OperatorFingersPolicy;
use crate::station::Station;

/// Prefix of a draft blob holding a finger template.
pub(crate) const TEMPLATE_BLOB: &str = "tpl:";

/// The blob name of the template of `a`.
pub(crate) fn template_blob(a: BioAttribute) -> String {
    format!("{TEMPLATE_BLOB}{}", a.as_str())
}

/// The ISO finger position of a finger attribute (`None` for irises and face).
pub fn finger_position(a: BioAttribute) -> Option<FingerPosition> {
    use BioAttribute as A;
    use FingerPosition as F;
    Some(match a {
        A::RightThumb => F::RightThumb,
        A::RightIndex => F::RightIndex,
        A::RightMiddle => F::RightMiddle,
        A::RightRing => F::RightRing,
        A::RightLittle => F::RightLittle,
        A::LeftThumb => F::LeftThumb,
        A::LeftIndex => F::LeftIndex,
        A::LeftMiddle => F::LeftMiddle,
        A::LeftRing => F::LeftRing,
        A::LeftLittle => F::LeftLittle,
        A::LeftEye | A::RightEye | A::Face => return None,
    })
}

fn attribute_of_position(p: FingerPosition) -> Option<BioAttribute> {
    BioAttribute::ALL
        .into_iter()
        .find(|a| finger_position(*a) == Some(p))
}

/// Extracts the minutiae template of a finger image record (ISO/IEC 19794-4). Returns the template bytes,
/// or an empty vector when the record holds no usable finger (not decodable, too small, no ridges): such a
/// finger is left out of the cross-checks. Not a finger attribute: empty.
pub fn finger_template(a: BioAttribute, iso: &[u8]) -> Vec<u8> {
    let Some(position) = finger_position(a) else {
        return Vec::new();
    };
    let extracted = iso19794_4::decode(iso)
        .map_err(|e| e.to_string())
        .and_then(|recs| {
            let rec = recs.into_iter().next().ok_or("no finger record")?;
            let img = rec.to_gray().map_err(|e| e.to_string())?;
            let ex = tessera_biometrics::extract::extract(&img).map_err(|e| e.to_string())?;
            Ok((rec, ex.minutiae))
        });
    match extracted {
        Ok((rec, minutiae)) => Template {
            position,
            quality: rec.quality,
            width: rec.width,
            height: rec.height,
            minutiae,
        }
        .to_bytes(),
        Err(_) => {
            // The reason is not logged: a record-format error may quote bytes of the image.
            debug!(attribute = %a, "no finger template could be extracted; this finger is left out of the cross-checks");
            Vec::new()
        }
    }
}

fn parse_template(bytes: &[u8]) -> Option<Template> {
    if bytes.is_empty() {
        return None;
    }
    Template::from_bytes(bytes).ok()
}

/// What to do when the officer has no enrolled fingers.
impl OperatorFingersPolicy {
    fn blocks(self) -> bool {
        self == Self::Block
    }
}

/// The enrolled fingers of an operator (no biometric data: positions only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorFingers {
    /// Operator id.
    pub operator_id: String,
    /// Enrolled finger positions.
    pub fingers: Vec<BioAttribute>,
    /// Fingers captured but without a usable template (left out).
    pub unusable: Vec<BioAttribute>,
    /// When, if enrolled.
    pub enrolled_at: Option<DateTime<Utc>>,
}

/// Why sealing was refused by the cross-checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CrossCheckFailure {
    /// Two of the applicant's fingers are the same finger.
    DuplicateFingers {
        /// The pairs of positions.
        pairs: Vec<(BioAttribute, BioAttribute)>,
    },
    /// The applicant's fingers match the officer's own.
    MatchesOfficer {
        /// The officer.
        officer: String,
        /// The applicant's fingers that matched.
        fingers: Vec<BioAttribute>,
    },
    /// The officer has no enrolled fingers and the country requires them.
    OfficerNotEnrolled {
        /// The officer.
        officer: String,
    },
}

impl std::fmt::Display for CrossCheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[BioAttribute]| v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ");
        match self {
            Self::DuplicateFingers { pairs } => {
                let p = pairs
                    .iter()
                    .map(|(a, b)| format!("{a} and {b}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                write!(
                    f,
                    "the same finger was presented more than once ({p}); recapture these fingers, each from its own position"
                )
            }
            Self::MatchesOfficer { officer, fingers } => write!(
                f,
                "the applicant's fingers ({}) match those of the officer {officer}; an officer may not register themself: another officer must register this applicant, or recapture the applicant's fingers",
                list(fingers)
            ),
            Self::OfficerNotEnrolled { officer } => write!(
                f,
                "officer {officer} has no fingerprints enrolled on this station and this country requires them; run `tessera-station operator enrol-biometrics` first"
            ),
        }
    }
}

type Fingers = Vec<(FingerPosition, Vec<Minutia>)>;

fn as_refs(v: &Fingers) -> Vec<(FingerPosition, &[Minutia])> {
    v.iter().map(|(p, m)| (*p, &m[..])).collect()
}

impl Station {
    fn operator_templates(&self, operator: &str) -> Result<Fingers> {
        let mut st = self
            .store
            .conn()
            .prepare_cached("SELECT template FROM operator_fingers WHERE operator_id = ?1 ORDER BY position")
            .map_err(StationError::db("reading the operator's enrolled fingers"))?;
        let rows: Vec<Vec<u8>> = st
            .query_map([operator], |r| r.get(0))
            .and_then(|r| r.collect())
            .map_err(StationError::db("reading the operator's enrolled fingers"))?;
        Ok(rows
            .iter()
            .filter_map(|b| parse_template(b))
            .map(|t| (t.position, t.minutiae))
            .collect())
    }

    /// The enrolled fingers of `operator` (positions only).
    pub fn operator_fingers(&self, operator: &str) -> Result<OperatorFingers> {
        let mut st = self
            .store
            .conn()
            .prepare_cached(
                "SELECT position, enrolled_at FROM operator_fingers WHERE operator_id = ?1 ORDER BY position",
            )
            .map_err(StationError::db("reading the operator's enrolled fingers"))?;
        let rows: Vec<(String, String)> = st
            .query_map([operator], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|r| r.collect())
            .map_err(StationError::db("reading the operator's enrolled fingers"))?;
        let enrolled_at = rows.first().and_then(|(_, t)| {
            DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|d| d.with_timezone(&Utc))
        });
        let mut fingers: Vec<BioAttribute> = rows
            .iter()
            .filter_map(|(p, _)| BioAttribute::ALL.into_iter().find(|a| a.as_str() == p))
            .collect();
        fingers.sort();
        Ok(OperatorFingers {
            operator_id: operator.into(),
            fingers,
            unusable: Vec::new(),
            enrolled_at,
        })
    }

    /// Whether `operator` has at least one enrolled finger.
    pub(crate) fn operator_has_fingers(&self, operator: &str) -> Result<bool> {
        self.store
            .conn()
            .query_row(
                "SELECT count(*) FROM operator_fingers WHERE operator_id = ?1",
                [operator],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(StationError::db("reading the operator's enrolled fingers"))
    }

    /// The review warning for an officer without enrolled fingers (policy `warn`), if it applies.
    pub(crate) fn officer_fingers_warning(&self, officer: &str) -> Result<Option<FieldError>> {
        if self.master.settings.biometrics.operator_without_fingers.blocks()
            || self.operator_has_fingers(officer)?
        {
            return Ok(None);
        }
        Ok(Some(FieldError {
            field: "biometrics.operator".into(),
            code: "OPERATOR_NOT_ENROLLED".into(),
            language: None,
            message: format!(
                "officer {officer} has no fingerprints enrolled on this station, so the applicant cannot be checked against them; enrol them with `tessera-station operator enrol-biometrics`"
            ),
        }))
    }

    /// Stores the logged-in operator's fingers from finger image records (ISO/IEC 19794-4), replacing any
    /// enrolled before. Only the extracted templates are kept. At least one finger must give a template.
    pub fn enrol_operator_fingers(&mut self, fingers: &[(BioAttribute, Vec<u8>)]) -> Result<OperatorFingers> {
        let me = self.session()?.operator.id.clone();
        let mut kept = Vec::new();
        let mut unusable = Vec::new();
        for (a, iso) in fingers {
            if a.modality() != Modality::Finger {
                return Err(StationError::Validation(vec![FieldError {
                    field: format!("biometrics.{a}"),
                    code: "BIOMETRIC".into(),
                    language: None,
                    message: "only fingers are enrolled for an operator".into(),
                }]));
            }
            let t = finger_template(*a, iso);
            if t.is_empty() {
                unusable.push(*a);
            } else {
                kept.push((*a, t));
            }
        }
        if kept.is_empty() {
            return Err(StationError::Device {
                context: format!("enrolling the fingers of operator {me}"),
                detail: "no captured finger gave a usable fingerprint; clean the sensor and capture again"
                    .into(),
            });
        }
        let now = self.clock.now();
        let count = kept.len();
        self.store.tx(|tx| {
            tx.execute("DELETE FROM operator_fingers WHERE operator_id = ?1", [&me])
                .map_err(StationError::db("replacing the operator's fingers"))?;
            for (a, t) in &kept {
                tx.execute(
                    "INSERT INTO operator_fingers (operator_id, position, template, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
                    params![me, a.as_str(), t, now.to_rfc3339()],
                )
                .map_err(StationError::db("storing the operator's fingers"))?;
            }
            audit::append(
                tx,
                now,
                &me,
                "OPERATOR_BIOMETRICS_ENROLLED",
                &me,
                &format!("fingers={count} unusable={}", unusable.len()),
            )
        })?;
        info!(operator = %me, fingers = count, "operator fingers enrolled");
        let mut out = self.operator_fingers(&me)?;
        out.unusable = unusable;
        Ok(out)
    }

    /// Captures the logged-in operator's ten fingers (both slaps and the thumbs) from the SBI devices and
    /// enrols them ([`Station::enrol_operator_fingers`]).
    pub async fn enrol_operator_biometrics(&mut self, opts: &DeviceOptions) -> Result<OperatorFingers> {
        self.session()?;
        self.previews.stop(crate::preview::PreviewEnd::Capture);
        let client = self.sbi_client(opts)?;
        let found = client.discover().await;
        let txn = TransactionId::random().map_err(|e| StationError::Crypto {
            context: "creating an SBI transaction id",
            detail: e.to_string(),
        })?;
        let mut chain = HashChain::new();
        let threshold = self.master.settings.biometrics.quality_threshold.finger.max(1);
        let max_retries = self.master.settings.biometrics.max_retries;
        let mut isos = Vec::new();
        for part in [CapturePart::LeftSlap, CapturePart::RightSlap, CapturePart::Thumbs] {
            let device = found
                .devices
                .iter()
                .find(|f| f.bio_type() == BioType::Finger && f.entry.device_sub_id.contains(&part.sub_id()))
                .or_else(|| found.devices.iter().find(|f| f.bio_type() == BioType::Finger))
                .ok_or_else(|| StationError::Device {
                    context: "enrolling the operator's fingers".into(),
                    detail: format!(
                        "no finger device found on ports {}-{}; connect the device and check its service runs",
                        opts.first_port, opts.last_port
                    ),
                })?;
            let spec = capture_spec_for(
                device,
                part.sub_id(),
                txn.clone(),
                Vec::new(),
                threshold,
                Duration::from_secs(opts.capture_timeout_secs.max(1)),
            );
            let mut attempt = 0u32;
            let capture = loop {
                attempt += 1;
                match client.rcapture(device, &spec, &chain).await {
                    Ok(c) => break c,
                    Err(ClientError::QualityBelowThreshold { capture, .. }) if attempt > max_retries => {
                        break *capture;
                    }
                    Err(ClientError::QualityBelowThreshold { .. }) => {}
                    Err(e) => {
                        return Err(StationError::Device {
                            context: format!(
                                "capturing the operator's {part:?} from device {}",
                                device.digital_id.serial_no
                            ),
                            detail: e.to_string(),
                        });
                    }
                }
            };
            chain = capture.chain_after.clone();
            for seg in capture.segments {
                if let Some(a) = seg.bio_sub_type.and_then(|s| attribute_of(s, BioType::Finger)) {
                    isos.push((a, seg.iso));
                }
            }
        }
        self.enrol_operator_fingers(&isos)
    }

    /// Runs the cross-checks on a draft's fingers before sealing. `Ok(())` lets sealing go on; a hit is
    /// recorded in the audit log and returned as [`StationError::BiometricCrossCheck`].
    pub(crate) fn enforce_cross_checks(
        &mut self,
        draft: i64,
        officer: &str,
        captured: &[BioAttribute],
    ) -> Result<()> {
        let mut applicant: Fingers = Vec::new();
        for a in captured
            .iter()
            .copied()
            .filter(|a| a.modality() == Modality::Finger)
        {
            let stored = self.draft_blob_opt(draft, &template_blob(a))?;
            let bytes = match stored {
                Some(b) => b,
                None => {
                    // Captured before templates were kept: extract now.
                    let iso = self
                        .draft_blob_opt(draft, &format!("bio:{}", a.as_str()))?
                        .unwrap_or_default();
                    finger_template(a, &iso)
                }
            };
            if let Some(t) = parse_template(&bytes) {
                applicant.push((t.position, t.minutiae));
            }
        }
        let mut failures = Vec::new();
        let dups = cross_check::duplicate_fingers(&as_refs(&applicant));
        if !dups.is_empty() {
            let pairs = dups
                .iter()
                .filter_map(|p| Some((attribute_of_position(p.first)?, attribute_of_position(p.second)?)))
                .collect();
            failures.push(CrossCheckFailure::DuplicateFingers { pairs });
        }
        let operator = self.operator_templates(officer)?;
        if operator.is_empty() {
            if self.master.settings.biometrics.operator_without_fingers.blocks() {
                failures.push(CrossCheckFailure::OfficerNotEnrolled {
                    officer: officer.into(),
                });
            } else {
                info!(operator = %officer, "the officer has no enrolled fingers; the operator cross-check was not made");
            }
        } else if let Some(m) = cross_check::matches_person(&as_refs(&applicant), &as_refs(&operator)) {
            let mut fingers: Vec<BioAttribute> = m
                .pairs
                .iter()
                .filter_map(|(p, _, _)| attribute_of_position(*p))
                .collect();
            fingers.truncate(3);
            failures.push(CrossCheckFailure::MatchesOfficer {
                officer: officer.into(),
                fingers,
            });
        }
        if failures.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let detail = failures
            .iter()
            .map(|f| match f {
                CrossCheckFailure::DuplicateFingers { pairs } => format!(
                    "duplicate-fingers {}",
                    pairs
                        .iter()
                        .map(|(a, b)| format!("{a}={b}"))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                CrossCheckFailure::MatchesOfficer { .. } => "matches-officer".to_owned(),
                CrossCheckFailure::OfficerNotEnrolled { .. } => "officer-not-enrolled".to_owned(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        self.store.tx(|tx| {
            audit::append(
                tx,
                now,
                officer,
                "SEAL_REFUSED",
                &format!("draft {draft}"),
                &detail,
            )
        })?;
        warn!(draft, checks = %detail, "sealing refused by the biometric cross-checks");
        Err(StationError::BiometricCrossCheck { failures })
    }
}
