//! Shared helpers.

use std::path::PathBuf;

/// The sample country configuration folder.
pub fn sample_country() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/sample-country")
}
