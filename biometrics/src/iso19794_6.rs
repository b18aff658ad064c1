//! ISO/IEC 19794-6:2011 iris image records ("IIR", version "020"): a minimal wrapper for rectilinear iris
//! images (PNG by default) with eye label and quality, as MOSIP's iris BDB.
//!
//! Layout written and accepted (big-endian):
//!
//! | part | bytes | fields |
//! |---|---|---|
//! | general header | 16 | `"IIR\0"`, `"020\0"`, record length u32, number of representations u16, certification flag u8 (must be 0), number of eyes represented u8 (0-2) |
//! | representation header | 48 + 5q | representation length u32, capture date/time (9), device technology u8, vendor u16, type u16, quality blocks, representation number u16, image information (27: eye label u8, image type u8, image format u8, properties u8, width u16, height u16, bit depth u8, range u16, roll angle u16, roll uncertainty u16, iris centre min/max x, min/max y u16, iris diameter min/max u16), image data length u32 |
//! | image data | n | the raw / JPEG / JPEG 2000 / PNG bytes |
//!
//! The encoder writes image type "cropped" (3), orientation "base", undefined roll, range and iris geometry.

use image::GrayImage;

use crate::codec::{
    self, CaptureDateTime, Reader, read_quality_blocks, sat_u16, sat_u32, write_quality_block,
};
use crate::error::FormatError;
use crate::imaging;

const FORMAT_ID: &[u8] = b"IIR\0";
const VERSION: &[u8] = b"020\0";
const GENERAL_HEADER_LEN: usize = 16;
const REPR_FIXED_LEN: usize = 4 + 9 + 1 + 2 + 2 + 1 + 2 + 27 + 4;

/// Which eye (ISO/IEC 19794-6:2011 eye label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EyeLabel {
    /// 0: unknown or unspecified.
    Unknown = 0,
    /// 1: right eye.
    Right = 1,
    /// 2: left eye.
    Left = 2,
}

/// Image format of ISO/IEC 19794-6:2011 (monochrome and RGB variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum IrisImageFormat {
    /// 2: monochrome raw, one byte per pixel.
    MonoRaw = 2,
    /// 4: RGB raw.
    RgbRaw = 4,
    /// 6: monochrome JPEG.
    MonoJpeg = 6,
    /// 8: RGB JPEG.
    RgbJpeg = 8,
    /// 10: monochrome JPEG 2000 (lossless).
    MonoJpeg2000 = 10,
    /// 12: RGB JPEG 2000.
    RgbJpeg2000 = 12,
    /// 14: monochrome PNG.
    MonoPng = 14,
    /// 16: RGB PNG.
    RgbPng = 16,
}

impl IrisImageFormat {
    /// Parses the ISO code.
    pub fn from_code(code: u8) -> Option<Self> {
        use IrisImageFormat::*;
        Some(match code {
            2 => MonoRaw,
            4 => RgbRaw,
            6 => MonoJpeg,
            8 => RgbJpeg,
            10 => MonoJpeg2000,
            12 => RgbJpeg2000,
            14 => MonoPng,
            16 => RgbPng,
            _ => return None,
        })
    }

    fn is_rgb(self) -> bool {
        matches!(
            self,
            Self::RgbRaw | Self::RgbJpeg | Self::RgbJpeg2000 | Self::RgbPng
        )
    }

    fn is_lossy(self) -> bool {
        matches!(self, Self::MonoJpeg | Self::RgbJpeg)
    }
}

/// One iris image representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrisImageRecord {
    /// Which eye.
    pub eye: EyeLabel,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// How [`IrisImageRecord::data`] is encoded.
    pub format: IrisImageFormat,
    /// Quality score 0-100, or 255 when not computed.
    pub quality: u8,
    /// The image bytes.
    pub data: Vec<u8>,
}

impl IrisImageRecord {
    /// Builds a record holding `img` as a monochrome PNG.
    pub fn from_gray(eye: EyeLabel, img: &GrayImage, quality: u8) -> Result<Self, FormatError> {
        let (width, height) = imaging::check_dims(img.width(), img.height(), "iris image")?;
        Ok(Self {
            eye,
            width,
            height,
            format: IrisImageFormat::MonoPng,
            quality,
            data: imaging::encode_png_gray(img)?,
        })
    }

