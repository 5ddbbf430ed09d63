//! VRRP on the wire: AF_PACKET receive/send of whole Ethernet frames, multicast membership,
//! and raw IP sockets (protocol 112) for unicast peers.
//!
//! Why AF_PACKET and not only a raw IP socket: the master must send adverts from the
//! virtual MAC 00:00:5e:00:01:VRID (RFC 5798 7.3) while the interface keeps its own MAC,
//! which only a hand-built Ethernet frame can do; and receiving on the packet socket gives
//! the source MAC and the interface of every advert.

use crate::base::Duration;
use crate::sys::bpf;
use crate::sys::fd::setsockopt_raw;
use nix::errno::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

mod frame;
mod ring;

use frame::foreign_vlan;
pub use frame::{PktType, RecvFrame};
use ring::RxRing;

use crate::vrrp::wire::{
    IPPROTO_VRRP, VRRP_GROUP_V4, VRRP_GROUP_V6, VRRP_MAC_V4, VRRP_MAC_V6, VRRP_TOS, VRRP_TTL,
};

/// linux/if_packet.h socket options (not exported by libc for every target).
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_AUXDATA: libc::c_int = 8;

/// `struct tpacket_auxdata` (linux/if_packet.h), the PACKET_AUXDATA control message.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TpacketAuxdata {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
}
/// `struct tpacket_stats` (linux/if_packet.h), read by PACKET_STATISTICS.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TpacketStats {
    tp_packets: u32,
    tp_drops: u32,
}

/// The kernel's own count for a packet socket since the last read (reading resets it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Frames that passed the filter and were queued to the socket.
    pub delivered: u32,
    /// Frames that passed the filter but found the receive buffer full.
    pub overflow: u32,
}

impl RecvFrame {
    /// Our own transmitted frame: the filter already drops these, this is the second check
    /// in case a filter could not be attached or the kernel delivered one before it was.
    pub fn is_own(&self) -> bool {
        self.pkttype == PktType::Outgoing
    }
}

fn cvt_fd(rc: libc::c_int) -> Result<OwnedFd, Errno> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: a fresh fd returned by socket(2), owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(rc) })
    }
}

fn sockaddr_ll(ifindex: u32, protocol: u16, mac: Option<[u8; 6]>) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { core::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = protocol.to_be();
    sa.sll_ifindex = ifindex as i32;
    if let Some(m) = mac {
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&m);
    }
    sa
}

/// One AF_PACKET SOCK_RAW socket bound to one interface, VRRP filter attached; received
/// frames come through its receive queue (`recvmsg`), or through a mapped ring
/// ([`PacketSocket::set_rx_delay`]).
pub struct PacketSocket {
    // Declared before `fd`: unmapped before the socket closes.
    ring: Option<RxRing>,
    fd: OwnedFd,
    ifindex: u32,
}

