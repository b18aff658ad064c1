//! Where the simulator's images come from.

use crate::protocol::BioSubType;

/// One synthetic capture: the ISO/IEC 19794 record the device returns, a preview frame for STREAM,
/// and the quality the image source measured (0-100).
#[derive(Debug, Clone)]
pub struct SimImage {
    /// The ISO 19794-4/5/6 record (what `bioValue` carries).
    pub iso: Vec<u8>,
    /// An 8-bit preview of the same capture, for the MJPEG stream.
    pub preview: image::GrayImage,
    /// Quality 0-100 as measured by the source.
    pub quality: u8,
}

/// An error producing an image.
#[derive(Debug, thiserror::Error)]
#[error("the image source could not produce {what} for synthetic person {person}: {reason}")]
pub struct ImageError {
    /// What was asked for, e.g. "Right index finger".
    pub what: String,
    /// The synthetic person id.
    pub person: u64,
    /// Why.
    pub reason: String,
    /// The device went away (unplugged) rather than failing one capture: the simulator answers
    /// Not Ready (110) instead of an extraction error (102).
    pub device_gone: bool,
}

/// Produces the images of a synthetic person. `impression` varies between captures of the same
/// finger, so two captures of one person are alike but not identical (as a real sensor's are).
pub trait ImageSource: Send + Sync + std::fmt::Debug {
    /// A finger image record (ISO/IEC 19794-4).
    fn finger(&self, person: u64, position: BioSubType, impression: u32) -> Result<SimImage, ImageError>;
    /// An iris image record (ISO/IEC 19794-6); `position` is [`BioSubType::Left`] or [`BioSubType::Right`].
    fn iris(&self, person: u64, position: BioSubType, impression: u32) -> Result<SimImage, ImageError>;
    /// A face image record (ISO/IEC 19794-5).
    fn face(&self, person: u64, impression: u32) -> Result<SimImage, ImageError>;
    /// What the source knows of the device's status: `Some(NotReady)` while a physical device is
    /// unplugged. `None` (the default: synthetic sources) leaves the status to the control state.
    fn device_status(&self) -> Option<crate::protocol::DeviceStatus> {
        None
    }
}

/// The image source `tessera-sbi simulate` ships with: the biometrics crate's synthetic generator.
pub fn default_image_source() -> Result<std::sync::Arc<dyn ImageSource>, ImageError> {
    Ok(std::sync::Arc::new(SyntheticImages::new()))
}

/// Synthetic people from `tessera_biometrics::synth` (SFinGe-style fingers, iris and face images),
/// deterministic from the person id: the same person captured on two stations gives impressions of the
/// same fingers, as a real resident would.
///
/// Quality is measured on the image returned: fingers by the biometrics crate's NFIQ 2-style scorer
/// ([`measured_finger_quality`]), iris by grey-scale utilisation ([`measured_iris_quality`]) and face by its
/// grey-level spread ([`measured_contrast_quality`]), since the biometrics crate scores fingers only. A score forced with `/admin/score` replaces the
/// measured one in the signed data block (the ISO record keeps the measured one).
#[derive(Debug, Default)]
pub struct SyntheticImages {
    people: std::sync::Mutex<Vec<std::sync::Arc<tessera_biometrics::synth::SyntheticPerson>>>,
}

impl SyntheticImages {
    /// A source with an empty cache of people.
    pub fn new() -> Self {
        Self::default()
    }

    fn person(&self, id: u64) -> std::sync::Arc<tessera_biometrics::synth::SyntheticPerson> {
        let mut people = match self.people.lock() {
            Ok(p) => p,
            Err(p) => p.into_inner(),
        };
        if let Some(p) = people.iter().find(|p| p.id() == id) {
            return p.clone();
        }
        let p = std::sync::Arc::new(tessera_biometrics::synth::SyntheticPerson::new(id));
        // Keep the few most recent people (masters are cached inside each person).
        if people.len() >= 8 {
            people.remove(0);
        }
        people.push(p.clone());
        p
    }
}

/// The quality the simulator and the device host report for a finger image: the biometrics crate's
/// NFIQ 2-style score ([`tessera_biometrics::quality::assess`]) of exactly the image that is returned.
pub fn measured_finger_quality(img: &image::GrayImage) -> u8 {
    tessera_biometrics::quality::assess(img).score.min(100)
}

/// How many pixels of each grey level `img` has.
fn grey_histogram(img: &image::GrayImage) -> [u64; 256] {
    let mut hist = [0u64; 256];
    for p in img.pixels() {
        if let Some(h) = hist.get_mut(usize::from(p.0[0])) {
            *h += 1;
        }
    }
    hist
}

/// The quality reported for face images, which the biometrics crate has no scorer for yet:
/// the share of the grey range the image uses (5th to 95th percentile), measured on the returned image.
pub fn measured_contrast_quality(img: &image::GrayImage) -> u8 {
    let hist = grey_histogram(img);
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0;
    }
    let pick = |frac: u64| -> usize {
        let mut acc = 0u64;
        for (i, h) in hist.iter().enumerate() {
            acc += h;
            if acc.saturating_mul(100) >= total.saturating_mul(frac) {
                return i;
            }
        }
        255
    };
    let spread = pick(95).saturating_sub(pick(5));
    u8::try_from((spread * 100 / 255).min(100)).unwrap_or(100)
}

