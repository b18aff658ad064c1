//! The station: an unlocked store, its validated master data, the machine identity and the logged-in
//! operator's session. Every command runs against a [`Station`].

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::SigningKey;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tessera_packet::clock::Clock;
use tessera_packet::ids::{CenterId, MachineId};
use tracing::{info, instrument};
use zeroize::Zeroizing;

use crate::audit;
use crate::crypto::{self, KdfParams};
use crate::error::{FreezeReason, Result, StationError};
use crate::masterdata::{Document, MasterData};
use crate::operators::{self, Operator, OperatorBundle, Role};
use crate::store::keyslots::{LoginPolicy, OperatorSlot, RecoverySlot, SlotFile};
use crate::store::{Store, StorePaths};

/// Returns the free bytes on the disk holding a path (`None` when unknown).
pub type FreeDiskProbe = Box<dyn Fn(&Path) -> Option<u64> + Send>;

/// What `init` needs.
#[derive(Debug)]
pub struct InitParams<'a> {
    /// Station home directory (created if missing).
    pub home: &'a Path,
    /// The station's center.
    pub center_id: CenterId,
    /// The station's machine id.
    pub machine_id: MachineId,
    /// The server's recovery public key (`age1...`).
    pub recovery_recipient: &'a str,
    /// Master data (the country configuration).
    pub master_data: Vec<Document>,
    /// Operators (from sync or a local bundle).
    pub operators: OperatorBundle,
    /// The server's packet-recipient public keys (`age1...`), until key sync delivers them.
    pub packet_recipients: Vec<String>,
    /// The operator initialising the station (gets the first key slot).
    pub operator_id: &'a str,
    /// That operator's password.
    pub password: &'a str,
    /// Argon2id parameters for key slots.
    pub kdf: KdfParams,
}

/// The logged-in operator.
pub struct Session {
    /// The operator.
    pub operator: Operator,
    /// Their signing key (unlocked by their password).
    pub signing_key: SigningKey,
    /// Login time.
    pub login_at: DateTime<Utc>,
    /// Last activity.
    pub last_activity: DateTime<Utc>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("operator", &self.operator.id)
            .field("login_at", &self.login_at)
            .field("last_activity", &self.last_activity)
            .finish_non_exhaustive()
    }
}

/// Machine identity for enrolment with the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineIdentity {
    /// Center.
    pub center_id: String,
    /// Machine id.
    pub machine_id: String,
    /// Ed25519 public key (hex).
    pub public_key: String,
    /// Fingerprint to read out to the administrator.
    pub fingerprint: String,
}

/// An open station.
pub struct Station {
    pub(crate) store: Store,
    pub(crate) master: MasterData,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) center_id: CenterId,
    pub(crate) machine_id: MachineId,
    pub(crate) machine_key: SigningKey,
    pub(crate) session: Option<Session>,
    pub(crate) kdf: KdfParams,
    pub(crate) db_key: Zeroizing<[u8; 32]>,
    pub(crate) last_recovery: crate::workflow::RecoveryReport,
    /// Free-disk probe (replaceable in tests to simulate a full disk).
    pub(crate) free_disk: FreeDiskProbe,
    /// Stops the running STREAM preview (captures and logout do).
    pub(crate) previews: crate::preview::PreviewControl,
}

impl std::fmt::Debug for Station {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Station")
            .field("home", &self.store.paths().home)
            .field("center_id", &self.center_id)
            .field("machine_id", &self.machine_id)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

fn policy_of(md: &MasterData) -> LoginPolicy {
    LoginPolicy {
        max_failed_attempts: md.settings.login.max_failed_attempts.max(1),
        lockout_seconds: md.settings.login.lockout_minutes.saturating_mul(60),
    }
}

fn check_operator(op: Option<Operator>, id: &str, center: &CenterId) -> Result<Operator> {
    let op = op.ok_or_else(|| StationError::UnknownOperator { operator: id.into() })?;
    if !op.active {
        return Err(StationError::OperatorInactive { operator: id.into() });
    }
    if op.center_id != center.as_str() {
        return Err(StationError::WrongCenter {
            operator: id.into(),
            operator_center: op.center_id.clone(),
            station_center: center.to_string(),
        });
    }
    Ok(op)
}

impl Station {
    /// Creates a new station: database key, recovery slot, the first operator's slot, machine key, master
    /// data and operators. Crash-safe: the database only appears under its final name once complete.
    #[instrument(skip_all, fields(center = %p.center_id, machine = %p.machine_id))]
    pub fn init(p: InitParams<'_>, clock: Arc<dyn Clock>) -> Result<(Self, MachineIdentity)> {
        Self::init_inner(p, clock, None)
    }

