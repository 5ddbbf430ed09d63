//! The IPv6 (and IPv4) first hop kept through what happens to a master's VIPs, in the
//! namespace lab:
//!
//! - a VIP deleted under the master (`ip addr del`, as netifd restarting the interface or a
//!   DHCP client would) is back and announced (GARP / unsolicited NA, RFC 5798 6.4.2) within
//!   one advert interval, with one log line naming it and a counter in `status --json`, also
//!   with `vip_lifetime 0` (permanent VIPs, no lease refresh to bring it back);
//! - a script deleting the VIP as fast as it can (1000s a second) gets bounded re-adds and
//!   rate-limited log lines while adverts keep their pace;
//! - the NAs carry the Router flag on a router that forwards IPv6 (as the kernel's own
//!   answers for the VIP do), so hosts keep the VIP in their Default Router List (RFC 4861
//!   7.2.5).
//!
//! Run as root: `cargo test --test lab first_hop_lab::` (needs tcpdump, ip).

use crate::common;

use common::knobs::minivrrp_bin;
use common::lab::{now_realtime, Lab, Proc, LAN_IF};
use common::pcap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const V4: &str = "10.0.0.254";
const V6: &str = "fd00::254";
const VRID: u8 = 61;
/// The advert interval: a deleted VIP must be back within it.
const ADVERT_INT: Duration = Duration::from_secs(1);

