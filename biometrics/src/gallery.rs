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
//! **Search.** (1) *Index stage*: every finger record carries an 8192-bit signature, a Bloom-style set of
//! geometric hash keys of its minutia pairs ([`signature`]: quantised pair length and the two minutia
//! directions relative to the pair, invariant to rotation and translation, on two grids offset by half a
//! bin). Two fingers' count of common keys, minus what chance gives, divided by the chance count's standard
//! deviation, is a cheap similarity (a 128-word AND + popcount). The probe's fingers' counts are summed per person (same finger positions only); this scans
//! compact signatures, ~4x less memory than the templates, and needs no per-key posting lists, so inserts
//! and deletes stay trivial. (MCC-LSH keys on our 384-bit cylinders were tried first and ranked mates far
//! worse: 8 % vs 0 % index misses with two fingers at 2 % penetration.) (2) *Match stage*: only the best
//! [`SearchOptions::penetration`] share of persons (default 2 %) is compared with the full MCC matcher,
//! finger by finger (same positions), and the finger scores are fused per person with
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
//! | 8 | header: magic `"TSGALRY2"`, parameters (`NS`, `ND`, max cylinders, signature words), person count, finger count, 4 reserved (0) |
//! | 10 per person | id length (1-64) and finger count (1-10) in word 0, index of the first finger in word 1, id bytes (UTF-8, zero padded) in words 2-9 |
//! | 1 per finger | finger head: person index (bits 0-31), position code (32-39), cylinder count (40-47), number of set signature bits (48-61) |
//! | [`SIG_WORDS`] per finger | signature |
//! | [`RECORD_WORDS`] per finger | cylinder record: points, validity, cylinder bits (see [`crate::mcc`]), unused slots 0 |
//!
//! [`Gallery::open`] maps the file ([`memmap2`]) and validates every field before use, as for any
//! untrusted input ([`GalleryError::Format`] names the byte offset and the field). [`Gallery::insert`] and
//! [`Gallery::remove`] change the in-memory view; [`Gallery::save`] writes a complete new file next to
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

/// Signature size in `u64` words (8192 bits).
pub const SIG_WORDS: usize = 128;
/// Distance bin of the index's minutia-pair keys (px).
pub const PAIR_DIST_BIN: f32 = 8.0;
/// Angle bins per turn of the index's minutia-pair keys.
pub const PAIR_ANGLE_BINS: f32 = 18.0;
/// Shortest minutia pair used by the index (px).
pub const PAIR_MIN_DIST: f32 = 12.0;
/// Longest minutia pair used by the index (px).
pub const PAIR_MAX_DIST: f32 = 90.0;
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
const MAGIC: u64 = u64::from_le_bytes(*b"TSGALRY2");
const PARAMS: u64 =
    (NS as u64) | ((ND as u64) << 8) | ((MAX_MINUTIAE as u64) << 16) | ((SIG_WORDS as u64) << 32);
const PTS_OFF: usize = 0;
const VALID_OFF: usize = PTS_OFF + MAX_MINUTIAE;
const BITS_OFF: usize = VALID_OFF + MAX_MINUTIAE;
/// Bit offset of the signature's set-bit count in a finger head.
const SIG_COUNT_SHIFT: u32 = 48;

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
    /// The index stage passes at least this many persons (small galleries are searched exhaustively).
    pub min_shortlist: usize,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            penetration: None,
            min_shortlist: 200,
        }
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
    /// Persons passed to the full matcher.
    pub shortlisted: usize,
    /// 1:1 finger comparisons made.
    pub comparisons: usize,
}

