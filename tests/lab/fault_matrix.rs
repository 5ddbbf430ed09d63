//! The fault matrix in the namespace lab (tests/common/lab.rs): what a VRRP router must survive
//! beyond the happy path, each case a test that fails on a daemon that gets it wrong.
//! `cargo bench --bench faults` runs the same faults against keepalived and minivrrp and prints
//! the figures side by side; here only minivrrp is run, against protocol bounds.
//!
//! Run as root: `cargo test --test lab fault_matrix::`. Without root every test prints SKIP (and
//! fails under CI=true).

use crate::common;

use common::lab::{logs, Lab, VrrpSpec};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const VIP: &str = "10.0.0.254";
const VIP_CIDR: &str = "10.0.0.254/24";
const VIP6: &str = "fd00::254";
const VIP6_CIDR: &str = "fd00::254/64";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_minivrrp"))
}

/// The default `vip_lifetime` (src/vrrp/vip_lease.rs): max(2, ⌈1.5 × (3 × advert_int +
/// skew of priority 1)⌉) seconds, written out here so the test checks the daemon's choice.
fn default_lifetime(s: &VrrpSpec) -> Duration {
    let mdi_max =
        3.0 * s.advert_int + 255.0 / 256.0 * if s.version == 3 { s.advert_int } else { 1.0 };
    Duration::from_secs(((1.5 * mdi_max - 1e-9).ceil() as u64).max(2))
}

