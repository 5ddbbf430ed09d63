//! Virtual addresses: added and removed as the state machine says, on the interface or on
//! the `use_vmac` macvlan (created on demand), leased and renewed when `vip_lifetime` is set
//! (dead-man VIPs), and stale ones of a crashed run cleared. The routes and policy rules
//! that follow the state (`route` / `rule` while master, `backup_route` / `backup_rule`
//! while backup) go with them.

use core::fmt::Write as _;
use core::net::IpAddr;

use log::{error, info, warn};
use nix::errno::Errno;

use super::route_set::RouteSet;
use super::{Vrrp, VIP_REFRESH_TIMER, VIP_RESTORE_GAP, VIP_RESTORE_TIMER};
use crate::base::ratelimit::Verdict;
use crate::base::Instant;
use crate::config::model;
use crate::daemon::event_loop::Ctx;
use crate::daemon::ids::Part;
use crate::daemon::kernel::Southbound;
use crate::sys::rtnl::{AddrAttrs, AddrReq, RouteAttrs, RuleAttrs};
use crate::vrrp::frame::virtual_mac;
use crate::vrrp::vip_lease::VipLease;
use crate::vrrp::wire;
use std::sync::Arc;

impl<S: Southbound> Vrrp<S> {
    /// A crashed run (kill -9, power loss with a persistent config) may have left our VIPs
    /// configured: remove them so no stale VIP answers while we are not master.
    pub(super) fn remove_stale_vips(&mut self, i: usize) {
        // Master routes of that run would send traffic to its gateway while we are backup.
        let inst = &self.insts[i];
        let default = self.ifaces[inst.iface].ifindex;
        for r in &inst.cfg.routes {
            if let Some(attrs) = route_attrs(&mut self.south, r, default) {
                if self.south.del_route(&attrs).is_ok() {
                    info!(target: &inst.cfg.name, "removing stale route {} left by an earlier run", r);
                }
            }
        }
        // Rules of either set: the instance starts in neither state.
        for r in inst.cfg.rules.iter().chain(&inst.cfg.backup_rules) {
            if self.south.del_rule(&rule_attrs(r)).is_ok() {
                info!(target: &inst.cfg.name, "removing stale rule {} left by an earlier run", r);
            }
        }
        let inst = &self.insts[i];
        let Some(ifindex) = self.ifaces[inst.iface].ifindex else {
            return;
        };
        if inst.cfg.use_vmac {
            if let Ok(Some(l)) = self.south.link(&inst.cfg.vmac_name) {
                info!(target: &inst.cfg.name, "removing stale {} left by an earlier run", inst.cfg.vmac_name);
                let _ = self.south.delete_link(l.ifindex);
            }
            return;
        }
        let mut stale: heapless::Vec<(IpAddr, u8), { wire::MAX_ADDRS }> = heapless::Vec::new();
        let _ = self.south.addresses(ifindex, &mut |addr, prefix| {
            if inst.cfg.vips.iter().any(|v| v.addr == addr) {
                let _ = stale.push((addr, prefix));
            }
        });
        for (addr, prefix) in stale {
            info!(target: &inst.cfg.name, "removing stale VIP {addr}/{prefix} left by an earlier run");
            let _ = self.south.del_address(ifindex, addr, prefix);
        }
        // VIPs on other interfaces (`dev`): removed if present, whatever their prefix.
        for vip in inst.cfg.vips.iter().filter(|v| v.dev.is_some()) {
            if let Some(dev_index) = vip_dev_ifindex(&mut self.south, vip, None) {
                if self
                    .south
                    .del_address(dev_index, vip.addr, vip.prefix_len)
                    .is_ok()
                {
                    info!(target: &inst.cfg.name, "removing stale VIP {} left by an earlier run", vip.addr);
                }
            }
        }
    }

