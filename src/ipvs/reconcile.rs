//! Desired state and reconciliation, pure.
//!
//! 1. [`Reconciler::desired`] turns the configured virtual servers plus the health map into
//!    the table we want in the kernel: a failed real server is left out (or kept at weight 0
//!    with `inhibit_on_failure`), and when the alive weight falls below quorum (with
//!    hysteresis) the sorry server replaces the pool. Quorum state is the only memory it keeps.
//! 2. [`reconcile`] compares that with the kernel's dumped table and returns the minimal list
//!    of changes, each with the reason to log. Applying them and reconciling again gives no
//!    changes. Services that are not in our configuration are never touched.
//! 3. [`cleanup`] lists the deletions for shutdown (or for virtual servers dropped by a
//!    reload), honouring each virtual server's `cleanup` flag.
//!
//! This runs on configuration and health changes, not per packet; the vectors it returns are
//! sized by the table.

use core::fmt;
use core::net::IpAddr;

use super::model::*;
use super::msg::Op;

/// A configured real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealServer {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    pub forwarding: Forwarding,
    /// keepalived `inhibit_on_failure`: on failure keep the server with weight 0 (existing
    /// connections drain) instead of removing it.
    pub inhibit_on_failure: bool,
}

impl RealServer {
    fn dest(&self, weight: u32) -> Dest {
        Dest::new(self.addr, self.port, weight, self.forwarding)
    }
}

/// The server put in when the pool has lost quorum. It gets weight 1, as in keepalived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SorryServer {
    pub addr: IpAddr,
    pub port: u16,
    pub forwarding: Forwarding,
}

/// A configured virtual server: one kernel service and its pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServer {
    pub service: Service,
    pub real_servers: Vec<RealServer>,
    /// Minimum total weight of alive real servers (keepalived `quorum`, default 1).
    pub quorum: u32,
    /// Quorum is lost below `quorum - hysteresis` and regained at `quorum + hysteresis`.
    pub hysteresis: u32,
    pub sorry_server: Option<SorryServer>,
    /// Delete the service at shutdown (otherwise it stays so traffic keeps flowing).
    pub cleanup: bool,
}

impl VirtualServer {
    /// A virtual server with keepalived's defaults: quorum 1, hysteresis 0, cleanup on.
    pub fn new(service: Service) -> Self {
        VirtualServer {
            service,
            real_servers: Vec::new(),
            quorum: 1,
            hysteresis: 0,
            sorry_server: None,
            cleanup: true,
        }
    }
}

/// Why a destination is in the desired table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Configured real server `index` of its virtual server, with its health.
    RealServer {
        index: usize,
        up: bool,
    },
    Sorry,
}

/// One configured destination and whether it should be in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DesiredDest {
    pub dest: Dest,
    pub role: Role,
    /// false: a failed real server without inhibit_on_failure, or the sorry server while
    /// quorum holds; it must not be in the kernel.
    pub wanted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredService {
    pub service: Service,
    pub dests: Vec<DesiredDest>,
    pub alive_weight: u32,
    pub quorum: u32,
    pub quorum_up: bool,
    /// Quorum is lost and a sorry server is configured: it replaces the pool.
    pub sorry_active: bool,
}

/// A quorum transition, for the log and for quorum_up/quorum_down notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumEvent {
    pub key: ServiceKey,
    pub up: bool,
    pub alive_weight: u32,
    pub quorum: u32,
}

impl fmt::Display for QuorumEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.up { "regained" } else { "lost" };
        write!(
            f,
            "virtual server {}: quorum {state} (alive weight {}, quorum {})",
            self.key, self.alive_weight, self.quorum
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    pub services: Vec<DesiredService>,
    pub events: Vec<QuorumEvent>,
}

/// A service as dumped from the kernel with its destinations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelService {
    pub service: Service,
    pub dests: Vec<Dest>,
}

