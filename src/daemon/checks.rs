//! The check engine: every health check of the configuration driven from the one
//! poll loop, for two consumers: VRRP trackers (`track_script`, `track_check`) and IPVS real
//! servers.
//!
//! The pure state machines live in `check::`; this part performs their actions with
//! `sys::{tcp, icmp, process}` and feeds the outcomes back (see the driving guide in the
//! `check` module docs). Deadlines are kept in one heap; the loop sees a single timer,
//! `Part::Checks.timer(0)`, armed for the earliest of them, so a thousand checks cost one slot
//! of the loop's timer queue. Each probe's fd (TCP connection, ICMP socket, script output
//! pipe) is registered as `Part::Checks.token(probe index)`.
//!
//! Health changes are logged as one line each and collected for [`CheckEngine::take_change`]:
//! the runtime queues those found while reading a probe's fd as input events, and drains the
//! rest (from timers and child exits) in its settle step.

use super::ids::{token_owner, Part};
use super::kernel::Spawner;
use super::{Ctx, Interest, Read, Ready, TimerId, Token};
use crate::base::{Duration, Instant};
use crate::check::notify::{split_command, MAX_ARGS};
use crate::check::{
    self, Action, Actions, Attempt, ConnCheck, Health, HttpSpec, IcmpCheck, IcmpSpec, Input,
    Reason, ScriptCheck, ScriptSpec, StatusSet, TcpSpec,
};
use crate::config::{CheckKind, Config};
use crate::sys::icmp::IcmpSocket;
use crate::sys::{process, tcp};
use core::net::{IpAddr, SocketAddr};
use nix::errno::Errno;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::OwnedFd;

/// What a probe checks, shared by the check engine, tracking and IPVS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeId {
    /// `config.scripts[i]` (a `track_script`).
    Script(u16),
    /// `config.checks[i]` as a VRRP tracker (`track_check`).
    Check(u16),
    /// `config.virtual_servers[vs].real_servers[rs]` with its resolved check.
    RealServer { vs: u16, rs: u16 },
}

/// The loop timer of the engine (the earliest per-probe deadline).
pub const TIMER: TimerId = Part::Checks.timer(0);

/// A probe's specification, compared on reload: equal spec = keep its state. Built once per
/// config load, so the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
enum Spec {
    Tcp(TcpSpec),
    Http(HttpSpec),
    Icmp(IcmpSpec),
    Script(ScriptSpec),
}

impl Spec {
    fn schedule(&self) -> &check::Schedule {
        match self {
            Spec::Tcp(s) => &s.schedule,
            Spec::Http(s) => &s.schedule,
            Spec::Icmp(s) => &s.schedule,
            Spec::Script(s) => &s.schedule,
        }
    }

    /// Equal for reload purposes: the ICMP ident is assigned by position, not configured.
    fn same(&self, other: &Spec) -> bool {
        match (self, other) {
            (Spec::Icmp(a), Spec::Icmp(b)) => {
                a.dst == b.dst && a.schedule == b.schedule && a.weight == b.weight
            }
            _ => self == other,
        }
    }
}

#[allow(clippy::large_enum_variant)]
enum Kind {
    Conn {
        check: ConnCheck,
        fd: Option<OwnedFd>,
    },
    Icmp {
        check: IcmpCheck,
        sock: Option<IcmpSocket>,
    },
    Script {
        check: ScriptCheck,
        child: Option<process::Child>,
    },
}

struct Probe {
    id: ProbeId,
    /// For logs and for matching on reload (with `spec`).
    name: String,
    spec: Spec,
    kind: Kind,
    /// Deadline pushed to the heap (entries with another time are stale).
    armed: Option<Instant>,
    /// Interest the fd is registered with, if registered.
    registered: Option<Interest>,
    /// Already listed in `changes`.
    changed: bool,
    last_seen: Option<Attempt>,
    /// Consecutive failed attempts / failed rounds / good rounds, for the log lines.
    fail_attempts: u32,
    fail_rounds: u32,
    ok_rounds: u32,
}

impl Probe {
    /// A probe that has not run yet: not armed, no fd, no history.
    fn new(id: ProbeId, name: String, spec: Spec, kind: Kind) -> Probe {
        Probe {
            id,
            name,
            spec,
            kind,
            armed: None,
            registered: None,
            changed: false,
            last_seen: None,
            fail_attempts: 0,
            fail_rounds: 0,
            ok_rounds: 0,
        }
    }

    fn health(&self) -> Health {
        match &self.kind {
            Kind::Conn { check, .. } => check.health(),
            Kind::Icmp { check, .. } => check.health(),
            Kind::Script { check, .. } => check.health(),
        }
    }

    fn poll_at(&self) -> Option<Instant> {
        match &self.kind {
            Kind::Conn { check, .. } => Some(check.poll_at()),
            Kind::Icmp { check, .. } => Some(check.poll_at()),
            Kind::Script { check, .. } => check.poll_at(),
        }
    }

    fn last_attempt(&self) -> Option<Attempt> {
        match &self.kind {
            Kind::Conn { check, .. } => check.last_attempt(),
            Kind::Icmp { check, .. } => check.last_attempt(),
            Kind::Script { check, .. } => check.last_attempt(),
        }
    }

    fn pid(&self) -> Option<i32> {
        match &self.kind {
            Kind::Script { child: Some(c), .. } => Some(c.pid),
            _ => None,
        }
    }

