//! The pre-master hook (`notify_pre_master`, `pre_master_timeout`) on the wire: a new master
//! advertises at once (RFC 5798 6.4.2) but its VIP and gratuitous ARPs wait for the hook.
//!
//! - A backup takes over (the master leaves with SIGTERM) with the hook `sleep 2; touch FILE`:
//!   its first advert comes long before the file exists, the VIP is absent while the hook runs
//!   (and `status --json` says why), and no GARP for the VIP is on the wire before the file's
//!   modification time; afterwards the VIP is there.
//! - A hook that never exits, with `pre_master_timeout 1`: the VIP comes about 1 s after the
//!   first advert, and the hook process is gone (killed and reaped).
//! - A hook still running when a higher-priority router comes back: the hook is killed and
//!   the VIP is never installed (no GARP from that router at all).
//!
//! keepalived has no such hook: no side-by-side figure. Run as root:
//! `cargo test --test lab pre_master_lab::` (needs tcpdump, ip).

use crate::common;

use common::lab::{self, minivrrp_uci, Lab, Proc, VrrpSpec};
use common::pcap::Kind;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

const VIP: &str = "10.0.0.254";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_minivrrp"))
}

/// A VRRPv3 1 s instance on VRID 70; `extra`: more UCI lines for it.
fn spec(priority: u8, extra: &[String]) -> VrrpSpec {
    let mut s = VrrpSpec::new(70, priority, 3, 1.0, "10.0.0.254/24");
    s.extra_uci = vec!["option garp_delay '0'".into()];
    s.extra_uci.extend(extra.iter().cloned());
    s
}

fn start(lab: &Lab, node: &str, s: VrrpSpec) -> Proc {
    lab.spawn_minivrrp_text(node, bin(), &minivrrp_uci(node, &[s]), "minivrrp")
}

/// The instance of `minivrrp status --json`; `None` while the daemon is not answering yet.
fn try_status(lab: &Lab, node: &str) -> Option<serde_json::Value> {
    let o = Command::new(bin())
        .args(["status", "--json", "--socket"])
        .arg(lab.control_socket(node))
        .output()
        .ok()?;
    if o.status.code() != Some(0) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    Some(v["instances"][0].clone())
}

fn status_instance(lab: &Lab, node: &str) -> serde_json::Value {
    try_status(lab, node).unwrap_or_else(|| panic!("{node}: minivrrp status failed"))
}

/// `node`'s instance reaches `state` within `timeout`.
fn wait_state(lab: &Lab, node: &str, state: &str, timeout: Duration) -> bool {
    lab::wait_until(timeout, || {
        try_status(lab, node).is_some_and(|s| s["state"] == state)
    })
    .is_some()
}

fn mtime(p: &Path) -> Option<Duration> {
    let m = std::fs::metadata(p).ok()?.modified().ok()?;
    m.duration_since(UNIX_EPOCH).ok()
}

/// The first advert with `ts >= since` sent from `mac`.
fn first_advert(cap: &lab::Capture, since: Duration, mac: [u8; 6]) -> Option<Duration> {
    cap.adverts(since)
        .into_iter()
        .find(|(_, a, _)| a.src_mac == mac && a.priority > 0)
        .map(|(ts, _, _)| ts)
}

/// Capture times of gratuitous ARPs for the VIP sent from `mac` since `since`.
fn garps(cap: &lab::Capture, since: Duration, mac: [u8; 6]) -> Vec<Duration> {
    let vip: Ipv4Addr = VIP.parse().unwrap();
    cap.seen()
        .into_iter()
        .filter(|s| s.ts >= since)
        .filter_map(|s| match s.kind {
            Kind::Garp {
                sender_ip,
                sender_mac,
            } if sender_ip == vip && sender_mac == mac => Some(s.ts),
            _ => None,
        })
        .collect()
}

/// `pid` no longer exists (killed and reaped: a zombie would still have /proc/PID).
fn gone(pid: i32) -> bool {
    !PathBuf::from(format!("/proc/{pid}")).exists()
}

fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

