//! The sealed Tessera registration packet.
//!
//! A packet carries one resident's registration from a field station to the server. It is confidential to
//! the server (each section is an `age` file encrypted to the server's X25519 packet keys), tamper-evident
//! (a manifest with the SHA-256 of every section, signed with the station's Ed25519 machine key) and
//! attributable (officer and supervisor sign-offs over the manifest digest). See `docs/packet-format.md`.
//!
//! Modules:
//! - [`ids`]: RID, UIN, VID, center, machine and pre-registration ids, validated on parse.
//! - [`types`]: the plaintext content model ([`types::PacketContent`]).
//! - [`clock`]: the injectable clock every domain crate uses.
#![deny(missing_docs)]

pub mod clock;
pub mod ids;
pub mod types;
