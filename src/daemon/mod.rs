//! The daemon layer: the single-threaded poll loop and the parts it drives.
//!
//! One thread, one `poll(2)`. Everything the daemon reacts to is one of four things:
//! an fd became ready (the handler reads it and may turn what it read into an input event),
//! a timer is due, a signal arrived (through a signalfd), or a queued input event is
//! processed. The loop's own storage (event queue, timer queue, fd table, poll set) is
//! fixed-capacity, sized by the constants below; the runtime calls [`check_capacity`] on
//! every configuration it loads, so one that would not fit is refused at start or reload,
//! never at run time. The parts' tables (instances, probes) are sized once per load.
//!
//! # Wiring a part in
//! The daemon is one `Handler` (`runtime.rs`) owning the parts and the sys sockets:
//! - give every socket a [`Token`] from the part's range in `ids.rs`
//!   (`Part::X.token(index)`) and `ctx.register(token, &socket, Interest::READABLE)`;
//!   the part keeps owning the socket (it also sends on it) and deregisters it before
//!   dropping it (e.g. a packet socket of an interface that disappeared);
//! - in `on_readable`, read one frame/datagram, decode it and `inbox.push(input)`; return
//!   `Read::Drained` on EAGAIN or error. Reading never changes another part's state: what
//!   was read is handled after the due timers, as queued input. A full queue drops the
//!   event (counted per fd); a source whose dropped events would leave a wrong picture
//!   pushes through `link_sync::LinkSync`, which schedules a resync from a dump instead;
//! - in `on_input` / `on_timer`, feed the pure layer with `(now, input)` and carry out the
//!   actions it returns (send a frame, add a VIP, arm a timer); what other parts must learn
//!   (a health change, a transition) is left in the part's outbox for the runtime's one
//!   `settle` step, which runs after every callback;
//! - give each pure-layer timer a [`TimerId`] from the part's range (`Part::X.timer(index)`);
//!   arming an id again moves it, so "reset the master-down timer" is one `ctx.arm`;
//! - `on_signal`: `Terminate` -> give up mastership and `ctx.stop()`; `Reload` -> parse and
//!   validate the new config completely, swap only on success (a failing reload leaves the
//!   running state and timers untouched); `Dump` -> write state; `Child` -> `waitpid`
//!   with WNOHANG until none is left (signals coalesce: one SIGCHLD may mean many exits).

pub mod checks;
pub mod event_loop;
pub mod ids;
pub mod link_sync;
pub mod lvs;
pub mod mail;
pub mod notify;
pub mod runtime;
pub mod timers;
pub mod tracking;
pub mod vrrp;

use crate::config::limits;
pub use crate::sys::poll::{Interest, Ready};
pub use crate::sys::signal::Signal;
pub use event_loop::{Busy, Ctx, Handler, Inbox, Loop, LoopStats, Read};
pub use timers::TimerQueue;

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

/// Handle of a registered fd, chosen by the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u32);

/// Identity of a timer, chosen by the handler. One timer per id: arming an armed id moves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u32);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_check_names_the_exceeded_limit() {
        assert_eq!(
            check_capacity(Required {
                fds: MAX_FDS,
                timers: TIMER_CAP
            }),
            Ok(())
        );
        let e = check_capacity(Required {
            fds: MAX_FDS + 1,
            timers: 0,
        })
        .unwrap_err();
        assert_eq!(
            e,
            CapacityError::TooManyFds {
                needed: MAX_FDS + 1,
                max: MAX_FDS
            }
        );
        assert!(e.to_string().contains("MAX_FDS"));
        let e = check_capacity(Required {
            fds: 0,
            timers: TIMER_CAP + 1,
        })
        .unwrap_err();
        assert!(e.to_string().contains("TIMER_CAP"));
    }
}

#[cfg(test)]
mod footprint_tests {
    use super::*;

    /// The fd tables (`MAX_FDS` entries, about 240 KB) live on the heap, reserved once: kept
    /// inline they were copied whole with every move of the loop, which made them resident
    /// (600 kB more RSS for every router, whatever its configuration).
    #[test]
    fn the_loop_struct_stays_small_whatever_max_fds_is() {
        let size = core::mem::size_of::<Loop<()>>();
        assert!(size < 16 * 1024, "Loop is {size} bytes");
    }
}
