//! Script checks (through the daemon's check engine on the real poll loop) and notify
//! commands end to end with real processes.

use crate::checks_support;

use checks_support::{cfg, run_until, stop, H};
use minivrrp::check::notify::{split_command, NotifyKind, NotifyState};
use minivrrp::check::{ExitStatus, Health, NotifyConfig, NotifyEvent, NotifyQueue, Reason};
use minivrrp::daemon::checks::ProbeId;
use minivrrp::daemon::Loop;
use minivrrp::sys::{clock, process};
use minivrrp::vrrp::priority::Adjustment;

fn tmpdir(test: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("mv{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One track script (`command` as UCI quotes it) tracked by instance `vi1` with `weight`.
fn script(command: &str, interval: &str, timeout: &str, fall: u8, rise: u8, extra: &str) -> String {
    format!(
        "
config script 'chk'
    option command '{command}'
    option interval '{interval}'
    option timeout '{timeout}'
    option fall '{fall}'
    option rise '{rise}'
{extra}
config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
    list track_script 'chk weight -20'
"
    )
}

const CHK: ProbeId = ProbeId::Script(0);

#[test]
fn hung_script_is_killed_at_its_timeout_and_reaped() {
    let c = cfg(&script(
        "/bin/sh -c \"echo started; sleep 30\"",
        "1",
        "0.3",
        1,
        1,
        "",
    ));
    let mut l: Loop<()> = Loop::new();
    let mut h = H::new(&c, l.ctx(), clock::now());
    let started = std::time::Instant::now();
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(10),
        |h| !h.changes.is_empty() && h.engine.children().count() == 0
    ));
    let took = started.elapsed();
    assert_eq!(h.reports(CHK)[0], (Health::Down, Some(Reason::Timeout)));
    // The script's weight lowers the instance's priority.
    assert_eq!(
        h.tracking.adjustment(0),
        Adjustment {
            delta: -20,
            fault: false
        }
    );
    assert_eq!(h.engine.stats().killed, 1);
    // Killed near the 300 ms timeout (plus warm-up < 1 s interval, generous bound).
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert_eq!(h.engine.script_output(CHK).unwrap().0, b"started\n");
    stop(&mut l, &mut h);
}

#[test]
fn script_output_is_captured_and_truncated() {
    let c = cfg(&script(
        "/bin/sh -c \"yes abcdefgh | head -c 5000; exit 3\"",
        "1",
        "0.8",
        1,
        1,
        "",
    ));
    let mut l: Loop<()> = Loop::new();
    let mut h = H::new(&c, l.ctx(), clock::now());
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(12),
        |h| !h.changes.is_empty()
    ));
    assert_eq!(h.reports(CHK)[0], (Health::Down, Some(Reason::ExitCode(3))));
    let (out, cut) = h.engine.script_output(CHK).unwrap();
    assert_eq!(out.len(), 256);
    assert!(cut);
    assert!(out.starts_with(b"abcdefgh\nabcdefgh\n"));
    stop(&mut l, &mut h);
}

/// Spawning does not wait for the exec: a program that cannot run is reported when its child
/// is reaped, with the errno. A bare name nobody pinned is never looked up in PATH.
#[test]
fn missing_program_is_a_spawn_failure_not_a_panic() {
    let c = process::spawn(&["/nonexistent/minivrrp-x"], &[], &Default::default())
        .expect("forked without waiting for the exec");
    let st = (0..500)
        .find_map(|_| {
            let st = process::reap_pid(c.pid);
            if st.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            st
        })
        .expect("child ended");
    assert_eq!(st, ExitStatus::ExecFailed(nix::errno::Errno::ENOENT as i32));
    let r = process::spawn(&["no-such-minivrrp-cmd"], &[], &Default::default());
    assert_eq!(r.err(), Some(nix::errno::Errno::ENOENT));
}

