//! The embedded store: one SQLCipher-encrypted SQLite file, one connection behind a mutex, every call on
//! tokio's blocking pool. SQLite has a single writer anyway; WAL mode lets the CLI read while the server runs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};
use tessera_packet::ids::{MachineId, Rid};
use tessera_packet::wire::{MachineStatus, PacketStatus, SyncItem, SyncKind};
use zeroize::Zeroizing;

use crate::uin::UinCipher;

use super::{
    AdjudicationCase, Candidate, FIRST_MACHINE_ID, GalleryRow, IdentityLookup, IdentityRecord, MachineRecord,
    NewIdentity, NewMachine, NewNotification, NewUpload, NotificationRecord, OperatorKeyRecord, PacketEvent,
    PacketRecord, PoolUin, ScopedSyncItem, Store, StoreError, SyncChange, UploadRecord, case_status,
    key_bytes, need_cipher, open_candidates, open_credential, open_opt_uin, parse_body, parse_candidates,
    parse_id, parse_machine_status, parse_packet_status, seal_candidates, seal_credential, to_i64, to_u64,
};

/// Versioned migrations: (version, SQL). Append only; never edit a shipped entry.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE machines (
    machine_id TEXT PRIMARY KEY,
    center_id TEXT NOT NULL,
    name TEXT NOT NULL,
    public_key BLOB NOT NULL UNIQUE,
    status TEXT NOT NULL,
    status_reason TEXT,
    requested_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE request_nonces (
    machine_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (machine_id, nonce)
);
CREATE INDEX request_nonces_expiry ON request_nonces (expires_at);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters (name, value) VALUES ('sync_version', 0);
CREATE TABLE sync_items (
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    body TEXT,
    PRIMARY KEY (kind, scope, key)
);
CREATE INDEX sync_items_cursor ON sync_items (kind, scope, version);
CREATE TABLE uploads (
    upload_id TEXT PRIMARY KEY,
    machine_id TEXT NOT NULL,
    rid TEXT NOT NULL UNIQUE,
    length INTEGER NOT NULL,
    received INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    completed_at INTEGER
);
CREATE INDEX uploads_machine_created ON uploads (machine_id, created_at);
CREATE TABLE packets (
    rid TEXT PRIMARY KEY,
    machine_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    receipt TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE uin_pool (
    uin TEXT PRIMARY KEY,
    pick INTEGER NOT NULL,
    rid TEXT UNIQUE,
    allocated_at INTEGER
);
CREATE INDEX uin_pool_free ON uin_pool (pick) WHERE rid IS NULL;
"#,
    ),
    (
        2,
        r#"
CREATE TABLE jobs (
    rid TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    locked_by TEXT,
    locked_until INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, locked_until, updated_at);
"#,
    ),
    (
        3,
        r#"
CREATE TABLE operator_keys (
    operator_id TEXT NOT NULL,
    public_key BLOB NOT NULL,
    machine_id TEXT NOT NULL,
    center_id TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    PRIMARY KEY (operator_id, public_key)
);
CREATE TABLE persons (
    uin TEXT PRIMARY KEY,
    blocking_key TEXT NOT NULL,
    rid TEXT NOT NULL UNIQUE
);
CREATE INDEX persons_blocking ON persons (blocking_key);
CREATE TABLE gallery (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uin TEXT NOT NULL,
    position INTEGER NOT NULL,
    template BLOB NOT NULL,
    UNIQUE (uin, position)
);
CREATE TABLE adjudication_cases (
    rid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    candidates TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT,
    duplicate_of TEXT
);
CREATE INDEX adjudication_status ON adjudication_cases (status, created_at);
CREATE TABLE identities (
    uin_hash TEXT PRIMARY KEY,
    rid TEXT NOT NULL UNIQUE,
    key_id TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX identities_key ON identities (key_id);
CREATE TABLE credentials (
    rid TEXT PRIMARY KEY,
    uin TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rid TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER NOT NULL DEFAULT 0,
    sent_at INTEGER,
    UNIQUE (rid, kind)
);
CREATE INDEX outbox_pending ON outbox (sent_at, locked_until, id);
"#,
    ),
    (
        4,
        // The UIN pool without UINs in clear (see crate::uin): free entries keyed by the salted hash (their
        // pick order), assigned entries keyed by RID with the hash unique. The old uin_pool table is converted
        // and dropped by `protect_legacy_uins` (it needs the salt, which the database does not have).
        r#"
CREATE TABLE uin_free (
    uin_hash TEXT PRIMARY KEY,
    sealed BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE uin_assigned (
    rid TEXT PRIMARY KEY,
    uin_hash TEXT NOT NULL UNIQUE,
    sealed BLOB NOT NULL,
    assigned_at INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    ),
    (
        5,
        // Status history of every packet, written by triggers so that no code path can change a status
        // without leaving a trace. Existing packets get one event with their current status.
        r#"
CREATE TABLE packet_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rid TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX packet_events_rid ON packet_events (rid, id);
INSERT INTO packet_events (rid, status, reason, at) SELECT rid, status, reason, updated_at FROM packets;
CREATE TRIGGER packet_events_insert AFTER INSERT ON packets BEGIN
    INSERT INTO packet_events (rid, status, reason, at) VALUES (NEW.rid, NEW.status, NEW.reason, NEW.updated_at);
END;
CREATE TRIGGER packet_events_update AFTER UPDATE OF status, reason ON packets
WHEN NEW.status IS NOT OLD.status OR NEW.reason IS NOT OLD.reason BEGIN
    INSERT INTO packet_events (rid, status, reason, at) VALUES (NEW.rid, NEW.status, NEW.reason, NEW.updated_at);
END;
CREATE INDEX packets_status ON packets (status, updated_at);
"#,
    ),
    (
        6,
        // No UIN in clear outside the ID repository: persons, gallery, credentials and adjudication cases are
        // keyed by the salted UIN hash, and what must give the UIN back holds it sealed (crate::uin::UinCipher).
        // The old tables are renamed `legacy_*` and converted then dropped by `protect_legacy_uins` (sealing
        // needs the salt, which the database does not have).
        r#"
DROP INDEX persons_blocking;
DROP INDEX adjudication_status;
ALTER TABLE persons RENAME TO legacy_persons;
ALTER TABLE gallery RENAME TO legacy_gallery;
ALTER TABLE credentials RENAME TO legacy_credentials;
ALTER TABLE adjudication_cases RENAME TO legacy_adjudication_cases;
CREATE TABLE persons (
    uin_hash TEXT PRIMARY KEY,
    sealed BLOB NOT NULL,
    blocking_key TEXT NOT NULL,
    rid TEXT NOT NULL UNIQUE
);
CREATE INDEX persons_blocking ON persons (blocking_key);
CREATE TABLE gallery (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uin_hash TEXT NOT NULL,
    position INTEGER NOT NULL,
    template BLOB NOT NULL,
    UNIQUE (uin_hash, position)
);
CREATE TABLE credentials (
    rid TEXT PRIMARY KEY,
    uin_hash TEXT NOT NULL,
    sealed_uin BLOB NOT NULL,
    body BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE adjudication_cases (
    rid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    candidates BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT,
    duplicate_of_hash TEXT,
    duplicate_of BLOB
);
CREATE INDEX adjudication_status ON adjudication_cases (status, created_at);
"#,
    ),
    (
        7,
        // Status history of centers, machines and operators (`kind`, `item`, `status` from `from_time`), for
        // the validation of a packet at its creation time. Machines by trigger (every status change, whoever
        // makes it); centers and operators by the store when their sync items change (`put_item_tx`).
        // Existing machines: pending since their request, their current status since their last change.
        r#"
CREATE TABLE status_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    item TEXT NOT NULL,
    status TEXT NOT NULL,
    from_time INTEGER NOT NULL
);
CREATE INDEX status_history_item ON status_history (kind, item, from_time, id);
INSERT INTO status_history (kind, item, status, from_time)
    SELECT 'machine', machine_id, 'PENDING', requested_at FROM machines;
INSERT INTO status_history (kind, item, status, from_time)
    SELECT 'machine', machine_id, status, updated_at FROM machines WHERE status <> 'PENDING';
CREATE TRIGGER machine_status_insert AFTER INSERT ON machines BEGIN
    INSERT INTO status_history (kind, item, status, from_time)
    VALUES ('machine', NEW.machine_id, NEW.status, NEW.requested_at);
END;
CREATE TRIGGER machine_status_update AFTER UPDATE OF status ON machines
WHEN NEW.status IS NOT OLD.status BEGIN
    INSERT INTO status_history (kind, item, status, from_time)
    VALUES ('machine', NEW.machine_id, NEW.status, NEW.updated_at);
END;
"#,
    ),
];

/// The embedded SQLite (SQLCipher) store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    uins: Option<Arc<UinCipher>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn sq(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { op, source }
}

impl SqliteStore {
    /// Opens (creating if missing) the encrypted database at `path` with the 256-bit `key`, and migrates it.
    pub fn open(path: &Path, key: &[u8; 32]) -> Result<Self, StoreError> {
        Self::open_at_version(path, key, i64::MAX)
    }

    /// [`SqliteStore::open`] applying migrations only up to `version`: for tests of the conversion of
    /// databases written by older servers.
    #[doc(hidden)]
    pub fn open_at_version(path: &Path, key: &[u8; 32], version: i64) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(sq("open"))?;
        let pragma = Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", hex::encode(key)));
        conn.execute_batch(&pragma).map_err(sq("set key"))?;
        if conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .is_err()
        {
            return Err(StoreError::WrongKey {
                path: path.display().to_string(),
            });
        }
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 10000; PRAGMA cache_size = -65536;",
        )
        .map_err(sq("configure"))?;
        migrate(&mut conn, version)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
            uins: None,
        })
    }

    /// Gives the store the data directory's UIN cipher, with which it seals the UINs (and the data holding
    /// them) it stores and opens them when read. Without it, those operations fail with `NoUinCipher`.
    #[must_use]
    pub fn with_uin_cipher(mut self, cipher: Arc<UinCipher>) -> Self {
        self.uins = Some(cipher);
        self
    }

    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Task("database mutex poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    async fn tx<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sq(op))?;
            let out = f(&tx)?;
            tx.commit().map_err(sq(op))?;
            Ok(out)
        })
        .await
    }
}

