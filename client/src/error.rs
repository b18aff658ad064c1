//! The station's error type and its serialisable form for the command table.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One problem with one form field; the officer sees `message`, programs use `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// ID-schema field id, e.g. `"fullName"`, or a pseudo-field such as `"consent"` or `"biometrics.leftIndex"`.
    pub field: String,
    /// Stable code: `REQUIRED`, `INVALID`, `BLOCKLISTED`, `UNKNOWN_CODE`, `MISSING_LANGUAGE`, `UNKNOWN_FIELD`,
    /// `NOT_APPLICABLE`, `DOCUMENT`, `BIOMETRIC`, or the validator's own `errorCode`.
    pub code: String,
    /// Language of the offending value, for multilingual fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// What is wrong and what to do, in English (the UI maps `code` to the synced labels).
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.language {
            Some(l) => write!(f, "{} [{l}]: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// Why registration is frozen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "rule")]
pub enum FreezeReason {
    /// Too long since the last master-data sync.
    MasterDataStale {
        /// Days since the last sync (or since initialisation when never synced).
        days: i64,
        /// Configured limit.
        limit: i64,
    },
    /// Too many packets wait for a supervisor.
    TooManyAwaitingApproval {
        /// Packets waiting.
        count: u64,
        /// Configured limit.
        limit: u64,
    },
    /// Not enough free disk space.
    LowDisk {
        /// Free megabytes.
        free_mb: u64,
        /// Configured minimum.
        min_mb: u64,
    },
}

impl std::fmt::Display for FreezeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MasterDataStale { days, limit } => write!(
                f,
                "no master-data sync for {days} days (limit {limit}); run `tessera-station sync` when the network is available"
            ),
            Self::TooManyAwaitingApproval { count, limit } => write!(
                f,
                "{count} packets await supervisor approval (limit {limit}); a supervisor must run `tessera-station approve`"
            ),
            Self::LowDisk { free_mb, min_mb } => write!(
                f,
                "only {free_mb} MB of disk space is free (minimum {min_mb} MB); export or upload packets, or free disk space"
            ),
        }
    }
}

