//! Failover benchmark: keepalived vs minivrrp in the namespace lab (tests/common/lab.rs).
//!
//! `cargo bench --bench failover` as root. Prints figures, asserts nothing about timing.
//!
//! Per implementation and per case (VRRPv2 at 1 s, VRRPv3 at 0.1 s), r1 (priority 150) and r2
//! (priority 100) share 10.0.0.254; the trigger hits r1 and we time, on the bridge capture, the
//! new master's (r2's) first advert and first gratuitous ARP:
//! * `kill9`: SIGKILL of r1's daemon (a crash),
//! * `linkdown`: `ip link set br-lan down` on r1,
//! * `sigterm`: graceful stop (priority-0 advert, RFC 5798 6.4.3).
//!
//! Trials fire the trigger at phases spread evenly over one advert interval, so the median
//! trigger->advert sits about half an interval under Master_Down_Interval for kill9/linkdown.
//! Times are measured from the trigger (CLOCK_REALTIME taken just before it; pcap timestamps use
//! the same clock). The protocol's own wait is Master_Down_Interval (kill9/linkdown) or Skew_Time
//! (sigterm) (RFC 5798 6.1). Two overheads are printed: vs the trigger (for kill9/linkdown this
//! is negative on average by up to one advert interval, because the backup's timer started at
//! r1's last advert, before the trigger) and vs r1's last advert before the trigger (kill9,
//! linkdown) or r1's priority-0 advert (sigterm), which is the daemon's real reaction overhead.
//!
//! Then idle cost: VmRSS and CPU time (utime+stime) per minute of one router running 1 and N
//! instances as master, and the binary size (+ shared libraries from `ldd`).
//!
//! Environment knobs:
//! * `MINIVRRP_BIN`: path of the minivrrp binary (default: the one cargo built for the bench,
//!   `target/release/minivrrp`).
//! * `BENCH_TRIALS` (5): trials per case and trigger.
//! * `BENCH_CASES` (`v2,v3`): which cases to run.
//! * `BENCH_TRIGGERS` (`kill9,linkdown,sigterm`).
//! * `BENCH_IDLE_SECS` (20): idle measurement window, scaled to a minute.
//! * `BENCH_INSTANCES` (50): instance count of the "many" idle measurement (0 skips it).
//! * `BENCH_IMPLS` (`keepalived,minivrrp`): which implementations to run.

#[path = "../common/mod.rs"]
mod common;

use common::lab::{self, Impl, Lab, Proc, VrrpSpec};
use common::pcap::Kind;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const VIP: &str = "10.0.0.254";
const VIP_CIDR: &str = "10.0.0.254/24";
const VRID: u8 = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Trigger {
    Kill9,
    LinkDown,
    Sigterm,
}

impl Trigger {
    fn name(self) -> &'static str {
        match self {
            Trigger::Kill9 => "kill9",
            Trigger::LinkDown => "linkdown",
            Trigger::Sigterm => "sigterm",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    version: u8,
    advert_int: f64,
}

const CASES: [Case; 2] = [
    Case {
        name: "v2",
        version: 2,
        advert_int: 1.0,
    },
    Case {
        name: "v3",
        version: 3,
        advert_int: 0.1,
    },
];

struct Knobs {
    trials: usize,
    cases: Vec<Case>,
    triggers: Vec<Trigger>,
    idle: Duration,
    many: usize,
    impls: Vec<Impl>,
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn knobs() -> Knobs {
    let cases = env_list("BENCH_CASES", "v2,v3");
    let triggers = env_list("BENCH_TRIGGERS", "kill9,linkdown,sigterm");
    let want_impls = env_list("BENCH_IMPLS", "keepalived,minivrrp");
    let mut impls = Vec::new();
    if want_impls.iter().any(|s| s == "keepalived")
        && common::require_tool("bench failover", "keepalived")
    {
        impls.push(Impl::Keepalived);
    }
    if want_impls.iter().any(|s| s == "minivrrp") {
        // Default: the binary cargo built for this bench (same profile as the bench itself).
        let bin = std::env::var_os("MINIVRRP_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_minivrrp")));
        impls.push(Impl::Minivrrp(bin));
    }
    Knobs {
        trials: env_num("BENCH_TRIALS", 5.0) as usize,
        cases: CASES
            .iter()
            .copied()
            .filter(|c| cases.iter().any(|n| n == c.name))
            .collect(),
        triggers: [Trigger::Kill9, Trigger::LinkDown, Trigger::Sigterm]
            .into_iter()
            .filter(|t| triggers.iter().any(|n| n == t.name()))
            .collect(),
        idle: Duration::from_secs_f64(env_num("BENCH_IDLE_SECS", 20.0)),
        many: env_num("BENCH_INSTANCES", 50.0) as usize,
        impls,
    }
}