fn migrate(conn: &mut Connection, up_to: i64) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sq("migrate"))?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        .map_err(sq("migrate"))?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(sq("migrate"))?;
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current && *v <= up_to) {
        tx.execute_batch(sql).map_err(sq("migrate"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, strftime('%s','now'))",
            params![version],
        )
        .map_err(sq("migrate"))?;
    }
    tx.commit().map_err(sq("migrate"))
}

const MACHINE_COLS: &str =
    "machine_id, center_id, name, public_key, status, status_reason, requested_at, updated_at";

fn machine_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MachineRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

type MachineRow = (String, String, String, Vec<u8>, String, Option<String>, i64, i64);

fn machine_from(row: MachineRow) -> Result<MachineRecord, StoreError> {
    let (id, center, name, key, status, reason, requested_at, updated_at) = row;
    Ok(MachineRecord {
        machine_id: parse_id("machine id", &id)?,
        center_id: parse_id("center id", &center)?,
        name,
        public_key: key_bytes(key)?,
        status: parse_machine_status(&status)?,
        status_reason: reason,
        requested_at,
        updated_at,
    })
}

fn machine_by(
    tx: &Connection,
    clause: &str,
    arg: &dyn rusqlite::ToSql,
) -> Result<Option<MachineRecord>, StoreError> {
    let sql = format!("SELECT {MACHINE_COLS} FROM machines WHERE {clause}");
    tx.query_row(&sql, [arg], machine_row)
        .optional()
        .map_err(sq("read machine"))?
        .map(machine_from)
        .transpose()
}

const UPLOAD_COLS: &str = "upload_id, machine_id, rid, length, received, sha256, created_at, completed_at";

fn upload_by(c: &Connection, clause: &str, arg: &str) -> Result<Option<UploadRecord>, StoreError> {
    let sql = format!("SELECT {UPLOAD_COLS} FROM uploads WHERE {clause}");
    let row = c
        .query_row(&sql, [arg], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, Option<i64>>(7)?,
            ))
        })
        .optional()
        .map_err(sq("read upload"))?;
    row.map(
        |(upload_id, m, rid, length, received, sha256, created_at, completed_at)| {
            Ok(UploadRecord {
                upload_id,
                machine_id: parse_id("machine id", &m)?,
                rid: parse_id("rid", &rid)?,
                length: to_u64("upload length", length)?,
                received: to_u64("upload offset", received)?,
                sha256,
                created_at,
                completed_at,
            })
        },
    )
    .transpose()
}

const PACKET_COLS: &str = "rid, machine_id, sha256, size, status, reason, receipt, received_at, updated_at";

type PacketRow = (
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    String,
    i64,
    i64,
);

fn packet_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PacketRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn packet_from(row: PacketRow) -> Result<PacketRecord, StoreError> {
    let (rid, m, sha256, size, status, reason, receipt, received_at, updated_at) = row;
    Ok(PacketRecord {
        rid: parse_id("rid", &rid)?,
        machine_id: parse_id("machine id", &m)?,
        sha256,
        size: to_u64("packet size", size)?,
        status: parse_packet_status(&status)?,
        reason,
        receipt,
        received_at,
        updated_at,
    })
}

fn packet_by_rid(c: &Connection, rid: &str) -> Result<Option<PacketRecord>, StoreError> {
    c.query_row(
        &format!("SELECT {PACKET_COLS} FROM packets WHERE rid = ?1"),
        [rid],
        packet_row,
    )
    .optional()
    .map_err(sq("read packet"))?
    .map(packet_from)
    .transpose()
}

