//! 1:N gallery: search, fusion, insert/remove, persistence, strict file validation; cross-checks.

use proptest::prelude::*;
use tessera_biometrics::cross_check;
use tessera_biometrics::gallery::{Gallery, GalleryError, Probe, SIG_WORDS, SearchOptions};
use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::minutiae::Minutia;
use tessera_biometrics::synth::{Profile, SyntheticPerson};

type Fingers = Vec<(FingerPosition, Vec<Minutia>)>;

fn fingers(id: u64, impression: u32, n: usize) -> Fingers {
    let p = SyntheticPerson::with_profile(id, Profile::Standard);
    FingerPosition::TEN
        .iter()
        .take(n)
        .map(|&f| (f, p.finger_minutiae(f, impression)))
        .collect()
}

fn refs(f: &Fingers) -> Vec<(FingerPosition, &[Minutia])> {
    f.iter().map(|(p, m)| (*p, &m[..])).collect()
}

fn person_id(i: u64) -> String {
    format!("RID-{i:06}")
}

fn build(dir: &std::path::Path, n: u64) -> Gallery {
    let mut g = Gallery::create(dir.join("g.tgal")).unwrap();
    let batch: Vec<(String, Fingers)> = (0..n).map(|i| (person_id(i), fingers(7000 + i, 0, 10))).collect();
    g.insert_batch(&batch).unwrap();
    g
}

#[test]
fn mated_probes_find_their_person_first_after_save_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = build(dir.path(), 40);
    assert_eq!(g.len(), 40);
    g.save().unwrap();
    let g = Gallery::open(dir.path().join("g.tgal")).unwrap();
    assert_eq!(g.len(), 40);
    for i in [0u64, 13, 39] {
        let probe_f = fingers(7000 + i, 1, 10);
        let probe = Probe::new(&refs(&probe_f));
        let hits = g.search(&probe, 5);
        assert_eq!(hits[0].person, person_id(i), "{hits:?}");
        assert!(hits[0].fmr_estimate < 1e-12, "{:?}", hits[0]);
        assert_eq!(hits[0].fingers.len(), 10);
        assert!(hits.len() == 5 && hits[1].score < hits[0].score);
    }
    // A person outside the gallery: nobody looks like a match.
    let probe_f = fingers(99_999, 1, 10);
    let hits = g.search(&Probe::new(&refs(&probe_f)), 3);
    assert!(hits[0].fmr_estimate > 1e-6, "{:?}", hits[0]);
}

#[test]
fn cascade_at_full_penetration_equals_an_exhaustive_search() {
    let dir = tempfile::tempdir().unwrap();
    let g = build(dir.path(), 150);
    let exhaustive = SearchOptions {
        penetration: Some(1.0),
        coarse_share: Some(0.0),
        min_shortlist: 1,
    };
    for (i, n) in [(5u64, 1usize), (60, 2), (149, 1)] {
        let probe = Probe::new(&refs(&fingers(7000 + i, 1, n)));
        let (all, all_stats) = g.search_with(&probe, 150, &exhaustive);
        assert_eq!(all.len(), 150);
        assert_eq!(all_stats.coarse_scored, 0);
        // The coarse step over everybody, passing everybody on: the same candidates and scores.
        let cascade = SearchOptions {
            penetration: Some(1.0),
            coarse_share: Some(1.0),
            min_shortlist: 1,
        };
        assert_eq!(g.search_with(&probe, 150, &cascade).0, all);
        // Passing a third on: every candidate returned keeps its exhaustive score, and the mate is first.
        let third = SearchOptions {
            penetration: Some(0.34),
            coarse_share: Some(1.0),
            min_shortlist: 1,
        };
        let (hits, stats) = g.search_with(&probe, 10, &third);
        assert_eq!(stats.coarse_scored, 150);
        assert!((51..=52).contains(&stats.shortlisted), "{stats:?}");
        assert_eq!(hits.len(), 10);
        assert_eq!(hits[0].person, person_id(i));
        for h in &hits {
            assert_eq!(Some(h), all.iter().find(|a| a.person == h.person));
        }
        // The cascade rank says where the index stage put the mate: within the shortlist.
        let rank = g.cascade_rank(&probe, &person_id(i), &third).unwrap();
        assert!(rank < stats.shortlisted, "{rank}");
        // Without a coarse step the cascade rank is the histogram's.
        assert_eq!(
            g.cascade_rank(&probe, &person_id(i), &exhaustive),
            g.index_rank(&probe, &person_id(i))
        );
    }
}

