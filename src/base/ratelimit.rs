//! Rate limiter for repeated identical warnings ("bad checksum from 10.0.0.2" 100 times a
//! second must not flood a 115200-baud console or the log ring).
//!
//! Pure: the caller passes `now` and a key; the limiter says whether to log, and when it allows
//! a message again, how many were suppressed since the last one, so the log line can say so.
//! Fixed capacity (no allocation): when full, the entry allowed longest ago is reused.

use super::time::{Duration, Instant};

/// What to do with one occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; `suppressed` identical occurrences were dropped since the last logged one.
    Allow { suppressed: u32 },
    /// Drop it (counted).
    Suppress,
}

#[derive(Clone, Copy, Debug)]
struct Entry<K> {
    key: K,
    last_allowed: Instant,
    suppressed: u32,
}

/// Allows each key at most once per `interval`; up to `N` keys are tracked at once.
#[derive(Debug)]
pub struct RateLimiter<K, const N: usize> {
    interval: Duration,
    entries: heapless::Vec<Entry<K>, N>,
}

impl<K: Copy + Eq, const N: usize> RateLimiter<K, N> {
    /// `interval` zero disables limiting (every occurrence is allowed).
    pub const fn new(interval: Duration) -> Self {
        RateLimiter {
            interval,
            entries: heapless::Vec::new(),
        }
    }

    pub fn set_interval(&mut self, interval: Duration) {
        self.interval = interval;
    }

    pub fn check(&mut self, key: K, now: Instant) -> Verdict {
        if self.interval.is_zero() {
            return Verdict::Allow { suppressed: 0 };
        }
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key) {
            if now.saturating_duration_since(e.last_allowed) >= self.interval {
                let suppressed = e.suppressed;
                e.last_allowed = now;
                e.suppressed = 0;
                return Verdict::Allow { suppressed };
            }
            e.suppressed = e.suppressed.saturating_add(1);
            return Verdict::Suppress;
        }
        let fresh = Entry {
            key,
            last_allowed: now,
            suppressed: 0,
        };
        if let Err(fresh) = self.entries.push(fresh) {
            // Full: forget the key allowed longest ago. Its pending count is lost, which only
            // costs a "(N suppressed)" note, never a message that should have been logged.
            if let Some(oldest) = self.entries.iter_mut().min_by_key(|e| e.last_allowed) {
                *oldest = fresh;
            }
        }
        Verdict::Allow { suppressed: 0 }
    }

    /// Total occurrences being held back right now (for status output).
    pub fn pending(&self) -> u32 {
        self.entries
            .iter()
            .fold(0u32, |acc, e| acc.saturating_add(e.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn first_occurrence_is_allowed_repeats_within_interval_are_suppressed() {
        let mut rl: RateLimiter<u32, 4> = RateLimiter::new(Duration::from_secs(10));
        let t0 = Instant::from_secs(100);
        assert_eq!(rl.check(1, t0), Verdict::Allow { suppressed: 0 });
        assert_eq!(rl.check(1, t0 + SEC), Verdict::Suppress);
        assert_eq!(rl.check(1, t0 + 9 * SEC), Verdict::Suppress);
        assert_eq!(rl.pending(), 2);
        assert_eq!(rl.check(1, t0 + 10 * SEC), Verdict::Allow { suppressed: 2 });
        assert_eq!(rl.pending(), 0);
    }

    #[test]
    fn keys_are_limited_independently() {
        let mut rl: RateLimiter<&'static str, 4> = RateLimiter::new(Duration::from_secs(10));
        let t0 = Instant::from_secs(1);
        assert_eq!(rl.check("a", t0), Verdict::Allow { suppressed: 0 });
        assert_eq!(rl.check("b", t0), Verdict::Allow { suppressed: 0 });
        assert_eq!(rl.check("a", t0), Verdict::Suppress);
    }

    #[test]
    fn zero_interval_allows_everything() {
        let mut rl: RateLimiter<u8, 2> = RateLimiter::new(Duration::ZERO);
        for _ in 0..5 {
            assert_eq!(rl.check(7, Instant::ZERO), Verdict::Allow { suppressed: 0 });
        }
    }

    #[test]
    fn when_full_the_longest_allowed_key_is_evicted() {
        let mut rl: RateLimiter<u8, 2> = RateLimiter::new(Duration::from_secs(10));
        let t = Instant::from_secs(50);
        rl.check(1, t);
        rl.check(2, t + SEC);
        // 3 evicts 1 (allowed earliest); 2 is still limited, 1 is new again.
        assert_eq!(rl.check(3, t + 2 * SEC), Verdict::Allow { suppressed: 0 });
        assert_eq!(rl.check(2, t + 2 * SEC), Verdict::Suppress);
        assert_eq!(rl.check(1, t + 3 * SEC), Verdict::Allow { suppressed: 0 });
    }

    #[test]
    fn clock_going_backwards_does_not_panic_and_suppresses() {
        let mut rl: RateLimiter<u8, 2> = RateLimiter::new(Duration::from_secs(10));
        rl.check(1, Instant::from_secs(100));
        assert_eq!(rl.check(1, Instant::from_secs(5)), Verdict::Suppress);
    }
}
