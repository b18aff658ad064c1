//! Finger minutiae records: ISO/IEC 19794-2:2005 (`"FMR\0" " 20\0"`, 24-byte header) and ANSI/INCITS
//! 378-2004 (same identifiers, 26-byte header with CBEFF product identifier), encode and strict decode.
//!
//! | | ISO/IEC 19794-2:2005 | ANSI/INCITS 378-2004 |
//! |---|---|---|
//! | header | id, version, record length u32, capture equipment u16, width, height, x/y resolution (px/cm) u16, views u8, reserved u8 | id, version, record length u16 (or 0 then u32), CBEFF product owner u16 + type u16, capture equipment u16, width, height, x/y resolution u16, views u8, reserved u8 |
//! | view | position u8, view number (4 bits) + impression type (4 bits), quality u8, minutiae count u8 | same |
//! | minutia (6 bytes) | type (2 bits: 01 ending, 10 bifurcation, 00 other) + x (14 bits), reserved (2 bits) + y (14 bits), angle u8 in 360/256° units counter-clockwise, quality u8 | same, angle in 2° units (0-179) |
//! | extended data | length u16 (0 = none) | same |
//!
//! Strict decoding checks identifiers, the record length, minutiae inside the image, angle and type codes,
//! reserved bits zero, and refuses extended data blocks it does not understand (non-zero length) and
//! trailing bytes. Errors name the byte offset and field. Angles: see [`crate::minutiae`] for the internal
//! convention; conversion is lossy only in quantisation.
#![allow(
    clippy::cast_possible_truncation,
    reason = "angles and coordinates are rounded and range-checked before conversion"
)]

use std::f32::consts::TAU;

use crate::codec::{Reader, sat_u8, sat_u16, sat_u32};
use crate::error::FormatError;
use crate::iso19794_4::FingerPosition;
use crate::minutiae::{Minutia, MinutiaKind, norm_angle};

const FORMAT_ID: &[u8] = b"FMR\0";
const VERSION: &[u8] = b" 20\0";

/// Which standard a record follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {
    /// ISO/IEC 19794-2:2005.
    Iso2005,
    /// ANSI/INCITS 378-2004.
    Ansi2004,
}

/// One finger view of a minutiae record.
#[derive(Debug, Clone, PartialEq)]
pub struct FingerView {
    /// Finger position (0-10).
    pub position: FingerPosition,
    /// View number 0-15.
    pub view_number: u8,
    /// Impression type 0-15 (0 live-scan plain).
    pub impression_type: u8,
    /// Finger quality 0-100.
    pub quality: u8,
    /// Minutiae (at most 255 per view).
    pub minutiae: Vec<Minutia>,
}

/// A finger minutiae record.
#[derive(Debug, Clone, PartialEq)]
pub struct MinutiaeRecord {
    /// Image width in pixels.
    pub width: u16,
    /// Image height in pixels.
    pub height: u16,
    /// Horizontal resolution, pixels per centimetre (197 = 500 ppi).
    pub x_resolution: u16,
    /// Vertical resolution, pixels per centimetre.
    pub y_resolution: u16,
    /// The finger views.
    pub views: Vec<FingerView>,
}

fn angle_to_code(direction: f32, standard: Standard) -> u8 {
    // ISO/ANSI angles turn counter-clockwise; ours clockwise (y down).
    let ccw = norm_angle(TAU - direction);
    match standard {
        Standard::Iso2005 => ((ccw / TAU * 256.0).round() as u32 % 256) as u8,
        Standard::Ansi2004 => ((ccw.to_degrees() / 2.0).round() as u32 % 180) as u8,
    }
}

fn code_to_angle(code: u8, standard: Standard) -> f32 {
    let ccw = match standard {
        Standard::Iso2005 => f32::from(code) / 256.0 * TAU,
        Standard::Ansi2004 => (f32::from(code) * 2.0).to_radians(),
    };
    norm_angle(TAU - ccw)
}

