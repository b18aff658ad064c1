//! NFIQ 2-style fingerprint image quality, 0-100 (higher is better).
//!
//! A Rust port of the pure-NumPy NFIQ 2.3 feature code and models of the MIT-licensed `afis` 1.2.7
//! package (`afis/algorithms/nfiq2/*.py`, © 2026 Ashok Pant; licence in `data/nfiq2/LICENSE-afis-MIT`),
//! itself a port of NIST's public-domain NFIQ 2. The 69 features are: histograms (10 fixed bins, counts) plus
//! mean and standard deviation of block-wise (32 x 32) frequency-domain analysis (FDA), local clarity
//! (LCS), orientation certainty (OCL), orientation flow (OF) and ridge-valley uniformity (RVUP); the
//! grey-level mean (Mu) and mean of block means (MMB); the ImgProcROI area mean; the orientation-map
//! coherence sum and relative value over the ROI; and four FingerJetFX minutiae slots.
//!
//! Like `afis` without minutiae, the score is the calibrated one: a ridge regression over the standardised
//! features (`nfiq2_cal.npz`, trained by `afis` against NIST NFIQ 2 on FVC2004). The NIST random forest
//! (`nfiq2_rf.npz`, 100 trees) is evaluated as well and reported as [`Quality::random_forest`].
//! Both models are compiled into the crate.
#![allow(
    clippy::cast_possible_truncation,
    reason = "pixel and histogram arithmetic on small, range-checked values"
)]

use std::f64::consts::PI;
use std::sync::OnceLock;

use image::GrayImage;

use crate::npz;

const BS: usize = 32;
const NFEAT: usize = 69;
const MU_WHITE: f64 = 250.0;
/// Standardised features are clamped to +-`Z_MAX` before the calibrated linear model: the model was fitted on
/// 960 images (`n_train` in `nfiq2_cal.npz`), whose features span about +-3.3 standard deviations (the
/// two-sided 1/960 quantile of a normal), and a linear model extrapolates without bound outside its training
/// range. Heavily degraded images push ridge-valley histogram bins to 8-11 standard deviations, where a single
/// feature added up to 27 points and made the score rebound; the three real prints stay within 2.4, so their
/// scores (and the agreement with the reference) are unchanged.
const Z_MAX: f64 = 3.3;
const EDGES_FDA: [f64; 9] = [0.268, 0.304, 0.33, 0.355, 0.38, 0.407, 0.44, 0.50, 1.0];
const EDGES_LCS: [f64; 9] = [0.0, 0.70, 0.74, 0.77, 0.79, 0.81, 0.83, 0.85, 0.87];
const EDGES_OCL: [f64; 9] = [0.337, 0.479, 0.579, 0.655, 0.716, 0.766, 0.81, 0.852, 0.898];
const EDGES_OF: [f64; 9] = [
    1.715e-2, 3.5e-2, 5.57e-2, 8.1e-2, 1.15e-1, 1.718e-1, 2.569e-1, 4.758e-1, 7.48e-1,
];
const EDGES_RVU: [f64; 9] = [0.5, 0.667, 0.8, 1.0, 1.25, 1.5, 2.0, 24.0, 30.0];

/// The quality verdict for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Quality {
    /// The NFIQ 2-style score, 0-100 (calibrated model).
    pub score: u8,
    /// The NIST random forest's score on the same features (votes of 100 trees).
    pub random_forest: u8,
    /// The 69 features in model order.
    pub features: Vec<f64>,
}

struct Models {
    var: Vec<i64>,
    thr: Vec<f32>,
    left: Vec<i64>,
    right: Vec<i64>,
    value: Vec<f32>,
    tree_off: Vec<i64>,
    mu: Vec<f32>,
    sd: Vec<f32>,
    w: Vec<f32>,
}

fn models() -> Option<&'static Models> {
    static M: OnceLock<Option<Models>> = OnceLock::new();
    M.get_or_init(|| {
        let rf = npz::read(include_bytes!("../data/nfiq2/nfiq2_rf.npz")).ok()?;
        let cal = npz::read(include_bytes!("../data/nfiq2/nfiq2_cal.npz")).ok()?;
        let m = Models {
            var: rf.get("var")?.to_i64(),
            thr: rf.get("thr")?.to_f32(),
            left: rf.get("left")?.to_i64(),
            right: rf.get("right")?.to_i64(),
            value: rf.get("value")?.to_f32(),
            tree_off: rf.get("tree_off")?.to_i64(),
            mu: cal.get("mu")?.to_f32(),
            sd: cal.get("sd")?.to_f32(),
            w: cal.get("w")?.to_f32(),
        };
        (m.mu.len() == NFEAT && m.sd.len() == NFEAT && m.w.len() == NFEAT + 1).then_some(m)
    })
    .as_ref()
}

/// True when the embedded models loaded (they always should; a test pins it).
pub fn models_available() -> bool {
    models().is_some()
}

/// Image as f64 rows.
#[derive(Clone)]
struct Img {
    w: usize,
    h: usize,
    p: Vec<f64>,
}

impl Img {
    fn at(&self, x: usize, y: usize) -> f64 {
        if x >= self.w {
            return 0.0;
        }
        self.p.get(y * self.w + x).copied().unwrap_or(0.0)
    }
    fn sub(&self, x0: usize, y0: usize, w: usize, h: usize) -> Img {
        let mut p = Vec::with_capacity(w * h);
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                p.push(self.at(x, y));
            }
        }
        Img { w, h, p }
    }
    fn mean(&self) -> f64 {
        self.p.iter().sum::<f64>() / self.p.len().max(1) as f64
    }
    fn std(&self) -> f64 {
        let m = self.mean();
        (self.p.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / self.p.len().max(1) as f64).sqrt()
    }
}

