//! Fuzzes the strict ISO/IEC 19794-4/-5/-6 image record decoders and the pixel decoding behind them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_biometrics::{iso19794_4, iso19794_5, iso19794_6};

fuzz_target!(|data: &[u8]| {
    if let Ok(recs) = iso19794_4::decode(data) {
        for r in &recs {
            let _ = r.to_gray();
        }
        // A record that decodes must re-encode to the same bytes' meaning.
        assert_eq!(iso19794_4::decode(&iso19794_4::encode(&recs)).ok(), Some(recs));
    }
    if let Ok(recs) = iso19794_5::decode(data) {
        for r in &recs {
            let _ = r.to_rgb();
        }
    }
    if let Ok(recs) = iso19794_6::decode(data) {
        for r in &recs {
            let _ = r.to_gray();
        }
    }
});
