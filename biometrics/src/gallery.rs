//! 1:N identification: a gallery of persons (up to ten fingers each), persisted to one memory-mapped file,
//! searched in two stages with per-person fusion.
//!
//! ```no_run
//! use tessera_biometrics::gallery::{Gallery, Probe};
//! use tessera_biometrics::FingerPosition;
//! # let minutiae: Vec<tessera_biometrics::minutiae::Minutia> = Vec::new();
//! let mut g = Gallery::create("dedupe.tgal")?;
//! g.insert("10001100770000120251129093000", &[(FingerPosition::RightIndex, &minutiae[..])])?;
//! g.save()?;
//! let probe = Probe::new(&[(FingerPosition::RightIndex, &minutiae[..])]);
//! for c in g.search(&probe, 10) {
//!     println!("{} score {:.1} FMR {:e}", c.person, c.score, c.fmr_estimate);
//! }
//! # Ok::<(), tessera_biometrics::gallery::GalleryError>(())
//! ```
//!
//! **Search.** (1) *Index stage*: every finger record carries a [`SIG_BINS`]-byte signature, a histogram of
//! its minutia pairs ([`pair_histogram`]: pair length and the two minutia directions relative to the pair,
//! invariant to rotation and translation, each pair's weight spread linearly over the neighbouring bins so
//! that jitter and direction noise shift weight instead of breaking a key), square-rooted and scaled to unit
//! length ([`index_vector`]). Two fingers' similarity is the cosine of their vectors *whitened* by the
//! gallery's per-bin mean and deviation (`IndexStats`: the pair structure that every print of a pattern class
//! shares would otherwise dominate); the probe's fingers' cosines are summed per person (same finger
//! positions only). The scan is an integer dot product of 12-bit probe weights with the stored bytes, over
//! compact signatures stored apart from the templates, and needs no posting lists, so inserts and deletes
//! stay trivial. (Earlier layouts used a Bloom-style set of quantised pair keys, which lost most mates of
//! poor captures: a key breaks when one angle crosses a bin edge; MCC-LSH keys on our 384-bit cylinders ranked
//! mates worse still. See `docs/biometrics-evaluation.md`.) For probes of one or two fingers the index stage
//! is a cascade: the histogram scan keeps a wider share ([`SearchOptions::coarse_share`], default
//! [`auto_coarse_share`]: 20 % for one finger and for two), and a coarse MCC comparison
//! ([`mcc::Matcher::coarse_ref`]: the candidate's 24 cylinders nearest its centre against all of the probe's,
//! the same bit-plane local similarities as the full matcher, greedy one-to-one pairs, and instead of the
//! relaxation a one-step check of which pairs agree on one rigid transform; about 0.46x a full comparison)
//! re-ranks them, its scores summed over the shared finger positions: poor single captures rank
//! their mates far better by cylinders than by pair histograms. (2) *Match stage*: only the best
//! [`SearchOptions::penetration`] share of persons (default by the number of probe fingers,
//! [`auto_penetration`]: 5 % and 2 % for one and two fingers) is compared with the full MCC matcher, finger
//! by finger (same positions), and the finger scores are fused per person with
//! [`calibration::fuse`] (Fisher's method on the calibrated per-finger FMRs, guarded by the best finger).
//! Candidates are ranked by the fused score `-log10(person FMR estimate)`. Both stages run in parallel
//! with rayon.
//!
//! **File** (little-endian `u64` words; frozen per version: a new layout gets a new magic). The index
//! stage reads only the finger heads and the signatures, which are stored contiguously, apart from the
//! cylinder records that only the match stage reads:
//!
//! | words | content |
//! |---|---|
//! | 8 | header: magic `"TSGALRY3"`, parameters (`NS`, `ND`, max cylinders, signature words, histogram distance and angle bins), person count, finger count, 4 reserved (0) |
//! | 10 per person | id length (1-64) and finger count (1-10) in word 0, index of the first finger in word 1, id bytes (UTF-8, zero padded) in words 2-9 |
//! | 1 per finger | finger head: person index (bits 0-31), position code (32-39), cylinder count (40-47), reserved (48-63, 0) |
//! | [`SIG_WORDS`] per finger | signature: quantisation scale (`f32` in 0-1, low half of word 0; high half 0), then [`SIG_BINS`] bytes (`value = scale * byte`), unused bytes 0 |
//! | [`RECORD_WORDS`] per finger | cylinder record: points, validity, cylinder bits (see [`crate::mcc`]), unused slots 0 |
//!
//! [`Gallery::open`] maps the file ([`memmap2`]) and validates every field before use, as for any
//! untrusted input ([`GalleryError::Format`] names the byte offset and the field). [`Gallery::insert`] and
//! [`Gallery::remove`] change the in-memory view; the whitening statistics are computed when the file is
//! opened (one parallel pass over the signatures) and by [`Gallery::insert_batch`] when the gallery has more
//! than doubled since. [`Gallery::save`] writes a complete new file next to
//! the old one and renames it over it, so a crash leaves the old or the new gallery, never a mix.
#![allow(
    clippy::cast_possible_truncation,
    reason = "record fields are range-checked before narrowing"
)]

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use thiserror::Error;

use crate::calibration;
use crate::iso19794_4::FingerPosition;
use crate::mcc::{self, CIRCLE, MAX_MINUTIAE, MccTemplate, ND, NS, TemplateRef};
use crate::minutiae::Minutia;

/// Bins of the index signature: the minutia-pair histogram's bins folded by its symmetry (a pair seen from
/// either end): `nd * (na * na + na) / 2` for [`HistParams::DEFAULT`].
pub const SIG_BINS: usize = {
    let h = HistParams::DEFAULT;
    h.nd * (h.na * h.na + h.na) / 2
};
/// Signature size in `u64` words: the quantisation scale (an `f32` in the low half of word 0), then
/// [`SIG_BINS`] bytes.
pub const SIG_WORDS: usize = 1 + SIG_BINS.div_ceil(8);
/// Words of one finger's cylinder record (points, validity, bits; [`MAX_MINUTIAE`] slots).
pub const RECORD_WORDS: usize = MAX_MINUTIAE * (2 + ND);
/// Words of one finger held in memory: head, signature, record.
const OWNED_WORDS: usize = 1 + SIG_WORDS + RECORD_WORDS;
const PERSON_WORDS: usize = 10;
const HEADER_WORDS: usize = 8;
/// Longest person id, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Most fingers per person.
pub const MAX_FINGERS: usize = 10;
const MAGIC: u64 = u64::from_le_bytes(*b"TSGALRY3");
const PARAMS: u64 = (NS as u64)
    | ((ND as u64) << 8)
    | ((MAX_MINUTIAE as u64) << 16)
    | ((SIG_WORDS as u64) << 32)
    | ((HistParams::DEFAULT.nd as u64) << 48)
    | ((HistParams::DEFAULT.na as u64) << 56);
const PTS_OFF: usize = 0;
const VALID_OFF: usize = PTS_OFF + MAX_MINUTIAE;
const BITS_OFF: usize = VALID_OFF + MAX_MINUTIAE;

/// Why a gallery could not be opened, saved or changed.
#[derive(Debug, Error)]
pub enum GalleryError {
    /// Reading or writing the gallery file failed.
    #[error("gallery file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not a valid gallery: the field at `offset` (bytes from the start) is wrong. The file is
    /// damaged or was written by another version; restore it from a backup or rebuild it from the templates.
    #[error("gallery file {path}: invalid {field} at byte {offset}: {detail}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Byte offset of the field.
        offset: usize,
        /// Which field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A person id is empty, longer than [`MAX_ID_LEN`] bytes or holds control characters.
    #[error("invalid person id ({len} bytes): ids are 1-{MAX_ID_LEN} bytes without control characters")]
    PersonId {
        /// Length of the rejected id.
        len: usize,
    },
    /// The fingers of an insert are unusable: none, more than ten, a slap image or a position twice.
    #[error("invalid fingers for a gallery person: {0}")]
    Fingers(String),
}

/// A person id and its fingers, for [`Gallery::insert_batch`].
pub type PersonFingers = (String, Vec<(FingerPosition, Vec<Minutia>)>);

