//! The check engine and tracking do not allocate in steady state: script checks spawned,
//! reaped and turned into health changes and tracker adjustments, a track file re-read, all
//! through the real loop, with a counting allocator active only inside `Loop::turn` (and the
//! reaping) on this test's thread.

#[macro_use]
mod common;

use common::alloc::{Counting, ACTIVE, ALLOCS};

use minivrrp::base::Duration;
use minivrrp::config::Config;
use minivrrp::daemon::checks::CheckEngine;
use minivrrp::daemon::kernel::Processes;
use minivrrp::daemon::tracking::Tracking;
use minivrrp::daemon::{Ctx, Handler, Inbox, Loop, Read, Ready, Signal, TimerId, Token};
use minivrrp::sys::{clock, process};
use std::sync::atomic::Ordering;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Owned by no daemon part (owner bits 0), so it cannot collide with the engine's timers.
const REAP: TimerId = TimerId(0);

struct H {
    engine: CheckEngine,
    tracking: Tracking,
    changes: u64,
    adjustments: u64,
    pids: heapless::Vec<i32, 16>,
}

impl H {
    fn collect(&mut self) {
        for (p, h) in self.engine.take_changes() {
            self.changes += 1;
            self.tracking.on_probe(p, h);
        }
        self.adjustments += self.tracking.take_changed().len() as u64;
    }
}

impl Handler for H {
    type Input = ();
    fn on_readable(
        &mut self,
        ctx: &mut Ctx,
        _: &mut Inbox<'_, ()>,
        token: Token,
        ready: Ready,
        now: minivrrp::base::Instant,
    ) -> Read {
        let r = self
            .engine
            .on_readable(ctx, token, ready, now, &mut Processes);
        self.collect();
        r
    }
    fn on_input(&mut self, _: &mut Ctx, _: Token, _: (), _: minivrrp::base::Instant) {}
    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: minivrrp::base::Instant) {
        if id == REAP {
            self.pids.clear();
            for pid in self.engine.children() {
                let _ = self.pids.push(pid);
            }
            for i in 0..self.pids.len() {
                let pid = self.pids[i];
                if let Some(st) = process::reap_pid(pid) {
                    self.engine.on_child_exit(ctx, pid, st, now, &mut Processes);
                }
            }
            let _ = ctx.arm(REAP, now + Duration::from_millis(5));
        } else {
            self.engine.on_timer(ctx, id, now, &mut Processes);
            self.tracking.on_timer(ctx, id, now);
        }
        self.collect();
    }
    fn on_signal(&mut self, _: &mut Ctx, _: Signal, _: minivrrp::base::Instant) {}
}

#[test]
fn steady_state_checks_and_trackers_do_not_allocate() {
    let dir = std::env::temp_dir().join(format!("mvchk-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let flag = dir.join("flag");
    let file = dir.join("value");
    std::fs::write(&file, b"1\n").unwrap();
    let text = format!(
        "
config script 'ok'
    option command 'true'
    option interval '0.1'

config script 'bad'
    option command 'false'
    option interval '0.1'

config script 'toggle'
    option command 'test -e {f}'
    option interval '0.1'

config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
    list track_script 'ok weight 5'
    list track_script 'bad weight -5'
    list track_script 'toggle weight -20'
    list track_file '{v} weight -2'
",
        f = flag.display(),
        v = file.display()
    );
    let cfg = Config::parse_str("t", &text).unwrap_or_else(|e| panic!("{e:?}"));
    // What the daemon does with an accepted configuration: pin its programs.
    minivrrp::sys::process::pin(minivrrp::daemon::scripts::prepare(&cfg, None).expect("pin"));
    let mut l: Loop<()> = Loop::new();
    let now = clock::now();
    let mut engine = CheckEngine::new(&cfg, 3, now).unwrap();
    let mut tracking = Tracking::new(&cfg, &engine);
    engine.start(l.ctx(), now);
    tracking.start(l.ctx(), now);
    let _ = l.ctx().arm(REAP, now + Duration::from_millis(5));
    let mut h = H {
        engine,
        tracking,
        changes: 0,
        adjustments: 0,
        pids: heapless::Vec::new(),
    };
    let run = |l: &mut Loop<()>, h: &mut H, secs: u64, count: bool| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        let mut toggled = std::time::Instant::now();
        while std::time::Instant::now() < end {
            if toggled.elapsed() > std::time::Duration::from_millis(400) {
                toggled = std::time::Instant::now();
                // Outside the counted region: flip the script's outcome and the file's value.
                if flag.exists() {
                    std::fs::remove_file(&flag).unwrap();
                    std::fs::write(&file, b"1\n").unwrap();
                } else {
                    std::fs::write(&flag, b"").unwrap();
                    std::fs::write(&file, b"3\n").unwrap();
                }
            }
            ACTIVE.with(|a| a.set(count));
            l.turn(h, Some(Duration::from_millis(20))).unwrap();
            ACTIVE.with(|a| a.set(false));
        }
    };
    // Warm-up: first rounds, every lazily sized structure touched once.
    run(&mut l, &mut h, 1, false);
    let (c0, a0) = (h.changes, h.adjustments);
    let attempts0 = h.engine.stats().attempts;
    run(&mut l, &mut h, 3, true);
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let (changes, adjustments) = (h.changes - c0, h.adjustments - a0);
    let attempts = h.engine.stats().attempts - attempts0;
    eprintln!("steady state: {attempts} script runs, {changes} health changes, {adjustments} adjustments, {allocs} allocations");
    h.engine.shutdown(l.ctx(), clock::now(), &mut Processes);
    for _ in 0..200 {
        let pids: Vec<i32> = h.engine.children().collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            if let Some(st) = process::reap_pid(pid) {
                h.engine
                    .on_child_exit(l.ctx(), pid, st, clock::now(), &mut Processes);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(attempts >= 30, "only {attempts} runs");
    assert!(changes >= 4, "only {changes} health changes");
    assert!(adjustments >= 4, "only {adjustments} adjustment changes");
    assert_eq!(allocs, 0, "allocations in steady state");
}
