//! ISO/IEC 19794-5:2011 face image records ("FAC", version "030"): a minimal wrapper that stores 2D face
//! images (PNG by default) with a quality score, as MOSIP's face BDB.
//!
//! Layout written and accepted (big-endian):
//!
//! | part | bytes | fields |
//! |---|---|---|
//! | general header | 17 | `"FAC\0"`, `"030\0"`, record length u32, number of representations u16, certification flag u8 (must be 0), temporal semantics u16 |
//! | representation header | 37 + 5q + 8l | representation length u32, capture date/time (9), device technology u8, vendor u16, type u16, quality blocks (count u8 + 5 bytes each), facial information (17: landmark count u16, gender, eye colour, hair colour, subject height u8, property mask 3 bytes, expression u16, pose angles 3, pose uncertainty 3), l landmark points × 8, image information (11: face image type u8, image data type u8, width u16, height u16, spatial sampling rate level u8, post-acquisition processing u16, cross reference u8, colour space u8) |
//! | image data | 4 + n | image data length u32, the JPEG / JPEG 2000 / PNG bytes |
//!
//! The encoder writes one quality block, no landmarks, face image type "full frontal", colour space
//! 24-bit RGB and unspecified demographic fields. 3D representations are refused as unsupported.

use image::RgbImage;

use crate::codec::{
    self, CaptureDateTime, Reader, read_quality_blocks, sat_u16, sat_u32, write_quality_block,
};
use crate::error::FormatError;
use crate::imaging;

const FORMAT_ID: &[u8] = b"FAC\0";
const VERSION: &[u8] = b"030\0";
const GENERAL_HEADER_LEN: usize = 17;
/// Representation length without quality blocks and landmarks, including the image data length field.
const REPR_FIXED_LEN: usize = 4 + 9 + 1 + 2 + 2 + 1 + 17 + 11 + 4;

/// Image data type of ISO/IEC 19794-5:2011 table 17.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FaceImageFormat {
    /// 0: JPEG.
    Jpeg = 0,
    /// 1: JPEG 2000, lossy.
    Jpeg2000Lossy = 1,
    /// 2: JPEG 2000, lossless.
    Jpeg2000Lossless = 2,
    /// 3: PNG.
    Png = 3,
}

impl FaceImageFormat {
    /// Parses the ISO code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Jpeg,
            1 => Self::Jpeg2000Lossy,
            2 => Self::Jpeg2000Lossless,
            3 => Self::Png,
            _ => return None,
        })
    }
}

/// One 2D face image representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceImageRecord {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// How [`FaceImageRecord::data`] is encoded.
    pub format: FaceImageFormat,
    /// Quality score 0-100, or 255 when not computed.
    pub quality: u8,
    /// The encoded image.
    pub data: Vec<u8>,
}

impl FaceImageRecord {
    /// Builds a record holding `img` PNG-encoded.
    pub fn from_rgb(img: &RgbImage, quality: u8) -> Result<Self, FormatError> {
        let (width, height) = imaging::check_dims(img.width(), img.height(), "face image")?;
        Ok(Self {
            width,
            height,
            format: FaceImageFormat::Png,
            quality,
            data: imaging::encode_png_rgb(img)?,
        })
    }

    /// Decodes the pixels (PNG or JPEG; JPEG 2000 is [`FormatError::Unsupported`]).
    pub fn to_rgb(&self) -> Result<RgbImage, FormatError> {
        let (w, h) = (u32::from(self.width), u32::from(self.height));
        imaging::check_dims(w, h, "face image record")?;
        let format = match self.format {
            FaceImageFormat::Png => image::ImageFormat::Png,
            FaceImageFormat::Jpeg => image::ImageFormat::Jpeg,
            other => {
                return Err(FormatError::Unsupported {
                    offset: 0,
                    field: "image data type",
                    value: other as u64,
                    reason: "only PNG and JPEG face images can be decoded",
                });
            }
        };
        imaging::decode_rgb(&self.data, format, w, h, "face image record")
    }
}

