//! End-to-end tests across Tessera's crates and processes live in `tests/it/`; this library holds the
//! helpers they share (starting servers, simulators and stations as processes).
#![deny(missing_docs)]
