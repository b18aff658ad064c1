//! The adapter between the webview and the station core: one [`Request`] type carried by the single Tauri
//! command, and the [`StationWorker`] thread that owns the open [`Station`].
//!
//! A request is one of three calls, the same three the local HTTP bridge serves (`tessera_station::bridge`):
//!
//! | call | input | reply |
//! | --- | --- | --- |
//! | `login` | `{"operator", "password"}` | [`LoginOutput`] |
//! | `command` | a serialised [`Command`], e.g. `{"op":"startDraft","input":{"process":"NEW"}}` | [`Output`] |
//! | `formSpec` | `{"process"}` | [`FormSpec`] |
//! | `home` | – | [`HomeState`] (first run: `initialised` false) |
//! | `kitInspect` | `{"kitBase64"}` | [`KitSummary`] |
//! | `kitCreate` | `{"kitBase64","kitSha256","operator","password"}` | [`KitCreated`] (the operator is logged in) |
//!
//! e.g. `{"call":"command","input":{"op":"status"}}`. Every failure is a [`CommandError`] (typed code, message,
//! field problems); a request that does not parse is `INVALID_INPUT` naming what is wrong.
//!
//! The station lives on one worker thread; requests run one at a time in the order they arrive, exactly as
//! on the bridge and in the CLI. The live STREAM preview is the one streaming call ([`StationWorker::preview`]):
//! it is prepared on that thread and then runs beside it, sending its events to the webview. Logs name the call, the operation and the outcome code, never inputs or
//! outputs (they hold personal data).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tessera_packet::clock::Clock;
use tessera_station::bridge::{self, FormSpec};
use tessera_station::commands::{
    self, Command, HomeState, KitCreateInput, KitCreated, KitInput, LoginInput, LoginOutput, Output,
};
use tessera_station::kit::KitSummary;
use tessera_station::preview::{PreviewEvent, PreviewInput};
use tessera_station::station::Station;
use tessera_station::{CommandError, ErrorCode};

/// One call from the front end.
#[derive(Deserialize)]
#[serde(
    tag = "call",
    content = "input",
    rename_all = "camelCase",
    deny_unknown_fields
)]
pub enum Request {
    /// Log an operator in (replaces whoever was logged in).
    Login(LoginRequest),
    /// Run one command of the station's command table on the open session.
    Command(Command),
    /// The form description the wizard is generated from.
    FormSpec {
        /// Process (`NEW`, `UPDATE`, `LOST`).
        process: String,
    },
    /// Whether the station folder holds a station yet (first run: no).
    Home,
    /// Read a station set-up kit and say what it holds.
    KitInspect(KitInput),
    /// Create the station from a set-up kit; the first operator is then logged in.
    KitCreate(KitCreateRequest),
}

/// Input of the `kitCreate` call.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KitCreateRequest {
    /// The kit file, base64.
    pub kit_base64: String,
    /// The digest `kitInspect` reported.
    pub kit_sha256: String,
    /// First operator.
    pub operator: String,
    /// Their password.
    pub password: String,
}

impl fmt::Debug for KitCreateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KitCreateRequest")
            .field("operator", &self.operator)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// The call's name (`login`, `command`, `formSpec`).
    pub fn call(&self) -> &'static str {
        match self {
            Self::Login(_) => "login",
            Self::Command(_) => "command",
            Self::FormSpec { .. } => "formSpec",
            Self::Home => "home",
            Self::KitInspect(_) => "kitInspect",
            Self::KitCreate(_) => "kitCreate",
        }
    }
}

// Inputs carry passwords and personal data: Debug shows the call only.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("call", &self.call())
            .finish_non_exhaustive()
    }
}

/// Input of the `login` call.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Operator id.
    pub operator: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("operator", &self.operator)
            .field("password", &"***")
            .finish()
    }
}

