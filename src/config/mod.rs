//! Configuration: UCI parser, schema table, typed model, validation.
//!
//! `uci` turns text into a generic tree, `validate` checks it against the one `schema` table
//! and builds the typed `model::Config`, `emit` prints the effective config back as UCI.

pub mod emit;
mod error;
pub mod limits;
pub mod model;
pub mod schema;
pub mod uci;
pub mod validate;

pub use error::ConfigError;
pub use model::*;

use std::path::Path;

/// The configuration the package installs as /etc/config/minivrrp (`minivrrp defaults`).
pub const DEFAULT_CONFIG: &str = include_str!("../../rootfs/etc/config/minivrrp");

/// Where the daemon reads its configuration when `-f` is not given.
pub const DEFAULT_PATH: &str = "/etc/config/minivrrp";

impl Config {
    /// Parses and validates `text`; `file_name` only names the file in error messages.
    /// Returns every error found, syntax errors first.
    pub fn parse_str(file_name: &str, text: &str) -> Result<Config, Vec<ConfigError>> {
        let tree = uci::parse(text).map_err(|errs| {
            errs.into_iter()
                .map(|e| ConfigError {
                    file: file_name.to_string(),
                    line: e.line,
                    col: Some(e.col),
                    path: None,
                    message: e.message,
                })
                .collect::<Vec<_>>()
        })?;
        validate::validate(file_name, &tree)
    }

    /// What is valid but likely wrong, one sentence each (`minivrrp check` prints them, the
    /// daemon logs them at start): an IPv6 instance whose first IPv6 VIP is not link-local
    /// (RFC 5798 5.2.9: for IPv6 the first address is the virtual router's link-local
    /// address, which hosts learn as their router from RAs; keepalived logs the same).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for i in &self.instances {
            let first6 = i
                .vips
                .iter()
                .filter(|v| !v.excluded)
                .find_map(|v| match v.addr {
                    std::net::IpAddr::V6(a) => Some(a),
                    std::net::IpAddr::V4(_) => None,
                });
            if let Some(a) = first6.filter(|a| !a.is_unicast_link_local()) {
                w.push(format!(
                    "instance '{}': the first IPv6 VIP {a} is not link-local; RFC 5798 5.2.9 wants the virtual router's link-local address first (hosts that learn their router from RAs need it)",
                    i.name
                ));
            }
        }
        w
    }

    /// Reads and validates a config file. Reading a file is the one I/O the config layer does:
    /// it happens once at start (and on reload), before the pure layers run.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse_str(&name, &text),
            Err(e) => Err(vec![ConfigError {
                file: name,
                line: 0,
                col: None,
                path: None,
                message: format!("cannot read: {e}"),
            }]),
        }
    }
}
