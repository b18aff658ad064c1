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
//!
//! Loading is three steps: [`read_country_config`] parses the folder, [`plan_country_config`] checks it
//! against itself and the configuration in force (references between files, frozen ID-schema versions, a
//! new `configVersion`) and works out the changes, and [`apply_country_config`] writes them in one
//! transaction. The first start and `tessera-server country-config load` (or the admin API) use the same
//! path, so a configuration is never half-applied.

use std::path::{Path, PathBuf};

use tessera_packet::wire::{SyncKind, SyncPage};

use crate::store::{Store, StoreError, SyncChange};

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
    /// An ID-schema version that stations and packets already use would change.
    #[error(
        "{path}: ID-schema version {version} is already published and cannot change (packets of that version are validated with it); give the new schema a new idVersion and idSchemaVersion"
    )]
    SchemaVersionFrozen {
        /// The schema file.
        path: PathBuf,
        /// The version.
        version: String,
    },
    /// Items change but the manifest's `configVersion` is the one already loaded.
    #[error("{path}: configVersion {version} is already loaded but files changed; set a new configVersion")]
    VersionUnchanged {
        /// The manifest.
        path: PathBuf,
        /// The version.
        version: String,
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

/// Publishes the server's packet-recipient keys (kind `packet-keys`) in one transaction: the newest
/// (first) key is the one item stations receive and encrypt to; items of older keys are deleted (stations
/// stop encrypting to them; the server keeps them to open packets already made).
pub async fn publish_packet_keys(
    store: &dyn Store,
    identities: &[(String, age::x25519::Identity)],
) -> Result<(), SyncError> {
    let changes = identities
        .iter()
        .enumerate()
        .map(|(i, (id, identity))| SyncChange {
            kind: SyncKind::PacketKeys,
            scope: String::new(),
            key: id.clone(),
            body: (i == 0).then(|| {
                serde_json::json!({
                    "key_id": id,
                    "recipient": identity.to_public().to_string(),
                    "algorithm": "age-x25519",
                })
            }),
        })
        .collect();
    store.put_sync_items(changes).await?;
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

/// A country configuration read from a folder, not yet validated against the current one nor applied.
#[derive(Debug, Clone)]
pub struct CountryConfig {
    /// The folder.
    pub dir: PathBuf,
    /// `configVersion` of `manifest.json` (manifest layout only).
    pub config_version: Option<String>,
    /// Every item the folder defines (bodies present), with the file it came from.
    pub items: Vec<(SyncChange, PathBuf)>,
}

/// Reads a country configuration folder (either layout, see the module documentation). Only reads and
/// parses files: nothing is checked against the database and nothing is written.
pub fn read_country_config(dir: &Path) -> Result<CountryConfig, SyncError> {
    let manifest_path = dir.join("manifest.json");
    let mut items = Vec::new();
    if manifest_path.is_file() {
        let manifest = read_json(&manifest_path)?;
        let config_version = manifest
            .get("configVersion")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        for (kind, key, path) in manifest_items(dir, &manifest)? {
            let body = read_json(&path)?;
            items.push((change(kind, "", &key, body), path));
        }
        return Ok(CountryConfig {
            dir: dir.to_path_buf(),
            config_version,
            items,
        });
    }
    if !dir.is_dir() {
        return Err(SyncError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
        });
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
            let value = read_json(&path)?;
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            let file_items: Vec<(String, serde_json::Value)> = match value {
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
            for (key, body) in file_items {
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
                items.push((change(kind, &scope, &key, body), path.clone()));
            }
        }
    }
    Ok(CountryConfig {
        dir: dir.to_path_buf(),
        config_version: None,
        items,
    })
}

fn change(kind: SyncKind, scope: &str, key: &str, body: serde_json::Value) -> SyncChange {
    SyncChange {
        kind,
        scope: scope.to_owned(),
        key: key.to_owned(),
        body: Some(body),
    }
}

/// What applying a country configuration changes, worked out and checked before anything is written.
#[derive(Debug, Clone, Default)]
pub struct ConfigPlan {
    /// The changes to apply (in one transaction): new and changed items, and deletions of master-data and
    /// UI-spec items the new configuration no longer has.
    pub changes: Vec<SyncChange>,
    /// `configVersion` of the new configuration (manifest layout).
    pub config_version: Option<String>,
    /// ID-schema versions the configuration defines.
    pub id_schema_versions: Vec<String>,
}

/// Kinds a new configuration replaces as a whole: their items missing from it are deleted. ID-schema
/// versions are never deleted (packets of an old version are still validated with it); operators,
/// certificates and pre-registrations in a folder are added or changed only (they are mostly managed through
/// the admin API).
const REPLACED_KINDS: [SyncKind; 2] = [SyncKind::MasterData, SyncKind::UiSpec];

/// Checks a configuration read by [`read_country_config`] against itself and the current one, and works
/// out the changes. Refused when a file is inconsistent (the error names it and the field), when an
/// ID-schema version already published would change ([`SyncError::SchemaVersionFrozen`]), or when items
/// change but the manifest's `configVersion` is the one already loaded ([`SyncError::VersionUnchanged`]).
pub async fn plan_country_config(store: &dyn Store, cfg: &CountryConfig) -> Result<ConfigPlan, SyncError> {
    use std::collections::{BTreeMap, HashMap};
    let mut current: HashMap<(SyncKind, String, String), serde_json::Value> = HashMap::new();
    for kind in SyncKind::ALL {
        for i in store.current_sync_items(kind).await? {
            current.insert((kind, i.scope, i.item.key), i.item.body);
        }
    }
    let path_of = |kind: SyncKind| {
        cfg.items
            .iter()
            .find(|(c, _)| c.kind == kind)
            .map_or_else(|| cfg.dir.clone(), |(_, p)| p.clone())
    };
    let invalid = |path: PathBuf, message: String| SyncError::Invalid { path, message };

    // Published ID-schema versions are frozen.
    let mut schemas: BTreeMap<String, serde_json::Value> = current
        .iter()
        .filter(|((k, _, _), _)| *k == SyncKind::IdSchema)
        .map(|((_, _, key), body)| (key.clone(), body.clone()))
        .collect();
    let mut new_versions = Vec::new();
    for (c, path) in cfg.items.iter().filter(|(c, _)| c.kind == SyncKind::IdSchema) {
        let body = c.body.clone().unwrap_or_default();
        if let Some(v) = body.get("idVersion").and_then(|v| v.as_str())
            && v != c.key
        {
            return Err(invalid(
                path.clone(),
                format!(
                    "the schema's idVersion {v:?} differs from the version it is published as ({:?}, the manifest's idSchemaVersion)",
                    c.key
                ),
            ));
        }
        if let Some(old) = schemas.get(&c.key)
            && *old != body
        {
            return Err(SyncError::SchemaVersionFrozen {
                path: path.clone(),
                version: c.key.clone(),
            });
        }
        schemas.insert(c.key.clone(), body);
        new_versions.push(c.key.clone());
    }

    // The master data and UI specs as they will be.
    let master: BTreeMap<String, serde_json::Value> = cfg
        .items
        .iter()
        .filter(|(c, _)| c.kind == SyncKind::MasterData)
        .map(|(c, _)| (c.key.clone(), c.body.clone().unwrap_or_default()))
        .collect();
    let schema_list: Vec<(String, serde_json::Value)> =
        schemas.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    crate::validate::Rules::from_items(&schema_list, &master).map_err(|e| {
        invalid(
            path_of(SyncKind::IdSchema),
            format!("{e} (ID schema or master data)"),
        )
    })?;
    check_references(cfg, &schemas, &master)?;

    let certificates: Vec<(String, serde_json::Value)> = cfg
        .items
        .iter()
        .filter(|(c, _)| c.kind == SyncKind::Certificates)
        .map(|(c, _)| (c.key.clone(), c.body.clone().unwrap_or_default()))
        .collect();
    crate::device_check::trust_from_items(certificates.iter().map(|(k, b)| (k.as_str(), b)))
        .map_err(|e| invalid(path_of(SyncKind::Certificates), e))?;
    for (c, path) in cfg.items.iter().filter(|(c, _)| c.kind == SyncKind::Operators) {
        let body = c.body.clone().unwrap_or_default();
        crate::admin::OperatorItem::parse(body)
            .map_err(|e| invalid(path.clone(), format!("operator {}: {}", c.key, e.message)))?;
    }

    // The changes: new or changed items, then deletions of replaced kinds' items no longer defined.
    let mut changes = Vec::new();
    for (c, _) in &cfg.items {
        let same = current.get(&(c.kind, c.scope.clone(), c.key.clone())) == c.body.as_ref();
        if !same {
            changes.push(c.clone());
        }
    }
    for (kind, scope, key) in current.keys() {
        if REPLACED_KINDS.contains(kind)
            && !cfg
                .items
                .iter()
                .any(|(c, _)| c.kind == *kind && &c.scope == scope && &c.key == key)
        {
            changes.push(SyncChange {
                kind: *kind,
                scope: scope.clone(),
                key: key.clone(),
                body: None,
            });
        }
    }
    changes.sort_by(|a, b| (a.kind.as_str(), &a.scope, &a.key).cmp(&(b.kind.as_str(), &b.scope, &b.key)));
    let current_version = current
        .get(&(SyncKind::MasterData, String::new(), "manifest".to_owned()))
        .and_then(|m| m.get("configVersion"))
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    if !changes.is_empty() && cfg.config_version.is_some() && cfg.config_version == current_version {
        return Err(SyncError::VersionUnchanged {
            path: cfg.dir.join("manifest.json"),
            version: cfg.config_version.clone().unwrap_or_default(),
        });
    }
    Ok(ConfigPlan {
        changes,
        config_version: cfg.config_version.clone(),
        id_schema_versions: new_versions,
    })
}

/// Cross-file references: every schema field's `dynamicList` exists in `dynamicLists`, its `locationLevel`
/// among the levels of `locations`, and every UI-spec field in the ID schema the spec names.
fn check_references(
    cfg: &CountryConfig,
    schemas: &std::collections::BTreeMap<String, serde_json::Value>,
    master: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<(), SyncError> {
    let lists = master
        .get("dynamicLists")
        .and_then(|d| d.get("lists"))
        .and_then(|l| l.as_object());
    let levels: Option<Vec<&str>> = master.get("locations").map(|l| {
        let mut v: Vec<&str> = l
            .get("hierarchy")
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
            .filter_map(|h| h.get("name").and_then(|n| n.as_str()))
            .collect();
        v.extend(
            l.get("locations")
                .and_then(|h| h.as_array())
                .into_iter()
                .flatten()
                .filter_map(|h| h.get("level").and_then(|n| n.as_str())),
        );
        v
    });
    for (c, path) in cfg.items.iter().filter(|(c, _)| c.kind == SyncKind::IdSchema) {
        let fields = c
            .body
            .as_ref()
            .and_then(|b| b.get("fields"))
            .and_then(|f| f.as_array())
            .into_iter()
            .flatten();
        for f in fields {
            let id = f.get("id").and_then(|i| i.as_str()).unwrap_or("?");
            if let Some(list) = f.get("dynamicList").and_then(|l| l.as_str())
                && !lists.is_some_and(|l| l.contains_key(list))
            {
                return Err(SyncError::Invalid {
                    path: path.clone(),
                    message: format!("field {id}: dynamicList {list:?} is not in dynamicLists"),
                });
            }
            if let Some(level) = f.get("locationLevel").and_then(|l| l.as_str())
                && !levels.as_ref().is_some_and(|l| l.contains(&level))
            {
                return Err(SyncError::Invalid {
                    path: path.clone(),
                    message: format!("field {id}: locationLevel {level:?} is not a level of locations"),
                });
            }
        }
    }
    // Each center's time zone must be one the working-day check knows (an unknown one would silently be UTC).
    for (c, path) in cfg
        .items
        .iter()
        .filter(|(c, _)| c.kind == SyncKind::MasterData && c.key == "centers")
    {
        let centers = c
            .body
            .as_ref()
            .and_then(|b| b.get("centers"))
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten();
        for center in centers {
            if let Some(tz) = center.get("timezone").and_then(|t| t.as_str())
                && let Err(e) = crate::validate::center_time_zone(tz)
            {
                let id = center.get("id").and_then(|i| i.as_str()).unwrap_or("?");
                return Err(SyncError::Invalid {
                    path: path.clone(),
                    message: format!("center {id}: {e}"),
                });
            }
        }
    }
    for (c, path) in cfg.items.iter().filter(|(c, _)| c.kind == SyncKind::UiSpec) {
        let Some(body) = &c.body else { continue };
        let version = body
            .get("idSchemaVersion")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let schema = match &version {
            Some(v) => schemas.get(v).ok_or_else(|| SyncError::Invalid {
                path: path.clone(),
                message: format!("UI spec {}: ID-schema version {v:?} is not defined", c.key),
            })?,
            None => match schemas.values().next_back() {
                Some(s) => s,
                None => continue,
            },
        };
        let known: Vec<&str> = schema
            .get("fields")
            .and_then(|f| f.as_array())
            .into_iter()
            .flatten()
            .filter_map(|f| f.get("id").and_then(|i| i.as_str()))
            .collect();
        let screens = body
            .get("screens")
            .and_then(|s| s.as_array())
            .into_iter()
            .flatten();
        for screen in screens {
            for f in screen
                .get("fields")
                .and_then(|f| f.as_array())
                .into_iter()
                .flatten()
            {
                let id = f.get("id").and_then(|i| i.as_str()).unwrap_or_default();
                if !known.contains(&id) {
                    return Err(SyncError::Invalid {
                        path: path.clone(),
                        message: format!(
                            "UI spec {}: field {id:?} is not in ID schema {}",
                            c.key,
                            version.as_deref().unwrap_or("(latest)")
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Reads, checks ([`plan_country_config`]) and applies a country configuration folder in one transaction;
/// returns the plan that was applied. Loading the same folder again changes nothing.
pub async fn apply_country_config(store: &dyn Store, dir: &Path) -> Result<ConfigPlan, SyncError> {
    let cfg = read_country_config(dir)?;
    let plan = plan_country_config(store, &cfg).await?;
    if !plan.changes.is_empty() {
        store.put_sync_items(plan.changes.clone()).await?;
    }
    Ok(plan)
}

/// Loads a country configuration folder into the sync tables ([`apply_country_config`]); returns how many
/// items changed.
pub async fn load_country_config(store: &dyn Store, dir: &Path) -> Result<u64, SyncError> {
    let plan = apply_country_config(store, dir).await?;
    Ok(u64::try_from(plan.changes.len()).unwrap_or(u64::MAX))
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
