//! Authenticated adverts in a namespace lab (two routers and a third host as the attacker,
//! as in tests/lab/lan_attacks.rs): keepalived 2.4's `auth_hmac` keeps a master's VIP against
//! what the TTL rule cannot stop, and rolls out and rotates keys by reloads without an
//! election. Run as root; `cargo test --test lab auth_hmac_lab:: -- --nocapture` prints the figures.

use crate::common;

use common::attack::{Advert, Attacker};
use common::knobs::minivrrp_bin;
use common::lab::{self, Lab, Proc, VrrpSpec, LAN_IF};
use minivrrp::vrrp::auth::TRAILER_LEN;
use minivrrp::vrrp::frame::append_trailer_frame;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

const VRID: u8 = 51;
const VIP: &str = "10.0.0.254";
const VIP_CIDR: &str = "10.0.0.254/24";
const ATTACKER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const R2: [u8; 4] = [10, 0, 0, 2];
const KEY1: &str = "hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const KEY2: &str = "a second key, 32 bytes or longer";
/// The freshness window the lab runs with (seconds): short, so "outside the window" comes soon.
const WINDOW: u64 = 5;
/// Frames per attack case, one every [`GAP`]: longer than the Master_Down_Interval (0.66 s
/// at 0.2 s adverts), so an accepted one would keep the master out.
const FRAMES: usize = 40;
const GAP: Duration = Duration::from_millis(25);
/// Replays of one captured advert sent in one second for the flood case.
const FLOOD: usize = 10_000;

fn auth_uci(mode: &str, keys: &[(u8, &str)], active: u8) -> Vec<String> {
    let mut l: Vec<String> = keys
        .iter()
        .map(|(id, k)| format!("list auth_hmac_key '{id} {k}'"))
        .collect();
    l.push(format!("option auth_hmac_active_key '{active}'"));
    l.push(format!("option auth_hmac_mode '{mode}'"));
    l.push(format!("option auth_hmac_time_window '{WINDOW}'"));
    l
}

fn spec(priority: u8, auth: Vec<String>) -> VrrpSpec {
    let mut s = VrrpSpec::new(VRID, priority, 3, 0.2, VIP_CIDR);
    s.extra_uci = auth;
    s
}

fn uci(node: &str, s: &VrrpSpec) -> String {
    lab::minivrrp_uci(node, std::slice::from_ref(s))
}

