//! `tessera-bio`: synthetic data generation and FVC-style verification evaluation.
//!
//! - `tessera-bio gen --persons N --impressions M --out DIR [--profile hard] [--seed S]` writes
//!   `DIR/<person>_<impression>.png` (right index finger, 500 ppi) and `DIR/truth.csv` (ground-truth
//!   minutiae per image).
//! - `tessera-bio eval --persons N --impressions M [--profile hard] [--seed S]` extracts, compares with
//!   the FVC protocol (genuine: all impression pairs of a finger; impostor: first impressions of different
//!   fingers) and prints EER, FNMR at FMR 1 %, 0.1 %, 0.01 %, ZeroFMR, failure-to-extract and timings.
#![allow(
    clippy::print_stdout,
    clippy::disallowed_methods,
    reason = "command-line tool"
)]

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::ProgressBar;
use tessera_biometrics::eval::metrics;
use tessera_biometrics::extract::extract;
use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::mcc::{Matcher, MccTemplate};
use tessera_biometrics::synth::{Profile, SyntheticPerson};

#[derive(Parser)]
#[command(
    name = "tessera-bio",
    about = "Tessera biometrics: synthetic data and evaluation"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    Standard,
    Hard,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a synthetic FVC-like set (PNG) with ground truth.
    Gen {
        #[arg(long, default_value_t = 10)]
        persons: u64,
        #[arg(long, default_value_t = 4)]
        impressions: u32,
        #[arg(long, value_enum, default_value = "standard")]
        profile: ProfileArg,
        /// First person id (sets are disjoint when their id ranges are).
        #[arg(long, default_value_t = 1_000_000)]
        seed: u64,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Run the FVC-style verification evaluation on a synthetic set.
    Eval {
        #[arg(long, default_value_t = 50)]
        persons: u64,
        #[arg(long, default_value_t = 4)]
        impressions: u32,
        #[arg(long, value_enum, default_value = "standard")]
        profile: ProfileArg,
        #[arg(long, default_value_t = 2_000_000)]
        seed: u64,
        /// Write the DET curve (threshold, FMR, FNMR) as CSV here.
        #[arg(long)]
        det: Option<std::path::PathBuf>,
    },
}

fn profile(p: ProfileArg) -> Profile {
    match p {
        ProfileArg::Standard => Profile::Standard,
        ProfileArg::Hard => Profile::Hard,
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Gen {
            persons,
            impressions,
            profile: p,
            seed,
            out,
        } => {
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let mut truth = std::fs::File::create(out.join("truth.csv"))?;
            writeln!(truth, "image,x,y,direction_rad,kind")?;
            let bar = ProgressBar::new(persons * u64::from(impressions));
            for id in seed..seed + persons {
                let person = SyntheticPerson::with_profile(id, profile(p));
                for imp in 0..impressions {
                    let i = person.finger_impression(FingerPosition::RightIndex, imp);
                    let name = format!("{id}_{imp}.png");
                    i.image.save(out.join(&name))?;
                    for m in &i.minutiae {
                        writeln!(
                            truth,
                            "{name},{:.1},{:.1},{:.4},{:?}",
                            m.x, m.y, m.direction, m.kind
                        )?;
                    }
                    bar.inc(1);
                }
            }
            bar.finish();
            println!(
                "wrote {} images to {}",
                persons * u64::from(impressions),
                out.display()
            );
        }
        Cmd::Eval {
            persons,
            impressions,
            profile: p,
            seed,
            det,
        } => {
            let bar = ProgressBar::new(persons * u64::from(impressions));
            let t0 = Instant::now();
            let mut templates: Vec<Vec<Option<MccTemplate>>> = Vec::new();
            let (mut extracted, mut failed) = (0usize, 0usize);
            let mut extract_time = 0.0;
            for id in seed..seed + persons {
                let person = SyntheticPerson::with_profile(id, profile(p));
                let mut row = Vec::new();
                for imp in 0..impressions {
                    let img = person.finger(FingerPosition::RightIndex, imp);
                    let t = Instant::now();
                    let e = extract(&img);
                    extract_time += t.elapsed().as_secs_f64();
                    match e {
                        Ok(e) if e.minutiae.len() >= 4 => {
                            extracted += 1;
                            row.push(Some(MccTemplate::new(&e.minutiae)));
                        }
                        _ => {
                            failed += 1;
                            row.push(None);
                        }
                    }
                    bar.inc(1);
                }
                templates.push(row);
            }
            bar.finish();
            let gen_extract = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
            let score = |a: &Option<MccTemplate>, b: &Option<MccTemplate>| match (a, b) {
                (Some(a), Some(b)) => f64::from(Matcher::new(a.clone()).compare(b)),
                _ => 0.0, // failure to extract counts as a non-match
            };
            for row in &templates {
                for (i, a) in row.iter().enumerate() {
                    for b in row.iter().skip(i + 1) {
                        genuine.push(score(a, b));
                    }
                }
            }
            let firsts: Vec<&Option<MccTemplate>> = templates.iter().filter_map(|row| row.first()).collect();
            for (i, a) in firsts.iter().enumerate() {
                for b in firsts.iter().skip(i + 1) {
                    impostor.push(score(a, b));
                }
            }
            let compare_time = t1.elapsed().as_secs_f64();
            let m = metrics(&genuine, &impostor).context("no comparisons")?;
            let pct = |v: f64| v * 100.0;
            println!(
                "profile {:?}, persons {persons} (ids {seed}..{}), impressions {impressions}, finger: right index",
                profile(p),
                seed + persons
            );
            println!("failure to extract: {failed} of {}", extracted + failed);
            println!(
                "genuine comparisons {}, impostor comparisons {}",
                m.genuine, m.impostor
            );
            println!("EER {:.2} %", pct(m.eer));
            println!(
                "FNMR at FMR 1 %: {:.2} %, 0.1 %: {:.2} %, 0.01 %: {:.2} %, ZeroFMR {:.2} %",
                pct(m.fnmr_at_fmr_1e2),
                pct(m.fnmr_at_fmr_1e3),
                pct(m.fnmr_at_fmr_1e4),
                pct(m.zero_fmr)
            );
            println!(
                "generation + extraction {gen_extract:.1} s (extraction {:.1} ms per image); comparisons {compare_time:.2} s",
                extract_time * 1e3 / (extracted + failed).max(1) as f64
            );
            if let Some(path) = det {
                let mut f = std::fs::File::create(&path)?;
                writeln!(f, "threshold,fmr,fnmr")?;
                for (t, a, b) in &m.det {
                    writeln!(f, "{t},{a},{b}")?;
                }
                println!("DET curve written to {}", path.display());
            }
        }
    }
    Ok(())
}
