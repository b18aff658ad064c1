//! `tessera-server`: parses arguments, loads settings, installs tracing, calls the library.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tessera_packet::clock::{Clock as _, SystemClock};
use tessera_packet::wire::MachineStatus;
use tessera_server::settings::{LogFormat, Settings};

/// The Tessera sync server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML config file (every key can also be set by a TESSERA_* environment variable, which wins).
    #[arg(long, global = true, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Create the data directory, keys and database, then exit.
    Init,
    /// Manage enrolled machines (works on the database directly; the server may be running).
    Machines {
        #[command(subcommand)]
        action: MachineAction,
    },
    /// Verify a credential (`<RID>.json`) or a card's QR payload (`<RID>.qr.txt`) offline, with the issuer's
    /// public key. Exits 0 and prints the UIN when valid, 1 with the reason otherwise.
    Verify {
        /// The credential JSON file, or a text file holding a QR payload (`TSR1.` ...).
        file: PathBuf,
        /// The issuer's base64 Ed25519 public key, or a file holding it (the server writes it to
        /// `<data_dir>/credentials/issuer-public-key.txt`). Default: that file in TESSERA_DATA_DIR.
        #[arg(long)]
        issuer_key: Option<String>,
    },
    /// Import packets that offline stations exported to a folder (USB): checks each signed export manifest
    /// against the enrolled machine's key and each packet's hash, then queues every packet as an upload
    /// would. Re-importing is a no-op; a packet that does not match its manifest is quarantined. Prints one
    /// line per packet; exits 1 when a packet was quarantined or refused.
    Import {
        /// The export folder (holding `export-<machine>-<time>.json`, its `.sig` and the `.tpkt` files).
        folder: PathBuf,
    },
    /// Write a station set-up kit: one signed file from which a registration station is created offline in
    /// the station app's first-run screen (no keys to type). It holds the country configuration, the
    /// center's operators (with their password hashes: keep the file confidential and delete it after use),
    /// the packet keys, the device-provider certificates, this server's address and signing key, and your
    /// recovery public key. Prints the server key fingerprint to write on the handover slip.
    StationKit {
        /// The station's center (5 digits).
        #[arg(long)]
        center: String,
        /// The address stations reach this server at, e.g. https://tessera.example:8440.
        #[arg(long)]
        server_url: String,
        /// The recovery public key (age1...); its private half stays offline with the administrator.
        #[arg(long)]
        recovery_key: String,
        /// Provisional machine id until enrolment assigns one (5 digits).
        #[arg(long, default_value = "00000")]
        machine: String,
        /// Where to write the kit, e.g. /media/usb/station-10001.tkit.
        #[arg(long)]
        out: PathBuf,
    },
    /// ID-repository key management.
    IdRepo {
        #[command(subcommand)]
        action: IdRepoAction,
    },
    /// Publish and revoke the operators (officers, supervisors) that stations of each center receive.
    Operators {
        #[command(subcommand)]
        action: OperatorAction,
    },
    /// Publish and revoke device-provider CA certificates (the server and stations accept biometrics only
    /// from devices certified under one of them).
    Certificates {
        #[command(subcommand)]
        action: CertificateAction,
    },
    /// Load a new version of the country configuration (ID schema, UI specs, master data) from a folder.
    CountryConfig {
        #[command(subcommand)]
        action: CountryConfigAction,
    },
    /// List or rotate the packet-recipient keys stations encrypt packets to.
    PacketKeys {
        #[command(subcommand)]
        action: PacketKeyAction,
    },
    /// Inspect received packets (e.g. the quarantine), their status history, and reprocess a quarantined
    /// packet after a fix.
    Packets {
        #[command(subcommand)]
        action: PacketAction,
    },
    /// The UIN pool (free UINs, sealed, that processing hands out): how many are left, and adding more.
    /// The server tops the pool up at start (`uin_pool_target`); this fills it without a restart.
    UinPool {
        #[command(subcommand)]
        action: UinPoolAction,
    },
}

