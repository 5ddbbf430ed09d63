//! The typed configuration the rest of the daemon consumes. Built only by `validate`, so every
//! value here is in range and every reference resolves (indices into the `Config` vectors).
//! Defaults are already filled in: consumers never look at the schema.

use core::time::Duration;
use std::net::IpAddr;

pub use super::error::ConfigError;
/// One set of IPVS types from config to kernel: the config names them as IPVS does.
pub use crate::ipvs::model::{Forwarding, Protocol, Scheduler};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub globals: Globals,
    /// Shared with the daemon's running instances (`daemon::vrrp`), which keep their settings
    /// next to their state: one copy in memory instead of two (560 bytes plus strings each).
    pub instances: Vec<Arc<Instance>>,
    pub scripts: Vec<Script>,
    pub checks: Vec<Check>,
    pub sync_groups: Vec<SyncGroup>,
    /// Each with its real servers.
    pub virtual_servers: Vec<VirtualServer>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    pub fn to_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Globals {
    /// Read by the init script (through `minivrrp check`), not by the daemon: a daemon
    /// started by hand runs whatever it is given.
    pub enabled: bool,
    pub router_id: String,
    pub log_level: LogLevel,
    /// Interval of the repeated-warning rate limiter (`base::ratelimit`); zero = off.
    pub log_suppress: Duration,
    /// A notify command running longer is killed.
    pub notify_timeout: Duration,
    /// Notify commands running at once (all instances and groups).
    pub notify_max_running: u32,
    /// Default user of notify commands and track scripts.
    pub script_user: Option<String>,
    pub enable_script_security: bool,
    /// Defaults of `Instance::notify_pre_master` / `Instance::pre_master_timeout`.
    pub notify_pre_master: Option<String>,
    pub pre_master_timeout: Duration,
    /// How long instances stay in INIT after the daemon starts (keepalived
    /// `vrrp_startup_delay`); not applied again on reload.
    pub startup_delay: Duration,
    /// `-C` of the conntrackd commands (`Instance::conntrackd`).
    pub conntrackd_config: String,
    /// Recipients of e-mail alerts.
    pub notification_email: Vec<String>,
    pub notification_email_from: String,
    /// SMTP relay (port 25 when not given).
    pub smtp_server: Option<std::net::SocketAddr>,
    /// Connect timeout of the SMTP client; a whole mail gets twice this.
    pub smtp_connect_timeout: Duration,
    /// Default of `Instance::smtp_alert`.
    pub smtp_alert: bool,
    /// Scheduling class and real-time priority of the daemon (`sys::sched`).
    pub sched_policy: SchedPolicy,
    pub sched_priority: u8,
    /// mlockall at start.
    pub lock_memory: bool,
    pub oom_score_adj: i32,
}

pub use crate::sys::sched::Policy as SchedPolicy;

pub use crate::vrrp::wire::Version as VrrpVersion;

pub use crate::base::Family;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialState {
    Master,
    Backup,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    /// RFC 3768 simple text password (version 2 only), 1..8 bytes.
    Pass(String),
}

/// How the VRRPv3 checksum is computed over IPv4 (IPv6 always uses the pseudo-header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V3Checksum {
    /// Checksum includes the IPv4 pseudo-header (keepalived, RFC 5798 5.2.8). Default.
    Pseudo,
    /// Checksum over the VRRP message alone, for peers that omit the pseudo-header
    /// (config value `rfc9568`).
    Rfc9568,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    /// Defaults to 32 or 128.
    pub prefix_len: u8,
    /// Interface the address goes on when not the instance's own (keepalived `dev`), so
    /// one instance moves the WAN and LAN addresses together.
    pub dev: Option<String>,
    /// IPv4 address label (`ip addr ... label`, keepalived `label`).
    pub label: Option<String>,
    /// rtnetlink address scope: 0 global, 200 site, 253 link, 254 host.
    pub scope: u8,
    /// Configured on the master but not advertised (`vip_excluded`, keepalived
    /// `virtual_ipaddress_excluded`); may be of the other address family.
    pub excluded: bool,
}

/// A route that follows the instance's state (keepalived `virtual_routes`): `route` is
/// installed while master, `backup_route` while backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// `default` is 0.0.0.0/0 or ::/0 (the family of `via`, else of the instance).
    pub dest: IpAddr,
    pub prefix_len: u8,
    pub via: Option<IpAddr>,
    /// Output interface by name; `None`: found from `via`, or the instance's interface
    /// when there is no `via`.
    pub dev: Option<String>,
    /// `ip route` `metric`; 0 when not given.
    pub metric: u32,
    /// Routing table id; 254 (main) when not given.
    pub table: u32,
}

