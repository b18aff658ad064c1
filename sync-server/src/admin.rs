//! Administration services, shared by the admin API ([`crate::http`], admin token) and the `tessera-server`
//! CLI, so that an administrator never needs to touch the database:
//!
//! - **operators** (kind `operators`, per center): [`publish_operators`], [`revoke_operator`],
//!   [`list_operators`]. Each item is the station's operator record (`id`, `name`, `roles`, `centerId`,
//!   `active`, `passwordHash`), checked as the station checks a bundle, published in one transaction.
//! - **device-provider CA certificates** (kind `certificates`): [`publish_certificate`],
//!   [`revoke_certificate`], [`list_certificates`]. The server checks every biometric's device signature
//!   against them; stations receive them too.
//! - **country configuration**: [`reload_country_config`] reads a folder, checks it against itself and the
//!   configuration in force ([`crate::sync::plan_country_config`]) and applies it in one transaction, or
//!   only reports with `dry_run`.
//! - **packet-recipient keys**: [`rotate_packet_key`] creates a new key, publishes it as the only one
//!   stations encrypt to, and keeps the older ones for decryption; [`list_packet_keys`].
//! - **packets**: [`list_packets`] (e.g. the quarantine), [`packet_detail`] with the status history,
//!   [`reprocess`] of a quarantined packet after a fix.
//!
//! Every function validates completely before it writes, and writes in one transaction, so a refused
//! request leaves nothing half-written. Errors are [`ApiError`]s with stable codes (`docs/api.md`); the CLI
//! prints them as `code: message`. Logs carry ids only (operator id, certificate id, RID), never a name or
//! a password hash.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tessera_packet::ids::{CenterId, Rid};
use tessera_packet::wire::{PacketStatus, SyncKind};

use crate::error::ApiError;
use crate::store::{PacketEvent, PacketRecord, Store, SyncChange};
use crate::sync::SyncError;

/// Largest id of an operator or certificate.
const MAX_ID: usize = 64;

/// Whether `id` is 1-64 of `A-Z a-z 0-9 . _ -` (operator and certificate ids).
pub fn valid_id(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

/// An operator role, as stations know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorRole {
    /// Registers residents.
    Officer,
    /// Approves or rejects packets (and may register too).
    Supervisor,
}

/// One operator account as published to the stations of its center (the station's operator record).
/// **Frozen format**: stations parse it with unknown fields refused.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorItem {
    /// Login id (1-64 of `A-Z a-z 0-9 . _ -`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Roles (at least one).
    pub roles: Vec<OperatorRole>,
    /// The operator's center (5 digits).
    pub center_id: String,
    /// Whether the account may log in.
    pub active: bool,
    /// Argon2id PHC hash of the password (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
    pub password_hash: String,
}

impl std::fmt::Debug for OperatorItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorItem")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .field("center_id", &self.center_id)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl OperatorItem {
    /// Parses and checks one operator record. Codes: `malformed_body`, `invalid_operator_id`,
    /// `invalid_operator_name`, `invalid_roles`, `invalid_center_id`, `invalid_password_hash`.
    pub fn parse(value: serde_json::Value) -> Result<Self, ApiError> {
        let op: Self = serde_json::from_value(value).map_err(|e| {
            ApiError::bad_request(
                "malformed_body",
                format!(
                    "an operator is {{\"id\", \"name\", \"roles\": [\"officer\"|\"supervisor\"], \"centerId\", \"active\", \"passwordHash\"}}: {e}"
                ),
            )
        })?;
        if !valid_id(&op.id) {
            return Err(ApiError::bad_request(
                "invalid_operator_id",
                "the operator id must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'",
            ));
        }
        if op.name.trim().is_empty() || op.name.chars().count() > 128 || op.name.chars().any(char::is_control)
        {
            return Err(ApiError::bad_request(
                "invalid_operator_name",
                format!(
                    "operator {}: the name must be 1 to 128 characters without control characters",
                    op.id
                ),
            ));
        }
        let repeated = op
            .roles
            .iter()
            .enumerate()
            .any(|(i, r)| op.roles.iter().take(i).any(|x| x == r));
        if op.roles.is_empty() || repeated {
            return Err(ApiError::bad_request(
                "invalid_roles",
                format!(
                    "operator {}: give each role once, at least one of officer, supervisor",
                    op.id
                ),
            ));
        }
        if op.center_id.parse::<CenterId>().is_err() {
            return Err(ApiError::bad_request(
                "invalid_center_id",
                format!("operator {}: centerId must be a 5-digit center id", op.id),
            ));
        }
        let parts: Vec<&str> = op.password_hash.split('$').collect();
        if parts.len() != 6
            || parts.first() != Some(&"")
            || parts.get(1) != Some(&"argon2id")
            || parts.iter().skip(2).any(|p| p.is_empty())
        {
            return Err(ApiError::bad_request(
                "invalid_password_hash",
                format!(
                    "operator {}: passwordHash must be an Argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash); never send a password",
                    op.id
                ),
            ));
        }
        Ok(op)
    }
}

