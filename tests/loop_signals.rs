//! Signals as loop events: SIGHUP -> Reload, SIGUSR1 -> Dump, SIGTERM -> Terminate,
//! SIGCHLD -> Child, and the reload mechanics (a failing reload leaves the running state).
//!
//! In-process tests send thread-directed signals (`raise`) after the loop blocked them in
//! this thread, so the other harness threads never see them. The full path (another process
//! sending process-directed signals) runs in a forked child, which is single-threaded.

use minivrrp::base::{Duration, Instant};
use minivrrp::daemon::{Ctx, Handler, Inbox, Loop, Read, Ready, Signal, TimerId, Token};
use minivrrp::sys::{clock, signal};
use nix::sys::signal::Signal as Sig;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use std::io::Read as _;
use std::os::fd::{AsFd, OwnedFd};

/// A daemon in miniature: its "config" is a number; a reload takes the next candidate from
/// `candidates` and swaps it in only if it parses.
struct MockDaemon {
    running: u32,
    candidates: Vec<Result<u32, &'static str>>,
    reload_errors: Vec<&'static str>,
    dumps: u32,
    children_reaped: u32,
    seen: Vec<Signal>,
    out: Option<OwnedFd>,
}

impl MockDaemon {
    fn new(running: u32) -> Self {
        MockDaemon {
            running,
            candidates: vec![],
            reload_errors: vec![],
            dumps: 0,
            children_reaped: 0,
            seen: vec![],
            out: None,
        }
    }
}

impl Handler for MockDaemon {
    type Input = ();
    fn on_readable(
        &mut self,
        _: &mut Ctx,
        _: &mut Inbox<()>,
        _: Token,
        _: Ready,
        _: Instant,
    ) -> Read {
        Read::Drained
    }
    fn on_input(&mut self, _: &mut Ctx, _: Token, _: (), _: Instant) {}
    fn on_timer(&mut self, _: &mut Ctx, _: TimerId, _: Instant) {}
    fn on_signal(&mut self, ctx: &mut Ctx, sig: Signal, now: Instant) {
        self.seen.push(sig);
        let tag = match sig {
            Signal::Reload => {
                // Build the new state completely before touching the running one.
                match self.candidates.pop() {
                    Some(Ok(cfg)) => {
                        self.running = cfg;
                        ctx.arm_after(TimerId(cfg), now, Duration::from_secs(60))
                            .unwrap();
                    }
                    Some(Err(e)) => self.reload_errors.push(e),
                    None => self.reload_errors.push("no config"),
                }
                b'R'
            }
            Signal::Dump => {
                self.dumps += 1;
                b'D'
            }
            Signal::Child => {
                while let Ok(WaitStatus::Exited(..)) =
                    waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG))
                {
                    self.children_reaped += 1;
                }
                b'C'
            }
            Signal::Terminate => {
                ctx.stop();
                b'T'
            }
        };
        if let Some(out) = &self.out {
            let _ = nix::unistd::write(out.as_fd(), &[tag]);
        }
    }
}

fn turn_until(l: &mut Loop<()>, h: &mut MockDaemon, n: usize) {
    let start = clock::now();
    while h.seen.len() < n {
        l.turn(h, Some(Duration::from_millis(20))).unwrap();
        assert!(
            clock::now() - start < Duration::from_secs(5),
            "signal not delivered"
        );
    }
}

#[test]
fn sighup_reloads_and_failed_reload_keeps_running_state() {
    let mut l: Loop<()> = Loop::with_signals().unwrap();
    let mut h = MockDaemon::new(1);
    l.ctx()
        .arm(TimerId(1), clock::now() + Duration::from_secs(60))
        .unwrap();

    h.candidates.push(Ok(2));
    signal::raise_to_self(Sig::SIGHUP).unwrap();
    turn_until(&mut l, &mut h, 1);
    assert_eq!(h.seen, vec![Signal::Reload]);
    assert_eq!(h.running, 2);
    assert!(l.ctx().deadline(TimerId(2)).is_some());

    h.candidates.push(Err("line 3: bad option"));
    let timers_before = l.ctx().timers_armed();
    signal::raise_to_self(Sig::SIGHUP).unwrap();
    turn_until(&mut l, &mut h, 2);
    assert_eq!(h.running, 2, "failed reload leaves the running config");
    assert_eq!(h.reload_errors, vec!["line 3: bad option"]);
    assert_eq!(l.ctx().timers_armed(), timers_before, "and its timers");
    assert!(!l.ctx().is_stopping(), "and keeps running");
}

#[test]
fn sigusr1_dumps_and_sigterm_stops_the_loop() {
    let mut l: Loop<()> = Loop::with_signals().unwrap();
    let mut h = MockDaemon::new(1);
    signal::raise_to_self(Sig::SIGUSR1).unwrap();
    turn_until(&mut l, &mut h, 1);
    assert_eq!(h.dumps, 1);
    signal::raise_to_self(Sig::SIGTERM).unwrap();
    // run() returns because the handler stopped the loop.
    l.run(&mut h).unwrap();
    assert_eq!(h.seen, vec![Signal::Dump, Signal::Terminate]);
    assert!(l.stats().signals >= 2);
}

/// Child side of the fork test: a single-threaded process running the loop until SIGTERM.
fn child_main(out: OwnedFd) -> i32 {
    let mut l: Loop<()> = match Loop::with_signals() {
        Ok(l) => l,
        Err(_) => return 2,
    };
    let mut h = MockDaemon::new(1);
    h.candidates.push(Ok(5));
    h.out = Some(out);
    // A grandchild that exits at once, so SIGCHLD arrives.
    match std::process::Command::new("true").spawn() {
        Ok(c) => std::mem::forget(c),
        Err(_) => return 3,
    }
    if l.run(&mut h).is_err() {
        return 4;
    }
    if h.running != 5 || h.dumps != 1 || h.children_reaped != 1 {
        return 5;
    }
    0
}

#[test]
fn another_process_sending_hup_usr1_term_drives_the_loop() {
    let (rx, tx) = nix::unistd::pipe().unwrap();
    // Block before forking so no signal can reach the child before its signalfd exists.
    signal::block_handled().unwrap();
    // SAFETY: the child only runs our loop code and leaves with _exit.
    let child = match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(rx);
            let rc = std::panic::catch_unwind(move || child_main(tx)).unwrap_or(6);
            unsafe { libc::_exit(rc) };
        }
        ForkResult::Parent { child } => child,
    };
    signal::unblock_handled().unwrap();
    drop(tx);
    let mut rx = std::fs::File::from(rx);
    let mut expect = |want: u8| {
        let mut b = [0u8; 1];
        loop {
            rx.read_exact(&mut b).expect("child died");
            // SIGCHLD from the grandchild can arrive at any point.
            if b[0] != b'C' || want == b'C' {
                break;
            }
        }
        assert_eq!(b[0] as char, want as char);
    };
    expect(b'C');
    signal::kill(child.as_raw(), Sig::SIGHUP).unwrap();
    expect(b'R');
    signal::kill(child.as_raw(), Sig::SIGUSR1).unwrap();
    expect(b'D');
    signal::kill(child.as_raw(), Sig::SIGTERM).unwrap();
    expect(b'T');
    assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
}
