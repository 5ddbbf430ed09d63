//! The daemon's check engine (`daemon::checks::CheckEngine`) and tracking on the real poll loop
//! (`daemon::Loop`), driven through a small handler the way the runtime drives them, for the
//! check tests and the checks benchmark.
//!
//! The handler reaps only the engine's own children (`reap_pid`, on a 5 ms timer): tests share
//! the process with other spawners, and SIGCHLD cannot be routed to one test thread.
#![allow(dead_code)]

use minivrrp::base::{Duration, Instant};
use minivrrp::check::{Attempt, Health, Reason};
use minivrrp::config::Config;
use minivrrp::daemon::checks::{CheckEngine, ProbeId};
use minivrrp::daemon::ids::{timer_owner, token_owner, Part};
use minivrrp::daemon::kernel::Processes;
use minivrrp::daemon::tracking::Tracking;
use minivrrp::daemon::{Ctx, Handler, Inbox, Loop, Read, Ready, Signal, TimerId, Token};
use minivrrp::sys::{clock, process};
use minivrrp::vrrp::priority::Adjustment;

/// Reap timer of the test handler (the runtime reaps on SIGCHLD instead).
/// Owned by no daemon part (owner bits 0), so it cannot collide with the engine's timers.
pub const REAP: TimerId = TimerId(0);

/// A health change as the handler saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Change {
    pub probe: ProbeId,
    pub health: Health,
    /// Time since the handler started.
    pub at: std::time::Duration,
    /// Reason of the probe's last finished attempt when the change was taken (what ended
    /// the round that changed it).
    pub reason: Option<Reason>,
}

/// The handler: the engine and tracking, plus what the tests read back.
pub struct H {
    pub engine: CheckEngine,
    pub tracking: Tracking,
    /// Every health change seen, in order.
    pub changes: Vec<Change>,
    /// Adjustment of instance 0 after each change.
    pub adjustments: Vec<Adjustment>,
    /// Every finished attempt of each probe (by engine position): (result, latency).
    pub attempts: Vec<Vec<(Reason, Duration)>>,
    last_seen: Vec<Option<Attempt>>,
    /// Look for finished attempts only on the probe whose fd was read (the benchmark: a
    /// TCP check succeeds only there, and scanning every probe per event would be measured).
    pub light: bool,
    started: std::time::Instant,
}

impl H {
    pub fn new(cfg: &Config, ctx: &mut Ctx, now: Instant) -> H {
        let mut engine = CheckEngine::new(cfg, 42, now).expect("engine");
        let mut tracking = Tracking::new(cfg, &engine);
        engine.start(ctx, now);
        tracking.start(ctx, now);
        let _ = ctx.arm(REAP, now + Duration::from_millis(5));
        let n = engine.len();
        H {
            engine,
            tracking,
            changes: Vec::new(),
            adjustments: Vec::new(),
            attempts: vec![Vec::new(); n],
            last_seen: vec![None; n],
            light: false,
            started: std::time::Instant::now(),
        }
    }

    /// Engine position of a probe.
    pub fn index(&self, p: ProbeId) -> usize {
        self.engine
            .ids()
            .position(|x| x == p)
            .unwrap_or_else(|| panic!("no probe {p:?}"))
    }

    /// Finished attempts of a probe, in order.
    pub fn attempts_of(&self, p: ProbeId) -> &[(Reason, Duration)] {
        &self.attempts[self.index(p)]
    }

    /// Record probe `i`'s last attempt if it is one not seen yet.
    fn observe(&mut self, i: usize) {
        let Some((_, _, _, Some(a))) = self.engine.probe_views().nth(i) else {
            return;
        };
        if i < self.last_seen.len() && self.last_seen[i] != Some(a) {
            self.last_seen[i] = Some(a);
            self.attempts[i].push((a.reason, a.elapsed));
        }
    }

    fn observe_all(&mut self) {
        for i in 0..self.last_seen.len() {
            self.observe(i);
        }
    }

