//! `tessera-demo`: the README's first command. Runs Tessera's main job on the embedded default.
//!
//! Today that is the packet round trip: fresh keys, a synthetic registration sealed into a packet, officer
//! and supervisor sign-offs, inspection without keys, verification and opening with the server's key. It
//! grows into the full end-to-end registration (server, SBI simulator, station, deduplication, UIN) as
//! those crates land.
#![allow(clippy::print_stdout, reason = "a demo prints its progress")]

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;

/// Runs Tessera's end-to-end demo on the embedded default and prints each step.
#[derive(Debug, Parser)]
#[command(name = "tessera-demo", version, about, long_about)]
struct Args {
    /// Folder for everything the demo creates (keys, packets, opened content). Default: a new folder under
    /// the system temporary directory. An existing folder must be empty.
    #[arg(long, env = "TESSERA_DEMO_DIR")]
    dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
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
    println!("-- sealed registration packet: seal, sign off, inspect, verify, open");
    print!("{}", tessera_packet::sample::run_demo(&dir)?);
    println!("-- done. Station, devices and server steps join this demo as they land (see README).");
    Ok(())
}