/// Encodes a minutiae record. Coordinates are rounded and clamped to 14 bits and to the image; more than
/// 255 minutiae per view are truncated to the 255 of highest quality (the format cannot hold more).
pub fn encode(record: &MinutiaeRecord, standard: Standard) -> Vec<u8> {
    let mut body = Vec::new();
    for view in &record.views {
        let mut minutiae: Vec<&Minutia> = view.minutiae.iter().collect();
        if minutiae.len() > 255 {
            minutiae.sort_by_key(|m| std::cmp::Reverse(m.quality));
            minutiae.truncate(255);
        }
        body.push(view.position.code());
        body.push((view.view_number.min(15) << 4) | view.impression_type.min(15));
        body.push(view.quality.min(100));
        body.push(sat_u8(minutiae.len()));
        for m in minutiae {
            let kind: u16 = match m.kind {
                MinutiaKind::Ending => 1,
                MinutiaKind::Bifurcation => 2,
                MinutiaKind::Other => 0,
            };
            let max_x = f32::from(record.width.saturating_sub(1).min(0x3FFF));
            let max_y = f32::from(record.height.saturating_sub(1).min(0x3FFF));
            let x = m.x.round().clamp(0.0, max_x) as u16;
            let y = m.y.round().clamp(0.0, max_y) as u16;
            body.extend_from_slice(&((kind << 14) | x).to_be_bytes());
            body.extend_from_slice(&y.to_be_bytes());
            body.push(angle_to_code(m.direction, standard));
            body.push(m.quality.min(100));
        }
        body.extend_from_slice(&0u16.to_be_bytes()); // no extended data
    }
    let header_len = match standard {
        Standard::Iso2005 => 24,
        Standard::Ansi2004 => 26,
    };
    let mut total = header_len + body.len();
    let mut out = Vec::with_capacity(total + 4);
    out.extend_from_slice(FORMAT_ID);
    out.extend_from_slice(VERSION);
    match standard {
        Standard::Iso2005 => out.extend_from_slice(&sat_u32(total).to_be_bytes()),
        Standard::Ansi2004 => {
            if total <= 0xFFFF {
                out.extend_from_slice(&sat_u16(total).to_be_bytes());
            } else {
                total += 4;
                out.extend_from_slice(&0u16.to_be_bytes());
                out.extend_from_slice(&sat_u32(total).to_be_bytes());
            }
            out.extend_from_slice(&0u16.to_be_bytes()); // CBEFF product owner
            out.extend_from_slice(&0u16.to_be_bytes()); // product type
        }
    }
    out.extend_from_slice(&0u16.to_be_bytes()); // capture equipment: compliance 0, id 0
    out.extend_from_slice(&record.width.to_be_bytes());
    out.extend_from_slice(&record.height.to_be_bytes());
    out.extend_from_slice(&record.x_resolution.to_be_bytes());
    out.extend_from_slice(&record.y_resolution.to_be_bytes());
    out.push(sat_u8(record.views.len()));
    out.push(0);
    out.extend_from_slice(&body);
    out
}

fn invalid(offset: usize, field: &'static str, value: u64, expected: &'static str) -> FormatError {
    FormatError::InvalidValue {
        offset,
        field,
        value,
        expected,
    }
}