    /// The interest the probe's fd needs now; `None`: no fd to watch.
    fn want(&self) -> Option<Interest> {
        match &self.kind {
            Kind::Conn { check, fd: Some(_) } => match check.interest() {
                check::Interest::Write => Some(Interest::WRITABLE),
                check::Interest::Read => Some(Interest::READABLE),
                check::Interest::None => None,
            },
            Kind::Icmp { sock: Some(_), .. } => Some(Interest::READABLE),
            Kind::Script {
                child:
                    Some(process::Child {
                        output: Some(_), ..
                    }),
                ..
            } => Some(Interest::READABLE),
            _ => None,
        }
    }

    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match &self.kind {
            Kind::Conn { fd: Some(fd), .. } => Some(fd.as_raw_fd()),
            Kind::Icmp { sock: Some(s), .. } => {
                use std::os::fd::AsFd;
                Some(s.as_fd().as_raw_fd())
            }
            Kind::Script {
                child:
                    Some(process::Child {
                        output: Some(fd), ..
                    }),
                ..
            } => Some(fd.as_raw_fd()),
            _ => None,
        }
    }
}

/// A raw fd borrowed for `Ctx::register` (the probe keeps owning it).
struct Raw(std::os::fd::RawFd);
impl std::os::fd::AsRawFd for Raw {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0
    }
}

/// Counters for the state dump.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub attempts: u64,
    pub failed_attempts: u64,
    pub health_changes: u64,
    pub spawn_errors: u64,
    pub killed: u64,
}

/// See the module docs.
pub struct CheckEngine {
    probes: Vec<Probe>,
    heap: BinaryHeap<Reverse<(Instant, u32)>>,
    /// Probe indices with a health change not yet taken.
    changes: Vec<u32>,
    /// Children of probes removed by a reload, still to be reaped (they were killed).
    orphans: Vec<i32>,
    seed: u64,
    stats: EngineStats,
}

/// Build the probes of `cfg` (no syscalls except resolving script users).
fn build(cfg: &Config, seed: u64, now: Instant) -> Result<Vec<(ProbeId, String, Spec)>, String> {
    let mut out = Vec::new();
    for (i, s) in cfg.scripts.iter().enumerate() {
        // A script's own `user`, else the globals' `script_user` (keepalived's order).
        let user = match s.user.as_ref().or(cfg.globals.script_user.as_ref()) {
            Some(u) => Some(
                process::lookup_user(u)
                    .ok_or_else(|| format!("script '{}': unknown user '{u}'", s.name))?,
            ),
            None => None,
        };
        let schedule = check::Schedule {
            interval: s.interval,
            timeout: s.timeout,
            fall: u8::try_from(s.fall).unwrap_or(u8::MAX),
            rise: u8::try_from(s.rise).unwrap_or(u8::MAX),
            retry: 0,
            delay_before_retry: Duration::ZERO,
            initial: Health::Unknown,
            // keepalived runs a vrrp_script soon after start; spread the first runs over at
            // most one second so a start does not fork every script in the same instant.
            warmup: s.interval.min(Duration::from_secs(1)),
        };
        let spec = ScriptSpec {
            // Split like keepalived, no shell (validation refused what does not split).
            argv: split_command(&s.command).unwrap_or_default(),
            user,
            schedule,
            dynamic: false,
            // Weights are the trackers' business (`Tracking`, with per-instance overrides):
            // leaving them out of the spec lets a weight-only reload keep the probe's state.
            weight: 0,
        };
        out.push((
            ProbeId::Script(i as u16),
            s.name.clone(),
            Spec::Script(spec),
        ));
    }
    // Checks tracked by an instance or a sync group get a probe of their own.
    let mut tracked: Vec<usize> = tracked_checks(cfg).collect();
    tracked.sort_unstable();
    tracked.dedup();
    for ci in tracked {
        let c = &cfg.checks[ci];
        let Some(addr) = c.address else {
            return Err(format!("check '{}' is tracked but has no address", c.name));
        };
        let spec = check_spec(c, addr, c.port.unwrap_or(0), Health::Unknown, ci, seed)?;
        out.push((ProbeId::Check(ci as u16), c.name.clone(), spec));
    }
    for (vi, vs) in cfg.virtual_servers.iter().enumerate() {
        for (ri, rs) in vs.real_servers.iter().enumerate() {
            let Some(ci) = rs.check else { continue };
            let c = &cfg.checks[ci];
            let addr = c.address.unwrap_or(rs.address);
            let port = c.port.unwrap_or(rs.port);
            // keepalived: a real server counts as up until its checker says otherwise
            // (no `alpha`), so a start does not empty the pool.
            let spec = match c.kind {
                CheckKind::Script => misc_spec(cfg, c)?,
                _ => check_spec(c, addr, port, Health::Up, out.len(), seed)?,
            };
            let name = format!(
                "{}/{} ({})",
                vs.name,
                SocketAddr::new(rs.address, rs.port),
                c.name
            );
            out.push((
                ProbeId::RealServer {
                    vs: vi as u16,
                    rs: ri as u16,
                },
                name,
                spec,
            ));
        }
    }
    let _ = now;
    Ok(out)
}

