//! Deterministic tests of the pure check state machines with a fake clock: exact fall/rise
//! counts, retry rounds, timeouts, warm-up spread.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use minivrrp::base::{Duration, Instant};
use minivrrp::check::schedule::warmup_offset;
use minivrrp::check::{
    Action, ConnCheck, ExitStatus, Health, HttpError, HttpSpec, IcmpCheck, IcmpSpec, Input,
    Interest, Reason, Schedule, ScriptCheck, ScriptSpec, StatusSet, TcpSpec,
};

const ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 0, 2)), 80);

fn sched(fall: u8, rise: u8, retry: u8) -> Schedule {
    Schedule {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(300),
        fall,
        rise,
        retry,
        delay_before_retry: Duration::from_millis(100),
        initial: Health::Up,
        warmup: Duration::from_secs(1),
    }
}

fn reports(actions: &[Action]) -> Vec<Health> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Report(r) => Some(r.health),
            _ => None,
        })
        .collect()
}

/// Run one TCP attempt at the check's due time ending with `ok`; returns (time, reports).
fn tcp_round(c: &mut ConnCheck, ok: bool) -> (Instant, Vec<Health>) {
    let t = c.poll_at();
    let a = c.handle(t, Input::Tick);
    assert_eq!(&a[..], [Action::Connect(ADDR)]);
    assert_eq!(c.interest(), Interest::Write);
    let t2 = t + Duration::from_millis(2);
    let a = c.handle(
        t2,
        if ok {
            Input::Connected
        } else {
            Input::ConnectFailed(111)
        },
    );
    assert_eq!(a[0], Action::Close);
    (t2, reports(&a))
}

#[test]
fn tcp_goes_down_after_exactly_fall_failures_and_up_after_rise_successes() {
    let spec = TcpSpec {
        addr: ADDR,
        schedule: sched(3, 2, 0),
        weight: -10,
    };
    let mut c = ConnCheck::tcp(&spec, 7, Instant::ZERO);
    assert_eq!(c.health(), Health::Up);
    for i in 1..=2 {
        assert!(
            tcp_round(&mut c, false).1.is_empty(),
            "failure {i} must not flip"
        );
    }
    // A success resets the failure streak.
    assert!(tcp_round(&mut c, true).1.is_empty());
    for _ in 1..=2 {
        assert!(tcp_round(&mut c, false).1.is_empty());
    }
    assert_eq!(tcp_round(&mut c, false).1, [Health::Down]);
    assert_eq!(c.health(), Health::Down);
    assert!(tcp_round(&mut c, true).1.is_empty());
    assert_eq!(tcp_round(&mut c, true).1, [Health::Up]);
}

#[test]
fn report_carries_weight_and_reason() {
    let spec = TcpSpec {
        addr: ADDR,
        schedule: sched(1, 1, 0),
        weight: -10,
    };
    let mut c = ConnCheck::tcp(&spec, 1, Instant::ZERO);
    let t = c.poll_at();
    c.handle(t, Input::Tick);
    let a = c.handle(t, Input::ConnectFailed(113));
    let Action::Report(r) = a[1] else {
        panic!("no report: {a:?}")
    };
    assert_eq!(
        (r.health, r.reason, r.weight),
        (Health::Down, Reason::ConnectFailed(113), -10)
    );
}

#[test]
fn retry_failed_attempt_before_counting_a_failure() {
    // retry=2: a round is 3 attempts, spaced by delay_before_retry; fall=1.
    let spec = TcpSpec {
        addr: ADDR,
        schedule: sched(1, 1, 2),
        weight: 0,
    };
    let mut c = ConnCheck::tcp(&spec, 3, Instant::ZERO);
    let start = c.poll_at();
    let (t, r) = tcp_round(&mut c, false);
    assert!(r.is_empty());
    assert_eq!(c.poll_at(), t + Duration::from_millis(100));
    let (t, r) = tcp_round(&mut c, false);
    assert!(r.is_empty());
    assert_eq!(c.poll_at(), t + Duration::from_millis(100));
    let (_, r) = tcp_round(&mut c, false);
    assert_eq!(r, [Health::Down]);
    // Next round starts one interval after the round began.
    assert_eq!(c.poll_at(), start + Duration::from_secs(1));
    // A retry that succeeds makes the round good.
    let (_, r) = tcp_round(&mut c, false);
    assert!(r.is_empty());
    let (_, r) = tcp_round(&mut c, true);
    assert_eq!(r, [Health::Up]);
}

