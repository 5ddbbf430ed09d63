//! Notify commands on VRRP transitions (keepalived's convention) and the OpenWrt hotplug hook,
//! plus the queue that runs them one at a time, in transition order. Real servers going up or
//! down (`notify_up` / `notify_down`) and virtual servers gaining or losing quorum
//! (`quorum_up` / `quorum_down`) run through the same queues: their command as configured
//! (keepalived appends nothing), then the hotplug hook with `ACTION=NOTIFY_UP|NOTIFY_DOWN`
//! and `TYPE=REAL_SERVER|VIRTUAL_SERVER`.
//!
//! For each transition of an instance or group, in this order (keepalived.conf(5): the
//! generic `notify` runs AFTER the `notify_*` script):
//! 1. `notify_master` / `notify_backup` / `notify_fault` / `notify_stop`, as configured;
//! 2. the generic `notify` with 4 arguments appended: `TYPE NAME STATE PRIORITY`,
//!    e.g. `INSTANCE vi1 MASTER 150`;
//! 3. OpenWrt: `/sbin/hotplug-call minivrrp` (when it exists) with `ACTION=NOTIFY_MASTER`…,
//!    `TYPE=INSTANCE|GROUP`, `NAME=<section>` added to the environment.
//!
//! Every one of them also gets the transition's context in the environment
//! ([`NotifyContext`]): `MINIVRRP_PREV_STATE`, `MINIVRRP_REASON`, `MINIVRRP_MASTER`,
//! `MINIVRRP_PRIORITY`. They are always set (empty when unknown), so a value inherited from
//! the daemon's own environment can never pass for the transition's.

use core::fmt::{self, Write};
use core::net::IpAddr;
use heapless::{String, Vec};

/// The hotplug program and its one argument (the hotplug.d subdirectory).
pub const HOTPLUG_CALL: &str = "/sbin/hotplug-call";
pub const HOTPLUG_SUBSYSTEM: &str = "minivrrp";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NotifyKind {
    #[default]
    Instance,
    Group,
    /// A real server's health (`notify_up` / `notify_down`).
    RealServer,
    /// A virtual server's quorum (`quorum_up` / `quorum_down`).
    VirtualServer,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Instance => "INSTANCE",
            NotifyKind::Group => "GROUP",
            NotifyKind::RealServer => "REAL_SERVER",
            NotifyKind::VirtualServer => "VIRTUAL_SERVER",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyState {
    Master,
    Backup,
    Fault,
    /// The instance stopped (daemon shutdown or instance removed).
    Stop,
    /// A real server passed its check / a virtual server regained quorum.
    Up,
    /// A real server failed its check / a virtual server lost quorum.
    Down,
}

impl NotifyState {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyState::Master => "MASTER",
            NotifyState::Backup => "BACKUP",
            NotifyState::Fault => "FAULT",
            NotifyState::Stop => "STOP",
            NotifyState::Up => "UP",
            NotifyState::Down => "DOWN",
        }
    }
}

/// Longest reason given in `MINIVRRP_REASON`; a longer sentence is cut at a character
/// boundary. The longest the state machine writes (an IPv6 address in "equal priority ...
/// from higher address ...") is under 80 bytes.
pub const REASON_LEN: usize = 96;

/// The reason of a transition as text, fixed-size so that a queued job stays `Copy` and
/// queueing never allocates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ReasonText {
    len: u8,
    buf: [u8; REASON_LEN],
}

impl ReasonText {
    /// The `Display` of `reason`, cut to [`REASON_LEN`] bytes.
    pub fn new(reason: impl fmt::Display) -> ReasonText {
        let mut t = ReasonText::default();
        // A full buffer ends the write early; what fits is kept.
        let _ = write!(t, "{reason}");
        t
    }

    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 characters are ever copied in (`write_str`).
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl Default for ReasonText {
    fn default() -> Self {
        ReasonText {
            len: 0,
            buf: [0; REASON_LEN],
        }
    }
}

impl fmt::Write for ReasonText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let at = usize::from(self.len);
            let end = at + c.len_utf8();
            if end > REASON_LEN {
                return Err(fmt::Error);
            }
            c.encode_utf8(&mut self.buf[at..end]);
            self.len = end as u8;
        }
        Ok(())
    }
}

impl fmt::Debug for ReasonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// What a script needs to know about a transition besides its new state: where it came
/// from, why, and who is master now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotifyContext {
    /// The state before the transition; `None` is INIT (never announced by itself).
    pub prev: Option<NotifyState>,
    pub reason: ReasonText,
    /// The current master's address (ours as MASTER); `None` when unknown (FAULT, STOP, a
    /// backup that has not heard the master yet) and for sync groups.
    pub master: Option<IpAddr>,
}

