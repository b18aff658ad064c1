//! The PostgreSQL store: `tokio-postgres` behind a `deadpool-postgres` pool. Several server or worker processes
//! may share one database; migrations take an advisory lock, sync versions come from a sequence under a table
//! lock (so a reader never sees version N+1 committed before N), and free UINs are taken with
//! `FOR UPDATE SKIP LOCKED`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tessera_packet::ids::{MachineId, Rid};
use tessera_packet::wire::{MachineStatus, PacketStatus, SyncItem, SyncKind};
use tokio_postgres::{NoTls, Row};

use crate::uin::UinCipher;

use super::{
    AdjudicationCase, Candidate, FIRST_MACHINE_ID, GalleryRow, IdentityLookup, IdentityRecord, MachineRecord,
    NewIdentity, NewMachine, NewNotification, NewUpload, NotificationRecord, OperatorKeyRecord, PacketEvent,
    PacketRecord, PoolUin, ScopedSyncItem, Store, StoreError, SyncChange, UploadRecord, case_status,
    key_bytes, need_cipher, open_candidates, open_credential, open_opt_uin, parse_body, parse_candidates,
    parse_id, parse_machine_status, parse_packet_status, seal_candidates, seal_credential, to_i64, to_u64,
};

/// Versioned migrations: (version, SQL). Append only.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE machines (
    machine_id TEXT PRIMARY KEY,
    center_id TEXT NOT NULL,
    name TEXT NOT NULL,
    public_key BYTEA NOT NULL UNIQUE,
    status TEXT NOT NULL,
    status_reason TEXT,
    requested_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE SEQUENCE machine_id_seq START 10001;
