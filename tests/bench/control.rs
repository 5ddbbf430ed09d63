//! Control socket under abuse: does a flood of status requests plus a garbage-sending client
//! delay a master's adverts? `cargo bench --bench control` as root. Prints figures, asserts
//! nothing about timing.
//!
//! One router is MASTER of a VRRPv3 instance advertising every 0.1 s; a capture on the lab
//! bridge timestamps its adverts. For `BENCH_SECS` (default 10) seconds each:
//! * `idle`: nothing else happens;
//! * `paced`: one thread sends 1000 `status` requests per second through the control socket
//!   (connect, request, read the whole answer) while another makes 1000 connections a second
//!   writing garbage (bad CRC, oversize length prefixes);
//! * `flood`: the same, but the garbage client reconnects as fast as it can;
//! * `idle100`: 100 connections held open without a request (each replaced as soon as the
//!   daemon closes it) while `status` is asked 10 times a second.
//!
//! Every minivrrp case prints the `status` latency (p50 / p90 / max, ms) beside the gaps.
//!
//! keepalived has no control socket; its status interface is SIGUSR1 (dump the state to
//! /tmp/keepalived.data), so its side-by-side figure is the same advert gaps while it
//! receives 1000 SIGUSR1 per second.
//!
//! Figures per case: adverts seen, mean / p99 / max gap between consecutive adverts, max gap
//! in advert intervals (the goal: under 1.5), and for the flood how many requests
//! were answered and what the daemon counted as garbage.

#[path = "../common/mod.rs"]
mod common;

use common::lab::{self, Lab, VrrpSpec};
use minivrrp::control::{client, Format, Request, Response};

fn status_req(format: Format) -> Request {
    Request::Status { format, name: None }
}
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const INTERVAL: f64 = 0.1;

