//! `tessera-packet`: create keys, and inspect, verify, open and extract sealed registration packets.
#![allow(clippy::print_stdout, reason = "a command-line tool prints its results")]

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use tessera_packet::{Decision, keys, read_file};

/// Create keys, and inspect, verify, open and extract sealed Tessera registration packets.
///
/// A packet (`<RID>.tpkt`) is a tar archive of three age-encrypted sections (id, evidence, optional), a
/// manifest with their sizes and SHA-256 hashes, the station's signature over the manifest, and officer and
/// supervisor sign-offs. `inspect` needs no keys; `verify` needs the station's public key; `open` needs the
/// server's packet key.
#[derive(Debug, Parser)]
#[command(name = "tessera-packet", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a key pair: a machine (station) signing key or a server packet key.
    Keygen {
        /// `machine` (Ed25519 signing key: <name>.key and <name>.pub) or `server` (age X25519 identity:
        /// <name>.key readable by `age -d -i`, and <name>.pub with the age1... recipient).
        kind: KeyKind,
        /// Folder to write the key files to (created if missing). Existing files are never overwritten.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        /// Base name of the files.
        #[arg(long)]
        name: Option<String>,
    },
    /// Show a packet's manifest and sign-offs. Needs no keys; shows no personal data.
    Inspect {
        /// The packet file.
        packet: PathBuf,
        /// Print the manifest as JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Check the machine signature, every section hash and every sign-off signature.
    Verify {
        /// The packet file.
        packet: PathBuf,
        /// The machine's public key file (or its secret key file).
        #[arg(long)]
        machine_key: PathBuf,
    },
    /// Verify, then decrypt a packet into a folder (one sub-folder per section).
    Open {
        /// The packet file.
        packet: PathBuf,
        /// The server's packet key (an age identity file, AGE-SECRET-KEY-1...).
        #[arg(long)]
        identity: PathBuf,
        /// The machine's public key file; without it the machine signature is not checked.
        #[arg(long)]
        machine_key: Option<PathBuf>,
        /// Folder to write into; must be empty or absent.
        #[arg(long)]
        out: PathBuf,
    },
    /// Copy a section's raw age file to stdout or a file (decrypt it with `age -d -i server.key`).
    Extract {
        /// The packet file.
        packet: PathBuf,
        /// `id`, `evidence` or `optional`.
        #[arg(long)]
        section: String,
        /// Output file; stdout if absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Seal a synthetic sample packet with fresh keys, then inspect, verify and open it.
    Demo {
        /// Folder for the demo's keys, packet and opened content (a temporary folder if absent).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KeyKind {
    Machine,
    Server,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keygen { kind, out_dir, name } => keygen(kind, &out_dir, name),
        Command::Inspect { packet, json } => {
            let p = read_file(&packet)?;
            if json {
                println!("{}", String::from_utf8_lossy(p.manifest_bytes()));
            } else {
                print!("{}", summary(&p));
            }
            Ok(())
        }
        Command::Verify { packet, machine_key } => {
            let key = keys::read_verifying_key(&machine_key)?;
            let mut p = read_file(&packet)?;
            p.verify(&key)
                .with_context(|| format!("{} failed verification", packet.display()))?;
            println!(
                "OK {}: machine signature, {} section hashes and {} sign-off(s) verified",
                p.manifest().rid,
                p.manifest().sections.len(),
                p.signoffs().len()
            );
            Ok(())
        }
        Command::Open {
            packet,
            identity,
            machine_key,
            out,
        } => {
            let ids = keys::read_packet_identities(&identity)?;
            let mut p = read_file(&packet)?;
            match machine_key {
                Some(k) => p.verify(&keys::read_verifying_key(&k)?)?,
                None => eprintln!("warning: no --machine-key given; the machine signature was not checked"),
            }
            let id = pick_identity(&ids, p.manifest())?;
            p.open_to_dir(id, &out)?;
            println!("opened {} into {}", p.manifest().rid, out.display());
            Ok(())
        }
        Command::Extract { packet, section, out } => {
            let mut p = read_file(&packet)?;
            match out {
                Some(path) => {
                    let mut f = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    p.extract_section(&section, &mut f)?;
                    f.sync_all()?;
                }
                None => {
                    let mut stdout = io::stdout().lock();
                    p.extract_section(&section, &mut stdout)?;
                    stdout.flush()?;
                }
            }
            Ok(())
        }
        Command::Demo { dir } => tessera_packet_demo(dir),
    }
}

fn pick_identity<'a>(
    ids: &'a [age::x25519::Identity],
    manifest: &tessera_packet::Manifest,
) -> Result<&'a age::x25519::Identity> {
    ids.iter()
        .find(|id| manifest.recipients.contains(&id.to_public().to_string()))
        .with_context(|| {
            format!(
                "none of the identities in the key file is a recipient of this packet; it is encrypted to {}",
                manifest.recipients.join(", ")
            )
        })
}

