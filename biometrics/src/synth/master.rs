//! Master fingerprints: orientation field from singularities, ridge-period map, silhouette, iterative
//! Gabor growth and ground-truth minutiae.
#![allow(
    clippy::cast_possible_truncation,
    reason = "pixel arithmetic: floats are clamped to the grid before conversion"
)]

use std::f32::consts::{PI, TAU};
use std::sync::OnceLock;

use crate::grid::Grid;
use crate::minutiae::Minutia;
use crate::rng::Rng;
use crate::skeleton;

/// Width of the master canvas.
pub const MASTER_W: usize = 416;
/// Height of the master canvas.
pub const MASTER_H: usize = 512;

const NDIR: usize = 36;
/// Ridge periods (full resolution) the kernel bank covers: 6.0, 6.5, ... 14.0 pixels.
const PERIOD_MIN: f32 = 6.0;
const PERIOD_STEP: f32 = 0.5;
const NPER: usize = 17;
/// Growth runs at half resolution (ridges are band-limited, so nothing is lost) and is upsampled: this is
/// ~15x cheaper than growing at full resolution.
const SCALE: usize = 2;
const KR: usize = 4;
const KS: usize = 2 * KR + 1;
const ITERATIONS: usize = 6;

/// Henry-style pattern class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternClass {
    /// No singularities; ridges flow across.
    Arch,
    /// One core with a delta right below it.
    TentedArch,
    /// One core, delta to the right (ridges open to the left).
    LeftLoop,
    /// One core, delta to the left.
    RightLoop,
    /// Two cores, two deltas.
    Whorl,
}

/// Everything that defines one finger's ridge pattern.
#[derive(Debug, Clone)]
pub struct MasterFingerprint {
    /// Pattern class.
    pub class: PatternClass,
    /// Core positions (master coordinates).
    pub cores: Vec<(f32, f32)>,
    /// Delta positions.
    pub deltas: Vec<(f32, f32)>,
    /// Finger centre (centre of the silhouette).
    pub centre: (f32, f32),
    /// Silhouette semi-axes (horizontal, vertical).
    pub axes: (f32, f32),
    /// Mean ridge period in pixels.
    pub period: f32,
    /// Ridge pattern in [-1, 1] (positive = ridge), [`MASTER_W`] x [`MASTER_H`].
    pub ridges: Grid<f32>,
    /// Ground-truth minutiae in master coordinates.
    pub minutiae: Vec<Minutia>,
    #[allow(
        dead_code,
        reason = "kept for the quality and index modules that evaluate the field"
    )]
    pub(crate) field: FieldParams,
}

/// Parameters of the orientation and period fields (cheap to evaluate at any point).
#[derive(Debug, Clone)]
pub(crate) struct FieldParams {
    class: PatternClass,
    cores: Vec<(f32, f32)>,
    deltas: Vec<(f32, f32)>,
    arch_amp: f32,
    arch_width: f32,
    centre: (f32, f32),
    /// (kx, ky, phase, amplitude) of the smooth orientation perturbation.
    wobble: [(f32, f32, f32, f32); 3],
    period: f32,
    period_wobble: [(f32, f32, f32, f32); 2],
}

impl FieldParams {
    /// Ridge orientation (radians, modulo π) at a point.
    pub(crate) fn orientation(&self, x: f32, y: f32) -> f32 {
        let base = match self.class {
            PatternClass::Arch => {
                let dx = x - self.centre.0;
                let e = (-(dx * dx) / (2.0 * self.arch_width * self.arch_width)).exp();
                // level sets of y + a e(x): tangent (1, -g_x)
                let gx = -self.arch_amp * e * dx / (self.arch_width * self.arch_width);
                (-gx).atan2(1.0)
            }
            _ => {
                let mut a = 0.0;
                for &(cx, cy) in &self.cores {
                    a += (y - cy).atan2(x - cx);
                }
                for &(dx, dy) in &self.deltas {
                    a -= (y - dy).atan2(x - dx);
                }
                0.5 * a
            }
        };
        let mut w = 0.0;
        for &(kx, ky, ph, amp) in &self.wobble {
            w += amp * (kx * x + ky * y + ph).sin();
        }
        (base + w).rem_euclid(PI)
    }

