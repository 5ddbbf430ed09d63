//! luci-app-minivrrp in a real browser against real LuCI: the OpenWrt userland kit
//! (`tests/common/owrt.rs`: procd, rpcd, uhttpd, LuCI) joins a lab LAN beside a peer minivrrp
//! router; the daemon's .ipk and the app's .ipk are installed with opkg and the daemon is
//! started through its init script; then headless Chromium (selenium, `tests/luci/luci_app.py`)
//! logs in and checks the status page (MASTER with the VIP while the peer is BACKUP),
//! maintenance (BACKUP, the peer MASTER), a priority override, the Overview include, a
//! configuration change applied with Save & Apply (reloaded in place: same pid, new value in
//! `minivrrp status --json`), an invalid value refused on the form by the daemon's own parser
//! with nothing applied, GARP, a Reload refused with the daemon's `FILE:LINE` errors shown,
//! and a read-only ACL user (status shown, rpcd refuses the controls).
//! Screenshots go to `target/tmp/luci-app/`. "not run" without the kit.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::lab::Lab;
use common::owrt::Owrt;

const TEST: &str = "luci_app_in_a_real_browser";
const SUBNET: u8 = 61;
const VIP: &str = "10.0.0.251";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_minivrrp"))
}

/// Chromium, its WebDriver and Debian's selenium bindings (tests/setup.sh installs them).
fn browser_kit() -> bool {
    for tool in ["chromium", "chromedriver"] {
        if !common::require_tool(TEST, tool) {
            return false;
        }
    }
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import selenium"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{TEST}: needs python3-selenium, and CI=true forbids skipping"
        );
        eprintln!("SKIP {TEST}: python3-selenium is not installed (tests/setup.sh installs it)");
    }
    ok
}

fn build(args: &[&str]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("openwrt/build-ipk.sh");
    let out = Command::new(&script)
        .args(args)
        .output()
        .expect("run build-ipk.sh");
    assert!(out.status.success(), "build-ipk.sh {args:?}: {out:?}");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn state(json: &str) -> Option<(String, u64)> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let i = &v["instances"][0];
    Some((i["state"].as_str()?.to_string(), v["pid"].as_u64()?))
}

#[test]
fn luci_app_in_a_real_browser() {
    if !common::require_root(TEST) || !browser_kit() {
        return;
    }
    let Some(owrt) = Owrt::start(TEST, "luciowrt", SUBNET, true) else {
        return;
    };
    let lab = Lab::with_routers("luciapp", 1);
    owrt.join_lab(&lab, 10);

    // The packages, as a user gets them.
    let stage = owrt.root.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let s = stage.to_string_lossy().to_string();
    let b = bin().to_string_lossy().to_string();
    let daemon = build(&["--bin", &b, "--out", &s, "x86_64"]);
    let app = build(&["--luci", "--out", &s]);
    let installed = owrt.sh(&format!(
        "cd {s} && opkg install ./{} ./{} 2>&1",
        daemon.file_name().unwrap().to_string_lossy(),
        app.file_name().unwrap().to_string_lossy()
    ));
    assert!(
        installed.contains("Configuring luci-app-minivrrp"),
        "{installed}"
    );

    // A reader: rpcd login with the read half of every ACL group, no write.
    let hash = Command::new("openssl")
        .args(["passwd", "-1", "viewerpw"])
        .output()
        .expect("openssl passwd");
    let hash = String::from_utf8_lossy(&hash.stdout).trim().to_string();
    owrt.sh(&format!(
        "uci add rpcd login >/dev/null && uci set rpcd.@login[-1].username=viewer && \
         uci set rpcd.@login[-1].password='{hash}' && uci add_list rpcd.@login[-1].read='*' && \
         uci commit rpcd"
    ));

    // The peer: priority 100, ours 150.
    let peer_uci = format!(
        "config globals 'globals'\n\toption router_id 'peer'\n\n\
         config instance 'lan'\n\toption interface 'br-lan'\n\toption vrid '61'\n\
         \toption priority '100'\n\tlist vip '{VIP}/24'\n"
    );
    let _peer = lab.spawn_minivrrp_text("r1", &bin(), &peer_uci, "peer");
    owrt.sh(&format!(
        "cat > /etc/config/minivrrp <<'EOF'\nconfig globals 'globals'\n\toption enabled '1'\n\
         \toption router_id 'owrt'\n\nconfig instance 'lan'\n\toption interface 'br-lan'\n\
         \toption vrid '61'\n\toption priority '150'\n\tlist vip '{VIP}/24'\nEOF\n\
         /etc/init.d/minivrrp start"
    ));
    let peer_cmd = format!(
        "ip netns exec {} {} status --json --socket {}",
        lab.node("r1").ns,
        b,
        lab.control_socket("r1").display()
    );
    let t0 = Instant::now();
    loop {
        let ours = state(&String::from_utf8_lossy(
            &owrt.run("minivrrp status --json").stdout,
        ));
        let peer = Command::new("sh").args(["-c", &peer_cmd]).output().unwrap();
        let peer = state(&String::from_utf8_lossy(&peer.stdout));
        if matches!((&ours, &peer), (Some((o, _)), Some((p, _))) if o == "MASTER" && p == "BACKUP")
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no MASTER/BACKUP pair: ours {ours:?}, peer {peer:?}\n{}",
            owrt.logread()
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("luci-app");
    let _ = std::fs::remove_dir_all(&shots);
    let run_in = owrt.root.join("run-in.sh");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/luci/luci_app.py");
    let out = Command::new("ip")
        .args(["netns", "exec", &owrt.netns, "/usr/bin/python3"])
        .arg(&script)
        .arg("--url")
        .arg(format!("http://{}/cgi-bin/luci/", owrt.ip))
        .arg("--out")
        .arg(&shots)
        .arg("--status-cmd")
        .arg(format!("{} minivrrp status --json", run_in.display()))
        .arg("--config-cmd")
        .arg(format!("{} cat /etc/config/minivrrp", run_in.display()))
        .arg("--sh-cmd")
        .arg(format!("{} sh -c", run_in.display()))
        .arg("--peer-cmd")
        .arg(&peer_cmd)
        .args([
            "--vip",
            VIP,
            "--ro-user",
            "viewer",
            "--ro-password",
            "viewerpw",
        ])
        .env("OWRT_ROOT", &owrt.root)
        .output()
        .expect("run the selenium script");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    println!("screenshots: {}", shots.display());
    assert!(
        out.status.success() && text.contains("luci-app: PASS"),
        "browser steps failed (screenshots in {}):\n{text}\n{}",
        shots.display(),
        owrt.logread()
    );
    // Every step ran (the script stops at nothing, so count them).
    assert_eq!(
        text.matches("\nok: ").count() + usize::from(text.starts_with("ok: ")),
        9,
        "{text}"
    );
}
