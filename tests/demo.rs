//! The README's first command: watch a VIP fail over between two routers.
//!
//! `cargo test --release --test demo` as root (after tests/setup.sh). It builds nothing: cargo
//! built the binary. In a throwaway network-namespace lab (tests/common/lab.rs), routers r1 and
//! r2 run minivrrp on the embedded default config (`minivrrp defaults`: br-lan, VIP
//! 10.0.0.254/24, VRID 50, VRRPv3 1 s) with r1's priority raised to 150 by editing the
//! `option priority` line as `uci set` would. A client pings the VIP every 50 ms; r1's daemon is
//! killed with `kill -9`, then restarted. A timeline of what happened on the bridge is printed.
//! Exits non-zero if the VIP did not move. Without root: prints SKIP and exits 0 (under CI=true,
//! fails).

#[macro_use]
mod common;

use common::lab::{self, Lab};
use common::pcap::Kind;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const VIP: &str = "10.0.0.254";

fn main() -> ExitCode {
    // `cargo test` passes harness flags (e.g. `--nocapture`, a filter); none apply here.
    if !common::require_root("demo") {
        println!("SKIP demo: needs root (network namespaces); run it as root after tests/setup.sh");
        return ExitCode::SUCCESS;
    }
    for tool in ["ip", "tcpdump", "ping"] {
        if !common::require_tool("demo", tool) {
            println!("SKIP demo: needs `{tool}` (tests/setup.sh installs it)");
            return ExitCode::SUCCESS;
        }
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("DEMO FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Timeline {
    t0: Duration,
    events: Vec<(Duration, String)>,
}

impl Timeline {
    fn add(&mut self, at: Duration, what: String) {
        self.events.push((at, what));
    }
    fn print(&mut self) {
        self.events.sort_by_key(|(t, _)| *t);
        for (t, what) in &self.events {
            let rel = t.as_secs_f64() - self.t0.as_secs_f64();
            println!("  {rel:+8.3} s  {what}");
        }
    }
}

/// The replies in ping's `-D` output, `[1763780000.123456] 64 bytes from ...: icmp_seq=7 ...`,
/// as (receive time, sequence number).
fn parse_ping(log: &str) -> Vec<(Duration, u32)> {
    let mut replies = Vec::new();
    for l in log.lines() {
        let Some(rest) = l.strip_prefix('[') else {
            continue;
        };
        let Some((ts, body)) = rest.split_once(']') else {
            continue;
        };
        let Ok(ts) = ts.parse::<f64>() else { continue };
        let Some(seq) = body
            .split_whitespace()
            .find_map(|w| w.strip_prefix("icmp_seq="))
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if body.contains("bytes from") {
            replies.push((Duration::from_secs_f64(ts), seq));
        }
    }
    replies
}

fn run() -> Result<(), String> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_minivrrp"));
    let out = std::process::Command::new(&bin)
        .arg("defaults")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let defaults = String::from_utf8_lossy(&out.stdout).to_string();
    let prio_line = "option priority '100'";
    if !out.status.success() || !defaults.contains(prio_line) {
        return Err(format!(
            "`minivrrp defaults` did not print a config with {prio_line:?}:\n{defaults}"
        ));
    }
    let r1_conf = defaults.replace(prio_line, "option priority '150'");
    let _ = Lab::cleanup_dead_runs();
    let lab = Lab::with_routers("demo", 2);
    let cap = lab.capture("demo");
    let (r1_mac, r2_mac) = (lab.node("r1").mac, lab.node("r2").mac);

    println!("minivrrp demo: routers r1 and r2 share {VIP} using the shipped default config");
    println!("  (`minivrrp defaults`: interface br-lan, VRID 50, VRRPv3, advert 1 s);");
    println!(
        "  r1's priority raised to 150 (r2 keeps 100). r1 = 10.0.0.1 {}, r2 = 10.0.0.2 {},",
        lab.node("r1").mac_str(),
        lab.node("r2").mac_str()
    );
    println!("  client 10.0.0.100 pings the VIP every 50 ms.");
    let r2 = lab.spawn_minivrrp_text("r2", &bin, &defaults, "minivrrp");
    let mut r1 = lab.spawn_minivrrp_text("r1", &bin, &r1_conf, "minivrrp");
    let (h, took) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    if h != ["r1"] {
        return Err(format!(
            "no election: holders {h:?}\nr1 log:\n{}\nr2 log:\n{}",
            r1.log_text(),
            r2.log_text()
        ));
    }
    println!(
        "r1 became MASTER and holds {VIP} {:.1} s after start.",
        took.as_secs_f64()
    );
    let mut ping = lab.spawn(
        "client",
        "ping",
        &["ping", "-n", "-D", "-i", "0.05", "-W", "1", VIP],
    );
    std::thread::sleep(Duration::from_secs(3));

    // A crashed router: its daemon dies without a goodbye (kill -9) and the box drops off the
    // LAN. With kill -9 alone r1's kernel would keep answering for the VIP it still has
    // configured until the VIP's lease runs out (`vip_lifetime`; forever with keepalived),
    // and the client would see no outage until then (tests/lab/fault_matrix.rs measures that).
    println!("r1 crashes: kill -9 of its minivrrp and its LAN link goes down ...");
    let t_kill = r1.kill_hard();
    lab.set_link("r1", false);
    let mut tl = Timeline {
        t0: t_kill,
        events: Vec::new(),
    };
    tl.add(
        t_kill,
        "r1 crashes: kill -9 of its minivrrp, then `ip link set br-lan down`".into(),
    );
    let moved = lab::wait_until(Duration::from_secs(15), || lab.node_has_addr("r2", VIP));
    let Some(_) = moved else {
        return Err(format!(
            "the VIP did not move to r2 within 15 s\nr2 log:\n{}",
            r2.log_text()
        ));
    };
    let t_moved = lab::now_realtime();
    tl.add(
        t_moved,
        format!("r2 has {VIP} configured (seen by polling `ip addr`)"),
    );
    // Let the client's pings recover before the restart.
    let recovered = lab::wait_until(Duration::from_secs(10), || {
        let replies = parse_ping(&ping.log_text());
        replies.iter().any(|(t, _)| *t > t_moved)
    });
    std::thread::sleep(Duration::from_secs(2));

    println!("r1 comes back: link up, minivrrp restarted (it removes the stale VIP, then preempts back) ...");
    let t_restart = lab::now_realtime();
    lab.set_link("r1", true);
    lab.wait_oper_up("r1", Duration::from_secs(5));
    let r1b = lab.spawn_minivrrp_text("r1", &bin, &r1_conf, "minivrrp-restart");
    tl.add(t_restart, "r1 back: link up, minivrrp restarted".into());
    if lab::wait_until(Duration::from_secs(10), || !lab.node_has_addr("r1", VIP)).is_some() {
        tl.add(lab::now_realtime(), "r1 removed its stale VIP".into());
    }
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    let t_back = lab::now_realtime();
    if h == ["r1"] {
        tl.add(
            t_back,
            format!("r1 holds {VIP} again, r2 released it (preemption)"),
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    ping.signal(libc::SIGINT);
    ping.wait_exit(Duration::from_secs(3));
    let seen = cap.stop();

    let frames = common::pcap::classify_all(&seen);
    let vip: Ipv4Addr = VIP.parse().unwrap();
    let last_r1 = frames
        .iter()
        .rfind(|s| s.ts < t_kill && matches!(&s.kind, Kind::Vrrp(a) if a.src_mac == r1_mac));
    if let Some(s) = last_r1 {
        tl.add(
            s.ts,
            "last advert from r1 (priority 150) on the bridge".into(),
        );
    }
    let first = |after: Duration, pred: &dyn Fn(&Kind) -> bool| {
        frames
            .iter()
            .find(|s| s.ts >= after && pred(&s.kind))
            .map(|s| s.ts)
    };
    if let Some(t) = first(
        t_kill,
        &|k| matches!(k, Kind::Vrrp(a) if a.src_mac == r2_mac && a.priority > 0),
    ) {
        tl.add(
            t,
            "first advert from r2 (priority 100): r2 is MASTER".into(),
        );
    }
    if let Some(t) = first(
        t_kill,
        &|k| matches!(k, Kind::Garp { sender_ip, sender_mac } if *sender_mac == r2_mac && *sender_ip == vip),
    ) {
        tl.add(
            t,
            format!(
                "first gratuitous ARP from r2: {VIP} is at {}",
                lab.node("r2").mac_str()
            ),
        );
    }
    if let Some(t) = first(
        t_restart,
        &|k| matches!(k, Kind::Vrrp(a) if a.src_mac == r1_mac && a.priority > 0),
    ) {
        tl.add(
            t,
            "first advert from the restarted r1 (priority 150)".into(),
        );
    }
    if let Some(t) = first(
        t_restart,
        &|k| matches!(k, Kind::Garp { sender_ip, sender_mac } if *sender_mac == r1_mac && *sender_ip == vip),
    ) {
        tl.add(
            t,
            format!(
                "first gratuitous ARP from r1: {VIP} is at {}",
                lab.node("r1").mac_str()
            ),
        );
    }

    let mut replies = parse_ping(&ping.log_text());
    replies.sort_by_key(|(_, s)| *s);
    replies.dedup_by_key(|(_, s)| *s);
    // Outages as the client saw them: runs of sequence numbers with no reply, between the
    // replies around them.
    let mut outages: Vec<(Duration, Duration, u32)> = Vec::new();
    for w in replies.windows(2) {
        let ((ta, sa), (tb, sb)) = (w[0], w[1]);
        if sb > sa + 1 {
            outages.push((ta, tb, sb - sa - 1));
            tl.add(
                ta,
                format!(
                    "client: last reply (icmp_seq={sa}) before {} lost pings",
                    sb - sa - 1
                ),
            );
            tl.add(
                tb,
                format!(
                    "client: replies again (icmp_seq={sb}) after {:.3} s without",
                    (tb - ta).as_secs_f64()
                ),
            );
        }
    }
    let lost_failover: u32 = outages
        .iter()
        .filter(|(t, _, _)| *t < t_restart)
        .map(|o| o.2)
        .sum();
    let lost_preempt: u32 = outages
        .iter()
        .filter(|(t, _, _)| *t >= t_restart)
        .map(|o| o.2)
        .sum();
    let gap_failover = outages
        .iter()
        .filter(|(t, _, _)| *t < t_restart)
        .map(|(a, b, _)| *b - *a)
        .max()
        .unwrap_or_default();
    let sent = replies.last().map(|r| r.1).unwrap_or(0);
    let _ = recovered;

    println!();
    println!("timeline (t = 0 at the kill; bridge capture and ping timestamps, same clock):");
    tl.print();
    println!();
    println!(
        "pings: {sent} sent, {} answered; lost during the failover: {lost_failover} (client without replies for {:.3} s), during the preempt-back: {lost_preempt}",
        replies.len(),
        gap_failover.as_secs_f64()
    );
    println!(
        "protocol wait after a crash (RFC 5798 Master_Down_Interval for r2, priority 100, 1 s adverts): {:.3} s",
        3.0 + (256.0 - 100.0) / 256.0
    );
    drop(r1b);
    drop(r2);
    if h != ["r1"] {
        return Err(format!(
            "r1 did not preempt back after restart: holders {h:?}"
        ));
    }
    println!("VIP moved r1 -> r2 -> r1: OK (lab cleaned up)");
    Ok(())
}