#[derive(Debug, Clone)]
struct ProbeFinger {
    position: FingerPosition,
    template: MccTemplate,
    sig: [u64; SIG_WORDS],
    sig_count: u32,
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
            let sig = signature(template.view());
            out.push(ProbeFinger {
                position,
                sig_count: sig.iter().map(|w| w.count_ones()).sum(),
                sig,
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
}

fn normalise(pos: FingerPosition) -> Option<FingerPosition> {
    match pos {
        FingerPosition::PlainRightThumb => Some(FingerPosition::RightThumb),
        FingerPosition::PlainLeftThumb => Some(FingerPosition::LeftThumb),
        p if p.is_single_finger() => Some(p),
        _ => None,
    }
}

struct PairHash {
    /// Distance bin width (px).
    dbin: f32,
    /// Angle bins per turn.
    abins: f32,
    /// Pair distance range (px).
    rmin: f32,
    rmax: f32,
}

const PAIR_HASH: PairHash = PairHash {
    dbin: PAIR_DIST_BIN,
    abins: PAIR_ANGLE_BINS,
    rmin: PAIR_MIN_DIST,
    rmax: PAIR_MAX_DIST,
};

/// The index signature of a template: the set of its minutia-pair keys folded into [`SIG_WORDS`] words.
///
/// For every ordered pair of minutiae (i, j) at distance [`PAIR_MIN_DIST`]-[`PAIR_MAX_DIST`] px, the key is
/// the quantised distance and the two directions relative to the segment i→j (invariant to rotation and
/// translation); two quantisation grids offset by half a bin make two keys per pair, so a value near a
/// bin edge still collides in one of them.
pub fn signature(t: TemplateRef<'_>) -> [u64; SIG_WORDS] {
    use std::f32::consts::{PI, TAU};
    let mut sig = [0u64; SIG_WORDS];
    let ph = &PAIR_HASH;
    let pts: Vec<(f32, f32, f32)> = t.pts.iter().map(|&p| mcc::unpack_point(p)).collect();
    let (r2min, r2max) = (ph.rmin * ph.rmin, ph.rmax * ph.rmax);
    let per_rad = ph.abins / TAU;
    let nab = ph.abins as u64;
    // Direction relative to a segment, in [0, 2π): both inputs are in (-2π, 2π].
    let rel = |dir: f32, seg: f32| {
        let mut a = dir - seg;
        while a < 0.0 {
            a += TAU;
        }
        while a >= TAU {
            a -= TAU;
        }
        a
    };
    let mut add = |d: f32, ai: f32, aj: f32| {
        for grid in 0..2u64 {
            let off = grid as f32 * 0.5;
            let qd = ((d - ph.rmin) / ph.dbin + off) as u64;
            let qa = ((ai * per_rad + off) as u64) % nab;
            let qb = ((aj * per_rad + off) as u64) % nab;
            let key = ((grid * 64 + qd) * nab + qa) * nab + qb;
            let h = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 51) as usize % (SIG_WORDS * 64);
            if let Some(w) = sig.get_mut(h / 64) {
                *w |= 1 << (h % 64);
            }
        }
    };
    // Each unordered pair once: the segment j→i is the segment i→j turned by π.
    for (i, a) in pts.iter().enumerate() {
        for b in pts.iter().skip(i + 1) {
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let d2 = dx * dx + dy * dy;
            if d2 < r2min || d2 > r2max {
                continue;
            }
            let seg = mcc::fast_atan2(dy, dx);
            let back = if seg > 0.0 { seg - PI } else { seg + PI };
            let d = d2.sqrt();
            add(d, rel(a.2, seg), rel(b.2, seg));
            add(d, rel(b.2, back), rel(a.2, back));
        }
    }
    sig
}

/// Votes of two signatures: common keys minus the common keys expected by chance, in units of the chance
/// count's standard deviation (`sqrt(expected)`, Poisson). Without that scaling, gallery fingers with many
/// keys (many minutiae) won the shortlist by chance: one-finger probes missed 18 % of mates at 5 %
/// penetration on a 10,000-person gallery, none with it.
#[inline]
fn votes(a: &[u64; SIG_WORDS], a_count: u32, b: &[u64], bc: u32) -> f32 {
    let common: u32 = a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum();
    let expected = (a_count as f32 * bc as f32) / (SIG_WORDS * 64) as f32;
    (common as f32 - expected) / expected.max(1.0).sqrt()
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
    let sig_count: u32 = sig.iter().map(|w| w.count_ones()).sum();
    let mut e = Vec::with_capacity(OWNED_WORDS);
    e.push(
        (u64::from(position.code()) << 32) | ((n as u64) << 40) | (u64::from(sig_count) << SIG_COUNT_SHIFT),
    );
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

/// One finger viewed in place: its head word, signature and cylinder record.
#[derive(Clone, Copy)]
struct FingerRef<'a> {
    head: u64,
    sig: &'a [u64],
    rec: &'a [u64],
}

impl<'a> FingerRef<'a> {
    fn position_code(self) -> u8 {
        (self.head >> 32) as u8
    }
    fn count(self) -> usize {
        ((self.head >> 40) as u8 as usize).min(MAX_MINUTIAE)
    }
    fn sig_count(self) -> u32 {
        ((self.head >> SIG_COUNT_SHIFT) & 0x3FFF) as u32
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
    /// Entries held in memory (inserted since the last save), [`OWNED_WORDS`] each.
    Owned(Vec<u64>),
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
    if w(0, "magic")? != MAGIC {
        return Err(v.err(0, "magic", "not a Tessera gallery file (expected \"TSGALRY2\")"));
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
            check_finger(&v, &layout, f, FingerRef { head, sig, rec }, own)
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
    let ones: u32 = f.sig.iter().map(|w| w.count_ones()).sum();
    if f.head >> 62 != 0 || ones != f.sig_count() {
        return Err(v.err(
            at,
            "finger signature count",
            format!(
                "{}, the signature at byte {} has {ones} bits set",
                f.sig_count(),
                (layout.sigs + index * SIG_WORDS) * 8
            ),
        ));
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
/// index votes are far more selective than one finger's, so fewer persons need the full matcher.
///
/// | probe fingers | 1 | 2 | 3 | 4-6 | 7-10 |
/// |---|---|---|---|---|---|
/// | penetration | 5 % | 2 % | 1 % | 0.5 % | 0.25 % |
///
/// Measured on tuning persons of the standard profile (10,000-person gallery, ids 40,000,000+, 300 mated
/// searches, `tessera-bio identify`): the mate's worst index rank was 0 for ten and four fingers, 2 for two
/// fingers and 816 (p99 47) for one finger, i.e. these shares keep every mate with ten to two fingers with a
/// wide margin and lose 1 in 300 one-finger mates. On poor captures (hard profile) the index is much weaker
/// (see `docs/biometrics-evaluation.md`); such searches should pass a higher [`SearchOptions::penetration`].
pub fn auto_penetration(fingers: usize) -> f64 {
    match fingers {
        0 | 1 => 0.05,
        2 => 0.02,
        3 => 0.01,
        4..=6 => 0.005,
        _ => 0.0025,
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
        Self {
            path,
            backing,
            layout,
            persons,
            by_id,
            live,
        }
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
                for ((&head, sig), rec) in heads
                    .iter()
                    .zip(sigs.chunks_exact(SIG_WORDS))
                    .zip(recs.chunks_exact(RECORD_WORDS))
                {
                    f(FingerRef { head, sig, rec });
                }
            }
            Fingers::Owned(v) => {
                for e in v.chunks_exact(OWNED_WORDS) {
                    let (head, rest) = e.split_first().unwrap_or((&0, &[]));
                    let (sig, rec) = rest.split_at(SIG_WORDS.min(rest.len()));
                    f(FingerRef {
                        head: *head,
                        sig,
                        rec,
                    });
                }
            }
        }
    }

    fn finger_count(&self, person: &Person) -> usize {
        match &person.fingers {
            Fingers::Mapped { count, .. } => *count,
            Fingers::Owned(v) => v.len() / OWNED_WORDS,
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
        for ((id, _), entries) in persons.iter().zip(prepared) {
            self.push(id, entries?);
        }
        Ok(())
    }

    fn push(&mut self, person: &str, mut entries: Vec<u64>) {
        self.remove(person);
        let index = self.persons.len() as u64;
        for e in entries.chunks_exact_mut(OWNED_WORDS) {
            if let Some(h) = e.first_mut() {
                *h = (*h & !0xFFFF_FFFF) | index;
            }
        }
        self.by_id.insert(person.to_owned(), self.persons.len());
        self.persons.push(Person {
            id: person.to_owned(),
            alive: true,
            fingers: Fingers::Owned(entries),
        });
        self.live += 1;
    }

    /// Removes a person; true when it was there.
    pub fn remove(&mut self, person: &str) -> bool {
        let Some(i) = self.by_id.remove(person) else {
            return false;
        };
        if let Some(p) = self.persons.get_mut(i) {
            p.alive = false;
            if let Fingers::Owned(v) = &mut p.fingers {
                *v = Vec::new();
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

    /// Index-stage votes of every live person: `(votes, person index)`.
    fn index_votes(&self, probe: &Probe) -> Vec<(f32, u32)> {
        let slot_of = Self::probe_slots(probe);
        self.persons
            .par_iter()
            .enumerate()
            .filter(|(_, p)| p.alive)
            .map(|(i, p)| {
                let mut v = 0.0;
                self.for_each_finger(p, |f| {
                    let slot = slot_of.get(usize::from(f.position_code())).copied();
                    if let Some(pf) = slot.and_then(|s| probe.fingers.get(s)) {
                        v += votes(&pf.sig, pf.sig_count, f.sig, f.sig_count());
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
        let all = self.index_votes(probe);
        let mine = all.iter().find(|(_, i)| *i as usize == target)?.0;
        Some(
            all.iter()
                .filter(|(v, i)| *v >= mine && *i as usize != target)
                .count(),
        )
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
        let penetration = opts.penetration.unwrap_or_else(|| auto_penetration(probe.len()));
        let shortlist_len = ((penetration.clamp(0.0, 1.0) * self.live as f64).ceil() as usize)
            .max(opts.min_shortlist)
            .max(top_k)
            .min(self.live);
        let shortlist: Vec<(f32, u32)> = if shortlist_len >= self.live {
            self.persons
                .iter()
                .enumerate()
                .filter(|(_, p)| p.alive)
                .map(|(i, _)| (0.0, i as u32))
                .collect()
        } else {
            let mut all = self.index_votes(probe);
            all.select_nth_unstable_by(shortlist_len - 1, |a, b| b.0.total_cmp(&a.0));
            all.truncate(shortlist_len);
            all
        };
        stats.shortlisted = shortlist.len();
        stats.index_time = t_index.elapsed();
        // Match stage.
        let t_match = std::time::Instant::now();
        let matchers: Vec<mcc::Matcher> = probe
            .fingers
            .iter()
            .map(|f| mcc::Matcher::new(f.template.clone()))
            .collect();
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
