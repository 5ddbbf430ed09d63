//! Notify commands on VRRP transitions: `notify_master/backup/fault/stop`, the
//! generic `notify` (`TYPE NAME STATE PRIORITY` appended, keepalived's convention) and the
//! OpenWrt hook `/sbin/hotplug-call minivrrp` with `ACTION`/`TYPE`/`NAME` in the environment.
//!
//! Real servers' `notify_up` / `notify_down` and virtual servers' `quorum_up` / `quorum_down`
//! (and their hotplug events) run the same way, each server with a queue of its own.
//!
//! Non-blocking: each instance and each sync group has a `check::NotifyQueue`; a job is
//! spawned only after the previous one of the same queue was reaped, so scripts see the
//! transitions strictly in order. Output goes to /dev/null (nothing to register); the
//! runtime reaps children and offers them to [`Notifier::on_child_exit`].
//!
//! The same queues carry what follows an instance's or group's role (MASTER or not): its
//! `master_service` / `backup_service` procd services, `master_interface` netifd interfaces
//! and conntrackd's primary-backup steps, once per change of role and reconciled by the first
//! role after start or a reload; and each instance's `minivrrp.instance` ubus event, for
//! every transition and every change of effective priority (see `check::notify`).
//!
//! Nothing a script does can stall the daemon or another instance's notifications: queues
//! run side by side (up to `notify_max_running` children over all of them, taken round
//! robin so one busy queue cannot starve the others), and a job still running after
//! `notify_timeout` is killed with its process group, which lets its queue move on. Jobs run
//! as `script_user` when one is set; with `enable_script_security` a root daemon refuses
//! scripts that would run as root and that someone else could change ([`check_security`]).

use super::event_loop::Ctx;
use super::ids::Part;
use super::kernel::{ChildOf, Spawner};
use crate::base::{Duration, Instant};
use crate::check::notify::{
    conntrackd_steps, split_command, NotifyConfig, NotifyContext, NotifyEvent, NotifyJob,
    NotifyKind, NotifyQueue, NotifyState, ReasonText, RoleAct, RoleChange, Roles, Slot,
    HOTPLUG_CALL, RECONCILED, UBUS_EVENT,
};
use crate::check::ExitStatus;
use crate::config::{Config, Notify};
use crate::sys::{file, poll, process};
use crate::vrrp::instance::{Reason, State, Transition};

/// Environment variable overriding the hotplug program (tests; empty = none).
pub const HOTPLUG_ENV: &str = "MINIVRRP_HOTPLUG_CALL";
/// Environment variable overriding the `ubus` program (tests; empty = none).
pub const UBUS_ENV: &str = "MINIVRRP_UBUS";
/// Pending jobs per instance/group: up to 3 notify commands, 8 + 8 services, 8 interfaces,
/// 3 conntrackd steps and the event per transition, and room for the next transition.
const QUEUE: usize = 64;
/// How long `shutdown` waits for the notify_stop jobs.
pub const STOP_WAIT: Duration = Duration::from_secs(1);

struct Entry {
    cfg: NotifyConfig,
    /// The role services and interfaces were last set to (MASTER or not); `None` until the
    /// first transition, which reconciles.
    role_master: Option<bool>,
    queue: NotifyQueue<QUEUE>,
    /// The running job's child.
    child: Option<i32>,
    /// When the running job is killed (`notify_timeout`); `None` once it was.
    deadline: Option<Instant>,
    last: Option<NotifyState>,
    priority: u8,
}

/// See the module docs.
pub struct Notifier {
    instances: Vec<Entry>,
    groups: Vec<Entry>,
    /// Virtual and real servers with a command or the hotplug hook.
    services: Vec<Entry>,
    /// Per virtual server: its entry in `services`, and per real server its entry.
    vs_entry: Vec<Option<usize>>,
    rs_entry: Vec<Vec<Option<usize>>>,
    hotplug: Option<String>,
    /// The `ubus` program for `minivrrp.instance` events ([`ubus_from_env`]).
    ubus: Option<String>,
    timeout: Duration,
    max_running: usize,
    /// uid/gid of `script_user`.
    user: Option<(u32, u32)>,
    /// Round robin: the queue (instances, then groups) looked at first by the next pump.
    cursor: usize,
    /// A job may be queued or running. Cleared by a pump that found every queue empty and
    /// no child running, so the pump after each advert of an idle daemon costs nothing
    /// instead of a walk over every instance's queue (a fifth of an idle backup's time).
    busy: bool,
    spawned: u64,
    failed: u64,
    timed_out: u64,
    /// Instances whose queue got past the role jobs of leaving MASTER for BACKUP
    /// (`Slot::Resign`), for the runtime to tell ([`Notifier::take_resign`]).
    resign: heapless::Deque<u16, RESIGN_QUEUE>,
}

/// [`Notifier::resign`]'s capacity: the runtime takes them in the settle step that reached
/// them, so a few at most wait; a full one drops the oldest (that router's new master then
/// starts its services after Master_Down_Interval instead).
const RESIGN_QUEUE: usize = 16;

/// uid/gid of the configured `script_user`, if any.
pub fn script_user(cfg: &Config) -> Result<Option<(u32, u32)>, String> {
    match &cfg.globals.script_user {
        Some(u) => process::lookup_user(u)
            .map(Some)
            .ok_or_else(|| format!("globals.script_user: unknown user '{u}'")),
        None => Ok(None),
    }
}

/// keepalived `enable_script_security`: when we run as root, every script that would run as
/// root (no `script_user`, no script `user`) must be one only root can change
/// ([`super::scripts::prepare`], which also resolves what runs).
pub fn check_security(cfg: &Config) -> Result<(), String> {
    super::scripts::prepare(cfg, None).map(|_| ())
}

/// The `ubus` program: `$MINIVRRP_UBUS` when set (empty: none), else `ubus` found in PATH
/// (OpenWrt: /bin/ubus). Without it no `minivrrp.instance` events are sent.
pub fn ubus_from_env() -> Option<String> {
    match std::env::var(UBUS_ENV) {
        Ok(p) if p.is_empty() => None,
        Ok(p) => Some(p),
        Err(_) => {
            let path =
                std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
            path.split(':')
                .filter(|d| !d.is_empty())
                .map(|d| format!("{d}/ubus"))
                .find(|p| file::is_executable(p))
        }
    }
}

