//! Storage: the [`Store`] trait and its two implementations, [`sqlite::SqliteStore`] (embedded, encrypted with
//! SQLCipher, the default) and [`postgres::PgStore`] (for scale; several server processes share one database).
//!
//! Both pass one conformance suite (`tests/it/store.rs`). Times are Unix seconds (`i64`) in both, JSON is
//! stored as text, so the two schemas stay alike. Each backend has versioned migrations applied on open
//! (table `schema_migrations`); a database newer than the binary is refused.

use std::fmt;

use async_trait::async_trait;
use tessera_packet::ids::{CenterId, MachineId, Rid};
use tessera_packet::wire::{MachineStatus, PacketStatus, SyncItem, SyncKind};

pub mod postgres;
pub mod sqlite;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("SQLite error during {op}: {source}")]
    Sqlite {
        /// What the store was doing.
        op: &'static str,
        /// The driver error.
        source: rusqlite::Error,
    },
    /// PostgreSQL reported an error.
    #[error("PostgreSQL error during {op}: {source}")]
    Postgres {
        /// What the store was doing.
        op: &'static str,
        /// The driver error.
        source: tokio_postgres::Error,
    },
    /// No PostgreSQL connection could be taken from the pool.
    #[error(
        "cannot get a PostgreSQL connection ({op}): {message}; check TESSERA_DATABASE_URL and that the server is up"
    )]
    Pool {
        /// What the store was doing.
        op: &'static str,
        /// The pool's message.
        message: String,
    },
    /// The embedded database cannot be opened with the key in the data directory.
    #[error(
        "the embedded database {path} cannot be opened with keys/database.key (wrong key or not a Tessera database); restore the key from backup"
    )]
    WrongKey {
        /// The database file.
        path: String,
    },
    /// The database was written by a newer server version.
    #[error(
        "the database schema is at version {found}, newer than this server knows ({known}); upgrade the server"
    )]
    SchemaTooNew {
        /// Version in the database.
        found: i64,
        /// Newest version this binary knows.
        known: i64,
    },
    /// A row the operation needs does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// What kind of row.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The operation conflicts with existing data.
    #[error("{what}: {detail}")]
    Conflict {
        /// What conflicted.
        what: &'static str,
        /// Details (ids only).
        detail: String,
    },
    /// The UIN pool has no free UIN.
    #[error("the UIN pool is empty; generate more with `tessera-server uin-pool fill`")]
    PoolEmpty,
    /// A stored value does not parse (database edited by hand or corrupt).
    #[error("stored {what} is invalid: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A blocking database task failed to run.
    #[error("database task failed: {0}")]
    Task(String),
}

/// A machine as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRecord {
    /// Machine id (assigned by the server).
    pub machine_id: MachineId,
    /// The center it serves.
    pub center_id: CenterId,
    /// Label.
    pub name: String,
    /// Ed25519 public key.
    pub public_key: [u8; 32],
    /// Status.
    pub status: MachineStatus,
    /// Why it was suspended.
    pub status_reason: Option<String>,
    /// Enrolment request time (Unix seconds).
    pub requested_at: i64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
}

/// An enrolment request to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMachine {
    /// Center.
    pub center_id: CenterId,
    /// Label.
    pub name: String,
    /// Ed25519 public key.
    pub public_key: [u8; 32],
    /// Request time (Unix seconds).
    pub at: i64,
}

/// A resumable upload as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// Opaque upload id (the tus resource).
    pub upload_id: String,
    /// Uploading machine.
    pub machine_id: MachineId,
    /// The packet.
    pub rid: Rid,
    /// Declared total length.
    pub length: u64,
    /// Bytes received so far.
    pub received: u64,
    /// Declared hex SHA-256 of the whole packet.
    pub sha256: String,
    /// Creation time.
    pub created_at: i64,
    /// When the last byte arrived and the packet was accepted.
    pub completed_at: Option<i64>,
}

/// A new upload to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpload {
    /// Opaque id.
    pub upload_id: String,
    /// Machine.
    pub machine_id: MachineId,
    /// Packet.
    pub rid: Rid,
    /// Declared total length.
    pub length: u64,
    /// Declared hex SHA-256.
    pub sha256: String,
    /// Creation time.
    pub at: i64,
}

/// A completely received packet as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketRecord {
    /// The packet.
    pub rid: Rid,
    /// The machine that uploaded it.
    pub machine_id: MachineId,
    /// Hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Pipeline status.
    pub status: PacketStatus,
    /// Reason code when quarantined or held.
    pub reason: Option<String>,
    /// The signed receipt (JSON of `wire::SignedReceipt`).
    pub receipt: String,
    /// When it was received.
    pub received_at: i64,
    /// When its status last changed.
    pub updated_at: i64,
}

