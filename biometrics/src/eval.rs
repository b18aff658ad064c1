//! Verification metrics (ISO/IEC 19795-1 style) from genuine and impostor score lists, and the FVC-style
//! synthetic evaluation used by `tessera-bio eval`.
#![allow(clippy::cast_possible_truncation, reason = "counts and ranks are small")]

/// Error rates of a verification experiment (fractions, not percent).
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Number of genuine comparisons.
    pub genuine: usize,
    /// Number of impostor comparisons.
    pub impostor: usize,
    /// Equal error rate (FVC definition: mean of FMR and FNMR where they cross).
    pub eer: f64,
    /// False non-match rate at FMR ≤ 1 %.
    pub fnmr_at_fmr_1e2: f64,
    /// False non-match rate at FMR ≤ 0.1 %.
    pub fnmr_at_fmr_1e3: f64,
    /// False non-match rate at FMR ≤ 0.01 %.
    pub fnmr_at_fmr_1e4: f64,
    /// False non-match rate at FMR = 0 (threshold above the best impostor).
    pub zero_fmr: f64,
    /// (threshold, FMR, FNMR) points of the DET curve.
    pub det: Vec<(f64, f64, f64)>,
}

/// Computes the metrics; higher scores mean "more similar". Returns `None` when a list is empty.
pub fn metrics(genuine: &[f64], impostor: &[f64]) -> Option<Metrics> {
    if genuine.is_empty() || impostor.is_empty() {
        return None;
    }
    let mut g: Vec<f64> = genuine.to_vec();
    let mut i: Vec<f64> = impostor.to_vec();
    g.sort_by(f64::total_cmp);
    i.sort_by(f64::total_cmp);
    let (ng, ni) = (g.len() as f64, i.len() as f64);
    // FMR(t) = share of impostors >= t; FNMR(t) = share of genuine < t.
    let fmr = |t: f64| (i.len() - i.partition_point(|&v| v < t)) as f64 / ni;
    let fnmr = |t: f64| g.partition_point(|&v| v < t) as f64 / ng;
    let mut thresholds: Vec<f64> = g.iter().chain(i.iter()).copied().collect();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    if let Some(&last) = thresholds.last() {
        thresholds.push(last + 1e-9);
    }
    let det: Vec<(f64, f64, f64)> = thresholds.iter().map(|&t| (t, fmr(t), fnmr(t))).collect();
    let mut eer = 1.0;
    let mut best_gap = f64::MAX;
    for &(_, a, b) in &det {
        let gap = (a - b).abs();
        if gap < best_gap {
            best_gap = gap;
            eer = (a + b) / 2.0;
        }
    }
    let at = |target: f64| {
        det.iter()
            .filter(|(_, a, _)| *a <= target)
            .map(|(_, _, b)| *b)
            .fold(1.0f64, f64::min)
    };
    Some(Metrics {
        genuine: g.len(),
        impostor: i.len(),
        eer,
        fnmr_at_fmr_1e2: at(0.01),
        fnmr_at_fmr_1e3: at(0.001),
        fnmr_at_fmr_1e4: at(0.0001),
        zero_fmr: at(0.0),
        det,
    })
}

/// Width of the DET plot ([`det_plot`]), pixels.
pub const PLOT_W: u32 = 640;
/// Height of the DET plot, pixels.
pub const PLOT_H: u32 = 480;
const MARGIN_L: i64 = 56;
const MARGIN_B: i64 = 36;
const MARGIN_T: i64 = 12;
const MARGIN_R: i64 = 16;
/// Decades shown: FMR 1e-5..1 (x), FNMR 1e-4..1 (y).
const X_DECADES: f64 = 5.0;
const Y_DECADES: f64 = 4.0;
/// Colour of the DET curve.
pub const CURVE: image::Rgb<u8> = image::Rgb([20, 70, 200]);

/// 3x5 glyphs (rows top to bottom, 3 bits each, high bit left) for axis labels.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        'e' => [0, 7, 7, 4, 7],
        '-' => [0, 0, 7, 0, 0],
        _ => return None,
    })
}

fn put(img: &mut image::RgbImage, x: i64, y: i64, c: image::Rgb<u8>) {
    if let (Ok(x), Ok(y)) = (u32::try_from(x), u32::try_from(y))
        && x < img.width()
        && y < img.height()
    {
        img.put_pixel(x, y, c);
    }
}

fn text(img: &mut image::RgbImage, x: i64, y: i64, s: &str) {
    let ink = image::Rgb([0, 0, 0]);
    for (k, ch) in s.chars().enumerate() {
        let Some(g) = glyph(ch) else { continue };
        for (row, bits) in g.iter().enumerate() {
            for col in 0..3i64 {
                if bits & (4 >> col) != 0 {
                    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                        put(img, x + k as i64 * 8 + col * 2 + dx, y + row as i64 * 2 + dy, ink);
                    }
                }
            }
        }
    }
}

