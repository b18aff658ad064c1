//! Rendering one impression of a master fingerprint: pose, plastic distortion, partial contact,
//! pressure/dryness, scratches, blur and noise.
#![allow(
    clippy::cast_possible_truncation,
    reason = "pixel arithmetic: floats are clamped to 0..=255 or to the grid before conversion"
)]

use std::f32::consts::PI;

use image::GrayImage;

use super::master::{MasterFingerprint, smoothstep};
use super::{IMPRESSION_HEIGHT, IMPRESSION_WIDTH, Profile};
use crate::grid::Grid;
use crate::minutiae::{Minutia, norm_angle};
use crate::rng::Rng;

/// The degradations applied to one impression (ground truth for quality evaluation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Degradation {
    /// Rotation of the finger on the sensor, radians.
    pub rotation: f32,
    /// Translation (pixels).
    pub translation: (f32, f32),
    /// Largest displacement of the plastic distortion (pixels).
    pub distortion: f32,
    /// Fraction of the fingertip area in contact (0-1).
    pub contact: f32,
    /// Skin condition: negative = wet (thick, merged ridges), positive = dry (thin, broken ridges).
    pub dryness: f32,
    /// Standard deviation of the added sensor noise (grey levels).
    pub noise: f32,
    /// Ridge/valley contrast (grey levels).
    pub contrast: f32,
    /// Whether a blur was applied.
    pub blurred: bool,
    /// Number of scratches drawn.
    pub scratches: u32,
}

/// One rendered impression with its ground truth.
#[derive(Debug, Clone)]
pub struct Impression {
    /// The 500 ppi grey image.
    pub image: GrayImage,
    /// Ground-truth minutiae of the master mapped into this image (only those in the contact area).
    pub minutiae: Vec<Minutia>,
    /// What was applied.
    pub degradation: Degradation,
}

/// The geometric part of an impression: master → impression mapping.
#[derive(Debug, Clone)]
pub(crate) struct Pose {
    cos: f32,
    sin: f32,
    t: (f32, f32),
    centre: (f32, f32),
    d_centre: (f32, f32),
    r1: f32,
    r2: f32,
    psi_cos: f32,
    psi_sin: f32,
    tau: (f32, f32),
    warp: [(f32, f32, f32, f32); 2],
    contact_centre: (f32, f32),
    contact_axes: (f32, f32),
    pub(crate) degradation: Degradation,
}

fn clamp_normal(rng: &mut Rng, sd: f64, lim: f64) -> f32 {
    (rng.normal() * sd).clamp(-lim, lim) as f32
}

impl Pose {
    pub(crate) fn sample(rng: &mut Rng, centre: (f32, f32), axes: (f32, f32), profile: Profile) -> Self {
        let hard = profile == Profile::Hard;
        let deg = PI / 180.0;
        let rotation = clamp_normal(rng, if hard { 12.0 } else { 6.0 }, if hard { 30.0 } else { 15.0 }) * deg;
        let tl = if hard { 45.0 } else { 25.0 };
        let tsd = if hard { 22.0 } else { 10.0 };
        let t = (clamp_normal(rng, tsd, tl), clamp_normal(rng, tsd, tl));
        let psi = clamp_normal(rng, if hard { 4.0 } else { 2.0 }, if hard { 8.0 } else { 4.0 }) * deg;
        let tau_max = if hard { 9.0 } else { 4.0 };
        let tau = (
            rng.range(-tau_max, tau_max) as f32,
            rng.range(-tau_max, tau_max) as f32,
        );
        let warp_amp = if hard { 2.5 } else { 1.2 };
        let mut warp = [(0f32, 0f32, 0f32, 0f32); 2];
        for w in &mut warp {
            let wl = rng.range(120.0, 260.0) as f32;
            let a = rng.range(0.0, std::f64::consts::TAU) as f32;
            *w = (
                2.0 * PI / wl * a.cos(),
                2.0 * PI / wl * a.sin(),
                rng.range(0.0, std::f64::consts::TAU) as f32,
                warp_amp,
            );
        }
        let r1 = rng.range(50.0, 80.0) as f32;
        let d_centre = (
            centre.0 + rng.range(-30.0, 30.0) as f32,
            centre.1 + rng.range(-30.0, 30.0) as f32,
        );
        let contact = if hard {
            rng.range(0.55, 1.0)
        } else {
            rng.range(0.85, 1.0)
        } as f32;
        let shrink = contact.sqrt();
        let free = 1.0 - shrink;
        let contact_centre = (
            centre.0 + rng.range(-1.0, 1.0) as f32 * free * axes.0,
            centre.1 + rng.range(-1.0, 1.0) as f32 * free * axes.1,
        );
        let dryness = clamp_normal(rng, if hard { 0.28 } else { 0.1 }, 0.6);
        let noise = if hard {
            rng.range(7.0, 20.0)
        } else {
            rng.range(2.0, 7.0)
        } as f32;
        let contrast = if hard {
            rng.range(70.0, 190.0)
        } else {
            rng.range(130.0, 190.0)
        } as f32;
        let blurred = rng.chance(if hard { 0.5 } else { 0.25 });
        let scratches = if hard { rng.below(4) as u32 } else { 0 };
        let distortion = (tau.0.hypot(tau.1) + psi.abs() * 150.0 + warp_amp).min(60.0);
        Self {
            cos: rotation.cos(),
            sin: rotation.sin(),
            t,
            centre,
            d_centre,
            r1,
            r2: r1 + 90.0,
            psi_cos: psi.cos(),
            psi_sin: psi.sin(),
            tau,
            warp,
            contact_centre,
            contact_axes: (axes.0 * shrink, axes.1 * shrink),
            degradation: Degradation {
                rotation,
                translation: t,
                distortion,
                contact,
                dryness,
                noise,
                contrast,
                blurred,
                scratches,
            },
        }
    }

