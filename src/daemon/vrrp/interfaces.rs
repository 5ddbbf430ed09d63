//! Interfaces: link facts from the kernel, one listener per interface, the advert source
//! address, and RFC 5798 6.4 interface up/down events from rtnetlink.

use core::net::IpAddr;

use log::{error, info, warn};

use super::{params, Vrrp};
use crate::base::{Family, Instant};
use crate::daemon::event_loop::Ctx;
use crate::daemon::ids::Part;
use crate::daemon::kernel::Southbound;
use crate::sys::poll::Interest;
use crate::sys::rtnl::{RtnlEvent, SourceRule};
use crate::vrrp::instance::Input;

impl<S: Southbound> Vrrp<S> {
    /// Open instance `i`'s socket for unicast peers (none without peers).
    pub(super) fn setup_inst_sockets(&mut self, i: usize) {
        let inst = &mut self.insts[i];
        inst.unicast = None;
        if inst.cfg.unicast_peers.is_empty() {
            return;
        }
        let family = inst.cfg.family;
        match self
            .south
            .open_unicast(family, &inst.cfg.interface, inst.cfg.unicast_src)
        {
            Ok(s) => inst.unicast = Some(s),
            Err(e) => error!(target: &inst.cfg.name, "unicast socket: {e}"),
        }
    }

    /// The advert source address and tie-break key (RFC 5798 5.1.1.2 / 5.1.2.2): the
    /// configured unicast_src, else the interface's primary IPv4 / IPv6 link-local.
    pub(super) fn source_addr(&self, i: usize) -> Option<IpAddr> {
        let inst = &self.insts[i];
        if let Some(s) = inst.cfg.unicast_src {
            return Some(s);
        }
        let ifc = &self.ifaces[inst.iface];
        match inst.cfg.family {
            Family::Ipv4 => ifc.primary4.map(IpAddr::V4),
            Family::Ipv6 => ifc.link_local6.map(IpAddr::V6),
        }
    }

    /// Re-read an interface (at start, when it appears again, after an rtnetlink overrun)
    /// and (re)open its listener if its ifindex changed.
    pub(super) fn refresh_iface(&mut self, ctx: &mut Ctx, idx: usize) {
        let name = self.ifaces[idx].name.clone();
        let insts = &self.insts;
        let is_vip = |a: IpAddr| insts.iter().any(|s| s.cfg.vips.iter().any(|v| v.addr == a));
        let rule = SourceRule {
            keep4: self.ifaces[idx].primary4,
            keep6: self.ifaces[idx].link_local6,
            skip: &is_vip,
        };
        let link = self.south.link_facts(&name, &rule).unwrap_or_else(|e| {
            warn!("{name}: cannot read link: {e}");
            None
        });
        let token = Part::Vrrp.token(idx as u32);
        let Some(link) = link else {
            if self.ifaces[idx].ifindex.is_some() {
                info!("{name}: interface is gone");
            } else {
                warn!("{name}: interface does not exist (yet): its instances stay in FAULT");
            }
            ctx.deregister(token);
            self.close_listener(idx);
            let ifc = &mut self.ifaces[idx];
            ifc.ifindex = None;
            ifc.up = false;
            return;
        };
        self.set_sources(idx, link.primary4, link.link_local6);
        let ifc = &mut self.ifaces[idx];
        ifc.up = link.up;
        ifc.mac = link.mac;
        if ifc.ifindex == Some(link.ifindex) && ifc.listener.is_some() {
            return;
        }
        ctx.deregister(token);
        self.close_listener(idx);
        self.ifaces[idx].ifindex = Some(link.ifindex);
        let filter = self.rx_filter(idx);
        let rcvbuf = self.rcvbuf_for(idx);
        let rx_delay = self.rx_delay_for(idx);
        self.ifaces[idx].rx_delay = rx_delay;
        match self
            .south
            .open_listener(link.ifindex, &name, &filter, rcvbuf, rx_delay)
        {
            Ok(l) => {
                if let Err(e) = ctx.register(token, &l, Interest::READABLE) {
                    error!("{name}: {e}");
                }
                self.ifaces[idx].listener = Some(l);
                match rx_delay {
                    Some(d) => info!(
                        "{name}: listening (ifindex {}), frames handed over within {} ms",
                        link.ifindex,
                        d.as_millis() as u64
                    ),
                    None => info!("{name}: listening (ifindex {})", link.ifindex),
                }
            }
            Err(e) => error!("{name}: packet socket: {e}"),
        }
    }

    /// Link and address changes: RFC 5798 6.4 interface up/down events, and an interface
    /// that disappears and comes back (PPPoE, WireGuard, VLAN) under a new ifindex.
    pub fn on_link_event(&mut self, ctx: &mut Ctx, ev: &RtnlEvent, now: Instant) {
        let name: Option<&str> = match ev {
            RtnlEvent::LinkNew { name, .. }
            | RtnlEvent::LinkUp { name, .. }
            | RtnlEvent::LinkDown { name, .. }
            | RtnlEvent::LinkGone { name, .. } => Some(name.as_str()),
            RtnlEvent::AddrAdded(a) | RtnlEvent::AddrRemoved(a) => {
                // A VIP deleted under a master comes back (`addresses::restore_vips`).
                if matches!(ev, RtnlEvent::AddrRemoved(_))
                    && self.note_vip_deleted(ctx, a.addr, false, now)
                {
                    return;
                }
                // Only our interfaces' own addresses matter (the source address may change);
                // our VIPs coming and going are our own doing.
                let idx = self
                    .ifaces
                    .iter()
                    .position(|f| f.ifindex == Some(a.ifindex));
                if let Some(idx) = idx {
                    if !self
                        .insts
                        .iter()
                        .any(|s| s.cfg.vips.iter().any(|v| v.addr == a.addr))
                    {
                        self.refresh_sources(ctx, idx, now);
                    }
                }
                return;
            }
            RtnlEvent::Overrun => {
                self.note_events_lost(ctx, now);
                self.resync_links(ctx, now);
                return;
            }
        };
        let Some(name) = name else { return };
        if let Some(idx) = self.ifaces.iter().position(|f| f.name == name) {
            self.refresh_and_update(ctx, idx, now);
        }
    }

