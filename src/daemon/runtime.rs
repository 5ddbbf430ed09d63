//! The daemon: one [`Handler`] owning every part, driven by the one poll loop.
//!
//! Dispatch goes by the owner bits of tokens and timer ids (`ids.rs`). Signals: SIGTERM /
//! SIGINT leave gracefully (priority-0 adverts, VIPs removed) and stop the loop; SIGHUP
//! re-reads the file and swaps the configuration in only if it is valid; SIGUSR1 logs the
//! state; SIGCHLD reaps children and hands each exit to the part that spawned it.
//!
//! # One direction: callbacks, then `settle`
//! A callback (timer, signal, queued input) does the work of the part it belongs to, and
//! what other parts must learn stays in that part's outbox. After every callback,
//! [`Daemon::settle`] empties the outboxes in one fixed order, each stage feeding the next:
//!
//! 1. checks: health changes (`CheckEngine::take_change`) -> tracker inputs, and the IPVS
//!    real servers' health (`Lvs::set_check_health`, synced by its own timer, armed at once,
//!    so any number of changes in one turn cost one IPVS sync);
//! 2. trackers: changed adjustments (`Tracking::take_changed`) -> `Input::Trackers` to the
//!    instances, which send adverts and add or remove VIPs as their state machine says
//!    (RFC 5798 6.4 orders those within a transition, so they are not deferred);
//! 3. sync groups: each member's new state -> commands to the other members
//!    (`Vrrp::settle_sync_groups`), until the groups are quiet;
//! 4. transitions (`Vrrp::take_transition`) -> notify scripts and hotplug, the instance's
//!    then its sync group's; real servers' health and virtual servers' quorum changes
//!    (`Lvs::take_event`) -> their notify commands; then the notifier starts what its limits allow
//!    (`Notifier::settle`);
//! 5. notify queues that got past the stops of an instance preempted out of MASTER
//!    (`Notifier::take_resign`) -> `Input::ServicesStopped`, its priority-0 resign
//!    (`vrrp::instance`, "Preemption"); it changes no state, so nothing flows back.
//!
//! Before stage 1, a resync of links and addresses when link events were lost (the queue was
//! full or the kernel dropped some) and no older link event is still queued
//! ([`super::link_sync`]).
//!
//! Reading an fd never reaches past its own part: adverts, link events, control requests and
//! the health changes a probe read produced are queued as input events, handled after due
//! timers like everything else read.

use std::path::{Path, PathBuf};

use log::{error, info, warn};

use super::checks::{CheckEngine, ProbeId};
use super::event_loop::Busy;
use super::event_loop::{Ctx, Handler, Inbox, Loop, Read};
use super::ids::{timer_owner, token_owner, Part};
use super::kernel::{Linux, Southbound};
use super::link_sync::LinkSync;
use super::lvs::{self, Lvs, LvsEvent};
use super::notify::Notifier;
use super::tracking::Tracking;
use super::vrrp::{Vrrp, VrrpEvent};
use super::{check_capacity, Ready, Required, Signal, TimerId, Token};
use crate::base::lateness::{self, Histogram, LateWarn};
use crate::base::{Duration, Instant};
use crate::check::Health;
use crate::config::Config;
use crate::sys::rtnl::RtnlEvent;

// Operator control (status, maintenance, priority, reload, garp): a child module so it can
// read the parts this struct owns.
mod control;

/// Everything the loop queues between reading an fd and handling what was read.
#[derive(Clone, Debug)]
pub enum Event {
    Vrrp(VrrpEvent),
    Link(RtnlEvent),
    /// A probe's health changed while its fd was read.
    Health(ProbeId, Health),
    /// A complete control-socket request (control.rs), carried out after due timers.
    Control(crate::daemon::control_server::Pending),
}

/// The kernel seam (`kernel.rs`) is `S`: Linux in the daemon, a recording fake in
/// `tests/daemon_conformance.rs`. It lives in the VRRP part, which uses every concern, and is
/// lent from there to the other parts (link dumps here, the notifier's children).
pub struct Daemon<S: Southbound = Linux> {
    path: PathBuf,
    cfg: Config,
    vrrp: Vrrp<S>,
    /// Lost link events and when to resync from dumps.
    link_sync: LinkSync,
    /// IPVS (lvs.rs); None without virtual servers.
    lvs: Option<Lvs>,
    checks: CheckEngine,
    tracking: Tracking,
    notifier: Notifier,
    /// E-mail alerts (mail.rs).
    mailer: super::mail::Mailer,
    /// Control socket and operator state (control.rs).
    control: control::Control,
    /// How late timers fired (base/lateness.rs): all of them, and each VRRP router's worst
    /// (by timer index, reset when a reload changes the instances).
    late: Histogram,
    late_worst: Vec<Duration>,
    late_warn: LateWarn,
    /// The late-timer warning of the timer being fired, written once its work is done: a
    /// log line can take milliseconds to write (a file on a busy disk, a slow log reader),
    /// and the advert goes out first.
    late_note: Option<String>,
}