/// One failover trial's figures, all relative to the trigger unless stated.
#[derive(Clone, Copy, Debug)]
struct Trial {
    advert: Duration,
    garp: Option<Duration>,
    /// New master's first advert minus r1's last advert before the trigger (kill9/linkdown) or
    /// r1's priority-0 advert (sigterm).
    from_reference: Option<Duration>,
}

fn spec(case: Case, priority: u8) -> VrrpSpec {
    VrrpSpec::new(VRID, priority, case.version, case.advert_int, VIP_CIDR)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Runs one trial; Err says why it was not measurable.
fn trial(
    lab: &Lab,
    cap: &lab::Capture,
    imp: &Impl,
    case: Case,
    trigger: Trigger,
    phase: f64,
) -> Result<Trial, String> {
    for n in ["r1", "r2"] {
        lab.del_addr(n, VIP_CIDR);
    }
    let master = spec(case, 150);
    let backup = spec(case, 100);
    let mut r1: Proc = lab.spawn_vrrp(imp, "r1", std::slice::from_ref(&master));
    let mut r2: Proc = lab.spawn_vrrp(imp, "r2", std::slice::from_ref(&backup));
    let elect = master.master_down_interval() * 2 + Duration::from_secs(5);
    let start = Instant::now();
    let mut h = lab.holders(VIP);
    while h != ["r1"] && start.elapsed() < elect {
        // A daemon that exited will not elect anyone: report it now instead of at the timeout.
        if !r1.running() || !r2.running() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        h = lab.holders(VIP);
    }
    if h != ["r1"] {
        return Err(format!(
            "no election: holders {h:?}; r1 log tail: {}",
            tail(&r1.log_text())
        ));
    }
    // Give r2 time to hear adverts (it must be a settled BACKUP before the trigger).
    std::thread::sleep(Duration::from_secs_f64(2.0 * case.advert_int + 0.3));
    if lab.holders(VIP) != ["r1"] {
        return Err(format!("unstable before trigger: {:?}", lab.holders(VIP)));
    }
    let r1_mac = lab.node("r1").mac;
    let r2_mac = lab.node("r2").mac;
    let vip: Ipv4Addr = VIP.parse().unwrap();
    // Spread the trigger over the advert cycle: without this every trial would hit the same
    // point after r1's last advert and trigger->advert would carry one fixed offset.
    std::thread::sleep(Duration::from_secs_f64(phase * case.advert_int));
    let t0 = match trigger {
        Trigger::Kill9 => r1.kill_hard(),
        Trigger::LinkDown => lab.set_link("r1", false),
        Trigger::Sigterm => r1.terminate(),
    };
    let limit = backup.master_down_interval() * 3 + Duration::from_secs(3);
    let adv = cap.wait_for(
        t0,
        limit,
        |k| matches!(k, Kind::Vrrp(a) if a.src_mac == r2_mac && a.vrid == VRID && a.priority > 0),
    );
    let garp = cap.wait_for(t0, Duration::from_millis(500), |k| {
        matches!(k, Kind::Garp { sender_ip, sender_mac } if *sender_mac == r2_mac && *sender_ip == vip)
    });
    let seen = cap.seen();
    let reference = match trigger {
        Trigger::Kill9 | Trigger::LinkDown => seen
            .iter()
            .filter(|s| s.ts < t0)
            .filter(|s| matches!(&s.kind, Kind::Vrrp(a) if a.src_mac == r1_mac && a.vrid == VRID && a.priority > 0))
            .map(|s| s.ts)
            .next_back(),
        Trigger::Sigterm => seen
            .iter()
            .filter(|s| s.ts >= t0)
            .find(|s| matches!(&s.kind, Kind::Vrrp(a) if a.src_mac == r1_mac && a.vrid == VRID && a.priority == 0))
            .map(|s| s.ts),
    };
    if trigger == Trigger::LinkDown {
        lab.set_link("r1", true);
    }
    drop(r1);
    drop(r2);
    let adv = adv.ok_or_else(|| format!("no advert from r2 within {limit:?}"))?;
    Ok(Trial {
        advert: adv.ts.saturating_sub(t0),
        garp: garp.map(|g| g.ts.saturating_sub(t0)),
        from_reference: reference.map(|r| adv.ts.saturating_sub(r)),
    })
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn ms(v: Option<f64>) -> String {
    v.map(|s| format!("{:.1}", s * 1000.0))
        .unwrap_or_else(|| "-".into())
}

/// Idle figures of one router running `n` instances as master.
struct Idle {
    rss_kb: u64,
    cpu_ms_per_min: f64,
    sched_ms_per_min: f64,
    procs: usize,
}

fn idle(lab: &Lab, imp: &Impl, n: usize, window: Duration) -> Result<Idle, String> {
    let specs: Vec<VrrpSpec> = (0..n)
        .map(|i| {
            // 10.0.1.1.. (and on into 10.0.2.x past 250) keep off the lab's own addresses.
            let vip = format!("10.0.{}.{}/24", 1 + i / 250, 1 + i % 250);
            VrrpSpec::new(1 + i as u8, 150, 3, 1.0, &vip)
        })
        .collect();
    let mut p = lab.spawn_vrrp(imp, "r1", &specs);
    let last = specs
        .last()
        .map(|s| s.vip_addrs()[0].clone())
        .unwrap_or_default();
    let first = specs[0].vip_addrs()[0].clone();
    let t = specs[0].master_down_interval() * 2 + Duration::from_secs(5);
    let start = Instant::now();
    while !(lab.node_has_addr("r1", &first) && lab.node_has_addr("r1", &last)) {
        if start.elapsed() > t || !p.running() {
            return Err(format!(
                "{n} instances: not master; log: {}",
                tail(&p.log_text())
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Past the startup work and the first GARP burst repeat (keepalived repeats it after 5 s).
    std::thread::sleep(Duration::from_secs(6));
    let (c0, s0) = (p.cpu_ticks(), p.cpu_ns());
    let w0 = Instant::now();
    std::thread::sleep(window);
    let (c1, s1) = (p.cpu_ticks(), p.cpu_ns());
    let elapsed = w0.elapsed();
    let cpu_s = c1.saturating_sub(c0) as f64 / lab::clock_ticks() as f64;
    let out = Idle {
        rss_kb: p.rss_kb(),
        cpu_ms_per_min: cpu_s * 1000.0 * 60.0 / elapsed.as_secs_f64(),
        sched_ms_per_min: s1.saturating_sub(s0) as f64 / 1e6 * 60.0 / elapsed.as_secs_f64(),
        procs: p.pids().len(),
    };
    drop(p);
    for s in &specs {
        lab.del_addr("r1", &s.vips[0]);
    }
    Ok(out)
}

/// (binary bytes, shared libraries, their total bytes)
fn footprint(imp: &Impl) -> Option<(u64, usize, u64)> {
    let path = match imp {
        Impl::Keepalived => {
            let o = std::process::Command::new("sh")
                .args(["-c", "command -v keepalived"])
                .output()
                .ok()?;
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
        }
        Impl::Minivrrp(p) => p.clone(),
    };
    let size = std::fs::metadata(&path).ok()?.len();
    let o = std::process::Command::new("ldd").arg(&path).output().ok()?;
    let text = String::from_utf8_lossy(&o.stdout);
    let mut libs = 0;
    let mut lib_bytes = 0;
    for l in text.lines() {
        // "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)" or "/lib64/ld-linux... (0x..)"
        let file = match l.split_once("=>") {
            Some((_, r)) => r.split_whitespace().next(),
            None => l.split_whitespace().next().filter(|f| f.starts_with('/')),
        };
        if let Some(f) = file.filter(|f| f.starts_with('/')) {
            libs += 1;
            lib_bytes += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        }
    }
    Some((size, libs, lib_bytes))
}

fn main() {
    if !common::require_root("bench failover") {
        return;
    }
    for t in ["tcpdump", "ip"] {
        if !common::require_tool("bench failover", t) {
            return;
        }
    }
    let k = knobs();
    if k.impls.is_empty() {
        eprintln!("nothing to run (BENCH_IMPLS selects nothing available)");
        return;
    }
    let stale = Lab::cleanup_dead_runs();
    if !stale.is_empty() {
        eprintln!("removed namespaces of dead runs: {stale:?}");
    }
    let started = Instant::now();
    let lab = Lab::new("bench");
    let cap = lab.capture("bench");

    // metric name -> impl name -> value (as printed)
    let mut table: BTreeMap<String, BTreeMap<&'static str, f64>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut put = |table: &mut BTreeMap<String, BTreeMap<&'static str, f64>>,
                   metric: String,
                   imp: &'static str,
                   v: f64| {
        if !order.contains(&metric) {
            order.push(metric.clone());
        }
        table.entry(metric).or_default().insert(imp, v);
    };

    println!(
        "failover (ms, median of {} trials): trigger->advert  trigger->GARP  protocol  overhead(trigger)  overhead(last advert)",
        k.trials
    );
    for imp in &k.impls {
        for &case in &k.cases {
            let backup = spec(case, 100);
            for &trig in &k.triggers {
                let protocol = match trig {
                    Trigger::Sigterm => backup.skew_time(),
                    _ => backup.master_down_interval(),
                };
                let mut adv = Vec::new();
                let mut garp = Vec::new();
                let mut from_ref = Vec::new();
                for n in 0..k.trials {
                    // Stratified phases (n + 0.5) / trials of the advert interval.
                    let phase = (n as f64 + 0.5) / k.trials as f64;
                    match trial(&lab, &cap, imp, case, trig, phase) {
                        Ok(t) => {
                            eprintln!(
                                "  {} {} {} #{n}: advert {:.1} ms, garp {} ms, from last r1 advert {} ms",
                                imp.name(),
                                case.name,
                                trig.name(),
                                secs(t.advert) * 1e3,
                                ms(t.garp.map(secs)),
                                ms(t.from_reference.map(secs))
                            );
                            adv.push(secs(t.advert));
                            garp.extend(t.garp.map(secs));
                            from_ref.extend(t.from_reference.map(secs));
                        }
                        Err(e) => {
                            eprintln!(
                                "  {} {} {} #{n}: FAILED: {e}",
                                imp.name(),
                                case.name,
                                trig.name()
                            )
                        }
                    }
                }
                let ok = adv.len();
                let p = secs(protocol);
                let (ma, mg, mr) = (median(adv), median(garp), median(from_ref));
                println!(
                    "  {:<10} {} {:<8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}   ({}/{} trials ok)",
                    imp.name(),
                    case.name,
                    trig.name(),
                    ms(ma),
                    ms(mg),
                    ms(Some(p)),
                    ms(ma.map(|a| a - p)),
                    ms(mr.map(|r| r - p)),
                    ok,
                    k.trials
                );
                let base = format!("{} {} ", case.name, trig.name());
                if let Some(a) = ma {
                    put(&mut table, format!("{base}advert ms"), imp.name(), a * 1e3);
                }
                if let Some(g) = mg {
                    put(&mut table, format!("{base}GARP ms"), imp.name(), g * 1e3);
                }
                if let Some(r) = mr {
                    put(
                        &mut table,
                        format!("{base}overhead ms"),
                        imp.name(),
                        (r - p) * 1e3,
                    );
                }
            }
        }
    }
    drop(cap);

    println!(
        "idle ({} s window scaled to a minute, advert 1 s, VRRPv3):",
        k.idle.as_secs_f64()
    );
    for imp in &k.impls {
        let mut counts = vec![1];
        if k.many > 1 {
            counts.push(k.many.min(255));
        }
        for n in counts {
            match idle(&lab, imp, n, k.idle) {
                Ok(i) => {
                    println!(
                        "  {:<10} {n:>3} instance(s): VmRSS {} kB over {} process(es), CPU {:.1} ms/min (utime+stime), {:.2} ms/min (schedstat)",
                        imp.name(),
                        i.rss_kb,
                        i.procs,
                        i.cpu_ms_per_min,
                        i.sched_ms_per_min
                    );
                    put(
                        &mut table,
                        format!("idle {n} inst RSS kB"),
                        imp.name(),
                        i.rss_kb as f64,
                    );
                    put(
                        &mut table,
                        format!("idle {n} inst CPU ms/min"),
                        imp.name(),
                        i.cpu_ms_per_min,
                    );
                    put(
                        &mut table,
                        format!("idle {n} inst sched ms/min"),
                        imp.name(),
                        i.sched_ms_per_min,
                    );
                }
                Err(e) => println!("  {:<10} {n:>3} instance(s): FAILED: {e}", imp.name()),
            }
        }
    }

    println!("footprint:");
    for imp in &k.impls {
        if let Some((size, libs, lib_bytes)) = footprint(imp) {
            println!(
                "  {:<10} binary {size} B, {libs} shared libraries ({lib_bytes} B)",
                imp.name()
            );
            put(&mut table, "binary bytes".into(), imp.name(), size as f64);
            put(
                &mut table,
                "shared libraries".into(),
                imp.name(),
                libs as f64,
            );
            put(
                &mut table,
                "binary + libraries bytes".into(),
                imp.name(),
                (size + lib_bytes) as f64,
            );
        }
    }

    println!();
    println!(
        "{:<32} {:>14} {:>14} {:>10}",
        "metric", "keepalived", "minivrrp", "ratio m/k"
    );
    for m in &order {
        let row = &table[m];
        let k = row.get("keepalived").copied();
        let v = row.get("minivrrp").copied();
        let f = |x: Option<f64>| x.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into());
        let ratio = match (k, v) {
            (Some(k), Some(v)) if k != 0.0 => format!("{:.3}", v / k),
            _ => "-".into(),
        };
        println!("{m:<32} {:>14} {:>14} {ratio:>10}", f(k), f(v));
    }
    println!("(total run {:.0} s)", started.elapsed().as_secs_f64());
}
