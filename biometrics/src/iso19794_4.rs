//! ISO/IEC 19794-4:2011 finger image records ("FIR", version "020"), the format MOSIP specifies for
//! fingerprint images.
//!
//! Layout written and accepted (all integers big-endian):
//!
//! | part | bytes | fields |
//! |---|---|---|
//! | general header | 16 | `"FIR\0"`, `"020\0"`, record length u32, number of representations u16, certification flag u8, number of distinct finger positions u8 |
//! | representation header | 41 + 5q (+ 1 + 3c) | representation length u32, capture date/time (9), device technology u8, device vendor u16, device type u16, quality block count u8 + q × (score u8, vendor u16, algorithm u16), [certification block count u8 + c × 3 when the certification flag is set], finger position u8, representation number u8, scale units u8 (1 ppi, 2 ppcm), capture ppi h/v u16, image ppi h/v u16, bit depth u8, compression u8, impression type u8, width u16, height u16, image data length u32 |
//! | image data | n | the compressed or raw pixels |
//!
//! The encoder writes one quality block, no certification blocks, an unknown capture date (all 0xFF),
//! scale units ppi, bit depth 8 and impression type 0 (live-scan plain). The decoder is strict: every
//! length must add up, enumerated fields must hold a defined value, trailing bytes are refused, and only
//! 8-bit images are accepted.
//!
//! ```
//! use tessera_biometrics::iso19794_4::{self, FingerImageRecord, FingerPosition};
//! let img = image::GrayImage::from_pixel(40, 50, image::Luma([200]));
//! let rec = FingerImageRecord::from_gray(FingerPosition::RightIndex, &img, 500, 80)?;
//! let bytes = iso19794_4::encode(&[rec.clone()]);
//! assert_eq!(iso19794_4::decode(&bytes)?, vec![rec]);
//! # Ok::<(), tessera_biometrics::FormatError>(())
//! ```

use std::collections::BTreeSet;

use image::GrayImage;

use crate::codec::{
    self, CaptureDateTime, Reader, read_quality_blocks, sat_u8, sat_u16, sat_u32, write_quality_block,
};
use crate::error::FormatError;
use crate::imaging;

const FORMAT_ID: &[u8] = b"FIR\0";
const VERSION: &[u8] = b"020\0";
const GENERAL_HEADER_LEN: usize = 16;
/// Representation header length without quality and certification blocks, including the data length field.
const REPR_FIXED_LEN: usize = 4 + 9 + 1 + 2 + 2 + 1 + 1 + 1 + 1 + 2 + 2 + 2 + 2 + 1 + 1 + 1 + 2 + 2 + 4;

/// Finger (or multi-finger) position code of ISO/IEC 19794-4 table 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum FingerPosition {
    /// 0: position unknown.
    Unknown = 0,
    /// 1: right thumb.
    RightThumb = 1,
    /// 2: right index finger.
    RightIndex = 2,
    /// 3: right middle finger.
    RightMiddle = 3,
    /// 4: right ring finger.
    RightRing = 4,
    /// 5: right little finger.
    RightLittle = 5,
    /// 6: left thumb.
    LeftThumb = 6,
    /// 7: left index finger.
    LeftIndex = 7,
    /// 8: left middle finger.
    LeftMiddle = 8,
    /// 9: left ring finger.
    LeftRing = 9,
    /// 10: left little finger.
    LeftLittle = 10,
    /// 11: plain right thumb.
    PlainRightThumb = 11,
    /// 12: plain left thumb.
    PlainLeftThumb = 12,
    /// 13: plain right four fingers (right slap).
    RightFourFingers = 13,
    /// 14: plain left four fingers (left slap).
    LeftFourFingers = 14,
    /// 15: plain thumbs (both thumbs in one image).
    BothThumbs = 15,
}

impl FingerPosition {
    /// The ten single fingers in ISO order (codes 1 to 10).
    pub const TEN: [FingerPosition; 10] = [
        Self::RightThumb,
        Self::RightIndex,
        Self::RightMiddle,
        Self::RightRing,
        Self::RightLittle,
        Self::LeftThumb,
        Self::LeftIndex,
        Self::LeftMiddle,
        Self::LeftRing,
        Self::LeftLittle,
    ];

