//! Load benchmark: does a master keep advertising on time while its CPU is taken, and does
//! the backup stay quiet? In the namespace lab, r1 (priority 150, master) and r2 (priority
//! 100, backup) run VRRPv3 at each advert interval, and one load hits r1 at a time:
//!
//! * `hog`: a CPU hog (`stress-ng --cpu 1`) at normal priority pinned to the CPU the master
//!   daemon is pinned to (the backup is pinned to the other one);
//! * `cpumax`: the same pinned hog and the master daemon in one cgroup with a CPU bandwidth
//!   quota of `BENCH_CPU_MAX` of a CPU per 100 ms (cgroup v2 `cpu.max`, or `cpu.cfs_quota_us`
//!   where the cpu controller is mounted as cgroup v1; with v1's real-time group scheduling
//!   the group also gets the same share of real-time runtime, which real-time tasks need to
//!   be admitted at all);
//! * `exec`: `stress-ng --cpu 4 --exec 2` at nice -20 in r1's namespace, not pinned: work
//!   that outranks every normal process, as softirqs and kernel threads do on a router;
//! * `flood`: a LAN host sends `BENCH_FLOOD_PPS` foreign frames a second (broadcast UDP,
//!   ARP, IPv6 multicast, VRRP of other groups and broken VRRP: tests/common/attack.rs junk).
//!
//! For each: false takeovers (episodes of the backup advertising while the master lives, and
//! its adverts in all) and the master's worst gap between adverts on the wire, over
//! `BENCH_LOAD_SECS` per case, for minivrrp with its defaults (real-time), minivrrp with the
//! protection off (`sched_policy other`, `lock_memory 0`, `oom_score_adj 0`) and keepalived
//! with `vrrp_rt_priority` and `vrrp_no_swap`, all in the same run. Both routers run the same
//! implementation. For minivrrp the master's own worst late timer (`status --json`) is shown.
//!
//! `cargo bench --bench load` as root (needs stress-ng, tcpdump, taskset). Prints figures,
//! asserts nothing about timing.
//!
//! Knobs: `BENCH_LOAD_SECS` (20; 300 for the 5 minutes per case), `BENCH_INTERVALS`
//! (`0.01,0.1`), `BENCH_LOADS` (`hog,cpumax,exec,flood`), `BENCH_IMPLS`
//! (`minivrrp,minivrrp-nort,keepalived`), `BENCH_FLOOD_PPS` (50000), `BENCH_CPU_MAX` (0.5),
//! `BENCH_KEEPALIVED_RT` (10: keepalived's `vrrp_rt_priority`, minivrrp's default priority),
//! `MINIVRRP_BIN`.

#[path = "../common/mod.rs"]
mod common;

use common::attack::{self, Attacker};
use common::knobs::{env_list, env_num, minivrrp_bin};
use common::lab::{self, Lab, Proc, VrrpSpec, LAN_IF};
use common::pcap::{self, Kind};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VRID: u8 = 50;
const VIP: &str = "10.0.0.254";
const VIP_CIDR: &str = "10.0.0.254/24";
const R1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const R2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x64];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    /// minivrrp with its defaults (real-time, memory locked).
    Minivrrp,
    /// minivrrp with the load protection off.
    MinivrrpNoRt,
    /// keepalived with vrrp_rt_priority and vrrp_no_swap.
    Keepalived,
}

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Flavor::Minivrrp => "minivrrp",
            Flavor::MinivrrpNoRt => "minivrrp-nort",
            Flavor::Keepalived => "keepalived-rt",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    Hog,
    CpuMax,
    Exec,
    Flood,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::Hog => "hog",
            Load::CpuMax => "cpumax",
            Load::Exec => "exec",
            Load::Flood => "flood",
        }
    }
}

struct Knobs {
    secs: f64,
    intervals: Vec<f64>,
    loads: Vec<Load>,
    flavors: Vec<Flavor>,
    pps: f64,
    cpu_max: f64,
    keepalived_rt: u32,
}

fn knobs() -> Knobs {
    let loads = env_list("BENCH_LOADS", "hog,cpumax,exec,flood");
    let impls = env_list("BENCH_IMPLS", "minivrrp,minivrrp-nort,keepalived");
    Knobs {
        secs: env_num("BENCH_LOAD_SECS", 20.0),
        intervals: env_list("BENCH_INTERVALS", "0.01,0.1")
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect(),
        loads: [Load::Hog, Load::CpuMax, Load::Exec, Load::Flood]
            .into_iter()
            .filter(|l| loads.iter().any(|n| n == l.name()))
            .collect(),
        flavors: [Flavor::Minivrrp, Flavor::MinivrrpNoRt, Flavor::Keepalived]
            .into_iter()
            .filter(|f| {
                impls
                    .iter()
                    .any(|n| n == f.name() || (n == "keepalived" && *f == Flavor::Keepalived))
            })
            .collect(),
        pps: env_num("BENCH_FLOOD_PPS", 50_000.0),
        cpu_max: env_num("BENCH_CPU_MAX", 0.5),
        keepalived_rt: env_num("BENCH_KEEPALIVED_RT", 10.0) as u32,
    }
}