/// Parses an admin request body holding one operator, a list of operators, or a station bundle
/// (`{"version"?, "operators": [...]}`).
pub fn parse_operators(body: &[u8]) -> Result<Vec<OperatorItem>, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_body", format!("the body is not JSON: {e}")))?;
    let list = match value {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(mut o) if o.contains_key("operators") => {
            if o.keys().any(|k| k != "operators" && k != "version") {
                return Err(ApiError::bad_request(
                    "malformed_body",
                    "a bundle has only `version` and `operators`",
                ));
            }
            match o.remove("operators") {
                Some(serde_json::Value::Array(a)) => a,
                _ => {
                    return Err(ApiError::bad_request(
                        "malformed_body",
                        "`operators` must be a list",
                    ));
                }
            }
        }
        single @ serde_json::Value::Object(_) => vec![single],
        _ => {
            return Err(ApiError::bad_request(
                "malformed_body",
                "send an operator object, a list of them, or {\"operators\": [...]}",
            ));
        }
    };
    if list.is_empty() {
        return Err(ApiError::bad_request("malformed_body", "no operator given"));
    }
    list.into_iter().map(OperatorItem::parse).collect()
}

/// The outcome of publishing one operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedOperator {
    /// Operator id.
    pub id: String,
    /// The center whose stations receive it.
    pub center_id: String,
    /// False when the same record was already published (nothing changed).
    pub changed: bool,
    /// The center the operator was moved away from, if any (stations there drop it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
}

/// The id of the operator an `operators` sync item holds (its key, or the `id` in its body for items loaded
/// from a configuration folder, keyed `<file>/<id>`).
fn operator_id_of(key: &str, body: &serde_json::Value) -> String {
    body.get("id")
        .and_then(|v| v.as_str())
        .map_or_else(|| key.to_owned(), str::to_owned)
}

/// Center ids of the `centers` master data, when configured.
async fn known_centers(store: &dyn Store) -> Result<Option<Vec<String>>, ApiError> {
    let items = store.current_sync_items(SyncKind::MasterData).await?;
    let Some(centers) = items.iter().find(|i| i.item.key == "centers") else {
        return Ok(None);
    };
    Ok(Some(
        centers
            .item
            .body
            .get("centers")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("id").and_then(|i| i.as_str()).map(str::to_owned))
            .collect(),
    ))
}

