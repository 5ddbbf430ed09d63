//! Logging: one short line per event, sized for a 115200-baud serial console and OpenWrt's
//! log ring. No colour and no timestamp (procd/logd stamp each line), e.g.
//! `I vi1: BACKUP -> MASTER (master down timer expired 3.61 s)`.
//!
//! The line is `LETTER [TARGET: ]MESSAGE`. Code that logs about one object passes it as the
//! target (`log::info!(target: "vi1", ...)`); the default target (the module path,
//! `minivrrp::...`) is left out to keep lines short.
//!
//! Level: `globals.log_level`, moved by `-v`/`-q`; `RUST_LOG`, when set, overrides both.
//!
//! Errors and warnings go to stderr, everything else to stdout. Under procd (`stdout 1`,
//! `stderr 1`) that is the severity `logread` shows: procd logs each stdout line at
//! LOG_INFO and each stderr line at LOG_ERR (procd `instance_stdout`/`instance_stderr`);
//! it reads no `<N>` priority prefix, so two streams are the only way to two severities.
//! A warning is therefore `daemon.err`: it needs attention, and procd offers nothing between.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// One letter per level, the first thing on each line.
pub fn level_letter(level: Level) -> char {
    match level {
        Level::Error => 'E',
        Level::Warn => 'W',
        Level::Info => 'I',
        Level::Debug => 'D',
        Level::Trace => 'T',
    }
}

/// Writes one formatted log line (without I/O of its own beyond `out`).
pub fn write_line(
    out: &mut impl Write,
    level: Level,
    target: &str,
    args: &core::fmt::Arguments<'_>,
) -> std::io::Result<()> {
    let letter = level_letter(level);
    if target.is_empty() || target == "minivrrp" || target.starts_with("minivrrp::") {
        writeln!(out, "{letter} {args}")
    } else {
        writeln!(out, "{letter} {target}: {args}")
    }
}

/// `base` moved up by `verbose` steps and down by `quiet` steps, clamped to Off..=Trace.
pub fn adjust_level(base: LevelFilter, verbose: u8, quiet: u8) -> LevelFilter {
    const ORDER: [LevelFilter; 6] = [
        LevelFilter::Off,
        LevelFilter::Error,
        LevelFilter::Warn,
        LevelFilter::Info,
        LevelFilter::Debug,
        LevelFilter::Trace,
    ];
    let pos = ORDER.iter().position(|l| *l == base).unwrap_or(3) as i32;
    let new = (pos + i32::from(verbose) - i32::from(quiet)).clamp(0, ORDER.len() as i32 - 1);
    ORDER[new as usize]
}

/// Whether a line of this level goes to stderr (procd: LOG_ERR) rather than stdout
/// (procd: LOG_INFO).
pub fn to_stderr(level: Level) -> bool {
    level <= Level::Warn
}

/// env_logger decides what is logged (level and `RUST_LOG` filters); this writes each line
/// to the stream its severity belongs on.
struct SplitLogger {
    filter: env_logger::Logger,
}

impl Log for SplitLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.filter.matches(record) {
            return;
        }
        // A closed stream (no reader) must not stop the daemon: the write error is dropped.
        let _ = if to_stderr(record.level()) {
            write_line(
                &mut std::io::stderr().lock(),
                record.level(),
                record.target(),
                record.args(),
            )
        } else {
            write_line(
                &mut std::io::stdout().lock(),
                record.level(),
                record.target(),
                record.args(),
            )
        };
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

/// Installs the logger (see the module doc for the streams). Call once, early in `main`.
/// A second call is ignored.
pub fn init(level: LevelFilter) {
    let mut b = env_logger::Builder::new();
    b.filter_level(level);
    // RUST_LOG, when set, replaces the level from the config and flags.
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    let filter = b.build();
    let max = filter.filter();
    if log::set_boxed_logger(Box::new(SplitLogger { filter })).is_ok() {
        log::set_max_level(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: Level, target: &str, args: core::fmt::Arguments<'_>) -> String {
        let mut v = Vec::new();
        write_line(&mut v, level, target, &args).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn one_compact_line_with_object_target() {
        assert_eq!(
            line(
                Level::Info,
                "vi1",
                format_args!("BACKUP -> MASTER (master down timer expired {} s)", "3.61")
            ),
            "I vi1: BACKUP -> MASTER (master down timer expired 3.61 s)\n"
        );
    }

    #[test]
    fn module_path_targets_are_left_out() {
        assert_eq!(
            line(Level::Warn, "minivrrp::sys::packet", format_args!("x")),
            "W x\n"
        );
    }

    #[test]
    fn errors_and_warnings_on_stderr_the_rest_on_stdout() {
        assert!(to_stderr(Level::Error));
        assert!(to_stderr(Level::Warn));
        assert!(!to_stderr(Level::Info));
        assert!(!to_stderr(Level::Debug));
        assert!(!to_stderr(Level::Trace));
    }

    #[test]
    fn verbose_and_quiet_move_the_level_and_clamp() {
        assert_eq!(adjust_level(LevelFilter::Info, 1, 0), LevelFilter::Debug);
        assert_eq!(adjust_level(LevelFilter::Info, 5, 0), LevelFilter::Trace);
        assert_eq!(adjust_level(LevelFilter::Info, 0, 1), LevelFilter::Warn);
        assert_eq!(adjust_level(LevelFilter::Error, 0, 3), LevelFilter::Off);
        assert_eq!(adjust_level(LevelFilter::Warn, 2, 1), LevelFilter::Info);
    }
}
