//! The end-to-end demo: a server, the SBI device simulator and two stations, all in this process on the
//! embedded default (SQLite, fresh keys, temporary folders), driven through the real crates' APIs and real
//! HTTP (sync API, admin and adjudication APIs, SBI). The administrator's work (publishing operators and the
//! device provider's CA, approving machines, reading credentials) goes through the admin API with the admin
//! token, as a real administrator's would; nothing is written to the server's database directly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tessera_packet::clock::{Clock, SystemClock};
use tessera_sbi::sim::{self, DeviceKind, RunningSimulator, SimConfig, SimError};
use tessera_server::settings::Settings;
use tessera_station::capture::DeviceOptions;
use tessera_station::crypto::KdfParams;
use tessera_station::forms::Answers;
use tessera_station::station::{InitParams, Station};
use tessera_station::sync::{PROCESSED, Progress, SyncOptions, SyncReport};

/// Demo passwords of `client/demo/operators.json` (test vectors only).
const OFFICER_PW: &str = "demo-officer-pass";
const SUPERVISOR_PW: &str = "demo-supervisor-pass";

/// One registration of the demo and what the server decided.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The resident's name.
    pub name: String,
    /// The station that registered them.
    pub station: String,
    /// The packet's RID.
    pub rid: String,
    /// Server statuses the packet went through, in order.
    pub statuses: Vec<String>,
    /// The UIN issued, when one was.
    pub uin: Option<String>,
    /// The outcome in words (`UIN issued`, `held as a duplicate of UIN ...`, ...).
    pub outcome: String,
    /// The credential files (JSON, QR payload, PDF card), when a UIN was issued.
    pub files: Vec<PathBuf>,
}

/// What the demo produced, for tests.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every registration, in order; the last one is the deliberate duplicate.
    pub registrations: Vec<Registration>,
    /// RID of the first registration.
    pub rid: String,
    /// Server statuses the first packet went through, in order.
    pub statuses: Vec<String>,
    /// The UIN issued for it.
    pub uin: Option<String>,
    /// RID of the second registration of the same person.
    pub second_rid: String,
    /// What the server decided for it (last status seen).
    pub second_status: String,
    /// The status after the adjudicator's decision, when the second packet was held.
    pub adjudicated: Option<String>,
    /// The resident notifications in the server's local outbox file, one JSON object per line.
    pub notifications: Vec<serde_json::Value>,
}

/// A synthetic resident of the demo: who the device simulator captures, and the demographics entered.
#[derive(Debug, Clone)]
struct Resident {
    /// Synthetic person id of the simulator (the same id gives the same fingers, irises and face).
    person: u64,
    name: &'static str,
    date_of_birth: &'static str,
    gender: &'static str,
    email: Option<&'static str>,
}

/// The residents station A registers; the last registration (station B) is the first resident again.
const RESIDENTS: [Resident; 3] = [
    Resident {
        person: 1,
        name: "Amina Diallo",
        date_of_birth: "1988-03-14",
        gender: "FLE",
        email: Some("amina@example.org"),
    },
    Resident {
        person: 2,
        name: "Kofi Mensah",
        date_of_birth: "1979-07-22",
        gender: "MLE",
        email: Some("kofi.mensah@example.org"),
    },
    Resident {
        person: 3,
        name: "Mariam Traoré",
        date_of_birth: "2001-11-05",
        gender: "FLE",
        email: None,
    },
];

