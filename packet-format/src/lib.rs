//! The sealed Tessera registration packet.
//!
//! A packet carries one resident's registration from a field station to the server. It is one file, a POSIX
//! ustar archive, holding three sections (`id`, `evidence`, `optional`), each a standard `age` file encrypted
//! to the server's X25519 packet keys; a manifest (no personal data) with the size and SHA-256 of every
//! section, signed with the station's Ed25519 machine key; and officer and supervisor sign-offs over the
//! manifest digest. `docs/packet-format.md` specifies it for other implementations.
//!
//! ```
//! # fn main() -> Result<(), tessera_packet::PacketError> {
//! use std::io::Cursor;
//! use tessera_packet::{keys, sample, seal, SealedPacket};
//!
//! let machine = keys::generate_signing_key()?;
//! let server = keys::generate_packet_identity();
//! let content = sample::sample_content(1, sample::SampleSize::Small);
//!
//! let mut file = Cursor::new(Vec::new());
//! seal(&content, &[server.to_public()], &machine, &mut file)?;
//!
//! let mut packet = SealedPacket::read(file)?;
//! packet.verify(&machine.verifying_key())?;
//! let opened = packet.open(&server)?;
//! assert_eq!(opened, content);
//! # Ok(()) }
//! ```
//!
//! Modules:
//! - [`ids`]: RID, UIN, VID, center, machine and pre-registration ids, validated on parse.
//! - [`types`]: the plaintext content model ([`PacketContent`]).
//! - [`manifest`]: the manifest, machine signature and sign-offs.
//! - [`keys`]: key generation and key files.
//! - [`clock`]: the injectable clock every domain crate uses.
//! - [`sample`]: synthetic sample content for demos, tests and benchmarks (no real person).
#![deny(missing_docs)]

pub mod clock;
mod container;
mod error;
pub mod ids;
pub mod keys;
pub mod manifest;
pub mod sample;
mod section;
pub mod types;
mod ustar;
pub mod wire;

pub use container::{
    SealedPacket, SignFirst, append_signoff, read_file, seal, seal_signed_to_file, seal_to_file,
};
pub use error::{HashKind, PacketError};
pub use manifest::{Decision, Manifest, SignOff, SignOffRole};
pub use section::Limits;
pub use types::PacketContent;
