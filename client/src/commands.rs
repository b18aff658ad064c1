//! The station's command table: one typed input and output per operation, a serialisable error. The CLI,
//! the Tauri shell and the local HTTP bridge are thin adapters over [`Station::execute`] (plus the two
//! constructors [`init`] and [`login`], which produce the [`Station`]).
//!
//! Inputs and outputs are JSON-friendly (`{"op": "sealDraft", "input": {"draft": 3}}`), binary inputs are
//! base64 so the HTTP bridge and the webview can send them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tessera_packet::clock::Clock;
use tessera_packet::types::{BioAttribute, DeviceRef};

use crate::audit::{self, AuditEntry};
use crate::capture::{CapturePart, DeviceOptions, Discovered, PartCapture};
use crate::crosscheck::OperatorFingers;
use crate::crypto::KdfParams;
use crate::error::{CommandError, FieldError, FreezeReason, StationError};
use crate::forms::Answers;
use crate::masterdata::{Coded, Document};
use crate::operators::OperatorBundle;
use crate::prereg::{PreRegistration, Prefilled};
use crate::station::{InitParams, MachineIdentity, Station};
use crate::sync::{Enrolment, ServerLink, SyncOptions, SyncReport, UploadView};
use crate::workflow::{
    Capture, Dashboard, DraftView, ExportReport, PacketSummary, RecoveryReport, Review, Sealed,
};

/// Input of [`init`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitInput {
    /// Station home.
    pub home: PathBuf,
    /// Center id (5 digits).
    pub center_id: String,
    /// Machine id (5 digits).
    pub machine_id: String,
    /// The server's recovery public key (`age1...`).
    pub recovery_key: String,
    /// The server's packet keys (`age1...`).
    pub packet_keys: Vec<String>,
    /// Country configuration folder.
    pub config_dir: PathBuf,
    /// Operators bundle file.
    pub operators_file: PathBuf,
    /// Operator initialising the station.
    pub operator: String,
    /// Their password.
    pub password: String,
}

/// Input of [`login`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginInput {
    /// Station home.
    pub home: PathBuf,
    /// Operator id.
    pub operator: String,
    /// Password.
    pub password: String,
}

/// Output of [`login`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginOutput {
    /// Operator id.
    pub operator: String,
    /// Roles.
    pub roles: Vec<String>,
    /// What recovery did.
    pub recovery: RecoveryReport,
}

/// Creates a station. Returns it with its machine identity (show the fingerprint to the administrator).
pub fn init(input: &InitInput, clock: Arc<dyn Clock>) -> Result<(Station, MachineIdentity), CommandError> {
    let docs: Vec<Document> = crate::masterdata::read_folder(&input.config_dir)?;
    let bytes = std::fs::read(&input.operators_file).map_err(StationError::io(
        "reading the operators bundle",
        &input.operators_file,
    ))?;
    let bundle = OperatorBundle::parse(&bytes)?;
    let (st, id) = Station::init(
        InitParams {
            home: &input.home,
            center_id: input.center_id.parse().map_err(StationError::from)?,
            machine_id: input.machine_id.parse().map_err(StationError::from)?,
            recovery_recipient: &input.recovery_key,
            master_data: docs,
            operators: bundle,
            packet_recipients: input.packet_keys.clone(),
            operator_id: &input.operator,
            password: &input.password,
            kdf: KdfParams::DEFAULT,
        },
        clock,
    )?;
    Ok((st, id))
}

/// The roles of the operator logged in to `st`, as adapters show them.
fn session_roles(st: &mut Station) -> Result<Vec<String>, CommandError> {
    Ok(st
        .session()?
        .operator
        .roles
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect())
}

/// Logs an operator in offline (and finishes whatever a crash interrupted).
pub fn login(input: &LoginInput, clock: Arc<dyn Clock>) -> Result<(Station, LoginOutput), CommandError> {
    let mut st = Station::login(&input.home, &input.operator, &input.password, clock)?;
    let roles = session_roles(&mut st)?;
    let out = LoginOutput {
        operator: input.operator.clone(),
        roles,
        recovery: st.last_recovery().clone(),
    };
    Ok((st, out))
}

