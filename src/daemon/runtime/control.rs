//! The daemon's side of the control socket: the runtime implements
//! [`Controlled`](crate::control::Controlled) here, so the runtime's own file keeps only the
//! hook lines that route the socket's tokens, timer and queued requests to this file.
//!
//! Maintenance mode and priority overrides are runtime state kept here by instance name:
//! the state machines hold them too, and [`Daemon::control_reapply`] gives them back to
//! instances a reload re-created, so both survive SIGHUP (not a restart).

use std::path::Path;

use log::{info, warn};

use super::{Daemon, Event};
use crate::base::Instant;
use crate::check::Health;
use crate::config::model;
use crate::control::status::*;
use crate::control::{dispatch, Controlled, Response};
use crate::daemon::control_server::{ControlServer, Pending};
use crate::daemon::event_loop::{Ctx, Inbox, Read};
use crate::daemon::Ready;
use crate::vrrp::instance::Input;
use crate::vrrp::wire::DropCounters;

/// How long a daemon started while another one still listens on the socket path keeps trying
/// to take it over (a package upgrade: procd starts the new binary while the old one sends its
/// priority-0 adverts and removes its VIPs), and how often. The old one leaves within its
/// term_timeout (10 s in the init script).
const TAKEOVER_FOR: crate::base::Duration = crate::base::Duration::from_secs(30);
const TAKEOVER_EVERY: crate::base::Duration = crate::base::Duration::from_millis(250);
/// The takeover retries' timer (the server's own is timer 0).
const TAKEOVER_TIMER: crate::daemon::TimerId = crate::daemon::ids::Part::Control.timer(1);

/// What the operator has set, plus the socket.
pub struct Control {
    server: Option<ControlServer>,
    /// The socket path while another daemon holds it, and until when to retry.
    takeover: Option<(std::path::PathBuf, Instant)>,
    started: Instant,
    maintenance: bool,
    /// `priority NAME PRIO` overrides by instance name.
    overrides: Vec<(String, u8)>,
}

impl Control {
    /// Create the socket. Failing to is logged, not fatal: the addresses matter more than
    /// the operator's view of them (e.g. a second daemon started on the same socket path).
    pub fn bind(socket: &Path, now: Instant) -> Result<Control, String> {
        let mut takeover = None;
        let server = match ControlServer::bind(socket) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                warn!(
                    "control socket {}: {e}; taking it over when that daemon leaves",
                    socket.display()
                );
                takeover = Some((socket.to_path_buf(), now + TAKEOVER_FOR));
                None
            }
            Err(e) => {
                log::error!(
                    "control socket {}: {e}; running without it",
                    socket.display()
                );
                None
            }
        };
        Ok(Control {
            server,
            takeover,
            started: now,
            maintenance: false,
            overrides: Vec::new(),
        })
    }
}

fn ms(d: crate::base::Duration) -> u64 {
    d.as_millis() as u64
}

impl<S: crate::daemon::kernel::Southbound> Daemon<S> {
    pub(super) fn control_start(&mut self, ctx: &mut Ctx, now: Instant) {
        if let Some(s) = self.control.server.as_mut() {
            match s.start(ctx) {
                Ok(()) => info!("control socket {}", s.path().display()),
                Err(e) => warn!("control socket: {e}"),
            }
        } else if self.control.takeover.is_some() {
            let _ = ctx.arm(TAKEOVER_TIMER, now + TAKEOVER_EVERY);
        }
    }

