//! Crash safety: `tessera-station register` is killed with SIGKILL at random moments, 100 times. After
//! each kill the next login's recovery must leave no packet lost, none duplicated and none corrupt.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tessera_packet::SignOffRole;

use crate::cli::{bin, demo};
use crate::common::*;

fn docs_without_freeze() -> Vec<tessera_station::masterdata::Document> {
    let mut docs = master_docs();
    let d = docs.iter_mut().find(|d| d.name == "station-settings").unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&d.body).unwrap();
    v["freeze"]["maxPacketsAwaitingApproval"] = 100_000.into();
    v["freeze"]["maxDaysWithoutMasterDataSync"] = 100_000.into();
    v["freeze"]["minFreeDiskMb"] = 0.into();
    d.body = v.to_string();
    docs
}

fn register_cmd(home: &std::path::Path) -> Command {
    let mut c = Command::new(bin());
    c.args(["register", "-o", "officer1", "--json", "--answers"])
        .arg(demo().join("answers-new-adult.json"))
        .arg("--captures")
        .arg(demo().join("captures"))
        .env("TESSERA_STATION_HOME", home)
        .env("TESSERA_STATION_PASSWORD", OFFICER_PW)
        .env_remove("TESSERA_STATION_OPERATOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    c
}

/// Checks the invariants; returns the RIDs of recorded packets.
fn check_invariants(env: &Env, machine: &ed25519_dalek::VerifyingKey) -> BTreeSet<String> {
    let st = login(env, "officer1", OFFICER_PW).unwrap();
    let conn = st.store().conn();
    let sealing: i64 = conn
        .query_row("SELECT count(*) FROM drafts WHERE state = 'SEALING'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(sealing, 0, "recovery leaves no half-sealed draft");
    let mut rows = conn.prepare("SELECT rid, sha256 FROM packets").unwrap();
    let rows: Vec<(String, String)> = rows
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rids = BTreeSet::new();
    for (rid, sha) in &rows {
        let path = env.home().join("packets").join(format!("{rid}.tpkt"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("packet {rid} lost: {e}"));
        assert_eq!(
            &hex::encode(tessera_station::crypto::sha256(&bytes)),
            sha,
            "packet {rid} changed"
        );
        let mut p = tessera_packet::read_file(&path).unwrap();
        p.verify(machine)
            .unwrap_or_else(|e| panic!("packet {rid} corrupt: {e}"));
        assert!(
            p.signoffs().iter().any(|s| s.role == SignOffRole::Officer),
            "packet {rid} lacks the officer sign-off"
        );
        assert!(rids.insert(rid.clone()), "packet {rid} duplicated");
    }
    for e in std::fs::read_dir(env.home().join("packets")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let rid = name
            .strip_suffix(".tpkt")
            .unwrap_or_else(|| panic!("stray file {name} after recovery"));
        assert!(rids.contains(rid), "file {name} has no packet record");
    }
    tessera_station::audit::verify(conn).unwrap();
    rids
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "the test waits real time before killing a real process"
)]
fn kill_9_during_register_and_seal_loses_nothing_100_times() {
    let (env, st, id) = init_station_with(docs_without_freeze());
    drop(st);
    let machine =
        ed25519_dalek::VerifyingKey::from_bytes(&hex::decode(&id.public_key).unwrap().try_into().unwrap())
            .unwrap();
    // One undisturbed run gives the time window to kill in.
    let start = Instant::now();
    let out = register_cmd(env.home()).output().unwrap();
    assert!(out.status.success());
    let window = start.elapsed();
    let mut confirmed: BTreeSet<String> = BTreeSet::new();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    confirmed.insert(v["output"]["rid"].as_str().unwrap().to_owned());

    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut killed = 0;
    for _ in 0..100 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_micros(x % (u64::try_from(window.as_micros()).unwrap() * 12 / 10).max(1));
        let mut child = register_cmd(env.home()).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            confirmed.insert(v["output"]["rid"].as_str().unwrap().to_owned());
        } else {
            killed += 1;
        }
        let rids = check_invariants(&env, &machine);
        for r in &confirmed {
            assert!(rids.contains(r), "confirmed packet {r} was lost");
        }
    }
    assert!(
        killed > 20,
        "the test must actually interrupt runs (killed {killed})"
    );
}