    /// Plastic distortion displacement at a master point.
    fn displacement(&self, x: f32, y: f32) -> (f32, f32) {
        let (rx, ry) = (x - self.d_centre.0, y - self.d_centre.1);
        let r = rx.hypot(ry);
        let b = smoothstep(self.r1, self.r2, r);
        let mx = self.psi_cos * rx - self.psi_sin * ry + self.tau.0 - rx;
        let my = self.psi_sin * rx + self.psi_cos * ry + self.tau.1 - ry;
        let [(k1x, k1y, p1, a1), (k2x, k2y, p2, a2)] = self.warp;
        (
            b * mx + a1 * (k1x * x + k1y * y + p1).sin(),
            b * my + a2 * (k2x * x + k2y * y + p2).sin(),
        )
    }

    /// Master point → impression point.
    pub(crate) fn forward(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = self.displacement(x, y);
        let (px, py) = (x + dx - self.centre.0, y + dy - self.centre.1);
        (
            IMPRESSION_WIDTH as f32 / 2.0 + self.t.0 + self.cos * px - self.sin * py,
            IMPRESSION_HEIGHT as f32 / 2.0 + self.t.1 + self.sin * px + self.cos * py,
        )
    }

    /// Impression point → master point (fixed-point inversion of the smooth distortion).
    pub(crate) fn inverse(&self, qx: f32, qy: f32) -> (f32, f32) {
        let (ux, uy) = (
            qx - IMPRESSION_WIDTH as f32 / 2.0 - self.t.0,
            qy - IMPRESSION_HEIGHT as f32 / 2.0 - self.t.1,
        );
        let p0 = (
            self.centre.0 + self.cos * ux + self.sin * uy,
            self.centre.1 - self.sin * ux + self.cos * uy,
        );
        let mut p = p0;
        for _ in 0..4 {
            let (dx, dy) = self.displacement(p.0, p.1);
            p = (p0.0 - dx, p0.1 - dy);
        }
        p
    }

    /// Weight of the contact region at a master point.
    pub(crate) fn contact(&self, x: f32, y: f32) -> f32 {
        let dx = (x - self.contact_centre.0) / self.contact_axes.0;
        let dy = (y - self.contact_centre.1) / self.contact_axes.1;
        1.0 - smoothstep(0.85, 1.0, (dx * dx + dy * dy).sqrt())
    }

    /// Maps a master minutia into the impression.
    pub(crate) fn map_minutia(&self, m: &Minutia) -> Minutia {
        let (x, y) = self.forward(m.x, m.y);
        let (ex, ey) = self.forward(m.x + 4.0 * m.direction.cos(), m.y + 4.0 * m.direction.sin());
        Minutia {
            x,
            y,
            direction: norm_angle((ey - y).atan2(ex - x)),
            ..*m
        }
    }
}

/// Approximately normal noise from four uniforms (cheap and deterministic).
fn noise(rng: &mut Rng) -> f32 {
    (rng.f32() + rng.f32() + rng.f32() + rng.f32() - 2.0) * 1.732
}