fn status(lab: &Lab, node: &str) -> serde_json::Value {
    let o = Command::new(minivrrp_bin())
        .args(["status", "--json", "--socket"])
        .arg(lab.control_socket(node))
        .output()
        .expect("run minivrrp status");
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn outcome(v: &serde_json::Value, name: &str) -> u64 {
    v["instances"][0]["auth_hmac"]["outcomes"][name]
        .as_u64()
        .unwrap_or(0)
}

/// Sends `frames` copies of `frame(i)` one every [`GAP`] and says whether r1 held the VIP
/// alone at every look (every 10 frames, then right after and 300 ms after the last).
fn attack(lab: &Lab, att: &Attacker, frames: usize, frame: &dyn Fn(usize) -> Vec<u8>) -> bool {
    let mut kept = true;
    for i in 0..frames {
        att.send(&frame(i));
        std::thread::sleep(GAP);
        if i % 10 == 9 {
            kept &= lab.holders(VIP) == ["r1"];
        }
    }
    kept &= lab.holders(VIP) == ["r1"];
    std::thread::sleep(Duration::from_millis(300));
    kept && lab.holders(VIP) == ["r1"]
}

fn winning() -> Advert {
    Advert::winning(
        [0x02, 0, 0, 0, 0, 0x64],
        ATTACKER,
        VRID,
        "10.0.0.254".parse().unwrap(),
    )
}

/// A winning advert with a trailer of the right shape whose MAC is made up (the attacker
/// has no key): current time, key `key_id`.
fn forged(key_id: u8, i: usize) -> Vec<u8> {
    let mut f = winning().frame();
    let n = f.len();
    f.resize(n + TRAILER_LEN, 0);
    let mut t = [0u8; TRAILER_LEN];
    t[0] = 1;
    t[1] = key_id;
    let now = lab::now_realtime();
    t[4..8].copy_from_slice(&(now.as_secs() as u32).to_be_bytes());
    t[10..12].copy_from_slice(&(i as u16).to_be_bytes());
    for (j, b) in t[12..].iter_mut().enumerate() {
        *b = (j as u8).wrapping_mul(37).wrapping_add(i as u8);
    }
    let len = append_trailer_frame(&mut f, n, &t).expect("room for the trailer");
    f.truncate(len);
    f
}

/// VRRP frames r2 sent (IPv4 source 10.0.0.2) with `priority`, in capture order.
fn captured(frames: &[common::pcap::Frame], priority: u8) -> Vec<Vec<u8>> {
    frames
        .iter()
        .map(|f| f.data.clone())
        .filter(|d| d.len() > 34 + 8 && d[12..14] == [0x08, 0x00] && d[23] == 112)
        .filter(|d| d[26..30] == R2 && d[34 + 2] == priority)
        .collect()
}

fn later_transitions(p: &Proc, before: usize) -> usize {
    lab::transitions(&p.log_text()).saturating_sub(before)
}

/// With `auth_hmac` in enforce mode the master keeps its VIP against a TTL-255 priority-254
/// advert without trailer, one with a forged trailer, one with an unknown key ID, a peer's
/// captured advert replayed inside and outside the window, its captured priority-0 advert
/// replayed, and 10,000 replays in one second; without `auth_hmac` the first one takes it.
#[test]
fn enforce_keeps_the_vip_against_injection_and_replay() {
    require!(root, "tcpdump");
    let lab = Lab::with_routers("hmac", 2);
    let bin = minivrrp_bin();
    let client = lab.node("client");
    let att = Attacker::open(&client.ns, LAN_IF, client.mac);

    // Without auth_hmac: the unsigned winner takes the VIP (the figure beside ours).
    let mut p = lab.spawn_minivrrp_text("r1", &bin, &uci("r1", &spec(200, vec![])), "plain");
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(h, ["r1"], "no master:\n{}", p.log_text());
    std::thread::sleep(Duration::from_millis(500));
    let plain_kept = attack(&lab, &att, FRAMES, &|_| winning().frame());
    p.terminate();
    p.wait_exit(Duration::from_secs(5));
    lab.del_addr("r1", VIP_CIDR);
    assert!(
        !plain_kept,
        "without auth_hmac the unsigned advert should win"
    );

    // With auth_hmac: r2 (priority 250) is master first, so its adverts can be captured.
    let cap = lab.capture("hmac");
    let auth = auth_uci("enforce", &[(1, KEY1)], 1);
    let mut r1 = lab.spawn_minivrrp_text("r1", &bin, &uci("r1", &spec(200, auth.clone())), "r1");
    let mut r2 = lab.spawn_minivrrp_text("r2", &bin, &uci("r2", &spec(250, auth)), "r2");
    let (h, _) = lab.wait_holders(VIP, &["r2"], Duration::from_secs(15));
    assert_eq!(h, ["r2"], "{}", lab::logs(&[&r1, &r2]));
    std::thread::sleep(Duration::from_millis(800));
    // r2 leaves (priority 0, RFC 5798 6.4.3): r1 takes over at once.
    r2.terminate();
    r2.wait_exit(Duration::from_secs(5));
    let left = Instant::now();
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(5));
    assert_eq!(h, ["r1"], "{}", r1.log_text());
    std::thread::sleep(Duration::from_millis(200));
    let frames = cap.read().frames;
    let high = captured(&frames, 250);
    let zero = captured(&frames, 0);
    let last = high.last().expect("captured r2's adverts").clone();
    let prio0 = zero
        .last()
        .expect("captured r2's priority-0 advert")
        .clone();
    assert_eq!(
        last.len(),
        14 + 20 + 12 + TRAILER_LEN,
        "r2's adverts carry the trailer"
    );
    let before = lab::transitions(&r1.log_text());
    let mut prev = status(&lab, "r1");

    // Each case's count is what its frames added to the outcome it should land in.
    let mut rows: Vec<(&str, bool, &str, u64)> = Vec::new();
    let mut case = |what: &'static str, counter: &'static str, kept: bool| {
        let v = status(&lab, "r1");
        let n = outcome(&v, counter) - outcome(&prev, counter);
        rows.push((what, kept, counter, n));
        prev = v;
    };
    // Inside the window: r1 accepted these very adverts from r2 already.
    let kept = attack(&lab, &att, FRAMES, &|_| last.clone());
    case(
        "captured priority-250 advert, replayed inside the window",
        "replayed",
        kept,
    );
    let kept = attack(&lab, &att, FRAMES, &|_| prio0.clone());
    case("captured priority-0 advert, replayed", "replayed", kept);
    assert!(
        left.elapsed() < Duration::from_secs(WINDOW),
        "replays left the window"
    );
    let kept = attack(&lab, &att, FRAMES, &|_| winning().frame());
    case(
        "TTL-255 priority-254 advert without trailer",
        "missing",
        kept,
    );
    let kept = attack(&lab, &att, FRAMES, &|i| forged(1, i));
    case("priority-254 advert with a forged trailer", "bad_mac", kept);
    let kept = attack(&lab, &att, FRAMES, &|i| forged(7, i));
    case(
        "priority-254 advert signed with an unknown key id",
        "unknown_key",
        kept,
    );
    // Outside the window.
    let until = Duration::from_secs(WINDOW) + Duration::from_millis(1500);
    std::thread::sleep(until.saturating_sub(left.elapsed()));
    let kept = attack(&lab, &att, FRAMES, &|_| last.clone());
    case(
        "captured priority-250 advert, replayed outside the window",
        "stale",
        kept,
    );
    // A flood of replays: every one dropped, the master's adverts still on time.
    let sent_before = status(&lab, "r1")["instances"][0]["counters"]["adverts_sent"]
        .as_u64()
        .unwrap();
    let t0 = Instant::now();
    // 10,000 a second: 100 every 10 ms for one second.
    for chunk in 0..FLOOD / 100 {
        for _ in 0..100 {
            att.send(&last);
        }
        let due = Duration::from_millis(10 * (chunk as u64 + 1));
        std::thread::sleep(due.saturating_sub(t0.elapsed()));
    }
    let flood_time = t0.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let kept = lab.holders(VIP) == ["r1"];
    let v = status(&lab, "r1");
    let sent = v["instances"][0]["counters"]["adverts_sent"]
        .as_u64()
        .unwrap()
        - sent_before;
    let span = t0.elapsed();
    case("10,000 replays in one second", "stale", kept);

    let transitions = later_transitions(&r1, before);
    eprintln!("auth_hmac enforce, master r1 (priority 200), attacker 10.0.0.100:");
    eprintln!(
        "  without auth_hmac: TTL-255 priority-254 advert without trailer -> VIP kept: {plain_kept}"
    );
    for (what, kept, counter, n) in &rows {
        eprintln!("  with auth_hmac:    {what} -> VIP kept: {kept} ({counter} +{n})");
    }
    eprintln!(
        "  flood: {FLOOD} frames in {flood_time:.2?}; r1 sent {sent} adverts in {span:.2?} (0.2 s interval); transitions after the attacks: {transitions}"
    );
    for (what, kept, counter, n) in &rows {
        assert!(kept, "lost the VIP to: {what}\n{}", r1.log_text());
        assert!(*n >= FRAMES as u64, "{what}: {counter} +{n}\n{v:#}");
    }
    assert_eq!(transitions, 0, "{}", r1.log_text());
    // Adverts on time through the flood: one per 0.2 s, give or take one.
    let due = (span.as_secs_f64() / 0.2) as u64;
    assert!(
        sent + 1 >= due,
        "r1 sent {sent} adverts in {span:?} (due {due})"
    );
    assert!(
        outcome(&v, "accepted") > 0,
        "r2's adverts were accepted: {v:#}"
    );
    let log = r1.log_text();
    assert!(log.contains("auth_hmac bad MAC"), "{log}");
    r1.terminate();
    r1.wait_exit(Duration::from_secs(5));
}

