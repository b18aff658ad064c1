//! Storage: the [`Store`] trait and its two implementations, [`sqlite::SqliteStore`] (embedded, encrypted with
//! SQLCipher, the default) and [`postgres::PgStore`] (for scale; several server processes share one database).
//!
//! Both pass one conformance suite (`tests/it/store.rs`). Times are Unix seconds (`i64`) in both, JSON is
//! stored as text, so the two schemas stay alike. Each backend has versioned migrations applied on open
//! (table `schema_migrations`); a database newer than the binary is refused.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
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
    /// The store was opened without the data directory's UIN cipher, which it needs to seal the UINs it
    /// stores (a programming error: see `with_uin_cipher`).
    #[error("the store has no UIN cipher: it cannot seal or open {0}")]
    NoUinCipher(&'static str),
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

/// An operator's sign-off key as registered by a station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorKeyRecord {
    /// Operator id.
    pub operator_id: String,
    /// Ed25519 public key.
    pub public_key: [u8; 32],
    /// The machine that registered it.
    pub machine_id: MachineId,
    /// That machine's center.
    pub center_id: CenterId,
    /// When (Unix seconds).
    pub registered_at: i64,
}

/// A UIN in the pool: its salted lookup hash and the UIN sealed by [`crate::uin::UinCipher`]. The database
/// never holds a UIN in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUin {
    /// Salted SHA-256 of the UIN (hex), the same as the ID repository's lookup key.
    pub uin_hash: String,
    /// The UIN, sealed and bound to `uin_hash`.
    pub sealed: Vec<u8>,
}

/// A possible duplicate found by dedupe: an existing identity (by UIN) and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// UIN of the existing identity.
    pub uin: String,
    /// `demographic` (same normalised name, date of birth and gender) or `biometric` (1:N finger match).
    pub kind: String,
    /// Fused score: 1.0 for a demographic blocking-key match; the fused finger score (0-1) for biometrics.
    pub score: f64,
    /// For biometric candidates, how many fingers were compared.
    #[serde(default)]
    pub fingers_compared: u32,
}

/// A manual adjudication case (one per held packet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdjudicationCase {
    /// The held packet.
    pub rid: Rid,
    /// `PENDING`, `DUPLICATE` or `NOT_DUPLICATE`.
    pub status: String,
    /// The candidates found.
    pub candidates: Vec<Candidate>,
    /// When the packet was held (Unix seconds).
    pub created_at: i64,
    /// When decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
    /// Who decided (role name of the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// For `DUPLICATE`: the UIN the packet duplicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
}

/// Status of an adjudication case.
pub mod case_status {
    /// Waiting for an adjudicator.
    pub const PENDING: &str = "PENDING";
    /// Decided: the packet duplicates an existing identity.
    pub const DUPLICATE: &str = "DUPLICATE";
    /// Decided: a different person; the packet proceeds to UIN issuance.
    pub const NOT_DUPLICATE: &str = "NOT_DUPLICATE";
}

/// One stored gallery template (a finger of an identity with a UIN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GalleryRow {
    /// Insertion order (a cursor for incremental loading).
    pub seq: i64,
    /// The identity: its salted UIN hash (the gallery holds no UIN).
    pub uin_hash: String,
    /// ISO finger position code.
    pub position: u8,
    /// The template (`tessera_biometrics::template::Template` bytes).
    pub template: Vec<u8>,
}

/// Everything the ID-repository stage writes for a new identity, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIdentity {
    /// The packet.
    pub rid: Rid,
    /// The UIN allocated to it.
    pub uin: String,
    /// Salted SHA-256 of the UIN (hex), the repository's lookup key.
    pub uin_hash: String,
    /// Master key id that wrapped `wrapped_key`.
    pub key_id: String,
    /// The record's data key, wrapped.
    pub wrapped_key: Vec<u8>,
    /// The identity record, encrypted with the data key.
    pub ciphertext: Vec<u8>,
    /// Demographic blocking key (hex digest; no personal data in clear).
    pub blocking_key: String,
    /// Finger templates for the gallery: (ISO position code, template bytes).
    pub templates: Vec<(u8, Vec<u8>)>,
    /// When (Unix seconds).
    pub at: i64,
}

