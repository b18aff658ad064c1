//! Does an injected degradation lower the *utility* of a print? For each component of a degradation
//! (fading towards white, contrast reduced about the image mean, blur, noise) and the combined protocols, at
//! levels 0-5, the genuine comparison score of a degraded print against a clean impression of the same
//! finger: the real pair p1_1/p1_2 (each side degraded in turn) and synthetic pairs (impression 0 degraded
//! against impression 1 clean). The quality score is not looked at here: this decides which degradations
//! an evaluation of the score may use (a "degradation" that does not lower utility cannot be asked to
//! lower a utility-predicting score).
//! `cargo run --release -p tessera-biometrics --example quality_utility -- [--persons 40 --seed 60000000]`.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "example"
)]

use image::GrayImage;
use rayon::prelude::*;
use tessera_biometrics::FingerPosition;
use tessera_biometrics::extract::extract;
use tessera_biometrics::mcc::{Matcher, MccTemplate};
use tessera_biometrics::quality::{Degradation, degrade_with};
use tessera_biometrics::synth::{Profile, SyntheticPerson};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn template(img: &GrayImage) -> Option<MccTemplate> {
    extract(img).ok().map(|e| MccTemplate::new(&e.minutiae))
}

fn score(a: &GrayImage, b: &MccTemplate) -> f32 {
    template(a).map_or(0.0, |t| Matcher::new(t).compare(b))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let persons: u64 = arg("--persons", 40);
    let seed: u64 = arg("--seed", 60_000_000);
    let dir = format!("{}/testdata", env!("CARGO_MANIFEST_DIR"));
    let p11 = image::open(format!("{dir}/p1_1.png"))?.into_luma8();
    let p12 = image::open(format!("{dir}/p1_2.png"))?.into_luma8();
    let (t11, t12) = (template(&p11).unwrap(), template(&p12).unwrap());
    let synth: Vec<(GrayImage, MccTemplate)> = (0..persons)
        .into_par_iter()
        .flat_map_iter(|i| {
            [Profile::Standard, Profile::Hard]
                .into_iter()
                .map(move |profile| {
                    let p = SyntheticPerson::with_profile(seed + i, profile);
                    let g = p.finger(FingerPosition::RightIndex, 0);
                    let t = template(&p.finger(FingerPosition::RightIndex, 1))
                        .unwrap_or_else(|| MccTemplate::new(&[]));
                    (g, t)
                })
        })
        .collect();
    let components = [
        ("fade to white", Degradation::FADE_ONLY),
        ("contrast about mean", Degradation::CONTRAST_ONLY),
        ("blur", Degradation::BLUR_ONLY),
        ("noise", Degradation::NOISE_ONLY),
        ("protocol A (degrade)", Degradation::PROTOCOL_A),
        ("protocol B", Degradation::PROTOCOL_B),
    ];
    println!("genuine MCC score of the degraded print against a clean impression, levels 0-5");
    println!(
        "| degradation | real p1_1→p1_2 | real p1_2→p1_1 | synthetic mean ({} pairs) |",
        synth.len()
    );
    println!("|---|---|---|---|");
    for (name, d) in &components {
        let f = |i: &GrayImage, l: u32| degrade_with(i, l, d);
        let real_a: Vec<String> = (0..6)
            .map(|l| format!("{:.3}", score(&f(&p11, l), &t12)))
            .collect();
        let real_b: Vec<String> = (0..6)
            .map(|l| format!("{:.3}", score(&f(&p12, l), &t11)))
            .collect();
        let syn: Vec<String> = (0..6)
            .map(|l| {
                let s: f32 = synth.par_iter().map(|(g, t)| score(&f(g, l), t)).sum();
                format!("{:.3}", s / synth.len() as f32)
            })
            .collect();
        println!(
            "| {name} | {} | {} | {} |",
            real_a.join(", "),
            real_b.join(", "),
            syn.join(", ")
        );
    }
    Ok(())
}
