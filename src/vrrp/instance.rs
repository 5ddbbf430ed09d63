//! One VRRP instance (virtual router) as a pure state machine: RFC 5798 section 6.4
//! (VRRPv3) and RFC 3768 section 6.4 (VRRPv2), plus keepalived's `nopreempt`,
//! `preempt_delay`, initial `state` hint and gratuitous ARP / NA timing.
//!
//! # Driving it
//! `handle(now, input) -> Actions` is the only entry point. It never reads a clock, never
//! allocates, never panics on input.
//!
//! # Timer model
//! The instance owns its timers (Adver_Timer, Master_Down_Timer, the delayed second
//! gratuitous-ARP burst and the periodic refresh). There are no ArmTimer/CancelTimer
//! actions: after every `handle()` the loop asks [`Instance::next_deadline`] and, when that
//! instant is reached, calls `handle(now, Input::Timer)`. The instance then runs everything
//! that is due at `now`. Calling `Input::Timer` early is harmless (nothing is due, nothing
//! happens); calling it late runs the overdue timers once.
//!
//! # The pre-master hold
//! With [`Params::pre_master_timeout`] set (the daemon's `notify_pre_master` hook, e.g.
//! `conntrackd -c`), becoming MASTER is split in two. At once: the advert (RFC 5798 6.4.2:
//! a master that stayed silent would let a second backup take over too), Adver_Timer, the
//! transition, and [`Action::RunPreMaster`]. Held back until [`Input::PreMasterDone`] (the
//! hook exited) or the timeout: the VIPs, the gratuitous ARPs / unsolicited NAs and their
//! timers, and the `Notify(Master)` that runs notify_master. At the timeout the instance asks
//! for [`Action::StopPreMaster`] first. Leaving MASTER during the hold asks for
//! `StopPreMaster` instead of `RemoveVips`: nothing was installed. The hold is a sub-state
//! of MASTER (see [`Instance::pre_master_held`]) rather than a fifth state, because towards
//! the network it is MASTER in every respect the RFC defines.
//!
//! # Preemption: the services wait for the old master's resign
//! A preemption moves the VIPs at once (that is VRRP's job), but what follows the role
//! (`master_service`, `master_interface`) must not run on the new and the old master at the
//! same time, and both learn of the change from the same advert. So, with
//! [`Params::await_resign`], a router that preempts a lower-priority master it still heard
//! (6.4.2, the Master_Down_Timer fires while that master's adverts were being discarded)
//! becomes MASTER as usual (advert, VIPs, gratuitous ARPs) but holds back `Notify(Master)`
//! until that master resigns: a priority-0 advert from its address. The preempted master
//! sends it once its services are stopped (6.4.3: it yielded to the higher priority and is
//! BACKUP; [`Input::ServicesStopped`] from the daemon's notify queue). A peer that does not
//! resign (keepalived, FRR: they send priority 0 only on shutdown) is waited for at most
//! Master_Down_Interval, the time 6.4.2 gives a silent master.
//!
//! A priority-0 advert from a router that is no longer master is within what 6.4.2/6.4.3
//! already handle: the new master answers it at once with its own advert (6.4.3, as
//! keepalived and FRR masters do), which sets any third router's Master_Down_Timer back from
//! Skew_Time to Master_Down_Interval before it fires.
//!
//! # Inputs the daemon converts
//! The wire layer's parsed advertisement is converted by the daemon into the minimal
//! [`Advert`] defined here (source address, priority, advertisement interval), so this file
//! does not depend on the wire format.

use core::fmt;
use core::net::IpAddr;

use crate::base::{Duration, Instant};
use crate::vrrp::priority::{self, Adjustment, Effective};

/// Capacity of [`Actions`]. The largest burst is a version change (shutdown + startup).
pub const MAX_ACTIONS: usize = 12;

/// What one `handle()` call asks the daemon to do, in order.
pub type Actions = heapless::Vec<Action, MAX_ACTIONS>;

/// The protocol version is the wire layer's: one type from the config to the packet.
pub use super::wire::Version;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Init,
    Backup,
    Master,
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// keepalived's `state` keyword: the initial state hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartHint {
    /// Start as BACKUP and wait Master_Down_Interval (RFC behaviour).
    Backup,
    /// Become MASTER at startup without waiting, as keepalived does with `state MASTER`.
    /// If a better router is already master, its next advertisement demotes us (6.4.3).
    Master,
}

/// Configuration of one instance. Produced by the config layer; the daemon converts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub version: Version,
    /// Configured (base) priority, 1..=255; 255 means address owner.
    pub priority: u8,
    /// Advertisement_Interval (v2: whole seconds; v3: centiseconds on the wire).
    pub advert_int: Duration,
    /// Preempt_Mode. `false` is keepalived's `nopreempt`.
    pub preempt: bool,
    /// keepalived `preempt_delay`: after startup (and after leaving FAULT) a backup does not
    /// preempt a lower-priority master until this much time has passed.
    pub preempt_delay: Duration,
    /// Our primary address on the interface: the advert source, and the tie-break key.
    pub primary: IpAddr,
    pub start: StartHint,
    /// Gratuitous ARP / unsolicited NA packets per burst (keepalived `garp_master_repeat`).
    pub garp_repeat: u8,
    /// Delay of the second burst after becoming master (`garp_master_delay`); zero: none.
    pub garp_delay: Duration,
    /// Period of refresh bursts while master (`garp_master_refresh`); zero: none.
    pub garp_refresh: Duration,
    /// Packets per refresh burst (`garp_master_refresh_repeat`).
    pub garp_refresh_repeat: u8,
    /// keepalived `vrrp_startup_delay`: after the Startup event the instance stays in
    /// Initialize this long (sends nothing, discards adverts), then starts as 6.4.1 says.
    pub startup_delay: Duration,
    /// keepalived `interface_up_down_delays`: a change of the interface's link state is
    /// believed only when it lasted this long (down / up); a link that comes back within
    /// the delay causes no transition at all.
    pub link_down_delay: Duration,
    pub link_up_delay: Duration,
    /// With a pre-master hook: the longest the VIPs wait for it after becoming MASTER (see
    /// the module docs). `None`: no hook, the VIPs go on at once.
    pub pre_master_timeout: Option<Duration>,
    /// One family's router of an instance that advertises IPv4 and IPv6 VIPs (two VRRPv3
    /// routers with one VRID, kept in step by their group, `sync_group.rs`): when its
    /// Master_Down_Timer fires it does not take over alone but waits in BACKUP, wanting
    /// mastership ([`Instance::wants_master`]), until the group sends `SyncCommand::Master`
    /// because the other family's router wants it too. A router that still hears a master
    /// on its family so keeps both families BACKUP, instead of the pair flapping between
    /// one family's silence and the other's master.
    pub in_step: bool,
    /// After preempting a lower-priority master that was still advertising, hold
    /// `Notify(Master)` (the role-following services and the notify commands) until that
    /// master resigns with a priority-0 advert, at most Master_Down_Interval (module docs,
    /// "Preemption"). The daemon sets it for instances with `master_service` or
    /// `master_interface`.
    pub await_resign: bool,
}

