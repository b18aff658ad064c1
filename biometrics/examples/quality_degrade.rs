//! Writes the quality evaluation's degraded images (levels 0-5 of `quality::degrade`) of the three real
//! prints as PNG and prints our score per level, so a reference implementation can score the same files:
//! `cargo run -p tessera-biometrics --example quality_degrade -- /tmp/degraded [b]` (protocol A, `degrade`;
//! with `b`, protocol B, `Degradation::PROTOCOL_B`).
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "example"
)]

use tessera_biometrics::quality::{Degradation, assess, degrade, degrade_with};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tmp/degraded".into()));
    std::fs::create_dir_all(&out)?;
    let protocol_b = std::env::args()
        .nth(2)
        .is_some_and(|p| p.eq_ignore_ascii_case("b"));
    for name in ["p1_1", "p1_2", "p2_1"] {
        let img = image::open(format!("{}/testdata/{name}.png", env!("CARGO_MANIFEST_DIR")))?.into_luma8();
        let mut scores = Vec::new();
        for level in 0..6 {
            let d = if protocol_b {
                degrade_with(&img, level, &Degradation::PROTOCOL_B)
            } else {
                degrade(&img, level)
            };
            d.save(out.join(format!("{name}_{level}.png")))?;
            scores.push(assess(&d).score);
        }
        println!("{name}: {scores:?}");
    }
    Ok(())
}
