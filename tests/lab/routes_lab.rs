//! Routes that follow the state, in the kernel's routing tables: each router has a WAN link
//! (`wan0`, one end of a veth pair, 10.9.0.2/24) and minivrrp carries
//! `route 'default via 10.9.0.9 dev wan0'` (on the master only, keepalived `virtual_routes`)
//! and `backup_route 'default via 10.0.0.254'` (a backup reaches the Internet through the
//! master's LAN VIP). r1 (150) is master first; after its graceful stop the WAN default is on
//! r2 and gone from r1. Then keepalived on r1 with the same route in `virtual_routes`
//! preempts r2: it installs the same default route minivrrp did (compared as `ip route`
//! prints it, without the `proto` word), and r2 goes back to its backup route.
//!
//! Run as root: `cargo test --test lab routes_lab::` (needs keepalived, ip).

use crate::common;

use common::lab::{self, Lab};
use std::path::Path;
use std::time::Duration;

const VIP: &str = "10.0.0.254";
const WAN_DEFAULT: &str = "default via 10.9.0.9 dev wan0";
const BACKUP_DEFAULT: &str = "default via 10.0.0.254 dev br-lan";

fn minivrrp_conf(priority: u8) -> String {
    format!(
        "config instance 'vi64'
	option interface 'br-lan'
	option vrid '64'
	option priority '{priority}'
	option garp_delay '0'
	list vip '10.0.0.254/24'
	list route 'default via 10.9.0.9 dev wan0'
	list backup_route 'default via 10.0.0.254'
"
    )
}

const KEEPALIVED: &str = "vrrp_instance vi64 {
    state BACKUP
    interface br-lan
    virtual_router_id 64
    priority 150
    virtual_ipaddress {
        10.0.0.254/24 dev br-lan
    }
    virtual_routes {
        0.0.0.0/0 via 10.9.0.9 dev wan0
    }
}
";

/// The default routes of a node's main table as `ip route` prints them, without `proto X`
/// (minivrrp says `static`, keepalived its own number) and trailing blanks.
fn defaults(lab: &Lab, node: &str) -> Vec<String> {
    let out = lab.exec(node, &["ip", "-4", "route", "show", "default"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut v: Vec<String> = text
        .lines()
        .map(lab::without_proto)
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

fn wait_defaults(lab: &Lab, node: &str, want: &[&str]) -> bool {
    lab::wait_until(Duration::from_secs(10), || defaults(lab, node) == want).is_some()
}

#[test]
fn default_route_follows_mastership_and_matches_keepalived() {
    require!(root, "keepalived");
    let lab = Lab::with_routers("routes", 2);
    lab.add_wan0("r1");
    lab.add_wan0("r2");
    let bin = Path::new(env!("CARGO_BIN_EXE_minivrrp"));
    let r2 = lab.spawn_minivrrp_text("r2", bin, &minivrrp_conf(100), "minivrrp");
    assert!(
        wait_defaults(&lab, "r2", &[BACKUP_DEFAULT]),
        "backup r2 has {:?}\n{}",
        defaults(&lab, "r2"),
        r2.log_text()
    );
    let r1 = lab.spawn_minivrrp_text("r1", bin, &minivrrp_conf(150), "minivrrp");
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(h, ["r1"], "r1 did not win\n{}", r1.log_text());
    assert!(
        wait_defaults(&lab, "r1", &[WAN_DEFAULT]),
        "master r1 has {:?}\n{}",
        defaults(&lab, "r1"),
        r1.log_text()
    );
    let mini = defaults(&lab, "r1");
    assert_eq!(defaults(&lab, "r2"), [BACKUP_DEFAULT], "backup r2");

    // Graceful stop: the route leaves r1 with the VIP and appears on the new master.
    r1.terminate();
    assert!(
        wait_defaults(&lab, "r2", &[WAN_DEFAULT]),
        "new master r2 has {:?}\n{}",
        defaults(&lab, "r2"),
        r2.log_text()
    );
    assert!(
        wait_defaults(&lab, "r1", &[]),
        "stopped r1 left {:?}",
        defaults(&lab, "r1")
    );
    assert_eq!(lab.holders(VIP), ["r2"]);

    // keepalived on r1 with the same route preempts r2 (priority 150 > 100).
    let k1 = lab.spawn_keepalived_text("r1", KEEPALIVED);
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(h, ["r1"], "keepalived did not preempt\n{}", k1.log_text());
    assert!(
        wait_defaults(&lab, "r1", &[WAN_DEFAULT]),
        "keepalived master r1 has {:?}\n{}",
        defaults(&lab, "r1"),
        k1.log_text()
    );
    assert!(
        wait_defaults(&lab, "r2", &[BACKUP_DEFAULT]),
        "r2 back to backup has {:?}\n{}",
        defaults(&lab, "r2"),
        r2.log_text()
    );
    let keep = defaults(&lab, "r1");
    eprintln!("minivrrp master: {mini:?}\nkeepalived master: {keep:?}");
    assert_eq!(
        mini, keep,
        "minivrrp and keepalived install different routes"
    );
}
