//! The registration workflow: drafts (persisted, resumable), answers, documents, biometric captures,
//! review, officer sign-off and sealing, supervisor approval, export, and the dashboard.
//!
//! States: a draft is `DRAFT`, then `SEALING` while its packet is written; a packet is `AWAITING_APPROVAL`,
//! then `APPROVED` or `REJECTED`, then (approved only) `EXPORTED`.
//!
//! Kill-safety: sealing allocates the RID in one transaction (draft -> `SEALING`), writes the packet file
//! atomically and appends the officer's sign-off atomically, then in a second transaction records the packet
//! and deletes the draft. [`Station::recover`] (run at every login) finishes or rolls back whatever a kill
//! interrupted, so no packet is lost, duplicated or left corrupt. Approval appends the supervisor's sign-off
//! to the file before the database records it; recovery reconciles the two.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::Signer;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tessera_packet::ids::Rid;
use tessera_packet::types::{
    AuditEvent, BioAttribute, BioException, BiometricRecord, Consent, DeviceRef, Document, Meta, Modality,
    PacketContent, PacketType,
};
use tessera_packet::{Decision, SignOff, SignOffRole};
use tracing::{info, instrument, warn};

use crate::audit;
use crate::crypto::{self, sha256};
use crate::documents;
use crate::error::{FieldError, Result, StationError};
use crate::forms::{self, Answers, DocumentAnswer, Form, ValidatedForm};
use crate::operators::Role;
use crate::receipt;
use crate::station::Station;

/// Draft states.
pub mod state {
    /// Being filled in.
    pub const DRAFT: &str = "DRAFT";
    /// Its packet is being written.
    pub const SEALING: &str = "SEALING";
    /// Sealed and signed by the officer; waits for a supervisor.
    pub const AWAITING_APPROVAL: &str = "AWAITING_APPROVAL";
    /// Approved by a supervisor; may leave the station.
    pub const APPROVED: &str = "APPROVED";
    /// Rejected by a supervisor; never leaves the station.
    pub const REJECTED: &str = "REJECTED";
    /// Exported to a folder for offline transfer.
    pub const EXPORTED: &str = "EXPORTED";
    /// A draft whose packet is sealed: kept (encrypted, in the store) as the supervisor's review copy until
    /// the packet is approved or rejected, then deleted.
    pub const SEALED: &str = "SEALED";
}

/// A stored document of a draft (bytes in `draft_blobs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredDocument {
    /// Document type code.
    pub doc_type: String,
    /// Reference number.
    pub ref_number: Option<String>,
    /// MIME type after normalisation.
    pub mime: String,
    /// Size in bytes.
    pub size: usize,
}

/// A stored capture of a draft (image bytes in `draft_blobs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredCapture {
    /// Image format name.
    pub format: String,
    /// Quality 0-100.
    pub quality: u8,
    /// Attempts made.
    pub retries: u32,
    /// Accepted below threshold.
    pub force_captured: bool,
    /// The SBI data block (JWS).
    pub sbi_data_block: Option<String>,
    /// Device.
    pub device: Option<DeviceRef>,
    /// Capture time.
    pub captured_at: DateTime<Utc>,
}

/// The persisted state of a draft.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DraftBody {
    /// Latest answers.
    pub answers: Option<Answers>,
    /// Imported documents by field.
    pub documents: BTreeMap<String, StoredDocument>,
    /// Exception photo MIME type, when imported.
    pub exception_photo: Option<String>,
    /// Captures by attribute.
    pub captures: BTreeMap<BioAttribute, StoredCapture>,
    /// Audit trail of this registration (sealed into the packet).
    pub audit: Vec<AuditEvent>,
    /// The SBI transaction and hash chain of this registration's device captures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbi: Option<crate::capture::SbiSession>,
    /// Where the officer was in the front end's wizard (a step name, opaque to the core), so the draft
    /// resumes exactly there after a crash or a closed window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_step: Option<String>,
}

/// A draft as shown when resuming it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DraftView {
    /// Draft id.
    pub id: i64,
    /// Process.
    pub process: String,
    /// Officer.
    pub operator_id: String,
    /// State.
    pub state: String,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// Body.
    pub body: DraftBody,
}

/// A biometric capture handed to the workflow (from the SBI client, or imported files in tests and demos).
#[derive(Clone, PartialEq, Eq)]
pub struct Capture {
    /// Attribute.
    pub attribute: BioAttribute,
    /// ISO image record bytes.
    pub image: Vec<u8>,
    /// Format name.
    pub format: String,
    /// Quality 0-100.
    pub quality: u8,
    /// Attempts made so far including this one.
    pub retries: u32,
    /// The officer accepts it below threshold (allowed after the configured number of retries).
    pub force_captured: bool,
    /// The SBI data block.
    pub sbi_data_block: Option<String>,
    /// Device.
    pub device: Option<DeviceRef>,
    /// Capture time.
    pub captured_at: DateTime<Utc>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("attribute", &self.attribute)
            .field("len", &self.image.len())
            .field("quality", &self.quality)
            .finish_non_exhaustive()
    }
}

/// Result of a review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// Whether the draft can be signed and sealed.
    pub ready: bool,
    /// Everything still missing or wrong.
    pub problems: Vec<FieldError>,
    /// What the officer should know but does not stop sealing (e.g. `OPERATOR_NOT_ENROLLED`).
    #[serde(default)]
    pub warnings: Vec<FieldError>,
    /// The validated form, when the answers validate.
    pub form: Option<ValidatedForm>,
}

/// Result of sealing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sealed {
    /// The RID.
    pub rid: String,
    /// The packet file.
    pub path: PathBuf,
    /// Packet size.
    pub size: u64,
    /// The acknowledgement receipt (HTML, with the RID as a QR code).
    pub receipt_html: String,
    /// The same receipt as a PDF (base64), for printers without a browser.
    #[serde(default)]
    pub receipt_pdf_base64: String,
}

/// A queued packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PacketSummary {
    /// RID.
    pub rid: String,
    /// Process.
    pub process: String,
    /// State.
    pub state: String,
    /// Officer.
    pub operator_id: String,
    /// Created.
    pub created_at: String,
    /// Size.
    pub size: i64,
    /// Supervisor.
    pub supervisor_id: Option<String>,
    /// Rejection reason.
    pub reason: Option<String>,
    /// SHA-256 (hex) of the packet file as last recorded.
    pub sha256: String,
}