/// One transition to announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyEvent {
    pub state: NotifyState,
    /// The effective priority (after trackers); 0 for a sync group.
    pub priority: u8,
    pub context: NotifyContext,
}

impl NotifyEvent {
    /// An event without context (previous state INIT, no reason, master unknown).
    pub fn new(state: NotifyState, priority: u8) -> NotifyEvent {
        NotifyEvent {
            state,
            priority,
            context: NotifyContext::default(),
        }
    }
}

/// Which of the configured commands a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// notify_master/backup/fault/stop for `event.state`.
    Specific,
    Generic,
    Hotplug,
    /// `master_service` (or `backup_service` when `backup`) number `idx`, through its procd
    /// init script.
    Service {
        backup: bool,
        idx: u8,
        act: RoleAct,
    },
    /// `master_interface` number `idx`, through netifd's ubus object.
    Interface {
        idx: u8,
        act: RoleAct,
    },
    /// Step `step` of conntrackd's primary-backup sequence for `event.state`
    /// ([`conntrackd_steps`]).
    Conntrackd {
        step: u8,
    },
    /// The `minivrrp.instance` ubus event: a transition, or (`priority_only`) a change of
    /// effective priority within a state.
    Event {
        priority_only: bool,
    },
    /// Runs nothing: the queue got past the role jobs of a MASTER -> BACKUP transition, so
    /// the instance's services and interfaces of the MASTER role are stopped (or were killed
    /// at `notify_timeout`). The daemon tells the instance, which resigns to the master that
    /// preempted it (`vrrp::instance`, "Preemption").
    Resign,
}

/// What a role job does to a service or interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleAct {
    /// `start` / `up`.
    Start,
    /// `stop` / `down`.
    Stop,
    /// Reconciliation (daemon start, a name added by a reload): stop it only if it runs;
    /// exit status [`RECONCILED`] says it did.
    StopIfRunning,
}

/// Exit status of a [`RoleAct::StopIfRunning`] job that found the service running (or the
/// interface up) and stopped it; 0 means there was nothing to do.
pub const RECONCILED: i32 = 3;

/// Where procd services' init scripts are.
pub const INIT_D: &str = "/etc/init.d/";
/// netifd's ubus object of an interface is this prefix and the interface's name.
pub const NETIFD_OBJECT: &str = "network.interface.";
/// The ubus event every transition and priority change is sent as.
pub const UBUS_EVENT: &str = "minivrrp.instance";

/// `/bin/sh -c` scripts of [`RoleAct::StopIfRunning`] (`$0` is the name): procd's `running`
/// command, netifd's `status` (`"up": true`).
const STOP_SERVICE_IF_RUNNING: &str =
    "/etc/init.d/\"$0\" running 2>/dev/null || exit 0; /etc/init.d/\"$0\" stop && exit 3; exit 4";
const DOWN_IF_UP: &str = "ubus call \"network.interface.$0\" status 2>/dev/null | grep -q '\"up\": *true' || exit 0; ubus call \"network.interface.$0\" down && exit 3; exit 4";

/// conntrackd's primary-backup sequence (as its `primary-backup.sh`), the arguments after
/// `-C FILE` for each step. MASTER: after the commit of the external cache (`-c`, the
/// pre-master hook, before the VIPs), flush both caches, resync the internal one from the
/// kernel and bulk-send it to the backup. BACKUP: shorten the kernel's timers of the
/// entries the new master now owns, flush the external cache and ask the master for a full
/// resync. FAULT: shorten the timers.
pub fn conntrackd_steps(state: NotifyState) -> &'static [&'static [&'static str]] {
    match state {
        NotifyState::Master => &[&["-f"], &["-R"], &["-B"]],
        NotifyState::Backup => &[&["-t"], &["-f", "external"], &["-n"]],
        NotifyState::Fault => &[&["-t"]],
        _ => &[],
    }
}

/// A change of role for the role jobs of one transition: services and interfaces are
/// started or stopped only when the role (MASTER or not) changed, never twice for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleChange {
    pub to_master: bool,
    /// The first role since the daemon started: what must not run is stopped only if it runs.
    pub reconcile: bool,
}

/// One command to run: small and `Copy`, so queueing never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyJob {
    pub slot: Slot,
    pub event: NotifyEvent,
}

