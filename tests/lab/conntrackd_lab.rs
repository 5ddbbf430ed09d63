//! Connection state that survives a failover: minivrrp's `conntrackd` option with Debian's
//! conntrackd (FTFW over UDP on a sync link of its own), nftables NAT and a strict firewall.
//!
//! r1 (priority 150) and r2 (100) route a client on the LAN (10.0.0.100, default route via
//! the VIP 10.0.0.254) to a server on the WAN side (10.9.0.100); the one instance carries the
//! LAN VIP and the WAN VIP 10.9.0.254 (`dev wan0`), and the master source-NATs the client to
//! the WAN VIP. The forward chain drops packets conntrack calls invalid, and
//! `nf_conntrack_tcp_loose` is 0, so a router without the connection's state cannot carry it.
//! A long-lived TCP flow (an echo, 100 bytes every 50 ms) runs through r1; then r1 dies
//! (minivrrp and conntrackd killed with SIGKILL, its links down) and r2 takes over:
//!
//! - with `option conntrackd '1'`: r2 commits the external cache before its VIPs appear; the
//!   same connection keeps echoing (no reset, bytes keep flowing);
//! - with it off (conntrackd still running and syncing): r2's kernel has no state, the flow
//!   dies.
//!
//! Both figures are printed. Run as root: `cargo test --test lab conntrackd_lab:: -- --nocapture`
//! (needs conntrackd, nft, python3).

use crate::common;

use common::lab::{Lab, Proc};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const LAN_VIP: &str = "10.0.0.254";
const WAN_VIP: &str = "10.9.0.254";
const SERVER: &str = "10.9.0.100";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_minivrrp"))
}

fn sh(args: &[&str]) {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(o.status.success(), "{args:?}: {o:?}");
}

/// The echo server, killed on drop.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const SERVER_PY: &str = r#"
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5000))
s.listen(8)
def echo(c):
    while True:
        d = c.recv(4096)
        if not d:
            return
        c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
"#;

/// One connection; a line per echo (`TIME TOTAL`), or `TIME error NAME` when it ends.
const CLIENT_PY: &str = r#"
import socket, sys, time
s = socket.create_connection((sys.argv[1], 5000), timeout=5)
s.settimeout(8)
out = open(sys.argv[2], "w", buffering=1)
out.write("port %d\n" % s.getsockname()[1])
n = 0
while True:
    try:
        s.sendall(b"x" * 100)
        got = 0
        while got < 100:
            d = s.recv(4096)
            if not d:
                raise ConnectionError("closed")
            got += len(d)
        n += got
        out.write("%.3f %d\n" % (time.time(), n))
    except Exception as e:
        out.write("%.3f error %s\n" % (time.time(), type(e).__name__))
        break
    time.sleep(0.05)
"#;

/// The shipped `docs/conntrackd.conf` for `node`: its own sync address first, and the lab's
/// paths for the lock and the control socket (the namespaces share one file system).
fn conntrackd_conf(lab: &Lab, node: &str, me: &str, peer: &str) -> String {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/conntrackd.conf"))
            .expect("docs/conntrackd.conf");
    let d = lab.dir.display();
    text.replace("IPv4_address 10.8.0.1\n", &format!("IPv4_address {me}\n"))
        .replace(
            "IPv4_Destination_Address 10.8.0.2",
            &format!("IPv4_Destination_Address {peer}"),
        )
        .replace("Syslog on", "Syslog off")
        .replace(
            "LogFile off",
            &format!("LogFile {d}/{node}-conntrackd.file.log"),
        )
        .replace(
            "/var/lock/conntrack.lock",
            &format!("{d}/{node}-conntrackd.lock"),
        )
        .replace(
            "/var/run/conntrackd.ctl",
            &format!("{d}/{node}-conntrackd.ctl"),
        )
}

fn minivrrp_conf(node: &str, priority: u8, conntrackd: bool, ct_conf: &Path) -> String {
    format!(
        "config globals 'globals'\n\toption router_id '{node}'\n\toption conntrackd_config '{}'\n\
         config instance 'gw'\n\toption interface 'br-lan'\n\toption vrid '81'\n\toption version '3'\n\
         \toption advert_int '0.2'\n\toption priority '{priority}'\n\toption garp_delay '0'\n\
         \tlist vip '{LAN_VIP}/24'\n\tlist vip '{WAN_VIP}/24 dev wan0'\n\toption conntrackd '{}'\n",
        ct_conf.display(),
        u8::from(conntrackd)
    )
}