/// Counts for the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    /// Open drafts.
    pub drafts: u64,
    /// Waiting for a supervisor.
    pub awaiting_approval: u64,
    /// Approved, not yet exported or uploaded.
    pub approved: u64,
    /// Rejected.
    pub rejected: u64,
    /// Exported.
    pub exported: u64,
    /// Uploaded to the server (receipt verified), not yet processed there.
    #[serde(default)]
    pub uploaded: u64,
    /// Processed by the server (final status).
    #[serde(default)]
    pub processed: u64,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportReport {
    /// The folder.
    pub dir: PathBuf,
    /// The exported RIDs.
    pub rids: Vec<String>,
    /// The manifest file.
    pub manifest: PathBuf,
}

pub use tessera_packet::wire::{ExportEntry, ExportManifest};

/// What recovery did at login.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryReport {
    /// Interrupted seals completed from a whole, signed file.
    pub seals_completed: Vec<String>,
    /// Interrupted seals rolled back to drafts (to be signed and sealed again).
    pub seals_rolled_back: Vec<String>,
    /// Approvals recorded from the sign-off already in the file.
    pub decisions_reconciled: Vec<String>,
    /// Stray temporary files removed.
    pub temp_files_removed: usize,
}

/// Stores the packet-recipient keys (inside the caller's transaction), checking each parses.
pub fn store_recipients(conn: &Connection, recipients: &[String], now: DateTime<Utc>) -> Result<()> {
    for r in recipients {
        let parsed: age::x25519::Recipient = r.trim().parse().map_err(|e: &str| StationError::Crypto {
            context: "parsing a packet-recipient key",
            detail: format!("{e}; expected an age X25519 recipient starting with age1"),
        })?;
        conn.execute(
            "INSERT OR IGNORE INTO packet_recipients (recipient, added_at) VALUES (?1, ?2)",
            params![parsed.to_string(), now.to_rfc3339()],
        )
        .map_err(StationError::db("storing packet-recipient keys"))?;
    }
    Ok(())
}

fn load_recipients(conn: &Connection) -> Result<Vec<age::x25519::Recipient>> {
    let mut st = conn
        .prepare("SELECT recipient FROM packet_recipients")
        .map_err(StationError::db("reading recipients"))?;
    let rows: Vec<String> = st
        .query_map([], |r| r.get(0))
        .and_then(|r| r.collect())
        .map_err(StationError::db("reading recipients"))?;
    rows.iter()
        .map(|r| {
            r.parse().map_err(|e: &str| StationError::Crypto {
                context: "parsing a stored packet key",
                detail: e.into(),
            })
        })
        .collect()
}

fn packet_type(process: &str) -> Result<PacketType> {
    match process {
        "NEW" => Ok(PacketType::New),
        "UPDATE" => Ok(PacketType::Update),
        "LOST" => Ok(PacketType::Lost),
        other => Err(StationError::Validation(vec![FieldError {
            field: "process".into(),
            code: "INVALID".into(),
            language: None,
            message: format!("{other} is not a station process; use NEW, UPDATE or LOST"),
        }])),
    }
}

fn threshold(st: &Station, a: BioAttribute) -> u8 {
    let t = st.master.settings.biometrics.quality_threshold;
    match a.modality() {
        Modality::Finger => t.finger,
        Modality::Iris => t.iris,
        Modality::Face => t.face,
    }
}

fn blob_doc(field: &str) -> String {
    format!("doc:{field}")
}
fn blob_bio(a: BioAttribute) -> String {
    format!("bio:{}", a.as_str())
}
const BLOB_EXCEPTION_PHOTO: &str = "exception-photo";

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

impl Station {
    fn officer(&mut self, action: &'static str) -> Result<String> {
        Ok(self.require(Role::Officer, action)?.operator.id.clone())
    }