    /// The interface the VIPs live on: the macvlan in use_vmac mode (created on demand).
    fn vip_ifindex(&mut self, i: usize) -> Option<u32> {
        let inst = &self.insts[i];
        let parent = self.ifaces[inst.iface].ifindex?;
        if !inst.cfg.use_vmac {
            return Some(parent);
        }
        if let Some(v) = inst.vmac {
            return Some(v);
        }
        let mac = virtual_mac(inst.cfg.vrid, inst.cfg.family).0;
        let name = inst.cfg.vmac_name.clone();
        let parent_name = &self.ifaces[inst.iface].name;
        match self.south.create_vmac(&name, parent, parent_name, mac) {
            Ok(ifindex) => {
                info!(target: &self.insts[i].cfg.name, "created {name} with virtual MAC");
                self.insts[i].vmac = Some(ifindex);
                Some(ifindex)
            }
            Err(e) => {
                error!(target: &self.insts[i].cfg.name, "cannot create {name}: {e}");
                None
            }
        }
    }

    /// RFC 5798 6.4.1 / 6.4.2 "transition to Master": the VIPs go on the interface (or its
    /// macvlan), with the instance's lease when it has one (`vip_lifetime`), noting when, so
    /// [`Self::vip_refresh`] renews them in time. Also the refresh itself: a create + replace
    /// of a present address only resets its lifetime, and one that the kernel already
    /// expired (the loop stalled past the lifetime) is added back.
    pub(super) fn add_vips(&mut self, i: usize, now: Instant) {
        if !self.insts[i].vips_installed {
            // The virtual router's RAs start with its link-local address (RFC 4861 6.2.4).
            if let Some(ra) = &mut self.insts[i].ra {
                ra.start(now);
            }
            // Backup routes first: one with the destination of a master route would
            // otherwise be replaced by it and then not found to remove.
            self.remove_routes(i, RouteSet::Backup);
            self.install_routes(i, RouteSet::Master);
        }
        let default = self.vip_ifindex(i);
        let inst = &mut self.insts[i];
        let lease = VipLease::new(inst.cfg.vip_lifetime);
        for vip in &inst.cfg.vips {
            // A VIP with its own `dev` goes there, the others on the instance's interface.
            let Some(ifindex) = vip_dev_ifindex(&mut self.south, vip, default) else {
                if let Some(d) = &vip.dev {
                    error!(target: &inst.cfg.name, "add VIP {}: no interface {d}", vip.addr);
                }
                continue;
            };
            let opts = AddrAttrs {
                scope: vip.scope,
                label: vip.label.as_deref(),
                lifetime_s: lease.map(|l| l.lifetime_s),
            };
            match self
                .south
                .add_address(ifindex, vip.addr, vip.prefix_len, &opts)
            {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => error!(target: &inst.cfg.name, "add VIP {}: {e}", vip.addr),
            }
        }
        inst.vips_installed = true;
        inst.vip_refreshed = lease.map(|_| now);
    }

    /// Dead-man VIPs (`vrrp::vip_lease`): renew the lease of every master whose refresh is
    /// due, taking along those past half-way to theirs ([`VipLease::due`]), so all masters
    /// renew in one wake-up and one netlink batch. Runs from [`VIP_REFRESH_TIMER`]; the loop
    /// fires due timers before it reads more packets, so a flood cannot push a refresh past
    /// its lifetime.
    pub(super) fn vip_refresh(&mut self, ctx: &mut Ctx, now: Instant) {
        let mut batch = core::mem::take(&mut self.lease_batch);
        batch.clear();
        for i in 0..self.insts.len() {
            let inst = &self.insts[i];
            let (Some(last), Some(lease)) =
                (inst.vip_refreshed, VipLease::new(inst.cfg.vip_lifetime))
            else {
                // A reload to `vip_lifetime 0` makes the installed addresses permanent.
                if inst.vip_refreshed.is_some() {
                    self.add_vips(i, now);
                }
                continue;
            };
            if !lease.due(last, now) {
                continue;
            }
            if now >= lease.expires(last) {
                warn!(target: &inst.cfg.name,
                    "VIP lease ran out {} ms ago (the daemon was stalled): adding the VIPs back",
                    (now - lease.expires(last)).as_millis() as u64);
            }
            let default = self.vip_ifindex(i);
            let inst = &self.insts[i];
            for (k, vip) in inst.cfg.vips.iter().enumerate() {
                match vip_dev_ifindex(&mut self.south, vip, default) {
                    Some(ifindex) => batch.push((i, k, ifindex)),
                    None => {
                        if let Some(d) = &vip.dev {
                            error!(target: &inst.cfg.name, "add VIP {}: no interface {d}", vip.addr);
                        }
                    }
                }
            }
            self.insts[i].vip_refreshed = Some(now);
        }
        self.renew_leases(&batch);
        self.lease_batch = batch;
        self.arm_vip_refresh(ctx);
    }

