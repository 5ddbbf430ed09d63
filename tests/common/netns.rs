//! Network namespaces for tests: the one fixture every namespace test builds on (the bridged
//! [`Lab`](super::lab::Lab) is made of it; host-tier tests wire their own small topologies with
//! it).
//!
//! Every namespace is named `mv<pid>-<n><tag>-<suffix>`: `<n>` numbers the fixtures of one
//! process (tests of a crate run side by side in one process), and the pid lets
//! [`cleanup_dead_runs`] and `tests/run.sh` remove what a killed run left. `Drop` kills every
//! process left in the namespaces (servers started here and anything a test started inside)
//! and deletes them, also while a panicking test unwinds. Interfaces are created directly
//! inside the namespaces, so nothing touches a host interface.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// Prefix of every namespace a test creates (`mv<pid>-...`).
pub const NS_PREFIX: &str = "mv";

/// Runs a command, panicking with its output if it fails (setup must not half-succeed).
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("netns: cannot run {args:?}: {e}"));
    if !out.status.success() {
        panic!(
            "netns: {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Runs a command and ignores failure (cleanup paths).
pub fn run_quiet(args: &[&str]) -> Option<Output> {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .ok()
}

/// Every namespace name currently listed by `ip netns list`.
pub fn netns_list() -> Vec<String> {
    let out = run_quiet(&["ip", "netns", "list"]).map(|o| o.stdout);
    String::from_utf8_lossy(&out.unwrap_or_default())
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn kill_ns_processes(ns: &str) {
    if let Some(o) = run_quiet(&["ip", "netns", "pids", ns]) {
        for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: kill(2) on a pid `ip` listed in our own namespace.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Kills every process in `ns`, then deletes it.
pub fn delete_ns(ns: &str) {
    kill_ns_processes(ns);
    run_quiet(&["ip", "netns", "del", ns]);
}

/// Deletes every namespace whose name starts with `prefix` (killing its processes first).
/// `cleanup_stale("mv")` clears everything any fixture ever left; returns what it deleted.
pub fn cleanup_stale(prefix: &str) -> Vec<String> {
    assert!(
        prefix.starts_with(NS_PREFIX),
        "netns: refusing to delete namespaces outside the `{NS_PREFIX}` prefix"
    );
    let stale: Vec<String> = netns_list()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    for ns in &stale {
        delete_ns(ns);
    }
    stale
}

/// Deletes the namespaces of runs whose process is gone (`mv<pid>-...` with no live `pid`),
/// e.g. after a run killed by a timeout or built with panic=abort. Safe while other test
/// processes run: their pids are alive. Returns what it deleted.
pub fn cleanup_dead_runs() -> Vec<String> {
    let dead: Vec<String> = netns_list()
        .into_iter()
        .filter(|n| {
            let Some(rest) = n.strip_prefix(NS_PREFIX) else {
                return false;
            };
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            match digits.parse::<i32>() {
                Ok(pid) if rest[digits.len()..].starts_with('-') => {
                    !Path::new(&format!("/proc/{pid}")).exists()
                }
                _ => false,
            }
        })
        .collect();
    for ns in &dead {
        delete_ns(ns);
    }
    dead
}

/// A set of namespaces `<prefix>-<suffix>`, deleted on drop. See the module docs.
pub struct Netns {
    /// `mv<pid>-<n><tag>`.
    pub prefix: String,
    created: Vec<String>,
    servers: Vec<Child>,
}

impl Netns {
    /// Namespaces `<prefix>-<suffix>` for each suffix (loopback up in each), in that order.
    pub fn new(tag: &str, suffixes: &[&str]) -> Netns {
        // One sequence for every fixture of the process: no two share a prefix.
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        // A leading digit would run into the number: tag "2x" of fixture 1 is fixture 12's "x".
        assert!(
            !tag.starts_with(|c: char| c.is_ascii_digit()),
            "netns: tag {tag:?} must not start with a digit"
        );
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("{NS_PREFIX}{}-{seq}{tag}", std::process::id());
        // Leftovers of an earlier run with the same pid and tag would make `netns add` fail.
        cleanup_stale(&format!("{prefix}-"));
        let mut ns = Netns {
            prefix,
            created: Vec::new(),
            servers: Vec::new(),
        };
        for s in suffixes {
            ns.add(s);
        }
        ns
    }

    /// Adds namespace `<prefix>-<suffix>` with loopback up; returns its name.
    pub fn add(&mut self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.prefix);
        run(&["ip", "netns", "add", &name]);
        self.created.push(name.clone());
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// The `i`-th namespace created.
    pub fn name(&self, i: usize) -> &str {
        &self.created[i]
    }

    /// Every namespace created, in order.
    pub fn names(&self) -> &[String] {
        &self.created
    }

    /// A veth pair `if_a` in namespace `ns_a`, `if_b` in `ns_b` (created inside `ns_a`, its
    /// peer moved straight to `ns_b`); `extra` goes after the peer's name (`address <mac>`).
    pub fn veth(&self, ns_a: &str, if_a: &str, ns_b: &str, if_b: &str, extra: &[&str]) {
        let mut cmd = vec![
            "ip", "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b,
        ];
        cmd.extend_from_slice(extra);
        cmd.extend_from_slice(&["netns", ns_b]);
        run(&cmd);
    }

    /// A bridge `name` (up) in namespace `ns`; `opts` go after `type bridge`.
    pub fn bridge(&self, ns: &str, name: &str, opts: &[&str]) {
        let mut cmd = vec!["ip", "-n", ns, "link", "add", name, "type", "bridge"];
        cmd.extend_from_slice(opts);
        run(&cmd);
        run(&["ip", "-n", ns, "link", "set", name, "up"]);
    }

    /// Puts `port` of namespace `ns` on bridge `bridge` there, up.
    pub fn enslave(&self, ns: &str, port: &str, bridge: &str) {
        run(&["ip", "-n", ns, "link", "set", port, "master", bridge]);
        run(&["ip", "-n", ns, "link", "set", port, "up"]);
    }

    /// A veth pair between the `a`-th and `b`-th namespaces with `addr_a`/`addr_b` (CIDR), up.
    pub fn link(&self, a: usize, ifa: &str, addr_a: &str, b: usize, ifb: &str, addr_b: &str) {
        let (na, nb) = (self.name(a), self.name(b));
        self.veth(na, ifa, nb, ifb, &[]);
        run(&["ip", "-n", na, "addr", "add", addr_a, "dev", ifa]);
        run(&["ip", "-n", nb, "addr", "add", addr_b, "dev", ifb]);
        run(&["ip", "-n", na, "link", "set", ifa, "up"]);
        run(&["ip", "-n", nb, "link", "set", ifb, "up"]);
    }

    /// Runs a command in the `i`-th namespace, failing the test unless it succeeds.
    pub fn exec(&self, i: usize, args: &[&str]) -> Output {
        let mut v = vec!["ip", "netns", "exec", self.name(i)];
        v.extend_from_slice(args);
        run(&v)
    }

    /// Starts a long-running process in the `i`-th namespace; waits for its first stdout
    /// line and returns it. Killed and reaped on drop.
    pub fn spawn_server(&mut self, i: usize, args: &[&str]) -> String {
        use std::io::BufRead;
        let mut child = Command::new("ip")
            .args(["netns", "exec", self.name(i)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("netns: spawn server");
        let out = child.stdout.take().expect("stdout");
        self.servers.push(child);
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        line
    }

    /// Pids of the servers started with [`spawn_server`](Self::spawn_server).
    pub fn servers_pids(&self) -> Vec<i32> {
        self.servers.iter().map(|c| c.id() as i32).collect()
    }

    /// Runs `f` on a thread whose network namespace is the `i`-th one.
    pub fn run_in<T: Send + 'static>(&self, i: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
        run_in(self.name(i), f)
    }

    /// Kills what runs in the namespaces and deletes them, last created first (nodes before
    /// the switch they hang on); dropping does this too.
    pub fn delete_all(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.servers.clear();
        for ns in self.created.drain(..).rev() {
            delete_ns(&ns);
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.delete_all();
    }
}

/// Runs `f` on a thread inside network namespace `ns` (setns affects only that thread; a
/// socket stays in the namespace it was created in, so the caller can use what `f` opens).
pub fn run_in<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in(ns, f).join().expect("netns thread panicked")
}

/// Starts `f` on a thread that enters network namespace `ns` first (a sender or server that
/// runs beside the test); join it for `f`'s result.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on this thread with a valid namespace fd.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        drop(file);
        f()
    })
}

/// Moves the calling (single-threaded, forked) process into namespace `ns`.
pub fn enter(ns: &str) -> Result<(), String> {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).map_err(|e| e.to_string())?;
    // SAFETY: plain setns(2) on a valid fd.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!("setns {ns}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Runs `f` in a forked child (which may [`enter`] namespaces); a returned error or panic
/// fails the test with its message.
pub fn in_child(f: impl FnOnce() -> Result<(), String>) {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};
    let (rx, tx) = nix::unistd::pipe().unwrap();
    // SAFETY: the child runs `f` and leaves with _exit, never returning into the harness.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(rx);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let msg = match r {
                Ok(Ok(())) => String::new(),
                Ok(Err(e)) => e,
                Err(p) => p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()),
            };
            let mut tx = std::fs::File::from(tx);
            let _ = tx.write_all(msg.as_bytes());
            drop(tx);
            // SAFETY: leaving the forked child without running the harness's exit path.
            unsafe { libc::_exit(if msg.is_empty() { 0 } else { 1 }) };
        }
        ForkResult::Parent { child } => {
            drop(tx);
            let mut msg = String::new();
            let _ = std::fs::File::from(rx).read_to_string(&mut msg);
            let st = waitpid(child, None).unwrap();
            assert!(msg.is_empty(), "{msg}");
            assert_eq!(st, WaitStatus::Exited(child, 0));
        }
    }
}
