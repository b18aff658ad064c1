//! The local HTTP bridge: serves the built front end (`client-ui/dist`) and the station's command table over
//! loopback HTTP, so the same UI runs in a plain browser (and browser tests exercise the real core).
//!
//! - `GET /…` serves files of the front-end folder (`index.html` for `/`); no token needed (nothing secret).
//! - `POST /api/login` (`{"operator","password"}`) opens the station ([`commands::login`]) and returns
//!   [`commands::LoginOutput`].
//! - `POST /api/command` carries a serialised [`Command`] and returns the [`Output`](crate::commands::Output) (HTTP 200) or a
//!   [`CommandError`] (HTTP 4xx/5xx, see [`http_status`]). `logout` also closes the station.
//! - `GET /api/form/{process}` returns the synced form description ([`FormSpec`]) the wizard is generated
//!   from.
//! - First run (no station in the home yet): `GET /api/home` ([`commands::HomeState`]),
//!   `POST /api/kit/inspect` ([`commands::KitInput`] → [`crate::kit::KitSummary`]) and `POST /api/kit/create`
//!   (`{"kitBase64","kitSha256","operator","password"}` → [`commands::KitCreated`]; the first operator is then
//!   logged in on the bridge).
//! - `POST /api/preview` ([`PreviewInput`]) streams the live STREAM preview of a device
//!   ([`crate::preview`]) as `application/x-ndjson`: one [`PreviewEvent`] per line, `started`, `frame`s,
//!   then `ended` or `failed`. Closing the request stops the preview; so do a capture and `stopPreview`.
//!
//! Every `/api` request must carry the per-launch random token in the `x-tessera-token` header; without it the
//! bridge answers 401. The launch URL carries the token in its fragment (`#token=…`), which browsers never
//! send to servers; the front end reads it and sends the header. The bridge binds loopback addresses only.
//!
//! The [`Station`] lives on one worker thread; HTTP handlers send it jobs, so commands run one at a time in
//! order, exactly as in the CLI.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tessera_packet::clock::Clock;

use crate::commands::{self, Command, LoginInput};
use crate::error::{CommandError, ErrorCode};
use crate::preview::{PreviewEvent, PreviewInput};
use crate::station::Station;

/// Header carrying the per-launch token.
pub const TOKEN_HEADER: &str = "x-tessera-token";

/// Largest request body accepted (document scans travel base64 inside commands).
pub const MAX_BODY: usize = 24 * 1024 * 1024;

/// Errors starting or running the bridge.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The listen address is not a loopback address.
    #[error("refusing to listen on {addr}: the bridge binds loopback addresses only (use 127.0.0.1:0)")]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Binding or serving failed.
    #[error("HTTP bridge on {addr}: {source}; check the address is free")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The random token could not be generated.
    #[error("generating the bridge token: {0}; the system random source is unavailable")]
    Random(String),
    /// The station worker thread could not be started.
    #[error("starting the station worker thread: {0}")]
    Worker(std::io::Error),
}

/// How to start the bridge.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Station home.
    pub home: PathBuf,
    /// Listen address (loopback only; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Built front end folder (`client-ui/dist`); `None` serves the API only.
    pub dist: Option<PathBuf>,
}

/// The form description the wizard is generated from: the process's UI spec plus the master data its fields
/// refer to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormSpec {
    /// The UI spec of the process.
    pub ui_spec: serde_json::Value,
    /// The ID schema.
    pub schema: serde_json::Value,
    /// Mandatory, optional and primary languages.
    pub languages: serde_json::Value,
    /// Dynamic lists (gender, residence status, ...).
    pub lists: serde_json::Value,
    /// Location hierarchy.
    pub locations: serde_json::Value,
    /// Document categories and types.
    pub documents: serde_json::Value,
    /// Labels by language.
    pub labels: serde_json::Value,
    /// Station settings (biometric thresholds, idle logout).
    pub settings: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    operator: String,
    password: String,
}

