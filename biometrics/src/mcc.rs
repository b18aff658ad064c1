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
//! Layout (shared with the 1:N gallery file, see [`crate::gallery`]): a template is three flat arrays of
//! `u64` words. Per cylinder: one packed point word (x, y in 1/4 px as `i16`, direction in 1/65536 turn),
//! one spatial validity word (bit `i * NS + j` = cell valid; the same for every direction slice) and
//! [`ND`] bit words, one per direction slice (bit `i * NS + j` of word `k`). Validity per spatial cell
//! makes the masked comparison three popcounts per word, and direction-major words make the unmasked one a
//! single XOR-popcount per word.
//!
//! Precompute once per template ([`MccTemplate::new`]); comparisons then do no allocation
//! ([`Matcher::compare`] reuses its buffers).
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    reason = "cell indices and counts are small; floats are clamped before conversion"
)]

use std::f32::consts::{PI, TAU};

use crate::minutiae::Minutia;

/// Cylinder radius (pixels at 500 ppi).
pub const RADIUS: f32 = 70.0;
/// Spatial cells per side.
pub const NS: usize = 8;
/// Direction slices (one `u64` word each).
pub const ND: usize = 6;
const SIGMA_S: f32 = 28.0 / 3.0;
const SIGMA_D: f32 = 2.0 * PI / 9.0;
const MU_PSI: f32 = 0.01;
const HULL_MARGIN: f32 = 50.0;
/// Minimum fraction of cells valid in both cylinders for a comparison to count.
const MIN_COMMON: f32 = 0.6;
/// Largest direction difference of two paired minutiae, in 1/65536 turn (60°).
const MAX_ROTATION_U16: u16 = 10923;
/// At most this many minutiae (highest quality) get a cylinder.
pub const MAX_MINUTIAE: usize = 64;
/// At most this many one-to-one pairs enter the relaxation (its cost is quadratic).
pub const MAX_RELAX_PAIRS: usize = 20;

/// Candidate cylinders the coarse comparison ([`Matcher::coarse_ref`]) compares: those nearest the centre
/// of the candidate's minutiae.
pub const COARSE_CYLINDERS: usize = 24;
/// One-to-one pairs the coarse score takes (greedily, best local similarity first).
pub const COARSE_PAIRS: usize = 16;
/// Largest distance, in pixels, between a probe minutia and its paired candidate minutia carried by the
/// rigid transform of another pair, for the two pairs to agree in the coarse score.
const COARSE_DIST: f32 = 14.0;
/// Largest difference, in radians (15°), between two pairs' rotations for them to agree in the coarse score.
const COARSE_ANGLE: f32 = 0.26;

/// Spatial cells that lie inside the cylinder's circle (bit `i * NS + j`).
pub const CIRCLE: u64 = circle_mask();

const fn circle_mask() -> u64 {
    let mut m = 0u64;
    let mut i = 0;
    while i < NS {
        let mut j = 0;
        while j < NS {
            // (i - 3.5)^2 + (j - 3.5)^2 <= 16 in cell units (ds = 2R/NS = R/4): doubled to stay integral.
            let di = 2 * i as i64 - (NS as i64 - 1);
            let dj = 2 * j as i64 - (NS as i64 - 1);
            if di * di + dj * dj <= (NS as i64) * (NS as i64) {
                m |= 1 << (i * NS + j);
            }
            j += 1;
        }
        i += 1;
    }
    m
}

/// Packs a point: x and y in 1/4 pixel (`i16`), direction in 1/65536 turn; the top 16 bits are zero.
pub fn pack_point(x: f32, y: f32, direction: f32) -> u64 {
    let q = |v: f32| (v * 4.0).round().clamp(-32768.0, 32767.0) as i16 as u16;
    let d = (direction.rem_euclid(TAU) / TAU * 65536.0).round() as u32 as u16;
    u64::from(q(x)) | (u64::from(q(y)) << 16) | (u64::from(d) << 32)
}

/// Unpacks [`pack_point`]: (x, y, direction in radians).
#[inline]
pub fn unpack_point(w: u64) -> (f32, f32, f32) {
    let x = f32::from(w as u16 as i16) / 4.0;
    let y = f32::from((w >> 16) as u16 as i16) / 4.0;
    (x, y, f32::from(point_dir(w)) / 65536.0 * TAU)
}

#[inline]
fn point_dir(w: u64) -> u16 {
    (w >> 32) as u16
}

/// A borrowed template in the flat layout: `pts.len() == valid.len() == n`, `bits.len() == n * ND`.
#[derive(Debug, Clone, Copy)]
pub struct TemplateRef<'a> {
    /// Packed points ([`pack_point`]).
    pub pts: &'a [u64],
    /// Spatial validity per cylinder.
    pub valid: &'a [u64],
    /// Cylinder bits, [`ND`] words per cylinder.
    pub bits: &'a [u64],
}

impl TemplateRef<'_> {
    /// Number of cylinders.
    pub fn len(&self) -> usize {
        self.pts.len().min(self.valid.len()).min(self.bits.len() / ND)
    }

    /// True when there is no cylinder.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A template prepared for matching.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MccTemplate {
    pts: Vec<u64>,
    valid: Vec<u64>,
    bits: Vec<u64>,
}

fn ang_diff_signed(a: f32, b: f32) -> f32 {
    let x = a - b;
    // rem_euclid without the fmod call for the usual |x| < 2π (where x % 2π is x itself): the same value.
    let d = if (0.0..TAU).contains(&x) {
        x
    } else if x < 0.0 && x > -TAU {
        x + TAU
    } else {
        x.rem_euclid(TAU)
    };
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
    let half = |iter: &mut dyn Iterator<Item = (f32, f32)>| {
        let mut out: Vec<(f32, f32)> = Vec::new();
        for pt in iter {
            while out.len() >= 2 {
                let (Some(&a), Some(&b)) = (out.get(out.len() - 2), out.last()) else {
                    break;
                };
                if cross(a, b, pt) <= 0.0 {
                    out.pop();
                } else {
                    break;
                }
            }
            out.push(pt);
        }
        out.pop();
        out
    };
    let mut lower = half(&mut p.iter().copied());
    let upper = half(&mut p.iter().rev().copied());
    lower.extend(upper);
    lower
}

/// Inside the hull (counter-clockwise), or within `margin` of it (the reference for [`HullEdges::near`]).
#[cfg(test)]
fn near_hull(hull: &[(f32, f32)], x: f32, y: f32, margin: f32) -> bool {
    if hull.len() < 3 {
        return true;
    }
    let edges = || {
        hull.iter()
            .zip(hull.iter().cycle().skip(1))
            .map(|(&a, &b)| (a, (b.0 - a.0, b.1 - a.1)))
    };
    if edges().all(|(a, (ex, ey))| ex * (y - a.1) - ey * (x - a.0) >= 0.0) {
        return true;
    }
    let m2 = margin * margin;
    edges().any(|(a, (ex, ey))| {
        let len2 = (ex * ex + ey * ey).max(1e-6);
        let t = (((x - a.0) * ex + (y - a.1) * ey) / len2).clamp(0.0, 1.0);
        let (dx, dy) = (x - a.0 - t * ex, y - a.1 - t * ey);
        dx * dx + dy * dy <= m2
    })
}