    /// Ridge period (pixels) at a point.
    pub(crate) fn period(&self, x: f32, y: f32) -> f32 {
        let mut t = self.period;
        for &(kx, ky, ph, amp) in &self.period_wobble {
            t += amp * (kx * x + ky * y + ph).sin();
        }
        // slightly wider ridges above the (first) core
        if let Some(&(cx, cy)) = self.cores.first()
            && y < cy
        {
            let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
            t += 0.6 * (-d / 120.0).exp();
        }
        t.clamp(PERIOD_MIN, PERIOD_MIN + PERIOD_STEP * (NPER - 1) as f32)
    }
}

/// Silhouette weight in [0, 1] (1 inside the fingertip).
pub(crate) fn silhouette(centre: (f32, f32), axes: (f32, f32), x: f32, y: f32) -> f32 {
    let dx = (x - centre.0) / axes.0;
    let mut dy = (y - centre.1) / axes.1;
    if dy > 0.0 {
        // flatter towards the finger joint
        dy *= 0.8;
    }
    let r = (dx * dx + dy * dy).sqrt();
    1.0 - smoothstep(0.9, 1.0, r)
}

pub(crate) fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

struct Bank {
    kernels: Vec<f32>,
}

fn bank() -> &'static Bank {
    static BANK: OnceLock<Bank> = OnceLock::new();
    BANK.get_or_init(|| {
        let mut kernels = Vec::with_capacity(NDIR * NPER * KS * KS);
        for p in 0..NPER {
            let period = (PERIOD_MIN + PERIOD_STEP * p as f32) / SCALE as f32;
            for d in 0..NDIR {
                let theta = d as f32 * PI / NDIR as f32;
                let (s, c) = theta.sin_cos();
                let (sn, su) = (0.42 * period, 0.55 * period);
                let mut k = vec![0f32; KS * KS];
                let mut env = vec![0f32; KS * KS];
                for (i, (kv, ev)) in k.iter_mut().zip(env.iter_mut()).enumerate() {
                    let dx = (i % KS) as f32 - KR as f32;
                    let dy = (i / KS) as f32 - KR as f32;
                    let xn = -dx * s + dy * c;
                    let xu = dx * c + dy * s;
                    let e = (-(xn * xn) / (2.0 * sn * sn) - (xu * xu) / (2.0 * su * su)).exp();
                    *ev = e;
                    *kv = e * (TAU * xn / period).cos();
                }
                let ksum: f32 = k.iter().sum();
                let esum: f32 = env.iter().sum();
                for (kv, ev) in k.iter_mut().zip(&env) {
                    *kv -= ev * ksum / esum;
                }
                let l1: f32 = k.iter().map(|v| v.abs()).sum();
                kernels.extend(k.iter().map(|v| v / l1));
            }
        }
        Bank { kernels }
    })
}

fn sample_class(rng: &mut Rng) -> PatternClass {
    let u = rng.f64();
    if u < 0.04 {
        PatternClass::Arch
    } else if u < 0.08 {
        PatternClass::TentedArch
    } else if u < 0.40 {
        PatternClass::LeftLoop
    } else if u < 0.72 {
        PatternClass::RightLoop
    } else {
        PatternClass::Whorl
    }
}