type Job = Box<dyn FnOnce(&mut Option<Station>) + Send>;

#[derive(Clone)]
struct AppState {
    token: Arc<str>,
    jobs: mpsc::Sender<Job>,
    home: Arc<Path>,
    dist: Option<Arc<Path>>,
    clock: Arc<dyn Clock>,
}

/// A bound, not yet running bridge.
#[derive(Debug)]
pub struct Bridge {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    token: String,
    config: BridgeConfig,
    clock: Arc<dyn Clock>,
}

impl Bridge {
    /// Binds the listen address and draws the token.
    pub fn bind(config: BridgeConfig, clock: Arc<dyn Clock>) -> Result<Self, BridgeError> {
        if !config.listen.ip().is_loopback() {
            return Err(BridgeError::NotLoopback { addr: config.listen });
        }
        let io = |source| BridgeError::Io {
            addr: config.listen,
            source,
        };
        let listener = std::net::TcpListener::bind(config.listen).map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| BridgeError::Random(e.to_string()))?;
        Ok(Self {
            listener,
            addr,
            token: hex::encode(raw),
            config,
            clock,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The per-launch token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The URL to open (token in the fragment, never sent to the server).
    pub fn url(&self) -> String {
        format!("http://{}/#token={}", self.addr, self.token)
    }

    /// Serves until the process ends (blocks the calling thread).
    pub fn run(self) -> Result<(), BridgeError> {
        let addr = self.addr;
        let io = move |source| BridgeError::Io { addr, source };
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("station-worker".into())
            .spawn(move || {
                let mut station: Option<Station> = None;
                while let Ok(job) = rx.recv() {
                    job(&mut station);
                }
            })
            .map_err(BridgeError::Worker)?;
        let state = AppState {
            token: Arc::from(self.token.as_str()),
            jobs: tx,
            home: Arc::from(self.config.home.as_path()),
            dist: self.config.dist.as_deref().map(Arc::from),
            clock: self.clock,
        };
        let app = router(state);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(io)?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(self.listener).map_err(io)?;
            axum::serve(listener, app).await.map_err(io)
        })
    }
}

fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/login", post(login))
        .route("/api/command", post(command))
        .route("/api/form/{process}", get(form))
        .route("/api/preview", post(preview))
        .route("/api/home", get(home))
        .route("/api/kit/inspect", post(kit_inspect))
        .route("/api/kit/create", post(kit_create))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(api)
        .fallback(get(static_file))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Constant-time comparison so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(TOKEN_HEADER)
        .is_some_and(|v| same(v.as_bytes(), s.token.as_bytes()));
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({
                "error": "missing or wrong bridge token: open the URL the station printed at launch"
            })),
        )
            .into_response();
    }
    next.run(req).await
}

/// HTTP status for a command error.
pub fn http_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::WrongPassword
        | ErrorCode::LockedOut
        | ErrorCode::NotLoggedIn
        | ErrorCode::NotPermitted
        | ErrorCode::OperatorRejected
        | ErrorCode::NoSlot => StatusCode::FORBIDDEN,
        ErrorCode::Validation | ErrorCode::InvalidInput | ErrorCode::Document | ErrorCode::Kit => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorCode::Frozen | ErrorCode::InvalidState | ErrorCode::AlreadyInitialised => StatusCode::CONFLICT,
        ErrorCode::Server | ErrorCode::Device => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error_response(e: CommandError) -> Response {
    (http_status(e.code), axum::Json(e)).into_response()
}

fn bad_request(detail: String) -> Response {
    error_response(CommandError {
        code: ErrorCode::InvalidInput,
        message: detail,
        fields: vec![],
        freeze: None,
    })
}

fn not_logged_in() -> CommandError {
    CommandError {
        code: ErrorCode::NotLoggedIn,
        message: "nobody is logged in on the bridge; log in first".into(),
        fields: vec![],
        freeze: None,
    }
}