/// The administrator's side of the demo: the server's admin API with the admin token.
#[derive(Debug, Clone)]
pub struct AdminApi {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl AdminApi {
    /// The admin API of the server at `url`, with the token in `<data_dir>/admin.token`.
    pub fn new(url: &str, data_dir: &Path) -> Result<Self> {
        let token = std::fs::read_to_string(data_dir.join("admin.token"))
            .with_context(|| format!("reading {}/admin.token", data_dir.display()))?;
        Ok(Self {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            token: token.trim().to_owned(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<serde_json::Value> {
        let mut rb = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        let r = rb.send().await.with_context(|| format!("{method} {path}"))?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Approves an enrolled machine.
    pub async fn approve(&self, machine_id: &str) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/admin/machines/{machine_id}/approve"),
            None,
        )
        .await
        .map(drop)
    }

    /// Publishes an operator bundle (`client/demo/operators.json`'s format) to the stations of each center.
    pub async fn publish_operators(&self, bundle: &[u8]) -> Result<serde_json::Value> {
        self.call(
            reqwest::Method::POST,
            "/api/v1/admin/operators",
            Some(bundle.to_vec()),
        )
        .await
    }

    /// Publishes a device provider's CA certificate.
    pub async fn publish_certificate(&self, id: &str, pem: &str) -> Result<()> {
        let body = serde_json::to_vec(&serde_json::json!({ "pem": pem }))?;
        self.call(
            reqwest::Method::PUT,
            &format!("/api/v1/admin/certificates/{id}"),
            Some(body),
        )
        .await
        .map(drop)
    }

    /// The UIN of a packet's credential, if one was issued.
    pub async fn credential_uin(&self, rid: &str) -> Result<Option<String>> {
        let r = self
            .http
            .get(format!("{}/api/v1/admin/credentials/{rid}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let vc: serde_json::Value = r.error_for_status()?.json().await?;
        Ok(vc
            .pointer("/credentialSubject/uin")
            .and_then(|u| u.as_str())
            .map(str::to_owned))
    }
}

/// Where the project's sample files are.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Country configuration (`config/sample-country`).
    pub country: PathBuf,
    /// Station demo data (`client/demo`: operators, answers, scans).
    pub station_demo: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        Self {
            country: root.join("config/sample-country"),
            station_demo: root.join("client/demo"),
        }
    }
}

macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        writeln!($out, $($arg)*).context("writing the demo output")?;
        $out.flush().ok();
    }};
}

/// Like `say!` on the demo's output, with the progress bar hidden while the line is written.
macro_rules! note {
    ($demo:expr, $($arg:tt)*) => {{
        let line = format!($($arg)*);
        $demo.line(&line)?;
    }};
}

/// Starts the SBI device simulator (synthetic images) on a random block of 4 free ports; returns it and the
/// first port.
pub async fn start_simulator() -> Result<(RunningSimulator, u16)> {
    for _ in 0..50 {
        let mut r = [0u8; 2];
        getrandom::fill(&mut r).map_err(|e| anyhow::anyhow!("random: {e}"))?;
        // Below the ephemeral range (32768+), so no outgoing connection holds one of the ports.
        let base = 20_000 + u16::from_le_bytes(r) % 12_000;
        match sim::start(
            SimConfig::from_port(base),
            Arc::new(SystemClock),
            sim::default_image_source().map_err(|e| anyhow::anyhow!("{e}"))?,
        )
        .await
        {
            Ok(s) => return Ok((s, base)),
            Err(SimError::Bind { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    bail!("no block of 4 free ports for the device simulator")
}

struct Demo<'a> {
    out: &'a mut dyn Write,
    dir: PathBuf,
    paths: Paths,
    server: tessera_server::RunningServer,
    url: String,
    admin: AdminApi,
    simulator: RunningSimulator,
    devices: DeviceOptions,
    clock: Arc<dyn Clock>,
    started: Instant,
    bar: indicatif::ProgressBar,
}

impl Demo<'_> {
    /// Writes a line of the demo's output, with the progress bar hidden meanwhile.
    fn line(&mut self, line: &str) -> Result<()> {
        let Demo { bar, out, .. } = self;
        bar.suspend(|| -> Result<()> {
            writeln!(out, "{line}").context("writing the demo output")?;
            out.flush().ok();
            Ok(())
        })
    }

    fn elapsed(&self) -> String {
        format!("[{:>5.1}s]", self.started.elapsed().as_secs_f64())
    }

    /// Sets up, enrols (approved by the administrator over the admin API) and syncs a station; returns it
    /// with officer1 logged in.
    async fn station(&mut self, name: &str, provisional_machine: &str) -> Result<Station> {
        let home = self.dir.join(name);
        let bundle = tessera_station::operators::OperatorBundle::parse(
            &std::fs::read(self.paths.station_demo.join("operators.json"))
                .context("reading operators.json")?,
        )?;
        let recovery = age::x25519::Identity::generate();
        let packet_key = self
            .server
            .state
            .packet_keys()
            .first()
            .map(|(_, i)| i.to_public().to_string())
            .context("the server has no packet key")?;
        let (mut st, id) = Station::init(
            InitParams {
                home: &home,
                center_id: "10001".parse()?,
                machine_id: provisional_machine.parse()?,
                recovery_recipient: &recovery.to_public().to_string(),
                master_data: tessera_station::masterdata::read_folder(&self.paths.country)?,
                operators: bundle,
                packet_recipients: vec![packet_key],
                operator_id: "officer1",
                password: OFFICER_PW,
                kdf: KdfParams::DEFAULT,
            },
            self.clock.clone(),
        )?;
        st.add_operator_slot("super1", SUPERVISOR_PW)?;
        let e = st.enrol_machine(&self.url, name).await?;
        note!(
            self,
            "{}    {name}: initialised in {}, enrolled as machine {} ({}), key {}",
            self.elapsed(),
            home.display(),
            e.machine_id,
            e.status,
            id.fingerprint
        );
        self.admin
            .approve(e.machine_id.as_str())
            .await
            .context("approving the machine")?;
        let r = st.sync(&SyncOptions::default()).await?;
        if let Some(why) = r.stopped.or(r.master_data_error) {
            bail!("first sync of {name} failed: {why}");
        }
        let kinds: Vec<String> = r
            .master_data_items
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        note!(
            self,
            "{}    {name}: administrator approved it (admin API); first sync: {}",
            self.elapsed(),
            kinds.join(", ")
        );
        Ok(st)
    }

    /// Registers `who` at `st`, capturing from the simulator (set to that synthetic person); returns the RID
    /// (approved by the supervisor).
    async fn register(&mut self, st: &mut Station, name: &str, who: &Resident) -> Result<String> {
        let answers_path = self.paths.station_demo.join("answers-new-adult.json");
        let mut raw: serde_json::Value = serde_json::from_slice(&std::fs::read(&answers_path)?)?;
        if let Some(d) = raw.get_mut("demographics").and_then(|d| d.as_object_mut()) {
            d.insert(
                "fullName".into(),
                serde_json::json!({"eng": who.name, "fra": who.name}),
            );
            d.insert("dateOfBirth".into(), who.date_of_birth.into());
            d.insert("gender".into(), who.gender.into());
            match who.email {
                Some(e) => d.insert("email".into(), e.into()),
                None => d.remove("email"),
            };
        }
        let answers: Answers = serde_json::from_value(raw)?;
        for kind in [
            DeviceKind::FingerSlap,
            DeviceKind::FingerSingle,
            DeviceKind::IrisDouble,
            DeviceKind::Face,
        ] {
            self.simulator.control(kind, |c| c.person_id = who.person);
        }
        let id = st.start_draft(&answers.process)?;
        let problems = st.save_answers(id, answers.clone())?;
        if !problems.is_empty() {
            bail!("the demo answers have problems: {problems:?}");
        }
        for (field, doc) in &answers.documents {
            let bytes = std::fs::read(self.paths.station_demo.join(&doc.file))?;
            st.import_document(id, field, &doc.doc_type, doc.ref_number.clone(), &bytes)?;
        }
        note!(
            self,
            "{}    {name}: officer1 registers {} (synthetic person {}): {} demographic fields, {} document scans",
            self.elapsed(),
            who.name,
            who.person,
            answers.demographics.len(),
            answers.documents.len()
        );
        for p in st.capture_all(id, &self.devices).await? {
            let q: Vec<String> = p.qualities.iter().map(|(a, q)| format!("{a} {q}")).collect();
            note!(
                self,
                "{}    {name}: captured {:?} over SBI from {} in {} attempt(s): quality {}",
                self.elapsed(),
                p.part,
                p.device,
                p.attempts,
                q.join(", ")
            );
        }
        let review = st.review(id)?;
        if !review.ready {
            bail!("the draft is not ready: {:?}", review.problems);
        }
        let sealed = st.seal_draft(id)?;
        note!(
            self,
            "{}    {name}: sealed and signed by officer1: RID {} ({} bytes)",
            self.elapsed(),
            sealed.rid,
            sealed.size
        );
        let mut sup = Station::login(
            &st.store().paths().home,
            "super1",
            SUPERVISOR_PW,
            self.clock.clone(),
        )?;
        sup.approve(&sealed.rid)?;
        sup.logout()?;
        note!(
            self,
            "{}    {name}: supervisor super1 approved it",
            self.elapsed()
        );
        self.bar.inc(1);
        Ok(sealed.rid)
    }

    /// Uploads the station's approved packets and follows their statuses until each is final (or on hold),
    /// printing transitions; returns each RID's statuses in order.
    async fn upload_and_follow(
        &mut self,
        st: &mut Station,
        name: &str,
        rids: &[String],
    ) -> Result<Vec<Vec<String>>> {
        let mut lines = Vec::new();
        let r = st
            .sync_with(&SyncOptions::default(), &mut |p: &Progress| match p {
                Progress::UploadStarted { rid, size, offset } => {
                    lines.push(format!("upload of {rid}: {size} bytes from offset {offset}"))
                }
                Progress::Uploaded { rid } => {
                    lines.push(format!("{rid}: signed receipt verified and stored"))
                }
                _ => {}
            })
            .await?;
        for l in lines {
            note!(self, "{}    {name}: {l}", self.elapsed());
        }
        if let Some(why) = &r.stopped {
            bail!("upload stopped: {why}");
        }
        let mut statuses: Vec<Vec<String>> = rids.iter().map(|_| vec!["RECEIVED".to_owned()]).collect();
        for rid in rids {
            note!(self, "{}    {name}: {rid} status RECEIVED", self.elapsed());
        }
        // The upload round ends with a status poll: a packet processed that fast is already final in it.
        self.note_statuses(name, rids, &mut statuses, &r)?;
        self.follow(st, name, |demo, r, st| {
            demo.note_statuses(name, rids, &mut statuses, r)?;
            let uploads = st.uploads()?;
            let settled = rids.iter().zip(&statuses).all(|(rid, seen)| {
                seen.last().is_some_and(|s| s == "QUARANTINED")
                    || uploads.iter().any(|u| {
                        &u.rid == rid
                            && (u.state == PROCESSED || u.server_status.as_deref() == Some("ON_HOLD"))
                    })
            });
            Ok(settled.then(|| statuses.clone()))
        })
        .await
    }

    /// Notes each packet's server statuses in `r` that differ from the last one seen, appending them to
    /// `statuses` (one list per RID of `rids`), and counts the settled ones on the progress bar.
    fn note_statuses(
        &mut self,
        name: &str,
        rids: &[String],
        statuses: &mut [Vec<String>],
        r: &SyncReport,
    ) -> Result<()> {
        for (rid, seen) in rids.iter().zip(statuses.iter_mut()) {
            for s in r.statuses.iter().filter(|s| &s.rid == rid) {
                if seen.last() != Some(&s.to) {
                    note!(
                        self,
                        "{}    {name}: {rid} status {}{}",
                        self.elapsed(),
                        s.to,
                        s.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                    );
                    seen.push(s.to.clone());
                    if is_settled(&s.to) {
                        self.bar.inc(1);
                    }
                }
            }
        }
        Ok(())
    }

    /// Syncs statuses (no master data) every 200 ms and calls `step` after each round, until it returns a value
    /// or 60 s pass.
    async fn follow<T>(
        &mut self,
        st: &mut Station,
        what: &str,
        mut step: impl FnMut(&mut Self, &SyncReport, &Station) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let opts = SyncOptions {
            master_data: false,
            ..SyncOptions::default()
        };
        loop {
            let r = st.sync(&opts).await?;
            if let Some(v) = step(self, &r, st)? {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("{what}: the packets reached no final status within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The adjudicator reviews the held case over the server's adjudication API (adjudicator token), confirms the
    /// candidate is the first registration's UIN and decides DUPLICATE; station B then syncs the final status.
    async fn adjudicate(&mut self, st: &mut Station, rid: &str, first_uin: Option<&str>) -> Result<String> {
        note!(
            self,
            "9. Adjudication: the held case is reviewed over the server's adjudication API"
        );
        let token_path = self.dir.join("server").join("adjudicator.token");
        let token = std::fs::read_to_string(&token_path)?;
        let token = token.trim();
        let http = reqwest::Client::new();
        let case: serde_json::Value = http
            .get(format!("{}/api/v1/admin/adjudication/{rid}", self.url))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let candidates = case
            .get("candidates")
            .and_then(|c| c.as_array())
            .cloned()
            .unwrap_or_default();
        let field = |c: &serde_json::Value, k: &str| c.get(k).cloned().unwrap_or_default();
        for c in &candidates {
            note!(
                self,
                "         candidate UIN {} ({} match, score {:.2})",
                field(c, "uin").as_str().unwrap_or("?"),
                field(c, "kind").as_str().unwrap_or("?"),
                field(c, "score").as_f64().unwrap_or(f64::NAN)
            );
        }
        let Some(dup) = candidates
            .iter()
            .filter_map(|c| c.get("uin").and_then(|u| u.as_str()))
            .find(|u| Some(*u) == first_uin)
        else {
            bail!("the held case does not list the first registration's UIN among its candidates");
        };
        let decided: serde_json::Value = http
            .post(format!("{}/api/v1/admin/adjudication/{rid}/decision", self.url))
            .bearer_auth(token)
            .json(&serde_json::json!({"decision": "DUPLICATE", "duplicate_of": dup}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        note!(
            self,
            "         adjudicator decided {} (duplicate of UIN {dup}): one person, one ID",
            decided.get("status").and_then(|v| v.as_str()).unwrap_or("?")
        );
        self.follow(st, rid, |demo, _, st| {
            let now = st
                .uploads()?
                .into_iter()
                .find(|u| u.rid == rid)
                .and_then(|u| u.server_status);
            let is_final =
                |s: &String| ["DUPLICATE", "PROCESSED", "REJECTED", "QUARANTINED"].contains(&s.as_str());
            match now.filter(is_final) {
                Some(status) => {
                    note!(demo, "{}    station-b: {rid} status {status}", demo.elapsed());
                    Ok(Some(status))
                }
                None => Ok(None),
            }
        })
        .await
    }

    /// The credential files the server wrote for a packet that got a UIN.
    fn credential_files(&self, rid: &str) -> Vec<PathBuf> {
        let dir = self.dir.join("server").join("credentials");
        [".json", ".qr.txt", ".card.pdf"]
            .iter()
            .map(|ext| dir.join(format!("{rid}{ext}")))
            .filter(|p| p.is_file())
            .collect()
    }

    /// The resident notifications in the server's local outbox file, waiting up to 10 s for `expected`.
    async fn outbox(&self, expected: usize) -> Result<Vec<serde_json::Value>> {
        let path = self.dir.join("server/outbox/notifications.jsonl");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()
                .context("reading the outbox file")?;
            if lines.len() >= expected || Instant::now() > deadline {
                return Ok(lines);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether a server status is where a packet rests (final, or held for a person).
fn is_settled(status: &str) -> bool {
    ["PROCESSED", "DUPLICATE", "REJECTED", "QUARANTINED", "ON_HOLD"].contains(&status)
}

/// What the administrator publishes to stations before they register anyone, over the admin API: the
/// center's operators (`bundle`, the format of `client/demo/operators.json`) and the device provider's CA
/// certificate (the server also checks every biometric's device signature against it).
pub async fn publish_to_stations(admin: &AdminApi, bundle: &[u8], provider_ca_pem: &str) -> Result<()> {
    admin
        .publish_operators(bundle)
        .await
        .context("publishing the operators")?;
    admin
        .publish_certificate("sim-provider-ca", provider_ca_pem)
        .await
        .context("publishing the device provider's CA certificate")
}

/// Runs the whole demo in `dir` (which must exist and be empty), printing each step to `out`.
pub async fn run(dir: &Path, paths: Paths, out: &mut dyn Write) -> Result<Outcome> {
    run_with(dir, paths, out, false).await
}

/// [`run`], with a progress bar on standard error when `progress` is set (and standard error is a
/// terminal).
pub async fn run_with(dir: &Path, paths: Paths, out: &mut dyn Write, progress: bool) -> Result<Outcome> {
    let started = Instant::now();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    say!(
        out,
        "1. Server: embedded SQLite, fresh keys, sample country configuration"
    );
    let settings = Settings {
        data_dir: dir.join("server"),
        listen: "127.0.0.1:0".parse()?,
        country_config: Some(paths.country.clone()),
        uin_pool_target: 1000,
        uin_pool_low_water: 100,
        ..Settings::default()
    };
    let state = tessera_server::prepare(settings, clock.clone()).await?;
    let server = tessera_server::start(state).await?;
    let url = format!("http://{}", server.addr);
    say!(
        out,
        "         listening on {url}, data in {}",
        dir.join("server").display()
    );

    say!(
        out,
        "2. Devices: SBI 0.9.5 simulator (finger slap, single finger, iris, face; synthetic persons)"
    );
    let (simulator, base) = start_simulator().await?;
    for (kind, addr) in simulator.devices() {
        say!(out, "         {kind:?} on {addr}");
    }

    say!(
        out,
        "3. Administrator (admin API): publishes the center's operators and the device provider's CA to stations"
    );
    let admin = AdminApi::new(&url, &dir.join("server"))?;
    let bundle = std::fs::read(paths.station_demo.join("operators.json"))?;
    publish_to_stations(&admin, &bundle, simulator.ca_pem()).await?;
    let ops = tessera_station::operators::OperatorBundle::parse(&bundle)?;
    for o in &ops.operators {
        say!(out, "         {} ({:?}) of center {}", o.id, o.roles, o.center_id);
    }

    // Each registration counts twice: captured and sealed, then settled at the server.
    let steps = u64::try_from(2 * (RESIDENTS.len() + 1)).unwrap_or(0);
    let bar = if progress {
        indicatif::ProgressBar::new(steps)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("registrations captured and processed");
    let mut demo = Demo {
        out,
        dir: dir.to_path_buf(),
        paths,
        server,
        url,
        admin,
        simulator,
        devices: DeviceOptions {
            first_port: base,
            last_port: base + 3,
            ..DeviceOptions::default()
        },
        clock,
        started,
        bar,
    };
    note!(demo, "4. Station A: init, enrol with the server, first sync");
    let mut a = demo.station("station-a", "10077").await?;
    note!(
        demo,
        "5. Registrations at station A (NEW, adults): {} residents",
        RESIDENTS.len()
    );
    let mut rids = Vec::new();
    for who in &RESIDENTS {
        rids.push(demo.register(&mut a, "station-a", who).await?);
    }
    note!(
        demo,
        "6. Sync: upload (tus, resumable), receipts, processing statuses"
    );
    let statuses = demo.upload_and_follow(&mut a, "station-a", &rids).await?;
    let mut registrations = Vec::new();
    for ((who, rid), statuses) in RESIDENTS.iter().zip(&rids).zip(statuses) {
        let uin = if statuses.last().is_some_and(|s| s == "PROCESSED") {
            demo.admin.credential_uin(rid).await?
        } else {
            None
        };
        let outcome = match &uin {
            Some(u) => format!("UIN issued: {u}"),
            None => format!("no UIN: {}", statuses.last().map_or("?", String::as_str)),
        };
        registrations.push(Registration {
            name: who.name.to_owned(),
            station: "station-a".into(),
            rid: rid.clone(),
            statuses,
            files: demo.credential_files(rid),
            uin,
            outcome,
        });
    }
    let first = registrations
        .first()
        .cloned()
        .context("no registration was made")?;
    match &first.uin {
        Some(u) => note!(demo, "7. UIN issued: {u} for RID {}", first.rid),
        None => note!(demo, "7. No UIN: the server decided {:?}", first.statuses.last()),
    }

    let again = RESIDENTS.first().context("no resident")?;
    note!(
        demo,
        "8. The same person ({}) registers again at station B: a deliberate duplicate",
        again.name
    );
    let mut b = demo.station("station-b", "10078").await?;
    let second_rid = demo.register(&mut b, "station-b", again).await?;
    let second = demo
        .upload_and_follow(&mut b, "station-b", std::slice::from_ref(&second_rid))
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    let second_status = second.last().cloned().unwrap_or_default();
    let adjudicated = if second_status == "ON_HOLD" {
        Some(demo.adjudicate(&mut b, &second_rid, first.uin.as_deref()).await?)
    } else {
        None
    };
    let second_uin = demo.admin.credential_uin(&second_rid).await?;
    registrations.push(Registration {
        name: again.name.to_owned(),
        station: "station-b".into(),
        rid: second_rid.clone(),
        statuses: second.clone(),
        files: demo.credential_files(&second_rid),
        outcome: match (&adjudicated, &second_uin) {
            (Some(s), _) if s == "DUPLICATE" => format!(
                "held as a duplicate of UIN {}: no second UIN",
                first.uin.as_deref().unwrap_or("?")
            ),
            (_, Some(u)) => format!("UIN issued: {u} (not recognised as a duplicate)"),
            _ => format!("no UIN: {}", adjudicated.as_deref().unwrap_or(&second_status)),
        },
        uin: second_uin,
    });
    demo.bar.finish_and_clear();

    note!(demo, "10. Outcome of each registration");
    for r in &registrations {
        note!(demo, "    {} {} ({}): {}", r.rid, r.name, r.station, r.outcome);
        for f in &r.files {
            note!(demo, "        {}", f.display());
        }
    }
    let expected = registrations.len();
    let notifications = demo.outbox(expected).await?;
    note!(
        demo,
        "11. Notification outbox ({}, no SMTP server configured): {} messages",
        demo.dir.join("server/outbox/notifications.jsonl").display(),
        notifications.len()
    );
    for n in &notifications {
        let s = |k: &str| n.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_owned();
        note!(
            demo,
            "    {} {} to {} {}{}",
            s("rid"),
            s("kind"),
            s("channel"),
            s("address"),
            n.get("uin")
                .and_then(|v| v.as_str())
                .map(|u| format!(": UIN {u}"))
                .unwrap_or_default()
        );
    }
    a.logout()?;
    b.logout()?;
    let Demo {
        server,
        out,
        simulator,
        ..
    } = demo;
    server.stop().await?;
    drop(simulator);
    say!(out, "Done in {:.1} s.", started.elapsed().as_secs_f64());
    Ok(Outcome {
        rid: first.rid.clone(),
        statuses: first.statuses.clone(),
        uin: first.uin.clone(),
        second_rid,
        second_status,
        adjudicated,
        registrations,
        notifications,
    })
}
