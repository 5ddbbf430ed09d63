//! A router owner's day one, with OpenWrt's own tools (procd, ubusd, logd, uci, opkg and
//! `reload_config`, from the kit in `../shared/owrt/`, see tests/common/owrt.rs): install the
//! package, enable it with the README's command exactly as written, change the priority,
//! upgrade to a new release, remove it. Prints "not run" where the kit is absent.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::lab::{Lab, VrrpSpec};
use common::owrt::Owrt;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The binary to package: the static release build when tests/run.sh built one first
/// (MINIVRRP_RELEASE_BIN), else the debug binary of this test run (the kit is a glibc
/// userland, so both run inside).
fn package_bin() -> PathBuf {
    std::env::var("MINIVRRP_RELEASE_BIN")
        .ok()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_minivrrp")))
}

/// openwrt/build-ipk.sh for x86_64 (the kit's architecture) with `bin` as release `release`.
fn build_package(bin: &Path, release: u32, out: &Path, extra: &[&str]) -> PathBuf {
    let o = Command::new("sh")
        .arg(Path::new(ROOT).join("openwrt/build-ipk.sh"))
        .args(extra)
        .arg("--bin")
        .arg(bin)
        .args(["--release", &release.to_string(), "--out"])
        .arg(out)
        .arg("x86_64")
        .output()
        .expect("run build-ipk.sh");
    assert!(o.status.success(), "build-ipk.sh: {o:?}");
    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
}

/// The README's first enable, as a user copies it from the install section.
fn readme_enable_line() -> String {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README");
    readme
        .lines()
        .find(|l| l.starts_with("uci set minivrrp.globals.enabled=1"))
        .expect("README has the enable command on a line of its own")
        .to_string()
}

/// procd's pid and instance name for the minivrrp service, if it runs one.
fn procd_instance(r: &Owrt) -> Option<(String, u32)> {
    let out = r.run("ubus call service list '{\"name\":\"minivrrp\"}'");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // The instances object: {"bin_<md5>": {"running": true, "pid": N, ...}}.
    let name = text.split('"').find(|w| w.starts_with("bin_"))?.to_string();
    let pid = text
        .split("\"pid\":")
        .nth(1)?
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    text.contains("\"running\": true").then_some((name, pid))
}

/// Polls `f` until it gives Some, for at most `secs` seconds.
fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `minivrrp status` inside, when the daemon answers.
fn status(r: &Owrt) -> String {
    String::from_utf8_lossy(&r.run("minivrrp status 2>&1").stdout).into_owned()
}

fn master_with_priority(r: &Owrt, prio: u32) -> Option<String> {
    let s = status(r);
    (s.contains("vi1 MASTER") && s.contains(&format!("priority {prio} (base {prio})"))).then_some(s)
}

fn md5_of(path: &Path) -> String {
    let o = Command::new("md5sum").arg(path).output().expect("md5sum");
    String::from_utf8_lossy(&o.stdout)[..12].to_string()
}

/// The package manager a walk uses.
enum Manager {
    Opkg,
    /// apk-tools 3 (OpenWrt 25.12), the binary named by MINIVRRP_APK.
    Apk(PathBuf),
}

impl Manager {
    fn ext(&self) -> &'static str {
        match self {
            Manager::Opkg => "ipk",
            Manager::Apk(_) => "apk",
        }
    }

    /// What a router owner types to install or upgrade from a file in the current folder.
    fn install(&self, file: &str) -> String {
        match self {
            Manager::Opkg => format!("opkg install ./{file}"),
            Manager::Apk(_) => format!("apk add --allow-untrusted ./{file}"),
        }
    }

    fn remove(&self) -> &'static str {
        match self {
            Manager::Opkg => "opkg remove minivrrp",
            Manager::Apk(_) => "apk del minivrrp",
        }
    }
}