impl PacketSocket {
    /// Open, filter and bind to `ifindex`. Non-blocking and close-on-exec.
    ///
    /// The socket is created with protocol 0 (receives nothing), the filter is attached, and
    /// only then is it bound to ETH_P_ALL on the interface: so no unfiltered frame can be
    /// queued in the window between socket() and attaching the filter. With `rx_delay` the
    /// receive ring is set up before the bind too (see [`Self::set_rx_delay`]).
    pub fn open(
        ifindex: u32,
        filter: &[bpf::Insn],
        rx_delay: Option<Duration>,
    ) -> Result<Self, Errno> {
        // SAFETY: plain socket(2) call.
        let fd = cvt_fd(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        bpf::attach(fd.as_raw_fd(), filter)?;
        // The VLAN tag the kernel strips travels in this control message (second line
        // behind the filter's SKF_AD_VLAN_TAG_PRESENT).
        setsockopt_raw(fd.as_raw_fd(), libc::SOL_PACKET, PACKET_AUXDATA, &1i32)?;
        // Since Linux 4.20 the kernel can skip the outgoing copy entirely; older kernels
        // reject the option, and the filter drops those frames anyway.
        let _ = setsockopt_raw(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &1i32,
        );
        let mut sock = PacketSocket {
            ring: None,
            fd,
            ifindex,
        };
        sock.set_rx_delay(rx_delay)?;
        let sa = sockaddr_ll(ifindex, libc::ETH_P_ALL as u16, None);
        // SAFETY: `sa` is a valid sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                sock.fd.as_raw_fd(),
                &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                core::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        Errno::result(rc)?;
        Ok(sock)
    }

    /// Receive through a TPACKET_V3 ring (`sys::packet::ring`) that hands frames over at the
    /// latest `delay` after the first of them arrived, each with its arrival time; `None`:
    /// through the receive queue, one `recvmsg` per frame, as they arrive. Replacing a ring
    /// drops the frames still in it.
    pub fn set_rx_delay(&mut self, delay: Option<Duration>) -> Result<(), Errno> {
        if let Some(old) = self.ring.take() {
            old.unmap()?;
        }
        if let Some(d) = delay {
            self.ring = Some(RxRing::map(self.fd.as_raw_fd(), d)?);
            // Frames queued before the ring stay in the receive queue, which the ring's
            // reader never looks at, and would keep poll reporting the socket readable:
            // drop them (new frames go to the ring). Bounded: nothing joins the queue now.
            let mut scratch = [0u8; 64];
            while let Ok(Some(_)) = self.recv_any(&mut scratch) {}
        }
        Ok(())
    }

    /// Whether frames come through a ring.
    pub fn has_ring(&self) -> bool {
        self.ring.is_some()
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Replace the filter (the kernel swaps it atomically), e.g. when a reload changes the
    /// VRIDs on the interface.
    pub fn set_filter(&self, filter: &[bpf::Insn]) -> Result<(), Errno> {
        bpf::attach(self.fd.as_raw_fd(), filter)
    }

    /// Receive buffer size in bytes (SO_RCVBUFFORCE as root, so it may go past
    /// `net.core.rmem_max`; SO_RCVBUF otherwise, capped by it).
    pub fn set_rcvbuf(&self, bytes: usize) -> Result<(), Errno> {
        let n = bytes.min(i32::MAX as usize) as i32;
        let raw = self.fd.as_raw_fd();
        setsockopt_raw(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &n)
            .or_else(|_| setsockopt_raw(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &n))
    }

    /// PACKET_STATISTICS: what the kernel delivered and dropped for a full buffer since the
    /// last call (the kernel resets its counters on every read).
    pub fn take_kernel_stats(&self) -> Result<KernelStats, Errno> {
        let mut st = TpacketStats::default();
        let mut len = core::mem::size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: st is valid for `len` bytes, the size the option writes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                &mut st as *mut TpacketStats as *mut libc::c_void,
                &mut len,
            )
        };
        Errno::result(rc)?;
        // tp_packets counts the dropped ones too.
        Ok(KernelStats {
            delivered: st.tp_packets.saturating_sub(st.tp_drops),
            overflow: st.tp_drops,
        })
    }

    /// Receive the link-layer multicast addresses of 224.0.0.18 and ff02::12 on this
    /// interface (PACKET_ADD_MEMBERSHIP; dropped with the socket). This programs the NIC's
    /// multicast filter; it does not send IGMP/MLD reports: see [`McastJoin`] for that.
    pub fn join_vrrp_multicast(&self) -> Result<(), Errno> {
        self.add_multicast_mac(VRRP_MAC_V4)?;
        self.add_multicast_mac(VRRP_MAC_V6)
    }

    pub fn add_multicast_mac(&self, mac: [u8; 6]) -> Result<(), Errno> {
        // SAFETY: packet_mreq is plain old data.
        let mut mr: libc::packet_mreq = unsafe { core::mem::zeroed() };
        mr.mr_ifindex = self.ifindex as i32;
        mr.mr_type = libc::PACKET_MR_MULTICAST as u16;
        mr.mr_alen = 6;
        mr.mr_address[..6].copy_from_slice(&mac);
        setsockopt_raw(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mr,
        )
    }

