use std::io::Cursor;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use tessera_packet::ids::{CenterId, MachineId, Rid};
use tessera_packet::sample::{SampleSize, sample_content};
use tessera_packet::types::{BioAttribute, BiometricRecord, Document};
use tessera_packet::{PacketContent, SealedPacket};

use crate::{Keys, check, seal_bytes};

#[test]
fn typical_packet_round_trips_and_verifies() {
    let k = Keys::default();
    let content = sample_content(7, SampleSize::Typical);
    let bytes = seal_bytes(&content, &k);
    assert_eq!(check(&bytes, &k).unwrap(), content);
}

#[test]
fn several_recipients_each_can_open() {
    let k = Keys::default();
    let second = tessera_packet::keys::generate_packet_identity();
    let content = sample_content(1, SampleSize::Small);
    let mut out = Cursor::new(Vec::new());
    let m = tessera_packet::seal(
        &content,
        &[k.server.to_public(), second.to_public()],
        &k.machine,
        &mut out,
    )
    .unwrap();
    assert_eq!(m.recipients.len(), 2);
    let bytes = out.into_inner();
    for id in [&k.server, &second] {
        let mut p = SealedPacket::read(Cursor::new(&bytes)).unwrap();
        assert_eq!(p.open(id).unwrap(), content);
    }
}

#[test]
fn wrong_server_key_says_which_recipients() {
    let k = Keys::default();
    let bytes = seal_bytes(&sample_content(1, SampleSize::Small), &k);
    let other = tessera_packet::keys::generate_packet_identity();
    let mut p = SealedPacket::read(Cursor::new(bytes)).unwrap();
    let e = p.open(&other).unwrap_err();
    assert_eq!(e.kind(), "decrypt_failed");
    assert!(e.to_string().contains(&k.server.to_public().to_string()), "{e}");
}

#[test]
fn wrong_machine_key_is_named() {
    let k = Keys::default();
    let bytes = seal_bytes(&sample_content(1, SampleSize::Small), &k);
    let other = tessera_packet::keys::generate_signing_key().unwrap();
    let mut p = SealedPacket::read(Cursor::new(bytes)).unwrap();
    let e = p.verify(&other.verifying_key()).unwrap_err();
    assert_eq!(e.kind(), "wrong_machine_key");
    assert!(e.to_string().contains("machine 10077"), "{e}");
}

#[test]
fn open_to_dir_streams_every_file() {
    let k = Keys::default();
    let content = sample_content(2, SampleSize::Small);
    let bytes = seal_bytes(&content, &k);
    let dir = tempfile::tempdir().unwrap();
    let mut p = SealedPacket::read(Cursor::new(bytes)).unwrap();
    p.open_to_dir(&k.server, dir.path()).unwrap();
    let img = std::fs::read(dir.path().join("id/bio/rightIndex.iso")).unwrap();
    let rec = content
        .biometrics
        .iter()
        .find(|b| b.attribute == BioAttribute::RightIndex)
        .unwrap();
    assert_eq!(img, rec.image);
    let doc = std::fs::read(dir.path().join("evidence/doc/proofOfAddress")).unwrap();
    assert_eq!(doc, content.evidence[0].content);
    assert!(dir.path().join("manifest.json").exists());
    // A second open into the same folder is refused rather than mixing two packets.
    let mut p = SealedPacket::read(Cursor::new(seal_bytes(&content, &k))).unwrap();
    assert_eq!(
        p.open_to_dir(&k.server, dir.path()).unwrap_err().kind(),
        "invalid_input"
    );
}

#[test]
fn seal_rejects_bad_content_clearly() {
    let k = Keys::default();
    let mut c = sample_content(1, SampleSize::Small);
    c.evidence[1].name = "../etc/passwd".into();
    let e =
        tessera_packet::seal(&c, &[k.server.to_public()], &k.machine, Cursor::new(Vec::new())).unwrap_err();
    assert_eq!(e.kind(), "invalid_input");
    assert!(e.to_string().contains("document name"), "{e}");

    let mut c = sample_content(1, SampleSize::Small);
    let dup = c.biometrics[0].clone();
    c.biometrics.push(dup);
    let e =
        tessera_packet::seal(&c, &[k.server.to_public()], &k.machine, Cursor::new(Vec::new())).unwrap_err();
    assert!(
        e.to_string().contains("two biometric records for rightThumb"),
        "{e}"
    );

    let c = sample_content(1, SampleSize::Small);
    let e = tessera_packet::seal(&c, &[], &k.machine, Cursor::new(Vec::new())).unwrap_err();
    assert!(e.to_string().contains("sync the server's keys"), "{e}");
}

