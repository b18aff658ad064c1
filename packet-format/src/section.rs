//! The plaintext layout of each section: a ustar archive of JSON metadata and binary files.
//!
//! ```text
//! id section          identity.json, meta.json, biometrics.json, bio/<attribute>.iso, bio/<attribute>.jws
//! evidence section    documents.json, doc/<name>
//! optional section    documents.json, doc/<name>
//! ```
//! Metadata comes first, files follow in the order the metadata lists them. **Frozen format.**

use std::collections::BTreeSet;
use std::io::{self, Read, Write};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PacketError;
use crate::types::{BioAttribute, BioException, BiometricRecord, DeviceRef, Document, Meta, PacketContent};
use crate::ustar;

/// Reader limits for untrusted packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole packet file.
    pub max_packet: u64,
    /// Largest `manifest.json`.
    pub max_manifest: u64,
    /// Most sign-offs.
    pub max_signoffs: usize,
    /// Largest sign-off entry.
    pub max_signoff: u64,
    /// Most entries in one section.
    pub max_entries: usize,
    /// Largest JSON entry inside a section.
    pub max_json: u64,
    /// Largest file (image, document) inside a section.
    pub max_file: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_packet: 256 << 20,
            max_manifest: 64 << 10,
            max_signoffs: 16,
            max_signoff: 4 << 10,
            max_entries: 512,
            max_json: 4 << 20,
            max_file: 32 << 20,
        }
    }
}

/// Biometric metadata as stored in `biometrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BioEntry {
    attribute: BioAttribute,
    format: String,
    quality: u8,
    retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exception: Option<BioException>,
    #[serde(default)]
    force_captured: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<DeviceRef>,
    captured_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_block_file: Option<String>,
}

/// Document metadata as stored in `documents.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocEntry {
    name: String,
    category: String,
    doc_type: String,
    mime: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ref_number: Option<String>,
    file: String,
}

fn valid_doc_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        && !name.starts_with('.')
}

fn json<T: Serialize>(v: &T, what: &str) -> Result<Vec<u8>, PacketError> {
    serde_json::to_vec(v).map_err(|e| PacketError::InvalidInput {
        reason: format!("{what} does not serialise: {e}"),
    })
}

fn io_err(section: &str) -> impl FnOnce(io::Error) -> PacketError + '_ {
    move |source| PacketError::Io {
        context: format!("writing section {section}"),
        source,
    }
}

/// Writes the `id` section's plaintext archive.
pub(crate) fn write_id<W: Write>(content: &PacketContent, out: W, mtime: i64) -> Result<W, PacketError> {
    let mut seen = BTreeSet::new();
    let mut entries = Vec::with_capacity(content.biometrics.len());
    for r in &content.biometrics {
        if !seen.insert(r.attribute) {
            return Err(PacketError::InvalidInput {
                reason: format!("two biometric records for {}", r.attribute),
            });
        }
        if r.image.is_empty() && r.exception.is_none() {
            return Err(PacketError::InvalidInput {
                reason: format!("biometric {} has neither an image nor an exception", r.attribute),
            });
        }
        entries.push(BioEntry {
            attribute: r.attribute,
            format: r.format.clone(),
            quality: r.quality,
            retries: r.retries,
            exception: r.exception.clone(),
            force_captured: r.force_captured,
            device: r.device.clone(),
            captured_at: r.captured_at,
            image_file: (!r.image.is_empty()).then(|| format!("bio/{}.iso", r.attribute)),
            data_block_file: r
                .sbi_data_block
                .as_ref()
                .map(|_| format!("bio/{}.jws", r.attribute)),
        });
    }
    if !content.identity.is_object() {
        return Err(PacketError::InvalidInput {
            reason: "identity must be a JSON object".into(),
        });
    }
    let s = "id";
    let mut tar = ustar::Writer::new(out, mtime);
    tar.append("identity.json", &json(&content.identity, "identity")?)
        .map_err(io_err(s))?;
    tar.append("meta.json", &json(&content.meta, "meta")?)
        .map_err(io_err(s))?;
    tar.append("biometrics.json", &json(&entries, "biometrics")?)
        .map_err(io_err(s))?;
    for (r, e) in content.biometrics.iter().zip(&entries) {
        if let Some(f) = &e.image_file {
            tar.append(f, &r.image).map_err(io_err(s))?;
        }
        if let (Some(f), Some(jws)) = (&e.data_block_file, &r.sbi_data_block) {
            tar.append(f, jws.as_bytes()).map_err(io_err(s))?;
        }
    }
    tar.finish().map_err(io_err(s))
}

