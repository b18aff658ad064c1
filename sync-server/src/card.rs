//! The printable identity card: a one-page PDF (A4) with an ID-1 card area (85.6 × 54 mm, a bank card's
//! size) holding the resident's photo, name, UIN and date of birth, the issuer, and a QR code that carries the
//! compact signed record of [`crate::credential::qr_payload`], which `tessera-server verify` (or any offline
//! verifier with the issuer's public key) checks. Written by the pipeline beside the credential as
//! `<data_dir>/credentials/<RID>.card.pdf` (mode 0600).
//!
//! The PDF is built with `pdf-writer`: the standard Helvetica font (WinAnsi; characters outside it print as
//! `?`), the photo as a Flate-compressed RGB image (the packet's ISO/IEC 19794-5 face image, scaled to fit),
//! and the QR code as a Flate-compressed 8-bit grey image with one pixel per module and a 4-module quiet
//! zone, drawn without interpolation so it prints sharp at any size.

use pdf_writer::{Content, Filter, Name, Pdf, Rect, Ref, Str};

/// What the card shows.
#[derive(Clone, PartialEq, Eq)]
pub struct CardData {
    /// Full name (primary language).
    pub full_name: String,
    /// UIN.
    pub uin: String,
    /// Date of birth `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// Gender code.
    pub gender: String,
    /// Who issued it (e.g. the issuer id of the credential).
    pub issuer: String,
    /// Issue date `YYYY-MM-DD`.
    pub issued: String,
    /// The QR payload (`TSR1.` ...).
    pub qr_payload: String,
}

impl std::fmt::Debug for CardData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardData").finish_non_exhaustive()
    }
}

/// Why a card could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// The QR payload does not fit a QR code.
    #[error("the QR payload cannot be encoded: {0}")]
    Qr(String),
}

/// Millimetres to PDF points.
fn mm(v: f32) -> f32 {
    v * 72.0 / 25.4
}

/// Quiet zone around the QR code, in modules.
pub const QR_QUIET_ZONE: usize = 4;

/// The QR code of `payload` as an 8-bit grey image, one pixel per module, with a 4-module white quiet zone:
/// (side in pixels, pixels row by row, 0 = black, 255 = white).
pub fn qr_image(payload: &str) -> Result<(usize, Vec<u8>), CardError> {
    let code = qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| CardError::Qr(e.to_string()))?;
    let n = code.width();
    let side = n + 2 * QR_QUIET_ZONE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark
            && let Some(p) = pixels.get_mut((i / n + QR_QUIET_ZONE) * side + i % n + QR_QUIET_ZONE)
        {
            *p = 0;
        }
    }
    Ok((side, pixels))
}

/// The resident's photo for the card: the first image of an ISO/IEC 19794-5 face record, scaled to fit
/// 240 × 300 pixels: (width, height, RGB bytes). `None` when there is no face image or it does not decode.
pub fn photo_from_face_record(record: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    let face = tessera_biometrics::iso19794_5::decode(record).ok()?;
    let rgb = face.first()?.to_rgb().ok()?;
    let scaled = image::imageops::thumbnail(&rgb, 240.min(rgb.width()), 300.min(rgb.height()));
    let (w, h) = (scaled.width(), scaled.height());
    (w > 0 && h > 0).then(|| (w, h, scaled.into_raw()))
}

/// A string in the standard fonts' WinAnsi encoding (Latin-1 for the letters residents' names use); other
/// characters become `?`.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match u32::from(c) {
            0x20..=0x7e | 0xa0..=0xff => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            _ => b'?',
        })
        .collect()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

