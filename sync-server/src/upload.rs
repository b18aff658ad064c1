//! Resumable, checksummed, idempotent packet upload: tus 1.0 core with the creation and checksum extensions.
//!
//! - `POST /api/v1/uploads` with `Upload-Length` and `Upload-Metadata: rid <b64>,sha256 <b64 hex digest>`
//!   creates (or, for the same RID, length and digest, finds again) an upload: `201`, `Location`,
//!   `Upload-Offset`.
//! - `HEAD /api/v1/uploads/{id}`: `Upload-Offset` and `Upload-Length`, to resume after a failure.
//! - `PATCH /api/v1/uploads/{id}` with `Content-Type: application/offset+octet-stream`, `Upload-Offset` and
//!   optionally `Upload-Checksum: sha256 <b64>`: appends a chunk. `204` with the new `Upload-Offset`, except the
//!   chunk that completes the packet, which answers `200` with the signed receipt (`wire::SignedReceipt`) once
//!   the whole file's SHA-256 matched the declared one. A wrong whole-file digest resets the upload to 0
//!   (`460 packet_checksum_mismatch`), so nothing half-written is ever accepted.
//!
//! A packet sent in one PATCH (the station's usual case) is hashed once in memory (that digest also checks
//! `Upload-Checksum`), stored once as a blob ([`crate::blobs`]) and recorded in one transaction: no part file,
//! no read-back. Chunks of a larger or resumed upload go to a part file (`blobs/uploads/<id>.part`, synced
//! before `204`) while a running digest is kept, so the last chunk needs no read-back either (after a
//! restart the part file is read once).
//!
//! Every request is signed by the machine key ([`crate::auth::Signed`]).

use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::PathBuf;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tessera_packet::ids::Rid;
use tessera_packet::wire::{self, Receipt, SignedReceipt};

use crate::AppState;
use crate::blobs;
use crate::error::ApiError;
use crate::store::{MachineRecord, NewUpload, UploadRecord};

/// tus header names.
pub mod tus {
    /// Protocol version header.
    pub const RESUMABLE: &str = "tus-resumable";
    /// Supported versions (OPTIONS).
    pub const VERSION: &str = "tus-version";
    /// Supported extensions (OPTIONS).
    pub const EXTENSION: &str = "tus-extension";
    /// Largest upload (OPTIONS).
    pub const MAX_SIZE: &str = "tus-max-size";
    /// Supported checksum algorithms (OPTIONS).
    pub const CHECKSUM_ALGORITHM: &str = "tus-checksum-algorithm";
    /// Declared total length.
    pub const UPLOAD_LENGTH: &str = "upload-length";
    /// Current offset.
    pub const UPLOAD_OFFSET: &str = "upload-offset";
    /// Metadata.
    pub const UPLOAD_METADATA: &str = "upload-metadata";
    /// Chunk checksum.
    pub const UPLOAD_CHECKSUM: &str = "upload-checksum";
}

/// Status 460 of the tus checksum extension.
fn checksum_status() -> StatusCode {
    StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST)
}

fn hv(v: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&v.to_string()).unwrap_or(HeaderValue::from_static("invalid"))
}

fn tus_headers(extra: &[(&'static str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(tus::RESUMABLE, HeaderValue::from_static(wire::TUS_VERSION));
    h.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    for (k, v) in extra {
        h.insert(*k, hv(v));
    }
    h
}

/// `OPTIONS /api/v1/uploads`: what the server supports.
pub fn options(state: &AppState) -> Response {
    let h = tus_headers(&[
        (tus::VERSION, wire::TUS_VERSION.to_owned()),
        (tus::EXTENSION, "creation,checksum".to_owned()),
        (tus::MAX_SIZE, state.settings.max_packet_bytes.to_string()),
        (tus::CHECKSUM_ALGORITHM, "sha256".to_owned()),
    ]);
    (StatusCode::NO_CONTENT, h).into_response()
}

fn require_tus(h: &HeaderMap) -> Result<(), ApiError> {
    match h.get(tus::RESUMABLE).and_then(|v| v.to_str().ok()) {
        Some(wire::TUS_VERSION) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "tus_version_unsupported",
            format!("send header Tus-Resumable: {}", wire::TUS_VERSION),
        )),
    }
}

pub(crate) fn header_u64(h: &HeaderMap, name: &'static str) -> Result<u64, ApiError> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "malformed_header",
                format!("header {name} must be a whole number"),
            )
        })
}

