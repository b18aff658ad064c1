//! The station's encrypted store: a SQLCipher database opened with a random 256-bit key that lives in
//! [`keyslots`], versioned migrations, WAL journaling with `synchronous=FULL` so a kill at any point leaves
//! either the previous or the next committed state.
//!
//! Files in the station home:
//! - `station.db` (SQLCipher), `keyslots.json` ([`keyslots::SlotFile`]),
//! - `packets/` sealed packets (`<RID>.tpkt`), written atomically before their row is committed.

pub mod keyslots;

use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, Transaction};
use zeroize::Zeroizing;

use crate::error::{Result, StationError};

/// Where the store's files live.
#[derive(Debug, Clone)]
pub struct StorePaths {
    /// Station home directory.
    pub home: PathBuf,
    /// SQLCipher database.
    pub db: PathBuf,
    /// Key-slot file.
    pub slots: PathBuf,
    /// Sealed packets directory.
    pub packets: PathBuf,
}

impl StorePaths {
    /// The layout under `home`.
    pub fn new(home: &Path) -> Self {
        Self {
            home: home.to_path_buf(),
            db: home.join("station.db"),
            slots: home.join("keyslots.json"),
            packets: home.join("packets"),
        }
    }
}

/// Schema migrations, applied in order; the database's `user_version` is the number applied.
/// Never edit a shipped migration: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema
    r#"
    CREATE TABLE station (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        center_id TEXT NOT NULL,
        machine_id TEXT NOT NULL,
        machine_key BLOB NOT NULL,
        created_at TEXT NOT NULL,
        rid_sequence INTEGER NOT NULL DEFAULT 0,
        last_master_sync TEXT,
        server_clock_offset_ms INTEGER
    );
    CREATE TABLE master_data (
        name TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        body TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE operators (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        roles TEXT NOT NULL,
        center_id TEXT NOT NULL,
        active INTEGER NOT NULL,
        password_hash TEXT NOT NULL,
        public_key TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE drafts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        process TEXT NOT NULL,
        operator_id TEXT NOT NULL,
        state TEXT NOT NULL,
        body TEXT NOT NULL,
        rid TEXT UNIQUE,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE draft_blobs (
        draft_id INTEGER NOT NULL REFERENCES drafts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        content BLOB NOT NULL,
        PRIMARY KEY (draft_id, name)
    );
    CREATE TABLE packets (
        rid TEXT PRIMARY KEY,
        process TEXT NOT NULL,
        state TEXT NOT NULL,
        operator_id TEXT NOT NULL,
        file_name TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        supervisor_id TEXT,
        reason TEXT,
        exported_at TEXT
    );
    CREATE INDEX packets_state_created ON packets(state, created_at);
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    "#,
    // 2: the server's packet-recipient keys (age X25519), several active during rotation
    r#"
    CREATE TABLE packet_recipients (
        recipient TEXT PRIMARY KEY,
        added_at TEXT NOT NULL
    );
    "#,
    // 3: queue listings ordered by (created_at, rid) straight from an index, filtered or not
    r#"
    DROP INDEX IF EXISTS packets_state_created;
    CREATE INDEX IF NOT EXISTS packets_state_created_rid ON packets(state, created_at, rid);
    CREATE INDEX IF NOT EXISTS packets_created_rid ON packets(created_at, rid);
    "#,
    // 4: sync engine: the server link pinned at enrolment, synced items and cursors, uploads and receipts
    r#"
    CREATE TABLE server_link (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        url TEXT NOT NULL,
        server_key TEXT NOT NULL,
        machine_status TEXT NOT NULL,
        enrolled_at TEXT NOT NULL,
        last_contact TEXT,
        last_error TEXT
    );
    CREATE TABLE sync_cursors (
        kind TEXT PRIMARY KEY,
        cursor TEXT NOT NULL,
        synced_at TEXT NOT NULL
    );
    CREATE TABLE sync_items (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        version INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (kind, key)
    );
    CREATE TABLE uploads (
        rid TEXT PRIMARY KEY REFERENCES packets(rid),
        location TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        receipt TEXT,
        received_at TEXT,
        server_status TEXT,
        server_reason TEXT,
        status_at TEXT,
        final_at TEXT,
        file_deleted_at TEXT,
        updated_at TEXT NOT NULL
    );
    "#,
    // 3: operator keys waiting to be registered with the server (sign-offs are accepted only for
    // registered keys). `body` is the signed `wire::OperatorKeyRegistration`, made while the key was
    // unlocked; `registered_at` is set once the server accepted it.
    r#"
    CREATE TABLE operator_keys (
        operator_id TEXT NOT NULL,
        public_key TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        registered_at TEXT,
        PRIMARY KEY (operator_id, public_key)
    );
    "#,
    // 6: operators' own enrolled fingers for the cross-check before sealing (templates only, no images;
    // the whole database is encrypted). `position` is the packet attribute name, e.g. `leftIndex`.
    r#"
    CREATE TABLE operator_fingers (
        operator_id TEXT NOT NULL,
        position TEXT NOT NULL,
        template BLOB NOT NULL,
        enrolled_at TEXT NOT NULL,
        PRIMARY KEY (operator_id, position)
    );
    "#,
    // 7: the station set-up kit the station was created from (crate::kit): the server it pins (enrolment with
    // another server key is refused) and the kit file's digest.
    r#"
    CREATE TABLE station_kit (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        server_url TEXT NOT NULL,
        server_key TEXT NOT NULL,
        kit_sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        applied_at TEXT NOT NULL
    );
    "#,
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// An open, unlocked store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    paths: StorePaths,
}

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

impl Store {
    /// Creates a new database at `paths.db` keyed with `key` and applies all migrations.
    pub fn create(paths: &StorePaths, key: &[u8; 32]) -> Result<Self> {
        if paths.db.exists() {
            return Err(StationError::AlreadyInitialised {
                home: paths.home.clone(),
            });
        }
        std::fs::create_dir_all(&paths.packets)
            .map_err(StationError::io("creating the packets directory", &paths.packets))?;
        let conn = Connection::open_with_flags(
            &paths.db,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(StationError::db("creating the station database"))?;
        let mut store = Self {
            conn,
            paths: paths.clone(),
        };
        store.key(key, "new")?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens the existing database with `key` (unwrapped from the slot named `slot`).
    pub fn open(paths: &StorePaths, key: &[u8; 32], slot: &str) -> Result<Self> {
        if !paths.db.exists() {
            return Err(StationError::NotInitialised {
                home: paths.home.clone(),
            });
        }
        let mut header = [0u8; 16];
        let n = std::fs::File::open(&paths.db)
            .and_then(|mut f| f.read(&mut header))
            .map_err(StationError::io("reading the station database", &paths.db))?;
        if n == 16 && &header == SQLITE_MAGIC {
            return Err(StationError::PlainDatabase {
                path: paths.db.clone(),
            });
        }
        let conn = Connection::open_with_flags(
            &paths.db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(StationError::db("opening the station database"))?;
        let mut store = Self {
            conn,
            paths: paths.clone(),
        };
        store.key(key, slot)?;
        store.migrate()?;
        Ok(store)
    }

    fn key(&mut self, key: &[u8; 32], slot: &str) -> Result<()> {
        // SQLCipher logs failed decryptions to stderr; the station reports them as typed errors instead.
        let _ = self.conn.execute_batch("PRAGMA cipher_log_level = NONE;");
        let pragma = Zeroizing::new(format!("x'{}'", hex::encode(key)));
        self.conn
            .pragma_update(None, "key", pragma.as_str())
            .map_err(StationError::db("setting the database key"))?;
        // The first read tells whether the key is right.
        let probe: rusqlite::Result<i64> =
            self.conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0));
        match probe {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::NotADatabase => {
                return Err(StationError::WrongDatabaseKey {
                    path: self.paths.db.clone(),
                    slot: slot.into(),
                });
            }
            Err(e) => return Err(StationError::db("reading the station database")(e)),
        }
        self.conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(StationError::db("configuring the station database"))?;
        self.conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(StationError::db("setting the busy timeout"))?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<()> {
        let current: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(StationError::db("reading the schema version"))?;
        if current > SCHEMA_VERSION {
            return Err(StationError::StoreTooNew {
                found: current,
                known: SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(current).unwrap_or(0))
        {
            let version = i64::try_from(i).unwrap_or(i64::MAX).saturating_add(1);
            let tx = self
                .conn
                .transaction()
                .map_err(StationError::db("starting a migration"))?;
            tx.execute_batch(sql)
                .map_err(StationError::db(format!("applying migration {version}")))?;
            tx.pragma_update(None, "user_version", version)
                .map_err(StationError::db(format!("recording migration {version}")))?;
            tx.commit()
                .map_err(StationError::db(format!("committing migration {version}")))?;
        }
        Ok(())
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(StationError::db("reading the schema version"))
    }

    /// The connection, for reads.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` in one immediate transaction: all of it commits, or none of it.
    pub fn tx<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StationError::db("starting a transaction"))?;
        let out = f(&tx)?;
        tx.commit()
            .map_err(StationError::db("committing a transaction"))?;
        Ok(out)
    }

    /// The store's file layout.
    pub fn paths(&self) -> &StorePaths {
        &self.paths
    }
}
