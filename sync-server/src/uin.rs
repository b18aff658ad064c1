//! The UIN pool: 10-digit random UINs with a Verhoeff check digit, filtered as MOSIP's kernel does, generated
//! ahead of time into the database ([`top_up`]) and handed out by [`allocate`].
//!
//! No UIN is stored in clear. A pool entry is the UIN's salted lookup hash (the same as the ID repository's,
//! [`crate::idrepo::uin_hash`]) and the UIN sealed with a key derived from that salt ([`UinCipher`]): the
//! sealed form protects the UIN exactly as much as the hash beside it does (whoever holds the salt can
//! recover a UIN from its hash by trying the 10^9 candidates). Free entries are taken in the order of their
//! hash, which is random without the salt. Allocation moves entries from the free table to the assigned
//! table keyed by RID (one UIN per RID, idempotent; the hash is unique there, so no UIN ever goes to two
//! RIDs), in batches and with no cryptography inside the database transaction; [`allocate`] opens the
//! sealed UINs afterwards. Filling skips UINs whose hash is already assigned (reuse prevented by the hash).
//!
//! Filters (on all 10 digits, MOSIP defaults):
//! - does not start with 0 or 1;
//! - no ascending or descending run of 3 digits (`123`, `987`; `sequence-limit=3`);
//! - no digit repeated within 2 positions (`44`, `434`; `repeating-limit=2`);
//! - no block of 2 or more digits that occurs twice (`4848`, `12..12`; `repeating-block-limit=2`);
//! - no 3 even digits in a row (`conjugative-even-digits-limit=3`);
//! - the first 5 digits are neither the last 5 (`digits-limit=5`) nor their reverse (`reverse-digits-limit=5`);
//! - none of the restricted numbers (`786`, `666` by default) occurs in it.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use sha2::{Digest as _, Sha256};
use tessera_packet::ids::{Rid, Uin};
use zeroize::Zeroizing;

use crate::keys::{KeyError, random_bytes};
use crate::store::{PoolUin, Store, StoreError};

/// Restricted numbers MOSIP ships by default.
pub const DEFAULT_RESTRICTED: &[&str] = &["786", "666"];

/// Whether a 10-digit UIN (digits as numbers 0-9) passes every filter except the restricted list.
pub fn passes_structural_filters(d: &[u8; 10]) -> bool {
    if !passes_local_filters(d) {
        return false;
    }
    let (first, last) = d.split_at(5);
    !(first == last || first.iter().eq(last.iter().rev()))
}

/// The filters that look only at neighbouring digits and repeated pairs: if a prefix fails them, so does every
/// number that starts with it (the generator checks the 9-digit body before computing the check digit).
pub fn passes_local_filters(d: &[u8]) -> bool {
    if d.first().is_none_or(|&x| x < 2) {
        return false;
    }
    if d.len() == 2 && d.first() == d.last() {
        return false;
    }
    for w in d.windows(3) {
        let &[a, b, c] = w else { return false };
        let asc = b == a.wrapping_add(1) && c == b.wrapping_add(1);
        let desc = a == b.wrapping_add(1) && b == c.wrapping_add(1);
        let evens = a % 2 == 0 && b % 2 == 0 && c % 2 == 0;
        if asc || desc || evens || a == c || a == b || b == c {
            return false;
        }
    }
    // A repeated block of length >= 2 implies a repeated block of length exactly 2.
    let mut seen = 0u128;
    for w in d.windows(2) {
        let &[a, b] = w else { return false };
        let bit = 1u128 << (u32::from(a % 10) * 10 + u32::from(b % 10));
        if seen & bit != 0 {
            return false;
        }
        seen |= bit;
    }
    true
}

/// Whether `uin` contains any restricted number.
pub fn contains_restricted(uin: &str, restricted: &[&str]) -> bool {
    restricted.iter().any(|r| !r.is_empty() && uin.contains(r))
}

/// Generates filtered random UINs from the operating system's random source (buffered).
#[derive(Debug)]
pub struct UinGenerator {
    buf: [u8; 4096],
    pos: usize,
    restricted: Vec<String>,
}

impl UinGenerator {
    /// A generator with the default restricted numbers.
    pub fn new() -> Result<Self, KeyError> {
        Self::with_restricted(DEFAULT_RESTRICTED.iter().map(|s| (*s).to_owned()).collect())
    }

