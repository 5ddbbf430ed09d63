//! Dead-man VIPs: while master, the virtual addresses are installed with a finite kernel
//! lifetime (`IFA_CACHEINFO` valid and preferred lifetime) and refreshed well before it runs
//! out. A master whose daemon dies (`kill -9`) or freezes with its link up stops refreshing,
//! and its kernel removes the VIPs by itself, so the dead router stops answering ARP/ND for
//! them beside the new master. Without a lifetime the addresses stay until someone restarts
//! the daemon (keepalived's behaviour).
//!
//! Pure: the daemon asks [`VipLease::next_refresh`] when to refresh and sends one
//! `RTM_NEWADDR` (create + replace) per VIP when it is due. A replace of a present address
//! only resets its lifetimes; a refresh that comes after the address expired adds it back,
//! so a late refresh never leaves a gap longer than its own lateness.

use crate::base::{Duration, Instant};
use crate::vrrp::wire::Version;

use super::instance::master_down_interval;

/// Shortest lifetime we install. The kernel counts address lifetimes in whole seconds and
/// checks them from a delayed work item (measured on Linux 6.1: an address with
/// `valid_lft 2` is gone 2.02..2.22 s after it was (re)set), so 1 s would leave almost no
/// room for a refresh.
pub const MIN_LIFETIME_S: u32 = 2;

/// Refreshes per lifetime: with three, two refreshes in a row can be missed (or the loop can
/// stall for two thirds of the lifetime) before the address lapses.
pub const REFRESHES_PER_LIFETIME: u32 = 3;

/// The lifetime for an instance advertising every `advert_int`.
///
/// `max(2 s, ⌈1.5 × MDI_max⌉)` where `MDI_max` is the longest Master_Down_Interval any backup
/// can use against our adverts (RFC 5798 6.1: 3 × Master_Adver_Interval + Skew_Time, with the
/// skew of the lowest priority, 1; RFC 3768's skew is at most 1 s).
///
/// Why 1.5 × MDI_max: refreshing every lifetime / 3 means the address lapses only when the
/// loop has not run for two thirds of the lifetime, which is at least MDI_max. A master
/// silent that long has stopped advertising for longer than any backup waits, so a backup has
/// already taken over: the VIP never lapses on a master that is still winning the election,
/// and after a crash it is gone within lifetime + 1 s (the kernel's rounding), i.e. about
/// half a Master_Down_Interval + 1 s after the backup took over. Shorter would risk flapping a
/// merely slow master; longer only prolongs the two-owner window after a crash.
///
/// 1 s adverts give 6 s (v3; v2's skew is a flat second, the same here), 0.1 s adverts 2 s.
pub fn lifetime_for(version: Version, advert_int: Duration) -> u32 {
    let mdi_max = master_down_interval(version, 1, advert_int);
    // ⌈1.5 × mdi⌉ in whole seconds, computed in milliseconds to stay exact.
    // u64, not as_millis' u128: 128-bit division costs 2 KB of code on 32-bit routers.
    let ms = u64::try_from(mdi_max.as_millis())
        .unwrap_or(u64::MAX)
        .saturating_mul(3)
        / 2;
    let secs = ms.div_ceil(1000);
    u32::try_from(secs).unwrap_or(u32::MAX).max(MIN_LIFETIME_S)
}

/// The lease of one instance's VIPs: `None` lifetime means permanent addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipLease {
    pub lifetime_s: u32,
}

impl VipLease {
    /// `lifetime_s == 0` is the operator's "permanent addresses" (no lease).
    pub fn new(lifetime_s: u32) -> Option<VipLease> {
        (lifetime_s > 0).then_some(VipLease { lifetime_s })
    }

    pub fn lifetime(self) -> Duration {
        Duration::from_secs(u64::from(self.lifetime_s))
    }

    /// Time between refreshes: a third of the lifetime.
    pub fn refresh_every(self) -> Duration {
        self.lifetime() / REFRESHES_PER_LIFETIME
    }

    /// When the addresses refreshed at `last` should be refreshed again.
    pub fn next_refresh(self, last: Instant) -> Instant {
        last + self.refresh_every()
    }

    /// Whether the addresses refreshed at `last` are renewed in a refresh round at `now`:
    /// when their refresh is due within half a refresh period. A round then takes along
    /// every master whose lease is at least half-way to its next refresh, so masters that
    /// came up at different moments fall into the same round after their first refresh
    /// (one wake-up and one netlink batch for all of them) instead of each waking the
    /// daemon on its own. Renewing early only shortens a period (to between half and one
    /// [`Self::refresh_every`]), so the dead-man bound and the no-lapse margin hold as before.
    pub fn due(self, last: Instant, now: Instant) -> bool {
        now + self.refresh_every() / 2 >= self.next_refresh(last)
    }