    /// Receive one frame from a peer into `buf`; `Ok(None)` when nothing is pending.
    /// Our own transmitted frames are skipped here too (a second line behind the filter);
    /// after `OWN_SKIP_MAX` of them in a row it returns `Ok(None)` so one call stays bounded
    /// (the fd stays readable and the loop comes back next turn).
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Option<RecvFrame>, Errno> {
        const OWN_SKIP_MAX: usize = 8;
        for _ in 0..OWN_SKIP_MAX {
            let next = match self.ring.as_mut() {
                Some(ring) => ring.next(buf),
                None => self.recv_any(buf)?,
            };
            match next {
                Some(f) if f.is_own() => {}
                other => return Ok(other),
            }
        }
        Ok(None)
    }

    /// Receive one frame from the receive queue, whoever sent it (including our own,
    /// `RecvFrame::is_own`). With a ring, frames go there instead: see [`Self::recv`].
    pub fn recv_any(&self, buf: &mut [u8]) -> Result<Option<RecvFrame>, Errno> {
        // SAFETY: sockaddr_ll and msghdr are plain old data.
        let mut sa: libc::sockaddr_ll = unsafe { core::mem::zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // Room for one tpacket_auxdata control message, aligned for cmsghdr.
        let mut cbuf = [0u64; 8];
        // SAFETY: msghdr is plain old data; all-zero is valid.
        let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
        msg.msg_name = &mut sa as *mut libc::sockaddr_ll as *mut libc::c_void;
        msg.msg_namelen = core::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = core::mem::size_of_val(&cbuf) as _;
        // SAFETY: every pointer in msg is valid for the lengths given. MSG_TRUNC makes the
        // return value the real frame length, so an oversized frame is detected, not misparsed.
        let n = unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &mut msg,
                libc::MSG_TRUNC | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return match Errno::last() {
                Errno::EAGAIN => Ok(None),
                e => Err(e),
            };
        }
        let n = n as usize;
        let mut src_mac = [0u8; 6];
        if sa.sll_halen as usize >= 6 {
            src_mac.copy_from_slice(&sa.sll_addr[..6]);
        }
        Ok(Some(RecvFrame {
            len: n.min(buf.len()),
            truncated: n > buf.len(),
            pkttype: PktType::from_raw(sa.sll_pkttype),
            ifindex: sa.sll_ifindex.max(0) as u32,
            src_mac,
            vlan_tagged: vlan_tagged(&msg),
            at: None,
        }))
    }

    /// Send one complete Ethernet frame (destination MAC and ethertype are taken from it).
    /// `Ok(None)` if the socket buffer is full (EAGAIN): the caller counts a lost advert.
    pub fn send(&self, frame: &[u8]) -> Result<Option<usize>, Errno> {
        if frame.len() < 14 {
            return Err(Errno::EINVAL);
        }
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&frame[..6]);
        let proto = u16::from_be_bytes([frame[12], frame[13]]);
        let sa = sockaddr_ll(self.ifindex, proto, Some(dst));
        // SAFETY: frame and sa are valid for the lengths passed.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                libc::MSG_DONTWAIT,
                &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                core::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return match Errno::last() {
                Errno::EAGAIN | Errno::ENOBUFS => Ok(None),
                e => Err(e),
            };
        }
        Ok(Some(n as usize))
    }
}

