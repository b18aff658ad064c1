//! Every SBI message parser on arbitrary bytes: typed errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_sbi::protocol::{
    CaptureData, CaptureResponse, DeviceInfo, DeviceInfoEntry, DigitalId, DiscoveredDevice, ErrorResponse,
    NumStr, RCaptureRequest, SbiErrorCode, StreamRequest, TransactionId, parse, parse_hash,
};

fuzz_target!(|data: &[u8]| {
    let _ = parse::<CaptureResponse>("f", data);
    let _ = parse::<Vec<DiscoveredDevice>>("f", data);
    let _ = parse::<Vec<DeviceInfoEntry>>("f", data);
    let _ = parse::<DeviceInfo>("f", data);
    let _ = parse::<DigitalId>("f", data);
    let _ = parse::<CaptureData>("f", data);
    let _ = parse::<RCaptureRequest>("f", data);
    let _ = parse::<StreamRequest>("f", data);
    if let Ok(r) = parse::<ErrorResponse>("f", data) {
        let _ = r.error.code();
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = TransactionId::parse(s);
        let _ = NumStr::parse("f", s);
        let _ = SbiErrorCode::parse(s);
        let _ = parse_hash("f", s);
    }
});