    /// Another daemon held the socket path at start: bind it once that one has left, or
    /// give up after [`TAKEOVER_FOR`].
    fn control_takeover(&mut self, ctx: &mut Ctx, now: Instant) {
        let Some((path, until)) = self.control.takeover.take() else {
            return;
        };
        match ControlServer::bind(&path) {
            Ok(s) => {
                self.control.server = Some(s);
                self.control_start(ctx, now);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && now < until => {
                self.control.takeover = Some((path, until));
                let _ = ctx.arm(TAKEOVER_TIMER, now + TAKEOVER_EVERY);
            }
            Err(e) => log::error!("control socket {}: {e}; running without it", path.display()),
        }
    }

    /// Close the clients and remove the socket file.
    pub(super) fn control_stop(&mut self, ctx: &mut Ctx) {
        if let Some(mut s) = self.control.server.take() {
            s.stop(ctx);
        }
        self.control.takeover = None;
        ctx.cancel(TAKEOVER_TIMER);
    }

    pub(super) fn control_readable(
        &mut self,
        ctx: &mut Ctx,
        inbox: &mut Inbox<'_, Event>,
        index: u32,
        ready: Ready,
        now: Instant,
    ) -> Read {
        let Some(s) = self.control.server.as_mut() else {
            return Read::Drained;
        };
        let (read, pending) = s.on_readable(ctx, index, ready, now);
        if let Some(p) = pending {
            // Carried out after this turn's due timers (the loop's order), never before. A
            // full queue (a flood on the LAN) gets the client an answer to retry on.
            if !inbox.push(Event::Control(p.clone())) {
                s.refuse_busy(ctx, &p);
            }
        }
        read
    }

    pub(super) fn control_input(&mut self, ctx: &mut Ctx, p: Pending, now: Instant) {
        let response = dispatch(self, ctx, p.request.clone(), now);
        if let Some(s) = self.control.server.as_mut() {
            s.respond(ctx, &p, &response);
        }
    }

    pub(super) fn control_timer(
        &mut self,
        ctx: &mut Ctx,
        id: crate::daemon::TimerId,
        now: Instant,
    ) {
        if id == TAKEOVER_TIMER {
            self.control_takeover(ctx, now);
        } else if let Some(s) = self.control.server.as_mut() {
            s.on_timer(ctx, now);
        }
    }

    /// After a reload: maintenance and overrides again for every instance (idempotent for
    /// the ones that kept their state machine; an override of a removed instance is dropped).
    pub(super) fn control_reapply(&mut self, ctx: &mut Ctx, now: Instant) {
        let names: Vec<String> = self.cfg_instance_names();
        self.control
            .overrides
            .retain(|(n, _)| names.iter().any(|m| m == n));
        for (i, name) in names.iter().enumerate() {
            let o = self
                .control
                .overrides
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| *p);
            self.vrrp
                .feed_instance(ctx, i, Input::PriorityOverride(o), now);
            self.vrrp
                .feed_instance(ctx, i, Input::Maintenance(self.control.maintenance), now);
        }
    }

    fn cfg_instance_names(&self) -> Vec<String> {
        (0..self.vrrp.instance_count())
            .map(|i| self.vrrp.instance_name(i).to_string())
            .collect()
    }

    fn instance_index(&self, name: &str) -> Option<usize> {
        (0..self.vrrp.instance_count()).find(|&i| self.vrrp.instance_name(i) == name)
    }

