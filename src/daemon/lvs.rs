//! The daemon's IPVS part: keeps the kernel's IPVS table in line with the configured
//! virtual servers and the health of their real servers.
//!
//! - [`map_config`] turns `config::VirtualServer`/`RealServer` into the reconciler's
//!   `ipvs::VirtualServer` (scheduler, persistence, forwarding per real server, quorum,
//!   hysteresis, sorry server, cleanup).
//! - [`Lvs::start`] opens the IPVS generic-netlink client once. A kernel without ip_vs is
//!   logged once and the part stays idle: VRRP keeps running. Otherwise it reconciles at
//!   once, adopting (and correcting) services we own that already exist; services that are
//!   not in the configuration are never touched.
//! - [`Lvs::set_check_health`] takes the check engine's verdict for `ProbeId::RealServer { vs, rs }`.
//!   A change marks the table dirty and arms the part's one timer at `now`, so any number of
//!   health changes in one loop turn cost one dump + reconcile + apply on the next turn.
//! - The same timer does a periodic resync ([`RESYNC_INTERVAL`]) that repairs the table if
//!   someone else changed our services, and retries sooner ([`RETRY_INTERVAL`]) after a
//!   failure. Every change is logged with its reason, and quorum transitions are logged.
//! - [`Lvs::reload`] cleans up virtual servers that left the configuration (honouring their
//!   `cleanup` flag) and reconciles the rest; [`Lvs::shutdown`] deletes the services with
//!   `cleanup` set.
//!
//! Health: a real server without a check is always up; one with a check starts up (keepalived
//! without `alpha`: `Health::Unknown` counts as up) until its check says otherwise.
//!
//! A sync allocates (the dumped table, the change list): it runs on health and configuration
//! changes and once a minute, never per packet.

use crate::base::ratelimit::{RateLimiter, Verdict};
use crate::base::{Duration, Instant};
use crate::check::Health;
use crate::config::model as cfg;
use crate::daemon::ids::Part;
use crate::daemon::{Ctx, TimerId};
use crate::ipvs::reconcile::{self, Change, QuorumEvent, Reconciler};
use crate::ipvs::{
    Family, IpvsError, Persistence, RealServer, Service, ServiceKey, SorryServer, VirtualServer,
};

pub use super::kernel::IpvsTable;
use super::kernel::KernelIpvs;

/// The part's one loop timer: the next sync (at `now` when dirty, else the periodic resync).
pub const TIMER: TimerId = Part::Lvs.timer(0);
/// Periodic resync: one dump when nothing changed (a few netlink round trips).
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(60);
/// Next attempt after a sync that failed (kernel refusal, dump error).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// The same error is logged at most once per this interval while it keeps failing.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The log target: lines read `I ipvs: ...`.
const LOG: &str = "ipvs";

/// Whether a check verdict puts a real server in the pool: only `Down` takes it out
/// (keepalived without `alpha` assumes a server up until its first check fails).
pub fn health_is_up(h: Health) -> bool {
    h != Health::Down
}

fn service_key(s: &cfg::Service) -> ServiceKey {
    match *s {
        cfg::Service::Addr {
            addr,
            port,
            protocol: p,
        } => ServiceKey::Addr {
            protocol: p,
            addr,
            port,
        },
        cfg::Service::Fwmark { mark, family } => ServiceKey::Fwmark {
            family: match family {
                cfg::Family::Ipv4 => Family::Ipv4,
                cfg::Family::Ipv6 => Family::Ipv6,
            },
            mark,
        },
    }
}

/// One configured virtual server as the reconciler's value.
pub fn map_virtual_server(vs: &cfg::VirtualServer) -> VirtualServer {
    let key = service_key(&vs.service);
    let mut service = Service::new(key, vs.scheduler);
    // The netmask only means something with persistence on (ipvsadm -M needs -p too).
    service.persistence = vs.persistence_timeout.map(|t| {
        let max = key.family().max_prefix();
        Persistence {
            timeout: u32::try_from(t.as_secs()).unwrap_or(u32::MAX),
            prefix: vs.persistence_netmask.unwrap_or(max).min(max),
        }
    });
    let service_port = match vs.service {
        cfg::Service::Addr { port, .. } => port,
        cfg::Service::Fwmark { .. } => 0,
    };
    let mut out = VirtualServer::new(service);
    out.real_servers = vs
        .real_servers
        .iter()
        .map(|rs| RealServer {
            addr: rs.address,
            port: rs.port,
            weight: rs.weight,
            forwarding: rs.forwarding,
            inhibit_on_failure: rs.inhibit_on_failure,
        })
        .collect();
    out.quorum = vs.quorum;
    out.hysteresis = vs.hysteresis;
    // A sorry server without a port serves on the service's port, as a real server does.
    out.sorry_server = vs.sorry_server.map(|(addr, port)| SorryServer {
        addr,
        port: port.unwrap_or(service_port),
        forwarding: vs.forwarding,
    });
    out.cleanup = vs.cleanup;
    out
}

/// Every configured virtual server as the reconciler's value, in config order (so index `vs`
/// of `ProbeId::RealServer` is the same here). Two virtual servers that are the same kernel
/// service cannot both be honoured: that is refused.
pub fn map_config(config: &cfg::Config) -> Result<Vec<VirtualServer>, String> {
    let out: Vec<VirtualServer> = config
        .virtual_servers
        .iter()
        .map(map_virtual_server)
        .collect();
    for (i, vs) in out.iter().enumerate() {
        if let Some(j) = out[..i]
            .iter()
            .position(|o| o.service.key == vs.service.key)
        {
            return Err(format!(
                "virtual servers '{}' and '{}' are the same IPVS service {}",
                config.virtual_servers[j].name, config.virtual_servers[i].name, vs.service.key
            ));
        }
    }
    Ok(out)
}