/// Whether a station home holds a station yet (adapters ask before login, to offer the first-run set-up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HomeState {
    /// A station store exists.
    pub initialised: bool,
}

/// Whether `home` holds a station.
pub fn home_state(home: &Path) -> HomeState {
    HomeState {
        initialised: crate::store::StorePaths::new(home).db.exists(),
    }
}

/// Input of [`inspect_kit`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KitInput {
    /// The kit file, base64.
    pub kit_base64: String,
}

/// Reads a station set-up kit and says what it holds ([`crate::kit::inspect`]); writes nothing.
pub fn inspect_kit(input: &KitInput) -> Result<crate::kit::KitSummary, CommandError> {
    let bytes = kit_bytes(&input.kit_base64)?;
    Ok(crate::kit::inspect(&bytes)?)
}

fn kit_bytes(b: &str) -> Result<Vec<u8>, StationError> {
    if b.len() > tessera_packet::wire::kit::MAX_KIT_BYTES / 3 * 4 + 4 {
        return Err(StationError::Kit(
            "the file is larger than a station kit can be; choose the kit file the administrator gave you"
                .into(),
        ));
    }
    B64.decode(b.trim())
        .map_err(|e| StationError::Kit(format!("the file did not arrive intact (not valid base64: {e})")))
}

/// Input of [`create_from_kit`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KitCreateInput {
    /// Station home (must not hold a station yet).
    pub home: PathBuf,
    /// The kit file, base64.
    pub kit_base64: String,
    /// The digest [`inspect_kit`] reported and the officer confirmed.
    pub kit_sha256: String,
    /// The first operator (listed in the kit).
    pub operator: String,
    /// Their password.
    pub password: String,
}

impl std::fmt::Debug for KitCreateInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KitCreateInput")
            .field("home", &self.home)
            .field("operator", &self.operator)
            .finish_non_exhaustive()
    }
}

/// Output of [`create_from_kit`]: the logged-in first operator, the machine identity (fingerprint for the
/// administrator) and what the kit held.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KitCreated {
    /// Operator id (logged in).
    pub operator: String,
    /// Their roles.
    pub roles: Vec<String>,
    /// The new machine identity.
    pub machine: MachineIdentity,
    /// The kit.
    pub kit: crate::kit::KitSummary,
}

/// Creates a station from a set-up kit ([`crate::kit::create`]); the first operator is logged in.
pub fn create_from_kit(
    input: &KitCreateInput,
    clock: Arc<dyn Clock>,
) -> Result<(Station, KitCreated), CommandError> {
    let bytes = kit_bytes(&input.kit_base64)?;
    let (mut st, machine, kit) = crate::kit::create(
        &input.home,
        &bytes,
        Some(&input.kit_sha256),
        &input.operator,
        &input.password,
        KdfParams::DEFAULT,
        clock,
    )?;
    let roles = session_roles(&mut st)?;
    Ok((
        st,
        KitCreated {
            operator: input.operator.clone(),
            roles,
            machine,
            kit,
        },
    ))
}

/// A biometric capture as adapters send it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaptureInput {
    /// Attribute.
    pub attribute: BioAttribute,
    /// Image record, base64.
    pub image_base64: String,
    /// Format name.
    pub format: String,
    /// Quality 0-100.
    pub quality: u8,
    /// Attempts so far.
    pub retries: u32,
    /// Accept below threshold after the retries.
    #[serde(default)]
    pub force_captured: bool,
    /// SBI data block.
    #[serde(default)]
    pub sbi_data_block: Option<String>,
    /// Device.
    #[serde(default)]
    pub device: Option<DeviceRef>,
    /// Capture time.
    pub captured_at: DateTime<Utc>,
}

