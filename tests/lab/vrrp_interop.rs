//! Wire interoperability with Debian's keepalived (2.2.7): keepalived in one lab namespace,
//! minivrrp in another, same VRID. For each protocol flavour both directions run: the side with
//! the higher priority wins the election and only it holds the VIP, and when it is killed
//! (`kill -9`) the other side takes over. A wrong VRRPv2 password makes each side ignore the
//! other (both become master, both hold the VIP).
//!
//! Run as root: `cargo test --test lab vrrp_interop::` (needs keepalived, tcpdump, ip). Without root or
//! keepalived the tests print SKIP (and fail under CI=true). `MVLAB_KEEP_DIR=1` keeps the logs.

use crate::common;

use common::lab::{self, logs, Impl, Lab, Proc, VrrpSpec};
use common::pcap::Kind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const VIP: &str = "10.0.0.254";
const VIP6: &str = "fd00::254";

fn minivrrp() -> Impl {
    Impl::Minivrrp(PathBuf::from(env!("CARGO_BIN_EXE_minivrrp")))
}

fn sorted(h: Vec<String>) -> Vec<String> {
    let mut h = h;
    h.sort();
    h
}

/// Samples the holders of `addr` for `dur`; all samples must equal `want`.
fn holders_stay(lab: &Lab, addr: &str, want: &[&str], dur: Duration, procs: &[&Proc]) {
    let start = Instant::now();
    while start.elapsed() < dur {
        let h = sorted(lab.holders(addr));
        assert_eq!(
            h,
            want,
            "{addr}: holders {h:?} after {:?}\n{}",
            start.elapsed(),
            logs(procs)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// r1 runs `high` at priority 150, r2 runs the other implementation at priority 100, both with
/// `spec(priority)`. Checks the election (only r1 holds `vip`, r2 stays silent) and the takeover
/// by r2 after `kill -9` of r1 (r2's adverts and announcement seen on the bridge).
fn interop(tag: &str, high: Impl, spec: impl Fn(u8) -> VrrpSpec, vip: &str) {
    let low = match high {
        Impl::Keepalived => minivrrp(),
        Impl::Minivrrp(_) => Impl::Keepalived,
    };
    let lab = Lab::with_routers(tag, 2);
    let cap = lab.capture(tag);
    let (hi, lo) = (spec(150), spec(100));
    let mut r1 = lab.spawn_vrrp(&high, "r1", std::slice::from_ref(&hi));
    let r2 = lab.spawn_vrrp(&low, "r2", std::slice::from_ref(&lo));
    let bound = lo.master_down_interval() * 2 + Duration::from_secs(5);
    let (h, _) = lab.wait_holders(vip, &["r1"], bound);
    assert_eq!(
        h,
        ["r1"],
        "{} (150) vs {} (100): election failed\n{}",
        high.name(),
        low.name(),
        logs(&[&r1, &r2])
    );
    // r2 must have settled as a backup: a few master adverts later nothing changes.
    std::thread::sleep(Duration::from_secs_f64(lo.advert_int * 2.0 + 0.5));
    let settled = lab::now_realtime();
    holders_stay(
        &lab,
        vip,
        &["r1"],
        Duration::from_secs_f64(lo.advert_int * 4.0),
        &[&r1, &r2],
    );
    let (r1_mac, r2_mac) = (lab.node("r1").mac, lab.node("r2").mac);
    let ads = cap.adverts(settled);
    assert!(
        ads.iter().all(|(_, a, _)| a.src_mac == r1_mac),
        "backup {} advertised while {} was master: {:?}",
        low.name(),
        high.name(),
        ads.iter().find(|(_, a, _)| a.src_mac != r1_mac)
    );
    assert!(ads.len() >= 3, "master adverts missing: {ads:?}");

    let t = r1.kill_hard();
    let tb = lo.master_down_interval() * 2 + Duration::from_secs(2);
    let took = lab::wait_until(tb, || lab.node_has_addr("r2", vip));
    assert!(
        took.is_some(),
        "{} did not take over from killed {} within {tb:?}\n{}",
        low.name(),
        high.name(),
        logs(&[&r2])
    );
    let adv = cap
        .wait_for(
            t,
            Duration::from_secs(2),
            |k| matches!(k, Kind::Vrrp(a) if a.src_mac == r2_mac && a.priority == 100),
        )
        .expect("no advert from the new master");
    let announce = cap.wait_for(t, Duration::from_secs(2), |k| match k {
        Kind::Garp { sender_mac, .. } => *sender_mac == r2_mac,
        Kind::UnsolicitedNa { src_mac, .. } => *src_mac == r2_mac,
        _ => false,
    });
    assert!(announce.is_some(), "no GARP/NA from the new master");
    eprintln!(
        "{tag}: {} took over from killed {}: advert +{:?}",
        low.name(),
        high.name(),
        adv.ts.saturating_sub(t)
    );
}

fn v2_pass(p: u8) -> VrrpSpec {
    let mut s = VrrpSpec::new(70, p, 2, 1.0, "10.0.0.254/24");
    s.auth_pass = Some("s3cret".into());
    s
}

fn v3_v4(mode: &'static str) -> impl Fn(u8) -> VrrpSpec {
    move |p| {
        let mut s = VrrpSpec::new(71, p, 3, 0.5, "10.0.0.254/24");
        s.v3_checksum = Some(mode.to_string());
        s
    }
}

fn v3_v6(p: u8) -> VrrpSpec {
    VrrpSpec::v6(72, p, 0.5, "fd00::254/64")
}

#[test]
fn v2_pass_auth_keepalived_master_minivrrp_backup_takes_over() {
    require!(root, "keepalived", "tcpdump");
    interop("i2k", Impl::Keepalived, v2_pass, VIP);
}

#[test]
fn v2_pass_auth_minivrrp_master_keepalived_backup_takes_over() {
    require!(root, "keepalived", "tcpdump");
    interop("i2m", minivrrp(), v2_pass, VIP);
}

#[test]
fn v3_ipv4_pseudo_checksum_keepalived_master_minivrrp_backup_takes_over() {
    require!(root, "keepalived", "tcpdump");
    interop("i3pk", Impl::Keepalived, v3_v4("pseudo"), VIP);
}

#[test]
fn v3_ipv4_pseudo_checksum_minivrrp_master_keepalived_backup_takes_over() {
    require!(root, "keepalived", "tcpdump");
    interop("i3pm", minivrrp(), v3_v4("pseudo"), VIP);
}

/// minivrrp in `rfc9568` mode still accepts keepalived's pseudo-header checksums (it verifies
/// both ways), so as a backup it follows keepalived normally.
#[test]
fn v3_ipv4_rfc9568_checksum_keepalived_master_minivrrp_backup_takes_over() {
    require!(root, "keepalived", "tcpdump");
    interop("i3rk", Impl::Keepalived, v3_v4("rfc9568"), VIP);
}

/// keepalived 2.2.7 computes and verifies the VRRPv3-over-IPv4 checksum with the IPv4
/// pseudo-header only (RFC 5798 5.2.8 as keepalived reads it). minivrrp in `rfc9568` mode sends
/// the checksum over the VRRP message alone, so keepalived drops every advert as a bad checksum:
/// as the lower-priority side it never hears a master and becomes master too (both hold the VIP),
/// while minivrrp, hearing keepalived's lower priority, stays master. That mode is for peers
/// that use the RFC 9568 checksum, not for keepalived.
#[test]
fn v3_ipv4_rfc9568_checksum_minivrrp_master_is_ignored_by_keepalived() {
    require!(root, "keepalived", "tcpdump");
    let lab = Lab::with_routers("i3rm", 2);
    let spec = v3_v4("rfc9568");
    let r1 = lab.spawn_vrrp(&minivrrp(), "r1", &[spec(150)]);
    let r2 = lab.spawn_keepalived("r2", &[spec(100)]);
    let bound = spec(100).master_down_interval() * 2 + Duration::from_secs(5);
    let (h, _) = lab.wait_holders(VIP, &["r1", "r2"], bound);
    assert_eq!(
        h,
        ["r1", "r2"],
        "keepalived accepted rfc9568 checksums after all?\n{}",
        logs(&[&r1, &r2])
    );
    holders_stay(
        &lab,
        VIP,
        &["r1", "r2"],
        Duration::from_secs(3),
        &[&r1, &r2],
    );
    // keepalived says why it ignores them (checked by hand with a raw-socket sender before
    // minivrrp ran: pseudo-header checksums accepted, VRRP-only ones rejected with this line).
    let klog = r2.log_text();
    assert!(
        klog.contains("Invalid VRRPv3 checksum"),
        "keepalived did not report the checksum:\n{klog}"
    );
}

#[test]
fn v3_ipv6_keepalived_master_minivrrp_backup_takes_over() {
    require!(root, "keepalived", "tcpdump");
    interop("i6k", Impl::Keepalived, v3_v6, VIP6);
}

#[test]
fn v3_ipv6_minivrrp_master_keepalived_backup_takes_over() {
    require!(root, "keepalived", "tcpdump");
    interop("i6m", minivrrp(), v3_v6, VIP6);
}

/// RFC 3768 7.1 (VRRPv2 simple text auth): an advert whose password differs is discarded.
/// The lower-priority side hears only adverts it must discard, so it becomes master as well:
/// two holders of the VIP prove the lower side ignored the higher one's adverts.
fn wrong_password(tag: &str, high: Impl) {
    let low = match high {
        Impl::Keepalived => minivrrp(),
        Impl::Minivrrp(_) => Impl::Keepalived,
    };
    let lab = Lab::with_routers(tag, 2);
    let mut a = v2_pass(150);
    a.auth_pass = Some("rightpw".into());
    let mut b = v2_pass(100);
    b.auth_pass = Some("wrongpw".into());
    let r1 = lab.spawn_vrrp(&high, "r1", &[a]);
    let r2 = lab.spawn_vrrp(&low, "r2", &[b.clone()]);
    let bound = b.master_down_interval() * 2 + Duration::from_secs(5);
    let (h, _) = lab.wait_holders(VIP, &["r1", "r2"], bound);
    assert_eq!(
        h,
        ["r1", "r2"],
        "{} (100) did not ignore {}'s adverts with a different password\n{}",
        low.name(),
        high.name(),
        logs(&[&r1, &r2])
    );
    holders_stay(
        &lab,
        VIP,
        &["r1", "r2"],
        Duration::from_secs(3),
        &[&r1, &r2],
    );
}

#[test]
fn v2_wrong_password_is_ignored_by_minivrrp_3768_7_1() {
    require!(root, "keepalived", "tcpdump");
    wrong_password("iwm", Impl::Keepalived);
}

#[test]
fn v2_wrong_password_is_ignored_by_keepalived_3768_7_1() {
    require!(root, "keepalived", "tcpdump");
    wrong_password("iwk", minivrrp());
}

/// Unicast VRRPv2 with a password (keepalived `unicast_peer`, minivrrp `list unicast_peer`):
/// each side sends to the other's address only.
fn v2_unicast(p: u8) -> VrrpSpec {
    let mut s = v2_pass(p);
    s.vrid = 73;
    s.name = "vi73".into();
    // r1 runs the priority-150 side, r2 the priority-100 side.
    s.unicast_peers = vec![if p == 150 { "10.0.0.2" } else { "10.0.0.1" }.to_string()];
    s
}

#[test]
fn v2_unicast_keepalived_master_minivrrp_backup_takes_over() {
    require!(root, "keepalived", "tcpdump");
    interop("iuk", Impl::Keepalived, v2_unicast, VIP);
}

#[test]
fn v2_unicast_minivrrp_master_keepalived_backup_takes_over() {
    require!(root, "keepalived", "tcpdump");
    interop("ium", minivrrp(), v2_unicast, VIP);
}

// --- Preemption with role-following services (`master_interface`) against keepalived ---
//
// Between two minivrrp routers a preempted master stops its services and then resigns with
// a priority-0 advert; the new master starts its own on that advert. keepalived sends no
// such advert, so a minivrrp router preempting it starts its services after the fallback
// wait (Master_Down_Interval); keepalived preempting a minivrrp router gets the resign as a
// BACKUP's priority-0 advert, answers it (RFC 5798 6.4.3) and stays master.

fn preempt_spec(p: u8) -> VrrpSpec {
    let mut s = VrrpSpec::new(74, p, 3, 0.5, "10.0.0.254/24");
    s.extra_uci = vec![
        "option garp_delay '0'".into(),
        "list master_interface 'wg0'".into(),
    ];
    s
}

/// A stand-in for `ubus` (netifd is not here): it records each call with its time.
fn fake_ubus(lab: &Lab, node: &str) -> (PathBuf, PathBuf) {
    let calls = lab.dir.join(format!("{node}-ubus.calls"));
    let bin = lab.dir.join(format!("{node}-ubus"));
    std::fs::write(
        &bin,
        format!(
            "#!/bin/sh\necho \"$(date +%s.%N) $*\" >> {}\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (bin, calls)
}

/// minivrrp in `node` with `spec`, its role jobs calling `ubus` as `fake`.
fn spawn_minivrrp_with_ubus(lab: &Lab, node: &str, spec: &VrrpSpec, fake: &Path) -> Proc {
    let conf = lab.minivrrp_conf_path(node);
    std::fs::write(&conf, lab::minivrrp_uci(node, std::slice::from_ref(spec))).unwrap();
    let ubus = format!("MINIVRRP_UBUS={}", fake.display());
    let bin = env!("CARGO_BIN_EXE_minivrrp");
    let (c, s) = (conf.display().to_string(), lab.control_socket(node));
    let s = s.display().to_string();
    lab.spawn(
        node,
        "minivrrp",
        &["env", &ubus, bin, "-f", &c, "--socket", &s],
    )
}

/// The `network.interface.wg0` calls recorded so far: (time, `up` or `down`).
fn wg0_calls(calls: &Path) -> Vec<(f64, String)> {
    std::fs::read_to_string(calls)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let t: f64 = w.next()?.parse().ok()?;
            let rest: Vec<&str> = w.collect();
            (rest.first() == Some(&"call") && rest.get(1) == Some(&"network.interface.wg0"))
                .then(|| (t, rest.get(2).unwrap_or(&"").to_string()))
        })
        .collect()
}

fn realtime_secs() -> f64 {
    lab::now_realtime().as_secs_f64()
}

/// minivrrp (150) preempts keepalived (100): the VIP moves at once; keepalived never
/// resigns, so minivrrp brings `wg0` up after Master_Down_Interval (one log line says so),
/// once, and keepalived stays BACKUP.
#[test]
fn preempting_keepalived_starts_role_services_after_the_fallback_wait() {
    require!(root, "keepalived", "tcpdump");
    let lab = Lab::with_routers("ipk", 2);
    let lo = preempt_spec(100);
    let r2 = lab.spawn_keepalived("r2", std::slice::from_ref(&lo));
    let bound = lo.master_down_interval() * 2 + Duration::from_secs(5);
    let (h, _) = lab.wait_holders(VIP, &["r2"], bound);
    assert_eq!(h, ["r2"], "keepalived alone\n{}", logs(&[&r2]));
    let (fake, calls) = fake_ubus(&lab, "r1");
    let hi = preempt_spec(150);
    let r1 = spawn_minivrrp_with_ubus(&lab, "r1", &hi, &fake);
    let (h, _) = lab.wait_holders(VIP, &["r1"], bound);
    assert_eq!(h, ["r1"], "minivrrp did not preempt\n{}", logs(&[&r1, &r2]));
    let moved = realtime_secs();
    let up = lab::wait_until(Duration::from_secs(10), || {
        wg0_calls(&calls).iter().any(|(_, v)| v == "up")
    });
    assert!(up.is_some(), "wg0 never brought up\n{}", logs(&[&r1, &r2]));
    let log = r1.log_text();
    assert!(
        log.contains("services wait for 10.0.0.2 to resign")
            && log.contains("no resign from 10.0.0.2: services start anyway"),
        "{log}"
    );
    holders_stay(&lab, VIP, &["r1"], Duration::from_secs(2), &[&r1, &r2]);
    let wg0 = wg0_calls(&calls);
    assert_eq!(
        wg0.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(),
        ["up"],
        "up once"
    );
    let klog = r2.log_text();
    assert_eq!(
        klog.matches("Entering MASTER STATE").count(),
        1,
        "keepalived stayed BACKUP after the preemption\n{klog}"
    );
    eprintln!(
        "preempting_keepalived: VIP on minivrrp, then wg0 up {:.3} s later (Master_Down_Interval {:?})",
        wg0[0].0 - moved,
        hi.master_down_interval()
    );
}

/// keepalived (150) preempts minivrrp (100): minivrrp takes `wg0` down, then sends its
/// resign, a priority-0 advert from a BACKUP. keepalived, the master, answers it at once
/// (RFC 5798 6.4.3) and stays master; minivrrp stays BACKUP.
#[test]
fn keepalived_preempting_minivrrp_gets_the_resign_and_stays_master() {
    require!(root, "keepalived", "tcpdump");
    let lab = Lab::with_routers("ikp", 2);
    let cap = lab.capture("ikp");
    let (fake, calls) = fake_ubus(&lab, "r2");
    let lo = preempt_spec(100);
    let r2 = spawn_minivrrp_with_ubus(&lab, "r2", &lo, &fake);
    let bound = lo.master_down_interval() * 2 + Duration::from_secs(5);
    let (h, _) = lab.wait_holders(VIP, &["r2"], bound);
    assert_eq!(h, ["r2"], "minivrrp alone\n{}", logs(&[&r2]));
    let up = lab::wait_until(Duration::from_secs(5), || {
        wg0_calls(&calls).iter().any(|(_, v)| v == "up")
    });
    assert!(up.is_some(), "wg0 up on the master\n{}", logs(&[&r2]));
    let before = lab::now_realtime();
    let r1 = lab.spawn_keepalived("r1", &[preempt_spec(150)]);
    let (h, _) = lab.wait_holders(VIP, &["r1"], bound);
    assert_eq!(
        h,
        ["r1"],
        "keepalived did not preempt\n{}",
        logs(&[&r1, &r2])
    );
    let r2_mac = lab.node("r2").mac;
    let r1_mac = lab.node("r1").mac;
    let resign = cap
        .wait_for(
            before,
            Duration::from_secs(5),
            |k| matches!(k, Kind::Vrrp(a) if a.src_mac == r2_mac && a.priority == 0),
        )
        .unwrap_or_else(|| panic!("no resign from minivrrp\n{}", logs(&[&r1, &r2])));
    let answer = cap
        .wait_for(
            resign.ts,
            Duration::from_secs(2),
            |k| matches!(k, Kind::Vrrp(a) if a.src_mac == r1_mac && a.priority == 150),
        )
        .expect("keepalived's next advert");
    holders_stay(&lab, VIP, &["r1"], Duration::from_secs(2), &[&r1, &r2]);
    let wg0 = wg0_calls(&calls);
    assert_eq!(
        wg0.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(),
        ["up", "down"],
        "up as master, down once when preempted"
    );
    let log = r2.log_text();
    assert!(
        log.contains("services stopped: resigning with a priority-0 advert"),
        "{log}"
    );
    assert_eq!(
        lab::transitions(&log),
        3,
        "INIT->BACKUP->MASTER->BACKUP\n{log}"
    );
    let klog = r1.log_text();
    assert_eq!(
        klog.matches("Entering MASTER STATE").count(),
        1,
        "keepalived stayed master after the resign\n{klog}"
    );
    eprintln!(
        "keepalived_preempting_minivrrp: resign {:.3} s after wg0 down; keepalived's advert {:?} after the resign",
        resign.ts.as_secs_f64() - wg0[1].0,
        answer.ts.saturating_sub(resign.ts)
    );
}
