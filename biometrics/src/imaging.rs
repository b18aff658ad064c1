//! Pixel helpers: bounded PNG/JPEG decoding and PNG encoding of 8-bit images.

use std::io::Cursor;

use image::{GrayImage, ImageFormat, ImageReader, Limits, RgbImage};

use crate::error::FormatError;

/// Largest image side accepted anywhere in the crate (a ten-print slap at 1000 ppi is ~3200 px).
pub const MAX_IMAGE_SIDE: u32 = 8192;

fn limits(width: u32, height: u32, channels: u64) -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(width.min(MAX_IMAGE_SIDE));
    l.max_image_height = Some(height.min(MAX_IMAGE_SIDE));
    // Decoded pixels plus decoder working memory; the image crate counts its own buffers against this.
    l.max_alloc = Some(u64::from(width) * u64::from(height) * channels.max(4) * 2 + (1 << 20));
    l
}

fn decode(
    data: &[u8],
    format: ImageFormat,
    width: u32,
    height: u32,
    channels: u64,
    what: &str,
) -> Result<image::DynamicImage, FormatError> {
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    reader.limits(limits(width, height, channels));
    let img = reader.decode().map_err(|e| FormatError::Image {
        what: what.to_string(),
        message: format!("cannot decode {format:?}: {e}"),
    })?;
    if img.width() != width || img.height() != height {
        return Err(FormatError::Image {
            what: what.to_string(),
            message: format!(
                "decoded {}x{} pixels but the record header says {width}x{height}",
                img.width(),
                img.height()
            ),
        });
    }
    Ok(img)
}

/// Decodes PNG or JPEG bytes into an 8-bit grey image whose size must be `width` x `height`.
pub fn decode_gray(
    data: &[u8],
    format: ImageFormat,
    width: u32,
    height: u32,
    what: &str,
) -> Result<GrayImage, FormatError> {
    Ok(decode(data, format, width, height, 1, what)?.into_luma8())
}

/// Decodes PNG or JPEG bytes into an 8-bit RGB image whose size must be `width` x `height`.
pub fn decode_rgb(
    data: &[u8],
    format: ImageFormat,
    width: u32,
    height: u32,
    what: &str,
) -> Result<RgbImage, FormatError> {
    Ok(decode(data, format, width, height, 3, what)?.into_rgb8())
}

/// PNG-encodes a grey image (lossless).
pub fn encode_png_gray(img: &GrayImage) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .map_err(|e| FormatError::Image {
            what: "grey image".to_string(),
            message: format!("cannot encode PNG: {e}"),
        })?;
    Ok(out)
}

/// PNG-encodes an RGB image (lossless).
pub fn encode_png_rgb(img: &RgbImage) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .map_err(|e| FormatError::Image {
            what: "RGB image".to_string(),
            message: format!("cannot encode PNG: {e}"),
        })?;
    Ok(out)
}

/// Checks that an image's sides fit the 16-bit fields of the ISO records and the crate-wide limit.
pub(crate) fn check_dims(width: u32, height: u32, what: &str) -> Result<(u16, u16), FormatError> {
    let fits = |v: u32| v > 0 && v <= MAX_IMAGE_SIDE;
    match (u16::try_from(width), u16::try_from(height)) {
        (Ok(w), Ok(h)) if fits(width) && fits(height) => Ok((w, h)),
        _ => Err(FormatError::Image {
            what: what.to_string(),
            message: format!("image is {width}x{height}; each side must be 1..={MAX_IMAGE_SIDE} pixels"),
        }),
    }
}
