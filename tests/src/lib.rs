//! End-to-end tests across Tessera's crates and processes live in `tests/it/`; the `tessera-demo` binary
//! (the README's first command) lives in `src/bin/` and runs [`demo::run`]: server, SBI simulator and two
//! stations in one process, a registration from capture to UIN, and the same person registered again.
#![deny(missing_docs)]

pub mod demo;
