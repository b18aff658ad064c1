//! The registration station core (crate `tessera-station`).
//!
//! A field station registers residents offline and must not lose a packet before the server has it. This
//! crate owns:
//! - [`store`]: the SQLCipher database with its random 256-bit key held in [`store::keyslots`] (one slot per
//!   operator, Argon2id of the password; one recovery slot sealed with `age` to the server's recovery key),
//!   versioned migrations, WAL with full fsync;
//! - [`station::Station`]: an unlocked store plus master data, machine identity (Ed25519, fingerprint for
//!   enrolment) and the operator's session (offline login, lockout, idle logout, center rule), and the
//!   freeze rules;
//! - [`masterdata`] and [`forms`]: the country configuration (ID schema, UI specs, lists, locations, ...)
//!   validated at load, and forms generated from it, with [`expr`] evaluating `requiredOn`/`visible`;
//! - [`workflow`]: drafts, documents ([`documents`]), captures, review, kill-safe sealing with
//!   `tessera-packet`, supervisor approval, signed export, recovery after crashes, dashboard; [`receipt`]
//!   renders the acknowledgement; [`audit`] keeps the hash-chained audit log;
//! - [`sync`]: enrolment with the server, delta master-data sync, resumable upload with signed receipts,
//!   status polling and retention; [`capture`]: biometric capture from SBI devices into a draft;
//!   [`preview`]: the live STREAM preview handed to the front ends frame by frame;
//! - [`kit`]: creating a station offline from the server's signed station set-up kit;
//! - [`commands`]: the command table every front end (CLI, Tauri shell, HTTP bridge) calls.
//!
//! ```no_run
//! # fn main() -> Result<(), tessera_station::CommandError> {
//! use std::sync::Arc;
//! use tessera_packet::clock::SystemClock;
//! use tessera_station::commands::{self, Command, LoginInput, Output};
//!
//! let input = LoginInput { home: "station-data".into(), operator: "officer1".into(), password: "...".into() };
//! let (mut station, _login) = commands::login(&input, Arc::new(SystemClock))?;
//! if let Output::Status(status) = station.execute(Command::Status)? {
//!     println!("{} packets await approval", status.dashboard.awaiting_approval);
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod audit;
pub mod bridge;
pub mod capture;
pub mod commands;
pub mod crosscheck;
pub mod crypto;
pub mod documents;
pub mod error;
pub mod expr;
pub mod forms;
pub mod kit;
pub mod masterdata;
pub mod operators;
pub mod prereg;
pub mod preview;
pub mod receipt;
pub mod receipt_pdf;
pub mod station;
pub mod store;
pub mod sync;
pub mod workflow;

pub use error::{CommandError, ErrorCode, FieldError, FreezeReason, Result, StationError};
