//! The station front end's own tests, run from `cargo test`: vitest unit/component tests (`npm test`) and the
//! Playwright E2E in headless Chromium against the real `tessera-station ui` bridge (`npm run e2e`).
//!
//! For the E2E this test starts, in this process and as `tests/src/demo.rs` does, a real `tessera-server`
//! on the embedded default (SQLite, fresh keys, sample country) with the demo operators and the simulator's
//! device CA published for stations to sync, and the SBI device simulator; the browser run enrols the
//! station through the UI from an empty folder and the server's station set-up kit, previews and captures
//! over SBI, gets the packet approved, uploads it and sees the server's status come back. The E2E learns where they are from `TESSERA_E2E_SERVER_URL`, `TESSERA_E2E_ADMIN_TOKEN`,
//! `TESSERA_E2E_PACKET_KEY`, `TESSERA_E2E_SBI_PORTS` (`first-last`), `TESSERA_E2E_KIT` (the kit file) and
//! `TESSERA_E2E_KIT_FINGERPRINT` (its server-key fingerprint, as on the administrator's slip).
//!
//! Runs when `client-ui/node_modules` exists (after `npm ci --prefix client-ui`); otherwise skips with a
//! note, or fails when `TESSERA_TEST_REQUIRE_ALL=1`. The E2E needs the station binary: `TESSERA_STATION_BIN`,
//! or `target/debug/tessera-station` (which a workspace `cargo test` builds).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use tessera_packet::clock::SystemClock;
use tessera_server::settings::Settings;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn required() -> bool {
    std::env::var("TESSERA_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

fn npm(ui: &Path, args: &[&str], envs: &[(&str, String)]) {
    let mut c = Command::new("npm");
    c.args(args).current_dir(ui);
    for (k, v) in envs {
        c.env(k, v);
    }
    // The server and the simulator run on this runtime's other workers while npm blocks this one.
    let out = tokio::task::block_in_place(|| c.output())
        .unwrap_or_else(|e| panic!("running npm {args:?}: {e}; install Node 20 and npm"));
    assert!(
        out.status.success(),
        "npm {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The E2E prints one line per step and its figures: keep them in the test output.
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}

/// The SBI simulator's default device set on a block of 4 consecutive free ports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ui_unit_and_browser_e2e() {
    let ui = root().join("client-ui");
    if !ui.join("node_modules").is_dir() {
        assert!(
            !required(),
            "client-ui/node_modules is missing and TESSERA_TEST_REQUIRE_ALL=1: run `npm ci --prefix client-ui`"
        );
        eprintln!("skipping client-ui tests: run `npm ci --prefix client-ui` to enable them");
        return;
    }
    npm(&ui, &["test"], &[]);
    npm(&ui, &["run", "build"], &[]);
    let bin = std::env::var_os("TESSERA_STATION_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target =
                std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
            target.join("debug/tessera-station")
        });
    if !bin.is_file() {
        assert!(
            !required(),
            "{} is missing and TESSERA_TEST_REQUIRE_ALL=1: build it with `cargo build -p tessera-station`",
            bin.display()
        );
        eprintln!("skipping the client-ui browser E2E: {} not built", bin.display());
        return;
    }

    // A real server on the embedded default, and the device simulator.
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        data_dir: dir.path().join("server"),
        listen: "127.0.0.1:0".parse().unwrap(),
        country_config: Some(root().join("config/sample-country")),
        uin_pool_target: 200,
        uin_pool_low_water: 20,
        ..Settings::default()
    };
    let state = tessera_server::prepare(settings, Arc::new(SystemClock))
        .await
        .unwrap();
    let server = tessera_server::start(state).await.unwrap();
    let url = format!("http://{}", server.addr);
    let (simulator, sbi_base) = tessera_e2e::demo::start_simulator().await.unwrap();
    // The administrator publishes the center's operators and the device provider's CA to stations.
    let admin = tessera_e2e::demo::AdminApi::new(&url, &dir.path().join("server")).unwrap();
    let bundle = std::fs::read(root().join("client/demo/operators.json")).unwrap();
    tessera_e2e::demo::publish_to_stations(&admin, &bundle, simulator.ca_pem())
        .await
        .unwrap();
    let packet_key = server
        .state
        .keys
        .packet_identities
        .first()
        .map(|(_, i)| i.to_public().to_string())
        .unwrap();
    let admin_token = std::fs::read_to_string(dir.path().join("server/admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    // The administrator's station set-up kit for center 10001 (`tessera-server station-kit`), from which the
    // browser run creates its second station in an empty folder.
    let (kit, kit_summary) = tessera_server::station_kit::build(
        server.state.store.as_ref(),
        &server.state.keys,
        &tessera_server::station_kit::KitRequest {
            center_id: "10001".into(),
            machine_id: "00000".into(),
            server_url: url.clone(),
            recovery_key: age::x25519::Identity::generate().to_public().to_string(),
        },
        tessera_packet::clock::Clock::now(&SystemClock),
    )
    .await
    .unwrap();
    let kit_path = dir.path().join("station-10001.tkit");
    std::fs::write(&kit_path, kit.to_bytes().unwrap()).unwrap();

    npm(
        &ui,
        &["run", "e2e"],
        &[
            ("TESSERA_STATION_BIN", bin.display().to_string()),
            ("TESSERA_E2E_SERVER_URL", url),
            ("TESSERA_E2E_ADMIN_TOKEN", admin_token),
            ("TESSERA_E2E_PACKET_KEY", packet_key),
            ("TESSERA_E2E_SBI_PORTS", format!("{sbi_base}-{}", sbi_base + 3)),
            ("TESSERA_E2E_KIT", kit_path.display().to_string()),
            ("TESSERA_E2E_KIT_FINGERPRINT", kit_summary.server_key_fingerprint),
        ],
    );
    drop(simulator);
    server.stop().await.unwrap();
}