/// Strictly decodes a minutiae record of the given standard.
pub fn decode(bytes: &[u8], standard: Standard) -> Result<MinutiaeRecord, FormatError> {
    let mut r = Reader::new(bytes);
    r.expect(FORMAT_ID, "format identifier")?;
    r.expect(VERSION, "version number")?;
    let len_offset = r.offset();
    let declared = match standard {
        Standard::Iso2005 => u64::from(r.u32("record length")?),
        Standard::Ansi2004 => {
            let short = r.u16("record length")?;
            if short == 0 {
                u64::from(r.u32("extended record length")?)
            } else {
                u64::from(short)
            }
        }
    };
    if declared != bytes.len() as u64 {
        return Err(FormatError::LengthMismatch {
            offset: len_offset,
            field: "record length",
            declared,
            actual: bytes.len() as u64,
        });
    }
    if standard == Standard::Ansi2004 {
        let _owner = r.u16("CBEFF product identifier owner")?;
        let _ptype = r.u16("CBEFF product identifier type")?;
    }
    let _equipment = r.u16("capture equipment compliance (4 bits) and id (12 bits)")?;
    let w_offset = r.offset();
    let width = r.u16("image width")?;
    let height = r.u16("image height")?;
    if width == 0 || height == 0 {
        return Err(invalid(w_offset, "image width/height", 0, "non-zero image size"));
    }
    let res_offset = r.offset();
    let x_resolution = r.u16("x resolution")?;
    let y_resolution = r.u16("y resolution")?;
    if x_resolution == 0 || y_resolution == 0 {
        return Err(invalid(
            res_offset,
            "x/y resolution",
            0,
            "non-zero pixels per centimetre",
        ));
    }
    let views_offset = r.offset();
    let n_views = r.u8("number of finger views")?;
    if n_views == 0 {
        return Err(invalid(views_offset, "number of finger views", 0, "at least 1"));
    }
    let res_byte_offset = r.offset();
    let reserved = r.u8("reserved byte")?;
    if reserved != 0 {
        return Err(invalid(
            res_byte_offset,
            "reserved byte",
            u64::from(reserved),
            "0",
        ));
    }
    let mut views = Vec::with_capacity(usize::from(n_views));
    for _ in 0..n_views {
        let p_offset = r.offset();
        let code = r.u8("finger position")?;
        let position = FingerPosition::from_code(code)
            .filter(|p| p.code() <= 10)
            .ok_or(invalid(p_offset, "finger position", u64::from(code), "0-10"))?;
        let vi = r.u8("view number / impression type")?;
        let (view_number, impression_type) = (vi >> 4, vi & 0x0F);
        if !matches!(impression_type, 0..=3 | 8) {
            return Err(invalid(
                p_offset + 1,
                "impression type",
                u64::from(impression_type),
                "0-3 or 8 (live/non-live plain/rolled, swipe)",
            ));
        }
        let q_offset = r.offset();
        let quality = r.u8("finger quality")?;
        if quality > 100 {
            return Err(invalid(q_offset, "finger quality", u64::from(quality), "0-100"));
        }
        let count = r.u8("number of minutiae")?;
        let mut minutiae = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let m_offset = r.offset();
            let tx = r.u16("minutia type and x")?;
            let ry = r.u16("minutia y")?;
            let a_offset = r.offset();
            let angle = r.u8("minutia angle")?;
            let mq = r.u8("minutia quality")?;
            let kind = match tx >> 14 {
                0 => MinutiaKind::Other,
                1 => MinutiaKind::Ending,
                2 => MinutiaKind::Bifurcation,
                t => {
                    return Err(invalid(
                        m_offset,
                        "minutia type",
                        u64::from(t),
                        "0 other, 1 ending, 2 bifurcation",
                    ));
                }
            };
            if ry >> 14 != 0 {
                return Err(invalid(
                    m_offset + 2,
                    "minutia reserved bits",
                    u64::from(ry >> 14),
                    "0",
                ));
            }
            let (x, y) = (tx & 0x3FFF, ry & 0x3FFF);
            if x >= width || y >= height {
                return Err(invalid(
                    m_offset,
                    "minutia position",
                    u64::from(x.max(y)),
                    "a position inside the image (x < width, y < height)",
                ));
            }
            if standard == Standard::Ansi2004 && angle >= 180 {
                return Err(invalid(
                    a_offset,
                    "minutia angle",
                    u64::from(angle),
                    "0-179 (2° units)",
                ));
            }
            if mq > 100 {
                return Err(invalid(a_offset + 1, "minutia quality", u64::from(mq), "0-100"));
            }
            minutiae.push(Minutia {
                x: f32::from(x),
                y: f32::from(y),
                direction: code_to_angle(angle, standard),
                kind,
                quality: mq,
            });
        }
        let e_offset = r.offset();
        let ext = r.u16("extended data block length")?;
        if ext != 0 {
            return Err(FormatError::Unsupported {
                offset: e_offset,
                field: "extended data block length",
                value: u64::from(ext),
                reason: "extended data (ridge counts, cores, deltas) is not read; strip it before import",
            });
        }
        views.push(FingerView {
            position,
            view_number,
            impression_type,
            quality,
            minutiae,
        });
    }
    r.finish("last finger view")?;
    Ok(MinutiaeRecord {
        width,
        height,
        x_resolution,
        y_resolution,
        views,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minutiae::angle_diff;

    fn record() -> MinutiaeRecord {
        MinutiaeRecord {
            width: 400,
            height: 500,
            x_resolution: 197,
            y_resolution: 197,
            views: vec![FingerView {
                position: FingerPosition::RightIndex,
                view_number: 0,
                impression_type: 0,
                quality: 60,
                minutiae: vec![
                    Minutia {
                        x: 10.0,
                        y: 20.0,
                        direction: 0.5,
                        kind: MinutiaKind::Ending,
                        quality: 40,
                    },
                    Minutia {
                        x: 399.0,
                        y: 499.0,
                        direction: 6.0,
                        kind: MinutiaKind::Bifurcation,
                        quality: 90,
                    },
                ],
            }],
        }
    }

    #[test]
    fn iso_layout_and_round_trip() {
        let bytes = encode(&record(), Standard::Iso2005);
        assert_eq!(bytes.len(), 24 + 4 + 6 * 2 + 2, "28 + 6n + 2");
        assert_eq!(&bytes[..8], b"FMR\x00 20\x00");
        let back = decode(&bytes, Standard::Iso2005).unwrap();
        for (a, b) in record().views[0].minutiae.iter().zip(&back.views[0].minutiae) {
            assert_eq!((a.x, a.y, a.kind, a.quality), (b.x, b.y, b.kind, b.quality));
            assert!(angle_diff(a.direction, b.direction) <= TAU / 512.0 + 1e-4);
        }
        // first minutia: type ending (01) in the top bits of byte 28
        assert_eq!(bytes[28] >> 6, 1);
    }

    #[test]
    fn ansi_layout_and_round_trip() {
        let bytes = encode(&record(), Standard::Ansi2004);
        assert_eq!(bytes.len(), 26 + 4 + 12 + 2);
        let back = decode(&bytes, Standard::Ansi2004).unwrap();
        for (a, b) in record().views[0].minutiae.iter().zip(&back.views[0].minutiae) {
            assert!(angle_diff(a.direction, b.direction) <= 1f32.to_radians() + 1e-4);
        }
        assert!(
            decode(&bytes, Standard::Iso2005).is_err(),
            "ISO decoder must not accept ANSI headers"
        );
    }

    #[test]
    fn impossible_minutiae_are_rejected_with_offset() {
        let mut bytes = encode(&record(), Standard::Iso2005);
        // second minutia starts at 28 + 6 = 34; set x to 450 (> width)
        let tx = (2u16 << 14) | 450;
        bytes[34..36].copy_from_slice(&tx.to_be_bytes());
        assert!(matches!(
            decode(&bytes, Standard::Iso2005),
            Err(FormatError::InvalidValue {
                offset: 34,
                field: "minutia position",
                ..
            })
        ));
        let mut bytes = encode(&record(), Standard::Iso2005);
        bytes[28] |= 0xC0;
        assert!(matches!(
            decode(&bytes, Standard::Iso2005),
            Err(FormatError::InvalidValue {
                offset: 28,
                field: "minutia type",
                ..
            })
        ));
    }
}
