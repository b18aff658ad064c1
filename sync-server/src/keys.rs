//! The server's keys, generated at run time on first start and kept in `<data_dir>/keys/` with mode 0600.
//!
//! | file | content | used for |
//! |---|---|---|
//! | `server-signing.key` | hex Ed25519 seed | receipts, signed sync responses |
//! | `packet-recipient-<n>.key` | age X25519 identity (`AGE-SECRET-KEY-1...`) | opening packets; the newest one's public half is synced to stations (`tessera-server packet-keys rotate` adds one) |
//! | `credential-issuer.key` | hex Ed25519 seed | credentials and QR records |
//! | `id-repo-master.key` | hex 256-bit key | wrapping per-identity data keys |
//! | `database.key` | hex 256-bit key | SQLCipher encryption of the embedded database |
//! | `../admin.token` | random token | admin API bearer token (unless `TESSERA_ADMIN_TOKEN` is set) |
//!
//! A key file readable by group or others is refused: fix it with `chmod 600`.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use age::secrecy::ExposeSecret as _;
use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use crate::settings::Secret;

/// Why keys could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file or folder could not be read or written.
    #[error("key store I/O on {path}: {source}; check that the data directory is writable by the server")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A key file's content is not a valid key.
    #[error(
        "key file {path} is corrupt ({what}); restore it from backup — a new key would orphan existing data"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: &'static str,
    },
    /// A key file is readable by other users.
    #[error(
        "key file {path} has mode {mode:o}; it must not be readable by group or others: run chmod 600 on it"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The system random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// Fills a buffer from the OS random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(b)
}

/// A random hex string of `N` bytes (ids, nonces, tokens).
pub fn random_hex<const N: usize>() -> Result<String, KeyError> {
    Ok(hex::encode(random_bytes::<N>()?))
}

/// The server's keys.
pub struct ServerKeys {
    /// Signs receipts and responses.
    pub signing: SigningKey,
    /// Packet-recipient identities, (key id, identity), newest first: the first is the one stations encrypt
    /// to, the others (kept after a rotation) only decrypt packets made before it. As loaded at start; the
    /// running server's current set is [`crate::Inner::packet_keys`].
    pub packet_identities: Vec<(String, age::x25519::Identity)>,
    /// Signs credentials.
    pub issuer: SigningKey,
    /// Wraps per-identity data keys (`keys/id-repo-master.key`, the first master key).
    pub master_key: Zeroizing<[u8; 32]>,
    /// Every ID-repository master key, oldest first (`id-repo-master.key`, then `id-repo-master-2.key`, ...);
    /// the last one wraps new records. See `tessera-server id-repo rotate-master-key`.
    pub master_keys: Vec<Zeroizing<[u8; 32]>>,
    /// Salt of the UIN lookup hash (`keys/uin-hash-salt.key`).
    pub uin_salt: Zeroizing<[u8; 32]>,
    /// Bearer token of the adjudication API (`adjudicator.token`): a separate role from the admin token.
    pub adjudicator_token: Secret,
    /// Encrypts the embedded database.
    pub database_key: Zeroizing<[u8; 32]>,
    /// The admin API token.
    pub admin_token: Secret,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeys")
            .field(
                "signing_public",
                &hex::encode(self.signing.verifying_key().as_bytes()),
            )
            .field(
                "packet_keys",
                &self
                    .packet_identities
                    .iter()
                    .map(|(id, _)| id)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn ensure_private_dir(dir: &Path) -> Result<(), KeyError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io(dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    Ok(())
}

/// Reads a private file, or creates it with `make()` (mode 0600, never overwriting) if absent.
fn load_or_create(path: &Path, make: impl FnOnce() -> Result<String, KeyError>) -> Result<String, KeyError> {
    match fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
            Ok(fs::read_to_string(path).map_err(io(path))?.trim().to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let value = make()?;
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(mut file) => {
                    file.write_all(value.as_bytes()).map_err(io(path))?;
                    file.write_all(b"\n").map_err(io(path))?;
                    file.sync_all().map_err(io(path))?;
                    Ok(value)
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Ok(fs::read_to_string(path).map_err(io(path))?.trim().to_owned())
                }
                Err(e) => Err(io(path)(e)),
            }
        }
        Err(e) => Err(io(path)(e)),
    }
}

fn hex32(path: &Path, text: &str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let bytes = Zeroizing::new(hex::decode(text).map_err(|_| KeyError::Corrupt {
        path: path.into(),
        what: "not hex",
    })?);
    let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Corrupt {
        path: path.into(),
        what: "not 32 bytes",
    })?;
    Ok(Zeroizing::new(arr))
}

fn key32(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let text = Zeroizing::new(load_or_create(path, || Ok(hex::encode(random_bytes::<32>()?)))?);
    hex32(path, &text)
}

/// Creates the next ID-repository master key file (`id-repo-master-<n>.key`) and returns its number. The
/// running servers pick it up on restart; `rotate-master-key` then re-wraps existing records.
pub fn create_next_master_key(data_dir: &Path) -> Result<u32, KeyError> {
    let dir = data_dir.join("keys");
    for n in 2u32.. {
        let path = dir.join(format!("id-repo-master-{n}.key"));
        if !path.exists() {
            key32(&path)?;
            return Ok(n);
        }
    }
    Ok(0)
}