/// One dual-stack instance (so its IPv6 half is the second router of the table).
fn uci(lifetime: Option<&str>) -> String {
    let mut c = format!(
        "config instance 'fh'\n\toption interface '{LAN_IF}'\n\toption vrid '{VRID}'\n\
         \toption priority '150'\n\toption version '3'\n\toption advert_int '1'\n\
         \toption garp_delay '0'\n\tlist vip '{V4}/24'\n\tlist vip '{V6}/64'\n"
    );
    if let Some(l) = lifetime {
        c.push_str(&format!("\toption vip_lifetime '{l}'\n"));
    }
    c
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

fn restored(lab: &Lab, node: &str) -> u64 {
    status_json(lab, node)["instances"][0]["counters"]["vips_restored"]
        .as_u64()
        .expect("counters.vips_restored in status --json")
}

/// Log lines about VIPs deleted under the master.
fn restore_lines(p: &Proc) -> Vec<String> {
    p.log_text()
        .lines()
        .filter(|l| l.contains("deleted under the master"))
        .map(str::to_string)
        .collect()
}

/// Flags byte (R = 0x80, S = 0x40, O = 0x20) of the unsolicited NAs for `target` captured
/// at or after `since`.
fn na_flags(cap: &common::lab::Capture, target: &str, since: Duration) -> Vec<u8> {
    let target: std::net::Ipv6Addr = target.parse().unwrap();
    cap.read()
        .frames
        .iter()
        .filter(|f| f.ts >= since)
        .filter_map(|f| {
            let d = &f.data;
            // Ethernet IPv6, next header ICMPv6, type 136 (RFC 4861 4.4).
            if d.len() < 78 || d[12..14] != [0x86, 0xdd] || d[20] != 58 || d[54] != 136 {
                return None;
            }
            let t: [u8; 16] = d[62..78].try_into().ok()?;
            (std::net::Ipv6Addr::from(t) == target).then_some(d[58])
        })
        .collect()
}

/// Delete `addr` on r1's br-lan and measure until it is back; the deletion's realtime.
fn delete_and_wait(lab: &Lab, addr: &str) -> (Duration, Option<Duration>) {
    let t0 = now_realtime();
    let out = lab.exec("r1", &["ip", "addr", "del", addr, "dev", LAN_IF]);
    assert!(out.status.success(), "ip addr del {addr}: {out:?}");
    let bare = addr.split('/').next().unwrap();
    let back = common::lab::wait_until(Duration::from_secs(3), || lab.node_has_addr("r1", bare));
    (t0, back)
}

fn one_run(tag: &str, lifetime: Option<&str>, flood: bool) {
    let lab = Lab::with_routers(tag, 1);
    // A router: IPv6 forwarding on, so its NAs claim a router.
    lab.exec(
        "r1",
        &["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"],
    );
    let r1 = lab.spawn_minivrrp_text("r1", &minivrrp_bin(), &uci(lifetime), "fh");
    let (h, _) = lab.wait_holders(V6, &["r1"], Duration::from_secs(8));
    assert_eq!(h, ["r1"], "r1 never became master: {}", r1.log_text());
    assert!(lab.node_has_addr("r1", V4));
    let cap = lab.capture(tag);
    std::thread::sleep(Duration::from_millis(300));
    let label = lifetime.map_or("default vip_lifetime".to_string(), |l| {
        format!("vip_lifetime {l}")
    });

    // IPv4: back within one advert interval, with a GARP.
    let (t4, back4) = delete_and_wait(&lab, &format!("{V4}/24"));
    let back4 = back4.unwrap_or_else(|| panic!("{label}: {V4} not back: {}", r1.log_text()));
    assert!(back4 < ADVERT_INT, "{label}: {V4} back after {back4:?}");
    let garp = cap.wait_for(
        t4,
        Duration::from_secs(2),
        |k| matches!(k, pcap::Kind::Garp { sender_ip, .. } if sender_ip.to_string() == V4),
    );
    let garp = garp.unwrap_or_else(|| panic!("{label}: no GARP for {V4} after its deletion"));
    assert!(
        garp.ts - t4 < ADVERT_INT,
        "{label}: GARP {:?} late",
        garp.ts - t4
    );

    // IPv6: the same with an unsolicited NA, Router and Override set.
    let (t6, back6) = delete_and_wait(&lab, &format!("{V6}/64"));
    let back6 = back6.unwrap_or_else(|| panic!("{label}: {V6} not back: {}", r1.log_text()));
    assert!(back6 < ADVERT_INT, "{label}: {V6} back after {back6:?}");
    let na = cap.wait_for(
        t6,
        Duration::from_secs(2),
        |k| matches!(k, pcap::Kind::UnsolicitedNa { target, .. } if target.to_string() == V6),
    );
    let na = na.unwrap_or_else(|| panic!("{label}: no NA for {V6} after its deletion"));
    assert!(na.ts - t6 < ADVERT_INT, "{label}: NA {:?} late", na.ts - t6);
    let flags = na_flags(&cap, V6, t6);
    assert!(
        !flags.is_empty() && flags.iter().all(|f| *f == 0xa0),
        "{label}: NA flags {flags:02x?}, wanted Router|Override (0xa0) on a forwarding router"
    );

    // One line per deletion, naming what was lost; the counter.
    let lines = restore_lines(&r1);
    assert_eq!(lines.len(), 2, "{label}: {lines:#?}");
    assert!(lines[0].contains(&format!("{V4}/24")), "{}", lines[0]);
    assert!(lines[1].contains(&format!("{V6}/64")), "{}", lines[1]);
    assert_eq!(restored(&lab, "r1"), 2, "{label}");
    println!("{}", lines.join("\n"));
    println!(
        "{label}: {V4} back in {back4:?} (GARP {:?}), {V6} back in {back6:?} (NA {:?})",
        garp.ts - t4,
        na.ts - t6
    );

    if !flood {
        return;
    }
    // A script gone mad: `ip -force -batch` deleting the IPv4 VIP for 2 s (thousands of
    // attempts a second; most find it already gone).
    let before = restored(&lab, "r1");
    let adverts_before = cap.adverts(now_realtime()).len();
    assert_eq!(adverts_before, 0);
    let flood_start = now_realtime();
    let batch: String = (0..2000)
        .map(|_| format!("address del {V4}/24 dev {LAN_IF}\n"))
        .collect();
    let mut attempts = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.node("r1").ns,
                "ip",
                "-force",
                "-batch",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip -batch");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(batch.as_bytes())
            .unwrap();
        child.wait().unwrap();
        attempts += 2000;
    }
    let flood_secs = start.elapsed().as_secs_f64();
    let flood_end = now_realtime();
    let back = common::lab::wait_until(Duration::from_secs(3), || lab.node_has_addr("r1", V4));
    assert!(
        back.is_some_and(|b| b < ADVERT_INT),
        "{V4} not back after the flood: {back:?}"
    );
    let re_adds = restored(&lab, "r1") - before;
    // Rounds are 100 ms apart at least: 10 a second, plus the one after the flood.
    let bound = (flood_secs * 10.0).ceil() as u64 + 2;
    assert!(
        (1..=bound).contains(&re_adds),
        "{re_adds} re-adds in {flood_secs:.1} s (bound {bound})"
    );
    // Adverts kept their pace through the flood (r1's own, one a second).
    let adverts: Vec<_> = cap
        .adverts(flood_start)
        .into_iter()
        .filter(|(ts, a, _)| *ts <= flood_end && a.vrid == VRID)
        .collect();
    let expected = (flood_secs / ADVERT_INT.as_secs_f64()).floor() as usize;
    // Two routers (IPv4 and IPv6 half) each advertise once a second.
    assert!(
        adverts.len() + 2 >= 2 * expected,
        "{} adverts in {flood_secs:.1} s of flood",
        adverts.len()
    );
    // The log: the flood's deletions fall in the same 10 s window as the first one, so at
    // most one more line for the IPv4 router.
    let lines = restore_lines(&r1);
    assert!(lines.len() <= 3, "{lines:#?}");
    println!(
        "flood: {attempts} deletion attempts in {flood_secs:.1} s -> {re_adds} re-adds, \
         {} log lines in all, {} adverts",
        lines.len(),
        adverts.len()
    );
}