/// Parses `Upload-Metadata` into (RID, hex SHA-256).
pub fn parse_metadata(value: &str) -> Result<(Rid, String), ApiError> {
    let bad = |m: String| ApiError::bad_request("malformed_metadata", m);
    let mut rid = None;
    let mut sha = None;
    for pair in value.split(',') {
        let mut it = pair.trim().splitn(2, ' ');
        let key = it.next().unwrap_or_default();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(it.next().unwrap_or_default().trim())
            .map_err(|_| bad(format!("Upload-Metadata value of {key:?} is not base64")))?;
        let text =
            String::from_utf8(raw).map_err(|_| bad(format!("Upload-Metadata {key:?} is not UTF-8")))?;
        match key {
            "rid" => {
                rid = Some(
                    text.parse::<Rid>()
                        .map_err(|e| bad(format!("Upload-Metadata rid: {e}")))?,
                )
            }
            "sha256" => {
                if text.len() != 64
                    || !text
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(bad(
                        "Upload-Metadata sha256 must be 64 lower-case hex characters".into()
                    ));
                }
                sha = Some(text);
            }
            _ => {}
        }
    }
    match (rid, sha) {
        (Some(r), Some(s)) => Ok((r, s)),
        _ => Err(bad("Upload-Metadata must carry rid and sha256".into())),
    }
}

fn part_path(state: &AppState, id: &str) -> PathBuf {
    state.blobs.join("uploads").join(format!("{id}.part"))
}

/// `POST /api/v1/uploads`.
pub async fn create(state: &AppState, machine: &MachineRecord, h: &HeaderMap) -> Result<Response, ApiError> {
    require_tus(h)?;
    let length = header_u64(h, tus::UPLOAD_LENGTH)?;
    if length == 0 {
        return Err(ApiError::bad_request(
            "empty_upload",
            "Upload-Length must be positive",
        ));
    }
    if length > state.settings.max_packet_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "packet_too_large",
            format!(
                "the packet is {length} bytes; the server accepts at most {}",
                state.settings.max_packet_bytes
            ),
        ));
    }
    let meta = h
        .get(tus::UPLOAD_METADATA)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::bad_request("malformed_metadata", "header Upload-Metadata is required"))?;
    let (rid, sha256) = parse_metadata(meta)?;
    if rid.machine_id() != machine.machine_id {
        return Err(ApiError::forbidden(
            "rid_machine_mismatch",
            format!("RID {rid} was not made by machine {}", machine.machine_id),
        ));
    }
    let now = state.clock.now().timestamp();
    let started = state
        .store
        .uploads_since(&machine.machine_id, now - 86_400)
        .await?;
    if started >= u64::from(state.settings.machine_daily_quota) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "quota_exceeded",
            format!(
                "machine {} started {started} uploads in 24 hours (quota {}); retry later",
                machine.machine_id, state.settings.machine_daily_quota
            ),
        ));
    }
    let upload_id = crate::keys::random_hex::<16>().map_err(|e| ApiError::internal(e.to_string()))?;
    let up = state
        .store
        .create_upload(NewUpload {
            upload_id,
            machine_id: machine.machine_id.clone(),
            rid,
            length,
            sha256,
            at: now,
        })
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "rid_conflict", e.to_string())
            }
            other => other.into(),
        })?;
    let up = if up.completed_at.is_none() && up.received >= up.length {
        finish_if_all_received(state, &up).await?;
        state.store.upload(&up.upload_id).await?.unwrap_or(up)
    } else {
        up
    };
    // The part file is created by the first chunk that does not complete the packet on its own.
    let offset = if up.completed_at.is_some() {
        up.length
    } else {
        up.received
    };
    let location = format!("/api/{}/uploads/{}", wire::API_VERSION, up.upload_id);
    let h = tus_headers(&[("location", location), (tus::UPLOAD_OFFSET, offset.to_string())]);
    tracing::info!(rid = %up.rid, upload = %up.upload_id, "upload created");
    Ok((StatusCode::CREATED, h).into_response())
}

async fn owned_upload(state: &AppState, machine: &MachineRecord, id: &str) -> Result<UploadRecord, ApiError> {
    match state.store.upload(id).await? {
        Some(up) if up.machine_id == machine.machine_id => Ok(up),
        _ => Err(ApiError::not_found(format!(
            "upload {id} not found for this machine"
        ))),
    }
}