#[test]
fn coarse_step_ranks_hard_mates_above_the_histogram_scan() {
    // Poor captures, one finger: the coarse step (default share, 20 %) re-ranks the histogram's best and
    // brings mates forward.
    let dir = tempfile::tempdir().unwrap();
    let hard = |id: u64, imp: u32| -> Fingers {
        let p = SyntheticPerson::with_profile(id, Profile::Hard);
        vec![(
            FingerPosition::RightIndex,
            p.finger_minutiae(FingerPosition::RightIndex, imp),
        )]
    };
    let mut g = Gallery::create(dir.path().join("g.tgal")).unwrap();
    let batch: Vec<(String, Fingers)> = (0..500).map(|i| (person_id(i), hard(12_000 + i, 0))).collect();
    g.insert_batch(&batch).unwrap();
    let opts = SearchOptions {
        penetration: Some(0.05),
        coarse_share: None,
        min_shortlist: 1,
    };
    let (mut hist_kept, mut cascade_kept) = (0, 0);
    for i in (0..500u64).step_by(10) {
        let probe = Probe::new(&refs(&hard(12_000 + i, 1)));
        hist_kept += usize::from(g.index_rank(&probe, &person_id(i)).unwrap() < 25);
        cascade_kept += usize::from(g.cascade_rank(&probe, &person_id(i), &opts).unwrap() < 25);
    }
    assert!(
        cascade_kept > hist_kept && cascade_kept >= 40,
        "mates in the best 5 % of 500: cascade {cascade_kept}, histogram {hist_kept} of 50"
    );
}

#[test]
fn index_stage_keeps_the_mate_at_low_penetration() {
    let dir = tempfile::tempdir().unwrap();
    let g = build(dir.path(), 200);
    let opts = SearchOptions {
        penetration: Some(0.02),
        coarse_share: None,
        min_shortlist: 1,
    };
    for i in [3u64, 77, 150] {
        // Two fingers only: the index must still rank the mate in the top 2 % (4 persons).
        let probe_f = fingers(7000 + i, 1, 2);
        let (hits, stats) = g.search_with(&Probe::new(&refs(&probe_f)), 1, &opts);
        assert_eq!(stats.shortlisted, 4);
        assert_eq!(stats.comparisons, 8);
        assert_eq!(hits[0].person, person_id(i));
    }
}

#[test]
fn index_stage_keeps_one_finger_mates_at_five_percent() {
    // One finger per probe, 5 % of 200 persons shortlisted (10): the index alone must keep the mate.
    // (With the earlier pair-key signatures, before their votes were scaled by the chance count's deviation,
    // big gallery fingers crowded mates out.)
    let dir = tempfile::tempdir().unwrap();
    let g = build(dir.path(), 200);
    let opts = SearchOptions {
        penetration: Some(0.05),
        coarse_share: None,
        min_shortlist: 1,
    };
    let mut kept = 0;
    for i in (0..200u64).step_by(8) {
        let probe_f = fingers(7000 + i, 1, 1);
        let (hits, stats) = g.search_with(&Probe::new(&refs(&probe_f)), 10, &opts);
        assert_eq!(stats.shortlisted, 10);
        kept += usize::from(hits.iter().any(|h| h.person == person_id(i)));
    }
    assert!(kept >= 24, "mate shortlisted in {kept} of 25 one-finger searches");
}

#[test]
fn insert_replace_remove_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.tgal");
    let mut g = build(dir.path(), 5);
    g.save().unwrap();
    let mut g = Gallery::open(&path).unwrap();
    assert!(g.remove(&person_id(2)));
    assert!(!g.remove(&person_id(2)));
    assert!(!g.contains(&person_id(2)));
    // Replace person 3 with other fingers.
    let other = fingers(8000, 0, 10);
    g.insert(&person_id(3), &refs(&other)).unwrap();
    assert_eq!(g.len(), 4);
    let probe_f = fingers(7002, 1, 10);
    let hits = g.search(&Probe::new(&refs(&probe_f)), 4);
    assert!(hits.iter().all(|h| h.person != person_id(2)));
    g.save().unwrap();
    let g = Gallery::open(&path).unwrap();
    assert_eq!(g.len(), 4);
    let probe_f = fingers(8000, 1, 10);
    let hits = g.search(&Probe::new(&refs(&probe_f)), 1);
    assert_eq!(hits[0].person, person_id(3));
    assert!(!dir.path().join("g.tgal-tmp").exists());
}

