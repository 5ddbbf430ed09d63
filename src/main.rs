//! The `minivrrp` command line.
//!
//! Exit codes: 0 ok, 1 config invalid or command refused by the daemon, 2 usage error,
//! 3 runtime failure or daemon unreachable.

#![deny(unsafe_code, clippy::undocumented_unsafe_blocks)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use argh::FromArgs;
use minivrrp::base::logging;
use minivrrp::config::{schema, Config, ConfigError, DEFAULT_CONFIG, DEFAULT_PATH};
use minivrrp::control::{client, Format, Request, Response, DEFAULT_SOCKET};

const EXIT_OK: u8 = 0;
const EXIT_CONFIG: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_RUNTIME: u8 = 3;

/// VRRP (v2/v3, IPv4/IPv6), health checks and IPVS for OpenWrt routers. Without a subcommand
/// it runs the daemon in the foreground, logging info to stdout and warnings/errors to stderr.
/// Exit codes: 0 ok, 1 config invalid / refused, 2 usage error, 3 runtime failure / no daemon.
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

    /// control socket to create (default /var/run/minivrrp.sock)
    #[argh(option)]
    socket: Option<PathBuf>,

    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Check(CheckCmd),
    Defaults(DefaultsCmd),
    Options(OptionsCmd),
    Status(StatusCmd),
    Maintenance(MaintenanceCmd),
    Priority(PriorityCmd),
    Reload(ReloadCmd),
    Garp(GarpCmd),
    Metrics(MetricsCmd),
    Import(ImportCmd),
}

/// Show the running daemon's state: per instance state, since when and why, the master's
/// address, priorities with each tracker's part, VIPs, intervals and counters; checks and
/// virtual servers.
#[derive(FromArgs)]
#[argh(subcommand, name = "status")]
struct StatusCmd {
    /// one JSON document instead of text
    #[argh(switch)]
    json: bool,
    /// control socket (default /var/run/minivrrp.sock)
    #[argh(option)]
    socket: Option<PathBuf>,
    /// only this instance
    #[argh(positional)]
    name: Option<String>,
}

/// Maintenance mode: "on" makes every instance hand over (priority-0 advert) and stay
/// BACKUP until "off". Survives a reload, not a restart.
#[derive(FromArgs)]
#[argh(subcommand, name = "maintenance")]
struct MaintenanceCmd {
    /// on or off
    #[argh(positional)]
    mode: String,
    /// control socket (default /var/run/minivrrp.sock)
    #[argh(option)]
    socket: Option<PathBuf>,
}

/// Override the base priority of instance NAME at run time (1..255), or "reset" to the
/// configured one. Not written to the config.
#[derive(FromArgs)]
#[argh(subcommand, name = "priority")]
struct PriorityCmd {
    /// instance name
    #[argh(positional)]
    name: String,
    /// priority 1..255 or "reset"
    #[argh(positional)]
    priority: String,
    /// control socket (default /var/run/minivrrp.sock)
    #[argh(option)]
    socket: Option<PathBuf>,
}

/// Reload the configuration now; prints the errors and exits 1 when it is refused (the
/// running configuration stays).
#[derive(FromArgs)]
#[argh(subcommand, name = "reload")]
struct ReloadCmd {
    /// control socket (default /var/run/minivrrp.sock)
    #[argh(option)]
    socket: Option<PathBuf>,
}

/// Resend gratuitous ARPs / unsolicited NAs for instance NAME (when it is MASTER).
#[derive(FromArgs)]
#[argh(subcommand, name = "garp")]
struct GarpCmd {
    /// instance name
    #[argh(positional)]
    name: String,
    /// control socket (default /var/run/minivrrp.sock)
    #[argh(option)]
    socket: Option<PathBuf>,
}

