//! Resident notifications through an outbox. The pipeline queues a message (UIN issued, rejected, duplicate)
//! in the `outbox` table, encrypted with the ID-repository envelope because it holds the contact address; a
//! worker claims messages with a lease and hands them to a [`Sender`]. The default sender appends JSON lines
//! to `<data_dir>/outbox/notifications.jsonl` (mode 0600), the local outbox the demo prints. With an
//! `[smtp]` section, [`SmtpSender`] emails residents who gave an email address (a plain-text message in
//! their language, [`email_text`]); the others still go to the local outbox file (no SMS gateway yet). A
//! failed delivery is retried with exponential back-off ([`retry_delay`]). Logs carry the RID and kind only,
//! never the address or the UIN; SMTP errors are logged by their reply code only (a server may quote the
//! address in its reply text).

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

/// How long to wait before delivery attempt `attempts + 1` after attempt `attempts` failed: 30 s, doubling,
/// at most 6 hours.
pub fn retry_delay(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    30i64.saturating_mul(1i64 << exp).min(6 * 3600)
}

/// Subject and plain-text body of an email notification, in French when the resident's language is `fra`,
/// else in English. Holds the UIN when the kind carries one, never other personal data.
pub fn email_text(n: &Notification) -> (String, String) {
    let fr = n.language.as_deref() == Some("fra");
    let uin = n.uin.as_deref().unwrap_or("-");
    let reason = n.reason.as_deref().unwrap_or("-");
    let rid = n.rid.as_str();
    let (subject, body) = match (n.kind.as_str(), fr) {
        (kind::UIN_ISSUED, false) => (
            "Your national identity number (UIN)".to_owned(),
            format!(
                "Your registration {rid} is complete.\n\nYour UIN is {uin}.\n\nKeep this number safe: you will need it to prove your identity and to update your record."
            ),
        ),
        (kind::UIN_ISSUED, true) => (
            "Votre numéro d'identité nationale (UIN)".to_owned(),
            format!(
                "Votre inscription {rid} est terminée.\n\nVotre UIN est {uin}.\n\nConservez ce numéro : il vous servira à prouver votre identité et à mettre à jour votre dossier."
            ),
        ),
        (kind::UPDATED, false) => (
            "Your identity record was updated".to_owned(),
            format!(
                "The update {rid} of the identity with UIN {uin} was applied. A new credential was issued."
            ),
        ),
        (kind::UPDATED, true) => (
            "Votre dossier d'identité a été mis à jour".to_owned(),
            format!(
                "La mise à jour {rid} de l'identité UIN {uin} a été appliquée. Un nouveau justificatif a été émis."
            ),
        ),
        (kind::LOST_FOUND, false) => (
            "Your national identity number (UIN)".to_owned(),
            format!("We found your identity from your request {rid}.\n\nYour UIN is {uin}."),
        ),
        (kind::LOST_FOUND, true) => (
            "Votre numéro d'identité nationale (UIN)".to_owned(),
            format!(
                "Nous avons retrouvé votre identité grâce à votre demande {rid}.\n\nVotre UIN est {uin}."
            ),
        ),
        (kind::LOST_NOT_FOUND, false) => (
            "We could not find your registration".to_owned(),
            format!(
                "Your request {rid} did not match any registered identity. Please visit a registration center."
            ),
        ),
        (kind::LOST_NOT_FOUND, true) => (
            "Nous n'avons pas retrouvé votre inscription".to_owned(),
            format!(
                "Votre demande {rid} ne correspond à aucune identité enregistrée. Veuillez vous rendre dans un centre d'inscription."
            ),
        ),
        (kind::DUPLICATE, false) => (
            "You are already registered".to_owned(),
            format!(
                "Your registration {rid} matches an identity that already exists, so no new number was issued. If you lost your number, ask a registration center for a LOST request."
            ),
        ),
        (kind::DUPLICATE, true) => (
            "Vous êtes déjà inscrit".to_owned(),
            format!(
                "Votre inscription {rid} correspond à une identité existante : aucun nouveau numéro n'a été émis. Si vous avez perdu votre numéro, demandez une recherche (LOST) dans un centre d'inscription."
            ),
        ),
        (_, false) => (
            "Your registration could not be accepted".to_owned(),
            format!(
                "Your registration {rid} could not be accepted (reason: {reason}). Please visit a registration center."
            ),
        ),
        (_, true) => (
            "Votre inscription n'a pas pu être acceptée".to_owned(),
            format!(
                "Votre inscription {rid} n'a pas pu être acceptée (motif : {reason}). Veuillez vous rendre dans un centre d'inscription."
            ),
        ),
    };
    (subject, body)
}

