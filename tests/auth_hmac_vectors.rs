//! keepalived 2.4's `auth_hmac` wire images (`tests/vectors/auth-hmac.json`, from its
//! `test/auth_hmac_test.c`): each parses with its trailer, verifies, and re-emits byte for byte
//! from its values; one-bit mutations give the outcomes keepalived's own test expects; the
//! trailer parser survives every truncation and extension of them.

use std::net::IpAddr;
use std::time::Duration;

use minivrrp::vrrp::auth::{
    self, AntiReplay, AuthHmac, AuthMode, AuthReject, AuthVerdict, Binding, HmacKey, ReplayTable,
    SendSeq, TRAILER_LEN,
};
use minivrrp::vrrp::frame::{append_trailer_vrrp, emit_vrrp, parse_vrrp, RxContext};
use minivrrp::vrrp::wire::{AddrList, Auth, ChecksumMode, DropReason, Version, VrrpRepr};
use serde_json::Value;

#[path = "common/alloc.rs"]
mod alloc;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/auth-hmac.json");
const UNICAST: RxContext = RxContext { unicast: true };

fn doc() -> Value {
    let text = std::fs::read_to_string(VECTORS).unwrap_or_else(|e| panic!("{VECTORS}: {e}"));
    serde_json::from_str(&text).expect("auth-hmac.json is JSON")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn cfg(doc: &Value, anti_replay: AntiReplay) -> AuthHmac {
    let id = doc["key_id"].as_u64().unwrap() as u8;
    AuthHmac {
        keys: vec![HmacKey::new(id, &hex(doc["key_hex"].as_str().unwrap())).unwrap()],
        active_key: id,
        mode: AuthMode::Enforce,
        anti_replay,
        time_window: 5,
    }
}

fn ip(v: &Value) -> IpAddr {
    v.as_str().unwrap().parse().unwrap()
}

fn binding(v: &Value) -> Binding {
    Binding {
        version: Version::V3,
        vrid: v["vrid"].as_u64().unwrap() as u8,
        src: ip(&v["src"]),
    }
}

/// The wall-clock reading whose sequence number is the vectors' 0x6800000080000000.
fn vector_wall(doc: &Value) -> Duration {
    let seq = u64::from_str_radix(doc["seq_hex"].as_str().unwrap(), 16).unwrap();
    let secs = seq >> 32;
    let frac = (seq >> 16) & 0xffff;
    Duration::from_secs(secs) + Duration::from_nanos(frac * 1_000_000_000 / 65_536)
}

fn verdict_name(v: AuthVerdict) -> &'static str {
    match v {
        AuthVerdict::Accepted { .. } => "accepted",
        AuthVerdict::Unsigned => "unsigned",
        AuthVerdict::Rejected(AuthReject::Missing) => "missing",
        AuthVerdict::Rejected(AuthReject::Malformed) => "malformed",
        AuthVerdict::Rejected(AuthReject::UnknownKey) => "unknown_key",
        AuthVerdict::Rejected(AuthReject::BadMac) => "bad_mac",
        AuthVerdict::Rejected(AuthReject::Stale) => "stale",
        AuthVerdict::Rejected(AuthReject::Replayed) => "replayed",
    }
}

/// Parse the image as the receive path does and verify its trailer (monotonic mode: the
/// fixed timestamps lie outside any live window, as in keepalived's test).
fn receive(doc: &Value, v: &Value, bytes: &[u8]) -> AuthVerdict {
    let adv = parse_vrrp(bytes, ip(&v["src"]), ip(&v["dst"]), 255, UNICAST).expect("parses");
    let t = adv.trailer.expect("the payload carries a trailer");
    auth::verify(
        &cfg(doc, AntiReplay::Monotonic),
        &mut ReplayTable::default(),
        Duration::ZERO,
        &binding(v),
        t.msg(bytes),
        Some(&t.bytes),
    )
}