/// Runs a job on the station thread and waits for its answer.
async fn on_station<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&mut Option<Station>) -> Result<T, CommandError> + Send + 'static,
) -> Result<T, CommandError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move |st| {
        let _ = tx.send(f(st));
    });
    let gone = || CommandError {
        code: ErrorCode::Io,
        message: "the station worker stopped; restart tessera-station ui".into(),
        fields: vec![],
        freeze: None,
    };
    s.jobs.send(job).map_err(|_| gone())?;
    rx.await.map_err(|_| gone())?
}

async fn login(State(s): State<AppState>, body: Bytes) -> Response {
    let b: LoginBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("login body: {e}")),
    };
    let input = LoginInput {
        home: s.home.to_path_buf(),
        operator: b.operator,
        password: b.password,
    };
    let clock = s.clock.clone();
    replace_session(&s, move || {
        let (st, out) = commands::login(&input, clock)?;
        tracing::info!(operator = %out.operator, "bridge login");
        Ok((st, out))
    })
    .await
}

/// Runs `open` (a login, or the creation of the station) in place of whoever was logged in, keeps the
/// station it opens and answers with its output.
async fn replace_session<T: Serialize + Send + 'static>(
    s: &AppState,
    open: impl FnOnce() -> Result<(Station, T), CommandError> + Send + 'static,
) -> Response {
    let r = on_station(s, move |slot| {
        if let Some(mut old) = slot.take() {
            let _ = old.execute(Command::Logout);
        }
        let (st, out) = open()?;
        *slot = Some(st);
        Ok(out)
    })
    .await;
    match r {
        Ok(out) => axum::Json(out).into_response(),
        Err(e) => error_response(e),
    }
}

async fn command(State(s): State<AppState>, body: Bytes) -> Response {
    let cmd: Command = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(format!("command body is not a known command: {e}")),
    };
    let r = on_station(&s, move |slot| {
        let st = slot.as_mut().ok_or_else(not_logged_in)?;
        let logout = matches!(cmd, Command::Logout);
        let out = st.execute(cmd);
        if logout {
            *slot = None;
        }
        out
    })
    .await;
    match r {
        Ok(out) => axum::Json(out).into_response(),
        Err(e) => error_response(e),
    }
}

async fn form(State(s): State<AppState>, UrlPath(process): UrlPath<String>) -> Response {
    let r = on_station(&s, move |slot| {
        let st = slot.as_mut().ok_or_else(not_logged_in)?;
        st.session()?;
        form_spec(st, &process)
    })
    .await;
    match r {
        Ok(out) => axum::Json(out).into_response(),
        Err(e) => error_response(e),
    }
}

async fn home(State(s): State<AppState>) -> Response {
    axum::Json(commands::home_state(&s.home)).into_response()
}

async fn kit_inspect(body: Bytes) -> Response {
    let input: commands::KitInput = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => return bad_request(format!("kit body: {e}")),
    };
    // Argon2-free but CPU-bound (parsing, validation): off the async workers.
    match tokio::task::spawn_blocking(move || commands::inspect_kit(&input)).await {
        Ok(Ok(out)) => axum::Json(out).into_response(),
        Ok(Err(e)) => error_response(e),
        Err(e) => bad_request(format!("reading the kit: {e}")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KitCreateBody {
    kit_base64: String,
    kit_sha256: String,
    operator: String,
    password: String,
}

async fn kit_create(State(s): State<AppState>, body: Bytes) -> Response {
    let b: KitCreateBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("kit body: {e}")),
    };
    let input = commands::KitCreateInput {
        home: s.home.to_path_buf(),
        kit_base64: b.kit_base64,
        kit_sha256: b.kit_sha256,
        operator: b.operator,
        password: b.password,
    };
    let clock = s.clock.clone();
    replace_session(&s, move || {
        let (st, out) = commands::create_from_kit(&input, clock)?;
        tracing::info!(operator = %out.operator, machine = %out.machine.machine_id, "station created from a kit");
        Ok((st, out))
    })
    .await
}

