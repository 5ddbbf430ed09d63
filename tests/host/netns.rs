//! Helpers for the privileged sysloop tests: a private three-namespace topology with a
//! bridge, removed on drop, and a forked child that enters namespaces with setns(2).
//!
//! ```text
//!   ns A: e0 10.77.0.1/24 --- pa [br0 in ns S] pb --- e0 10.77.0.2/24 :ns B
//! ```
#![allow(dead_code)]

use minivrrp::sys::packet::{PacketSocket, RecvFrame};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use std::io::{Read, Write};
use std::net::Ipv6Addr;
use std::os::fd::{AsFd, AsRawFd};
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

/// Three namespaces and a bridge; deleted on drop.
pub struct Topo {
    pub a: String,
    pub b: String,
    pub s: String,
}

impl Topo {
    pub fn new(test: &str) -> Topo {
        // A sequence number: the host tier's tests run side by side in one process.
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = format!("mv{}-t{seq}{test}", std::process::id());
        let t = Topo {
            a: format!("{p}-a"),
            b: format!("{p}-b"),
            s: format!("{p}-s"),
        };
        for ns in [&t.a, &t.b, &t.s] {
            run(&["ip", "netns", "add", ns]).unwrap();
        }
        let (a, b, s) = (t.a.as_str(), t.b.as_str(), t.s.as_str());
        let cmds: Vec<Vec<&str>> = vec![
            vec!["ip", "-n", s, "link", "add", "br0", "type", "bridge"],
            vec!["ip", "-n", s, "link", "set", "br0", "up"],
            vec![
                "ip", "-n", a, "link", "add", "e0", "type", "veth", "peer", "name", "pa", "netns",
                s,
            ],
            vec![
                "ip", "-n", b, "link", "add", "e0", "type", "veth", "peer", "name", "pb", "netns",
                s,
            ],
            vec!["ip", "-n", s, "link", "set", "pa", "master", "br0", "up"],
            vec!["ip", "-n", s, "link", "set", "pb", "master", "br0", "up"],
            vec!["ip", "-n", a, "addr", "add", "10.77.0.1/24", "dev", "e0"],
            vec!["ip", "-n", b, "addr", "add", "10.77.0.2/24", "dev", "e0"],
            vec!["ip", "-n", a, "link", "set", "e0", "up"],
            vec!["ip", "-n", b, "link", "set", "e0", "up"],
            vec!["ip", "-n", a, "link", "set", "lo", "up"],
            vec!["ip", "-n", b, "link", "set", "lo", "up"],
        ];
        for c in cmds {
            run(&c).unwrap();
        }
        t
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b, &self.s] {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}

/// Move the calling (single-threaded, forked) process into namespace `ns`.
pub fn enter(ns: &str) -> R {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).map_err(|e| e.to_string())?;
    // SAFETY: plain setns(2) on a valid fd.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!("setns {ns}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Run `f` in a forked child; a returned error or panic fails the test with its message.
pub fn in_child(f: impl FnOnce() -> R) {
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
