//! The sync engine: machine enrolment, delta master-data sync, resumable upload of approved packets,
//! signed receipts, status polling and retention (`docs/station.md`, protocol in `docs/api.md`).
//!
//! - [`Station::enrol_machine`] reads `server-info`, pins the server signing key, sends the enrolment
//!   request signed by the machine key and takes the machine id the server assigns (before the first
//!   packet is sealed; afterwards the id can no longer change).
//! - [`Station::sync_with`] runs one round: master data by cursor for every
//!   [`SyncKind`](tessera_packet::wire::SyncKind) (pages are applied with their cursor in one transaction;
//!   the assembled configuration is validated before it replaces the old one), then upload, then status,
//!   then retention. A failing master-data sync never blocks the upload.
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
mod masterdata;
mod opkeys;
mod upload;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tessera_packet::wire::{
    self, EnrolmentRequest, EnrolmentResponse, MachineInfo, MachineStatus, ServerInfo,
};
use tracing::{info, instrument, warn};

use self::http::{Disposition, HttpError, ServerClient};
use crate::audit;
use crate::crypto;
use crate::error::{Result, StationError};
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
    /// Operator (sign-off) keys the server accepted in this round.
    pub operator_keys_registered: u64,
    /// Why an operator key registration failed (retried at the next round).
    pub operator_keys_error: Option<String>,
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
pub(crate) fn document_name(key: &str) -> String {
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

pub(crate) fn doc_version(v: &serde_json::Value) -> String {
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
        if let Some(pin) = self.kit_pin()?
            && pin.server_key != si.signing_public_key
        {
            return Err(StationError::Server {
                context: "enrolling".into(),
                detail: format!(
                    "the server at {url} has signing key {} but this station's set-up kit names {} ({}); check the server address, or ask the administrator",
                    crypto::fingerprint(server_key.as_bytes()),
                    pin.server_key_fingerprint,
                    pin.server_url
                ),
                code: Some("server_key_mismatch".into()),
            });
        }
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
            // Sign-off keys first: the server rejects packets signed by keys it does not know.
            let (registered, error) = self.register_operator_keys(&client).await?;
            report.operator_keys_registered = registered;
            report.operator_keys_error = error;
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