#[test]
fn files_of_the_previous_layout_are_refused_with_a_rebuild_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.tgal");
    let mut g = build(dir.path(), 2);
    g.save().unwrap();
    let mut b = std::fs::read(&path).unwrap();
    b[..8].copy_from_slice(b"TSGALRY2");
    std::fs::write(&path, &b).unwrap();
    let e = Gallery::open(&path).unwrap_err();
    assert!(
        matches!(
            &e,
            GalleryError::Format {
                field: "magic",
                offset: 0,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("TSGALRY2") && e.to_string().contains("rebuild"),
        "{e}"
    );
}

#[test]
fn index_keeps_poor_capture_mates_and_follows_inserts_and_removes() {
    // Hard profile (partial contact, distortion, direction noise), two fingers, 5 % of 400 persons (20)
    // shortlisted: the histogram index must keep nearly every mate (the old pair keys lost ~60 %).
    let dir = tempfile::tempdir().unwrap();
    let hard = |id: u64, imp: u32, n: usize| -> Fingers {
        let p = SyntheticPerson::with_profile(id, Profile::Hard);
        FingerPosition::TEN
            .iter()
            .take(n)
            .map(|&f| (f, p.finger_minutiae(f, imp)))
            .collect()
    };
    let mut g = Gallery::create(dir.path().join("g.tgal")).unwrap();
    let batch: Vec<(String, Fingers)> = (0..400).map(|i| (person_id(i), hard(9000 + i, 0, 2))).collect();
    g.insert_batch(&batch).unwrap();
    g.save().unwrap();
    let mut g = Gallery::open(dir.path().join("g.tgal")).unwrap();
    let opts = SearchOptions {
        penetration: Some(0.05),
        coarse_share: None,
        min_shortlist: 1,
    };
    let mut kept = 0;
    for i in (0..400u64).step_by(10) {
        let probe = Probe::new(&refs(&hard(9000 + i, 1, 2)));
        kept += usize::from(g.index_rank(&probe, &person_id(i)).unwrap() < 20);
    }
    assert!(
        kept >= 36,
        "hard mates shortlisted in {kept} of 40 two-finger searches"
    );
    // A person inserted after opening (held in memory, not yet saved) is found by the index, and a
    // removed one is gone.
    g.insert("late", &refs(&hard(9999, 0, 2))).unwrap();
    let probe = Probe::new(&refs(&hard(9999, 1, 2)));
    assert!(g.index_rank(&probe, "late").unwrap() < 20);
    let (hits, _) = g.search_with(&probe, 1, &opts);
    assert_eq!(hits[0].person, "late");
    assert!(g.remove("late"));
    assert_eq!(g.index_rank(&probe, "late"), None);
    let (hits, _) = g.search_with(&probe, 1, &opts);
    assert_ne!(hits[0].person, "late");
}

#[test]
fn invalid_inserts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gallery::create(dir.path().join("g.tgal")).unwrap();
    let f = fingers(1, 0, 2);
    assert!(matches!(
        g.insert("", &refs(&f)),
        Err(GalleryError::PersonId { .. })
    ));
    assert!(matches!(
        g.insert(&"x".repeat(65), &refs(&f)),
        Err(GalleryError::PersonId { .. })
    ));
    assert!(matches!(
        g.insert("a\nb", &refs(&f)),
        Err(GalleryError::PersonId { .. })
    ));
    assert!(matches!(g.insert("p", &[]), Err(GalleryError::Fingers(_))));
    let twice = vec![
        (FingerPosition::RightIndex, &f[0].1[..]),
        (FingerPosition::RightIndex, &f[1].1[..]),
    ];
    assert!(matches!(g.insert("p", &twice), Err(GalleryError::Fingers(_))));
    let slap = vec![(FingerPosition::RightFourFingers, &f[0].1[..])];
    assert!(matches!(g.insert("p", &slap), Err(GalleryError::Fingers(_))));
    assert!(g.is_empty());
}