impl Params {
    /// Defaults matching keepalived's: v3, 1 s, preempt on, 5 GARPs now and 5 after 5 s.
    pub fn new(primary: IpAddr, priority: u8) -> Params {
        Params {
            version: Version::V3,
            priority,
            advert_int: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            primary,
            start: StartHint::Backup,
            garp_repeat: 5,
            garp_delay: Duration::from_secs(5),
            garp_refresh: Duration::ZERO,
            garp_refresh_repeat: 1,
            startup_delay: Duration::ZERO,
            link_down_delay: Duration::ZERO,
            link_up_delay: Duration::ZERO,
            pre_master_timeout: None,
            in_step: false,
            await_resign: false,
        }
    }
}

/// The part of a received advertisement the state machine needs. The daemon converts the
/// wire layer's parsed packet into this after the RFC 5798 7.1 receive checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert {
    pub src: IpAddr,
    pub priority: u8,
    /// Max Adver Int from the packet (v3), or the v2 Adver Int in seconds.
    pub advert_int: Duration,
}

/// Commands from a sync group (see `sync_group.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncCommand {
    /// Another member is in FAULT: hold this one in FAULT too.
    Fault,
    /// No member is faulty any more: release the hold.
    ReleaseFault,
    /// Another member left MASTER for BACKUP: follow it.
    Backup,
    /// Another member became MASTER, or every member of an in-step pair wants mastership
    /// (`Params::in_step`): take it.
    Master,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// RFC 5798 6.4.1 Startup event.
    Startup,
    AdvertReceived(Advert),
    /// Some timer may be due (see the module docs: the instance knows which).
    Timer,
    InterfaceUp,
    InterfaceDown,
    /// Tracker state changed: the summed weights and fault flag from `priority::adjustment`.
    Trackers(Adjustment),
    /// New configuration; applied with the smallest change that gets there.
    ConfigChange(Params),
    Sync(SyncCommand),
    /// RFC 5798 6.4.2/6.4.3 Shutdown event.
    Shutdown,
    /// Operator maintenance mode: `true` hands mastership over like a Shutdown (priority-0
    /// advert, VIPs removed) but stays BACKUP, never taking over, until `false`.
    Maintenance(bool),
    /// Operator override of the base priority (`None` = the configured one again); the
    /// trackers still adjust it. Applied at once like a priority change in the config.
    PriorityOverride(Option<u8>),
    /// Operator asks for the gratuitous ARPs / unsolicited NAs now (only a MASTER sends).
    Announce,
    /// The pre-master hook exited (whatever its status): a held MASTER takes its addresses.
    /// Ignored when nothing is held (a late report after the instance moved on).
    PreMasterDone,
    /// The services and interfaces of the MASTER role this router left are stopped (its
    /// notify queue got past their stop jobs, or killed them at `notify_timeout`). A router
    /// preempted by a higher priority (6.4.3) now resigns with one priority-0 advert, so the
    /// new master starts its own (module docs, "Preemption"). Ignored otherwise.
    ServicesStopped,
}

/// Why the instance is (or was put) in FAULT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultCause {
    InterfaceDown,
    Tracker,
    SyncGroup,
}

/// Why a transition happened; `Display` gives the human sentence logged and passed to
/// notify scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Priority 255 at startup (6.4.1).
    AddressOwner,
    /// Non-owner startup (6.4.1).
    Startup,
    /// `state MASTER` hint at startup.
    StartHintMaster,
    /// Master_Down_Timer fired after Master_Down_Interval (6.4.2).
    MasterDown {
        interval: Duration,
    },
    /// Master_Down_Timer fired after Skew_Time, set by a priority-0 advert (6.4.2).
    MasterReleased {
        skew: Duration,
    },
    /// Master_Down_Timer fired while we were discarding a lower-priority master's adverts.
    Preempting {
        priority: u8,
        from: IpAddr,
    },
    /// Master saw a higher priority (6.4.3).
    HigherPriority {
        priority: u8,
        from: IpAddr,
    },
    /// Master saw an equal priority from a higher primary address (6.4.3).
    HigherAddress {
        priority: u8,
        from: IpAddr,
    },
    Fault(FaultCause),
    FaultCleared,
    /// A sync group moved us along with another member.
    SyncGroup,
    /// Shutdown event (6.4.2/6.4.3).
    Shutdown,
    /// A configuration change that needs a restart (protocol version).
    Reconfigured,
    /// Operator maintenance mode handed mastership over.
    Maintenance,
}