    /// Renew the VIPs of a refresh round in one batch ((instance, VIP, ifindex) each): a
    /// create + replace of a present address only resets its lifetime, one that the kernel
    /// already expired (the loop stalled past the lifetime) is added back.
    fn renew_leases(&mut self, batch: &[(usize, usize, u32)]) {
        if batch.is_empty() {
            return;
        }
        let insts = &self.insts;
        let req = |k: usize| {
            let (i, v, ifindex) = batch[k];
            let inst = &insts[i];
            let vip = &inst.cfg.vips[v];
            AddrReq {
                ifindex,
                addr: vip.addr,
                prefix: vip.prefix_len,
                attrs: AddrAttrs {
                    scope: vip.scope,
                    label: vip.label.as_deref(),
                    lifetime_s: VipLease::new(inst.cfg.vip_lifetime).map(|l| l.lifetime_s),
                },
            }
        };
        self.south.add_addresses(batch.len(), &req, &mut |k, e| {
            if e != Errno::EEXIST {
                let (i, v, _) = batch[k];
                let inst = &insts[i];
                error!(target: &inst.cfg.name, "add VIP {}: {e}", inst.cfg.vips[v].addr);
            }
        });
    }

    /// Keep [`VIP_REFRESH_TIMER`] at the earliest lease refresh due (none: cancelled).
    pub(super) fn arm_vip_refresh(&mut self, ctx: &mut Ctx) {
        let timer = Part::Vrrp.timer(VIP_REFRESH_TIMER);
        let due = self
            .insts
            .iter()
            .filter_map(|s| {
                let lease = VipLease::new(s.cfg.vip_lifetime);
                match (s.vip_refreshed, lease) {
                    (Some(last), Some(l)) => Some(l.next_refresh(last)),
                    // Lease switched off by a reload: refresh now to make them permanent.
                    (Some(last), None) => Some(last),
                    _ => None,
                }
            })
            .min();
        match due {
            Some(at) => {
                if let Err(e) = ctx.arm(timer, at) {
                    error!("VIP refresh timer: {e}");
                }
            }
            None => {
                ctx.cancel(timer);
            }
        }
    }

    /// Netlink says `addr` left `ifindex`. If it is an installed VIP of ours (netifd
    /// restarting the interface, `ip addr flush`, a DHCP client, a lease that ran out), its
    /// instance is marked for [`Self::restore_vips`], due at once or [`VIP_RESTORE_GAP`]
    /// after the last round. Our own removals are not marked: `remove_vips` clears
    /// `vips_installed` before the kernel's news of them arrives. `ifindex` is not
    /// compared (the VIP may be on a macvlan or its own `dev`): the round looks at the
    /// interfaces themselves. Returns whether it was one of our VIPs.
    pub(super) fn note_vip_deleted(
        &mut self,
        ctx: &mut Ctx,
        addr: IpAddr,
        any: bool,
        now: Instant,
    ) -> bool {
        let mut ours = false;
        for inst in &mut self.insts {
            if inst.vips_installed && (any || inst.cfg.vips.iter().any(|v| v.addr == addr)) {
                inst.restore_pending = true;
                ours = true;
            }
        }
        if ours {
            let at = match self.last_restore {
                Some(last) if last + VIP_RESTORE_GAP > now => last + VIP_RESTORE_GAP,
                _ => now,
            };
            if let Err(e) = ctx.arm(Part::Vrrp.timer(VIP_RESTORE_TIMER), at) {
                error!("VIP restore timer: {e}");
            }
        }
        ours
    }