/// Every operation on an open station.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", content = "input", rename_all = "camelCase")]
pub enum Command {
    /// Station status and dashboard.
    Status,
    /// Start a draft.
    StartDraft {
        /// NEW, UPDATE or LOST.
        process: String,
    },
    /// Save a draft's answers.
    SaveAnswers {
        /// Draft id.
        draft: i64,
        /// Answers.
        answers: Answers,
    },
    /// Import a document scan.
    ImportDocument {
        /// Draft id.
        draft: i64,
        /// Document field.
        field: String,
        /// Document type code.
        doc_type: String,
        /// Reference number.
        #[serde(default)]
        ref_number: Option<String>,
        /// Bytes, base64.
        content_base64: String,
    },
    /// Import the exception photo.
    ImportExceptionPhoto {
        /// Draft id.
        draft: i64,
        /// Bytes, base64.
        content_base64: String,
    },
    /// Store a biometric capture.
    AddCapture {
        /// Draft id.
        draft: i64,
        /// The capture.
        capture: CaptureInput,
    },
    /// Read a draft.
    Draft {
        /// Draft id.
        draft: i64,
    },
    /// The officer's open drafts.
    MyDrafts,
    /// Discard a draft.
    DiscardDraft {
        /// Draft id.
        draft: i64,
    },
    /// Review a draft.
    Review {
        /// Draft id.
        draft: i64,
    },
    /// Sign and seal a draft.
    SealDraft {
        /// Draft id.
        draft: i64,
    },
    /// Packets awaiting approval.
    Pending,
    /// Approve a packet.
    Approve {
        /// RID.
        rid: String,
    },
    /// Reject a packet.
    Reject {
        /// RID.
        rid: String,
        /// Reason code.
        reason: String,
    },
    /// Supervisor rejection reasons.
    RejectionReasons,
    /// Export approved packets.
    Export {
        /// Target folder.
        dir: PathBuf,
    },
    /// The packet queue.
    Queue {
        /// State filter.
        #[serde(default)]
        state: Option<String>,
        /// Page size.
        limit: u32,
        /// Offset.
        #[serde(default)]
        offset: u32,
    },
    /// Audit entries.
    Audit {
        /// After this sequence number.
        #[serde(default)]
        after: i64,
        /// Page size.
        limit: u32,
    },
    /// Verify the audit chain.
    VerifyAudit,
    /// Add a key slot for another operator.
    AddOperatorSlot {
        /// Operator id.
        operator: String,
        /// Their password.
        password: String,
    },
    /// Apply a country configuration folder as master data (until master-data sync exists).
    ApplyConfig {
        /// Configuration folder.
        dir: PathBuf,
    },
    /// Apply an operators bundle file (until operator sync exists).
    ApplyOperators {
        /// Bundle file.
        file: PathBuf,
    },
    /// Enrol this machine with a server (pins the server key; takes the machine id it assigns).
    EnrolMachine {
        /// Server base URL, e.g. `https://tessera.example:8440`.
        server_url: String,
        /// A name for this machine (host name or asset tag).
        name: String,
    },
    /// One sync round: master data, upload of approved packets, server status, retention.
    Sync {
        /// Options (defaults when absent).
        #[serde(default)]
        options: SyncOptions,
    },
    /// Upload and server status of every approved, uploaded or processed packet.
    Uploads,
    /// List the SBI devices on this computer.
    DiscoverDevices {
        /// Port range and extra trusted CAs.
        #[serde(default)]
        devices: DeviceOptions,
    },
    /// Capture biometrics from SBI devices into a draft: one part, or every part still needed.
    CaptureBiometrics {
        /// Draft id.
        draft: i64,
        /// One part; absent = every part the draft still needs.
        #[serde(default)]
        part: Option<CapturePart>,
        /// Port range and extra trusted CAs.
        #[serde(default)]
        devices: DeviceOptions,
    },
    /// Log out.
    Logout,
    /// Capture the logged-in operator's own fingers from the SBI devices and enrol them (for the
    /// cross-check before sealing).
    EnrolOperatorBiometrics {
        /// Port range and extra trusted CAs.
        #[serde(default)]
        devices: DeviceOptions,
    },
    /// The enrolled finger positions of the logged-in operator.
    OperatorBiometrics,
    /// A synced pre-registration of this center, by id or QR payload.
    PreRegistration {
        /// The id, or what the QR scanner typed.
        reference: String,
    },
    /// Start a draft prefilled from a pre-registration (by id or QR payload).
    StartDraftFromPreRegistration {
        /// The id, or what the QR scanner typed.
        reference: String,
    },
    /// Record where the officer is in the wizard, so the draft resumes exactly there.
    SetDraftStep {
        /// Draft id.
        draft: i64,
        /// The wizard's step name.
        step: String,
    },
    /// A document (or `exceptionPhoto`) of a draft, for preview.
    DraftDocument {
        /// Draft id.
        draft: i64,
        /// Document field, or `exceptionPhoto`.
        field: String,
    },
    /// The supervisor's review copy of a packet awaiting approval (the draft it was sealed from).
    PacketReview {
        /// RID.
        rid: String,
    },
    /// Stop the running STREAM preview, if any (the preview itself is started by the adapters'
    /// streaming call, see [`crate::preview`]).
    StopPreview,
}

