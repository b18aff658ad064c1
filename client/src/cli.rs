//! The CLI adapter: argument parsing, password prompts, progress bars and output formatting over the
//! station's command table. No business rules here.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tessera_packet::clock::{Clock, SystemClock};
use tessera_station::capture::DeviceOptions;
use tessera_station::commands::{self, Command, InitInput, LoginInput, Output, block_on};
use tessera_station::forms::Answers;
use tessera_station::station::Station;
use tessera_station::sync::{Progress, SyncOptions, SyncReport};
use tessera_station::workflow::Capture;
use tessera_station::{CommandError, ErrorCode};

/// Tessera registration station: register residents offline, have a supervisor approve the packets, and
/// send them to the server (`sync`) or export them to a USB drive.
///
/// Typical day: an officer runs `register` for each resident; a supervisor runs `approve`; someone runs
/// `sync` when a network is available (or `export --to /media/usb`). `status` shows what is waiting.
///
/// Passwords are read from the TESSERA_STATION_PASSWORD environment variable, from --password-file, or
/// asked for on the terminal.
#[derive(Debug, Parser)]
#[command(name = "tessera-station", version, about, long_about, max_term_width = 100)]
struct Cli {
    /// The station's data folder (database, key slots, sealed packets).
    #[arg(
        long,
        global = true,
        env = "TESSERA_STATION_HOME",
        default_value = "tessera-station-data"
    )]
    home: PathBuf,
    /// Print results as JSON (for scripts) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Args)]
