//! VIPs with `dev` / `label` / `scope` in the kernel's tables: one instance on br-lan also
//! moves an address on a second interface (`wan0`, one end of a veth pair inside each router), with a label, and
//! that address has site scope (Linux 6.18 refuses a non-global scope for an IPv4 address
//! inside the subnet of the interface's primary one: "ipv4: Invalid scope value"). minivrrp (r1, priority 150) and keepalived (r2, 100, the
//! same addresses in keepalived syntax) must install exactly the same addresses when master
//! (compared as `ip -o addr` prints them), the GARP for the wan0 address goes out on wan0, and
//! r1's graceful stop removes both addresses, which keepalived then takes over.
//!
//! Run as root: `cargo test --test lab vip_dev_lab::` (needs keepalived, tcpdump, ip).

use crate::common;

use common::lab::{self, Lab};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const LAN_VIP: &str = "10.0.0.254";
const WAN_VIP: &str = "10.9.0.1";

const MINIVRRP: &str = "config instance 'vi62'
	option interface 'br-lan'
	option vrid '62'
	option priority '150'
	option garp_delay '0'
	list vip '10.0.0.254/24'
	list vip '10.9.0.1/32 dev wan0 label wan0:vip scope site'
";

const KEEPALIVED: &str = "vrrp_instance vi62 {
    state BACKUP
    interface br-lan
    virtual_router_id 62
    priority 100
    virtual_ipaddress {
        10.0.0.254/24 dev br-lan
        10.9.0.1/32 dev wan0 label wan0:vip scope site
    }
}
";

