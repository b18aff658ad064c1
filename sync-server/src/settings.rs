//! Typed configuration: defaults < TOML file (`--config`) < `TESSERA_*` environment variables.
//!
//! Every key of the file is a field of [`Settings`]; unknown keys are refused. Every field can also be set by
//! the environment variable `TESSERA_<FIELD IN UPPER CASE>`, and the secrets (`database_url`, `admin_token`,
//! `master_key`) by `TESSERA_<FIELD>_FILE` naming a file that holds the value. The `[smtp]` section's keys
//! are `TESSERA_SMTP_<KEY>` (`TESSERA_SMTP_PASSWORD_FILE` for the password). See `docs/server.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret value whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value; do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Default of [`Settings::bio_match_threshold`].
pub const BIO_MATCH_THRESHOLD_DEFAULT: u32 = 200;

/// Default of [`Settings::bio_index_min_score`]: 7.00, a per-person false match rate of 1e-7.
pub const BIO_INDEX_MIN_SCORE_DEFAULT: u32 = 700;

/// Which biometric 1:N gallery the server searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DedupeIndex {
    /// The indexed, memory-mapped gallery file in the data directory (`tessera_biometrics::gallery`).
    #[default]
    Gallery,
    /// An in-memory exhaustive scan of every enrolled finger (small deployments, tests).
    Exhaustive,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, refused if the server cannot (port 587; the default).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption (a relay on the same host or a test server only; credentials are then not sent).
    None,
}

impl SmtpTls {
    /// The usual port of the mode.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Starttls => 587,
            Self::Tls => 465,
            Self::None => 25,
        }
    }
}

/// The `[smtp]` section: resident notifications by email. Without it (or without a host) notifications
/// go to the local outbox file. Also `TESSERA_SMTP_HOST`, `TESSERA_SMTP_PORT`, `TESSERA_SMTP_USER`,
/// `TESSERA_SMTP_PASSWORD` (or `TESSERA_SMTP_PASSWORD_FILE`), `TESSERA_SMTP_FROM`, `TESSERA_SMTP_TLS`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// The SMTP server (host name, checked against its TLS certificate).
    pub host: String,
    /// Its port (default: 587 with `starttls`, 465 with `tls`, 25 with `none`).
    #[serde(default)]
    pub port: Option<u16>,
    /// Login name, when the server requires authentication.
    #[serde(default)]
    pub user: Option<String>,
    /// Password of `user`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sender address, e.g. `Registration Office <no-reply@id.example.org>`.
    pub from: String,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub tls: SmtpTls,
}

/// Where packet blobs are stored (table `[blobs]`; each key also as `TESSERA_BLOBS_<KEY>`, the secrets also
/// as `TESSERA_BLOBS_<KEY>_FILE`). With no `url`, a local folder `<data_dir>/blobs`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobSettings {
    /// `s3://bucket[/prefix]` (S3-compatible object store) or `file:///path` (a local folder).
    pub url: Option<String>,
    /// S3 endpoint, e.g. `http://127.0.0.1:9000` for a self-hosted S3-compatible server (plain `http://` is
    /// allowed for such an endpoint); unset = AWS.
    pub endpoint: Option<String>,
    /// S3 region (default `us-east-1`).
    pub region: Option<String>,
    /// S3 access key id.
    pub access_key_id: Option<Secret>,
    /// S3 secret access key.
    pub secret_access_key: Option<Secret>,
}

/// What the validation stage does with a packet created on a day its center was closed (weekday without
/// working hours, public holiday of its location, the center's exceptional holiday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkingDay {
    /// Reject it (`validate:not_working_day`).
    Reject,
    /// Process it and record a `flag:not_working_day` event in its history (the default).
    #[default]
    Flag,
    /// Do not check.
    Off,
}