struct Auth {
    /// Your operator id, e.g. officer1.
    #[arg(long, short = 'o', env = "TESSERA_STATION_OPERATOR")]
    operator: String,
    /// Read your password from this file (first line) instead of asking.
    #[arg(long)]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Set up this station once: creates the encrypted store, the machine key and your key slot.
    ///
    /// Read the printed machine fingerprint to the administrator who enrols the machine.
    Init {
        /// Center id (5 digits) this station belongs to.
        #[arg(long)]
        center: String,
        /// Machine id (5 digits) assigned by the administrator.
        #[arg(long)]
        machine: String,
        /// The server's recovery public key (age1...), used to recover this station's data if it breaks.
        #[arg(long)]
        recovery_key: String,
        /// The server's packet key (age1...); repeat for several during key rotation.
        #[arg(long = "packet-key", required = true)]
        packet_keys: Vec<String>,
        /// The country configuration folder (e.g. config/sample-country).
        #[arg(long)]
        config: PathBuf,
        /// The operators file (JSON, as delivered by the server).
        #[arg(long)]
        operators: PathBuf,
        #[command(flatten)]
        auth: Auth,
    },
    /// Set up this station once from the station set-up kit the administrator handed over (the file made by
    /// `tessera-server station-kit`), instead of `init`: no keys to type. Give the server key fingerprint
    /// written on the administrator's slip with --server-fingerprint; the station is created only when it is
    /// the kit's, and then enrols only with that server. The desktop app does the same on its first-run
    /// screen.
    InitKit {
        /// The kit file (e.g. /media/usb/station-10001.tkit).
        kit: PathBuf,
        /// The server key fingerprint from the administrator's slip (SHA256:...; spaces and case ignored).
        #[arg(long)]
        server_fingerprint: String,
        #[command(flatten)]
        auth: Auth,
    },
    /// Check your password offline, finish anything an interruption left half done, and show the station.
    Login {
        #[command(flatten)]
        auth: Auth,
    },
    /// Register one resident from an answers file (JSON), seal the packet and print the RID.
    ///
    /// Document files named in the answers are read relative to the answers file. Biometrics are captured
    /// from the SBI devices on this computer with --sbi (fingers, irises, face as the form needs them,
    /// skipping declared exceptions), or read from --captures: one file per attribute named after it
    /// (rightThumb.iso, leftEye.iso, face.iso, ...).
    Register {
        #[command(flatten)]
        auth: Auth,
        /// The resident's answers (see docs/station.md for the format).
        #[arg(long)]
        answers: PathBuf,
        /// Folder of captured biometric records, one file per attribute.
        #[arg(long)]
        captures: Option<PathBuf>,
        /// Quality score to record for imported captures (0-100).
        #[arg(long, default_value_t = 80)]
        capture_quality: u8,
        /// Capture biometrics from the SBI devices on this computer.
        #[arg(long, conflicts_with = "captures")]
        sbi: bool,
        #[command(flatten)]
        devices: DeviceArgs,
        /// Continue an earlier draft instead of starting a new one.
        #[arg(long)]
        draft: Option<i64>,
        /// Start from the resident's pre-registration (booking) at this center: its id, or what the QR
        /// scanner types for the booking slip's QR code. Its demographics fill whatever the answers file
        /// leaves out; consent, documents and biometrics still come from the answers file and devices.
        #[arg(long, conflicts_with = "draft")]
        pre_registration: Option<String>,
        /// Write the acknowledgement receipt here, to print for the resident: PDF when the name ends in
        /// .pdf, HTML otherwise.
        #[arg(long)]
        receipt: Option<PathBuf>,
    },
    /// List your unfinished drafts (continue one with `register --draft <id>`).
    Drafts {
        #[command(flatten)]
        auth: Auth,
    },
    /// Supervisors: list packets waiting for approval, approve or reject them.
    Approve {
        #[command(flatten)]
        auth: Auth,
        /// Approve these packets (RIDs).
        #[arg(long = "rid")]
        rids: Vec<String>,
        /// Approve every waiting packet.
        #[arg(long, conflicts_with = "rids")]
        all: bool,
        /// Reject this packet (RID); needs --reason.
        #[arg(long, requires = "reason", conflicts_with_all = ["rids", "all"])]
        reject: Option<String>,
        /// Rejection reason code (see --list-reasons).
        #[arg(long)]
        reason: Option<String>,
        /// Show the rejection reasons.
        #[arg(long)]
        list_reasons: bool,
    },
    /// Copy approved packets to a folder (e.g. a USB drive) with a signed manifest, for the server to import.
    Export {
        #[command(flatten)]
        auth: Auth,
        /// Target folder.
        #[arg(long)]
        to: PathBuf,
    },
    /// Show the machine fingerprint, packet counts, and whether registration is stopped and why.
    Status {
        #[command(flatten)]
        auth: Auth,
    },
    /// Load a new country configuration and/or operators file from files (the offline alternative to
    /// `sync`); counts as a master-data sync for the freeze rules.
    UpdateConfig {
        #[command(flatten)]
        auth: Auth,
        /// Country configuration folder.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Operators file.
        #[arg(long)]
        operators: Option<PathBuf>,
    },
    /// Serve the station's front end and command table on a loopback address for a browser (prints the URL,
    /// which carries the per-launch token).
    Ui {
        /// Address to listen on (loopback only; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Built front end folder.
        #[arg(long, env = "TESSERA_UI_DIST", default_value = "client-ui/dist")]
        dist: PathBuf,
    },
    /// Enrol this machine with the server: prints the machine fingerprint for the administrator, who
    /// approves the machine on the server. Run once after `init`, before registering anyone.
    EnrolMachine {
        #[command(flatten)]
        auth: Auth,
        /// The server's address, e.g. https://tessera.example:8440.
        #[arg(long, env = "TESSERA_STATION_SERVER")]
        server: String,
        /// A name for this machine (host name or asset tag).
        #[arg(long, default_value = "tessera-station")]
        name: String,
    },
    /// Sync with the server: fetch master data, operators and keys, upload approved packets (resuming
    /// interrupted uploads), bring back their processing status, and delete processed packets after the
    /// retention period. Safe to interrupt and run again at any time.
    Sync {
        #[command(flatten)]
        auth: Auth,
        /// Only fetch master data (no upload).
        #[arg(long, conflicts_with = "upload_only")]
        master_data_only: bool,
        /// Only upload and check statuses (no master data).
        #[arg(long)]
        upload_only: bool,
        /// Retries of a failing request before giving up for this round.
        #[arg(long, default_value_t = 4)]
        retries: u32,
        /// Upload chunk size in KiB (smaller chunks resume with less resent after a broken connection).
        #[arg(long, default_value_t = 1024)]
        chunk_kib: u64,
    },
    /// Upload approved packets and check their server status (a `sync` without master data).
    Upload {
        #[command(flatten)]
        auth: Auth,
        /// Retries of a failing request before giving up for this round.
        #[arg(long, default_value_t = 4)]
        retries: u32,
        /// Upload chunk size in KiB.
        #[arg(long, default_value_t = 1024)]
        chunk_kib: u64,
    },
    /// Show every approved packet's upload and server status.
    Uploads {
        #[command(flatten)]
        auth: Auth,
    },
    /// List the biometric (SBI) devices on this computer.
    Devices {
        #[command(flatten)]
        auth: Auth,
        #[command(flatten)]
        devices: DeviceArgs,
    },
    /// Print the Argon2id hash of a password, for building an operators file before sync exists.
    HashPassword {
        /// Read the password from this file (first line) instead of TESSERA_STATION_PASSWORD or the terminal.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Your own fingerprints on this station: the applicant's fingers are checked against them before
    /// sealing, so that no officer registers themself.
    Operator {
        #[command(subcommand)]
        cmd: OperatorCmd,
    },
    /// Give another operator of this center a key slot on this station (asks for their password too,
    /// from TESSERA_STATION_NEW_PASSWORD or the terminal).
    AddSlot {
        #[command(flatten)]
        auth: Auth,
        /// The operator to add.
        #[arg(long)]
        new: String,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorCmd {
    /// Capture your ten fingers from the finger scanner (left slap, right slap, thumbs) and enrol them.
    /// Run it again to replace them. Only fingerprint templates are kept, in the encrypted store.
    EnrolBiometrics {
        #[command(flatten)]
        auth: Auth,
        #[command(flatten)]
        devices: DeviceArgs,
    },
    /// Show which of your fingers are enrolled.
    Biometrics {
        #[command(flatten)]
        auth: Auth,
    },
}

#[derive(Debug, Args)]
struct DeviceArgs {
    /// SBI port range to scan, FIRST-LAST.
    #[arg(long, env = "TESSERA_STATION_SBI_PORTS", default_value = "4501-4600")]
    sbi_ports: String,
    /// Also trust this device-provider CA certificate (PEM); the server's are synced.
    #[arg(long = "trust-ca")]
    trust_ca: Vec<PathBuf>,
}

impl DeviceArgs {
    fn options(&self) -> anyhow::Result<DeviceOptions> {
        let (a, b) = self
            .sbi_ports
            .split_once('-')
            .context("--sbi-ports must look like 4501-4600")?;
        let mut pems = Vec::new();
        for f in &self.trust_ca {
            pems.push(std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?);
        }
        Ok(DeviceOptions {
            first_port: a.trim().parse().context("--sbi-ports: first port")?,
            last_port: b.trim().parse().context("--sbi-ports: last port")?,
            trusted_ca_pem: pems,
            ..DeviceOptions::default()
        })
    }
}

fn read_password(auth: &Auth, env: &str, who: &str) -> anyhow::Result<String> {
    if let Some(f) = &auth.password_file {
        let s = std::fs::read_to_string(f)
            .with_context(|| format!("reading the password file {}", f.display()))?;
        return Ok(s.lines().next().unwrap_or_default().to_owned());
    }
    if let Ok(p) = std::env::var(env) {
        return Ok(p);
    }
    let mut err = std::io::stderr();
    write!(err, "Password for {who}: ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn exit_code(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::Validation | ErrorCode::InvalidInput | ErrorCode::Document | ErrorCode::Kit => 3,
        ErrorCode::WrongPassword
        | ErrorCode::LockedOut
        | ErrorCode::NoSlot
        | ErrorCode::OperatorRejected
        | ErrorCode::NotPermitted
        | ErrorCode::NotLoggedIn => 4,
        ErrorCode::Frozen => 5,
        ErrorCode::StoreUnusable
        | ErrorCode::NotInitialised
        | ErrorCode::AlreadyInitialised
        | ErrorCode::Recovery => 6,
        ErrorCode::Server => 7,
        ErrorCode::Device => 8,
        ErrorCode::BiometricCrossCheck => 9,
        _ => 1,
    }
}

#[allow(clippy::print_stdout, reason = "the CLI's output")]
fn say(text: &str) {
    println!("{text}");
}

fn print_output(json: bool, out: &Output) -> anyhow::Result<()> {
    if json {
        say(&serde_json::to_string_pretty(out)?);
    }
    Ok(())
}

fn open(home: &Path, auth: &Auth, clock: Arc<dyn Clock>) -> Result<Station, CommandError> {
    let password =
        read_password(auth, "TESSERA_STATION_PASSWORD", &auth.operator).map_err(|e| CommandError {
            code: ErrorCode::Io,
            message: e.to_string(),
            fields: vec![],
            freeze: None,
        })?;
    let (st, out) = commands::login(
        &LoginInput {
            home: home.into(),
            operator: auth.operator.clone(),
            password,
        },
        clock,
    )?;
    let r = &out.recovery;
    if !r.seals_completed.is_empty() || !r.seals_rolled_back.is_empty() || !r.decisions_reconciled.is_empty()
    {
        tracing::warn!(
            completed = r.seals_completed.len(),
            rolled_back = r.seals_rolled_back.len(),
            reconciled = r.decisions_reconciled.len(),
            "finished work an interruption left half done"
        );
    }
    Ok(st)
}

/// Entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let (code, msg) = match e.downcast_ref::<CommandError>() {
                Some(c) => (exit_code(c.code), render_error(c)),
                None => (1, format!("{e:#}")),
            };
            let _ = writeln!(std::io::stderr(), "error: {msg}");
            ExitCode::from(code)
        }
    }
}

