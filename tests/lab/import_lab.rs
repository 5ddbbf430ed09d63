//! An imported pair on the wire: the tutorial keepalived configs in `tests/import_lab/` (a
//! master and a backup with a tracked script, PASS authentication and e-mail settings) run
//! as a keepalived pair, then with one side replaced by minivrrp running the output of
//! `minivrrp import` on that side's original file. Every pairing must go through the same
//! elections: r1 wins (101 + 2 vs 100 + 2), r1's script fails so r2 takes over (101 < 102),
//! the script recovers so r1 preempts back, r1 is killed so r2 takes over.
//!
//! The timings are printed, not asserted. One difference shows there: keepalived 2.2.7 with
//! `state MASTER` still waits a Master_Down_Interval before its first advert, minivrrp's
//! `state MASTER` skips that wait (its documented meaning), so the imported master holds the
//! VIP ~3.6 s earlier at start; every later step takes the same time.
//!
//! Run as root: `cargo test --test lab import_lab::` (needs keepalived and ip). Without root or
//! keepalived the test prints SKIP (and fails under CI=true).

use crate::common;

use common::lab::{Lab, Proc};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const VIP: &str = "10.0.0.254";
/// Master_Down_Interval (3 s + skew) twice over, plus a script interval and slack for a
/// loaded machine.
const STEP: Duration = Duration::from_secs(12);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Keepalived,
    Minivrrp,
}

fn original(lab: &Lab, file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/import_lab")
        .join(file);
    std::fs::read_to_string(path)
        .expect("tests/import_lab config")
        .replace("@DIR@", &lab.dir.to_string_lossy())
}

/// `minivrrp import` of a config: the UCI text. Only the e-mail settings may be left behind.
fn import(lab: &Lab, node: &str, text: &str) -> String {
    let src = lab.dir.join(format!("{node}-original.conf"));
    std::fs::write(&src, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_minivrrp"))
        .args(["import", src.to_str().unwrap()])
        .output()
        .expect("run minivrrp import");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        assert!(
            line.contains("e-mail alerts are not supported"),
            "{node}: import left out more than e-mail: {line}"
        );
    }
    let want = if stderr.is_empty() { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(want), "{node}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn spawn(lab: &Lab, side: Side, node: &str, file: &str) -> Proc {
    let text = original(lab, file);
    match side {
        Side::Minivrrp => {
            let uci = import(lab, node, &text);
            let bin = Path::new(env!("CARGO_BIN_EXE_minivrrp"));
            lab.spawn_minivrrp_text(node, bin, &uci, "minivrrp")
        }
        Side::Keepalived => lab.spawn_keepalived_text(node, &text),
    }
}

/// Runs the scenario with r1 (the master config) on `r1` and r2 (the backup config) on `r2`;
/// returns what was observed after each step (the VIP's holders, or who took over).
fn scenario(tag: &str, r1_side: Side, r2_side: Side) -> Vec<String> {
    let lab = Lab::with_routers(tag, 2);
    std::fs::write(lab.dir.join("r1-up"), "").unwrap();
    std::fs::write(lab.dir.join("r2-up"), "").unwrap();
    let mut r1 = spawn(&lab, r1_side, "r1", "master.conf");
    let r2 = spawn(&lab, r2_side, "r2", "backup.conf");
    let logs = |r1: &Proc, r2: &Proc| {
        format!(
            "--- r1 ---\n{}\n--- r2 ---\n{}",
            r1.log_text(),
            r2.log_text()
        )
    };
    let mut seen = Vec::new();

    let (h, t) = lab.wait_holders(VIP, &["r1"], STEP);
    eprintln!("{tag}: start: {h:?} after {t:?}");
    seen.push(format!("start: {h:?}"));
    // Settle: a few adverts later the holder is unchanged.
    std::thread::sleep(Duration::from_secs(3));
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(1));
    seen.push(format!("settled: {h:?}"));

    std::fs::remove_file(lab.dir.join("r1-up")).unwrap();
    let (h, t) = lab.wait_holders(VIP, &["r2"], STEP);
    eprintln!("{tag}: r1's script down: {h:?} after {t:?}");
    seen.push(format!("r1 script down: {h:?}"));

    std::fs::write(lab.dir.join("r1-up"), "").unwrap();
    let (h, t) = lab.wait_holders(VIP, &["r1"], STEP);
    eprintln!("{tag}: r1's script up: {h:?} after {t:?}");
    seen.push(format!("r1 script up: {h:?}"));

    r1.kill_hard();
    let took = common::lab::wait_until(STEP, || lab.node_has_addr("r2", VIP));
    eprintln!("{tag}: r1 killed: r2 took over after {took:?}");
    seen.push(format!("r1 killed: r2 holds the VIP: {}", took.is_some()));
    if seen
        != [
            "start: [\"r1\"]",
            "settled: [\"r1\"]",
            "r1 script down: [\"r2\"]",
            "r1 script up: [\"r1\"]",
            "r1 killed: r2 holds the VIP: true",
        ]
    {
        eprintln!("{tag}: {seen:?}\n{}", logs(&r1, &r2));
    }
    seen
}

#[test]
fn imported_configs_elect_and_fail_over_like_the_keepalived_pair() {
    require!(root, "keepalived");
    let reference = scenario("impkk", Side::Keepalived, Side::Keepalived);
    assert_eq!(
        reference,
        [
            "start: [\"r1\"]",
            "settled: [\"r1\"]",
            "r1 script down: [\"r2\"]",
            "r1 script up: [\"r1\"]",
            "r1 killed: r2 holds the VIP: true",
        ],
        "the keepalived pair itself did not run the scenario"
    );
    let master_imported = scenario("impmk", Side::Minivrrp, Side::Keepalived);
    assert_eq!(
        master_imported, reference,
        "imported master vs keepalived backup"
    );
    let backup_imported = scenario("impkm", Side::Keepalived, Side::Minivrrp);
    assert_eq!(
        backup_imported, reference,
        "keepalived master vs imported backup"
    );
}
