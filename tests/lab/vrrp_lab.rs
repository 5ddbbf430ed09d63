//! End-to-end tests of the minivrrp daemon in the namespace lab (tests/common/lab.rs): real
//! processes, real packet sockets, a bridge capture as the witness of what went on the wire.
//!
//! Run as root: `cargo test --test lab vrrp_lab::` (needs tcpdump, ping, ip). Without root every test
//! prints SKIP (and fails under CI=true). `MVLAB_KEEP_DIR=1` keeps each lab's temp dir (configs,
//! daemon logs, pcaps). Timing is checked only against generous protocol bounds
//! (2 × Master_Down_Interval + slack); figures come from `cargo bench --bench failover`.

use crate::common;

use common::lab::{self, logs, Lab, Proc, VrrpSpec};
use common::pcap::{self, Advert, Kind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const VIP: &str = "10.0.0.254";
const VIP_CIDR: &str = "10.0.0.254/24";
const VIP6: &str = "fd00::254";
const VIP6_CIDR: &str = "fd00::254/64";
/// RFC 5798 5.1.1.2 / 5.1.2.2: the IPv4 and IPv6 VRRP multicast MACs.
const MCAST_V4: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_minivrrp"))
}

/// How long an election may take from the daemons' start: the highest-priority backup's
/// Master_Down_Interval, doubled, plus process start-up under a loaded machine.
fn election_bound(s: &VrrpSpec) -> Duration {
    s.master_down_interval() * 2 + Duration::from_secs(4)
}

/// How long a takeover may take after the master vanished (RFC 5798 6.4.2: Master_Down_Interval).
fn takeover_bound(s: &VrrpSpec) -> Duration {
    s.master_down_interval() * 2 + Duration::from_secs(2)
}

fn start(lab: &Lab, node: &str, specs: &[VrrpSpec]) -> Proc {
    lab.spawn_minivrrp(node, &bin(), specs)
}

/// Waits until exactly `want` hold `addr`; panics with the daemons' logs otherwise.
fn expect_holders(lab: &Lab, addr: &str, want: &[&str], bound: Duration, procs: &[&Proc]) {
    let (h, took) = lab.wait_holders(addr, want, bound);
    let mut w: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    w.sort();
    assert_eq!(
        h,
        w,
        "{addr}: holders {h:?} after {took:?}, wanted {want:?}\n{}",
        logs(procs)
    );
}

/// Samples the holders of `addr` for `dur`; every sample must be exactly `want`.
fn holders_stay(lab: &Lab, addr: &str, want: &[&str], dur: Duration, procs: &[&Proc]) {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < dur {
        let mut h = lab.holders(addr);
        h.sort();
        assert_eq!(
            h,
            want,
            "{addr}: holders changed to {h:?} after {:?} (sample {n})\n{}",
            start.elapsed(),
            logs(procs)
        );
        n += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(n > 0);
}

fn adverts_from(cap: &lab::Capture, mac: [u8; 6], since: Duration) -> Vec<(Duration, Advert)> {
    cap.adverts(since)
        .into_iter()
        .filter(|(_, a, _)| a.src_mac == mac)
        .map(|(t, a, _)| (t, a))
        .collect()
}

/// Lines of a daemon log that report a VRRP state transition (`I vi1: BACKUP -> MASTER (...)`);
/// the SIGUSR1 dump lines carry no arrow.
fn transitions(log: &str) -> usize {
    log.lines()
        .filter(|l| {
            let u = l.to_ascii_uppercase();
            (u.contains("MASTER") || u.contains("BACKUP") || u.contains("FAULT"))
                && l.contains(" -> ")
        })
        .count()
}

/// RFC 5798 6.4.1/6.4.3: three routers start; the highest priority becomes master, the VIP lives
/// only on it, only it advertises once the election settled, and the client reaches the VIP.
#[test]
fn highest_priority_becomes_the_only_master_6_4_1() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::new("elect");
    let cap = lab.capture("elect");
    let s = |p: u8| VrrpSpec::new(50, p, 3, 0.5, VIP_CIDR);
    let r3 = start(&lab, "r3", &[s(50)]);
    let r2 = start(&lab, "r2", &[s(100)]);
    let r1 = start(&lab, "r1", &[s(150)]);
    let all = [&r1, &r2, &r3];
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(50)), &all);
    // Let the backups hear adverts for a while; the VIP must never move or be duplicated.
    std::thread::sleep(Duration::from_secs(1));
    let settled = lab::now_realtime();
    holders_stay(&lab, VIP, &["r1"], Duration::from_secs(3), &all);
    let ads = cap.adverts(settled);
    assert!(ads.len() >= 4, "too few adverts in 3 s: {ads:?}");
    for (_, a, dst) in &ads {
        assert_eq!(a.src_mac, lab.node("r1").mac, "advert not from r1: {a:?}");
        assert_eq!(
            (a.version, a.vrid, a.priority, a.interval),
            (3, 50, 150, 50)
        );
        assert_eq!(a.src_ip, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(a.addrs, vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254))]);
        assert_eq!(*dst, MCAST_V4);
    }
    // RFC 5798 5.1.1.3: TTL 255 (receivers drop anything else); the IPv4 header is at 14.
    let frames = cap.read();
    let r1_frames: Vec<_> = frames
        .frames
        .iter()
        .filter(|f| matches!(pcap::classify(&f.data), Kind::Vrrp(ref a) if a.priority == 150))
        .collect();
    assert!(!r1_frames.is_empty());
    for f in r1_frames {
        assert_eq!(f.data[14 + 8], 255, "advert TTL");
    }
    assert!(lab.client_pings(VIP), "client cannot ping the VIP");
}