#[test]
fn pre_master_hook_holds_vip_and_garp_until_it_exits_while_adverts_start_at_once() {
    require!(root, "tcpdump");
    let lab = Lab::with_routers("pmok", 2);
    let done = lab.dir.join("hook-done");
    let r1 = start(&lab, "r1", spec(150, &[]));
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(h, ["r1"], "r1 did not become master\n{}", r1.log_text());
    let hook = format!(
        "option notify_pre_master \"sh -c 'sleep 2; touch {}'\"",
        done.display()
    );
    let notified = lab.dir.join("notify-master");
    let notify = format!(
        "option notify_master \"sh -c 'echo $MINIVRRP_PREV_STATE > {}'\"",
        notified.display()
    );
    let r2 = start(&lab, "r2", spec(100, &[hook, notify]));
    // r2 is BACKUP once it has heard r1.
    assert!(
        wait_state(&lab, "r2", "BACKUP", Duration::from_secs(10)),
        "r2 did not become BACKUP\n{}",
        r2.log_text()
    );
    let cap = lab.capture("pmok");
    let r2_mac = lab.node("r2").mac;

    let t0 = lab::now_realtime();
    r1.terminate();
    // Skew_Time after r1's priority-0 advert r2 is MASTER and advertises at once.
    let mut first = None;
    lab::wait_until(Duration::from_secs(5), || {
        first = first_advert(&cap, t0, r2_mac);
        first.is_some()
    })
    .unwrap_or_else(|| panic!("r2 sent no advert after r1 left\n{}", r2.log_text()));
    let first = first.unwrap();
    // While the hook runs: MASTER, no VIP, no file, and status says why.
    let st = status_instance(&lab, "r2");
    assert!(!done.exists(), "hook finished too early for this test");
    assert_eq!(st["state"], "MASTER", "{st}");
    assert_eq!(st["pre_master_running"], true, "{st}");
    assert_eq!(st["vips_installed"], false, "{st}");
    assert!(
        !lab.node_has_addr("r2", VIP),
        "VIP installed while the pre-master hook runs"
    );
    let text = Command::new(bin())
        .args(["status", "--socket"])
        .arg(lab.control_socket("r2"))
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.contains("vips (held: pre_master running)"),
        "status text: {text}"
    );
    // The operator's `garp` has nothing to announce yet, and says so.
    let o = Command::new(bin())
        .args(["garp", "vi70", "--socket"])
        .arg(lab.control_socket("r2"))
        .output()
        .expect("garp");
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "garp during the hold: {out}");
    assert!(out.contains("held until notify_pre_master ends"), "{out}");

    // The hook ends after about 2 s; then the VIP and its GARPs.
    lab::wait_until(Duration::from_secs(10), || lab.node_has_addr("r2", VIP))
        .unwrap_or_else(|| panic!("r2 never took the VIP\n{}", r2.log_text()));
    let touched = mtime(&done).expect("the hook never created its file");
    let mut g = Vec::new();
    lab::wait_until(Duration::from_secs(5), || {
        g = garps(&cap, t0, r2_mac);
        !g.is_empty()
    })
    .unwrap_or_else(|| panic!("no GARP from r2 for the VIP\n{}", r2.log_text()));
    let st = status_instance(&lab, "r2");
    assert_eq!(st["pre_master_running"], false, "{st}");
    assert_eq!(st["vips_installed"], true, "{st}");
    // Adverts did not wait: the first one came well before the hook's end.
    let lead = touched.saturating_sub(first);
    assert!(
        lead >= Duration::from_millis(1500),
        "first advert only {lead:?} before the hook ended"
    );
    // And kept their rhythm during the hold (about one a second).
    let during = cap
        .adverts(first)
        .into_iter()
        .filter(|(ts, a, _)| a.src_mac == r2_mac && *ts <= touched)
        .count();
    assert!(
        during >= 2,
        "{during} adverts from r2 during a 2 s hold (first included)"
    );
    // No GARP before the hook's file exists (mtime has the file system's resolution, well
    // below a GARP's distance from it here).
    assert!(
        g[0] >= touched,
        "GARP at {:?} before the hook finished at {touched:?}",
        g[0]
    );
    eprintln!(
        "pre_master: first advert {:.3} s after SIGTERM to r1, hook done {:.3} s after it, first GARP {:.1} ms after the hook",
        first.saturating_sub(t0).as_secs_f64(),
        lead.as_secs_f64(),
        g[0].saturating_sub(touched).as_secs_f64() * 1000.0
    );
    assert!(
        r2.log_text().contains("pre_master hook done"),
        "{}",
        r2.log_text()
    );
    // notify_master ran after the hook, and was told where the instance came from.
    lab::wait_until(Duration::from_secs(5), || notified.exists()).expect("no notify_master");
    assert!(mtime(&notified).unwrap() >= touched);
    let prev = std::fs::read_to_string(&notified).unwrap();
    assert_eq!(prev.trim(), "BACKUP");
}

