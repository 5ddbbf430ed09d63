//! The status document: one snapshot of everything the operator may ask about, built by the
//! daemon and rendered by it (`json`, `text`, `metrics`) for the client. Times
//! are durations (milliseconds / microseconds) relative to the snapshot, so the document
//! needs no clock agreement and never goes stale in meaning.

use core::net::IpAddr;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusDoc {
    pub version: String,
    pub router_id: String,
    pub pid: u32,
    pub uptime_ms: u64,
    /// `maintenance on` is in force: every instance stays BACKUP.
    pub maintenance: bool,
    pub instances: Vec<InstanceStatus>,
    pub checks: Vec<CheckStatus>,
    pub virtual_servers: Vec<VirtualServerStatus>,
    /// Received frames dropped before they reached an instance, by RFC rule (daemon-wide).
    pub drops: Vec<Counter>,
    pub control: ControlStats,
    /// How late the daemon's timers fired (all of them, since start).
    pub timers: crate::base::lateness::Histogram,
}

/// A named counter (drop reasons).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub name: String,
    pub value: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    /// `INIT`, `BACKUP`, `MASTER` or `FAULT`.
    pub state: String,
    /// Milliseconds since the last transition (since start when there was none).
    pub since_ms: u64,
    /// Why the last transition happened, as logged.
    pub reason: String,
    /// Address of the current master (ours when MASTER), if known.
    pub master: Option<IpAddr>,
    /// Configured priority.
    pub base_priority: u8,
    /// `priority NAME PRIO` override in force, if any.
    pub priority_override: Option<u8>,
    /// Priority after the override and the trackers (what adverts carry as MASTER).
    pub effective_priority: u8,
    pub trackers: Vec<TrackerStatus>,
    pub vips: Vec<String>,
    /// The VIPs are configured on the interface now (by us).
    pub vips_installed: bool,
    /// MASTER with the VIPs held until the pre-master hook (`notify_pre_master`) exits or
    /// times out: why a master has no VIP yet.
    pub pre_master_running: bool,
    /// Configured advert interval, milliseconds.
    pub advert_int_ms: u32,
    /// The latest this instance's timer fired after its deadline since start (or the last
    /// reload that changed the instances), microseconds.
    pub timer_late_worst_us: u64,
    /// Master_Adver_Interval in use (learned from the master in v3 BACKUP), milliseconds.
    pub master_advert_int_ms: u32,
    pub counters: InstanceCounters,
    /// Adverts for this instance dropped by the receive policy, by reason.
    pub drops: Vec<Counter>,
    /// keepalived 2.4 `auth_hmac` settings and outcomes, when the instance has it.
    pub auth_hmac: Option<AuthStatus>,
    /// An instance with IPv4 and IPv6 VIPs: each family's router (they move together, so
    /// their states differ only for the moment one follows the other); empty otherwise.
    pub families: Vec<FamilyStatus>,
}

/// An instance's `auth_hmac`: its settings (never a key) and what became of the adverts
/// it verified, by outcome (`accepted`, `unsigned`, `missing`, `malformed`, `unknown_key`,
/// `bad_mac`, `stale`, `replayed`, and `clock_skew` among the accepted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthStatus {
    pub mode: String,
    pub active_key: u8,
    pub key_ids: Vec<u8>,
    pub anti_replay: String,
    pub time_window_s: u16,
    pub outcomes: Vec<Counter>,
}

/// One family's router of an instance with VIPs of both families.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FamilyStatus {
    /// `ipv4` or `ipv6`.
    pub family: String,
    pub state: String,
    /// That family's master (ours when MASTER: our IPv6 link-local for `ipv6`), if known.
    pub master: Option<IpAddr>,
    pub vips_installed: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceCounters {
    pub adverts_sent: u32,
    pub adverts_received: u32,
    /// Adverts the state machine discarded (lower priority, own address, interval mismatch).
    pub adverts_discarded: u32,
    pub priority_zero_sent: u32,
    pub priority_zero_received: u32,
    pub transitions: u32,
    /// VIPs deleted under the master (by another process or the kernel) and added back.
    pub vips_restored: u32,
    /// Router Advertisements sent (`option ra`), Router Solicitations received while
    /// advertising, and those of them the RFC 4861 6.2.6 rate limit answered later or not
    /// at all.
    pub ra_sent: u32,
    pub rs_received: u32,
    pub rs_rate_limited: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackerStatus {
    /// `script`, `check`, `interface` or `file`.
    pub kind: String,
    pub name: String,
    pub weight: i32,
    /// The tracked object's verdict: `up`, `down` or `unknown` (a file: its value's sign).
    pub state: String,
    /// What it adds to the priority now (0 when it does not apply).
    pub contribution: i32,
    /// A weight-0 object is down: the instance is in FAULT because of it.
    pub fault: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckStatus {
    pub name: String,
    /// `script`, `check` (a tracked native check) or `real_server`.
    pub kind: String,
    /// `up`, `down` or `unknown`.
    pub state: String,
    /// Outcome of the last attempt (`ok`, or why it failed); None before the first.
    pub last_result: Option<String>,
    /// Duration of the last attempt, microseconds.
    pub latency_us: Option<u64>,
    /// Milliseconds since the last attempt started.
    pub last_ms_ago: Option<u64>,
    /// The weight a real server's `dynamic` script check set last (keepalived
    /// `misc_dynamic`); None for other checks and before one was set.
    pub weight: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VirtualServerStatus {
    pub name: String,
    /// `ADDR:PORT/PROTO` or `fwmark N`.
    pub service: String,
    /// Quorum reached (None while IPVS is unavailable).
    pub up: Option<bool>,
    pub real_servers: Vec<RealServerStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RealServerStatus {
    pub address: String,
    /// Weight we keep in the kernel (0 = inhibited, absent when removed).
    pub weight: u32,
    /// Check verdict (None while IPVS is unavailable).
    pub up: Option<bool>,
    /// Present in the kernel's table as we programmed it.
    pub in_kernel: bool,
}

/// The control socket's own counters: what misbehaving clients cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControlStats {
    pub clients: u32,
    pub accepted: u64,
    pub requests: u64,
    pub refused_not_root: u64,
    /// Times every client slot was taken (further clients waited in the listen backlog).
    pub refused_busy: u64,
    pub dropped_garbage: u64,
    pub dropped_oversize: u64,
    pub dropped_timeout: u64,
    /// Times the accept budget per window was used up (connections waited for the next).
    pub throttled: u64,
}
