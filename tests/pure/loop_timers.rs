//! Timers through the real loop: ordering, ties, cancellation, re-arming from a callback.

use minivrrp::base::{Duration, Instant};
use minivrrp::daemon::{Ctx, Handler, Inbox, Loop, Read, Ready, Signal, TimerId, Token};
use minivrrp::sys::clock;

#[derive(Default)]
struct Recorder {
    fired: Vec<(u32, Instant)>,
    rearm_once: Option<(TimerId, Duration)>,
}

impl Handler for Recorder {
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
    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant) {
        self.fired.push((id.0, now));
        if let Some((rid, d)) = self.rearm_once.take() {
            ctx.arm_after(rid, now, d).unwrap();
        }
    }
    fn on_signal(&mut self, _: &mut Ctx, _: Signal, _: Instant) {}
}

fn run_until(l: &mut Loop<()>, h: &mut Recorder, n: usize) {
    let start = clock::now();
    while h.fired.len() < n {
        l.turn(h, Some(Duration::from_millis(50))).unwrap();
        assert!(
            clock::now() - start < Duration::from_secs(5),
            "timers did not fire"
        );
    }
}

#[test]
fn timers_fire_by_deadline_then_arming_order() {
    let mut l: Loop<()> = Loop::new();
    let mut h = Recorder::default();
    let now = clock::now();
    let ctx = l.ctx();
    ctx.arm(TimerId(1), now + Duration::from_millis(30))
        .unwrap();
    ctx.arm(TimerId(2), now + Duration::from_millis(10))
        .unwrap();
    // Armed later, same deadline as 2: fires after 2.
    ctx.arm(TimerId(3), now + Duration::from_millis(10))
        .unwrap();
    // Inserted later with an earlier deadline: fires first.
    ctx.arm(TimerId(4), now + Duration::from_millis(5)).unwrap();
    run_until(&mut l, &mut h, 4);
    let ids: Vec<u32> = h.fired.iter().map(|f| f.0).collect();
    assert_eq!(ids, vec![4, 2, 3, 1]);
    // Never early: each fired at or after its deadline.
    assert!(h.fired[3].1 >= now + Duration::from_millis(30));
}

#[test]
fn cancelled_timer_never_fires_and_rearm_moves_deadline() {
    let mut l: Loop<()> = Loop::new();
    let mut h = Recorder::default();
    let now = clock::now();
    let ctx = l.ctx();
    ctx.arm(TimerId(1), now + Duration::from_millis(5)).unwrap();
    ctx.arm(TimerId(2), now + Duration::from_millis(10))
        .unwrap();
    ctx.arm(TimerId(3), now + Duration::from_millis(1)).unwrap();
    assert!(ctx.cancel(TimerId(1)));
    // Moving 3 later than 2.
    ctx.arm(TimerId(3), now + Duration::from_millis(20))
        .unwrap();
    run_until(&mut l, &mut h, 2);
    let ids: Vec<u32> = h.fired.iter().map(|f| f.0).collect();
    assert_eq!(ids, vec![2, 3]);
    assert_eq!(l.ctx().timers_armed(), 0);
}

#[test]
fn timer_rearmed_from_its_callback_fires_again() {
    let mut l: Loop<()> = Loop::new();
    let mut h = Recorder {
        rearm_once: Some((TimerId(7), Duration::from_millis(5))),
        ..Default::default()
    };
    let now = clock::now();
    l.ctx().arm(TimerId(7), now).unwrap();
    run_until(&mut l, &mut h, 2);
    assert_eq!(h.fired[0].0, 7);
    assert_eq!(h.fired[1].0, 7);
    assert!(h.fired[1].1 >= h.fired[0].1 + Duration::from_millis(5));
}

struct Spinner {
    fired: u32,
}

impl Handler for Spinner {
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
    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant) {
        self.fired += 1;
        // Zero delay: due again at once.
        ctx.arm(id, now).unwrap();
    }
    fn on_signal(&mut self, _: &mut Ctx, _: Signal, _: Instant) {}
}

#[test]
fn zero_delay_rearm_fires_once_per_turn_not_in_a_spin() {
    let mut l: Loop<()> = Loop::new();
    let mut h = Spinner { fired: 0 };
    l.ctx().arm(TimerId(1), Instant::ZERO).unwrap();
    l.ctx().arm(TimerId(2), Instant::ZERO).unwrap();
    for turn in 1..=10 {
        l.turn(&mut h, Some(Duration::ZERO)).unwrap();
        assert_eq!(h.fired, 2 * turn, "each due timer fires once per turn");
    }
}
