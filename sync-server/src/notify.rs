//! Resident notifications through an outbox. The pipeline queues a message (UIN issued, rejected, duplicate)
//! in the `outbox` table, encrypted with the ID-repository envelope because it holds the contact address; a
//! worker claims messages with a lease and hands them to a [`Sender`]. The default sender appends JSON lines
//! to `<data_dir>/outbox/notifications.jsonl` (mode 0600), the local outbox the demo prints. Logs carry the
//! RID and kind only, never the address or the UIN.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tessera_packet::ids::Rid;

use crate::AppState;
use crate::idrepo;
use crate::store::{NewNotification, StoreError};

/// Notification kinds.
pub mod kind {
    /// A UIN was issued.
    pub const UIN_ISSUED: &str = "UIN_ISSUED";
    /// The registration was rejected by validation.
    pub const REJECTED: &str = "REJECTED";
    /// The registration duplicates an existing identity.
    pub const DUPLICATE: &str = "DUPLICATE";
    /// An UPDATE was applied and a new credential issued.
    pub const UPDATED: &str = "UPDATED";
    /// A LOST registration found the resident's identity: the message carries the UIN.
    pub const LOST_FOUND: &str = "LOST_FOUND";
    /// A LOST registration found no identity.
    pub const LOST_NOT_FOUND: &str = "LOST_NOT_FOUND";
}

/// The message (encrypted at rest in the outbox).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The registration.
    pub rid: String,
    /// One of [`kind`].
    pub kind: String,
    /// The UIN, for `UIN_ISSUED` and `LOST_FOUND`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uin: Option<String>,
    /// The stable reason code, for `REJECTED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `phone` or `email`, when the resident gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The phone number or email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Preferred language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notification")
            .field("rid", &self.rid)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Delivers notifications (SMTP, SMS gateway, a file...).
#[async_trait]
pub trait Sender: Send + Sync + std::fmt::Debug {
    /// Delivers one message; an error leaves it queued for a retry after the lease.
    async fn send(&self, n: &Notification) -> Result<(), String>;
}

/// Appends each message as one JSON line to a file (mode 0600).
#[derive(Debug, Clone)]
pub struct FileSender {
    /// The file.
    pub path: PathBuf,
}

#[async_trait]
impl Sender for FileSender {
    async fn send(&self, n: &Notification) -> Result<(), String> {
        let line = serde_json::to_string(n).map_err(|e| e.to_string())?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            f.write_all(format!("{line}\n").as_bytes())
                .and_then(|()| f.sync_data())
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// The contact channel of an identity JSON (email preferred, else phone).
pub fn contact(identity: &serde_json::Value) -> (Option<String>, Option<String>) {
    for ch in ["email", "phone"] {
        if let Some(a) = identity
            .get(ch)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
        {
            return (Some(ch.to_owned()), Some(a.to_owned()));
        }
    }
    (None, None)
}

/// Queues a notification (idempotent per RID and kind), encrypted.
pub async fn enqueue(state: &AppState, n: &Notification) -> Result<(), StoreError> {
    let rid: Rid = crate::store::parse_id("rid", &n.rid)?;
    let plain = serde_json::to_vec(n).map_err(|e| StoreError::Corrupt {
        what: "notification",
        detail: e.to_string(),
    })?;
    let sealed = idrepo::seal(state.master_key(), &format!("outbox:{}", n.rid), &plain).map_err(|e| {
        StoreError::Corrupt {
            what: "notification",
            detail: e.to_string(),
        }
    })?;
    state
        .store
        .enqueue_notification(NewNotification {
            rid,
            kind: n.kind.clone(),
            payload: idrepo::pack(&sealed),
            at: state.clock.now().timestamp(),
        })
        .await
}

/// Sends one queued notification; returns whether there was one.
pub async fn run_once(state: &AppState, worker: &str) -> Result<bool, StoreError> {
    let now = state.clock.now().timestamp();
    let Some(rec) = state.store.claim_notification(worker, now, 120).await? else {
        return Ok(false);
    };
    let opened = idrepo::unpack(&rec.payload)
        .and_then(|s| idrepo::open(&state.master_keys, &format!("outbox:{}", rec.rid), &s))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<Notification>(&b).map_err(|e| e.to_string()));
    match opened {
        Ok(n) => match state.sender.send(&n).await {
            Ok(()) => {
                state
                    .store
                    .notification_sent(rec.id, state.clock.now().timestamp())
                    .await?;
                tracing::info!(rid = %rec.rid, kind = %rec.kind, "notification sent");
            }
            Err(e) => {
                tracing::warn!(rid = %rec.rid, kind = %rec.kind, attempts = rec.attempts, error = %e, "notification not sent; will retry");
            }
        },
        Err(e) => {
            tracing::error!(rid = %rec.rid, kind = %rec.kind, error = %e, "notification cannot be decrypted; left queued");
        }
    }
    Ok(true)
}

/// Sends notifications until the task is dropped.
pub async fn worker_loop(state: AppState, worker: String) {
    loop {
        match run_once(&state, &worker).await {
            Ok(true) => {}
            Ok(false) => tokio::time::sleep(Duration::from_millis(300)).await,
            Err(e) => {
                tracing::error!(error = %e, "notification worker: database error; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