/// The checks an instance or a sync group tracks (with repeats).
fn tracked_checks(cfg: &Config) -> impl Iterator<Item = usize> + '_ {
    let by_instances = cfg.instances.iter().flat_map(|i| &i.track_checks);
    let by_groups = cfg.sync_groups.iter().flat_map(|g| &g.track_checks);
    by_instances.chain(by_groups).map(|t| t.check)
}

/// Loop fds the probes of `cfg` may hold at once (one each: connection, ICMP socket or
/// script output pipe), for the runtime's `check_capacity` call.
pub fn fds_needed(cfg: &Config) -> usize {
    let mut tracked: Vec<usize> = tracked_checks(cfg).collect();
    tracked.sort_unstable();
    tracked.dedup();
    let rs = cfg
        .virtual_servers
        .iter()
        .flat_map(|v| v.real_servers.iter())
        .filter(|r| r.check.is_some())
        .count();
    cfg.scripts.len() + tracked.len() + rs
}

/// A real server's `script` check (keepalived MISC_CHECK): the command split into words (no
/// shell), as the check's `user`, else globals `script_user`, like a track script.
fn misc_spec(cfg: &Config, c: &crate::config::Check) -> Result<Spec, String> {
    let user = match c.user.as_ref().or(cfg.globals.script_user.as_ref()) {
        Some(u) => Some(
            process::lookup_user(u)
                .ok_or_else(|| format!("check '{}': unknown user '{u}'", c.name))?,
        ),
        None => None,
    };
    let Some(command) = &c.command else {
        return Err(format!("check '{}': no command", c.name));
    };
    Ok(Spec::Script(ScriptSpec {
        argv: split_command(command).unwrap_or_default(),
        user,
        schedule: check::Schedule {
            interval: c.interval,
            timeout: c.timeout,
            fall: u8::try_from(c.fall).unwrap_or(u8::MAX),
            rise: u8::try_from(c.rise).unwrap_or(u8::MAX),
            retry: u8::try_from(c.retry).unwrap_or(u8::MAX),
            delay_before_retry: c.delay_before_retry,
            initial: Health::Up,
            // As for track scripts: the first runs spread over at most one second.
            warmup: c.interval.min(Duration::from_secs(1)),
        },
        weight: 0,
        dynamic: c.dynamic,
    }))
}

fn check_spec(
    c: &crate::config::Check,
    addr: IpAddr,
    port: u16,
    initial: Health,
    index: usize,
    seed: u64,
) -> Result<Spec, String> {
    let schedule = check::Schedule {
        interval: c.interval,
        timeout: c.connect_timeout,
        fall: u8::try_from(c.fall).unwrap_or(u8::MAX),
        rise: u8::try_from(c.rise).unwrap_or(u8::MAX),
        retry: u8::try_from(c.retry).unwrap_or(u8::MAX),
        delay_before_retry: c.delay_before_retry,
        initial,
        warmup: c.interval,
    };
    let sa = SocketAddr::new(addr, port);
    Ok(match c.kind {
        // Validation refuses tracking one; real servers build theirs with `misc_spec`.
        CheckKind::Script => {
            return Err(format!(
                "check '{}': a script check is for real servers only",
                c.name
            ))
        }
        CheckKind::Tcp => Spec::Tcp(TcpSpec {
            addr: sa,
            schedule,
            weight: 0,
        }),
        CheckKind::Icmp => Spec::Icmp(IcmpSpec {
            dst: addr,
            // Distinct per probe so replies on raw sockets are told apart.
            ident: (seed as u16).wrapping_add(index as u16),
            schedule,
            weight: 0,
        }),
        CheckKind::Http => {
            let mut h = HttpSpec::new(sa, &c.path);
            if h.path.len() != c.path.len() {
                return Err(format!("check '{}': path too long", c.name));
            }
            if let Some(host) = &c.host {
                h.host
                    .push_str(host)
                    .map_err(|_| format!("check '{}': host too long", c.name))?;
            }
            if !c.status.is_empty() {
                let mut set = StatusSet::empty();
                for r in &c.status {
                    if !set.add(r.lo, r.hi) {
                        return Err(format!("check '{}': too many status ranges", c.name));
                    }
                }
                h.status = set;
            }
            if let Some(e) = &c.expect {
                h.expect_body
                    .push_str(e)
                    .map_err(|_| format!("check '{}': expect text too long", c.name))?;
            }
            h.max_response = c.max_response as usize;
            h.schedule = schedule;
            h.weight = 0;
            Spec::Http(h)
        }
    })
}

fn instantiate(spec: &Spec, seed: u64, now: Instant) -> Result<Kind, String> {
    Ok(match spec {
        Spec::Tcp(s) => Kind::Conn {
            check: ConnCheck::tcp(s, seed, now),
            fd: None,
        },
        Spec::Http(s) => Kind::Conn {
            check: ConnCheck::http(s, seed, now).map_err(|e| format!("{e:?}"))?,
            fd: None,
        },
        Spec::Icmp(s) => Kind::Icmp {
            check: IcmpCheck::new(s, seed, now),
            sock: None,
        },
        Spec::Script(s) => Kind::Script {
            check: ScriptCheck::new(s, seed, now),
            child: None,
        },
    })
}