/// RFC 5798 6.4.2: after `kill -9` of the master the backup takes over within
/// Master_Down_Interval, announces the VIP with gratuitous ARP (RFC 5798 6.4.2 / 8.1.1) so the
/// client's ARP cache now points at the new master, and the VIP answers again. SIGKILL leaves the
/// old master's VIP configured; when it restarts it removes that stale VIP at once (before any
/// election) and, having the higher priority, preempts back.
#[test]
fn backup_takes_over_after_master_kill_and_restart_removes_stale_vip_then_preempts_6_4_2() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::with_routers("kill", 2);
    let cap = lab.capture("kill");
    // Permanent VIPs (keepalived's way): the leased default would expire the dead master's VIP
    // by itself (tests/lab/fault_matrix.rs), and this test is about clearing it at restart.
    let s = |p: u8| {
        let mut v = VrrpSpec::new(50, p, 3, 0.5, VIP_CIDR);
        v.extra_uci.push("option vip_lifetime '0'".into());
        v
    };
    let mut r1 = start(&lab, "r1", &[s(150)]);
    let r2 = start(&lab, "r2", &[s(100)]);
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &[&r1, &r2]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(lab.client_pings(VIP), "client cannot ping the VIP on r1");
    let (mac, _) = lab
        .neigh("client", VIP)
        .expect("client has no ARP entry for the VIP");
    assert_eq!(mac, lab.node("r1").mac_str());

    let r2_mac = lab.node("r2").mac;
    let t_kill = r1.kill_hard();
    let bound = takeover_bound(&s(100));
    let took = lab::wait_until(bound, || lab.node_has_addr("r2", VIP));
    assert!(
        took.is_some(),
        "r2 did not take over within {bound:?}\n{}",
        logs(&[&r2])
    );
    // SIGKILL gave r1 no chance to remove its VIP.
    assert!(
        lab.node_has_addr("r1", VIP),
        "r1's VIP vanished after SIGKILL?"
    );
    let adv = cap
        .wait_for(
            t_kill,
            Duration::from_secs(2),
            |k| matches!(k, Kind::Vrrp(a) if a.src_mac == r2_mac && a.priority == 100),
        )
        .expect("no advert from r2 after the kill");
    assert!(
        adv.ts - t_kill <= bound,
        "first r2 advert {:?} after kill",
        adv.ts - t_kill
    );
    let garp = cap
        .wait_for(t_kill, Duration::from_secs(2), |k| {
            matches!(k, Kind::Garp { sender_ip, sender_mac }
                if *sender_mac == r2_mac && *sender_ip == Ipv4Addr::new(10, 0, 0, 254))
        })
        .expect("no gratuitous ARP from r2 after the kill");
    eprintln!(
        "kill -9: r2 advert +{:?}, GARP +{:?}",
        adv.ts - t_kill,
        garp.ts.saturating_sub(t_kill)
    );
    // The GARP updated the client's existing entry: no new ARP resolution needed.
    let (mac, state) = lab.neigh("client", VIP).expect("client lost its ARP entry");
    assert_eq!(
        mac,
        lab.node("r2").mac_str(),
        "client ARP entry not updated ({state})"
    );
    assert!(
        lab.client_pings(VIP),
        "client cannot ping the VIP after failover"
    );
    let (mac, _) = lab.neigh("client", VIP).unwrap();
    assert_eq!(mac, lab.node("r2").mac_str());

    // Restart r1: the stale VIP must go at start-up, well before r1 can win the election
    // (it first waits Master_Down_Interval as a backup).
    let t_restart = Instant::now();
    let r1b = lab.spawn_minivrrp("r1", &bin(), &[s(150)]);
    let gone = lab::wait_until(s(150).master_down_interval(), || {
        !lab.node_has_addr("r1", VIP)
    });
    assert!(
        gone.is_some(),
        "restarted r1 kept the stale VIP for {:?}\n{}",
        t_restart.elapsed(),
        r1b.log_text()
    );
    eprintln!("stale VIP removed {:?} after restart", gone.unwrap());
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &[&r1b, &r2]);
    let (mac, _) = lab.neigh("client", VIP).unwrap();
    assert_eq!(
        mac,
        lab.node("r1").mac_str(),
        "client not pointed back to r1"
    );
    assert!(lab.client_pings(VIP));
}

