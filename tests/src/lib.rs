//! End-to-end tests across Tessera's crates and processes live in `tests/it/`; the `tessera-demo` binary
//! (the README's first command) lives in `src/bin/`.
#![deny(missing_docs)]
