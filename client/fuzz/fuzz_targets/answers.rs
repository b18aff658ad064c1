//! Any answers file (untrusted JSON from an operator's machine or the HTTP bridge) is either refused or
//! validated against the sample country's forms without panicking.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_station::forms::{Answers, Form};
use tessera_station::masterdata::MasterData;

fn md() -> &'static MasterData {
    static MD: OnceLock<MasterData> = OnceLock::new();
    MD.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/sample-country");
        match MasterData::load_folder(&dir) {
            Ok(m) => m,
            Err(e) => panic!("sample country does not load: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(answers) = serde_json::from_slice::<Answers>(data) else {
        return;
    };
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default();
    for process in ["NEW", "UPDATE", "LOST"] {
        if let Ok(form) = Form::new(md(), process) {
            let _ = form.validate(&answers, today);
        }
    }
});
