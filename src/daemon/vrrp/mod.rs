//! The VRRP part of the daemon: instances on interfaces. It turns the pure state machines'
//! actions (`vrrp::instance::Action`) into frames and kernel requests, and received frames
//! into state machine inputs. By responsibility:
//!
//! - this file: the instance table, feeding the state machines, sync groups, reload (which
//!   instances keep their state), the dump;
//! - [`interfaces`]: link facts, one listener per interface, advert source addresses, RFC
//!   5798 6.4 interface events;
//! - [`receive`]: a frame through the RFC 5798 7.1 checks to an input event;
//! - [`transmit`]: adverts and gratuitous ARPs / unsolicited NAs;
//! - [`addresses`]: VIPs on the interface or the `use_vmac` macvlan;
//! - [`pre_master`]: the `notify_pre_master` hook's process, which the state machine's
//!   hold waits for before the VIPs go on;
//! - `daemon::kernel`: everything that crosses into the kernel, behind the [`Southbound`]
//!   trait ([`Linux`] in the daemon, a recording fake in `tests/pure/daemon_conformance.rs`).
//!
//! One advert, in: interface listener -> `receive::on_readable` (parse, match the instance by
//! interface/VRID/family, validate) -> queued `VrrpEvent` -> `on_event` -> `feed` -> the
//! instance's `handle`. One transition, out: `feed` -> `act` -> `transmit` / `addresses` ->
//! `Southbound`; the transition itself waits in `take_transition` for the runtime's notify
//! stage, and the member's new state in the sync-group queue (`settle_sync_groups`).
//!
//! An instance with VIPs of both families (`model::Instance::dual_stack`) runs two routers
//! of the table, one per family: the IPv4 one at the instance's config index, the IPv6 one
//! after every configured instance (`Inst::pair` links them). Their group (the instance's
//! sync group, or one of their own) keeps them in step; the instance's transitions are
//! announced once, by whichever router moved first (`Inst::announced`). The public methods
//! take config indices; a router index only appears inside this part.
//!
//! The loop timer `Part::Vrrp.timer(i)` is always armed at instance `i`'s `next_deadline()`;
//! one more, [`VIP_REFRESH_TIMER`], at the earliest VIP lease refresh of any master
//! (`vrrp::vip_lease`, in [`addresses`]).

mod addresses;
use route_set::RouteSet;
mod interfaces;
mod pre_master;
mod receive;
mod route_set;
mod router_adverts;
mod transmit;

pub use super::kernel::{LinkFacts, Linux, Southbound};

use std::sync::Arc;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use log::{error, info, warn};

use super::event_loop::Ctx;
use super::ids::Part;
use crate::base::ratelimit::RateLimiter;
use crate::base::{Duration, Family, Instant};
use crate::config::model::{self, Config, VrrpVersion};
use crate::sys::packet::KernelStats;
use crate::vrrp::auth::{AuthCounters, ReplayTable, SendSeq};
use crate::vrrp::instance::{
    Action, Advert, Input, Instance, Params, StartHint, State, SyncCommand, Transition,
};
use crate::vrrp::priority::Adjustment;
use crate::vrrp::sync_group::{self, SyncGroup};
use crate::vrrp::wire::{AddrList, Auth, ChecksumMode, DropCounters, DropReason, VrrpRepr};

/// Largest frame we read: VRRP frames are at most 14 + 40 + 8 + 20 * 16 bytes; anything
/// longer than this buffer is not VRRP and is dropped as truncated.
const RX_BUF: usize = 1536;
/// [`Vrrp::auth_log`]'s key for the clock-skew warning (after every `AuthReject`).
const SKEW_LOG: u8 = 0xff;
/// Enough for any frame we build (an advert with 20 IPv6 addresses is 382 bytes, 410 with
/// the `auth_hmac` trailer).
const TX_BUF: usize = 512;
const _: () = assert!(
    14 + 40
        + crate::vrrp::wire::HEADER_LEN
        + crate::vrrp::wire::MAX_ADDRS * 16
        + crate::vrrp::auth::TRAILER_LEN
        <= TX_BUF
);
/// Sync-group reports waiting for [`Vrrp::settle_sync_groups`]: one per input a member
/// handled. A group exchange settles after one round (`sync_group` docs), so a callback
/// leaves a few per member at most.
const SYNC_QUEUE: usize = 64;
/// Reports handled per settle at most, so a bug in the group logic cannot spin the loop.
const SYNC_ROUNDS: usize = 4 * SYNC_QUEUE;
/// Index of the VIP lease refresh timer in the VRRP part's timer space: above any instance
/// index (instances are bounded by the config limits far below it).
pub const VIP_REFRESH_TIMER: u32 = 0x0FFF_FFFF;
/// The timer that adds back VIPs deleted under a master ([`Vrrp::restore_vips`]), just
/// below [`VIP_REFRESH_TIMER`].
pub const VIP_RESTORE_TIMER: u32 = 0x0FFF_FFFE;
/// The timer of the Router Advertisements (`router_adverts`), at the earliest due of any
/// master's.
pub const RA_TIMER: u32 = 0x0FFF_FFFD;
/// Rounds of adding deleted VIPs back are at least this far apart: the first deletion is
/// undone in the wake-up after its news, a script deleting a VIP 1000 times a second costs
/// 10 rounds (and 10 announcements) a second, not 1000.
const VIP_RESTORE_GAP: Duration = Duration::from_millis(100);
/// One log line per instance this often at most about its VIPs deleted under it.
const VIP_RESTORE_LOG: Duration = Duration::from_secs(10);

/// What the VRRP part asks the loop to queue: decoded from a frame, handled after timers
/// and signals. An advert names its instance by the stable key (interface, VRID, family),
/// never by position: a SIGHUP handled between the read and the handling may reorder,
/// add or remove instances ([`Vrrp::instance_for`]).
#[derive(Clone, Debug)]
pub enum VrrpEvent {
    /// `at`: when the frame arrived, if the receive path knows it (a frame held back in the
    /// kernel's ring is read later than it arrived).
    Advert {
        key: InstanceKey,
        advert: Advert,
        at: Option<Instant>,
    },
    /// Router Solicitations arrived on interface `iface` (counted there, `Iface::rs_waiting`:
    /// a flood queues one event, not one per frame).
    RouterSolicit { iface: u16 },
}

