//! Cross-checks at enrolment: the applicant's own fingers against each other (the same finger presented
//! twice is a fraud signal) and the applicant against the operator (an operator enrolling themself).
//!
//! Both work on minutiae and use the calibrated 1:1 matcher ([`crate::mcc`], [`crate::calibration`]).
//!
//! ```
//! use tessera_biometrics::cross_check;
//! use tessera_biometrics::FingerPosition;
//! use tessera_biometrics::synth::SyntheticPerson;
//! let p = SyntheticPerson::new(7);
//! let index = p.finger_minutiae(FingerPosition::RightIndex, 0);
//! let again = p.finger_minutiae(FingerPosition::RightIndex, 1); // presented again as the middle finger
//! let ring = p.finger_minutiae(FingerPosition::RightRing, 0);
//! let dups = cross_check::duplicate_fingers(&[
//!     (FingerPosition::RightIndex, &index[..]),
//!     (FingerPosition::RightMiddle, &again[..]),
//!     (FingerPosition::RightRing, &ring[..]),
//! ]);
//! assert_eq!(dups.len(), 1);
//! assert_eq!((dups[0].first, dups[0].second), (FingerPosition::RightIndex, FingerPosition::RightMiddle));
//! ```

#![allow(clippy::cast_possible_truncation, reason = "scores are small")]

use crate::calibration;
use crate::iso19794_4::FingerPosition;
use crate::mcc::{Matcher, MccTemplate};
use crate::minutiae::Minutia;

/// Per-pair FMR below which two of the applicant's fingers are flagged as the same finger. With 45 pairs
/// in a ten-finger enrolment this flags about 1 enrolment in 20,000 by chance (synthetic calibration).
pub const DUPLICATE_FMR: f64 = 1e-6;
/// Person-level FMR below which the applicant is taken to be the operator.
pub const PERSON_MATCH_FMR: f64 = 1e-6;

/// Two of the applicant's fingers that look like the same finger.
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicatePair {
    /// Position of the first finger (in input order).
    pub first: FingerPosition,
    /// Position of the second finger.
    pub second: FingerPosition,
    /// Raw 1:1 score.
    pub score: f32,
    /// Estimated FMR of that score.
    pub fmr_estimate: f64,
}

/// The applicant matches another person (for example the operator).
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Person-level FMR estimate (fused over the compared fingers, corrected for the number of pairings
    /// tried).
    pub fmr_estimate: f64,
    /// `-log10(fmr_estimate)`.
    pub score: f32,
    /// Compared pairs (applicant position, other position, raw score), best first.
    pub pairs: Vec<(FingerPosition, FingerPosition, f32)>,
}

/// All pairs of the applicant's fingers whose estimated FMR is at most [`DUPLICATE_FMR`], best first.
pub fn duplicate_fingers(fingers: &[(FingerPosition, &[Minutia])]) -> Vec<DuplicatePair> {
    duplicate_fingers_at(fingers, DUPLICATE_FMR)
}

/// [`duplicate_fingers`] with a chosen per-pair FMR threshold.
pub fn duplicate_fingers_at(fingers: &[(FingerPosition, &[Minutia])], max_fmr: f64) -> Vec<DuplicatePair> {
    let templates: Vec<MccTemplate> = fingers.iter().map(|(_, m)| MccTemplate::new(m)).collect();
    let mut out = Vec::new();
    for (i, ((pa, _), ta)) in fingers.iter().zip(&templates).enumerate() {
        let mut m = Matcher::new(ta.clone());
        for ((pb, _), tb) in fingers.iter().zip(&templates).skip(i + 1) {
            // Both directions: the matcher is nearly but not exactly symmetric.
            let s = m.compare(tb);
            let f = calibration::fmr_for_score(s);
            if f <= max_fmr {
                out.push(DuplicatePair {
                    first: *pa,
                    second: *pb,
                    score: s,
                    fmr_estimate: f,
                });
            }
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

/// Compares the applicant with another person (every finger against every finger, since an operator may
/// present any finger) and returns a [`Match`] when the person-level FMR estimate is at most
/// [`PERSON_MATCH_FMR`].
///
/// Each applicant finger keeps its best pairing; its FMR is multiplied by the number of the other person's
/// fingers tried (Bonferroni correction for picking the best of several), then all applicant fingers are
/// fused with Fisher's method ([`calibration::fuse`]).
pub fn matches_person(
    applicant: &[(FingerPosition, &[Minutia])],
    other: &[(FingerPosition, &[Minutia])],
) -> Option<Match> {
    let others: Vec<MccTemplate> = other.iter().map(|(_, m)| MccTemplate::new(m)).collect();
    if others.is_empty() || applicant.is_empty() {
        return None;
    }
    let tries = others.len() as f64;
    let mut pairs = Vec::new();
    let mut fmrs = Vec::new();
    for (pa, ma) in applicant {
        let mut m = Matcher::new(MccTemplate::new(ma));
        let mut best: Option<(FingerPosition, f32)> = None;
        for ((pb, _), tb) in other.iter().zip(&others) {
            let s = m.compare(tb);
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((*pb, s));
            }
        }
        if let Some((pb, s)) = best {
            pairs.push((*pa, pb, s));
            fmrs.push((calibration::fmr_for_score(s) * tries).min(1.0));
        }
    }
    let fmr = calibration::fuse(&fmrs);
    pairs.sort_by(|a, b| b.2.total_cmp(&a.2));
    (fmr <= PERSON_MATCH_FMR).then(|| Match {
        fmr_estimate: fmr,
        score: (-fmr.log10()) as f32,
        pairs,
    })
}
