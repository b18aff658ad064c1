//! The PDF acknowledgement receipt: a structurally valid PDF (checked by a small reader here: header,
//! cross-reference offsets, stream lengths), with the RID and the names as text, and a QR code image that
//! an independent decoder (`rqrr`) reads back as the RID. No biometric records inside.

use base64::Engine;

use crate::common;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn number_after(dict: &str, key: &str) -> usize {
    let at = dict.find(key).unwrap_or_else(|| panic!("{key} in {dict}")) + key.len();
    dict[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The objects of a PDF with a classic xref table: (dictionary text, stream bytes) by object number.
fn objects(pdf: &[u8]) -> Vec<(String, Option<Vec<u8>>)> {
    assert!(pdf.starts_with(b"%PDF-1."), "header");
    assert!(pdf.ends_with(b"%%EOF\n"), "trailer end");
    let sx = find(pdf, b"startxref\n").expect("startxref");
    let xref_at: usize = std::str::from_utf8(&pdf[sx + 10..])
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let table = std::str::from_utf8(&pdf[xref_at..]).expect("xref is ASCII");
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("xref"));
    let header = lines.next().unwrap();
    let count: usize = header.split(' ').nth(1).unwrap().parse().unwrap();
    assert_eq!(lines.next(), Some("0000000000 65535 f "));
    let trailer_at = table.find("trailer").unwrap();
    assert_eq!(number_after(&table[trailer_at..], "/Size"), count);
    assert!(table[trailer_at..].contains("/Root 1 0 R"));
    let mut out = Vec::new();
    for n in 1..count {
        let entry = lines.next().unwrap();
        assert_eq!(entry.len(), 19, "xref entries are 20 bytes with the newline");
        assert!(entry.ends_with(" 00000 n "));
        let off: usize = entry[..10].parse().unwrap();
        let head = format!("{n} 0 obj\n");
        assert!(
            pdf[off..].starts_with(head.as_bytes()),
            "object {n} at its xref offset"
        );
        let body = &pdf[off + head.len()..];
        let end = find(body, b"\nendobj\n").expect("endobj");
        let body = &body[..end];
        match find(body, b"stream\n") {
            Some(s) if body.starts_with(b"<<") => {
                let dict = String::from_utf8(body[..s].to_vec()).unwrap();
                let len = number_after(&dict, "/Length");
                let data = &body[s + 7..];
                assert_eq!(
                    &data[len..],
                    b"\nendstream",
                    "stream {n} has exactly /Length bytes"
                );
                out.push((dict, Some(data[..len].to_vec())));
            }
            _ => out.push((String::from_utf8_lossy(body).into_owned(), None)),
        }
    }
    assert!(out[0].0.contains("/Type /Catalog"));
    out
}

#[test]
fn the_pdf_receipt_parses_shows_the_rid_and_its_qr_decodes_to_the_rid() {
    let (_env, mut st, _) = common::init_station();
    let id = common::complete_adult_draft(&mut st);
    let sealed = st.seal_draft(id).unwrap();
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(&sealed.receipt_pdf_base64)
        .unwrap();
    let objs = objects(&pdf);

    // Text: the RID, the name in both languages, the bilingual title (WinAnsi: é is 0xE9).
    let page = objs
        .iter()
        .find(|(d, s)| s.is_some() && !d.contains("/Image"))
        .and_then(|(_, s)| s.clone())
        .expect("page content stream");
    assert!(find(&page, format!("({})", sealed.rid).as_bytes()).is_some());
    assert!(find(&page, b"(Amina Diallo / Amina Diallo)").is_some());
    assert!(find(&page, b"Accus\xe9 d'enregistrement").is_some());
    assert!(find(&page, b"Hillborough Central Registration Center").is_some());

    // The QR code image decodes to the RID.
    let (dict, data) = objs
        .iter()
        .find(|(d, _)| d.contains("/Subtype /Image"))
        .expect("QR image");
    let (w, h) = (number_after(dict, "/Width"), number_after(dict, "/Height"));
    assert!(dict.contains("/ColorSpace /DeviceGray") && dict.contains("/BitsPerComponent 8"));
    let data = data.as_ref().unwrap();
    assert_eq!(data.len(), w * h);
    let scale = 8u32;
    assert_eq!(w, h);
    let side = w * scale as usize;
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(side, h * scale as usize, |x, y| {
        data[(y / scale as usize) * w + x / scale as usize]
    });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, text) = grids[0].decode().unwrap();
    assert_eq!(text, sealed.rid);

    // No biometric records: no ISO 19794 finger/face/iris record magic, and small.
    for magic in [&b"FIR\0"[..], b"FAC\0", b"IIR\0"] {
        assert!(find(&pdf, magic).is_none());
    }
    assert!(pdf.len() < 16 * 1024, "{} bytes", pdf.len());
}
