//! The performance table: minivrrp (the real daemon process) and Debian's keepalived side by
//! side in one namespace lab (tests/common/lab.rs), in one run, with ratios.
//!
//! `cargo bench --bench perf` as root. Prints figures, asserts nothing about timing. Absolute
//! figures move with the machine's load; the ratios of one run are what compares.
//!
//! Parts (`PERF_PARTS`, default all: `idle,handover,scale,checks`):
//! * `idle`: r1 (priority 150, master) and r2 (priority 100, backup) each run N instances
//!   (VRRPv3 at 0.1 s, then VRRPv2 at 1 s); scheduler run time of every process of each daemon
//!   (`/proc/PID/task/*/schedstat`) over windows scaled to 30 s, median over the windows; VmRSS.
//! * `handover`: one VRRPv3 0.1 s instance; SIGTERM of the master: its priority-0 advert -> the
//!   backup's first advert, minus Skew_Time; `kill -9`: the master's last advert -> the
//!   backup's first advert, minus Master_Down_Interval (RFC 5798 6.1). Median and range.
//! * `scale`: one router, `PERF_SCALE` (255) VRRPv3 1 s instances at priority 255 (the owner
//!   becomes master at once, RFC 5798 6.4.1; keepalived also needs `state MASTER` for that,
//!   so no protocol wait is in the figure):
//!   start -> first advert and -> every instance's first advert (bridge capture), VmRSS, and a
//!   reload (SIGHUP after adding a VIP to the last instance) -> the new address appears in the
//!   kernel (`ip -ts monitor address`), with the reload's CPU time.
//! * `checks` (minivrrp only: keepalived's checker needs IPVS): the daemon with 1000, 4096, 10,000
//!   real servers, each TCP-checked every second (one listener in the client namespace answers
//!   for 10.1.0.0/16 through a local route); CPU per second of wall time, and the latency of
//!   the checks' attempts from `minivrrp status --json` (IPVS may be missing on this kernel:
//!   the checks still run).
//!
//! Knobs (defaults give one run of a few minutes):
//! * `MINIVRRP_BIN`: the daemon (default: the release binary cargo built for the bench).
//! * `PERF_IMPLS` (`keepalived,minivrrp`), `PERF_PARTS` (see above).
//! * `PERF_INSTANCES` (50), `PERF_IDLE_SECS` (10) per window, `PERF_IDLE_WINDOWS` (1).
//! * `PERF_TRIALS` (5) handover trials per trigger.
//! * `PERF_SCALE` (255) instances of the scale part.
//! * `PERF_MINIVRRP_UCI`: UCI lines added to every minivrrp instance (`;`-separated).
//! * `PERF_SERVERS` (`1000,4096,10000`) real servers (a count above `MAX_REAL_SERVERS` shows
//!   the refusal in the table), `PERF_CHECK_SECS` (10) CPU window,
//!   `PERF_CHECK_POLLS` (5) status samples for the latency percentiles.

#[path = "../common/mod.rs"]
mod common;

use common::handover::{self, median, tail, Case, Trigger};
use common::knobs::{env_list, env_num, minivrrp_bin};
use common::lab::{self, Impl, Lab, Proc, VrrpSpec};
use common::pcap::Kind;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Knobs {
    impls: Vec<Impl>,
    parts: Vec<String>,
    instances: usize,
    idle: Duration,
    windows: usize,
    trials: usize,
    scale: usize,
    servers: Vec<usize>,
    check_window: Duration,
    check_polls: usize,
    bin: PathBuf,
}

