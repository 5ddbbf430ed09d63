//! Live interop of `auth_hmac` with keepalived 2.4 or later, which Debian 12 does not ship:
//! build keepalived from its source outside the repository and name the binary in
//! `KEEPALIVED_24`, then run (as root)
//! `KEEPALIVED_24=/path/to/sbin/keepalived cargo test --test lab auth_hmac_interop:: -- --ignored --nocapture`.
//! Ignored by default, so the suite and CI never need it; the wire format itself is checked
//! in CI by keepalived's own vectors (tests/auth_hmac_vectors.rs).
//!
//! For each of VRRPv3 IPv4, VRRPv3 IPv6, VRRPv2 IPv4 (multicast) and VRRPv3 IPv4 unicast, both
//! ways: the master (priority 200) is alone first, then the backup (100) starts; the backup
//! must stay backup with every signed advert accepted (minivrrp's status counters; keepalived's
//! log without an authentication complaint) and the VIP must stay on the master; then the
//! master stops (its signed priority-0 advert) and the backup takes over.

use crate::common;

use common::knobs::minivrrp_bin;
use common::lab::{self, Lab, VrrpSpec, LAN_IF};
use std::process::Command;
use std::time::Duration;

const VRID: u8 = 51;
const KEY: &str = "hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[derive(Clone, Copy, Debug)]
struct Case {
    version: u8,
    ipv6: bool,
    unicast: bool,
}

impl Case {
    fn vip(&self) -> (&'static str, &'static str) {
        if self.ipv6 {
            ("fd00::254", "fd00::254/64")
        } else {
            ("10.0.0.254", "10.0.0.254/24")
        }
    }

    fn peer_of(&self, lab: &Lab, node: &str) -> String {
        let other = if node == "r1" { "r2" } else { "r1" };
        let n = lab.node(other);
        if self.ipv6 {
            n.ipv6()
        } else {
            n.ipv4()
        }
    }
}

fn keepalived_conf(lab: &Lab, case: Case, node: &str, priority: u8) -> String {
    let unicast = if case.unicast {
        let own = lab.node(node).ipv4();
        let peer = case.peer_of(lab, node);
        format!("    unicast_src_ip {own}\n    unicast_peer {{\n        {peer}\n    }}\n")
    } else {
        String::new()
    };
    format!(
        "global_defs {{\n    router_id {node}\n}}\nvrrp_instance VI_1 {{\n    state BACKUP\n    interface {LAN_IF}\n    virtual_router_id {VRID}\n    priority {priority}\n    version {}\n    advert_int 1\n{unicast}    auth_hmac {{\n        key 1 {KEY}\n        active_key 1\n        anti_replay time\n        time_window 5\n    }}\n    virtual_ipaddress {{\n        {}\n    }}\n}}\n",
        case.version,
        case.vip().1
    )
}

fn minivrrp_conf(lab: &Lab, case: Case, node: &str, priority: u8) -> String {
    let mut s = VrrpSpec::new(VRID, priority, case.version, 1.0, case.vip().1);
    if case.unicast {
        s.unicast_peers = vec![case.peer_of(lab, node)];
    }
    s.extra_uci = vec![format!("list auth_hmac_key '1 {KEY}'")];
    lab::minivrrp_uci(node, std::slice::from_ref(&s))
}

fn status(lab: &Lab, node: &str) -> serde_json::Value {
    let o = Command::new(minivrrp_bin())
        .args(["status", "--json", "--socket"])
        .arg(lab.control_socket(node))
        .output()
        .expect("run minivrrp status");
    serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null)
}

/// keepalived's log lines about a refused trailer (vrrp.c's rate-limited messages).
fn keepalived_complaints(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("authentication trailer")
                || l.contains("authentication HMAC")
                || l.contains("authentication key id")
                || l.contains("too long")
        })
        .collect()
}

