//! Slow-exec benchmark: a master whose track script takes long to *start* (a script on a USB
//! disk that spun down, flash under I/O load, page cache evicted on a small router), simulated
//! by running the daemon under `strace -f --seccomp-bpf -e inject=execve:delay_enter=D`: every
//! `execve` (so each script run's, in the forked child) waits D before it starts. Spawning must
//! not wait for it: the master's adverts must stay on time.
//!
//! For keepalived and minivrrp side by side, a master (priority 200, VRRPv3, 0.1 s adverts)
//! and a backup (priority 100, no delay) of the same implementation; the master tracks a
//! script (`/bin/true`, every 3 s). Printed: the worst gap between the master's adverts on the
//! wire during the window, in ms and in advert intervals, and the backup's transitions (a gap
//! longer than Master_Down_Interval makes it take over).
//!
//! `cargo bench --bench slow_exec` as root. Prints figures, asserts nothing about timing.
//! Knobs: `MINIVRRP_BIN`, `BENCH_EXEC_DELAY` (1.5 s), `BENCH_WINDOW` (10 s),
//! `BENCH_ADVERT_INT` (0.1 s), `BENCH_IMPLS` (`keepalived,minivrrp`).

#[path = "../common/mod.rs"]
mod common;

use common::knobs::{env_list, env_num, minivrrp_bin};
use common::lab::{self, Lab, Proc, VrrpSpec};
use std::time::Duration;

const VRID: u8 = 51;
const VIP: &str = "10.0.0.251";
const VIP_CIDR: &str = "10.0.0.251/24";
const SCRIPT_INTERVAL: u32 = 3;

/// `strace` delaying every execve of `cmd` and its children by `delay`.
fn slowed(delay: f64, cmd: &[&str]) -> Vec<String> {
    let us = (delay * 1e6) as u64;
    let mut v: Vec<String> = [
        "strace",
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-o",
        "/dev/null",
        "-e",
        "trace=execve",
        "-e",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("inject=execve:delay_enter={us}"));
    v.extend(cmd.iter().map(|s| s.to_string()));
    v
}

fn keepalived_text(node: &str, spec: &VrrpSpec, track: bool) -> String {
    let mut c = lab::keepalived_conf(node, std::slice::from_ref(spec));
    if track {
        c = format!(
            "vrrp_script chk {{\n    script \"/bin/true\"\n    interval {SCRIPT_INTERVAL}\n}}\n{}",
            c.replacen(
                "    virtual_ipaddress {",
                "    track_script {\n        chk\n    }\n    virtual_ipaddress {",
                1
            )
        );
    }
    c
}

fn minivrrp_text(node: &str, spec: &VrrpSpec, track: bool) -> String {
    let mut s = spec.clone();
    if track {
        s.extra_uci.push("list track_script 'chk'".into());
    }
    let mut c = lab::minivrrp_uci(node, std::slice::from_ref(&s));
    if track {
        c.push_str(&format!(
            "config script 'chk'\n\toption command '/bin/true'\n\toption interval '{SCRIPT_INTERVAL}'\n"
        ));
    }
    c
}

