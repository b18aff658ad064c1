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

/// The README's demo: server, SBI simulator and two stations; three residents from capture to UIN,
/// credential and card, and one deliberate duplicate held and adjudicated; the notification outbox.
#[test]
fn the_end_to_end_demo_registers_residents_issues_uins_and_holds_the_duplicate() {
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
        "3. Administrator (admin API)",
        "administrator approved it (admin API)",
        "5. Registrations at station A (NEW, adults): 3 residents",
        "officer1 registers Amina Diallo (synthetic person 1)",
        "officer1 registers Kofi Mensah (synthetic person 2)",
        "officer1 registers Mariam Traoré (synthetic person 3)",
        "captured LeftSlap over SBI",
        "captured Face over SBI",
        "supervisor super1 approved it",
        "signed receipt verified and stored",
        "status PROCESSED",
        "8. The same person (Amina Diallo) registers again at station B",
        "status ON_HOLD (adjudication:demographic+biometric)",
        "adjudicator decided DUPLICATE",
        "status DUPLICATE",
        "10. Outcome of each registration",
        "11. Notification outbox",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
    let uin_line = text
        .lines()
        .find(|l| l.starts_with("7. UIN issued: "))
        .unwrap_or_else(|| panic!("no UIN issued:\n{text}"));
    let first_uin = uin_line
        .trim_start_matches("7. UIN issued: ")
        .split_whitespace()
        .next()
        .unwrap();
    assert!(
        first_uin.parse::<tessera_packet::ids::Uin>().is_ok(),
        "{uin_line}"
    );

    // Each RID with its outcome and credential files; three different UINs; the duplicate gets none.
    let outcomes: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("10. "))
        .skip(1)
        .take_while(|l| !l.starts_with("11. "))
        .collect();
    let rid_lines: Vec<&str> = outcomes
        .iter()
        .copied()
        .filter(|l| l.split_whitespace().next().is_some_and(|w| w.len() == 29))
        .collect();
    assert_eq!(rid_lines.len(), 4, "{text}");
    let mut uins: Vec<&str> = rid_lines
        .iter()
        .filter_map(|l| l.split("UIN issued: ").nth(1))
        .collect();
    assert_eq!(uins.len(), 3, "{rid_lines:?}");
    uins.sort_unstable();
    uins.dedup();
    assert_eq!(uins.len(), 3, "one UIN per person");
    assert!(uins.contains(&first_uin));
    assert!(
        rid_lines[3].contains("(station-b): held as a duplicate of UIN") && rid_lines[3].contains(first_uin),
        "{}",
        rid_lines[3]
    );
    let files: Vec<&str> = outcomes
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with('/'))
        .collect();
    assert_eq!(files.len(), 9, "JSON, QR and PDF card for each UIN: {files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        if f.ends_with(".card.pdf") {
            assert!(bytes.starts_with(b"%PDF-"), "{f}");
        }
    }

    // The outbox: a UIN_ISSUED message per UIN and the DUPLICATE one.
    let outbox: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("11. "))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect();
    assert_eq!(outbox.len(), 4, "{text}");
    assert_eq!(outbox.iter().filter(|l| l.contains(" UIN_ISSUED ")).count(), 3);
    assert_eq!(outbox.iter().filter(|l| l.contains(" DUPLICATE ")).count(), 1);
    assert!(outbox.iter().any(|l| l.contains(&format!("UIN {first_uin}"))));
    assert!(
        started.elapsed().as_secs() < 120,
        "the demo took {:?}",
        started.elapsed()
    );
}
