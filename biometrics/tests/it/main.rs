//! Integration tests of tessera-biometrics (one binary, one module per area).

#![allow(
    clippy::cast_possible_truncation,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: fixtures and strategies may unwrap and index"
)]

mod extraction;
mod gallery;
mod image_records;
mod matching;
mod quality;
mod synth;
mod templates;