/// Seconds with two decimals, e.g. `3.61 s`, without floating point.
struct Secs(Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // In u64 (as_micros is u128, whose division and Display cost 3 KB on 32-bit routers).
        let rounded = u64::from((self.0.subsec_micros() + 5_000) / 10_000);
        let cs = self.0.as_secs().saturating_mul(100).saturating_add(rounded);
        write!(f, "{}.{:02} s", cs / 100, cs % 100)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::AddressOwner => f.write_str("address owner (priority 255) at startup"),
            Reason::Startup => f.write_str("startup"),
            Reason::StartHintMaster => f.write_str("initial state MASTER"),
            Reason::MasterDown { interval } => {
                write!(f, "master down timer expired ({})", Secs(interval))
            }
            Reason::MasterReleased { skew } => {
                write!(
                    f,
                    "master sent priority 0, skew time expired ({})",
                    Secs(skew)
                )
            }
            Reason::Preempting { priority, from } => {
                write!(f, "preempting lower priority {priority} from {from}")
            }
            Reason::HigherPriority { priority, from } => {
                write!(f, "higher priority {priority} from {from}")
            }
            Reason::HigherAddress { priority, from } => {
                write!(f, "equal priority {priority} from higher address {from}")
            }
            Reason::Fault(FaultCause::InterfaceDown) => f.write_str("interface down"),
            Reason::Fault(FaultCause::Tracker) => f.write_str("tracked object failed"),
            Reason::Fault(FaultCause::SyncGroup) => f.write_str("sync group member in fault"),
            Reason::FaultCleared => f.write_str("fault cleared"),
            Reason::SyncGroup => f.write_str("following sync group"),
            Reason::Shutdown => f.write_str("shutdown"),
            Reason::Reconfigured => f.write_str("reconfigured (version changed)"),
            Reason::Maintenance => f.write_str("maintenance mode"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send one advertisement with this priority (0 = releasing mastership).
    SendAdvert { priority: u8 },
    /// Install the virtual addresses on the interface.
    AddVips,
    /// Remove the virtual addresses.
    RemoveVips,
    /// Send `count` gratuitous ARPs (IPv4) / unsolicited NAs (IPv6) for every VIP.
    Announce { count: u8 },
    /// Run notify scripts / update status for the new state (the last `Transition`'s; for a
    /// held MASTER it comes when the hold ends).
    Notify(State),
    /// Start the pre-master hook; the VIPs are held until [`Input::PreMasterDone`] or the
    /// timeout (module docs).
    RunPreMaster,
    /// Kill the pre-master hook: it ran past its timeout, or the instance left MASTER.
    StopPreMaster,
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
}

/// A transition as the daemon records it for the parts that react to it (notify scripts,
/// e-mail, status): `inst` is the instance's index in the running configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub inst: u16,
    pub from: State,
    pub to: State,
    pub reason: Reason,
    /// The effective priority after the transition.
    pub priority: u8,
    /// The current master's address after the transition (ours as MASTER), if known.
    pub master: Option<IpAddr>,
}

/// Counters for status output; wrapping u32 (no 64-bit atomics anywhere).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub adverts_rx: u32,
    pub adverts_tx: u32,
    /// Adverts discarded by the state machine (lower priority, own address, bad interval).
    pub adverts_discarded: u32,
    pub priority_zero_rx: u32,
    pub priority_zero_tx: u32,
    pub transitions: u32,
}

/// What armed the Master_Down_Timer, to report the right reason when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DownCause {
    Interval,
    Skew,
}

#[derive(Clone, Debug)]
pub struct Instance {
    params: Params,
    state: State,
    adj: Adjustment,
    /// Effective priority (base adjusted by trackers); meaningless in FAULT.
    priority: u8,
    /// Master_Adver_Interval (learned from the master in v3 BACKUP).
    master_adver_int: Duration,
    iface_up: bool,
    sync_fault: bool,
    started: bool,
    /// Preemption of lower-priority masters is allowed from this instant (preempt_delay).
    preempt_from: Instant,
    adver_at: Option<Instant>,
    down_at: Option<Instant>,
    down_cause: DownCause,
    /// Last lower-priority master whose adverts we discarded (for the transition reason).
    lower_master: Option<(u8, IpAddr)>,
    /// When the master last answered an advert out of turn (a priority-0 advert, or
    /// another master it wins against): at most one such answer per
    /// Advertisement_Interval, so a flood of those adverts cannot make it a reflector.
    answered_at: Option<Instant>,
    garp_second_at: Option<Instant>,
    garp_refresh_at: Option<Instant>,
    /// While MASTER with the pre-master hook running: when the hold ends by timeout.
    held_until: Option<Instant>,
    /// Started but held in Initialize until then (`Params::startup_delay`).
    init_until: Option<Instant>,
    /// A link change not believed yet: the new state and when it will be
    /// (`Params::link_down_delay` / `link_up_delay`).
    link_pending: Option<(bool, Instant)>,
    counters: Counters,
    /// Operator control: maintenance mode (stay BACKUP) and base priority override.
    maintenance: bool,
    priority_override: Option<u8>,
    /// `now` of the input being handled, so a transition can record when it happened.
    clock: Instant,
    /// When and why the last transition happened (for status).
    last_change: Option<(Instant, Reason)>,
    /// The current master as far as we know: us as MASTER, the advertiser as BACKUP.
    master: Option<IpAddr>,
    /// `Params::in_step` only: the Master_Down_Timer fired (with this reason) and we wait
    /// in BACKUP for the group to let us take over.
    wants_master: Option<Reason>,
    /// MASTER after preempting a live lower-priority master (`Params::await_resign`): whose
    /// priority-0 advert releases `Notify(Master)`, and when it is released without one.
    resign_from: Option<(IpAddr, Instant)>,
    /// BACKUP after yielding to a higher priority (6.4.3): a priority-0 advert is owed once
    /// our services are stopped ([`Input::ServicesStopped`]).
    resign_owed: bool,
}

