//! The `tessera-station` binary driven as an operator would: init, register, approve, export, status,
//! and the exit codes and messages of common mistakes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tessera-station")
}

pub fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo")
}

fn run(home: &Path, password: &str, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("TESSERA_STATION_HOME", home)
        .env("TESSERA_STATION_PASSWORD", password)
        .env_remove("TESSERA_STATION_OPERATOR")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn init(home: &Path) -> Output {
    let rec = age::x25519::Identity::generate().to_public().to_string();
    let pk = age::x25519::Identity::generate().to_public().to_string();
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/sample-country");
    let ops = demo().join("operators.json");
    run(
        home,
        "demo-officer-pass",
        &[
            "init",
            "--center",
            "10001",
            "--machine",
            "10077",
            "--recovery-key",
            &rec,
            "--packet-key",
            &pk,
            "--config",
            cfg.to_str().unwrap(),
            "--operators",
            ops.to_str().unwrap(),
            "-o",
            "officer1",
        ],
    )
}

#[test]
fn help_explains_the_commands() {
    let o = Command::new(bin()).arg("--help").output().unwrap();
    let t = text(&o);
    for word in [
        "init",
        "login",
        "register",
        "approve",
        "export",
        "status",
        "TESSERA_STATION_PASSWORD",
    ] {
        assert!(t.contains(word), "--help lacks {word}: {t}");
    }
}

#[test]
fn operator_day_from_init_to_export() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("station");
    let o = init(&home);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("SHA256:"), "the fingerprint is shown");

    let answers = demo().join("answers-new-adult.json");
    let captures = demo().join("captures");
    let receipt = dir.path().join("receipt.html");
    let o = run(
        &home,
        "demo-officer-pass",
        &[
            "register",
            "-o",
            "officer1",
            "--answers",
            answers.to_str().unwrap(),
            "--captures",
            captures.to_str().unwrap(),
            "--receipt",
            receipt.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rid = v["output"]["rid"].as_str().unwrap().to_owned();
    assert!(std::fs::read_to_string(&receipt).unwrap().contains(&rid));

    // The officer cannot approve.
    let o = run(
        &home,
        "demo-officer-pass",
        &["approve", "-o", "officer1", "--all"],
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("supervisor"), "{}", text(&o));

    // A supervisor gets a slot, then approves.
    let o = Command::new(bin())
        .args(["add-slot", "-o", "officer1", "--new", "super1"])
        .env("TESSERA_STATION_HOME", &home)
        .env("TESSERA_STATION_PASSWORD", "demo-officer-pass")
        .env("TESSERA_STATION_NEW_PASSWORD", "demo-supervisor-pass")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&home, "demo-supervisor-pass", &["approve", "-o", "super1"]);
    assert!(text(&o).contains(&rid), "{}", text(&o));
    let o = run(
        &home,
        "demo-supervisor-pass",
        &["approve", "-o", "super1", "--rid", &rid],
    );
    assert!(o.status.success(), "{}", text(&o));

    let usb = dir.path().join("usb");
    let o = run(
        &home,
        "demo-supervisor-pass",
        &["export", "-o", "super1", "--to", usb.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(usb.join(format!("{rid}.tpkt")).exists());

    let o = run(
        &home,
        "demo-officer-pass",
        &["status", "-o", "officer1", "--json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["output"]["dashboard"]["exported"], 1);
    assert!(v["output"]["frozen"].is_null());
}

#[test]
fn mistakes_get_clear_messages_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("station");
    // Not initialised.
    let o = run(&home, "x", &["status", "-o", "officer1"]);
    assert_eq!(o.status.code(), Some(6));
    assert!(text(&o).contains("tessera-station init"), "{}", text(&o));
    assert!(init(&home).status.success());
    assert_eq!(init(&home).status.code(), Some(6), "a second init is refused");
    // Wrong password.
    let o = run(&home, "nope", &["status", "-o", "officer1"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(text(&o).contains("attempts left"), "{}", text(&o));
    // Schema-invalid answers: the error names the fields and the draft is kept.
    let mut a: serde_json::Value =
        serde_json::from_slice(&std::fs::read(demo().join("answers-new-adult.json")).unwrap()).unwrap();
    a["demographics"]["email"] = "nobody".into();
    a["demographics"]["fullName"]["fra"] = "".into();
    let bad_copy = dir.path().join("bad.json");
    std::fs::write(&bad_copy, serde_json::to_vec(&a).unwrap()).unwrap();
    for f in ["proof-of-address.pdf", "passport.png"] {
        std::fs::copy(demo().join(f), dir.path().join(f)).unwrap();
    }
    let o = run(
        &home,
        "demo-officer-pass",
        &[
            "register",
            "-o",
            "officer1",
            "--answers",
            bad_copy.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("email") && t.contains("fullName [fra]") && t.contains("--draft"),
        "{t}"
    );
    let o = run(&home, "demo-officer-pass", &["drafts", "-o", "officer1"]);
    assert!(
        text(&o).contains("1 unfinished draft(s)") && text(&o).contains("NEW"),
        "{}",
        text(&o)
    );
    // A plain SQLite file in place of the store.
    std::fs::remove_file(home.join("station.db")).unwrap();
    let _ = std::fs::remove_file(home.join("station.db-wal"));
    let _ = std::fs::remove_file(home.join("station.db-shm"));
    rusqlite::Connection::open(home.join("station.db"))
        .unwrap()
        .execute_batch("CREATE TABLE t(x);")
        .unwrap();
    let o = run(&home, "demo-officer-pass", &["status", "-o", "officer1"]);
    assert_eq!(o.status.code(), Some(6));
    assert!(text(&o).contains("unencrypted"), "{}", text(&o));
}