fn remove_near_white_frame(img: &Img) -> Img {
    let (w, h) = (img.w, img.h);
    let row_mean = |y: usize| (0..w).map(|x| img.at(x, y)).sum::<f64>() / w as f64;
    let col_mean_range =
        |x: usize, t: usize, b: usize| (t..=b).map(|y| img.at(x, y)).sum::<f64>() / (b + 1 - t) as f64;
    let mut top = 0;
    while top < h && row_mean(top) > MU_WHITE {
        top += 1;
    }
    if top >= h {
        return img.clone();
    }
    let mut bottom = h - 1;
    while bottom > top && row_mean(bottom) > MU_WHITE {
        bottom -= 1;
    }
    // afis computes column means over the whole image (before cropping rows)
    let _ = col_mean_range;
    let col_mean = |x: usize| (0..h).map(|y| img.at(x, y)).sum::<f64>() / h as f64;
    let mut left = 0;
    while left < w && col_mean(left) > MU_WHITE {
        left += 1;
    }
    if left >= w {
        return img.sub(0, top, w, bottom + 1 - top);
    }
    let mut right = w - 1;
    while right > left && col_mean(right) > MU_WHITE {
        right -= 1;
    }
    img.sub(left, top, right + 1 - left, bottom + 1 - top)
}

fn centered_grad(b: &Img) -> (Vec<f64>, Vec<f64>) {
    let (w, h) = (b.w, b.h);
    let mut gx = vec![0.0; w * h];
    let mut gy = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            let vx = if w < 2 {
                0.0
            } else if x == 0 {
                b.at(1, y) - b.at(0, y)
            } else if x == w - 1 {
                b.at(w - 1, y) - b.at(w - 2, y)
            } else {
                0.5 * (b.at(x + 1, y) - b.at(x - 1, y))
            };
            let vy = if h < 2 {
                0.0
            } else if y == 0 {
                b.at(x, 1) - b.at(x, 0)
            } else if y == h - 1 {
                b.at(x, h - 1) - b.at(x, h - 2)
            } else {
                0.5 * (b.at(x, y + 1) - b.at(x, y - 1))
            };
            if let Some(s) = gx.get_mut(y * w + x) {
                *s = vx;
            }
            if let Some(s) = gy.get_mut(y * w + x) {
                *s = vy;
            }
        }
    }
    (gx, gy)
}

fn covcoef(b: &Img) -> (f64, f64, f64) {
    let (gx, gy) = centered_grad(b);
    let a = gx.iter().map(|v| v * v).sum();
    let bb = gy.iter().map(|v| v * v).sum();
    let c = gx.iter().zip(&gy).map(|(x, y)| x * y).sum();
    (a, bb, c)
}

fn ridgeorient(a: f64, b: f64, c: f64) -> f64 {
    let t = a - b;
    let denom = c * c + t * t + f64::EPSILON;
    0.5 * (c / denom).atan2(t / denom)
}

fn ocl_block(b: &Img) -> Option<f64> {
    let (gx, gy) = centered_grad(b);
    let n = (BS * BS) as f64;
    let a = gx.iter().map(|v| v * v).sum::<f64>() / n;
    let bb = gy.iter().map(|v| v * v).sum::<f64>() / n;
    let c = gx.iter().zip(&gy).map(|(x, y)| x * y).sum::<f64>() / n;
    let disc = ((a - bb).powi(2) + 4.0 * c * c).sqrt();
    let emax = 0.5 * (a + bb + disc);
    let emin = 0.5 * (a + bb - disc);
    if emax == 0.0 {
        None
    } else {
        Some(1.0 - emin / emax)
    }
}

fn cv_round(x: f64) -> i64 {
    let r = if x >= 0.0 {
        (x + 0.5).floor()
    } else {
        (x - 0.5).ceil()
    };
    r.clamp(-2_147_483_648.0, 2_147_483_647.0) as i64
}

/// OpenCV `warpAffine(INTER_NEAREST)` of a rotation about the (padded) block centre, fixed-point exact.
fn rotate_block(block: &Img, orientation: f64, pad: bool) -> Img {
    let src = if pad {
        let mut p = vec![0.0; (block.w + 4) * (block.h + 4)];
        for y in 0..block.h {
            for x in 0..block.w {
                if let Some(s) = p.get_mut((y + 2) * (block.w + 4) + x + 2) {
                    *s = block.at(x, y);
                }
            }
        }
        Img {
            w: block.w + 4,
            h: block.h + 4,
            p,
        }
    } else {
        block.clone()
    };
    let (oh, ow) = (block.h, block.w);
    let (cx, cy) = (src.w as f64 / 2.0, src.h as f64 / 2.0);
    let ang = orientation * (180.0 / PI);
    let (alpha, beta) = (ang.to_radians().cos(), ang.to_radians().sin());
    let mut m = [
        alpha,
        beta,
        (1.0 - alpha) * cx - beta * cy,
        -beta,
        alpha,
        beta * cx + (1.0 - alpha) * cy,
    ];
    // invert in place as OpenCV does
    let [m0, m1, m2, m3, m4, m5] = m;
    let det = m0 * m4 - m1 * m3;
    let det = if det != 0.0 { 1.0 / det } else { 0.0 };
    let (a11, a22) = (m4 * det, m0 * det);
    let (n1, n3) = (-m1 * det, -m3 * det);
    let b1 = -a11 * m2 - n1 * m5;
    let b2 = -n3 * m2 - a22 * m5;
    m = [a11, n1, b1, n3, a22, b2];
    let [i0, i1, i2, i3, i4, i5] = m;
    let scale = 1024.0;
    let mut out = vec![0.0; ow * oh];
    for y in 0..oh {
        let x0 = cv_round((i1 * y as f64 + i2) * scale) + 512;
        let y0 = cv_round((i4 * y as f64 + i5) * scale) + 512;
        for x in 0..ow {
            let xx = ((x0 + cv_round(i0 * x as f64 * scale)) >> 10).clamp(-32768, 32767);
            let yy = ((y0 + cv_round(i3 * x as f64 * scale)) >> 10).clamp(-32768, 32767);
            if xx >= 0
                && yy >= 0
                && (xx as usize) < src.w
                && (yy as usize) < src.h
                && let Some(s) = out.get_mut(y * ow + x)
            {
                *s = src.at(xx as usize, yy as usize);
            }
        }
    }
    Img { w: ow, h: oh, p: out }
}

