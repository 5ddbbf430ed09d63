//! Receive: one frame from an interface's listener to an input event for its instance. The
//! link facts and the stateless RFC 5798 7.1 / RFC 3768 7.1 checks come first
//! (`rx_policy::check_link`, `parse_frame`) and their drops are counted for the interface;
//! then the instance, found by interface / VRID / family, applies its receive policy
//! (`rx_policy::check`: sender, transport, TTL, `validate_for` against the advert it sends,
//! address list), counted for the instance. The same rules run first in the kernel, as the
//! listener's BPF filter (`sys::bpf`), built here from the instances on the interface.

use core::net::IpAddr;

use log::{debug, error, warn};

use super::{DropOwner, InstanceKey, Vrrp, VrrpEvent, SKEW_LOG};
use crate::base::ratelimit::Verdict;
use crate::base::{Duration, Family, Instant};
use crate::daemon::event_loop::Read;
use crate::daemon::kernel::Southbound;
use crate::sys::bpf;
use crate::sys::packet::{PktType, RecvFrame};
use crate::vrrp::auth::{self, AuthVerdict, Binding};
use crate::vrrp::frame::{parse_frame, RxAdvert, RxContext};
use crate::vrrp::instance::skew_time;
use crate::vrrp::rx_policy::{self, Delivery, FrameMeta, Policy};
use crate::vrrp::wire::DropReason;

/// Receive buffer per instance on a packet socket: a burst of 32 adverts at the ~2.3 KB
/// the kernel charges per small frame. Only frames the BPF filter admits are queued.
const RCVBUF_PER_INSTANCE: usize = 32 * 2304;
/// Floor of a packet socket's receive buffer.
const RCVBUF_MIN: usize = 64 * 1024;
/// Test hook: `MINIVRRP_RX_FILTER=protocol-only` attaches the protocol-only BPF program, so
/// a lab test can show that the user-space receive policy (the second line) drops what the
/// per-interface kernel filter would have dropped first.
const RX_FILTER_ENV: &str = "MINIVRRP_RX_FILTER";
/// Longest time the kernel may hold received frames back to hand several over in one
/// wake-up (`sys::packet::ring`): what a master that must yield to a better advert (RFC 5798
/// 6.4.3) may be late by.
const RX_DELAY_MAX: Duration = Duration::from_millis(20);
/// The hold is at most this share of the shortest advert interval on the interface. The
/// kernel's block timer runs every hold, adverts or not (250 times a second per interface at
/// 4 ms), so the hold is as long as the protocol allows: 50 instances at 0.1 s (500 adverts
/// a second) held up to 4 ms wake a backup about once per master's sending burst instead of
/// once or twice per frame; at 1 s the timer runs 50 times a second, not 250.
const RX_DELAY_INTERVAL_SHARE: u32 = 25;
/// The hold must stay well below the Skew_Time of every backup on the interface: a backup
/// that gets a priority-0 advert takes over Skew_Time after its arrival (RFC 5798 6.4.2),
/// and the advert must be read before then. The hold is at most this share of the smallest.
const RX_DELAY_SKEW_SHARE: u32 = 8;
/// Frames read per call at most (each one a copy out of the ring, or a `recvmsg`): with the
/// loop's read budget, this bounds the reading done before due timers fire.
const RX_BATCH: usize = 16;
/// Test and bench hook: `MINIVRRP_RX_DELAY_MS=0` reads frames one by one as they arrive
/// (no ring); another value holds them up to that many milliseconds whatever the Skew_Time.
const RX_DELAY_ENV: &str = "MINIVRRP_RX_DELAY_MS";

impl<S: Southbound> Vrrp<S> {
    /// Read up to [`RX_BATCH`] frames from interface `idx`'s listener (all the ring handed
    /// over in one wake-up, typically). `queue` takes each decoded advert (handled after
    /// the due timers, as input) and says whether it has room for another; reading stops
    /// when it has not, and the frames left wait in the kernel for the next turn.
    pub fn on_readable(&mut self, idx: usize, mut queue: impl FnMut(VrrpEvent) -> bool) -> Read {
        for _ in 0..RX_BATCH {
            match self.read_frame(idx) {
                None => return Read::Drained,
                Some(Some(ev)) => {
                    if !queue(ev) {
                        return Read::Again;
                    }
                }
                Some(None) => {}
            }
        }
        Read::Again
    }

