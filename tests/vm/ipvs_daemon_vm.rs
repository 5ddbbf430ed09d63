//! The daemon's IPVS side in a VM whose kernel has IPVS (rootfs/vm/build-image.sh): one boot
//! runs tests/ipvs/daemon.sh, which drives `daemon::lvs::Lvs` directly (tests/lvs_kernel.rs)
//! and then the real `minivrrp` binary with virtual servers, real servers and TCP checks
//! against busybox `nc` listeners, reading the table back with `ipvsadm -Ln`.
//!
//! Checked here from the snapshots it prints: the table built from the config (adopting a
//! stale service of ours, leaving a foreign one alone); a real server whose listener stops
//! leaves (or goes to weight 0 with inhibit_on_failure) and comes back; quorum loss puts the
//! sorry server in; SIGHUP with a changed scheduler/weights and a removed virtual server;
//! SIGTERM removes our services with cleanup on and nothing else; without ip_vs the daemon
//! logs one clear error and keeps running.
//!
//! The daemon binary is `MINIVRRP_RELEASE_BIN` when set (tests/run.sh), else a debug musl
//! build; the in-VM program is `MINIVRRP_LVS_KERNEL_TEST` when set, else built here. One VM boot, ~35 s under TCG here (the scenario itself ~21 s).
//!
//! Needs what tests/vm/ipvs_vm.rs needs (qemu-system-x86_64, the Debian kernel and packages
//! rootfs/vm/build-image.sh lists, the x86_64-unknown-linux-musl target); skips without
//! them, fails without them under CI=true.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn has(sec: &[String], line: &str) -> bool {
    sec.iter().any(|l| l == line)
}

fn mentions(sec: &[String], s: &str) -> bool {
    sec.iter().any(|l| l.contains(s))
}

