//! A real server's script check (keepalived MISC_CHECK, `misc_dynamic`) in the real daemon:
//! the script's exit code, read from a file the test writes, moves the server up and down
//! and sets its weight, seen through `minivrrp status --json` (`checks[]`: state and
//! weight) and the IPVS part's log. This kernel has no IPVS, so the weight reaches the IPVS
//! part (which logs it) but no kernel table; `tests/vm/ipvs_daemon_vm.rs` covers the table.
//!
//! Run as root: `cargo test --test lab misc_check_lab::` (needs ip).

use crate::common;

use common::lab::{self, Lab};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_minivrrp"))
}

/// `minivrrp status --json` of the node's daemon: its `checks[]` entry named `name`.
fn check(lab: &Lab, node: &str, name: &str) -> Option<serde_json::Value> {
    let o = Command::new(bin())
        .args(["status", "--json", "--socket"])
        .arg(lab.control_socket(node))
        .output()
        .expect("run minivrrp");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    v["checks"]
        .as_array()?
        .iter()
        .find(|c| c["name"].as_str().is_some_and(|n| n.contains(name)))
        .cloned()
}

/// Waits until the check's (state, weight) is `want`; returns what was seen last.
fn wait_check(lab: &Lab, name: &str, want: (&str, Option<u64>)) -> (String, Option<u64>) {
    let mut last = (String::new(), None);
    let seen = |last: &mut (String, Option<u64>)| {
        let Some(c) = check(lab, "r1", name) else {
            return false;
        };
        *last = (
            c["state"].as_str().unwrap_or("?").to_string(),
            c["weight"].as_u64(),
        );
        last.0 == want.0 && last.1 == want.1
    };
    lab::wait_until(Duration::from_secs(10), || seen(&mut last));
    last
}

#[test]
fn misc_check_moves_a_real_server_and_its_weight_in_the_daemon() {
    require!(root);
    let lab = Lab::with_routers("misc", 1);
    let dir = std::env::temp_dir().join(format!("mv{}-misc", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let code = |c: &str| std::fs::write(dir.join("code"), c).unwrap();
    code("12");
    let d: &Path = &dir;
    let uci = format!(
        "config instance 'vi1'
	option interface 'br-lan'
	option vrid '66'
	list vip '10.0.0.254/24'

config check 'misc'
	option type 'script'
	option command '/bin/sh -c \"exit $(cat {d}/code)\"'
	option dynamic '1'
	option interval '0.2'
	option timeout '2'

config virtual_server 'web'
	option address '10.0.0.254'
	option port '80'

config real_server 'w1'
	option virtual_server 'web'
	option address '10.0.1.1'
	option weight '5'
	option check 'misc'
",
        d = d.display()
    );
    let r1 = lab.spawn_minivrrp_text("r1", &bin(), &uci, "minivrrp");
    let got = wait_check(&lab, "misc", ("up", Some(10)));
    assert_eq!(got, ("up".into(), Some(10)), "exit 12\n{}", r1.log_text());
    code("1");
    let got = wait_check(&lab, "misc", ("down", Some(10)));
    assert_eq!(got, ("down".into(), Some(10)), "exit 1\n{}", r1.log_text());
    code("0");
    let got = wait_check(&lab, "misc", ("up", Some(10)));
    assert_eq!(got, ("up".into(), Some(10)), "exit 0\n{}", r1.log_text());
    code("255");
    let got = wait_check(&lab, "misc", ("up", Some(253)));
    assert_eq!(got, ("up".into(), Some(253)), "exit 255\n{}", r1.log_text());
    // The weights reached the IPVS part (no kernel table here, so it logs them only).
    let log = r1.log_text();
    for w in ["weight 10 (check)", "weight 253 (check)"] {
        assert!(
            log.contains(&format!(
                "real server 10.0.1.1:80 of TCP 10.0.0.254:80: {w}"
            )),
            "{w} not in\n{log}"
        );
    }
    assert!(
        log.contains("real server 10.0.1.1:80 of TCP 10.0.0.254:80 is down"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