/// Rollout by reloads, as keepalived 2.4 documents it (receive-only, then permissive, then
/// enforce, every router per step), then a key rotation (add key 2, sign with it, drop key
/// 1): the master keeps its VIP and neither router makes a transition.
#[test]
fn rollout_and_key_rotation_by_reload_cause_no_transition() {
    require!(root);
    let lab = Lab::with_routers("hmacroll", 2);
    let bin = minivrrp_bin();
    let mut r1 = lab.spawn_minivrrp_text("r1", &bin, &uci("r1", &spec(200, vec![])), "r1");
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(h, ["r1"], "{}", r1.log_text());
    let mut r2 = lab.spawn_minivrrp_text("r2", &bin, &uci("r2", &spec(100, vec![])), "r2");
    std::thread::sleep(Duration::from_secs(2));
    let (b1, b2) = (
        lab::transitions(&r1.log_text()),
        lab::transitions(&r2.log_text()),
    );
    let steps: [(&str, Vec<String>); 6] = [
        ("receive-only", auth_uci("receive-only", &[(1, KEY1)], 1)),
        ("permissive", auth_uci("permissive", &[(1, KEY1)], 1)),
        ("enforce", auth_uci("enforce", &[(1, KEY1)], 1)),
        ("add key 2", auth_uci("enforce", &[(1, KEY1), (2, KEY2)], 1)),
        (
            "sign with key 2",
            auth_uci("enforce", &[(1, KEY1), (2, KEY2)], 2),
        ),
        ("drop key 1", auth_uci("enforce", &[(2, KEY2)], 2)),
    ];
    let mut kept = true;
    for (step, auth) in steps {
        // Every router per step, the backup first, with adverts flowing between reloads.
        for (node, prio) in [("r2", 100), ("r1", 200)] {
            let path = lab.dir.join(format!("{node}-{node}.uci"));
            std::fs::write(&path, uci(node, &spec(prio, auth.clone()))).unwrap();
            let p = if node == "r1" { &r1 } else { &r2 };
            p.signal(libc::SIGHUP);
            for _ in 0..8 {
                std::thread::sleep(Duration::from_millis(100));
                kept &= lab.holders(VIP) == ["r1"];
            }
        }
        let v = status(&lab, "r2");
        let a = &v["instances"][0]["auth_hmac"];
        eprintln!(
            "  {step}: r2 mode {} keys {} signing key {}; outcomes {}",
            a["mode"], a["key_ids"], a["active_key"], a["outcomes"]
        );
        assert!(
            kept,
            "VIP moved during '{step}'\n{}",
            lab::logs(&[&r1, &r2])
        );
    }
    std::thread::sleep(Duration::from_secs(1));
    let t1 = lab::transitions(&r1.log_text()) - b1;
    let t2 = lab::transitions(&r2.log_text()) - b2;
    eprintln!("rollout unsigned -> receive-only -> permissive -> enforce -> key rotation: transitions r1 {t1}, r2 {t2}");
    assert_eq!((t1, t2), (0, 0), "{}", lab::logs(&[&r1, &r2]));
    // The backup now accepts only adverts signed with key 2, and has accepted every one.
    let v = status(&lab, "r2");
    let a = &v["instances"][0]["auth_hmac"];
    assert_eq!(a["key_ids"], serde_json::json!([2]));
    assert!(outcome(&v, "accepted") > 10, "{v:#}");
    for bad in [
        "missing",
        "malformed",
        "unknown_key",
        "bad_mac",
        "stale",
        "replayed",
    ] {
        assert_eq!(outcome(&v, bad), 0, "{bad}: {v:#}");
    }
    assert!(
        outcome(&v, "unsigned") > 0,
        "receive-only heard unsigned adverts: {v:#}"
    );
    let text = Command::new(minivrrp_bin())
        .args(["check", "-f"])
        .arg(lab.dir.join("r2-r2.uci"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.contains("list auth_hmac_key '2 ***'"), "{out}");
    assert!(!out.contains("second key"), "check printed a key: {out}");
    r1.terminate();
    r2.terminate();
    r1.wait_exit(Duration::from_secs(5));
    r2.wait_exit(Duration::from_secs(5));
}
