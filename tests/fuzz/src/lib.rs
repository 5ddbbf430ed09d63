//! The properties the fuzz targets check, one function per target. Each takes arbitrary
//! bytes and panics when a property fails; nothing here may panic on input otherwise.
//! `tests/pure/fuzz_regressions.rs` runs the same functions over the seeds committed in
//! `tests/fuzz/seeds/<target>/` (crash inputs found by fuzzing are added there), so plain
//! `cargo test` on stable keeps them checked.

use std::net::IpAddr;

use minivrrp::check::http::{HttpError, Progress, ResponseParser, StatusSet};
use minivrrp::config::model::Config;
use minivrrp::config::{uci, validate};
use minivrrp::ipvs::model::Family as IpvsFamily;
use minivrrp::ipvs::msg::{classify, decode_dest, decode_service};
use minivrrp::netlink::{decode_family_id, Attrs, Messages};
use minivrrp::sys::rtnl::{decode_addr, decode_link};
use minivrrp::vrrp::auth::{
    self, AntiReplay, AuthHmac, AuthMode, AuthReject, AuthVerdict, Binding, HmacKey, ReplayTable,
    SendSeq, Trailer, TRAILER_LEN,
};
use minivrrp::vrrp::frame::{
    emit_advert_ipv4, emit_advert_ipv6, parse_frame, parse_ip_packet, parse_vrrp, RxAdvert,
    RxContext,
};
use minivrrp::vrrp::rx_policy::{self, Delivery, FrameMeta, Policy};
use minivrrp::vrrp::wire::ChecksumMode;
use minivrrp::vrrp::wire::Version;

/// VRRP frames: parse never panics; what parses re-emits and re-parses to the same advert
/// (RFC 5798 5.1 fields, source, destination, checksum mode); the receive policy never
/// panics and what it accepts obeys its rules (TTL 255 to the group, our address list).
pub fn vrrp_frame(data: &[u8]) {
    let strict = parse_frame(data, RxContext { unicast: false });
    let adv = match parse_frame(data, RxContext::TTL_BY_POLICY) {
        Ok(a) => a,
        Err(e) => {
            // The strict parse can only fail more often, never succeed where this failed.
            assert!(
                strict.is_err(),
                "TTL-free parse failed ({e:?}) but strict passed"
            );
            return;
        }
    };
    if let Ok(s) = &strict {
        assert_eq!(s, &adv, "the two parses disagree");
    }
    round_trip(&adv);
    policy_invariants(&adv);
}

fn round_trip(adv: &RxAdvert) {
    let repr = &adv.vrrp;
    let mut buf = [0u8; 2048];
    let n = match (adv.ip.src, adv.ip.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            emit_advert_ipv4(&mut buf, repr, s, d, 1, adv.ip.checksum_mode)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => emit_advert_ipv6(&mut buf, repr, s, d, 0),
        _ => panic!("parsed an advert with mixed families: {adv:?}"),
    };
    let n = n.unwrap_or_else(|e| panic!("parsed advert does not re-emit ({e:?}): {adv:?}"));
    let back = parse_ip_packet(&buf[..n], RxContext::TTL_BY_POLICY)
        .unwrap_or_else(|e| panic!("re-emitted advert does not parse ({e:?}): {adv:?}"));
    let same = |a: &RxAdvert| (a.vrrp.clone(), a.ip.src, a.ip.dst);
    assert_eq!(same(&back), same(adv), "round trip changed the advert");
    assert_eq!(back.ip.hop_limit, 255);
    // Both v3-over-IPv4 checksum forms can be valid at once (the pseudo-header sums to
    // zero); the parser then reports the pseudo-header form.
    assert!(
        back.ip.checksum_mode == adv.ip.checksum_mode
            || (adv.ip.checksum_mode == ChecksumMode::VrrpOnly
                && back.ip.checksum_mode == ChecksumMode::PseudoHeader),
        "checksum mode {:?} -> {:?}",
        adv.ip.checksum_mode,
        back.ip.checksum_mode
    );
}

