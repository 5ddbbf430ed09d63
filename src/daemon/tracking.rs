//! Trackers of VRRP instances: turns probe health (`track_script`, `track_check`),
//! link state (`track_interface`) and track files (`track_file`) into each instance's
//! `vrrp::priority::Adjustment`, with keepalived's weight semantics (`check::track`).
//!
//! The runtime feeds what changed ([`Tracking::on_probe`], [`Tracking::set_link`], the file
//! poll timer) and then asks [`Tracking::take_changed`] which instances need a new
//! `Input::Trackers(adjustment(i))`.
//!
//! Track files are re-read every second (`Part::Checks.timer(1)`); keepalived watches them
//! with inotify, a one-second poll of a one-integer file costs less than the watch set-up.

use super::checks::{CheckEngine, ProbeId};
use super::ids::Part;
use super::{Ctx, TimerId};
use crate::base::{Duration, Instant};
use crate::check::track::{self, Effect, FileValue};
use crate::check::Health;
use crate::config::limits::MAX_INSTANCES;
use crate::config::Config;
use crate::sys::file;
use crate::vrrp::priority::Adjustment;

/// The track-file poll timer.
pub const FILE_TIMER: TimerId = Part::Checks.timer(1);
/// How often track files are re-read.
pub const FILE_POLL: Duration = Duration::from_secs(1);

/// Instance indices whose adjustment changed.
pub type Changed = heapless::Vec<u16, MAX_INSTANCES>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Index into `scripts` health.
    Script(usize),
    /// Index into `checks` health.
    Check(usize),
    /// Index into `links`.
    Link(usize),
    /// Index into `files`.
    File(usize),
}

#[derive(Clone, Copy, Debug)]
struct Tracker {
    source: Source,
    weight: i32,
}

struct Inst {
    trackers: Vec<Tracker>,
    adj: Adjustment,
}

struct Link {
    name: String,
    up: bool,
}

struct File {
    path: String,
    value: i64,
}

/// See the module docs.
pub struct Tracking {
    insts: Vec<Inst>,
    scripts: Vec<Health>,
    checks: Vec<Health>,
    links: Vec<Link>,
    files: Vec<File>,
    /// Bit i: instance i's adjustment changed since the last `take_changed`.
    changed: u64,
}

impl Tracking {
    /// Built from the validated config; probe health is read from `engine`, links start up
    /// (the runtime reports real link states with [`Tracking::set_link`] at start) and track
    /// files are read at [`Tracking::start`].
    pub fn new(cfg: &Config, engine: &CheckEngine) -> Tracking {
        let mut t = Tracking {
            insts: Vec::new(),
            scripts: vec![Health::Unknown; cfg.scripts.len()],
            checks: vec![Health::Unknown; cfg.checks.len()],
            links: Vec::new(),
            files: Vec::new(),
            changed: 0,
        };
        t.build(cfg, engine);
        t
    }

