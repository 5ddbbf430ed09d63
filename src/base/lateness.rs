//! How late timers fire, and what to say when one fires too late.
//!
//! A VRRP timer that fires late is the first step to a false takeover: RFC 5798 6.1 gives a
//! backup Skew_Time of slack beyond three advert intervals, and at `advert_int 0.01` that is
//! under 10 ms. The loop reports each fired timer's lateness (fired minus deadline) with the
//! callback that kept the loop busy meanwhile, if any; this module keeps the figures
//! (a histogram for the daemon, the worst per instance) and decides when to warn.
//!
//! Pure: the caller passes every instant. Fixed size: no allocation per timer.

use super::time::{Duration, Instant};

/// Upper bounds of the histogram's buckets, microseconds; one more bucket counts the rest.
pub const BOUNDS_US: [u64; 8] = [
    100, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000,
];

/// Lateness of every fired timer: a count per bucket of [`BOUNDS_US`] (the last one above
/// them all) and the worst seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    pub counts: [u64; BOUNDS_US.len() + 1],
    pub worst: Duration,
    /// Sum of all lateness, microseconds (a Prometheus histogram's `_sum`).
    pub sum_us: u64,
}

impl Histogram {
    pub fn record(&mut self, late: Duration) {
        let us = late.as_micros() as u64;
        let i = BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BOUNDS_US.len());
        self.counts[i] = self.counts[i].saturating_add(1);
        self.worst = self.worst.max(late);
        self.sum_us = self.sum_us.saturating_add(us);
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c))
    }

    /// `(upper bound in µs, timers at or under it)`, cumulative, the last bound `None` (+Inf):
    /// what a Prometheus histogram's `_bucket{le=...}` series carry.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        let mut acc = 0u64;
        self.counts.iter().enumerate().map(move |(i, &c)| {
            acc = acc.saturating_add(c);
            (BOUNDS_US.get(i).copied(), acc)
        })
    }
}

/// Lateness worth a warning for an instance: a tenth of its Skew_Time, but at least 1 ms
/// (a wake-up's own jitter; a priority-255 instance at 10 ms adverts has a 39 µs Skew_Time).
pub fn threshold(skew_time: Duration) -> Duration {
    let tenth = skew_time / 10;
    tenth.max(Duration::from_millis(1))
}

/// Callbacks of the loop that ran long, most recent last, so a late timer can be blamed on
/// the one that was running when it fell due. `C` names a callback (the loop's own kind).
#[derive(Clone, Debug)]
pub struct BusyLog<C> {
    recent: heapless::Deque<(C, Instant, Instant), 8>,
}

/// A callback shorter than this cannot make a timer notably late and is not remembered.
pub const BUSY_MIN: Duration = Duration::from_micros(500);

impl<C: Copy> Default for BusyLog<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Copy> BusyLog<C> {
    pub const fn new() -> Self {
        BusyLog {
            recent: heapless::Deque::new(),
        }
    }

    /// A callback ran from `start` to `end`.
    pub fn record(&mut self, what: C, start: Instant, end: Instant) {
        if end.saturating_duration_since(start) < BUSY_MIN {
            return;
        }
        if self.recent.is_full() {
            self.recent.pop_front();
        }
        let _ = self.recent.push_back((what, start, end));
    }

    /// The callback that kept the loop busiest between a timer's `deadline` and when it
    /// `fired`, with how long it ran in all; None when none overlaps (the daemon was idle or
    /// waiting for a CPU: the time went to other work).
    pub fn blame(&self, deadline: Instant, fired: Instant) -> Option<(C, Duration)> {
        self.recent
            .iter()
            .filter_map(|&(c, s, e)| {
                let from = if s > deadline { s } else { deadline };
                let to = if e < fired { e } else { fired };
                (to > from).then(|| (to.saturating_duration_since(from), c, e - s))
            })
            .max_by_key(|&(overlap, _, _)| overlap)
            .map(|(_, c, took)| (c, took))
    }
}

/// One warning per `interval` about late timers, whatever the instance: when the CPU is
/// starved every instance is late at once, and one line says it. A timer more than twice as
/// late as the worst warned about in the interval is warned about too (at most a few lines
/// more: each doubles the lateness), so the line that explains the worst delay, the one
/// that may cost a false takeover, is never held back behind a smaller one.
#[derive(Clone, Copy, Debug)]
pub struct LateWarn {
    interval: Duration,
    last: Option<Instant>,
    /// The worst lateness warned about since `last`.
    worst: Duration,
    suppressed: u32,
}

impl LateWarn {
    pub const fn new(interval: Duration) -> Self {
        LateWarn {
            interval,
            last: None,
            worst: Duration::ZERO,
            suppressed: 0,
        }
    }

