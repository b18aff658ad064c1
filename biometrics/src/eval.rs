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
    fn overlapping_scores() {
        // one genuine below one impostor
        let m = metrics(&[0.9, 0.8, 0.25, 0.7], &[0.1, 0.3, 0.2, 0.15]).unwrap();
        assert!(m.eer > 0.0 && m.eer <= 0.25, "{}", m.eer);
        assert_eq!(m.zero_fmr, 0.25);
        assert!(metrics(&[], &[0.1]).is_none());
    }
}
