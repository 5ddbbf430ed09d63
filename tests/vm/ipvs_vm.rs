//! Runs tests/ipvs_kernel.rs inside a VM with a Debian kernel that has IPVS (the host kernel
//! may not), and checks the IPVS table it leaves with `ipvsadm -Ln` as an independent reader.
//!
//! Needs qemu-system-x86_64, busybox-static, ipvsadm, cpio, kmod, xz and linux-image-amd64
//! (rootfs/vm/build-image.sh installs them as root if missing), plus the
//! x86_64-unknown-linux-musl Rust target. Skips without them, fails without them under CI=true.
//! One boot (~4-5 s under TCG) runs everything: first the NotAvailable check before ip_vs
//! is loaded, then the rest.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds tests/ipvs_kernel.rs as a static musl test binary and returns its path. It uses its
/// own target dir so it never waits on the lock of the `cargo test` that runs us.
fn build_kernel_test(repo: &Path) -> Option<PathBuf> {
    // tests/run.sh builds it before `cargo test` (sharing target/ with the other builds).
    if let Some(p) = std::env::var_os("MINIVRRP_IPVS_KERNEL_TEST").map(PathBuf::from) {
        if p.is_file() {
            return Some(p);
        }
    }
    common::vm::build_musl(
        "ipvs_vm",
        repo,
        &["test", "--test", "ipvs_kernel", "--no-run"],
        "ipvs_kernel",
    )
}

fn has(sec: &[String], line: &str) -> bool {
    sec.iter().any(|l| l == line)
}

#[test]
fn ipvs_reconcile_against_a_real_kernel_in_a_vm() {
    let _one_vm = crate::one_vm();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if !common::vm::vm_ready("ipvs_vm", &repo) {
        return;
    }
    let Some(exe) = build_kernel_test(&repo) else {
        return;
    };
    let work = repo.join("target/vm/run");
    std::fs::create_dir_all(&work).unwrap();
    let script = work.join("test.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         # Before ip_vs is loaded: the client must report NotAvailable.\n\
         MINIVRRP_IPVS_EXPECT=absent /bin/ipvs_kernel --test-threads=1 --nocapture --quiet not_available || exit 10\n\
         load-modules || exit 11\n\
         MINIVRRP_IPVS_EXPECT=present /bin/ipvs_kernel --test-threads=1 --nocapture\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(repo.join("rootfs/vm/build-image.sh"))
        .arg("run")
        .arg("--add")
        .arg(format!("{}:/bin/ipvs_kernel", exe.display()))
        .arg("--add")
        .arg(format!("{}:/test.sh", script.display()))
        .arg("--klog")
        .arg(work.join("kernel.log"))
        .output()
        .expect("run rootfs/vm/build-image.sh");
    let output = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "{output}\n{}\nVM run took {:.1} s",
        String::from_utf8_lossy(&out.stderr),
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "VM test failed ({}); kernel log in target/vm/run/kernel.log",
        out.status
    );
    assert!(output.contains("not-available: IPVS is not available"));
    assert!(output.contains("test result: ok. 10 passed"));

    let create = common::vm::section(&output, "ipvsadm", "create");
    assert!(has(&create, "TCP 10.0.0.1:80 wrr"), "{create:?}");
    assert!(has(&create, "-> 10.0.1.1:80 Route 1 0 0"), "{create:?}");
    assert!(has(&create, "-> 10.0.1.2:80 Route 2 0 0"), "{create:?}");
    assert!(
        has(&create, "UDP [fd00::53]:53 sh persistent 300 mask 64"),
        "{create:?}"
    );
    assert!(has(&create, "-> [fd00::1:1]:5353 Masq 3 0 0"), "{create:?}");
    assert!(
        has(&create, "FWM 7 wlc persistent 60 mask 255.255.255.0"),
        "{create:?}"
    );
    assert!(has(&create, "-> 10.0.2.1:0 Tunnel 1 0 0"), "{create:?}");

    let down = common::vm::section(&output, "ipvsadm", "down");
    assert!(!down.iter().any(|l| l.contains("10.0.1.1:80")), "{down:?}");
    let recovered = common::vm::section(&output, "ipvsadm", "recovered");
    assert!(
        has(&recovered, "-> 10.0.1.1:80 Route 1 0 0"),
        "{recovered:?}"
    );

    let inhibited = common::vm::section(&output, "ipvsadm", "inhibited");
    assert!(
        has(&inhibited, "-> 10.0.1.2:80 Route 0 0 0"),
        "{inhibited:?}"
    );

    let lost = common::vm::section(&output, "ipvsadm", "quorum-lost");
    assert!(has(&lost, "-> 10.0.9.9:0 Route 1 0 0"), "{lost:?}");
    assert!(!lost.iter().any(|l| l.contains("10.0.2.1")), "{lost:?}");
    let regained = common::vm::section(&output, "ipvsadm", "quorum-regained");
    assert!(
        !regained.iter().any(|l| l.contains("10.0.9.9")),
        "{regained:?}"
    );
    assert!(has(&regained, "-> 10.0.2.1:0 Tunnel 1 0 0"), "{regained:?}");

    let replaced = common::vm::section(&output, "ipvsadm", "quorum-replaced");
    assert!(has(&replaced, "-> 10.0.9.9:80 Masq 1 0 0"), "{replaced:?}");
    assert!(has(&replaced, "-> 10.0.1.2:80 Route 0 0 0"), "{replaced:?}");
    assert!(
        !replaced.iter().any(|l| l.contains("10.0.1.1")),
        "{replaced:?}"
    );

    let changed = common::vm::section(&output, "ipvsadm", "changed");
    assert!(has(&changed, "TCP 10.0.0.1:80 lc"), "{changed:?}");
    assert!(has(&changed, "-> 10.0.1.1:80 Route 7 0 0"), "{changed:?}");

    let shutdown = common::vm::section(&output, "ipvsadm", "shutdown");
    assert!(has(&shutdown, "TCP 10.9.9.9:80 rr"), "{shutdown:?}");
    assert!(
        !shutdown.iter().any(|l| l.contains("10.0.0.1:80")),
        "{shutdown:?}"
    );
    assert!(
        has(&shutdown, "UDP [fd00::53]:53 sh persistent 300 mask 64"),
        "{shutdown:?}"
    );
}