CREATE TABLE request_nonces (
    machine_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (machine_id, nonce)
);
CREATE INDEX request_nonces_expiry ON request_nonces (expires_at);
CREATE SEQUENCE sync_version_seq;
CREATE TABLE sync_items (
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    body TEXT,
    PRIMARY KEY (kind, scope, key)
);
CREATE INDEX sync_items_cursor ON sync_items (kind, scope, version);
CREATE TABLE uploads (
    upload_id TEXT PRIMARY KEY,
    machine_id TEXT NOT NULL,
    rid TEXT NOT NULL UNIQUE,
    length BIGINT NOT NULL,
    received BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX uploads_machine_created ON uploads (machine_id, created_at);
CREATE TABLE packets (
    rid TEXT PRIMARY KEY,
    machine_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    receipt TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE uin_pool (
    uin TEXT PRIMARY KEY,
    pick BIGINT NOT NULL,
    rid TEXT UNIQUE,
    allocated_at BIGINT
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
    attempts BIGINT NOT NULL,
    locked_by TEXT,
    locked_until BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, locked_until, updated_at);
"#,
    ),
    (
        3,
        r#"
CREATE TABLE operator_keys (
    operator_id TEXT NOT NULL,
    public_key BYTEA NOT NULL,
    machine_id TEXT NOT NULL,
    center_id TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    PRIMARY KEY (operator_id, public_key)
);
CREATE TABLE persons (
    uin TEXT PRIMARY KEY,
    blocking_key TEXT NOT NULL,
    rid TEXT NOT NULL UNIQUE
);
CREATE INDEX persons_blocking ON persons (blocking_key);
CREATE TABLE gallery (
    seq BIGSERIAL PRIMARY KEY,
    uin TEXT NOT NULL,
    position BIGINT NOT NULL,
    template BYTEA NOT NULL,
    UNIQUE (uin, position)
);
CREATE TABLE adjudication_cases (
    rid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    candidates TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    duplicate_of TEXT
);
CREATE INDEX adjudication_status ON adjudication_cases (status, created_at);
CREATE TABLE identities (
    uin_hash TEXT PRIMARY KEY,
    rid TEXT NOT NULL UNIQUE,
    key_id TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX identities_key ON identities (key_id);
CREATE TABLE credentials (
    rid TEXT PRIMARY KEY,
    uin TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    rid TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    sent_at BIGINT,
    UNIQUE (rid, kind)
);
CREATE INDEX outbox_pending ON outbox (sent_at, locked_until, id);
"#,
    ),
    (
        4,
        // The UIN pool without UINs in clear (see crate::uin); "C" collation: hashes are hex, ordered bytewise.
        // The old uin_pool table is converted and dropped by `protect_legacy_uins`.
        r#"
CREATE TABLE uin_free (
    uin_hash TEXT COLLATE "C" PRIMARY KEY,
    sealed BYTEA NOT NULL
);
CREATE TABLE uin_assigned (
    rid TEXT PRIMARY KEY,
    uin_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    sealed BYTEA NOT NULL,
    assigned_at BIGINT NOT NULL
);
"#,
    ),
    (
        5,
        // Status history of every packet, written by a trigger so that no code path can change a status
        // without leaving a trace. Existing packets get one event with their current status.
        r#"
CREATE TABLE packet_events (
    id BIGSERIAL PRIMARY KEY,
    rid TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX packet_events_rid ON packet_events (rid, id);
INSERT INTO packet_events (rid, status, reason, at) SELECT rid, status, reason, updated_at FROM packets;
CREATE FUNCTION packet_events_record() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status OR NEW.reason IS DISTINCT FROM OLD.reason THEN
        INSERT INTO packet_events (rid, status, reason, at) VALUES (NEW.rid, NEW.status, NEW.reason, NEW.updated_at);
    END IF;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER packet_events_change AFTER INSERT OR UPDATE ON packets
    FOR EACH ROW EXECUTE FUNCTION packet_events_record();
CREATE INDEX packets_status ON packets (status, updated_at);
"#,
    ),
    (
        6,
        // No UIN in clear outside the ID repository: persons, gallery, credentials and adjudication cases are
        // keyed by the salted UIN hash, and what must give the UIN back holds it sealed (crate::uin::UinCipher).
        // The old tables are renamed `legacy_*` and converted then dropped by `protect_legacy_uins` (sealing
        // needs the salt, which the database does not have). The gallery keeps its sequence.
        r#"
ALTER INDEX persons_blocking RENAME TO legacy_persons_blocking;
ALTER INDEX persons_pkey RENAME TO legacy_persons_pkey;
ALTER INDEX persons_rid_key RENAME TO legacy_persons_rid_key;
ALTER INDEX gallery_pkey RENAME TO legacy_gallery_pkey;
ALTER INDEX gallery_uin_position_key RENAME TO legacy_gallery_uin_position_key;
ALTER INDEX credentials_pkey RENAME TO legacy_credentials_pkey;
ALTER INDEX adjudication_cases_pkey RENAME TO legacy_adjudication_cases_pkey;
ALTER INDEX adjudication_status RENAME TO legacy_adjudication_status;
ALTER TABLE persons RENAME TO legacy_persons;
ALTER TABLE gallery RENAME TO legacy_gallery;
ALTER TABLE credentials RENAME TO legacy_credentials;
ALTER TABLE adjudication_cases RENAME TO legacy_adjudication_cases;
CREATE TABLE persons (
    uin_hash TEXT PRIMARY KEY,
    sealed BYTEA NOT NULL,
    blocking_key TEXT NOT NULL,
    rid TEXT NOT NULL UNIQUE
);
CREATE INDEX persons_blocking ON persons (blocking_key);
CREATE TABLE gallery (
    seq BIGINT PRIMARY KEY DEFAULT nextval('gallery_seq_seq'),
    uin_hash TEXT NOT NULL,
    position BIGINT NOT NULL,
    template BYTEA NOT NULL,
    UNIQUE (uin_hash, position)
);
ALTER SEQUENCE gallery_seq_seq OWNED BY gallery.seq;
CREATE TABLE credentials (
    rid TEXT PRIMARY KEY,
    uin_hash TEXT NOT NULL,
    sealed_uin BYTEA NOT NULL,
    body BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE adjudication_cases (
    rid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    candidates BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    duplicate_of_hash TEXT,
    duplicate_of BYTEA
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
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    item TEXT NOT NULL,
    status TEXT NOT NULL,
    from_time BIGINT NOT NULL
);
CREATE INDEX status_history_item ON status_history (kind, item, from_time, id);
INSERT INTO status_history (kind, item, status, from_time)
    SELECT 'machine', machine_id, 'PENDING', requested_at FROM machines;
INSERT INTO status_history (kind, item, status, from_time)
    SELECT 'machine', machine_id, status, updated_at FROM machines WHERE status <> 'PENDING';
CREATE FUNCTION machine_status_record() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO status_history (kind, item, status, from_time)
        VALUES ('machine', NEW.machine_id, NEW.status, NEW.requested_at);
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO status_history (kind, item, status, from_time)
        VALUES ('machine', NEW.machine_id, NEW.status, NEW.updated_at);
    END IF;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER machine_status_change AFTER INSERT OR UPDATE ON machines
    FOR EACH ROW EXECUTE FUNCTION machine_status_record();
"#,
    ),
];

/// Advisory lock key serialising migrations across processes ("TESSERA" in ASCII, truncated).
const MIGRATION_LOCK: i64 = 0x0054_4553_5345_5241;

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    schema: Option<String>,
    uins: Option<Arc<UinCipher>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn pg(op: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |source| StoreError::Postgres { op, source }
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

impl PgStore {
    /// Connects to `url` with a pool of `pool_size`, migrating the database. With `schema`, every connection
    /// uses that schema (created if missing) — the tests give each test its own.
    pub async fn connect(url: &str, pool_size: usize, schema: Option<&str>) -> Result<Self, StoreError> {
        Self::connect_at_version(url, pool_size, schema, i64::MAX).await
    }

    /// [`PgStore::connect`] applying migrations only up to `version`: for tests of the conversion of
    /// databases written by older servers.
    #[doc(hidden)]
    pub async fn connect_at_version(
        url: &str,
        pool_size: usize,
        schema: Option<&str>,
        version: i64,
    ) -> Result<Self, StoreError> {
        let mut cfg: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| StoreError::Pool {
                op: "parse database url",
                message: e.to_string(),
            })?;
        if let Some(schema) = schema {
            if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(StoreError::Pool {
                    op: "connect",
                    message: format!("invalid schema name {schema:?}"),
                });
            }
            let (client, conn) = cfg.connect(NoTls).await.map_err(pg("connect"))?;
            let task = tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await
                .map_err(pg("create schema"))?;
            drop(client);
            let _ = task.await;
            cfg.options(format!("-c search_path={schema}"));
        }
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(pool_size)
            .build()
            .map_err(|e| StoreError::Pool {
                op: "build pool",
                message: e.to_string(),
            })?;
        let store = Self {
            pool,
            schema: schema.map(str::to_owned),
            uins: None,
        };
        store.migrate(version).await?;
        Ok(store)
    }

    /// Gives the store the data directory's UIN cipher, with which it seals the UINs (and the data holding
    /// them) it stores and opens them when read. Without it, those operations fail with `NoUinCipher`.
    #[must_use]
    pub fn with_uin_cipher(mut self, cipher: Arc<UinCipher>) -> Self {
        self.uins = Some(cipher);
        self
    }

    async fn conn(&self, op: &'static str) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Pool {
            op,
            message: e.to_string(),
        })
    }

    async fn migrate(&self, up_to: i64) -> Result<(), StoreError> {
        let mut c = self.conn("migrate").await?;
        let tx = c.transaction().await.map_err(pg("migrate"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg("migrate"))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .map_err(pg("migrate"))?;
        let current: i64 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
            .await
            .map_err(pg("migrate"))?
            .get(0);
        let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if current > known {
            return Err(StoreError::SchemaTooNew {
                found: current,
                known,
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current && *v <= up_to) {
            tx.batch_execute(sql).await.map_err(pg("migrate"))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, extract(epoch from now())::bigint)",
                &[version],
            )
            .await
            .map_err(pg("migrate"))?;
        }
        tx.commit().await.map_err(pg("migrate"))
    }
}

const MACHINE_COLS: &str =
    "machine_id, center_id, name, public_key, status, status_reason, requested_at, updated_at";

fn machine_from(r: &Row) -> Result<MachineRecord, StoreError> {
    Ok(MachineRecord {
        machine_id: parse_id("machine id", r.get::<_, &str>(0))?,
        center_id: parse_id("center id", r.get::<_, &str>(1))?,
        name: r.get(2),
        public_key: key_bytes(r.get(3))?,
        status: parse_machine_status(r.get(4))?,
        status_reason: r.get(5),
        requested_at: r.get(6),
        updated_at: r.get(7),
    })
}

async fn machine_where<C: GenericClient>(
    c: &C,
    clause: &str,
    arg: &(dyn tokio_postgres::types::ToSql + Sync),
) -> Result<Option<MachineRecord>, StoreError> {
    let sql = format!("SELECT {MACHINE_COLS} FROM machines WHERE {clause}");
    c.query_opt(&sql, &[arg])
        .await
        .map_err(pg("read machine"))?
        .as_ref()
        .map(machine_from)
        .transpose()
}

const UPLOAD_COLS: &str = "upload_id, machine_id, rid, length, received, sha256, created_at, completed_at";

fn upload_from(r: &Row) -> Result<UploadRecord, StoreError> {
    Ok(UploadRecord {
        upload_id: r.get(0),
        machine_id: parse_id("machine id", r.get::<_, &str>(1))?,
        rid: parse_id("rid", r.get::<_, &str>(2))?,
        length: to_u64("upload length", r.get(3))?,
        received: to_u64("upload offset", r.get(4))?,
        sha256: r.get(5),
        created_at: r.get(6),
        completed_at: r.get(7),
    })
}

async fn upload_where<C: GenericClient>(
    c: &C,
    clause: &str,
    arg: &str,
) -> Result<Option<UploadRecord>, StoreError> {
    let sql = format!("SELECT {UPLOAD_COLS} FROM uploads WHERE {clause}");
    c.query_opt(&sql, &[&arg])
        .await
        .map_err(pg("read upload"))?
        .as_ref()
        .map(upload_from)
        .transpose()
}

const PACKET_COLS: &str = "rid, machine_id, sha256, size, status, reason, receipt, received_at, updated_at";

fn packet_from(r: &Row) -> Result<PacketRecord, StoreError> {
    Ok(PacketRecord {
        rid: parse_id("rid", r.get::<_, &str>(0))?,
        machine_id: parse_id("machine id", r.get::<_, &str>(1))?,
        sha256: r.get(2),
        size: to_u64("packet size", r.get(3))?,
        status: parse_packet_status(r.get(4))?,
        reason: r.get(5),
        receipt: r.get(6),
        received_at: r.get(7),
        updated_at: r.get(8),
    })
}

async fn packet_where<C: GenericClient>(c: &C, rid: &str) -> Result<Option<PacketRecord>, StoreError> {
    c.query_opt(
        &format!("SELECT {PACKET_COLS} FROM packets WHERE rid = $1"),
        &[&rid],
    )
    .await
    .map_err(pg("read packet"))?
    .as_ref()
    .map(packet_from)
    .transpose()
}

/// Applies one sync-item change inside a transaction that holds the `sync_items` lock; see
/// [`Store::put_sync_item`].
async fn put_item_tx(
    tx: &deadpool_postgres::Transaction<'_>,
    kind: SyncKind,
    scope: &str,
    key: &str,
    body: Option<serde_json::Value>,
) -> Result<Option<i64>, StoreError> {
    let text = body.map(|b| b.to_string());
    let existing = tx
        .query_opt(
            "SELECT deleted, body FROM sync_items WHERE kind = $1 AND scope = $2 AND key = $3",
            &[&kind.as_str(), &scope, &key],
        )
        .await
        .map_err(pg("put sync item"))?
        .map(|r| (r.get::<_, bool>(0), r.get::<_, Option<String>>(1)));
    match (&existing, &text) {
        (None, None) | (Some((true, _)), None) => return Ok(None),
        (Some((false, old)), Some(new)) if old.as_deref() == Some(new.as_str()) => return Ok(None),
        _ => {}
    }
    let version: i64 = tx
        .query_one(
            "INSERT INTO sync_items (kind, scope, key, version, deleted, body)
             VALUES ($1, $2, $3, nextval('sync_version_seq'), $4, $5)
             ON CONFLICT (kind, scope, key) DO UPDATE SET version = excluded.version,
               deleted = excluded.deleted, body = excluded.body
             RETURNING version",
            &[&kind.as_str(), &scope, &key, &text.is_none(), &text],
        )
        .await
        .map_err(pg("put sync item"))?
        .get(0);
    let old = existing.and_then(|(deleted, body)| body.filter(|_| !deleted));
    for change in super::sync_status_changes(kind, key, old.as_deref(), text.as_deref()) {
        record_status(tx, &change, super::now_secs()).await?;
    }
    Ok(Some(version))
}

/// Records a status change in `status_history` unless the item already has that status; an item with no
/// history first gets its previous status since forever (time 0). The caller's transaction serialises
/// changes of sync items (they take the sync-version lock).
async fn record_status(
    tx: &deadpool_postgres::Transaction<'_>,
    c: &super::StatusChange,
    at: i64,
) -> Result<(), StoreError> {
    let op = "record status history";
    let latest: Option<String> = tx
        .query_opt(
            "SELECT status FROM status_history WHERE kind = $1 AND item = $2 ORDER BY from_time DESC, id DESC LIMIT 1",
            &[&c.kind, &c.item],
        )
        .await
        .map_err(pg(op))?
        .map(|r| r.get(0));
    if latest.as_deref() == Some(c.new) {
        return Ok(());
    }
    let insert = "INSERT INTO status_history (kind, item, status, from_time) VALUES ($1, $2, $3, $4)";
    if latest.is_none()
        && let Some(old) = c.old
    {
        tx.execute(insert, &[&c.kind, &c.item, &old, &0i64])
            .await
            .map_err(pg(op))?;
    }
    tx.execute(insert, &[&c.kind, &c.item, &c.new, &at])
        .await
        .map_err(pg(op))?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.conn("ping")
            .await?
            .execute("SELECT 1", &[])
            .await
            .map_err(pg("ping"))
            .map(|_| ())
    }

    async fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn("schema version")
            .await?
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
            .await
            .map_err(pg("schema version"))?
            .get(0))
    }

    async fn enrol_machine(&self, new: NewMachine) -> Result<(MachineRecord, bool), StoreError> {
        let c = self.conn("enrol machine").await?;
        let key = new.public_key.to_vec();
        if let Some(m) = machine_where(&c, "public_key = $1", &key).await? {
            return Ok((m, false));
        }
        let next: i64 = c
            .query_one("SELECT nextval('machine_id_seq')", &[])
            .await
            .map_err(pg("enrol machine"))?
            .get(0);
        let id = MachineId::from_number(u32::try_from(next.max(FIRST_MACHINE_ID)).unwrap_or(u32::MAX))
            .map_err(|_| StoreError::Conflict {
                what: "machine ids",
                detail: "all 99999 machine ids are used".into(),
            })?;
        let inserted = c.execute(
            "INSERT INTO machines (machine_id, center_id, name, public_key, status, status_reason, requested_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $6) ON CONFLICT (public_key) DO NOTHING",
            &[&id.as_str(), &new.center_id.as_str(), &new.name, &key, &MachineStatus::Pending.as_str(), &new.at],
        )
        .await
        .map_err(pg("enrol machine"))?;
        machine_where(&c, "public_key = $1", &key)
            .await?
            .map(|m| (m, inserted == 1))
            .ok_or(StoreError::NotFound {
                what: "machine",
                id: id.to_string(),
            })
    }

    async fn machine(&self, id: &MachineId) -> Result<Option<MachineRecord>, StoreError> {
        let c = self.conn("read machine").await?;
        machine_where(&c, "machine_id = $1", &id.as_str()).await
    }

    async fn list_machines(&self, status: Option<MachineStatus>) -> Result<Vec<MachineRecord>, StoreError> {
        let c = self.conn("list machines").await?;
        let sql = format!(
            "SELECT {MACHINE_COLS} FROM machines WHERE ($1::text IS NULL OR status = $1) ORDER BY machine_id"
        );
        let rows = c
            .query(&sql, &[&status.map(|s| s.as_str())])
            .await
            .map_err(pg("list machines"))?;
        rows.iter().map(machine_from).collect()
    }

    async fn set_machine_status(
        &self,
        id: &MachineId,
        status: MachineStatus,
        reason: Option<String>,
        at: i64,
    ) -> Result<MachineRecord, StoreError> {
        let c = self.conn("set machine status").await?;
        let sql = format!(
            "UPDATE machines SET status = $2, status_reason = $3, updated_at = $4 WHERE machine_id = $1
             RETURNING {MACHINE_COLS}"
        );
        c.query_opt(&sql, &[&id.as_str(), &status.as_str(), &reason, &at])
            .await
            .map_err(pg("set machine status"))?
            .as_ref()
            .map(machine_from)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                what: "machine",
                id: id.to_string(),
            })
    }

    async fn use_nonce(
        &self,
        machine: &MachineId,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let c = self.conn("record nonce").await?;
        c.execute("DELETE FROM request_nonces WHERE expires_at < $1", &[&now])
            .await
            .map_err(pg("purge nonces"))?;
        let n = c
            .execute(
                "INSERT INTO request_nonces (machine_id, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&machine.as_str(), &nonce, &expires_at],
            )
            .await
            .map_err(pg("record nonce"))?;
        Ok(n == 1)
    }

    async fn put_sync_item(
        &self,
        kind: SyncKind,
        scope: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Option<i64>, StoreError> {
        let mut c = self.conn("put sync item").await?;
        let tx = c.transaction().await.map_err(pg("put sync item"))?;
        // Writers take versions in commit order, so a cursor reader never skips a late-committing change.
        tx.batch_execute("LOCK TABLE sync_items IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(pg("put sync item"))?;
        let version = put_item_tx(&tx, kind, scope, key, body).await?;
        tx.commit().await.map_err(pg("put sync item"))?;
        Ok(version)
    }

    async fn sync_items(
        &self,
        kind: SyncKind,
        scope: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<SyncItem>, StoreError> {
        let c = self.conn("sync items").await?;
        let rows = c
            .query(
                "SELECT key, version, deleted, body FROM sync_items
                 WHERE kind = $1 AND scope = $2 AND version > $3 ORDER BY version LIMIT $4",
                &[&kind.as_str(), &scope, &after, &i64::from(limit)],
            )
            .await
            .map_err(pg("sync items"))?;
        rows.iter()
            .map(|r| {
                let deleted: bool = r.get(2);
                Ok(SyncItem {
                    key: r.get(0),
                    version: r.get(1),
                    deleted,
                    body: parse_body(deleted, r.get(3))?,
                })
            })
            .collect()
    }

    async fn create_upload(&self, new: NewUpload) -> Result<UploadRecord, StoreError> {
        let c = self.conn("create upload").await?;
        let inserted = c
            .execute(
                "INSERT INTO uploads (upload_id, machine_id, rid, length, received, sha256, created_at, completed_at)
                 VALUES ($1, $2, $3, $4, 0, $5, $6, NULL) ON CONFLICT (rid) DO NOTHING",
                &[
                    &new.upload_id,
                    &new.machine_id.as_str(),
                    &new.rid.as_str(),
                    &to_i64("length", new.length)?,
                    &new.sha256,
                    &new.at,
                ],
            )
            .await
            .map_err(pg("create upload"))?;
        let existing = upload_where(&c, "rid = $1", new.rid.as_str())
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "upload",
                id: new.upload_id.clone(),
            })?;
        if inserted == 1
            || (existing.machine_id == new.machine_id
                && existing.length == new.length
                && existing.sha256 == new.sha256)
        {
            return Ok(existing);
        }
        Err(StoreError::Conflict {
            what: "upload",
            detail: format!(
                "RID {} is already being uploaded with different content or by another machine",
                new.rid
            ),
        })
    }

    async fn upload(&self, upload_id: &str) -> Result<Option<UploadRecord>, StoreError> {
        let c = self.conn("read upload").await?;
        upload_where(&c, "upload_id = $1", upload_id).await
    }

    async fn advance_upload(&self, upload_id: &str, from: u64, to: u64) -> Result<bool, StoreError> {
        let c = self.conn("advance upload").await?;
        let n = c
            .execute(
                "UPDATE uploads SET received = $3 WHERE upload_id = $1 AND received = $2 AND completed_at IS NULL",
                &[&upload_id, &to_i64("offset", from)?, &to_i64("offset", to)?],
            )
            .await
            .map_err(pg("advance upload"))?;
        Ok(n == 1)
    }

    async fn uploads_since(&self, machine: &MachineId, since: i64) -> Result<u64, StoreError> {
        let c = self.conn("count uploads").await?;
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM uploads WHERE machine_id = $1 AND created_at >= $2",
                &[&machine.as_str(), &since],
            )
            .await
            .map_err(pg("count uploads"))?
            .get(0);
        to_u64("count", n)
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
        let c = self.conn("read packet").await?;
        packet_where(&c, rid.as_str()).await
    }

    async fn add_uins(&self, uins: Vec<PoolUin>) -> Result<u64, StoreError> {
        let mut c = self.conn("add uins").await?;
        let tx = c.transaction().await.map_err(pg("add uins"))?;
        // Wait for allocations in flight and hold new ones back: this statement's snapshot then sees every
        // assignment, so no UIN being assigned right now is added again.
        tx.batch_execute("LOCK TABLE uin_free IN EXCLUSIVE MODE")
            .await
            .map_err(pg("add uins"))?;
        let mut n = 0u64;
        for chunk in uins.chunks(5_000) {
            let (h, sealed): (Vec<&str>, Vec<&[u8]>) = chunk
                .iter()
                .map(|u| (u.uin_hash.as_str(), u.sealed.as_slice()))
                .unzip();
            n += tx
                .execute(
                    "INSERT INTO uin_free (uin_hash, sealed)
                     SELECT x.h, x.s FROM unnest($1::text[], $2::bytea[]) AS x(h, s)
                     WHERE NOT EXISTS (SELECT 1 FROM uin_assigned a WHERE a.uin_hash = x.h)
                     ON CONFLICT DO NOTHING",
                    &[&h, &sealed],
                )
                .await
                .map_err(pg("add uins"))?;
        }
        tx.commit().await.map_err(pg("add uins"))?;
        Ok(n)
    }

    async fn allocate_uins(&self, rids: Vec<Rid>, at: i64) -> Result<Vec<(Rid, PoolUin)>, StoreError> {
        // A concurrent allocation for the same RID loses on the primary key (its transaction, with the entries
        // it took, rolls back); the retry then finds the RID's UIN.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_allocate(&rids, at).await {
                Err(StoreError::Postgres { source, .. }) if is_unique_violation(&source) && attempt < 3 => {
                    continue;
                }
                other => return other,
            }
        }
    }

    async fn uins_available(&self) -> Result<u64, StoreError> {
        let c = self.conn("count uins").await?;
        let n: i64 = c
            .query_one("SELECT count(*) FROM uin_free", &[])
            .await
            .map_err(pg("count uins"))?
            .get(0);
        to_u64("count", n)
    }

    async fn protect_legacy_uins(&self, cipher: Arc<UinCipher>) -> Result<u64, StoreError> {
        let op = "convert the legacy UIN pool";
        let mut c = self.conn(op).await?;
        let tx = c.transaction().await.map_err(pg(op))?;
        // Several processes may start at once: one converts, the others then find nothing to do.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg(op))?;
        let legacy: bool = tx
            .query_one("SELECT to_regclass('uin_pool') IS NOT NULL", &[])
            .await
            .map_err(pg(op))?
            .get(0);
        let converted = convert_legacy_tables(&tx, &cipher).await?;
        if !legacy {
            tx.commit().await.map_err(pg(op))?;
            return Ok(converted);
        }
        let rows = tx
            .query("SELECT uin, rid, allocated_at FROM uin_pool", &[])
            .await
            .map_err(pg(op))?;
        let (mut a_rid, mut a_hash, mut a_sealed, mut a_at) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut f_hash, mut f_sealed) = (Vec::new(), Vec::new());
        for r in &rows {
            let u = cipher
                .seal(r.get::<_, &str>(0))
                .map_err(|e| StoreError::Task(e.to_string()))?;
            match r.get::<_, Option<String>>(1) {
                Some(rid) => {
                    a_rid.push(rid);
                    a_hash.push(u.uin_hash);
                    a_sealed.push(u.sealed);
                    a_at.push(r.get::<_, Option<i64>>(2).unwrap_or(0));
                }
                None => {
                    f_hash.push(u.uin_hash);
                    f_sealed.push(u.sealed);
                }
            }
        }
        tx.execute(
            "INSERT INTO uin_assigned (rid, uin_hash, sealed, assigned_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[]) ON CONFLICT DO NOTHING",
            &[&a_rid, &a_hash, &a_sealed, &a_at],
        )
        .await
        .map_err(pg(op))?;
        tx.execute(
            "INSERT INTO uin_free (uin_hash, sealed)
             SELECT x.h, x.s FROM unnest($1::text[], $2::bytea[]) AS x(h, s)
             WHERE NOT EXISTS (SELECT 1 FROM uin_assigned a WHERE a.uin_hash = x.h)
             ON CONFLICT DO NOTHING",
            &[&f_hash, &f_sealed],
        )
        .await
        .map_err(pg(op))?;
        tx.batch_execute("DROP TABLE uin_pool").await.map_err(pg(op))?;
        tx.commit().await.map_err(pg(op))?;
        Ok(converted + rows.len() as u64)
    }

    async fn claim_job(&self, worker: &str, now: i64, lease_secs: i64) -> Result<Option<Rid>, StoreError> {
        let mut c = self.conn("claim job").await?;
        let tx = c.transaction().await.map_err(pg("claim job"))?;
        // The job's row and its packet's row are locked together, skipping a job whose packet is locked:
        // every other transaction that touches both (finishing, holding, requeueing, an import quarantining
        // the packet) updates the packet first, so a claim that locked the job and then waited for the
        // packet could deadlock with them (seen in CI: "deadlock detected" in `finish job` during a USB
        // import while a worker claimed). A claim never waits here.
        let row = tx
            .query_opt(
                "SELECT j.rid FROM jobs j JOIN packets p ON p.rid = j.rid
                 WHERE j.state = 'ready' AND j.locked_until <= $1
                 ORDER BY j.updated_at LIMIT 1 FOR UPDATE OF j, p SKIP LOCKED",
                &[&now],
            )
            .await
            .map_err(pg("claim job"))?;
        let Some(row) = row else { return Ok(None) };
        let rid: String = row.get(0);
        tx.execute(
            "UPDATE jobs SET locked_by = $2, locked_until = $4, attempts = attempts + 1, updated_at = $3
             WHERE rid = $1",
            &[&rid, &worker, &now, &(now + lease_secs)],
        )
        .await
        .map_err(pg("claim job"))?;
        tx.execute(
            "UPDATE packets SET status = $2, updated_at = $3 WHERE rid = $1",
            &[&rid, &PacketStatus::Processing.as_str(), &now],
        )
        .await
        .map_err(pg("claim job"))?;
        tx.commit().await.map_err(pg("claim job"))?;
        parse_id("rid", &rid).map(Some)
    }

    async fn finish_job(
        &self,
        rid: &Rid,
        status: PacketStatus,
        reason: Option<String>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut c = self.conn("finish job").await?;
        let tx = c.transaction().await.map_err(pg("finish job"))?;
        tx.execute(
            "UPDATE packets SET status = $2, reason = $3, updated_at = $4 WHERE rid = $1",
            &[&rid.as_str(), &status.as_str(), &reason, &now],
        )
        .await
        .map_err(pg("finish job"))?;
        tx.execute(
            "UPDATE jobs SET state = 'done', locked_by = NULL, updated_at = $2 WHERE rid = $1",
            &[&rid.as_str(), &now],
        )
        .await
        .map_err(pg("finish job"))?;
        tx.commit().await.map_err(pg("finish job"))
    }

    async fn register_operator_key(&self, rec: OperatorKeyRecord) -> Result<bool, StoreError> {
        let c = self.conn("register operator key").await?;
        let n = c
            .execute(
                "INSERT INTO operator_keys (operator_id, public_key, machine_id, center_id, registered_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    &rec.operator_id,
                    &rec.public_key.to_vec(),
                    &rec.machine_id.as_str(),
                    &rec.center_id.as_str(),
                    &rec.registered_at,
                ],
            )
            .await
            .map_err(pg("register operator key"))?;
        Ok(n == 1)
    }

    async fn operator_keys(&self, operator_id: &str) -> Result<Vec<OperatorKeyRecord>, StoreError> {
        let c = self.conn("operator keys").await?;
        let rows = c
            .query(
                "SELECT operator_id, public_key, machine_id, center_id, registered_at FROM operator_keys
                 WHERE operator_id = $1 ORDER BY registered_at",
                &[&operator_id],
            )
            .await
            .map_err(pg("operator keys"))?;
        rows.iter()
            .map(|r| {
                Ok(OperatorKeyRecord {
                    operator_id: r.get(0),
                    public_key: key_bytes(r.get(1))?,
                    machine_id: parse_id("machine id", r.get::<_, &str>(2))?,
                    center_id: parse_id("center id", r.get::<_, &str>(3))?,
                    registered_at: r.get(4),
                })
            })
            .collect()
    }

    async fn status_at(&self, kind: &str, item: &str, at: i64) -> Result<Option<String>, StoreError> {
        let c = self.conn("status at").await?;
        Ok(c.query_opt(
            "SELECT status FROM status_history WHERE kind = $1 AND item = $2 AND from_time <= $3
             ORDER BY from_time DESC, id DESC LIMIT 1",
            &[&kind, &item, &at],
        )
        .await
        .map_err(pg("status at"))?
        .map(|r| r.get(0)))
    }

    async fn status_history(&self, kind: &str, item: &str) -> Result<Vec<super::StatusPeriod>, StoreError> {
        let c = self.conn("status history").await?;
        Ok(c
            .query(
                "SELECT status, from_time FROM status_history WHERE kind = $1 AND item = $2 ORDER BY from_time, id",
                &[&kind, &item],
            )
            .await
            .map_err(pg("status history"))?
            .iter()
            .map(|r| super::StatusPeriod {
                status: r.get(0),
                from: r.get(1),
            })
            .collect())
    }

    async fn add_packet_flag(&self, rid: &Rid, flag: &str, at: i64) -> Result<(), StoreError> {
        let c = self.conn("add packet flag").await?;
        c.execute(
            "INSERT INTO packet_events (rid, status, reason, at) SELECT rid, status, $2, $3 FROM packets WHERE rid = $1",
            &[&rid.as_str(), &flag, &at],
        )
        .await
        .map_err(pg("add packet flag"))?;
        Ok(())
    }

    async fn persons_by_blocking_key(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let cipher = need_cipher(&self.uins, "persons")?;
        let c = self.conn("persons by blocking key").await?;
        let rows = c
            .query(
                "SELECT uin_hash, sealed FROM persons WHERE blocking_key = $1",
                &[&key],
            )
            .await
            .map_err(pg("persons by blocking key"))?;
        let mut uins = rows
            .iter()
            .map(|r| {
                cipher.open(&PoolUin {
                    uin_hash: r.get(0),
                    sealed: r.get(1),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        uins.sort();
        Ok(uins)
    }

    async fn person_uins(&self, hashes: Vec<String>) -> Result<Vec<(String, String)>, StoreError> {
        let cipher = need_cipher(&self.uins, "persons")?;
        let c = self.conn("person uins").await?;
        let rows = c
            .query(
                "SELECT p.uin_hash, p.sealed FROM unnest($1::text[]) WITH ORDINALITY AS h(uin_hash, n)
                 JOIN persons p ON p.uin_hash = h.uin_hash ORDER BY h.n",
                &[&hashes],
            )
            .await
            .map_err(pg("person uins"))?;
        rows.iter()
            .map(|r| {
                let u = PoolUin {
                    uin_hash: r.get(0),
                    sealed: r.get(1),
                };
                let uin = cipher.open(&u)?;
                Ok((u.uin_hash, uin))
            })
            .collect()
    }

    async fn gallery_since(&self, after_seq: i64, limit: u32) -> Result<Vec<GalleryRow>, StoreError> {
        let c = self.conn("gallery").await?;
        let rows = c
            .query(
                "SELECT seq, uin_hash, position, template FROM gallery WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after_seq, &i64::from(limit)],
            )
            .await
            .map_err(pg("gallery"))?;
        rows.iter()
            .map(|r| {
                let position: i64 = r.get(2);
                Ok(GalleryRow {
                    seq: r.get(0),
                    uin_hash: r.get(1),
                    position: u8::try_from(position).map_err(|_| StoreError::Corrupt {
                        what: "gallery finger position",
                        detail: position.to_string(),
                    })?,
                    template: r.get(3),
                })
            })
            .collect()
    }

    async fn hold_for_adjudication(
        &self,
        rid: &Rid,
        candidates: Vec<Candidate>,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let cands = seal_candidates(
            &*need_cipher(&self.uins, "adjudication cases")?,
            rid.as_str(),
            &candidates,
        )?;
        let mut c = self.conn("hold for adjudication").await?;
        let tx = c.transaction().await.map_err(pg("hold for adjudication"))?;
        tx.execute(
            "INSERT INTO adjudication_cases (rid, status, candidates, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&rid.as_str(), &case_status::PENDING, &cands, &now],
        )
        .await
        .map_err(pg("hold for adjudication"))?;
        tx.execute(
            "UPDATE packets SET status = $2, reason = $3, updated_at = $4 WHERE rid = $1",
            &[&rid.as_str(), &PacketStatus::OnHold.as_str(), &reason, &now],
        )
        .await
        .map_err(pg("hold for adjudication"))?;
        tx.execute(
            "UPDATE jobs SET state = 'held', locked_by = NULL, updated_at = $2 WHERE rid = $1",
            &[&rid.as_str(), &now],
        )
        .await
        .map_err(pg("hold for adjudication"))?;
        tx.commit().await.map_err(pg("hold for adjudication"))
    }

    async fn adjudication_cases(&self, status: Option<String>) -> Result<Vec<AdjudicationCase>, StoreError> {
        let cipher = need_cipher(&self.uins, "adjudication cases")?;
        let c = self.conn("adjudication cases").await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {CASE_COLS} FROM adjudication_cases WHERE ($1::text IS NULL OR status = $1)
                     ORDER BY created_at, rid"
                ),
                &[&status],
            )
            .await
            .map_err(pg("adjudication cases"))?;
        rows.iter().map(|r| case_from(&cipher, r)).collect()
    }

    async fn adjudication_case(&self, rid: &Rid) -> Result<Option<AdjudicationCase>, StoreError> {
        let cipher = need_cipher(&self.uins, "adjudication cases")?;
        let c = self.conn("read adjudication case").await?;
        case_where(&c, &cipher, rid.as_str(), false).await
    }

    async fn decide_adjudication(
        &self,
        rid: &Rid,
        status: &str,
        duplicate_of: Option<String>,
        decided_by: &str,
        now: i64,
    ) -> Result<AdjudicationCase, StoreError> {
        let cipher = need_cipher(&self.uins, "adjudication cases")?;
        let dup = duplicate_of.as_deref().map(|u| cipher.seal_uin(u)).transpose()?;
        let (dup_hash, dup_sealed) = (dup.as_ref().map(|d| d.uin_hash.clone()), dup.map(|d| d.sealed));
        let mut c = self.conn("decide adjudication").await?;
        let tx = c.transaction().await.map_err(pg("decide adjudication"))?;
        let case = case_where(&tx, &cipher, rid.as_str(), true)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "adjudication case",
                id: rid.to_string(),
            })?;
        if case.status != case_status::PENDING {
            return Err(StoreError::Conflict {
                what: "adjudication case",
                detail: format!("packet {rid} was already decided ({})", case.status),
            });
        }
        tx.execute(
            "UPDATE adjudication_cases SET status = $2, decided_at = $3, decided_by = $4,
             duplicate_of_hash = $5, duplicate_of = $6 WHERE rid = $1",
            &[&rid.as_str(), &status, &now, &decided_by, &dup_hash, &dup_sealed],
        )
        .await
        .map_err(pg("decide adjudication"))?;
        tx.execute(
            "UPDATE jobs SET state = 'ready', locked_by = NULL, locked_until = 0, updated_at = $2 WHERE rid = $1",
            &[&rid.as_str(), &now],
        )
        .await
        .map_err(pg("decide adjudication"))?;
        tx.execute(
            "UPDATE packets SET status = $2, reason = NULL, updated_at = $3 WHERE rid = $1",
            &[&rid.as_str(), &PacketStatus::Received.as_str(), &now],
        )
        .await
        .map_err(pg("decide adjudication"))?;
        let case = case_where(&tx, &cipher, rid.as_str(), false)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "adjudication case",
                id: rid.to_string(),
            })?;
        tx.commit().await.map_err(pg("decide adjudication"))?;
        Ok(case)
    }

    async fn store_identity(&self, new: NewIdentity) -> Result<(), StoreError> {
        let person = need_cipher(&self.uins, "persons")?.seal_uin(&new.uin)?;
        if person.uin_hash != new.uin_hash {
            return Err(StoreError::Conflict {
                what: "identity",
                detail: "the UIN hash is not the hash of the UIN under this data directory's salt".into(),
            });
        }
        let mut c = self.conn("store identity").await?;
        let tx = c.transaction().await.map_err(pg("store identity"))?;
        let rid = new.rid.as_str();
        // Gallery sequence numbers must become visible in order (readers load incrementally by seq).
        tx.batch_execute("LOCK TABLE gallery IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(pg("store identity"))?;
        tx.execute(
            "INSERT INTO identities (uin_hash, rid, key_id, wrapped_key, ciphertext, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &new.uin_hash,
                &rid,
                &new.key_id,
                &new.wrapped_key,
                &new.ciphertext,
                &new.at,
            ],
        )
        .await
        .map_err(pg("store identity"))?;
        tx.execute(
            "INSERT INTO persons (uin_hash, sealed, blocking_key, rid) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&person.uin_hash, &person.sealed, &new.blocking_key, &rid],
        )
        .await
        .map_err(pg("store identity"))?;
        for (pos, t) in &new.templates {
            tx.execute(
                "INSERT INTO gallery (uin_hash, position, template) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&new.uin_hash, &i64::from(*pos), t],
            )
            .await
            .map_err(pg("store identity"))?;
        }
        tx.commit().await.map_err(pg("store identity"))
    }

    async fn update_identity(&self, upd: NewIdentity) -> Result<bool, StoreError> {
        let mut c = self.conn("update identity").await?;
        let tx = c.transaction().await.map_err(pg("update identity"))?;
        // Gallery sequence numbers must become visible in order (readers load incrementally by seq).
        tx.batch_execute("LOCK TABLE gallery IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(pg("update identity"))?;
        let n = tx
            .execute(
                "UPDATE identities SET key_id = $2, wrapped_key = $3, ciphertext = $4 WHERE uin_hash = $1",
                &[&upd.uin_hash, &upd.key_id, &upd.wrapped_key, &upd.ciphertext],
            )
            .await
            .map_err(pg("update identity"))?;
        if n == 0 {
            return Ok(false);
        }
        tx.execute(
            "UPDATE persons SET blocking_key = $2 WHERE uin_hash = $1",
            &[&upd.uin_hash, &upd.blocking_key],
        )
        .await
        .map_err(pg("update identity"))?;
        if !upd.templates.is_empty() {
            tx.execute("DELETE FROM gallery WHERE uin_hash = $1", &[&upd.uin_hash])
                .await
                .map_err(pg("update identity"))?;
            for (pos, t) in &upd.templates {
                tx.execute(
                    "INSERT INTO gallery (uin_hash, position, template) VALUES ($1, $2, $3)",
                    &[&upd.uin_hash, &i64::from(*pos), t],
                )
                .await
                .map_err(pg("update identity"))?;
            }
        }
        tx.commit().await.map_err(pg("update identity"))?;
        Ok(true)
    }

    async fn store_credential(
        &self,
        rid: &Rid,
        uin: &str,
        credential: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let cipher = need_cipher(&self.uins, "credentials")?;
        let u = cipher.seal_uin(uin)?;
        let body = seal_credential(&cipher, rid.as_str(), credential)?;
        let mut c = self.conn("store credential").await?;
        let tx = c.transaction().await.map_err(pg("store credential"))?;
        tx.execute(
            "INSERT INTO credentials (rid, uin_hash, sealed_uin, body, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
            &[&rid.as_str(), &u.uin_hash, &u.sealed, &body, &now],
        )
        .await
        .map_err(pg("store credential"))?;
        tx.execute(
            "UPDATE packets SET status = $2, reason = NULL, updated_at = $3 WHERE rid = $1",
            &[&rid.as_str(), &PacketStatus::Processed.as_str(), &now],
        )
        .await
        .map_err(pg("store credential"))?;
        tx.execute(
            "UPDATE jobs SET state = 'done', locked_by = NULL, updated_at = $2 WHERE rid = $1",
            &[&rid.as_str(), &now],
        )
        .await
        .map_err(pg("store credential"))?;
        tx.commit().await.map_err(pg("store credential"))
    }

    async fn identity(&self, lookup: IdentityLookup) -> Result<Option<IdentityRecord>, StoreError> {
        let c = self.conn("read identity").await?;
        let (clause, arg) = match &lookup {
            IdentityLookup::UinHash(h) => ("uin_hash = $1", h.clone()),
            IdentityLookup::Rid(r) => ("rid = $1", r.as_str().to_owned()),
        };
        let row = c
            .query_opt(
                &format!(
                    "SELECT rid, uin_hash, key_id, wrapped_key, ciphertext, created_at FROM identities WHERE {clause}"
                ),
                &[&arg],
            )
            .await
            .map_err(pg("read identity"))?;
        row.map(|r| {
            Ok(IdentityRecord {
                rid: parse_id("rid", r.get::<_, &str>(0))?,
                uin_hash: r.get(1),
                key_id: r.get(2),
                wrapped_key: r.get(3),
                ciphertext: r.get(4),
                created_at: r.get(5),
            })
        })
        .transpose()
    }

    async fn credential(&self, rid: &Rid) -> Result<Option<(String, String)>, StoreError> {
        let cipher = need_cipher(&self.uins, "credentials")?;
        let c = self.conn("read credential").await?;
        c.query_opt(
            "SELECT uin_hash, sealed_uin, body FROM credentials WHERE rid = $1",
            &[&rid.as_str()],
        )
        .await
        .map_err(pg("read credential"))?
        .map(|r| {
            let uin = cipher.open(&PoolUin {
                uin_hash: r.get(0),
                sealed: r.get(1),
            })?;
            Ok((uin, open_credential(&cipher, rid.as_str(), r.get::<_, &[u8]>(2))?))
        })
        .transpose()
    }

    async fn enqueue_notification(&self, n: NewNotification) -> Result<(), StoreError> {
        let c = self.conn("enqueue notification").await?;
        c.execute(
            "INSERT INTO outbox (rid, kind, payload, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&n.rid.as_str(), &n.kind, &n.payload, &n.at],
        )
        .await
        .map_err(pg("enqueue notification"))?;
        Ok(())
    }

    async fn claim_notification(
        &self,
        worker: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let _ = worker;
        let c = self.conn("claim notification").await?;
        let row = c
            .query_opt(
                "UPDATE outbox SET attempts = attempts + 1, locked_until = $2 WHERE id = (
                   SELECT id FROM outbox WHERE sent_at IS NULL AND locked_until <= $1
                   ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
                 ) RETURNING id, rid, kind, payload, attempts",
                &[&now, &(now + lease_secs)],
            )
            .await
            .map_err(pg("claim notification"))?;
        row.map(|r| {
            Ok(NotificationRecord {
                id: r.get(0),
                rid: parse_id("rid", r.get::<_, &str>(1))?,
                kind: r.get(2),
                payload: r.get(3),
                attempts: r.get(4),
            })
        })
        .transpose()
    }

    async fn notification_sent(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let c = self.conn("notification sent").await?;
        c.execute("UPDATE outbox SET sent_at = $2 WHERE id = $1", &[&id, &now])
            .await
            .map_err(pg("notification sent"))?;
        Ok(())
    }

    async fn identity_keys_to_rewrap(
        &self,
        current_key_id: &str,
        limit: u32,
    ) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        let c = self.conn("keys to rewrap").await?;
        let rows = c
            .query(
                "SELECT uin_hash, key_id, wrapped_key FROM identities WHERE key_id <> $1 ORDER BY uin_hash LIMIT $2",
                &[&current_key_id, &i64::from(limit)],
            )
            .await
            .map_err(pg("keys to rewrap"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    async fn rewrap_identity_key(
        &self,
        uin_hash: &str,
        old_key_id: &str,
        new_key_id: &str,
        wrapped_key: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let c = self.conn("rewrap identity key").await?;
        let n = c
            .execute(
                "UPDATE identities SET key_id = $3, wrapped_key = $4 WHERE uin_hash = $1 AND key_id = $2",
                &[&uin_hash, &old_key_id, &new_key_id, &wrapped_key],
            )
            .await
            .map_err(pg("rewrap identity key"))?;
        Ok(n == 1)
    }

    async fn put_sync_items(&self, changes: Vec<SyncChange>) -> Result<Vec<Option<i64>>, StoreError> {
        let mut c = self.conn("put sync items").await?;
        let tx = c.transaction().await.map_err(pg("put sync items"))?;
        tx.batch_execute("LOCK TABLE sync_items IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(pg("put sync items"))?;
        let mut out = Vec::with_capacity(changes.len());
        for ch in changes {
            out.push(put_item_tx(&tx, ch.kind, &ch.scope, &ch.key, ch.body).await?);
        }
        tx.commit().await.map_err(pg("put sync items"))?;
        Ok(out)
    }

    async fn current_sync_items(&self, kind: SyncKind) -> Result<Vec<ScopedSyncItem>, StoreError> {
        let c = self.conn("current sync items").await?;
        let rows = c
            .query(
                "SELECT scope, key, version, body FROM sync_items
                 WHERE kind = $1 AND NOT deleted ORDER BY scope, key",
                &[&kind.as_str()],
            )
            .await
            .map_err(pg("current sync items"))?;
        rows.iter()
            .map(|r| {
                Ok(ScopedSyncItem {
                    scope: r.get(0),
                    item: SyncItem {
                        key: r.get(1),
                        version: r.get(2),
                        deleted: false,
                        body: parse_body(false, r.get(3))?,
                    },
                })
            })
            .collect()
    }

    async fn packets_by_status(
        &self,
        status: Option<PacketStatus>,
        limit: u32,
    ) -> Result<Vec<PacketRecord>, StoreError> {
        let c = self.conn("list packets").await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {PACKET_COLS} FROM packets WHERE ($1::text IS NULL OR status = $1)
                     ORDER BY updated_at, rid LIMIT $2"
                ),
                &[&status.map(PacketStatus::as_str), &i64::from(limit)],
            )
            .await
            .map_err(pg("list packets"))?;
        rows.iter().map(packet_from).collect()
    }

    async fn packet_history(&self, rid: &Rid) -> Result<Vec<PacketEvent>, StoreError> {
        let c = self.conn("packet history").await?;
        let rows = c
            .query(
                "SELECT status, reason, at FROM packet_events WHERE rid = $1 ORDER BY id",
                &[&rid.as_str()],
            )
            .await
            .map_err(pg("packet history"))?;
        rows.iter()
            .map(|r| {
                Ok(PacketEvent {
                    status: parse_packet_status(r.get(0))?,
                    reason: r.get(1),
                    at: r.get(2),
                })
            })
            .collect()
    }

    async fn requeue_packet(&self, rid: &Rid, from: PacketStatus, now: i64) -> Result<bool, StoreError> {
        let mut c = self.conn("requeue packet").await?;
        let tx = c.transaction().await.map_err(pg("requeue packet"))?;
        let current: Option<String> = tx
            .query_opt(
                "SELECT status FROM packets WHERE rid = $1 FOR UPDATE",
                &[&rid.as_str()],
            )
            .await
            .map_err(pg("requeue packet"))?
            .map(|r| r.get(0));
        let Some(current) = current else {
            return Err(StoreError::NotFound {
                what: "packet",
                id: rid.to_string(),
            });
        };
        if parse_packet_status(&current)? != from {
            return Ok(false);
        }
        tx.execute(
            "UPDATE packets SET status = $2, reason = NULL, updated_at = $3 WHERE rid = $1",
            &[&rid.as_str(), &PacketStatus::Received.as_str(), &now],
        )
        .await
        .map_err(pg("requeue packet"))?;
        tx.execute(
            "INSERT INTO jobs (rid, state, attempts, locked_by, locked_until, updated_at)
             VALUES ($1, 'ready', 0, NULL, 0, $2)
             ON CONFLICT (rid) DO UPDATE SET state = 'ready', locked_by = NULL, locked_until = 0,
               updated_at = excluded.updated_at",
            &[&rid.as_str(), &now],
        )
        .await
        .map_err(pg("requeue packet"))?;
        tx.commit().await.map_err(pg("requeue packet"))?;
        Ok(true)
    }

    async fn notification_retry_at(&self, id: i64, at: i64) -> Result<(), StoreError> {
        let c = self.conn("notification retry").await?;
        c.execute(
            "UPDATE outbox SET locked_until = $2 WHERE id = $1 AND sent_at IS NULL",
            &[&id, &at],
        )
        .await
        .map_err(pg("notification retry"))?;
        Ok(())
    }
}

