//! Score calibration: raw 1:1 matcher scores ([`crate::mcc`], 0-1) to an estimated false-match rate, and the
//! per-person fusion of several fingers.
//!
//! The table [`TABLE`] holds, for decreasing FMR, the smallest score whose share of impostor comparisons
//! scoring at least that much is the FMR. It was measured with `tessera-bio eval --impressions 2 --det`
//! on extracted synthetic images: 200 persons of the standard profile (ids from 6,000,000) and 200 of the
//! hard profile (ids from 7,000,000), 19,900 impostor comparisons each, mixed half and half; these persons
//! are disjoint from every evaluation set. Between table points the FMR is interpolated log-linearly;
//! beyond the last point the last segment's slope is extrapolated down to [`FMR_FLOOR`]. (The fast
//! minutiae-level generator gives lighter impostor tails, FMR 1e-4 at 0.027 instead of 0.061 over 10^6
//! comparisons, so it is not used for calibration.)
//!
//! These are estimates for *synthetic* fingers: real populations have look-alike structure that synthetic
//! impostors lack, so a deployment must re-measure the table on its own impostor scores.
//!
//! Fusion ([`fuse`]): the per-finger FMRs of one person are combined with Fisher's method: under the
//! impostor hypothesis each finger's FMR is uniform on (0, 1) and independent, so
//! `t = Π fmr_i` has `P(T ≤ t) = t Σ_{i<k} (-ln t)^i / i!` for `k` fingers. That probability is the
//! Fisher estimate. Fisher's method dilutes one very strong finger among many that do not match, so the
//! estimate is `2 min(fisher, k min_i fmr_i)`: the smaller of Fisher's value and the best finger's FMR
//! corrected for having picked the best of `k` (Bonferroni), doubled to pay for choosing between the two.
//! One strong finger or several moderately good ones both make a match.
#![allow(clippy::cast_possible_truncation, reason = "table scores are small")]

/// Smallest FMR the calibration reports (one in ten billion); estimates are clamped here.
pub const FMR_FLOOR: f64 = 1e-10;

/// (score, FMR): the share of synthetic impostor comparisons scoring at least `score`. Decreasing FMR,
/// increasing score. Measured on extracted images (see the module docs); the last point rests on 2 of
/// 39,800 impostor comparisons, and beyond it the last segment's slope (one decade per 0.029) is
/// extrapolated, which is conservative (the observed tail falls faster).
pub const TABLE: &[(f32, f64)] = &[
    (0.000, 1.0),
    (0.0167, 5e-1),
    (0.0197, 2e-1),
    (0.0220, 1e-1),
    (0.0263, 3e-2),
    (0.0307, 1e-2),
    (0.0359, 3e-3),
    (0.0415, 1e-3),
    (0.0476, 3e-4),
    (0.0614, 1e-4),
];

/// Estimated FMR of a raw 1:1 score (per finger comparison), in [[`FMR_FLOOR`], 1].
pub fn fmr_for_score(score: f32) -> f64 {
    let score = if score.is_finite() { score } else { 0.0 };
    let mut prev: Option<(f32, f64)> = None;
    for &(s, f) in TABLE {
        if score < s {
            return match prev {
                None => 1.0,
                Some((ps, pf)) => {
                    let t = f64::from((score - ps) / (s - ps).max(1e-6));
                    (pf.ln() + t * (f.ln() - pf.ln())).exp()
                }
            };
        }
        prev = Some((s, f));
    }
    // Beyond the table: extrapolate the last segment's log slope.
    let n = TABLE.len();
    match (TABLE.get(n.wrapping_sub(2)), TABLE.last()) {
        (Some(&(s0, f0)), Some(&(s1, f1))) if s1 > s0 => {
            let slope = (f1.ln() - f0.ln()) / f64::from(s1 - s0);
            (f1.ln() + slope * f64::from(score - s1)).exp().max(FMR_FLOOR)
        }
        _ => FMR_FLOOR,
    }
}

/// The smallest raw score whose estimated FMR is at most `fmr` (for example `threshold_for_fmr(1e-4)`).
pub fn threshold_for_fmr(fmr: f64) -> f32 {
    let target = fmr.clamp(FMR_FLOOR, 1.0);
    // fmr_for_score is non-increasing: bisect.
    let (mut lo, mut hi) = (0.0f32, 1.0f32);
    if fmr_for_score(hi) > target {
        return hi;
    }
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if fmr_for_score(mid) <= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Person-level FMR estimate from the per-finger FMRs of one comparison of two persons (Fisher's method;
/// see the module docs). An empty slice gives 1; one finger gives its own FMR.
pub fn fuse(finger_fmrs: &[f64]) -> f64 {
    let k = finger_fmrs.len();
    if k == 0 {
        return 1.0;
    }
    let min = finger_fmrs
        .iter()
        .fold(1.0f64, |m, f| m.min(f.clamp(FMR_FLOOR, 1.0)));
    let ln_t: f64 = finger_fmrs.iter().map(|f| f.clamp(FMR_FLOOR, 1.0).ln()).sum();
    let t = ln_t.exp();
    let x = -ln_t;
    let mut term = 1.0;
    let mut sum = 1.0;
    for i in 1..k {
        term *= x / i as f64;
        sum += term;
    }
    let fisher = t * sum;
    let best = min * k as f64;
    if k == 1 {
        return min;
    }
    (2.0 * fisher.min(best)).clamp(FMR_FLOOR.powi(2), 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_monotone_and_lookup_inverts() {
        for w in TABLE.windows(2) {
            assert!(w[0].0 < w[1].0 && w[0].1 > w[1].1, "{w:?}");
        }
        assert_eq!(fmr_for_score(0.0), 1.0);
        assert!(fmr_for_score(1.0) <= 1e-6);
        assert!(fmr_for_score(f32::NAN) == 1.0);
        for target in [1e-2, 1e-3, 1e-4, 1e-5, 1e-6] {
            let t = threshold_for_fmr(target);
            let f = fmr_for_score(t);
            assert!(f <= target * 1.0001 && f > target * 0.9, "{target}: {t} -> {f}");
        }
        let mut last = 2.0;
        for i in 0..=100 {
            let f = fmr_for_score(i as f32 / 100.0);
            assert!(f <= last);
            last = f;
        }
    }

    #[test]
    fn fisher_fusion() {
        assert!(fuse(&[1e-3, 1.0]) <= 4.01e-3 && fuse(&[1e-3, 1.0]) >= 1e-3);
        assert_eq!(fuse(&[]), 1.0);
        assert!((fuse(&[0.01]) - 0.01).abs() < 1e-12);
        // Ten impostor fingers with median FMRs stay unremarkable.
        let f = fuse(&[0.5; 10]);
        assert!(f > 0.5, "{f}");
        // One very strong finger still counts among nine that do not match.
        let mut v = vec![0.5; 9];
        v.push(1e-8);
        assert!(fuse(&v) < 1e-4, "{}", fuse(&v));
        // Several moderately good fingers add up.
        assert!(fuse(&[1e-2; 6]) < 1e-6, "{}", fuse(&[1e-2; 6]));
    }
}