/// Publishes operators to the stations of their centers, in one transaction. An operator already
/// published under another center is moved (deleted there). Codes besides [`OperatorItem::parse`]'s:
/// `duplicate_operator` (twice in one request), `unknown_center` (not in the `centers` master data).
pub async fn publish_operators(
    store: &dyn Store,
    ops: Vec<OperatorItem>,
) -> Result<Vec<PublishedOperator>, ApiError> {
    let mut seen = std::collections::BTreeSet::new();
    for o in &ops {
        if !seen.insert(o.id.clone()) {
            return Err(ApiError::bad_request(
                "duplicate_operator",
                format!("operator {} appears twice in the request", o.id),
            ));
        }
    }
    if let Some(centers) = known_centers(store).await?
        && let Some(o) = ops.iter().find(|o| !centers.contains(&o.center_id))
    {
        return Err(ApiError::bad_request(
            "unknown_center",
            format!(
                "operator {}: center {} is not in the centers master data",
                o.id, o.center_id
            ),
        ));
    }
    let current = store.current_sync_items(SyncKind::Operators).await?;
    let mut changes = Vec::new();
    let mut out = Vec::new();
    for o in ops {
        let mut moved_from = None;
        for old in current
            .iter()
            .filter(|i| operator_id_of(&i.item.key, &i.item.body) == o.id && i.scope != o.center_id)
        {
            moved_from = Some(old.scope.clone());
            changes.push(SyncChange {
                kind: SyncKind::Operators,
                scope: old.scope.clone(),
                key: old.item.key.clone(),
                body: None,
            });
        }
        let body = serde_json::to_value(&o).map_err(|e| ApiError::internal(e.to_string()))?;
        // An item loaded from a folder under another key is replaced by the admin-managed one.
        for old in current.iter().filter(|i| {
            i.scope == o.center_id && i.item.key != o.id && operator_id_of(&i.item.key, &i.item.body) == o.id
        }) {
            changes.push(SyncChange {
                kind: SyncKind::Operators,
                scope: old.scope.clone(),
                key: old.item.key.clone(),
                body: None,
            });
        }
        changes.push(SyncChange {
            kind: SyncKind::Operators,
            scope: o.center_id.clone(),
            key: o.id.clone(),
            body: Some(body),
        });
        out.push((o.id, o.center_id, moved_from, changes.len() - 1));
    }
    let versions = store.put_sync_items(changes).await?;
    let published = out
        .into_iter()
        .map(|(id, center_id, moved_from, i)| {
            let changed = versions.get(i).is_some_and(Option::is_some);
            if changed {
                tracing::info!(operator = %id, center = %center_id, "operator published");
            }
            PublishedOperator {
                id,
                center_id,
                changed,
                moved_from,
            }
        })
        .collect();
    Ok(published)
}

/// Revokes an operator: removed from every center's stations (they drop the account at their next sync).
/// Returns the centers it was removed from; `not_found` when it is not published.
pub async fn revoke_operator(store: &dyn Store, id: &str) -> Result<Vec<String>, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::bad_request(
            "invalid_operator_id",
            "the operator id must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'",
        ));
    }
    let current = store.current_sync_items(SyncKind::Operators).await?;
    let changes: Vec<SyncChange> = current
        .iter()
        .filter(|i| operator_id_of(&i.item.key, &i.item.body) == id)
        .map(|i| SyncChange {
            kind: SyncKind::Operators,
            scope: i.scope.clone(),
            key: i.item.key.clone(),
            body: None,
        })
        .collect();
    if changes.is_empty() {
        return Err(ApiError::not_found(format!("operator {id} is not published")));
    }
    let centers = changes.iter().map(|c| c.scope.clone()).collect();
    store.put_sync_items(changes).await?;
    tracing::info!(operator = %id, "operator revoked");
    Ok(centers)
}

/// A published operator as the admin API lists it (without the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorView {
    /// Operator id.
    pub id: String,
    /// Center.
    pub center_id: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Whether the account may log in.
    pub active: bool,
    /// Sync version of the item.
    pub version: i64,
}

/// Published operators, optionally of one center.
pub async fn list_operators(store: &dyn Store, center: Option<&str>) -> Result<Vec<OperatorView>, ApiError> {
    if let Some(c) = center
        && c.parse::<CenterId>().is_err()
    {
        return Err(ApiError::bad_request(
            "invalid_center_id",
            "center must be a 5-digit center id",
        ));
    }
    Ok(store
        .current_sync_items(SyncKind::Operators)
        .await?
        .into_iter()
        .filter(|i| center.is_none_or(|c| c == i.scope))
        .map(|i| {
            let body = &i.item.body;
            OperatorView {
                id: operator_id_of(&i.item.key, body),
                center_id: i.scope.clone(),
                roles: body
                    .get("roles")
                    .and_then(|r| r.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect(),
                active: body.get("active").and_then(|a| a.as_bool()).unwrap_or(false),
                version: i.item.version,
            }
        })
        .collect())
}

/// A published device-provider CA certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateView {
    /// Certificate id (the sync item's key).
    pub id: String,
    /// Common names of the certificates in its PEM.
    pub subjects: Vec<String>,
    /// Sync version of the item.
    pub version: i64,
}