/// Loop resources a configuration needs: one packet socket per interface plus netlink, one
/// timer per instance plus one per daemon part.
fn required(cfg: &Config) -> Required {
    let mut ifaces: Vec<&str> = cfg.instances.iter().map(|i| i.interface.as_str()).collect();
    ifaces.sort_unstable();
    ifaces.dedup();
    Required {
        // + one fd per health-check probe (its connection, ICMP socket or script pipe).
        fds: ifaces.len() + 1 + super::checks::fds_needed(cfg)
            // control socket listener and clients (control.rs)
            + 1 + crate::daemon::control_server::MAX_CLIENTS
            // the e-mail alert connection (mail.rs)
            + 1,
        // + the VRRP part's own (VIP refresh, VIP restore, RAs).
        timers: cfg.instances.len() + 8 + 2,
    }
}

impl Daemon<Linux> {
    pub fn new(path: &Path, cfg: Config, socket: &Path) -> Result<Daemon<Linux>, String> {
        check_capacity(required(&cfg)).map_err(|e| e.to_string())?;
        // Before the sockets: a configuration too big for the loop opens nothing.
        let kernel = Linux::open()?;
        Daemon::with_kernel(path, cfg, socket, kernel)
    }
}

impl<S: Southbound> Daemon<S> {
    /// The daemon on kernel seam `kernel` (see [`Daemon::new`] for Linux).
    pub fn with_kernel(
        path: &Path,
        cfg: Config,
        socket: &Path,
        kernel: S,
    ) -> Result<Daemon<S>, String> {
        check_capacity(required(&cfg)).map_err(|e| e.to_string())?;
        let vrrp = Vrrp::new(&cfg, kernel);
        let lvs = Lvs::new(&cfg)?;
        let now = crate::sys::clock::now();
        // Warm-up spread: differs between routers and restarts (no getrandom dependency).
        let seed = now.total_micros() ^ (u64::from(std::process::id()) << 32);
        let checks = CheckEngine::new(&cfg, seed, now)?;
        let tracking = Tracking::new(&cfg, &checks);
        let hotplug = super::notify::hotplug_from_env();
        crate::sys::process::pin(super::scripts::prepare(&cfg, hotplug.as_deref())?);
        let notifier = Notifier::new(&cfg, hotplug)?;
        for w in super::notify::role_warnings(&cfg, "/") {
            warn!("{w}");
        }
        let control = control::Control::bind(socket, now)?;
        let mailer = super::mail::Mailer::new(&cfg);
        let late_worst = vec![Duration::ZERO; vrrp.slot_count()];
        let late_warn = LateWarn::new(cfg.globals.log_suppress);
        Ok(Daemon {
            path: path.to_path_buf(),
            cfg,
            vrrp,
            link_sync: LinkSync::new(),
            lvs,
            checks,
            tracking,
            notifier,
            mailer,
            control,
            late: Histogram::default(),
            late_worst,
            late_warn,
            late_note: None,
        })
    }

    pub fn start(&mut self, ctx: &mut Ctx, now: Instant) {
        if let Some(fd) = self.vrrp.southbound_mut().link_events_fd() {
            if let Err(e) = ctx.register(Part::Links.token(0), &fd, super::Interest::READABLE) {
                error!("rtnetlink events: {e}");
            }
        }
        // Trackers are known before the instances start, so a tracked link that is down puts
        // its instance straight into FAULT.
        self.checks.start(ctx, now);
        self.tracking.start(ctx, now);
        // One link dump: the event side's picture (only changes from now on become events)
        // and the tracked interfaces' state.
        self.seed_tracked_links(true);
        self.settle(ctx, now);
        self.vrrp.start(ctx, now);
        // IPVS (lvs.rs): opens genl, reconciles at once; without ip_vs it logs once and idles.
        if let Some(l) = self.lvs.as_mut() {
            l.start(ctx, now, self.vrrp.southbound_mut());
        }
        self.lvs_health_from_checks(ctx, now);
        info!(
            "running {} instance(s) from {}",
            self.vrrp.instance_count(),
            self.path.display()
        );
        self.control_start(ctx, now);
        self.settle(ctx, now);
    }

