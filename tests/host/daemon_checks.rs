//! The check engine, tracking and notifier driven by the real poll loop (`daemon::Loop`)
//! through a tiny handler, as the runtime drives them.
//!
//! Script tests run unprivileged (scripts touch only a temp dir). Network tests run the loop
//! on a thread inside a namespace of their own (loopback only) and need root.
//!
//! The test handler reaps only the engine's own children (`reap_pid`): tests share the
//! process with other spawners, and SIGCHLD cannot be routed to one test thread.

use crate::checks_support;

use crate::common::netns::Netns;
use checks_support::{cfg, run_until, stop, H};
use minivrrp::base::Duration;
use minivrrp::check::Health;
use minivrrp::daemon::checks::ProbeId;
use minivrrp::daemon::kernel::Processes;
use minivrrp::daemon::notify::Notifier;
use minivrrp::daemon::Loop;
use minivrrp::sys::{clock, process};
use minivrrp::vrrp::instance::Transition;
use minivrrp::vrrp::instance::{Reason, State};
use minivrrp::vrrp::priority::Adjustment;
use std::path::{Path, PathBuf};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mvchk-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmpdir");
    d
}

fn script_cfg(dir: &Path, fall: u32, rise: u32) -> String {
    format!(
        "
config script 'chk'
    option command '/bin/sh -c \"echo run >> {d}/runs; test ! -e {d}/fail\"'
    option interval '0.1'
    option timeout '2'
    option weight '-60'
    option fall '{fall}'
    option rise '{rise}'

config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    option priority '150'
    list vip '10.0.0.10'
    list track_script 'chk'
",
        d = dir.display()
    )
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn script_down_after_fall_failures_up_after_rise_successes_weight_lowers_priority() {
    let dir = tmpdir("fallrise");
    let c = cfg(&script_cfg(&dir, 3, 2));
    let mut l: Loop<()> = Loop::new();
    let now = clock::now();
    let mut h = H::new(&c, l.ctx(), now);
    let p = ProbeId::Script(0);
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(5),
        |h| { h.engine.health(p) == Health::Up }
    ));
    // Unknown -> Up on the first good run.
    assert_eq!(h.health_seq(p), [Health::Up]);
    assert_eq!(h.tracking.adjustment(0), Adjustment::default());

    std::fs::write(dir.join("fail"), b"").unwrap();
    let before = runs(&dir);
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(5),
        |h| { h.engine.health(p) == Health::Down }
    ));
    // fall 3: exactly three failing runs (the run in flight when the file appeared may
    // still have passed) before DOWN.
    let failing = runs(&dir) - before;
    assert!(
        (3..=4).contains(&failing),
        "{failing} runs until DOWN with fall 3"
    );
    assert_eq!(
        h.tracking.adjustment(0),
        Adjustment {
            delta: -60,
            fault: false
        }
    );

    std::fs::remove_file(dir.join("fail")).unwrap();
    let before = runs(&dir);
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(5),
        |h| { h.engine.health(p) == Health::Up }
    ));
    let good = runs(&dir) - before;
    assert!((2..=3).contains(&good), "{good} runs until UP with rise 2");
    assert_eq!(h.health_seq(p), [Health::Up, Health::Down, Health::Up]);
    assert_eq!(
        h.adjustments,
        [
            Adjustment {
                delta: -60,
                fault: false
            },
            Adjustment::default()
        ]
    );
    stop(&mut l, &mut h);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hung_script_is_killed_at_its_timeout_and_counts_as_failure() {
    let dir = tmpdir("hung");
    let c = cfg(&format!(
        "
config script 'hang'
    option command '/bin/sh -c \"echo $$ > {d}/pid; exec sleep 30\"'
    option interval '1'
    option timeout '0.3'

config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
    list track_script 'hang'
",
        d = dir.display()
    ));
    let mut l: Loop<()> = Loop::new();
    let mut h = H::new(&c, l.ctx(), clock::now());
    let p = ProbeId::Script(0);
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(5),
        |h| { h.engine.health(p) == Health::Down }
    ));
    // weight 0: a failed script puts the instance in FAULT.
    assert!(h.tracking.adjustment(0).fault);
    assert_eq!(h.engine.stats().killed, 1);
    // The killed child is reaped (the kill reached the script: it was exec'd in place).
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(3),
        |h| { h.engine.children().count() == 0 || h.engine.stats().attempts > 1 }
    ));
    let pid: i32 = std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .map(|s| !s.contains("sleep"))
                .unwrap_or(true),
        "hung script {pid} still alive"
    );
    stop(&mut l, &mut h);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reload_keeps_state_of_unchanged_script_and_restarts_changed_one() {
    let dir = tmpdir("reload");
    let text = |cmd2: &str| {
        format!(
            "
config script 'a'
    option command 'false'
    option interval '0.1'

config script 'b'
    option command '{cmd2}'
    option interval '0.1'

config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
    list track_script 'a weight -10'
    list track_script 'b weight -20'
"
        )
    };
    let c1 = cfg(&text("false"));
    let mut l: Loop<()> = Loop::new();
    let mut h = H::new(&c1, l.ctx(), clock::now());
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(5),
        |h| {
            h.engine.health(ProbeId::Script(0)) == Health::Down
                && h.engine.health(ProbeId::Script(1)) == Health::Down
        }
    ));
    assert_eq!(h.tracking.adjustment(0).delta, -30);
    let c2 = cfg(&text("true"));
    let now = clock::now();
    h.engine.reload(l.ctx(), &c2, now, &mut Processes).unwrap();
    h.tracking.reload(l.ctx(), &c2, &h.engine, now);
    // 'a' is unchanged: still Down at once; 'b' changed: starts Unknown.
    assert_eq!(h.engine.health(ProbeId::Script(0)), Health::Down);
    assert_eq!(h.engine.health(ProbeId::Script(1)), Health::Unknown);
    assert_eq!(h.tracking.adjustment(0).delta, -10);
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(5),
        |h| { h.engine.health(ProbeId::Script(1)) == Health::Up }
    ));
    assert_eq!(h.tracking.adjustment(0).delta, -10);
    stop(&mut l, &mut h);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn track_file_value_times_weight_is_read_every_second() {
    let dir = tmpdir("file");
    let f = dir.join("prio");
    std::fs::write(&f, b"5\n").unwrap();
    let c = cfg(&format!(
        "
config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
    list track_file '{} weight -3'
",
        f.display()
    ));
    let mut l: Loop<()> = Loop::new();
    let mut h = H::new(&c, l.ctx(), clock::now());
    assert_eq!(h.tracking.adjustment(0).delta, -15);
    std::fs::write(&f, b"100\n").unwrap();
    // 100 * -3 is below -253: FAULT.
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(4),
        |h| { h.tracking.adjustment(0).fault }
    ));
    std::fs::remove_file(&f).unwrap();
    // A missing file reads as 0.
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(4),
        |h| { h.tracking.adjustment(0) == Adjustment::default() }
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn notify_scripts_run_in_transition_order_with_keepalived_arguments() {
    let dir = tmpdir("notify");
    let log = dir.join("log");
    let hp = dir.join("hotplug");
    // A slow notify_master: the BACKUP job queued behind it must still come after it.
    std::fs::write(
        &hp,
        format!(
            "#!/bin/sh\necho \"HOTPLUG $ACTION $TYPE $NAME|$MINIVRRP_PREV_STATE|$MINIVRRP_REASON|$MINIVRRP_MASTER|$MINIVRRP_PRIORITY\" >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", hp.to_str().unwrap()])
        .status()
        .unwrap();
    let c = cfg(&format!(
        "
config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
    option notify_master '/bin/sh -c \"sleep 0.2; echo master >> {l}\"'
    option notify '/bin/sh -c \"echo $0 $1 $2 $3 >> {l}\"'
",
        l = log.display()
    ));
    let mut n = Notifier::new(&c, Some(hp.display().to_string())).unwrap();
    let r1: core::net::IpAddr = [10, 0, 0, 1].into();
    for (from, to, reason, priority, master) in [
        (State::Init, State::Backup, Reason::Startup, 100, None),
        (
            State::Backup,
            State::Master,
            Reason::MasterDown {
                interval: Duration::from_millis(3609),
            },
            150,
            Some(r1),
        ),
        (
            State::Master,
            State::Fault,
            Reason::Fault(minivrrp::vrrp::instance::FaultCause::InterfaceDown),
            0,
            None,
        ),
    ] {
        n.instance_transition(&Transition {
            inst: 0,
            from,
            to,
            reason,
            priority,
            master,
        });
    }
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < end {
        // What the daemon's settle step does after every event: start what may start.
        n.pump(minivrrp::sys::clock::now(), &mut Processes);
        let pids: Vec<i32> = n.children().collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            if let Some(st) = process::reap_pid(pid) {
                assert!(n.on_child_exit(pid, st));
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    n.shutdown(&mut Processes);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The generic notify gets `TYPE NAME STATE PRIORITY` appended; under `sh -c` they are
    // $0..$3. Notify jobs run one after another, so the slow notify_master still ends before
    // the MASTER generic notify, and STOP (from shutdown) comes last.
    assert_eq!(
        lines,
        [
            "INSTANCE vi1 BACKUP 100",
            "HOTPLUG NOTIFY_BACKUP INSTANCE vi1|INIT|startup||100",
            "master",
            "INSTANCE vi1 MASTER 150",
            "HOTPLUG NOTIFY_MASTER INSTANCE vi1|BACKUP|master down timer expired (3.61 s)|10.0.0.1|150",
            "INSTANCE vi1 FAULT 0",
            "HOTPLUG NOTIFY_FAULT INSTANCE vi1|MASTER|interface down||0",
            "INSTANCE vi1 STOP 0",
            // The daemon stops: STOP follows the last announced state.
            "HOTPLUG NOTIFY_STOP INSTANCE vi1|FAULT|shutdown||0",
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tcp_and_icmp_checks_in_a_namespace_follow_the_listener() {
    require!(root);
    let ns = Netns::new("dchk", &["a"]);
    let c = cfg("
config check 'web'
    option type 'tcp'
    option address '127.0.0.1'
    option port '18080'
    option interval '0.2'
    option connect_timeout '0.5'
    option retry '0'
    option fall '2'

config check 'ping'
    option type 'icmp'
    option address '127.0.0.1'
    option interval '0.2'
    option connect_timeout '0.5'
    option retry '0'

config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
    list track_check 'web weight -60'
    list track_check 'ping weight 5'
");
    let (seq, adj, ping) = ns.run_in(0, move || {
        let listener = std::net::TcpListener::bind("127.0.0.1:18080").expect("bind");
        let mut l: Loop<()> = Loop::new();
        let mut h = H::new(&c, l.ctx(), clock::now());
        let web = ProbeId::Check(0);
        let ping = ProbeId::Check(1);
        assert!(run_until(
            &mut l,
            &mut h,
            std::time::Duration::from_secs(5),
            |h| { h.engine.health(web) == Health::Up && h.engine.health(ping) == Health::Up }
        ));
        drop(listener);
        assert!(run_until(
            &mut l,
            &mut h,
            std::time::Duration::from_secs(5),
            |h| { h.engine.health(web) == Health::Down }
        ));
        let adj = h.tracking.adjustment(0);
        let _l2 = std::net::TcpListener::bind("127.0.0.1:18080").expect("bind again");
        assert!(run_until(
            &mut l,
            &mut h,
            std::time::Duration::from_secs(5),
            |h| { h.engine.health(web) == Health::Up }
        ));
        stop(&mut l, &mut h);
        (h.health_seq(web), adj, h.health_seq(ping))
    });
    assert_eq!(seq, [Health::Up, Health::Down, Health::Up]);
    assert_eq!(ping, [Health::Up]);
    // ping up adds 5, web down subtracts 60.
    assert_eq!(
        adj,
        Adjustment {
            delta: -55,
            fault: false
        }
    );
}

const HTTP_SERVER: &str = r#"
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        code, body = {"/ok": (200, b"all good\n"), "/500": (500, b"broken\n")}.get(self.path, (404, b"no\n"))
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
s = S((sys.argv[1], int(sys.argv[2])), H)
print("ready", flush=True)
s.serve_forever()
"#;

#[test]
fn real_server_checks_use_the_server_address_and_share_one_loop_timer() {
    require!(root, "python3");
    let mut ns = Netns::new("drs", &["c", "s"]);
    ns.link(0, "v0", "10.77.2.1/24", 1, "v1", "10.77.2.2/24");
    let ready = ns.spawn_server(1, &["python3", "-c", HTTP_SERVER, "0.0.0.0", "8080"]);
    assert_eq!(ready.trim(), "ready");
    const CLOSED: u16 = 40;
    let mut text = String::from(
        "
config check 'http_ok'
    option type 'http'
    option path '/ok'
    option expect 'all good'
    option interval '0.2'
    option connect_timeout '1'
    option retry '0'

config check 'http_500'
    option type 'http'
    option path '/500'
    option interval '0.2'
    option connect_timeout '1'
    option retry '0'

config check 'tcp'
    option type 'tcp'
    option interval '0.2'
    option connect_timeout '0.5'
    option retry '1'
    option delay_before_retry '0.1'

config virtual_server 'web'
    option address '10.77.2.100'
    option port '80'
    option check 'http_ok'

config real_server
    option virtual_server 'web'
    option address '10.77.2.2'
    option port '8080'

config real_server
    option virtual_server 'web'
    option address '10.77.2.3'
    option port '8080'
    option check 'http_500'

config virtual_server 'closed'
    option address '10.77.2.100'
    option port '81'
    option check 'tcp'
",
    );
    for p in 0..CLOSED {
        text.push_str(&format!(
            "
config real_server
    option virtual_server 'closed'
    option address '10.77.2.2'
    option port '{}'
",
            9000 + p
        ));
    }
    // The check sections have no address: each probe must use its real server's (.3 is a
    // second address of the same server, where only `/500` is asked for).
    ns.exec(1, &["ip", "addr", "add", "10.77.2.3/24", "dev", "v1"]);
    let c = cfg(&text);
    let (ok, bad, closed, max_timers, attempts, dump) = ns.run_in(0, move || {
        let mut l: Loop<()> = Loop::new();
        let mut h = H::new(&c, l.ctx(), clock::now());
        let mut max_timers = 0;
        let all_closed_down = |h: &H| {
            (0..CLOSED)
                .all(|r| h.engine.health(ProbeId::RealServer { vs: 1, rs: r }) == Health::Down)
        };
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < end {
            max_timers = max_timers.max(l.ctx().timers_armed());
            if all_closed_down(&h)
                && h.engine.health(ProbeId::RealServer { vs: 0, rs: 1 }) == Health::Down
                && h.engine.stats().attempts > 3 * u64::from(CLOSED)
            {
                break;
            }
            l.turn(&mut h, Some(Duration::from_millis(20)))
                .expect("turn");
        }
        let r = (
            h.engine.health(ProbeId::RealServer { vs: 0, rs: 0 }),
            h.engine.health(ProbeId::RealServer { vs: 0, rs: 1 }),
            all_closed_down(&h),
            max_timers,
            h.engine.stats().attempts,
            {
                let mut d = String::new();
                h.engine.dump(&mut d).unwrap();
                d
            },
        );
        stop(&mut l, &mut h);
        r
    });
    assert_eq!(ok, Health::Up);
    assert_eq!(bad, Health::Down);
    let line = |needle: &str| {
        dump.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {dump}"))
            .to_string()
    };
    assert!(line("web/10.77.2.2:8080").ends_with("last=ok"), "{dump}");
    // Down for its status, not for a refused connect: it reached the server on .3.
    assert!(line("web/10.77.2.3:8080").contains("last=http"), "{dump}");
    assert!(
        line("closed/10.77.2.2:9000").contains("connect failed"),
        "{dump}"
    );
    assert!(closed, "not every closed port went down");
    // Engine timer + the test's reap timer, however many checks run.
    assert!(max_timers <= 2, "{max_timers} loop timers armed");
    assert!(attempts > 3 * u64::from(CLOSED));
}

/// A real server's script check (keepalived MISC_CHECK) with `dynamic`: the exit code read
/// from a file sets health and weight as keepalived's `misc_dynamic` does; a check without
/// `dynamic` takes any code but 0 as down.
#[test]
fn misc_check_flips_a_real_server_and_its_dynamic_weight() {
    let dir = tmpdir("misc");
    let d = dir.display();
    std::fs::write(dir.join("code"), b"12").unwrap();
    let c = cfg(&format!(
        "
config check 'misc'
    option type 'script'
    option command '/bin/sh -c \"echo run >> {d}/runs; exit $(cat {d}/code)\"'
    option dynamic '1'
    option interval '0.1'
    option timeout '2'

config check 'plain'
    option type 'script'
    option command '/bin/sh -c \"exit 12\"'
    option interval '0.1'

config virtual_server 'web'
    option address '10.0.0.1'
    option port '80'

config real_server 'w1'
    option virtual_server 'web'
    option address '10.0.1.1'
    option weight '5'
    option check 'misc'

config real_server 'w2'
    option virtual_server 'web'
    option address '10.0.1.2'
    option check 'plain'
"
    ));
    let mut l: Loop<()> = Loop::new();
    let mut h = H::new(&c, l.ctx(), clock::now());
    let w1 = ProbeId::RealServer { vs: 0, rs: 0 };
    let w2 = ProbeId::RealServer { vs: 0, rs: 1 };
    let limit = std::time::Duration::from_secs(5);
    // Exit 12: up (as it started) with weight 10; the plain check's 12 is a failure.
    assert!(run_until(&mut l, &mut h, limit, |h| {
        h.engine.weight_set(w1) == Some(10) && h.engine.health(w2) == Health::Down
    }));
    assert_eq!(h.engine.health(w1), Health::Up);
    assert_eq!(
        h.engine.weight_set(w2),
        None,
        "no dynamic weight without `dynamic`"
    );
    assert!(
        h.changes.iter().any(|c| c.probe == w1),
        "a weight change is handed on like a health change"
    );
    // Exit 1: down; the weight stays what the script set.
    std::fs::write(dir.join("code"), b"1").unwrap();
    assert!(run_until(&mut l, &mut h, limit, |h| h.engine.health(w1)
        == Health::Down));
    assert_eq!(h.engine.weight_set(w1), Some(10));
    // Exit 0: up, weight unchanged.
    std::fs::write(dir.join("code"), b"0").unwrap();
    assert!(run_until(&mut l, &mut h, limit, |h| h.engine.health(w1) == Health::Up));
    let runs_at_up = runs(&dir);
    assert!(run_until(&mut l, &mut h, limit, |_| runs(&dir) >= runs_at_up + 3));
    assert_eq!(h.engine.weight_set(w1), Some(10));
    // Exit 255: weight 253 (keepalived's example).
    std::fs::write(dir.join("code"), b"255").unwrap();
    assert!(run_until(&mut l, &mut h, limit, |h| h
        .engine
        .weight_set(w1)
        == Some(253)));
    assert_eq!(
        h.health_seq(w1)
            .iter()
            .filter(|x| **x == Health::Down)
            .count(),
        1,
        "one down between the ups: {:?}",
        h.health_seq(w1)
    );
    stop(&mut l, &mut h);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A program that cannot be executed fails its check with the errno, counted as a spawn
/// error, whether it was missing at load (a bare name PATH did not find: nothing is looked up
/// again) or disappeared after (the exec fails in the child; spawning did not wait for it).
#[test]
fn a_program_that_cannot_run_fails_its_check_as_a_spawn_error() {
    let dir = tmpdir("noexec");
    let prog = dir.join("gone.sh");
    std::fs::write(&prog, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let c = cfg(&format!(
        "
config script 'gone'
    option command '{}'
    option interval '0.2'

config script 'missing'
    option command 'no-such-minivrrp-program --flag'
    option interval '0.2'

config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
    list track_script 'gone'
    list track_script 'missing'
",
        prog.display()
    ));
    std::fs::remove_file(&prog).unwrap();
    let mut l: Loop<()> = Loop::new();
    let mut h = H::new(&c, l.ctx(), clock::now());
    assert!(run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_secs(5),
        |h| h.engine.health(ProbeId::Script(0)) == Health::Down
            && h.engine.health(ProbeId::Script(1)) == Health::Down
    ));
    assert!(h.engine.stats().spawn_errors >= 2, "{:?}", h.engine.stats());
    stop(&mut l, &mut h);
    let _ = std::fs::remove_dir_all(&dir);
}
