//! Environment knobs of the benchmarks and lab tests: every knob has a default, so a plain
//! `cargo bench` / `cargo test` runs without any.

use std::path::PathBuf;

/// A comma-separated list (`BENCH_IMPLS=keepalived,minivrrp`), blanks dropped.
pub fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A number; unset or unparsable gives `default`.
pub fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The daemon under test: `MINIVRRP_BIN`, else the binary cargo built for this test or bench
/// (same profile).
pub fn minivrrp_bin() -> PathBuf {
    std::env::var_os("MINIVRRP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_minivrrp")))
}
