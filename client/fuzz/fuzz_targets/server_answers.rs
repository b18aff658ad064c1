//! Answers from a (possibly hostile or broken) sync server are refused with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_packet::wire::{MachineInfo, PacketStatusResponse, ServerInfo, SignedReceipt, SyncPage};
use tessera_station::sync::http::parse;

fuzz_target!(|data: &[u8]| {
    let _ = parse::<SyncPage>("fuzz", data);
    let _ = parse::<SignedReceipt>("fuzz", data);
    let _ = parse::<PacketStatusResponse>("fuzz", data);
    let _ = parse::<MachineInfo>("fuzz", data);
    let _ = parse::<ServerInfo>("fuzz", data);
});
