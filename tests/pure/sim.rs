//! Deterministic discrete-event simulator: N routers running `vrrp::instance::Instance` on
//! one virtual LAN, with a virtual clock and a seeded RNG (splitmix64, no external crate).
//!
//! The network delivers every advertisement to every other router on the same side of a
//! partition, after `delay + U(0, jitter)`, unless a loss roll drops it. Routers can crash
//! (silently), shut down gracefully (priority-0 advert), restart, flap their interface, and
//! change priority (tracker adjustments). Routers with a pre-master hook
//! (`Params::pre_master_timeout`) run one on every takeover; it exits after a random time,
//! sometimes after its timeout. Nothing here reads a real clock, so a seed replays exactly.
#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt::Write as _;

use minivrrp::base::{Duration, Instant};
use minivrrp::vrrp::instance::{Action, Advert, Input, Instance, Params, Reason, State};
use minivrrp::vrrp::priority::Adjustment;
use minivrrp::vrrp::sync_group::SyncGroup;

/// splitmix64: tiny, good enough for scenario generation, and fully deterministic.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `permille`/1000.
    pub fn chance(&mut self, permille: u64) -> bool {
        self.below(1000) < permille
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Net {
    pub loss_permille: u64,
    pub delay: Duration,
    pub jitter: Duration,
}

impl Net {
    /// Largest one-way delay the network can produce: the simulator's "tick".
    pub fn max_delay(&self) -> Duration {
        self.delay + self.jitter
    }
}

#[derive(Clone, Debug)]
pub struct Router {
    pub params: Params,
    pub inst: Instance,
    pub alive: bool,
    pub iface_up: bool,
    pub side: u8,
    /// Which LAN the router's interface is on (sync-group tests use two: LAN and WAN).
    pub lan: u8,
    pub adj: Adjustment,
    timer_gen: u64,
    /// VIPs installed, as the AddVips/RemoveVips actions say.
    pub vips: bool,
    pub master_since: Option<Instant>,
    pub last_advert_tx: Option<Instant>,
    pub announces: u32,
    /// The pre-master hook runs (between `RunPreMaster` and its exit or `StopPreMaster`).
    pub hook_running: bool,
    hook_gen: u64,
}

impl Router {
    /// Alive, link up and not faulty: a router that takes part in the election.
    pub fn active(&self) -> bool {
        self.alive && self.iface_up && matches!(self.inst.state(), State::Backup | State::Master)
    }
}

#[derive(Clone, Debug)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        adv: Advert,
    },
    Timer {
        r: usize,
        gen: u64,
    },
    /// Router `r`'s pre-master hook exits by itself (unless killed since: `gen`).
    HookExit {
        r: usize,
        gen: u64,
    },
}