/// Writes an `evidence` or `optional` section's plaintext archive.
pub(crate) fn write_docs<W: Write>(
    section: &str,
    docs: &[Document],
    out: W,
    mtime: i64,
) -> Result<W, PacketError> {
    let mut seen = BTreeSet::new();
    let mut entries = Vec::with_capacity(docs.len());
    for d in docs {
        if !valid_doc_name(&d.name) {
            return Err(PacketError::InvalidInput {
                reason: format!(
                    "document name {:?} must be 1-64 of [A-Za-z0-9._-], not starting with '.'",
                    d.name
                ),
            });
        }
        if !seen.insert(d.name.as_str()) {
            return Err(PacketError::InvalidInput {
                reason: format!("two documents named {}", d.name),
            });
        }
        entries.push(DocEntry {
            name: d.name.clone(),
            category: d.category.clone(),
            doc_type: d.doc_type.clone(),
            mime: d.mime.clone(),
            ref_number: d.ref_number.clone(),
            file: format!("doc/{}", d.name),
        });
    }
    let mut tar = ustar::Writer::new(out, mtime);
    tar.append("documents.json", &json(&entries, "documents")?)
        .map_err(io_err(section))?;
    for (d, e) in docs.iter().zip(&entries) {
        tar.append(&e.file, &d.content).map_err(io_err(section))?;
    }
    tar.finish().map_err(io_err(section))
}

/// One entry read from a section archive.
pub(crate) struct Entry<'a> {
    pub name: String,
    pub size: u64,
    pub data: &'a mut dyn Read,
}

/// Reads a section archive strictly, calling `f` for each entry; `f` must consume `size` bytes or fewer
/// (the rest is skipped). Names must pass `allowed`. Reads to the end of the archive and checks that
/// nothing but zero blocks follows.
pub(crate) fn read_entries<R: Read>(
    section: &str,
    mut r: R,
    limits: &Limits,
    allowed: &dyn Fn(&str) -> bool,
    f: &mut dyn FnMut(Entry<'_>) -> Result<(), PacketError>,
) -> Result<(), PacketError> {
    let content_err = |entry: &str, reason: String| PacketError::Content {
        section: section.to_owned(),
        entry: entry.to_owned(),
        reason,
    };
    let mut count = 0usize;
    let mut names = BTreeSet::new();
    loop {
        let mut h = [0u8; 512];
        read_exact_or(
            &mut r,
            &mut h,
            section,
            "an entry header or the end of the archive",
        )?;
        if ustar::is_zero_block(&h) {
            let mut second = [0u8; 512];
            read_exact_or(&mut r, &mut second, section, "the second end-of-archive block")?;
            if !ustar::is_zero_block(&second) {
                return Err(content_err(
                    "(end of archive)",
                    "second end-of-archive block is not zero".into(),
                ));
            }
            // Nothing may follow but more zero bytes.
            let mut buf = [0u8; 4096];
            loop {
                let n = r.read(&mut buf).map_err(|e| read_err(section, e))?;
                if n == 0 {
                    return Ok(());
                }
                if buf.iter().take(n).any(|b| *b != 0) {
                    return Err(content_err(
                        "(end of archive)",
                        "data after the end of the archive".into(),
                    ));
                }
            }
        }
        let header = ustar::decode_header(&h).map_err(|ustar::HeaderError::Field { field, reason }| {
            content_err(
                &format!("header #{}", count + 1),
                format!("field {field}: {reason}"),
            )
        })?;
        count += 1;
        if count > limits.max_entries {
            return Err(PacketError::TooLarge {
                part: format!("section {section} entry count"),
                size: count as u64,
                limit: limits.max_entries as u64,
            });
        }
        if !allowed(&header.name) {
            return Err(content_err(&header.name, "unexpected entry name".into()));
        }
        if !names.insert(header.name.clone()) {
            return Err(content_err(&header.name, "entry appears twice".into()));
        }
        let limit = if header.name.ends_with(".json") {
            limits.max_json
        } else {
            limits.max_file
        };
        if header.size > limit {
            return Err(PacketError::TooLarge {
                part: format!("section {section} entry {}", header.name),
                size: header.size,
                limit,
            });
        }
        let mut take = (&mut r).take(header.size);
        f(Entry {
            name: header.name.clone(),
            size: header.size,
            data: &mut take,
        })?;
        let rest = io::copy(&mut take, &mut io::sink()).map_err(|e| read_err(section, e))?;
        let _ = rest;
        if take.limit() != 0 {
            return Err(content_err(&header.name, "entry is truncated".into()));
        }
        let pad = usize::try_from(ustar::padding(header.size)).unwrap_or(0);
        let mut zeros = [0u8; 512];
        let pad_buf = zeros.get_mut(..pad).unwrap_or_default();
        read_exact_or(&mut r, pad_buf, section, "entry padding")?;
        if pad_buf.iter().any(|b| *b != 0) {
            return Err(content_err(
                &header.name,
                "non-zero padding after the entry".into(),
            ));
        }
    }
}

fn read_err(section: &str, e: io::Error) -> PacketError {
    PacketError::Content {
        section: section.to_owned(),
        entry: "(archive)".into(),
        reason: e.to_string(),
    }
}

fn read_exact_or<R: Read>(r: &mut R, buf: &mut [u8], section: &str, what: &str) -> Result<(), PacketError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            PacketError::Content {
                section: section.to_owned(),
                entry: "(archive)".into(),
                reason: format!("archive ends before {what}"),
            }
        } else {
            read_err(section, e)
        }
    })
}

