//! One minivrrp instance with IPv4 and IPv6 VIPs runs two VRRPv3 routers with one VRID (one
//! per family) kept in step. On the wire it must behave like keepalived's only way to do
//! this: two `vrrp_instance`s (one per family, the same `virtual_router_id`) in a
//! `vrrp_sync_group`. In the namespace lab:
//!
//! - a dual minivrrp (r1, 150) against keepalived's pair (r2, 100), and against another dual
//!   minivrrp: one master, both VIPs on it; they move together when it stops (SIGTERM and
//!   `kill -9`), and come back with preemption;
//! - keepalived's pair as master, minivrrp as the backup taking both VIPs over;
//! - a higher-priority router advertising only IPv6 (r3, a minivrrp instance with the IPv6
//!   VIP alone) sends BOTH families of the dual instance to BACKUP: its IPv4 VIP goes too
//!   and stays gone (no flapping) until that router leaves.
//!
//! Run as root: `cargo test --test lab dual_stack_lab::` (needs keepalived, tcpdump, ip).

use crate::common;

use common::knobs::minivrrp_bin;
use common::lab::now_realtime;
use common::lab::{Lab, Proc, LAN_IF};
use common::pcap;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const V4: &str = "10.0.0.254";
const V6: &str = "fd00::254";
const VRID: u8 = 50;
/// VRRPv3 at 0.2 s: Master_Down_Interval of the priority-100 backup 0.68 s.
const ADVERT_INT: &str = "0.2";

fn prereqs(name: &str, keepalived: bool) -> bool {
    common::require_root(name)
        && (!keepalived || common::require_tool(name, "keepalived"))
        && common::require_tool(name, "tcpdump")
}

/// minivrrp: one instance with both VIPs. `notify`: a script that records every call.
fn dual_uci(priority: u8, notify: Option<&Path>) -> String {
    let mut c = format!(
        "config globals 'globals'\n\toption log_level 'info'\n\n\
         config instance 'lan'\n\toption interface '{LAN_IF}'\n\toption vrid '{VRID}'\n\
         \toption priority '{priority}'\n\toption version '3'\n\toption advert_int '{ADVERT_INT}'\n\
         \toption garp_delay '0'\n\tlist vip '{V4}/24'\n\tlist vip '{V6}/64'\n"
    );
    if let Some(n) = notify {
        c.push_str(&format!("\toption notify '{}'\n", n.display()));
    }
    c
}

/// minivrrp: the same VRID with the IPv6 VIP only (a router that speaks IPv6 alone).
fn ipv6_only_uci(priority: u8) -> String {
    format!(
        "config instance 'lan6'\n\toption interface '{LAN_IF}'\n\toption vrid '{VRID}'\n\
         \toption priority '{priority}'\n\toption version '3'\n\toption advert_int '{ADVERT_INT}'\n\
         \toption garp_delay '0'\n\tlist vip '{V6}/64'\n"
    )
}

/// keepalived's equivalent: one instance per family, same VRID, in a sync group.
fn keepalived_pair(router_id: &str, priority: u8) -> String {
    let inst = |name: &str, vip: &str| {
        format!(
            "vrrp_instance {name} {{\n    state BACKUP\n    interface {LAN_IF}\n    \
             virtual_router_id {VRID}\n    priority {priority}\n    version 3\n    \
             advert_int {ADVERT_INT}\n    virtual_ipaddress {{\n        {vip} dev {LAN_IF}\n    }}\n}}\n"
        )
    };
    format!(
        "global_defs {{\n    router_id {router_id}\n}}\n\
         vrrp_sync_group lan {{\n    group {{\n        lan4\n        lan6\n    }}\n}}\n{}{}",
        inst("lan4", &format!("{V4}/24")),
        inst("lan6", &format!("{V6}/64"))
    )
}

/// Both VIPs held by exactly `want` (each), within `timeout`; the time it took.
fn wait_both(lab: &Lab, want: &[&str], timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let (h4, _) = lab.wait_holders(V4, want, timeout);
    let (h6, _) = lab.wait_holders(V6, want, timeout.saturating_sub(start.elapsed()));
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    let (mut h4, mut h6) = (h4, h6);
    h4.sort();
    h6.sort();
    if h4 == want && h6 == want {
        Ok(start.elapsed())
    } else {
        Err(format!("{V4} on {h4:?}, {V6} on {h6:?}, wanted {want:?}"))
    }
}

