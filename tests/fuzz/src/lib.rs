//! The properties the fuzz targets check, one function per target. Each takes arbitrary
//! bytes and panics when a property fails; nothing here may panic on input otherwise.
//! `tests/fuzz_regressions.rs` runs the same functions over the seeds committed in
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
use minivrrp::vrrp::frame::{
    emit_advert_ipv4, emit_advert_ipv6, parse_frame, parse_ip_packet, InstanceWire, RxAdvert,
    RxContext,
};
use minivrrp::vrrp::rx_policy::{self, Delivery, FrameMeta, Policy};
use minivrrp::vrrp::wire::{ChecksumMode, Version, VrrpRepr};

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

fn repr_of(adv: &RxAdvert) -> VrrpRepr {
    let adver_int = match adv.version {
        Version::V2 => adv.advert_interval.as_secs() as u16,
        Version::V3 => (adv.advert_interval.as_millis() / 10) as u16,
    };
    VrrpRepr {
        version: adv.version,
        vrid: adv.vrid,
        priority: adv.priority,
        adver_int,
        auth: adv.auth,
        addrs: adv.addrs.clone(),
    }
}

fn round_trip(adv: &RxAdvert) {
    let repr = repr_of(adv);
    let mut buf = [0u8; 2048];
    let n = match (adv.src, adv.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            emit_advert_ipv4(&mut buf, &repr, s, d, 1, adv.checksum_mode)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => emit_advert_ipv6(&mut buf, &repr, s, d, 0),
        _ => panic!("parsed an advert with mixed families: {adv:?}"),
    };
    let n = n.unwrap_or_else(|e| panic!("parsed advert does not re-emit ({e:?}): {adv:?}"));
    let back = parse_ip_packet(&buf[..n], RxContext::TTL_BY_POLICY)
        .unwrap_or_else(|e| panic!("re-emitted advert does not parse ({e:?}): {adv:?}"));
    let same = |a: &RxAdvert| {
        (
            a.version,
            a.vrid,
            a.priority,
            a.advert_interval,
            a.src,
            a.dst,
            a.addrs.clone(),
            a.auth,
        )
    };
    assert_eq!(same(&back), same(adv), "round trip changed the advert");
    assert_eq!(back.hop_limit, 255);
    // Both v3-over-IPv4 checksum forms can be valid at once (the pseudo-header sums to
    // zero); the parser then reports the pseudo-header form.
    assert!(
        back.checksum_mode == adv.checksum_mode
            || (adv.checksum_mode == ChecksumMode::VrrpOnly
                && back.checksum_mode == ChecksumMode::PseudoHeader),
        "checksum mode {:?} -> {:?}",
        adv.checksum_mode,
        back.checksum_mode
    );
}

fn policy_invariants(adv: &RxAdvert) {
    let ours = adv.addrs.clone();
    let own = [adv.dst];
    let peers = [adv.src];
    for unicast in [false, true] {
        for delivery in [Delivery::ToUs, Delivery::Multicast, Delivery::OtherHost] {
            for vlan_tagged in [false, true] {
                let policy = Policy {
                    wire: InstanceWire {
                        vrid: adv.vrid,
                        version: adv.version,
                        auth: adv.auth,
                        advert_interval: adv.advert_interval,
                        addrs: &ours,
                    },
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
                    assert!(!adv.addrs.is_empty());
                    assert!(!own.contains(&adv.src));
                    let group = rx_policy::to_group(&adv.dst);
                    assert!(
                        !group || adv.hop_limit == 255,
                        "group advert with TTL {}",
                        adv.hop_limit
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
        let _ = decode_dest(&m, IpvsFamily::Inet);
        let _ = decode_dest(&m, IpvsFamily::Inet6);
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
