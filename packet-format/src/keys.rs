//! Key generation and key files.
//!
//! - Ed25519 signing keys (machine, operator, supervisor): `tessera-ed25519-secret-key <base64 seed>` and
//!   `tessera-ed25519-public-key <base64 key>`, one line each, `#` comment lines allowed.
//! - Server packet keys are plain `age` X25519 identities (`AGE-SECRET-KEY-1...`) and recipients
//!   (`age1...`), so the reference `age` tool reads the same files.
//!
//! A key id is the lowercase hex SHA-256 of the 32-byte Ed25519 public key.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::PacketError;

const SECRET_TAG: &str = "tessera-ed25519-secret-key";
const PUBLIC_TAG: &str = "tessera-ed25519-public-key";

/// A fresh Ed25519 signing key from the operating system's RNG.
pub fn generate_signing_key() -> Result<SigningKey, PacketError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| PacketError::Io {
        context: "reading the OS random number generator".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The key id of a public key: lowercase hex SHA-256 of its 32 bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A short, human-comparable fingerprint of a public key (first 16 hex digits of the key id in groups of 4),
/// shown to administrators when they approve a machine.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let id = key_id(key);
    let short = id.get(..16).unwrap_or(&id);
    short
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// Encodes a signing key in the key-file format.
pub fn encode_signing_key(key: &SigningKey) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# Tessera Ed25519 signing key. Keep it secret.\n# public key id: {}\n{SECRET_TAG} {}\n",
        key_id(&key.verifying_key()),
        STANDARD.encode(key.to_bytes())
    ))
}

/// Encodes a public key in the key-file format.
pub fn encode_verifying_key(key: &VerifyingKey) -> String {
    format!(
        "# key id: {}\n{PUBLIC_TAG} {}\n",
        key_id(key),
        STANDARD.encode(key.as_bytes())
    )
}

fn payload<'a>(text: &'a str, tag: &str, path: &str) -> Result<&'a str, PacketError> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines.next().ok_or_else(|| PacketError::KeyFile {
        path: path.into(),
        reason: format!("no key line; expected a line starting with {tag}"),
    })?;
    let rest = line
        .strip_prefix(tag)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| PacketError::KeyFile {
            path: path.into(),
            reason: format!("expected a line starting with {tag}"),
        })?;
    if lines.next().is_some() {
        return Err(PacketError::KeyFile {
            path: path.into(),
            reason: "more than one key line".into(),
        });
    }
    Ok(rest.trim())
}

fn decode32(b64: &str, path: &str) -> Result<Zeroizing<[u8; 32]>, PacketError> {
    let bytes = Zeroizing::new(STANDARD.decode(b64).map_err(|e| PacketError::KeyFile {
        path: path.into(),
        reason: format!("bad base64: {e}"),
    })?);
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(PacketError::KeyFile {
            path: path.into(),
            reason: format!("key is {} bytes, expected 32", bytes.len()),
        });
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// Parses a signing key from key-file text. `origin` names the source in errors.
pub fn parse_signing_key(text: &str, origin: &str) -> Result<SigningKey, PacketError> {
    let seed = decode32(payload(text, SECRET_TAG, origin)?, origin)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Parses a public key from key-file text. A secret key file is accepted too (its public half is used).
pub fn parse_verifying_key(text: &str, origin: &str) -> Result<VerifyingKey, PacketError> {
    if text.contains(SECRET_TAG) {
        return Ok(parse_signing_key(text, origin)?.verifying_key());
    }
    let bytes = decode32(payload(text, PUBLIC_TAG, origin)?, origin)?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| PacketError::KeyFile {
        path: origin.into(),
        reason: format!("not an Ed25519 public key: {e}"),
    })
}

fn read(path: &Path) -> Result<Zeroizing<String>, PacketError> {
    fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(PacketError::io(format!("reading key file {}", path.display())))
}

/// Writes `text` to `path` readable by the owner only (0600 on Unix), refusing to overwrite.
pub fn write_secret_file(path: &Path, text: &str) -> Result<(), PacketError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(PacketError::io(format!("creating {}", path.display())))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(PacketError::io(format!("writing {}", path.display())))
}