    /// The ISO code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Parses an ISO code (0 to 15).
    pub fn from_code(code: u8) -> Option<Self> {
        use FingerPosition::*;
        Some(match code {
            0 => Unknown,
            1 => RightThumb,
            2 => RightIndex,
            3 => RightMiddle,
            4 => RightRing,
            5 => RightLittle,
            6 => LeftThumb,
            7 => LeftIndex,
            8 => LeftMiddle,
            9 => LeftRing,
            10 => LeftLittle,
            11 => PlainRightThumb,
            12 => PlainLeftThumb,
            13 => RightFourFingers,
            14 => LeftFourFingers,
            15 => BothThumbs,
            _ => return None,
        })
    }

    /// True for codes 1 to 10 (one finger, not a slap or thumbs image).
    pub fn is_single_finger(self) -> bool {
        (1..=10).contains(&self.code())
    }
}

/// Image compression algorithm code of ISO/IEC 19794-4:2011 table 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ImageCompression {
    /// 0: uncompressed, one byte per pixel, rows top to bottom.
    Uncompressed = 0,
    /// 1: uncompressed, bit-packed.
    BitPacked = 1,
    /// 2: WSQ.
    Wsq = 2,
    /// 3: JPEG.
    Jpeg = 3,
    /// 4: JPEG 2000, lossy.
    Jpeg2000Lossy = 4,
    /// 5: JPEG 2000, lossless.
    Jpeg2000Lossless = 5,
    /// 6: PNG.
    Png = 6,
}

impl ImageCompression {
    /// The ISO code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Parses an ISO code (0 to 6).
    pub fn from_code(code: u8) -> Option<Self> {
        use ImageCompression::*;
        Some(match code {
            0 => Uncompressed,
            1 => BitPacked,
            2 => Wsq,
            3 => Jpeg,
            4 => Jpeg2000Lossy,
            5 => Jpeg2000Lossless,
            6 => Png,
            _ => return None,
        })
    }
}

/// One finger image representation: what the station stores and the server re-extracts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerImageRecord {
    /// Finger or slap position.
    pub position: FingerPosition,
    /// Width in pixels (horizontal line length).
    pub width: u16,
    /// Height in pixels (vertical line length).
    pub height: u16,
    /// Resolution in pixels per inch (written as both capture and image resolution).
    pub ppi: u16,
    /// How [`FingerImageRecord::data`] is compressed.
    pub compression: ImageCompression,
    /// Quality score 0-100 (NFIQ 2 scale), or 255 when not computed.
    pub quality: u8,
    /// The image bytes (8-bit grey), compressed as `compression` says.
    pub data: Vec<u8>,
}

impl FingerImageRecord {
    /// Builds a record holding `img` PNG-compressed (the default storage form).
    pub fn from_gray(
        position: FingerPosition,
        img: &GrayImage,
        ppi: u16,
        quality: u8,
    ) -> Result<Self, FormatError> {
        let (width, height) = imaging::check_dims(img.width(), img.height(), "finger image")?;
        Ok(Self {
            position,
            width,
            height,
            ppi,
            compression: ImageCompression::Png,
            quality,
            data: imaging::encode_png_gray(img)?,
        })
    }

    /// Decodes the pixels (uncompressed, PNG or JPEG). WSQ, JPEG 2000 and bit-packed data return
    /// [`FormatError::Unsupported`]: convert them to PNG at the capture device.
    pub fn to_gray(&self) -> Result<GrayImage, FormatError> {
        let (w, h) = (u32::from(self.width), u32::from(self.height));
        imaging::check_dims(w, h, "finger image record")?;
        let what = format!("finger image record ({:?})", self.position);
        match self.compression {
            ImageCompression::Uncompressed => {
                let expected = (w as usize) * (h as usize);
                if self.data.len() != expected {
                    return Err(FormatError::Image {
                        what,
                        message: format!(
                            "uncompressed data is {} bytes, width x height is {expected}",
                            self.data.len()
                        ),
                    });
                }
                GrayImage::from_raw(w, h, self.data.clone()).ok_or(FormatError::Image {
                    what,
                    message: "pixel buffer does not match the size".to_string(),
                })
            }
            ImageCompression::Png => imaging::decode_gray(&self.data, image::ImageFormat::Png, w, h, &what),
            ImageCompression::Jpeg => imaging::decode_gray(&self.data, image::ImageFormat::Jpeg, w, h, &what),
            other => Err(FormatError::Unsupported {
                offset: 0,
                field: "image compression algorithm",
                value: u64::from(other.code()),
                reason: "only uncompressed, PNG and JPEG pixels can be decoded; have the device deliver PNG",
            }),
        }
    }
}

