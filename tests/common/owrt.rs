//! An OpenWrt userland for tests: procd, ubusd, logd, uci, rpcd, uhttpd with LuCI, and opkg,
//! built for this machine and shipped as a kit beside the repository (`../shared/owrt/`, or the
//! tarball named by `MINIVRRP_OWRT_KIT`). A user's clone has no kit: tests that need it print
//! "not run: no OpenWrt userland at ../shared/owrt" and pass; CI has the kit and runs them.
//!
//! Each [`Owrt`] is a private copy of the kit (one kit root serves one test at a time) started in
//! its own network namespace `mv<pid>-<tag>owrt` (so `tests/run.sh` removes it if a run is
//! killed), with bridge `br-lan` and one port `lan1` whose peer `lan1-peer` the test wires where
//! it wants (see [`Owrt::join_lab`]). `Drop` stops everything inside and deletes the namespace
//! and the copy, also while a failing test unwinds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::lab::{Lab, BRIDGE};
use super::netns::NS_PREFIX;

/// Where the kit is looked for when `MINIVRRP_OWRT_KIT` is not set.
pub const KIT_DEFAULT: &str = "../shared/owrt/owrt2-kit.tar.xz";

/// The kit tarball, if this machine has one.
pub fn kit_tarball() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MINIVRRP_OWRT_KIT") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(KIT_DEFAULT);
    p.is_file().then_some(p)
}

/// A running copy of the kit.
pub struct Owrt {
    /// The copy's folder on the host (`start.sh`, `run-in.sh`, `root/`, `state/`).
    pub root: PathBuf,
    /// Its network namespace (`ip netns exec NETNS ...` reaches uhttpd at [`Owrt::ip`]).
    pub netns: String,
    /// The address of `br-lan` inside, without prefix length (LuCI listens on port 80 there).
    pub ip: String,
}

impl Owrt {
    /// Starts a fresh copy with `br-lan` at `10.88.<subnet>.1/24` (`luci`: uhttpd with LuCI on
    /// port 80). `None` when the test must not run: no root (see `require_root`) or no kit
    /// (printed as "not run").
    pub fn start(test: &str, tag: &str, subnet: u8, luci: bool) -> Option<Owrt> {
        if !super::require_root(test) {
            return None;
        }
        let Some(kit) = kit_tarball() else {
            eprintln!("{test}: not run: no OpenWrt userland at ../shared/owrt");
            return None;
        };
        let pid = std::process::id();
        // A sequence number as in `Lab`: tests of one crate run side by side in one process.
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = PathBuf::from(format!("/tmp/mvowrt-{pid}-{seq}{tag}"));
        // Not `mv<pid>-<n><tag>-...`: a Lab with the same name deletes those as its leftovers.
        let netns = format!("{NS_PREFIX}{pid}-o{seq}{tag}owrt");
        let ip = format!("10.88.{subnet}.1");
        // Leftovers of an earlier run with the same pid and tag.
        let _ = Command::new("ip").args(["netns", "del", &netns]).output();
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("owrt: create the kit copy's folder");
        let untar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["--strip-components=1", "-xJf"])
            .arg(&kit)
            .output()
            .expect("owrt: run tar");
        assert!(
            untar.status.success(),
            "owrt: unpack {}: {untar:?}",
            kit.display()
        );
        let owrt = Owrt { root, netns, ip };
        let mut start = Command::new(owrt.root.join("start.sh"));
        start.env("OWRT_ROOT", &owrt.root).args([
            "--netns",
            &owrt.netns,
            "--addr",
            &format!("{}/24", owrt.ip),
        ]);
        if !luci {
            start.arg("--no-luci");
        }
        let out = start.output().expect("owrt: run start.sh");
        assert!(
            out.status.success(),
            "owrt: start.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(owrt)
    }

    /// Runs `script` with the kit's `/bin/sh` inside its namespaces (a router's shell: the
    /// environment reset, PATH the router's).
    pub fn run(&self, script: &str) -> Output {
        Command::new(self.root.join("run-in.sh"))
            .env("OWRT_ROOT", &self.root)
            .args(["sh", "-c", script])
            .output()
            .expect("owrt: run run-in.sh")
    }

    /// Like [`Owrt::run`], failing the test unless the script exits 0; its stdout.
    pub fn sh(&self, script: &str) -> String {
        let out = self.run(script);
        assert!(
            out.status.success(),
            "owrt: `{script}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `logread` inside, without the host kernel's lines.
    pub fn logread(&self) -> String {
        String::from_utf8_lossy(&self.run("logread | grep -v ' kern\\.'").stdout).into_owned()
    }

    /// Puts the kit's router on a lab's LAN as node number `index`: its port's peer joins the
    /// lab's bridge and `br-lan` inside gets `10.0.0.<index>/24` and `fd00::<index>/64` (the
    /// lab's addressing), beside the kit's own 10.88.x.1.
    pub fn join_lab(&self, lab: &Lab, index: u8) {
        let sh = |args: &[&str]| {
            let out = Command::new("ip")
                .args(args)
                .output()
                .expect("owrt: run ip");
            assert!(out.status.success(), "owrt: ip {args:?}: {out:?}");
        };
        let port = format!("vowrt{index}");
        sh(&["-n", &self.netns, "link", "set", "lan1-peer", "name", &port]);
        sh(&[
            "-n",
            &self.netns,
            "link",
            "set",
            &port,
            "netns",
            &lab.switch_ns,
        ]);
        sh(&["-n", &lab.switch_ns, "link", "set", &port, "master", BRIDGE]);
        sh(&["-n", &lab.switch_ns, "link", "set", &port, "up"]);
        for (k, v) in [
            ("net.ipv6.conf.br-lan.accept_dad", "0"),
            ("net.ipv6.conf.br-lan.keep_addr_on_down", "1"),
        ] {
            let _ = Command::new("ip")
                .args(["netns", "exec", &self.netns, "sysctl", "-q", "-w"])
                .arg(format!("{k}={v}"))
                .output();
        }
        sh(&[
            "-n",
            &self.netns,
            "addr",
            "add",
            &format!("10.0.0.{index}/24"),
            "dev",
            "br-lan",
        ]);
        sh(&[
            "-n",
            &self.netns,
            "addr",
            "add",
            &format!("fd00::{index}/64"),
            "dev",
            "br-lan",
            "nodad",
        ]);
    }

    /// Copies a host file where the router sees it (the kit's `/tmp` is private; the kit's own
    /// folder is bound back in at the same path) and returns the path inside.
    pub fn stage(&self, host_file: &Path) -> String {
        let name = host_file.file_name().expect("owrt: a file name");
        let dir = self.root.join("stage");
        std::fs::create_dir_all(&dir).expect("owrt: create the stage folder");
        let inside = dir.join(name);
        std::fs::copy(host_file, &inside).expect("owrt: stage a file");
        inside.to_string_lossy().into_owned()
    }
}

impl Drop for Owrt {
    fn drop(&mut self) {
        let _ = Command::new(self.root.join("stop.sh"))
            .env("OWRT_ROOT", &self.root)
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
