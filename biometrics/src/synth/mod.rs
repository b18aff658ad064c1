//! Synthetic biometric data in the SFinGe tradition, deterministic from a person id and a seed.
//!
//! - [`SyntheticPerson`] is what the SBI simulator and the evaluation tools use: ten masters fingerprints
//!   (generated lazily, cached), impressions of them, simple iris and face images.
//! - [`master`] builds a master fingerprint: pattern class (arch, tented arch, left/right loop, whorl) with
//!   cores and deltas, a zero-pole orientation field with smooth perturbation, a ridge-period map, a
//!   fingertip silhouette, iterative space-variant Gabor growth from noise, and ground-truth minutiae
//!   (thinning + crossing number on the master).
//! - [`impression`] renders one capture: rotation, translation, Cappelli-style plastic distortion, partial
//!   contact, pressure/dryness (ridge thickness), breaks, blur, noise; two [`Profile`]s.
//! - [`fast`] produces minutiae-only impressions for scale tests without rendering images.
//! - [`iris`] and [`face`] draw simple per-person images so the capture pipeline has realistic inputs.

pub mod face;
pub mod fast;
pub mod impression;
pub mod iris;
pub mod master;

use std::sync::{Arc, OnceLock};

use image::{GrayImage, RgbImage};

use crate::iso19794_4::FingerPosition;
use crate::minutiae::Minutia;
use crate::rng::mix;

pub use impression::{Degradation, Impression};
pub use master::{MasterFingerprint, PatternClass};

/// Width of a rendered finger impression (pixels, 500 ppi).
pub const IMPRESSION_WIDTH: u32 = 320;
/// Height of a rendered finger impression (pixels, 500 ppi).
pub const IMPRESSION_HEIGHT: u32 = 400;

/// How hard the impressions are (FVC "standard" vs "hard"-like).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// Moderate pose changes, mild distortion, mostly full contact, light noise.
    #[default]
    Standard,
    /// Large rotations and translations, strong distortion, partial contact down to ~55 %, heavy noise,
    /// dry and wet skin, scratches.
    Hard,
}

impl Profile {
    fn code(self) -> u64 {
        match self {
            Profile::Standard => 1,
            Profile::Hard => 2,
        }
    }
}

/// A synthetic person: ten fingers, two irises and a face, all deterministic from `person_id`.
pub struct SyntheticPerson {
    id: u64,
    profile: Profile,
    masters: [OnceLock<Arc<MasterFingerprint>>; 16],
}

impl std::fmt::Debug for SyntheticPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyntheticPerson")
            .field("id", &self.id)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl SyntheticPerson {
    /// A person with the [`Profile::Standard`] capture profile.
    pub fn new(person_id: u64) -> Self {
        Self::with_profile(person_id, Profile::Standard)
    }

    /// A person whose impressions follow `profile` (the masters do not depend on the profile).
    pub fn with_profile(person_id: u64, profile: Profile) -> Self {
        Self {
            id: person_id,
            profile,
            masters: Default::default(),
        }
    }

    /// The person id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The capture profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    fn finger_seed(&self, position: FingerPosition) -> u64 {
        mix(&[self.id, 0xF1_A6E5, u64::from(position.code())])
    }

    fn impression_seed(&self, position: FingerPosition, impression: u32) -> u64 {
        mix(&[
            self.id,
            0x1_3E55,
            u64::from(position.code()),
            u64::from(impression),
            self.profile.code(),
        ])
    }

    /// The master fingerprint of one finger (generated on first use, then cached).
    pub fn master(&self, position: FingerPosition) -> Arc<MasterFingerprint> {
        let slot = usize::from(position.code());
        match self.masters.get(slot) {
            Some(cell) => cell
                .get_or_init(|| Arc::new(master::generate(self.finger_seed(position))))
                .clone(),
            None => Arc::new(master::generate(self.finger_seed(position))),
        }
    }

    /// One impression of a finger with its ground truth (transformed minutiae and applied degradations).
    pub fn finger_impression(&self, position: FingerPosition, impression: u32) -> Impression {
        let m = self.master(position);
        impression::render(&m, self.impression_seed(position, impression), self.profile)
    }

    /// One 500 ppi grey impression of a finger, [`IMPRESSION_WIDTH`] x [`IMPRESSION_HEIGHT`] pixels.
    ///
    /// Slap codes (13, 14, 15) give the four fingers (or both thumbs) side by side in one wider image.
    pub fn finger(&self, position: FingerPosition, impression: u32) -> GrayImage {
        let fingers: &[FingerPosition] = match position {
            FingerPosition::RightFourFingers => &FingerPosition::TEN[1..5],
            FingerPosition::LeftFourFingers => &FingerPosition::TEN[6..10],
            FingerPosition::BothThumbs => &[FingerPosition::LeftThumb, FingerPosition::RightThumb],
            _ => return self.finger_impression(position, impression).image,
        };
        let w = IMPRESSION_WIDTH * u32::try_from(fingers.len()).unwrap_or(4);
        let mut out = GrayImage::from_pixel(w, IMPRESSION_HEIGHT + 80, image::Luma([235]));
        for (i, &f) in fingers.iter().enumerate() {
            let img = self.finger_impression(f, impression).image;
            // little fingers sit lower on a slap
            let dy = [40i64, 10, 0, 25].get(i % 4).copied().unwrap_or(0);
            image::imageops::overlay(
                &mut out,
                &img,
                i64::from(IMPRESSION_WIDTH) * i64::try_from(i).unwrap_or(0),
                dy,
            );
        }
        out
    }

    /// Fast minutiae-only impression (no image), for scale tests of the matcher and the index.
    pub fn finger_minutiae(&self, position: FingerPosition, impression: u32) -> Vec<Minutia> {
        fast::impression_minutiae(
            self.finger_seed(position),
            self.impression_seed(position, impression),
            self.profile,
        )
    }

    /// A 640x480 grey near-infrared-like iris image of the right or left eye.
    pub fn iris(&self, right: bool, impression: u32) -> GrayImage {
        iris::render(
            mix(&[self.id, 0x1415, u64::from(right)]),
            mix(&[
                self.id,
                0x1415_1A9E,
                u64::from(right),
                u64::from(impression),
                self.profile.code(),
            ]),
        )
    }

    /// A 480x600 colour portrait.
    pub fn face(&self, impression: u32) -> RgbImage {
        face::render(
            mix(&[self.id, 0xFACE]),
            mix(&[self.id, 0xFACE_1A9E, u64::from(impression), self.profile.code()]),
        )
    }
}