/// Converts the tables migration 6 renamed `legacy_*` (UINs in clear) into the new ones (UIN hash, sealed UIN)
/// and drops them; returns the rows converted (0 when there is nothing to convert).
async fn convert_legacy_tables(
    tx: &deadpool_postgres::Transaction<'_>,
    cipher: &UinCipher,
) -> Result<u64, StoreError> {
    let op = "convert tables holding UINs in clear";
    let exists = |name: &'static str| async move {
        tx.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await
            .map(|r| r.get::<_, bool>(0))
            .map_err(pg(op))
    };
    let mut n = 0u64;
    if exists("legacy_persons").await? {
        let rows = tx
            .query("SELECT uin, blocking_key, rid FROM legacy_persons", &[])
            .await
            .map_err(pg(op))?;
        let (mut h, mut s, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in &rows {
            let u = cipher.seal_uin(row.get::<_, &str>(0))?;
            h.push(u.uin_hash);
            s.push(u.sealed);
            b.push(row.get::<_, String>(1));
            r.push(row.get::<_, String>(2));
        }
        tx.execute(
            "INSERT INTO persons (uin_hash, sealed, blocking_key, rid)
             SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
            &[&h, &s, &b, &r],
        )
        .await
        .map_err(pg(op))?;
        tx.batch_execute("DROP TABLE legacy_persons")
            .await
            .map_err(pg(op))?;
        n += rows.len() as u64;
    }
    if exists("legacy_gallery").await? {
        let rows = tx
            .query(
                "SELECT seq, uin, position, template FROM legacy_gallery ORDER BY seq",
                &[],
            )
            .await
            .map_err(pg(op))?;
        for row in &rows {
            // Sequence numbers are kept (gallery loaders' cursors); the sequence itself moved to the new table.
            tx.execute(
                "INSERT INTO gallery (seq, uin_hash, position, template) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[
                    &row.get::<_, i64>(0),
                    &cipher.hash(row.get::<_, &str>(1)),
                    &row.get::<_, i64>(2),
                    &row.get::<_, Vec<u8>>(3),
                ],
            )
            .await
            .map_err(pg(op))?;
        }
        tx.batch_execute("DROP TABLE legacy_gallery")
            .await
            .map_err(pg(op))?;
        n += rows.len() as u64;
    }
    if exists("legacy_credentials").await? {
        let rows = tx
            .query("SELECT rid, uin, body, created_at FROM legacy_credentials", &[])
            .await
            .map_err(pg(op))?;
        for row in &rows {
            let rid: &str = row.get(0);
            let u = cipher.seal_uin(row.get::<_, &str>(1))?;
            let body = seal_credential(cipher, rid, row.get::<_, &str>(2))?;
            tx.execute(
                "INSERT INTO credentials (rid, uin_hash, sealed_uin, body, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT DO NOTHING",
                &[&rid, &u.uin_hash, &u.sealed, &body, &row.get::<_, i64>(3)],
            )
            .await
            .map_err(pg(op))?;
        }
        tx.batch_execute("DROP TABLE legacy_credentials")
            .await
            .map_err(pg(op))?;
        n += rows.len() as u64;
    }
    if exists("legacy_adjudication_cases").await? {
        let rows = tx
            .query(
                "SELECT rid, status, candidates, created_at, decided_at, decided_by, duplicate_of
                 FROM legacy_adjudication_cases",
                &[],
            )
            .await
            .map_err(pg(op))?;
        for row in &rows {
            let rid: &str = row.get(0);
            let cands = seal_candidates(cipher, rid, &parse_candidates(row.get::<_, &str>(2))?)?;
            let dup = row
                .get::<_, Option<&str>>(6)
                .map(|u| cipher.seal_uin(u))
                .transpose()?;
            tx.execute(
                "INSERT INTO adjudication_cases (rid, status, candidates, created_at, decided_at, decided_by,
                 duplicate_of_hash, duplicate_of) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                &[
                    &rid,
                    &row.get::<_, &str>(1),
                    &cands,
                    &row.get::<_, i64>(3),
                    &row.get::<_, Option<i64>>(4),
                    &row.get::<_, Option<&str>>(5),
                    &dup.as_ref().map(|d| d.uin_hash.clone()),
                    &dup.map(|d| d.sealed),
                ],
            )
            .await
            .map_err(pg(op))?;
        }
        tx.batch_execute("DROP TABLE legacy_adjudication_cases")
            .await
            .map_err(pg(op))?;
        n += rows.len() as u64;
    }
    Ok(n)
}

