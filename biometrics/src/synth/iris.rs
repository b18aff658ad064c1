//! Simple synthetic near-infrared iris images: pupil, textured iris (radial furrows, crypts, rings),
//! sclera, eyelids and a specular highlight. Identity comes from the texture; impressions vary gaze,
//! pupil dilation, rotation, eyelid opening, brightness and noise.
#![allow(
    clippy::cast_possible_truncation,
    reason = "pixel arithmetic: values clamped to 0..=255 before conversion"
)]

use std::f32::consts::{PI, TAU};

use image::GrayImage;

use crate::grid::Grid;
use crate::rng::Rng;

const W: u32 = 640;
const H: u32 = 480;
const NR: usize = 48;
const NA: usize = 512;

/// Renders one iris image from an identity seed (texture) and an impression seed (capture conditions).
pub fn render(identity: u64, capture: u64) -> GrayImage {
    let mut id = Rng::new(identity);
    let iris_r = id.range(105.0, 125.0) as f32;
    let base = id.range(70.0, 130.0) as f32;
    // Texture in normalised polar coordinates (radius 0..1 from pupil to limbus, angle 0..2π).
    let mut terms = Vec::new();
    for _ in 0..40 {
        terms.push((
            id.below(60) as f32 + 3.0, // angular frequency
            id.range(0.5, 6.0) as f32, // radial frequency
            id.range(0.0, std::f64::consts::TAU) as f32,
            id.range(4.0, 14.0) as f32, // amplitude
        ));
    }
    let mut crypts = Vec::new();
    for _ in 0..(10 + id.below(15)) {
        crypts.push((
            id.range(0.15, 0.9) as f32,
            id.range(0.0, std::f64::consts::TAU) as f32,
            id.range(0.03, 0.09) as f32,
            id.range(20.0, 50.0) as f32,
        ));
    }
    let texture = Grid::from_fn(NA, NR, |ai, ri| {
        let r = ri as f32 / (NR - 1) as f32;
        let a = ai as f32 / NA as f32 * TAU;
        let mut v = base + 25.0 * (1.0 - r) * (1.0 - r);
        for &(fa, fr, ph, amp) in &terms {
            v += amp * (fa * a + fr * r * TAU + ph).sin() * 0.5;
        }
        for &(cr, ca, size, depth) in &crypts {
            let da = (a - ca + PI).rem_euclid(TAU) - PI;
            let d2 = (r - cr).powi(2) + (da * 0.5).powi(2);
            v -= depth * (-d2 / (size * size)).exp();
        }
        v
    });

    let mut cap = Rng::new(capture);
    let cx = W as f32 / 2.0 + cap.range(-25.0, 25.0) as f32;
    let cy = H as f32 / 2.0 + cap.range(-20.0, 20.0) as f32;
    let pupil_r = iris_r * cap.range(0.3, 0.45) as f32;
    let rotation = cap.range(-0.12, 0.12) as f32;
    let lid_top = cy - iris_r * cap.range(0.6, 1.05) as f32;
    let lid_bottom = cy + iris_r * cap.range(0.8, 1.1) as f32;
    let gain = cap.range(0.85, 1.15) as f32;
    let noise = cap.range(1.0, 5.0) as f32;
    let (hx, hy) = (
        cx + cap.range(-0.4, 0.4) as f32 * pupil_r,
        cy + cap.range(-0.4, 0.4) as f32 * pupil_r,
    );
    GrayImage::from_fn(W, H, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let (dx, dy) = (fx - cx, fy - cy);
        let r = dx.hypot(dy);
        let mut v = if r < pupil_r {
            18.0
        } else if r < iris_r {
            let rn = (r - pupil_r) / (iris_r - pupil_r) * (NR - 1) as f32;
            let a = (dy.atan2(dx) + rotation).rem_euclid(TAU) / TAU * NA as f32;
            texture.bilinear(a.min(NA as f32 - 1.0), rn, base)
        } else {
            185.0 - 20.0 * ((r - iris_r) / 200.0).min(1.0)
        };
        // eyelids: parabolas above and below
        let lid_curve = (dx / (iris_r * 2.2)).powi(2) * iris_r;
        if fy < lid_top + lid_curve || fy > lid_bottom - lid_curve * 0.6 {
            v = 150.0 + 10.0 * ((fx * 0.05).sin());
        }
        if (fx - hx).hypot(fy - hy) < 6.0 {
            v = 250.0;
        }
        let n = ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ capture as u32) % 1000) as f32
            / 1000.0
            - 0.5;
        image::Luma([(v * gain + n * noise * 3.0).clamp(0.0, 255.0) as u8])
    })
}