/// Emails residents through an SMTP server (`[smtp]`); notifications without an email address go to
/// `fallback` (the local outbox file).
pub struct SmtpSender {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
    host: String,
    /// Where notifications without an email address go.
    pub fallback: FileSender,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// Builds the sender from the `[smtp]` settings (no connection is made yet). Fails on a `from` that is
    /// not an email address or a host TLS cannot be configured for.
    pub fn new(cfg: &crate::settings::SmtpSettings, fallback: FileSender) -> Result<Self, String> {
        use crate::settings::SmtpTls;
        use lettre::transport::smtp::authentication::Credentials;
        type Transport = lettre::AsyncSmtpTransport<lettre::Tokio1Executor>;
        let from: lettre::message::Mailbox = cfg
            .from
            .parse()
            .map_err(|e| format!("smtp.from {:?} is not an email address: {e}", cfg.from))?;
        let builder = match cfg.tls {
            SmtpTls::Starttls => {
                Transport::starttls_relay(&cfg.host).map_err(|e| format!("smtp.host {}: {e}", cfg.host))?
            }
            SmtpTls::Tls => {
                Transport::relay(&cfg.host).map_err(|e| format!("smtp.host {}: {e}", cfg.host))?
            }
            SmtpTls::None => Transport::builder_dangerous(&cfg.host),
        };
        let mut builder = builder
            .port(cfg.port.unwrap_or_else(|| cfg.tls.default_port()))
            .timeout(Some(Duration::from_secs(30)));
        if let (Some(user), Some(password)) = (&cfg.user, &cfg.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            host: cfg.host.clone(),
            fallback,
        })
    }
}

/// An SMTP failure as logged and stored: the reply code or the kind of failure, never the server's text.
fn smtp_error(e: &lettre::transport::smtp::Error) -> String {
    let kind = if e.is_permanent() {
        "permanent error"
    } else if e.is_transient() {
        "transient error"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_tls() {
        "TLS failure"
    } else {
        "connection or protocol failure"
    };
    match e.status() {
        Some(code) => format!("SMTP {kind} (reply {code})"),
        None => format!("SMTP {kind}"),
    }
}

#[async_trait]
impl Sender for SmtpSender {
    async fn send(&self, n: &Notification) -> Result<(), String> {
        use lettre::AsyncTransport as _;
        let to = match (n.channel.as_deref(), n.address.as_deref()) {
            (Some("email"), Some(a)) => a,
            _ => return self.fallback.send(n).await,
        };
        let to: lettre::message::Mailbox = to
            .parse()
            .map_err(|_| "the resident's email address is not valid".to_owned())?;
        let (subject, body) = email_text(n);
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("building the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| smtp_error(&e))
    }
}

/// The sender the settings ask for: [`SmtpSender`] with an `[smtp]` section, else the local outbox file.
pub fn sender_for(settings: &crate::settings::Settings) -> Result<std::sync::Arc<dyn Sender>, String> {
    let file = FileSender {
        path: settings.data_dir.join("outbox").join("notifications.jsonl"),
    };
    Ok(match &settings.smtp {
        Some(cfg) => std::sync::Arc::new(SmtpSender::new(cfg, file)?),
        None => std::sync::Arc::new(file),
    })
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
                let delay = retry_delay(rec.attempts);
                state
                    .store
                    .notification_retry_at(rec.id, state.clock.now().timestamp() + delay)
                    .await?;
                tracing::warn!(rid = %rec.rid, kind = %rec.kind, attempts = rec.attempts, retry_in_secs = delay, error = %e, "notification not sent; will retry");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn note(kind: &str, language: &str) -> Notification {
        Notification {
            rid: "10001100010000120261129080000".into(),
            kind: kind.into(),
            uin: Some("2345678901".into()),
            reason: Some("validate:consent_missing".into()),
            channel: Some("email".into()),
            address: Some("resident@example.org".into()),
            language: Some(language.into()),
        }
    }

    #[test]
    fn back_off_doubles_from_30_seconds_up_to_6_hours() {
        let d: Vec<i64> = (1..=5).map(retry_delay).collect();
        assert_eq!(d, [30, 60, 120, 240, 480]);
        assert_eq!(retry_delay(40), 6 * 3600);
        assert_eq!(retry_delay(0), 30);
    }

    #[test]
    fn email_text_per_kind_and_language_carries_no_address() {
        for k in [
            kind::UIN_ISSUED,
            kind::UPDATED,
            kind::LOST_FOUND,
            kind::LOST_NOT_FOUND,
            kind::DUPLICATE,
            kind::REJECTED,
        ] {
            for lang in ["eng", "fra"] {
                let (subject, body) = email_text(&note(k, lang));
                assert!(
                    !subject.is_empty() && body.contains("10001100010000120261129080000"),
                    "{k} {lang}"
                );
                assert!(!body.contains("resident@example.org"));
            }
        }
        let (_, body) = email_text(&note(kind::UIN_ISSUED, "eng"));
        assert!(body.contains("Your UIN is 2345678901."));
        let (subject, body) = email_text(&note(kind::REJECTED, "fra"));
        assert!(subject.contains("acceptée") && body.contains("validate:consent_missing"));
    }
}