/// For `how_long`, both VIPs stay exactly on `want`.
fn stays(lab: &Lab, want: &[&str], how_long: Duration) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < how_long {
        for vip in [V4, V6] {
            let mut h = lab.holders(vip);
            h.sort();
            if h != want {
                return Err(format!(
                    "{vip} on {h:?} after {:?}, wanted {want:?}",
                    start.elapsed()
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn spawn_dual(lab: &Lab, node: &str, priority: u8, log: &str, notify: Option<&Path>) -> Proc {
    lab.spawn_minivrrp_text(node, &minivrrp_bin(), &dual_uci(priority, notify), log)
}

fn status_json(lab: &Lab, node: &str) -> serde_json::Value {
    let o = Command::new(minivrrp_bin())
        .args(["status", "--json", "--socket"])
        .arg(lab.control_socket(node))
        .output()
        .expect("run minivrrp status");
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// The instance's state and its two families' states from `minivrrp status --json`.
fn states(lab: &Lab, node: &str) -> (String, Vec<(String, String)>) {
    let v = status_json(lab, node);
    let i = &v["instances"][0];
    let fams = i["families"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["family"].as_str().unwrap_or("?").to_string(),
                        f["state"].as_str().unwrap_or("?").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (i["state"].as_str().unwrap_or("?").to_string(), fams)
}

fn both(state: &str) -> Vec<(String, String)> {
    vec![
        ("ipv4".to_string(), state.to_string()),
        ("ipv6".to_string(), state.to_string()),
    ]
}

/// r1's adverts in the capture: one IPv4 advert to the group with the IPv4 VIP and one
/// IPv6 advert from r1's link-local with the IPv6 VIP, both VRID 50, priority `priority`.
fn check_adverts_of_both_families(cap: &common::lab::Capture, mac: [u8; 6], priority: u8) {
    let seen = cap.adverts(Duration::ZERO);
    let ours: Vec<&pcap::Advert> = seen
        .iter()
        .filter(|(_, a, _)| a.src_mac == mac && a.vrid == VRID && a.priority == priority)
        .map(|(_, a, dst)| {
            // 224.0.0.18 / ff02::12 as Ethernet group addresses.
            let group = if a.src_ip.is_ipv4() {
                [0x01, 0x00, 0x5e, 0, 0, 0x12]
            } else {
                [0x33, 0x33, 0, 0, 0, 0x12]
            };
            assert_eq!(*dst, group, "advert not to the VRRP group: {a:?}");
            a
        })
        .collect();
    let v4: IpAddr = V4.parse().unwrap();
    let v6: IpAddr = V6.parse().unwrap();
    let a4 = ours
        .iter()
        .find(|a| a.src_ip.is_ipv4())
        .expect("no IPv4 advert");
    assert_eq!((a4.version, a4.addrs.as_slice()), (3, &[v4][..]));
    let a6 = ours
        .iter()
        .find(|a| a.src_ip.is_ipv6())
        .expect("no IPv6 advert");
    assert_eq!((a6.version, a6.addrs.as_slice()), (3, &[v6][..]));
    let IpAddr::V6(src) = a6.src_ip else {
        unreachable!()
    };
    assert_eq!(
        src.segments()[0],
        0xfe80,
        "IPv6 advert not from a link-local: {src}"
    );
}

/// minivrrp dual (r1, 150) against `peer` started by `start_peer` (r2, 100): election, then
/// SIGTERM / restart / kill -9 / restart of r1, both VIPs moving together each time.
fn master_stops_and_comes_back(lab: &Lab, start_peer: &dyn Fn() -> Proc, notify: Option<&Path>) {
    let r1_mac = lab.node("r1").mac;
    let cap = lab.capture("dual");
    let _r2 = start_peer();
    let mut r1 = spawn_dual(lab, "r1", 150, "minivrrp-1", notify);
    let settle = Duration::from_secs(10);
    let t = wait_both(lab, &["r1"], settle).unwrap_or_else(|e| {
        panic!("election: {e}\nr1 log:\n{}", r1.log_text());
    });
    eprintln!("election: both VIPs on r1 after {t:?}");
    stays(lab, &["r1"], Duration::from_secs(2)).expect("r1 keeps both VIPs");
    assert_eq!(states(lab, "r1"), ("MASTER".to_string(), both("MASTER")));
    check_adverts_of_both_families(&cap, r1_mac, 150);

    // SIGTERM: priority-0 adverts on both families, r2 takes both after Skew_Time.
    r1.terminate();
    assert!(r1.wait_exit(Duration::from_secs(5)), "r1 did not exit");
    let t = wait_both(lab, &["r2"], Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("after SIGTERM: {e}"));
    eprintln!("SIGTERM: both VIPs on r2 after {t:?}");
    stays(lab, &["r2"], Duration::from_secs(1)).expect("r2 keeps both VIPs");

    // r1 back: it preempts on both families.
    let mut r1 = spawn_dual(lab, "r1", 150, "minivrrp-2", notify);
    let t = wait_both(lab, &["r1"], settle)
        .unwrap_or_else(|e| panic!("preempt after SIGTERM: {e}\nr1 log:\n{}", r1.log_text()));
    eprintln!("preempt: both VIPs back on r1 after {t:?}");
    stays(lab, &["r1"], Duration::from_secs(1)).expect("r1 keeps both VIPs");

    // kill -9: r2 takes both after Master_Down_Interval; r1's VIPs lapse with their lease.
    r1.kill_hard();
    let t = wait_both(lab, &["r2"], Duration::from_secs(8))
        .unwrap_or_else(|e| panic!("after kill -9: {e}"));
    eprintln!("kill -9: both VIPs on r2 only after {t:?}");

    let r1 = spawn_dual(lab, "r1", 150, "minivrrp-3", notify);
    let t = wait_both(lab, &["r1"], settle)
        .unwrap_or_else(|e| panic!("preempt after kill -9: {e}\nr1 log:\n{}", r1.log_text()));
    eprintln!("preempt: both VIPs back on r1 after {t:?}");
    stays(lab, &["r1"], Duration::from_secs(1)).expect("r1 keeps both VIPs");
}

#[test]
fn dual_instance_against_keepalived_sync_group_pair() {
    let name = "dual_instance_against_keepalived_sync_group_pair";
    if !prereqs(name, true) {
        return;
    }
    let lab = Lab::with_routers("dsk", 2);
    let conf = keepalived_pair("r2", 100);
    master_stops_and_comes_back(&lab, &|| lab.spawn_keepalived_text("r2", &conf), None);
}

#[test]
fn dual_instance_against_dual_instance() {
    let name = "dual_instance_against_dual_instance";
    if !prereqs(name, false) {
        return;
    }
    let lab = Lab::with_routers("dsm", 2);
    // r1's notify script records each call: one line per instance transition, not one per
    // family router.
    let calls = lab.dir.join("notify.calls");
    let script = lab.dir.join("notify.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1 $2 $3 $4 prev=$MINIVRRP_PREV_STATE master=$MINIVRRP_MASTER\" >> {}\n",
            calls.display()
        ),
    )
    .unwrap();
    let mut perm = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&script, perm).unwrap();
    master_stops_and_comes_back(
        &lab,
        &|| spawn_dual(&lab, "r2", 100, "minivrrp-r2", None),
        Some(&script),
    );
    std::thread::sleep(Duration::from_millis(500));
    let text = std::fs::read_to_string(&calls).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    // Three runs of r1, each BACKUP then MASTER (the first two also stopped: SIGTERM gives
    // no notify here as there is no notify_stop; kill -9 none).
    let masters = lines.iter().filter(|l| l.contains(" MASTER ")).count();
    let backups = lines.iter().filter(|l| l.contains(" BACKUP ")).count();
    assert_eq!((backups, masters), (3, 3), "notify calls:\n{text}");
    for l in lines.iter().filter(|l| l.contains(" MASTER ")) {
        assert!(
            l.starts_with("INSTANCE lan MASTER 150 prev=BACKUP master="),
            "notify call: {l}"
        );
    }
}

#[test]
fn keepalived_pair_master_then_dual_minivrrp_backup_takes_both() {
    let name = "keepalived_pair_master_then_dual_minivrrp_backup_takes_both";
    if !prereqs(name, true) {
        return;
    }
    let lab = Lab::with_routers("dsb", 2);
    let mut r2 = lab.spawn_keepalived_text("r2", &keepalived_pair("r2", 150));
    let r1 = spawn_dual(&lab, "r1", 100, "minivrrp", None);
    wait_both(&lab, &["r2"], Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("election: {e}\nr2 log:\n{}", r2.log_text()));
    stays(&lab, &["r2"], Duration::from_secs(2)).expect("keepalived keeps both VIPs");
    assert_eq!(states(&lab, "r1"), ("BACKUP".to_string(), both("BACKUP")));
    r2.terminate();
    assert!(r2.wait_exit(Duration::from_secs(5)));
    let t = wait_both(&lab, &["r1"], Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("after SIGTERM of keepalived: {e}\n{}", r1.log_text()));
    eprintln!("keepalived SIGTERM: both VIPs on minivrrp after {t:?}");
    assert_eq!(states(&lab, "r1"), ("MASTER".to_string(), both("MASTER")));
    // The console view: one instance, both VIPs, a line per family.
    let o = Command::new(minivrrp_bin())
        .args(["status", "--socket"])
        .arg(lab.control_socket("r1"))
        .output()
        .expect("run minivrrp status");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    eprintln!("{text}");
    assert_eq!(text.matches("lan MASTER for").count(), 1, "{text}");
    assert!(text.contains(&format!("{V4}/24")) && text.contains(&format!("{V6}/64")));
    assert!(
        text.contains("  ipv4 MASTER  master 10.0.0.1  vips installed"),
        "{text}"
    );
    assert!(text.contains("  ipv6 MASTER  master fe80::"), "{text}");
}

#[test]
fn ipv6_only_higher_priority_sends_both_families_to_backup() {
    let name = "ipv6_only_higher_priority_sends_both_families_to_backup";
    if !prereqs(name, false) {
        return;
    }
    let lab = Lab::new("ds6");
    let cap = lab.capture("ds6");
    let r1_mac = lab.node("r1").mac;
    let r1 = spawn_dual(&lab, "r1", 150, "minivrrp", None);
    wait_both(&lab, &["r1"], Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("election: {e}\n{}", r1.log_text()));
    // r3 advertises VRID 50 on IPv6 only, priority 200.
    let mut r3 = lab.spawn_minivrrp_text("r3", &minivrrp_bin(), &ipv6_only_uci(200), "ipv6only");
    let (h6, _) = lab.wait_holders(V6, &["r3"], Duration::from_secs(5));
    assert_eq!(h6, vec!["r3"], "r3 log:\n{}", r3.log_text());
    let (h4, t) = lab.wait_holders(V4, &[], Duration::from_secs(3));
    assert!(
        h4.is_empty(),
        "the IPv4 VIP stayed on {h4:?}\n{}",
        r1.log_text()
    );
    eprintln!("IPv6-only priority 200: IPv4 VIP left r1 {t:?} after the IPv6 one moved");
    // Many Master_Down_Intervals (0.68 s): the IPv4 router never takes over alone. (A
    // flapping pair would hold the IPv4 VIP for a few ms each time, too short to sample:
    // its adverts in the capture tell.)
    std::thread::sleep(Duration::from_millis(300));
    let quiet_from = now_realtime();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        assert!(
            lab.holders(V4).is_empty(),
            "IPv4 VIP back on {:?} after {:?}\n{}",
            lab.holders(V4),
            start.elapsed(),
            r1.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(states(&lab, "r1"), ("BACKUP".to_string(), both("BACKUP")));
    // The instance says why: the IPv6 router's reason (the IPv4 one only followed it), and
    // the master it knows of, r3's link-local.
    let i = &status_json(&lab, "r1")["instances"][0];
    let reason = i["reason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("higher priority 200 from fe80::"),
        "reason: {reason}"
    );
    assert!(
        i["master"].as_str().unwrap_or("").starts_with("fe80::"),
        "{i}"
    );
    let sent: Vec<_> = cap
        .adverts(quiet_from)
        .into_iter()
        .filter(|(_, a, _)| a.src_mac == r1_mac)
        .collect();
    assert!(
        sent.is_empty(),
        "r1 advertised as BACKUP ({} adverts, first {:?})\n{}",
        sent.len(),
        sent.first(),
        r1.log_text()
    );
    // r3 leaves: r1 takes both families back.
    r3.terminate();
    assert!(r3.wait_exit(Duration::from_secs(5)));
    wait_both(&lab, &["r1"], Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("after r3 left: {e}\n{}", r1.log_text()));
    assert_eq!(states(&lab, "r1"), ("MASTER".to_string(), both("MASTER")));
}
