//! Creating a station from a **station set-up kit** (format: [`tessera_packet::wire::kit`]), so that a
//! first-run officer needs no terminal and types no key: the administrator runs
//! `tessera-server station-kit --center ... --out FILE` and hands over the file (USB drive) with a slip showing
//! the server key's fingerprint.
//!
//! - [`inspect`] reads a kit (untrusted bytes): format, version and signature are checked, the configuration
//!   is validated as a whole, the operators bundle and packet keys are read, and a [`KitSummary`] says what it
//!   holds (center, server address, server-key fingerprint, recovery key, operators) for the officer to
//!   confirm against the slip.
//! - [`create`] creates the station exactly as `init` does, with the kit's configuration, operators, packet
//!   keys and recovery key, and in the same transaction stores the kit's items as synced items with their
//!   cursors (so device-provider certificates are trusted at once and the first sync fetches only what
//!   changed) and **pins the server key**: enrolling with a server whose key differs from the kit's is
//!   refused. The first operator is logged in; enrolment and first sync follow as usual.
//!
//! Bad kits (truncated, tampered, another version, not a kit, a configuration the station refuses, a center
//! that is not active) are [`StationError::Kit`] (code `KIT`) or the configuration's own errors, with what to
//! do.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tessera_packet::clock::Clock;
use tessera_packet::wire::SyncKind;
use tessera_packet::wire::kit::{SignedStationKit, StationKit};

use crate::crypto::KdfParams;
use crate::error::{Result, StationError};
use crate::masterdata::{Document, MasterData};
use crate::operators::{Operator, OperatorBundle};
use crate::station::{InitParams, MachineIdentity, Station};

/// An operator listed in a kit (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KitOperator {
    /// Login id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Roles (`officer`, `supervisor`).
    pub roles: Vec<String>,
    /// Whether the account is active.
    pub active: bool,
}

/// What a kit holds, for the officer to confirm before the station is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KitSummary {
    /// Hex SHA-256 of the kit file; [`create`] requires the same file.
    pub kit_sha256: String,
    /// Center id.
    pub center_id: String,
    /// Center name by language.
    pub center_name: BTreeMap<String, String>,
    /// Country.
    pub country: String,
    /// Provisional machine id (enrolment assigns the real one).
    pub machine_id: String,
    /// Server address.
    pub server_url: String,
    /// Fingerprint of the server signing key: compare it with the administrator's slip.
    pub server_key_fingerprint: String,
    /// The recovery public key (`age1...`).
    pub recovery_key: String,
    /// When the server made the kit.
    pub created_at: DateTime<Utc>,
    /// Configuration version.
    pub config_version: String,
    /// Operators of the center.
    pub operators: Vec<KitOperator>,
    /// Packet (encryption) keys.
    pub packet_keys: usize,
    /// Trusted device-provider certificates.
    pub certificates: usize,
}

/// A kit read and checked, ready to create a station from.
pub(crate) struct Checked {
    pub(crate) kit: StationKit,
    pub(crate) docs: Vec<Document>,
    pub(crate) bundle: OperatorBundle,
    pub(crate) recipients: Vec<String>,
    pub(crate) summary: KitSummary,
}

fn bad(detail: impl Into<String>) -> StationError {
    StationError::Kit(detail.into())
}