/// In `ip route` words, as configured: `10.9.0.0/16 via 10.0.0.9 metric 10 table 100`.
impl core::fmt::Display for Route {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.prefix_len == 0 {
            f.write_str("default")?;
        } else {
            write!(f, "{}/{}", self.dest, self.prefix_len)?;
        }
        if let Some(g) = self.via {
            write!(f, " via {g}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if self.metric != 0 {
            write!(f, " metric {}", self.metric)?;
        }
        if self.table != ROUTE_TABLE_MAIN {
            write!(f, " table {}", self.table)?;
        }
        Ok(())
    }
}

/// Routing table of a route without `table`: main.
pub const ROUTE_TABLE_MAIN: u32 = 254;

/// A policy routing rule that follows the instance's state (keepalived `virtual_rules`):
/// `rule` is installed while master, `backup_rule` while backup. Always a table lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// From `from` / `to`, else `inet` / `inet6`, else the instance's family.
    pub family: Family,
    /// `not`: the rule matches what the selectors do not.
    pub invert: bool,
    /// Source prefix (`from`); `None` = `from all`.
    pub from: Option<(IpAddr, u8)>,
    /// Destination prefix (`to`); `None` = any.
    pub to: Option<(IpAddr, u8)>,
    /// Input interface by name (`iif`); the kernel matches names, so it may not exist yet.
    pub iif: Option<String>,
    /// Output interface by name (`oif`, for sockets bound to a device).
    pub oif: Option<String>,
    /// Firewall mark and mask (`fwmark M[/MASK]`); mask `None` = all bits.
    pub fwmark: Option<(u32, Option<u32>)>,
    /// `priority` (the rule's place in the list); always configured, see `config::schema`.
    pub priority: u32,
    /// Routing table looked up (`table`).
    pub table: u32,
}

/// In `ip rule` words, as `check` prints them and the config reads them back:
/// `from 10.0.1.0/24 iif lan fwmark 0x1/0xff priority 100 table 100`.
impl core::fmt::Display for Rule {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.from.is_none() && self.to.is_none() {
            f.write_str(match self.family {
                Family::Ipv4 => "inet ",
                Family::Ipv6 => "inet6 ",
            })?;
        }
        if self.invert {
            f.write_str("not ")?;
        }
        if let Some((a, p)) = self.from {
            write!(f, "from {a}/{p} ")?;
        }
        if let Some((a, p)) = self.to {
            write!(f, "to {a}/{p} ")?;
        }
        if let Some(d) = &self.iif {
            write!(f, "iif {d} ")?;
        }
        if let Some(d) = &self.oif {
            write!(f, "oif {d} ")?;
        }
        if let Some((m, k)) = self.fwmark {
            write!(f, "fwmark {m:#x}")?;
            if let Some(k) = k {
                write!(f, "/{k:#x}")?;
            }
            f.write_str(" ")?;
        }
        write!(f, "priority {} table ", self.priority)?;
        if self.table == ROUTE_TABLE_MAIN {
            f.write_str("main")
        } else {
            write!(f, "{}", self.table)
        }
    }
}

/// Address scopes by name, as `ip addr` and keepalived write them.
pub const VIP_SCOPES: &[(&str, u8)] = &[("global", 0), ("site", 200), ("link", 253), ("host", 254)];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    pub stop: Option<String>,
    /// Run on every change with `INSTANCE|GROUP NAME STATE [PRIORITY]`.
    pub any: Option<String>,
    /// procd services that run while MASTER (`master_service`) / while not MASTER
    /// (`backup_service`), and netifd interfaces up while MASTER (`master_interface`).
    pub master_services: Vec<String>,
    pub backup_services: Vec<String>,
    pub master_interfaces: Vec<String>,
}

/// `list track_script 'NAME [weight W]'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackScript {
    /// Index into `Config::scripts`.
    pub script: usize,
    /// Override or the script's weight. 0 = failure puts the instance in FAULT.
    pub weight: i32,
}

/// `list track_interface 'IFNAME [weight W]'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInterface {
    pub name: String,
    /// 0 (default) = link down puts the instance in FAULT.
    pub weight: i32,
}

/// `list track_file 'PATH [weight W]'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackFile {
    pub path: String,
    /// Priority changes by the file's integer × weight (default 1); 0 = non-zero means FAULT.
    pub weight: i32,
}