fn mix(seed: u64, i: usize) -> u64 {
    seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl CheckEngine {
    /// Build every probe of the validated `cfg`. `seed` (from the runtime: clock, pid) spreads
    /// the first rounds over each check's warm-up.
    /// Whether `cfg`'s probes can all be built (script users exist, tracked checks have an
    /// address...): a reload asks this before it swaps anything, so it never half-applies.
    pub fn validate(cfg: &Config, now: Instant) -> Result<(), String> {
        for (_, name, spec) in build(cfg, 0, now)? {
            instantiate(&spec, 0, now).map_err(|e| format!("check '{name}': {e}"))?;
        }
        Ok(())
    }

    pub fn new(cfg: &Config, seed: u64, now: Instant) -> Result<Self, String> {
        let specs = build(cfg, seed, now)?;
        let mut probes = Vec::with_capacity(specs.len());
        for (i, (id, name, spec)) in specs.into_iter().enumerate() {
            let kind = instantiate(&spec, mix(seed, i), now)
                .map_err(|e| format!("check '{name}': {e}"))?;
            probes.push(Probe::new(id, name, spec, kind));
        }
        let n = probes.len();
        Ok(CheckEngine {
            probes,
            // Each probe has a few live or stale entries at most (see `push_deadline`).
            heap: BinaryHeap::with_capacity(4 * n + 16),
            changes: Vec::with_capacity(n),
            orphans: Vec::with_capacity(16),
            seed,
            stats: EngineStats::default(),
        })
    }

    /// Number of probes.
    pub fn len(&self) -> usize {
        self.probes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Probe ids in engine order.
    pub fn ids(&self) -> impl Iterator<Item = ProbeId> + '_ {
        self.probes.iter().map(|p| p.id)
    }

    /// Current health of a probe (`Unknown` for an id without a probe).
    pub fn health(&self, p: ProbeId) -> Health {
        self.probes
            .iter()
            .find(|x| x.id == p)
            .map_or(Health::Unknown, |x| x.health())
    }

    /// The oldest health change not taken yet, as the probe's current health.
    pub fn take_change(&mut self) -> Option<(ProbeId, Health)> {
        while !self.changes.is_empty() {
            let i = self.changes.remove(0);
            if let Some(p) = self.probes.get_mut(i as usize) {
                p.changed = false;
                return Some((p.id, p.health()));
            }
        }
        None
    }

    /// Health changes since the last call, one per probe (its current health).
    pub fn take_changes(&mut self) -> impl Iterator<Item = (ProbeId, Health)> + '_ {
        let probes = &mut self.probes;
        self.changes.drain(..).filter_map(move |i| {
            let p = probes.get_mut(i as usize)?;
            p.changed = false;
            Some((p.id, p.health()))
        })
    }

    /// Open the ICMP sockets and arm the timer.
    pub fn start(&mut self, ctx: &mut Ctx, now: Instant) {
        for i in 0..self.probes.len() {
            self.open_icmp(i);
            self.sync(ctx, i);
            self.push_deadline(i);
        }
        self.arm(ctx, now);
    }

    fn open_icmp(&mut self, i: usize) {
        let p = &mut self.probes[i];
        if let Kind::Icmp { check, sock } = &mut p.kind {
            if sock.is_none() {
                match IcmpSocket::open(check.dst().is_ipv6()) {
                    Ok(s) => *sock = Some(s),
                    // Without a socket every echo fails (SendFailed), so the probe goes down
                    // and says why; the error is logged once here.
                    Err(e) => log::error!("{}: cannot open ICMP socket: {e}", p.name),
                }
            }
        }
    }

    /// Register / re-register / deregister probe `i`'s fd to match what it needs now.
    fn sync(&mut self, ctx: &mut Ctx, i: usize) {
        let token = Part::Checks.token(i as u32);
        let p = &mut self.probes[i];
        let want = p.want();
        match (p.registered, want) {
            (None, None) => {}
            (Some(_), None) => {
                ctx.deregister(token);
                p.registered = None;
            }
            (Some(cur), Some(w)) if cur == w => {}
            (Some(_), Some(w)) => {
                ctx.set_interest(token, w);
                p.registered = Some(w);
            }
            (None, Some(w)) => {
                if let Some(fd) = p.raw_fd() {
                    match ctx.register(token, &Raw(fd), w) {
                        Ok(()) => p.registered = Some(w),
                        Err(e) => log::error!("{}: {e}", p.name),
                    }
                }
            }
        }
    }

    /// Deregister (if registered) before the probe's fd is dropped.
    fn unregister(&mut self, ctx: &mut Ctx, i: usize) {
        if self.probes[i].registered.take().is_some() {
            ctx.deregister(Part::Checks.token(i as u32));
        }
    }

    fn push_deadline(&mut self, i: usize) {
        let p = &mut self.probes[i];
        let at = p.poll_at();
        if at == p.armed {
            return;
        }
        p.armed = at;
        let Some(at) = at else { return };
        if self.heap.len() == self.heap.capacity() {
            // Only stale entries can make the heap this long: rebuild it from the probes
            // (in place, no allocation).
            let probes = &self.probes;
            self.heap.retain(|Reverse((t, j))| {
                probes.get(*j as usize).and_then(|p| p.armed) == Some(*t)
            });
        }
        self.heap.push(Reverse((at, i as u32)));
    }

    /// Arm the loop timer for the earliest live deadline.
    fn arm(&mut self, ctx: &mut Ctx, _now: Instant) {
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            if self.probes.get(i as usize).and_then(|p| p.armed) == Some(t) {
                let _ = ctx.arm(TIMER, t);
                return;
            }
            self.heap.pop();
        }
        ctx.cancel(TIMER);
    }

    /// The engine's timer fired: tick every due probe.
    pub fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant, procs: &mut dyn Spawner) {
        if id != TIMER {
            return;
        }
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            let i = i as usize;
            if self.probes.get(i).and_then(|p| p.armed) != Some(t) {
                continue;
            }
            self.probes[i].armed = None;
            self.feed(ctx, procs, i, now, Input::Tick);
        }
        self.arm(ctx, now);
    }

    /// Feed one input to probe `i`, carry out its actions, then fix its fd and deadline.
    fn feed(
        &mut self,
        ctx: &mut Ctx,
        procs: &mut dyn Spawner,
        i: usize,
        now: Instant,
        input: Input<'_>,
    ) {
        let p = &mut self.probes[i];
        let actions = match &mut p.kind {
            Kind::Conn { check, .. } => check.handle(now, input),
            Kind::Icmp { check, .. } => check.handle(now, input),
            Kind::Script { check, .. } => check.handle(now, input),
        };
        self.count_attempt(i);
        self.apply(ctx, procs, i, now, actions);
        self.sync(ctx, i);
        self.push_deadline(i);
    }

    /// Keep the consecutive-failure / success counts the log lines quote.
    fn count_attempt(&mut self, i: usize) {
        let p = &mut self.probes[i];
        let Some(a) = p.last_attempt() else { return };
        if p.last_seen == Some(a) {
            return;
        }
        p.last_seen = Some(a);
        self.stats.attempts += 1;
        if a.ok() {
            p.fail_attempts = 0;
            p.fail_rounds = 0;
            p.ok_rounds = p.ok_rounds.saturating_add(1);
            log::debug!(
                "{}: attempt ok ({} us)",
                p.name,
                a.elapsed.as_micros() as u64
            );
        } else {
            self.stats.failed_attempts += 1;
            p.fail_attempts = p.fail_attempts.saturating_add(1);
            // A round fails when its first attempt and all retries failed.
            let per_round = u32::from(p.spec.schedule().retry) + 1;
            if p.fail_attempts % per_round == 0 {
                p.fail_rounds = p.fail_rounds.saturating_add(1);
                p.ok_rounds = 0;
            }
            log::debug!("{}: attempt failed ({})", p.name, a.reason);
        }
    }

    fn apply(
        &mut self,
        ctx: &mut Ctx,
        procs: &mut dyn Spawner,
        i: usize,
        now: Instant,
        actions: Actions,
    ) {
        for a in actions {
            match a {
                Action::Connect(addr) => match tcp::connect(addr) {
                    Ok(fd) => {
                        if let Kind::Conn { fd: slot, .. } = &mut self.probes[i].kind {
                            *slot = Some(fd);
                        }
                        // Register now: the connect may already have finished.
                        self.sync(ctx, i);
                    }
                    Err(e) => self.feed(ctx, procs, i, now, Input::ConnectFailed(e as i32)),
                },
                Action::Close => {
                    self.unregister(ctx, i);
                    if let Kind::Conn { fd, .. } = &mut self.probes[i].kind {
                        *fd = None;
                    }
                }
                Action::SendEcho { dst, ident, seq } => {
                    let r = match &self.probes[i].kind {
                        Kind::Icmp { sock: Some(s), .. } => s.send_echo(dst, ident, seq),
                        _ => Err(Errno::EBADF),
                    };
                    if let Err(e) = r {
                        self.feed(ctx, procs, i, now, Input::SendFailed(e as i32));
                    }
                }
                Action::Spawn => {
                    let r = match &self.probes[i].spec {
                        Spec::Script(spec) => {
                            let mut argv: heapless::Vec<&str, MAX_ARGS> = heapless::Vec::new();
                            for a in &spec.argv {
                                let _ = argv.push(a.as_str());
                            }
                            procs.spawn_captured(&argv, spec.user)
                        }
                        _ => Err(Errno::EINVAL),
                    };
                    match r {
                        Ok(c) => {
                            if let Kind::Script { child, .. } = &mut self.probes[i].kind {
                                *child = Some(c);
                            }
                        }
                        Err(e) => {
                            self.stats.spawn_errors += 1;
                            self.feed(ctx, procs, i, now, Input::SpawnFailed(e as i32));
                        }
                    }
                }
                Action::Kill => {
                    self.stats.killed += 1;
                    let p = &self.probes[i];
                    if let Some(pid) = p.pid() {
                        log::warn!(
                            "{}: still running after {} ms, killed",
                            p.name,
                            p.spec.schedule().timeout.as_millis() as u64
                        );
                        let _ = procs.kill(pid);
                    }
                }
                Action::Report(r) => self.report(i, r.health, r.reason),
                Action::SetWeight(w) => {
                    // Logged and handed on like a health change: IPVS reads the weight
                    // with the health (`weight_set`).
                    let p = &mut self.probes[i];
                    log::info!("{}: weight {w} (exit code {})", p.name, w + 2);
                    if !p.changed {
                        p.changed = true;
                        self.changes.push(i as u32);
                    }
                }
            }
        }
    }

    fn report(&mut self, i: usize, health: Health, reason: Reason) {
        self.stats.health_changes += 1;
        let p = &mut self.probes[i];
        let s = p.spec.schedule();
        match health {
            Health::Down => {
                // From Unknown the first round decides; otherwise `fall` rounds did.
                let need = if p.fail_rounds < u32::from(s.fall.max(1)) {
                    p.fail_rounds
                } else {
                    u32::from(s.fall.max(1))
                };
                let out = match &p.kind {
                    Kind::Script { check, .. } => {
                        let (o, _) = check.output();
                        first_line(o)
                    }
                    _ => "",
                };
                if out.is_empty() {
                    log::warn!(
                        "{}: DOWN ({reason}, {}/{need} failures)",
                        p.name,
                        p.fail_rounds
                    );
                } else {
                    log::warn!(
                        "{}: DOWN ({reason}, {}/{need} failures): {out}",
                        p.name,
                        p.fail_rounds
                    );
                }
            }
            Health::Up => {
                let need = if p.ok_rounds < u32::from(s.rise.max(1)) {
                    p.ok_rounds
                } else {
                    u32::from(s.rise.max(1))
                };
                log::info!("{}: UP ({}/{need} successes)", p.name, p.ok_rounds);
            }
            Health::Unknown => log::info!("{}: UNKNOWN", p.name),
        }
        if !p.changed {
            p.changed = true;
            self.changes.push(i as u32);
        }
    }

    /// Probe fd `token` is ready: read or write one unit.
    pub fn on_readable(
        &mut self,
        ctx: &mut Ctx,
        token: Token,
        ready: Ready,
        now: Instant,
        procs: &mut dyn Spawner,
    ) -> Read {
        let r = self.read_one(ctx, procs, token, ready, now);
        // A finished attempt may have scheduled a retry earlier than the armed deadline.
        self.arm(ctx, now);
        r
    }

    fn read_one(
        &mut self,
        ctx: &mut Ctx,
        procs: &mut dyn Spawner,
        token: Token,
        ready: Ready,
        now: Instant,
    ) -> Read {
        let Some((Part::Checks, idx)) = token_owner(token) else {
            return Read::Drained;
        };
        let i = idx as usize;
        if i >= self.probes.len() {
            return Read::Drained;
        }
        let mut buf = [0u8; 2048];
        enum Step {
            Connect(Result<(), Errno>),
            Send,
            Recv(Result<usize, Errno>),
            Echo(Result<Option<(IpAddr, check::icmp::EchoReply)>, Errno>),
            Output(Result<usize, Errno>),
            Nothing,
        }
        let step = match &self.probes[i].kind {
            Kind::Conn {
                check,
                fd: Some(fd),
            } => match check.interest() {
                check::Interest::Write if check.tx_pending().is_empty() => {
                    Step::Connect(tcp::connect_result(fd))
                }
                check::Interest::Write => Step::Send,
                check::Interest::Read => Step::Recv(tcp::read(fd, &mut buf)),
                check::Interest::None => Step::Nothing,
            },
            Kind::Icmp { sock: Some(s), .. } => Step::Echo(s.recv_reply()),
            Kind::Script {
                child:
                    Some(process::Child {
                        output: Some(fd), ..
                    }),
                ..
            } => Step::Output(process::read_output(fd, &mut buf)),
            _ => Step::Nothing,
        };
        let _ = ready;
        match step {
            Step::Connect(r) => {
                let input = match r {
                    Ok(()) => Input::Connected,
                    Err(e) => Input::ConnectFailed(e as i32),
                };
                self.feed(ctx, procs, i, now, input);
                self.try_send(ctx, procs, i, now);
                Read::Drained
            }
            Step::Send => {
                self.try_send(ctx, procs, i, now);
                Read::Drained
            }
            Step::Recv(Ok(0)) => {
                self.feed(ctx, procs, i, now, Input::Closed);
                Read::Drained
            }
            Step::Recv(Ok(n)) => {
                self.feed(ctx, procs, i, now, Input::Received(&buf[..n]));
                self.again_if_registered(i)
            }
            Step::Recv(Err(Errno::EAGAIN)) => Read::Drained,
            Step::Recv(Err(e)) => {
                self.feed(ctx, procs, i, now, Input::ReadFailed(e as i32));
                Read::Drained
            }
            Step::Echo(Ok(Some((from, r)))) => {
                let input = Input::EchoReply {
                    from,
                    ident: r.ident,
                    seq: r.seq,
                };
                self.feed(ctx, procs, i, now, input);
                Read::Again
            }
            Step::Echo(Ok(None)) => Read::Again,
            Step::Echo(Err(_)) => Read::Drained,
            Step::Output(Ok(0)) => {
                self.close_output(ctx, i);
                Read::Drained
            }
            Step::Output(Ok(n)) => {
                self.feed(ctx, procs, i, now, Input::Output(&buf[..n]));
                Read::Again
            }
            Step::Output(Err(Errno::EAGAIN)) => Read::Drained,
            Step::Output(Err(_)) => {
                self.close_output(ctx, i);
                Read::Drained
            }
            Step::Nothing => Read::Drained,
        }
    }

    fn again_if_registered(&self, i: usize) -> Read {
        if self.probes[i].registered.is_some() {
            Read::Again
        } else {
            Read::Drained
        }
    }

    fn close_output(&mut self, ctx: &mut Ctx, i: usize) {
        self.unregister(ctx, i);
        if let Kind::Script { child: Some(c), .. } = &mut self.probes[i].kind {
            c.output = None;
        }
    }

    fn try_send(&mut self, ctx: &mut Ctx, procs: &mut dyn Spawner, i: usize, now: Instant) {
        // Bounded: the request is at most a few hundred bytes.
        for _ in 0..16 {
            let r = match &self.probes[i].kind {
                Kind::Conn {
                    check,
                    fd: Some(fd),
                } if !check.tx_pending().is_empty() => tcp::write(fd, check.tx_pending()),
                _ => return,
            };
            match r {
                Ok(n) => self.feed(ctx, procs, i, now, Input::Sent(n)),
                Err(Errno::EAGAIN) => return,
                Err(e) => return self.feed(ctx, procs, i, now, Input::SendFailed(e as i32)),
            }
        }
    }

    /// A child was reaped by the runtime; `true` if it was one of ours.
    pub fn on_child_exit(
        &mut self,
        ctx: &mut Ctx,
        pid: i32,
        status: check::ExitStatus,
        now: Instant,
        procs: &mut dyn Spawner,
    ) -> bool {
        if let Some(k) = self.orphans.iter().position(|&p| p == pid) {
            self.orphans.swap_remove(k);
            return true;
        }
        let Some(i) = self.probes.iter().position(|p| p.pid() == Some(pid)) else {
            return false;
        };
        // Drain what the script wrote before its exit is judged (bounded: the pipe holds
        // at most 64 KiB and the check keeps 256 bytes).
        let mut buf = [0u8; 2048];
        for _ in 0..64 {
            let r = match &self.probes[i].kind {
                Kind::Script {
                    child:
                        Some(process::Child {
                            output: Some(fd), ..
                        }),
                    ..
                } => process::read_output(fd, &mut buf),
                _ => break,
            };
            match r {
                Ok(n) if n > 0 => {
                    if let Kind::Script { check, .. } = &mut self.probes[i].kind {
                        let _ = check.handle(now, Input::Output(&buf[..n]));
                    }
                }
                _ => break,
            }
        }
        self.unregister(ctx, i);
        if let Kind::Script { child, .. } = &mut self.probes[i].kind {
            *child = None;
        }
        // Spawning does not wait for the exec: a program that could not run ends here.
        if matches!(status, check::ExitStatus::ExecFailed(_)) {
            self.stats.spawn_errors += 1;
        }
        self.feed(ctx, procs, i, now, Input::Exited(status));
        self.arm(ctx, now);
        true
    }

    /// Take a new configuration: probes whose spec did not change keep their state (health,
    /// counters, a running attempt); others start afresh; removed ones are stopped.
    pub fn reload(
        &mut self,
        ctx: &mut Ctx,
        new: &Config,
        now: Instant,
        procs: &mut dyn Spawner,
    ) -> Result<(), String> {
        let specs = build(new, self.seed, now)?;
        // Token indices change with positions: deregister everything, re-register below.
        for i in 0..self.probes.len() {
            self.unregister(ctx, i);
        }
        let mut old: Vec<Option<Probe>> = core::mem::take(&mut self.probes)
            .into_iter()
            .map(Some)
            .collect();
        let mut probes = Vec::with_capacity(specs.len());
        let (mut kept, mut fresh) = (0usize, 0usize);
        for (i, (id, name, spec)) in specs.into_iter().enumerate() {
            let same_kind = |a: ProbeId, b: ProbeId| {
                matches!(
                    (a, b),
                    (ProbeId::Script(_), ProbeId::Script(_))
                        | (ProbeId::Check(_), ProbeId::Check(_))
                        | (ProbeId::RealServer { .. }, ProbeId::RealServer { .. })
                )
            };
            let found = old.iter().position(|o| {
                o.as_ref()
                    .is_some_and(|o| same_kind(o.id, id) && o.name == name && o.spec.same(&spec))
            });
            match found.and_then(|k| old[k].take()) {
                Some(mut p) => {
                    kept += 1;
                    p.id = id;
                    p.armed = None;
                    p.changed = false;
                    probes.push(p);
                }
                None => {
                    fresh += 1;
                    let kind = instantiate(&spec, mix(self.seed ^ now.total_micros(), i), now)
                        .map_err(|e| format!("check '{name}': {e}"))?;
                    probes.push(Probe::new(id, name, spec, kind));
                }
            }
        }
        for p in old.into_iter().flatten() {
            if let Some(pid) = p.pid() {
                let _ = procs.kill(pid);
                self.orphans.push(pid);
            }
        }
        self.probes = probes;
        self.changes.clear();
        self.heap.clear();
        let n = self.probes.len();
        if self.heap.capacity() < 4 * n + 16 {
            self.heap.reserve(4 * n + 16 - self.heap.len());
        }
        if self.changes.capacity() < n {
            self.changes.reserve(n);
        }
        log::info!("checks: reload kept {kept}, started {fresh}");
        for i in 0..n {
            self.open_icmp(i);
            self.sync(ctx, i);
            self.push_deadline(i);
        }
        self.arm(ctx, now);
        Ok(())
    }

    /// Stop: kill running scripts, close every fd.
    pub fn shutdown(&mut self, ctx: &mut Ctx, _now: Instant, procs: &mut dyn Spawner) {
        for i in 0..self.probes.len() {
            self.unregister(ctx, i);
            let p = &mut self.probes[i];
            match &mut p.kind {
                Kind::Conn { fd, .. } => *fd = None,
                Kind::Icmp { sock, .. } => *sock = None,
                Kind::Script { child, .. } => {
                    if let Some(c) = child.take() {
                        let _ = procs.kill(c.pid);
                        self.orphans.push(c.pid);
                    }
                }
            }
            p.armed = None;
        }
        self.heap.clear();
        ctx.cancel(TIMER);
    }

    /// Pids of running check scripts (for the dump and for tests).
    pub fn children(&self) -> impl Iterator<Item = i32> + '_ {
        self.probes
            .iter()
            .filter_map(|p| p.pid())
            .chain(self.orphans.iter().copied())
    }

    /// One line per probe for the state dump.
    pub fn dump(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        for p in &self.probes {
            let last = p.last_attempt().map(|a| a.reason);
            writeln!(
                out,
                "check {} {:?} {:?} last={}",
                p.name,
                p.id,
                p.health(),
                last.map_or(std::string::String::from("-"), |r| r.to_string())
            )?;
        }
        Ok(())
    }
}

