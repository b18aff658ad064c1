//! Deduplication: demographic (a blocking key over the normalised name, date of birth and gender) and
//! biometric 1:N (finger templates extracted from the packet's ISO/IEC 19794-4 images with
//! `tessera_biometrics`, searched against the gallery of persons who have a UIN, scores fused per person).
//!
//! The biometric gallery sits behind [`BioIndex`] so an indexed implementation (the biometrics crate's
//! `Gallery`) can replace [`ExhaustiveGallery`], which compares the probe with every enrolled finger of the
//! same position using `tessera_biometrics::mcc::Matcher`. Gallery templates are persisted in the database
//! (`gallery` table, written by the ID-repository stage); [`GalleryLoader::refresh`] loads what other
//! workers or earlier runs added, so a restart or a second process sees the same gallery.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use tessera_biometrics::iso19794_4::{self, FingerPosition};
use tessera_biometrics::mcc::{Matcher, MccTemplate};
use tessera_biometrics::template::Template;
use tessera_packet::types::{BioAttribute, Modality, PacketContent};

use crate::store::{Candidate, Store, StoreError};

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
    /// The enrolled identity.
    pub uin: String,
    /// Fused score in [0, 1].
    pub score: f32,
    /// Fingers compared.
    pub fingers: u32,
}

/// A 1:N finger gallery. Implementations must be safe to share between workers.
pub trait BioIndex: Send + Sync + std::fmt::Debug {
    /// Adds (or replaces) one finger of a person.
    fn insert_finger(&self, uin: &str, position: u8, template: MccTemplate);
    /// Removes a person.
    fn remove(&self, uin: &str);
    /// Persons whose fused score reaches `threshold`, best first.
    fn search(&self, probe: &[(u8, MccTemplate)], threshold: f32) -> Vec<BioMatch>;
    /// Persons enrolled.
    fn len(&self) -> usize;
    /// Whether empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
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

/// Keeps a [`BioIndex`] in step with the persisted `gallery` table: loads rows added since the last call
/// (all of them on the first call, i.e. on start), whoever wrote them.
#[derive(Debug, Default)]
pub struct GalleryLoader {
    loaded_seq: tokio::sync::Mutex<i64>,
}

impl GalleryLoader {
    /// Loads new gallery rows into `index`; returns how many fingers were added.
    pub async fn refresh(&self, index: &dyn BioIndex, store: &dyn Store) -> Result<usize, StoreError> {
        let mut seq = self.loaded_seq.lock().await;
        let mut added = 0;
        loop {
            let rows = store.gallery_since(*seq, 5_000).await?;
            let Some(last) = rows.last().map(|r| r.seq) else {
                break;
            };
            let parsed: Vec<(String, u8, MccTemplate)> = tokio::task::spawn_blocking(move || {
                rows.into_par_iter()
                    .filter_map(|r| {
                        let t = Template::from_bytes(&r.template).ok()?;
                        Some((r.uin, r.position, MccTemplate::new(&t.minutiae)))
                    })
                    .collect()
            })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
            added += parsed.len();
            for (uin, pos, t) in parsed {
                index.insert_finger(&uin, pos, t);
            }
            *seq = last;
        }
        Ok(added)
    }
}

type Fingers = Vec<(u8, Arc<MccTemplate>)>;

/// Exhaustive search over every enrolled person (rayon-parallel over persons), with today's
/// `tessera_biometrics::mcc::Matcher`.
#[derive(Debug, Default)]
pub struct ExhaustiveGallery {
    persons: RwLock<HashMap<String, Fingers>>,
}

impl ExhaustiveGallery {
    /// An empty gallery.
    pub fn new() -> Self {
        Self::default()
    }
}

impl BioIndex for ExhaustiveGallery {
    fn insert_finger(&self, uin: &str, position: u8, template: MccTemplate) {
        if let Ok(mut persons) = self.persons.write() {
            let fingers = persons.entry(uin.to_owned()).or_default();
            fingers.retain(|(p, _)| *p != position);
            fingers.push((position, Arc::new(template)));
        }
    }

    fn remove(&self, uin: &str) {
        if let Ok(mut persons) = self.persons.write() {
            persons.remove(uin);
        }
    }

    fn search(&self, probe: &[(u8, MccTemplate)], threshold: f32) -> Vec<BioMatch> {
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
                        uin: (*uin).clone(),
                        score: fuse(&mut scores),
                        fingers: n,
                    }
                },
            )
            .filter(|m| m.fingers > 0 && m.score >= threshold)
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.uin.cmp(&b.uin)));
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
