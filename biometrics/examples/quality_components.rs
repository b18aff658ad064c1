//! Which part of the injected degradation moves the quality score: scores of the three real prints under each
//! component of `quality::degrade` alone (contrast fading, blur, noise) at levels 0-5, next to the combined
//! degradation, and the features that move most from level 0 to level 1:
//! `cargo run --release -p tessera-biometrics --example quality_components`.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    reason = "example"
)]

use image::GrayImage;
use tessera_biometrics::quality::{assess, degrade};

fn fade(img: &GrayImage, l: f32) -> GrayImage {
    let c = (1.0 - 0.15 * l).max(0.0);
    GrayImage::from_fn(img.width(), img.height(), |x, y| {
        let v = f32::from(img.get_pixel(x, y).0[0]);
        image::Luma([(255.0 - (255.0 - v) * c).clamp(0.0, 255.0) as u8])
    })
}

fn blur(img: &GrayImage, l: f32) -> GrayImage {
    if l > 0.0 {
        image::imageops::blur(img, 0.6 * l)
    } else {
        img.clone()
    }
}

fn noise(img: &GrayImage, l: f32) -> GrayImage {
    let sigma = 4.0 * l;
    let mut state = 0x2545_F491_4F6C_DD1Du64 ^ (l as u64);
    GrayImage::from_fn(img.width(), img.height(), |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let u = (state >> 11) as f32 / (1u64 << 53) as f32;
        let v = f32::from(img.get_pixel(x, y).0[0]) + (u - 0.5) * 3.46 * sigma;
        image::Luma([v.clamp(0.0, 255.0) as u8])
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for name in ["p1_1", "p1_2", "p2_1"] {
        let img = image::open(format!("{}/testdata/{name}.png", env!("CARGO_MANIFEST_DIR")))?.into_luma8();
        let row = |f: &dyn Fn(&GrayImage, f32) -> GrayImage| -> Vec<u8> {
            (0..6).map(|l| assess(&f(&img, l as f32)).score).collect()
        };
        println!("{name}: combined {:?}", row(&|i, l| degrade(i, l as u32)));
        println!("{name}: fade     {:?}", row(&fade));
        println!("{name}: blur     {:?}", row(&blur));
        println!("{name}: noise    {:?}", row(&noise));
        let q0 = assess(&img);
        let q1 = assess(&degrade(&img, 1));
        let mut moved: Vec<(usize, f64, f64)> = q0
            .features
            .iter()
            .zip(&q1.features)
            .enumerate()
            .map(|(i, (a, b))| (i, *a, *b))
            .collect();
        moved.sort_by(|a, b| (b.2 - b.1).abs().total_cmp(&(a.2 - a.1).abs()));
        let top: Vec<String> = moved
            .iter()
            .take(6)
            .map(|(i, a, b)| format!("f{i}: {a:.3} -> {b:.3}"))
            .collect();
        println!("{name}: features moving most at level 1: {}", top.join(", "));
    }
    Ok(())
}
