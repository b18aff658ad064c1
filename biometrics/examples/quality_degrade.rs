//! Writes the quality evaluation's degraded images (levels 0-5 of `quality::degrade`) of the three real
//! prints as PNG and prints our score per level, so a reference implementation can score the same files:
//! `cargo run -p tessera-biometrics --example quality_degrade -- /tmp/degraded`.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "example"
)]

use tessera_biometrics::quality::{assess, degrade};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tmp/degraded".into()));
    std::fs::create_dir_all(&out)?;
    for name in ["p1_1", "p1_2", "p2_1"] {
        let img = image::open(format!("{}/testdata/{name}.png", env!("CARGO_MANIFEST_DIR")))?.into_luma8();
        let mut scores = Vec::new();
        for level in 0..6 {
            let d = degrade(&img, level);
            d.save(out.join(format!("{name}_{level}.png")))?;
            scores.push(assess(&d).score);
        }
        println!("{name}: {scores:?}");
    }
    Ok(())
}
