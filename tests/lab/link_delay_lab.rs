//! `link_down_delay` / `link_up_delay` on the wire (keepalived `interface_up_down_delays`):
//! r1 (minivrrp, priority 150) is master over r2 (keepalived, 100). A 0.5 s bounce of r1's
//! link must leave r1 untouched with a 1.5 s down delay (without delays the same bounce puts it
//! in FAULT, which shows the bounce is seen at all). After a 3 s outage the link coming back
//! is believed only after the 2 s up delay: r1's first advert comes no earlier than up delay +
//! Master_Down_Interval after the link is up again.
//!
//! Run as root: `cargo test --test lab link_delay_lab::` (needs keepalived, tcpdump, ip).

use crate::common;

use common::lab::{self, minivrrp_uci, Lab, VrrpSpec};
use std::path::Path;
use std::time::Duration;

const VIP: &str = "10.0.0.254";

fn spec(priority: u8, extra: &[&str]) -> VrrpSpec {
    let mut s = VrrpSpec::new(61, priority, 2, 1.0, "10.0.0.254/24");
    s.extra_uci = extra.iter().map(|l| l.to_string()).collect();
    s
}

/// Returns (r1 went to FAULT on the bounce, r1's first advert after the outage's link up).
fn scenario(tag: &str, extra: &[&str]) -> (bool, Duration) {
    let lab = Lab::with_routers(tag, 2);
    let cap = lab.capture(tag);
    let r2 = lab.spawn_keepalived("r2", &[VrrpSpec::new(61, 100, 2, 1.0, "10.0.0.254/24")]);
    let bin = Path::new(env!("CARGO_BIN_EXE_minivrrp"));
    let r1 = lab.spawn_minivrrp_text(
        "r1",
        bin,
        &minivrrp_uci("r1", &[spec(150, extra)]),
        "minivrrp",
    );
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(
        h,
        ["r1"],
        "{tag}: r1 did not win\n{}\n{}",
        r1.log_text(),
        r2.log_text()
    );

    lab.set_link("r1", false);
    std::thread::sleep(Duration::from_millis(500));
    lab.set_link("r1", true);
    assert!(lab.wait_oper_up("r1", Duration::from_secs(3)));
    std::thread::sleep(Duration::from_millis(2500));
    let fault_on_bounce = r1.log_text().contains("-> FAULT");
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(12));
    assert_eq!(
        h,
        ["r1"],
        "{tag}: r1 is not master after the bounce\n{}",
        r1.log_text()
    );

    lab.set_link("r1", false);
    std::thread::sleep(Duration::from_secs(3));
    let t_up = lab.set_link("r1", true);
    let r1_mac = lab.node("r1").mac;
    let first = lab::wait_until(Duration::from_secs(20), || {
        cap.adverts(t_up)
            .iter()
            .any(|(_, a, _)| a.src_mac == r1_mac)
    });
    assert!(
        first.is_some(),
        "{tag}: r1 never advertised again\n{}",
        r1.log_text()
    );
    let first = cap
        .adverts(t_up)
        .into_iter()
        .find(|(_, a, _)| a.src_mac == r1_mac)
        .map(|(ts, _, _)| ts.saturating_sub(t_up))
        .unwrap();
    eprintln!(
        "{tag}: FAULT on a 0.5 s bounce: {fault_on_bounce}; first advert {:.2} s after link up",
        first.as_secs_f64()
    );
    (fault_on_bounce, first)
}

#[test]
fn link_delays_ignore_a_bounce_and_hold_an_unstable_link() {
    require!(root, "keepalived", "tcpdump");
    let (fault_plain, first_plain) = scenario("ldno", &[]);
    assert!(
        fault_plain,
        "without delays a 0.5 s link bounce must put r1 in FAULT"
    );
    let (fault_delayed, first_delayed) = scenario(
        "ldyes",
        &["option link_down_delay '1.5'", "option link_up_delay '2'"],
    );
    assert!(
        !fault_delayed,
        "with link_down_delay 1.5 a 0.5 s bounce must cause no FAULT"
    );
    // Up delay 2 s, then BACKUP waits Master_Down_Interval (3 + 106/256 s) before preempting.
    assert!(
        first_delayed >= Duration::from_secs(5),
        "r1 advertised {first_delayed:?} after link up, before up delay + Master_Down_Interval"
    );
    eprintln!(
        "first advert after the outage: {:.2} s without delays, {:.2} s with link_up_delay 2",
        first_plain.as_secs_f64(),
        first_delayed.as_secs_f64()
    );
}
