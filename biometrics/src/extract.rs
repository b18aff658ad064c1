//! Minutiae extraction from 500 ppi grey fingerprint images.
//!
//! Pipeline: validation (size, blank, saturated) → block statistics and segmentation (foreground mask)
//! → gradient orientation field with coherence, smoothed in the doubled-angle domain → ridge period from
//! oriented x-signatures → contextual Gabor enhancement (a bank of oriented, frequency-tuned kernels chosen
//! per block) → binarisation → thinning → crossing-number minutiae with directions → false-minutiae
//! removal (border, spurs, short breaks, bridges, clusters) → per-minutia quality from local coherence and
//! distance to the foreground border.
#![allow(
    clippy::cast_possible_truncation,
    reason = "pixel arithmetic: values are clamped to the image or to 0..=255 before conversion"
)]

use std::f32::consts::{PI, TAU};
use std::sync::OnceLock;

use image::GrayImage;
use thiserror::Error;

use crate::grid::Grid;
use crate::minutiae::{Minutia, norm_angle};
use crate::skeleton;

/// Block size of the orientation / segmentation analysis (pixels).
pub const BLOCK: usize = 16;
/// Smallest accepted image side.
pub const MIN_SIDE: u32 = 96;
/// Largest accepted image side.
pub const MAX_SIDE: u32 = 2048;

/// Why an image cannot be processed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExtractError {
    /// The image is smaller or larger than a plain finger image at 500 ppi can be.
    #[error(
        "image is {width}x{height} pixels; each side must be {MIN_SIDE}..={MAX_SIDE} (500 ppi finger image)"
    )]
    BadSize {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// Too little ridge structure was found (blank, saturated or out-of-focus image): recapture.
    #[error(
        "no usable fingerprint area: {foreground_blocks} foreground blocks of {BLOCK}x{BLOCK} found, at least {needed} needed (blank, saturated or smudged image; recapture)"
    )]
    NoFingerprint {
        /// Foreground blocks found.
        foreground_blocks: usize,
        /// Minimum required.
        needed: usize,
    },
}

/// Intermediate results, useful for quality scoring and debugging.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// Foreground mask per block (1 = fingerprint).
    pub mask: Grid<u8>,
    /// Ridge orientation per block (radians, modulo π).
    pub orientation: Grid<f32>,
    /// Orientation coherence per block, 0-1.
    pub coherence: Grid<f32>,
    /// Ridge period per block (pixels).
    pub period: Grid<f32>,
    /// Enhanced image (positive = ridge), full resolution, 0 outside the foreground.
    pub enhanced: Grid<f32>,
}

/// Extraction result.
#[derive(Debug, Clone)]
pub struct Extraction {
    /// Detected minutiae (image coordinates; see [`crate::minutiae`] for conventions).
    pub minutiae: Vec<Minutia>,
    /// The intermediate maps.
    pub analysis: Analysis,
}

const NDIR: usize = 24;
const PMIN: f32 = 5.0;
const PSTEP: f32 = 0.5;
const NPER: usize = 19;
const KR: usize = 5;
const KS: usize = 2 * KR + 1;

fn bank() -> &'static [f32] {
    static BANK: OnceLock<Vec<f32>> = OnceLock::new();
    BANK.get_or_init(|| {
        let mut out = Vec::with_capacity(NPER * NDIR * KS * KS);
        for p in 0..NPER {
            let period = PMIN + PSTEP * p as f32;
            for d in 0..NDIR {
                let theta = d as f32 * PI / NDIR as f32;
                let (s, c) = theta.sin_cos();
                let (sn, su) = (0.38 * period, 0.6 * period);
                let mut k = [0f32; KS * KS];
                let mut env = [0f32; KS * KS];
                for (i, (kv, ev)) in k.iter_mut().zip(env.iter_mut()).enumerate() {
                    let dx = (i % KS) as f32 - KR as f32;
                    let dy = (i / KS) as f32 - KR as f32;
                    let xn = -dx * s + dy * c;
                    let xu = dx * c + dy * s;
                    let e = (-(xn * xn) / (2.0 * sn * sn) - (xu * xu) / (2.0 * su * su)).exp();
                    *ev = e;
                    *kv = e * (TAU * xn / period).cos();
                }
                let ks: f32 = k.iter().sum();
                let es: f32 = env.iter().sum();
                for (kv, ev) in k.iter_mut().zip(&env) {
                    *kv -= ev * ks / es;
                }
                let l1: f32 = k.iter().map(|v| v.abs()).sum();
                out.extend(k.iter().map(|v| v / l1));
            }
        }
        out
    })
}