/// Everything that can go wrong in the station core.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    /// A configuration or master-data file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A configuration or master-data document is not valid JSON of the expected shape.
    #[error("configuration {file} is malformed: {detail}")]
    ConfigParse {
        /// File or master-data entry name.
        file: String,
        /// The parser's message (line and column).
        detail: String,
    },
    /// A configuration document parsed but is inconsistent (a dangling reference, a bad regex or expression).
    #[error("configuration {file} is invalid: {detail}")]
    ConfigInvalid {
        /// File or master-data entry name.
        file: String,
        /// What is wrong and where.
        detail: String,
    },
    /// An expression (requiredOn, visible, validationExpr) is outside the supported subset.
    #[error("expression {expr:?} is invalid at character {position}: {detail}")]
    Expression {
        /// The expression text.
        expr: String,
        /// Character offset of the problem.
        position: usize,
        /// What is wrong.
        detail: String,
    },
    /// A file of the station's home directory could not be read or written.
    #[error("{context} ({path}): {source}")]
    Io {
        /// What the station was doing.
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The station home has no store yet.
    #[error("no station store in {home}; run `tessera-station init` first")]
    NotInitialised {
        /// The station home directory.
        home: PathBuf,
    },
    /// `init` was run on a home that already has a store.
    #[error("a station store already exists in {home}; use it, or choose another --home")]
    AlreadyInitialised {
        /// The station home directory.
        home: PathBuf,
    },
    /// The database file is a plain, unencrypted SQLite file.
    #[error(
        "{path} is an unencrypted SQLite database, not a Tessera station store; it may have been replaced or \
         tampered with. Move it aside and restore the station from backup or ask an administrator to recover it"
    )]
    PlainDatabase {
        /// The database file.
        path: PathBuf,
    },
    /// The key unwrapped from a slot does not open the database.
    #[error(
        "the database key from the {slot} slot does not open {path}: the key-slot file and the database do not \
         belong together (restored from different backups?). Restore both from the same backup, or have an \
         administrator open the store with the recovery key"
    )]
    WrongDatabaseKey {
        /// The database file.
        path: PathBuf,
        /// Which slot was used.
        slot: String,
    },
    /// The operator has no key slot on this station.
    #[error(
        "operator {operator} has no key slot on this station. An operator who already has one can add it with \
         `tessera-station add-slot --operator <their id> --new {operator}`"
    )]
    NoSlot {
        /// Operator id.
        operator: String,
    },
    /// The store has no recovery slot.
    #[error("this store has no recovery slot; it cannot be opened with a recovery key")]
    NoRecoverySlot,
    /// The recovery identity does not open the recovery slot.
    #[error(
        "the recovery key does not open this station's recovery slot (sealed to {recipient}); use the matching server recovery key"
    )]
    WrongRecoveryKey {
        /// The recipient the slot was sealed to.
        recipient: String,
    },
    /// Wrong password.
    #[error("wrong password for operator {operator}; {attempts_left} attempts left before a lockout")]
    WrongPassword {
        /// Operator id.
        operator: String,
        /// Attempts left before lockout.
        attempts_left: u32,
    },
    /// Too many failed logins.
    #[error("operator {operator} is locked out after repeated failed logins until {until}; try again then")]
    LockedOut {
        /// Operator id.
        operator: String,
        /// End of the lockout.
        until: DateTime<Utc>,
    },
    /// The key-slot file is damaged.
    #[error(
        "key-slot file {path} is damaged: {detail}. Restore it from backup, or have an administrator open the store with \
         the recovery key"
    )]
    SlotFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A database operation failed.
    #[error("database error while {context}: {source}{}", disk_hint(source))]
    Database {
        /// What the station was doing.
        context: String,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The store was written by a newer version of the station.
    #[error(
        "the store has schema version {found} but this program knows only up to {known}; update tessera-station"
    )]
    StoreTooNew {
        /// Version in the database.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// A cryptographic operation failed.
    #[error("cryptographic failure while {context}: {detail}")]
    Crypto {
        /// What the station was doing.
        context: &'static str,
        /// Detail.
        detail: String,
    },
    /// The operators bundle is invalid.
    #[error("operators bundle invalid: {detail}")]
    Bundle {
        /// What is wrong.
        detail: String,
    },
    /// No such operator in the synced operator list.
    #[error("operator {operator} is not known on this station; sync operators from the server first")]
    UnknownOperator {
        /// Operator id.
        operator: String,
    },
    /// The operator is deactivated.
    #[error("operator {operator} is deactivated; contact your administrator")]
    OperatorInactive {
        /// Operator id.
        operator: String,
    },
    /// The operator belongs to another center.
    #[error(
        "operator {operator} belongs to center {operator_center}, but this station belongs to center {station_center}; \
         an operator can only work at a station of their own center"
    )]
    WrongCenter {
        /// Operator id.
        operator: String,
        /// The operator's center.
        operator_center: String,
        /// The station's center.
        station_center: String,
    },
    /// The operator lacks the role for an action.
    #[error("operator {operator} may not {action}: the {role} role is required")]
    NotPermitted {
        /// Operator id.
        operator: String,
        /// The action.
        action: &'static str,
        /// The role needed.
        role: &'static str,
    },
    /// No one is logged in.
    #[error("no operator is logged in; log in first")]
    NotLoggedIn,
    /// The session ended because of inactivity.
    #[error("operator {operator} was logged out after {idle_seconds} s without activity; log in again")]
    IdleLogout {
        /// Operator id.
        operator: String,
        /// Configured idle limit.
        idle_seconds: i64,
    },
    /// Registration is frozen by a rule.
    #[error("registration is stopped: {0}")]
    Frozen(FreezeReason),
    /// The answers failed validation.
    #[error("{} field(s) need attention: {}", .0.len(), summarise(.0))]
    Validation(Vec<FieldError>),
    /// A draft does not exist.
    #[error("draft {id} does not exist")]
    DraftNotFound {
        /// Draft id.
        id: i64,
    },
    /// A packet does not exist.
    #[error("packet {rid} does not exist on this station")]
    PacketNotFound {
        /// RID.
        rid: String,
    },
    /// An operation is not allowed in the current state.
    #[error("{what} is in state {state}; {action} needs state {expected}")]
    InvalidState {
        /// Draft or packet.
        what: String,
        /// Current state.
        state: String,
        /// Required state.
        expected: &'static str,
        /// The attempted action.
        action: &'static str,
    },
    /// An identifier could not be built.
    #[error("identifier error: {0}")]
    Id(#[from] tessera_packet::ids::IdError),
    /// A document could not be imported.
    #[error("document {name}: {detail}")]
    Document {
        /// Field / document name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// The audit log's hash chain is broken.
    #[error("audit log tampered or corrupt at entry {seq}: {detail}")]
    AuditChain {
        /// Sequence number of the first bad entry.
        seq: i64,
        /// What does not match.
        detail: String,
    },
    /// The server could not be reached or refused a request.
    #[error("{context}: {detail}")]
    Server {
        /// What the station was doing.
        context: String,
        /// What happened and what to do.
        detail: String,
        /// The server's (or station's) stable code, e.g. `machine_suspended`, `not_enrolled`.
        code: Option<String>,
    },
    /// A biometric device failed or could not be found.
    #[error("{context}: {detail}")]
    Device {
        /// What the station was doing.
        context: String,
        /// What happened and what to do.
        detail: String,
    },
    /// No pre-registration with this id has been synced to this station.
    #[error(
        "pre-registration {id} is not on this station; sync with the server (it sends the bookings of this center), check the id, or register without it"
    )]
    PreRegistrationNotFound {
        /// The id.
        id: String,
    },
    /// The pre-registration is booked at another center.
    #[error(
        "pre-registration {id} is booked at center {center}, not this center ({here}); the resident registers at center {center} or books again, or register without it"
    )]
    PreRegistrationOtherCenter {
        /// The id.
        id: String,
        /// The booking center.
        center: String,
        /// This station's center.
        here: String,
    },
    /// The local biometric cross-checks refused to seal a registration.
    #[error("sealing refused: {}", failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    BiometricCrossCheck {
        /// What failed (positions only, no biometric data).
        failures: Vec<crate::crosscheck::CrossCheckFailure>,
    },
    /// Building, sealing or checking a packet failed.
    #[error("packet {rid}: {detail}")]
    Packet {
        /// RID.
        rid: String,
        /// Detail, including the packet-format error code.
        detail: String,
    },
    /// A station set-up kit cannot be used (truncated, tampered, another version, not a kit, or content the
    /// station refuses).
    #[error("station kit: {0}")]
    Kit(String),
}

