//! The minutia type shared by the synthetic generator, the extractor, the templates and the matcher.
//!
//! Conventions (internal; the ISO/ANSI codecs convert):
//! - Coordinates are pixels at 500 ppi, origin top-left, y downwards.
//! - `direction` is in radians in [0, 2π), measured in image coordinates (`atan2(dy, dx)` with y down, so
//!   it turns clockwise on screen). ISO/IEC 19794-2 angles turn counter-clockwise: `iso = 2π - direction`.
//! - A ridge ending points away from its ridge (towards where the ridge would continue); a bifurcation
//!   points from the fork towards its stem. With this rule an ending and the bifurcation it becomes when
//!   skin is wetter (ridge/valley duality) keep the same direction.

use std::f32::consts::TAU;

/// Kind of minutia.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MinutiaKind {
    /// A ridge ends.
    Ending,
    /// A ridge splits in two.
    Bifurcation,
    /// Unknown or other.
    Other,
}

/// One minutia.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Minutia {
    /// Column, pixels.
    pub x: f32,
    /// Row, pixels.
    pub y: f32,
    /// Direction in radians, [0, 2π), image coordinates (see module docs).
    pub direction: f32,
    /// Ending, bifurcation or other.
    pub kind: MinutiaKind,
    /// Reliability 0-100.
    pub quality: u8,
}

/// Normalises an angle to [0, 2π).
#[inline]
pub fn norm_angle(a: f32) -> f32 {
    let r = a.rem_euclid(TAU);
    if r >= TAU { 0.0 } else { r }
}

/// Smallest absolute difference of two directions, in [0, π].
#[inline]
pub fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(TAU);
    if d > std::f32::consts::PI { TAU - d } else { d }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles() {
        assert!((norm_angle(-0.5) - (TAU - 0.5)).abs() < 1e-6);
        assert!((angle_diff(0.1, TAU - 0.1) - 0.2).abs() < 1e-5);
        assert!((angle_diff(3.0, 0.0) - 3.0).abs() < 1e-6);
    }
}