/// The hull's edges, precomputed for many [`HullEdges::near`] tests (the same arithmetic as [`near_hull`]).
struct HullEdges {
    /// Start point and direction of each edge.
    edges: Vec<(f32, f32, f32, f32)>,
}

impl HullEdges {
    fn new(hull: &[(f32, f32)]) -> Self {
        let edges = if hull.len() < 3 {
            Vec::new()
        } else {
            hull.iter()
                .zip(hull.iter().cycle().skip(1))
                .map(|(&a, &b)| (a.0, a.1, b.0 - a.0, b.1 - a.1))
                .collect()
        };
        Self { edges }
    }

    /// Inside the hull (counter-clockwise), or within `margin` of it.
    #[inline]
    fn near(&self, x: f32, y: f32, margin: f32) -> bool {
        if self.edges.is_empty() {
            return true;
        }
        if self
            .edges
            .iter()
            .all(|&(ax, ay, ex, ey)| ex * (y - ay) - ey * (x - ax) >= 0.0)
        {
            return true;
        }
        let m2 = margin * margin;
        self.edges.iter().any(|&(ax, ay, ex, ey)| {
            let len2 = (ex * ex + ey * ey).max(1e-6);
            let t = (((x - ax) * ex + (y - ay) * ey) / len2).clamp(0.0, 1.0);
            let (dx, dy) = (x - ax - t * ex, y - ay - t * ey);
            dx * dx + dy * dy <= m2
        })
    }
}

/// exp(-d2 / (2 sigma_s^2)) * norm for d2 = 0..=cut2 (1 px^2 steps), interpolated.
fn spatial_table() -> &'static [f32] {
    static T: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let gs_norm = 1.0 / (SIGMA_S * (TAU).sqrt());
        let cut2 = (3.0 * SIGMA_S) * (3.0 * SIGMA_S);
        (0..=(cut2.ceil() as usize + 1))
            .map(|d2| gs_norm * (-(d2 as f32) / (2.0 * SIGMA_S * SIGMA_S)).exp())
            .collect()
    })
}

impl MccTemplate {
    /// Builds the cylinders of a minutiae set (image coordinates, 500 ppi). At most [`MAX_MINUTIAE`]
    /// minutiae are used (highest quality first); minutiae with fewer than two neighbours get no cylinder.
    pub fn new(minutiae: &[Minutia]) -> Self {
        let mut ms: Vec<Minutia> = minutiae
            .iter()
            .filter(|m| m.x.is_finite() && m.y.is_finite() && m.direction.is_finite())
            .copied()
            .collect();
        if ms.len() > MAX_MINUTIAE {
            ms.sort_by_key(|m| std::cmp::Reverse(m.quality));
            ms.truncate(MAX_MINUTIAE);
        }
        let hull = HullEdges::new(&convex_hull(&ms.iter().map(|m| (m.x, m.y)).collect::<Vec<_>>()));
        let ds = 2.0 * RADIUS / NS as f32;
        let dd = TAU / ND as f32;
        let table = spatial_table();
        let gd_norm = dd / (SIGMA_D * TAU.sqrt());
        let reach = RADIUS + 3.0 * SIGMA_S;
        let reach2 = reach * reach;
        let cut2 = (3.0 * SIGMA_S) * (3.0 * SIGMA_S);
        let mut out = Self {
            pts: Vec::with_capacity(ms.len()),
            valid: Vec::with_capacity(ms.len()),
            bits: Vec::with_capacity(ms.len() * ND),
        };
        // Per neighbour: position and the direction contribution to each slice (computed once).
        let mut neigh: Vec<(f32, f32, [f32; ND])> = Vec::with_capacity(ms.len());
        for (mi, m) in ms.iter().enumerate() {
            let (s, c) = m.direction.sin_cos();
            neigh.clear();
            for (j, o) in ms.iter().enumerate() {
                let (dx, dy) = (o.x - m.x, o.y - m.y);
                if j == mi || dx * dx + dy * dy > reach2 {
                    continue;
                }
                let dtheta = ang_diff_signed(m.direction, o.direction);
                let mut gd = [0f32; ND];
                for (k, g) in gd.iter_mut().enumerate() {
                    let phi = -PI + (k as f32 + 0.5) * dd;
                    let diff = ang_diff_signed(phi, dtheta);
                    *g = gd_norm * (-(diff * diff) / (2.0 * SIGMA_D * SIGMA_D)).exp();
                }
                neigh.push((o.x, o.y, gd));
            }
            if neigh.len() < 2 {
                continue;
            }
            // Validity and centre of every cell inside the circle.
            let mut valid = 0u64;
            let mut centres = [(0f32, 0f32); NS * NS];
            for i in 0..NS {
                for j in 0..NS {
                    let cell = i * NS + j;
                    if CIRCLE & (1 << cell) == 0 {
                        continue;
                    }
                    let u = (i as f32 - (NS as f32 - 1.0) / 2.0) * ds;
                    let v = (j as f32 - (NS as f32 - 1.0) / 2.0) * ds;
                    let (px, py) = (m.x + c * u - s * v, m.y + s * u + c * v);
                    if !hull.near(px, py, HULL_MARGIN) {
                        continue;
                    }
                    valid |= 1 << cell;
                    if let Some(slot) = centres.get_mut(cell) {
                        *slot = (px, py);
                    }
                }
            }
            // Each neighbour contributes only to the cells within 3 sigma of it: a few of the 52. Its
            // position in the cylinder's frame bounds the cell rows and columns (1 px of slack); the
            // distance test and the sums are those of a loop over every cell, in the same order, so the
            // cylinder bits are the same.
            let mut acc = [[0f32; ND]; NS * NS];
            let half = (NS as f32 - 1.0) / 2.0;
            let span = 3.0 * SIGMA_S + 1.0;
            let cell_range = |w: f32| {
                let lo = ((w - span) / ds + half).ceil().max(0.0) as usize;
                let hi = ((w + span) / ds + half).floor().min(NS as f32 - 1.0);
                (lo, if hi < 0.0 { 0 } else { hi as usize + 1 })
            };
            for (ox, oy, gd) in &neigh {
                let (dx, dy) = (ox - m.x, oy - m.y);
                let (i0, i1) = cell_range(c * dx + s * dy);
                let (j0, j1) = cell_range(-s * dx + c * dy);
                for i in i0..i1 {
                    for j in j0..j1 {
                        let cell = i * NS + j;
                        if valid & (1 << cell) == 0 {
                            continue;
                        }
                        let (Some(&(px, py)), Some(a)) = (centres.get(cell), acc.get_mut(cell)) else {
                            continue;
                        };
                        let d2 = (ox - px) * (ox - px) + (oy - py) * (oy - py);
                        if d2 > cut2 {
                            continue;
                        }
                        let k = d2 as usize;
                        let frac = d2 - k as f32;
                        let (Some(&g0), Some(&g1)) = (table.get(k), table.get(k + 1)) else {
                            continue;
                        };
                        let gs = g0 + (g1 - g0) * frac;
                        for (a, g) in a.iter_mut().zip(gd) {
                            *a += gs * g;
                        }
                    }
                }
            }
            let mut words = [0u64; ND];
            for (cell, a) in acc.iter().enumerate() {
                if valid & (1 << cell) == 0 {
                    continue;
                }
                for (w, &x) in words.iter_mut().zip(a) {
                    if x >= MU_PSI {
                        *w |= 1 << cell;
                    }
                }
            }
            out.pts.push(pack_point(m.x, m.y, m.direction));
            out.valid.push(valid);
            out.bits.extend_from_slice(&words);
        }
        out
    }