#[test]
fn deleted_vip_is_back_and_announced_within_one_advert_interval_6_4_2() {
    require!(root, "tcpdump");
    one_run("fhdel", None, true);
}

#[test]
fn deleted_permanent_vip_is_back_too() {
    require!(root, "tcpdump");
    one_run("fhdel0", Some("0"), false);
}

// ---------------------------------------------------------------------------------------
// The client's default router through failovers.

/// The virtual router's link-local address: the first IPv6 VIP (RFC 5798 5.2.9).
const LL: &str = "fe80::77";
/// A host behind the routers: each router has it on its loopback, so whichever gets the
/// client's packets (the master, by the VIP's MAC) answers.
const BEHIND: &str = "fd99::1";

/// Who runs VRRP and who sends the RAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    /// minivrrp with `option ra '1'`, one dual-stack instance (its IPv6 half sends the RAs).
    MinivrrpRa,
    /// minivrrp (IPv6 only) and radvd on r1 with `AdvRASrcAddress fe80::77`.
    MinivrrpRadvd,
    /// keepalived 2.2 and the same radvd.
    KeepalivedRadvd,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::MinivrrpRa => "minivrrp ra",
            Setup::MinivrrpRadvd => "minivrrp + radvd",
            Setup::KeepalivedRadvd => "keepalived + radvd",
        }
    }
}

fn fh_uci(setup: Setup, priority: u8) -> String {
    let mut c = format!(
        "config instance 'fh6'\n\toption interface '{LAN_IF}'\n\toption vrid '{VRID}'\n\
         \toption priority '{priority}'\n\toption version '3'\n\toption advert_int '0.2'\n\
         \toption garp_delay '0'\n\tlist vip '{LL}/64'\n\tlist vip '{V6}/64'\n"
    );
    if setup == Setup::MinivrrpRa {
        c.push_str(&format!(
            "\tlist vip '{V4}/24'\n\toption ra '1'\n\tlist ra_prefix 'fd00::/64'\n\
             \toption ra_interval '4'\n"
        ));
    }
    c
}

fn fh_keepalived(priority: u8) -> String {
    format!(
        "global_defs {{\n    router_id r{priority}\n}}\n\
         vrrp_instance fh6 {{\n    state BACKUP\n    interface {LAN_IF}\n    \
         virtual_router_id {VRID}\n    priority {priority}\n    version 3\n    \
         advert_int 0.2\n    virtual_ipaddress {{\n        {LL}/64 dev {LAN_IF}\n        \
         {V6}/64 dev {LAN_IF}\n    }}\n}}\n"
    )
}

fn spawn_router(lab: &Lab, setup: Setup, node: &str, priority: u8, log: &str) -> Proc {
    match setup {
        Setup::KeepalivedRadvd => lab.spawn_keepalived_text(node, &fh_keepalived(priority)),
        _ => lab.spawn_minivrrp_text(node, &minivrrp_bin(), &fh_uci(setup, priority), log),
    }
}

/// What the client's tables said at one poll.
#[derive(Clone, Debug)]
struct Sample {
    at: Duration,
    /// `default via fe80::77` is in `ip -6 route`.
    route: bool,
    /// The neighbour entry of fe80::77 exists and has the `router` flag (None: no entry).
    router: Option<bool>,
    /// Other default routers the client has.
    others: Vec<String>,
}