fn crop(img: &Img, r0: isize, r1: isize, c0: isize, c1: isize) -> Img {
    let r0 = r0.max(0) as usize;
    let c0 = c0.max(0) as usize;
    let r1 = (r1.max(0) as usize).min(img.h);
    let c1 = (c1.max(0) as usize).min(img.w);
    img.sub(c0, r0, c1.saturating_sub(c0), r1.saturating_sub(r0))
}

fn crop_fda(rot: &Img) -> Img {
    let ic = (rot.h / 2) as isize;
    let (xoff, yoff) = (16isize, 8isize);
    crop(
        rot,
        ic - (xoff - 1) - 1,
        ic + xoff,
        ic - (yoff - 1) - 1,
        ic + yoff,
    )
}

fn crop_lcs(rot: &Img) -> Img {
    let ic = (rot.h / 2) as isize;
    let (xoff, yoff) = (16isize, 8isize);
    crop(
        rot,
        ic - (yoff - 1) - 1,
        ic + yoff,
        ic - (xoff - 1) - 1,
        ic + xoff,
    )
}

fn ridge_valley_structure(b: &Img) -> (Vec<u8>, Vec<f64>) {
    if b.p.is_empty() || b.w < 2 {
        return (Vec::new(), Vec::new());
    }
    let n = b.w;
    let v3: Vec<f64> = (0..n)
        .map(|x| (0..b.h).map(|y| b.at(x, y)).sum::<f64>() / b.h as f64)
        .collect();
    let nf = n as f64;
    let (mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0);
    for (i, &y) in v3.iter().enumerate() {
        let x = (i + 1) as f64;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    let den = nf * sxx - sx * sx;
    if den == 0.0 {
        return (Vec::new(), Vec::new());
    }
    let slope = (nf * sxy - sx * sy) / den;
    let icpt = (sy - slope * sx) / nf;
    let r10 = |v: f64| (v * 1e10).round() / 1e10;
    let (icpt, slope) = (r10(icpt), r10(slope));
    let dt: Vec<f64> = (0..n).map(|i| icpt + slope * (i + 1) as f64).collect();
    let ridval = v3.iter().zip(&dt).map(|(v, d)| u8::from(v < d)).collect();
    (ridval, dt)
}

fn optimal_dft_size(n0: usize) -> usize {
    if n0 <= 1 {
        return 1;
    }
    for n in n0..2 * n0 {
        let mut x = n;
        for f in [2, 3, 5] {
            while x % f == 0 {
                x /= f;
            }
        }
        if x == 1 {
            return n;
        }
    }
    n0
}

fn fda_value(wide: &Img, orientation: f64) -> f64 {
    if wide.h < 4 || !wide.h.is_multiple_of(2) {
        return 0.0;
    }
    let rot = rotate_block(wide, orientation + PI / 2.0, true);
    let c = crop_fda(&rot);
    if c.p.len() < 8 || c.h < 2 {
        return 0.0;
    }
    let t: Vec<f64> = (0..c.h)
        .map(|y| (0..c.w).map(|x| c.at(x, y)).sum::<f64>() / c.w as f64)
        .collect();
    let n = optimal_dft_size(t.len());
    let amp: Vec<f64> = (0..n)
        .map(|k| {
            let (mut re, mut im) = (0.0, 0.0);
            for (j, v) in t.iter().enumerate() {
                let a = -2.0 * PI * (k * j) as f64 / n as f64;
                re += v * a.cos();
                im += v * a.sin();
            }
            re.hypot(im)
        })
        .collect();
    if amp.len() < 3 {
        return 1.0;
    }
    let a = amp.get(1..).unwrap_or(&[]);
    let (mut peak, mut mval) = (0usize, f64::MIN);
    for (i, &v) in a.iter().enumerate() {
        if v > mval {
            mval = v;
            peak = i;
        }
    }
    let half = (a.len() / 2).max(1);
    let denom = a.iter().take(half).sum::<f64>() + 1e-12;
    if peak == 0 || peak + 1 >= a.len() {
        return 1.0;
    }
    let g = |i: usize| a.get(i).copied().unwrap_or(0.0);
    (mval + 0.3 * (g(peak - 1) + g(peak + 1))) / denom
}

fn lcs_value(wide: &Img, orientation: f64) -> f64 {
    let rot = rotate_block(wide, orientation, false);
    let v2 = crop_lcs(&rot);
    if v2.p.len() < 8 || v2.w < 3 {
        return 0.0;
    }
    let (ridval, dt) = ridge_valley_structure(&v2);
    if ridval.is_empty() {
        return 0.0;
    }
    let n = ridval.len();
    let rv = |i: usize| ridval.get(i).copied().unwrap_or(0);
    let change: Vec<u8> = (0..n)
        .map(|i| u8::from(rv(i) != rv(if i == 0 { n - 1 } else { i - 1 })))
        .collect();
    let change_index: Vec<i64> = (1..change.len())
        .filter(|&i| change.get(i) == Some(&1))
        .map(|i| i as i64 - 1)
        .collect();
    let Some(&first) = change_index.first() else {
        return 0.0;
    };
    let mut wrv = vec![first as f64];
    for k in 1..change_index.len() {
        let (a, b) = (
            change_index.get(k).copied().unwrap_or(0),
            change_index.get(k - 1).copied().unwrap_or(0),
        );
        wrv.push((a - b) as f64);
    }
    let scale = 500.0 / 125.0 * 5.0;
    let (n_wrmin, n_wrmax, n_wvmin, n_wvmax) = (3.0 / scale, 10.0 / scale, 2.0 / scale, 10.0 / scale);
    let (mut n_wr, mut n_wv) = (Vec::new(), Vec::new());
    let g = |i: usize| wrv.get(i).copied().unwrap_or(0.0);
    if rv(0) == 1 {
        for i in (0..wrv.len()).step_by(2) {
            n_wr.push(g(i) / scale);
        }
        for i in (0..wrv.len().saturating_sub(1)).step_by(2) {
            n_wv.push(g(i + 1) / scale);
        }
    } else {
        for i in (0..wrv.len()).step_by(2) {
            n_wv.push(g(i) / scale);
        }
        for i in (0..wrv.len().saturating_sub(1)).step_by(2) {
            n_wr.push(g(i + 1) / scale);
        }
    }
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let (mu_wr, mu_wv) = (mean(&n_wr), mean(&n_wv));
    if !((n_wrmin..=n_wrmax).contains(&mu_wr) && (n_wvmin..=n_wvmax).contains(&mu_wv)) {
        return 0.0;
    }
    let (mut rg, mut vg, mut rn, mut vn) = (0usize, 0usize, 0usize, 0usize);
    for (i, &r) in ridval.iter().enumerate() {
        let thr = dt.get(i).copied().unwrap_or(0.0);
        for y in 0..v2.h {
            let v = v2.at(i, y);
            if r == 1 {
                rg += usize::from(v >= thr);
            } else {
                vg += usize::from(v < thr);
            }
        }
        if r == 1 {
            rn += v2.h;
        } else {
            vn += v2.h;
        }
    }
    if rn == 0 || vn == 0 {
        return 0.0;
    }
    1.0 - (vg as f64 / vn as f64 + rg as f64 / rn as f64) / 2.0
}

fn rvu_ratios(wide: &Img, orientation: f64) -> Vec<f64> {
    let rot = rotate_block(wide, orientation, true);
    let c = crop_lcs(&rot);
    if c.p.len() < 8 || c.w < 4 {
        return Vec::new();
    }
    let (ridval, _) = ridge_valley_structure(&c);
    let n = ridval.len();
    if n < 3 {
        return Vec::new();
    }
    let rv = |i: usize| ridval.get(i).copied().unwrap_or(0);
    let change: Vec<u8> = (0..n - 1)
        .map(|i| u8::from(rv(i) != rv(if i == 0 { n - 1 } else { i - 1 })))
        .collect();
    let ci: Vec<i64> = (1..change.len())
        .filter(|&i| change.get(i) == Some(&1))
        .map(|i| i as i64 - 1)
        .collect();
    let (Some(&c0), Some(&cl)) = (ci.first(), ci.last()) else {
        return Vec::new();
    };
    let start = (c0 + 1).max(0) as usize;
    let end = cl.max(0) as usize;
    if start >= end.min(n) {
        return Vec::new();
    }
    let rid_complete_first = rv(start);
    let cc: Vec<i64> = (1..ci.len())
        .map(|i| ci.get(i).copied().unwrap_or(0) - c0)
        .collect();
    if cc.len() <= 1 {
        return Vec::new();
    }
    let widths: Vec<i64> = (1..cc.len())
        .rev()
        .map(|i| cc.get(i).copied().unwrap_or(0) - cc.get(i - 1).copied().unwrap_or(0))
        .collect();
    if widths.len() < 2 {
        return Vec::new();
    }
    let mut ratios = Vec::new();
    for m in 0..widths.len() - 1 {
        let (a, b) = (
            widths.get(m).copied().unwrap_or(0),
            widths.get(m + 1).copied().unwrap_or(0),
        );
        if b == 0 {
            continue;
        }
        ratios.push(a as f64 / b as f64);
    }
    let mut i = usize::from(rid_complete_first);
    while i < ratios.len() {
        if let Some(r) = ratios.get_mut(i)
            && *r != 0.0
        {
            *r = 1.0 / *r;
        }
        i += 2;
    }
    ratios.retain(|r| r.is_finite());
    ratios
}

fn gaussian_blur(src: &[f64], w: usize, h: usize, ksize: usize) -> Vec<f64> {
    let sigma = 0.3 * ((ksize as f64 - 1.0) * 0.5 - 1.0) + 0.8;
    let half = (ksize as f64 - 1.0) * 0.5;
    let mut k: Vec<f64> = (0..ksize)
        .map(|i| (-(i as f64 - half).powi(2) / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    let r = ksize / 2;
    let g = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(0.0);
    let mut tmp = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (i, kv) in k.iter().enumerate() {
                let xx = (x + i).saturating_sub(r).min(w - 1);
                acc += kv * g(src, y * w + xx);
            }
            if let Some(t) = tmp.get_mut(y * w + x) {
                *t = acc;
            }
        }
    }
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (i, kv) in k.iter().enumerate() {
                let yy = (y + i).saturating_sub(r).min(h - 1);
                acc += kv * g(&tmp, yy * w + x);
            }
            if let Some(o) = out.get_mut(y * w + x) {
                *o = acc;
            }
        }
    }
    out
}

