//! Which stream each log line takes. Under procd (`stdout 1`, `stderr 1`) stdout lines reach
//! `logread` as daemon.info and stderr lines as daemon.err, so normal operation must be on
//! stdout and only warnings and errors on stderr.
//!
//! The daemon runs in a new network namespace (`unshare -n`) on an interface that does not
//! exist there, so it touches nothing: it logs its start (info), the missing interface
//! (warning) and the instance going to FAULT (info), then leaves on SIGTERM (info).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_minivrrp");

#[test]
fn info_lines_on_stdout_warnings_on_stderr() {
    require!(root, "unshare");
    let dir = std::env::temp_dir().join(format!("minivrrp-logstreams-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("minivrrp.conf");
    std::fs::write(
        &conf,
        "config instance 'vi1'\n\toption interface 'mvlog0'\n\toption vrid '50'\n\
         \tlist vip '10.0.0.254/24'\n",
    )
    .unwrap();
    let mut child = Command::new("unshare")
        .arg("-n")
        .arg(BIN)
        .arg("-f")
        .arg(&conf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn minivrrp");
    // Let it start and reach FAULT, then stop it the way procd does.
    let deadline = Instant::now() + Duration::from_secs(10);
    std::thread::sleep(Duration::from_millis(700));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "minivrrp did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    assert!(
        out.lines()
            .any(|l| l.starts_with("I minivrrp ") && l.contains("starting")),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        out.lines()
            .any(|l| l == "I vi1: BACKUP -> FAULT (interface down)"),
        "stdout:\n{out}"
    );
    assert!(out.lines().any(|l| l == "I stopped"), "stdout:\n{out}");
    assert!(
        out.lines()
            .all(|l| l.starts_with("I ") || l.starts_with("D ")),
        "stdout:\n{out}"
    );
    assert!(
        err.lines().any(|l| l.starts_with("W mvlog0: ")),
        "stderr:\n{err}"
    );
    assert!(
        err.lines()
            .all(|l| l.starts_with("W ") || l.starts_with("E ")),
        "stderr:\n{err}"
    );
}
