//! The station front end's own tests, run from `cargo test`: vitest unit/component tests (`npm test`) and the
//! Playwright E2E in headless Chromium against the real `tessera-station ui` bridge (`npm run e2e`).
//!
//! Runs when `client-ui/node_modules` exists (after `npm ci --prefix client-ui`); otherwise skips with a
//! note, or fails when `TESSERA_TEST_REQUIRE_ALL=1`. The E2E needs the station binary: `TESSERA_STATION_BIN`,
//! or `target/debug/tessera-station` (which a workspace `cargo test` builds).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn required() -> bool {
    std::env::var("TESSERA_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

fn npm(ui: &Path, args: &[&str], envs: &[(&str, &Path)]) {
    let mut c = Command::new("npm");
    c.args(args).current_dir(ui);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("running npm {args:?}: {e}; install Node 20 and npm"));
    assert!(
        out.status.success(),
        "npm {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn client_ui_unit_and_browser_e2e() {
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
    npm(&ui, &["run", "e2e"], &[("TESSERA_STATION_BIN", &bin)]);
}
