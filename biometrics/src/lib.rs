//! Tessera's biometric engine.
//!
//! This crate owns everything Tessera does with biometric samples, without network or database I/O:
//!
//! - **Image records** (used by the SBI layer, the station and the server): [`iso19794_4`] finger image
//!   records (ISO/IEC 19794-4:2011, MOSIP's finger BDB), [`iso19794_5`] face and [`iso19794_6`] iris image
//!   records. Each has `encode` and a strict `decode` whose [`FormatError`]s name the byte offset and field.
//! - **Synthetic data** ([`synth`]): [`synth::SyntheticPerson`] gives deterministic fingers (SFinGe-style
//!   masters and impressions with ground truth, standard and hard profiles), minutiae-only fingers for scale
//!   tests, iris and face images.
//! - **Extraction** ([`extract`]): segmentation, orientation, frequency, Gabor enhancement, thinning,
//!   minutiae with direction and quality, false-minutiae removal.
//! - **Templates**: [`iso19794_2`] (ISO/IEC 19794-2:2005 and ANSI/INCITS 378-2004 minutiae records) and the
//!   compact versioned internal [`template::Template`].
//! - **Matching** ([`mcc`]): Minutia Cylinder-Code 1:1 matcher; prepare a probe once, compare many.
//! - **Identification** ([`gallery`]): 1:N gallery file (memory-mapped), minutia-pair hash index stage, per-person
//!   fusion; [`calibration`] maps scores to false-match rates; [`cross_check`] flags an applicant's repeated
//!   fingers and an applicant who matches the operator.
//! - **Quality** ([`quality`]): NFIQ 2-style score 0-100 from the embedded NFIQ 2 models.
//! - **Evaluation** ([`eval`]): EER, FNMR at FMR, ZeroFMR; the `tessera-bio` binary runs `gen` and `eval`.
//!
//! Minutiae conventions are in [`minutiae`]. See `docs/biometrics.md` for the design and what is not done.
//!
//! ```
//! use tessera_biometrics::iso19794_4::{self, FingerImageRecord, FingerPosition};
//! let img = image::GrayImage::from_pixel(64, 64, image::Luma([128]));
//! let rec = FingerImageRecord::from_gray(FingerPosition::LeftIndex, &img, 500, 70)?;
//! let bytes = iso19794_4::encode(&[rec]);
//! let back = iso19794_4::decode(&bytes)?;
//! assert_eq!(back[0].to_gray()?, img);
//! # Ok::<(), tessera_biometrics::FormatError>(())
//! ```
#![deny(missing_docs)]
#![cfg_attr(
    test,
    allow(
        clippy::cast_possible_truncation,
        reason = "test fixtures build small pixel values"
    )
)]

pub mod calibration;
mod codec;
pub mod cross_check;
pub mod error;
pub mod eval;
pub mod extract;
pub mod gallery;
pub mod grid;
pub mod imaging;
pub mod iso19794_2;
pub mod iso19794_4;
pub mod iso19794_5;
pub mod iso19794_6;
pub mod mcc;
pub mod minutiae;
pub mod npz;
pub mod quality;
pub mod rng;
pub mod skeleton;
pub mod synth;
pub mod template;

pub use error::FormatError;
pub use iso19794_4::{FingerImageRecord, FingerPosition, ImageCompression};
pub use iso19794_5::FaceImageRecord;
pub use iso19794_6::{EyeLabel, IrisImageRecord};