/// Renders one impression of `master`.
pub fn render(master: &MasterFingerprint, seed: u64, profile: Profile) -> Impression {
    let mut rng = Rng::new(seed);
    let pose = Pose::sample(&mut rng, master.centre, master.axes, profile);
    let d = pose.degradation;
    let (w, h) = (IMPRESSION_WIDTH as usize, IMPRESSION_HEIGHT as usize);

    // Inverse map on a coarse grid, interpolated per pixel.
    const STEP: usize = 8;
    let (gw, gh) = (w / STEP + 2, h / STEP + 2);
    let coarse_x = Grid::from_fn(gw, gh, |i, j| {
        pose.inverse((i * STEP) as f32, (j * STEP) as f32).0
    });
    let coarse_y = Grid::from_fn(gw, gh, |i, j| {
        pose.inverse((i * STEP) as f32, (j * STEP) as f32).1
    });

    // Dry skin: blotches where ridges break (value noise in master coordinates).
    let blotch = Grid::from_fn(
        super::master::MASTER_W / 12 + 2,
        super::master::MASTER_H / 12 + 2,
        |_, _| rng.f32(),
    );
    let break_level = (d.dryness * 1.2).clamp(0.0, 0.7);

    let background = rng.range(200.0, 238.0) as f32;
    let mut pixels = vec![0f32; w * h];
    for (idx, px) in pixels.iter_mut().enumerate() {
        let (qx, qy) = (idx % w, idx / w);
        let (fx, fy) = (qx as f32 / STEP as f32, qy as f32 / STEP as f32);
        let mx = coarse_x.bilinear(fx, fy, 0.0);
        let my = coarse_y.bilinear(fx, fy, 0.0);
        let v = master.ridges.bilinear(mx, my, -1.0);
        let weight = super::master::silhouette(master.centre, master.axes, mx, my) * pose.contact(mx, my);
        let mut ridge = smoothstep(-0.45, 0.45, v - d.dryness);
        if break_level > 0.0 {
            let b = blotch.bilinear(mx / 12.0, my / 12.0, 0.0);
            if b < break_level {
                ridge *= smoothstep(0.0, 0.15, break_level - b).mul_add(-0.85, 1.0);
            }
        }
        *px = background - d.contrast * weight * ridge;
    }
    // Scratches: bright lines.
    for _ in 0..d.scratches {
        let (x0, y0) = (rng.range(0.0, w as f64) as f32, rng.range(0.0, h as f64) as f32);
        let a = rng.range(0.0, std::f64::consts::PI) as f32;
        let len = rng.range(60.0, 250.0) as f32;
        let width = rng.range(1.0, 3.0) as f32;
        let steps = len as usize;
        for s in 0..steps {
            let (cx, cy) = (x0 + a.cos() * s as f32, y0 + a.sin() * s as f32);
            let r = width.ceil() as isize;
            for oy in -r..=r {
                for ox in -r..=r {
                    let (x, y) = (cx as isize + ox, cy as isize + oy);
                    if x >= 0
                        && y >= 0
                        && (x as usize) < w
                        && (y as usize) < h
                        && let Some(p) = pixels.get_mut(y as usize * w + x as usize)
                    {
                        *p = background;
                    }
                }
            }
        }
    }
    if d.blurred {
        let src = pixels.clone();
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let mut acc = 0.0;
                for oy in 0..3 {
                    let row = (y + oy - 1) * w + x - 1;
                    acc += src.get(row..row + 3).map_or(0.0, |s| s.iter().sum::<f32>());
                }
                if let Some(p) = pixels.get_mut(y * w + x) {
                    *p = acc / 9.0;
                }
            }
        }
    }
    let raw: Vec<u8> = pixels
        .iter()
        .map(|&p| (p + d.noise * noise(&mut rng)).round().clamp(0.0, 255.0) as u8)
        .collect();
    let image = GrayImage::from_raw(IMPRESSION_WIDTH, IMPRESSION_HEIGHT, raw)
        .unwrap_or_else(|| GrayImage::new(IMPRESSION_WIDTH, IMPRESSION_HEIGHT));

    let minutiae = master
        .minutiae
        .iter()
        .filter(|m| {
            super::master::silhouette(master.centre, master.axes, m.x, m.y) * pose.contact(m.x, m.y) > 0.8
        })
        .map(|m| pose.map_minutia(m))
        .filter(|m| m.x >= 6.0 && m.y >= 6.0 && m.x < w as f32 - 6.0 && m.y < h as f32 - 6.0)
        .collect();
    Impression {
        image,
        minutiae,
        degradation: d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn inverse_undoes_forward() {
        let mut rng = Rng::new(5);
        let pose = Pose::sample(&mut rng, (208.0, 256.0), (150.0, 200.0), Profile::Hard);
        for &(x, y) in &[(100.0, 100.0), (208.0, 256.0), (300.0, 400.0)] {
            let (qx, qy) = pose.forward(x, y);
            let (bx, by) = pose.inverse(qx, qy);
            assert!(
                (bx - x).abs() < 0.5 && (by - y).abs() < 0.5,
                "({x},{y}) -> ({bx},{by})"
            );
        }
    }
}
