//! Policy routing rules that follow the state, in the kernel's rule lists (`ip rule show`):
//! minivrrp carries two master rules (`rule`, one IPv4 and one IPv6, keepalived
//! `virtual_rules`) and one `backup_rule`. r2 (100) starts as the backup, r1 (150) takes
//! over; a `kill -9` of r1 leaves its rules behind, and r1 started again (priority 50, a
//! backup) removes them; graceful stops take every rule out. Last, keepalived on r1 with the
//! same rules in `virtual_rules` installs exactly the lines minivrrp did (compared as
//! `ip rule show` prints them, without the `proto` word).
//!
//! Run as root: `cargo test --test lab rules_lab::` (needs keepalived, ip).

use crate::common;

use common::lab::{self, Lab};
use std::path::Path;
use std::time::Duration;

const VIP: &str = "10.0.0.254";
const MASTER_RULES: &[&str] = &[
    "100: from 10.0.0.0/24 lookup 100",
    "101: from all to fd00:9::/64 lookup 100",
];
const BACKUP_RULES: &[&str] = &["102: from all fwmark 0x1/0xff iif br-lan lookup 101"];

fn minivrrp_conf(priority: u8) -> String {
    format!(
        "config instance 'vi65'
	option interface 'br-lan'
	option vrid '65'
	option priority '{priority}'
	option garp_delay '0'
	list vip '10.0.0.254/24'
	list rule 'from 10.0.0.0/24 priority 100 table 100'
	list rule 'to fd00:9::/64 pref 101 lookup 100'
	list backup_rule 'iif br-lan fwmark 0x1/0xff priority 102 table 101'
"
    )
}

const KEEPALIVED: &str = "vrrp_instance vi65 {
    state BACKUP
    interface br-lan
    virtual_router_id 65
    priority 150
    virtual_ipaddress {
        10.0.0.254/24 dev br-lan
    }
    virtual_rules {
        from 10.0.0.0/24 table 100 priority 100
        to fd00:9::/64 table 100 priority 101
    }
}
";

/// A node's rules of both families as `ip rule show` prints them, without the kernel's
/// own three (priorities 0, 32766, 32767), the `proto X` word (minivrrp and keepalived set
/// none, `ip` may print one) and repeated blanks; sorted.
fn rules(lab: &Lab, node: &str) -> Vec<String> {
    let mut v = Vec::new();
    for fam in ["-4", "-6"] {
        let out = lab.exec(node, &["ip", fam, "rule", "show"]);
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.is_empty() || matches!(w[0], "0:" | "32766:" | "32767:") {
                continue;
            }
            v.push(lab::without_proto(l));
        }
    }
    v.sort();
    v
}

fn wait_rules(lab: &Lab, node: &str, want: &[&str]) -> bool {
    lab::wait_until(Duration::from_secs(10), || rules(lab, node) == want).is_some()
}

#[test]
fn rules_follow_mastership_stale_ones_go_and_match_keepalived() {
    require!(root, "keepalived");
    let lab = Lab::with_routers("rules", 2);
    let bin = Path::new(env!("CARGO_BIN_EXE_minivrrp"));
    let r2 = lab.spawn_minivrrp_text("r2", bin, &minivrrp_conf(100), "minivrrp");
    assert!(
        wait_rules(&lab, "r2", BACKUP_RULES),
        "backup r2 has {:?}\n{}",
        rules(&lab, "r2"),
        r2.log_text()
    );
    let mut r1 = lab.spawn_minivrrp_text("r1", bin, &minivrrp_conf(150), "minivrrp");
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(h, ["r1"], "r1 did not win\n{}", r1.log_text());
    assert!(
        wait_rules(&lab, "r1", MASTER_RULES),
        "master r1 has {:?}\n{}",
        rules(&lab, "r1"),
        r1.log_text()
    );
    let mini = rules(&lab, "r1");
    assert_eq!(rules(&lab, "r2"), BACKUP_RULES, "backup r2");

    // A crash leaves r1's rules in the kernel while r2 takes over with its own.
    r1.kill_hard();
    assert!(
        wait_rules(&lab, "r2", MASTER_RULES),
        "new master r2 has {:?}\n{}",
        rules(&lab, "r2"),
        r2.log_text()
    );
    assert_eq!(rules(&lab, "r1"), MASTER_RULES, "a crash removes nothing");
    // Started again as a backup, r1 first removes what the crashed run left.
    let r1b = lab.spawn_minivrrp_text("r1", bin, &minivrrp_conf(50), "minivrrp-again");
    assert!(
        wait_rules(&lab, "r1", BACKUP_RULES),
        "restarted backup r1 has {:?}\n{}",
        rules(&lab, "r1"),
        r1b.log_text()
    );
    assert!(
        r1b.log_text().contains("removing stale rule"),
        "{}",
        r1b.log_text()
    );

    // Graceful stop of the master: its rules go, r1 takes over with the master rules.
    r2.terminate();
    assert!(
        wait_rules(&lab, "r1", MASTER_RULES),
        "r1 after r2 stopped has {:?}\n{}",
        rules(&lab, "r1"),
        r1b.log_text()
    );
    assert!(
        wait_rules(&lab, "r2", &[]),
        "stopped r2 left {:?}",
        rules(&lab, "r2")
    );
    // And a stopping master removes its own.
    r1b.terminate();
    assert!(
        wait_rules(&lab, "r1", &[]),
        "stopped r1 left {:?}",
        rules(&lab, "r1")
    );

    // keepalived on r1 with the same rules, alone: master, and the same lines.
    let k1 = lab.spawn_keepalived_text("r1", KEEPALIVED);
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(
        h,
        ["r1"],
        "keepalived did not become master\n{}",
        k1.log_text()
    );
    assert!(
        wait_rules(&lab, "r1", MASTER_RULES),
        "keepalived master r1 has {:?}\n{}",
        rules(&lab, "r1"),
        k1.log_text()
    );
    let keep = rules(&lab, "r1");
    eprintln!("minivrrp master: {mini:?}\nkeepalived master: {keep:?}");
    assert_eq!(
        mini, keep,
        "minivrrp and keepalived install different rules"
    );
}
