//! The privileged sysloop tests' topology, built with the namespace fixture
//! (`common::netns`): two hosts on a bridge, removed on drop; plus frames and socket helpers.
//!
//! ```text
//!   ns A: e0 10.77.0.1/24 --- pa [br0 in ns S] pb --- e0 10.77.0.2/24 :ns B
//! ```
#![allow(dead_code)]

pub use crate::common::netns::{enter, in_child};
use crate::common::netns::{run as must, Netns};
use minivrrp::sys::packet::{PacketSocket, RecvFrame};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::net::Ipv6Addr;
use std::os::fd::AsFd;
use std::process::Command;

pub const MCAST_V4: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
pub const VMAC1: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];

pub type R = Result<(), String>;

pub fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Namespaces A and B on a bridge in namespace S; deleted on drop (also on panic).
pub struct Topo {
    pub a: String,
    pub b: String,
    pub s: String,
    _ns: Netns,
}

impl Topo {
    pub fn new(test: &str) -> Topo {
        let mut ns = Netns::new(test, &[]);
        let (a, b, s) = (ns.add("a"), ns.add("b"), ns.add("s"));
        ns.bridge(&s, "br0", &[]);
        for (host, port, addr) in [(&a, "pa", "10.77.0.1/24"), (&b, "pb", "10.77.0.2/24")] {
            ns.veth(host, "e0", &s, port, &[]);
            ns.enslave(&s, port, "br0");
            must(&["ip", "-n", host, "addr", "add", addr, "dev", "e0"]);
            must(&["ip", "-n", host, "link", "set", "e0", "up"]);
        }
        // Frames sent before the kernel has applied a veth's carrier (linkwatch, later under
        // load) are dropped: wait until every end is operationally up.
        let up = |ns: &str, dev: &str| {
            run(&["ip", "-n", ns, "-o", "link", "show", dev]).is_ok_and(|o| o.contains("state UP"))
        };
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while ![(&a, "e0"), (&b, "e0"), (&s, "pa"), (&s, "pb")]
            .iter()
            .all(|(ns, dev)| up(ns, dev))
        {
            assert!(
                std::time::Instant::now() < end,
                "topo: links not up after 5 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Topo { a, b, s, _ns: ns }
    }
}

pub fn check(cond: bool, what: &str) -> R {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

pub fn readable(fd: impl AsFd, ms: u16) -> bool {
    let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(nix::poll::poll(&mut p, PollTimeout::from(ms)), Ok(n) if n > 0)
}

pub fn recv_within(s: &mut PacketSocket, ms: u16) -> Option<(RecvFrame, Vec<u8>)> {
    let mut buf = [0u8; 2048];
    if !readable(&*s, ms) {
        return None;
    }
    let f = s.recv(&mut buf).ok()??;
    Some((f, buf[..f.len].to_vec()))
}

pub fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A minimal IPv4 frame of protocol `proto` (112 = VRRP), not a real advert: the frame
/// contents belong to the VRRP wire layer; here only the headers the filter reads matter.
pub fn ipv4_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
) -> Vec<u8> {
    let payload = [0x31u8, 1, 100, 1, 0, 100, 0, 0];
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0xc0, 0, 28, 0, 0, 0, 0, 255, proto, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&payload);
    f
}

pub fn ipv6_frame(src_mac: [u8; 6], next: u8) -> Vec<u8> {
    let mut f = vec![0x33, 0x33, 0, 0, 0, 0x12];
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, next, 255]);
    f.extend_from_slice(&Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2).octets());
    f.extend_from_slice(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12).octets());
    f.extend_from_slice(&[0x31, 1, 100, 1, 0, 100, 0, 0]);
    f
}

pub fn ifindex(name: &str) -> Result<u32, String> {
    nix::net::if_::if_nametoindex(name).map_err(|e| format!("if_nametoindex {name}: {e}"))
}