/// The answer to a [`Request`]: serialised as the inner value alone (the caller knows which call it made),
/// so the front end receives exactly what the HTTP bridge returns for the same call.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// Answer to `login`.
    Login(LoginOutput),
    /// Answer to `command`.
    Output(Output),
    /// Answer to `formSpec`.
    FormSpec(Box<FormSpec>),
    /// Answer to `home`.
    Home(HomeState),
    /// Answer to `kitInspect`.
    Kit(Box<KitSummary>),
    /// Answer to `kitCreate`.
    KitCreated(Box<KitCreated>),
}

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The thread could not be spawned.
    #[error("starting the station worker thread: {0}")]
    Spawn(std::io::Error),
}

type Job = Box<dyn FnOnce(&mut Option<Station>) + Send>;

/// Owns the open station on its own thread and runs requests on it in order. Cheap to clone.
#[derive(Clone)]
pub struct StationWorker {
    jobs: mpsc::Sender<Job>,
    home: Arc<Path>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for StationWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StationWorker")
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

fn error(code: ErrorCode, message: impl Into<String>) -> CommandError {
    CommandError {
        code,
        message: message.into(),
        fields: vec![],
        freeze: None,
    }
}

fn not_logged_in() -> CommandError {
    error(ErrorCode::NotLoggedIn, "nobody is logged in; log in first")
}

impl StationWorker {
    /// Starts the worker thread for the station in `home` (nothing is opened until a `login`).
    pub fn start(home: PathBuf, clock: Arc<dyn Clock>) -> Result<Self, WorkerError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("station-worker".into())
            .spawn(move || {
                let mut station: Option<Station> = None;
                while let Ok(job) = rx.recv() {
                    job(&mut station);
                }
            })
            .map_err(WorkerError::Spawn)?;
        Ok(Self {
            jobs: tx,
            home: Arc::from(home.as_path()),
            clock,
        })
    }

    /// The station folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Parses a request as the webview sent it and runs it. A request that does not parse is an
    /// `INVALID_INPUT` error naming what is wrong (never a bare string).
    pub async fn call_json(&self, request: serde_json::Value) -> Result<Reply, CommandError> {
        // The operation's name, for the log line (only kept once the request parsed, so it is a known one).
        let op = request
            .get("input")
            .and_then(|i| i.get("op"))
            .and_then(|o| o.as_str())
            .map(str::to_owned);
        let request: Request = serde_json::from_value(request).map_err(|e| {
            tracing::warn!(error = %e, "refused a request that is not a known call");
            error(
                ErrorCode::InvalidInput,
                format!("the request is not a known call: {e}"),
            )
        })?;
        let op = if matches!(request, Request::Command(_)) {
            op.unwrap_or_default()
        } else {
            String::new()
        };
        self.run(request, &op).await
    }

    /// Runs one request on the station thread and waits for its answer.
    pub async fn call(&self, request: Request) -> Result<Reply, CommandError> {
        self.run(request, "").await
    }

    async fn run(&self, request: Request, op: &str) -> Result<Reply, CommandError> {
        let call = request.call();
        let started = Instant::now();
        let home = self.home.to_path_buf();
        let clock = self.clock.clone();
        let result = self
            .on_station(move |slot| match request {
                Request::Login(l) => {
                    // A new login replaces whoever was logged in.
                    if let Some(mut old) = slot.take() {
                        let _ = old.execute(Command::Logout);
                    }
                    let input = LoginInput {
                        home,
                        operator: l.operator,
                        password: l.password,
                    };
                    let (st, out) = commands::login(&input, clock)?;
                    *slot = Some(st);
                    Ok(Reply::Login(out))
                }
                Request::Command(cmd) => {
                    let st = slot.as_mut().ok_or_else(not_logged_in)?;
                    let logout = matches!(cmd, Command::Logout);
                    let out = st.execute(cmd);
                    if logout {
                        *slot = None;
                    }
                    out.map(Reply::Output)
                }
                Request::FormSpec { process } => {
                    let st = slot.as_mut().ok_or_else(not_logged_in)?;
                    st.session()?;
                    bridge::form_spec(st, &process).map(|f| Reply::FormSpec(Box::new(f)))
                }
                Request::Home => Ok(Reply::Home(commands::home_state(&home))),
                Request::KitInspect(k) => commands::inspect_kit(&k).map(|s| Reply::Kit(Box::new(s))),
                Request::KitCreate(k) => {
                    if let Some(mut old) = slot.take() {
                        let _ = old.execute(Command::Logout);
                    }
                    let input = KitCreateInput {
                        home,
                        kit_base64: k.kit_base64,
                        kit_sha256: k.kit_sha256,
                        operator: k.operator,
                        password: k.password,
                    };
                    let (st, out) = commands::create_from_kit(&input, clock)?;
                    *slot = Some(st);
                    Ok(Reply::KitCreated(Box::new(out)))
                }
            })
            .await;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &result {
            Ok(_) => tracing::info!(call, op, ms, "station call done"),
            Err(e) => tracing::info!(call, op, ms, code = ?e.code, "station call refused"),
        }
        result
    }

