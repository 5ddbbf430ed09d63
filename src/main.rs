//! The `minivrrp` command line.
//!
//! Exit codes: 0 ok, 1 config invalid, 2 usage error, 3 runtime failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use argh::FromArgs;
use minivrrp::base::logging;
use minivrrp::config::{Config, ConfigError, DEFAULT_CONFIG, DEFAULT_PATH};

const EXIT_OK: u8 = 0;
const EXIT_CONFIG: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_RUNTIME: u8 = 3;

/// VRRP (v2/v3, IPv4/IPv6), health checks and IPVS for OpenWrt routers. Without a subcommand
/// it runs the daemon in the foreground, logging to stderr.
/// Exit codes: 0 ok, 1 config invalid, 2 usage error, 3 runtime failure.
#[derive(FromArgs)]
struct Cli {
    /// config file (default /etc/config/minivrrp)
    #[argh(option, short = 'f')]
    file: Option<PathBuf>,

    /// more log output (repeat for more); overrides globals.log_level
    #[argh(switch, short = 'v')]
    verbose: u8,

    /// less log output (repeat for less)
    #[argh(switch, short = 'q')]
    quiet: u8,

    /// print the version and exit
    #[argh(switch)]
    version: bool,

    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Check(CheckCmd),
    Defaults(DefaultsCmd),
    Import(ImportCmd),
}

/// Validate a config file: print the effective config (every default filled in) and exit 0,
/// or print every error and exit 1.
#[derive(FromArgs)]
#[argh(subcommand, name = "check")]
struct CheckCmd {
    /// config file (default /etc/config/minivrrp)
    #[argh(option, short = 'f')]
    file: Option<PathBuf>,
}

/// Print the default configuration the package installs.
#[derive(FromArgs)]
#[argh(subcommand, name = "defaults")]
struct DefaultsCmd {}

/// Convert a keepalived configuration (keepalived.conf or OpenWrt's /etc/config/keepalived)
/// to a minivrrp config on stdout; every keyword not carried exactly is listed on stderr as
/// FILE:LINE: keyword: what happened. Exit 0 when everything was carried, 1 when not.
#[derive(FromArgs)]
#[argh(subcommand, name = "import")]
struct ImportCmd {
    /// keepalived configuration file
    #[argh(positional)]
    file: PathBuf,
}

/// Writes to stdout without panicking on a closed pipe (`minivrrp check | head`).
fn out(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn print_errors(errors: &[ConfigError]) {
    let mut e = std::io::stderr().lock();
    for err in errors {
        let _ = writeln!(e, "{err}");
    }
    let _ = writeln!(
        e,
        "{} error{} in the configuration",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
}

#[cfg(not(feature = "import"))]
fn import(_path: &Path) -> u8 {
    eprintln!("this minivrrp was built without the import feature");
    EXIT_USAGE
}

#[cfg(feature = "import")]
fn import(path: &Path) -> u8 {
    match minivrrp::import::import_file(path) {
        Ok(imported) => {
            out(&imported.uci);
            let mut e = std::io::stderr().lock();
            for n in &imported.notes {
                let _ = writeln!(e, "{n}");
            }
            if imported.notes.is_empty() {
                EXIT_OK
            } else {
                EXIT_CONFIG
            }
        }
        Err(msg) => {
            eprintln!("cannot read {msg}");
            EXIT_USAGE
        }
    }
}

fn check(path: &Path) -> u8 {
    match Config::load(path) {
        Ok(cfg) => {
            out(&format!(
                "# {}: configuration is valid; effective settings:\n",
                path.display()
            ));
            out(&cfg.to_uci());
            EXIT_OK
        }
        Err(errors) => {
            print_errors(&errors);
            EXIT_CONFIG
        }
    }
}

/// Runs the daemon until it stops; returns the process exit code.
fn run_daemon(path: &Path, config: Config) -> i32 {
    minivrrp::daemon::runtime::run(path, config)
}

fn daemon(path: &Path, verbose: u8, quiet: u8) -> u8 {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            print_errors(&errors);
            return EXIT_CONFIG;
        }
    };
    let level = logging::adjust_level(config.globals.log_level.to_filter(), verbose, quiet);
    logging::init(level);
    log::info!(
        "minivrrp {} starting ({})",
        env!("CARGO_PKG_VERSION"),
        config.globals.router_id
    );
    let code = run_daemon(path, config);
    u8::try_from(code).unwrap_or(EXIT_RUNTIME)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cmd = args.first().map_or("minivrrp", |s| s.as_str());
    let rest: Vec<&str> = args.iter().skip(1).map(|s| s.as_str()).collect();
    let cli = match Cli::from_args(&[cmd], &rest) {
        Ok(cli) => cli,
        Err(early) => {
            return match early.status {
                // --help
                Ok(()) => {
                    out(&early.output);
                    out("\n");
                    ExitCode::from(EXIT_OK)
                }
                Err(()) => {
                    eprintln!("{}\nRun '{cmd} --help' for usage.", early.output);
                    ExitCode::from(EXIT_USAGE)
                }
            };
        }
    };
    if cli.version {
        out(&format!("minivrrp {}\n", env!("CARGO_PKG_VERSION")));
        return ExitCode::from(EXIT_OK);
    }
    let default_path = || PathBuf::from(DEFAULT_PATH);
    let code = match cli.command {
        Some(Command::Check(c)) => {
            let path = c.file.or(cli.file).unwrap_or_else(default_path);
            check(&path)
        }
        Some(Command::Import(i)) => import(&i.file),
        Some(Command::Defaults(_)) => {
            out(DEFAULT_CONFIG);
            EXIT_OK
        }
        None => {
            let path = cli.file.unwrap_or_else(default_path);
            daemon(&path, cli.verbose, cli.quiet)
        }
    };
    ExitCode::from(code)
}