/// Options of [`Gallery::search_with`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    /// Share of the gallery's persons that the index stage passes to the full matcher (0-1; 1 = exhaustive);
    /// `None` (the default) takes [`auto_penetration`] of the probe's number of fingers.
    pub penetration: Option<f64>,
    /// Share of the gallery's persons that the histogram scan passes to the coarse re-ranking step (the
    /// cascade, see the module docs), which passes the best `penetration` share of them on; a share not
    /// above the penetration skips the step. `None` (the default) takes [`auto_coarse_share`] of the
    /// probe's number of fingers.
    pub coarse_share: Option<f64>,
    /// The index stage passes at least this many persons (small galleries are searched exhaustively).
    pub min_shortlist: usize,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            penetration: None,
            coarse_share: None,
            min_shortlist: 200,
        }
    }
}

impl SearchOptions {
    /// Persons passed to the full matcher and to the coarse step for a probe of `fingers` fingers in a
    /// gallery of `live` persons, returning at least `top_k`: `(shortlist, coarse)`; the coarse step runs when
    /// `coarse > shortlist`.
    pub fn lengths(&self, fingers: usize, live: usize, top_k: usize) -> (usize, usize) {
        let share = |s: f64| (s.clamp(0.0, 1.0) * live as f64).ceil() as usize;
        let penetration = self.penetration.unwrap_or_else(|| auto_penetration(fingers));
        let shortlist = share(penetration).max(self.min_shortlist).max(top_k).min(live);
        let coarse = share(self.coarse_share.unwrap_or_else(|| auto_coarse_share(fingers))).min(live);
        (shortlist, coarse)
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The gallery person id.
    pub person: String,
    /// Fused score: `-log10(fmr_estimate)` (higher = more likely the same person; 4 means FMR 1e-4).
    pub score: f32,
    /// Estimated probability that a different person scores this high (per person comparison).
    pub fmr_estimate: f64,
    /// Raw 1:1 score per compared finger position.
    pub fingers: Vec<(FingerPosition, f32)>,
}

/// What a search did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchStats {
    /// Time spent in the index stage (zero when the search was exhaustive).
    pub index_time: std::time::Duration,
    /// Time spent in the match stage (full matcher and fusion).
    pub match_time: std::time::Duration,
    /// Live persons in the gallery.
    pub persons: usize,
    /// Persons the coarse step re-ranked (0 when it did not run); its time counts in `index_time`.
    pub coarse_scored: usize,
    /// Persons passed to the full matcher.
    pub shortlisted: usize,
    /// 1:1 finger comparisons made.
    pub comparisons: usize,
}

#[derive(Debug, Clone)]
struct ProbeFinger {
    position: FingerPosition,
    template: MccTemplate,
    /// [`index_vector`] of the template's points.
    vector: [f32; SIG_BINS],
}

/// A search probe: the fingers of one person, prepared once.
#[derive(Debug, Clone)]
pub struct Probe {
    fingers: Vec<ProbeFinger>,
}

impl Probe {
    /// Prepares the probe's fingers. Plain thumbs (codes 11, 12) count as thumbs; slap codes and
    /// repeated positions are ignored (the first one is kept).
    pub fn new(fingers: &[(FingerPosition, &[Minutia])]) -> Self {
        let mut out: Vec<ProbeFinger> = Vec::new();
        for &(pos, ms) in fingers {
            let Some(position) = normalise(pos) else { continue };
            if out.iter().any(|f| f.position == position) {
                continue;
            }
            let template = MccTemplate::new(ms);
            let pts: Vec<(f32, f32, f32)> = template
                .view()
                .pts
                .iter()
                .map(|&p| mcc::unpack_point(p))
                .collect();
            out.push(ProbeFinger {
                position,
                vector: index_vector(&pts),
                template,
            });
        }
        Self { fingers: out }
    }

    /// Number of usable fingers.
    pub fn len(&self) -> usize {
        self.fingers.len()
    }

    /// True when no finger is usable.
    pub fn is_empty(&self) -> bool {
        self.fingers.is_empty()
    }

    /// One full matcher per probe finger, in finger order (the probe's slots).
    fn matchers(&self) -> Vec<mcc::Matcher> {
        self.fingers
            .iter()
            .map(|f| mcc::Matcher::new(f.template.clone()))
            .collect()
    }
}

fn normalise(pos: FingerPosition) -> Option<FingerPosition> {
    match pos {
        FingerPosition::PlainRightThumb => Some(FingerPosition::RightThumb),
        FingerPosition::PlainLeftThumb => Some(FingerPosition::LeftThumb),
        p if p.is_single_finger() => Some(p),
        _ => None,
    }
}

/// Bins of the index's minutia-pair histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistParams {
    /// Distance bins over `rmin..rmax`.
    pub nd: usize,
    /// Bins per turn of each of the two relative angles.
    pub na: usize,
    /// Shortest pair (px).
    pub rmin: f32,
    /// Longest pair (px).
    pub rmax: f32,
}

impl HistParams {
    /// The gallery's bins.
    pub const DEFAULT: Self = Self {
        nd: 8,
        na: 12,
        rmin: 12.0,
        rmax: 160.0,
    };

    /// Number of bins (`nd * na * na`).
    pub fn dim(&self) -> usize {
        self.nd * self.na * self.na
    }
}

/// The minutia-pair histogram of a finger's points `(x, y, direction)`: every ordered pair (i, j) at distance
/// `rmin..rmax` adds weight 1 at (distance, direction of i and of j relative to the segment i→j), spread
/// over the 2 x 2 x 2 nearest bin centres (linear in each coordinate, circular in the angles), so jitter and
/// direction noise move weight between neighbouring bins instead of flipping a key.
pub fn pair_histogram(pts: &[(f32, f32, f32)], hp: &HistParams) -> Vec<f32> {
    use std::f32::consts::{PI, TAU};
    let (nd, na) = (hp.nd.max(1), hp.na.max(1));
    let mut h = vec![0f32; nd * na * na];
    let (r2min, r2max) = (hp.rmin * hp.rmin, hp.rmax * hp.rmax);
    let d_scale = nd as f32 / (hp.rmax - hp.rmin).max(1e-3);
    let a_scale = na as f32 / TAU;
    // Two neighbouring bins and weights of a linear (clamped) coordinate.
    let lin = |x: f32| -> [(usize, f32); 2] {
        let f = (x - 0.5).clamp(0.0, (nd - 1) as f32);
        let b0 = f as usize;
        let w1 = f - b0 as f32;
        [(b0, 1.0 - w1), ((b0 + 1).min(nd - 1), w1)]
    };
    // Two neighbouring bins and weights of a circular coordinate (angle in radians, any turn).
    let circ = |a: f32| -> [(usize, f32); 2] {
        let f = (a * a_scale - 0.5).rem_euclid(na as f32);
        let b0 = (f as usize).min(na - 1);
        let w1 = (f - b0 as f32).clamp(0.0, 1.0);
        [(b0, 1.0 - w1), ((b0 + 1) % na, w1)]
    };
    let mut add = |d: f32, ai: f32, aj: f32| {
        let (dd, ia, ja) = (lin((d - hp.rmin) * d_scale), circ(ai), circ(aj));
        for &(bd, wd) in &dd {
            for &(ba, wa) in &ia {
                for &(bb, wb) in &ja {
                    if let Some(c) = h.get_mut((bd * na + ba) * na + bb) {
                        *c += wd * wa * wb;
                    }
                }
            }
        }
    };
    for (i, a) in pts.iter().enumerate() {
        for b in pts.iter().skip(i + 1) {
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let d2 = dx * dx + dy * dy;
            if d2 < r2min || d2 > r2max {
                continue;
            }
            let seg = mcc::fast_atan2(dy, dx);
            let d = d2.sqrt();
            add(d, a.2 - seg, b.2 - seg);
            add(d, b.2 - seg - PI, a.2 - seg - PI);
        }
    }
    h
}