/// A hint for the errors SQLite reports when a write cannot be completed (disk full, file-size limit,
/// failing disk): the transaction was rolled back, so nothing of that step was saved.
fn disk_hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure) => {
            " (the disk may be full or failing; nothing of this step was saved: free disk space, e.g. by \
             exporting or uploading packets, then try again)"
        }
        _ => "",
    }
}

fn summarise(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl StationError {
    /// Wraps a rusqlite error with what the station was doing.
    pub fn db(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Self {
        let context = context.into();
        move |source| Self::Database { context, source }
    }

    /// Wraps an I/O error with context and path.
    pub fn io(context: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            context,
            path,
            source,
        }
    }

    /// The stable machine code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::ConfigRead { .. }
            | Self::ConfigParse { .. }
            | Self::ConfigInvalid { .. }
            | Self::Expression { .. } => ErrorCode::Configuration,
            Self::Io { .. } => ErrorCode::Io,
            Self::NotInitialised { .. } => ErrorCode::NotInitialised,
            Self::AlreadyInitialised { .. } => ErrorCode::AlreadyInitialised,
            Self::PlainDatabase { .. }
            | Self::WrongDatabaseKey { .. }
            | Self::SlotFile { .. }
            | Self::StoreTooNew { .. } => ErrorCode::StoreUnusable,
            Self::NoSlot { .. } => ErrorCode::NoSlot,
            Self::NoRecoverySlot | Self::WrongRecoveryKey { .. } => ErrorCode::Recovery,
            Self::WrongPassword { .. } => ErrorCode::WrongPassword,
            Self::LockedOut { .. } => ErrorCode::LockedOut,
            Self::Database { .. } => ErrorCode::Database,
            Self::Crypto { .. } => ErrorCode::Crypto,
            Self::Bundle { .. } => ErrorCode::Bundle,
            Self::UnknownOperator { .. } | Self::OperatorInactive { .. } | Self::WrongCenter { .. } => {
                ErrorCode::OperatorRejected
            }
            Self::NotPermitted { .. } => ErrorCode::NotPermitted,
            Self::NotLoggedIn | Self::IdleLogout { .. } => ErrorCode::NotLoggedIn,
            Self::Frozen(_) => ErrorCode::Frozen,
            Self::Validation(_) => ErrorCode::Validation,
            Self::DraftNotFound { .. }
            | Self::PacketNotFound { .. }
            | Self::PreRegistrationNotFound { .. } => ErrorCode::NotFound,
            Self::PreRegistrationOtherCenter { .. } => ErrorCode::InvalidInput,
            Self::InvalidState { .. } => ErrorCode::InvalidState,
            Self::Id(_) => ErrorCode::InvalidInput,
            Self::Document { .. } => ErrorCode::Document,
            Self::AuditChain { .. } => ErrorCode::AuditChain,
            Self::Packet { .. } => ErrorCode::Packet,
            Self::Server { .. } => ErrorCode::Server,
            Self::Device { .. } => ErrorCode::Device,
            Self::BiometricCrossCheck { .. } => ErrorCode::BiometricCrossCheck,
            Self::Kit(_) => ErrorCode::Kit,
        }
    }
}

