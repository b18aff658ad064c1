//! Fuzzes the strict ISO/IEC 19794-2:2005 and ANSI/INCITS 378-2004 minutiae record decoders and the
//! internal template parser; whatever decodes must re-encode and decode again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_biometrics::iso19794_2::{self, Standard};
use tessera_biometrics::template::Template;

fuzz_target!(|data: &[u8]| {
    for std in [Standard::Iso2005, Standard::Ansi2004] {
        if let Ok(rec) = iso19794_2::decode(data, std) {
            let again = iso19794_2::decode(&iso19794_2::encode(&rec, std), std);
            assert!(again.is_ok());
        }
    }
    if let Ok(t) = Template::from_bytes(data) {
        assert!(Template::from_bytes(&t.to_bytes()).is_ok());
    }
});
