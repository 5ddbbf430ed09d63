//! What the IPVS VM tests (tests/ipvs_vm.rs, tests/ipvs_daemon_vm.rs) need before they boot.

use std::path::Path;
use std::process::Command;

/// True when a VM can be booted: in CI the base image is built (rootfs/vm/build-image.sh
/// installs its Debian packages once and caches the image); elsewhere a missing kernel or tool
/// is a skip, never an install. Under CI=true a missing piece fails instead.
pub fn vm_ready(test: &str, repo: &Path) -> bool {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if ci {
        let st = Command::new(repo.join("rootfs/vm/build-image.sh"))
            .arg("base")
            .status()
            .expect("run rootfs/vm/build-image.sh base");
        assert!(st.success(), "building the VM base image failed");
    }
    let has_kernel = std::fs::read_dir("/boot")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
        })
        .unwrap_or(false);
    if !has_kernel {
        if ci {
            panic!("{test}: no /boot/vmlinuz-* (linux-image-amd64)");
        }
        eprintln!("SKIP {test}: no /boot/vmlinuz-* (apt-get install linux-image-amd64)");
        return false;
    }
    [
        "qemu-system-x86_64",
        "ipvsadm",
        "busybox",
        "cpio",
        "modprobe",
        "xz",
    ]
    .iter()
    .all(|tool| super::require_tool(test, tool))
}
