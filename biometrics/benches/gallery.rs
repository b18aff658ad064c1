//! 1:N bench (a bench binary printing its figures): search of ten fingers against a synthetic gallery of
//! `TESSERA_BENCH_PERSONS` persons (default 100,000) x 10 fingers built with the fast minutiae generator,
//! on all cores (rayon), plus single-thread 1:1 throughput on the same kind of templates.
//!
//! `cargo bench -p tessera-biometrics --bench gallery`. The gallery file is cached in the build folder
//! (`CARGO_TARGET_DIR` or `target`) as `bench-gallery-<N>.tgal` (~4.7 GB for 100,000 persons); delete it to
//! time the build again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    reason = "benchmark binary"
)]

use std::time::Instant;

use rayon::prelude::*;
use tessera_biometrics::gallery::{Gallery, Probe, SearchOptions};
use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::mcc::{Matcher, MccTemplate};
use tessera_biometrics::minutiae::Minutia;
use tessera_biometrics::synth::SyntheticPerson;

type Fingers = Vec<(FingerPosition, Vec<Minutia>)>;

const SEED: u64 = 30_000_000;

fn fingers(id: u64, impression: u32) -> Fingers {
    let p = SyntheticPerson::new(id);
    FingerPosition::TEN
        .iter()
        .map(|&f| (f, p.finger_minutiae(f, impression)))
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / test harness probing
    }
    let n: u64 = std::env::var("TESSERA_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    println!("threads: {}", rayon::current_num_threads());

    // 1:1 throughput, one thread, probe prepared.
    let probes: Vec<MccTemplate> = (0..20)
        .map(|i| MccTemplate::new(&fingers(SEED + i, 1)[1].1))
        .collect();
    let gallery_t: Vec<MccTemplate> = (0..200)
        .map(|i| MccTemplate::new(&fingers(SEED + i, 0)[1].1))
        .collect();
    let t = Instant::now();
    let mut acc = 0.0f32;
    let mut count = 0u64;
    for p in &probes {
        let mut m = Matcher::new(p.clone());
        for g in &gallery_t {
            acc += m.compare(g);
            count += 1;
        }
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "1:1 (fast-generator templates, {:.1} cylinders avg): {count} comparisons in {dt:.3} s = {:.0} /s on one thread ({:.1} us each) [checksum {acc:.1}]",
        gallery_t.iter().map(MccTemplate::len).sum::<usize>() as f64 / gallery_t.len() as f64,
        count as f64 / dt,
        dt * 1e6 / count as f64
    );
    // The coarse comparison of the index's cascade (`Matcher::coarse_ref`), same pairs, one thread.
    let t = Instant::now();
    let mut acc = 0.0f32;
    for p in &probes {
        let mut m = Matcher::new(p.clone());
        for g in &gallery_t {
            acc += m.coarse_ref(g.view());
        }
    }
    let dt_coarse = t.elapsed().as_secs_f64();
    println!(
        "1:1 coarse (index cascade): {count} comparisons in {dt_coarse:.3} s = {:.0} /s on one thread ({:.2} us each, {:.2}x the full comparison) [checksum {acc:.1}]",
        count as f64 / dt_coarse,
        dt_coarse * 1e6 / count as f64,
        dt_coarse / dt
    );
    let t = Instant::now();
    let _: Vec<MccTemplate> = (0..200)
        .into_par_iter()
        .map(|i| MccTemplate::new(&fingers(SEED + i, 0)[1].1))
        .collect();
    println!(
        "template preparation: {:.2} ms per finger (all threads, incl. generation)",
        t.elapsed().as_secs_f64() * 1e3 / 200.0
    );

    // The build folder (CARGO_TARGET_DIR when set, else the workspace's `target`), created if missing.
    let dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("bench-gallery-{n}.tgal"));
    if Gallery::open(&path).map(|g| g.len() as u64 != n).unwrap_or(true) {
        let t = Instant::now();
        let mut g = Gallery::create(&path).unwrap();
        let mut start = 0u64;
        while start < n {
            let end = (start + 5_000).min(n);
            let batch: Vec<(String, Fingers)> = (start..end)
                .into_par_iter()
                .map(|i| (format!("P{}", SEED + i), fingers(SEED + i, 0)))
                .collect();
            g.insert_batch(&batch).unwrap();
            start = end;
        }
        g.save().unwrap();
        println!(
            "gallery built and saved: {n} persons in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let t = Instant::now();
    let g = Gallery::open(&path).unwrap();
    println!(
        "open + validate {:.2} s ({:.2} GB)",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&path).unwrap().len() as f64 / 1e9
    );
    for (label, opts) in [
        (
            "default (penetration by probe fingers: 0.25 %)",
            SearchOptions::default(),
        ),
        (
            "penetration 2 %",
            SearchOptions {
                penetration: Some(0.02),
                coarse_share: None,
                min_shortlist: 200,
            },
        ),
        (
            "indexed, penetration 5 %",
            SearchOptions {
                penetration: Some(0.05),
                coarse_share: None,
                min_shortlist: 200,
            },
        ),
    ] {
        let mut lat = Vec::new();
        let mut found = 0;
        let mut stats = tessera_biometrics::gallery::SearchStats::default();
        let (mut index_s, mut match_s) = (Vec::new(), Vec::new());
        // Warm-up (page cache), then 10 mated + 10 non-mated searches.
        let probe_f = fingers(SEED, 1);
        let refs: Vec<(FingerPosition, &[Minutia])> = probe_f.iter().map(|(f, m)| (*f, &m[..])).collect();
        let _ = g.search_with(&Probe::new(&refs), 10, &opts);
        for k in 0..20u64 {
            let mated = k < 10;
            let id = if mated {
                SEED + (k * 7919) % n
            } else {
                SEED + n + 1_000_000 + k
            };
            let probe_f = fingers(id, 1);
            let refs: Vec<(FingerPosition, &[Minutia])> = probe_f.iter().map(|(f, m)| (*f, &m[..])).collect();
            let t = Instant::now();
            let probe = Probe::new(&refs);
            let (hits, s) = g.search_with(&probe, 10, &opts);
            lat.push(t.elapsed().as_secs_f64());
            stats = s;
            index_s.push(s.index_time.as_secs_f64());
            match_s.push(s.match_time.as_secs_f64());
            if mated && hits.first().is_some_and(|h| h.person == format!("P{id}")) {
                found += 1;
            }
        }
        for v in [&mut lat, &mut index_s, &mut match_s] {
            v.sort_by(f64::total_cmp);
        }
        println!(
            "search 10 fingers vs {n} persons, {label}: median {:.0} ms (index stage {:.0} ms, match stage {:.0} ms), max {:.0} ms; {} persons / {} finger comparisons in the match stage; mates ranked first {found}/10",
            lat[lat.len() / 2] * 1e3,
            index_s[index_s.len() / 2] * 1e3,
            match_s[match_s.len() / 2] * 1e3,
            lat[lat.len() - 1] * 1e3,
            stats.shortlisted,
            stats.comparisons
        );
    }
}
