use std::process::Command;

#[test]
fn the_readme_demo_runs_and_reports_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-demo"))
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