/// Whether `name` may appear in section `section`.
pub(crate) fn allowed_name(section: &str, name: &str) -> bool {
    match section {
        "id" => {
            matches!(name, "identity.json" | "meta.json" | "biometrics.json")
                || name
                    .strip_prefix("bio/")
                    .and_then(|f| f.strip_suffix(".iso").or_else(|| f.strip_suffix(".jws")))
                    .is_some_and(|a| BioAttribute::ALL.iter().any(|x| x.as_str() == a))
        }
        _ => name == "documents.json" || name.strip_prefix("doc/").is_some_and(valid_doc_name),
    }
}

fn read_all(e: &mut Entry<'_>, section: &str) -> Result<Vec<u8>, PacketError> {
    let mut v = Vec::with_capacity(usize::try_from(e.size).unwrap_or(0));
    e.data.read_to_end(&mut v).map_err(|err| read_err(section, err))?;
    Ok(v)
}

fn parse_json<T: for<'de> Deserialize<'de>>(
    section: &str,
    entry: &str,
    bytes: &[u8],
) -> Result<T, PacketError> {
    serde_json::from_slice(bytes).map_err(|e| PacketError::Content {
        section: section.to_owned(),
        entry: entry.to_owned(),
        reason: format!("malformed JSON: {e}"),
    })
}

/// The decoded `id` section.
pub(crate) struct IdSection {
    pub identity: serde_json::Value,
    pub meta: Meta,
    pub biometrics: Vec<BiometricRecord>,
}

