//! A timerfd armed at the loop's next deadline.
//!
//! Why not just `poll(timeout)`: the kernel lets a poll/epoll timeout expire late by 0.1 % of
//! its length (`select_estimate_accuracy`, up to 100 ms), so a 3.6 s Master_Down_Interval
//! could fire 3.6 ms late. A timerfd is an hrtimer with only the process's timer slack
//! (50 us by default), so failover starts when the RFC says, not some milliseconds later.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::base::Instant;

pub struct DeadlineTimer {
    fd: TimerFd,
    armed: Option<Instant>,
}

impl DeadlineTimer {
    /// A non-blocking CLOCK_MONOTONIC timerfd (the clock `sys::clock::now` reads).
    pub fn new() -> Result<DeadlineTimer, Errno> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(DeadlineTimer { fd, armed: None })
    }

    /// Become readable no later than `at` on the monotonic clock (`None`: no deadline).
    ///
    /// A deadline that only moved later keeps the earlier expiry armed, without a syscall:
    /// the early wake-up finds nothing due, is drained, and the next `set` arms the real
    /// deadline. A backup that receives an advert resets its Master_Down timer to later, so
    /// re-arming on every move cost one `timerfd_settime` per advert; this costs one wake-up
    /// per Master_Down_Interval instead. A deadline moved earlier always re-arms.
    pub fn set(&mut self, at: Option<Instant>) -> Result<(), Errno> {
        match (self.armed, at) {
            (Some(armed), Some(at)) if armed <= at => return Ok(()),
            (Some(_), None) | (None, None) => return Ok(()),
            _ => {}
        }
        self.arm(at)
    }

    /// The expiry the timerfd holds now (None: disarmed or already drained).
    pub fn armed(&self) -> Option<Instant> {
        self.armed
    }

    fn arm(&mut self, at: Option<Instant>) -> Result<(), Errno> {
        match at {
            None => self.fd.unset()?,
            Some(t) => {
                // An all-zero expiry disarms; a deadline at 0 would too, so use 1 ns for it.
                let us = t.total_micros();
                let ns = (us % 1_000_000) * 1000;
                let value = TimeSpec::new((us / 1_000_000) as _, if us == 0 { 1 } else { ns as _ });
                self.fd.set(
                    Expiration::OneShot(value),
                    TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                )?;
            }
        }
        self.armed = at;
        Ok(())
    }

    /// Consume an expiry so the fd stops being readable (EAGAIN when it has not expired).
    pub fn drain(&mut self) {
        if self.fd.wait().is_ok() {
            self.armed = None;
        }
    }
}

impl AsFd for DeadlineTimer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for DeadlineTimer {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::Duration;
    use crate::sys::poll::{poll, Interest, PollEntry, Ready};

    fn wait(t: &DeadlineTimer, max: Duration) -> bool {
        let mut set = [PollEntry {
            fd: t.as_raw_fd(),
            interest: Interest::READABLE,
            ready: Ready::default(),
        }];
        poll(&mut set, Some(max)).unwrap_or(0) == 1
    }

    #[test]
    fn fires_at_the_deadline_and_not_before() {
        let mut t = DeadlineTimer::new().unwrap();
        let start = crate::sys::clock::now();
        t.set(Some(start + Duration::from_millis(30))).unwrap();
        assert!(!wait(&t, Duration::from_millis(5)), "fired early");
        assert!(wait(&t, Duration::from_secs(2)), "never fired");
        assert!(crate::sys::clock::now() >= start + Duration::from_millis(30));
        t.drain();
        t.set(None).unwrap();
        assert!(!wait(&t, Duration::from_millis(20)), "disarmed timer fired");
    }

    #[test]
    fn a_deadline_moved_later_keeps_the_earlier_expiry_and_one_moved_earlier_rearms() {
        let mut t = DeadlineTimer::new().unwrap();
        let start = crate::sys::clock::now();
        let early = start + Duration::from_millis(30);
        t.set(Some(early)).unwrap();
        // Later deadlines (an advert resetting Master_Down) leave the armed expiry alone.
        t.set(Some(start + Duration::from_secs(5))).unwrap();
        t.set(None).unwrap();
        assert_eq!(t.armed(), Some(early));
        // The early expiry still wakes the loop (which then finds nothing due).
        assert!(
            wait(&t, Duration::from_secs(2)),
            "the kept expiry never fired"
        );
        t.drain();
        assert_eq!(t.armed(), None);
        // After the wake-up the real deadline is armed.
        let later = start + Duration::from_secs(5);
        t.set(Some(later)).unwrap();
        assert_eq!(t.armed(), Some(later));
        // An earlier deadline re-arms at once and fires on time.
        let sooner = crate::sys::clock::now() + Duration::from_millis(20);
        t.set(Some(sooner)).unwrap();
        assert_eq!(t.armed(), Some(sooner));
        assert!(
            wait(&t, Duration::from_secs(2)),
            "the earlier deadline never fired"
        );
        assert!(crate::sys::clock::now() >= sooner);
    }
}