fn otsu(v: &[f64]) -> f64 {
    let mut hist = [0f64; 256];
    for &x in v {
        let b = x.round().clamp(0.0, 255.0) as usize;
        if let Some(hb) = hist.get_mut(b) {
            *hb += 1.0;
        }
    }
    let total: f64 = hist.iter().sum();
    if total < 1.0 {
        return 128.0;
    }
    let (mut omega, mut mu) = (0.0, 0.0);
    let mu_t: f64 = hist.iter().enumerate().map(|(i, c)| i as f64 * c / total).sum();
    let (mut best, mut best_i) = (f64::MIN, 0usize);
    for (i, c) in hist.iter().enumerate() {
        let p = c / total;
        omega += p;
        mu += p * i as f64;
        let s = (mu_t * omega - mu).powi(2) / (omega * (1.0 - omega) + 1e-12);
        if s > best {
            best = s;
            best_i = i;
        }
    }
    best_i as f64
}

/// 4-connected components of `mask`; returns labels (0 = background) and count.
fn label(mask: &[bool], w: usize, h: usize) -> (Vec<u32>, u32) {
    let mut labels = vec![0u32; w * h];
    let mut n = 0;
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask.get(start).copied().unwrap_or(false) || labels.get(start).copied().unwrap_or(1) != 0 {
            continue;
        }
        n += 1;
        stack.push(start);
        if let Some(l) = labels.get_mut(start) {
            *l = n;
        }
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            let mut visit = |j: usize| {
                if mask.get(j).copied().unwrap_or(false)
                    && let Some(l) = labels.get_mut(j)
                    && *l == 0
                {
                    *l = n;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
    }
    (labels, n)
}

/// ImgProcROI: returns (ROI grey mean, ROI block rectangles (x, y, w, h)).
fn imgproc_roi(img: &Img) -> (f64, Vec<(usize, usize, usize, usize)>) {
    let (w, h) = (img.w, img.h);
    let mut eroded = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut m = f64::MAX;
            for oy in 0..5 {
                for ox in 0..5 {
                    let xx = (x + ox).saturating_sub(2).min(w - 1);
                    let yy = (y + oy).saturating_sub(2).min(h - 1);
                    m = m.min(img.at(xx, yy));
                }
            }
            if let Some(e) = eroded.get_mut(y * w + x) {
                *e = m;
            }
        }
    }
    let blur1 = gaussian_blur(&eroded, w, h, 41);
    let t1 = otsu(&blur1);
    let thr1: Vec<f64> = blur1.iter().map(|&v| if v > t1 { 255.0 } else { 0.0 }).collect();
    let blur2 = gaussian_blur(&thr1, w, h, 91);
    let t2 = otsu(&blur2);
    let mut thr2: Vec<bool> = blur2.iter().map(|&v| v > t2).collect(); // true = white
    let (wl, wn) = label(&thr2, w, h);
    let mut touches = vec![false; wn as usize + 1];
    for y in 0..h {
        for x in 0..w {
            if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
                let l = wl.get(y * w + x).copied().unwrap_or(0) as usize;
                if let Some(t) = touches.get_mut(l) {
                    *t = true;
                }
            }
        }
    }
    for (i, px) in thr2.iter_mut().enumerate() {
        let l = wl.get(i).copied().unwrap_or(0) as usize;
        if l != 0 && !touches.get(l).copied().unwrap_or(true) {
            *px = false;
        }
    }
    let black: Vec<bool> = thr2.iter().map(|&v| !v).collect();
    let (bl, bn) = label(&black, w, h);
    if bn == 0 {
        return (255.0, Vec::new());
    }
    let mut bbox = vec![(usize::MAX, usize::MAX, 0usize, 0usize); bn as usize + 1];
    for (i, &l) in bl.iter().enumerate() {
        if l == 0 {
            continue;
        }
        if let Some(b) = bbox.get_mut(l as usize) {
            let (x, y) = (i % w, i / w);
            *b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
        }
    }
    let mut best = (1u32, -1i64);
    for l in 1..=bn {
        if let Some(&(x0, y0, x1, y1)) = bbox.get(l as usize) {
            let area = ((y1 - y0 + 1) * (x1 - x0 + 1)) as i64;
            if area > best.1 {
                best = (l, area);
            }
        }
    }
    let roi: Vec<bool> = bl.iter().map(|&l| l == best.0).collect();
    let count = roi.iter().filter(|&&v| v).count();
    let roi_mean = if count == 0 {
        255.0
    } else {
        roi.iter()
            .zip(&img.p)
            .filter(|(r, _)| **r)
            .map(|(_, v)| v)
            .sum::<f64>()
            / count as f64
    };
    let mut rects = Vec::new();
    for i in (0..h).step_by(BS) {
        for j in (0..w).step_by(BS) {
            let (bh, bw) = (BS.min(h - i), BS.min(w - j));
            let any = (i..i + bh).any(|y| (j..j + bw).any(|x| roi.get(y * w + x).copied().unwrap_or(false)));
            if any {
                rects.push((j, i, bw, bh));
            }
        }
    }
    (roi_mean, rects)
}

