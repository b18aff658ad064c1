//! The end-to-end demo: a server, the SBI device simulator and two stations, all in this process on the
//! embedded default (SQLite, fresh keys, temporary folders), driven through the real crates' APIs and real
//! HTTP (sync API and SBI).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tessera_packet::clock::{Clock, SystemClock};
use tessera_packet::wire::{MachineStatus, SyncKind};
use tessera_sbi::sim::{self, RunningSimulator, SimConfig, SimError};
use tessera_server::settings::Settings;
use tessera_station::capture::DeviceOptions;
use tessera_station::crypto::KdfParams;
use tessera_station::forms::Answers;
use tessera_station::operators::OperatorBundle;
use tessera_station::station::{InitParams, Station};
use tessera_station::sync::{PROCESSED, Progress, SyncOptions, SyncReport};

/// Demo passwords of `client/demo/operators.json` (test vectors only).
const OFFICER_PW: &str = "demo-officer-pass";
const SUPERVISOR_PW: &str = "demo-supervisor-pass";

/// What the demo produced, for tests.
#[derive(Debug, Clone)]
pub struct Outcome {
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
    devices: DeviceOptions,
    clock: Arc<dyn Clock>,
    started: Instant,
}

impl Demo<'_> {
    fn elapsed(&self) -> String {
        format!("[{:>5.1}s]", self.started.elapsed().as_secs_f64())
    }

    /// Sets up, enrols (approved by the administrator) and syncs a station; returns it with officer1
    /// logged in.
    async fn station(&mut self, name: &str, provisional_machine: &str) -> Result<Station> {
        let home = self.dir.join(name);
        let bundle = OperatorBundle::parse(
            &std::fs::read(self.paths.station_demo.join("operators.json"))
                .context("reading operators.json")?,
        )?;
        let recovery = age::x25519::Identity::generate();
        let packet_key = self
            .server
            .state
            .keys
            .packet_identities
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
        say!(
            self.out,
            "{}    {name}: initialised in {}, enrolled as machine {} ({}), key {}",
            self.elapsed(),
            home.display(),
            e.machine_id,
            e.status,
            id.fingerprint
        );
        tessera_server::machines::set_status(
            self.server.state.store.as_ref(),
            &e.machine_id,
            MachineStatus::Active,
            None,
            self.clock.now().timestamp(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("approving the machine: {e:?}"))?;
        let r = st.sync(&SyncOptions::default()).await?;
        if let Some(why) = r.stopped.or(r.master_data_error) {
            bail!("first sync of {name} failed: {why}");
        }
        let kinds: Vec<String> = r
            .master_data_items
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        say!(
            self.out,
            "{}    {name}: administrator approved it; first sync: {}",
            self.elapsed(),
            kinds.join(", ")
        );
        Ok(st)
    }

    /// Registers the demo resident at `st`, capturing from the simulator; returns the RID (approved).
    async fn register(&mut self, st: &mut Station, name: &str) -> Result<String> {
        let answers_path = self.paths.station_demo.join("answers-new-adult.json");
        let answers: Answers = serde_json::from_slice(&std::fs::read(&answers_path)?)?;
        let id = st.start_draft(&answers.process)?;
        let problems = st.save_answers(id, answers.clone())?;
        if !problems.is_empty() {
            bail!("the demo answers have problems: {problems:?}");
        }
        for (field, doc) in &answers.documents {
            let bytes = std::fs::read(self.paths.station_demo.join(&doc.file))?;
            st.import_document(id, field, &doc.doc_type, doc.ref_number.clone(), &bytes)?;
        }
        say!(
            self.out,
            "{}    {name}: officer1 entered demographics ({} fields) and {} document scans",
            self.elapsed(),
            answers.demographics.len(),
            answers.documents.len()
        );
        for p in st.capture_all(id, &self.devices).await? {
            let q: Vec<String> = p.qualities.iter().map(|(a, q)| format!("{a} {q}")).collect();
            say!(
                self.out,
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
        say!(
            self.out,
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
        say!(
            self.out,
            "{}    {name}: supervisor super1 approved it",
            self.elapsed()
        );
        Ok(sealed.rid)
    }

    /// Uploads and follows the packet's status until it is final (or on hold), printing transitions.
    async fn upload_and_follow(&mut self, st: &mut Station, name: &str, rid: &str) -> Result<Vec<String>> {
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
            say!(self.out, "{}    {name}: {l}", self.elapsed());
        }
        if let Some(why) = r.stopped {
            bail!("upload stopped: {why}");
        }
        let mut statuses = vec!["RECEIVED".to_owned()];
        say!(self.out, "{}    {name}: {rid} status RECEIVED", self.elapsed());
        self.follow(st, rid, |demo, r, st| {
            for s in r.statuses.iter().filter(|s| s.rid == rid) {
                if statuses.last() != Some(&s.to) {
                    say!(
                        demo.out,
                        "{}    {name}: {rid} status {}{}",
                        demo.elapsed(),
                        s.to,
                        s.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                    );
                    statuses.push(s.to.clone());
                }
            }
            let done = st.uploads()?.iter().any(|u| {
                u.rid == rid && (u.state == PROCESSED || u.server_status.as_deref() == Some("ON_HOLD"))
            });
            let quarantined = statuses.last().is_some_and(|s| s == "QUARANTINED");
            Ok((done || quarantined).then(|| statuses.clone()))
        })
        .await
    }

    /// Syncs statuses (no master data) every 200 ms and calls `step` after each round, until it returns a value
    /// or 30 s pass.
    async fn follow<T>(
        &mut self,
        st: &mut Station,
        rid: &str,
        mut step: impl FnMut(&mut Self, &SyncReport, &Station) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + Duration::from_secs(30);
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
                bail!("{rid} reached no final status within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The adjudicator reviews the held case over the server's adjudication API (adjudicator token), confirms the
    /// candidate is the first registration's UIN and decides DUPLICATE; station B then syncs the final status.
    async fn adjudicate(&mut self, st: &mut Station, rid: &str, first_uin: Option<&str>) -> Result<String> {
        say!(
            self.out,
            "10. Adjudication: the held case is reviewed over the server's adjudication API"
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
            say!(
                self.out,
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
        say!(
            self.out,
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
                    say!(demo.out, "{}    station-b: {rid} status {status}", demo.elapsed());
                    Ok(Some(status))
                }
                None => Ok(None),
            }
        })
        .await
    }

    async fn uin_of(&self, rid: &str) -> Result<Option<String>> {
        // The sync API does not return UINs to stations; the demo reads the server's record.
        let rid: tessera_packet::ids::Rid = rid.parse()?;
        let doc = tessera_server::pipeline::fetch(
            &self.server.state,
            tessera_server::store::IdentityLookup::Rid(rid),
        )
        .await
        .map_err(|e| anyhow::anyhow!("reading the UIN: {e:?}"))?;
        Ok(doc.map(|d| d.uin))
    }
}

/// What the administrator publishes to stations before they register anyone: the center's operators and the
/// device provider's CA certificate (the server also checks every biometric's device signature against it).
pub async fn publish_to_stations(
    store: &dyn tessera_server::store::Store,
    ops: &OperatorBundle,
    provider_ca_pem: &str,
) -> Result<()> {
    for o in &ops.operators {
        store
            .put_sync_item(
                SyncKind::Operators,
                &o.center_id,
                &o.id,
                Some(serde_json::to_value(o)?),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    store
        .put_sync_item(
            SyncKind::Certificates,
            "",
            "sim-provider-ca",
            Some(serde_json::json!({"pem": provider_ca_pem})),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

/// Runs the whole demo in `dir` (which must exist and be empty), printing each step to `out`.
pub async fn run(dir: &Path, paths: Paths, out: &mut dyn Write) -> Result<Outcome> {
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
        "2. Devices: SBI 0.9.5 simulator (finger slap, single finger, iris, face; synthetic person 1)"
    );
    let (simulator, base) = start_simulator().await?;
    for (kind, addr) in simulator.devices() {
        say!(out, "         {kind:?} on {addr}");
    }

    say!(
        out,
        "3. Administrator: publishes the center's operators and the device provider's CA to stations"
    );
    let ops: OperatorBundle =
        OperatorBundle::parse(&std::fs::read(paths.station_demo.join("operators.json"))?)?;
    publish_to_stations(server.state.store.as_ref(), &ops, simulator.ca_pem()).await?;
    for o in &ops.operators {
        say!(out, "         {} ({:?}) of center {}", o.id, o.roles, o.center_id);
    }

    let mut demo = Demo {
        out,
        dir: dir.to_path_buf(),
        paths,
        server,
        url,
        devices: DeviceOptions {
            first_port: base,
            last_port: base + 3,
            ..DeviceOptions::default()
        },
        clock,
        started,
    };
    say!(demo.out, "4. Station A: init, enrol with the server, first sync");
    let mut a = demo.station("station-a", "10077").await?;
    say!(demo.out, "5. Registration at station A (NEW, adult)");
    let rid = demo.register(&mut a, "station-a").await?;
    say!(
        demo.out,
        "6. Sync: upload (tus, resumable), receipt, processing status"
    );
    let statuses = demo.upload_and_follow(&mut a, "station-a", &rid).await?;
    let uin = if statuses.last().is_some_and(|s| s == "PROCESSED") {
        demo.uin_of(&rid).await?
    } else {
        None
    };
    match &uin {
        Some(u) => say!(demo.out, "7. UIN issued: {u} for RID {rid}"),
        None => say!(demo.out, "7. No UIN: the server decided {:?}", statuses.last()),
    }

    say!(demo.out, "8. The same person registers again at station B");
    let mut b = demo.station("station-b", "10078").await?;
    let second_rid = demo.register(&mut b, "station-b").await?;
    let second = demo.upload_and_follow(&mut b, "station-b", &second_rid).await?;
    let second_status = second.last().cloned().unwrap_or_default();
    let second_uin = if second_status == "PROCESSED" {
        demo.uin_of(&second_rid).await?
    } else {
        None
    };
    say!(
        demo.out,
        "9. Server decision for the second registration: {second_status}{}",
        second_uin
            .map(|u| format!(
                ", UIN {u} (deduplication is not in the server pipeline yet, so the same person got a second UIN)"
            ))
            .unwrap_or_default()
    );
    let adjudicated = if second_status == "ON_HOLD" {
        Some(demo.adjudicate(&mut b, &second_rid, uin.as_deref()).await?)
    } else {
        None
    };
    a.logout()?;
    b.logout()?;
    let Demo { server, out, .. } = demo;
    server.stop().await?;
    drop(simulator);
    say!(out, "Done in {:.1} s.", started.elapsed().as_secs_f64());
    Ok(Outcome {
        rid,
        statuses,
        uin,
        second_rid,
        second_status,
        adjudicated,
    })
}