/// Applies one sync-item change inside a transaction; see [`Store::put_sync_item`].
fn put_item_tx(
    tx: &Transaction<'_>,
    kind: SyncKind,
    scope: &str,
    key: &str,
    body: Option<serde_json::Value>,
) -> Result<Option<i64>, StoreError> {
    let text = body.map(|b| b.to_string());
    let existing: Option<(bool, Option<String>)> = tx
        .query_row(
            "SELECT deleted, body FROM sync_items WHERE kind = ?1 AND scope = ?2 AND key = ?3",
            params![kind.as_str(), scope, key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sq("put sync item"))?;
    match (&existing, &text) {
        (None, None) => return Ok(None),
        (Some((true, _)), None) => return Ok(None),
        (Some((false, old)), Some(new)) if old.as_deref() == Some(new.as_str()) => return Ok(None),
        _ => {}
    }
    let version: i64 = tx
        .query_row(
            "UPDATE counters SET value = value + 1 WHERE name = 'sync_version' RETURNING value",
            [],
            |r| r.get(0),
        )
        .map_err(sq("put sync item"))?;
    tx.execute(
        "INSERT INTO sync_items (kind, scope, key, version, deleted, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (kind, scope, key) DO UPDATE SET version = excluded.version,
           deleted = excluded.deleted, body = excluded.body",
        params![kind.as_str(), scope, key, version, text.is_none(), text],
    )
    .map_err(sq("put sync item"))?;
    let old = existing.and_then(|(deleted, body)| body.filter(|_| !deleted));
    for change in super::sync_status_changes(kind, key, old.as_deref(), text.as_deref()) {
        record_status(tx, &change, super::now_secs())?;
    }
    Ok(Some(version))
}

/// Records a status change in `status_history` unless the item already has that status; an item with no
/// history first gets its previous status since forever (time 0).
fn record_status(tx: &Transaction<'_>, c: &super::StatusChange, at: i64) -> Result<(), StoreError> {
    let op = "record status history";
    let latest: Option<String> = tx
        .query_row(
            "SELECT status FROM status_history WHERE kind = ?1 AND item = ?2 ORDER BY from_time DESC, id DESC LIMIT 1",
            params![c.kind, c.item],
            |r| r.get(0),
        )
        .optional()
        .map_err(sq(op))?;
    if latest.as_deref() == Some(c.new) {
        return Ok(());
    }
    let mut insert = tx
        .prepare_cached("INSERT INTO status_history (kind, item, status, from_time) VALUES (?1, ?2, ?3, ?4)")
        .map_err(sq(op))?;
    if latest.is_none()
        && let Some(old) = c.old
    {
        insert.execute(params![c.kind, c.item, old, 0]).map_err(sq(op))?;
    }
    insert
        .execute(params![c.kind, c.item, c.new, at])
        .map_err(sq(op))?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(sq("ping")))
            .await
    }

    async fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )
            .map_err(sq("schema version"))
        })
        .await
    }

    async fn enrol_machine(&self, new: NewMachine) -> Result<(MachineRecord, bool), StoreError> {
        self.tx("enrol machine", move |tx| {
            if let Some(existing) = machine_by(tx, "public_key = ?1", &new.public_key.to_vec())? {
                return Ok((existing, false));
            }
            let next: i64 = tx
                .query_row("SELECT COALESCE(MAX(CAST(machine_id AS INTEGER)) + 1, ?1) FROM machines", [FIRST_MACHINE_ID], |r| {
                    r.get(0)
                })
                .map_err(sq("enrol machine"))?;
            let id = MachineId::from_number(u32::try_from(next).unwrap_or(u32::MAX))
                .map_err(|_| StoreError::Conflict { what: "machine ids", detail: "all 99999 machine ids are used".into() })?;
            tx.execute(
                "INSERT INTO machines (machine_id, center_id, name, public_key, status, status_reason, requested_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?6)",
                params![id.as_str(), new.center_id.as_str(), new.name, new.public_key.to_vec(), MachineStatus::Pending.as_str(), new.at],
            )
            .map_err(sq("enrol machine"))?;
            machine_by(tx, "machine_id = ?1", &id.as_str())?
                .map(|m| (m, true))
                .ok_or_else(|| StoreError::NotFound { what: "machine", id: id.to_string() })
        })
        .await
    }

    async fn machine(&self, id: &MachineId) -> Result<Option<MachineRecord>, StoreError> {
        let id = id.as_str().to_owned();
        self.with(move |c| machine_by(c, "machine_id = ?1", &id)).await
    }

    async fn list_machines(&self, status: Option<MachineStatus>) -> Result<Vec<MachineRecord>, StoreError> {
        self.with(move |c| {
            let sql = format!(
                "SELECT {MACHINE_COLS} FROM machines WHERE (?1 IS NULL OR status = ?1) ORDER BY machine_id"
            );
            let mut stmt = c.prepare(&sql).map_err(sq("list machines"))?;
            let rows = stmt
                .query_map([status.map(|s| s.as_str())], machine_row)
                .map_err(sq("list machines"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sq("list machines"))?;
            rows.into_iter().map(machine_from).collect()
        })
        .await
    }

    async fn set_machine_status(
        &self,
        id: &MachineId,
        status: MachineStatus,
        reason: Option<String>,
        at: i64,
    ) -> Result<MachineRecord, StoreError> {
        let id = id.as_str().to_owned();
        self.tx("set machine status", move |tx| {
            let n = tx
                .execute(
                    "UPDATE machines SET status = ?2, status_reason = ?3, updated_at = ?4 WHERE machine_id = ?1",
                    params![id, status.as_str(), reason, at],
                )
                .map_err(sq("set machine status"))?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "machine", id });
            }
            machine_by(tx, "machine_id = ?1", &id)?.ok_or(StoreError::NotFound { what: "machine", id })
        })
        .await
    }

    async fn use_nonce(
        &self,
        machine: &MachineId,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (m, n) = (machine.as_str().to_owned(), nonce.to_owned());
        self.tx("record nonce", move |tx| {
            tx.execute("DELETE FROM request_nonces WHERE expires_at < ?1", [now])
                .map_err(sq("purge nonces"))?;
            let inserted = tx
                .execute(
                    "INSERT INTO request_nonces (machine_id, nonce, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    params![m, n, expires_at],
                )
                .map_err(sq("record nonce"))?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn put_sync_item(
        &self,
        kind: SyncKind,
        scope: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Option<i64>, StoreError> {
        let (scope, key) = (scope.to_owned(), key.to_owned());
        self.tx("put sync item", move |tx| {
            put_item_tx(tx, kind, &scope, &key, body)
        })
        .await
    }

    async fn sync_items(
        &self,
        kind: SyncKind,
        scope: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<SyncItem>, StoreError> {
        let scope = scope.to_owned();
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT key, version, deleted, body FROM sync_items
                     WHERE kind = ?1 AND scope = ?2 AND version > ?3 ORDER BY version LIMIT ?4",
                )
                .map_err(sq("sync items"))?;
            let rows = stmt
                .query_map(params![kind.as_str(), scope, after, limit], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .map_err(sq("sync items"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sq("sync items"))?;
            rows.into_iter()
                .map(|(key, version, deleted, body)| {
                    Ok(SyncItem {
                        key,
                        version,
                        deleted,
                        body: parse_body(deleted, body)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn create_upload(&self, new: NewUpload) -> Result<UploadRecord, StoreError> {
        self.tx("create upload", move |tx| {
            if let Some(existing) = upload_by(tx, "rid = ?1", new.rid.as_str())? {
                if existing.machine_id == new.machine_id
                    && existing.length == new.length
                    && existing.sha256 == new.sha256
                {
                    return Ok(existing);
                }
                return Err(StoreError::Conflict {
                    what: "upload",
                    detail: format!("RID {} is already being uploaded with different content or by another machine", new.rid),
                });
            }
            tx.execute(
                "INSERT INTO uploads (upload_id, machine_id, rid, length, received, sha256, created_at, completed_at)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, NULL)",
                params![new.upload_id, new.machine_id.as_str(), new.rid.as_str(), to_i64("length", new.length)?, new.sha256, new.at],
            )
            .map_err(sq("create upload"))?;
            upload_by(tx, "upload_id = ?1", &new.upload_id)?
                .ok_or(StoreError::NotFound { what: "upload", id: new.upload_id })
        })
        .await
    }

    async fn upload(&self, upload_id: &str) -> Result<Option<UploadRecord>, StoreError> {
        let id = upload_id.to_owned();
        self.with(move |c| upload_by(c, "upload_id = ?1", &id)).await
    }

    async fn advance_upload(&self, upload_id: &str, from: u64, to: u64) -> Result<bool, StoreError> {
        let id = upload_id.to_owned();
        self.tx("advance upload", move |tx| {
            let n = tx
                .execute(
                    "UPDATE uploads SET received = ?3 WHERE upload_id = ?1 AND received = ?2 AND completed_at IS NULL",
                    params![id, to_i64("offset", from)?, to_i64("offset", to)?],
                )
                .map_err(sq("advance upload"))?;
            Ok(n == 1)
        })
        .await
    }

    async fn uploads_since(&self, machine: &MachineId, since: i64) -> Result<u64, StoreError> {
        let m = machine.as_str().to_owned();
        self.with(move |c| {
            let n: i64 = c
                .query_row(
                    "SELECT count(*) FROM uploads WHERE machine_id = ?1 AND created_at >= ?2",
                    params![m, since],
                    |r| r.get(0),
                )
                .map_err(sq("count uploads"))?;
            to_u64("count", n)
        })
        .await
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        receipt: &str,
        at: i64,
    ) -> Result<PacketRecord, StoreError> {
        self.complete(upload_id, None, receipt, at).await
    }

    async fn finish_upload(
        &self,
        upload_id: &str,
        from: u64,
        receipt: &str,
        at: i64,
    ) -> Result<PacketRecord, StoreError> {
        self.complete(upload_id, Some(from), receipt, at).await
    }

    async fn packet(&self, rid: &Rid) -> Result<Option<PacketRecord>, StoreError> {
        let rid = rid.as_str().to_owned();
        self.with(move |c| packet_by_rid(c, &rid)).await
    }

    async fn add_uins(&self, uins: Vec<PoolUin>) -> Result<u64, StoreError> {
        self.tx("add uins", move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO uin_free (uin_hash, sealed) SELECT ?1, ?2
                     WHERE NOT EXISTS (SELECT 1 FROM uin_assigned WHERE uin_hash = ?1) ON CONFLICT DO NOTHING",
                )
                .map_err(sq("add uins"))?;
            let mut n = 0u64;
            for u in &uins {
                n += stmt.execute(params![u.uin_hash, u.sealed]).map_err(sq("add uins"))? as u64;
            }
            Ok(n)
        })
        .await
    }

    async fn allocate_uins(&self, rids: Vec<Rid>, at: i64) -> Result<Vec<(Rid, PoolUin)>, StoreError> {
        let start = random_start()?;
        self.tx("allocate uins", move |tx| {
            let mut given: HashMap<String, PoolUin> = HashMap::with_capacity(rids.len());
            let mut missing: Vec<&str> = Vec::new();
            let mut seen: HashSet<&str> = HashSet::with_capacity(rids.len());
            {
                let mut existing = tx
                    .prepare_cached("SELECT uin_hash, sealed FROM uin_assigned WHERE rid = ?1")
                    .map_err(sq("allocate uins"))?;
                for rid in &rids {
                    if !seen.insert(rid.as_str()) {
                        continue;
                    }
                    let row = existing
                        .query_row([rid.as_str()], |r| {
                            Ok(PoolUin {
                                uin_hash: r.get(0)?,
                                sealed: r.get(1)?,
                            })
                        })
                        .optional()
                        .map_err(sq("allocate uins"))?;
                    match row {
                        Some(u) => {
                            given.insert(rid.as_str().to_owned(), u);
                        }
                        None => missing.push(rid.as_str()),
                    }
                }
            }
            if !missing.is_empty() {
                let mut fresh = take_free(tx, ">=", &start, missing.len())?;
                if fresh.len() < missing.len() {
                    let more = take_free(tx, "<", &start, missing.len() - fresh.len())?;
                    fresh.extend(more);
                }
                if fresh.len() < missing.len() {
                    return Err(StoreError::PoolEmpty);
                }
                let mut assign = tx
                    .prepare_cached(
                        "INSERT INTO uin_assigned (rid, uin_hash, sealed, assigned_at) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(sq("allocate uins"))?;
                for (rid, u) in missing.iter().zip(fresh) {
                    assign
                        .execute(params![rid, u.uin_hash, u.sealed, at])
                        .map_err(sq("allocate uins"))?;
                    given.insert((*rid).to_owned(), u);
                }
            }
            rids.into_iter()
                .map(|rid| {
                    let u = given.get(rid.as_str()).cloned().ok_or(StoreError::PoolEmpty)?;
                    Ok((rid, u))
                })
                .collect()
        })
        .await
    }

    async fn uins_available(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c
                .query_row("SELECT count(*) FROM uin_free", [], |r| r.get(0))
                .map_err(sq("count uins"))?;
            to_u64("count", n)
        })
        .await
    }

    async fn protect_legacy_uins(&self, cipher: Arc<UinCipher>) -> Result<u64, StoreError> {
        self.tx("convert the legacy UIN pool", move |tx| {
            let op = "convert the legacy UIN pool";
            let legacy: i64 = tx
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'uin_pool'",
                    [],
                    |r| r.get(0),
                )
                .map_err(sq(op))?;
            let converted = convert_legacy_tables(tx, &cipher)?;
            if legacy == 0 {
                return Ok(converted);
            }
            let rows: Vec<(String, Option<String>, Option<i64>)> = {
                let mut stmt = tx
                    .prepare("SELECT uin, rid, allocated_at FROM uin_pool ORDER BY rid IS NULL")
                    .map_err(sq(op))?;
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(sq(op))?
                    .collect::<Result<_, _>>()
                    .map_err(sq(op))?
            };
            let mut assign = tx
                .prepare(
                    "INSERT INTO uin_assigned (rid, uin_hash, sealed, assigned_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT DO NOTHING",
                )
                .map_err(sq(op))?;
            let mut free = tx
                .prepare(
                    "INSERT INTO uin_free (uin_hash, sealed) SELECT ?1, ?2
                     WHERE NOT EXISTS (SELECT 1 FROM uin_assigned WHERE uin_hash = ?1) ON CONFLICT DO NOTHING",
                )
                .map_err(sq(op))?;
            for (uin, rid, at) in &rows {
                let u = cipher.seal(uin).map_err(|e| StoreError::Task(e.to_string()))?;
                match rid {
                    Some(rid) => assign.execute(params![rid, u.uin_hash, u.sealed, at.unwrap_or(0)]),
                    None => free.execute(params![u.uin_hash, u.sealed]),
                }
                .map_err(sq(op))?;
            }
            drop((assign, free));
            tx.execute_batch("DROP TABLE uin_pool").map_err(sq(op))?;
            Ok(converted + rows.len() as u64)
        })
        .await
    }

    async fn claim_job(&self, worker: &str, now: i64, lease_secs: i64) -> Result<Option<Rid>, StoreError> {
        let worker = worker.to_owned();
        self.tx("claim job", move |tx| {
            let rid: Option<String> = tx
                .query_row(
                    "SELECT rid FROM jobs WHERE state = 'ready' AND locked_until <= ?1 ORDER BY updated_at LIMIT 1",
                    [now],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sq("claim job"))?;
            let Some(rid) = rid else { return Ok(None) };
            tx.execute(
                "UPDATE jobs SET locked_by = ?2, locked_until = ?3, attempts = attempts + 1, updated_at = ?4 WHERE rid = ?1",
                params![rid, worker, now + lease_secs, now],
            )
            .map_err(sq("claim job"))?;
            tx.execute(
                "UPDATE packets SET status = ?2, updated_at = ?3 WHERE rid = ?1",
                params![rid, PacketStatus::Processing.as_str(), now],
            )
            .map_err(sq("claim job"))?;
            parse_id("rid", &rid).map(Some)
        })
        .await
    }

    async fn finish_job(
        &self,
        rid: &Rid,
        status: PacketStatus,
        reason: Option<String>,
        now: i64,
    ) -> Result<(), StoreError> {
        let rid = rid.as_str().to_owned();
        self.tx("finish job", move |tx| {
            tx.execute(
                "UPDATE packets SET status = ?2, reason = ?3, updated_at = ?4 WHERE rid = ?1",
                params![rid, status.as_str(), reason, now],
            )
            .map_err(sq("finish job"))?;
            tx.execute(
                "UPDATE jobs SET state = 'done', locked_by = NULL, updated_at = ?2 WHERE rid = ?1",
                params![rid, now],
            )
            .map_err(sq("finish job"))?;
            Ok(())
        })
        .await
    }

    async fn register_operator_key(&self, rec: OperatorKeyRecord) -> Result<bool, StoreError> {
        self.tx("register operator key", move |tx| {
            let n = tx
                .execute(
                    "INSERT INTO operator_keys (operator_id, public_key, machine_id, center_id, registered_at)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![
                        rec.operator_id,
                        rec.public_key.to_vec(),
                        rec.machine_id.as_str(),
                        rec.center_id.as_str(),
                        rec.registered_at
                    ],
                )
                .map_err(sq("register operator key"))?;
            Ok(n == 1)
        })
        .await
    }

    async fn operator_keys(&self, operator_id: &str) -> Result<Vec<OperatorKeyRecord>, StoreError> {
        let id = operator_id.to_owned();
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT operator_id, public_key, machine_id, center_id, registered_at FROM operator_keys
                     WHERE operator_id = ?1 ORDER BY registered_at",
                )
                .map_err(sq("operator keys"))?;
            let rows = stmt
                .query_map([id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .map_err(sq("operator keys"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sq("operator keys"))?;
            rows.into_iter()
                .map(|(operator_id, key, m, c, registered_at)| {
                    Ok(OperatorKeyRecord {
                        operator_id,
                        public_key: key_bytes(key)?,
                        machine_id: parse_id("machine id", &m)?,
                        center_id: parse_id("center id", &c)?,
                        registered_at,
                    })
                })
                .collect()
        })
        .await
    }

    async fn status_at(&self, kind: &str, item: &str, at: i64) -> Result<Option<String>, StoreError> {
        let (kind, item) = (kind.to_owned(), item.to_owned());
        self.with(move |c| {
            c.prepare_cached(
                "SELECT status FROM status_history WHERE kind = ?1 AND item = ?2 AND from_time <= ?3
                 ORDER BY from_time DESC, id DESC LIMIT 1",
            )
            .map_err(sq("status at"))?
            .query_row(params![kind, item, at], |r| r.get(0))
            .optional()
            .map_err(sq("status at"))
        })
        .await
    }

    async fn status_history(&self, kind: &str, item: &str) -> Result<Vec<super::StatusPeriod>, StoreError> {
        let (kind, item) = (kind.to_owned(), item.to_owned());
        self.with(move |c| {
            c.prepare_cached(
                "SELECT status, from_time FROM status_history WHERE kind = ?1 AND item = ?2 ORDER BY from_time, id",
            )
            .map_err(sq("status history"))?
            .query_map(params![kind, item], |r| {
                Ok(super::StatusPeriod {
                    status: r.get(0)?,
                    from: r.get(1)?,
                })
            })
            .map_err(sq("status history"))?
            .collect::<Result<_, _>>()
            .map_err(sq("status history"))
        })
        .await
    }

    async fn add_packet_flag(&self, rid: &Rid, flag: &str, at: i64) -> Result<(), StoreError> {
        let (rid, flag) = (rid.as_str().to_owned(), flag.to_owned());
        self.with(move |c| {
            c.execute(
                "INSERT INTO packet_events (rid, status, reason, at) SELECT rid, status, ?2, ?3 FROM packets WHERE rid = ?1",
                params![rid, flag, at],
            )
            .map_err(sq("add packet flag"))?;
            Ok(())
        })
        .await
    }

    async fn persons_by_blocking_key(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let key = key.to_owned();
        let cipher = need_cipher(&self.uins, "persons")?;
        let rows = self
            .with(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT uin_hash, sealed FROM persons WHERE blocking_key = ?1")
                    .map_err(sq("persons by blocking key"))?;
                stmt.query_map([key], |r| {
                    Ok(PoolUin {
                        uin_hash: r.get(0)?,
                        sealed: r.get(1)?,
                    })
                })
                .map_err(sq("persons by blocking key"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sq("persons by blocking key"))
            })
            .await?;
        let mut uins = rows
            .iter()
            .map(|u| cipher.open(u))
            .collect::<Result<Vec<_>, _>>()?;
        uins.sort();
        Ok(uins)
    }

    async fn person_uins(&self, hashes: Vec<String>) -> Result<Vec<(String, String)>, StoreError> {
        let cipher = need_cipher(&self.uins, "persons")?;
        let rows = self
            .with(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT sealed FROM persons WHERE uin_hash = ?1")
                    .map_err(sq("person uins"))?;
                let mut out = Vec::with_capacity(hashes.len());
                for h in hashes {
                    let sealed: Option<Vec<u8>> = stmt
                        .query_row([&h], |r| r.get(0))
                        .optional()
                        .map_err(sq("person uins"))?;
                    if let Some(sealed) = sealed {
                        out.push(PoolUin { uin_hash: h, sealed });
                    }
                }
                Ok(out)
            })
            .await?;
        rows.into_iter()
            .map(|u| {
                let uin = cipher.open(&u)?;
                Ok((u.uin_hash, uin))
            })
            .collect()
    }

    async fn gallery_since(&self, after_seq: i64, limit: u32) -> Result<Vec<GalleryRow>, StoreError> {
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT seq, uin_hash, position, template FROM gallery WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(sq("gallery"))?;
            let rows = stmt
                .query_map(params![after_seq, limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                    ))
                })
                .map_err(sq("gallery"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sq("gallery"))?;
            rows.into_iter()
                .map(|(seq, uin_hash, position, template)| {
                    Ok(GalleryRow {
                        seq,
                        uin_hash,
                        position: u8::try_from(position).map_err(|_| StoreError::Corrupt {
                            what: "gallery finger position",
                            detail: position.to_string(),
                        })?,
                        template,
                    })
                })
                .collect()
        })
        .await
    }

    async fn hold_for_adjudication(
        &self,
        rid: &Rid,
        candidates: Vec<Candidate>,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (rid, reason) = (rid.as_str().to_owned(), reason.to_owned());
        let cands = seal_candidates(
            &*need_cipher(&self.uins, "adjudication cases")?,
            &rid,
            &candidates,
        )?;
        self.tx("hold for adjudication", move |tx| {
            tx.execute(
                "INSERT INTO adjudication_cases (rid, status, candidates, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
                params![rid, case_status::PENDING, cands, now],
            )
            .map_err(sq("hold for adjudication"))?;
            tx.execute(
                "UPDATE packets SET status = ?2, reason = ?3, updated_at = ?4 WHERE rid = ?1",
                params![rid, PacketStatus::OnHold.as_str(), reason, now],
            )
            .map_err(sq("hold for adjudication"))?;
            tx.execute(
                "UPDATE jobs SET state = 'held', locked_by = NULL, updated_at = ?2 WHERE rid = ?1",
                params![rid, now],
            )
            .map_err(sq("hold for adjudication"))?;
            Ok(())
        })
        .await
    }

    async fn adjudication_cases(&self, status: Option<String>) -> Result<Vec<AdjudicationCase>, StoreError> {
        let cipher = need_cipher(&self.uins, "adjudication cases")?;
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {CASE_COLS} FROM adjudication_cases WHERE (?1 IS NULL OR status = ?1) ORDER BY created_at, rid"
                ))
                .map_err(sq("adjudication cases"))?;
            let rows = stmt
                .query_map([status], case_row)
                .map_err(sq("adjudication cases"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sq("adjudication cases"))?;
            rows.into_iter().map(|r| case_from(&cipher, r)).collect()
        })
        .await
    }

    async fn adjudication_case(&self, rid: &Rid) -> Result<Option<AdjudicationCase>, StoreError> {
        let rid = rid.as_str().to_owned();
        let cipher = need_cipher(&self.uins, "adjudication cases")?;
        self.with(move |c| case_by_rid(c, &cipher, &rid)).await
    }

    async fn decide_adjudication(
        &self,
        rid: &Rid,
        status: &str,
        duplicate_of: Option<String>,
        decided_by: &str,
        now: i64,
    ) -> Result<AdjudicationCase, StoreError> {
        let (rid, status, by) = (rid.as_str().to_owned(), status.to_owned(), decided_by.to_owned());
        let cipher = need_cipher(&self.uins, "adjudication cases")?;
        let dup = duplicate_of.as_deref().map(|u| cipher.seal_uin(u)).transpose()?;
        let (dup_hash, dup_sealed) = (dup.as_ref().map(|d| d.uin_hash.clone()), dup.map(|d| d.sealed));
        self.tx("decide adjudication", move |tx| {
            let case = case_by_rid(tx, &cipher, &rid)?.ok_or_else(|| StoreError::NotFound {
                what: "adjudication case",
                id: rid.clone(),
            })?;
            if case.status != case_status::PENDING {
                return Err(StoreError::Conflict {
                    what: "adjudication case",
                    detail: format!("packet {rid} was already decided ({})", case.status),
                });
            }
            tx.execute(
                "UPDATE adjudication_cases SET status = ?2, decided_at = ?3, decided_by = ?4,
                 duplicate_of_hash = ?5, duplicate_of = ?6 WHERE rid = ?1",
                params![rid, status, now, by, dup_hash, dup_sealed],
            )
            .map_err(sq("decide adjudication"))?;
            tx.execute(
                "UPDATE jobs SET state = 'ready', locked_by = NULL, locked_until = 0, updated_at = ?2 WHERE rid = ?1",
                params![rid, now],
            )
            .map_err(sq("decide adjudication"))?;
            tx.execute(
                "UPDATE packets SET status = ?2, reason = NULL, updated_at = ?3 WHERE rid = ?1",
                params![rid, PacketStatus::Received.as_str(), now],
            )
            .map_err(sq("decide adjudication"))?;
            case_by_rid(tx, &cipher, &rid)?.ok_or(StoreError::NotFound {
                what: "adjudication case",
                id: rid,
            })
        })
        .await
    }

    async fn store_identity(&self, new: NewIdentity) -> Result<(), StoreError> {
        let person = need_cipher(&self.uins, "persons")?.seal_uin(&new.uin)?;
        if person.uin_hash != new.uin_hash {
            return Err(StoreError::Conflict {
                what: "identity",
                detail: "the UIN hash is not the hash of the UIN under this data directory's salt".into(),
            });
        }
        self.tx("store identity", move |tx| {
            let rid = new.rid.as_str();
            tx.execute(
                "INSERT INTO identities (uin_hash, rid, key_id, wrapped_key, ciphertext, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                params![new.uin_hash, rid, new.key_id, new.wrapped_key, new.ciphertext, new.at],
            )
            .map_err(sq("store identity"))?;
            tx.execute(
                "INSERT INTO persons (uin_hash, sealed, blocking_key, rid) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
                params![person.uin_hash, person.sealed, new.blocking_key, rid],
            )
            .map_err(sq("store identity"))?;
            let mut g = tx
                .prepare_cached(
                    "INSERT INTO gallery (uin_hash, position, template) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )
                .map_err(sq("store identity"))?;
            for (pos, t) in &new.templates {
                g.execute(params![new.uin_hash, pos, t]).map_err(sq("store identity"))?;
            }
            Ok(())
        })
        .await
    }

    async fn update_identity(&self, upd: NewIdentity) -> Result<bool, StoreError> {
        self.tx("update identity", move |tx| {
            let n = tx
                .execute(
                    "UPDATE identities SET key_id = ?2, wrapped_key = ?3, ciphertext = ?4 WHERE uin_hash = ?1",
                    params![upd.uin_hash, upd.key_id, upd.wrapped_key, upd.ciphertext],
                )
                .map_err(sq("update identity"))?;
            if n == 0 {
                return Ok(false);
            }
            tx.execute(
                "UPDATE persons SET blocking_key = ?2 WHERE uin_hash = ?1",
                params![upd.uin_hash, upd.blocking_key],
            )
            .map_err(sq("update identity"))?;
            if !upd.templates.is_empty() {
                tx.execute("DELETE FROM gallery WHERE uin_hash = ?1", params![upd.uin_hash])
                    .map_err(sq("update identity"))?;
                let mut g = tx
                    .prepare_cached("INSERT INTO gallery (uin_hash, position, template) VALUES (?1, ?2, ?3)")
                    .map_err(sq("update identity"))?;
                for (pos, t) in &upd.templates {
                    g.execute(params![upd.uin_hash, pos, t]).map_err(sq("update identity"))?;
                }
            }
            Ok(true)
        })
        .await
    }

    async fn store_credential(
        &self,
        rid: &Rid,
        uin: &str,
        credential: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let rid = rid.as_str().to_owned();
        let cipher = need_cipher(&self.uins, "credentials")?;
        let u = cipher.seal_uin(uin)?;
        let body = seal_credential(&cipher, &rid, credential)?;
        self.tx("store credential", move |tx| {
            tx.execute(
                "INSERT INTO credentials (rid, uin_hash, sealed_uin, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO NOTHING",
                params![rid, u.uin_hash, u.sealed, body, now],
            )
            .map_err(sq("store credential"))?;
            tx.execute(
                "UPDATE packets SET status = ?2, reason = NULL, updated_at = ?3 WHERE rid = ?1",
                params![rid, PacketStatus::Processed.as_str(), now],
            )
            .map_err(sq("store credential"))?;
            tx.execute(
                "UPDATE jobs SET state = 'done', locked_by = NULL, updated_at = ?2 WHERE rid = ?1",
                params![rid, now],
            )
            .map_err(sq("store credential"))?;
            Ok(())
        })
        .await
    }

    async fn identity(&self, lookup: IdentityLookup) -> Result<Option<IdentityRecord>, StoreError> {
        self.with(move |c| {
            let (clause, arg) = match &lookup {
                IdentityLookup::UinHash(h) => ("uin_hash = ?1", h.clone()),
                IdentityLookup::Rid(r) => ("rid = ?1", r.as_str().to_owned()),
            };
            let row = c
                .query_row(
                    &format!(
                        "SELECT rid, uin_hash, key_id, wrapped_key, ciphertext, created_at FROM identities WHERE {clause}"
                    ),
                    [arg],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Vec<u8>>(3)?,
                            r.get::<_, Vec<u8>>(4)?,
                            r.get::<_, i64>(5)?,
                        ))
                    },
                )
                .optional()
                .map_err(sq("read identity"))?;
            row.map(|(rid, uin_hash, key_id, wrapped_key, ciphertext, created_at)| {
                Ok(IdentityRecord {
                    rid: parse_id("rid", &rid)?,
                    uin_hash,
                    key_id,
                    wrapped_key,
                    ciphertext,
                    created_at,
                })
            })
            .transpose()
        })
        .await
    }

    async fn credential(&self, rid: &Rid) -> Result<Option<(String, String)>, StoreError> {
        let rid = rid.as_str().to_owned();
        let cipher = need_cipher(&self.uins, "credentials")?;
        let row = self
            .with({
                let rid = rid.clone();
                move |c| {
                    c.query_row(
                        "SELECT uin_hash, sealed_uin, body FROM credentials WHERE rid = ?1",
                        [rid],
                        |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, Vec<u8>>(1)?,
                                r.get::<_, Vec<u8>>(2)?,
                            ))
                        },
                    )
                    .optional()
                    .map_err(sq("read credential"))
                }
            })
            .await?;
        row.map(|(uin_hash, sealed, body)| {
            let uin = cipher.open(&PoolUin { uin_hash, sealed })?;
            Ok((uin, open_credential(&cipher, &rid, &body)?))
        })
        .transpose()
    }

    async fn enqueue_notification(&self, n: NewNotification) -> Result<(), StoreError> {
        self.tx("enqueue notification", move |tx| {
            tx.execute(
                "INSERT INTO outbox (rid, kind, payload, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![n.rid.as_str(), n.kind, n.payload, n.at],
            )
            .map_err(sq("enqueue notification"))?;
            Ok(())
        })
        .await
    }

    async fn claim_notification(
        &self,
        worker: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let _ = worker;
        self.tx("claim notification", move |tx| {
            let row = tx
                .query_row(
                    "SELECT id, rid, kind, payload, attempts FROM outbox
                     WHERE sent_at IS NULL AND locked_until <= ?1 ORDER BY id LIMIT 1",
                    [now],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Vec<u8>>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(sq("claim notification"))?;
            let Some((id, rid, kind, payload, attempts)) = row else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, locked_until = ?2 WHERE id = ?1",
                params![id, now + lease_secs],
            )
            .map_err(sq("claim notification"))?;
            Ok(Some(NotificationRecord {
                id,
                rid: parse_id("rid", &rid)?,
                kind,
                payload,
                attempts: attempts + 1,
            }))
        })
        .await
    }

    async fn notification_sent(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.tx("notification sent", move |tx| {
            tx.execute("UPDATE outbox SET sent_at = ?2 WHERE id = ?1", params![id, now])
                .map_err(sq("notification sent"))?;
            Ok(())
        })
        .await
    }

    async fn identity_keys_to_rewrap(
        &self,
        current_key_id: &str,
        limit: u32,
    ) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        let current = current_key_id.to_owned();
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT uin_hash, key_id, wrapped_key FROM identities WHERE key_id != ?1 ORDER BY uin_hash LIMIT ?2",
                )
                .map_err(sq("keys to rewrap"))?;
            stmt.query_map(params![current, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(sq("keys to rewrap"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sq("keys to rewrap"))
        })
        .await
    }

    async fn rewrap_identity_key(
        &self,
        uin_hash: &str,
        old_key_id: &str,
        new_key_id: &str,
        wrapped_key: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let (h, old, new) = (uin_hash.to_owned(), old_key_id.to_owned(), new_key_id.to_owned());
        self.tx("rewrap identity key", move |tx| {
            let n = tx
                .execute(
                    "UPDATE identities SET key_id = ?3, wrapped_key = ?4 WHERE uin_hash = ?1 AND key_id = ?2",
                    params![h, old, new, wrapped_key],
                )
                .map_err(sq("rewrap identity key"))?;
            Ok(n == 1)
        })
        .await
    }

    async fn put_sync_items(&self, changes: Vec<SyncChange>) -> Result<Vec<Option<i64>>, StoreError> {
        self.tx("put sync items", move |tx| {
            changes
                .into_iter()
                .map(|c| put_item_tx(tx, c.kind, &c.scope, &c.key, c.body))
                .collect()
        })
        .await
    }

    async fn current_sync_items(&self, kind: SyncKind) -> Result<Vec<ScopedSyncItem>, StoreError> {
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT scope, key, version, body FROM sync_items
                     WHERE kind = ?1 AND deleted = 0 ORDER BY scope, key",
                )
                .map_err(sq("current sync items"))?;
            let rows = stmt
                .query_map([kind.as_str()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .map_err(sq("current sync items"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sq("current sync items"))?;
            rows.into_iter()
                .map(|(scope, key, version, body)| {
                    Ok(ScopedSyncItem {
                        scope,
                        item: SyncItem {
                            key,
                            version,
                            deleted: false,
                            body: parse_body(false, body)?,
                        },
                    })
                })
                .collect()
        })
        .await
    }

    async fn packets_by_status(
        &self,
        status: Option<PacketStatus>,
        limit: u32,
    ) -> Result<Vec<PacketRecord>, StoreError> {
        self.with(move |c| {
            let sql = format!(
                "SELECT {PACKET_COLS} FROM packets WHERE (?1 IS NULL OR status = ?1)
                 ORDER BY updated_at, rid LIMIT ?2"
            );
            let mut stmt = c.prepare_cached(&sql).map_err(sq("list packets"))?;
            let rows = stmt
                .query_map(params![status.map(PacketStatus::as_str), limit], packet_row)
                .map_err(sq("list packets"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sq("list packets"))?;
            rows.into_iter().map(packet_from).collect()
        })
        .await
    }

    async fn packet_history(&self, rid: &Rid) -> Result<Vec<PacketEvent>, StoreError> {
        let rid = rid.as_str().to_owned();
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT status, reason, at FROM packet_events WHERE rid = ?1 ORDER BY id")
                .map_err(sq("packet history"))?;
            let rows = stmt
                .query_map([rid], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(sq("packet history"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sq("packet history"))?;
            rows.into_iter()
                .map(|(status, reason, at)| {
                    Ok(PacketEvent {
                        status: parse_packet_status(&status)?,
                        reason,
                        at,
                    })
                })
                .collect()
        })
        .await
    }

    async fn requeue_packet(&self, rid: &Rid, from: PacketStatus, now: i64) -> Result<bool, StoreError> {
        let rid = rid.as_str().to_owned();
        self.tx("requeue packet", move |tx| {
            let Some(p) = packet_by_rid(tx, &rid)? else {
                return Err(StoreError::NotFound {
                    what: "packet",
                    id: rid,
                });
            };
            if p.status != from {
                return Ok(false);
            }
            tx.execute(
                "UPDATE packets SET status = ?2, reason = NULL, updated_at = ?3 WHERE rid = ?1",
                params![rid, PacketStatus::Received.as_str(), now],
            )
            .map_err(sq("requeue packet"))?;
            tx.execute(
                "INSERT INTO jobs (rid, state, attempts, locked_by, locked_until, updated_at)
                 VALUES (?1, 'ready', 0, NULL, 0, ?2)
                 ON CONFLICT (rid) DO UPDATE SET state = 'ready', locked_by = NULL, locked_until = 0,
                   updated_at = excluded.updated_at",
                params![rid, now],
            )
            .map_err(sq("requeue packet"))?;
            Ok(true)
        })
        .await
    }

    async fn notification_retry_at(&self, id: i64, at: i64) -> Result<(), StoreError> {
        self.tx("notification retry", move |tx| {
            tx.execute(
                "UPDATE outbox SET locked_until = ?2 WHERE id = ?1 AND sent_at IS NULL",
                params![id, at],
            )
            .map_err(sq("notification retry"))?;
            Ok(())
        })
        .await
    }
}