/// Where the kernel side stands.
enum Kernel {
    /// `start` not called yet.
    NotStarted,
    /// No IPVS in this kernel (or the socket could not be opened): logged once, idle.
    Unavailable,
    Open(Box<dyn IpvsTable>),
}

/// Counters for the state dump.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LvsStats {
    /// Syncs run (dump + reconcile + apply).
    pub syncs: u64,
    /// Changes applied successfully.
    pub changes: u64,
    /// Dumps or changes that failed.
    pub errors: u64,
}

/// What the notifier must hear (`notify_up` / `notify_down`, `quorum_up` / `quorum_down`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LvsEvent {
    /// Real server `rs` of virtual server `vs` passed or failed its check.
    RealServer { vs: u16, rs: u16, up: bool },
    /// Virtual server `vs` regained or lost quorum.
    Quorum { vs: u16, event: QuorumEvent },
}

/// Events kept for the notifier between two settles; past that the oldest go (the newest
/// state is the one a script must end up seeing).
const MAX_EVENTS: usize = 64;

/// The IPVS part of the daemon.
pub struct Lvs {
    servers: Vec<VirtualServer>,
    /// Per virtual server, per real server: has a health check (else always up).
    checked: Vec<Vec<bool>>,
    /// Per virtual server, per real server: the last health verdict.
    up: Vec<Vec<bool>>,
    reconciler: Reconciler,
    kernel: Kernel,
    /// Health or configuration changed since the last sync.
    dirty: bool,
    errors: RateLimiter<IpvsError, 8>,
    stats: LvsStats,
    /// For the notifier, oldest first ([`Lvs::take_event`]).
    events: heapless::Deque<LvsEvent, MAX_EVENTS>,
}

impl Lvs {
    /// The part for `config`, or `None` when it has no virtual servers (then the daemon never
    /// opens a generic-netlink socket).
    pub fn new(config: &cfg::Config) -> Result<Option<Lvs>, String> {
        if config.virtual_servers.is_empty() {
            return Ok(None);
        }
        let servers = map_config(config)?;
        let checked = checked_map(config);
        let up = checked.iter().map(|v| vec![true; v.len()]).collect();
        Ok(Some(Lvs {
            servers,
            checked,
            up,
            reconciler: Reconciler::new(),
            kernel: Kernel::NotStarted,
            dirty: true,
            errors: RateLimiter::new(ERROR_LOG_INTERVAL),
            stats: LvsStats::default(),
            events: heapless::Deque::new(),
        }))
    }

    /// Opens the kernel's IPVS through the daemon's kernel seam and reconciles at once.
    pub fn start(&mut self, ctx: &mut Ctx, now: Instant, kernel: &mut dyn KernelIpvs) {
        let table = kernel.open_ipvs();
        self.start_with(ctx, now, table);
    }

    /// [`start`](Self::start) with the table given (tests pass a simulated one).
    pub fn start_with(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        table: Result<Box<dyn IpvsTable>, IpvsError>,
    ) {
        match table {
            Ok(t) => {
                log::info!(
                    target: LOG,
                    "{} virtual server{} configured; reconciling with the kernel",
                    self.servers.len(),
                    if self.servers.len() == 1 { "" } else { "s" }
                );
                self.kernel = Kernel::Open(t);
                self.dirty = true;
                self.sync(ctx, now);
            }
            Err(IpvsError::NotAvailable) => {
                log::error!(
                    target: LOG,
                    "kernel has no IPVS (ip_vs module not loaded); virtual servers disabled, VRRP keeps running"
                );
                self.kernel = Kernel::Unavailable;
            }
            Err(e) => {
                log::error!(
                    target: LOG,
                    "cannot open IPVS: {e}; virtual servers disabled, VRRP keeps running"
                );
                self.kernel = Kernel::Unavailable;
            }
        }
    }

    /// Whether the kernel side is usable (false before `start` and without ip_vs).
    pub fn is_active(&self) -> bool {
        matches!(self.kernel, Kernel::Open(_))
    }

    /// The configured virtual servers as the reconciler sees them.
    pub fn servers(&self) -> &[VirtualServer] {
        &self.servers
    }

    /// Whether real server `rs` of virtual server `vs` is currently counted as up.
    pub fn is_up(&self, vs: usize, rs: usize) -> Option<bool> {
        self.up.get(vs)?.get(rs).copied()
    }

    /// Whether quorum holds for virtual server `vs` (None before its first sync).
    pub fn quorum_up(&self, vs: usize) -> Option<bool> {
        let key = self.servers.get(vs)?.service.key;
        self.reconciler.quorum_up(&key)
    }

    pub fn stats(&self) -> LvsStats {
        self.stats
    }

    /// State for SIGUSR1: per virtual server its quorum and alive real servers.
    pub fn dump(&self) {
        let state = match self.kernel {
            Kernel::NotStarted => "not started",
            Kernel::Unavailable => "disabled (no IPVS)",
            Kernel::Open(_) => "active",
        };
        log::info!(
            target: LOG,
            "{state}; syncs {} changes {} errors {}",
            self.stats.syncs,
            self.stats.changes,
            self.stats.errors
        );
        for (vi, vs) in self.servers.iter().enumerate() {
            let alive = self.up[vi].iter().filter(|u| **u).count();
            let quorum = match self.reconciler.quorum_up(&vs.service.key) {
                Some(true) => "up",
                Some(false) => "lost",
                None => "unknown",
            };
            log::info!(
                target: LOG,
                "virtual server {} {}: {alive}/{} real servers up, quorum {quorum}",
                vs.service.key,
                vs.service.scheduler.name(),
                vs.real_servers.len()
            );
        }
    }