/// RFC 3768 (VRRPv2, 1 s) link failure: the master's interface goes down, the backup takes over;
/// when it comes back the higher-priority router preempts (RFC 3768 6.4.3) and only it holds
/// the VIP.
#[test]
fn v2_backup_takes_over_on_master_link_down_and_master_preempts_after_link_up_3768_6_4_3() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::with_routers("link", 2);
    let s = |p: u8| VrrpSpec::new(51, p, 2, 1.0, VIP_CIDR);
    let r1 = start(&lab, "r1", &[s(150)]);
    let r2 = start(&lab, "r2", &[s(100)]);
    let all = [&r1, &r2];
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &all);
    std::thread::sleep(Duration::from_millis(1500));
    lab.set_link("r1", false);
    let bound = takeover_bound(&s(100));
    let took = lab::wait_until(bound, || lab.node_has_addr("r2", VIP));
    assert!(took.is_some(), "r2 did not take over\n{}", logs(&all));
    eprintln!(
        "link down: r2 holds the VIP after {:?}; r1 holds it too: {}",
        took.unwrap(),
        lab.node_has_addr("r1", VIP)
    );
    assert!(lab.client_pings(VIP), "VIP unreachable with r1's link down");
    lab.set_link("r1", true);
    assert!(lab.wait_oper_up("r1", Duration::from_secs(5)));
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &all);
    holders_stay(&lab, VIP, &["r1"], Duration::from_secs(2), &all);
    assert!(lab.client_pings(VIP));
}

/// RFC 5798 6.4.2 with Preempt_Mode false: a higher-priority router that starts while another
/// is master stays backup (sends no advert, takes no VIP); it takes over once the master leaves.
#[test]
fn nopreempt_backup_does_not_take_over_from_lower_priority_master_6_4_2() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::with_routers("nopre", 2);
    let cap = lab.capture("nopre");
    let s = |p: u8, preempt: bool| {
        let mut v = VrrpSpec::new(52, p, 3, 0.5, VIP_CIDR);
        v.preempt = preempt;
        v
    };
    let r2 = start(&lab, "r2", &[s(100, true)]);
    expect_holders(&lab, VIP, &["r2"], election_bound(&s(100, true)), &[&r2]);
    let t1 = lab::now_realtime();
    let r1 = start(&lab, "r1", &[s(150, false)]);
    // Three of r1's own Master_Down_Intervals: ample time to preempt if it wrongly would.
    holders_stay(
        &lab,
        VIP,
        &["r2"],
        s(150, false).master_down_interval() * 3,
        &[&r1, &r2],
    );
    let r1_ads = adverts_from(&cap, lab.node("r1").mac, t1);
    assert!(r1_ads.is_empty(), "nopreempt r1 advertised: {r1_ads:?}");
    // It is a working backup: it takes over when r2 stops.
    drop(r2);
    expect_holders(&lab, VIP, &["r1"], takeover_bound(&s(150, false)), &[&r1]);
}

