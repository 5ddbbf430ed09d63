//! TCP, HTTP and ICMP checks against real servers in network namespaces (root only), run by
//! the daemon's check engine on the real poll loop. The engine runs on a thread moved into a
//! client namespace; servers run in their own namespaces; everything is deleted by a Drop
//! guard.

use crate::checks_support;

use crate::common::netns::Netns;
use checks_support::{cfg, run_until, stop, H};
use minivrrp::check::{Health, HttpError, Reason};
use minivrrp::daemon::checks::ProbeId;
use minivrrp::daemon::Loop;
use minivrrp::sys::clock;
use minivrrp::sys::icmp::{IcmpKind, IcmpSocket};
use std::fmt::Write as _;

/// A `check` section tracked by instance `vi1` (so the engine runs it as a tracker, which
/// starts Unknown): one round per 0.5 s, fall 1, rise 1, no retry.
fn check(
    name: &str,
    kind: &str,
    addr: &str,
    port: Option<u16>,
    timeout: &str,
    extra: &str,
) -> String {
    let mut s = format!(
        "
config check '{name}'
    option type '{kind}'
    option address '{addr}'
    option interval '0.5'
    option connect_timeout '{timeout}'
    option retry '0'
    option fall '1'
    option rise '1'
"
    );
    if let Some(p) = port {
        let _ = writeln!(s, "    option port '{p}'");
    }
    s.push_str(extra);
    s
}

/// An instance tracking `checks` (weight 0: irrelevant here).
fn tracking(checks: &[&str]) -> String {
    let mut s = String::from(
        "
config instance 'vi1'
    option interface 'eth0'
    option vrid '1'
    list vip '10.0.0.10'
",
    );
    for c in checks {
        let _ = writeln!(s, "    list track_check '{c}'");
    }
    s
}

fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

