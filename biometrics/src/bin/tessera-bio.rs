//! `tessera-bio`: synthetic data generation and FVC-style verification evaluation.
//!
//! - `tessera-bio gen --persons N --impressions M --out DIR [--fingers 2|1,2,7|all] [--format png|iso]
//!   [--profile hard] [--seed S]` writes `DIR/<person>_<finger code>_<impression>.png` (500 ppi; default the
//!   right index, code 2) or `.fir` (an ISO/IEC 19794-4:2011 finger image record with the quality score) and
//!   `DIR/truth.csv` (ground-truth minutiae per image).
//! - `tessera-bio eval --persons N --impressions M [--profile hard] [--seed S]` extracts, compares with
//!   the FVC protocol (genuine: all impression pairs of a finger; impostor: first impressions of different
//!   fingers) and prints EER, FNMR at FMR 1 %, 0.1 %, 0.01 %, ZeroFMR, failure-to-extract and timings.
//! - `tessera-bio calibrate --persons N --comparisons C` measures the impostor score distribution of the fast
//!   minutiae-level generator (standard and hard profiles) and prints the FMR table of `calibration`.
//! - `tessera-bio identify --persons N --mated M --nonmated K --fingers F --gallery FILE` builds (or reuses) a
//!   gallery of N synthetic persons and runs an open-set 1:N evaluation: FNIR at FPIR 1 % and 0.1 %, rank-1,
//!   index penetration and misses, the mate's index rank, the index's FNIR loss against an exhaustive search
//!   per penetration (mates it ranks out of the shortlist that an exhaustive search finds), search latency
//!   p50/p99. With a coarse step (one or two probe fingers by default; `--coarse-share`) it states the share
//!   the histogram scan passes to it and the share passed on to the full matcher, and reports the mates'
//!   ranks and misses for the whole index stage and for the histogram scan alone. `--source extracted`
//!   renders the fingers and extracts their minutiae instead of using the fast minutiae-level generator.
#![allow(
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation,
    reason = "command-line tool"
)]

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::ProgressBar;
use rayon::prelude::*;
use tessera_biometrics::eval::metrics;
use tessera_biometrics::extract::extract;
use tessera_biometrics::gallery::{Gallery, Probe, SearchOptions};
use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::mcc::{Matcher, MccTemplate};
use tessera_biometrics::minutiae::Minutia;
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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ImageFormatArg {
    Png,
    Iso,
}

/// Parses `--fingers`: `all` or comma-separated ISO codes 1-10.
fn parse_fingers(s: &str) -> anyhow::Result<Vec<FingerPosition>> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(FingerPosition::TEN.to_vec());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let code: u8 = part
            .trim()
            .parse()
            .with_context(|| format!("--fingers: {part:?} is not a finger code (1-10) or `all`"))?;
        let p = FingerPosition::from_code(code)
            .filter(|p| p.is_single_finger() && code <= 10)
            .with_context(|| format!("--fingers: {code} is not a single-finger code 1-10"))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SourceArg {
    Fast,
    Extracted,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    Standard,
    Hard,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a synthetic FVC-like set (PNG or ISO/IEC 19794-4 records) with ground truth.
    Gen {
        #[arg(long, default_value_t = 10)]
        persons: u64,
        #[arg(long, default_value_t = 4)]
        impressions: u32,
        /// Fingers per person: ISO position codes separated by commas (1 right thumb ... 10 left little), or
        /// `all` for the ten.
        #[arg(long, default_value = "2")]
        fingers: String,
        /// Image file format: `png`, or `iso` for one ISO/IEC 19794-4:2011 record per image (`.fir`, PNG
        /// compressed, with the NFIQ 2-style quality score).
        #[arg(long, value_enum, default_value = "png")]
        format: ImageFormatArg,
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
        /// Write the DET curve (threshold, FMR, FNMR) as CSV here, and as a PNG plot beside it (`.png`).
        #[arg(long)]
        det: Option<std::path::PathBuf>,
    },
    /// Measure the impostor score distribution (fast minutiae generator) and print the calibration table.
    Calibrate {
        /// Persons per profile (standard and hard).
        #[arg(long, default_value_t = 1000)]
        persons: u64,
        /// Impostor comparisons in total.
        #[arg(long, default_value_t = 2_000_000)]
        comparisons: u64,
        #[arg(long, default_value_t = 9_000_000)]
        seed: u64,
    },
    /// Open-set 1:N evaluation on a synthetic gallery (fast minutiae generator, ten fingers per person).
    Identify {
        /// Persons in the gallery.
        #[arg(long, default_value_t = 10_000)]
        persons: u64,
        /// Mated searches (a second impression of a gallery person).
        #[arg(long, default_value_t = 300)]
        mated: u64,
        /// Non-mated searches (persons not in the gallery).
        #[arg(long, default_value_t = 1000)]
        nonmated: u64,
        /// Fingers per probe (the first F of the ISO order: right thumb, right index, ...).
        #[arg(long, default_value_t = 10)]
        fingers: usize,
        #[arg(long, value_enum, default_value = "standard")]
        profile: ProfileArg,
        /// First gallery person id.
        #[arg(long, default_value_t = 20_000_000)]
        seed: u64,
        /// Share of persons passed from the index to the full matcher (1 = exhaustive); default: chosen by
        /// the number of probe fingers (`gallery::auto_penetration`).
        #[arg(long)]
        penetration: Option<f64>,
        /// Share of persons the histogram scan passes to the coarse re-ranking step (the cascade; a share
        /// not above the penetration skips it); default: chosen by the number of probe fingers
        /// (`gallery::auto_coarse_share`).
        #[arg(long)]
        coarse_share: Option<f64>,
        /// Gallery file; reused when it already holds `persons` persons.
        #[arg(long)]
        gallery: std::path::PathBuf,
        /// Where the minutiae come from: `fast` (the minutiae-level generator, ten fingers per gallery
        /// person) or `extracted` (rendered images run through the extractor; gallery persons get the same
        /// fingers as the probes, since rendering and extraction cost ~0.1 s per finger).
        #[arg(long, value_enum, default_value = "fast")]
        source: SourceArg,
    },
}