    /// A generator with a custom restricted-number list.
    pub fn with_restricted(restricted: Vec<String>) -> Result<Self, KeyError> {
        Ok(Self {
            buf: random_bytes::<4096>()?,
            pos: 0,
            restricted,
        })
    }

    fn next_u32(&mut self) -> Result<u32, KeyError> {
        if self.pos + 4 > self.buf.len() {
            self.buf = random_bytes::<4096>()?;
            self.pos = 0;
        }
        let mut w = [0u8; 4];
        w.copy_from_slice(self.buf.get(self.pos..self.pos + 4).unwrap_or(&[0; 4]));
        self.pos += 4;
        Ok(u32::from_le_bytes(w))
    }

    /// The next UIN that passes every filter.
    pub fn next_uin(&mut self) -> Result<Uin, KeyError> {
        loop {
            // 9-digit body starting 2..9: 800,000,000 values; rejection sampling keeps it uniform.
            let r = self.next_u32()?;
            if r >= 4_000_000_000 {
                continue;
            }
            let body = 200_000_000 + r % 800_000_000;
            let mut d = [0u8; 10];
            let mut rest = body;
            for slot in d.iter_mut().take(9).rev() {
                *slot = u8::try_from(rest % 10).unwrap_or(0);
                rest /= 10;
            }
            // Cheap filters on the body first: most candidates fail here, before any allocation.
            if !passes_local_filters(d.get(..9).unwrap_or_default()) {
                continue;
            }
            let Ok(uin) = Uin::from_body(&body.to_string()) else {
                continue;
            };
            if let (Some(slot), Some(check)) = (d.get_mut(9), uin.as_str().bytes().last()) {
                *slot = check.wrapping_sub(b'0');
            }
            if passes_structural_filters(&d)
                && !self
                    .restricted
                    .iter()
                    .any(|r| !r.is_empty() && uin.as_str().contains(r.as_str()))
            {
                return Ok(uin);
            }
        }
    }

    /// `n` UINs (possibly with duplicates; the pool ignores those).
    pub fn generate(&mut self, n: usize) -> Result<Vec<Uin>, KeyError> {
        (0..n).map(|_| self.next_uin()).collect()
    }
}

/// Seals UINs for the pool and opens them again. Built from the UIN hash salt (`keys/uin-hash-salt.key`):
/// the lookup hash is [`crate::idrepo::uin_hash`], the sealing key a domain-separated SHA-256 of the salt.
///
/// Sealed layout (frozen once shipped): nonce (24) ‖ XChaCha20-Poly1305 ciphertext of the UIN's ASCII digits,
/// with associated data `"TESSERA-UIN-V1\n" ‖ hash`, so a sealed UIN moved to another hash does not open.
pub struct UinCipher {
    salt: Zeroizing<[u8; 32]>,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for UinCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UinCipher").finish_non_exhaustive()
    }
}

fn seal_aad(uin_hash: &str) -> Vec<u8> {
    format!("TESSERA-UIN-V1\n{uin_hash}").into_bytes()
}

impl UinCipher {
    /// The cipher of a data directory's UIN hash salt.
    pub fn new(salt: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"TESSERA-UIN-SEAL-KEY-V1\n");
        h.update(salt);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&h.finalize());
        Self {
            salt: Zeroizing::new(*salt),
            key,
        }
    }

    /// The salted lookup hash of `uin` (hex), as the ID repository stores it.
    pub fn hash(&self, uin: &str) -> String {
        crate::idrepo::uin_hash(&self.salt, uin)
    }

    /// A pool entry for `uin`: its hash and the sealed UIN.
    pub fn seal(&self, uin: &str) -> Result<PoolUin, KeyError> {
        let uin_hash = self.hash(uin);
        let nonce = random_bytes::<24>()?;
        let ct = XChaCha20Poly1305::new((&*self.key).into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: uin.as_bytes(),
                    aad: &seal_aad(&uin_hash),
                },
            )
            .map_err(|_| KeyError::Random("the UIN cipher refused its input".into()))?;
        let mut sealed = Vec::with_capacity(24 + ct.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ct);
        Ok(PoolUin { uin_hash, sealed })
    }

    /// Opens a pool entry: the UIN, checked against its hash.
    pub fn open(&self, entry: &PoolUin) -> Result<String, StoreError> {
        let corrupt = |detail: &str| StoreError::Corrupt {
            what: "sealed UIN",
            detail: format!(
                "{detail} (entry {}…)",
                entry.uin_hash.get(..12).unwrap_or_default()
            ),
        };
        let (Some(nonce), Some(ct)) = (entry.sealed.get(..24), entry.sealed.get(24..)) else {
            return Err(corrupt("too short"));
        };
        let plain = XChaCha20Poly1305::new((&*self.key).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &seal_aad(&entry.uin_hash),
                },
            )
            .map_err(|_| corrupt("does not decrypt with this data directory's UIN salt"))?;
        let uin = String::from_utf8(plain).map_err(|_| corrupt("not text"))?;
        if self.hash(&uin) != entry.uin_hash {
            return Err(corrupt("does not match its hash"));
        }
        Ok(uin)
    }
}

