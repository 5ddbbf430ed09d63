//! Self-test of the namespace lab (tests/common/lab.rs) and the pcap reader, using Debian's
//! keepalived as the VRRP daemon: if these pass, the lab is fit to judge minivrrp.
//!
//! Run as root: `cargo test --test lab lab_keepalived::` (needs keepalived, tcpdump, ping, ip).
//! Without root the privileged tests print SKIP (and fail under CI=true). Set `MVLAB_KEEP_DIR=1`
//! to keep each lab's temp dir (configs, daemon logs, pcaps) for inspection.

use crate::common;

use common::lab::{self, Lab, VrrpSpec};
use common::pcap::{self, Kind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

// Frames keepalived 2.2.7 sent (from the shared interop vectors): r1 = 02:77:00:00:00:11.
const V2_ADVERT: &str = "01005e000012027700000011080045c0002800010000ff70d03a0a4d000be00000122101960100013db10a4d00fe0000000000000000";
const GARP: &str =
    "ffffffffffff027700000011080600010800060400010277000000110a4d00feffffffffffff0a4d00fe";
const V3_MULTIVIP: &str = "01005e000012027700000011080045c0002800010000ff70d03a0a4d000be00000123102960300642bc90a4d00fe0a4d00fd0a4d00fc";
const V3_V6_ADVERT: &str = "33330000001202770000001186dd6c01b7d1001870fffe80000000000000007700fffe000011ff0200000000000000000000000000123101960100643b27fd770000000000000000000000000254";
const UNA: &str = "33330000000102770000001186dd6000000000203afffd770000000000000000000000000254ff0200000000000000000000000000018800548020000000fd7700000000000000000000000002540201027700000011";

const R1_VEC_MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x11];

fn vector_frames() -> Vec<pcap::Frame> {
    [V2_ADVERT, GARP, V3_MULTIVIP, V3_V6_ADVERT, UNA]
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let data = pcap::from_hex(h);
            pcap::Frame {
                ts: Duration::new(1_700_000_000 + i as u64, 123_456_000),
                orig_len: data.len() as u32,
                data,
            }
        })
        .collect()
}

/// Byte-swaps a little-endian pcap into the big-endian layout a big-endian writer produces.
fn to_big_endian(le: &[u8]) -> Vec<u8> {
    let mut be = le.to_vec();
    let swap32 = |b: &mut [u8], off: usize| b[off..off + 4].reverse();
    swap32(&mut be, 0);
    be[4..6].reverse();
    be[6..8].reverse();
    for off in [8, 12, 16, 20] {
        swap32(&mut be, off);
    }
    let mut off = 24;
    while off + 16 <= be.len() {
        let incl = u32::from_le_bytes(le[off + 8..off + 12].try_into().unwrap()) as usize;
        for f in 0..4 {
            swap32(&mut be, off + 4 * f);
        }
        off += 16 + incl;
    }
    be
}

#[test]
fn pcap_reader_reads_both_byte_orders_and_classifies_keepalived_frames() {
    let frames = vector_frames();
    let le = pcap::write_le(&frames);
    for (order, buf) in [("le", le.clone()), ("be", to_big_endian(&le))] {
        let p = pcap::parse(&buf).unwrap_or_else(|e| panic!("{order}: {e}"));
        assert_eq!(p.linktype, pcap::LINKTYPE_ETHERNET, "{order}");
        assert_eq!(p.frames.len(), 5, "{order}");
        assert_eq!(p.frames[0].ts, Duration::new(1_700_000_000, 123_456_000));
        assert_eq!(p.frames[4].data, frames[4].data, "{order}");
        let kinds: Vec<Kind> = pcap::classify_all(&p).into_iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds[0],
            Kind::Vrrp(pcap::Advert {
                version: 2,
                vrid: 1,
                priority: 150,
                interval: 1,
                src_ip: IpAddr::V4(Ipv4Addr::new(10, 77, 0, 11)),
                src_mac: R1_VEC_MAC,
                addrs: vec![IpAddr::V4(Ipv4Addr::new(10, 77, 0, 254))],
            })
        );
        assert_eq!(
            kinds[1],
            Kind::Garp {
                sender_ip: Ipv4Addr::new(10, 77, 0, 254),
                sender_mac: R1_VEC_MAC
            }
        );
        let Kind::Vrrp(a) = &kinds[2] else {
            panic!("{order}: multivip not an advert: {:?}", kinds[2]);
        };
        assert_eq!(
            (a.version, a.vrid, a.interval, a.addrs.len()),
            (3, 2, 100, 3)
        );
        let Kind::Vrrp(a) = &kinds[3] else {
            panic!("{order}: v6 advert: {:?}", kinds[3]);
        };
        assert_eq!(a.src_ip, "fe80::77:ff:fe00:11".parse::<IpAddr>().unwrap());
        assert_eq!(a.addrs, vec!["fd77::254".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            kinds[4],
            Kind::UnsolicitedNa {
                target: "fd77::254".parse::<Ipv6Addr>().unwrap(),
                src_mac: R1_VEC_MAC
            }
        );
    }
}

