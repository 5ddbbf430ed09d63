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
//! Nothing a script does can stall the daemon or another instance's notifications: queues
//! run side by side (up to `notify_max_running` children over all of them, taken round
//! robin so one busy queue cannot starve the others), and a job still running after
//! `notify_timeout` is killed with its process group, which lets its queue move on. Jobs run
//! as `script_user` when one is set; with `enable_script_security` a root daemon refuses
//! scripts that would run as root and that someone else could change ([`check_security`]).

use super::event_loop::Ctx;
use super::ids::Part;
use super::vrrp::Transition;
use crate::base::{Duration, Instant};
use crate::check::notify::{
    split_command, NotifyConfig, NotifyContext, NotifyEvent, NotifyKind, NotifyQueue, NotifyState,
    ReasonText, Slot, HOTPLUG_CALL,
};
use crate::check::ExitStatus;
use crate::config::{Config, Notify};
use crate::sys::{file, poll, process};
use crate::vrrp::instance::{Reason, State};

/// Environment variable overriding the hotplug program (tests; empty = none).
pub const HOTPLUG_ENV: &str = "MINIVRRP_HOTPLUG_CALL";
/// Pending jobs per instance/group (3 per transition).
const QUEUE: usize = 24;
/// How long `shutdown` waits for the notify_stop jobs.
pub const STOP_WAIT: Duration = Duration::from_secs(1);

struct Entry {
    cfg: NotifyConfig,
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
}

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

