//! The registration station core.
//!
//! This crate owns the station's SQLCipher store (with key slots), operators and offline rules, master
//! data and ID-schema driven forms, the registration workflow, supervisor approval and export, exposed as
//! one command table that the CLI, the Tauri shell and the local HTTP bridge all call.
#![deny(missing_docs)]

pub mod audit;
pub mod commands;
pub mod crypto;
pub mod documents;
pub mod error;
pub mod expr;
pub mod forms;
pub mod masterdata;
pub mod operators;
pub mod receipt;
pub mod station;
pub mod store;
pub mod workflow;

pub use error::{CommandError, ErrorCode, FieldError, FreezeReason, Result, StationError};
