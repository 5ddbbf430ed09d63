//! Property tests over thousands of seeded simulator scenarios (tests/sim). About 30 % of the
//! routers of the chaos and sync-group scenarios run a pre-master hook on every takeover.
//!
//! Replay one seed with its trace: `SIM_SEED=1234 cargo test --test pure vrrp_sim:: -- --nocapture`.
//! Change the count: `SIM_SCENARIOS=10000 cargo test --test pure vrrp_sim::`.

use crate::sim;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use minivrrp::base::{Duration, Instant};
use minivrrp::vrrp::instance::{Params, StartHint, State, Version};
use minivrrp::vrrp::priority::Adjustment;
use sim::{Net, Rng, Sim};

fn scenarios(default: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("SIM_SEED") {
        if let Ok(seed) = s.parse() {
            return vec![seed];
        }
    }
    let n = std::env::var("SIM_SCENARIOS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    (1..=n).collect()
}

/// Run `scenario` for every seed; on failure replay the seed with tracing on and report it.
fn for_seeds(name: &str, base: u64, default: u64, scenario: fn(u64, bool) -> Outcome) {
    let replay = std::env::var("SIM_SEED").is_ok();
    let mut events = 0u64;
    let seeds = scenarios(default);
    for &i in &seeds {
        let seed = if replay {
            i
        } else {
            base.wrapping_mul(1_000_003) ^ i
        };
        match scenario(seed, replay) {
            Ok(sim) => {
                events += sim.steps;
                if replay {
                    for l in &sim.log {
                        println!("{l}");
                    }
                }
            }
            Err((msg, _)) => {
                // Deterministic: the same seed fails the same way, now with a trace.
                let trace = match scenario(seed, true) {
                    Err((_, sim)) => {
                        let tail = sim.log.len().saturating_sub(80);
                        format!(
                            "{}\nlast trace lines:\n{}",
                            sim.describe(),
                            sim.log[tail..].join("\n")
                        )
                    }
                    Ok(_) => "(replay did not fail?)".to_string(),
                };
                panic!(
                    "{name}: seed {seed} failed: {msg}\n{trace}\nreplay: SIM_SEED={seed} cargo test --test pure vrrp_sim:: {name} -- --nocapture"
                );
            }
        }
    }
    eprintln!("{name}: {} scenarios, {events} events", seeds.len());
}

// The bounds below use their own transcription of the RFC formulas, not the library's, so a
// wrong formula in the library cannot move the bound along with it.

/// RFC 5798 6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256;
/// RFC 3768 6.1: Skew_Time = (256 - Priority) / 256 seconds.
fn skew_time(v: Version, prio: u8, int: Duration) -> Duration {
    let unit = match v {
        Version::V3 => int.as_micros() as u64,
        Version::V2 => 1_000_000,
    };
    Duration::from_micros((256 - prio as u64) * unit / 256)
}

/// RFC 5798 6.1: Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_Time.
fn master_down_interval(v: Version, prio: u8, int: Duration) -> Duration {
    int * 3 + skew_time(v, prio, int)
}

fn addr(v6: bool, i: usize) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i as u16 + 1))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1))
    }
}

struct Setup {
    params: Vec<Params>,
    net: Net,
    adv: Duration,
    version: Version,
}

fn random_setup(rng: &mut Rng, all_preempt: Option<bool>) -> Setup {
    let n = rng.range(2, 5) as usize;
    let version = if rng.chance(300) {
        Version::V2
    } else {
        Version::V3
    };
    let adv = match version {
        Version::V2 => Duration::from_secs(rng.range(1, 2)),
        Version::V3 => Duration::from_millis(10 * rng.range(10, 200)),
    };
    let v6 = rng.chance(300);
    // A small pool so that equal priorities (tie-breaks) are common.
    let pool = [50u8, 100, 100, 150, 200, 254, 255];
    let mut owner_taken = false;
    let params = (0..n)
        .map(|i| {
            let mut p = Params::new(addr(v6, i), 100);
            let mut prio = *rng.pick(&pool);
            if prio == 255 {
                if owner_taken {
                    prio = 254;
                }
                owner_taken = true;
            }
            p.priority = prio;
            p.version = version;
            p.advert_int = adv;
            p.preempt = all_preempt.unwrap_or_else(|| !rng.chance(200));
            p.preempt_delay = if rng.chance(200) {
                Duration::from_millis(rng.range(0, 3000))
            } else {
                Duration::ZERO
            };
            p.start = if rng.chance(150) {
                StartHint::Master
            } else {
                StartHint::Backup
            };
            p.garp_delay = Duration::from_millis(rng.range(0, 5000));
            p.garp_refresh = if rng.chance(200) {
                Duration::from_secs(rng.range(1, 10))
            } else {
                Duration::ZERO
            };
            p
        })
        .collect();
    let net = Net {
        loss_permille: 0,
        delay: Duration::from_micros(rng.range(50, 2000)),
        jitter: Duration::from_micros(rng.range(0, 3000)),
    };
    Setup {
        params,
        net,
        adv,
        version,
    }
}

