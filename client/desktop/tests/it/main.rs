//! Integration tests of the desktop shell: the real binary in a real webview under Xvfb, driven over
//! WebDriver.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

mod webdriver;
mod webview;