/// The first line of a script's output, trimmed, for the log (empty when not UTF-8).
fn first_line(o: &[u8]) -> &str {
    let line = o.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = &line[..line.len().min(120)];
    core::str::from_utf8(line).unwrap_or("").trim()
}

// --- Operator control (daemon/control.rs): a read-only view for status. ---
impl CheckEngine {
    /// Every probe: id, name, verdict and its last attempt (result, start, latency).
    /// The weight a `dynamic` script check of this probe set last (keepalived
    /// `misc_dynamic`); `None` for other probes and before the script set one.
    pub fn weight_set(&self, p: ProbeId) -> Option<u32> {
        self.probes
            .iter()
            .find(|x| x.id == p)
            .and_then(|x| match &x.kind {
                Kind::Script { check, .. } => check.weight_set(),
                _ => None,
            })
    }

    /// What a script probe's last run wrote (the first `check::script::OUTPUT_CAP` bytes) and
    /// whether it wrote more; `None` for other probes.
    pub fn script_output(&self, p: ProbeId) -> Option<(&[u8], bool)> {
        self.probes
            .iter()
            .find(|x| x.id == p)
            .and_then(|x| match &x.kind {
                Kind::Script { check, .. } => Some(check.output()),
                _ => None,
            })
    }

    pub fn probe_views(
        &self,
    ) -> impl Iterator<Item = (ProbeId, &str, Health, Option<check::Attempt>)> + '_ {
        self.probes
            .iter()
            .map(|p| (p.id, p.name.as_str(), p.health(), p.last_attempt()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "
config script 'chk_a'
    option command 'true'
    option interval '2'
    option fall '2'

config check 'web'
    option type 'tcp'
    option address '10.1.1.1'
    option port '80'

config check 'ping'
    option type 'icmp'

config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
    list track_script 'chk_a weight -60'
    list track_check 'web'

config virtual_server 'vs'
    option address '10.0.0.10'
    option port '80'
    option check 'ping'

config real_server
    option virtual_server 'vs'
    option address '10.2.0.1'
";

    fn cfg(text: &str) -> Config {
        Config::parse_str("t", text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn validate_refuses_what_new_would_refuse_so_a_reload_never_half_applies() {
        let now = Instant::from_secs(1);
        assert_eq!(CheckEngine::validate(&cfg(CFG), now), Ok(()));
        let bad = CFG.replacen(
            "config script",
            "config script 'x'\n\toption command 'true'\n\toption user 'no-such-user-mv'\n\nconfig script",
            1,
        );
        let c = cfg(&bad);
        let e = CheckEngine::validate(&c, now).unwrap_err();
        assert!(e.contains("unknown user 'no-such-user-mv'"), "{e}");
        assert!(CheckEngine::new(&c, 7, now).is_err());
    }

    #[test]
    fn probes_cover_scripts_tracked_checks_and_real_servers() {
        let c = cfg(CFG);
        let e = CheckEngine::new(&c, 7, Instant::from_secs(1)).unwrap();
        let ids: Vec<ProbeId> = e.ids().collect();
        assert_eq!(
            ids,
            [
                ProbeId::Script(0),
                ProbeId::Check(0),
                ProbeId::RealServer { vs: 0, rs: 0 }
            ]
        );
        // A real server counts as up until checked; trackers are unknown.
        assert_eq!(e.health(ProbeId::RealServer { vs: 0, rs: 0 }), Health::Up);
        assert_eq!(e.health(ProbeId::Script(0)), Health::Unknown);
        // The real server's check defaults to the server's address.
        match &e.probes[2].spec {
            Spec::Icmp(s) => assert_eq!(s.dst, "10.2.0.1".parse::<IpAddr>().unwrap()),
            _ => panic!("not icmp"),
        }
        match &e.probes[0].spec {
            Spec::Script(s) => {
                // Split into words like keepalived: no shell.
                assert_eq!(s.argv, ["true"]);
                assert_eq!(s.schedule.fall, 2);
                assert_eq!(s.schedule.interval, Duration::from_secs(2));
            }
            _ => panic!("not a script"),
        }
    }

    #[test]
    fn first_line_is_trimmed_and_bounded() {
        assert_eq!(first_line(b" no file\nsecond"), "no file");
        assert_eq!(first_line(b""), "");
        assert_eq!(first_line(&[0xff, 0xfe]), "");
    }
}
