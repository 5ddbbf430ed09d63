//! Load protection in the namespace lab: with no option set the daemon runs real-time
//! (SCHED_RR), its memory locked and its OOM score lowered, while what it spawns (a notify
//! command, a track script) runs in the normal class; `sched_policy 'other'`, `lock_memory '0'`
//! and `oom_score_adj '0'` turn each off.
//!
//! Run as root: `cargo test --test lab rt_lab::`. Without root: SKIP.

use crate::common;

use common::lab::{self, logs, Lab, VrrpSpec};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_minivrrp"))
}

/// `policy` and `prio` lines of /proc/PID/sched (policy 0 = SCHED_OTHER, 2 = SCHED_RR; prio
/// under 100 is real-time: 99 - the real-time priority).
fn sched_of(pid: &str) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/sched")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    (field("policy"), field("prio"))
}

/// A script that records its own scheduling policy and priority (from /proc/PID/sched, as the
/// kernel sees them: "0 120" is SCHED_OTHER at nice 0) into `out`, once per run (appending).
fn recorder(dir: &Path, name: &str, out: &Path) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nawk '$1==\"policy\"{{p=$3}} $1==\"prio\"{{q=$3}} END{{print p, q}}' \
             /proc/$$/sched >> {}\nexit 0\n",
            out.display()
        ),
    )
    .expect("write script");
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    p
}

fn status_value(pid: i32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// Whether a process here may lower its OOM score (containers often refuse it).
fn can_lower_oom_score() -> bool {
    std::process::Command::new("sh")
        .args(["-c", "echo -1 > /proc/$$/oom_score_adj"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// CAP_SYS_RESOURCE (bit 24) in this process's effective set.
fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|m| m & (1 << 24) != 0)
}

fn first_line(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|t| t.lines().next().map(str::to_string))
}

fn config(globals: &str, notify: &Path, check: &Path) -> String {
    let mut s = VrrpSpec::new(61, 150, 3, 0.1, "10.0.0.254/24");
    s.extra_uci = vec![
        format!("option notify_master '{}'", notify.display()),
        "list track_script 'rec'".into(),
    ];
    let uci = lab::minivrrp_uci("r1", &[s]).replacen(
        "config globals 'globals'\n",
        &format!("config globals 'globals'\n{globals}"),
        1,
    );
    uci + &format!(
        "config script 'rec'\n\toption command '{}'\n\toption interval '0.2'\n",
        check.display()
    )
}

/// With no option set: the daemon is SCHED_RR priority 10 (prio 89 in /proc), memory locked,
/// oom_score_adj -900; a notify command and a track script it runs are SCHED_OTHER at nice 0.
#[test]
fn defaults_make_the_daemon_real_time_and_its_children_normal() {
    require!(root);
    let lab = Lab::with_routers("rt", 1);
    let (n_out, c_out) = (lab.dir.join("notify.out"), lab.dir.join("check.out"));
    let notify = recorder(&lab.dir, "notify.sh", &n_out);
    let check = recorder(&lab.dir, "check.sh", &c_out);
    let r1 = lab.spawn_minivrrp_text("r1", &bin(), &config("", &notify, &check), "rt");
    let got = lab::wait_until(Duration::from_secs(10), || {
        first_line(&n_out).is_some() && first_line(&c_out).is_some()
    });
    assert!(got.is_some(), "no child ran\n{}", logs(&[&r1]));
    let pid = r1.pid().to_string();
    let (policy, prio) = sched_of(&pid);
    assert_eq!(policy, "2", "daemon is SCHED_RR\n{}", logs(&[&r1]));
    assert_eq!(prio, "89", "daemon at real-time priority 10 (99 - 10)");
    // Its children, while it is real-time.
    assert_eq!(
        first_line(&n_out).as_deref(),
        Some("0 120"),
        "notify command"
    );
    assert_eq!(first_line(&c_out).as_deref(), Some("0 120"), "track script");
    assert_ne!(status_value(r1.pid(), "VmLck:"), "0 kB", "memory locked");
    let log = r1.log_text();
    let oom = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap_or_default();
    if can_lower_oom_score() {
        assert_eq!(oom.trim(), "-900", "{log}");
    } else {
        // A container without CAP_SYS_RESOURCE: the daemon says so and runs on.
        assert!(log.contains("oom_score_adj -900: "), "{log}");
        eprintln!("note: this machine refuses a negative oom_score_adj; checked the warning");
    }
    assert!(log.contains("scheduling: SCHED_RR priority 10"), "{log}");
    // A reload that turns real-time off applies it.
    let g = "\toption sched_policy 'other'\n";
    std::fs::write(lab.dir.join("r1-rt.uci"), config(g, &notify, &check)).expect("rewrite");
    r1.signal(libc::SIGHUP);
    let other = lab::wait_until(Duration::from_secs(5), || sched_of(&pid).0 == "0");
    assert!(
        other.is_some(),
        "still real-time after reload\n{}",
        logs(&[&r1])
    );
}

/// Each protection turns off: the daemon stays SCHED_OTHER, nothing locked, OOM score 0.
#[test]
fn protection_can_be_turned_off() {
    require!(root);
    let lab = Lab::with_routers("rtoff", 1);
    let (n_out, c_out) = (lab.dir.join("notify.out"), lab.dir.join("check.out"));
    let notify = recorder(&lab.dir, "notify.sh", &n_out);
    let check = recorder(&lab.dir, "check.sh", &c_out);
    let g = "\toption sched_policy 'other'\n\toption lock_memory '0'\n\toption oom_score_adj '0'\n";
    let r1 = lab.spawn_minivrrp_text("r1", &bin(), &config(g, &notify, &check), "rt");
    let got = lab::wait_until(Duration::from_secs(10), || first_line(&n_out).is_some());
    assert!(got.is_some(), "notify did not run\n{}", logs(&[&r1]));
    let pid = r1.pid().to_string();
    assert_eq!(
        sched_of(&pid).0,
        "0",
        "daemon is SCHED_OTHER\n{}",
        logs(&[&r1])
    );
    assert_eq!(status_value(r1.pid(), "VmLck:"), "0 kB", "nothing locked");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .unwrap_or_default()
            .trim(),
        "0"
    );
}

