//! State-machine tests named after the RFC 5798 (and RFC 3768 / keepalived) rule they cover.

use std::net::{IpAddr, Ipv4Addr};

use minivrrp::base::{Duration, Instant};
use minivrrp::vrrp::instance::{
    master_down_interval, skew_time, Action, Actions, Advert, Input, Instance, Params, Reason,
    StartHint, State, SyncCommand, Version,
};
use minivrrp::vrrp::priority::Adjustment;
use minivrrp::vrrp::sync_group::SyncGroup;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn secs_f(s: f64) -> Duration {
    Duration::from_micros((s * 1e6).round() as u64)
}

fn at(s: f64) -> Instant {
    Instant::ZERO + secs_f(s)
}

fn adv(src: u8, priority: u8) -> Input {
    Input::AdvertReceived(Advert {
        src: ip(src),
        priority,
        advert_int: Duration::from_secs(1),
    })
}

fn params(priority: u8) -> Params {
    let mut p = Params::new(ip(2), priority);
    p.garp_delay = Duration::ZERO;
    p
}

fn started(p: Params) -> Instance {
    let mut i = Instance::new(p);
    i.handle(Instant::ZERO, Input::Startup);
    i
}

fn master(priority: u8) -> Instance {
    let mut p = params(priority);
    p.start = StartHint::Master;
    let i = started(p);
    assert_eq!(i.state(), State::Master);
    i
}

fn transition(a: &Actions) -> Option<(State, State, Reason)> {
    a.iter().find_map(|x| match *x {
        Action::Transition { from, to, reason } => Some((from, to, reason)),
        _ => None,
    })
}

fn sends(a: &Actions) -> Vec<u8> {
    a.iter()
        .filter_map(|x| match *x {
            Action::SendAdvert { priority } => Some(priority),
            _ => None,
        })
        .collect()
}

/// Fire timers like the daemon does, up to `until`; returns all actions.
fn run(i: &mut Instance, until: Instant) -> Vec<(Instant, Action)> {
    let mut out = Vec::new();
    while let Some(d) = i.next_deadline() {
        if d > until {
            break;
        }
        for a in i.handle(d, Input::Timer) {
            out.push((d, a));
        }
    }
    out
}

fn became_master_at(i: &mut Instance, until: Instant) -> Option<Instant> {
    run(i, until).into_iter().find_map(|(t, a)| match a {
        Action::Transition {
            to: State::Master, ..
        } => Some(t),
        _ => None,
    })
}

#[test]
fn skew_time_v3_scales_with_master_adver_interval_6_1() {
    // ((256 - 100) * 100 cs) / 256 = 60.9375 cs
    assert_eq!(
        skew_time(Version::V3, 100, Duration::from_secs(1)),
        Duration::from_micros(609_375)
    );
    assert_eq!(
        skew_time(Version::V3, 100, Duration::from_secs(2)),
        Duration::from_micros(1_218_750)
    );
    assert_eq!(
        skew_time(Version::V3, 255, Duration::from_secs(1)),
        Duration::from_micros(3_906)
    );
}

#[test]
fn skew_time_v2_is_fraction_of_a_second_rfc3768_6_1() {
    // RFC 3768: (256 - Priority) / 256 seconds, whatever the interval.
    assert_eq!(
        skew_time(Version::V2, 100, Duration::from_secs(3)),
        Duration::from_micros(609_375)
    );
    assert_eq!(
        master_down_interval(Version::V2, 100, Duration::from_secs(3)),
        Duration::from_micros(9_609_375)
    );
}

#[test]
fn master_down_interval_is_three_intervals_plus_skew_6_1() {
    assert_eq!(
        master_down_interval(Version::V3, 100, Duration::from_secs(1)),
        Duration::from_micros(3_609_375)
    );
    assert_eq!(
        master_down_interval(Version::V3, 200, Duration::from_millis(500)),
        Duration::from_micros(1_500_000 + 109_375)
    );
}

#[test]
fn owner_255_goes_master_at_startup_6_4_1() {
    let mut i = Instance::new(params(255));
    let a = i.handle(Instant::ZERO, Input::Startup);
    assert_eq!(
        transition(&a),
        Some((State::Init, State::Master, Reason::AddressOwner))
    );
    assert_eq!(sends(&a), [255]);
    assert!(a.contains(&Action::AddVips));
    assert!(a.contains(&Action::Announce { count: 5 }));
    assert_eq!(i.next_deadline(), Some(at(1.0)));
}

#[test]
fn non_owner_starts_backup_with_master_down_interval_6_4_1() {
    let mut i = Instance::new(params(100));
    let a = i.handle(Instant::ZERO, Input::Startup);
    assert_eq!(
        transition(&a),
        Some((State::Init, State::Backup, Reason::Startup))
    );
    assert!(sends(&a).is_empty());
    assert_eq!(i.next_deadline(), Some(at(3.609375)));
}

#[test]
fn backup_becomes_master_when_master_down_timer_fires_6_4_2() {
    let mut i = started(params(100));
    // Early timer call: nothing due, nothing happens.
    assert!(i.handle(at(3.0), Input::Timer).is_empty());
    let a = i.handle(at(3.609375), Input::Timer);
    let (from, to, reason) = transition(&a).expect("transition");
    assert_eq!((from, to), (State::Backup, State::Master));
    assert_eq!(reason.to_string(), "master down timer expired (3.61 s)");
    assert_eq!(sends(&a), [100]);
}

