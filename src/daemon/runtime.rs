//! The daemon: one [`Handler`] owning every part, driven by the one poll loop.
//!
//! Dispatch goes by the owner bits of tokens and timer ids (`ids.rs`). Signals: SIGTERM /
//! SIGINT leave gracefully (priority-0 adverts, VIPs removed) and stop the loop; SIGHUP
//! re-reads the file and swaps the configuration in only if it is valid; SIGUSR1 logs the
//! state; SIGCHLD reaps children and hands each exit to the part that spawned it.

use std::path::{Path, PathBuf};

use log::{error, info, warn};

use super::checks::{CheckEngine, ProbeId};
use super::event_loop::{Ctx, Handler, Inbox, Loop, Read};
use super::ids::{timer_owner, token_owner, Part};
use super::lvs::{self, Lvs};
use super::notify::Notifier;
use super::tracking::Tracking;
use super::vrrp::{Vrrp, VrrpEvent};
use super::{check_capacity, Ready, Required, Signal, TimerId, Token};
use crate::base::Instant;
use crate::config::Config;
use crate::sys::rtnl::{RtnlEvent, RtnlEvents};

// Operator control (status, maintenance, priority, reload, garp) lives in its own file; a
// child module so it can read the parts this struct owns.
#[path = "control.rs"]
mod control;

/// Everything the loop queues between reading an fd and handling what was read.
#[derive(Clone, Debug)]
pub enum Event {
    Vrrp(VrrpEvent),
    Link(RtnlEvent),
    /// A complete control-socket request (control.rs), carried out after due timers.
    Control(crate::control::server::Pending),
}

pub struct Daemon {
    path: PathBuf,
    cfg: Config,
    vrrp: Vrrp,
    links: RtnlEvents,
    /// IPVS (lvs.rs); None without virtual servers.
    lvs: Option<Lvs>,
    // --- checks, trackers, notify (issue 5) ---
    checks: CheckEngine,
    tracking: Tracking,
    notifier: Notifier,
    /// Control socket and operator state (control.rs).
    control: control::Control,
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
            + 1 + crate::control::server::MAX_CLIENTS,
        timers: cfg.instances.len() + 8,
    }
}

impl Daemon {
    pub fn new(path: &Path, cfg: Config, socket: &Path) -> Result<Daemon, String> {
        check_capacity(required(&cfg)).map_err(|e| e.to_string())?;
        let vrrp = Vrrp::new(&cfg)?;
        let lvs = Lvs::new(&cfg)?;
        let links = RtnlEvents::open().map_err(|e| format!("rtnetlink events: {e}"))?;
        // --- checks, trackers, notify (issue 5) ---
        let now = crate::sys::clock::now();
        // Warm-up spread: differs between routers and restarts (no getrandom dependency).
        let seed = now.total_micros() ^ (u64::from(std::process::id()) << 32);
        let checks = CheckEngine::new(&cfg, seed, now)?;
        let tracking = Tracking::new(&cfg, &checks);
        super::notify::check_security(&cfg)?;
        let notifier = Notifier::new(&cfg, super::notify::hotplug_from_env())?;
        let control = control::Control::bind(socket, now)?;
        Ok(Daemon {
            path: path.to_path_buf(),
            cfg,
            vrrp,
            links,
            lvs,
            checks,
            tracking,
            notifier,
            control,
        })
    }

    pub fn start(&mut self, ctx: &mut Ctx, now: Instant) {
        if let Err(e) = ctx.register(Part::Links.token(0), &self.links, super::Interest::READABLE) {
            error!("rtnetlink events: {e}");
        }
        // Seed the link tracker so that only changes from now on become events.
        let mut rtnl = match crate::sys::rtnl::Rtnl::open() {
            Ok(r) => Some(r),
            Err(e) => {
                error!("rtnetlink: {e}");
                None
            }
        };
        if let Some(r) = rtnl.as_mut() {
            let tracker = &mut self.links.tracker;
            let _ = r.for_each_link(|l| tracker.seed(l));
        }
        // --- checks, trackers, notify (issue 5): trackers known before the instances start,
        // so a tracked link that is down puts its instance straight into FAULT.
        self.checks.start(ctx, now);
        self.tracking.start(ctx, now);
        self.seed_tracked_links(rtnl.as_mut());
        self.after_checks(ctx, now);
        self.vrrp.start(ctx, now);
        // IPVS (lvs.rs): opens genl, reconciles at once; without ip_vs it logs once and idles.
        if let Some(l) = self.lvs.as_mut() {
            l.start(ctx, now);
        }
        self.lvs_health_from_checks(ctx, now);
        info!(
            "running {} instance(s) from {}",
            self.vrrp.instance_count(),
            self.path.display()
        );
        self.control_start(ctx);
        self.after_vrrp(ctx, now);
    }