/// The VIP lines of `ip -o -4 addr show` in a node, without the per-node parts
/// (interface index, lifetimes) and without `dynamic`: minivrrp installs VIPs with a lease
/// (`vip_lifetime`, dead-man VIPs), keepalived permanently; that difference is intended.
fn vip_lines(lab: &Lab, node: &str) -> Vec<String> {
    let out = lab.exec(node, &["ip", "-o", "-4", "addr", "show"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| l.contains(LAN_VIP) || l.contains(WAN_VIP))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take_while(|w| *w != "valid_lft")
                .filter(|w| *w != "dynamic")
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn vips_on_another_dev_with_label_and_scope_match_keepalived() {
    require!(root, "keepalived", "tcpdump");
    let lab = Lab::with_routers("vipdev", 2);
    lab.add_wan0("r1");
    lab.add_wan0("r2");
    // Listen on r1's wan0 for the announcement of the wan0 VIP before r1 starts.
    let ns = lab.node("r1").ns.clone();
    let garp_file = lab.dir.join("r1-wan0.txt");
    let tcpdump = Command::new("ip")
        .args([
            "netns", "exec", &ns, "timeout", "20", "tcpdump", "-l", "-n", "-c", "1", "-i", "wan0",
            "arp",
        ])
        .stdout(std::fs::File::create(&garp_file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(700));

    let r2 = lab.spawn_keepalived_text("r2", KEEPALIVED);
    let bin = Path::new(env!("CARGO_BIN_EXE_minivrrp"));
    let r1 = lab.spawn_minivrrp_text("r1", bin, MINIVRRP, "minivrrp");
    let (h, _) = lab.wait_holders(LAN_VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(
        h,
        ["r1"],
        "r1 did not win\n{}\n{}",
        r1.log_text(),
        r2.log_text()
    );
    assert!(
        lab::wait_until(Duration::from_secs(3), || vip_lines(&lab, "r1").len() == 2).is_some(),
        "r1 (minivrrp master) has {:?}\n{}",
        vip_lines(&lab, "r1"),
        r1.log_text()
    );
    let mini = vip_lines(&lab, "r1");
    assert!(vip_lines(&lab, "r2").is_empty(), "backup r2 holds VIPs");
    let mut tcpdump = tcpdump;
    let _ = tcpdump.wait();
    let garp = std::fs::read_to_string(&garp_file).unwrap_or_default();
    assert!(
        garp.contains(WAN_VIP),
        "no ARP announcement of {WAN_VIP} on r1's wan0: {garp:?}"
    );

    // Graceful stop: r1 removes both addresses; keepalived takes over and installs its own.
    r1.terminate();
    assert!(
        lab::wait_until(Duration::from_secs(10), || vip_lines(&lab, "r2").len() == 2).is_some(),
        "keepalived did not take over: {:?}\n{}",
        vip_lines(&lab, "r2"),
        r2.log_text()
    );
    assert!(
        vip_lines(&lab, "r1").is_empty(),
        "r1 left {:?}",
        vip_lines(&lab, "r1")
    );
    let keep = vip_lines(&lab, "r2");
    eprintln!("minivrrp master: {mini:?}\nkeepalived master: {keep:?}");
    assert_eq!(
        mini, keep,
        "minivrrp and keepalived install different addresses"
    );
}

/// `vip_excluded` (keepalived `virtual_ipaddress_excluded`): configured on the master, not in
/// its adverts, and of any family. r1 minivrrp (150) and r2 keepalived (100) carry the same
/// advertised and excluded addresses; r1's adverts list only the advertised one, the backup
/// keepalived accepts them (stays backup), and after r1's graceful stop keepalived installs the
/// excluded addresses as well.
#[test]
fn excluded_vips_are_installed_but_not_advertised() {
    require!(root, "keepalived", "tcpdump");
    let lab = Lab::with_routers("vipexc", 2);
    let cap = lab.capture("vipexc");
    let r2 = lab.spawn_keepalived_text(
        "r2",
        "vrrp_instance vi63 {
    state BACKUP
    interface br-lan
    virtual_router_id 63
    priority 100
    virtual_ipaddress {
        10.0.0.254/24
    }
    virtual_ipaddress_excluded {
        10.0.0.253/24
        fd00::253/64
    }
}
",
    );
    let bin = Path::new(env!("CARGO_BIN_EXE_minivrrp"));
    let r1 = lab.spawn_minivrrp_text(
        "r1",
        bin,
        "config instance 'vi63'
	option interface 'br-lan'
	option vrid '63'
	option priority '150'
	list vip '10.0.0.254/24'
	list vip_excluded '10.0.0.253/24'
	list vip_excluded 'fd00::253/64'
",
        "minivrrp",
    );
    let (h, _) = lab.wait_holders(LAN_VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(
        h,
        ["r1"],
        "r1 did not win\n{}\n{}",
        r1.log_text(),
        r2.log_text()
    );
    let since = lab::now_realtime();
    std::thread::sleep(Duration::from_secs(3));
    for a in ["10.0.0.253", "fd00::253"] {
        assert_eq!(
            lab.holders(a),
            ["r1"],
            "excluded {a} not on the master only"
        );
    }
    assert_eq!(
        lab.holders(LAN_VIP),
        ["r1"],
        "keepalived did not stay backup\n{}",
        r2.log_text()
    );
    let r1_mac = lab.node("r1").mac;
    let ads: Vec<_> = cap
        .adverts(since)
        .into_iter()
        .filter(|(_, a, _)| a.src_mac == r1_mac)
        .collect();
    assert!(ads.len() >= 2, "too few adverts from r1: {ads:?}");
    let lan: std::net::IpAddr = LAN_VIP.parse().unwrap();
    for (_, a, _) in &ads {
        assert_eq!(a.addrs, [lan], "r1 advertised {:?}", a.addrs);
    }
    r1.terminate();
    assert!(
        lab::wait_until(Duration::from_secs(10), || lab.holders("fd00::253")
            == ["r2"])
        .is_some(),
        "keepalived did not take over the excluded address\n{}",
        r2.log_text()
    );
    assert_eq!(lab.holders("10.0.0.253"), ["r2"]);
    assert_eq!(lab.holders(LAN_VIP), ["r2"]);
}