/// A daemon frozen for 300 ms (SIGSTOP, as a starved CPU would) finds its timer late: `status
/// --json` shows it in the histogram and as the instance's worst, `metrics` carries it, and
/// the log has one warning for it, saying nothing in the daemon ran long and that it was woken
/// late (not kept waiting for a CPU).
#[test]
fn a_frozen_daemon_reports_its_late_timer() {
    require!(root);
    let lab = Lab::with_routers("rtlate", 1);
    let mut s = VrrpSpec::new(62, 150, 3, 0.1, "10.0.0.254/24");
    s.extra_uci = vec!["option state 'MASTER'".into()];
    let r1 = lab.spawn_minivrrp_text("r1", &bin(), &lab::minivrrp_uci("r1", &[s]), "late");
    let sock = lab.control_socket("r1");
    let cli = |args: &[&str]| {
        std::process::Command::new(bin())
            .args(args)
            .arg("--socket")
            .arg(&sock)
            .output()
            .expect("run minivrrp")
    };
    let up = lab::wait_until(Duration::from_secs(10), || {
        lab.node_has_addr("r1", "10.0.0.254")
    });
    assert!(up.is_some(), "{}", logs(&[&r1]));
    r1.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(300));
    r1.signal(libc::SIGCONT);
    let warned = lab::wait_until(Duration::from_secs(3), || {
        r1.log_text().contains("timer fired")
    });
    let log = r1.log_text();
    assert!(warned.is_some(), "no late-timer warning\n{log}");
    assert!(
        log.contains("nothing in the daemon ran long"),
        "the cause is outside the daemon\n{log}"
    );
    let o = cli(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status json");
    let worst = v["instances"][0]["timer_late_worst_us"]
        .as_u64()
        .unwrap_or(0);
    assert!(worst >= 200_000, "instance worst {worst} µs\n{v}");
    assert!(v["timers"]["late_worst_us"].as_u64().unwrap_or(0) >= worst);
    let over = &v["timers"]["late_us"][6];
    assert_eq!(over["le"], 500_000, "{v}");
    assert!(over["count"].as_u64().unwrap_or(0) >= 1, "{v}");
    let m = String::from_utf8_lossy(&cli(&["metrics"]).stdout).to_string();
    assert!(
        m.contains("minivrrp_timer_lateness_seconds_bucket{le=\"+Inf\"}"),
        "{m}"
    );
    // One line for the freeze, however many timers it made late; it knows the daemon was
    // not waiting for a CPU (a stopped process is not runnable), so it says it was woken
    // late. (A smaller late timer before the freeze may have its own line: one twice as
    // late as the worst warned about is never held back.)
    let freeze: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("timer fired"))
        .filter(|l| {
            l.split("timer fired ")
                .nth(1)
                .and_then(|r| r.split('.').next())
                .and_then(|ms| ms.parse::<u64>().ok())
                .is_some_and(|ms| ms >= 200)
        })
        .collect();
    assert_eq!(
        freeze.len(),
        1,
        "one warning for the freeze within the log_suppress interval\n{log}"
    );
    assert!(freeze[0].contains("woken late"), "{log}");
}