/// `HEAD /api/v1/uploads/{id}`.
pub async fn head(state: &AppState, machine: &MachineRecord, id: &str) -> Result<Response, ApiError> {
    let mut up = owned_upload(state, machine, id).await?;
    if up.completed_at.is_none() && up.received >= up.length {
        finish_if_all_received(state, &up).await?;
        up = owned_upload(state, machine, id).await?;
    }
    let offset = if up.completed_at.is_some() {
        up.length
    } else {
        up.received
    };
    let h = tus_headers(&[
        (tus::UPLOAD_OFFSET, offset.to_string()),
        (tus::UPLOAD_LENGTH, up.length.to_string()),
    ]);
    Ok((StatusCode::OK, h).into_response())
}

/// Holds an upload's in-process lock until dropped.
struct UploadLock<'a> {
    state: &'a AppState,
    id: String,
}

impl Drop for UploadLock<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.state.upload_locks.lock() {
            set.remove(&self.id);
        }
    }
}

fn lock_upload<'a>(state: &'a AppState, id: &str) -> Result<UploadLock<'a>, ApiError> {
    let mut set = state
        .upload_locks
        .lock()
        .map_err(|_| ApiError::internal("upload lock poisoned"))?;
    if !set.insert(id.to_owned()) {
        return Err(ApiError::new(
            StatusCode::LOCKED,
            "upload_busy",
            "another request is writing this upload; wait for it, then HEAD and resume",
        ));
    }
    Ok(UploadLock {
        state,
        id: id.to_owned(),
    })
}

pub(crate) fn check_chunk_checksum(h: &HeaderMap, digest: &[u8; 32]) -> Result<(), ApiError> {
    let Some(v) = h.get(tus::UPLOAD_CHECKSUM) else {
        return Ok(());
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::bad_request("malformed_header", "Upload-Checksum is not ASCII"))?;
    let (alg, b64) = v.trim().split_once(' ').unwrap_or((v, ""));
    if alg != "sha256" {
        return Err(ApiError::bad_request(
            "checksum_algorithm_unsupported",
            format!("checksum algorithm {alg:?} is not supported; use sha256"),
        ));
    }
    let expected = wire::decode_fixed::<32>("Upload-Checksum", b64)
        .map_err(|e| ApiError::bad_request("malformed_header", e.to_string()))?;
    if digest != &expected {
        return Err(ApiError::new(
            checksum_status(),
            "checksum_mismatch",
            "the chunk's SHA-256 does not match Upload-Checksum; nothing was written, send the chunk again",
        ));
    }
    Ok(())
}

fn write_chunk(path: PathBuf, offset: u64, chunk: bytes::Bytes) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    // Drop any tail a crashed earlier write left beyond the committed offset.
    f.set_len(offset)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(&chunk)?;
    f.sync_data()
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("{what}: {e}")))?
        .map_err(|e| ApiError::internal(format!("{what}: {e}")))
}

/// `PATCH /api/v1/uploads/{id}`.
pub async fn patch(
    state: &AppState,
    machine: &MachineRecord,
    id: &str,
    h: &HeaderMap,
    chunk: bytes::Bytes,
    chunk_sha256: [u8; 32],
) -> Result<Response, ApiError> {
    // A client that disconnects (or is killed) mid-request must not cancel a chunk half-way through being
    // recorded, or the packet's completion half-way through: the work runs in its own task, to the end.
    let (state, machine, id, h) = (state.clone(), machine.clone(), id.to_owned(), h.clone());
    tokio::spawn(async move { patch_to_end(&state, &machine, &id, &h, chunk, chunk_sha256).await })
        .await
        .map_err(|e| ApiError::internal(format!("upload task: {e}")))?
}