    fn load_draft(&self, id: i64) -> Result<DraftView> {
        let row: Option<(String, String, String, String, String)> = self
            .store
            .conn()
            .query_row(
                "SELECT process, operator_id, state, updated_at, body FROM drafts WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(StationError::db("reading a draft"))?;
        let (process, operator_id, state, updated_at, body) =
            row.ok_or(StationError::DraftNotFound { id })?;
        let body: DraftBody = serde_json::from_str(&body).map_err(|e| StationError::ConfigParse {
            file: format!("draft {id}"),
            detail: e.to_string(),
        })?;
        Ok(DraftView {
            id,
            process,
            operator_id,
            state,
            updated_at: ts(&updated_at),
            body,
        })
    }

    fn editable_draft(&mut self, id: i64, action: &'static str) -> Result<(String, DraftView)> {
        let me = self.officer(action)?;
        let d = self.load_draft(id)?;
        if d.state != state::DRAFT {
            return Err(StationError::InvalidState {
                what: format!("draft {id}"),
                state: d.state,
                expected: state::DRAFT,
                action,
            });
        }
        if d.operator_id != me {
            return Err(StationError::NotPermitted {
                operator: me,
                action,
                role: "draft's own officer",
            });
        }
        Ok((me, d))
    }

    fn save_body(&mut self, id: i64, body: &DraftBody, blobs: &[(&str, &[u8])]) -> Result<()> {
        let now = self.clock.now();
        let json = serde_json::to_string(body).map_err(|e| StationError::Crypto {
            context: "serialising a draft",
            detail: e.to_string(),
        })?;
        self.store.tx(|tx| {
            for (name, bytes) in blobs {
                tx.execute(
                    "INSERT INTO draft_blobs (draft_id, name, content) VALUES (?1, ?2, ?3)
                     ON CONFLICT(draft_id, name) DO UPDATE SET content = ?3",
                    params![id, name, bytes],
                )
                .map_err(StationError::db("saving draft data"))?;
            }
            tx.execute(
                "UPDATE drafts SET body = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, json, now.to_rfc3339()],
            )
            .map_err(StationError::db("saving a draft"))?;
            Ok(())
        })
    }

    /// Records the draft's SBI session (transaction id and hash chain after the kept captures).
    pub(crate) fn set_sbi_session(&mut self, id: i64, session: crate::capture::SbiSession) -> Result<()> {
        let (_, mut d) = self.editable_draft(id, "capture biometrics")?;
        d.body.sbi = Some(session);
        self.save_body(id, &d.body, &[])
    }

    fn note(&self, body: &mut DraftBody, actor: &str, action: &str, detail: String) {
        body.audit.push(AuditEvent {
            at: self.clock.now(),
            actor: actor.into(),
            action: action.into(),
            detail,
        });
    }

    /// Starts a registration draft for `process` (NEW, UPDATE, LOST). Refused while a freeze rule holds.
    #[instrument(skip(self))]
    pub fn start_draft(&mut self, process: &str) -> Result<i64> {
        let me = self.officer("start a registration")?;
        packet_type(process)?;
        Form::new(&self.master, process)?;
        self.check_freeze()?;
        let now = self.clock.now();
        let mut body = DraftBody::default();
        self.note(&mut body, &me, "DRAFT_STARTED", process.into());
        let json = serde_json::to_string(&body).map_err(|e| StationError::Crypto {
            context: "serialising a draft",
            detail: e.to_string(),
        })?;
        self.store.tx(|tx| {
            tx.execute(
                "INSERT INTO drafts (process, operator_id, state, body, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![process, me, state::DRAFT, json, now.to_rfc3339()],
            )
            .map_err(StationError::db("creating a draft"))?;
            let id = tx.last_insert_rowid();
            audit::append(tx, now, &me, "DRAFT_STARTED", &id.to_string(), process)?;
            Ok(id)
        })
    }

    /// Saves the answers of a draft (any state of completion) and returns what is still missing or wrong.
    pub fn save_answers(&mut self, id: i64, answers: Answers) -> Result<Vec<FieldError>> {
        let (me, mut d) = self.editable_draft(id, "edit a draft")?;
        if answers.process != d.process {
            return Err(StationError::Validation(vec![FieldError {
                field: "process".into(),
                code: "INVALID".into(),
                language: None,
                message: format!("this draft is a {} registration", d.process),
            }]));
        }
        let today = self.clock.now().date_naive();
        let problems = match Form::new(&self.master, &d.process)?.validate(&answers, today) {
            Ok(_) => vec![],
            Err(StationError::Validation(e)) => e,
            Err(e) => return Err(e),
        };
        self.note(
            &mut d.body,
            &me,
            "ANSWERS_SAVED",
            format!("problems={}", problems.len()),
        );
        d.body.answers = Some(answers);
        self.save_body(id, &d.body, &[])?;
        Ok(problems)
    }

    /// Imports a scanned document (PDF, JPEG, PNG) for a document field of the draft.
    pub fn import_document(
        &mut self,
        id: i64,
        field: &str,
        doc_type: &str,
        ref_number: Option<String>,
        bytes: &[u8],
    ) -> Result<()> {
        let (me, mut d) = self.editable_draft(id, "import a document")?;
        let is_doc = self
            .master
            .schema
            .field(field)
            .is_some_and(|f| f.kind == crate::masterdata::FieldType::DocumentType);
        if !is_doc {
            return Err(StationError::Document {
                name: field.into(),
                detail: "not a document field of the ID schema".into(),
            });
        }
        if !self.master.documents.types.iter().any(|t| t.code == doc_type) {
            return Err(StationError::Document {
                name: field.into(),
                detail: format!("unknown document type {doc_type}"),
            });
        }
        let n = documents::normalise(field, bytes, self.master.documents.max_size_kb)?;
        d.body.documents.insert(
            field.into(),
            StoredDocument {
                doc_type: doc_type.into(),
                ref_number: ref_number.clone(),
                mime: n.mime.into(),
                size: n.bytes.len(),
            },
        );
        if let Some(a) = d.body.answers.as_mut() {
            a.documents.insert(
                field.into(),
                DocumentAnswer {
                    doc_type: doc_type.into(),
                    file: PathBuf::from(format!("imported:{field}")),
                    ref_number,
                },
            );
        }
        self.note(
            &mut d.body,
            &me,
            "DOCUMENT_IMPORTED",
            format!("{field} {doc_type} {} bytes", n.bytes.len()),
        );
        self.save_body(id, &d.body, &[(&blob_doc(field), &n.bytes)])
    }

    /// Imports the exception photo (needed when a biometric is marked as an exception).
    pub fn import_exception_photo(&mut self, id: i64, bytes: &[u8]) -> Result<()> {
        let (me, mut d) = self.editable_draft(id, "import an exception photo")?;
        let n = documents::normalise("exceptionPhoto", bytes, self.master.documents.max_size_kb)?;
        if n.mime == "application/pdf" {
            return Err(StationError::Document {
                name: "exceptionPhoto".into(),
                detail: "must be a photo (JPEG or PNG)".into(),
            });
        }
        d.body.exception_photo = Some(n.mime.into());
        self.note(
            &mut d.body,
            &me,
            "EXCEPTION_PHOTO",
            format!("{} bytes", n.bytes.len()),
        );
        self.save_body(id, &d.body, &[(BLOB_EXCEPTION_PHOTO, &n.bytes)])
    }

    /// Stores a biometric capture. Below the modality's quality threshold the capture is refused until the
    /// configured retries are used up; then the officer may force-capture it.
    pub fn add_capture(&mut self, id: i64, c: Capture) -> Result<()> {
        let (me, mut d) = self.editable_draft(id, "capture biometrics")?;
        let min = threshold(self, c.attribute);
        let max_retries = self.master.settings.biometrics.max_retries;
        let field = format!("biometrics.{}", c.attribute.as_str());
        if c.image.is_empty() {
            return Err(StationError::Validation(vec![FieldError {
                field,
                code: "BIOMETRIC".into(),
                language: None,
                message: "the capture has no image; capture again".into(),
            }]));
        }
        if c.quality < min && !(c.force_captured && c.retries >= max_retries) {
            let msg = if c.retries >= max_retries {
                format!(
                    "quality {} is below {min}; retries are used up, so you may force-capture it",
                    c.quality
                )
            } else {
                format!(
                    "quality {} is below {min}; capture again ({} of {max_retries} retries used)",
                    c.quality, c.retries
                )
            };
            return Err(StationError::Validation(vec![FieldError {
                field,
                code: "LOW_QUALITY".into(),
                language: None,
                message: msg,
            }]));
        }
        d.body.captures.insert(
            c.attribute,
            StoredCapture {
                format: c.format.clone(),
                quality: c.quality,
                retries: c.retries,
                force_captured: c.quality < min,
                sbi_data_block: c.sbi_data_block.clone(),
                device: c.device.clone(),
                captured_at: c.captured_at,
            },
        );
        self.note(
            &mut d.body,
            &me,
            "BIO_CAPTURE",
            format!("{} quality={} retries={}", c.attribute, c.quality, c.retries),
        );
        if c.attribute.modality() == Modality::Finger {
            // The minutiae template for the cross-checks before sealing (empty: no usable finger).
            let template = crate::crosscheck::finger_template(c.attribute, &c.image);
            let name = crate::crosscheck::template_blob(c.attribute);
            self.save_body(
                id,
                &d.body,
                &[(&blob_bio(c.attribute), &c.image), (&name, &template)],
            )
        } else {
            self.save_body(id, &d.body, &[(&blob_bio(c.attribute), &c.image)])
        }
    }

    /// A draft, to resume it. A sealed registration is no longer a draft (its review copy is
    /// [`Station::review_copy`]).
    pub fn draft(&mut self, id: i64) -> Result<DraftView> {
        self.session()?;
        let d = self.load_draft(id)?;
        if d.state == state::SEALED {
            return Err(StationError::DraftNotFound { id });
        }
        Ok(d)
    }

    /// Open drafts of the logged-in officer.
    pub fn my_drafts(&mut self) -> Result<Vec<DraftView>> {
        let me = self.session()?.operator.id.clone();
        let mut st = self
            .store
            .conn()
            .prepare("SELECT id FROM drafts WHERE operator_id = ?1 AND state = ?2 ORDER BY id")
            .map_err(StationError::db("listing drafts"))?;
        let ids: Vec<i64> = st
            .query_map(params![me, state::DRAFT], |r| r.get(0))
            .and_then(|r| r.collect())
            .map_err(StationError::db("listing drafts"))?;
        drop(st);
        ids.into_iter().map(|id| self.load_draft(id)).collect()
    }

    /// Discards a draft.
    pub fn discard_draft(&mut self, id: i64) -> Result<()> {
        let (me, _) = self.editable_draft(id, "discard a draft")?;
        let now = self.clock.now();
        self.store.tx(|tx| {
            tx.execute("DELETE FROM drafts WHERE id = ?1", [id])
                .map_err(StationError::db("discarding a draft"))?;
            audit::append(tx, now, &me, "DRAFT_DISCARDED", &id.to_string(), "")
        })?;
        Ok(())
    }

    /// Records where the officer is in the wizard (a short step name), so the draft resumes exactly there.
    /// Not audited: it is the screen position, not registration data.
    pub fn set_draft_step(&mut self, id: i64, step: &str) -> Result<()> {
        let (_, mut d) = self.editable_draft(id, "edit a draft")?;
        if step.is_empty()
            || step.len() > 40
            || !step
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(StationError::Validation(vec![FieldError {
                field: "step".into(),
                code: "INVALID".into(),
                language: None,
                message: "a wizard step name is 1-40 letters, digits, '-' or '_'".into(),
            }]));
        }
        if d.body.resume_step.as_deref() == Some(step) {
            return Ok(());
        }
        d.body.resume_step = Some(step.into());
        self.save_body(id, &d.body, &[])
    }

