//! No code: this crate only unifies the features of dependencies shared by the workspace's default members and
//! the desktop shell, so that `cargo test` and `cargo test -p tessera-desktop` share compiled dependencies
//! (see its `Cargo.toml`).
