//! The real desktop binary in a real WebKitGTK webview: Xvfb, `tauri-driver` in front of Debian's
//! `WebKitWebDriver`, and the W3C WebDriver protocol. Logs in as the demo officer (first with a wrong
//! password) on a fresh station, checks the dashboard's DOM, then completes one registration through the
//! wizard (demographics, document scans, a live STREAM preview frame from the SBI simulator through the Tauri
//! channel, capture records, review, sign-off) and sees it awaiting approval. The station is created from a
//! station set-up kit (as the first-run screen does) that carries the simulator's device-provider CA.
//!
//! Needs `Xvfb`, `tauri-driver` (the prebuilt npm `@crabnebula/tauri-driver`, as `.ci/run` installs it) and
//! `WebKitWebDriver` (Debian `webkit2gtk-driver`); the paths can be given with `TESSERA_XVFB`, `TESSERA_TAURI_DRIVER`,
//! `TESSERA_WEBKIT_WEBDRIVER`. Without them the test skips with a note, or fails when
//! `TESSERA_TEST_REQUIRE_ALL=1`. With `TESSERA_DESKTOP_SCREENSHOTS=<folder>` it also saves screenshots of the
//! X screen (ImageMagick `import`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tessera_packet::clock::{Clock as _, SystemClock};
use tessera_packet::wire::kit::{SignedStationKit, StationKit};
use tessera_packet::wire::{SyncItem, SyncKind, SyncPage, encode_b64};
use tessera_station::crypto::KdfParams;
use tessera_station::operators::OperatorBundle;

use crate::webdriver::{self, Session, WdError, WdResult};

/// Demo passwords from client/demo/README.md (TEST-ONLY vectors).
const OFFICER: (&str, &str) = ("officer1", "demo-officer-pass");

const WAIT: Duration = Duration::from_secs(30);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn required() -> bool {
    std::env::var("TESSERA_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// `env` if set, else `name` on PATH, else one of `fallbacks`.
fn tool(env: &str, name: &str, fallbacks: &[PathBuf]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .chain(fallbacks.iter().cloned())
        .find(|p| p.is_file())
}

/// A child process stopped (SIGTERM, then SIGKILL) when the test ends, passed or failed.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Drop for Proc {
    #[allow(
        clippy::disallowed_methods,
        reason = "Drop cannot await; a bounded wait for a child process to exit"
    )]
    fn drop(&mut self) {
        // tauri-driver stops its WebKitWebDriver only on SIGTERM/SIGINT; SIGKILL would orphan it.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Xvfb on a free display (it picks the number and writes it to stdout with `-displayfd`).
fn start_xvfb(xvfb: &Path) -> (Proc, String) {
    let mut child = Command::new(xvfb)
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", xvfb.display()));
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let n: u32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("Xvfb printed no display number: {line:?}"));
    (Proc { child, name: "Xvfb" }, format!(":{n}"))
}

/// The sample country configuration as the sync pages a server would send (the layout of its
/// `manifest.json`: `idSchema`, `uiSpecs`, `labels`, every other file a master-data item, the manifest itself).
fn configuration_pages() -> Vec<SyncPage> {
    let dir = root().join("config/sample-country");
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
    };
    let manifest = read("manifest.json");
    let mut version = 0;
    let mut item = |key: String, body: serde_json::Value| {
        version += 1;
        SyncItem {
            key,
            version,
            deleted: false,
            body,
        }
    };
    let (mut schema, mut specs, mut md) = (vec![], vec![], vec![]);
    for (name, f) in manifest["files"].as_object().unwrap() {
        match (name.as_str(), f) {
            ("idSchema", serde_json::Value::String(f)) => schema.push(item("1.0".into(), read(f))),
            ("uiSpecs" | "labels", serde_json::Value::Object(m)) => {
                for (k, f) in m {
                    let body = read(f.as_str().unwrap());
                    if name == "uiSpecs" {
                        specs.push(item(k.clone(), body));
                    } else {
                        md.push(item(format!("labels/{k}"), body));
                    }
                }
            }
            (key, serde_json::Value::String(f)) => md.push(item(key.into(), read(f))),
            _ => panic!("manifest entry {name}"),
        }
    }
    md.push(item("manifest".into(), manifest.clone()));
    let page = |kind, items| SyncPage {
        kind,
        items,
        next_cursor: "0".into(),
        has_more: false,
    };
    vec![
        page(SyncKind::IdSchema, schema),
        page(SyncKind::UiSpec, specs),
        page(SyncKind::MasterData, md),
    ]
}