impl SqliteStore {
    async fn complete(
        &self,
        upload_id: &str,
        from: Option<u64>,
        receipt: &str,
        at: i64,
    ) -> Result<PacketRecord, StoreError> {
        let (id, receipt) = (upload_id.to_owned(), receipt.to_owned());
        self.tx("complete upload", move |tx| {
            let mut up = upload_by(tx, "upload_id = ?1", &id)?.ok_or_else(|| StoreError::NotFound { what: "upload", id: id.clone() })?;
            if let Some(p) = packet_by_rid(tx, up.rid.as_str())? {
                return Ok(p);
            }
            if let Some(from) = from {
                if up.received != from {
                    return Err(StoreError::Conflict {
                        what: "upload",
                        detail: format!("upload {id} is at byte {}, not {from}", up.received),
                    });
                }
                up.received = up.length;
            }
            if up.received != up.length {
                return Err(StoreError::Conflict {
                    what: "upload",
                    detail: format!("upload {id} has {} of {} bytes", up.received, up.length),
                });
            }
            tx.execute(
                "UPDATE uploads SET completed_at = ?2, received = length WHERE upload_id = ?1",
                params![id, at],
            )
                .map_err(sq("complete upload"))?;
            tx.execute(
                "INSERT INTO packets (rid, machine_id, sha256, size, status, reason, receipt, received_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, ?7)",
                params![
                    up.rid.as_str(),
                    up.machine_id.as_str(),
                    up.sha256,
                    to_i64("size", up.length)?,
                    PacketStatus::Received.as_str(),
                    receipt,
                    at
                ],
            )
            .map_err(sq("complete upload"))?;
            tx.execute(
                "INSERT INTO jobs (rid, state, attempts, locked_by, locked_until, updated_at)
                 VALUES (?1, 'ready', 0, NULL, 0, ?2) ON CONFLICT DO NOTHING",
                params![up.rid.as_str(), at],
            )
            .map_err(sq("enqueue job"))?;
            packet_by_rid(tx, up.rid.as_str())?.ok_or(StoreError::NotFound { what: "packet", id: up.rid.to_string() })
        })
        .await
    }
}