fn render_error(c: &CommandError) -> String {
    if c.fields.is_empty() {
        return c.message.clone();
    }
    let mut s = format!("{} field(s) need attention:", c.fields.len());
    for f in &c.fields {
        s.push_str(&format!("\n  - {f}"));
    }
    s
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let home = cli.home.clone();
    match cli.command {
        Cmd::Ui { listen, dist } => {
            let bridge = tessera_station::bridge::Bridge::bind(
                tessera_station::bridge::BridgeConfig {
                    home: home.clone(),
                    listen,
                    dist: Some(dist),
                },
                clock,
            )?;
            say(&format!("Station UI: {}", bridge.url()));
            bridge.run()?;
        }
        Cmd::Init {
            center,
            machine,
            recovery_key,
            packet_keys,
            config,
            operators,
            auth,
        } => {
            let password = read_password(&auth, "TESSERA_STATION_PASSWORD", &auth.operator)?;
            let input = InitInput {
                home: home.clone(),
                center_id: center,
                machine_id: machine,
                recovery_key,
                packet_keys,
                config_dir: config,
                operators_file: operators,
                operator: auth.operator.clone(),
                password,
            };
            let (_st, id) = commands::init(&input, clock)?;
            if cli.json {
                print_output(true, &Output::Machine(id))?;
            } else {
                say(&format!("Station initialised in {}", home.display()));
                say(&format!("Center {}  machine {}", id.center_id, id.machine_id));
                say(&format!(
                    "Machine key fingerprint (read it to your administrator):\n  {}",
                    id.fingerprint
                ));
            }
        }
        Cmd::InitKit {
            kit,
            server_fingerprint,
            auth,
        } => {
            let bytes = commands::read_input_file(&kit, tessera_packet::wire::kit::MAX_KIT_BYTES as u64)
                .map_err(CommandError::from)?;
            let summary = tessera_station::kit::inspect(&bytes).map_err(CommandError::from)?;
            let norm = |f: &str| {
                f.chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<String>()
                    .to_ascii_uppercase()
            };
            if norm(&server_fingerprint) != norm(&summary.server_key_fingerprint) {
                return Err(CommandError {
                    code: ErrorCode::Kit,
                    message: format!(
                        "station kit: its server key fingerprint is {}, not the {} you gave; do not use this kit, ask the administrator",
                        summary.server_key_fingerprint, server_fingerprint
                    ),
                    fields: vec![],
                    freeze: None,
                }
                .into());
            }
            let password = read_password(&auth, "TESSERA_STATION_PASSWORD", &auth.operator)?;
            let (_st, id, summary) = tessera_station::kit::create(
                &home,
                &bytes,
                Some(&summary.kit_sha256),
                &auth.operator,
                &password,
                tessera_station::crypto::KdfParams::DEFAULT,
                clock,
            )
            .map_err(CommandError::from)?;
            if cli.json {
                print_output(true, &Output::Machine(id))?;
            } else {
                say(&format!(
                    "Station created in {} from the kit for center {} (server {}, key {})",
                    home.display(),
                    summary.center_id,
                    summary.server_url,
                    summary.server_key_fingerprint
                ));
                say(&format!(
                    "Machine key fingerprint (read it to your administrator):\n  {}",
                    id.fingerprint
                ));
                say(&format!(
                    "Next: tessera-station enrol-machine --operator {} --server {} --name <this machine>",
                    auth.operator, summary.server_url
                ));
            }
        }
        Cmd::Login { auth } => {
            let mut st = open(&home, &auth, clock)?;
            let out = st.execute(Command::Status)?;
            if cli.json {
                print_output(true, &out)?;
            } else {
                say(&format!("Logged in as {} (offline).", auth.operator));
                print_status(&out);
            }
        }
        Cmd::Status { auth } => {
            let mut st = open(&home, &auth, clock)?;
            let out = st.execute(Command::Status)?;
            if cli.json {
                print_output(true, &out)?
            } else {
                print_status(&out)
            }
        }
        Cmd::Register {
            auth,
            answers,
            captures,
            capture_quality,
            sbi,
            devices,
            draft,
            pre_registration,
            receipt,
        } => {
            let devices = if sbi { Some(devices.options()?) } else { None };
            register(
                &home,
                &auth,
                clock,
                &answers,
                captures.as_deref(),
                capture_quality,
                devices,
                draft,
                pre_registration.as_deref(),
                receipt.as_deref(),
                cli.json,
            )?;
        }
        Cmd::Operator { cmd } => operator_cmd(&home, clock, cmd, cli.json)?,
        Cmd::EnrolMachine { auth, server, name } => {
            let mut st = open(&home, &auth, clock)?;
            let out = st.execute(Command::EnrolMachine {
                server_url: server,
                name,
            })?;
            if cli.json {
                print_output(true, &out)?;
            } else if let Output::Enrolled(e) = &out {
                say(&format!(
                    "Enrolled with {} as machine {}.",
                    e.server_url, e.machine_id
                ));
                if e.machine_id_changed {
                    say("The server assigned a new machine id; RIDs from now on carry it.");
                }
                say(&format!(
                    "Machine key fingerprint (the administrator compares it): {}",
                    e.fingerprint
                ));
                say(&format!(
                    "Server key fingerprint (now trusted): {}",
                    e.server_key_fingerprint
                ));
                match e.status.as_str() {
                    "ACTIVE" => say("The machine is approved: run `sync`."),
                    _ => {
                        say("Waiting for the administrator to approve the machine; `sync` works after that.")
                    }
                }
            }
        }
        Cmd::Sync {
            auth,
            master_data_only,
            upload_only,
            retries,
            chunk_kib,
        } => {
            let options = SyncOptions {
                master_data: !upload_only,
                upload: !master_data_only,
                status: !master_data_only,
                retention: !master_data_only,
                max_retries: retries,
                chunk_bytes: chunk_kib.max(1) * 1024,
                ..SyncOptions::default()
            };
            run_sync(&home, &auth, clock, &options, cli.json)?;
        }
        Cmd::Upload {
            auth,
            retries,
            chunk_kib,
        } => {
            let options = SyncOptions {
                master_data: false,
                max_retries: retries,
                chunk_bytes: chunk_kib.max(1) * 1024,
                ..SyncOptions::default()
            };
            run_sync(&home, &auth, clock, &options, cli.json)?;
        }
        Cmd::Uploads { auth } => {
            let mut st = open(&home, &auth, clock)?;
            let out = st.execute(Command::Uploads)?;
            if cli.json {
                print_output(true, &out)?;
            } else if let Output::Uploads(list) = &out {
                say(&format!("{} packet(s):", list.len()));
                for u in list {
                    say(&format!(
                        "  {}  {:<9} server {:<11} {}{}",
                        u.rid,
                        u.state,
                        u.server_status.as_deref().unwrap_or("-"),
                        u.server_reason.as_deref().unwrap_or(""),
                        u.last_error
                            .as_deref()
                            .map(|e| format!(" last error: {e}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        Cmd::Devices { auth, devices } => {
            let mut st = open(&home, &auth, clock)?;
            let out = st.execute(Command::DiscoverDevices {
                devices: devices.options()?,
            })?;
            if cli.json {
                print_output(true, &out)?;
            } else if let Output::Devices(d) = &out {
                say(&format!("{} device(s):", d.devices.len()));
                for v in &d.devices {
                    say(&format!(
                        "  port {}  {:<6} {:<9} {:<10} {} ({})",
                        v.port, v.bio_type, v.sub_type, v.status, v.model, v.serial_no
                    ));
                }
                for (port, why) in &d.ignored {
                    say(&format!("  port {port} ignored: {why}"));
                }
            }
        }
        Cmd::Drafts { auth } => {
            let mut st = open(&home, &auth, clock)?;
            let out = st.execute(Command::MyDrafts)?;
            if cli.json {
                print_output(true, &out)?;
            } else if let Output::Drafts(ds) = out {
                say(&format!("{} unfinished draft(s):", ds.len()));
                for d in ds {
                    say(&format!(
                        "  draft {:<5} {:<6} last saved {}",
                        d.id,
                        d.process,
                        d.updated_at.format("%Y-%m-%d %H:%M")
                    ));
                }
            }
        }
        Cmd::Approve {
            auth,
            rids,
            all,
            reject,
            reason,
            list_reasons,
        } => {
            let mut st = open(&home, &auth, clock)?;
            if list_reasons {
                let out = st.execute(Command::RejectionReasons)?;
                if cli.json {
                    print_output(true, &out)?;
                } else if let Output::Reasons(rs) = out {
                    for r in rs {
                        say(&format!(
                            "{:<22} {}",
                            r.code,
                            r.label.get("eng").cloned().unwrap_or_default()
                        ));
                    }
                }
                return Ok(());
            }
            if let (Some(rid), Some(reason)) = (reject, reason) {
                st.execute(Command::Reject {
                    rid: rid.clone(),
                    reason: reason.clone(),
                })?;
                say(&format!("Rejected {rid} ({reason})."));
                return Ok(());
            }
            let targets: Vec<String> = if all {
                match st.execute(Command::Pending)? {
                    Output::Packets(p) => p.into_iter().map(|p| p.rid).collect(),
                    _ => vec![],
                }
            } else {
                rids
            };
            if targets.is_empty() {
                let out = st.execute(Command::Pending)?;
                if cli.json {
                    print_output(true, &out)?;
                } else if let Output::Packets(ps) = out {
                    say(&format!("{} packet(s) waiting for approval:", ps.len()));
                    for p in ps {
                        say(&format!(
                            "  {}  {:<6}  by {:<12}  {}",
                            p.rid, p.process, p.operator_id, p.created_at
                        ));
                    }
                    say(
                        "Approve with --rid <RID> (repeatable) or --all; reject with --reject <RID> --reason <CODE>.",
                    );
                }
                return Ok(());
            }
            let bar = progress(targets.len() as u64, "approving");
            for rid in &targets {
                st.execute(Command::Approve { rid: rid.clone() })?;
                bar.inc(1);
            }
            bar.finish_and_clear();
            say(&format!("Approved {} packet(s).", targets.len()));
        }
        Cmd::Export { auth, to } => {
            let mut st = open(&home, &auth, clock)?;
            let out = st.execute(Command::Export { dir: to })?;
            if cli.json {
                print_output(true, &out)?;
            } else if let Output::Exported(r) = out {
                say(&format!(
                    "Exported {} packet(s) to {}",
                    r.rids.len(),
                    r.dir.display()
                ));
                say(&format!("Signed manifest: {}", r.manifest.display()));
            }
        }
        Cmd::UpdateConfig {
            auth,
            config,
            operators,
        } => {
            anyhow::ensure!(
                config.is_some() || operators.is_some(),
                "give --config, --operators or both"
            );
            let mut st = open(&home, &auth, clock)?;
            if let Some(dir) = config {
                st.execute(Command::ApplyConfig { dir })?;
                say("Configuration applied.");
            }
            if let Some(file) = operators {
                st.execute(Command::ApplyOperators { file })?;
                say("Operators applied.");
            }
        }
        Cmd::HashPassword { password_file } => {
            let pw = read_password(
                &Auth {
                    operator: "the operator".into(),
                    password_file,
                },
                "TESSERA_STATION_PASSWORD",
                "the operator",
            )?;
            say(&tessera_station::operators::hash_password(&pw).map_err(CommandError::from)?);
        }
        Cmd::AddSlot { auth, new } => {
            let mut st = open(&home, &auth, clock)?;
            let pw = read_password(
                &Auth {
                    operator: new.clone(),
                    password_file: None,
                },
                "TESSERA_STATION_NEW_PASSWORD",
                &new,
            )?;
            st.execute(Command::AddOperatorSlot {
                operator: new.clone(),
                password: pw,
            })?;
            say(&format!("Operator {new} can now log in on this station."));
        }
    }
    Ok(())
}

fn progress(len: u64, msg: &'static str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(msg);
    bar
}

fn run_sync(
    home: &Path,
    auth: &Auth,
    clock: Arc<dyn Clock>,
    options: &SyncOptions,
    json: bool,
) -> anyhow::Result<()> {
    let mut st = open(home, auth, clock)?;
    let bar = progress(0, "sync");
    let report = block_on(st.sync_with(options, &mut |p: &Progress| match p {
        Progress::Phase { name } => bar.set_message(name.clone()),
        Progress::UploadStarted { rid, size, offset } => {
            bar.set_length(*size);
            bar.set_position(*offset);
            bar.set_message(rid.chars().skip(15).collect::<String>());
        }
        Progress::UploadProgress { sent, .. } => bar.set_position(*sent),
        Progress::Retrying {
            what,
            attempt,
            delay_ms,
            error,
        } => bar.println(format!("retry {attempt} of {what} in {delay_ms} ms: {error}")),
        _ => {}
    }))
    .map_err(CommandError::from)?
    .map_err(CommandError::from)?;
    bar.finish_and_clear();
    if json {
        print_output(true, &Output::Synced(Box::new(report.clone())))?;
    } else {
        print_sync(&report);
    }
    if let Some(why) = &report.stopped {
        return Err(CommandError {
            code: ErrorCode::Server,
            message: format!("sync stopped: {why}"),
            fields: vec![],
            freeze: None,
        }
        .into());
    }
    Ok(())
}

fn print_sync(r: &SyncReport) {
    if !r.master_data_items.is_empty() {
        let kinds: Vec<String> = r
            .master_data_items
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        say(&format!("Master data: {}", kinds.join(", ")));
    }
    if let Some(e) = &r.master_data_error {
        say(&format!("Master data NOT updated: {e}"));
    }
    say(&format!(
        "Uploaded {} packet(s); {} failed; {} still queued.",
        r.uploaded.len(),
        r.failed.len(),
        r.queued
    ));
    for f in &r.failed {
        say(&format!("  {}: {}", f.rid, f.error));
    }
    for s in &r.statuses {
        say(&format!(
            "  {}: server status {}{}",
            s.rid,
            s.to,
            s.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        ));
    }
    if !r.deleted.is_empty() {
        say(&format!(
            "Deleted {} processed packet file(s) after the retention period.",
            r.deleted.len()
        ));
    }
}

fn print_status(out: &Output) {
    let Output::Status(s) = out else { return };
    say(&format!(
        "Center {}  machine {}",
        s.machine.center_id, s.machine.machine_id
    ));
    say(&format!("Machine key: {}", s.machine.fingerprint));
    say(&format!(
        "Configuration {} (ID schema {})",
        s.config_version, s.id_schema_version
    ));
    let d = &s.dashboard;
    say(&format!(
        "Drafts {}  awaiting approval {}  approved {}  rejected {}  exported {}  uploaded {}  processed {}",
        d.drafts, d.awaiting_approval, d.approved, d.rejected, d.exported, d.uploaded, d.processed
    ));
    match &s.server {
        Some(l) => say(&format!(
            "Server {} (machine {}), last contact {}{}",
            l.url,
            l.machine_status,
            l.last_contact
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "never".into()),
            l.last_error
                .as_deref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        )),
        None => say("Not enrolled with a server (run enrol-machine)."),
    }
    match &s.frozen {
        Some(r) => say(&format!("REGISTRATION STOPPED: {r}")),
        None => say("Registration is open."),
    }
}

#[allow(clippy::too_many_arguments, reason = "one CLI subcommand's options")]
fn register(
    home: &Path,
    auth: &Auth,
    clock: Arc<dyn Clock>,
    answers_path: &Path,
    captures: Option<&Path>,
    quality: u8,
    devices: Option<DeviceOptions>,
    draft: Option<i64>,
    pre_registration: Option<&str>,
    receipt: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let bytes = commands::read_input_file(answers_path, 1024 * 1024).map_err(CommandError::from)?;
    let mut answers: Answers = serde_json::from_slice(&bytes)
        .with_context(|| format!("the answers file {} is not valid", answers_path.display()))?;
    let base = answers_path.parent().unwrap_or_else(|| Path::new("."));
    let mut st = open(home, auth, clock.clone())?;
    let bar = progress(5, "registering");
    let draft = match pre_registration {
        Some(reference) => Some(prefill(&mut st, reference, &mut answers)?),
        None => draft,
    };
    let id = match draft {
        Some(id) => id,
        None => match st.execute(Command::StartDraft {
            process: answers.process.clone(),
        })? {
            Output::DraftStarted { draft } => draft,
            _ => anyhow::bail!("unexpected output"),
        },
    };
    bar.set_message("answers");
    st.execute(Command::SaveAnswers {
        draft: id,
        answers: answers.clone(),
    })?;
    bar.inc(1);
    bar.set_message("documents");
    for (field, doc) in &answers.documents {
        let path = base.join(&doc.file);
        let content = commands::read_input_file(&path, 32 * 1024 * 1024).map_err(CommandError::from)?;
        st.import_document(id, field, &doc.doc_type, doc.ref_number.clone(), &content)
            .map_err(CommandError::from)?;
    }
    if let Some(photo) = &answers.biometrics.exception_photo {
        let content =
            commands::read_input_file(&base.join(photo), 32 * 1024 * 1024).map_err(CommandError::from)?;
        st.import_exception_photo(id, &content)
            .map_err(CommandError::from)?;
    }
    bar.inc(1);
    bar.set_message("biometrics");
    if let Some(dir) = captures {
        let review = st.review(id).map_err(CommandError::from)?;
        let wanted = review.form.map(|f| f.biometrics.attributes).unwrap_or_default();
        let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
        for e in std::fs::read_dir(dir)
            .with_context(|| format!("reading the captures folder {}", dir.display()))?
            .flatten()
        {
            let p = e.path();
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                files.insert(stem.to_owned(), p.clone());
            }
        }
        for a in wanted {
            if answers.biometrics.exceptions.contains_key(&a) {
                continue;
            }
            let Some(path) = files.get(a.as_str()) else {
                continue;
            };
            let image = commands::read_input_file(path, 8 * 1024 * 1024).map_err(CommandError::from)?;
            st.add_capture(
                id,
                Capture {
                    attribute: a,
                    image,
                    format: "IMPORTED".into(),
                    quality,
                    retries: 1,
                    force_captured: false,
                    sbi_data_block: None,
                    device: None,
                    captured_at: clock.now(),
                },
            )
            .map_err(CommandError::from)?;
        }
    }
    if let Some(devices) = devices {
        let out = st.execute(Command::CaptureBiometrics {
            draft: id,
            part: None,
            devices,
        })?;
        if let Output::Captured(parts) = out {
            for p in parts {
                if p.force_captured {
                    bar.println(format!(
                        "{:?}: kept below the quality threshold after {} attempts",
                        p.part, p.attempts
                    ));
                }
            }
        }
    }
    bar.inc(1);
    bar.set_message("review");
    let review = st.review(id).map_err(CommandError::from)?;
    bar.inc(1);
    if !review.ready {
        bar.finish_and_clear();
        let mut msg = format!(
            "draft {id} is not complete and was kept; fix the answers and run again with --draft {id}:"
        );
        for p in &review.problems {
            msg.push_str(&format!("\n  - {p}"));
        }
        return Err(CommandError {
            code: ErrorCode::Validation,
            message: msg,
            fields: vec![],
            freeze: None,
        }
        .into());
    }
    bar.set_message("sealing");
    let out = st.execute(Command::SealDraft { draft: id })?;
    bar.inc(1);
    bar.finish_and_clear();
    let Output::Sealed(s) = &out else {
        anyhow::bail!("unexpected output")
    };
    if let Some(r) = receipt {
        let is_pdf = r.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf"));
        let bytes = if is_pdf {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(&s.receipt_pdf_base64)
                .context("decoding the PDF receipt")?
        } else {
            s.receipt_html.clone().into_bytes()
        };
        std::fs::write(r, bytes).with_context(|| format!("writing the receipt {}", r.display()))?;
    }
    if json {
        print_output(true, &out)?;
    } else {
        say(&format!("Registered. RID {}", s.rid));
        match receipt {
            Some(r) => say(&format!(
                "Receipt written to {} - print it for the resident.",
                r.display()
            )),
            None => {
                say("Use --receipt <file.pdf> (or .html) to save the acknowledgement receipt for printing.")
            }
        }
        say("The packet now waits for a supervisor's approval.");
    }
    Ok(())
}

fn operator_cmd(home: &Path, clock: Arc<dyn Clock>, cmd: OperatorCmd, json: bool) -> anyhow::Result<()> {
    let (auth, command) = match cmd {
        OperatorCmd::EnrolBiometrics { auth, devices } => {
            let devices = devices.options()?;
            (auth, Command::EnrolOperatorBiometrics { devices })
        }
        OperatorCmd::Biometrics { auth } => (auth, Command::OperatorBiometrics),
    };
    let mut st = open(home, &auth, clock)?;
    let out = st.execute(command)?;
    if json {
        return print_output(true, &out);
    }
    if let Output::OperatorFingers(f) = &out {
        if f.fingers.is_empty() {
            say(&format!(
                "{} has no fingers enrolled on this station; run `tessera-station operator enrol-biometrics`.",
                f.operator_id
            ));
        } else {
            let names: Vec<&str> = f.fingers.iter().map(|a| a.as_str()).collect();
            say(&format!(
                "{} fingers enrolled for {}: {}",
                f.fingers.len(),
                f.operator_id,
                names.join(", ")
            ));
        }
        if !f.unusable.is_empty() {
            let names: Vec<&str> = f.unusable.iter().map(|a| a.as_str()).collect();
            say(&format!(
                "Not usable (capture again later to add them): {}",
                names.join(", ")
            ));
        }
    }
    Ok(())
}

/// Starts a draft from a pre-registration and merges its demographics under the answers file's.
fn prefill(st: &mut Station, reference: &str, answers: &mut Answers) -> anyhow::Result<i64> {
    let Output::Prefilled(p) = st.execute(Command::StartDraftFromPreRegistration {
        reference: reference.to_owned(),
    })?
    else {
        anyhow::bail!("unexpected output");
    };
    let Output::Draft(d) = st.execute(Command::Draft { draft: p.draft })? else {
        anyhow::bail!("unexpected output");
    };
    if let Some(pre) = d.body.answers {
        if answers.process != pre.process {
            anyhow::bail!(
                "pre-registration {} is for a {} registration but the answers file says {}",
                p.pre_registration_id,
                pre.process,
                answers.process
            );
        }
        for (k, v) in pre.demographics {
            answers.demographics.entry(k).or_insert(v);
        }
        if answers.languages.is_empty() {
            answers.languages = pre.languages;
        }
    }
    answers.pre_registration_id = Some(p.pre_registration_id);
    Ok(p.draft)
}