fn notify_config(
    name: &str,
    kind: NotifyKind,
    n: &Notify,
    hotplug: &Option<String>,
) -> NotifyConfig {
    NotifyConfig {
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
        queue: NotifyQueue::new(),
        child: None,
        deadline: None,
        last: None,
        priority: 0,
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
            timeout: cfg.globals.notify_timeout,
            max_running: 1,
            user: None,
            cursor: 0,
            busy: false,
            spawned: 0,
            failed: 0,
            timed_out: 0,
        };
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
                entry(notify_config(
                    &i.name,
                    NotifyKind::Instance,
                    &i.notify,
                    &self.hotplug,
                ))
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
        e.queue.push_transition(&e.cfg, event);
    }

    fn running(&self) -> usize {
        self.children().count()
    }

    /// Start queued jobs, at most `notify_max_running` children at once, taking the queues
    /// round robin from where the last pump stopped; returns the earliest kill deadline.
    pub fn pump(&mut self, now: Instant) -> Option<Instant> {
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
            if self.spawn_next(k, now) {
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
    fn spawn_next(&mut self, k: usize, now: Instant) -> bool {
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
            let Some(cmd) = e.cfg.command(job) else {
                e.queue.finished();
                continue;
            };
            let mut argv = cmd.argv();
            if e.cfg.kind == NotifyKind::Group && job.slot == Slot::Generic {
                // keepalived passes `GROUP NAME STATE` to a group's notify: no priority.
                argv.pop();
            }
            let env = cmd.env();
            let opts = process::SpawnOptions {
                capture_output: false,
                user,
            };
            match process::spawn(&argv, &env, &opts) {
                Ok(c) => {
                    log::debug!("{}: notify {:?} pid {}", e.cfg.name, &argv[..], c.pid);
                    e.child = Some(c.pid);
                    e.deadline = Some(now + timeout);
                    self.spawned += 1;
                    return true;
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
    pub fn expire(&mut self, now: Instant) -> Option<Instant> {
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
            if let Err(err) = process::kill(pid) {
                log::warn!("{}: kill {pid}: {err}", e.cfg.name);
            }
            killed += 1;
        }
        self.timed_out += killed;
        self.next_deadline()
    }

    /// After anything may have queued or ended a job: start what may start and keep the
    /// notify timer at the earliest kill deadline.
    pub fn settle(&mut self, ctx: &mut Ctx, now: Instant) {
        let timer = Part::Notify.timer(0);
        match self.pump(now) {
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
    pub fn on_timer(&mut self, now: Instant) {
        self.expire(now);
    }

    /// A child was reaped; `true` if it was a notify job (the queue's next job starts).
    pub fn on_child_exit(&mut self, pid: i32, status: ExitStatus) -> bool {
        let Some(e) = self.entries_mut().find(|e| e.child == Some(pid)) else {
            return false;
        };
        e.child = None;
        e.deadline = None;
        e.queue.finished();
        if let ExitStatus::ExecFailed(err) = status {
            let err = nix::errno::Errno::from_raw(err);
            log::warn!("{}: cannot run notify command: {err}", e.cfg.name);
            self.failed += 1;
        } else if status != ExitStatus::Code(0) {
            log::warn!("{}: notify command ended with {status:?}", e.cfg.name);
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
                }
            }
        }
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

    /// Daemon stop: announce STOP for every instance, run the queues and wait for them at
    /// most [`STOP_WAIT`] in total (reaping our own children: the loop no longer runs).
    pub fn shutdown(&mut self) {
        for e in self.instances.iter_mut() {
            let context = NotifyContext {
                prev: e.last,
                reason: ReasonText::new(Reason::Shutdown),
                master: None,
            };
            let p = e.priority;
            Self::push(e, NotifyState::Stop, p, context);
        }
        self.busy = true;
        let start = crate::sys::clock::now();
        loop {
            self.pump(crate::sys::clock::now());
            let running: heapless::Vec<i32, 128> = self.children().take(128).collect();
            if running.is_empty() {
                return;
            }
            for pid in running {
                if let Some(st) = process::reap_pid(pid) {
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
        assert_eq!(n.pump(t0), Some(t0 + Duration::from_secs(2)));
        let hung = child_of(&n, 0).expect("notify_backup of vi1 runs");
        // Later: vi1 and vi2 become master. vi2's script runs at once beside the hung one;
        // vi1's waits for its own notify_backup (order per instance).
        n.instance_transition(&moved(0, State::Master, 100));
        n.instance_transition(&moved(1, State::Master, 100));
        n.pump(t0 + Duration::from_millis(500));
        let pid2 = child_of(&n, 1).expect("vi2's notify_master started beside the hung script");
        assert_eq!(child_of(&n, 0), Some(hung));
        reap_until(&mut n, pid2);
        assert!(wait_file(&m2), "vi2's notify_master ran");
        assert!(
            !m1.exists(),
            "vi1's notify_master overtook its notify_backup"
        );
        // Not yet due: nothing is killed.
        n.expire(t0 + Duration::from_millis(1999));
        assert_eq!(n.timed_out(), 0);
        // At notify_timeout the hung script is killed and vi1's notify_master follows.
        n.expire(t0 + Duration::from_secs(2));
        assert_eq!(n.timed_out(), 1);
        let st = reap_until(&mut n, hung);
        assert_eq!(st, ExitStatus::Signal(libc::SIGKILL));
        n.pump(t0 + Duration::from_secs(2));
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
        assert_eq!(n.pump(now), None);
        assert!(!n.busy, "an empty pump leaves the notifier idle");
        assert_eq!(n.pump(now), None);
        n.instance_transition(&moved(0, State::Master, 100));
        assert!(n.busy);
        assert!(
            n.pump(now).is_some(),
            "the kill deadline of the started job"
        );
        let pid = child_of(&n, 0).expect("notify_master runs after idle pumps");
        reap_until(&mut n, pid);
        assert!(wait_file(&m));
        assert_eq!(n.pump(now), None);
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
        n.pump(now);
        let running: Vec<usize> = (0..4).filter(|&i| child_of(&n, i).is_some()).collect();
        assert_eq!(running, [0, 1]);
        // One ends: the next waiting queue (vi3), not vi1 again, gets the slot.
        let p0 = child_of(&n, 0).unwrap();
        process::kill(p0).unwrap();
        reap_until(&mut n, p0);
        n.instance_transition(&moved(0, State::Master, 100));
        n.pump(now);
        let running: Vec<usize> = (0..4).filter(|&i| child_of(&n, i).is_some()).collect();
        assert_eq!(running, [1, 2]);
        for i in [1, 2] {
            let p = child_of(&n, i).unwrap();
            process::kill(p).unwrap();
            reap_until(&mut n, p);
        }
    }

    fn is_root() -> bool {
        // SAFETY: geteuid has no failure mode.
        unsafe { libc::geteuid() == 0 }
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
        n.pump(Instant::from_secs(1));
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
            n.pump(now);
            let pids: Vec<i32> = n.children().collect();
            assert!(!pids.is_empty(), "only {ran} commands ran");
            for pid in pids {
                assert_eq!(reap_until(&mut n, pid), ExitStatus::Code(0));
                ran += 1;
            }
        }
        n.pump(now);
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