    /// The kernel seam, for a test that drives the daemon on a fake.
    pub fn kernel_mut(&mut self) -> &mut S {
        self.vrrp.southbound_mut()
    }

    /// Drain every part's outbox in the one order of the module docs. Called after every
    /// callback; a stage only feeds later stages, so one pass leaves every outbox empty.
    fn settle(&mut self, ctx: &mut Ctx, now: Instant) {
        // 0. Lost link events -> links and addresses re-read (feeds instances and trackers).
        if self.link_sync.take_resync() {
            self.resync_links(ctx, now);
        }
        // 1. Checks -> trackers' probe state and IPVS real servers.
        while let Some((p, h)) = self.checks.take_change() {
            self.apply_health(ctx, p, h, now);
        }
        // 2. Trackers -> the instances whose adjustment moved.
        for i in self.tracking.take_changed() {
            let adj = self.tracking.adjustment(usize::from(i));
            self.vrrp.set_trackers(ctx, usize::from(i), adj, now);
        }
        // 3. Instances -> their sync groups -> the other members.
        self.vrrp.settle_sync_groups(ctx, now);
        // 4. Transitions -> notify.
        self.notify_transitions(ctx, now);
        // 5. Notify queues past a preempted master's stops -> its resign: one advert, no
        //    transition, so no earlier stage has news from it.
        while let Some(i) = self.notifier.take_resign() {
            self.vrrp
                .feed_instance(ctx, i, crate::vrrp::instance::Input::ServicesStopped, now);
        }
    }

    /// Each transition to the notify scripts. Members of a sync group move together, so the
    /// group is announced with the state its members move to (repeats are dropped).
    fn notify_transitions(&mut self, ctx: &mut Ctx, now: Instant) {
        while let Some(t) = self.vrrp.take_transition() {
            log::debug!(
                "{}: now {} (priority {})",
                self.vrrp.instance_name(t.inst as usize),
                t.to,
                t.priority
            );
            let i = t.inst as usize;
            self.notifier.instance_transition(&t);
            self.mailer
                .instance_transition(&t, self.vrrp.instance_name(i));
            if let Some(g) = self.cfg.instances.get(i).and_then(|c| c.sync_group) {
                self.notifier.group_transition(g, t.to, t.reason);
            }
        }
        // Effective priority changes -> the ubus event (a transition told the new one).
        while let Some((i, p, master)) = self.vrrp.take_priority_change() {
            self.notifier.priority_change(i, p, master);
        }
        // Real servers' health and virtual servers' quorum -> their notify commands.
        if let Some(l) = self.lvs.as_mut() {
            while let Some(e) = l.take_event() {
                match e {
                    LvsEvent::RealServer { vs, rs, up } => {
                        self.notifier
                            .real_server_change(usize::from(vs), usize::from(rs), up)
                    }
                    LvsEvent::Quorum { vs, event } => {
                        self.notifier
                            .quorum_change(usize::from(vs), event.up, event)
                    }
                }
            }
        }
        // Start queued notify jobs (bounded) and keep their timeout timer.
        self.notifier.settle(ctx, now, self.vrrp.southbound_mut());
        // Start or finish e-mail alerts (one connection, never waited for).
        self.mailer.settle(ctx, now);
    }

    /// One probe's new health, to its two consumers: the trackers of `track_script` /
    /// `track_check`, and IPVS for a real server's check (with the weight a dynamic script
    /// check set).
    fn apply_health(&mut self, ctx: &mut Ctx, p: ProbeId, h: Health, now: Instant) {
        self.tracking.on_probe(p, h);
        if let (ProbeId::RealServer { vs, rs }, Some(l)) = (p, self.lvs.as_mut()) {
            l.set_weight(ctx, vs, rs, self.checks.weight_set(p), now);
            l.set_check_health(ctx, vs, rs, h, now);
        }
    }

    /// Tell tracking the current state of every tracked interface (missing = down), from
    /// one link dump; with `events`, the link event side takes that dump as its picture too
    /// (at start and after lost events: `KernelLinks::reseed_link_events`).
    fn seed_tracked_links(&mut self, events: bool) {
        let names: Vec<String> = self.tracking.tracked_links().map(String::from).collect();
        for n in &names {
            self.tracking.set_link(n, false);
        }
        let tracking = &mut self.tracking;
        let mut each = |l: &crate::sys::rtnl::LinkInfo| {
            if names.iter().any(|n| n.as_str() == l.name.as_str()) {
                tracking.set_link(l.name.as_str(), l.is_up());
            }
        };
        let kernel = self.vrrp.southbound_mut();
        let dumped = if events {
            kernel.reseed_link_events(&mut each)
        } else {
            kernel.dump_links(&mut each)
        };
        if let Err(e) = dumped {
            error!("rtnetlink link dump: {e}");
        }
    }

