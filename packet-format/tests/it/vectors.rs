//! Committed test vectors (`packet-format/testdata/vector-1/`): a sealed, signed-off sample packet with
//! TEST-ONLY keys and its expected opened content. Another implementation can check itself against them.
//! Regenerate (only on a deliberate format change) with
//! `TESSERA_REGENERATE_VECTORS=1 cargo test -p tessera-packet --test it vectors`.

use std::path::{Path, PathBuf};

use tessera_packet::keys;
use tessera_packet::sample::{SampleSize, sample_content};

use crate::Keys;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vector-1")
}

fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn regenerate() {
    let d = dir();
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let k = Keys::default();
    let (_, bytes) = crate::small_signed_packet(&k);
    std::fs::write(d.join("packet.tpkt"), &bytes).unwrap();
    let warn = "# TEST VECTOR ONLY. This key is public; never use it for real data.\n";
    std::fs::write(
        d.join("TEST-ONLY-server.key"),
        format!("{warn}{}", *keys::encode_packet_identity(&k.server)),
    )
    .unwrap();
    std::fs::write(
        d.join("TEST-ONLY-machine.key"),
        format!("{warn}{}", *keys::encode_signing_key(&k.machine)),
    )
    .unwrap();
    std::fs::write(
        d.join("machine.pub"),
        keys::encode_verifying_key(&k.machine.verifying_key()),
    )
    .unwrap();
    let mut p = tessera_packet::read_file(&d.join("packet.tpkt")).unwrap();
    p.open_to_dir(&k.server, &d.join("expected")).unwrap();
}

#[test]
fn vector_1_verifies_and_opens_to_the_expected_files() {
    if std::env::var_os("TESSERA_REGENERATE_VECTORS").is_some() {
        regenerate();
    }
    let d = dir();
    let machine = keys::read_verifying_key(&d.join("machine.pub")).unwrap();
    let server = keys::read_packet_identities(&d.join("TEST-ONLY-server.key"))
        .unwrap()
        .remove(0);
    let mut p = tessera_packet::read_file(&d.join("packet.tpkt")).unwrap();
    p.verify(&machine).unwrap();
    assert_eq!(p.signoffs().len(), 1);
    assert_eq!(p.open(&server).unwrap(), sample_content(3, SampleSize::Small));
    let out = tempfile::tempdir().unwrap();
    let mut p = tessera_packet::read_file(&d.join("packet.tpkt")).unwrap();
    p.open_to_dir(&server, out.path()).unwrap();
    let got = files(out.path());
    let want = files(&d.join("expected"));
    assert_eq!(
        got.iter().map(|f| &f.0).collect::<Vec<_>>(),
        want.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(got == want, "opened files differ from testdata/vector-1/expected");
}