/// Why a change is made; printed after the change in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A configured virtual server is missing from the kernel.
    NewVirtualServer,
    /// Scheduler or persistence differ from the configuration.
    VirtualServerChanged,
    /// A healthy real server is missing (first start, or it recovered).
    RealServerUp,
    /// A real server failed its checks.
    RealServerDown,
    /// A real server failed and has inhibit_on_failure: weight 0.
    RealServerInhibited,
    /// Weight or forwarding differ from the configuration.
    RealServerChanged,
    /// Quorum lost: the sorry server goes in.
    SorryServerIn { alive_weight: u32, quorum: u32 },
    /// Quorum regained: the sorry server goes out.
    SorryServerOut,
    /// Quorum lost with a sorry server: a healthy real server leaves the pool (weight 0
    /// with inhibit_on_failure) until quorum returns.
    QuorumLost { alive_weight: u32, quorum: u32 },
    /// A destination in one of our services that the configuration does not list.
    NotConfigured,
    /// Shutdown (or the virtual server left the configuration) with cleanup enabled.
    Shutdown,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NewVirtualServer => write!(f, "configured, not in the kernel"),
            Reason::VirtualServerChanged => write!(f, "scheduler or persistence changed"),
            Reason::RealServerUp => write!(f, "real server is up"),
            Reason::RealServerDown => write!(f, "real server is down"),
            Reason::RealServerInhibited => {
                write!(f, "real server is down (inhibit_on_failure: weight 0)")
            }
            Reason::RealServerChanged => write!(f, "weight or forwarding changed"),
            Reason::SorryServerIn {
                alive_weight,
                quorum,
            } => write!(
                f,
                "quorum lost (alive weight {alive_weight} < quorum {quorum}): sorry server in"
            ),
            Reason::SorryServerOut => write!(f, "quorum regained: sorry server out"),
            Reason::QuorumLost {
                alive_weight,
                quorum,
            } => write!(
                f,
                "quorum lost (alive weight {alive_weight} < quorum {quorum}): pool replaced by the sorry server"
            ),
            Reason::NotConfigured => write!(f, "not in the configuration"),
            Reason::Shutdown => write!(f, "shutdown cleanup"),
        }
    }
}

/// One operation with its reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub op: Op,
    pub reason: Reason,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.reason)
    }
}

/// Holds the quorum state (the only history desired-state computation needs).
#[derive(Clone, Debug, Default)]
pub struct Reconciler {
    quorum_up: Vec<(ServiceKey, bool)>,
}