#[test]
fn failing_script_goes_down_after_exactly_fall_and_up_after_rise() {
    let dir = tmpdir("fallrise");
    let flag = dir.join("fail");
    let (fall, rise) = (3u8, 2u8);
    let c = cfg(&script(
        &format!("test ! -e {}", flag.display()),
        "0.1",
        "1",
        fall,
        rise,
        "",
    ));
    let mut l: Loop<()> = Loop::new();
    let mut h = H::new(&c, l.ctx(), clock::now());
    let limit = std::time::Duration::from_secs(10);
    assert!(run_until(&mut l, &mut h, limit, |h| h.changes.len() == 1));
    assert_eq!(h.reports(CHK)[0].0, Health::Up);

    std::fs::write(&flag, "").unwrap();
    let before = h.attempts_of(CHK).len();
    assert!(run_until(&mut l, &mut h, limit, |h| h.changes.len() == 2));
    assert_eq!(h.reports(CHK)[1], (Health::Down, Some(Reason::ExitCode(1))));
    // Attempts since the flag: possibly one success already running when it appeared, then
    // exactly `fall` failures.
    let since = &h.attempts_of(CHK)[before..];
    let fails = since.iter().filter(|a| a.0 != Reason::Ok).count();
    assert_eq!(fails, fall as usize, "{since:?}");
    assert_eq!(since.last().map(|a| a.0), Some(Reason::ExitCode(1)));

    std::fs::remove_file(&flag).unwrap();
    let before = h.attempts_of(CHK).len();
    assert!(run_until(&mut l, &mut h, limit, |h| h.changes.len() == 3));
    assert_eq!(h.reports(CHK)[2].0, Health::Up);
    let since = &h.attempts_of(CHK)[before..];
    let oks = since.iter().filter(|a| a.0 == Reason::Ok).count();
    assert_eq!(oks, rise as usize, "{since:?}");
    stop(&mut l, &mut h);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs a notify queue to completion the way the daemon would: spawn the next job when the
/// previous one was reaped.
fn run_queue(cfg: &NotifyConfig, q: &mut NotifyQueue<16>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while let Some(job) = q.start_next() {
        let cmd = cfg.command(job).expect("command");
        let argv = cmd.argv();
        let env = cmd.env();
        let child = process::spawn(&argv, &env, &Default::default()).expect("spawn notify");
        loop {
            assert!(std::time::Instant::now() < deadline, "notify hung");
            if let Some(st) = process::reap_pid(child.pid) {
                assert_eq!(st, ExitStatus::Code(0));
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        q.finished();
    }
}

#[test]
fn notify_commands_run_one_at_a_time_in_transition_order() {
    let dir = tmpdir("notify");
    let log = dir.join("log");
    let l = log.display();
    // notify_master sleeps first: were jobs run in parallel, later lines would overtake it.
    let cfg = NotifyConfig {
        name: "vi1".into(),
        kind: NotifyKind::Instance,
        master: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("sleep 0.2; echo notify_master >> {l}"),
        ]),
        backup: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("sleep 0.1; echo notify_backup >> {l}"),
        ]),
        fault: None,
        stop: None,
        generic: split_command(&format!("/bin/sh -c 'echo notify \"$@\" >> {l}' notify")),
        hotplug: Some(dir.join("hotplug-call").display().to_string()),
        ..NotifyConfig::default()
    };
    std::fs::write(
        dir.join("hotplug-call"),
        format!("#!/bin/sh\necho hotplug $1 $ACTION $TYPE $NAME >> {l}\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        dir.join("hotplug-call"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut q: NotifyQueue<16> = NotifyQueue::new();
    for (state, priority) in [
        (NotifyState::Master, 150),
        (NotifyState::Backup, 100),
        (NotifyState::Fault, 0),
        (NotifyState::Stop, 0),
    ] {
        q.push_transition(&cfg, NotifyEvent::new(state, priority));
    }
    run_queue(&cfg, &mut q);
    let got = std::fs::read_to_string(&log).unwrap();
    let want = "\
notify_master
notify INSTANCE vi1 MASTER 150
hotplug minivrrp NOTIFY_MASTER INSTANCE vi1
notify_backup
notify INSTANCE vi1 BACKUP 100
hotplug minivrrp NOTIFY_BACKUP INSTANCE vi1
notify INSTANCE vi1 FAULT 0
hotplug minivrrp NOTIFY_FAULT INSTANCE vi1
notify INSTANCE vi1 STOP 0
hotplug minivrrp NOTIFY_STOP INSTANCE vi1
";
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn track_file_reads_an_integer_and_missing_file_reads_zero() {
    use minivrrp::check::track::{file_effect, file_value, Effect, FileValue};
    use minivrrp::sys::file::read_head;
    let dir = tmpdir("trackfile");
    let f = dir.join("weight");
    let path = f.to_str().unwrap();
    let mut buf = [0u8; 128];
    let read = |buf: &mut [u8; 128]| match read_head(path, buf) {
        Ok(n) => file_value(Some(&buf[..n])),
        Err(_) => file_value(None),
    };
    assert_eq!(read(&mut buf), FileValue::Value(0));
    std::fs::write(&f, "-12\n").unwrap();
    assert_eq!(read(&mut buf), FileValue::Value(-12));
    assert_eq!(file_effect(2, -12), Effect::Delta(-24));
    std::fs::write(&f, "garbage").unwrap();
    assert_eq!(read(&mut buf), FileValue::Value(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lookup_user_resolves_names() {
    assert_eq!(process::lookup_user("root"), Some((0, 0)));
    assert_eq!(process::lookup_user("no-such-user-minivrrp"), None);
}

#[test]
fn script_runs_as_configured_user() {
    require!(root);
    let Some(nobody) = process::lookup_user("nobody") else {
        eprintln!("SKIP script_runs_as_configured_user: no user nobody");
        return;
    };
    let c = cfg(&script(
        "/bin/sh -c \"id -u; id -g\"",
        "1",
        "2",
        1,
        1,
        "    option user 'nobody'\n",
    ));
    let mut l: Loop<()> = Loop::new();
    let mut h = H::new(&c, l.ctx(), clock::now());
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(5),
        |h| !h.changes.is_empty()
    ));
    let want = format!("{}\n{}\n", nobody.0, nobody.1);
    let out = h.engine.script_output(CHK).unwrap().0;
    assert_eq!(std::str::from_utf8(out).unwrap(), want);
    assert_eq!(h.reports(CHK)[0].0, Health::Up);
    stop(&mut l, &mut h);
}

/// Spawning does not wait for the child's `execve`: with every exec held 1 s (strace delay
/// injection, what a script on a disk that spun down costs), `spawn` returns while the child
/// is still the forked copy of us, and the exec completes later. The test re-runs itself
/// under strace; the inner run reports what it saw.
#[test]
fn spawn_returns_before_the_exec_completes() {
    const INNER: &str = "MV_SLOW_EXEC_INNER";
    let exe_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    if std::env::var_os(INNER).is_some() {
        let me = exe_of(std::process::id() as i32);
        let c = process::spawn(&["/bin/true"], &[], &Default::default()).expect("spawn");
        let during = exe_of(c.pid);
        let st = loop {
            if let Some(st) = process::reap_pid(c.pid) {
                break st;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        println!("INNER same-image={} status={st:?}", during == me);
        return;
    }
    require!("strace");
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("strace")
        .args([
            "-f",
            "-qq",
            "--seccomp-bpf",
            "-o",
            "/dev/null",
            "-e",
            "trace=execve",
        ])
        .arg("-e")
        .arg("inject=execve:delay_enter=1000000")
        .arg(&exe)
        .args([
            "spawn_returns_before_the_exec_completes",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(INNER, "1")
        .output()
        .expect("strace");
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() && text.is_empty() {
        // strace cannot trace here (no ptrace in this container): nothing to show.
        eprintln!(
            "SKIP spawn_returns_before_the_exec_completes: strace failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    assert!(
        text.contains("INNER same-image=true status=Code(0)"),
        "spawn waited for the exec, or the program did not run:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