fn knobs() -> Knobs {
    let bin = minivrrp_bin();
    let want = env_list("PERF_IMPLS", "keepalived,minivrrp");
    let mut impls = Vec::new();
    if want.iter().any(|s| s == "minivrrp") {
        impls.push(Impl::Minivrrp(bin.clone()));
    }
    if want.iter().any(|s| s == "keepalived") && common::require_tool("bench perf", "keepalived") {
        impls.push(Impl::Keepalived);
    }
    Knobs {
        impls,
        parts: env_list("PERF_PARTS", "idle,handover,scale,checks"),
        instances: (env_num("PERF_INSTANCES", 50.0) as usize).clamp(1, 255),
        idle: Duration::from_secs_f64(env_num("PERF_IDLE_SECS", 10.0)),
        windows: (env_num("PERF_IDLE_WINDOWS", 1.0) as usize).max(1),
        trials: (env_num("PERF_TRIALS", 5.0) as usize).max(1),
        scale: (env_num("PERF_SCALE", 255.0) as usize).clamp(1, 255),
        servers: env_list("PERF_SERVERS", "1000,4096,10000")
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect(),
        check_window: Duration::from_secs_f64(env_num("PERF_CHECK_SECS", 10.0)),
        check_polls: (env_num("PERF_CHECK_POLLS", 5.0) as usize).max(1),
        bin,
    }
}

/// One line of the final table: a figure per implementation (as text), the ratio
/// minivrrp / keepalived when both are numbers, and the goal.
struct Row {
    figure: String,
    mini: Option<f64>,
    keep: Option<f64>,
    /// Printed instead of the number (a range, a refusal).
    mini_text: Option<String>,
    keep_text: Option<String>,
    unit: &'static str,
    goal: String,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn row(&mut self, figure: &str, unit: &'static str, goal: &str) -> &mut Row {
        if let Some(i) = self.rows.iter().position(|r| r.figure == figure) {
            return &mut self.rows[i];
        }
        self.rows.push(Row {
            figure: figure.to_string(),
            mini: None,
            keep: None,
            mini_text: None,
            keep_text: None,
            unit,
            goal: goal.to_string(),
        });
        self.rows.last_mut().unwrap()
    }

    fn set(
        &mut self,
        imp: &Impl,
        figure: &str,
        unit: &'static str,
        goal: &str,
        v: Option<f64>,
        text: Option<String>,
    ) {
        let r = self.row(figure, unit, goal);
        match imp {
            Impl::Minivrrp(_) => {
                r.mini = v;
                r.mini_text = text;
            }
            Impl::Keepalived => {
                r.keep = v;
                r.keep_text = text;
            }
        }
    }

    fn print(&self) {
        println!("| figure | minivrrp | keepalived | ratio m/k | goal |");
        println!("|---|---|---|---|---|");
        for r in &self.rows {
            let cell = |v: Option<f64>, t: &Option<String>| match (v, t) {
                (_, Some(t)) => t.clone(),
                (Some(v), None) => format!("{} {}", num(v), r.unit),
                (None, None) => "-".into(),
            };
            let ratio = match (r.mini, r.keep) {
                (Some(m), Some(k)) if k != 0.0 => format!("{:.2}", m / k),
                _ => "-".into(),
            };
            println!(
                "| {} | {} | {} | {} | {} |",
                r.figure,
                cell(r.mini, &r.mini_text),
                cell(r.keep, &r.keep_text),
                ratio,
                r.goal
            );
        }
    }
}

/// Three significant figures, no float noise.
fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `n` instances 1..=n, each with its own /24 VIP off the lab's addresses (10.0.1.1, ...).
/// `PERF_MINIVRRP_UCI` (e.g. `option vip_lifetime '0'`; several separated by `;`) is added to
/// every minivrrp instance, to see what one option costs.
fn many(n: usize, priority: u8, version: u8, advert_int: f64) -> Vec<VrrpSpec> {
    let extra: Vec<String> = std::env::var("PERF_MINIVRRP_UCI")
        .unwrap_or_default()
        .split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    (0..n)
        .map(|i| {
            let vip = format!("10.0.{}.{}/24", 1 + i / 250, 1 + i % 250);
            let mut s = VrrpSpec::new(1 + i as u8, priority, version, advert_int, &vip);
            s.extra_uci = extra.clone();
            s
        })
        .collect()
}

fn clear_vips(lab: &Lab, specs: &[VrrpSpec]) {
    for s in specs {
        for v in &s.vips {
            for n in ["r1", "r2"] {
                lab.del_addr(n, v);
            }
        }
    }
}