fn policy_invariants(adv: &RxAdvert) {
    // The instance this advert was meant for: the same message is what it sends.
    let ours = adv.vrrp.clone();
    let own = [adv.ip.dst];
    let peers = [adv.ip.src];
    for unicast in [false, true] {
        for delivery in [Delivery::ToUs, Delivery::Multicast, Delivery::OtherHost] {
            for vlan_tagged in [false, true] {
                let policy = Policy {
                    wire: &ours,
                    own: &own,
                    unicast_peers: if unicast { &peers } else { &[] },
                    check_unicast_src: true,
                };
                let meta = FrameMeta {
                    delivery,
                    vlan_tagged,
                };
                if rx_policy::check(&policy, &meta, adv).is_ok() {
                    assert!(!vlan_tagged && delivery != Delivery::OtherHost);
                    assert!(!adv.vrrp.addrs.is_empty());
                    assert!(!own.contains(&adv.ip.src));
                    let group = rx_policy::to_group(&adv.ip.dst);
                    assert!(
                        !group || adv.ip.hop_limit == 255,
                        "group advert with TTL {}",
                        adv.ip.hop_limit
                    );
                    assert_eq!(group, !unicast, "transport mode not enforced");
                }
            }
        }
    }
}

/// The HTTP check's response parser decides the same whatever way the bytes are split
/// (one read, byte by byte, or chunks of a size taken from the input).
/// Input: [max_size byte, split byte, response...].
pub fn http(data: &[u8]) {
    let [cap, split, response @ ..] = data else {
        return;
    };
    let max = 64 + usize::from(*cap) * 8;
    let expect: &[u8] = if split & 1 == 1 { b"ok" } else { b"" };
    let run = |chunk: usize| -> Result<(), HttpError> {
        let mut p = ResponseParser::new(StatusSet::default(), expect, max);
        for c in response.chunks(chunk.max(1)) {
            if let Progress::Done(r) = p.feed(c) {
                return r;
            }
        }
        p.finish()
    };
    let whole = run(response.len());
    for chunk in [1, usize::from(*split >> 1) + 1] {
        assert_eq!(
            run(chunk),
            whole,
            "split into {chunk}-byte reads, max {max}: {:?}",
            String::from_utf8_lossy(response)
        );
    }
}

/// Netlink replies (IPVS over generic netlink, rtnetlink links and addresses): every
/// decoder terminates without panicking on any byte stream and never reads past a message.
pub fn netlink(data: &[u8]) {
    let mut seen = 0usize;
    for m in Messages::new(data) {
        let Ok(m) = m else {
            break;
        };
        seen += 16 + m.payload.len();
        assert!(seen <= data.len() + 3 * 64, "messages past the buffer");
        let _ = classify(&m);
        let _ = m.error();
        let _ = decode_family_id(&m);
        let _ = decode_service(&m);
        let _ = decode_dest(&m, IpvsFamily::Ipv4);
        let _ = decode_dest(&m, IpvsFamily::Ipv6);
        let _ = decode_link(m.payload);
        let _ = decode_addr(m.payload);
        walk(Attrs::new(m.payload.get(4..).unwrap_or(&[])), 0);
    }
    walk(Attrs::new(data), 0);
}

fn walk(attrs: Attrs<'_>, depth: u8) {
    for a in attrs.take(4096) {
        let Ok(a) = a else {
            return;
        };
        let _ = (a.u8(), a.u16(), a.be16(), a.u32(), a.str());
        if depth < 4 {
            walk(a.nested(), depth + 1);
        }
    }
}

/// UCI: the parser and the validation never panic; a valid configuration's effective form
/// (`minivrrp check` output) parses and validates to the same configuration, and prints the
/// same again (a fixed point).
pub fn uci(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tree) = uci::parse(text) else {
        return;
    };
    let Ok(cfg) = validate::validate("fuzz", &tree) else {
        return;
    };
    let printed = cfg.to_uci();
    let again = Config::parse_str("effective", &printed).unwrap_or_else(|e| {
        panic!("the effective config does not validate: {e:?}\n--- input ---\n{text}\n--- printed ---\n{printed}")
    });
    assert_eq!(again.to_uci(), printed, "printing is not a fixed point");
    assert_eq!(
        again, cfg,
        "the effective config means something else\n{printed}"
    );
}

