//! Delta sync by cursor, and loading a country configuration folder into the sync tables.
//!
//! Every item has a kind ([`SyncKind`]), a scope (`""` for all stations, or a center id for operators and
//! pre-registrations), a key, and a version from one server-wide counter that grows with every change. A
//! station asks for the changes after its cursor (the last version it applied) and gets them oldest first.
//!
//! Country configuration layout: either a `manifest.json` with a `files` map (the layout of
//! `config/sample-country/`: `idSchema` becomes the `id-schema` item keyed by the manifest's `idSchemaVersion`,
//! each of `uiSpecs` a `ui-spec` item keyed by process, `labels` the `master-data` items `labels/<lang>`, every
//! other file the `master-data` item named by its key, e.g. `centers`, and the manifest itself `manifest`), or
//! a sub-folder per kind named as
//! the kind's path segment (`id-schema/`, `ui-spec/`, `master-data/`, `operators/`, `certificates/`,
//! `pre-registrations/`), each holding `*.json` files. A file holding a JSON object is one item keyed by the
//! file stem; a file holding an array gives one item per element, keyed `<stem>/<code or id>` (the element's
//! `code`, `id` or `key` field). Center-scoped kinds take the scope from the item's `center_id` (or `centerId`).

use std::path::{Path, PathBuf};

use tessera_packet::wire::{SyncKind, SyncPage};

use crate::keys::ServerKeys;
use crate::store::{Store, StoreError};

/// Why configuration could not be loaded or a page read.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is not valid JSON or lacks a key.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The cursor is not one the server issued.
    #[error("cursor {0:?} is not valid; start again without a cursor")]
    BadCursor(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses an opaque cursor (absent = from the beginning).
pub fn parse_cursor(cursor: Option<&str>) -> Result<i64, SyncError> {
    match cursor {
        None | Some("") => Ok(0),
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| SyncError::BadCursor(c.to_owned())),
    }
}

