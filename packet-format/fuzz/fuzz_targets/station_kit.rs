//! Feeds untrusted bytes to the station set-up kit reader (`wire::kit`): parsing and verifying must return
//! errors, never panic. A station reads kits from USB drives handed over by people.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_packet::wire::kit::SignedStationKit;

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = SignedStationKit::parse(data)
        && let Ok(kit) = k.verify()
    {
        let _ = kit.server_key_fingerprint();
    }
});