    /// The supervisor's review copy of a sealed packet awaiting approval: the draft it was sealed from
    /// (decrypted from the station store, never from the sealed packet, which only the server can open).
    pub fn review_copy(&mut self, rid: &str) -> Result<DraftView> {
        self.require(Role::Supervisor, "review a packet's data")?;
        let id: Option<i64> = self
            .store
            .conn()
            .query_row(
                "SELECT id FROM drafts WHERE rid = ?1 AND state = ?2",
                params![rid, state::SEALED],
                |r| r.get(0),
            )
            .optional()
            .map_err(StationError::db("finding a review copy"))?;
        let id = id.ok_or_else(|| StationError::PacketNotFound { rid: rid.into() })?;
        self.load_draft(id)
    }

    /// A document (or the exception photo, field `exceptionPhoto`) of a draft, for the front end's preview:
    /// (MIME type, bytes). The draft's officer may read an open draft; a supervisor a review copy.
    pub fn draft_document(&mut self, id: i64, field: &str) -> Result<(String, Vec<u8>)> {
        let me = self.session()?.operator.clone();
        let d = self.load_draft(id)?;
        let own = d.operator_id == me.id && d.state == state::DRAFT;
        let reviewing = d.state == state::SEALED && me.roles.contains(&Role::Supervisor);
        if !own && !reviewing {
            return Err(StationError::NotPermitted {
                operator: me.id,
                action: "see this draft's documents",
                role: "draft's own officer, or a supervisor for a sealed packet",
            });
        }
        let (mime, blob) = if field == "exceptionPhoto" {
            (d.body.exception_photo.clone(), BLOB_EXCEPTION_PHOTO.to_owned())
        } else {
            (
                d.body.documents.get(field).map(|doc| doc.mime.clone()),
                blob_doc(field),
            )
        };
        let not_there = || StationError::Document {
            name: field.into(),
            detail: format!("draft {id} has no such document"),
        };
        let mime = mime.ok_or_else(not_there)?;
        let bytes = self.draft_blob_opt(id, &blob)?.ok_or_else(not_there)?;
        Ok((mime, bytes))
    }

    /// Reviews a draft: validates answers, documents and biometrics together.
    pub fn review(&mut self, id: i64) -> Result<Review> {
        self.session()?;
        let d = self.load_draft(id)?;
        self.review_body(&d)
    }

    fn review_body(&self, d: &DraftView) -> Result<Review> {
        let Some(answers) = &d.body.answers else {
            return Ok(Review {
                ready: false,
                problems: vec![FieldError {
                    field: "answers".into(),
                    code: "REQUIRED".into(),
                    language: None,
                    message: "no answers entered yet".into(),
                }],
                warnings: Vec::new(),
                form: None,
            });
        };
        let today = self.clock.now().date_naive();
        let form = match Form::new(&self.master, &d.process)?.validate(answers, today) {
            Ok(f) => f,
            Err(StationError::Validation(problems)) => {
                return Ok(Review {
                    ready: false,
                    problems,
                    warnings: Vec::new(),
                    form: None,
                });
            }
            Err(e) => return Err(e),
        };
        let mut problems = Vec::new();
        for slot in &form.documents {
            let declared = answers.documents.contains_key(&slot.field);
            if declared && !d.body.documents.contains_key(&slot.field) {
                problems.push(FieldError {
                    field: slot.field.clone(),
                    code: "DOCUMENT".into(),
                    language: None,
                    message: "the document is declared but its scan has not been imported".into(),
                });
            }
        }
        let captured: BTreeSet<BioAttribute> = d.body.captures.keys().copied().collect();
        let exceptions: BTreeSet<BioAttribute> = answers.biometrics.exceptions.keys().copied().collect();
        if let Err(StationError::Validation(mut e)) = forms::check_biometrics(
            &form.biometrics,
            &captured,
            &exceptions,
            d.body.exception_photo.is_some(),
            &self.master,
        ) {
            problems.append(&mut e);
        }
        let warnings = self
            .officer_fingers_warning(&d.operator_id)?
            .into_iter()
            .collect();
        Ok(Review {
            ready: problems.is_empty(),
            problems,
            warnings,
            form: Some(form),
        })
    }

