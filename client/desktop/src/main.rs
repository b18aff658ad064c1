//! Tauri 2 desktop shell for the registration station: thin command adapters over the station core's
//! command table. Not built yet; kept out of the workspace's default members so plain `cargo test` needs no
//! GTK or WebKit.

fn main() {}