#[test]
fn pcap_reader_drops_a_partially_written_last_record() {
    let le = pcap::write_le(&vector_frames());
    let p = pcap::parse(&le[..le.len() - 3]).unwrap();
    assert_eq!(p.frames.len(), 4);
    assert!(pcap::parse(&le[..10]).is_err());
    assert_eq!(pcap::classify(&[0u8; 5]), Kind::Other);
}

#[test]
fn generated_configs_carry_every_option() {
    let mut s = VrrpSpec::new(50, 150, 2, 1.0, "10.0.0.254/24");
    s.auth_pass = Some("secret".into());
    s.unicast_peers = vec!["10.0.0.2".into()];
    s.preempt = false;
    let k = lab::keepalived_conf("r1", &[s.clone()]);
    for want in [
        "interface br-lan",
        "virtual_router_id 50",
        "priority 150",
        "version 2",
        "advert_int 1\n",
        "nopreempt",
        "auth_pass secret",
        "unicast_peer {\n        10.0.0.2",
        "10.0.0.254/24 dev br-lan",
    ] {
        assert!(k.contains(want), "keepalived.conf lacks {want:?}:\n{k}");
    }
    let u2 = lab::minivrrp_uci("r1", &[s.clone()]);
    for want in [
        "option auth_type 'pass'",
        "option auth_pass 'secret'",
        "option advert_int '1'",
    ] {
        assert!(u2.contains(want), "UCI lacks {want:?}:\n{u2}");
    }
    s.version = 3;
    s.advert_int = 0.1;
    let u = lab::minivrrp_uci("r1", &[s.clone()]);
    assert!(!u.contains("auth_pass"), "v3 has no authentication:\n{u}");
    for want in [
        "config instance 'vi50'",
        "option interface 'br-lan'",
        "option vrid '50'",
        "option priority '150'",
        "option version '3'",
        "option advert_int '0.1'",
        "option preempt '0'",
        "list vip '10.0.0.254/24'",
        "list unicast_peer '10.0.0.2'",
    ] {
        assert!(u.contains(want), "UCI lacks {want:?}:\n{u}");
    }
    // RFC 5798 6.1: priority 100 at 1 s gives Skew 0.609 s, Master_Down 3.609 s.
    let b = VrrpSpec::new(50, 100, 3, 1.0, "10.0.0.254/24");
    assert_eq!(b.skew_time().as_millis(), 609);
    assert_eq!(b.master_down_interval().as_millis(), 3609);
}

fn ours(prefix: &str) -> Vec<String> {
    common::netns::netns_list()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn lab_removes_its_namespaces_even_when_the_test_panics() {
    require!(root);
    let prefix = std::sync::Mutex::new(String::new());
    let r = std::panic::catch_unwind(|| {
        let lab = Lab::new("panic");
        let prefix = {
            let mut p = prefix.lock().unwrap();
            *p = format!("{}-", lab.prefix);
            p.clone()
        };
        let _sleeper = lab.spawn("r1", "sleep", &["sleep", "600"]);
        assert_eq!(ours(&prefix).len(), 5, "switch + r1..r3 + client");
        panic!("deliberate");
    });
    assert!(r.is_err());
    let prefix = prefix.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(!prefix.is_empty(), "the lab was never built");
    assert!(ours(&prefix).is_empty(), "left behind: {:?}", ours(&prefix));
}

/// The fixture under the lab, used alone as the host tier does: its namespaces and the
/// servers it started go when a test panics, and so does a process the test started inside
/// by itself.
#[test]
fn netns_fixture_removes_its_namespaces_and_processes_even_when_the_test_panics() {
    require!(root);
    let seen = std::sync::Mutex::new((String::new(), Vec::new()));
    let r = std::panic::catch_unwind(|| {
        let mut ns = common::netns::Netns::new("npanic", &["a", "b"]);
        ns.link(0, "v0", "10.77.9.1/24", 1, "v1", "10.77.9.2/24");
        let ready = ns.spawn_server(1, &["sh", "-c", "echo ready; exec sleep 600"]);
        assert_eq!(ready.trim(), "ready");
        // A daemon of the test's own: its shell exits, it stays behind in namespace a.
        let out = ns.exec(0, &["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"]);
        let stray: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let prefix = format!("{}-", ns.prefix);
        assert_eq!(ours(&prefix).len(), 2);
        *seen.lock().unwrap() = (prefix, vec![ns.servers_pids()[0], stray]);
        panic!("deliberate");
    });
    assert!(r.is_err());
    let (prefix, pids) = seen.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(!prefix.is_empty(), "the namespaces were never built");
    assert!(ours(&prefix).is_empty(), "left behind: {:?}", ours(&prefix));
    for pid in pids {
        // Gone, or a zombie its new parent has not reaped yet.
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|st| st.rsplit(") ").next().is_some_and(|r| !r.starts_with('Z')));
        assert!(!alive, "process {pid} still alive");
    }
}