    /// When the kernel may remove the addresses refreshed at `last` at the earliest.
    pub fn expires(self, last: Instant) -> Instant {
        last + self.lifetime()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn lifetime_is_one_and_a_half_worst_master_down_interval_in_whole_seconds() {
        // v3 1 s: MDI_max = 3 + 255/256 = 3.996 s -> 5.994 -> 6 s.
        assert_eq!(lifetime_for(Version::V3, ms(1000)), 6);
        // v2 1 s: MDI_max = 3 + 255/256 s as well.
        assert_eq!(lifetime_for(Version::V2, ms(1000)), 6);
        // v3 0.1 s: MDI_max = 0.3996 s -> 0.6 s -> the 2 s floor.
        assert_eq!(lifetime_for(Version::V3, ms(100)), MIN_LIFETIME_S);
        // v3 0.5 s: MDI_max = 1.998 s -> 2.997 -> 3 s.
        assert_eq!(lifetime_for(Version::V3, ms(500)), 3);
        // v2 10 s: MDI_max = 30 + 0.996 s -> 46.49 -> 47 s.
        assert_eq!(lifetime_for(Version::V2, ms(10_000)), 47);
        // v2 255 s does not overflow.
        assert_eq!(lifetime_for(Version::V2, ms(255_000)), 1149);
    }

    #[test]
    fn a_refresh_round_takes_along_leases_past_half_way_and_keeps_them_in_step() {
        // 2 s lifetime: a refresh every 666.666 ms, so a round at t takes along every lease
        // due before t + 333.333 ms.
        let lease = VipLease::new(2).unwrap();
        let t0 = Instant::from_millis(10_000);
        let every = lease.refresh_every();
        // Three masters that came up 0, 200 and 500 ms apart.
        let mut last = [t0, t0 + ms(200), t0 + ms(500)];
        let mut rounds = Vec::new();
        let mut now = t0;
        for _ in 0..8 {
            // The refresh timer fires at the earliest refresh due.
            now = last.iter().map(|&l| lease.next_refresh(l)).min().unwrap();
            let mut taken = 0;
            for l in last.iter_mut() {
                if lease.due(*l, now) {
                    // Never later than a whole period, never earlier than half of one.
                    assert!(now - *l <= every && now - *l >= every / 2, "{:?}", now - *l);
                    *l = now;
                    taken += 1;
                }
            }
            rounds.push(taken);
        }
        // First round: the first two (the third is not half-way yet); the third's round
        // takes the other two along, and from then on all three go in one round.
        assert_eq!(rounds, [2, 3, 3, 3, 3, 3, 3, 3]);
        assert!(last.iter().all(|&l| l == now));
        // A lease just renewed is not due; one at its refresh time is.
        assert!(!lease.due(now, now));
        assert!(lease.due(now, lease.next_refresh(now)));
    }

    #[test]
    fn a_stall_that_lapses_the_vips_is_longer_than_any_master_down_interval() {
        for (v, a) in [
            (Version::V3, 10),
            (Version::V3, 100),
            (Version::V3, 330),
            (Version::V3, 1000),
            (Version::V3, 40_950),
            (Version::V2, 1000),
            (Version::V2, 7000),
        ] {
            let lease = VipLease::new(lifetime_for(v, ms(a))).unwrap();
            // Worst case: the loop stalls just before a refresh is due.
            let tolerated = lease.lifetime() - lease.refresh_every();
            for prio in [1u8, 100, 254] {
                let mdi = master_down_interval(v, prio, ms(a));
                assert!(
                    tolerated >= mdi,
                    "{v:?} {a} ms prio {prio}: {tolerated:?} < {mdi:?}"
                );
            }
        }
    }

    #[test]
    fn refresh_comes_three_times_per_lifetime_and_stays_ahead_of_expiry() {
        let lease = VipLease::new(6).unwrap();
        assert_eq!(lease.refresh_every(), Duration::from_secs(2));
        let mut last = Instant::from_millis(1000);
        for _ in 0..1000 {
            let next = lease.next_refresh(last);
            assert!(next < lease.expires(last));
            assert_eq!(lease.expires(last) - next, Duration::from_secs(4));
            last = next;
        }
        // A refresh run late (the loop stalled) is scheduled from when it ran, not from when
        // it was due, so a stall never makes the following refreshes bunch up.
        let late = lease.next_refresh(last) + Duration::from_millis(1500);
        assert_eq!(lease.next_refresh(late), late + Duration::from_secs(2));
        // 2 s lifetime: refresh every 666 ms.
        assert_eq!(
            VipLease::new(2).unwrap().refresh_every(),
            ms(666) + Duration::from_micros(666) + Duration::from_nanos(666)
        );
    }

    #[test]
    fn zero_means_permanent_addresses() {
        assert_eq!(VipLease::new(0), None);
        assert_eq!(VipLease::new(2), Some(VipLease { lifetime_s: 2 }));
    }
}
