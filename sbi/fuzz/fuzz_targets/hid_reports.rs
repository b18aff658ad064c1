//! HID keyboard reports from a scanner on arbitrary bytes: the decoder and the scan assembler give
//! typed errors, never a panic, with and without a report id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_sbi::hid::keyboard::{KeyboardDecoder, ScanAssembler};

fuzz_target!(|data: &[u8]| {
    let id = data.first().copied().filter(|b| b % 2 == 0);
    let mut decoder = KeyboardDecoder::new(id);
    let mut scans = ScanAssembler::new();
    for report in data.chunks(9) {
        if let Ok(keys) = decoder.push(report) {
            for k in keys {
                let _ = scans.push(k);
            }
        }
    }
});