/// What `minivrrp check` (and the daemon at start) warns about in the role settings, one
/// line each: a listed service without an init script, or one enabled at boot (procd would
/// start it behind our back on every router); an interface netifd's config does not have;
/// conntrackd or its config file missing. `root` is `/` (tests: another tree).
pub fn role_warnings(cfg: &Config, root: &str) -> Vec<String> {
    let at = |p: &str| format!("{}{p}", root.trim_end_matches('/'));
    let rc_d: Vec<String> = std::fs::read_dir(at("/etc/rc.d"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let network = std::fs::read_to_string(at("/etc/config/network")).ok();
    let interfaces: Option<Vec<String>> = network.map(|t| {
        crate::config::uci::parse(&t)
            .map(|f| {
                f.sections
                    .into_iter()
                    .filter(|s| s.stype == "interface")
                    .filter_map(|s| s.name)
                    .collect()
            })
            .unwrap_or_default()
    });
    let mut out = Vec::new();
    let sections = cfg
        .instances
        .iter()
        .map(|i| ("instance", &i.name, &i.notify))
        .chain(
            cfg.sync_groups
                .iter()
                .map(|g| ("sync_group", &g.name, &g.notify)),
        );
    for (kind, name, n) in sections {
        for (opt, list) in [
            ("master_service", &n.master_services),
            ("backup_service", &n.backup_services),
        ] {
            for svc in list {
                let init = at(&format!("/etc/init.d/{svc}"));
                if !file::is_executable(&init) {
                    out.push(format!(
                        "{kind} {name}: {opt} '{svc}': no init script {init}"
                    ));
                }
                // rc.d links are S<NN><name> (procd's enable).
                if let Some(link) = rc_d.iter().find(|l| {
                    l.len() == svc.len() + 3
                        && l.starts_with('S')
                        && l.ends_with(svc.as_str())
                        && l.as_bytes()[1..3].iter().all(u8::is_ascii_digit)
                }) {
                    out.push(format!(
                        "{kind} {name}: {opt} '{svc}' is enabled at boot (/etc/rc.d/{link}): \
                         run /etc/init.d/{svc} disable so that only minivrrp starts it"
                    ));
                }
            }
        }
        for ifname in &n.master_interfaces {
            match &interfaces {
                Some(known) if !known.contains(ifname) => out.push(format!(
                    "{kind} {name}: master_interface '{ifname}': no such interface in /etc/config/network"
                )),
                _ => {}
            }
        }
    }
    if let Some(i) = cfg.instances.iter().find(|i| i.conntrackd.is_some()) {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
        if !path
            .split(':')
            .any(|d| file::is_executable(&format!("{d}/conntrackd")))
        {
            out.push(format!(
                "instance {}: conntrackd is set but no conntrackd program is in PATH",
                i.name
            ));
        }
        let conf = &cfg.globals.conntrackd_config;
        if !std::path::Path::new(&at(conf)).is_file() {
            out.push(format!(
                "instance {}: conntrackd is set but {conf} does not exist",
                i.name
            ));
        }
    }
    out
}

/// The hotplug program to run: `$MINIVRRP_HOTPLUG_CALL` when set (empty: none), else
/// `/sbin/hotplug-call` when it exists and is executable.
pub fn hotplug_from_env() -> Option<String> {
    match std::env::var(HOTPLUG_ENV) {
        Ok(p) if p.is_empty() => None,
        Ok(p) => Some(p),
        Err(_) => file::is_executable(HOTPLUG_CALL).then(|| HOTPLUG_CALL.to_string()),
    }
}

fn argv(what: &str, line: &Option<String>) -> Option<Vec<String>> {
    let line = line.as_deref()?;
    match split_command(line) {
        Some(v) if !v.is_empty() => Some(v),
        _ => {
            log::error!("{what}: cannot split command line {line:?}, ignored");
            None
        }
    }
}

/// The boxed role settings, `None` when there is nothing to follow the role.
fn roles(n: &Notify, conntrackd: Option<String>, ubus: Option<String>) -> Option<Box<Roles>> {
    let r = Roles {
        master_services: n.master_services.clone(),
        backup_services: n.backup_services.clone(),
        master_interfaces: n.master_interfaces.clone(),
        conntrackd,
        ubus,
    };
    (r != Roles::default()).then(|| Box::new(r))
}

fn notify_config(
    name: &str,
    kind: NotifyKind,
    n: &Notify,
    hotplug: &Option<String>,
) -> NotifyConfig {
    NotifyConfig {
        roles: roles(n, None, None),
        name: name.to_string(),
        kind,
        master: argv(name, &n.master),
        backup: argv(name, &n.backup),
        fault: argv(name, &n.fault),
        stop: argv(name, &n.stop),
        generic: argv(name, &n.any),
        up: None,
        down: None,
        hotplug: hotplug.clone(),
    }
}

/// A real or virtual server's notifier: `Some` when it has a command or there is a hotplug
/// hook to tell.
fn service_config(
    name: &str,
    kind: NotifyKind,
    up: &Option<String>,
    down: &Option<String>,
    hotplug: &Option<String>,
) -> Option<NotifyConfig> {
    if up.is_none() && down.is_none() && hotplug.is_none() {
        return None;
    }
    Some(NotifyConfig {
        name: name.to_string(),
        kind,
        up: argv(name, up),
        down: argv(name, down),
        hotplug: hotplug.clone(),
        ..NotifyConfig::default()
    })
}

fn entry(cfg: NotifyConfig) -> Entry {
    Entry {
        cfg,
        role_master: None,
        queue: NotifyQueue::new(),
        child: None,
        deadline: None,
        last: None,
        priority: 0,
    }
}

fn is_role(slot: Slot) -> bool {
    matches!(
        slot,
        Slot::Service { .. } | Slot::Interface { .. } | Slot::Conntrackd { .. }
    )
}

/// A job as a log line names it: `service dnsmasq start`, `interface wg0 down`...
struct JobText<'a>(&'a NotifyConfig, NotifyJob);

impl core::fmt::Display for JobText<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = self.0.role_name(self.1.slot).unwrap_or("?");
        let verb = |act: RoleAct, on: &'static str, off: &'static str| match act {
            RoleAct::Start => on,
            RoleAct::Stop | RoleAct::StopIfRunning => off,
        };
        match self.1.slot {
            Slot::Service { act, .. } => write!(f, "service {name} {}", verb(act, "start", "stop")),
            Slot::Interface { act, .. } => {
                write!(f, "interface {name} {}", verb(act, "up", "down"))
            }
            Slot::Conntrackd { step } => write!(
                f,
                "conntrackd {:?} for {}",
                conntrackd_steps(self.1.event.state)
                    .get(usize::from(step))
                    .copied()
                    .unwrap_or(&[]),
                self.1.event.state.as_str()
            ),
            Slot::Event { .. } => write!(f, "ubus event {UBUS_EVENT}"),
            _ => write!(f, "notify command"),
        }
    }
}

/// After a reload: waiting role jobs follow their service or interface to its place in the
/// new lists (dropped when it is no longer listed), and a name the reload added is brought
/// to the current role (stopped only if it runs where it must not); a removed one is left
/// as it is, no longer managed.
fn reconcile_roles(n: &mut Entry, old: &NotifyConfig) {
    let new = &n.cfg;
    // The job's name in the old lists, found in the same list of the new configuration.
    let lists = |c: &NotifyConfig, slot: Slot| -> Option<usize> {
        let name = c.role_name(slot)?;
        let list = match slot {
            Slot::Service { backup: false, .. } => &new.roles().master_services,
            Slot::Service { backup: true, .. } => &new.roles().backup_services,
            _ => &new.roles().master_interfaces,
        };
        list.iter().position(|x| x == name)
    };
    n.queue.retain_map(|mut job| {
        let slot = job.slot;
        if let Slot::Service { idx, .. } | Slot::Interface { idx, .. } = &mut job.slot {
            *idx = lists(old, slot)? as u8;
        }
        Some(job)
    });
    let Some(to_master) = n.role_master else {
        return;
    };
    let added = |o: &[String], nw: &[String]| -> Vec<usize> {
        (0..nw.len()).filter(|&i| !o.contains(&nw[i])).collect()
    };
    let mut slots: Vec<Slot> = Vec::new();
    for (backup, o, nw) in [
        (
            false,
            &old.roles().master_services,
            &new.roles().master_services,
        ),
        (
            true,
            &old.roles().backup_services,
            &new.roles().backup_services,
        ),
    ] {
        for idx in added(o, nw) {
            let run = to_master != backup;
            let act = if run {
                RoleAct::Start
            } else {
                RoleAct::StopIfRunning
            };
            slots.push(Slot::Service {
                backup,
                idx: idx as u8,
                act,
            });
        }
        for gone in o.iter().filter(|x| !nw.contains(x)) {
            log::info!(
                "{}: service {gone} no longer follows the role: left as it is",
                new.name
            );
        }
    }
    for idx in added(
        &old.roles().master_interfaces,
        &new.roles().master_interfaces,
    ) {
        let act = if to_master {
            RoleAct::Start
        } else {
            RoleAct::StopIfRunning
        };
        slots.push(Slot::Interface {
            idx: idx as u8,
            act,
        });
    }
    for gone in old
        .roles()
        .master_interfaces
        .iter()
        .filter(|x| !new.roles().master_interfaces.contains(x))
    {
        log::info!(
            "{}: interface {gone} no longer follows the role: left as it is",
            new.name
        );
    }
    let state = n.last.unwrap_or(NotifyState::Backup);
    for slot in slots {
        n.queue.push(NotifyJob {
            slot,
            event: NotifyEvent::new(state, n.priority),
        });
    }
}

