//! What the IPVS VM tests (tests/vm/ipvs_vm.rs, tests/vm/ipvs_daemon_vm.rs) need before they boot.

use std::path::{Path, PathBuf};
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

/// The static musl target the VM runs.
pub const MUSL: &str = "x86_64-unknown-linux-musl";

/// Builds `args` for musl in its own target dir (shared by the VM tests, never the
/// one of the `cargo test` running us, so there is no lock wait on it) and returns the path
/// of the artifact named `name` of kind `kind` ("bin" or "test").
pub fn build_musl(test: &str, repo: &Path, args: &[&str], name: &str) -> Option<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(repo)
        .env("CARGO_TARGET_DIR", repo.join("target/vm/cargo"))
        .args(args)
        .args(["--target", MUSL, "--message-format=json"])
        .output()
        .expect("run cargo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("target may not be installed") || stderr.contains("can't find crate") {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: the {MUSL} target is not installed:\n{stderr}");
            }
            eprintln!("SKIP {test}: rustup target add {MUSL}");
            return None;
        }
        panic!("building {name} for {MUSL} failed:\n{stderr}");
    }
    // The compiler-artifact line carries `"executable":"<path>"`.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let exe = stdout
        .lines()
        .filter(|l| l.contains(&format!("\"name\":\"{name}\"")))
        .find_map(|l| {
            let start = l.find("\"executable\":\"")? + "\"executable\":\"".len();
            let end = start + l[start..].find('"')?;
            Some(PathBuf::from(&l[start..end]))
        })
        .unwrap_or_else(|| panic!("cargo reported no {name} executable"));
    Some(exe)
}

/// The lines printed between `--- KIND LABEL ---` and `--- end ---`, spaces squeezed.
pub fn section(output: &str, kind: &str, label: &str) -> Vec<String> {
    let start = format!("--- {kind} {label} ---");
    output
        .lines()
        .skip_while(|l| *l != start)
        .skip(1)
        .take_while(|l| *l != "--- end ---")
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}
