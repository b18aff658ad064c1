//! Secure Biometric Interface (MOSIP SBI 0.9.5) for Tessera.
//!
//! This crate will own the SBI protocol types (discovery, device info, RCAPTURE, CAPTURE, STREAM), the
//! client the station uses to discover and capture from devices on `127.0.0.1:4501-4600`, the device host
//! that serves SBI for serial (R30x) and HID devices, and the simulator used by tests and training.
//! It does HTTP and serial/HID I/O, never database I/O.
#![deny(missing_docs)]