/// What identifies an instance on the wire (RFC 5798 7.1: the VRID on the interface the
/// advert arrived on, per address family). Interface indices into `Vrrp::ifaces` are stable:
/// that table only grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceKey {
    pub iface: u16,
    pub vrid: u8,
    pub family: Family,
}

/// Who a dropped frame is counted for: an instance, or an interface when no instance could
/// be told (malformed, tagged, unknown VRID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DropOwner {
    Inst(u16),
    Iface(u16),
}

/// A member's state after it handled an input, for its sync group.
#[derive(Clone, Copy, Debug)]
struct SyncReport {
    inst: u16,
    state: State,
    own_fault: bool,
    wants_master: bool,
}

/// Link facts of one interface, refreshed from the kernel, and its listener.
struct Iface<L> {
    name: String,
    /// `None` while the interface does not exist.
    ifindex: Option<u32>,
    up: bool,
    mac: [u8; 6],
    primary4: Option<Ipv4Addr>,
    link_local6: Option<Ipv6Addr>,
    listener: Option<L>,
    /// How long the kernel may hold the listener's frames back (`Vrrp::rx_delay_for`).
    rx_delay: Option<Duration>,
    /// IPv4 identification of our adverts: counts up from 1 as keepalived's does.
    ip_ident: u16,
    /// Frames dropped before they could be matched to an instance (malformed, tagged, for
    /// another host, unknown VRID).
    drops: DropCounters,
    /// The kernel's counts (`Southbound::take_kernel_stats`), summed over reads and re-opens.
    kernel: KernelStats,
    /// Router Solicitations read and not yet handled (`VrrpEvent::RouterSolicit`).
    rs_waiting: u32,
}

impl<L> Iface<L> {
    fn new(name: &str) -> Iface<L> {
        Iface {
            name: name.to_string(),
            ifindex: None,
            up: false,
            mac: [0; 6],
            primary4: None,
            link_local6: None,
            listener: None,
            rx_delay: None,
            ip_ident: 0,
            drops: DropCounters::new(),
            kernel: KernelStats::default(),
            rs_waiting: 0,
        }
    }
}

/// An instance's `auth_hmac` state (`vrrp::auth`).
#[derive(Debug, Default)]
struct AuthState {
    send: SendSeq,
    replay: ReplayTable,
    counts: AuthCounters,
}

struct Inst<U> {
    /// Shared with the running `Config` (no second copy per instance).
    cfg: Arc<model::Instance>,
    fsm: Instance,
    iface: usize,
    /// The advertisement this instance sends (its priority is set per send); received ones
    /// are checked against it (RFC 5798 7.1).
    own: VrrpRepr,
    checksum: ChecksumMode,
    /// ifindex of our macvlan (use_vmac) while it exists.
    vmac: Option<u32>,
    unicast: Option<U>,
    /// Whether the VIPs are on the interface now (so we never remove what we did not add).
    vips_installed: bool,
    /// Whether the `route`s and `rule`s (with the VIPs) and the `backup_route`s and
    /// `backup_rule`s are in the kernel now.
    routes_installed: bool,
    backup_routes_installed: bool,
    /// When the VIPs were last (re)installed with a finite lifetime; `None` while they are
    /// not installed or are permanent (`vip_lifetime 0`).
    vip_refreshed: Option<Instant>,
    /// The interface was usable (up with a source address) when last told to the fsm.
    link_ok: bool,
    adj: Adjustment,
    /// Adverts for this instance dropped by the receive policy, per reason.
    drops: DropCounters,
    /// `auth_hmac` state (sequence sent, senders' sequences, outcome counters) while the
    /// instance has it. Boxed: the replay table would make every instance heavier.
    auth: Option<Box<AuthState>>,
    /// The pre-master hook while it runs (`pre_master`).
    hook: Option<pre_master::Hook>,
    /// The hold ends once the current input is handled: the hook could not start, or this
    /// is a dual-stack instance's IPv6 router whose IPv4 router's hold is already over.
    end_hold: bool,
    /// The last transition, announced to the notify stage when the state machine says
    /// `Notify` (at once, or for a held MASTER when the hold ends). Boxed: it lives only
    /// from a transition to its announcement, and inline it made every instance 56 bytes
    /// heavier (`size_budget`).
    last_transition: Option<Box<Transition>>,
    /// The other family's router of a dual-stack instance (see the module docs).
    pair: Option<usize>,
    /// Index into `Vrrp::groups` of the group keeping this router in step (its instance's
    /// sync group, or its dual-stack pair's own group).
    group: Option<usize>,
    /// The state the notify stage was last told (INIT before the first): a MASTER whose
    /// pre-master hold was cut short was never announced, so what follows it is announced
    /// as coming from this state, and scripts and mails never hear of a MASTER they missed.
    /// For a dual-stack instance, the IPv4 router's field speaks for the instance.
    announced: State,
    /// A dual-stack instance's state as either router last moved to (kept on its IPv4
    /// router): the second router's move to the same state is not announced again.
    moved: State,
    /// Netlink said one of our installed VIPs was deleted: [`VIP_RESTORE_TIMER`] looks.
    restore_pending: bool,
    /// VIPs deleted under us (by another process or the kernel) and added back.
    vips_restored: u32,
    /// The Router Advertisement schedule of an IPv6 router with `option ra` (boxed: most
    /// instances have none).
    ra: Option<Box<crate::vrrp::ra::RaTimer>>,
}