#[test]
fn failed_seal_to_file_leaves_nothing() {
    let k = Keys::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.tpkt");
    let mut c = sample_content(1, SampleSize::Small);
    c.evidence[0].name = String::new();
    assert!(tessera_packet::seal_to_file(&c, &[k.server.to_public()], &k.machine, &path).is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn manifest_snapshot() {
    let k = Keys::default();
    let bytes = seal_bytes(&sample_content(1, SampleSize::Small), &k);
    let p = SealedPacket::read(Cursor::new(bytes)).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(p.manifest_bytes()).unwrap();
    // Keys and ciphertexts differ per run (fresh keys, random age file keys); everything else is stable.
    v["machineKeyId"] = "[machine key id]".into();
    v["recipients"] = serde_json::json!(["[recipient]"]);
    for s in v["sections"].as_array_mut().unwrap() {
        s["ciphertextSha256"] = "[random]".into();
        s["ciphertextSize"] = "[varies: age adds a random-length grease stanza]".into();
    }
    insta::assert_json_snapshot!("manifest", v);
}

fn arb_content() -> impl Strategy<Value = PacketContent> {
    let bio = proptest::sample::subsequence(BioAttribute::ALL.to_vec(), 0..=13).prop_flat_map(|attrs| {
        let n = attrs.len();
        (
            Just(attrs),
            proptest::collection::vec(
                (
                    proptest::collection::vec(any::<u8>(), 1..2000),
                    0u8..=100,
                    any::<Option<String>>(),
                ),
                n,
            ),
        )
    });
    let docs = proptest::collection::btree_map(
        "[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}",
        proptest::collection::vec(any::<u8>(), 0..3000),
        0..4,
    );
    let identity = proptest::collection::btree_map("[a-zA-Z]{1,12}", "\\PC{0,40}", 0..8);
    (bio, docs, identity, 1u32..99_999, 0i64..2_000_000_000).prop_map(
        |((attrs, recs), docs, identity, seq, ts)| {
            let mut c = sample_content(1, SampleSize::Small);
            let at = Utc.timestamp_opt(ts, 0).unwrap();
            c.rid = Rid::new(
                &CenterId::from_number(10001).unwrap(),
                &MachineId::from_number(10077).unwrap(),
                seq,
                at,
            )
            .unwrap();
            c.created_at = at;
            c.identity = serde_json::to_value(identity).unwrap();
            c.biometrics = attrs
                .into_iter()
                .zip(recs)
                .map(|(a, (image, quality, block))| BiometricRecord {
                    attribute: a,
                    image,
                    format: "ISO19794_4_2011".into(),
                    quality,
                    retries: 1,
                    exception: None,
                    force_captured: quality < 40,
                    sbi_data_block: block,
                    device: None,
                    captured_at: at,
                })
                .collect();
            c.evidence = docs
                .into_iter()
                .map(|(name, content)| Document {
                    name,
                    category: "POA".into(),
                    doc_type: "DOC001".into(),
                    mime: "application/pdf".into(),
                    ref_number: None,
                    content,
                })
                .collect();
            c.optional = c.evidence.iter().take(1).cloned().collect();
            c
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn seal_open_round_trips_arbitrary_content(content in arb_content()) {
        let k = Keys::default();
        let bytes = seal_bytes(&content, &k);
        prop_assert_eq!(check(&bytes, &k).unwrap(), content);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_reader(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let k = Keys::default();
        prop_assert!(check(&bytes, &k).is_err());
    }

    #[test]
    fn random_corruption_is_always_detected(offset in any::<prop::sample::Index>(), xor in 1u8..=255, cut in any::<bool>()) {
        let k = Keys::default();
        let mut bytes = seal_bytes(&sample_content(4, SampleSize::Small), &k);
        let i = offset.index(bytes.len());
        if cut {
            bytes.truncate(i);
        } else {
            bytes[i] ^= xor;
        }
        prop_assert!(check(&bytes, &k).is_err());
    }
}

/// One-pass sealing with the officer's sign-off writes exactly the file that sealing and then appending
/// the sign-off writes, and a sign-off that does not sign this manifest leaves no file.
#[test]
fn seal_signed_to_file_equals_seal_then_append_signoff() {
    let k = Keys::default();
    let content = sample_content(5, SampleSize::Small);
    let dir = tempfile::tempdir().unwrap();
    let recipients = [k.server.to_public()];
    let sign = |digest: &[u8; 32]| {
        tessera_packet::SignOff::create(
            tessera_packet::SignOffRole::Officer,
            "officer01",
            tessera_packet::Decision::Approved,
            content.created_at + chrono::Duration::seconds(3),
            digest,
            &k.officer,
        )
    };
    let two = dir.path().join("two.tpkt");
    tessera_packet::seal_to_file(&content, &recipients, &k.machine, &two).unwrap();
    let digest = tessera_packet::read_file(&two).unwrap().manifest_digest();
    tessera_packet::append_signoff(&two, &sign(&digest).unwrap()).unwrap();

    let one = dir.path().join("one.tpkt");
    let mut f = |d: &[u8; 32]| sign(d);
    tessera_packet::seal_signed_to_file(&content, &recipients, &k.machine, &one, &mut f).unwrap();
    // age encryption is randomised, so compare what the two files say, not their bytes.
    let mut p1 = tessera_packet::read_file(&one).unwrap();
    let mut p2 = tessera_packet::read_file(&two).unwrap();
    p1.verify(&k.machine.verifying_key()).unwrap();
    p2.verify(&k.machine.verifying_key()).unwrap();
    assert_eq!(p1.signoffs().len(), 1);
    assert_eq!(p1.signoffs()[0].operator_id, p2.signoffs()[0].operator_id);
    p1.signoffs()[0].verify(&p1.manifest_digest()).unwrap();
    assert_eq!(p1.open(&k.server).unwrap(), content);
    assert_eq!(
        std::fs::metadata(&one).unwrap().len(),
        std::fs::metadata(&two).unwrap().len(),
        "same entries, same sizes"
    );
    drop(p1);
    // A supervisor's sign-off appends to it as to any packet.
    let digest = tessera_packet::read_file(&one).unwrap().manifest_digest();
    tessera_packet::append_signoff(&one, &sign(&digest).unwrap()).unwrap();
    assert_eq!(tessera_packet::read_file(&one).unwrap().signoffs().len(), 2);

    let bad = dir.path().join("bad.tpkt");
    let mut wrong = |_: &[u8; 32]| sign(&[7u8; 32]);
    let e =
        tessera_packet::seal_signed_to_file(&content, &recipients, &k.machine, &bad, &mut wrong).unwrap_err();
    assert_eq!(e.kind(), "bad_signature");
    assert!(!bad.exists(), "no file after a refused sign-off");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no partial file left"
    );
}