/// A random point of the hash order (lower-case hex, as hashes are stored) where an allocation starts taking.
pub(crate) fn random_start() -> Result<String, StoreError> {
    crate::keys::random_hex::<8>().map_err(|e| StoreError::Task(e.to_string()))
}

/// Deletes up to `n` free entries from `start` upwards (`cmp` ">=") or below it ("<"), in hash order, and
/// returns them.
fn take_free(tx: &Transaction<'_>, cmp: &str, start: &str, n: usize) -> Result<Vec<PoolUin>, StoreError> {
    let sql = format!(
        "DELETE FROM uin_free WHERE uin_hash IN
           (SELECT uin_hash FROM uin_free WHERE uin_hash {cmp} ?1 ORDER BY uin_hash LIMIT ?2)
         RETURNING uin_hash, sealed"
    );
    let mut stmt = tx.prepare_cached(&sql).map_err(sq("allocate uins"))?;
    stmt.query_map(params![start, i64::try_from(n).unwrap_or(i64::MAX)], |r| {
        Ok(PoolUin {
            uin_hash: r.get(0)?,
            sealed: r.get(1)?,
        })
    })
    .map_err(sq("allocate uins"))?
    .collect::<Result<Vec<_>, _>>()
    .map_err(sq("allocate uins"))
}