    /// The check engine's verdict for `ProbeId::RealServer { vs, rs }`. A change is synced on
    /// the next loop turn (one sync however many verdicts arrive in this turn).
    pub fn set_health(&mut self, ctx: &mut Ctx, vs: u16, rs: u16, up: bool, now: Instant) {
        let (vi, ri) = (usize::from(vs), usize::from(rs));
        let Some(slot) = self.up.get_mut(vi).and_then(|v| v.get_mut(ri)) else {
            log::debug!(target: LOG, "health for unknown real server {vs}/{rs} ignored");
            return;
        };
        // A real server without a check is always up, whatever is reported for it.
        if !self.checked[vi][ri] || *slot == up {
            return;
        }
        *slot = up;
        let vs_cfg = &self.servers[vi];
        let rs_cfg = &vs_cfg.real_servers[ri];
        log::info!(
            target: LOG,
            "real server {} of {} is {} (health check)",
            crate::ipvs::SockAddr(rs_cfg.addr, rs_cfg.port),
            vs_cfg.service.key,
            if up { "up" } else { "down" }
        );
        self.push_event(LvsEvent::RealServer { vs, rs, up });
        self.mark_dirty(ctx, now);
    }

    /// The weight a `dynamic` script check set for real server `rs` of `vs` (keepalived
    /// `misc_dynamic`): programmed on the next sync in place of the configured one. `None`
    /// (no weight set yet) leaves the weight as it is. Lasts until a reload rebuilds the
    /// servers; the runtime then hands the check engine's current weights back.
    pub fn set_weight(
        &mut self,
        ctx: &mut Ctx,
        vs: u16,
        rs: u16,
        weight: Option<u32>,
        now: Instant,
    ) {
        let (vi, ri) = (usize::from(vs), usize::from(rs));
        let (Some(w), Some(rs_cfg)) = (
            weight,
            self.servers
                .get_mut(vi)
                .and_then(|v| v.real_servers.get_mut(ri)),
        ) else {
            return;
        };
        if rs_cfg.weight == w {
            return;
        }
        rs_cfg.weight = w;
        log::info!(
            target: LOG,
            "real server {} of {}: weight {w} (check)",
            crate::ipvs::SockAddr(rs_cfg.addr, rs_cfg.port),
            self.servers[vi].service.key,
        );
        self.mark_dirty(ctx, now);
    }

    /// The weight real server `rs` of `vs` is programmed with while up: the configured one,
    /// or the one its dynamic check set.
    pub fn weight(&self, vs: usize, rs: usize) -> Option<u32> {
        Some(self.servers.get(vs)?.real_servers.get(rs)?.weight)
    }

    fn push_event(&mut self, e: LvsEvent) {
        if self.events.is_full() {
            let _ = self.events.pop_front();
        }
        let _ = self.events.push_back(e);
    }

    /// The next health or quorum change for the notifier, oldest first.
    pub fn take_event(&mut self) -> Option<LvsEvent> {
        self.events.pop_front()
    }

    /// [`set_health`](Self::set_health) from a `check::Health`.
    pub fn set_check_health(&mut self, ctx: &mut Ctx, vs: u16, rs: u16, h: Health, now: Instant) {
        self.set_health(ctx, vs, rs, health_is_up(h), now);
    }

    fn mark_dirty(&mut self, ctx: &mut Ctx, now: Instant) {
        self.dirty = true;
        if self.is_active() {
            arm(ctx, now);
        }
    }

