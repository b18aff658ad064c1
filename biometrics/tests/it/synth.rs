//! Synthetic data: determinism, per-person differences, image sizes, ground truth plausibility.

use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::synth::{IMPRESSION_HEIGHT, IMPRESSION_WIDTH, Profile, SyntheticPerson};

fn mean_abs_diff(a: &image::GrayImage, b: &image::GrayImage) -> f64 {
    let s: u64 = a
        .pixels()
        .zip(b.pixels())
        .map(|(p, q)| u64::from(p.0[0].abs_diff(q.0[0])))
        .sum();
    s as f64 / (a.width() * a.height()) as f64
}

#[test]
fn fingers_are_deterministic_sized_and_person_specific() {
    let a = SyntheticPerson::new(7);
    let img = a.finger(FingerPosition::RightIndex, 0);
    assert_eq!((img.width(), img.height()), (IMPRESSION_WIDTH, IMPRESSION_HEIGHT));
    assert_eq!(img, SyntheticPerson::new(7).finger(FingerPosition::RightIndex, 0));
    let other_impression = a.finger(FingerPosition::RightIndex, 1);
    let other_person = SyntheticPerson::new(8).finger(FingerPosition::RightIndex, 0);
    assert!(mean_abs_diff(&img, &other_impression) > 5.0);
    assert!(mean_abs_diff(&img, &other_person) > 5.0);
    // Not blank: a real ridge/valley contrast exists.
    let (min, max) = img
        .pixels()
        .fold((255u8, 0u8), |(lo, hi), p| (lo.min(p.0[0]), hi.max(p.0[0])));
    assert!(max - min > 80, "contrast {min}..{max}");
}

#[test]
fn ground_truth_minutiae_follow_the_impression() {
    let p = SyntheticPerson::new(3);
    let master = p.master(FingerPosition::LeftThumb);
    assert!(
        (25..=140).contains(&master.minutiae.len()),
        "{}",
        master.minutiae.len()
    );
    let imp = p.finger_impression(FingerPosition::LeftThumb, 2);
    assert!(!imp.minutiae.is_empty());
    assert!(imp.minutiae.len() <= master.minutiae.len());
    for m in &imp.minutiae {
        assert!(m.x >= 0.0 && m.y >= 0.0 && m.x < IMPRESSION_WIDTH as f32 && m.y < IMPRESSION_HEIGHT as f32);
    }
}

#[test]
fn hard_profile_is_harder() {
    let std_person = SyntheticPerson::with_profile(21, Profile::Standard);
    let hard_person = SyntheticPerson::with_profile(21, Profile::Hard);
    let (mut s_noise, mut h_noise, mut s_contact, mut h_contact) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..8 {
        let s = std_person
            .finger_impression(FingerPosition::RightThumb, i)
            .degradation;
        let h = hard_person
            .finger_impression(FingerPosition::RightThumb, i)
            .degradation;
        s_noise += s.noise;
        h_noise += h.noise;
        s_contact += s.contact;
        h_contact += h.contact;
    }
    assert!(h_noise > s_noise && h_contact < s_contact);
}

#[test]
fn slaps_iris_and_face_have_expected_shapes() {
    let p = SyntheticPerson::new(5);
    let slap = p.finger(FingerPosition::LeftFourFingers, 0);
    assert_eq!(slap.width(), 4 * IMPRESSION_WIDTH);
    let r = p.iris(true, 0);
    let l = p.iris(false, 0);
    assert_eq!((r.width(), r.height()), (640, 480));
    assert!(mean_abs_diff(&r, &l) > 3.0, "left and right irises differ");
    assert_eq!(r, SyntheticPerson::new(5).iris(true, 0));
    let f = p.face(0);
    assert_eq!((f.width(), f.height()), (480, 600));
    assert_ne!(f, SyntheticPerson::new(6).face(0));
}

#[test]
fn fast_minutiae_generator_is_cheap_and_consistent() {
    let p = SyntheticPerson::new(99);
    let a = p.finger_minutiae(FingerPosition::RightRing, 0);
    assert_eq!(a, p.finger_minutiae(FingerPosition::RightRing, 0));
    assert!((15..=120).contains(&a.len()));
    assert_ne!(a, p.finger_minutiae(FingerPosition::RightRing, 1));
}

#[test]
fn gen_writes_iso_records_for_the_chosen_fingers_with_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera-bio"))
        .args([
            "gen",
            "--persons",
            "1",
            "--impressions",
            "1",
            "--fingers",
            "1,7",
            "--format",
            "iso",
        ])
        .args(["--seed", "123", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let truth = std::fs::read_to_string(dir.path().join("truth.csv")).unwrap();
    for (code, pos) in [(1, FingerPosition::RightThumb), (7, FingerPosition::LeftIndex)] {
        let name = format!("123_{code}_0.fir");
        let recs =
            tessera_biometrics::iso19794_4::decode(&std::fs::read(dir.path().join(&name)).unwrap()).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].position, pos);
        let img = recs[0].to_gray().unwrap();
        assert_eq!(img, SyntheticPerson::new(123).finger(pos, 0));
        assert!(
            recs[0].quality > 0 && recs[0].quality <= 100,
            "{}",
            recs[0].quality
        );
        assert!(truth.lines().filter(|l| l.starts_with(&name)).count() > 10);
    }
    // A bad finger code is refused with a message naming the option.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_tessera-bio"))
        .args(["gen", "--persons", "1", "--fingers", "13", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--fingers"));
}