/// Encodes finger image records into one ISO/IEC 19794-4:2011 record.
///
/// Never fails: lengths that do not fit their fields (over 4 GiB of data, over 65,535 representations) are
/// written saturated, and [`decode`] then rejects the record.
pub fn encode(records: &[FingerImageRecord]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut repr_numbers = std::collections::BTreeMap::<u8, u8>::new();
    for rec in records {
        let number = repr_numbers.entry(rec.position.code()).or_insert(0);
        *number = number.saturating_add(1);
        let repr_len = REPR_FIXED_LEN + 5 + rec.data.len();
        body.extend_from_slice(&sat_u32(repr_len).to_be_bytes());
        body.extend_from_slice(&CaptureDateTime::UNKNOWN);
        body.push(0); // capture device technology: unknown
        body.extend_from_slice(&0u16.to_be_bytes()); // vendor
        body.extend_from_slice(&0u16.to_be_bytes()); // device type
        write_quality_block(&mut body, rec.quality);
        body.push(rec.position.code());
        body.push(*number);
        body.push(1); // scale units: pixels per inch
        for _ in 0..4 {
            body.extend_from_slice(&rec.ppi.to_be_bytes());
        }
        body.push(8); // bit depth
        body.push(rec.compression.code());
        body.push(0); // impression type: live-scan plain
        body.extend_from_slice(&rec.width.to_be_bytes());
        body.extend_from_slice(&rec.height.to_be_bytes());
        body.extend_from_slice(&sat_u32(rec.data.len()).to_be_bytes());
        body.extend_from_slice(&rec.data);
    }
    let distinct: BTreeSet<u8> = records.iter().map(|r| r.position.code()).collect();
    let mut out = Vec::with_capacity(GENERAL_HEADER_LEN + body.len());
    out.extend_from_slice(FORMAT_ID);
    out.extend_from_slice(VERSION);
    out.extend_from_slice(&sat_u32(GENERAL_HEADER_LEN + body.len()).to_be_bytes());
    out.extend_from_slice(&sat_u16(records.len()).to_be_bytes());
    out.push(0); // certification flag
    out.push(sat_u8(distinct.len()));
    out.extend_from_slice(&body);
    out
}

/// Strictly decodes an ISO/IEC 19794-4:2011 finger image record.
///
/// The image bytes are copied as they are (not decoded); call [`FingerImageRecord::to_gray`] for pixels.
pub fn decode(bytes: &[u8]) -> Result<Vec<FingerImageRecord>, FormatError> {
    let mut r = Reader::new(bytes);
    let count = codec::image_record_prefix(
        &mut r,
        FORMAT_ID,
        VERSION,
        bytes.len(),
        "number of finger representations",
    )?;
    let cert_offset = r.offset();
    let certification = r.u8("certification flag")?;
    if certification > 1 {
        return Err(FormatError::InvalidValue {
            offset: cert_offset,
            field: "certification flag",
            value: u64::from(certification),
            expected: "0 or 1",
        });
    }
    let distinct_offset = r.offset();
    let distinct_declared = r.u8("number of distinct finger positions")?;

    // Each representation needs at least REPR_FIXED_LEN bytes, so `count` cannot force a large allocation.
    let mut out = Vec::with_capacity(usize::from(count).min(r.remaining() / REPR_FIXED_LEN + 1));
    for index in 0..count {
        out.push(decode_representation(&mut r, certification == 1, index)?);
    }
    r.finish("last finger representation")?;
    let distinct: BTreeSet<u8> = out.iter().map(|rec| rec.position.code()).collect();
    if distinct.len() != usize::from(distinct_declared) {
        return Err(FormatError::LengthMismatch {
            offset: distinct_offset,
            field: "number of distinct finger positions",
            declared: u64::from(distinct_declared),
            actual: distinct.len() as u64,
        });
    }
    Ok(out)
}