const CASE_COLS: &str =
    "rid, status, candidates, created_at, decided_at, decided_by, duplicate_of_hash, duplicate_of";

fn case_from(cipher: &UinCipher, r: &Row) -> Result<AdjudicationCase, StoreError> {
    let rid: &str = r.get(0);
    Ok(AdjudicationCase {
        rid: parse_id("rid", rid)?,
        status: r.get(1),
        candidates: open_candidates(cipher, rid, r.get::<_, &[u8]>(2))?,
        created_at: r.get(3),
        decided_at: r.get(4),
        decided_by: r.get(5),
        duplicate_of: open_opt_uin(cipher, r.get(6), r.get(7))?,
    })
}

async fn case_where<C: GenericClient>(
    c: &C,
    cipher: &UinCipher,
    rid: &str,
    for_update: bool,
) -> Result<Option<AdjudicationCase>, StoreError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    c.query_opt(
        &format!("SELECT {CASE_COLS} FROM adjudication_cases WHERE rid = $1{lock}"),
        &[&rid],
    )
    .await
    .map_err(pg("read adjudication case"))?
    .as_ref()
    .map(|r| case_from(cipher, r))
    .transpose()
}

impl PgStore {
    async fn complete(
        &self,
        upload_id: &str,
        from: Option<u64>,
        receipt: &str,
        at: i64,
    ) -> Result<PacketRecord, StoreError> {
        let mut c = self.conn("complete upload").await?;
        let tx = c.transaction().await.map_err(pg("complete upload"))?;
        let mut up = upload_where(&tx, "upload_id = $1 FOR UPDATE", upload_id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "upload",
                id: upload_id.to_owned(),
            })?;
        if let Some(p) = packet_where(&tx, up.rid.as_str()).await? {
            return Ok(p);
        }
        if let Some(from) = from {
            if up.received != from {
                return Err(StoreError::Conflict {
                    what: "upload",
                    detail: format!("upload {upload_id} is at byte {}, not {from}", up.received),
                });
            }
            up.received = up.length;
        }
        if up.received != up.length {
            return Err(StoreError::Conflict {
                what: "upload",
                detail: format!("upload {upload_id} has {} of {} bytes", up.received, up.length),
            });
        }
        tx.execute(
            "UPDATE uploads SET completed_at = $2, received = length WHERE upload_id = $1",
            &[&upload_id, &at],
        )
        .await
        .map_err(pg("complete upload"))?;
        tx.execute(
            "INSERT INTO packets (rid, machine_id, sha256, size, status, reason, receipt, received_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $7)",
            &[
                &up.rid.as_str(),
                &up.machine_id.as_str(),
                &up.sha256,
                &to_i64("size", up.length)?,
                &PacketStatus::Received.as_str(),
                &receipt,
                &at,
            ],
        )
        .await
        .map_err(pg("complete upload"))?;
        tx.execute(
            "INSERT INTO jobs (rid, state, attempts, locked_by, locked_until, updated_at)
             VALUES ($1, 'ready', 0, NULL, 0, $2) ON CONFLICT DO NOTHING",
            &[&up.rid.as_str(), &at],
        )
        .await
        .map_err(pg("enqueue job"))?;
        let p = packet_where(&tx, up.rid.as_str())
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "packet",
                id: up.rid.to_string(),
            })?;
        tx.commit().await.map_err(pg("complete upload"))?;
        Ok(p)
    }
}