/// The RFC 5798 6.4 state machine over an arbitrary event sequence, with timers delivered
/// as the daemon delivers them: no `handle` call fills its action list, no deadline is in
/// the past, a MASTER always has a deadline (its Adver_Timer), and it sends an advert at
/// least once per Advertisement_Interval while it stays MASTER.
/// Input: [priority, flags, interval cs] then 4-byte events [kind, dt (ms), a, b].
pub fn instance(data: &[u8]) {
    use minivrrp::base::{Duration as D, Instant};
    use minivrrp::vrrp::instance::{
        Action, Advert, Input, Instance, Params, StartHint, State, SyncCommand, MAX_ACTIONS,
    };
    use minivrrp::vrrp::priority::Adjustment;

    let [prio, flags, int_cs, events @ ..] = data else {
        return;
    };
    let primary: IpAddr = [10, 0, 0, 2].into();
    let mut p = Params::new(primary, (*prio).max(1));
    p.advert_int = D::from_millis(10 * u64::from((*int_cs).max(1)));
    p.preempt = flags & 1 == 0;
    p.preempt_delay = D::from_millis(u64::from(flags >> 4) * 100);
    p.start = if flags & 2 != 0 {
        StartHint::Master
    } else {
        StartHint::Backup
    };
    p.garp_delay = D::from_millis(u64::from(flags & 0x0c) * 100);
    let mut i = Instance::new(p);
    let mut now = Instant::ZERO;
    let mut last_advert: Option<Instant> = None;
    let mut master_since: Option<Instant> = None;
    let mut check = |i: &Instance, now: Instant, actions: &[Action], what: &str| {
        assert!(
            actions.len() < MAX_ACTIONS,
            "{what}: action list full: {actions:?}"
        );
        if let Some(d) = i.next_deadline() {
            assert!(d >= now, "{what}: deadline {d:?} before now {now:?}");
        }
        if i.state() == State::Master {
            assert!(
                i.next_deadline().is_some(),
                "{what}: MASTER without a timer"
            );
        }
        for a in actions {
            if matches!(a, Action::SendAdvert { .. }) {
                last_advert = Some(now);
            }
        }
        match (i.state(), master_since) {
            (State::Master, None) => master_since = Some(now),
            (State::Master, Some(_)) => {
                // One interval, plus one more for an out-of-turn answer that restarted it.
                let since = last_advert.unwrap_or(Instant::ZERO);
                let limit = i.params().advert_int * 2;
                assert!(
                    now.saturating_duration_since(since) <= limit,
                    "{what}: MASTER silent since {since:?} at {now:?}"
                );
            }
            (_, _) => master_since = None,
        }
    };
    let a = i.handle(now, Input::Startup);
    check(&i, now, &a, "startup");
    for ev in events.chunks_exact(4) {
        let [kind, dt, x, y] = [ev[0], ev[1], ev[2], ev[3]];
        let at = now + D::from_millis(u64::from(dt) * 4);
        // Due timers fire before the next input, as in the daemon's loop.
        while let Some(d) = i.next_deadline() {
            if d > at {
                break;
            }
            now = d;
            let a = i.handle(now, Input::Timer);
            check(&i, now, &a, "timer");
        }
        now = at;
        let input = match kind % 9 {
            0..=2 => Input::AdvertReceived(Advert {
                src: [10, 0, 0, x % 4].into(),
                priority: y,
                advert_int: D::from_millis(10 * u64::from(x | 1)),
            }),
            3 => Input::InterfaceDown,
            4 => Input::InterfaceUp,
            5 => Input::Trackers(Adjustment {
                delta: i32::from(x as i8) * 2,
                fault: y & 1 == 1,
            }),
            6 => Input::Sync(match x % 4 {
                0 => SyncCommand::Fault,
                1 => SyncCommand::ReleaseFault,
                2 => SyncCommand::Backup,
                _ => SyncCommand::Master,
            }),
            7 => {
                let mut q = p;
                q.priority = y.max(1);
                q.advert_int = D::from_millis(10 * u64::from(x.max(1)));
                Input::ConfigChange(q)
            }
            _ => Input::Timer,
        };
        let a = i.handle(now, input);
        check(&i, now, &a, "input");
    }
}