fn map_state(s: State) -> Option<NotifyState> {
    match s {
        State::Master => Some(NotifyState::Master),
        State::Backup => Some(NotifyState::Backup),
        State::Fault => Some(NotifyState::Fault),
        State::Init => None,
    }
}

impl Notifier {
    /// `hotplug`: the hotplug program (see [`hotplug_from_env`]) or `None`. Fails when
    /// `script_user` does not exist.
    pub fn new(cfg: &Config, hotplug: Option<String>) -> Result<Notifier, String> {
        let mut n = Notifier {
            instances: Vec::new(),
            groups: Vec::new(),
            services: Vec::new(),
            vs_entry: Vec::new(),
            rs_entry: Vec::new(),
            hotplug,
            ubus: ubus_from_env(),
            timeout: cfg.globals.notify_timeout,
            max_running: 1,
            user: None,
            cursor: 0,
            busy: false,
            spawned: 0,
            failed: 0,
            timed_out: 0,
            resign: heapless::Deque::new(),
        };
        if n.ubus.is_none() {
            log::info!("ubus not found: no minivrrp.instance events are sent");
        }
        n.build(cfg)?;
        Ok(n)
    }

    fn build(&mut self, cfg: &Config) -> Result<(), String> {
        self.user = script_user(cfg)?;
        self.timeout = cfg.globals.notify_timeout;
        self.max_running = (cfg.globals.notify_max_running as usize).max(1);
        self.instances = cfg
            .instances
            .iter()
            .map(|i| {
                let mut c = notify_config(&i.name, NotifyKind::Instance, &i.notify, &self.hotplug);
                c.roles = roles(&i.notify, i.conntrackd.clone(), self.ubus.clone());
                entry(c)
            })
            .collect();
        self.groups = cfg
            .sync_groups
            .iter()
            .map(|g| {
                entry(notify_config(
                    &g.name,
                    NotifyKind::Group,
                    &g.notify,
                    &self.hotplug,
                ))
            })
            .collect();
        self.services.clear();
        self.vs_entry.clear();
        self.rs_entry.clear();
        for vs in &cfg.virtual_servers {
            let c = service_config(
                &vs.name,
                NotifyKind::VirtualServer,
                &vs.quorum_up,
                &vs.quorum_down,
                &self.hotplug,
            );
            self.vs_entry.push(c.map(|c| {
                self.services.push(entry(c));
                self.services.len() - 1
            }));
            let mut rs_entries = Vec::with_capacity(vs.real_servers.len());
            for rs in &vs.real_servers {
                // Only a checked server changes health.
                let c = rs.check.and_then(|_| {
                    service_config(
                        &rs.name,
                        NotifyKind::RealServer,
                        &rs.notify_up,
                        &rs.notify_down,
                        &self.hotplug,
                    )
                });
                rs_entries.push(c.map(|c| {
                    self.services.push(entry(c));
                    self.services.len() - 1
                }));
            }
            self.rs_entry.push(rs_entries);
        }
        Ok(())
    }

    /// Instance `t.inst` made transition `t` (INIT is not announced).
    pub fn instance_transition(&mut self, t: &Transition) {
        let Some(e) = self.instances.get_mut(usize::from(t.inst)) else {
            return;
        };
        if let Some(s) = map_state(t.to) {
            let context = NotifyContext {
                prev: map_state(t.from),
                reason: ReasonText::new(t.reason),
                master: t.master,
            };
            Self::push(e, s, t.priority, context);
            self.busy = true;
        }
    }

    /// Sync group `idx` entered `state` because of a member's transition (`why`); its
    /// generic notify gets `GROUP NAME STATE`, its previous state is the last announced one.
    pub fn group_transition(&mut self, idx: usize, state: State, why: Reason) {
        let Some(e) = self.groups.get_mut(idx) else {
            return;
        };
        if let Some(s) = map_state(state) {
            let context = NotifyContext {
                prev: e.last,
                reason: ReasonText::new(why),
                master: None,
            };
            Self::push(e, s, 0, context);
            self.busy = true;
        }
    }

    /// Real server `rs` of virtual server `vs` passed (`up`) or failed its check.
    pub fn real_server_change(&mut self, vs: usize, rs: usize, up: bool) {
        let k = self
            .rs_entry
            .get(vs)
            .and_then(|v| v.get(rs))
            .copied()
            .flatten();
        let why = if up { "check passed" } else { "check failed" };
        self.service_change(k, up, why);
    }

    /// Virtual server `vs` regained (`up`) or lost quorum; `why` says with which weights.
    pub fn quorum_change(&mut self, vs: usize, up: bool, why: impl core::fmt::Display) {
        let k = self.vs_entry.get(vs).copied().flatten();
        self.service_change(k, up, why);
    }

    fn service_change(&mut self, k: Option<usize>, up: bool, why: impl core::fmt::Display) {
        let Some(e) = k.and_then(|k| self.services.get_mut(k)) else {
            return;
        };
        let s = if up {
            NotifyState::Up
        } else {
            NotifyState::Down
        };
        let context = NotifyContext {
            prev: e.last,
            reason: ReasonText::new(why),
            master: None,
        };
        Self::push(e, s, 0, context);
        self.busy = true;
    }

    /// Every queue: instances, groups, then servers (the pump's order).
    fn entries(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.instances
            .iter()
            .chain(self.groups.iter())
            .chain(self.services.iter())
    }

    fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry> + '_ {
        self.instances
            .iter_mut()
            .chain(self.groups.iter_mut())
            .chain(self.services.iter_mut())
    }

    fn push(e: &mut Entry, s: NotifyState, priority: u8, context: NotifyContext) {
        if e.last == Some(s) {
            return;
        }
        e.last = Some(s);
        e.priority = priority;
        let event = NotifyEvent {
            state: s,
            priority,
            context,
        };
        // Services and interfaces follow the role (MASTER or not), once per change of it:
        // BACKUP -> FAULT stops nothing twice. UP/DOWN (servers) have no role.
        let roles = match s {
            NotifyState::Up | NotifyState::Down => None,
            _ => {
                let to_master = s == NotifyState::Master;
                let change = (e.role_master != Some(to_master)).then_some(RoleChange {
                    to_master,
                    reconcile: e.role_master.is_none(),
                });
                e.role_master = Some(to_master);
                change
            }
        };
        e.queue.push_transition_roles(&e.cfg, event, roles);
    }

    /// Instance `inst`'s effective priority is now `priority` without a transition
    /// (trackers, an operator override): one `minivrrp.instance` event, when ubus is there
    /// and the instance was announced (a transition already carried a priority it had).
    pub fn priority_change(
        &mut self,
        inst: usize,
        priority: u8,
        master: Option<core::net::IpAddr>,
    ) {
        let Some(e) = self.instances.get_mut(inst) else {
            return;
        };
        let Some(state) = e.last else { return };
        if e.priority == priority || e.cfg.roles().ubus.is_none() {
            e.priority = priority;
            return;
        }
        let old = e.priority;
        e.priority = priority;
        let event = NotifyEvent {
            state,
            priority,
            context: NotifyContext {
                prev: Some(state),
                reason: ReasonText::new(format_args!("effective priority {old} -> {priority}")),
                master,
            },
        };
        e.queue.push(NotifyJob {
            slot: Slot::Event {
                priority_only: true,
            },
            event,
        });
        self.busy = true;
    }

    fn running(&self) -> usize {
        self.children().count()
    }

    /// Start queued jobs, at most `notify_max_running` children at once, taking the queues
    /// round robin from where the last pump stopped; returns the earliest kill deadline.
    pub fn pump(&mut self, now: Instant, procs: &mut dyn Spawner) -> Option<Instant> {
        if !self.busy {
            return None;
        }
        let n = self.instances.len() + self.groups.len() + self.services.len();
        let mut running = self.running();
        // Each pass either starts a child or consumes a job that cannot run: bounded.
        let mut idle_in_a_row = 0;
        while running < self.max_running && n > 0 && idle_in_a_row < n {
            let k = self.cursor % n;
            self.cursor = (k + 1) % n;
            if self.spawn_next(k, now, procs) {
                running += 1;
                idle_in_a_row = 0;
            } else {
                idle_in_a_row += 1;
            }
        }
        // No child and no queue could start one: with nothing running, every queue is empty.
        if running == 0 {
            self.busy = false;
        }
        self.next_deadline()
    }

    /// Start the next job of queue `k` if it has none running; true if a child started.
    fn spawn_next(&mut self, k: usize, now: Instant, procs: &mut dyn Spawner) -> bool {
        let (timeout, user) = (self.timeout, self.user);
        let (ni, ng) = (self.instances.len(), self.groups.len());
        let e = if k < ni {
            self.instances.get_mut(k)
        } else if k < ni + ng {
            self.groups.get_mut(k - ni)
        } else {
            self.services.get_mut(k - ni - ng)
        };
        let Some(e) = e else {
            return false;
        };
        // Bounded: each failed spawn consumes one pending job.
        while e.child.is_none() {
            let Some(job) = e.queue.start_next() else {
                return false;
            };
            if job.slot == Slot::Resign {
                // Nothing to run: the stops before it are done (module docs of `Slot`).
                e.queue.finished();
                if k < ni {
                    if self.resign.is_full() {
                        self.resign.pop_front();
                    }
                    let _ = self.resign.push_back(k as u16);
                }
                continue;
            }
            let Some(cmd) = e.cfg.command(job) else {
                log::error!("{}: {} cannot be run", e.cfg.name, JobText(&e.cfg, job));
                e.queue.finished();
                continue;
            };
            let mut argv = cmd.argv();
            if e.cfg.kind == NotifyKind::Group && job.slot == Slot::Generic {
                // keepalived passes `GROUP NAME STATE` to a group's notify: no priority.
                argv.pop();
            }
            let env = cmd.env();
            // procd, netifd and conntrackd take orders from root only: `script_user` is for
            // the user's scripts, not for the daemon's own fixed commands.
            let user = if is_role(job.slot) || matches!(job.slot, Slot::Event { .. }) {
                None
            } else {
                user
            };
            match procs.spawn(ChildOf::Notify(&e.cfg.name), &argv, &env, user) {
                Ok(pid) => {
                    log::debug!("{}: notify {:?} pid {pid}", e.cfg.name, &argv[..]);
                    e.child = Some(pid);
                    e.deadline = Some(now + timeout);
                    self.spawned += 1;
                    return true;
                }
                Err(err) if is_role(job.slot) => {
                    log::error!(
                        "{}: {}: cannot run {:?}: {err}",
                        e.cfg.name,
                        JobText(&e.cfg, job),
                        &argv[..]
                    );
                    e.queue.finished();
                    self.failed += 1;
                }
                Err(err) => {
                    log::warn!("{}: cannot run {:?}: {err}", e.cfg.name, &argv[..]);
                    e.queue.finished();
                    self.failed += 1;
                }
            }
        }
        false
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.entries().filter_map(|e| e.deadline).min()
    }

    /// Kill every job past its `notify_timeout` (with its process group). Its queue moves on
    /// when the child is reaped; returns the next deadline.
    pub fn expire(&mut self, now: Instant, procs: &mut dyn Spawner) -> Option<Instant> {
        let timeout = self.timeout;
        let mut killed = 0;
        for e in self.entries_mut() {
            let (Some(pid), Some(at)) = (e.child, e.deadline) else {
                continue;
            };
            if at > now {
                continue;
            }
            e.deadline = None;
            log::warn!(
                "{}: notify command (pid {pid}) still running after {} s: killed",
                e.cfg.name,
                // Decimal text, not as_secs_f32(): float formatting costs 12 KB on the routers.
                crate::config::schema::format_duration(timeout)
            );
            if let Err(err) = procs.kill(pid) {
                log::warn!("{}: kill {pid}: {err}", e.cfg.name);
            }
            killed += 1;
        }
        self.timed_out += killed;
        self.next_deadline()
    }

    /// After anything may have queued or ended a job: start what may start and keep the
    /// notify timer at the earliest kill deadline.
    pub fn settle(&mut self, ctx: &mut Ctx, now: Instant, procs: &mut dyn Spawner) {
        let timer = Part::Notify.timer(0);
        match self.pump(now, procs) {
            Some(at) => {
                if let Err(e) = ctx.arm(timer, at) {
                    log::error!("notify timer: {e}");
                }
            }
            None => {
                ctx.cancel(timer);
            }
        }
    }

    /// The notify timer fired: kill overdue jobs (the runtime settles afterwards).
    pub fn on_timer(&mut self, now: Instant, procs: &mut dyn Spawner) {
        self.expire(now, procs);
    }

    /// A child was reaped; `true` if it was a notify job (the queue's next job starts).
    pub fn on_child_exit(&mut self, pid: i32, status: ExitStatus) -> bool {
        let Some(e) = self.entries_mut().find(|e| e.child == Some(pid)) else {
            return false;
        };
        e.child = None;
        e.deadline = None;
        let job = e.queue.running();
        e.queue.finished();
        match (job, status) {
            (_, ExitStatus::Code(0)) => {}
            (Some(j), ExitStatus::ExecFailed(err)) if is_role(j.slot) => {
                let err = nix::errno::Errno::from_raw(err);
                log::error!("{}: {}: cannot run: {err}", e.cfg.name, JobText(&e.cfg, j));
                self.failed += 1;
            }
            (_, ExitStatus::ExecFailed(err)) => {
                let err = nix::errno::Errno::from_raw(err);
                log::warn!("{}: cannot run notify command: {err}", e.cfg.name);
                self.failed += 1;
            }
            (None, _) => {}
            (Some(j), ExitStatus::Code(RECONCILED)) if is_role(j.slot) => {
                log::info!(
                    "{}: {}: found where it must not run, stopped",
                    e.cfg.name,
                    JobText(&e.cfg, j)
                );
            }
            (Some(j), _) if is_role(j.slot) => {
                log::error!("{}: {} failed ({status:?})", e.cfg.name, JobText(&e.cfg, j));
            }
            (Some(_), _) => log::warn!("{}: notify command ended with {status:?}", e.cfg.name),
        }
        self.busy = true;
        true
    }

    /// New configuration. Queues keep running; instances and groups are matched by name so
    /// the last announced state is kept (no repeated notify for an unchanged instance).
    pub fn reload(&mut self, cfg: &Config) {
        let old_i = core::mem::take(&mut self.instances);
        let old_g = core::mem::take(&mut self.groups);
        let old_s = core::mem::take(&mut self.services);
        self.busy = true;
        // The runtime checked `script_user` before the swap ([`script_user`]).
        if let Err(e) = self.build(cfg) {
            log::error!("notify: {e}");
        }
        for (new, old) in [
            (&mut self.instances, old_i),
            (&mut self.groups, old_g),
            (&mut self.services, old_s),
        ] {
            for o in old {
                // A removed one's running child is reaped by the runtime and is no longer ours.
                let same = |n: &&mut Entry| n.cfg.name == o.cfg.name && n.cfg.kind == o.cfg.kind;
                if let Some(n) = new.iter_mut().find(same) {
                    n.queue = o.queue;
                    n.child = o.child;
                    n.deadline = o.deadline;
                    n.last = o.last;
                    n.priority = o.priority;
                    n.role_master = o.role_master;
                    reconcile_roles(n, &o.cfg);
                }
            }
        }
    }

    /// The next instance (config index) whose services of the MASTER role it left for
    /// BACKUP are stopped: it may resign to the master that preempted it.
    pub fn take_resign(&mut self) -> Option<usize> {
        self.resign.pop_front().map(usize::from)
    }

    /// Pids of running notify jobs.
    pub fn children(&self) -> impl Iterator<Item = i32> + '_ {
        self.entries().filter_map(|e| e.child)
    }

    /// (spawned, failed to spawn).
    pub fn stats(&self) -> (u64, u64) {
        (self.spawned, self.failed)
    }

    /// Jobs killed for running past `notify_timeout`.
    pub fn timed_out(&self) -> u64 {
        self.timed_out
    }

    #[cfg(test)]
    fn shutdown_push_for_test(&mut self) {
        self.push_stop();
    }

    /// STOP for every instance and group (their last jobs).
    fn push_stop(&mut self) {
        for e in self.instances.iter_mut() {
            let context = NotifyContext {
                prev: e.last,
                reason: ReasonText::new(Reason::Shutdown),
                master: None,
            };
            let p = e.priority;
            Self::push(e, NotifyState::Stop, p, context);
        }
        // A group runs no notify_stop (keepalived), but its services leave the role too.
        for e in self.groups.iter_mut() {
            let context = NotifyContext {
                prev: e.last,
                reason: ReasonText::new(Reason::Shutdown),
                master: None,
            };
            Self::push(e, NotifyState::Stop, 0, context);
        }
        self.busy = true;
    }

    /// Daemon stop: announce STOP for every instance, run the queues and wait for them at
    /// most [`STOP_WAIT`] in total (reaping our own children: the loop no longer runs).
    pub fn shutdown(&mut self, procs: &mut dyn Spawner) {
        self.push_stop();
        self.wait(procs, |_| false);
    }

    /// Daemon stop, before the priority-0 adverts: the services and interfaces of every
    /// MASTER role stop first (waited for at most [`STOP_WAIT`]), so the backup that takes
    /// over on those adverts never finds them still running here. The STOP that follows has
    /// no role left to change.
    pub fn leave_roles(&mut self, procs: &mut dyn Spawner) {
        let mut waiting: Vec<usize> = Vec::new();
        let ni = self.instances.len();
        for (k, e) in self
            .instances
            .iter_mut()
            .chain(self.groups.iter_mut())
            .enumerate()
        {
            if e.role_master != Some(true) {
                continue;
            }
            e.role_master = Some(false);
            let event = NotifyEvent::new(NotifyState::Stop, e.priority);
            let queue = &mut e.queue;
            let before = queue.pending();
            let change = RoleChange {
                to_master: false,
                reconcile: false,
            };
            e.cfg
                .role_jobs(change, &mut |slot| queue.push(NotifyJob { slot, event }));
            if queue.pending() > before {
                waiting.push(k);
            }
        }
        if waiting.is_empty() {
            return;
        }
        self.busy = true;
        // Done when those queues are empty; other queues' jobs are not waited for here.
        self.wait(procs, |n| {
            waiting.iter().all(|&k| {
                let e = if k < ni {
                    n.instances.get(k)
                } else {
                    n.groups.get(k - ni)
                };
                e.is_none_or(|e| e.child.is_none() && e.queue.pending() == 0)
            })
        });
    }

    /// Runs the queues, reaping our own children (the loop no longer runs), until nothing
    /// runs, `done` says so, or [`STOP_WAIT`] passed.
    fn wait(&mut self, procs: &mut dyn Spawner, done: impl Fn(&Notifier) -> bool) {
        let start = crate::sys::clock::now();
        loop {
            self.pump(crate::sys::clock::now(), procs);
            let running: heapless::Vec<i32, 128> = self.children().take(128).collect();
            if running.is_empty() || done(self) {
                return;
            }
            for pid in running {
                if let Some(st) = procs.reap_pid(pid) {
                    self.on_child_exit(pid, st);
                }
            }
            if crate::sys::clock::now().saturating_duration_since(start) >= STOP_WAIT {
                let left = self.children().count();
                if left > 0 {
                    log::warn!("{left} notify command(s) still running at exit");
                }
                return;
            }
            // A 10 ms sleep: poll on no fds.
            let _ = poll::poll(&mut [], Some(Duration::from_millis(10)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::kernel::Processes;

    /// Instance `i` moved to `to` from INIT at startup, master unknown.
    fn moved(i: usize, to: State, priority: u8) -> Transition {
        Transition {
            inst: i as u16,
            from: State::Init,
            to,
            reason: Reason::Startup,
            priority,
            master: None,
        }
    }

    #[test]
    fn init_is_not_announced_and_repeats_are_dropped() {
        let c = Config::parse_str(
            "t",
            "
config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        // No commands configured, no hotplug: nothing is spawned, but states are tracked.
        let mut n = Notifier::new(&c, None).unwrap();
        n.instance_transition(&moved(0, State::Init, 100));
        assert_eq!(n.instances[0].last, None);
        n.instance_transition(&moved(0, State::Backup, 100));
        n.instance_transition(&moved(0, State::Backup, 100));
        assert_eq!(n.instances[0].last, Some(NotifyState::Backup));
        assert_eq!(n.stats(), (0, 0));
        assert_eq!(n.children().count(), 0);
    }

    fn config(text: &str) -> Config {
        let c = Config::parse_str("t", text).unwrap_or_else(|e| panic!("{e:?}"));
        // What the daemon does with a configuration it accepted: pin its programs.
        if let Ok(pins) = crate::daemon::scripts::prepare(&c, None) {
            process::pin(pins);
        }
        c
    }

    /// Reap our children until `pid` ended (or 5 s): what SIGCHLD does in the daemon.
    fn reap_until(n: &mut Notifier, pid: i32) -> ExitStatus {
        for _ in 0..500 {
            if let Some(st) = process::reap_pid(pid) {
                assert!(n.on_child_exit(pid, st));
                return st;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("child {pid} did not end");
    }

    fn wait_file(p: &std::path::Path) -> bool {
        (0..300).any(|_| {
            let there = p.exists();
            if !there {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            there
        })
    }

    fn child_of(n: &Notifier, idx: usize) -> Option<i32> {
        n.instances[idx].child
    }

    #[test]
    fn hung_notify_backup_delays_neither_other_instances_nor_beyond_its_timeout() {
        let dir = std::env::temp_dir().join(format!("mv-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let m1 = dir.join("vi1-master");
        let m2 = dir.join("vi2-master");
        let c = config(&format!(
            "
config globals 'globals'
    option notify_timeout '2'
config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
    option notify_backup 'sleep 30'
    option notify_master 'touch {}'
config instance 'vi2'
    option interface 'eth0'
    option vrid '2'
    list vip '10.0.0.11'
    option notify_master 'touch {}'
",
            m1.display(),
            m2.display()
        ));
        let mut n = Notifier::new(&c, None).unwrap();
        let t0 = Instant::from_secs(100);
        n.instance_transition(&moved(0, State::Backup, 100));
        assert_eq!(
            n.pump(t0, &mut Processes),
            Some(t0 + Duration::from_secs(2))
        );
        let hung = child_of(&n, 0).expect("notify_backup of vi1 runs");
        // Later: vi1 and vi2 become master. vi2's script runs at once beside the hung one;
        // vi1's waits for its own notify_backup (order per instance).
        n.instance_transition(&moved(0, State::Master, 100));
        n.instance_transition(&moved(1, State::Master, 100));
        n.pump(t0 + Duration::from_millis(500), &mut Processes);
        let pid2 = child_of(&n, 1).expect("vi2's notify_master started beside the hung script");
        assert_eq!(child_of(&n, 0), Some(hung));
        reap_until(&mut n, pid2);
        assert!(wait_file(&m2), "vi2's notify_master ran");
        assert!(
            !m1.exists(),
            "vi1's notify_master overtook its notify_backup"
        );
        // Not yet due: nothing is killed.
        n.expire(t0 + Duration::from_millis(1999), &mut Processes);
        assert_eq!(n.timed_out(), 0);
        // At notify_timeout the hung script is killed and vi1's notify_master follows.
        n.expire(t0 + Duration::from_secs(2), &mut Processes);
        assert_eq!(n.timed_out(), 1);
        let st = reap_until(&mut n, hung);
        assert_eq!(st, ExitStatus::Signal(libc::SIGKILL));
        n.pump(t0 + Duration::from_secs(2), &mut Processes);
        let pid1 = child_of(&n, 0).expect("vi1's notify_master runs after the kill");
        reap_until(&mut n, pid1);
        assert!(wait_file(&m1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The pump skips its walk while nothing is queued or running (an idle daemon pumps
    /// after every advert); a transition after idle pumps still starts its command, and the
    /// queue goes idle again once the command was reaped.
    #[test]
    fn idle_pumps_skip_the_walk_and_a_later_job_still_starts() {
        let dir = std::env::temp_dir().join(format!("mv-notify-idle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = dir.join("master");
        let c = config(&format!(
            "config instance 'vi1'\n    option interface 'eth0'\n    option vrid '1'\n    list vip '10.0.0.10'\n    option notify_master 'touch {}'\n",
            m.display()
        ));
        let mut n = Notifier::new(&c, None).unwrap();
        let now = Instant::from_secs(1);
        assert_eq!(n.pump(now, &mut Processes), None);
        assert!(!n.busy, "an empty pump leaves the notifier idle");
        assert_eq!(n.pump(now, &mut Processes), None);
        n.instance_transition(&moved(0, State::Master, 100));
        assert!(n.busy);
        assert!(
            n.pump(now, &mut Processes).is_some(),
            "the kill deadline of the started job"
        );
        let pid = child_of(&n, 0).expect("notify_master runs after idle pumps");
        reap_until(&mut n, pid);
        assert!(wait_file(&m));
        assert_eq!(n.pump(now, &mut Processes), None);
        assert!(!n.busy, "idle again once the job was reaped");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn at_most_notify_max_running_children_taken_round_robin() {
        let mut text =
            String::from("config globals 'globals'\n    option notify_max_running '2'\n");
        for i in 1..=4 {
            text.push_str(&format!(
                "config instance 'vi{i}'\n    option interface 'eth0'\n    option vrid '{i}'\n    list vip '10.0.0.{i}'\n    option notify_backup 'sleep 30'\n"
            ));
        }
        let mut n = Notifier::new(&config(&text), None).unwrap();
        let now = Instant::from_secs(1);
        for i in 0..4 {
            n.instance_transition(&moved(i, State::Backup, 100));
        }
        n.pump(now, &mut Processes);
        let running: Vec<usize> = (0..4).filter(|&i| child_of(&n, i).is_some()).collect();
        assert_eq!(running, [0, 1]);
        // One ends: the next waiting queue (vi3), not vi1 again, gets the slot.
        let p0 = child_of(&n, 0).unwrap();
        process::kill(p0).unwrap();
        reap_until(&mut n, p0);
        n.instance_transition(&moved(0, State::Master, 100));
        n.pump(now, &mut Processes);
        let running: Vec<usize> = (0..4).filter(|&i| child_of(&n, i).is_some()).collect();
        assert_eq!(running, [1, 2]);
        for i in [1, 2] {
            let p = child_of(&n, i).unwrap();
            process::kill(p).unwrap();
            reap_until(&mut n, p);
        }
    }

    fn is_root() -> bool {
        crate::sys::unix::effective_uid() == 0
    }

    fn scratch(tag: &str, mode: u32) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("mv-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    #[test]
    fn script_user_runs_notify_commands_as_that_user() {
        if !is_root() {
            eprintln!("SKIP script_user_runs_notify_commands_as_that_user: needs root");
            return;
        }
        let (uid, gid) = process::lookup_user("nobody").expect("user nobody");
        let dir = scratch("script-user", 0o777);
        let out = dir.join("ids");
        let c = config(&format!(
            "
config globals 'globals'
    option script_user 'nobody'
config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
    option notify_master '/bin/sh -c \"id -u > {0}.tmp; id -g >> {0}.tmp; mv {0}.tmp {0}\"'
",
            out.display()
        ));
        let mut n = Notifier::new(&c, None).unwrap();
        n.instance_transition(&moved(0, State::Master, 100));
        n.pump(Instant::from_secs(1), &mut Processes);
        let pid = child_of(&n, 0).unwrap();
        assert_eq!(reap_until(&mut n, pid), ExitStatus::Code(0));
        assert!(wait_file(&out));
        let ids = std::fs::read_to_string(&out).unwrap();
        assert_eq!(ids, format!("{uid}\n{gid}\n"));
        let unknown =
            config("config globals 'globals'\n    option script_user 'no-such-user-mv'\n");
        let e = Notifier::new(&unknown, None)
            .err()
            .expect("unknown user refused");
        assert!(e.contains("unknown user 'no-such-user-mv'"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn enable_script_security_refuses_scripts_others_can_change() {
        use std::os::unix::fs::PermissionsExt;
        if !is_root() {
            eprintln!("SKIP enable_script_security_refuses_scripts_others_can_change: needs root");
            return;
        }
        let safe = scratch("sec-safe", 0o755);
        let open = scratch("sec-open", 0o777);
        let script = |dir: &std::path::Path, mode: u32| {
            let p = dir.join(format!("notify-{mode:o}.sh"));
            std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let cfg = |security: bool, user: Option<&str>, cmd: &std::path::Path| {
            let mut t = format!(
                "config globals 'globals'\n    option enable_script_security '{}'\n",
                u8::from(security)
            );
            if let Some(u) = user {
                t.push_str(&format!("    option script_user '{u}'\n"));
            }
            t.push_str(&format!(
                "config instance 'vi1'\n    option interface 'eth0'\n    option vrid '1'\n    list vip '10.0.0.10'\n    option notify_master '{} arg'\n",
                cmd.display()
            ));
            config(&t)
        };
        let good = script(&safe, 0o755);
        let world_writable = script(&safe, 0o757);
        let in_open_dir = script(&open, 0o755);
        assert_eq!(check_security(&cfg(true, None, &good)), Ok(()));
        let e = check_security(&cfg(true, None, &world_writable)).unwrap_err();
        assert!(
            e.contains("is writable by everyone") && e.contains("notify-757.sh"),
            "{e}"
        );
        let e = check_security(&cfg(true, None, &in_open_dir)).unwrap_err();
        assert!(
            e.contains(&format!("{} is writable by everyone", open.display())),
            "{e}"
        );
        // Off: anything goes (keepalived's default). As a non-root script_user: not root's risk.
        assert_eq!(check_security(&cfg(false, None, &world_writable)), Ok(()));
        assert_eq!(
            check_security(&cfg(true, Some("nobody"), &in_open_dir)),
            Ok(())
        );
        // A track script is checked by the first word of its command.
        let t = format!(
            "config globals 'globals'\n    option enable_script_security '1'\nconfig script 'chk'\n    option command '{} --quiet'\n",
            world_writable.display()
        );
        assert!(check_security(&config(&t)).is_err());
        // So is the pre-master hook, also when it comes from globals.
        let t = format!(
            "config globals 'globals'\n    option enable_script_security '1'\n    option notify_pre_master '{}'\nconfig instance 'vi1'\n    option interface 'eth0'\n    option vrid '1'\n    list vip '10.0.0.10'\n",
            world_writable.display()
        );
        let e = check_security(&config(&t)).unwrap_err();
        assert!(e.starts_with("vi1: script"), "{e}");
        // So is a real server's script check, unless it runs as its own non-root user.
        let misc = |user: &str| {
            format!(
                "config globals 'globals'\n    option enable_script_security '1'\nconfig check 'misc'\n    option type 'script'\n    option command '{} 10.0.1.1'\n{user}",
                world_writable.display()
            )
        };
        let e = check_security(&config(&misc(""))).unwrap_err();
        assert!(e.starts_with("misc: script"), "{e}");
        assert_eq!(
            check_security(&config(&misc("    option user 'nobody'\n"))),
            Ok(())
        );
        // /tmp itself is sticky: a root-owned 0755 script there is fine.
        let p = std::env::temp_dir().join(format!("mv-sec-sticky-{}.sh", std::process::id()));
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        if std::env::temp_dir() == std::path::Path::new("/tmp") {
            assert_eq!(check_security(&cfg(true, None, &p)), Ok(()));
        }
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_dir_all(&safe);
        let _ = std::fs::remove_dir_all(&open);
    }

    #[test]
    fn real_server_and_quorum_commands_run_as_written_in_order() {
        let dir = std::env::temp_dir().join(format!("mv-notify-lvs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let c = config(&format!(
            "
config check 'tcp'
    option type 'tcp'
config virtual_server 'web'
    option address '10.0.0.254'
    option port '80'
    option check 'tcp'
    option quorum_up \"sh -c 'echo quorum up >> {l}'\"
    option quorum_down \"sh -c 'echo quorum down >> {l}'\"
config real_server 'web1'
    option virtual_server 'web'
    option address '10.0.0.11'
    option notify_up \"sh -c 'echo web1 up >> {l}'\"
    option notify_down \"sh -c 'echo web1 down >> {l}'\"
config real_server 'web2'
    option virtual_server 'web'
    option address '10.0.0.12'
",
            l = log.display()
        ));
        let mut n = Notifier::new(&c, None).unwrap();
        // web2 has no command and there is no hotplug hook: no queue for it.
        assert_eq!(n.services.len(), 2);
        let now = Instant::from_secs(1);
        n.real_server_change(0, 0, false);
        n.real_server_change(0, 0, false); // a repeat is dropped
        n.quorum_change(0, false, "lost");
        n.real_server_change(0, 1, false); // web2: nothing to run
        n.real_server_change(0, 0, true);
        let mut ran = 0;
        while ran < 3 {
            n.pump(now, &mut Processes);
            let pids: Vec<i32> = n.children().collect();
            assert!(!pids.is_empty(), "only {ran} commands ran");
            for pid in pids {
                assert_eq!(reap_until(&mut n, pid), ExitStatus::Code(0));
                ran += 1;
            }
        }
        n.pump(now, &mut Processes);
        assert_eq!(n.children().count(), 0);
        let text = std::fs::read_to_string(&log).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        // Per server in order; the two servers' queues run side by side.
        let web1: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("web1"))
            .collect();
        assert_eq!(web1, ["web1 down", "web1 up"]);
        lines.sort_unstable();
        assert_eq!(lines, ["quorum down", "web1 down", "web1 up"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod roles_tests {
    use super::*;
    use crate::daemon::kernel::Processes;

    fn config(text: &str) -> Config {
        Config::parse_str("t", text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn moved(from: State, to: State) -> Transition {
        Transition {
            inst: 0,
            from,
            to,
            reason: Reason::Startup,
            priority: 100,
            master: None,
        }
    }

    /// A notifier without ubus, whatever this machine has (events are tested on their own).
    fn notifier(c: &Config) -> Notifier {
        let mut n = Notifier::new(c, None).unwrap();
        n.ubus = None;
        n.build(c).unwrap();
        n
    }

    /// The waiting jobs of instance 0's queue as command lines, consumed without running
    /// (the resign marker, which runs nothing, as `(resign)`).
    fn drain(n: &mut Notifier) -> Vec<String> {
        let e = &mut n.instances[0];
        let mut out = Vec::new();
        while let Some(job) = e.queue.start_next() {
            if job.slot == Slot::Resign {
                out.push("(resign)".to_string());
                e.queue.finished();
                continue;
            }
            let cmd = e.cfg.command(job).expect("a command");
            out.push(cmd.argv().join(" "));
            e.queue.finished();
        }
        out
    }

    const VI1: &str = "config instance 'vi1'\n    option interface 'eth0'\n    option vrid '1'\n    list vip '10.0.0.10'\n";

    #[test]
    fn services_and_interfaces_follow_the_role_once_per_change_and_reconcile_first() {
        let c = config(&format!(
            "{VI1}    list master_service 'dnsmasq'\n    list backup_service 'relay'\n    list master_interface 'wg0'\n    option notify_master '/bin/true'\n"
        ));
        let mut n = notifier(&c);
        n.instance_transition(&moved(State::Init, State::Backup));
        let first = drain(&mut n);
        // The first role reconciles: what must not run is stopped only if it runs.
        assert_eq!(first.len(), 3, "{first:?}");
        assert!(
            first[0].starts_with("/bin/sh -c /etc/init.d/\"$0\" running")
                && first[0].ends_with(" dnsmasq"),
            "{first:?}"
        );
        assert_eq!(first[1], "/etc/init.d/relay start");
        assert!(first[2].contains("network.interface.$0\" status") && first[2].ends_with(" wg0"));
        n.instance_transition(&moved(State::Backup, State::Master));
        assert_eq!(
            drain(&mut n),
            [
                "/etc/init.d/relay stop",
                "/etc/init.d/dnsmasq start",
                "ubus call network.interface.wg0 up",
                "/bin/true"
            ]
        );
        n.instance_transition(&moved(State::Master, State::Fault));
        assert_eq!(
            drain(&mut n),
            [
                "/etc/init.d/dnsmasq stop",
                "/etc/init.d/relay start",
                "ubus call network.interface.wg0 down"
            ]
        );
        // FAULT -> BACKUP: the role did not change, nothing runs twice.
        n.instance_transition(&moved(State::Fault, State::Backup));
        assert!(drain(&mut n).is_empty());
        // Daemon stop leaves MASTER's role too: from MASTER, dnsmasq stops once.
        n.instance_transition(&moved(State::Backup, State::Master));
        drain(&mut n);
        n.shutdown_push_for_test();
        assert_eq!(
            drain(&mut n),
            [
                "/etc/init.d/dnsmasq stop",
                "/etc/init.d/relay start",
                "ubus call network.interface.wg0 down"
            ]
        );
    }

    #[test]
    fn a_sync_groups_services_follow_the_group() {
        let c = config(&format!(
            "{VI1}config sync_group 'g'\n    list member 'vi1'\n    list master_service 'dnsmasq'\n    list master_interface 'wan6'\n"
        ));
        let mut n = notifier(&c);
        let jobs = |n: &mut Notifier| {
            let e = &mut n.groups[0];
            let mut out = Vec::new();
            while let Some(job) = e.queue.start_next() {
                out.push(e.cfg.command(job).expect("a command").argv().join(" "));
                e.queue.finished();
            }
            out
        };
        n.group_transition(0, State::Master, Reason::Startup);
        // First role MASTER: started (no reconciliation needed for what must run).
        assert_eq!(
            jobs(&mut n),
            [
                "/etc/init.d/dnsmasq start",
                "ubus call network.interface.wan6 up"
            ]
        );
        n.group_transition(0, State::Fault, Reason::Startup);
        n.group_transition(0, State::Backup, Reason::Startup);
        assert_eq!(
            jobs(&mut n),
            [
                "/etc/init.d/dnsmasq stop",
                "ubus call network.interface.wan6 down"
            ]
        );
        // The instance itself lists nothing: its queue stays empty.
        n.instance_transition(&moved(State::Init, State::Master));
        assert!(drain(&mut n).is_empty());
    }

    /// Daemon stop: the master's services stop before the priority-0 adverts (leave_roles),
    /// so the STOP after them has nothing left to stop.
    #[test]
    fn leaving_stops_master_services_first_and_once() {
        let c = config(&format!(
            "{VI1}    list master_service 'mv-no-such-service'\n"
        ));
        let mut n = notifier(&c);
        n.instance_transition(&moved(State::Init, State::Master));
        drain(&mut n);
        // No such init script: the stop fails at spawn (an error line) and is consumed.
        n.leave_roles(&mut Processes);
        assert_eq!(n.instances[0].role_master, Some(false));
        assert_eq!(n.stats().1, 1, "the stop was tried once");
        n.shutdown_push_for_test();
        assert!(drain(&mut n).is_empty(), "STOP has no role left to change");
    }

    /// Leaving MASTER for BACKUP (preempted): once the queue is past the stops (here one
    /// that cannot even start, consumed with an error line), the instance is handed to the
    /// runtime for its resign, once. FAULT and the first role (reconciliation) hand nothing.
    #[test]
    fn a_master_leaving_for_backup_resigns_after_its_stops_only() {
        let c = config(&format!(
            "{VI1}    list master_service 'mv-no-such-service'\n"
        ));
        let mut n = notifier(&c);
        let now = Instant::ZERO;
        n.instance_transition(&moved(State::Init, State::Backup));
        assert!(!drain(&mut n).contains(&"(resign)".to_string()));
        n.instance_transition(&moved(State::Backup, State::Master));
        drain(&mut n);
        n.instance_transition(&moved(State::Master, State::Backup));
        n.pump(now, &mut Processes);
        assert_eq!(n.children().count(), 1, "the stop runs");
        assert_eq!(n.take_resign(), None, "not before the stop ended");
        // Reaped (its exec failed: one error line), the queue moves on to the marker.
        n.wait(&mut Processes, |_| false);
        assert_eq!(n.stats().1, 1, "the stop was tried");
        assert_eq!(n.take_resign(), Some(0));
        assert_eq!(n.take_resign(), None);
        n.instance_transition(&moved(State::Backup, State::Master));
        drain(&mut n);
        n.instance_transition(&moved(State::Master, State::Fault));
        n.wait(&mut Processes, |_| false);
        assert_eq!(n.stats().1, 2, "the stop was tried");
        assert_eq!(n.take_resign(), None);
    }

    #[test]
    fn conntrackd_runs_its_primary_backup_steps_and_events_go_last() {
        let c = config(&format!(
            "config globals 'globals'\n    option conntrackd_config '/etc/ct.conf'\n{VI1}    option conntrackd '1'\n    list master_service 'dnsmasq'\n"
        ));
        assert_eq!(
            c.instances[0].pre_master_command().as_deref(),
            Some("conntrackd -C '/etc/ct.conf' -c")
        );
        let mut n = notifier(&c);
        n.instances[0].cfg.roles.as_mut().unwrap().ubus = Some("/bin/ubus".into());
        n.instance_transition(&Transition {
            master: Some("10.0.0.1".parse().unwrap()),
            ..moved(State::Init, State::Master)
        });
        let jobs = drain(&mut n);
        assert_eq!(
            jobs,
            [
                "conntrackd -C /etc/ct.conf -f",
                "conntrackd -C /etc/ct.conf -R",
                "conntrackd -C /etc/ct.conf -B",
                "/etc/init.d/dnsmasq start",
                "/bin/ubus send minivrrp.instance {\"name\":\"vi1\",\"state\":\"MASTER\",\"previous\":\"INIT\",\"reason\":\"startup\",\"priority\":100,\"master\":\"10.0.0.1\"}"
            ]
        );
        n.instance_transition(&moved(State::Master, State::Backup));
        let jobs = drain(&mut n);
        assert_eq!(
            &jobs[..5],
            [
                "/etc/init.d/dnsmasq stop",
                "(resign)",
                "conntrackd -C /etc/ct.conf -t",
                "conntrackd -C /etc/ct.conf -f external",
                "conntrackd -C /etc/ct.conf -n"
            ]
        );
        assert!(jobs[5].contains("\"state\":\"BACKUP\",\"previous\":\"MASTER\""));
        // A priority change is one event; the same priority again is none.
        n.priority_change(0, 90, None);
        n.priority_change(0, 90, None);
        let jobs = drain(&mut n);
        assert_eq!(jobs.len(), 1);
        assert!(jobs[0].contains("\"state\":\"BACKUP\",\"previous\":\"BACKUP\",\"reason\":\"effective priority 100 -> 90\",\"priority\":90"), "{jobs:?}");
        // Without ubus: no event at all.
        n.instances[0].cfg.roles.as_mut().unwrap().ubus = None;
        n.priority_change(0, 80, None);
        assert!(drain(&mut n).is_empty());
    }

    #[test]
    fn a_reload_reconciles_added_names_and_moves_waiting_jobs_by_name() {
        let c1 = config(&format!(
            "{VI1}    list master_service 'a'\n    list master_service 'b'\n"
        ));
        let mut n = notifier(&c1);
        n.instance_transition(&moved(State::Init, State::Master));
        // Still waiting at the reload: start a, start b.
        let c2 = config(&format!(
            "{VI1}    list master_service 'b'\n    list master_service 'c'\n"
        ));
        n.reload(&c2);
        // `a` left the list (its job dropped), `b` moved to index 0, `c` is new: started
        // because the role is MASTER.
        assert_eq!(
            drain(&mut n),
            ["/etc/init.d/b start", "/etc/init.d/c start"]
        );
        n.instance_transition(&moved(State::Master, State::Backup));
        assert_eq!(
            drain(&mut n),
            ["/etc/init.d/b stop", "/etc/init.d/c stop", "(resign)"]
        );
        let c3 = config(&format!("{VI1}    list master_service 'b'\n    list master_service 'c'\n    list master_service 'd'\n"));
        n.reload(&c3);
        let jobs = drain(&mut n);
        assert_eq!(jobs.len(), 1);
        assert!(
            jobs[0].starts_with("/bin/sh -c") && jobs[0].ends_with(" d"),
            "{jobs:?}"
        );
    }

    #[test]
    fn check_warns_about_missing_and_boot_enabled_services_and_unknown_interfaces() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("mv-roles-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["etc/init.d", "etc/rc.d", "etc/config"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for svc in ["dnsmasq", "odhcpd"] {
            let p = root.join("etc/init.d").join(svc);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::os::unix::fs::symlink("../init.d/dnsmasq", root.join("etc/rc.d/S19dnsmasq")).unwrap();
        std::fs::write(
            root.join("etc/config/network"),
            "config interface 'wg0'\n\toption proto 'wireguard'\n",
        )
        .unwrap();
        let c = config(&format!(
            "{VI1}    list master_service 'dnsmasq'\n    list master_service 'odhcpd'\n    list backup_service 'nosuch'\n    list master_interface 'wg0'\n    list master_interface 'vpn9'\n"
        ));
        let w = role_warnings(&c, root.to_str().unwrap());
        assert_eq!(w.len(), 3, "{w:#?}");
        assert!(
            w[0].contains("master_service 'dnsmasq' is enabled at boot (/etc/rc.d/S19dnsmasq)"),
            "{w:?}"
        );
        assert!(
            w[1].contains("backup_service 'nosuch': no init script"),
            "{w:?}"
        );
        assert!(
            w[2].contains("master_interface 'vpn9': no such interface"),
            "{w:?}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}

#[cfg(test)]
mod size_budget {
    /// Memory per instance: the daemon keeps one notify entry for every instance, group and
    /// real server (255 instances, 4096 servers). The waiting jobs live on the heap only while
    /// a transition is pending (`NotifyQueue`); an inline queue made this entry 3240 bytes, 800
    /// KB at 255 instances. The budget is the entry without any queue storage: growing it back
    /// must be a decision, not an accident.
    #[test]
    fn a_notify_entry_stays_within_its_per_instance_budget() {
        let size = core::mem::size_of::<super::Entry>();
        assert!(
            size <= 320,
            "notify Entry grew to {size} bytes (budget 320)"
        );
    }
}