/// Compressed bin of each full histogram bin `(d * na + a) * na + b`: the pair seen from its other end adds
/// the same weight at `(d, b + na/2, a + na/2)` (both directions turn by π with the segment), so the two
/// bins always hold equal values and are stored once (their sum).
fn fold_table() -> &'static [u16] {
    static TABLE: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let h = HistParams::DEFAULT;
        let (nd, na) = (h.nd, h.na);
        let mut t = vec![u16::MAX; h.dim()];
        let mut next = 0u16;
        for d in 0..nd {
            for a in 0..na {
                for b in 0..na {
                    let i = (d * na + a) * na + b;
                    let j = (d * na + (b + na / 2) % na) * na + (a + na / 2) % na;
                    let id = match t.get(j) {
                        Some(&k) if j < i && k != u16::MAX => k,
                        _ => {
                            next += 1;
                            next - 1
                        }
                    };
                    if let Some(slot) = t.get_mut(i) {
                        *slot = id;
                    }
                }
            }
        }
        t
    })
}

/// The index vector of a finger's points: the folded pair histogram ([`pair_histogram`],
/// [`HistParams::DEFAULT`]), square-rooted (so that a few crowded bins do not dominate) and scaled to unit
/// length (so that the number of minutiae does not).
pub fn index_vector(pts: &[(f32, f32, f32)]) -> [f32; SIG_BINS] {
    let full = pair_histogram(pts, &HistParams::DEFAULT);
    let mut v = [0f32; SIG_BINS];
    for (&x, &k) in full.iter().zip(fold_table()) {
        if let Some(slot) = v.get_mut(usize::from(k)) {
            *slot += x;
        }
    }
    let mut norm = 0f32;
    for x in &mut v {
        *x = x.sqrt();
        norm += *x * *x;
    }
    let norm = norm.sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The index signature of a template as stored: [`index_vector`] of its points quantised to bytes,
/// `value = scale * byte` with the scale (`max / 255`) in word 0.
pub fn signature(t: TemplateRef<'_>) -> [u64; SIG_WORDS] {
    let pts: Vec<(f32, f32, f32)> = t.pts.iter().map(|&p| mcc::unpack_point(p)).collect();
    let v = index_vector(&pts);
    let max = v.iter().fold(0f32, |m, &x| m.max(x));
    let mut sig = [0u64; SIG_WORDS];
    if max > 0.0 {
        let scale = max / 255.0;
        sig[0] = u64::from(scale.to_bits());
        for (b, &x) in v.iter().enumerate() {
            let q = (x / scale).round().clamp(0.0, 255.0) as u64;
            if let Some(w) = sig.get_mut(1 + b / 8) {
                *w |= q << (8 * (b % 8));
            }
        }
    }
    sig
}

/// The quantisation scale of a stored signature (`None` when word 0 is not a valid scale).
fn sig_scale(sig: &[u64]) -> Option<f32> {
    let w = sig.first().copied()?;
    let s = f32::from_bits(w as u32);
    (w >> 32 == 0 && s.is_finite() && (0.0..=1.0).contains(&s)).then_some(s)
}

/// The bin bytes of a stored signature.
#[inline]
fn sig_bytes(sig: &[u64]) -> [u8; SIG_BINS] {
    let mut out = [0u8; SIG_BINS];
    for (k, w) in sig.iter().skip(1).enumerate() {
        let bytes = w.to_le_bytes();
        let n = (SIG_BINS - (k * 8).min(SIG_BINS)).min(8);
        if let (Some(dst), Some(src)) = (out.get_mut(k * 8..k * 8 + n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
    }
    out
}

/// Gallery-wide mean and inverse deviation of each signature bin: the index compares whitened vectors,
/// `(v - mean) / sd`, so that the pair structure shared by every print of a pattern class (minutia
/// directions follow the ridge flow) does not dominate the similarity.
#[derive(Debug, Clone)]
struct IndexStats {
    mean: Vec<f32>,
    inv_sd: Vec<f32>,
}

/// Galleries with fewer fingers compare unwhitened vectors (too few samples for the statistics; such
/// galleries are searched exhaustively by default anyway).
const MIN_STATS_FINGERS: usize = 100;

impl IndexStats {
    fn identity() -> Self {
        Self {
            mean: vec![0.0; SIG_BINS],
            inv_sd: vec![1.0; SIG_BINS],
        }
    }

    /// Statistics of a set of stored signatures.
    fn of<'a>(sigs: impl ParallelIterator<Item = &'a [u64]>) -> Self {
        let (n, sum, sq) = sigs
            .fold(
                || (0usize, vec![0f64; SIG_BINS], vec![0f64; SIG_BINS]),
                |(n, mut sum, mut sq), sig| {
                    let s = f64::from(sig_scale(sig).unwrap_or(0.0));
                    for ((a, q), &byte) in sum.iter_mut().zip(sq.iter_mut()).zip(&sig_bytes(sig)) {
                        let x = s * f64::from(byte);
                        *a += x;
                        *q += x * x;
                    }
                    (n + 1, sum, sq)
                },
            )
            .reduce(
                || (0usize, vec![0f64; SIG_BINS], vec![0f64; SIG_BINS]),
                |(n1, mut s1, mut q1), (n2, s2, q2)| {
                    s1.iter_mut().zip(&s2).for_each(|(a, b)| *a += b);
                    q1.iter_mut().zip(&q2).for_each(|(a, b)| *a += b);
                    (n1 + n2, s1, q1)
                },
            );
        if n < MIN_STATS_FINGERS {
            return Self::identity();
        }
        let nf = n as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / nf).collect();
        let var: Vec<f64> = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| (q / nf - m * m).max(0.0))
            .collect();
        // A floor (5 % of the mean variance) keeps bins that are nearly empty in the gallery from dominating.
        let floor = 0.05 * var.iter().sum::<f64>() / SIG_BINS as f64 + 1e-12;
        Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            inv_sd: var.iter().map(|&v| (1.0 / (v + floor).sqrt()) as f32).collect(),
        }
    }

    /// Length of a stored signature's whitened vector (the cosine's denominator).
    fn norm(&self, sig: &[u64]) -> f32 {
        let s = sig_scale(sig).unwrap_or(0.0);
        let n2: f32 = sig_bytes(sig)
            .iter()
            .zip(&self.mean)
            .zip(&self.inv_sd)
            .map(|((&q, &m), &is)| {
                let z = (s * f32::from(q) - m) * is;
                z * z
            })
            .sum();
        n2.sqrt().max(1e-6)
    }

    /// A probe finger's weights: with whitened, unit-length probe vector `z`, the cosine with a stored
    /// signature `g` is `(sum(w * g) - offset) / |whitened g|` where `w = z / sd` and `offset = sum(w * mean)`.
    /// `w` is quantised to 12-bit integers for an integer dot product with the stored bytes.
    fn weights(&self, v: &[f32; SIG_BINS]) -> ProbeWeights {
        let mut z = [0f32; SIG_BINS];
        for (((zi, &x), &m), &is) in z.iter_mut().zip(v).zip(&self.mean).zip(&self.inv_sd) {
            *zi = (x - m) * is;
        }
        let norm = z.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        let mut w = [0f32; SIG_BINS];
        for ((wi, &zi), &is) in w.iter_mut().zip(&z).zip(&self.inv_sd) {
            *wi = zi * is / norm;
        }
        let offset: f32 = w.iter().zip(&self.mean).map(|(a, b)| a * b).sum();
        let max = w.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
        let unit = max / 2047.0;
        let mut q = [0i16; SIG_BINS];
        for (qi, &wi) in q.iter_mut().zip(&w) {
            *qi = (wi / unit).round().clamp(-2047.0, 2047.0) as i16;
        }
        ProbeWeights { q, unit, offset }
    }
}

/// A probe finger's quantised index weights ([`IndexStats::weights`]).
#[derive(Debug, Clone)]
struct ProbeWeights {
    q: [i16; SIG_BINS],
    unit: f32,
    offset: f32,
}

impl ProbeWeights {
    /// Cosine of the whitened probe and gallery vectors.
    #[inline]
    fn cosine(&self, sig: &[u64], norm: f32) -> f32 {
        let s = sig_scale(sig).unwrap_or(0.0);
        let bytes = sig_bytes(sig);
        let dot: i32 = self
            .q
            .iter()
            .zip(&bytes)
            .map(|(&w, &b)| i32::from(w) * i32::from(i16::from(b)))
            .sum();
        (s * self.unit * dot as f32 - self.offset) / norm
    }
}