/// Builds the card PDF. `photo`: (width, height, RGB bytes), see [`photo_from_face_record`].
pub fn card_pdf(card: &CardData, photo: Option<&(u32, u32, Vec<u8>)>) -> Result<Vec<u8>, CardError> {
    let catalog = Ref::new(1);
    let pages = Ref::new(2);
    let page = Ref::new(3);
    let contents = Ref::new(4);
    let font = Ref::new(5);
    let bold = Ref::new(6);
    let qr_ref = Ref::new(7);
    let photo_ref = Ref::new(8);

    let mut pdf = Pdf::new();
    pdf.document_info(Ref::new(9))
        .title(pdf_writer::TextStr("Identity card"))
        .producer(pdf_writer::TextStr("Tessera"));
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page]).count(1);
    let a4 = Rect::new(0.0, 0.0, 595.0, 842.0);
    {
        let mut p = pdf.page(page);
        p.media_box(a4).parent(pages).contents(contents);
        let mut res = p.resources();
        res.fonts().pair(Name(b"F1"), font).pair(Name(b"F2"), bold);
        let mut xo = res.x_objects();
        xo.pair(Name(b"Qr"), qr_ref);
        if photo.is_some() {
            xo.pair(Name(b"Photo"), photo_ref);
        }
    }
    for (r, name) in [(font, &b"Helvetica"[..]), (bold, &b"Helvetica-Bold"[..])] {
        pdf.type1_font(r)
            .base_font(Name(name))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }

    let (side, pixels) = qr_image(&card.qr_payload)?;
    let side_i = i32::try_from(side).map_err(|e| CardError::Qr(e.to_string()))?;
    {
        let packed = deflate(&pixels);
        let mut img = pdf.image_xobject(qr_ref, &packed);
        img.width(side_i)
            .height(side_i)
            .bits_per_component(8)
            .interpolate(false);
        img.color_space().device_gray();
        img.filter(Filter::FlateDecode);
    }
    if let Some((w, h, rgb)) = photo {
        let packed = deflate(rgb);
        let mut img = pdf.image_xobject(photo_ref, &packed);
        img.width(i32::try_from(*w).unwrap_or(1))
            .height(i32::try_from(*h).unwrap_or(1))
            .bits_per_component(8);
        img.color_space().device_rgb();
        img.filter(Filter::FlateDecode);
    }

    // The card: ID-1 (85.6 × 54 mm), 20 mm from the top-left corner of the page.
    let (cw, ch) = (mm(85.6), mm(54.0));
    let (x0, y0) = (mm(20.0), 842.0 - mm(20.0) - ch);
    let mut c = Content::new();
    c.set_line_width(0.5);
    c.set_stroke_gray(0.4);
    c.rect(x0, y0, cw, ch);
    c.stroke();
    // Header band.
    c.set_fill_gray(0.9);
    c.rect(x0, y0 + ch - mm(9.0), cw, mm(9.0));
    c.fill_nonzero();
    c.set_fill_gray(0.0);
    let text = |c: &mut Content, font: &[u8], size: f32, x: f32, y: f32, s: &str| {
        c.begin_text();
        c.set_font(Name(font), size);
        c.next_line(x, y);
        c.show(Str(&win_ansi(s)));
        c.end_text();
    };
    text(
        &mut c,
        b"F2",
        9.0,
        x0 + mm(3.0),
        y0 + ch - mm(6.0),
        "IDENTITY CARD / CARTE D'IDENTITE",
    );
    // Photo (left), 22 × 27.5 mm.
    let (pw, ph) = (mm(22.0), mm(27.5));
    let (px, py) = (x0 + mm(3.0), y0 + ch - mm(12.0) - ph);
    match photo {
        Some((w, h, _)) => {
            // Keep the aspect ratio inside the frame.
            let (w, h) = (*w as f32, *h as f32);
            let s = (pw / w).min(ph / h);
            let (dw, dh) = (w * s, h * s);
            c.save_state();
            c.transform([dw, 0.0, 0.0, dh, px + (pw - dw) / 2.0, py + (ph - dh) / 2.0]);
            c.x_object(Name(b"Photo"));
            c.restore_state();
        }
        None => {
            c.rect(px, py, pw, ph);
            c.stroke();
            text(&mut c, b"F1", 6.0, px + mm(5.0), py + ph / 2.0, "no photo");
        }
    }
    // Facts (middle).
    let tx = px + pw + mm(3.0);
    let mut ty = y0 + ch - mm(14.0);
    for (label, value) in [
        ("Name / Nom", card.full_name.as_str()),
        ("UIN", card.uin.as_str()),
        ("Date of birth / Date de naissance", card.date_of_birth.as_str()),
        ("Gender / Sexe", card.gender.as_str()),
    ] {
        text(&mut c, b"F1", 5.0, tx, ty, label);
        text(&mut c, b"F2", 8.0, tx, ty - mm(3.2), value);
        ty -= mm(7.6);
    }
    // QR (right), 24 mm square including its quiet zone.
    let q = mm(24.0);
    c.save_state();
    c.transform([q, 0.0, 0.0, q, x0 + cw - q - mm(2.0), y0 + mm(6.0)]);
    c.x_object(Name(b"Qr"));
    c.restore_state();
    // Issuer (bottom).
    text(
        &mut c,
        b"F1",
        4.5,
        x0 + mm(3.0),
        y0 + mm(2.5),
        &format!("Issued {} by {}", card.issued, card.issuer),
    );
    // Below the card: how to verify it.
    text(
        &mut c,
        b"F1",
        9.0,
        x0,
        y0 - mm(10.0),
        "The QR code holds a record signed by the issuer; verify it offline with",
    );
    text(
        &mut c,
        b"F1",
        9.0,
        x0,
        y0 - mm(15.0),
        "tessera-server verify <file with the QR text> --issuer-key <issuer public key>",
    );
    pdf.stream(contents, &c.finish());
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_image_has_a_quiet_zone_and_finder_patterns() {
        let (side, px) = qr_image("TSR1.abc.def").unwrap();
        assert_eq!(px.len(), side * side);
        // The quiet zone is white; the top-left finder pattern starts dark right after it.
        assert!(px.iter().take(side * QR_QUIET_ZONE).all(|p| *p == 255));
        assert_eq!(px[QR_QUIET_ZONE * side + QR_QUIET_ZONE], 0);
    }

    #[test]
    fn win_ansi_keeps_latin1_and_replaces_the_rest() {
        assert_eq!(win_ansi("Zoë Ngô"), b"Zo\xeb Ng\xf4".to_vec());
        assert_eq!(win_ansi("李"), b"?".to_vec());
    }
}