/// Notify settings of one instance or group (built at config load; argv already split).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifyConfig {
    /// Section name, passed as NAME.
    pub name: std::string::String,
    pub kind: NotifyKind,
    pub master: Option<std::vec::Vec<std::string::String>>,
    pub backup: Option<std::vec::Vec<std::string::String>>,
    pub fault: Option<std::vec::Vec<std::string::String>>,
    pub stop: Option<std::vec::Vec<std::string::String>>,
    pub generic: Option<std::vec::Vec<std::string::String>>,
    /// `notify_up` / `quorum_up` and `notify_down` / `quorum_down` of a real or virtual server.
    pub up: Option<std::vec::Vec<std::string::String>>,
    pub down: Option<std::vec::Vec<std::string::String>>,
    /// The hotplug program: the daemon sets `Some(HOTPLUG_CALL)` when it exists
    /// (`sys::file::is_executable`), `None` otherwise.
    pub hotplug: Option<std::string::String>,
    /// Services, interfaces, conntrackd and ubus; boxed, and only when there is any, so
    /// the queue of an instance without them stays small.
    pub roles: Option<Box<Roles>>,
}

/// What follows an instance's or group's role besides the notify commands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roles {
    /// `master_service`, `backup_service`, `master_interface`.
    pub master_services: std::vec::Vec<std::string::String>,
    pub backup_services: std::vec::Vec<std::string::String>,
    pub master_interfaces: std::vec::Vec<std::string::String>,
    /// conntrackd's config file when its sequence runs on this queue's transitions.
    pub conntrackd: Option<std::string::String>,
    /// The `ubus` program when events are sent (instances only); interfaces are called
    /// through it too (`ubus` from PATH when `None`).
    pub ubus: Option<std::string::String>,
}

static NO_ROLES: Roles = Roles {
    master_services: std::vec::Vec::new(),
    backup_services: std::vec::Vec::new(),
    master_interfaces: std::vec::Vec::new(),
    conntrackd: None,
    ubus: None,
};

/// Most arguments of one notify command (configured ones plus the 4 appended).
pub const MAX_ARGS: usize = 16;
/// Capacity of one environment entry or appended argument of a notify command.
pub const ENV_LEN: usize = 64;
/// Longest instance or group name: the hotplug hook gets it as `NAME=<name>` in one
/// [`ENV_LEN`] entry (config load refuses longer names).
pub const MAX_NAME: usize = ENV_LEN - "NAME=".len();
/// Capacity of one environment entry: `MINIVRRP_REASON=` and a [`REASON_LEN`] reason fit.
pub const ENV_ENTRY_LEN: usize = 128;
/// Environment entries of one command: ACTION, TYPE, NAME (hotplug) and the 4 context ones.
pub const MAX_ENV: usize = 7;

/// A command ready for `sys::process::spawn(&cmd.argv(), &cmd.env(), ..)`, borrowing the
/// configured strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLine<'a> {
    configured: Vec<&'a str, MAX_ARGS>,
    extra: Vec<String<ENV_LEN>, 4>,
    /// The event's JSON message, the last argument of `ubus send`.
    json: String<EVENT_LEN>,
    env: Vec<String<ENV_ENTRY_LEN>, MAX_ENV>,
}

/// Room for one event's JSON: a name, a reason with every byte escaped, an IPv6 address.
pub const EVENT_LEN: usize = 448;

impl<'a> CommandLine<'a> {
    pub fn argv(&self) -> Vec<&str, MAX_ARGS> {
        let mut v: Vec<&str, MAX_ARGS> = Vec::new();
        for a in self
            .configured
            .iter()
            .copied()
            .chain(self.extra.iter().map(|s| s.as_str()))
        {
            let _ = v.push(a);
        }
        if !self.json.is_empty() {
            let _ = v.push(self.json.as_str());
        }
        v
    }

    /// Variables to add to the inherited environment.
    pub fn env(&self) -> Vec<&str, MAX_ENV> {
        self.env.iter().map(|s| s.as_str()).collect()
    }
}

impl NotifyConfig {
    pub fn kind(&self) -> NotifyKind {
        self.kind
    }

    fn specific(&self, state: NotifyState) -> Option<&std::vec::Vec<std::string::String>> {
        match state {
            NotifyState::Master => self.master.as_ref(),
            NotifyState::Backup => self.backup.as_ref(),
            NotifyState::Fault => self.fault.as_ref(),
            NotifyState::Stop => self.stop.as_ref(),
            NotifyState::Up => self.up.as_ref(),
            NotifyState::Down => self.down.as_ref(),
        }
        .filter(|v| !v.is_empty())
    }