/// Station status.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Machine identity.
    pub machine: MachineIdentity,
    /// Logged-in operator.
    pub operator: Option<String>,
    /// Counts.
    pub dashboard: Dashboard,
    /// Why registration is frozen, if it is.
    pub frozen: Option<FreezeReason>,
    /// Last master-data sync.
    pub last_master_sync: Option<DateTime<Utc>>,
    /// Configuration version in force.
    pub config_version: String,
    /// ID-schema version in force.
    pub id_schema_version: String,
    /// The server this machine is enrolled with, if any.
    #[serde(default)]
    pub server: Option<ServerLink>,
    /// The server named by the set-up kit the station was created from, if any (its key is pinned).
    #[serde(default)]
    pub kit: Option<crate::kit::KitPin>,
}

/// Outputs, one per command.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "output", rename_all = "camelCase")]
#[allow(
    missing_docs,
    reason = "each variant is the output of the command of the same name"
)]
pub enum Output {
    Status(Box<Status>),
    DraftStarted { draft: i64 },
    AnswersSaved { problems: Vec<FieldError> },
    Done,
    Draft(Box<DraftView>),
    Drafts(Vec<DraftView>),
    Review(Box<Review>),
    Sealed(Box<Sealed>),
    Packets(Vec<PacketSummary>),
    Reasons(Vec<Coded>),
    Exported(ExportReport),
    Audit(Vec<AuditEntry>),
    AuditVerified { entries: i64 },
    Machine(MachineIdentity),
    Enrolled(Enrolment),
    Synced(Box<SyncReport>),
    Uploads(Vec<UploadView>),
    Devices(Discovered),
    Captured(Vec<PartCapture>),
    OperatorFingers(OperatorFingers),
    PreRegistration(Box<PreRegistration>),
    Prefilled(Prefilled),
    DraftDocument { mime: String, content_base64: String },
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>, StationError> {
    B64.decode(s).map_err(|e| StationError::Document {
        name: field.into(),
        detail: format!("not valid base64: {e}"),
    })
}

impl Station {
    /// Runs one command.
    pub fn execute(&mut self, cmd: Command) -> Result<Output, CommandError> {
        Ok(self.run(cmd)?)
    }