    fn track_link_event(&mut self, ev: &RtnlEvent) {
        match ev {
            RtnlEvent::LinkNew { name, up, .. } => self.tracking.set_link(name.as_str(), *up),
            RtnlEvent::LinkUp { name, .. } => self.tracking.set_link(name.as_str(), true),
            RtnlEvent::LinkDown { name, .. } | RtnlEvent::LinkGone { name, .. } => {
                self.tracking.set_link(name.as_str(), false)
            }
            // Lost events are made good by `resync_links`.
            RtnlEvent::Overrun | RtnlEvent::AddrAdded(_) | RtnlEvent::AddrRemoved(_) => {}
        }
    }

    /// Link events were lost: re-read every link once (the event tracker's picture, so later
    /// events are told against the kernel's state, and tracked interfaces), then the VRRP
    /// interfaces with their addresses.
    fn resync_links(&mut self, ctx: &mut Ctx, now: Instant) {
        let (lost, resyncs) = self.link_sync.stats();
        warn!("link events were lost ({lost} so far): re-reading links and addresses (resync {resyncs})");
        self.seed_tracked_links(true);
        self.vrrp.resync_links(ctx, now);
    }

    /// Returns the line to report, or every reason the new configuration was refused
    /// (the control socket's `reload` prints them).
    fn reload(&mut self, ctx: &mut Ctx, now: Instant) -> Result<&'static str, Vec<String>> {
        let new = match Config::load(&self.path) {
            Ok(c) => c,
            Err(errors) => {
                for e in &errors {
                    error!("{e}");
                }
                error!(
                    "reload: {} error(s) in {}; keeping the running configuration",
                    errors.len(),
                    self.path.display()
                );
                return Err(errors.iter().map(|e| e.to_string()).collect());
            }
        };
        for w in new.warnings() {
            warn!("{w}");
        }
        if let Err(e) = check_capacity(required(&new)) {
            error!("reload: {e}; keeping the running configuration");
            return Err(vec![e.to_string()]);
        }
        // IPVS (lvs.rs): refuse what the IPVS part cannot honour before anything is swapped.
        if let Err(e) = lvs::map_config(&new) {
            error!("reload: {e}; keeping the running configuration");
            return Err(vec![e]);
        }
        if let Err(e) = CheckEngine::validate(&new, now) {
            error!("reload: {e}; keeping the running configuration");
            return Err(vec![e]);
        }
        // --- notify: script_user must exist; every program resolves (and passes
        // enable_script_security) now, pinned below whether or not the rest changed.
        let hotplug = super::notify::hotplug_from_env();
        let pins = match super::notify::script_user(&new)
            .and(super::scripts::prepare(&new, hotplug.as_deref()))
        {
            Ok(p) => p,
            Err(e) => {
                error!("reload: {e}; keeping the running configuration");
                return Err(vec![e]);
            }
        };
        crate::sys::process::pin(pins);
        if new == self.cfg {
            info!("reload: configuration unchanged");
            // IPVS (lvs.rs): a reload retries IPVS if it was missing (ip_vs loaded since).
            if let Some(l) = self.lvs.as_mut() {
                l.retry_unavailable(ctx, now, self.vrrp.southbound_mut());
            }
            return Ok("reload: configuration unchanged");
        }
        log::set_max_level(new.globals.log_level.to_filter().max(log::max_level()));
        self.vrrp.reload(ctx, &new, now);
        if new.instances != self.cfg.instances {
            self.late_worst = vec![Duration::ZERO; self.vrrp.slot_count()];
        }
        self.late_warn = LateWarn::new(new.globals.log_suppress);
        if let Err(e) = self
            .checks
            .reload(ctx, &new, now, self.vrrp.southbound_mut())
        {
            error!("reload: checks: {e}");
        }
        self.tracking.reload(ctx, &new, &self.checks, now);
        self.notifier.reload(&new);
        for w in super::notify::role_warnings(&new, "/") {
            warn!("{w}");
        }
        self.mailer.reload(&new);
        self.seed_tracked_links(false);
        // IPVS (lvs.rs): after the check engine, whose probe ids follow the new config.
        self.reload_lvs(ctx, &new, now);
        protect(&new.globals, Some(&self.cfg.globals));
        // Before the settle step: notify looks sync groups up in the new configuration.
        self.cfg = new;
        info!("reload: applied");
        self.control_reapply(ctx, now);
        Ok("reload: applied")
    }

    /// IPVS (lvs.rs): removed virtual servers are cleaned up, the rest reconciled; the part
    /// is created when the first virtual server appears and dropped when the last leaves.
    fn reload_lvs(&mut self, ctx: &mut Ctx, new: &Config, now: Instant) {
        match self.lvs.as_mut() {
            Some(l) => {
                if let Err(e) = l.reload(ctx, new, now, self.vrrp.southbound_mut()) {
                    error!("reload: {e}");
                }
                if new.virtual_servers.is_empty() {
                    l.shutdown(ctx, now);
                    self.lvs = None;
                }
            }
            None => match Lvs::new(new) {
                Ok(Some(mut l)) => {
                    l.start(ctx, now, self.vrrp.southbound_mut());
                    self.lvs = Some(l);
                }
                Ok(None) => {}
                Err(e) => error!("reload: {e}"),
            },
        }
        self.lvs_health_from_checks(ctx, now);
    }

    /// IPVS (lvs.rs): every real server's current verdict from the check engine (after a
    /// reload the probe ids are new and unchanged probes report no change).
    fn lvs_health_from_checks(&mut self, ctx: &mut Ctx, now: Instant) {
        let Some(l) = self.lvs.as_mut() else { return };
        for p in self.checks.ids() {
            if let ProbeId::RealServer { vs, rs } = p {
                l.set_weight(ctx, vs, rs, self.checks.weight_set(p), now);
                l.set_check_health(ctx, vs, rs, self.checks.health(p), now);
            }
        }
    }

    fn shutdown(&mut self, ctx: &mut Ctx, now: Instant) {
        info!("stopping");
        self.checks.shutdown(ctx, now, self.vrrp.southbound_mut());
        self.tracking.shutdown(ctx);
        // Master services and interfaces stop before the priority-0 adverts hand over.
        self.notifier.leave_roles(self.vrrp.southbound_mut());
        self.vrrp.shutdown(ctx, now);
        // IPVS (lvs.rs): delete our services that have cleanup set.
        if let Some(l) = self.lvs.as_mut() {
            l.shutdown(ctx, now);
        }
        // The parts have stopped: of the settle step only the notify stage is left, for the
        // instances' last transitions; then notify_stop, waited for at most STOP_WAIT.
        self.notify_transitions(ctx, now);
        self.control_stop(ctx);
        self.notifier.shutdown(self.vrrp.southbound_mut());
        ctx.stop();
    }

    /// Reap every exited child (one SIGCHLD may stand for many exits).
    fn reap_children(&mut self, ctx: &mut Ctx, now: Instant) {
        for _ in 0..1024 {
            // An exec failure arrives here too (`ExitStatus::ExecFailed`): spawning never
            // waits for the exec.
            let Some((pid, st)) = self.vrrp.southbound_mut().reap() else {
                break;
            };
            // Offer the exit to the part that spawned it.
            if !self
                .checks
                .on_child_exit(ctx, pid, st, now, self.vrrp.southbound_mut())
                && !self.notifier.on_child_exit(pid, st)
                && !self.vrrp.on_child_exit(ctx, pid, st, now)
            {
                log::debug!("reaped unknown child {pid} ({st:?})");
            }
        }
    }
}