    /// The jobs one transition produces, in the order they must run.
    pub fn jobs(&self, event: NotifyEvent) -> Vec<NotifyJob, 3> {
        let mut v = Vec::new();
        // keepalived.conf(5): STOP only applies to instances.
        if self.kind != NotifyKind::Instance && event.state == NotifyState::Stop {
            return v;
        }
        if self.specific(event.state).is_some() {
            let _ = v.push(NotifyJob {
                slot: Slot::Specific,
                event,
            });
        }
        if self.generic.as_ref().is_some_and(|g| !g.is_empty()) {
            let _ = v.push(NotifyJob {
                slot: Slot::Generic,
                event,
            });
        }
        if self.hotplug.is_some() {
            let _ = v.push(NotifyJob {
                slot: Slot::Hotplug,
                event,
            });
        }
        v
    }

    /// Services, interfaces, conntrackd, ubus (none when not configured).
    pub fn roles(&self) -> &Roles {
        self.roles.as_deref().unwrap_or(&NO_ROLES)
    }

    /// Every job of one transition, in the order they run: on becoming MASTER conntrackd's
    /// sequence (the backup waits for its bulk update), then services and interfaces, then
    /// the notify commands; on leaving MASTER services and interfaces first (a backup must
    /// stop serving DHCP at once), then conntrackd and the commands. The ubus event comes
    /// last, when what it announces is in place. `roles` is `None` when the role did not
    /// change (BACKUP -> FAULT): services are left alone. An instance going from MASTER to
    /// BACKUP gets [`Slot::Resign`] right after its role jobs.
    pub fn transition_jobs(
        &self,
        event: NotifyEvent,
        roles: Option<RoleChange>,
        mut each: impl FnMut(NotifyJob),
    ) {
        let mut job = |slot| each(NotifyJob { slot, event });
        let conntrackd = |job: &mut dyn FnMut(Slot)| {
            if self.roles().conntrackd.is_some() {
                for step in 0..conntrackd_steps(event.state).len() {
                    job(Slot::Conntrackd { step: step as u8 });
                }
            }
        };
        let master = event.state == NotifyState::Master;
        if master {
            conntrackd(&mut job);
        }
        if let Some(r) = roles {
            self.role_jobs(r, &mut job);
            // Only an instance yields to a higher priority: its resign waits for these stops.
            let yielded = !r.to_master && !r.reconcile && event.state == NotifyState::Backup;
            if yielded && self.kind == NotifyKind::Instance {
                job(Slot::Resign);
            }
        }
        if !master {
            conntrackd(&mut job);
        }
        for j in self.jobs(event) {
            job(j.slot);
        }
        if self.roles().ubus.is_some() && self.kind == NotifyKind::Instance {
            job(Slot::Event {
                priority_only: false,
            });
        }
    }

    /// The service and interface jobs of a change of role, services first (what stops
    /// stops before what starts).
    pub fn role_jobs(&self, r: RoleChange, job: &mut dyn FnMut(Slot)) {
        let act = |run: bool| match (run, r.reconcile) {
            (true, _) => RoleAct::Start,
            (false, false) => RoleAct::Stop,
            (false, true) => RoleAct::StopIfRunning,
        };
        let (first, second) = if r.to_master {
            (true, false)
        } else {
            (false, true)
        };
        // Lists run in the order stop-then-start: leaving MASTER stops master services
        // before backup services start, becoming MASTER the reverse.
        for backup in [first, second] {
            let list = if backup {
                &self.roles().backup_services
            } else {
                &self.roles().master_services
            };
            for idx in 0..list.len() {
                let run = r.to_master != backup;
                job(Slot::Service {
                    backup,
                    idx: idx as u8,
                    act: act(run),
                });
            }
        }
        for idx in 0..self.roles().master_interfaces.len() {
            job(Slot::Interface {
                idx: idx as u8,
                act: act(r.to_master),
            });
        }
    }

    /// The name a role job acts on.
    pub fn role_name(&self, slot: Slot) -> Option<&str> {
        match slot {
            Slot::Service {
                backup: false, idx, ..
            } => self.roles().master_services.get(usize::from(idx)),
            Slot::Service {
                backup: true, idx, ..
            } => self.roles().backup_services.get(usize::from(idx)),
            Slot::Interface { idx, .. } => self.roles().master_interfaces.get(usize::from(idx)),
            _ => None,
        }
        .map(|s| s.as_str())
    }