    /// One frame from interface `idx`'s listener: `None` when nothing is pending, else the
    /// advert it carries (`None` inside when it was dropped, and counted).
    fn read_frame(&mut self, idx: usize) -> Option<Option<VrrpEvent>> {
        let ifc = self.ifaces.get_mut(idx)?;
        let listener = ifc.listener.as_mut()?;
        let frame = match self.south.recv(listener, &mut self.rx[..]) {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(e) => {
                debug!("{}: recv: {e}", ifc.name);
                return None;
            }
        };
        let meta = frame_meta(&frame);
        // The filter admits Router Solicitations where an instance sends RAs: counted on the
        // interface, one event for however many arrive before it is handled.
        if !frame.truncated && crate::vrrp::ra::is_router_solicitation(&self.rx[..frame.len]) {
            let ifc = &mut self.ifaces[idx];
            ifc.rs_waiting = ifc.rs_waiting.saturating_add(1);
            return Some(
                (ifc.rs_waiting == 1).then_some(VrrpEvent::RouterSolicit { iface: idx as u16 }),
            );
        }
        let parsed = if frame.truncated {
            Err(DropReason::FrameTruncated)
        } else {
            rx_policy::check_link(&meta)
                .and_then(|()| parse_frame(&self.rx[..frame.len], RxContext::TTL_BY_POLICY))
        };
        let adv = match parsed {
            Ok(a) => a,
            Err(reason) => {
                self.count_drop(DropOwner::Iface(idx as u16), reason, None);
                return Some(None);
            }
        };
        let key = InstanceKey {
            iface: idx as u16,
            vrid: adv.vrrp.vrid,
            family: Family::of(&adv.ip.src),
        };
        let Some(i) = self.instance_for(key) else {
            self.count_drop(
                DropOwner::Iface(idx as u16),
                DropReason::VridMismatch,
                Some(adv.ip.src),
            );
            return Some(None);
        };
        if let Err(reason) = rx_policy::check(&self.rx_rules(i), &meta, &adv) {
            self.count_drop(DropOwner::Inst(i as u16), reason, Some(adv.ip.src));
            return Some(None);
        }
        // Authenticated adverts: verified before the advert can reach the state machine.
        if let Err(reason) = self.authenticate(i, &adv, frame.len) {
            match reason {
                Some(reason) => {
                    self.count_drop(DropOwner::Inst(i as u16), reason, Some(adv.ip.src))
                }
                None => self.insts[i].drops.record(DropReason::AuthRejected),
            }
            return Some(None);
        }
        Some(Some(VrrpEvent::Advert {
            key,
            advert: adv.advert(),
            at: frame.at,
        }))
    }