/// Reads and checks a kit file's bytes (see the module docs).
pub(crate) fn check(bytes: &[u8]) -> Result<Checked> {
    let kit = SignedStationKit::parse(bytes)
        .and_then(|k| k.verify())
        .map_err(|e| bad(e.to_string()))?;
    let center: tessera_packet::ids::CenterId = kit
        .center_id
        .parse()
        .map_err(|e| bad(format!("its center: {e}")))?;
    let _machine: tessera_packet::ids::MachineId = kit
        .machine_id
        .parse()
        .map_err(|e| bad(format!("its machine id: {e}")))?;
    let server_key_fingerprint = kit.server_key_fingerprint().map_err(|e| bad(e.to_string()))?;
    kit.recovery_key
        .parse::<age::x25519::Recipient>()
        .map_err(|e| bad(format!("its recovery key is not an age public key: {e}")))?;

    // The configuration, assembled exactly as a sync assembles it, then validated as a whole.
    let items = |k: SyncKind| {
        kit.section(k)
            .map(|p| p.items.iter().filter(|i| !i.deleted).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let doc = |name: String, body: &serde_json::Value| Document {
        version: crate::sync::doc_version(body),
        body: body.to_string(),
        name,
    };
    let mut docs = Vec::new();
    let schema = items(SyncKind::IdSchema);
    let schema = schema
        .iter()
        .max_by_key(|i| i.version)
        .ok_or_else(|| bad("it holds no ID schema; ask the administrator for a new kit"))?;
    docs.push(doc("id-schema".into(), &schema.body));
    for i in items(SyncKind::UiSpec) {
        docs.push(doc(format!("ui-spec/{}", i.key), &i.body));
    }
    for i in items(SyncKind::MasterData) {
        docs.push(doc(crate::sync::document_name(&i.key), &i.body));
    }
    let md = MasterData::from_documents(&docs)?;
    let c = md
        .centers
        .centers
        .iter()
        .find(|c| c.id == center.as_str() && c.active)
        .ok_or_else(|| {
            bad(format!(
                "center {center} is not an active center of its configuration"
            ))
        })?;
    let center_name = c.name.clone();

    // Operators: the same checks as a synced or local bundle.
    let mut operators = Vec::new();
    for i in items(SyncKind::Operators) {
        let o: Operator =
            serde_json::from_value(i.body.clone()).map_err(|e| bad(format!("operator {}: {e}", i.key)))?;
        operators.push(o);
    }
    let version = items(SyncKind::Operators)
        .iter()
        .map(|i| i.version)
        .max()
        .unwrap_or(0)
        .to_string();
    let bundle_bytes = serde_json::to_vec(&OperatorBundle { version, operators })
        .map_err(|e| bad(format!("its operators: {e}")))?;
    let bundle = OperatorBundle::parse(&bundle_bytes)?;
    let mine: Vec<KitOperator> = bundle
        .operators
        .iter()
        .filter(|o| o.center_id == center.as_str())
        .map(|o| KitOperator {
            id: o.id.clone(),
            name: o.name.clone(),
            roles: o.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            active: o.active,
        })
        .collect();
    if mine.is_empty() {
        return Err(bad(format!(
            "it lists no operator of center {center}; ask the administrator to publish the center's operators and make a new kit"
        )));
    }

    let mut recipients = Vec::new();
    for i in items(SyncKind::PacketKeys) {
        let r = i
            .body
            .get("recipient")
            .and_then(|r| r.as_str())
            .ok_or_else(|| bad(format!("packet key {} has no recipient", i.key)))?;
        r.parse::<age::x25519::Recipient>()
            .map_err(|e| bad(format!("packet key {}: {e}", i.key)))?;
        recipients.push(r.to_owned());
    }
    if recipients.is_empty() {
        return Err(bad("it holds no packet key; ask the administrator for a new kit"));
    }
    let certificates = items(SyncKind::Certificates).len();

    let summary = KitSummary {
        kit_sha256: hex::encode(Sha256::digest(bytes)),
        center_id: kit.center_id.clone(),
        center_name,
        country: md.manifest.country.clone(),
        machine_id: kit.machine_id.clone(),
        server_url: kit.server_url.clone(),
        server_key_fingerprint,
        recovery_key: kit.recovery_key.clone(),
        created_at: kit.created_at,
        config_version: md.manifest.config_version.clone(),
        operators: mine,
        packet_keys: recipients.len(),
        certificates,
    };
    Ok(Checked {
        kit,
        docs,
        bundle,
        recipients,
        summary,
    })
}

/// Reads a kit and says what it holds (nothing is written).
pub fn inspect(bytes: &[u8]) -> Result<KitSummary> {
    Ok(check(bytes)?.summary)
}

/// Creates the station in `home` from a kit, with `operator` (listed in the kit, of its center) as the first
/// operator, logged in. `expected_sha256`, when given, must be the [`KitSummary::kit_sha256`] the officer
/// confirmed.
pub fn create(
    home: &Path,
    bytes: &[u8],
    expected_sha256: Option<&str>,
    operator: &str,
    password: &str,
    kdf: KdfParams,
    clock: Arc<dyn Clock>,
) -> Result<(Station, MachineIdentity, KitSummary)> {
    let c = check(bytes)?;
    if let Some(want) = expected_sha256
        && !want.eq_ignore_ascii_case(&c.summary.kit_sha256)
    {
        return Err(bad(
            "this is not the kit file you confirmed (it changed since it was read); open it again",
        ));
    }
    let (st, id) = Station::init_from_kit(
        InitParams {
            home,
            center_id: c.kit.center_id.parse()?,
            machine_id: c.kit.machine_id.parse()?,
            recovery_recipient: &c.kit.recovery_key,
            master_data: c.docs,
            operators: c.bundle,
            packet_recipients: c.recipients,
            operator_id: operator,
            password,
            kdf,
        },
        clock,
        &c.kit,
        &c.summary.kit_sha256,
    )?;
    Ok((st, id, c.summary))
}

/// The server a station was set up for by its kit (pinned key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KitPin {
    /// Server address from the kit.
    pub server_url: String,
    /// Server signing key (base64).
    pub server_key: String,
    /// Its fingerprint.
    pub server_key_fingerprint: String,
}

impl Station {
    /// The server pinned by the kit this station was created from, if any.
    pub fn kit_pin(&self) -> Result<Option<KitPin>> {
        use rusqlite::OptionalExtension as _;
        let row: Option<(String, String)> = self
            .store
            .conn()
            .query_row(
                "SELECT server_url, server_key FROM station_kit WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(StationError::db("reading the station kit pin"))?;
        Ok(row.map(|(server_url, server_key)| {
            let server_key_fingerprint = tessera_packet::wire::decode_public_key("serverKey", &server_key)
                .map(|k| crate::crypto::fingerprint(k.as_bytes()))
                .unwrap_or_default();
            KitPin {
                server_url,
                server_key,
                server_key_fingerprint,
            }
        }))
    }
}

/// Stores a kit's items as synced items with their cursors, and the server pin, inside `init`'s transaction.
pub(crate) fn store_seed(
    tx: &rusqlite::Connection,
    kit: &StationKit,
    kit_sha256: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    use rusqlite::params;
    for page in &kit.sections {
        for i in page.items.iter().filter(|i| !i.deleted) {
            tx.execute(
                "INSERT INTO sync_items (kind, key, version, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(kind, key) DO UPDATE SET version = ?3, body = ?4",
                params![page.kind.as_str(), i.key, i.version, i.body.to_string()],
            )
            .map_err(StationError::db("storing the kit's items"))?;
        }
        tx.execute(
            "INSERT INTO sync_cursors (kind, cursor, synced_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(kind) DO UPDATE SET cursor = ?2, synced_at = ?3",
            params![page.kind.as_str(), page.next_cursor, now.to_rfc3339()],
        )
        .map_err(StationError::db("storing the kit's cursors"))?;
    }
    tx.execute(
        "INSERT INTO station_kit (id, server_url, server_key, kit_sha256, created_at, applied_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5)",
        params![
            kit.server_url,
            kit.server_key,
            kit_sha256,
            kit.created_at.to_rfc3339(),
            now.to_rfc3339()
        ],
    )
    .map_err(StationError::db("pinning the kit's server"))?;
    Ok(())
}
