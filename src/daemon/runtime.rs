//! The daemon: one [`Handler`] owning every part, driven by the one poll loop.
//!
//! Dispatch goes by the owner bits of tokens and timer ids (`ids.rs`). Signals: SIGTERM /
//! SIGINT leave gracefully (priority-0 adverts, VIPs removed) and stop the loop; SIGHUP
//! re-reads the file and swaps the configuration in only if it is valid; SIGUSR1 logs the
//! state; SIGCHLD reaps children and hands each exit to the part that spawned it.

use std::path::{Path, PathBuf};

use log::{error, info, warn};

use super::event_loop::{Ctx, Handler, Inbox, Loop, Read};
use super::ids::{timer_owner, token_owner, Part};
use super::vrrp::{Vrrp, VrrpEvent};
use super::{check_capacity, Ready, Required, Signal, TimerId, Token};
use crate::base::Instant;
use crate::config::Config;
use crate::sys::rtnl::{RtnlEvent, RtnlEvents};

/// Everything the loop queues between reading an fd and handling what was read.
#[derive(Clone, Debug)]
pub enum Event {
    Vrrp(VrrpEvent),
    Link(RtnlEvent),
}

pub struct Daemon {
    path: PathBuf,
    cfg: Config,
    vrrp: Vrrp,
    links: RtnlEvents,
}

/// Loop resources a configuration needs: one packet socket per interface plus netlink, one
/// timer per instance plus one per daemon part.
fn required(cfg: &Config) -> Required {
    let mut ifaces: Vec<&str> = cfg.instances.iter().map(|i| i.interface.as_str()).collect();
    ifaces.sort_unstable();
    ifaces.dedup();
    Required {
        fds: ifaces.len() + 1,
        timers: cfg.instances.len() + 8,
    }
}

impl Daemon {
    pub fn new(path: &Path, cfg: Config) -> Result<Daemon, String> {
        check_capacity(required(&cfg)).map_err(|e| e.to_string())?;
        let vrrp = Vrrp::new(&cfg)?;
        let links = RtnlEvents::open().map_err(|e| format!("rtnetlink events: {e}"))?;
        Ok(Daemon {
            path: path.to_path_buf(),
            cfg,
            vrrp,
            links,
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
        self.vrrp.start(ctx, now);
        info!(
            "running {} instance(s) from {}",
            self.vrrp.instance_count(),
            self.path.display()
        );
        self.after_vrrp(ctx, now);
    }

    /// Things to do after anything may have moved an instance.
    fn after_vrrp(&mut self, _ctx: &mut Ctx, _now: Instant) {
        while let Some(t) = self.vrrp.take_transition() {
            log::debug!(
                "{}: now {} (priority {})",
                self.vrrp.instance_name(t.inst as usize),
                t.to,
                t.priority
            );
        }
    }

    fn reload(&mut self, ctx: &mut Ctx, now: Instant) {
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
                return;
            }
        };
        if let Err(e) = check_capacity(required(&new)) {
            error!("reload: {e}; keeping the running configuration");
            return;
        }
        if new == self.cfg {
            info!("reload: configuration unchanged");
            return;
        }
        log::set_max_level(new.globals.log_level.to_filter().max(log::max_level()));
        self.vrrp.reload(ctx, &new, now);
        self.cfg = new;
        info!("reload: applied");
        self.after_vrrp(ctx, now);
    }

    fn shutdown(&mut self, ctx: &mut Ctx, now: Instant) {
        info!("stopping");
        self.vrrp.shutdown(ctx, now);
        self.after_vrrp(ctx, now);
        ctx.stop();
    }

    /// Reap every exited child (one SIGCHLD may stand for many exits).
    fn reap_children(&mut self, _ctx: &mut Ctx, _now: Instant) {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        for _ in 0..1024 {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_status) => {}
            }
        }
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
            Event::Link(ev) => self.vrrp.on_link_event(ctx, &ev, now),
        }
        self.after_vrrp(ctx, now);
    }

    fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant) {
        if let Some((Part::Vrrp, i)) = timer_owner(id) {
            self.vrrp.on_timer(ctx, i as usize, now);
        }
        self.after_vrrp(ctx, now);
    }

    fn on_signal(&mut self, ctx: &mut Ctx, sig: Signal, now: Instant) {
        match sig {
            Signal::Terminate => self.shutdown(ctx, now),
            Signal::Reload => self.reload(ctx, now),
            Signal::Dump => {
                self.vrrp.dump();
            }
            Signal::Child => self.reap_children(ctx, now),
        }
    }
}

/// Run the daemon in the foreground until SIGTERM/SIGINT; returns the exit code.
pub fn run(path: &Path, cfg: Config) -> i32 {
    let mut lp: Loop<Event> = match Loop::with_signals() {
        Ok(l) => l,
        Err(e) => {
            error!("signals: {e}");
            return 3;
        }
    };
    let mut d = match Daemon::new(path, cfg) {
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