/// RFC 5798 6.4.3: on SIGTERM the master sends an advert with priority 0, removes its VIPs and
/// exits 0; the backup then takes over after Skew_Time instead of Master_Down_Interval
/// (RFC 5798 6.4.2).
#[test]
fn sigterm_sends_priority_zero_and_backup_takes_over_after_skew_time_6_4_3() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::with_routers("term", 2);
    let cap = lab.capture("term");
    // 1 s adverts make Master_Down (3.6 s) and Skew (0.6 s) far apart, so the test can tell them.
    let s = |p: u8| VrrpSpec::new(53, p, 3, 1.0, VIP_CIDR);
    let mut r1 = start(&lab, "r1", &[s(150)]);
    let r2 = start(&lab, "r2", &[s(100)]);
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &[&r1, &r2]);
    std::thread::sleep(Duration::from_millis(2500));
    let (r1_mac, r2_mac) = (lab.node("r1").mac, lab.node("r2").mac);
    let t = r1.terminate();
    assert!(
        r1.wait_exit(Duration::from_secs(5)),
        "r1 did not exit on SIGTERM"
    );
    let st = r1.exit_status().unwrap();
    assert_eq!(st.code(), Some(0), "exit status {st:?}\n{}", r1.log_text());
    assert!(
        !lab.node_has_addr("r1", VIP),
        "r1 left its VIP after SIGTERM"
    );
    let zero = cap
        .wait_for(
            t,
            Duration::from_secs(2),
            |k| matches!(k, Kind::Vrrp(a) if a.src_mac == r1_mac && a.priority == 0),
        )
        .expect("no priority-0 advert from r1");
    let adv = cap
        .wait_for(
            t,
            Duration::from_secs(5),
            |k| matches!(k, Kind::Vrrp(a) if a.src_mac == r2_mac && a.priority == 100),
        )
        .expect("no advert from r2 after r1 stopped");
    let after = adv.ts.saturating_sub(zero.ts);
    let skew = s(100).skew_time();
    eprintln!(
        "prio-0 advert +{:?}, r2 advert {after:?} after it (Skew_Time {skew:?})",
        zero.ts - t
    );
    // Generous, yet below Master_Down_Interval (3.6 s): r2 used Skew_Time.
    assert!(
        after <= skew + Duration::from_millis(1500),
        "r2 took {after:?} after the priority-0 advert (Skew_Time {skew:?})"
    );
    expect_holders(&lab, VIP, &["r2"], Duration::from_secs(3), &[&r2]);
    assert!(lab.client_pings(VIP));
}

/// RFC 5798 with an IPv6 VIP: adverts come from the router's link-local address, the new master
/// announces the VIP with an unsolicited Neighbor Advertisement (RFC 5798 6.4.2, RFC 4861 7.2.6)
/// after the old one is killed, and the client's neighbour entry follows it.
#[test]
fn ipv6_vip_fails_over_with_unsolicited_neighbor_advertisement_5798_6_4_2() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::with_routers("v6", 2);
    let cap = lab.capture("v6");
    let s = |p: u8| VrrpSpec::v6(54, p, 0.5, VIP6_CIDR);
    let mut r1 = start(&lab, "r1", &[s(150)]);
    let r2 = start(&lab, "r2", &[s(100)]);
    expect_holders(&lab, VIP6, &["r1"], election_bound(&s(100)), &[&r1, &r2]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(lab.client_pings(VIP6), "client cannot ping the IPv6 VIP");
    let (r1_mac, r2_mac) = (lab.node("r1").mac, lab.node("r2").mac);
    let ads = adverts_from(&cap, r1_mac, Duration::ZERO);
    let (_, a) = ads.last().expect("no IPv6 advert from r1");
    match a.src_ip {
        IpAddr::V6(ip) => assert_eq!(ip.segments()[0], 0xfe80, "advert source {ip}"),
        ip => panic!("IPv6 advert from {ip}"),
    }
    assert_eq!(a.addrs, vec![IpAddr::V6(VIP6.parse().unwrap())]);
    assert_eq!(a.version, 3);
    // RFC 5798 5.1.2.3: hop limit 255 (byte 7 of the IPv6 header, at 14).
    let frames = cap.read();
    let hops: Vec<u8> = frames
        .frames
        .iter()
        .filter(|f| matches!(pcap::classify(&f.data), Kind::Vrrp(ref a) if a.src_mac == r1_mac))
        .map(|f| f.data[14 + 7])
        .collect();
    assert!(
        !hops.is_empty() && hops.iter().all(|h| *h == 255),
        "hop limits {hops:?}"
    );
    let vip6: Ipv6Addr = VIP6.parse().unwrap();
    let t = r1.kill_hard();
    let took = lab::wait_until(takeover_bound(&s(100)), || lab.node_has_addr("r2", VIP6));
    assert!(took.is_some(), "r2 did not take over\n{}", r2.log_text());
    let na = cap
        .wait_for(t, Duration::from_secs(2), |k| {
            matches!(k, Kind::UnsolicitedNa { target, src_mac } if *src_mac == r2_mac && *target == vip6)
        })
        .expect("no unsolicited NA for the VIP from r2");
    eprintln!("IPv6 kill -9: r2 unsolicited NA +{:?}", na.ts - t);
    assert!(
        lab.client_pings(VIP6),
        "IPv6 VIP unreachable after failover"
    );
    let (mac, _) = lab
        .neigh("client", VIP6)
        .expect("client has no neighbour entry");
    assert_eq!(mac, lab.node("r2").mac_str());
}

