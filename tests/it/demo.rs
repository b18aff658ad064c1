use std::process::Command;

#[test]
fn the_packet_demo_runs_and_reports_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-demo"))
        .arg("--packet-only")
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for step in [
        "2. sealed",
        "3. signed off",
        "4. inspected",
        "5. verified",
        "6. opened",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
    assert!(text.contains("identical to what was sealed"));
    // Running again into the same folder is refused instead of mixing two runs.
    let again = Command::new(env!("CARGO_BIN_EXE_tessera-demo"))
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
}

/// The README's demo: server, SBI simulator and two stations; a registration from capture to UIN.
#[test]
fn the_end_to_end_demo_registers_a_resident_and_the_server_issues_a_uin() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-demo"))
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "1. Server",
        "2. Devices",
        "captured LeftSlap over SBI",
        "captured Face over SBI",
        "supervisor super1 approved it",
        "signed receipt verified and stored",
        "status PROCESSED",
        "status ON_HOLD (adjudication:demographic+biometric)",
        "adjudicator decided DUPLICATE",
        "status DUPLICATE",
        "8. The same person registers again at station B",
        "9. Server decision for the second registration",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
    let uin_line = text
        .lines()
        .find(|l| l.starts_with("7. UIN issued: "))
        .unwrap_or_else(|| panic!("no UIN issued:\n{text}"));
    let uin = uin_line
        .trim_start_matches("7. UIN issued: ")
        .split_whitespace()
        .next()
        .unwrap();
    assert_eq!(uin.len(), 10, "{uin_line}");
    assert!(uin.parse::<tessera_packet::ids::Uin>().is_ok(), "{uin_line}");
    assert!(
        started.elapsed().as_secs() < 120,
        "the demo took {:?}",
        started.elapsed()
    );
}