    fn build(&mut self, cfg: &Config, engine: &CheckEngine) {
        self.scripts = (0..cfg.scripts.len())
            .map(|i| engine.health(ProbeId::Script(i as u16)))
            .collect();
        self.checks = (0..cfg.checks.len())
            .map(|i| engine.health(ProbeId::Check(i as u16)))
            .collect();
        let old_links = core::mem::take(&mut self.links);
        let old_files = core::mem::take(&mut self.files);
        let mut insts = Vec::with_capacity(cfg.instances.len());
        for inst in &cfg.instances {
            let mut trackers = Vec::new();
            // A sync group's trackers are every member's, with weight 0 (validated): one
            // down faults each member, and the group holds them all in FAULT.
            let group = inst.sync_group.and_then(|g| cfg.sync_groups.get(g));
            let track_scripts = inst
                .track_scripts
                .iter()
                .chain(group.into_iter().flat_map(|g| &g.track_scripts));
            let track_checks = inst
                .track_checks
                .iter()
                .chain(group.into_iter().flat_map(|g| &g.track_checks));
            let track_interfaces = inst
                .track_interfaces
                .iter()
                .chain(group.into_iter().flat_map(|g| &g.track_interfaces));
            let track_files = inst
                .track_files
                .iter()
                .chain(group.into_iter().flat_map(|g| &g.track_files));
            for s in track_scripts {
                trackers.push(Tracker {
                    source: Source::Script(s.script),
                    weight: s.weight,
                });
            }
            for c in track_checks {
                trackers.push(Tracker {
                    source: Source::Check(c.check),
                    weight: c.weight,
                });
            }
            for l in track_interfaces {
                let k = match self.links.iter().position(|x| x.name == l.name) {
                    Some(k) => k,
                    None => {
                        let up = old_links
                            .iter()
                            .find(|x| x.name == l.name)
                            .is_none_or(|x| x.up);
                        self.links.push(Link {
                            name: l.name.clone(),
                            up,
                        });
                        self.links.len() - 1
                    }
                };
                trackers.push(Tracker {
                    source: Source::Link(k),
                    weight: l.weight,
                });
            }
            for f in track_files {
                let k = match self.files.iter().position(|x| x.path == f.path) {
                    Some(k) => k,
                    None => {
                        let value = old_files
                            .iter()
                            .find(|x| x.path == f.path)
                            .map_or(0, |x| x.value);
                        self.files.push(File {
                            path: f.path.clone(),
                            value,
                        });
                        self.files.len() - 1
                    }
                };
                trackers.push(Tracker {
                    source: Source::File(k),
                    weight: f.weight,
                });
            }
            insts.push(Inst {
                trackers,
                adj: Adjustment::default(),
            });
        }
        self.insts = insts;
        for i in 0..self.insts.len() {
            let adj = self.compute(i);
            self.insts[i].adj = adj;
        }
    }

    /// Read the track files and arm their poll timer.
    pub fn start(&mut self, ctx: &mut Ctx, now: Instant) {
        self.read_files();
        self.recompute_all();
        if !self.files.is_empty() {
            let _ = ctx.arm(FILE_TIMER, now + FILE_POLL);
        }
    }

    /// The file poll timer fired.
    pub fn on_timer(&mut self, ctx: &mut Ctx, id: TimerId, now: Instant) {
        if id != FILE_TIMER {
            return;
        }
        if self.read_files() {
            self.recompute_all();
        }
        if !self.files.is_empty() {
            let _ = ctx.arm(FILE_TIMER, now + FILE_POLL);
        }
    }

    /// Re-read every track file; true if a value changed.
    fn read_files(&mut self) -> bool {
        let mut any = false;
        for f in &mut self.files {
            let mut buf = [0u8; 64];
            let v = match file::read_head(&f.path, &mut buf) {
                Ok(n) => track::file_value(Some(&buf[..n])),
                // keepalived reads a file it cannot open as 0.
                Err(_) => track::file_value(None),
            };
            match v {
                FileValue::Value(v) if v != f.value => {
                    log::info!("track_file {}: {} -> {v}", f.path, f.value);
                    f.value = v;
                    any = true;
                }
                FileValue::Value(_) => {}
                FileValue::KeepPrevious => {
                    log::warn!(
                        "track_file {}: value out of range, keeping {}",
                        f.path,
                        f.value
                    )
                }
            }
        }
        any
    }

    /// A probe's health changed (from `CheckEngine::take_changes`).
    pub fn on_probe(&mut self, p: ProbeId, h: Health) {
        let slot = match p {
            ProbeId::Script(i) => self.scripts.get_mut(usize::from(i)),
            ProbeId::Check(i) => self.checks.get_mut(usize::from(i)),
            ProbeId::RealServer { .. } => None,
        };
        if let Some(s) = slot {
            if *s != h {
                *s = h;
                self.recompute_all();
            }
        }
    }

    /// A link's operational state (from rtnetlink). Unknown names are ignored.
    pub fn set_link(&mut self, name: &str, up: bool) {
        let mut any = false;
        for l in &mut self.links {
            if l.name == name && l.up != up {
                l.up = up;
                any = true;
            }
        }
        if any {
            self.recompute_all();
        }
    }

