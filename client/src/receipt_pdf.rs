//! The acknowledgement receipt as a PDF (A4, one page), written by hand: no system tools, no PDF crate.
//!
//! Content: the title, the RID in digits and as a QR code (an 8-bit grey image XObject with one pixel per
//! QR module and a 4-module quiet zone, drawn 170 pt wide: viewers scale it without interpolation), the
//! process, the resident's name in the entry languages, the date and the center. No biometric data.
//!
//! Text uses the standard Helvetica and Courier fonts with `WinAnsiEncoding`, so Latin-1 characters (é, ç,
//! ü, ...) print; any other character prints as `?` (the HTML receipt shows every script). The file is
//! uncompressed PDF 1.4 with a classic cross-reference table.

use std::fmt::Write as _;

use qrcode::{Color, QrCode};
use tessera_packet::ids::CenterId;
use tessera_packet::types::PacketContent;

use crate::error::{Result, StationError};
use crate::masterdata::MasterData;
use crate::receipt::ReceiptText;

/// Quiet zone around the QR code, in modules.
const QUIET: usize = 4;

/// A PDF string literal in WinAnsi bytes: `(` ... `)` with `\`, `(` and `)` escaped; characters outside
/// Latin-1 become `?`, control characters a space.
fn pdf_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'(');
    for c in s.chars() {
        let b = match u32::from(c) {
            0x20..=0x7e => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            0xa0..=0xff => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            0x2019 => 0x92,
            0x2018 => 0x91,
            0x201c => 0x93,
            0x201d => 0x94,
            0x2013 => 0x96,
            0x2014 => 0x97,
            0x20ac => 0x80,
            0x00..=0x1f => b' ',
            _ => b'?',
        };
        if matches!(b, b'\\' | b'(' | b')') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b')');
}

/// The QR code of `data` as grey pixels (0 black, 255 white), one per module, with the quiet zone.
fn qr_pixels(data: &str) -> Result<(usize, Vec<u8>)> {
    let code = QrCode::new(data.as_bytes()).map_err(|e| StationError::Packet {
        rid: data.into(),
        detail: format!("QR code: {e}"),
    })?;
    let n = code.width();
    let side = n + 2 * QUIET;
    let mut px = vec![255u8; side * side];
    for (i, c) in code.to_colors().iter().enumerate() {
        if *c == Color::Dark {
            let (y, x) = (i / n + QUIET, i % n + QUIET);
            if let Some(p) = px.get_mut(y * side + x) {
                *p = 0;
            }
        }
    }
    Ok((side, px))
}

struct Writer {
    buf: Vec<u8>,
    offsets: Vec<usize>,
}

impl Writer {
    fn object(&mut self, body: &[u8]) {
        self.offsets.push(self.buf.len());
        let n = self.offsets.len();
        self.buf.extend_from_slice(format!("{n} 0 obj\n").as_bytes());
        self.buf.extend_from_slice(body);
        self.buf.extend_from_slice(b"\nendobj\n");
    }

    fn stream(&mut self, dict: &str, data: &[u8]) {
        let mut body = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(b"\nendstream");
        self.object(&body);
    }
}

fn text_line(out: &mut Vec<u8>, font: &str, size: u32, x: u32, y: u32, s: &str) {
    out.extend_from_slice(format!("BT /{font} {size} Tf {x} {y} Td ").as_bytes());
    pdf_string(s, out);
    out.extend_from_slice(b" Tj ET\n");
}

/// Renders the receipt of a sealed registration as PDF bytes.
pub fn pdf(md: &MasterData, content: &PacketContent, center: &CenterId) -> Result<Vec<u8>> {
    let t = ReceiptText::new(md, content, center);
    let (side, pixels) = qr_pixels(&t.rid)?;

    let mut page = Vec::new();
    let mut y = 780;
    text_line(&mut page, "F2", 18, 50, y, &t.title);
    // The QR code, 170 pt square, below the title.
    page.extend_from_slice(format!("q 170 0 0 170 50 {} cm /Im1 Do Q\n", y - 200).as_bytes());
    y -= 230;
    text_line(&mut page, "F1", 11, 50, y, &t.rid_label);
    y -= 22;
    text_line(&mut page, "F3", 18, 50, y, &t.rid);
    y -= 30;
    for line in [&t.process, &t.names.join(" / "), &t.date, &t.center_name] {
        text_line(&mut page, "F1", 12, 50, y, line);
        y -= 18;
    }
    y -= 12;
    for k in &t.keep {
        text_line(&mut page, "F1", 10, 50, y, k);
        y -= 14;
    }

    let mut w = Writer {
        buf: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec(),
        offsets: Vec::new(),
    };
    w.object(b"<< /Type /Catalog /Pages 2 0 R >>");
    w.object(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    w.object(
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R \
/Resources << /Font << /F1 5 0 R /F2 6 0 R /F3 7 0 R >> /XObject << /Im1 8 0 R >> >> >>",
    );
    w.stream("", &page);
    for base in ["Helvetica", "Helvetica-Bold", "Courier-Bold"] {
        w.object(
            format!("<< /Type /Font /Subtype /Type1 /BaseFont /{base} /Encoding /WinAnsiEncoding >>")
                .as_bytes(),
        );
    }
    w.stream(
        &format!(
            "/Type /XObject /Subtype /Image /Width {side} /Height {side} /ColorSpace /DeviceGray /BitsPerComponent 8 /Interpolate false"
        ),
        &pixels,
    );
    let mut info = b"<< /Producer (Tessera station) /Title ".to_vec();
    pdf_string(&t.title, &mut info);
    info.extend_from_slice(b" >>");
    w.object(&info);

    let xref_at = w.buf.len();
    let count = w.offsets.len() + 1;
    let mut xref = format!("xref\n0 {count}\n0000000000 65535 f \n");
    for off in &w.offsets {
        let _ = writeln!(xref, "{off:010} 00000 n ");
    }
    let _ = write!(
        xref,
        "trailer\n<< /Size {count} /Root 1 0 R /Info {count_info} 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
        count_info = count - 1
    );
    w.buf.extend_from_slice(xref.as_bytes());
    Ok(w.buf)
}
