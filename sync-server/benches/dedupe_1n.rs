//! The biometric dedupe stage of the server against a 100,000-person gallery: for each real NEW packet
//! (ten ISO/IEC 19794-4 finger images of a synthetic resident), template extraction
//! (`dedupe::extract_templates`) and the 1:N search through the server's default index
//! (`dedupe::IndexedGallery` over `tessera_biometrics::gallery::Gallery`). Prints packets/s.
//!
//! Run with `cargo bench -p tessera-server --bench dedupe_1n` (optimised). The gallery (100,000 persons x 10
//! fingers from the biometrics crate's fast minutiae generator, ids shaped like UINs) is built once and
//! cached as `server-bench-gallery-<N>.tgal` in the build folder (`CARGO_TARGET_DIR`, else `target/`) (~5 GB); delete it to time the build again.
//! `TESSERA_BENCH_PERSONS` (default 100,000) sets the gallery size, `TESSERA_BENCH_PACKETS` (default 10)
//! the packets: half are residents whose other impression is enrolled (mated), half are not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "benchmark binary"
)]

#[path = "../tests/it/flow.rs"]
mod flow;

use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use tessera_biometrics::gallery::{Gallery, PersonFingers};
use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::synth::Profile;
use tessera_biometrics::synth::fast::impression_minutiae;
use tessera_packet::types::{BioAttribute, Modality};
use tessera_server::dedupe::{self, BioIndex, IndexedGallery};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const SEED: u64 = 40_000_000;

fn synthetic(i: u64) -> PersonFingers {
    let fingers = FingerPosition::TEN
        .iter()
        .map(|&p| {
            (
                p,
                impression_minutiae((SEED + i) * 16 + u64::from(p.code()), SEED + i, Profile::Standard),
            )
        })
        .collect();
    (format!("{}", 3_000_000_000 + i), fingers)
}

fn main() {
    let n = env_u64("TESSERA_BENCH_PERSONS", 100_000);
    let packets = env_u64("TESSERA_BENCH_PACKETS", 10);
    // The build folder (CARGO_TARGET_DIR when set, as `.ci/run` sets it), never committed.
    let dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("server-bench-gallery-{n}.tgal"));
    if Gallery::open(&path).map(|g| g.len() as u64 != n).unwrap_or(true) {
        println!("building the gallery: {n} persons x 10 fingers (fast minutiae generator)...");
        let t = Instant::now();
        let mut g = Gallery::create(&path).unwrap();
        let mut start = 0u64;
        while start < n {
            let end = (start + 5_000).min(n);
            let batch: Vec<PersonFingers> = (start..end).into_par_iter().map(synthetic).collect();
            g.insert_batch(&batch).unwrap();
            start = end;
            println!("  {end}/{n} persons, {:.0} s", t.elapsed().as_secs_f64());
        }
        g.save().unwrap();
        println!("gallery built and saved in {:.1} s", t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    let g = Gallery::open(&path).unwrap();
    println!(
        "gallery opened and validated in {:.2} s: {} persons, {:.2} GB",
        t.elapsed().as_secs_f64(),
        g.len(),
        std::fs::metadata(&path).unwrap().len() as f64 / 1e9
    );
    let index: Arc<dyn BioIndex> = Arc::new(IndexedGallery::from_gallery(
        g,
        tessera_server::settings::BIO_INDEX_MIN_SCORE_DEFAULT as f32 / 100.0,
    ));

    // Real packets: ten rendered finger images each (ISO/IEC 19794-4), built as a station would.
    let machine = "10001".parse().unwrap();
    let fingers: Vec<BioAttribute> = BioAttribute::ALL
        .into_iter()
        .filter(|a| a.modality() == Modality::Finger)
        .collect();
    println!("rendering {packets} packets with 10 finger images each...");
    let contents: Vec<_> = (0..packets)
        .into_par_iter()
        .map(|i| {
            let r = flow::Resident {
                impression: 1,
                ..flow::Resident::new(5_000 + i, &format!("Bench Resident {i}"))
            };
            flow::content(&machine, u32::try_from(i).unwrap() + 1, &r, &fingers)
        })
        .collect();
    // Mated: enrol impression 0 of half of the residents (extracted from rendered images, as the
    // pipeline's ID-repository stage stores them).
    let mated: Vec<(String, Vec<tessera_biometrics::template::Template>)> = (0..packets)
        .step_by(2)
        .map(|i| {
            let r = flow::Resident::new(5_000 + i, "Enrolled");
            let c = flow::content(&machine, 1_000 + u32::try_from(i).unwrap(), &r, &fingers);
            (format!("{}", 3_900_000_000 + i), dedupe::extract_templates(&c))
        })
        .collect();
    index.insert_persons(mated).unwrap();
    println!("gallery now {} persons", index.len());

    let mut stage = Vec::new();
    let mut extract_ms = Vec::new();
    let mut search_ms = Vec::new();
    let mut found = 0;
    let mut false_hits = 0;
    let total = Instant::now();
    for (i, c) in contents.iter().enumerate() {
        let t0 = Instant::now();
        let templates = dedupe::extract_templates(c);
        let t1 = Instant::now();
        let hits = index.search(&templates);
        let t2 = Instant::now();
        let expect = format!("{}", 3_900_000_000 + i as u64);
        if i % 2 == 0 {
            if hits.first().map(|h| h.uin_hash.as_str()) == Some(expect.as_str()) {
                found += 1;
            }
            false_hits += hits.iter().filter(|h| h.uin_hash != expect).count();
        } else {
            false_hits += hits.len();
        }
        extract_ms.push((t1 - t0).as_secs_f64() * 1e3);
        search_ms.push((t2 - t1).as_secs_f64() * 1e3);
        stage.push((t2 - t0).as_secs_f64() * 1e3);
        println!(
            "packet {i}: {} templates, extraction {:.0} ms, search {:.0} ms, {} candidate(s)",
            templates.len(),
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            hits.len()
        );
    }
    let secs = total.elapsed().as_secs_f64();
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "dedupe stage (extraction + 1:N) against {} persons: {packets} packets in {secs:.2} s = {:.2} packets/s; \
         median extraction {:.0} ms, median search {:.0} ms, median stage {:.0} ms, max stage {:.0} ms; \
         mates ranked first {found}/{}, other candidates {false_hits}",
        index.len(),
        packets as f64 / secs,
        med(&mut extract_ms),
        med(&mut search_ms),
        med(&mut stage),
        stage.iter().copied().fold(0.0, f64::max),
        packets.div_ceil(2),
    );
}