const HTTP_SERVER: &str = r#"
import http.server, socketserver, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        if self.path == "/close":
            self.close_connection = True
            return
        if self.path == "/hang":
            time.sleep(30)
            return
        code, body = {"/ok": (200, b"minivrrp says all good\n"),
                      "/500": (500, b"all good but broken\n"),
                      "/wrong": (200, b"something else\n")}.get(self.path, (404, b"no\n"))
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
fn tcp_and_http_checks_against_real_server() {
    require!(root, "python3");
    let mut ns = Netns::new("http", &["c", "s"]);
    ns.link(0, "v0", "10.77.1.1/24", 1, "v1", "10.77.1.2/24");
    ns.exec(
        0,
        &["ip", "addr", "add", "fd00:77:1::1/64", "dev", "v0", "nodad"],
    );
    ns.exec(
        1,
        &["ip", "addr", "add", "fd00:77:1::2/64", "dev", "v1", "nodad"],
    );
    let ready = ns.spawn_server(1, &[python(), "-c", HTTP_SERVER, "10.77.1.2", "8080"]);
    assert_eq!(ready.trim(), "ready");

    // TCP: listener, closed port (RST), silent address (no ARP answer: times out), closed
    // port over IPv6 (RST). HTTP: every path of the server, the body must say "all good".
    let mut text = String::new();
    let mut names = Vec::new();
    for (n, (addr, port)) in [
        ("10.77.1.2", 8080),
        ("10.77.1.2", 8081),
        ("10.77.1.99", 80),
        ("fd00:77:1::2", 8081),
    ]
    .iter()
    .enumerate()
    {
        let name = format!("tcp{n}");
        text.push_str(&check(&name, "tcp", addr, Some(*port), "0.5", ""));
        names.push(name);
    }
    for (n, path) in ["/ok", "/500", "/wrong", "/close", "/hang"]
        .iter()
        .enumerate()
    {
        let name = format!("http{n}");
        let extra = format!("    option path '{path}'\n    option expect 'all good'\n");
        text.push_str(&check(
            &name,
            "http",
            "10.77.1.2",
            Some(8080),
            "0.8",
            &extra,
        ));
        names.push(name);
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    text.push_str(&tracking(&names));
    let c = cfg(&text);
    let n = names.len();

    let (reasons, healths) = ns.run_in(0, move || {
        let mut l: Loop<()> = Loop::new();
        let mut h = H::new(&c, l.ctx(), clock::now());
        let done = run_until(&mut l, &mut h, std::time::Duration::from_secs(15), |h| {
            h.attempts.iter().all(|a| !a.is_empty())
        });
        assert!(done, "not every check finished an attempt");
        // First finished attempt and health of each probe.
        let probes: Vec<ProbeId> = (0..n as u16).map(ProbeId::Check).collect();
        let reasons: Vec<Reason> = probes.iter().map(|p| h.attempts_of(*p)[0].0).collect();
        let healths: Vec<Health> = probes.iter().map(|p| h.engine.health(*p)).collect();
        stop(&mut l, &mut h);
        (reasons, healths)
    });
    assert_eq!(
        reasons,
        [
            Reason::Ok,
            Reason::ConnectFailed(libc::ECONNREFUSED),
            Reason::Timeout,
            Reason::ConnectFailed(libc::ECONNREFUSED),
            Reason::Ok,
            Reason::Http(HttpError::Status(500)),
            Reason::Http(HttpError::BodyMismatch),
            Reason::Http(HttpError::Truncated),
            Reason::Timeout,
        ]
    );
    use Health::{Down, Up};
    assert_eq!(healths, [Up, Down, Down, Down, Up, Down, Down, Down, Down]);
}

/// ICMP sockets the calling thread's namespace holds: (raw IPv4 ICMP, raw ICMPv6, ping IPv4,
/// ping IPv6), read from `/proc/thread-self/net` (a raw socket's "port" is its protocol).
fn icmp_sockets() -> (usize, usize, usize, usize) {
    let rows = |file: &str, port: Option<&str>| {
        std::fs::read_to_string(format!("/proc/thread-self/net/{file}"))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .lines()
            .skip(1)
            .filter(|l| {
                let local = l.split_whitespace().nth(1).unwrap_or("");
                port.is_none_or(|p| local.rsplit(':').next() == Some(p))
            })
            .count()
    };
    (
        rows("raw", Some("0001")),
        rows("raw6", Some("003A")),
        rows("icmp", None),
        rows("icmp6", None),
    )
}

#[test]
fn icmp_check_up_against_answering_host_down_against_dropping_host() {
    require!(root);
    let ns = Netns::new("icmp", &["c", "s1", "s2"]);
    ns.link(0, "v1", "10.77.1.1/24", 1, "v0", "10.77.1.2/24");
    ns.link(0, "v2", "10.77.2.1/24", 2, "v0", "10.77.2.2/24");
    ns.exec(
        0,
        &["ip", "addr", "add", "fd00:77:1::1/64", "dev", "v1", "nodad"],
    );
    ns.exec(
        1,
        &["ip", "addr", "add", "fd00:77:1::2/64", "dev", "v0", "nodad"],
    );
    ns.exec(2, &["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"]);
    let mut text = String::new();
    for (n, dst) in ["10.77.1.2", "10.77.2.2", "fd00:77:1::2"]
        .iter()
        .enumerate()
    {
        text.push_str(&check(&format!("ping{n}"), "icmp", dst, None, "0.5", ""));
    }
    text.push_str(&tracking(&["ping0", "ping1", "ping2"]));
    let c = cfg(&text);

    // The engine's probes on raw sockets (a new namespace allows no ping sockets), then, with
    // unprivileged ping sockets allowed for gid 0 in the client namespace only, on those.
    let mut got = Vec::new();
    for (kind, sockets) in [
        (IcmpKind::Raw, (2, 1, 0, 0)),
        (IcmpKind::Dgram, (0, 0, 2, 1)),
    ] {
        if kind == IcmpKind::Dgram {
            ns.exec(0, &["sysctl", "-qw", "net.ipv4.ping_group_range=0 0"]);
        }
        let c = c.clone();
        let (open, rounds) = ns.run_in(0, move || {
            let mut l: Loop<()> = Loop::new();
            let mut h = H::new(&c, l.ctx(), clock::now());
            // Two rounds each, so a reply to one round is not mistaken for the next.
            let done = run_until(&mut l, &mut h, std::time::Duration::from_secs(10), |h| {
                h.attempts.iter().all(|a| a.len() >= 2)
            });
            assert!(done);
            // (A ping socket is listed once it has sent: it is bound then.)
            let open = icmp_sockets();
            let rounds: Vec<_> = (0..3u16)
                .map(ProbeId::Check)
                .map(|p| {
                    let a = h.attempts_of(p);
                    (a[0].0, a[1].0, h.health_seq(p)[0])
                })
                .collect();
            stop(&mut l, &mut h);
            (open, rounds)
        });
        assert_eq!(open, sockets, "{kind:?}: (raw, raw6, ping, ping6) sockets");
        got.push(rounds);
    }
    let up = (Reason::Ok, Reason::Ok, Health::Up);
    let down = (Reason::Timeout, Reason::Timeout, Health::Down);
    assert_eq!(got, [[up, down, up], [up, down, up]]);
}

#[test]
fn icmp_open_falls_back_to_raw_when_ping_sockets_are_not_allowed() {
    require!(root);
    let ns = Netns::new("icmpfb", &["c"]);
    // A new namespace starts with ping_group_range "1 0": nobody may open ping sockets.
    let kind = ns.run_in(0, || IcmpSocket::open(false).map(|s| s.kind()));
    assert_eq!(kind, Ok(IcmpKind::Raw));
    ns.exec(0, &["sysctl", "-qw", "net.ipv4.ping_group_range=0 0"]);
    let kind = ns.run_in(0, || IcmpSocket::open(false).map(|s| s.kind()));
    assert_eq!(kind, Ok(IcmpKind::Dgram));
}
