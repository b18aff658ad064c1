//! Property tests of the ISO/IEC 19794-4/-5/-6 image record codecs: round trips, and decoders that never
//! panic on arbitrary, truncated or corrupted input.

use proptest::prelude::*;
use tessera_biometrics::iso19794_4::{self, FingerImageRecord, FingerPosition, ImageCompression};
use tessera_biometrics::iso19794_5::{self, FaceImageFormat, FaceImageRecord};
use tessera_biometrics::iso19794_6::{self, EyeLabel, IrisImageFormat, IrisImageRecord};

fn finger_record() -> impl Strategy<Value = FingerImageRecord> {
    (
        0u8..=15,
        1u16..64,
        1u16..64,
        1u16..2000,
        1u8..=6,
        prop_oneof![0u8..=100, Just(255u8)],
    )
        .prop_flat_map(|(pos, w, h, ppi, comp, quality)| {
            let compression = ImageCompression::from_code(comp).unwrap();
            let len = if compression == ImageCompression::Uncompressed {
                (w as usize * h as usize)..=(w as usize * h as usize)
            } else {
                0..=300
            };
            proptest::collection::vec(any::<u8>(), len).prop_map(move |data| FingerImageRecord {
                position: FingerPosition::from_code(pos).unwrap(),
                width: w,
                height: h,
                ppi,
                compression,
                quality,
                data,
            })
        })
}

fn face_record() -> impl Strategy<Value = FaceImageRecord> {
    (
        1u16..5000,
        1u16..5000,
        0u8..=3,
        0u8..=100,
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(width, height, f, quality, data)| FaceImageRecord {
            width,
            height,
            format: FaceImageFormat::from_code(f).unwrap(),
            quality,
            data,
        })
}

fn iris_record() -> impl Strategy<Value = IrisImageRecord> {
    (
        0u8..=2,
        1u16..5000,
        1u16..5000,
        1u8..=8,
        0u8..=100,
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(eye, width, height, f, quality, data)| IrisImageRecord {
            eye: [EyeLabel::Unknown, EyeLabel::Right, EyeLabel::Left][eye as usize],
            width,
            height,
            format: IrisImageFormat::from_code(f * 2).unwrap(),
            quality,
            data,
        })
}

proptest! {
    #[test]
    fn finger_round_trip(recs in proptest::collection::vec(finger_record(), 1..5)) {
        let bytes = iso19794_4::encode(&recs);
        prop_assert_eq!(iso19794_4::decode(&bytes).unwrap(), recs);
    }

    #[test]
    fn face_round_trip(recs in proptest::collection::vec(face_record(), 1..4)) {
        let bytes = iso19794_5::encode(&recs);
        prop_assert_eq!(iso19794_5::decode(&bytes).unwrap(), recs);
    }

    #[test]
    fn iris_round_trip(recs in proptest::collection::vec(iris_record(), 1..4)) {
        let bytes = iso19794_6::encode(&recs);
        prop_assert_eq!(iso19794_6::decode(&bytes).unwrap(), recs);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = iso19794_4::decode(&bytes);
        let _ = iso19794_5::decode(&bytes);
        let _ = iso19794_6::decode(&bytes);
    }

    #[test]
    fn corrupted_finger_records_error_or_decode(
        recs in proptest::collection::vec(finger_record(), 1..3),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut bytes = iso19794_4::encode(&recs);
        for (at, v) in flips {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        let _ = iso19794_4::decode(&bytes);
        let cut = cut % bytes.len();
        prop_assert!(iso19794_4::decode(&bytes[..cut]).is_err());
    }

    #[test]
    fn corrupted_face_and_iris_records_never_panic(
        face in face_record(),
        iris in iris_record(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut f = iso19794_5::encode(&[face]);
        let mut i = iso19794_6::encode(&[iris]);
        for (at, v) in flips {
            let n = f.len();
            f[at % n] = v;
            let n = i.len();
            i[at % n] = v;
        }
        let _ = iso19794_5::decode(&f);
        let _ = iso19794_6::decode(&i);
    }

    #[test]
    fn decoding_pixels_of_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), w in 1u16..100, h in 1u16..100) {
        for compression in [ImageCompression::Png, ImageCompression::Jpeg, ImageCompression::Uncompressed, ImageCompression::Wsq] {
            let rec = FingerImageRecord { position: FingerPosition::Unknown, width: w, height: h, ppi: 500, compression, quality: 0, data: data.clone() };
            let _ = rec.to_gray();
        }
    }
}

#[test]
fn real_print_survives_a_record_round_trip() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/p1_1.png");
    let img = image::open(path).expect("shared test print").into_luma8();
    let rec = FingerImageRecord::from_gray(FingerPosition::RightIndex, &img, 500, 50).unwrap();
    let bytes = iso19794_4::encode(&[rec]);
    let back = iso19794_4::decode(&bytes).unwrap();
    assert_eq!(back[0].to_gray().unwrap(), img);
}
