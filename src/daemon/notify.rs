//! Notify commands on VRRP transitions: `notify_master/backup/fault/stop`, the
//! generic `notify` (`TYPE NAME STATE PRIORITY` appended, keepalived's convention) and the
//! OpenWrt hook `/sbin/hotplug-call minivrrp` with `ACTION`/`TYPE`/`NAME` in the environment.
//!
//! Non-blocking: each instance and each sync group has a `check::NotifyQueue`; a job is
//! spawned only after the previous one of the same queue was reaped, so scripts see the
//! transitions strictly in order. Output goes to /dev/null (nothing to register); the
//! runtime reaps children and offers them to [`Notifier::on_child_exit`].

use crate::base::Duration;
use crate::check::notify::{
    split_command, NotifyConfig, NotifyEvent, NotifyQueue, NotifyState, Slot, HOTPLUG_CALL,
};
use crate::check::ExitStatus;
use crate::config::{Config, Notify};
use crate::sys::{file, poll, process};
use crate::vrrp::instance::State;

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
    last: Option<NotifyState>,
    priority: u8,
}

/// See the module docs.
pub struct Notifier {
    instances: Vec<Entry>,
    groups: Vec<Entry>,
    hotplug: Option<String>,
    spawned: u64,
    failed: u64,
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

fn notify_config(name: &str, group: bool, n: &Notify, hotplug: &Option<String>) -> NotifyConfig {
    NotifyConfig {
        name: name.to_string(),
        group,
        master: argv(name, &n.master),
        backup: argv(name, &n.backup),
        fault: argv(name, &n.fault),
        stop: argv(name, &n.stop),
        generic: argv(name, &n.any),
        hotplug: hotplug.clone(),
    }
}

fn entry(cfg: NotifyConfig) -> Entry {
    Entry {
        cfg,
        queue: NotifyQueue::new(),
        child: None,
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
    /// `hotplug`: the hotplug program (see [`hotplug_from_env`]) or `None`.
    pub fn new(cfg: &Config, hotplug: Option<String>) -> Notifier {
        let mut n = Notifier {
            instances: Vec::new(),
            groups: Vec::new(),
            hotplug,
            spawned: 0,
            failed: 0,
        };
        n.build(cfg);
        n
    }

    fn build(&mut self, cfg: &Config) {
        self.instances = cfg
            .instances
            .iter()
            .map(|i| entry(notify_config(&i.name, false, &i.notify, &self.hotplug)))
            .collect();
        self.groups = cfg
            .sync_groups
            .iter()
            .map(|g| entry(notify_config(&g.name, true, &g.notify, &self.hotplug)))
            .collect();
    }

    /// Instance `idx` entered `state` (INIT is not announced) with `priority`.
    pub fn instance_transition(&mut self, idx: usize, state: State, priority: u8) {
        let Some(e) = self.instances.get_mut(idx) else {
            return;
        };
        if let Some(s) = map_state(state) {
            Self::push(e, s, priority);
            self.pump_entry(false, idx);
        }
    }

    /// Sync group `idx` entered `state` (its generic notify gets `GROUP NAME STATE`).
    pub fn group_transition(&mut self, idx: usize, state: State) {
        let Some(e) = self.groups.get_mut(idx) else {
            return;
        };
        if let Some(s) = map_state(state) {
            Self::push(e, s, 0);
            self.pump_entry(true, idx);
        }
    }

    fn push(e: &mut Entry, s: NotifyState, priority: u8) {
        if e.last == Some(s) {
            return;
        }
        e.last = Some(s);
        e.priority = priority;
        e.queue
            .push_transition(&e.cfg, NotifyEvent { state: s, priority });
    }

    /// Start the next job of one queue if none is running.
    fn pump_entry(&mut self, group: bool, idx: usize) {
        let e = if group {
            self.groups.get_mut(idx)
        } else {
            self.instances.get_mut(idx)
        };
        let Some(e) = e else { return };
        // Bounded: each failed spawn consumes one pending job.
        while e.child.is_none() {
            let Some(job) = e.queue.start_next() else {
                return;
            };
            let Some(cmd) = e.cfg.command(job) else {
                e.queue.finished();
                continue;
            };
            let mut argv = cmd.argv();
            if e.cfg.group && job.slot == Slot::Generic {
                // keepalived passes `GROUP NAME STATE` to a group's notify: no priority.
                argv.pop();
            }
            let env = cmd.env();
            match process::spawn(&argv, &env, &process::SpawnOptions::default()) {
                Ok(c) => {
                    self.spawned += 1;
                    log::debug!("{}: notify {:?} pid {}", e.cfg.name, &argv[..], c.pid);
                    e.child = Some(c.pid);
                }
                Err(err) => {
                    self.failed += 1;
                    log::warn!("{}: cannot run {:?}: {err}", e.cfg.name, &argv[..]);
                    e.queue.finished();
                }
            }
        }
    }

    /// A child was reaped; `true` if it was a notify job (the queue's next job starts).
    pub fn on_child_exit(&mut self, pid: i32, status: ExitStatus) -> bool {
        for group in [false, true] {
            let list = if group {
                &mut self.groups
            } else {
                &mut self.instances
            };
            if let Some(idx) = list.iter().position(|e| e.child == Some(pid)) {
                let e = &mut list[idx];
                e.child = None;
                e.queue.finished();
                if status != ExitStatus::Code(0) {
                    log::warn!("{}: notify command ended with {status:?}", e.cfg.name);
                }
                self.pump_entry(group, idx);
                return true;
            }
        }
        false
    }

    /// New configuration. Queues keep running; instances and groups are matched by name so
    /// the last announced state is kept (no repeated notify for an unchanged instance).
    pub fn reload(&mut self, cfg: &Config) {
        let old_i = core::mem::take(&mut self.instances);
        let old_g = core::mem::take(&mut self.groups);
        self.build(cfg);
        for (new, old) in [(&mut self.instances, old_i), (&mut self.groups, old_g)] {
            for o in old {
                // A removed one's running child is reaped by the runtime and is no longer ours.
                if let Some(n) = new.iter_mut().find(|n| n.cfg.name == o.cfg.name) {
                    n.queue = o.queue;
                    n.child = o.child;
                    n.last = o.last;
                    n.priority = o.priority;
                }
            }
        }
    }

    /// Pids of running notify jobs.
    pub fn children(&self) -> impl Iterator<Item = i32> + '_ {
        self.instances
            .iter()
            .chain(self.groups.iter())
            .filter_map(|e| e.child)
    }

    /// (spawned, failed to spawn).
    pub fn stats(&self) -> (u64, u64) {
        (self.spawned, self.failed)
    }

    /// Daemon stop: announce STOP for every instance, run the queues and wait for them at
    /// most [`STOP_WAIT`] in total (reaping our own children: the loop no longer runs).
    pub fn shutdown(&mut self) {
        for idx in 0..self.instances.len() {
            let e = &mut self.instances[idx];
            let p = e.priority;
            Self::push(e, NotifyState::Stop, p);
            self.pump_entry(false, idx);
        }
        let start = crate::sys::clock::now();
        loop {
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
        let mut n = Notifier::new(&c, None);
        n.instance_transition(0, State::Init, 100);
        assert_eq!(n.instances[0].last, None);
        n.instance_transition(0, State::Backup, 100);
        n.instance_transition(0, State::Backup, 100);
        assert_eq!(n.instances[0].last, Some(NotifyState::Backup));
        assert_eq!(n.stats(), (0, 0));
        assert_eq!(n.children().count(), 0);
    }
}
