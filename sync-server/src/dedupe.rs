//! Deduplication: demographic (a blocking key over the normalised name, date of birth and gender) and
//! biometric 1:N (finger templates extracted from the packet's ISO/IEC 19794-4 images with
//! `tessera_biometrics`, searched against the gallery of persons who have a UIN, scores fused per person).
//!
//! The biometric gallery sits behind [`BioIndex`]: [`IndexedGallery`] (the default) is the biometrics
//! crate's memory-mapped, signature-indexed `Gallery` in the data directory; [`ExhaustiveGallery`] (for small
//! deployments and tests) compares the probe with every enrolled finger of the same position using
//! `tessera_biometrics::mcc::Matcher`. Gallery templates are persisted in the database
//! (`gallery` table, written by the ID-repository stage); [`GalleryLoader::refresh`] loads what other
//! workers or earlier runs added, so a restart or a second process sees the same gallery.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use tessera_biometrics::gallery::{Gallery, GalleryError, MAX_FINGERS, PersonFingers, Probe};
use tessera_biometrics::iso19794_4::{self, FingerPosition};
use tessera_biometrics::mcc::{Matcher, MccTemplate};
use tessera_biometrics::template::Template;
use tessera_packet::types::{BioAttribute, Modality, PacketContent};

use crate::store::{Candidate, GalleryRow, Store, StoreError};

/// Folds common Latin diacritics and case so that "Émile" and "emile" block together.
fn fold(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'ď' | 'đ' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ğ' | 'ģ' => 'g',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => 'i',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' | 'ł' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ŕ' | 'ř' => 'r',
        'ś' | 'ş' | 'š' | 'ș' => 's',
        'ţ' | 'ť' | 'ț' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => 'u',
        'ý' | 'ÿ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

/// Normalises a name: lower case, diacritics folded, punctuation dropped, tokens sorted (so word order and
/// spacing do not matter).
pub fn normalise_name(name: &str) -> String {
    let lowered: String = name.to_lowercase().chars().map(fold).collect();
    let mut tokens: Vec<String> = lowered
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    tokens.sort();
    tokens.join(" ")
}

fn first_value(v: Option<&serde_json::Value>, lang: Option<&str>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => {
            let pick = |e: &serde_json::Value| e.get("value").and_then(|x| x.as_str()).map(str::to_owned);
            a.iter()
                .find(|e| lang.is_some() && e.get("language").and_then(|l| l.as_str()) == lang)
                .and_then(pick)
                .or_else(|| a.first().and_then(pick))
        }
        _ => None,
    }
}

/// The demographic blocking key of a packet: hex SHA-256 of the normalised primary-language full name, the
/// date of birth and the gender code. `None` when the name or date of birth is missing. The digest keeps
/// names out of the `persons` table.
pub fn blocking_key(content: &PacketContent) -> Option<String> {
    let lang = content.meta.languages.first().map(String::as_str);
    let name = normalise_name(&first_value(content.identity.get("fullName"), lang)?);
    let dob = first_value(content.identity.get("dateOfBirth"), None)?;
    if name.is_empty() || dob.is_empty() {
        return None;
    }
    let gender = first_value(content.identity.get("gender"), lang).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(format!("TESSERA-BLOCK-V1\n{name}\n{dob}\n{}", gender.to_uppercase()).as_bytes());
    Some(hex::encode(h.finalize()))
}

/// Demographic candidates: existing identities with the same blocking key.
pub async fn demographic_candidates(
    store: &dyn Store,
    key: Option<&str>,
) -> Result<Vec<Candidate>, StoreError> {
    let Some(key) = key else { return Ok(Vec::new()) };
    Ok(store
        .persons_by_blocking_key(key)
        .await?
        .into_iter()
        .map(|uin| Candidate {
            uin,
            kind: "demographic".into(),
            score: 1.0,
            fingers_compared: 0,
        })
        .collect())
}

