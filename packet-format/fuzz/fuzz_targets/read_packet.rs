//! Feeds untrusted bytes to the packet reader, verifier and opener: they must return errors, never panic
//! or allocate without bound. Half the inputs are raw bytes; the other half are edits (xor at offsets,
//! truncation) of a valid sealed packet, so the fuzzer reaches the deeper layers quickly.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_packet::sample::{SampleSize, sample_content};
use tessera_packet::{SealedPacket, keys, seal};

struct Fixture {
    machine: ed25519_dalek::VerifyingKey,
    server: age::x25519::Identity,
    packet: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let machine = keys::generate_signing_key().unwrap();
        let server = keys::generate_packet_identity();
        let mut out = Cursor::new(Vec::new());
        seal(
            &sample_content(1, SampleSize::Small),
            &[server.to_public()],
            &machine,
            &mut out,
        )
        .unwrap();
        Fixture {
            machine: machine.verifying_key(),
            server,
            packet: out.into_inner(),
        }
    })
}

fn exercise(bytes: &[u8], f: &Fixture) {
    if let Ok(mut p) = SealedPacket::read(Cursor::new(bytes)) {
        let _ = p.verify(&f.machine);
        let _ = p.open(&f.server);
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 1 => {
            let mut bytes = f.packet.clone();
            for edit in rest.chunks(4) {
                if let [a, b, c, x] = edit {
                    let at = (usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c)) % bytes.len();
                    if *x == 0 {
                        bytes.truncate(at);
                        break;
                    }
                    bytes[at] ^= x;
                }
            }
            exercise(&bytes, f);
        }
        _ => exercise(data, f),
    }
});