fn sample(lab: &Lab, t0: Instant) -> Sample {
    let routes = lab.exec("client", &["ip", "-6", "route", "show", "default"]);
    let routes = String::from_utf8_lossy(&routes.stdout).to_string();
    let neigh = lab.exec("client", &["ip", "-6", "neigh", "show", LL, "dev", LAN_IF]);
    let neigh = String::from_utf8_lossy(&neigh.stdout).to_string();
    let vias: Vec<String> = routes
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .collect();
    Sample {
        at: t0.elapsed(),
        route: vias.iter().any(|v| v == LL),
        router: neigh
            .lines()
            .next()
            .filter(|l| l.contains("lladdr"))
            .map(|l| l.split_whitespace().any(|w| w == "router")),
        others: vias.into_iter().filter(|v| v != LL).collect(),
    }
}

/// The figures of one run: the longest time the client had no default route via the
/// virtual link-local, how often its neighbour entry lost the router flag, other default
/// routers it learnt, and the pings to the host behind the routers lost over the run.
#[derive(Debug)]
struct Figures {
    route_gap: Duration,
    route_lost: usize,
    router_flag_lost: usize,
    others: Vec<String>,
    pings: (u64, u64),
}

fn ping_counts(log: &str) -> (u64, u64) {
    // "N packets transmitted, M received"
    let line = log
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or("");
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .take(2)
        .collect();
    (*nums.first().unwrap_or(&0), *nums.get(1).unwrap_or(&0))
}

/// The client's and r1's IPv6 tables, for a failure message.
fn diag(lab: &Lab) -> String {
    let mut out = String::new();
    for node in ["client", "r1"] {
        for cmd in [
            &["ip", "-6", "addr"][..],
            &["ip", "-6", "route"],
            &["ip", "-6", "neigh"],
        ] {
            let o = lab.exec(node, cmd);
            out.push_str(&format!(
                "{node} {cmd:?}:\n{}",
                String::from_utf8_lossy(&o.stdout)
            ));
        }
    }
    out
}