/// Encodes face image records into one ISO/IEC 19794-5:2011 record. Never fails (see
/// [`crate::iso19794_4::encode`] for how impossible lengths are handled).
pub fn encode(records: &[FaceImageRecord]) -> Vec<u8> {
    let mut body = Vec::new();
    for rec in records {
        body.extend_from_slice(&sat_u32(REPR_FIXED_LEN + 5 + rec.data.len()).to_be_bytes());
        body.extend_from_slice(&CaptureDateTime::UNKNOWN);
        body.push(0);
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(&0u16.to_be_bytes());
        write_quality_block(&mut body, rec.quality);
        // facial information: no landmarks, unspecified gender/eye/hair/height, no properties, neutral pose
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, 0]);
        body.extend_from_slice(&[0, 0, 0]);
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        // image information
        body.push(1); // full frontal
        body.push(rec.format as u8);
        body.extend_from_slice(&rec.width.to_be_bytes());
        body.extend_from_slice(&rec.height.to_be_bytes());
        body.push(0); // spatial sampling rate level: unspecified
        body.extend_from_slice(&0u16.to_be_bytes()); // post-acquisition processing
        body.push(0); // cross reference
        body.push(1); // colour space: 24-bit RGB
        body.extend_from_slice(&sat_u32(rec.data.len()).to_be_bytes());
        body.extend_from_slice(&rec.data);
    }
    let mut out = Vec::with_capacity(GENERAL_HEADER_LEN + body.len());
    out.extend_from_slice(FORMAT_ID);
    out.extend_from_slice(VERSION);
    out.extend_from_slice(&sat_u32(GENERAL_HEADER_LEN + body.len()).to_be_bytes());
    out.extend_from_slice(&sat_u16(records.len()).to_be_bytes());
    out.push(0);
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Strictly decodes an ISO/IEC 19794-5:2011 face image record (2D representations only).
pub fn decode(bytes: &[u8]) -> Result<Vec<FaceImageRecord>, FormatError> {
    let mut r = Reader::new(bytes);
    let count = codec::image_record_prefix(
        &mut r,
        FORMAT_ID,
        VERSION,
        bytes.len(),
        "number of representations",
    )?;
    let cert_offset = r.offset();
    let cert = r.u8("certification flag")?;
    if cert != 0 {
        return Err(FormatError::InvalidValue {
            offset: cert_offset,
            field: "certification flag",
            value: u64::from(cert),
            expected: "0 (ISO/IEC 19794-5:2011 defines no certification blocks)",
        });
    }
    let _temporal = r.u16("temporal semantics")?;
    let mut out = Vec::with_capacity(usize::from(count).min(r.remaining() / REPR_FIXED_LEN + 1));
    for _ in 0..count {
        out.push(decode_representation(&mut r)?);
    }
    r.finish("last face representation")?;
    Ok(out)
}