    fn instance_status(&self, i: usize, now: Instant) -> Option<InstanceStatus> {
        let v = self.vrrp.instance_view(i)?;
        // A dual-stack instance: its IPv4 router speaks for it, the counters, drops and
        // VIPs are both routers', and `families` shows each router.
        let mut c = v.fsm.counters();
        // The RAs are the IPv6 router's.
        let ra = v.ra.or(v.ipv6.as_ref().and_then(|p| p.ra));
        let mut drops = v.drops.clone();
        let mut vips: Vec<&model::Vip> = v.cfg.vips.iter().collect();
        let mut vips_installed = v.vips_installed;
        let mut families = Vec::new();
        if let Some(p) = &v.ipv6 {
            let pc = p.fsm.counters();
            c.adverts_tx = c.adverts_tx.wrapping_add(pc.adverts_tx);
            c.adverts_rx = c.adverts_rx.wrapping_add(pc.adverts_rx);
            c.adverts_discarded = c.adverts_discarded.wrapping_add(pc.adverts_discarded);
            c.priority_zero_tx = c.priority_zero_tx.wrapping_add(pc.priority_zero_tx);
            c.priority_zero_rx = c.priority_zero_rx.wrapping_add(pc.priority_zero_rx);
            drops.add(p.drops);
            vips.extend(p.cfg.vips.iter());
            vips_installed &= p.vips_installed;
            for (family, fsm, installed) in [
                ("ipv4", v.fsm, v.vips_installed),
                ("ipv6", p.fsm, p.vips_installed),
            ] {
                families.push(FamilyStatus {
                    family: family.to_string(),
                    state: fsm.state().to_string(),
                    master: fsm.master_address(),
                    vips_installed: installed,
                });
            }
        }
        // The router that moved first into the instance's state tells why (the other
        // followed it); for a single-family instance, its only router.
        let lead = match &v.ipv6 {
            Some(p) if p.fsm.state() == v.fsm.state() => {
                let key = |f: &crate::vrrp::instance::Instance| {
                    f.last_change()
                        .map(|(t, r)| (t, r == crate::vrrp::instance::Reason::SyncGroup))
                };
                if key(p.fsm) < key(v.fsm) {
                    p.fsm
                } else {
                    v.fsm
                }
            }
            _ => v.fsm,
        };
        let master = v
            .fsm
            .master_address()
            .or_else(|| v.ipv6.as_ref().and_then(|p| p.fsm.master_address()));
        let (since, reason) = match lead.last_change() {
            Some((t, r)) => (t, r.to_string()),
            None => (self.control.started, "not started".to_string()),
        };
        let trackers = self
            .tracking
            .tracker_views(i, &self.cfg)
            .into_iter()
            .map(|t| {
                let (contribution, fault) = match t.effect {
                    crate::check::track::Effect::Delta(d) => (d, false),
                    crate::check::track::Effect::Fault => (0, true),
                };
                TrackerStatus {
                    kind: t.kind.to_string(),
                    name: t.name,
                    weight: t.weight,
                    state: t.state,
                    contribution,
                    fault,
                }
            })
            .collect();
        Some(InstanceStatus {
            name: v.cfg.name.clone(),
            interface: v.cfg.interface.clone(),
            vrid: v.cfg.vrid,
            version: match v.cfg.version {
                model::VrrpVersion::V2 => 2,
                model::VrrpVersion::V3 => 3,
            },
            state: v.fsm.state().to_string(),
            since_ms: ms(now.saturating_duration_since(since)),
            reason,
            master,
            base_priority: v.cfg.priority,
            priority_override: v.fsm.priority_override(),
            effective_priority: v.fsm.priority(),
            trackers,
            vips: vips
                .iter()
                .map(|a| format!("{}/{}", a.addr, a.prefix_len))
                .collect(),
            vips_installed,
            pre_master_running: v.pre_master_running,
            advert_int_ms: ms(v.cfg.advert_int) as u32,
            timer_late_worst_us: self.late_worst.get(i).map_or(0, |d| d.as_micros() as u64),
            master_advert_int_ms: ms(v.fsm.master_adver_interval()) as u32,
            drops: drop_list(&drops),
            auth_hmac: auth_status(&v),
            families,
            counters: InstanceCounters {
                adverts_sent: c.adverts_tx,
                adverts_received: c.adverts_rx,
                adverts_discarded: c.adverts_discarded,
                priority_zero_sent: c.priority_zero_tx,
                priority_zero_received: c.priority_zero_rx,
                transitions: c.transitions,
                vips_restored: v
                    .vips_restored
                    .saturating_add(v.ipv6.as_ref().map_or(0, |p| p.vips_restored)),
                ra_sent: ra.map_or(0, |r| r.sent),
                rs_received: ra.map_or(0, |r| r.rs_received),
                rs_rate_limited: ra.map_or(0, |r| r.rs_rate_limited),
            },
        })
    }