/// The `[validation]` section (also `TESSERA_VALIDATION_WORKING_DAY`, `TESSERA_VALIDATION_CLOCK_SKEW_SECS`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationSettings {
    /// Packets created on a closed day: `reject`, `flag` (default) or `off`.
    pub working_day: WorkingDay,
    /// How far a packet's creation time may be after its receipt before it is flagged (`flag:clock_ahead`),
    /// and how far before its machine's enrolment request (`flag:clock_behind`), in seconds. Skew is never a
    /// reason to reject.
    pub clock_skew_secs: u32,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            working_day: WorkingDay::Flag,
            clock_skew_secs: 600,
        }
    }
}

/// The server's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the embedded database, keys and blobs live (`TESSERA_DATA_DIR`). Created on first start.
    pub data_dir: PathBuf,
    /// Address and port to listen on (`TESSERA_LISTEN`); port 0 picks a free port.
    pub listen: SocketAddr,
    /// PostgreSQL URL (`TESSERA_DATABASE_URL`); when absent the embedded encrypted SQLite database is used.
    pub database_url: Option<Secret>,
    /// PostgreSQL connection pool size.
    pub postgres_pool_size: usize,
    /// Bearer token of the admin API (`TESSERA_ADMIN_TOKEN`); when absent one is generated into
    /// `<data_dir>/admin.token` on first start.
    pub admin_token: Option<Secret>,
    /// Country configuration folder to load on first start of an empty database (`TESSERA_COUNTRY_CONFIG`).
    pub country_config: Option<PathBuf>,
    /// Log format (`TESSERA_LOG_FORMAT`: `text` or `json`).
    pub log_format: LogFormat,
    /// Largest sealed packet accepted, in bytes.
    pub max_packet_bytes: u64,
    /// Largest single upload chunk (one PATCH body), in bytes.
    pub max_chunk_bytes: u64,
    /// Uploads a machine may start per 24 hours.
    pub machine_daily_quota: u32,
    /// How far a signed request's timestamp may be from the server clock, in seconds (also the nonce memory).
    pub request_validity_secs: u64,
    /// Largest sync page.
    pub sync_page_limit: u32,
    /// UINs to keep available in the pool; topped up at start when below `uin_pool_low_water`.
    pub uin_pool_target: u32,
    /// Pool level below which the pool is topped up.
    pub uin_pool_low_water: u32,
    /// Processing workers this process runs (0: none, e.g. an upload-only front end). A process with at
    /// least one also runs one notification sender.
    pub pipeline_workers: u32,
    /// How long a worker holds a claimed job before another may take it again (seconds). Longer than the
    /// slowest packet's processing; a crashed worker's jobs wait this long.
    pub job_lease_secs: u32,
    /// Fused finger score (in thousandths, 0-1000) from which a gallery person is a biometric duplicate
    /// candidate, with `dedupe_index = "exhaustive"`.
    pub bio_match_threshold: u32,
    /// Device signatures on captured biometrics (`TESSERA_DEVICE_SIGNATURES`: `require`, the default,
    /// `when-present` or `off`); see [`crate::device_check`].
    pub device_signatures: crate::device_check::DeviceSignatures,
    /// The biometric 1:N gallery (`TESSERA_DEDUPE_INDEX`: `gallery`, the default, or `exhaustive`).
    pub dedupe_index: DedupeIndex,
    /// With `dedupe_index = "gallery"`: the fused score `-log10(FMR)`, in hundredths, from which a gallery
    /// person is a biometric duplicate candidate (700 = FMR 1e-7 per compared person).
    pub bio_index_min_score: u32,
    /// With `dedupe_index = "gallery"`: persons added or removed after which the gallery file is rewritten
    /// (it is also written at shutdown; changes since the last save are reloaded from the database on
    /// start).
    pub bio_index_save_every: u32,
    /// Email notifications (`[smtp]`); absent: the local outbox file `<data_dir>/outbox/notifications.jsonl`.
    pub smtp: Option<SmtpSettings>,
    /// Packet blob storage (`[blobs]`).
    pub blobs: BlobSettings,
    /// Validation of the creation time (`[validation]`).
    pub validation: ValidationSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("tessera-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8440)),
            database_url: None,
            postgres_pool_size: 16,
            admin_token: None,
            country_config: None,
            log_format: LogFormat::Text,
            max_packet_bytes: 64 * 1024 * 1024,
            max_chunk_bytes: 8 * 1024 * 1024,
            machine_daily_quota: 5_000,
            request_validity_secs: 300,
            sync_page_limit: 500,
            uin_pool_target: 20_000,
            uin_pool_low_water: 5_000,
            pipeline_workers: 1,
            job_lease_secs: 300,
            bio_match_threshold: BIO_MATCH_THRESHOLD_DEFAULT,
            device_signatures: crate::device_check::DeviceSignatures::Require,
            dedupe_index: DedupeIndex::Gallery,
            bio_index_min_score: BIO_INDEX_MIN_SCORE_DEFAULT,
            bio_index_save_every: 1_000,
            smtp: None,
            blobs: BlobSettings::default(),
            validation: ValidationSettings::default(),
        }
    }
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}; check the --config path and its permissions")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's message (line and column).
        message: String,
    },
    /// A `TESSERA_*_FILE` secret file could not be read.
    #[error("cannot read {var}={path}: {source}")]
    SecretFile {
        /// The variable.
        var: String,
        /// The file it names.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An environment variable has a value of the wrong type.
    #[error("{var} must be {expected}, got {value:?}")]
    EnvValue {
        /// The variable.
        var: String,
        /// What was expected.
        expected: &'static str,
        /// The value given.
        value: String,
    },
    /// The merged configuration is invalid (unknown key, wrong type, bad address).
    #[error("invalid configuration: {message}")]
    Invalid {
        /// The deserializer's message, naming the key.
        message: String,
    },
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
}

