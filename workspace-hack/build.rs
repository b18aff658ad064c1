//! Empty: cargo resolves `[build-dependencies]` (here: the host-side feature union) only for a package that
//! has a build script.

fn main() {}