    /// The command of a job; `None` if the job's script is no longer configured or has
    /// more than [`MAX_ARGS`] arguments.
    pub fn command(&self, job: NotifyJob) -> Option<CommandLine<'_>> {
        let mut cl = CommandLine {
            configured: Vec::new(),
            extra: Vec::new(),
            json: String::new(),
            env: Vec::new(),
        };
        let ubus = self.roles().ubus.as_deref().unwrap_or("ubus");
        let base: &[std::string::String] = match job.slot {
            Slot::Specific => self.specific(job.event.state)?,
            Slot::Generic => self.generic.as_ref()?,
            Slot::Hotplug => &[],
            Slot::Service { act, .. } => {
                let name = self.role_name(job.slot)?;
                if act == RoleAct::StopIfRunning {
                    for a in ["/bin/sh", "-c", STOP_SERVICE_IF_RUNNING, name] {
                        cl.configured.push(a).ok()?;
                    }
                } else {
                    cl.extra.push(joined(INIT_D, name)?).ok()?;
                    let verb = if act == RoleAct::Start {
                        "start"
                    } else {
                        "stop"
                    };
                    cl.extra.push(String::try_from(verb).ok()?).ok()?;
                }
                &[]
            }
            Slot::Interface { act, .. } => {
                let name = self.role_name(job.slot)?;
                if act == RoleAct::StopIfRunning {
                    for a in ["/bin/sh", "-c", DOWN_IF_UP, name] {
                        cl.configured.push(a).ok()?;
                    }
                } else {
                    cl.configured.push(ubus).ok()?;
                    cl.configured.push("call").ok()?;
                    cl.extra.push(joined(NETIFD_OBJECT, name)?).ok()?;
                    let verb = if act == RoleAct::Start { "up" } else { "down" };
                    cl.extra.push(String::try_from(verb).ok()?).ok()?;
                }
                &[]
            }
            Slot::Conntrackd { step } => {
                let conf = self.roles().conntrackd.as_deref()?;
                let args = conntrackd_steps(job.event.state).get(usize::from(step))?;
                for a in ["conntrackd", "-C", conf].iter().chain(args.iter()) {
                    cl.configured.push(a).ok()?;
                }
                &[]
            }
            Slot::Event { priority_only } => {
                for a in [ubus, "send", UBUS_EVENT] {
                    cl.configured.push(a).ok()?;
                }
                event_json(&mut cl.json, &self.name, job.event, priority_only).ok()?;
                &[]
            }
            Slot::Resign => return None,
        };
        for a in base {
            cl.configured.push(a.as_str()).ok()?;
        }
        let kind = self.kind().as_str();
        let state = job.event.state.as_str();
        match job.slot {
            Slot::Specific
            | Slot::Service { .. }
            | Slot::Interface { .. }
            | Slot::Conntrackd { .. }
            | Slot::Event { .. }
            | Slot::Resign => {}
            Slot::Generic => {
                if cl.configured.len() + 4 > MAX_ARGS {
                    return None;
                }
                let mut prio: String<ENV_LEN> = String::new();
                let _ = write!(prio, "{}", job.event.priority);
                cl.extra.push(String::try_from(kind).ok()?).ok()?;
                let mut name: String<ENV_LEN> = String::new();
                name.push_str(&self.name).ok()?;
                cl.extra.push(name).ok()?;
                cl.extra.push(String::try_from(state).ok()?).ok()?;
                cl.extra.push(prio).ok()?;
            }
            Slot::Hotplug => {
                cl.configured.push(self.hotplug.as_deref()?).ok()?;
                cl.configured.push(HOTPLUG_SUBSYSTEM).ok()?;
                env(&mut cl, format_args!("ACTION=NOTIFY_{state}"))?;
                env(&mut cl, format_args!("TYPE={kind}"))?;
                env(&mut cl, format_args!("NAME={}", self.name))?;
            }
        }
        self.context_env(&mut cl, job.event)?;
        Some(cl)
    }

    /// The `MINIVRRP_*` context variables, every one set (empty when not known).
    fn context_env(&self, cl: &mut CommandLine<'_>, ev: NotifyEvent) -> Option<()> {
        let c = &ev.context;
        let prev = c.prev.map_or("INIT", NotifyState::as_str);
        env(cl, format_args!("MINIVRRP_PREV_STATE={prev}"))?;
        env(cl, format_args!("MINIVRRP_REASON={}", c.reason.as_str()))?;
        match c.master {
            Some(a) => env(cl, format_args!("MINIVRRP_MASTER={a}"))?,
            None => env(cl, format_args!("MINIVRRP_MASTER="))?,
        }
        // Only an instance has a priority (a group's generic notify gets none either).
        if self.kind == NotifyKind::Instance {
            env(cl, format_args!("MINIVRRP_PRIORITY={}", ev.priority))
        } else {
            env(cl, format_args!("MINIVRRP_PRIORITY="))
        }
    }
}