/// Longest time the protocol needs to settle after the last disturbance: preempt_delay,
/// then a Master_Down_Interval for the preempting backup, then adverts to reach everyone.
fn quiet_period(s: &Setup) -> Duration {
    let max_delay = s
        .params
        .iter()
        .map(|p| p.preempt_delay)
        .max()
        .unwrap_or(Duration::ZERO);
    max_delay + master_down_interval(s.version, 1, s.adv) + s.adv * 3 + s.net.max_delay() * 4
}

type Outcome = Result<Box<Sim>, (String, Box<Sim>)>;

macro_rules! tryk {
    ($sim:ident, $e:expr) => {
        if let Err(e) = $e {
            return Err((e, Box::new($sim)));
        }
    };
}

/// Chaos (loss, crashes, restarts, flaps, priority changes, partitions), then a partition
/// with a master on each side, a heal, a quiet period, and a master crash or shutdown.
fn chaos_scenario(seed: u64, trace: bool) -> Outcome {
    let mut rng = Rng::new(seed);
    let setup = random_setup(&mut rng, None);
    let quiet = quiet_period(&setup);
    let n = setup.params.len();
    let adv = setup.adv;
    let tick = setup.net.max_delay() + Duration::from_micros(1);
    // A pre-master hook on some routers, from a stream of its own (the other draws stay as
    // they were for every seed).
    let mut params = setup.params.clone();
    let mut hook_rng = Rng::new(seed ^ 0x7072_655f_6d61);
    for p in &mut params {
        if hook_rng.chance(300) {
            p.pre_master_timeout = Some(adv.saturating_mul(hook_rng.range(1, 4) as u32));
        }
    }
    let mut sim = Sim::new(rng.next_u64(), params, setup.net);
    sim.trace = trace;

    // Rolling invariant: once nothing has been disturbed for a quiet period and the network
    // is loss-free, every component has exactly one master (the best one if all preempt).
    let mut rolling = move |s: &Sim| {
        if s.net.loss_permille == 0 && s.now - s.last_disturbance >= quiet {
            s.check_converged()
        } else {
            Ok(())
        }
    };

    sim.start_all();
    // Phase 1: chaos.
    let chaos_end = Instant::ZERO + adv * 20;
    while sim.now < chaos_end {
        let step = Duration::from_micros(
            rng.range(adv.as_micros() as u64 / 2, 3 * adv.as_micros() as u64),
        );
        let until = sim.now + step;
        tryk!(sim, sim.run_until(until, &mut rolling));
        let r = rng.below(n as u64) as usize;
        match rng.below(8) {
            0 => sim.crash(r),
            1 => sim.shutdown(r),
            2 => sim.restart(r),
            3 => {
                let up = !sim.routers[r].iface_up;
                sim.set_iface(r, up)
            }
            4 => {
                let delta = rng.range(0, 120) as i32 - 60;
                sim.set_trackers(
                    r,
                    Adjustment {
                        delta,
                        fault: false,
                    },
                )
            }
            5 => {
                let loss = *rng.pick(&[0u64, 0, 50, 200, 500]);
                sim.set_loss(loss)
            }
            6 => {
                let sides: Vec<u8> = (0..n).map(|_| rng.below(2) as u8).collect();
                sim.partition(&sides)
            }
            _ => sim.heal(),
        }
    }

    // Phase 2: repair everything except the partition, which is now forced into two sides
    // with at least one router each, so that each side elects its own master.
    sim.set_loss(0);
    for r in 0..n {
        sim.restart(r);
        if !sim.routers[r].iface_up {
            sim.set_iface(r, true);
        }
    }
    let mut sides: Vec<u8> = (0..n).map(|_| rng.below(2) as u8).collect();
    sides[0] = 0;
    sides[n - 1] = 1;
    sim.partition(&sides);
    let until = sim.now + quiet * 2;
    tryk!(sim, sim.run_until(until, &mut rolling));
    tryk!(sim, sim.check_converged());

    // Phase 3: heal. RFC 5798 6.4.3: the weaker of two masters yields on the first
    // advertisement it hears, so no dual master survives one advert interval (plus two
    // network delays: the advert in flight, and a backup's timer racing it).
    sim.heal();
    let healed = sim.now;
    let bound = healed + adv + tick + tick;
    let mut heal_check = |s: &Sim| {
        if s.now >= bound {
            let old: Vec<usize> = s
                .masters()
                .into_iter()
                .filter(|&m| s.routers[m].master_since.is_some_and(|t| t <= healed))
                .collect();
            if old.len() > 1 {
                return Err(format!(
                    "{}: masters {old:?} from before the heal at {healed} survived one advert interval",
                    s.now
                ));
            }
        }
        rolling(s)
    };
    let until = healed + quiet * 2;
    tryk!(sim, sim.run_until(until, &mut heal_check));
    tryk!(sim, sim.check_converged());

    // Phase 4: the master dies (crash) or leaves (shutdown, priority 0).
    let masters = sim.masters();
    let m = masters[0];
    let backups: Vec<usize> = (0..n)
        .filter(|&i| i != m && sim.routers[i].active())
        .collect();
    if backups.is_empty() {
        return Ok(Box::new(sim));
    }
    let best = backups
        .iter()
        .map(|&i| sim.routers[i].inst.priority())
        .max()
        .unwrap_or(1);
    let graceful = rng.chance(500);
    let t0 = sim.now;
    let limit = if graceful {
        sim.shutdown(m);
        // RFC 5798 6.4.2: priority 0 sets Master_Down_Timer to Skew_Time.
        t0 + skew_time(setup.version, best, adv) + tick
    } else {
        sim.crash(m);
        t0 + master_down_interval(setup.version, best, adv) + tick
    };
    let first = sim.transitions.len();
    let until = limit;
    tryk!(sim, sim.run_until(until, &mut rolling));
    let took_over = sim.transitions[first..]
        .iter()
        .any(|t| t.to == State::Master);
    if !took_over {
        let what = if graceful {
            "Skew_Time after priority 0"
        } else {
            "Master_Down_Interval after a crash"
        };
        return Err((
            format!("no new master within {what} (+ one tick): limit {limit}"),
            Box::new(sim),
        ));
    }
    let until = sim.now + quiet * 2;
    tryk!(sim, sim.run_until(until, &mut rolling));
    tryk!(sim, sim.check_converged());
    Ok(Box::new(sim))
}