    /// Names of the tracked interfaces (the runtime reports their state at start).
    pub fn tracked_links(&self) -> impl Iterator<Item = &str> + '_ {
        self.links.iter().map(|l| l.name.as_str())
    }

    fn effect(&self, t: Tracker) -> Effect {
        match t.source {
            Source::Script(i) => track::script_effect(
                t.weight,
                false,
                self.scripts.get(i).copied().unwrap_or(Health::Unknown),
            ),
            Source::Check(i) => track::script_effect(
                t.weight,
                false,
                self.checks.get(i).copied().unwrap_or(Health::Unknown),
            ),
            Source::Link(i) => {
                track::interface_effect(t.weight, false, self.links.get(i).is_none_or(|l| l.up))
            }
            Source::File(i) => {
                track::file_effect(t.weight, self.files.get(i).map_or(0, |f| f.value))
            }
        }
    }

    fn compute(&self, i: usize) -> Adjustment {
        let mut adj = Adjustment::default();
        for &t in &self.insts[i].trackers {
            match self.effect(t) {
                Effect::Fault => adj.fault = true,
                Effect::Delta(d) => adj.delta = adj.delta.saturating_add(d),
            }
        }
        adj
    }

    fn recompute_all(&mut self) {
        for i in 0..self.insts.len() {
            let adj = self.compute(i);
            if adj != self.insts[i].adj {
                self.insts[i].adj = adj;
                if i < 64 {
                    self.changed |= 1 << i;
                }
            }
        }
    }

    /// The trackers' adjustment of instance `idx` (default for an unknown index).
    pub fn adjustment(&self, idx: usize) -> Adjustment {
        self.insts.get(idx).map_or(Adjustment::default(), |i| i.adj)
    }

    /// Instances whose adjustment changed since the last call.
    pub fn take_changed(&mut self) -> Changed {
        let mut out = Changed::new();
        let bits = core::mem::take(&mut self.changed);
        for i in 0..64u16 {
            if bits & (1 << i) != 0 {
                let _ = out.push(i);
            }
        }
        out
    }

    /// New configuration: link states and file values are kept by name; every instance is
    /// reported changed so the runtime re-feeds all adjustments.
    pub fn reload(&mut self, ctx: &mut Ctx, cfg: &Config, engine: &CheckEngine, now: Instant) {
        self.build(cfg, engine);
        self.read_files();
        self.recompute_all();
        let n = self.insts.len().min(64);
        self.changed = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        ctx.cancel(FILE_TIMER);
        if !self.files.is_empty() {
            let _ = ctx.arm(FILE_TIMER, now + FILE_POLL);
        }
    }

    pub fn shutdown(&mut self, ctx: &mut Ctx) {
        ctx.cancel(FILE_TIMER);
    }
}

// --- Operator control (daemon/control.rs): a read-only view for status. ---

/// One tracker of an instance as status shows it.
pub struct TrackerView {
    /// `script`, `check`, `interface` or `file`.
    pub kind: &'static str,
    pub name: String,
    pub weight: i32,
    /// `up`, `down` or `unknown`; a file shows its value.
    pub state: String,
    pub effect: Effect,
}

