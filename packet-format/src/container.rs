//! The outer container: sealing, reading, verifying, opening and signing off.
//!
//! ```text
//! <RID>.tpkt  (POSIX ustar)
//!   id.age          age file (X25519 recipients): the id section archive
//!   evidence.age    age file: the evidence section archive
//!   optional.age    age file: the optional section archive
//!   manifest.json   sizes and SHA-256 of every section, no personal data
//!   manifest.sig    machine Ed25519 signature over the manifest digest
//!   signoff-1.json  officer / supervisor sign-offs, appended over time
//!   ...
//! ```

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use tracing::instrument;

use crate::error::{HashKind, PacketError};
use crate::keys::key_id;
use crate::manifest::{
    FORMAT_MAJOR, FORMAT_MINOR, FORMAT_NAME, MachineSignature, Manifest, SECTIONS, SectionInfo, SignOff,
    manifest_digest,
};
use crate::section::{self, Limits};
use crate::types::PacketContent;
use crate::ustar;

/// A writer that hashes and counts what passes through.
struct HashWriter<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or_default();
        self.hash.update(written);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> HashWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }
    fn finish(self) -> (W, u64, String) {
        (self.inner, self.len, hex::encode(self.hash.finalize()))
    }
}

/// A reader that hashes and counts what passes through.
struct HashReader<R> {
    inner: R,
    hash: Sha256,
    len: u64,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        self.len += n as u64;
        Ok(n)
    }
}

impl<R> HashReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }
    fn finish(self) -> (u64, String) {
        (self.len, hex::encode(self.hash.finalize()))
    }
}

fn w_err(what: &str) -> impl FnOnce(io::Error) -> PacketError + '_ {
    move |source| PacketError::Io {
        context: format!("writing {what}"),
        source,
    }
}

/// Seals `content` into `out`: encrypts each section to `recipients`, writes the manifest and signs it with
/// the machine key. Memory use is bounded by age's 64 KiB chunks plus the metadata JSON; image and
/// document bytes are streamed from `content`.
#[instrument(skip_all, fields(rid = %content.rid))]
pub fn seal<W: Write + Seek>(
    content: &PacketContent,
    recipients: &[age::x25519::Recipient],
    machine_key: &SigningKey,
    out: W,
) -> Result<Manifest, PacketError> {
    seal_inner(content, recipients, machine_key, out, None)
}

/// Makes the first sign-off from the manifest digest, for [`seal_signed_to_file`].
pub type SignFirst<'a> = &'a mut dyn FnMut(&[u8; 32]) -> Result<SignOff, PacketError>;

