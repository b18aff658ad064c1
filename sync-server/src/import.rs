//! Import of packets that offline stations exported to removable media.
//!
//! A station's export folder holds the packet files (`<RID>.tpkt`) and, per export, a manifest
//! `export-<machine>-<time>.json` listing every packet's RID, file name, size and SHA-256, with
//! `export-<machine>-<time>.sig` beside it: the base64 Ed25519 signature of the manifest's exact bytes by the
//! machine key (`client/src/workflow.rs`, `export`). [`import_folder`] checks each manifest's signature
//! against the key the server enrolled for that machine (not the key written in the manifest), then ingests
//! each packet exactly as a completed upload would (stored as a blob, by default under `blobs/packets/`, signed receipt,
//! processing job), keyed by RID and SHA-256:
//!
//! - a packet already received with the same hash is left as it is (a re-import is a no-op);
//! - a packet whose file does not match its manifest entry (size or hash), or whose RID was not made by the
//!   manifest's machine, is stored and marked `QUARANTINED` with the reason (`import:hash_mismatch`,
//!   `import:rid_machine_mismatch`), never dropped; an administrator can re-import a good copy after
//!   removing it;
//! - a packet whose RID was already received with another hash is refused (`import:rid_conflict`) and left
//!   on the medium.
//!
//! A manifest whose signature does not verify, or whose machine is unknown or not active, is refused
//! whole: nothing listed in it is imported.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tessera_packet::ids::{MachineId, Rid};
use tessera_packet::wire::{MachineStatus, PacketStatus, Receipt, SignedReceipt};

use crate::AppState;
use crate::store::{NewUpload, StoreError};

/// Largest manifest read, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

pub use tessera_packet::wire::{ExportEntry, ExportManifest};

/// Why an import could not run or a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The folder or a file could not be read.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being read.
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The folder holds no signed export manifest.
    #[error(
        "no export manifest in {0}: expected export-<machine>-<time>.json with its .sig, as a station writes"
    )]
    NoManifest(PathBuf),
    /// A manifest is refused (nothing it lists was imported).
    #[error("manifest {path}: {reason}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The packet could not be stored.
    #[error(transparent)]
    Blob(#[from] crate::blobs::BlobError),
}

/// What happened to one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketOutcome {
    /// Received and queued for processing.
    Ingested,
    /// Already received with the same hash: nothing done.
    AlreadyReceived(PacketStatus),
    /// Stored and quarantined with this reason.
    Quarantined(String),
    /// Not imported (left on the medium) with this reason.
    Refused(String),
}

/// One line of an import report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketLine {
    /// The RID as listed in the manifest.
    pub rid: String,
    /// The outcome.
    pub outcome: PacketOutcome,
}

impl std::fmt::Display for PacketLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            PacketOutcome::Ingested => write!(f, "{} imported, queued for processing", self.rid),
            PacketOutcome::AlreadyReceived(s) => {
                write!(f, "{} already received ({}), nothing to do", self.rid, s.as_str())
            }
            PacketOutcome::Quarantined(r) => write!(f, "{} QUARANTINED: {r}", self.rid),
            PacketOutcome::Refused(r) => write!(f, "{} not imported: {r}", self.rid),
        }
    }
}

/// The signed manifests of a folder, in name order.
pub fn manifests(dir: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { what, path, source }
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("reading folder", dir))? {
        let p = entry.map_err(io("reading folder", dir))?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with("export-") && name.ends_with(".json") && p.with_extension("sig").is_file() {
            out.push(p);
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(ImportError::NoManifest(dir.to_path_buf()));
    }
    Ok(out)
}

/// Reads a manifest and checks its signature against the enrolled machine's key.
pub async fn verified_manifest(state: &AppState, path: &Path) -> Result<ExportManifest, ImportError> {
    let refuse = |reason: String| ImportError::Manifest {
        path: path.to_path_buf(),
        reason,
    };
    let io = |what| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { what, path, source }
    };
    let len = std::fs::metadata(path).map_err(io("reading manifest"))?.len();
    if len > MAX_MANIFEST_BYTES {
        return Err(refuse(format!("{len} bytes, more than {MAX_MANIFEST_BYTES}")));
    }
    let bytes = std::fs::read(path).map_err(io("reading manifest"))?;
    let sig_text =
        std::fs::read_to_string(path.with_extension("sig")).map_err(io("reading manifest signature"))?;
    let m: ExportManifest =
        serde_json::from_slice(&bytes).map_err(|e| refuse(format!("not an export manifest: {e}")))?;
    if m.format != "tessera-export" || m.version != 1 {
        return Err(refuse(format!(
            "unsupported format {} version {}",
            m.format, m.version
        )));
    }
    let machine_id: MachineId = m
        .machine_id
        .parse()
        .map_err(|_| refuse(format!("invalid machine id {:?}", m.machine_id)))?;
    let machine = state
        .store
        .machine(&machine_id)
        .await?
        .ok_or_else(|| refuse(format!("machine {machine_id} is not enrolled on this server")))?;
    if machine.status != MachineStatus::Active {
        return Err(refuse(format!(
            "machine {machine_id} is {}, not ACTIVE",
            machine.status.as_str()
        )));
    }
    let key = ed25519_dalek::VerifyingKey::from_bytes(&machine.public_key)
        .map_err(|_| refuse(format!("machine {machine_id} has an invalid enrolled key")))?;
    let sig: [u8; 64] = tessera_packet::wire::decode_fixed("export signature", sig_text.trim())
        .map_err(|_| refuse("the .sig file is not a base64 Ed25519 signature".into()))?;
    key.verify_strict(&bytes, &ed25519_dalek::Signature::from_bytes(&sig))
        .map_err(|_| {
            refuse(format!(
                "signature does not verify with machine {machine_id}'s enrolled key: the manifest was altered \
                 or signed by another machine"
            ))
        })?;
    Ok(m)
}

