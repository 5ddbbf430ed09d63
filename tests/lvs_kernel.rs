//! The daemon's IPVS part (`daemon::lvs::Lvs`) against a real kernel, driven directly (no
//! runtime): built for musl and run inside the test VM by tests/vm/ipvs_daemon_vm.rs, whose
//! /init exports MINIVRRP_IN_VM=1 and whose script sets MINIVRRP_IPVS_EXPECT to `absent`
//! (before ip_vs is loaded) or `present`. On a normal host every test returns at once.
//!
//! Uses the VM test's configs (tests/ipvs/daemon*.uci) and prints `ipvsadm -Ln` between
//! `--- ipvsadm lvs-<label> ---` and `--- end ---` for the host to check.

use std::process::Command;

use minivrrp::base::{Duration, Instant};
use minivrrp::config::Config;
use minivrrp::daemon::kernel::Genl;
use minivrrp::daemon::lvs::{Lvs, RESYNC_INTERVAL, TIMER};
use minivrrp::daemon::Loop;
use minivrrp::sys::genl::IpvsClient;

const CONFIG: &str = include_str!("ipvs/daemon.uci");
const RELOAD: &str = include_str!("ipvs/daemon-reload.uci");

fn expect(state: &str) -> bool {
    std::env::var("MINIVRRP_IN_VM").as_deref() == Ok("1")
        && std::env::var("MINIVRRP_IPVS_EXPECT").as_deref() == Ok(state)
}

fn ipvsadm(args: &[&str]) {
    let st = Command::new("ipvsadm")
        .args(args)
        .status()
        .expect("run ipvsadm");
    assert!(st.success(), "ipvsadm {args:?}");
}

fn snapshot(label: &str) -> String {
    let out = Command::new("ipvsadm")
        .arg("-Ln")
        .output()
        .expect("run ipvsadm");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("--- ipvsadm lvs-{label} ---");
    // The first three lines are ipvsadm's header.
    for l in text.lines().skip(3) {
        println!("{}", l.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    println!("--- end ---");
    text
}

fn config(text: &str) -> Config {
    Config::parse_str("daemon.uci", text).expect("test config is valid")
}

#[test]
fn lvs_without_ip_vs_stays_idle() {
    if !expect("absent") {
        return;
    }
    let mut lvs = Lvs::new(&config(CONFIG)).unwrap().expect("virtual servers");
    let mut lp: Loop<()> = Loop::new();
    lvs.start(lp.ctx(), Instant::from_secs(1), &mut Genl);
    assert!(!lvs.is_active());
    assert_eq!(lp.ctx().deadline(TIMER), None);
    println!("lvs-absent: idle");
}

#[test]
fn lvs_part_keeps_the_kernel_table_in_line() {
    if !expect("present") {
        return;
    }
    let mut c = IpvsClient::open().expect("IPVS with ip_vs loaded");
    c.flush().expect("flush");
    // A foreign service, and a stale version of ours (wrong scheduler, an unknown server):
    // the part must adopt and correct ours and leave the foreign one alone.
    ipvsadm(&["-A", "-t", "10.9.9.9:80", "-s", "rr"]);
    ipvsadm(&["-A", "-t", "10.0.0.1:80", "-s", "rr"]);
    ipvsadm(&["-a", "-t", "10.0.0.1:80", "-r", "10.0.1.99:80", "-g"]);

    let mut lvs = Lvs::new(&config(CONFIG)).unwrap().expect("virtual servers");
    let mut lp: Loop<()> = Loop::new();
    let t0 = Instant::from_secs(10);
    lvs.start(lp.ctx(), t0, &mut Genl);
    assert!(lvs.is_active());
    snapshot("start");

    // w1 (web, first real server) fails.
    let t1 = t0 + Duration::from_secs(1);
    lvs.set_health(lp.ctx(), 0, 0, false, t1);
    assert_eq!(lp.ctx().deadline(TIMER), Some(t1));
    lvs.on_timer(lp.ctx(), TIMER, t1);
    snapshot("down");

    // a1 fails: app loses quorum 2, the sorry server replaces the pool.
    lvs.set_health(lp.ctx(), 1, 0, false, t1);
    lvs.on_timer(lp.ctx(), TIMER, t1);
    assert_eq!(lvs.quorum_up(1), Some(false));
    snapshot("quorum-lost");

    // Someone deletes one of our real servers; the periodic resync puts it back.
    ipvsadm(&["-d", "-t", "10.0.0.1:80", "-r", "10.0.1.2:80"]);
    let t2 = lp.ctx().deadline(TIMER).expect("resync armed");
    assert_eq!(t2, t1 + RESYNC_INTERVAL);
    lvs.on_timer(lp.ctx(), TIMER, t2);
    snapshot("repaired");

    // Reload: web gets lc and w1 weight 5 (w1 is still down, so it stays out), app leaves.
    lvs.reload(lp.ctx(), &config(RELOAD), t2, &mut Genl)
        .expect("reload");
    snapshot("reloaded");
    lvs.set_health(lp.ctx(), 0, 0, true, t2);
    lvs.on_timer(lp.ctx(), TIMER, t2);
    snapshot("recovered");

    lvs.shutdown(lp.ctx(), t2);
    snapshot("shutdown");
    let s = lvs.stats();
    println!(
        "lvs-stats: syncs {} changes {} errors {}",
        s.syncs, s.changes, s.errors
    );
    assert_eq!(s.errors, 0);
}
