//! Criterion benchmarks: synthetic generation, extraction (500x500), MCC preparation and comparison.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tessera_biometrics::extract::extract;
use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::mcc::{Matcher, MccTemplate};
use tessera_biometrics::synth::{Profile, SyntheticPerson, master};

fn image_500(person: &SyntheticPerson) -> image::GrayImage {
    // A 500x500 canvas with a synthetic print in the middle (the extraction target size of the issue).
    let print = person.finger(FingerPosition::RightIndex, 0);
    let mut canvas = image::GrayImage::from_pixel(500, 500, image::Luma([225]));
    image::imageops::overlay(&mut canvas, &print, 90, 50);
    canvas
}

fn benches(c: &mut Criterion) {
    let person = SyntheticPerson::new(42);
    c.bench_function("synth_master", |b| {
        let mut seed = 0u64;
        b.iter(|| {
            seed += 1;
            black_box(master::generate(seed))
        })
    });
    let _ = person.master(FingerPosition::RightIndex);
    c.bench_function("synth_impression", |b| {
        let mut i = 0u32;
        b.iter(|| {
            i += 1;
            black_box(person.finger_impression(FingerPosition::RightIndex, i))
        })
    });
    c.bench_function("synth_fast_minutiae", |b| {
        let p = SyntheticPerson::with_profile(7, Profile::Standard);
        let mut i = 0u32;
        b.iter(|| {
            i += 1;
            black_box(p.finger_minutiae(FingerPosition::LeftIndex, i))
        })
    });
    let img = image_500(&person);
    c.bench_function("extract_500x500", |b| {
        b.iter(|| black_box(extract(&img).unwrap()))
    });
    let real = image::open(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/p1_1.png"))
        .unwrap()
        .into_luma8();
    c.bench_function("quality_assess_400x500", |b| {
        b.iter(|| black_box(tessera_biometrics::quality::assess(&real)))
    });

    let a = extract(&person.finger(FingerPosition::RightIndex, 0))
        .unwrap()
        .minutiae;
    let bm = extract(&person.finger(FingerPosition::RightIndex, 1))
        .unwrap()
        .minutiae;
    let other = extract(&SyntheticPerson::new(43).finger(FingerPosition::RightIndex, 0))
        .unwrap()
        .minutiae;
    c.bench_function("mcc_prepare", |b| b.iter(|| black_box(MccTemplate::new(&a))));
    let mut matcher = Matcher::new(MccTemplate::new(&a));
    let gen_t = MccTemplate::new(&bm);
    let imp_t = MccTemplate::new(&other);
    c.bench_function("mcc_compare_genuine", |b| {
        b.iter(|| black_box(matcher.compare(&gen_t)))
    });
    c.bench_function("mcc_compare_impostor", |b| {
        b.iter(|| black_box(matcher.compare(&imp_t)))
    });
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(group);
