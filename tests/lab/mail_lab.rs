//! E-mail alerts on the wire: a real SMTP server (Debian's `python3-aiosmtpd`, whose default
//! handler prints every message it accepts) runs in r3; r1 (priority 150) and r2 (100) run
//! minivrrp with `smtp_alert`. r1's failover makes r2 mail "Entering MASTER state" with the
//! router id, instance, old and new state and reason.
//!
//! Second case: the SMTP server's address leads nowhere (a permanent neighbour entry with a
//! MAC nobody has, so every SYN is dropped on the wire). r1 alone becomes master; both of its
//! mails fail on the connect timeout, r1 never leaves MASTER, and the spacing of its adverts
//! while the mails hang is printed (not asserted).
//!
//! Run as root: `cargo test --test lab mail_lab::` (needs ip, tcpdump, python3-aiosmtpd).

use crate::common;

use common::lab::{self, minivrrp_uci, Lab, VrrpSpec};
use std::path::Path;
use std::time::Duration;

const VIP: &str = "10.0.0.254";
const PYTHON: &str = "/usr/bin/python3";

fn spec(priority: u8) -> VrrpSpec {
    VrrpSpec::new(70, priority, 2, 1.0, "10.0.0.254/24")
}

fn has_aiosmtpd() -> bool {
    std::process::Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn uci(router_id: &str, priority: u8, server: &str, timeout: &str) -> String {
    minivrrp_uci(router_id, &[spec(priority)]).replacen(
        "config globals 'globals'\n",
        &format!(
            "config globals 'globals'\n\tlist notification_email 'noc@example.net'\n\
             \tlist notification_email 'oncall@example.net'\n\
             \toption notification_email_from '{router_id}@example.net'\n\
             \toption smtp_server '{server}'\n\toption smtp_connect_timeout '{timeout}'\n\
             \toption smtp_alert '1'\n"
        ),
        1,
    )
}

/// The messages the server printed, split at aiosmtpd's `MESSAGE FOLLOWS` banner.
fn messages(log: &str) -> Vec<String> {
    log.split("---------- MESSAGE FOLLOWS ----------")
        .skip(1)
        .map(|m| {
            m.split("------------ END MESSAGE ------------")
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn failover_mails_router_instance_states_and_reason_to_a_real_smtp_server() {
    let name = "failover_mails_router_instance_states_and_reason_to_a_real_smtp_server";
    require!(root, "tcpdump");
    if !has_aiosmtpd() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name}: needs python3-aiosmtpd (tests/setup.sh installs it)");
        }
        eprintln!("SKIP {name}: python3-aiosmtpd is not installed");
        return;
    }
    let lab = Lab::with_routers("mail", 3);
    let smtp_addr = lab.node("r3").ipv4();
    let listen = format!("{smtp_addr}:2525");
    let smtp = lab.spawn(
        "r3",
        "smtpd",
        &[PYTHON, "-u", "-m", "aiosmtpd", "-n", "-l", &listen],
    );
    // The server is up when its port accepts.
    let up = lab::wait_until(Duration::from_secs(10), || {
        lab.exec("r3", &["ss", "-ltn"])
            .stdout
            .windows(listen.len())
            .any(|w| w == listen.as_bytes())
    });
    assert!(up.is_some(), "aiosmtpd did not listen\n{}", smtp.log_text());

    let bin = Path::new(env!("CARGO_BIN_EXE_minivrrp"));
    let r1 = lab.spawn_minivrrp_text("r1", bin, &uci("r1", 150, &listen, "5"), "minivrrp");
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(h, ["r1"], "r1 did not become master\n{}", r1.log_text());
    let r2 = lab.spawn_minivrrp_text("r2", bin, &uci("r2", 100, &listen, "5"), "minivrrp");
    // r2 is a backup (its INIT -> BACKUP mail), then r1 stops and r2 takes over.
    let got = lab::wait_until(Duration::from_secs(15), || {
        messages(&smtp.log_text())
            .iter()
            .any(|m| m.contains("[r2] VRRP Instance") && m.contains("Entering BACKUP state"))
    });
    assert!(
        got.is_some(),
        "no BACKUP mail from r2\nserver:\n{}\nr2:\n{}",
        smtp.log_text(),
        r2.log_text()
    );
    let t0 = lab::now_realtime();
    r1.terminate();
    let (h, _) = lab.wait_holders(VIP, &["r2"], Duration::from_secs(15));
    assert_eq!(h, ["r2"], "r2 did not take over\n{}", r2.log_text());
    let master_mail = || {
        messages(&smtp.log_text())
            .into_iter()
            .find(|m| m.contains("[r2] VRRP Instance") && m.contains("Entering MASTER state"))
    };
    lab::wait_until(Duration::from_secs(15), || master_mail().is_some());
    let arrived = lab::now_realtime().saturating_sub(t0);
    let m = master_mail().unwrap_or_else(|| {
        panic!(
            "no MASTER mail from r2\nserver:\n{}\nr2:\n{}",
            smtp.log_text(),
            r2.log_text()
        )
    });
    let inst = &spec(100).name;
    for want in [
        format!("X-Peer: ('{}'", lab.node("r2").ipv4()),
        "From: r2@example.net".to_string(),
        "To: noc@example.net, oncall@example.net".to_string(),
        format!("Subject: [r2] VRRP Instance {inst} - Entering MASTER state"),
        "router_id: r2".to_string(),
        format!("instance: {inst}"),
        "old state: BACKUP".to_string(),
        "new state: MASTER".to_string(),
        "reason: ".to_string(),
        "Date: ".to_string(),
    ] {
        assert!(m.contains(&want), "mail lacks {want:?}:\n{m}");
    }
    // The reason names why r2 took over (RFC 5798 6.4.2: master down timer, or the
    // priority-0 advert r1 sent on shutdown).
    let reason = m
        .lines()
        .find_map(|l| l.strip_prefix("reason: "))
        .unwrap_or("");
    assert!(!reason.trim().is_empty(), "empty reason:\n{m}");
    eprintln!(
        "mail_lab: r2's MASTER mail arrived {:.2} s after r1 was stopped (reason: {})",
        arrived.as_secs_f64(),
        reason.trim()
    );
    assert!(
        r2.log_text().contains("sent through"),
        "r2 did not log the delivery\n{}",
        r2.log_text()
    );
}

#[test]
fn black_holed_smtp_server_fails_mails_without_touching_the_advert_rhythm() {
    require!(root, "tcpdump");
    let lab = Lab::with_routers("mbh", 2);
    // 10.0.0.99 "exists" for r1 (a permanent neighbour) but its MAC is nobody's: every SYN
    // is lost, as with a dead host behind a firewall dropping packets.
    let out = lab.exec(
        "r1",
        &[
            "ip",
            "neigh",
            "replace",
            "10.0.0.99",
            "lladdr",
            "02:00:00:00:99:99",
            "dev",
            "br-lan",
            "nud",
            "permanent",
        ],
    );
    assert!(out.status.success(), "ip neigh: {out:?}");
    let cap = lab.capture("mbh");
    let bin = Path::new(env!("CARGO_BIN_EXE_minivrrp"));
    let t0 = lab::now_realtime();
    let r1 = lab.spawn_minivrrp_text("r1", bin, &uci("r1", 150, "10.0.0.99:25", "2"), "minivrrp");
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(15));
    assert_eq!(h, ["r1"], "r1 did not become master\n{}", r1.log_text());
    // Two mails (BACKUP, MASTER), each failing after the 2 s connect timeout.
    let failed = lab::wait_until(Duration::from_secs(15), || {
        r1.log_text().matches("connect timed out").count() >= 2
    });
    assert!(
        failed.is_some(),
        "the mails to the black hole were not counted as failed\n{}",
        r1.log_text()
    );
    std::thread::sleep(Duration::from_secs(1));
    let log = r1.log_text();
    assert_eq!(
        log.matches("-> MASTER").count(),
        1,
        "r1 changed state more than once while the mails hung\n{log}"
    );
    assert!(!log.contains("MASTER -> "), "r1 left MASTER\n{log}");
    assert_eq!(lab.holders(VIP), ["r1"]);
    let r1_mac = lab.node("r1").mac;
    let ts: Vec<Duration> = cap
        .adverts(t0)
        .into_iter()
        .filter(|(_, a, _)| a.src_mac == r1_mac && a.priority == 150)
        .map(|(t, _, _)| t)
        .collect();
    assert!(ts.len() >= 3, "too few adverts from r1: {}", ts.len());
    let gaps: Vec<f64> = ts
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]).as_secs_f64())
        .collect();
    let max = gaps.iter().cloned().fold(0.0, f64::max);
    let min = gaps.iter().cloned().fold(f64::MAX, f64::min);
    eprintln!(
        "mail_lab: black-holed SMTP server: {} adverts from r1 while its 2 mails hung, gaps {min:.3}..{max:.3} s (advert_int 1 s)",
        ts.len()
    );
}
