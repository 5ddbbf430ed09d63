//! The steady-state loop does not allocate: a counting global allocator, active only on this
//! test's thread, sees zero allocations over many turns after warm-up.

#[macro_use]
mod common;

use common::alloc::{Counting, ACTIVE, ALLOCS};

use minivrrp::base::{Duration, Instant};
use minivrrp::daemon::{Ctx, Handler, Inbox, Interest, Loop, Read, Ready, Signal, TimerId, Token};
use minivrrp::sys::fd;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Echo {
    rx: OwnedFd,
    tx: OwnedFd,
    timers: u64,
    inputs: u64,
}

impl Handler for Echo {
    type Input = [u8; 4];
    fn on_readable(
        &mut self,
        _: &mut Ctx,
        inbox: &mut Inbox<[u8; 4]>,
        _: Token,
        _: Ready,
        _: Instant,
    ) -> Read {
        let mut b = [0u8; 4];
        match fd::read_nb(self.rx.as_fd(), &mut b) {
            Ok(Some(n)) if n > 0 => {
                inbox.push(b);
                Read::Again
            }
            _ => Read::Drained,
        }
    }
    fn on_input(&mut self, _: &mut Ctx, _: Token, _: [u8; 4], _: Instant) {
        self.inputs += 1;
    }
    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant) {
        self.timers += 1;
        // Each timer produces input for the next turn and re-arms itself: the daemon's
        // steady state (advert timer -> send, socket -> receive) in miniature.
        let _ = fd::write_nb(self.tx.as_fd(), &[1, 2, 3, 4]);
        ctx.arm_after(id, now, Duration::ZERO).unwrap();
        ctx.cancel(TimerId(99));
        ctx.arm_after(TimerId(99), now, Duration::from_secs(3))
            .unwrap();
    }
    fn on_signal(&mut self, _: &mut Ctx, _: Signal, _: Instant) {}
}

#[test]
fn steady_state_loop_turns_allocate_nothing() {
    let (rx, tx) = fd::pipe().unwrap();
    let mut h = Echo {
        rx,
        tx,
        timers: 0,
        inputs: 0,
    };
    let mut l: Loop<[u8; 4]> = Loop::new();
    l.ctx()
        .register(Token(1), &h.rx, Interest::READABLE)
        .unwrap();
    l.ctx().arm(TimerId(1), Instant::ZERO).unwrap();
    for _ in 0..100 {
        l.turn(&mut h, Some(Duration::from_millis(10))).unwrap();
    }
    let (t0, i0) = (h.timers, h.inputs);
    // The counter itself works: one deliberate allocation is seen.
    ACTIVE.with(|a| a.set(true));
    let probe = std::hint::black_box(Box::new(7u64));
    ACTIVE.with(|a| a.set(false));
    drop(probe);
    assert_eq!(
        ALLOCS.swap(0, Ordering::Relaxed),
        1,
        "counting allocator is active"
    );
    ACTIVE.with(|a| a.set(true));
    for _ in 0..2000 {
        l.turn(&mut h, Some(Duration::from_millis(10))).unwrap();
    }
    ACTIVE.with(|a| a.set(false));
    let allocs = ALLOCS.load(Ordering::Relaxed);
    assert!(h.timers - t0 >= 1000, "timers kept firing");
    assert!(h.inputs - i0 >= 1000, "input kept flowing");
    assert_eq!(allocs, 0, "steady-state turns allocated {allocs} times");
}
