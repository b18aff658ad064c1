//! End-to-end tests across Tessera's crates and processes live in `tests/it/`; the `tessera-demo` binary
//! (the README's first command) lives in `src/bin/` and runs [`demo::run`]: server, SBI simulator and two
//! stations in one process, three registrations from capture to UIN, credential and card, and the first
//! person registered again (held as a duplicate and adjudicated).
#![deny(missing_docs)]

pub mod demo;