fn qm_coherence(b: &Img) -> f64 {
    let (gx, gy) = centered_grad(b);
    let (mut sy, mut sx, mut s2) = (0.0, 0.0, 0.0);
    for (x, y) in gx.iter().zip(&gy) {
        let a = 2.0 * x * y;
        let c = x * x - y * y;
        sy += a;
        sx += c;
        s2 += (a * a + c * c).sqrt();
    }
    let s1 = (sx * sx + sy * sy).sqrt();
    if s2 == 0.0 || !s2.is_finite() {
        return 0.0;
    }
    let c = s1 / s2;
    if c.is_finite() { c } else { 0.0 }
}

fn histogram(out: &mut Vec<f64>, values: &[f64], edges: &[f64; 9]) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let mut bins = [0f64; 10];
    let bound = |i: usize| edges.get(i).copied().unwrap_or(f64::INFINITY);
    let mut bi = 0;
    for &x in &v {
        while x >= bound(bi) && bi < 9 {
            bi += 1;
        }
        if let Some(b) = bins.get_mut(bi) {
            *b += 1.0;
        }
    }
    out.extend_from_slice(&bins);
    if v.is_empty() {
        out.extend_from_slice(&[0.0, 0.0]);
    } else {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let s = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt();
        out.extend_from_slice(&[m, s]);
    }
}