/// An encrypted identity record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    /// The packet that created it.
    pub rid: Rid,
    /// Salted UIN hash.
    pub uin_hash: String,
    /// Master key id.
    pub key_id: String,
    /// Wrapped data key.
    pub wrapped_key: Vec<u8>,
    /// Encrypted record.
    pub ciphertext: Vec<u8>,
    /// When created.
    pub created_at: i64,
}

/// How to find an identity record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityLookup {
    /// By salted UIN hash.
    UinHash(String),
    /// By the RID of the packet that created it.
    Rid(Rid),
}

/// A notification to queue (idempotent per RID and kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// The packet concerned.
    pub rid: Rid,
    /// `UIN_ISSUED`, `REJECTED` or `DUPLICATE`.
    pub kind: String,
    /// The message, encrypted with the ID-repository envelope (it holds the contact address).
    pub payload: Vec<u8>,
    /// When.
    pub at: i64,
}

/// A queued notification claimed by a sender worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    /// Outbox id.
    pub id: i64,
    /// The packet.
    pub rid: Rid,
    /// Kind.
    pub kind: String,
    /// Encrypted payload.
    pub payload: Vec<u8>,
    /// Delivery attempts so far (including this one).
    pub attempts: i64,
}

/// One change of a sync item for [`Store::put_sync_items`].
#[derive(Debug, Clone, PartialEq)]
pub struct SyncChange {
    /// The kind.
    pub kind: SyncKind,
    /// `""` for every station, else a center id.
    pub scope: String,
    /// The item's key.
    pub key: String,
    /// The new body, or `None` to delete the item.
    pub body: Option<serde_json::Value>,
}

/// A current (not deleted) sync item with its scope, as the admin API lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopedSyncItem {
    /// `""` for every station, else a center id.
    pub scope: String,
    /// The item.
    pub item: SyncItem,
}

/// One change of a packet's status or reason, as the database recorded it (table `packet_events`, written
/// by a trigger on every change of `packets.status` or `packets.reason`, whoever makes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketEvent {
    /// The status it entered.
    pub status: PacketStatus,
    /// Its reason code then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When (Unix seconds).
    pub at: i64,
}