/// Samples the field parameters of one finger from its seed (cheap; shared with the fast generator).
pub(crate) fn sample_fields(seed: u64) -> (FieldParams, (f32, f32), (f32, f32)) {
    let mut rng = Rng::new(seed);
    let class = sample_class(&mut rng);
    let centre = (
        MASTER_W as f32 / 2.0 + rng.range(-8.0, 8.0) as f32,
        MASTER_H as f32 / 2.0 + rng.range(-8.0, 8.0) as f32,
    );
    let axes = (rng.range(135.0, 165.0) as f32, rng.range(185.0, 225.0) as f32);
    let (cx, cy) = (
        centre.0 + rng.range(-25.0, 25.0) as f32,
        centre.1 + rng.range(-60.0, 0.0) as f32,
    );
    let (cores, deltas) = match class {
        PatternClass::Arch => (vec![], vec![]),
        PatternClass::TentedArch => (
            vec![(cx, cy)],
            vec![(
                cx + rng.range(-10.0, 10.0) as f32,
                cy + rng.range(55.0, 80.0) as f32,
            )],
        ),
        PatternClass::LeftLoop | PatternClass::RightLoop => {
            let side = if class == PatternClass::LeftLoop {
                1.0
            } else {
                -1.0
            };
            (
                vec![(cx, cy)],
                vec![(
                    cx + side * rng.range(70.0, 120.0) as f32,
                    cy + rng.range(90.0, 140.0) as f32,
                )],
            )
        }
        PatternClass::Whorl => {
            let sep = rng.range(14.0, 40.0) as f32;
            let tilt = rng.range(-0.6, 0.6) as f32;
            let c1 = (cx - 0.5 * sep * tilt.sin(), cy - 0.5 * sep * tilt.cos());
            let c2 = (cx + 0.5 * sep * tilt.sin(), cy + 0.5 * sep * tilt.cos());
            let dy = cy + rng.range(90.0, 130.0) as f32;
            (
                vec![c1, c2],
                vec![
                    (
                        cx - rng.range(80.0, 120.0) as f32,
                        dy + rng.range(-15.0, 15.0) as f32,
                    ),
                    (
                        cx + rng.range(80.0, 120.0) as f32,
                        dy + rng.range(-15.0, 15.0) as f32,
                    ),
                ],
            )
        }
    };
    let mut wobble = [(0f32, 0f32, 0f32, 0f32); 3];
    for w in &mut wobble {
        let wl = rng.range(150.0, 400.0) as f32;
        let a = rng.range(0.0, std::f64::consts::TAU) as f32;
        *w = (
            TAU / wl * a.cos(),
            TAU / wl * a.sin(),
            rng.range(0.0, std::f64::consts::TAU) as f32,
            rng.range(0.02, 0.08) as f32,
        );
    }
    let mut period_wobble = [(0f32, 0f32, 0f32, 0f32); 2];
    for w in &mut period_wobble {
        let wl = rng.range(200.0, 500.0) as f32;
        let a = rng.range(0.0, std::f64::consts::TAU) as f32;
        *w = (
            TAU / wl * a.cos(),
            TAU / wl * a.sin(),
            rng.range(0.0, std::f64::consts::TAU) as f32,
            rng.range(0.2, 0.5) as f32,
        );
    }
    let fields = FieldParams {
        class,
        cores,
        deltas,
        arch_amp: rng.range(40.0, 90.0) as f32,
        arch_width: rng.range(60.0, 110.0) as f32,
        centre,
        wobble,
        period: rng.range(8.3, 10.3) as f32,
        period_wobble,
    };
    (fields, centre, axes)
}

