//! Benchmark: 1000 TCP checks at a 1 s interval against 1000 listening ports (the real servers
//! of one virtual server), run by the daemon's check engine on its poll loop for 10 s. Prints the CPU used by the checking thread (percent of one
//! core, from getrusage(RUSAGE_THREAD)) and the connect latency p50/p99. As root the server
//! and the checker live in two namespaces joined by a veth; otherwise loopback ports.
//! Targets (printed, not asserted): < 10 % of one core, p99 < 5 ms.
//!
//! Run: `cargo bench --bench checks` (MINIVRRP_BENCH_SECS=N to change the duration).

#[path = "../host/checks_support.rs"]
mod checks_support;
#[path = "../common/mod.rs"]
mod common;

use checks_support::{cfg, run_until, stop, H};
use common::netns::Netns;
use core::net::SocketAddr;
use minivrrp::check::{ConnCheck, Reason};
use minivrrp::daemon::Loop;
use minivrrp::sys::clock;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const CHECKS: usize = 1000;

fn thread_cpu() -> std::time::Duration {
    let (u, s) = thread_cpu_split();
    u + s
}

/// (user, system) CPU time of the calling thread.
fn thread_cpu_split() -> (std::time::Duration, std::time::Duration) {
    // SAFETY: getrusage fills the struct.
    let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| {
        std::time::Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64)
    };
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

/// Accept and drop connections on all listeners until `stop`.
fn serve(listeners: Vec<TcpListener>, stop: Arc<AtomicBool>) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    for l in &listeners {
        l.set_nonblocking(true).unwrap();
    }
    while !stop.load(Ordering::Relaxed) {
        let mut fds: Vec<PollFd> = listeners
            .iter()
            .map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN))
            .collect();
        let _ = poll(&mut fds, PollTimeout::from(50u16));
        let ready: Vec<usize> = fds
            .iter()
            .enumerate()
            .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|(i, _)| i)
            .collect();
        drop(fds);
        for i in ready {
            while let Ok((s, _)) = listeners[i].accept() {
                drop(s);
            }
        }
    }
}

fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn run_checks(addrs: Vec<SocketAddr>, secs: u64) {
    // What keepalived calls a TCP_CHECK per real server: up until `fall` (2) failed rounds.
    let mut text = String::from(
        "
config check 'tcp'
    option type 'tcp'
    option interval '1'
    option connect_timeout '1'
    option fall '2'
    option rise '1'
    option retry '0'

config virtual_server 'vs'
    option address '10.78.9.1'
    option port '80'
    option check 'tcp'
",
    );
    for addr in &addrs {
        let _ = write!(
            text,
            "
config real_server
    option virtual_server 'vs'
    option address '{}'
    option port '{}'
",
            addr.ip(),
            addr.port()
        );
    }
    let c = cfg(&text);
    let mut l: Loop<()> = Loop::new();
    let mut h = H::new(&c, l.ctx(), clock::now());
    // A successful connect is seen only when its fd is read: watch just that probe.
    h.light = true;
    // Warm-up: one interval so every check has started.
    run_until(
        &mut l,
        &mut h,
        std::time::Duration::from_millis(1100),
        |_| false,
    );
    let skip: Vec<usize> = h.attempts.iter().map(Vec::len).collect();
    let stats0 = h.engine.stats();
    let cpu0 = thread_cpu();
    let (u0, s0) = thread_cpu_split();
    let steps0 = l.stats().turns;
    let wall0 = std::time::Instant::now();
    run_until(&mut l, &mut h, std::time::Duration::from_secs(secs), |_| {
        false
    });
    let wall = wall0.elapsed();
    let cpu = thread_cpu() - cpu0;
    let (u1, s1) = thread_cpu_split();
    let steps = l.stats().turns - steps0;
    let stats = h.engine.stats();
    stop(&mut l, &mut h);

    let mut lat = Vec::new();
    for (a, k) in h.attempts.iter().zip(&skip) {
        for (reason, elapsed) in &a[*k..] {
            if *reason == Reason::Ok {
                lat.push(std::time::Duration::from_micros(elapsed.as_micros() as u64));
            }
        }
    }
    let attempts = (stats.attempts - stats0.attempts) as usize;
    let failed = (stats.failed_attempts - stats0.failed_attempts) as usize;
    lat.sort();
    println!("checks: {CHECKS} TCP checks, interval 1 s, measured over {wall:.2?}");
    println!(
        "checks: state size: ConnCheck(tcp) {} B, IcmpCheck {} B, ScriptCheck {} B",
        core::mem::size_of::<ConnCheck>(),
        core::mem::size_of::<minivrrp::check::IcmpCheck>(),
        core::mem::size_of::<minivrrp::check::ScriptCheck>()
    );
    println!(
        "checks: attempts {attempts} ({:.0}/s), failed {failed}",
        attempts as f64 / wall.as_secs_f64()
    );
    println!(
        "checks: CPU {:.2?} = {:.2} % of one core (target < 10 %)",
        cpu,
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
    );
    println!(
        "checks: user {:.2?} system {:.2?}; loop iterations {steps} ({:.0}/s)",
        u1 - u0,
        s1 - s0,
        steps as f64 / wall.as_secs_f64()
    );
    println!(
        "checks: connect latency p50 {:?}  p99 {:?}  max {:?} (target p99 < 5 ms)",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or_default()
    );
}

fn main() {
    let secs: u64 = std::env::var("MINIVRRP_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // 1000 listeners + 1000 connections + pollfds.
    let lim = libc::rlimit {
        rlim_cur: 8192,
        rlim_max: 8192,
    };
    // SAFETY: raising our own fd limit; failure only limits the benchmark.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    let stop = Arc::new(AtomicBool::new(false));

    if nix::unistd::geteuid().is_root() {
        println!("checks: root: checker and server in two namespaces joined by a veth");
        let ns = Netns::new("bench", &["c", "s"]);
        ns.link(0, "v0", "10.78.1.1/24", 1, "v1", "10.78.1.2/24");
        let stop2 = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let server = common::netns::spawn_in(ns.name(1), move || {
            let ls: Vec<TcpListener> = (0..CHECKS)
                .map(|i| TcpListener::bind(("10.78.1.2", 20000 + i as u16)).unwrap())
                .collect();
            tx.send(()).unwrap();
            serve(ls, stop2);
        });
        rx.recv().unwrap();
        let addrs: Vec<SocketAddr> = (0..CHECKS)
            .map(|i| SocketAddr::new("10.78.1.2".parse().unwrap(), 20000 + i as u16))
            .collect();
        ns.run_in(0, move || run_checks(addrs, secs));
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
    } else {
        println!("checks: not root: loopback ports on 127.0.0.1");
        let ls: Vec<TcpListener> = (0..CHECKS)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs: Vec<SocketAddr> = ls.iter().map(|l| l.local_addr().unwrap()).collect();
        let stop2 = stop.clone();
        let server = std::thread::spawn(move || serve(ls, stop2));
        run_checks(addrs, secs);
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
    }
}
