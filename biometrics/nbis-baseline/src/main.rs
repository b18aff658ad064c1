//! `tessera-nbis-baseline`: the FVC-protocol verification evaluation of `tessera-bio eval` run with two engines on
//! the same rendered synthetic images: Tessera's (`extract` + MCC matcher) and NIST NBIS (mindtct + bozorth3,
//! through the `nbis-rs` crate, compiled only with the `nbis` feature).
//!
//! ```text
//! cargo run --release -p tessera-nbis-baseline --features nbis -- --persons 100 --impressions 4 --profile standard --seed 4000000
//! ```
//!
//! Protocol (ISO/IEC 19795-1, FVC pairing): right index finger of `persons` synthetic persons, `impressions`
//! impressions each, rendered to PNG (500 ppi, 320x400) exactly as `tessera-bio gen` writes them; genuine
//! comparisons are all impression pairs of a finger, impostor comparisons the first impressions of different
//! fingers. A failure to extract (an error or fewer than 4 minutiae) makes every comparison of that image score
//! the lowest value. Both engines run on one thread (bozorth3 keeps its work tables in C globals, so it is
//! not thread-safe); comparisons per second are measured with the probe's template prepared once (Tessera's
//! `mcc::Matcher`; NBIS's `Minutiae::compare` converts both sets on every call, as its API does).
//!
//! Prints EER, FNMR at FMR 1 %, 0.1 %, 0.01 %, ZeroFMR, failure to extract, extraction time and
//! comparisons per second for each engine. Without the `nbis` feature only Tessera's engine runs and the
//! output says so.
#![allow(
    clippy::print_stdout,
    clippy::cast_possible_truncation,
    reason = "command-line tool printing its figures"
)]

use std::time::Instant;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use indicatif::ProgressBar;
use tessera_biometrics::eval::{Metrics, metrics};
use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::mcc::{Matcher, MccTemplate};
use tessera_biometrics::synth::{Profile, SyntheticPerson};

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    Standard,
    Hard,
}

/// FVC-protocol evaluation of Tessera's engine and NIST NBIS on the same synthetic images.
#[derive(Parser)]
#[command(name = "tessera-nbis-baseline")]
struct Cli {
    /// Persons (one finger each: the right index).
    #[arg(long, default_value_t = 100)]
    persons: u64,
    /// Impressions per finger.
    #[arg(long, default_value_t = 4)]
    impressions: u32,
    #[arg(long, value_enum, default_value = "standard")]
    profile: ProfileArg,
    /// First person id (the evaluation sets of `docs/biometrics-evaluation.md` start at 4,000,000 and
    /// 5,000,000).
    #[arg(long, default_value_t = 4_000_000)]
    seed: u64,
    /// Skip NBIS even when it is compiled in.
    #[arg(long)]
    tessera_only: bool,
}

/// One engine's templates, comparison function and timings.
trait Engine {
    type Template;
    fn name(&self) -> &'static str;
    /// Extracts a template from the grey image and its PNG encoding; `None` is a failure to extract.
    fn extract(&self, gray: &image::GrayImage, png: &[u8]) -> Option<Self::Template>;
    /// Scores `probe` against every candidate (probe prepared once), higher = more similar.
    fn scores(&self, probe: &Self::Template, candidates: &[&Self::Template]) -> Vec<f64>;
}

struct Tessera;

impl Engine for Tessera {
    type Template = MccTemplate;
    fn name(&self) -> &'static str {
        "Tessera (extract + MCC)"
    }
    fn extract(&self, gray: &image::GrayImage, _png: &[u8]) -> Option<MccTemplate> {
        let e = tessera_biometrics::extract::extract(gray).ok()?;
        (e.minutiae.len() >= 4).then(|| MccTemplate::new(&e.minutiae))
    }
    fn scores(&self, probe: &MccTemplate, candidates: &[&MccTemplate]) -> Vec<f64> {
        let mut m = Matcher::new(probe.clone());
        candidates.iter().map(|c| f64::from(m.compare(c))).collect()
    }
}

#[cfg(feature = "nbis")]
struct Nbis;

#[cfg(feature = "nbis")]
impl Engine for Nbis {
    type Template = nbis::Minutiae;
    fn name(&self) -> &'static str {
        "NIST NBIS (mindtct + bozorth3, nbis-rs 0.1)"
    }
    fn extract(&self, _gray: &image::GrayImage, png: &[u8]) -> Option<nbis::Minutiae> {
        let m = nbis::extract_minutiae(png, Some(500.0)).ok()?;
        (m.get().len() >= 4).then_some(m)
    }
    fn scores(&self, probe: &nbis::Minutiae, candidates: &[&nbis::Minutiae]) -> Vec<f64> {
        candidates.iter().map(|c| f64::from(probe.compare(c))).collect()
    }
}

/// The rendered set: per person, per impression, the grey image and its PNG bytes.
type Set = Vec<Vec<(image::GrayImage, Vec<u8>)>>;

