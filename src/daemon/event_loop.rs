//! The loop itself. See the module docs of `daemon` for the model.
//!
//! One turn of the loop:
//! 1. `poll` with a timeout up to the next timer (zero if work is already pending);
//! 2. fire every timer due when poll returned;
//! 3. for every ready fd, let the handler read at most [`READ_BUDGET`] times; each read may push
//!    input events to the [`Inbox`] (dropped and counted per fd when the queue is full); once
//!    a timer has fallen due, each fd gets one read and no more; the signalfd is drained into
//!    a pending-signal set that cannot overflow;
//! 4. fire every timer that fell due while reading (before any queued input is handled);
//! 5. deliver pending signals;
//! 6. handle the queued input events.
//!
//! So a due timer fires before more frames are read: a flood on a socket delays it by at most
//! one read per ready fd (the handler's batch), never by a whole `READ_BUDGET`. A timer armed
//! during a turn fires in the next one (with a zero poll timeout if it is already due), so a
//! zero-delay re-arm cannot spin. The steady state touches only fixed-size storage: no
//! allocation per turn.

use super::timers::TimerQueue;
use super::{CapacityError, TimerId, Token, EVENT_QUEUE_CAP, MAX_FDS, READ_BUDGET, TIMER_CAP};
use crate::base::lateness::{BusyLog, BUSY_MIN};
use crate::base::{Duration, Instant};
use crate::sys::clock;
use crate::sys::poll::{poll, Interest, PollEntry, Ready};
use crate::sys::sched::RunDelay;
use crate::sys::signal::{Signal, SignalSource};
use crate::sys::timer::DeadlineTimer;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, RawFd};

/// What a read of a ready fd found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Something was read (and possibly pushed to the [`Inbox`]); more may be pending. The
    /// loop calls again while the fd's budget lasts.
    Again,
    /// Nothing more to read now (EAGAIN): go on to the next fd.
    Drained,
}

/// Where a handler puts the input events it decoded from one fd. A netlink datagram can
/// carry several events, so a read may push more than one. When the loop's queue is full,
/// `push` drops the event and it is counted against this fd ([`Ctx::dropped`]).
pub struct Inbox<'q, I> {
    queue: &'q mut heapless::Deque<(Token, I), EVENT_QUEUE_CAP>,
    token: Token,
    queued: u64,
    dropped: u64,
}

impl<I> Inbox<'_, I> {
    /// Queue `ev` for [`Handler::on_input`]; `false` if it was dropped (queue full).
    pub fn push(&mut self, ev: I) -> bool {
        if self.queue.push_back((self.token, ev)).is_ok() {
            self.queued += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// The queue is full: anything pushed now is dropped.
    pub fn is_full(&self) -> bool {
        self.queue.is_full()
    }

    pub fn token(&self) -> Token {
        self.token
    }
}

/// The daemon's reactions. All callbacks get the loop's [`Ctx`] to arm/cancel timers,
/// register fds and stop the loop.
pub trait Handler {
    /// What reading an fd turns into (a decoded advert, a netlink event...). Kept small and
    /// `Sized`: it lives in the fixed event queue.
    type Input;

    /// `token` is ready. Read (at most) one unit (a frame, a datagram), push what it
    /// decodes to into `inbox`, and say whether more may be pending. Called at most
    /// [`READ_BUDGET`] times per fd per turn.
    fn on_readable(
        &mut self,
        ctx: &mut Ctx,
        inbox: &mut Inbox<'_, Self::Input>,
        token: Token,
        ready: Ready,
        now: Instant,
    ) -> Read;

    /// A queued input event, in arrival order.
    fn on_input(&mut self, ctx: &mut Ctx, token: Token, input: Self::Input, now: Instant);

    /// Timer `id` is due (`now` is at or after its deadline).
    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant);

    /// A signal arrived. `Signal::Reload` is where a handler parses the new config and swaps
    /// it in only if it is valid, so a failing reload leaves the running state untouched.
    fn on_signal(&mut self, ctx: &mut Ctx, sig: Signal, now: Instant);

    /// Timer `id` is about to fire, `late` after its deadline (read from the clock just
    /// before, so it includes the callbacks that ran before it in this turn). `busy`: the
    /// loop's callback that ran longest while the timer was overdue, with its whole run time;
    /// None when none ran long (the time went to other processes, or to the kernel).
    /// `waited`: for a timer at least [`BUSY_MIN`] late, how long the daemon was runnable but
    /// waiting for a CPU since it last went to sleep (the kernel's `run_delay`; None where it
    /// is not kept, or for a loop without it). Called for every fired timer, right before
    /// [`Self::on_timer`].
    fn on_late(
        &mut self,
        id: TimerId,
        late: Duration,
        busy: Option<(Busy, Duration)>,
        waited: Option<Duration>,
    ) {
        let _ = (id, late, busy, waited);
    }
}

