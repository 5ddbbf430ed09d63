//! A small poll loop over the check state machines and the sys fds, standing in for the
//! daemon's event loop (written elsewhere) so checks can be exercised end to end.
//! Also: network-namespace fixtures with Drop-guard cleanup.
#![allow(dead_code)]

use minivrrp::base::{Duration, Instant};
use minivrrp::check::{
    Action, Actions, ConnCheck, IcmpCheck, Input, Interest, Report, ScriptCheck, ScriptSpec,
};
use minivrrp::sys::icmp::IcmpSocket;
use minivrrp::sys::{process, tcp};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};

#[allow(clippy::large_enum_variant)]
pub enum Kind {
    Conn(ConnCheck),
    Icmp(IcmpCheck, IcmpSocket),
    Script(ScriptCheck, ScriptSpec),
}

pub struct Slot {
    pub kind: Kind,
    fd: Option<OwnedFd>,
    child: Option<process::Child>,
    pub reports: Vec<Report>,
    /// Weights a dynamic script set (`Action::SetWeight`), in order.
    pub weights: Vec<u32>,
    /// (ok, elapsed) of every finished attempt.
    pub attempts: Vec<(minivrrp::check::Reason, Duration)>,
    last_seen: Option<(Instant, Duration)>,
    armed: Option<Instant>,
}

pub struct Driver {
    origin: std::time::Instant,
    pub slots: Vec<Slot>,
    /// Loop iterations so far (for the benchmark's figures).
    pub steps: u64,
    /// Timer queue as a daemon keeps it: (due, slot), stale entries skipped on pop.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Slots with an open fd or a child: the only ones polled and reaped.
    active: BTreeSet<usize>,
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

impl Driver {
    pub fn new() -> Self {
        Driver {
            origin: std::time::Instant::now(),
            slots: Vec::new(),
            steps: 0,
            timers: BinaryHeap::new(),
            active: BTreeSet::new(),
        }
    }

    /// The daemon's clock: microseconds since the driver started, plus 1 s so that
    /// nothing is ever at zero.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64 + 1_000_000)
    }

    pub fn add(&mut self, kind: Kind) -> usize {
        self.slots.push(Slot {
            kind,
            fd: None,
            child: None,
            reports: Vec::new(),
            weights: Vec::new(),
            attempts: Vec::new(),
            last_seen: None,
            armed: None,
        });
        let i = self.slots.len() - 1;
        self.rearm(i);
        i
    }

    /// Queue the slot's timer when its `poll_at` changed.
    fn rearm(&mut self, i: usize) {
        let p = Self::poll_at(&self.slots[i]);
        if p != self.slots[i].armed {
            self.slots[i].armed = p;
            if let Some(t) = p {
                self.timers.push(Reverse((t, i)));
            }
        }
        let s = &self.slots[i];
        if s.fd.is_some() || s.child.is_some() || matches!(s.kind, Kind::Icmp(..)) {
            self.active.insert(i);
        } else {
            self.active.remove(&i);
        }
    }

    fn poll_at(s: &Slot) -> Option<Instant> {
        match &s.kind {
            Kind::Conn(c) => Some(c.poll_at()),
            Kind::Icmp(c, _) => Some(c.poll_at()),
            Kind::Script(c, _) => c.poll_at(),
        }
    }

    fn handle(&mut self, i: usize, now: Instant, input: Input<'_>) {
        let s = &mut self.slots[i];
        let actions = match &mut s.kind {
            Kind::Conn(c) => c.handle(now, input),
            Kind::Icmp(c, _) => c.handle(now, input),
            Kind::Script(c, _) => c.handle(now, input),
        };
        let last = match &s.kind {
            Kind::Conn(c) => c.last_attempt(),
            Kind::Icmp(c, _) => c.last_attempt(),
            Kind::Script(c, _) => c.last_attempt(),
        };
        if let Some(a) = last {
            if s.last_seen != Some((a.started, a.elapsed)) {
                s.last_seen = Some((a.started, a.elapsed));
                s.attempts.push((a.reason, a.elapsed));
            }
        }
        self.apply(i, now, actions);
        self.rearm(i);
    }

    fn apply(&mut self, i: usize, now: Instant, actions: Actions) {
        for a in actions {
            match a {
                Action::Connect(addr) => match tcp::connect(addr) {
                    Ok(fd) => self.slots[i].fd = Some(fd),
                    Err(e) => self.handle(i, now, Input::ConnectFailed(e as i32)),
                },
                Action::Close => self.slots[i].fd = None,
                Action::SendEcho { dst, ident, seq } => {
                    let r = match &self.slots[i].kind {
                        Kind::Icmp(_, sock) => sock.send_echo(dst, ident, seq),
                        _ => Err(Errno::EINVAL),
                    };
                    if let Err(e) = r {
                        self.handle(i, now, Input::SendFailed(e as i32));
                    }
                }
                Action::Spawn => {
                    let r = match &self.slots[i].kind {
                        Kind::Script(_, spec) => {
                            let argv: Vec<&str> = spec.argv.iter().map(|s| s.as_str()).collect();
                            let opts = process::SpawnOptions {
                                capture_output: true,
                                user: spec.user,
                            };
                            process::spawn(&argv, &[], &opts)
                        }
                        _ => Err(Errno::EINVAL),
                    };
                    match r {
                        Ok(c) => self.slots[i].child = Some(c),
                        Err(e) => self.handle(i, now, Input::SpawnFailed(e as i32)),
                    }
                }
                Action::Kill => {
                    if let Some(c) = &self.slots[i].child {
                        let _ = process::kill(c.pid);
                    }
                }
                Action::Report(r) => self.slots[i].reports.push(r),
                Action::SetWeight(w) => self.slots[i].weights.push(w),
            }
        }
    }

