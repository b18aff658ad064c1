//! The sync engine: machine enrolment, delta master-data sync, resumable upload of approved packets,
//! signed receipts, status polling and retention (`docs/station.md`, protocol in `docs/api.md`).
//!
//! - [`Station::enrol_machine`] reads `server-info`, pins the server signing key, sends the enrolment
//!   request signed by the machine key and takes the machine id the server assigns (before the first
//!   packet is sealed; afterwards the id can no longer change).
//! - [`Station::sync_with`] runs one round: master data by cursor for every [`SyncKind`] (pages are
//!   applied with their cursor in one transaction; the assembled configuration is validated before it
//!   replaces the old one), then upload, then status, then retention. A failing master-data sync never
//!   blocks the upload.
//! - Upload is tus 1.0 (creation + checksum): the upload's `Location` is stored before the first byte, a
//!   resumed upload asks the server for its offset (`HEAD`), the completing chunk returns a signed receipt
//!   that is verified against the pinned key and stored with the packet's new state in one transaction. A
//!   kill at any point loses nothing: the next round finds the upload again (the server's creation is
//!   idempotent by RID and digest) and, for a packet the server already completed, fetches its receipt.
//!   Transient failures are retried with exponential back-off and jitter; a bad packet is skipped and the
//!   batch goes on; an authentication or configuration error stops the batch and says why.
//! - A packet file is deleted only after a verified receipt, a final server status (`PROCESSED`,
//!   `DUPLICATE`) and the retention period (`station-settings.json` `packets.retentionDaysAfterProcessed`).
//!
//! Packet states added by sync: `UPLOADED` (receipt verified; the server holds it) and `PROCESSED` (the
//! server reported a final status).

pub mod http;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tessera_packet::ids::{MachineId, Rid};
use tessera_packet::wire::{
    self, EnrolmentRequest, EnrolmentResponse, MachineInfo, MachineStatus, PacketStatusResponse, Receipt,
    ServerInfo, SignedReceipt, SyncKind, SyncPage,
};
use tracing::{info, instrument, warn};

use self::http::{Disposition, HttpError, ServerClient};
use crate::audit;
use crate::crypto;
use crate::error::{Result, StationError};
use crate::masterdata::Document;
use crate::operators::{Operator, OperatorBundle};
use crate::station::Station;
use crate::workflow::state;

/// Packet state: uploaded, signed receipt verified and stored; the server has not finished with it.
pub const UPLOADED: &str = "UPLOADED";
/// Packet state: the server reported a final status (processed or duplicate); the file is deleted after
/// the retention period.
pub const PROCESSED: &str = "PROCESSED";

/// Options of one sync round (station-local; the country's rules come from `station-settings.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SyncOptions {
    /// Fetch master data, operators, keys, certificates and pre-registrations.
    pub master_data: bool,
    /// Upload approved packets.
    pub upload: bool,
    /// Ask the server for the status of uploaded packets.
    pub status: bool,
    /// Delete processed packet files after the retention period.
    pub retention: bool,
    /// Upload chunk size in bytes (the server's limit is 8 MiB by default).
    pub chunk_bytes: u64,
    /// Attempts after the first for a failing request, with exponential back-off and jitter.
    pub max_retries: u32,
    /// First back-off delay in milliseconds.
    pub backoff_initial_ms: u64,
    /// Largest back-off delay in milliseconds.
    pub backoff_max_ms: u64,
    /// Timeout of one HTTP request in seconds.
    pub request_timeout_secs: u64,
    /// Sync page size.
    pub page_limit: u32,
    /// Retention override in seconds (default: the country's `retentionDaysAfterProcessed`).
    pub retention_secs: Option<i64>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            master_data: true,
            upload: true,
            status: true,
            retention: true,
            chunk_bytes: 1024 * 1024,
            max_retries: 4,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            request_timeout_secs: 60,
            page_limit: 500,
            retention_secs: None,
        }
    }
}

/// What a sync round reports as it goes (for progress bars and logs; never personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Progress {
    /// A phase starts: `masterData`, `upload`, `status`, `retention`.
    Phase {
        /// Phase name.
        name: String,
    },
    /// A page of one kind was applied.
    MasterData {
        /// Kind (path segment).
        kind: String,
        /// Items in the page.
        items: u64,
    },
    /// An upload starts or resumes.
    UploadStarted {
        /// RID.
        rid: String,
        /// Packet size.
        size: u64,
        /// Where it resumes (0 = from the start).
        offset: u64,
    },
    /// Bytes acknowledged by the server so far.
    UploadProgress {
        /// RID.
        rid: String,
        /// Bytes the server holds.
        sent: u64,
        /// Packet size.
        size: u64,
    },
    /// A packet's receipt was verified and stored.
    Uploaded {
        /// RID.
        rid: String,
    },
    /// A request failed and is retried after a delay.
    Retrying {
        /// What was being done.
        what: String,
        /// Attempt number (1 = first retry).
        attempt: u32,
        /// Delay before it.
        delay_ms: u64,
        /// The error.
        error: String,
    },
    /// A packet's server status changed.
    Status {
        /// RID.
        rid: String,
        /// New server status.
        status: String,
    },
}

/// A packet the round could not upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PacketFailure {
    /// RID.
    pub rid: String,
    /// Why (the packet stays queued).
    pub error: String,
}

/// A status change brought back from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    /// RID.
    pub rid: String,
    /// Server status before (None = not asked yet).
    pub from: Option<String>,
    /// Server status now.
    pub to: String,
    /// Reason code (quarantine, hold).
    pub reason: Option<String>,
    /// Local packet state now.
    pub local_state: String,
}

/// What one sync round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// Items applied per kind.
    pub master_data_items: BTreeMap<String, u64>,
    /// Whether a new configuration (or operators, keys) took effect.
    pub master_data_applied: bool,
    /// Why master data could not be synced or applied (upload went on regardless).
    pub master_data_error: Option<String>,
    /// Packets uploaded in this round (receipt verified and stored).
    pub uploaded: Vec<String>,
    /// Packets that failed and stay queued.
    pub failed: Vec<PacketFailure>,
    /// Why the upload batch stopped early (server down, authentication, configuration).
    pub stopped: Option<String>,
    /// Status changes.
    pub statuses: Vec<StatusChange>,
    /// Packet files deleted after their retention period.
    pub deleted: Vec<String>,
    /// Approved packets still waiting for upload after the round.
    pub queued: u64,
}

