//! Integration tests of the sealed packet: round trips, tampering, interop with the `age` tool, committed
//! test vectors and the command-line tool.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

mod cli;
mod interop;
mod roundtrip;
mod tamper;
mod vectors;

use std::io::Cursor;

use ed25519_dalek::SigningKey;
use tessera_packet::sample::{SampleSize, sample_content};
use tessera_packet::{Decision, PacketContent, SealedPacket, SignOff, SignOffRole, keys, seal};

/// Keys for one test.
#[allow(missing_debug_implementations)]
pub struct Keys {
    pub machine: SigningKey,
    pub officer: SigningKey,
    pub server: age::x25519::Identity,
}

impl Default for Keys {
    fn default() -> Self {
        Self {
            machine: keys::generate_signing_key().unwrap(),
            officer: keys::generate_signing_key().unwrap(),
            server: keys::generate_packet_identity(),
        }
    }
}

/// Seals `content` into memory.
pub fn seal_bytes(content: &PacketContent, k: &Keys) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    seal(content, &[k.server.to_public()], &k.machine, &mut out).unwrap();
    out.into_inner()
}

/// Seals the small sample and appends an officer sign-off (through a temporary file).
pub fn small_signed_packet(k: &Keys) -> (PacketContent, Vec<u8>) {
    let content = sample_content(3, SampleSize::Small);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.tpkt");
    std::fs::write(&path, seal_bytes(&content, k)).unwrap();
    let digest = tessera_packet::read_file(&path).unwrap().manifest_digest();
    let s = SignOff::create(
        SignOffRole::Officer,
        "officer01",
        Decision::Approved,
        content.created_at,
        &digest,
        &k.officer,
    )
    .unwrap();
    tessera_packet::append_signoff(&path, &s).unwrap();
    (content, std::fs::read(&path).unwrap())
}

/// Reads, verifies and opens packet bytes; the first error wins.
pub fn check(bytes: &[u8], k: &Keys) -> Result<PacketContent, tessera_packet::PacketError> {
    let mut p = SealedPacket::read(Cursor::new(bytes))?;
    p.verify(&k.machine.verifying_key())?;
    p.open(&k.server)
}

/// Whether tests that need outside tools must run rather than skip.
pub fn require_all() -> bool {
    std::env::var_os("TESSERA_TEST_REQUIRE_ALL").is_some_and(|v| v == "1")
}
