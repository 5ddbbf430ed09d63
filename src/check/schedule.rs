//! Scheduling shared by every check kind: interval, timeout, retry with
//! `delay_before_retry`, `fall`/`rise` hysteresis and a random warm-up delay.
//!
//! Semantics (keepalived's): one *round* is a first attempt plus up to `retry` retries spaced by
//! `delay_before_retry`; a round fails only when all of its attempts failed. Health moves to
//! Down after `fall` consecutive failed rounds and back to Up after `rise` consecutive good
//! rounds. From `Health::Unknown` the first finished round decides at once, so a daemon
//! start does not wait `rise` intervals before it knows anything.

use super::reason::Reason;
use crate::base::{Duration, Instant};

/// The check's health as the rest of the daemon sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

/// Timing and hysteresis of one check (the coordinator maps config options onto it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Time between the starts of two rounds.
    pub interval: Duration,
    /// Limit of one attempt (connect_timeout for TCP/HTTP, script timeout, echo wait).
    pub timeout: Duration,
    /// Consecutive failed rounds before Up -> Down (0 is treated as 1).
    pub fall: u8,
    /// Consecutive good rounds before Down -> Up (0 is treated as 1).
    pub rise: u8,
    /// Extra attempts after a failed one before the round counts as failed.
    pub retry: u8,
    /// Pause before each retry.
    pub delay_before_retry: Duration,
    /// Health before the first round (keepalived `init_fail` = `Down`, `alpha` = `Down`).
    pub initial: Health,
    /// The first round starts at a random point in `[0, warmup)` (keepalived `warmup`,
    /// default: the interval; zero starts at once).
    pub warmup: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            fall: 1,
            rise: 1,
            retry: 0,
            delay_before_retry: Duration::from_secs(1),
            initial: Health::Unknown,
            warmup: Duration::from_secs(1),
        }
    }
}

impl Schedule {
    /// keepalived's real-server checker defaults (keepalived.conf(5)): `delay_loop` 60 s,
    /// `connect_timeout` 5 s, `retry` 1, `delay_before_retry` 3 s for HTTP_GET and 1 s
    /// otherwise, `warmup` = `delay_loop`, servers start Up unless `alpha`.
    pub fn checker_default(http: bool, alpha: bool) -> Self {
        Schedule {
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            fall: 1,
            rise: 1,
            retry: 1,
            delay_before_retry: Duration::from_secs(if http { 3 } else { 1 }),
            initial: if alpha { Health::Down } else { Health::Up },
            warmup: Duration::from_secs(60),
        }
    }

    /// keepalived's `vrrp_script` defaults: interval 1 s, timeout = interval, no retry,
    /// fall/rise 1; `init_fail` starts Down, otherwise the first run decides.
    pub fn script_default(init_fail: bool) -> Self {
        Schedule {
            initial: if init_fail {
                Health::Down
            } else {
                Health::Unknown
            },
            ..Schedule::default()
        }
    }
}

/// A health change, with the check's weight so a tracker consumer needs no lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    pub health: Health,
    /// Why the last round ended the way it did (`Reason::Ok` for Up).
    pub reason: Reason,
    /// The check's configured weight (see `check::track` for what it does to a priority).
    pub weight: i32,
    pub at: Instant,
}

/// The outcome of the most recent attempt, for logs and latency figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub reason: Reason,
    pub started: Instant,
    pub elapsed: Duration,
}

impl Attempt {
    pub fn ok(&self) -> bool {
        self.reason == Reason::Ok
    }
}

/// Offset of the first round in `[0, interval)`, derived from `seed` with splitmix64 so
/// consecutive seeds (check indices mixed with daemon randomness) land far apart and a
/// thousand checks configured together do not all fire in the same millisecond.
pub fn warmup_offset(seed: u64, interval: Duration) -> Duration {
    let span = interval.as_micros() as u64;
    if span == 0 {
        return Duration::ZERO;
    }
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    Duration::from_micros(z % span)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Waiting { due: Instant },
    Running { started: Instant, deadline: Instant },
}

/// The scheduling core each check kind embeds.
#[derive(Clone, Debug)]
pub struct Runner {
    sched: Schedule,
    weight: i32,
    health: Health,
    /// Consecutive rounds disagreeing with `health`.
    streak: u8,
    /// Retries already used in the current round.
    retries: u8,
    round_start: Instant,
    phase: Phase,
    last: Option<Attempt>,
}

impl Runner {
    pub fn new(sched: Schedule, weight: i32, seed: u64, now: Instant) -> Self {
        Runner {
            sched,
            weight,
            health: sched.initial,
            streak: 0,
            retries: 0,
            round_start: now,
            phase: Phase::Waiting {
                due: now + warmup_offset(seed, sched.warmup),
            },
            last: None,
        }
    }

    pub fn schedule(&self) -> &Schedule {
        &self.sched
    }

    pub fn health(&self) -> Health {
        self.health
    }

    pub fn weight(&self) -> i32 {
        self.weight
    }

    pub fn last(&self) -> Option<Attempt> {
        self.last
    }

    /// When the runner next needs a `Tick`: the next attempt or the running attempt's deadline.
    pub fn poll_at(&self) -> Instant {
        match self.phase {
            Phase::Waiting { due } => due,
            Phase::Running { deadline, .. } => deadline,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Running { .. })
    }

    /// True when an attempt should start now.
    pub fn due(&self, now: Instant) -> bool {
        matches!(self.phase, Phase::Waiting { due } if now >= due)
    }

    /// True when the running attempt has passed its timeout.
    pub fn expired(&self, now: Instant) -> bool {
        matches!(self.phase, Phase::Running { deadline, .. } if now >= deadline)
    }

    /// Start an attempt (the caller emits the kind-specific action).
    pub fn begin(&mut self, now: Instant) {
        if self.retries == 0 {
            self.round_start = now;
        }
        self.phase = Phase::Running {
            started: now,
            deadline: now + self.sched.timeout,
        };
    }

    /// End the running attempt; returns a report when health changed.
    pub fn finish(&mut self, now: Instant, reason: Reason) -> Option<Report> {
        let started = match self.phase {
            Phase::Running { started, .. } => started,
            Phase::Waiting { .. } => return None,
        };
        self.last = Some(Attempt {
            reason,
            started,
            elapsed: now - started,
        });
        let ok = reason == Reason::Ok;
        if !ok && self.retries < self.sched.retry {
            // The round is not over: retry after the pause without touching fall/rise.
            self.retries += 1;
            self.phase = Phase::Waiting {
                due: now + self.sched.delay_before_retry,
            };
            return None;
        }
        self.retries = 0;
        // Keep a steady cadence from the round's start; never schedule in the past.
        let next = self.round_start + self.sched.interval;
        self.phase = Phase::Waiting {
            due: if next > now { next } else { now },
        };
        self.count_round(now, ok, reason)
    }

    fn count_round(&mut self, now: Instant, ok: bool, reason: Reason) -> Option<Report> {
        let target = if ok { Health::Up } else { Health::Down };
        if self.health == target {
            self.streak = 0;
            return None;
        }
        let needed = match (self.health, ok) {
            (Health::Unknown, _) => 1,
            (_, true) => self.sched.rise.max(1),
            (_, false) => self.sched.fall.max(1),
        };
        self.streak = self.streak.saturating_add(1);
        if self.streak < needed {
            return None;
        }
        self.streak = 0;
        self.health = target;
        Some(Report {
            health: target,
            reason,
            weight: self.weight,
            at: now,
        })
    }
}
