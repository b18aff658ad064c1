//! Upload of approved packets (tus 1.0 with checksums, resumable), receipts, status polling and retention.

use ed25519_dalek::VerifyingKey;
use rusqlite::{OptionalExtension, params};
use sha2::Digest as _;
use tessera_packet::ids::{MachineId, Rid};
use tessera_packet::wire::{self, PacketStatusResponse, Receipt, SignedReceipt};
use tracing::{info, warn};

use super::http::{self, Disposition, HttpError, ServerClient};
use super::{
    PROCESSED, PacketFailure, Progress, StatusChange, SyncOptions, SyncReport, UPLOADED, UploadView, backoff,
    parse_ts,
};
use crate::audit;
use crate::crypto;
use crate::error::{Result, StationError};
use crate::station::Station;
use crate::workflow::state;

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

    pub(super) async fn upload_all(
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

    pub(super) async fn poll_statuses(
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