/// Computes the 69 features in model order.
pub fn features(image: &GrayImage) -> Vec<f64> {
    let raw = Img {
        w: image.width() as usize,
        h: image.height() as usize,
        p: image.pixels().map(|p| f64::from(p.0[0])).collect(),
    };
    let mut img = remove_near_white_frame(&raw);
    if img.w < 96 || img.h < 96 {
        img = raw;
    }
    let (w, h) = (img.w, img.h);
    let mu = img.mean();
    let mut block_means = Vec::new();
    for i in (0..h).step_by(BS) {
        for j in (0..w).step_by(BS) {
            block_means.push(img.sub(j, i, BS.min(w - j), BS.min(h - i)).mean());
        }
    }
    let mmb = block_means.iter().sum::<f64>() / block_means.len().max(1) as f64;
    let (roi_mean, rects) = imgproc_roi(&img);
    let coh_sum: f64 = rects
        .iter()
        .filter(|r| r.2 * r.3 >= 4)
        .map(|&(x, y, bw, bh)| qm_coherence(&img.sub(x, y, bw, bh)))
        .sum();
    let coh_rel = if rects.is_empty() {
        0.0
    } else {
        coh_sum / rects.len() as f64
    };

    // ridge segmentation mask (blocks of the globally normalised image with std > 0.1)
    let (gm, gs) = (img.mean(), img.std() + 1e-12);
    let mut mask = vec![false; w * h];
    for r in (0..h).step_by(BS) {
        for c in (0..w).step_by(BS) {
            let b = img.sub(c, r, BS.min(w - c), BS.min(h - r));
            if b.std() / gs > 0.1 {
                for y in r..(r + BS).min(h) {
                    for x in c..(c + BS).min(w) {
                        if let Some(m) = mask.get_mut(y * w + x) {
                            *m = true;
                        }
                    }
                }
            }
        }
    }
    let _ = gm;
    let off = 2usize;
    let (mut fda, mut lcs, mut rvu, mut ocl) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut orients: std::collections::BTreeMap<(usize, usize), f64> = std::collections::BTreeMap::new();
    let mut br = 0;
    let mut r = off;
    while r + BS + off - 1 < h {
        let mut bc = 0;
        let mut c = off;
        while c + BS + off - 1 < w {
            let full =
                (r..r + BS).all(|y| (c..c + BS).all(|x| mask.get(y * w + x).copied().unwrap_or(false)));
            if full {
                let roi = img.sub(c, r, BS, BS);
                let (r0, c0) = (r.saturating_sub(off), c.saturating_sub(off));
                let (r1, c1) = ((r + BS + off).min(h), (c + BS + off).min(w));
                let mut wide = img.sub(c0, r0, c1 - c0, r1 - r0);
                if !wide.h.is_multiple_of(2) || wide.w < 4 {
                    let (nh, nw) = (wide.h + wide.h % 2, wide.w.max(4));
                    let fill = wide.mean().floor();
                    let mut p = vec![fill; nh * nw];
                    for y in 0..wide.h {
                        for x in 0..wide.w {
                            if let Some(s) = p.get_mut(y * nw + x) {
                                *s = wide.at(x, y);
                            }
                        }
                    }
                    wide = Img { w: nw, h: nh, p };
                }
                let (a, b, cv) = covcoef(&roi);
                let ang = ridgeorient(a, b, cv);
                orients.insert((br, bc), ang);
                fda.push(fda_value(&wide, ang));
                lcs.push(lcs_value(&wide, ang));
                rvu.extend(rvu_ratios(&wide, ang));
            }
            bc += 1;
            c += BS;
        }
        br += 1;
        r += BS;
    }
    for i in (0..=h.saturating_sub(BS)).step_by(BS) {
        for j in (0..=w.saturating_sub(BS)).step_by(BS) {
            if i + BS <= h
                && j + BS <= w
                && let Some(v) = ocl_block(&img.sub(j, i, BS, BS))
            {
                ocl.push(v);
            }
        }
    }
    let mut of = Vec::new();
    let (amin, adiff) = (4f64.to_radians(), 86f64.to_radians());
    for (&(br, bc), &centre) in &orients {
        let mut diffs = Vec::with_capacity(8);
        let mut ok = true;
        for di in -1isize..=1 {
            for dj in -1isize..=1 {
                let (nr, nc) = (br as isize + di, bc as isize + dj);
                if nr < 0 || nc < 0 {
                    ok = false;
                    continue;
                }
                match orients.get(&(nr as usize, nc as usize)) {
                    Some(&o) => {
                        if di != 0 || dj != 0 {
                            let d = (o - centre).abs();
                            diffs.push(d.min(2.0 * PI - d));
                        }
                    }
                    None => ok = false,
                }
            }
        }
        if !ok {
            continue;
        }
        let loq = diffs.iter().sum::<f64>() / diffs.len().max(1) as f64;
        if loq > amin {
            of.push((loq - amin) / adiff);
        }
    }
    let mut out = Vec::with_capacity(NFEAT);
    histogram(&mut out, &fda, &EDGES_FDA);
    out.extend_from_slice(&[0.0, 0.0, -1.0, -1.0]); // FingerJetFX slots: not computed (afis fast path)
    out.push(roi_mean);
    histogram(&mut out, &lcs, &EDGES_LCS);
    out.push(mmb);
    out.push(mu);
    histogram(&mut out, &ocl, &EDGES_OCL);
    histogram(&mut out, &of, &EDGES_OF);
    out.push(coh_rel);
    out.push(coh_sum);
    histogram(&mut out, &rvu, &EDGES_RVU);
    out
}