    /// Rebuilds a template from its flat arrays (see [`TemplateRef`]); `None` when the lengths disagree,
    /// there are more than [`MAX_MINUTIAE`] cylinders, a validity word leaves the circle or a bit lies
    /// outside its cylinder's validity.
    pub fn from_parts(pts: Vec<u64>, valid: Vec<u64>, bits: Vec<u64>) -> Option<Self> {
        let t = Self { pts, valid, bits };
        t.view().check().then_some(t)
    }

    /// Number of minutiae with a cylinder.
    pub fn len(&self) -> usize {
        self.pts.len()
    }

    /// True when no minutia had enough neighbours for a cylinder (nothing to match).
    pub fn is_empty(&self) -> bool {
        self.pts.is_empty()
    }

    /// The borrowed flat view.
    pub fn view(&self) -> TemplateRef<'_> {
        TemplateRef {
            pts: &self.pts,
            valid: &self.valid,
            bits: &self.bits,
        }
    }
}

impl TemplateRef<'_> {
    /// Structural check of a template read from outside (see [`MccTemplate::from_parts`]).
    pub fn check(&self) -> bool {
        let n = self.pts.len();
        n <= MAX_MINUTIAE
            && self.valid.len() == n
            && self.bits.len() == n * ND
            && self.pts.iter().all(|p| p >> 48 == 0)
            && self
                .valid
                .iter()
                .zip(self.bits.chunks_exact(ND))
                .all(|(v, b)| v & !CIRCLE == 0 && b.iter().all(|w| w & !v == 0))
    }
}

#[inline]
fn cyl_bits(bits: &[u64], i: usize) -> [u64; ND] {
    let mut out = [0u64; ND];
    if let Some(src) = bits.get(i * ND..(i + 1) * ND) {
        out.copy_from_slice(src);
    }
    out
}

/// Length of the square-root table: every popcount of a cylinder.
const SQRT_LEN: usize = NS * NS * ND + 1;

/// Square roots of 0..[`SQRT_LEN`].
type SqrtTable = [f32; SQRT_LEN];

fn sqrt_table() -> &'static SqrtTable {
    static T: std::sync::OnceLock<SqrtTable> = std::sync::OnceLock::new();
    T.get_or_init(|| std::array::from_fn(|k| (k as f32).sqrt()))
}

#[inline(always)]
fn sqrt_of(t: &SqrtTable, n: u32) -> f32 {
    t.get((n as usize).min(SQRT_LEN - 1)).copied().unwrap_or(0.0)
}

/// A cylinder prepared for the comparison loop.
#[derive(Debug, Clone, Copy)]
struct Cyl {
    bits: [u64; ND],
    /// Per spatial cell, how many direction slices have the bit set, as three bit planes (1, 2, 4).
    planes: [u64; 3],
    valid: u64,
    vcount: u32,
    ones: u32,
    norm: f32,
    idx: u32,
}

impl Cyl {
    fn new(bits: [u64; ND], valid: u64, idx: u32) -> Self {
        let mut planes = [0u64; 3];
        for w in bits {
            let c0 = planes[0] & w;
            planes[0] ^= w;
            let c1 = planes[1] & c0;
            planes[1] ^= c0;
            planes[2] ^= c1;
        }
        let ones = bits.iter().map(|w| w.count_ones()).sum();
        Self {
            bits,
            planes,
            valid,
            vcount: valid.count_ones(),
            ones,
            norm: sqrt_of(sqrt_table(), ones),
            idx,
        }
    }

    /// Set bits in the cells of `mask`.
    #[inline(always)]
    fn ones_in(&self, mask: u64) -> u32 {
        (self.planes[0] & mask).count_ones()
            + 2 * (self.planes[1] & mask).count_ones()
            + 4 * (self.planes[2] & mask).count_ones()
    }
}

/// Local similarity of two prepared cylinders (0 when too few cells are valid in both) (the same value, fewer popcounts: the masked counts
/// come from the bit planes and |x ^ y| = |x| + |y| - 2 |x & y|).
#[inline(always)]
fn cyl_similarity(a: &Cyl, b: &Cyl, sq: &SqrtTable) -> f32 {
    if a.valid == CIRCLE && b.valid == CIRCLE {
        let both: u32 = a
            .bits
            .iter()
            .zip(&b.bits)
            .map(|(p, q)| (p & q).count_ones())
            .sum();
        let x = (a.ones + b.ones).saturating_sub(2 * both);
        let den = a.norm + b.norm;
        return if den > 0.0 {
            1.0 - sqrt_of(sq, x) / den
        } else {
            0.0
        };
    }
    let v = a.valid & b.valid;
    if (v.count_ones() as f32) < MIN_COMMON * (a.vcount.max(b.vcount) as f32) {
        return 0.0;
    }
    let both: u32 = a
        .bits
        .iter()
        .zip(&b.bits)
        .map(|(p, q)| (p & q & v).count_ones())
        .sum();
    let (pa, pb) = (a.ones_in(b.valid), b.ones_in(a.valid));
    let px = (pa + pb).saturating_sub(2 * both);
    let den = sqrt_of(sq, pa) + sqrt_of(sq, pb);
    if den > 0.0 {
        1.0 - sqrt_of(sq, px) / den
    } else {
        0.0
    }
}

