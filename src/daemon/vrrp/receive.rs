//! Receive: one frame from an interface's listener to an input event for its instance. The
//! link facts and the stateless RFC 5798 7.1 / RFC 3768 7.1 checks come first
//! (`rx_policy::check_link`, `parse_frame`) and their drops are counted for the interface;
//! then the instance, found by interface / VRID / family, applies its receive policy
//! (`rx_policy::check`: sender, transport, TTL, `validate_for` against the advert it sends,
//! address list), counted for the instance. The same rules run first in the kernel, as the
//! listener's BPF filter (`sys::bpf`), built here from the instances on the interface.

use core::net::IpAddr;

use log::{debug, error, warn};

use super::southbound::Southbound;
use super::{DropOwner, InstanceKey, Vrrp, VrrpEvent};
use crate::base::ratelimit::Verdict;
use crate::base::{Family, Instant};
use crate::daemon::event_loop::Read;
use crate::sys::bpf;
use crate::sys::packet::{PktType, RecvFrame};
use crate::vrrp::frame::{parse_frame, RxContext};
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

impl<S: Southbound> Vrrp<S> {
    /// Read one frame from interface `idx`'s listener. `queue` takes the decoded advert: it
    /// is handled after the due timers, as input.
    pub fn on_readable(&mut self, idx: usize, mut queue: impl FnMut(VrrpEvent)) -> Read {
        let Some(ifc) = self.ifaces.get_mut(idx) else {
            return Read::Drained;
        };
        let Some(listener) = ifc.listener.as_mut() else {
            return Read::Drained;
        };
        let frame = match self.south.recv(listener, &mut self.rx[..]) {
            Ok(Some(m)) => m,
            Ok(None) => return Read::Drained,
            Err(e) => {
                debug!("{}: recv: {e}", ifc.name);
                return Read::Drained;
            }
        };
        let meta = frame_meta(&frame);
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
                return Read::Again;
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
            return Read::Again;
        };
        if let Err(reason) = rx_policy::check(&self.rx_rules(i), &meta, &adv) {
            self.count_drop(DropOwner::Inst(i as u16), reason, Some(adv.ip.src));
            return Read::Again;
        }
        queue(VrrpEvent::Advert {
            key,
            advert: adv.advert(),
        });
        Read::Again
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
        for inst in self.insts.iter().filter(|s| s.iface == idx) {
            let (list, uni) = match inst.cfg.family {
                Family::Ipv4 => (&mut v4, &mut uni4),
                Family::Ipv6 => (&mut v6, &mut uni6),
            };
            if !list.contains(&inst.cfg.vrid) {
                let _ = list.push(inst.cfg.vrid);
            }
            *uni |= !inst.cfg.unicast_peers.is_empty();
        }
        bpf::vrrp_filter(&bpf::VrrpFilterSpec {
            v4_vrids: &v4,
            v6_vrids: &v6,
            v4_unicast: uni4,
            v6_unicast: uni6,
        })
    }

    /// Receive buffer for interface `idx`'s socket, sized for the instances on it.
    pub(super) fn rcvbuf_for(&self, idx: usize) -> usize {
        let n = self.insts.iter().filter(|s| s.iface == idx).count();
        (n * RCVBUF_PER_INSTANCE).max(RCVBUF_MIN)
    }

    /// After a reload the VRIDs on an interface may have changed: swap its filter and size.
    pub(super) fn refresh_rx_filters(&mut self) {
        for idx in 0..self.ifaces.len() {
            let (filter, rcvbuf) = (self.rx_filter(idx), self.rcvbuf_for(idx));
            let ifc = &self.ifaces[idx];
            if let Some(l) = &ifc.listener {
                if let Err(e) = self.south.set_filter(l, &filter, rcvbuf) {
                    error!("{}: receive filter: {e}", ifc.name);
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