#[test]
fn daemon_programs_ipvs_from_config_and_health_in_a_vm() {
    let _one_vm = crate::one_vm();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if !common::vm::vm_ready("ipvs_daemon_vm", &repo) {
        return;
    }
    // tests/run.sh builds the static release binary first and passes it here; otherwise a
    // debug musl build of our own.
    let release = std::env::var_os("MINIVRRP_RELEASE_BIN")
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    let daemon = match release {
        Some(p) => p,
        None => match common::vm::build_musl(
            "ipvs_daemon_vm",
            &repo,
            &["build", "--bin", "minivrrp"],
            "minivrrp",
        ) {
            Some(p) => p,
            None => return,
        },
    };
    // Like MINIVRRP_IPVS_KERNEL_TEST for ipvs_vm: a prebuilt static tests/lvs_kernel.rs.
    let prebuilt = std::env::var_os("MINIVRRP_LVS_KERNEL_TEST")
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    let lvs_kernel = match prebuilt {
        Some(p) => p,
        None => match common::vm::build_musl(
            "ipvs_daemon_vm",
            &repo,
            &["test", "--test", "lvs_kernel", "--no-run"],
            "lvs_kernel",
        ) {
            Some(p) => p,
            None => return,
        },
    };
    let fixtures = repo.join("tests/ipvs");
    let work = repo.join("target/vm/run-daemon");
    std::fs::create_dir_all(&work).unwrap();
    let add = |src: &Path, dst: &str| format!("{}:{dst}", src.display());
    let started = std::time::Instant::now();
    let out = Command::new(repo.join("rootfs/vm/build-image.sh"))
        .arg("run")
        .args(["--timeout", "180"])
        .args(["--add", &add(&daemon, "/bin/minivrrp")])
        .args(["--add", &add(&lvs_kernel, "/bin/lvs_kernel")])
        .args([
            "--add",
            &add(&fixtures.join("daemon.uci"), "/etc/minivrrp.uci"),
        ])
        .args([
            "--add",
            &add(
                &fixtures.join("daemon-reload.uci"),
                "/etc/minivrrp-reload.uci",
            ),
        ])
        .args(["--add", &add(&fixtures.join("daemon.sh"), "/test.sh")])
        .arg("--klog")
        .arg(work.join("kernel.log"))
        .output()
        .expect("run rootfs/vm/build-image.sh");
    let output = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::write(work.join("output.txt"), output.as_bytes());
    eprintln!(
        "{output}\n{}\nVM run took {:.1} s",
        String::from_utf8_lossy(&out.stderr),
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "VM test failed ({}); output and kernel log in target/vm/run-daemon/",
        out.status
    );

    // --- The Lvs part driven directly (tests/lvs_kernel.rs). ---
    assert!(output.contains("lvs-absent: idle"), "Lvs without ip_vs");
    assert!(output.contains("lvs-kernel-absent: exit 0"));
    assert!(output.contains("lvs-kernel-present: exit 0"));
    let s = common::vm::section(&output, "ipvsadm", "lvs-start");
    assert!(has(&s, "TCP 10.0.0.1:80 wrr"), "stale rr corrected: {s:?}");
    assert!(!mentions(&s, "10.0.1.99"), "stale server removed: {s:?}");
    assert!(has(&s, "-> 10.0.1.1:80 Route 1 0 0"), "{s:?}");
    assert!(has(&s, "-> 10.0.1.2:80 Route 2 0 0"), "{s:?}");
    assert!(has(&s, "TCP 10.0.0.2:443 rr"), "{s:?}");
    assert!(has(&s, "-> 10.0.1.3:443 Masq 1 0 0"), "{s:?}");
    assert!(has(&s, "UDP 10.0.0.3:53 sh"), "{s:?}");
    assert!(has(&s, "TCP 10.9.9.9:80 rr"), "foreign kept: {s:?}");
    let s = common::vm::section(&output, "ipvsadm", "lvs-down");
    assert!(!mentions(&s, "10.0.1.1:80"), "{s:?}");
    let s = common::vm::section(&output, "ipvsadm", "lvs-quorum-lost");
    assert!(has(&s, "-> 10.0.9.9:8443 Masq 1 0 0"), "{s:?}");
    assert!(!mentions(&s, "10.0.1.4"), "{s:?}");
    let s = common::vm::section(&output, "ipvsadm", "lvs-repaired");
    assert!(has(&s, "-> 10.0.1.2:80 Route 2 0 0"), "{s:?}");
    let s = common::vm::section(&output, "ipvsadm", "lvs-reloaded");
    assert!(has(&s, "TCP 10.0.0.1:80 lc"), "{s:?}");
    assert!(!mentions(&s, "10.0.0.2:443"), "{s:?}");
    assert!(!mentions(&s, "10.0.1.1:80"), "still down: {s:?}");
    let s = common::vm::section(&output, "ipvsadm", "lvs-recovered");
    assert!(has(&s, "-> 10.0.1.1:80 Route 5 0 0"), "{s:?}");
    let s = common::vm::section(&output, "ipvsadm", "lvs-shutdown");
    assert!(!mentions(&s, "10.0.0.1:80"), "{s:?}");
    assert!(has(&s, "UDP 10.0.0.3:53 sh"), "cleanup off: {s:?}");
    assert!(has(&s, "TCP 10.9.9.9:80 rr"), "{s:?}");

    // --- The daemon without ip_vs: one clear error, still running. ---
    let log = common::vm::section(&output, "log", "noipvs");
    let errs: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("kernel has no IPVS"))
        .collect();
    assert_eq!(
        errs,
        vec!["E ipvs: kernel has no IPVS (ip_vs module not loaded); virtual servers disabled, VRRP keeps running"],
        "{log:?}"
    );
    assert!(
        output.contains("noipvs: alive"),
        "daemon died without ip_vs"
    );
    // ip_vs loaded afterwards: SIGHUP with the same file enables the virtual servers.
    assert!(
        mentions(&log, "I ipvs: IPVS is available now; reconciling"),
        "{log:?}"
    );
    let s = common::vm::section(&output, "ipvsadm", "noipvs-hup");
    assert!(has(&s, "TCP 10.0.0.1:80 wrr"), "{s:?}");
    assert!(output.contains("noipvs: exit 0"));

    // --- The daemon with ip_vs. ---
    assert!(
        !output.contains("wait-timeout:"),
        "a wait in the VM timed out"
    );
    let s = common::vm::section(&output, "ipvsadm", "start");
    assert!(has(&s, "TCP 10.0.0.1:80 wrr"), "{s:?}");
    assert!(has(&s, "-> 10.0.1.1:80 Route 1 0 0"), "{s:?}");
    assert!(has(&s, "-> 10.0.1.2:80 Route 2 0 0"), "{s:?}");
    assert!(has(&s, "TCP 10.0.0.2:443 rr"), "{s:?}");
    assert!(has(&s, "-> 10.0.1.3:443 Masq 1 0 0"), "{s:?}");
    assert!(has(&s, "-> 10.0.1.4:443 Masq 1 0 0"), "{s:?}");
    assert!(!mentions(&s, "10.0.9.9"), "sorry server out: {s:?}");
    assert!(has(&s, "UDP 10.0.0.3:53 sh"), "{s:?}");
    assert!(has(&s, "-> 10.0.1.5:53 Masq 1 0 0"), "{s:?}");
    assert!(has(&s, "TCP 10.9.9.9:80 rr"), "{s:?}");

    let s = common::vm::section(&output, "ipvsadm", "rs-down");
    assert!(!mentions(&s, "10.0.1.1:80"), "{s:?}");
    assert!(has(&s, "-> 10.0.1.2:80 Route 2 0 0"), "{s:?}");
    let s = common::vm::section(&output, "ipvsadm", "inhibited");
    assert!(has(&s, "-> 10.0.1.2:80 Route 0 0 0"), "{s:?}");
    let s = common::vm::section(&output, "ipvsadm", "rs-up");
    assert!(has(&s, "-> 10.0.1.1:80 Route 1 0 0"), "{s:?}");
    assert!(has(&s, "-> 10.0.1.2:80 Route 2 0 0"), "{s:?}");

    let s = common::vm::section(&output, "ipvsadm", "quorum-lost");
    assert!(has(&s, "-> 10.0.9.9:8443 Masq 1 0 0"), "{s:?}");
    assert!(!mentions(&s, "10.0.1.3"), "{s:?}");
    assert!(!mentions(&s, "10.0.1.4"), "pool replaced: {s:?}");
    let s = common::vm::section(&output, "ipvsadm", "quorum-back");
    assert!(!mentions(&s, "10.0.9.9"), "{s:?}");
    assert!(has(&s, "-> 10.0.1.3:443 Masq 1 0 0"), "{s:?}");
    assert!(has(&s, "-> 10.0.1.4:443 Masq 1 0 0"), "{s:?}");

    let s = common::vm::section(&output, "ipvsadm", "reloaded");
    assert!(has(&s, "TCP 10.0.0.1:80 lc"), "{s:?}");
    assert!(has(&s, "-> 10.0.1.1:80 Route 5 0 0"), "{s:?}");
    assert!(!mentions(&s, "10.0.0.2:443"), "removed by reload: {s:?}");
    assert!(has(&s, "TCP 10.9.9.9:80 rr"), "{s:?}");
    assert!(output.contains("daemon: alive after reload"));

    let s = common::vm::section(&output, "ipvsadm", "stopped");
    assert!(output.contains("daemon: exit 0"), "SIGTERM exit status");
    assert!(!mentions(&s, "10.0.0.1:80"), "{s:?}");
    assert!(has(&s, "UDP 10.0.0.3:53 sh"), "cleanup off stays: {s:?}");
    assert!(has(&s, "TCP 10.9.9.9:80 rr"), "foreign stays: {s:?}");

    // Every change is logged with its reason.
    let log = common::vm::section(&output, "log", "daemon");
    assert!(
        mentions(
            &log,
            "delete real server 10.0.1.1:80 from TCP 10.0.0.1:80: real server is down"
        ),
        "{log:?}"
    );
    assert!(
        mentions(&log, "virtual server TCP 10.0.0.2:443: quorum lost"),
        "{log:?}"
    );
    assert!(
        mentions(
            &log,
            "virtual server TCP 10.0.0.2:443 left the configuration"
        ),
        "{log:?}"
    );
    assert!(
        mentions(
            &log,
            "delete virtual server TCP 10.0.0.1:80: shutdown cleanup"
        ),
        "{log:?}"
    );
}