/// A callback of the loop, to name what kept it busy when a timer fired late.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    /// Reading fd `Token` (up to the read budget).
    Read(Token),
    /// A queued input from `Token`.
    Input(Token),
    Timer(TimerId),
    Signal(Signal),
}

#[derive(Clone, Copy, Debug)]
struct Registration {
    token: Token,
    fd: RawFd,
    interest: Interest,
    dropped: u64,
}

/// Counters for the state dump.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    pub turns: u64,
    pub inputs_queued: u64,
    pub inputs_dropped: u64,
    pub timers_fired: u64,
    pub signals: u64,
    /// Times a turn stopped reading an fd because its budget was used up.
    pub budget_exhausted: u64,
    /// Times a turn stopped reading an fd early because a timer had fallen due.
    pub yielded_to_timers: u64,
}

/// The part of the loop handlers may change while being called.
pub struct Ctx {
    timers: TimerQueue<TIMER_CAP>,
    /// Reserved for `MAX_FDS` at start and never grown (so registering never allocates), on
    /// the heap rather than inline: the pages of entries never used stay untouched, where an
    /// inline table would be copied whole with every move of the loop and so made resident.
    regs: Vec<Registration>,
    stop: bool,
}

impl Ctx {
    fn new() -> Self {
        Ctx {
            timers: TimerQueue::new(),
            regs: Vec::with_capacity(MAX_FDS),
            stop: false,
        }
    }

    /// Arm (or move) timer `id` to fire at `at`.
    pub fn arm(&mut self, id: TimerId, at: Instant) -> Result<(), CapacityError> {
        self.timers
            .arm(id, at)
            .map_err(|_| CapacityError::TooManyTimers {
                needed: TIMER_CAP + 1,
                max: TIMER_CAP,
            })
    }

    /// Arm timer `id` to fire `after` from `now`.
    pub fn arm_after(
        &mut self,
        id: TimerId,
        now: Instant,
        after: Duration,
    ) -> Result<(), CapacityError> {
        self.arm(id, now + after)
    }

    /// Disarm timer `id`; returns whether it was armed.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// Deadline of timer `id`, if armed.
    pub fn deadline(&self, id: TimerId) -> Option<Instant> {
        self.timers.deadline(id)
    }

    /// Disarm and return the earliest timer due at `now`, with its deadline: for a driver
    /// that keeps its own clock instead of [`Loop::run`] (`tests/daemon_conformance.rs`).
    pub fn pop_due(&mut self, now: Instant) -> Option<(TimerId, Instant)> {
        self.timers.pop_due(now)
    }

    /// Make [`Loop::run`] return after the current turn.
    pub fn stop(&mut self) {
        self.stop = true;
    }

    pub fn is_stopping(&self) -> bool {
        self.stop
    }

    /// Watch `fd` under `token`. The caller keeps owning the fd (it also sends on it) and
    /// must [`deregister`](Self::deregister) it before closing it.
    pub fn register(
        &mut self,
        token: Token,
        fd: &impl AsRawFd,
        interest: Interest,
    ) -> Result<(), CapacityError> {
        if self.regs.iter().any(|r| r.token == token) {
            return Err(CapacityError::DuplicateToken(token));
        }
        if self.regs.len() >= MAX_FDS {
            return Err(CapacityError::TooManyFds {
                needed: MAX_FDS + 1,
                max: MAX_FDS,
            });
        }
        self.regs.push(Registration {
            token,
            fd: fd.as_raw_fd(),
            interest,
            dropped: 0,
        });
        Ok(())
    }

