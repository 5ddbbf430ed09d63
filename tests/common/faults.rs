//! The fault matrix as scenarios any VRRP daemon can be put through in the namespace lab: each
//! function builds its routers with `imp` (keepalived or minivrrp), applies one fault and
//! returns what it measured. `tests/lab/fault_matrix.rs` asserts minivrrp's figures against the
//! protocol's bounds; `tests/bench/faults.rs` prints both daemons side by side.
//!
//! r1 is the master (priority 150), r2 the backup (100), r3 a third router (50) where used;
//! they share VIP 10.0.0.254/24. Times come from the bridge capture (CLOCK_REALTIME, the same
//! clock `Proc::signal` and `Lab::set_link` return) or from polling `ip addr`.

use super::lab::{self, Capture, Impl, Lab, Proc, VrrpSpec, BRIDGE};
use std::time::{Duration, Instant};

pub const VIP: &str = "10.0.0.254";
pub const VIP_CIDR: &str = "10.0.0.254/24";
pub const VRID: u8 = 50;

pub fn spec(priority: u8, advert_int: f64) -> VrrpSpec {
    VrrpSpec::new(VRID, priority, 3, advert_int, VIP_CIDR)
}

/// State transitions a daemon logged (minivrrp `vi1: BACKUP -> MASTER (...)`, keepalived
/// `(vi50) Entering MASTER STATE`).
pub fn transitions(imp: &Impl, log: &str) -> usize {
    log.lines()
        .filter(|l| match imp {
            Impl::Keepalived => l.contains("Entering ") && l.contains(" STATE"),
            Impl::Minivrrp(_) => {
                (l.contains("MASTER") || l.contains("BACKUP") || l.contains("FAULT"))
                    && l.contains(" -> ")
            }
        })
        .count()
}

/// SIGHUP the daemon's main process only: keepalived's parent re-reads the file and tells its
/// VRRP child; minivrrp is one process.
pub fn reload(p: &Proc) -> Duration {
    let t = lab::now_realtime();
    unsafe { libc::kill(p.pid(), libc::SIGHUP) };
    t
}

/// Waits until exactly `want` hold the VIP, up to `limit`; the time it took.
pub fn wait_holders(lab: &Lab, want: &[&str], limit: Duration) -> Option<Duration> {
    let (h, took) = lab.wait_holders(VIP, want, limit);
    let mut w: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    w.sort();
    (h == w).then_some(took)
}

fn start_pair(lab: &Lab, imp: &Impl, advert_int: f64) -> Result<(Proc, Proc), String> {
    for n in ["r1", "r2", "r3"] {
        if lab.nodes.iter().any(|x| x.name == n) {
            lab.del_addr(n, VIP_CIDR);
        }
    }
    let r1 = lab.spawn_vrrp(imp, "r1", &[spec(150, advert_int)]);
    let r2 = lab.spawn_vrrp(imp, "r2", &[spec(100, advert_int)]);
    let bound = spec(100, advert_int).master_down_interval() * 2 + Duration::from_secs(5);
    if wait_holders(lab, &["r1"], bound).is_none() {
        return Err(format!(
            "no election: holders {:?}\n--- r1 ---\n{}\n--- r2 ---\n{}",
            lab.holders(VIP),
            r1.log_text(),
            r2.log_text()
        ));
    }
    // r2 must be a settled backup that has heard adverts.
    std::thread::sleep(Duration::from_secs_f64(3.0 * advert_int + 0.3));
    Ok((r1, r2))
}

/// Adverts of `mac` with priority > 0 captured in [from, to).
fn adverts_between(cap: &Capture, mac: [u8; 6], from: Duration, to: Duration) -> Vec<Duration> {
    cap.adverts(from)
        .into_iter()
        .filter(|(t, a, _)| *t < to && a.src_mac == mac && a.priority > 0)
        .map(|(t, _, _)| t)
        .collect()
}

/// Kill -9 of the master's daemon, its link left up.
#[derive(Debug)]
pub struct Kill9 {
    /// When the VIP left the dead r1 (None: still there at the end of the watch).
    pub vip_gone: Option<Duration>,
    /// How long the watch lasted.
    pub watched: Duration,
    /// When r2 held the VIP.
    pub takeover: Option<Duration>,
    /// The client reached the VIP afterwards.
    pub reachable: bool,
}

