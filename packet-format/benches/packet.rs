//! Seal and open benchmarks.
fn main() {}