    /// Rtnetlink events were lost: any installed VIP may have been deleted meanwhile.
    pub(super) fn note_events_lost(&mut self, ctx: &mut Ctx, now: Instant) {
        self.note_vip_deleted(ctx, IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), true, now);
    }

    /// Add back the VIPs deleted under a master (marked by [`Self::note_vip_deleted`]):
    /// one address dump per interface says which are gone, those are added again (with the
    /// instance's lease, as [`Self::add_vips`]), counted, named in one log line per instance
    /// per `VIP_RESTORE_LOG`, and the instance's VIPs announced again (RFC 5798 6.4.2), so
    /// hosts that flushed their neighbour entry with the address learn it back now.
    pub(super) fn restore_vips(&mut self, now: Instant) {
        self.last_restore = Some(now);
        for i in 0..self.insts.len() {
            let inst = &mut self.insts[i];
            if !core::mem::take(&mut inst.restore_pending)
                || !inst.vips_installed
                || inst.fsm.state() != crate::vrrp::instance::State::Master
            {
                continue;
            }
            let default = self.vip_ifindex(i);
            let inst = &self.insts[i];
            let lease = VipLease::new(inst.cfg.vip_lifetime);
            let mut lost: heapless::String<256> = heapless::String::new();
            let mut n = 0u32;
            // One dump for the VIPs on the instance's interface, one per VIP with a `dev`.
            let mut on_default: heapless::Vec<IpAddr, { wire::MAX_ADDRS }> = heapless::Vec::new();
            let dumped = default.is_some_and(|d| {
                self.south
                    .addresses(d, &mut |a, _| {
                        if inst.cfg.vips.iter().any(|v| v.addr == a) {
                            let _ = on_default.push(a);
                        }
                    })
                    .is_ok()
            });
            for vip in &inst.cfg.vips {
                let Some(ifindex) = vip_dev_ifindex(&mut self.south, vip, default) else {
                    continue;
                };
                let present = if vip.dev.is_none() {
                    !dumped || on_default.contains(&vip.addr)
                } else {
                    let mut seen = false;
                    let ok = self
                        .south
                        .addresses(ifindex, &mut |a, _| seen |= a == vip.addr)
                        .is_ok();
                    !ok || seen
                };
                if present {
                    continue;
                }
                let opts = AddrAttrs {
                    scope: vip.scope,
                    label: vip.label.as_deref(),
                    lifetime_s: lease.map(|l| l.lifetime_s),
                };
                match self
                    .south
                    .add_address(ifindex, vip.addr, vip.prefix_len, &opts)
                {
                    Ok(()) | Err(Errno::EEXIST) => {
                        n += 1;
                        let sep = if lost.is_empty() { "" } else { " " };
                        let _ = write!(lost, "{sep}{}/{}", vip.addr, vip.prefix_len);
                        if let Some(d) = &vip.dev {
                            let _ = write!(lost, " (dev {d})");
                        }
                    }
                    Err(e) => error!(target: &inst.cfg.name, "add VIP {} back: {e}", vip.addr),
                }
            }
            if n == 0 {
                continue;
            }
            let name = inst.cfg.name.clone();
            let ifname = match (inst.cfg.use_vmac, &inst.cfg.vmac_name) {
                (true, v) => v.clone(),
                _ => inst.cfg.interface.clone(),
            };
            let repeat = u8::try_from(inst.cfg.garp_repeat.max(1)).unwrap_or(u8::MAX);
            let inst = &mut self.insts[i];
            inst.vips_restored = inst.vips_restored.saturating_add(n);
            let total = inst.vips_restored;
            if let Verdict::Allow { suppressed } = self.restore_log.check(i, now) {
                let more = if suppressed > 0 {
                    format!(" ({suppressed} more rounds since the last line)")
                } else {
                    String::new()
                };
                warn!(target: &name,
                    "VIP deleted under the master by another process or the kernel: {lost} on {ifname}; added back and announced ({total} in all){more}");
            }
            self.announce(i, repeat);
        }
    }

    /// Leaving Master (RFC 5798 6.4.3): the VIPs come off, only if we put them there.
    pub(super) fn remove_vips(&mut self, i: usize) {
        let inst = &mut self.insts[i];
        if !inst.vips_installed {
            return;
        }
        inst.vips_installed = false;
        inst.vip_refreshed = None;
        // No RA after the address is gone; none with lifetime 0 either: the next master
        // advertises from the same address (`router_adverts`).
        if let Some(ra) = &mut inst.ra {
            ra.stop();
        }
        self.remove_routes(i, RouteSet::Master);
        let inst = &mut self.insts[i];
        let ifindex = if inst.cfg.use_vmac {
            inst.vmac
        } else {
            self.ifaces[inst.iface].ifindex
        };
        for vip in &inst.cfg.vips {
            let Some(ifindex) = vip_dev_ifindex(&mut self.south, vip, ifindex) else {
                continue;
            };
            match self.south.del_address(ifindex, vip.addr, vip.prefix_len) {
                Ok(()) | Err(Errno::EADDRNOTAVAIL) | Err(Errno::ENODEV) => {}
                Err(e) => warn!(target: &inst.cfg.name, "remove VIP {}: {e}", vip.addr),
            }
        }
    }
}