fn first_hop_run(setup: Setup, tag: &str) -> Figures {
    let lab = Lab::with_routers(tag, 2);
    for r in ["r1", "r2"] {
        // Routers: forwarding on (so NAs and radvd speak as routers), the host behind.
        lab.exec(r, &["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
        lab.exec(
            r,
            &["ip", "addr", "add", &format!("{BEHIND}/128"), "dev", "lo"],
        );
    }
    // The client learns its router from RAs only (the lab gives it no route).
    lab.exec(
        "client",
        &["sysctl", "-q", "-w", "net.ipv6.conf.br-lan.accept_ra=2"],
    );
    let mut r2 = spawn_router(&lab, setup, "r2", 100, "fh-r2");
    let mut r1 = spawn_router(&lab, setup, "r1", 150, "fh-r1");
    let (h, _) = lab.wait_holders(LL, &["r1"], Duration::from_secs(8));
    assert_eq!(
        h,
        ["r1"],
        "{}: r1 never became master: {}",
        setup.name(),
        r1.log_text()
    );
    let mut radvd = None;
    if setup != Setup::MinivrrpRa {
        // radvd on the master, advertising from the virtual link-local address.
        let conf = lab.dir.join("radvd.conf");
        std::fs::write(
            &conf,
            format!(
                "interface {LAN_IF} {{\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  \
                 MaxRtrAdvInterval 4;\n  AdvRASrcAddress {{\n    {LL};\n  }};\n  \
                 prefix fd00::/64 {{\n  }};\n}};\n"
            ),
        )
        .unwrap();
        let pid = lab.dir.join("radvd.pid");
        radvd = Some(lab.spawn(
            "r1",
            "radvd",
            &[
                "radvd",
                "-n",
                "-m",
                "stderr",
                "-C",
                &conf.to_string_lossy(),
                "-p",
                &pid.to_string_lossy(),
            ],
        ));
    }
    let t0 = Instant::now();
    let learnt = common::lab::wait_until(Duration::from_secs(10), || sample(&lab, t0).route);
    assert!(
        learnt.is_some(),
        "{}: the client never learnt default via {LL}: {:?}\n{}",
        setup.name(),
        sample(&lab, t0),
        radvd.as_ref().map(|p| p.log_text()).unwrap_or_default()
    );
    // The client reaches the host behind: its neighbour entry of the VIP exists now.
    assert!(
        lab.exec("client", &["ping", "-6", "-c", "1", "-W", "2", BEHIND])
            .status
            .success(),
        "{}: no ping to {BEHIND}:\n{}",
        setup.name(),
        diag(&lab)
    );
    let ping = lab.spawn("client", "ping", &["ping", "-6", "-i", "0.05", BEHIND]);

    let stop = std::sync::atomic::AtomicBool::new(false);
    let samples = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut v = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                v.push(sample(&lab, t0));
                std::thread::sleep(Duration::from_millis(30));
            }
            v
        });
        let settle = Duration::from_millis(2500);
        // 1. SIGTERM: r2 takes over.
        r1.terminate();
        r1.wait_exit(Duration::from_secs(5));
        let (h, _) = lab.wait_holders(LL, &["r2"], Duration::from_secs(5));
        assert_eq!(h, ["r2"], "{}: after SIGTERM", setup.name());
        std::thread::sleep(settle);
        // 2. r1 back: preemption.
        r1 = spawn_router(&lab, setup, "r1", 150, "fh-r1b");
        let (h, _) = lab.wait_holders(LL, &["r1"], Duration::from_secs(8));
        assert_eq!(h, ["r1"], "{}: no preemption back", setup.name());
        std::thread::sleep(settle);
        // 3. kill -9 of the master.
        r1.kill_hard();
        let _ = lab.wait_holders(LL, &["r1", "r2"], Duration::from_secs(3));
        std::thread::sleep(settle);
        // 4. And back once more.
        if setup == Setup::KeepalivedRadvd {
            // keepalived left its VIPs behind (no lease): the restarted one would find them.
            lab.del_addr("r1", &format!("{LL}/64"));
            lab.del_addr("r1", &format!("{V6}/64"));
        }
        r1 = spawn_router(&lab, setup, "r1", 150, "fh-r1c");
        let (h, _) = lab.wait_holders(LL, &["r1"], Duration::from_secs(8));
        assert_eq!(h, ["r1"], "{}: no preemption after kill -9", setup.name());
        std::thread::sleep(settle);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().unwrap()
    });
    ping.signal(libc::SIGINT);
    let mut ping = ping;
    ping.wait_exit(Duration::from_secs(3));
    let pings = ping_counts(&ping.log_text());
    r1.terminate();
    r2.terminate();
    r1.wait_exit(Duration::from_secs(3));
    r2.wait_exit(Duration::from_secs(3));
    if let Some(mut p) = radvd {
        p.terminate();
        p.wait_exit(Duration::from_secs(3));
    }

    let mut gap = Duration::ZERO;
    let mut lost = 0;
    let mut since: Option<Duration> = None;
    let mut flag_lost = 0;
    let mut others: Vec<String> = Vec::new();
    for s in &samples {
        match (s.route, since) {
            (false, None) => {
                since = Some(s.at);
                lost += 1;
            }
            (true, Some(a)) => {
                gap = gap.max(s.at - a);
                since = None;
            }
            _ => {}
        }
        flag_lost += usize::from(s.router == Some(false));
        for o in &s.others {
            if !others.contains(o) {
                others.push(o.clone());
            }
        }
    }
    if let (Some(a), Some(last)) = (since, samples.last()) {
        gap = gap.max(last.at - a);
    }
    Figures {
        route_gap: gap,
        route_lost: lost,
        router_flag_lost: flag_lost,
        others,
        pings,
    }
}

fn report(setup: Setup, f: &Figures) {
    println!(
        "{:<20} default via {LL} lost {} times (longest {:?}), router flag cleared in {} \
         samples, other default routers {:?}, pings {}/{} answered",
        setup.name(),
        f.route_lost,
        f.route_gap,
        f.router_flag_lost,
        f.others,
        f.pings.1,
        f.pings.0
    );
}

