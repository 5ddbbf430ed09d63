//! Junk-flood benchmark: a LAN host floods a healthy master with attack and junk frames of
//! each kind (tests/common/attack.rs, the frames of tests/lab/lan_attacks.rs) as fast as it can
//! send them, and we print, for keepalived and minivrrp side by side:
//!
//! * transitions the master logged during the flood (should be 0),
//! * the largest gap between the master's own adverts on the wire, in advert intervals
//!   (RFC 5798 6.4.3 sends one per interval; a starved daemon shows gaps > 1),
//! * the daemon's CPU time per flood frame (schedstat of its processes during the flood,
//!   minus its idle rate). Kernel work the BPF filter does in softirq is charged to whoever
//!   runs at that moment, mostly the sender here; that is the point of filtering early.
//!
//! `cargo bench --bench junk_flood` as root. Prints figures, asserts nothing about timing.
//!
//! Knobs: `MINIVRRP_BIN` (default: the binary cargo built), `BENCH_FLOOD_SECS` (3) per kind,
//! `BENCH_ADVERT_INT` (0.1 s, VRRPv3), `BENCH_IMPLS` (`keepalived,minivrrp,minivrrp-nofilter`;
//! the last runs minivrrp with `MINIVRRP_RX_FILTER=protocol-only`, the old protocol-only
//! kernel filter), `BENCH_KINDS` (comma list, default all).

#[path = "../common/mod.rs"]
mod common;

use common::attack::{self, Advert, Attacker};
use common::knobs::{env_num, minivrrp_bin};
use common::lab::{self, Lab, Proc, VrrpSpec, LAN_IF};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const VRID: u8 = 50;
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
const VIP_CIDR: &str = "10.0.0.254/24";
const MASTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const ATTACKER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const ATTACKER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x64];
const R1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

#[derive(Clone, Debug, PartialEq)]
enum Daemon {
    Keepalived,
    Minivrrp { bin: PathBuf, kernel_filter: bool },
}

impl Daemon {
    fn name(&self) -> &'static str {
        match self {
            Daemon::Keepalived => "keepalived",
            Daemon::Minivrrp {
                kernel_filter: true,
                ..
            } => "minivrrp",
            Daemon::Minivrrp { .. } => "minivrrp-nofilter",
        }
    }
}

fn winning() -> Advert {
    Advert::winning(ATTACKER_MAC, ATTACKER, VRID, VIP)
}

/// Builds the frame number `i` of a flood kind.
type FrameFn = Box<dyn Fn(usize) -> Vec<u8>>;

/// The flood kinds: name and a frame for sequence number `i`.
fn kinds() -> Vec<(&'static str, FrameFn)> {
    vec![
        (
            "ttl64-to-mac",
            Box::new(|_| {
                Advert {
                    dst_mac: R1_MAC,
                    ttl: 64,
                    ..winning()
                }
                .frame()
            }),
        ),
        (
            "vlan-tagged",
            Box::new(|_| {
                Advert {
                    vlan: Some(10),
                    ..winning()
                }
                .frame()
            }),
        ),
        (
            "ttl254",
            Box::new(|_| {
                Advert {
                    ttl: 254,
                    ..winning()
                }
                .frame()
            }),
        ),
        (
            "unicast-to-mcast",
            Box::new(|_| {
                Advert {
                    dst_mac: R1_MAC,
                    dst: MASTER,
                    ..winning()
                }
                .frame()
            }),
        ),
        (
            "own-address",
            Box::new(|_| {
                Advert {
                    src: MASTER,
                    ..winning()
                }
                .frame()
            }),
        ),
        (
            "other-host",
            Box::new(|_| {
                Advert {
                    dst_mac: [0x02, 0, 0, 0, 0, 0x99],
                    ..winning()
                }
                .frame()
            }),
        ),
        (
            "addr-list",
            Box::new(|_| {
                Advert {
                    addrs: vec![Ipv4Addr::new(10, 0, 0, 253)],
                    ..winning()
                }
                .frame()
            }),
        ),
        (
            "count0",
            Box::new(|_| {
                Advert {
                    addrs: vec![],
                    ..winning()
                }
                .frame()
            }),
        ),
        (
            "junk-mix",
            Box::new(|i| attack::junk(i, ATTACKER_MAC, ATTACKER, VRID, VIP)),
        ),
    ]
}