/// Stable error codes for adapters (CLI exit codes, Tauri, HTTP bridge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(
    missing_docs,
    reason = "each code mirrors the StationError variants documented above"
)]
pub enum ErrorCode {
    Configuration,
    Io,
    NotInitialised,
    AlreadyInitialised,
    StoreUnusable,
    NoSlot,
    Recovery,
    WrongPassword,
    LockedOut,
    Database,
    Crypto,
    Bundle,
    OperatorRejected,
    NotPermitted,
    NotLoggedIn,
    Frozen,
    Validation,
    NotFound,
    InvalidState,
    InvalidInput,
    Document,
    AuditChain,
    Packet,
    Server,
    Device,
    BiometricCrossCheck,
    Kit,
}

/// The serialisable error every command returns: a stable code, the human message, and per-field problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
pub struct CommandError {
    /// Stable code.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
    /// Field problems, for validation errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// The freeze rule, for `FROZEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<FreezeReason>,
}

impl From<StationError> for CommandError {
    fn from(e: StationError) -> Self {
        let code = e.code();
        let message = e.to_string();
        match e {
            StationError::Validation(fields) => Self {
                code,
                message,
                fields,
                freeze: None,
            },
            StationError::Frozen(r) => Self {
                code,
                message,
                fields: vec![],
                freeze: Some(r),
            },
            _ => Self {
                code,
                message,
                fields: vec![],
                freeze: None,
            },
        }
    }
}

/// Result alias.
pub type Result<T, E = StationError> = std::result::Result<T, E>;
