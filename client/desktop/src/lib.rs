//! The registration station's desktop app (crate `tessera-desktop`): a Tauri 2 window showing the station
//! front end (`client-ui`, embedded at build time from `client-ui/dist`) over the station core.
//!
//! The shell is a thin adapter and holds no business rules:
//! - [`adapter`]: the single Tauri command `station` carries a [`Request`] (`login`, `command` with a
//!   [`Command`](tessera_station::commands::Command) of the station's command table, or `formSpec`) to the
//!   [`StationWorker`], the thread that owns the open [`Station`](tessera_station::station::Station); the answer
//!   is the same JSON the local HTTP bridge returns for the same call, and every failure is a typed
//!   [`CommandError`];
//! - a second command, `preview`, streams the live STREAM preview of a device to the webview over a Tauri
//!   `Channel` (see [`StationWorker::preview`]);
//! - [`settings`]: the station folder and logging, from defaults, a TOML file, `TESSERA_*` variables and flags;
//! - [`run`]: builds the window and runs the event loop until it closes (logging the operator out then).
//!
//! From the webview (what `client-ui/src/lib/api.ts` does):
//!
//! ```js
//! await window.__TAURI_INTERNALS__.invoke('station', { request: { call: 'command', input: { op: 'status' } } });
//! ```
//!
//! The binary (`src/main.rs`) parses flags, loads [`Settings`], installs logging and calls [`run`].
#![deny(missing_docs)]

pub mod adapter;
pub mod settings;

use std::sync::Arc;

use tessera_packet::clock::SystemClock;
use tessera_station::CommandError;

pub use adapter::{Reply, Request, StationWorker};
pub use settings::Settings;

/// Why the app could not run.
#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    /// The station worker could not start.
    #[error(transparent)]
    Worker(#[from] adapter::WorkerError),
    /// The window system or the webview failed (no display, WebKitGTK missing, ...).
    #[error(
        "the desktop window could not run: {0}; check DISPLAY (or WAYLAND_DISPLAY) and that WebKitGTK 4.1 is installed"
    )]
    Tauri(#[from] tauri::Error),
}

/// The one command the webview calls: runs a [`Request`] on the station and returns its [`Reply`].
///
/// The request arrives as raw JSON so that a malformed one is answered with a typed `INVALID_INPUT`
/// [`CommandError`] instead of Tauri's untyped argument error.
#[tauri::command]
async fn station(
    request: serde_json::Value,
    worker: tauri::State<'_, StationWorker>,
) -> Result<Reply, CommandError> {
    worker.call_json(request).await
}

/// The live STREAM preview: `request` is a `PreviewInput` (`{"part":"leftSlap","devices":{...}}`), events
/// (`started`, `frame`, then `ended` or `failed`) arrive on `on_event`. Resolves once the preview runs; stop it
/// with the command `stopPreview` (a capture or a logout stops it too).
#[tauri::command]
async fn preview(
    request: serde_json::Value,
    on_event: tauri::ipc::Channel<tessera_station::preview::PreviewEvent>,
    worker: tauri::State<'_, StationWorker>,
) -> Result<(), CommandError> {
    worker.preview(request, move |ev| on_event.send(ev).is_ok()).await
}

/// Opens the window on the station in `settings.home` and runs until the window closes.
pub fn run(settings: &Settings) -> Result<(), DesktopError> {
    let worker = StationWorker::start(settings.home.clone(), Arc::new(SystemClock))?;
    tracing::info!(home = %settings.home.display(), "starting the station desktop app");
    let app = tauri::Builder::default()
        .manage(worker.clone())
        .invoke_handler(tauri::generate_handler![station, preview])
        .build(tauri::generate_context!())?;
    app.run(move |_, event| {
        if let tauri::RunEvent::Exit = event {
            tracing::info!("window closed; logging out");
            worker.close();
        }
    });
    Ok(())
}