/// `list track_check 'NAME [weight W]'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackCheck {
    /// Index into `Config::checks`.
    pub check: usize,
    /// Override or the check's weight. 0 = failure puts the instance in FAULT.
    pub weight: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Section name, or `@instance[N]` for an anonymous section.
    pub name: String,
    pub anonymous: bool,
    pub interface: String,
    pub vrid: u8,
    /// 255 = address owner.
    pub priority: u8,
    pub version: VrrpVersion,
    /// Whole seconds for v2, a multiple of 10 ms for v3 (validated).
    pub advert_int: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// Debounce of the interface's link state (keepalived `interface_up_down_delays`).
    pub link_down_delay: Duration,
    pub link_up_delay: Duration,
    pub initial_state: InitialState,
    pub auth: Auth,
    /// keepalived 2.4 `auth_hmac`: the HMAC trailer on every advert (`vrrp::auth`).
    pub auth_hmac: Option<crate::vrrp::auth::AuthHmac>,
    /// The keys of `auth_hmac` read from a file: ID and path (`check` prints the path;
    /// an inline key is masked).
    pub auth_hmac_files: Vec<(u8, String)>,
    /// Family of every VIP, unicast_src and unicast_peer; IPv4 when `dual_stack`.
    pub family: Family,
    /// The advertised VIPs are of both families (VRRPv3 only): the daemon runs one router
    /// per family, IPv4 (`family`) and IPv6, with this VRID and these settings, kept in step
    /// (master together, backup together, fault together).
    pub dual_stack: bool,
    pub vips: Vec<Vip>,
    /// Installed while master (`route`), and while backup (`backup_route`).
    pub routes: Vec<Route>,
    pub backup_routes: Vec<Route>,
    /// Policy rules installed while master (`rule`), and while backup (`backup_rule`).
    pub rules: Vec<Rule>,
    pub backup_rules: Vec<Rule>,
    pub unicast_src: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub track_scripts: Vec<TrackScript>,
    pub track_interfaces: Vec<TrackInterface>,
    pub track_files: Vec<TrackFile>,
    pub track_checks: Vec<TrackCheck>,
    pub use_vmac: bool,
    /// Always set (default `vrrp.VRID`); only used when `use_vmac`.
    pub vmac_name: String,
    pub garp_repeat: u32,
    pub garp_delay: Duration,
    /// `None` = off.
    pub garp_refresh: Option<Duration>,
    /// Kernel lifetime of the VIPs in seconds while master (0 = permanent addresses).
    pub vip_lifetime: u32,
    /// Router Advertisements from the virtual router while master (`option ra`).
    pub ra: Option<RaConfig>,
    pub v3_checksum: V3Checksum,
    pub notify: Notify,
    /// The pre-master hook: run on becoming MASTER, the VIPs wait for it to exit or for
    /// `pre_master_timeout` (the global ones when not set).
    pub notify_pre_master: Option<String>,
    pub pre_master_timeout: Duration,
    /// conntrackd's configuration file when `conntrackd` is on: its primary-backup sequence
    /// runs on transitions, its commit as the pre-master hook.
    pub conntrackd: Option<String>,
    /// Send an e-mail alert on each state change (the global `smtp_alert` when not set).
    pub smtp_alert: bool,
    /// Index into `Config::sync_groups`.
    pub sync_group: Option<usize>,
}

/// What the virtual router advertises (`option ra` and the `ra_*` options).
pub use crate::vrrp::ra::RaConfig;

impl Instance {
    /// The pre-master hook's command line: conntrackd's commit when `conntrackd` is on, else
    /// `notify_pre_master`.
    pub fn pre_master_command(&self) -> Option<String> {
        match &self.conntrackd {
            Some(conf) => Some(format!("conntrackd -C '{conf}' -c")),
            None => self.notify_pre_master.clone(),
        }
    }

    /// The families this instance advertises: `family`, and IPv6 too when `dual_stack`.
    pub fn families(&self) -> &'static [Family] {
        match (self.dual_stack, self.family) {
            (true, _) => &[Family::Ipv4, Family::Ipv6],
            (false, Family::Ipv4) => &[Family::Ipv4],
            (false, Family::Ipv6) => &[Family::Ipv6],
        }
    }

    /// Advertisement interval in centiseconds, the unit of the VRRPv3 header (RFC 5798 5.2.7).
    pub fn advert_int_centis(&self) -> u16 {
        // as_secs/subsec_millis, not as_millis (u128): no 128-bit division on 32-bit routers.
        (self.advert_int.as_secs() * 100 + u64::from(self.advert_int.subsec_millis() / 10)) as u16
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Script {
    pub name: String,
    pub command: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub weight: i32,
    pub fall: u32,
    pub rise: u32,
    pub user: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    Tcp,
    Http,
    Icmp,
    /// A command's exit code (keepalived `MISC_CHECK`); real servers only.
    Script,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
            CheckKind::Icmp => "icmp",
            CheckKind::Script => "script",
        }
    }
}