    /// An address on interface `idx` came or went: only the advert source can have changed,
    /// so one address dump, not the whole link (a link read and two dumps). The link itself
    /// is re-read only when that dump fails.
    fn refresh_sources(&mut self, ctx: &mut Ctx, idx: usize, now: Instant) {
        let Some(ifindex) = self.ifaces[idx].ifindex else {
            return;
        };
        match self.read_sources(idx, ifindex) {
            Ok((v4, v6)) => {
                self.set_sources(idx, v4, v6);
                self.update_insts(ctx, idx, now);
            }
            Err(e) => {
                warn!("{}: cannot read addresses: {e}", self.ifaces[idx].name);
                self.refresh_and_update(ctx, idx, now);
            }
        }
    }

    /// Interface `idx`'s advert sources from one address dump (RFC 5798 5.1.1.1, 5.1.2.1):
    /// never one of our VIPs (a link-local VIP is listed before the interface's own address
    /// once installed), and the ones in use kept while the interface still has them.
    fn read_sources(
        &mut self,
        idx: usize,
        ifindex: u32,
    ) -> Result<(Option<core::net::Ipv4Addr>, Option<core::net::Ipv6Addr>), nix::errno::Errno> {
        let insts = &self.insts;
        let is_vip = |a: IpAddr| insts.iter().any(|s| s.cfg.vips.iter().any(|v| v.addr == a));
        let ifc = &self.ifaces[idx];
        let rule = SourceRule {
            keep4: ifc.primary4,
            keep6: ifc.link_local6,
            skip: &is_vip,
        };
        self.south.source_addresses(ifindex, &rule)
    }

    /// Store interface `idx`'s advert sources, logging a change once for the interface (the
    /// instances on it then log their new source once each, in `update_insts`).
    fn set_sources(
        &mut self,
        idx: usize,
        v4: Option<core::net::Ipv4Addr>,
        v6: Option<core::net::Ipv6Addr>,
    ) {
        let ifc = &mut self.ifaces[idx];
        if let (Some(old), Some(new)) = (ifc.link_local6, v6) {
            if old != new {
                info!("{}: IPv6 link-local source {old} -> {new}", ifc.name);
            }
        }
        ifc.primary4 = v4;
        ifc.link_local6 = v6;
    }

    /// Link events were lost: re-read every interface and its addresses.
    pub fn resync_links(&mut self, ctx: &mut Ctx, now: Instant) {
        for idx in 0..self.ifaces.len() {
            self.refresh_and_update(ctx, idx, now);
        }
    }

    pub(super) fn refresh_and_update(&mut self, ctx: &mut Ctx, idx: usize, now: Instant) {
        self.refresh_iface(ctx, idx);
        self.update_insts(ctx, idx, now);
    }

    /// Tell the instances on interface `idx` what its facts now mean for them: a new
    /// advert source address, the interface usable or not (RFC 5798 6.4).
    fn update_insts(&mut self, ctx: &mut Ctx, idx: usize, now: Instant) {
        for i in 0..self.insts.len() {
            if self.insts[i].iface != idx {
                continue;
            }
            let src = self.source_addr(i);
            let ok = self.ifaces[idx].up && src.is_some();
            let inst = &mut self.insts[i];
            if let Some(src) = src {
                if inst.fsm.params().primary != src {
                    let p = params(&inst.cfg, src);
                    info!(target: &inst.cfg.name, "source address is now {src}");
                    self.feed(ctx, i, Input::ConfigChange(p), now);
                }
            }
            let inst = &mut self.insts[i];
            if ok != inst.link_ok {
                inst.link_ok = ok;
                if !ok {
                    // The kernel removes addresses with the interface; macvlans go with it.
                    if self.ifaces[idx].ifindex.is_none() {
                        inst.vmac = None;
                    }
                }
                let input = if ok {
                    Input::InterfaceUp
                } else {
                    Input::InterfaceDown
                };
                self.feed(ctx, i, input, now);
            }
        }
    }

    /// An interface no instance runs on any more (after a reload) stops listening.
    pub(super) fn close_unused_ifaces(&mut self, ctx: &mut Ctx) {
        for idx in 0..self.ifaces.len() {
            if !self.insts.iter().any(|s| s.iface == idx) && self.ifaces[idx].listener.is_some() {
                ctx.deregister(Part::Vrrp.token(idx as u32));
                self.close_listener(idx);
                let ifc = &mut self.ifaces[idx];
                ifc.ifindex = None;
            }
        }
    }

    /// Close interface `idx`'s listener (if open), keeping what the kernel counted on it.
    fn close_listener(&mut self, idx: usize) {
        self.add_kernel_stats(idx);
        self.ifaces[idx].listener = None;
    }

    /// Add what the kernel counted on interface `idx`'s listener since the last read.
    pub(super) fn add_kernel_stats(&mut self, idx: usize) {
        let ifc = &mut self.ifaces[idx];
        let Some(l) = &ifc.listener else { return };
        if let Ok(k) = self.south.take_kernel_stats(l) {
            ifc.kernel.delivered = ifc.kernel.delivered.saturating_add(k.delivered);
            ifc.kernel.overflow = ifc.kernel.overflow.saturating_add(k.overflow);
        }
    }
}