/// Reads a signing key file.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, PacketError> {
    parse_signing_key(&read(path)?, &path.display().to_string())
}

/// Reads a public key file (or the public half of a secret key file).
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, PacketError> {
    parse_verifying_key(&read(path)?, &path.display().to_string())
}

/// A fresh server packet key (age X25519 identity).
pub fn generate_packet_identity() -> age::x25519::Identity {
    age::x25519::Identity::generate()
}

/// An age identity file's text, as `age-keygen` writes it.
pub fn encode_packet_identity(identity: &age::x25519::Identity) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# Tessera server packet key (age X25519). Keep it secret.\n# public key: {}\n{}\n",
        identity.to_public(),
        identity.to_string().expose_secret()
    ))
}

/// Parses the identities in an age identity file (comment lines allowed).
pub fn parse_packet_identities(text: &str, origin: &str) -> Result<Vec<age::x25519::Identity>, PacketError> {
    let ids = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| {
            age::x25519::Identity::from_str(l).map_err(|e| PacketError::KeyFile {
                path: origin.into(),
                reason: format!(
                    "key line {} is not an age X25519 identity (AGE-SECRET-KEY-1...): {e}",
                    i + 1
                ),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Err(PacketError::KeyFile {
            path: origin.into(),
            reason: "no AGE-SECRET-KEY-1 line".into(),
        });
    }
    Ok(ids)
}

/// Reads an age identity file.
pub fn read_packet_identities(path: &Path) -> Result<Vec<age::x25519::Identity>, PacketError> {
    parse_packet_identities(&read(path)?, &path.display().to_string())
}

/// Parses age recipients (`age1...`), one per non-comment line.
pub fn parse_packet_recipients(text: &str, origin: &str) -> Result<Vec<age::x25519::Recipient>, PacketError> {
    let rs = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            age::x25519::Recipient::from_str(l).map_err(|e| PacketError::KeyFile {
                path: origin.into(),
                reason: format!("{l:?} is not an age X25519 recipient (age1...): {e}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if rs.is_empty() {
        return Err(PacketError::KeyFile {
            path: origin.into(),
            reason: "no age1... recipient line".into(),
        });
    }
    Ok(rs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_round_trips() {
        let k = generate_signing_key().unwrap();
        let text = encode_signing_key(&k);
        let back = parse_signing_key(&text, "mem").unwrap();
        assert_eq!(back.to_bytes(), k.to_bytes());
        let pubtext = encode_verifying_key(&k.verifying_key());
        assert_eq!(parse_verifying_key(&pubtext, "mem").unwrap(), k.verifying_key());
        assert_eq!(parse_verifying_key(&text, "mem").unwrap(), k.verifying_key());
    }

    #[test]
    fn key_file_errors_say_what_is_wrong() {
        let e = parse_signing_key("tessera-ed25519-public-key AAAA", "k.pub").unwrap_err();
        assert!(
            e.to_string()
                .contains("expected a line starting with tessera-ed25519-secret-key"),
            "{e}"
        );
        let e = parse_verifying_key("tessera-ed25519-public-key AAAA", "k.pub").unwrap_err();
        assert!(e.to_string().contains("3 bytes, expected 32"), "{e}");
        let e = parse_packet_identities("# only comments\n", "id.txt")
            .err()
            .unwrap();
        assert!(e.to_string().contains("no AGE-SECRET-KEY-1"), "{e}");
    }

    #[test]
    fn packet_identity_round_trips() {
        let id = generate_packet_identity();
        let text = encode_packet_identity(&id);
        let back = parse_packet_identities(&text, "mem").unwrap();
        assert_eq!(back[0].to_public().to_string(), id.to_public().to_string());
        let rs = parse_packet_recipients(&format!("# c\n{}\n", id.to_public()), "mem").unwrap();
        assert_eq!(rs.len(), 1);
    }

    #[test]
    fn fingerprint_is_grouped() {
        let k = generate_signing_key().unwrap();
        let f = fingerprint(&k.verifying_key());
        assert_eq!(f.len(), 19);
        assert_eq!(f.matches('-').count(), 3);
    }
}
