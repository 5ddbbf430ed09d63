//! Event-queue overflow accounting and fairness under an input flood.

use minivrrp::base::{Duration, Instant};
use minivrrp::daemon::link_sync::LinkSync;
use minivrrp::daemon::{
    Ctx, Handler, Inbox, Interest, Loop, Read, Ready, Signal, TimerId, Token, EVENT_QUEUE_CAP,
    READ_BUDGET,
};
use minivrrp::sys::clock;
use std::os::unix::net::UnixDatagram;

struct Sockets {
    socks: Vec<UnixDatagram>,
    inputs: Vec<(Token, u8)>,
    reads: usize,
    timer_fired_after_reads: Option<usize>,
    timer_fired_at: Option<Instant>,
}

impl Handler for Sockets {
    type Input = u8;
    fn on_readable(
        &mut self,
        _: &mut Ctx,
        inbox: &mut Inbox<u8>,
        token: Token,
        _: Ready,
        _: Instant,
    ) -> Read {
        let mut buf = [0u8; 64];
        match self.socks[token.0 as usize].recv(&mut buf) {
            Ok(n) => {
                self.reads += 1;
                if n > 0 {
                    inbox.push(buf[0]);
                }
                Read::Again
            }
            Err(_) => Read::Drained,
        }
    }
    fn on_input(&mut self, _: &mut Ctx, token: Token, input: u8, _: Instant) {
        self.inputs.push((token, input));
    }
    fn on_timer(&mut self, _: &mut Ctx, _: TimerId, now: Instant) {
        self.timer_fired_after_reads.get_or_insert(self.reads);
        self.timer_fired_at.get_or_insert(now);
    }
    fn on_signal(&mut self, _: &mut Ctx, _: Signal, _: Instant) {}
}

fn pair() -> (UnixDatagram, UnixDatagram) {
    let (a, b) = UnixDatagram::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

#[test]
fn full_queue_drops_input_counted_per_source_but_never_timers() {
    // Enough sources that one turn reads more than the queue holds.
    let nsrc = EVENT_QUEUE_CAP / READ_BUDGET + 4;
    let mut readers = vec![];
    let mut writers = vec![];
    for i in 0..nsrc {
        let (r, w) = pair();
        for _ in 0..READ_BUDGET * 2 {
            w.send(&[i as u8]).unwrap();
        }
        readers.push(r);
        writers.push(w);
    }
    let mut h = Sockets {
        socks: readers,
        inputs: vec![],
        reads: 0,
        timer_fired_after_reads: None,
        timer_fired_at: None,
    };
    let mut l: Loop<u8> = Loop::new();
    for i in 0..nsrc {
        l.ctx()
            .register(Token(i as u32), &h.socks[i], Interest::READABLE)
            .unwrap();
    }
    l.ctx().arm(TimerId(1), clock::now()).unwrap();
    l.turn(&mut h, Some(Duration::ZERO)).unwrap();

    let read_total = nsrc * READ_BUDGET;
    let dropped = read_total - EVENT_QUEUE_CAP;
    assert_eq!(
        h.reads, read_total,
        "each fd read exactly READ_BUDGET times"
    );
    assert_eq!(h.inputs.len(), EVENT_QUEUE_CAP);
    assert_eq!(l.stats().inputs_dropped as usize, dropped);
    let per_source: usize = (0..nsrc)
        .map(|i| l.ctx().dropped(Token(i as u32)) as usize)
        .sum();
    assert_eq!(per_source, dropped);
    // Registration order is read order: the first sources filled the queue.
    assert_eq!(l.ctx().dropped(Token(0)), 0);
    assert_eq!(l.ctx().dropped(Token(nsrc as u32 - 1)), READ_BUDGET as u64);
    assert!(h.timer_fired_at.is_some(), "a due timer is never dropped");
    drop(writers);
}

#[test]
fn flooded_socket_cannot_starve_a_due_timer() {
    let (r, w) = pair();
    let mut h = Sockets {
        socks: vec![r],
        inputs: vec![],
        reads: 0,
        timer_fired_after_reads: None,
        timer_fired_at: None,
    };
    let mut l: Loop<u8> = Loop::new();
    l.ctx()
        .register(Token(0), &h.socks[0], Interest::READABLE)
        .unwrap();
    let deadline = clock::now() + Duration::from_millis(20);
    l.ctx().arm(TimerId(9), deadline).unwrap();

    let mut turns_after_due = 0;
    let start = clock::now();
    while h.timer_fired_at.is_none() {
        // Keep the socket flooded: it is always readable with more than a budget's worth.
        while w.send(&[0xaa]).is_ok() {}
        let before = h.reads;
        l.turn(&mut h, None).unwrap();
        assert!(
            h.reads - before <= READ_BUDGET,
            "a turn reads at most READ_BUDGET frames"
        );
        if clock::now() >= deadline {
            turns_after_due += 1;
        }
        assert!(
            clock::now() - start < Duration::from_secs(5),
            "timer starved"
        );
    }
    // The turn that observes the deadline fires it (one more turn of slack for the clock
    // read between poll and dispatch).
    assert!(
        turns_after_due <= 2,
        "timer fired {turns_after_due} turns after due"
    );
    let late = h.timer_fired_at.unwrap() - deadline;
    // Generous bound on a shared 2-core machine; the point is "not starved".
    assert!(late < Duration::from_secs(1), "timer late by {late:?}");
    assert!(h.reads > 0 && !h.inputs.is_empty());
    assert!(l.stats().budget_exhausted > 0);
}

/// Reads one datagram per call, each taking `read_cost` (a handler parsing a frame); records
/// when the timers fired relative to the reads. `rearm` re-arms every timer at once (due
/// again next turn).
struct SlowReader {
    sock: UnixDatagram,
    read_cost: std::time::Duration,
    reads: usize,
    fired_after_reads: Vec<usize>,
    rearm: bool,
}

impl Handler for SlowReader {
    type Input = ();
    fn on_readable(
        &mut self,
        _: &mut Ctx,
        _: &mut Inbox<()>,
        _: Token,
        _: Ready,
        _: Instant,
    ) -> Read {
        let mut buf = [0u8; 64];
        match self.sock.recv(&mut buf) {
            Ok(_) => {
                self.reads += 1;
                std::thread::sleep(self.read_cost);
                Read::Again
            }
            Err(_) => Read::Drained,
        }
    }
    fn on_input(&mut self, _: &mut Ctx, _: Token, _: (), _: Instant) {}
    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant) {
        self.fired_after_reads.push(self.reads);
        if self.rearm {
            ctx.arm(id, now).unwrap();
        }
    }
    fn on_signal(&mut self, _: &mut Ctx, _: Signal, _: Instant) {}
}