impl Reconciler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether quorum currently holds for a virtual server (None before its first evaluation).
    pub fn quorum_up(&self, key: &ServiceKey) -> Option<bool> {
        self.quorum_up
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, up)| *up)
    }

    /// Computes the desired table. `is_up(vs, rs)` says whether real server `rs` of virtual
    /// server `vs` (indexes into `servers`) passes its checks.
    pub fn desired(
        &mut self,
        servers: &[VirtualServer],
        is_up: impl Fn(usize, usize) -> bool,
    ) -> Desired {
        let mut out = Desired::default();
        // Forget virtual servers that left the configuration.
        self.quorum_up
            .retain(|(k, _)| servers.iter().any(|vs| vs.service.key == *k));
        for (vi, vs) in servers.iter().enumerate() {
            // Health first: quorum is on the total weight of the alive real servers.
            let mut alive_weight: u32 = 0;
            for (ri, rs) in vs.real_servers.iter().enumerate() {
                if is_up(vi, ri) && !is_duplicate(vs, ri) {
                    alive_weight = alive_weight.saturating_add(rs.weight);
                }
            }
            let quorum_up = self.update_quorum(vs, alive_weight, &mut out.events);
            // While quorum is lost and a sorry server is configured, the sorry server
            // replaces the pool (keepalived takes the remaining alive servers out too, and
            // puts them back when quorum returns). Without a sorry server, losing quorum only
            // notifies: the alive servers keep serving.
            let sorry_active = !quorum_up && vs.sorry_server.is_some();
            let mut dests: Vec<DesiredDest> = Vec::with_capacity(vs.real_servers.len() + 1);
            for (ri, rs) in vs.real_servers.iter().enumerate() {
                if is_duplicate(vs, ri) {
                    // Config validation reports duplicates; the first entry wins.
                    continue;
                }
                let up = is_up(vi, ri);
                let in_pool = up && !sorry_active;
                let (wanted, weight) = match (in_pool, rs.inhibit_on_failure) {
                    (true, _) => (true, rs.weight),
                    (false, true) => (true, 0),
                    (false, false) => (false, rs.weight),
                };
                dests.push(DesiredDest {
                    dest: rs.dest(weight),
                    role: Role::RealServer { index: ri, up },
                    wanted,
                });
            }
            if let Some(sorry) = vs.sorry_server {
                let dest = Dest::new(sorry.addr, sorry.port, 1, sorry.forwarding);
                let entry = DesiredDest {
                    dest,
                    role: Role::Sorry,
                    wanted: sorry_active,
                };
                match dests.iter_mut().find(|d| d.dest.same_server(&dest)) {
                    // The sorry server is also a pool member: it serves as sorry server
                    // while quorum is lost and as configured otherwise.
                    Some(d) if sorry_active => *d = entry,
                    Some(_) => {}
                    None => dests.push(entry),
                }
            }
            out.services.push(DesiredService {
                service: vs.service,
                dests,
                alive_weight,
                quorum: vs.quorum,
                quorum_up,
                sorry_active,
            });
        }
        out
    }

    /// keepalived's rule: quorum is on the sum of weights of alive servers. Holding quorum,
    /// it is lost when that sum drops below `quorum - hysteresis` or to zero; without it, it
    /// is regained at `quorum + hysteresis`. The first evaluation (start, or a virtual server
    /// new in the configuration) has no history and starts up only at `quorum + hysteresis`.
    fn update_quorum(
        &mut self,
        vs: &VirtualServer,
        alive: u32,
        events: &mut Vec<QuorumEvent>,
    ) -> bool {
        let key = vs.service.key;
        let rise = vs.quorum.saturating_add(vs.hysteresis);
        let fall = vs.quorum.saturating_sub(vs.hysteresis);
        let slot = self.quorum_up.iter_mut().find(|(k, _)| *k == key);
        match slot {
            None => {
                let up = alive >= rise;
                self.quorum_up.push((key, up));
                // Starting without quorum is reported like a loss, so quorum_down
                // notifications also run when the daemon starts with a dead pool.
                if !up {
                    events.push(QuorumEvent {
                        key,
                        up,
                        alive_weight: alive,
                        quorum: vs.quorum,
                    });
                }
                up
            }
            Some((_, up)) => {
                let new = if *up {
                    alive != 0 && alive >= fall
                } else {
                    alive >= rise
                };
                if new != *up {
                    *up = new;
                    events.push(QuorumEvent {
                        key,
                        up: new,
                        alive_weight: alive,
                        quorum: vs.quorum,
                    });
                }
                new
            }
        }
    }
}

/// Whether real server `ri` repeats the address and port of an earlier entry.
fn is_duplicate(vs: &VirtualServer, ri: usize) -> bool {
    let rs = &vs.real_servers[ri];
    vs.real_servers[..ri]
        .iter()
        .any(|o| o.addr == rs.addr && o.port == rs.port)
}

fn dest_differs(want: &Dest, have: &Dest) -> bool {
    want.weight != have.weight
        || want.forwarding != have.forwarding
        || want.u_thresh != have.u_thresh
        || want.l_thresh != have.l_thresh
}