/// Converts the tables migration 6 renamed `legacy_*` (UINs in clear) into the new ones (UIN hash, sealed UIN)
/// and drops them; returns the rows converted (0 when there is nothing to convert).
fn convert_legacy_tables(tx: &Transaction<'_>, cipher: &UinCipher) -> Result<u64, StoreError> {
    let op = "convert tables holding UINs in clear";
    let exists = |name: &str| -> Result<bool, StoreError> {
        tx.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(sq(op))
    };
    let mut n = 0u64;
    if exists("legacy_persons")? {
        let rows: Vec<(String, String, String)> = {
            let mut stmt = tx
                .prepare("SELECT uin, blocking_key, rid FROM legacy_persons")
                .map_err(sq(op))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(sq(op))?
                .collect::<Result<_, _>>()
                .map_err(sq(op))?
        };
        for (uin, block, rid) in rows {
            let u = cipher.seal_uin(&uin)?;
            tx.execute(
                "INSERT INTO persons (uin_hash, sealed, blocking_key, rid) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
                params![u.uin_hash, u.sealed, block, rid],
            )
            .map_err(sq(op))?;
            n += 1;
        }
        tx.execute_batch("DROP TABLE legacy_persons").map_err(sq(op))?;
    }
    if exists("legacy_gallery")? {
        let rows: Vec<(i64, String, i64, Vec<u8>)> = {
            let mut stmt = tx
                .prepare("SELECT seq, uin, position, template FROM legacy_gallery ORDER BY seq")
                .map_err(sq(op))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(sq(op))?
                .collect::<Result<_, _>>()
                .map_err(sq(op))?
        };
        // Sequence numbers are kept (gallery loaders' cursors), so the AUTOINCREMENT counter follows them.
        for (seq, uin, pos, template) in rows {
            tx.execute(
                "INSERT INTO gallery (seq, uin_hash, position, template) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
                params![seq, cipher.hash(&uin), pos, template],
            )
            .map_err(sq(op))?;
            n += 1;
        }
        tx.execute_batch("DROP TABLE legacy_gallery").map_err(sq(op))?;
    }
    if exists("legacy_credentials")? {
        let rows: Vec<(String, String, String, i64)> = {
            let mut stmt = tx
                .prepare("SELECT rid, uin, body, created_at FROM legacy_credentials")
                .map_err(sq(op))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(sq(op))?
                .collect::<Result<_, _>>()
                .map_err(sq(op))?
        };
        for (rid, uin, body, at) in rows {
            let u = cipher.seal_uin(&uin)?;
            let body = seal_credential(cipher, &rid, &body)?;
            tx.execute(
                "INSERT INTO credentials (rid, uin_hash, sealed_uin, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO NOTHING",
                params![rid, u.uin_hash, u.sealed, body, at],
            )
            .map_err(sq(op))?;
            n += 1;
        }
        tx.execute_batch("DROP TABLE legacy_credentials")
            .map_err(sq(op))?;
    }
    if exists("legacy_adjudication_cases")? {
        type Legacy = (
            String,
            String,
            String,
            i64,
            Option<i64>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Legacy> = {
            let mut stmt = tx
                .prepare(
                    "SELECT rid, status, candidates, created_at, decided_at, decided_by, duplicate_of
                     FROM legacy_adjudication_cases",
                )
                .map_err(sq(op))?;
            stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .map_err(sq(op))?
            .collect::<Result<_, _>>()
            .map_err(sq(op))?
        };
        for (rid, status, cands, created_at, decided_at, decided_by, dup) in rows {
            let cands = seal_candidates(cipher, &rid, &parse_candidates(&cands)?)?;
            let dup = dup.as_deref().map(|u| cipher.seal_uin(u)).transpose()?;
            tx.execute(
                "INSERT INTO adjudication_cases (rid, status, candidates, created_at, decided_at, decided_by,
                 duplicate_of_hash, duplicate_of) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                params![
                    rid,
                    status,
                    cands,
                    created_at,
                    decided_at,
                    decided_by,
                    dup.as_ref().map(|d| d.uin_hash.clone()),
                    dup.map(|d| d.sealed)
                ],
            )
            .map_err(sq(op))?;
            n += 1;
        }
        tx.execute_batch("DROP TABLE legacy_adjudication_cases")
            .map_err(sq(op))?;
    }
    Ok(n)
}

const CASE_COLS: &str =
    "rid, status, candidates, created_at, decided_at, decided_by, duplicate_of_hash, duplicate_of";

type CaseRow = (
    String,
    String,
    Vec<u8>,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
);

fn case_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CaseRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn case_from(cipher: &UinCipher, row: CaseRow) -> Result<AdjudicationCase, StoreError> {
    let (rid, status, candidates, created_at, decided_at, decided_by, dup_hash, dup_sealed) = row;
    Ok(AdjudicationCase {
        candidates: open_candidates(cipher, &rid, &candidates)?,
        rid: parse_id("rid", &rid)?,
        status,
        created_at,
        decided_at,
        decided_by,
        duplicate_of: open_opt_uin(cipher, dup_hash, dup_sealed)?,
    })
}

fn case_by_rid(
    c: &Connection,
    cipher: &UinCipher,
    rid: &str,
) -> Result<Option<AdjudicationCase>, StoreError> {
    c.query_row(
        &format!("SELECT {CASE_COLS} FROM adjudication_cases WHERE rid = ?1"),
        [rid],
        case_row,
    )
    .optional()
    .map_err(sq("read adjudication case"))?
    .map(|r| case_from(cipher, r))
    .transpose()
}
