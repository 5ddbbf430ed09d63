//! The one place that reads the clock. `CLOCK_MONOTONIC` never jumps when the wall clock is
//! set (NTP on a router often steps the time at boot), so VRRP timers stay correct.

use crate::base::Instant;
use nix::time::{clock_gettime, ClockId};

/// Current monotonic time. `clock_gettime(CLOCK_MONOTONIC)` cannot fail on Linux for a valid
/// clock id; should it ever, we return `Instant::ZERO`-based time rather than panicking.
pub fn now() -> Instant {
    match clock_gettime(ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => {
            let secs = ts.tv_sec().max(0) as u64;
            let nanos = ts.tv_nsec().max(0) as u64;
            Instant::from_micros(secs.saturating_mul(1_000_000).saturating_add(nanos / 1000))
        }
        Err(_) => Instant::ZERO,
    }
}

/// The wall clock (`CLOCK_REALTIME`) in microseconds since the Unix epoch, read right
/// after [`now`]: the pair converts a kernel packet timestamp (which is on the wall clock)
/// to the monotonic clock. Zero if the clock cannot be read.
pub fn now_with_wall_micros() -> (Instant, u64) {
    let mono = now();
    let wall = match clock_gettime(ClockId::CLOCK_REALTIME) {
        Ok(ts) => (ts.tv_sec().max(0) as u64)
            .saturating_mul(1_000_000)
            .saturating_add(ts.tv_nsec().max(0) as u64 / 1000),
        Err(_) => 0,
    };
    (mono, wall)
}

/// The wall clock (`CLOCK_REALTIME`) since the Unix epoch, for the timestamps of
/// authenticated adverts (`vrrp::auth`), which peers compare with their own UTC clocks.
/// Zero if the clock cannot be read (every peer then sees a stale advert, never a panic).
pub fn wall() -> core::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Wall-clock seconds since the Unix epoch, for the `Date:` of e-mail alerts only (timers
/// never use it: the wall clock may be stepped).
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_never_goes_backwards() {
        let a = now();
        let b = now();
        assert!(b >= a);
        assert!(a > Instant::ZERO);
    }
}