    /// Things to do after anything may have moved an instance.
    fn after_vrrp(&mut self, ctx: &mut Ctx, now: Instant) {
        while let Some(t) = self.vrrp.take_transition() {
            log::debug!(
                "{}: now {} (priority {})",
                self.vrrp.instance_name(t.inst as usize),
                t.to,
                t.priority
            );
            // --- notify (issue 5): members of a sync group move together, so the group is
            // announced with the state its members move to (repeats are dropped).
            let i = t.inst as usize;
            self.notifier.instance_transition(i, t.to, t.priority);
            if let Some(g) = self.cfg.instances.get(i).and_then(|c| c.sync_group) {
                self.notifier.group_transition(g, t.to);
            }
        }
        // Start queued notify jobs (bounded) and keep their timeout timer.
        self.notifier.settle(ctx, now);
    }

    // --- checks, trackers (issue 5) ---

    /// Probe health changes -> tracker adjustments -> the instances whose adjustment moved.
    fn after_checks(&mut self, ctx: &mut Ctx, now: Instant) {
        for (p, h) in self.checks.take_changes() {
            self.tracking.on_probe(p, h);
            // IPVS (lvs.rs): real-server verdicts.
            if let (ProbeId::RealServer { vs, rs }, Some(l)) = (p, self.lvs.as_mut()) {
                l.set_check_health(ctx, vs, rs, h, now);
            }
        }
        for i in self.tracking.take_changed() {
            let adj = self.tracking.adjustment(usize::from(i));
            self.vrrp.set_trackers(ctx, usize::from(i), adj, now);
        }
    }

    /// Tell tracking the current state of every tracked interface (missing = down).
    fn seed_tracked_links(&mut self, rtnl: Option<&mut crate::sys::rtnl::Rtnl>) {
        let names: Vec<String> = self.tracking.tracked_links().map(String::from).collect();
        for n in &names {
            self.tracking.set_link(n, false);
        }
        if let Some(r) = rtnl {
            let tracking = &mut self.tracking;
            let _ = r.for_each_link(|l| {
                if names.iter().any(|n| n.as_str() == l.name.as_str()) {
                    tracking.set_link(l.name.as_str(), l.is_up());
                }
            });
        }
    }

    fn track_link_event(&mut self, ev: &RtnlEvent) {
        match ev {
            RtnlEvent::LinkNew { name, up, .. } => self.tracking.set_link(name.as_str(), *up),
            RtnlEvent::LinkUp { name, .. } => self.tracking.set_link(name.as_str(), true),
            RtnlEvent::LinkDown { name, .. } | RtnlEvent::LinkGone { name, .. } => {
                self.tracking.set_link(name.as_str(), false)
            }
            RtnlEvent::Overrun => {
                let mut r = crate::sys::rtnl::Rtnl::open().ok();
                self.seed_tracked_links(r.as_mut());
            }
            RtnlEvent::AddrAdded(_) | RtnlEvent::AddrRemoved(_) => {}
        }
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
        // --- notify: script_user must exist, enable_script_security must pass.
        if let Err(e) = super::notify::script_user(&new).and(super::notify::check_security(&new)) {
            error!("reload: {e}; keeping the running configuration");
            return Err(vec![e]);
        }
        if new == self.cfg {
            info!("reload: configuration unchanged");
            // IPVS (lvs.rs): a reload retries IPVS if it was missing (ip_vs loaded since).
            if let Some(l) = self.lvs.as_mut() {
                l.retry_unavailable(ctx, now);
            }
            return Ok("reload: configuration unchanged");
        }
        log::set_max_level(new.globals.log_level.to_filter().max(log::max_level()));
        self.vrrp.reload(ctx, &new, now);
        // --- checks, trackers, notify (issue 5) ---
        if let Err(e) = self.checks.reload(ctx, &new, now) {
            error!("reload: checks: {e}");
        }
        self.tracking.reload(ctx, &new, &self.checks, now);
        self.notifier.reload(&new);
        let mut r = crate::sys::rtnl::Rtnl::open().ok();
        self.seed_tracked_links(r.as_mut());
        // IPVS (lvs.rs): after the check engine, whose probe ids follow the new config.
        self.reload_lvs(ctx, &new, now);
        self.after_checks(ctx, now);
        self.cfg = new;
        info!("reload: applied");
        self.control_reapply(ctx, now);
        self.after_vrrp(ctx, now);
        Ok("reload: applied")
    }