/// All VRRP instances of the running configuration, on the kernel `S`.
pub struct Vrrp<S: Southbound = Linux> {
    south: S,
    ifaces: Vec<Iface<S::Listener>>,
    insts: Vec<Inst<S::Unicast>>,
    /// Configured instances: `insts[..configured]` in config order, then the IPv6 routers
    /// of dual-stack instances.
    configured: usize,
    /// Sync groups (config order, then one per dual-stack pair outside any sync group):
    /// the pure group logic and its members' router indices.
    groups: Vec<(SyncGroup, Vec<usize>)>,
    /// One warning per (instance or interface, drop reason) per interval, so one noisy
    /// reason cannot hide another.
    drop_log: RateLimiter<(DropOwner, DropReason), 64>,
    /// `auth_hmac` warnings, per instance and outcome (an `AuthReject` as `u8`, or
    /// [`SKEW_LOG`] for the clock-skew warning).
    auth_log: RateLimiter<(u16, u8), 64>,
    rx: Box<[u8; RX_BUF]>,
    tx: [u8; TX_BUF],
    transitions: heapless::Deque<Transition, 64>,
    /// Changes of effective priority (instance, new priority), oldest first, for the ubus
    /// event; a full queue drops the oldest.
    priority_changes: heapless::Deque<(u16, u8), 64>,
    sync_reports: heapless::Deque<SyncReport, SYNC_QUEUE>,
    /// Set while `stop_insts` sends the priority-0 adverts; it removes the VIPs after.
    vip_removal_deferred: bool,
    /// A lease refresh round's VIPs: (instance, VIP index, ifindex). Kept between rounds so
    /// a master's steady state allocates nothing.
    lease_batch: Vec<(usize, usize, u32)>,
    /// globals.startup_delay, and the instant it ends once `start` has run: instances
    /// started before it (at daemon start) stay in INIT until then, later ones (reload) not.
    startup_delay: Duration,
    startup_until: Option<Instant>,
    /// When deleted VIPs were last added back ([`VIP_RESTORE_GAP`]).
    last_restore: Option<Instant>,
    /// One line per instance per [`VIP_RESTORE_LOG`] about VIPs deleted under it.
    restore_log: RateLimiter<usize, 16>,
    /// xorshift state for the RAs' random intervals and delays (RFC 4861 6.2.4, 6.2.6).
    rng: u64,
    /// uid/gid of `script_user`, for the pre-master hook (the runtime refuses a
    /// configuration whose user does not exist).
    script_user: Option<(u32, u32)>,
}

/// Parameters of the pure state machine from the configuration and the interface's
/// source address (`primary`).
fn params(cfg: &model::Instance, primary: IpAddr) -> Params {
    let clamp_u8 = |v: u32| v.min(u8::MAX as u32) as u8;
    Params {
        version: cfg.version,
        priority: cfg.priority,
        advert_int: cfg.advert_int,
        preempt: cfg.preempt,
        preempt_delay: cfg.preempt_delay,
        primary,
        start: match cfg.initial_state {
            model::InitialState::Master => StartHint::Master,
            model::InitialState::Backup => StartHint::Backup,
        },
        garp_repeat: clamp_u8(cfg.garp_repeat),
        garp_delay: cfg.garp_delay,
        garp_refresh: cfg.garp_refresh.unwrap_or(Duration::ZERO),
        garp_refresh_repeat: 1,
        // Set only for the daemon's first start (Vrrp::start_inst).
        startup_delay: Duration::ZERO,
        link_down_delay: cfg.link_down_delay,
        link_up_delay: cfg.link_up_delay,
        pre_master_timeout: cfg.pre_master_command().map(|_| cfg.pre_master_timeout),
        in_step: cfg.dual_stack,
        // What must run on one router at a time waits for a preempted master's resign.
        await_resign: !cfg.notify.master_services.is_empty()
            || !cfg.notify.master_interfaces.is_empty(),
    }
}

/// One line when a router starts or ends waiting for a preempted master's resign, and when
/// it resigns itself (`vrrp::instance`, "Preemption").
fn log_resign<U>(
    inst: &Inst<U>,
    awaited: Option<(IpAddr, Instant)>,
    input: Input,
    actions: &[Action],
    now: Instant,
) {
    let name = inst.cfg.name.as_str();
    match (awaited, inst.fsm.awaiting_resign()) {
        (None, Some((from, until))) => info!(target: name,
            "services wait for {from} to resign (at most {} s)",
            crate::config::schema::format_duration(until.saturating_duration_since(now))),
        (Some((from, _)), None) if inst.fsm.state() == State::Master => match input {
            Input::AdvertReceived(a) if a.priority == 0 => {
                info!(target: name, "{from} resigned: services start")
            }
            _ => info!(target: name, "no resign from {from}: services start anyway"),
        },
        _ => {}
    }
    if input == Input::ServicesStopped && actions.contains(&Action::SendAdvert { priority: 0 }) {
        info!(target: name, "services stopped: resigning with a priority-0 advert");
    }
}

/// The routers of the configured instances: each instance's own (its IPv4 one when
/// dual-stack) in config order, then the IPv6 router of each dual-stack instance, with the
/// index of its IPv4 router. A router's config is its instance's with the VIPs of its family:
/// the IPv4 router also carries the excluded VIPs, the routes and the rules (one router
/// installs them).
fn routers(cfg: &Config) -> Vec<(Arc<model::Instance>, Option<usize>)> {
    let mut out: Vec<(Arc<model::Instance>, Option<usize>)> = Vec::new();
    let mut twins = Vec::new();
    for (i, c) in cfg.instances.iter().enumerate() {
        if !c.dual_stack {
            out.push((c.clone(), None));
            continue;
        }
        let mut v4 = model::Instance::clone(c);
        v4.vips
            .retain(|v| v.excluded || Family::of(&v.addr) == Family::Ipv4);
        let mut v6 = model::Instance::clone(c);
        v6.family = Family::Ipv6;
        v6.vips
            .retain(|v| !v.excluded && Family::of(&v.addr) == Family::Ipv6);
        v6.routes.clear();
        v6.backup_routes.clear();
        v6.rules.clear();
        v6.backup_rules.clear();
        out.push((Arc::new(v4), None));
        twins.push((Arc::new(v6), Some(i)));
    }
    let n = out.len();
    for (k, (_, pair)) in twins.iter().enumerate() {
        if let Some(p) = *pair {
            out[p].1 = Some(n + k);
        }
    }
    out.extend(twins);
    out
}