/// Checks a person's id and fingers and builds the in-memory finger entries ([`OWNED_WORDS`] each: head with
/// person index 0, set on insertion; signature; cylinder record).
fn prepare(person: &str, fingers: &[(FingerPosition, &[Minutia])]) -> Result<Vec<u64>, GalleryError> {
    if person.is_empty() || person.len() > MAX_ID_LEN || person.chars().any(char::is_control) {
        return Err(GalleryError::PersonId { len: person.len() });
    }
    if fingers.is_empty() || fingers.len() > MAX_FINGERS {
        return Err(GalleryError::Fingers(format!(
            "{} fingers, expected 1-{MAX_FINGERS}",
            fingers.len()
        )));
    }
    let mut entries = Vec::with_capacity(fingers.len() * OWNED_WORDS);
    let mut seen = 0u32;
    for &(pos, ms) in fingers {
        let p =
            normalise(pos).ok_or_else(|| GalleryError::Fingers(format!("{pos:?} is not a single finger")))?;
        if seen & (1 << p.code()) != 0 {
            return Err(GalleryError::Fingers(format!("{p:?} given twice")));
        }
        seen |= 1 << p.code();
        entries.extend(finger_entry(p, &MccTemplate::new(ms)));
    }
    Ok(entries)
}

/// Builds one in-memory finger entry: head (person index 0), signature, cylinder record.
fn finger_entry(position: FingerPosition, t: &MccTemplate) -> Vec<u64> {
    let r = t.view();
    let n = r.len().min(MAX_MINUTIAE);
    let sig = signature(r);
    let mut e = Vec::with_capacity(OWNED_WORDS);
    e.push((u64::from(position.code()) << 32) | ((n as u64) << 40));
    e.extend_from_slice(&sig);
    let mut rec = [0u64; RECORD_WORDS];
    let put = |rec: &mut [u64; RECORD_WORDS], off: usize, src: &[u64]| {
        if let Some(dst) = rec.get_mut(off..off + src.len()) {
            dst.copy_from_slice(src);
        }
    };
    put(&mut rec, PTS_OFF, r.pts.get(..n).unwrap_or(&[]));
    put(&mut rec, VALID_OFF, r.valid.get(..n).unwrap_or(&[]));
    put(&mut rec, BITS_OFF, r.bits.get(..n * ND).unwrap_or(&[]));
    e.extend_from_slice(&rec);
    e
}

/// One finger viewed in place: its head word, signature, cylinder record and the length of its whitened
/// index vector ([`IndexStats::norm`]; 1 where not computed).
#[derive(Clone, Copy)]
struct FingerRef<'a> {
    head: u64,
    sig: &'a [u64],
    rec: &'a [u64],
    norm: f32,
}

impl<'a> FingerRef<'a> {
    fn position_code(self) -> u8 {
        (self.head >> 32) as u8
    }
    fn count(self) -> usize {
        ((self.head >> 40) as u8 as usize).min(MAX_MINUTIAE)
    }
    fn template(self) -> TemplateRef<'a> {
        let n = self.count();
        TemplateRef {
            pts: self.rec.get(PTS_OFF..PTS_OFF + n).unwrap_or(&[]),
            valid: self.rec.get(VALID_OFF..VALID_OFF + n).unwrap_or(&[]),
            bits: self.rec.get(BITS_OFF..BITS_OFF + n * ND).unwrap_or(&[]),
        }
    }
}

#[derive(Debug)]
enum Fingers {
    /// Fingers `first..first + count` of the mapped file.
    Mapped { first: usize, count: usize },
    /// Entries held in memory (inserted since the last save), [`OWNED_WORDS`] each, and the lengths of
    /// their whitened index vectors.
    Owned(Vec<u64>, Vec<f32>),
}

#[derive(Debug)]
struct Person {
    id: String,
    alive: bool,
    fingers: Fingers,
}

#[derive(Debug)]
enum Backing {
    None,
    Map(memmap2::Mmap),
    Words(Vec<u64>),
}

/// Word offsets of the sections of a gallery file.
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    heads: usize,
    sigs: usize,
    records: usize,
    end: usize,
}

impl Layout {
    /// The layout for `np` persons and `nf` fingers (`None` on overflow).
    fn new(np: usize, nf: usize) -> Option<Self> {
        let heads = np.checked_mul(PERSON_WORDS)?.checked_add(HEADER_WORDS)?;
        let sigs = heads.checked_add(nf)?;
        let records = nf.checked_mul(SIG_WORDS)?.checked_add(sigs)?;
        let end = nf.checked_mul(RECORD_WORDS)?.checked_add(records)?;
        Some(Self {
            heads,
            sigs,
            records,
            end,
        })
    }
}

/// A 1:N gallery (see the module docs).
#[derive(Debug)]
pub struct Gallery {
    path: PathBuf,
    backing: Backing,
    layout: Layout,
    persons: Vec<Person>,
    by_id: HashMap<String, usize>,
    live: usize,
    /// Whitening statistics of the index signatures (computed when the file is opened, and by
    /// [`Gallery::insert_batch`] when the gallery has grown to more than twice the fingers they describe).
    stats: IndexStats,
    /// Number of fingers `stats` was computed from.
    stats_fingers: usize,
    /// Fingers of the live persons.
    live_fingers: usize,
    /// Whitened index vector length of each mapped finger (by finger index in the file).
    norms: Vec<f32>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> GalleryError + '_ {
    move |source| GalleryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Maps a file read-only.
#[allow(
    unsafe_code,
    reason = "memory-mapping a file is unsafe by contract; see SAFETY"
)]
fn map_file(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this process. Tessera writes gallery files only through
    // `Gallery::save`, which writes a new file and renames it over the old one, so a mapped file is never
    // truncated or rewritten in place by us. Another process modifying the file in place would be an
    // operator error; every byte is validated by `validate` before use and all later accesses are bounds
    // checked, so such a change could corrupt results but not memory safety of the Rust code.
    unsafe { memmap2::Mmap::map(file) }
}

struct Validator<'a> {
    path: &'a Path,
}

impl Validator<'_> {
    fn err(&self, word: usize, field: &'static str, detail: impl Into<String>) -> GalleryError {
        GalleryError::Format {
            path: self.path.to_path_buf(),
            offset: word * 8,
            field,
            detail: detail.into(),
        }
    }
}