/// Print the state as Prometheus text exposition (for node_exporter's textfile collector).
#[derive(FromArgs)]
#[argh(subcommand, name = "metrics")]
struct MetricsCmd {
    /// control socket (default /var/run/minivrrp.sock)
    #[argh(option)]
    socket: Option<PathBuf>,
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

/// Print the options reference (every section type and option with its type, range, default
/// and help), or only that of section type SECTION (globals, instance, script, check,
/// sync_group, virtual_server, real_server).
#[derive(FromArgs)]
#[argh(subcommand, name = "options")]
struct OptionsCmd {
    /// section type
    #[argh(positional)]
    section: Option<String>,
}

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
    // Router builds leave the converter out for size (board/README.md): say where it is.
    eprintln!(
        "this minivrrp was built without the import feature (router builds leave it out): \
         run `minivrrp import FILE` with a PC build (x86_64, or cargo's default features) \
         and copy its output to /etc/config/minivrrp"
    );
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
            // Warnings do not make the config invalid: the init script reads stdout only.
            for w in minivrrp::daemon::notify::role_warnings(&cfg, "/") {
                eprintln!("warning: {w}");
            }
            for w in cfg.warnings() {
                eprintln!("{}: warning: {w}", path.display());
            }
            EXIT_OK
        }
        Err(errors) => {
            print_errors(&errors);
            EXIT_CONFIG
        }
    }
}

/// Runs the daemon until it stops; returns the process exit code.
fn run_daemon(path: &Path, config: Config, socket: &Path) -> i32 {
    minivrrp::daemon::runtime::run(path, config, socket)
}

/// Sends one request; prints the answer (one line, or the document asked for) and returns
/// the exit code: 0 done, 1 refused, 3 daemon unreachable.
fn control(socket: Option<PathBuf>, req: Request) -> u8 {
    let socket = socket.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    match client::request(&socket, &req) {
        Ok(Response::Done(line)) => {
            out(&format!("{line}\n"));
            EXIT_OK
        }
        Ok(Response::Document(text)) => {
            out(&text);
            EXIT_OK
        }
        Ok(Response::Refused(line)) => {
            eprintln!("{line}");
            EXIT_CONFIG
        }
        Ok(Response::ConfigErrors(errors)) => {
            let mut e = std::io::stderr().lock();
            for err in &errors {
                let _ = writeln!(e, "{err}");
            }
            let _ = writeln!(
                e,
                "reload refused: {} error(s); the running configuration stays",
                errors.len()
            );
            EXIT_CONFIG
        }
        Err(e) => {
            eprintln!("{}: {e} (is minivrrp running?)", socket.display());
            EXIT_RUNTIME
        }
    }
}

fn daemon(path: &Path, verbose: u8, quiet: u8, socket: &Path) -> u8 {
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
    for w in config.warnings() {
        log::warn!("{w}");
    }
    let code = run_daemon(path, config, socket);
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
        Some(Command::Options(c)) => match schema::options_text(c.section.as_deref()) {
            Ok(text) => {
                out(&text);
                EXIT_OK
            }
            Err(e) => {
                eprintln!("minivrrp options: {e}");
                EXIT_USAGE
            }
        },
        Some(Command::Status(c)) => {
            let format = if c.json { Format::Json } else { Format::Text };
            let req = Request::Status {
                format,
                name: c.name,
            };
            control(c.socket.or(cli.socket), req)
        }
        Some(Command::Metrics(c)) => {
            let req = Request::Status {
                format: Format::Metrics,
                name: None,
            };
            control(c.socket.or(cli.socket), req)
        }
        Some(Command::Maintenance(c)) => {
            let on = match c.mode.as_str() {
                "on" => true,
                "off" => false,
                m => {
                    eprintln!("maintenance: expected 'on' or 'off', got '{m}'");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            control(c.socket.or(cli.socket), Request::Maintenance(on))
        }
        Some(Command::Priority(c)) => {
            let priority = match c.priority.as_str() {
                "reset" => None,
                p => match p.parse::<u8>() {
                    Ok(v) if v >= 1 => Some(v),
                    _ => {
                        eprintln!("priority: expected 1..255 or 'reset', got '{p}'");
                        return ExitCode::from(EXIT_USAGE);
                    }
                },
            };
            let req = Request::Priority {
                name: c.name,
                priority,
            };
            control(c.socket.or(cli.socket), req)
        }
        Some(Command::Reload(c)) => control(c.socket.or(cli.socket), Request::Reload),
        Some(Command::Garp(c)) => control(c.socket.or(cli.socket), Request::Garp { name: c.name }),
        None => {
            let path = cli.file.unwrap_or_else(default_path);
            let socket = cli.socket.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
            daemon(&path, cli.verbose, cli.quiet, &socket)
        }
    };
    ExitCode::from(code)
}