/// What happened to the flow after r1 died.
struct Outcome {
    /// Bytes echoed over the same connection in the 3 s after the takeover was seen.
    bytes_after: u64,
    /// `error NAME` if the connection ended.
    error: Option<String>,
    /// The longest pause between two echoes after the kill (`None`: no echo after it).
    gap: Option<Duration>,
}

/// How r2's side is set up for the failover.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `option conntrackd '1'`, conntrackd running on both.
    Integration,
    /// `option conntrackd '0'` (conntrackd still running and syncing).
    Without,
    /// `option conntrackd '1'` but r2's conntrackd is dead before the failover (bad input).
    DeadDaemon,
}

fn run(tag: &str, mode: Mode) -> Outcome {
    let integration = mode != Mode::Without;
    let mut lab = Lab::with_routers(tag, 2);
    let (r1, r2) = (lab.node("r1").ns.clone(), lab.node("r2").ns.clone());
    // The servers' network behind the routers, deleted with the lab.
    let srv = lab.add_ns("srv");
    sh(&["ip", "-n", &srv, "link", "add", "brw", "type", "bridge"]);
    sh(&["ip", "-n", &srv, "link", "set", "brw", "up"]);
    sh(&[
        "ip",
        "-n",
        &srv,
        "addr",
        "add",
        &format!("{SERVER}/24"),
        "dev",
        "brw",
    ]);
    for (i, ns) in [(1, &r1), (2, &r2)] {
        let port = format!("w{i}");
        sh(&[
            "ip", "-n", ns, "link", "add", "wan0", "type", "veth", "peer", "name", &port, "netns",
            &srv,
        ]);
        sh(&[
            "ip", "-n", &srv, "link", "set", &port, "master", "brw", "up",
        ]);
        sh(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("10.9.0.{i}/24"),
            "dev",
            "wan0",
        ]);
        sh(&["ip", "-n", ns, "link", "set", "wan0", "up"]);
        for k in [
            "net.ipv4.ip_forward=1",
            "net.netfilter.nf_conntrack_tcp_loose=0",
        ] {
            sh(&["ip", "netns", "exec", ns, "sysctl", "-q", "-w", k]);
        }
        let nft = format!(
            "table ip gw {{\n chain forward {{ type filter hook forward priority 0; policy accept; ct state invalid drop; }}\n \
             chain postrouting {{ type nat hook postrouting priority 100; oifname \"wan0\" snat to {WAN_VIP}; }}\n}}\n"
        );
        let f = lab.dir.join(format!("r{i}.nft"));
        std::fs::write(&f, nft).unwrap();
        sh(&["ip", "netns", "exec", ns, "nft", "-f", f.to_str().unwrap()]);
    }
    // The sync link.
    sh(&[
        "ip", "-n", &r1, "link", "add", "sync0", "type", "veth", "peer", "name", "sync0", "netns",
        &r2,
    ]);
    for (i, ns) in [(1, &r1), (2, &r2)] {
        sh(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("10.8.0.{i}/24"),
            "dev",
            "sync0",
        ]);
        sh(&["ip", "-n", ns, "link", "set", "sync0", "up"]);
    }
    let client = lab.node("client").ns.clone();
    sh(&[
        "ip", "-n", &client, "route", "replace", "default", "via", LAN_VIP,
    ]);

    let mut procs: Vec<Proc> = Vec::new();
    let mut ct = Vec::new();
    for (node, me, peer) in [
        ("r1", "10.8.0.1", "10.8.0.2"),
        ("r2", "10.8.0.2", "10.8.0.1"),
    ] {
        let conf = lab.dir.join(format!("{node}-conntrackd.conf"));
        std::fs::write(&conf, conntrackd_conf(&lab, node, me, peer)).unwrap();
        ct.push(lab.spawn(
            node,
            "conntrackd",
            &["conntrackd", "-C", conf.to_str().unwrap()],
        ));
        let m = minivrrp_conf(
            node,
            if node == "r1" { 150 } else { 100 },
            integration,
            &conf,
        );
        procs.push(lab.spawn_minivrrp_text(node, bin(), &m, "minivrrp"));
    }
    let t0 = Instant::now();
    while !(lab.node_has_addr("r1", WAN_VIP) && lab.node_has_addr("r1", LAN_VIP)) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "r1 never took the VIPs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let py = |name: &str, text: &str| {
        let p = lab.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let server_py = py("server.py", SERVER_PY);
    let client_py = py("client.py", CLIENT_PY);
    let _server = Server(
        Command::new("ip")
            .args(["netns", "exec", &srv, "python3", &server_py])
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let flow = lab.dir.join("flow.log");
    let _client = lab.spawn(
        "client",
        "client",
        &["python3", &client_py, SERVER, flow.to_str().unwrap()],
    );
    let lines = || -> Vec<String> {
        std::fs::read_to_string(&flow)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    };
    let total = |ls: &[String]| -> u64 {
        ls.iter()
            .rev()
            .find_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    let t0 = Instant::now();
    while total(&lines()) < 3000 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the flow never started: {:?}",
            lines()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let conntrackd replicate the established state to r2's external cache.
    std::thread::sleep(Duration::from_millis(1500));
    let entries = lab.exec("r1", &["conntrack", "-L", "-p", "tcp", "--dport", "5000"]);
    println!(
        "r1 conntrack: {}",
        String::from_utf8_lossy(&entries.stdout).trim()
    );

    // r1 dies: its daemons are killed, its links go down.
    if mode == Mode::DeadDaemon {
        ct[1].kill_hard();
    }
    let before = total(&lines());
    let killed = Instant::now();
    let killed_wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    procs[0].kill_hard();
    ct[0].kill_hard();
    for dev in ["br-lan", "wan0", "sync0"] {
        sh(&["ip", "-n", &r1, "link", "set", dev, "down"]);
    }
    while !(lab.node_has_addr("r2", WAN_VIP) && lab.node_has_addr("r2", LAN_VIP)) {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "r2 never took the VIPs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = killed.elapsed();
    // Then 3 s (the client's retransmissions reach r2 within a few RTOs) plus its 8 s
    // receive timeout at most, to see the flow go on or die.
    let deadline = Instant::now() + Duration::from_secs(10);
    let outcome = loop {
        let ls = lines();
        let error = ls.iter().find_map(|l| {
            let mut w = l.split_whitespace();
            let (_, kind, name) = (w.next()?, w.next()?, w.next()?);
            (kind == "error").then(|| format!("error {name}"))
        });
        let after = total(&ls).saturating_sub(before);
        // The longest pause between two echoes from the kill on (the interruption).
        let times: Vec<f64> = ls
            .iter()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let t: f64 = w.next()?.parse().ok()?;
                let _: u64 = w.next()?.parse().ok()?;
                Some(t)
            })
            .collect();
        let gap = times
            .windows(2)
            .filter(|w| w[1] > killed_wall)
            .map(|w| Duration::from_secs_f64(w[1] - w[0].max(killed_wall)))
            .max();
        if error.is_some() || after >= 6000 || Instant::now() > deadline {
            break Outcome {
                bytes_after: after,
                error,
                gap,
            };
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let r2_log = procs[1].log_text();
    println!(
        "conntrackd integration {}: r2 took the VIPs {took:?} after r1 died; flow: {} bytes echoed after the failover, longest pause {:?}, {}",
        match mode {
            Mode::Integration => "on",
            Mode::Without => "off",
            Mode::DeadDaemon => "on, r2's conntrackd dead",
        },
        outcome.bytes_after,
        outcome.gap,
        outcome.error.as_deref().unwrap_or("no error (same connection)")
    );
    if mode == Mode::DeadDaemon {
        // One line says the commit failed; the VIPs were taken anyway (above).
        let failed: Vec<&str> = r2_log
            .lines()
            .filter(|l| l.contains("pre_master hook ended with"))
            .collect();
        assert_eq!(failed.len(), 1, "{r2_log}");
        assert!(failed[0].contains("taking the VIPs anyway"), "{r2_log}");
    } else if integration {
        assert!(
            r2_log.contains("pre_master hook done"),
            "r2 committed conntrackd's cache before its VIPs:\n{r2_log}"
        );
    }
    outcome
}

#[test]
fn a_tcp_flow_survives_the_masters_death_with_conntrackd_and_dies_without() {
    require!(root, "conntrackd", "conntrack", "nft", "python3");
    let with = run("hagwct1", Mode::Integration);
    let without = run("hagwct0", Mode::Without);
    // Bad input: the commit fails at once, the takeover is not held back.
    let dead = run("hagwct2", Mode::DeadDaemon);
    println!(
        "figures: with conntrackd {} bytes after the failover ({}); without {} bytes ({})",
        with.bytes_after,
        with.error.as_deref().unwrap_or("connection alive"),
        without.bytes_after,
        without.error.as_deref().unwrap_or("no error seen")
    );
    println!(
        "figures: r2's conntrackd dead: {} bytes after the failover ({})",
        dead.bytes_after,
        dead.error.as_deref().unwrap_or("no error seen")
    );
    assert!(
        with.error.is_none() && with.bytes_after >= 6000,
        "with conntrackd the same connection keeps flowing"
    );
    assert!(
        without.bytes_after < 6000,
        "without conntrackd's state on r2 the flow stops"
    );
}