#[test]
fn connect_timeout_closes_and_counts_failure() {
    let spec = TcpSpec {
        addr: ADDR,
        schedule: sched(1, 1, 0),
        weight: 0,
    };
    let mut c = ConnCheck::tcp(&spec, 5, Instant::ZERO);
    let t = c.poll_at();
    c.handle(t, Input::Tick);
    assert_eq!(c.poll_at(), t + Duration::from_millis(300));
    // Early ticks do nothing.
    assert!(c
        .handle(t + Duration::from_millis(299), Input::Tick)
        .is_empty());
    let a = c.handle(t + Duration::from_millis(300), Input::Tick);
    assert_eq!(a[0], Action::Close);
    let Action::Report(r) = a[1] else { panic!() };
    assert_eq!((r.health, r.reason), (Health::Down, Reason::Timeout));
    // The late connect result for the closed socket is ignored.
    assert!(c
        .handle(t + Duration::from_millis(301), Input::Connected)
        .is_empty());
}

#[test]
fn unknown_initial_health_is_decided_by_the_first_round() {
    let mut s = sched(3, 3, 0);
    s.initial = Health::Unknown;
    let spec = TcpSpec {
        addr: ADDR,
        schedule: s,
        weight: 0,
    };
    let mut c = ConnCheck::tcp(&spec, 9, Instant::ZERO);
    assert_eq!(tcp_round(&mut c, true).1, [Health::Up]);
}

fn http_check(body: &str, status: &str) -> ConnCheck {
    let mut spec = HttpSpec::new(ADDR, "/health");
    spec.schedule = sched(1, 1, 0);
    spec.status = StatusSet::parse(status).unwrap();
    spec.expect_body.push_str(body).unwrap();
    ConnCheck::http(&spec, 11, Instant::ZERO).unwrap()
}

fn http_attempt(c: &mut ConnCheck, parts: &[&[u8]], close: bool) -> Vec<Action> {
    let t = c.poll_at();
    c.handle(t, Input::Tick);
    c.handle(t, Input::Connected);
    assert_eq!(c.interest(), Interest::Write);
    let req = c.tx_pending().to_vec();
    assert!(req.starts_with(b"GET /health HTTP/1.1\r\nHost: 10.9.0.2:80\r\n"));
    // Partial writes are resumed from the right offset.
    c.handle(t, Input::Sent(10));
    assert_eq!(c.tx_pending(), &req[10..]);
    c.handle(t, Input::Sent(req.len() - 10));
    assert_eq!(c.interest(), Interest::Read);
    let mut all = Vec::new();
    for p in parts {
        let a = c.handle(t, Input::Received(p));
        all.extend_from_slice(&a);
        if !a.is_empty() {
            return all;
        }
    }
    if close {
        all.extend_from_slice(&c.handle(t, Input::Closed));
    }
    all
}

fn last_reason(c: &ConnCheck) -> Reason {
    c.last_attempt().unwrap().reason
}

#[test]
fn http_check_accepts_body_split_over_reads() {
    let mut c = http_check("all good", "200");
    let a = http_attempt(
        &mut c,
        &[
            b"HTTP/1.1 200 OK\r\nContent-Le",
            b"ngth: 12\r\n\r\nis all g",
            b"ood\n",
        ],
        false,
    );
    assert_eq!(a[0], Action::Close);
    assert_eq!(last_reason(&c), Reason::Ok);
}

#[test]
fn http_check_fails_on_500_wrong_body_and_early_close() {
    let mut c = http_check("", "200-299");
    http_attempt(&mut c, &[b"HTTP/1.1 500 Oops\r\n\r\n"], false);
    assert_eq!(last_reason(&c), Reason::Http(HttpError::Status(500)));
    let mut c = http_check("all good", "200");
    http_attempt(&mut c, &[b"HTTP/1.1 200 OK\r\n\r\nnope"], true);
    assert_eq!(last_reason(&c), Reason::Http(HttpError::BodyMismatch));
    let mut c = http_check("", "200");
    http_attempt(&mut c, &[], true);
    assert_eq!(last_reason(&c), Reason::Http(HttpError::Truncated));
}

#[test]
fn http_spec_rejects_header_injection() {
    let spec = HttpSpec::new(ADDR, "/x\r\nEvil: 1");
    assert!(ConnCheck::http(&spec, 0, Instant::ZERO).is_err());
}

#[test]
fn icmp_matches_ident_seq_and_source_only() {
    let spec = IcmpSpec {
        dst: ADDR.ip(),
        ident: 77,
        schedule: sched(2, 1, 0),
        weight: 0,
    };
    let mut c = IcmpCheck::new(&spec, 0, Instant::ZERO);
    let t = c.poll_at();
    let a = c.handle(t, Input::Tick);
    let Action::SendEcho { dst, ident, seq } = a[0] else {
        panic!("{a:?}")
    };
    assert_eq!((dst, ident), (ADDR.ip(), 77));
    let other = IpAddr::V4(Ipv4Addr::new(10, 9, 0, 3));
    for wrong in [
        Input::EchoReply {
            from: other,
            ident,
            seq,
        },
        Input::EchoReply {
            from: dst,
            ident: 78,
            seq,
        },
        Input::EchoReply {
            from: dst,
            ident,
            seq: seq.wrapping_sub(1),
        },
    ] {
        c.handle(t, wrong);
        assert!(c.last_attempt().is_none(), "{wrong:?} must not match");
    }
    c.handle(
        t + Duration::from_millis(1),
        Input::EchoReply {
            from: dst,
            ident,
            seq,
        },
    );
    assert_eq!(c.last_attempt().unwrap().reason, Reason::Ok);
    // Two lost echoes (fall=2) take it down.
    for n in 0..2 {
        let t = c.poll_at();
        c.handle(t, Input::Tick);
        let a = c.handle(t + Duration::from_millis(300), Input::Tick);
        assert_eq!(reports(&a).len(), n);
    }
    assert_eq!(c.health(), Health::Down);
}