/// One way of one case: `ka_master` says which side is the master. Returns a summary line.
fn run(lab: &Lab, ka: &str, case: Case, ka_master: bool) -> String {
    let (vip, vip_cidr) = case.vip();
    let (ka_prio, mv_prio) = if ka_master { (200, 100) } else { (100, 200) };
    let start_ka =
        |_: ()| lab.spawn_keepalived_bin("r1", ka, &keepalived_conf(lab, case, "r1", ka_prio));
    let start_mv = |_: ()| {
        lab.spawn_minivrrp_text(
            "r2",
            &minivrrp_bin(),
            &minivrrp_conf(lab, case, "r2", mv_prio),
            "mv",
        )
    };
    let (master_node, backup_node) = if ka_master {
        ("r1", "r2")
    } else {
        ("r2", "r1")
    };
    let (mut m, mut b) = if ka_master {
        let m = start_ka(());
        let (h, _) = lab.wait_holders(vip, &[master_node], Duration::from_secs(15));
        assert_eq!(
            h,
            [master_node],
            "{case:?}: keepalived not master:\n{}",
            m.log_text()
        );
        (m, start_mv(()))
    } else {
        let m = start_mv(());
        let (h, _) = lab.wait_holders(vip, &[master_node], Duration::from_secs(15));
        assert_eq!(
            h,
            [master_node],
            "{case:?}: minivrrp not master:\n{}",
            m.log_text()
        );
        (m, start_ka(()))
    };
    // The backup hears the master for longer than its Master_Down_Interval (~3.6 s).
    let mut kept = true;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(200));
        kept &= lab.holders(vip) == [master_node];
    }
    assert!(
        kept,
        "{case:?} ka_master={ka_master}: the VIP moved\n{}",
        lab::logs(&[&m, &b])
    );
    let v = status(lab, if ka_master { backup_node } else { master_node });
    let auth = &v["instances"][0]["auth_hmac"]["outcomes"];
    let ka_log = if ka_master {
        m.log_text()
    } else {
        b.log_text()
    };
    let complaints = keepalived_complaints(&ka_log);
    let accepted = auth["accepted"].as_u64().unwrap_or(0);
    if ka_master {
        assert!(
            accepted >= 3,
            "{case:?}: minivrrp accepted {auth}\n{}",
            lab::logs(&[&m, &b])
        );
        for bad in [
            "missing",
            "malformed",
            "unknown_key",
            "bad_mac",
            "stale",
            "replayed",
        ] {
            assert_eq!(
                auth[bad],
                0,
                "{case:?}: {bad}: {auth}\n{}",
                lab::logs(&[&m, &b])
            );
        }
    }
    assert!(
        complaints.is_empty(),
        "{case:?}: keepalived refused: {complaints:?}\n{}",
        lab::logs(&[&m, &b])
    );
    assert_eq!(
        lab::transitions(&b.log_text()).saturating_sub(1),
        0,
        "{case:?}: the backup changed state more than once\n{}",
        lab::logs(&[&m, &b])
    );
    // The master leaves: the backup takes over on its signed priority-0 advert.
    m.terminate();
    m.wait_exit(Duration::from_secs(5));
    let (h, took) = lab.wait_holders(vip, &[backup_node], Duration::from_secs(10));
    assert_eq!(
        h,
        [backup_node],
        "{case:?}: no takeover\n{}",
        lab::logs(&[&b])
    );
    b.terminate();
    b.wait_exit(Duration::from_secs(5));
    lab.del_addr("r1", vip_cidr);
    lab.del_addr("r2", vip_cidr);
    let heard = if ka_master {
        format!("minivrrp backup accepted {accepted} signed adverts, refused none")
    } else {
        "keepalived backup stayed backup, no authentication complaint".to_string()
    };
    format!(
        "{:<20} {:<18} VIP stayed on the master 6 s; {heard}; backup took over {took:.2?} after the master stopped",
        format!(
            "v{} {}{}",
            case.version,
            if case.ipv6 { "IPv6" } else { "IPv4" },
            if case.unicast { " unicast" } else { " multicast" }
        ),
        if ka_master { "keepalived master" } else { "minivrrp master" },
    )
}

#[test]
#[ignore]
fn keepalived_24_and_minivrrp_hold_a_mixed_pair_both_ways() {
    let name = "keepalived_24_and_minivrrp_hold_a_mixed_pair_both_ways";
    let Ok(ka) = std::env::var("KEEPALIVED_24") else {
        eprintln!("not run {name}: KEEPALIVED_24 names no keepalived 2.4 binary");
        return;
    };
    require!(root);
    let version = Command::new(&ka).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stderr)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let lab = Lab::with_routers("hmacka", 2);
    let cases = [
        Case {
            version: 3,
            ipv6: false,
            unicast: false,
        },
        Case {
            version: 3,
            ipv6: true,
            unicast: false,
        },
        Case {
            version: 2,
            ipv6: false,
            unicast: false,
        },
        Case {
            version: 3,
            ipv6: false,
            unicast: true,
        },
    ];
    let mut lines = Vec::new();
    for case in cases {
        for ka_master in [true, false] {
            lines.push(run(&lab, &ka, case, ka_master));
        }
    }
    eprintln!("auth_hmac interop with {version}:");
    for l in lines {
        eprintln!("  {l}");
    }
}
