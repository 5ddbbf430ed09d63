//! Receive: one frame from an interface's listener through the RFC 5798 7.1 / RFC 3768 7.1
//! checks, the stateless ones (`parse_frame`) and the instance's own (`validate_for` against
//! the advert it sends), to an input event for the instance. Drops are counted per reason.

use log::{debug, warn};

use super::southbound::Southbound;
use super::{InstKey, Vrrp, VrrpEvent};
use crate::base::ratelimit::Verdict;
use crate::base::{Family, Instant};
use crate::daemon::event_loop::Read;
use crate::sys::packet::PktType;
use crate::vrrp::frame::{parse_frame, AddrListMatch, RxContext};
use crate::vrrp::wire;

impl<S: Southbound> Vrrp<S> {
    /// Read one frame from interface socket `idx`: RFC 5798 7.1 checks that need no
    /// instance (`parse_frame`), then the instance's own (`validate_for`).
    /// `queue` takes the decoded advert: it is handled after the due timers, as input.
    pub fn on_readable(&mut self, idx: usize, mut queue: impl FnMut(VrrpEvent)) -> Read {
        let Some(ifc) = self.ifaces.get_mut(idx) else {
            return Read::Drained;
        };
        let Some(listener) = ifc.listener.as_mut() else {
            return Read::Drained;
        };
        let meta = match self.south.recv(listener, &mut self.rx[..]) {
            Ok(Some(m)) => m,
            Ok(None) => return Read::Drained,
            Err(e) => {
                debug!("{}: recv: {e}", ifc.name);
                return Read::Drained;
            }
        };
        if meta.truncated {
            self.drops.record(wire::DropReason::FrameTruncated);
            return Read::Again;
        }
        let rx = RxContext {
            unicast: meta.pkttype == PktType::Host,
        };
        let adv = match parse_frame(&self.rx[..meta.len], rx) {
            Ok(a) => a,
            Err(reason) => {
                self.drops.record(reason);
                return Read::Again;
            }
        };
        let family = Family::of(&adv.ip.src);
        let key = InstKey {
            iface: idx as u16,
            vrid: adv.vrrp.vrid,
            family,
        };
        let Some(i) = self.find(key) else {
            self.unknown_vrid = self.unknown_vrid.saturating_add(1);
            return Read::Again;
        };
        let inst = &self.insts[i];
        match adv.validate_for(&inst.own) {
            Ok(AddrListMatch::Match) => {}
            Ok(AddrListMatch::Mismatch) => {
                // RFC 5798 7.1: "MAY" drop; keepalived logs and accepts, so we do too.
                if let Verdict::Allow { suppressed } =
                    self.mismatch_log.check(i as u16, clock_hint())
                {
                    warn!(target: &inst.cfg.name,
                        "advert from {} lists other addresses than ours ({} more suppressed)",
                        adv.ip.src, suppressed);
                }
            }
            Err(reason) => {
                self.drops.record(reason);
                if reason == wire::DropReason::AuthMismatch {
                    if let Verdict::Allow { suppressed } =
                        self.mismatch_log.check(i as u16, clock_hint())
                    {
                        warn!(target: &inst.cfg.name, "advert from {} with wrong password dropped ({} more suppressed)", adv.ip.src, suppressed);
                    }
                }
                return Read::Again;
            }
        }
        queue(VrrpEvent::Advert {
            key,
            advert: adv.advert(),
        });
        Read::Again
    }
}

/// The rate limiter needs a time; the exact instant of a log line does not matter, so the
/// receive path uses the loop's clock reading rather than passing `now` through the inbox.
fn clock_hint() -> Instant {
    crate::sys::clock::now()
}