#[derive(Debug)]
struct Queued {
    at: Instant,
    seq: u64,
    ev: Event,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    // Min-heap by (time, insertion order): BinaryHeap is a max-heap, so reverse.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Clone, Copy, Debug)]
pub struct TransitionRec {
    pub at: Instant,
    pub router: usize,
    pub from: State,
    pub to: State,
    pub reason: Reason,
}

pub struct Sim {
    pub now: Instant,
    pub routers: Vec<Router>,
    pub net: Net,
    pub rng: Rng,
    queue: BinaryHeap<Queued>,
    seq: u64,
    pub transitions: Vec<TransitionRec>,
    /// Last time anything other than the protocol itself changed (crash, loss, flap...).
    pub last_disturbance: Instant,
    pub trace: bool,
    pub log: Vec<String>,
    /// Structural violations found while applying actions (checked by `check_structural`).
    pub violations: Vec<String>,
    pub steps: u64,
    /// Per (sender, receiver) time of the last scheduled delivery: one Ethernet segment does
    /// not reorder frames from one sender, so jitter never lets a later advert overtake.
    last_delivery: Vec<Vec<Instant>>,
    /// Sync groups: the group and its member routers (instances).
    pub groups: Vec<(SyncGroup, Vec<usize>)>,
    member_of: Vec<Option<(usize, usize)>>,
    depth: u32,
    /// How long hooks run: a stream of its own, so seeds without hooks replay as before.
    hook_rng: Rng,
}

fn legal(from: State, to: State) -> bool {
    use State::*;
    matches!(
        (from, to),
        (Init, Backup | Master | Fault)
            | (Backup, Master | Fault | Init)
            | (Master, Backup | Fault | Init)
            | (Fault, Backup | Master | Init)
    )
}

impl Sim {
    pub fn new(seed: u64, params: Vec<Params>, net: Net) -> Sim {
        let n = params.len();
        let routers = params
            .into_iter()
            .map(|p| Router {
                params: p,
                inst: Instance::new(p),
                alive: true,
                iface_up: true,
                side: 0,
                lan: 0,
                adj: Adjustment::default(),
                timer_gen: 0,
                vips: false,
                master_since: None,
                last_advert_tx: None,
                announces: 0,
                hook_running: false,
                hook_gen: 0,
            })
            .collect();
        Sim {
            now: Instant::ZERO,
            routers,
            net,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            seq: 0,
            transitions: Vec::new(),
            last_disturbance: Instant::ZERO,
            trace: false,
            log: Vec::new(),
            violations: Vec::new(),
            steps: 0,
            last_delivery: vec![vec![Instant::ZERO; n]; n],
            groups: Vec::new(),
            member_of: vec![None; n],
            depth: 0,
            hook_rng: Rng::new(seed ^ 0x686f_6f6b),
        }
    }

    fn note(&mut self, f: impl FnOnce() -> String) {
        if self.trace {
            let line = format!("{:>12} {}", self.now.to_string(), f());
            self.log.push(line);
        }
    }