#[test]
fn damaged_files_are_refused_with_offset_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.tgal");
    let mut g = build(dir.path(), 3);
    g.save().unwrap();
    let good = std::fs::read(&path).unwrap();
    assert!(Gallery::from_bytes(&good, &path).is_ok());
    let check = |bytes: &[u8], field: &str, offset: usize| {
        std::fs::write(&path, bytes).unwrap();
        let e = Gallery::open(&path).unwrap_err();
        match &e {
            GalleryError::Format {
                field: f, offset: o, ..
            } => {
                assert_eq!((*f, *o), (field, offset), "{e}");
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains(field));
    };
    check(&good[..good.len() - 8], "finger count", 24);
    let mut b = good.clone();
    b[0] ^= 1;
    check(&b, "magic", 0);
    let mut b = good.clone();
    b[8] ^= 1;
    check(&b, "parameters", 8);
    let mut b = good.clone();
    b[64] = 0; // id length of person 0
    check(&b, "person id length", 64);
    let mut b = good.clone();
    b[64 + 16 + 5] = 0xFF; // inside person 0's id: invalid UTF-8
    check(&b, "person id", 80);
    // Finger records start after the header (64 bytes) and three persons (80 bytes each).
    let f0 = 64 + 3 * 80;
    let mut b = good.clone();
    b[f0 + 4] = 13; // position code: a slap
    check(&b, "finger position", f0);
    let mut b = good.clone();
    b[f0] = 2; // person index
    check(&b, "finger person index", f0);
    // A reserved bit of finger 0's head.
    let mut b = good.clone();
    b[f0 + 7] = 0x80;
    check(&b, "finger head", f0);
    // The signatures follow the 30 finger heads; finger 0's quantisation scale is not an f32 in 0-1.
    let s0 = f0 + 30 * 8;
    let mut b = good.clone();
    b[s0 + 3] = 0x7F; // exponent all ones: NaN or infinity
    b[s0 + 2] = 0xFF;
    check(&b, "finger signature scale", s0);
    let mut b = good.clone();
    b[s0 + 4] = 1; // high half of the scale word
    check(&b, "finger signature scale", s0);
    // The cylinder records follow the 30 signatures; a reserved point bit set in finger 0's first point.
    let r0 = s0 + 30 * SIG_WORDS * 8;
    let mut b = good;
    b[r0 + 7] = 1;
    check(&b, "finger points", r0);
    let odd = vec![0u8; 13];
    assert!(matches!(
        Gallery::from_bytes(&odd, &path),
        Err(GalleryError::Format { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn corrupted_gallery_bytes_never_panic(pos in 0usize..20_000, val in any::<u8>(), cut in 0usize..20_000) {
        static GOOD: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let good = GOOD.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let mut g = build(dir.path(), 2);
            g.save().unwrap();
            std::fs::read(dir.path().join("g.tgal")).unwrap()
        });
        let mut b = good.clone();
        let i = pos % b.len();
        b[i] = val;
        let probe_f = fingers(7000, 1, 10);
        let probe = Probe::new(&refs(&probe_f));
        if let Ok(g) = Gallery::from_bytes(&b, "/nonexistent/x.tgal") {
            let _ = g.search(&probe, 3);
        }
        b.truncate(cut % (b.len() + 1));
        let _ = Gallery::from_bytes(&b, "/nonexistent/x.tgal");
    }
}

#[test]
fn duplicate_fingers_in_one_enrolment_are_flagged() {
    let p = SyntheticPerson::new(4242);
    let mut set: Fingers = FingerPosition::TEN
        .iter()
        .map(|&f| (f, p.finger_minutiae(f, 0)))
        .collect();
    assert!(cross_check::duplicate_fingers(&refs(&set)).is_empty());
    // The left index is presented again in place of the left middle finger.
    set[7].1 = p.finger_minutiae(FingerPosition::LeftIndex, 3);
    let d = cross_check::duplicate_fingers(&refs(&set));
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (d[0].first, d[0].second),
        (FingerPosition::LeftIndex, FingerPosition::LeftMiddle)
    );
    assert!(d[0].fmr_estimate <= cross_check::DUPLICATE_FMR);
}

#[test]
fn applicant_matching_the_operator_is_detected() {
    let applicant = fingers(5100, 0, 10);
    // The operator logged in with two fingers; an honest applicant is someone else.
    let op = SyntheticPerson::new(5200);
    let operator: Fingers = [FingerPosition::RightIndex, FingerPosition::LeftThumb]
        .iter()
        .map(|&f| (f, op.finger_minutiae(f, 1)))
        .collect();
    assert!(cross_check::matches_person(&refs(&applicant), &refs(&operator)).is_none());
    // The operator enrols themself.
    let own = fingers(5200, 0, 10);
    let m = cross_check::matches_person(&refs(&own), &refs(&operator)).unwrap();
    assert!(m.fmr_estimate < 1e-6, "{m:?}");
    assert_eq!(m.pairs[0].0, m.pairs[0].1);
}