/// The DER bytes of each `CERTIFICATE` block of a PEM text (blocks that are not base64 are skipped; the
/// trust store reports them).
fn pem_ders(pem: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let mut out = Vec::new();
    let mut inside: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            inside = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(b64) = inside.take()
                && let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64)
            {
                out.push(der);
            }
        } else if let Some(b64) = inside.as_mut() {
            b64.push_str(line);
        }
    }
    out
}

fn certificate_view(id: &str, body: &serde_json::Value, version: i64) -> CertificateView {
    let pem = body.get("pem").and_then(|p| p.as_str()).unwrap_or_default();
    CertificateView {
        id: id.to_owned(),
        subjects: pem_ders(pem)
            .iter()
            .map(|d| tessera_sbi::jws::certificate_common_name(d).unwrap_or_else(|| "(no CN)".into()))
            .collect(),
        version,
    }
}

/// Publishes (or replaces) a device-provider CA certificate under `id`. Codes: `invalid_certificate_id`,
/// `invalid_certificate` (the PEM holds no X.509 certificate, or one that does not parse).
pub async fn publish_certificate(
    store: &dyn Store,
    id: &str,
    pem: &str,
) -> Result<CertificateView, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::bad_request(
            "invalid_certificate_id",
            "the certificate id must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'",
        ));
    }
    let body = serde_json::json!({ "pem": pem });
    crate::device_check::trust_from_items([(id, &body)])
        .map_err(|e| ApiError::bad_request("invalid_certificate", e))?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(ApiError::bad_request(
            "invalid_certificate",
            format!("certificates item {id}: no PEM CERTIFICATE block"),
        ));
    }
    let version = store
        .put_sync_items(vec![SyncChange {
            kind: SyncKind::Certificates,
            scope: String::new(),
            key: id.to_owned(),
            body: Some(body.clone()),
        }])
        .await?;
    let version = match version.first().copied().flatten() {
        Some(v) => v,
        None => store
            .current_sync_items(SyncKind::Certificates)
            .await?
            .into_iter()
            .find(|i| i.item.key == id)
            .map_or(0, |i| i.item.version),
    };
    tracing::info!(certificate = %id, "device-provider CA certificate published");
    Ok(certificate_view(id, &body, version))
}

/// Revokes a device-provider CA certificate: biometrics signed under it are refused from now on (by
/// validation and by stations). `not_found` when it is not published.
pub async fn revoke_certificate(store: &dyn Store, id: &str) -> Result<(), ApiError> {
    let current = store.current_sync_items(SyncKind::Certificates).await?;
    if !current.iter().any(|i| i.item.key == id) {
        return Err(ApiError::not_found(format!("certificate {id} is not published")));
    }
    store
        .put_sync_items(vec![SyncChange {
            kind: SyncKind::Certificates,
            scope: String::new(),
            key: id.to_owned(),
            body: None,
        }])
        .await?;
    tracing::info!(certificate = %id, "device-provider CA certificate revoked");
    Ok(())
}

/// Published device-provider CA certificates.
pub async fn list_certificates(store: &dyn Store) -> Result<Vec<CertificateView>, ApiError> {
    Ok(store
        .current_sync_items(SyncKind::Certificates)
        .await?
        .iter()
        .map(|i| certificate_view(&i.item.key, &i.item.body, i.item.version))
        .collect())
}