/// Indices of the `k` (1 or more) cylinders of `cand` (its first `nb`) nearest the mean of their points,
/// into `out`; returns how many (all of them when there are no more).
fn central_cylinders(cand: TemplateRef<'_>, nb: usize, k: usize, out: &mut [u8; MAX_MINUTIAE]) -> usize {
    let mut pts = [(0f32, 0f32); MAX_MINUTIAE];
    let mut n = 0usize;
    let (mut sx, mut sy) = (0f32, 0f32);
    for (slot, &p) in pts.iter_mut().zip(cand.pts.iter().take(nb)) {
        let x = f32::from(p as u16 as i16);
        let y = f32::from((p >> 16) as u16 as i16);
        *slot = (x, y);
        sx += x;
        sy += y;
        n += 1;
    }
    for (k, o) in out.iter_mut().enumerate().take(n) {
        *o = k as u8;
    }
    if n <= k {
        return n;
    }
    let (cx, cy) = (sx / n as f32, sy / n as f32);
    let mut d2 = [(0f32, 0u8); MAX_MINUTIAE];
    for (k, (slot, &(x, y))) in d2.iter_mut().zip(&pts).enumerate().take(n) {
        *slot = ((x - cx) * (x - cx) + (y - cy) * (y - cy), k as u8);
    }
    let d = d2.get_mut(..n).unwrap_or(&mut []);
    d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (o, &(_, j)) in out.iter_mut().zip(d.iter()).take(k) {
        *o = j;
    }
    k
}

/// Keeps the `keep` largest values of `v`, sorted in descending order (the values are distinct packed
/// similarities). A 256-bin histogram of the top byte finds the cut, so only the survivors are sorted.
fn top_descending(v: &mut Vec<u32>, keep: usize) {
    if keep == 0 {
        v.clear();
        return;
    }
    if keep < v.len() {
        let mut hist = [0u32; 256];
        for &x in v.iter() {
            if let Some(h) = hist.get_mut((x >> 24) as usize) {
                *h += 1;
            }
        }
        let mut total = 0usize;
        let mut cut = 0u32;
        for bin in (0..256u32).rev() {
            total += hist.get(bin as usize).copied().unwrap_or(0) as usize;
            if total >= keep {
                cut = bin << 24;
                break;
            }
        }
        v.retain(|&x| x >= cut);
    }
    v.sort_unstable_by(|x, y| y.cmp(x));
    v.truncate(keep);
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
pub(crate) fn fast_atan2(y: f32, x: f32) -> f32 {
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

/// Steps of the sigmoid tables of the relaxation.
const Z_STEPS: usize = 1024;
/// Largest distance difference in the distance table (px); beyond it the sigmoid is below 1e-38.
const Z_DIST_MAX: f32 = 64.0;
/// Distance difference (px) above which the relaxation's distance sigmoid is below 6e-7 (treated as 0).
const Z_CUT_DIST: f32 = 14.0;
/// Angle difference (rad) above which the angle sigmoid is below 5e-7 (treated as 0).
const Z_CUT_ANGLE: f32 = 0.75;

/// The relaxation's three sigmoids, tabulated (linear interpolation, error < 2e-4): distance
/// difference over [0, [`Z_DIST_MAX`]] px and angle difference over [0, π].
struct ZTables {
    dist: Vec<f32>,
    angle: Vec<f32>,
}

fn z_tables() -> &'static ZTables {
    static T: std::sync::OnceLock<ZTables> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let grid = |max: f32, f: &dyn Fn(f32) -> f32| -> Vec<f32> {
            (0..=Z_STEPS + 1)
                .map(|k| f(k as f32 * max / Z_STEPS as f32))
                .collect()
        };
        ZTables {
            dist: grid(Z_DIST_MAX, &|v| z(v, 5.0, -8.0 / 5.0)),
            angle: grid(PI, &|v| z(v, PI / 12.0, -30.0)),
        }
    })
}

/// Linear interpolation in a table of `Z_STEPS + 2` samples over [0, max]; 0 beyond.
#[inline]
fn z_lookup(table: &[f32], max: f32, v: f32) -> f32 {
    let t = (v.max(0.0) * (Z_STEPS as f32 / max)).min(Z_STEPS as f32 + 0.5);
    let k = t as usize;
    let frac = t - k as f32;
    match (table.get(k), table.get(k + 1)) {
        (Some(&a), Some(&b)) => a + (b - a) * frac,
        _ => 0.0,
    }
}

/// A probe prepared for many comparisons; reuses its buffers. Clone it per thread.
///
/// The probe's cylinders are kept sorted by minutia direction and stored twice in a row, so that the
/// probe cylinders within the pairing bound (`MAX_ROTATION_U16`) of a candidate cylinder form one
/// contiguous run, found by binary search: the comparison loop has no per-pair direction test.
#[derive(Debug, Clone)]
pub struct Matcher {
    probe: MccTemplate,
    probe_pts: Vec<(f32, f32, f32)>,
    /// Sorted-by-direction probe cylinders, twice (`2 n` entries): bits, validity, norm, direction
    /// (+65536 in the second copy), original index.
    ext: Vec<Cyl>,
    ext_dir: Vec<u32>,
    /// Local similarities of one comparison (fixed size: every pair fits).
    buf: Vec<u32>,
    sims: Vec<u32>,
    used_a: Vec<bool>,
    used_b: Vec<bool>,
    pairs: Vec<(usize, usize, f32)>,
    lambda: Vec<f32>,
    next: Vec<f32>,
    rho: Vec<f32>,
}