/// Generates a master fingerprint from a seed.
pub fn generate(seed: u64) -> MasterFingerprint {
    let (fields, centre, axes) = sample_fields(seed);
    let mut rng = Rng::new(seed ^ 0xA5A5_5A5A_0F0F_F0F0);
    let (w, h) = (MASTER_W / SCALE, MASTER_H / SCALE);
    let bank = bank();
    let sc = SCALE as f32;

    // Region to grow (half resolution): inside the silhouette plus a margin, away from the canvas edges by
    // the kernel radius.
    let mut region: Vec<(usize, usize, usize)> = Vec::new(); // (x, y, kernel index)
    for y in KR..h - KR {
        for x in KR..w - KR {
            let (xf, yf) = ((x as f32 + 0.5) * sc, (y as f32 + 0.5) * sc);
            let dx = (xf - centre.0) / (axes.0 + 12.0);
            let dy = (yf - centre.1) / (axes.1 + 12.0);
            if dx * dx + dy * dy > 1.0 {
                continue;
            }
            let theta = fields.orientation(xf, yf);
            let period = fields.period(xf, yf);
            let d = ((theta / PI * NDIR as f32).round() as usize) % NDIR;
            let p = (((period - PERIOD_MIN) / PERIOD_STEP).round() as usize).min(NPER - 1);
            region.push((x, y, (p * NDIR + d) * KS * KS));
        }
    }
    let mut cur = Grid::new(w, h, 0f32);
    for &(x, y, _) in &region {
        cur.set(x, y, rng.f32() * 2.0 - 1.0);
    }
    let mut next = Grid::new(w, h, 0f32);
    for _ in 0..ITERATIONS {
        let mut sum_sq = 0f64;
        for &(x, y, k) in &region {
            let kernel = bank.kernels.get(k..k + KS * KS).unwrap_or(&[]);
            let mut acc = 0f32;
            for (ky, krow) in kernel.chunks_exact(KS).enumerate() {
                let row_start = (y + ky - KR) * w + x - KR;
                if let Some(src) = cur.data.get(row_start..row_start + KS) {
                    acc += src.iter().zip(krow).map(|(a, b)| a * b).sum::<f32>();
                }
            }
            sum_sq += f64::from(acc * acc);
            next.set(x, y, acc);
        }
        let rms = (sum_sq / region.len().max(1) as f64).sqrt() as f32;
        let gain = if rms > 0.0 { 2.0 / rms } else { 1.0 };
        for &(x, y, _) in &region {
            let v = (next.get(x, y) * gain).clamp(-1.0, 1.0);
            cur.set(x, y, v);
        }
    }
    // Upsample to full resolution.
    let ridges = Grid::from_fn(MASTER_W, MASTER_H, |x, y| {
        cur.bilinear((x as f32 + 0.5) / sc - 0.5, (y as f32 + 0.5) / sc - 0.5, -1.0)
    });
    let (w, h) = (MASTER_W, MASTER_H);

    // Ground truth: thin the binarised master and detect minutiae well inside the silhouette.
    let binary = Grid::from_fn(w, h, |x, y| {
        u8::from(ridges.get(x, y) > 0.0 && silhouette(centre, axes, x as f32, y as f32) > 0.5)
    });
    let skel = skeleton::thin(&binary);
    let inside = |x: usize, y: usize| {
        silhouette(centre, axes, x as f32, y as f32) > 0.999 && {
            let dx = (x as f32 - centre.0) / axes.0;
            let dy = (y as f32 - centre.1) / axes.1;
            dx * dx + dy * dy < 0.8
        }
    };
    let minutiae = skeleton::minutiae(&skel, &inside, &skeleton::CleanParams::default());

    MasterFingerprint {
        class: fields.class,
        cores: fields.cores.clone(),
        deltas: fields.deltas.clone(),
        centre,
        axes,
        period: fields.period,
        ridges,
        minutiae,
        field: fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_are_deterministic_and_distinct() {
        let a = generate(1);
        let b = generate(1);
        let c = generate(2);
        assert_eq!(a.ridges, b.ridges);
        assert_ne!(a.ridges, c.ridges);
        assert!(
            (20..=160).contains(&a.minutiae.len()),
            "master minutiae {}",
            a.minutiae.len()
        );
    }

    #[test]
    fn ridge_period_matches_the_field() {
        // Count sign changes along a horizontal line through the centre: about 2 per period.
        let m = generate(11);
        let y = m.centre.1 as usize + 60;
        let xs = (m.centre.0 as usize - 80)..(m.centre.0 as usize + 80);
        let mut changes = 0;
        let mut prev = m.ridges.get(xs.start, y) > 0.0;
        for x in xs {
            let s = m.ridges.get(x, y) > 0.0;
            changes += usize::from(s != prev);
            prev = s;
        }
        // 160 px / period ~9 px → ~35 crossings if ridges were vertical; fewer for oblique ridges.
        assert!((6..=50).contains(&changes), "{changes} sign changes");
    }
}
