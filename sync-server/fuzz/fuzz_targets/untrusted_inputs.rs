//! The sync server's parsers of untrusted bytes that need no network or database: the signed-request
//! headers of station requests, the tus upload headers, export manifests read from removable media, and the
//! validation of a decrypted packet's JSON against the sample country's ID schema and master data. The
//! first byte picks the parser; the rest is its input (fields separated by 0xFF bytes, see
//! `tessera_server::fuzzing`). Every parser must return an error, never panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_packet::PacketContent;
use tessera_packet::sample::{SampleSize, sample_content};
use tessera_server::fuzzing;
use tessera_server::validate::Rules;

const COUNTRY: &str = "../../config/sample-country";

fn fixture() -> &'static Option<(Rules, PacketContent)> {
    static F: OnceLock<Option<(Rules, PacketContent)>> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COUNTRY);
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        let master: Vec<(&str, String)> = [
            ("dynamicLists", "dynamic-lists.json"),
            ("locations", "locations.json"),
            ("ageGroups", "age-groups.json"),
            ("documents", "documents.json"),
        ]
        .iter()
        .map(|(k, f)| Some((*k, read(f)?)))
        .collect::<Option<_>>()?;
        let master: Vec<(&str, &str)> = master.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let rules = fuzzing::rules(&read("id-schema.json")?, &master)?;
        Some((rules, sample_content(1, SampleSize::Small)))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        0 => fuzzing::signed_request(rest),
        1 => fuzzing::tus_headers(rest),
        2 => fuzzing::export_manifest(rest),
        3 => {
            if let Some((rules, _)) = fixture() {
                fuzzing::packet_content(rules, rest);
            }
        }
        _ => {
            if let Some((rules, base)) = fixture() {
                fuzzing::identity(rules, base, rest);
            }
        }
    }
});