fn spawn(lab: &Lab, k: &Knobs, f: Flavor, node: &str, spec: &VrrpSpec) -> Proc {
    match f {
        Flavor::Keepalived => {
            let conf = lab::keepalived_conf(node, std::slice::from_ref(spec)).replacen(
                "global_defs {\n",
                &format!(
                    "global_defs {{\n    vrrp_rt_priority {}\n    vrrp_no_swap\n",
                    k.keepalived_rt
                ),
                1,
            );
            lab.spawn_keepalived_text(node, &conf)
        }
        Flavor::Minivrrp | Flavor::MinivrrpNoRt => {
            let mut uci = lab::minivrrp_uci(node, std::slice::from_ref(spec));
            if f == Flavor::MinivrrpNoRt {
                uci = uci.replacen(
                    "config globals 'globals'\n",
                    "config globals 'globals'\n\toption sched_policy 'other'\n\
                     \toption lock_memory '0'\n\toption oom_score_adj '0'\n",
                    1,
                );
            }
            lab.spawn_minivrrp_text(node, &minivrrp_bin(), &uci, f.name())
        }
    }
}

/// Pin every process of `p` (and all their threads) to `cpu`.
fn pin(p: &Proc, cpu: u32) {
    for pid in p.pids() {
        let _ = std::process::Command::new("taskset")
            .args(["-a", "-pc", &cpu.to_string(), &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// A cgroup with a CPU bandwidth quota, removed on drop.
struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    fn new(name: &str, share: f64) -> Result<Cgroup, String> {
        let w = |dir: &PathBuf, file: &str, v: &str| {
            std::fs::write(dir.join(file), v)
                .map_err(|e| format!("{}/{file} <- {v}: {e}", dir.display()))
        };
        let period = 100_000u64;
        let quota = ((share * period as f64) as u64).max(1000);
        let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|x| x == "cpu"));
        if v2 {
            let dir = PathBuf::from(format!("/sys/fs/cgroup/{name}"));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let cg = Cgroup { dir };
            w(&cg.dir, "cpu.max", &format!("{quota} {period}"))?;
            return Ok(cg);
        }
        let dir = PathBuf::from(format!("/sys/fs/cgroup/cpu/{name}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cg = Cgroup { dir };
        w(&cg.dir, "cpu.cfs_period_us", &period.to_string())?;
        w(&cg.dir, "cpu.cfs_quota_us", &quota.to_string())?;
        if cg.dir.join("cpu.rt_runtime_us").exists() {
            w(&cg.dir, "cpu.rt_period_us", &period.to_string())?;
            w(&cg.dir, "cpu.rt_runtime_us", &quota.to_string())?;
        }
        Ok(cg)
    }

    fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    fn add(&self, p: &Proc) -> Result<(), String> {
        for pid in p.pids() {
            std::fs::write(self.procs(), pid.to_string())
                .map_err(|e| format!("move {pid} into {}: {e}", self.dir.display()))?;
        }
        Ok(())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The processes are gone by now; retry briefly while the kernel reaps them.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

/// What one case measured.
#[derive(Default)]
struct Figures {
    backup_adverts: usize,
    takeovers: usize,
    worst_gap_ms: f64,
    master_adverts: usize,
    late_worst_ms: Option<f64>,
    note: String,
    /// r1's late-timer warnings (minivrrp): what the daemon says made its worst timers late.
    warnings: Vec<String>,
}

/// r1's and r2's adverts; r2's namespace keeps the capture off r1's CPU (the switch would see
/// the same).
fn capture(lab: &Lab, name: &str) -> (Proc, PathBuf) {
    let filter = "ip proto 112 and (ether src 02:00:00:00:00:01 or ether src 02:00:00:00:00:02)";
    lab.capture_filtered("r2", name, filter)
}

/// Sends `pps` junk frames a second from the client until `stop`.
fn flood(lab: &Lab, pps: f64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let ns = lab.node("client").ns.clone();
    let frames: Vec<Vec<u8>> = (0..64)
        .map(|i| {
            attack::junk(
                i,
                CLIENT_MAC,
                Ipv4Addr::new(10, 0, 0, 100),
                VRID,
                Ipv4Addr::new(10, 0, 0, 254),
            )
        })
        .collect();
    std::thread::spawn(move || {
        let att = Attacker::open(&ns, LAN_IF, CLIENT_MAC);
        let t0 = Instant::now();
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) {
            // Paced in 1 ms steps: send what is due, then sleep.
            let due = (t0.elapsed().as_secs_f64() * pps) as u64;
            while sent < due {
                att.send(&frames[(sent % frames.len() as u64) as usize]);
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        sent
    })
}

/// The kernel's preemption model, which bounds how long a real-time task may wait for a CPU
/// held by another process inside a system call: `/sys/kernel/debug/sched/preempt` where
/// readable (dynamic preemption), else what `uname -v` says the kernel was built with.
fn preemption_model() -> String {
    if let Ok(m) = std::fs::read_to_string("/sys/kernel/debug/sched/preempt") {
        return format!("{} (/sys/kernel/debug/sched/preempt)", m.trim());
    }
    let v = std::process::Command::new("uname")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let built = if v.contains("PREEMPT_DYNAMIC") {
        "dynamic, mode unreadable"
    } else if v.contains("PREEMPT_RT") {
        "full, real-time kernel"
    } else if v.contains("PREEMPT") {
        "full"
    } else {
        "none or voluntary"
    };
    let cfg = std::process::Command::new("sh")
        .args([
            "-c",
            "zcat /proc/config.gz 2>/dev/null | grep -E '^CONFIG_PREEMPT(_NONE|_VOLUNTARY)?=y'",
        ])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    format!("{built} (uname -v: {v}; {cfg})")
}

fn late_worst_ms(lab: &Lab) -> Option<f64> {
    let o = std::process::Command::new(minivrrp_bin())
        .args(["status", "--json", "--socket"])
        .arg(lab.control_socket("r1"))
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    v["instances"][0]["timer_late_worst_us"]
        .as_u64()
        .map(|us| us as f64 / 1000.0)
}

fn run_case(lab: &Lab, k: &Knobs, f: Flavor, interval: f64, load: Load) -> Result<Figures, String> {
    for n in ["r1", "r2"] {
        lab.del_addr(n, VIP_CIDR);
    }
    let master = VrrpSpec::new(VRID, 150, 3, interval, VIP_CIDR);
    let backup = VrrpSpec::new(VRID, 100, 3, interval, VIP_CIDR);
    let r1 = spawn(lab, k, f, "r1", &master);
    let r2 = spawn(lab, k, f, "r2", &backup);
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    if h != ["r1"] {
        return Err(format!(
            "no election: holders {h:?}: {}",
            lab::logs(&[&r1, &r2])
        ));
    }
    // Settle (keepalived forks its VRRP process; pin every process once they all exist).
    std::thread::sleep(Duration::from_secs(1));
    pin(&r1, 0);
    pin(&r2, 1);
    let name = format!("{}-{}-{}", f.name(), interval, load.name());
    let (mut cap, file) = capture(lab, &name);
    std::thread::sleep(Duration::from_secs_f64((interval * 5.0).max(0.3)));
    let secs = format!("{}s", k.secs.ceil() as u64 + 1);
    let mut cg = None;
    let mut flooder = None;
    let stop = Arc::new(AtomicBool::new(false));
    let rt0 = lab::now_realtime();
    let hog = match load {
        Load::Hog => Some(lab.spawn(
            "r1",
            &format!("hog-{name}"),
            &[
                "taskset",
                "-c",
                "0",
                "stress-ng",
                "--cpu",
                "1",
                "--timeout",
                &secs,
            ],
        )),
        Load::CpuMax => {
            let g = Cgroup::new(&format!("mvload-{}", std::process::id()), k.cpu_max)?;
            g.add(&r1)?;
            let script = format!(
                "echo $$ > {} && exec taskset -c 0 stress-ng --cpu 1 --timeout {secs}",
                g.procs().display()
            );
            let p = lab.spawn("r1", &format!("hog-{name}"), &["sh", "-c", &script]);
            cg = Some(g);
            Some(p)
        }
        Load::Exec => Some(lab.spawn(
            "r1",
            &format!("exec-{name}"),
            &[
                "nice",
                "-n",
                "-20",
                "stress-ng",
                "--cpu",
                "4",
                "--exec",
                "2",
                "--timeout",
                &secs,
            ],
        )),
        Load::Flood => {
            flooder = Some(flood(lab, k.pps, stop.clone()));
            None
        }
    };
    std::thread::sleep(Duration::from_secs_f64(k.secs));
    let rt1 = lab::now_realtime();
    stop.store(true, Ordering::Relaxed);
    let mut note = String::new();
    if let Some(t) = flooder {
        let sent = t.join().unwrap_or(0);
        note = format!("{:.1} kpps sent", sent as f64 / k.secs / 1000.0);
    }
    drop(hog);
    let late = if f == Flavor::Keepalived {
        None
    } else {
        late_worst_ms(lab)
    };
    std::thread::sleep(Duration::from_secs_f64((interval * 5.0).max(0.3)));
    cap.signal(libc::SIGINT);
    cap.wait_exit(Duration::from_secs(5));
    let warnings = if f == Flavor::Keepalived {
        vec![]
    } else {
        r1.log_text()
            .lines()
            .filter(|l| l.contains("timer fired"))
            .map(str::to_string)
            .collect()
    };
    drop(r1);
    drop(r2);
    drop(cg);
    let pc = pcap::read_file(&file)?;
    let seen = pcap::classify_all(&pc);
    let mut fig = Figures {
        late_worst_ms: late,
        note,
        warnings,
        ..Figures::default()
    };
    let mut last_r1: Option<Duration> = None;
    let mut prev_was_r1 = true;
    for s in &seen {
        let Kind::Vrrp(a) = &s.kind else { continue };
        if a.vrid != VRID || a.priority == 0 {
            continue;
        }
        let inside = s.ts >= rt0 && s.ts <= rt1;
        if a.src_mac == R1_MAC {
            if let Some(p) = last_r1 {
                if s.ts >= rt0 && p <= rt1 {
                    fig.worst_gap_ms = fig.worst_gap_ms.max((s.ts - p).as_secs_f64() * 1e3);
                }
            }
            last_r1 = Some(s.ts);
            fig.master_adverts += usize::from(inside);
            prev_was_r1 = true;
        } else if a.src_mac == R2_MAC && inside {
            fig.backup_adverts += 1;
            if prev_was_r1 {
                fig.takeovers += 1;
            }
            prev_was_r1 = false;
        }
    }
    if fig.master_adverts == 0 {
        fig.worst_gap_ms = (rt1 - rt0).as_secs_f64() * 1e3;
    }
    Ok(fig)
}

fn main() {
    if !common::require_root("bench load") {
        return;
    }
    for t in ["tcpdump", "stress-ng", "taskset"] {
        if !common::require_tool("bench load", t) {
            return;
        }
    }
    let mut k = knobs();
    if !common::require_tool("bench load", "keepalived") {
        k.flavors.retain(|f| *f != Flavor::Keepalived);
    }
    let stale = Lab::cleanup_dead_runs();
    if !stale.is_empty() {
        eprintln!("removed namespaces of dead runs: {stale:?}");
    }
    let started = Instant::now();
    let lab = Lab::with_routers("load", 2);
    println!(
        "load ({} s per case; VRRPv3; master r1 prio 150 on CPU 0, backup r2 prio 100 on CPU 1)",
        k.secs
    );
    println!("kernel preemption: {}", preemption_model());
    println!(
        "{:<8} {:<7} {:<14} {:>10} {:>10} {:>12} {:>10} {:>12}  note",
        "interval",
        "load",
        "impl",
        "takeovers",
        "bkp adv",
        "worst gap ms",
        "gap/int",
        "late max ms"
    );
    for &interval in &k.intervals {
        for &load in &k.loads {
            for &f in &k.flavors {
                match run_case(&lab, &k, f, interval, load) {
                    Ok(x) => {
                        println!(
                            "{:<8} {:<7} {:<14} {:>10} {:>10} {:>12.1} {:>10.1} {:>12}  {}",
                            interval,
                            load.name(),
                            f.name(),
                            x.takeovers,
                            x.backup_adverts,
                            x.worst_gap_ms,
                            x.worst_gap_ms / (interval * 1e3),
                            x.late_worst_ms
                                .map(|v| format!("{v:.1}"))
                                .unwrap_or_else(|| "-".into()),
                            x.note
                        );
                        // What r1's daemon said about its late timers (one line per
                        // log_suppress interval, and one for each doubling of the worst).
                        for w in x.warnings.iter().take(12) {
                            println!("    r1: {w}");
                        }
                    }
                    Err(e) => println!(
                        "{:<8} {:<7} {:<14} FAILED: {}",
                        interval,
                        load.name(),
                        f.name(),
                        e.chars().take(300).collect::<String>()
                    ),
                }
            }
        }
    }
    println!("(total run {:.0} s)", started.elapsed().as_secs_f64());
}