pub fn kill9(lab: &Lab, imp: &Impl, advert_int: f64, watch: Duration) -> Result<Kill9, String> {
    let (mut r1, _r2) = start_pair(lab, imp, advert_int)?;
    r1.kill_hard();
    let t0 = Instant::now();
    let (mut vip_gone, mut takeover) = (None, None);
    while t0.elapsed() < watch && (vip_gone.is_none() || takeover.is_none()) {
        if vip_gone.is_none() && !lab.node_has_addr("r1", VIP) {
            vip_gone = Some(t0.elapsed());
        }
        if takeover.is_none() && lab.node_has_addr("r2", VIP) {
            takeover = Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let reachable = lab.client_pings(VIP);
    lab.del_addr("r1", VIP_CIDR);
    Ok(Kill9 {
        vip_gone,
        watched: t0.elapsed(),
        takeover,
        reachable,
    })
}

/// SIGSTOP of the master for `2 x` the backup's Master_Down_Interval, then SIGCONT.
#[derive(Debug)]
pub struct Freeze {
    pub stopped_for: Duration,
    /// r2 took over while r1 was frozen.
    pub took_over: bool,
    /// The frozen r1's VIP disappeared while frozen (after this long).
    pub frozen_vip_gone: Option<Duration>,
    /// From SIGCONT to the last advert of the master that steps down (zero if none came
    /// after SIGCONT): how long two masters advertised.
    pub two_masters_for: Duration,
    /// Holders of the VIP two advert intervals after SIGCONT.
    pub holders_after: Vec<String>,
    /// Routers advertising in the last second of the watch.
    pub masters_at_end: usize,
}

pub fn freeze(lab: &Lab, cap: &Capture, imp: &Impl, advert_int: f64) -> Result<Freeze, String> {
    let (r1, r2) = start_pair(lab, imp, advert_int)?;
    let stop_for = spec(100, advert_int).master_down_interval() * 2;
    let t_stop = r1.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    let mut frozen_vip_gone = None;
    while stopped.elapsed() < stop_for {
        if frozen_vip_gone.is_none() && !lab.node_has_addr("r1", VIP) {
            frozen_vip_gone = Some(stopped.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took_over = lab.node_has_addr("r2", VIP);
    let t_cont = r1.signal(libc::SIGCONT);
    let stopped_for = stopped.elapsed();
    std::thread::sleep(Duration::from_secs_f64(2.0 * advert_int));
    let mut holders_after = lab.holders(VIP);
    holders_after.sort();
    std::thread::sleep(Duration::from_secs_f64((3.0 * advert_int).max(1.0)));
    let t_end = lab::now_realtime();
    let r2_mac = lab.node("r2").mac;
    let r1_mac = lab.node("r1").mac;
    let window = Duration::from_secs_f64((2.0 * advert_int).max(1.0));
    let at_end = |m: [u8; 6]| !adverts_between(cap, m, t_end - window, t_end).is_empty();
    let (r1_end, r2_end) = (at_end(r1_mac), at_end(r2_mac));
    let masters_at_end = usize::from(r1_end) + usize::from(r2_end);
    // The one that stopped advertising stepped down: two masters until its last advert.
    let loser = match (r1_end, r2_end) {
        (true, false) => Some(r2_mac),
        (false, true) => Some(r1_mac),
        _ => None,
    };
    let two_masters_for = match loser {
        Some(m) => adverts_between(cap, m, t_cont, t_end)
            .last()
            .map_or(Duration::ZERO, |t| t.saturating_sub(t_cont)),
        None => t_end.saturating_sub(t_cont),
    };
    let _ = t_stop;
    drop((r1, r2));
    Ok(Freeze {
        stopped_for,
        took_over,
        frozen_vip_gone,
        two_masters_for,
        holders_after,
        masters_at_end,
    })
}

/// The master's link flaps (down/up every `period`) for `dur`, then stays up.
#[derive(Debug)]
pub struct Flap {
    pub toggles: usize,
    /// Holders once things settled (2 x Master_Down_Interval + 2 s after the last toggle).
    pub holders_after: Vec<String>,
    /// Routers advertising in the last 2 advert intervals (at least 1 s).
    pub masters_at_end: usize,
    pub transitions_r1: usize,
    pub transitions_r2: usize,
    pub alive: bool,
}

pub fn flap(
    lab: &Lab,
    cap: &Capture,
    imp: &Impl,
    advert_int: f64,
    period: Duration,
    dur: Duration,
) -> Result<Flap, String> {
    let (mut r1, mut r2) = start_pair(lab, imp, advert_int)?;
    // A fixed number of toggles on a fixed schedule (toggle k at t0 + k x period), so a busy
    // machine, where each `ip link set` takes longer, still flaps the link as often as asked
    // instead of fewer times in the same wall-clock span.
    let count = (dur.as_nanos() / period.as_nanos().max(1)) as u32;
    let t0 = Instant::now();
    let mut up = true;
    let mut toggles = 0;
    for k in 0..count {
        if let Some(wait) = (t0 + period * k).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        up = !up;
        lab.set_link("r1", up);
        toggles += 1;
    }
    std::thread::sleep(period);
    if !up {
        lab.set_link("r1", true);
    }
    lab.wait_oper_up("r1", Duration::from_secs(3));
    std::thread::sleep(spec(100, advert_int).master_down_interval() * 2 + Duration::from_secs(2));
    let mut holders_after = lab.holders(VIP);
    holders_after.sort();
    let t_end = lab::now_realtime();
    let window = Duration::from_secs_f64((2.0 * advert_int).max(1.0));
    let masters_at_end = ["r1", "r2"]
        .iter()
        .filter(|n| !adverts_between(cap, lab.node(n).mac, t_end - window, t_end).is_empty())
        .count();
    let alive = r1.running() && r2.running();
    Ok(Flap {
        toggles,
        holders_after,
        masters_at_end,
        transitions_r1: transitions(imp, &r1.log_text()),
        transitions_r2: transitions(imp, &r2.log_text()),
        alive,
    })
}

/// Moves `node`'s switch port to a second bridge (its own segment) or back; returns the
/// realtime instant right after the move.
pub fn partition(lab: &Lab, node: &str, split: bool) -> Duration {
    let port = format!("v{node}");
    if split {
        let _ = lab.exec_switch(&[
            "ip",
            "link",
            "add",
            "br1",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ]);
        let _ = lab.exec_switch(&["ip", "link", "set", "br1", "up"]);
        let _ = lab.exec_switch(&["ip", "link", "set", &port, "master", "br1"]);
    } else {
        let _ = lab.exec_switch(&["ip", "link", "set", &port, "master", BRIDGE]);
    }
    // Taken once the port has moved: from here on the sides hear each other (or not).
    lab::now_realtime()
}

/// Three routers; r1 is cut off from r2, r3 and the client, then the partition heals.
#[derive(Debug)]
pub struct Split {
    /// VIP holders while split (one per side: r1 and r2).
    pub holders_split: Vec<String>,
    /// Routers advertising on the main side (r2, r3, client) while split.
    pub masters_main_side: usize,
    /// From the heal to the last advert of the master that steps down.
    pub two_masters_for: Duration,
    pub holders_after: Vec<String>,
    pub masters_at_end: usize,
}

pub fn split_and_heal(
    lab: &Lab,
    cap: &Capture,
    imp: &Impl,
    advert_int: f64,
) -> Result<Split, String> {
    let (r1, r2) = start_pair(lab, imp, advert_int)?;
    let r3 = lab.spawn_vrrp(imp, "r3", &[spec(50, advert_int)]);
    let mdi = spec(50, advert_int).master_down_interval();
    std::thread::sleep(mdi + Duration::from_secs(1));
    let t_split = partition(lab, "r1", true);
    std::thread::sleep(mdi * 2 + Duration::from_secs(1));
    let mut holders_split = lab.holders(VIP);
    holders_split.sort();
    let t_now = lab::now_realtime();
    let window = Duration::from_secs_f64((2.0 * advert_int).max(1.0));
    let macs: Vec<[u8; 6]> = ["r1", "r2", "r3"].iter().map(|n| lab.node(n).mac).collect();
    // The capture runs on br0, the main side: r1's adverts do not reach it while split.
    let masters_main_side = macs
        .iter()
        .filter(|m| !adverts_between(cap, **m, t_now - window, t_now).is_empty())
        .count();
    let t_heal = partition(lab, "r1", false);
    std::thread::sleep(Duration::from_secs_f64((4.0 * advert_int).max(2.0)));
    let t_end = lab::now_realtime();
    let mut holders_after = lab.holders(VIP);
    holders_after.sort();
    let last_r2 = adverts_between(cap, macs[1], t_heal, t_end).last().copied();
    let masters_at_end = macs
        .iter()
        .filter(|m| !adverts_between(cap, **m, t_end - window, t_end).is_empty())
        .count();
    let _ = t_split;
    drop((r1, r2, r3));
    Ok(Split {
        holders_split,
        masters_main_side,
        two_masters_for: last_r2.map_or(Duration::ZERO, |t| t.saturating_sub(t_heal)),
        holders_after,
        masters_at_end,
    })
}

/// `n` reloads with an unchanged config within `dur`.
#[derive(Debug)]
pub struct Reloads {
    pub sent: usize,
    pub transitions: usize,
    /// Largest gap between r1's adverts during the reloads and one interval after.
    pub max_gap: Duration,
    /// Adverts from r2 (the backup) during that time: a takeover.
    pub backup_adverts: usize,
    pub alive: bool,
}

pub fn reloads(
    lab: &Lab,
    cap: &Capture,
    imp: &Impl,
    advert_int: f64,
    n: usize,
    dur: Duration,
) -> Result<Reloads, String> {
    let (mut r1, mut r2) = start_pair(lab, imp, advert_int)?;
    let before = transitions(imp, &r1.log_text()) + transitions(imp, &r2.log_text());
    let t0 = lab::now_realtime();
    let start = Instant::now();
    for k in 0..n {
        reload(&r1);
        let next = dur.mul_f64((k + 1) as f64 / n as f64);
        if let Some(w) = next.checked_sub(start.elapsed()) {
            std::thread::sleep(w);
        }
    }
    std::thread::sleep(Duration::from_secs_f64(advert_int * 2.0 + 0.5));
    let t1 = lab::now_realtime();
    let ads = adverts_between(cap, lab.node("r1").mac, t0, t1);
    let mut max_gap = Duration::ZERO;
    let mut prev = t0;
    for t in ads.iter().copied().chain(std::iter::once(t1)) {
        max_gap = max_gap.max(t.saturating_sub(prev));
        prev = t;
    }
    let backup_adverts = adverts_between(cap, lab.node("r2").mac, t0, t1).len();
    let after = transitions(imp, &r1.log_text()) + transitions(imp, &r2.log_text());
    Ok(Reloads {
        sent: n,
        transitions: after - before,
        max_gap,
        backup_adverts,
        alive: r1.running() && r2.running(),
    })
}

/// A reload with a broken config file.
#[derive(Debug)]
pub struct BrokenReload {
    pub alive: bool,
    /// r1 still holds the VIP and still advertises (priority 150) 1.5 s later.
    pub keeps_running_config: bool,
    /// An error line names the file and a line number (`FILE:LINE`).
    pub error_with_file_line: bool,
    pub error_line: String,
}

pub fn broken_reload(
    lab: &Lab,
    cap: &Capture,
    imp: &Impl,
    advert_int: f64,
) -> Result<BrokenReload, String> {
    let (mut r1, _r2) = start_pair(lab, imp, advert_int)?;
    let (path, good, broken) = match imp {
        Impl::Minivrrp(_) => {
            let p = lab.minivrrp_conf_path("r1");
            let good = std::fs::read_to_string(&p).unwrap_or_default();
            let broken = good.replace("option vrid '50'", "option vrid '300'");
            (p, good, broken)
        }
        Impl::Keepalived => {
            let p = lab.dir.join("r1-keepalived.conf");
            let good = std::fs::read_to_string(&p).unwrap_or_default();
            let broken = good.replace("virtual_router_id 50", "virtual_router_id 300");
            (p, good, broken)
        }
    };
    if good == broken {
        return Err("could not break the config".into());
    }
    std::fs::write(&path, &broken).map_err(|e| e.to_string())?;
    let log_len = r1.log_text().len();
    let t = reload(&r1);
    std::thread::sleep(Duration::from_millis(1500));
    let t_end = lab::now_realtime();
    let alive = r1.running();
    let ads = cap
        .adverts(t + Duration::from_millis(700))
        .into_iter()
        .filter(|(ts, a, _)| {
            *ts < t_end && a.src_mac == lab.node("r1").mac && a.vrid == VRID && a.priority == 150
        })
        .count();
    let keeps_running_config = alive && lab.holders(VIP) == ["r1"] && ads >= 1;
    let new_log = r1.log_text().get(log_len..).unwrap_or("").to_string();
    let fname = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let line = new_log
        .lines()
        .find(|l| {
            l.contains(&fname)
                && l.split(&format!("{fname}:"))
                    .nth(1)
                    .is_some_and(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_digit()))
        })
        .or_else(|| new_log.lines().find(|l| l.contains("300")))
        .unwrap_or("")
        .to_string();
    let error_with_file_line = line.contains(&format!("{fname}:"));
    std::fs::write(&path, &good).map_err(|e| e.to_string())?;
    Ok(BrokenReload {
        alive,
        keeps_running_config,
        error_with_file_line,
        error_line: line,
    })
}