/// The changes that turn `kernel` into `desired`, in a safe order per service: add/edit the
/// service, add destinations, edit them, then delete (so a pool is never empty in between
/// when a sorry server swaps with a recovering real server). Kernel services that are not
/// desired are left alone: they are not ours.
pub fn reconcile(desired: &Desired, kernel: &[KernelService]) -> Vec<Change> {
    let mut changes = Vec::new();
    for ds in &desired.services {
        let key = ds.service.key;
        let have = kernel.iter().find(|k| k.service.key == key);
        let have_dests: &[Dest] = match have {
            None => {
                changes.push(Change {
                    op: Op::AddService(ds.service),
                    reason: Reason::NewVirtualServer,
                });
                &[]
            }
            Some(ks) => {
                if ks.service.scheduler != ds.service.scheduler
                    || ks.service.persistence != ds.service.persistence
                {
                    changes.push(Change {
                        op: Op::EditService(ds.service),
                        reason: Reason::VirtualServerChanged,
                    });
                }
                &ks.dests
            }
        };
        let quorum_lost = Reason::QuorumLost {
            alive_weight: ds.alive_weight,
            quorum: ds.quorum,
        };
        let mut dels = Vec::new();
        let mut edits = Vec::new();
        for d in ds.dests.iter().filter(|d| d.wanted) {
            let reason = match d.role {
                Role::Sorry => Reason::SorryServerIn {
                    alive_weight: ds.alive_weight,
                    quorum: ds.quorum,
                },
                Role::RealServer { up: true, .. } if ds.sorry_active => quorum_lost,
                Role::RealServer { up: true, .. } => Reason::RealServerUp,
                Role::RealServer { up: false, .. } => Reason::RealServerInhibited,
            };
            match have_dests.iter().find(|h| h.same_server(&d.dest)) {
                None => changes.push(Change {
                    op: Op::AddDest(key, d.dest),
                    reason,
                }),
                Some(h) if dest_differs(&d.dest, h) => {
                    let reason = match d.role {
                        Role::RealServer { up: true, .. } if ds.sorry_active => quorum_lost,
                        Role::RealServer { up: true, .. } if h.weight == 0 => Reason::RealServerUp,
                        Role::RealServer { up: true, .. } => Reason::RealServerChanged,
                        _ => reason,
                    };
                    edits.push(Change {
                        op: Op::EditDest(key, d.dest),
                        reason,
                    });
                }
                Some(_) => {}
            }
        }
        for h in have_dests {
            let reason = match ds.dests.iter().find(|d| d.dest.same_server(h)) {
                None => Reason::NotConfigured,
                Some(d) if d.wanted => continue,
                Some(d) => match d.role {
                    Role::Sorry => Reason::SorryServerOut,
                    Role::RealServer { up: true, .. } => quorum_lost,
                    Role::RealServer { up: false, .. } => Reason::RealServerDown,
                },
            };
            dels.push(Change {
                op: Op::DelDest(key, *h),
                reason,
            });
        }
        changes.extend(edits);
        changes.extend(dels);
    }
    changes
}

/// Deletions for shutdown: every service of `servers` that has `cleanup` set and is in the
/// kernel. Also used for virtual servers removed by a configuration reload.
pub fn cleanup(servers: &[VirtualServer], kernel: &[KernelService]) -> Vec<Change> {
    servers
        .iter()
        .filter(|vs| vs.cleanup)
        .filter(|vs| kernel.iter().any(|k| k.service.key == vs.service.key))
        .map(|vs| Change {
            op: Op::DelService(vs.service.key),
            reason: Reason::Shutdown,
        })
        .collect()
}

/// Applies changes to a kernel table value, as the kernel would. Lets tests (and a dry run)
/// check that reconciling twice gives nothing to do.
pub fn simulate(kernel: &mut Vec<KernelService>, changes: &[Change]) {
    for c in changes {
        match c.op {
            Op::AddService(s) => {
                if !kernel.iter().any(|k| k.service.key == s.key) {
                    kernel.push(KernelService {
                        service: s,
                        dests: Vec::new(),
                    });
                }
            }
            Op::EditService(s) => {
                if let Some(k) = kernel.iter_mut().find(|k| k.service.key == s.key) {
                    k.service = s;
                }
            }
            Op::DelService(key) => kernel.retain(|k| k.service.key != key),
            Op::AddDest(key, d) => {
                if let Some(k) = kernel.iter_mut().find(|k| k.service.key == key) {
                    if !k.dests.iter().any(|h| h.same_server(&d)) {
                        k.dests.push(d);
                    }
                }
            }
            Op::EditDest(key, d) => {
                if let Some(k) = kernel.iter_mut().find(|k| k.service.key == key) {
                    if let Some(h) = k.dests.iter_mut().find(|h| h.same_server(&d)) {
                        *h = d;
                    }
                }
            }
            Op::DelDest(key, d) => {
                if let Some(k) = kernel.iter_mut().find(|k| k.service.key == key) {
                    k.dests.retain(|h| !h.same_server(&d));
                }
            }
        }
    }
}