/// RFC 5798 7.3: with `use_vmac` the master sends adverts and answers for the VIP from the
/// virtual router MAC 00:00:5e:00:01:VRID, on a macvlan holding the VIP; after a handover the
/// MAC stays the same, so the client's ARP entry needs no update at all.
#[test]
fn vmac_mode_uses_the_virtual_router_mac_7_3() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::with_routers("vmac", 2);
    let cap = lab.capture("vmac");
    let s = |p: u8| {
        let mut v = VrrpSpec::new(55, p, 3, 0.5, VIP_CIDR);
        v.use_vmac = true;
        v
    };
    let vmac = s(1).virtual_mac();
    let mut r1 = start(&lab, "r1", &[s(150)]);
    let r2 = start(&lab, "r2", &[s(100)]);
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &[&r1, &r2]);
    std::thread::sleep(Duration::from_secs(1));
    let out = lab.exec("r1", &["ip", "-o", "addr", "show", "to", VIP]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !text.contains(" br-lan ") && text.contains("10.0.0.254"),
        "VIP not on a macvlan: {text}"
    );
    let out = lab.exec("r1", &["ip", "-o", "link", "show"]);
    let links = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        links.contains(&pcap::mac_str(&vmac)),
        "no interface with the VMAC in r1: {links}"
    );
    let ads = cap.adverts(Duration::ZERO);
    assert!(!ads.is_empty(), "no adverts");
    let from_r1: Vec<_> = ads.iter().filter(|(_, a, _)| a.priority == 150).collect();
    assert!(!from_r1.is_empty());
    for (_, a, _) in &from_r1 {
        assert_eq!(a.src_mac, vmac, "advert not from the VMAC: {a:?}");
    }
    assert!(lab.client_pings(VIP), "client cannot ping the VIP");
    let (mac, _) = lab.neigh("client", VIP).unwrap();
    assert_eq!(
        mac,
        pcap::mac_str(&vmac),
        "client resolved the VIP to a non-virtual MAC"
    );
    let t = r1.terminate();
    assert!(r1.wait_exit(Duration::from_secs(5)));
    let links =
        String::from_utf8_lossy(&lab.exec("r1", &["ip", "-o", "link", "show"]).stdout).to_string();
    eprintln!(
        "vmac: after SIGTERM r1 still has the VMAC interface: {}",
        links.contains(&pcap::mac_str(&vmac))
    );
    expect_holders(&lab, VIP, &["r2"], takeover_bound(&s(100)), &[&r2]);
    let adv = cap
        .wait_for(
            t,
            Duration::from_secs(3),
            |k| matches!(k, Kind::Vrrp(a) if a.priority == 100),
        )
        .expect("no advert from r2");
    let Kind::Vrrp(a) = adv.kind else {
        unreachable!()
    };
    assert_eq!(a.src_mac, vmac, "r2's advert not from the VMAC");
    assert!(
        lab.client_pings(VIP),
        "VIP unreachable after the VMAC handover"
    );
    let (mac, _) = lab.neigh("client", VIP).unwrap();
    assert_eq!(mac, pcap::mac_str(&vmac));
}

/// Unicast mode (`list unicast_peer`, keepalived's `unicast_peer`): adverts go to the peer's
/// own address and MAC, none to the VRRP multicast group; election and takeover work the same.
#[test]
fn unicast_peers_get_adverts_by_unicast_and_take_over() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::with_routers("ucast", 2);
    let cap = lab.capture("ucast");
    let s = |p: u8, peer: &str| {
        let mut v = VrrpSpec::new(56, p, 3, 0.5, VIP_CIDR);
        v.unicast_peers = vec![peer.to_string()];
        v
    };
    let mut r1 = start(&lab, "r1", &[s(150, "10.0.0.2")]);
    let r2 = start(&lab, "r2", &[s(100, "10.0.0.1")]);
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100, "")), &[&r1, &r2]);
    std::thread::sleep(Duration::from_secs(2));
    holders_stay(&lab, VIP, &["r1"], Duration::from_secs(1), &[&r1, &r2]);
    let ads = cap.adverts(Duration::ZERO);
    let r1_ads: Vec<_> = ads
        .iter()
        .filter(|(_, a, _)| a.src_mac == lab.node("r1").mac)
        .collect();
    assert!(r1_ads.len() >= 3, "{ads:?}");
    for (_, a, dst) in &r1_ads {
        assert_eq!(*dst, lab.node("r2").mac, "advert not unicast to r2: {a:?}");
    }
    let frames = cap.read();
    let ip_dsts: Vec<Ipv4Addr> = frames
        .frames
        .iter()
        .filter(|f| matches!(pcap::classify(&f.data), Kind::Vrrp(ref a) if a.src_mac == lab.node("r1").mac))
        .map(|f| Ipv4Addr::new(f.data[30], f.data[31], f.data[32], f.data[33]))
        .collect();
    assert!(
        ip_dsts.iter().all(|d| *d == Ipv4Addr::new(10, 0, 0, 2)),
        "{ip_dsts:?}"
    );
    assert!(
        ads.iter().all(|(_, _, d)| *d != MCAST_V4),
        "a multicast advert in unicast mode"
    );
    r1.kill_hard();
    let took = lab::wait_until(takeover_bound(&s(100, "")), || lab.node_has_addr("r2", VIP));
    assert!(took.is_some(), "r2 did not take over\n{}", r2.log_text());
}

