//! TCP, HTTP and ICMP checks against real servers in network namespaces (root only).
//! The checks run on a thread moved into a client namespace; servers run in their own
//! namespaces; everything is deleted by a Drop guard.

use crate::checks_support;

use checks_support::{Driver, Kind, Netns};
use core::net::{IpAddr, SocketAddr};
use minivrrp::base::Duration;
use minivrrp::check::{
    ConnCheck, Health, HttpError, HttpSpec, IcmpCheck, IcmpSpec, Reason, Schedule, TcpSpec,
};
use minivrrp::sys::icmp::{IcmpKind, IcmpSocket};

fn sched(timeout_ms: u64) -> Schedule {
    Schedule {
        interval: Duration::from_millis(500),
        timeout: Duration::from_millis(timeout_ms),
        fall: 1,
        rise: 1,
        retry: 0,
        delay_before_retry: Duration::from_millis(100),
        initial: Health::Unknown,
        warmup: Duration::from_secs(1),
    }
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

/// First finished attempt of each slot.
fn first_reasons(d: &Driver) -> Vec<Reason> {
    d.slots.iter().map(|s| s.attempts[0].0).collect()
}

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

    let results = ns.run_in(0, || {
        let mut d = Driver::new();
        let now = d.now();
        let srv: SocketAddr = "10.77.1.2:8080".parse().unwrap();
        let tcp = |addr: &str| TcpSpec {
            addr: addr.parse().unwrap(),
            schedule: sched(500),
            weight: 0,
        };
        // TCP: listener, closed port (RST), silent address (no ARP answer: times out),
        // closed port over IPv6 (RST).
        for (n, a) in [
            "10.77.1.2:8080",
            "10.77.1.2:8081",
            "10.77.1.99:80",
            "[fd00:77:1::2]:8081",
        ]
        .iter()
        .enumerate()
        {
            d.add(Kind::Conn(ConnCheck::tcp(&tcp(a), n as u64, now)));
        }
        for (n, path) in ["/ok", "/500", "/wrong", "/close", "/hang"]
            .iter()
            .enumerate()
        {
            let mut spec = HttpSpec::new(srv, path);
            spec.schedule = sched(800);
            spec.expect_body.push_str("all good").unwrap();
            let c = ConnCheck::http(&spec, 100 + n as u64, now).unwrap();
            d.add(Kind::Conn(c));
        }
        let done = d.run_until(std::time::Duration::from_secs(15), |d| {
            d.slots.iter().all(|s| !s.attempts.is_empty())
        });
        assert!(done, "not every check finished an attempt");
        let healths: Vec<Health> = d
            .slots
            .iter()
            .map(|s| match &s.kind {
                Kind::Conn(c) => c.health(),
                _ => Health::Unknown,
            })
            .collect();
        (first_reasons(&d), healths)
    });
    let (reasons, healths) = results;
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
    // Allow unprivileged ping sockets for gid 0 in the client namespace only.
    ns.exec(0, &["sysctl", "-qw", "net.ipv4.ping_group_range=0 0"]);

    let got = ns.run_in(0, || {
        let mut d = Driver::new();
        let now = d.now();
        let targets: [(&str, IcmpKind); 6] = [
            ("10.77.1.2", IcmpKind::Raw),
            ("10.77.2.2", IcmpKind::Raw),
            ("10.77.1.2", IcmpKind::Dgram),
            ("10.77.2.2", IcmpKind::Dgram),
            ("fd00:77:1::2", IcmpKind::Raw),
            ("fd00:77:1::2", IcmpKind::Dgram),
        ];
        for (n, (dst, kind)) in targets.iter().enumerate() {
            let dst: IpAddr = dst.parse().unwrap();
            let sock = IcmpSocket::open_kind(dst.is_ipv6(), *kind).expect("icmp socket");
            assert_eq!(sock.kind(), *kind);
            let spec = IcmpSpec {
                dst,
                ident: 0x4d00 + n as u16,
                schedule: sched(500),
                weight: 0,
            };
            d.add(Kind::Icmp(IcmpCheck::new(&spec, n as u64, now), sock));
        }
        // Two rounds each, so a reply to one round is not mistaken for the next.
        let done = d.run_until(std::time::Duration::from_secs(10), |d| {
            d.slots.iter().all(|s| s.attempts.len() >= 2)
        });
        assert!(done);
        d.slots
            .iter()
            .map(|s| (s.attempts[0].0, s.attempts[1].0, s.reports[0].health))
            .collect::<Vec<_>>()
    });
    let up = (Reason::Ok, Reason::Ok, Health::Up);
    let down = (Reason::Timeout, Reason::Timeout, Health::Down);
    assert_eq!(got, [up, down, up, down, up, up]);
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