/// Through SIGTERM handover, preemption back, kill -9 of the master and preemption again,
/// the client keeps `default via fe80::77` and the router flag of its neighbour entry, with
/// RAs from minivrrp itself (a dual-stack instance: its IPv6 half takes over each time) and
/// from radvd with `AdvRASrcAddress`; keepalived with the same radvd beside it.
#[test]
fn client_keeps_its_default_router_through_every_failover() {
    require!(root, "radvd", "keepalived");
    let ours = first_hop_run(Setup::MinivrrpRa, "fhra");
    report(Setup::MinivrrpRa, &ours);
    let radvd = first_hop_run(Setup::MinivrrpRadvd, "fhrd");
    report(Setup::MinivrrpRadvd, &radvd);
    let theirs = first_hop_run(Setup::KeepalivedRadvd, "fhka");
    report(Setup::KeepalivedRadvd, &theirs);
    for (setup, f) in [(Setup::MinivrrpRa, &ours), (Setup::MinivrrpRadvd, &radvd)] {
        assert_eq!(f.route_lost, 0, "{}: {f:?}", setup.name());
        assert_eq!(f.router_flag_lost, 0, "{}: {f:?}", setup.name());
        assert!(f.others.is_empty(), "{}: {f:?}", setup.name());
    }
}

// ---------------------------------------------------------------------------------------
// The RA on the wire, read by independent parsers; Router Solicitations answered.

/// scapy reads every RA of a capture: one JSON object per RA.
const SCAPY_RA: &str = r#"
import json, sys
from scapy.all import rdpcap, Ether, IPv6, ICMPv6ND_RA, ICMPv6NDOptPrefixInfo, ICMPv6NDOptSrcLLAddr
for p in rdpcap(sys.argv[1]):
    if ICMPv6ND_RA not in p:
        continue
    ra = p[ICMPv6ND_RA]
    given = ra.cksum
    q = Ether(bytes(p)); del q[ICMPv6ND_RA].cksum
    good = Ether(bytes(q))[ICMPv6ND_RA].cksum == given
    pi = p[ICMPv6NDOptPrefixInfo] if ICMPv6NDOptPrefixInfo in p else None
    print(json.dumps({
        "src": p[IPv6].src, "dst": p[IPv6].dst, "hlim": p[IPv6].hlim, "mac": p[Ether].src,
        "chlim": ra.chlim, "M": ra.M, "O": ra.O, "routerlifetime": ra.routerlifetime,
        "cksum_ok": good,
        "lladdr": p[ICMPv6NDOptSrcLLAddr].lladdr if ICMPv6NDOptSrcLLAddr in p else None,
        "prefix": pi.prefix if pi else None, "prefixlen": pi.prefixlen if pi else None,
        "L": pi.L if pi else None, "A": pi.A if pi else None,
        "valid": pi.validlifetime if pi else None, "preferred": pi.preferredlifetime if pi else None,
    }))
"#;