impl UinCipher {
    /// Seals other data that holds a UIN (a credential, an adjudication case's candidates) with the same key,
    /// bound by its associated data `"TESSERA-SEALED-V1\n" ‖ context` (e.g. `credential\n<rid>`), so sealed
    /// data moved to another row or purpose does not open. Layout: nonce (24) ‖ ciphertext.
    pub fn seal_data(&self, context: &str, data: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce = random_bytes::<24>().map_err(|e| StoreError::Task(e.to_string()))?;
        let ct = XChaCha20Poly1305::new((&*self.key).into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: data,
                    aad: &data_aad(context),
                },
            )
            .map_err(|_| StoreError::Task("the UIN cipher refused its input".into()))?;
        let mut sealed = Vec::with_capacity(24 + ct.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ct);
        Ok(sealed)
    }

    /// Opens what [`UinCipher::seal_data`] sealed for `context`.
    pub fn open_data(&self, what: &'static str, context: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let corrupt = |detail: &str| StoreError::Corrupt {
            what,
            detail: detail.to_owned(),
        };
        let (Some(nonce), Some(ct)) = (sealed.get(..24), sealed.get(24..)) else {
            return Err(corrupt("too short"));
        };
        XChaCha20Poly1305::new((&*self.key).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &data_aad(context),
                },
            )
            .map_err(|_| corrupt("does not decrypt with this data directory's UIN salt"))
    }

    /// A UIN's pool form as a store error on failure (for the stores, which seal UINs they are given).
    pub fn seal_uin(&self, uin: &str) -> Result<PoolUin, StoreError> {
        self.seal(uin).map_err(|e| StoreError::Task(e.to_string()))
    }
}

fn data_aad(context: &str) -> Vec<u8> {
    format!("TESSERA-SEALED-V1\n{context}").into_bytes()
}

