//! The one error type of this crate. Every variant says which part of the packet failed and, where the
//! reader can act on it, what to do. [`PacketError::kind`] gives a stable machine code (used, for example,
//! as the server's quarantine reason).

use std::io;

/// Which hash of a section failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// SHA-256 of the encrypted section bytes.
    Ciphertext,
    /// SHA-256 of the decrypted section bytes.
    Plaintext,
}

impl std::fmt::Display for HashKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ciphertext => "ciphertext",
            Self::Plaintext => "plaintext",
        })
    }
}

/// Everything that can go wrong sealing, reading, verifying or opening a packet.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    /// Reading or writing the underlying file failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file ends before a part that the container says is there.
    #[error("packet is truncated: {part} at byte {offset} runs past the end of the file ({len} bytes)")]
    Truncated {
        /// Which part.
        part: String,
        /// Where it starts.
        offset: u64,
        /// File length.
        len: u64,
    },
    /// A container (tar) header is malformed.
    #[error("packet container header at byte {offset} is malformed: field {field}: {reason}")]
    BadHeader {
        /// Header offset.
        offset: u64,
        /// Field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An entry is missing, out of order, or unknown.
    #[error("packet container: at byte {offset} expected {expected} but found {found}")]
    UnexpectedEntry {
        /// Where.
        offset: u64,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// Bytes that must be zero (padding, end-of-archive) are not.
    #[error("packet container: non-zero bytes at byte {offset} where {part} must be zero")]
    NonZeroPadding {
        /// Where.
        offset: u64,
        /// Which padding.
        part: &'static str,
    },
    /// A part is larger than the reader allows.
    #[error("{part} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Which part.
        part: String,
        /// Declared or actual size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The manifest is not valid JSON of the expected shape.
    #[error("manifest.json is malformed: {reason}")]
    Manifest {
        /// Parser message (with line and column).
        reason: String,
    },
    /// The packet was written by an incompatible format version.
    #[error(
        "packet format version {found} is not supported (this reader supports {supported}.x); upgrade Tessera to read it"
    )]
    UnsupportedVersion {
        /// Version found.
        found: String,
        /// Major version supported.
        supported: u32,
    },
    /// The manifest and the container disagree.
    #[error("section {section}: manifest says {field} is {manifest} but the container holds {container}")]
    Inconsistent {
        /// Section name.
        section: String,
        /// Which field.
        field: &'static str,
        /// Value in the manifest.
        manifest: String,
        /// Value in the container.
        container: String,
    },
    /// A section hash does not match the manifest: the section was modified or swapped.
    #[error("section {section}: {which} SHA-256 does not match the manifest (modified or swapped section)")]
    HashMismatch {
        /// Section name.
        section: String,
        /// Which hash.
        which: HashKind,
    },
    /// The packet was signed by another machine key than the one given.
    #[error(
        "packet is signed by machine key {found} but the key given is {expected}; check that you have the public key of machine {machine}"
    )]
    WrongMachineKey {
        /// Key id of the key given.
        expected: String,
        /// Key id named in the signature.
        found: String,
        /// Machine id from the manifest.
        machine: String,
    },
    /// A signature does not verify.
    #[error("{what} does not verify: the manifest or the signature was modified")]
    BadSignature {
        /// Which signature (`machine signature`, `sign-off 2 (supervisor)`).
        what: String,
    },
    /// The given identity cannot decrypt the section.
    #[error(
        "cannot decrypt section {section}: {reason}. The packet is encrypted to {recipients}; use the matching server identity file"
    )]
    Decrypt {
        /// Section name.
        section: String,
        /// age's reason.
        reason: String,
        /// The recipients listed in the manifest.
        recipients: String,
    },
    /// The decrypted content of a section is malformed.
    #[error("section {section}, entry {entry}: {reason}")]
    Content {
        /// Section name.
        section: String,
        /// Entry (file) inside the section.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The content given to `seal` is not valid.
    #[error("cannot seal: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
    },
    /// A key file is malformed.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// Path.
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

impl PacketError {
    /// A stable, machine-readable code for this error (e.g. `"hash_mismatch"`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Truncated { .. } => "truncated",
            Self::BadHeader { .. } => "bad_header",
            Self::UnexpectedEntry { .. } => "unexpected_entry",
            Self::NonZeroPadding { .. } => "non_zero_padding",
            Self::TooLarge { .. } => "too_large",
            Self::Manifest { .. } => "malformed_manifest",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::Inconsistent { .. } => "inconsistent",
            Self::HashMismatch { .. } => "hash_mismatch",
            Self::WrongMachineKey { .. } => "wrong_machine_key",
            Self::BadSignature { .. } => "bad_signature",
            Self::Decrypt { .. } => "decrypt_failed",
            Self::Content { .. } => "malformed_content",
            Self::InvalidInput { .. } => "invalid_input",
            Self::KeyFile { .. } => "key_file",
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