/// Frames waiting for a slow page beyond this are dropped (the preview stays live rather than late).
const PREVIEW_BACKLOG: usize = 3;

async fn preview(State(s): State<AppState>, body: Bytes) -> Response {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let input: PreviewInput = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => return bad_request(format!("preview body: {e}")),
    };
    let source = match on_station(&s, move |slot| {
        let st = slot.as_mut().ok_or_else(not_logged_in)?;
        Ok(st.prepare_preview(input)?)
    })
    .await
    {
        Ok(src) => src,
        Err(e) => return error_response(e),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<PreviewEvent>();
    let backlog = Arc::new(AtomicUsize::new(0));
    let queued = backlog.clone();
    tokio::spawn(source.run(move |ev| {
        if matches!(ev, PreviewEvent::Frame { .. }) && queued.load(Ordering::Relaxed) >= PREVIEW_BACKLOG {
            return !tx.is_closed();
        }
        queued.fetch_add(1, Ordering::Relaxed);
        tx.send(ev).is_ok()
    }));
    let lines = futures_util::stream::unfold((rx, backlog), |(mut rx, backlog)| async move {
        let ev = rx.recv().await?;
        backlog.fetch_sub(1, Ordering::Relaxed);
        let mut line = serde_json::to_vec(&ev).unwrap_or_default();
        line.push(b'\n');
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(line)),
            (rx, backlog),
        ))
    });
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (h, axum::body::Body::from_stream(lines)).into_response()
}