fn unspecified(f: Family) -> IpAddr {
    match f {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// What changed between two configurations of one instance decides how a reload applies it.
fn needs_restart(old: &model::Instance, new: &model::Instance) -> bool {
    old.interface != new.interface
        || old.vrid != new.vrid
        || old.family != new.family
        || old.dual_stack != new.dual_stack
        || old.version != new.version
        || old.vips != new.vips
        || old.use_vmac != new.use_vmac
        || old.vmac_name != new.vmac_name
        || old.unicast_peers != new.unicast_peers
        || old.unicast_src != new.unicast_src
}

impl<S: Southbound> Vrrp<S> {
    /// The instances of `cfg` on `south`, not started yet ([`Self::start`]).
    pub fn new(cfg: &Config, south: S) -> Vrrp<S> {
        let mut v = Vrrp {
            south,
            ifaces: Vec::new(),
            insts: Vec::new(),
            configured: cfg.instances.len(),
            groups: Vec::new(),
            drop_log: RateLimiter::new(Duration::from_secs(
                cfg.globals.log_suppress.as_secs().max(1),
            )),
            auth_log: RateLimiter::new(Duration::from_secs(
                cfg.globals.log_suppress.as_secs().max(1),
            )),
            rx: Box::new([0; RX_BUF]),
            tx: [0; TX_BUF],
            transitions: heapless::Deque::new(),
            priority_changes: heapless::Deque::new(),
            sync_reports: heapless::Deque::new(),
            vip_removal_deferred: false,
            lease_batch: Vec::new(),
            startup_delay: cfg.globals.startup_delay,
            startup_until: None,
            last_restore: None,
            restore_log: RateLimiter::new(VIP_RESTORE_LOG),
            rng: crate::sys::clock::now().total_micros() ^ (u64::from(std::process::id()) << 32)
                | 1,
            script_user: crate::daemon::notify::script_user(cfg).ok().flatten(),
        };
        for (c, pair) in routers(cfg) {
            let mut inst = v.make_inst(&c);
            inst.pair = pair;
            v.insts.push(inst);
        }
        v.build_groups(cfg);
        v
    }

    /// The sync groups of `cfg` (a dual-stack member brings both its routers), then a group
    /// for each dual-stack pair in no sync group. Sets every router's `group`.
    fn build_groups(&mut self, cfg: &Config) {
        let n = cfg.instances.len().min(self.insts.len());
        self.groups = cfg
            .sync_groups
            .iter()
            .map(|g| {
                let mut members = g.members.clone();
                members.extend(g.members.iter().filter_map(|&m| self.insts.get(m)?.pair));
                (SyncGroup::new(members.len()), members)
            })
            .collect();
        for i in 0..n {
            if let (Some(p), None) = (self.insts[i].pair, cfg.instances[i].sync_group) {
                self.groups.push((SyncGroup::new(2), vec![i, p]));
            }
        }
        for inst in self.insts.iter_mut() {
            inst.group = None;
        }
        for (g, (_, members)) in self.groups.iter().enumerate() {
            for &m in members {
                if let Some(inst) = self.insts.get_mut(m) {
                    inst.group = Some(g);
                }
            }
        }
    }

    /// The configured instance a router belongs to (the config index of a dual-stack
    /// instance for its IPv6 router).
    fn owner(&self, i: usize) -> usize {
        if i < self.configured {
            i
        } else {
            self.insts.get(i).and_then(|s| s.pair).unwrap_or(i)
        }
    }

    fn iface_index(&mut self, name: &str) -> usize {
        match self.ifaces.iter().position(|i| i.name == name) {
            Some(i) => i,
            None => {
                self.ifaces.push(Iface::new(name));
                self.ifaces.len() - 1
            }
        }
    }

    fn make_inst(&mut self, c: &std::sync::Arc<model::Instance>) -> Inst<S::Unicast> {
        let iface = self.iface_index(&c.interface);
        let mut addrs = AddrList::new();
        // Excluded VIPs are installed on the master but never advertised.
        for vip in c.vips.iter().filter(|v| !v.excluded) {
            // The config layer caps VIPs at MAX_VIPS = wire::MAX_ADDRS.
            let _ = addrs.push(vip.addr);
        }
        let auth = match (&c.auth, c.version) {
            // RFC 5798 removed authentication: v3 adverts carry none.
            (model::Auth::Pass(p), VrrpVersion::V2) => {
                Auth::simple(p.as_bytes()).unwrap_or(Auth::None)
            }
            _ => Auth::None,
        };
        let own = VrrpRepr {
            version: c.version,
            vrid: c.vrid,
            priority: c.priority,
            // The field's unit: v2 whole seconds (RFC 3768 5.3.7), v3 centiseconds (RFC 5798
            // 5.2.7); validation keeps advert_int within both.
            adver_int: match c.version {
                VrrpVersion::V2 => c.advert_int.as_secs() as u16,
                VrrpVersion::V3 => c.advert_int_centis(),
            },
            auth,
            addrs,
        };
        let checksum = match c.v3_checksum {
            model::V3Checksum::Pseudo => ChecksumMode::PseudoHeader,
            model::V3Checksum::Rfc9568 => ChecksumMode::VrrpOnly,
        };
        Inst {
            fsm: Instance::new(params(c, unspecified(c.family))),
            cfg: std::sync::Arc::clone(c),
            iface,
            own,
            checksum,
            vmac: None,
            unicast: None,
            vips_installed: false,
            routes_installed: false,
            backup_routes_installed: false,
            vip_refreshed: None,
            link_ok: false,
            adj: Adjustment::default(),
            drops: DropCounters::new(),
            auth: c.auth_hmac.as_ref().map(|_| Box::default()),
            hook: None,
            end_hold: false,
            last_transition: None,
            pair: None,
            group: None,
            announced: State::Init,
            moved: State::Init,
            restore_pending: false,
            vips_restored: 0,
            ra: (c.ra.is_some() && c.family == Family::Ipv6).then(Box::default),
        }
    }

    /// Open sockets, clear what a crashed earlier run left behind, start every instance.
    pub fn start(&mut self, ctx: &mut Ctx, now: Instant) {
        if !self.startup_delay.is_zero() {
            info!(
                "startup_delay: instances stay in INIT for {}",
                crate::config::schema::format_duration(self.startup_delay)
            );
        }
        self.startup_until = Some(now + self.startup_delay);
        for i in 0..self.ifaces.len() {
            self.refresh_iface(ctx, i);
        }
        for i in 0..self.insts.len() {
            self.start_inst(ctx, i, now);
        }
    }

    fn start_inst(&mut self, ctx: &mut Ctx, i: usize, now: Instant) {
        self.remove_stale_vips(i);
        self.setup_inst_sockets(i);
        let primary = self.source_addr(i);
        let inst = &mut self.insts[i];
        inst.link_ok = primary.is_some() && self.ifaces[inst.iface].up;
        let mut prm = match primary {
            Some(p) => params(&inst.cfg, p),
            None => *inst.fsm.params(),
        };
        prm.startup_delay = self
            .startup_until
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        inst.fsm = Instance::new(prm);
        if inst.adj != Adjustment::default() {
            let adj = inst.adj;
            self.feed(ctx, i, Input::Trackers(adj), now);
        }
        self.feed(ctx, i, Input::Startup, now);
        if !self.insts[i].link_ok {
            self.feed(ctx, i, Input::InterfaceDown, now);
        }
    }

    /// Feed one input to router `i` (an instance's own, or a dual-stack instance's IPv6
    /// router; outside this part, [`Self::feed_instance`]) and carry out what it asks
    /// (adverts, VIPs, GARPs, in the order the state machine returns them); then keep its
    /// loop timer at its next deadline, and leave its new state for its sync group
    /// ([`Self::settle_sync_groups`]).
    fn feed(&mut self, ctx: &mut Ctx, i: usize, input: Input, now: Instant) {
        let Some(inst) = self.insts.get_mut(i) else {
            return;
        };
        let before = inst.fsm.priority();
        let awaited = inst.fsm.awaiting_resign();
        let actions = inst.fsm.handle(now, input);
        let after = inst.fsm.priority();
        log_resign(inst, awaited, input, &actions, now);
        // Told once per configured instance: a dual-stack one by its owner router.
        if after != before
            && i < self.configured
            && self.priority_changes.push_back((i as u16, after)).is_err()
        {
            let _ = self.priority_changes.pop_front();
            let _ = self.priority_changes.push_back((i as u16, after));
        }
        for a in actions {
            self.act(i, a, now);
        }
        if self.insts[i].ra.is_some() {
            self.arm_ra(ctx);
        }
        let inst = &self.insts[i];
        let timer = Part::Vrrp.timer(i as u32);
        match inst.fsm.next_deadline() {
            Some(at) => {
                if let Err(e) = ctx.arm(timer, at) {
                    error!("{}: {e}", inst.cfg.name);
                }
            }
            None => {
                ctx.cancel(timer);
            }
        }
        // A resign changes no state: nothing for the group.
        if inst.group.is_some() && !matches!(input, Input::Shutdown | Input::ServicesStopped) {
            let report = SyncReport {
                inst: i as u16,
                state: inst.fsm.state(),
                own_fault: inst.fsm.own_fault(),
                wants_master: inst.fsm.wants_master(),
            };
            if self.sync_reports.push_back(report).is_err() {
                warn!(target: &inst.cfg.name, "sync group backlog full: state change not shared");
            }
        }
        self.arm_vip_refresh(ctx);
        if core::mem::take(&mut self.insts[i].end_hold) {
            self.feed(ctx, i, Input::PreMasterDone, now);
        }
        self.release_twin(ctx, i, now);
    }

    /// keepalived's sync groups (no RFC): members move together. Each member report (in the
    /// order the inputs were handled) goes to its group, which answers with commands for the
    /// other members; feeding those adds their reports, until the group is quiet.
    pub fn settle_sync_groups(&mut self, ctx: &mut Ctx, now: Instant) {
        for _ in 0..SYNC_ROUNDS {
            let Some(r) = self.sync_reports.pop_front() else {
                return;
            };
            let i = usize::from(r.inst);
            let Some(g) = self.insts.get(i).and_then(|s| s.group) else {
                continue;
            };
            let Some((group, members)) = self.groups.get_mut(g) else {
                continue;
            };
            let Some(k) = members.iter().position(|&m| m == i) else {
                continue;
            };
            // Resolve the group's member positions to instance indices before feeding them
            // (feeding borrows self mutably); fixed-size, so the steady state stays
            // allocation-free.
            let targets: heapless::Vec<(usize, SyncCommand), { sync_group::MAX_MEMBERS }> = group
                .update_wanting(k, r.state, r.own_fault, r.wants_master)
                .into_iter()
                .filter_map(|(m, cmd)| members.get(m).map(|&t| (t, cmd)))
                .collect();
            for (target, cmd) in targets {
                self.feed(ctx, target, Input::Sync(cmd), now);
            }
        }
        if !self.sync_reports.is_empty() {
            warn!("sync groups did not settle after {SYNC_ROUNDS} reports; dropping the rest");
            self.sync_reports.clear();
        }
    }

    fn act(&mut self, i: usize, a: Action, now: Instant) {
        match a {
            Action::SendAdvert { priority } => self.send_advert(i, priority),
            Action::AddVips => self.add_vips(i, now),
            // While stopping, after every instance's priority-0 advert (`stop_insts`).
            Action::RemoveVips if self.vip_removal_deferred => {}
            Action::RemoveVips => self.remove_vips(i),
            Action::Announce { count } => self.announce(i, count),
            Action::RunPreMaster => self.run_pre_master(i, now),
            Action::StopPreMaster => self.stop_pre_master(i, now),
            // The state machine pushes Notify right after the Transition it announces, or
            // for a held MASTER when the pre-master hold ends: the transition recorded then
            // (what the scripts get besides the state) goes to the notify stage now.
            Action::Notify(_) => {
                // A dual-stack instance is told as one: its IPv4 router keeps what was told.
                let o = self.owner(i);
                if let Some(mut t) = self.insts[i].last_transition.take().map(|t| *t) {
                    t.from = self.insts[o].announced;
                    self.insts[o].announced = t.to;
                    if self.transitions.is_full() {
                        self.transitions.pop_front();
                    }
                    let _ = self.transitions.push_back(t);
                }
            }
            Action::Transition { from, to, reason } => {
                // Backup routes follow the state; while stopping, `stop_insts` removes them
                // after every priority-0 advert is out.
                if to == State::Backup {
                    self.install_routes(i, RouteSet::Backup);
                } else if !self.vip_removal_deferred {
                    self.remove_routes(i, RouteSet::Backup);
                }
                let inst = &self.insts[i];
                let o = self.owner(i);
                if self.insts[o].pair.is_some() {
                    // A dual-stack instance: one line per family router, one announcement.
                    info!(target: &inst.cfg.name, "{}: {from} -> {to} ({reason})", inst.cfg.family.name());
                    if self.insts[o].moved == to {
                        // The other family's router announced it; nothing for notify.
                        self.insts[i].last_transition = None;
                        return;
                    }
                    self.insts[o].moved = to;
                } else {
                    info!(target: &inst.cfg.name, "{from} -> {to} ({reason})");
                }
                let inst = &self.insts[i];
                let t = Transition {
                    inst: o as u16,
                    from,
                    to,
                    reason,
                    priority: inst.fsm.priority(),
                    master: inst.fsm.master_address(),
                };
                self.insts[i].last_transition = Some(Box::new(t));
            }
        }
    }

    pub fn on_event(&mut self, ctx: &mut Ctx, ev: VrrpEvent, now: Instant) {
        match ev {
            // Matched now, not when read: a reload in between may have moved it.
            // RFC 5798 6.4.2 / 6.4.3: the timers an advert restarts count from its arrival.
            // Never later than `now`, the time of this turn.
            VrrpEvent::Advert { key, advert, at } => match self.instance_for(key) {
                Some(i) => {
                    let at = at.map_or(now, |t| t.min(now));
                    self.feed(ctx, i, Input::AdvertReceived(advert), at)
                }
                // Its instance left with a reload.
                None => self.count_drop(
                    DropOwner::Iface(key.iface),
                    DropReason::VridMismatch,
                    Some(advert.src),
                ),
            },
            VrrpEvent::RouterSolicit { iface } => self.on_router_solicit(ctx, iface, now),
        }
    }

    /// The instance with this key in the current table.
    fn instance_for(&self, key: InstanceKey) -> Option<usize> {
        self.insts.iter().position(|s| {
            s.iface == usize::from(key.iface)
                && s.cfg.vrid == key.vrid
                && s.cfg.family == key.family
        })
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx, i: usize, now: Instant) {
        if i == VIP_REFRESH_TIMER as usize {
            return self.vip_refresh(ctx, now);
        }
        if i == VIP_RESTORE_TIMER as usize {
            return self.restore_vips(now);
        }
        if i == RA_TIMER as usize {
            return self.ra_round(ctx, now);
        }
        self.feed(ctx, i, Input::Timer, now);
    }

    /// Tracker results for instance `i` (effective priority or FAULT), for each of its
    /// routers.
    pub fn set_trackers(&mut self, ctx: &mut Ctx, i: usize, adj: Adjustment, now: Instant) {
        let pair = self.insts.get(i).and_then(|s| s.pair);
        for r in core::iter::once(i).chain(pair) {
            let Some(inst) = self.insts.get_mut(r) else {
                return;
            };
            if inst.adj == adj {
                continue;
            }
            inst.adj = adj;
            self.feed(ctx, r, Input::Trackers(adj), now);
        }
    }

    /// An operator's input for configured instance `i` (both routers of a dual-stack one).
    pub fn feed_instance(&mut self, ctx: &mut Ctx, i: usize, input: Input, now: Instant) {
        let pair = self.insts.get(i).and_then(|s| s.pair);
        for r in core::iter::once(i).chain(pair) {
            self.feed(ctx, r, input, now);
        }
    }

    /// Graceful stop (RFC 5798 6.4.3 Shutdown): a master sends priority 0 and removes its
    /// VIPs, so a backup takes over after Skew_Time instead of Master_Down_Interval.
    ///
    /// Every master's priority-0 advert goes out before any VIP is removed: a backup's
    /// Skew_Time counts from that advert, and removing an instance's VIPs first (a netlink
    /// round trip per address) would hold back the adverts of the instances after it.
    pub fn shutdown(&mut self, ctx: &mut Ctx, now: Instant) {
        let all = 0..self.insts.len();
        self.stop_insts(ctx, all, now);
    }

    fn stop_insts(&mut self, ctx: &mut Ctx, which: core::ops::Range<usize>, now: Instant) {
        self.vip_removal_deferred = true;
        for i in which.clone() {
            // A member that stops does not take its group along (`feed` files no report).
            self.feed(ctx, i, Input::Shutdown, now);
        }
        self.vip_removal_deferred = false;
        for i in which {
            self.remove_vips(i);
            self.remove_routes(i, RouteSet::Backup);
            ctx.cancel(Part::Vrrp.timer(i as u32));
            if let Some(v) = self.insts[i].vmac.take() {
                let _ = self.south.delete_link(v);
            }
        }
    }

    /// Apply a new, already validated configuration. Instances whose settings did not change
    /// keep their state, timers and VIPs untouched; changes that the state machine can take
    /// (priority, interval, preemption...) are applied in place; the rest restart.
    pub fn reload(&mut self, ctx: &mut Ctx, cfg: &Config, now: Instant) {
        self.script_user = crate::daemon::notify::script_user(cfg).ok().flatten();
        let mut old: Vec<Option<Inst<S::Unicast>>> = core::mem::take(&mut self.insts)
            .into_iter()
            .map(Some)
            .collect();
        // Timers are re-armed below for the new indices.
        for i in 0..old.len() {
            ctx.cancel(Part::Vrrp.timer(i as u32));
        }
        let mut fresh: Vec<usize> = Vec::new();
        let mut changed: Vec<usize> = Vec::new();
        // Instances kept whose routes or rules changed, with the config of those now in
        // the kernel.
        let mut rerouted: Vec<(usize, Arc<model::Instance>)> = Vec::new();
        // Kept routers whose RAs the new config switches off, with the config they had.
        let mut ra_off: Vec<(usize, Arc<model::Instance>)> = Vec::new();
        let table = routers(cfg);
        self.configured = cfg.instances.len();
        // Which running router each new one continues, if any.
        let mut keep: Vec<Option<usize>> = table
            .iter()
            .map(|(c, _)| {
                old.iter().position(|o| {
                    o.as_ref().is_some_and(|o| {
                        o.cfg.name == c.name
                            && o.cfg.family == c.family
                            && !needs_restart(&o.cfg, c)
                    })
                })
            })
            .collect();
        // A dual-stack instance restarts as a whole: a fresh router beside a kept one would
        // announce BACKUP and MASTER again while the instance stayed MASTER.
        for (i, (_, pair)) in table.iter().enumerate() {
            if let Some(p) = *pair {
                if keep[i].is_none() || keep[p].is_none() {
                    keep[i] = None;
                    keep[p] = None;
                }
            }
        }
        for ((c, pair), kept) in table.iter().zip(keep) {
            let prev = kept.and_then(|k| old[k].take());
            match prev {
                Some(mut inst) => {
                    inst.pair = *pair;
                    if inst.cfg != *c {
                        let new = self.make_inst(c);
                        inst.own = new.own;
                        inst.checksum = new.checksum;
                        if inst.cfg.routes != c.routes
                            || inst.cfg.backup_routes != c.backup_routes
                            || inst.cfg.rules != c.rules
                            || inst.cfg.backup_rules != c.backup_rules
                        {
                            rerouted.push((self.insts.len(), inst.cfg.clone()));
                        }
                        if c.ra.is_none() && inst.ra.is_some() {
                            ra_off.push((self.insts.len(), inst.cfg.clone()));
                        }
                        if c.ra.is_some() && c.family == Family::Ipv6 && inst.ra.is_none() {
                            let mut ra = Box::<crate::vrrp::ra::RaTimer>::default();
                            if inst.vips_installed {
                                ra.start(now);
                            }
                            inst.ra = Some(ra);
                        }
                        // Keys, mode and window change in place (key rotation causes no
                        // election); the senders' sequences and the counters stay.
                        match (&c.auth_hmac, &inst.auth) {
                            (Some(_), None) => inst.auth = Some(Box::default()),
                            (None, Some(_)) => inst.auth = None,
                            _ => {}
                        }
                        inst.cfg = c.clone();
                        changed.push(self.insts.len());
                    }
                    inst.iface = self.iface_index(&c.interface);
                    self.insts.push(inst);
                }
                None => {
                    let mut inst = self.make_inst(c);
                    inst.pair = *pair;
                    fresh.push(self.insts.len());
                    self.insts.push(inst);
                }
            }
        }
        for (i, was) in ra_off {
            self.final_ra(i, &was, self.insts.len());
            self.insts[i].ra = None;
        }
        // Instances gone from the config (or restarting with new identity) leave gracefully.
        let mut leaving: Vec<Inst<S::Unicast>> = old.into_iter().flatten().collect();
        for inst in leaving.iter_mut() {
            info!(target: &inst.cfg.name, "removed by reload");
        }
        self.retire(ctx, leaving, now);
        self.build_groups(cfg);
        for i in 0..self.insts.len() {
            if let Some(at) = self.insts[i].fsm.next_deadline() {
                let _ = ctx.arm(Part::Vrrp.timer(i as u32), at);
            }
        }
        self.arm_vip_refresh(ctx);
        for (i, old) in rerouted {
            self.replace_routes(i, old);
        }
        for i in changed {
            if let Some(src) = self.source_addr(i) {
                let p = params(&self.insts[i].cfg, src);
                if p != *self.insts[i].fsm.params() {
                    info!(target: &self.insts[i].cfg.name, "reconfigured in place");
                    self.feed(ctx, i, Input::ConfigChange(p), now);
                }
            }
        }
        for idx in 0..self.ifaces.len() {
            if self.ifaces[idx].listener.is_none() {
                self.refresh_iface(ctx, idx);
            }
        }
        for i in fresh {
            self.start_inst(ctx, i, now);
        }
        self.close_unused_ifaces(ctx);
        self.refresh_rx_filters();
        self.arm_ra(ctx);
    }

    fn retire(&mut self, ctx: &mut Ctx, leaving: Vec<Inst<S::Unicast>>, now: Instant) {
        // Run them through the normal path at the end of the table, then drop them.
        let base = self.insts.len();
        let n = leaving.len();
        for mut inst in leaving {
            // Past the table: its transitions name no configured instance (dropped below).
            inst.group = None;
            inst.pair = None;
            self.insts.push(inst);
        }
        for i in base..base + n {
            let was = Arc::clone(&self.insts[i].cfg);
            self.final_ra(i, &was, base);
        }
        self.stop_insts(ctx, base..base + n, now);
        self.insts.truncate(base);
        // Their last transitions name table positions that now belong to other instances
        // (or to none): notify would run the wrong instance's scripts. They leave unannounced,
        // their notify settings went with the old configuration.
        for _ in 0..self.transitions.len() {
            if let Some(t) = self.transitions.pop_front() {
                if usize::from(t.inst) < base {
                    let _ = self.transitions.push_back(t);
                }
            }
        }
        for _ in 0..self.priority_changes.len() {
            if let Some(c) = self.priority_changes.pop_front() {
                if usize::from(c.0) < base {
                    let _ = self.priority_changes.push_back(c);
                }
            }
        }
    }

    /// Transitions since the last call, oldest first (for notify scripts).
    pub fn take_transition(&mut self) -> Option<Transition> {
        self.transitions.pop_front()
    }

    /// The next change of effective priority: instance, priority, the master it knows.
    pub fn take_priority_change(&mut self) -> Option<(usize, u8, Option<IpAddr>)> {
        let (i, p) = self.priority_changes.pop_front()?;
        let master = self
            .insts
            .get(usize::from(i))
            .and_then(|s| s.fsm.master_address());
        Some((usize::from(i), p, master))
    }

    pub fn instance_name(&self, i: usize) -> &str {
        self.insts
            .get(i)
            .map(|s| s.cfg.name.as_str())
            .unwrap_or("?")
    }

    /// The kernel side, for a test that drives the part on a fake.
    pub fn southbound_mut(&mut self) -> &mut S {
        &mut self.south
    }

    /// The netlink port our address requests come from ([`Southbound::netlink_port`]).
    pub fn netlink_port(&self) -> Option<u32> {
        self.south.netlink_port()
    }

    /// Configured instances (a dual-stack one counts once).
    /// Routers of all instances (a dual-stack instance has two), the range of timer indexes.
    pub fn slot_count(&self) -> usize {
        self.insts.len()
    }

    pub fn instance_count(&self) -> usize {
        self.configured.min(self.insts.len())
    }

    /// Family routers (a dual-stack instance has two): the timers `Part::Vrrp.timer(i)`
    /// in use are below this (and `VIP_REFRESH_TIMER`).
    pub fn router_count(&self) -> usize {
        self.insts.len()
    }

    /// SIGUSR1: one line per instance and one per interface, each with its drop counters
    /// (the interface's: frames no instance could be told, and the kernel's own counts).
    pub fn dump(&mut self) {
        for inst in &self.insts {
            let c = inst.fsm.counters();
            // A dual-stack instance has a line per family router.
            let family = if inst.cfg.dual_stack {
                inst.cfg.family.name()
            } else {
                ""
            };
            info!(target: &inst.cfg.name,
                "{family}{}{} prio {} on {} vrid {} vips {} master_adver_int {} ms rx {} tx {} discarded {} transitions {} dropped:{}",
                if family.is_empty() { "" } else { " " },
                inst.fsm.state(), inst.fsm.priority(), inst.cfg.interface, inst.cfg.vrid,
                inst.cfg.vips.len(), inst.fsm.master_adver_interval().as_millis() as u64,
                c.adverts_rx, c.adverts_tx, c.adverts_discarded, c.transitions,
                drop_list(&inst.drops).as_str());
        }
        for idx in 0..self.ifaces.len() {
            self.add_kernel_stats(idx);
            let ifc = &self.ifaces[idx];
            info!(target: &ifc.name,
                "kernel_delivered {} kernel_overflow {} dropped:{}",
                ifc.kernel.delivered, ifc.kernel.overflow, drop_list(&ifc.drops).as_str());
        }
    }

    /// One instance as `minivrrp status` shows it (daemon/control.rs).
    pub fn instance_view(&self, i: usize) -> Option<InstanceView<'_>> {
        let pair = self.insts.get(i)?.pair.and_then(|p| self.insts.get(p));
        self.insts.get(i).map(|s| InstanceView {
            cfg: &s.cfg,
            fsm: &s.fsm,
            vips_installed: s.vips_installed,
            vips_restored: s.vips_restored,
            ra: s.ra.as_deref(),
            pre_master_running: s.fsm.pre_master_held()
                || pair.is_some_and(|p| p.fsm.pre_master_held()),
            drops: &s.drops,
            auth: s.auth.as_deref().map(|a| &a.counts),
            ipv6: pair.map(|p| RouterView {
                cfg: &p.cfg,
                fsm: &p.fsm,
                vips_installed: p.vips_installed,
                vips_restored: p.vips_restored,
                ra: p.ra.as_deref(),
                drops: &p.drops,
                auth: p.auth.as_deref().map(|a| &a.counts),
            }),
        })
    }

    /// Frames that reached no instance (malformed, unknown VRID, our own...), by reason,
    /// summed over interfaces.
    pub fn iface_drops(&self) -> DropCounters {
        let mut drops = DropCounters::new();
        for ifc in &self.ifaces {
            drops.add(&ifc.drops);
        }
        drops
    }
}

/// One instance as `minivrrp status` shows it.
pub struct InstanceView<'a> {
    pub cfg: &'a model::Instance,
    pub fsm: &'a Instance,
    /// The VIPs are on the interface now (added by us).
    pub vips_installed: bool,
    /// VIPs deleted under this master and added back.
    pub vips_restored: u32,
    /// Its Router Advertisements (`option ra`), with their counters.
    pub ra: Option<&'a crate::vrrp::ra::RaTimer>,
    /// MASTER with the VIPs held for the pre-master hook, which is still running.
    pub pre_master_running: bool,
    /// Adverts for this instance dropped by the receive policy, by reason.
    pub drops: &'a DropCounters,
    /// `auth_hmac` outcome counters, when the instance has it.
    pub auth: Option<&'a AuthCounters>,
    /// The IPv6 router of a dual-stack instance (the fields above are its IPv4 router's).
    pub ipv6: Option<RouterView<'a>>,
}