impl<S: Southbound> Vrrp<S> {
    fn routes_installed(&mut self, i: usize, set: RouteSet) -> &mut bool {
        let inst = &mut self.insts[i];
        match set {
            RouteSet::Master => &mut inst.routes_installed,
            RouteSet::Backup => &mut inst.backup_routes_installed,
        }
    }

    /// Add the routes and rules of `set` (once: a second call while they are installed does
    /// nothing).
    pub(super) fn install_routes(&mut self, i: usize, set: RouteSet) {
        let installed = self.routes_installed(i, set);
        if *installed {
            return;
        }
        *installed = true;
        let inst = &self.insts[i];
        let default = self.ifaces[inst.iface].ifindex;
        for r in set.of(&inst.cfg) {
            add_route(&mut self.south, &inst.cfg.name, r, default);
        }
        for r in set.rules(&inst.cfg) {
            add_rule(&mut self.south, &inst.cfg.name, r);
        }
    }

    /// A reload changed the routes or rules of a running instance (`old` is the config
    /// those in the kernel came from): for the sets installed now, the ones no longer
    /// configured come out and the new ones go in; the ones in both stay untouched, so
    /// their traffic never sees a gap.
    pub(super) fn replace_routes(&mut self, i: usize, old: Arc<model::Instance>) {
        for set in [RouteSet::Master, RouteSet::Backup] {
            if !*self.routes_installed(i, set) {
                continue;
            }
            let inst = &self.insts[i];
            let (name, default) = (&inst.cfg.name, self.ifaces[inst.iface].ifindex);
            let (now_rules, old_rules) = (set.rules(&inst.cfg), set.rules(&old));
            for r in old_rules.iter().filter(|r| !now_rules.contains(r)) {
                del_rule(&mut self.south, name, r);
            }
            let (now_routes, old_routes) = (set.of(&inst.cfg), set.of(&old));
            for r in old_routes.iter().filter(|r| !now_routes.contains(r)) {
                del_route(&mut self.south, name, r, default);
            }
            for r in now_routes.iter().filter(|r| !old_routes.contains(r)) {
                add_route(&mut self.south, name, r, default);
            }
            for r in now_rules.iter().filter(|r| !old_rules.contains(r)) {
                add_rule(&mut self.south, name, r);
            }
        }
    }

