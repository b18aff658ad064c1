//! Integration tests of tessera-sbi: JWS and trust, schema conformance of what the simulator and the
//! client put on the wire, and client <-> simulator end to end over real HTTP on free ports.

#![allow(
    clippy::cast_possible_truncation,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods,
    reason = "integration tests: failures should panic with context; fixtures index small tables"
)]

mod e2e;
mod hid;
mod jws;
mod schema;
mod serial;
mod support;