/// The station's link to its server, recorded at enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerLink {
    /// Base URL.
    pub url: String,
    /// The pinned server signing key (base64).
    pub server_key: String,
    /// Machine status as last seen.
    pub machine_status: String,
    /// When enrolled.
    pub enrolled_at: DateTime<Utc>,
    /// Last successful contact.
    pub last_contact: Option<DateTime<Utc>>,
    /// Last error.
    pub last_error: Option<String>,
}

/// Result of an enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrolment {
    /// Server URL.
    pub server_url: String,
    /// Machine id the server assigned (used in every RID from now on).
    pub machine_id: String,
    /// `PENDING` until an administrator approves, then `ACTIVE`.
    pub status: String,
    /// The machine key fingerprint, for the administrator to compare.
    pub fingerprint: String,
    /// Fingerprint of the server signing key this station now trusts.
    pub server_key_fingerprint: String,
    /// Whether the machine id changed from the provisional one given at `init`.
    pub machine_id_changed: bool,
}

/// One packet's upload and server status, for status views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadView {
    /// RID.
    pub rid: String,
    /// Local packet state.
    pub state: String,
    /// Server status (None until uploaded and asked).
    pub server_status: Option<String>,
    /// Reason code.
    pub server_reason: Option<String>,
    /// When the server received it (from the verified receipt).
    pub received_at: Option<String>,
    /// Last upload error.
    pub last_error: Option<String>,
    /// Upload attempts.
    pub attempts: i64,
    /// When the file was deleted after retention.
    pub file_deleted_at: Option<String>,
}