fn decode_representation(r: &mut Reader<'_>) -> Result<FaceImageRecord, FormatError> {
    let start = r.offset();
    let repr_len = r.u32("representation length")?;
    if (repr_len as usize) < REPR_FIXED_LEN || (repr_len as usize).saturating_sub(4) > r.remaining() {
        return Err(FormatError::LengthMismatch {
            offset: start,
            field: "representation length",
            declared: u64::from(repr_len),
            actual: (r.remaining() + 4) as u64,
        });
    }
    CaptureDateTime::check(r)?;
    let _tech = r.u8("capture device technology identifier")?;
    let _vendor = r.u16("capture device vendor identifier")?;
    let _type = r.u16("capture device type identifier")?;
    let quality = read_quality_blocks(r)?;
    let landmarks = r.u16("number of landmark points")?;
    let g_offset = r.offset();
    let gender = r.u8("gender")?;
    if gender > 3 && gender != 0xFF {
        return Err(FormatError::InvalidValue {
            offset: g_offset,
            field: "gender",
            value: u64::from(gender),
            expected: "0 unspecified, 1 male, 2 female, 3 unknown, 255 other",
        });
    }
    r.bytes(
        3 + 3 + 2 + 3 + 3,
        "facial information (colours, height, masks, pose)",
    )?;
    r.bytes(usize::from(landmarks) * 8, "landmark points")?;
    let t_offset = r.offset();
    let face_type = r.u8("face image type")?;
    match face_type {
        0..=3 => {}
        0x80..=0x82 => {
            return Err(FormatError::Unsupported {
                offset: t_offset,
                field: "face image type",
                value: u64::from(face_type),
                reason: "3D face representations are not handled; send a 2D image",
            });
        }
        _ => {
            return Err(FormatError::InvalidValue {
                offset: t_offset,
                field: "face image type",
                value: u64::from(face_type),
                expected: "0-3 (basic, full frontal, token frontal, post-processed frontal)",
            });
        }
    }
    let f_offset = r.offset();
    let fmt_code = r.u8("image data type")?;
    let format = FaceImageFormat::from_code(fmt_code).ok_or(FormatError::InvalidValue {
        offset: f_offset,
        field: "image data type",
        value: u64::from(fmt_code),
        expected: "0 JPEG, 1 JPEG 2000 lossy, 2 JPEG 2000 lossless, 3 PNG",
    })?;
    let w_offset = r.offset();
    let width = r.u16("width")?;
    let height = r.u16("height")?;
    if width == 0 || height == 0 {
        return Err(FormatError::InvalidValue {
            offset: w_offset,
            field: "width/height",
            value: u64::from(width.min(height)),
            expected: "non-zero width and height",
        });
    }
    let _level = r.u8("spatial sampling rate level")?;
    let _post = r.u16("post-acquisition processing")?;
    let _xref = r.u8("cross reference")?;
    let c_offset = r.offset();
    let colour = r.u8("image colour space")?;
    if colour > 4 {
        return Err(FormatError::InvalidValue {
            offset: c_offset,
            field: "image colour space",
            value: u64::from(colour),
            expected: "0-4 (unspecified, 24-bit RGB, YUV422, 8-bit grey, other)",
        });
    }
    let d_offset = r.offset();
    let data_len = r.u32("image data length")?;
    let header_len = (r.offset() - start) as u64;
    if header_len + u64::from(data_len) != u64::from(repr_len) {
        return Err(FormatError::LengthMismatch {
            offset: d_offset,
            field: "image data length",
            declared: u64::from(data_len),
            actual: u64::from(repr_len).saturating_sub(header_len),
        });
    }
    let data = r.bytes(data_len as usize, "image data")?.to_vec();
    Ok(FaceImageRecord {
        width,
        height,
        format,
        quality,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_pixels() {
        let img = RgbImage::from_fn(12, 9, |x, y| image::Rgb([x as u8 * 20, y as u8 * 20, 7]));
        let rec = FaceImageRecord::from_rgb(&img, 55).unwrap();
        let bytes = encode(&[rec.clone(), rec.clone()]);
        assert_eq!(&bytes[..8], b"FAC\x00030\x00");
        let back = decode(&bytes).unwrap();
        assert_eq!(back, vec![rec.clone(), rec]);
        assert_eq!(back[0].to_rgb().unwrap(), img);
    }

    #[test]
    fn bad_fields_are_named() {
        let rec = FaceImageRecord {
            width: 2,
            height: 2,
            format: FaceImageFormat::Jpeg,
            quality: 10,
            data: vec![1, 2, 3],
        };
        let mut bytes = encode(std::slice::from_ref(&rec));
        // image information starts at 17 + 4+9+1+2+2 + 6 (quality) + 17 = 58
        bytes[58] = 0x80;
        assert!(matches!(
            decode(&bytes),
            Err(FormatError::Unsupported { offset: 58, .. })
        ));
        let mut bytes = encode(&[rec]);
        bytes[59] = 9;
        let err = decode(&bytes).unwrap_err();
        assert!(matches!(
            err,
            FormatError::InvalidValue {
                offset: 59,
                field: "image data type",
                ..
            }
        ));
    }
}