impl Matcher {
    /// Prepares a probe.
    pub fn new(probe: MccTemplate) -> Self {
        let n = probe.len();
        let probe_pts = probe.pts.iter().map(|&p| unpack_point(p)).collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (probe.pts.get(i).map_or(0, |&p| point_dir(p)), i));
        let mut m = Self {
            probe_pts,
            ext: Vec::with_capacity(2 * n),
            ext_dir: Vec::with_capacity(2 * n),
            buf: vec![0; MAX_MINUTIAE * MAX_MINUTIAE],
            sims: Vec::with_capacity(MAX_MINUTIAE * MAX_MINUTIAE),
            used_a: Vec::with_capacity(MAX_MINUTIAE),
            used_b: Vec::with_capacity(MAX_MINUTIAE),
            pairs: Vec::with_capacity(MAX_RELAX_PAIRS),
            lambda: Vec::with_capacity(MAX_RELAX_PAIRS),
            next: Vec::with_capacity(MAX_RELAX_PAIRS),
            rho: Vec::with_capacity(MAX_RELAX_PAIRS * MAX_RELAX_PAIRS),
            probe,
        };
        for copy in 0..2u32 {
            for &i in &order {
                let b = cyl_bits(&m.probe.bits, i);
                let v = m.probe.valid.get(i).copied().unwrap_or(0);
                m.ext.push(Cyl::new(b, v, i as u32));
                m.ext_dir
                    .push(u32::from(m.probe.pts.get(i).map_or(0, |&p| point_dir(p))) + copy * 65536);
            }
        }
        m
    }

    /// The prepared probe.
    pub fn probe(&self) -> &MccTemplate {
        &self.probe
    }

    /// Similarity score in [0, 1] of the probe against a candidate.
    pub fn compare(&mut self, cand: &MccTemplate) -> f32 {
        self.compare_ref(cand.view())
    }

    /// [`Matcher::compare`] on a borrowed template (for example a gallery record).
    pub fn compare_ref(&mut self, cand: TemplateRef<'_>) -> f32 {
        let na = self.probe.len();
        let nb = cand.len().min(MAX_MINUTIAE);
        if na < 2 || nb < 2 {
            return 0.0;
        }
        self.local_sims(cand, 0..nb);
        self.pair_and_relax(na, nb, cand)
    }

    /// A coarse similarity in [0, 1] for re-ranking many candidates before the full comparison (the 1:N
    /// index's cascade, [`crate::gallery`]): only the candidate's [`COARSE_CYLINDERS`] cylinders nearest
    /// the centre of its minutiae are compared with the probe's (the same local similarities and pairing
    /// bound as [`Matcher::compare_ref`]), and the best [`COARSE_PAIRS`] one-to-one pairs are taken
    /// greedily. Instead of the full matcher's relaxation, a one-step geometric check: each pair proposes
    /// the rigid transform (rotation from the two directions, then translation) that maps its candidate
    /// minutia onto its probe minutia, the pairs that this transform also maps within 14 px and 15° agree
    /// with it, and the score is the largest sum of agreeing pairs' similarities, divided by
    /// [`COARSE_PAIRS`] (missing pairs count 0). Impostors' best pairs are scattered; a poor mate's few
    /// good pairs agree. About 0.46x a full comparison's instructions (`docs/biometrics-evaluation.md`).
    pub fn coarse_ref(&mut self, cand: TemplateRef<'_>) -> f32 {
        self.coarse_with(cand, COARSE_CYLINDERS, COARSE_PAIRS)
    }

    /// [`Matcher::coarse_ref`] with other parameters (for tuning): `cylinders` central candidate cylinders
    /// (at most [`MAX_MINUTIAE`]), the best `pairs` greedy pairs (at most [`MAX_RELAX_PAIRS`]) for the geometric check.
    #[doc(hidden)]
    pub fn coarse_with(&mut self, cand: TemplateRef<'_>, cylinders: usize, pairs: usize) -> f32 {
        let pairs = pairs.clamp(1, MAX_RELAX_PAIRS);
        let na = self.probe.len();
        let nb = cand.len().min(MAX_MINUTIAE);
        if na < 2 || nb < 2 {
            return 0.0;
        }
        let mut sel = [0u8; MAX_MINUTIAE];
        let k = central_cylinders(cand, nb, cylinders.clamp(1, MAX_MINUTIAE), &mut sel);
        self.local_sims(cand, sel.iter().take(k).map(|&j| usize::from(j)));
        self.pair(na, nb, pairs);
        let cand_pts = self.paired_cand_points(cand);
        let best = largest_agreeing_sum(&self.pairs, &self.probe_pts, &cand_pts, COARSE_DIST, COARSE_ANGLE);
        (best / pairs as f32).clamp(0.0, 1.0)
    }

    /// Fills `self.sims` with the packed local similarities (`similarity << 16 | probe index << 8 |
    /// candidate index`, non-zero ones only) of the candidate cylinders `js` against the probe cylinders
    /// within the pairing bound.
    #[inline(always)]
    fn local_sims(&mut self, cand: TemplateRef<'_>, js: impl Iterator<Item = usize>) {
        let na = self.probe.len();
        let half = self.ext_dir.get(..na).unwrap_or(&[]);
        let m = u32::from(MAX_ROTATION_U16);
        let mut count = 0usize;
        let sq = sqrt_table();
        for j in js {
            let (Some(&pb), Some(&vb), Some(bb)) = (
                cand.pts.get(j),
                cand.valid.get(j),
                cand.bits.get(j * ND..(j + 1) * ND),
            ) else {
                continue;
            };
            let mut b = [0u64; ND];
            b.copy_from_slice(bb);
            let c = Cyl::new(b, vb, j as u32);
            // Probe cylinders whose direction is within +-m of this one: one run of the doubled array.
            let lo_val = (u32::from(point_dir(pb)) + 65536 - m) % 65536;
            let hi_val = lo_val + 2 * m;
            let lo = half.partition_point(|&d| d < lo_val);
            let hi = self.ext_dir.partition_point(|&d| d <= hi_val);
            let Some(run) = self.ext.get(lo..hi) else {
                continue;
            };
            for a in run {
                let s = cyl_similarity(a, &c, sq);
                let q = (s.clamp(0.0, 1.0) * 65535.0) as u32;
                if let Some(slot) = self.buf.get_mut(count) {
                    *slot = (q << 16) | (a.idx << 8) | c.idx;
                }
                count += usize::from(s > 0.0);
            }
        }
        self.sims.clear();
        self.sims.extend_from_slice(self.buf.get(..count).unwrap_or(&[]));
    }

    /// Up to `nr` one-to-one pairs into `self.pairs`, best local similarity first, taken greedily from the
    /// top `6 nr` similarities of `self.sims`.
    fn pair(&mut self, na: usize, nb: usize, nr: usize) {
        let keep = (nr * 6).min(self.sims.len());
        top_descending(&mut self.sims, keep);
        self.used_a.clear();
        self.used_a.resize(na, false);
        self.used_b.clear();
        self.used_b.resize(nb, false);
        self.pairs.clear();
        for &packed in &self.sims {
            let (i, j) = (((packed >> 8) & 0xFF) as usize, (packed & 0xFF) as usize);
            let s = (packed >> 16) as f32 / 65535.0;
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
    }

    /// The candidate minutiae of `self.pairs` as `(x, y, direction)`, in pair order.
    fn paired_cand_points(&self, cand: TemplateRef<'_>) -> [(f32, f32, f32); MAX_RELAX_PAIRS] {
        let mut pts = [(0f32, 0f32, 0f32); MAX_RELAX_PAIRS];
        for (slot, &(_, j, _)) in pts.iter_mut().zip(&self.pairs) {
            *slot = unpack_point(cand.pts.get(j).copied().unwrap_or(0));
        }
        pts
    }

    /// Global score from the local similarities in `self.sims`: one-to-one pairs, relaxation, selection.
    fn pair_and_relax(&mut self, na: usize, nb: usize, cand: TemplateRef<'_>) -> f32 {
        // One-to-one pairs, best first, from the top candidates only.
        self.pair(na, nb, na.min(nb).min(MAX_RELAX_PAIRS));
        let n = self.pairs.len();
        if n < 2 {
            return 0.0;
        }
        // Relaxation (LSS-R).
        let cand_pts = self.paired_cand_points(cand);
        self.rho.clear();
        self.rho.resize(n * n, 0.0);
        let zt = z_tables();
        for x in 0..n {
            for y in (x + 1)..n {
                let (Some(&(i1, _, _)), Some(&(i2, _, _))) = (self.pairs.get(x), self.pairs.get(y)) else {
                    continue;
                };
                let (Some(a1), Some(a2), Some(b1), Some(b2)) = (
                    self.probe_pts.get(i1),
                    self.probe_pts.get(i2),
                    cand_pts.get(x),
                    cand_pts.get(y),
                ) else {
                    continue;
                };
                let (ax, ay) = (a2.0 - a1.0, a2.1 - a1.1);
                let (bx, by) = (b2.0 - b1.0, b2.1 - b1.1);
                let d1 = ((ax * ax + ay * ay).sqrt() - (bx * bx + by * by).sqrt()).abs();
                let d2 = wrap_pi((a1.2 - a2.2) - (b1.2 - b2.2)).abs();
                // Inconsistent pairs (most of an impostor's): a factor below 6e-7 makes rho 0 (as
                // initialised), so the two atan2 and the lookups are skipped.
                if d1 > Z_CUT_DIST || d2 > Z_CUT_ANGLE {
                    continue;
                }
                let ra = wrap_pi(a1.2 - fast_atan2(ay, ax));
                let rb = wrap_pi(b1.2 - fast_atan2(by, bx));
                let d3 = wrap_pi(ra - rb).abs();
                let r = z_lookup(&zt.dist, Z_DIST_MAX, d1)
                    * z_lookup(&zt.angle, PI, d2)
                    * z_lookup(&zt.angle, PI, d3);
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

/// The coarse score's geometric check: pair `x` (`pairs[x]` = probe index, candidate index, local
/// similarity; its probe minutia `probe[i]` and its candidate minutia `cand[x]`, points as `(x, y,
/// direction)`) proposes the rigid transform that rotates the candidate minutia's direction onto the probe
/// minutia's and then moves it onto the probe minutia; the pairs it maps within `dist` px and `angle` rad
/// agree with it (pair `x` always does). Returns the largest sum of agreeing pairs' similarities over the
/// proposals (0 for no pairs).
fn largest_agreeing_sum(
    pairs: &[(usize, usize, f32)],
    probe: &[(f32, f32, f32)],
    cand: &[(f32, f32, f32)],
    dist: f32,
    angle: f32,
) -> f32 {
    let point = |i: usize| probe.get(i).copied().unwrap_or_default();
    let mut best = 0f32;
    for (&(i, _, _), &pb) in pairs.iter().zip(cand) {
        let pa = point(i);
        let rot = wrap_pi(pa.2 - pb.2);
        let (sin, cos) = rot.sin_cos();
        let tx = pa.0 - (cos * pb.0 - sin * pb.1);
        let ty = pa.1 - (sin * pb.0 + cos * pb.1);
        let mut sum = 0f32;
        for (&(k, _, w), &qb) in pairs.iter().zip(cand) {
            let qa = point(k);
            if wrap_pi(qa.2 - qb.2 - rot).abs() > angle {
                continue;
            }
            let dx = cos * qb.0 - sin * qb.1 + tx - qa.0;
            let dy = sin * qb.0 + cos * qb.1 + ty - qa.1;
            if dx * dx + dy * dy <= dist * dist {
                sum += w;
            }
        }
        best = best.max(sum);
    }
    best
}

/// Convenience: score of two minutiae sets (prepares both; use [`Matcher`] for many comparisons).
pub fn score(a: &[Minutia], b: &[Minutia]) -> f32 {
    Matcher::new(MccTemplate::new(a)).compare(&MccTemplate::new(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Local similarity of two cylinders (0 when too few cells are valid in both).
    #[inline]
    fn local_similarity(a: &[u64; ND], va: u64, na: f32, b: &[u64; ND], vb: u64, nb: f32, sq: &[f32]) -> f32 {
        let sqrt = |n: u32| sq.get(n as usize).copied().unwrap_or(0.0);
        if va == CIRCLE && vb == CIRCLE {
            let x: u32 = a.iter().zip(b).map(|(p, q)| (p ^ q).count_ones()).sum();
            let den = na + nb;
            return if den > 0.0 { 1.0 - sqrt(x) / den } else { 0.0 };
        }
        let v = va & vb;
        let common = v.count_ones();
        if (common as f32) < MIN_COMMON * (va.count_ones().max(vb.count_ones()) as f32) {
            return 0.0;
        }
        let (mut pa, mut pb, mut px) = (0u32, 0u32, 0u32);
        for (p, q) in a.iter().zip(b) {
            let (ca, cb) = (p & vb, q & va);
            pa += ca.count_ones();
            pb += cb.count_ones();
            px += (ca ^ cb).count_ones();
        }
        let den = sqrt(pa) + sqrt(pb);
        if den > 0.0 { 1.0 - sqrt(px) / den } else { 0.0 }
    }

    /// The comparison loop before the direction-sorted probe (every pair tested against the bound).
    fn reference_score(probe: &MccTemplate, cand: &MccTemplate) -> f32 {
        let mut m = Matcher::new(probe.clone());
        let cand = cand.view();
        let (na, nb) = (probe.len(), cand.len());
        if na < 2 || nb < 2 {
            return 0.0;
        }
        let sq: Vec<f32> = sqrt_table().to_vec();
        let norm = |b: &[u64; ND]| sq[b.iter().map(|w| w.count_ones()).sum::<u32>() as usize];
        m.sims.clear();
        for i in 0..na {
            let a = cyl_bits(&probe.bits, i);
            let da = point_dir(probe.pts[i]);
            for j in 0..nb {
                if (da.wrapping_sub(point_dir(cand.pts[j])) as i16).unsigned_abs() > MAX_ROTATION_U16 {
                    continue;
                }
                let b = cyl_bits(cand.bits, j);
                let s = local_similarity(&a, probe.valid[i], norm(&a), &b, cand.valid[j], norm(&b), &sq);
                if s > 0.0 {
                    let q = (s.min(1.0) * 65535.0) as u32;
                    m.sims.push((q << 16) | ((i as u32) << 8) | j as u32);
                }
            }
        }
        m.pair_and_relax(na, nb, cand)
    }

    fn random_minutiae(seed: u64, n: usize) -> Vec<Minutia> {
        let mut r = crate::rng::Rng::new(seed);
        (0..n)
            .map(|_| Minutia {
                x: 40.0 + r.f32() * 300.0,
                y: 40.0 + r.f32() * 380.0,
                direction: r.f32() * TAU,
                kind: crate::minutiae::MinutiaKind::Ending,
                quality: 50,
            })
            .collect()
    }

    /// Cylinder construction before the per-neighbour cell ranges: every cell against every neighbour.
    fn reference_template(minutiae: &[Minutia]) -> MccTemplate {
        let mut ms: Vec<Minutia> = minutiae
            .iter()
            .filter(|m| m.x.is_finite() && m.y.is_finite() && m.direction.is_finite())
            .copied()
            .collect();
        if ms.len() > MAX_MINUTIAE {
            ms.sort_by_key(|m| std::cmp::Reverse(m.quality));
            ms.truncate(MAX_MINUTIAE);
        }
        let hull = convex_hull(&ms.iter().map(|m| (m.x, m.y)).collect::<Vec<_>>());
        let ds = 2.0 * RADIUS / NS as f32;
        let dd = TAU / ND as f32;
        let table = spatial_table();
        let gd_norm = dd / (SIGMA_D * TAU.sqrt());
        let reach = RADIUS + 3.0 * SIGMA_S;
        let cut2 = (3.0 * SIGMA_S) * (3.0 * SIGMA_S);
        let mut out = MccTemplate {
            pts: Vec::with_capacity(ms.len()),
            valid: Vec::with_capacity(ms.len()),
            bits: Vec::with_capacity(ms.len() * ND),
        };
        // Per neighbour: position and the direction contribution to each slice (computed once).
        let mut neigh: Vec<(f32, f32, [f32; ND])> = Vec::with_capacity(ms.len());
        for (mi, m) in ms.iter().enumerate() {
            let (s, c) = m.direction.sin_cos();
            neigh.clear();
            for (j, o) in ms.iter().enumerate() {
                if j == mi || (o.x - m.x).hypot(o.y - m.y) > reach {
                    continue;
                }
                let dtheta = ang_diff_signed(m.direction, o.direction);
                let mut gd = [0f32; ND];
                for (k, g) in gd.iter_mut().enumerate() {
                    let phi = -PI + (k as f32 + 0.5) * dd;
                    let diff = ang_diff_signed(phi, dtheta);
                    *g = gd_norm * (-(diff * diff) / (2.0 * SIGMA_D * SIGMA_D)).exp();
                }
                neigh.push((o.x, o.y, gd));
            }
            if neigh.len() < 2 {
                continue;
            }
            let mut words = [0u64; ND];
            let mut valid = 0u64;
            for i in 0..NS {
                for j in 0..NS {
                    let cell = i * NS + j;
                    if CIRCLE & (1 << cell) == 0 {
                        continue;
                    }
                    let u = (i as f32 - (NS as f32 - 1.0) / 2.0) * ds;
                    let v = (j as f32 - (NS as f32 - 1.0) / 2.0) * ds;
                    let (px, py) = (m.x + c * u - s * v, m.y + s * u + c * v);
                    if !near_hull(&hull, px, py, HULL_MARGIN) {
                        continue;
                    }
                    valid |= 1 << cell;
                    let mut acc = [0f32; ND];
                    for (ox, oy, gd) in &neigh {
                        let d2 = (ox - px) * (ox - px) + (oy - py) * (oy - py);
                        if d2 > cut2 {
                            continue;
                        }
                        let k = d2 as usize;
                        let frac = d2 - k as f32;
                        let (Some(&g0), Some(&g1)) = (table.get(k), table.get(k + 1)) else {
                            continue;
                        };
                        let gs = g0 + (g1 - g0) * frac;
                        for (a, g) in acc.iter_mut().zip(gd) {
                            *a += gs * g;
                        }
                    }
                    for (w, a) in words.iter_mut().zip(acc) {
                        if a >= MU_PSI {
                            *w |= 1 << cell;
                        }
                    }
                }
            }
            out.pts.push(pack_point(m.x, m.y, m.direction));
            out.valid.push(valid);
            out.bits.extend_from_slice(&words);
        }
        out
    }

    #[test]
    fn cylinders_equal_the_every_cell_construction() {
        for seed in 0..60u64 {
            let ms = random_minutiae(seed + 500, 5 + (seed as usize * 11) % 90);
            assert_eq!(MccTemplate::new(&ms), reference_template(&ms), "seed {seed}");
        }
        let p = crate::synth::SyntheticPerson::new(77);
        for f in crate::iso19794_4::FingerPosition::TEN {
            let ms = p.finger_minutiae(f, 0);
            assert_eq!(MccTemplate::new(&ms), reference_template(&ms), "{f:?}");
        }
    }

    #[test]
    fn sorted_probe_scores_equal_the_reference_loop() {
        let mut checked = 0;
        for seed in 0..40u64 {
            let a = random_minutiae(seed, 20 + (seed as usize * 7) % 50);
            // A distorted copy (genuine-like) and an unrelated set (impostor-like).
            let mut b: Vec<Minutia> = a
                .iter()
                .map(|m| Minutia {
                    x: m.x * 0.98 + 6.0,
                    y: m.y * 1.01 - 4.0,
                    direction: m.direction + 0.05,
                    ..*m
                })
                .collect();
            b.truncate(b.len() * 3 / 4);
            let c = random_minutiae(seed + 1000, 30 + (seed as usize * 5) % 40);
            let ta = MccTemplate::new(&a);
            let mut m = Matcher::new(ta.clone());
            for other in [MccTemplate::new(&b), MccTemplate::new(&c), ta.clone()] {
                let fast = m.compare(&other);
                let slow = reference_score(&ta, &other);
                assert!((fast - slow).abs() < 1e-6, "seed {seed}: {fast} vs {slow}");
                checked += 1;
            }
        }
        assert_eq!(checked, 120);
    }

    #[test]
    fn coarse_score_ranks_a_noisy_impression_above_impostors() {
        use crate::iso19794_4::FingerPosition;
        use crate::synth::{Profile, SyntheticPerson};
        let f = FingerPosition::RightIndex;
        let gallery: Vec<MccTemplate> = (0..40u64)
            .map(|i| {
                let p = SyntheticPerson::with_profile(3_000 + i, Profile::Standard);
                MccTemplate::new(&p.finger_minutiae(f, 0))
            })
            .collect();
        let mut first = 0;
        for (i, own) in gallery.iter().enumerate() {
            let p = SyntheticPerson::with_profile(3_000 + i as u64, Profile::Standard);
            let mut m = Matcher::new(MccTemplate::new(&p.finger_minutiae(f, 1)));
            let mate = m.coarse_ref(own.view());
            let best_impostor = gallery
                .iter()
                .enumerate()
                .filter(|&(k, _)| k != i)
                .map(|(_, t)| m.coarse_ref(t.view()))
                .fold(0f32, f32::max);
            first += usize::from(mate > best_impostor);
            assert!((0.0..=1.0).contains(&mate) && (0.0..=1.0).contains(&best_impostor));
        }
        assert!(first >= 38, "mate above every impostor in {first} of 40");
        // A template against itself: every central cylinder pairs with itself.
        let mut m = Matcher::new(gallery[0].clone());
        assert!(m.coarse_ref(gallery[0].view()) > 0.99);
        // Too few cylinders: 0, as the full comparison.
        assert_eq!(m.coarse_ref(MccTemplate::default().view()), 0.0);
    }

    #[test]
    fn agreeing_pairs_follow_one_rigid_transform() {
        // Ten pairs whose candidate points are the probe's under one rotation (near the wrap-around) and
        // translation, then three of them moved 40 px: the seven that still follow it agree.
        let rot = 3.0f32;
        let (sin, cos) = rot.sin_cos();
        let a: Vec<(f32, f32, f32)> = (0..10)
            .map(|k| (50.0 + 23.0 * k as f32, 300.0 - 17.0 * k as f32, 0.6 * k as f32))
            .collect();
        // b = R^-1 (a - t) with t = (30, -12), directions b = a - rot.
        let mut b: Vec<(f32, f32, f32)> = a
            .iter()
            .map(|&(x, y, d)| {
                let (x, y) = (x - 30.0, y + 12.0);
                (cos * x + sin * y, -sin * x + cos * y, wrap_pi(d - rot))
            })
            .collect();
        let s: Vec<f32> = (0..10).map(|k| 0.5 + 0.05 * k as f32).collect();
        let pairs: Vec<(usize, usize, f32)> = s.iter().enumerate().map(|(k, &w)| (k, k, w)).collect();
        let all: f32 = s.iter().sum();
        assert!((largest_agreeing_sum(&pairs, &a, &b, 14.0, 0.26) - all).abs() < 1e-4);
        for k in [1, 4, 8] {
            b[k].0 += 40.0;
        }
        let seven: f32 = all - s[1] - s[4] - s[8];
        assert!((largest_agreeing_sum(&pairs, &a, &b, 14.0, 0.26) - seven).abs() < 1e-4);
        // A direction off by more than the angle bound breaks the agreement too.
        b[0].2 += 0.4;
        assert!((largest_agreeing_sum(&pairs, &a, &b, 14.0, 0.26) - (seven - s[0])).abs() < 1e-4);
        assert_eq!(largest_agreeing_sum(&[], &a, &b, 14.0, 0.26), 0.0);
    }

    #[test]
    fn coarse_score_holds_under_rotation_and_translation() {
        // A rigidly moved copy (20°, 25 px) pairs consistently: its coarse score stays close to the
        // template's own; an unrelated set's best pairs do not agree.
        let a = random_minutiae(77, 45);
        let rot = 0.35f32;
        let (sin, cos) = rot.sin_cos();
        let moved: Vec<Minutia> = a
            .iter()
            .map(|m| Minutia {
                x: cos * m.x - sin * m.y + 90.0,
                y: sin * m.x + cos * m.y - 25.0,
                direction: (m.direction + rot).rem_euclid(TAU),
                ..*m
            })
            .collect();
        let mut m = Matcher::new(MccTemplate::new(&moved));
        let own = m.coarse_ref(MccTemplate::new(&a).view());
        let other = m.coarse_ref(MccTemplate::new(&random_minutiae(78, 45)).view());
        assert!(own > 0.6, "moved copy {own}");
        assert!(other < own / 3.0, "unrelated {other} against moved copy {own}");
    }

    #[test]
    fn top_descending_keeps_the_largest() {
        let mut r = crate::rng::Rng::new(5);
        for len in [0usize, 1, 5, 300, 2000] {
            let mut v: Vec<u32> = (0..len)
                .map(|k| (r.next_u64() as u32 & 0xFFFF_0000) | k as u32)
                .collect();
            for keep in [0usize, 1, 7, 120, len] {
                let mut expect = v.clone();
                expect.sort_unstable_by(|x, y| y.cmp(x));
                expect.truncate(keep.min(len));
                let mut got = v.clone();
                top_descending(&mut got, keep.min(len));
                assert_eq!(got, expect, "len {len} keep {keep}");
            }
            v.clear();
        }
    }

    #[test]
    fn sigmoid_tables_match_the_sigmoids() {
        assert!(z(Z_CUT_DIST, 5.0, -8.0 / 5.0) < 6e-7);
        assert!(z(Z_CUT_ANGLE, PI / 12.0, -30.0) < 6e-7);
        let zt = z_tables();
        for k in 0..20_000 {
            let d = k as f32 * 0.0037;
            let dist = if d >= Z_DIST_MAX {
                0.0
            } else {
                z_lookup(&zt.dist, Z_DIST_MAX, d)
            };
            assert!((dist - z(d, 5.0, -8.0 / 5.0)).abs() < 2e-4, "distance {d}");
            if d <= PI {
                assert!(
                    (z_lookup(&zt.angle, PI, d) - z(d, PI / 12.0, -30.0)).abs() < 2e-4,
                    "angle {d}"
                );
            }
        }
    }

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

    #[test]
    fn circle_has_the_cells_inside_the_radius() {
        // 8 x 8 grid, radius 4 cells: 52 cells lie inside.
        assert_eq!(CIRCLE.count_ones(), 52);
        assert_eq!(CIRCLE & 1, 0);
    }

    #[test]
    fn points_round_trip() {
        let w = pack_point(123.3, -45.6, 4.0);
        let (x, y, d) = unpack_point(w);
        assert!((x - 123.25).abs() < 0.01 && (y + 45.5).abs() < 0.01, "{x} {y}");
        assert!((d - 4.0).abs() < 1e-3);
        assert_eq!(w >> 48, 0);
    }

    #[test]
    fn templates_pass_their_own_check_and_bad_parts_are_refused() {
        let ms: Vec<Minutia> = (0..30)
            .map(|i| Minutia {
                x: 100.0 + (i % 6) as f32 * 20.0,
                y: 100.0 + (i / 6) as f32 * 22.0,
                direction: i as f32 * 0.7,
                kind: crate::minutiae::MinutiaKind::Ending,
                quality: 60,
            })
            .collect();
        let t = MccTemplate::new(&ms);
        assert!(t.len() > 20);
        assert!(t.view().check());
        let back = MccTemplate::from_parts(t.pts.clone(), t.valid.clone(), t.bits.clone());
        assert_eq!(back.as_ref(), Some(&t));
        let mut bad_bits = t.bits.clone();
        bad_bits[0] |= !CIRCLE;
        assert!(MccTemplate::from_parts(t.pts.clone(), t.valid.clone(), bad_bits).is_none());
        assert!(MccTemplate::from_parts(t.pts.clone(), t.valid.clone(), vec![]).is_none());
        assert!(score(&ms, &ms) > 0.9);
    }
}
