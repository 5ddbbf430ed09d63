//! Wire interoperability with FRR's vrrpd (Debian 12 `frr` 8.4.4), the second VRRP
//! implementation beside keepalived: zebra and vrrpd started by hand in a lab namespace with
//! their own path space (config, pid, vty and zserv sockets in the lab's temp dir; no system
//! service), on the macvlans FRR's documentation asks for (bridge mode, the virtual MAC,
//! `addrgenmode random`, the VIPs on them). VRRPv3, VRID 5.
//!
//! Each walk runs minivrrp (r1) against FRR (r2) through every change of mastership in both
//! directions: election with FRR higher, FRR's vrrpd stopped (priority 0) and minivrrp taking
//! over, FRR back as the lower priority, minivrrp stopped (priority 0) and FRR taking over,
//! minivrrp back as the higher priority (preemption), FRR restarted as the higher priority
//! (preemption back). The two sides run different advert intervals, so each learns the
//! other's as a backup (RFC 5798 6.4.2). IPv6 walks put the link-local VIP first, and add an
//! unrelated address on minivrrp's interface while it is master: its advert source must stay
//! the interface's own link-local (RFC 5798 5.1.2.1), or it drops FRR's adverts, sent from
//! FRR's copy of that VIP, as its own.
//!
//! FRR routers in a mixed pair need `arp_ignore=1` on the base interface (README): the VIP
//! sits on a macvlan of it, and by default the base interface answers ARP for it too.
//!
//! Run as root: `cargo test --test lab frr_interop::` (needs FRR in /usr/lib/frr, vtysh, ip).
//! Without them the tests print SKIP.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::lab::{logs, Lab, Proc, VrrpSpec, LAN_IF};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_minivrrp");
const VRID: u8 = 5;
const FRR: &str = "/usr/lib/frr";

fn prereqs(name: &str) -> bool {
    if !common::require_root(name) {
        return false;
    }
    for tool in [
        format!("{FRR}/zebra"),
        format!("{FRR}/vrrpd"),
        "/usr/bin/vtysh".to_string(),
    ] {
        if !Path::new(&tool).is_file() {
            eprintln!("SKIP {name}: no {tool} (Debian package frr)");
            return false;
        }
    }
    true
}