impl<S: Southbound> Handler for Daemon<S> {
    type Input = Event;

    /// Reads only: what was read is queued for [`Self::on_input`], never handed to another
    /// part here (no settle step while reading).
    fn on_readable(
        &mut self,
        ctx: &mut Ctx,
        inbox: &mut Inbox<'_, Event>,
        token: Token,
        ready: Ready,
        now: Instant,
    ) -> Read {
        match token_owner(token) {
            // Frames wait in the kernel while the queue is full, rather than being read
            // and dropped.
            Some((Part::Vrrp, _)) if inbox.is_full() => Read::Drained,
            Some((Part::Vrrp, idx)) => self.vrrp.on_readable(idx as usize, |ev| {
                inbox.push(Event::Vrrp(ev)) && !inbox.is_full()
            }),
            // A probe's own state machine takes what its fd gave at once (the probe is the
            // part being read); a health change that results is queued like an advert. With
            // the queue full it stays in the engine and the next settle step takes it.
            Some((Part::Checks, _)) => {
                let r = self
                    .checks
                    .on_readable(ctx, token, ready, now, self.vrrp.southbound_mut());
                while !inbox.is_full() {
                    let Some((p, h)) = self.checks.take_change() else {
                        break;
                    };
                    inbox.push(Event::Health(p, h));
                }
                r
            }
            Some((Part::Control, idx)) => self.control_readable(ctx, inbox, idx, ready, now),
            // The e-mail alert connection (mail.rs) settles itself.
            Some((Part::Notify, _)) => self.mailer.on_readable(ctx, now),
            Some((Part::Links, _)) => {
                let sync = &mut self.link_sync;
                // A dropped event is not lost for good: it schedules a resync.
                let r = self
                    .vrrp
                    .southbound_mut()
                    .read_link_events(&mut |ev| sync.push(inbox, Event::Link(ev)));
                match r {
                    Ok(true) => Read::Again,
                    Ok(false) => Read::Drained,
                    Err(e) => {
                        warn!("rtnetlink events: {e}");
                        Read::Drained
                    }
                }
            }
            _ => Read::Drained,
        }
    }

