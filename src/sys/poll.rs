//! `poll(2)` over a fixed set of registrations, without allocating.

use crate::base::Duration;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::os::fd::{BorrowedFd, RawFd};

/// Largest set of fds one `poll` call handles: the loop's `MAX_FDS` plus its signalfd and
/// timerfd (`daemon` asserts this at compile time). Reserves about 43 KiB of stack per call,
/// of which only the entries in use are touched.
pub const POLL_MAX: usize = 5473;

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
    let mut fds: heapless::Vec<PollFd<'_>, POLL_MAX> = heapless::Vec::new();
    for e in entries.iter() {
        let mut flags = PollFlags::empty();
        if e.interest.readable {
            flags |= PollFlags::POLLIN;
        }
        if e.interest.writable {
            flags |= PollFlags::POLLOUT;
        }
        if e.fd < 0 {
            return Err(Errno::EBADF);
        }
        // SAFETY: the fd is registered by its owner, who must deregister before closing it
        // (documented on `Loop::register`); it is only borrowed for the duration of this call.
        let bfd = unsafe { BorrowedFd::borrow_raw(e.fd) };
        // Capacity was checked above, so push cannot fail.
        let _ = fds.push(PollFd::new(bfd, flags));
    }
    let timeout = match timeout {
        None => PollTimeout::NONE,
        Some(d) => {
            // Whole milliseconds, rounded up so a timer is never polled for too early. In
            // u64 (not as_micros' u128): 128-bit division costs 2 KB of code on 32-bit routers.
            let ms = d
                .as_secs()
                .saturating_mul(1000)
                .saturating_add(u64::from(d.subsec_micros().div_ceil(1000)));
            PollTimeout::try_from(ms.min(i32::MAX as u64)).unwrap_or(PollTimeout::MAX)
        }
    };
    let n = match nix::poll::poll(&mut fds, timeout) {
        Ok(n) => n as usize,
        Err(Errno::EINTR) => 0,
        Err(e) => return Err(e),
    };
    for (e, p) in entries.iter_mut().zip(fds.iter()) {
        let r = p.revents().unwrap_or(PollFlags::empty());
        e.ready = Ready {
            readable: r.intersects(PollFlags::POLLIN | PollFlags::POLLPRI),
            writable: r.contains(PollFlags::POLLOUT),
            error: r.intersects(PollFlags::POLLERR | PollFlags::POLLNVAL),
            hangup: r.contains(PollFlags::POLLHUP),
        };
    }
    Ok(n)
}