#[derive(Debug, Subcommand)]
enum UinPoolAction {
    /// Print how many free UINs the pool holds.
    Status,
    /// Generate new UINs (random, MOSIP filters, Verhoeff check digit), seal them and add them to the pool.
    /// The server may be running.
    Fill {
        /// How many to add.
        #[arg(default_value_t = 100_000)]
        count: u64,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorAction {
    /// List published operators (id, center, roles, active).
    List {
        /// Only this center (5 digits).
        #[arg(long)]
        center: Option<String>,
    },
    /// Publish operators from a JSON file: one operator record, a list, or a station bundle
    /// `{"version", "operators": [...]}` with `id`, `name`, `roles`, `centerId`, `active` and an Argon2id
    /// `passwordHash`. All are checked first and published together; re-publishing changes nothing.
    Publish {
        /// The JSON file.
        file: PathBuf,
    },
    /// Revoke an operator: the stations of every center drop the account at their next sync.
    Revoke {
        /// Operator id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum CertificateAction {
    /// List published device-provider CA certificates.
    List,
    /// Publish (or replace) a device-provider CA certificate from a PEM file.
    Publish {
        /// Id to publish it under (1-64 of A-Z a-z 0-9 . _ -).
        id: String,
        /// The PEM file.
        file: PathBuf,
    },
    /// Revoke a certificate: biometrics signed by devices certified under it are refused from now on.
    Revoke {
        /// Certificate id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum CountryConfigAction {
    /// Check a configuration folder against itself and the configuration in force, then apply it in one
    /// transaction. Refused, with the file and field named, when files are inconsistent, a published
    /// ID-schema version would change, or files changed but `configVersion` did not. Prints each change.
    Load {
        /// The folder (default: the `country_config` setting).
        folder: Option<PathBuf>,
        /// Check and list the changes without applying them.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PacketKeyAction {
    /// List the keys, newest (the one stations encrypt to) first.
    List,
    /// Create a new key and publish it as the only one stations encrypt to; older keys stay in `keys/`
    /// to open packets made before (never delete them). A running server picks the new key up by itself.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum PacketAction {
    /// List received packets, least recently changed first.
    List {
        /// Only this status (e.g. QUARANTINED, ON_HOLD, REJECTED).
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show a packet and every status change it went through.
    Show {
        /// RID (29 digits).
        rid: String,
    },
    /// Put a quarantined packet back in the processing queue after fixing the cause (a restored key, a
    /// re-enrolled machine, a corrected configuration); the running server verifies it again from the start.
    Reprocess {
        /// RID (29 digits).
        rid: String,
    },
}

#[derive(Debug, Subcommand)]
enum IdRepoAction {
    /// Create a new master key (`keys/id-repo-master-<n>.key`) and re-wrap every record's data key with it.
    /// Records stay readable throughout (old keys are kept); restart running servers afterwards so new
    /// records use the new key. Re-running finishes an interrupted rotation.
    RotateMasterKey {
        /// Re-wrap with the newest existing key instead of creating another one.
        #[arg(long)]
        resume: bool,
    },
}

#[derive(Debug, Subcommand)]
enum MachineAction {
    /// List machines.
    List {
        /// Only PENDING, ACTIVE or SUSPENDED.
        #[arg(long)]
        status: Option<String>,
    },
    /// Approve a pending (or reactivate a suspended) machine.
    Approve {
        /// Machine id (5 digits).
        id: String,
    },
    /// Suspend a machine.
    Suspend {
        /// Machine id.
        id: String,
        /// Why (shown to the station's operators).
        #[arg(long)]
        reason: String,
    },
}

fn install_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// The store of the configured data directory, for commands that work on the database directly.
async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn tessera_server::store::Store>> {
    let keys =
        tessera_server::keys::ServerKeys::load_or_create(&settings.data_dir, settings.admin_token.as_ref())?;
    Ok(tessera_server::open_store(settings, &keys).await?)
}

fn api(e: tessera_server::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code, e.message)
}

fn time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(|| secs.to_string(), |t| t.to_rfc3339())
}

#[allow(clippy::print_stdout, reason = "the CLI prints its results")]
async fn admin_command(settings: Settings, command: Command) -> anyhow::Result<()> {
    use tessera_server::admin;
    let store = open_store(&settings).await?;
    let store = store.as_ref();
    match command {
        Command::UinPool { action } => {
            let keys = tessera_server::keys::ServerKeys::load_or_create(
                &settings.data_dir,
                settings.admin_token.as_ref(),
            )?;
            let cipher = tessera_server::uin::UinCipher::new(&keys.uin_salt);
            if let UinPoolAction::Fill { count } = action {
                let added = tessera_server::uin::fill(store, &cipher, count).await?;
                println!("{added} UINs added to the pool");
            }
            println!("{} free UINs in the pool", store.uins_available().await?);
        }
        Command::Operators { action } => match action {
            OperatorAction::List { center } => {
                for o in admin::list_operators(store, center.as_deref())
                    .await
                    .map_err(api)?
                {
                    println!(
                        "{}\t{}\t{}\t{}",
                        o.id,
                        o.center_id,
                        o.roles.join(","),
                        if o.active { "active" } else { "inactive" }
                    );
                }
            }
            OperatorAction::Publish { file } => {
                let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                let ops = admin::parse_operators(&bytes)
                    .map_err(|e| anyhow::anyhow!("{}: {}: {}", file.display(), e.code, e.message))?;
                for p in admin::publish_operators(store, ops).await.map_err(api)? {
                    let what = match (&p.moved_from, p.changed) {
                        (Some(from), _) => format!("moved from center {from}"),
                        (None, true) => "published".to_owned(),
                        (None, false) => "unchanged".to_owned(),
                    };
                    println!("{}\tcenter {}\t{what}", p.id, p.center_id);
                }
            }
            OperatorAction::Revoke { id } => {
                let centers = admin::revoke_operator(store, &id).await.map_err(api)?;
                println!("{id} revoked (centers {})", centers.join(", "));
            }
        },
        Command::Certificates { action } => match action {
            CertificateAction::List => {
                for c in admin::list_certificates(store).await.map_err(api)? {
                    println!("{}\t{}", c.id, c.subjects.join("; "));
                }
            }
            CertificateAction::Publish { id, file } => {
                let pem =
                    std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                let c = admin::publish_certificate(store, &id, &pem).await.map_err(api)?;
                println!("{}\tpublished\t{}", c.id, c.subjects.join("; "));
            }
            CertificateAction::Revoke { id } => {
                admin::revoke_certificate(store, &id).await.map_err(api)?;
                println!("{id} revoked");
            }
        },
        Command::CountryConfig {
            action: CountryConfigAction::Load { folder, dry_run },
        } => {
            let folder = folder
                .or_else(|| settings.country_config.clone())
                .context("give the folder, or set country_config (TESSERA_COUNTRY_CONFIG)")?;
            let r = admin::reload_country_config(store, &folder, dry_run)
                .await
                .map_err(api)?;
            for c in &r.changes {
                println!("{c}");
            }
            let version = r.config_version.as_deref().unwrap_or("(no manifest)");
            match (r.changes.len(), r.applied) {
                (0, _) => println!("configuration {version} of {}: nothing to change", r.folder),
                (n, true) => println!("configuration {version} of {}: {n} changes applied", r.folder),
                (n, false) => println!(
                    "configuration {version} of {}: {n} changes (dry run, not applied)",
                    r.folder
                ),
            }
        }
        Command::PacketKeys { action } => {
            let keys = match action {
                PacketKeyAction::List => tessera_server::keys::load_packet_identities(&settings.data_dir)?,
                PacketKeyAction::Rotate => admin::rotate_packet_key(store, &settings.data_dir)
                    .await
                    .map_err(api)?,
            };
            for k in admin::list_packet_keys(store, &keys).await.map_err(api)? {
                let role = if k.published { "published" } else { "decrypt only" };
                println!("{}\t{role}\t{}", k.key_id, k.recipient);
            }
        }
        Command::Packets { action } => match action {
            PacketAction::List { status, limit } => {
                let status = status
                    .as_deref()
                    .map(admin::parse_packet_status)
                    .transpose()
                    .map_err(api)?;
                for p in admin::list_packets(store, status, limit).await.map_err(api)? {
                    println!(
                        "{}\t{}\t{}\t{}",
                        p.rid,
                        p.status.as_str(),
                        p.reason.as_deref().unwrap_or("-"),
                        time(p.updated_at)
                    );
                }
            }
            PacketAction::Show { rid } => {
                let d = admin::packet_detail(store, &rid).await.map_err(api)?;
                let p = &d.packet;
                println!(
                    "RID {}  machine {}  {} bytes  sha256 {}",
                    p.rid, p.machine_id, p.size, p.sha256
                );
                println!("received {}", time(p.received_at));
                for e in &d.history {
                    println!(
                        "{}\t{}{}",
                        time(e.at),
                        e.status.as_str(),
                        e.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                    );
                }
            }
            PacketAction::Reprocess { rid } => {
                let now = SystemClock.now().timestamp();
                let p = admin::reprocess(store, &rid, now).await.map_err(api)?;
                println!("{} queued for processing (status {})", p.rid, p.status.as_str());
            }
        },
        _ => {}
    }
    Ok(())
}

#[allow(clippy::print_stdout, reason = "the CLI prints its results")]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref()).context("loading configuration")?;
    install_tracing(settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        c @ (Command::Operators { .. }
        | Command::Certificates { .. }
        | Command::CountryConfig { .. }
        | Command::PacketKeys { .. }
        | Command::Packets { .. }
        | Command::UinPool { .. }) => admin_command(settings, c).await?,
        Command::Verify { file, issuer_key } => {
            let key_text = match issuer_key {
                Some(k) if std::path::Path::new(&k).is_file() => {
                    std::fs::read_to_string(&k).with_context(|| format!("reading issuer key file {k}"))?
                }
                Some(k) => k,
                None => {
                    let p = settings
                        .data_dir
                        .join("credentials")
                        .join("issuer-public-key.txt");
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {} (or pass --issuer-key)", p.display()))?
                }
            };
            let key = tessera_packet::wire::decode_public_key("issuer key", key_text.trim())
                .map_err(|e| anyhow::anyhow!("issuer key: {e}"))?;
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let result = if text
                .trim_start()
                .starts_with(tessera_server::credential::QR_PREFIX)
            {
                tessera_server::credential::verify_qr(&text, &key)
            } else {
                tessera_server::credential::verify(&text, &key)
            };
            match result {
                Ok(subject) => println!("VALID credential for UIN {}", subject.uin),
                Err(e) => {
                    println!("INVALID: {e}");
                    std::process::exit(1);
                }
            }
        }
        Command::IdRepo {
            action: IdRepoAction::RotateMasterKey { resume },
        } => {
            if !resume {
                let n = tessera_server::keys::create_next_master_key(&settings.data_dir)?;
                println!("created keys/id-repo-master-{n}.key");
            }
            let keys = tessera_server::keys::ServerKeys::load_or_create(
                &settings.data_dir,
                settings.admin_token.as_ref(),
            )?;
            let store = tessera_server::open_store(&settings, &keys).await?;
            let masters: Vec<tessera_server::idrepo::MasterKey> = keys
                .master_keys
                .iter()
                .map(|k| tessera_server::idrepo::MasterKey::new(k.clone()))
                .collect();
            let current = masters.last().context("no master key")?;
            let mut done = 0u64;
            loop {
                let batch = store.identity_keys_to_rewrap(&current.id, 500).await?;
                if batch.is_empty() {
                    break;
                }
                for (uin_hash, old, wrapped) in batch {
                    let new = tessera_server::idrepo::rewrap(&masters, current, &uin_hash, &old, &wrapped)?;
                    if store
                        .rewrap_identity_key(&uin_hash, &old, &current.id, new)
                        .await?
                    {
                        done += 1;
                    }
                }
            }
            println!("re-wrapped {done} records with master key {}", current.id);
        }
        Command::Import { folder } => {
            let state = tessera_server::prepare_for_tools(settings, Arc::new(SystemClock)).await?;
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} packets {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let lines = tessera_server::import::import_folder(&state, &folder, |line, done, total| {
                bar.set_length(u64::try_from(total).unwrap_or(0));
                bar.set_position(u64::try_from(done).unwrap_or(0));
                bar.println(line.to_string());
            })
            .await?;
            bar.finish();
            use tessera_server::import::PacketOutcome;
            let count = |f: fn(&PacketOutcome) -> bool| lines.iter().filter(|l| f(&l.outcome)).count();
            let imported = count(|o| matches!(o, PacketOutcome::Ingested));
            let already = count(|o| matches!(o, PacketOutcome::AlreadyReceived(_)));
            let bad = count(|o| matches!(o, PacketOutcome::Quarantined(_) | PacketOutcome::Refused(_)));
            println!("{imported} imported, {already} already received, {bad} quarantined or refused");
            if bad > 0 {
                std::process::exit(1);
            }
        }
        Command::StationKit {
            center,
            server_url,
            recovery_key,
            machine,
            out,
        } => {
            let state = tessera_server::prepare_for_tools(settings, Arc::new(SystemClock)).await?;
            let req = tessera_server::station_kit::KitRequest {
                center_id: center,
                machine_id: machine,
                server_url,
                recovery_key,
            };
            let (kit, summary) = tessera_server::station_kit::build(
                state.store.as_ref(),
                &state.keys,
                &req,
                SystemClock.now(),
            )
            .await?;
            let bytes = kit.to_bytes().map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut f = {
                let mut o = std::fs::OpenOptions::new();
                o.write(true).create(true).truncate(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
                o.open(&out)
                    .with_context(|| format!("creating {}", out.display()))?
            };
            std::io::Write::write_all(&mut f, &bytes)
                .with_context(|| format!("writing {}", out.display()))?;
            f.sync_all()
                .with_context(|| format!("writing {}", out.display()))?;
            println!("station kit written: {} ({} bytes)", out.display(), bytes.len());
            println!("center: {}", summary.center_id);
            println!("server: {}", summary.server_url);
            println!("operators: {}", summary.operators);
            println!("server key fingerprint (write it on the handover slip; the officer compares it):");
            println!("  {}", summary.server_key_fingerprint);
        }
        Command::Serve => tessera_server::run(settings).await?,
        Command::Init => {
            let state = tessera_server::prepare(settings, Arc::new(SystemClock)).await?;
            println!("data directory ready: {}", state.settings.data_dir.display());
            if state.settings.admin_token.is_none() {
                println!(
                    "admin token: {}",
                    state.settings.data_dir.join("admin.token").display()
                );
            }
        }
        Command::Machines { action } => {
            let keys = tessera_server::keys::ServerKeys::load_or_create(
                &settings.data_dir,
                settings.admin_token.as_ref(),
            )?;
            let store = tessera_server::open_store(&settings, &keys).await?;
            let now = SystemClock.now().timestamp();
            let show = |m: &tessera_server::store::MachineRecord| {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    m.machine_id,
                    m.center_id,
                    m.status.as_str(),
                    m.name,
                    m.status_reason.as_deref().unwrap_or("")
                );
            };
            match action {
                MachineAction::List { status } => {
                    let status = status
                        .map(|s| {
                            MachineStatus::parse(&s.to_ascii_uppercase())
                                .context("status must be PENDING, ACTIVE or SUSPENDED")
                        })
                        .transpose()?;
                    for m in store.list_machines(status).await? {
                        show(&m);
                    }
                }
                MachineAction::Approve { id } => {
                    let m = tessera_server::machines::set_status(
                        store.as_ref(),
                        &id,
                        MachineStatus::Active,
                        None,
                        now,
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
                    show(&m);
                }
                MachineAction::Suspend { id, reason } => {
                    let m = tessera_server::machines::set_status(
                        store.as_ref(),
                        &id,
                        MachineStatus::Suspended,
                        Some(reason),
                        now,
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
                    show(&m);
                }
            }
        }
    }
    Ok(())
}