    /// Remove the rules and routes of `set`, only if we installed them.
    pub(super) fn remove_routes(&mut self, i: usize, set: RouteSet) {
        let installed = self.routes_installed(i, set);
        if !*installed {
            return;
        }
        *installed = false;
        let inst = &self.insts[i];
        for r in set.rules(&inst.cfg) {
            del_rule(&mut self.south, &inst.cfg.name, r);
        }
        let default = self.ifaces[inst.iface].ifindex;
        for r in set.of(&inst.cfg) {
            del_route(&mut self.south, &inst.cfg.name, r, default);
        }
    }
}

/// Add route `r` of instance `name`, logging a failure (`default`: the instance's interface).
fn add_route<S: Southbound>(south: &mut S, name: &str, r: &model::Route, default: Option<u32>) {
    let Some(attrs) = route_attrs(south, r, default) else {
        error!(target: name, "add route {}: no interface", r);
        return;
    };
    if let Err(e) = south.add_route(&attrs) {
        error!(target: name, "add route {}: {e}", r);
    }
}

/// Remove route `r` of instance `name`; one already gone is fine.
fn del_route<S: Southbound>(south: &mut S, name: &str, r: &model::Route, default: Option<u32>) {
    let Some(attrs) = route_attrs(south, r, default) else {
        return;
    };
    match south.del_route(&attrs) {
        // Gone already: its interface went away, or a route with the same destination
        // replaced it.
        Ok(()) | Err(Errno::ESRCH) | Err(Errno::ENODEV) => {}
        Err(e) => warn!(target: name, "remove route {}: {e}", r),
    }
}

/// Add rule `r` of instance `name`, logging a failure.
fn add_rule<S: Southbound>(south: &mut S, name: &str, r: &model::Rule) {
    match south.add_rule(&rule_attrs(r)) {
        // Left by a run that crashed after adding it: it is the same rule.
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => error!(target: name, "add rule {}: {e}", r),
    }
}

/// Remove rule `r` of instance `name`; one already gone (removed by hand) is fine.
fn del_rule<S: Southbound>(south: &mut S, name: &str, r: &model::Rule) {
    match south.del_rule(&rule_attrs(r)) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => warn!(target: name, "remove rule {}: {e}", r),
    }
}

/// A configured route as the kernel takes it: `dev` looked up by name; without `dev` and
/// `via` the route is on `default` (the instance's interface). `None` when an interface
/// named is missing.
fn route_attrs<S: Southbound>(
    south: &mut S,
    r: &model::Route,
    default: Option<u32>,
) -> Option<RouteAttrs> {
    let oif = match (&r.dev, r.via) {
        (Some(d), _) => Some(south.link(d).ok().flatten()?.ifindex),
        (None, Some(_)) => None,
        (None, None) => Some(default?),
    };
    Some(RouteAttrs {
        dest: r.dest,
        prefix: r.prefix_len,
        gateway: r.via,
        oif,
        metric: r.metric,
        table: r.table,
    })
}

/// A configured rule as the kernel takes it (interfaces stay names: rules match by name).
fn rule_attrs(r: &model::Rule) -> RuleAttrs<'_> {
    RuleAttrs {
        ipv6: r.family == model::Family::Ipv6,
        invert: r.invert,
        src: r.from,
        dst: r.to,
        iif: r.iif.as_deref(),
        oif: r.oif.as_deref(),
        fwmark: r.fwmark.map(|(m, _)| m),
        fwmask: r.fwmark.and_then(|(_, k)| k),
        priority: r.priority,
        table: r.table,
    }
}

/// The interface a VIP goes on: its own `dev` (looked up when needed: VIPs move rarely),
/// else `default` (the instance's interface or VMAC).
fn vip_dev_ifindex<S: Southbound>(
    south: &mut S,
    vip: &model::Vip,
    default: Option<u32>,
) -> Option<u32> {
    match &vip.dev {
        Some(d) => south.link(d).ok().flatten().map(|l| l.ifindex),
        None => default,
    }
}