    /// A timer was `late` against `threshold` at `now`: `Some(n)` to warn now (`n` warnings
    /// held back since the last), `None` to stay quiet.
    pub fn judge(&mut self, late: Duration, threshold: Duration, now: Instant) -> Option<u32> {
        if late <= threshold {
            return None;
        }
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.interval => {
                if late > self.worst * 2 {
                    self.worst = late;
                    return Some(core::mem::take(&mut self.suppressed));
                }
                self.suppressed = self.suppressed.saturating_add(1);
                None
            }
            _ => {
                self.last = Some(now);
                self.worst = late;
                Some(core::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    #[test]
    fn histogram_buckets_by_upper_bound_and_keeps_the_worst() {
        let mut h = Histogram::default();
        for us in [0, 100, 101, 999, 1_000, 7_000, 2_000_000] {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.counts, [2, 3, 0, 1, 0, 0, 0, 0, 1]);
        assert_eq!(h.total(), 7);
        assert_eq!(h.worst, Duration::from_secs(2));
        assert_eq!(h.sum_us, 2_009_200);
        let c: Vec<_> = h.cumulative().collect();
        assert_eq!(c[0], (Some(100), 2));
        assert_eq!(c[1], (Some(1_000), 5));
        assert_eq!(c[8], (None, 7));
    }

    #[test]
    fn threshold_is_a_tenth_of_skew_time_but_at_least_a_millisecond() {
        // Priority 100 at 1 s (v3): Skew_Time = 156/256 s = 609.375 ms.
        assert_eq!(
            threshold(Duration::from_micros(609_375)),
            Duration::from_nanos(60_937_500)
        );
        // Priority 255 at 10 ms: 39 µs.
        assert_eq!(
            threshold(Duration::from_micros(39)),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn blame_names_the_callback_running_when_the_timer_fell_due() {
        let mut b = BusyLog::new();
        b.record("short", at(0), Instant::from_micros(100)); // under BUSY_MIN: forgotten
        b.record("check", at(10), at(40));
        b.record("control", at(41), at(43));
        // Due at 20, fired at 45: the check ran over it for 20 ms, the control socket 2 ms.
        assert_eq!(
            b.blame(at(20), at(45)),
            Some(("check", Duration::from_millis(30)))
        );
        // Due at 42, fired at 44: only the control socket overlaps.
        assert_eq!(
            b.blame(at(42), at(44)),
            Some(("control", Duration::from_millis(2)))
        );
        // Nothing ran between 50 and 60: the CPU went elsewhere.
        assert_eq!(b.blame(at(50), at(60)), None);
        assert_eq!(b.blame(at(0), Instant::from_micros(50)), None);
    }

    #[test]
    fn busy_log_keeps_the_most_recent_eight() {
        let mut b = BusyLog::new();
        for i in 0..20u64 {
            b.record(i, at(i * 10), at(i * 10 + 5));
        }
        assert_eq!(b.blame(at(0), at(100)), None);
        assert_eq!(
            b.blame(at(190), at(200)),
            Some((19, Duration::from_millis(5)))
        );
    }

    #[test]
    fn one_warning_per_interval_counting_the_ones_held_back() {
        let mut w = LateWarn::new(Duration::from_secs(30));
        let th = Duration::from_millis(5);
        assert_eq!(
            w.judge(Duration::from_millis(5), th, at(0)),
            None,
            "not over"
        );
        assert_eq!(w.judge(Duration::from_millis(6), th, at(0)), Some(0));
        assert_eq!(w.judge(Duration::from_millis(9), th, at(1_000)), None);
        assert_eq!(w.judge(Duration::from_millis(9), th, at(29_999)), None);
        assert_eq!(w.judge(Duration::from_millis(9), th, at(30_000)), Some(2));
        assert_eq!(w.judge(Duration::from_millis(9), th, at(30_001)), None);
    }

    #[test]
    fn a_timer_twice_as_late_as_the_worst_warned_is_not_held_back() {
        let mut w = LateWarn::new(Duration::from_secs(30));
        let th = Duration::from_millis(1);
        assert_eq!(w.judge(Duration::from_millis(2), th, at(0)), Some(0));
        assert_eq!(w.judge(Duration::from_millis(4), th, at(100)), None);
        // 30 ms late, within the interval: warned, with the one held back before it.
        assert_eq!(w.judge(Duration::from_millis(30), th, at(200)), Some(1));
        assert_eq!(w.judge(Duration::from_millis(59), th, at(300)), None);
        assert_eq!(w.judge(Duration::from_millis(61), th, at(400)), Some(1));
        // A new interval starts from its first warning.
        assert_eq!(w.judge(Duration::from_millis(2), th, at(30_400)), Some(0));
        assert_eq!(w.judge(Duration::from_millis(5), th, at(30_500)), Some(0));
    }
}