    pub(crate) fn draft_blob_opt(&self, id: i64, name: &str) -> Result<Option<Vec<u8>>> {
        self.store
            .conn()
            .query_row(
                "SELECT content FROM draft_blobs WHERE draft_id = ?1 AND name = ?2",
                params![id, name],
                |r| r.get(0),
            )
            .optional()
            .map_err(StationError::db(format!("reading {name} of draft {id}")))
    }

    fn blob(&self, id: i64, name: &str) -> Result<Vec<u8>> {
        self.store
            .conn()
            .query_row(
                "SELECT content FROM draft_blobs WHERE draft_id = ?1 AND name = ?2",
                params![id, name],
                |r| r.get(0),
            )
            .map_err(StationError::db(format!("reading {name} of draft {id}")))
    }

    fn build_content(
        &self,
        d: &DraftView,
        form: &ValidatedForm,
        rid: &Rid,
        now: DateTime<Utc>,
    ) -> Result<PacketContent> {
        let answers = d
            .body
            .answers
            .as_ref()
            .ok_or(StationError::DraftNotFound { id: d.id })?;
        let mut identity = form.identity.clone();
        let mut evidence = Vec::new();
        let mut optional = Vec::new();
        for slot in &form.documents {
            let Some(doc) = d.body.documents.get(&slot.field) else {
                continue;
            };
            if let Some(obj) = identity.as_object_mut() {
                let format = if doc.mime == "application/pdf" {
                    "pdf"
                } else {
                    "jpg"
                };
                obj.insert(
                    slot.field.clone(),
                    serde_json::json!({"format": format, "type": doc.doc_type, "value": slot.field}),
                );
            }
            let document = Document {
                name: slot.field.clone(),
                category: slot.category.clone(),
                doc_type: doc.doc_type.clone(),
                mime: doc.mime.clone(),
                ref_number: doc.ref_number.clone(),
                content: self.blob(d.id, &blob_doc(&slot.field))?,
            };
            if slot.field_category == "optional" {
                optional.push(document)
            } else {
                evidence.push(document)
            }
        }
        if let Some(mime) = &d.body.exception_photo {
            evidence.push(Document {
                name: "exceptionPhoto".into(),
                category: "EXCEPTION_PHOTO".into(),
                doc_type: "DOC007".into(),
                mime: mime.clone(),
                ref_number: None,
                content: self.blob(d.id, BLOB_EXCEPTION_PHOTO)?,
            });
        }
        let mut biometrics = Vec::new();
        let mut devices: Vec<DeviceRef> = Vec::new();
        for a in BioAttribute::ALL {
            if let Some(c) = d.body.captures.get(&a) {
                if let Some(dev) = &c.device
                    && !devices.contains(dev)
                {
                    devices.push(dev.clone());
                }
                biometrics.push(BiometricRecord {
                    attribute: a,
                    image: self.blob(d.id, &blob_bio(a))?,
                    format: c.format.clone(),
                    quality: c.quality,
                    retries: c.retries,
                    exception: None,
                    force_captured: c.force_captured,
                    sbi_data_block: c.sbi_data_block.clone(),
                    device: c.device.clone(),
                    captured_at: c.captured_at,
                });
            } else if let Some(e) = answers.biometrics.exceptions.get(&a) {
                biometrics.push(BiometricRecord {
                    attribute: a,
                    image: vec![],
                    format: String::new(),
                    quality: 0,
                    retries: 0,
                    exception: Some(BioException {
                        kind: e.kind,
                        remark: e.remark.clone(),
                    }),
                    force_captured: false,
                    sbi_data_block: None,
                    device: None,
                    captured_at: now,
                });
            }
        }
        let spec = Form::new(&self.master, &d.process)?;
        let consent = spec.spec().consent();
        let uin = form
            .identity
            .get("UIN")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok());
        let offset: Option<i64> = self
            .store
            .conn()
            .query_row(
                "SELECT server_clock_offset_ms FROM station WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .map_err(StationError::db("reading the clock offset"))?;
        Ok(PacketContent {
            rid: rid.clone(),
            packet_type: packet_type(&d.process)?,
            created_at: now,
            id_schema_version: self.master.schema.id_version.clone(),
            identity,
            meta: Meta {
                center_id: self.center_id.clone(),
                machine_id: self.machine_id.clone(),
                operator_id: d.operator_id.clone(),
                supervisor: None,
                devices,
                geo: None,
                consent: Consent {
                    given: answers.consent,
                    text_version: consent.map(|c| c.text_version.clone()).unwrap_or_default(),
                    language: answers.languages.first().cloned().unwrap_or_default(),
                },
                languages: answers.languages.clone(),
                pre_registration_id: answers
                    .pre_registration_id
                    .as_deref()
                    .and_then(|p| p.parse().ok()),
                uin,
                changed_groups: answers.changed_groups.clone(),
                device_clock: now,
                server_clock_offset_ms: offset,
                audit: d.body.audit.clone(),
            },
            biometrics,
            evidence,
            optional,
        })
    }