fn seal_inner<W: Write + Seek>(
    content: &PacketContent,
    recipients: &[age::x25519::Recipient],
    machine_key: &SigningKey,
    mut out: W,
    sign: Option<SignFirst<'_>>,
) -> Result<Manifest, PacketError> {
    if recipients.is_empty() {
        return Err(PacketError::InvalidInput {
            reason: "no packet recipient keys: sync the server's keys first".into(),
        });
    }
    if content.rid.center_id() != content.meta.center_id
        || content.rid.machine_id() != content.meta.machine_id
    {
        return Err(PacketError::InvalidInput {
            reason: "the RID's center and machine differ from the registration's center and machine".into(),
        });
    }
    let mtime = content.created_at.timestamp();
    let start = out.stream_position().map_err(w_err("packet"))?;
    let mut sections = Vec::with_capacity(3);
    for name in SECTIONS {
        let file = format!("{name}.age");
        let header_pos = out.stream_position().map_err(w_err(&file))?;
        out.write_all(&[0u8; 512]).map_err(w_err(&file))?;
        let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| PacketError::InvalidInput {
                reason: format!("age recipients: {e}"),
            })?;
        let mut ct = HashWriter::new(&mut out);
        let stream = encryptor.wrap_output(&mut ct).map_err(w_err(&file))?;
        let pt = HashWriter::new(stream);
        let pt = match name {
            "id" => section::write_id(content, pt, mtime)?,
            "evidence" => section::write_docs(name, &content.evidence, pt, mtime)?,
            _ => section::write_docs(name, &content.optional, pt, mtime)?,
        };
        let (stream, plaintext_size, plaintext_sha256) = pt.finish();
        stream.finish().map_err(w_err(&file))?;
        let (_, ciphertext_size, ciphertext_sha256) = ct.finish();
        let pad = usize::try_from(ustar::padding(ciphertext_size)).unwrap_or(0);
        out.write_all([0u8; 512].get(..pad).unwrap_or_default())
            .map_err(w_err(&file))?;
        let end = out.stream_position().map_err(w_err(&file))?;
        out.seek(SeekFrom::Start(header_pos)).map_err(w_err(&file))?;
        out.write_all(&ustar::encode_header(&file, ciphertext_size, mtime).map_err(w_err(&file))?)
            .map_err(w_err(&file))?;
        out.seek(SeekFrom::Start(end)).map_err(w_err(&file))?;
        sections.push(SectionInfo {
            name: name.to_owned(),
            file,
            ciphertext_size,
            ciphertext_sha256,
            plaintext_size,
            plaintext_sha256,
        });
    }
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        format_version: format!("{FORMAT_MAJOR}.{FORMAT_MINOR}"),
        rid: content.rid.clone(),
        packet_type: content.packet_type,
        center_id: content.meta.center_id.clone(),
        machine_id: content.meta.machine_id.clone(),
        created_at: content.created_at,
        id_schema_version: content.id_schema_version.clone(),
        machine_key_id: key_id(&machine_key.verifying_key()),
        recipients: recipients.iter().map(ToString::to_string).collect(),
        sections,
    };
    let manifest_bytes = manifest.to_bytes()?;
    let sig = MachineSignature::sign(&manifest_digest(&manifest_bytes), machine_key);
    let sig_bytes = serde_json::to_vec(&sig).map_err(|e| PacketError::InvalidInput {
        reason: format!("signature does not serialise: {e}"),
    })?;
    let mut tar = ustar::Writer::new(&mut out, mtime);
    tar.append("manifest.json", &manifest_bytes)
        .map_err(w_err("manifest.json"))?;
    tar.append("manifest.sig", &sig_bytes)
        .map_err(w_err("manifest.sig"))?;
    if let Some(sign) = sign {
        // The entry exactly as append_signoff would add it (stamped with the sign-off's time).
        let digest = manifest_digest(&manifest_bytes);
        let signoff = sign(&digest)?;
        signoff.verify(&digest)?;
        let bytes = serde_json::to_vec(&signoff).map_err(|e| PacketError::InvalidInput {
            reason: format!("sign-off does not serialise: {e}"),
        })?;
        ustar::Writer::new(&mut out, signoff.at.timestamp())
            .append("signoff-1.json", &bytes)
            .map_err(w_err("sign-off"))?;
    }
    ustar::Writer::new(&mut out, mtime)
        .finish()
        .map_err(w_err("end of archive"))?;
    out.flush().map_err(w_err("packet"))?;
    tracing::debug!(
        bytes = out.stream_position().unwrap_or(start) - start,
        "packet sealed"
    );
    Ok(manifest)
}

/// Seals `content` into the file `path` atomically: written to a temporary file in the same folder,
/// fsynced, then renamed, so a crash leaves either the whole packet or nothing.
pub fn seal_to_file(
    content: &PacketContent,
    recipients: &[age::x25519::Recipient],
    machine_key: &SigningKey,
    path: &Path,
) -> Result<Manifest, PacketError> {
    atomic_write(path, |f| {
        seal(
            content,
            recipients,
            machine_key,
            io::BufWriter::with_capacity(256 << 10, f),
        )
    })
}