impl Tracking {
    /// Instance `idx`'s trackers; names of scripts and checks come from `cfg`.
    pub fn tracker_views(&self, idx: usize, cfg: &Config) -> Vec<TrackerView> {
        let health = |h: Option<&Health>| match h {
            Some(Health::Up) => "up",
            Some(Health::Down) => "down",
            _ => "unknown",
        };
        let Some(inst) = self.insts.get(idx) else {
            return Vec::new();
        };
        inst.trackers
            .iter()
            .map(|&t| {
                let (kind, name, state) = match t.source {
                    Source::Script(i) => (
                        "script",
                        cfg.scripts
                            .get(i)
                            .map_or("?", |s| s.name.as_str())
                            .to_string(),
                        health(self.scripts.get(i)).to_string(),
                    ),
                    Source::Check(i) => (
                        "check",
                        cfg.checks
                            .get(i)
                            .map_or("?", |c| c.name.as_str())
                            .to_string(),
                        health(self.checks.get(i)).to_string(),
                    ),
                    Source::Link(i) => {
                        let l = self.links.get(i);
                        (
                            "interface",
                            l.map_or("?", |l| l.name.as_str()).to_string(),
                            if l.is_none_or(|l| l.up) { "up" } else { "down" }.to_string(),
                        )
                    }
                    Source::File(i) => {
                        let f = self.files.get(i);
                        (
                            "file",
                            f.map_or("?", |f| f.path.as_str()).to_string(),
                            f.map_or(0, |f| f.value).to_string(),
                        )
                    }
                };
                TrackerView {
                    kind,
                    name,
                    weight: t.weight,
                    state,
                    effect: self.effect(t),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "
config script 'chk'
    option command 'true'
    option weight '-60'

config script 'plus'
    option command 'true'
    option weight '10'

config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    option priority '150'
    list vip '10.0.0.10'
    list track_script 'chk'
    list track_script 'plus'
    list track_interface 'eth1'

config instance 'vi2'
    option interface 'eth0'
    option vrid '2'
    list vip '10.0.0.11'
    list track_interface 'eth2 weight -20'
";

    fn setup() -> Tracking {
        let c = Config::parse_str("t", CFG).unwrap_or_else(|e| panic!("{e:?}"));
        let e = CheckEngine::new(&c, 1, Instant::from_secs(1)).unwrap();
        Tracking::new(&c, &e)
    }

    #[test]
    fn negative_weight_applies_while_down_positive_while_up() {
        let mut t = setup();
        assert_eq!(t.adjustment(0), Adjustment::default());
        t.on_probe(ProbeId::Script(0), Health::Down);
        assert_eq!(t.adjustment(0).delta, -60);
        assert_eq!(&t.take_changed()[..], [0]);
        t.on_probe(ProbeId::Script(1), Health::Up);
        assert_eq!(t.adjustment(0).delta, -50);
        t.on_probe(ProbeId::Script(0), Health::Up);
        assert_eq!(
            t.adjustment(0),
            Adjustment {
                delta: 10,
                fault: false
            }
        );
        assert_eq!(&t.take_changed()[..], [0]);
        assert!(t.take_changed().is_empty());
    }

    #[test]
    fn track_interface_weight_zero_down_is_fault_only_for_its_instance() {
        let mut t = setup();
        t.set_link("eth1", false);
        assert!(t.adjustment(0).fault);
        assert!(!t.adjustment(1).fault);
        t.set_link("eth2", false);
        assert_eq!(t.adjustment(1).delta, -20);
        assert_eq!(&t.take_changed()[..], [0, 1]);
        t.set_link("eth1", true);
        assert!(!t.adjustment(0).fault);
        t.set_link("nope", false);
        assert_eq!(&t.take_changed()[..], [0]);
    }

    const GROUP_CFG: &str = "
config script 'chk'
    option command 'true'
    option weight '-60'

config instance 'lan'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'

config instance 'wan'
    option interface 'eth1'
    option vrid '2'
    list vip '10.1.0.10'
    list track_interface 'eth3 weight -20'

config instance 'other'
    option interface 'eth0'
    option vrid '3'
    list vip '10.0.0.11'

config sync_group 'g'
    list member 'lan'
    list member 'wan'
    list track_interface 'eth9'
    list track_script 'chk'
";

    #[test]
    fn sync_group_tracker_faults_every_member_and_only_them() {
        let c = Config::parse_str("t", GROUP_CFG).unwrap_or_else(|e| panic!("{e:?}"));
        let e = CheckEngine::new(&c, 1, Instant::from_secs(1)).unwrap();
        let mut t = Tracking::new(&c, &e);
        t.set_link("eth9", false);
        assert!(t.adjustment(0).fault && t.adjustment(1).fault);
        assert!(!t.adjustment(2).fault, "not a member");
        assert_eq!(&t.take_changed()[..], [0, 1]);
        t.set_link("eth9", true);
        assert!(!t.adjustment(0).fault && !t.adjustment(1).fault);
        // A member's own weighted tracker still only changes its priority.
        t.set_link("eth3", false);
        assert_eq!(
            t.adjustment(1),
            Adjustment {
                delta: -20,
                fault: false
            }
        );
        assert!(!t.adjustment(0).fault);
        // The script's own weight (-60) does not apply in the group: it faults.
        t.take_changed();
        t.on_probe(ProbeId::Script(0), Health::Down);
        assert!(t.adjustment(0).fault && t.adjustment(1).fault);
        assert_eq!(t.adjustment(0).delta, 0);
        assert!(!t.adjustment(2).fault);
    }
}
