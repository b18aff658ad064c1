//! Index-signature lab: how well candidate index signatures rank a mate among N persons, without building
//! a gallery file (float arithmetic, no quantisation). Used to tune `gallery`'s pair histograms on the
//! tuning persons (ids 40,000,000+ standard, 41,000,000+ hard); the real figures come from
//! `tessera-bio identify`.
//!
//! `cargo run --release -p tessera-biometrics --example index_lab -- --profile hard --persons 2000
//! --mated 200 --fingers 1 --seed 41000000 [--nd 8 --na 12 --rmin 12 --rmax 160 --power 0.5 --pooled]`
//! (defaults: the gallery's bins; `--pooled` pools the whitening statistics of all finger positions, as the
//! gallery does, instead of one set per position).
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::indexing_slicing,
    clippy::needless_range_loop,
    reason = "example"
)]

use rayon::prelude::*;
use tessera_biometrics::FingerPosition;
use tessera_biometrics::gallery::{HistParams, pair_histogram};
use tessera_biometrics::minutiae::Minutia;
use tessera_biometrics::synth::{Profile, SyntheticPerson};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn truncate(mut ms: Vec<Minutia>) -> Vec<(f32, f32, f32)> {
    if ms.len() > 64 {
        ms.sort_by_key(|m| std::cmp::Reverse(m.quality));
        ms.truncate(64);
    }
    ms.iter().map(|m| (m.x, m.y, m.direction)).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let persons: u64 = arg(&args, "--persons", 2000);
    let mated: u64 = arg(&args, "--mated", 200);
    let fingers: usize = arg(&args, "--fingers", 1);
    let seed: u64 = arg(&args, "--seed", 41_000_000);
    let profile = if arg(&args, "--profile", String::from("hard")) == "hard" {
        Profile::Hard
    } else {
        Profile::Standard
    };
    let hp = HistParams {
        nd: arg(&args, "--nd", HistParams::DEFAULT.nd),
        na: arg(&args, "--na", HistParams::DEFAULT.na),
        rmin: arg(&args, "--rmin", HistParams::DEFAULT.rmin),
        rmax: arg(&args, "--rmax", HistParams::DEFAULT.rmax),
    };
    let power: f32 = arg(&args, "--power", 0.5);
    let dim = hp.dim();
    let positions: Vec<FingerPosition> = FingerPosition::TEN.iter().take(fingers).copied().collect();
    let feat = |id: u64, imp: u32| -> Vec<Vec<f32>> {
        let person = SyntheticPerson::with_profile(id, profile);
        positions
            .iter()
            .map(|&f| {
                let h = pair_histogram(&truncate(person.finger_minutiae(f, imp)), &hp);
                let mut v: Vec<f32> = h.iter().map(|x| x.powf(power)).collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
                v.iter_mut().for_each(|x| *x /= n);
                v
            })
            .collect()
    };
    let t = std::time::Instant::now();
    let gal: Vec<Vec<Vec<f32>>> = (seed..seed + persons)
        .into_par_iter()
        .map(|id| feat(id, 0))
        .collect();
    let probes: Vec<(usize, Vec<Vec<f32>>)> = (0..mated)
        .into_par_iter()
        .map(|k| {
            let idx = (k * (persons / mated.max(1)).max(1)) as usize;
            (idx, feat(seed + idx as u64, 1))
        })
        .collect();
    eprintln!("features in {:.1} s, dim {dim}", t.elapsed().as_secs_f64());
    // Per-position gallery statistics.
    let nf = positions.len();
    let mut mean = vec![vec![0f64; dim]; nf];
    let mut var = vec![vec![0f64; dim]; nf];
    for g in &gal {
        for (f, v) in g.iter().enumerate() {
            for (b, &x) in v.iter().enumerate() {
                mean[f][b] += f64::from(x);
                var[f][b] += f64::from(x) * f64::from(x);
            }
        }
    }
    let n = gal.len() as f64;
    let pooled = args.iter().any(|a| a == "--pooled");
    if pooled {
        for b in 0..dim {
            let (s, q): (f64, f64) = (0..nf)
                .map(|f| (mean[f][b], var[f][b]))
                .fold((0.0, 0.0), |a, x| (a.0 + x.0, a.1 + x.1));
            for f in 0..nf {
                mean[f][b] = s;
                var[f][b] = q;
            }
        }
    }
    let nn = if pooled { n * nf as f64 } else { n };
    let floor: f64 = arg(&args, "--floor", 0.0);
    let stats: Vec<Vec<(f32, f32)>> = (0..nf)
        .map(|f| {
            let vs: Vec<f64> = (0..dim)
                .map(|b| (var[f][b] / nn - (mean[f][b] / nn).powi(2)).max(0.0))
                .collect();
            let mv = vs.iter().sum::<f64>() / dim as f64;
            (0..dim)
                .map(|b| {
                    let m = mean[f][b] / nn;
                    let sd = (vs[b] + floor * mv).sqrt().max(1e-6);
                    (m as f32, (1.0 / sd) as f32)
                })
                .collect()
        })
        .collect();
    let whiten = |f: usize, v: &[f32], on: bool| -> Vec<f32> {
        let mut z: Vec<f32> = v
            .iter()
            .zip(&stats[f])
            .map(|(&x, &(m, is))| if on { (x - m) * is } else { x })
            .collect();
        let n = z.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
        z.iter_mut().for_each(|x| *x /= n);
        z
    };
    for (name, on) in [("raw cosine", false), ("whitened cosine", true)] {
        let gz: Vec<Vec<Vec<f32>>> = gal
            .par_iter()
            .map(|g| g.iter().enumerate().map(|(f, v)| whiten(f, v, on)).collect())
            .collect();
        let mut ranks: Vec<usize> = probes
            .par_iter()
            .map(|(idx, p)| {
                let pz: Vec<Vec<f32>> = p.iter().enumerate().map(|(f, v)| whiten(f, v, on)).collect();
                let scores: Vec<f32> = gz
                    .iter()
                    .map(|g| {
                        g.iter()
                            .zip(&pz)
                            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>())
                            .sum()
                    })
                    .collect();
                let mine = scores[*idx];
                scores
                    .iter()
                    .enumerate()
                    .filter(|&(i, &s)| i != *idx && s >= mine)
                    .count()
            })
            .collect();
        ranks.sort_unstable();
        let q = |x: f64| ranks[((ranks.len() - 1) as f64 * x).round() as usize];
        let misses: Vec<String> = [0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2]
            .iter()
            .map(|&sh| {
                let len = ((sh * persons as f64).ceil() as usize).max(1);
                format!(
                    "{:.2}%:{}",
                    sh * 100.0,
                    ranks.iter().filter(|&&r| r >= len).count()
                )
            })
            .collect();
        println!(
            "{name:16} nd {} na {} r {}-{} pow {power}: rank p50 {} p90 {} p99 {} | misses/{mated} {}",
            hp.nd,
            hp.na,
            hp.rmin,
            hp.rmax,
            q(0.5),
            q(0.9),
            q(0.99),
            misses.join(" ")
        );
    }
}