fn line(img: &mut image::RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: image::Rgb<u8>) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    for _ in 0..=(dx - dy) {
        put(img, x, y, c);
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// Draws a DET curve (FNMR against FMR, both on log scales: FMR 1e-5 to 1 on x, FNMR 1e-4 to 1 on y, one
/// grey grid line per decade, labelled) as an RGB image; rates of 0 are drawn on the lower or left edge.
/// Drawn with the `image` crate alone, so plotting adds no dependency to the build.
pub fn det_plot(det: &[(f64, f64, f64)]) -> image::RgbImage {
    let mut img = image::RgbImage::from_pixel(PLOT_W, PLOT_H, image::Rgb([255, 255, 255]));
    let (w, h) = (i64::from(PLOT_W), i64::from(PLOT_H));
    let (x0, x1, y0, y1) = (MARGIN_L, w - MARGIN_R, h - MARGIN_B, MARGIN_T);
    let px = |fmr: f64| {
        let t = (fmr.max(1e-12).log10() + X_DECADES).clamp(0.0, X_DECADES) / X_DECADES;
        x0 + (t * (x1 - x0) as f64).round() as i64
    };
    let py = |fnmr: f64| {
        let t = (fnmr.max(1e-12).log10() + Y_DECADES).clamp(0.0, Y_DECADES) / Y_DECADES;
        y0 - (t * (y0 - y1) as f64).round() as i64
    };
    let grey = image::Rgb([215, 215, 215]);
    for d in 0..=5 {
        let x = px(10f64.powi(d - 5));
        line(&mut img, (x, y0), (x, y1), grey);
        let label = if d == 5 {
            "1".to_owned()
        } else {
            format!("1e-{}", 5 - d)
        };
        text(&mut img, x - 12, y0 + 8, &label);
    }
    for d in 0..=4 {
        let y = py(10f64.powi(d - 4));
        line(&mut img, (x0, y), (x1, y), grey);
        let label = if d == 4 {
            "1".to_owned()
        } else {
            format!("1e-{}", 4 - d)
        };
        text(&mut img, 8, y - 5, &label);
    }
    let black = image::Rgb([0, 0, 0]);
    line(&mut img, (x0, y0), (x1, y0), black);
    line(&mut img, (x0, y0), (x0, y1), black);
    // EER diagonal (FMR = FNMR), light red.
    line(
        &mut img,
        (px(1e-4), py(1e-4)),
        (px(1.0), py(1.0)),
        image::Rgb([240, 170, 170]),
    );
    let mut prev: Option<(i64, i64)> = None;
    for &(_, fmr, fnmr) in det {
        let p = (px(fmr), py(fnmr));
        if let Some(q) = prev {
            // Thick line: the point and its right and lower neighbours.
            for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
                line(&mut img, (q.0 + dx, q.1 + dy), (p.0 + dx, p.1 + dy), CURVE);
            }
        }
        prev = Some(p);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_scores_have_zero_errors() {
        let m = metrics(&[0.8, 0.9, 0.7], &[0.1, 0.2, 0.3, 0.2]).unwrap();
        assert_eq!(m.eer, 0.0);
        assert_eq!(m.zero_fmr, 0.0);
    }

    #[test]
    fn det_plot_draws_the_curve_inside_the_axes() {
        let m = metrics(&[0.9, 0.8, 0.25, 0.7, 0.6], &[0.1, 0.3, 0.2, 0.15, 0.05, 0.5]).unwrap();
        let img = det_plot(&m.det);
        assert_eq!((img.width(), img.height()), (PLOT_W, PLOT_H));
        let curve: Vec<(u32, u32)> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| **p == CURVE)
            .map(|(x, y, _)| (x, y))
            .collect();
        assert!(curve.len() > 100, "{} curve pixels", curve.len());
        // FMR 1 with FNMR 0 sits at the lower right corner; FMR 0 with FNMR 1 at the upper left.
        assert!(curve.iter().any(|&(x, y)| x >= PLOT_W - 20 && y >= PLOT_H - 40));
        assert!(curve.iter().any(|&(x, y)| x <= 60 && y <= 16));
        assert!(curve.iter().all(|&(x, y)| x >= 50 && y <= PLOT_H - 30));
        // An empty curve draws only axes.
        assert!(!det_plot(&[]).pixels().any(|p| *p == CURVE));
    }

    #[test]
    fn overlapping_scores() {
        // one genuine below one impostor
        let m = metrics(&[0.9, 0.8, 0.25, 0.7], &[0.1, 0.3, 0.2, 0.15]).unwrap();
        assert!(m.eer > 0.0 && m.eer <= 0.25, "{}", m.eer);
        assert_eq!(m.zero_fmr, 0.25);
        assert!(metrics(&[], &[0.1]).is_none());
    }
}