/// The quality reported for iris images: grey-scale utilisation, the measure ISO/IEC 29794-6 uses (the entropy
/// of the grey-level histogram, in bits), scaled so that 8 bits give 100. An under-exposed, blurred or
/// saturated eye uses few grey levels and scores low; the synthetic irises score about 67-75.
pub fn measured_iris_quality(img: &image::GrayImage) -> u8 {
    let hist = grey_histogram(img);
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0;
    }
    let bits: f64 = hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let q = c as f64 / total as f64;
            -q * q.log2()
        })
        .sum();
    // Entropy of 256 levels is at most 8 bits, so this is 0..=100.
    let score = (bits * 12.5).round().clamp(0.0, 100.0);
    (0..=100u8).find(|&q| f64::from(q) >= score).unwrap_or(100)
}

impl ImageSource for SyntheticImages {
    fn finger(&self, person: u64, position: BioSubType, impression: u32) -> Result<SimImage, ImageError> {
        let p = self.person(person);
        let pos = match position {
            // A single-finger capture of an unnamed finger: the right index.
            BioSubType::Unknown => BioSubType::RightIndex,
            other => other,
        };
        let imp = p.finger_impression(finger_position(pos), impression);
        let quality = measured_finger_quality(&imp.image);
        let iso = finger_record(position, &imp.image, quality).map_err(|e| ImageError { person, ..e })?;
        Ok(SimImage {
            iso,
            preview: imp.image,
            quality,
        })
    }

    fn iris(&self, person: u64, position: BioSubType, impression: u32) -> Result<SimImage, ImageError> {
        let img = self
            .person(person)
            .iris(position == BioSubType::Right, impression);
        let quality = measured_iris_quality(&img);
        let iso = iris_record(position, &img, quality).map_err(|e| ImageError { person, ..e })?;
        Ok(SimImage {
            iso,
            preview: img,
            quality,
        })
    }

    fn face(&self, person: u64, impression: u32) -> Result<SimImage, ImageError> {
        let img = self.person(person).face(impression);
        let preview = image::DynamicImage::ImageRgb8(img.clone()).to_luma8();
        let quality = measured_contrast_quality(&preview);
        let iso = face_record(&img, quality).map_err(|e| ImageError { person, ..e })?;
        Ok(SimImage {
            iso,
            preview,
            quality,
        })
    }
}

fn finger_position(position: BioSubType) -> tessera_biometrics::FingerPosition {
    use tessera_biometrics::FingerPosition as F;
    match position {
        BioSubType::RightThumb => F::RightThumb,
        BioSubType::RightIndex => F::RightIndex,
        BioSubType::RightMiddle => F::RightMiddle,
        BioSubType::RightRing => F::RightRing,
        BioSubType::RightLittle => F::RightLittle,
        BioSubType::LeftThumb => F::LeftThumb,
        BioSubType::LeftIndex => F::LeftIndex,
        BioSubType::LeftMiddle => F::LeftMiddle,
        BioSubType::LeftRing => F::LeftRing,
        BioSubType::LeftLittle => F::LeftLittle,
        BioSubType::Left | BioSubType::Right | BioSubType::Unknown => F::Unknown,
    }
}

fn record_error(what: &str, e: impl std::fmt::Display) -> ImageError {
    ImageError {
        what: what.to_string(),
        person: 0,
        reason: e.to_string(),
        device_gone: false,
    }
}

/// Wraps a finger image in an ISO/IEC 19794-4:2011 record (500 ppi, PNG-compressed).
pub fn finger_record(
    position: BioSubType,
    img: &image::GrayImage,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    let rec = tessera_biometrics::FingerImageRecord::from_gray(finger_position(position), img, 500, quality)
        .map_err(|e| record_error(position.human(), e))?;
    Ok(tessera_biometrics::iso19794_4::encode(&[rec]))
}

/// Wraps an iris image in an ISO/IEC 19794-6:2011 record.
pub fn iris_record(position: BioSubType, img: &image::GrayImage, quality: u8) -> Result<Vec<u8>, ImageError> {
    let eye = match position {
        BioSubType::Left => tessera_biometrics::EyeLabel::Left,
        BioSubType::Right => tessera_biometrics::EyeLabel::Right,
        _ => tessera_biometrics::EyeLabel::Unknown,
    };
    let rec = tessera_biometrics::IrisImageRecord::from_gray(eye, img, quality)
        .map_err(|e| record_error(position.human(), e))?;
    Ok(tessera_biometrics::iso19794_6::encode(&[rec]))
}

/// Wraps a face image in an ISO/IEC 19794-5:2011 record.
pub fn face_record(img: &image::RgbImage, quality: u8) -> Result<Vec<u8>, ImageError> {
    let rec =
        tessera_biometrics::FaceImageRecord::from_rgb(img, quality).map_err(|e| record_error("face", e))?;
    Ok(tessera_biometrics::iso19794_5::encode(&[rec]))
}

#[cfg(test)]
mod quality_tests {
    use super::measured_iris_quality;

    #[test]
    fn iris_quality_passes_synthetic_eyes_and_falls_for_flat_or_few_grey_levels() {
        for id in 1..4u64 {
            let p = tessera_biometrics::synth::SyntheticPerson::new(id);
            for right in [false, true] {
                let q = measured_iris_quality(&p.iris(right, 0));
                assert!((60..=100).contains(&q), "person {id} right={right}: {q}");
            }
        }
        let flat = image::GrayImage::from_pixel(64, 64, image::Luma([120]));
        assert_eq!(measured_iris_quality(&flat), 0);
        // Four grey levels: 2 bits of utilisation.
        let four = image::GrayImage::from_fn(64, 64, |x, _| image::Luma([u8::try_from(x % 4 * 60).unwrap()]));
        assert_eq!(measured_iris_quality(&four), 25);
    }
}