fn decode_representation(
    r: &mut Reader<'_>,
    certified: bool,
    _index: u16,
) -> Result<FingerImageRecord, FormatError> {
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
    let tech_offset = r.offset();
    let technology = r.u8("capture device technology identifier")?;
    if technology > 20 {
        return Err(FormatError::InvalidValue {
            offset: tech_offset,
            field: "capture device technology identifier",
            value: u64::from(technology),
            expected: "0-20 (table 2 of ISO/IEC 19794-4:2011)",
        });
    }
    let _vendor = r.u16("capture device vendor identifier")?;
    let _device_type = r.u16("capture device type identifier")?;
    let quality = read_quality_blocks(r)?;
    if certified {
        let n = r.u8("number of certification blocks")?;
        r.bytes(usize::from(n) * 3, "certification blocks")?;
    }
    let pos_offset = r.offset();
    let pos_code = r.u8("finger position")?;
    let position = FingerPosition::from_code(pos_code).ok_or(FormatError::InvalidValue {
        offset: pos_offset,
        field: "finger position",
        value: u64::from(pos_code),
        expected: "0-15 (finger codes 0-10, plain thumbs 11-12, slaps 13-15)",
    })?;
    let _repr_number = r.u8("representation number")?;
    let scale_offset = r.offset();
    let scale = r.u8("scale units")?;
    if scale != 1 && scale != 2 {
        return Err(FormatError::InvalidValue {
            offset: scale_offset,
            field: "scale units",
            value: u64::from(scale),
            expected: "1 (pixels per inch) or 2 (pixels per centimetre)",
        });
    }
    let mut rates = [0u16; 4];
    let rate_names = [
        "capture device spatial sampling rate (horizontal)",
        "capture device spatial sampling rate (vertical)",
        "image spatial sampling rate (horizontal)",
        "image spatial sampling rate (vertical)",
    ];
    for (slot, name) in rates.iter_mut().zip(rate_names) {
        let off = r.offset();
        *slot = r.u16(name)?;
        if *slot == 0 {
            return Err(FormatError::InvalidValue {
                offset: off,
                field: name,
                value: 0,
                expected: "a non-zero resolution",
            });
        }
    }
    let [_, _, image_h, _] = rates;
    let ppi = if scale == 1 {
        image_h
    } else {
        u16::try_from((u32::from(image_h) * 254 + 50) / 100).unwrap_or(u16::MAX)
    };
    let depth_offset = r.offset();
    let depth = r.u8("bit depth")?;
    if depth != 8 {
        return Err(FormatError::Unsupported {
            offset: depth_offset,
            field: "bit depth",
            value: u64::from(depth),
            reason: "only 8-bit grey finger images are accepted",
        });
    }
    let comp_offset = r.offset();
    let comp_code = r.u8("image compression algorithm")?;
    let compression = ImageCompression::from_code(comp_code).ok_or(FormatError::InvalidValue {
        offset: comp_offset,
        field: "image compression algorithm",
        value: u64::from(comp_code),
        expected: "0-6 (raw, bit-packed, WSQ, JPEG, JPEG 2000 lossy/lossless, PNG)",
    })?;
    let imp_offset = r.offset();
    let impression = r.u8("impression type")?;
    if !(impression <= 9 || (20..=29).contains(&impression)) {
        return Err(FormatError::InvalidValue {
            offset: imp_offset,
            field: "impression type",
            value: u64::from(impression),
            expected: "0-9 or 20-29 (table 7 of ISO/IEC 19794-4:2011)",
        });
    }
    let w_offset = r.offset();
    let width = r.u16("horizontal line length")?;
    let height = r.u16("vertical line length")?;
    if width == 0 || height == 0 {
        return Err(FormatError::InvalidValue {
            offset: w_offset,
            field: "horizontal/vertical line length",
            value: u64::from(width.min(height)),
            expected: "non-zero width and height",
        });
    }
    let data_len_offset = r.offset();
    let data_len = r.u32("image data length")?;
    let header_len = (r.offset() - start) as u64;
    if header_len + u64::from(data_len) != u64::from(repr_len) {
        return Err(FormatError::LengthMismatch {
            offset: data_len_offset,
            field: "image data length",
            declared: u64::from(data_len),
            actual: u64::from(repr_len).saturating_sub(header_len),
        });
    }
    let data = r.bytes(data_len as usize, "image data")?;
    if compression == ImageCompression::Uncompressed
        && data.len() as u64 != u64::from(width) * u64::from(height)
    {
        return Err(FormatError::LengthMismatch {
            offset: data_len_offset,
            field: "image data length (uncompressed)",
            declared: u64::from(data_len),
            actual: u64::from(width) * u64::from(height),
        });
    }
    Ok(FingerImageRecord {
        position,
        width,
        height,
        ppi,
        compression,
        quality,
        data: data.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FingerImageRecord {
        FingerImageRecord {
            position: FingerPosition::LeftThumb,
            width: 3,
            height: 2,
            ppi: 500,
            compression: ImageCompression::Uncompressed,
            quality: 77,
            data: vec![1, 2, 3, 4, 5, 6],
        }
    }

    #[test]
    fn layout_matches_the_standard_offsets() {
        let bytes = encode(&[sample()]);
        assert_eq!(&bytes[0..8], b"FIR\x00020\x00");
        assert_eq!(
            u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize,
            bytes.len()
        );
        assert_eq!(u16::from_be_bytes([bytes[12], bytes[13]]), 1);
        assert_eq!(bytes[14], 0, "certification flag");
        assert_eq!(bytes[15], 1, "distinct positions");
        // representation header starts at 16; quality block count at 16+4+9+1+2+2 = 34
        assert_eq!(bytes[34], 1);
        assert_eq!(bytes[35], 77);
        assert_eq!(bytes[40], 6, "finger position follows the quality block");
        assert_eq!(bytes[42], 1, "scale units ppi");
        assert_eq!(
            u16::from_be_bytes([bytes[47], bytes[48]]),
            500,
            "image ppi horizontal"
        );
        assert_eq!(bytes[51], 8, "bit depth");
        assert_eq!(bytes[52], 0, "compression");
        assert_eq!(bytes.len(), 16 + REPR_FIXED_LEN + 5 + 6);
    }

    #[test]
    fn round_trip_several_positions() {
        let mut b = sample();
        b.position = FingerPosition::RightFourFingers;
        let recs = vec![sample(), b, sample()];
        assert_eq!(decode(&encode(&recs)).unwrap(), recs);
    }

    #[test]
    fn errors_name_offset_and_field() {
        let mut bytes = encode(&[sample()]);
        bytes[40] = 16;
        let err = decode(&bytes).unwrap_err();
        assert_eq!(
            err,
            FormatError::InvalidValue {
                offset: 40,
                field: "finger position",
                value: 16,
                expected: "0-15 (finger codes 0-10, plain thumbs 11-12, slaps 13-15)"
            }
        );
        assert!(err.to_string().contains("byte 40"));

        let mut bytes = encode(&[sample()]);
        bytes[51] = 16;
        assert!(matches!(
            decode(&bytes),
            Err(FormatError::Unsupported { offset: 51, .. })
        ));

        let bytes = encode(&[sample()]);
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(FormatError::LengthMismatch {
                offset: 8,
                field: "record length",
                ..
            })
        ));
        let mut bytes = encode(&[sample()]);
        bytes[0] = b'X';
        assert!(matches!(
            decode(&bytes),
            Err(FormatError::BadMagic { offset: 0, .. })
        ));
    }

    #[test]
    fn uncompressed_size_is_checked() {
        let mut rec = sample();
        rec.data.push(7);
        assert!(matches!(
            decode(&encode(&[rec])),
            Err(FormatError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn png_pixels_round_trip() {
        let img = GrayImage::from_fn(31, 17, |x, y| image::Luma([(x * 7 + y * 3) as u8]));
        let rec = FingerImageRecord::from_gray(FingerPosition::RightIndex, &img, 500, 60).unwrap();
        assert_eq!(rec.compression, ImageCompression::Png);
        let back = decode(&encode(&[rec])).unwrap();
        assert_eq!(back[0].to_gray().unwrap(), img);
    }

    #[test]
    fn png_with_wrong_header_size_is_rejected() {
        let img = GrayImage::from_pixel(10, 10, image::Luma([9]));
        let mut rec = FingerImageRecord::from_gray(FingerPosition::RightIndex, &img, 500, 60).unwrap();
        rec.width = 11;
        assert!(matches!(rec.to_gray(), Err(FormatError::Image { .. })));
    }

    #[test]
    fn ppcm_is_converted() {
        let mut bytes = encode(&[sample()]);
        bytes[42] = 2;
        for off in [43usize, 45, 47, 49] {
            bytes[off..off + 2].copy_from_slice(&197u16.to_be_bytes());
        }
        assert_eq!(decode(&bytes).unwrap()[0].ppi, 500);
    }
}