fn start(lab: &Lab, d: &Daemon, s: &VrrpSpec) -> Proc {
    match d {
        Daemon::Keepalived => lab.spawn_keepalived("r1", std::slice::from_ref(s)),
        Daemon::Minivrrp { bin, kernel_filter } => {
            let conf = lab.dir.join(format!("r1-{}.uci", d.name()));
            std::fs::write(&conf, lab::minivrrp_uci("r1", std::slice::from_ref(s))).unwrap();
            let (b, c) = (bin.to_string_lossy(), conf.to_string_lossy());
            let mut cmd = vec!["env"];
            if !kernel_filter {
                cmd.push("MINIVRRP_RX_FILTER=protocol-only");
            }
            cmd.extend([&*b, "-f", &*c]);
            lab.spawn("r1", d.name(), &cmd)
        }
    }
}

/// One flood's figures.
#[derive(Clone, Debug, Default)]
struct Figures {
    frames: u64,
    kpps: f64,
    transitions: usize,
    max_gap: f64,
    ns_per_frame: f64,
    kept_vip: bool,
}

/// A tcpdump in the switch namespace keeping only the master's adverts (the flood would
/// swamp an unfiltered capture).
fn capture_master_adverts(lab: &Lab, name: &str) -> (Proc, PathBuf) {
    lab.capture_filtered("r2", name, "ether src 02:00:00:00:00:01 and ip proto 112")
}

/// What a flood runs against.
struct Target<'a> {
    lab: &'a Lab,
    att: &'a Attacker,
    daemon: &'a Proc,
    /// The daemon's idle CPU rate (ns of CPU per second).
    idle_ns_per_s: f64,
    interval: f64,
}

