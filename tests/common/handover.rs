//! One failover trial in the namespace lab, shared by the failover and perf benchmarks: r1
//! (priority 150) and r2 (priority 100) elect r1, a trigger hits r1, and the bridge capture
//! gives r2's first advert and GARP, and the reference frame the protocol's wait starts from
//! (r1's last advert before the trigger, or its priority-0 advert on SIGTERM).

use super::lab::{self, Impl, Lab, Proc, VrrpSpec};
use super::pcap::Kind;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub const VIP: &str = "10.0.0.254";
pub const VIP_CIDR: &str = "10.0.0.254/24";
pub const VRID: u8 = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trigger {
    Kill9,
    LinkDown,
    Sigterm,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Kill9 => "kill9",
            Trigger::LinkDown => "linkdown",
            Trigger::Sigterm => "sigterm",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub name: &'static str,
    pub version: u8,
    pub advert_int: f64,
}

pub const CASES: [Case; 3] = [
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
    // VRRPv3's shortest interval (RFC 5798 5.2.7: centiseconds): failover in tens of ms.
    Case {
        name: "v3fast",
        version: 3,
        advert_int: 0.01,
    },
];

/// One failover trial's figures, all relative to the trigger unless stated.
#[derive(Clone, Copy, Debug)]
pub struct Trial {
    pub advert: Duration,
    pub garp: Option<Duration>,
    /// New master's first advert minus r1's last advert before the trigger (kill9/linkdown) or
    /// r1's priority-0 advert (sigterm).
    pub from_reference: Option<Duration>,
}

pub fn spec(case: Case, priority: u8) -> VrrpSpec {
    VrrpSpec::new(VRID, priority, case.version, case.advert_int, VIP_CIDR)
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Runs one trial; Err says why it was not measurable.
pub fn trial(
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

pub fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
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