/// Under OpenWrt's real procd (the kit, `tests/common/owrt.rs`), `/etc/init.d/minivrrp start`
/// gives the daemon the procd limits the init script asks for (memlock unlimited, rtprio its
/// `sched_priority`) and the daemon runs SCHED_RR at that priority.
#[test]
fn procd_starts_the_daemon_real_time_with_matching_limits() {
    let test = "procd_starts_the_daemon_real_time_with_matching_limits";
    let Some(o) = common::owrt::Owrt::start(test, "rtprocd", 128, false) else {
        return;
    };
    // Both files are named minivrrp and the stage keeps the name: one at a time.
    let staged = o.stage(&bin());
    o.sh(&format!("cp {staged} /usr/sbin/minivrrp"));
    let init = o.stage(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs/etc/init.d/minivrrp"));
    let conf = "config globals 'globals'\n\toption sched_priority '20'\n\n\
                config instance 'lan'\n\toption interface 'br-lan'\n\toption vrid '61'\n\
                \toption version '3'\n\toption advert_int '0.1'\n\tlist vip '10.88.128.254/24'\n";
    o.sh(&format!(
        "cp {init} /etc/init.d/minivrrp && \
         chmod 755 /usr/sbin/minivrrp /etc/init.d/minivrrp && \
         printf '%s' \"{conf}\" > /etc/config/minivrrp && /etc/init.d/minivrrp start"
    ));
    let mut seen = String::new();
    let ok = lab::wait_until(Duration::from_secs(10), || {
        seen = String::from_utf8_lossy(
            &o.run(
                "p=$(pidof minivrrp) && grep -E 'locked memory|realtime priority' /proc/$p/limits \
                 && awk '$1==\"policy\"||$1==\"prio\"{print $1, $3}' /proc/$p/sched",
            )
            .stdout,
        )
        .into_owned();
        seen.contains("policy 2")
    });
    assert!(ok.is_some(), "{seen}\n{}", o.logread());
    let listed = String::from_utf8_lossy(&o.run("ubus call service list").stdout).into_owned();
    let seen = format!("{seen}\n{listed}");
    let words = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let line = |key: &str| {
        seen.lines()
            .find(|l| l.starts_with(key))
            .map(words)
            .unwrap_or_default()
    };
    assert_eq!(line("prio"), ["prio", "79"], "SCHED_RR priority 20\n{seen}");
    // procd's own view of the instance.
    let v: serde_json::Value = serde_json::from_str(&listed).unwrap_or_default();
    let limits = v["minivrrp"]["instances"]
        .as_object()
        .and_then(|m| m.values().next())
        .map(|i| i["limits"].clone())
        .unwrap_or_default();
    assert_eq!(limits["memlock"], "unlimited", "{seen}");
    assert_eq!(limits["rtprio"], "20 20", "{seen}");
    // Raising a hard limit needs CAP_SYS_RESOURCE, which containers often lack (procd's
    // setrlimit then fails and the defaults stay).
    if has_cap_sys_resource() {
        // "Max locked memory  unlimited  unlimited  bytes", "Max realtime priority  20  20".
        assert_eq!(
            line("Max locked memory")[3..5],
            ["unlimited", "unlimited"],
            "{seen}"
        );
        assert_eq!(line("Max realtime priority")[3..5], ["20", "20"], "{seen}");
    } else {
        eprintln!(
            "note: no CAP_SYS_RESOURCE here: procd cannot raise the limits; checked its parameters"
        );
    }
}