fn finger_position(a: BioAttribute) -> Option<FingerPosition> {
    Some(match a {
        BioAttribute::RightThumb => FingerPosition::RightThumb,
        BioAttribute::RightIndex => FingerPosition::RightIndex,
        BioAttribute::RightMiddle => FingerPosition::RightMiddle,
        BioAttribute::RightRing => FingerPosition::RightRing,
        BioAttribute::RightLittle => FingerPosition::RightLittle,
        BioAttribute::LeftThumb => FingerPosition::LeftThumb,
        BioAttribute::LeftIndex => FingerPosition::LeftIndex,
        BioAttribute::LeftMiddle => FingerPosition::LeftMiddle,
        BioAttribute::LeftRing => FingerPosition::LeftRing,
        BioAttribute::LeftLittle => FingerPosition::LeftLittle,
        _ => return None,
    })
}

/// Extracts one template per captured finger (ISO/IEC 19794-4 image → minutiae). Fingers whose image cannot
/// be decoded or holds no usable print are skipped (validation already refused undecodable records); the
/// result may be empty. CPU-heavy: call from a blocking task.
pub fn extract_templates(content: &PacketContent) -> Vec<Template> {
    let fingers: Vec<(FingerPosition, &[u8])> = content
        .biometrics
        .iter()
        .filter(|b| {
            b.attribute.modality() == Modality::Finger && b.exception.is_none() && !b.image.is_empty()
        })
        .filter_map(|b| Some((finger_position(b.attribute)?, b.image.as_slice())))
        .collect();
    fingers
        .par_iter()
        .filter_map(|(pos, bytes)| {
            let records = iso19794_4::decode(bytes).ok()?;
            let rec = records
                .iter()
                .find(|r| r.position == *pos)
                .or_else(|| records.iter().find(|r| r.position.is_single_finger()))
                .or_else(|| records.first())?;
            let img = rec.to_gray().ok()?;
            let ex = tessera_biometrics::extract::extract(&img).ok()?;
            Some(Template {
                position: *pos,
                quality: rec.quality,
                width: rec.width,
                height: rec.height,
                minutiae: ex.minutiae,
            })
        })
        .collect()
}

/// A biometric candidate from a 1:N search.
#[derive(Debug, Clone, PartialEq)]
pub struct BioMatch {
    /// The enrolled identity: its salted UIN hash (the gallery holds no UIN; [`crate::store::Store::person_uins`]
    /// gives the UIN).
    pub uin_hash: String,
    /// Score in the index's own scale: fused 1:1 score in [0, 1] for [`ExhaustiveGallery`],
    /// `-log10(FMR estimate)` for [`IndexedGallery`].
    pub score: f32,
    /// Fingers compared.
    pub fingers: u32,
}

/// Why a gallery index could not be opened, changed or saved.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The biometrics crate's gallery failed (file I/O, invalid file, invalid person).
    #[error("biometric gallery: {0}")]
    Gallery(#[from] GalleryError),
    /// The gallery's state file could not be written.
    #[error("gallery state file {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where a [`GalleryLoader`] stands in the store's `gallery` table: the last row loaded (sequence number and
/// its UIN; `seq` 0 = nothing loaded).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// Sequence number of the last loaded row.
    pub seq: i64,
    /// UIN hash of that row (an anchor: a different database has another identity at that sequence number).
    /// A state file written before the gallery was keyed by hash has a UIN here, which never matches: the
    /// gallery is rebuilt.
    #[serde(alias = "uin")]
    pub uin_hash: String,
}

/// A 1:N finger gallery. Implementations must be safe to share between workers. Inserting a person who is
/// already there replaces that person's fingers.
pub trait BioIndex: Send + Sync + std::fmt::Debug {
    /// Adds (or replaces) persons with their finger templates. CPU-heavy: call from a blocking task.
    fn insert_persons(&self, persons: Vec<(String, Vec<Template>)>) -> Result<(), IndexError>;
    /// Removes a person; true when it was there.
    fn remove(&self, uin_hash: &str) -> bool;
    /// Persons whose score reaches the index's threshold, best first. CPU-heavy: call from a blocking task.
    fn search(&self, probe: &[Template]) -> Vec<BioMatch>;
    /// Persons enrolled.
    fn len(&self) -> usize;
    /// Whether empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The store position the index already holds when opened (persisted indexes); loading resumes after it.
    fn opened_at(&self) -> Cursor {
        Cursor::default()
    }
    /// Persists the index as of `cursor` when enough changed since the last save, or always when `force`.
    /// Returns whether it saved. The default (in-memory index) does nothing.
    fn checkpoint(&self, _cursor: &Cursor, _force: bool) -> Result<bool, IndexError> {
        Ok(false)
    }
}

