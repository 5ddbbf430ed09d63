//! An untrusted LAN: a host that is not a router of the group tries to take the VIP from a
//! healthy master, with frames built byte by byte (tests/common/attack.rs) from a third
//! namespace ("client" in the lab). Every attack runs three times in the same lab:
//!
//! - minivrrp as shipped: the per-interface BPF filter should stop kernel-side attacks
//!   before user space (the interface's `kernel_delivered` stays 0), and the receive policy
//!   the rest (the drop counter of the right reason, from the SIGUSR1 dump);
//! - minivrrp with `MINIVRRP_RX_FILTER=protocol-only` (the old protocol-only filter): the
//!   user-space receive policy alone must drop every attack frame under the right reason;
//! - Debian's keepalived 2.2.7 with the same instance: what it does is printed and asserted
//!   as observed (it is the comparison, not the code under test).
//!
//! In every minivrrp run the master keeps its VIP and logs no transition. Run as root:
//! `cargo test --test lab lan_attacks:: -- --nocapture` prints the side-by-side lines.

use crate::common;

use common::attack::{self, Advert, Attacker};
use common::knobs::minivrrp_bin;
use common::lab::{self, Lab, Proc, VrrpSpec, LAN_IF};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const VRID: u8 = 50;
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
const VIP_CIDR: &str = "10.0.0.254/24";
const MASTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER: &str = "10.0.0.2";
const ATTACKER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// Attack adverts sent per run, one every `GAP`: the attack lasts longer than the
/// Master_Down_Interval (0.66 s), so an accepted advert keeps the master out of MASTER.
const ADVERTS: usize = 60;
const GAP: Duration = Duration::from_millis(25);