/// Every field with the type of its environment value.
const FIELDS: &[(&str, Kind)] = &[
    ("data_dir", Kind::Str),
    ("listen", Kind::Str),
    ("database_url", Kind::Str),
    ("postgres_pool_size", Kind::Int),
    ("admin_token", Kind::Str),
    ("country_config", Kind::Str),
    ("log_format", Kind::Str),
    ("max_packet_bytes", Kind::Int),
    ("max_chunk_bytes", Kind::Int),
    ("machine_daily_quota", Kind::Int),
    ("request_validity_secs", Kind::Int),
    ("sync_page_limit", Kind::Int),
    ("uin_pool_target", Kind::Int),
    ("uin_pool_low_water", Kind::Int),
    ("pipeline_workers", Kind::Int),
    ("job_lease_secs", Kind::Int),
    ("bio_match_threshold", Kind::Int),
    ("device_signatures", Kind::Str),
    ("dedupe_index", Kind::Str),
    ("bio_index_min_score", Kind::Int),
    ("bio_index_save_every", Kind::Int),
];

const SECRET_FIELDS: &[&str] = &["database_url", "admin_token"];

/// Keys of the config file's tables that are also environment variables `TESSERA_<TABLE>_<KEY>`: the table,
/// the key, the type of the environment value and whether it is a secret (also read from `<var>_FILE`).
const TABLE_FIELDS: &[(&str, &str, Kind, bool)] = &[
    ("smtp", "host", Kind::Str, false),
    ("smtp", "port", Kind::Int, false),
    ("smtp", "user", Kind::Str, false),
    ("smtp", "password", Kind::Str, true),
    ("smtp", "from", Kind::Str, false),
    ("smtp", "tls", Kind::Str, false),
    ("blobs", "url", Kind::Str, false),
    ("blobs", "endpoint", Kind::Str, false),
    ("blobs", "region", Kind::Str, false),
    ("blobs", "access_key_id", Kind::Str, true),
    ("blobs", "secret_access_key", Kind::Str, true),
    ("validation", "working_day", Kind::Str, false),
    ("validation", "clock_skew_secs", Kind::Int, false),
];

/// Reads `var`, or the file named by `<var>_FILE` when `secret` (the file wins; its content trimmed).
fn env_value(
    env: &BTreeMap<String, String>,
    var: &str,
    secret: bool,
) -> Result<Option<String>, SettingsError> {
    let mut value = env.get(var).cloned();
    if secret {
        let file_var = format!("{var}_FILE");
        if let Some(path) = env.get(&file_var) {
            let text = std::fs::read_to_string(path).map_err(|source| SettingsError::SecretFile {
                var: file_var.clone(),
                path: PathBuf::from(path),
                source,
            })?;
            value = Some(text.trim().to_owned());
        }
    }
    Ok(value)
}