    fn on_input(&mut self, ctx: &mut Ctx, _token: Token, input: Event, now: Instant) {
        match input {
            Event::Vrrp(ev) => self.vrrp.on_event(ctx, ev, now),
            Event::Link(ev) => {
                self.link_sync.handled();
                if ev == RtnlEvent::Overrun {
                    // The kernel dropped events: resync once the older queued ones are handled.
                    self.link_sync.lost();
                } else {
                    // RFC 5798 6.4 interface events for the instances on it, and track_interface.
                    self.vrrp.on_link_event(ctx, &ev, now);
                    self.track_link_event(&ev);
                }
            }
            Event::Health(p, h) => self.apply_health(ctx, p, h, now),
            Event::Control(p) => self.control_input(ctx, p, now),
        }
        self.settle(ctx, now);
    }

    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant) {
        match timer_owner(id) {
            Some((Part::Vrrp, i)) => self.vrrp.on_timer(ctx, i as usize, now),
            // Timer 0 = probe deadlines, 1 = track files.
            Some((Part::Checks, _)) => {
                self.checks
                    .on_timer(ctx, id, now, self.vrrp.southbound_mut());
                self.tracking.on_timer(ctx, id, now);
            }
            Some((Part::Control, _)) => self.control_timer(ctx, id, now),
            // Notify jobs past notify_timeout.
            Some((Part::Notify, 1)) => self.mailer.on_timer(now),
            Some((Part::Notify, _)) => self.notifier.on_timer(now, self.vrrp.southbound_mut()),
            // IPVS (lvs.rs): debounced sync / periodic resync.
            Some((Part::Lvs, _)) => {
                if let Some(l) = self.lvs.as_mut() {
                    l.on_timer(ctx, id, now);
                }
            }
            _ => {}
        }
        self.settle(ctx, now);
        if let Some(note) = self.late_note.take() {
            warn!("{note}");
        }
    }

    /// Lateness figures for `status`, and one warning per `log_suppress` interval when a VRRP
    /// timer fires later than a tenth of its instance's Skew_Time (RFC 5798 6.1: the slack a
    /// backup allows beyond three advert intervals), naming what kept the loop busy.
    fn on_late(
        &mut self,
        id: TimerId,
        late: Duration,
        busy: Option<(Busy, Duration)>,
        waited: Option<Duration>,
    ) {
        self.late.record(late);
        let Some((Part::Vrrp, i)) = timer_owner(id) else {
            return;
        };
        let i = i as usize;
        if let Some(w) = self.late_worst.get_mut(i) {
            *w = (*w).max(late);
        }
        let Some(v) = self.vrrp.instance_view(i) else {
            return;
        };
        let skew = v.fsm.skew_time();
        let now = crate::sys::clock::now();
        let Some(held) = self.late_warn.judge(late, lateness::threshold(skew), now) else {
            return;
        };
        let cause = late_cause(late, busy, waited);
        let held = if held > 0 {
            format!(" ({held} more late timers since the last warning)")
        } else {
            String::new()
        };
        self.late_note = Some(format!(
            "{}: timer fired {} late, over a tenth of its Skew_Time ({}); {cause}{held}",
            v.cfg.name,
            ms(late),
            ms(skew)
        ));
    }

    fn on_signal(&mut self, ctx: &mut Ctx, sig: Signal, now: Instant) {
        match sig {
            Signal::Terminate => self.shutdown(ctx, now),
            Signal::Reload => {
                let _ = self.reload(ctx, now);
            }
            Signal::Dump => {
                self.vrrp.dump();
                if let Some(l) = self.lvs.as_ref() {
                    l.dump();
                }
                let mut text = String::new();
                let _ = self.checks.dump(&mut text);
                for line in text.lines() {
                    info!("{line}");
                }
                let m = self.mailer.stats();
                info!(
                    "e-mail alerts: {} delivered, {} failed, {} dropped (queue full)",
                    m.delivered, m.failed, m.dropped
                );
            }
            Signal::Child => self.reap_children(ctx, now),
        }
        if !ctx.is_stopping() {
            self.settle(ctx, now);
        }
    }
}