/// Whether the PACKET_AUXDATA message of a received frame reports a tag with a VLAN ID: the
/// frame belongs to another VLAN. A priority tag (VLAN ID 0, 802.1Q 9.6) is this link's: the
/// kernel hands such frames to IP untagged, and so do we.
fn vlan_tagged(msg: &libc::msghdr) -> bool {
    // SAFETY: msg was filled by recvmsg; the CMSG_* helpers walk within msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: non-null cmsg inside the control buffer.
        let h = unsafe { &*cmsg };
        if h.cmsg_level == libc::SOL_PACKET && h.cmsg_type == PACKET_AUXDATA {
            // SAFETY: the kernel wrote a whole tpacket_auxdata after the header (length
            // checked); read_unaligned because cmsg data promises no alignment for it.
            if (h.cmsg_len as usize)
                // SAFETY: CMSG_LEN only computes a length.
                < unsafe { libc::CMSG_LEN(core::mem::size_of::<TpacketAuxdata>() as u32) } as usize
            {
                return false;
            }
            // SAFETY: the length was checked just above.
            let aux: TpacketAuxdata = unsafe {
                core::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const TpacketAuxdata)
            };
            return foreign_vlan(aux.tp_status, u32::from(aux.tp_vlan_tci));
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    false
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// IP-level membership of the VRRP group on one interface. Joining through the IP stack
/// (not just the packet socket's MAC filter) makes the kernel send IGMP/MLD reports, so
/// IGMP/MLD-snooping switches forward adverts to this port. Held on a UDP socket that is
/// never bound to a port, so it receives nothing; the membership ends when it is dropped.
pub struct McastJoin {
    _fd: OwnedFd,
}

impl McastJoin {
    /// IP_ADD_MEMBERSHIP 224.0.0.18 on `ifindex` (ip_mreqn selects the interface by index).
    pub fn ipv4(ifindex: u32) -> Result<Self, Errno> {
        // SAFETY: plain socket(2) call.
        let fd = cvt_fd(unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        let mr = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr {
                s_addr: u32::from_ne_bytes(VRRP_GROUP_V4.octets()),
            },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: ifindex as i32,
        };
        setsockopt_raw(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_ADD_MEMBERSHIP,
            &mr,
        )?;
        Ok(McastJoin { _fd: fd })
    }

    /// IPV6_JOIN_GROUP ff02::12 on `ifindex`.
    pub fn ipv6(ifindex: u32) -> Result<Self, Errno> {
        // SAFETY: plain socket(2) call.
        let fd = cvt_fd(unsafe {
            libc::socket(
                libc::AF_INET6,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        let mr = libc::ipv6_mreq {
            ipv6mr_multiaddr: libc::in6_addr {
                s6_addr: VRRP_GROUP_V6.octets(),
            },
            ipv6mr_interface: ifindex as _,
        };
        setsockopt_raw(
            fd.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_ADD_MEMBERSHIP,
            &mr,
        )?;
        Ok(McastJoin { _fd: fd })
    }
}

/// A raw IP socket for protocol 112, for unicast peers: we write the VRRP payload, the
/// kernel builds the IP header and resolves the next hop (IP_HDRINCL off).
pub struct RawIpSocket {
    fd: OwnedFd,
    v6: bool,
}

impl RawIpSocket {
    /// IPv4: TTL 255 (RFC 5798 5.1.1.3: receivers drop adverts with another TTL) and
    /// TOS 0xc0 (network control, as keepalived sends). Receive side drops everything: the
    /// packet socket is the one receive path, this socket only sends.
    pub fn ipv4() -> Result<Self, Errno> {
        // SAFETY: plain socket(2) call.
        let fd = cvt_fd(unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(IPPROTO_VRRP),
            )
        })?;
        let raw = fd.as_raw_fd();
        bpf::attach(raw, &bpf::DROP_ALL)?;
        setsockopt_raw(raw, libc::IPPROTO_IP, libc::IP_TTL, &i32::from(VRRP_TTL))?;
        setsockopt_raw(
            raw,
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_TTL,
            &i32::from(VRRP_TTL),
        )?;
        setsockopt_raw(raw, libc::IPPROTO_IP, libc::IP_TOS, &i32::from(VRRP_TOS))?;
        setsockopt_raw(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &0i32)?;
        Ok(RawIpSocket { fd, v6: false })
    }

    /// IPv6: hop limit 255 (RFC 5798 5.1.2.3), traffic class 0xc0.
    pub fn ipv6() -> Result<Self, Errno> {
        // SAFETY: plain socket(2) call.
        let fd = cvt_fd(unsafe {
            libc::socket(
                libc::AF_INET6,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(IPPROTO_VRRP),
            )
        })?;
        let raw = fd.as_raw_fd();
        bpf::attach(raw, &bpf::DROP_ALL)?;
        setsockopt_raw(
            raw,
            libc::IPPROTO_IPV6,
            libc::IPV6_UNICAST_HOPS,
            &i32::from(VRRP_TTL),
        )?;
        setsockopt_raw(
            raw,
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_HOPS,
            &i32::from(VRRP_TTL),
        )?;
        setsockopt_raw(
            raw,
            libc::IPPROTO_IPV6,
            libc::IPV6_TCLASS,
            &i32::from(VRRP_TOS),
        )?;
        setsockopt_raw(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &0i32)?;
        Ok(RawIpSocket { fd, v6: true })
    }

    /// Send only through interface `name` (SO_BINDTODEVICE), so adverts to a unicast peer
    /// leave on the instance's interface even if routing would pick another.
    pub fn bind_device(&self, name: &str) -> Result<(), Errno> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(Errno::EINVAL);
        }
        // SAFETY: name bytes are valid for name.len(); the kernel copies them.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                name.as_ptr() as *const libc::c_void,
                name.len() as libc::socklen_t,
            )
        };
        Errno::result(rc).map(drop)
    }

    /// Source address of sent packets (bind(2) to a local address, e.g. unicast_src_ip).
    pub fn bind_source(&self, addr: core::net::IpAddr) -> Result<(), Errno> {
        use nix::sys::socket::{SockaddrIn, SockaddrIn6};
        match (addr, self.v6) {
            (core::net::IpAddr::V4(a), false) => {
                let sa = SockaddrIn::from(core::net::SocketAddrV4::new(a, 0));
                nix::sys::socket::bind(self.fd.as_raw_fd(), &sa)
            }
            (core::net::IpAddr::V6(a), true) => {
                let sa = SockaddrIn6::from(core::net::SocketAddrV6::new(a, 0, 0, 0));
                nix::sys::socket::bind(self.fd.as_raw_fd(), &sa)
            }
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    /// Send a VRRP payload (VRRP header onward) to `dst`. `scope_id` is the interface index
    /// for link-local IPv6 destinations. `Ok(None)` when the socket buffer is full.
    pub fn send_to(
        &self,
        payload: &[u8],
        dst: core::net::IpAddr,
        scope_id: u32,
    ) -> Result<Option<usize>, Errno> {
        use nix::sys::socket::{sendto, MsgFlags, SockaddrIn, SockaddrIn6};
        let flags = MsgFlags::MSG_DONTWAIT;
        let r = match (dst, self.v6) {
            (core::net::IpAddr::V4(a), false) => {
                let sa = SockaddrIn::from(core::net::SocketAddrV4::new(a, 0));
                sendto(self.fd.as_raw_fd(), payload, &sa, flags)
            }
            (core::net::IpAddr::V6(a), true) => {
                let sa = SockaddrIn6::from(core::net::SocketAddrV6::new(a, 0, 0, scope_id));
                sendto(self.fd.as_raw_fd(), payload, &sa, flags)
            }
            _ => return Err(Errno::EAFNOSUPPORT),
        };
        match r {
            Ok(n) => Ok(Some(n)),
            Err(Errno::EAGAIN) | Err(Errno::ENOBUFS) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl AsFd for RawIpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for RawIpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::frame::{TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_VALID};
    use super::*;

    /// 802.1Q 9.6: VLAN ID 0 is a priority tag (this link's); any VLAN ID is another VLAN.
    #[test]
    fn priority_tags_are_untagged_vlan_ids_are_foreign() {
        let valid = TP_STATUS_VLAN_VALID;
        assert!(!foreign_vlan(0, 0), "untagged");
        assert!(!foreign_vlan(valid, 0), "VID 0, priority 0");
        assert!(
            !foreign_vlan(valid | TP_STATUS_VLAN_TPID_VALID, 0xe000),
            "VID 0, priority 7"
        );
        assert!(
            !foreign_vlan(0, 0xa000),
            "old kernel: TCI without status, VID 0"
        );
        assert!(foreign_vlan(valid, 10), "VLAN 10");
        assert!(foreign_vlan(valid, 0xe00a), "VLAN 10, priority 7");
        assert!(foreign_vlan(0, 0x0fff), "old kernel: TCI without status");
    }

    #[test]
    fn group_macs_follow_the_ip_to_mac_mappings() {
        // RFC 1112 6.4: 01:00:5e + low 23 bits of the group.
        let o = VRRP_GROUP_V4.octets();
        assert_eq!(VRRP_MAC_V4[3..], [o[1] & 0x7f, o[2], o[3]]);
        // RFC 2464 7: 33:33 + low 32 bits.
        assert_eq!(VRRP_MAC_V6[2..], VRRP_GROUP_V6.octets()[12..]);
        assert_eq!(PktType::from_raw(4), PktType::Outgoing);
        assert_eq!(PktType::from_raw(9), PktType::Other(9));
    }
}