/// Validates a gallery file's words; returns the persons and the file's layout.
fn validate(path: &Path, words: &[u64]) -> Result<(Vec<Person>, Layout), GalleryError> {
    let v = Validator { path };
    let w = |i: usize, field: &'static str| {
        words
            .get(i)
            .copied()
            .ok_or_else(|| v.err(i, field, "file ends here"))
    };
    let magic = w(0, "magic")?;
    if magic != MAGIC {
        let found = magic.to_le_bytes();
        if found.starts_with(b"TSGALRY") {
            return Err(v.err(
                0,
                "magic",
                format!(
                    "gallery layout \"{}\" of another version, this build reads \"TSGALRY3\": rebuild the \
                     gallery from the enrolled templates",
                    String::from_utf8_lossy(&found)
                ),
            ));
        }
        return Err(v.err(0, "magic", "not a Tessera gallery file (expected \"TSGALRY3\")"));
    }
    let params = w(1, "parameters")?;
    if params != PARAMS {
        return Err(v.err(
            1,
            "parameters",
            format!("{params:#x}, this build expects {PARAMS:#x} (cylinder layout or signature size differ)"),
        ));
    }
    let n_persons = w(2, "person count")?;
    let n_fingers = w(3, "finger count")?;
    for i in 4..HEADER_WORDS {
        if w(i, "reserved header word")? != 0 {
            return Err(v.err(i, "reserved header word", "must be 0"));
        }
    }
    let too_big = |i, f| v.err(i, f, "count does not fit the file length");
    let np = usize::try_from(n_persons).map_err(|_| too_big(2, "person count"))?;
    let nf = usize::try_from(n_fingers).map_err(|_| too_big(3, "finger count"))?;
    if np
        .checked_mul(PERSON_WORDS * 8)
        .is_none_or(|b| b > words.len() * 8)
    {
        return Err(too_big(2, "person count"));
    }
    let layout = Layout::new(np, nf).ok_or_else(|| too_big(3, "finger count"))?;
    if layout.end != words.len() {
        return Err(v.err(
            3,
            "finger count",
            format!(
                "{np} persons and {nf} fingers need {} bytes, the file has {}",
                layout.end.saturating_mul(8),
                words.len() * 8
            ),
        ));
    }
    let mut persons = Vec::with_capacity(np);
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(np);
    let mut next_finger = 0usize;
    let mut owner = vec![0u32; nf];
    for p in 0..np {
        let base = HEADER_WORDS + p * PERSON_WORDS;
        let head = w(base, "person header")?;
        let id_len = (head & 0xFF) as usize;
        let count = ((head >> 8) & 0xFF) as usize;
        if head >> 16 != 0 {
            return Err(v.err(base, "person header", "reserved bits must be 0"));
        }
        if !(1..=MAX_ID_LEN).contains(&id_len) {
            return Err(v.err(
                base,
                "person id length",
                format!("{id_len}, expected 1-{MAX_ID_LEN}"),
            ));
        }
        if !(1..=MAX_FINGERS).contains(&count) {
            return Err(v.err(
                base,
                "person finger count",
                format!("{count}, expected 1-{MAX_FINGERS}"),
            ));
        }
        let first = w(base + 1, "person first finger")?;
        if first != next_finger as u64 {
            return Err(v.err(
                base + 1,
                "person first finger",
                format!("{first}, expected {next_finger} (fingers are stored in person order)"),
            ));
        }
        let mut id_bytes = [0u8; MAX_ID_LEN];
        for (k, chunk) in id_bytes.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&w(base + 2 + k, "person id")?.to_le_bytes());
        }
        let (id, pad) = id_bytes.split_at(id_len);
        if pad.iter().any(|&b| b != 0) {
            return Err(v.err(base + 2, "person id", "padding after the id must be 0"));
        }
        let id =
            std::str::from_utf8(id).map_err(|e| v.err(base + 2, "person id", format!("not UTF-8: {e}")))?;
        if id.chars().any(char::is_control) {
            return Err(v.err(base + 2, "person id", "control characters"));
        }
        if seen.insert(id.to_owned(), p).is_some() {
            return Err(v.err(base + 2, "person id", format!("person {p} repeats an earlier id")));
        }
        let end = next_finger
            .checked_add(count)
            .filter(|&e| e <= nf)
            .ok_or_else(|| v.err(base, "person finger count", "runs past the last finger"))?;
        for o in owner.get_mut(next_finger..end).unwrap_or(&mut []) {
            *o = p as u32;
        }
        persons.push(Person {
            id: id.to_owned(),
            alive: true,
            fingers: Fingers::Mapped {
                first: next_finger,
                count,
            },
        });
        next_finger = end;
    }
    if next_finger != nf {
        return Err(v.err(
            3,
            "finger count",
            format!("persons own {next_finger} fingers, header says {nf}"),
        ));
    }
    // Fingers, in parallel (the bulk of the file).
    let heads = words.get(layout.heads..layout.sigs).unwrap_or(&[]);
    let sigs = words.get(layout.sigs..layout.records).unwrap_or(&[]);
    let records = words.get(layout.records..).unwrap_or(&[]);
    heads
        .par_iter()
        .zip(sigs.par_chunks_exact(SIG_WORDS))
        .zip(records.par_chunks_exact(RECORD_WORDS))
        .zip(owner.par_iter())
        .enumerate()
        .try_for_each(|(f, (((&head, sig), rec), &own))| {
            check_finger(
                &v,
                &layout,
                f,
                FingerRef {
                    head,
                    sig,
                    rec,
                    norm: 1.0,
                },
                own,
            )
        })?;
    // Positions must be distinct within a person.
    for (p, person) in persons.iter().enumerate() {
        if let Fingers::Mapped { first, count } = person.fingers {
            let mut seen_pos = 0u32;
            for f in first..first + count {
                let code = (heads.get(f).copied().unwrap_or(0) >> 32) as u8;
                if seen_pos & (1 << code) != 0 {
                    return Err(v.err(
                        layout.heads + f,
                        "finger position",
                        format!("person {p} has position {code} twice"),
                    ));
                }
                seen_pos |= 1 << code;
            }
        }
    }
    Ok((persons, layout))
}

fn check_finger(
    v: &Validator<'_>,
    layout: &Layout,
    index: usize,
    f: FingerRef<'_>,
    owner: u32,
) -> Result<(), GalleryError> {
    let at = layout.heads + index;
    if f.head as u32 != owner {
        return Err(v.err(
            at,
            "finger person index",
            format!("{}, expected {owner}", f.head as u32),
        ));
    }
    let code = f.position_code();
    if !FingerPosition::from_code(code).is_some_and(FingerPosition::is_single_finger) {
        return Err(v.err(at, "finger position", format!("{code}, expected 1-10")));
    }
    let n = ((f.head >> 40) & 0xFF) as usize;
    if n > MAX_MINUTIAE {
        return Err(v.err(
            at,
            "finger cylinder count",
            format!("{n}, expected 0-{MAX_MINUTIAE}"),
        ));
    }
    if f.head >> 48 != 0 {
        return Err(v.err(at, "finger head", "reserved bits 48-63 must be 0"));
    }
    if sig_scale(f.sig).is_none() {
        let raw = f.sig.first().copied().unwrap_or(0);
        return Err(v.err(
            layout.sigs + index * SIG_WORDS,
            "finger signature scale",
            format!("{raw:#x}, expected an f32 in 0-1 in the low 32 bits"),
        ));
    }
    if !SIG_BINS.is_multiple_of(8) {
        let last = f.sig.last().copied().unwrap_or(0);
        if last >> (8 * (SIG_BINS % 8)) != 0 {
            return Err(v.err(
                layout.sigs + (index + 1) * SIG_WORDS - 1,
                "finger signature",
                "unused bytes after the last bin must be 0",
            ));
        }
    }
    let rec_at = layout.records + index * RECORD_WORDS;
    let section =
        |off: usize, len: usize, used: usize, field: &'static str| -> Result<&[u64], GalleryError> {
            let s = f.rec.get(off..off + len).unwrap_or(&[]);
            if let Some(k) = s.iter().skip(used).position(|&x| x != 0) {
                return Err(v.err(rec_at + off + used + k, field, "unused slot must be 0"));
            }
            Ok(s.get(..used).unwrap_or(&[]))
        };
    let pts = section(PTS_OFF, MAX_MINUTIAE, n, "finger points")?;
    let valid = section(VALID_OFF, MAX_MINUTIAE, n, "finger validity")?;
    let bits = section(BITS_OFF, MAX_MINUTIAE * ND, n * ND, "finger cylinder bits")?;
    if let Some(k) = pts.iter().position(|p| p >> 48 != 0) {
        return Err(v.err(rec_at + PTS_OFF + k, "finger points", "reserved bits must be 0"));
    }
    for (k, (val, b)) in valid.iter().zip(bits.chunks_exact(ND)).enumerate() {
        if val & !CIRCLE != 0 {
            return Err(v.err(
                rec_at + VALID_OFF + k,
                "finger validity",
                "cells outside the cylinder",
            ));
        }
        if b.iter().any(|x| x & !val != 0) {
            return Err(v.err(
                rec_at + BITS_OFF + k * ND,
                "finger cylinder bits",
                "bits outside the valid cells",
            ));
        }
    }
    Ok(())
}

/// Writes words little-endian.
fn put_words(out: &mut impl Write, words: &[u64]) -> std::io::Result<()> {
    if cfg!(target_endian = "little") {
        out.write_all(bytemuck::cast_slice(words))
    } else {
        for w in words {
            out.write_all(&w.to_le_bytes())?;
        }
        Ok(())
    }
}