/// The `auth_hmac` trailer (`vrrp::auth`): any 28 bytes parse and re-emit unchanged; an IP
/// payload of either family parses without panicking, and its trailer, if any, is verified
/// without panicking and is never accepted twice; the payload signed as a message verifies
/// once, then is a replay, and any change to it outside the checksum field breaks the MAC.
pub fn auth_trailer(data: &[u8]) {
    if let Some(t) = data.get(..TRAILER_LEN).and_then(Trailer::parse) {
        let mut out = [0u8; TRAILER_LEN];
        t.emit(&mut out);
        assert_eq!(&out[..], &data[..TRAILER_LEN], "trailer did not re-emit");
    }
    let key: Vec<u8> = (0u8..32).collect();
    let cfg = AuthHmac {
        keys: vec![HmacKey::new(1, &key).expect("a 32-byte key")],
        active_key: 1,
        mode: AuthMode::Enforce,
        anti_replay: AntiReplay::Monotonic,
        time_window: 5,
    };
    // The wall clock, from the input: the window and the sequence see every value.
    let wall = core::time::Duration::from_nanos(
        data.iter()
            .take(8)
            .fold(0u64, |a, b| (a << 8) | u64::from(*b))
            >> 4,
    );
    let sources: [(IpAddr, IpAddr); 2] = [
        ("10.0.0.2".parse().unwrap(), "224.0.0.18".parse().unwrap()),
        ("fe80::10".parse().unwrap(), "ff02::12".parse().unwrap()),
    ];
    for (src, dst) in sources {
        let Ok(adv) = parse_vrrp(data, src, dst, 255, RxContext::TTL_BY_POLICY) else {
            continue;
        };
        let at = Binding {
            version: adv.vrrp.version,
            vrid: adv.vrrp.vrid,
            src,
        };
        let Some(t) = adv.trailer else { continue };
        assert_eq!(
            t.msg_len + TRAILER_LEN,
            data.len(),
            "trailer not at the end"
        );
        let mut rt = ReplayTable::default();
        let first = auth::verify(&cfg, &mut rt, wall, &at, t.msg(data), Some(&t.bytes));
        let again = auth::verify(&cfg, &mut rt, wall, &at, t.msg(data), Some(&t.bytes));
        if let AuthVerdict::Accepted { .. } = first {
            assert_eq!(again, AuthVerdict::Rejected(AuthReject::Replayed));
        }
    }
    if data.len() < 8 || data.len() > 400 {
        return;
    }
    let at = Binding {
        version: if data[0] & 1 == 0 {
            Version::V2
        } else {
            Version::V3
        },
        vrid: data[1],
        src: sources[usize::from(data[2] & 1)].0,
    };
    let mut seq = SendSeq::default();
    let mut trailer = [0u8; TRAILER_LEN];
    auth::sign(&cfg, &mut seq, wall, &at, data, &mut trailer).expect("the active key signs");
    let mut rt = ReplayTable::default();
    let ok = auth::verify(&cfg, &mut rt, wall, &at, data, Some(&trailer));
    assert!(
        matches!(ok, AuthVerdict::Accepted { .. }),
        "own signature refused: {ok:?}"
    );
    let again = auth::verify(&cfg, &mut rt, wall, &at, data, Some(&trailer));
    assert_eq!(again, AuthVerdict::Rejected(AuthReject::Replayed));
    let i = usize::from(data[3]) % data.len();
    let mut changed = data.to_vec();
    changed[i] ^= 0x01;
    let v = auth::verify(
        &cfg,
        &mut ReplayTable::default(),
        wall,
        &at,
        &changed,
        Some(&trailer),
    );
    if i == 6 || i == 7 {
        assert!(
            matches!(v, AuthVerdict::Accepted { .. }),
            "checksum field in the MAC"
        );
    } else {
        assert_eq!(
            v,
            AuthVerdict::Rejected(AuthReject::BadMac),
            "byte {i} outside the MAC"
        );
    }
}
