//! Fuzzes the gallery file validator: arbitrary bytes must be refused with an error or, when accepted,
//! searched and re-saved without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_biometrics::gallery::{Gallery, Probe};
use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::minutiae::{Minutia, MinutiaKind};

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("tessera-gallery-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut g) = Gallery::from_bytes(data, dir.join("g.tgal")) {
        let ms: Vec<Minutia> = (0..30)
            .map(|i| Minutia {
                x: 60.0 + (i % 6) as f32 * 25.0,
                y: 60.0 + (i / 6) as f32 * 25.0,
                direction: i as f32 * 0.9,
                kind: MinutiaKind::Ending,
                quality: 50,
            })
            .collect();
        let probe = Probe::new(&[(FingerPosition::RightIndex, &ms[..])]);
        let _ = g.search(&probe, 5);
        g.remove("x");
        if g.save().is_ok() {
            assert!(Gallery::open(dir.join("g.tgal")).is_ok());
        }
    }
});
