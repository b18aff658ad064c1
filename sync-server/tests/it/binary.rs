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
