//! Benchmark (ignored by default; prints numbers, asserts only that work happened):
//! `cargo test --release --test host loop_bench:: -- --ignored --nocapture`
//! Cost of a loop turn with a flooded datagram socket and a timer re-armed every turn.

use minivrrp::base::{Duration, Instant};
use minivrrp::daemon::{Ctx, Handler, Inbox, Interest, Loop, Read, Ready, Signal, TimerId, Token};
use minivrrp::sys::clock;
use std::os::unix::net::UnixDatagram;

struct Bench {
    rx: UnixDatagram,
    frames: u64,
    timers: u64,
}

impl Handler for Bench {
    type Input = u16;
    fn on_readable(
        &mut self,
        _: &mut Ctx,
        inbox: &mut Inbox<u16>,
        _: Token,
        _: Ready,
        _: Instant,
    ) -> Read {
        let mut buf = [0u8; 64];
        match self.rx.recv(&mut buf) {
            Ok(n) => {
                inbox.push(n as u16);
                Read::Again
            }
            Err(_) => Read::Drained,
        }
    }
    fn on_input(&mut self, _: &mut Ctx, _: Token, _: u16, _: Instant) {
        self.frames += 1;
    }
    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant) {
        self.timers += 1;
        let _ = ctx.arm(id, now);
    }
    fn on_signal(&mut self, _: &mut Ctx, _: Signal, _: Instant) {}
}

#[test]
#[ignore]
fn bench_turn_cost_under_flood() {
    let (rx, tx) = UnixDatagram::pair().unwrap();
    rx.set_nonblocking(true).unwrap();
    tx.set_nonblocking(true).unwrap();
    let mut h = Bench {
        rx,
        frames: 0,
        timers: 0,
    };
    let mut l: Loop<u16> = Loop::new();
    l.ctx()
        .register(Token(0), &h.rx, Interest::READABLE)
        .unwrap();
    l.ctx().arm(TimerId(0), Instant::ZERO).unwrap();
    let frame = [0u8; 46];
    let turns = 100_000u64;
    let start = clock::now();
    for _ in 0..turns {
        while tx.send(&frame).is_ok() {}
        l.turn(&mut h, Some(Duration::ZERO)).unwrap();
    }
    let el = clock::now() - start;
    println!(
        "{turns} turns in {el:?}: {:.2} us/turn, {} frames ({:.2} us/frame incl. send), {} timers",
        el.as_secs_f64() * 1e6 / turns as f64,
        h.frames,
        el.as_secs_f64() * 1e6 / h.frames.max(1) as f64,
        h.timers
    );
    assert!(h.frames > 0 && h.timers >= turns);
}