/// The penetration [`SearchOptions::default`] uses for a probe of `fingers` fingers: ten fingers' summed
/// index similarities are far more selective than one finger's, so fewer persons need the full matcher.
///
/// | probe fingers | 1 | 2 | 3 | 4-6 | 7-10 |
/// |---|---|---|---|---|---|
/// | histogram scan keeps for the coarse step ([`auto_coarse_share`]) | 20 % | 20 % | - | - | - |
/// | penetration (share passed to the full matcher) | 5 % | 2 % | 1 % | 0.5 % | 0.25 % |
///
/// Chosen on tuning persons (10,000-person galleries, ids 40,000,000+ standard and 41,000,000+ hard, 300
/// mated searches, `tessera-bio identify`) as shares whose FNIR loss against an exhaustive search is at most
/// 0.5 points on both capture profiles. The standard profile needs far less (no mate lost at 0.25 % even with
/// one finger); the poor captures of the hard profile set the one- and two-finger shares. Without the coarse
/// step they needed 20 % and 10 % (at 5 % the hard profile lost 4.7 points with one finger and 1.0 with two);
/// with it, one finger at 5 % loses 0.33 points (one mate, which the histogram scan already ranks out of its
/// 20 %) and two fingers lose nothing from 1 % (2 % taken for a margin). Two poor fingers on *extracted*
/// images (the extractor's spurious and missing minutiae) needed more: a 20 % coarse share (the histogram scan
/// ranks some of their mates beyond 10 %) and the coarse score's geometric check (without it the coarse step
/// ranked some mates below 10 %); tuned on ids 57,000,000+ and 58,000,000+ (2,000 persons). Held-out figures:
/// `docs/biometrics-evaluation.md`. Callers that know their captures are good may pass a lower
/// [`SearchOptions::penetration`].
pub fn auto_penetration(fingers: usize) -> f64 {
    match fingers {
        0 | 1 => 0.05,
        2 => 0.02,
        3 => 0.01,
        4..=6 => 0.005,
        _ => 0.0025,
    }
}

/// The share of persons [`SearchOptions::default`] passes from the histogram scan to the coarse step, for a
/// probe of `fingers` fingers (0: no coarse step; see [`auto_penetration`]). One and two fingers only: from
/// three fingers the histogram scan alone meets the penetration target. 20 % is the old histogram-only
/// default for one finger, so the cascade keeps every mate that it kept; two poor fingers on extracted images
/// need the same share (at 10 % the histogram scan already loses 1.67 points of FNIR on the 2,000-person
/// tuning set).
pub fn auto_coarse_share(fingers: usize) -> f64 {
    match fingers {
        0..=2 => 0.2,
        _ => 0.0,
    }
}

/// Where `votes` ranks the person at index `target` (0 = first; ties count against it), or `None` when it is
/// not among them.
fn rank_in(votes: &[(f32, u32)], target: usize) -> Option<usize> {
    let mine = votes.iter().find(|(_, i)| *i as usize == target)?.0;
    Some(
        votes
            .iter()
            .filter(|(v, i)| *v >= mine && *i as usize != target)
            .count(),
    )
}

/// Keeps the `len` best-scored entries of `v` (in no particular order).
fn top_by_score(v: &mut Vec<(f32, u32)>, len: usize) {
    if len == 0 {
        v.clear();
    } else if len < v.len() {
        v.select_nth_unstable_by(len - 1, |a, b| b.0.total_cmp(&a.0));
        v.truncate(len);
    }
}

impl Gallery {
    /// Creates an empty gallery and writes its file (replacing any file at `path`).
    pub fn create(path: impl AsRef<Path>) -> Result<Self, GalleryError> {
        let mut g = Self {
            path: path.as_ref().to_path_buf(),
            backing: Backing::None,
            layout: Layout::default(),
            persons: Vec::new(),
            by_id: HashMap::new(),
            live: 0,
            stats: IndexStats::identity(),
            stats_fingers: 0,
            live_fingers: 0,
            norms: Vec::new(),
        };
        g.save()?;
        Ok(g)
    }

