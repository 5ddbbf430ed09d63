//! The pure tier: protocol, config, codec, check and simulator tests on in-memory inputs and
//! the binary's offline commands. No root, no network, no kernel state: `cargo test --test pure`
//! runs anywhere in seconds.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;
mod sim;

mod checks_machines;
mod cli_check;
mod daemon_conformance;
mod fuzz_regressions;
mod golden_vectors;
#[cfg(feature = "import")]
mod import;
mod import_graph;
mod ipvs_host;
mod ipvs_reconcile;
mod ipvs_vectors;
mod loop_queue;
mod loop_timers;
mod luci_app;
mod rpcd_plugin;
mod vrrp_conformance;
mod vrrp_fsm;
mod vrrp_sim;
