//! 1:1 fingerprint matching with Minutia Cylinder-Code (Cappelli, Ferrara, Maltoni, TPAMI 2010), bit
//! version, with LSA-style pair selection and LSS-R relaxation.
//!
//! Each minutia gets a cylinder: an [`NS`] x [`NS`] grid of spatial cells (radius [`RADIUS`] px, rotated
//! with the minutia) times [`ND`] direction slices; a bit is set when neighbouring minutiae with the
//! matching relative direction lie near the cell. A validity mask marks cells inside the circle and near
//! the print's convex hull, so partial prints compare only what both sides saw. Two cylinders are compared
//! with XOR/popcount. The global score takes the best one-to-one pairs, relaxes their similarities by
//! geometric consistency with each other, and averages the most efficient ones: a score in [0, 1].
//!
//! Precompute once per template ([`MccTemplate::new`]); comparisons then do no allocation
//! ([`Matcher::compare`] reuses its buffers).
#![allow(
    clippy::cast_possible_truncation,
    reason = "cell indices and counts are small; floats are clamped before conversion"
)]

use std::f32::consts::{PI, TAU};

use crate::minutiae::Minutia;

/// Cylinder radius (pixels at 500 ppi).
pub const RADIUS: f32 = 70.0;
/// Spatial cells per side.
pub const NS: usize = 8;
/// Direction slices.
pub const ND: usize = 6;
const CELLS: usize = NS * NS * ND;
const WORDS: usize = CELLS.div_ceil(64);
const SIGMA_S: f32 = 28.0 / 3.0;
const SIGMA_D: f32 = 2.0 * PI / 9.0;
const MU_PSI: f32 = 0.01;
const HULL_MARGIN: f32 = 50.0;
/// Minimum fraction of cells valid in both cylinders for a comparison to count.
const MIN_COMMON: f32 = 0.6;
/// Largest direction difference of two paired minutiae.
const MAX_ROTATION: f32 = PI / 2.0;
/// At most this many minutiae (highest quality) are used per template.
pub const MAX_MINUTIAE: usize = 64;
/// At most this many one-to-one pairs enter the relaxation (its cost is quadratic).
pub const MAX_RELAX_PAIRS: usize = 20;

#[derive(Debug, Clone, Copy)]
struct Cyl {
    bits: [u64; WORDS],
    valid: [u64; WORDS],
    /// All cells that lie inside the circle are valid (fast path).
    full: bool,
    /// sqrt(popcount(bits)), for the fast path.
    norm: f32,
    valid_count: u32,
}

/// A template prepared for matching.
#[derive(Debug, Clone)]
pub struct MccTemplate {
    /// (x, y, direction) of the minutiae that have a cylinder.
    pts: Vec<(f32, f32, f32)>,
    /// (cos, sin) of each direction, for the fast rotation filter.
    dirs: Vec<(f32, f32)>,
    cyls: Vec<Cyl>,
}

fn ang_diff_signed(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(TAU);
    if d > PI { d - TAU } else { d }
}

