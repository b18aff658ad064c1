//! The `tessera-server` binary: configuration from the environment alone, first start, the machines CLI.

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn first_start_from_env_only_creates_keys_and_serves_then_cli_approves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let port = free_port();
    let exe = env!("CARGO_BIN_EXE_tessera-server");
    let mut child = Command::new(exe)
        .env_clear()
        .env("TESSERA_DATA_DIR", &data)
        .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
        .env("TESSERA_UIN_POOL_TARGET", "100")
        .env("TESSERA_UIN_POOL_LOW_WATER", "10")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/readyz")).send().await {
            up = r.status() == 200;
            if up {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server did not become ready");
    for f in [
        "keys/server-signing.key",
        "keys/packet-recipient-1.key",
        "keys/id-repo-master.key",
        "keys/database.key",
        "admin.token",
    ] {
        let mode = std::fs::metadata(data.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    assert!(data.join("tessera.db").exists());

    // Enrol through the API, approve with the CLI while the server runs.
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let req = tessera_packet::wire::EnrolmentRequest::new(&key, "10001".parse().unwrap(), "desk");
    let r = http
        .post(format!("http://127.0.0.1:{port}/api/v1/machines/enrol"))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let out = Command::new(exe)
        .env_clear()
        .env("TESSERA_DATA_DIR", &data)
        .args(["machines", "approve", "10001"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ACTIVE"));
    let out = Command::new(exe)
        .env_clear()
        .env("TESSERA_DATA_DIR", &data)
        .args(["machines", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("10001\t10001\tACTIVE\tdesk"));

    let bad = Command::new(exe)
        .env_clear()
        .env("TESSERA_LISTEN", "not-an-address")
        .arg("init")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("listen"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // SIGTERM stops it cleanly.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// The administration CLI on the database directly (the server need not run): operators, certificates, the
/// country configuration, packet keys and the quarantine; refused input exits 1 with `code: message`.
#[test]
fn administration_cli_publishes_revokes_rotates_and_reports_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let country = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sample-country");
    let exe = env!("CARGO_BIN_EXE_tessera-server");
    let run = |args: &[&str]| {
        let out = Command::new(exe)
            .env_clear()
            .env("TESSERA_DATA_DIR", &data)
            .env("TESSERA_COUNTRY_CONFIG", &country)
            .env("TESSERA_UIN_POOL_TARGET", "20")
            .env("TESSERA_UIN_POOL_LOW_WATER", "5")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(run(&["init"]).0, Some(0));

    // The command the "UIN pool is empty" error names.
    let (code, out, err) = run(&["uin-pool", "status"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("20 free UINs in the pool"), "{out}");
    let (code, out, err) = run(&["uin-pool", "fill", "30"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("30 UINs added") && out.contains("50 free UINs"),
        "{out}"
    );
    assert!(
        tessera_server::store::StoreError::PoolEmpty
            .to_string()
            .contains("`tessera-server uin-pool fill`")
    );

    let ops = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/demo/operators.json");
    let (code, out, err) = run(&["operators", "publish", ops.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("officer1\tcenter 10001\tpublished"), "{out}");
    let (_, out, _) = run(&["operators", "publish", ops.to_str().unwrap()]);
    assert!(out.contains("officer1\tcenter 10001\tunchanged"), "{out}");
    let (_, out, _) = run(&["operators", "list", "--center", "10001"]);
    assert!(out.contains("super1\t10001\tsupervisor,officer\tactive"), "{out}");
    assert!(!out.contains("argon2"));
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"id": "x", "name": "X", "roles": [], "centerId": "10001", "active": true, "passwordHash": "p"}"#,
    )
    .unwrap();
    let (code, _, err) = run(&["operators", "publish", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("invalid_roles"), "{err}");
    assert_eq!(run(&["operators", "revoke", "officer1"]).0, Some(0));
    let (code, _, err) = run(&["operators", "revoke", "officer1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not_found"), "{err}");

    let now = tessera_packet::clock::Clock::now(&tessera_packet::clock::SystemClock);
    let ca = tessera_sbi::pki::ProviderCa::generate(
        "CLI Devices CA",
        tessera_sbi::jws::Alg::EdDsa,
        now - chrono::Duration::days(1),
        now + chrono::Duration::days(30),
    )
    .unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, ca.cert_pem()).unwrap();
    let (code, out, err) = run(&["certificates", "publish", "cli-ca", pem.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("cli-ca\tpublished\tCLI Devices CA"), "{out}");
    assert!(run(&["certificates", "list"]).1.contains("cli-ca"));
    let (code, _, err) = run(&["certificates", "publish", "cli-ca", ops.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("invalid_certificate"), "{err}");

    let (code, out, err) = run(&["country-config", "load", "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("nothing to change"), "{out}");

    let (code, out, err) = run(&["packet-keys", "rotate"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("packet-recipient-2\tpublished\tage1"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("packet-recipient-1\tdecrypt only\tage1"),
        "{out}"
    );
    assert_eq!(run(&["packet-keys", "list"]).1, out);

    let (code, out, _) = run(&["packets", "list", "--status", "QUARANTINED"]);
    assert_eq!((code, out.as_str()), (Some(0), ""));
    let (code, _, err) = run(&["packets", "list", "--status", "LOST"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("invalid_status"), "{err}");
    let (code, _, err) = run(&["packets", "reprocess", "10001100010000120261129100000"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not_found"), "{err}");
}