async fn patch_to_end(
    state: &AppState,
    machine: &MachineRecord,
    id: &str,
    h: &HeaderMap,
    chunk: bytes::Bytes,
    digest: [u8; 32],
) -> Result<Response, ApiError> {
    require_tus(h)?;
    if h.get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/offset+octet-stream")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "wrong_content_type",
            "send Content-Type: application/offset+octet-stream",
        ));
    }
    let offset = header_u64(h, tus::UPLOAD_OFFSET)?;
    let _lock = lock_upload(state, id)?;
    let up = owned_upload(state, machine, id).await?;
    if up.completed_at.is_some() {
        return receipt_response(state, &up.rid).await;
    }
    if offset != up.received {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "offset_mismatch",
            format!(
                "Upload-Offset is {offset} but the server has {} bytes; HEAD the upload and resume",
                up.received
            ),
        ));
    }
    let end = offset.saturating_add(chunk.len() as u64);
    if end > up.length {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_exceeds_length",
            format!(
                "the chunk would end at byte {end}, beyond Upload-Length {}",
                up.length
            ),
        ));
    }
    // The chunk's SHA-256, computed once for the request signature, serves the Upload-Checksum check and,
    // for a packet sent in one request, the whole-file check (nothing is hashed again or read back).
    check_chunk_checksum(h, &digest)?;
    if offset == 0 && end == up.length {
        // The whole packet in one request: checked in memory, then stored once; no part file.
        if hex::encode(digest) != up.sha256 {
            return Err(whole_digest_mismatch());
        }
        state
            .blob_store
            .put(&blobs::packet_key(&up.rid), chunk)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        state.metrics.add_upload_bytes(end);
        let receipt = record_received(state, id, &up, Some(0)).await?;
        return Ok(receipt_body(state, receipt, up.length));
    }
    let running = take_running_hash(state, id, offset);
    let path = part_path(state, id);
    let running = blocking("write chunk", {
        let path = path.clone();
        move || {
            let running = running.map(|mut r| {
                r.update(&chunk);
                r
            });
            write_chunk(path, offset, chunk)?;
            Ok(running)
        }
    })
    .await?;
    if !state.store.advance_upload(id, offset, end).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "offset_mismatch",
            "the upload moved; HEAD it and resume",
        ));
    }
    state.metrics.add_upload_bytes(end - offset);
    if end < up.length {
        if let Some(r) = running {
            put_running_hash(state, id, end, r);
        }
        return Ok((
            StatusCode::NO_CONTENT,
            tus_headers(&[(tus::UPLOAD_OFFSET, end.to_string())]),
        )
            .into_response());
    }
    let digest = running.map(|r| hex::encode(r.finalize()));
    let receipt = finish(state, id, &up, digest).await?;
    Ok(receipt_body(state, receipt, up.length))
}

/// The running digest of an upload if it covers exactly its first `offset` bytes (a fresh one at 0).
fn take_running_hash(state: &AppState, id: &str, offset: u64) -> Option<Sha256> {
    let mut map = state.upload_hashes.lock().ok()?;
    match map.remove(id) {
        Some((at, h)) if at == offset => Some(h),
        _ if offset == 0 => Some(Sha256::new()),
        _ => None,
    }
}

/// Uploads whose running digests are kept at most (an abandoned upload's entry is dropped with the others
/// when the map is full; its completion then reads the part file back).
const RUNNING_HASHES_MAX: usize = 10_000;

fn put_running_hash(state: &AppState, id: &str, offset: u64, h: Sha256) {
    if let Ok(mut map) = state.upload_hashes.lock() {
        if map.len() >= RUNNING_HASHES_MAX {
            map.clear();
        }
        map.insert(id.to_owned(), (offset, h));
    }
}

fn whole_digest_mismatch() -> ApiError {
    ApiError::new(
        checksum_status(),
        "packet_checksum_mismatch",
        "the received packet's SHA-256 differs from the sha256 declared at creation; the upload was reset to \
         offset 0, send the packet again",
    )
}

/// Signs the receipt of a completely received packet and records it (with the packet's job) in one
/// transaction; with `from`, the upload moves from that offset to its length in the same transaction.
/// Returns the signed receipt's JSON.
async fn record_received(
    state: &AppState,
    id: &str,
    up: &UploadRecord,
    from: Option<u64>,
) -> Result<String, ApiError> {
    let at = state.clock.now();
    let receipt = Receipt {
        rid: up.rid.clone(),
        machine_id: up.machine_id.clone(),
        sha256: up.sha256.clone(),
        size: up.length,
        received_at: at,
    };
    let signed =
        SignedReceipt::sign(&receipt, &state.keys.signing).map_err(|e| ApiError::internal(e.to_string()))?;
    let text = serde_json::to_string(&signed).map_err(|e| ApiError::internal(e.to_string()))?;
    let p = match from {
        Some(from) => state.store.finish_upload(id, from, &text, at.timestamp()).await?,
        None => state.store.complete_upload(id, &text, at.timestamp()).await?,
    };
    state.metrics.packet_received();
    tracing::info!(rid = %up.rid, size = up.length, "packet received");
    // Completing twice returns the first receipt.
    Ok(p.receipt)
}