    /// Instance `i`'s `auth_hmac` verdict on `adv`, parsed from `self.rx[..len]`: counted in
    /// its outcome counters, each refusal and the clock-skew warning logged at most once per
    /// `log_suppress` per outcome. `Err(None)`: refused by `auth_hmac` (logged here, to be
    /// counted as `AuthRejected`). Without `auth_hmac`, an advert with a trailer is as long
    /// as keepalived without it finds it: too long (`Err(Some(LengthMismatch))`).
    fn authenticate(
        &mut self,
        i: usize,
        adv: &RxAdvert,
        len: usize,
    ) -> Result<(), Option<DropReason>> {
        let inst = &mut self.insts[i];
        let (Some(cfg), Some(state)) = (inst.cfg.auth_hmac.as_ref(), inst.auth.as_mut()) else {
            return match adv.trailer {
                Some(_) => Err(Some(DropReason::LengthMismatch)),
                None => Ok(()),
            };
        };
        let binding = Binding {
            version: adv.vrrp.version,
            vrid: adv.vrrp.vrid,
            src: adv.ip.src,
        };
        let frame = &self.rx[..len];
        let verdict = auth::verify(
            cfg,
            &mut state.replay,
            crate::sys::clock::wall(),
            &binding,
            adv.trailer.as_ref().map_or(&[][..], |t| t.msg(frame)),
            adv.trailer.as_ref().map(|t| &t.bytes[..]),
        );
        state.counts.record(&verdict, cfg.time_window);
        match verdict {
            AuthVerdict::Accepted { skew: Some(skew) }
                if auth::skew_warns(skew, cfg.time_window) =>
            {
                let window = cfg.time_window;
                if let Verdict::Allow { suppressed } =
                    self.auth_log.check((i as u16, SKEW_LOG), clock_hint())
                {
                    warn!(target: &self.insts[i].cfg.name,
                        "auth_hmac: clock of {} is {skew} s from ours, past half the {window} s window: check NTP ({suppressed} more suppressed)",
                        adv.ip.src);
                }
                Ok(())
            }
            AuthVerdict::Accepted { .. } | AuthVerdict::Unsigned => Ok(()),
            AuthVerdict::Rejected(r) => {
                let key_id = adv.trailer.map_or(0, |t| t.bytes[1]);
                if let Verdict::Allow { suppressed } =
                    self.auth_log.check((i as u16, r as u8), clock_hint())
                {
                    warn!(target: &self.insts[i].cfg.name,
                        "advert from {} dropped: auth_hmac {} (key id {key_id}) ({suppressed} more suppressed)",
                        adv.ip.src, r.as_str());
                }
                Err(None)
            }
        }
    }

    /// How long the kernel may hold interface `idx`'s frames back: [`RX_DELAY_MAX`], or
    /// less, to stay below 1/[`RX_DELAY_INTERVAL_SHARE`] of the advert interval and
    /// 1/[`RX_DELAY_SKEW_SHARE`] of the Skew_Time (configured priority and interval) of each
    /// instance there that can be a backup; `None` (frames one by one) when that is under
    /// a millisecond, the kernel's unit.
    pub(super) fn rx_delay_for(&self, idx: usize) -> Option<Duration> {
        if let Ok(v) = std::env::var(RX_DELAY_ENV) {
            if let Ok(ms) = v.trim().parse::<u64>() {
                return (ms > 0).then(|| Duration::from_millis(ms));
            }
        }
        let mut delay = RX_DELAY_MAX;
        for inst in self.insts.iter().filter(|s| s.iface == idx) {
            // The address owner (255) is never a backup (RFC 5798 6.4.1).
            if inst.cfg.priority == 255 {
                continue;
            }
            let skew = skew_time(inst.cfg.version, inst.cfg.priority, inst.cfg.advert_int);
            delay = delay
                .min(skew / RX_DELAY_SKEW_SHARE)
                .min(inst.cfg.advert_int / RX_DELAY_INTERVAL_SHARE);
        }
        let ms = delay.as_millis() as u64;
        (ms >= 1).then(|| Duration::from_millis(ms))
    }