/// One entry of a center's, machine's or operator's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusPeriod {
    /// The status it entered.
    pub status: String,
    /// From when (Unix seconds; 0: before history was recorded).
    pub from: i64,
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

    /// The last chunk and the completion in one transaction: moves the upload from offset `from` to its full
    /// length, marks it complete and records the packet as `Received` with its signed receipt and its job
    /// (what [`Store::advance_upload`] then [`Store::complete_upload`] do, in one round trip). The caller has
    /// stored the whole packet and checked its digest. Idempotent: a completed upload returns the existing
    /// packet. `Conflict` when the upload is no longer at `from`; `NotFound` for an unknown upload.
    async fn finish_upload(
        &self,
        upload_id: &str,
        from: u64,
        receipt: &str,
        at: i64,
    ) -> Result<PacketRecord, StoreError>;

    /// A received packet.
    async fn packet(&self, rid: &Rid) -> Result<Option<PacketRecord>, StoreError>;

    /// Adds UINs to the free pool; returns how many were new. Entries whose hash is already free or already
    /// assigned to a RID are ignored (a UIN is never handed out twice). On PostgreSQL the fill waits for
    /// allocations in flight and holds new ones back until it commits, so it never re-adds a UIN that a
    /// concurrent transaction is assigning.
    async fn add_uins(&self, uins: Vec<PoolUin>) -> Result<u64, StoreError>;

    /// Allocates one free UIN to each RID in one transaction: free entries are taken from a random point of
    /// the hash order (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so concurrent allocators take disjoint
    /// entries) and recorded as assigned to the RID. A RID that already has a UIN gets the same one again
    /// (idempotent; also a RID given twice in one call). `PoolEmpty` (and nothing allocated) if the pool
    /// runs out. Returns the sealed entries; [`crate::uin::allocate`] opens them.
    async fn allocate_uins(&self, rids: Vec<Rid>, at: i64) -> Result<Vec<(Rid, PoolUin)>, StoreError>;

    /// Free UINs left.
    async fn uins_available(&self) -> Result<u64, StoreError>;

    /// Converts what a database written before schema version 4 or 6 holds in clear: the old `uin_pool` table
    /// (free UINs and RID → UIN assignments) becomes sealed entries of the free and assigned tables, and the
    /// tables migration 6 renamed `legacy_persons`, `legacy_gallery`, `legacy_credentials` and
    /// `legacy_adjudication_cases` become rows keyed by UIN hash with sealed UINs (credential bodies and
    /// case candidates sealed whole); the old tables are dropped. One transaction; does nothing when there
    /// is nothing to convert. Returns the rows converted.
    async fn protect_legacy_uins(
        &self,
        cipher: std::sync::Arc<crate::uin::UinCipher>,
    ) -> Result<u64, StoreError>;

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

    /// Registers an operator's sign-off key (idempotent for the same operator and key); returns whether it
    /// was new.
    async fn register_operator_key(&self, rec: OperatorKeyRecord) -> Result<bool, StoreError>;

    /// Keys registered for an operator.
    async fn operator_keys(&self, operator_id: &str) -> Result<Vec<OperatorKeyRecord>, StoreError>;

    /// The status (`status_history`) of a center, machine or operator (`kind`: [`status_kind`]) in force at
    /// `at`: the latest change at or before it; `None` when nothing is recorded that early (unknown).
    async fn status_at(&self, kind: &str, item: &str, at: i64) -> Result<Option<String>, StoreError>;

    /// The whole status history of a center, machine or operator, oldest first (`from`: Unix seconds; 0 for a
    /// status that held before history was recorded). Empty when nothing is recorded.
    async fn status_history(&self, kind: &str, item: &str) -> Result<Vec<StatusPeriod>, StoreError>;

    /// Adds a flag to a packet's history (`packet_events`: its current status, `flag` as the reason, e.g.
    /// `flag:clock_ahead`) without changing the packet. No personal data in `flag`.
    async fn add_packet_flag(&self, rid: &Rid, flag: &str, at: i64) -> Result<(), StoreError>;

    /// UINs of identities with this demographic blocking key (opened from their sealed form), in order.
    async fn persons_by_blocking_key(&self, key: &str) -> Result<Vec<String>, StoreError>;

    /// The UINs of identities by salted UIN hash (as the gallery knows them): `(hash, UIN)` for each hash
    /// that is an identity's, in the order given; unknown hashes are left out.
    async fn person_uins(&self, hashes: Vec<String>) -> Result<Vec<(String, String)>, StoreError>;

    /// Gallery templates inserted after `after_seq`, in order, at most `limit`.
    async fn gallery_since(&self, after_seq: i64, limit: u32) -> Result<Vec<GalleryRow>, StoreError>;

    /// Holds a packet for manual adjudication: records the case (once; a re-run keeps the first), marks the
    /// packet `OnHold` with `reason`, and parks the job until a decision.
    async fn hold_for_adjudication(
        &self,
        rid: &Rid,
        candidates: Vec<Candidate>,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Cases, optionally only those with `status`, oldest first.
    async fn adjudication_cases(&self, status: Option<String>) -> Result<Vec<AdjudicationCase>, StoreError>;

    /// The case of a packet.
    async fn adjudication_case(&self, rid: &Rid) -> Result<Option<AdjudicationCase>, StoreError>;

    /// Records a decision on a `PENDING` case (`status` is `DUPLICATE` or `NOT_DUPLICATE`) and puts the job
    /// back in the queue so the pipeline finishes the packet. `NotFound` for no case; `Conflict` when the case
    /// is already decided.
    async fn decide_adjudication(
        &self,
        rid: &Rid,
        status: &str,
        duplicate_of: Option<String>,
        decided_by: &str,
        now: i64,
    ) -> Result<AdjudicationCase, StoreError>;

    /// Writes the encrypted identity, its blocking key and its gallery templates in one transaction.
    /// Idempotent: rows that exist are kept.
    async fn store_identity(&self, new: NewIdentity) -> Result<(), StoreError>;

    /// Replaces an existing identity (UPDATE packets), found by `upd.uin_hash`, in one transaction: the
    /// encrypted record and its wrapped key, the blocking key, and, when `upd.templates` is not empty, all
    /// of the person's gallery rows (written again with new sequence numbers so that loaders pick up the
    /// whole person). `upd.rid` is ignored (the record keeps the RID that created it). Returns false when no
    /// identity has that UIN hash. Idempotent: applying the same update again gives the same record.
    async fn update_identity(&self, upd: NewIdentity) -> Result<bool, StoreError>;

    /// Stores the signed credential of a packet (sealed: it holds the UIN) and finishes its job as
    /// `Processed`, in one transaction. Idempotent: an existing credential is kept.
    async fn store_credential(
        &self,
        rid: &Rid,
        uin: &str,
        credential: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// An encrypted identity record.
    async fn identity(&self, lookup: IdentityLookup) -> Result<Option<IdentityRecord>, StoreError>;

    /// The stored credential of a packet: (UIN, credential JSON). Both are stored sealed (the UIN bound to its
    /// hash, the body bound to the RID) and opened here.
    async fn credential(&self, rid: &Rid) -> Result<Option<(String, String)>, StoreError>;

    /// Queues a notification (idempotent per RID and kind).
    async fn enqueue_notification(&self, n: NewNotification) -> Result<(), StoreError>;

    /// Claims the oldest unsent notification whose lease has expired.
    async fn claim_notification(
        &self,
        worker: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<Option<NotificationRecord>, StoreError>;

    /// Marks a notification sent.
    async fn notification_sent(&self, id: i64, now: i64) -> Result<(), StoreError>;

    /// Identity keys wrapped with a master key other than `current_key_id`, at most `limit`:
    /// (uin hash, key id, wrapped key). For key rotation.
    async fn identity_keys_to_rewrap(
        &self,
        current_key_id: &str,
        limit: u32,
    ) -> Result<Vec<(String, String, Vec<u8>)>, StoreError>;

    /// Replaces a record's wrapped key if it is still wrapped with `old_key_id`; returns whether it changed.
    async fn rewrap_identity_key(
        &self,
        uin_hash: &str,
        old_key_id: &str,
        new_key_id: &str,
        wrapped_key: Vec<u8>,
    ) -> Result<bool, StoreError>;
    /// Applies several sync-item changes in one transaction (all or nothing), each as
    /// [`Store::put_sync_item`] would; returns each change's new version, or `None` when it changed nothing.
    async fn put_sync_items(&self, changes: Vec<SyncChange>) -> Result<Vec<Option<i64>>, StoreError>;

    /// The current (not deleted) items of `kind` in every scope, by scope and key.
    async fn current_sync_items(&self, kind: SyncKind) -> Result<Vec<ScopedSyncItem>, StoreError>;

    /// Received packets, optionally only those with `status`, least recently changed first, at most `limit`.
    async fn packets_by_status(
        &self,
        status: Option<PacketStatus>,
        limit: u32,
    ) -> Result<Vec<PacketRecord>, StoreError>;

    /// Every status change of a packet, oldest first (empty for an unknown RID).
    async fn packet_history(&self, rid: &Rid) -> Result<Vec<PacketEvent>, StoreError>;

    /// Puts a packet whose status is `from` back in the processing queue (status `Received`, reason
    /// cleared, job ready now), in one transaction; `false` (and nothing changed) when its status is not
    /// `from`. `NotFound` for an unknown RID.
    async fn requeue_packet(&self, rid: &Rid, from: PacketStatus, now: i64) -> Result<bool, StoreError>;

    /// After a failed delivery: leaves an unsent notification for no worker to claim before `at` (the
    /// sender's back-off). No effect on a sent one.
    async fn notification_retry_at(&self, id: i64, at: i64) -> Result<(), StoreError>;
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

pub(crate) fn parse_candidates(text: &str) -> Result<Vec<Candidate>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: "adjudication candidates",
        detail: e.to_string(),
    })
}

