//! The reference tools read what we write: `age -d` decrypts a section and `tar` lists the container.

use std::io::Cursor;
use std::process::Command;

use sha2::{Digest, Sha256};
use tessera_packet::SealedPacket;
use tessera_packet::keys::encode_packet_identity;

use crate::{Keys, require_all, small_signed_packet};

fn tool(name: &str) -> bool {
    let ok = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !require_all(),
            "{name} is not installed but TESSERA_TEST_REQUIRE_ALL=1 (run .ci/run or apt-get install {name})"
        );
        eprintln!("skipping: {name} is not installed");
    }
    ok
}

#[test]
fn age_cli_decrypts_every_section() {
    if !tool("age") {
        return;
    }
    let k = Keys::default();
    let (_, bytes) = small_signed_packet(&k);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("server.key");
    std::fs::write(&key, encode_packet_identity(&k.server).as_bytes()).unwrap();
    let mut p = SealedPacket::read(Cursor::new(&bytes)).unwrap();
    let manifest = p.manifest().clone();
    for s in &manifest.sections {
        let f = dir.path().join(&s.file);
        let mut out = std::fs::File::create(&f).unwrap();
        p.extract_section(&s.name, &mut out).unwrap();
        drop(out);
        let o = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&key)
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "age failed on {}: {}",
            s.file,
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.stdout.len() as u64, s.plaintext_size);
        assert_eq!(
            hex::encode(Sha256::digest(&o.stdout)),
            s.plaintext_sha256,
            "section {}",
            s.name
        );
    }
}

#[test]
fn tar_lists_the_container_and_a_decrypted_section() {
    if !tool("tar") || !tool("age") {
        return;
    }
    let k = Keys::default();
    let (_, bytes) = small_signed_packet(&k);
    let dir = tempfile::tempdir().unwrap();
    let pkt = dir.path().join("p.tpkt");
    std::fs::write(&pkt, &bytes).unwrap();
    let o = Command::new("tar").arg("-tf").arg(&pkt).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "id.age\nevidence.age\noptional.age\nmanifest.json\nmanifest.sig\nsignoff-1.json\n"
    );
    let key = dir.path().join("server.key");
    std::fs::write(&key, encode_packet_identity(&k.server).as_bytes()).unwrap();
    let o = Command::new("tar")
        .arg("-xf")
        .arg(&pkt)
        .arg("-C")
        .arg(dir.path())
        .arg("id.age")
        .output()
        .unwrap();
    assert!(o.status.success());
    let plain = dir.path().join("id.tar");
    let o = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key)
        .arg("-o")
        .arg(&plain)
        .arg(dir.path().join("id.age"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("tar").arg("-tf").arg(&plain).output().unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(
        list.starts_with("identity.json\nmeta.json\nbiometrics.json\nbio/rightThumb.iso\n"),
        "{list}"
    );
}

#[test]
fn we_open_sections_encrypted_by_the_age_cli() {
    // The reverse direction: a section file produced by `age -r` is an ordinary age file to us too.
    if !tool("age") {
        return;
    }
    let k = Keys::default();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("x.txt");
    std::fs::write(&plain, b"interop").unwrap();
    let enc = dir.path().join("x.age");
    let o = Command::new("age")
        .arg("-r")
        .arg(k.server.to_public().to_string())
        .arg("-o")
        .arg(&enc)
        .arg(&plain)
        .output()
        .unwrap();
    assert!(o.status.success());
    let bytes = std::fs::read(&enc).unwrap();
    let d = age::Decryptor::new(&bytes[..]).unwrap();
    let mut r = d
        .decrypt(std::iter::once(&k.server as &dyn age::Identity))
        .unwrap();
    let mut s = String::new();
    std::io::Read::read_to_string(&mut r, &mut s).unwrap();
    assert_eq!(s, "interop");
}