/// Extracts minutiae from a 500 ppi grey image (ridges dark on a light background, as scanners deliver).
pub fn extract(img: &GrayImage) -> Result<Extraction, ExtractError> {
    let (wu, hu) = (img.width(), img.height());
    if !(MIN_SIDE..=MAX_SIDE).contains(&wu) || !(MIN_SIDE..=MAX_SIDE).contains(&hu) {
        return Err(ExtractError::BadSize {
            width: wu,
            height: hu,
        });
    }
    let (w, h) = (wu as usize, hu as usize);
    // Inverted so that ridges are bright/positive.
    let src = Grid::from_fn(w, h, |x, y| {
        255.0 - f32::from(img.get_pixel(x as u32, y as u32).0[0])
    });
    let (bw, bh) = (w.div_ceil(BLOCK), h.div_ceil(BLOCK));

    // Block mean and standard deviation.
    let mut mean = Grid::new(bw, bh, 0f32);
    let mut std = Grid::new(bw, bh, 0f32);
    for by in 0..bh {
        for bx in 0..bw {
            let (mut s, mut s2, mut n) = (0f32, 0f32, 0f32);
            for y in by * BLOCK..((by + 1) * BLOCK).min(h) {
                for &v in src
                    .row(y)
                    .get(bx * BLOCK..((bx + 1) * BLOCK).min(w))
                    .unwrap_or(&[])
                {
                    s += v;
                    s2 += v * v;
                    n += 1.0;
                }
            }
            let m = s / n.max(1.0);
            mean.set(bx, by, m);
            std.set(bx, by, (s2 / n.max(1.0) - m * m).max(0.0).sqrt());
        }
    }

    // Gradients (Sobel) and block orientation.
    let mut gxx = Grid::new(bw, bh, 0f32);
    let mut gyy = Grid::new(bw, bh, 0f32);
    let mut gxy = Grid::new(bw, bh, 0f32);
    for y in 1..h - 1 {
        let (r0, r1, r2) = (src.row(y - 1), src.row(y), src.row(y + 1));
        let by = y / BLOCK;
        for x in 1..w - 1 {
            let g = |r: &[f32], i: usize| r.get(i).copied().unwrap_or(0.0);
            let gx = g(r0, x + 1) + 2.0 * g(r1, x + 1) + g(r2, x + 1)
                - g(r0, x - 1)
                - 2.0 * g(r1, x - 1)
                - g(r2, x - 1);
            let gy =
                g(r2, x - 1) + 2.0 * g(r2, x) + g(r2, x + 1) - g(r0, x - 1) - 2.0 * g(r0, x) - g(r0, x + 1);
            let bx = x / BLOCK;
            if let Some(v) = gxx.get_mut(bx, by) {
                *v += gx * gx;
            }
            if let Some(v) = gyy.get_mut(bx, by) {
                *v += gy * gy;
            }
            if let Some(v) = gxy.get_mut(bx, by) {
                *v += gx * gy;
            }
        }
    }
    // Smooth the tensor over 3x3 blocks, then orientation (ridge direction ⟂ gradient) and coherence.
    let mut orientation = Grid::new(bw, bh, 0f32);
    let mut coherence = Grid::new(bw, bh, 0f32);
    for by in 0..bh {
        for bx in 0..bw {
            let (mut a, mut b, mut c) = (0f32, 0f32, 0f32);
            for oy in -1..=1 {
                for ox in -1..=1 {
                    let (x, y) = (bx as isize + ox, by as isize + oy);
                    a += gxx.at(x, y);
                    b += gyy.at(x, y);
                    c += gxy.at(x, y);
                }
            }
            let theta = 0.5 * (2.0 * c).atan2(a - b) + PI / 2.0;
            orientation.set(bx, by, theta.rem_euclid(PI));
            let coh = ((a - b).powi(2) + 4.0 * c * c).sqrt() / (a + b).max(1e-3);
            coherence.set(bx, by, coh);
        }
    }

    // Segmentation: contrast and coherence.
    let max_std = std.data.iter().copied().fold(0f32, f32::max);
    let mut mask = Grid::from_fn(bw, bh, |bx, by| {
        u8::from(std.get(bx, by) > (0.25 * max_std).max(8.0) && coherence.get(bx, by) > 0.25)
    });
    // Clean: majority filter twice, then drop blocks touching little foreground.
    for _ in 0..2 {
        let prev = mask.clone();
        for by in 0..bh {
            for bx in 0..bw {
                let mut n = 0;
                for oy in -1..=1 {
                    for ox in -1..=1 {
                        n += u32::from(prev.at(bx as isize + ox, by as isize + oy));
                    }
                }
                mask.set(bx, by, u8::from(n >= 5));
            }
        }
    }
    let fg_blocks = mask.data.iter().filter(|&&v| v != 0).count();
    let needed = 16;
    if fg_blocks < needed {
        return Err(ExtractError::NoFingerprint {
            foreground_blocks: fg_blocks,
            needed,
        });
    }

    // Smooth orientations in the doubled-angle domain over foreground blocks.
    let mut smooth_or = orientation.clone();
    for by in 0..bh {
        for bx in 0..bw {
            let (mut sx, mut sy) = (0f32, 0f32);
            for oy in -1..=1isize {
                for ox in -1..=1isize {
                    let (x, y) = (bx as isize + ox, by as isize + oy);
                    if mask.at(x, y) == 0 && (ox != 0 || oy != 0) {
                        continue;
                    }
                    let t = orientation.at(x, y);
                    let wgt = coherence.at(x, y) + 0.05;
                    sx += wgt * (2.0 * t).cos();
                    sy += wgt * (2.0 * t).sin();
                }
            }
            smooth_or.set(bx, by, (0.5 * sy.atan2(sx)).rem_euclid(PI));
        }
    }
    let orientation = smooth_or;

    // Ridge period from the x-signature along the ridge normal (32 samples, averaged along the ridge).
    let mut period = Grid::new(bw, bh, 0f32);
    let mut good = Vec::new();
    for by in 0..bh {
        for bx in 0..bw {
            if mask.get(bx, by) == 0 {
                continue;
            }
            let t = orientation.get(bx, by);
            let (s, c) = t.sin_cos();
            let (cx, cy) = ((bx * BLOCK + BLOCK / 2) as f32, (by * BLOCK + BLOCK / 2) as f32);
            let mut sig = [0f32; 32];
            for (k, slot) in sig.iter_mut().enumerate() {
                let u = k as f32 - 15.5;
                let mut acc = 0.0;
                for v in -3..=3 {
                    let v = v as f32 * 2.0;
                    acc += src.bilinear(cx - u * s + v * c, cy + u * c + v * s, 0.0);
                }
                *slot = acc;
            }
            // peaks of the smoothed signature
            let mut peaks = Vec::new();
            for k in 1..31 {
                let (a, b, d) = (
                    sig.get(k - 1).copied().unwrap_or(0.0),
                    sig.get(k).copied().unwrap_or(0.0),
                    sig.get(k + 1).copied().unwrap_or(0.0),
                );
                if b > a && b >= d {
                    peaks.push(k as f32);
                }
            }
            if peaks.len() >= 2 {
                let p = (peaks.last().copied().unwrap_or(0.0) - peaks.first().copied().unwrap_or(0.0))
                    / (peaks.len() - 1) as f32;
                if (5.0..=15.0).contains(&p) {
                    period.set(bx, by, p);
                    good.push(p);
                }
            }
        }
    }
    good.sort_by(f32::total_cmp);
    let median = good.get(good.len() / 2).copied().unwrap_or(9.0);
    // fill and smooth: local mean of valid neighbours, else the median
    let raw_period = period.clone();
    for by in 0..bh {
        for bx in 0..bw {
            let (mut s, mut n) = (0f32, 0f32);
            for oy in -2..=2 {
                for ox in -2..=2 {
                    let v = raw_period.at(bx as isize + ox, by as isize + oy);
                    if v > 0.0 {
                        s += v;
                        n += 1.0;
                    }
                }
            }
            let p = if n >= 3.0 { s / n } else { median };
            period.set(bx, by, p.clamp(PMIN, PMIN + PSTEP * (NPER - 1) as f32));
        }
    }

    // Contextual Gabor enhancement of locally normalised pixels.
    let kernels = bank();
    let mut enhanced = Grid::new(w, h, 0f32);
    let normed = Grid::from_fn(w, h, |x, y| {
        let (bx, by) = (x / BLOCK, y / BLOCK);
        (src.get(x, y) - mean.get(bx, by)) / std.get(bx, by).max(1.0)
    });
    for by in 0..bh {
        for bx in 0..bw {
            if mask.get(bx, by) == 0 {
                continue;
            }
            let d = ((orientation.get(bx, by) / PI * NDIR as f32).round() as usize) % NDIR;
            let p = (((period.get(bx, by) - PMIN) / PSTEP).round() as usize).min(NPER - 1);
            let k0 = (p * NDIR + d) * KS * KS;
            let kernel = kernels.get(k0..k0 + KS * KS).unwrap_or(&[]);
            for y in by * BLOCK..((by + 1) * BLOCK).min(h) {
                for x in bx * BLOCK..((bx + 1) * BLOCK).min(w) {
                    let mut acc = 0f32;
                    if x >= KR && y >= KR && x + KR < w && y + KR < h {
                        for (ky, krow) in kernel.chunks_exact(KS).enumerate() {
                            let start = (y + ky - KR) * w + x - KR;
                            if let Some(srow) = normed.data.get(start..start + KS) {
                                acc += srow.iter().zip(krow).map(|(a, b)| a * b).sum::<f32>();
                            }
                        }
                    }
                    enhanced.set(x, y, acc);
                }
            }
        }
    }

    // Binarise, thin, detect.
    let binary = Grid::from_fn(w, h, |x, y| u8::from(enhanced.get(x, y) > 0.0));
    let skel = skeleton::thin(&binary);
    // Valid area: foreground blocks whose 5x5 block neighbourhood is foreground... relaxed to distance ≥ 1
    // block from the border of the mask (erosion by one block, plus one more for the image edge).
    let eroded = Grid::from_fn(bw, bh, |bx, by| {
        let mut all = true;
        for oy in -1..=1 {
            for ox in -1..=1 {
                all &= mask.at(bx as isize + ox, by as isize + oy) != 0;
            }
        }
        u8::from(all)
    });
    let valid = |x: usize, y: usize| eroded.get(x / BLOCK, y / BLOCK) != 0;
    let mut minutiae = skeleton::minutiae(&skel, &valid, &skeleton::CleanParams::default());
    // Quality from coherence of the block and its distance from the mask border (eroded twice = deeper).
    for m in &mut minutiae {
        let (bx, by) = ((m.x as usize) / BLOCK, (m.y as usize) / BLOCK);
        let mut depth = 0u32;
        for r in 1..=3isize {
            let mut all = true;
            for oy in -r..=r {
                for ox in -r..=r {
                    all &= mask.at(bx as isize + ox, by as isize + oy) != 0;
                }
            }
            if all {
                depth += 1;
            }
        }
        let coh = coherence.get(bx, by).clamp(0.0, 1.0);
        let q = 100.0 * (0.55 * coh + 0.15 * depth as f32);
        m.quality = q.clamp(1.0, 100.0) as u8;
        m.direction = norm_angle(m.direction);
    }
    Ok(Extraction {
        minutiae,
        analysis: Analysis {
            width: w,
            height: h,
            mask,
            orientation,
            coherence,
            period,
            enhanced,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_sizes_and_blank_images() {
        assert!(matches!(
            extract(&GrayImage::new(50, 400)),
            Err(ExtractError::BadSize { width: 50, .. })
        ));
        assert!(matches!(
            extract(&GrayImage::from_pixel(300, 300, image::Luma([255]))),
            Err(ExtractError::NoFingerprint { .. })
        ));
        assert!(matches!(
            extract(&GrayImage::from_pixel(300, 300, image::Luma([0]))),
            Err(ExtractError::NoFingerprint { .. })
        ));
    }
}
