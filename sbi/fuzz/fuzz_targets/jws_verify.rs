//! JWS verification on arbitrary tokens against an empty trust store: typed errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_packet::clock::FixedClock;
use tessera_sbi::jws::{TrustStore, decode_unverified};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = decode_unverified("f", s);
        let clock = FixedClock::new(
            chrono::DateTime::<chrono::Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
        );
        let _ = TrustStore::new().verify("f", s, &clock);
    }
    let _ = TrustStore::new().add_der(data);
});