/// Kinds of `status_history` items.
pub mod status_kind {
    /// A registration center (master data `centers`, its `active` flag). Statuses `ACTIVE`, `INACTIVE`.
    pub const CENTER: &str = "center";
    /// A machine (`PENDING`, `ACTIVE`, `SUSPENDED`), recorded by a trigger on `machines`.
    pub const MACHINE: &str = "machine";
    /// An operator (sync kind `operators`, its `active` flag; revoked = `INACTIVE`). Statuses `ACTIVE`,
    /// `INACTIVE`.
    pub const OPERATOR: &str = "operator";
    /// Active.
    pub const ACTIVE: &str = "ACTIVE";
    /// Not active (deactivated, revoked, removed from the master data).
    pub const INACTIVE: &str = "INACTIVE";
}

/// A status change implied by a sync-item change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusChange {
    pub kind: &'static str,
    pub item: String,
    /// The status before, when the item existed.
    pub old: Option<&'static str>,
    pub new: &'static str,
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn active_flag(v: &serde_json::Value) -> &'static str {
    if v.get("active").and_then(serde_json::Value::as_bool) == Some(false) {
        status_kind::INACTIVE
    } else {
        status_kind::ACTIVE
    }
}

fn center_statuses(body: Option<&str>) -> std::collections::BTreeMap<String, &'static str> {
    let Some(v) = body.and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok()) else {
        return Default::default();
    };
    v.get("centers")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| Some((c.get("id")?.as_str()?.to_owned(), active_flag(c))))
                .collect()
        })
        .unwrap_or_default()
}