    /// The part's timer fired: sync (dirty or periodic resync).
    pub fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant) {
        if id == TIMER {
            self.sync(ctx, now);
        }
    }

    /// Dump, reconcile, apply; then arm the next resync (or a retry after a failure).
    fn sync(&mut self, ctx: &mut Ctx, now: Instant) {
        let ok = self.sync_once(now);
        self.dirty = !ok;
        if self.is_active() {
            let after = if ok { RESYNC_INTERVAL } else { RETRY_INTERVAL };
            arm(ctx, now + after);
        }
    }

    /// One round; false when something failed (the next round retries what is missing).
    fn sync_once(&mut self, now: Instant) -> bool {
        let Kernel::Open(table) = &mut self.kernel else {
            return true;
        };
        self.stats.syncs += 1;
        let up = &self.up;
        let desired = self.reconciler.desired(&self.servers, |v, r| up[v][r]);
        for e in &desired.events {
            if e.up {
                log::info!(target: LOG, "{e}");
            } else {
                log::warn!(target: LOG, "{e}");
            }
            if let Some(vs) = self.servers.iter().position(|v| v.service.key == e.key) {
                if self.events.is_full() {
                    let _ = self.events.pop_front();
                }
                let _ = self.events.push_back(LvsEvent::Quorum {
                    vs: vs as u16,
                    event: *e,
                });
            }
        }
        let kernel = match table.table() {
            Ok(k) => k,
            Err(e) => {
                self.stats.errors += 1;
                log_error(&mut self.errors, e, now);
                return false;
            }
        };
        let changes = reconcile::reconcile(&desired, &kernel);
        apply(
            table.as_mut(),
            &changes,
            &mut self.stats,
            &mut self.errors,
            now,
        )
    }

    /// Takes a new configuration: virtual servers that left it are cleaned up (if their
    /// `cleanup` flag is set), the rest are reconciled (scheduler, persistence, weights...).
    /// Health of real servers that are still configured with a check is kept. On a mapping
    /// error the running state is left untouched and the error returned (the runtime checks
    /// with [`map_config`] before swapping anything, so this is a second line).
    /// `kernel` opens IPVS again if it was unavailable.
    pub fn reload(
        &mut self,
        ctx: &mut Ctx,
        new: &cfg::Config,
        now: Instant,
        kernel: &mut dyn KernelIpvs,
    ) -> Result<(), String> {
        let servers = map_config(new)?;
        let checked = checked_map(new);
        let up: Vec<Vec<bool>> = servers
            .iter()
            .enumerate()
            .map(|(vi, vs)| {
                vs.real_servers
                    .iter()
                    .enumerate()
                    .map(|(ri, rs)| !checked[vi][ri] || self.previous_health(vs, rs))
                    .collect()
            })
            .collect();
        let removed: Vec<VirtualServer> = self
            .servers
            .iter()
            .filter(|o| !servers.iter().any(|n| n.service.key == o.service.key))
            .cloned()
            .collect();
        self.servers = servers;
        self.checked = checked;
        self.up = up;
        self.reopen(kernel);
        if let Kernel::Open(table) = &mut self.kernel {
            if !removed.is_empty() {
                for vs in &removed {
                    log::info!(
                        target: LOG,
                        "virtual server {} left the configuration{}",
                        vs.service.key,
                        if vs.cleanup {
                            ""
                        } else {
                            "; kept in the kernel (cleanup off)"
                        }
                    );
                }
                if let Err(e) = remove_services(
                    table.as_mut(),
                    &removed,
                    &mut self.stats,
                    &mut self.errors,
                    now,
                ) {
                    self.stats.errors += 1;
                    log_error(&mut self.errors, e, now);
                }
            }
        }
        self.mark_dirty(ctx, now);
        if self.is_active() {
            // Reconcile now rather than next turn: the reload's log lines stay together.
            self.sync(ctx, now);
        }
        Ok(())
    }

    /// A reload (even of an unchanged configuration) is the operator's way to say "ip_vs is
    /// loaded now": while IPVS is unavailable, try to open it again and reconcile at once.
    pub fn retry_unavailable(&mut self, ctx: &mut Ctx, now: Instant, kernel: &mut dyn KernelIpvs) {
        if self.reopen(kernel) {
            self.mark_dirty(ctx, now);
            self.sync(ctx, now);
        }
    }

    /// Opens the kernel table again if it was unavailable; true when it just became usable.
    /// A failure is a warning: the start already logged the error.
    fn reopen(&mut self, kernel: &mut dyn KernelIpvs) -> bool {
        if !matches!(self.kernel, Kernel::Unavailable) {
            return false;
        }
        match kernel.open_ipvs() {
            Ok(t) => {
                log::info!(target: LOG, "IPVS is available now; reconciling");
                self.kernel = Kernel::Open(t);
                true
            }
            Err(e) => {
                log::warn!(target: LOG, "still no IPVS ({e}); virtual servers stay disabled");
                false
            }
        }
    }

    /// The last verdict for the same real server (same service, address and port) before a
    /// reload; up when it is new.
    fn previous_health(&self, vs: &VirtualServer, rs: &RealServer) -> bool {
        let Some(vi) = self
            .servers
            .iter()
            .position(|o| o.service.key == vs.service.key)
        else {
            return true;
        };
        match self.servers[vi]
            .real_servers
            .iter()
            .position(|o| o.addr == rs.addr && o.port == rs.port)
        {
            Some(ri) => !self.checked[vi][ri] || self.up[vi][ri],
            None => true,
        }
    }

    /// Deletes the services that have `cleanup` set; others stay so traffic keeps flowing.
    pub fn shutdown(&mut self, ctx: &mut Ctx, now: Instant) {
        ctx.cancel(TIMER);
        let Kernel::Open(table) = &mut self.kernel else {
            return;
        };
        if let Err(e) = remove_services(
            table.as_mut(),
            &self.servers,
            &mut self.stats,
            &mut self.errors,
            now,
        ) {
            self.stats.errors += 1;
            log::error!(target: LOG, "shutdown: {e}");
        }
    }
}

fn arm(ctx: &mut Ctx, at: Instant) {
    if let Err(e) = ctx.arm(TIMER, at) {
        // One timer for the whole part: only a loop already at capacity refuses it.
        log::error!(target: LOG, "cannot arm the IPVS timer: {e}");
    }
}

/// Per virtual server, per real server: whether a health check decides its health.
fn checked_map(config: &cfg::Config) -> Vec<Vec<bool>> {
    config
        .virtual_servers
        .iter()
        .map(|vs| {
            vs.real_servers
                .iter()
                .map(|rs| rs.check.is_some())
                .collect()
        })
        .collect()
}

fn log_error(limiter: &mut RateLimiter<IpvsError, 8>, e: IpvsError, now: Instant) {
    match limiter.check(e, now) {
        Verdict::Allow { suppressed: 0 } => log::error!(target: LOG, "{e}"),
        Verdict::Allow { suppressed } => {
            log::error!(target: LOG, "{e} ({suppressed} more since the last report)")
        }
        Verdict::Suppress => {}
    }
}

