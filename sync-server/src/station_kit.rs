//! Station set-up kits (`tessera-server station-kit`): one signed file from which a registration station is
//! created offline, without typing keys (format: [`tessera_packet::wire::kit`]).
//!
//! The kit records what a first sync would deliver to a station of the center (ID schema, UI specs, master
//! data, the center's operators, device-provider certificates, packet keys; not pre-registrations, which hold
//! residents' data), plus the server's address and signing key and the recovery public key the administrator
//! keeps the private half of. It is signed by the server signing key.

use chrono::{DateTime, Utc};
use tessera_packet::wire::kit::{SignedStationKit, StationKit, key_fingerprint};
use tessera_packet::wire::{SyncKind, SyncPage, encode_b64};

use crate::keys::ServerKeys;
use crate::store::{Store, StoreError};
use crate::sync::SyncError;

/// What the administrator asks for.
#[derive(Debug, Clone)]
pub struct KitRequest {
    /// The station's center (5 digits).
    pub center_id: String,
    /// Provisional machine id (5 digits) until enrolment assigns one.
    pub machine_id: String,
    /// The address stations reach this server at.
    pub server_url: String,
    /// The recovery public key (`age1...`).
    pub recovery_key: String,
}

/// What was written, for the administrator's handover slip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitSummary {
    /// Center.
    pub center_id: String,
    /// Server address.
    pub server_url: String,
    /// Fingerprint of the server signing key (the officer compares it).
    pub server_key_fingerprint: String,
    /// Operators of the center in the kit.
    pub operators: usize,
    /// Items per kind.
    pub items: Vec<(SyncKind, usize)>,
}

/// Why no kit was made.
#[derive(Debug, thiserror::Error)]
pub enum StationKitError {
    /// A request field is not valid.
    #[error("{field}: {reason}")]
    Invalid {
        /// Which option.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The server holds no configuration yet.
    #[error(
        "the server holds no country configuration yet (no ID schema); start it once with `country_config` set"
    )]
    NoConfiguration,
    /// The center is not in the configuration, or not active.
    #[error("center {0} is not an active center of the server's configuration (master data `centers`)")]
    UnknownCenter(String),
    /// No operator is published for the center.
    #[error(
        "no operator of center {0} is published to stations yet; publish the center's operators first (a station's first operator logs in with their password from that list)"
    )]
    NoOperators(String),
    /// Reading the sync tables failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Serialising or signing failed.
    #[error("signing the kit: {0}")]
    Sign(String),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> StationKitError {
    StationKitError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn digits(field: &'static str, s: &str) -> Result<(), StationKitError> {
    if s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid(field, format!("{s:?} must be 5 digits")))
    }
}

/// Every item of `kind` a station of `center` would receive, as one complete page.
async fn section(store: &dyn Store, kind: SyncKind, center: &str) -> Result<SyncPage, StationKitError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = crate::sync::page(store, kind, center, cursor.as_deref(), 500).await?;
        items.extend(page.items.into_iter().filter(|i| !i.deleted));
        let more = page.has_more;
        cursor = Some(page.next_cursor);
        if !more {
            break;
        }
    }
    Ok(SyncPage {
        kind,
        items,
        next_cursor: cursor.unwrap_or_else(|| "0".into()),
        has_more: false,
    })
}

