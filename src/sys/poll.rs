//! `poll(2)` over a fixed set of registrations, without allocating.

use crate::base::Duration;
use nix::errno::Errno;
use std::os::fd::RawFd;

/// Largest set of fds one `poll` call handles: the loop's `MAX_FDS` plus its signalfd and
/// timerfd (`daemon` asserts this at compile time).
pub const POLL_MAX: usize = 11617;

/// Sets up to this size are passed to the kernel from a stack array, larger ones (thousands
/// of health-check connections) from the heap. Not a `POLL_MAX` array on the stack: the
/// stack probes of a 43 KiB frame touch every page of it, which then stays resident for the
/// daemon's life whatever the set's size.
const STACK_FDS: usize = 32;

/// What to wait for on one fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Interest {
    pub readable: bool,
    pub writable: bool,
}

impl Interest {
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };
}

/// What `poll` reported for one fd. Errors and hang-ups count as readable so the owner reads
/// and sees the error (EOF, ECONNREFUSED via SO_ERROR...) instead of the loop spinning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
    pub error: bool,
    pub hangup: bool,
}

impl Ready {
    pub fn any(self) -> bool {
        self.readable || self.writable || self.error || self.hangup
    }
}

/// One entry of a poll set: fd, interest in, readiness out.
#[derive(Clone, Copy, Debug)]
pub struct PollEntry {
    pub fd: RawFd,
    pub interest: Interest,
    pub ready: Ready,
}

/// Wait until an entry is ready or `timeout` passes (`None` = forever). Timeouts are rounded
/// *up* to the next millisecond so a timer is never woken a little early and then spun on.
/// EINTR is reported as zero ready entries (the loop just iterates again).
pub fn poll(entries: &mut [PollEntry], timeout: Option<Duration>) -> Result<usize, Errno> {
    if entries.len() > POLL_MAX {
        return Err(Errno::EINVAL);
    }
    if entries.len() <= STACK_FDS {
        let mut fds: heapless::Vec<libc::pollfd, STACK_FDS> = heapless::Vec::new();
        for e in entries.iter() {
            // Capacity was checked above, so push cannot fail.
            let _ = fds.push(poll_fd(e)?);
        }
        poll_fds(entries, &mut fds, timeout)
    } else {
        LARGE.with(|large| {
            let mut fds = large.borrow_mut();
            fds.clear();
            for e in entries.iter() {
                fds.push(poll_fd(e)?);
            }
            poll_fds(entries, &mut fds, timeout)
        })
    }
}

thread_local! {
    /// The kernel's array for sets larger than [`STACK_FDS`]: grown to the largest set seen
    /// and kept, so the loop's steady state allocates nothing (one per thread: tests run
    /// loops side by side; the daemon has one thread).
    static LARGE: core::cell::RefCell<Vec<libc::pollfd>> =
        const { core::cell::RefCell::new(Vec::new()) };
}

/// The kernel's view of one entry.
fn poll_fd(e: &PollEntry) -> Result<libc::pollfd, Errno> {
    let mut events = 0;
    if e.interest.readable {
        events |= libc::POLLIN;
    }
    if e.interest.writable {
        events |= libc::POLLOUT;
    }
    if e.fd < 0 {
        return Err(Errno::EBADF);
    }
    // The fd is registered by its owner, who must deregister before closing it (documented
    // on `Loop::register`); the kernel only looks at it for the duration of the call.
    Ok(libc::pollfd {
        fd: e.fd,
        events,
        revents: 0,
    })
}

/// `poll` over `fds` (built from `entries`, in order); readiness back into `entries`.
fn poll_fds(
    entries: &mut [PollEntry],
    fds: &mut [libc::pollfd],
    timeout: Option<Duration>,
) -> Result<usize, Errno> {
    let timeout_ms: libc::c_int = match timeout {
        None => -1,
        Some(d) => {
            // Whole milliseconds, rounded up so a timer is never polled for too early. In
            // u64 (not as_micros' u128): 128-bit division costs 2 KB of code on 32-bit routers.
            let ms = d
                .as_secs()
                .saturating_mul(1000)
                .saturating_add(u64::from(d.subsec_micros().div_ceil(1000)));
            ms.min(i32::MAX as u64) as libc::c_int
        }
    };
    // SAFETY: fds is a valid array of fds.len() pollfd structs for the duration of the call.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    let n = if r < 0 {
        match Errno::last() {
            Errno::EINTR => 0,
            e => return Err(e),
        }
    } else {
        r as usize
    };
    for (e, p) in entries.iter_mut().zip(fds.iter()) {
        let r = p.revents;
        e.ready = Ready {
            readable: r & (libc::POLLIN | libc::POLLPRI) != 0,
            writable: r & libc::POLLOUT != 0,
            error: r & (libc::POLLERR | libc::POLLNVAL) != 0,
            hangup: r & libc::POLLHUP != 0,
        };
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// Readiness comes back to the entry it belongs to, for a set small enough for the stack
    /// array and for one that goes through the heap.
    #[test]
    fn readiness_lands_on_its_entry_for_small_and_large_sets() {
        for n in [3, STACK_FDS, STACK_FDS + 1, 200] {
            let pipes: Vec<_> = (0..n)
                .map(|_| crate::sys::fd::pipe().unwrap_or_else(|e| panic!("pipe: {e}")))
                .collect();
            let ready = n - 2;
            let w = &pipes[ready].1;
            assert_eq!(
                // SAFETY: writing one byte from a valid buffer to an open pipe.
                unsafe { libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1) },
                1
            );
            let mut entries: Vec<PollEntry> = pipes
                .iter()
                .map(|(r, _)| PollEntry {
                    fd: r.as_raw_fd(),
                    interest: Interest::READABLE,
                    ready: Ready::default(),
                })
                .collect();
            let got = poll(&mut entries, Some(Duration::ZERO)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got, 1, "{n} fds");
            for (i, e) in entries.iter().enumerate() {
                assert_eq!(e.ready.readable, i == ready, "{n} fds, entry {i}");
            }
        }
    }
}