fn convex_hull(points: &[(f32, f32)]) -> Vec<(f32, f32)> {
    let mut p: Vec<(f32, f32)> = points.to_vec();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let cross =
        |o: (f32, f32), a: (f32, f32), b: (f32, f32)| (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0);
    let mut lower: Vec<(f32, f32)> = Vec::new();
    for &pt in &p {
        while lower.len() >= 2 {
            let (Some(&a), Some(&b)) = (lower.get(lower.len() - 2), lower.last()) else {
                break;
            };
            if cross(a, b, pt) <= 0.0 {
                lower.pop();
            } else {
                break;
            }
        }
        lower.push(pt);
    }
    let mut upper: Vec<(f32, f32)> = Vec::new();
    for &pt in p.iter().rev() {
        while upper.len() >= 2 {
            let (Some(&a), Some(&b)) = (upper.get(upper.len() - 2), upper.last()) else {
                break;
            };
            if cross(a, b, pt) <= 0.0 {
                upper.pop();
            } else {
                break;
            }
        }
        upper.push(pt);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

/// Inside the hull, or within `margin` of it.
fn near_hull(hull: &[(f32, f32)], x: f32, y: f32, margin: f32) -> bool {
    if hull.len() < 3 {
        return true;
    }
    let mut inside = true;
    let mut best = f32::MAX;
    for (i, &a) in hull.iter().enumerate() {
        let b = hull.get((i + 1) % hull.len()).copied().unwrap_or(a);
        let (ex, ey) = (b.0 - a.0, b.1 - a.1);
        let c = ex * (y - a.1) - ey * (x - a.0);
        if c < 0.0 {
            inside = false;
        }
        let len2 = (ex * ex + ey * ey).max(1e-6);
        let t = (((x - a.0) * ex + (y - a.1) * ey) / len2).clamp(0.0, 1.0);
        let d = (x - a.0 - t * ex).hypot(y - a.1 - t * ey);
        best = best.min(d);
    }
    inside || best <= margin
}

fn popcount(w: &[u64; WORDS]) -> u32 {
    w.iter().map(|v| v.count_ones()).sum()
}

impl MccTemplate {
    /// Builds the cylinders of a minutiae set (image coordinates, 500 ppi).
    pub fn new(minutiae: &[Minutia]) -> Self {
        let mut ms: Vec<Minutia> = minutiae.to_vec();
        if ms.len() > MAX_MINUTIAE {
            ms.sort_by_key(|m| std::cmp::Reverse(m.quality));
            ms.truncate(MAX_MINUTIAE);
        }
        let hull = convex_hull(&ms.iter().map(|m| (m.x, m.y)).collect::<Vec<_>>());
        let ds = 2.0 * RADIUS / NS as f32;
        let dd = TAU / ND as f32;
        let gs_norm = 1.0 / (SIGMA_S * (TAU).sqrt());
        let reach = RADIUS + 3.0 * SIGMA_S;
        let mut pts = Vec::with_capacity(ms.len());
        let mut dirs = Vec::with_capacity(ms.len());
        let mut cyls = Vec::with_capacity(ms.len());
        for (mi, m) in ms.iter().enumerate() {
            let (s, c) = m.direction.sin_cos();
            let neigh: Vec<&Minutia> = ms
                .iter()
                .enumerate()
                .filter(|(j, o)| *j != mi && (o.x - m.x).hypot(o.y - m.y) <= reach)
                .map(|(_, o)| o)
                .collect();
            if neigh.len() < 2 {
                continue;
            }
            let mut bits = [0u64; WORDS];
            let mut valid = [0u64; WORDS];
            let mut full = true;
            let mut valid_count = 0;
            for i in 0..NS {
                for j in 0..NS {
                    let u = (i as f32 - (NS as f32 - 1.0) / 2.0) * ds;
                    let v = (j as f32 - (NS as f32 - 1.0) / 2.0) * ds;
                    let (px, py) = (m.x + c * u - s * v, m.y + s * u + c * v);
                    let in_circle = u.hypot(v) <= RADIUS;
                    let ok = in_circle && near_hull(&hull, px, py, HULL_MARGIN);
                    if in_circle && !ok {
                        full = false;
                    }
                    for k in 0..ND {
                        let cell = (i * NS + j) * ND + k;
                        let (w, b) = (cell / 64, cell % 64);
                        if !ok {
                            continue;
                        }
                        if let Some(vw) = valid.get_mut(w) {
                            *vw |= 1 << b;
                        }
                        valid_count += 1;
                        let phi = -PI + (k as f32 + 0.5) * dd;
                        let mut acc = 0f32;
                        for o in &neigh {
                            let dist = (o.x - px).hypot(o.y - py);
                            if dist > 3.0 * SIGMA_S {
                                continue;
                            }
                            let gs = gs_norm * (-(dist * dist) / (2.0 * SIGMA_S * SIGMA_S)).exp();
                            let dtheta = ang_diff_signed(m.direction, o.direction);
                            let diff = ang_diff_signed(phi, dtheta);
                            let gd = dd / (SIGMA_D * TAU.sqrt())
                                * (-(diff * diff) / (2.0 * SIGMA_D * SIGMA_D)).exp();
                            acc += gs * gd;
                        }
                        if acc >= MU_PSI
                            && let Some(bw) = bits.get_mut(w)
                        {
                            *bw |= 1 << b;
                        }
                    }
                }
            }
            pts.push((m.x, m.y, m.direction));
            dirs.push((c, s));
            cyls.push(Cyl {
                bits,
                valid,
                full,
                norm: (popcount(&bits) as f32).sqrt(),
                valid_count,
            });
        }
        Self { pts, dirs, cyls }
    }

    /// Number of minutiae with a cylinder.
    pub fn len(&self) -> usize {
        self.cyls.len()
    }

    /// True when no minutia had enough neighbours for a cylinder (nothing to match).
    pub fn is_empty(&self) -> bool {
        self.cyls.is_empty()
    }
}

#[inline]
fn local_similarity(a: &Cyl, b: &Cyl, sqrt_table: &[f32]) -> f32 {
    let sq = |n: u32| sqrt_table.get(n as usize).copied().unwrap_or(0.0);
    if a.full && b.full {
        let mut x = 0u32;
        for (p, q) in a.bits.iter().zip(&b.bits) {
            x += (p ^ q).count_ones();
        }
        let den = a.norm + b.norm;
        return if den > 0.0 { 1.0 - sq(x) / den } else { 0.0 };
    }
    let (mut common, mut pa, mut pb, mut px) = (0u32, 0u32, 0u32, 0u32);
    for w in 0..WORDS {
        let (Some(&av), Some(&bv), Some(&ab), Some(&bb)) =
            (a.valid.get(w), b.valid.get(w), a.bits.get(w), b.bits.get(w))
        else {
            continue;
        };
        let v = av & bv;
        common += v.count_ones();
        let (ca, cb) = (ab & v, bb & v);
        pa += ca.count_ones();
        pb += cb.count_ones();
        px += (ca ^ cb).count_ones();
    }
    if (common as f32) < MIN_COMMON * (a.valid_count.max(b.valid_count) as f32) {
        return 0.0;
    }
    let den = sq(pa) + sq(pb);
    if den > 0.0 { 1.0 - sq(px) / den } else { 0.0 }
}

/// Wraps an angle in (-4π, 4π) to (-π, π].
#[inline]
fn wrap_pi(mut a: f32) -> f32 {
    while a > PI {
        a -= TAU;
    }
    while a <= -PI {
        a += TAU;
    }
    a
}

/// atan2 with a maximum error of about 0.0015 rad (polynomial; no libm call).
#[inline]
fn fast_atan2(y: f32, x: f32) -> f32 {
    let (ax, ay) = (x.abs(), y.abs());
    if ax == 0.0 && ay == 0.0 {
        return 0.0;
    }
    let (mn, mx) = if ax < ay { (ax, ay) } else { (ay, ax) };
    let t = mn / mx;
    let t2 = t * t;
    let mut r = ((-0.046_496_473 * t2 + 0.159_314_22) * t2 - 0.327_622_77) * t2 * t + t;
    if ay > ax {
        r = std::f32::consts::FRAC_PI_2 - r;
    }
    if x < 0.0 {
        r = PI - r;
    }
    if y < 0.0 { -r } else { r }
}

fn z(v: f32, mu: f32, tau: f32) -> f32 {
    1.0 / (1.0 + (-tau * (v - mu)).exp())
}

/// A probe prepared for many comparisons; reuses its buffers.
#[derive(Debug, Clone)]
pub struct Matcher {
    probe: MccTemplate,
    sims: Vec<(f32, u16, u16)>,
    used_a: Vec<bool>,
    used_b: Vec<bool>,
    pairs: Vec<(usize, usize, f32)>,
    lambda: Vec<f32>,
    next: Vec<f32>,
    rho: Vec<f32>,
    sqrt_table: Vec<f32>,
}

impl Matcher {
    /// Prepares a probe.
    pub fn new(probe: MccTemplate) -> Self {
        Self {
            probe,
            sims: Vec::new(),
            used_a: Vec::new(),
            used_b: Vec::new(),
            pairs: Vec::new(),
            lambda: Vec::new(),
            next: Vec::new(),
            rho: Vec::new(),
            sqrt_table: (0..=CELLS).map(|n| (n as f32).sqrt()).collect(),
        }
    }

    /// The prepared probe.
    pub fn probe(&self) -> &MccTemplate {
        &self.probe
    }

    /// Similarity score in [0, 1] of the probe against a candidate.
    pub fn compare(&mut self, cand: &MccTemplate) -> f32 {
        let a = &self.probe;
        let (na, nb) = (a.cyls.len(), cand.cyls.len());
        if na < 2 || nb < 2 {
            return 0.0;
        }
        self.sims.clear();
        let min_cos = MAX_ROTATION.cos();
        for (i, (ca, da)) in a.cyls.iter().zip(&a.dirs).enumerate() {
            for (j, (cb, db)) in cand.cyls.iter().zip(&cand.dirs).enumerate() {
                if da.0 * db.0 + da.1 * db.1 < min_cos {
                    continue;
                }
                let s = local_similarity(ca, cb, &self.sqrt_table);
                if s > 0.0 {
                    self.sims.push((s, i as u16, j as u16));
                }
            }
        }
        // One-to-one pairs, best first, from the top candidates only.
        let nr = na.min(nb).min(MAX_RELAX_PAIRS);
        let keep = (nr * 6).min(self.sims.len());
        if keep > 0 && keep < self.sims.len() {
            self.sims
                .select_nth_unstable_by(keep - 1, |x, y| y.0.total_cmp(&x.0));
            self.sims.truncate(keep);
        }
        self.sims.sort_unstable_by(|x, y| y.0.total_cmp(&x.0));
        self.used_a.clear();
        self.used_a.resize(na, false);
        self.used_b.clear();
        self.used_b.resize(nb, false);
        self.pairs.clear();
        for &(s, i, j) in &self.sims {
            let (i, j) = (usize::from(i), usize::from(j));
            let (Some(ua), Some(ub)) = (self.used_a.get(i).copied(), self.used_b.get(j).copied()) else {
                continue;
            };
            if ua || ub {
                continue;
            }
            if let Some(u) = self.used_a.get_mut(i) {
                *u = true;
            }
            if let Some(u) = self.used_b.get_mut(j) {
                *u = true;
            }
            self.pairs.push((i, j, s));
            if self.pairs.len() >= nr {
                break;
            }
        }
        let n = self.pairs.len();
        if n < 2 {
            return 0.0;
        }
        // Relaxation (LSS-R).
        self.rho.clear();
        self.rho.resize(n * n, 0.0);
        for x in 0..n {
            for y in (x + 1)..n {
                let (Some(&(i1, j1, _)), Some(&(i2, j2, _))) = (self.pairs.get(x), self.pairs.get(y)) else {
                    continue;
                };
                let (Some(a1), Some(a2), Some(b1), Some(b2)) =
                    (a.pts.get(i1), a.pts.get(i2), cand.pts.get(j1), cand.pts.get(j2))
                else {
                    continue;
                };
                let (ax, ay) = (a2.0 - a1.0, a2.1 - a1.1);
                let (bx, by) = (b2.0 - b1.0, b2.1 - b1.1);
                let d1 = ((ax * ax + ay * ay).sqrt() - (bx * bx + by * by).sqrt()).abs();
                let d2 = wrap_pi((a1.2 - a2.2) - (b1.2 - b2.2)).abs();
                let ra = wrap_pi(a1.2 - fast_atan2(ay, ax));
                let rb = wrap_pi(b1.2 - fast_atan2(by, bx));
                let d3 = wrap_pi(ra - rb).abs();
                let r = z(d1, 5.0, -8.0 / 5.0) * z(d2, PI / 12.0, -30.0) * z(d3, PI / 12.0, -30.0);
                if let Some(slot) = self.rho.get_mut(x * n + y) {
                    *slot = r;
                }
                if let Some(slot) = self.rho.get_mut(y * n + x) {
                    *slot = r;
                }
            }
        }
        self.lambda.clear();
        self.lambda.extend(self.pairs.iter().map(|p| p.2));
        let w_r = 0.5;
        for _ in 0..5 {
            self.next.clear();
            for x in 0..n {
                let row = self.rho.get(x * n..(x + 1) * n).unwrap_or(&[]);
                let support: f32 = row.iter().zip(&self.lambda).map(|(r, l)| r * l).sum();
                let own = self.lambda.get(x).copied().unwrap_or(0.0);
                self.next.push(w_r * own + (1.0 - w_r) * support / (n - 1) as f32);
            }
            std::mem::swap(&mut self.lambda, &mut self.next);
        }
        // Efficiency-weighted selection of n_P pairs.
        let min_np = 4.0;
        let max_np = 12.0;
        let np = (min_np + (z(na.min(nb) as f32, 20.0, 0.4) * (max_np - min_np)).round()) as usize;
        self.next.clear();
        for (x, p) in self.pairs.iter().enumerate() {
            let l = self.lambda.get(x).copied().unwrap_or(0.0);
            let eff = if p.2 > 0.0 { l / p.2 } else { 0.0 };
            self.next.push(eff);
        }
        let mut order = [0usize; MAX_RELAX_PAIRS];
        let m = n.min(MAX_RELAX_PAIRS);
        for (k, slot) in order.iter_mut().take(m).enumerate() {
            *slot = k;
        }
        let eff = &self.next;
        order.get_mut(..m).unwrap_or(&mut []).sort_unstable_by(|&x, &y| {
            eff.get(y)
                .copied()
                .unwrap_or(0.0)
                .total_cmp(&eff.get(x).copied().unwrap_or(0.0))
        });
        let take = np.min(m);
        let total: f32 = order
            .iter()
            .take(take)
            .map(|&k| self.lambda.get(k).copied().unwrap_or(0.0))
            .sum();
        (total / take.max(1) as f32).clamp(0.0, 1.0)
    }
}

/// Convenience: score of two minutiae sets (prepares both; use [`Matcher`] for many comparisons).
pub fn score(a: &[Minutia], b: &[Minutia]) -> f32 {
    Matcher::new(MccTemplate::new(a)).compare(&MccTemplate::new(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_atan2_is_accurate() {
        for k in 0..360 {
            let a = (k as f32).to_radians() - PI;
            let (y, x) = (a.sin() * 3.0, a.cos() * 3.0);
            assert!(
                (fast_atan2(y, x) - y.atan2(x)).abs() < 0.002
                    || (fast_atan2(y, x) - y.atan2(x)).abs() > TAU - 0.002
            );
        }
        assert!((wrap_pi(3.0 * PI) - PI).abs() < 1e-5);
    }
}