/// Scores an image (8-bit grey, 500 ppi). Images smaller than 96 px on a side score 0.
pub fn assess(image: &GrayImage) -> Quality {
    if image.width() < 96 || image.height() < 96 {
        return Quality {
            score: 0,
            random_forest: 0,
            features: vec![0.0; NFEAT],
        };
    }
    // NFIQ 2 actionable feedback: an empty (mean > 250) or uniform (std dev < 1) image is not a fingerprint.
    let n = f64::from(image.width()) * f64::from(image.height());
    let mean = image.pixels().map(|p| f64::from(p.0[0])).sum::<f64>() / n;
    let var = image
        .pixels()
        .map(|p| (f64::from(p.0[0]) - mean).powi(2))
        .sum::<f64>()
        / n;
    if mean > 250.0 || var.sqrt() < 1.0 {
        return Quality {
            score: 0,
            random_forest: 0,
            features: vec![0.0; NFEAT],
        };
    }
    let f = features(image);
    let Some(m) = models() else {
        return Quality {
            score: 0,
            random_forest: 0,
            features: f,
        };
    };
    // calibrated ridge regression
    let mut raw = m.w.get(NFEAT).copied().map(f64::from).unwrap_or(0.0);
    for (i, x) in f.iter().enumerate() {
        let (mu, sd, w) = (
            m.mu.get(i).copied().map(f64::from).unwrap_or(0.0),
            m.sd.get(i).copied().map(f64::from).unwrap_or(1.0),
            m.w.get(i).copied().map(f64::from).unwrap_or(0.0),
        );
        if w != 0.0 {
            raw += w * ((x - mu) / (sd + 1e-8)).clamp(-Z_MAX, Z_MAX);
        }
    }
    // random forest votes
    let x32: Vec<f32> = f.iter().map(|&v| v as f32).collect();
    let mut votes = 0f64;
    for &base in &m.tree_off {
        let base = base.max(0) as usize;
        let mut i = 0usize;
        for _ in 0..10_000 {
            let idx = base + i;
            let var = m.var.get(idx).copied().unwrap_or(-1);
            let value = f64::from(m.value.get(idx).copied().unwrap_or(0.0));
            if var < 0 {
                votes += value;
                break;
            }
            let xv = x32.get(var as usize).copied().unwrap_or(0.0);
            let next = if xv <= m.thr.get(idx).copied().unwrap_or(0.0) {
                m.left.get(idx).copied().unwrap_or(-1)
            } else {
                m.right.get(idx).copied().unwrap_or(-1)
            };
            if next < 0 {
                votes += value;
                break;
            }
            i = next as usize;
        }
    }
    Quality {
        score: raw.round().clamp(0.0, 100.0) as u8,
        random_forest: votes.round().clamp(0.0, 100.0) as u8,
        features: f,
    }
}

/// One injected degradation, per level: how much contrast is taken away (towards white or about the image's
/// mean grey level), how much blur and how much noise. [`degrade_with`] applies `level` times each amount.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Degradation {
    /// Share of the ridges' darkness faded towards the white background per level (dry skin, light pressure).
    pub fade_white: f32,
    /// Share of the contrast taken away per level about the image's mean grey level (a low-contrast capture
    /// whose mean brightness does not change).
    pub contrast_mean: f32,
    /// Gaussian blur sigma (pixels) per level.
    pub blur_sigma: f32,
    /// Standard deviation of uniform noise (grey levels) per level.
    pub noise_sd: f32,
}