fn flood(t: &Target<'_>, frames: &[Vec<u8>], secs: f64, name: &str) -> Figures {
    let (lab, att, p, idle_ns_per_s, interval) =
        (t.lab, t.att, t.daemon, t.idle_ns_per_s, t.interval);
    let (mut cap, file) = capture_master_adverts(lab, name);
    // Adverts on both sides of the flood bound the first and last gap.
    std::thread::sleep(Duration::from_secs_f64(interval * 3.0));
    let before = lab::transitions(&p.log_text());
    let c0 = p.cpu_ns();
    let t0 = Instant::now();
    let rt0 = lab::now_realtime();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        for f in frames {
            att.send(f);
        }
        n += frames.len() as u64;
    }
    let took = t0.elapsed();
    let rt1 = lab::now_realtime();
    let c1 = p.cpu_ns();
    std::thread::sleep(Duration::from_secs_f64(interval * 3.0));
    let kept = lab.holders(&VIP.to_string()) == ["r1"];
    cap.signal(libc::SIGINT);
    cap.wait_exit(Duration::from_secs(5));
    let pc = common::pcap::read_file(&file)
        .map(|p| p.frames)
        .unwrap_or_default();
    // Gaps between consecutive master adverts overlapping the flood window.
    let ts: Vec<Duration> = pc.iter().map(|f| f.ts).collect();
    let mut max_gap = 0.0f64;
    for w in ts.windows(2) {
        if w[1] >= rt0 && w[0] <= rt1 {
            max_gap = max_gap.max((w[1] - w[0]).as_secs_f64() / interval);
        }
    }
    if ts.iter().filter(|t| **t >= rt0 && **t <= rt1).count() == 0 {
        // No advert at all during the flood: the whole window is the gap.
        max_gap = (rt1 - rt0).as_secs_f64() / interval;
    }
    let busy = c1.saturating_sub(c0) as f64 - idle_ns_per_s * took.as_secs_f64();
    Figures {
        frames: n,
        kpps: n as f64 / took.as_secs_f64() / 1000.0,
        transitions: lab::transitions(&p.log_text()).saturating_sub(before),
        max_gap,
        ns_per_frame: busy.max(0.0) / n.max(1) as f64,
        kept_vip: kept,
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    if !common::require_root("junk_flood") || !common::require_tool("junk_flood", "keepalived") {
        return;
    }
    let secs = env_num("BENCH_FLOOD_SECS", 3.0);
    let interval = env_num("BENCH_ADVERT_INT", 0.1);
    let bin = minivrrp_bin();
    let wanted = std::env::var("BENCH_IMPLS")
        .unwrap_or_else(|_| "keepalived,minivrrp,minivrrp-nofilter".to_string());
    let daemons: Vec<Daemon> = [
        Daemon::Keepalived,
        Daemon::Minivrrp {
            bin: bin.clone(),
            kernel_filter: true,
        },
        Daemon::Minivrrp {
            bin,
            kernel_filter: false,
        },
    ]
    .into_iter()
    .filter(|d| wanted.split(',').any(|w| w == d.name()))
    .collect();
    let kind_filter = std::env::var("BENCH_KINDS").ok();
    let kinds: Vec<_> = kinds()
        .into_iter()
        .filter(|(k, _)| {
            kind_filter
                .as_ref()
                .is_none_or(|f| f.split(',').any(|w| w == *k))
        })
        .collect();
    let lab = Lab::with_routers("jflood", 2);
    let client = lab.node("client");
    let att = Attacker::open(&client.ns, LAN_IF, client.mac);
    let spec = VrrpSpec::new(VRID, 200, 3, interval, VIP_CIDR);
    let mut results: Vec<(String, String, Figures)> = Vec::new();
    for d in &daemons {
        let p = start(&lab, d, &spec);
        let (h, _) = lab.wait_holders(&VIP.to_string(), &["r1"], Duration::from_secs(15));
        assert_eq!(
            h,
            ["r1"],
            "{} did not become master: {}",
            d.name(),
            p.log_text()
        );
        std::thread::sleep(Duration::from_secs(1));
        let c0 = p.cpu_ns();
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(2));
        let idle = p.cpu_ns().saturating_sub(c0) as f64 / t.elapsed().as_secs_f64();
        for (k, build) in &kinds {
            let frames: Vec<Vec<u8>> = (0..64).map(build).collect();
            let name = format!("{}-{k}", d.name());
            let target = Target {
                lab: &lab,
                att: &att,
                daemon: &p,
                idle_ns_per_s: idle,
                interval,
            };
            let f = flood(&target, &frames, secs, &name);
            eprintln!(
                "{:<18} {:<17} {:>8} frames {:>6.1} kpps  transitions {}  max gap {:.2}  {:.0} ns/frame  VIP kept {}",
                d.name(), k, f.frames, f.kpps, f.transitions, f.max_gap, f.ns_per_frame, f.kept_vip
            );
            results.push((d.name().to_string(), k.to_string(), f));
            // A yielded master needs Master_Down_Interval to come back before the next kind.
            lab.wait_holders(&VIP.to_string(), &["r1"], Duration::from_secs(5));
        }
        drop(p);
        lab.del_addr("r1", VIP_CIDR);
    }
    println!(
        "\njunk flood, VRRPv3 advert_int {interval} s, {secs} s per kind, master priority 200, \
         attack adverts priority 254"
    );
    print!("{:<17}", "kind");
    for d in &daemons {
        print!(" | {:^36}", d.name());
    }
    println!();
    print!("{:<17}", "");
    for _ in &daemons {
        print!(
            " | {:>6} {:>5} {:>7} {:>7} {:>6}",
            "kpps", "trans", "gap", "ns/fr", "VIP"
        );
    }
    println!();
    for (k, _) in &kinds {
        print!("{k:<17}");
        for d in &daemons {
            match results.iter().find(|(n, kk, _)| n == d.name() && kk == k) {
                Some((_, _, f)) => print!(
                    " | {:>6.1} {:>5} {:>7.2} {:>7.0} {:>6}",
                    f.kpps,
                    f.transitions,
                    f.max_gap,
                    f.ns_per_frame,
                    if f.kept_vip { "kept" } else { "LOST" }
                ),
                None => print!(" | {:^36}", "-"),
            }
        }
        println!();
    }
    println!(
        "gap = largest interval between the master's adverts overlapping the flood, in advert \
         intervals; ns/fr = the daemon's CPU (schedstat, minus idle) per flood frame"
    );
}
