//! Tessera's compact, versioned internal finger template.
//!
//! Layout (big-endian), version 1:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `"TFT"` + version byte `1` |
//! | 1 | finger position (ISO code 0-15) |
//! | 1 | finger quality 0-100 (255 unknown) |
//! | 2 + 2 | image width, height (pixels, 500 ppi) |
//! | 2 | minutiae count n (≤ [`MAX_MINUTIAE`]) |
//! | 8 n | per minutia: x u16 and y u16 in 1/8 pixel, direction u16 in 2π/65536 units, kind u8 (0 other, 1 ending, 2 bifurcation), quality u8 |
//!
//! About 300-600 bytes per finger. The format is frozen per version: a new layout gets a new version
//! byte and the decoder keeps reading the old ones.
#![allow(
    clippy::cast_possible_truncation,
    reason = "fixed-point conversions are rounded and clamped first"
)]

use std::f32::consts::TAU;

use crate::codec::{Reader, sat_u16};
use crate::error::FormatError;
use crate::iso19794_4::FingerPosition;
use crate::minutiae::{Minutia, MinutiaKind, norm_angle};

const MAGIC: &[u8] = b"TFT\x01";
/// Most minutiae a template may hold.
pub const MAX_MINUTIAE: usize = 512;

/// A finger template: what the matcher and the gallery use.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Finger position.
    pub position: FingerPosition,
    /// Finger quality 0-100, 255 unknown.
    pub quality: u8,
    /// Image width.
    pub width: u16,
    /// Image height.
    pub height: u16,
    /// Minutiae.
    pub minutiae: Vec<Minutia>,
}

impl Template {
    /// Serialises (version 1). Minutiae beyond [`MAX_MINUTIAE`] are dropped (lowest quality first).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut ms: Vec<&Minutia> = self.minutiae.iter().collect();
        if ms.len() > MAX_MINUTIAE {
            ms.sort_by_key(|m| std::cmp::Reverse(m.quality));
            ms.truncate(MAX_MINUTIAE);
        }
        let mut out = Vec::with_capacity(12 + 8 * ms.len());
        out.extend_from_slice(MAGIC);
        out.push(self.position.code());
        out.push(self.quality);
        out.extend_from_slice(&self.width.to_be_bytes());
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&sat_u16(ms.len()).to_be_bytes());
        for m in ms {
            let fx = (m.x * 8.0).round().clamp(0.0, 65535.0) as u16;
            let fy = (m.y * 8.0).round().clamp(0.0, 65535.0) as u16;
            let d = ((norm_angle(m.direction) / TAU * 65536.0).round() as u32 % 65536) as u16;
            out.extend_from_slice(&fx.to_be_bytes());
            out.extend_from_slice(&fy.to_be_bytes());
            out.extend_from_slice(&d.to_be_bytes());
            out.push(match m.kind {
                MinutiaKind::Other => 0,
                MinutiaKind::Ending => 1,
                MinutiaKind::Bifurcation => 2,
            });
            out.push(m.quality.min(100));
        }
        out
    }

    /// Strictly parses a template.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes);
        r.expect(MAGIC, "template magic and version")?;
        let p_offset = r.offset();
        let code = r.u8("finger position")?;
        let position = FingerPosition::from_code(code).ok_or(FormatError::InvalidValue {
            offset: p_offset,
            field: "finger position",
            value: u64::from(code),
            expected: "0-15",
        })?;
        let q_offset = r.offset();
        let quality = r.u8("finger quality")?;
        if quality > 100 && quality != 255 {
            return Err(FormatError::InvalidValue {
                offset: q_offset,
                field: "finger quality",
                value: u64::from(quality),
                expected: "0-100 or 255",
            });
        }
        let width = r.u16("width")?;
        let height = r.u16("height")?;
        let n_offset = r.offset();
        let n = usize::from(r.u16("minutiae count")?);
        if n > MAX_MINUTIAE {
            return Err(FormatError::InvalidValue {
                offset: n_offset,
                field: "minutiae count",
                value: n as u64,
                expected: "at most 512",
            });
        }
        if r.remaining() != 8 * n {
            return Err(FormatError::LengthMismatch {
                offset: n_offset,
                field: "minutiae count",
                declared: (8 * n) as u64,
                actual: r.remaining() as u64,
            });
        }
        let mut minutiae = Vec::with_capacity(n);
        for _ in 0..n {
            let m_offset = r.offset();
            let fx = r.u16("minutia x")?;
            let fy = r.u16("minutia y")?;
            let d = r.u16("minutia direction")?;
            let k = r.u8("minutia kind")?;
            let q = r.u8("minutia quality")?;
            let (x, y) = (f32::from(fx) / 8.0, f32::from(fy) / 8.0);
            if x >= f32::from(width) || y >= f32::from(height) {
                return Err(FormatError::InvalidValue {
                    offset: m_offset,
                    field: "minutia position",
                    value: u64::from(fx.max(fy)),
                    expected: "inside the image",
                });
            }
            let kind = match k {
                0 => MinutiaKind::Other,
                1 => MinutiaKind::Ending,
                2 => MinutiaKind::Bifurcation,
                _ => {
                    return Err(FormatError::InvalidValue {
                        offset: m_offset + 6,
                        field: "minutia kind",
                        value: u64::from(k),
                        expected: "0 other, 1 ending, 2 bifurcation",
                    });
                }
            };
            if q > 100 {
                return Err(FormatError::InvalidValue {
                    offset: m_offset + 7,
                    field: "minutia quality",
                    value: u64::from(q),
                    expected: "0-100",
                });
            }
            minutiae.push(Minutia {
                x,
                y,
                direction: f32::from(d) / 65536.0 * TAU,
                kind,
                quality: q,
            });
        }
        Ok(Self {
            position,
            quality,
            width,
            height,
            minutiae,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_within_quantisation() {
        let t = Template {
            position: FingerPosition::LeftRing,
            quality: 70,
            width: 320,
            height: 400,
            minutiae: vec![Minutia {
                x: 12.3,
                y: 300.9,
                direction: 4.0,
                kind: MinutiaKind::Bifurcation,
                quality: 77,
            }],
        };
        let b = t.to_bytes();
        assert_eq!(b.len(), 12 + 8);
        let back = Template::from_bytes(&b).unwrap();
        let (m, n) = (&t.minutiae[0], &back.minutiae[0]);
        assert!((m.x - n.x).abs() <= 1.0 / 16.0 && (m.y - n.y).abs() <= 1.0 / 16.0);
        assert!((m.direction - n.direction).abs() < 1e-3);
        assert!(Template::from_bytes(&b[..b.len() - 1]).is_err());
    }
}