    fn run(&mut self, cmd: Command) -> Result<Output, StationError> {
        Ok(match cmd {
            Command::Status => Output::Status(Box::new(self.status()?)),
            Command::StartDraft { process } => Output::DraftStarted {
                draft: self.start_draft(&process)?,
            },
            Command::SaveAnswers { draft, answers } => Output::AnswersSaved {
                problems: self.save_answers(draft, answers)?,
            },
            Command::ImportDocument {
                draft,
                field,
                doc_type,
                ref_number,
                content_base64,
            } => {
                let bytes = b64(&field, &content_base64)?;
                self.import_document(draft, &field, &doc_type, ref_number, &bytes)?;
                Output::Done
            }
            Command::ImportExceptionPhoto {
                draft,
                content_base64,
            } => {
                self.import_exception_photo(draft, &b64("exceptionPhoto", &content_base64)?)?;
                Output::Done
            }
            Command::AddCapture { draft, capture: c } => {
                let image = b64(&format!("biometrics.{}", c.attribute), &c.image_base64)?;
                self.add_capture(
                    draft,
                    Capture {
                        attribute: c.attribute,
                        image,
                        format: c.format,
                        quality: c.quality,
                        retries: c.retries,
                        force_captured: c.force_captured,
                        sbi_data_block: c.sbi_data_block,
                        device: c.device,
                        captured_at: c.captured_at,
                    },
                )?;
                Output::Done
            }
            Command::Draft { draft } => Output::Draft(Box::new(self.draft(draft)?)),
            Command::MyDrafts => Output::Drafts(self.my_drafts()?),
            Command::DiscardDraft { draft } => {
                self.discard_draft(draft)?;
                Output::Done
            }
            Command::Review { draft } => Output::Review(Box::new(self.review(draft)?)),
            Command::SealDraft { draft } => Output::Sealed(Box::new(self.seal_draft(draft)?)),
            Command::Pending => Output::Packets(self.pending()?),
            Command::Approve { rid } => {
                self.approve(&rid)?;
                Output::Done
            }
            Command::Reject { rid, reason } => {
                self.reject(&rid, &reason)?;
                Output::Done
            }
            Command::RejectionReasons => Output::Reasons(
                self.master
                    .reasons
                    .category("SUPERVISOR_REJECTION")
                    .map(|c| c.reasons.clone())
                    .unwrap_or_default(),
            ),
            Command::Export { dir } => Output::Exported(self.export(&dir)?),
            Command::Queue { state, limit, offset } => {
                self.session()?;
                Output::Packets(self.queue(state.as_deref(), limit.min(10_000), offset)?)
            }
            Command::Audit { after, limit } => {
                self.session()?;
                Output::Audit(audit::list(self.store.conn(), after, limit.min(10_000))?)
            }
            Command::VerifyAudit => {
                self.session()?;
                Output::AuditVerified {
                    entries: audit::verify(self.store.conn())?,
                }
            }
            Command::AddOperatorSlot { operator, password } => {
                Output::Machine(self.add_operator_slot(&operator, &password)?)
            }
            Command::ApplyConfig { dir } => {
                self.session()?;
                let docs = crate::masterdata::read_folder(&dir)?;
                self.apply_master_data(&docs)?;
                Output::Done
            }
            Command::ApplyOperators { file } => {
                self.session()?;
                let bytes = read_input_file(&file, 4 * 1024 * 1024)?;
                self.apply_operators(&OperatorBundle::parse(&bytes)?)?;
                Output::Done
            }
            Command::EnrolMachine { server_url, name } => {
                Output::Enrolled(block_on(self.enrol_machine(&server_url, &name))??)
            }
            Command::Sync { options } => Output::Synced(Box::new(block_on(self.sync_with(
                &options,
                &mut |p: &crate::sync::Progress| tracing::debug!(progress = ?p, "sync"),
            ))??)),
            Command::Uploads => {
                self.session()?;
                Output::Uploads(self.uploads()?)
            }
            Command::DiscoverDevices { devices } => {
                Output::Devices(block_on(self.discover_devices(&devices))??)
            }
            Command::CaptureBiometrics { draft, part, devices } => Output::Captured(match part {
                Some(p) => vec![block_on(self.capture_part(draft, p, &devices))??],
                None => block_on(self.capture_all(draft, &devices))??,
            }),
            Command::Logout => {
                self.logout()?;
                Output::Done
            }
            Command::EnrolOperatorBiometrics { devices } => self.run_enrol_operator_biometrics(&devices)?,
            Command::OperatorBiometrics => self.run_operator_biometrics()?,
            Command::PreRegistration { reference } => self.run_pre_registration(&reference)?,
            Command::StartDraftFromPreRegistration { reference } => self.run_prefill(&reference)?,
            Command::SetDraftStep { draft, step } => {
                self.set_draft_step(draft, &step)?;
                Output::Done
            }
            Command::DraftDocument { draft, field } => {
                let (mime, bytes) = self.draft_document(draft, &field)?;
                Output::DraftDocument {
                    mime,
                    content_base64: B64.encode(bytes),
                }
            }
            Command::PacketReview { rid } => Output::Draft(Box::new(self.review_copy(&rid)?)),
            Command::StopPreview => {
                self.previews.stop(crate::preview::PreviewEnd::Stopped);
                Output::Done
            }
        })
    }