fn prereqs(name: &str) -> bool {
    common::require_root(name) && common::require_tool(name, "keepalived")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Daemon {
    /// minivrrp; `false` = `MINIVRRP_RX_FILTER=protocol-only`.
    Minivrrp {
        kernel_filter: bool,
    },
    Keepalived,
}

/// Where the drop of an attack frame must be counted.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Stopped by the kernel filter as shipped; counted under this reason for the
    /// interface (`iface`) or the instance when only user space sees it.
    Kernel { reason: &'static str, iface: bool },
    /// Reaches user space either way (BPF cannot know peers or addresses): counted for the
    /// instance under this reason in both minivrrp runs.
    Policy { reason: &'static str },
}

/// What one run observed.
#[derive(Debug)]
struct Outcome {
    /// Every sample during and after the attack had the VIP on r1 only.
    kept_vip: bool,
    /// State transitions the daemon logged after it first became master.
    later_transitions: usize,
    /// minivrrp's SIGUSR1 lines for the instance and the interface.
    inst_line: String,
    iface_line: String,
    log: String,
}

/// `name=value` from a dump line (`dropped: bad-ttl=60 ...` or `kernel_delivered 0`).
fn counter(line: &str, name: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if let Some(v) = w.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return v.parse().unwrap_or(0);
        }
        if *w == name {
            return words.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    0
}

fn spec(unicast: bool) -> VrrpSpec {
    let mut s = VrrpSpec::new(VRID, 200, 3, 0.2, VIP_CIDR);
    if unicast {
        s.unicast_peers = vec![PEER.to_string()];
    }
    s
}

fn start(lab: &Lab, daemon: Daemon, s: &VrrpSpec) -> Proc {
    match daemon {
        Daemon::Keepalived => lab.spawn_keepalived("r1", std::slice::from_ref(s)),
        Daemon::Minivrrp { kernel_filter } => {
            let conf = lab.dir.join(format!("r1-{kernel_filter}.uci"));
            std::fs::write(&conf, lab::minivrrp_uci("r1", std::slice::from_ref(s))).unwrap();
            let (b, c) = (minivrrp_bin(), conf);
            let (b, c) = (b.to_string_lossy(), c.to_string_lossy());
            let mut cmd = vec!["env"];
            if !kernel_filter {
                cmd.push("MINIVRRP_RX_FILTER=protocol-only");
            }
            cmd.extend([&*b, "-f", &*c]);
            lab.spawn("r1", &format!("minivrrp-{kernel_filter}"), &cmd)
        }
    }
}

/// Runs `daemon` as the master on r1, lets the attacker send `frames` (built by `frame(i)`),
/// and reports what happened.
fn run(
    lab: &Lab,
    daemon: Daemon,
    unicast: bool,
    frames: usize,
    gap: Duration,
    frame: &dyn Fn(usize) -> Vec<u8>,
) -> Outcome {
    run_spec(lab, daemon, &spec(unicast), frames, gap, frame)
}

/// [`run`] for any instance: `s`'s first VIP is the one watched.
fn run_spec(
    lab: &Lab,
    daemon: Daemon,
    s: &VrrpSpec,
    frames: usize,
    gap: Duration,
    frame: &dyn Fn(usize) -> Vec<u8>,
) -> Outcome {
    let vip_cidr = s.vips[0].clone();
    let vip = vip_cidr.split('/').next().unwrap_or("").to_string();
    let mut p = start(lab, daemon, s);
    let (h, _) = lab.wait_holders(&vip, &["r1"], Duration::from_secs(15));
    assert_eq!(
        h,
        ["r1"],
        "{daemon:?} did not become master:\n{}",
        p.log_text()
    );
    // Let the start-up settle (keepalived logs its transition a moment after the VIP).
    std::thread::sleep(Duration::from_millis(500));
    let before = lab::transitions(&p.log_text());
    let client = lab.node("client");
    let att = Attacker::open(&client.ns, LAN_IF, client.mac);
    let mut kept = true;
    let start = Instant::now();
    for i in 0..frames {
        att.send(&frame(i));
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
        if i % 10 == 9 && !gap.is_zero() {
            kept &= lab.holders(&vip) == ["r1"];
        }
    }
    let sent_in = start.elapsed();
    // An accepted advert makes the master yield at once; after the attack it would take
    // Master_Down_Interval to come back. Look once more right away and after a while.
    kept &= lab.holders(&vip) == ["r1"];
    std::thread::sleep(Duration::from_millis(300));
    kept &= lab.holders(&vip) == ["r1"];
    let (mut inst_line, mut iface_line) = (String::new(), String::new());
    if let Daemon::Minivrrp { .. } = daemon {
        p.signal(libc::SIGUSR1);
        lab::wait_until(Duration::from_secs(5), || {
            p.log_text().contains("kernel_delivered")
        });
        let log = p.log_text();
        inst_line = log
            .lines()
            .rfind(|l| l.contains(&format!("vi{VRID}: ")) && l.contains("dropped:"))
            .unwrap_or("")
            .to_string();
        iface_line = log
            .lines()
            .rfind(|l| l.contains("kernel_delivered"))
            .unwrap_or("")
            .to_string();
    }
    let log = p.log_text();
    let later_transitions = lab::transitions(&log).saturating_sub(before);
    p.terminate();
    p.wait_exit(Duration::from_secs(5));
    // The next run starts clean (keepalived may leave its VIP on a hard exit).
    lab.del_addr("r1", &vip_cidr);
    eprintln!(
        "  {daemon:?}: {frames} frames in {sent_in:.2?}, kept VIP {kept}, transitions after attack {later_transitions}"
    );
    Outcome {
        kept_vip: kept,
        later_transitions,
        inst_line,
        iface_line,
        log,
    }
}

/// The whole comparison for one attack: minivrrp as shipped, minivrrp with the
/// protocol-only filter, keepalived. Returns keepalived's outcome for the caller to assert.
fn attack(
    tag: &str,
    unicast: bool,
    expect: Expect,
    frame: &dyn Fn(&Lab, usize) -> Vec<u8>,
) -> Option<Outcome> {
    if !prereqs(tag) {
        return None;
    }
    let lab = Lab::with_routers(tag, 2);
    eprintln!("attack {tag}:");
    for kernel_filter in [true, false] {
        let d = Daemon::Minivrrp { kernel_filter };
        let o = run(&lab, d, unicast, ADVERTS, GAP, &|i| frame(&lab, i));
        let ctx = format!(
            "{tag} {d:?}\n{}\n{}\n--- log ---\n{}",
            o.inst_line, o.iface_line, o.log
        );
        assert!(o.kept_vip, "master lost the VIP: {ctx}");
        assert_eq!(o.later_transitions, 0, "master changed state: {ctx}");
        let n = ADVERTS as u64;
        match (expect, kernel_filter) {
            (Expect::Kernel { .. }, true) => {
                assert_eq!(
                    counter(&o.iface_line, "kernel_delivered"),
                    0,
                    "the kernel filter let attack frames through: {ctx}"
                );
            }
            (Expect::Kernel { reason, iface }, false) => {
                let line = if iface { &o.iface_line } else { &o.inst_line };
                assert_eq!(counter(line, reason), n, "{reason} count: {ctx}");
            }
            (Expect::Policy { reason }, _) => {
                assert_eq!(counter(&o.inst_line, reason), n, "{reason} count: {ctx}");
            }
        }
    }
    Some(run(&lab, Daemon::Keepalived, unicast, ADVERTS, GAP, &|i| {
        frame(&lab, i)
    }))
}

fn winning() -> Advert {
    Advert::winning([0x02, 0, 0, 0, 0, 0x64], ATTACKER, VRID, VIP)
}

fn r1_mac(lab: &Lab) -> [u8; 6] {
    lab.node("r1").mac
}

fn keepalived_defends(o: Option<Outcome>, defends: bool) {
    if let Some(o) = o {
        assert_eq!(
            o.kept_vip && o.later_transitions == 0,
            defends,
            "keepalived behaved otherwise than observed before: {o:?}"
        );
    }
}

/// RFC 5798 5.1.1.3 / 7.1: TTL 64 sent to the master's own MAC (not the group MAC) must
/// still fail the TTL-255 rule; minivrrp used to treat every frame to its MAC as unicast.
#[test]
fn ttl_64_advert_to_the_masters_mac_is_dropped_7_1() {
    let k = attack(
        "ttl64mac",
        false,
        Expect::Kernel {
            reason: "bad-ttl",
            iface: false,
        },
        &|lab, _| {
            Advert {
                dst_mac: r1_mac(lab),
                ttl: 64,
                ..winning()
            }
            .frame()
        },
    );
    keepalived_defends(k, true);
}

/// An 802.1Q-tagged advert (VLAN 10) on an interface that runs no VLAN: another VLAN's
/// host is not on this link. The kernel strips the tag before the packet socket sees it.
#[test]
fn vlan_tagged_advert_is_dropped() {
    let k = attack(
        "vlan",
        false,
        Expect::Kernel {
            reason: "vlan-tagged",
            iface: true,
        },
        &|_, _| {
            Advert {
                vlan: Some(10),
                ..winning()
            }
            .frame()
        },
    );
    keepalived_defends(k, true);
}

/// RFC 5798 7.1: TTL 254 to the group (one router away).
#[test]
fn ttl_254_multicast_advert_is_dropped_7_1() {
    let k = attack(
        "ttl254",
        false,
        Expect::Kernel {
            reason: "bad-ttl",
            iface: false,
        },
        &|_, _| {
            Advert {
                ttl: 254,
                ..winning()
            }
            .frame()
        },
    );
    keepalived_defends(k, true);
}

/// A unicast instance hears its configured peers only (keepalived `check_unicast_src`).
#[test]
fn unicast_advert_from_a_non_peer_is_dropped() {
    let k = attack(
        "nonpeer",
        true,
        Expect::Policy {
            reason: "not-a-peer",
        },
        &|lab, _| {
            Advert {
                dst_mac: r1_mac(lab),
                dst: MASTER,
                ttl: 64,
                ..winning()
            }
            .frame()
        },
    );
    keepalived_defends(k, false);
}

/// A unicast instance never listens to the group, even from its peer's address.
#[test]
fn multicast_advert_to_a_unicast_instance_is_dropped() {
    let k = attack(
        "mcast2uni",
        true,
        Expect::Policy {
            reason: "multicast-to-unicast-instance",
        },
        &|_, _| {
            Advert {
                src: PEER.parse().unwrap(),
                ..winning()
            }
            .frame()
        },
    );
    keepalived_defends(k, true);
}

/// RFC 5798 5.1.1.2: a multicast instance's peers send to the group; a unicast advert to it
/// (TTL 255, to its MAC and address) is not VRRP as it runs it.
#[test]
fn unicast_advert_to_a_multicast_instance_is_dropped() {
    let k = attack(
        "uni2mcast",
        false,
        Expect::Kernel {
            reason: "unicast-to-multicast-instance",
            iface: false,
        },
        &|lab, _| {
            Advert {
                dst_mac: r1_mac(lab),
                dst: MASTER,
                ..winning()
            }
            .frame()
        },
    );
    keepalived_defends(k, true);
}

/// An advert claiming to come from the master's own address.
#[test]
fn advert_from_our_own_address_is_dropped() {
    let k = attack(
        "ownaddr",
        false,
        Expect::Policy {
            reason: "own-address",
        },
        &|_, _| {
            Advert {
                src: MASTER,
                ..winning()
            }
            .frame()
        },
    );
    keepalived_defends(k, true);
}

/// One frame builder per source kind, with the reason minivrrp must count it under.
type SourceKinds = Vec<(&'static str, Box<dyn Fn() -> Vec<u8>>)>;

/// Adverts from sources no router on the link can have, or from the instance's own VIP, sent
/// in turn (each kind `ADVERTS / kinds` times): the master keeps its VIP and each kind is
/// counted under its own reason. keepalived, as observed: it ignores every kind but those in
/// `keepalived_yields`, to each of which its master yields (checked one kind per run).
fn impossible_sources(tag: &str, s: &VrrpSpec, kinds: SourceKinds, keepalived_yields: &[&str]) {
    require!(root, "keepalived");
    let lab = Lab::with_routers(tag, 2);
    eprintln!("attack {tag}:");
    let each = ADVERTS / kinds.len();
    let frame = |i: usize| (kinds[i % kinds.len()].1)();
    let d = Daemon::Minivrrp {
        kernel_filter: true,
    };
    let o = run_spec(&lab, d, s, each * kinds.len(), GAP, &frame);
    let ctx = format!("{tag}\n{}\n--- log ---\n{}", o.inst_line, o.log);
    assert!(o.kept_vip, "master lost the VIP: {ctx}");
    assert_eq!(o.later_transitions, 0, "master changed state: {ctx}");
    for (reason, _) in &kinds {
        assert_eq!(
            counter(&o.inst_line, reason),
            each as u64,
            "{reason}: {ctx}"
        );
    }
    let others: Vec<usize> = (0..kinds.len())
        .filter(|k| !keepalived_yields.contains(&kinds[*k].0))
        .collect();
    let frame = |i: usize| (kinds[others[i % others.len()]].1)();
    let k = run_spec(&lab, Daemon::Keepalived, s, ADVERTS, GAP, &frame);
    keepalived_defends(Some(k), true);
    for (name, build) in kinds.iter().filter(|k| keepalived_yields.contains(&k.0)) {
        eprintln!("  keepalived, {name} alone:");
        let k = run_spec(&lab, Daemon::Keepalived, s, ADVERTS, GAP, &|_| build());
        keepalived_defends(Some(k), false);
    }
}

/// 0.0.0.0, 127.0.0.1, 224.0.0.5, 255.255.255.255 and the instance's own VIP as the source
/// of a priority-254 advert: minivrrp made a healthy master yield to each and reported the
/// bogus address as the master.
#[test]
fn adverts_from_impossible_ipv4_sources_are_dropped() {
    let src = |a: Ipv4Addr| -> Box<dyn Fn() -> Vec<u8>> {
        Box::new(move || {
            Advert {
                src: a,
                ..winning()
            }
            .frame()
        })
    };
    impossible_sources(
        "martian4",
        &spec(false),
        vec![
            ("unspecified-source", src(Ipv4Addr::UNSPECIFIED)),
            ("loopback-source", src(Ipv4Addr::LOCALHOST)),
            ("multicast-source", src(Ipv4Addr::new(224, 0, 0, 5))),
            ("broadcast-source", src(Ipv4Addr::BROADCAST)),
            ("own-vip-source", src(VIP)),
        ],
        &["unspecified-source"],
    );
}

/// The same over IPv6 (VRRPv3, ff02::12): `::`, `::1`, ff02::5, the master's own link-local
/// address and its VIP.
#[test]
fn adverts_from_impossible_ipv6_sources_are_dropped() {
    use attack::Advert6;
    use std::net::Ipv6Addr;
    let vip: Ipv6Addr = "fd00::254".parse().unwrap();
    // r1's link-local address (EUI-64 of 02:00:00:00:00:01), the source of its adverts.
    let own: Ipv6Addr = "fe80::ff:fe00:1".parse().unwrap();
    let src = move |a: Ipv6Addr| -> Box<dyn Fn() -> Vec<u8>> {
        Box::new(move || {
            Advert6 {
                src: a,
                ..Advert6::winning([0x02, 0, 0, 0, 0, 0x64], a, VRID, vip)
            }
            .frame()
        })
    };
    impossible_sources(
        "martian6",
        &VrrpSpec::v6(VRID, 200, 0.2, "fd00::254/64"),
        vec![
            ("unspecified-source", src(Ipv6Addr::UNSPECIFIED)),
            ("loopback-source", src(Ipv6Addr::LOCALHOST)),
            ("multicast-source", src("ff02::5".parse().unwrap())),
            ("own-address", src(own)),
            ("own-vip-source", src(vip)),
        ],
        &["unspecified-source", "own-address", "own-vip-source"],
    );
}

/// A frame to another host's MAC reaches the packet socket (PACKET_OTHERHOST) on veth,
/// bridges and promiscuous NICs; the IP stack would drop it, so must we.
#[test]
fn frame_to_another_hosts_mac_is_dropped() {
    let k = attack(
        "otherhost",
        false,
        Expect::Kernel {
            reason: "other-host",
            iface: true,
        },
        &|_, _| {
            Advert {
                dst_mac: [0x02, 0, 0, 0, 0, 0x99],
                ..winning()
            }
            .frame()
        },
    );
    keepalived_defends(k, true);
}

/// RFC 5798 7.1: an address list other than ours is dropped, as keepalived 2.2.7 does.
#[test]
fn advert_with_another_address_list_is_dropped_7_1() {
    let k = attack(
        "addrlist",
        false,
        Expect::Policy {
            reason: "addr-list-mismatch",
        },
        &|_, _| {
            Advert {
                addrs: vec![Ipv4Addr::new(10, 0, 0, 253)],
                ..winning()
            }
            .frame()
        },
    );
    keepalived_defends(k, true);
}

/// RFC 5798 5.2.5: an advert lists at least one address.
#[test]
fn advert_with_no_addresses_is_dropped_5_2_5() {
    let k = attack(
        "count0",
        false,
        Expect::Policy {
            reason: "no-addresses",
        },
        &|_, _| {
            Advert {
                addrs: vec![],
                ..winning()
            }
            .frame()
        },
    );
    keepalived_defends(k, true);
}

/// A flood of every junk kind as fast as the attacker can send: no transition, and with
/// the kernel filter only the frames that look like our VRRP (bad checksum, truncated)
/// reach user space.
#[test]
fn junk_flood_moves_nothing() {
    let tag = "junkflood";
    require!(root, "keepalived");
    const FLOOD: usize = 40_000;
    let lab = Lab::with_routers(tag, 2);
    let mac = [0x02, 0, 0, 0, 0, 0x64];
    let junk = |i: usize| attack::junk(i, mac, ATTACKER, VRID, VIP);
    eprintln!("attack {tag}:");
    for d in [
        Daemon::Minivrrp {
            kernel_filter: true,
        },
        Daemon::Minivrrp {
            kernel_filter: false,
        },
        Daemon::Keepalived,
    ] {
        let o = run(&lab, d, false, FLOOD, Duration::ZERO, &junk);
        let ctx = format!(
            "{d:?}\n{}\n{}\n--- log ---\n{}",
            o.inst_line, o.iface_line, o.log
        );
        eprintln!("    {}\n    {}", o.inst_line, o.iface_line);
        assert!(o.kept_vip, "master lost the VIP: {ctx}");
        assert_eq!(o.later_transitions, 0, "master changed state: {ctx}");
        if d == (Daemon::Minivrrp {
            kernel_filter: true,
        }) {
            // Kinds 3 (bad checksum) and 6 (truncated) look like ours to a frame-only
            // filter; the other six kinds must never reach user space.
            let passed = counter(&o.iface_line, "kernel_delivered")
                + counter(&o.iface_line, "kernel_overflow");
            let lookalike = (FLOOD / attack::JUNK_KINDS * 2) as u64;
            assert!(passed <= lookalike, "{passed} > {lookalike}: {ctx}");
        }
    }
}

/// The control, and the RFC's own limit: a well-formed priority-254 advert with TTL 255 to
/// the group, from a LAN host, wins against a priority-200 master in both daemons (VRRPv3
/// has no authentication, RFC 5798 9). It also proves the attack frames above are valid
/// VRRP, so what stops them is the rule each test names.
#[test]
fn valid_advert_from_a_lan_host_still_wins_rfc5798_9() {
    let tag = "control";
    require!(root, "keepalived");
    let lab = Lab::with_routers(tag, 2);
    eprintln!("attack {tag}:");
    for d in [
        Daemon::Minivrrp {
            kernel_filter: true,
        },
        Daemon::Keepalived,
    ] {
        let o = run(&lab, d, false, ADVERTS, GAP, &|_| winning().frame());
        assert!(
            !o.kept_vip && o.later_transitions >= 1,
            "{d:?} ignored a valid higher-priority advert: {o:?}"
        );
    }
}

/// A raw IPv4 ICMP socket (the ICMP check's fallback when ping sockets are not allowed)
/// gets a copy of every ICMP message the host receives; with ICMP_FILTER it queues echo
/// replies only, so a ping flood at the router cannot fill it and hide a server's reply.
#[test]
fn raw_icmp_socket_queues_echo_replies_only() {
    use minivrrp::sys::icmp::{IcmpKind, IcmpSocket};
    let tag = "icmpfilter";
    require!(root);
    let lab = Lab::with_routers(tag, 1);
    let sock = common::attack::in_netns(&lab.node("r1").ns, || {
        IcmpSocket::open_kind(false, IcmpKind::Raw).expect("raw ICMP socket")
    });
    let out = lab.exec(
        "client",
        &["ping", "-c", "20", "-i", "0.01", "-q", "10.0.0.1"],
    );
    assert!(out.status.success(), "client cannot ping r1");
    // Nothing queued: the 20 echo requests to r1 were filtered out.
    assert_eq!(
        sock.recv_reply().map(|r| r.is_some()),
        Err(nix::errno::Errno::EAGAIN)
    );
    sock.send_echo("10.0.0.100".parse().unwrap(), 7, 1)
        .expect("send echo");
    let got = lab::wait_until(Duration::from_secs(3), || {
        matches!(sock.recv_reply(), Ok(Some(_)))
    });
    assert!(got.is_some(), "no echo reply from the client");
}
