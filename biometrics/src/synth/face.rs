//! Simple synthetic colour portraits: background, hair, face oval with per-person skin tone, eyes, brows,
//! nose and mouth at per-person positions; impressions vary position, scale, lighting and noise.
#![allow(
    clippy::cast_possible_truncation,
    reason = "pixel arithmetic: values clamped to 0..=255 before conversion"
)]

use image::{Rgb, RgbImage};

use crate::rng::Rng;

const W: u32 = 480;
const H: u32 = 600;

fn ellipse(x: f32, y: f32, cx: f32, cy: f32, a: f32, b: f32) -> bool {
    ((x - cx) / a).powi(2) + ((y - cy) / b).powi(2) <= 1.0
}

/// Renders one portrait from an identity seed and an impression seed.
pub fn render(identity: u64, capture: u64) -> RgbImage {
    let mut id = Rng::new(identity);
    let skin = [id.range(90.0, 235.0) as f32, 0.0, 0.0];
    let skin = [
        skin[0],
        skin[0] * id.range(0.7, 0.85) as f32,
        skin[0] * id.range(0.55, 0.7) as f32,
    ];
    let hair = [
        id.range(10.0, 120.0) as f32,
        id.range(10.0, 80.0) as f32,
        id.range(5.0, 50.0) as f32,
    ];
    let iris = [
        id.range(30.0, 120.0) as f32,
        id.range(30.0, 110.0) as f32,
        id.range(20.0, 90.0) as f32,
    ];
    let face_a = id.range(110.0, 140.0) as f32;
    let face_b = id.range(150.0, 185.0) as f32;
    let eye_dx = id.range(42.0, 56.0) as f32;
    let eye_y = id.range(-35.0, -15.0) as f32;
    let mouth_y = id.range(70.0, 95.0) as f32;
    let mouth_w = id.range(28.0, 45.0) as f32;
    let nose_len = id.range(35.0, 55.0) as f32;
    let hair_h = id.range(0.2, 0.6) as f32;

    let mut cap = Rng::new(capture);
    let cx = W as f32 / 2.0 + cap.range(-15.0, 15.0) as f32;
    let cy = H as f32 / 2.0 + 20.0 + cap.range(-15.0, 15.0) as f32;
    let s = cap.range(0.93, 1.07) as f32;
    let light = cap.range(0.85, 1.15) as f32;
    let bg = [200.0 + cap.range(-10.0, 10.0) as f32, 205.0, 210.0];
    let seed = capture as u32;
    RgbImage::from_fn(W, H, |x, y| {
        let (fx, fy) = ((x as f32 - cx) / s, (y as f32 - cy) / s);
        let mut c = bg;
        if ellipse(fx, fy, 0.0, -20.0, face_a * 1.12, face_b * 1.1) && fy < -face_b * hair_h + 10.0 {
            c = hair;
        }
        if fy > face_b * 0.8 && fx.abs() < face_a * 1.3 {
            c = [60.0, 70.0, 110.0]; // clothing
        }
        if ellipse(fx, fy, 0.0, 0.0, face_a, face_b) && fy >= -face_b * hair_h - 20.0 {
            c = skin;
            let shade = 1.0 - 0.25 * (fx / face_a).powi(2);
            c = [c[0] * shade, c[1] * shade, c[2] * shade];
            for side in [-1.0f32, 1.0] {
                if ellipse(fx, fy, side * eye_dx, eye_y, 18.0, 8.0) {
                    c = [235.0, 235.0, 230.0];
                    if ellipse(fx, fy, side * eye_dx, eye_y, 7.0, 7.0) {
                        c = iris;
                    }
                    if ellipse(fx, fy, side * eye_dx, eye_y, 3.0, 3.0) {
                        c = [15.0, 15.0, 15.0];
                    }
                }
                if ellipse(fx, fy, side * eye_dx, eye_y - 20.0, 22.0, 4.0) {
                    c = hair;
                }
            }
            if fx.abs() < 6.0 && fy > eye_y && fy < eye_y + nose_len {
                c = [c[0] * 0.85, c[1] * 0.85, c[2] * 0.85];
            }
            if ellipse(fx, fy, 0.0, mouth_y, mouth_w, 6.0) {
                c = [150.0, 60.0, 60.0];
            }
        }
        let n = ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(97_531) ^ seed) % 100) as f32 / 100.0 - 0.5;
        Rgb([
            (c[0] * light + n * 6.0).clamp(0.0, 255.0) as u8,
            (c[1] * light + n * 6.0).clamp(0.0, 255.0) as u8,
            (c[2] * light + n * 6.0).clamp(0.0, 255.0) as u8,
        ])
    })
}