    /// Decodes the pixels to grey (raw, PNG or JPEG; JPEG 2000 is [`FormatError::Unsupported`]).
    pub fn to_gray(&self) -> Result<GrayImage, FormatError> {
        let (w, h) = (u32::from(self.width), u32::from(self.height));
        imaging::check_dims(w, h, "iris image record")?;
        let what = format!("iris image record ({:?} eye)", self.eye);
        match self.format {
            IrisImageFormat::MonoRaw => {
                GrayImage::from_raw(w, h, self.data.clone()).ok_or(FormatError::Image {
                    what,
                    message: format!(
                        "raw data is {} bytes, width x height is {}",
                        self.data.len(),
                        w * h
                    ),
                })
            }
            IrisImageFormat::RgbRaw => image::RgbImage::from_raw(w, h, self.data.clone())
                .map(|rgb| image::DynamicImage::ImageRgb8(rgb).into_luma8())
                .ok_or(FormatError::Image {
                    what,
                    message: format!(
                        "raw data is {} bytes, width x height x 3 is {}",
                        self.data.len(),
                        w * h * 3
                    ),
                }),
            IrisImageFormat::MonoPng | IrisImageFormat::RgbPng => {
                imaging::decode_gray(&self.data, image::ImageFormat::Png, w, h, &what)
            }
            IrisImageFormat::MonoJpeg | IrisImageFormat::RgbJpeg => {
                imaging::decode_gray(&self.data, image::ImageFormat::Jpeg, w, h, &what)
            }
            other => Err(FormatError::Unsupported {
                offset: 0,
                field: "image format",
                value: other as u64,
                reason: "JPEG 2000 iris images cannot be decoded; have the device deliver PNG",
            }),
        }
    }
}

/// Encodes iris image records into one ISO/IEC 19794-6:2011 record. Never fails.
pub fn encode(records: &[IrisImageRecord]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        body.extend_from_slice(&sat_u32(REPR_FIXED_LEN + 5 + rec.data.len()).to_be_bytes());
        body.extend_from_slice(&CaptureDateTime::UNKNOWN);
        body.push(0);
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(&0u16.to_be_bytes());
        write_quality_block(&mut body, rec.quality);
        body.extend_from_slice(&sat_u16(i + 1).to_be_bytes());
        body.push(rec.eye as u8);
        body.push(3); // image type: cropped
        body.push(rec.format as u8);
        let history: u8 = if rec.format.is_lossy() { 2 } else { 1 };
        body.push(1 | (1 << 2) | (history << 6)); // base orientation both ways
        body.extend_from_slice(&rec.width.to_be_bytes());
        body.extend_from_slice(&rec.height.to_be_bytes());
        body.push(if rec.format.is_rgb() { 24 } else { 8 });
        body.extend_from_slice(&0u16.to_be_bytes()); // range: unassigned
        body.extend_from_slice(&0xFFFFu16.to_be_bytes()); // roll angle: undefined
        body.extend_from_slice(&0xFFFFu16.to_be_bytes()); // roll uncertainty: undefined
        body.extend_from_slice(&[0; 12]); // iris centre and diameter: undefined
        body.extend_from_slice(&sat_u32(rec.data.len()).to_be_bytes());
        body.extend_from_slice(&rec.data);
    }
    let eyes: std::collections::BTreeSet<EyeLabel> = records
        .iter()
        .map(|r| r.eye)
        .filter(|e| *e != EyeLabel::Unknown)
        .collect();
    let mut out = Vec::with_capacity(GENERAL_HEADER_LEN + body.len());
    out.extend_from_slice(FORMAT_ID);
    out.extend_from_slice(VERSION);
    out.extend_from_slice(&sat_u32(GENERAL_HEADER_LEN + body.len()).to_be_bytes());
    out.extend_from_slice(&sat_u16(records.len()).to_be_bytes());
    out.push(0);
    out.push(u8::try_from(eyes.len()).unwrap_or(2));
    out.extend_from_slice(&body);
    out
}

/// Strictly decodes an ISO/IEC 19794-6:2011 iris image record.
pub fn decode(bytes: &[u8]) -> Result<Vec<IrisImageRecord>, FormatError> {
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
            expected: "0",
        });
    }
    let eyes_offset = r.offset();
    let eyes = r.u8("number of eyes represented")?;
    if eyes > 2 {
        return Err(FormatError::InvalidValue {
            offset: eyes_offset,
            field: "number of eyes represented",
            value: u64::from(eyes),
            expected: "0, 1 or 2",
        });
    }
    let mut out = Vec::with_capacity(usize::from(count).min(r.remaining() / REPR_FIXED_LEN + 1));
    for _ in 0..count {
        out.push(decode_representation(&mut r)?);
    }
    r.finish("last iris representation")?;
    Ok(out)
}

