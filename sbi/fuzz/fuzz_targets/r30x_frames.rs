//! The R30x serial frame decoder on arbitrary bytes: typed errors, never a panic; decoded frames
//! re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_sbi::r30x::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((p, used))) = decode(data) {
        assert_eq!(encode(&p), data[..used]);
    }
});
