//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// Privileged tests (network namespaces, raw sockets, the IPVS VM) call this first.
/// Without root they skip with a message, so plain `cargo test` passes for anyone; under
/// `CI=true` a skip is a failure, so CI can never go green by skipping.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root, and CI=true forbids skipping privileged tests");
    }
    eprintln!("SKIP {test}: needs root (run the README test command as root)");
    false
}

/// Like [`require_root`] for a tool the test needs (keepalived, qemu, tcpdump...).
pub fn require_tool(test: &str, tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs `{tool}` on PATH, and CI=true forbids skipping");
    }
    eprintln!("SKIP {test}: `{tool}` is not installed (the README test command installs it)");
    false
}

pub mod alloc;
pub mod attack;
pub mod faults;
pub mod handover;
pub mod knobs;
pub mod lab;
pub mod owrt;
pub mod pcap;
pub mod scenarios;
pub mod vm;
