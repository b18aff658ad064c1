//! Property tests of the ISO/IEC 19794-2 / ANSI 378 minutiae records and the internal template.

use proptest::prelude::*;
use tessera_biometrics::iso19794_2::{self, FingerView, MinutiaeRecord, Standard};
use tessera_biometrics::iso19794_4::FingerPosition;
use tessera_biometrics::minutiae::{Minutia, MinutiaKind, angle_diff};
use tessera_biometrics::template::Template;

fn minutia(w: u16, h: u16) -> impl Strategy<Value = Minutia> {
    (0..w, 0..h, 0f32..std::f32::consts::TAU, 0u8..3, 0u8..=100).prop_map(|(x, y, d, k, q)| Minutia {
        x: f32::from(x),
        y: f32::from(y),
        direction: d,
        kind: [MinutiaKind::Other, MinutiaKind::Ending, MinutiaKind::Bifurcation][k as usize],
        quality: q,
    })
}

fn record() -> impl Strategy<Value = MinutiaeRecord> {
    (1u16..800, 1u16..800).prop_flat_map(|(w, h)| {
        let view = (
            0u8..=10,
            0u8..16,
            prop_oneof![Just(0u8), Just(1), Just(2), Just(3), Just(8)],
            0u8..=100,
            proptest::collection::vec(minutia(w, h), 0..60),
        )
            .prop_map(|(p, v, i, q, m)| FingerView {
                position: FingerPosition::from_code(p).unwrap(),
                view_number: v,
                impression_type: i,
                quality: q,
                minutiae: m,
            });
        proptest::collection::vec(view, 1..4).prop_map(move |views| MinutiaeRecord {
            width: w,
            height: h,
            x_resolution: 197,
            y_resolution: 197,
            views,
        })
    })
}

proptest! {
    #[test]
    fn minutiae_records_round_trip(rec in record(), ansi in any::<bool>()) {
        let std = if ansi { Standard::Ansi2004 } else { Standard::Iso2005 };
        let back = iso19794_2::decode(&iso19794_2::encode(&rec, std), std).unwrap();
        prop_assert_eq!(back.views.len(), rec.views.len());
        let tol = if ansi { 1.01f32.to_radians() } else { std::f32::consts::TAU / 512.0 + 1e-4 };
        for (a, b) in rec.views.iter().zip(&back.views) {
            prop_assert_eq!(a.position, b.position);
            prop_assert_eq!(a.minutiae.len(), b.minutiae.len());
            for (m, n) in a.minutiae.iter().zip(&b.minutiae) {
                prop_assert_eq!((m.x, m.y, m.kind, m.quality), (n.x, n.y, n.kind, n.quality));
                prop_assert!(angle_diff(m.direction, n.direction) <= tol);
            }
        }
    }

    #[test]
    fn minutiae_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = iso19794_2::decode(&bytes, Standard::Iso2005);
        let _ = iso19794_2::decode(&bytes, Standard::Ansi2004);
        let _ = Template::from_bytes(&bytes);
    }

    #[test]
    fn corrupted_minutiae_records_never_panic(rec in record(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut bytes = iso19794_2::encode(&rec, Standard::Iso2005);
        for (at, v) in flips {
            let n = bytes.len();
            bytes[at % n] = v;
        }
        let _ = iso19794_2::decode(&bytes, Standard::Iso2005);
    }

    #[test]
    fn template_round_trip(ms in proptest::collection::vec(minutia(500, 500), 0..100), q in 0u8..=100) {
        let t = Template { position: FingerPosition::RightIndex, quality: q, width: 500, height: 500, minutiae: ms };
        let back = Template::from_bytes(&t.to_bytes()).unwrap();
        prop_assert_eq!(back.minutiae.len(), t.minutiae.len());
        for (m, n) in t.minutiae.iter().zip(&back.minutiae) {
            prop_assert!((m.x - n.x).abs() < 0.07 && (m.y - n.y).abs() < 0.07);
            prop_assert!(angle_diff(m.direction, n.direction) < 1e-3);
            prop_assert_eq!(m.kind, n.kind);
        }
    }
}