/// The server's storage. Every method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The applied schema version.
    async fn schema_version(&self) -> Result<i64, StoreError>;

    /// Stores an enrolment request and assigns a machine id; the same public key again returns the existing
    /// machine unchanged (idempotent). A new machine is `Pending`. The flag is true when the machine is new.
    async fn enrol_machine(&self, new: NewMachine) -> Result<(MachineRecord, bool), StoreError>;

    /// A machine by id.
    async fn machine(&self, id: &MachineId) -> Result<Option<MachineRecord>, StoreError>;

    /// Machines, optionally only those with `status`, by id.
    async fn list_machines(&self, status: Option<MachineStatus>) -> Result<Vec<MachineRecord>, StoreError>;

    /// Changes a machine's status (approve, suspend, reactivate). `NotFound` for an unknown id.
    async fn set_machine_status(
        &self,
        id: &MachineId,
        status: MachineStatus,
        reason: Option<String>,
        at: i64,
    ) -> Result<MachineRecord, StoreError>;

    /// Records a request nonce; `false` when the machine already used it (a replay). Forgets nonces whose
    /// `expires_at` is before `now`.
    async fn use_nonce(
        &self,
        machine: &MachineId,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Inserts, changes (`Some(body)`) or deletes (`None`) a sync item of `kind` in `scope` (`""` for items
    /// every station receives, else a center id). Returns the new version, or `None` when nothing changed.
    async fn put_sync_item(
        &self,
        kind: SyncKind,
        scope: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Option<i64>, StoreError>;

    /// Items of `kind` in `scope` with a version above `after`, oldest first, at most `limit`.
    async fn sync_items(
        &self,
        kind: SyncKind,
        scope: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<SyncItem>, StoreError>;

    /// Creates an upload. If the RID already has one from the same machine with the same length and digest,
    /// returns that one (a station retrying); otherwise `Conflict`.
    async fn create_upload(&self, new: NewUpload) -> Result<UploadRecord, StoreError>;

    /// An upload by id.
    async fn upload(&self, upload_id: &str) -> Result<Option<UploadRecord>, StoreError>;

    /// Moves an upload's received count from `from` to `to`; `false` if it was no longer at `from`.
    async fn advance_upload(&self, upload_id: &str, from: u64, to: u64) -> Result<bool, StoreError>;

    /// Uploads `machine` started at or after `since`.
    async fn uploads_since(&self, machine: &MachineId, since: i64) -> Result<u64, StoreError>;

    /// Marks an upload complete and records the packet as `Received` with its signed receipt, in one
    /// transaction. Idempotent: a completed upload returns the existing packet.
    async fn complete_upload(
        &self,
        upload_id: &str,
        receipt: &str,
        at: i64,
    ) -> Result<PacketRecord, StoreError>;

    /// A received packet.
    async fn packet(&self, rid: &Rid) -> Result<Option<PacketRecord>, StoreError>;

    /// Adds UINs to the pool (duplicates ignored), each with a random pick order; returns how many were new.
    async fn add_uins(&self, uins: Vec<(String, i64)>) -> Result<u64, StoreError>;

    /// Allocates one free UIN to each RID in one transaction. A RID that already has a UIN gets the same one
    /// again (idempotent). `PoolEmpty` (and nothing allocated) if the pool runs out.
    async fn allocate_uins(&self, rids: Vec<Rid>, at: i64) -> Result<Vec<(Rid, String)>, StoreError>;

    /// Free UINs left.
    async fn uins_available(&self) -> Result<u64, StoreError>;

    /// Claims the oldest ready processing job whose lease has expired (on PostgreSQL with
    /// `FOR UPDATE SKIP LOCKED`, so several workers share the queue), leases it to `worker` until
    /// `now + lease_secs`, and marks the packet `Processing`. A worker that dies leaves the lease to expire, and
    /// another worker takes the job again (at-least-once; stages are idempotent).
    async fn claim_job(&self, worker: &str, now: i64, lease_secs: i64) -> Result<Option<Rid>, StoreError>;

    /// Ends a job: sets the packet's final status (and reason) and marks the job done, in one transaction.
    async fn finish_job(
        &self,
        rid: &Rid,
        status: PacketStatus,
        reason: Option<String>,
        now: i64,
    ) -> Result<(), StoreError>;
}

pub(crate) fn to_u64(what: &'static str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        what,
        detail: format!("negative value {v}"),
    })
}

pub(crate) fn to_i64(what: &'static str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Conflict {
        what,
        detail: format!("value {v} too large"),
    })
}

pub(crate) fn parse_id<T: std::str::FromStr>(what: &'static str, s: &str) -> Result<T, StoreError>
where
    T::Err: fmt::Display,
{
    s.parse::<T>().map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

pub(crate) fn parse_machine_status(s: &str) -> Result<MachineStatus, StoreError> {
    MachineStatus::parse(s).ok_or_else(|| StoreError::Corrupt {
        what: "machine status",
        detail: s.to_owned(),
    })
}

pub(crate) fn parse_packet_status(s: &str) -> Result<PacketStatus, StoreError> {
    PacketStatus::parse(s).ok_or_else(|| StoreError::Corrupt {
        what: "packet status",
        detail: s.to_owned(),
    })
}

pub(crate) fn key_bytes(v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    let n = v.len();
    v.try_into().map_err(|_| StoreError::Corrupt {
        what: "machine public key",
        detail: format!("{n} bytes, expected 32"),
    })
}

pub(crate) fn parse_body(deleted: bool, body: Option<String>) -> Result<serde_json::Value, StoreError> {
    match (deleted, body) {
        (true, _) | (false, None) => Ok(serde_json::Value::Null),
        (false, Some(text)) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            what: "sync item body",
            detail: e.to_string(),
        }),
    }
}

/// First machine id the server assigns.
pub const FIRST_MACHINE_ID: i64 = 10_001;
