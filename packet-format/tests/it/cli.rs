//! The `tessera-packet` command line, run as a process.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera-packet"))
}

#[test]
fn demo_keygen_inspect_verify_open_extract() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let o = bin().arg("demo").arg("--dir").arg(&demo).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        report.contains("5. verified   machine signature, 3 section hashes, 2 sign-offs"),
        "{report}"
    );
    let pkt = std::fs::read_dir(&demo)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "tpkt"))
        .unwrap();

    let o = bin().arg("inspect").arg(&pkt).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("type           NEW")
            && text.contains("sign-off       Supervisor supervisor01 approved"),
        "{text}"
    );
    assert!(
        !text.contains("Sample Resident"),
        "inspect must not show personal data"
    );

    let o = bin()
        .arg("verify")
        .arg(&pkt)
        .arg("--machine-key")
        .arg(demo.join("machine.pub"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A key of another machine fails with exit code 1 and says why.
    let other = dir.path().join("other");
    let o = bin()
        .args(["keygen", "machine", "--out-dir"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = bin()
        .arg("verify")
        .arg(&pkt)
        .arg("--machine-key")
        .arg(other.join("machine.pub"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is signed by machine key"));

    let out = dir.path().join("opened");
    let o = bin()
        .arg("open")
        .arg(&pkt)
        .arg("--identity")
        .arg(demo.join("server.key"))
        .arg("--machine-key")
        .arg(demo.join("machine.pub"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let identity = std::fs::read_to_string(out.join("id/identity.json")).unwrap();
    assert!(identity.contains("Sample Resident 1"));

    // Keygen refuses to overwrite a key.
    let o = bin()
        .args(["keygen", "machine", "--out-dir"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(!o.status.success());

    let o = bin()
        .arg("extract")
        .arg(&pkt)
        .args(["--section", "fingers"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("use id, evidence or optional"));
}

#[test]
fn garbage_file_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("junk.tpkt");
    std::fs::write(&f, b"this is not a packet").unwrap();
    let o = bin().arg("inspect").arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("packet is truncated"), "{err}");
}

#[test]
fn help_explains_the_commands() {
    let o = bin().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    for cmd in ["keygen", "inspect", "verify", "open", "extract", "demo"] {
        assert!(text.contains(cmd), "{text}");
    }
}
