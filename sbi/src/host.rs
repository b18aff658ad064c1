//! The device host (`tessera-sbi host`): physical devices plugged into the station, served to it.
//!
//! - a serial R30x fingerprint sensor as an SBI single-finger device (see [`crate::serial`]), reopened
//!   after an unplug and reported Not Ready meanwhile;
//! - an allow-listed HID barcode scanner whose scans (pre-registration QR codes) the station reads
//!   from `http://127.0.0.1:<scanner port>/scanner/scan` (see [`crate::hid::scanner`]).
//!
//! Settings come from defaults, then a TOML file, then `TESSERA_SBI_*` environment variables (then the
//! command line, applied by the binary):
//!
//! ```toml
//! [serial]
//! path = "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0"   # TESSERA_SBI_SERIAL
//! baud = 57600                                            # TESSERA_SBI_BAUD
//! password = 0                                            # TESSERA_SBI_SENSOR_PASSWORD
//! port = 4501                                             # TESSERA_SBI_PORT
//!
//! [hid]
//! allow = ["0c2e:0b61", "05e0:*"]                         # TESSERA_SBI_HID_ALLOW="0c2e:0b61,05e0:*"
//! scanner_port = 4610                                     # TESSERA_SBI_SCANNER_PORT
//! report_id = 1                                           # TESSERA_SBI_HID_REPORT_ID (numbered reports only)
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tessera_packet::clock::Clock;

use crate::hid::scanner::{Scanner, ScannerConfig};
use crate::hid::{AllowList, HidBackend, HidError, HidapiBackend};
use crate::serial::{R30xDriver, SerialError, SerialFingerSource};
use crate::sim::{self, DeviceKind, RunningSimulator, SimConfig, SimError};

/// Default SBI port of the serial sensor.
pub const DEFAULT_SBI_PORT: u16 = 4501;
/// Default port of the scanner endpoint (outside the SBI range 4501-4600, so discovery skips it).
pub const DEFAULT_SCANNER_PORT: u16 = 4610;

/// A configuration or start-up failure of the host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The settings file could not be read.
    #[error("could not read the host settings file {path}: {source}")]
    ReadFile {
        /// The file.
        path: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The settings file is not valid.
    #[error("the host settings file {path} is invalid: {reason}")]
    BadFile {
        /// The file.
        path: String,
        /// The parser's message (names the key and line).
        reason: String,
    },
    /// An environment variable holds a bad value.
    #[error("environment variable {var} is invalid: {reason}")]
    BadEnv {
        /// The variable.
        var: &'static str,
        /// Why.
        reason: String,
    },
    /// The HID allow-list is invalid.
    #[error(transparent)]
    Hid(#[from] HidError),
    /// The SBI service could not start.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The scanner endpoint could not listen.
    #[error("could not listen on 127.0.0.1:{port} for the scanner endpoint: {source}")]
    Bind {
        /// Port.
        port: u16,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Nothing to serve.
    #[error(
        "nothing to serve: configure a serial sensor (--serial / TESSERA_SBI_SERIAL) or a HID allow-list (--hid-allow / TESSERA_SBI_HID_ALLOW)"
    )]
    Nothing,
}

/// The serial sensor.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SerialSettings {
    /// Port path; prefer a stable `/dev/serial/by-id/...` link so a re-plugged adapter is found again.
    pub path: String,
    /// Baud rate (the sensors' default is 57600).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Module password (factory default 0).
    #[serde(default)]
    pub password: u32,
    /// SBI port on 127.0.0.1.
    #[serde(default = "default_port")]
    pub port: u16,
}

impl std::fmt::Debug for SerialSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialSettings")
            .field("path", &self.path)
            .field("baud", &self.baud)
            .field("password", &"<redacted>")
            .field("port", &self.port)
            .finish()
    }
}

/// HID devices.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HidSettings {
    /// `vendor:product` pairs (hex; `vvvv:*` for any product) the host may open.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Port of the scanner endpoint on 127.0.0.1.
    #[serde(default = "default_scanner_port")]
    pub scanner_port: u16,
    /// Report id of numbered keyboard reports; absent for the boot protocol.
    #[serde(default)]
    pub report_id: Option<u8>,
}

impl Default for HidSettings {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            scanner_port: DEFAULT_SCANNER_PORT,
            report_id: None,
        }
    }
}

fn default_baud() -> u32 {
    57600
}
fn default_port() -> u16 {
    DEFAULT_SBI_PORT
}
fn default_scanner_port() -> u16 {
    DEFAULT_SCANNER_PORT
}