/// `prefix` and `name` as one argument.
fn joined(prefix: &str, name: &str) -> Option<String<ENV_LEN>> {
    let mut s: String<ENV_LEN> = String::new();
    s.push_str(prefix).ok()?;
    s.push_str(name).ok()?;
    Some(s)
}

/// The `minivrrp.instance` message: `{"name":..,"state":..,"previous":..,"reason":..,
/// "priority":N,"master":".."}` (master empty when unknown). A priority change within a
/// state has the state as its previous one.
fn event_json(
    out: &mut String<EVENT_LEN>,
    name: &str,
    ev: NotifyEvent,
    priority_only: bool,
) -> fmt::Result {
    let c = &ev.context;
    let prev = if priority_only {
        ev.state.as_str()
    } else {
        c.prev.map_or("INIT", NotifyState::as_str)
    };
    out.push_str("{\"name\":").map_err(|_| fmt::Error)?;
    json_str(out, name)?;
    write!(
        out,
        ",\"state\":\"{}\",\"previous\":\"{prev}\",\"reason\":",
        ev.state.as_str()
    )?;
    json_str(out, c.reason.as_str())?;
    write!(out, ",\"priority\":{},\"master\":\"", ev.priority)?;
    if let Some(m) = c.master {
        write!(out, "{m}")?;
    }
    out.push_str("\"}").map_err(|_| fmt::Error)
}

/// `s` as a JSON string (quotes, backslashes and control characters escaped).
fn json_str(out: &mut String<EVENT_LEN>, s: &str) -> fmt::Result {
    out.push('"').map_err(|_| fmt::Error)?;
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\"").map_err(|_| fmt::Error)?,
            '\\' => out.push_str("\\\\").map_err(|_| fmt::Error)?,
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
            c => out.push(c).map_err(|_| fmt::Error)?,
        }
    }
    out.push('"').map_err(|_| fmt::Error)
}

/// Add one `KEY=value` entry to a command's environment; `None` if it does not fit.
fn env(cl: &mut CommandLine<'_>, entry: fmt::Arguments<'_>) -> Option<()> {
    let mut e: String<ENV_ENTRY_LEN> = String::new();
    e.write_fmt(entry).ok()?;
    cl.env.push(e).ok()
}

/// Per-instance queue: jobs run strictly one after another in transition order, so a slow
/// notify_backup can never finish after the notify_master that followed it.
///
/// At most `N` jobs wait; they are kept on the heap only while there are any. Inline, the
/// room for `N` jobs was about 3 KB for every instance, group and server, almost always
/// empty (255 instances: 800 KB of the daemon's 1.7 MB); a transition now allocates once for
/// its jobs, and the room is given back when the queue runs dry.
#[derive(Clone, Debug, Default)]
pub struct NotifyQueue<const N: usize> {
    /// The running job (if `running`) at the front, then the waiting ones.
    jobs: std::collections::VecDeque<NotifyJob>,
    running: bool,
    dropped: u32,
}

impl<const N: usize> NotifyQueue<N> {
    pub fn new() -> Self {
        NotifyQueue {
            jobs: std::collections::VecDeque::new(),
            running: false,
            dropped: 0,
        }
    }

    /// Queue the jobs of one transition. When the queue is full the oldest pending job is
    /// dropped (counted): the newest state is the one scripts must end up seeing.
    pub fn push_transition(&mut self, cfg: &NotifyConfig, event: NotifyEvent) {
        self.push_transition_roles(cfg, event, None);
    }

    /// Queue the jobs of one transition with its change of role, if any
    /// ([`NotifyConfig::transition_jobs`]).
    pub fn push_transition_roles(
        &mut self,
        cfg: &NotifyConfig,
        event: NotifyEvent,
        roles: Option<RoleChange>,
    ) {
        cfg.transition_jobs(event, roles, |job| self.push(job));
    }

    /// Queue one job (the oldest pending one is dropped when full).
    pub fn push(&mut self, job: NotifyJob) {
        if self.pending() >= N {
            // The oldest waiting job: the running one (at the front) stays.
            let _ = self.jobs.remove(usize::from(self.running));
            self.dropped = self.dropped.saturating_add(1);
        }
        if self.jobs.capacity() == 0 {
            // One transition's jobs at once, not the default growth from 4.
            self.jobs.reserve_exact(3);
        }
        self.jobs.push_back(job);
    }