/// Dead-man VIPs: `kill -9` of the master's daemon with its link left up. The dead router's
/// kernel must drop the VIPs (IPv4 and IPv6) by itself within the lease (lifetime + 1 s of
/// kernel rounding after the last refresh, so at most that after the kill), the backup takes
/// over, and the client reaches the VIP on the new master only. A daemon that installs
/// permanent addresses leaves them on the dead router forever (keepalived does).
#[test]
fn kill9_master_with_link_up_loses_its_vips_within_the_lifetime() {
    require!(root, "ping");
    let lab = Lab::with_routers("deadman", 2);
    let v4 = |p: u8| VrrpSpec::new(50, p, 3, 1.0, VIP_CIDR);
    let v6 = |p: u8| VrrpSpec::v6(51, p, 1.0, VIP6_CIDR);
    let mut r1 = lab.spawn_minivrrp("r1", &bin(), &[v4(150), v6(150)]);
    let r2 = lab.spawn_minivrrp("r2", &bin(), &[v4(100), v6(100)]);
    let bound = v4(100).master_down_interval() * 2 + Duration::from_secs(4);
    for vip in [VIP, VIP6] {
        let (h, _) = lab.wait_holders(vip, &["r1"], bound);
        assert_eq!(h, ["r1"], "{vip}: election\n{}", logs(&[&r1, &r2]));
    }
    // Several refreshes have happened by now (a third of the lifetime each).
    std::thread::sleep(Duration::from_secs(3));
    let lifetime = default_lifetime(&v4(150));
    assert_eq!(lifetime, Duration::from_secs(6));

    r1.kill_hard();
    let killed = Instant::now();
    let limit = lifetime + Duration::from_secs(1);
    let mut gone = [None, None];
    while killed.elapsed() < limit + Duration::from_secs(3) && gone.iter().any(Option::is_none) {
        for (k, vip) in [VIP, VIP6].iter().enumerate() {
            if gone[k].is_none() && !lab.node_has_addr("r1", vip) {
                gone[k] = Some(killed.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "kill -9: VIP gone from the dead r1 after {:?} (v4), {:?} (v6); lifetime {lifetime:?}",
        gone[0], gone[1]
    );
    for (k, vip) in [VIP, VIP6].iter().enumerate() {
        let g = gone[k]
            .unwrap_or_else(|| panic!("{vip} still on the dead r1 after {:?}", killed.elapsed()));
        assert!(
            g <= limit,
            "{vip} left r1 {g:?} after the kill, over the bound {limit:?}"
        );
    }
    for vip in [VIP, VIP6] {
        let (h, _) = lab.wait_holders(vip, &["r2"], bound);
        assert_eq!(h, ["r2"], "{vip}: takeover\n{}", logs(&[&r2]));
    }
    assert!(lab.client_pings(VIP), "client cannot reach the VIP on r2");
    assert!(
        lab.client_pings(VIP6),
        "client cannot reach the IPv6 VIP on r2"
    );
    let (mac, _) = lab
        .neigh("client", VIP)
        .expect("client has no ARP entry for the VIP");
    assert_eq!(mac, lab.node("r2").mac_str());
}

/// Dead-man VIPs must never flap on a healthy master: with 0.1 s adverts (the shortest
/// default lifetime, 2 s, refreshed every 0.67 s) the master holds both VIPs for 30 s without
/// a single removal, seen by `ip monitor address` in its namespace (every kernel RTM_DELADDR)
/// and by polling.
#[test]
fn healthy_master_never_loses_its_leased_vips() {
    require!(root, "ping");
    let lab = Lab::with_routers("noflap", 2);
    let v4 = |p: u8| VrrpSpec::new(50, p, 3, 0.1, VIP_CIDR);
    let v6 = |p: u8| VrrpSpec::v6(51, p, 0.1, VIP6_CIDR);
    let r1 = lab.spawn_minivrrp("r1", &bin(), &[v4(150), v6(150)]);
    let r2 = lab.spawn_minivrrp("r2", &bin(), &[v4(100), v6(100)]);
    for vip in [VIP, VIP6] {
        let (h, _) = lab.wait_holders(vip, &["r1"], Duration::from_secs(5));
        assert_eq!(h, ["r1"], "{vip}: election\n{}", logs(&[&r1, &r2]));
    }
    let mon = lab.spawn("r1", "monitor", &["ip", "-ts", "monitor", "address"]);
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let mut samples = 0;
    while start.elapsed() < Duration::from_secs(31) {
        for vip in [VIP, VIP6] {
            assert!(
                lab.node_has_addr("r1", vip),
                "{vip} missing on the healthy master after {:?}\n{}",
                start.elapsed(),
                logs(&[&r1, &mon])
            );
        }
        samples += 1;
        std::thread::sleep(Duration::from_millis(25));
    }
    let events = mon.log_text();
    let deleted: Vec<&str> = events.lines().filter(|l| l.contains("Deleted")).collect();
    assert!(
        deleted.is_empty(),
        "VIP removed on a healthy master:\n{}",
        deleted.join("\n")
    );
    // The refreshes are visible as RTM_NEWADDR: 30 s / 0.67 s ≈ 45 per VIP.
    let refreshes = events
        .lines()
        .filter(|l| l.contains("10.0.0.254/24"))
        .count();
    let refreshes6 = events
        .lines()
        .filter(|l| l.contains("fd00::254/64"))
        .count();
    eprintln!(
        "healthy master: {samples} samples in 31 s, refreshes seen v4 {refreshes} v6 {refreshes6}"
    );
    assert!(
        (35..=60).contains(&refreshes) && (35..=60).contains(&refreshes6),
        "expected about 46 refreshes of each VIP in 31 s, saw {refreshes} and {refreshes6}\n{events}"
    );
    assert!(lab.holders(VIP) == ["r1"], "VIP also on the backup");
}

/// `vip_lifetime '0'` keeps keepalived's permanent addresses: after `kill -9` the dead master
/// keeps its VIP (until the restart clears it, tested in vrrp_lab).
#[test]
fn vip_lifetime_zero_installs_permanent_addresses() {
    require!(root, "ping");
    let lab = Lab::with_routers("permanent", 1);
    let mut s = VrrpSpec::new(50, 150, 3, 0.1, VIP_CIDR);
    s.extra_uci.push("option vip_lifetime '0'".into());
    let mut r1 = lab.spawn_minivrrp("r1", &bin(), &[s.clone()]);
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(5));
    assert_eq!(h, ["r1"], "{}", logs(&[&r1]));
    let shown =
        String::from_utf8_lossy(&lab.exec("r1", &["ip", "-o", "addr", "show"]).stdout).to_string();
    let line = shown
        .lines()
        .find(|l| l.contains("10.0.0.254/24"))
        .unwrap_or("");
    assert!(line.contains("valid_lft forever"), "{shown}");
    r1.kill_hard();
    std::thread::sleep(Duration::from_secs(4));
    assert!(lab.node_has_addr("r1", VIP), "permanent VIP vanished");
    lab.del_addr("r1", VIP_CIDR);
}

/// A hung notify script stalls nothing: vi1's `notify_backup` sleeps for a minute; vi2's
/// `notify_master` still runs as soon as vi2 becomes master, both VIPs come up on time, and
/// vi1's own `notify_master` (queued behind its hung `notify_backup`, order per instance is
/// kept) runs once `notify_timeout` (2 s) killed the hung one.
#[test]
fn hung_notify_script_delays_no_other_instance_and_is_killed_at_its_timeout() {
    require!(root, "ping");
    let lab = Lab::with_routers("hungnotify", 1);
    let m1 = lab.dir.join("vi1-master");
    let m2 = lab.dir.join("vi2-master");
    let uci = format!(
        "config globals 'globals'\n\toption router_id 'r1'\n\toption notify_timeout '2'\n\n\
         config instance 'vi1'\n\toption interface 'br-lan'\n\toption vrid '50'\n\toption version '3'\n\
         \toption advert_int '0.1'\n\tlist vip '10.0.0.250/24'\n\toption notify_backup 'sleep 60'\n\
         \toption notify_master 'touch {}'\n\n\
         config instance 'vi2'\n\toption interface 'br-lan'\n\toption vrid '51'\n\toption version '3'\n\
         \toption advert_int '0.1'\n\tlist vip '10.0.0.251/24'\n\toption notify_master 'touch {}'\n",
        m1.display(),
        m2.display()
    );
    let started = Instant::now();
    let r1 = lab.spawn_minivrrp_text("r1", &bin(), &uci, "minivrrp");
    let mut t_vip2 = None;
    let mut t_m2 = None;
    let mut t_m1 = None;
    while started.elapsed() < Duration::from_secs(8) && t_m1.is_none() {
        let t = started.elapsed();
        if t_vip2.is_none() && lab.node_has_addr("r1", "10.0.0.251") {
            t_vip2 = Some(t);
        }
        if t_m2.is_none() && m2.exists() {
            t_m2 = Some(t);
        }
        if t_m1.is_none() && m1.exists() {
            t_m1 = Some(t);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("hung notify_backup: vi2 VIP at {t_vip2:?}, vi2 notify_master at {t_m2:?}, vi1 notify_master at {t_m1:?}");
    let log = r1.log_text();
    let t_vip2 = t_vip2.unwrap_or_else(|| panic!("vi2 never became master\n{log}"));
    let t_m2 = t_m2.unwrap_or_else(|| panic!("vi2's notify_master never ran\n{log}"));
    let t_m1 = t_m1.unwrap_or_else(|| panic!("vi1's notify_master never ran\n{log}"));
    assert!(
        lab.node_has_addr("r1", "10.0.0.250"),
        "vi1 not master\n{log}"
    );
    // vi2 is not held up by vi1's hung script: its notify runs right after its transition.
    assert!(
        t_m2 < t_vip2 + Duration::from_secs(1),
        "vi2's notify_master waited\n{log}"
    );
    // vi1's notify_master waited for the kill of its notify_backup (started with vi1's BACKUP
    // at start-up, killed 2 s later), and not much longer.
    assert!(
        t_m1 >= Duration::from_millis(1900),
        "vi1's notify_master overtook its notify_backup ({t_m1:?})"
    );
    assert!(
        t_m1 < t_vip2 + Duration::from_secs(4),
        "vi1's notify_master too late ({t_m1:?})\n{log}"
    );
    assert!(log.contains("still running after 2 s: killed"), "{log}");
}

/// Sends a VRRPv3 advert for `vrid` (priority `prio`, 1 s, VIP `vip`, from 10.0.0.99 with MAC
/// 02:00:00:00:00:63) on `br-lan` of namespace `ns`, about every `gap`, until dropped: a
/// third router on the wire, kept busy enough that the daemon reads adverts on every turn.
struct AdvertFlood {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl AdvertFlood {
    fn start(ns: &str, vrid: u8, prio: u8, vip: std::net::Ipv4Addr, gap: Duration) -> AdvertFlood {
        use minivrrp::vrrp::frame::emit_advert_v4;
        use minivrrp::vrrp::wire::{AddrList, Auth, ChecksumMode, Version, VrrpRepr};
        let mut addrs = AddrList::new();
        addrs.push(std::net::IpAddr::V4(vip)).unwrap();
        let repr = VrrpRepr {
            version: Version::V3,
            vrid,
            priority: prio,
            adver_int: 100,
            auth: Auth::None,
            addrs,
        };
        let mut frame = [0u8; 128];
        let mac = smoltcp::wire::EthernetAddress([2, 0, 0, 0, 0, 0x63]);
        let n = emit_advert_v4(
            &mut frame,
            &repr,
            mac,
            [10, 0, 0, 99].into(),
            1,
            ChecksumMode::PseudoHeader,
        )
        .expect("advert frame");
        let frame = frame[..n].to_vec();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = common::netns::spawn_in(ns, move || {
            // An AF_PACKET socket on the namespace's br-lan.
            unsafe {
                let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
                assert!(fd >= 0, "packet socket");
                let ifindex = libc::if_nametoindex(c"br-lan".as_ptr());
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_ifindex = ifindex as i32;
                sll.sll_halen = 6;
                let mut sent = 0u64;
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = libc::sendto(
                        fd,
                        frame.as_ptr().cast(),
                        frame.len(),
                        0,
                        (&sll as *const libc::sockaddr_ll).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    );
                    if r > 0 {
                        sent += 1;
                    }
                    std::thread::sleep(gap);
                }
                libc::close(fd);
                sent
            }
        });
        AdvertFlood {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap_or(0))
    }
}

impl Drop for AdvertFlood {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Stable identities (RFC 5798 7.1: an advert belongs to the VRID on its interface): adverts
/// read in the same loop turn as a SIGHUP that reorders the instances must still reach their
/// own instance. A third router floods vi_a's VRID 50 with priority 200 (vi_a backs off,
/// expected); 100 reloads swap vi_a and vi_b in the file. A daemon that queues adverts by
/// instance position hands some of them to vi_b (VRID 51), which then steps down to BACKUP.
#[test]
fn reload_reordering_instances_never_hands_an_advert_to_the_wrong_instance() {
    require!(root, "ping");
    let lab = Lab::with_routers("stableid", 1);
    let inst = |n: &str, vrid: u8, vip: &str| {
        format!(
            "config instance '{n}'\n\toption interface 'br-lan'\n\toption vrid '{vrid}'\n\
             \toption version '3'\n\toption advert_int '1'\n\toption priority '100'\n\
             \tlist vip '{vip}/24'\n\n"
        )
    };
    let head = "config globals 'globals'\n\toption router_id 'r1'\n\n";
    let (a, b) = (
        inst("vi_a", 50, "10.0.0.250"),
        inst("vi_b", 51, "10.0.0.251"),
    );
    let ab = format!("{head}{a}{b}");
    let ba = format!("{head}{b}{a}");
    let r1 = lab.spawn_minivrrp_text("r1", &bin(), &ab, "minivrrp");
    let conf = lab.dir.join("r1-minivrrp.uci");
    let (h, _) = lab.wait_holders("10.0.0.251", &["r1"], Duration::from_secs(10));
    assert_eq!(h, ["r1"], "vi_b master\n{}", r1.log_text());
    let flood = AdvertFlood::start(
        &lab.node("client").ns,
        50,
        200,
        [10, 0, 0, 250].into(),
        Duration::from_micros(300),
    );
    // vi_a hears the higher priority and backs off; vi_b is not concerned.
    let gone = common::lab::wait_until(Duration::from_secs(5), || {
        !lab.node_has_addr("r1", "10.0.0.250")
    });
    assert!(gone.is_some(), "vi_a did not back off\n{}", r1.log_text());
    let before = r1.log_text().lines().count();
    for k in 0..100 {
        std::fs::write(&conf, if k % 2 == 0 { &ba } else { &ab }).unwrap();
        r1.signal(libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            lab.node_has_addr("r1", "10.0.0.251"),
            "vi_b lost its VIP after reload {k}\n{}",
            r1.log_text()
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let sent = flood.stop();
    let log = r1.log_text();
    let after: Vec<&str> = log.lines().skip(before).collect();
    let reloads = after
        .iter()
        .filter(|l| l.contains("reload: applied"))
        .count();
    let moved: Vec<&&str> = after
        .iter()
        .filter(|l| l.contains("vi_b") && l.contains(" -> "))
        .collect();
    eprintln!(
        "stable identity: {sent} flood adverts, {reloads} reloads applied, vi_b transitions {}",
        moved.len()
    );
    assert!(reloads >= 90, "reloads applied: {reloads}\n{log}");
    assert!(
        moved.is_empty(),
        "vi_b moved:\n{}",
        moved
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(lab.node_has_addr("r1", "10.0.0.251"));
}

// --- The fault matrix proper (tests/common/faults.rs), minivrrp against the protocol's bounds.

use common::faults;
use common::lab::Impl;

fn me() -> Impl {
    Impl::Minivrrp(bin())
}

const ADV: f64 = 0.5;

/// SIGSTOP of the master for 2 x Master_Down_Interval (the backup takes over; the frozen
/// master's leased VIP expires), then SIGCONT: within one advert interval there is one master
/// again (RFC 5798 6.4.3: the resumed higher-priority master's advert makes the other back
/// off), and only it holds the VIP.
#[test]
fn sigstop_master_then_sigcont_leaves_one_master_within_one_advert_interval() {
    require!(root, "ping", "tcpdump");
    let lab = Lab::with_routers("freeze", 2);
    let cap = lab.capture("freeze");
    let f = faults::freeze(&lab, &cap, &me(), ADV).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("freeze: {f:?}");
    assert!(
        f.took_over,
        "r2 did not take over from the frozen r1: {f:?}"
    );
    assert!(
        f.two_masters_for <= Duration::from_secs_f64(ADV),
        "two masters for {:?} after SIGCONT (bound: one advert interval, {ADV} s)",
        f.two_masters_for
    );
    assert_eq!(f.masters_at_end, 1, "{f:?}");
    assert_eq!(f.holders_after, ["r1"], "{f:?}");
}

/// The master's link flaps every 200 ms for 10 s: afterwards exactly one master advertises and
/// only it holds the VIP (the higher priority r1, preempting).
#[test]
fn link_flapping_on_the_master_ends_with_one_master_and_the_vip_only_there() {
    require!(root, "ping", "tcpdump");
    let lab = Lab::with_routers("flap", 2);
    let cap = lab.capture("flap");
    let f = faults::flap(
        &lab,
        &cap,
        &me(),
        ADV,
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("flap: {f:?}");
    assert!(f.alive, "{f:?}");
    assert_eq!(f.toggles, 50, "{f:?}");
    assert_eq!(f.holders_after, ["r1"], "{f:?}");
    assert_eq!(f.masters_at_end, 1, "{f:?}");
}

/// Partition and heal with three routers: while r1 is cut off, each side has one master (r1
/// alone; r2 over r3) and the VIP on each; after the heal the lower master stops within one
/// advert interval and only r1 holds the VIP.
#[test]
fn partition_of_three_routers_has_one_master_per_side_and_one_after_heal() {
    require!(root, "ping", "tcpdump");
    let lab = Lab::with_routers("split", 3);
    let cap = lab.capture("split");
    let s = faults::split_and_heal(&lab, &cap, &me(), ADV).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("split: {s:?}");
    assert_eq!(s.holders_split, ["r1", "r2"], "{s:?}");
    assert_eq!(s.masters_main_side, 1, "{s:?}");
    assert!(
        s.two_masters_for <= Duration::from_secs_f64(ADV),
        "two masters for {:?} after the heal (bound: one advert interval)",
        s.two_masters_for
    );
    assert_eq!(s.holders_after, ["r1"], "{s:?}");
    assert_eq!(s.masters_at_end, 1, "{s:?}");
}

/// 100 SIGHUPs in 5 s with an unchanged config: no transition anywhere, the backup never
/// advertises, and the master's adverts never pause longer than 1.5 advert intervals.
#[test]
fn hundred_reloads_in_five_seconds_cause_no_transition_and_no_advert_gap() {
    require!(root, "ping", "tcpdump");
    let lab = Lab::with_routers("reloads", 2);
    let cap = lab.capture("reloads");
    let r = faults::reloads(&lab, &cap, &me(), ADV, 100, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("reloads: {r:?}");
    assert!(r.alive, "{r:?}");
    assert_eq!(r.transitions, 0, "{r:?}");
    assert_eq!(r.backup_adverts, 0, "{r:?}");
    assert!(
        r.max_gap <= Duration::from_secs_f64(1.5 * ADV),
        "advert gap {:?} over 1.5 intervals",
        r.max_gap
    );
}

/// A reload with a broken file keeps the running config (still master, still advertising) and
/// logs the error with FILE:LINE.
#[test]
fn reload_with_a_broken_config_keeps_running_and_logs_file_and_line() {
    require!(root, "ping", "tcpdump");
    let lab = Lab::with_routers("brokenhup", 2);
    let cap = lab.capture("brokenhup");
    let b = faults::broken_reload(&lab, &cap, &me(), ADV).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("broken reload: {b:?}");
    assert!(b.alive && b.keeps_running_config, "{b:?}");
    assert!(b.error_with_file_line, "{b:?}");
    assert!(
        b.error_line.contains("vrid") && b.error_line.contains("300"),
        "{b:?}"
    );
}
