//! Every byte of a sealed, signed-off packet is modified in turn; each modification must be rejected
//! with the error that belongs to the region it hit.

use crate::{Keys, check, small_signed_packet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    Header,
    Section,
    Manifest,
    Signature,
    SignOff,
    Padding,
    End,
}

/// Splits the container into regions by walking its tar headers.
fn regions(bytes: &[u8]) -> Vec<(std::ops::Range<usize>, Region, String)> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let h = &bytes[pos..pos + 512];
        if h.iter().all(|b| *b == 0) {
            out.push((pos..bytes.len(), Region::End, "end".into()));
            return out;
        }
        let name = String::from_utf8(h[..100].iter().take_while(|b| **b != 0).copied().collect()).unwrap();
        let size_field = std::str::from_utf8(&h[124..135]).unwrap();
        let size = usize::from_str_radix(size_field, 8).unwrap();
        out.push((pos..pos + 512, Region::Header, name.clone()));
        let data = pos + 512;
        let region = match name.as_str() {
            "manifest.json" => Region::Manifest,
            "manifest.sig" => Region::Signature,
            n if n.starts_with("signoff-") => Region::SignOff,
            _ => Region::Section,
        };
        out.push((data..data + size, region, name.clone()));
        let padded = size.div_ceil(512) * 512;
        if padded > size {
            out.push((data + size..data + padded, Region::Padding, name));
        }
        pos = data + padded;
    }
}

fn allowed(region: Region) -> &'static [&'static str] {
    match region {
        Region::Header => &["bad_header"],
        Region::Section => &["hash_mismatch"],
        // A flip inside the JSON either breaks its syntax or changes a value the signature covers.
        Region::Manifest => &[
            "malformed_manifest",
            "bad_signature",
            "unsupported_version",
            "inconsistent",
        ],
        Region::Signature => &["bad_signature", "wrong_machine_key"],
        Region::SignOff => &["malformed_manifest", "bad_signature"],
        Region::Padding => &["non_zero_padding"],
        // The first end-of-archive block, once non-zero, is read as a (malformed) header.
        Region::End => &["non_zero_padding", "bad_header"],
    }
}

#[test]
fn every_byte_flip_is_rejected_with_the_error_of_its_region() {
    let k = Keys::default();
    let (_, bytes) = small_signed_packet(&k);
    let regions = regions(&bytes);
    let kinds: Vec<Region> = regions.iter().map(|r| r.1).collect();
    for want in [
        Region::Header,
        Region::Section,
        Region::Manifest,
        Region::Signature,
        Region::SignOff,
        Region::Padding,
        Region::End,
    ] {
        assert!(kinds.contains(&want), "layout lacks {want:?}");
    }
    let mut tested = 0;
    for (range, region, name) in &regions {
        for i in range.clone() {
            let xors: &[u8] = if i % 3 == 0 { &[0x01, 0x80] } else { &[0x01] };
            for &xor in xors {
                let mut t = bytes.clone();
                t[i] ^= xor;
                let err = match check(&t, &k) {
                    Ok(_) => panic!("flip of byte {i} (^{xor:#x}) in {region:?} of {name} was accepted"),
                    Err(e) => e,
                };
                assert!(
                    allowed(*region).contains(&err.kind()),
                    "flip of byte {i} in {region:?} of {name}: got {} ({err})",
                    err.kind()
                );
                tested += 1;
            }
        }
    }
    assert_eq!(tested, bytes.len() + bytes.len().div_ceil(3));
}

#[test]
fn swapped_sections_are_detected() {
    let k = Keys::default();
    let (_, bytes) = small_signed_packet(&k);
    let r = regions(&bytes);
    // Swap the evidence and optional age files (both data regions), keeping headers in place: the
    // container sizes no longer match the manifest, or the hashes do not.
    let ev = r
        .iter()
        .find(|x| x.2 == "evidence.age" && x.1 == Region::Section)
        .unwrap()
        .0
        .clone();
    let op = r
        .iter()
        .find(|x| x.2 == "optional.age" && x.1 == Region::Section)
        .unwrap()
        .0
        .clone();
    let mut t = bytes.clone();
    let n = ev.len().min(op.len());
    let (a, b) = (
        bytes[ev.start..ev.start + n].to_vec(),
        bytes[op.start..op.start + n].to_vec(),
    );
    t[ev.start..ev.start + n].copy_from_slice(&b);
    t[op.start..op.start + n].copy_from_slice(&a);
    assert_eq!(check(&t, &k).unwrap_err().kind(), "hash_mismatch");
}

#[test]
fn truncation_at_every_block_is_reported() {
    let k = Keys::default();
    let (_, bytes) = small_signed_packet(&k);
    for cut in (0..bytes.len()).step_by(97) {
        let e = check(&bytes[..cut], &k).unwrap_err();
        assert!(
            ["truncated", "non_zero_padding", "unexpected_entry"].contains(&e.kind()),
            "cut at {cut}: {e}"
        );
    }
}

#[test]
fn appended_garbage_is_rejected() {
    let k = Keys::default();
    let (_, mut bytes) = small_signed_packet(&k);
    bytes.extend_from_slice(b"trailing garbage");
    assert_eq!(check(&bytes, &k).unwrap_err().kind(), "non_zero_padding");
}

#[test]
fn oversized_declared_sizes_are_refused_without_allocating() {
    let k = Keys::default();
    let (_, bytes) = small_signed_packet(&k);
    // Rewrite the manifest.json header to claim 8 GiB, with a valid checksum.
    let r = regions(&bytes);
    let hdr = r
        .iter()
        .find(|x| x.2 == "manifest.json" && x.1 == Region::Header)
        .unwrap()
        .0
        .start;
    let mut t = bytes.clone();
    t[hdr + 124..hdr + 136].copy_from_slice(b"77777777777\0");
    t[hdr + 148..hdr + 156].copy_from_slice(b"        ");
    let sum: u32 = t[hdr..hdr + 512].iter().map(|b| u32::from(*b)).sum();
    t[hdr + 148..hdr + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    assert_eq!(check(&t, &k).unwrap_err().kind(), "truncated");

    let limits = tessera_packet::Limits {
        max_packet: 1024,
        ..Default::default()
    };
    let e = tessera_packet::SealedPacket::read_with_limits(std::io::Cursor::new(&bytes), limits).unwrap_err();
    assert_eq!(e.kind(), "too_large");
}

#[test]
fn forged_signoff_with_other_key_is_caught() {
    use tessera_packet::{Decision, SignOff, SignOffRole};
    let k = Keys::default();
    let (content, bytes) = small_signed_packet(&k);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.tpkt");
    std::fs::write(&path, &bytes).unwrap();
    // A sign-off over another packet's digest cannot be appended.
    let s = SignOff::create(
        SignOffRole::Supervisor,
        "sup01",
        Decision::Approved,
        content.created_at,
        &[0u8; 32],
        &k.officer,
    )
    .unwrap();
    let e = tessera_packet::append_signoff(&path, &s).unwrap_err();
    assert_eq!(e.kind(), "bad_signature");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a refused sign-off must not touch the file"
    );
}
