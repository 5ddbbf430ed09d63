//! End to end in the namespace lab: the real `minivrrp` binary with track scripts,
//! track_interface, sync groups, notify scripts and the hotplug hook.
//!
//! Run: `sudo -E cargo test --test lab daemon_checks_lab::` (root: namespaces). Each test builds its
//! own lab (`mv<pid>-<tag>-...`), removed on drop, also when the test fails.

use crate::common;

use common::lab::{Lab, Proc, LAN_IF};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_minivrrp"))
}

/// A stand-in for `/sbin/hotplug-call`: appends `ACTION TYPE NAME` to `out`.
fn hotplug_standin(dir: &Path, node: &str) -> (PathBuf, PathBuf) {
    let script = dir.join(format!("{node}-hotplug.sh"));
    let out = dir.join(format!("{node}-hotplug.out"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = minivrrp ] || exit 1\necho \"$ACTION $TYPE $NAME\" >> {}\n",
            out.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", script.to_str().unwrap()])
        .status()
        .unwrap();
    (script, out)
}

/// Start minivrrp in `node` with `uci` (written to the lab dir) and the hotplug stand-in.
/// Both VIPs of the sync-group tests (vi1 and vi2) end up on `node` within 10 s.
fn group_vips_on(lab: &Lab, node: &str, r1: &Proc) {
    for vip in ["10.0.0.251", "10.0.0.252"] {
        let (h, _) = lab.wait_holders(vip, &[node], Duration::from_secs(10));
        assert_eq!(h, [node], "{vip}; r1 log:\n{}", r1.log_text());
    }
}

fn start(lab: &Lab, node: &str, uci: &str, hotplug: &Path) -> Proc {
    let conf = lab.dir.join(format!("{node}.uci"));
    std::fs::write(&conf, uci).unwrap();
    let env = format!("MINIVRRP_HOTPLUG_CALL={}", hotplug.display());
    lab.spawn(
        node,
        "minivrrp",
        &[
            "env",
            &env,
            bin().to_str().unwrap(),
            "-f",
            conf.to_str().unwrap(),
            "--socket",
            lab.control_socket(node).to_str().unwrap(),
        ],
    )
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn globals(node: &str) -> String {
    format!("config globals 'globals'\n\toption router_id '{node}'\n\toption log_level 'debug'\n\n")
}

/// One instance on br-lan with VIP 10.0.0.254, v3 at 0.1 s, plus `extra` lines.
fn instance(name: &str, vrid: u8, prio: u8, preempt: bool, extra: &str) -> String {
    format!(
        "config instance '{name}'\n\toption interface '{LAN_IF}'\n\toption vrid '{vrid}'\n\
         \toption priority '{prio}'\n\toption version '3'\n\toption advert_int '0.1'\n\
         \toption preempt '{}'\n\tlist vip '10.0.0.{}/24'\n{extra}\n",
        u8::from(preempt),
        250 + vrid
    )
}

fn notify_lines(file: &Path) -> String {
    format!(
        "\toption notify '/bin/sh -c \"echo $0 $1 $2 $3 >> {}\"'\n",
        file.display()
    )
}

fn script_section(name: &str, cmd: &str, extra: &str) -> String {
    format!("config script '{name}'\n\toption command '{cmd}'\n{extra}\n")
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn failing_track_script_moves_vip_to_backup_and_back_with_preempt() {
    require!(root);
    let lab = Lab::with_routers("dcl-pre", 2);
    let fail = lab.dir.join("fail");
    let notify = lab.dir.join("r1-notify");
    let (hp, hp_out) = hotplug_standin(&lab.dir, "r1");
    let (hp2, _) = hotplug_standin(&lab.dir, "r2");
    let r1_cfg = format!(
        "{}{}{}",
        globals("r1"),
        script_section(
            "chk",
            &format!("test ! -e {}", fail.display()),
            "\toption interval '0.2'\n\toption weight '-60'\n\toption fall '2'\n\toption rise '2'\n"
        ),
        instance(
            "vi1",
            1,
            150,
            true,
            &format!("\tlist track_script 'chk'\n{}", notify_lines(&notify))
        )
    );
    let r2_cfg = format!("{}{}", globals("r2"), instance("vi1", 1, 100, true, ""));
    let r1 = start(&lab, "r1", &r1_cfg, &hp);
    let _r2 = start(&lab, "r2", &r2_cfg, &hp2);
    let vip = "10.0.0.251";
    let (h, _) = lab.wait_holders(vip, &["r1"], Duration::from_secs(10));
    assert_eq!(h, ["r1"], "r1 log:\n{}", r1.log_text());
    assert!(wait_for(Duration::from_secs(5), || r1
        .log_text()
        .contains("chk: UP")));

    // The script starts failing: 150 - 60 = 90 < 100, r2 preempts.
    std::fs::write(&fail, b"").unwrap();
    let (h, took) = lab.wait_holders(vip, &["r2"], Duration::from_secs(10));
    assert_eq!(h, ["r2"], "r1 log:\n{}", r1.log_text());
    let log = r1.log_text();
    // fall 2: DOWN exactly after two failed runs.
    assert_eq!(
        count(&log, "W chk: DOWN (exit code 1, 2/2 failures)"),
        1,
        "{log}"
    );
    eprintln!("VIP moved to r2 {took:?} after the fail file appeared");

    // Recovers: rise 2, back to 150, r1 preempts.
    std::fs::remove_file(&fail).unwrap();
    let (h, _) = lab.wait_holders(vip, &["r1"], Duration::from_secs(10));
    assert_eq!(h, ["r1"], "r1 log:\n{}", r1.log_text());
    let log = r1.log_text();
    assert_eq!(count(&log, "I chk: UP (2/2 successes)"), 1, "{log}");

    // Graceful stop: notify_stop and the hotplug hook run before exit. The stop signal goes to
    // the whole process group (the lab's `terminate`), so first let the MASTER hook finish:
    // a hook still running would die by that signal, not by anything the daemon did.
    assert!(
        wait_for(Duration::from_secs(5), || lines(&hp_out).len() == 4),
        "hotplug hook after the preemption: {:?}",
        lines(&hp_out)
    );
    r1.terminate();
    let mut r1 = r1;
    assert!(r1.wait_exit(Duration::from_secs(5)));
    let want = [
        "INSTANCE vi1 BACKUP 150",
        "INSTANCE vi1 MASTER 150",
        "INSTANCE vi1 BACKUP 90",
        "INSTANCE vi1 MASTER 150",
        "INSTANCE vi1 STOP 150",
    ];
    assert_eq!(lines(&notify), want, "r1 log:\n{}", r1.log_text());
    assert_eq!(
        lines(&hp_out),
        [
            "NOTIFY_BACKUP INSTANCE vi1",
            "NOTIFY_MASTER INSTANCE vi1",
            "NOTIFY_BACKUP INSTANCE vi1",
            "NOTIFY_MASTER INSTANCE vi1",
            "NOTIFY_STOP INSTANCE vi1",
        ],
        "r1 log:\n{}",
        r1.log_text()
    );
}

#[test]
fn nopreempt_master_stays_backup_after_recovery_and_hung_script_is_killed() {
    require!(root);
    let lab = Lab::with_routers("dcl-nop", 2);
    let fail = lab.dir.join("fail");
    let (hp, _) = hotplug_standin(&lab.dir, "r1");
    let (hp2, _) = hotplug_standin(&lab.dir, "r2");
    let r1_cfg = format!(
        "{}{}{}{}",
        globals("r1"),
        script_section(
            "chk",
            &format!("test ! -e {}", fail.display()),
            "\toption interval '0.2'\n\toption weight '-60'\n"
        ),
        // Hangs every run: killed at 0.3 s, down, costs 1 priority point.
        script_section(
            "hang",
            "sleep 47",
            "\toption interval '1'\n\toption timeout '0.3'\n\toption weight '-1'\n"
        ),
        instance(
            "vi1",
            1,
            150,
            false,
            "\tlist track_script 'chk'\n\tlist track_script 'hang'\n"
        )
    );
    let r2_cfg = format!("{}{}", globals("r2"), instance("vi1", 1, 100, true, ""));
    let r1 = start(&lab, "r1", &r1_cfg, &hp);
    let _r2 = start(&lab, "r2", &r2_cfg, &hp2);
    let vip = "10.0.0.251";
    let (h, _) = lab.wait_holders(vip, &["r1"], Duration::from_secs(10));
    assert_eq!(h, ["r1"], "r1 log:\n{}", r1.log_text());
    assert!(
        wait_for(Duration::from_secs(5), || r1
            .log_text()
            .contains("hang: DOWN (timeout")),
        "{}",
        r1.log_text()
    );
    let log = r1.log_text();
    assert!(
        log.contains("W hang: still running after 300 ms, killed"),
        "{log}"
    );
    // No `sleep 47` (only this test uses 47) survives its kill for long.
    assert!(wait_for(Duration::from_secs(3), || {
        let out = lab.exec(
            "r1",
            &["sh", "-c", "ps -eo args | grep -c '^sleep 47' || true"],
        );
        String::from_utf8_lossy(&out.stdout).trim() == "0"
    }));

    std::fs::write(&fail, b"").unwrap();
    let (h, _) = lab.wait_holders(vip, &["r2"], Duration::from_secs(10));
    assert_eq!(h, ["r2"], "r1 log:\n{}", r1.log_text());
    std::fs::remove_file(&fail).unwrap();
    assert!(wait_for(Duration::from_secs(5), || count(
        &r1.log_text(),
        "I chk: UP"
    ) == 2));
    // nopreempt: r1 (149 again) does not take the VIP back from r2 (100).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lab.holders(vip), ["r2"], "r1 log:\n{}", r1.log_text());
}

/// `ip -n NS ARGS...`, which must succeed.
fn ip_in(ns: &str, args: &[&str]) {
    let ok = std::process::Command::new("ip")
        .args(["-n", ns])
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ip -n {ns} {args:?}");
}

/// A second veth `trk0` (peer `trk0p`), up, in r1 for `track_interface`; r1's namespace.
fn add_tracked_link(lab: &Lab) -> String {
    let ns = lab.node("r1").ns.clone();
    ip_in(
        &ns,
        &[
            "link", "add", "trk0", "type", "veth", "peer", "name", "trk0p",
        ],
    );
    ip_in(&ns, &["link", "set", "trk0p", "up"]);
    ip_in(&ns, &["link", "set", "trk0", "up"]);
    ns
}

#[test]
fn sync_group_follows_member_faulted_by_track_interface() {
    require!(root);
    let lab = Lab::with_routers("dcl-sync", 2);
    // A second veth in r1 that vi1 tracks.
    let ns1 = add_tracked_link(&lab);
    let notify = lab.dir.join("r1-notify");
    let (hp, hp_out) = hotplug_standin(&lab.dir, "r1");
    let (hp2, _) = hotplug_standin(&lab.dir, "r2");
    let group =
        |n: &str| format!("config sync_group 'g'\n\tlist member 'vi1'\n\tlist member 'vi2'\n{n}\n");
    let r1_cfg = format!(
        "{}{}{}{}",
        globals("r1"),
        instance("vi1", 1, 150, true, "\tlist track_interface 'trk0'\n"),
        instance("vi2", 2, 150, true, ""),
        group(&notify_lines(&notify))
    );
    let r2_cfg = format!(
        "{}{}{}{}",
        globals("r2"),
        instance("vi1", 1, 100, true, ""),
        instance("vi2", 2, 100, true, ""),
        group("")
    );
    let r1 = start(&lab, "r1", &r1_cfg, &hp);
    let _r2 = start(&lab, "r2", &r2_cfg, &hp2);
    group_vips_on(&lab, "r1", &r1);
    // The tracked link goes down: vi1 FAULT (weight 0), vi2 follows through the group.
    let run = |up: &str| ip_in(&ns1, &["link", "set", "trk0", up]);
    run("down");
    group_vips_on(&lab, "r2", &r1);
    run("up");
    group_vips_on(&lab, "r1", &r1);
    let got = lines(&notify);
    let want = [
        "GROUP g BACKUP",
        "GROUP g MASTER",
        "GROUP g FAULT",
        "GROUP g BACKUP",
        "GROUP g MASTER",
    ];
    assert_eq!(got, want, "r1 log:\n{}", r1.log_text());
    let hp_lines = lines(&hp_out);
    assert!(
        hp_lines.iter().any(|l| l == "NOTIFY_FAULT GROUP g")
            && hp_lines.iter().any(|l| l == "NOTIFY_FAULT INSTANCE vi2"),
        "{hp_lines:?}"
    );
}

/// A tracker on the sync group itself (keepalived `track_interface` in a `vrrp_sync_group`):
/// its link going down puts every member in FAULT (each member says so itself), and the
/// group moves to r2 and back with it.
#[test]
fn sync_group_tracker_faults_every_member() {
    require!(root);
    let lab = Lab::with_routers("dcl-gtrk", 2);
    let ns1 = add_tracked_link(&lab);
    let (hp, hp_out) = hotplug_standin(&lab.dir, "r1");
    let (hp2, _) = hotplug_standin(&lab.dir, "r2");
    let group =
        |n: &str| format!("config sync_group 'g'\n\tlist member 'vi1'\n\tlist member 'vi2'\n{n}\n");
    let r1_cfg = format!(
        "{}{}{}{}",
        globals("r1"),
        instance("vi1", 1, 150, true, ""),
        instance("vi2", 2, 150, true, ""),
        group("\tlist track_interface 'trk0'\n")
    );
    let r2_cfg = format!(
        "{}{}{}{}",
        globals("r2"),
        instance("vi1", 1, 100, true, ""),
        instance("vi2", 2, 100, true, ""),
        group("")
    );
    let r1 = start(&lab, "r1", &r1_cfg, &hp);
    let _r2 = start(&lab, "r2", &r2_cfg, &hp2);
    group_vips_on(&lab, "r1", &r1);
    let run = |up: &str| ip_in(&ns1, &["link", "set", "trk0", up]);
    run("down");
    group_vips_on(&lab, "r2", &r1);
    run("up");
    group_vips_on(&lab, "r1", &r1);
    let hp_lines = lines(&hp_out);
    for want in [
        "NOTIFY_FAULT INSTANCE vi1",
        "NOTIFY_FAULT INSTANCE vi2",
        "NOTIFY_FAULT GROUP g",
    ] {
        assert!(
            hp_lines.iter().any(|l| l == want),
            "no {want}: {hp_lines:?}\nr1 log:\n{}",
            r1.log_text()
        );
    }
}

#[test]
fn reload_with_new_script_weight_applies_it_and_keeps_the_probe_state() {
    require!(root);
    let lab = Lab::with_routers("dcl-hup", 2);
    let fail = lab.dir.join("fail");
    let (hp, _) = hotplug_standin(&lab.dir, "r1");
    let (hp2, _) = hotplug_standin(&lab.dir, "r2");
    let r1_cfg = |weight: i32| {
        format!(
            "{}{}{}{}",
            globals("r1"),
            script_section(
                "chk",
                &format!("test ! -e {}", fail.display()),
                &format!("\toption interval '0.2'\n\toption weight '{weight}'\n")
            ),
            script_section(
                "other",
                "true",
                "\toption interval '0.2'\n\toption weight '5'\n"
            ),
            instance(
                "vi1",
                1,
                150,
                true,
                "\tlist track_script 'chk'\n\tlist track_script 'other'\n"
            )
        )
    };
    let r2_cfg = format!("{}{}", globals("r2"), instance("vi1", 1, 100, true, ""));
    std::fs::write(&fail, b"").unwrap();
    let r1 = start(&lab, "r1", &r1_cfg(-60), &hp);
    let _r2 = start(&lab, "r2", &r2_cfg, &hp2);
    let vip = "10.0.0.251";
    // 150 + 5 - 60 = 95 < 100: r2 is master.
    let (h, _) = lab.wait_holders(vip, &["r2"], Duration::from_secs(10));
    assert_eq!(h, ["r2"], "r1 log:\n{}", r1.log_text());
    assert!(wait_for(Duration::from_secs(5), || {
        let l = r1.log_text();
        l.contains("chk: DOWN") && l.contains("other: UP")
    }));
    // -10 instead: 145 > 100, r1 preempts after SIGHUP.
    std::fs::write(lab.dir.join("r1.uci"), r1_cfg(-10)).unwrap();
    r1.signal(libc::SIGHUP);
    let (h, _) = lab.wait_holders(vip, &["r1"], Duration::from_secs(10));
    assert_eq!(h, ["r1"], "r1 log:\n{}", r1.log_text());
    let log = r1.log_text();
    // Only weights changed: both probes keep their state (no new DOWN/UP line), and the
    // new weight applies at once.
    assert!(log.contains("checks: reload kept 2, started 0"), "{log}");
    assert_eq!(count(&log, "other: UP"), 1, "{log}");
    assert_eq!(count(&log, "chk: DOWN"), 1, "{log}");
}

/// A command that appends `ARGS|PREV|REASON|MASTER|PRIORITY` (its arguments and the
/// `MINIVRRP_*` context variables) to `out`; used as notify_* / notify and as the hotplug
/// stand-in (whose `ACTION` stands in front).
fn context_recorder(dir: &Path, name: &str, out: &Path) -> PathBuf {
    let script = dir.join(name);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"${{ACTION:+$ACTION }}$*|$MINIVRRP_PREV_STATE|$MINIVRRP_REASON|\
             $MINIVRRP_MASTER|$MINIVRRP_PRIORITY\" >> {}\n",
            out.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", script.to_str().unwrap()])
        .status()
        .unwrap();
    script
}

#[test]
fn notify_scripts_and_hotplug_get_previous_state_reason_master_and_priority() {
    require!(root);
    let lab = Lab::with_routers("dcl-ctx", 2);
    let out = lab.dir.join("r2-context");
    let rec = context_recorder(&lab.dir, "record.sh", &out);
    let hp_out = lab.dir.join("r2-hotplug-context");
    let hp = context_recorder(&lab.dir, "hotplug.sh", &hp_out);
    let (hp1, _) = hotplug_standin(&lab.dir, "r1");
    let r = rec.display();
    let r2_cfg = format!(
        "{}{}",
        globals("r2"),
        instance(
            "vi1",
            1,
            100,
            true,
            &format!(
                "\toption notify_master '{r} specific-master'\n\
                 \toption notify_backup '{r} specific-backup'\n\toption notify '{r} generic'\n"
            )
        )
    );
    // r2 alone: BACKUP at startup, MASTER when its Master_Down_Timer fires.
    let r2 = start(&lab, "r2", &r2_cfg, &hp);
    let vip = "10.0.0.251";
    let (h, _) = lab.wait_holders(vip, &["r2"], Duration::from_secs(10));
    assert_eq!(h, ["r2"], "r2 log:\n{}", r2.log_text());
    // r1 (150, preempt) comes up and takes over: r2 goes back to BACKUP for r1's advert.
    let r1_cfg = format!("{}{}", globals("r1"), instance("vi1", 1, 150, true, ""));
    let _r1 = start(&lab, "r1", &r1_cfg, &hp1);
    let (h, _) = lab.wait_holders(vip, &["r1"], Duration::from_secs(10));
    assert_eq!(h, ["r1"], "r2 log:\n{}", r2.log_text());
    assert!(
        wait_for(Duration::from_secs(5), || lines(&out).len() == 6
            && lines(&hp_out).len() == 3),
        "r2 log:\n{}\nnotify:\n{:?}\nhotplug:\n{:?}",
        r2.log_text(),
        lines(&out),
        lines(&hp_out)
    );
    // Master_Down_Interval at 0.1 s adverts, priority 100 (v3): 3 * 0.1 + skew 0.06 s.
    let down = "master down timer expired (0.36 s)";
    let higher = "higher priority 150 from 10.0.0.1";
    assert_eq!(
        lines(&out),
        [
            "specific-backup|INIT|startup||100".to_string(),
            "generic INSTANCE vi1 BACKUP 100|INIT|startup||100".to_string(),
            format!("specific-master|BACKUP|{down}|10.0.0.2|100"),
            format!("generic INSTANCE vi1 MASTER 100|BACKUP|{down}|10.0.0.2|100"),
            format!("specific-backup|MASTER|{higher}|10.0.0.1|100"),
            format!("generic INSTANCE vi1 BACKUP 100|MASTER|{higher}|10.0.0.1|100"),
        ],
        "r2 log:\n{}",
        r2.log_text()
    );
    assert_eq!(
        lines(&hp_out),
        [
            "NOTIFY_BACKUP minivrrp|INIT|startup||100".to_string(),
            format!("NOTIFY_MASTER minivrrp|BACKUP|{down}|10.0.0.2|100"),
            format!("NOTIFY_BACKUP minivrrp|MASTER|{higher}|10.0.0.1|100"),
        ]
    );
}

#[test]
fn link_events_lost_while_frozen_are_made_good_by_a_resync() {
    require!(root);
    let lab = Lab::with_routers("dcl-lost", 2);
    let ns1 = add_tracked_link(&lab);
    let ip = |args: &[&str]| ip_in(&ns1, args);
    let (hp, _) = hotplug_standin(&lab.dir, "r1");
    let (hp2, _) = hotplug_standin(&lab.dir, "r2");
    let r1_cfg = format!(
        "{}{}",
        globals("r1"),
        instance("vi1", 1, 150, true, "\tlist track_interface 'trk0'\n")
    );
    let r2_cfg = format!("{}{}", globals("r2"), instance("vi1", 1, 100, true, ""));
    let r1 = start(&lab, "r1", &r1_cfg, &hp);
    let _r2 = start(&lab, "r2", &r2_cfg, &hp2);
    let vip = "10.0.0.251";
    let (h, _) = lab.wait_holders(vip, &["r1"], Duration::from_secs(10));
    assert_eq!(h, ["r1"], "r1 log:\n{}", r1.log_text());

    // Frozen, r1 cannot read its rtnetlink socket: 3000 link changes overflow its buffer,
    // so the kernel drops the newest events, the tracked link going down among them.
    let batch = lab.dir.join("flood.batch");
    let mut text = String::new();
    for k in 0..3000 {
        text.push_str(&format!("link set trk0p mtu {}\n", 1280 + k % 200));
    }
    text.push_str("link set trk0 down\n");
    std::fs::write(&batch, text).unwrap();
    r1.signal(libc::SIGSTOP);
    ip(&["-batch", batch.to_str().unwrap()]);
    r1.signal(libc::SIGCONT);

    // Resumed, r1 learns that events were lost, re-reads its links, finds trk0 down and
    // goes to FAULT: r2 keeps (or takes) the VIP. Without the resync r1 would believe trk0
    // is up and hold the VIP at priority 150.
    assert!(
        wait_for(Duration::from_secs(5), || r1
            .log_text()
            .contains("link events were lost")),
        "r1 log:\n{}",
        r1.log_text()
    );
    let (h, _) = lab.wait_holders(vip, &["r2"], Duration::from_secs(10));
    assert_eq!(h, ["r2"], "r1 log:\n{}", r1.log_text());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lab.holders(vip), ["r2"], "r1 log:\n{}", r1.log_text());
    assert!(
        r1.log_text().contains("FAULT"),
        "r1 log:\n{}",
        r1.log_text()
    );
}
