//! Import of scanned documents and exception photos: the type is recognised from the bytes (never from the
//! file name), PDFs are kept as they are, and images are decoded and re-encoded as JPEG with `image`
//! (bounded dimensions and memory, metadata dropped, long side at most 2000 px) so packets carry uniform,
//! reasonably sized scans.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

use crate::error::{Result, StationError};

/// A normalised document.
#[derive(Clone, PartialEq, Eq)]
pub struct Normalised {
    /// MIME type.
    pub mime: &'static str,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Normalised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Normalised")
            .field("mime", &self.mime)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Longest side of a normalised image.
pub const MAX_SIDE: u32 = 2000;
/// Largest input accepted before any decoding.
pub const MAX_INPUT: usize = 32 * 1024 * 1024;

fn bad(name: &str, detail: impl Into<String>) -> StationError {
    StationError::Document {
        name: name.into(),
        detail: detail.into(),
    }
}

/// Normalises `bytes` for the document `name`; `max_kb` is the master-data size limit after normalisation.
pub fn normalise(name: &str, bytes: &[u8], max_kb: u64) -> Result<Normalised> {
    if bytes.len() > MAX_INPUT {
        return Err(bad(
            name,
            format!(
                "the file has {} bytes; at most {MAX_INPUT} can be imported",
                bytes.len()
            ),
        ));
    }
    let out = if bytes.starts_with(b"%PDF-") {
        Normalised {
            mime: "application/pdf",
            bytes: bytes.to_vec(),
        }
    } else {
        let format = match bytes {
            [0xFF, 0xD8, 0xFF, ..] => ImageFormat::Jpeg,
            [0x89, b'P', b'N', b'G', ..] => ImageFormat::Png,
            _ => {
                return Err(bad(
                    name,
                    "not a PDF, JPEG or PNG file; scan it again in one of these formats",
                ));
            }
        };
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        let mut limits = Limits::default();
        limits.max_image_width = Some(12_000);
        limits.max_image_height = Some(12_000);
        limits.max_alloc = Some(256 * 1024 * 1024);
        reader.limits(limits);
        let img = reader
            .decode()
            .map_err(|e| bad(name, format!("the image cannot be read: {e}")))?;
        let img = if img.width().max(img.height()) > MAX_SIDE {
            img.resize(MAX_SIDE, MAX_SIDE, image::imageops::FilterType::Triangle)
        } else {
            img
        };
        let rgb = img.to_rgb8();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .encode_image(&rgb)
            .map_err(|e| bad(name, format!("the image cannot be re-encoded: {e}")))?;
        Normalised {
            mime: "image/jpeg",
            bytes: jpeg,
        }
    };
    let kb = u64::try_from(out.bytes.len()).unwrap_or(u64::MAX) / 1024;
    if kb > max_kb {
        return Err(bad(
            name,
            format!("{kb} KB after normalisation; the limit is {max_kb} KB. Scan at a lower resolution"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::cast_possible_truncation, reason = "test pattern wraps on purpose")]
    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn pdf_is_kept_and_images_become_bounded_jpeg() {
        let pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";
        let n = normalise("proofOfAddress", pdf, 2048).unwrap();
        assert_eq!(n.mime, "application/pdf");
        assert_eq!(n.bytes, pdf);
        let n = normalise("proofOfIdentity", &png(2500, 1000), 2048).unwrap();
        assert_eq!(n.mime, "image/jpeg");
        let img = image::load_from_memory(&n.bytes).unwrap();
        assert_eq!((img.width(), img.height()), (2000, 800));
    }

    #[test]
    fn wrong_or_broken_files_get_errors_naming_the_document() {
        let e = normalise("proofOfAddress", b"GIF89a....", 2048).unwrap_err();
        assert!(
            e.to_string().starts_with("document proofOfAddress: not a PDF"),
            "{e}"
        );
        let mut broken = png(10, 10);
        broken.truncate(40);
        let e = normalise("proofOfAddress", &broken, 2048).unwrap_err();
        assert!(e.to_string().contains("cannot be read"), "{e}");
        let e = normalise("proofOfAddress", &png(600, 600), 1).unwrap_err();
        assert!(e.to_string().contains("limit is 1 KB"), "{e}");
    }
}