/// A fresh station (center 10001) with the demo officer's key slot, created from a station set-up kit signed
/// by a test server key, as the app's first-run screen does; the kit trusts `device_ca_pem`.
fn station_home(device_ca_pem: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let bundle =
        OperatorBundle::parse(&std::fs::read(root().join("client/demo/operators.json")).unwrap()).unwrap();
    let key = || age::x25519::Identity::generate().to_public().to_string();
    let server = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]); // TEST-ONLY server key
    let mut sections = configuration_pages();
    let one = |kind, key: &str, body: serde_json::Value| SyncPage {
        kind,
        items: vec![SyncItem {
            key: key.into(),
            version: 1000,
            deleted: false,
            body,
        }],
        next_cursor: "1000".into(),
        has_more: false,
    };
    sections.push(SyncPage {
        kind: SyncKind::Operators,
        items: bundle
            .operators
            .iter()
            .map(|o| SyncItem {
                key: o.id.clone(),
                version: 1000,
                deleted: false,
                body: serde_json::to_value(o).unwrap(),
            })
            .collect(),
        next_cursor: "1000".into(),
        has_more: false,
    });
    sections.push(one(SyncKind::PacketKeys, "k1", json!({"recipient": key()})));
    sections.push(one(
        SyncKind::Certificates,
        "sim-ca",
        json!({"pem": device_ca_pem}),
    ));
    let kit = StationKit {
        center_id: "10001".into(),
        machine_id: "10077".into(),
        server_url: "http://127.0.0.1:9".into(),
        server_key: encode_b64(server.verifying_key().as_bytes()),
        recovery_key: key(),
        created_at: SystemClock.now(),
        sections,
    };
    let bytes = SignedStationKit::sign(&kit, &server).unwrap().to_bytes().unwrap();
    tessera_station::kit::create(
        dir.path(),
        &bytes,
        None,
        OFFICER.0,
        OFFICER.1,
        KdfParams::TEST_ONLY_FAST,
        Arc::new(SystemClock),
    )
    .unwrap();
    dir
}

/// The SBI simulator's four devices on a free block of ports; returns it with its first port.
async fn start_simulator() -> (tessera_sbi::sim::RunningSimulator, u16) {
    for _ in 0..50 {
        let base = 20_000 + free_port() % 30_000;
        let started = tessera_sbi::sim::start(
            tessera_sbi::sim::SimConfig::from_port(base),
            Arc::new(SystemClock),
            tessera_sbi::sim::default_image_source().unwrap(),
        )
        .await;
        if let Ok(s) = started {
            return (s, base);
        }
    }
    panic!("no free block of 4 ports for the SBI simulator");
}

