//! The Tessera sync server.
//!
//! This crate will own machine onboarding, the sync API, resumable packet ingestion, the durable processing
//! pipeline (verify, decrypt, validate, quality, deduplication, adjudication, UIN issuance), the encrypted ID
//! repository, credentials and notifications, with storage on SQLite (embedded default) or PostgreSQL.
#![deny(missing_docs)]