    fn push(&mut self, at: Instant, ev: Event) {
        self.seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.seq,
            ev,
        });
    }

    /// Feed one input to router `r` and carry out its actions.
    pub fn input(&mut self, r: usize, input: Input) {
        if !self.routers[r].alive {
            return;
        }
        let now = self.now;
        if self.trace && !matches!(input, Input::Timer) {
            self.note(|| format!("r{r} <- {input:?}"));
        }
        let actions = self.routers[r].inst.handle(now, input);
        for a in actions {
            self.apply(r, a);
        }
        let router = &mut self.routers[r];
        router.timer_gen += 1;
        let gen = router.timer_gen;
        if let Some(d) = router.inst.next_deadline() {
            let at = d.max(now);
            self.push(at, Event::Timer { r, gen });
        }
        self.sync(r);
    }

    /// Tell router `r`'s sync group (if any) its new state and apply the commands, the way
    /// the daemon does.
    fn sync(&mut self, r: usize) {
        let Some((g, idx)) = self.member_of[r] else {
            return;
        };
        let (state, own_fault) = (
            self.routers[r].inst.state(),
            self.routers[r].inst.own_fault(),
        );
        let cmds = self.groups[g].0.update(idx, state, own_fault);
        if cmds.is_empty() {
            return;
        }
        self.depth += 1;
        if self.depth > 32 {
            self.violations.push(format!(
                "{}: sync group {g} commands do not settle",
                self.now
            ));
        } else {
            for (j, cmd) in cmds {
                let to = self.groups[g].1[j];
                self.note(|| format!("sync group {g}: r{to} <- {cmd:?}"));
                self.input(to, Input::Sync(cmd));
            }
        }
        self.depth -= 1;
    }

    /// Put routers (instances) `members` in one sync group.
    pub fn add_sync_group(&mut self, members: Vec<usize>) {
        let g = self.groups.len();
        for (idx, &r) in members.iter().enumerate() {
            self.member_of[r] = Some((g, idx));
        }
        self.groups.push((SyncGroup::new(members.len()), members));
    }

    fn apply(&mut self, r: usize, a: Action) {
        let now = self.now;
        match a {
            Action::SendAdvert { priority } => {
                let router = &mut self.routers[r];
                router.last_advert_tx = Some(now);
                let adv = Advert {
                    src: router.params.primary,
                    priority,
                    advert_int: router.params.advert_int,
                };
                let (side, lan) = (router.side, router.lan);
                if !router.iface_up {
                    self.violations
                        .push(format!("{now}: r{r} sent an advert with its link down"));
                    return;
                }
                for to in 0..self.routers.len() {
                    if to == r || self.routers[to].side != side || self.routers[to].lan != lan {
                        continue;
                    }
                    if self.rng.chance(self.net.loss_permille) {
                        continue;
                    }
                    let jitter = self.rng.below(self.net.jitter.as_micros() as u64 + 1);
                    let at = (now + self.net.delay + Duration::from_micros(jitter))
                        .max(self.last_delivery[r][to]);
                    self.last_delivery[r][to] = at;
                    self.push(at, Event::Deliver { to, from: r, adv });
                }
            }
            Action::AddVips => {
                if self.routers[r].vips {
                    self.violations
                        .push(format!("{now}: r{r} AddVips with VIPs already installed"));
                }
                self.routers[r].vips = true;
            }
            Action::RemoveVips => {
                if !self.routers[r].vips {
                    self.violations
                        .push(format!("{now}: r{r} RemoveVips without VIPs"));
                }
                self.routers[r].vips = false;
            }
            Action::Announce { .. } => self.routers[r].announces += 1,
            Action::Notify(_) => {}
            Action::RunPreMaster => {
                let Some(timeout) = self.routers[r].params.pre_master_timeout else {
                    self.violations
                        .push(format!("{now}: r{r} RunPreMaster without a hook"));
                    return;
                };
                if self.routers[r].hook_running {
                    self.violations
                        .push(format!("{now}: r{r} RunPreMaster while its hook runs"));
                }
                // Up to twice the timeout: about half the hooks are killed at it.
                let runs = self.hook_rng.below(2 * timeout.as_micros() as u64 + 1);
                let router = &mut self.routers[r];
                router.hook_running = true;
                router.hook_gen += 1;
                let gen = router.hook_gen;
                self.push(
                    now + Duration::from_micros(runs),
                    Event::HookExit { r, gen },
                );
            }
            Action::StopPreMaster => {
                let router = &mut self.routers[r];
                if !router.hook_running {
                    self.violations
                        .push(format!("{now}: r{r} StopPreMaster without a running hook"));
                }
                router.hook_running = false;
                router.hook_gen += 1;
            }
            Action::Transition { from, to, reason } => {
                if !legal(from, to) {
                    self.violations
                        .push(format!("{now}: r{r} illegal transition {from} -> {to}"));
                }
                // RFC 5798 6.4.3: a master yields only to a higher priority, or to an equal
                // priority from a higher primary address.
                let own = (
                    self.routers[r].inst.priority(),
                    self.routers[r].params.primary,
                );
                let wrong = match reason {
                    Reason::HigherPriority { priority, .. } => priority <= own.0,
                    Reason::HigherAddress { priority, from } => priority != own.0 || from <= own.1,
                    _ => false,
                };
                if wrong {
                    self.violations.push(format!(
                        "{now}: r{r} (priority {}, {}) yielded: {reason}",
                        own.0, own.1
                    ));
                }
                let router = &mut self.routers[r];
                router.master_since = (to == State::Master).then_some(now);
                self.transitions.push(TransitionRec {
                    at: now,
                    router: r,
                    from,
                    to,
                    reason,
                });
                self.note(|| format!("r{r} {from} -> {to}: {reason}"));
            }
        }
    }

    pub fn start_all(&mut self) {
        for r in 0..self.routers.len() {
            self.input(r, Input::Startup);
        }
        self.last_disturbance = self.now;
    }

    /// Process events up to and including `until`, calling `check` after every event.
    pub fn run_until(
        &mut self,
        until: Instant,
        check: &mut dyn FnMut(&Sim) -> Result<(), String>,
    ) -> Result<(), String> {
        while let Some(top) = self.queue.peek() {
            if top.at > until {
                break;
            }
            let Some(q) = self.queue.pop() else { break };
            self.now = q.at;
            self.steps += 1;
            match q.ev {
                Event::Timer { r, gen } => {
                    if self.routers[r].alive && self.routers[r].timer_gen == gen {
                        self.input(r, Input::Timer);
                    }
                }
                Event::HookExit { r, gen } => {
                    let router = &mut self.routers[r];
                    if router.alive && router.hook_gen == gen && router.hook_running {
                        router.hook_running = false;
                        self.input(r, Input::PreMasterDone);
                    }
                }
                Event::Deliver { to, from, adv } => {
                    let (a, b) = (&self.routers[to], &self.routers[from]);
                    // Dropped if the receiver is gone, its link is down, or a partition
                    // started while the packet was in flight.
                    if a.alive && a.iface_up && a.side == b.side && a.lan == b.lan {
                        self.input(to, Input::AdvertReceived(adv));
                    }
                }
            }
            self.check_structural()?;
            check(self)?;
        }
        self.now = self.now.max(until);
        Ok(())
    }

    /// Invariants that hold at every step, whatever the network does.
    pub fn check_structural(&self) -> Result<(), String> {
        if let Some(v) = self.violations.first() {
            return Err(v.clone());
        }
        for (i, r) in self.routers.iter().enumerate() {
            if !r.alive {
                continue;
            }
            let st = r.inst.state();
            let held = r.inst.pre_master_held();
            if r.vips != (st == State::Master && !held) {
                return Err(format!(
                    "{}: r{i} in {st} (held {held}) with vips={} (VIPs must follow MASTER, after the hook)",
                    self.now, r.vips
                ));
            }
            if held != r.hook_running || (held && st != State::Master) {
                return Err(format!(
                    "{}: r{i} in {st}: held {held} but hook running {}",
                    self.now, r.hook_running
                ));
            }
            if st == State::Master {
                // RFC 5798 6.4.3: a master advertises every Advertisement_Interval.
                let last = r.last_advert_tx.unwrap_or(Instant::ZERO);
                if self.now - last > r.params.advert_int {
                    return Err(format!(
                        "{}: r{i} is MASTER but last advertised at {last}",
                        self.now
                    ));
                }
            }
            if st == State::Backup && r.inst.next_deadline().is_none() {
                return Err(format!(
                    "{}: r{i} in BACKUP without Master_Down_Timer",
                    self.now
                ));
            }
        }
        Ok(())
    }

    // ---- disturbances -------------------------------------------------------------

    fn disturbed(&mut self) {
        self.last_disturbance = self.now;
    }

    /// Power loss: no priority-0 advert, VIPs gone with the box.
    pub fn crash(&mut self, r: usize) {
        self.note(|| format!("r{r} CRASH"));
        let router = &mut self.routers[r];
        router.alive = false;
        router.vips = false;
        router.master_since = None;
        router.timer_gen += 1;
        // The hook dies with the box.
        router.hook_running = false;
        router.hook_gen += 1;
        self.disturbed();
    }

    /// Graceful stop: RFC 5798 Shutdown event (priority-0 advert when master).
    pub fn shutdown(&mut self, r: usize) {
        self.input(r, Input::Shutdown);
        let router = &mut self.routers[r];
        router.alive = false;
        router.master_since = None;
        router.timer_gen += 1;
        self.disturbed();
    }

    pub fn restart(&mut self, r: usize) {
        let router = &mut self.routers[r];
        if router.alive {
            return;
        }
        router.inst = Instance::new(router.params);
        if let Some((g, idx)) = self.member_of[r] {
            self.groups[g].0.reset(idx);
        }
        let router = &mut self.routers[r];
        router.alive = true;
        router.vips = false;
        router.last_advert_tx = None;
        let (adj, up) = (router.adj, router.iface_up);
        self.note(|| format!("r{r} RESTART"));
        if !up {
            self.input(r, Input::InterfaceDown);
        }
        if adj != Adjustment::default() {
            self.input(r, Input::Trackers(adj));
        }
        self.input(r, Input::Startup);
        self.disturbed();
    }

    pub fn set_iface(&mut self, r: usize, up: bool) {
        self.routers[r].iface_up = up;
        self.input(
            r,
            if up {
                Input::InterfaceUp
            } else {
                Input::InterfaceDown
            },
        );
        self.disturbed();
    }

    pub fn set_trackers(&mut self, r: usize, adj: Adjustment) {
        self.routers[r].adj = adj;
        self.input(r, Input::Trackers(adj));
        self.disturbed();
    }

    pub fn set_loss(&mut self, permille: u64) {
        self.net.loss_permille = permille;
        self.note(|| format!("loss {permille}/1000"));
        self.disturbed();
    }

    pub fn partition(&mut self, sides: &[u8]) {
        for (r, s) in sides.iter().enumerate() {
            self.routers[r].side = *s;
        }
        self.note(|| format!("partition {sides:?}"));
        self.disturbed();
    }

    pub fn heal(&mut self) {
        for r in &mut self.routers {
            r.side = 0;
        }
        self.note(|| "heal".to_string());
        self.disturbed();
    }

    // ---- queries -------------------------------------------------------------------

    pub fn masters(&self) -> Vec<usize> {
        (0..self.routers.len())
            .filter(|&i| self.routers[i].alive && self.routers[i].inst.state() == State::Master)
            .collect()
    }

    /// Groups of active routers that can hear each other.
    pub fn components(&self) -> Vec<Vec<usize>> {
        let mut sides: Vec<(u8, u8)> = self
            .routers
            .iter()
            .filter(|r| r.active())
            .map(|r| (r.lan, r.side))
            .collect();
        sides.sort();
        sides.dedup();
        sides
            .into_iter()
            .map(|s| {
                (0..self.routers.len())
                    .filter(|&i| {
                        let r = &self.routers[i];
                        r.active() && (r.lan, r.side) == s
                    })
                    .collect()
            })
            .collect()
    }

    /// After a quiet period: exactly one master per component; if every member preempts,
    /// the master has the highest effective priority of its component.
    pub fn check_converged(&self) -> Result<(), String> {
        for comp in self.components() {
            let masters: Vec<usize> = comp
                .iter()
                .copied()
                .filter(|&i| self.routers[i].inst.state() == State::Master)
                .collect();
            if masters.len() != 1 {
                return Err(format!(
                    "{}: component {comp:?} has masters {masters:?} after a quiet period",
                    self.now
                ));
            }
            let m = masters[0];
            let best = comp
                .iter()
                .map(|&i| self.routers[i].inst.priority())
                .max()
                .unwrap_or(0);
            let all_preempt = comp.iter().all(|&i| self.routers[i].params.preempt);
            if all_preempt && self.routers[m].inst.priority() != best {
                return Err(format!(
                    "{}: master r{m} has priority {} but {best} is available (preempt on)",
                    self.now,
                    self.routers[m].inst.priority()
                ));
            }
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (i, r) in self.routers.iter().enumerate() {
            let _ = writeln!(
                s,
                "  r{i}: {} prio {} (base {}) preempt={} delay={:?} start={:?} alive={} link={} side={} {:?} int={:?}",
                r.params.primary,
                r.inst.priority(),
                r.params.priority,
                r.params.preempt,
                r.params.preempt_delay,
                r.params.start,
                r.alive,
                r.iface_up,
                r.side,
                r.inst.state(),
                r.params.advert_int,
            );
        }
        s
    }
}
