//! Secure Biometric Interface (MOSIP SBI 0.9.5) for Tessera.
//!
//! This crate owns:
//! - [`protocol`]: the SBI wire types (MOSIPDISC, MOSIPDINFO, RCAPTURE, CAPTURE, STREAM), error codes,
//!   transaction ids and the capture hash chain, conformant to the CTK JSON schemas;
//! - [`jws`]: compact JWS signing and verification (RS256 with an `x5c` chain, EdDSA) against a
//!   [`jws::TrustStore`] of device-provider CAs, with validity checked at an injected clock;
//! - [`pki`]: run-time generation of provider CAs and device certificates;
//! - [`sim`]: the device simulator served over real HTTP (`tessera-sbi simulate`);
//! - [`r30x`] and [`serial`]: the packet codec, driver and pty emulator of R30x-family serial
//!   fingerprint sensors, served as an SBI device by `tessera-sbi host`, Not Ready while unplugged;
//! - [`hid`]: HID enumeration against a vendor/product allow-list (`hidapi`), keyboard-report
//!   decoding and the barcode-scanner service for pre-registration QR codes, plus a `/dev/uhid`
//!   virtual scanner for tests;
//! - [`host`]: `tessera-sbi host` settings (file + `TESSERA_SBI_*`) and start-up;
//! - [`client`]: what the station calls: discovery of `127.0.0.1:4501-4600`, device info, capture
//!   with validation of signatures, chain, hash chain, segments and quality, and the STREAM preview.
//!
//! It does HTTP, serial and HID I/O, never database I/O.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use tessera_sbi::client::{ClientConfig, SbiClient};
//! use tessera_sbi::jws::TrustStore;
//! let mut trust = TrustStore::new();
//! trust.add_pem(&std::fs::read_to_string("provider-ca.pem")?)?;
//! let client = SbiClient::new(
//!     ClientConfig::default(),
//!     Arc::new(trust),
//!     Arc::new(tessera_packet::clock::SystemClock),
//! )?;
//! let found = client.discover().await;
//! println!("{} device(s)", found.devices.len());
//! # Ok(()) }
//! ```
//!
#![deny(missing_docs)]

pub mod client;
pub mod hid;
pub mod host;
pub mod jws;
pub mod pki;
pub mod protocol;
pub mod r30x;
pub mod serial;
pub mod session;
pub mod sim;