impl Degradation {
    /// Protocol A, [`degrade`]: fading towards white 15 %, blur 0.6 px and noise 4 grey levels per level.
    pub const PROTOCOL_A: Self = Self::new(0.15, 0.0, 0.6, 4.0);
    /// Protocol B (evaluation only, `examples/quality_degrade.rs`): as A, but the contrast is reduced about the
    /// image's mean grey level instead of towards white, so that a level changes the print's contrast,
    /// sharpness and noise without also moving its mean brightness, which NFIQ 2 scores in its own right.
    pub const PROTOCOL_B: Self = Self::new(0.0, 0.15, 0.6, 4.0);
    /// Fading towards white alone (protocol A's first component).
    pub const FADE_ONLY: Self = Self::new(0.15, 0.0, 0.0, 0.0);
    /// Contrast about the mean alone (protocol B's first component).
    pub const CONTRAST_ONLY: Self = Self::new(0.0, 0.15, 0.0, 0.0);
    /// Blur alone.
    pub const BLUR_ONLY: Self = Self::new(0.0, 0.0, 0.6, 0.0);
    /// Noise alone.
    pub const NOISE_ONLY: Self = Self::new(0.0, 0.0, 0.0, 4.0);

    /// A degradation from its four amounts per level, in field order.
    pub const fn new(fade_white: f32, contrast_mean: f32, blur_sigma: f32, noise_sd: f32) -> Self {
        Self {
            fade_white,
            contrast_mean,
            blur_sigma,
            noise_sd,
        }
    }
}

/// Injected degradation for validating the score (ISO/IEC 29794-1 style), protocol A
/// ([`Degradation::PROTOCOL_A`]): at `level` 0 the image is unchanged; each level fades the ridges towards
/// the white background by 15 % (light pressure, dry skin), blurs with a Gaussian of sigma 0.6 x level and
/// adds uniform noise of standard deviation 4 x level (deterministic). Levels 0-5 are the evaluation's (test
/// `real_prints_fall_with_injected_degradation`).
pub fn degrade(img: &GrayImage, level: u32) -> GrayImage {
    degrade_with(img, level, &Degradation::PROTOCOL_A)
}

/// Applies `level` times each amount of `d`: contrast (towards white, then about the mean), then blur, then
/// noise (deterministic per level). Level 0 returns the image unchanged.
pub fn degrade_with(img: &GrayImage, level: u32, d: &Degradation) -> GrayImage {
    let l = level as f32;
    let fade = (1.0 - d.fade_white * l).max(0.0);
    let contrast = (1.0 - d.contrast_mean * l).max(0.0);
    let sigma = d.noise_sd * l;
    let blurred = if level >= 1 && d.blur_sigma > 0.0 {
        image::imageops::blur(img, d.blur_sigma * l)
    } else {
        img.clone()
    };
    // The mean grey level, only for a contrast reduction about it.
    let mean = if d.contrast_mean > 0.0 {
        let n = (u64::from(img.width()) * u64::from(img.height())).max(1);
        img.pixels().map(|p| u64::from(p.0[0])).sum::<u64>() as f32 / n as f32
    } else {
        0.0
    };
    let mut state = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(level);
    GrayImage::from_fn(img.width(), img.height(), |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let u = (state >> 11) as f32 / (1u64 << 53) as f32;
        let noise = (u - 0.5) * 3.46 * sigma;
        let v = blurred
            .get_pixel(x, y)
            .0
            .first()
            .copied()
            .map_or(255.0, f32::from);
        let faded = 255.0 - (255.0 - v) * fade;
        let v = if d.contrast_mean > 0.0 {
            mean + (faded - mean) * contrast
        } else {
            faded
        };
        image::Luma([(v + noise).clamp(0.0, 255.0) as u8])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_load() {
        assert!(models_available());
        let m = models().unwrap();
        assert_eq!(m.tree_off.len(), 100);
        assert_eq!(m.var.len(), m.thr.len());
    }

    #[test]
    fn contrast_about_the_mean_keeps_the_mean() {
        let img = GrayImage::from_fn(120, 120, |x, y| {
            image::Luma([if (x / 4 + y / 7) % 2 == 0 { 40 } else { 220 }])
        });
        let stats = |i: &GrayImage| {
            let v: Vec<f32> = i.pixels().map(|p| f32::from(p.0[0])).collect();
            let m = v.iter().sum::<f32>() / v.len() as f32;
            let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt();
            (m, sd)
        };
        let (m0, sd0) = stats(&img);
        let (m2, sd2) = stats(&degrade_with(&img, 2, &Degradation::CONTRAST_ONLY));
        assert!((m2 - m0).abs() < 1.0, "mean {m0} -> {m2}");
        assert!((sd2 / sd0 - 0.7).abs() < 0.01, "sd {sd0} -> {sd2}");
        // Fading towards white brightens the image instead.
        let (mf, _) = stats(&degrade_with(&img, 2, &Degradation::FADE_ONLY));
        assert!(mf > m0 + 20.0, "mean {m0} -> {mf}");
        assert_eq!(degrade_with(&img, 0, &Degradation::PROTOCOL_B), img);
        assert_eq!(degrade(&img, 3), degrade_with(&img, 3, &Degradation::PROTOCOL_A));
    }

    #[test]
    fn blank_images_score_low_and_never_panic() {
        for v in [0u8, 128, 255] {
            let q = assess(&GrayImage::from_pixel(200, 200, image::Luma([v])));
            assert!(q.score <= 30, "uniform {v}: {}", q.score);
        }
        assert_eq!(assess(&GrayImage::new(10, 500)).score, 0);
    }
}