fn start(lab: &Lab, imp: &str, node: &str, spec: &VrrpSpec, delay: Option<f64>) -> Proc {
    let track = delay.is_some();
    let (conf, cmd): (std::path::PathBuf, Vec<String>) = if imp == "keepalived" {
        let conf = lab.dir.join(format!("{node}-slow-keepalived.conf"));
        std::fs::write(&conf, keepalived_text(node, spec, track)).unwrap();
        let c = conf.to_string_lossy().to_string();
        let pid = lab.dir.join(format!("{node}-slow.pid"));
        let vpid = lab.dir.join(format!("{node}-slow-vrrp.pid"));
        let _ = std::fs::remove_file(&pid);
        let _ = std::fs::remove_file(&vpid);
        let cmd = [
            "keepalived",
            "--dont-fork",
            "--log-console",
            "--no-syslog",
            "--vrrp",
            "--dont-respawn",
            "--use-file",
            &c,
            "--pid",
            &pid.to_string_lossy(),
            "--vrrp_pid",
            &vpid.to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        (conf, cmd)
    } else {
        let conf = lab.dir.join(format!("{node}-slow-minivrrp.uci"));
        std::fs::write(&conf, minivrrp_text(node, spec, track)).unwrap();
        let sock = lab.control_socket(node).to_string_lossy().to_string();
        let cmd = [
            minivrrp_bin().to_string_lossy().to_string(),
            "-f".into(),
            conf.to_string_lossy().to_string(),
            "--socket".into(),
            sock,
        ]
        .to_vec();
        (conf, cmd)
    };
    let _ = conf;
    let cmd: Vec<String> = match delay {
        Some(d) => {
            let c: Vec<&str> = cmd.iter().map(String::as_str).collect();
            slowed(d, &c)
        }
        None => cmd,
    };
    let c: Vec<&str> = cmd.iter().map(String::as_str).collect();
    lab.spawn(node, &format!("{imp}-{node}"), &c)
}

struct Figures {
    worst_gap_ms: f64,
    adverts: usize,
    backup_transitions: usize,
    runs: usize,
}

fn measure(lab: &Lab, imp: &str, delay: f64, window: f64, interval: f64) -> Figures {
    let master = VrrpSpec::new(VRID, 200, 3, interval, VIP_CIDR);
    let backup = VrrpSpec::new(VRID, 100, 3, interval, VIP_CIDR);
    let m = start(lab, imp, "r1", &master, Some(delay));
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(20));
    assert_eq!(h, ["r1"], "{imp} master did not come up: {}", m.log_text());
    let b = start(lab, imp, "r2", &backup, None);
    // Let the backup settle and the first script runs start.
    std::thread::sleep(Duration::from_secs(3));
    let before = lab::transitions(&b.log_text());
    let cap = lab.capture(&format!("slow-{imp}"));
    let t0 = lab::now_realtime();
    std::thread::sleep(Duration::from_secs_f64(window));
    let t1 = lab::now_realtime();
    let r1_mac = lab.node("r1").mac;
    let ts: Vec<Duration> = cap
        .adverts(t0)
        .into_iter()
        .filter(|(t, a, _)| *t <= t1 && a.src_mac == r1_mac && a.priority == 200)
        .map(|(t, _, _)| t)
        .collect();
    let mut worst = ts.first().map_or(window, |f| (*f - t0).as_secs_f64());
    for w in ts.windows(2) {
        worst = worst.max((w[1] - w[0]).as_secs_f64());
    }
    if let Some(l) = ts.last() {
        worst = worst.max((t1 - *l).as_secs_f64());
    }
    let backup_transitions = lab::transitions(&b.log_text()).saturating_sub(before);
    drop(cap);
    drop(b);
    drop(m);
    lab.del_addr("r1", VIP_CIDR);
    lab.del_addr("r2", VIP_CIDR);
    Figures {
        worst_gap_ms: worst * 1000.0,
        adverts: ts.len(),
        backup_transitions,
        runs: (window / f64::from(SCRIPT_INTERVAL)) as usize,
    }
}

fn main() {
    if !common::require_root("slow_exec")
        || !common::require_tool("slow_exec", "keepalived")
        || !common::require_tool("slow_exec", "strace")
    {
        return;
    }
    let delay = env_num("BENCH_EXEC_DELAY", 1.5);
    let window = env_num("BENCH_WINDOW", 10.0);
    let interval = env_num("BENCH_ADVERT_INT", 0.1);
    let impls = env_list("BENCH_IMPLS", "keepalived,minivrrp");
    let lab = Lab::with_routers("slowx", 2);
    let mut rows = Vec::new();
    for imp in &impls {
        let f = measure(&lab, imp, delay, window, interval);
        eprintln!(
            "{imp}: worst gap {:.0} ms, {} adverts, backup transitions {}",
            f.worst_gap_ms, f.adverts, f.backup_transitions
        );
        rows.push((imp.clone(), f));
    }
    println!(
        "\nslow exec: every execve delayed {:.0} ms (strace inject), track script every {SCRIPT_INTERVAL} s \
         (~{} runs in {window} s), VRRPv3 advert_int {interval} s, master priority 200 vs backup 100",
        delay * 1000.0,
        rows.first().map_or(0, |r| r.1.runs)
    );
    println!(
        "{:<11} | {:>14} | {:>9} | {:>8} | {:>19}",
        "daemon", "worst gap (ms)", "intervals", "adverts", "backup transitions"
    );
    for (imp, f) in &rows {
        println!(
            "{:<11} | {:>14.0} | {:>9.2} | {:>8} | {:>19}",
            imp,
            f.worst_gap_ms,
            f.worst_gap_ms / 1000.0 / interval,
            f.adverts,
            f.backup_transitions
        );
    }
    let k = rows.iter().find(|r| r.0 == "keepalived");
    let m = rows.iter().find(|r| r.0 == "minivrrp");
    if let (Some(k), Some(m)) = (k, m) {
        println!(
            "minivrrp / keepalived worst gap: {:.2}",
            m.1.worst_gap_ms / k.1.worst_gap_ms.max(1.0)
        );
    }
}