impl PgStore {
    async fn try_allocate(&self, rids: &[Rid], at: i64) -> Result<Vec<(Rid, PoolUin)>, StoreError> {
        let op = "allocate uins";
        let start = super::sqlite::random_start()?;
        let mut c = self.conn(op).await?;
        // Prepared once per connection (no parse and plan per batch).
        let existing = c
            .prepare_cached("SELECT rid, uin_hash, sealed FROM uin_assigned WHERE rid = ANY($1)")
            .await
            .map_err(pg(op))?;
        // One statement takes free entries and assigns them to the RIDs in order: the entries never travel to
        // the client and back. `ARRAY(...)` makes the planner take the few keys first and delete them by
        // index, never a join over the whole free table; `SKIP LOCKED` lets concurrent allocators take
        // disjoint entries. Fewer entries than RIDs (the end of the hash order, or entries locked by others):
        // the RIDs left over get none here and are given entries from the other side of the start.
        let mut take = Vec::with_capacity(2);
        for cmp in [">=", "<"] {
            take.push(
                c.prepare_cached(&format!(
                    "WITH taken AS (
                       DELETE FROM uin_free WHERE uin_hash = ANY(ARRAY(
                         SELECT uin_hash FROM uin_free WHERE uin_hash {cmp} $1 ORDER BY uin_hash
                         LIMIT cardinality($2::text[]) FOR UPDATE SKIP LOCKED))
                       RETURNING uin_hash, sealed),
                     numbered AS (SELECT uin_hash, sealed, row_number() OVER () AS k FROM taken),
                     wanted AS (SELECT r, k FROM unnest($2::text[]) WITH ORDINALITY AS x(r, k))
                     INSERT INTO uin_assigned (rid, uin_hash, sealed, assigned_at)
                     SELECT w.r, n.uin_hash, n.sealed, $3 FROM numbered n JOIN wanted w ON w.k = n.k
                     RETURNING rid, uin_hash, sealed"
                ))
                .await
                .map_err(pg(op))?,
            );
        }
        let tx = c.transaction().await.map_err(pg(op))?;
        let mut seen = HashSet::with_capacity(rids.len());
        let distinct: Vec<&str> = rids.iter().map(Rid::as_str).filter(|r| seen.insert(*r)).collect();
        let entry = |r: &Row| {
            (
                r.get::<_, String>(0),
                PoolUin {
                    uin_hash: r.get(1),
                    sealed: r.get(2),
                },
            )
        };
        let mut given: HashMap<String, PoolUin> = tx
            .query(&existing, &[&distinct])
            .await
            .map_err(pg(op))?
            .iter()
            .map(entry)
            .collect();
        let mut missing: Vec<&str> = distinct.into_iter().filter(|r| !given.contains_key(*r)).collect();
        for stmt in &take {
            if missing.is_empty() {
                break;
            }
            let rows = tx.query(stmt, &[&start, &missing, &at]).await.map_err(pg(op))?;
            for r in &rows {
                let (rid, u) = entry(r);
                given.insert(rid, u);
            }
            missing.retain(|r| !given.contains_key(*r));
        }
        if !missing.is_empty() {
            return Err(StoreError::PoolEmpty);
        }
        tx.commit().await.map_err(pg(op))?;
        rids.iter()
            .map(|rid| {
                let u = given.get(rid.as_str()).cloned().ok_or(StoreError::PoolEmpty)?;
                Ok((rid.clone(), u))
            })
            .collect()
    }
}
