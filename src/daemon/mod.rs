//! The daemon layer: the single-threaded poll loop and the parts it drives.
//!
//! One thread, one `poll(2)`. Everything the daemon reacts to is one of four things:
//! an fd became ready (the handler reads it and may turn what it read into an input event),
//! a timer is due, a signal arrived (through a signalfd), or a queued input event is
//! processed. The loop's own storage (event queue, timer queue, fd table, poll set) is
//! fixed-capacity, sized by the constants in `capacity.rs`; the runtime calls [`check_capacity`] on
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

mod capacity;
pub mod checks;
pub mod control_server;
pub mod event_loop;
pub mod ids;
pub mod kernel;
pub mod link_sync;
pub mod lvs;
pub mod mail;
pub mod notify;
pub mod runtime;
pub mod scripts;
pub mod timers;
pub mod tracking;
pub mod vrrp;

pub use crate::sys::poll::{Interest, Ready};
pub use crate::sys::signal::Signal;
pub use capacity::{
    check_capacity, CapacityError, Required, EVENT_QUEUE_CAP, MAX_FDS, READ_BUDGET, TIMER_CAP,
};
pub use event_loop::{Busy, Ctx, Handler, Inbox, Loop, LoopStats, Read};
pub use ids::{TimerId, Token};
pub use timers::TimerQueue;

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