/// Reads and checks the `id` section archive into memory.
pub(crate) fn read_id<R: Read>(r: R, limits: &Limits) -> Result<IdSection, PacketError> {
    let s = "id";
    let mut identity = None;
    let mut meta = None;
    let mut entries: Option<Vec<BioEntry>> = None;
    let mut files: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    let mut order = 0;
    read_entries(s, r, limits, &|n| allowed_name(s, n), &mut |mut e| {
        let expected_first = ["identity.json", "meta.json", "biometrics.json"];
        if let Some(want) = expected_first.get(order)
            && e.name != *want
        {
            return Err(PacketError::Content {
                section: s.into(),
                entry: e.name.clone(),
                reason: format!("expected {want} here"),
            });
        }
        order += 1;
        let bytes = read_all(&mut e, s)?;
        match e.name.as_str() {
            "identity.json" => identity = Some(parse_json::<serde_json::Value>(s, &e.name, &bytes)?),
            "meta.json" => meta = Some(parse_json::<Meta>(s, &e.name, &bytes)?),
            "biometrics.json" => entries = Some(parse_json::<Vec<BioEntry>>(s, &e.name, &bytes)?),
            _ => {
                files.insert(e.name.clone(), bytes);
            }
        }
        Ok(())
    })?;
    let missing = |entry: &str| PacketError::Content {
        section: s.into(),
        entry: entry.into(),
        reason: "missing".into(),
    };
    let identity = identity.ok_or_else(|| missing("identity.json"))?;
    if !identity.is_object() {
        return Err(PacketError::Content {
            section: s.into(),
            entry: "identity.json".into(),
            reason: "not a JSON object".into(),
        });
    }
    let meta = meta.ok_or_else(|| missing("meta.json"))?;
    let entries = entries.ok_or_else(|| missing("biometrics.json"))?;
    let mut biometrics = Vec::with_capacity(entries.len());
    let mut seen = BTreeSet::new();
    for e in entries {
        if !seen.insert(e.attribute) {
            return Err(PacketError::Content {
                section: s.into(),
                entry: "biometrics.json".into(),
                reason: format!("two records for {}", e.attribute),
            });
        }
        let mut take = |f: &Option<String>, ext: &str| -> Result<Option<Vec<u8>>, PacketError> {
            match f {
                None => Ok(None),
                Some(name) if *name == format!("bio/{}.{ext}", e.attribute) => {
                    files.remove(name).map(Some).ok_or_else(|| missing(name))
                }
                Some(name) => Err(PacketError::Content {
                    section: s.into(),
                    entry: "biometrics.json".into(),
                    reason: format!("record {} names file {name:?}", e.attribute),
                }),
            }
        };
        let image = take(&e.image_file, "iso")?.unwrap_or_default();
        let jws = take(&e.data_block_file, "jws")?
            .map(|b| {
                String::from_utf8(b).map_err(|_| PacketError::Content {
                    section: s.into(),
                    entry: format!("bio/{}.jws", e.attribute),
                    reason: "data block is not UTF-8".into(),
                })
            })
            .transpose()?;
        biometrics.push(BiometricRecord {
            attribute: e.attribute,
            image,
            format: e.format,
            quality: e.quality,
            retries: e.retries,
            exception: e.exception,
            force_captured: e.force_captured,
            sbi_data_block: jws,
            device: e.device,
            captured_at: e.captured_at,
        });
    }
    if let Some(extra) = files.keys().next() {
        return Err(PacketError::Content {
            section: s.into(),
            entry: extra.clone(),
            reason: "file not listed in biometrics.json".into(),
        });
    }
    Ok(IdSection {
        identity,
        meta,
        biometrics,
    })
}

/// Reads and checks an `evidence` or `optional` section archive into memory.
pub(crate) fn read_docs<R: Read>(section: &str, r: R, limits: &Limits) -> Result<Vec<Document>, PacketError> {
    let mut entries: Option<Vec<DocEntry>> = None;
    let mut files: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    let mut first = true;
    read_entries(section, r, limits, &|n| allowed_name(section, n), &mut |mut e| {
        if first && e.name != "documents.json" {
            return Err(PacketError::Content {
                section: section.into(),
                entry: e.name.clone(),
                reason: "expected documents.json first".into(),
            });
        }
        first = false;
        let bytes = read_all(&mut e, section)?;
        if e.name == "documents.json" {
            entries = Some(parse_json(section, &e.name, &bytes)?);
        } else {
            files.insert(e.name.clone(), bytes);
        }
        Ok(())
    })?;
    let entries = entries.ok_or_else(|| PacketError::Content {
        section: section.into(),
        entry: "documents.json".into(),
        reason: "missing".into(),
    })?;
    let mut docs = Vec::with_capacity(entries.len());
    for e in entries {
        if e.file != format!("doc/{}", e.name) || !valid_doc_name(&e.name) {
            return Err(PacketError::Content {
                section: section.into(),
                entry: "documents.json".into(),
                reason: format!("document {:?} names file {:?}", e.name, e.file),
            });
        }
        let content = files.remove(&e.file).ok_or_else(|| PacketError::Content {
            section: section.into(),
            entry: e.file.clone(),
            reason: "missing".into(),
        })?;
        docs.push(Document {
            name: e.name,
            category: e.category,
            doc_type: e.doc_type,
            mime: e.mime,
            ref_number: e.ref_number,
            content,
        });
    }
    if let Some(extra) = files.keys().next() {
        return Err(PacketError::Content {
            section: section.into(),
            entry: extra.clone(),
            reason: "file not listed in documents.json".into(),
        });
    }
    Ok(docs)
}