fn hash_file(path: &Path, limit: u64) -> std::io::Result<Option<(Vec<u8>, String)>> {
    let len = std::fs::metadata(path)?.len();
    if len > limit {
        return Ok(None);
    }
    let bytes = std::fs::read(path)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    Ok(Some((bytes, sha)))
}

/// Ingests one packet file as a completed upload would; `quarantine` marks it at once.
async fn ingest(
    state: &AppState,
    machine: &MachineId,
    rid: &Rid,
    bytes: Vec<u8>,
    sha256: String,
    quarantine: Option<String>,
) -> Result<PacketOutcome, ImportError> {
    if let Some(p) = state.store.packet(rid).await? {
        return Ok(if p.sha256 == sha256 {
            PacketOutcome::AlreadyReceived(p.status)
        } else {
            PacketOutcome::Refused(
                "import:rid_conflict: another packet with this RID was already received".into(),
            )
        });
    }
    let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let at = state.clock.now();
    let upload_id = format!("import-{}", sha256.get(..32).unwrap_or(&sha256));
    let up = state
        .store
        .create_upload(NewUpload {
            upload_id: upload_id.clone(),
            machine_id: machine.clone(),
            rid: rid.clone(),
            length,
            sha256: sha256.clone(),
            at: at.timestamp(),
        })
        .await;
    let up = match up {
        Ok(up) => up,
        Err(StoreError::Conflict { .. }) => {
            return Ok(PacketOutcome::Refused(
                "import:rid_conflict: an upload of another file with this RID is in progress".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    state
        .blob_store
        .put(&crate::blobs::packet_key(rid), bytes::Bytes::from(bytes))
        .await?;
    let receipt = Receipt {
        rid: rid.clone(),
        machine_id: machine.clone(),
        sha256,
        size: length,
        received_at: at,
    };
    let signed = SignedReceipt::sign(&receipt, &state.keys.signing).map_err(|e| StoreError::Corrupt {
        what: "receipt",
        detail: e.to_string(),
    })?;
    let text = serde_json::to_string(&signed).map_err(|e| StoreError::Corrupt {
        what: "receipt",
        detail: e.to_string(),
    })?;
    state
        .store
        .finish_upload(&up.upload_id, up.received, &text, at.timestamp())
        .await?;
    state.metrics.packet_received();
    if let Some(reason) = quarantine {
        state
            .store
            .finish_job(
                rid,
                PacketStatus::Quarantined,
                Some(reason.clone()),
                at.timestamp(),
            )
            .await?;
        tracing::warn!(%rid, %reason, "imported packet quarantined");
        return Ok(PacketOutcome::Quarantined(reason));
    }
    tracing::info!(%rid, size = length, "packet imported");
    Ok(PacketOutcome::Ingested)
}

/// Imports every signed manifest of `dir`; `on_line` is called once per packet as it is done (the CLI
/// prints it). A refused manifest stops the import with an error after the manifests before it were
/// imported (each packet is complete or absent).
pub async fn import_folder(
    state: &AppState,
    dir: &Path,
    mut on_line: impl FnMut(&PacketLine, usize, usize),
) -> Result<Vec<PacketLine>, ImportError> {
    let mut verified = Vec::new();
    for path in manifests(dir)? {
        let m = verified_manifest(state, &path).await?;
        verified.push(m);
    }
    let total: usize = verified.iter().map(|m| m.packets.len()).sum();
    let mut lines = Vec::with_capacity(total);
    for m in verified {
        let machine: MachineId = m.machine_id.parse().map_err(|_| ImportError::Manifest {
            path: dir.to_path_buf(),
            reason: format!("invalid machine id {:?}", m.machine_id),
        })?;
        for e in &m.packets {
            let outcome = import_entry(state, dir, &machine, e).await?;
            let line = PacketLine {
                rid: e.rid.clone(),
                outcome,
            };
            lines.push(line);
            if let Some(l) = lines.last() {
                on_line(l, lines.len(), total);
            }
        }
    }
    Ok(lines)
}

async fn import_entry(
    state: &AppState,
    dir: &Path,
    machine: &MachineId,
    e: &ExportEntry,
) -> Result<PacketOutcome, ImportError> {
    let Ok(rid) = e.rid.parse::<Rid>() else {
        return Ok(PacketOutcome::Refused("import:invalid_rid".into()));
    };
    if e.file.is_empty() || e.file.contains(['/', '\\']) || e.file.starts_with('.') {
        return Ok(PacketOutcome::Refused("import:unsafe_file_name".into()));
    }
    let path = dir.join(&e.file);
    let limit = state.settings.max_packet_bytes;
    let p = path.clone();
    let read = tokio::task::spawn_blocking(move || hash_file(&p, limit))
        .await
        .map_err(|err| StoreError::Task(err.to_string()))?;
    let (bytes, sha) = match read {
        Ok(Some(x)) => x,
        Ok(None) => {
            return Ok(PacketOutcome::Refused(format!(
                "import:packet_too_large (over {limit} bytes)"
            )));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(PacketOutcome::Refused("import:file_missing".into()));
        }
        Err(source) => {
            return Err(ImportError::Io {
                what: "reading packet",
                path,
                source,
            });
        }
    };
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let quarantine = if rid.machine_id() != *machine {
        Some(format!(
            "import:rid_machine_mismatch: RID not made by machine {machine}"
        ))
    } else if size != e.size || !sha.eq_ignore_ascii_case(&e.sha256) {
        Some("import:hash_mismatch: the file differs from the signed export manifest".to_owned())
    } else {
        None
    };
    ingest(state, &rid.machine_id(), &rid, bytes, sha, quarantine).await
}
