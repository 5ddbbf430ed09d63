//! Every frame keepalived 2.2.7 put on the wire in `tests/vectors/vectors.json` parses to the
//! recorded fields and re-emits byte-identical; the parser survives every truncation and a few
//! thousand mutations of those frames.

use std::net::IpAddr;
use std::time::Duration;

use minivrrp::vrrp::announce::{emit_garp, emit_unsolicited_na};
use minivrrp::vrrp::frame::{
    emit_advert_v4, emit_advert_v6, parse_frame, AddrListMatch, RxContext,
};
use minivrrp::vrrp::wire::{
    AddrList, Auth, ChecksumMode, DropCounters, DropReason, Packet, Version, VrrpRepr,
};
use serde_json::Value;
use smoltcp::wire::EthernetAddress;

/// keepalived 2.2.7's frames, decoded, carried in the repository (see tests/vectors/README.md).
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/vectors.json");
const MC: RxContext = RxContext { unicast: false };

struct Frame {
    file: String,
    v: Value,
    bytes: Vec<u8>,
}

fn frames() -> Vec<Frame> {
    let text =
        std::fs::read_to_string(VECTORS).unwrap_or_else(|e| panic!("reading {VECTORS}: {e}"));
    let doc: Value = serde_json::from_str(&text).expect("vectors.json is JSON");
    let mut out = Vec::new();
    for file in doc["files"].as_array().expect("files[]") {
        let name = file["file"].as_str().unwrap().to_string();
        for f in file["frames"].as_array().expect("frames[]") {
            out.push(Frame {
                file: name.clone(),
                bytes: hex(f["hex"].as_str().unwrap()),
                v: f.clone(),
            });
        }
    }
    assert!(out.len() >= 50, "expected the full vector set");
    out
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn mac(v: &Value) -> EthernetAddress {
    let b: Vec<u8> = v
        .as_str()
        .unwrap()
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    EthernetAddress::from_bytes(&b)
}

fn ip(v: &Value) -> IpAddr {
    v.as_str().unwrap().parse().unwrap()
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

#[test]
fn every_vrrp_vector_parses_to_recorded_fields_and_reemits_byte_identical() {
    let mut seen = 0;
    for f in frames().iter().filter(|f| f.v["kind"] == "vrrp") {
        let ctx = format!("{} {}", f.file, f.v["t_rel_ms"]);
        let a = parse_frame(&f.bytes, MC).unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
        let ver = num(&f.v["ver"]);
        let version = if ver == 2 { Version::V2 } else { Version::V3 };
        assert_eq!(a.vrrp.version, version, "{ctx}");
        assert_eq!(u64::from(a.vrrp.vrid), num(&f.v["vrid"]), "{ctx}");
        assert_eq!(u64::from(a.vrrp.priority), num(&f.v["prio"]), "{ctx}");
        let adv_cs = num(&f.v["adv_cs"]);
        assert_eq!(
            a.vrrp.advert_interval(),
            Duration::from_millis(adv_cs * 10),
            "{ctx}"
        );
        let addrs: Vec<IpAddr> = f.v["addrs"].as_array().unwrap().iter().map(ip).collect();
        assert_eq!(&a.vrrp.addrs[..], &addrs[..], "{ctx}");
        assert_eq!(a.ip.src, ip(&f.v["src"]), "{ctx}");
        assert_eq!(a.ip.dst, ip(&f.v["dst"]), "{ctx}");
        assert_eq!(a.ip.src_mac, Some(mac(&f.v["smac"])), "{ctx}");
        assert_eq!(a.vrrp.auth, Auth::None, "{ctx}");
        // keepalived uses the pseudo-header for v3 (RFC 5798); v2 never does.
        let want_mode = if ver == 2 {
            ChecksumMode::VrrpOnly
        } else {
            ChecksumMode::PseudoHeader
        };
        assert_eq!(a.ip.checksum_mode, want_mode, "{ctx}");
        let ip_len = if a.ip.src.is_ipv4() { 20 } else { 40 };
        let vrrp = Packet::new_checked(&f.bytes[14 + ip_len..]).unwrap();
        assert_eq!(u64::from(vrrp.checksum()), num(&f.v["csum"]), "{ctx}");

        // Re-emit from the parsed values plus what the sender chose: IP ID / flow label.
        let repr = VrrpRepr {
            version,
            vrid: a.vrrp.vrid,
            priority: a.vrrp.priority,
            adver_int: if ver == 2 {
                (adv_cs / 100) as u16
            } else {
                adv_cs as u16
            },
            auth: Auth::None,
            addrs: AddrList::from_slice(&addrs).unwrap(),
        };
        // The instance that sent it (its own advert is `repr`) accepts it, address list equal.
        assert_eq!(a.validate_for(&repr), Ok(AddrListMatch::Match), "{ctx}");
        let mut buf = [0u8; 256];
        let n = match a.ip.src {
            IpAddr::V4(src) => {
                let ident = u16::from_be_bytes([f.bytes[18], f.bytes[19]]);
                emit_advert_v4(&mut buf, &repr, mac(&f.v["smac"]), src, ident, want_mode)
            }
            IpAddr::V6(src) => {
                let flow = u32::from_be_bytes([0, f.bytes[15] & 0x0f, f.bytes[16], f.bytes[17]]);
                emit_advert_v6(&mut buf, &repr, mac(&f.v["smac"]), src, flow)
            }
        }
        .unwrap();
        assert_eq!(n, num(&f.v["len"]) as usize, "{ctx}");
        assert_eq!(&buf[..n], &f.bytes[..], "{ctx}");
        seen += 1;
    }
    assert_eq!(seen, 26);
}

#[test]
fn every_announcement_vector_reemits_byte_identical() {
    let mut seen = 0;
    for f in frames() {
        let mut buf = [0u8; 128];
        let n = match f.v["kind"].as_str().unwrap() {
            "arp" => {
                assert_eq!(f.v["spa"], f.v["tpa"]);
                assert_eq!(f.v["tha"], "ff:ff:ff:ff:ff:ff");
                let IpAddr::V4(vip) = ip(&f.v["spa"]) else {
                    panic!("spa")
                };
                emit_garp(&mut buf, mac(&f.v["smac"]), vip).unwrap()
            }
            "icmp6" => {
                assert_eq!(f.v["na_override"], true);
                let IpAddr::V6(vip) = ip(&f.v["target"]) else {
                    panic!("target")
                };
                // Captured with forwarding off: keepalived's Router flag follows it.
                let router = f.v["na_router"].as_bool().unwrap();
                emit_unsolicited_na(&mut buf, mac(&f.v["smac"]), vip, router).unwrap()
            }
            _ => continue,
        };
        assert_eq!(&buf[..n], &f.bytes[..], "{} {}", f.file, f.v["t_rel_ms"]);
        // Not adverts: the advert parser drops them with a reason, without panicking.
        assert!(matches!(
            parse_frame(&f.bytes, MC),
            Err(DropReason::NotIp) | Err(DropReason::NotVrrp)
        ));
        seen += 1;
    }
    // 5 GARP + 5 NA bursts, plus one burst in each of the three handover files.
    assert_eq!(seen, 25);
}

#[test]
fn v3_ipv4_rfc9568_mode_emits_and_is_recognised_5_2_8() {
    for f in frames()
        .iter()
        .filter(|f| f.v["kind"] == "vrrp" && f.v["ver"] == 3 && f.v["etype"] == "0x0800")
    {
        let a = parse_frame(&f.bytes, MC).unwrap();
        let IpAddr::V4(src) = a.ip.src else { panic!() };
        let repr = VrrpRepr {
            version: Version::V3,
            vrid: a.vrrp.vrid,
            priority: a.vrrp.priority,
            adver_int: num(&f.v["adv_cs"]) as u16,
            auth: Auth::None,
            addrs: a.vrrp.addrs.clone(),
        };
        let mut buf = [0u8; 128];
        let n = emit_advert_v4(
            &mut buf,
            &repr,
            mac(&f.v["smac"]),
            src,
            1,
            ChecksumMode::VrrpOnly,
        )
        .unwrap();
        // Only the checksum differs from the keepalived frame (same IP ID aside).
        let back = parse_frame(&buf[..n], MC).unwrap();
        assert_eq!(back.ip.checksum_mode, ChecksumMode::VrrpOnly);
        assert_eq!(back.vrrp.addrs, a.vrrp.addrs);
        assert_eq!(back.vrrp.priority, a.vrrp.priority);
        assert_ne!(&buf[40..42], &f.bytes[40..42]);
    }
}

/// Tiny xorshift32: deterministic, no rand crate.
struct XorShift(u32);

impl XorShift {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// Make a mutated frame's IPv4 header checksum and VRRP checksum right again (when the headers
/// still parse), so the mutation is judged by the checks behind the checksums.
fn refill_checksums(b: &mut [u8], mode: ChecksumMode) {
    use smoltcp::wire::{Ipv4Packet, Ipv6Packet};
    if b.len() < 14 {
        return;
    }
    let ip = &mut b[14..];
    let (src, dst, payload): (IpAddr, IpAddr, &mut [u8]) = match ip.first().map(|v| v >> 4) {
        Some(4) => {
            let Ok(mut p) = Ipv4Packet::new_checked(&mut *ip) else {
                return;
            };
            p.fill_checksum();
            let (s, d) = (p.src_addr().into(), p.dst_addr().into());
            let (hl, tl) = (p.header_len() as usize, p.total_len() as usize);
            (s, d, &mut ip[hl..tl])
        }
        Some(6) => {
            let Ok(p) = Ipv6Packet::new_checked(&mut *ip) else {
                return;
            };
            let (s, d) = (p.src_addr().into(), p.dst_addr().into());
            let tl = p.total_len();
            (s, d, &mut ip[40..tl])
        }
        _ => return,
    };
    if payload.len() >= 8 {
        Packet::new_unchecked(payload).fill_checksum(&src, &dst, mode);
    }
}

#[test]
fn parse_frame_never_panics_on_truncated_or_mutated_frames() {
    let frames = frames();
    let mut counters = DropCounters::new();
    let mut ok = 0u32;
    let mut check = |bytes: &[u8], rx: RxContext| match parse_frame(bytes, rx) {
        Ok(_) => ok += 1,
        Err(r) => counters.record(r),
    };
    for f in &frames {
        for len in 0..f.bytes.len() {
            check(&f.bytes[..len], MC);
            check(&f.bytes[..len], RxContext { unicast: true });
        }
    }
    let mut rng = XorShift(0x2545_f491);
    for _ in 0..5000 {
        let f = &frames[rng.next() as usize % frames.len()];
        let mut b = f.bytes.clone();
        // A few byte flips, sometimes aimed at the headers, sometimes a length change.
        for _ in 0..1 + rng.next() % 4 {
            let i = rng.next() as usize % b.len();
            b[i] = rng.next() as u8;
        }
        match rng.next() % 4 {
            0 => b.truncate(rng.next() as usize % (b.len() + 1)),
            1 => b.extend((0..rng.next() % 40).map(|_| rng.next() as u8)),
            _ => {}
        }
        if rng.next() % 2 == 0 {
            refill_checksums(&mut b, ChecksumMode::PseudoHeader);
        }
        check(
            &b,
            RxContext {
                unicast: rng.next() % 2 == 0,
            },
        );
    }
    // Truncations stop at the Ethernet or IP length checks; flipped bytes reach the checksums.
    assert!(counters.get(DropReason::FrameTruncated) > 0);
    assert!(counters.get(DropReason::IpMalformed) > 0);
    assert!(counters.get(DropReason::IpHeaderChecksum) > 0);
    assert!(counters.get(DropReason::BadChecksum) > 0);
    // Re-checksummed mutations get past the checksums to the VRRP field checks.
    assert!(counters.get(DropReason::LengthMismatch) > 0);
    assert!(counters.get(DropReason::BadVersion) > 0);
    for (reason, n) in counters.iter().filter(|(_, n)| *n > 0) {
        println!("{:>26} {n}", reason.as_str());
    }
    assert!(
        ok > 0,
        "some mutations (e.g. in padding) keep a frame valid"
    );
}