fn slow_reader(frames: usize, read_cost_ms: u64, rearm: bool) -> (SlowReader, UnixDatagram) {
    let (r, w) = pair();
    for _ in 0..frames {
        w.send(&[7]).unwrap();
    }
    let h = SlowReader {
        sock: r,
        read_cost: std::time::Duration::from_millis(read_cost_ms),
        reads: 0,
        fired_after_reads: vec![],
        rearm,
    };
    (h, w)
}

#[test]
fn a_timer_due_when_poll_returns_fires_before_any_frame_is_read() {
    let (mut h, _w) = slow_reader(READ_BUDGET * 4, 0, false);
    let mut l: Loop<()> = Loop::new();
    l.ctx()
        .register(Token(0), &h.sock, Interest::READABLE)
        .unwrap();
    l.ctx().arm(TimerId(1), clock::now()).unwrap();
    l.turn(&mut h, Some(Duration::ZERO)).unwrap();
    assert_eq!(h.fired_after_reads, vec![0], "the due timer went first");
    // Nothing else was due: the fd then got its whole budget.
    assert_eq!(h.reads, READ_BUDGET);
}

#[test]
fn a_timer_falling_due_while_reading_stops_the_reading() {
    // Each read costs at least 1 ms; the timer falls due 2.5 ms after it is armed, so by the
    // third read at the latest it is due, and the loop stops reading and fires it in the
    // same turn instead of reading the fd's whole budget (READ_BUDGET frames) first.
    let (mut h, _w) = slow_reader(READ_BUDGET * 4, 1, false);
    let mut l: Loop<()> = Loop::new();
    l.ctx()
        .register(Token(0), &h.sock, Interest::READABLE)
        .unwrap();
    l.ctx()
        .arm(TimerId(1), clock::now() + Duration::from_micros(2500))
        .unwrap();
    l.turn(&mut h, Some(Duration::ZERO)).unwrap();
    assert_eq!(h.fired_after_reads.len(), 1, "fired in the same turn");
    assert!(
        h.fired_after_reads[0] <= 3 && h.reads <= 3,
        "reads before the timer: {:?} of {} (budget {READ_BUDGET})",
        h.fired_after_reads,
        h.reads
    );
    assert_eq!(l.stats().yielded_to_timers, 1);
    // The frames left are read next turn.
    let before = h.reads;
    l.turn(&mut h, Some(Duration::ZERO)).unwrap();
    assert!(h.reads > before);
}

#[test]
fn always_due_timers_still_let_every_ready_fd_read_once_per_turn() {
    // A timer re-armed at `now` from its own callback is due at every turn; the fd still
    // gets one read per turn (the handler's batch), so reading is never starved.
    let (mut h, _w) = slow_reader(10, 0, true);
    let mut l: Loop<()> = Loop::new();
    l.ctx()
        .register(Token(0), &h.sock, Interest::READABLE)
        .unwrap();
    l.ctx().arm(TimerId(1), clock::now()).unwrap();
    for turn in 1..=10 {
        l.turn(&mut h, Some(Duration::ZERO)).unwrap();
        assert_eq!(h.fired_after_reads.len(), turn, "once per turn");
        assert_eq!(h.reads, turn, "one read per turn while a timer is due");
    }
}