/// Builds and signs a kit for a station of `req.center_id`.
pub async fn build(
    store: &dyn Store,
    keys: &ServerKeys,
    req: &KitRequest,
    now: DateTime<Utc>,
) -> Result<(SignedStationKit, KitSummary), StationKitError> {
    digits("center", &req.center_id)?;
    digits("machine", &req.machine_id)?;
    let url = req.server_url.trim().trim_end_matches('/');
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(invalid(
            "server-url",
            format!("{url:?} is not an http(s) address such as https://tessera.example:8440"),
        ));
    }
    req.recovery_key
        .trim()
        .parse::<age::x25519::Recipient>()
        .map_err(|e| invalid("recovery-key", format!("not an age public key (age1...): {e}")))?;

    let mut sections = Vec::new();
    for kind in SyncKind::ALL {
        if kind == SyncKind::PreRegistrations {
            continue; // residents' data: only by sync, never on a USB drive
        }
        sections.push(section(store, kind, &req.center_id).await?);
    }
    let of = |k: SyncKind| sections.iter().find(|p| p.kind == k);
    if of(SyncKind::IdSchema).is_none_or(|p| p.items.is_empty()) {
        return Err(StationKitError::NoConfiguration);
    }
    let active = of(SyncKind::MasterData)
        .and_then(|p| p.items.iter().find(|i| i.key == "centers"))
        .and_then(|i| i.body.get("centers"))
        .and_then(|c| c.as_array())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("id").and_then(|v| v.as_str()) == Some(req.center_id.as_str())
                    && c.get("active").and_then(|v| v.as_bool()) == Some(true)
            })
        });
    if !active {
        return Err(StationKitError::UnknownCenter(req.center_id.clone()));
    }
    let operators = of(SyncKind::Operators).map_or(0, |p| p.items.len());
    if operators == 0 {
        return Err(StationKitError::NoOperators(req.center_id.clone()));
    }
    let server_key = keys.signing.verifying_key();
    let kit = StationKit {
        center_id: req.center_id.clone(),
        machine_id: req.machine_id.clone(),
        server_url: url.to_owned(),
        server_key: encode_b64(server_key.as_bytes()),
        recovery_key: req.recovery_key.trim().to_owned(),
        created_at: now,
        sections,
    };
    let signed =
        SignedStationKit::sign(&kit, &keys.signing).map_err(|e| StationKitError::Sign(e.to_string()))?;
    let summary = KitSummary {
        center_id: kit.center_id.clone(),
        server_url: kit.server_url.clone(),
        server_key_fingerprint: key_fingerprint(server_key.as_bytes()),
        operators,
        items: kit.sections.iter().map(|p| (p.kind, p.items.len())).collect(),
    };
    tracing::info!(center = %kit.center_id, operators, "station kit built");
    Ok((signed, summary))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::settings::Settings;

    #[tokio::test]
    async fn a_kit_holds_what_a_first_sync_would_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().join("server"),
            country_config: Some(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sample-country"),
            ),
            ..Settings::default()
        };
        let state = crate::prepare_for_tools(settings, Arc::new(tessera_packet::clock::SystemClock))
            .await
            .unwrap();
        let recovery = age::x25519::Identity::generate().to_public().to_string();
        let req = KitRequest {
            center_id: "10001".into(),
            machine_id: "00000".into(),
            server_url: "https://tessera.example:8440/".into(),
            recovery_key: recovery.clone(),
        };
        let now = DateTime::UNIX_EPOCH;

        // No operator published yet: refused, saying what to do.
        let e = build(state.store.as_ref(), &state.keys, &req, now)
            .await
            .unwrap_err();
        assert!(matches!(e, StationKitError::NoOperators(_)), "{e}");
        for (center, id) in [("10001", "officer1"), ("10002", "elsewhere")] {
            let op = serde_json::json!({"id": id, "name": "Test", "roles": ["officer"], "centerId": center,
                "active": true, "passwordHash": "$argon2id$v=19$m=19456,t=2,p=1$AAAA$AAAA"});
            state
                .store
                .put_sync_item(SyncKind::Operators, center, id, Some(op))
                .await
                .unwrap();
        }

        let (signed, summary) = build(state.store.as_ref(), &state.keys, &req, now).await.unwrap();
        let kit = tessera_packet::wire::kit::SignedStationKit::parse(&signed.to_bytes().unwrap())
            .unwrap()
            .verify()
            .unwrap();
        assert_eq!(kit.server_url, "https://tessera.example:8440");
        assert_eq!(kit.recovery_key, recovery);
        assert_eq!(
            kit.server_key_fingerprint().unwrap(),
            summary.server_key_fingerprint
        );
        assert_eq!(summary.operators, 1, "only the center's operators");
        let ops = kit.section(SyncKind::Operators).unwrap();
        assert_eq!(ops.items[0].key, "officer1");
        assert!(kit.section(SyncKind::PreRegistrations).is_none());
        assert!(!kit.section(SyncKind::PacketKeys).unwrap().items.is_empty());
        assert!(!kit.section(SyncKind::UiSpec).unwrap().items.is_empty());
        assert!(kit.sections.iter().all(|p| !p.has_more));

        // Bad requests name the option.
        for (bad, field) in [
            (
                KitRequest {
                    center_id: "1001".into(),
                    ..req.clone()
                },
                "center",
            ),
            (
                KitRequest {
                    server_url: "tessera.example".into(),
                    ..req.clone()
                },
                "server-url",
            ),
            (
                KitRequest {
                    recovery_key: "age1nope".into(),
                    ..req.clone()
                },
                "recovery-key",
            ),
        ] {
            let e = build(state.store.as_ref(), &state.keys, &bad, now)
                .await
                .unwrap_err();
            assert!(
                matches!(&e, StationKitError::Invalid { field: f, .. } if *f == field),
                "{e}"
            );
        }
        let e = build(
            state.store.as_ref(),
            &state.keys,
            &KitRequest {
                center_id: "99999".into(),
                ..req.clone()
            },
            now,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, StationKitError::UnknownCenter(_)), "{e}");
    }
}