/// Inclusive range of accepted HTTP status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange {
    pub lo: u16,
    pub hi: u16,
}

impl StatusRange {
    pub fn contains(&self, code: u16) -> bool {
        (self.lo..=self.hi).contains(&code)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub name: String,
    pub kind: CheckKind,
    /// `None`: the real server's address is used.
    pub address: Option<IpAddr>,
    /// `None`: the real server's port is used.
    pub port: Option<u16>,
    pub path: String,
    pub host: Option<String>,
    pub status: Vec<StatusRange>,
    pub expect: Option<String>,
    pub max_response: u32,
    pub connect_timeout: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
    pub interval: Duration,
    /// `script` checks: the command (split into words, no shell), its timeout, whether its exit code sets
    /// the weight (keepalived `misc_dynamic`), and its user (else globals `script_user`).
    pub command: Option<String>,
    pub timeout: Duration,
    pub dynamic: bool,
    pub user: Option<String>,
    pub weight: i32,
    pub fall: u32,
    pub rise: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyncGroup {
    pub name: String,
    pub anonymous: bool,
    /// Indices into `Config::instances`.
    pub members: Vec<usize>,
    pub notify: Notify,
    /// Trackers of the whole group (weight always 0): one down puts every member in FAULT.
    pub track_scripts: Vec<TrackScript>,
    pub track_interfaces: Vec<TrackInterface>,
    pub track_files: Vec<TrackFile>,
    pub track_checks: Vec<TrackCheck>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Addr {
        addr: IpAddr,
        port: u16,
        protocol: Protocol,
    },
    Fwmark {
        mark: u32,
        /// Family of the real servers (IPVS needs one for a fwmark service).
        family: Family,
    },
}

/// The config's words for the IPVS types: `option scheduler 'wrr'`, `option protocol 'udp'`,
/// `option forwarding 'dr'` (keepalived's `lb_algo` / `protocol` / `lb_kind`, lower case).
pub trait UciWord: Sized {
    /// The word the config file uses.
    fn word(self) -> &'static str;
    /// The value a config word names, if any.
    fn from_word(word: &str) -> Option<Self>;
}

impl UciWord for Protocol {
    fn word(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
    fn from_word(word: &str) -> Option<Self> {
        [Protocol::Tcp, Protocol::Udp, Protocol::Sctp]
            .into_iter()
            .find(|p| p.word() == word)
    }
}

impl UciWord for Scheduler {
    /// The kernel's scheduler name (`IPVS_SVC_ATTR_SCHED_NAME`) is the config word.
    fn word(self) -> &'static str {
        self.name()
    }
    fn from_word(word: &str) -> Option<Self> {
        // Not Unknown: that only comes from kernel dumps.
        Scheduler::from_name(word)
    }
}

impl UciWord for Forwarding {
    fn word(self) -> &'static str {
        match self {
            Forwarding::Masq => "nat",
            Forwarding::DirectRoute => "dr",
            Forwarding::Tunnel => "tun",
            // Never built from a config (the kernel picks it for local addresses); named
            // only so the mapping is total.
            Forwarding::Local => "local",
        }
    }
    fn from_word(word: &str) -> Option<Self> {
        [
            Forwarding::Masq,
            Forwarding::DirectRoute,
            Forwarding::Tunnel,
        ]
        .into_iter()
        .find(|f| f.word() == word)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct VirtualServer {
    pub name: String,
    pub service: Service,
    pub scheduler: Scheduler,
    pub forwarding: Forwarding,
    /// `None` = persistence off.
    pub persistence_timeout: Option<Duration>,
    /// Prefix length for persistence granularity.
    pub persistence_netmask: Option<u8>,
    pub quorum: u32,
    pub hysteresis: u32,
    pub sorry_server: Option<(IpAddr, Option<u16>)>,
    /// Index into `Config::checks`.
    pub check: Option<usize>,
    pub cleanup: bool,
    /// Commands run when quorum is regained / lost.
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    pub real_servers: Vec<RealServer>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RealServer {
    pub name: String,
    pub anonymous: bool,
    pub address: IpAddr,
    /// Resolved: own, else the service port (0 for a fwmark service).
    pub port: u16,
    pub weight: u32,
    /// Resolved: own, else the virtual server's. Index into `Config::checks`.
    pub check: Option<usize>,
    pub inhibit_on_failure: bool,
    /// Resolved: own, else the virtual server's.
    pub forwarding: Forwarding,
    /// Commands run when the server's check passes / fails.
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
}
