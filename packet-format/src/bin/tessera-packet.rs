//! `tessera-packet`: inspect, verify and open sealed packets.
fn main() {}
