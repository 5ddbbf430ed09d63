//! Failover benchmark: keepalived vs minivrrp in the namespace lab (tests/common/lab.rs).
//!
//! `cargo bench --bench failover` as root. Prints figures, asserts nothing about timing.
//!
//! Per implementation and per case (VRRPv2 at 1 s, VRRPv3 at 0.1 s; `v3fast`, VRRPv3 at 0.01 s,
//! when asked for with `BENCH_CASES`), r1 (priority 150) and r2
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
//! * `BENCH_CASES` (`v2,v3`): which cases to run (`v3fast`: 0.01 s adverts).
//! * `BENCH_TRIGGERS` (`kill9,linkdown,sigterm`).
//! * `BENCH_IDLE_SECS` (20): idle measurement window, scaled to a minute (0 skips the idle
//!   measurement).
//! * `BENCH_INSTANCES` (50): instance count of the "many" idle measurement (0 skips it).
//! * `BENCH_IMPLS` (`keepalived,minivrrp`): which implementations to run.

#[path = "../common/mod.rs"]
mod common;

use common::handover::{median, secs, spec, tail, trial, Case, Trigger, CASES};
use common::knobs::{env_list, env_num, minivrrp_bin};
use common::lab::{self, Impl, Lab, VrrpSpec};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Knobs {
    trials: usize,
    cases: Vec<Case>,
    triggers: Vec<Trigger>,
    idle: Duration,
    many: usize,
    impls: Vec<Impl>,
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
        impls.push(Impl::Minivrrp(minivrrp_bin()));
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
        "failover (ms, median of {} trials): trigger->advert  trigger->GARP  protocol  overhead(trigger)  overhead(last advert)  | worst: trigger->advert  overhead(last advert)",
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
                let worst = |v: &[f64]| v.iter().copied().reduce(f64::max);
                let (wa, wr) = (worst(&adv), worst(&from_ref));
                let (ma, mg, mr) = (median(adv), median(garp), median(from_ref));
                println!(
                    "  {:<10} {} {:<8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  | {:>8}  {:>8}   ({}/{} trials ok)",
                    imp.name(),
                    case.name,
                    trig.name(),
                    ms(ma),
                    ms(mg),
                    ms(Some(p)),
                    ms(ma.map(|a| a - p)),
                    ms(mr.map(|r| r - p)),
                    ms(wa),
                    ms(wr.map(|r| r - p)),
                    ok,
                    k.trials
                );
                let base = format!("{} {} ", case.name, trig.name());
                if let Some(a) = ma {
                    put(&mut table, format!("{base}advert ms"), imp.name(), a * 1e3);
                }
                if let Some(a) = wa {
                    put(
                        &mut table,
                        format!("{base}worst advert ms"),
                        imp.name(),
                        a * 1e3,
                    );
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
    for imp in k.impls.iter().filter(|_| !k.idle.is_zero()) {
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