fn render(cli: &Cli) -> anyhow::Result<Set> {
    let profile = match cli.profile {
        ProfileArg::Standard => Profile::Standard,
        ProfileArg::Hard => Profile::Hard,
    };
    let bar = ProgressBar::new(cli.persons * u64::from(cli.impressions));
    let mut set = Vec::new();
    for id in cli.seed..cli.seed + cli.persons {
        let person = SyntheticPerson::with_profile(id, profile);
        let mut row = Vec::new();
        for imp in 0..cli.impressions {
            let img = person.finger(FingerPosition::RightIndex, imp);
            let mut png = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .context("encoding a PNG")?;
            row.push((img, png));
            bar.inc(1);
        }
        set.push(row);
    }
    bar.finish_and_clear();
    Ok(set)
}

struct Report {
    metrics: Metrics,
    failed: usize,
    images: usize,
    extract_ms: f64,
    per_second: f64,
}

fn evaluate<E: Engine>(engine: &E, set: &Set) -> anyhow::Result<Report> {
    let images: usize = set.iter().map(Vec::len).sum();
    let bar = ProgressBar::new(images as u64);
    let t = Instant::now();
    let templates: Vec<Vec<Option<E::Template>>> = set
        .iter()
        .map(|row| {
            row.iter()
                .map(|(gray, png)| {
                    bar.inc(1);
                    engine.extract(gray, png)
                })
                .collect()
        })
        .collect();
    bar.finish_and_clear();
    let extract_ms = t.elapsed().as_secs_f64() * 1e3 / images.max(1) as f64;
    let failed = templates.iter().flatten().filter(|t| t.is_none()).count();
    let floor = -1.0; // below every score of both engines
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    let t = Instant::now();
    let mut compared = 0usize;
    for row in &templates {
        for (i, a) in row.iter().enumerate() {
            let rest: Vec<&Option<E::Template>> = row.iter().skip(i + 1).collect();
            match a {
                Some(a) => {
                    let found: Vec<&E::Template> = rest.iter().filter_map(|b| b.as_ref()).collect();
                    let mut s = engine.scores(a, &found).into_iter();
                    compared += found.len();
                    for b in &rest {
                        genuine.push(if b.is_some() {
                            s.next().unwrap_or(floor)
                        } else {
                            floor
                        });
                    }
                }
                None => genuine.extend(rest.iter().map(|_| floor)),
            }
        }
    }
    let firsts: Vec<&Option<E::Template>> = templates.iter().filter_map(|row| row.first()).collect();
    for (i, a) in firsts.iter().enumerate() {
        let rest = firsts.get(i + 1..).unwrap_or(&[]);
        match a {
            Some(a) => {
                let found: Vec<&E::Template> = rest.iter().filter_map(|b| b.as_ref()).collect();
                let mut s = engine.scores(a, &found).into_iter();
                compared += found.len();
                for b in rest {
                    impostor.push(if b.is_some() {
                        s.next().unwrap_or(floor)
                    } else {
                        floor
                    });
                }
            }
            None => impostor.extend(rest.iter().map(|_| floor)),
        }
    }
    let per_second = compared as f64 / t.elapsed().as_secs_f64().max(1e-9);
    let metrics = metrics(&genuine, &impostor).context("no comparisons")?;
    Ok(Report {
        metrics,
        failed,
        images,
        extract_ms,
        per_second,
    })
}

fn print(name: &str, r: &Report) {
    let pct = |v: f64| v * 100.0;
    println!(
        "| {name} | {}/{} | {:.2} % | {:.2} % | {:.2} % | {:.2} % | {:.2} % | {:.0} | {:.1} ms |",
        r.failed,
        r.images,
        pct(r.metrics.eer),
        pct(r.metrics.fnmr_at_fmr_1e2),
        pct(r.metrics.fnmr_at_fmr_1e3),
        pct(r.metrics.fnmr_at_fmr_1e4),
        pct(r.metrics.zero_fmr),
        r.per_second,
        r.extract_ms
    );
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let set = render(&cli)?;
    let profile = match cli.profile {
        ProfileArg::Standard => "standard",
        ProfileArg::Hard => "hard",
    };
    println!(
        "profile {profile}, persons {} (ids {}..{}), {} impressions of the right index, one thread",
        cli.persons,
        cli.seed,
        cli.seed + cli.persons,
        cli.impressions
    );
    let tessera = evaluate(&Tessera, &set)?;
    println!(
        "genuine comparisons {}, impostor comparisons {}",
        tessera.metrics.genuine, tessera.metrics.impostor
    );
    println!(
        "| engine | failure to extract | EER | FNMR @ FMR 1 % | @ 0.1 % | @ 0.01 % | ZeroFMR | comparisons/s (1 thread) | extraction |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    print(Tessera.name(), &tessera);
    run_nbis(&cli, &set)?;
    Ok(())
}

#[cfg(feature = "nbis")]
fn run_nbis(cli: &Cli, set: &Set) -> anyhow::Result<()> {
    if !cli.tessera_only {
        print(Nbis.name(), &evaluate(&Nbis, set)?);
    }
    Ok(())
}

#[cfg(not(feature = "nbis"))]
fn run_nbis(_cli: &Cli, _set: &Set) -> anyhow::Result<()> {
    println!(
        "NBIS not run: built without the `nbis` feature (cargo run --release -p tessera-nbis-baseline --features nbis -- ...)"
    );
    Ok(())
}