#[test]
fn ra_bytes_read_by_scapy_and_rdisc6_and_solicitations_answered_6_2_6() {
    let name = "ra_bytes_read_by_scapy_and_rdisc6_and_solicitations_answered_6_2_6";
    require!(root, "tcpdump", "rdisc6");
    let scapy_ok = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import scapy.all"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !scapy_ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name}: needs python3-scapy, and CI=true forbids skipping");
        }
        eprintln!("SKIP {name}: python3-scapy is not installed (tests/setup.sh installs it)");
        return;
    }
    let lab = Lab::with_routers("fhrs", 1);
    lab.exec(
        "r1",
        &["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"],
    );
    // The client's kernel solicits on its own after link up: only rdisc6's count here.
    lab.exec(
        "client",
        &[
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.br-lan.router_solicitations=0",
        ],
    );
    let cap = lab.capture("fhrs");
    // ra_interval 400: after the takeover RA the initial ones come 16 s apart, so an RA
    // within a second of a solicitation is its answer.
    let uci = format!(
        "config instance 'fh6'\n\toption interface '{LAN_IF}'\n\toption vrid '{VRID}'\n\
         \toption priority '150'\n\toption version '3'\n\toption advert_int '0.2'\n\
         \toption garp_delay '0'\n\tlist vip '{LL}/64'\n\tlist vip '{V6}/64'\n\
         \toption ra '1'\n\tlist ra_prefix 'fd00::/64'\n\toption ra_interval '400'\n\
         \toption ra_lifetime '1200'\n\toption ra_other '1'\n"
    );
    let r1 = lab.spawn_minivrrp_text("r1", &minivrrp_bin(), &uci, "rs");
    let (h, _) = lab.wait_holders(LL, &["r1"], Duration::from_secs(8));
    assert_eq!(h, ["r1"], "r1 never became master: {}", r1.log_text());
    // Past MIN_DELAY_BETWEEN_RAS after the last RA (the takeover one, or one answering the
    // client kernel's own solicitations after its link came up).
    let last_ra = || {
        cap.read()
            .frames
            .iter()
            .filter(|f| f.data.len() > 54 && f.data[12..14] == [0x86, 0xdd] && f.data[54] == 134)
            .map(|f| f.ts)
            .max()
    };
    let quiet = common::lab::wait_until(Duration::from_secs(15), || {
        last_ra().is_some_and(|t| now_realtime().saturating_sub(t) > Duration::from_millis(3200))
    });
    assert!(quiet.is_some(), "no RA, or never 3 s without one");
    let before = status_json(&lab, "r1")["instances"][0]["counters"].clone();
    let asked = Instant::now();
    let out = lab.exec(
        "client",
        &["rdisc6", "-1", "-n", "-r", "1", "-w", "1500", LAN_IF],
    );
    let answered_in = asked.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "rdisc6 got no answer: {text}\n{}\n{}",
        r1.log_text(),
        status_json(&lab, "r1")["instances"][0]["counters"]
    );
    let after = status_json(&lab, "r1")["instances"][0]["counters"].clone();
    println!("rdisc6 (answered in {answered_in:?}):\n{text}");
    // Compared with runs of blanks as one space (rdisc6 aligns its columns).
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat = words(&text);
    for want in [
        "Hop limit : 64",
        "Stateful address conf. : No",
        "Stateful other conf. : Yes",
        "Router lifetime : 1200",
        "Source link-layer address: 02:00:00:00:00:01",
        "Prefix : fd00::/64 On-link : Yes Autonomous address conf.: Yes",
        "Valid time : 2592000",
        "Pref. time : 604800",
        "from fe80::77",
    ] {
        assert!(flat.contains(want), "rdisc6 output lacks {want:?}:\n{text}");
    }
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    assert_eq!(
        n(&after, "rs_received") - n(&before, "rs_received"),
        1,
        "{after}"
    );
    assert_eq!(n(&after, "ra_sent") - n(&before, "ra_sent"), 1, "{after}");

    // Every RA captured so far, through scapy.
    std::thread::sleep(Duration::from_millis(200));
    let out = lab.exec_switch(&[
        "/usr/bin/python3",
        "-c",
        SCAPY_RA,
        &cap.file.to_string_lossy(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ras: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The takeover RA and the answer to rdisc6 at least.
    assert!(ras.len() >= 2, "{text}");
    for ra in &ras {
        assert_eq!(ra["src"], LL, "{ra}");
        assert_eq!(ra["dst"], "ff02::1", "{ra}");
        assert_eq!(ra["hlim"], 255, "{ra}");
        assert_eq!(ra["mac"], "02:00:00:00:00:01", "{ra}");
        assert_eq!(ra["lladdr"], "02:00:00:00:00:01", "{ra}");
        assert_eq!(ra["chlim"], 64, "{ra}");
        assert_eq!((&ra["M"], &ra["O"]), (&0.into(), &1.into()), "{ra}");
        assert_eq!(ra["routerlifetime"], 1200, "{ra}");
        assert_eq!(ra["cksum_ok"], true, "{ra}");
        assert_eq!(ra["prefix"], "fd00::", "{ra}");
        assert_eq!(ra["prefixlen"], 64, "{ra}");
        assert_eq!((&ra["L"], &ra["A"]), (&1.into(), &1.into()), "{ra}");
        assert_eq!(ra["valid"], 2_592_000, "{ra}");
        assert_eq!(ra["preferred"], 604_800, "{ra}");
    }
    println!("scapy: {text}");

    // The client uses the virtual router; a reload switching `ra` off takes it away for
    // good: one RA with router lifetime 0 (RFC 4861 6.2.5), and the client drops it.
    let has_default = || {
        let o = lab.exec("client", &["ip", "-6", "route", "show", "default"]);
        String::from_utf8_lossy(&o.stdout).contains(LL)
    };
    assert!(has_default(), "the client has no default via {LL}");
    let off: String = uci
        .lines()
        .filter(|l| !l.contains("option ra") && !l.contains("ra_prefix"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(lab.dir.join("r1-rs.uci"), off).unwrap();
    r1.signal(libc::SIGHUP);
    let gone = common::lab::wait_until(Duration::from_secs(3), || !has_default());
    assert!(
        gone.is_some(),
        "default via {LL} stayed after ra was switched off: {}",
        r1.log_text()
    );
    let out = lab.exec_switch(&[
        "/usr/bin/python3",
        "-c",
        SCAPY_RA,
        &cap.file.to_string_lossy(),
    ]);
    let last: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap();
    assert_eq!(last["routerlifetime"], 0, "{last}");
    assert_eq!(last["src"], LL, "{last}");
    assert!(r1.log_text().contains("final RA with router lifetime 0"));
}

/// Only the master advertises, from the virtual link-local address and, with `use_vmac`,
/// the IPv6 virtual MAC (RFC 5798 7.3: 00-00-5E-00-02-{VRID}); a SIGTERM handover sends no
/// RA with router lifetime 0: the new master's RAs come from the same address and MAC.
#[test]
fn ras_only_from_the_master_with_the_virtual_mac_and_none_with_lifetime_0_on_handover() {
    require!(root, "tcpdump");
    let lab = Lab::with_routers("fhvm", 2);
    for r in ["r1", "r2"] {
        lab.exec(r, &["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
    }
    let cap = lab.capture("fhvm");
    let uci = |priority: u8| {
        format!(
            "config instance 'fh6'\n\toption interface '{LAN_IF}'\n\toption vrid '{VRID}'\n\
             \toption priority '{priority}'\n\toption version '3'\n\toption advert_int '0.2'\n\
             \toption garp_delay '0'\n\toption use_vmac '1'\n\tlist vip '{LL}/64'\n\
             \tlist vip '{V6}/64'\n\toption ra '1'\n\tlist ra_prefix 'fd00::/64'\n\
             \toption ra_interval '4'\n"
        )
    };
    // r1 first, so r2 is never master before the handover.
    let mut r1 = lab.spawn_minivrrp_text("r1", &minivrrp_bin(), &uci(150), "vm");
    let (h, _) = lab.wait_holders(LL, &["r1"], Duration::from_secs(8));
    assert_eq!(h, ["r1"], "r1 never became master: {}", r1.log_text());
    let r2 = lab.spawn_minivrrp_text("r2", &minivrrp_bin(), &uci(100), "vm");
    std::thread::sleep(Duration::from_secs(4));
    let ra_sent = |node: &str| {
        status_json(&lab, node)["instances"][0]["counters"]["ra_sent"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(ra_sent("r1") >= 2, "r1 sent {} RAs", ra_sent("r1"));
    assert_eq!(ra_sent("r2"), 0, "a backup sent RAs");
    let handover = r1.terminate();
    r1.wait_exit(Duration::from_secs(5));
    let (h, _) = lab.wait_holders(LL, &["r2"], Duration::from_secs(5));
    assert_eq!(h, ["r2"], "no takeover: {}", r2.log_text());
    std::thread::sleep(Duration::from_secs(1));
    assert!(ra_sent("r2") >= 1, "the new master sent no RA");

    let vmac = [0x00, 0x00, 0x5e, 0x00, 0x02, VRID];
    let ras: Vec<(Duration, Vec<u8>)> = cap
        .read()
        .frames
        .into_iter()
        .filter(|f| f.data.len() > 62 && f.data[12..14] == [0x86, 0xdd] && f.data[54] == 134)
        .map(|f| (f.ts, f.data))
        .collect();
    let ll: std::net::Ipv6Addr = LL.parse().unwrap();
    assert!(
        ras.iter().any(|(ts, _)| *ts > handover),
        "no RA after the handover"
    );
    for (ts, f) in &ras {
        assert_eq!(f[6..12], vmac, "RA at {ts:?} from {:02x?}", &f[6..12]);
        assert_eq!(f[22..38], ll.octets(), "RA at {ts:?} not from {LL}");
        // Router lifetime (RA bytes 6-7): never 0.
        assert_ne!(
            u16::from_be_bytes([f[60], f[61]]),
            0,
            "RA with lifetime 0 at {ts:?}"
        );
    }
    println!("{} RAs, all from {LL} at the virtual MAC", ras.len());
}