#[test]
fn lab_wires_nodes_to_one_bridge() {
    require!(root);
    let lab = Lab::new("wire");
    let out = lab.exec("client", &["ip", "-o", "addr", "show", "dev", "br-lan"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("10.0.0.100/24") && text.contains("fd00::100/64"),
        "{text}"
    );
    let ping = lab.exec("client", &["ping", "-c", "1", "-w", "5", "10.0.0.3"]);
    assert!(ping.status.success(), "client cannot reach r3");
    let ping6 = lab.exec("r1", &["ping", "-6", "-c", "1", "-w", "5", "fd00::2"]);
    assert!(ping6.status.success(), "r1 cannot reach r2 over IPv6");
    assert_eq!(lab.holders("10.0.0.2"), vec!["r2".to_string()]);
    lab.set_link("r3", false);
    let ping = lab.exec("client", &["ping", "-c", "1", "-W", "1", "10.0.0.3"]);
    assert!(!ping.status.success(), "r3 answered with its link down");
    let t_up = std::time::Instant::now();
    lab.set_link("r3", true);
    assert!(
        lab.wait_oper_up("r3", Duration::from_secs(5)),
        "r3 link not up"
    );
    eprintln!("r3 operstate UP {:?} after link up", t_up.elapsed());
    let ping = lab.exec("client", &["ping", "-c", "1", "-W", "2", "10.0.0.3"]);
    assert!(ping.status.success(), "r3 unreachable after link up");
}

/// Two keepalived routers, IPv4 and IPv6 instances (VRRPv3, 0.2 s): r1 (150) wins, the VIPs
/// live only on r1 and answer the client; after `kill -9` of r1, r2 takes over within
/// 2 × Master_Down_Interval + slack and the capture shows its adverts, GARP and NA.
#[test]
fn keepalived_pair_elects_higher_priority_and_fails_over_after_kill() {
    require!(root, "keepalived");
    require!("tcpdump", "ping");
    let prefix;
    {
        let lab = Lab::new("kp");
        prefix = format!("{}-", lab.prefix);
        let cap = lab.capture("kp");
        let spec = |prio: u8| {
            let v4 = VrrpSpec::new(50, prio, 3, 0.2, "10.0.0.254/24");
            let mut v6 = VrrpSpec::new(51, prio, 3, 0.2, "fd00::254/64");
            v6.name = "vi51".into();
            vec![v4, v6]
        };
        let mut r1 = lab.spawn_keepalived("r1", &spec(150));
        let _r2 = lab.spawn_keepalived("r2", &spec(100));
        let backup = &spec(100)[0];
        let settle = Duration::from_secs(10);
        let (h, _) = lab.wait_holders("10.0.0.254", &["r1"], settle);
        assert_eq!(h, vec!["r1"], "r1 log:\n{}", r1.log_text());
        let (h6, _) = lab.wait_holders("fd00::254", &["r1"], settle);
        assert_eq!(h6, vec!["r1"]);
        // Let r2 hear a few adverts so it is settled in BACKUP, then check it stays there.
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(lab.holders("10.0.0.254"), vec!["r1"]);
        assert_eq!(lab.holders("fd00::254"), vec!["r1"]);

        let ping = lab.exec(
            "client",
            &["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.254"],
        );
        assert!(ping.status.success(), "client cannot ping the VIP");
        let ping6 = lab.exec(
            "client",
            &["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "fd00::254"],
        );
        assert!(ping6.status.success(), "client cannot ping the IPv6 VIP");

        let r1_mac = lab.node("r1").mac;
        let r2_mac = lab.node("r2").mac;
        let t_kill = r1.kill_hard();
        let bound = backup.master_down_interval() * 2 + Duration::from_secs(2);
        // SIGKILL leaves r1's VIP configured (keepalived gets no chance to remove it), so wait
        // for r2 to hold it rather than for r1 to lose it.
        let start = std::time::Instant::now();
        while !lab.node_has_addr("r2", "10.0.0.254") && start.elapsed() < bound {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            lab.node_has_addr("r2", "10.0.0.254"),
            "r2 did not take over within {bound:?}"
        );
        let wait = Duration::from_secs(3);
        let advert = cap
            .wait_for(t_kill, wait, |k| {
                matches!(k, Kind::Vrrp(a) if a.src_mac == r2_mac && a.vrid == 50 && a.priority == 100)
            })
            .expect("no advert from r2 after the kill");
        let garp = cap
            .wait_for(t_kill, wait, |k| {
                matches!(k, Kind::Garp { sender_ip, sender_mac }
                    if *sender_mac == r2_mac && *sender_ip == Ipv4Addr::new(10, 0, 0, 254))
            })
            .expect("no GARP from r2 after the kill");
        let na = cap
            .wait_for(t_kill, wait, |k| {
                matches!(k, Kind::UnsolicitedNa { target, src_mac }
                    if *src_mac == r2_mac && *target == "fd00::254".parse::<Ipv6Addr>().unwrap())
            })
            .expect("no unsolicited NA from r2 after the kill");
        let took = advert.ts.saturating_sub(t_kill);
        assert!(took <= bound, "first r2 advert {took:?} after the kill");
        assert!(garp.ts >= advert.ts.saturating_sub(Duration::from_millis(50)));
        assert!(na.ts >= t_kill);
        // Before the kill only r1 advertised.
        let seen = cap.stop();
        let before: Vec<_> = pcap::classify_all(&seen)
            .into_iter()
            .filter(|s| s.ts < t_kill)
            .filter_map(|s| match s.kind {
                Kind::Vrrp(a) => Some(a),
                _ => None,
            })
            .collect();
        assert!(before
            .iter()
            .any(|a| a.src_mac == r1_mac && a.priority == 150));
        let ping = lab.exec(
            "client",
            &["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.254"],
        );
        assert!(ping.status.success(), "VIP unreachable after failover");
    }
    assert!(ours(&prefix).is_empty(), "left behind: {:?}", ours(&prefix));
}

/// VRRPv2 with a password over unicast: r1 answers the client; when r1's link goes down r2
/// takes over, and when it comes back r1 preempts.
#[test]
fn keepalived_v2_unicast_auth_fails_over_on_link_down_and_preempts_back() {
    require!(root, "keepalived");
    let lab = Lab::new("ku");
    let spec = |prio: u8, peer: &str| {
        let mut s = VrrpSpec::new(60, prio, 2, 1.0, "10.0.0.254/24");
        s.auth_pass = Some("pw123".into());
        s.unicast_peers = vec![peer.to_string()];
        vec![s]
    };
    let r1 = lab.spawn_keepalived("r1", &spec(150, "10.0.0.2"));
    let _r2 = lab.spawn_keepalived("r2", &spec(100, "10.0.0.1"));
    let mdi = spec(100, "")[0].master_down_interval();
    let bound = mdi * 2 + Duration::from_secs(2);
    let (h, _) = lab.wait_holders("10.0.0.254", &["r1"], bound + Duration::from_secs(3));
    assert_eq!(h, vec!["r1"], "r1 log:\n{}", r1.log_text());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lab.holders("10.0.0.254"), vec!["r1"]);
    lab.set_link("r1", false);
    let (h, _) = lab.wait_holders("10.0.0.254", &["r2"], bound);
    assert!(h.contains(&"r2".to_string()), "r2 did not take over: {h:?}");
    lab.set_link("r1", true);
    let (h, _) = lab.wait_holders("10.0.0.254", &["r1"], bound + Duration::from_secs(3));
    assert_eq!(h, vec!["r1"], "r1 did not preempt back");
    let ping = lab.exec(
        "client",
        &["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.254"],
    );
    assert!(ping.status.success());
}

/// The UCI the bench feeds minivrrp must pass `minivrrp check` (runs when MINIVRRP_BIN is set).
#[test]
fn generated_uci_passes_minivrrp_check() {
    let Some(bin) = std::env::var_os("MINIVRRP_BIN") else {
        eprintln!("SKIP generated_uci_passes_minivrrp_check: MINIVRRP_BIN is not set");
        return;
    };
    let dir = std::env::temp_dir().join(format!("mvlab-uci-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut v2 = VrrpSpec::new(50, 150, 2, 1.0, "10.0.0.254/24");
    v2.auth_pass = Some("pw".into());
    v2.unicast_peers = vec!["10.0.0.2".into()];
    let mut v6 = VrrpSpec::new(51, 100, 3, 0.1, "fd00::254/64");
    v6.preempt = false;
    let many: Vec<VrrpSpec> = (1..=50)
        .map(|i| VrrpSpec::new(i, 150, 3, 1.0, &format!("10.0.1.{i}/24")))
        .collect();
    for (name, specs) in [("pair", vec![v2, v6]), ("many", many)] {
        let f = dir.join(format!("{name}.uci"));
        std::fs::write(&f, lab::minivrrp_uci("r1", &specs)).unwrap();
        let out = std::process::Command::new(&bin)
            .args(["check", "-f"])
            .arg(&f)
            .output()
            .expect("run minivrrp check");
        assert!(
            out.status.success(),
            "{name}: minivrrp check rejected the generated config:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