    /// Instance `i`'s receive policy: the advert it sends (its wire identity), our own source
    /// address, its unicast peers (the source must be one of them: keepalived's
    /// `check_unicast_src`).
    fn rx_rules(&self, i: usize) -> Policy<'_> {
        let inst = &self.insts[i];
        Policy {
            wire: &inst.own,
            own: core::slice::from_ref(&inst.fsm.params().primary),
            unicast_peers: &inst.cfg.unicast_peers,
            check_unicast_src: true,
        }
    }

    /// Count a dropped frame for its owner and warn about it, at most once per interval per
    /// (owner, reason).
    pub(super) fn count_drop(&mut self, owner: DropOwner, reason: DropReason, src: Option<IpAddr>) {
        let name = match owner {
            DropOwner::Inst(i) => {
                let inst = &mut self.insts[i as usize];
                inst.drops.record(reason);
                inst.cfg.name.as_str()
            }
            DropOwner::Iface(f) => {
                let ifc = &mut self.ifaces[f as usize];
                ifc.drops.record(reason);
                ifc.name.as_str()
            }
        };
        if let Verdict::Allow { suppressed } = self.drop_log.check((owner, reason), clock_hint()) {
            warn_drop(name, reason, src, suppressed);
        }
    }

    /// The kernel-side filter for interface `idx`: the VRIDs its instances run per family,
    /// unicast admitted only for families with unicast peers (see `bpf::vrrp_filter`).
    pub(super) fn rx_filter(&self, idx: usize) -> bpf::Program {
        if std::env::var(RX_FILTER_ENV).as_deref() == Ok("protocol-only") {
            return bpf::VRRP_FILTER.iter().copied().collect();
        }
        let mut v4: heapless::Vec<u8, 256> = heapless::Vec::new();
        let mut v6: heapless::Vec<u8, 256> = heapless::Vec::new();
        let (mut uni4, mut uni6) = (false, false);
        let mut rs = false;
        for inst in self.insts.iter().filter(|s| s.iface == idx) {
            let (list, uni) = match inst.cfg.family {
                Family::Ipv4 => (&mut v4, &mut uni4),
                Family::Ipv6 => (&mut v6, &mut uni6),
            };
            if !list.contains(&inst.cfg.vrid) {
                let _ = list.push(inst.cfg.vrid);
            }
            *uni |= !inst.cfg.unicast_peers.is_empty();
            rs |= inst.ra.is_some();
        }
        bpf::vrrp_filter(&bpf::VrrpFilterSpec {
            v4_vrids: &v4,
            v6_vrids: &v6,
            v4_unicast: uni4,
            v6_unicast: uni6,
            router_solicit: rs,
        })
    }

    /// Receive buffer for interface `idx`'s socket, sized for the instances on it.
    pub(super) fn rcvbuf_for(&self, idx: usize) -> usize {
        let n = self.insts.iter().filter(|s| s.iface == idx).count();
        (n * RCVBUF_PER_INSTANCE).max(RCVBUF_MIN)
    }

    /// After a reload the VRIDs on an interface may have changed: swap its filter and size,
    /// and its receive hold if the instances' Skew_Times ask for another.
    pub(super) fn refresh_rx_filters(&mut self) {
        for idx in 0..self.ifaces.len() {
            let (filter, rcvbuf) = (self.rx_filter(idx), self.rcvbuf_for(idx));
            let rx_delay = self.rx_delay_for(idx);
            let ifc = &mut self.ifaces[idx];
            if let Some(l) = &mut ifc.listener {
                if let Err(e) = self.south.set_filter(l, &filter, rcvbuf) {
                    error!("{}: receive filter: {e}", ifc.name);
                }
                if ifc.rx_delay != rx_delay {
                    ifc.rx_delay = rx_delay;
                    if let Err(e) = self.south.set_rx_delay(l, rx_delay) {
                        ifc.rx_delay = None;
                        warn!("{}: receive ring: {e}; reading frames one by one", ifc.name);
                    }
                }
            }
        }
    }
}

/// Link facts of a received frame, in the receive policy's terms.
fn frame_meta(f: &RecvFrame) -> FrameMeta {
    FrameMeta {
        delivery: match f.pkttype {
            PktType::Host => Delivery::ToUs,
            PktType::Broadcast => Delivery::Broadcast,
            PktType::Multicast => Delivery::Multicast,
            // Our own frames never get here (filter + PacketSocket::recv); anything else
            // was not addressed to us.
            PktType::OtherHost | PktType::Outgoing | PktType::Other(_) => Delivery::OtherHost,
        },
        vlan_tagged: f.vlan_tagged,
    }
}

/// One warning line for a dropped advert (rate-limited by the caller).
fn warn_drop(owner: &str, reason: DropReason, src: Option<IpAddr>, suppressed: u32) {
    match src {
        Some(src) => warn!(target: owner,
            "advert from {src} dropped: {} ({suppressed} more suppressed)", reason.as_str()),
        None => warn!(target: owner,
            "frame dropped: {} ({suppressed} more suppressed)", reason.as_str()),
    }
}

/// The rate limiter needs a time; the exact instant of a log line does not matter, so the
/// receive path uses the loop's clock reading rather than passing `now` through the inbox.
fn clock_hint() -> Instant {
    crate::sys::clock::now()
}