/// Applies changes in order, logging each with its reason. A failure skips the remaining
/// changes of the same service only (they usually depend on it, e.g. real servers of a
/// service the kernel refused); other services still get theirs. Returns whether all went in.
/// Deletes from the kernel those of `vss` that have `cleanup` set (one dump, then the deletes);
/// used when virtual servers leave the configuration and at shutdown.
fn remove_services(
    table: &mut dyn IpvsTable,
    vss: &[VirtualServer],
    stats: &mut LvsStats,
    errors: &mut RateLimiter<IpvsError, 8>,
    now: Instant,
) -> Result<(), IpvsError> {
    let kernel = table.table()?;
    let changes = reconcile::cleanup(vss, &kernel);
    apply(table, &changes, stats, errors, now);
    Ok(())
}

fn apply(
    table: &mut dyn IpvsTable,
    changes: &[Change],
    stats: &mut LvsStats,
    errors: &mut RateLimiter<IpvsError, 8>,
    now: Instant,
) -> bool {
    let mut failed: Vec<ServiceKey> = Vec::new();
    for c in changes {
        let key = c.op.key();
        if failed.contains(&key) {
            continue;
        }
        log::info!(target: LOG, "{c}");
        match table.apply_one(&c.op) {
            Ok(()) => stats.changes += 1,
            Err(e) => {
                stats.errors += 1;
                log_error(errors, e, now);
                failed.push(key);
            }
        }
    }
    failed.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::Loop;
    use crate::ipvs::reconcile::KernelService;
    use crate::ipvs::{Forwarding, Op, Protocol, Scheduler};
    use std::cell::RefCell;
    use std::rc::Rc;

    /// The kernel seam's IPVS opener as a closure.
    struct Opens<F>(F);

    impl<F: FnMut() -> Result<Box<dyn IpvsTable>, IpvsError>> KernelIpvs for Opens<F> {
        fn open_ipvs(&mut self) -> Result<Box<dyn IpvsTable>, IpvsError> {
            (self.0)()
        }
    }

    type Refuse = fn(&Op) -> bool;

    /// A kernel table in memory, shared with the test through an Rc so it can be inspected
    /// and changed behind the part's back.
    #[derive(Default)]
    struct Sim {
        table: Vec<KernelService>,
        /// Ops refused with this errno (e.g. a scheduler module that is missing).
        refuse: Option<(Refuse, i32)>,
        ops: usize,
        dumps: usize,
    }

    struct SimTable(Rc<RefCell<Sim>>);

    impl IpvsTable for SimTable {
        fn table(&mut self) -> Result<Vec<KernelService>, IpvsError> {
            let mut s = self.0.borrow_mut();
            s.dumps += 1;
            Ok(s.table.clone())
        }

        fn apply_one(&mut self, op: &Op) -> Result<(), IpvsError> {
            let mut s = self.0.borrow_mut();
            if let Some((pred, errno)) = s.refuse {
                if pred(op) {
                    return Err(op.error(errno));
                }
            }
            s.ops += 1;
            reconcile::simulate(
                &mut s.table,
                &[Change {
                    op: *op,
                    reason: reconcile::Reason::NotConfigured,
                }],
            );
            Ok(())
        }
    }

    const CONFIG: &str = "
config check 'tcp1'
	option type 'tcp'
	option interval '1'

config virtual_server 'web'
	option address '10.0.0.1'
	option port '80'
	option scheduler 'wrr'
	option forwarding 'dr'
	option persistence_timeout '300'
	option persistence_netmask '255.255.255.0'
	option quorum '2'
	option hysteresis '1'
	option sorry_server '10.0.9.9'
	option check 'tcp1'

config real_server 'w1'
	option virtual_server 'web'
	option address '10.0.1.1'
	option weight '2'

config real_server 'w2'
	option virtual_server 'web'
	option address '10.0.1.2'
	option port '8080'
	option weight '1'
	option forwarding 'nat'
	option inhibit_on_failure '1'

config virtual_server 'dns'
	option address 'fd00::53'
	option port '53'
	option protocol 'udp'
	option scheduler 'rr'
	option cleanup '0'

config real_server 'd1'
	option virtual_server 'dns'
	option address 'fd00::1:1'

config virtual_server 'marked'
	option fwmark '7'
	option scheduler 'sh'
	option forwarding 'tun'

config real_server 'm1'
	option virtual_server 'marked'
	option address 'fd00::2:1'
";

    fn config(text: &str) -> cfg::Config {
        cfg::Config::parse_str("test", text).expect("valid test config")
    }

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    fn web_key() -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip("10.0.0.1"),
            port: 80,
        }
    }

    fn started(text: &str) -> (Lvs, Rc<RefCell<Sim>>, Loop<()>) {
        let mut lvs = Lvs::new(&config(text))
            .unwrap()
            .expect("has virtual servers");
        let sim = Rc::new(RefCell::new(Sim::default()));
        let mut lp = Loop::new();
        lvs.start_with(
            lp.ctx(),
            Instant::from_secs(1),
            Ok(Box::new(SimTable(sim.clone()))),
        );
        (lvs, sim, lp)
    }

    fn dests(sim: &Rc<RefCell<Sim>>, key: ServiceKey) -> Vec<(String, u32)> {
        let s = sim.borrow();
        let ks = s
            .table
            .iter()
            .find(|k| k.service.key == key)
            .expect("service in the table");
        let mut v: Vec<(String, u32)> = ks
            .dests
            .iter()
            .map(|d| (d.sockaddr().to_string(), d.weight))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn config_maps_scheduler_persistence_forwarding_quorum_and_sorry_server() {
        let vss = map_config(&config(CONFIG)).unwrap();
        assert_eq!(vss.len(), 3);
        let web = &vss[0];
        assert_eq!(web.service.key, web_key());
        assert_eq!(web.service.scheduler, Scheduler::Wrr);
        assert_eq!(
            web.service.persistence,
            Some(Persistence {
                timeout: 300,
                prefix: 24
            })
        );
        assert_eq!(web.quorum, 2);
        assert_eq!(web.hysteresis, 1);
        assert!(web.cleanup);
        // Sorry server without a port: the service's port, the virtual server's forwarding.
        assert_eq!(
            web.sorry_server,
            Some(SorryServer {
                addr: ip("10.0.9.9"),
                port: 80,
                forwarding: Forwarding::DirectRoute
            })
        );
        // Forwarding per real server: inherited (dr) or its own (nat); port inherited.
        assert_eq!(web.real_servers[0].forwarding, Forwarding::DirectRoute);
        assert_eq!(web.real_servers[0].port, 80);
        assert_eq!(web.real_servers[0].weight, 2);
        assert_eq!(web.real_servers[1].forwarding, Forwarding::Masq);
        assert_eq!(web.real_servers[1].port, 8080);
        assert!(web.real_servers[1].inhibit_on_failure);

        let dns = &vss[1];
        assert_eq!(
            dns.service.key,
            ServiceKey::Addr {
                protocol: Protocol::Udp,
                addr: ip("fd00::53"),
                port: 53
            }
        );
        assert_eq!(dns.service.persistence, None);
        assert!(!dns.cleanup);
        // Default forwarding is NAT.
        assert_eq!(dns.real_servers[0].forwarding, Forwarding::Masq);

        // A fwmark service takes its family from its real servers; port 0.
        let m = &vss[2];
        assert_eq!(
            m.service.key,
            ServiceKey::Fwmark {
                family: Family::Ipv6,
                mark: 7
            }
        );
        assert_eq!(m.real_servers[0].port, 0);
        assert_eq!(m.real_servers[0].forwarding, Forwarding::Tunnel);
    }

    #[test]
    fn persistence_without_netmask_is_per_client_address() {
        let vss = map_config(&config(
            "config virtual_server 'v'\n\toption address 'fd00::1'\n\toption port '443'\n\toption persistence_timeout '60'\n",
        ))
        .unwrap();
        assert_eq!(
            vss[0].service.persistence,
            Some(Persistence {
                timeout: 60,
                prefix: 128
            })
        );
    }

    #[test]
    fn two_virtual_servers_for_one_kernel_service_are_refused() {
        // Validation already refuses this in a file (tests/configs/bad/); the part keeps its own
        // guard for a Config built any other way.
        let text = "config virtual_server 'a'\n\toption address '10.0.0.1'\n\toption port '80'\n\
                    config virtual_server 'b'\n\toption address '10.0.0.2'\n\toption port '80'\n";
        let mut c = config(text);
        c.virtual_servers[1].service = c.virtual_servers[0].service;
        let e = map_config(&c).unwrap_err();
        assert!(e.contains("'a' and 'b'"), "{e}");
        assert!(Lvs::new(&c).is_err());
    }

    #[test]
    fn no_virtual_servers_means_no_part() {
        let c = config("config globals 'globals'\n\toption router_id 'x'\n");
        assert!(Lvs::new(&c).unwrap().is_none());
    }

    #[test]
    fn start_creates_every_service_and_arms_the_resync() {
        let (lvs, sim, mut lp) = started(CONFIG);
        assert!(lvs.is_active());
        assert_eq!(sim.borrow().table.len(), 3);
        assert_eq!(
            dests(&sim, web_key()),
            vec![("10.0.1.1:80".into(), 2), ("10.0.1.2:8080".into(), 1)]
        );
        assert_eq!(
            lp.ctx().deadline(TIMER),
            Some(Instant::from_secs(1) + RESYNC_INTERVAL)
        );
        assert_eq!(lvs.quorum_up(0), Some(true));
    }

    #[test]
    fn not_available_disables_the_part_without_timers() {
        let mut lvs = Lvs::new(&config(CONFIG)).unwrap().unwrap();
        let mut lp: Loop<()> = Loop::new();
        let now = Instant::from_secs(1);
        let mut absent = Opens(|| Err(IpvsError::NotAvailable));
        lvs.start(lp.ctx(), now, &mut absent);
        assert!(!lvs.is_active());
        lvs.set_health(lp.ctx(), 0, 0, false, now);
        assert_eq!(lp.ctx().deadline(TIMER), None);
        // Reload and shutdown are harmless without a kernel.
        lvs.reload(lp.ctx(), &config(CONFIG), now, &mut absent)
            .unwrap();
        assert!(!lvs.is_active());
        lvs.shutdown(lp.ctx(), now);
        assert_eq!(lvs.stats().syncs, 0);
    }

    #[test]
    fn a_reload_after_ip_vs_was_loaded_enables_the_part() {
        let mut lvs = Lvs::new(&config(CONFIG)).unwrap().unwrap();
        let mut lp: Loop<()> = Loop::new();
        let now = Instant::from_secs(1);
        lvs.start(lp.ctx(), now, &mut Opens(|| Err(IpvsError::NotAvailable)));
        assert!(!lvs.is_active());
        // Health learnt while disabled is used once the kernel is there.
        lvs.set_health(lp.ctx(), 0, 0, false, now);
        let sim = Rc::new(RefCell::new(Sim::default()));
        let shared = sim.clone();
        let mut loaded =
            Opens(move || Ok(Box::new(SimTable(shared.clone())) as Box<dyn IpvsTable>));
        lvs.reload(lp.ctx(), &config(CONFIG), now, &mut loaded)
            .unwrap();
        assert!(lvs.is_active());
        assert_eq!(sim.borrow().table.len(), 3);
        // w1 down leaves alive weight 1, below the first evaluation's quorum 2 + 1: the
        // sorry server replaces the pool (w2 inhibited at weight 0).
        assert_eq!(
            dests(&sim, web_key()),
            vec![("10.0.1.2:8080".into(), 0), ("10.0.9.9:80".into(), 1)]
        );
        assert_eq!(lp.ctx().deadline(TIMER), Some(now + RESYNC_INTERVAL));
    }

    #[test]
    fn health_changes_in_one_turn_cost_one_sync_on_the_next() {
        let (mut lvs, sim, mut lp) = started(CONFIG);
        let t = Instant::from_secs(5);
        let dumps = sim.borrow().dumps;
        lvs.set_health(lp.ctx(), 0, 0, false, t);
        lvs.set_health(lp.ctx(), 0, 1, false, t);
        assert_eq!(sim.borrow().dumps, dumps, "nothing synced before the timer");
        assert_eq!(lp.ctx().deadline(TIMER), Some(t));
        lvs.on_timer(lp.ctx(), TIMER, t);
        assert_eq!(sim.borrow().dumps, dumps + 1);
        // Both down: alive weight 0 < quorum 2 - 1, the sorry server replaces the pool;
        // the inhibited server stays at weight 0.
        assert_eq!(
            dests(&sim, web_key()),
            vec![("10.0.1.2:8080".into(), 0), ("10.0.9.9:80".into(), 1)]
        );
        assert_eq!(lvs.quorum_up(0), Some(false));
        assert_eq!(lp.ctx().deadline(TIMER), Some(t + RESYNC_INTERVAL));
        // Recovery: quorum needs 2 + 1 = 3, both servers give 3.
        lvs.set_health(lp.ctx(), 0, 0, true, t);
        lvs.set_health(lp.ctx(), 0, 1, true, t);
        lvs.on_timer(lp.ctx(), TIMER, t);
        assert_eq!(
            dests(&sim, web_key()),
            vec![("10.0.1.1:80".into(), 2), ("10.0.1.2:8080".into(), 1)]
        );
        assert_eq!(lvs.quorum_up(0), Some(true));
    }

    #[test]
    fn a_dynamic_check_weight_is_programmed_on_the_next_sync() {
        let (mut lvs, sim, mut lp) = started(CONFIG);
        let t = Instant::from_secs(5);
        assert_eq!(lvs.weight(0, 0), Some(2), "configured");
        lvs.set_weight(lp.ctx(), 0, 0, Some(10), t);
        assert_eq!(lp.ctx().deadline(TIMER), Some(t), "a sync is due");
        lvs.on_timer(lp.ctx(), TIMER, t);
        assert_eq!(
            dests(&sim, web_key()),
            vec![("10.0.1.1:80".into(), 10), ("10.0.1.2:8080".into(), 1)]
        );
        // `None` (the script has set nothing) and the same weight change nothing.
        let dumps = sim.borrow().dumps;
        lvs.set_weight(lp.ctx(), 0, 0, None, t);
        lvs.set_weight(lp.ctx(), 0, 0, Some(10), t);
        lvs.on_timer(lp.ctx(), TIMER, t + RESYNC_INTERVAL);
        assert_eq!(lvs.weight(0, 0), Some(10));
        assert_eq!(sim.borrow().dumps, dumps + 1, "only the periodic resync");
        // Down still takes the server out (inhibit: weight 0), whatever its weight.
        lvs.set_health(lp.ctx(), 0, 0, false, t);
        lvs.on_timer(lp.ctx(), TIMER, t);
        assert!(!dests(&sim, web_key())
            .iter()
            .any(|d| d == &("10.0.1.1:80".to_string(), 10)));
        // Out of range is ignored.
        lvs.set_weight(lp.ctx(), 7, 7, Some(3), t);
    }

    #[test]
    fn a_real_server_without_a_check_ignores_health_reports() {
        let (mut lvs, _sim, mut lp) = started(CONFIG);
        let t = Instant::from_secs(5);
        let before = lp.ctx().deadline(TIMER);
        // dns/d1 has no check.
        lvs.set_health(lp.ctx(), 1, 0, false, t);
        assert_eq!(lvs.is_up(1, 0), Some(true));
        assert_eq!(lp.ctx().deadline(TIMER), before);
        // Out of range is ignored, not a panic.
        lvs.set_health(lp.ctx(), 9, 9, false, t);
        lvs.set_check_health(lp.ctx(), 0, 9, Health::Down, t);
        assert_eq!(lp.ctx().deadline(TIMER), before);
    }

    #[test]
    fn periodic_resync_repairs_our_service_and_leaves_foreign_ones_alone() {
        let (mut lvs, sim, mut lp) = started(CONFIG);
        let foreign = KernelService {
            service: Service::new(
                ServiceKey::Addr {
                    protocol: Protocol::Tcp,
                    addr: ip("10.9.9.9"),
                    port: 80,
                },
                Scheduler::Rr,
            ),
            dests: Vec::new(),
        };
        {
            let mut s = sim.borrow_mut();
            s.table.retain(|k| k.service.key != web_key());
            s.table.push(foreign.clone());
        }
        let t = Instant::from_secs(1) + RESYNC_INTERVAL;
        lvs.on_timer(lp.ctx(), TIMER, t);
        let s = sim.borrow();
        assert!(s.table.iter().any(|k| k.service.key == web_key()));
        assert!(s.table.contains(&foreign));
    }

    #[test]
    fn a_refused_service_does_not_block_the_others_and_is_retried() {
        let mut lvs = Lvs::new(&config(CONFIG)).unwrap().unwrap();
        let sim = Rc::new(RefCell::new(Sim::default()));
        sim.borrow_mut().refuse = Some((
            |op| matches!(op, Op::AddService(s) if s.scheduler == Scheduler::Sh),
            libc::ENOENT,
        ));
        let mut lp: Loop<()> = Loop::new();
        let t = Instant::from_secs(1);
        lvs.start_with(lp.ctx(), t, Ok(Box::new(SimTable(sim.clone()))));
        assert_eq!(sim.borrow().table.len(), 2);
        assert_eq!(lp.ctx().deadline(TIMER), Some(t + RETRY_INTERVAL));
        assert!(lvs.stats().errors >= 1);
        // The module appears: the retry completes the table.
        sim.borrow_mut().refuse = None;
        lvs.on_timer(lp.ctx(), TIMER, t + RETRY_INTERVAL);
        assert_eq!(sim.borrow().table.len(), 3);
        assert_eq!(
            lp.ctx().deadline(TIMER),
            Some(t + RETRY_INTERVAL + RESYNC_INTERVAL)
        );
    }

    #[test]
    fn reload_changes_scheduler_and_weights_and_cleans_up_removed_servers() {
        let (mut lvs, sim, mut lp) = started(CONFIG);
        let t = Instant::from_secs(5);
        lvs.set_health(lp.ctx(), 0, 0, false, t);
        lvs.on_timer(lp.ctx(), TIMER, t);
        // New config: web uses lc, w2 weight 5, 'marked' (cleanup on) and 'dns' (cleanup
        // off) are gone.
        let new = CONFIG
            .replace("option scheduler 'wrr'", "option scheduler 'lc'")
            .replace(
                "option weight '1'\n\toption forwarding 'nat'",
                "option weight '5'\n\toption forwarding 'nat'",
            );
        let new = &new[..new.find("config virtual_server 'dns'").unwrap()];
        lvs.reload(
            lp.ctx(),
            &config(new),
            t,
            &mut Opens(|| Err(IpvsError::NotAvailable)),
        )
        .unwrap();
        let s = sim.borrow();
        let web = s.table.iter().find(|k| k.service.key == web_key()).unwrap();
        assert_eq!(web.service.scheduler, Scheduler::Lc);
        assert!(!s
            .table
            .iter()
            .any(|k| matches!(k.service.key, ServiceKey::Fwmark { .. })));
        // dns has cleanup off: it stays.
        assert_eq!(s.table.len(), 2);
        drop(s);
        // w1's down verdict survived the reload; w2 got its new weight.
        assert_eq!(lvs.is_up(0, 0), Some(false));
        assert_eq!(dests(&sim, web_key()), vec![("10.0.1.2:8080".into(), 5)]);
    }

    #[test]
    fn shutdown_removes_services_with_cleanup_only() {
        let (mut lvs, sim, mut lp) = started(CONFIG);
        lvs.shutdown(lp.ctx(), Instant::from_secs(9));
        let s = sim.borrow();
        assert_eq!(s.table.len(), 1);
        assert!(matches!(
            s.table[0].service.key,
            ServiceKey::Addr {
                protocol: Protocol::Udp,
                ..
            }
        ));
        assert_eq!(lp.ctx().deadline(TIMER), None);
    }

    #[test]
    fn health_and_quorum_changes_are_events_for_the_notifier() {
        let (mut lvs, _sim, mut lp) = started(CONFIG);
        while lvs.take_event().is_some() {}
        let t = Instant::from_secs(5);
        lvs.set_health(lp.ctx(), 0, 0, false, t);
        lvs.set_health(lp.ctx(), 0, 0, false, t); // no change, no event
        lvs.set_health(lp.ctx(), 0, 1, false, t);
        assert_eq!(
            lvs.take_event(),
            Some(LvsEvent::RealServer {
                vs: 0,
                rs: 0,
                up: false
            })
        );
        assert_eq!(
            lvs.take_event(),
            Some(LvsEvent::RealServer {
                vs: 0,
                rs: 1,
                up: false
            })
        );
        assert_eq!(lvs.take_event(), None);
        // The sync computes the quorum: lost.
        lvs.on_timer(lp.ctx(), TIMER, t);
        match lvs.take_event() {
            Some(LvsEvent::Quorum { vs: 0, event }) => assert!(!event.up, "{event}"),
            e => panic!("expected the quorum loss, got {e:?}"),
        }
        assert_eq!(lvs.take_event(), None);
        lvs.set_health(lp.ctx(), 0, 0, true, t);
        lvs.set_health(lp.ctx(), 0, 1, true, t);
        lvs.on_timer(lp.ctx(), TIMER, t);
        let events: Vec<LvsEvent> = core::iter::from_fn(|| lvs.take_event()).collect();
        assert!(
            matches!(events.last(), Some(LvsEvent::Quorum { vs: 0, event }) if event.up),
            "{events:?}"
        );
    }
}
