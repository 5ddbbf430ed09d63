//! Split brain and its healing (RFC 5798 6.4.3): a partition (r2's bridge port detached
//! from the bridge, both links staying up) makes both routers master; when the port is
//! attached again exactly one master must remain, quickly. minivrrp answers another master
//! it wins against at once (as keepalived does), so the lower one yields at the first
//! advert either side sends, instead of at the higher one's next advert.
//!
//! Prints the heal times of minivrrp and keepalived side by side; asserts only the
//! protocol bound (the lower master yields within one Advertisement_Interval of the higher
//! one, plus slack for a loaded machine). `cargo test --test lab split_brain:: -- --nocapture`.

use crate::common;

use common::knobs::minivrrp_bin;
use common::lab::{Impl, Lab, VrrpSpec, BRIDGE};
use std::time::{Duration, Instant};

const VIP: &str = "10.0.0.254";
const VIP_CIDR: &str = "10.0.0.254/24";
const TRIALS: usize = 3;

/// Detach (`partition`) or re-attach r2's port on the switch.
fn partition(lab: &Lab, on: bool) {
    let args: Vec<&str> = if on {
        vec!["ip", "link", "set", "vr2", "nomaster"]
    } else {
        vec!["ip", "link", "set", "vr2", "master", BRIDGE]
    };
    let out = lab.exec_switch(&args);
    assert!(out.status.success(), "{args:?}: {out:?}");
}

/// Heal times (seconds) of `TRIALS` partitions for one implementation.
fn heal_times(imp: &Impl, tag: &str) -> Vec<f64> {
    let lab = Lab::with_routers(tag, 2);
    let s = |p: u8| VrrpSpec::new(50, p, 3, 1.0, VIP_CIDR);
    let r1 = lab.spawn_vrrp(imp, "r1", &[s(150)]);
    let r2 = lab.spawn_vrrp(imp, "r2", &[s(100)]);
    let logs = || format!("{}\n---\n{}", r1.log_text(), r2.log_text());
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(
        h,
        ["r1"],
        "{}: no single master at start\n{}",
        imp.name(),
        logs()
    );
    let mut times = Vec::new();
    for trial in 0..TRIALS {
        partition(&lab, true);
        let (h, _) = lab.wait_holders(VIP, &["r1", "r2"], Duration::from_secs(10));
        assert_eq!(
            h,
            ["r1", "r2"],
            "{}: the partition made no split brain\n{}",
            imp.name(),
            logs()
        );
        // Vary the phase of the heal against both advert timers.
        std::thread::sleep(Duration::from_millis(1300 + 370 * trial as u64));
        let t0 = Instant::now();
        partition(&lab, false);
        let (h, took) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(5));
        assert_eq!(
            h,
            ["r1"],
            "{}: split brain did not heal\n{}",
            imp.name(),
            logs()
        );
        // One Advertisement_Interval of r1 plus slack for `ip` polling and load.
        assert!(
            took < Duration::from_millis(1800),
            "{}: healed only after {took:?}",
            imp.name()
        );
        times.push(t0.elapsed().min(took).as_secs_f64());
        std::thread::sleep(Duration::from_secs(2));
    }
    times
}

#[test]
fn split_brain_heals_within_one_advert_interval_6_4_3() {
    require!(root, "keepalived");
    let mini = heal_times(&Impl::Minivrrp(minivrrp_bin()), "sbmini");
    let ka = heal_times(&Impl::Keepalived, "sbka");
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    eprintln!(
        "split-brain heal (v3, 1 s, priorities 150/100, {TRIALS} trials): minivrrp {:?} median {:.3} s, keepalived {:?} median {:.3} s",
        mini, median(&mini), ka, median(&ka)
    );
}