fn screenshot(display: &str, name: &str) {
    let Some(dir) = std::env::var_os("TESSERA_DESKTOP_SCREENSHOTS") else {
        return;
    };
    let path = PathBuf::from(dir).join(format!("{name}.png"));
    let ok = Command::new("import")
        .args(["-display", display, "-window", "root"])
        .arg(&path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ImageMagick import could not write {}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_app_logs_in_and_completes_a_registration() {
    let xvfb = tool("TESSERA_XVFB", "Xvfb", &[]);
    // Where `.ci/run` installs the prebuilt driver, then a `cargo install` one.
    let cargo_bin = std::env::var_os("HOME")
        .map(PathBuf::from)
        .into_iter()
        .flat_map(|h| {
            [
                h.join(".cache/tessera/tauri-driver-2.0.9/node_modules/.bin/tauri-driver"),
                h.join(".cargo/bin/tauri-driver"),
            ]
        })
        .collect::<Vec<_>>();
    let driver = tool("TESSERA_TAURI_DRIVER", "tauri-driver", &cargo_bin);
    let native = tool(
        "TESSERA_WEBKIT_WEBDRIVER",
        "WebKitWebDriver",
        &[PathBuf::from("/usr/bin/WebKitWebDriver")],
    );
    let (Some(xvfb), Some(driver), Some(native)) = (xvfb, driver, native) else {
        let msg = "the desktop webview test needs Xvfb (Debian xvfb), tauri-driver (npm \
                   @crabnebula/tauri-driver, see .ci/run) and WebKitWebDriver (Debian webkit2gtk-driver)";
        assert!(!required(), "{msg}, and TESSERA_TEST_REQUIRE_ALL=1");
        eprintln!("skipping: {msg}");
        return;
    };

    let (simulator, sbi_base) = start_simulator().await;
    let home = station_home(simulator.ca_pem());
    let logs = tempfile::tempdir().unwrap();
    let (_xvfb, display) = start_xvfb(&xvfb);
    let (port, native_port) = (free_port(), free_port());
    let driver_log = logs.path().join("tauri-driver.log");
    let _driver = Proc {
        child: Command::new(&driver)
            .arg("--port")
            .arg(port.to_string())
            .arg("--native-port")
            .arg(native_port.to_string())
            .arg("--native-driver")
            .arg(&native)
            .env("DISPLAY", &display)
            .env_remove("WAYLAND_DISPLAY")
            // Software rendering: Xvfb has no GPU.
            .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("NO_AT_BRIDGE", "1")
            .env("TESSERA_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&driver_log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver.display())),
        name: "tauri-driver",
    };
    let base = format!("http://127.0.0.1:{port}");
    let driver_output = || std::fs::read_to_string(&driver_log).unwrap_or_default();
    webdriver::wait_ready(&base, WAIT).await.unwrap_or_else(|e| {
        panic!(
            "{e}\n--- tauri-driver/WebKitWebDriver/app log:\n{}",
            driver_output()
        )
    });

    let launched = Instant::now();
    let session = Session::new(
        &base,
        json!({
            "browserName": "wry",
            "tauri:options": {
                "application": env!("CARGO_BIN_EXE_tessera-desktop"),
                "args": ["--home", home.path()],
            },
        }),
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n--- tauri-driver/WebKitWebDriver/app log:\n{}",
            driver_output()
        )
    });
    let outcome = drive(&session, launched, &display, sbi_base).await;
    let deleted = session.delete().await;
    if let Err(e) = outcome {
        panic!(
            "{e}\n--- tauri-driver/WebKitWebDriver/app log:\n{}",
            driver_output()
        );
    }
    deleted.unwrap();
    drop(simulator);
    // The app logged the calls by name and outcome only: no password, no personal data.
    let log = driver_output();
    assert!(!log.contains(OFFICER.1), "the password reached a log:\n{log}");
}

async fn drive(s: &Session, launched: Instant, display: &str, sbi_base: u16) -> WdResult<()> {
    // First screen: the login form, served from the embedded front end.
    s.wait_text("#login-title", "Operator login", WAIT).await?;
    let to_login = launched.elapsed();
    let fcp = s
        .script(
            "const p = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint'); \
             return p ? p.startTime : null;",
        )
        .await?;
    eprintln!(
        "desktop figures: launch to login form {} ms (session start, app start, webview, first render); \
         first contentful paint {} ms after navigation start",
        to_login.as_millis(),
        fcp.as_f64().map_or("n/a".into(), |v| format!("{v:.0}"))
    );
    let transport = s
        .script("return typeof (window.__TAURI_INTERNALS__ && window.__TAURI_INTERNALS__.invoke);")
        .await?;
    if transport != json!("function") {
        return Err(WdError(format!(
            "the page does not run inside Tauri (invoke is {transport})"
        )));
    }
    screenshot(display, "desktop-login-eng");

    let user = s.find("#login-user").await?;
    let password = s.find("#login-password").await?;
    let submit = s.find("form button[type=submit]").await?;

    // A wrong password comes back through invoke as the core's typed error, shown in the form.
    s.type_into(&user, OFFICER.0).await?;
    s.type_into(&password, "not-the-password").await?;
    s.click(&submit).await?;
    let alert = s
        .wait_text("[data-testid=login-error]", "wrong password", WAIT)
        .await?;
    if !alert.contains("officer1") {
        return Err(WdError(format!(
            "the error does not name the operator: {alert:?}"
        )));
    }

    // The right one reaches the dashboard with the station's real counts.
    s.clear(&password).await?;
    s.type_into(&password, OFFICER.1).await?;
    s.click(&submit).await?;
    s.wait_text("main h2", "Dashboard", WAIT).await?;
    let who = s.wait_text("[data-testid=operator]", OFFICER.0, WAIT).await?;
    if who.trim() != OFFICER.0 {
        return Err(WdError(format!("header shows {who:?}, not the officer")));
    }
    for (tile, label) in [
        ("drafts", "Drafts"),
        ("awaiting", "Awaiting approval"),
        ("rejected", "Rejected"),
    ] {
        let text = s
            .wait_text(&format!("[data-testid=count-{tile}]"), label, WAIT)
            .await?;
        if !text.starts_with('0') {
            return Err(WdError(format!(
                "a fresh station should count 0 in {tile}, shows {text:?}"
            )));
        }
    }
    s.wait_text("main", "No open drafts.", WAIT).await?;
    screenshot(display, "desktop-dashboard-eng");
    register(s, display, sbi_base).await
}

/// Sets a `<select>` to `value` once that option exists (chained drop-downs fill in after their parent),
/// as a user choosing it would: the `change` event fires.
async fn choose(s: &Session, css: &str, value: &str) -> WdResult<()> {
    s.wait_script(
        "const e = document.querySelector(arguments[0]); \
         if (!e || ![...e.options].some(o => o.value === arguments[1])) return false; \
         e.value = arguments[1]; e.dispatchEvent(new Event('change', { bubbles: true })); return true;",
        json!([css, value]),
        WAIT,
    )
    .await
}

async fn fill(s: &Session, css: &str, text: &str) -> WdResult<()> {
    let el = s.find(css).await?;
    s.type_into(&el, text).await
}

async fn next(s: &Session, step_title: &str) -> WdResult<()> {
    let submit = s.find("form.card button[type=submit]").await?;
    s.click(&submit).await?;
    s.wait_text("[data-testid=step-title]", step_title, WAIT)
        .await
        .map(drop)
}

/// One registration of the demo adult (client/demo/answers-new-adult.json) through the wizard in the webview.
async fn register(s: &Session, display: &str, sbi_base: u16) -> WdResult<()> {
    let demo = root().join("client/demo");
    let nav = s.find("[data-testid=nav-new]").await?;
    s.click(&nav).await?;
    s.wait_text("[data-testid=step-title]", "Process", WAIT).await?;
    next(s, "Consent").await?;
    let consent = s.find("input[name=consent]").await?;
    s.click(&consent).await?;
    next(s, "Languages").await?;
    let fra = s.find("input[type=checkbox][value=fra]").await?;
    s.click(&fra).await?;
    next(s, "Demographics").await?;
    for (css, text) in [
        ("#f-fullName-eng", "Amina Diallo"),
        ("#f-fullName-fra", "Amina Diallo"),
        ("#f-dateOfBirth", "1988-03-14"),
        ("#f-addressLine1-eng", "12 Hill Street"),
        ("#f-addressLine1-fra", "12 rue de la Colline"),
        ("#f-phone", "+22501020304"),
        ("#f-email", "amina@example.org"),
    ] {
        fill(s, css, text).await?;
    }
    for (css, value) in [
        ("#f-gender", "FLE"),
        ("#f-residenceStatus", "NFR"),
        ("#f-region", "NOR"),
        ("#f-province", "NOR-HL"),
        ("#f-city", "HLB"),
        ("#f-postalCode", "10101"),
    ] {
        choose(s, css, value).await?;
    }
    screenshot(display, "desktop-wizard-demographics-eng");
    next(s, "Documents").await?;
    // File inputs take a path typed into them (W3C WebDriver file upload).
    choose(s, "#dt-proofOfAddress", "DOC002").await?;
    fill(s, "#dr-proofOfAddress", "BILL-2026-001").await?;
    fill(
        s,
        "#df-proofOfAddress",
        &demo
            .join("proof-of-address.pdf")
            .canonicalize()
            .unwrap()
            .to_string_lossy(),
    )
    .await?;
    s.wait_text(
        "[data-testid=imported-proofOfAddress]",
        "proof-of-address.pdf",
        WAIT,
    )
    .await?;
    choose(s, "#dt-proofOfIdentity", "DOC001").await?;
    fill(
        s,
        "#df-proofOfIdentity",
        &demo
            .join("passport.png")
            .canonicalize()
            .unwrap()
            .to_string_lossy(),
    )
    .await?;
    s.wait_text("[data-testid=imported-proofOfIdentity]", "passport.png", WAIT)
        .await?;
    // The simulator's ports (Settings > Devices keeps them in local storage).
    s.script(&format!(
        "localStorage.setItem('tessera.devices', JSON.stringify({{firstPort: {sbi_base}, lastPort: {}}})); return true;",
        sbi_base + 3
    ))
    .await?;
    next(s, "Biometrics").await?;
    s.wait_script(
        "return !!document.querySelector('[data-testid=no-devices], [data-testid=devices]');",
        json!([]),
        WAIT,
    )
    .await?;
    // The live STREAM preview of the face camera reaches the webview through the Tauri channel: at least one
    // decoded frame, then Stop.
    let preview = s.find("[data-testid=preview-face]").await?;
    s.click(&preview).await?;
    let shown = s
        .wait_script(
            "const p = document.querySelector('[data-testid=preview]'); \
             const img = document.querySelector('[data-testid=preview-image]'); \
             return !!p && Number(p.dataset.frames) >= 1 && !!img && img.naturalWidth > 0;",
            json!([]),
            WAIT,
        )
        .await;
    if let Err(e) = shown {
        let status = s
            .script("return document.querySelector('[data-testid=preview]')?.innerText ?? 'no preview';")
            .await?;
        return Err(WdError(format!(
            "no preview frame in the webview ({e}): {status}"
        )));
    }
    screenshot(display, "desktop-wizard-preview-eng");
    s.click(&preview).await?;
    s.wait_text("[data-testid=preview-status]", "Preview stopped.", WAIT)
        .await?;
    // The officer imports the capture records (the simulator's captures are the browser E2E's part).
    let import = s.find("details summary").await?;
    s.click(&import).await?;
    let mut captures: Vec<String> = std::fs::read_dir(demo.join("captures"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .canonicalize()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    captures.sort();
    fill(s, "#bio-files", &captures.join("\n")).await?;
    s.wait_text(
        "[data-testid=captured]",
        &format!("{} captures stored", captures.len()),
        WAIT,
    )
    .await?;
    next(s, "Review").await?;
    s.wait_text("[data-testid=review-ready]", "", WAIT).await?;
    next(s, "Sign-off").await?;
    let sign = s.find("form.card button[type=submit]").await?;
    s.click(&sign).await?;
    let rid = s.wait_text("[data-testid=rid]", "", WAIT).await?;
    let rid = rid.trim();
    if rid.len() != 29 || !rid.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WdError(format!("the acknowledgement shows {rid:?}, not a RID")));
    }
    screenshot(display, "desktop-acknowledgement-eng");
    let done = s.find("form.card button[type=submit]").await?;
    s.click(&done).await?;
    s.wait_text("main h2", "Dashboard", WAIT).await?;
    let awaiting = s
        .wait_text("[data-testid=count-awaiting]", "Awaiting approval", WAIT)
        .await?;
    if !awaiting.starts_with('1') {
        return Err(WdError(format!(
            "the sealed registration should await approval, the dashboard shows {awaiting:?}"
        )));
    }
    Ok(())
}