    /// IPVS (lvs.rs): removed virtual servers are cleaned up, the rest reconciled; the part
    /// is created when the first virtual server appears and dropped when the last leaves.
    fn reload_lvs(&mut self, ctx: &mut Ctx, new: &Config, now: Instant) {
        match self.lvs.as_mut() {
            Some(l) => {
                if let Err(e) = l.reload(ctx, new, now) {
                    error!("reload: {e}");
                }
                if new.virtual_servers.is_empty() {
                    l.shutdown(ctx, now);
                    self.lvs = None;
                }
            }
            None => match Lvs::new(new) {
                Ok(Some(mut l)) => {
                    l.start(ctx, now);
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
                l.set_check_health(ctx, vs, rs, self.checks.health(p), now);
            }
        }
    }

    fn shutdown(&mut self, ctx: &mut Ctx, now: Instant) {
        info!("stopping");
        // --- checks, trackers (issue 5) ---
        self.checks.shutdown(ctx, now);
        self.tracking.shutdown(ctx);
        self.vrrp.shutdown(ctx, now);
        // IPVS (lvs.rs): delete our services that have cleanup set.
        if let Some(l) = self.lvs.as_mut() {
            l.shutdown(ctx, now);
        }
        self.after_vrrp(ctx, now);
        self.control_stop(ctx);
        // --- notify (issue 5): notify_stop, waited for at most notify::STOP_WAIT.
        self.notifier.shutdown();
        ctx.stop();
    }

    /// Reap every exited child (one SIGCHLD may stand for many exits).
    fn reap_children(&mut self, ctx: &mut Ctx, now: Instant) {
        use crate::check::ExitStatus;
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        for _ in 0..1024 {
            let (pid, st) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), ExitStatus::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    (pid.as_raw(), ExitStatus::Signal(sig as i32))
                }
                Ok(_) => continue,
            };
            // --- checks, notify (issue 5): offer the exit to the part that spawned it.
            if !self.checks.on_child_exit(ctx, pid, st, now)
                && !self.notifier.on_child_exit(pid, st)
            {
                log::debug!("reaped unknown child {pid} ({st:?})");
            }
        }
        self.after_checks(ctx, now);
        self.after_vrrp(ctx, now);
    }
}

impl Handler for Daemon {
    type Input = Event;

    fn on_readable(
        &mut self,
        _ctx: &mut Ctx,
        inbox: &mut Inbox<'_, Event>,
        token: Token,
        _ready: Ready,
        _now: Instant,
    ) -> Read {
        match token_owner(token) {
            Some((Part::Vrrp, idx)) => self.vrrp.on_readable(idx as usize, inbox),
            // --- checks (issue 5): probe sockets and script pipes are read right here.
            Some((Part::Checks, _)) => {
                let r = self.checks.on_readable(_ctx, token, _ready, _now);
                self.after_checks(_ctx, _now);
                self.after_vrrp(_ctx, _now);
                r
            }
            Some((Part::Control, idx)) => self.control_readable(_ctx, inbox, idx, _ready, _now),
            Some((Part::Links, _)) => {
                let r = self.links.recv(|ev| {
                    inbox.push(Event::Link(ev));
                });
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
                self.vrrp.on_link_event(ctx, &ev, now);
                // --- trackers (issue 5): track_interface.
                self.track_link_event(&ev);
                self.after_checks(ctx, now);
            }
            Event::Control(p) => self.control_input(ctx, p, now),
        }
        self.after_vrrp(ctx, now);
    }

    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant) {
        match timer_owner(id) {
            Some((Part::Vrrp, i)) => self.vrrp.on_timer(ctx, i as usize, now),
            // --- checks, trackers (issue 5): timer 0 = probe deadlines, 1 = track files.
            Some((Part::Checks, _)) => {
                self.checks.on_timer(ctx, id, now);
                self.tracking.on_timer(ctx, id, now);
                self.after_checks(ctx, now);
            }
            Some((Part::Control, _)) => self.control_timer(ctx, now),
            // Notify jobs past notify_timeout.
            Some((Part::Notify, _)) => self.notifier.on_timer(now),
            // IPVS (lvs.rs): debounced sync / periodic resync.
            Some((Part::Lvs, _)) => {
                if let Some(l) = self.lvs.as_mut() {
                    l.on_timer(ctx, id, now);
                }
            }
            _ => {}
        }
        self.after_vrrp(ctx, now);
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
                // --- checks (issue 5)
                let mut text = String::new();
                let _ = self.checks.dump(&mut text);
                for line in text.lines() {
                    info!("{line}");
                }
            }
            Signal::Child => self.reap_children(ctx, now),
        }
    }
}

/// Run the daemon in the foreground until SIGTERM/SIGINT; returns the exit code.
pub fn run(path: &Path, cfg: Config, socket: &Path) -> i32 {
    let mut lp: Loop<Event> = match Loop::with_signals() {
        Ok(l) => l,
        Err(e) => {
            error!("signals: {e}");
            return 3;
        }
    };
    let mut d = match Daemon::new(path, cfg, socket) {
        Ok(d) => d,
        Err(e) => {
            error!("{e}");
            return 3;
        }
    };
    let now = crate::sys::clock::now();
    d.start(lp.ctx(), now);
    match lp.run(&mut d) {
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