#[test]
fn pre_master_hook_that_never_exits_is_killed_at_its_timeout_and_the_vip_follows() {
    require!(root, "tcpdump");
    let lab = Lab::with_routers("pmto", 1);
    // The hook runs as script_user (nobody): give it a directory it may write.
    let hookdir = lab.dir.join("hook");
    std::fs::create_dir_all(&hookdir).unwrap();
    std::fs::set_permissions(
        &hookdir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let pidfile = hookdir.join("hook.pid");
    let cap = lab.capture("pmto");
    let r1_mac = lab.node("r1").mac;
    let t0 = lab::now_realtime();
    let hook = format!(
        "option notify_pre_master \"sh -c 'echo $$ > {}; exec sleep 1000'\"",
        pidfile.display()
    );
    // `state MASTER`: master at start, no Master_Down_Interval to wait.
    let uci = minivrrp_uci(
        "r1",
        &[spec(
            100,
            &[
                hook,
                "option pre_master_timeout '1'".into(),
                "option state 'MASTER'".into(),
            ],
        )],
    ) + "config globals 'globals'\n\toption script_user 'nobody'\n";
    let r1 = lab.spawn_minivrrp_text("r1", bin(), &uci, "minivrrp");
    let mut first = None;
    lab::wait_until(Duration::from_secs(5), || {
        first = first_advert(&cap, t0, r1_mac);
        first.is_some()
    })
    .unwrap_or_else(|| panic!("r1 sent no advert\n{}", r1.log_text()));
    let first = first.unwrap();
    let pid = lab::wait_until(Duration::from_secs(2), || read_pid(&pidfile).is_some())
        .and_then(|_| read_pid(&pidfile))
        .expect("the hook did not start");
    assert!(!gone(pid), "hook {pid} is not running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(String::from));
    assert_eq!(
        uid.as_deref(),
        Some("65534"),
        "hook not run as script_user nobody"
    );
    assert!(
        !lab.node_has_addr("r1", VIP),
        "VIP installed while the hook runs"
    );
    lab::wait_until(Duration::from_secs(5), || lab.node_has_addr("r1", VIP))
        .unwrap_or_else(|| panic!("VIP never installed after the timeout\n{}", r1.log_text()));
    let mut g = Vec::new();
    lab::wait_until(Duration::from_secs(5), || {
        g = garps(&cap, t0, r1_mac);
        !g.is_empty()
    })
    .expect("no GARP after the timeout");
    let after = g[0].saturating_sub(first);
    assert!(
        after >= Duration::from_millis(950) && after <= Duration::from_millis(2500),
        "first GARP {after:?} after the first advert, timeout 1 s"
    );
    lab::wait_until(Duration::from_secs(2), || gone(pid))
        .unwrap_or_else(|| panic!("hook {pid} still exists after its timeout"));
    let log = r1.log_text();
    assert!(
        log.contains("still running after") && log.contains("killed, taking the VIPs"),
        "{log}"
    );
    eprintln!(
        "pre_master timeout 1 s: first GARP {:.3} s after the first advert",
        after.as_secs_f64()
    );
}

#[test]
fn pre_master_hook_killed_and_vip_never_installed_when_a_higher_priority_returns() {
    require!(root, "tcpdump");
    let lab = Lab::with_routers("pmab", 2);
    let pidfile = lab.dir.join("hook.pid");
    let cap = lab.capture("pmab");
    let r2_mac = lab.node("r2").mac;
    let t0 = lab::now_realtime();
    let hook = format!(
        "option notify_pre_master \"sh -c 'echo $$ > {}; exec sleep 1000'\"",
        pidfile.display()
    );
    let notified = lab.dir.join("notified");
    let notify = |state: &str| {
        format!(
            "option notify_{} \"sh -c 'echo {state} $MINIVRRP_PREV_STATE >> {}'\"",
            state.to_lowercase(),
            notified.display()
        )
    };
    let r2 = start(
        &lab,
        "r2",
        spec(
            100,
            &[
                hook,
                "option pre_master_timeout '10'".into(),
                "option state 'MASTER'".into(),
                notify("MASTER"),
                notify("BACKUP"),
            ],
        ),
    );
    let pid = lab::wait_until(Duration::from_secs(5), || read_pid(&pidfile).is_some())
        .and_then(|_| read_pid(&pidfile))
        .unwrap_or_else(|| panic!("the hook did not start\n{}", r2.log_text()));
    assert!(wait_state(&lab, "r2", "MASTER", Duration::from_secs(5)));
    let st = status_instance(&lab, "r2");
    assert_eq!(
        (st["state"].as_str(), st["pre_master_running"].as_bool()),
        (Some("MASTER"), Some(true)),
        "{st}"
    );
    // The higher priority comes back (state MASTER: it advertises at once).
    let r1 = start(&lab, "r1", spec(150, &["option state 'MASTER'".into()]));
    assert!(
        wait_state(&lab, "r2", "BACKUP", Duration::from_secs(5)),
        "r2 did not yield\n{}\n{}",
        r2.log_text(),
        r1.log_text()
    );
    lab::wait_until(Duration::from_secs(2), || gone(pid))
        .unwrap_or_else(|| panic!("hook {pid} survived r2 leaving MASTER"));
    lab.wait_holders(VIP, &["r1"], Duration::from_secs(10));
    // Past the hold's 10 s timeout would be needed for a late install to show; the state
    // machine has no deadline left, so a few seconds of watching suffice.
    let watch = std::time::Instant::now();
    while watch.elapsed() < Duration::from_secs(3) {
        assert!(
            !lab.node_has_addr("r2", VIP),
            "r2 installed the VIP after leaving MASTER"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(lab.holders(VIP), ["r1"]);
    let g = garps(&cap, t0, r2_mac);
    assert!(g.is_empty(), "r2 sent GARPs for the VIP: {g:?}");
    let log = r2.log_text();
    assert!(log.contains("VIPs never installed"), "{log}");
    // The scripts never heard of the MASTER that never took its VIPs: one BACKUP, coming
    // from INIT (the last state they were told).
    let text = std::fs::read_to_string(&notified).unwrap_or_default();
    assert_eq!(text, "BACKUP INIT\n", "notify scripts saw: {text:?}");
}