/// Runs a command in `node`, failing the test on error.
fn exec_ok(lab: &Lab, node: &str, cmd: &[&str]) -> String {
    let out = lab.exec(node, cmd);
    assert!(
        out.status.success(),
        "{node}: {cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` until it gives Some, for at most `timeout`.
fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// FRR's zebra and vrrpd in one lab node, in their own path space.
struct Frr<'a> {
    lab: &'a Lab,
    node: String,
    dir: PathBuf,
    v6: bool,
    interval_ms: u32,
    vrrpd: Option<Proc>,
    starts: u32,
    // Last: dropped after vrrpd.
    _zebra: Proc,
}

impl<'a> Frr<'a> {
    /// The macvlan for `family` as FRR's documentation creates it, the VIPs on it, and
    /// `arp_ignore=1` on the base interface; then zebra.
    fn start(lab: &'a Lab, node: &str, vips: &[&str], interval_ms: u32) -> Frr<'a> {
        let v6 = vips[0].contains(':');
        let (mac_byte, mv) = if v6 {
            ("02", "vrrp6-5")
        } else {
            ("01", "vrrp4-5")
        };
        // `addrgenmode random` at creation is refused by this iproute2 ("Address family not
        // supported"): set it before the link comes up, which is what it needs.
        for cmd in [
            &[
                "ip", "link", "add", mv, "link", LAN_IF, "type", "macvlan", "mode", "bridge",
            ][..],
            &["ip", "link", "set", mv, "addrgenmode", "random"][..],
            &[
                "ip",
                "link",
                "set",
                mv,
                "address",
                &format!("00:00:5e:00:{mac_byte}:{VRID:02x}"),
            ][..],
            &["ip", "link", "set", mv, "up"][..],
            &[
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv4.conf.{LAN_IF}.arp_ignore=1"),
            ][..],
        ] {
            exec_ok(lab, node, cmd);
        }
        for v in vips {
            exec_ok(lab, node, &["ip", "addr", "add", v, "dev", mv, "nodad"]);
        }
        let dir = lab.dir.join(format!("{node}-frr"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("zebra.conf"), format!("hostname {node}\n")).unwrap();
        // The daemons drop to user frr: their folder must be its.
        let chown = Command::new("chown")
            .args(["-R", "frr:frr"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(chown.success());
        let d = dir.to_string_lossy().into_owned();
        let zebra = lab.spawn(
            node,
            "zebra",
            &[
                &format!("{FRR}/zebra"),
                "-f",
                &format!("{d}/zebra.conf"),
                "-i",
                &format!("{d}/zebra.pid"),
                "-z",
                &format!("{d}/zserv.api"),
                "--vty_socket",
                &d,
                "-P",
                "0",
                "--log",
                "stdout",
            ],
        );
        assert!(
            wait_for(Duration::from_secs(10), || dir
                .join("zserv.api")
                .exists()
                .then_some(()))
            .is_some(),
            "zebra did not start:\n{}",
            zebra.log_text()
        );
        Frr {
            lab,
            node: node.to_string(),
            dir,
            v6,
            interval_ms,
            vrrpd: None,
            starts: 0,
            _zebra: zebra,
        }
    }

    /// (Re)starts vrrpd at `priority` (the VIPs as configured on the macvlan).
    fn start_vrrpd(&mut self, priority: u8, vips: &[&str]) {
        self.stop_vrrpd();
        let mut conf = format!(
            "hostname {n}\ninterface {LAN_IF}\n vrrp {VRID} version 3\n vrrp {VRID} priority {priority}\n vrrp {VRID} advertisement-interval {i}\n",
            n = self.node,
            i = self.interval_ms
        );
        for v in vips {
            let a = v.split('/').next().unwrap();
            conf += &format!(" vrrp {VRID} {} {a}\n", if self.v6 { "ipv6" } else { "ip" });
        }
        self.starts += 1;
        let path = self.dir.join(format!("vrrpd{}.conf", self.starts));
        std::fs::write(&path, conf).unwrap();
        let _ = Command::new("chown").arg("frr:frr").arg(&path).status();
        let d = self.dir.to_string_lossy().into_owned();
        self.vrrpd = Some(self.lab.spawn(
            &self.node,
            &format!("vrrpd{}", self.starts),
            &[
                &format!("{FRR}/vrrpd"),
                "-f",
                &path.to_string_lossy(),
                "-i",
                &format!("{d}/vrrpd.pid"),
                "-z",
                &format!("{d}/zserv.api"),
                "--vty_socket",
                &d,
                "-P",
                "0",
                "--log",
                "stdout",
            ],
        ));
    }

    /// SIGTERM to vrrpd (a master sends priority 0 first), waiting for it to exit.
    fn stop_vrrpd(&mut self) {
        if let Some(mut p) = self.vrrpd.take() {
            p.terminate();
            assert!(p.wait_exit(Duration::from_secs(5)), "vrrpd did not exit");
        }
    }

    /// `show vrrp 5 json` for this family: the router's object (`status`,
    /// `masterAdverInterval`, `stats`...).
    fn show(&self) -> Option<Value> {
        let out = self
            .lab
            .exec(
                &self.node,
                &[
                    "vtysh",
                    "--vty_socket",
                    &self.dir.to_string_lossy(),
                    "-c",
                    &format!("show vrrp {VRID} json"),
                ],
            )
            .stdout;
        let v: Value = serde_json::from_slice(&out).ok()?;
        Some(v.get(0)?.get(if self.v6 { "v6" } else { "v4" })?.clone())
    }

    fn status(&self) -> String {
        self.show()
            .and_then(|v| v["status"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    fn log(&self) -> String {
        self.vrrpd.as_ref().map(|p| logs(&[p])).unwrap_or_default()
    }
}

/// minivrrp's `status --json` for its one instance.
fn mv_status(lab: &Lab, node: &str) -> Option<Value> {
    let out = Command::new(BIN)
        .args(["status", "--json", "--socket"])
        .arg(lab.control_socket(node))
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(v["instances"][0].clone())
}

fn mv_state(lab: &Lab, node: &str) -> String {
    mv_status(lab, node)
        .and_then(|v| v["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// One walk: the settings of both sides.
struct Walk {
    tag: &'static str,
    /// minivrrp's VIPs (FRR's macvlan gets the same); IPv6 ones start with the link-local.
    vips: &'static [&'static str],
    use_vmac: bool,
    mv_interval: f64,
    frr_interval_ms: u32,
}

impl Walk {
    fn spec(&self, priority: u8) -> VrrpSpec {
        let mut s = VrrpSpec::new(VRID, priority, 3, self.mv_interval, self.vips[0]);
        s.vips = self.vips.iter().map(|v| v.to_string()).collect();
        s.use_vmac = self.use_vmac;
        s
    }

    /// A bound for any one change of mastership: the slower side's Master_Down_Interval
    /// twice, plus start-up.
    fn bound(&self) -> Duration {
        let slow = self
            .mv_interval
            .max(f64::from(self.frr_interval_ms) / 1000.0);
        Duration::from_secs_f64(slow * 8.0 + 4.0)
    }
}

fn walk(w: &Walk) {
    let lab = Lab::with_routers(w.tag, 2);
    let v6 = w.vips[0].contains(':');
    let mut frr = Frr::start(&lab, "r2", w.vips, w.frr_interval_ms);
    let bin = PathBuf::from(BIN);
    let frr_ms = u64::from(w.frr_interval_ms);
    let mv_ms = (w.mv_interval * 1000.0).round() as u64;
    let ctx = |frr: &Frr, mv: &[&Proc]| format!("FRR:\n{}\n{}", frr.log(), logs(mv));

    // 1. Election: FRR 200 against minivrrp 100. minivrrp learns FRR's interval.
    frr.start_vrrpd(200, w.vips);
    let mut mv = lab.spawn_minivrrp("r1", &bin, &[w.spec(100)]);
    let learned = wait_for(w.bound(), || {
        let s = mv_status(&lab, "r1")?;
        (frr.status() == "Master"
            && s["state"] == "BACKUP"
            && s["master_advert_int_ms"].as_u64() == Some(frr_ms))
        .then_some(s)
    });
    let learned = learned.unwrap_or_else(|| {
        panic!(
            "{}: FRR 200 vs minivrrp 100: FRR {:?}, minivrrp {:?}\n{}",
            w.tag,
            frr.show(),
            mv_status(&lab, "r1"),
            ctx(&frr, &[&mv])
        )
    });
    assert!(learned["vips_installed"] == false, "{learned}");

    // 2. FRR's vrrpd stops: its priority-0 advert hands over to minivrrp.
    frr.stop_vrrpd();
    let s = wait_for(w.bound(), || {
        let s = mv_status(&lab, "r1")?;
        (s["state"] == "MASTER").then_some(s)
    })
    .unwrap_or_else(|| panic!("{}: no takeover after FRR stopped\n{}", w.tag, logs(&[&mv])));
    assert!(
        s["counters"]["priority_zero_received"].as_u64() >= Some(1),
        "{}: FRR's priority 0 not heard: {s}",
        w.tag
    );

    // 3. FRR back at 50: it stays backup and learns minivrrp's interval.
    frr.start_vrrpd(50, w.vips);
    let f = wait_for(w.bound(), || {
        let f = frr.show()?;
        (f["status"] == "Backup" && f["masterAdverInterval"].as_u64() == Some(mv_ms)).then_some(f)
    });
    assert!(
        f.is_some(),
        "{}: FRR 50 vs minivrrp master: {:?}\n{}",
        w.tag,
        frr.show(),
        ctx(&frr, &[&mv])
    );
    assert_eq!(mv_state(&lab, "r1"), "MASTER");

    // 4. minivrrp stops: its priority-0 advert hands over to FRR.
    mv.terminate();
    assert!(mv.wait_exit(Duration::from_secs(5)));
    assert!(
        wait_for(w.bound(), || (frr.status() == "Master").then_some(())).is_some(),
        "{}: FRR did not take over: {:?}\n{}",
        w.tag,
        frr.show(),
        ctx(&frr, &[&mv])
    );
    let rx0 = frr.show().unwrap()["stats"]["adverRx"].as_u64();

    // 5. minivrrp back at 250 preempts FRR.
    let mv2 = lab.spawn_minivrrp("r1", &bin, &[w.spec(250)]);
    assert!(
        wait_for(w.bound(), || (mv_state(&lab, "r1") == "MASTER"
            && frr.status() == "Backup")
            .then_some(()))
        .is_some(),
        "{}: minivrrp 250 did not preempt FRR 50: FRR {:?}\n{}",
        w.tag,
        frr.show(),
        ctx(&frr, &[&mv, &mv2])
    );
    assert!(frr.show().unwrap()["stats"]["adverRx"].as_u64() > rx0);
    // Only the master answers ARP for the VIP: FRR's backup macvlan is protodown, and its
    // base interface has arp_ignore=1 (with 0 the client learned FRR's base MAC for the VIP).
    if !v6 {
        exec_ok(&lab, "client", &["ip", "neigh", "flush", "dev", LAN_IF]);
        assert!(lab.client_pings("10.0.0.254"), "{}: VIP unreachable", w.tag);
        let want = if w.use_vmac {
            format!("00:00:5e:00:01:{VRID:02x}")
        } else {
            lab.node("r1").mac_str()
        };
        let got = lab.neigh("client", "10.0.0.254").map(|(m, _)| m);
        assert_eq!(
            got.as_deref(),
            Some(want.as_str()),
            "{}: client's ARP entry",
            w.tag
        );
    }

    // An address event on minivrrp's interface while it is master and holds its link-local
    // VIP: the advert source must stay the interface's own link-local.
    if v6 {
        exec_ok(
            &lab,
            "r1",
            &["ip", "addr", "add", "fd77::99/64", "dev", LAN_IF, "nodad"],
        );
        std::thread::sleep(Duration::from_millis(mv_ms * 2));
        assert!(
            !mv2.log_text().contains("source address is now fe80::254"),
            "{}: the VIP became the advert source\n{}",
            w.tag,
            mv2.log_text()
        );
    }

    // 6. FRR restarted at 254 preempts minivrrp back.
    frr.start_vrrpd(254, w.vips);
    let s = wait_for(w.bound(), || {
        let s = mv_status(&lab, "r1")?;
        (frr.status() == "Master" && s["state"] == "BACKUP").then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "{}: FRR 254 vs minivrrp 250: FRR {:?}, minivrrp {:?}\n{}",
            w.tag,
            frr.show(),
            mv_status(&lab, "r1"),
            ctx(&frr, &[&mv2])
        )
    });
    assert_eq!(s["drops"]["own-address"].as_u64(), Some(0), "{s}");
    assert_eq!(s["master_advert_int_ms"].as_u64(), Some(frr_ms), "{s}");
    // And it stays that way (no second master), through minivrrp's resign: the priority-0
    // advert a preempted minivrrp sends as a BACKUP, which FRR answers as master.
    std::thread::sleep(Duration::from_millis(frr_ms * 3));
    assert_eq!(mv_state(&lab, "r1"), "BACKUP");
    assert_eq!(frr.status(), "Master");
    assert!(
        mv2.log_text()
            .contains("services stopped: resigning with a priority-0 advert"),
        "{}: no resign\n{}",
        w.tag,
        mv2.log_text()
    );
    eprintln!(
        "{}: FRR master from {}; minivrrp backup",
        w.tag,
        s["master"].as_str().unwrap_or("?")
    );
}

#[test]
fn frr_vrrpv3_ipv4_both_directions_minivrrp_1s_frr_500ms() {
    let name = "frr_vrrpv3_ipv4_both_directions_minivrrp_1s_frr_500ms";
    if prereqs(name) {
        walk(&Walk {
            tag: "frr4",
            vips: &["10.0.0.254/24"],
            use_vmac: false,
            mv_interval: 1.0,
            frr_interval_ms: 500,
        });
    }
}

#[test]
fn frr_vrrpv3_ipv4_both_directions_minivrrp_use_vmac_500ms_frr_1s() {
    let name = "frr_vrrpv3_ipv4_both_directions_minivrrp_use_vmac_500ms_frr_1s";
    if prereqs(name) {
        walk(&Walk {
            tag: "frr4m",
            vips: &["10.0.0.254/24"],
            use_vmac: true,
            mv_interval: 0.5,
            frr_interval_ms: 1000,
        });
    }
}

#[test]
fn frr_vrrpv3_ipv6_link_local_vip_first_both_directions_minivrrp_1s_frr_500ms() {
    let name = "frr_vrrpv3_ipv6_link_local_vip_first_both_directions_minivrrp_1s_frr_500ms";
    if prereqs(name) {
        walk(&Walk {
            tag: "frr6",
            vips: &["fe80::254/64", "fd00::254/64"],
            use_vmac: false,
            mv_interval: 1.0,
            frr_interval_ms: 500,
        });
    }
}

#[test]
fn frr_vrrpv3_ipv6_link_local_vip_first_minivrrp_use_vmac_500ms_frr_700ms() {
    let name = "frr_vrrpv3_ipv6_link_local_vip_first_minivrrp_use_vmac_500ms_frr_700ms";
    if prereqs(name) {
        walk(&Walk {
            tag: "frr6m",
            vips: &["fe80::254/64", "fd00::254/64"],
            use_vmac: true,
            mv_interval: 0.5,
            frr_interval_ms: 700,
        });
    }
}

/// RFC 5798 5.1.2.1: IPv6 adverts leave from the link-local address of the interface they
/// are sent from, never from a virtual address. A master holding the link-local VIP
/// fe80::254 (listed before its own link-local once installed: the kernel lists the newest
/// address first) keeps its own link-local as the source across an unrelated address event
/// (`ip addr add fd77::99/64`), and never logs a source change. minivrrp alone: no FRR needed.
#[test]
fn ipv6_advert_source_stays_the_own_link_local_when_an_address_is_added_on_a_master() {
    require!(root, "tcpdump");
    let lab = Lab::with_routers("llsrc", 1);
    let own = exec_ok(
        &lab,
        "r1",
        &[
            "ip", "-6", "-o", "addr", "show", "dev", LAN_IF, "scope", "link",
        ],
    );
    let own: std::net::IpAddr = own
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no link-local on r1: {own}"));
    let mut spec = VrrpSpec::v6(VRID, 150, 0.5, "fe80::254/64");
    spec.vips.push("fd00::254/64".into());
    let mv = lab.spawn_minivrrp("r1", &PathBuf::from(BIN), &[spec]);
    assert!(
        wait_for(Duration::from_secs(10), || (mv_state(&lab, "r1")
            == "MASTER"
            && lab.node_has_addr("r1", "fe80::254"))
        .then_some(()))
        .is_some(),
        "r1 not master with its VIPs\n{}",
        mv.log_text()
    );
    let cap = lab.capture("llsrc");
    let t = common::lab::now_realtime();
    exec_ok(
        &lab,
        "r1",
        &["ip", "addr", "add", "fd77::99/64", "dev", LAN_IF, "nodad"],
    );
    std::thread::sleep(Duration::from_millis(1600));
    let ads = cap.adverts(t);
    assert!(
        ads.len() >= 2,
        "no adverts after the address event: {ads:?}"
    );
    let srcs: Vec<_> = ads.iter().map(|(_, a, _)| a.src_ip).collect();
    assert!(
        srcs.iter().all(|s| *s == own),
        "adverts left from {srcs:?}, not r1's own link-local {own}\n{}",
        mv.log_text()
    );
    assert!(
        !mv.log_text().contains("source address is now"),
        "{}",
        mv.log_text()
    );
}

/// `v3_checksum 'rfc9568'` (the VRRPv3-over-IPv4 checksum without the pseudo-header) does not
/// interoperate with FRR 8.4 either: FRR checks the pseudo-header checksum of RFC 5798 5.2.8,
/// drops every advert of minivrrp in that mode, and as the lower priority becomes master too.
/// minivrrp, hearing FRR's lower priority, stays master: two masters. (The default, `pseudo`,
/// is what the walks above run.)
#[test]
fn frr_ignores_v3_checksum_rfc9568_two_masters() {
    let name = "frr_ignores_v3_checksum_rfc9568_two_masters";
    if !prereqs(name) {
        return;
    }
    let vips = ["10.0.0.254/24"];
    let lab = Lab::with_routers("frr9568", 2);
    let mut frr = Frr::start(&lab, "r2", &vips, 500);
    let mut spec = VrrpSpec::new(VRID, 150, 3, 0.5, vips[0]);
    spec.v3_checksum = Some("rfc9568".into());
    let mv = lab.spawn_minivrrp("r1", &PathBuf::from(BIN), &[spec]);
    frr.start_vrrpd(100, &vips);
    let both = wait_for(Duration::from_secs(10), || {
        let s = mv_status(&lab, "r1")?;
        let f = frr.show()?;
        (s["state"] == "MASTER" && f["status"] == "Master").then_some((s, f))
    });
    let (_, f) = both.unwrap_or_else(|| {
        panic!(
            "FRR accepted rfc9568 checksums after all? FRR {:?}, minivrrp {:?}\n{}\n{}",
            frr.show(),
            mv_status(&lab, "r1"),
            frr.log(),
            mv.log_text()
        )
    });
    // Both stay master while minivrrp keeps advertising at priority 150.
    std::thread::sleep(Duration::from_secs(2));
    let s = mv_status(&lab, "r1").unwrap();
    assert_eq!(s["state"], "MASTER");
    assert_eq!(frr.status(), "Master");
    assert!(s["counters"]["adverts_sent"].as_u64() >= Some(4), "{s}");
    // FRR counted none of them as received: dropped at the checksum, before its counters
    // (8.4 says so only at debug level). minivrrp hears FRR's pseudo-header checksums.
    assert_eq!(
        frr.show().unwrap()["stats"]["adverRx"].as_u64(),
        Some(0),
        "{f}"
    );
    assert!(s["counters"]["adverts_received"].as_u64() >= Some(1), "{s}");
}
