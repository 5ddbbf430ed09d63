//! ICMP echo sockets for ping checks. Prefers the unprivileged "ping socket"
//! (`SOCK_DGRAM`/`IPPROTO_ICMP`, allowed when the gid is in `net.ipv4.ping_group_range`) and
//! falls back to a raw socket (needs CAP_NET_RAW).
//!
//! Open one socket per ICMP check: a ping socket only receives the replies to its own
//! requests (the kernel picks the echo identifier and demultiplexes on it), and a raw socket
//! sees every ICMP message, which `check::IcmpCheck` filters by ident/seq/source.

use crate::check::icmp::{build_echo_request, parse_echo_reply, EchoReply};
use core::cell::Cell;
use core::net::{IpAddr, SocketAddr};
use nix::errno::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpKind {
    /// Unprivileged ping socket.
    Dgram,
    Raw,
}

#[derive(Debug)]
pub struct IcmpSocket {
    fd: OwnedFd,
    v6: bool,
    kind: IcmpKind,
    /// Ident of the last request: a ping socket rewrites it, so replies are reported with it.
    last_ident: Cell<u16>,
}

/// linux/icmp.h and socket.h: the raw ICMP socket's type filter.
const SOL_RAW: libc::c_int = 255;
const ICMP_FILTER: libc::c_int = 1;
const ICMP_ECHOREPLY: u32 = 0;

impl IcmpSocket {
    /// Ping socket if allowed, raw socket otherwise.
    pub fn open(v6: bool) -> Result<Self, Errno> {
        match Self::open_kind(v6, IcmpKind::Dgram) {
            Ok(s) => Ok(s),
            Err(Errno::EACCES | Errno::EPERM | Errno::EPROTONOSUPPORT) => {
                Self::open_kind(v6, IcmpKind::Raw)
            }
            Err(e) => Err(e),
        }
    }

    pub fn open_kind(v6: bool, kind: IcmpKind) -> Result<Self, Errno> {
        let (family, proto) = if v6 {
            (libc::AF_INET6, libc::IPPROTO_ICMPV6)
        } else {
            (libc::AF_INET, libc::IPPROTO_ICMP)
        };
        let ty = match kind {
            IcmpKind::Dgram => libc::SOCK_DGRAM,
            IcmpKind::Raw => libc::SOCK_RAW,
        };
        // SAFETY: plain socket(2).
        let raw =
            unsafe { libc::socket(family, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, proto) };
        if raw < 0 {
            return Err(Errno::last());
        }
        // SAFETY: fresh fd.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if v6 && kind == IcmpKind::Raw {
            // Only echo replies wake us up (RFC 3542 3.2 ICMP6_FILTER): block all, pass 129.
            let mut filter = [0xffff_ffffu32; 8];
            filter[(129 >> 5) as usize] &= !(1u32 << (129 & 31));
            // SAFETY: the filter is 32 bytes, as the option expects.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::IPPROTO_ICMPV6,
                    1, // ICMP6_FILTER
                    filter.as_ptr().cast(),
                    32,
                )
            };
        }
        if !v6 && kind == IcmpKind::Raw {
            // Only echo replies wake us up (Linux raw(7) ICMP_FILTER: a bit set blocks that
            // type), so a ping flood at the router cannot fill a check's socket buffer and
            // make its replies be lost (servers marked down).
            let block: u32 = !(1u32 << ICMP_ECHOREPLY);
            // SAFETY: the option takes one u32 bitmask.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    SOL_RAW,
                    ICMP_FILTER,
                    (&block as *const u32).cast(),
                    4,
                )
            };
        }
        Ok(IcmpSocket {
            fd,
            v6,
            kind,
            last_ident: Cell::new(0),
        })
    }

    pub fn kind(&self) -> IcmpKind {
        self.kind
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// Send one echo request (the payload marks it as ours in captures).
    pub fn send_echo(&self, dst: IpAddr, ident: u16, seq: u16) -> Result<(), Errno> {
        if dst.is_ipv6() != self.v6 {
            return Err(Errno::EAFNOSUPPORT);
        }
        let mut buf = [0u8; 64];
        let n = build_echo_request(&mut buf, self.v6, ident, seq, b"minivrrp-echo")
            .ok_or(Errno::EMSGSIZE)?;
        self.last_ident.set(ident);
        let (ss, len) = super::tcp::sockaddr_from(SocketAddr::new(dst, 0));
        // SAFETY: buf[..n] and the sockaddr are valid for the call.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                n,
                0,
                (&ss as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if rc < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    /// Receive one message. `Ok(Some)` for an echo reply, `Ok(None)` for anything else
    /// (other ICMP types, truncated packets), `Err(EAGAIN)` when the queue is empty.
    pub fn recv_reply(&self) -> Result<Option<(IpAddr, EchoReply)>, Errno> {
        let mut buf = [0u8; 1500];
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut ss: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
        let mut len = core::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: buffers are valid for recvfrom's out-parameters.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut ss as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        };
        if n < 0 {
            return Err(Errno::last());
        }
        let mut msg = &buf[..n as usize];
        if !self.v6 && self.kind == IcmpKind::Raw {
            // Raw IPv4 sockets deliver the IP header too; skip IHL words.
            let Some(&vihl) = msg.first() else {
                return Ok(None);
            };
            let ihl = usize::from(vihl & 0x0f) * 4;
            if ihl < 20 || msg.len() < ihl {
                return Ok(None);
            }
            msg = &msg[ihl..];
        }
        let Some(from) = super::tcp::sockaddr_to(&ss) else {
            return Ok(None);
        };
        match parse_echo_reply(msg, self.v6) {
            Ok(mut r) => {
                if self.kind == IcmpKind::Dgram {
                    // The kernel replaced our ident with its own and only hands this socket
                    // replies carrying that one: report the ident the check asked for.
                    r.ident = self.last_ident.get();
                }
                Ok(Some((from.ip(), r)))
            }
            Err(_) => Ok(None),
        }
    }
}

impl AsFd for IcmpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