/// A router owner's day one with `m`: install, the README's enable, a priority edit, an
/// upgrade to a release with another binary, removal.
fn day_one(test: &str, tag: &str, subnet: u8, m: Manager) {
    let Some(r) = Owrt::start(test, tag, subnet, false) else {
        return;
    };
    // A peer on the router's LAN: a lab router running the shipped instance (VRID 50,
    // 10.0.0.254) at priority 50, so mastership is what the wire says, not only the daemon.
    // Its 0.3 s adverts (learned by the router as a backup) keep the takeovers short.
    let lab = Lab::with_routers(tag, 1);
    r.join_lab(&lab, 7);
    let mut peer_spec = VrrpSpec::new(50, 50, 3, 0.3, "10.0.0.254/24");
    peer_spec.name = "vi1".into();
    let peer = lab.spawn_minivrrp(
        "r1",
        Path::new(env!("CARGO_BIN_EXE_minivrrp")),
        &[peer_spec],
    );
    let peer_state = || {
        let o = Command::new(env!("CARGO_BIN_EXE_minivrrp"))
            .args(["status", "--json", "--socket"])
            .arg(lab.control_socket("r1"))
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        Some((
            v["instances"][0]["state"].as_str()?.to_string(),
            v["instances"][0]["master"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        ))
    };
    assert!(
        wait_for(10, || peer_state().filter(|(s, _)| s == "MASTER")).is_some(),
        "the peer did not become master alone\n{}",
        peer.log_text()
    );
    let out = r.root.join("pkgs");
    std::fs::create_dir_all(&out).unwrap();
    let extra: &[&str] = match m {
        Manager::Opkg => &[],
        Manager::Apk(_) => &["--apk"],
    };
    let bin1 = package_bin();
    let pkg1 = build_package(&bin1, 1, &out.join("r1"), extra);
    // Release 2 carries another binary: the same program with a trailer, so its checksum (and
    // procd's instance name, which the init script derives from it) differs.
    let bin2 = out.join("minivrrp-r2");
    let mut b = std::fs::read(&bin1).unwrap();
    b.extend_from_slice(b"\nminivrrp release 2\n");
    std::fs::write(&bin2, b).unwrap();
    let pkg2 = build_package(&bin2, 2, &out.join("r2"), extra);
    let (pkg1, pkg2) = (r.stage(&pkg1), r.stage(&pkg2));
    let dir = Path::new(&pkg1).parent().unwrap().display().to_string();
    let name = |p: &str| {
        Path::new(p)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert!(pkg1.ends_with(m.ext()) && pkg2.ends_with(m.ext()));
    if let Manager::Apk(tool) = &m {
        // What an OpenWrt 25.12 image has before the owner's first command: apk on PATH and
        // a package database holding libc (here a stub without files). The kit's root is a
        // tmpfs, where apk refuses a package from a file ("would be lost on next reboot")
        // unless a package cache is set up; a router's flash overlay is not a tmpfs.
        let apk = r.stage(tool);
        let libc = out.join("libc.apk");
        let empty = out.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let o = Command::new("python3")
            .arg(Path::new(ROOT).join("openwrt/apk-mkpkg.py"))
            .args(["--info", "name:libc", "--info", "version:1.2.5-r4"])
            .args(["--info", "arch:x86_64", "--files"])
            .arg(&empty)
            .arg("--output")
            .arg(&libc)
            .output()
            .expect("run apk-mkpkg.py");
        assert!(o.status.success(), "apk-mkpkg.py: {o:?}");
        let libc = r.stage(&libc);
        r.sh(&format!(
            "cp {apk} /usr/bin/apk && mkdir -p /etc/apk/cache && \
             apk add --initdb --allow-untrusted --no-network --arch x86_64 {libc}"
        ));
    }

    // 1. Install: enabled as a service, shipped disabled, so nothing runs.
    r.sh(&format!("cd {dir} && {}", m.install(&name(&pkg1))));
    assert!(
        r.run("/etc/init.d/minivrrp enabled").status.success(),
        "the install did not enable the init script"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        procd_instance(&r),
        None,
        "the shipped config started a daemon"
    );

    // 2. The README's enable, exactly as written.
    let enable = readme_enable_line();
    r.sh(&enable);
    let (name1, pid1) = wait_for(10, || procd_instance(&r)).unwrap_or_else(|| {
        panic!(
            "`{enable}` after a fresh install started nothing:\n{}",
            r.logread()
        )
    });
    assert_eq!(name1, format!("bin_{}", md5_of(&bin1)));
    let s = wait_for(10, || master_with_priority(&r, 100))
        .unwrap_or_else(|| panic!("not MASTER on br-lan:\n{}\n{}", status(&r), r.logread()));
    assert!(s.contains("br-lan vrid 50"), "{s}");
    assert!(r.sh("ip -br addr show br-lan").contains("10.0.0.254/24"));
    // The peer heard it: BACKUP under the router (advertising from br-lan's first address).
    let router_src = format!("10.88.{subnet}.1");
    assert!(
        wait_for(10, || peer_state()
            .filter(|(s, m)| s == "BACKUP" && *m == router_src))
        .is_some(),
        "the peer is {:?}\n{}",
        peer_state(),
        peer.log_text()
    );
    assert!(
        lab.client_pings("10.0.0.254"),
        "the LAN's client cannot reach the VIP"
    );

    // 3. A later edit reloads in place: same process, new priority.
    r.sh("uci set minivrrp.vi1.priority=120; uci commit minivrrp; reload_config");
    wait_for(10, || master_with_priority(&r, 120))
        .unwrap_or_else(|| panic!("priority 120 not applied:\n{}\n{}", status(&r), r.logread()));
    assert_eq!(
        procd_instance(&r),
        Some((name1.clone(), pid1)),
        "not reloaded in place"
    );

    // 4. Upgrade to release 2: the new binary runs, the edit stays.
    r.sh(&format!("cd {dir} && {}", m.install(&name(&pkg2))));
    let want = format!("bin_{}", md5_of(&bin2));
    let (name2, pid2) = wait_for(10, || procd_instance(&r).filter(|(n, _)| *n == want))
        .unwrap_or_else(|| {
            panic!(
                "the upgrade left {:?} running, not {want}:\n{}",
                procd_instance(&r),
                r.logread()
            )
        });
    assert_ne!(pid2, pid1);
    assert_eq!(name2, want);
    let exe = r.sh(&format!("md5sum /proc/{pid2}/exe"));
    assert_eq!(
        &exe[..12],
        &want[4..],
        "the running process is not the new binary"
    );
    assert_eq!(r.sh("uci get minivrrp.vi1.priority").trim(), "120");
    assert_eq!(r.sh("uci get minivrrp.globals.enabled").trim(), "1");
    wait_for(10, || master_with_priority(&r, 120)).unwrap_or_else(|| {
        panic!(
            "not MASTER after the upgrade:\n{}\n{}",
            status(&r),
            r.logread()
        )
    });
    assert!(
        wait_for(10, || peer_state()
            .filter(|(s, m)| s == "BACKUP" && *m == router_src))
        .is_some(),
        "the peer is {:?} after the upgrade\n{}",
        peer_state(),
        peer.log_text()
    );

    // 5. Remove: the daemon stops, its VIP goes, the edited config stays.
    r.sh(m.remove());
    // procd stops the instance asynchronously (SIGTERM, the daemon's goodbye, its exit).
    let gone = wait_for(10, || {
        (procd_instance(&r).is_none() && !r.run(&format!("kill -0 {pid2}")).status.success())
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "the removal left the daemon running: {:?}\n{}",
        procd_instance(&r),
        r.logread()
    );
    assert!(!r.sh("ip -br addr show br-lan").contains("10.0.0.254"));
    assert!(r.run("[ -e /usr/sbin/minivrrp ]").status.code() == Some(1));
    assert_eq!(r.sh("uci get minivrrp.vi1.priority").trim(), "120");
    // The leaving router's priority-0 advert handed the VIP to the peer.
    assert!(
        wait_for(10, || peer_state().filter(|(s, _)| s == "MASTER")).is_some(),
        "the peer did not take over after the removal: {:?}\n{}",
        peer_state(),
        peer.log_text()
    );
}

#[test]
fn ipk_day_one_install_enable_edit_upgrade_remove_with_opkg_procd_and_reload_config() {
    day_one("ipk_day_one", "day1", 61, Manager::Opkg);
}

/// The same walk with apk-tools 3, as on OpenWrt 25.12. Debian 12 has no apk-tools package:
/// it runs when MINIVRRP_APK names an apk binary (openwrt/README.md says how to build one).
#[test]
fn apk_day_one_install_enable_edit_upgrade_remove_with_apk_procd_and_reload_config() {
    let test = "apk_day_one";
    let Some(tool) = std::env::var_os("MINIVRRP_APK").map(PathBuf::from) else {
        eprintln!("{test}: not run: set MINIVRRP_APK to an apk-tools 3 binary");
        return;
    };
    day_one(test, "day1apk", 62, Manager::Apk(tool));
}
