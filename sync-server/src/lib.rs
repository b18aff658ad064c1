//! The Tessera sync server.
//!
//! It enrols stations' machines, serves them delta sync by cursor, receives sealed packets through a
//! resumable, checksummed upload (tus 1.0) with signed receipts, and turns them into identities in a durable,
//! at-least-once pipeline: validation, demographic and biometric deduplication, manual adjudication, UIN from a
//! pre-generated pool, an envelope-encrypted ID repository, signed credentials and resident notifications.
//! Storage is SQLite (embedded, SQLCipher-encrypted, the default) or PostgreSQL, behind one [`store::Store`]
//! trait.
//!
//! Modules:
//! - [`settings`]: typed configuration (defaults < file < `TESSERA_*` environment).
//! - [`keys`]: run-time generated keys in the data directory.
//! - [`store`]: the storage trait, SQLite and PostgreSQL implementations, migrations.
//! - [`auth`]: signed station requests (expiry, replay protection) and the admin token.
//! - [`machines`], [`sync`], [`upload`], [`uin`]: the services; [`blobs`]: packet storage (local folder or
//!   S3-compatible, through `object_store`).
//! - [`pipeline`]: durable processing jobs: verify, decrypt ([`validate`]) → demographic and biometric
//!   dedupe ([`dedupe`]) → manual [`adjudication`] → UIN → ID repository ([`idrepo`], envelope encryption)
//!   → [`credential`] → [`notify`] (outbox); quarantine for tampering, rejection for invalid content.
//! - [`admin`]: administration shared by the admin API and the CLI (operators, device-provider certificates,
//!   country configuration, packet-key rotation, quarantine and reprocessing).
//! - [`card`]: the printable identity card (PDF with the signed QR record).
//! - [`import`]: packets exported to removable media by offline stations (`tessera-server import`).
//! - [`operators`]: operator sign-off keys registered by stations.
//! - [`http`]: router, handlers, request ids, metrics, OpenAPI; [`error::ApiError`] is the one error response.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tessera_server::ServerError> {
//! let settings = tessera_server::settings::Settings::load(None).map_err(tessera_server::ServerError::Settings)?;
//! tessera_server::run(settings).await
//! # }
//! ```
#![deny(missing_docs)]

pub mod adjudication;
pub mod admin;
pub mod auth;
pub mod blobs;
pub mod card;
pub mod credential;
pub mod dedupe;
pub mod device_check;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod idrepo;
pub mod import;
pub mod keys;
pub mod machines;
pub mod metrics;
pub mod notify;
pub mod operators;
pub mod pipeline;
pub mod settings;
pub mod station_kit;
pub mod store;
pub mod sync;
pub mod uin;
pub mod upload;
pub mod validate;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tessera_packet::clock::{Clock, SystemClock};
use tessera_packet::wire::{self, SyncKind};
use tokio::sync::oneshot;