/// Everything the host serves.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HostSettings {
    /// The serial sensor, if any.
    #[serde(default)]
    pub serial: Option<SerialSettings>,
    /// HID devices.
    #[serde(default)]
    pub hid: HidSettings,
}

fn env_num<T: std::str::FromStr>(var: &'static str, v: &str) -> Result<T, HostError> {
    v.trim().parse().map_err(|_| HostError::BadEnv {
        var,
        reason: format!(
            "{:?} is not a number in range",
            v.chars().take(20).collect::<String>()
        ),
    })
}

impl HostSettings {
    /// Defaults, then `file` (TOML), then the `TESSERA_SBI_*` variables read through `env`.
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, HostError> {
        let mut s = match file {
            None => HostSettings::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| HostError::ReadFile {
                    path: path.display().to_string(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| HostError::BadFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?
            }
        };
        if let Some(p) = env("TESSERA_SBI_SERIAL").filter(|p| !p.trim().is_empty()) {
            match &mut s.serial {
                Some(ser) => ser.path = p,
                None => {
                    s.serial = Some(SerialSettings {
                        path: p,
                        baud: default_baud(),
                        password: 0,
                        port: default_port(),
                    });
                }
            }
        }
        if let Some(ser) = &mut s.serial {
            if let Some(v) = env("TESSERA_SBI_BAUD") {
                ser.baud = env_num("TESSERA_SBI_BAUD", &v)?;
            }
            if let Some(v) = env("TESSERA_SBI_SENSOR_PASSWORD") {
                ser.password = env_num("TESSERA_SBI_SENSOR_PASSWORD", &v)?;
            }
            if let Some(v) = env("TESSERA_SBI_PORT") {
                ser.port = env_num("TESSERA_SBI_PORT", &v)?;
            }
        }
        if let Some(v) = env("TESSERA_SBI_HID_ALLOW") {
            s.hid.allow = v
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect();
        }
        if let Some(v) = env("TESSERA_SBI_SCANNER_PORT") {
            s.hid.scanner_port = env_num("TESSERA_SBI_SCANNER_PORT", &v)?;
        }
        if let Some(v) = env("TESSERA_SBI_HID_REPORT_ID") {
            s.hid.report_id = Some(env_num("TESSERA_SBI_HID_REPORT_ID", &v)?);
        }
        s.allow_list()?;
        Ok(s)
    }

    /// The parsed HID allow-list.
    pub fn allow_list(&self) -> Result<AllowList, HidError> {
        AllowList::parse(&self.hid.allow.join(","))
    }
}

/// A running host; dropping it stops everything.
#[derive(Debug)]
pub struct RunningHost {
    /// The serial sensor's SBI service, when configured.
    pub sensor: Option<RunningSimulator>,
    /// The sensor source (status, probes).
    pub sensor_source: Option<Arc<SerialFingerSource<serialport::TTYPort>>>,
    /// The scanner service, when an allow-list is configured.
    pub scanner: Option<Arc<Scanner>>,
    /// Address of the scanner endpoint.
    pub scanner_addr: Option<std::net::SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// How often the serial sensor is probed (and reopened when lost).
pub const SENSOR_PROBE_EVERY: Duration = Duration::from_millis(500);

/// Opens a serial sensor at `path`.
pub fn open_sensor(path: &str, baud: u32) -> Result<R30xDriver<serialport::TTYPort>, SerialError> {
    let tty = serialport::new(path, baud)
        .timeout(Duration::from_millis(50))
        .open_native()
        .map_err(|e| SerialError::Io {
            during: "opening the port",
            source: std::io::Error::other(format!("{path}: {e}")),
        })?;
    Ok(R30xDriver::new(tty, Duration::from_secs(5)))
}

/// Starts what `settings` configure, with the real `hidapi` backend for HID.
pub async fn start(settings: &HostSettings, clock: Arc<dyn Clock>) -> Result<RunningHost, HostError> {
    start_with(settings, clock, SENSOR_PROBE_EVERY, || {
        Box::new(HidapiBackend::new())
    })
    .await
}

/// [`start`] with the sensor probe interval and the HID backend chosen by the caller (tests).
pub async fn start_with(
    settings: &HostSettings,
    clock: Arc<dyn Clock>,
    probe_every: Duration,
    hid_backend: impl FnOnce() -> Box<dyn HidBackend>,
) -> Result<RunningHost, HostError> {
    let allow = settings.allow_list()?;
    if settings.serial.is_none() && allow.is_empty() {
        return Err(HostError::Nothing);
    }
    let mut tasks = Vec::new();
    let (sensor, sensor_source) = match &settings.serial {
        None => (None, None),
        Some(ser) => {
            let (path, baud) = (ser.path.clone(), ser.baud);
            let source = Arc::new(SerialFingerSource::reconnecting(
                ser.password,
                Box::new(move || open_sensor(&path, baud)),
            ));
            // First connection attempt before serving, so a plugged sensor is Ready at once.
            let first = source.clone();
            let _ = tokio::task::spawn_blocking(move || first.check()).await;
            let mut config = SimConfig::from_port(ser.port);
            config.devices = vec![(DeviceKind::FingerSingle, ser.port)];
            let running = sim::start(config, clock.clone(), source.clone()).await?;
            tasks.push(tokio::spawn(source.clone().watch(probe_every)));
            tracing::info!(path = %ser.path, port = running.port_of(DeviceKind::FingerSingle).unwrap_or(ser.port), "serving the serial sensor as an SBI single-finger device");
            (Some(running), Some(source))
        }
    };
    let (scanner, scanner_addr) = if allow.is_empty() {
        (None, None)
    } else {
        let mut cfg = ScannerConfig::new(allow);
        cfg.report_id = settings.hid.report_id;
        let scanner = Arc::new(Scanner::start(hid_backend(), cfg, clock.clone()));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", settings.hid.scanner_port))
            .await
            .map_err(|source| HostError::Bind {
                port: settings.hid.scanner_port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| HostError::Bind {
            port: settings.hid.scanner_port,
            source,
        })?;
        let app = scanner.router();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "scanner endpoint stopped");
            }
        }));
        tracing::info!(%addr, "HID scanner endpoint listening");
        (Some(scanner), Some(addr))
    };
    Ok(RunningHost {
        sensor,
        sensor_source,
        scanner,
        scanner_addr,
        tasks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn precedence_defaults_then_file_then_env() {
        let none = |_: &str| None;
        let d = HostSettings::load(None, none).unwrap();
        assert_eq!(d.serial, None);
        assert_eq!(d.hid.scanner_port, DEFAULT_SCANNER_PORT);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("host.toml");
        std::fs::write(
            &file,
            "[serial]\npath = \"/dev/ttyUSB0\"\npassword = 7\n[hid]\nallow = [\"0c2e:0b61\"]\nscanner_port = 4700\n",
        )
        .unwrap();
        let f = HostSettings::load(Some(&file), none).unwrap();
        let ser = f.serial.clone().unwrap();
        assert_eq!(
            (ser.path.as_str(), ser.baud, ser.password, ser.port),
            ("/dev/ttyUSB0", 57600, 7, 4501)
        );
        assert_eq!(f.hid.allow, ["0c2e:0b61"]);
        assert_eq!(f.hid.scanner_port, 4700);
        let dbg = format!("{ser:?}");
        assert!(
            dbg.contains("<redacted>") && !dbg.contains("password: 7"),
            "{dbg}"
        );
        let env: HashMap<&str, &str> = [
            ("TESSERA_SBI_SERIAL", "/dev/serial/by-id/x"),
            ("TESSERA_SBI_PORT", "4502"),
            ("TESSERA_SBI_HID_ALLOW", "05e0:*, 1eab:1d06"),
            ("TESSERA_SBI_HID_REPORT_ID", "2"),
        ]
        .into_iter()
        .collect();
        let e = HostSettings::load(Some(&file), |k| env.get(k).map(|v| (*v).to_string())).unwrap();
        let ser = e.serial.unwrap();
        assert_eq!(
            (ser.path.as_str(), ser.port, ser.password),
            ("/dev/serial/by-id/x", 4502, 7)
        );
        assert_eq!(e.hid.allow, ["05e0:*", "1eab:1d06"]);
        assert_eq!((e.hid.scanner_port, e.hid.report_id), (4700, Some(2)));
    }

    #[test]
    fn bad_settings_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("host.toml");
        std::fs::write(&file, "[hid]\nalow = []\n").unwrap();
        let e = HostSettings::load(Some(&file), |_| None).unwrap_err();
        assert!(e.to_string().contains("alow"), "{e}");
        std::fs::write(&file, "[hid]\nallow = [\"usb\"]\n").unwrap();
        let e = HostSettings::load(Some(&file), |_| None).unwrap_err();
        assert!(e.to_string().contains("vendor:product"), "{e}");
        let e = HostSettings::load(None, |k| {
            (k == "TESSERA_SBI_SCANNER_PORT").then(|| "99999".into())
        })
        .unwrap_err();
        assert!(e.to_string().contains("TESSERA_SBI_SCANNER_PORT"), "{e}");
    }
}