/// Why the pool could not be filled.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Randomness failed.
    #[error(transparent)]
    Random(#[from] KeyError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Generates `n` filtered UINs and seals them as pool entries.
pub fn sealed_batch(
    generator: &mut UinGenerator,
    cipher: &UinCipher,
    n: usize,
) -> Result<Vec<PoolUin>, KeyError> {
    let mut rows = Vec::with_capacity(n);
    for u in generator.generate(n)? {
        rows.push(cipher.seal(u.as_str())?);
    }
    Ok(rows)
}

/// Tops the pool up to `target` free UINs when fewer than `low_water` are free; returns how many were added.
pub async fn top_up(
    store: &dyn Store,
    cipher: &UinCipher,
    target: u64,
    low_water: u64,
) -> Result<u64, PoolError> {
    let free = store.uins_available().await?;
    if free >= low_water {
        return Ok(0);
    }
    fill(store, cipher, target.saturating_sub(free)).await
}

/// Adds `count` new UINs to the pool (fewer only if generation keeps hitting UINs already there); returns how
/// many were added.
pub async fn fill(store: &dyn Store, cipher: &UinCipher, count: u64) -> Result<u64, PoolError> {
    let mut generator = UinGenerator::new()?;
    let mut added = 0u64;
    let mut remaining = count;
    let mut fruitless = 0;
    while remaining > 0 && fruitless < 10 {
        let batch = usize::try_from(remaining.min(20_000)).unwrap_or(20_000);
        let rows = sealed_batch(&mut generator, cipher, batch)?;
        let n = store.add_uins(rows).await?;
        added += n;
        remaining = remaining.saturating_sub(n);
        fruitless = if n == 0 { fruitless + 1 } else { 0 };
    }
    Ok(added)
}

/// Allocates one UIN to each RID (the same UIN again for a RID that has one: idempotent), opening the sealed
/// entries. `PoolEmpty` (and nothing allocated) when the pool runs out.
pub async fn allocate(
    store: &dyn Store,
    cipher: &UinCipher,
    rids: Vec<Rid>,
    at: i64,
) -> Result<Vec<(Rid, String)>, StoreError> {
    let entries = store.allocate_uins(rids, at).await?;
    if entries.len() < 64 {
        return entries
            .into_iter()
            .map(|(rid, entry)| Ok((rid, cipher.open(&entry)?)))
            .collect();
    }
    // A large batch: opening (AEAD and hash check, a few µs each) on every core.
    use rayon::prelude::*;
    entries
        .into_par_iter()
        .map(|(rid, entry)| Ok((rid, cipher.open(&entry)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn digits(s: &str) -> [u8; 10] {
        let mut d = [0u8; 10];
        for (i, b) in s.bytes().enumerate() {
            d[i] = b - b'0';
        }
        d
    }

    #[test]
    fn each_filter_rejects_its_pattern() {
        assert!(
            passes_structural_filters(&digits("2930475917")),
            "a plain valid number"
        );
        assert!(!passes_structural_filters(&digits("1930485717")), "leading 1");
        assert!(!passes_structural_filters(&digits("0930485717")), "leading 0");
        assert!(!passes_structural_filters(&digits("2934565717")), "ascending 456");
        assert!(
            !passes_structural_filters(&digits("2936545717")),
            "descending 654"
        );
        assert!(!passes_structural_filters(&digits("2933485717")), "repeat 33");
        assert!(
            !passes_structural_filters(&digits("2939485717")),
            "repeat 3x3 within two"
        );
        assert!(
            !passes_structural_filters(&digits("2930429717")),
            "block 29 twice"
        );
        assert!(!passes_structural_filters(&digits("2930486717")), "even run 486");
        assert!(
            !passes_structural_filters(&digits("2947529475")),
            "first five equal last five"
        );
        assert!(
            !passes_structural_filters(&digits("2947557492")),
            "first five reversed"
        );
        assert!(contains_restricted("2978630517", DEFAULT_RESTRICTED));
        assert!(!contains_restricted("2930485717", DEFAULT_RESTRICTED));
    }

    #[test]
    fn generated_uins_are_distinct_enough_and_not_sequential() {
        let mut g = UinGenerator::new().unwrap();
        let v = g.generate(2_000).unwrap();
        let set: std::collections::HashSet<_> = v.iter().map(|u| u.as_str().to_owned()).collect();
        assert!(set.len() > 1_990);
        let ascending = v.windows(2).filter(|w| w[0].as_str() < w[1].as_str()).count();
        assert!(
            (600..1_400).contains(&ascending),
            "order looks random: {ascending}"
        );
    }

    #[test]
    fn sealed_uins_open_only_with_their_salt_and_hash() {
        let c = UinCipher::new(&[1; 32]);
        let e = c.seal("2930475917").unwrap();
        assert_eq!(e.uin_hash, crate::idrepo::uin_hash(&[1; 32], "2930475917"));
        assert_eq!(e.sealed.len(), 24 + 10 + 16);
        assert!(!e.sealed.windows(10).any(|w| w == b"2930475917"));
        assert_eq!(c.open(&e).unwrap(), "2930475917");
        assert_ne!(
            c.seal("2930475917").unwrap().sealed,
            e.sealed,
            "fresh nonce each time"
        );
        assert!(UinCipher::new(&[2; 32]).open(&e).is_err(), "another salt");
        let other = c.seal("2930475925").unwrap();
        let swapped = PoolUin {
            uin_hash: other.uin_hash.clone(),
            sealed: e.sealed.clone(),
        };
        assert!(c.open(&swapped).is_err(), "bound to its hash");
        let mut tampered = e.clone();
        if let Some(b) = tampered.sealed.last_mut() {
            *b ^= 1;
        }
        assert!(c.open(&tampered).is_err());
        let short = PoolUin {
            uin_hash: e.uin_hash.clone(),
            sealed: vec![0; 10],
        };
        assert!(c.open(&short).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_generated_uin_is_valid_and_filtered(_seed in 0u8..255) {
            let mut g = UinGenerator::new().unwrap();
            for _ in 0..50 {
                let u = g.next_uin().unwrap();
                prop_assert!(u.as_str().parse::<Uin>().is_ok());
                prop_assert!(passes_structural_filters(&digits(u.as_str())));
                prop_assert!(!contains_restricted(u.as_str(), DEFAULT_RESTRICTED));
            }
        }

        #[test]
        fn filters_never_panic(d in proptest::array::uniform10(0u8..10)) {
            let _ = passes_structural_filters(&d);
        }
    }
}