use crate::dedupe::BioIndex as _;
use crate::keys::ServerKeys;
use crate::settings::Settings;
use crate::store::Store;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Configuration is invalid.
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    /// Keys could not be loaded or created.
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The biometric gallery could not be opened or rebuilt.
    #[error(transparent)]
    Gallery(#[from] dedupe::IndexError),
    /// The country configuration could not be loaded.
    #[error("country configuration: {0}")]
    Sync(#[from] sync::SyncError),
    /// The blob storage settings are not usable.
    #[error(transparent)]
    Blob(#[from] blobs::BlobError),
    /// The UIN pool could not be filled.
    #[error("UIN pool: {0}")]
    Pool(#[from] uin::PoolError),
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the server was doing.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Shared state of the running server.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Inner {
    /// Validated settings.
    pub settings: Settings,
    /// The database.
    pub store: Arc<dyn Store>,
    /// The server's keys.
    pub keys: ServerKeys,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Local folder of uploads in progress (`<data_dir>/blobs`; the part files are in `uploads/`).
    pub blobs: PathBuf,
    /// Where received packets are stored ([`blobs::BlobStore`]: `<data_dir>/blobs` or an S3 bucket).
    pub blob_store: blobs::BlobStore,
    /// Metrics.
    pub metrics: metrics::Metrics,
    /// Uploads being written by a request in this process.
    pub upload_locks: Mutex<HashSet<String>>,
    /// Running SHA-256 of uploads received in several chunks: upload id → (bytes hashed, state). Lets the
    /// last chunk complete a packet without reading it back; after a restart the part file is read instead.
    pub upload_hashes: Mutex<HashMap<String, (u64, sha2::Sha256)>>,
    /// ID-repository master keys, oldest first; the last wraps new records.
    pub master_keys: Vec<idrepo::MasterKey>,
    /// The biometric 1:N gallery.
    pub gallery: Arc<dyn dedupe::BioIndex>,
    /// Keeps [`Inner::gallery`] in step with the database.
    pub gallery_loader: dedupe::GalleryLoader,
    /// Delivers resident notifications.
    pub sender: Arc<dyn notify::Sender>,
    /// Validation rules, cached with the time they were loaded (Unix seconds).
    pub rules: tokio::sync::RwLock<Option<(i64, Arc<validate::Rules>)>>,
    /// Where credential files are written (`<data_dir>/credentials`).
    pub credentials_dir: PathBuf,
    /// The packet-recipient keys in force, newest first (see [`Inner::packet_keys`]).
    pub packet_keys: PacketKeys,
}

/// The packet-recipient keys a process holds, replaced whole after a rotation.
pub struct PacketKeys(std::sync::RwLock<Arc<Vec<PacketKey>>>);

impl std::fmt::Debug for PacketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = match self.0.read() {
            Ok(k) => k.iter().map(|(id, _)| id.clone()).collect(),
            Err(_) => Vec::new(),
        };
        f.debug_tuple("PacketKeys").field(&ids).finish()
    }
}

/// A packet-recipient key: (key id, age identity).
pub type PacketKey = (String, age::x25519::Identity);

impl Inner {
    /// The packet-recipient keys in force, newest first.
    pub fn packet_keys(&self) -> Arc<Vec<PacketKey>> {
        match self.packet_keys.0.read() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the keys in force (after a rotation by this process).
    pub fn set_packet_keys(&self, keys: Vec<PacketKey>) {
        let keys = Arc::new(keys);
        match self.packet_keys.0.write() {
            Ok(mut k) => *k = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    /// Reads the key files again (another process, or the CLI, may have rotated them); returns whether a
    /// key was added.
    pub fn reload_packet_keys(&self) -> Result<bool, keys::KeyError> {
        let fresh = keys::load_packet_identities(&self.settings.data_dir)?;
        let known = self.packet_keys();
        let added = fresh.iter().any(|(id, _)| !known.iter().any(|(k, _)| k == id));
        if added {
            self.set_packet_keys(fresh);
        }
        Ok(added)
    }

    /// The master key that wraps new records.
    #[allow(
        clippy::expect_used,
        reason = "prepare() always builds at least one master key"
    )]
    pub fn master_key(&self) -> &idrepo::MasterKey {
        self.master_keys.last().expect("at least one master key")
    }
}

/// Opens the configured database: PostgreSQL when `database_url` is set, else `<data_dir>/tessera.db`.
/// The store seals the UINs it keeps with the data directory's UIN cipher ([`uin::UinCipher`]).
pub async fn open_store(settings: &Settings, keys: &ServerKeys) -> Result<Arc<dyn Store>, ServerError> {
    let cipher = Arc::new(uin::UinCipher::new(&keys.uin_salt));
    Ok(match &settings.database_url {
        Some(url) => Arc::new(
            store::postgres::PgStore::connect(url.expose(), settings.postgres_pool_size, None)
                .await?
                .with_uin_cipher(cipher),
        ),
        None => {
            let path = settings.data_dir.join("tessera.db");
            let key = keys.database_key.clone();
            let store = tokio::task::spawn_blocking(move || store::sqlite::SqliteStore::open(&path, &key))
                .await
                .map_err(|e| ServerError::Store(store::StoreError::Task(e.to_string())))??;
            Arc::new(store.with_uin_cipher(cipher))
        }
    })
}

/// Opens the configured biometric gallery ([`settings::DedupeIndex`]); the indexed one lives in
/// `<data_dir>/gallery/` and is rebuilt from the database when missing, corrupt or stale (logged).
pub async fn open_gallery(
    settings: &Settings,
    store: &dyn Store,
) -> Result<Arc<dyn dedupe::BioIndex>, ServerError> {
    Ok(match settings.dedupe_index {
        settings::DedupeIndex::Exhaustive => Arc::new(dedupe::ExhaustiveGallery::new(
            settings.bio_match_threshold as f32 / 1000.0,
        )),
        settings::DedupeIndex::Gallery => {
            let dir = settings.data_dir.join("gallery");
            let started = std::time::Instant::now();
            let (g, rebuild) = dedupe::IndexedGallery::open(
                &dir,
                store,
                settings.bio_index_min_score as f32 / 100.0,
                usize::try_from(settings.bio_index_save_every).unwrap_or(usize::MAX),
            )
            .await?;
            let secs = started.elapsed().as_secs_f64();
            match rebuild {
                dedupe::Rebuild::No => {
                    tracing::info!(persons = g.len(), secs, "biometric gallery file opened")
                }
                dedupe::Rebuild::Missing => {
                    tracing::info!("biometric gallery file missing: rebuilding it from the database")
                }
                dedupe::Rebuild::Corrupt(why) => tracing::warn!(
                    reason = %why,
                    "biometric gallery file corrupt: rebuilding it from the database"
                ),
                dedupe::Rebuild::Stale(why) => tracing::warn!(
                    reason = %why,
                    "biometric gallery file stale: rebuilding it from the database"
                ),
            }
            Arc::new(g)
        }
    })
}

/// Prepares everything the server needs: data directory, keys, database (migrated), packet keys published,
/// country configuration on first start, UIN pool topped up, biometric gallery opened and brought up to date.
pub async fn prepare(settings: Settings, clock: Arc<dyn Clock>) -> Result<AppState, ServerError> {
    prepare_with(settings, clock, true).await
}

/// [`prepare`] for command-line tools that run beside a server (e.g. `import`): the biometric gallery is
/// left empty and in memory (the tool runs no processing and must not rewrite the server's gallery file).
pub async fn prepare_for_tools(settings: Settings, clock: Arc<dyn Clock>) -> Result<AppState, ServerError> {
    prepare_with(settings, clock, false).await
}

async fn prepare_with(
    settings: Settings,
    clock: Arc<dyn Clock>,
    load_gallery: bool,
) -> Result<AppState, ServerError> {
    let keys = ServerKeys::load_or_create(&settings.data_dir, settings.admin_token.as_ref())?;
    let blobs = settings.data_dir.join("blobs");
    for sub in ["uploads", "packets"] {
        keys::ensure_private_dir(&blobs.join(sub))?;
    }
    let blob_store = blobs::BlobStore::from_settings(&settings.blobs, &settings.data_dir)?;
    let credentials_dir = settings.data_dir.join("credentials");
    keys::ensure_private_dir(&credentials_dir)?;
    keys::ensure_private_dir(&settings.data_dir.join("outbox"))?;
    let store = open_store(&settings, &keys).await?;
    sync::publish_packet_keys(store.as_ref(), &keys.packet_identities).await?;
    if let Some(dir) = &settings.country_config {
        let first_start = store.sync_items(SyncKind::IdSchema, "", 0, 1).await?.is_empty();
        if first_start {
            let n = sync::load_country_config(store.as_ref(), dir).await?;
            tracing::info!(items = n, dir = %dir.display(), "country configuration loaded");
        }
    }
    let uin_cipher = Arc::new(uin::UinCipher::new(&keys.uin_salt));
    let converted = store.protect_legacy_uins(Arc::clone(&uin_cipher)).await?;
    if converted > 0 {
        tracing::info!(
            rows = converted,
            "UIN pool and identity tables converted: no UIN is stored in clear any more"
        );
    }
    let added = uin::top_up(
        store.as_ref(),
        &uin_cipher,
        u64::from(settings.uin_pool_target),
        u64::from(settings.uin_pool_low_water),
    )
    .await?;
    if added > 0 {
        tracing::info!(added, "UIN pool topped up");
    }
    let issuer_pub = wire::encode_b64(keys.issuer.verifying_key().as_bytes());
    std::fs::write(
        credentials_dir.join("issuer-public-key.txt"),
        format!("{issuer_pub}\n"),
    )
    .map_err(|source| ServerError::Io {
        what: "write credentials/issuer-public-key.txt".into(),
        source,
    })?;
    let master_keys = keys
        .master_keys
        .iter()
        .map(|k| idrepo::MasterKey::new(k.clone()))
        .collect();
    let gallery_loader = dedupe::GalleryLoader::default();
    let gallery = if load_gallery {
        let gallery = open_gallery(&settings, store.as_ref()).await?;
        let started = std::time::Instant::now();
        let loaded = gallery_loader.refresh(&gallery, store.as_ref()).await?;
        if loaded > 0 {
            tracing::info!(
                fingers = loaded,
                persons = gallery.len(),
                secs = started.elapsed().as_secs_f64(),
                "biometric gallery: fingers loaded from the database"
            );
        }
        if let Err(e) = gallery_loader.persist(&gallery).await {
            tracing::warn!(error = %e, "biometric gallery could not be saved; it is rebuilt on the next start");
        }
        gallery
    } else {
        Arc::new(dedupe::ExhaustiveGallery::new(1.0)) as Arc<dyn dedupe::BioIndex>
    };
    let packet_keys = keys.packet_identities.clone();
    let sender = notify::sender_for(&settings)
        .map_err(|message| ServerError::Settings(settings::SettingsError::Invalid { message }))?;
    Ok(AppState(Arc::new(Inner {
        settings,
        store,
        keys,
        clock,
        blobs,
        blob_store,
        metrics: metrics::Metrics::default(),
        upload_locks: Mutex::new(HashSet::new()),
        upload_hashes: Mutex::new(HashMap::new()),
        master_keys,
        gallery,
        gallery_loader,
        sender,
        rules: tokio::sync::RwLock::new(None),
        credentials_dir,
        packet_keys: PacketKeys(std::sync::RwLock::new(Arc::new(packet_keys))),
    })))
}

/// A server listening in the background (tests, the demo).
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address (the real port when the setting said 0).
    pub addr: SocketAddr,
    /// The state, for inspection.
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting, finishes in-flight requests, and waits.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for w in &self.workers {
            w.abort();
        }
        if let Err(e) = self.state.gallery_loader.persist(&self.state.gallery).await {
            tracing::warn!(error = %e, "biometric gallery could not be saved at shutdown");
        }
        (&mut self.task)
            .await
            .map_err(|e| ServerError::Io {
                what: "server task".into(),
                source: std::io::Error::other(e),
            })?
            .map_err(|source| ServerError::Io {
                what: "serving".into(),
                source,
            })
    }
}

/// Binds the listener and serves `state` in the background.
pub async fn start(state: AppState) -> Result<RunningServer, ServerError> {
    let listener = tokio::net::TcpListener::bind(state.settings.listen)
        .await
        .map_err(|source| ServerError::Io {
            what: format!("listen on {}", state.settings.listen),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Io {
        what: "read bound address".into(),
        source,
    })?;
    let (tx, rx) = oneshot::channel::<()>();
    let app = http::router(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    let mut workers: Vec<tokio::task::JoinHandle<()>> = (0..state.settings.pipeline_workers)
        .map(|i| {
            tokio::spawn(pipeline::worker_loop(
                state.clone(),
                format!("{}-{i}", std::process::id()),
            ))
        })
        .collect();
    if state.settings.pipeline_workers > 0 {
        workers.push(tokio::spawn(notify::worker_loop(
            state.clone(),
            format!("{}-notify", std::process::id()),
        )));
    }
    tracing::info!(%addr, backend = state.store.backend(), blobs = state.blob_store.describe(), "tessera-server listening");
    Ok(RunningServer {
        addr,
        state,
        shutdown: Some(tx),
        task,
        workers,
    })
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(settings: Settings) -> Result<(), ServerError> {
    let state = prepare(settings, Arc::new(SystemClock)).await?;
    let server = start(state).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.stop().await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}