    /// Opens and validates a gallery file (memory-mapped; nothing is copied).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GalleryError> {
        let path = path.as_ref().to_path_buf();
        if cfg!(target_endian = "big") {
            let bytes = std::fs::read(&path).map_err(io_err(&path))?;
            return Self::from_bytes(&bytes, path);
        }
        let file = File::open(&path).map_err(io_err(&path))?;
        let map = map_file(&file).map_err(io_err(&path))?;
        let words: &[u64] = bytemuck::try_cast_slice(&map[..]).map_err(|e| GalleryError::Format {
            path: path.clone(),
            offset: 0,
            field: "file length",
            detail: format!("{} bytes is not a whole number of 8-byte words ({e})", map.len()),
        })?;
        let (persons, layout) = validate(&path, words)?;
        Ok(Self::assemble(path, Backing::Map(map), persons, layout))
    }

    fn assemble(path: PathBuf, backing: Backing, persons: Vec<Person>, layout: Layout) -> Self {
        let by_id = persons
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let live = persons.len();
        let mut g = Self {
            path,
            backing,
            layout,
            persons,
            by_id,
            live,
            stats: IndexStats::identity(),
            stats_fingers: 0,
            live_fingers: 0,
            norms: Vec::new(),
        };
        g.live_fingers = g.persons.iter().map(|p| g.finger_count(p)).sum();
        g.refresh_stats();
        g
    }

    /// Recomputes the whitening statistics from the live fingers, and every finger's whitened length.
    fn refresh_stats(&mut self) {
        let mut sigs: Vec<&[u64]> = Vec::new();
        for p in self.persons.iter().filter(|p| p.alive) {
            self.for_each_finger(p, |f| sigs.push(f.sig));
        }
        let stats = IndexStats::of(sigs.par_iter().copied());
        let n = sigs.len();
        let l = self.layout;
        let mapped = self.words().get(l.sigs..l.records).unwrap_or(&[]);
        let norms: Vec<f32> = mapped
            .par_chunks_exact(SIG_WORDS)
            .map(|s| stats.norm(s))
            .collect();
        for p in &mut self.persons {
            if let Fingers::Owned(words, ns) = &mut p.fingers {
                *ns = words
                    .chunks_exact(OWNED_WORDS)
                    .map(|e| stats.norm(e.get(1..=SIG_WORDS).unwrap_or(&[])))
                    .collect();
            }
        }
        self.norms = norms;
        self.stats = stats;
        self.stats_fingers = n;
    }

    /// The gallery file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of persons (including changes not yet saved).
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when the gallery holds nobody.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// True when `person` is in the gallery.
    pub fn contains(&self, person: &str) -> bool {
        self.by_id.contains_key(person)
    }

    /// Validates gallery file bytes held in memory and copies them into an aligned buffer (for tests,
    /// fuzzing and files received over the network). `path` is where [`Gallery::save`] will write.
    pub fn from_bytes(bytes: &[u8], path: impl AsRef<Path>) -> Result<Self, GalleryError> {
        let path = path.as_ref().to_path_buf();
        if !bytes.len().is_multiple_of(8) {
            return Err(GalleryError::Format {
                path,
                offset: bytes.len() - bytes.len() % 8,
                field: "file length",
                detail: format!("{} bytes is not a whole number of 8-byte words", bytes.len()),
            });
        }
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect();
        let (persons, layout) = validate(&path, &words)?;
        Ok(Self::assemble(path, Backing::Words(words), persons, layout))
    }

    fn words(&self) -> &[u64] {
        match &self.backing {
            Backing::None => &[],
            Backing::Map(m) => bytemuck::try_cast_slice(&m[..]).unwrap_or(&[]),
            Backing::Words(w) => w,
        }
    }

    /// Calls `f` for each finger of `person`, in stored order.
    #[inline]
    fn for_each_finger<'a>(&'a self, person: &'a Person, mut f: impl FnMut(FingerRef<'a>)) {
        match &person.fingers {
            Fingers::Mapped { first, count } => {
                let (first, count) = (*first, *count);
                let w = self.words();
                let l = &self.layout;
                let heads = w.get(l.heads + first..l.heads + first + count).unwrap_or(&[]);
                let sigs = w
                    .get(l.sigs + first * SIG_WORDS..l.sigs + (first + count) * SIG_WORDS)
                    .unwrap_or(&[]);
                let recs = w
                    .get(l.records + first * RECORD_WORDS..l.records + (first + count) * RECORD_WORDS)
                    .unwrap_or(&[]);
                let norms = self.norms.get(first..first + count).unwrap_or(&[]);
                for (k, ((&head, sig), rec)) in heads
                    .iter()
                    .zip(sigs.chunks_exact(SIG_WORDS))
                    .zip(recs.chunks_exact(RECORD_WORDS))
                    .enumerate()
                {
                    let norm = norms.get(k).copied().unwrap_or(1.0);
                    f(FingerRef { head, sig, rec, norm });
                }
            }
            Fingers::Owned(v, norms) => {
                for (k, e) in v.chunks_exact(OWNED_WORDS).enumerate() {
                    let (head, rest) = e.split_first().unwrap_or((&0, &[]));
                    let (sig, rec) = rest.split_at(SIG_WORDS.min(rest.len()));
                    f(FingerRef {
                        head: *head,
                        sig,
                        rec,
                        norm: norms.get(k).copied().unwrap_or(1.0),
                    });
                }
            }
        }
    }

    fn finger_count(&self, person: &Person) -> usize {
        match &person.fingers {
            Fingers::Mapped { count, .. } => *count,
            Fingers::Owned(v, _) => v.len() / OWNED_WORDS,
        }
    }

    /// Adds a person (replacing a person with the same id). Each finger is a position (1-10; plain thumbs
    /// 11/12 count as thumbs) and its minutiae; at most ten, each position once.
    pub fn insert(
        &mut self,
        person: &str,
        fingers: &[(FingerPosition, &[Minutia])],
    ) -> Result<(), GalleryError> {
        let entries = prepare(person, fingers)?;
        self.push(person, entries);
        Ok(())
    }

    /// Adds many persons, preparing their templates in parallel (bulk loading). Stops at the first invalid
    /// person, after adding the valid ones before it.
    pub fn insert_batch(&mut self, persons: &[PersonFingers]) -> Result<(), GalleryError> {
        let prepared: Vec<Result<Vec<u64>, GalleryError>> = persons
            .par_iter()
            .map(|(id, fingers)| {
                let refs: Vec<(FingerPosition, &[Minutia])> =
                    fingers.iter().map(|(p, m)| (*p, &m[..])).collect();
                prepare(id, &refs)
            })
            .collect();
        let mut res = Ok(());
        for ((id, _), entries) in persons.iter().zip(prepared) {
            match entries {
                Ok(e) => self.push(id, e),
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        // Bulk loads into a new or small gallery: whitening statistics from the fingers now there (each
        // refresh at least doubles the count, so refreshes cost O(1) amortised per finger).
        if self.live_fingers > 2 * self.stats_fingers {
            self.refresh_stats();
        }
        res
    }

    fn push(&mut self, person: &str, mut entries: Vec<u64>) {
        self.remove(person);
        let index = self.persons.len() as u64;
        for e in entries.chunks_exact_mut(OWNED_WORDS) {
            if let Some(h) = e.first_mut() {
                *h = (*h & !0xFFFF_FFFF) | index;
            }
        }
        let norms = entries
            .chunks_exact(OWNED_WORDS)
            .map(|e| self.stats.norm(e.get(1..=SIG_WORDS).unwrap_or(&[])))
            .collect();
        self.live_fingers += entries.len() / OWNED_WORDS;
        self.by_id.insert(person.to_owned(), self.persons.len());
        self.persons.push(Person {
            id: person.to_owned(),
            alive: true,
            fingers: Fingers::Owned(entries, norms),
        });
        self.live += 1;
    }

    /// Removes a person; true when it was there.
    pub fn remove(&mut self, person: &str) -> bool {
        let Some(i) = self.by_id.remove(person) else {
            return false;
        };
        let count = self.persons.get(i).map_or(0, |p| self.finger_count(p));
        self.live_fingers = self.live_fingers.saturating_sub(count);
        if let Some(p) = self.persons.get_mut(i) {
            p.alive = false;
            if let Fingers::Owned(v, norms) = &mut p.fingers {
                *v = Vec::new();
                *norms = Vec::new();
            }
        }
        self.live -= 1;
        true
    }

    /// Writes the gallery to its file: a complete new file is written and synced next to the old one, then
    /// renamed over it, and the new file is mapped. A crash leaves either the old or the new file.
    pub fn save(&mut self) -> Result<(), GalleryError> {
        let tmp = self.path.with_extension("tgal-tmp");
        self.write_file(&tmp).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        let reopened = Self::open(&self.path)?;
        *self = reopened;
        Ok(())
    }

    fn write_file(&self, tmp: &Path) -> std::io::Result<()> {
        let file = File::create(tmp)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let live: Vec<&Person> = self.persons.iter().filter(|p| p.alive).collect();
        let nf: usize = live.iter().map(|p| self.finger_count(p)).sum();
        put_words(
            &mut out,
            &[MAGIC, PARAMS, live.len() as u64, nf as u64, 0, 0, 0, 0],
        )?;
        let mut first = 0u64;
        for p in &live {
            let count = self.finger_count(p) as u64;
            let mut entry = [0u64; PERSON_WORDS];
            entry[0] = p.id.len() as u64 | (count << 8);
            entry[1] = first;
            for (k, chunk) in p.id.as_bytes().chunks(8).enumerate() {
                let mut b = [0u8; 8];
                b.get_mut(..chunk.len()).unwrap_or(&mut []).copy_from_slice(chunk);
                if let Some(w) = entry.get_mut(2 + k) {
                    *w = u64::from_le_bytes(b);
                }
            }
            put_words(&mut out, &entry)?;
            first += count;
        }
        let mut heads = Vec::with_capacity(nf);
        for (new_index, p) in live.iter().enumerate() {
            self.for_each_finger(p, |f| heads.push((f.head & !0xFFFF_FFFF) | new_index as u64));
        }
        put_words(&mut out, &heads)?;
        let mut res = Ok(());
        for p in &live {
            self.for_each_finger(p, |f| {
                if res.is_ok() {
                    res = put_words(&mut out, f.sig);
                }
            });
        }
        std::mem::replace(&mut res, Ok(()))?;
        for p in &live {
            self.for_each_finger(p, |f| {
                if res.is_ok() {
                    res = put_words(&mut out, f.rec);
                }
            });
        }
        res?;
        let file = out.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        file.sync_all()
    }

    /// Searches with the default options; best candidates first.
    pub fn search(&self, probe: &Probe, top_k: usize) -> Vec<Candidate> {
        self.search_with(probe, top_k, &SearchOptions::default()).0
    }

    /// The probe slot per finger position code.
    fn probe_slots(probe: &Probe) -> [usize; 16] {
        let mut slot_of = [usize::MAX; 16];
        for (i, f) in probe.fingers.iter().enumerate() {
            if let Some(s) = slot_of.get_mut(usize::from(f.position.code())) {
                *s = i;
            }
        }
        slot_of
    }

    /// Index-stage scores of every live person (summed whitened cosines of the shared finger positions):
    /// `(score, person index)`.
    fn index_votes(&self, probe: &Probe) -> Vec<(f32, u32)> {
        let slot_of = Self::probe_slots(probe);
        let weights: Vec<ProbeWeights> = probe
            .fingers
            .iter()
            .map(|f| self.stats.weights(&f.vector))
            .collect();
        self.persons
            .par_iter()
            .enumerate()
            .filter(|(_, p)| p.alive)
            .map(|(i, p)| {
                let mut v = 0.0;
                self.for_each_finger(p, |f| {
                    let slot = slot_of.get(usize::from(f.position_code())).copied();
                    if let Some(w) = slot.and_then(|s| weights.get(s)) {
                        v += w.cosine(f.sig, f.norm);
                    }
                });
                (v, i as u32)
            })
            .collect()
    }

    /// Where the index stage ranks `person` for this probe (0 = first; ties count against it), or `None`
    /// when the person is not in the gallery. An evaluation aid: the mate is shortlisted when its rank is
    /// below the shortlist length.
    pub fn index_rank(&self, probe: &Probe, person: &str) -> Option<usize> {
        let &target = self.by_id.get(person)?;
        rank_in(&self.index_votes(probe), target)
    }

    /// Coarse-step scores ([`mcc::Matcher::coarse_ref`] summed over the shared finger positions) of the
    /// persons of `list`: `(score, person index)`.
    fn coarse_votes(&self, probe: &Probe, matchers: &[mcc::Matcher], list: &[(f32, u32)]) -> Vec<(f32, u32)> {
        let slot_of = Self::probe_slots(probe);
        list.par_iter()
            .map_init(
                || matchers.to_vec(),
                |ms, &(_, i)| {
                    let mut v = 0.0;
                    if let Some(p) = self.persons.get(i as usize) {
                        self.for_each_finger(p, |f| {
                            let slot = slot_of.get(usize::from(f.position_code())).copied();
                            if let Some(m) = slot.and_then(|s| ms.get_mut(s)) {
                                v += m.coarse_ref(f.template());
                            }
                        });
                    }
                    (v, i)
                },
            )
            .collect()
    }

    /// Where the whole index stage (histogram scan, then the coarse step when `opts` makes it run) ranks
    /// `person` for this probe (0 = first; ties count against it), or `None` when the person is not in the
    /// gallery. The persons the histogram scan passes to the coarse step come first, in coarse-score order,
    /// then the others in histogram order; the mate reaches the full matcher at any penetration whose
    /// shortlist is longer than this rank. An evaluation aid, like [`Gallery::index_rank`].
    pub fn cascade_rank(&self, probe: &Probe, person: &str, opts: &SearchOptions) -> Option<usize> {
        let &target = self.by_id.get(person)?;
        let mut all = self.index_votes(probe);
        let rank = rank_in(&all, target)?;
        let (_, coarse_len) = opts.lengths(probe.len(), self.live, 1);
        if rank >= coarse_len {
            return Some(rank);
        }
        top_by_score(&mut all, coarse_len);
        rank_in(&self.coarse_votes(probe, &probe.matchers(), &all), target)
    }

    /// Searches (see the module docs) and reports what the search did.
    pub fn search_with(
        &self,
        probe: &Probe,
        top_k: usize,
        opts: &SearchOptions,
    ) -> (Vec<Candidate>, SearchStats) {
        let mut stats = SearchStats {
            persons: self.live,
            ..SearchStats::default()
        };
        if probe.is_empty() || self.live == 0 || top_k == 0 {
            return (Vec::new(), stats);
        }
        let slot_of = Self::probe_slots(probe);
        let probe_slot = |f: FingerRef<'_>| {
            slot_of
                .get(usize::from(f.position_code()))
                .copied()
                .filter(|&s| s != usize::MAX)
        };
        // Index stage.
        let t_index = std::time::Instant::now();
        let (shortlist_len, coarse_len) = opts.lengths(probe.len(), self.live, top_k);
        let matchers = probe.matchers();
        let shortlist: Vec<(f32, u32)> = if shortlist_len >= self.live {
            self.persons
                .iter()
                .enumerate()
                .filter(|(_, p)| p.alive)
                .map(|(i, _)| (0.0, i as u32))
                .collect()
        } else {
            let mut all = self.index_votes(probe);
            if coarse_len > shortlist_len {
                top_by_score(&mut all, coarse_len);
                stats.coarse_scored = all.len();
                all = self.coarse_votes(probe, &matchers, &all);
            }
            top_by_score(&mut all, shortlist_len);
            all
        };
        stats.shortlisted = shortlist.len();
        stats.index_time = t_index.elapsed();
        // Match stage.
        let t_match = std::time::Instant::now();
        let results: Vec<(Candidate, usize)> = shortlist
            .into_par_iter()
            .map_init(
                || matchers.clone(),
                |ms, (_, i)| {
                    let p = self.persons.get(i as usize)?;
                    let mut fingers = Vec::new();
                    let mut fmrs = Vec::new();
                    self.for_each_finger(p, |f| {
                        let Some(m) = probe_slot(f).and_then(|s| ms.get_mut(s)) else {
                            return;
                        };
                        let s = m.compare_ref(f.template());
                        fmrs.push(calibration::fmr_for_score(s));
                        if let Some(pos) = FingerPosition::from_code(f.position_code()) {
                            fingers.push((pos, s));
                        }
                    });
                    if fingers.is_empty() {
                        return None;
                    }
                    let fmr = calibration::fuse(&fmrs);
                    let n = fingers.len();
                    Some((
                        Candidate {
                            person: p.id.clone(),
                            score: (-fmr.log10()) as f32,
                            fmr_estimate: fmr,
                            fingers,
                        },
                        n,
                    ))
                },
            )
            .flatten()
            .collect();
        stats.comparisons = results.iter().map(|r| r.1).sum();
        stats.match_time = t_match.elapsed();
        let mut cands: Vec<Candidate> = results.into_iter().map(|r| r.0).collect();
        cands.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.person.cmp(&b.person)));
        cands.truncate(top_k);
        (cands, stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_bins_cover_the_signature_exactly() {
        let t = fold_table();
        assert_eq!(t.len(), HistParams::DEFAULT.dim());
        let mut seen = vec![0u32; SIG_BINS];
        for &k in t {
            seen[usize::from(k)] += 1;
        }
        // Every folded bin holds a bin and its mirror (a pair seen from the other end), or one self-mirrored bin.
        assert!(seen.iter().all(|&n| n == 1 || n == 2), "{seen:?}");
        assert_eq!(
            seen.iter().filter(|&&n| n == 1).count(),
            HistParams::DEFAULT.nd * HistParams::DEFAULT.na
        );
    }

    #[test]
    fn index_vector_ignores_rotation_and_translation() {
        let pts: Vec<(f32, f32, f32)> = (0..40)
            .map(|i| {
                let f = i as f32;
                (
                    60.0 + (f * 37.0) % 200.0,
                    50.0 + (f * 53.0) % 250.0,
                    (f * 0.7) % std::f32::consts::TAU,
                )
            })
            .collect();
        let (s, c) = 0.9f32.sin_cos();
        let moved: Vec<(f32, f32, f32)> = pts
            .iter()
            .map(|&(x, y, d)| (c * x - s * y + 40.0, s * x + c * y - 25.0, d + 0.9))
            .collect();
        let (a, b) = (index_vector(&pts), index_vector(&moved));
        let cos: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!(cos > 0.995, "cosine {cos}");
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn stored_signature_round_trips_within_quantisation() {
        let pts: Vec<(f32, f32, f32)> = (0..30)
            .map(|i| {
                let f = i as f32;
                (
                    40.0 + (f * 29.0) % 180.0,
                    40.0 + (f * 41.0) % 220.0,
                    (f * 1.3) % std::f32::consts::TAU,
                )
            })
            .collect();
        let v = index_vector(&pts);
        let t = MccTemplate::new(
            &pts.iter()
                .map(|&(x, y, direction)| Minutia {
                    x,
                    y,
                    direction,
                    kind: crate::minutiae::MinutiaKind::Ending,
                    quality: 60,
                })
                .collect::<Vec<_>>(),
        );
        let sig = signature(t.view());
        let scale = sig_scale(&sig).unwrap();
        let bytes = sig_bytes(&sig);
        let back: Vec<f32> = bytes.iter().map(|&q| scale * f32::from(q)).collect();
        let cos: f32 = v.iter().zip(&back).map(|(x, y)| x * y).sum();
        assert!(cos > 0.99, "cosine {cos}");
        // Identity statistics: the cosine of a finger with itself is 1.
        let stats = IndexStats::identity();
        let w = stats.weights(&index_vector(
            &t.view()
                .pts
                .iter()
                .map(|&p| mcc::unpack_point(p))
                .collect::<Vec<_>>(),
        ));
        let self_cos = w.cosine(&sig, stats.norm(&sig));
        assert!((self_cos - 1.0).abs() < 0.02, "{self_cos}");
    }
}