/// What a loop callback was, in a late-timer warning.
/// Decimal milliseconds by hand: float formatting costs 12 KB on the routers.
fn ms(d: Duration) -> String {
    let us = d.as_micros() as u64;
    format!("{}.{} ms", us / 1000, (us % 1000) / 100)
}

/// What made a timer `late`, for its warning: the loop's callback that ran long while it was
/// overdue if there is one; else whether the daemon was woken on time and then `waited` for
/// a CPU (at least half the lateness) or was woken late.
fn late_cause(late: Duration, busy: Option<(Busy, Duration)>, waited: Option<Duration>) -> String {
    match (busy, waited) {
        (Some((b, took)), _) => format!(
            "{} ran {} ms",
            busy_name(b),
            took.as_secs() * 1000 + u64::from(took.subsec_millis())
        ),
        (None, Some(w)) if w * 2 >= late => format!(
            "nothing in the daemon ran long; woken on time, it waited {} for a CPU that other \
             work held (interrupts and softirqs, a task of higher priority, or another process \
             inside a system call, which a real-time task cannot interrupt on a kernel without \
             full preemption)",
            ms(w)
        ),
        (None, Some(w)) => format!(
            "nothing in the daemon ran long and it waited only {} for a CPU: it was woken late \
             (the timer interrupt came late: interrupts off, or a virtual machine's CPU not \
             running)",
            ms(w)
        ),
        (None, None) => "nothing in the daemon ran long: the CPU went to other work".to_string(),
    }
}

fn busy_name(b: Busy) -> &'static str {
    let part = |p: Option<(Part, u32)>| p.map(|(p, _)| p);
    match b {
        Busy::Signal(Signal::Reload) => "a reload",
        Busy::Signal(Signal::Child) => "reaping children",
        Busy::Signal(Signal::Dump) => "a state dump",
        Busy::Signal(Signal::Terminate) => "the shutdown",
        Busy::Read(t) | Busy::Input(t) => match part(token_owner(t)) {
            Some(Part::Vrrp) => "receiving adverts",
            Some(Part::Links) => "link and address events",
            Some(Part::Checks) => "a check",
            Some(Part::Notify) => "an e-mail alert",
            Some(Part::Lvs) => "IPVS",
            Some(Part::Control) => "the control socket",
            None => "an fd",
        },
        Busy::Timer(t) => match part(timer_owner(t)) {
            Some(Part::Vrrp) => "a VRRP timer (an advert sent, a transition)",
            Some(Part::Links) => "a link resync",
            Some(Part::Checks) => "a check",
            Some(Part::Notify) => "notify commands",
            Some(Part::Lvs) => "an IPVS sync",
            Some(Part::Control) => "the control socket",
            None => "a timer",
        },
    }
}

/// Apply the load protection of `globals` (sys/sched.rs): scheduling class, locked memory, OOM
/// score; at start (`old` None) and on a reload for what changed. A failure (no
/// CAP_SYS_NICE in a container, a kernel without MCL_ONFAULT) is logged and the daemon runs
/// unprotected rather than not at all.
fn protect(g: &crate::config::model::Globals, old: Option<&crate::config::model::Globals>) {
    use crate::sys::sched;
    if old.is_none_or(|o| (o.sched_policy, o.sched_priority) != (g.sched_policy, g.sched_priority))
    {
        match sched::set_policy(g.sched_policy, g.sched_priority) {
            Ok(()) if g.sched_policy == sched::Policy::Other => {
                info!("scheduling: {} (no real-time)", g.sched_policy.name())
            }
            Ok(()) => info!(
                "scheduling: {} priority {} (children start as SCHED_OTHER)",
                g.sched_policy.name(),
                g.sched_priority
            ),
            Err(e) => warn!(
                "scheduling: {} priority {}: {e}; running in the normal class",
                g.sched_policy.name(),
                g.sched_priority
            ),
        }
    }
    if old.is_none_or(|o| o.lock_memory != g.lock_memory) {
        if g.lock_memory {
            match sched::lock_memory() {
                Ok(sched::Locked::CurrentAndFuture) => info!("memory locked (current and future)"),
                Ok(sched::Locked::CurrentOnly) => info!(
                    "memory locked (what is mapped now; RLIMIT_MEMLOCK is finite and CAP_IPC_LOCK is missing, so not later mappings)"
                ),
                Err(e) => warn!("lock_memory: mlockall: {e}; memory not locked"),
            }
        } else if old.is_some() {
            sched::unlock_memory();
            info!("memory unlocked");
        }
    }
    if old.is_none_or(|o| o.oom_score_adj != g.oom_score_adj) {
        if let Err(e) = sched::set_oom_score_adj(g.oom_score_adj) {
            warn!("oom_score_adj {}: {e}", g.oom_score_adj);
        }
    }
}