/// What a country-configuration reload did (or, with `dry_run`, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigReport {
    /// The folder read.
    pub folder: String,
    /// Its `configVersion`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_version: Option<String>,
    /// ID-schema versions it defines.
    pub id_schema_versions: Vec<String>,
    /// Items changed, as `<kind>/<key>` (`<kind>/<center>/<key>` for per-center kinds), deletions
    /// marked `(deleted)`.
    pub changes: Vec<String>,
    /// Whether the changes were written.
    pub applied: bool,
}

/// The API error of a configuration that cannot be loaded.
pub fn config_error(e: SyncError) -> ApiError {
    match e {
        SyncError::Io { .. } => ApiError::bad_request("country_config_unreadable", e.to_string()),
        SyncError::Invalid { .. } => ApiError::bad_request("invalid_country_config", e.to_string()),
        SyncError::SchemaVersionFrozen { .. } => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "id_schema_version_frozen",
            e.to_string(),
        ),
        SyncError::VersionUnchanged { .. } => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "config_version_unchanged",
            e.to_string(),
        ),
        SyncError::BadCursor(_) => ApiError::internal(e.to_string()),
        SyncError::Store(s) => s.into(),
    }
}

/// Reads a country configuration folder, checks it, and (unless `dry_run`) applies it in one transaction.
/// Codes: `country_config_unreadable`, `invalid_country_config` (the message names the file and field),
/// `id_schema_version_frozen`, `config_version_unchanged` (409).
pub async fn reload_country_config(
    store: &dyn Store,
    dir: &Path,
    dry_run: bool,
) -> Result<ConfigReport, ApiError> {
    let cfg = crate::sync::read_country_config(dir).map_err(config_error)?;
    let plan = crate::sync::plan_country_config(store, &cfg)
        .await
        .map_err(config_error)?;
    let changes = plan
        .changes
        .iter()
        .map(|c| {
            let scope = if c.scope.is_empty() {
                String::new()
            } else {
                format!("{}/", c.scope)
            };
            let deleted = if c.body.is_none() { " (deleted)" } else { "" };
            format!("{}/{scope}{}{deleted}", c.kind.as_str(), c.key)
        })
        .collect();
    let applied = !dry_run && !plan.changes.is_empty();
    if applied {
        store.put_sync_items(plan.changes.clone()).await?;
        tracing::info!(
            folder = %dir.display(),
            changes = plan.changes.len(),
            version = plan.config_version.as_deref().unwrap_or("-"),
            "country configuration applied"
        );
    }
    Ok(ConfigReport {
        folder: dir.display().to_string(),
        config_version: plan.config_version,
        id_schema_versions: plan.id_schema_versions,
        changes,
        applied,
    })
}

/// A packet-recipient key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketKeyView {
    /// Key id (`packet-recipient-<n>`, the file name in `keys/`).
    pub key_id: String,
    /// The age recipient (public key).
    pub recipient: String,
    /// Whether stations receive it and encrypt to it (the newest key at the last rotation or start); the
    /// others only decrypt.
    pub published: bool,
}

/// The server's packet-recipient keys, newest first, each marked whether stations receive it.
pub async fn list_packet_keys(
    store: &dyn Store,
    identities: &[(String, age::x25519::Identity)],
) -> Result<Vec<PacketKeyView>, ApiError> {
    let published: Vec<String> = store
        .current_sync_items(SyncKind::PacketKeys)
        .await?
        .into_iter()
        .map(|i| i.item.key)
        .collect();
    Ok(identities
        .iter()
        .map(|(id, k)| PacketKeyView {
            key_id: id.clone(),
            recipient: k.to_public().to_string(),
            published: published.contains(id),
        })
        .collect())
}