#[test]
fn sim_chaos_partition_heal_crash_properties() {
    for_seeds(
        "sim_chaos_partition_heal_crash_properties",
        1,
        3000,
        chaos_scenario,
    );
}

/// keepalived nopreempt: once a master runs, a backup whose priority rises above it, or a
/// higher-priority router that starts later, does not take over (RFC 5798 6.4.2, Preempt_Mode
/// False: every non-zero advertisement resets the Master_Down_Timer).
fn nopreempt_scenario(seed: u64, trace: bool) -> Outcome {
    let mut rng = Rng::new(seed);
    let mut setup = random_setup(&mut rng, Some(false));
    for p in &mut setup.params {
        // An owner or a MASTER hint takes over by design (6.4.1), not by preemption.
        p.priority = p.priority.min(254);
        p.start = StartHint::Backup;
    }
    let quiet = quiet_period(&setup);
    let n = setup.params.len();
    let mut sim = Sim::new(rng.next_u64(), setup.params.clone(), setup.net);
    sim.trace = trace;
    let late = rng.below(n as u64) as usize;
    for r in 0..n {
        if r != late {
            sim.input(r, minivrrp::vrrp::instance::Input::Startup);
        }
    }
    let mut ok = |_: &Sim| Ok(());
    let until = sim.now + quiet;
    tryk!(sim, sim.run_until(until, &mut ok));
    tryk!(sim, sim.check_converged());
    let m = sim.masters()[0];
    // A late router with the highest priority joins; a backup's priority is raised.
    sim.routers[late].params.priority = 254;
    sim.routers[late].alive = false;
    sim.restart(late);
    let b = (0..n).find(|&i| i != m && i != late);
    if let Some(b) = b {
        sim.set_trackers(
            b,
            Adjustment {
                delta: 200,
                fault: false,
            },
        );
    }
    let mut kept = move |s: &Sim| {
        let ms = s.masters();
        if ms != [m] {
            return Err(format!(
                "{}: nopreempt master r{m} replaced: masters {ms:?}",
                s.now
            ));
        }
        Ok(())
    };
    // Let the late router's startup Master_Down_Interval pass first: until it hears the
    // master it is a backup, and with zero loss it always hears one within an interval.
    let until = sim.now + quiet * 3;
    tryk!(sim, sim.run_until(until, &mut kept));
    Ok(Box::new(sim))
}

#[test]
fn sim_nopreempt_keeps_running_master() {
    for_seeds(
        "sim_nopreempt_keeps_running_master",
        2,
        1000,
        nopreempt_scenario,
    );
}