#[test]
fn deregistered_fd_is_no_longer_read() {
    let (r, w) = pair();
    w.send(&[1]).unwrap();
    let mut h = Sockets {
        socks: vec![r],
        inputs: vec![],
        reads: 0,
        timer_fired_after_reads: None,
        timer_fired_at: None,
    };
    let mut l: Loop<u8> = Loop::new();
    l.ctx()
        .register(Token(0), &h.socks[0], Interest::READABLE)
        .unwrap();
    assert!(l
        .ctx()
        .register(Token(0), &h.socks[0], Interest::READABLE)
        .is_err());
    assert!(l.ctx().deregister(Token(0)));
    l.turn(&mut h, Some(Duration::ZERO)).unwrap();
    assert_eq!(h.reads, 0);
}

/// The daemon's picture of one link, fed from a "link events" socket read after flood
/// sockets, the way the runtime feeds `Event::Link` through `LinkSync`.
struct LinkPicture {
    floods: Vec<UnixDatagram>,
    links: UnixDatagram,
    /// What the kernel says now (what a dump would read).
    kernel_up: bool,
    /// What the daemon believes.
    picture_up: Option<bool>,
    sync: LinkSync,
    /// The picture each resync found, and whether it came after every queued link event.
    resyncs: Vec<bool>,
    link_events_handled: usize,
}

#[derive(Debug)]
enum Ev {
    Flood,
    Link(bool),
}

const LINKS: Token = Token(1000);

impl Handler for LinkPicture {
    type Input = Ev;
    fn on_readable(
        &mut self,
        _: &mut Ctx,
        inbox: &mut Inbox<Ev>,
        token: Token,
        _: Ready,
        _: Instant,
    ) -> Read {
        let mut buf = [0u8; 8];
        if token == LINKS {
            return match self.links.recv(&mut buf) {
                Ok(_) => {
                    self.sync.push(inbox, Ev::Link(buf[0] == b'U'));
                    Read::Again
                }
                Err(_) => Read::Drained,
            };
        }
        match self.floods[token.0 as usize].recv(&mut buf) {
            Ok(_) => {
                inbox.push(Ev::Flood);
                Read::Again
            }
            Err(_) => Read::Drained,
        }
    }
    fn on_input(&mut self, _: &mut Ctx, _: Token, input: Ev, _: Instant) {
        if let Ev::Link(up) = input {
            self.sync.handled();
            self.picture_up = Some(up);
            self.link_events_handled += 1;
        }
        // The runtime's settle step, stage 0.
        if self.sync.take_resync() {
            self.picture_up = Some(self.kernel_up);
            self.resyncs.push(self.kernel_up);
        }
    }
    fn on_timer(&mut self, _: &mut Ctx, _: TimerId, _: Instant) {}
    fn on_signal(&mut self, _: &mut Ctx, _: Signal, _: Instant) {}
}

#[test]
fn dropped_link_event_is_made_good_by_a_resync_after_the_older_queued_ones() {
    // Flood sockets registered first fill the queue to one short of full; then the link
    // socket gives "down" (queued, the last slot) and "up" (dropped). The kernel says up.
    let nflood = EVENT_QUEUE_CAP / READ_BUDGET;
    let mut floods = vec![];
    let mut writers = vec![];
    for i in 0..nflood {
        let (r, w) = pair();
        let n = if i + 1 == nflood {
            READ_BUDGET - 1
        } else {
            READ_BUDGET
        };
        for _ in 0..n {
            w.send(b"f").unwrap();
        }
        floods.push(r);
        writers.push(w);
    }
    let (links, lw) = pair();
    lw.send(b"D").unwrap();
    lw.send(b"U").unwrap();
    let mut h = LinkPicture {
        floods,
        links,
        kernel_up: true,
        picture_up: None,
        sync: LinkSync::new(),
        resyncs: vec![],
        link_events_handled: 0,
    };
    let mut l: Loop<Ev> = Loop::new();
    for i in 0..nflood {
        l.ctx()
            .register(Token(i as u32), &h.floods[i], Interest::READABLE)
            .unwrap();
    }
    l.ctx()
        .register(LINKS, &h.links, Interest::READABLE)
        .unwrap();
    l.turn(&mut h, Some(Duration::ZERO)).unwrap();

    assert_eq!(l.ctx().dropped(LINKS), 1, "the 'up' event was dropped");
    assert_eq!(h.link_events_handled, 1, "the 'down' event was handled");
    // Without the resync the daemon would believe the link is down until its next event.
    assert_eq!(h.picture_up, Some(true), "resynced to the kernel's state");
    assert_eq!(h.resyncs, [true], "one resync, after the queued 'down'");
    assert_eq!(h.sync.stats(), (1, 1));
    // Nothing more lost: the next turn does not resync again.
    lw.send(b"D").unwrap();
    h.kernel_up = false;
    l.turn(&mut h, Some(Duration::ZERO)).unwrap();
    assert_eq!(h.picture_up, Some(false));
    assert_eq!(h.resyncs.len(), 1);
    drop(writers);
}
