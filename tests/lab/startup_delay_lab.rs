//! `startup_delay` on the wire (keepalived `vrrp_startup_delay`): r2 (keepalived, priority
//! 100) is master; r1 (priority 150, preempting) starts with a 4 s startup delay. During the
//! delay r1 sends nothing and r2 keeps the VIP; after it r1 starts as a backup and preempts
//! one Master_Down_Interval later. The same run is made with keepalived as r1 (its
//! `vrrp_startup_delay 4`) for a side-by-side figure; only minivrrp's timing is asserted
//! against the configured delay, and both must keep quiet during it.
//!
//! Run as root: `cargo test --test lab startup_delay_lab::` (needs keepalived, tcpdump, ip).

use crate::common;

use common::lab::{self, keepalived_conf, minivrrp_uci, Lab, VrrpSpec};
use std::path::Path;
use std::time::Duration;

const VIP: &str = "10.0.0.254";
const DELAY: f64 = 4.0;

fn spec(priority: u8) -> VrrpSpec {
    VrrpSpec::new(60, priority, 2, 1.0, "10.0.0.254/24")
}

/// Starts r1 with the delay after r2 is master; returns (first r1 advert, r1 holds the VIP),
/// both measured from r1's start.
fn run(tag: &str, r1_minivrrp: bool) -> (Duration, Duration) {
    let lab = Lab::with_routers(tag, 2);
    let cap = lab.capture(tag);
    let r2 = lab.spawn_keepalived("r2", &[spec(100)]);
    let (h, _) = lab.wait_holders(VIP, &["r2"], Duration::from_secs(15));
    assert_eq!(
        h,
        ["r2"],
        "{tag}: r2 alone did not become master\n{}",
        r2.log_text()
    );

    let t0 = lab::now_realtime();
    let r1 = if r1_minivrrp {
        let uci = format!(
            "{}\nconfig globals 'globals'\n\toption startup_delay '{DELAY}'\n",
            minivrrp_uci("r1", &[spec(150)])
        );
        let bin = Path::new(env!("CARGO_BIN_EXE_minivrrp"));
        lab.spawn_minivrrp_text("r1", bin, &uci, "minivrrp")
    } else {
        let text = keepalived_conf("r1", &[spec(150)]).replacen(
            "global_defs {\n",
            &format!("global_defs {{\n    vrrp_startup_delay {DELAY}\n"),
            1,
        );
        lab.spawn_keepalived_text("r1", &text)
    };
    let r1_mac = lab.node("r1").mac;
    // Just before the delay ends: r1 has said nothing, r2 still holds the VIP.
    std::thread::sleep(Duration::from_secs_f64(DELAY - 0.3));
    let early: Vec<_> = cap
        .adverts(t0)
        .into_iter()
        .filter(|(_, a, _)| a.src_mac == r1_mac)
        .collect();
    assert!(
        early.is_empty(),
        "{tag}: r1 advertised during its startup delay: {early:?}\n{}",
        r1.log_text()
    );
    assert_eq!(
        lab.holders(VIP),
        ["r2"],
        "{tag}: VIP moved during r1's startup delay"
    );

    let took = lab::wait_until(Duration::from_secs(15), || lab.holders(VIP) == ["r1"])
        .expect("r1 did not take over after its startup delay");
    let first = cap
        .adverts(t0)
        .into_iter()
        .find(|(_, a, _)| a.src_mac == r1_mac)
        .map(|(ts, _, _)| ts.saturating_sub(t0))
        .expect("no advert from r1");
    let holds_at = Duration::from_secs_f64(DELAY - 0.3) + took;
    eprintln!(
        "{tag}: r1 ({}) first advert {:.2} s, holds the VIP {:.2} s after its start (delay {DELAY} s)",
        if r1_minivrrp { "minivrrp" } else { "keepalived" },
        first.as_secs_f64(),
        holds_at.as_secs_f64()
    );
    (first, holds_at)
}

#[test]
fn startup_delay_keeps_a_booting_router_from_taking_mastership() {
    require!(root, "keepalived", "tcpdump");
    let (first, _) = run("sdmv", true);
    // After the delay r1 starts as BACKUP: it waits Master_Down_Interval (3 + 50/256 s for
    // priority 150) before its first advert, since r2's lower adverts are discarded.
    assert!(
        first >= Duration::from_secs_f64(DELAY + 3.0),
        "minivrrp r1 advertised {first:?} after start, before delay + Master_Down_Interval"
    );
    run("sdka", false);
}