/// Sync groups (keepalived `vrrp_sync_group`): each box runs a LAN and a WAN instance in one
/// group, with the same priority on both (as sync groups are meant to be configured). At every
/// step, a member with its own fault holds the box's other member in FAULT; after a quiet
/// period each LAN has one master and both instances of every box are in the same state.
fn sync_group_scenario(seed: u64, trace: bool) -> Outcome {
    let mut rng = Rng::new(seed);
    let boxes = rng.range(2, 3) as usize;
    let adv = Duration::from_millis(10 * rng.range(20, 100));
    let pool = [100u8, 150, 150, 200, 254];
    let mut params = Vec::new();
    for k in 0..boxes {
        let prio = *rng.pick(&pool);
        let preempt = !rng.chance(200);
        for lan in 0..2u8 {
            let mut p = Params::new(IpAddr::V4(Ipv4Addr::new(10, 0, lan, k as u8 + 1)), prio);
            p.advert_int = adv;
            p.preempt = preempt;
            p.garp_delay = Duration::ZERO;
            params.push(p);
        }
    }
    let net = Net {
        loss_permille: 0,
        delay: Duration::from_micros(rng.range(50, 2000)),
        jitter: Duration::from_micros(rng.range(0, 2000)),
    };
    let setup = Setup {
        params: params.clone(),
        net,
        adv,
        version: Version::V3,
    };
    let quiet = quiet_period(&setup) * 2;
    // A pre-master hook on some members (a stream of its own, as in the chaos scenario).
    let mut hook_rng = Rng::new(seed ^ 0x7072_655f_6d61);
    for p in &mut params {
        if hook_rng.chance(300) {
            p.pre_master_timeout = Some(adv.saturating_mul(hook_rng.range(1, 4) as u32));
        }
    }
    let mut sim = Sim::new(rng.next_u64(), params, net);
    sim.trace = trace;
    for k in 0..boxes {
        sim.routers[2 * k + 1].lan = 1;
        sim.add_sync_group(vec![2 * k, 2 * k + 1]);
    }
    let same_state = |s: &Sim| -> Result<(), String> {
        for k in 0..boxes {
            let (a, b) = (&s.routers[2 * k], &s.routers[2 * k + 1]);
            if a.alive && b.alive && a.inst.state() != b.inst.state() {
                return Err(format!(
                    "{}: box {k} members disagree: {} / {}",
                    s.now,
                    a.inst.state(),
                    b.inst.state()
                ));
            }
        }
        Ok(())
    };
    let mut check = move |s: &Sim| -> Result<(), String> {
        for k in 0..boxes {
            let m = [&s.routers[2 * k], &s.routers[2 * k + 1]];
            if m.iter().all(|r| r.alive)
                && m.iter().any(|r| r.inst.own_fault())
                && m.iter().any(|r| r.inst.state() != State::Fault)
            {
                return Err(format!(
                    "{}: box {k} has a fault but a member is not in FAULT",
                    s.now
                ));
            }
        }
        if s.net.loss_permille == 0 && s.now - s.last_disturbance >= quiet {
            s.check_converged()?;
            same_state(s)?;
        }
        Ok(())
    };
    sim.start_all();
    let chaos_end = Instant::ZERO + adv * 30;
    while sim.now < chaos_end {
        let step = Duration::from_micros(
            rng.range(adv.as_micros() as u64 / 2, 4 * adv.as_micros() as u64),
        );
        let until = sim.now + step;
        tryk!(sim, sim.run_until(until, &mut check));
        let k = rng.below(boxes as u64) as usize;
        match rng.below(5) {
            0 => {
                sim.crash(2 * k);
                sim.crash(2 * k + 1);
            }
            1 => {
                sim.restart(2 * k);
                sim.restart(2 * k + 1);
            }
            2 | 3 => {
                let r = 2 * k + rng.below(2) as usize;
                let up = !sim.routers[r].iface_up;
                sim.set_iface(r, up);
            }
            _ => {
                let loss = *rng.pick(&[0u64, 0, 100, 300]);
                sim.set_loss(loss);
            }
        }
    }
    sim.set_loss(0);
    for r in 0..2 * boxes {
        sim.restart(r);
        if !sim.routers[r].iface_up {
            sim.set_iface(r, true);
        }
    }
    let until = sim.now + quiet * 2;
    tryk!(sim, sim.run_until(until, &mut check));
    tryk!(sim, sim.check_converged());
    tryk!(sim, same_state(&sim));
    Ok(Box::new(sim))
}

#[test]
fn sim_sync_group_members_move_together() {
    for_seeds(
        "sim_sync_group_members_move_together",
        3,
        1000,
        sync_group_scenario,
    );
}
