//! Minutiae-only synthetic fingerprints for scale tests (galleries of 100k+ persons): no image is rendered.
//!
//! A master's minutiae are spread by dart throwing (minimum distance 10 px) inside the same silhouette
//! and oriented by the same orientation field as the image generator uses for that finger; impressions
//! use the same pose/distortion model, then drop, jitter, retype and add minutiae as a real extractor
//! would. About 40-70 minutiae per impression, depending on contact area.
#![allow(
    clippy::cast_possible_truncation,
    reason = "counts and coordinates are small and clamped"
)]

use std::f32::consts::PI;

use super::impression::Pose;
use super::master::{FieldParams, sample_fields, silhouette};
use super::{IMPRESSION_HEIGHT, IMPRESSION_WIDTH, Profile};
use crate::minutiae::{Minutia, MinutiaKind, norm_angle};
use crate::rng::Rng;

fn random_minutia(rng: &mut Rng, fields: &FieldParams, x: f32, y: f32) -> Minutia {
    let flip = if rng.chance(0.5) { PI } else { 0.0 };
    Minutia {
        x,
        y,
        direction: norm_angle(fields.orientation(x, y) + flip),
        kind: if rng.chance(0.55) {
            MinutiaKind::Ending
        } else {
            MinutiaKind::Bifurcation
        },
        quality: (40 + rng.below(50)) as u8,
    }
}

/// The master minutiae of a finger (master coordinates).
pub fn master_minutiae(finger_seed: u64) -> Vec<Minutia> {
    let (fields, centre, axes) = sample_fields(finger_seed);
    let mut rng = Rng::new(finger_seed ^ 0x0DD5_EED5);
    let target = (70.0 + 12.0 * rng.normal()).clamp(35.0, 110.0) as usize;
    let mut out: Vec<Minutia> = Vec::with_capacity(target);
    let mut attempts = 0;
    while out.len() < target && attempts < target * 40 {
        attempts += 1;
        let x = centre.0 + axes.0 * rng.range(-1.0, 1.0) as f32;
        let y = centre.1 + axes.1 * rng.range(-1.0, 1.0) as f32;
        if silhouette(centre, axes, x, y) < 0.99 {
            continue;
        }
        if out.iter().any(|m| (m.x - x).powi(2) + (m.y - y).powi(2) < 100.0) {
            continue;
        }
        out.push(random_minutia(&mut rng, &fields, x, y));
    }
    out
}

/// One minutiae-only impression (impression coordinates), consistent in pose with the rendered image of
/// the same seeds.
pub fn impression_minutiae(finger_seed: u64, impression_seed: u64, profile: Profile) -> Vec<Minutia> {
    let (fields, centre, axes) = sample_fields(finger_seed);
    let master = master_minutiae(finger_seed);
    let mut rng = Rng::new(impression_seed);
    let pose = Pose::sample(&mut rng, centre, axes, profile);
    let hard = profile == Profile::Hard;
    let (p_miss, pos_sd, ang_sd, p_retype) = if hard {
        (0.22, 3.0, 0.18, 0.2)
    } else {
        (0.10, 1.5, 0.08, 0.1)
    };
    let inside = |m: &Minutia| {
        m.x >= 8.0
            && m.y >= 8.0
            && m.x < IMPRESSION_WIDTH as f32 - 8.0
            && m.y < IMPRESSION_HEIGHT as f32 - 8.0
    };
    let mut out = Vec::with_capacity(master.len());
    for m in &master {
        if silhouette(centre, axes, m.x, m.y) * pose.contact(m.x, m.y) < 0.8 || rng.chance(p_miss) {
            continue;
        }
        let mut q = pose.map_minutia(m);
        q.x += pos_sd * rng.normal() as f32;
        q.y += pos_sd * rng.normal() as f32;
        q.direction = norm_angle(q.direction + ang_sd * rng.normal() as f32);
        if rng.chance(p_retype) {
            q.kind = match q.kind {
                MinutiaKind::Ending => MinutiaKind::Bifurcation,
                _ => MinutiaKind::Ending,
            };
        }
        if inside(&q) {
            out.push(q);
        }
    }
    let spurious = (out.len() as f64
        * if hard {
            rng.range(0.08, 0.25)
        } else {
            rng.range(0.02, 0.08)
        }) as usize;
    let mut tries = 0;
    let mut added = 0;
    while added < spurious && tries < spurious * 30 {
        tries += 1;
        let x = centre.0 + axes.0 * rng.range(-1.0, 1.0) as f32;
        let y = centre.1 + axes.1 * rng.range(-1.0, 1.0) as f32;
        if silhouette(centre, axes, x, y) * pose.contact(x, y) < 0.8 {
            continue;
        }
        let m = random_minutia(&mut rng, &fields, x, y);
        let q = pose.map_minutia(&m);
        if inside(&q) {
            out.push(q);
            added += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_realistic_and_deterministic() {
        let mut total = 0;
        for f in 0..40u64 {
            let a = impression_minutiae(f, 1000 + f, Profile::Standard);
            let b = impression_minutiae(f, 1000 + f, Profile::Standard);
            assert_eq!(a, b);
            assert!((15..=120).contains(&a.len()), "finger {f}: {} minutiae", a.len());
            total += a.len();
        }
        let mean = total / 40;
        assert!((35..=80).contains(&mean), "mean {mean}");
    }
}
