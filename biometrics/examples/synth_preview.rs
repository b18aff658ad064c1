//! Writes a few synthetic images to a folder and prints generation times:
//! `cargo run -p tessera-biometrics --example synth_preview -- /tmp/synth [person_id]`.
#![allow(clippy::print_stdout, clippy::disallowed_methods, reason = "developer tool")]

use std::time::Instant;

use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::synth::{Profile, SyntheticPerson};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "synth-preview".into()));
    let id: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    std::fs::create_dir_all(&dir)?;
    for profile in [Profile::Standard, Profile::Hard] {
        let person = SyntheticPerson::with_profile(id, profile);
        for pos in [
            FingerPosition::RightThumb,
            FingerPosition::RightIndex,
            FingerPosition::LeftMiddle,
        ] {
            let t = Instant::now();
            let master = person.master(pos);
            let t_master = t.elapsed();
            for imp in 0..2 {
                let t = Instant::now();
                let i = person.finger_impression(pos, imp);
                let t_imp = t.elapsed();
                i.image
                    .save(dir.join(format!("{id}_{profile:?}_{}_{imp}.png", pos.code())))?;
                println!(
                    "{profile:?} finger {} ({:?}) impression {imp}: master {:.1} ms ({} minutiae), impression {:.1} ms ({} visible)",
                    pos.code(),
                    master.class,
                    t_master.as_secs_f64() * 1e3,
                    master.minutiae.len(),
                    t_imp.as_secs_f64() * 1e3,
                    i.minutiae.len()
                );
            }
        }
        let t = Instant::now();
        person
            .iris(true, 0)
            .save(dir.join(format!("{id}_{profile:?}_iris.png")))?;
        person
            .face(0)
            .save(dir.join(format!("{id}_{profile:?}_face.png")))?;
        println!("iris + face: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(())
}