    /// Rewrite (or drop, `None`) every waiting job; the running one stays as it is. A reload
    /// uses it to carry role jobs over to the new lists by name.
    pub fn retain_map(&mut self, mut f: impl FnMut(NotifyJob) -> Option<NotifyJob>) {
        let skip = usize::from(self.running);
        let old: std::vec::Vec<NotifyJob> = self.jobs.drain(skip..).collect();
        self.jobs.extend(old.into_iter().filter_map(&mut f));
    }

    /// The next job to spawn, if none is running. The daemon must call [`Self::finished`]
    /// when its child is reaped (or failed to spawn).
    pub fn start_next(&mut self) -> Option<NotifyJob> {
        if self.running {
            return None;
        }
        let job = self.jobs.front().copied();
        self.running = job.is_some();
        job
    }

    pub fn finished(&mut self) {
        if self.running {
            let _ = self.jobs.pop_front();
            self.running = false;
        }
        if self.jobs.is_empty() {
            // Give the room back: most queues stay empty for hours.
            self.jobs = std::collections::VecDeque::new();
        }
    }

    pub fn running(&self) -> Option<NotifyJob> {
        if self.running {
            self.jobs.front().copied()
        } else {
            None
        }
    }

    pub fn pending(&self) -> usize {
        self.jobs.len() - usize::from(self.running)
    }

    pub fn dropped(&self) -> u32 {
        self.dropped
    }
}