struct Gaps {
    n: usize,
    mean_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn gaps(cap: &lab::Capture, since: Duration, until: Duration) -> Gaps {
    let ts: Vec<Duration> = cap
        .adverts(since)
        .into_iter()
        .filter(|(t, a, _)| *t <= until && a.priority > 0 && a.vrid == 50)
        .map(|(t, _, _)| t)
        .collect();
    let mut g: Vec<f64> = ts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
        .collect();
    g.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = g.len();
    Gaps {
        n: ts.len(),
        mean_ms: if n > 0 {
            g.iter().sum::<f64>() / n as f64
        } else {
            f64::NAN
        },
        p99_ms: if n > 0 {
            g[((n as f64 * 0.99) as usize).min(n - 1)]
        } else {
            f64::NAN
        },
        max_ms: g.last().copied().unwrap_or(f64::NAN),
    }
}

fn print(imp: &str, case: &str, g: &Gaps, extra: &str) {
    println!(
        "{imp:<10} {case:<6} adverts {:>4}  gap mean {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms  = {:.2} intervals  {extra}",
        g.n,
        g.mean_ms,
        g.p99_ms,
        g.max_ms,
        g.max_ms / (INTERVAL * 1000.0)
    );
}

/// `per_sec` status requests per second until `stop`; returns (answered, failed, the
/// latency of each answered one in ms).
fn status_flood(sock: PathBuf, stop: Arc<AtomicBool>, per_sec: u64) -> (u32, u32, Vec<f64>) {
    let (mut ok, mut failed, mut lat) = (0, 0, Vec::new());
    let start = Instant::now();
    let mut k: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = start + Duration::from_micros(1_000_000 * k / per_sec);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        k += 1;
        let t = Instant::now();
        match client::request(&sock, &status_req(Format::Json)) {
            Ok(Response::Document(_)) => {
                ok += 1;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            _ => failed += 1,
        }
    }
    (ok, failed, lat)
}

/// p50 / p90 / max of latencies in ms.
fn latency(mut l: Vec<f64>) -> String {
    if l.is_empty() {
        return "status latency: none answered".into();
    }
    l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
    format!(
        "status latency p50 {:.1} ms p90 {:.1} ms max {:.1} ms",
        q(0.5),
        q(0.9),
        l[l.len() - 1]
    )
}

/// Holds `n` idle connections (connects and never writes), replacing each one the daemon
/// closes, until `stop`; returns how many connections it made.
fn idle_holder(sock: PathBuf, stop: Arc<AtomicBool>, n: usize) -> u32 {
    let mut conns: Vec<UnixStream> = Vec::new();
    let mut made = 0;
    while !stop.load(Ordering::Relaxed) {
        conns.retain(|c| {
            let _ = c.set_nonblocking(true);
            let mut b = [0u8; 1];
            !matches!(std::io::Read::read(&mut &*c, &mut b), Ok(0))
        });
        while conns.len() < n {
            match UnixStream::connect(&sock) {
                Ok(c) => {
                    conns.push(c);
                    made += 1;
                }
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    made
}

/// Garbage connections, `per_sec` a second (0: as fast as possible): a bad-CRC frame, then
/// an oversize prefix, alternating.
fn garbage_flood(sock: PathBuf, stop: Arc<AtomicBool>, sent: Arc<AtomicU32>, per_sec: u64) {
    let start = Instant::now();
    let mut junk = vec![0u8; 4096];
    for (i, b) in junk.iter_mut().enumerate() {
        *b = (i * 131 % 251) as u8;
    }
    junk[..4].copy_from_slice(&16u32.to_le_bytes());
    let mut k = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if let Some(us) = (1_000_000 * u64::from(k)).checked_div(per_sec) {
            let due = start + Duration::from_micros(us);
            if let Some(w) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(w);
            }
        }
        if let Ok(mut s) = UnixStream::connect(&sock) {
            let _ = s.set_write_timeout(Some(Duration::from_millis(50)));
            if k % 2 == 0 {
                let _ = s.write_all(&junk);
            } else {
                let _ = s.write_all(&u32::MAX.to_le_bytes());
            }
            sent.fetch_add(1, Ordering::Relaxed);
        }
        k += 1;
    }
}

fn settle(lab: &Lab, procs: &[&lab::Proc]) {
    let (h, _) = lab.wait_holders("10.0.0.254", &["r1"], Duration::from_secs(10));
    if h != ["r1"] {
        for p in procs {
            eprintln!("{}", p.log_text());
        }
        panic!("r1 did not become master: {h:?}");
    }
    std::thread::sleep(Duration::from_millis(500));
}

fn minivrrp_cases(secs: u64) {
    let bin = common::knobs::minivrrp_bin();
    let lab = Lab::with_routers("ctlbench", 1);
    let cap = lab.capture("flood");
    let spec = VrrpSpec::new(50, 150, 3, INTERVAL, "10.0.0.254/24");
    let r1 = lab.spawn_minivrrp("r1", &bin, &[spec]);
    settle(&lab, &[&r1]);
    let sock = lab.control_socket("r1");

    let t0 = lab::now_realtime();
    std::thread::sleep(Duration::from_secs(secs));
    let g = gaps(&cap, t0, lab::now_realtime());
    print("minivrrp", "idle", &g, "");

    for (case, garbage_rate) in [("paced", 1000), ("flood", 0)] {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU32::new(0));
        let t0 = lab::now_realtime();
        let st = {
            let (s, p) = (stop.clone(), sock.clone());
            std::thread::spawn(move || status_flood(p, s, 1000))
        };
        let gb = {
            let (s, p, n) = (stop.clone(), sock.clone(), sent.clone());
            std::thread::spawn(move || garbage_flood(p, s, n, garbage_rate))
        };
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        let t1 = lab::now_realtime();
        let (ok, failed, lat) = st.join().unwrap();
        gb.join().unwrap();
        let g = gaps(&cap, t0, t1);
        let ctl: serde_json::Value = match client::request(&sock, &status_req(Format::Json)) {
            Ok(Response::Document(d)) => {
                serde_json::from_str::<serde_json::Value>(&d).unwrap()["control"].clone()
            }
            r => panic!("status after the flood: {r:?}"),
        };
        print(
            "minivrrp",
            case,
            &g,
            &format!(
                "status answered {ok} ({:.0}/s) failed {failed}, {}; garbage connections {} (daemon: garbage {} oversize {} busy {} throttled {})",
                ok as f64 / secs as f64,
                latency(lat),
                sent.load(Ordering::Relaxed),
                ctl["dropped_garbage"],
                ctl["dropped_oversize"],
                ctl["refused_busy"],
                ctl["throttled"]
            ),
        );
    }
    // 100 idle connections held (each replaced when closed); status 10 times a second.
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = lab::now_realtime();
    let holder = {
        let (s, p) = (stop.clone(), sock.clone());
        std::thread::spawn(move || idle_holder(p, s, 100))
    };
    std::thread::sleep(Duration::from_millis(200));
    let st = {
        let (s, p) = (stop.clone(), sock.clone());
        std::thread::spawn(move || status_flood(p, s, 10))
    };
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let t1 = lab::now_realtime();
    let (ok, failed, lat) = st.join().unwrap();
    let made = holder.join().unwrap();
    print(
        "minivrrp",
        "idle100",
        &gaps(&cap, t0, t1),
        &format!(
            "status answered {ok} failed {failed}, {}; idle connections made {made}",
            latency(lat)
        ),
    );
    drop(r1);
}

fn keepalived_cases(secs: u64) {
    if !common::require_tool("bench control", "keepalived") {
        return;
    }
    let lab = Lab::with_routers("ctlbenchk", 1);
    let cap = lab.capture("floodk");
    let spec = VrrpSpec::new(50, 150, 3, INTERVAL, "10.0.0.254/24");
    let k = lab.spawn_keepalived("r1", &[spec]);
    settle(&lab, &[&k]);
    let t0 = lab::now_realtime();
    std::thread::sleep(Duration::from_secs(secs));
    print(
        "keepalived",
        "idle",
        &gaps(&cap, t0, lab::now_realtime()),
        "",
    );

    // SIGUSR1 to the VRRP child (the one that writes the data file), 1000 per second.
    let pids = k.pids();
    let target = *pids.iter().max().unwrap_or(&k.pid());
    let t0 = lab::now_realtime();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let due = start + Duration::from_micros(1000 * n);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        unsafe { libc::kill(target, libc::SIGUSR1) };
        n += 1;
    }
    let g = gaps(&cap, t0, lab::now_realtime());
    print(
        "keepalived",
        "flood",
        &g,
        &format!("SIGUSR1 sent {n} to pid {target}"),
    );
    drop(k);
    let _ = std::fs::remove_file(Path::new("/tmp/keepalived.data"));
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !common::require_root("bench control") || !common::require_tool("bench control", "tcpdump") {
        return;
    }
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "control socket flood vs advert gaps (VRRPv3, interval {INTERVAL} s, {secs} s per case)"
    );
    minivrrp_cases(secs);
    keepalived_cases(secs);
}