/// Creates a new packet-recipient key in `<data_dir>/keys`, publishes it as the only key stations encrypt
/// to (older keys are unpublished, kept on disk for the packets already encrypted to them), and returns
/// every key, newest first.
pub async fn rotate_packet_key(
    store: &dyn Store,
    data_dir: &Path,
) -> Result<Vec<(String, age::x25519::Identity)>, ApiError> {
    let dir = data_dir.to_path_buf();
    let identities = tokio::task::spawn_blocking(move || {
        crate::keys::create_next_packet_key(&dir)?;
        crate::keys::load_packet_identities(&dir)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(e.to_string()))?;
    crate::sync::publish_packet_keys(store, &identities)
        .await
        .map_err(config_error)?;
    if let Some((id, _)) = identities.first() {
        tracing::info!(key = %id, "packet-recipient key rotated");
    }
    Ok(identities)
}

/// A received packet as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketView {
    /// RID.
    pub rid: String,
    /// The machine that made it.
    pub machine_id: String,
    /// Pipeline status.
    pub status: PacketStatus,
    /// Reason code (quarantine, rejection, hold).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the sealed packet.
    pub sha256: String,
    /// When it was received (Unix seconds).
    pub received_at: i64,
    /// When its status last changed (Unix seconds).
    pub updated_at: i64,
}

impl From<&PacketRecord> for PacketView {
    fn from(p: &PacketRecord) -> Self {
        Self {
            rid: p.rid.to_string(),
            machine_id: p.machine_id.to_string(),
            status: p.status,
            reason: p.reason.clone(),
            size: p.size,
            sha256: p.sha256.clone(),
            received_at: p.received_at,
            updated_at: p.updated_at,
        }
    }
}

/// A packet with its status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketDetail {
    /// The packet.
    #[serde(flatten)]
    pub packet: PacketView,
    /// Every status change, oldest first.
    pub history: Vec<PacketEvent>,
}

/// Largest page of [`list_packets`].
pub const MAX_PACKET_LIST: u32 = 1000;

/// Parses a packet status name (`QUARANTINED`, ...). Code `invalid_status`.
pub fn parse_packet_status(s: &str) -> Result<PacketStatus, ApiError> {
    PacketStatus::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_status",
            "status must be one of UPLOADING, RECEIVED, PROCESSING, ON_HOLD, PROCESSED, DUPLICATE, QUARANTINED, REJECTED",
        )
    })
}

/// Received packets, optionally by status, least recently changed first (at most `limit`, capped at
/// [`MAX_PACKET_LIST`]).
pub async fn list_packets(
    store: &dyn Store,
    status: Option<PacketStatus>,
    limit: u32,
) -> Result<Vec<PacketView>, ApiError> {
    Ok(store
        .packets_by_status(status, limit.clamp(1, MAX_PACKET_LIST))
        .await?
        .iter()
        .map(PacketView::from)
        .collect())
}

fn parse_rid(rid: &str) -> Result<Rid, ApiError> {
    rid.parse()
        .map_err(|e| ApiError::bad_request("invalid_rid", format!("{e}")))
}

/// A packet and its status history; `invalid_rid`, `not_found`.
pub async fn packet_detail(store: &dyn Store, rid: &str) -> Result<PacketDetail, ApiError> {
    let rid = parse_rid(rid)?;
    let p = store
        .packet(&rid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("packet {rid} has not been received")))?;
    Ok(PacketDetail {
        packet: PacketView::from(&p),
        history: store.packet_history(&rid).await?,
    })
}

/// Puts a quarantined packet back in the processing queue after a fix (a key restored, a machine
/// re-enrolled, a configuration corrected): it goes through every stage again, from verification. Codes:
/// `invalid_rid`, `not_found`, `not_quarantined` (409, with the current status).
pub async fn reprocess(store: &dyn Store, rid: &str, now: i64) -> Result<PacketView, ApiError> {
    let rid = parse_rid(rid)?;
    let requeued = store
        .requeue_packet(&rid, PacketStatus::Quarantined, now)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound { .. } => {
                ApiError::not_found(format!("packet {rid} has not been received"))
            }
            other => other.into(),
        })?;
    let p = store
        .packet(&rid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("packet {rid} has not been received")))?;
    if !requeued {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "not_quarantined",
            format!(
                "packet {rid} is {}, not QUARANTINED; only quarantined packets are reprocessed",
                p.status.as_str()
            ),
        ));
    }
    tracing::info!(%rid, "quarantined packet queued for reprocessing");
    Ok(PacketView::from(&p))
}
