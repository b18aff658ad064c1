//! `tessera-sbi`: run the SBI simulator, or scan for devices like the station does.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use tessera_packet::clock::SystemClock;
use tessera_sbi::client::{ClientConfig, SbiClient};
use tessera_sbi::jws::{Alg, TrustStore};
use tessera_sbi::sim::{self, SimConfig};

#[derive(Parser, Debug)]
#[command(
    name = "tessera-sbi",
    version,
    about = "MOSIP SBI 0.9.5 simulator and client tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum AlgArg {
    /// RSA PKCS#1 v1.5 SHA-256 with an x5c chain (what certified devices use).
    Rs256,
    /// Ed25519.
    Eddsa,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the default virtual devices (finger slap, single finger, iris double, face) from a port up.
    Simulate {
        /// First port; the four devices take this port and the next three.
        #[arg(long, default_value_t = 4501, env = "TESSERA_SBI_FIRST_PORT")]
        first_port: u16,
        /// Synthetic person captured until changed with POST /admin/person.
        #[arg(long, default_value_t = 1, env = "TESSERA_SBI_PERSON")]
        person: u64,
        /// Device key algorithm.
        #[arg(long, value_enum, default_value_t = AlgArg::Rs256)]
        alg: AlgArg,
        /// Write the simulated provider CA certificate (PEM) here, for stations to trust.
        #[arg(long, env = "TESSERA_SBI_CA_OUT")]
        ca_out: Option<std::path::PathBuf>,
    },
    /// Serve devices plugged into this station: an R30x-family serial fingerprint sensor (R307, R503,
    /// AS608) as an SBI single-finger device, and/or an allow-listed HID barcode scanner whose scans the
    /// station reads from http://127.0.0.1:<scanner-port>/scanner/scan. Settings: defaults < --config
    /// file < TESSERA_SBI_* variables < these flags.
    Host {
        /// TOML settings file ([serial] path/baud/password/port, [hid] allow/scanner_port/report_id).
        #[arg(long, env = "TESSERA_SBI_HOST_CONFIG")]
        config: Option<std::path::PathBuf>,
        /// Serial device of the sensor, e.g. /dev/serial/by-id/usb-... (stable across re-plugs).
        #[arg(long)]
        serial: Option<String>,
        /// Baud rate (the sensors' default is 57600).
        #[arg(long)]
        baud: Option<u32>,
        /// Module password of the sensor.
        #[arg(long)]
        password: Option<u32>,
        /// SBI port of the sensor on 127.0.0.1.
        #[arg(long)]
        port: Option<u16>,
        /// HID devices the host may open, vendor:product in hex, comma-separated (e.g. 0c2e:0b61,05e0:*).
        #[arg(long)]
        hid_allow: Option<String>,
        /// Port of the scanner endpoint on 127.0.0.1 (default 4610).
        #[arg(long)]
        scanner_port: Option<u16>,
        /// Write the host's provider CA certificate (PEM) here, for stations to trust.
        #[arg(long)]
        ca_out: Option<std::path::PathBuf>,
    },
    /// List the HID devices present and whether the allow-list admits them.
    HidList {
        /// Allow-list to check against (vendor:product, comma-separated).
        #[arg(long, env = "TESSERA_SBI_HID_ALLOW", default_value = "")]
        allow: String,
    },
    /// Scan 127.0.0.1:4501-4600 and list SBI devices, as the station does.
    Discover {
        /// Trusted provider CA certificates (PEM) used to verify device info; without it info is skipped.
        #[arg(long)]
        trust: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate {
            first_port,
            person,
            alg,
            ca_out,
        } => {
            let mut config = SimConfig::from_port(first_port);
            config.person_id = person;
            config.alg = match alg {
                AlgArg::Rs256 => Alg::Rs256,
                AlgArg::Eddsa => Alg::EdDsa,
            };
            let images = sim::default_image_source().context("no image source for the simulator")?;
            let running = sim::start(config, Arc::new(SystemClock), images).await?;
            if let Some(path) = ca_out {
                std::fs::write(&path, running.ca_pem())
                    .with_context(|| format!("writing the provider CA to {}", path.display()))?;
                tracing::info!(path = %path.display(), "provider CA certificate written");
            }
            for (kind, addr) in running.devices() {
                tracing::info!(?kind, %addr, "device ready");
            }
            tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
            running.stop();
        }
        Command::Host {
            config,
            serial,
            baud,
            password,
            port,
            hid_allow,
            scanner_port,
            ca_out,
        } => {
            let mut settings =
                tessera_sbi::host::HostSettings::load(config.as_deref(), |k| std::env::var(k).ok())?;
            if let Some(path) = serial {
                settings.serial = Some(tessera_sbi::host::SerialSettings {
                    path,
                    baud: 57600,
                    password: 0,
                    port: tessera_sbi::host::DEFAULT_SBI_PORT,
                });
            }
            if let Some(ser) = &mut settings.serial {
                ser.baud = baud.unwrap_or(ser.baud);
                ser.password = password.unwrap_or(ser.password);
                ser.port = port.unwrap_or(ser.port);
            }
            if let Some(list) = hid_allow {
                settings.hid.allow = list
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            settings.hid.scanner_port = scanner_port.unwrap_or(settings.hid.scanner_port);
            let host = tessera_sbi::host::start(&settings, Arc::new(SystemClock)).await?;
            if let (Some(path), Some(sensor)) = (ca_out, &host.sensor) {
                std::fs::write(&path, sensor.ca_pem())
                    .with_context(|| format!("writing the provider CA to {}", path.display()))?;
            }
            tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
            drop(host);
        }
        Command::HidList { allow } => {
            let allow = tessera_sbi::hid::AllowList::parse(&allow)?;
            let mut backend = tessera_sbi::hid::HidapiBackend::new();
            use tessera_sbi::hid::HidBackend as _;
            let all = backend.enumerate()?;
            let mut out = std::io::stdout().lock();
            use std::io::Write as _;
            writeln!(out, "{} HID interface(s)", all.len())?;
            for d in &all {
                writeln!(
                    out,
                    "{} {} usage {:04x}:{:04x} {} {}",
                    d.id(),
                    d.path,
                    d.usage_page,
                    d.usage,
                    d.product.as_deref().unwrap_or("-"),
                    if allow.allows(d.vendor_id, d.product_id) {
                        "ALLOWED"
                    } else {
                        "not allowed"
                    }
                )?;
            }
        }
        Command::Discover { trust } => {
            let mut store = TrustStore::new();
            if let Some(p) = &trust {
                let pem = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                store.add_pem(&pem)?;
            }
            let client = SbiClient::new(ClientConfig::default(), Arc::new(store), Arc::new(SystemClock))?;
            let started = std::time::Instant::now();
            let found = client.discover().await;
            let took: Duration = started.elapsed();
            let mut out = std::io::stdout().lock();
            use std::io::Write as _;
            writeln!(out, "scanned 4501-4600 in {} ms", took.as_millis())?;
            for d in &found.devices {
                writeln!(
                    out,
                    "port {} device {} {:?} {:?} {} {} status {:?}",
                    d.port,
                    d.entry.device_id,
                    d.digital_id.bio_type,
                    d.digital_id.device_sub_type,
                    d.digital_id.make,
                    d.digital_id.model,
                    d.entry.device_status
                )?;
                if trust.is_some() {
                    match client.device_info(d.port).await {
                        Ok(_) => writeln!(out, "  device info: signature and chain verified")?,
                        Err(e) => writeln!(out, "  device info: {e}")?,
                    }
                }
            }
            for (port, why) in &found.ignored {
                writeln!(out, "port {port} ignored: {why}")?;
            }
        }
    }
    Ok(())
}