/// A v3 backup's Master_Adver_Interval is at least its own advert_int divided by this.
pub const MIN_LEARNED_INTERVAL_DIVISOR: u32 = 10;

/// RFC 5798 6.1 Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256 (v3);
/// RFC 3768 6.1 Skew_Time = (256 - Priority) / 256 seconds (v2).
pub fn skew_time(version: Version, priority: u8, master_adver_int: Duration) -> Duration {
    let base = match version {
        Version::V3 => master_adver_int,
        Version::V2 => Duration::from_secs(1),
    };
    let micros = base.as_micros() * (256 - u128::from(priority)) / 256;
    Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

/// RFC 5798 6.1 / RFC 3768 6.1: Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_int: Duration,
) -> Duration {
    master_adver_int.saturating_mul(3) + skew_time(version, priority, master_adver_int)
}

fn push(actions: &mut Actions, a: Action) {
    // Capacity is sized for the worst path; dropping rather than panicking if that is ever
    // wrong keeps the "never panic" rule, and a debug build still says so.
    debug_assert!(actions.len() < MAX_ACTIONS, "Actions capacity exceeded");
    let _ = actions.push(a);
}

impl Instance {
    pub fn new(params: Params) -> Instance {
        let priority = match priority::apply(params.priority, Adjustment::default()) {
            Effective::Priority(p) => p,
            Effective::Fault => params.priority,
        };
        Instance {
            params,
            state: State::Init,
            adj: Adjustment::default(),
            priority,
            master_adver_int: params.advert_int,
            iface_up: true,
            sync_fault: false,
            started: false,
            preempt_from: Instant::ZERO,
            adver_at: None,
            down_at: None,
            down_cause: DownCause::Interval,
            lower_master: None,
            answered_at: None,
            garp_second_at: None,
            garp_refresh_at: None,
            held_until: None,
            init_until: None,
            link_pending: None,
            counters: Counters::default(),
            maintenance: false,
            priority_override: None,
            clock: Instant::ZERO,
            last_change: None,
            master: None,
            wants_master: None,
            resign_from: None,
            resign_owed: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Effective priority (what our adverts carry while master).
    pub fn priority(&self) -> u8 {
        self.priority
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// When and why the last transition happened.
    pub fn last_change(&self) -> Option<(Instant, Reason)> {
        self.last_change
    }

    /// The current master's primary address (ours as MASTER), if known.
    pub fn master_address(&self) -> Option<IpAddr> {
        self.master
    }

    /// MASTER, advertising, with the VIPs held for the pre-master hook (module docs).
    pub fn pre_master_held(&self) -> bool {
        self.held_until.is_some()
    }

    /// MASTER with `Notify(Master)` held until this preempted master resigns (module docs,
    /// "Preemption"), and when the hold ends without it.
    pub fn awaiting_resign(&self) -> Option<(IpAddr, Instant)> {
        self.resign_from
    }

    pub fn in_maintenance(&self) -> bool {
        self.maintenance
    }

    pub fn priority_override(&self) -> Option<u8> {
        self.priority_override
    }

    /// Base priority in force: the operator's override, else the configured one.
    fn base_priority(&self) -> u8 {
        self.priority_override.unwrap_or(self.params.priority)
    }

    /// Master_Adver_Interval currently in use.
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_int
    }

    /// Skew_Time for our current priority and Master_Adver_Interval.
    pub fn skew_time(&self) -> Duration {
        skew_time(self.params.version, self.priority, self.master_adver_int)
    }

    /// Master_Down_Interval for our current priority and Master_Adver_Interval.
    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(self.params.version, self.priority, self.master_adver_int)
    }

    /// Whether an in-step router's Master_Down_Timer fired and it waits in BACKUP for the
    /// other family's router to want mastership too (`Params::in_step`).
    pub fn wants_master(&self) -> bool {
        self.wants_master.is_some()
    }

    /// Whether this instance's own conditions (interface, trackers) are faulty, ignoring any
    /// hold from a sync group. The sync group needs this to know who caused a fault.
    pub fn own_fault(&self) -> bool {
        !self.iface_up || self.adj.fault
    }

    /// The earliest instant at which `Input::Timer` has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.adver_at,
            self.down_at,
            self.garp_second_at,
            self.garp_refresh_at,
            self.held_until,
            self.resign_from.map(|(_, at)| at),
            self.init_until,
            self.link_pending.map(|(_, at)| at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Actions {
        let mut out = Actions::new();
        self.clock = now;
        match input {
            Input::Startup => self.startup(now, &mut out),
            Input::Maintenance(on) => self.set_maintenance(now, on, &mut out),
            Input::PriorityOverride(p) => self.set_override(now, p, &mut out),
            Input::PreMasterDone => {
                if self.state == State::Master && self.held_until.is_some() {
                    self.end_hold(now, &mut out);
                }
            }
            Input::ServicesStopped => {
                if self.state == State::Backup && core::mem::take(&mut self.resign_owed) {
                    self.send_advert(0, &mut out);
                }
            }
            // A held master has no addresses to announce yet.
            Input::Announce => {
                if self.state == State::Master && self.held_until.is_none() {
                    let count = self.params.garp_repeat.max(1);
                    push(&mut out, Action::Announce { count });
                }
            }
            Input::Shutdown => self.shutdown(&mut out),
            Input::AdvertReceived(adv) => self.advert(now, adv, &mut out),
            Input::Timer => self.timers(now, &mut out),
            Input::InterfaceUp => self.link_change(now, true, &mut out),
            Input::InterfaceDown => self.link_change(now, false, &mut out),
            Input::Trackers(adj) => {
                self.adj = adj;
                self.recompute_priority();
                self.reconcile_fault(now, &mut out);
            }
            Input::ConfigChange(p) => self.reconfigure(now, p, &mut out),
            Input::Sync(cmd) => self.sync(now, cmd, &mut out),
        }
        out
    }

    /// A link state report, debounced by `link_down_delay` / `link_up_delay` once started.
    fn link_change(&mut self, now: Instant, up: bool, out: &mut Actions) {
        let delay = if up {
            self.params.link_up_delay
        } else {
            self.params.link_down_delay
        };
        if up == self.iface_up {
            // Back to the believed state within the delay: the bounce is forgotten.
            self.link_pending = None;
            return;
        }
        if delay.is_zero() || !self.started {
            self.link_pending = None;
            self.iface_up = up;
            self.reconcile_fault(now, out);
        } else if self.link_pending.map(|(v, _)| v) != Some(up) {
            self.link_pending = Some((up, now + delay));
        }
    }

    fn apply_link_pending(&mut self, now: Instant, out: &mut Actions) {
        if let Some((up, at)) = self.link_pending {
            if at <= now {
                self.link_pending = None;
                self.iface_up = up;
                self.reconcile_fault(now, out);
            }
        }
    }

    fn recompute_priority(&mut self) {
        if let Effective::Priority(p) = priority::apply(self.base_priority(), self.adj) {
            self.priority = p;
        }
    }

    fn fault_cause(&self) -> Option<FaultCause> {
        if !self.iface_up {
            Some(FaultCause::InterfaceDown)
        } else if self.adj.fault {
            Some(FaultCause::Tracker)
        } else if self.sync_fault {
            Some(FaultCause::SyncGroup)
        } else {
            None
        }
    }

    fn transition(&mut self, to: State, reason: Reason, out: &mut Actions) {
        let from = self.state;
        self.state = to;
        self.last_change = Some((self.clock, reason));
        match to {
            State::Master => self.master = Some(self.params.primary),
            State::Backup => {
                self.master = match reason {
                    Reason::HigherPriority { from, .. } | Reason::HigherAddress { from, .. } => {
                        Some(from)
                    }
                    _ => None,
                }
            }
            State::Init | State::Fault => self.master = None,
        }
        self.counters.transitions = self.counters.transitions.wrapping_add(1);
        push(out, Action::Transition { from, to, reason });
        // A held master announces itself to the scripts when the holds end (`end_hold`,
        // `end_resign_wait`).
        if self.held_until.is_none() && self.resign_from.is_none() {
            push(out, Action::Notify(to));
        }
    }

    fn send_advert(&mut self, priority: u8, out: &mut Actions) {
        self.counters.adverts_tx = self.counters.adverts_tx.wrapping_add(1);
        if priority == 0 {
            self.counters.priority_zero_tx = self.counters.priority_zero_tx.wrapping_add(1);
        }
        push(out, Action::SendAdvert { priority });
    }

    fn clear_timers(&mut self) {
        self.adver_at = None;
        self.down_at = None;
        self.garp_second_at = None;
        self.garp_refresh_at = None;
        self.lower_master = None;
        self.init_until = None;
        self.wants_master = None;
        self.resign_from = None;
        self.resign_owed = false;
    }

    /// RFC 5798 6.4.1 (owner) / 6.4.2 (Master_Down_Timer fires): send an advertisement,
    /// announce the addresses, arm Adver_Timer, become MASTER. With a pre-master hook the
    /// advert and Adver_Timer come at once and the addresses when the hold ends (module docs).
    fn become_master(&mut self, now: Instant, reason: Reason, out: &mut Actions) {
        self.clear_timers();
        self.send_advert(self.priority, out);
        self.adver_at = Some(now + self.params.advert_int);
        if let (true, Reason::Preempting { from, .. }) = (self.params.await_resign, reason) {
            // Module docs, "Preemption": the old master stops its services on this advert.
            self.resign_from = Some((from, now + self.master_down_interval()));
        }
        match self.params.pre_master_timeout {
            Some(timeout) => {
                self.held_until = Some(now + timeout);
                self.transition(State::Master, reason, out);
                // After the transition, so the hook gets its context.
                push(out, Action::RunPreMaster);
            }
            None => {
                self.take_addresses(now, out);
                self.transition(State::Master, reason, out);
            }
        }
    }

    /// The addresses of a new master: VIPs, the first gratuitous ARP / NA burst, and the
    /// timers of the second burst and the refresh (RFC 5798 6.4.2 "transition to Master").
    fn take_addresses(&mut self, now: Instant, out: &mut Actions) {
        push(out, Action::AddVips);
        if self.params.garp_repeat > 0 {
            push(
                out,
                Action::Announce {
                    count: self.params.garp_repeat,
                },
            );
        }
        if !self.params.garp_delay.is_zero() && self.params.garp_repeat > 0 {
            self.garp_second_at = Some(now + self.params.garp_delay);
        }
        if !self.params.garp_refresh.is_zero() {
            self.garp_refresh_at = Some(now + self.params.garp_refresh);
        }
    }

    /// The pre-master hold ends (the hook exited, timed out, or was unconfigured): the
    /// addresses go on now and the scripts learn of the MASTER transition.
    fn end_hold(&mut self, now: Instant, out: &mut Actions) {
        self.held_until = None;
        self.take_addresses(now, out);
        if self.resign_from.is_none() {
            push(out, Action::Notify(State::Master));
        }
    }

    /// The preempted master resigned, or Master_Down_Interval passed without it: the scripts
    /// and services learn of the MASTER transition (once the pre-master hold is over too).
    fn end_resign_wait(&mut self, out: &mut Actions) {
        self.resign_from = None;
        if self.held_until.is_none() {
            push(out, Action::Notify(State::Master));
        }
    }

    /// Leaving MASTER (RFC 5798 6.4.3): the VIPs come off, or, while they are still held
    /// for the pre-master hook, the hook is killed and nothing was installed.
    fn give_up_addresses(&mut self, out: &mut Actions) {
        if self.held_until.take().is_some() {
            push(out, Action::StopPreMaster);
        } else {
            push(out, Action::RemoveVips);
        }
    }

    /// RFC 5798 6.4.1 (non-owner startup) and 6.4.3 (master yields): Master_Adver_Interval
    /// set, Master_Down_Timer armed with Master_Down_Interval, state BACKUP.
    fn become_backup(
        &mut self,
        now: Instant,
        adver_int: Duration,
        reason: Reason,
        out: &mut Actions,
    ) {
        let was_master = self.state == State::Master;
        self.clear_timers();
        self.master_adver_int = self.learned_adver_int(adver_int);
        self.down_at = Some(now + self.master_down_interval());
        self.down_cause = DownCause::Interval;
        if was_master {
            self.give_up_addresses(out);
        }
        self.transition(State::Backup, reason, out);
    }

    /// RFC 5798 6.4.2: a v3 backup takes the master's Max Adver Int as its
    /// Master_Adver_Interval, here never below a tenth of its own advert_int. A master (or a
    /// LAN host, within the RFC's limits) advertising 10 ms would otherwise shrink
    /// Master_Down_Interval to about 30 ms, and one advert delayed that long would make the
    /// backup take over. Only a floor: a longer interval is taken as is, since capping it
    /// would make the backup take over between a slow master's adverts.
    fn learned_interval(&self, advertised: Duration) -> Duration {
        advertised.max(self.params.advert_int / MIN_LEARNED_INTERVAL_DIVISOR)
    }

    /// RFC 5798 6.4.1: leave Initialize on Startup.
    fn enter_from_init(&mut self, now: Instant, out: &mut Actions) {
        // keepalived preempt_delay counts from startup (and from leaving FAULT).
        self.preempt_from = now + self.params.preempt_delay;
        if let Some(cause) = self.fault_cause() {
            self.clear_timers();
            self.transition(State::Fault, Reason::Fault(cause), out);
        } else if self.maintenance {
            self.become_backup(now, self.params.advert_int, Reason::Maintenance, out);
        } else if self.params.priority == priority::OWNER {
            self.become_master(now, Reason::AddressOwner, out);
        } else if self.params.start == StartHint::Master {
            self.become_master(now, Reason::StartHintMaster, out);
        } else {
            self.become_backup(now, self.params.advert_int, Reason::Startup, out);
        }
    }

    fn startup(&mut self, now: Instant, out: &mut Actions) {
        if self.started {
            return;
        }
        self.started = true;
        if self.params.startup_delay.is_zero() {
            self.enter_from_init(now, out);
        } else {
            // Interface and tracker changes during the delay only update the conditions;
            // enter_from_init reads them when the delay ends.
            self.init_until = Some(now + self.params.startup_delay);
        }
    }

    /// RFC 5798 6.4.2 / 6.4.3 Shutdown: a master sends priority 0 so backups take over
    /// after Skew_Time instead of Master_Down_Interval.
    fn shutdown(&mut self, out: &mut Actions) {
        if !self.started {
            return;
        }
        self.started = false;
        if self.state == State::Master {
            self.send_advert(0, out);
            self.give_up_addresses(out);
        }
        self.clear_timers();
        if self.state != State::Init {
            self.transition(State::Init, Reason::Shutdown, out);
        }
    }

    fn reconcile_fault(&mut self, now: Instant, out: &mut Actions) {
        if !self.started {
            return;
        }
        match (self.fault_cause(), self.state) {
            (Some(cause), State::Backup | State::Master) => {
                if self.state == State::Master {
                    // Release mastership quickly if we can still talk on the link
                    // (e.g. a tracked script failed); with the link down it is pointless.
                    if self.iface_up {
                        self.send_advert(0, out);
                    }
                    self.give_up_addresses(out);
                }
                self.clear_timers();
                self.transition(State::Fault, Reason::Fault(cause), out);
            }
            (None, State::Fault) => {
                self.preempt_from = now + self.params.preempt_delay;
                if self.params.priority == priority::OWNER && !self.maintenance {
                    self.become_master(now, Reason::FaultCleared, out);
                } else {
                    self.become_backup(now, self.params.advert_int, Reason::FaultCleared, out);
                }
            }
            _ => {}
        }
    }

    fn discard(&mut self) {
        self.counters.adverts_discarded = self.counters.adverts_discarded.wrapping_add(1);
    }

    fn advert(&mut self, now: Instant, adv: Advert, out: &mut Actions) {
        self.counters.adverts_rx = self.counters.adverts_rx.wrapping_add(1);
        if adv.priority == 0 {
            self.counters.priority_zero_rx = self.counters.priority_zero_rx.wrapping_add(1);
        }
        // Our own advertisement looped back, or an interval that cannot be right.
        if adv.src == self.params.primary || adv.advert_int.is_zero() {
            self.discard();
            return;
        }
        // RFC 3768 7.1: v2 adverts whose Adver Int differs from ours MUST be discarded.
        if self.params.version == Version::V2 && adv.advert_int != self.params.advert_int {
            self.discard();
            return;
        }
        match self.state {
            State::Backup => self.backup_advert(now, adv),
            State::Master => self.master_advert(now, adv, out),
            State::Init | State::Fault => self.discard(),
        }
    }

    /// Master_Adver_Interval after hearing the master advertise `advertised`: RFC 5798 6.4.2
    /// sets it to the advert's Max Adver Int (above the floor of [`Self::learned_interval`]);
    /// VRRPv2 has no such variable (RFC 3768 7.1 discards an advert whose interval differs
    /// from ours), so it stays ours.
    fn learned_adver_int(&self, advertised: Duration) -> Duration {
        match self.params.version {
            Version::V3 => self.learned_interval(advertised),
            Version::V2 => self.params.advert_int,
        }
    }

    /// RFC 5798 6.4.2 (Backup), "If an ADVERTISEMENT is received".
    fn backup_advert(&mut self, now: Instant, adv: Advert) {
        if adv.priority != 0 {
            self.master = Some(adv.src);
        }
        if adv.priority == 0 {
            // Master is leaving: take over after Skew_Time.
            self.down_at = Some(now + self.skew_time());
            self.down_cause = DownCause::Skew;
            self.wants_master = None;
            return;
        }
        // keepalived preempt_delay: until it passes, behave as nopreempt.
        let preempt = self.params.preempt && now >= self.preempt_from;
        if !preempt || adv.priority >= self.priority {
            self.master_adver_int = self.learned_adver_int(adv.advert_int);
            self.down_at = Some(now + self.master_down_interval());
            self.down_cause = DownCause::Interval;
            self.lower_master = None;
            // A master speaks on our family again: we no longer want to take over.
            self.wants_master = None;
        } else {
            // Preempt_Mode True and lower priority: discard, so Master_Down_Timer fires.
            self.lower_master = Some((adv.priority, adv.src));
            self.discard();
        }
    }

    /// RFC 5798 6.4.3 (Master), "If an ADVERTISEMENT is received".
    fn master_advert(&mut self, now: Instant, adv: Advert, out: &mut Actions) {
        if adv.priority == 0 {
            // Another router released mastership: assert ours at once.
            let resigned = self.resign_from.is_some_and(|(from, _)| from == adv.src);
            if resigned {
                // Once per preemption, so past the answers' rate limit: a third router's
                // Master_Down_Timer now runs Skew_Time, shorter than our next advert.
                self.answered_at = None;
            }
            self.answer_out_of_turn(now, out);
            if resigned {
                // The master we preempted says its services are stopped: ours may start.
                self.end_resign_wait(out);
            }
            return;
        }
        let reason = if adv.priority > self.priority {
            Some(Reason::HigherPriority {
                priority: adv.priority,
                from: adv.src,
            })
        } else if adv.priority == self.priority && adv.src > self.params.primary {
            Some(Reason::HigherAddress {
                priority: adv.priority,
                from: adv.src,
            })
        } else {
            None
        };
        match reason {
            Some(r) => {
                self.become_backup(now, adv.advert_int, r, out);
                // Preempted: resign once our services are stopped (module docs).
                self.resign_owed = true;
            }
            None => {
                // RFC 5798 6.4.3 discards it. Another master we win against means a
                // partition just healed (both sides became master): like keepalived, answer
                // at once so it yields now rather than at our next advert.
                self.discard();
                self.answer_out_of_turn(now, out);
            }
        }
    }

    /// Send our advert now and restart Adver_Timer from it, unless we already answered
    /// out of turn within the last Advertisement_Interval.
    fn answer_out_of_turn(&mut self, now: Instant, out: &mut Actions) {
        let interval = self.params.advert_int;
        if self
            .answered_at
            .is_some_and(|t| now.saturating_duration_since(t) < interval)
        {
            return;
        }
        self.answered_at = Some(now);
        self.send_advert(self.priority, out);
        self.adver_at = Some(now + interval);
    }

    fn timers(&mut self, now: Instant, out: &mut Actions) {
        self.apply_link_pending(now, out);
        match self.state {
            State::Init => {
                if self.init_until.is_some_and(|t| t <= now) {
                    self.init_until = None;
                    self.enter_from_init(now, out);
                }
            }
            State::Master => {
                if self.adver_at.is_some_and(|t| t <= now) {
                    self.send_advert(self.priority, out);
                    self.adver_at = Some(now + self.params.advert_int);
                }
                if self.held_until.is_some_and(|t| t <= now) {
                    // The hook ran past pre_master_timeout: kill it and take over anyway.
                    push(out, Action::StopPreMaster);
                    self.end_hold(now, out);
                }
                if self.resign_from.is_some_and(|(_, t)| t <= now) {
                    // No resign from the preempted master (keepalived, FRR, a lost advert).
                    self.end_resign_wait(out);
                }
                if self.garp_second_at.is_some_and(|t| t <= now) {
                    self.garp_second_at = None;
                    push(
                        out,
                        Action::Announce {
                            count: self.params.garp_repeat,
                        },
                    );
                }
                if self.garp_refresh_at.is_some_and(|t| t <= now) {
                    self.garp_refresh_at = Some(now + self.params.garp_refresh);
                    if self.params.garp_refresh_repeat > 0 {
                        push(
                            out,
                            Action::Announce {
                                count: self.params.garp_refresh_repeat,
                            },
                        );
                    }
                }
            }
            State::Backup => {
                if self.maintenance && self.down_at.is_some_and(|t| t <= now) {
                    // Maintenance: never take over; keep watching for a master.
                    self.down_at = Some(now + self.master_down_interval());
                    self.down_cause = DownCause::Interval;
                    self.lower_master = None;
                } else if self.down_at.is_some_and(|t| t <= now) {
                    let reason = match (self.down_cause, self.lower_master) {
                        (DownCause::Skew, _) => Reason::MasterReleased {
                            skew: self.skew_time(),
                        },
                        (DownCause::Interval, Some((priority, from))) => {
                            Reason::Preempting { priority, from }
                        }
                        (DownCause::Interval, None) => Reason::MasterDown {
                            interval: self.master_down_interval(),
                        },
                    };
                    if self.params.in_step {
                        // Wait for the other family's router (its group decides).
                        self.down_at = None;
                        self.wants_master = Some(reason);
                    } else {
                        self.become_master(now, reason, out);
                    }
                }
            }
            State::Fault => {}
        }
    }

    /// Maintenance on: a MASTER hands over exactly as on Shutdown (RFC 5798 6.4.3: a
    /// priority-0 advert so the backup takes over after Skew_Time) but goes to BACKUP and
    /// stays there. Off: a BACKUP starts a fresh Master_Down_Interval, so a preempting
    /// higher priority takes back over from the current master.
    fn set_maintenance(&mut self, now: Instant, on: bool, out: &mut Actions) {
        if self.maintenance == on {
            return;
        }
        self.maintenance = on;
        if on {
            self.wants_master = None;
            if self.state == State::Master {
                self.send_advert(0, out);
                self.become_backup(now, self.params.advert_int, Reason::Maintenance, out);
            }
        } else if self.state == State::Backup {
            self.down_at = Some(now + self.master_down_interval());
            self.down_cause = DownCause::Interval;
        }
    }

    /// A new base priority takes effect like a priority change in the config: a MASTER
    /// advertises it at once, a BACKUP re-arms for its new Master_Down_Interval.
    fn set_override(&mut self, now: Instant, p: Option<u8>, out: &mut Actions) {
        let before = self.priority;
        self.priority_override = p;
        self.recompute_priority();
        if self.priority == before {
            return;
        }
        match self.state {
            State::Master => {
                self.send_advert(self.priority, out);
                self.adver_at = Some(now + self.params.advert_int);
            }
            State::Backup if self.down_cause == DownCause::Interval => {
                self.down_at = Some(now + self.master_down_interval());
            }
            _ => {}
        }
    }

    fn sync(&mut self, now: Instant, cmd: SyncCommand, out: &mut Actions) {
        match cmd {
            SyncCommand::Fault => {
                self.sync_fault = true;
                self.reconcile_fault(now, out);
            }
            SyncCommand::ReleaseFault => {
                self.sync_fault = false;
                self.reconcile_fault(now, out);
            }
            SyncCommand::Backup => {
                if self.state == State::Master {
                    self.become_backup(now, self.params.advert_int, Reason::SyncGroup, out);
                }
            }
            SyncCommand::Master => {
                if self.state == State::Backup && !self.maintenance {
                    // An in-step router that was waiting keeps its own reason (the timer
                    // that fired), the one the operator wants to read.
                    let reason = self.wants_master.take().unwrap_or(Reason::SyncGroup);
                    self.become_master(now, reason, out);
                }
            }
        }
    }

    /// Apply new parameters with the smallest change: only a protocol version change
    /// restarts the instance; everything else is taken over in place, without a transition.
    fn reconfigure(&mut self, now: Instant, p: Params, out: &mut Actions) {
        let old = self.params;
        if p.version != old.version {
            let was_started = self.started;
            self.shutdown(out);
            self.params = p;
            self.recompute_priority();
            self.master_adver_int = p.advert_int;
            if was_started {
                self.started = true;
                self.enter_from_init(now, out);
                if let Some(Action::Transition { reason, .. }) = out
                    .iter_mut()
                    .rev()
                    .find(|a| matches!(a, Action::Transition { .. }))
                {
                    if *reason == Reason::Startup {
                        *reason = Reason::Reconfigured;
                    }
                }
            }
            return;
        }
        self.params = p;
        self.recompute_priority();
        if p.preempt_delay != old.preempt_delay {
            // Keep the original reference point (startup) but use the new delay.
            let start = self.preempt_from - old.preempt_delay;
            self.preempt_from = start + p.preempt_delay;
        }
        match self.state {
            State::Master => {
                if p.advert_int != old.advert_int || p.priority != old.priority {
                    // Tell the backups at once: new interval / priority.
                    self.send_advert(self.priority, out);
                    self.adver_at = Some(now + p.advert_int);
                }
                if !p.await_resign && self.resign_from.is_some() {
                    // The services no longer follow the role: nothing to wait for.
                    self.end_resign_wait(out);
                }
                if self.held_until.is_some() {
                    match p.pre_master_timeout {
                        // The hook left the configuration: stop waiting for it.
                        None => {
                            push(out, Action::StopPreMaster);
                            self.end_hold(now, out);
                        }
                        // A new timeout counts from the start of the hold.
                        Some(t) if Some(t) != old.pre_master_timeout => {
                            let since = self.held_until.zip(old.pre_master_timeout);
                            self.held_until = since.map(|(until, was)| until - was + t);
                        }
                        Some(_) => {}
                    }
                } else if p.garp_refresh != old.garp_refresh {
                    self.garp_refresh_at =
                        (!p.garp_refresh.is_zero()).then(|| now + p.garp_refresh);
                }
            }
            State::Backup => {
                if p.version == Version::V2 {
                    self.master_adver_int = p.advert_int;
                }
                // Priority or interval changed: re-arm for the new Master_Down_Interval,
                // keeping the skew deadline of a released master.
                if self.down_cause == DownCause::Interval
                    && (p.priority != old.priority || p.advert_int != old.advert_int)
                {
                    self.down_at = Some(now + self.master_down_interval());
                }
            }
            State::Init | State::Fault => {
                self.master_adver_int = p.advert_int;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Secs;
    use core::time::Duration;

    /// Two decimals, rounded half up, carrying into the whole seconds.
    #[test]
    fn seconds_with_two_decimals() {
        for (d, text) in [
            (Duration::from_micros(3_609_375), "3.61 s"),
            (Duration::from_micros(994_999), "0.99 s"),
            (Duration::from_micros(995_000), "1.00 s"),
            (Duration::from_secs(0), "0.00 s"),
            (Duration::from_millis(40_950), "40.95 s"),
        ] {
            assert_eq!(Secs(d).to_string(), text);
        }
    }
}