    /// Signs the draft as its officer and seals it into a packet; returns the RID and the receipt.
    #[instrument(skip(self))]
    pub fn seal_draft(&mut self, id: i64) -> Result<Sealed> {
        let (me, mut d) = self.editable_draft(id, "sign and seal a registration")?;
        let review = self.review_body(&d)?;
        let form = match (review.ready, review.form) {
            (true, Some(f)) => f,
            _ => return Err(StationError::Validation(review.problems)),
        };
        let captured: Vec<BioAttribute> = d.body.captures.keys().copied().collect();
        self.enforce_cross_checks(id, &me, &captured)?;
        let recipients = load_recipients(self.store.conn())?;
        if recipients.is_empty() {
            return Err(StationError::Packet {
                rid: String::new(),
                detail: "no server packet key is configured; sync the server's keys (or give --packet-recipient at init)".into(),
            });
        }
        let now = self.clock.now();
        // Transaction 1: allocate the RID (or reuse the one of an interrupted attempt).
        let rid: Rid = match self
            .store
            .conn()
            .query_row("SELECT rid FROM drafts WHERE id = ?1", [id], |r| {
                r.get::<_, Option<String>>(0)
            }) {
            Ok(Some(r)) => r.parse()?,
            Ok(None) => {
                let (center, machine) = (self.center_id.clone(), self.machine_id.clone());
                self.store.tx(|tx| {
                    let seq: i64 = tx
                        .query_row(
                            "UPDATE station SET rid_sequence = (rid_sequence % 99999) + 1 WHERE id = 1 RETURNING rid_sequence",
                            [],
                            |r| r.get(0),
                        )
                        .map_err(StationError::db("allocating a RID"))?;
                    let rid = Rid::new(&center, &machine, u32::try_from(seq).unwrap_or(1), now)?;
                    tx.execute("UPDATE drafts SET rid = ?2, state = ?3 WHERE id = ?1", params![id, rid.as_str(), state::SEALING])
                        .map_err(StationError::db("reserving the RID"))?;
                    Ok(rid)
                })?
            }
            Err(e) => return Err(StationError::db("reading a draft")(e)),
        };
        self.store
            .conn()
            .execute(
                "UPDATE drafts SET state = ?2 WHERE id = ?1",
                params![id, state::SEALING],
            )
            .map_err(StationError::db("marking the draft as sealing"))?;
        self.note(&mut d.body, &me, "OFFICER_SIGNOFF", rid.to_string());
        let path = self.store.paths().packets.join(format!("{rid}.tpkt"));
        let written = self.write_packet(&d, &form, &rid, &me, &recipients, &path, now);
        let (content, size) = match written {
            Ok(v) => v,
            Err(e) => {
                // Leave no half-written packet and give the draft back, so the officer can retry at once
                // (the reserved RID is reused).
                let _ = std::fs::remove_file(&path);
                let _ = self.store.conn().execute(
                    "UPDATE drafts SET state = ?2 WHERE id = ?1",
                    params![id, state::DRAFT],
                );
                return Err(e);
            }
        };
        info!(rid = %rid, size, "packet sealed");
        let receipt_html = receipt::html(&self.master, &content, &self.center_id)?;
        let receipt_pdf = crate::receipt_pdf::pdf(&self.master, &content, &self.center_id)?;
        let receipt_pdf_base64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(receipt_pdf)
        };
        Ok(Sealed {
            rid: rid.to_string(),
            path,
            size,
            receipt_html,
            receipt_pdf_base64,
        })
    }

    #[allow(clippy::too_many_arguments, reason = "the pieces of one sealing step")]
    fn write_packet(
        &mut self,
        d: &DraftView,
        form: &ValidatedForm,
        rid: &Rid,
        me: &str,
        recipients: &[age::x25519::Recipient],
        path: &Path,
        now: DateTime<Utc>,
    ) -> Result<(PacketContent, u64)> {
        let content = self.build_content(d, form, rid, now)?;
        let pkt = |e: tessera_packet::PacketError| StationError::Packet {
            rid: rid.to_string(),
            detail: format!("{e} [{}]", e.kind()),
        };
        self.note_operator_key()?;
        let key = self.session()?.signing_key.clone();
        // One pass: the packet and the officer's sign-off written, fsynced and renamed together.
        let mut sign = |digest: &[u8; 32]| {
            SignOff::create(SignOffRole::Officer, me, Decision::Approved, now, digest, &key)
        };
        tessera_packet::seal_signed_to_file(&content, recipients, &self.machine_key, path, &mut sign)
            .map_err(pkt)?;
        let bytes = std::fs::read(path).map_err(StationError::io("reading the sealed packet", path))?;
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        // Transaction 2: record the packet and drop the draft.
        self.record_sealed(d.id, rid, &d.process, me, &bytes, now)?;
        Ok((content, size))
    }

    fn record_sealed(
        &mut self,
        id: i64,
        rid: &Rid,
        process: &str,
        officer: &str,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sha = hex::encode(sha256(bytes));
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        self.store.tx(|tx| {
            tx.execute(
                "INSERT INTO packets (rid, process, state, operator_id, file_name, size, sha256, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                params![rid.as_str(), process, state::AWAITING_APPROVAL, officer, format!("{rid}.tpkt"), size, sha, now.to_rfc3339()],
            )
            .map_err(StationError::db("recording the sealed packet"))?;
            // The draft stays as the supervisor's review copy until the decision.
            tx.execute("UPDATE drafts SET state = ?2 WHERE id = ?1", params![id, state::SEALED])
                .map_err(StationError::db("closing the draft"))?;
            audit::append(tx, now, officer, "PACKET_SEALED", rid.as_str(), &format!("size={size}"))
        })?;
        Ok(())
    }

    /// Finishes or rolls back what a kill interrupted; run at every login.
    pub fn recover(&mut self) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        let dir = self.store.paths().packets.clone();
        let entries = std::fs::read_dir(&dir).map_err(StationError::io("listing packets", &dir))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".partial") || name.ends_with(".tmp") {
                std::fs::remove_file(e.path())
                    .map_err(StationError::io("removing a partial packet", e.path()))?;
                report.temp_files_removed += 1;
            }
        }
        let sealing: Vec<(i64, String, String, String)> = {
            let mut st = self
                .store
                .conn()
                .prepare(
                    "SELECT id, rid, process, operator_id FROM drafts WHERE state = ?1 AND rid IS NOT NULL",
                )
                .map_err(StationError::db("finding interrupted seals"))?;
            st.query_map([state::SEALING], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .and_then(|r| r.collect())
            .map_err(StationError::db("finding interrupted seals"))?
        };
        let machine = self.machine_key.verifying_key();
        for (id, rid, process, officer) in sealing {
            let path = dir.join(format!("{rid}.tpkt"));
            let complete = path.exists()
                && tessera_packet::read_file(&path).ok().is_some_and(|mut p| {
                    p.verify(&machine).is_ok()
                        && p.signoffs()
                            .iter()
                            .any(|s| s.role == SignOffRole::Officer && s.operator_id == officer)
                });
            let already: bool = self
                .store
                .conn()
                .query_row("SELECT count(*) FROM packets WHERE rid = ?1", [&rid], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(StationError::db("checking a packet"))?
                > 0;
            let now = self.clock.now();
            if complete && !already {
                let bytes =
                    std::fs::read(&path).map_err(StationError::io("reading a sealed packet", &path))?;
                let parsed: Rid = rid.parse()?;
                self.record_sealed(id, &parsed, &process, &officer, &bytes, now)?;
                report.seals_completed.push(rid);
            } else if already {
                self.store
                    .conn()
                    .execute("DELETE FROM drafts WHERE id = ?1", [id])
                    .map_err(StationError::db("closing a finished draft"))?;
            } else {
                if path.exists() {
                    std::fs::remove_file(&path)
                        .map_err(StationError::io("removing an unsigned packet", &path))?;
                }
                self.store.tx(|tx| {
                    tx.execute(
                        "UPDATE drafts SET state = ?2 WHERE id = ?1",
                        params![id, state::DRAFT],
                    )
                    .map_err(StationError::db("reopening a draft"))?;
                    audit::append(tx, now, "system", "SEAL_ROLLED_BACK", &rid, "")
                })?;
                warn!(rid = %rid, "interrupted seal rolled back to its draft");
                report.seals_rolled_back.push(rid);
            }
        }
        // Decisions written to the file but not yet to the database.
        let waiting: Vec<String> = {
            let mut st = self
                .store
                .conn()
                .prepare("SELECT rid FROM packets WHERE state = ?1")
                .map_err(StationError::db("listing packets awaiting approval"))?;
            st.query_map([state::AWAITING_APPROVAL], |r| r.get(0))
                .and_then(|r| r.collect())
                .map_err(StationError::db("listing packets awaiting approval"))?
        };
        for rid in waiting {
            let path = dir.join(format!("{rid}.tpkt"));
            let Ok(p) = tessera_packet::read_file(&path) else {
                continue;
            };
            if let Some(s) = p
                .signoffs()
                .iter()
                .find(|s| s.role == SignOffRole::Supervisor)
                .cloned()
            {
                let bytes = std::fs::read(&path).map_err(StationError::io("reading a packet", &path))?;
                self.record_decision(&rid, &s, &bytes)?;
                report.decisions_reconciled.push(rid);
            }
        }
        Ok(report)
    }

    /// Packets waiting for a supervisor, oldest first.
    pub fn pending(&mut self) -> Result<Vec<PacketSummary>> {
        self.require(Role::Supervisor, "review pending packets")?;
        self.queue(Some(state::AWAITING_APPROVAL), 10_000, 0)
    }

    /// Approves a packet: the supervisor's signed sign-off is appended to the packet file.
    pub fn approve(&mut self, rid: &str) -> Result<()> {
        self.decide(rid, Decision::Approved)
    }

    /// Rejects a packet with a reason code from the synced `SUPERVISOR_REJECTION` list.
    pub fn reject(&mut self, rid: &str, reason: &str) -> Result<()> {
        let known = self
            .master
            .reasons
            .category("SUPERVISOR_REJECTION")
            .is_some_and(|c| c.reasons.iter().any(|r| r.code == reason));
        if !known {
            return Err(StationError::Validation(vec![FieldError {
                field: "reason".into(),
                code: "UNKNOWN_CODE".into(),
                language: None,
                message: format!(
                    "{reason} is not a supervisor rejection reason; see `tessera-station approve --list-reasons`"
                ),
            }]));
        }
        self.decide(
            rid,
            Decision::Rejected {
                reason: reason.into(),
            },
        )
    }

    fn decide(&mut self, rid: &str, decision: Decision) -> Result<()> {
        let me = self
            .require(Role::Supervisor, "approve or reject packets")?
            .operator
            .id
            .clone();
        let current: Option<String> = self
            .store
            .conn()
            .query_row("SELECT state FROM packets WHERE rid = ?1", [rid], |r| r.get(0))
            .optional()
            .map_err(StationError::db("reading a packet"))?;
        let current = current.ok_or_else(|| StationError::PacketNotFound { rid: rid.into() })?;
        if current != state::AWAITING_APPROVAL {
            return Err(StationError::InvalidState {
                what: format!("packet {rid}"),
                state: current,
                expected: state::AWAITING_APPROVAL,
                action: "approve or reject",
            });
        }
        let path = self.store.paths().packets.join(format!("{rid}.tpkt"));
        let pkt = |e: tessera_packet::PacketError| StationError::Packet {
            rid: rid.into(),
            detail: format!("{e} [{}]", e.kind()),
        };
        let mut packet = tessera_packet::read_file(&path).map_err(pkt)?;
        packet.verify(&self.machine_key.verifying_key()).map_err(pkt)?;
        let digest = packet.manifest_digest();
        drop(packet);
        let now = self.clock.now();
        self.note_operator_key()?;
        let key = &self.session()?.signing_key;
        let signoff =
            SignOff::create(SignOffRole::Supervisor, &me, decision, now, &digest, key).map_err(pkt)?;
        tessera_packet::append_signoff(&path, &signoff).map_err(pkt)?;
        let bytes = std::fs::read(&path).map_err(StationError::io("reading the signed packet", &path))?;
        self.record_decision(rid, &signoff, &bytes)
    }

    fn record_decision(&mut self, rid: &str, s: &SignOff, bytes: &[u8]) -> Result<()> {
        let (new_state, reason) = match &s.decision {
            Decision::Approved => (state::APPROVED, None),
            Decision::Rejected { reason } => (state::REJECTED, Some(reason.clone())),
        };
        let sha = hex::encode(sha256(bytes));
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let now = self.clock.now();
        self.store.tx(|tx| {
            tx.execute(
                "UPDATE packets SET state = ?2, supervisor_id = ?3, reason = ?4, sha256 = ?5, size = ?6, updated_at = ?7 WHERE rid = ?1",
                params![rid, new_state, s.operator_id, reason, sha, size, now.to_rfc3339()],
            )
            .map_err(StationError::db("recording the supervisor's decision"))?;
            // The review copy has served its purpose.
            tx.execute("DELETE FROM drafts WHERE rid = ?1 AND state = ?2", params![rid, state::SEALED])
                .map_err(StationError::db("deleting the review copy"))?;
            audit::append(tx, now, &s.operator_id, if reason.is_some() { "PACKET_REJECTED" } else { "PACKET_APPROVED" }, rid, reason.as_deref().unwrap_or(""))
        })?;
        Ok(())
    }

    /// Copies every approved packet into `dir` with a signed manifest, for offline transfer (USB). Packets are
    /// marked exported only after every file and the manifest are durably written.
    #[instrument(skip(self))]
    pub fn export(&mut self, dir: &Path) -> Result<ExportReport> {
        let me = self.session()?.operator.id.clone();
        std::fs::create_dir_all(dir).map_err(StationError::io("creating the export folder", dir))?;
        let approved = self.queue(Some(state::APPROVED), u32::MAX, 0)?;
        let now = self.clock.now();
        let mut entries = Vec::new();
        for p in &approved {
            let src = self.store.paths().packets.join(format!("{}.tpkt", p.rid));
            let bytes = std::fs::read(&src).map_err(StationError::io("reading a packet to export", &src))?;
            let sha = hex::encode(sha256(&bytes));
            if sha != p.sha256 {
                return Err(StationError::Packet {
                    rid: p.rid.clone(),
                    detail: "the packet file changed since approval; it was not exported".into(),
                });
            }
            let file = format!("{}.tpkt", p.rid);
            crypto::write_atomic(&dir.join(&file), &bytes)?;
            entries.push(ExportEntry {
                rid: p.rid.clone(),
                file,
                size: u64::try_from(bytes.len()).unwrap_or(0),
                sha256: sha,
            });
        }
        let manifest = ExportManifest {
            format: "tessera-export".into(),
            version: 1,
            center_id: self.center_id.to_string(),
            machine_id: self.machine_id.to_string(),
            machine_public_key: hex::encode(self.machine_key.verifying_key().as_bytes()),
            exported_at: now,
            operator_id: me.clone(),
            packets: entries,
        };
        let stamp = now.format("%Y%m%dT%H%M%SZ");
        let mpath = dir.join(format!("export-{}-{stamp}.json", self.machine_id));
        let mbytes = serde_json::to_vec_pretty(&manifest).map_err(|e| StationError::Crypto {
            context: "serialising the export manifest",
            detail: e.to_string(),
        })?;
        let sig = self.machine_key.sign(&mbytes);
        use base64::Engine;
        let sig_b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_bytes());
        crypto::write_atomic(&mpath, &mbytes)?;
        crypto::write_atomic(&mpath.with_extension("sig"), sig_b64.as_bytes())?;
        let rids: Vec<String> = manifest.packets.iter().map(|e| e.rid.clone()).collect();
        self.store.tx(|tx| {
            for r in &rids {
                tx.execute(
                    "UPDATE packets SET state = ?2, exported_at = ?3, updated_at = ?3 WHERE rid = ?1",
                    params![r, state::EXPORTED, now.to_rfc3339()],
                )
                .map_err(StationError::db("marking packets exported"))?;
            }
            audit::append(
                tx,
                now,
                &me,
                "PACKETS_EXPORTED",
                &mpath.display().to_string(),
                &format!("count={}", rids.len()),
            )
        })?;
        Ok(ExportReport {
            dir: dir.to_path_buf(),
            rids,
            manifest: mpath,
        })
    }

    /// Dashboard counts, in one indexed query.
    pub fn dashboard(&self) -> Result<Dashboard> {
        let mut d = Dashboard::default();
        let mut st = self
            .store
            .conn()
            .prepare_cached("SELECT state, count(*) FROM packets GROUP BY state")
            .map_err(StationError::db("counting packets"))?;
        let rows: Vec<(String, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|r| r.collect())
            .map_err(StationError::db("counting packets"))?;
        for (s, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            match s.as_str() {
                state::AWAITING_APPROVAL => d.awaiting_approval = n,
                state::APPROVED => d.approved = n,
                state::REJECTED => d.rejected = n,
                state::EXPORTED => d.exported = n,
                crate::sync::UPLOADED => d.uploaded = n,
                crate::sync::PROCESSED => d.processed = n,
                _ => {}
            }
        }
        d.drafts = self
            .store
            .conn()
            .query_row(
                "SELECT count(*) FROM drafts WHERE state <> ?1",
                [state::SEALED],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(StationError::db("counting drafts"))?;
        Ok(d)
    }

    /// The packet queue, optionally of one state, oldest first.
    pub fn queue(&self, state_filter: Option<&str>, limit: u32, offset: u32) -> Result<Vec<PacketSummary>> {
        // Two statements, so the (state, created_at) index serves the filtered listing.
        let sql = if state_filter.is_some() {
            "SELECT rid, process, state, operator_id, created_at, size, supervisor_id, reason, sha256 FROM packets
             WHERE state = ?1 ORDER BY created_at, rid LIMIT ?2 OFFSET ?3"
        } else {
            "SELECT rid, process, state, operator_id, created_at, size, supervisor_id, reason, sha256 FROM packets
             WHERE ?1 IS NULL ORDER BY created_at, rid LIMIT ?2 OFFSET ?3"
        };
        let mut st = self
            .store
            .conn()
            .prepare_cached(sql)
            .map_err(StationError::db("listing packets"))?;
        let rows = st
            .query_map(params![state_filter, limit, offset], |r| {
                Ok(PacketSummary {
                    rid: r.get(0)?,
                    process: r.get(1)?,
                    state: r.get(2)?,
                    operator_id: r.get(3)?,
                    created_at: r.get(4)?,
                    size: r.get(5)?,
                    supervisor_id: r.get(6)?,
                    reason: r.get(7)?,
                    sha256: r.get(8)?,
                })
            })
            .and_then(|r| r.collect())
            .map_err(StationError::db("listing packets"))?;
        Ok(rows)
    }
}