/// Split a configured command line into arguments: whitespace separates, single or double
/// quotes group (no escapes inside single quotes, `\` escapes the next char elsewhere).
/// Runs at config load, so it may allocate.
pub fn split_command(line: &str) -> Option<std::vec::Vec<std::string::String>> {
    let mut out = std::vec::Vec::new();
    let mut cur = std::string::String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('"') | None, '\\') => {
                cur.push(chars.next()?);
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(core::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NotifyConfig {
        NotifyConfig {
            name: "vi1".into(),
            kind: NotifyKind::Instance,
            master: split_command("/etc/m.sh 'a b'"),
            backup: None,
            fault: None,
            stop: None,
            generic: split_command("/etc/notify.sh"),
            up: None,
            down: None,
            hotplug: Some(HOTPLUG_CALL.into()),
            ..NotifyConfig::default()
        }
    }

    #[test]
    fn generic_notify_gets_type_name_state_priority() {
        let c = cfg();
        let ev = NotifyEvent::new(NotifyState::Master, 150);
        let jobs = c.jobs(ev);
        assert_eq!(
            jobs.iter().map(|j| j.slot).collect::<std::vec::Vec<_>>(),
            [Slot::Specific, Slot::Generic, Slot::Hotplug]
        );
        let cmd = c.command(jobs[0]).unwrap();
        assert_eq!(&cmd.argv()[..], ["/etc/m.sh", "a b"]);
        let cmd = c.command(jobs[1]).unwrap();
        assert_eq!(
            &cmd.argv()[..],
            ["/etc/notify.sh", "INSTANCE", "vi1", "MASTER", "150"]
        );
        let cmd = c.command(jobs[2]).unwrap();
        assert_eq!(&cmd.argv()[..], ["/sbin/hotplug-call", "minivrrp"]);
        assert_eq!(
            &cmd.env()[..3],
            ["ACTION=NOTIFY_MASTER", "TYPE=INSTANCE", "NAME=vi1"]
        );
    }

    #[test]
    fn every_command_gets_the_transition_context_in_its_environment() {
        let c = cfg();
        let ev = NotifyEvent {
            state: NotifyState::Backup,
            priority: 90,
            context: NotifyContext {
                prev: Some(NotifyState::Master),
                reason: ReasonText::new(format_args!(
                    "higher priority {} from {}",
                    200, "10.0.0.2"
                )),
                master: Some(IpAddr::from([10, 0, 0, 2])),
            },
        };
        let want = [
            "MINIVRRP_PREV_STATE=MASTER",
            "MINIVRRP_REASON=higher priority 200 from 10.0.0.2",
            "MINIVRRP_MASTER=10.0.0.2",
            "MINIVRRP_PRIORITY=90",
        ];
        let mut c2 = c.clone();
        c2.backup = split_command("/etc/b.sh");
        let jobs = c2.jobs(ev);
        assert_eq!(jobs.len(), 3);
        for (job, skip) in jobs.iter().zip([0, 0, 3]) {
            let cmd = c2.command(*job).unwrap();
            assert_eq!(&cmd.env()[skip..], want, "{:?}", job.slot);
        }
        // Unknown values are set empty (never inherited); INIT is the state before the first.
        let first = NotifyEvent::new(NotifyState::Fault, 0);
        let cmd = c.command(c.jobs(first)[0]).unwrap();
        assert_eq!(
            &cmd.env()[..],
            [
                "MINIVRRP_PREV_STATE=INIT",
                "MINIVRRP_REASON=",
                "MINIVRRP_MASTER=",
                "MINIVRRP_PRIORITY=0"
            ]
        );
        // A sync group has no priority or master of its own.
        let mut g = c.clone();
        g.kind = NotifyKind::Group;
        let cmd = g.command(g.jobs(ev)[0]).unwrap();
        assert_eq!(cmd.env()[3], "MINIVRRP_PRIORITY=");
    }

    #[test]
    fn reason_text_is_cut_at_a_character_boundary() {
        let long = "é".repeat(REASON_LEN);
        let t = ReasonText::new(&long);
        assert_eq!(t.as_str(), "é".repeat(REASON_LEN / 2));
        let v6 = "equal priority 255 from higher address ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        assert_eq!(ReasonText::new(v6).as_str(), v6);
    }

    #[test]
    fn group_has_no_stop_and_unset_scripts_are_skipped() {
        let mut c = cfg();
        c.kind = NotifyKind::Group;
        let stop = NotifyEvent::new(NotifyState::Stop, 0);
        assert!(c.jobs(stop).is_empty());
        let backup = NotifyEvent::new(NotifyState::Backup, 100);
        let jobs = c.jobs(backup);
        assert_eq!(jobs.len(), 2);
        assert_eq!(
            &c.command(jobs[0]).unwrap().argv()[1..],
            ["GROUP", "vi1", "BACKUP", "100"]
        );
    }

    #[test]
    fn queue_runs_one_at_a_time_in_order() {
        let c = cfg();
        let mut q: NotifyQueue<8> = NotifyQueue::new();
        let m = NotifyEvent::new(NotifyState::Master, 150);
        let f = NotifyEvent::new(NotifyState::Fault, 0);
        q.push_transition(&c, m);
        q.push_transition(&c, f);
        let mut order = std::vec::Vec::new();
        while let Some(j) = q.start_next() {
            assert_eq!(
                q.start_next(),
                None,
                "second job started before the first ended"
            );
            order.push((j.slot, j.event.state));
            q.finished();
        }
        assert_eq!(
            order,
            [
                (Slot::Specific, NotifyState::Master),
                (Slot::Generic, NotifyState::Master),
                (Slot::Hotplug, NotifyState::Master),
                (Slot::Generic, NotifyState::Fault),
                (Slot::Hotplug, NotifyState::Fault),
            ]
        );
    }

    #[test]
    fn full_queue_drops_oldest() {
        let c = cfg();
        let mut q: NotifyQueue<2> = NotifyQueue::new();
        q.push_transition(&c, NotifyEvent::new(NotifyState::Master, 1));
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.start_next().map(|j| j.slot), Some(Slot::Generic));
    }

    #[test]
    fn split_command_handles_quotes() {
        assert_eq!(
            split_command(r#"/bin/x "a b" c\ d 'e"f'"#).unwrap(),
            ["/bin/x", "a b", "c d", "e\"f"]
        );
        assert!(split_command("'open").is_none());
        assert!(split_command("  ").unwrap().is_empty());
    }

    #[test]
    fn real_server_command_as_written_then_hotplug_up_down() {
        let c = NotifyConfig {
            name: "web1".into(),
            kind: NotifyKind::RealServer,
            up: split_command("/etc/rs.sh up"),
            hotplug: Some(HOTPLUG_CALL.into()),
            ..NotifyConfig::default()
        };
        let up = NotifyEvent::new(NotifyState::Up, 0);
        let jobs = c.jobs(up);
        assert_eq!(jobs.len(), 2);
        assert_eq!(
            &c.command(jobs[0]).unwrap().argv()[..],
            ["/etc/rs.sh", "up"]
        );
        let h = c.command(jobs[1]).unwrap();
        assert_eq!(&h.argv()[..], [HOTPLUG_CALL, HOTPLUG_SUBSYSTEM]);
        assert_eq!(
            &h.env()[..3],
            ["ACTION=NOTIFY_UP", "TYPE=REAL_SERVER", "NAME=web1"]
        );
        assert_eq!(h.env()[6], "MINIVRRP_PRIORITY=");
        // No notify_down: only the hook hears it.
        let down = c.jobs(NotifyEvent::new(NotifyState::Down, 0));
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].slot, Slot::Hotplug);
        assert_eq!(c.command(down[0]).unwrap().env()[0], "ACTION=NOTIFY_DOWN");
    }
}
