//! The registration station core.
//!
//! This crate will own the station's SQLCipher store (with key slots), operators and offline rules, master
//! data and ID-schema driven forms, the registration workflow, supervisor approval, the offline queue and
//! the sync engine, exposed as one command table that the CLI, the Tauri shell and the local HTTP bridge
//! all call.
#![deny(missing_docs)]