    fn collect(&mut self) {
        let at = self.started.elapsed();
        let ch: Vec<(ProbeId, Health)> = self.engine.take_changes().collect();
        for (p, h) in ch {
            let reason = self
                .engine
                .probe_views()
                .find(|v| v.0 == p)
                .and_then(|v| v.3)
                .map(|a| a.reason);
            self.changes.push(Change {
                probe: p,
                health: h,
                at,
                reason,
            });
            self.tracking.on_probe(p, h);
        }
        for i in self.tracking.take_changed() {
            if i == 0 {
                self.adjustments.push(self.tracking.adjustment(0));
            }
        }
    }

    /// Health changes of one probe, in order.
    pub fn health_seq(&self, p: ProbeId) -> Vec<Health> {
        self.changes
            .iter()
            .filter(|c| c.probe == p)
            .map(|c| c.health)
            .collect()
    }

    /// Health changes of one probe with the reason of the round that made each.
    pub fn reports(&self, p: ProbeId) -> Vec<(Health, Option<Reason>)> {
        self.changes
            .iter()
            .filter(|c| c.probe == p)
            .map(|c| (c.health, c.reason))
            .collect()
    }
}

impl Handler for H {
    type Input = ();

    fn on_readable(
        &mut self,
        ctx: &mut Ctx,
        _inbox: &mut Inbox<'_, ()>,
        token: Token,
        ready: Ready,
        now: Instant,
    ) -> Read {
        let r = self
            .engine
            .on_readable(ctx, token, ready, now, &mut Processes);
        match token_owner(token) {
            Some((Part::Checks, i)) if self.light => self.observe(i as usize),
            _ => self.observe_all(),
        }
        self.collect();
        r
    }

    fn on_input(&mut self, _: &mut Ctx, _: Token, _: (), _: Instant) {}

    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant) {
        if id == REAP {
            let pids: Vec<i32> = self.engine.children().collect();
            for pid in pids {
                if let Some(st) = process::reap_pid(pid) {
                    assert!(self.engine.on_child_exit(ctx, pid, st, now, &mut Processes));
                }
            }
            let _ = ctx.arm(REAP, now + Duration::from_millis(5));
        } else {
            assert_eq!(timer_owner(id).map(|x| x.0), Some(Part::Checks));
            self.engine.on_timer(ctx, id, now, &mut Processes);
            self.tracking.on_timer(ctx, id, now);
        }
        if !self.light {
            self.observe_all();
        }
        self.collect();
    }

    fn on_signal(&mut self, _: &mut Ctx, _: Signal, _: Instant) {}
}

/// Turn the loop until `done(h)` or `limit` passed; returns whether `done` became true.
pub fn run_until(
    l: &mut Loop<()>,
    h: &mut H,
    limit: std::time::Duration,
    mut done: impl FnMut(&H) -> bool,
) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if done(h) {
            return true;
        }
        l.turn(h, Some(Duration::from_millis(20))).expect("turn");
    }
    done(h)
}

/// Shut the engine down as the daemon does and reap what it killed: tests leave no children.
pub fn stop(l: &mut Loop<()>, h: &mut H) {
    let now = clock::now();
    h.engine.shutdown(l.ctx(), now, &mut Processes);
    for _ in 0..200 {
        let pids: Vec<i32> = h.engine.children().collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            if let Some(st) = process::reap_pid(pid) {
                h.engine
                    .on_child_exit(l.ctx(), pid, st, now, &mut Processes);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(h.engine.children().count(), 0, "children left behind");
}

/// A configuration as the daemon accepts it: parsed, its programs pinned.
pub fn cfg(text: &str) -> Config {
    let c = Config::parse_str("test", text).unwrap_or_else(|e| panic!("{e:?}"));
    minivrrp::sys::process::pin(minivrrp::daemon::scripts::prepare(&c, None).expect("pin"));
    c
}