/// Reads (or creates, when missing) an age X25519 identity file.
fn packet_identity(path: &Path) -> Result<age::x25519::Identity, KeyError> {
    let text = Zeroizing::new(load_or_create(path, || {
        Ok(age::x25519::Identity::generate()
            .to_string()
            .expose_secret()
            .to_owned())
    })?);
    age::x25519::Identity::from_str(&text).map_err(|_| KeyError::Corrupt {
        path: path.to_path_buf(),
        what: "not an age X25519 identity",
    })
}

/// The packet-recipient keys of a data directory (`keys/packet-recipient-1.key`, `-2`, ... up to the first
/// missing number), newest first, as (key id, identity).
pub fn load_packet_identities(data_dir: &Path) -> Result<Vec<(String, age::x25519::Identity)>, KeyError> {
    let dir = data_dir.join("keys");
    let mut out = Vec::new();
    for n in 1u32.. {
        let id = format!("packet-recipient-{n}");
        let path = dir.join(format!("{id}.key"));
        if !path.exists() {
            break;
        }
        out.push((id, packet_identity(&path)?));
    }
    out.reverse();
    Ok(out)
}

/// Creates the next packet-recipient key file (`keys/packet-recipient-<n>.key`, mode 0600) and returns its
/// key id. Existing keys are never touched.
pub fn create_next_packet_key(data_dir: &Path) -> Result<String, KeyError> {
    let dir = data_dir.join("keys");
    ensure_private_dir(&dir)?;
    let mut n = 1u32;
    while dir.join(format!("packet-recipient-{n}.key")).exists() {
        n += 1;
    }
    let id = format!("packet-recipient-{n}");
    packet_identity(&dir.join(format!("{id}.key")))?;
    Ok(id)
}

impl ServerKeys {
    /// Loads the keys from `<data_dir>/keys`, generating any that are missing.
    pub fn load_or_create(data_dir: &Path, admin_token: Option<&Secret>) -> Result<Self, KeyError> {
        ensure_private_dir(data_dir)?;
        let dir = data_dir.join("keys");
        ensure_private_dir(&dir)?;
        let signing = SigningKey::from_bytes(&*key32(&dir.join("server-signing.key"))?);
        let issuer = SigningKey::from_bytes(&*key32(&dir.join("credential-issuer.key"))?);
        let master_key = key32(&dir.join("id-repo-master.key"))?;
        let mut master_keys = vec![master_key.clone()];
        for n in 2.. {
            let path = dir.join(format!("id-repo-master-{n}.key"));
            if !path.exists() {
                break;
            }
            master_keys.push(key32(&path)?);
        }
        let uin_salt = key32(&dir.join("uin-hash-salt.key"))?;
        let adjudicator_token = Secret::new(load_or_create(
            &data_dir.join("adjudicator.token"),
            random_hex::<24>,
        )?);
        let database_key = key32(&dir.join("database.key"))?;
        packet_identity(&dir.join("packet-recipient-1.key"))?;
        let packet_identities = load_packet_identities(data_dir)?;
        let admin_token = match admin_token {
            Some(t) => t.clone(),
            None => Secret::new(load_or_create(&data_dir.join("admin.token"), random_hex::<24>)?),
        };
        Ok(Self {
            signing,
            packet_identities,
            issuer,
            master_key,
            master_keys,
            uin_salt,
            adjudicator_token,
            database_key,
            admin_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_creates_private_keys_and_second_start_reuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let a = ServerKeys::load_or_create(&data, None).unwrap();
        for f in [
            "server-signing.key",
            "credential-issuer.key",
            "id-repo-master.key",
            "database.key",
            "packet-recipient-1.key",
        ] {
            let mode = fs::metadata(data.join("keys").join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        assert_eq!(
            fs::metadata(data.join("keys")).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let b = ServerKeys::load_or_create(&data, None).unwrap();
        assert_eq!(a.signing.to_bytes(), b.signing.to_bytes());
        assert_eq!(*a.master_key, *b.master_key);
        assert_eq!(a.admin_token, b.admin_token);
        assert_ne!(a.signing.to_bytes(), a.issuer.to_bytes());
        assert_eq!(
            a.packet_identities[0].1.to_public().to_string(),
            b.packet_identities[0].1.to_public().to_string()
        );
    }

    #[test]
    fn packet_keys_rotate_newest_first_and_keep_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = ServerKeys::load_or_create(dir.path(), None).unwrap();
        assert_eq!(a.packet_identities.len(), 1);
        assert_eq!(create_next_packet_key(dir.path()).unwrap(), "packet-recipient-2");
        let b = ServerKeys::load_or_create(dir.path(), None).unwrap();
        let ids: Vec<&str> = b.packet_identities.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["packet-recipient-2", "packet-recipient-1"]);
        assert_eq!(
            b.packet_identities[1].1.to_public().to_string(),
            a.packet_identities[0].1.to_public().to_string(),
            "the old key is kept as it was"
        );
        let mode = fs::metadata(dir.path().join("keys/packet-recipient-2.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn world_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        ServerKeys::load_or_create(dir.path(), None).unwrap();
        let p = dir.path().join("keys/database.key");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let err = ServerKeys::load_or_create(dir.path(), None).unwrap_err();
        assert!(matches!(err, KeyError::Permissions { .. }), "{err}");
    }

    #[test]
    fn corrupt_key_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        ServerKeys::load_or_create(dir.path(), None).unwrap();
        fs::write(dir.path().join("keys/server-signing.key"), "zz").unwrap();
        let err = ServerKeys::load_or_create(dir.path(), None).unwrap_err();
        assert!(matches!(err, KeyError::Corrupt { .. }), "{err}");
    }
}
