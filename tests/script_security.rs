//! Scripts run exactly what was checked: programs are resolved once per configuration
//! (`daemon::scripts::prepare` + `sys::process::pin`, as the daemon does at start and
//! reload), so a non-root user who swaps a symbolic link or plants a program earlier in PATH
//! afterwards runs nothing as root. Children get a scrubbed environment and a parent-death
//! signal.
//!
//! One test function: it changes this process's environment (PATH, IFS...), which no other
//! test of this binary may see half-changed.

#[macro_use]
#[path = "common/mod.rs"]
mod common;

use minivrrp::check::notify::split_command;
use minivrrp::check::ExitStatus;
use minivrrp::config::Config;
use minivrrp::daemon::scripts;
use minivrrp::sys::process;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

const NOBODY: u32 = 65534;

fn wait(pid: i32) -> ExitStatus {
    for _ in 0..1000 {
        if let Some(st) = process::reap_pid(pid) {
            return st;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("child {pid} did not end");
}

/// Run `line` the way the daemon runs a configured command: split, pinned program.
fn run(line: &str) -> ExitStatus {
    let argv = split_command(line).expect("splits");
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let c = process::spawn(&argv, &[], &Default::default()).expect("spawn");
    wait(c.pid)
}

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// As user nobody, the way an attacker on the router would.
fn as_nobody(cmd: &str) {
    let st = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--", "/bin/sh", "-c", cmd])
        .status()
        .expect("runuser");
    assert!(st.success(), "as nobody: {cmd}");
}

fn config(security: bool, body: &str) -> Config {
    let text = format!(
        "config globals 'globals'\n\toption enable_script_security '{}'\n{body}",
        u8::from(security)
    );
    Config::parse_str("t", &text).unwrap_or_else(|e| panic!("{e:?}"))
}

fn notify_master(cmd: &str) -> String {
    format!(
        "config instance 'vi1'\n\toption interface 'eth0'\n\toption vrid '1'\n\tlist vip '10.0.0.10'\n\toption notify_master '{cmd}'\n"
    )
}

fn track_script(cmd: &str) -> String {
    format!("config script 'chk'\n\toption command '{cmd}'\n")
}

#[test]
fn scripts_run_the_file_checked_at_load_never_a_swapped_or_planted_one() {
    require!(root, "runuser");
    // A root-owned tree (0755) for the genuine scripts, and beside it a directory user nobody
    // owns, where the attacker works.
    let root = PathBuf::from(format!("/tmp/mv-scriptsec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let user = root.join("user");
    std::fs::create_dir_all(&user).unwrap();
    chown(&user, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (o, u) = (out.display().to_string(), user.display().to_string());

    let good = root.join("bin/mvsec-good");
    script(&good, &format!("id -u > {o}/good"));
    // The attacker's program, owned by nobody: it records who ran it.
    as_nobody(&format!(
        "printf '#!/bin/sh\\nid -u > {o}/evil\\n' > {u}/evil && chmod 755 {u}/evil"
    ));

    // 1. A symbolic link owned by nobody, to the genuine script: the check (keepalived's too)
    // follows it to a file only root can change, so the configuration is accepted ...
    as_nobody(&format!("ln -s {} {u}/link", good.display()));
    let link = format!("{u}/link");
    let cfg = config(true, &notify_master(&link));
    process::pin(scripts::prepare(&cfg, None).expect("the link's target passes"));
    // ... and then nobody points the link at their own program.
    as_nobody(&format!("ln -sfn {u}/evil {u}/link"));
    assert_eq!(run(&link), ExitStatus::Code(0));
    assert_eq!(std::fs::read_to_string(out.join("good")).unwrap(), "0\n");
    assert!(
        !out.join("evil").exists(),
        "the swapped link ran the attacker's program as root"
    );
    let _ = std::fs::remove_file(out.join("good"));

    // 2. PATH: the genuine program is found in a root directory at load; nobody then plants
    // one of the same name in a directory earlier in PATH.
    let path = format!(
        "{u}:{}:/usr/sbin:/usr/bin:/sbin:/bin",
        root.join("bin").display()
    );
    std::env::set_var("PATH", &path);
    let cfg = config(true, &track_script("mvsec-good --quiet"));
    let pins = scripts::prepare(&cfg, None).expect("found in the root directory");
    process::pin(pins);
    as_nobody(&format!("cp {u}/evil {u}/mvsec-good"));
    assert_eq!(run("mvsec-good --quiet"), ExitStatus::Code(0));
    assert_eq!(std::fs::read_to_string(out.join("good")).unwrap(), "0\n");
    assert!(
        !out.join("evil").exists(),
        "the program planted in PATH ran as root"
    );
    // Where it was found at load is what it is told it is (argv[0]).
    let _ = std::fs::remove_file(out.join("good"));
    // A reload resolves again: now the planted one is found first, and refused.
    let e = scripts::prepare(&cfg, None).expect_err("planted program refused at reload");
    assert!(
        e.starts_with("chk: script mvsec-good refused by enable_script_security")
            && e.contains("owned by uid 65534"),
        "{e}"
    );
    std::env::set_var("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");

    // 3. No shell: `&&` is an argument of the checked program, not a second command.
    let evil = format!("{u}/evil");
    let line = format!("/bin/true && {evil}");
    let cfg = config(true, &track_script(&line));
    process::pin(scripts::prepare(&cfg, None).expect("/bin/true passes"));
    assert_eq!(run(&line), ExitStatus::Code(0));
    assert!(
        !out.join("evil").exists(),
        "`&&` ran a second program as root"
    );
    // A shell is run only when named, and then script security must see what it runs: a
    // command line is refused, a script file is checked too.
    for (line, why) in [
        (format!("/bin/sh -c \"{evil}\""), "(-c) cannot be checked"),
        (format!("sh {evil}"), "owned by uid 65534"),
        (format!("sh {u}/link"), "must be named by its real path"),
    ] {
        let e =
            scripts::prepare(&config(true, &track_script(&line)), None).expect_err("shell refused");
        assert!(e.contains(why), "{line}: {e}");
    }
    let ok = format!("/bin/sh {}", good.display());
    assert!(scripts::prepare(&config(true, &track_script(&ok)), None).is_ok());
    // Without script security a shell command line runs as written.
    let cfg = config(false, &track_script("/bin/sh -c \"true && true\""));
    assert!(scripts::prepare(&cfg, None).is_ok());

    // 4. The environment: what changes how programs load or how a shell splits words is gone;
    // the rest is inherited.
    std::env::set_var("IFS", "x");
    std::env::set_var("LD_LIBRARY_PATH", "/nonexistent-mv");
    std::env::set_var("BASH_ENV", "/nonexistent-mv");
    std::env::set_var("MV_KEPT", "kept");
    let envfile = out.join("env");
    let c = process::spawn(
        &["/bin/sh", "-c", &format!("env > {}", envfile.display())],
        &[],
        &Default::default(),
    )
    .expect("spawn");
    assert_eq!(wait(c.pid), ExitStatus::Code(0));
    for k in ["IFS", "LD_LIBRARY_PATH", "BASH_ENV"] {
        std::env::remove_var(k);
    }
    std::env::remove_var("MV_KEPT");
    let env = std::fs::read_to_string(&envfile).unwrap();
    assert!(env.lines().any(|l| l == "MV_KEPT=kept"), "{env}");
    for k in ["IFS=", "LD_LIBRARY_PATH=", "BASH_ENV="] {
        assert!(
            !env.lines().any(|l| l.starts_with(k)),
            "{k} inherited:\n{env}"
        );
    }

    // 5. Parent-death signal: a script does not outlive a daemon that died. An intermediate
    // process spawns it and exits; as a subreaper we inherit the orphan and see how it ended.
    // SAFETY: prctl on ourselves; fork in a test whose other threads hold no lock the child
    // needs (it only spawns, writes a pid and exits).
    let pid = unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong);
        let mut fds = [0; 2];
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        let daemon = libc::fork();
        if daemon == 0 {
            let pid = process::spawn(&["/bin/sleep", "30"], &[], &Default::default())
                .map_or(-1, |c| c.pid);
            libc::write(fds[1], (&pid as *const i32).cast(), 4);
            // Die once the script runs (a parent gone before that stops it from starting).
            libc::usleep(300_000);
            libc::_exit(0);
        }
        let mut pid = 0i32;
        assert_eq!(libc::read(fds[0], (&mut pid as *mut i32).cast(), 4), 4);
        libc::close(fds[0]);
        libc::close(fds[1]);
        libc::waitpid(daemon, std::ptr::null_mut(), 0);
        pid
    };
    assert!(pid > 0);
    assert_eq!(wait(pid), ExitStatus::Signal(libc::SIGTERM));

    let _ = std::fs::remove_dir_all(&root);
}