    /// [`Station::init`] from a station set-up kit ([`crate::kit`]): the kit's items are also stored as
    /// synced items with their cursors and its server key is pinned, in the same transaction.
    #[instrument(skip_all, fields(center = %p.center_id, machine = %p.machine_id))]
    pub(crate) fn init_from_kit(
        p: InitParams<'_>,
        clock: Arc<dyn Clock>,
        kit: &tessera_packet::wire::kit::StationKit,
        kit_sha256: &str,
    ) -> Result<(Self, MachineIdentity)> {
        Self::init_inner(p, clock, Some((kit, kit_sha256)))
    }

    fn init_inner(
        p: InitParams<'_>,
        clock: Arc<dyn Clock>,
        kit: Option<(&tessera_packet::wire::kit::StationKit, &str)>,
    ) -> Result<(Self, MachineIdentity)> {
        let paths = StorePaths::new(p.home);
        std::fs::create_dir_all(p.home).map_err(StationError::io("creating the station home", p.home))?;
        if paths.db.exists() {
            return Err(StationError::AlreadyInitialised { home: paths.home });
        }
        let master = MasterData::from_documents(&p.master_data)?;
        if !master
            .centers
            .centers
            .iter()
            .any(|c| c.id == p.center_id.as_str() && c.active)
        {
            return Err(StationError::ConfigInvalid {
                file: "centers".into(),
                detail: format!(
                    "center {} is not an active center of the master data",
                    p.center_id
                ),
            });
        }
        let op = check_operator(
            p.operators.get(p.operator_id).cloned(),
            p.operator_id,
            &p.center_id,
        )?;
        if !op.password_matches(p.password) {
            return Err(StationError::WrongPassword {
                operator: op.id,
                attempts_left: 0,
            });
        }
        let now = clock.now();
        let db_key: Zeroizing<[u8; 32]> = Zeroizing::new(crypto::random()?);
        let machine_seed: Zeroizing<[u8; 32]> = Zeroizing::new(crypto::random()?);
        let op_seed: Zeroizing<[u8; 32]> = Zeroizing::new(crypto::random()?);
        let op_key = SigningKey::from_bytes(&op_seed);

        // Build the database under a temporary name, then rename it into place.
        let tmp_paths = StorePaths {
            db: p.home.join("station.db.init"),
            ..paths.clone()
        };
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let f = p.home.join(format!("station.db.init{suffix}"));
            if f.exists() {
                std::fs::remove_file(&f)
                    .map_err(StationError::io("removing a half-initialised store", &f))?;
            }
        }
        {
            let mut store = Store::create(&tmp_paths, &db_key)?;
            store.tx(|tx| {
                tx.execute(
                    "INSERT INTO station (id, center_id, machine_id, machine_key, created_at) VALUES (1, ?1, ?2, ?3, ?4)",
                    params![p.center_id.as_str(), p.machine_id.as_str(), machine_seed.as_slice(), now.to_rfc3339()],
                )
                .map_err(StationError::db("recording the station identity"))?;
                for d in &p.master_data {
                    tx.execute(
                        "INSERT INTO master_data (name, version, body, updated_at) VALUES (?1, ?2, ?3, ?4)",
                        params![d.name, d.version, d.body, now.to_rfc3339()],
                    )
                    .map_err(StationError::db("storing master data"))?;
                }
                operators::store_bundle(tx, &p.operators, now)?;
                crate::workflow::store_recipients(tx, &p.packet_recipients, now)?;
                operators::set_public_key(tx, &op.id, &hex::encode(op_key.verifying_key().as_bytes()))?;
                if let Some((kit, sha)) = kit {
                    crate::kit::store_seed(tx, kit, sha, now)?;
                }
                let detail = kit.map(|(_, sha)| format!("kit={sha}")).unwrap_or_default();
                audit::append(tx, now, &op.id, "STATION_INIT", p.machine_id.as_str(), &detail)?;
                Ok(())
            })?;
            store
                .conn()
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(StationError::db("checkpointing"))?;
        }
        let mut slots = SlotFile::new(
            RecoverySlot::create(p.recovery_recipient, &db_key)?,
            policy_of(&master),
        );
        slots.put_operator(OperatorSlot::create(&op.id, p.password, &db_key, &op_key, p.kdf)?);
        slots.save(&paths.slots)?;
        for suffix in ["-wal", "-shm"] {
            let f = p.home.join(format!("station.db.init{suffix}"));
            if f.exists() {
                std::fs::remove_file(&f).map_err(StationError::io("removing a checkpointed journal", &f))?;
            }
        }
        std::fs::rename(&tmp_paths.db, &paths.db)
            .map_err(StationError::io("moving the new store into place", &paths.db))?;
        crypto::sync_dir(p.home)?;
        info!("station initialised");
        let store = Store::open(&paths, &db_key, &op.id)?;
        let mut station = Self::assemble(store, db_key, clock, p.kdf)?;
        station.session = Some(Session {
            operator: op,
            signing_key: op_key,
            login_at: now,
            last_activity: now,
        });
        let id = station.machine_identity();
        Ok((station, id))
    }

