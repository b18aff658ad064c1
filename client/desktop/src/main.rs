//! `tessera-desktop`: the registration station's desktop app. Parses flags, loads the configuration,
//! installs logging and hands over to [`tessera_desktop::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tessera_desktop::settings::{LogFormat, Overrides, Settings};

/// Tessera registration station, desktop app: registration officers and supervisors work in this window.
///
/// It opens the station folder created by `tessera-station init` (first-run screens come later) and asks
/// for the operator's id and password; everything works offline.
///
/// Configuration, later sources winning: defaults, the TOML file given with --config (or
/// TESSERA_DESKTOP_CONFIG), the environment (TESSERA_STATION_HOME, TESSERA_LOG_FORMAT = text | json,
/// TESSERA_LOG = a log filter such as `info`), then the flags below. Logs go to standard error and never
/// contain personal data. See docs/station-ui.md.
#[derive(Debug, Parser)]
#[command(name = "tessera-desktop", version, about, long_about, max_term_width = 100)]
struct Cli {
    /// Configuration file (TOML, keys `home`, `log_format`, `log`).
    #[arg(long, env = "TESSERA_DESKTOP_CONFIG")]
    config: Option<PathBuf>,
    /// The station's data folder (overrides the file and TESSERA_STATION_HOME).
    #[arg(long)]
    home: Option<PathBuf>,
    /// Added by WebKitWebDriver when it launches the app for automated tests; ignored.
    #[arg(long, hide = true)]
    automation: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref(), &Overrides { home: cli.home }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match settings.log_format {
        LogFormat::Json => fmt.json().init(),
        LogFormat::Text => fmt.init(),
    }
    match tessera_desktop::run(&settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the desktop app stopped");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
