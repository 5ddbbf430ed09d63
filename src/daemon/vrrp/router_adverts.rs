//! Router Advertisements of the virtual router (`option ra`, `vrrp::ra`): sent while the
//! IPv6 router is MASTER with its VIPs, from its first IPv6 VIP (link-local, validation
//! sees to it) and the MAC the VIPs answer with, on the interface's listener, as adverts
//! are. The schedule starts when the VIPs go on and stops when they come off
//! (`addresses`); one loop timer, [`RA_TIMER`], serves every instance.
//!
//! No RA with router lifetime 0 is sent when a master stops or hands over: the next master
//! advertises from the same link-local address, so hosts must keep it as their default
//! router (RFC 4861 6.2.5's final RAs are for an interface that stops being a router, which
//! the virtual router does not while any router of its group runs). The one final RA goes
//! out when a reload takes the virtual router away for good while it advertises: its
//! instance removed, or `ra` switched off ([`Vrrp::final_ra`]).

use core::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use log::{error, info, warn};

use super::{Vrrp, RA_TIMER};
use crate::base::Instant;
use crate::config::model;
use crate::daemon::event_loop::Ctx;
use crate::daemon::ids::Part;
use crate::daemon::kernel::Southbound;
use crate::vrrp::ra::emit_ra;

impl<S: Southbound> Vrrp<S> {
    /// A uniform random 16-bit number (xorshift64): the RAs' jitter.
    fn jitter(&mut self) -> u16 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 24) as u16
    }

    /// Keep [`RA_TIMER`] at the earliest RA due (none: cancelled).
    pub(super) fn arm_ra(&mut self, ctx: &mut Ctx) {
        let timer = Part::Vrrp.timer(RA_TIMER);
        let due = self
            .insts
            .iter()
            .filter_map(|s| s.ra.as_ref().and_then(|r| r.next_deadline()))
            .min();
        match due {
            Some(at) => {
                if let Err(e) = ctx.arm(timer, at) {
                    error!("RA timer: {e}");
                }
            }
            None => {
                ctx.cancel(timer);
            }
        }
    }

    /// Send the RAs that are due.
    pub(super) fn ra_round(&mut self, ctx: &mut Ctx, now: Instant) {
        for i in 0..self.insts.len() {
            let Some(interval) = self.insts[i].cfg.ra.as_ref().map(|r| r.interval) else {
                continue;
            };
            let jitter = self.jitter();
            let due = match &mut self.insts[i].ra {
                Some(ra) => ra.poll(now, interval, jitter),
                None => false,
            };
            if due {
                self.send_ra(i);
            }
        }
        self.arm_ra(ctx);
    }

    /// Router Solicitations came in on interface `iface` (RFC 4861 6.2.6): each advertising
    /// instance there brings its next RA forward, within the rate limit; the solicitations
    /// beyond the first of a burst only count.
    pub(super) fn on_router_solicit(&mut self, ctx: &mut Ctx, iface: u16, now: Instant) {
        let Some(ifc) = self.ifaces.get_mut(usize::from(iface)) else {
            return;
        };
        let n = core::mem::take(&mut ifc.rs_waiting);
        for i in 0..self.insts.len() {
            if self.insts[i].iface != usize::from(iface) {
                continue;
            }
            let jitter = self.jitter();
            if let Some(ra) = self.insts[i].ra.as_mut().filter(|r| r.running()) {
                ra.on_solicit(now, jitter);
                let more = n.saturating_sub(1);
                ra.rs_received = ra.rs_received.wrapping_add(more);
                ra.rs_rate_limited = ra.rs_rate_limited.wrapping_add(more);
            }
        }
        self.arm_ra(ctx);
    }

    /// One RA of instance `i` to all-nodes, with its configured router lifetime.
    fn send_ra(&mut self, i: usize) {
        let cfg = Arc::clone(&self.insts[i].cfg);
        self.send_ra_as(i, &cfg, None);
    }

    /// A reload takes router `i`'s RAs away (it leaves the config, or `ra` went off):
    /// while it advertises, and no router of the new config advertises from the same
    /// link-local address on that interface, one RA with router lifetime 0 (RFC 4861 6.2.5)
    /// tells hosts to stop using it, with the settings it advertised (`was`).
    pub(super) fn final_ra(&mut self, i: usize, was: &model::Instance, configured: usize) {
        if !self.insts[i].ra.as_ref().is_some_and(|r| r.running()) {
            return;
        }
        let iface = self.insts[i].iface;
        let src = first_ipv6(was);
        let taken_over = self.insts[..configured].iter().enumerate().any(|(k, s)| {
            k != i && s.iface == iface && s.cfg.ra.is_some() && first_ipv6(&s.cfg) == src
        });
        if !taken_over {
            info!(target: &was.name, "no longer a router: final RA with router lifetime 0");
            self.send_ra_as(i, was, Some(0));
        }
        if let Some(ra) = &mut self.insts[i].ra {
            ra.stop();
        }
    }

    /// One RA from router `i`'s interface and MAC with the settings of `cfg`; its router
    /// lifetime is `lifetime`, or the configured one.
    fn send_ra_as(&mut self, i: usize, cfg: &model::Instance, lifetime: Option<u16>) {
        let src_mac = self.src_mac(i);
        let inst = &self.insts[i];
        let (Some(ra), Some(src)) = (cfg.ra.as_ref(), first_ipv6(cfg)) else {
            return;
        };
        let name = &cfg.name;
        let ifc = &self.ifaces[inst.iface];
        let Some(listener) = &ifc.listener else {
            return;
        };
        let lifetime = lifetime.unwrap_or(ra.router_lifetime);
        match emit_ra(&mut self.tx, src_mac, src, ra, lifetime) {
            Ok(n) => match self.south.send_frame(listener, &self.tx[..n]) {
                Ok(Some(_)) => {}
                Ok(None) => warn!(target: name, "RA lost: socket buffer full"),
                Err(e) => warn!(target: name, "RA on {}: {e}", ifc.name),
            },
            Err(e) => error!(target: name, "RA: {e:?}"),
        }
    }
}

/// The RAs' source: the instance's first IPv6 VIP (link-local, by validation).
fn first_ipv6(cfg: &model::Instance) -> Option<Ipv6Addr> {
    cfg.vips.iter().find_map(|v| match v.addr {
        IpAddr::V6(a) => Some(a),
        IpAddr::V4(_) => None,
    })
}
