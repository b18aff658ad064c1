//! Extraction on synthetic prints (against ground truth) and on the three real prints.

use tessera_biometrics::extract::extract;
use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::synth::SyntheticPerson;

fn real(name: &str) -> image::GrayImage {
    image::open(format!("{}/testdata/{name}.png", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .into_luma8()
}

#[test]
fn real_prints_give_plausible_minutiae_counts() {
    for name in ["p1_1", "p1_2", "p2_1"] {
        let e = extract(&real(name)).unwrap();
        let n = e.minutiae.len();
        eprintln!("{name}: {n} minutiae");
        assert!((20..=150).contains(&n), "{name}: {n} minutiae");
    }
}

#[test]
fn synthetic_minutiae_are_found_near_ground_truth() {
    let p = SyntheticPerson::new(12);
    let imp = p.finger_impression(FingerPosition::RightIndex, 0);
    let e = extract(&imp.image).unwrap();
    let truth = &imp.minutiae;
    let found = truth
        .iter()
        .filter(|t| e.minutiae.iter().any(|m| (m.x - t.x).hypot(m.y - t.y) < 10.0))
        .count();
    let recall = found as f32 / truth.len().max(1) as f32;
    let precision = e
        .minutiae
        .iter()
        .filter(|m| truth.iter().any(|t| (m.x - t.x).hypot(m.y - t.y) < 10.0))
        .count() as f32
        / e.minutiae.len().max(1) as f32;
    eprintln!(
        "recall {recall}, precision {precision}, truth {}, found {}",
        truth.len(),
        e.minutiae.len()
    );
    assert!(
        recall > 0.5 && precision > 0.4,
        "recall {recall}, precision {precision}, truth {}, found {}",
        truth.len(),
        e.minutiae.len()
    );
}