/// Three routers, two virtual routers with opposite preferences: each VRID elects its own master
/// independently (RFC 5798 6.4 per VRID); when r1 dies its VRID goes to the next-best router
/// and the other VRID does not move.
#[test]
fn three_routers_two_vrids_elect_independently() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::new("vrids");
    const VIP_B: &str = "10.0.0.253";
    let mk = |pa: u8, pb: u8| {
        let a = VrrpSpec::new(57, pa, 3, 0.5, VIP_CIDR);
        let b = VrrpSpec::new(58, pb, 3, 0.5, "10.0.0.253/24");
        vec![a, b]
    };
    let mut r1 = start(&lab, "r1", &mk(150, 100));
    let r2 = start(&lab, "r2", &mk(120, 150));
    let r3 = start(&lab, "r3", &mk(100, 120));
    let b = election_bound(&VrrpSpec::new(57, 100, 3, 0.5, VIP_CIDR));
    expect_holders(&lab, VIP, &["r1"], b, &[&r1, &r2, &r3]);
    expect_holders(&lab, VIP_B, &["r2"], b, &[&r1, &r2, &r3]);
    std::thread::sleep(Duration::from_secs(1));
    holders_stay(
        &lab,
        VIP_B,
        &["r2"],
        Duration::from_millis(500),
        &[&r1, &r2, &r3],
    );
    r1.kill_hard();
    let tb = takeover_bound(&VrrpSpec::new(57, 120, 3, 0.5, VIP_CIDR));
    let took = lab::wait_until(tb, || lab.node_has_addr("r2", VIP));
    assert!(
        took.is_some(),
        "r2 did not take VRID 57\n{}",
        logs(&[&r2, &r3])
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(!lab.node_has_addr("r3", VIP), "r3 took VRID 57 too");
    holders_stay(&lab, VIP_B, &["r2"], Duration::from_secs(1), &[&r2, &r3]);
}

/// SIGHUP with an unchanged config must not disturb anything: 50 reloads in a row cause no
/// state transition (log), no extra advert, no priority-0 advert, no GARP, no advert from the
/// backup, and the master keeps advertising on time.
#[test]
fn fifty_reloads_of_an_unchanged_config_cause_no_transition() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::with_routers("hup", 2);
    let cap = lab.capture("hup");
    let s = |p: u8| {
        let mut v = VrrpSpec::new(59, p, 3, 0.5, VIP_CIDR);
        // No delayed second GARP burst inside the measured window.
        v.extra_uci = vec!["option garp_delay '0'".into()];
        v
    };
    let r1 = start(&lab, "r1", &[s(150)]);
    let r2 = start(&lab, "r2", &[s(100)]);
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &[&r1, &r2]);
    std::thread::sleep(Duration::from_secs(2));
    let before = (transitions(&r1.log_text()), transitions(&r2.log_text()));
    let t0 = lab::now_realtime();
    for _ in 0..50 {
        r1.signal(libc::SIGHUP);
        r2.signal(libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(60));
    }
    std::thread::sleep(Duration::from_secs(1));
    let t1 = lab::now_realtime();
    holders_stay(&lab, VIP, &["r1"], Duration::from_millis(200), &[&r1, &r2]);
    let after = (transitions(&r1.log_text()), transitions(&r2.log_text()));
    // The daemons did handle the reloads (signals 60 ms apart may rarely coalesce).
    for p in [&r1, &r2] {
        let n = p
            .log_text()
            .lines()
            .filter(|l| l.contains("reload"))
            .count();
        assert!(
            n >= 40,
            "{}: only {n} reloads logged\n{}",
            p.name,
            p.log_text()
        );
    }
    assert_eq!(
        before,
        after,
        "reloads logged transitions\n{}",
        logs(&[&r1, &r2])
    );
    let seen: Vec<_> = cap
        .seen()
        .into_iter()
        .filter(|s| s.ts >= t0 && s.ts <= t1)
        .collect();
    let r1_mac = lab.node("r1").mac;
    let mut r1_times = Vec::new();
    for x in &seen {
        match &x.kind {
            Kind::Vrrp(a) if a.src_mac == r1_mac && a.priority == 150 => r1_times.push(x.ts),
            Kind::Vrrp(a) => panic!("unexpected advert during reloads: {a:?}"),
            Kind::Garp { .. } | Kind::UnsolicitedNa { .. } => {
                panic!("announcement during reloads: {:?}", x.kind)
            }
            _ => {}
        }
    }
    let window = (t1 - t0).as_secs_f64();
    let expected = window / 0.5;
    assert!(
        (r1_times.len() as f64) >= expected - 2.0 && (r1_times.len() as f64) <= expected + 2.0,
        "{} adverts in {window:.1} s at 0.5 s",
        r1_times.len()
    );
    let max_gap = r1_times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        max_gap <= Duration::from_millis(900),
        "advert gap {max_gap:?}"
    );
    let min_gap = r1_times.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(
        min_gap >= Duration::from_millis(200),
        "advert burst: gap {min_gap:?}"
    );
    let mut r1 = r1;
    assert!(r1.running() && !r1.log_text().is_empty());
}

