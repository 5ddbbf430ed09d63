//! The loop's compiled-in capacities and the check every configuration passes against them
//! at start and reload, so a configuration that would not fit is refused, never met at run time.

use super::ids::Token;
use crate::config::limits;

/// Input events (decoded packets, netlink events...) queued between reading and handling.
/// When full, further input is dropped and counted per source; timers and signals are kept
/// in separate structures and are never dropped.
pub const EVENT_QUEUE_CAP: usize = 64;
/// Armed timers at once: one per VRRP instance plus one per daemon part (the check engine
/// keeps its own per-check deadlines and arms a single loop timer for the earliest).
/// 24 bytes each.
pub const TIMER_CAP: usize = limits::MAX_INSTANCES + 32;
/// Registered fds (packet sockets, netlink, checks...), not counting the loop's signalfd.
/// Sized for the worst case of every script, tracked check and checked real server having
/// its socket or pipe open at once, plus a packet socket per interface, netlink and the
/// control socket. About 44 bytes each over the loop's three fd tables.
pub const MAX_FDS: usize = limits::MAX_SCRIPTS
    + limits::MAX_CHECKS
    + limits::MAX_REAL_SERVERS
    + limits::MAX_INSTANCES
    + 32;
// One poll call must take every registered fd plus the signalfd and the timerfd.
const _: () = assert!(MAX_FDS + 2 <= crate::sys::poll::POLL_MAX);
// ...and not far more, or its stack array is waste.
const _: () = assert!(MAX_FDS + 2 + 64 > crate::sys::poll::POLL_MAX);
/// At most this many reads per readable fd per loop iteration, so one flooded socket cannot
/// starve timers or other sockets: after K frames the loop goes on to due timers.
pub const READ_BUDGET: usize = 8;

/// What a configuration needs from the loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Required {
    pub fds: usize,
    pub timers: usize,
}

/// A required size exceeds a compiled-in capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityError {
    TooManyFds {
        needed: usize,
        max: usize,
    },
    TooManyTimers {
        needed: usize,
        max: usize,
    },
    /// A token registered twice.
    DuplicateToken(Token),
}

impl core::fmt::Display for CapacityError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CapacityError::TooManyFds { needed, max } => write!(
                f,
                "configuration needs {needed} sockets, this build supports at most {max} (MAX_FDS)"
            ),
            CapacityError::TooManyTimers { needed, max } => write!(
                f,
                "configuration needs {needed} timers, this build supports at most {max} (TIMER_CAP)"
            ),
            CapacityError::DuplicateToken(t) => write!(f, "token {} registered twice", t.0),
        }
    }
}

impl core::error::Error for CapacityError {}

/// Check a configuration's needs against the loop's capacities.
pub fn check_capacity(req: Required) -> Result<(), CapacityError> {
    if req.fds > MAX_FDS {
        return Err(CapacityError::TooManyFds {
            needed: req.fds,
            max: MAX_FDS,
        });
    }
    if req.timers > TIMER_CAP {
        return Err(CapacityError::TooManyTimers {
            needed: req.timers,
            max: TIMER_CAP,
        });
    }
    Ok(())
}