    /// Station status (works without a session, e.g. after recovery).
    pub fn status(&self) -> Result<Status, StationError> {
        let frozen = match self.check_freeze() {
            Ok(()) => None,
            Err(StationError::Frozen(r)) => Some(r),
            Err(e) => return Err(e),
        };
        Ok(Status {
            machine: self.machine_identity(),
            operator: self.session.as_ref().map(|s| s.operator.id.clone()),
            dashboard: self.dashboard()?,
            frozen,
            last_master_sync: self.last_master_sync()?,
            config_version: self.master.manifest.config_version.clone(),
            id_schema_version: self.master.schema.id_version.clone(),
            server: self.server_link()?,
            kit: self.kit_pin()?,
        })
    }
}

// Operator biometrics (cross-checks before sealing), kept apart from the table above to ease merges.
impl Station {
    fn run_enrol_operator_biometrics(&mut self, devices: &DeviceOptions) -> Result<Output, StationError> {
        Ok(Output::OperatorFingers(block_on(
            self.enrol_operator_biometrics(devices),
        )??))
    }

    fn run_operator_biometrics(&mut self) -> Result<Output, StationError> {
        let me = self.session()?.operator.id.clone();
        Ok(Output::OperatorFingers(self.operator_fingers(&me)?))
    }
}

// Pre-registrations, kept apart from the table above to ease merges.
impl Station {
    fn run_pre_registration(&mut self, reference: &str) -> Result<Output, StationError> {
        self.session()?;
        Ok(Output::PreRegistration(Box::new(
            self.pre_registration(reference)?,
        )))
    }

    fn run_prefill(&mut self, reference: &str) -> Result<Output, StationError> {
        Ok(Output::Prefilled(
            self.start_draft_from_pre_registration(reference)?,
        ))
    }
}

/// Runs an async station operation from the synchronous command table: on a multi-threaded tokio runtime
/// it blocks in place; outside any runtime it runs a private current-thread runtime. A current-thread
/// runtime cannot be blocked: call the async methods directly there.
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, StationError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| h.block_on(f)))
        }
        Ok(_) => Err(StationError::Server {
            context: "running a network command".into(),
            detail: "called from a single-threaded async runtime; use the async method instead".into(),
            code: None,
        }),
        Err(_) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StationError::Server {
                    context: "starting the network runtime".into(),
                    detail: e.to_string(),
                    code: None,
                })?;
            Ok(rt.block_on(f))
        }
    }
}

/// Reads a file for an adapter, bounded.
pub fn read_input_file(path: &Path, limit: u64) -> Result<Vec<u8>, StationError> {
    let meta = std::fs::metadata(path).map_err(StationError::io("reading an input file", path))?;
    if meta.len() > limit {
        return Err(StationError::Document {
            name: path.display().to_string(),
            detail: format!("{} bytes is more than the {limit} allowed", meta.len()),
        });
    }
    std::fs::read(path).map_err(StationError::io("reading an input file", path))
}
