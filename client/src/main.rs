//! `tessera-station`: the registration station's command line. Parses arguments, installs logging and
//! hands over to [`cli::run`]; every operation goes through the library's command table.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