/// One family's router of a dual-stack instance.
pub struct RouterView<'a> {
    /// The instance's config with this family's VIPs.
    pub cfg: &'a model::Instance,
    pub fsm: &'a Instance,
    pub vips_installed: bool,
    pub vips_restored: u32,
    pub ra: Option<&'a crate::vrrp::ra::RaTimer>,
    pub drops: &'a DropCounters,
    pub auth: Option<&'a AuthCounters>,
}

/// ` reason=n ...` for the non-zero counters, or ` none`.
fn drop_list(d: &DropCounters) -> heapless::String<512> {
    let mut line = heapless::String::<512>::new();
    for (reason, n) in d.iter().filter(|(_, n)| *n > 0) {
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!(" {}={}", reason.as_str(), n));
    }
    if line.is_empty() {
        let _ = line.push_str(" none");
    }
    line
}

#[cfg(test)]
mod size_budget {
    /// Memory per instance: 255 instances on one interface are a supported configuration,
    /// and each costs this entry (its settings are shared with the running config, not
    /// copied: that was 560 more bytes). The budget pins today's size (1152 bytes on
    /// 64-bit: 936, then the dual-stack pair and group and the pre-master hook's state, with
    /// the pending transition boxed, then five drop counters for impossible advert sources,
    /// then the boxed `auth_hmac` state and its drop counter, then the state machine's wait
    /// for a preempted master's resign, 40 bytes)
    /// so that a new inline table or counter block cannot make every instance heavier
    /// unnoticed.
    #[test]
    fn an_instance_stays_within_its_per_instance_budget() {
        let size = core::mem::size_of::<super::Inst<crate::sys::packet::RawIpSocket>>();
        assert!(
            size <= 1152,
            "daemon Inst grew to {size} bytes (budget 1152)"
        );
    }
}