fn env_toml(var: &str, kind: Kind, value: String) -> Result<toml::Value, SettingsError> {
    Ok(match kind {
        Kind::Str => toml::Value::String(value),
        Kind::Int => {
            toml::Value::Integer(value.trim().parse::<i64>().map_err(|_| SettingsError::EnvValue {
                var: var.to_owned(),
                expected: "a whole number",
                value: value.clone(),
            })?)
        }
    })
}

impl Settings {
    /// Loads settings from an optional TOML file and the process environment.
    pub fn load(config_file: Option<&Path>) -> Result<Self, SettingsError> {
        let file = match config_file {
            Some(path) => Some((
                path.to_path_buf(),
                std::fs::read_to_string(path).map_err(|source| SettingsError::ReadFile {
                    path: path.to_path_buf(),
                    source,
                })?,
            )),
            None => None,
        };
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("TESSERA_"))
            .collect();
        Self::from_sources(file.as_ref().map(|(p, s)| (p.as_path(), s.as_str())), &env)
    }

    /// Merges defaults, a TOML document (with its path for messages) and environment variables. Pure, so the
    /// precedence is tested without touching the process environment.
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, SettingsError> {
        let mut table = match file {
            Some((path, text)) => {
                toml::from_str::<toml::Table>(text).map_err(|e| SettingsError::ParseFile {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        for (field, kind) in FIELDS {
            let var = format!("TESSERA_{}", field.to_ascii_uppercase());
            let Some(value) = env_value(env, &var, SECRET_FIELDS.contains(field))? else {
                continue;
            };
            table.insert((*field).to_owned(), env_toml(&var, *kind, value)?);
        }
        for (name, field, kind, secret) in TABLE_FIELDS {
            let var = format!(
                "TESSERA_{}_{}",
                name.to_ascii_uppercase(),
                field.to_ascii_uppercase()
            );
            let Some(value) = env_value(env, &var, *secret)? else {
                continue;
            };
            let value = env_toml(&var, *kind, value)?;
            let toml::Value::Table(t) = table
                .entry(*name)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            else {
                return Err(SettingsError::Invalid {
                    message: format!("{name} must be a table ([{name}])"),
                });
            };
            t.insert((*field).to_owned(), value);
        }
        let settings =
            Settings::deserialize(toml::Value::Table(table)).map_err(|e| SettingsError::Invalid {
                message: e.to_string(),
            })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let bad = |message: String| Err(SettingsError::Invalid { message });
        if self.max_chunk_bytes == 0 || self.max_packet_bytes == 0 {
            return bad("max_packet_bytes and max_chunk_bytes must be positive".into());
        }
        if self.request_validity_secs < 10 {
            return bad("request_validity_secs must be at least 10".into());
        }
        if self.sync_page_limit == 0 || self.postgres_pool_size == 0 {
            return bad("sync_page_limit and postgres_pool_size must be positive".into());
        }
        if self.uin_pool_low_water > self.uin_pool_target {
            return bad("uin_pool_low_water must not exceed uin_pool_target".into());
        }
        if self.job_lease_secs == 0 {
            return bad("job_lease_secs must be positive".into());
        }
        if self.bio_match_threshold > 1000 {
            return bad("bio_match_threshold is in thousandths: 0 to 1000".into());
        }
        if self.bio_index_save_every == 0 {
            return bad("bio_index_save_every must be positive".into());
        }
        if let Some(smtp) = &self.smtp {
            if smtp.host.trim().is_empty() {
                return bad("smtp.host must name the SMTP server".into());
            }
            if smtp.password.is_some() && smtp.user.is_none() {
                return bad("smtp.password is set but smtp.user is not".into());
            }
            if smtp.user.is_some() && smtp.tls == SmtpTls::None {
                return bad("smtp.user with smtp.tls = \"none\" would send the password in clear; use starttls or tls".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_without_file_or_env() {
        let s = Settings::from_sources(None, &env(&[])).unwrap();
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn precedence_defaults_then_file_then_env() {
        let file = "listen = \"0.0.0.0:9000\"\nmax_packet_bytes = 1000\nsync_page_limit = 7\n";
        let path = Path::new("test.toml");
        let s = Settings::from_sources(Some((path, file)), &env(&[])).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.max_packet_bytes, 1000);
        assert_eq!(s.data_dir, PathBuf::from("tessera-data"), "default kept");

        let e = env(&[
            ("TESSERA_LISTEN", "127.0.0.1:0"),
            ("TESSERA_MAX_PACKET_BYTES", "2000"),
        ]);
        let s = Settings::from_sources(Some((path, file)), &e).unwrap();
        assert_eq!(s.listen.port(), 0, "env beats file");
        assert_eq!(s.max_packet_bytes, 2000, "env beats file");
        assert_eq!(s.sync_page_limit, 7, "file beats default");
    }

    #[test]
    fn data_dir_and_listen_work_with_no_file() {
        let e = env(&[
            ("TESSERA_DATA_DIR", "/tmp/x"),
            ("TESSERA_LISTEN", "127.0.0.1:1234"),
        ]);
        let s = Settings::from_sources(None, &e).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(s.listen, "127.0.0.1:1234".parse().unwrap());
    }

    #[test]
    fn unknown_file_key_is_refused_with_its_name() {
        let err =
            Settings::from_sources(Some((Path::new("a.toml"), "lisen = \"x\"")), &env(&[])).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn bad_env_number_names_the_variable() {
        let err = Settings::from_sources(None, &env(&[("TESSERA_SYNC_PAGE_LIMIT", "lots")])).unwrap_err();
        assert!(err.to_string().contains("TESSERA_SYNC_PAGE_LIMIT"), "{err}");
    }

    #[test]
    fn dedupe_index_defaults_to_the_gallery_and_the_scan_is_selectable() {
        assert_eq!(Settings::default().dedupe_index, DedupeIndex::Gallery);
        let s = Settings::from_sources(None, &env(&[("TESSERA_VALIDATION_WORKING_DAY", "reject")])).unwrap();
        assert_eq!(s.validation.working_day, WorkingDay::Reject);
        assert_eq!(s.validation.clock_skew_secs, 600);
        assert_eq!(Settings::default().validation.working_day, WorkingDay::Flag);
        let s = Settings::from_sources(
            Some((
                Path::new("t.toml"),
                "[validation]\nworking_day = \"off\"\nclock_skew_secs = 60\n",
            )),
            &env(&[]),
        )
        .unwrap();
        assert_eq!(
            (s.validation.working_day, s.validation.clock_skew_secs),
            (WorkingDay::Off, 60)
        );
        assert!(Settings::from_sources(None, &env(&[("TESSERA_VALIDATION_WORKING_DAY", "maybe")])).is_err());
        let s = Settings::from_sources(None, &env(&[("TESSERA_DEDUPE_INDEX", "exhaustive")])).unwrap();
        assert_eq!(s.dedupe_index, DedupeIndex::Exhaustive);
        let err = Settings::from_sources(None, &env(&[("TESSERA_DEDUPE_INDEX", "magic")])).unwrap_err();
        assert!(err.to_string().contains("magic"), "{err}");
    }

    #[test]
    fn smtp_from_file_and_environment_with_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("smtp-pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        let file = "[smtp]\nhost = \"mail.example.org\"\nfrom = \"ID Office <id@example.org>\"\n";
        let s = Settings::from_sources(Some((Path::new("a.toml"), file)), &env(&[])).unwrap();
        let smtp = s.smtp.unwrap();
        assert_eq!(
            (smtp.host.as_str(), smtp.tls, smtp.port),
            ("mail.example.org", SmtpTls::Starttls, None)
        );
        let e = env(&[
            ("TESSERA_SMTP_PORT", "2525"),
            ("TESSERA_SMTP_USER", "tessera"),
            ("TESSERA_SMTP_PASSWORD_FILE", p.to_str().unwrap()),
            ("TESSERA_SMTP_TLS", "tls"),
        ]);
        let s = Settings::from_sources(Some((Path::new("a.toml"), file)), &e).unwrap();
        let smtp = s.smtp.clone().unwrap();
        assert_eq!(
            (smtp.port, smtp.tls),
            (Some(2525), SmtpTls::Tls),
            "env beats file"
        );
        assert_eq!(smtp.password.unwrap().expose(), "s3cret");
        assert!(!format!("{s:?}").contains("s3cret"), "password redacted");
        // Only the environment.
        let e = env(&[
            ("TESSERA_SMTP_HOST", "127.0.0.1"),
            ("TESSERA_SMTP_FROM", "a@b.c"),
            ("TESSERA_SMTP_TLS", "none"),
        ]);
        assert_eq!(
            Settings::from_sources(None, &e).unwrap().smtp.unwrap().tls,
            SmtpTls::None
        );
    }

    #[test]
    fn smtp_mistakes_are_named() {
        let e = env(&[("TESSERA_SMTP_HOST", "h")]);
        assert!(
            Settings::from_sources(None, &e)
                .unwrap_err()
                .to_string()
                .contains("from")
        );
        let e = env(&[
            ("TESSERA_SMTP_HOST", "h"),
            ("TESSERA_SMTP_FROM", "a@b.c"),
            ("TESSERA_SMTP_TLS", "maybe"),
        ]);
        assert!(
            Settings::from_sources(None, &e)
                .unwrap_err()
                .to_string()
                .contains("maybe")
        );
        let e = env(&[
            ("TESSERA_SMTP_HOST", "h"),
            ("TESSERA_SMTP_FROM", "a@b.c"),
            ("TESSERA_SMTP_USER", "u"),
            ("TESSERA_SMTP_TLS", "none"),
        ]);
        assert!(
            Settings::from_sources(None, &e)
                .unwrap_err()
                .to_string()
                .contains("clear")
        );
        let file = "[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nhots = 1\n";
        let err = Settings::from_sources(Some((Path::new("a.toml"), file)), &env(&[])).unwrap_err();
        assert!(err.to_string().contains("hots"), "{err}");
    }

    #[test]
    fn blob_settings_from_file_env_and_secret_files() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s3-secret");
        std::fs::write(&secret, "very-secret\n").unwrap();
        let file = "[blobs]\nurl = \"s3://file-bucket/p\"\nregion = \"eu-west-1\"\n";
        let e = env(&[
            ("TESSERA_BLOBS_URL", "s3://env-bucket/tessera"),
            ("TESSERA_BLOBS_ENDPOINT", "http://127.0.0.1:9000"),
            ("TESSERA_BLOBS_ACCESS_KEY_ID", "AKID"),
            ("TESSERA_BLOBS_SECRET_ACCESS_KEY_FILE", secret.to_str().unwrap()),
        ]);
        let s = Settings::from_sources(Some((Path::new("c.toml"), file)), &e).unwrap();
        assert_eq!(
            s.blobs.url.as_deref(),
            Some("s3://env-bucket/tessera"),
            "env beats file"
        );
        assert_eq!(s.blobs.region.as_deref(), Some("eu-west-1"), "file kept");
        assert_eq!(s.blobs.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(
            s.blobs.secret_access_key.as_ref().unwrap().expose(),
            "very-secret"
        );
        assert!(!format!("{s:?}").contains("very-secret"));
        let err = Settings::from_sources(
            Some((Path::new("c.toml"), "[blobs]\nbucket = \"x\"\n")),
            &env(&[]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("bucket"), "{err}");
        assert_eq!(Settings::default().blobs, BlobSettings::default());
    }

    #[test]
    fn secret_from_file_and_redacted_debug() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("url");
        std::fs::write(&p, "postgres://u:pw@h/db\n").unwrap();
        let e = env(&[("TESSERA_DATABASE_URL_FILE", p.to_str().unwrap())]);
        let s = Settings::from_sources(None, &e).unwrap();
        assert_eq!(s.database_url.as_ref().unwrap().expose(), "postgres://u:pw@h/db");
        assert!(!format!("{s:?}").contains("pw"));
    }
}