#[test]
fn backup_ignores_lower_priority_when_preempt_off_6_4_2() {
    let mut p = params(150);
    p.preempt = false;
    let mut i = started(p);
    // Preempt_Mode False: the lower-priority advert is accepted and resets the timer.
    assert!(i.handle(at(3.0), adv(1, 100)).is_empty());
    assert_eq!(i.next_deadline(), Some(at(3.0) + i.master_down_interval()));
    assert_eq!(became_master_at(&mut i, at(6.0)), None);
}

#[test]
fn backup_discards_lower_priority_when_preempt_on_6_4_2() {
    let mut i = started(params(150));
    let deadline = i.next_deadline();
    i.handle(at(1.0), adv(1, 100));
    i.handle(at(2.0), adv(1, 100));
    assert_eq!(
        i.next_deadline(),
        deadline,
        "discarded adverts reset nothing"
    );
    let a = i.handle(at(3.414062), Input::Timer);
    assert_eq!(
        transition(&a).map(|t| t.2.to_string()),
        Some("preempting lower priority 100 from 10.0.0.1".into())
    );
}

#[test]
fn backup_accepts_equal_priority_6_4_2() {
    let mut i = started(params(100));
    i.handle(at(3.0), adv(1, 100));
    assert_eq!(i.next_deadline(), Some(at(3.0 + 3.609375)));
}

#[test]
fn backup_priority_zero_sets_skew_time_6_4_2() {
    let mut i = started(params(100));
    i.handle(at(1.0), adv(1, 200));
    i.handle(at(2.0), adv(1, 0));
    assert_eq!(i.next_deadline(), Some(at(2.0) + i.skew_time()));
    assert_eq!(became_master_at(&mut i, at(10.0)), Some(at(2.609375)));
}

#[test]
fn backup_learns_master_adver_interval_v3_6_4_2() {
    let mut i = started(params(100));
    i.handle(
        at(1.0),
        Input::AdvertReceived(Advert {
            src: ip(1),
            priority: 200,
            advert_int: Duration::from_millis(500),
        }),
    );
    assert_eq!(i.master_adver_interval(), Duration::from_millis(500));
    // 3 * 0.5 + 156 * 0.5 / 256 = 1.8046875, truncated to the microsecond clock
    assert_eq!(i.next_deadline(), Some(at(1.0) + secs_f(1.804687)));
}

#[test]
fn backup_learned_interval_has_a_floor_of_a_tenth_of_its_own_6_4_2() {
    // A 10 ms Max Adver Int would make Master_Down_Interval ~30 ms; the floor is 1 s / 10.
    let mut i = started(params(100));
    i.handle(
        at(1.0),
        Input::AdvertReceived(Advert {
            src: ip(1),
            priority: 200,
            advert_int: Duration::from_millis(10),
        }),
    );
    assert_eq!(i.master_adver_interval(), Duration::from_millis(100));
    assert!(i.next_deadline() >= Some(at(1.3)));
    // Longer intervals are learned as advertised (no cap).
    i.handle(
        at(1.1),
        Input::AdvertReceived(Advert {
            src: ip(1),
            priority: 200,
            advert_int: Duration::from_secs(30),
        }),
    );
    assert_eq!(i.master_adver_interval(), Duration::from_secs(30));
}

#[test]
fn backup_v2_discards_other_interval_rfc3768_7_1() {
    let mut p = params(100);
    p.version = Version::V2;
    let mut i = started(p);
    let before = i.next_deadline();
    i.handle(
        at(1.0),
        Input::AdvertReceived(Advert {
            src: ip(1),
            priority: 200,
            advert_int: Duration::from_secs(2),
        }),
    );
    assert_eq!(i.next_deadline(), before);
    assert_eq!(i.counters().adverts_discarded, 1);
}

#[test]
fn master_yields_to_higher_priority_6_4_3() {
    let mut i = master(100);
    let a = i.handle(at(0.5), adv(9, 150));
    assert_eq!(
        transition(&a),
        Some((
            State::Master,
            State::Backup,
            Reason::HigherPriority {
                priority: 150,
                from: ip(9)
            }
        ))
    );
    assert!(a.contains(&Action::RemoveVips));
    assert!(sends(&a).is_empty());
}

#[test]
fn master_yields_to_equal_priority_higher_address_6_4_3() {
    let mut i = master(100);
    let a = i.handle(at(0.5), adv(7, 100));
    assert_eq!(
        transition(&a).map(|t| t.2.to_string()),
        Some("equal priority 100 from higher address 10.0.0.7".into())
    );
}

