//! Tessera's biometric engine.
//!
//! This crate will own fingerprint quality scoring (NFIQ 2 style), minutiae extraction, ISO/IEC 19794-2 and
//! ANSI 378 templates, 1:1 matching, the indexed 1:N search used for deduplication, and the synthetic
//! fingerprint generator used for evaluation. It does no network or database I/O.
#![deny(missing_docs)]
