//! The operators bundle parser (data from sync or a file) refuses bad input with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_station::operators::OperatorBundle;

fuzz_target!(|data: &[u8]| {
    let _ = OperatorBundle::parse(data);
});