/// Waits until `node` holds the first and last instance's VIP; Err with the log tail.
fn wait_master(
    lab: &Lab,
    p: &mut Proc,
    node: &str,
    specs: &[VrrpSpec],
    t: Duration,
) -> Result<(), String> {
    let first = specs[0].vip_addrs()[0].clone();
    let last = specs[specs.len() - 1].vip_addrs()[0].clone();
    let start = Instant::now();
    while !(lab.node_has_addr(node, &first) && lab.node_has_addr(node, &last)) {
        if start.elapsed() > t || !p.running() {
            return Err(format!("not master: {}", tail(&p.log_text())));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Voluntary context switches of every thread of every process of the daemon.
fn wakeups(p: &Proc) -> u64 {
    let mut n = 0;
    for pid in p.pids() {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in rd.flatten() {
            let st = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            n += st
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    n
}

struct IdleFigures {
    /// Share of the master's CPU ticks spent in user space (the rest is the kernel's, most of
    /// it the transmit path of the adverts).
    master_user: f64,
    master_ms: f64,
    backup_ms: f64,
    /// Voluntary context switches per second (each one a wake-up from poll/epoll).
    master_wakeups: f64,
    backup_wakeups: f64,
    master_rss_kb: u64,
    procs: usize,
}

/// Scheduler run time per 30 s of a master and a backup each running `n` instances.
fn idle_pair(
    lab: &Lab,
    imp: &Impl,
    version: u8,
    advert_int: f64,
    n: usize,
    k: &Knobs,
) -> Result<IdleFigures, String> {
    let master = many(n, 150, version, advert_int);
    let backup = many(n, 100, version, advert_int);
    clear_vips(lab, &master);
    let mut r1 = lab.spawn_vrrp(imp, "r1", &master);
    let mut r2 = lab.spawn_vrrp(imp, "r2", &backup);
    let t = master[0].master_down_interval() * 2 + Duration::from_secs(10);
    wait_master(lab, &mut r1, "r1", &master, t)?;
    // Past the start-up work and the second GARP burst (both daemons repeat it after 5 s).
    std::thread::sleep(Duration::from_secs(6));
    if !lab.holders(&master[0].vip_addrs()[0]).eq(&["r1"]) {
        return Err("r2 holds a VIP: no stable master/backup pair".into());
    }
    let (mut m, mut b) = (Vec::new(), Vec::new());
    let ticks = |p: &Proc| {
        p.pids()
            .iter()
            .filter_map(|&pid| lab::proc_stat(pid))
            .fold((0, 0), |(u, s), st| (u + st.utime, s + st.stime))
    };
    let (u0, s0) = ticks(&r1);
    let (wm0, wb0, t0) = (wakeups(&r1), wakeups(&r2), Instant::now());
    for _ in 0..k.windows {
        let (m0, b0, w0) = (r1.cpu_ns(), r2.cpu_ns(), Instant::now());
        std::thread::sleep(k.idle);
        let (m1, b1) = (r1.cpu_ns(), r2.cpu_ns());
        let per30 = 30.0 / w0.elapsed().as_secs_f64() / 1e6;
        m.push(m1.saturating_sub(m0) as f64 * per30);
        b.push(b1.saturating_sub(b0) as f64 * per30);
    }
    let (u1, s1) = ticks(&r1);
    let secs = t0.elapsed().as_secs_f64();
    let master_wakeups = wakeups(&r1).saturating_sub(wm0) as f64 / secs;
    let backup_wakeups = wakeups(&r2).saturating_sub(wb0) as f64 / secs;
    let (du, ds) = (u1.saturating_sub(u0) as f64, s1.saturating_sub(s0) as f64);
    let out = IdleFigures {
        master_user: if du + ds > 0.0 {
            du / (du + ds)
        } else {
            f64::NAN
        },
        master_wakeups,
        backup_wakeups,
        master_ms: median(m).unwrap_or(f64::NAN),
        backup_ms: median(b).unwrap_or(f64::NAN),
        master_rss_kb: r1.rss_kb(),
        procs: r1.pids().len(),
    };
    if !r1.running() || !r2.running() {
        return Err("a daemon exited during the window".into());
    }
    drop(r1);
    drop(r2);
    clear_vips(lab, &master);
    Ok(out)
}

fn part_idle(lab: &Lab, k: &Knobs, table: &mut Table) {
    let n = k.instances;
    println!(
        "== idle: {n} instances, master r1 + backup r2, {} window(s) of {:.0} s, ms of CPU per 30 s",
        k.windows,
        k.idle.as_secs_f64()
    );
    for (version, adv, label, goal_m, goal_b) in [
        (3u8, 0.1, "VRRPv3 0.1 s", "<= 1/5 of keepalived", "<= 1/3"),
        (2u8, 1.0, "VRRPv2 1 s", "<= 1/5", "<= 1/3"),
    ] {
        for imp in &k.impls {
            match idle_pair(lab, imp, version, adv, n, k) {
                Ok(f) => {
                    println!(
                        "  {:<10} {label}: master {:.1} ms ({:.0} % user, {:.0} wake-ups/s), backup {:.1} ms ({:.0} wake-ups/s), master VmRSS {} kB ({} process(es))",
                        imp.name(),
                        f.master_ms,
                        f.master_user * 100.0,
                        f.master_wakeups,
                        f.backup_ms,
                        f.backup_wakeups,
                        f.master_rss_kb,
                        f.procs
                    );
                    table.set(
                        imp,
                        &format!("idle CPU, {n} instances {label}, master"),
                        "ms / 30 s",
                        goal_m,
                        Some(f.master_ms),
                        None,
                    );
                    table.set(
                        imp,
                        &format!("idle CPU, {n} instances {label}, backup"),
                        "ms / 30 s",
                        goal_b,
                        Some(f.backup_ms),
                        None,
                    );
                    table.set(
                        imp,
                        &format!("wake-ups, {n} instances {label}, master / backup"),
                        "per s",
                        "",
                        Some(f.master_wakeups + f.backup_wakeups),
                        Some(format!(
                            "{:.0} / {:.0} per s",
                            f.master_wakeups, f.backup_wakeups
                        )),
                    );
                    if version == 3 {
                        table.set(
                            imp,
                            &format!("RSS, {n} instances (master)"),
                            "kB",
                            "",
                            Some(f.master_rss_kb as f64),
                            None,
                        );
                    }
                }
                Err(e) => println!("  {:<10} {label}: FAILED: {e}", imp.name()),
            }
        }
    }
}

fn part_handover(lab: &Lab, k: &Knobs, table: &mut Table) {
    let case = Case {
        name: "v3",
        version: 3,
        advert_int: 0.1,
    };
    let cap = lab.capture("handover");
    println!(
        "== handover: VRRPv3 0.1 s, {} trials per trigger, ms over the protocol's wait",
        k.trials
    );
    for imp in &k.impls {
        for trig in [Trigger::Sigterm, Trigger::Kill9] {
            let backup = handover::spec(case, 100);
            let wait = match trig {
                Trigger::Sigterm => backup.skew_time(),
                _ => backup.master_down_interval(),
            }
            .as_secs_f64();
            let mut over = Vec::new();
            for n in 0..k.trials {
                let phase = (n as f64 + 0.5) / k.trials as f64;
                match handover::trial(lab, &cap, imp, case, trig, phase) {
                    Ok(t) => match t.from_reference {
                        Some(r) => over.push((r.as_secs_f64() - wait) * 1e3),
                        None => {
                            eprintln!("  {} {} #{n}: no reference frame", imp.name(), trig.name())
                        }
                    },
                    Err(e) => eprintln!("  {} {} #{n}: FAILED: {e}", imp.name(), trig.name()),
                }
            }
            let fmt: Vec<String> = over.iter().map(|v| format!("{v:+.2}")).collect();
            println!(
                "  {:<10} {:<8} {} ms",
                imp.name(),
                trig.name(),
                fmt.join(" ")
            );
            let (figure, goal) = match trig {
                Trigger::Sigterm => (
                    "SIGTERM handover: prio-0 advert -> backup's first advert, over Skew_Time",
                    "<= +0.3 ms",
                ),
                _ => (
                    "master-down reaction over the RFC bound (kill -9)",
                    "<= +0.3 ms",
                ),
            };
            let med = median(over.clone());
            let text = med.map(|m| {
                let (lo, hi) = min_max(&over);
                format!("{m:+.2} ms ({lo:+.2}..{hi:+.2})")
            });
            table.set(imp, figure, "ms", goal, med, text);
        }
    }
    // SIGTERM of a master of N instances: how long its priority-0 adverts take to be out.
    let n = k.instances;
    for imp in &k.impls {
        let master = many(n, 150, 3, 0.1);
        let backup = many(n, 100, 3, 0.1);
        clear_vips(lab, &master);
        let mut r1 = lab.spawn_vrrp(imp, "r1", &master);
        let r2 = lab.spawn_vrrp(imp, "r2", &backup);
        let t = master[0].master_down_interval() * 2 + Duration::from_secs(10);
        if let Err(e) = wait_master(lab, &mut r1, "r1", &master, t) {
            println!("  {:<10} SIGTERM of {n} masters: FAILED: {e}", imp.name());
            continue;
        }
        std::thread::sleep(Duration::from_secs(1));
        let r1_mac = lab.node("r1").mac;
        let t0 = r1.terminate();
        r1.wait_exit(Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(300));
        let zero: Vec<Duration> = cap
            .seen()
            .iter()
            .filter(|s| s.ts >= t0)
            .filter(|s| matches!(&s.kind, Kind::Vrrp(a) if a.src_mac == r1_mac && a.priority == 0))
            .map(|s| s.ts - t0)
            .collect();
        drop(r1);
        drop(r2);
        clear_vips(lab, &master);
        let (Some(first), Some(last)) = (zero.first(), zero.last()) else {
            println!(
                "  {:<10} SIGTERM of {n} masters: no priority-0 advert seen",
                imp.name()
            );
            continue;
        };
        let f = |d: &Duration| d.as_secs_f64() * 1e3;
        println!(
            "  {:<10} SIGTERM of {n} masters: {} priority-0 adverts, first {:.2} ms, last {:.2} ms after the signal",
            imp.name(),
            zero.len(),
            f(first),
            f(last)
        );
        table.set(
            imp,
            &format!("SIGTERM of {n} masters: signal -> last priority-0 advert"),
            "ms",
            "",
            Some(f(last)),
            Some(format!("{:.2} ms (first {:.2})", f(last), f(first))),
        );
    }
    drop(cap);
}

/// Reads `ip -ts monitor address` lines until one mentions `addr`; returns its timestamp as
/// time since the epoch (the lab machine's local time is taken as UTC, like pcap's clock).
fn monitor_wait(reader: &mut impl BufRead, addr: &str, timeout: Instant) -> Option<Duration> {
    let mut line = String::new();
    while Instant::now() < timeout {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line.contains(&format!(" {addr}/")) && !line.contains("Deleted") {
            return parse_ts(&line);
        }
    }
    None
}

/// `[2026-12-04T20:11:02.123456]` -> since the epoch (UTC).
fn parse_ts(line: &str) -> Option<Duration> {
    let s = line.strip_prefix('[')?;
    let (date, rest) = s.split_once('T')?;
    let time = rest.split(']').next()?;
    let d: Vec<i64> = date.split('-').filter_map(|x| x.parse().ok()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').filter_map(|x| x.parse().ok()).collect();
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + t[0] * 3600 + t[1] * 60 + t[2];
    let micros: u64 = format!("{:0<6}", &frac[..frac.len().min(6)]).parse().ok()?;
    Some(Duration::from_secs(secs as u64) + Duration::from_micros(micros))
}

/// `FILE:LINE: SECTION: message` -> `message` (the table has no room for a temp path).
fn short_error(line: &str) -> String {
    if line.starts_with('/') {
        line.splitn(3, ": ").nth(2).unwrap_or(line).to_string()
    } else {
        line.to_string()
    }
}

/// The reason a figure is missing, for the table: from a daemon's log tail (lines joined by
/// ` | `), the line naming a limit ("at most") or else the last one, shortened to `max` chars.
fn table_reason(why: &str, max: usize) -> String {
    why.split(" | ")
        .find(|l| l.contains("at most"))
        .or_else(|| why.rsplit(" | ").next())
        .map(short_error)
        .unwrap_or_default()
        .chars()
        .take(max)
        .collect()
}

fn part_scale(lab: &Lab, k: &Knobs, table: &mut Table) {
    let n = k.scale;
    println!("== scale: {n} VRRPv3 1 s instances priority 255 (address owner: master at once, RFC 5798 6.4.1) on one interface");
    for imp in &k.impls {
        let specs = many(n, 255, 3, 1.0);
        clear_vips(lab, &specs);
        let cap = lab.capture(&format!("scale-{}", imp.name()));
        let r1_mac = lab.node("r1").mac;
        let t0 = lab::now_realtime();
        let mut p = match imp {
            Impl::Keepalived => lab.spawn_keepalived_text(
                "r1",
                &lab::keepalived_conf("r1", &specs).replace("state BACKUP", "state MASTER"),
            ),
            _ => lab.spawn_vrrp(imp, "r1", &specs),
        };
        let start = Instant::now();
        let mut first = None;
        let mut all = None;
        while start.elapsed() < Duration::from_secs(20) && p.running() {
            let seen = cap.seen();
            let mine: Vec<(Duration, u8)> = seen
                .iter()
                .filter(|s| s.ts >= t0)
                .filter_map(|s| match &s.kind {
                    Kind::Vrrp(a) if a.src_mac == r1_mac && a.priority > 0 => Some((s.ts, a.vrid)),
                    _ => None,
                })
                .collect();
            if first.is_none() {
                first = mine.first().map(|m| m.0 - t0);
            }
            let mut vrids = BTreeSet::new();
            for (ts, v) in &mine {
                vrids.insert(*v);
                if vrids.len() == n {
                    all = Some(*ts - t0);
                    break;
                }
            }
            if all.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !p.running() || first.is_none() {
            let why = tail(&p.log_text());
            println!("  {:<10} FAILED: {why}", imp.name());
            let short = table_reason(&why, 90);
            table.set(
                imp,
                &format!("RSS, {n} instances"),
                "kB",
                "<= 1 MB",
                None,
                Some(format!("refused: {short}")),
            );
            drop(p);
            clear_vips(lab, &specs);
            continue;
        }
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_secs(2));
        let rss = p.rss_kb();
        let anon = p.rss_anon_kb();
        println!(
            "  {:<10} start -> first advert {:.1} ms, -> all {n} instances' first adverts {} ms, VmRSS {rss} kB (RssAnon {anon} kB)",
            imp.name(),
            ms(first).unwrap_or(f64::NAN),
            ms(all).map(|v| format!("{v:.1}")).unwrap_or_else(|| "- (not all seen)".into())
        );
        table.set(
            imp,
            &format!("RSS, {n} instances"),
            "kB",
            "<= 1 MB",
            Some(rss as f64),
            None,
        );
        // What the daemon itself owns: VmRSS less the mapped executable and libraries
        // (RssFile, pages shared with the page cache).
        table.set(
            imp,
            &format!("RSS without the mapped binary and libraries (RssAnon), {n} instances"),
            "kB",
            "",
            Some(anon as f64),
            None,
        );
        table.set(
            imp,
            &format!("start -> first advert, {n} instances"),
            "ms",
            "",
            ms(first),
            None,
        );
        table.set(
            imp,
            &format!("start -> every instance's first advert, {n} instances"),
            "ms",
            "",
            ms(all),
            None,
        );

        // Reload: one more VIP on the last instance; timed to the kernel's address event.
        let extra = "10.0.3.250";
        lab.del_addr("r1", &format!("{extra}/24"));
        let mut changed = specs.clone();
        changed[n - 1].vips.push(format!("{extra}/24"));
        let ns = lab.node("r1").ns.clone();
        let mut mon = Command::new("ip")
            .args(["-n", &ns, "-ts", "monitor", "address"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip monitor");
        let mut reader = BufReader::new(mon.stdout.take().expect("stdout"));
        std::thread::sleep(Duration::from_millis(300));
        match imp {
            Impl::Keepalived => std::fs::write(
                lab.keepalived_conf_path("r1"),
                lab::keepalived_conf("r1", &changed).replace("state BACKUP", "state MASTER"),
            ),
            Impl::Minivrrp(_) => std::fs::write(
                lab.minivrrp_conf_path("r1"),
                lab::minivrrp_uci("r1", &changed),
            ),
        }
        .expect("write config");
        let c0 = p.cpu_ns();
        let hup = p.signal(libc::SIGHUP);
        let seen = monitor_wait(&mut reader, extra, Instant::now() + Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(2));
        let reload_cpu = p.cpu_ns().saturating_sub(c0) as f64 / 1e6;
        let _ = mon.kill();
        let _ = mon.wait();
        let wall = seen.map(|t| t.saturating_sub(hup).as_secs_f64() * 1e3);
        println!(
            "  {:<10} reload: SIGHUP -> new VIP in the kernel {} ms; CPU in the 2 s after SIGHUP {reload_cpu:.1} ms",
            imp.name(),
            wall.map(|w| format!("{w:.1}")).unwrap_or_else(|| "- (not seen)".into())
        );
        table.set(
            imp,
            &format!("reload, {n} instances: SIGHUP -> new VIP installed"),
            "ms",
            "",
            wall,
            None,
        );
        table.set(
            imp,
            &format!("reload, {n} instances: CPU in the 2 s after SIGHUP"),
            "ms",
            "",
            Some(reload_cpu),
            None,
        );
        drop(p);
        clear_vips(lab, &changed);
        drop(cap);
    }
}

/// A TCP listener in the client namespace with a deep backlog, accepting and closing until the
/// process exits (the lab's namespace goes with it).
fn listener(lab: &Lab, port: u16) {
    common::netns::spawn_in(&lab.node("client").ns, move || {
        // SAFETY: socket/bind/listen/accept/close on this thread's own fds.
        unsafe {
            let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            let one: libc::c_int = 1;
            libc::setsockopt(
                s,
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                &one as *const _ as *const libc::c_void,
                4,
            );
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as u16;
            sa.sin_port = port.to_be();
            assert_eq!(
                libc::bind(
                    s,
                    &sa as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as u32
                ),
                0
            );
            assert_eq!(libc::listen(s, 4096), 0);
            loop {
                let c = libc::accept(s, std::ptr::null_mut(), std::ptr::null_mut());
                if c >= 0 {
                    libc::close(c);
                }
            }
        }
    });
}

fn checks_uci(n: usize) -> String {
    let mut t = String::from(
        "config globals 'globals'\n\toption router_id 'r1'\n\toption log_level 'warn'\n\n\
         config check 'tcp'\n\toption type 'tcp'\n\toption interval '1'\n\toption connect_timeout '1'\n\toption retry '0'\n\n\
         config virtual_server 'vs'\n\toption address '10.0.0.200'\n\toption port '80'\n\toption check 'tcp'\n\n",
    );
    for i in 0..n {
        t.push_str(&format!(
            "config real_server\n\toption virtual_server 'vs'\n\toption address '10.1.{}.{}'\n\toption port '8080'\n\n",
            1 + i / 250,
            1 + i % 250
        ));
    }
    t
}

fn status_json(k: &Knobs, lab: &Lab) -> Option<serde_json::Value> {
    let o = Command::new(&k.bin)
        .args(["status", "--json", "--socket"])
        .arg(lab.control_socket("r1"))
        .output()
        .ok()?;
    serde_json::from_slice(&o.stdout).ok()
}

fn part_checks(lab: &Lab, k: &Knobs, table: &mut Table) {
    let Some(imp) = k.impls.iter().find(|i| matches!(i, Impl::Minivrrp(_))) else {
        return;
    };
    println!("== checks: the daemon with N TCP-checked real servers at 1 s (minivrrp only)");
    lab.exec(
        "client",
        &["ip", "route", "add", "local", "10.1.0.0/16", "dev", "lo"],
    );
    lab.exec(
        "r1",
        &["ip", "route", "add", "10.1.0.0/16", "via", "10.0.0.100"],
    );
    listener(lab, 8080);
    for &n in &k.servers {
        let figure = format!("{n} TCP-checked real servers at 1 s: CPU");
        let lat = format!("{n} real servers: check latency p50 / p99 / max");
        let mut p = lab.spawn_minivrrp_text("r1", &k.bin, &checks_uci(n), &format!("checks-{n}"));
        // Every check has run once (or the daemon refused the config).
        let start = Instant::now();
        let mut ready = false;
        while start.elapsed() < Duration::from_secs(30) && p.running() {
            std::thread::sleep(Duration::from_secs(1));
            if let Some(j) = status_json(k, lab) {
                let checks = j["checks"].as_array().cloned().unwrap_or_default();
                let done = checks
                    .iter()
                    .filter(|c| !c["last_result"].is_null())
                    .count();
                if checks.len() == n && done == n {
                    ready = true;
                    break;
                }
            }
        }
        if !ready {
            let why = tail(&p.log_text());
            println!("  {n}: not measured: {why}");
            let short = table_reason(&why, 100);
            table.set(
                imp,
                &figure,
                "% of a core",
                "1000 at 1 s: < 5 %",
                None,
                Some(format!("not run: {short}")),
            );
            continue;
        }
        std::thread::sleep(Duration::from_secs(2));
        let (c0, w0) = (p.cpu_ns(), Instant::now());
        std::thread::sleep(k.check_window);
        let cpu = p.cpu_ns().saturating_sub(c0) as f64 / w0.elapsed().as_nanos() as f64 * 100.0;
        // Latency: each status sample holds every check's last attempt; a sample per second
        // sees (almost) every attempt once.
        let mut lats = Vec::new();
        let (mut up, mut down, mut failed) = (0, 0, 0);
        for _ in 0..k.check_polls {
            std::thread::sleep(Duration::from_secs(1));
            if let Some(j) = status_json(k, lab) {
                for c in j["checks"].as_array().into_iter().flatten() {
                    if let Some(us) = c["latency_us"].as_u64() {
                        lats.push(us as f64 / 1e3);
                    }
                    match c["state"].as_str() {
                        Some("up") => up += 1,
                        Some("down") => down += 1,
                        _ => {}
                    }
                    if c["last_result"].as_str().is_some_and(|r| r != "ok") {
                        failed += 1;
                    }
                }
            }
        }
        lats.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (p50, p99, max) = (
            percentile(&lats, 0.5),
            percentile(&lats, 0.99),
            lats.last().copied().unwrap_or(f64::NAN),
        );
        println!(
            "  {n}: CPU {cpu:.2} % of a core over {:.0} s; latency p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({} samples; up {up}, down {down}, failed attempts {failed}); VmRSS {} kB",
            k.check_window.as_secs_f64(),
            lats.len(),
            p.rss_kb()
        );
        table.set(
            imp,
            &figure,
            "% of a core",
            "1000 at 1 s: < 5 %",
            Some(cpu),
            None,
        );
        table.set(
            imp,
            &lat,
            "ms",
            "p99 < 5 ms",
            Some(p99),
            Some(format!("{p50:.2} / {p99:.2} / {max:.2} ms")),
        );
        drop(p);
    }
}

fn main() {
    if !common::require_root("bench perf") {
        return;
    }
    for t in ["tcpdump", "ip"] {
        if !common::require_tool("bench perf", t) {
            return;
        }
    }
    let k = knobs();
    let stale = Lab::cleanup_dead_runs();
    if !stale.is_empty() {
        eprintln!("removed namespaces of dead runs: {stale:?}");
    }
    let started = Instant::now();
    let lab = Lab::new("perf");
    let mut table = Table::default();
    for part in &k.parts {
        match part.as_str() {
            "idle" => part_idle(&lab, &k, &mut table),
            "handover" => part_handover(&lab, &k, &mut table),
            "scale" => part_scale(&lab, &k, &mut table),
            "checks" => part_checks(&lab, &k, &mut table),
            other => eprintln!("unknown part {other:?}"),
        }
    }
    println!();
    table.print();
    println!(
        "(total run {:.0} s; load average at the end: {})",
        started.elapsed().as_secs_f64(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