fn keygen(kind: KeyKind, dir: &std::path::Path, name: Option<String>) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    match kind {
        KeyKind::Machine => {
            let name = name.unwrap_or_else(|| "machine".into());
            let key = keys::generate_signing_key()?;
            let (sk, pk) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
            keys::write_secret_file(&sk, &keys::encode_signing_key(&key))?;
            std::fs::write(&pk, keys::encode_verifying_key(&key.verifying_key()))?;
            println!(
                "machine key: {} (secret), {} (public)",
                sk.display(),
                pk.display()
            );
            println!("fingerprint: {}", keys::fingerprint(&key.verifying_key()));
        }
        KeyKind::Server => {
            let name = name.unwrap_or_else(|| "server".into());
            let id = keys::generate_packet_identity();
            let (sk, pk) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
            keys::write_secret_file(&sk, &keys::encode_packet_identity(&id))?;
            std::fs::write(&pk, format!("{}\n", id.to_public()))?;
            println!(
                "server packet key: {} (secret, an age identity), {} (public)",
                sk.display(),
                pk.display()
            );
        }
    }
    Ok(())
}

fn summary<R: std::io::Read + std::io::Seek>(p: &tessera_packet::SealedPacket<R>) -> String {
    use std::fmt::Write as _;
    let m = p.manifest();
    let mut s = String::new();
    let _ = writeln!(s, "RID            {}", m.rid);
    let _ = writeln!(s, "type           {}", m.packet_type);
    let _ = writeln!(s, "center         {}", m.center_id);
    let _ = writeln!(
        s,
        "machine        {} (key {})",
        m.machine_id,
        m.machine_key_id.get(..16).unwrap_or_default()
    );
    let _ = writeln!(s, "created        {}", m.created_at.to_rfc3339());
    let _ = writeln!(s, "format         {} {}", m.format, m.format_version);
    let _ = writeln!(s, "ID schema      {}", m.id_schema_version);
    let _ = writeln!(s, "recipients     {}", m.recipients.join(", "));
    for sec in &m.sections {
        let _ = writeln!(
            s,
            "section        {:<9} {:>10} bytes sealed, {:>10} bytes plain, sha256 {}",
            sec.name,
            sec.ciphertext_size,
            sec.plaintext_size,
            sec.ciphertext_sha256.get(..16).unwrap_or_default()
        );
    }
    if p.signoffs().is_empty() {
        let _ = writeln!(s, "sign-offs      none");
    }
    for so in p.signoffs() {
        let decision = match &so.decision {
            Decision::Approved => "approved".to_owned(),
            Decision::Rejected { reason } => format!("rejected ({reason})"),
        };
        let _ = writeln!(
            s,
            "sign-off       {:?} {} {} at {}",
            so.role,
            so.operator_id,
            decision,
            so.at.to_rfc3339()
        );
    }
    s
}

fn tessera_packet_demo(dir: Option<PathBuf>) -> Result<()> {
    let tmp;
    let dir = match dir {
        Some(d) => d,
        None => {
            tmp = tempdir()?;
            tmp.clone()
        }
    };
    std::fs::create_dir_all(&dir)?;
    if std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} is not empty; give an empty or new folder", dir.display());
    }
    let report = tessera_packet::sample::run_demo(&dir)?;
    print!("{report}");
    Ok(())
}

fn tempdir() -> Result<PathBuf> {
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    let d = std::env::temp_dir().join(format!("tessera-packet-demo-{}", hex::encode(seed)));
    Ok(d)
}