    /// Starts a live STREAM preview ([`tessera_station::preview`]): parses the input as the webview sent it
    /// (a [`PreviewInput`]), prepares it on the station thread, then streams its events to `sink` from a task
    /// on the current runtime, so the station stays free for other calls (a capture stops the preview). Returns
    /// once the preview is running; failures before that (bad input, not logged in, no trusted device CA) are
    /// typed errors, later ones arrive as a `failed` event.
    pub async fn preview(
        &self,
        input: serde_json::Value,
        sink: impl FnMut(PreviewEvent) -> bool + Send + 'static,
    ) -> Result<(), CommandError> {
        let input: PreviewInput = serde_json::from_value(input).map_err(|e| {
            error(
                ErrorCode::InvalidInput,
                format!("the preview request is not valid: {e}"),
            )
        })?;
        let part = input.part;
        let source = self
            .on_station(move |slot| {
                let st = slot.as_mut().ok_or_else(not_logged_in)?;
                Ok(st.prepare_preview(input)?)
            })
            .await;
        let source = match source {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(call = "preview", ?part, code = ?e.code, "station call refused");
                return Err(e);
            }
        };
        tracing::info!(call = "preview", ?part, "preview started");
        tokio::spawn(source.run(sink));
        Ok(())
    }

    /// Logs the operator out and waits for it (used when the window closes). Errors are logged only.
    pub fn close(&self) {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |slot| {
            if let Some(mut st) = slot.take()
                && let Err(e) = st.execute(Command::Logout)
            {
                tracing::warn!(code = ?e.code, "logout at exit failed");
            }
            let _ = tx.send(());
        });
        if self.jobs.send(job).is_ok() {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(10));
        }
    }

    async fn on_station<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Option<Station>) -> Result<T, CommandError> + Send + 'static,
    ) -> Result<T, CommandError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |st| {
            let _ = tx.send(f(st));
        });
        let gone = || {
            error(
                ErrorCode::Io,
                "the station worker stopped; restart the application",
            )
        };
        self.jobs.send(job).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tessera_packet::clock::SystemClock;
    use tessera_station::crypto::KdfParams;
    use tessera_station::operators::{Operator, OperatorBundle, Role, hash_password};
    use tessera_station::station::InitParams;

    const OFFICER_PW: &str = "officer-test-password"; // TEST-ONLY vector

    /// A fresh station in a temporary folder (center 10001) with officer1's key slot.
    fn station_home() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/sample-country");
        let bundle = OperatorBundle {
            version: "1".into(),
            operators: vec![Operator {
                id: "officer1".into(),
                name: "Test officer".into(),
                roles: vec![Role::Officer],
                center_id: "10001".into(),
                active: true,
                password_hash: hash_password(OFFICER_PW).unwrap(),
            }],
        };
        let key = || age::x25519::Identity::generate().to_public().to_string();
        let recovery = key();
        Station::init(
            InitParams {
                home: dir.path(),
                center_id: "10001".parse().unwrap(),
                machine_id: "10077".parse().unwrap(),
                recovery_recipient: &recovery,
                master_data: tessera_station::masterdata::read_folder(&cfg).unwrap(),
                operators: bundle,
                packet_recipients: vec![key()],
                operator_id: "officer1",
                password: OFFICER_PW,
                kdf: KdfParams::TEST_ONLY_FAST,
            },
            Arc::new(SystemClock),
        )
        .unwrap();
        dir
    }

    fn worker(home: &Path) -> StationWorker {
        StationWorker::start(home.to_path_buf(), Arc::new(SystemClock)).unwrap()
    }

    async fn ok(w: &StationWorker, request: serde_json::Value) -> serde_json::Value {
        let reply = w.call_json(request.clone()).await;
        let reply = reply.unwrap_or_else(|e| panic!("{request} failed: {e:?}"));
        serde_json::to_value(reply).unwrap()
    }

    async fn refused(w: &StationWorker, request: serde_json::Value) -> CommandError {
        match w.call_json(request.clone()).await {
            Ok(r) => panic!("{request} should fail, got {}", serde_json::to_value(r).unwrap()),
            Err(e) => e,
        }
    }

    fn login(password: &str) -> serde_json::Value {
        json!({"call": "login", "input": {"operator": "officer1", "password": password}})
    }

    fn command(cmd: serde_json::Value) -> serde_json::Value {
        json!({"call": "command", "input": cmd})
    }

    #[tokio::test]
    async fn malformed_requests_are_typed_invalid_input() {
        let w = worker(Path::new("/nonexistent/station"));
        for bad in [
            json!(null),
            json!("status"),
            json!({"call": "fly"}),
            json!({"call": "command", "input": {"op": "fly"}}),
            json!({"call": "command", "input": {"op": "startDraft", "input": {}}}),
            json!({"call": "login", "input": {"operator": "a", "password": "b", "extra": 1}}),
            json!({"call": "formSpec", "input": {"process": 7}}),
            json!({"call": "command", "input": {"op": "status"}, "more": true}),
        ] {
            let e = refused(&w, bad.clone()).await;
            assert_eq!(e.code, ErrorCode::InvalidInput, "{bad}: {e:?}");
            assert!(e.message.starts_with("the request is not a known call"), "{e:?}");
        }
    }

    #[tokio::test]
    async fn login_commands_form_and_logout_through_the_worker() {
        let home = station_home();
        let w = worker(home.path());
        assert_eq!(w.home(), home.path());

        // Nothing is open before a login: typed errors, not crashes.
        let e = refused(&w, command(json!({"op": "status"}))).await;
        assert_eq!(e.code, ErrorCode::NotLoggedIn);
        let e = refused(&w, json!({"call": "formSpec", "input": {"process": "NEW"}})).await;
        assert_eq!(e.code, ErrorCode::NotLoggedIn);

        let e = refused(&w, login("nope")).await;
        assert_eq!(e.code, ErrorCode::WrongPassword);
        assert!(e.message.contains("officer1"), "{e:?}");

        // The replies are the bare values the HTTP bridge returns for the same calls.
        let out = ok(&w, login(OFFICER_PW)).await;
        assert_eq!(out["operator"], "officer1");
        assert_eq!(out["roles"], json!(["officer"]));

        let out = ok(&w, command(json!({"op": "status"}))).await;
        assert_eq!(out["kind"], "status");
        assert_eq!(out["output"]["operator"], "officer1");
        assert_eq!(out["output"]["dashboard"]["drafts"], 0);

        let out = ok(&w, json!({"call": "formSpec", "input": {"process": "NEW"}})).await;
        assert_eq!(out["uiSpec"]["id"], "NEW");
        assert!(out["lists"].to_string().contains("FLE"));
        let e = refused(&w, json!({"call": "formSpec", "input": {"process": "NOPE"}})).await;
        assert_eq!(e.code, ErrorCode::NotFound);

        let out = ok(
            &w,
            command(json!({"op": "startDraft", "input": {"process": "NEW"}})),
        )
        .await;
        assert_eq!(out["kind"], "draftStarted");
        let draft = out["output"]["draft"].as_i64().unwrap();
        let out = ok(&w, command(json!({"op": "myDrafts"}))).await;
        assert_eq!(out["output"][0]["id"], draft);

        // Core errors keep their code and field problems.
        let e = refused(
            &w,
            command(json!({"op": "startDraft", "input": {"process": "MOVE"}})),
        )
        .await;
        assert_ne!(e.code, ErrorCode::InvalidInput, "{e:?}");

        let out = ok(&w, command(json!({"op": "logout"}))).await;
        assert_eq!(out["kind"], "done");
        let e = refused(&w, command(json!({"op": "status"}))).await;
        assert_eq!(e.code, ErrorCode::NotLoggedIn);

        // The draft survived the logout.
        ok(&w, login(OFFICER_PW)).await;
        let out = ok(&w, command(json!({"op": "status"}))).await;
        assert_eq!(out["output"]["dashboard"]["drafts"], 1);

        // Closing the window logs out.
        w.close();
        let e = refused(&w, command(json!({"op": "status"}))).await;
        assert_eq!(e.code, ErrorCode::NotLoggedIn);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_are_serialised_on_the_station() {
        let home = station_home();
        let w = worker(home.path());
        ok(&w, login(OFFICER_PW)).await;
        // Fired together from several tasks: each runs whole, one after the other, on the one station.
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let w = w.clone();
                tokio::spawn(async move {
                    w.call_json(command(json!({"op": "startDraft", "input": {"process": "NEW"}})))
                        .await
                })
            })
            .collect();
        let mut ids = vec![];
        for t in tasks {
            let v = serde_json::to_value(t.await.unwrap().unwrap()).unwrap();
            ids.push(v["output"]["draft"].as_i64().unwrap());
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 5, "{ids:?}");
        let out = ok(&w, command(json!({"op": "status"}))).await;
        assert_eq!(out["output"]["dashboard"]["drafts"], 5);
    }

    #[tokio::test]
    async fn first_run_calls_and_preview_refusals_are_typed() {
        let empty = tempfile::tempdir().unwrap();
        let w = worker(empty.path());
        let out = ok(&w, json!({"call": "home"})).await;
        assert_eq!(out, json!({"initialised": false}));
        // A file that is not a kit: the core's KIT error, with what to do.
        let e = refused(
            &w,
            json!({"call": "kitInspect", "input": {"kitBase64": "JVBERi0xLjQ="}}),
        )
        .await;
        assert_eq!(e.code, ErrorCode::Kit);
        assert!(e.message.contains("not a Tessera station kit"), "{e:?}");
        let e = refused(
            &w,
            json!({"call": "kitCreate", "input": {"kitBase64": "", "kitSha256": "", "operator": "a", "password": "b"}}),
        )
        .await;
        assert_eq!(e.code, ErrorCode::Kit);
        assert!(!tessera_station::commands::home_state(empty.path()).initialised);

        let home = station_home();
        let w = worker(home.path());
        assert_eq!(
            ok(&w, json!({"call": "home"})).await,
            json!({"initialised": true})
        );
        let e = w.preview(json!({"part": "face"}), |_| true).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::NotLoggedIn);
        let e = w.preview(json!({"part": "nose"}), |_| true).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        ok(&w, login(OFFICER_PW)).await;
        // Logged in but no device-provider CA is trusted on this station: refused before any stream.
        let e = w.preview(json!({"part": "face"}), |_| true).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Device);
        let out = ok(&w, command(json!({"op": "stopPreview"}))).await;
        assert_eq!(out["kind"], "done");
    }

    #[test]
    fn debug_output_hides_inputs() {
        let r: Request = serde_json::from_value(login("s3cret-pass")).unwrap();
        let d = format!("{r:?}");
        assert!(d.contains("login") && !d.contains("s3cret"), "{d}");
        let r: Request = serde_json::from_value(command(json!({"op": "saveAnswers", "input": {
            "draft": 1, "answers": {"process": "NEW", "languages": ["eng"], "consent": true, "demographics": {"fullName": {"eng": "Amina Diallo"}}}
        }})))
        .unwrap();
        let d = format!("{r:?}");
        assert!(!d.contains("Amina"), "{d}");
        let l = LoginRequest {
            operator: "officer1".into(),
            password: "s3cret-pass".into(),
        };
        assert!(!format!("{l:?}").contains("s3cret"));
    }
}
