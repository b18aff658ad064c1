//! `tessera-demo`: the README's first command. Runs Tessera's main job on the embedded default.
//!
//! In one process, with fresh temporary folders and keys: the sync server (embedded SQLite), the SBI device
//! simulator, and two stations. The administrator publishes the operators and the device provider's CA and
//! approves the machines over the admin API; the officer registers three synthetic residents
//! (demographics from the sample country, fingers, irises and face captured from the simulator over SBI
//! HTTP) and seals each packet; the supervisor approves; the station syncs; the server processes them and
//! issues UINs, credentials and printable cards. Then the first resident registers again at a second
//! station: held as a duplicate, an adjudicator decides. The demo prints each RID with its outcome and
//! credential files, and the notification outbox. `--packet-only` runs the earlier packet round trip
//! (seal, sign off, inspect, verify, open).
#![allow(clippy::print_stdout, reason = "a demo prints its progress")]

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;

/// Runs Tessera's end-to-end demo on the embedded default and prints each step.
#[derive(Debug, Parser)]
#[command(name = "tessera-demo", version, about, long_about)]
struct Args {
    /// Folder for everything the demo creates (server data, stations, keys, packets). Default: a new folder
    /// under the system temporary directory. An existing folder must be empty.
    #[arg(long, env = "TESSERA_DEMO_DIR")]
    dir: Option<PathBuf>,
    /// Only the packet round trip (no server, devices or station).
    #[arg(long)]
    packet_only: bool,
    /// Log level for the components (e.g. `info`, `tessera_server=debug`); default: warnings only.
    #[arg(long, env = "TESSERA_LOG", default_value = "warn")]
    log: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_writer(std::io::stderr)
        .init();
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("tessera-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "{} is not empty; choose an empty or new folder with --dir",
            dir.display()
        );
    }
    println!("Tessera demo in {}", dir.display());
    if args.packet_only {
        println!("-- sealed registration packet: seal, sign off, inspect, verify, open");
        print!("{}", tessera_packet::sample::run_demo(&dir)?);
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut out = std::io::stdout();
    rt.block_on(tessera_e2e::demo::run_with(
        &dir,
        tessera_e2e::demo::Paths::default(),
        &mut out,
        true,
    ))?;
    Ok(())
}