/// Fuses per-finger scores of one person: the mean of the best two (one finger alone counts as itself).
/// Two fingers agreeing is much stronger evidence than one high score on a noisy print.
pub fn fuse(scores: &mut [f32]) -> f32 {
    scores.sort_by(|a, b| b.total_cmp(a));
    let top: Vec<f32> = scores.iter().take(2).copied().collect();
    if top.is_empty() {
        0.0
    } else {
        top.iter().sum::<f32>() / top.len() as f32
    }
}

/// Rows read from the store per round trip.
const LOAD_BATCH: u32 = 5_000;

/// Keeps a [`BioIndex`] in step with the persisted `gallery` table: loads rows added since the last call
/// (on the first call, everything after what the index already holds, i.e. everything for an in-memory
/// index or a rebuilt file), whoever wrote them, then lets the index checkpoint itself.
#[derive(Debug, Default)]
pub struct GalleryLoader {
    cursor: tokio::sync::Mutex<Option<Cursor>>,
}

impl GalleryLoader {
    /// Loads new gallery rows into `index`; returns how many fingers were added.
    ///
    /// The fingers of one person are written in one transaction with consecutive sequence numbers (on
    /// PostgreSQL under a table lock), so a person is inserted whole: when a page ends inside a person, the
    /// page's last person is read again with the next page.
    pub async fn refresh(&self, index: &Arc<dyn BioIndex>, store: &dyn Store) -> Result<usize, StoreError> {
        let mut guard = self.cursor.lock().await;
        let mut cursor = guard.clone().unwrap_or_else(|| index.opened_at());
        let mut added = 0;
        loop {
            let rows = store.gallery_since(cursor.seq, LOAD_BATCH).await?;
            let full = rows.len() >= usize::try_from(LOAD_BATCH).unwrap_or(usize::MAX);
            let Some(last) = rows.last().map(|r| (r.seq, r.uin_hash.clone())) else {
                break;
            };
            // On a full page, leave the last person for the next page unless the page holds nobody else.
            let (take, next) = if full {
                match rows.iter().rposition(|r| r.uin_hash != last.1) {
                    Some(i) => {
                        let keep = rows
                            .get(i)
                            .map(|r| (r.seq, r.uin_hash.clone()))
                            .unwrap_or(last.clone());
                        (i + 1, keep)
                    }
                    None => (rows.len(), last),
                }
            } else {
                (rows.len(), last)
            };
            let rows: Vec<GalleryRow> = rows.into_iter().take(take).collect();
            let idx = Arc::clone(index);
            let n = tokio::task::spawn_blocking(move || -> Result<usize, IndexError> {
                let mut persons: Vec<(String, Vec<Template>)> = Vec::new();
                let mut n = 0;
                for r in rows {
                    let Ok(t) = Template::from_bytes(&r.template) else {
                        tracing::warn!(seq = r.seq, "gallery row with an unreadable template skipped");
                        continue;
                    };
                    n += 1;
                    match persons.last_mut() {
                        Some((h, fingers)) if *h == r.uin_hash => fingers.push(t),
                        _ => persons.push((r.uin_hash, vec![t])),
                    }
                }
                idx.insert_persons(persons)?;
                Ok(n)
            })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
            .map_err(|e| StoreError::Task(e.to_string()))?;
            added += n;
            cursor = Cursor {
                seq: next.0,
                uin_hash: next.1,
            };
            *guard = Some(cursor.clone());
        }
        *guard = Some(cursor.clone());
        if added > 0 {
            let idx = Arc::clone(index);
            let saved = tokio::task::spawn_blocking(move || idx.checkpoint(&cursor, false))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?;
            if let Err(e) = saved {
                tracing::warn!(error = %e, "biometric gallery could not be saved; it is rebuilt on the next start");
            }
        }
        Ok(added)
    }

    /// Saves the index as of what was loaded (shutdown).
    pub async fn persist(&self, index: &Arc<dyn BioIndex>) -> Result<bool, IndexError> {
        let guard = self.cursor.lock().await;
        let Some(cursor) = guard.clone() else {
            return Ok(false);
        };
        let idx = Arc::clone(index);
        tokio::task::spawn_blocking(move || idx.checkpoint(&cursor, true))
            .await
            .map_err(|e| IndexError::State {
                path: PathBuf::new(),
                source: std::io::Error::other(e.to_string()),
            })?
    }
}