fn script_spec(fall: u8, rise: u8) -> ScriptSpec {
    ScriptSpec {
        argv: vec!["/bin/true".into()],
        user: None,
        schedule: sched(fall, rise, 0),
        weight: 5,
        dynamic: false,
    }
}

#[test]
fn script_timeout_kills_counts_failure_and_waits_for_reap() {
    let mut c = ScriptCheck::new(&script_spec(1, 1), 0, Instant::ZERO);
    let t = c.poll_at().unwrap();
    assert_eq!(&c.handle(t, Input::Tick)[..], [Action::Spawn]);
    let a = c.handle(t + Duration::from_millis(300), Input::Tick);
    assert_eq!(a[0], Action::Kill);
    assert_eq!(reports(&a), [Health::Down]);
    assert_eq!(c.last_attempt().unwrap().reason, Reason::Timeout);
    // No new run while the killed child is unreaped, even when the interval passed.
    assert_eq!(c.poll_at(), None);
    assert!(c.handle(t + Duration::from_secs(2), Input::Tick).is_empty());
    // The reap starts the overdue run at once.
    let a = c.handle(
        t + Duration::from_secs(2),
        Input::Exited(ExitStatus::Signal(9)),
    );
    assert_eq!(&a[..], [Action::Spawn]);
}

#[test]
fn script_exit_codes_drive_fall_and_rise_and_output_is_truncated() {
    let mut c = ScriptCheck::new(&script_spec(2, 3), 0, Instant::ZERO);
    let run = |c: &mut ScriptCheck, code: i32| {
        let t = c.poll_at().unwrap();
        assert_eq!(&c.handle(t, Input::Tick)[..], [Action::Spawn]);
        c.handle(t, Input::Output(&[b'x'; 200]));
        c.handle(t, Input::Output(&[b'y'; 200]));
        reports(&c.handle(t, Input::Exited(ExitStatus::Code(code))))
    };
    assert!(run(&mut c, 1).is_empty());
    assert_eq!(run(&mut c, 2), [Health::Down]);
    let (out, cut) = c.output();
    assert_eq!((out.len(), cut), (256, true));
    assert!(run(&mut c, 0).is_empty());
    assert!(run(&mut c, 0).is_empty());
    assert_eq!(run(&mut c, 0), [Health::Up]);
    assert_eq!(c.last_attempt().unwrap().reason, Reason::Ok);
}

#[test]
fn warmup_spreads_a_thousand_checks_over_the_interval() {
    let interval = Duration::from_secs(1);
    let mut per_ms = [0u32; 1000];
    for i in 0..1000u64 {
        let off = warmup_offset(i, interval);
        assert!(off < interval);
        per_ms[off.as_millis() as usize] += 1;
    }
    let busiest = *per_ms.iter().max().unwrap();
    let used = per_ms.iter().filter(|&&n| n > 0).count();
    // Uniform-ish: 1000 balls in 1000 bins give ~632 used bins, max ~5.
    assert!(used > 550, "only {used} distinct milliseconds");
    assert!(busiest <= 8, "{busiest} checks in one millisecond");
    assert_eq!(warmup_offset(5, Duration::ZERO), Duration::ZERO);
}

#[test]
fn warmup_zero_starts_at_once_and_first_round_lands_within_warmup() {
    let mut s = sched(1, 1, 0);
    s.warmup = Duration::ZERO;
    let spec = TcpSpec {
        addr: ADDR,
        schedule: s,
        weight: 0,
    };
    let t0 = Instant::from_secs(5);
    assert_eq!(ConnCheck::tcp(&spec, 42, t0).poll_at(), t0);
    let mut s = Schedule::checker_default(true, false);
    s.warmup = Duration::from_secs(60);
    let spec = TcpSpec {
        addr: ADDR,
        schedule: s,
        weight: 0,
    };
    for seed in 0..100 {
        let due = ConnCheck::tcp(&spec, seed, t0).poll_at();
        assert!(due >= t0 && due < t0 + Duration::from_secs(60));
    }
    assert_eq!(s.initial, Health::Up);
    assert_eq!(Schedule::checker_default(false, true).initial, Health::Down);
    assert_eq!(Schedule::script_default(true).initial, Health::Down);
}
