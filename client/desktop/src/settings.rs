//! Typed configuration of the desktop shell: defaults < TOML file (`--config`) < `TESSERA_*` environment
//! variables < command-line flags.
//!
//! Every key of the file is a field of [`Settings`]; unknown keys are refused. The station folder uses the same
//! variable as the `tessera-station` CLI (`TESSERA_STATION_HOME`), so both open the same station.
//!
//! ```toml
//! # /etc/tessera/desktop.toml
//! home = "/var/lib/tessera/station"
//! log_format = "json"
//! log = "info"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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

/// The desktop shell's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The station's data folder (`TESSERA_STATION_HOME`, as for the CLI); created by `tessera-station init`.
    pub home: PathBuf,
    /// Log format (`TESSERA_LOG_FORMAT`: `text` or `json`). Logs go to standard error.
    pub log_format: LogFormat,
    /// Log filter (`TESSERA_LOG`, e.g. `info` or `tessera_desktop=debug,info`).
    pub log: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            home: PathBuf::from("tessera-station-data"),
            log_format: LogFormat::Text,
            log: "info".into(),
        }
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--home`.
    pub home: Option<PathBuf>,
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
    /// The merged configuration is invalid (unknown key, wrong type).
    #[error("invalid configuration: {message}")]
    Invalid {
        /// The deserializer's message, naming the key.
        message: String,
    },
}

/// Each field with the environment variable that sets it.
const ENV: &[(&str, &str)] = &[
    ("home", "TESSERA_STATION_HOME"),
    ("log_format", "TESSERA_LOG_FORMAT"),
    ("log", "TESSERA_LOG"),
];

impl Settings {
    /// Loads settings from an optional TOML file, the process environment and the command-line overrides.
    pub fn load(config_file: Option<&Path>, overrides: &Overrides) -> Result<Self, SettingsError> {
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
        Self::from_sources(
            file.as_ref().map(|(p, s)| (p.as_path(), s.as_str())),
            &env,
            overrides,
        )
    }

    /// Merges defaults, a TOML document (with its path for messages), environment variables and overrides.
    /// Pure, so the precedence is tested without touching the process environment.
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        env: &BTreeMap<String, String>,
        overrides: &Overrides,
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
        for (field, var) in ENV {
            if let Some(value) = env.get(*var) {
                table.insert((*field).to_owned(), toml::Value::String(value.clone()));
            }
        }
        let mut settings =
            Settings::deserialize(toml::Value::Table(table)).map_err(|e| SettingsError::Invalid {
                message: e.to_string(),
            })?;
        if let Some(home) = &overrides.home {
            settings.home.clone_from(home);
        }
        if settings.home.as_os_str().is_empty() {
            return Err(SettingsError::Invalid {
                message: "home (TESSERA_STATION_HOME) is empty; name the station's data folder".into(),
            });
        }
        Ok(settings)
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
    fn defaults_file_env_flags_in_that_order() {
        let none = Overrides::default();
        let d = Settings::from_sources(None, &env(&[]), &none).unwrap();
        assert_eq!(d, Settings::default());

        let file = (
            Path::new("desktop.toml"),
            "home = \"/from/file\"\nlog_format = \"json\"\nlog = \"debug\"\n",
        );
        let f = Settings::from_sources(Some(file), &env(&[]), &none).unwrap();
        assert_eq!(f.home, Path::new("/from/file"));
        assert_eq!(f.log_format, LogFormat::Json);
        assert_eq!(f.log, "debug");

        let e = Settings::from_sources(
            Some(file),
            &env(&[
                ("TESSERA_STATION_HOME", "/from/env"),
                ("TESSERA_LOG_FORMAT", "text"),
            ]),
            &none,
        )
        .unwrap();
        assert_eq!(e.home, Path::new("/from/env"));
        assert_eq!(e.log_format, LogFormat::Text);
        assert_eq!(
            e.log, "debug",
            "the file's value stays where the environment is silent"
        );

        let o = Settings::from_sources(
            Some(file),
            &env(&[("TESSERA_STATION_HOME", "/from/env")]),
            &Overrides {
                home: Some("/from/flag".into()),
            },
        )
        .unwrap();
        assert_eq!(o.home, Path::new("/from/flag"));
    }

    #[test]
    fn bad_configuration_is_refused_with_the_key_named() {
        let none = Overrides::default();
        let e = Settings::from_sources(Some((Path::new("d.toml"), "hoem = \"x\"")), &env(&[]), &none)
            .unwrap_err();
        assert!(e.to_string().contains("hoem"), "{e}");

        let e =
            Settings::from_sources(Some((Path::new("d.toml"), "home = [")), &env(&[]), &none).unwrap_err();
        assert!(matches!(e, SettingsError::ParseFile { .. }), "{e}");
        assert!(e.to_string().contains("d.toml"), "{e}");

        let e = Settings::from_sources(None, &env(&[("TESSERA_LOG_FORMAT", "xml")]), &none).unwrap_err();
        assert!(e.to_string().contains("xml"), "{e}");

        let e = Settings::from_sources(None, &env(&[("TESSERA_STATION_HOME", "")]), &none).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }
}