/// Run the daemon in the foreground until SIGTERM/SIGINT; returns the exit code.
///
/// The loop and the daemon live on the heap and this function is never inlined into `main`:
/// on the stack they made a 61 KiB frame, and the stack probes touch every page of a frame,
/// so all of it stayed resident for the daemon's life.
#[inline(never)]
pub fn run(path: &Path, cfg: Config, socket: &Path) -> i32 {
    let mut lp: Box<Loop<Event>> = match Loop::with_signals() {
        Ok(l) => Box::new(l),
        Err(e) => {
            error!("signals: {e}");
            return 3;
        }
    };
    // Room for every fd the loop's tables allow (probes of thousands of real servers), plus
    // stdio, the signalfd, the timerfd and a reload's second config read.
    let want = super::MAX_FDS as u64 + 64;
    match crate::sys::fd::raise_nofile(want) {
        Ok(got) if (got as usize) < required(&cfg).fds + 16 => warn!(
            "open files limited to {got} (hard RLIMIT_NOFILE); this configuration may need {}",
            required(&cfg).fds + 16
        ),
        Ok(_) => {}
        Err(e) => warn!("RLIMIT_NOFILE: {e}"),
    }
    let mut d = match Daemon::new(path, cfg, socket) {
        Ok(d) => Box::new(d),
        Err(e) => {
            error!("{e}");
            return 3;
        }
    };
    // After the config's tables and sockets exist, before the first timer.
    protect(&d.cfg.globals, None);
    let now = crate::sys::clock::now();
    d.start(lp.ctx(), now);
    match lp.run(&mut *d) {
        Ok(()) => {
            info!("stopped");
            0
        }
        Err(e) => {
            error!("event loop: {e}");
            3
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_timer_is_blamed_on_a_callback_a_wait_for_the_cpu_or_a_late_wake_up() {
        let late = Duration::from_millis(19);
        let b = late_cause(
            late,
            Some((Busy::Signal(Signal::Reload), Duration::from_millis(25))),
            Some(Duration::from_millis(1)),
        );
        assert_eq!(b, "a reload ran 25 ms");
        let w = late_cause(late, None, Some(Duration::from_micros(19_230)));
        assert!(
            w.contains("woken on time, it waited 19.2 ms for a CPU"),
            "{w}"
        );
        assert!(w.contains("system call"), "{w}");
        let l = late_cause(late, None, Some(Duration::from_micros(300)));
        assert!(
            l.contains("waited only 0.3 ms") && l.contains("woken late"),
            "{l}"
        );
        let u = late_cause(late, None, None);
        assert!(u.contains("the CPU went to other work"), "{u}");
    }

    /// 255 instances on one interface (every VRID) and 10,000 TCP-checked real servers load,
    /// and the loop's fixed tables take what they need.
    #[test]
    fn capacity_takes_every_vrid_on_one_interface_and_10000_checked_real_servers() {
        use crate::config::limits::{MAX_INSTANCES, MAX_REAL_SERVERS};
        let mut text = String::from(
            "config check 'tcp'\n\toption type 'tcp'\n\toption interval '1'\n\n\
             config virtual_server 'vs'\n\toption address '10.0.0.200'\n\toption port '80'\n\toption check 'tcp'\n\n",
        );
        for v in 1..=255 {
            text.push_str(&format!(
                "config instance 'vi{v}'\n\toption interface 'br-lan'\n\toption vrid '{v}'\n\tlist vip '10.0.{}.{}'\n\n",
                1 + v / 250,
                1 + v % 250
            ));
        }
        for i in 0..10_000 {
            text.push_str(&format!(
                "config real_server\n\toption virtual_server 'vs'\n\toption address '10.{}.{}.{}'\n\toption port '8080'\n\n",
                1 + i / 62_500,
                1 + (i / 250) % 250,
                1 + i % 250
            ));
        }
        let cfg = Config::parse_str("t", &text).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(cfg.instances.len(), 255);
        const _: () = assert!(MAX_INSTANCES >= 255 && MAX_REAL_SERVERS >= 10_000);
        let req = required(&cfg);
        assert!(req.fds >= 10_000, "one fd per checked real server: {req:?}");
        check_capacity(req).unwrap_or_else(|e| panic!("{e}"));
    }
}
