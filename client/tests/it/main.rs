//! Integration tests of the station core (one binary, one module per feature).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed assumption should fail the test loudly"
)]

mod api;
mod capture;
mod cli;
mod common;
mod config;
mod crash;
mod crosscheck;
mod forms;
mod kit;
mod prereg;
mod preview;
mod receipt;
mod store;
mod sync;
mod workflow;