type Fingers = Vec<(u8, Arc<MccTemplate>)>;

/// Exhaustive search over every enrolled person (rayon-parallel over persons), with today's
/// `tessera_biometrics::mcc::Matcher`: for small deployments and tests (`dedupe_index = "exhaustive"`).
#[derive(Debug, Default)]
pub struct ExhaustiveGallery {
    persons: RwLock<HashMap<String, Fingers>>,
    threshold: f32,
}

impl ExhaustiveGallery {
    /// An empty gallery reporting persons whose fused score (0-1) reaches `threshold`.
    pub fn new(threshold: f32) -> Self {
        Self {
            persons: RwLock::default(),
            threshold,
        }
    }
}

impl BioIndex for ExhaustiveGallery {
    fn insert_persons(&self, persons: Vec<(String, Vec<Template>)>) -> Result<(), IndexError> {
        let prepared: Vec<(String, Fingers)> = persons
            .into_par_iter()
            .map(|(uin, ts)| {
                let fingers = ts
                    .iter()
                    .map(|t| (t.position.code(), Arc::new(MccTemplate::new(&t.minutiae))))
                    .collect();
                (uin, fingers)
            })
            .collect();
        if let Ok(mut all) = self.persons.write() {
            for (uin, new) in prepared {
                let fingers = all.entry(uin).or_default();
                for (position, t) in new {
                    fingers.retain(|(p, _)| *p != position);
                    fingers.push((position, t));
                }
            }
        }
        Ok(())
    }

    fn remove(&self, uin: &str) -> bool {
        self.persons
            .write()
            .map(|mut p| p.remove(uin).is_some())
            .unwrap_or(false)
    }

    fn search(&self, probe: &[Template]) -> Vec<BioMatch> {
        let probe = probe_of(probe);
        let Ok(persons) = self.persons.read() else {
            return Vec::new();
        };
        let entries: Vec<(&String, &Fingers)> = persons.iter().collect();
        let mut out: Vec<BioMatch> = entries
            .par_iter()
            .map_init(
                || {
                    probe
                        .iter()
                        .map(|(p, t)| (*p, Matcher::new(t.clone())))
                        .collect::<Vec<_>>()
                },
                |matchers, (uin, fingers)| {
                    let mut scores = Vec::new();
                    for (pos, m) in matchers.iter_mut() {
                        if let Some((_, cand)) = fingers.iter().find(|(p, _)| p == pos) {
                            scores.push(m.compare(cand));
                        }
                    }
                    let n = u32::try_from(scores.len()).unwrap_or(u32::MAX);
                    BioMatch {
                        uin_hash: (*uin).clone(),
                        score: fuse(&mut scores),
                        fingers: n,
                    }
                },
            )
            .filter(|m| m.fingers > 0 && m.score >= self.threshold)
            .collect();
        out.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.uin_hash.cmp(&b.uin_hash))
        });
        out
    }

    fn len(&self) -> usize {
        self.persons.read().map(|p| p.len()).unwrap_or(0)
    }
}

/// Prepares extracted templates as a probe (ISO position, MCC template).
pub fn probe_of(templates: &[Template]) -> Vec<(u8, MccTemplate)> {
    templates
        .iter()
        .map(|t| (t.position.code(), MccTemplate::new(&t.minutiae)))
        .collect()
}

/// Candidates returned by one indexed search before the score threshold.
pub const INDEX_TOP_K: usize = 20;

/// The state file beside the gallery file: what the file holds, so a start resumes loading after it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct IndexState {
    /// Format of this file.
    version: u32,
    /// Last store row the gallery file holds.
    cursor: Cursor,
    /// Persons in the gallery file.
    persons: usize,
}

#[derive(Debug)]
struct Indexed {
    gallery: Gallery,
    /// Changes since the last save.
    unsaved: usize,
}