/// Checks an export folder's manifest signature and every file's size and hash; returns the manifest.
pub fn verify_export(manifest_path: &Path) -> Result<ExportManifest> {
    use base64::Engine;
    let meta = std::fs::metadata(manifest_path)
        .map_err(StationError::io("reading the export manifest", manifest_path))?;
    if meta.len() > 16 * 1024 * 1024 {
        return Err(StationError::Packet {
            rid: String::new(),
            detail: format!(
                "export manifest {} is larger than 16 MiB",
                manifest_path.display()
            ),
        });
    }
    let bytes = std::fs::read(manifest_path)
        .map_err(StationError::io("reading the export manifest", manifest_path))?;
    let sig_path = manifest_path.with_extension("sig");
    let sig = std::fs::read_to_string(&sig_path)
        .map_err(StationError::io("reading the export signature", &sig_path))?;
    let m: ExportManifest = serde_json::from_slice(&bytes).map_err(|e| StationError::ConfigParse {
        file: manifest_path.display().to_string(),
        detail: e.to_string(),
    })?;
    let bad = |d: String| StationError::Packet {
        rid: String::new(),
        detail: d,
    };
    let pk: [u8; 32] = hex::decode(&m.machine_public_key)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| bad("the manifest's machine key is not 32 hex bytes".into()))?;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).map_err(|e| bad(format!("machine key: {e}")))?;
    let sig: [u8; 64] = base64::engine::general_purpose::STANDARD
        .decode(sig.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| bad("the signature file is not a base64 Ed25519 signature".into()))?;
    vk.verify_strict(&bytes, &ed25519_dalek::Signature::from_bytes(&sig))
        .map_err(|_| bad("the export manifest's signature does not verify".into()))?;
    let dir = manifest_path.parent().unwrap_or_else(|| Path::new("."));
    for e in &m.packets {
        if e.file.contains('/') || e.file.contains('\\') || e.file.starts_with('.') {
            return Err(bad(format!("manifest entry {} has an unsafe file name", e.rid)));
        }
        let path = dir.join(&e.file);
        let mut f =
            std::fs::File::open(&path).map_err(StationError::io("reading an exported packet", &path))?;
        let mut hasher = sha2::Sha256::new();
        let size = std::io::copy(&mut f, &mut hasher)
            .map_err(StationError::io("reading an exported packet", &path))?;
        if size != e.size || hex::encode(hasher.finalize()) != e.sha256 {
            return Err(StationError::Packet {
                rid: e.rid.clone(),
                detail: "exported file does not match the manifest".into(),
            });
        }
    }
    Ok(m)
}