    fn virtual_servers(&self) -> Vec<VirtualServerStatus> {
        let lvs = self.lvs.as_ref();
        let active = lvs.is_some_and(|l| l.is_active());
        self.cfg
            .virtual_servers
            .iter()
            .enumerate()
            .map(|(vi, vs)| VirtualServerStatus {
                name: vs.name.clone(),
                service: match vs.service {
                    model::Service::Addr {
                        addr,
                        port,
                        protocol,
                    } => format!(
                        "{}/{}",
                        core::net::SocketAddr::new(addr, port),
                        format!("{protocol:?}").to_lowercase()
                    ),
                    model::Service::Fwmark { mark, .. } => format!("fwmark {mark}"),
                },
                up: lvs.filter(|_| active).and_then(|l| l.quorum_up(vi)),
                real_servers: vs
                    .real_servers
                    .iter()
                    .enumerate()
                    .map(|(ri, rs)| {
                        let up = lvs.filter(|_| active).and_then(|l| l.is_up(vi, ri));
                        let alive = up.unwrap_or(false);
                        RealServerStatus {
                            address: core::net::SocketAddr::new(rs.address, rs.port).to_string(),
                            // The dynamic check's weight once it set one.
                            weight: if alive {
                                lvs.and_then(|l| l.weight(vi, ri)).unwrap_or(rs.weight)
                            } else {
                                0
                            },
                            up,
                            in_kernel: active && (alive || rs.inhibit_on_failure),
                        }
                    })
                    .collect(),
            })
            .collect()
    }
}

impl<S: crate::daemon::kernel::Southbound> Controlled<Ctx> for Daemon<S> {
    fn status(&self, now: Instant) -> StatusDoc {
        let instances = (0..self.vrrp.instance_count())
            .filter_map(|i| self.instance_status(i, now))
            .collect();
        let checks = self
            .checks
            .probe_views()
            .map(|(id, name, h, last)| CheckStatus {
                name: name.to_string(),
                kind: match id {
                    crate::daemon::checks::ProbeId::Script(_) => "script",
                    crate::daemon::checks::ProbeId::Check(_) => "check",
                    crate::daemon::checks::ProbeId::RealServer { .. } => "real_server",
                }
                .to_string(),
                state: match h {
                    Health::Up => "up",
                    Health::Down => "down",
                    Health::Unknown => "unknown",
                }
                .to_string(),
                last_result: last.map(|a| a.reason.to_string()),
                latency_us: last.map(|a| a.elapsed.as_micros() as u64),
                last_ms_ago: last.map(|a| ms(now.saturating_duration_since(a.started))),
                weight: self.checks.weight_set(id),
            })
            .collect();
        let drops = drop_list(&self.vrrp.iface_drops());
        StatusDoc {
            version: env!("CARGO_PKG_VERSION").to_string(),
            router_id: self.cfg.globals.router_id.clone(),
            pid: std::process::id(),
            uptime_ms: ms(now.saturating_duration_since(self.control.started)),
            maintenance: self.control.maintenance,
            instances,
            checks,
            virtual_servers: self.virtual_servers(),
            drops,
            control: self
                .control
                .server
                .as_ref()
                .map(|s| s.stats())
                .unwrap_or_default(),
            timers: self.late,
        }
    }

    fn maintenance(&mut self, ctx: &mut Ctx, on: bool, now: Instant) -> Response {
        let was = self.control.maintenance;
        self.control.maintenance = on;
        for i in 0..self.vrrp.instance_count() {
            self.vrrp.feed_instance(ctx, i, Input::Maintenance(on), now);
        }
        let line = match (was, on) {
            (false, true) => "maintenance on: every instance hands over and stays BACKUP",
            (true, false) => "maintenance off: instances take part in elections again",
            (true, true) => "maintenance was already on",
            (false, false) => "maintenance was already off",
        };
        info!("control: {line}");
        Response::Done(line.to_string())
    }