/// The center and operator status changes a sync-item change makes (old and new bodies as stored JSON text;
/// `None` for absent or deleted): an operator item's `active` flag (deleted = revoked = inactive), the
/// `active` flag of each center in the master-data item `centers` (a center dropped from it is inactive).
pub(crate) fn sync_status_changes(
    kind: SyncKind,
    key: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> Vec<StatusChange> {
    let parse = |b: Option<&str>| b.and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok());
    match kind {
        SyncKind::Operators => {
            let before = parse(old).map(|v| active_flag(&v));
            let after = parse(new).map_or(status_kind::INACTIVE, |v| active_flag(&v));
            if before == Some(after) {
                return Vec::new();
            }
            vec![StatusChange {
                kind: status_kind::OPERATOR,
                item: key.to_owned(),
                old: before,
                new: after,
            }]
        }
        SyncKind::MasterData if key == "centers" => {
            let (before, after) = (center_statuses(old), center_statuses(new));
            let mut ids: Vec<&String> = before.keys().chain(after.keys()).collect();
            ids.sort();
            ids.dedup();
            ids.into_iter()
                .filter_map(|id| {
                    let b = before.get(id).copied();
                    let a = after.get(id).copied().unwrap_or(status_kind::INACTIVE);
                    (b != Some(a)).then(|| StatusChange {
                        kind: status_kind::CENTER,
                        item: id.clone(),
                        old: b,
                        new: a,
                    })
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The UIN cipher a store was given, or `NoUinCipher`.
pub(crate) fn need_cipher(
    c: &Option<std::sync::Arc<crate::uin::UinCipher>>,
    what: &'static str,
) -> Result<std::sync::Arc<crate::uin::UinCipher>, StoreError> {
    c.clone().ok_or(StoreError::NoUinCipher(what))
}

/// An adjudication case's candidates (they hold UINs) sealed for the database, bound to the RID.
pub(crate) fn seal_candidates(
    c: &crate::uin::UinCipher,
    rid: &str,
    candidates: &[Candidate],
) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(candidates).map_err(|e| StoreError::Corrupt {
        what: "adjudication candidates",
        detail: e.to_string(),
    })?;
    c.seal_data(&format!("candidates\n{rid}"), &json)
}

/// Opens what [`seal_candidates`] sealed.
pub(crate) fn open_candidates(
    c: &crate::uin::UinCipher,
    rid: &str,
    sealed: &[u8],
) -> Result<Vec<Candidate>, StoreError> {
    let json = c.open_data("adjudication candidates", &format!("candidates\n{rid}"), sealed)?;
    let text = String::from_utf8(json).map_err(|_| StoreError::Corrupt {
        what: "adjudication candidates",
        detail: "not text".into(),
    })?;
    parse_candidates(&text)
}

/// A credential body (it holds the UIN) sealed for the database, bound to the RID.
pub(crate) fn seal_credential(
    c: &crate::uin::UinCipher,
    rid: &str,
    body: &str,
) -> Result<Vec<u8>, StoreError> {
    c.seal_data(&format!("credential\n{rid}"), body.as_bytes())
}

/// Opens what [`seal_credential`] sealed.
pub(crate) fn open_credential(
    c: &crate::uin::UinCipher,
    rid: &str,
    sealed: &[u8],
) -> Result<String, StoreError> {
    let body = c.open_data("credential", &format!("credential\n{rid}"), sealed)?;
    String::from_utf8(body).map_err(|_| StoreError::Corrupt {
        what: "credential",
        detail: "not text".into(),
    })
}

/// Opens an optional sealed UIN stored as (hash, sealed) columns.
pub(crate) fn open_opt_uin(
    c: &crate::uin::UinCipher,
    hash: Option<String>,
    sealed: Option<Vec<u8>>,
) -> Result<Option<String>, StoreError> {
    match (hash, sealed) {
        (Some(uin_hash), Some(sealed)) => c.open(&PoolUin { uin_hash, sealed }).map(Some),
        _ => Ok(None),
    }
}
