//! The printable card (`<RID>.card.pdf`) written beside the credential: the PDF's structure (cross-reference
//! table, catalog, page tree, page, resources, streams of the declared length), its text, the photo from the
//! packet's face image, and the QR code decoded back from the embedded image with `rqrr`, then verified by the
//! `tessera-server verify` binary with the issuer's public key.

use std::collections::BTreeMap;
use std::process::Command;

use tessera_packet::manifest::Decision;
use tessera_packet::types::BioAttribute;
use tessera_packet::wire::PacketStatus;

use crate::common::{Backend, TestServer, sample_country};
use crate::flow::{self, CAPTURED, Resident};
use crate::pipeline::{Desk, final_status, upload};

/// One indirect object: its dictionary (or whole body) text and, for a stream, its data.
#[derive(Debug)]
struct Obj {
    dict: String,
    stream: Option<Vec<u8>>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn int_after(text: &str, key: &str) -> usize {
    let at = text
        .find(key)
        .unwrap_or_else(|| panic!("{key} missing in {text}"))
        + key.len();
    text[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The object number referenced after `key` (`/Key n 0 R`).
fn ref_after(text: &str, key: &str) -> usize {
    let at = text
        .find(key)
        .unwrap_or_else(|| panic!("{key} missing in {text}"))
        + key.len();
    let rest = text[at..].trim_start();
    let mut parts = rest.split_whitespace();
    let n = parts.next().unwrap().parse().unwrap();
    assert_eq!(
        (parts.next(), parts.next().map(|r| &r[..1])),
        (Some("0"), Some("R"))
    );
    n
}

/// Parses the file through its cross-reference table: every in-use entry must point at `n 0 obj`, every
/// stream must hold exactly `/Length` bytes. Returns the objects and the trailer.
fn parse(pdf: &[u8]) -> (BTreeMap<usize, Obj>, String) {
    assert!(pdf.starts_with(b"%PDF-1."), "header");
    assert!(
        pdf.ends_with(b"%%EOF\n") || pdf.ends_with(b"%%EOF"),
        "trailer marker"
    );
    let sx = find(pdf, b"startxref").expect("startxref") + "startxref".len();
    let tail = std::str::from_utf8(&pdf[sx..]).unwrap();
    let xref_at: usize = tail.split_whitespace().next().unwrap().parse().unwrap();
    let xref = std::str::from_utf8(&pdf[xref_at..]).unwrap();
    assert!(xref.starts_with("xref"), "startxref points at the xref table");
    let mut lines = xref.lines().skip(1);
    let header: Vec<usize> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let (first, count) = (header[0], header[1]);
    let mut objs = BTreeMap::new();
    for n in first..first + count {
        let entry = lines.next().unwrap();
        let fields: Vec<&str> = entry.split_whitespace().collect();
        if fields[2] != "n" {
            continue;
        }
        let off: usize = fields[0].parse().unwrap();
        let head = format!("{n} 0 obj");
        assert!(
            pdf[off..].starts_with(head.as_bytes()),
            "object {n} at offset {off}"
        );
        let body_start = off + head.len();
        let end = body_start + find(&pdf[body_start..], b"endobj").expect("endobj");
        let body = &pdf[body_start..end];
        let obj = match find(body, b"stream\n") {
            Some(s) => {
                let dict = String::from_utf8_lossy(&body[..s]).into_owned();
                let len = int_after(&dict, "/Length");
                let data = &body[s + 7..];
                assert!(
                    data[len..].starts_with(b"\nendstream"),
                    "object {n}: /Length {len} is exact"
                );
                Obj {
                    dict,
                    stream: Some(data[..len].to_vec()),
                }
            }
            None => Obj {
                dict: String::from_utf8_lossy(body).into_owned(),
                stream: None,
            },
        };
        objs.insert(n, obj);
    }
    let trailer = xref[xref.find("trailer").expect("trailer")..].to_owned();
    (objs, trailer)
}

/// Whether a content stream shows `text`, written as a literal `(...)` string or a hex `<...>` string.
fn shows(content: &[u8], text: &[u8]) -> bool {
    let hex: String = text.iter().map(|b| format!("{b:02X}")).collect();
    find(content, text).is_some() || find(content, format!("<{hex}>").as_bytes()).is_some()
}

/// Decodes the QR code of an 8-bit grey image (one pixel per module) with `rqrr`, scaled up for the detector.
fn decode_qr(side: usize, pixels: &[u8]) -> String {
    let scale = 6;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(side * scale, side * scale, |x, y| {
        pixels[(y / scale) * side + x / scale]
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().unwrap().1
}

async fn card_flow(backend: Backend) {
    let Some(t) = TestServer::start(backend, |s| s.country_config = Some(sample_country())).await else {
        return;
    };
    let state = t.server.as_ref().unwrap().state.clone();
    let d = Desk::new(t.active_station("10001").await).await;
    // A registration with a captured face (synthetic person 5 of the device simulator's image source).
    let r = Resident::new(5, "Zoë Mensah");
    let fingers: Vec<BioAttribute> = CAPTURED.iter().map(|(a, _)| *a).collect();
    let mut c = flow::content(&d.s.machine_id, 1, &r, &fingers);
    let face = tessera_sbi::sim::default_image_source()
        .unwrap()
        .face(5, 0)
        .unwrap()
        .iso;
    let rec = c
        .biometrics
        .iter_mut()
        .find(|b| b.attribute == BioAttribute::Face)
        .unwrap();
    rec.image = face;
    rec.format = "ISO19794_5_2011".into();
    rec.quality = 80;
    rec.exception = None;
    let data = d.seal(&c, Decision::Approved);
    upload(&d.s, &c.rid, &data).await;
    let st = final_status(&d.s, &c.rid).await;
    assert_eq!(st.status, PacketStatus::Processed, "{st:?}");
    let uin = state.store.credential(&c.rid).await.unwrap().unwrap().0;

    let path = state.credentials_dir.join(format!("{}.card.pdf", c.rid));
    let pdf = std::fs::read(&path).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let (objs, trailer) = parse(&pdf);
    let catalog = &objs[&ref_after(&trailer, "/Root")];
    assert!(catalog.dict.contains("/Type /Catalog"));
    let pages = &objs[&ref_after(&catalog.dict, "/Pages")];
    assert!(pages.dict.contains("/Type /Pages") && int_after(&pages.dict, "/Count") == 1);
    let page = &objs[&ref_after(&pages.dict, "/Kids [")];
    assert!(
        page.dict.contains("/Type /Page") && page.dict.contains("/MediaBox [0 0 595 842]"),
        "{}",
        page.dict
    );
    let content = objs[&ref_after(&page.dict, "/Contents")].stream.clone().unwrap();
    // WinAnsi ë is byte 0xEB: a string with such a byte is written in hex.
    for text in [uin.as_bytes(), b"Zo\xeb Mensah", b"1990-04-12", b"IDENTITY CARD"] {
        assert!(
            shows(&content, text),
            "{:?} on the card",
            String::from_utf8_lossy(text)
        );
    }
    for font in [b"/BaseFont /Helvetica\n".as_slice(), b"/BaseFont /Helvetica-Bold"] {
        assert!(objs.values().any(|o| find(o.dict.as_bytes(), font).is_some()));
    }

    // The photo and the QR code, as the page's resources name them.
    let photo = &objs[&ref_after(&page.dict, "/Photo")];
    assert!(photo.dict.contains("/Subtype /Image") && photo.dict.contains("/DeviceRGB"));
    let (pw, ph) = (
        int_after(&photo.dict, "/Width"),
        int_after(&photo.dict, "/Height"),
    );
    let rgb = miniz_oxide::inflate::decompress_to_vec_zlib(photo.stream.as_ref().unwrap()).unwrap();
    assert_eq!(rgb.len(), pw * ph * 3);
    assert!(
        rgb.iter().any(|v| *v != rgb[0]),
        "a real picture, not a flat fill"
    );
    let qr = &objs[&ref_after(&page.dict, "/Qr")];
    assert!(
        qr.dict.contains("/DeviceGray") && qr.dict.contains("/FlateDecode"),
        "{}",
        qr.dict
    );
    let side = int_after(&qr.dict, "/Width");
    assert_eq!(int_after(&qr.dict, "/Height"), side);
    let pixels = miniz_oxide::inflate::decompress_to_vec_zlib(qr.stream.as_ref().unwrap()).unwrap();
    assert_eq!(pixels.len(), side * side);
    let payload = decode_qr(side, &pixels);
    assert_eq!(
        payload,
        std::fs::read_to_string(state.credentials_dir.join(format!("{}.qr.txt", c.rid)))
            .unwrap()
            .trim()
    );

    // What a verifier does with the scanned QR: `tessera-server verify` with the issuer's public key.
    let scanned = t.dir.path().join("scanned.txt");
    std::fs::write(&scanned, &payload).unwrap();
    let key = state.credentials_dir.join("issuer-public-key.txt");
    let verify = |file: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_tessera-server"))
            .arg("verify")
            .arg(file)
            .arg("--issuer-key")
            .arg(&key)
            .env_clear()
            .output()
            .unwrap()
    };
    let out = verify(&scanned);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("VALID credential for UIN {uin}")
    );
    // A forged card (another UIN in the record) does not verify.
    let (head, sig) = payload.rsplit_once('.').unwrap();
    let body = head.strip_prefix("TSR1.").unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let record = String::from_utf8(b64.decode(body).unwrap()).unwrap();
    let forged = record.replace(&uin, "2999999999");
    std::fs::write(&scanned, format!("TSR1.{}.{sig}", b64.encode(forged))).unwrap();
    let out = verify(&scanned);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("INVALID"));
    t.stop().await;
}

#[tokio::test]
async fn the_card_pdf_parses_shows_the_resident_and_its_qr_verifies_offline_sqlite() {
    card_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_card_without_a_face_image_still_carries_a_verifiable_qr() {
    let card = tessera_server::card::CardData {
        full_name: "李 Wei".into(),
        uin: "2749305816".into(),
        date_of_birth: "2001-01-01".into(),
        gender: "MLE".into(),
        issuer: "urn:tessera:issuer:0011223344556677".into(),
        issued: "2026-11-29".into(),
        qr_payload: "TSR1.e30.c2ln".into(),
    };
    let pdf = tessera_server::card::card_pdf(&card, None).unwrap();
    let (objs, _) = parse(&pdf);
    let content = objs
        .values()
        .find(|o| o.stream.is_some() && !o.dict.contains("/Image"))
        .and_then(|o| o.stream.clone())
        .unwrap();
    assert!(find(&content, b"(no photo)").is_some());
    assert!(
        find(&content, b"(? Wei)").is_some(),
        "characters outside WinAnsi print as ?"
    );
    let qr = objs.values().find(|o| o.dict.contains("/DeviceGray")).unwrap();
    let side = int_after(&qr.dict, "/Width");
    let pixels = miniz_oxide::inflate::decompress_to_vec_zlib(qr.stream.as_ref().unwrap()).unwrap();
    assert_eq!(decode_qr(side, &pixels), "TSR1.e30.c2ln");
    assert!(
        !objs.values().any(|o| o.dict.contains("/DeviceRGB")),
        "no photo object"
    );
}