/// Builds the [`FormSpec`] of a process from the station's master data.
pub fn form_spec(st: &Station, process: &str) -> Result<FormSpec, CommandError> {
    let md = st.master();
    let spec = md.ui_specs.get(process).ok_or_else(|| CommandError {
        code: ErrorCode::NotFound,
        message: format!("no UI spec for process {process}; the synced configuration has none"),
        fields: vec![],
        freeze: None,
    })?;
    let j = |v: serde_json::Result<serde_json::Value>| {
        v.map_err(|e| CommandError {
            code: ErrorCode::Configuration,
            message: format!("serialising the form description: {e}"),
            fields: vec![],
            freeze: None,
        })
    };
    Ok(FormSpec {
        ui_spec: j(serde_json::to_value(spec))?,
        schema: j(serde_json::to_value(&md.schema))?,
        languages: j(serde_json::to_value(&md.manifest.languages))?,
        lists: j(serde_json::to_value(&md.lists))?,
        locations: j(serde_json::to_value(&md.locations))?,
        documents: j(serde_json::to_value(&md.documents))?,
        labels: j(serde_json::to_value(&md.labels))?,
        settings: j(serde_json::to_value(md.settings))?,
    })
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Maps a URL path to a file under `dist`, refusing anything that would leave it.
pub fn resolve_static(dist: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = url_path.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    let rel = Path::new(rel);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(dist.join(rel))
}

async fn static_file(State(s): State<AppState>, req: Request) -> Response {
    let Some(dist) = s.dist.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            "no front end is served (start with --dist)",
        )
            .into_response();
    };
    let Some(path) = resolve_static(dist, req.uri().path()) else {
        return (StatusCode::BAD_REQUEST, "bad path").into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&path)),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'",
                ),
            );
            (h, bytes).into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_paths_stay_inside_dist() {
        let d = Path::new("/srv/dist");
        assert_eq!(resolve_static(d, "/"), Some(d.join("index.html")));
        assert_eq!(resolve_static(d, "/assets/a.js"), Some(d.join("assets/a.js")));
        assert_eq!(resolve_static(d, "/../etc/passwd"), None);
        assert_eq!(resolve_static(d, "/assets/../../x"), None);
    }

    #[test]
    fn token_compare() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }

    use std::io::{Read, Write};

    use crate::crypto::KdfParams;
    use crate::operators::{Operator, OperatorBundle, Role, hash_password};
    use crate::station::InitParams;

    const OFFICER_PW: &str = "officer-test-password"; // test vector
    const SUPER_PW: &str = "supervisor-test-password"; // test vector

    /// A station in a temporary folder (center 10001) with officer1 and super1 slots.
    fn station_home() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sample-country");
        let op = |id: &str, roles: Vec<Role>, pw: &str| Operator {
            id: id.into(),
            name: format!("Test {id}"),
            roles,
            center_id: "10001".into(),
            active: true,
            password_hash: hash_password(pw).unwrap(),
        };
        let bundle = OperatorBundle {
            version: "1".into(),
            operators: vec![
                op("officer1", vec![Role::Officer], OFFICER_PW),
                op("super1", vec![Role::Supervisor, Role::Officer], SUPER_PW),
            ],
        };
        let recovery = age::x25519::Identity::generate().to_public().to_string();
        let server = age::x25519::Identity::generate().to_public().to_string();
        let (mut st, _) = Station::init(
            InitParams {
                home: dir.path(),
                center_id: "10001".parse().unwrap(),
                machine_id: "10077".parse().unwrap(),
                recovery_recipient: &recovery,
                master_data: crate::masterdata::read_folder(&cfg).unwrap(),
                operators: bundle,
                packet_recipients: vec![server],
                operator_id: "officer1",
                password: OFFICER_PW,
                kdf: KdfParams::TEST_ONLY_FAST,
            },
            Arc::new(tessera_packet::clock::SystemClock),
        )
        .unwrap();
        st.add_operator_slot("super1", SUPER_PW).unwrap();
        dir
    }

    /// Starts a bridge on a free loopback port; returns (address, token).
    fn start(home: &Path, dist: Option<PathBuf>) -> (SocketAddr, String) {
        let b = Bridge::bind(
            BridgeConfig {
                home: home.to_path_buf(),
                listen: "127.0.0.1:0".parse().unwrap(),
                dist,
            },
            Arc::new(tessera_packet::clock::SystemClock),
        )
        .unwrap();
        let (addr, token) = (b.local_addr(), b.token().to_owned());
        assert!(b.url().ends_with(&format!("#token={token}")));
        std::thread::spawn(move || b.run().unwrap());
        (addr, token)
    }

    /// A minimal HTTP/1.1 client over a real socket: returns (status, body).
    fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(t) = token {
            req.push_str(&format!("{TOKEN_HEADER}: {t}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status: u16 = out[9..12].parse().unwrap();
        let (head, rest) = out.split_once("\r\n\r\n").unwrap();
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(rest)
        } else {
            rest.to_owned()
        };
        (status, body)
    }

    fn dechunk(mut s: &str) -> String {
        let mut out = String::new();
        loop {
            let (len, rest) = s.split_once("\r\n").unwrap();
            let n = usize::from_str_radix(len.trim(), 16).unwrap();
            if n == 0 {
                return out;
            }
            out.push_str(&rest[..n]);
            s = &rest[n + 2..];
        }
    }

    fn json(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
    }

    #[test]
    fn api_requires_the_token() {
        let home = station_home();
        let (addr, token) = start(home.path(), None);
        let login = format!(r#"{{"operator":"officer1","password":"{OFFICER_PW}"}}"#);
        assert_eq!(http(addr, "POST", "/api/login", None, &login).0, 401);
        assert_eq!(http(addr, "POST", "/api/login", Some("00"), &login).0, 401);
        let wrong = "f".repeat(token.len());
        assert_eq!(
            http(addr, "POST", "/api/command", Some(&wrong), r#"{"op":"status"}"#).0,
            401
        );
        assert_eq!(http(addr, "GET", "/api/form/NEW", None, "").0, 401);
        let (code, body) = http(addr, "POST", "/api/login", Some(&token), &login);
        assert_eq!(code, 200, "{body}");
        assert_eq!(json(&body)["operator"], "officer1");
    }

    #[test]
    fn registration_and_approval_over_http() {
        let home = station_home();
        let (addr, token) = start(home.path(), None);
        let t = Some(token.as_str());
        let cmd = |body: &str| http(addr, "POST", "/api/command", t, body);

        // Not logged in yet: a typed error, not a crash.
        let (code, body) = cmd(r#"{"op":"status"}"#);
        assert_eq!(code, 403, "{body}");
        assert_eq!(json(&body)["code"], "NOT_LOGGED_IN");

        // Wrong password: typed error.
        let (code, body) = http(
            addr,
            "POST",
            "/api/login",
            t,
            r#"{"operator":"officer1","password":"nope"}"#,
        );
        assert_eq!(code, 403, "{body}");
        assert_eq!(json(&body)["code"], "WRONG_PASSWORD");

        let login = format!(r#"{{"operator":"officer1","password":"{OFFICER_PW}"}}"#);
        assert_eq!(http(addr, "POST", "/api/login", t, &login).0, 200);
        let (code, body) = cmd(r#"{"op":"status"}"#);
        assert_eq!(code, 200, "{body}");
        let v = json(&body);
        assert_eq!(v["kind"], "status");
        assert_eq!(v["output"]["operator"], "officer1");

        // The form description the wizard is generated from.
        let (code, body) = http(addr, "GET", "/api/form/NEW", t, "");
        assert_eq!(code, 200, "{body}");
        let f = json(&body);
        assert_eq!(f["uiSpec"]["id"], "NEW");
        assert!(f["lists"].to_string().contains("FLE"));
        let (code, _) = http(addr, "GET", "/api/form/NOPE", t, "");
        assert_eq!(code, 404);

        // Garbage and unknown commands are typed errors.
        let (code, body) = cmd(r#"{"op":"fly"}"#);
        assert_eq!(code, 422, "{body}");
        assert_eq!(json(&body)["code"], "INVALID_INPUT");
        assert_eq!(cmd("{not json").0, 422);

        // A draft with an invalid field reports it.
        let (code, body) = cmd(r#"{"op":"startDraft","input":{"process":"NEW"}}"#);
        assert_eq!(code, 200, "{body}");
        let draft = json(&body)["output"]["draft"].as_i64().unwrap();
        let answers = serde_json::json!({"op":"saveAnswers","input":{"draft":draft,"answers":{
            "process":"NEW","languages":["eng","fra"],"consent":true,
            "demographics":{"fullName":{"eng":"Amina Diallo","fra":"Amina Diallo"},"dateOfBirth":"1988-03-14",
              "gender":"FLE","residenceStatus":"NFR","addressLine1":{"eng":"12 Hill Street","fra":"12 rue"},
              "region":"NOR","province":"NOR-HL","city":"HLB","postalCode":"10101","phone":"+22501020304",
              "email":"not-an-email"}}}});
        let (code, body) = cmd(&answers.to_string());
        assert_eq!(code, 200, "{body}");
        let v = json(&body);
        assert_eq!(v["kind"], "answersSaved");
        assert!(v["output"]["problems"].to_string().contains("email"), "{body}");

        let (code, body) = cmd(&format!(r#"{{"op":"review","input":{{"draft":{draft}}}}}"#));
        assert_eq!(code, 200, "{body}");
        assert_eq!(json(&body)["output"]["ready"], false);

        // Logout closes the station.
        assert_eq!(cmd(r#"{"op":"logout"}"#).0, 200);
        assert_eq!(cmd(r#"{"op":"status"}"#).0, 403);

        // The supervisor sees the (empty) queue.
        let login = format!(r#"{{"operator":"super1","password":"{SUPER_PW}"}}"#);
        let (code, body) = http(addr, "POST", "/api/login", t, &login);
        assert_eq!(code, 200, "{body}");
        assert!(
            json(&body)["roles"]
                .to_string()
                .to_lowercase()
                .contains("supervisor"),
            "{body}"
        );
        let (code, body) = cmd(r#"{"op":"pending"}"#);
        assert_eq!(code, 200, "{body}");
        assert_eq!(json(&body)["kind"], "packets");
    }

    #[test]
    fn preview_streams_json_lines_of_frames() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(tessera_packet::clock::SystemClock);
        let (sim, base) = rt.block_on(async {
            for _ in 0..50 {
                let mut r = [0u8; 2];
                getrandom::fill(&mut r).unwrap();
                let base = 20_000 + u16::from_le_bytes(r) % 40_000;
                let cfg = tessera_sbi::sim::SimConfig::from_port(base);
                let images = tessera_sbi::sim::default_image_source().unwrap();
                if let Ok(s) = tessera_sbi::sim::start(cfg, clock.clone(), images).await {
                    return (s, base);
                }
            }
            panic!("no free block of 4 ports")
        });
        let home = station_home();
        let (addr, token) = start(home.path(), None);
        let t = Some(token.as_str());
        let body = serde_json::json!({"part": "face", "timeoutSecs": 2, "devices": {
            "firstPort": base, "lastPort": base + 3, "trustedCaPem": [sim.ca_pem()]}})
        .to_string();
        // Not logged in: a typed error, not a stream.
        let (code, out) = http(addr, "POST", "/api/preview", t, &body);
        assert_eq!(code, 403, "{out}");
        assert_eq!(json(&out)["code"], "NOT_LOGGED_IN");
        assert_eq!(http(addr, "POST", "/api/preview", None, &body).0, 401);
        let login = format!(r#"{{"operator":"officer1","password":"{OFFICER_PW}"}}"#);
        assert_eq!(http(addr, "POST", "/api/login", t, &login).0, 200);
        assert_eq!(http(addr, "POST", "/api/preview", t, r#"{"part":"nose"}"#).0, 422);

        let (code, out) = http(addr, "POST", "/api/preview", t, &body);
        assert_eq!(code, 200, "{out}");
        let events: Vec<serde_json::Value> = out.lines().map(json).collect();
        assert_eq!(events[0]["event"], "started", "{:?}", events[0]);
        assert_eq!(events[0]["device"]["bioType"], "Face");
        let frames: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "frame").collect();
        assert!(frames.len() >= 3, "{} frames in 2 s", frames.len());
        assert!(
            frames
                .iter()
                .all(|f| f["jpegBase64"].as_str().is_some_and(|j| j.starts_with("/9j/")))
        );
        let last = events.last().unwrap();
        assert_eq!(last["event"], "ended", "{last}");
        assert_eq!(last["reason"], "timeout");
        drop(sim);
    }

    #[test]
    fn serves_the_front_end() {
        let home = station_home();
        let dist = tempfile::tempdir().unwrap();
        std::fs::write(dist.path().join("index.html"), "<!doctype html><title>t</title>").unwrap();
        std::fs::create_dir(dist.path().join("assets")).unwrap();
        std::fs::write(dist.path().join("assets/app.js"), "console.log(1)").unwrap();
        let (addr, _) = start(home.path(), Some(dist.path().to_path_buf()));
        let (code, body) = http(addr, "GET", "/", None, "");
        assert_eq!((code, body.as_str()), (200, "<!doctype html><title>t</title>"));
        assert_eq!(http(addr, "GET", "/assets/app.js", None, "").0, 200);
        assert_eq!(http(addr, "GET", "/missing.js", None, "").0, 404);
        assert_ne!(http(addr, "GET", "/../Cargo.toml", None, "").0, 200);
    }

    #[test]
    fn refuses_non_loopback() {
        let cfg = BridgeConfig {
            home: "x".into(),
            listen: "0.0.0.0:0".parse().unwrap(),
            dist: None,
        };
        let e = Bridge::bind(cfg, Arc::new(tessera_packet::clock::SystemClock)).unwrap_err();
        assert!(matches!(e, BridgeError::NotLoopback { .. }));
    }
}