#[test]
fn master_keeps_on_equal_priority_lower_address_6_4_3() {
    let mut i = master(100);
    // It stays master and, like keepalived, answers the other master at once.
    assert_eq!(sends(&i.handle(at(0.5), adv(1, 100))), [100]);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn master_answers_a_lower_priority_master_at_once_6_4_3() {
    // RFC 5798 6.4.3 discards the advert; a second master means a partition healed, and
    // keepalived answers it so it yields now instead of at our next advert.
    let mut i = master(100);
    let a = i.handle(at(0.5), adv(9, 99));
    assert_eq!(sends(&a), [100]);
    assert_eq!(i.state(), State::Master);
    assert_eq!(
        i.next_deadline(),
        Some(at(1.5)),
        "Adver_Timer restarts from the answer"
    );
}

#[test]
fn out_of_turn_answers_are_one_per_advert_interval() {
    // A flood of priority-0 or lower-master adverts gets one answer per interval, not one
    // per packet: the master is no multicast reflector.
    let mut i = master(100);
    let mut answers = 0;
    for k in 0..100 {
        let t = 0.3 + f64::from(k) * 0.01;
        let input = if k % 2 == 0 { adv(1, 0) } else { adv(9, 99) };
        answers += sends(&i.handle(at(t), input)).len();
    }
    // 0.30 .. 1.29 s: one answer at 0.30, the next allowed from 1.30.
    assert_eq!(answers, 1);
    assert_eq!(sends(&i.handle(at(1.3), adv(1, 0))), [100]);
}

#[test]
fn master_answers_priority_zero_6_4_3() {
    let mut i = master(100);
    let a = i.handle(at(0.5), adv(1, 0));
    assert_eq!(sends(&a), [100]);
    assert_eq!(i.next_deadline(), Some(at(1.5)));
}

#[test]
fn master_advertises_every_advertisement_interval_6_4_3() {
    let mut i = master(100);
    let sent: Vec<Instant> = run(&mut i, at(3.5))
        .into_iter()
        .filter(|(_, a)| matches!(a, Action::SendAdvert { .. }))
        .map(|(t, _)| t)
        .collect();
    assert_eq!(sent, [at(1.0), at(2.0), at(3.0)]);
}

#[test]
fn shutdown_master_sends_priority_zero_6_4_3() {
    let mut i = master(100);
    let a = i.handle(at(0.5), Input::Shutdown);
    assert_eq!(sends(&a), [0]);
    assert!(a.contains(&Action::RemoveVips));
    assert_eq!(
        transition(&a),
        Some((State::Master, State::Init, Reason::Shutdown))
    );
    assert_eq!(i.next_deadline(), None);
}

#[test]
fn shutdown_backup_cancels_master_down_timer_6_4_2() {
    let mut i = started(params(100));
    let a = i.handle(at(0.5), Input::Shutdown);
    assert!(sends(&a).is_empty());
    assert_eq!(i.state(), State::Init);
    assert_eq!(i.next_deadline(), None);
}

#[test]
fn own_advert_looped_back_is_discarded() {
    let mut i = master(100);
    assert!(i.handle(at(0.5), adv(2, 200)).is_empty());
    assert_eq!(i.state(), State::Master);
}

#[test]
fn preempt_delay_defers_preemption_keepalived() {
    let mut p = params(150);
    p.preempt_delay = Duration::from_secs(5);
    let mut i = started(p);
    for k in 0..5 {
        i.handle(at(0.5 + k as f64), adv(1, 100));
    }
    assert_eq!(i.state(), State::Backup);
    // From 5 s on the lower master's adverts are discarded.
    i.handle(at(5.5), adv(1, 100));
    assert_eq!(became_master_at(&mut i, at(10.0)), Some(at(4.5 + 3.414062)));
}

#[test]
fn start_hint_master_takes_over_at_startup_keepalived() {
    let mut p = params(100);
    p.start = StartHint::Master;
    let mut i = Instance::new(p);
    let a = i.handle(Instant::ZERO, Input::Startup);
    assert_eq!(
        transition(&a),
        Some((State::Init, State::Master, Reason::StartHintMaster))
    );
}

#[test]
fn interface_down_is_fault_and_up_is_backup() {
    let mut i = master(100);
    let a = i.handle(at(0.5), Input::InterfaceDown);
    assert!(sends(&a).is_empty(), "no advert with the link down");
    assert_eq!(i.state(), State::Fault);
    assert!(i.own_fault());
    assert!(i.handle(at(0.6), adv(1, 50)).is_empty());
    let a = i.handle(at(1.0), Input::InterfaceUp);
    assert_eq!(
        transition(&a),
        Some((State::Fault, State::Backup, Reason::FaultCleared))
    );
}

#[test]
fn interface_down_before_startup_starts_in_fault() {
    let mut i = Instance::new(params(100));
    i.handle(Instant::ZERO, Input::InterfaceDown);
    let a = i.handle(Instant::ZERO, Input::Startup);
    assert_eq!(transition(&a).map(|t| t.1), Some(State::Fault));
}

#[test]
fn tracker_fault_releases_mastership_with_priority_zero() {
    let mut i = master(100);
    let a = i.handle(
        at(0.5),
        Input::Trackers(Adjustment {
            delta: 0,
            fault: true,
        }),
    );
    assert_eq!(sends(&a), [0]);
    assert_eq!(i.state(), State::Fault);
}

#[test]
fn tracker_weight_changes_priority_without_transition() {
    let mut i = started(params(100));
    let a = i.handle(
        at(0.5),
        Input::Trackers(Adjustment {
            delta: 60,
            fault: false,
        }),
    );
    assert!(a.is_empty());
    assert_eq!(i.priority(), 160);
    // Now a 150 master is lower: with preempt on its adverts are discarded.
    let before = i.next_deadline();
    i.handle(at(1.0), adv(1, 150));
    assert_eq!(i.next_deadline(), before);
}

#[test]
fn owner_priority_never_adjusted_5_2_4() {
    let mut i = started(params(255));
    i.handle(
        at(0.5),
        Input::Trackers(Adjustment {
            delta: -100,
            fault: false,
        }),
    );
    assert_eq!(i.priority(), 255);
}

#[test]
fn config_priority_change_is_applied_without_transition() {
    let mut i = started(params(100));
    let mut p = *i.params();
    p.priority = 200;
    let a = i.handle(at(1.0), Input::ConfigChange(p));
    assert!(transition(&a).is_none());
    assert_eq!(i.priority(), 200);
    // Master_Down_Interval re-armed for the new priority's Skew_Time.
    assert_eq!(i.next_deadline(), Some(at(1.0) + secs_f(3.21875)));
}

#[test]
fn config_version_change_restarts_instance() {
    let mut i = master(100);
    let mut p = *i.params();
    p.version = Version::V2;
    let a = i.handle(at(0.5), Input::ConfigChange(p));
    let states: Vec<(State, State)> = a
        .iter()
        .filter_map(|x| match *x {
            Action::Transition { from, to, .. } => Some((from, to)),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [(State::Master, State::Init), (State::Init, State::Master)]
    );
    assert_eq!(sends(&a), [0, 100]);
}

#[test]
fn sync_group_members_fault_and_master_together() {
    let mut a = started(params(100));
    let mut b = started({
        let mut p = params(100);
        p.primary = ip(3);
        p
    });
    let mut g = SyncGroup::new(2);
    g.update(0, a.state(), a.own_fault());
    g.update(1, b.state(), b.own_fault());

    // a's link goes down: b is held in FAULT.
    a.handle(at(0.5), Input::InterfaceDown);
    let cmds = g.update(0, a.state(), a.own_fault());
    assert_eq!(cmds.as_slice(), &[(1, SyncCommand::Fault)]);
    b.handle(at(0.5), Input::Sync(SyncCommand::Fault));
    assert_eq!(b.state(), State::Fault);
    assert!(g.update(1, b.state(), b.own_fault()).is_empty());

    // a recovers: both released to BACKUP.
    a.handle(at(1.0), Input::InterfaceUp);
    for (m, c) in g.update(0, a.state(), a.own_fault()) {
        assert_eq!(m, 1);
        b.handle(at(1.0), Input::Sync(c));
    }
    assert_eq!((a.state(), b.state()), (State::Backup, State::Backup));
    g.update(1, b.state(), b.own_fault());

    // a's Master_Down_Timer fires first: b follows to MASTER.
    let t = a.next_deadline().expect("timer");
    a.handle(t, Input::Timer);
    for (m, c) in g.update(0, a.state(), a.own_fault()) {
        assert_eq!((m, c), (1, SyncCommand::Master));
        b.handle(t, Input::Sync(c));
    }
    assert_eq!(b.state(), State::Master);
}

// --- Operator control (maintenance mode, priority override): the master hands over like
// RFC 5798 6.4.3 Shutdown, the backup never takes over while in maintenance.

#[test]
fn maintenance_master_sends_priority_zero_and_stays_backup_6_4_3() {
    let mut i = master(150);
    let a = i.handle(at(1.0), Input::Maintenance(true));
    assert_eq!(sends(&a), vec![0]);
    assert!(a.contains(&Action::RemoveVips));
    assert_eq!(
        transition(&a),
        Some((State::Master, State::Backup, Reason::Maintenance))
    );
    assert!(i.in_maintenance());
    assert_eq!(i.last_change(), Some((at(1.0), Reason::Maintenance)));
    // No master anywhere for a minute: it still never takes over.
    let acts = run(&mut i, at(60.0));
    assert!(
        acts.iter()
            .all(|(_, a)| !matches!(a, Action::SendAdvert { .. })),
        "{acts:?}"
    );
    assert_eq!(i.state(), State::Backup);
    // Off: takes over after one fresh Master_Down_Interval.
    i.handle(at(60.0), Input::Maintenance(false));
    let mdi = master_down_interval(Version::V3, 150, Duration::from_secs(1));
    run(&mut i, at(60.0) + mdi);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn maintenance_backup_ignores_priority_zero_and_preempts_after_off_6_4_2() {
    let mut i = started(params(200));
    i.handle(at(0.5), adv(9, 100));
    assert_eq!(i.master_address(), Some(ip(9)));
    i.handle(at(0.6), Input::Maintenance(true));
    i.handle(at(1.0), adv(9, 0));
    run(&mut i, at(30.0));
    assert_eq!(i.state(), State::Backup);
    i.handle(at(30.0), Input::Maintenance(false));
    // The lower-priority master keeps advertising: preempted after Master_Down_Interval.
    for k in 0..5 {
        i.handle(at(30.1 + k as f64), adv(9, 100));
        run(&mut i, at(30.1 + k as f64));
    }
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.master_address(), Some(ip(2)));
}

#[test]
fn priority_override_is_advertised_at_once_and_reset_restores_the_base() {
    let mut i = master(100);
    let a = i.handle(at(0.3), Input::PriorityOverride(Some(180)));
    assert_eq!(sends(&a), vec![180]);
    assert_eq!(i.priority(), 180);
    assert_eq!(i.priority_override(), Some(180));
    // A higher override wins elections against a 150 it would have lost to.
    assert!(transition(&i.handle(at(0.4), adv(9, 150))).is_none());
    let a = i.handle(at(0.5), Input::PriorityOverride(None));
    assert_eq!(sends(&a), vec![100]);
    assert_eq!(i.priority(), 100);
    let a = i.handle(at(0.6), adv(9, 150));
    assert_eq!(
        transition(&a).map(|t| t.1),
        Some(State::Backup),
        "back at base 100, the 150 takes over"
    );
    assert_eq!(i.master_address(), Some(ip(9)));
}

#[test]
fn announce_only_as_master() {
    let mut m = master(100);
    assert!(m
        .handle(at(1.0), Input::Announce)
        .iter()
        .any(|a| matches!(a, Action::Announce { .. })));
    let mut b = started(params(100));
    assert!(b.handle(at(1.0), Input::Announce).is_empty());
}

fn held_master(timeout: f64) -> Instance {
    let mut p = params(100);
    p.start = StartHint::Master;
    p.pre_master_timeout = Some(secs_f(timeout));
    let i = started(p);
    assert_eq!(i.state(), State::Master);
    assert!(i.pre_master_held());
    i
}

fn has(a: &[Action], x: Action) -> bool {
    a.contains(&x)
}

/// RFC 5798 6.4.2: a new master advertises at once, even while its addresses wait for the
/// pre-master hook (otherwise a second backup's Master_Down_Timer would fire too); the
/// VIPs, GARPs and notify wait for the hook.
#[test]
fn held_master_advertises_at_once_and_takes_vips_when_hook_exits_6_4_2() {
    let mut p = params(100);
    p.start = StartHint::Master;
    p.pre_master_timeout = Some(Duration::from_secs(5));
    let mut i = Instance::new(p);
    let a = i.handle(Instant::ZERO, Input::Startup);
    assert_eq!(sends(&a), [100]);
    assert!(has(&a, Action::RunPreMaster));
    assert!(!has(&a, Action::AddVips));
    assert!(!a.iter().any(|x| matches!(x, Action::Announce { .. })));
    assert!(!has(&a, Action::Notify(State::Master)));
    // Adverts keep their rhythm during the hold.
    let timers = run(&mut i, at(2.5));
    let adverts: Vec<Instant> = timers
        .iter()
        .filter(|(_, x)| matches!(x, Action::SendAdvert { .. }))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(adverts, [at(1.0), at(2.0)]);
    assert!(timers.iter().all(|(_, x)| !has(&[*x], Action::AddVips)));
    let a = i.handle(at(2.5), Input::PreMasterDone);
    assert_eq!(
        &a[..],
        [
            Action::AddVips,
            Action::Announce { count: 5 },
            Action::Notify(State::Master)
        ]
    );
    assert!(!i.pre_master_held());
}

#[test]
fn hook_removed_by_reload_during_the_hold_ends_it_at_once() {
    let mut i = held_master(5.0);
    let mut p = *i.params();
    p.pre_master_timeout = None;
    let a = i.handle(at(1.5), Input::ConfigChange(p));
    assert_eq!(
        &a[..],
        [
            Action::StopPreMaster,
            Action::AddVips,
            Action::Announce { count: 5 },
            Action::Notify(State::Master)
        ]
    );
    assert!(!i.pre_master_held());
}

#[test]
fn new_pre_master_timeout_counts_from_the_start_of_the_hold() {
    let mut i = held_master(5.0);
    let mut p = *i.params();
    p.pre_master_timeout = Some(Duration::from_secs(2));
    assert!(i.handle(at(1.5), Input::ConfigChange(p)).is_empty());
    let timers = run(&mut i, at(2.0));
    assert!(timers.contains(&(at(2.0), Action::StopPreMaster)));
    assert!(timers.contains(&(at(2.0), Action::AddVips)));
}

/// A fault (tracker, link) during the hold: RFC 5798 6.4.3 leave-master path, with the hook
/// killed instead of VIPs removed.
#[test]
fn fault_during_the_hold_kills_the_hook_and_installs_nothing_6_4_3() {
    let mut i = held_master(5.0);
    let a = i.handle(
        at(0.5),
        Input::Trackers(Adjustment {
            delta: 0,
            fault: true,
        }),
    );
    assert_eq!(sends(&a), [0]);
    assert!(has(&a, Action::StopPreMaster));
    assert!(!has(&a, Action::RemoveVips));
    assert_eq!(i.state(), State::Fault);
    assert!(!i.pre_master_held());
    // The hold's deadline went with it: no late StopPreMaster / AddVips.
    assert!(run(&mut i, at(10.0))
        .iter()
        .all(|(_, x)| !matches!(x, Action::StopPreMaster | Action::AddVips)));
}

// --- One instance with IPv4 and IPv6 VIPs: two in-step routers (`Params::in_step`) and
// their group. Not an RFC rule: RFC 5798 runs one virtual router per family; these keep the
// two with one VRID master together, backup together, fault together.

/// The IPv4 and IPv6 routers of one dual-stack instance and their group, settled the way
/// `daemon::vrrp::settle_sync_groups` does it: every input's report goes to the group, the
/// group's commands are fed back, until nothing more is asked.
struct Dual {
    r: [Instance; 2],
    g: SyncGroup,
    /// Transitions seen, in order: (router, from, to, reason).
    moves: Vec<(usize, State, State, Reason)>,
}

impl Dual {
    fn new(priority: u8) -> Dual {
        let mk = |primary: IpAddr| {
            let mut p = params(priority);
            p.primary = primary;
            p.in_step = true;
            Instance::new(p)
        };
        let v6: IpAddr = "fe80::2".parse().unwrap();
        let mut d = Dual {
            r: [mk(ip(2)), mk(v6)],
            g: SyncGroup::new(2),
            moves: Vec::new(),
        };
        d.feed(0, Instant::ZERO, Input::Startup);
        d.feed(1, Instant::ZERO, Input::Startup);
        d
    }

    fn feed(&mut self, k: usize, now: Instant, input: Input) {
        let mut queue = vec![(k, input)];
        while let Some((k, input)) = queue.pop() {
            let a = self.r[k].handle(now, input);
            if let Some((from, to, reason)) = transition(&a) {
                self.moves.push((k, from, to, reason));
            }
            let r = &self.r[k];
            let cmds = self
                .g
                .update_wanting(k, r.state(), r.own_fault(), r.wants_master());
            for (m, c) in cmds {
                queue.insert(0, (m, Input::Sync(c)));
            }
        }
    }

    /// Fire both routers' due timers up to `until`, in deadline order.
    fn run(&mut self, until: Instant) {
        loop {
            let next = (0..2)
                .filter_map(|k| self.r[k].next_deadline().map(|t| (t, k)))
                .min();
            match next {
                Some((t, k)) if t <= until => self.feed(k, t, Input::Timer),
                _ => return,
            }
        }
    }

    fn states(&self) -> (State, State) {
        (self.r[0].state(), self.r[1].state())
    }
}

fn adv6(priority: u8) -> Input {
    Input::AdvertReceived(Advert {
        src: "fe80::9".parse().unwrap(),
        priority,
        advert_int: Duration::from_secs(1),
    })
}

#[test]
fn in_step_routers_take_over_together_with_the_timers_reason() {
    let mut d = Dual::new(100);
    assert_eq!(d.states(), (State::Backup, State::Backup));
    let mdi = master_down_interval(Version::V3, 100, Duration::from_secs(1));
    // Both timers are due at once; the IPv4 router's fires first and waits for the IPv6
    // one instead of taking over alone.
    d.run(Instant::ZERO + mdi);
    assert_eq!(d.states(), (State::Master, State::Master));
    let masters: Vec<_> = d
        .moves
        .iter()
        .filter(|m| m.2 == State::Master)
        .map(|m| m.3)
        .collect();
    assert_eq!(
        masters,
        [
            Reason::MasterDown { interval: mdi },
            Reason::MasterDown { interval: mdi }
        ],
        "each router keeps the reason of its own timer, not 'following sync group'"
    );
}

#[test]
fn in_step_router_waits_while_the_other_family_hears_a_master() {
    let mut d = Dual::new(100);
    // Only IPv6 adverts of a priority-200 master arrive, every second for 20 s: the IPv4
    // router's timer fires but it never takes over, and nobody flaps.
    for s in 0..20 {
        d.run(at(s as f64));
        d.feed(1, at(s as f64), adv6(200));
    }
    d.run(at(20.0));
    assert_eq!(d.states(), (State::Backup, State::Backup));
    assert!(d.r[0].wants_master() && !d.r[1].wants_master());
    assert_eq!(d.moves.len(), 2, "only the two startups: {:?}", d.moves);
    // The IPv6 master stops: after its Master_Down_Interval both take over at once.
    d.run(at(30.0));
    assert_eq!(d.states(), (State::Master, State::Master));
}

#[test]
fn a_higher_priority_on_one_family_sends_both_to_backup() {
    let mut d = Dual::new(150);
    d.run(at(5.0));
    assert_eq!(d.states(), (State::Master, State::Master));
    d.moves.clear();
    // A priority-200 advert on IPv6 only: the IPv6 router yields (RFC 5798 6.4.3), the
    // IPv4 router follows at once, and stays BACKUP past its Master_Down_Interval.
    d.feed(1, at(5.5), adv6(200));
    assert_eq!(d.states(), (State::Backup, State::Backup));
    assert_eq!(
        d.moves[0],
        (
            1,
            State::Master,
            State::Backup,
            Reason::HigherPriority {
                priority: 200,
                from: "fe80::9".parse().unwrap()
            }
        )
    );
    assert_eq!(d.moves[1].3, Reason::SyncGroup);
    for s in 6..15 {
        d.feed(1, at(s as f64), adv6(200));
        d.run(at(s as f64 + 0.5));
    }
    assert_eq!(d.states(), (State::Backup, State::Backup));
    assert_eq!(d.moves.len(), 2, "no flapping: {:?}", d.moves);
}

#[test]
fn a_fault_on_one_family_faults_both_and_both_recover() {
    let mut d = Dual::new(150);
    d.run(at(5.0));
    d.feed(0, at(5.0), Input::InterfaceDown);
    assert_eq!(d.states(), (State::Fault, State::Fault));
    d.feed(0, at(6.0), Input::InterfaceUp);
    assert_eq!(d.states(), (State::Backup, State::Backup));
    d.run(at(10.0));
    assert_eq!(d.states(), (State::Master, State::Master));
}

#[test]
fn preempting_needs_both_families_to_hear_only_lower_priorities() {
    let mut d = Dual::new(200);
    // A priority-100 master on both families: both routers discard its adverts (preempt)
    // and take over together after Master_Down_Interval.
    for s in 0..3 {
        d.feed(0, at(s as f64), adv(9, 100));
        d.feed(1, at(s as f64), adv6(100));
    }
    d.run(at(6.0));
    assert_eq!(d.states(), (State::Master, State::Master));
    assert!(matches!(
        d.moves[2].3,
        Reason::Preempting { priority: 100, .. }
    ));
}

// --- Preemption: the new master's services wait for the preempted master's resign ---

/// A backup at priority 150 with `await_resign` that hears a priority-100 master (10.0.0.1)
/// and preempts it when its Master_Down_Timer fires (RFC 5798 6.4.2); returns the actions of
/// that takeover and its instant.
fn preempting(await_resign: bool) -> (Instance, Actions, Instant) {
    let mut p = params(150);
    p.await_resign = await_resign;
    let mut i = started(p);
    for t in [1.0, 2.0, 3.0] {
        assert!(i.handle(at(t), adv(1, 100)).is_empty(), "discarded");
    }
    let down = i.next_deadline().expect("Master_Down_Timer");
    assert_eq!(down, Instant::ZERO + i.master_down_interval());
    let a = i.handle(down, Input::Timer);
    assert_eq!(
        transition(&a),
        Some((
            State::Backup,
            State::Master,
            Reason::Preempting {
                priority: 100,
                from: ip(1)
            }
        ))
    );
    (i, a, down)
}

/// RFC 5798 6.4.2 "transition to Master" happens in full at once (advert, VIPs, gratuitous
/// ARPs: the address moves now), but the notification that starts `master_service` waits
/// until the preempted master resigns with priority 0 (6.4.3: a master answers that advert
/// at once, so third routers keep it). A priority-0 advert from anyone else releases nothing.
#[test]
fn preempting_master_starts_services_when_the_preempted_master_resigns_6_4_2() {
    let (mut i, a, down) = preempting(true);
    assert_eq!(sends(&a), [150]);
    assert!(has(&a, Action::AddVips));
    assert!(!has(&a, Action::Notify(State::Master)), "{a:?}");
    assert_eq!(
        i.awaiting_resign(),
        Some((ip(1), down + i.master_down_interval()))
    );
    // Someone else's priority 0: answered (6.4.3), nothing released.
    let t = down + Duration::from_millis(50);
    let a = i.handle(t, adv(3, 0));
    assert_eq!(&a[..], [Action::SendAdvert { priority: 150 }]);
    assert!(i.awaiting_resign().is_some());
    // The preempted master's: answered although the last answer was 100 ms ago (third
    // routers now run Skew_Time, 6.4.2), and released.
    let t = down + Duration::from_millis(150);
    let a = i.handle(t, adv(1, 0));
    assert_eq!(
        &a[..],
        [
            Action::SendAdvert { priority: 150 },
            Action::Notify(State::Master)
        ]
    );
    assert_eq!(i.awaiting_resign(), None);
    // Nothing more is due for it: the next deadline is the Adver_Timer that answer restarted.
    assert_eq!(i.next_deadline(), Some(t + Duration::from_secs(1)));
    // A second priority 0 from it within the interval is rate-limited as any other.
    assert!(i
        .handle(t + Duration::from_millis(10), adv(1, 0))
        .is_empty());
}

/// A preempted master that never resigns (keepalived and FRR send priority 0 only when they
/// shut down, or the advert was lost): the services start Master_Down_Interval after the
/// takeover, the time 6.4.2 gives a silent master.
#[test]
fn preempting_master_starts_services_after_master_down_interval_without_a_resign() {
    let (mut i, _, down) = preempting(true);
    let mdi = i.master_down_interval();
    let timers = run(&mut i, down + mdi);
    let notified: Vec<Instant> = timers
        .iter()
        .filter(|(_, a)| *a == Action::Notify(State::Master))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(notified, [down + mdi]);
    assert_eq!(i.awaiting_resign(), None);
    assert_eq!(i.state(), State::Master);
}

/// Without `await_resign` (no `master_service` / `master_interface`), and for a takeover
/// from a master that went silent (6.4.2 Master_Down_Interval, not a preemption), the
/// notification comes with the transition as before.
#[test]
fn only_a_preemption_with_role_services_waits_for_a_resign() {
    let (i, a, _) = preempting(false);
    assert!(has(&a, Action::Notify(State::Master)));
    assert_eq!(i.awaiting_resign(), None);
    let mut p = params(150);
    p.await_resign = true;
    let mut i = started(p);
    let down = i.next_deadline().unwrap();
    let a = i.handle(down, Input::Timer);
    assert!(matches!(
        transition(&a),
        Some((_, State::Master, Reason::MasterDown { .. }))
    ));
    assert!(has(&a, Action::Notify(State::Master)));
}

/// Leaving MASTER before the resign came: the scripts never heard of the MASTER role, so
/// nothing was started and there is nothing to stop twice; BACKUP is told as usual.
#[test]
fn leaving_master_while_waiting_for_the_resign_never_notifies_master() {
    let (mut i, _, down) = preempting(true);
    let a = i.handle(down + Duration::from_millis(100), adv(4, 200));
    assert!(matches!(
        transition(&a),
        Some((State::Master, State::Backup, _))
    ));
    assert!(has(&a, Action::RemoveVips));
    assert!(has(&a, Action::Notify(State::Backup)));
    assert!(!has(&a, Action::Notify(State::Master)));
    assert_eq!(i.awaiting_resign(), None);
    // A late resign is just a priority-0 advert to a backup (6.4.2: Skew_Time).
    let a = i.handle(down + Duration::from_millis(200), adv(1, 0));
    assert!(!has(&a, Action::Notify(State::Master)));
}

/// With a pre-master hook as well, MASTER is told when both holds are over: here the hook
/// ends first (VIPs on), then the resign comes (notify).
#[test]
fn pre_master_hold_and_resign_wait_both_end_before_notify() {
    let mut p = params(150);
    p.await_resign = true;
    p.pre_master_timeout = Some(Duration::from_secs(5));
    let mut i = started(p);
    i.handle(at(1.0), adv(1, 100));
    let down = i.next_deadline().unwrap();
    let a = i.handle(down, Input::Timer);
    assert!(has(&a, Action::RunPreMaster));
    assert!(!has(&a, Action::Notify(State::Master)));
    let a = i.handle(down + Duration::from_millis(100), Input::PreMasterDone);
    assert!(has(&a, Action::AddVips));
    assert!(!has(&a, Action::Notify(State::Master)));
    let a = i.handle(down + Duration::from_millis(200), adv(1, 0));
    assert!(has(&a, Action::Notify(State::Master)));
}

/// RFC 5798 6.4.3: a master that sees a higher priority becomes BACKUP at once (VIPs off);
/// once the daemon says its services are stopped it resigns with one priority-0 advert, so
/// the new master starts its own. Only once, and only after a preemption: a master that left
/// for FAULT or maintenance already sent priority 0 when it left.
#[test]
fn preempted_master_resigns_once_its_services_are_stopped_6_4_3() {
    let mut i = master(100);
    let a = i.handle(at(0.5), adv(3, 150));
    assert!(matches!(
        transition(&a),
        Some((State::Master, State::Backup, Reason::HigherPriority { .. }))
    ));
    assert!(has(&a, Action::RemoveVips));
    assert!(
        sends(&a).is_empty(),
        "no resign before the services stopped"
    );
    let a = i.handle(at(0.7), Input::ServicesStopped);
    assert_eq!(&a[..], [Action::SendAdvert { priority: 0 }]);
    assert_eq!(i.state(), State::Backup);
    assert!(i.handle(at(0.8), Input::ServicesStopped).is_empty());
    // Maintenance: priority 0 when it left, none after.
    let mut i = master(100);
    let a = i.handle(at(0.5), Input::Maintenance(true));
    assert_eq!(sends(&a), [0]);
    assert!(i.handle(at(0.6), Input::ServicesStopped).is_empty());
    // A BACKUP that never was master owes nothing.
    let mut i = started(params(100));
    assert!(i.handle(at(0.5), Input::ServicesStopped).is_empty());
}

/// A third router (priority 50) sees the resign, a priority-0 advert from the router that is
/// no longer master, and sets its Master_Down_Timer to Skew_Time (6.4.2); the new master's
/// answer, sent at once (6.4.3), sets it back to Master_Down_Interval, so it never takes over.
#[test]
fn a_third_backup_keeps_the_new_master_through_the_resign_6_4_2() {
    let mut r3 = started(params(50));
    let new_master = 3;
    assert!(r3.handle(at(0.5), adv(new_master, 150)).is_empty());
    assert!(r3.handle(at(1.0), adv(1, 0)).is_empty());
    assert_eq!(r3.next_deadline(), Some(at(1.0) + r3.skew_time()));
    assert!(r3.handle(at(1.0005), adv(new_master, 150)).is_empty());
    assert_eq!(
        r3.next_deadline(),
        Some(at(1.0005) + r3.master_down_interval())
    );
    for t in [2.0, 3.0, 4.0] {
        assert!(run(&mut r3, at(t)).is_empty());
        r3.handle(at(t), adv(new_master, 150));
    }
    assert_eq!(r3.state(), State::Backup);
}
