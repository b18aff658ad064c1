//! Entry points for the fuzz target in `sync-server/fuzz` (not an API): the server's parsers of untrusted
//! bytes that are reachable without a network or a database. Each takes raw fuzzer bytes, splits them into
//! fields at `0xFF` bytes (never valid UTF-8, so fields can hold any text), and runs the same functions the
//! server runs on a request, an upload, an export or an opened packet. They must return, never panic.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use tessera_packet::PacketContent;
use tessera_packet::wire::{self, ExportManifest};

use crate::validate::Rules;

fn fields(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == 0xFF).collect()
}

fn field<'a>(f: &[&'a [u8]], i: usize) -> &'a [u8] {
    f.get(i).copied().unwrap_or_default()
}

fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    h
}

/// A fixed Ed25519 key (TEST-ONLY, not a secret) the signatures are checked against.
fn key() -> ed25519_dalek::VerifyingKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key()
}

/// Signed-request headers (machine, timestamp, nonce, signature), method, target and body: parsed as
/// [`crate::auth`] parses them, the signature checked.
pub fn signed_request(data: &[u8]) {
    let f = fields(data);
    let h = headers(&[
        (wire::headers::MACHINE, field(&f, 0)),
        (wire::headers::TIMESTAMP, field(&f, 1)),
        (wire::headers::NONCE, field(&f, 2)),
        (wire::headers::SIGNATURE, field(&f, 3)),
    ]);
    if let Ok(auth) = crate::auth::parse_auth(&h) {
        let method = String::from_utf8_lossy(field(&f, 4));
        let target = String::from_utf8_lossy(field(&f, 5));
        let _ = auth.verify(&key(), &method, &target, field(&f, 6));
    }
}

/// tus headers: `Upload-Offset`, `Upload-Length`, `Upload-Metadata`, `Upload-Checksum` (with a chunk), as
/// [`crate::upload`] reads them.
pub fn tus_headers(data: &[u8]) {
    let f = fields(data);
    let h = headers(&[
        (crate::upload::tus::UPLOAD_OFFSET, field(&f, 0)),
        (crate::upload::tus::UPLOAD_LENGTH, field(&f, 1)),
        (crate::upload::tus::UPLOAD_METADATA, field(&f, 2)),
        (crate::upload::tus::UPLOAD_CHECKSUM, field(&f, 3)),
    ]);
    let _ = crate::upload::header_u64(&h, crate::upload::tus::UPLOAD_OFFSET);
    let _ = crate::upload::header_u64(&h, crate::upload::tus::UPLOAD_LENGTH);
    if let Some(v) = h
        .get(crate::upload::tus::UPLOAD_METADATA)
        .and_then(|v| v.to_str().ok())
    {
        let _ = crate::upload::parse_metadata(v);
    }
    let digest: [u8; 32] =
        sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(field(&f, 4))).into();
    let _ = crate::upload::check_chunk_checksum(&h, &digest);
}

/// An export manifest and its `.sig` text from removable media, read as `tessera-server import` reads them
/// (JSON of [`ExportManifest`], the base64 signature, the entries' RIDs and digests).
pub fn export_manifest(data: &[u8]) {
    let f = fields(data);
    let bytes = field(&f, 0);
    let Ok(m) = serde_json::from_slice::<ExportManifest>(bytes) else {
        return;
    };
    let _ = m.machine_id.parse::<tessera_packet::ids::MachineId>();
    for e in &m.packets {
        let _ = e.rid.parse::<tessera_packet::ids::Rid>();
        let _ = hex::decode(&e.sha256);
    }
    let sig_text = String::from_utf8_lossy(field(&f, 1));
    if let Ok(sig) = wire::decode_fixed::<64>("export signature", sig_text.trim()) {
        let _ = key().verify_strict(bytes, &ed25519_dalek::Signature::from_bytes(&sig));
    }
}

/// Validation rules from an ID schema (version `1.0`) and master-data documents (name, JSON), as the server
/// builds them from its sync items; `None` when they do not load.
pub fn rules(id_schema: &str, master: &[(&str, &str)]) -> Option<Rules> {
    let schema: serde_json::Value = serde_json::from_str(id_schema).ok()?;
    let master = master
        .iter()
        .map(|(k, v)| Some(((*k).to_owned(), serde_json::from_str(v).ok()?)))
        .collect::<Option<_>>()?;
    Rules::from_items(&[("1.0".to_owned(), schema)], &master).ok()
}

/// A decrypted packet's content as JSON, checked against the ID schema and master data (the validation
/// stage: [`crate::validate::check_content`] and the device-signature checks).
pub fn packet_content(rules: &Rules, data: &[u8]) {
    if let Ok(content) = serde_json::from_slice::<PacketContent>(data) {
        check(rules, &content);
    }
}

/// `base` with its identity replaced by the JSON in `data`, validated as [`packet_content`] does: reaches the
/// per-field checks (types, lengths, regexes, lists, locations, dates) quickly.
pub fn identity(rules: &Rules, base: &PacketContent, data: &[u8]) {
    if let Ok(identity) = serde_json::from_slice::<serde_json::Value>(data) {
        let mut content = base.clone();
        content.identity = identity;
        check(rules, &content);
    }
}

fn check(rules: &Rules, content: &PacketContent) {
    let _ = crate::validate::check_content(rules, content);
    let _ = crate::device_check::check(
        &rules.devices,
        crate::device_check::DeviceSignatures::Require,
        content,
    );
}