/// [`seal_to_file`] with the first sign-off (the officer's) in the same write: `sign` gets the manifest
/// digest and returns the sign-off. The file has the layout [`seal_to_file`] followed by
/// [`append_signoff`] writes (same entries, same order), without reading and copying the whole packet a
/// second time. Atomic like
/// [`seal_to_file`]: a failing `sign` or write leaves no file.
pub fn seal_signed_to_file(
    content: &PacketContent,
    recipients: &[age::x25519::Recipient],
    machine_key: &SigningKey,
    path: &Path,
    sign: SignFirst<'_>,
) -> Result<Manifest, PacketError> {
    atomic_write(path, |f| {
        seal_inner(
            content,
            recipients,
            machine_key,
            io::BufWriter::with_capacity(256 << 10, f),
            Some(sign),
        )
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

fn atomic_write<T>(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<T, PacketError>,
) -> Result<T, PacketError> {
    let tmp = tmp_path(path);
    let ctx = |what: &str| format!("{what} {}", tmp.display());
    let mut f = File::create(&tmp).map_err(PacketError::io(ctx("creating")))?;
    let result = write(&mut f).and_then(|v| {
        f.sync_all().map_err(PacketError::io(ctx("syncing")))?;
        Ok(v)
    });
    drop(f);
    match result {
        Ok(v) => {
            fs::rename(&tmp, path).map_err(PacketError::io(format!("renaming into {}", path.display())))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(PacketError::io("syncing the folder"))?;
            }
            Ok(v)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Where an entry lies in the container.
#[derive(Debug, Clone, Copy)]
struct Span {
    data: u64,
    size: u64,
}

/// A sealed packet read from a file or buffer. Reading needs no keys; [`SealedPacket::verify`] needs the
/// machine's public key and [`SealedPacket::open`] the server's packet identity.
#[derive(Debug)]
pub struct SealedPacket<R> {
    reader: R,
    limits: Limits,
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    signature: MachineSignature,
    signoffs: Vec<SignOff>,
    sections: Vec<Span>,
    /// Offset of the end-of-archive marker (where a new sign-off goes).
    end: u64,
}

/// Reads exactly `buf.len()` bytes at the reader's position, mapping EOF to `Truncated`.
fn read_at<R: Read>(r: &mut R, buf: &mut [u8], part: &str, offset: u64, len: u64) -> Result<(), PacketError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            PacketError::Truncated {
                part: part.to_owned(),
                offset,
                len,
            }
        } else {
            PacketError::Io {
                context: format!("reading {part}"),
                source: e,
            }
        }
    })
}

impl<R: Read + Seek> SealedPacket<R> {
    /// Parses the container with the default [`Limits`].
    pub fn read(reader: R) -> Result<Self, PacketError> {
        Self::read_with_limits(reader, Limits::default())
    }

    /// Parses the container: every header, the manifest, the machine signature and the sign-offs. Section
    /// bytes are not read yet.
    #[instrument(skip_all)]
    pub fn read_with_limits(mut reader: R, limits: Limits) -> Result<Self, PacketError> {
        let r_err = |what: &str| {
            let what = what.to_owned();
            move |source| PacketError::Io {
                context: format!("reading {what}"),
                source,
            }
        };
        let len = reader.seek(SeekFrom::End(0)).map_err(r_err("packet length"))?;
        if len > limits.max_packet {
            return Err(PacketError::TooLarge {
                part: "packet".into(),
                size: len,
                limit: limits.max_packet,
            });
        }
        reader.seek(SeekFrom::Start(0)).map_err(r_err("packet"))?;
        let mut pos = 0u64;
        let mut sections = Vec::with_capacity(3);
        let mut manifest_bytes: Option<Vec<u8>> = None;
        let mut sig_bytes: Option<Vec<u8>> = None;
        let mut signoff_raw: Vec<Vec<u8>> = Vec::new();
        let mut index = 0usize;
        loop {
            let mut h = [0u8; 512];
            read_at(&mut reader, &mut h, "entry header", pos, len)?;
            if ustar::is_zero_block(&h) {
                let end = pos;
                let mut second = [0u8; 512];
                read_at(&mut reader, &mut second, "end-of-archive marker", pos + 512, len)?;
                if !ustar::is_zero_block(&second) {
                    return Err(PacketError::NonZeroPadding {
                        offset: pos + 512,
                        part: "the end-of-archive marker",
                    });
                }
                // Only zero blocks may follow (tar tools pad archives to whole records).
                let mut tail_pos = pos + 1024;
                let mut buf = [0u8; 4096];
                loop {
                    let n = reader.read(&mut buf).map_err(r_err("end of packet"))?;
                    if n == 0 {
                        break;
                    }
                    if let Some(i) = buf.iter().take(n).position(|b| *b != 0) {
                        return Err(PacketError::NonZeroPadding {
                            offset: tail_pos + i as u64,
                            part: "the space after the end-of-archive marker",
                        });
                    }
                    tail_pos += n as u64;
                }
                if manifest_bytes.is_none() || sig_bytes.is_none() {
                    return Err(PacketError::UnexpectedEntry {
                        offset: pos,
                        expected: expected_name(index),
                        found: "the end of the archive".into(),
                    });
                }
                let manifest_bytes = manifest_bytes.unwrap_or_default();
                let manifest = Manifest::parse(&manifest_bytes)?;
                let signature: MachineSignature = serde_json::from_slice(&sig_bytes.unwrap_or_default())
                    .map_err(|e| PacketError::BadSignature {
                        what: format!("manifest.sig is malformed: {e}"),
                    })?;
                let signoffs = signoff_raw
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        serde_json::from_slice::<SignOff>(b).map_err(|e| PacketError::Manifest {
                            reason: format!("signoff-{}.json is malformed: {e}", i + 1),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let packet = Self {
                    reader,
                    limits,
                    manifest,
                    manifest_bytes,
                    signature,
                    signoffs,
                    sections,
                    end,
                };
                packet.check_consistency()?;
                return Ok(packet);
            }
            let header =
                ustar::decode_header(&h).map_err(|ustar::HeaderError::Field { field, reason }| {
                    PacketError::BadHeader {
                        offset: pos,
                        field,
                        reason,
                    }
                })?;
            let expected = expected_name(index);
            let name_ok = match index {
                0..=4 => header.name == expected,
                _ => header.name == format!("signoff-{}.json", index - 4),
            };
            if !name_ok {
                return Err(PacketError::UnexpectedEntry {
                    offset: pos,
                    expected,
                    found: header.name,
                });
            }
            let data = pos + 512;
            let padded = header.size.saturating_add(ustar::padding(header.size));
            if data.saturating_add(padded) > len {
                return Err(PacketError::Truncated {
                    part: header.name,
                    offset: data,
                    len,
                });
            }
            let small = |limit: u64| -> Result<Vec<u8>, PacketError> {
                if header.size > limit {
                    return Err(PacketError::TooLarge {
                        part: header.name.clone(),
                        size: header.size,
                        limit,
                    });
                }
                Ok(vec![0u8; usize::try_from(header.size).unwrap_or(0)])
            };
            match index {
                0..=2 => {
                    sections.push(Span {
                        data,
                        size: header.size,
                    });
                    reader
                        .seek(SeekFrom::Start(data + header.size))
                        .map_err(r_err(&header.name))?;
                }
                3 | 4 => {
                    let mut buf = small(if index == 3 {
                        limits.max_manifest
                    } else {
                        limits.max_signoff
                    })?;
                    read_at(&mut reader, &mut buf, &header.name, data, len)?;
                    if index == 3 {
                        manifest_bytes = Some(buf);
                    } else {
                        sig_bytes = Some(buf);
                    }
                }
                _ => {
                    if signoff_raw.len() >= limits.max_signoffs {
                        return Err(PacketError::TooLarge {
                            part: "sign-off count".into(),
                            size: signoff_raw.len() as u64 + 1,
                            limit: limits.max_signoffs as u64,
                        });
                    }
                    let mut buf = small(limits.max_signoff)?;
                    read_at(&mut reader, &mut buf, &header.name, data, len)?;
                    signoff_raw.push(buf);
                }
            }
            let pad = usize::try_from(ustar::padding(header.size)).unwrap_or(0);
            let mut zeros = [0u8; 512];
            let pad_buf = zeros.get_mut(..pad).unwrap_or_default();
            read_at(&mut reader, pad_buf, "entry padding", data + header.size, len)?;
            if pad_buf.iter().any(|b| *b != 0) {
                return Err(PacketError::NonZeroPadding {
                    offset: data + header.size,
                    part: "entry padding",
                });
            }
            pos = data + padded;
            index += 1;
        }
    }

    fn check_consistency(&self) -> Result<(), PacketError> {
        let names: Vec<&str> = self.manifest.sections.iter().map(|s| s.name.as_str()).collect();
        if names != SECTIONS {
            return Err(PacketError::Manifest {
                reason: format!("sections are {names:?}, expected {SECTIONS:?} in that order"),
            });
        }
        for (info, span) in self.manifest.sections.iter().zip(&self.sections) {
            if info.file != format!("{}.age", info.name) {
                return Err(PacketError::Inconsistent {
                    section: info.name.clone(),
                    field: "file",
                    manifest: info.file.clone(),
                    container: format!("{}.age", info.name),
                });
            }
            if info.ciphertext_size != span.size {
                return Err(PacketError::Inconsistent {
                    section: info.name.clone(),
                    field: "ciphertextSize",
                    manifest: info.ciphertext_size.to_string(),
                    container: span.size.to_string(),
                });
            }
        }
        if self.manifest.rid.center_id() != self.manifest.center_id
            || self.manifest.rid.machine_id() != self.manifest.machine_id
        {
            return Err(PacketError::Manifest {
                reason: "the RID's center and machine differ from the manifest's centerId and machineId"
                    .into(),
            });
        }
        Ok(())
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The exact `manifest.json` bytes.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// SHA-256 of the manifest: what the machine signature and every sign-off cover.
    pub fn manifest_digest(&self) -> [u8; 32] {
        manifest_digest(&self.manifest_bytes)
    }

    /// The machine signature as stored.
    pub fn machine_signature(&self) -> &MachineSignature {
        &self.signature
    }

    /// Sign-offs in the order they were appended.
    pub fn signoffs(&self) -> &[SignOff] {
        &self.signoffs
    }

    /// Verifies the machine signature, every section's ciphertext size and SHA-256, and every sign-off's
    /// signature. Does not decrypt.
    #[instrument(skip_all, fields(rid = %self.manifest.rid))]
    pub fn verify(&mut self, machine: &VerifyingKey) -> Result<(), PacketError> {
        let digest = self.manifest_digest();
        self.signature
            .verify(&digest, machine, &self.manifest.machine_id)?;
        for (info, span) in self.manifest.sections.iter().zip(&self.sections) {
            self.reader
                .seek(SeekFrom::Start(span.data))
                .map_err(PacketError::io(format!("seeking to section {}", info.name)))?;
            let mut h = HashReader::new((&mut self.reader).take(span.size));
            io::copy(&mut h, &mut io::sink())
                .map_err(PacketError::io(format!("reading section {}", info.name)))?;
            let (n, sha) = h.finish();
            if n != span.size {
                return Err(PacketError::Truncated {
                    part: info.file.clone(),
                    offset: span.data,
                    len: span.data + n,
                });
            }
            if sha != info.ciphertext_sha256 {
                return Err(PacketError::HashMismatch {
                    section: info.name.clone(),
                    which: HashKind::Ciphertext,
                });
            }
        }
        for s in &self.signoffs {
            s.verify(&digest)?;
        }
        Ok(())
    }

    /// Decrypts one section and hands its plaintext archive to `f`, checking both hashes against the
    /// manifest once `f` has read the archive to its end.
    fn with_section<T>(
        &mut self,
        index: usize,
        identity: &age::x25519::Identity,
        f: impl FnOnce(&mut dyn Read, &Limits) -> Result<T, PacketError>,
    ) -> Result<T, PacketError> {
        let (Some(info), Some(span)) = (
            self.manifest.sections.get(index).cloned(),
            self.sections.get(index).copied(),
        ) else {
            return Err(PacketError::Manifest {
                reason: format!("no section #{index}"),
            });
        };
        self.reader
            .seek(SeekFrom::Start(span.data))
            .map_err(PacketError::io(format!("seeking to section {}", info.name)))?;
        let recipients = self.manifest.recipients.join(", ");
        let decrypt_err = |reason: String| PacketError::Decrypt {
            section: info.name.clone(),
            reason,
            recipients: recipients.clone(),
        };
        let mut ct = HashReader::new(BufReader::with_capacity(
            64 << 10,
            (&mut self.reader).take(span.size),
        ));
        let value = {
            let decryptor = age::Decryptor::new(&mut ct).map_err(|e| decrypt_err(e.to_string()))?;
            let stream = decryptor
                .decrypt(std::iter::once(identity as &dyn age::Identity))
                .map_err(|e| decrypt_err(e.to_string()))?;
            let mut pt = HashReader::new(stream);
            let value = f(&mut pt, &self.limits)?;
            // Drain what the section reader left (it has already checked that it is zero).
            io::copy(&mut pt, &mut io::sink()).map_err(|e| decrypt_err(e.to_string()))?;
            let (pt_len, pt_sha) = pt.finish();
            if pt_len != info.plaintext_size || pt_sha != info.plaintext_sha256 {
                return Err(PacketError::HashMismatch {
                    section: info.name.clone(),
                    which: HashKind::Plaintext,
                });
            }
            value
        };
        io::copy(&mut ct, &mut io::sink())
            .map_err(PacketError::io(format!("reading section {}", info.name)))?;
        let (ct_len, ct_sha) = ct.finish();
        if ct_len != span.size || ct_sha != info.ciphertext_sha256 {
            return Err(PacketError::HashMismatch {
                section: info.name.clone(),
                which: HashKind::Ciphertext,
            });
        }
        Ok(value)
    }

    /// Decrypts every section into memory, checking ciphertext and plaintext hashes. Call
    /// [`SealedPacket::verify`] first to check the machine signature.
    #[instrument(skip_all, fields(rid = %self.manifest.rid))]
    pub fn open(&mut self, identity: &age::x25519::Identity) -> Result<PacketContent, PacketError> {
        let id = self.with_section(0, identity, |r, l| section::read_id(r, l))?;
        let evidence = self.with_section(1, identity, |r, l| section::read_docs("evidence", r, l))?;
        let optional = self.with_section(2, identity, |r, l| section::read_docs("optional", r, l))?;
        Ok(PacketContent {
            rid: self.manifest.rid.clone(),
            packet_type: self.manifest.packet_type,
            created_at: self.manifest.created_at,
            id_schema_version: self.manifest.id_schema_version.clone(),
            identity: id.identity,
            meta: id.meta,
            biometrics: id.biometrics,
            evidence,
            optional,
        })
    }

    /// Decrypts every section into `dir/<section>/...`, streaming each file (memory stays bounded by the
    /// copy buffer), then writes `dir/manifest.json`. `dir` must be empty or absent.
    #[instrument(skip_all, fields(rid = %self.manifest.rid))]
    pub fn open_to_dir(&mut self, identity: &age::x25519::Identity, dir: &Path) -> Result<(), PacketError> {
        fs::create_dir_all(dir).map_err(PacketError::io(format!("creating {}", dir.display())))?;
        let nonempty = fs::read_dir(dir)
            .map_err(PacketError::io(format!("listing {}", dir.display())))?
            .next()
            .is_some();
        if nonempty {
            return Err(PacketError::InvalidInput {
                reason: format!("{} is not empty", dir.display()),
            });
        }
        for (i, name) in SECTIONS.iter().enumerate() {
            let base = dir.join(name);
            self.with_section(i, identity, |r, limits| {
                section::read_entries(name, r, limits, &|n| section::allowed_name(name, n), &mut |e| {
                    // Names are validated by allowed_name: no "..", no absolute paths.
                    let path = base.join(&e.name);
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent)
                            .map_err(PacketError::io(format!("creating {}", parent.display())))?;
                    }
                    let mut f = File::create(&path)
                        .map_err(PacketError::io(format!("creating {}", path.display())))?;
                    io::copy(e.data, &mut f)
                        .map_err(PacketError::io(format!("writing {}", path.display())))?;
                    Ok(())
                })
            })?;
        }
        fs::write(dir.join("manifest.json"), &self.manifest_bytes)
            .map_err(PacketError::io("writing manifest.json"))?;
        Ok(())
    }

    /// Copies the raw age file of a section (`id`, `evidence` or `optional`) to `out`, for the reference
    /// `age` tool or for archiving.
    pub fn extract_section(&mut self, name: &str, out: &mut dyn Write) -> Result<u64, PacketError> {
        let i = SECTIONS
            .iter()
            .position(|s| *s == name)
            .ok_or_else(|| PacketError::InvalidInput {
                reason: format!("no section {name:?}; use id, evidence or optional"),
            })?;
        let span = self
            .sections
            .get(i)
            .copied()
            .ok_or_else(|| PacketError::Manifest {
                reason: "missing section".into(),
            })?;
        self.reader
            .seek(SeekFrom::Start(span.data))
            .map_err(PacketError::io("seeking"))?;
        io::copy(&mut (&mut self.reader).take(span.size), out)
            .map_err(PacketError::io(format!("copying section {name}")))
    }

    /// Consumes the packet, returning the reader.
    pub fn into_inner(self) -> R {
        self.reader
    }
}

fn expected_name(index: usize) -> String {
    match index {
        0..=2 => format!("{}.age", SECTIONS.get(index).copied().unwrap_or_default()),
        3 => "manifest.json".into(),
        4 => "manifest.sig".into(),
        n => format!("signoff-{}.json or the end of the archive", n - 4),
    }
}

/// Appends a sign-off to the packet file at `path` atomically (copy, append, fsync, rename), after checking
/// that the sign-off is over this packet's manifest.
pub fn append_signoff(path: &Path, signoff: &SignOff) -> Result<(), PacketError> {
    let src = File::open(path).map_err(PacketError::io(format!("opening {}", path.display())))?;
    let packet = SealedPacket::read(BufReader::new(src))?;
    signoff.verify(&packet.manifest_digest())?;
    let end = packet.end;
    let n = packet.signoffs.len() + 1;
    if n > packet.limits.max_signoffs {
        return Err(PacketError::TooLarge {
            part: "sign-off count".into(),
            size: n as u64,
            limit: packet.limits.max_signoffs as u64,
        });
    }
    let mtime = signoff.at.timestamp();
    let bytes = serde_json::to_vec(signoff).map_err(|e| PacketError::InvalidInput {
        reason: format!("sign-off does not serialise: {e}"),
    })?;
    let mut src = packet.into_inner().into_inner();
    atomic_write(path, |f| {
        src.seek(SeekFrom::Start(0)).map_err(PacketError::io("seeking"))?;
        let copied = io::copy(&mut (&mut src).take(end), f).map_err(PacketError::io("copying the packet"))?;
        if copied != end {
            return Err(PacketError::Truncated {
                part: "packet".into(),
                offset: copied,
                len: end,
            });
        }
        let mut tar = ustar::Writer::new(io::BufWriter::new(f), mtime);
        tar.append(&format!("signoff-{n}.json"), &bytes)
            .map_err(w_err("sign-off"))?;
        tar.finish()
            .map_err(w_err("end of archive"))?
            .flush()
            .map_err(w_err("sign-off"))
    })
}

/// Opens the packet file at `path` for reading.
pub fn read_file(path: &Path) -> Result<SealedPacket<BufReader<File>>, PacketError> {
    let f = File::open(path).map_err(PacketError::io(format!("opening {}", path.display())))?;
    SealedPacket::read(BufReader::with_capacity(64 << 10, f))
}
