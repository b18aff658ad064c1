//! Integration tests of tessera-server: the storage conformance suite (SQLite and PostgreSQL) and the HTTP API
//! driven through real HTTP against a server on port 0.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod admin;
mod api;
mod binary;
mod blobs;
mod card;
mod common;
mod creation;
mod flow;
mod gallery;
mod import;
mod lost;
mod pipeline;
mod smtp;
mod store;
mod update;
mod upload;