fn invalid(offset: usize, field: &'static str, value: u8, expected: &'static str) -> FormatError {
    FormatError::InvalidValue {
        offset,
        field,
        value: u64::from(value),
        expected,
    }
}

fn decode_representation(r: &mut Reader<'_>) -> Result<IrisImageRecord, FormatError> {
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
    let _number = r.u16("representation number")?;
    let e_offset = r.offset();
    let eye = match r.u8("eye label")? {
        0 => EyeLabel::Unknown,
        1 => EyeLabel::Right,
        2 => EyeLabel::Left,
        v => return Err(invalid(e_offset, "eye label", v, "0 unknown, 1 right, 2 left")),
    };
    let t_offset = r.offset();
    let image_type = r.u8("image type")?;
    if !matches!(image_type, 1 | 2 | 3 | 7) {
        return Err(invalid(
            t_offset,
            "image type",
            image_type,
            "1 uncropped, 2 VGA, 3 cropped, 7 cropped and masked",
        ));
    }
    let f_offset = r.offset();
    let code = r.u8("image format")?;
    let format = IrisImageFormat::from_code(code).ok_or(invalid(
        f_offset,
        "image format",
        code,
        "2, 4, 6, 8, 10, 12, 14 or 16 (mono/RGB raw, JPEG, JPEG 2000, PNG)",
    ))?;
    let p_offset = r.offset();
    let props = r.u8("image properties")?;
    if props & 0x03 == 3 || (props >> 2) & 0x03 == 3 || props & 0x30 != 0 || props >> 6 == 3 {
        return Err(invalid(
            p_offset,
            "image properties",
            props,
            "orientation bits 0-2 each, reserved bits zero, compression history 0-2",
        ));
    }
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
    let d_offset = r.offset();
    let depth = r.u8("bit depth")?;
    let wanted = if format.is_rgb() { 24 } else { 8 };
    if depth != wanted {
        return Err(FormatError::Unsupported {
            offset: d_offset,
            field: "bit depth",
            value: u64::from(depth),
            reason: "only 8-bit monochrome and 24-bit RGB iris images are accepted",
        });
    }
    r.bytes(2 + 2 + 2 + 12, "range, roll angle and iris geometry")?;
    let l_offset = r.offset();
    let data_len = r.u32("image data length")?;
    let header_len = (r.offset() - start) as u64;
    if header_len + u64::from(data_len) != u64::from(repr_len) {
        return Err(FormatError::LengthMismatch {
            offset: l_offset,
            field: "image data length",
            declared: u64::from(data_len),
            actual: u64::from(repr_len).saturating_sub(header_len),
        });
    }
    let data = r.bytes(data_len as usize, "image data")?.to_vec();
    Ok(IrisImageRecord {
        eye,
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
    fn round_trip_two_eyes() {
        let img = GrayImage::from_fn(20, 10, |x, y| image::Luma([(x * y) as u8]));
        let right = IrisImageRecord::from_gray(EyeLabel::Right, &img, 90).unwrap();
        let mut left = right.clone();
        left.eye = EyeLabel::Left;
        let bytes = encode(&[right.clone(), left.clone()]);
        assert_eq!(&bytes[..8], b"IIR\x00020\x00");
        assert_eq!(bytes[15], 2, "two eyes");
        let back = decode(&bytes).unwrap();
        assert_eq!(back, vec![right, left]);
        assert_eq!(back[1].to_gray().unwrap(), img);
    }

    #[test]
    fn eye_label_error_names_offset() {
        let rec = IrisImageRecord {
            eye: EyeLabel::Left,
            width: 1,
            height: 1,
            format: IrisImageFormat::MonoRaw,
            quality: 1,
            data: vec![0],
        };
        let mut bytes = encode(&[rec]);
        // 16 + 4+9+1+2+2 + 6 (quality) + 2 (representation number) = 42
        bytes[42] = 5;
        assert!(matches!(
            decode(&bytes),
            Err(FormatError::InvalidValue {
                offset: 42,
                field: "eye label",
                ..
            })
        ));
    }
}