/// `register` with the file-size limit (RLIMIT_FSIZE, set by `ulimit -f` in a shell that ignores SIGXFSZ,
/// so writes past the limit fail for real with EFBIG, as on a full disk) lowered step by step: at small
/// limits saving the draft fails, at larger ones sealing (the packet file or the recording transaction)
/// fails, at the largest the registration goes through. Every failure prints a clear error and leaves the
/// store consistent: no packet lost, half-written, or recorded without its file.
#[test]
fn disk_full_while_saving_a_draft_or_sealing_gives_a_clear_error_and_loses_nothing() {
    let mut failed_at = Vec::new();
    let mut succeeded = 0;
    // 1 KiB blocks (bash's ulimit -f unit).
    for kib in [
        16, 48, 96, 160, 240, 320, 400, 480, 560, 640, 800, 1024, 4096, 65536,
    ] {
        let (env, st, id) = init_station_with(docs_without_freeze());
        drop(st);
        let machine = ed25519_dalek::VerifyingKey::from_bytes(
            &hex::decode(&id.public_key).unwrap().try_into().unwrap(),
        )
        .unwrap();
        let before = check_invariants(&env, &machine);
        let reg = register_cmd(env.home());
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\""))
            .arg(reg.get_program())
            .args(reg.get_args())
            .env("TESSERA_STATION_HOME", env.home())
            .env("TESSERA_STATION_PASSWORD", OFFICER_PW)
            .env_remove("TESSERA_STATION_OPERATOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let rids = check_invariants(&env, &machine);
        if out.status.success() {
            succeeded += 1;
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(rids.contains(v["output"]["rid"].as_str().unwrap()), "{kib} KiB");
        } else {
            assert!(
                out.status.code().is_some(),
                "{kib} KiB: killed by a signal, not an error: {stderr}"
            );
            let stderr = stderr
                .lines()
                .find(|l| l.starts_with("error: "))
                .unwrap_or_else(|| panic!("{kib} KiB: no error line: {stderr}"))
                .to_owned();
            assert!(
                stderr.contains("full") || stderr.contains("too large") || stderr.contains("I/O"),
                "{kib} KiB: the error says the disk (file) is full: {stderr}"
            );
            assert_eq!(rids, before, "{kib} KiB: a failed registration records no packet");
            // How far it got: the draft left behind (if any) and how many of its 13 captures it holds.
            let st = login(&env, "officer1", OFFICER_PW).unwrap();
            let captured: Option<usize> = st
                .store()
                .conn()
                .query_row("SELECT body FROM drafts ORDER BY id DESC LIMIT 1", [], |r| {
                    r.get::<_, String>(0)
                })
                .ok()
                .map(|b| {
                    serde_json::from_str::<serde_json::Value>(&b).unwrap()["captures"]
                        .as_object()
                        .map_or(0, |m| m.len())
                });
            failed_at.push((kib, captured, stderr));
        }
    }
    assert!(succeeded > 0, "the largest limits let the registration through");
    assert!(
        failed_at.iter().any(|(_, c, _)| *c == Some(13)),
        "a limit fails while sealing a complete draft (the draft is kept): {failed_at:?}"
    );
    assert!(
        failed_at.iter().any(|(_, c, _)| c.is_none_or(|n| n < 13)),
        "a limit fails while saving the draft: {failed_at:?}"
    );
    assert!(failed_at.len() >= 2, "several limits must fail: {failed_at:?}");
    eprintln!("disk-full failures: {failed_at:#?}");
}