fn synthetic_fingers(id: u64, impression: u32, n: usize, p: Profile) -> Vec<(FingerPosition, Vec<Minutia>)> {
    let person = SyntheticPerson::with_profile(id, p);
    FingerPosition::TEN
        .iter()
        .take(n)
        .map(|&f| (f, person.finger_minutiae(f, impression)))
        .collect()
}

/// The first `n` fingers of a person from the chosen source; fingers whose extraction fails (or finds fewer
/// than 4 minutiae) are left out.
fn person_fingers(
    source: SourceArg,
    id: u64,
    impression: u32,
    n: usize,
    p: Profile,
) -> Vec<(FingerPosition, Vec<Minutia>)> {
    match source {
        SourceArg::Fast => synthetic_fingers(id, impression, n, p),
        SourceArg::Extracted => {
            let person = SyntheticPerson::with_profile(id, p);
            FingerPosition::TEN
                .iter()
                .take(n)
                .filter_map(|&f| {
                    let e = extract(&person.finger(f, impression)).ok()?;
                    (e.minutiae.len() >= 4).then_some((f, e.minutiae))
                })
                .collect()
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

fn calibrate(persons: u64, comparisons: u64, seed: u64) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let mut impostor: Vec<f32> = Vec::new();
    let mut genuine: Vec<f32> = Vec::new();
    for (pi, prof) in [Profile::Standard, Profile::Hard].into_iter().enumerate() {
        let base = seed + pi as u64 * 1_000_000;
        // Templates: person x position, impressions 0 and 1.
        let ids: Vec<u64> = (base..base + persons).collect();
        let t: Vec<[Vec<MccTemplate>; 2]> = ids
            .par_iter()
            .map(|&id| {
                let a = synthetic_fingers(id, 0, 10, prof);
                let b = synthetic_fingers(id, 1, 10, prof);
                [
                    a.iter().map(|(_, m)| MccTemplate::new(m)).collect(),
                    b.iter().map(|(_, m)| MccTemplate::new(m)).collect(),
                ]
            })
            .collect();
        let per_probe = (comparisons / 2 / (persons * 10)).max(1) as usize;
        let n = t.len();
        let res: Vec<(Vec<f32>, f32)> = (0..n * 10)
            .into_par_iter()
            .map(|k| {
                let (a, f) = (k / 10, k % 10);
                let probe = t
                    .get(a)
                    .and_then(|x| x.first())
                    .and_then(|x| x.get(f))
                    .cloned()
                    .unwrap_or_default();
                let mut m = Matcher::new(probe);
                let mut rng = tessera_biometrics::rng::Rng::new(seed ^ (k as u64).wrapping_mul(0x9E37_79B9));
                let mut imp = Vec::with_capacity(per_probe);
                for _ in 0..per_probe {
                    let mut b = rng.below(n as u64) as usize;
                    if b == a {
                        b = (b + 1) % n;
                    }
                    if let Some(c) = t.get(b).and_then(|x| x.get(1)).and_then(|x| x.get(f)) {
                        imp.push(m.compare(c));
                    }
                }
                let g = t
                    .get(a)
                    .and_then(|x| x.get(1))
                    .and_then(|x| x.get(f))
                    .map(|c| m.compare(c))
                    .unwrap_or(0.0);
                (imp, g)
            })
            .collect();
        for (imp, g) in res {
            impostor.extend(imp);
            genuine.push(g);
        }
    }
    impostor.sort_by(|a, b| b.total_cmp(a));
    genuine.sort_by(f32::total_cmp);
    let n = impostor.len();
    println!(
        "{} impostor and {} genuine comparisons (fast generator, standard + hard, persons {}..{} and {}..{}), {:.1} s",
        n,
        genuine.len(),
        seed,
        seed + persons,
        seed + 1_000_000,
        seed + 1_000_000 + persons,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "max impostor score {:.4}",
        impostor.first().copied().unwrap_or(0.0)
    );
    println!("pub const TABLE: &[(f32, f64)] = &[");
    println!("    (0.000, 1.0),");
    let mut last = 0.0f32;
    for fmr in [
        0.5, 0.2, 1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 5e-6, 2e-6, 1e-6,
    ] {
        let k = (fmr * n as f64).floor() as usize;
        if k < 5 {
            break;
        }
        let s = impostor.get(k).copied().unwrap_or(0.0) + 1e-4;
        if s <= last + 1e-4 {
            continue;
        }
        last = s;
        let fnmr = genuine.partition_point(|&g| g < s) as f64 / genuine.len().max(1) as f64;
        println!("    ({s:.4}, {fmr:e}), // genuine below: {:.2} %", fnmr * 100.0);
    }
    println!("];");
    Ok(())
}

#[allow(clippy::too_many_arguments, reason = "command-line options")]
fn identify(
    persons: u64,
    mated: u64,
    nonmated: u64,
    fingers: usize,
    p: Profile,
    seed: u64,
    opts: SearchOptions,
    path: &std::path::Path,
    source: SourceArg,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let gallery_fingers = if source == SourceArg::Fast { 10 } else { fingers };
    let failed = std::sync::atomic::AtomicUsize::new(0);
    match Gallery::open(path) {
        Ok(g) if g.len() as u64 == persons => {}
        _ => {
            let mut g = Gallery::create(path)?;
            let bar = ProgressBar::new(persons);
            let chunk = 5_000u64;
            let mut start = seed;
            while start < seed + persons {
                let end = (start + chunk).min(seed + persons);
                let batch: Vec<tessera_biometrics::gallery::PersonFingers> = (start..end)
                    .into_par_iter()
                    .map(|id| {
                        let f = person_fingers(source, id, 0, gallery_fingers, p);
                        failed.fetch_add(gallery_fingers - f.len(), std::sync::atomic::Ordering::Relaxed);
                        (format!("P{id}"), f)
                    })
                    .filter(|(_, f)| !f.is_empty())
                    .collect();
                g.insert_batch(&batch)?;
                bar.inc(end - start);
                start = end;
            }
            bar.finish();
            g.save()?;
        }
    }
    let build = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let g = Gallery::open(path)?;
    let open_s = t1.elapsed().as_secs_f64();
    let size = std::fs::metadata(path)?.len();
    println!(
        "gallery {} persons x {gallery_fingers} fingers ({:.2} GB, profile {p:?}, {} minutiae, ids {seed}..{}): ready in {build:.1} s, open + validate {open_s:.2} s",
        g.len(),
        size as f64 / 1e9,
        if source == SourceArg::Fast {
            "fast-generator"
        } else {
            "extracted"
        },
        seed + persons
    );
    let top = 10;
    let mut mated_scores = Vec::new(); // (mate score or None, rank-1?)
    let mut nonmated_top = Vec::new();
    let mut lat = Vec::new();
    let mut shortlisted = 0usize;
    let mut coarse_scored = 0usize;
    // The whole index stage's rank of each mate (histogram scan, then the coarse step), and the histogram
    // scan's alone.
    let mut index_ranks = Vec::new();
    let mut hist_ranks = Vec::new();
    // Index rank and exhaustive-search score of each mate ranked out of the smallest reported shortlist
    // (None: not in the exhaustive top 10 either).
    let mut exhaustive_found: Vec<(usize, Option<f64>)> = Vec::new();
    let shares = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2];
    let share_len = |sh: f64| ((sh * g.len() as f64).ceil() as usize).max(1);
    let bar = ProgressBar::new(mated + nonmated);
    for k in 0..mated {
        let id = seed + k * (persons / mated.max(1)).max(1);
        let probe_f = person_fingers(source, id, 1, fingers, p);
        failed.fetch_add(fingers - probe_f.len(), std::sync::atomic::Ordering::Relaxed);
        let refs: Vec<(FingerPosition, &[Minutia])> = probe_f.iter().map(|(f, m)| (*f, &m[..])).collect();
        let t = Instant::now();
        let probe = Probe::new(&refs);
        let (hits, stats) = g.search_with(&probe, top, &opts);
        lat.push(t.elapsed().as_secs_f64());
        shortlisted = stats.shortlisted;
        coarse_scored = stats.coarse_scored;
        let want = format!("P{id}");
        let rank = g.cascade_rank(&probe, &want, &opts).unwrap_or(usize::MAX);
        index_ranks.push(rank);
        hist_ranks.push(g.index_rank(&probe, &want).unwrap_or(usize::MAX));
        let mate = hits.iter().position(|h| h.person == want);
        if rank >= share_len(shares[0]) {
            // The index ranks the mate out of the smallest shortlist reported: what an exhaustive search
            // scores it (for the index's FNIR loss at each penetration).
            let all = SearchOptions {
                penetration: Some(1.0),
                coarse_share: None,
                min_shortlist: 1,
            };
            let (ex, _) = g.search_with(&probe, top, &all);
            let found = ex.iter().find(|h| h.person == want).map(|h| f64::from(h.score));
            exhaustive_found.push((rank, found));
        }
        mated_scores.push((
            mate.and_then(|r| hits.get(r)).map(|h| f64::from(h.score)),
            mate == Some(0),
        ));
        bar.inc(1);
    }
    for k in 0..nonmated {
        let id = seed + persons + 5_000_000 + k;
        let probe_f = person_fingers(source, id, 1, fingers, p);
        failed.fetch_add(fingers - probe_f.len(), std::sync::atomic::Ordering::Relaxed);
        let refs: Vec<(FingerPosition, &[Minutia])> = probe_f.iter().map(|(f, m)| (*f, &m[..])).collect();
        let t = Instant::now();
        let (hits, _) = g.search_with(&Probe::new(&refs), 1, &opts);
        lat.push(t.elapsed().as_secs_f64());
        nonmated_top.push(hits.first().map_or(0.0, |h| f64::from(h.score)));
        bar.inc(1);
    }
    bar.finish();
    println!(
        "failure to extract (fingers left out, gallery build and probes of this run): {}",
        failed.load(std::sync::atomic::Ordering::Relaxed)
    );
    lat.sort_by(f64::total_cmp);
    nonmated_top.sort_by(|a, b| b.total_cmp(a));
    let misses = mated_scores.iter().filter(|m| m.0.is_none()).count();
    let rank1 = mated_scores.iter().filter(|m| m.1).count();
    let pct = |n: usize| 100.0 * n as f64 / g.len().max(1) as f64;
    println!(
        "probes: {mated} mated, {nonmated} non-mated, {fingers} finger(s) each; penetration {:.2} % ({shortlisted} persons to the full matcher)",
        pct(shortlisted)
    );
    if coarse_scored > 0 {
        println!(
            "index stage: the histogram scan passes {:.2} % ({coarse_scored} persons) to the coarse step, which passes {:.2} % ({shortlisted}) to the full matcher",
            pct(coarse_scored),
            pct(shortlisted)
        );
    } else {
        println!("index stage: histogram scan only (no coarse step)");
    }
    let (_, coarse_len) = opts.lengths(fingers, g.len(), 1);
    let misses_line = |ranks: &[usize]| {
        shares
            .iter()
            .map(|&sh| {
                let len = share_len(sh);
                let miss = ranks.iter().filter(|&&r| r >= len).count();
                format!("{} %: {miss}", sh * 100.0)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (label, ranks) in [
        ("whole index stage", &mut index_ranks),
        ("histogram scan alone", &mut hist_ranks),
    ] {
        ranks.sort_unstable();
        let rank_at = |q: f64| {
            ranks
                .get(((ranks.len().max(1) - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        println!(
            "mate's index rank, {label} (0 = first): p50 {}, p90 {}, p99 {}, max {}",
            rank_at(0.5),
            rank_at(0.9),
            rank_at(0.99),
            ranks.last().copied().unwrap_or(0)
        );
    }
    if coarse_len > 0 {
        println!(
            "index misses at penetration (share to the full matcher; shares below {:.2} % after the coarse step re-ranks the histogram's best {coarse_len}): {}",
            pct(coarse_len),
            misses_line(&index_ranks)
        );
        println!(
            "index misses of the histogram scan alone at penetration {}",
            misses_line(&hist_ranks)
        );
    } else {
        println!("index misses at penetration {}", misses_line(&index_ranks));
    }
    println!(
        "mates not returned (not shortlisted, or below the top {top} after matching): {misses} of {mated} = {:.2} %; rank-1 {:.2} %",
        100.0 * misses as f64 / mated.max(1) as f64,
        100.0 * rank1 as f64 / mated.max(1) as f64
    );
    // FPIR 0.01 % is reported from 10,000 non-mated searches on.
    for (fpir, pct) in [(0.01, "1"), (0.001, "0.1"), (0.0001, "0.01")] {
        let k = (fpir * nonmated as f64).floor() as usize;
        if k == 0 {
            if fpir >= 0.001 {
                println!("FPIR {pct} %: needs more non-mated searches");
            }
            continue;
        }
        // Threshold: strictly above the (k+1)-th best non-mated top score.
        let t = nonmated_top.get(k).copied().unwrap_or(0.0) + 1e-6;
        let fnir =
            mated_scores.iter().filter(|m| m.0.is_none_or(|s| s < t)).count() as f64 / mated.max(1) as f64;
        println!(
            "FNIR at FPIR {pct} %: {:.2} % (threshold score {t:.2})",
            fnir * 100.0
        );
        // Index misses at each penetration that an exhaustive search finds at this threshold: an upper
        // bound of the index's FNIR loss (the exhaustive search's own threshold can only be higher).
        println!(
            "  FNIR loss of the index vs exhaustive search at penetration {}",
            shares
                .iter()
                .map(|&sh| {
                    let len = share_len(sh);
                    let lost = exhaustive_found
                        .iter()
                        .filter(|(r, s)| *r >= len && s.is_some_and(|s| s >= t))
                        .count();
                    format!(
                        "{} %: <= {:.2} points ({lost})",
                        sh * 100.0,
                        100.0 * lost as f64 / mated.max(1) as f64
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "best non-mated score {:.2}; worst found mate score {:.2}",
        nonmated_top.first().copied().unwrap_or(0.0),
        mated_scores.iter().filter_map(|m| m.0).fold(f64::MAX, f64::min)
    );
    println!(
        "search latency (incl. probe preparation): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&lat, 0.5) * 1e3,
        percentile(&lat, 0.99) * 1e3,
        lat.last().copied().unwrap_or(0.0) * 1e3
    );
    Ok(())
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
            fingers,
            format,
            profile: p,
            seed,
            out,
        } => {
            let positions = parse_fingers(&fingers)?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let mut truth = std::fs::File::create(out.join("truth.csv"))?;
            writeln!(truth, "image,x,y,direction_rad,kind")?;
            let total = persons * u64::from(impressions) * positions.len() as u64;
            let bar = ProgressBar::new(total);
            for id in seed..seed + persons {
                let person = SyntheticPerson::with_profile(id, profile(p));
                for &pos in &positions {
                    for imp in 0..impressions {
                        let i = person.finger_impression(pos, imp);
                        let stem = format!("{id}_{}_{imp}", pos.code());
                        let name = match format {
                            ImageFormatArg::Png => {
                                let name = format!("{stem}.png");
                                i.image.save(out.join(&name))?;
                                name
                            }
                            ImageFormatArg::Iso => {
                                let name = format!("{stem}.fir");
                                let q = tessera_biometrics::quality::assess(&i.image).score;
                                let rec = tessera_biometrics::iso19794_4::FingerImageRecord::from_gray(
                                    pos, &i.image, 500, q,
                                )?;
                                std::fs::write(
                                    out.join(&name),
                                    tessera_biometrics::iso19794_4::encode(&[rec]),
                                )?;
                                name
                            }
                        };
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
            }
            bar.finish();
            println!("wrote {total} images to {}", out.display());
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
                let png = path.with_extension("png");
                tessera_biometrics::eval::det_plot(&m.det).save(&png)?;
                println!("DET curve written to {} and {}", path.display(), png.display());
            }
        }
        Cmd::Calibrate {
            persons,
            comparisons,
            seed,
        } => calibrate(persons, comparisons, seed)?,
        Cmd::Identify {
            persons,
            mated,
            nonmated,
            fingers,
            profile: p,
            seed,
            penetration,
            coarse_share,
            gallery,
            source,
        } => identify(
            persons,
            mated,
            nonmated,
            fingers,
            profile(p),
            seed,
            SearchOptions {
                penetration,
                coarse_share,
                min_shortlist: 1,
            },
            &gallery,
            source,
        )?,
    }
    Ok(())
}