/// One page of `kind` changes for a station of `center` after `cursor`.
pub async fn page(
    store: &dyn Store,
    kind: SyncKind,
    center: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<SyncPage, SyncError> {
    let after = parse_cursor(cursor)?;
    let scope = if kind.center_scoped() { center } else { "" };
    // One extra row tells whether more are waiting.
    let mut items = store
        .sync_items(kind, scope, after, limit.saturating_add(1))
        .await?;
    let has_more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = items.last().map_or(after, |i| i.version);
    Ok(SyncPage {
        kind,
        items,
        next_cursor: next.to_string(),
        has_more,
    })
}

/// Publishes the server's packet-recipient public keys (kind `packet-keys`).
pub async fn publish_packet_keys(store: &dyn Store, keys: &ServerKeys) -> Result<(), SyncError> {
    for (id, identity) in &keys.packet_identities {
        let body = serde_json::json!({
            "key_id": id,
            "recipient": identity.to_public().to_string(),
            "algorithm": "age-x25519",
        });
        store
            .put_sync_item(SyncKind::PacketKeys, "", id, Some(body))
            .await?;
    }
    Ok(())
}

fn item_key(stem: &str, v: &serde_json::Value) -> Option<String> {
    ["code", "id", "key"].iter().find_map(|f| match v.get(*f) {
        Some(serde_json::Value::String(s)) => Some(format!("{stem}/{s}")),
        Some(serde_json::Value::Number(n)) => Some(format!("{stem}/{n}")),
        _ => None,
    })
}

fn item_scope(v: &serde_json::Value) -> Option<String> {
    ["center_id", "centerId"]
        .iter()
        .find_map(|f| v.get(*f).and_then(|c| c.as_str()).map(str::to_owned))
}

fn read_json(path: &Path) -> Result<serde_json::Value, SyncError> {
    let text = std::fs::read_to_string(path).map_err(|source| SyncError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| SyncError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The (kind, key, file) items a `manifest.json` names.
fn manifest_items(
    dir: &Path,
    manifest: &serde_json::Value,
) -> Result<Vec<(SyncKind, String, PathBuf)>, SyncError> {
    let invalid = |message: String| SyncError::Invalid {
        path: dir.join("manifest.json"),
        message,
    };
    let files = manifest
        .get("files")
        .and_then(|f| f.as_object())
        .ok_or_else(|| invalid("no `files` object".into()))?;
    let mut out = Vec::new();
    for (name, value) in files {
        match (name.as_str(), value) {
            ("idSchema", serde_json::Value::String(f)) => {
                let version = manifest
                    .get("idSchemaVersion")
                    .and_then(|v| v.as_str())
                    .unwrap_or("1.0");
                out.push((SyncKind::IdSchema, version.to_owned(), dir.join(f)));
            }
            ("uiSpecs", serde_json::Value::Object(map)) => {
                for (process, f) in map {
                    let f = f
                        .as_str()
                        .ok_or_else(|| invalid(format!("uiSpecs.{process} is not a path")))?;
                    out.push((SyncKind::UiSpec, process.clone(), dir.join(f)));
                }
            }
            ("labels", serde_json::Value::Object(map)) => {
                for (lang, f) in map {
                    let f = f
                        .as_str()
                        .ok_or_else(|| invalid(format!("labels.{lang} is not a path")))?;
                    out.push((SyncKind::MasterData, format!("labels/{lang}"), dir.join(f)));
                }
            }
            (key, serde_json::Value::String(f)) => {
                out.push((SyncKind::MasterData, key.to_owned(), dir.join(f)))
            }
            (key, _) => return Err(invalid(format!("files.{key} is not a path"))),
        }
    }
    out.push((
        SyncKind::MasterData,
        "manifest".to_owned(),
        dir.join("manifest.json"),
    ));
    Ok(out)
}

/// Loads a country configuration folder into the sync tables; returns how many items changed. Loading the
/// same folder again changes nothing.
pub async fn load_country_config(store: &dyn Store, dir: &Path) -> Result<u64, SyncError> {
    let mut changed = 0;
    let manifest_path = dir.join("manifest.json");
    if manifest_path.is_file() {
        let manifest = read_json(&manifest_path)?;
        for (kind, key, path) in manifest_items(dir, &manifest)? {
            let body = read_json(&path)?;
            if store.put_sync_item(kind, "", &key, Some(body)).await?.is_some() {
                changed += 1;
            }
        }
        return Ok(changed);
    }
    for kind in SyncKind::ALL {
        if kind == SyncKind::PacketKeys {
            continue;
        }
        let sub = dir.join(kind.as_str());
        if !sub.is_dir() {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&sub)
            .map_err(|source| SyncError::Io {
                path: sub.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| SyncError::Io {
                path: path.clone(),
                source,
            })?;
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| SyncError::Invalid {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            let items: Vec<(String, serde_json::Value)> = match value {
                serde_json::Value::Array(arr) => arr
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        item_key(&stem, &v)
                            .map(|k| (k, v))
                            .ok_or_else(|| SyncError::Invalid {
                                path: path.clone(),
                                message: format!("element {i} has no `code`, `id` or `key` field"),
                            })
                    })
                    .collect::<Result<_, _>>()?,
                other => vec![(stem.clone(), other)],
            };
            for (key, body) in items {
                let scope = if kind.center_scoped() {
                    item_scope(&body).ok_or_else(|| SyncError::Invalid {
                        path: path.clone(),
                        message: format!(
                            "item {key} needs a `center_id` ({} are per center)",
                            kind.as_str()
                        ),
                    })?
                } else {
                    String::new()
                };
                if store
                    .put_sync_item(kind, &scope, &key, Some(body))
                    .await?
                    .is_some()
                {
                    changed += 1;
                }
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_parsing() {
        assert_eq!(parse_cursor(None).unwrap(), 0);
        assert_eq!(parse_cursor(Some("42")).unwrap(), 42);
        assert!(parse_cursor(Some("-1")).is_err());
        assert!(parse_cursor(Some("abc")).is_err());
    }
}
