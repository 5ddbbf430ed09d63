//! Router Solicitation flood: a LAN host sends RSs to ff02::2 as fast as it can while r1
//! runs minivrrp as the master of an instance with `option ra '1'` (VRRPv3 over IPv6 at 0.1 s)
//! and r2 runs Debian's radvd on the same LAN, and we print, side by side:
//!
//! * RSs sent, and how many RAs each daemon sent during the flood (RFC 4861 6.2.6 allows one
//!   multicast RA per 3 s, whatever the solicitations);
//! * the daemon's CPU time per solicitation (schedstat during the flood, minus its idle rate);
//! * for minivrrp: the largest gap between its adverts on the wire during the flood, in advert
//!   intervals (1 = on time), and its `rs_received` / `rs_rate_limited` counters.
//!
//! `cargo bench --bench rs_flood` as root (needs radvd, tcpdump). Prints figures, asserts
//! nothing about timing. Knobs: `MINIVRRP_BIN`, `BENCH_FLOOD_SECS` (3).

#[path = "../common/mod.rs"]
mod common;

use common::attack::Attacker;
use common::knobs::{env_num, minivrrp_bin};
use common::lab::{self, Lab, Proc, LAN_IF};
use smoltcp::wire::{Icmpv6Packet, Ipv6Address};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const VRID: u8 = 78;
const INTERVAL: f64 = 0.1;
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x64];

/// fe80::ff:fe00:64 (the client's EUI-64 link-local) -> ff02::2, hop limit 255, a Router
/// Solicitation with a source link-layer address option (RFC 4861 4.1).
fn router_solicit() -> Vec<u8> {
    let src = Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x64);
    let dst = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
    let mut f = vec![0x33, 0x33, 0, 0, 0, 2];
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 16, 58, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&[133, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    f.extend_from_slice(&CLIENT_MAC);
    let mut icmp = Icmpv6Packet::new_unchecked(&mut f[54..]);
    icmp.fill_checksum(&src, &dst);
    f
}

fn timestamps(mut p: Proc, file: &Path) -> Vec<Duration> {
    p.signal(libc::SIGINT);
    p.wait_exit(Duration::from_secs(5));
    common::pcap::read_file(file)
        .map(|c| c.frames.iter().map(|f| f.ts).collect())
        .unwrap_or_default()
}

fn counters(lab: &Lab) -> serde_json::Value {
    let o = Command::new(minivrrp_bin())
        .args(["status", "--json", "--socket"])
        .arg(lab.control_socket("r1"))
        .output()
        .expect("minivrrp status");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["instances"][0]["counters"].clone()
}

