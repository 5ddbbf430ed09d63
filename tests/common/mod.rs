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

/// The one skip prologue of privileged tests: `require!(root, "keepalived", "tcpdump");`
/// returns from the calling test unless it runs as root and every named tool is on PATH;
/// `require!("strace");` checks tools only. A skip prints `SKIP <test>: ...` (the test's own
/// name); under `CI=true` it fails instead, so CI can never go green by skipping.
#[macro_export]
macro_rules! require {
    (root $(, $tool:expr)* $(,)?) => {
        if !$crate::common::require_root($crate::test_name!())
            $(|| !$crate::common::require_tool($crate::test_name!(), $tool))*
        {
            return;
        }
    };
    ($($tool:expr),+ $(,)?) => {
        if false $(|| !$crate::common::require_tool($crate::test_name!(), $tool))+ {
            return;
        }
    };
}

/// The name of the function this expands in (the test's name in a `#[test] fn`).
#[macro_export]
macro_rules! test_name {
    () => {{
        fn f() {}
        let path = std::any::type_name_of_val(&f);
        let path = path.strip_suffix("::f").unwrap_or(path);
        path.rsplit("::").next().unwrap_or(path)
    }};
}

pub mod alloc;
pub mod attack;
pub mod faults;
pub mod handover;
pub mod knobs;
pub mod lab;
pub mod netns;
pub mod owrt;
pub mod pcap;
pub mod scenarios;
pub mod vm;