/// Completes an upload received in several chunks whose bytes have all arrived: the whole packet must match
/// the declared digest (`digest`, the running one, or else the part file read back) before anything is
/// accepted (a mismatch resets the upload to offset 0); then the packet is stored as a blob, recorded as
/// received with its signed receipt, and the part file removed. Safe to run again after a crash or a
/// cancelled request at any point (the part file is removed only once the packet is recorded; completing twice
/// returns the first receipt). Returns the signed receipt's JSON.
async fn finish(
    state: &AppState,
    id: &str,
    up: &UploadRecord,
    digest: Option<String>,
) -> Result<String, ApiError> {
    let path = part_path(state, id);
    let key = blobs::packet_key(&up.rid);
    let bytes = match blocking("read packet", {
        let path = path.clone();
        move || match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await?
    {
        Some(b) => bytes::Bytes::from(b),
        // Stored by an earlier run that stopped before recording it.
        None => state
            .blob_store
            .get(&key)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?,
    };
    let digest = match digest {
        Some(d) if bytes.len() as u64 == up.length => d,
        _ => {
            let b = bytes.clone();
            blocking("hash packet", move || Ok(hex::encode(Sha256::digest(&b)))).await?
        }
    };
    if digest != up.sha256 || bytes.len() as u64 != up.length {
        blocking("reset upload", {
            let path = path.clone();
            move || match std::fs::OpenOptions::new().write(true).open(path) {
                Ok(f) => f.set_len(0),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await?;
        state.store.advance_upload(id, up.length, 0).await?;
        return Err(whole_digest_mismatch());
    }
    state
        .blob_store
        .put(&key, bytes)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let receipt = record_received(state, id, up, None).await?;
    blocking("remove part file", move || match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    })
    .await?;
    Ok(receipt)
}

/// Completes an upload found with every byte received but not completed (the request that sent the last
/// chunk was cut short before it finished, or the server stopped), so that a client resuming it gets its
/// receipt. Runs in its own task for the same reason as [`patch`].
async fn finish_if_all_received(state: &AppState, up: &UploadRecord) -> Result<(), ApiError> {
    if up.completed_at.is_some() || up.received < up.length {
        return Ok(());
    }
    let (state, up) = (state.clone(), up.clone());
    tokio::spawn(async move {
        let Ok(_lock) = lock_upload(&state, &up.upload_id) else {
            // Another request is finishing it.
            return Ok(());
        };
        // Read again under the lock: it may have been completed meanwhile.
        match state.store.upload(&up.upload_id).await? {
            Some(now) if now.completed_at.is_none() && now.received >= now.length => {
                match finish(&state, &now.upload_id, &now, None).await.map(|_| ()) {
                    // Reset to offset 0: the caller reports the new offset and the client sends it again.
                    Err(e) if e.code == "packet_checksum_mismatch" => {
                        tracing::warn!(upload = %now.upload_id, "completed upload failed its digest; reset");
                        Ok(())
                    }
                    other => other,
                }
            }
            _ => Ok(()),
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("upload task: {e}")))?
}

/// The stored signed receipt of a received packet, as a signed JSON response.
pub async fn receipt_response(state: &AppState, rid: &Rid) -> Result<Response, ApiError> {
    let p = state
        .store
        .packet(rid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("packet {rid} has not been completely received")))?;
    Ok(receipt_body(state, p.receipt, p.size))
}

fn receipt_body(state: &AppState, receipt: String, size: u64) -> Response {
    let mut resp = crate::http::signed_body(state, StatusCode::OK, receipt.into_bytes());
    resp.headers_mut()
        .insert(tus::RESUMABLE, HeaderValue::from_static(wire::TUS_VERSION));
    resp.headers_mut().insert(tus::UPLOAD_OFFSET, hv(size));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn metadata_round_trip() {
        let rid: Rid = "10001100010000120261129080000".parse().unwrap();
        let sha = "ab".repeat(32);
        let (r, s) = parse_metadata(&wire::upload_metadata(&rid, &sha)).unwrap();
        assert_eq!((r, s), (rid, sha));
    }

    #[test]
    fn metadata_errors_are_typed() {
        assert_eq!(parse_metadata("rid !!!").unwrap_err().code, "malformed_metadata");
        assert_eq!(parse_metadata("").unwrap_err().code, "malformed_metadata");
        let rid_only = format!("rid {}", wire::encode_b64(b"10001100010000120261129080000"));
        assert_eq!(parse_metadata(&rid_only).unwrap_err().code, "malformed_metadata");
    }

    proptest! {
        #[test]
        fn metadata_parser_never_panics(s in ".{0,300}") {
            let _ = parse_metadata(&s);
        }
    }
}