fn idle_rate(p: &Proc) -> f64 {
    let c0 = p.cpu_ns();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    p.cpu_ns().saturating_sub(c0) as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    if !common::require_root("rs_flood")
        || !common::require_tool("rs_flood", "radvd")
        || !common::require_tool("rs_flood", "tcpdump")
    {
        return;
    }
    let secs = env_num("BENCH_FLOOD_SECS", 3.0);
    let lab = Lab::with_routers("rsflood", 3);
    for r in ["r1", "r2"] {
        lab.exec(r, &["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
    }
    let uci = format!(
        "config globals 'globals'\n\toption log_level 'warn'\n\n\
         config instance 'rs'\n\toption interface '{LAN_IF}'\n\toption vrid '{VRID}'\n\
         \toption priority '150'\n\toption version '3'\n\toption advert_int '{INTERVAL}'\n\
         \toption garp_delay '0'\n\tlist vip 'fe80::78/64'\n\tlist vip 'fd00::278/64'\n\
         \toption ra '1'\n\tlist ra_prefix 'fd00::/64'\n\toption ra_interval '4'\n"
    );
    let mv = lab.spawn_minivrrp_text("r1", &minivrrp_bin(), &uci, "rs");
    let conf = lab.dir.join("radvd.conf");
    std::fs::write(
        &conf,
        format!(
            "interface {LAN_IF} {{\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  \
             MaxRtrAdvInterval 4;\n  prefix fd00::/64 {{\n  }};\n}};\n"
        ),
    )
    .unwrap();
    let pid = lab.dir.join("radvd.pid");
    let radvd = lab.spawn(
        "r2",
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
    );
    let (h, _) = lab.wait_holders("fe80::78", &["r1"], Duration::from_secs(8));
    assert_eq!(h, ["r1"], "r1 never became master: {}", mv.log_text());
    // Past the initial RAs' 3 s spacing.
    std::thread::sleep(Duration::from_secs(4));
    let idle_mv = idle_rate(&mv);
    let idle_radvd = idle_rate(&radvd);
    let (adv_cap, adv_file) = lab.capture_filtered(
        "r3",
        "adverts",
        "ether src 02:00:00:00:00:01 and ip6 proto 112",
    );
    let (ra_cap, ra_file) = lab.capture_filtered("r3", "ras", "icmp6 and ip6[40] == 134");
    std::thread::sleep(Duration::from_secs_f64(INTERVAL * 3.0));

    let att = Attacker::open(&lab.node("client").ns, LAN_IF, CLIENT_MAC);
    let frame = router_solicit();
    let before = counters(&lab);
    let (c_mv, c_radvd) = (mv.cpu_ns(), radvd.cpu_ns());
    let t0 = Instant::now();
    let (rt0, mut n) = (lab::now_realtime(), 0u64);
    while t0.elapsed().as_secs_f64() < secs {
        for _ in 0..100 {
            att.send(&frame);
        }
        n += 100;
    }
    let took = t0.elapsed().as_secs_f64();
    let rt1 = lab::now_realtime();
    let (d_mv, d_radvd) = (
        mv.cpu_ns().saturating_sub(c_mv) as f64,
        radvd.cpu_ns().saturating_sub(c_radvd) as f64,
    );
    std::thread::sleep(Duration::from_secs_f64(INTERVAL * 3.0));
    let after = counters(&lab);
    let adverts = timestamps(adv_cap, &adv_file);
    let ras = common::pcap::read_file(&ra_file)
        .map(|c| c.frames)
        .unwrap_or_default();
    let _ = timestamps(ra_cap, &ra_file);

    let mut gap = 0.0f64;
    for w in adverts.windows(2) {
        if w[1] >= rt0 && w[0] <= rt1 {
            gap = gap.max((w[1] - w[0]).as_secs_f64() / INTERVAL);
        }
    }
    let ras_from = |mac_last: u8| {
        ras.iter()
            .filter(|f| f.ts >= rt0 && f.ts <= rt1 && f.data.get(11) == Some(&mac_last))
            .count()
    };
    let k = |v: &serde_json::Value, key: &str| v[key].as_u64().unwrap_or(0);
    let per = |cpu: f64, idle: f64| ((cpu - idle * took).max(0.0)) / n as f64;
    let (ns_mv, ns_radvd) = (per(d_mv, idle_mv), per(d_radvd, idle_radvd));
    println!(
        "RS flood: {n} solicitations in {took:.1} s ({:.0}/s) to ff02::2",
        n as f64 / took
    );
    println!(
        "  minivrrp (ra):  {} RAs during the flood, {:.0} ns CPU per RS, largest advert gap \
         {gap:.2} intervals, rs_received +{}, rs_rate_limited +{}",
        ras_from(0x01),
        ns_mv,
        k(&after, "rs_received") - k(&before, "rs_received"),
        k(&after, "rs_rate_limited") - k(&before, "rs_rate_limited"),
    );
    println!(
        "  radvd 2.19:     {} RAs during the flood, {:.0} ns CPU per RS",
        ras_from(0x02),
        ns_radvd
    );
    if ns_radvd > 0.0 {
        println!("  CPU per RS, minivrrp / radvd: {:.2}", ns_mv / ns_radvd);
    }
}