    fn set_priority(
        &mut self,
        ctx: &mut Ctx,
        name: &str,
        priority: Option<u8>,
        now: Instant,
    ) -> Response {
        let Some(i) = self.instance_index(name) else {
            return Response::Refused(format!("no instance '{name}'"));
        };
        if priority == Some(0) {
            return Response::Refused("priority must be 1..255".into());
        }
        self.control.overrides.retain(|(n, _)| n != name);
        if let Some(p) = priority {
            self.control.overrides.push((name.to_string(), p));
        }
        self.vrrp
            .feed_instance(ctx, i, Input::PriorityOverride(priority), now);
        let effective = self.vrrp.instance_view(i).map_or(0, |v| v.fsm.priority());
        let line = match priority {
            Some(p) => format!("{name}: base priority overridden to {p} (effective {effective})"),
            None => format!("{name}: priority override removed (effective {effective})"),
        };
        info!("control: {line}");
        Response::Done(line)
    }

    fn reload(&mut self, ctx: &mut Ctx, now: Instant) -> Response {
        info!("control: reload requested");
        match Daemon::reload(self, ctx, now) {
            Ok(line) => Response::Done(line.to_string()),
            Err(errors) => Response::ConfigErrors(errors),
        }
    }

    fn garp(&mut self, ctx: &mut Ctx, name: &str, now: Instant) -> Response {
        let Some(i) = self.instance_index(name) else {
            return Response::Refused(format!("no instance '{name}'"));
        };
        let view = self.vrrp.instance_view(i);
        let state = view.as_ref().map(|v| v.fsm.state());
        if view.is_some_and(|v| v.pre_master_running) {
            return Response::Refused(format!(
                "{name} is MASTER but its VIPs are held until notify_pre_master ends: nothing to announce yet"
            ));
        }
        if state != Some(crate::vrrp::instance::State::Master) {
            return Response::Refused(format!(
                "{name} is {}, only a MASTER announces its addresses",
                state.map_or("?".to_string(), |s| s.to_string())
            ));
        }
        self.vrrp.feed_instance(ctx, i, Input::Announce, now);
        let line = format!("{name}: gratuitous ARP / NA sent");
        info!("control: {line}");
        Response::Done(line)
    }
}

/// Every drop counter by reason name, zeros included (a counter that exists from the start
/// is what Prometheus' `rate()` and a JSON consumer expect; the text view hides zeros).
fn drop_list(d: &DropCounters) -> Vec<Counter> {
    d.iter()
        .map(|(r, n)| Counter {
            name: r.as_str().to_string(),
            value: u64::from(n),
        })
        .collect()
}

/// An instance's `auth_hmac` for status: settings without key material, and the outcomes
/// of both routers of a dual-stack instance summed.
fn auth_status(
    v: &crate::daemon::vrrp::InstanceView<'_>,
) -> Option<crate::control::status::AuthStatus> {
    let a = v.cfg.auth_hmac.as_ref()?;
    let mut sum: [(&'static str, u64); 9] = Default::default();
    let routers = [v.auth, v.ipv6.as_ref().and_then(|p| p.auth)];
    for counts in routers.into_iter().flatten() {
        for (slot, (name, n)) in sum.iter_mut().zip(counts.fields()) {
            *slot = (name, slot.1 + u64::from(n));
        }
    }
    Some(crate::control::status::AuthStatus {
        mode: a.mode.as_str().to_string(),
        active_key: a.active_key,
        key_ids: a.keys.iter().map(|k| k.id()).collect(),
        anti_replay: a.anti_replay.as_str().to_string(),
        time_window_s: a.time_window,
        outcomes: sum
            .iter()
            .map(|(name, value)| Counter {
                name: name.to_string(),
                value: *value,
            })
            .collect(),
    })
}