/// The indexed 1:N gallery (`dedupe_index = "gallery"`, the default): `tessera_biometrics::gallery::Gallery`,
/// a memory-mapped file in the data directory (`<data_dir>/gallery/dedupe.tgal`) searched through its
/// minutia-pair signature index, then the full matcher on the shortlist.
///
/// Inserts and removals change the in-memory overlay at once; the file is rewritten (atomically) when
/// [`IndexedGallery::save_every`] changes have accumulated and at shutdown, together with a state file
/// (`dedupe.tgal.json`) naming the last store row the file holds. On start the file is mapped and the rows
/// added since are loaded from the store ([`GalleryLoader`]); a missing, corrupt or stale file (another
/// database, a lost state file) is rebuilt from the store's `gallery` table.
#[derive(Debug)]
pub struct IndexedGallery {
    inner: RwLock<Indexed>,
    state_path: PathBuf,
    opened_at: Cursor,
    min_score: f32,
    save_every: usize,
}

/// Why [`IndexedGallery::open`] rebuilt the gallery, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebuild {
    /// The file could be used; loading resumes after what it holds.
    No,
    /// No gallery file or state file.
    Missing,
    /// The file is damaged (the gallery crate's message).
    Corrupt(String),
    /// The file does not match the database (what differs).
    Stale(String),
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IndexError> {
    let err = |source| IndexError::State {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("json-tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

impl IndexedGallery {
    /// Opens the gallery file in `dir` (created if needed) and checks it against the store: the state file
    /// must exist, name as many persons as the file holds, and its last row must be in the store with the
    /// same UIN. Otherwise an empty gallery is created, to be filled from the store by the first
    /// [`GalleryLoader::refresh`]; the returned [`Rebuild`] says why. `min_score` is the smallest
    /// `-log10(FMR)` reported as a candidate; the file is saved every `save_every` changes.
    pub async fn open(
        dir: &Path,
        store: &dyn Store,
        min_score: f32,
        save_every: usize,
    ) -> Result<(Self, Rebuild), IndexError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::State {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("dedupe.tgal");
        let state_path = dir.join("dedupe.tgal.json");
        let state: Option<IndexState> = std::fs::read(&state_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|s: &IndexState| s.version == 1);
        let opened = if path.exists() {
            let p = path.clone();
            tokio::task::spawn_blocking(move || Gallery::open(&p))
                .await
                .map_err(|e| IndexError::State {
                    path: path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?
        } else {
            Err(GalleryError::Io {
                path: path.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            })
        };
        let verdict = match (&opened, &state) {
            (Err(GalleryError::Io { source, .. }), _) if source.kind() == std::io::ErrorKind::NotFound => {
                Rebuild::Missing
            }
            (Err(e), _) => Rebuild::Corrupt(e.to_string()),
            (Ok(_), None) => Rebuild::Missing,
            (Ok(g), Some(s)) if g.len() != s.persons => Rebuild::Stale(format!(
                "file holds {} persons, state file says {}",
                g.len(),
                s.persons
            )),
            (Ok(_), Some(s)) if s.cursor.seq > 0 => {
                let row = store
                    .gallery_since(s.cursor.seq - 1, 1)
                    .await
                    .map_err(|e| IndexError::State {
                        path: state_path.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                match row.first() {
                    Some(r) if r.seq == s.cursor.seq && r.uin_hash == s.cursor.uin_hash => Rebuild::No,
                    _ => Rebuild::Stale(format!(
                        "row {} of the database's gallery table is not the one the file was saved at",
                        s.cursor.seq
                    )),
                }
            }
            (Ok(_), Some(_)) => Rebuild::No,
        };
        let (gallery, opened_at) = match (verdict == Rebuild::No, opened, state) {
            (true, Ok(g), Some(s)) => (g, s.cursor),
            _ => {
                let p = path.clone();
                let g = tokio::task::spawn_blocking(move || Gallery::create(&p))
                    .await
                    .map_err(|e| IndexError::State {
                        path: path.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })??;
                let _ = std::fs::remove_file(&state_path);
                (g, Cursor::default())
            }
        };
        Ok((
            Self {
                inner: RwLock::new(Indexed { gallery, unsaved: 0 }),
                state_path,
                opened_at,
                min_score,
                save_every: save_every.max(1),
            },
            verdict,
        ))
    }

    /// Wraps an already opened gallery (benchmarks, tools); nothing is loaded or saved for it by the
    /// server unless a loader is pointed at it.
    pub fn from_gallery(gallery: Gallery, min_score: f32) -> Self {
        let state_path = gallery.path().with_extension("tgal.json");
        Self {
            inner: RwLock::new(Indexed { gallery, unsaved: 0 }),
            state_path,
            opened_at: Cursor::default(),
            min_score,
            save_every: usize::MAX,
        }
    }

    /// Changes after which the file is rewritten.
    pub fn save_every(&self) -> usize {
        self.save_every
    }
}

fn gallery_fingers(ts: &[Template]) -> Vec<(FingerPosition, Vec<tessera_biometrics::minutiae::Minutia>)> {
    let mut out: Vec<(FingerPosition, Vec<tessera_biometrics::minutiae::Minutia>)> = Vec::new();
    for t in ts {
        let pos = match t.position {
            FingerPosition::PlainRightThumb => FingerPosition::RightThumb,
            FingerPosition::PlainLeftThumb => FingerPosition::LeftThumb,
            p => p,
        };
        if !pos.is_single_finger() || out.iter().any(|(p, _)| *p == pos) || out.len() >= MAX_FINGERS {
            continue;
        }
        out.push((pos, t.minutiae.clone()));
    }
    out
}

impl BioIndex for IndexedGallery {
    fn insert_persons(&self, persons: Vec<(String, Vec<Template>)>) -> Result<(), IndexError> {
        let batch: Vec<PersonFingers> = persons
            .into_iter()
            .filter_map(|(uin, ts)| {
                let fingers = gallery_fingers(&ts);
                (!fingers.is_empty()).then_some((uin, fingers))
            })
            .collect();
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len();
        let Ok(mut inner) = self.inner.write() else {
            return Ok(());
        };
        inner.gallery.insert_batch(&batch)?;
        inner.unsaved += n;
        Ok(())
    }

    fn remove(&self, uin: &str) -> bool {
        let Ok(mut inner) = self.inner.write() else {
            return false;
        };
        let removed = inner.gallery.remove(uin);
        if removed {
            inner.unsaved += 1;
        }
        removed
    }

    fn search(&self, probe: &[Template]) -> Vec<BioMatch> {
        let fingers = gallery_fingers(probe);
        let refs: Vec<(FingerPosition, &[tessera_biometrics::minutiae::Minutia])> =
            fingers.iter().map(|(p, m)| (*p, &m[..])).collect();
        let probe = Probe::new(&refs);
        let Ok(inner) = self.inner.read() else {
            return Vec::new();
        };
        inner
            .gallery
            .search(&probe, INDEX_TOP_K)
            .into_iter()
            .filter(|c| c.score >= self.min_score)
            .map(|c| BioMatch {
                uin_hash: c.person,
                score: c.score,
                fingers: u32::try_from(c.fingers.len()).unwrap_or(u32::MAX),
            })
            .collect()
    }

    fn len(&self) -> usize {
        self.inner.read().map(|i| i.gallery.len()).unwrap_or(0)
    }

    fn opened_at(&self) -> Cursor {
        self.opened_at.clone()
    }

    fn checkpoint(&self, cursor: &Cursor, force: bool) -> Result<bool, IndexError> {
        let Ok(mut inner) = self.inner.write() else {
            return Ok(false);
        };
        if inner.unsaved == 0 && self.state_path.exists() {
            return Ok(false);
        }
        if !force && inner.unsaved < self.save_every {
            return Ok(false);
        }
        // The state file is removed first and written last: a crash in between leaves no state file, and the
        // next start rebuilds rather than trusting a file that may not match.
        let _ = std::fs::remove_file(&self.state_path);
        inner.gallery.save()?;
        let state = IndexState {
            version: 1,
            cursor: cursor.clone(),
            persons: inner.gallery.len(),
        };
        let bytes = serde_json::to_vec_pretty(&state).map_err(|e| IndexError::State {
            path: self.state_path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(&self.state_path, &bytes)?;
        inner.unsaved = 0;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_across_case_accents_order_and_punctuation() {
        assert_eq!(
            normalise_name("Émile  DE-la Tour"),
            normalise_name("de la tour, emile")
        );
        assert_ne!(normalise_name("Emile Tour"), normalise_name("Emilie Tour"));
    }

    #[test]
    fn fusion_uses_the_best_two() {
        assert_eq!(fuse(&mut []), 0.0);
        assert!((fuse(&mut [0.5]) - 0.5).abs() < 1e-6);
        assert!((fuse(&mut [0.1, 0.5, 0.3]) - 0.4).abs() < 1e-6);
    }
}