fn server_err(context: &str, e: &HttpError) -> StationError {
    StationError::Server {
        context: context.to_owned(),
        detail: e.to_string(),
        code: e.code().map(str::to_owned),
    }
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `ageGroups` -> `age-groups`: the station's document name for a server master-data key.
fn document_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn doc_version(v: &serde_json::Value) -> String {
    ["version", "idVersion", "configVersion"]
        .iter()
        .find_map(|k| v.get(k).and_then(|x| x.as_str()))
        .unwrap_or("0")
        .to_owned()
}

/// Equal-jitter exponential back-off: half the capped exponential delay plus a random half.
pub fn backoff(opts: &SyncOptions, attempt: u32) -> Duration {
    let exp = opts
        .backoff_initial_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(opts.backoff_max_ms);
    let mut r = [0u8; 8];
    let _ = getrandom::fill(&mut r);
    let jitter = if exp == 0 {
        0
    } else {
        u64::from_le_bytes(r) % (exp / 2 + 1)
    };
    Duration::from_millis(exp / 2 + jitter)
}

/// How one upload attempt ended, when not with a receipt.
#[derive(Debug)]
struct Failure {
    disposition: Disposition,
    message: String,
    code: Option<String>,
}

impl From<HttpError> for Failure {
    fn from(e: HttpError) -> Self {
        Self {
            disposition: e.disposition(),
            code: e.code().map(str::to_owned),
            message: e.to_string(),
        }
    }
}

fn local_failure(message: String) -> Failure {
    Failure {
        disposition: Disposition::SkipPacket,
        message,
        code: None,
    }
}

struct Queued {
    rid: String,
    file: String,
    sha256: String,
    size: i64,
    location: Option<String>,
}

impl Station {
    /// The server link, when the machine is enrolled.
    pub fn server_link(&self) -> Result<Option<ServerLink>> {
        self.store
            .conn()
            .query_row(
                "SELECT url, server_key, machine_status, enrolled_at, last_contact, last_error FROM server_link WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                },
            )
            .optional()
            .map_err(StationError::db("reading the server link"))
            .map(|o| {
                o.map(|(url, server_key, machine_status, at, contact, last_error)| ServerLink {
                    url,
                    server_key,
                    machine_status,
                    enrolled_at: parse_ts(&at).unwrap_or_default(),
                    last_contact: contact.as_deref().and_then(parse_ts),
                    last_error,
                })
            })
    }

    fn clock_offset_secs(&self) -> Result<i64> {
        let ms: Option<i64> = self
            .store
            .conn()
            .query_row(
                "SELECT server_clock_offset_ms FROM station WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .map_err(StationError::db("reading the clock offset"))?;
        Ok(ms.unwrap_or(0) / 1000)
    }

    fn client_for(&self, link: &ServerLink, opts: &SyncOptions) -> Result<ServerClient> {
        let key =
            wire::decode_public_key("server key", &link.server_key).map_err(|e| StationError::Crypto {
                context: "reading the pinned server key",
                detail: e.to_string(),
            })?;
        ServerClient::new(
            &link.url,
            self.machine_key.clone(),
            Some(self.machine_id.clone()),
            Some(key),
            self.clock.clone(),
            self.clock_offset_secs()?,
            Duration::from_secs(opts.request_timeout_secs.max(1)),
        )
        .map_err(|e| server_err("setting up the server connection", &e))
    }

    /// Enrols this machine with the server at `url` under `name` (a host name or asset tag). Pins the
    /// server's signing key; takes the machine id the server assigns when no packet was sealed yet.
    /// Enrolling again with the same key returns the same machine (and its current status).
    #[instrument(skip_all, fields(url = url))]
    pub async fn enrol_machine(&mut self, url: &str, name: &str) -> Result<Enrolment> {
        let actor = self.session()?.operator.id.clone();
        let timeout = Duration::from_secs(30);
        let anon = ServerClient::new(
            url,
            self.machine_key.clone(),
            None,
            None,
            self.clock.clone(),
            0,
            timeout,
        )
        .map_err(|e| server_err("setting up the server connection", &e))?;
        let a = anon
            .send(
                "reading server-info",
                "GET",
                "/api/v1/server-info",
                &[],
                Vec::new(),
                false,
            )
            .await
            .map_err(|e| server_err("reading the server's identity", &e))?;
        let si: ServerInfo =
            http::parse("server-info", &a.body).map_err(|e| server_err("reading server-info", &e))?;
        let server_key =
            wire::decode_public_key("signing_public_key", &si.signing_public_key).map_err(|e| {
                StationError::Server {
                    context: "reading server-info".into(),
                    detail: e.to_string(),
                    code: None,
                }
            })?;
        if let Some(link) = self.server_link()?
            && link.server_key != si.signing_public_key
        {
            return Err(StationError::Server {
                context: "enrolling".into(),
                detail: format!(
                    "the server at {url} has signing key {} but this station trusts {}; if the server really changed its key, an administrator must reset the station's server link",
                    crypto::fingerprint(server_key.as_bytes()),
                    link.server_key
                ),
                code: Some("server_key_changed".into()),
            });
        }
        let client = ServerClient::new(
            url,
            self.machine_key.clone(),
            None,
            Some(server_key),
            self.clock.clone(),
            0,
            timeout,
        )
        .map_err(|e| server_err("setting up the server connection", &e))?;
        // The server-info answer is signed by the key it announces: a consistency check (trust comes from
        // the administrator comparing fingerprints).
        client
            .parse_signed::<ServerInfo>("server-info", &a)
            .map_err(|e| server_err("checking server-info", &e))?;
        let now = self.clock.now();
        let offset_ms = (si.server_time - now).num_milliseconds();
        let req = EnrolmentRequest::new(&self.machine_key, self.center_id.clone(), name);
        let body = serde_json::to_vec(&req).map_err(|e| StationError::Crypto {
            context: "serialising the enrolment request",
            detail: e.to_string(),
        })?;
        let a = client
            .send(
                "the enrolment request",
                "POST",
                "/api/v1/machines/enrol",
                &[("content-type", "application/json".into())],
                body,
                false,
            )
            .await
            .map_err(|e| server_err("enrolling the machine", &e))?;
        let resp: EnrolmentResponse = client
            .parse_signed("the enrolment answer", &a)
            .map_err(|e| server_err("enrolling the machine", &e))?;
        let changed = resp.machine_id != self.machine_id;
        if changed {
            let sealed: i64 = self
                .store
                .conn()
                .query_row(
                    "SELECT (SELECT count(*) FROM packets) + (SELECT count(*) FROM drafts WHERE rid IS NOT NULL)",
                    [],
                    |r| r.get(0),
                )
                .map_err(StationError::db("counting packets"))?;
            if sealed > 0 {
                return Err(StationError::Server {
                    context: "enrolling".into(),
                    detail: format!(
                        "the server assigned machine id {} but this station already sealed packets as {}; ask the administrator to check the enrolment",
                        resp.machine_id, self.machine_id
                    ),
                    code: Some("machine_id_conflict".into()),
                });
            }
        }
        let status = resp.status.as_str().to_owned();
        let new_id = resp.machine_id.clone();
        self.store.tx(|tx| {
            tx.execute(
                "UPDATE station SET machine_id = ?1, server_clock_offset_ms = ?2 WHERE id = 1",
                params![new_id.as_str(), offset_ms],
            )
            .map_err(StationError::db("recording the machine id"))?;
            tx.execute(
                "INSERT INTO server_link (id, url, server_key, machine_status, enrolled_at, last_contact) VALUES (1, ?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT(id) DO UPDATE SET url = ?1, server_key = ?2, machine_status = ?3, last_contact = ?4, last_error = NULL",
                params![url.trim_end_matches('/'), si.signing_public_key, status, now.to_rfc3339()],
            )
            .map_err(StationError::db("recording the server link"))?;
            audit::append(tx, now, &actor, "MACHINE_ENROLLED", new_id.as_str(), &format!("status={status}"))?;
            Ok(())
        })?;
        self.machine_id = new_id;
        info!(machine = %self.machine_id, status, "machine enrolled");
        Ok(Enrolment {
            server_url: url.trim_end_matches('/').to_owned(),
            machine_id: self.machine_id.to_string(),
            status,
            fingerprint: self.machine_identity().fingerprint,
            server_key_fingerprint: crypto::fingerprint(server_key.as_bytes()),
            machine_id_changed: changed,
        })
    }

    fn note_contact(&mut self, status: Option<&str>, error: Option<&str>) -> Result<()> {
        let now = self.clock.now();
        self.store.tx(|tx| {
            match error {
                None => tx.execute(
                    "UPDATE server_link SET last_contact = ?1, last_error = NULL, machine_status = coalesce(?2, machine_status) WHERE id = 1",
                    params![now.to_rfc3339(), status],
                ),
                Some(e) => tx.execute(
                    "UPDATE server_link SET last_error = ?1, machine_status = coalesce(?2, machine_status) WHERE id = 1",
                    params![e, status],
                ),
            }
            .map_err(StationError::db("recording the server contact"))?;
            Ok(())
        })
    }

    /// One sync round with no progress reporting (see [`Station::sync_with`]).
    pub async fn sync(&mut self, opts: &SyncOptions) -> Result<SyncReport> {
        self.sync_with(opts, &mut |_: &Progress| {}).await
    }

    /// One sync round: master data, upload, status, retention. Returns what happened; an unreachable
    /// server or a refused authentication is reported in [`SyncReport::stopped`] (packets stay queued), not
    /// as an error. Errors are local ones (database, not enrolled, not logged in).
    #[instrument(skip_all)]
    pub async fn sync_with(
        &mut self,
        opts: &SyncOptions,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<SyncReport> {
        let actor = self.session()?.operator.id.clone();
        let link = self.server_link()?.ok_or_else(|| StationError::Server {
            context: "syncing".into(),
            detail: "this machine is not enrolled with a server; run `tessera-station enrol-machine --server <url>` first".into(),
            code: Some("not_enrolled".into()),
        })?;
        let client = self.client_for(&link, opts)?;
        let mut report = SyncReport::default();

        // Where does the machine stand? A station clock far from the server's is corrected from the
        // server's signed time, once.
        let mut client = client;
        let mut me = self
            .with_retries(opts, "reading the machine status", progress, || {
                client.get_json::<MachineInfo>("the machine status", "/api/v1/machines/me")
            })
            .await;
        if matches!(&me, Err(e) if e.code() == Some("request_expired")) {
            self.refresh_clock_offset(&client).await?;
            client = self.client_for(&link, opts)?;
            me = self
                .with_retries(opts, "reading the machine status", progress, || {
                    client.get_json::<MachineInfo>("the machine status", "/api/v1/machines/me")
                })
                .await;
        }
        match me {
            Ok(me) => {
                self.note_contact(Some(me.status.as_str()), None)?;
                if me.status != MachineStatus::Active {
                    let why = match me.status {
                        MachineStatus::Pending => format!(
                            "machine {} is waiting for an administrator to approve its enrolment (fingerprint {}); packets stay queued",
                            self.machine_id,
                            self.machine_identity().fingerprint
                        ),
                        _ => format!(
                            "machine {} is suspended by the server ({}); packets stay queued, call the administrator",
                            self.machine_id,
                            me.status_reason.unwrap_or_else(|| "no reason given".into())
                        ),
                    };
                    report.stopped = Some(why);
                    report.queued = self.upload_queue_len()?;
                    return Ok(report);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                self.note_contact(None, Some(&msg))?;
                report.stopped = Some(msg);
                report.master_data_error = Some("not attempted: the server could not be reached".into());
                report.queued = self.upload_queue_len()?;
                return Ok(report);
            }
        }

        if opts.master_data {
            progress(&Progress::Phase {
                name: "masterData".into(),
            });
            match self.sync_master_data(&client, opts, progress, &mut report).await {
                Ok(()) => {}
                Err(e) => {
                    warn!(error = %e, "master-data sync failed; upload goes on");
                    report.master_data_error = Some(e.to_string());
                }
            }
        }
        if opts.upload {
            progress(&Progress::Phase {
                name: "upload".into(),
            });
            self.upload_all(&client, opts, progress, &mut report).await?;
        }
        if opts.status && report.stopped.is_none() {
            progress(&Progress::Phase {
                name: "status".into(),
            });
            self.poll_statuses(&client, opts, progress, &mut report).await?;
        }
        if opts.retention {
            progress(&Progress::Phase {
                name: "retention".into(),
            });
            report.deleted = self.apply_retention(opts)?;
        }
        report.queued = self.upload_queue_len()?;
        let now = self.clock.now();
        let detail = format!(
            "uploaded={} failed={} statuses={} deleted={}",
            report.uploaded.len(),
            report.failed.len(),
            report.statuses.len(),
            report.deleted.len()
        );
        self.store
            .tx(|tx| audit::append(tx, now, &actor, "SYNC", "", &detail))?;
        Ok(report)
    }

    /// Reads the server's signed clock and records the offset (request timestamps use it).
    async fn refresh_clock_offset(&mut self, client: &ServerClient) -> Result<()> {
        let what = "reading the server clock";
        let a = client
            .send(what, "GET", "/api/v1/server-info", &[], Vec::new(), false)
            .await
            .map_err(|e| server_err(what, &e))?;
        let si: ServerInfo = client.parse_signed(what, &a).map_err(|e| server_err(what, &e))?;
        let offset_ms = (si.server_time - self.clock.now()).num_milliseconds();
        warn!(
            offset_ms,
            "station clock differs from the server's; using the server's time for requests"
        );
        self.store.tx(|tx| {
            tx.execute(
                "UPDATE station SET server_clock_offset_ms = ?1 WHERE id = 1",
                [offset_ms],
            )
            .map_err(StationError::db("recording the clock offset"))?;
            Ok(())
        })
    }

    async fn with_retries<T, F, Fut>(
        &self,
        opts: &SyncOptions,
        what: &str,
        progress: &mut dyn FnMut(&Progress),
        mut f: F,
    ) -> std::result::Result<T, HttpError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, HttpError>>,
    {
        let mut attempt = 0;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.disposition() == Disposition::Retry && attempt < opts.max_retries => {
                    attempt += 1;
                    let delay = backoff(opts, attempt - 1);
                    progress(&Progress::Retrying {
                        what: what.into(),
                        attempt,
                        delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error: e.to_string(),
                    });
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Number of approved packets waiting for upload.
    pub fn upload_queue_len(&self) -> Result<u64> {
        Ok(self.count_packets(state::APPROVED)? + self.count_packets(state::EXPORTED)?)
    }

    async fn sync_master_data(
        &mut self,
        client: &ServerClient,
        opts: &SyncOptions,
        progress: &mut dyn FnMut(&Progress),
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut changed: Vec<SyncKind> = Vec::new();
        for kind in SyncKind::ALL {
            loop {
                let cursor: Option<String> = self
                    .store
                    .conn()
                    .query_row(
                        "SELECT cursor FROM sync_cursors WHERE kind = ?1",
                        [kind.as_str()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(StationError::db("reading a sync cursor"))?;
                let path = match &cursor {
                    Some(c) => format!(
                        "/api/v1/sync/{}?cursor={}&limit={}",
                        kind.as_str(),
                        percent(c),
                        opts.page_limit
                    ),
                    None => format!("/api/v1/sync/{}?limit={}", kind.as_str(), opts.page_limit),
                };
                let what = format!("sync of {}", kind.as_str());
                let page: SyncPage = self
                    .with_retries(opts, &what, progress, || {
                        client.get_json::<SyncPage>(&what, &path)
                    })
                    .await
                    .map_err(|e| server_err(&what, &e))?;
                if page.kind != kind {
                    return Err(StationError::Server {
                        context: what,
                        detail: format!("the server sent a page of {} instead", page.kind.as_str()),
                        code: None,
                    });
                }
                let now = self.clock.now();
                let n = u64::try_from(page.items.len()).unwrap_or(0);
                self.store.tx(|tx| {
                    for item in &page.items {
                        if item.deleted {
                            tx.execute(
                                "DELETE FROM sync_items WHERE kind = ?1 AND key = ?2",
                                params![kind.as_str(), item.key],
                            )
                        } else {
                            tx.execute(
                                "INSERT INTO sync_items (kind, key, version, body) VALUES (?1, ?2, ?3, ?4)
                                 ON CONFLICT(kind, key) DO UPDATE SET version = ?3, body = ?4",
                                params![kind.as_str(), item.key, item.version, item.body.to_string()],
                            )
                        }
                        .map_err(StationError::db("storing synced items"))?;
                    }
                    tx.execute(
                        "INSERT INTO sync_cursors (kind, cursor, synced_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT(kind) DO UPDATE SET cursor = ?2, synced_at = ?3",
                        params![kind.as_str(), page.next_cursor, now.to_rfc3339()],
                    )
                    .map_err(StationError::db("storing a sync cursor"))?;
                    Ok(())
                })?;
                if n > 0 {
                    *report
                        .master_data_items
                        .entry(kind.as_str().to_owned())
                        .or_default() += n;
                    if !changed.contains(&kind) {
                        changed.push(kind);
                    }
                    progress(&Progress::MasterData {
                        kind: kind.as_str().into(),
                        items: n,
                    });
                }
                if !page.has_more {
                    break;
                }
            }
        }
        self.apply_synced(&changed, report)
    }

    fn synced_items(&self, kind: SyncKind) -> Result<Vec<(String, i64, String)>> {
        let mut st = self
            .store
            .conn()
            .prepare_cached("SELECT key, version, body FROM sync_items WHERE kind = ?1 ORDER BY version")
            .map_err(StationError::db("reading synced items"))?;
        st.query_map([kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(StationError::db("reading synced items"))
    }

    /// The master-data documents the synced items describe, overlaid on those in force.
    fn assembled_documents(&self) -> Result<Option<Vec<Document>>> {
        let schemas = self.synced_items(SyncKind::IdSchema)?;
        let Some((_, _, schema_body)) = schemas.last() else {
            return Ok(None);
        };
        let mut docs: BTreeMap<String, Document> = BTreeMap::new();
        let mut st = self
            .store
            .conn()
            .prepare("SELECT name, version, body FROM master_data")
            .map_err(StationError::db("reading master data"))?;
        let current: Vec<Document> = st
            .query_map([], |r| {
                Ok(Document {
                    name: r.get(0)?,
                    version: r.get(1)?,
                    body: r.get(2)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(StationError::db("reading master data"))?;
        drop(st);
        for d in current {
            docs.insert(d.name.clone(), d);
        }
        let mut put = |name: String, body: &str| {
            let v: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
            docs.insert(
                name.clone(),
                Document {
                    name,
                    version: doc_version(&v),
                    body: body.to_owned(),
                },
            );
        };
        put("id-schema".into(), schema_body);
        for (key, _, body) in self.synced_items(SyncKind::UiSpec)? {
            put(format!("ui-spec/{key}"), &body);
        }
        for (key, _, body) in self.synced_items(SyncKind::MasterData)? {
            put(document_name(&key), &body);
        }
        Ok(Some(docs.into_values().collect()))
    }

    fn apply_synced(&mut self, changed: &[SyncKind], report: &mut SyncReport) -> Result<()> {
        let mut problems = Vec::new();
        // Configuration: validated as a whole before it replaces the one in force.
        if let Some(docs) = self.assembled_documents()? {
            let differs = docs.iter().any(|d| {
                self.store
                    .conn()
                    .query_row("SELECT body FROM master_data WHERE name = ?1", [&d.name], |r| {
                        r.get::<_, String>(0)
                    })
                    .map(|b| b != d.body)
                    .unwrap_or(true)
            });
            if differs {
                match self.apply_master_data(&docs) {
                    Ok(()) => report.master_data_applied = true,
                    Err(e) => problems.push(format!(
                        "the server's configuration was not applied, the previous one stays in force: {e}"
                    )),
                }
            } else {
                self.mark_master_synced()?;
            }
        } else {
            self.mark_master_synced()?;
        }
        if changed.contains(&SyncKind::Operators) {
            let items = self.synced_items(SyncKind::Operators)?;
            let mut ops = Vec::new();
            let mut bad = None;
            for (key, _, body) in &items {
                match serde_json::from_str::<Operator>(body) {
                    Ok(o) => ops.push(o),
                    Err(e) => bad = Some(format!("operator {key}: {e}")),
                }
            }
            let version = items.last().map(|(_, v, _)| v.to_string()).unwrap_or_default();
            match bad {
                Some(b) => problems.push(format!("the server's operator list was not applied: {b}")),
                None if ops.is_empty() => {}
                None => {
                    let bundle = OperatorBundle {
                        version,
                        operators: ops,
                    };
                    // The same checks as a local bundle.
                    let bytes = serde_json::to_vec(&bundle).unwrap_or_default();
                    match OperatorBundle::parse(&bytes) {
                        Ok(b) => {
                            self.apply_operators(&b)?;
                            report.master_data_applied = true;
                        }
                        Err(e) => problems.push(format!("the server's operator list was not applied: {e}")),
                    }
                }
            }
        }
        if changed.contains(&SyncKind::PacketKeys) {
            let mut recipients = Vec::new();
            for (key, _, body) in self.synced_items(SyncKind::PacketKeys)? {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                match v.get("recipient").and_then(|r| r.as_str()) {
                    Some(r) => recipients.push(r.to_owned()),
                    None => problems.push(format!("packet key {key} has no recipient")),
                }
            }
            if !recipients.is_empty() {
                let now = self.clock.now();
                self.store.tx(|tx| {
                    tx.execute("DELETE FROM packet_recipients", [])
                        .map_err(StationError::db("replacing packet-recipient keys"))?;
                    crate::workflow::store_recipients(tx, &recipients, now)?;
                    audit::append(
                        tx,
                        now,
                        "system",
                        "PACKET_KEYS_APPLIED",
                        "",
                        &format!("count={}", recipients.len()),
                    )?;
                    Ok(())
                })?;
                report.master_data_applied = true;
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StationError::ConfigInvalid {
                file: "synced master data".into(),
                detail: problems.join("; "),
            })
        }
    }

    fn mark_master_synced(&mut self) -> Result<()> {
        let now = self.clock.now();
        self.store.tx(|tx| {
            tx.execute(
                "UPDATE station SET last_master_sync = ?1 WHERE id = 1",
                [now.to_rfc3339()],
            )
            .map_err(StationError::db("recording the master-data sync"))?;
            Ok(())
        })
    }

    /// PEM certificates of device providers delivered by sync (kind `certificates`, items with a `pem`
    /// field).
    pub fn synced_certificates(&self) -> Result<Vec<String>> {
        Ok(self
            .synced_items(SyncKind::Certificates)?
            .into_iter()
            .filter_map(|(_, _, body)| {
                serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("pem").and_then(|p| p.as_str()).map(str::to_owned))
            })
            .collect())
    }

    fn upload_candidates(&self) -> Result<Vec<Queued>> {
        let mut st = self
            .store
            .conn()
            .prepare(
                "SELECT p.rid, p.file_name, p.sha256, p.size, u.location FROM packets p
                 LEFT JOIN uploads u ON u.rid = p.rid
                 WHERE p.state IN (?1, ?2) ORDER BY p.created_at, p.rid",
            )
            .map_err(StationError::db("listing packets to upload"))?;
        st.query_map(params![state::APPROVED, state::EXPORTED], |r| {
            Ok(Queued {
                rid: r.get(0)?,
                file: r.get(1)?,
                sha256: r.get(2)?,
                size: r.get(3)?,
                location: r.get(4)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(StationError::db("listing packets to upload"))
    }

    fn record_attempt(&mut self, rid: &str, error: Option<&str>, location: Option<&str>) -> Result<()> {
        let now = self.clock.now();
        self.store.tx(|tx| {
            tx.execute(
                "INSERT INTO uploads (rid, location, attempts, last_error, updated_at) VALUES (?1, ?2, 1, ?3, ?4)
                 ON CONFLICT(rid) DO UPDATE SET location = coalesce(?2, location), attempts = attempts + 1, last_error = ?3, updated_at = ?4",
                params![rid, location, error, now.to_rfc3339()],
            )
            .map_err(StationError::db("recording an upload attempt"))?;
            Ok(())
        })
    }

    fn save_location(&mut self, rid: &str, location: &str) -> Result<()> {
        let now = self.clock.now();
        self.store.tx(|tx| {
            tx.execute(
                "INSERT INTO uploads (rid, location, attempts, updated_at) VALUES (?1, ?2, 0, ?3)
                 ON CONFLICT(rid) DO UPDATE SET location = ?2, updated_at = ?3",
                params![rid, location, now.to_rfc3339()],
            )
            .map_err(StationError::db("recording the upload location"))?;
            Ok(())
        })
    }

    async fn upload_all(
        &mut self,
        client: &ServerClient,
        opts: &SyncOptions,
        progress: &mut dyn FnMut(&Progress),
        report: &mut SyncReport,
    ) -> Result<()> {
        for q in self.upload_candidates()? {
            let mut attempt = 0u32;
            loop {
                match self.upload_one(client, &q, opts, progress).await? {
                    Ok(()) => {
                        report.uploaded.push(q.rid.clone());
                        progress(&Progress::Uploaded { rid: q.rid.clone() });
                        break;
                    }
                    Err(f) if f.disposition == Disposition::Retry && attempt < opts.max_retries => {
                        attempt += 1;
                        let delay = backoff(opts, attempt - 1);
                        warn!(rid = %q.rid, attempt, error = %f.message, "upload failed; retrying");
                        progress(&Progress::Retrying {
                            what: format!("upload of {}", q.rid),
                            attempt,
                            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            error: f.message.clone(),
                        });
                        if f.code.as_deref() == Some("not_found") {
                            // The server forgot the upload: create it again.
                            self.store
                                .conn()
                                .execute("UPDATE uploads SET location = NULL WHERE rid = ?1", [&q.rid])
                                .map_err(StationError::db("resetting an upload"))?;
                        }
                        tokio::time::sleep(delay).await;
                    }
                    Err(f) => {
                        self.record_attempt(&q.rid, Some(&f.message), None)?;
                        report.failed.push(PacketFailure {
                            rid: q.rid.clone(),
                            error: f.message.clone(),
                        });
                        match f.disposition {
                            Disposition::SkipPacket => break,
                            Disposition::Retry | Disposition::StopBatch => {
                                self.note_contact(None, Some(&f.message))?;
                                report.stopped = Some(f.message);
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// One attempt at one packet: create or find the upload, send what the server lacks, verify and store
    /// the receipt. The outer `Result` carries local database errors.
    async fn upload_one(
        &mut self,
        client: &ServerClient,
        q: &Queued,
        opts: &SyncOptions,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<std::result::Result<(), Failure>> {
        let path = self.store.paths().packets.join(&q.file);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                return Ok(Err(local_failure(format!(
                    "packet file {} cannot be read ({e}); it is kept in the queue, call the administrator",
                    path.display()
                ))));
            }
        };
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        if sha != q.sha256 || i64::try_from(bytes.len()).ok() != Some(q.size) {
            return Ok(Err(local_failure(format!(
                "packet file {} does not match what the station recorded (size or SHA-256 changed); not uploaded, call the administrator",
                path.display()
            ))));
        }
        let rid: Rid = match q.rid.parse() {
            Ok(r) => r,
            Err(e) => return Ok(Err(local_failure(format!("RID {}: {e}", q.rid)))),
        };
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        // Find the upload's current offset, creating it if needed.
        let stored_location = self
            .store
            .conn()
            .query_row("SELECT location FROM uploads WHERE rid = ?1", [&q.rid], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
            .map_err(StationError::db("reading the upload location"))?
            .flatten()
            .or_else(|| q.location.clone());
        let tus = [("tus-resumable", wire::TUS_VERSION.to_owned())];
        let (location, mut offset) = match stored_location {
            Some(loc) => {
                match client
                    .send(
                        &format!("the offset query for {rid}"),
                        "HEAD",
                        &loc,
                        &tus,
                        Vec::new(),
                        true,
                    )
                    .await
                {
                    Ok(a) => match a.header_u64("the offset query", "upload-offset") {
                        Ok(o) => (loc, o),
                        Err(e) => return Ok(Err(e.into())),
                    },
                    Err(e)
                        if e.code() == Some("not_found")
                            || matches!(&e, HttpError::Api { status: 404, .. }) =>
                    {
                        match self.create_upload(client, &rid, &sha, size, opts).await? {
                            Ok(v) => v,
                            Err(f) => return Ok(Err(f)),
                        }
                    }
                    Err(e) => return Ok(Err(e.into())),
                }
            }
            None => match self.create_upload(client, &rid, &sha, size, opts).await? {
                Ok(v) => v,
                Err(f) => return Ok(Err(f)),
            },
        };
        progress(&Progress::UploadStarted {
            rid: q.rid.clone(),
            size,
            offset,
        });
        let mut receipt: Option<SignedReceipt> = None;
        if offset >= size {
            // Completed earlier (a kill after the last chunk, or an import): fetch the receipt.
            let what = format!("the receipt of {rid}");
            match client
                .get_json::<SignedReceipt>(&what, &format!("/api/v1/packets/{rid}/receipt"))
                .await
            {
                Ok(r) => receipt = Some(r),
                Err(e) => return Ok(Err(e.into())),
            }
        }
        let chunk = usize::try_from(opts.chunk_bytes.max(1)).unwrap_or(1024 * 1024);
        while receipt.is_none() {
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let Some(rest) = bytes.get(start..) else {
                return Ok(Err(Failure {
                    disposition: Disposition::Retry,
                    message: format!("the server reports offset {offset} beyond the packet's {size} bytes"),
                    code: None,
                }));
            };
            let piece = rest.get(..chunk.min(rest.len())).unwrap_or(rest);
            let headers = [
                ("tus-resumable", wire::TUS_VERSION.to_owned()),
                ("content-type", "application/offset+octet-stream".to_owned()),
                ("upload-offset", offset.to_string()),
                ("upload-checksum", wire::upload_checksum(piece)),
            ];
            let what = format!("a chunk of {rid}");
            let a = match client
                .send(&what, "PATCH", &location, &headers, piece.to_vec(), true)
                .await
            {
                Ok(a) => a,
                Err(e) => return Ok(Err(e.into())),
            };
            if a.status == 200 {
                match client.parse_signed::<SignedReceipt>(&format!("the receipt of {rid}"), &a) {
                    Ok(r) => receipt = Some(r),
                    // The receipt body may be unsigned at the HTTP level; the receipt carries its own signature.
                    Err(HttpError::BadSignature { .. }) => {
                        match http::parse::<SignedReceipt>("the receipt", &a.body) {
                            Ok(r) => receipt = Some(r),
                            Err(e) => return Ok(Err(e.into())),
                        }
                    }
                    Err(e) => return Ok(Err(e.into())),
                }
            } else {
                offset = match a.header_u64(&what, "upload-offset") {
                    Ok(o) => o,
                    Err(e) => return Ok(Err(e.into())),
                };
                progress(&Progress::UploadProgress {
                    rid: q.rid.clone(),
                    sent: offset,
                    size,
                });
            }
        }
        let Some(signed) = receipt else {
            return Ok(Err(local_failure("no receipt".into())));
        };
        self.store_receipt(&rid, &signed, &sha, size)
    }

    fn store_receipt(
        &mut self,
        rid: &Rid,
        signed: &SignedReceipt,
        sha: &str,
        size: u64,
    ) -> Result<std::result::Result<(), Failure>> {
        let link = self.server_link()?.ok_or_else(|| StationError::Server {
            context: "checking a receipt".into(),
            detail: "the server link disappeared".into(),
            code: Some("not_enrolled".into()),
        })?;
        let key: VerifyingKey =
            wire::decode_public_key("server key", &link.server_key).map_err(|e| StationError::Crypto {
                context: "reading the pinned server key",
                detail: e.to_string(),
            })?;
        let receipt: Receipt = match signed.verify(&key) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Err(Failure {
                    disposition: Disposition::StopBatch,
                    message: format!(
                        "the receipt for {rid} does not verify with the server key ({e}); the packet stays queued"
                    ),
                    code: Some("receipt_invalid".into()),
                }));
            }
        };
        if &receipt.rid != rid
            || receipt.sha256 != sha
            || receipt.size != size
            || receipt.machine_id != self.machine_id
        {
            return Ok(Err(Failure {
                disposition: Disposition::SkipPacket,
                message: format!(
                    "the server's receipt for {rid} does not describe this packet (RID, size, SHA-256 or machine differ); the packet stays queued"
                ),
                code: Some("receipt_mismatch".into()),
            }));
        }
        let json = serde_json::to_string(signed).unwrap_or_default();
        let now = self.clock.now();
        let actor = self
            .session
            .as_ref()
            .map_or_else(|| "system".to_owned(), |s| s.operator.id.clone());
        self.store.tx(|tx| {
            tx.execute(
                "INSERT INTO uploads (rid, attempts, receipt, received_at, server_status, status_at, updated_at)
                 VALUES (?1, 1, ?2, ?3, 'RECEIVED', ?4, ?4)
                 ON CONFLICT(rid) DO UPDATE SET receipt = ?2, received_at = ?3, server_status = 'RECEIVED', status_at = ?4,
                   attempts = attempts + 1, last_error = NULL, updated_at = ?4",
                params![rid.as_str(), json, receipt.received_at.to_rfc3339(), now.to_rfc3339()],
            )
            .map_err(StationError::db("storing the receipt"))?;
            tx.execute(
                "UPDATE packets SET state = ?2, updated_at = ?3 WHERE rid = ?1",
                params![rid.as_str(), UPLOADED, now.to_rfc3339()],
            )
            .map_err(StationError::db("marking the packet uploaded"))?;
            audit::append(tx, now, &actor, "PACKET_UPLOADED", rid.as_str(), &format!("size={size}"))?;
            Ok(())
        })?;
        info!(%rid, size, "packet uploaded; receipt verified");
        Ok(Ok(()))
    }

    async fn create_upload(
        &mut self,
        client: &ServerClient,
        rid: &Rid,
        sha: &str,
        size: u64,
        opts: &SyncOptions,
    ) -> Result<std::result::Result<(String, u64), Failure>> {
        let headers = [
            ("tus-resumable", wire::TUS_VERSION.to_owned()),
            ("upload-length", size.to_string()),
            ("upload-metadata", wire::upload_metadata(rid, sha)),
        ];
        let what = format!("the upload creation for {rid}");
        let a = match client
            .send(&what, "POST", "/api/v1/uploads", &headers, Vec::new(), true)
            .await
        {
            Ok(a) => a,
            Err(e) => return Ok(Err(e.into())),
        };
        let Some(location) = a.header("location").map(str::to_owned) else {
            return Ok(Err(HttpError::Garbage {
                what,
                detail: "no Location header".into(),
            }
            .into()));
        };
        if !location.starts_with("/api/") {
            return Ok(Err(HttpError::Garbage {
                what,
                detail: format!("unexpected Location {location:?}"),
            }
            .into()));
        }
        let offset = match a.header_u64(&what, "upload-offset") {
            Ok(o) => o,
            Err(e) => return Ok(Err(e.into())),
        };
        // Remembered so an interrupted multi-chunk upload resumes with HEAD; a packet sent in one chunk
        // skips the write (after an interruption the creation request, idempotent by RID and digest, finds
        // the upload again).
        if size > opts.chunk_bytes {
            self.save_location(rid.as_str(), &location)?;
        }
        Ok(Ok((location, offset)))
    }

    async fn poll_statuses(
        &mut self,
        client: &ServerClient,
        opts: &SyncOptions,
        progress: &mut dyn FnMut(&Progress),
        report: &mut SyncReport,
    ) -> Result<()> {
        let rows: Vec<(String, Option<String>)> = {
            let mut st = self
                .store
                .conn()
                .prepare(
                    "SELECT p.rid, u.server_status FROM packets p JOIN uploads u ON u.rid = p.rid
                     WHERE p.state = ?1 ORDER BY p.created_at, p.rid",
                )
                .map_err(StationError::db("listing uploaded packets"))?;
            st.query_map([UPLOADED], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(StationError::db("listing uploaded packets"))?
        };
        for (rid, before) in rows {
            let what = format!("the status of {rid}");
            let path = format!("/api/v1/packets/{rid}/status");
            let resp = match self
                .with_retries(opts, &what, progress, || {
                    client.get_json::<PacketStatusResponse>(&what, &path)
                })
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    if e.disposition() != Disposition::SkipPacket {
                        report.stopped.get_or_insert_with(|| e.to_string());
                        return Ok(());
                    }
                    continue;
                }
            };
            if resp.rid.as_str() != rid {
                continue;
            }
            let to = resp.status.as_str().to_owned();
            let local = if resp.status.is_final() {
                PROCESSED
            } else {
                UPLOADED
            };
            let now = self.clock.now();
            if before.as_deref() != Some(to.as_str()) || local == PROCESSED {
                let reason = resp.reason.clone();
                self.store.tx(|tx| {
                    tx.execute(
                        "UPDATE uploads SET server_status = ?2, server_reason = ?3, status_at = ?4,
                           final_at = CASE WHEN ?5 THEN coalesce(final_at, ?4) ELSE final_at END, updated_at = ?4
                         WHERE rid = ?1",
                        params![rid, to, reason, now.to_rfc3339(), local == PROCESSED],
                    )
                    .map_err(StationError::db("storing a packet status"))?;
                    tx.execute(
                        "UPDATE packets SET state = ?2, updated_at = ?3 WHERE rid = ?1",
                        params![rid, local, now.to_rfc3339()],
                    )
                    .map_err(StationError::db("storing a packet status"))?;
                    audit::append(tx, now, "system", "PACKET_STATUS", &rid, &to)?;
                    Ok(())
                })?;
                progress(&Progress::Status {
                    rid: rid.clone(),
                    status: to.clone(),
                });
                report.statuses.push(StatusChange {
                    rid,
                    from: before,
                    to,
                    reason: resp.reason,
                    local_state: local.into(),
                });
            }
        }
        Ok(())
    }

    /// Deletes the files of packets the server finished with, once the retention period has passed since
    /// the final status. Never touches a packet without a verified receipt.
    pub fn apply_retention(&mut self, opts: &SyncOptions) -> Result<Vec<String>> {
        let secs = opts.retention_secs.unwrap_or_else(|| {
            self.master
                .settings
                .packets
                .retention_days_after_processed
                .saturating_mul(86_400)
        });
        let now = self.clock.now();
        let cutoff = now - chrono::Duration::seconds(secs.max(0));
        let rows: Vec<(String, String, String)> = {
            let mut st = self
                .store
                .conn()
                .prepare(
                    "SELECT p.rid, p.file_name, u.final_at FROM packets p JOIN uploads u ON u.rid = p.rid
                     WHERE p.state = ?1 AND u.receipt IS NOT NULL AND u.final_at IS NOT NULL AND u.file_deleted_at IS NULL",
                )
                .map_err(StationError::db("listing processed packets"))?;
            st.query_map([PROCESSED], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
                .map_err(StationError::db("listing processed packets"))?
        };
        let mut deleted = Vec::new();
        for (rid, file, final_at) in rows {
            let Some(final_at) = parse_ts(&final_at) else {
                continue;
            };
            if final_at > cutoff {
                continue;
            }
            let path = self.store.paths().packets.join(&file);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StationError::io("deleting a processed packet", &path)(e)),
            }
            crypto::sync_dir(&self.store.paths().packets)?;
            self.store.tx(|tx| {
                tx.execute(
                    "UPDATE uploads SET file_deleted_at = ?2, updated_at = ?2 WHERE rid = ?1",
                    params![rid, now.to_rfc3339()],
                )
                .map_err(StationError::db("recording a deleted packet"))?;
                audit::append(tx, now, "system", "PACKET_FILE_DELETED", &rid, "retention")?;
                Ok(())
            })?;
            info!(%rid, "packet file deleted after retention");
            deleted.push(rid);
        }
        Ok(deleted)
    }

    /// Upload and server status of every packet that left (or is leaving) the station, oldest first.
    pub fn uploads(&self) -> Result<Vec<UploadView>> {
        let mut st = self
            .store
            .conn()
            .prepare(
                "SELECT p.rid, p.state, u.server_status, u.server_reason, u.received_at, u.last_error, coalesce(u.attempts, 0), u.file_deleted_at
                 FROM packets p LEFT JOIN uploads u ON u.rid = p.rid
                 WHERE p.state IN (?1, ?2, ?3, ?4) ORDER BY p.created_at, p.rid",
            )
            .map_err(StationError::db("listing uploads"))?;
        st.query_map(
            params![state::APPROVED, state::EXPORTED, UPLOADED, PROCESSED],
            |r| {
                Ok(UploadView {
                    rid: r.get(0)?,
                    state: r.get(1)?,
                    server_status: r.get(2)?,
                    server_reason: r.get(3)?,
                    received_at: r.get(4)?,
                    last_error: r.get(5)?,
                    attempts: r.get(6)?,
                    file_deleted_at: r.get(7)?,
                })
            },
        )
        .and_then(|rows| rows.collect())
        .map_err(StationError::db("listing uploads"))
    }

    /// The machine id (assigned by the server at enrolment).
    pub fn machine_id(&self) -> &MachineId {
        &self.machine_id
    }
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_names_follow_the_station_layout() {
        assert_eq!(document_name("ageGroups"), "age-groups");
        assert_eq!(document_name("blocklistedWords"), "blocklisted-words");
        assert_eq!(document_name("labels/eng"), "labels/eng");
        assert_eq!(document_name("centers"), "centers");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let o = SyncOptions {
            backoff_initial_ms: 100,
            backoff_max_ms: 1000,
            ..SyncOptions::default()
        };
        for a in 0..30 {
            let d = backoff(&o, a).as_millis();
            let cap = u128::from((100u64 << a.min(20)).min(1000));
            assert!(
                d >= cap / 2 && d <= cap,
                "attempt {a}: {d} not in [{}, {cap}]",
                cap / 2
            );
        }
    }

    #[test]
    fn cursors_are_escaped() {
        assert_eq!(percent("12"), "12");
        assert_eq!(percent("a b&c"), "a%20b%26c");
    }
}