#[test]
fn keepalived_vectors_parse_verify_and_reemit_byte_for_byte() {
    let doc = doc();
    for v in doc["vectors"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let bytes = hex(v["hex"].as_str().unwrap());
        let msg_len = v["msg_len"].as_u64().unwrap() as usize;
        assert_eq!(bytes.len(), msg_len + TRAILER_LEN, "{name}");

        // Receive: the trailer is found from the length, the advert's fields are the
        // vector's, and the MAC verifies.
        let adv = parse_vrrp(&bytes, ip(&v["src"]), ip(&v["dst"]), 255, UNICAST).unwrap();
        assert_eq!(adv.vrrp.vrid, 51, "{name}");
        assert_eq!(adv.vrrp.priority, v["priority"].as_u64().unwrap() as u8);
        assert_eq!(
            adv.vrrp.adver_int,
            v["max_adver_int_cs"].as_u64().unwrap() as u16
        );
        assert_eq!(adv.vrrp.addrs.as_slice(), &[ip(&v["vip"])], "{name}");
        assert_eq!(verdict_name(receive(&doc, v, &bytes)), "accepted", "{name}");

        // Emit: the same values, signed at the vectors' instant, give the same bytes.
        let mut addrs = AddrList::new();
        addrs.push(ip(&v["vip"])).unwrap();
        let repr = VrrpRepr {
            version: Version::V3,
            vrid: 51,
            priority: 200,
            adver_int: 100,
            auth: Auth::None,
            addrs,
        };
        let (src, dst) = (ip(&v["src"]), ip(&v["dst"]));
        let mut buf = [0u8; 512];
        let n = emit_vrrp(&mut buf, &repr, &src, &dst, ChecksumMode::VrrpOnly).unwrap();
        assert_eq!(n, msg_len);
        let mut trailer = [0u8; TRAILER_LEN];
        let c = cfg(&doc, AntiReplay::Time);
        auth::sign(
            &c,
            &mut SendSeq::default(),
            vector_wall(&doc),
            &binding(v),
            &buf[..n],
            &mut trailer,
        )
        .unwrap();
        let n = append_trailer_vrrp(&mut buf, n, &trailer, &src, &dst).unwrap();
        assert_eq!(
            hex_of(&buf[..n]),
            v["hex"].as_str().unwrap(),
            "{name} re-emitted"
        );
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn keepalived_mutations_give_keepalived_outcomes() {
    let doc = doc();
    let of = doc["mutations_of"].as_str().unwrap();
    let v = doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == of)
        .unwrap();
    let img = hex(v["hex"].as_str().unwrap());
    for m in doc["mutations"].as_array().unwrap() {
        let what = m["what"].as_str().unwrap();
        let mut b = img.clone();
        b[m["offset"].as_u64().unwrap() as usize] ^= 0x01;
        // The IPv6 checksum covers the image (trailer included): a flipped bit fails it
        // before the MAC is looked at, so the verifier is asked directly, as keepalived's
        // test does (its kernel checks the checksum before keepalived sees the packet).
        let msg_len = v["msg_len"].as_u64().unwrap() as usize;
        let got = auth::verify(
            &cfg(&doc, AntiReplay::Monotonic),
            &mut ReplayTable::default(),
            Duration::ZERO,
            &binding(v),
            &b[..msg_len],
            Some(&b[msg_len..]),
        );
        assert_eq!(verdict_name(got), m["expect"].as_str().unwrap(), "{what}");
        if what != "tampered checksum" {
            let parsed = parse_vrrp(&b, ip(&v["src"]), ip(&v["dst"]), 255, UNICAST);
            assert_eq!(parsed.err(), Some(DropReason::BadChecksum), "{what}");
        }
    }
    // The pseudo-header binds the source address and the VRID.
    let msg_len = v["msg_len"].as_u64().unwrap() as usize;
    let mut other = binding(v);
    other.src = "fe80::20".parse().unwrap();
    let mut wrong_vrid = binding(v);
    wrong_vrid.vrid = 52;
    for (what, at) in [("wrong source", other), ("wrong vrid", wrong_vrid)] {
        let got = auth::verify(
            &cfg(&doc, AntiReplay::Monotonic),
            &mut ReplayTable::default(),
            Duration::ZERO,
            &at,
            &img[..msg_len],
            Some(&img[msg_len..]),
        );
        assert_eq!(verdict_name(got), "bad_mac", "{what}");
    }
}

#[test]
fn the_vectors_replayed_are_refused_and_outside_the_window_are_stale() {
    let doc = doc();
    let v = &doc["vectors"][0];
    let bytes = hex(v["hex"].as_str().unwrap());
    let msg_len = v["msg_len"].as_u64().unwrap() as usize;
    let (msg, t) = bytes.split_at(msg_len);
    let mut rt = ReplayTable::default();
    let c = cfg(&doc, AntiReplay::Time);
    let now = vector_wall(&doc) + Duration::from_secs(1);
    let first = auth::verify(&c, &mut rt, now, &binding(v), msg, Some(t));
    assert_eq!(first, AuthVerdict::Accepted { skew: Some(1) });
    for _ in 0..10_000 {
        let again = auth::verify(&c, &mut rt, now, &binding(v), msg, Some(t));
        assert_eq!(again, AuthVerdict::Rejected(AuthReject::Replayed));
    }
    let later = vector_wall(&doc) + Duration::from_secs(6);
    let stale = auth::verify(
        &c,
        &mut ReplayTable::default(),
        later,
        &binding(v),
        msg,
        Some(t),
    );
    assert_eq!(stale, AuthVerdict::Rejected(AuthReject::Stale));
}

#[test]
fn truncated_or_extended_trailers_never_verify_and_never_panic() {
    let doc = doc();
    for v in doc["vectors"].as_array().unwrap() {
        let bytes = hex(v["hex"].as_str().unwrap());
        let msg_len = v["msg_len"].as_u64().unwrap() as usize;
        for cut in 0..bytes.len() + 8 {
            let mut b = bytes.clone();
            b.resize(cut, 0);
            // The bare message is an unsigned advert; message + 28 carries a trailer; any
            // other length is refused by the message parse.
            if let Ok(adv) = parse_vrrp(&b, ip(&v["src"]), ip(&v["dst"]), 255, UNICAST) {
                assert!(cut == bytes.len() || cut == msg_len, "cut {cut} parsed");
                assert_eq!(adv.trailer.is_some(), cut == bytes.len());
            }
            let tail = b.get(msg_len..).unwrap_or(&[]);
            let got = auth::verify(
                &cfg(&doc, AntiReplay::Monotonic),
                &mut ReplayTable::default(),
                Duration::ZERO,
                &binding(v),
                &b[..msg_len.min(b.len())],
                Some(tail),
            );
            if cut != bytes.len() {
                assert!(matches!(got, AuthVerdict::Rejected(_)), "cut {cut}");
            }
        }
    }
}

/// The receive path's parse and verification, and signing, allocate nothing.
#[test]
fn parse_verify_and_sign_allocate_nothing() {
    let doc = doc();
    let c = cfg(&doc, AntiReplay::Time);
    let wall = vector_wall(&doc);
    let images: Vec<(Value, Vec<u8>)> = doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v.clone(), hex(v["hex"].as_str().unwrap())))
        .collect();
    let bindings: Vec<Binding> = images.iter().map(|(v, _)| binding(v)).collect();
    let ends: Vec<(IpAddr, IpAddr)> = images
        .iter()
        .map(|(v, _)| (ip(&v["src"]), ip(&v["dst"])))
        .collect();
    let mut rt = ReplayTable::default();
    let mut seq = SendSeq::default();
    let mut out = [0u8; TRAILER_LEN];
    let mut accepted = 0;
    alloc::ACTIVE.with(|a| a.set(true));
    for _ in 0..100 {
        for (((_, bytes), at), (src, dst)) in images.iter().zip(&bindings).zip(&ends) {
            if let Ok(adv) = parse_vrrp(bytes, *src, *dst, 255, UNICAST) {
                if let Some(t) = adv.trailer {
                    let v = auth::verify(&c, &mut rt, wall, at, t.msg(bytes), Some(&t.bytes));
                    accepted += usize::from(matches!(v, AuthVerdict::Accepted { .. }));
                    let _ = auth::sign(&c, &mut seq, wall, at, t.msg(bytes), &mut out);
                }
            }
        }
    }
    alloc::ACTIVE.with(|a| a.set(false));
    assert_eq!(alloc::ALLOCS.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(accepted, 2, "each image once, then replays");
}