/// A reload whose config does not validate keeps the running config: the daemon logs the errors,
/// stays alive, keeps the VIP and keeps advertising. A later good reload is applied (here: a
/// priority drop below the backup's hands the VIP over, RFC 5798 6.4.3 preemption by r2).
#[test]
fn reload_with_a_broken_config_keeps_the_running_one() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::with_routers("badhup", 2);
    let cap = lab.capture("badhup");
    let s = |p: u8| VrrpSpec::new(60, p, 3, 0.5, VIP_CIDR);
    let mut r1 = start(&lab, "r1", &[s(150)]);
    let r2 = start(&lab, "r2", &[s(100)]);
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &[&r1, &r2]);
    std::thread::sleep(Duration::from_secs(1));
    let path = lab.minivrrp_conf_path("r1");
    let good = std::fs::read_to_string(&path).unwrap();
    let broken = good.replace("option vrid '60'", "option vrid '300'")
        + "\nconfig instance 'bad'\n\toption bogus_option 'x'\n";
    std::fs::write(&path, &broken).unwrap();
    let log_len = r1.log_text().len();
    let t = r1.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        r1.running(),
        "r1 died on a broken reload\n{}",
        r1.log_text()
    );
    let new_log = r1.log_text()[log_len..].to_string();
    // Error lines start with "E "; one names the bad value, one says the old config stays.
    let errors: Vec<&str> = new_log.lines().filter(|l| l.starts_with("E ")).collect();
    assert!(
        errors
            .iter()
            .any(|l| l.contains("vrid") && l.contains("300"))
            && errors.iter().any(|l| l.contains("keep")),
        "no error naming vrid 300 and keeping the running config:\n{new_log}"
    );
    holders_stay(&lab, VIP, &["r1"], Duration::from_secs(1), &[&r1, &r2]);
    let ads: Vec<_> = adverts_from(&cap, lab.node("r1").mac, t + Duration::from_millis(600));
    assert!(ads.len() >= 3, "r1 stopped advertising: {ads:?}");
    assert!(ads.iter().all(|(_, a)| a.vrid == 60 && a.priority == 150));
    // A valid reload afterwards is applied.
    std::fs::write(
        &path,
        good.replace("option priority '150'", "option priority '90'"),
    )
    .unwrap();
    r1.signal(libc::SIGHUP);
    expect_holders(&lab, VIP, &["r2"], takeover_bound(&s(100)), &[&r1, &r2]);
}

/// SIGUSR1 writes the state of every instance to the log.
#[test]
fn sigusr1_dumps_instance_state_to_the_log() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::with_routers("dump", 2);
    let s = |p: u8| VrrpSpec::new(61, p, 3, 0.5, VIP_CIDR);
    let r1 = start(&lab, "r1", &[s(150)]);
    let r2 = start(&lab, "r2", &[s(100)]);
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &[&r1, &r2]);
    std::thread::sleep(Duration::from_secs(1));
    for (p, state) in [(&r1, "MASTER"), (&r2, "BACKUP")] {
        let len = p.log_text().len();
        p.signal(libc::SIGUSR1);
        let ok = lab::wait_until(Duration::from_secs(3), || {
            let l = p.log_text();
            let new = &l[len.min(l.len())..];
            new.contains("vi61") && new.to_ascii_uppercase().contains(state)
        });
        assert!(
            ok.is_some(),
            "{}: no dump naming vi61 and {state}:\n{}",
            p.name,
            &p.log_text()[len..]
        );
        eprintln!("{} dump:\n{}", p.name, &p.log_text()[len..]);
    }
}