    /// One loop iteration: timers, poll (at most `max_wait`), fd events, reaping.
    pub fn step(&mut self, max_wait: std::time::Duration) {
        self.steps += 1;
        let now = self.now();
        let mut due = Vec::new();
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.slots[i].armed == Some(t) {
                self.slots[i].armed = None;
                due.push(i);
            }
        }
        for i in due {
            self.handle(i, now, Input::Tick);
            self.rearm(i);
        }
        // Reap scripts (the daemon does this on SIGCHLD; tests share the process with other
        // spawners, so reap only our own pids).
        let active: Vec<usize> = self.active.iter().copied().collect();
        for &i in &active {
            let Some(pid) = self.slots[i].child.as_ref().map(|c| c.pid) else {
                continue;
            };
            if let Some(st) = process::reap_pid(pid) {
                // Drain what the script wrote before reporting its exit.
                self.drain_output(i, now);
                self.slots[i].child = None;
                self.handle(i, now, Input::Exited(st));
            }
        }
        // Drop stale timer entries so the wait is computed from a live one.
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if self.slots[i].armed == Some(t) {
                break;
            }
            self.timers.pop();
        }
        let next = self
            .timers
            .peek()
            .map(|Reverse((t, _))| t.saturating_duration_since(self.now()))
            .unwrap_or(max_wait);
        let mut wait = next.min(max_wait);
        if self.active.iter().any(|&i| self.slots[i].child.is_some()) {
            // Without SIGCHLD here, look for exits every few ms.
            wait = wait.min(std::time::Duration::from_millis(5));
        }

        let mut idx = Vec::new();
        let mut fds = Vec::new();
        for &i in &self.active {
            let s = &self.slots[i];
            let (fd, flags) = match &s.kind {
                Kind::Conn(c) => match (&s.fd, c.interest()) {
                    (Some(fd), Interest::Write) => (fd.as_fd(), PollFlags::POLLOUT),
                    (Some(fd), Interest::Read) => (fd.as_fd(), PollFlags::POLLIN),
                    _ => continue,
                },
                Kind::Icmp(_, sock) => (sock.as_fd(), PollFlags::POLLIN),
                Kind::Script(..) => match s.child.as_ref().and_then(|c| c.output.as_ref()) {
                    Some(fd) => (fd.as_fd(), PollFlags::POLLIN),
                    None => continue,
                },
            };
            idx.push(i);
            fds.push(PollFd::new(fd, flags));
        }
        // Round up: a sub-millisecond wait must not become a busy loop.
        let ms = (wait.as_micros().div_ceil(1000)).min(60_000) as u16;
        let _ = poll(&mut fds, PollTimeout::from(ms));
        let ready: Vec<(usize, PollFlags)> = idx
            .iter()
            .zip(&fds)
            .filter_map(|(&i, p)| p.revents().filter(|r| !r.is_empty()).map(|r| (i, r)))
            .collect();
        drop(fds);
        let now = self.now();
        for (i, _) in ready {
            self.on_ready(i, now);
        }
    }

    fn on_ready(&mut self, i: usize, now: Instant) {
        let mut buf = [0u8; 4096];
        match &self.slots[i].kind {
            Kind::Conn(c) => match c.interest() {
                Interest::Write => {
                    let Some(fd) = &self.slots[i].fd else { return };
                    if c.tx_pending().is_empty() {
                        let input = match tcp::connect_result(fd) {
                            Ok(()) => Input::Connected,
                            Err(e) => Input::ConnectFailed(e as i32),
                        };
                        self.handle(i, now, input);
                    }
                    self.try_send(i, now);
                }
                Interest::Read => loop {
                    let Some(fd) = &self.slots[i].fd else { return };
                    match tcp::read(fd, &mut buf) {
                        Ok(0) => return self.handle(i, now, Input::Closed),
                        Ok(n) => self.handle(i, now, Input::Received(&buf[..n])),
                        Err(Errno::EAGAIN) => return,
                        Err(e) => return self.handle(i, now, Input::ReadFailed(e as i32)),
                    }
                },
                Interest::None => {}
            },
            Kind::Icmp(..) => loop {
                let r = match &self.slots[i].kind {
                    Kind::Icmp(_, sock) => sock.recv_reply(),
                    _ => return,
                };
                match r {
                    Ok(Some((from, r))) => {
                        let input = Input::EchoReply {
                            from,
                            ident: r.ident,
                            seq: r.seq,
                        };
                        self.handle(i, now, input);
                    }
                    Ok(None) => {}
                    Err(_) => return,
                }
            },
            Kind::Script(..) => self.drain_output(i, now),
        }
    }

    fn try_send(&mut self, i: usize, now: Instant) {
        loop {
            let (Kind::Conn(c), Some(fd)) = (&self.slots[i].kind, &self.slots[i].fd) else {
                return;
            };
            let pending = c.tx_pending();
            if pending.is_empty() {
                return;
            }
            match tcp::write(fd, pending) {
                Ok(n) => self.handle(i, now, Input::Sent(n)),
                Err(Errno::EAGAIN) => return,
                Err(e) => return self.handle(i, now, Input::SendFailed(e as i32)),
            }
        }
    }

    fn drain_output(&mut self, i: usize, now: Instant) {
        let mut buf = [0u8; 1024];
        loop {
            let Some(fd) = self.slots[i].child.as_ref().and_then(|c| c.output.as_ref()) else {
                return;
            };
            match process::read_output(fd, &mut buf) {
                Ok(0) => {
                    if let Some(c) = self.slots[i].child.as_mut() {
                        c.output = None;
                    }
                    return;
                }
                Ok(n) => self.handle(i, now, Input::Output(&buf[..n])),
                Err(_) => return,
            }
        }
    }

    /// Run until `done(self)` or `limit` passed; returns whether `done` became true.
    pub fn run_until(
        &mut self,
        limit: std::time::Duration,
        mut done: impl FnMut(&Driver) -> bool,
    ) -> bool {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if done(self) {
                return true;
            }
            self.step(std::time::Duration::from_millis(50));
        }
        done(self)
    }

    /// Kill and reap any script still running (tests must leave no zombies).
    pub fn shutdown(&mut self) {
        for s in &mut self.slots {
            if let Some(c) = s.child.take() {
                let _ = process::kill(c.pid);
                for _ in 0..200 {
                    if process::reap_pid(c.pid).is_some() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Namespaces

pub fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .status()
        .expect("spawn");
    assert!(st.success(), "command failed: {args:?}");
}

/// Namespaces deleted (and their server processes killed) on drop, also on panic.
pub struct Netns {
    pub names: Vec<String>,
    pub servers: Vec<std::process::Child>,
}

impl Netns {
    /// `mv<pid>-<test>-<suffix>` for each suffix.
    pub fn new(test: &str, suffixes: &[&str]) -> Self {
        let pid = std::process::id();
        // A sequence number: the host tier's tests run side by side in one process.
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let test = format!(
            "c{}{test}",
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut ns = Netns {
            names: Vec::new(),
            servers: Vec::new(),
        };
        for s in suffixes {
            let name = format!("mv{pid}-{test}-{s}");
            let _ = Command::new("ip")
                .args(["netns", "del", &name])
                .stderr(Stdio::null())
                .status();
            sh(&["ip", "netns", "add", &name]);
            ns.names.push(name.clone());
            sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        }
        ns
    }

    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// A veth pair between namespaces `a` and `b` (created directly inside them so interface
    /// names never touch the host), with `addr_a`/`addr_b` (CIDR).
    pub fn link(&self, a: usize, ifa: &str, addr_a: &str, b: usize, ifb: &str, addr_b: &str) {
        let (na, nb) = (self.name(a), self.name(b));
        sh(&[
            "ip", "-n", na, "link", "add", ifa, "type", "veth", "peer", "name", ifb, "netns", nb,
        ]);
        sh(&["ip", "-n", na, "addr", "add", addr_a, "dev", ifa]);
        sh(&["ip", "-n", nb, "addr", "add", addr_b, "dev", ifb]);
        sh(&["ip", "-n", na, "link", "set", ifa, "up"]);
        sh(&["ip", "-n", nb, "link", "set", ifb, "up"]);
    }

    pub fn exec(&self, i: usize, args: &[&str]) {
        let mut v = vec!["ip", "netns", "exec", self.name(i)];
        v.extend_from_slice(args);
        sh(&v);
    }

    /// Start a long-running process in namespace `i`; waits for its first stdout line.
    pub fn spawn_server(&mut self, i: usize, args: &[&str]) -> String {
        use std::io::BufRead;
        let mut child = Command::new("ip")
            .args(["netns", "exec", self.name(i)])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let out = child.stdout.take().expect("stdout");
        self.servers.push(child);
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        line
    }

    /// Run `f` on a thread whose network namespace is `i` (setns affects only that thread).
    pub fn run_in<T: Send + 'static>(&self, i: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name(i));
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open netns");
            use std::os::fd::AsRawFd;
            // SAFETY: setns on this thread with a valid namespace fd.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("netns thread panicked")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}