    fn assemble(
        store: Store,
        db_key: Zeroizing<[u8; 32]>,
        clock: Arc<dyn Clock>,
        kdf: KdfParams,
    ) -> Result<Self> {
        let (center, machine, seed): (String, String, Vec<u8>) = store
            .conn()
            .query_row(
                "SELECT center_id, machine_id, machine_key FROM station WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(StationError::db("reading the station identity"))?;
        let seed = Zeroizing::new(seed);
        let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| StationError::Crypto {
            context: "loading the machine key",
            detail: "stored machine key has the wrong length".into(),
        })?;
        let master = Self::load_master(&store)?;
        Ok(Self {
            center_id: center.parse()?,
            machine_id: machine.parse()?,
            machine_key: SigningKey::from_bytes(&seed),
            store,
            master,
            clock,
            session: None,
            kdf,
            db_key,
            last_recovery: Default::default(),
            free_disk: Box::new(|p| fs4::available_space(p).ok()),
            previews: crate::preview::PreviewControl::default(),
        })
    }

    fn load_master(store: &Store) -> Result<MasterData> {
        let mut st = store
            .conn()
            .prepare("SELECT name, version, body FROM master_data")
            .map_err(StationError::db("reading master data"))?;
        let docs: Vec<Document> = st
            .query_map([], |r| {
                Ok(Document {
                    name: r.get(0)?,
                    version: r.get(1)?,
                    body: r.get(2)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(StationError::db("reading master data"))?;
        MasterData::from_documents(&docs)
    }

    /// Logs `operator` in offline: unlocks their key slot (lockout after repeated failures), opens the
    /// store, and checks the operator is known, active and of this station's center.
    #[instrument(skip_all, fields(operator = operator))]
    pub fn login(home: &Path, operator: &str, password: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::login_with(home, operator, password, clock, KdfParams::DEFAULT)
    }

    /// [`Station::login`] with explicit Argon2id parameters for slots this session creates.
    pub fn login_with(
        home: &Path,
        operator: &str,
        password: &str,
        clock: Arc<dyn Clock>,
        kdf: KdfParams,
    ) -> Result<Self> {
        let paths = StorePaths::new(home);
        if !paths.db.exists() {
            return Err(StationError::NotInitialised {
                home: home.to_path_buf(),
            });
        }
        let mut slots = SlotFile::load(&paths.slots)?;
        let now = clock.now();
        let unlocked = slots.try_unlock(&paths.slots, operator, password, now);
        slots.save(&paths.slots)?;
        let unlocked = unlocked?;
        let store = Store::open(&paths, &unlocked.db_key, operator)?;
        let mut st = Self::assemble(store, unlocked.db_key, clock, kdf)?;
        let op = check_operator(
            operators::get(st.store.conn(), operator)?,
            operator,
            &st.center_id,
        );
        let op = match op {
            Ok(op) => op,
            Err(e) => {
                let detail = e.code();
                st.store
                    .tx(|tx| audit::append(tx, now, operator, "LOGIN_REFUSED", "", &format!("{detail:?}")))?;
                return Err(e);
            }
        };
        let policy = policy_of(&st.master);
        if slots.policy != policy {
            slots.policy = policy;
            slots.save(&paths.slots)?;
        }
        st.store
            .tx(|tx| audit::append(tx, now, operator, "LOGIN", "", ""))?;
        st.session = Some(Session {
            operator: op,
            signing_key: unlocked.signing_key,
            login_at: now,
            last_activity: now,
        });
        st.last_recovery = st.recover()?;
        Ok(st)
    }

    /// Opens the store with the server's recovery identity (administrators recovering a damaged or abandoned
    /// station). No operator session: only reads and export are possible.
    pub fn open_with_recovery(
        home: &Path,
        identity: &age::x25519::Identity,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let paths = StorePaths::new(home);
        if !paths.db.exists() {
            return Err(StationError::NotInitialised {
                home: home.to_path_buf(),
            });
        }
        let slots = SlotFile::load(&paths.slots)?;
        let key = slots
            .recovery()
            .ok_or(StationError::NoRecoverySlot)?
            .open(&paths.slots, identity)?;
        let store = Store::open(&paths, &key, "recovery")?;
        let mut st = Self::assemble(store, key, clock, KdfParams::DEFAULT)?;
        let now = st.clock.now();
        st.store
            .tx(|tx| audit::append(tx, now, "recovery", "RECOVERY_OPEN", "", ""))?;
        Ok(st)
    }

    /// Adds a key slot for `new_operator` (who must be a synced, active operator of this center and give their
    /// synced password). The logged-in operator sponsors it.
    pub fn add_operator_slot(&mut self, new_operator: &str, password: &str) -> Result<MachineIdentity> {
        let sponsor = self.session()?.operator.id.clone();
        let op = check_operator(
            operators::get(self.store.conn(), new_operator)?,
            new_operator,
            &self.center_id,
        )?;
        if !op.password_matches(password) {
            return Err(StationError::WrongPassword {
                operator: new_operator.into(),
                attempts_left: 0,
            });
        }
        let paths = self.store.paths().clone();
        let mut slots = SlotFile::load(&paths.slots)?;
        if slots.operator(&sponsor).is_none() {
            return Err(StationError::NoSlot { operator: sponsor });
        }
        let db_key = self.db_key_from_recovery_or_session()?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(crypto::random()?);
        let key = SigningKey::from_bytes(&seed);
        slots.put_operator(OperatorSlot::create(
            new_operator,
            password,
            &db_key,
            &key,
            self.kdf,
        )?);
        slots.save(&paths.slots)?;
        let now = self.clock.now();
        self.store.tx(|tx| {
            operators::set_public_key(tx, new_operator, &hex::encode(key.verifying_key().as_bytes()))?;
            audit::append(tx, now, &sponsor, "SLOT_ADDED", new_operator, "")
        })?;
        Ok(self.machine_identity())
    }

    fn db_key_from_recovery_or_session(&self) -> Result<Zeroizing<[u8; 32]>> {
        // SQLCipher cannot hand the key back, so the station keeps it (zeroized on drop) while open.
        Ok(self.db_key.clone())
    }

    /// What the recovery run at login did.
    pub fn last_recovery(&self) -> &crate::workflow::RecoveryReport {
        &self.last_recovery
    }

    /// The machine's identity and fingerprint.
    pub fn machine_identity(&self) -> MachineIdentity {
        let pk = self.machine_key.verifying_key();
        MachineIdentity {
            center_id: self.center_id.to_string(),
            machine_id: self.machine_id.to_string(),
            public_key: hex::encode(pk.as_bytes()),
            fingerprint: crypto::fingerprint(pk.as_bytes()),
        }
    }

    /// The master data in force.
    pub fn master(&self) -> &MasterData {
        &self.master
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The store (read access for status views and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The current session, after checking idle logout; records activity.
    pub fn session(&mut self) -> Result<&Session> {
        let now = self.clock.now();
        let idle = self.master.settings.login.idle_logout_seconds;
        let expired = match &self.session {
            None => return Err(StationError::NotLoggedIn),
            Some(s) => now - s.last_activity > Duration::seconds(idle),
        };
        if expired {
            let id = self.session.take().map(|s| s.operator.id).unwrap_or_default();
            self.store
                .tx(|tx| audit::append(tx, now, &id, "IDLE_LOGOUT", "", ""))?;
            return Err(StationError::IdleLogout {
                operator: id,
                idle_seconds: idle,
            });
        }
        match self.session.as_mut() {
            Some(s) => {
                s.last_activity = now;
                Ok(s)
            }
            None => Err(StationError::NotLoggedIn),
        }
    }

    /// The session, requiring `role`.
    pub fn require(&mut self, role: Role, action: &'static str) -> Result<&Session> {
        let s = self.session()?;
        if !s.operator.has(role) {
            return Err(StationError::NotPermitted {
                operator: s.operator.id.clone(),
                action,
                role: role.as_str(),
            });
        }
        self.session()
    }

    /// Ends the session.
    pub fn logout(&mut self) -> Result<()> {
        self.previews.stop(crate::preview::PreviewEnd::Logout);
        if let Some(s) = self.session.take() {
            let now = self.clock.now();
            self.store
                .tx(|tx| audit::append(tx, now, &s.operator.id, "LOGOUT", "", ""))?;
        }
        Ok(())
    }

    /// Replaces the master data (sync or a folder import) after validating it; records the sync time.
    pub fn apply_master_data(&mut self, docs: &[Document]) -> Result<()> {
        let md = MasterData::from_documents(docs)?;
        let now = self.clock.now();
        let actor = self
            .session
            .as_ref()
            .map_or_else(|| "system".to_owned(), |s| s.operator.id.clone());
        self.store.tx(|tx| {
            for d in docs {
                tx.execute(
                    "INSERT INTO master_data (name, version, body, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(name) DO UPDATE SET version = ?2, body = ?3, updated_at = ?4",
                    params![d.name, d.version, d.body, now.to_rfc3339()],
                )
                .map_err(StationError::db("storing master data"))?;
            }
            tx.execute(
                "UPDATE station SET last_master_sync = ?1 WHERE id = 1",
                [now.to_rfc3339()],
            )
            .map_err(StationError::db("recording the master-data sync"))?;
            audit::append(
                tx,
                now,
                &actor,
                "MASTER_DATA_APPLIED",
                &md.manifest.config_version,
                "",
            )
        })?;
        self.master = md;
        Ok(())
    }

    /// Replaces the operator list (sync, or a bundle file until sync exists). Operators missing from the new
    /// list are deactivated; their key slots stay but they can no longer log in.
    pub fn apply_operators(&mut self, bundle: &OperatorBundle) -> Result<()> {
        let now = self.clock.now();
        let actor = self
            .session
            .as_ref()
            .map_or_else(|| "system".to_owned(), |s| s.operator.id.clone());
        self.store.tx(|tx| {
            operators::store_bundle(tx, bundle, now)?;
            audit::append(
                tx,
                now,
                &actor,
                "OPERATORS_APPLIED",
                &bundle.version,
                &format!("count={}", bundle.operators.len()),
            )
        })?;
        Ok(())
    }

    /// Checks the freeze rules; registration may start only when this is `Ok`.
    pub fn check_freeze(&self) -> Result<()> {
        let f = self.master.settings.freeze;
        let now = self.clock.now();
        let (created, synced): (String, Option<String>) = self
            .store
            .conn()
            .query_row(
                "SELECT created_at, last_master_sync FROM station WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(StationError::db("reading the last sync time"))?;
        let since = synced.unwrap_or(created);
        let since = DateTime::parse_from_rfc3339(&since)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or(now);
        let days = (now - since).num_days();
        if days > f.max_days_without_master_data_sync {
            return Err(StationError::Frozen(FreezeReason::MasterDataStale {
                days,
                limit: f.max_days_without_master_data_sync,
            }));
        }
        let waiting = self.count_packets("AWAITING_APPROVAL")?;
        if waiting >= f.max_packets_awaiting_approval {
            return Err(StationError::Frozen(FreezeReason::TooManyAwaitingApproval {
                count: waiting,
                limit: f.max_packets_awaiting_approval,
            }));
        }
        if let Some(free) = (self.free_disk)(&self.store.paths().home) {
            let free_mb = free / (1024 * 1024);
            if free_mb < f.min_free_disk_mb {
                return Err(StationError::Frozen(FreezeReason::LowDisk {
                    free_mb,
                    min_mb: f.min_free_disk_mb,
                }));
            }
        }
        Ok(())
    }

    /// Replaces the free-disk probe (tests simulate a full disk with it).
    pub fn set_free_disk_probe(&mut self, probe: FreeDiskProbe) {
        self.free_disk = probe;
    }

    /// Number of packets in `state`.
    pub fn count_packets(&self, state: &str) -> Result<u64> {
        self.store
            .conn()
            .query_row("SELECT count(*) FROM packets WHERE state = ?1", [state], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(StationError::db("counting packets"))
    }

    /// Appends an audit entry as the current operator.
    pub fn audit(&mut self, action: &str, subject: &str, detail: &str) -> Result<()> {
        let now = self.clock.now();
        let actor = self
            .session
            .as_ref()
            .map_or_else(|| "system".to_owned(), |s| s.operator.id.clone());
        self.store
            .tx(|tx| audit::append(tx, now, &actor, action, subject, detail))
            .map(|_| ())
    }

    /// Reads the last master-data sync time.
    pub fn last_master_sync(&self) -> Result<Option<DateTime<Utc>>> {
        let s: Option<String> = self
            .store
            .conn()
            .query_row("SELECT last_master_sync FROM station WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(StationError::db("reading the last sync time"))?
            .flatten();
        Ok(s.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|d| d.with_timezone(&Utc)))
    }
}