/// `use_vmac` after a crash: `kill -9` leaves r1's macvlan (with the VMAC and the VIP) behind;
/// the backup takes over; the restarted r1 first clears the stale VIP, then preempts back, and
/// the client, bound to the VMAC throughout, keeps reaching the VIP.
#[test]
fn vmac_restart_after_kill_clears_the_stale_vip_and_preempts_back() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::with_routers("vmack", 2);
    let s = |p: u8| {
        let mut v = VrrpSpec::new(62, p, 3, 0.5, VIP_CIDR);
        v.use_vmac = true;
        // Permanent VIPs, so the restart has a stale one to clear (see the kill test above).
        v.extra_uci.push("option vip_lifetime '0'".into());
        v
    };
    let vmac = pcap::mac_str(&s(1).virtual_mac());
    let mut r1 = start(&lab, "r1", &[s(150)]);
    let r2 = start(&lab, "r2", &[s(100)]);
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &[&r1, &r2]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(lab.client_pings(VIP));
    r1.kill_hard();
    let took = lab::wait_until(takeover_bound(&s(100)), || lab.node_has_addr("r2", VIP));
    assert!(took.is_some(), "r2 did not take over\n{}", r2.log_text());
    assert!(lab.client_pings(VIP), "VIP unreachable after the kill");
    let r1b = lab.spawn_minivrrp_text(
        "r1",
        &bin(),
        &lab::minivrrp_uci("r1", &[s(150)]),
        "minivrrp-restart",
    );
    let gone = lab::wait_until(s(150).master_down_interval(), || {
        !lab.node_has_addr("r1", VIP)
    });
    assert!(gone.is_some(), "stale VIP kept\n{}", r1b.log_text());
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &[&r1b, &r2]);
    assert!(
        lab.client_pings(VIP),
        "VIP unreachable after preempting back"
    );
    let (mac, _) = lab.neigh("client", VIP).unwrap();
    assert_eq!(mac, vmac);
    let links =
        String::from_utf8_lossy(&lab.exec("r1", &["ip", "-o", "link", "show"]).stdout).to_string();
    let n = links.matches(&vmac).count();
    assert_eq!(n, 1, "r1 should have exactly one VMAC interface:\n{links}");
}

/// An interface that disappears and comes back under a new ifindex (PPPoE, WireGuard, a VLAN
/// re-created by netifd) is picked up again without a restart: FAULT while it is gone (the
/// backup takes over), then a new packet socket on the new ifindex and preemption back.
#[test]
fn interface_recreated_with_a_new_ifindex_is_picked_up_again() {
    require!(root, "tcpdump", "ping");
    let lab = Lab::with_routers("reif", 2);
    let s = |p: u8| VrrpSpec::new(52, p, 3, 0.1, VIP_CIDR);
    let r1 = start(&lab, "r1", &[s(150)]);
    let r2 = start(&lab, "r2", &[s(100)]);
    let all = [&r1, &r2];
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &all);
    let ifindex = |lab: &Lab| -> String {
        let out = lab.exec("r1", &["ip", "-o", "link", "show", "dev", lab::LAN_IF]);
        String::from_utf8_lossy(&out.stdout)
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let old = ifindex(&lab);

    // Deleting the switch end of the veth pair deletes r1's br-lan with it.
    let del = lab.exec_switch(&["ip", "link", "del", "vr1"]);
    assert!(del.status.success(), "ip link del: {del:?}");
    expect_holders(&lab, VIP, &["r2"], takeover_bound(&s(100)), &all);

    let r1ns = lab.node("r1").ns.clone();
    let mac = lab.node("r1").mac_str();
    for cmd in [
        vec![
            "ip",
            "link",
            "add",
            "vr1",
            "type",
            "veth",
            "peer",
            "name",
            lab::LAN_IF,
        ],
        vec![
            "ip",
            "link",
            "set",
            lab::LAN_IF,
            "address",
            &mac,
            "netns",
            &r1ns,
        ],
        vec!["ip", "link", "set", "vr1", "master", lab::BRIDGE],
        vec!["ip", "link", "set", "vr1", "up"],
    ] {
        let out = lab.exec_switch(&cmd);
        assert!(out.status.success(), "{cmd:?}: {out:?}");
    }
    for cmd in [
        vec!["ip", "addr", "add", "10.0.0.1/24", "dev", lab::LAN_IF],
        vec!["ip", "link", "set", lab::LAN_IF, "up"],
    ] {
        let out = lab.exec("r1", &cmd);
        assert!(out.status.success(), "{cmd:?}: {out:?}");
    }
    let new = ifindex(&lab);
    assert_ne!(old, new, "the re-created interface kept its ifindex");
    expect_holders(&lab, VIP, &["r1"], election_bound(&s(100)), &all);
    let log = r1.log_text();
    assert!(
        log.contains(&format!("listening (ifindex {new})")),
        "r1 did not reopen its socket on ifindex {new}\n{log}"
    );
    assert!(
        lab.client_pings(VIP),
        "VIP unreachable after r1 preempted back"
    );
}