    /// Stop watching `token`; returns whether it was registered.
    pub fn deregister(&mut self, token: Token) -> bool {
        match self.regs.iter().position(|r| r.token == token) {
            Some(i) => {
                self.regs.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Change what `token` waits for (e.g. POLLOUT while a TCP connect is in progress).
    pub fn set_interest(&mut self, token: Token, interest: Interest) -> bool {
        match self.regs.iter_mut().find(|r| r.token == token) {
            Some(r) => {
                r.interest = interest;
                true
            }
            None => false,
        }
    }

    pub fn is_registered(&self, token: Token) -> bool {
        self.regs.iter().any(|r| r.token == token)
    }

    /// Input events from `token` dropped because the event queue was full.
    pub fn dropped(&self, token: Token) -> u64 {
        self.regs
            .iter()
            .find(|r| r.token == token)
            .map_or(0, |r| r.dropped)
    }

    pub fn timers_armed(&self) -> usize {
        self.timers.len()
    }
}

/// Where a poll-set entry came from.
#[derive(Clone, Copy)]
enum Slot {
    Fd(Token),
    Signals,
    Timer,
}

/// The event loop, generic over the handler's input event type.
pub struct Loop<I> {
    ctx: Ctx,
    queue: heapless::Deque<(Token, I), EVENT_QUEUE_CAP>,
    signals: Option<SignalSource>,
    /// Wakes poll at the next timer deadline precisely (see `sys::timer` for why a poll
    /// timeout is not precise enough). Without it (timerfd unavailable) poll's timeout is used.
    deadline: Option<DeadlineTimer>,
    pending_signals: u8,
    // Rebuilt every turn from `ctx.regs` (handlers may register/deregister at any time);
    // kept here so the storage is reused, not because the contents persist.
    // Reserved for MAX_FDS + 2 at start, never grown (see `Ctx::regs`).
    poll_set: Vec<PollEntry>,
    slots: Vec<Slot>,
    stats: LoopStats,
    /// Callbacks that ran long lately, to blame a late timer on.
    busy: BusyLog<Busy>,
    /// The kernel's count of this thread's time waiting for a CPU, and its reading before
    /// the last sleep in poll (when, value): to tell a late wake-up from a late CPU.
    run_delay: Option<RunDelay>,
    wait_base: Option<(Instant, Duration)>,
}

/// The waiting time is read before a poll that may sleep at most this often: a few
/// reads a second when idle, at most a thousand under a flood (a `pread` each, about a
/// microsecond). What other wake-ups waited in the last such span adds to the figure.
const WAIT_SAMPLE_EVERY: Duration = Duration::from_millis(1);

impl<I> Default for Loop<I> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I> Loop<I> {
    /// A loop without signal handling (tests, tools).
    pub fn new() -> Self {
        Loop {
            ctx: Ctx::new(),
            queue: heapless::Deque::new(),
            signals: None,
            deadline: DeadlineTimer::new().ok(),
            pending_signals: 0,
            poll_set: Vec::with_capacity(MAX_FDS + 2),
            slots: Vec::with_capacity(MAX_FDS + 2),
            stats: LoopStats::default(),
            busy: BusyLog::new(),
            run_delay: None,
            wait_base: None,
        }
    }

    /// A loop that also receives SIGTERM/SIGINT/SIGHUP/SIGUSR1/SIGCHLD as events. Blocks those
    /// signals in the calling thread (the daemon's only thread) first.
    pub fn with_signals() -> Result<Self, Errno> {
        let mut l = Self::new();
        l.signals = Some(SignalSource::new()?);
        // The daemon's loop runs in the thread that creates it: the file is that thread's.
        l.run_delay = RunDelay::open();
        Ok(l)
    }

    pub fn ctx(&mut self) -> &mut Ctx {
        &mut self.ctx
    }

    pub fn stats(&self) -> LoopStats {
        self.stats
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Run turns until a handler calls [`Ctx::stop`].
    pub fn run<H: Handler<Input = I>>(&mut self, h: &mut H) -> Result<(), Errno> {
        while !self.ctx.stop {
            self.turn(h, None)?;
        }
        Ok(())
    }

    /// One turn (see the module docs). `max_wait` caps the poll timeout (tests use it to
    /// bound how long a turn may sleep). Returns the number of fds poll reported ready.
    pub fn turn<H: Handler<Input = I>>(
        &mut self,
        h: &mut H,
        max_wait: Option<Duration>,
    ) -> Result<usize, Errno> {
        self.stats.turns += 1;
        // Timers armed from here on (by this turn's callbacks) wait for the next turn.
        let mark = self.ctx.timers.mark();
        let now = clock::now();
        let timeout = if self.ctx.stop || self.pending_signals != 0 || !self.queue.is_empty() {
            Some(Duration::ZERO)
        } else {
            let next = self.ctx.timers.next_deadline();
            let until_timer = next.map(|d| d.saturating_duration_since(now));
            if until_timer == Some(Duration::ZERO) {
                Some(Duration::ZERO)
            } else if let Some(Ok(())) = self.deadline.as_mut().map(|t| t.set(next)) {
                // The timerfd wakes poll at the deadline; poll itself waits only for fds.
                max_wait
            } else {
                match (until_timer, max_wait) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        };

        self.poll_set.clear();
        self.slots.clear();
        for r in self.ctx.regs.iter() {
            // Both vectors have room for MAX_FDS + 2 and regs holds at most MAX_FDS.
            self.poll_set.push(PollEntry {
                fd: r.fd,
                interest: r.interest,
                ready: Ready::default(),
            });
            self.slots.push(Slot::Fd(r.token));
        }
        if let Some(s) = &self.signals {
            self.poll_set.push(PollEntry {
                fd: s.as_raw_fd(),
                interest: Interest::READABLE,
                ready: Ready::default(),
            });
            self.slots.push(Slot::Signals);
        }
        if let Some(t) = &self.deadline {
            self.poll_set.push(PollEntry {
                fd: t.as_raw_fd(),
                interest: Interest::READABLE,
                ready: Ready::default(),
            });
            self.slots.push(Slot::Timer);
        }
        if timeout != Some(Duration::ZERO) {
            self.sample_wait(now);
        }
        let n = poll(&mut self.poll_set, timeout)?;
        let now = clock::now();

        // Timers first: what was due when poll returned fires before any frame is read.
        self.fire_timers(h, now, mark);

        if n > 0 {
            for i in 0..self.poll_set.len() {
                let ready = self.poll_set[i].ready;
                if !ready.any() {
                    continue;
                }
                match self.slots[i] {
                    Slot::Signals => self.read_signals(),
                    Slot::Timer => {
                        if let Some(t) = self.deadline.as_mut() {
                            t.drain();
                        }
                    }
                    Slot::Fd(token) => {
                        let start = clock::now();
                        self.read_fd(h, token, ready, now);
                        self.busy.record(Busy::Read(token), start, clock::now());
                    }
                }
            }
        }

        // What fell due while reading fires now, before the queued input: a fresh reading of
        // the clock, which every callback from here on gets, so time never runs backwards.
        let now = clock::now();
        self.fire_timers(h, now, mark);
        self.dispatch(h, now);
        Ok(n)
    }

    /// Read the waiting time before a sleep, unless a reading younger than
    /// [`WAIT_SAMPLE_EVERY`] is at hand.
    fn sample_wait(&mut self, now: Instant) {
        let Some(rd) = self.run_delay.as_ref() else {
            return;
        };
        if self
            .wait_base
            .is_some_and(|(at, _)| now.saturating_duration_since(at) < WAIT_SAMPLE_EVERY)
        {
            return;
        }
        self.wait_base = rd.read().map(|v| (now, v));
    }

    /// How long the thread waited for a CPU since the reading before its last sleep.
    fn waited(&self) -> Option<Duration> {
        let (_, base) = self.wait_base?;
        let v = self.run_delay.as_ref()?.read()?;
        Some(v.saturating_sub(base))
    }

    /// A timer is due (one armed during this turn too: it fires at the start of the next
    /// turn, which comes at once): reading should give way to it.
    fn timer_due(&self) -> bool {
        self.ctx
            .timers
            .next_deadline()
            .is_some_and(|d| d <= clock::now())
    }

    fn read_signals(&mut self) {
        let Some(src) = self.signals.as_mut() else {
            return;
        };
        // Bounded: at most one read per handled signal number pending, plus slack.
        for _ in 0..16 {
            match src.read() {
                Ok(Some(sig)) => {
                    self.pending_signals |= sig.bit();
                    self.stats.signals += 1;
                }
                Ok(None) | Err(_) => break,
            }
        }
    }

    /// Let the handler read `token` up to [`READ_BUDGET`] times, but only once when a timer
    /// is (or falls) due: the timer goes first, the rest of the fd's frames wait for the next
    /// turn (poll reports the fd ready again at once). One read always happens, so timers
    /// that are always due cannot starve an fd.
    fn read_fd<H: Handler<Input = I>>(
        &mut self,
        h: &mut H,
        token: Token,
        ready: Ready,
        now: Instant,
    ) {
        for k in 0..READ_BUDGET {
            if k > 0 && self.timer_due() {
                self.stats.yielded_to_timers += 1;
                return;
            }
            // The handler may have deregistered the token in an earlier callback.
            if !self.ctx.is_registered(token) {
                return;
            }
            let mut inbox = Inbox {
                queue: &mut self.queue,
                token,
                queued: 0,
                dropped: 0,
            };
            let r = h.on_readable(&mut self.ctx, &mut inbox, token, ready, now);
            let (queued, dropped) = (inbox.queued, inbox.dropped);
            self.stats.inputs_queued += queued;
            if dropped > 0 {
                self.stats.inputs_dropped += dropped;
                if let Some(reg) = self.ctx.regs.iter_mut().find(|r| r.token == token) {
                    reg.dropped += dropped;
                }
            }
            if r == Read::Drained {
                return;
            }
            if k + 1 == READ_BUDGET {
                self.stats.budget_exhausted += 1;
            }
        }
    }

    /// Fire the timers armed before `mark` that are due at `now`, earliest first, each once:
    /// a handler re-arming its timer at or before `now` gets called again next turn, not in
    /// a loop within this one, so a zero-delay re-arm cannot starve input or spin.
    fn fire_timers<H: Handler<Input = I>>(&mut self, h: &mut H, now: Instant, mark: u64) {
        // Bounded: each pass removes a timer armed before `mark`, and none is added to them.
        for _ in 0..TIMER_CAP {
            let Some((id, deadline)) = self.ctx.timers.pop_due_armed_before(now, mark) else {
                break;
            };
            self.stats.timers_fired += 1;
            let fired = clock::now();
            let late = fired.saturating_duration_since(deadline);
            let (busy, waited) = if late >= BUSY_MIN {
                (self.busy.blame(deadline, fired), self.waited())
            } else {
                (None, None)
            };
            h.on_late(id, late, busy, waited);
            h.on_timer(&mut self.ctx, id, now);
            self.busy.record(Busy::Timer(id), fired, clock::now());
        }
    }

    /// Pending signals, then the queued input.
    fn dispatch<H: Handler<Input = I>>(&mut self, h: &mut H, now: Instant) {
        // Signals first, in a fixed order: Terminate first so a stop is never delayed by a
        // reload that was pending at the same moment.
        let pending = core::mem::take(&mut self.pending_signals);
        for sig in Signal::ALL {
            if pending & sig.bit() != 0 {
                let start = clock::now();
                h.on_signal(&mut self.ctx, sig, now);
                self.busy.record(Busy::Signal(sig), start, clock::now());
            }
        }
        // Then queued input, only what was queued before this point (handlers cannot queue).
        for _ in 0..EVENT_QUEUE_CAP {
            if self.ctx.stop {
                break;
            }
            match self.queue.pop_front() {
                Some((token, ev)) => {
                    let start = clock::now();
                    h.on_input(&mut self.ctx, token, ev, now);
                    self.busy.record(Busy::Input(token), start, clock::now());
                }
                None => break,
            }
        }
    }
}
