//! rtnetlink spoken directly (NETLINK_ROUTE raw socket, no libnl): the request socket
//! ([`Rtnl`]: addresses, link facts, routes, rules, macvlan for `use_vmac`), the event socket
//! ([`RtnlEvents`]: link and address changes), and the ARP sysctls a VMAC needs.
//!
//! Messages are built and parsed by the pure codec [`crate::netlink::route`]; this file only
//! moves bytes and matches replies to requests.

use crate::netlink::consts::{
    NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE,
};
use crate::netlink::route::*;
use crate::netlink::NlMsg;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use nix::errno::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

pub use crate::netlink::route::{
    decode_addr, decode_link, AddrAttrs, AddrInfo, AddrReq, IfName, LinkInfo, LinkTracker,
    MacvlanMode, RouteAttrs, RtnlEvent, RuleAttrs, SourcePick, SourceRule, ADDR_BATCH,
    IFA_F_DADFAILED, IFA_F_NODAD, IFA_F_SECONDARY, IFA_F_TENTATIVE, IFF_LOWER_UP, IFF_RUNNING,
    IFF_UP, MAX_LINKS, RTM_DELADDR, RTM_DELLINK, RTM_NEWADDR, RTM_NEWLINK,
};

use super::nlsock;

fn netlink_socket(groups: u32, nonblock: bool, timeout: Option<u32>) -> Result<OwnedFd, Errno> {
    nlsock::open(libc::NETLINK_ROUTE, groups, nonblock, timeout).map_err(|e| e.errno)
}

const RECV_BUF: usize = 32 * 1024;
/// linux/netlink.h: the socket option that makes GET requests strictly checked and
/// filterable.
const NETLINK_GET_STRICT_CHK: libc::c_int = 12;

/// Request socket: one request at a time, answered synchronously. Used at setup and on
/// state transitions (adding VIPs), never per packet. A 2 s receive timeout bounds how long
/// a lost reply could stall the daemon.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
    buf: Box<[u8]>,
    /// Data messages the kernel sent for the last request (what a dump cost).
    last_reply_messages: usize,
    /// The requests of the last address batch ([`Self::add_addresses`]), reused.
    batch: Vec<u8>,
}

impl Rtnl {
    pub fn open() -> Result<Self, Errno> {
        let fd = netlink_socket(0, false, Some(2))?;
        // Strict checking lets the kernel filter an address dump by interface (Linux 4.20+),
        // so re-reading one interface's addresses costs that interface's addresses, not the
        // whole host's. Older kernels refuse the option and dump everything; the filter in
        // `for_each_address` gives the same result either way.
        let on: libc::c_int = 1;
        let _ = super::fd::setsockopt_raw(
            fd.as_raw_fd(),
            libc::SOL_NETLINK,
            NETLINK_GET_STRICT_CHK,
            &on,
        );
        Ok(Rtnl {
            fd,
            seq: 1,
            buf: vec![0u8; RECV_BUF].into_boxed_slice(),
            last_reply_messages: 0,
            batch: Vec::new(),
        })
    }

    /// This socket's netlink port: the `nlmsg_pid` of the kernel's notifications about
    /// changes it requested ([`RtnlEvents::ignore_address_echoes`]).
    pub fn port_id(&self) -> Result<u32, Errno> {
        // SAFETY: sockaddr_nl is plain data, filled by the kernel.
        let mut sa: libc::sockaddr_nl = unsafe { core::mem::zeroed() };
        let mut len = core::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: sa is valid for len bytes.
        let r = unsafe {
            libc::getsockname(
                self.fd.as_raw_fd(),
                &mut sa as *mut libc::sockaddr_nl as *mut libc::sockaddr,
                &mut len,
            )
        };
        if r < 0 {
            return Err(Errno::last());
        }
        Ok(sa.nl_pid)
    }

    /// Data messages the kernel sent in reply to the last request: a dump's cost.
    pub fn last_reply_messages(&self) -> usize {
        self.last_reply_messages
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Send `msg` and read replies with its sequence number until the ACK/DONE, handing
    /// each data message to `f`. A negative error code in the ACK becomes the `Errno`.
    fn transact(
        &mut self,
        msg: &[u8],
        seq: u32,
        mut f: impl FnMut(&NlMsg<'_>),
    ) -> Result<(), Errno> {
        nlsock::send_to_kernel(self.fd.as_fd(), msg)?;
        self.last_reply_messages = 0;
        loop {
            let n = match nlsock::recv_from_kernel(self.fd.as_fd(), &mut self.buf, 0) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return Err(Errno::ETIMEDOUT),
                Err(e) => return Err(e),
            };
            for m in messages(&self.buf[..n]) {
                // Replies to an earlier request that timed out: not ours, skip.
                if m.seq != seq {
                    continue;
                }
                match m.nl_type {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = m.error_code().map_err(|_| Errno::EBADMSG)?;
                        return if code == 0 {
                            Ok(())
                        } else {
                            Err(Errno::from_raw(code.saturating_neg()))
                        };
                    }
                    NLMSG_OVERRUN => return Err(Errno::ENOBUFS),
                    _ => {
                        self.last_reply_messages += 1;
                        f(&m)
                    }
                }
            }
        }
    }

    fn addr_msg(
        &mut self,
        ty: u16,
        flags: u16,
        ifindex: u32,
        addr: IpAddr,
        prefix: u8,
        attrs: AddrAttrs<'_>,
    ) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut buf = [0u8; REQ_BUF];
        let req = AddrReq {
            ifindex,
            addr,
            prefix,
            attrs,
        };
        let len = write_addr_msg(&mut buf, ty, NLM_F_ACK | flags, seq, &req)?;
        self.transact(&buf[..len], seq, |_| {})
    }

    /// [`add_address_with`](Self::add_address_with) for `n` addresses (the `i`-th is
    /// `req(i)`) in one netlink round trip per [`ADDR_BATCH`] of them: one `sendmsg` carrying every request, of
    /// which only the last asks for an ACK (the kernel answers a request without
    /// `NLM_F_ACK` only when it fails), then reads until that ACK. The dead-man lease
    /// refresh of every master's VIPs at once costs one send and one read, not two system
    /// calls per VIP. `failed(i, errno)` for each request the kernel refused.
    pub fn add_addresses<'a>(
        &mut self,
        n: usize,
        req: &dyn Fn(usize) -> AddrReq<'a>,
        failed: &mut dyn FnMut(usize, Errno),
    ) -> Result<(), Errno> {
        // Kept between batches (as large as the largest batch so far, about 64 bytes a
        // request): a fresh buffer each round cost an mmap and munmap of its own.
        let mut buf = core::mem::take(&mut self.batch);
        let r = self.add_address_batches(n, req, &mut buf, failed);
        self.batch = buf;
        r
    }

    fn add_address_batches<'a>(
        &mut self,
        n: usize,
        req: &dyn Fn(usize) -> AddrReq<'a>,
        buf: &mut Vec<u8>,
        failed: &mut dyn FnMut(usize, Errno),
    ) -> Result<(), Errno> {
        let mut one = [0u8; REQ_BUF];
        for base in (0..n).step_by(ADDR_BATCH) {
            let chunk = base..n.min(base + ADDR_BATCH);
            // One batch's sequence numbers must not wrap: replies are told apart by them.
            if self.seq > u32::MAX - 2 * ADDR_BATCH as u32 {
                self.seq = 0;
            }
            let first = self.seq + 1;
            let mut last_seq = 0;
            buf.clear();
            for i in chunk.clone() {
                let seq = self.next_seq();
                let ack = if i + 1 == chunk.end { NLM_F_ACK } else { 0 };
                let flags = NLM_F_CREATE | NLM_F_REPLACE | ack;
                // Message lengths are multiples of 4 (attributes are padded), so they can
                // follow one another as written.
                let len = write_addr_msg(&mut one, RTM_NEWADDR, flags, seq, &req(i))?;
                buf.extend_from_slice(&one[..len]);
                last_seq = seq;
            }
            self.transact_batch(buf, first, last_seq, &mut |k, e| failed(base + k, e))?;
        }
        Ok(())
    }

    /// Send a batch whose requests carry the sequence numbers `first..=last` (only the last
    /// with `NLM_F_ACK`) and read until the last one's ACK; errors of earlier ones are told
    /// to `failed` by their position in the batch.
    fn transact_batch(
        &mut self,
        msg: &[u8],
        first: u32,
        last: u32,
        failed: &mut dyn FnMut(usize, Errno),
    ) -> Result<(), Errno> {
        nlsock::send_to_kernel(self.fd.as_fd(), msg)?;
        let count = last.wrapping_sub(first);
        loop {
            let n = match nlsock::recv_from_kernel(self.fd.as_fd(), &mut self.buf, 0) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return Err(Errno::ETIMEDOUT),
                Err(e) => return Err(e),
            };
            for m in messages(&self.buf[..n]) {
                let k = m.seq.wrapping_sub(first);
                // Replies to an earlier request that timed out: not ours, skip.
                if k > count || m.nl_type != NLMSG_ERROR {
                    continue;
                }
                let code = m.error_code().map_err(|_| Errno::EBADMSG)?;
                if code != 0 {
                    failed(k as usize, Errno::from_raw(code.saturating_neg()));
                }
                if m.seq == last {
                    return Ok(());
                }
            }
        }
    }

    /// Add `addr/prefix` to `ifindex` (replacing an identical one, so re-adding is not an
    /// error). IPv4 without broadcast; IPv6 with IFA_F_NODAD. `lifetime_s`: valid and
    /// preferred lifetime in seconds (the kernel removes the address when it runs out; a
    /// replace of a present address only resets it), `None` = permanent.
    pub fn add_address(
        &mut self,
        ifindex: u32,
        addr: IpAddr,
        prefix: u8,
        lifetime_s: Option<u32>,
    ) -> Result<(), Errno> {
        let attrs = AddrAttrs {
            lifetime_s,
            ..AddrAttrs::default()
        };
        self.add_address_with(ifindex, addr, prefix, attrs)
    }

    /// [`add_address`](Self::add_address) with every optional attribute: scope, label
    /// (`ip addr add ... label`, IPv4) and lifetime.
    pub fn add_address_with(
        &mut self,
        ifindex: u32,
        addr: IpAddr,
        prefix: u8,
        attrs: AddrAttrs<'_>,
    ) -> Result<(), Errno> {
        self.addr_msg(
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_REPLACE,
            ifindex,
            addr,
            prefix,
            attrs,
        )
    }

    /// Remove `addr/prefix` from `ifindex`. `Err(EADDRNOTAVAIL)` if it was not there.
    pub fn del_address(&mut self, ifindex: u32, addr: IpAddr, prefix: u8) -> Result<(), Errno> {
        self.addr_msg(RTM_DELADDR, 0, ifindex, addr, prefix, AddrAttrs::default())
    }

    /// Every address (of `ifindex` only, if given).
    pub fn for_each_address(
        &mut self,
        ifindex: Option<u32>,
        mut f: impl FnMut(&AddrInfo),
    ) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut buf = [0u8; REQ_BUF];
        // ifa_index: the kernel's filter under strict checking (see `open`).
        let len = write_addr_dump(&mut buf, seq, ifindex.unwrap_or(0))?;
        self.transact(&buf[..len], seq, |msg| {
            if msg.nl_type != RTM_NEWADDR {
                return;
            }
            if let Some(a) = decode_addr(msg.payload) {
                if ifindex.is_none_or(|i| i == a.ifindex) {
                    f(&a);
                }
            }
        })
    }

    /// Every link.
    pub fn for_each_link(&mut self, mut f: impl FnMut(&LinkInfo)) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut buf = [0u8; REQ_BUF];
        let len = write_link_dump(&mut buf, seq)?;
        self.transact(&buf[..len], seq, |msg| {
            if msg.nl_type == RTM_NEWLINK {
                if let Some(l) = decode_link(msg.payload) {
                    f(&l);
                }
            }
        })
    }

    fn get_link(&mut self, ifindex: u32, name: Option<&str>) -> Result<LinkInfo, Errno> {
        let seq = self.next_seq();
        let mut buf = [0u8; REQ_BUF];
        let len = write_get_link(&mut buf, seq, ifindex, name)?;
        let mut out = None;
        self.transact(&buf[..len], seq, |msg| {
            if msg.nl_type == RTM_NEWLINK && out.is_none() {
                out = decode_link(msg.payload);
            }
        })?;
        out.ok_or(Errno::ENODEV)
    }

    /// ifindex, MAC, flags... of interface `ifindex`.
    pub fn link_by_index(&mut self, ifindex: u32) -> Result<LinkInfo, Errno> {
        self.get_link(ifindex, None)
    }

    /// The same, by name. `Err(ENODEV)` if there is no such interface.
    pub fn link_by_name(&mut self, name: &str) -> Result<LinkInfo, Errno> {
        self.get_link(0, Some(name))
    }

    /// The primary (first non-secondary) IPv4 address of `ifindex`: the source of VRRPv2/v3
    /// IPv4 adverts (RFC 5798 5.1.1.1).
    pub fn primary_ipv4(&mut self, ifindex: u32) -> Result<Option<Ipv4Addr>, Errno> {
        Ok(self.source_addresses(ifindex, &SourceRule::ANY)?.0)
    }

    /// A usable (not tentative, not DAD-failed) IPv6 link-local address of `ifindex`: the
    /// source of IPv6 adverts (RFC 5798 5.1.2.1).
    pub fn ipv6_link_local(&mut self, ifindex: u32) -> Result<Option<Ipv6Addr>, Errno> {
        Ok(self.source_addresses(ifindex, &SourceRule::ANY)?.1)
    }

    /// Both advert sources of `ifindex` ([`primary_ipv4`](Self::primary_ipv4),
    /// [`ipv6_link_local`](Self::ipv6_link_local)) from one address dump, chosen by `rule`.
    pub fn source_addresses(
        &mut self,
        ifindex: u32,
        rule: &SourceRule<'_>,
    ) -> Result<(Option<Ipv4Addr>, Option<Ipv6Addr>), Errno> {
        let mut pick = SourcePick::default();
        self.for_each_address(Some(ifindex), |a| pick.offer(rule, a))?;
        Ok(pick.result(rule))
    }

    /// Create macvlan `name` on `parent` with `mac` (for use_vmac: the VMAC
    /// 00:00:5e:00:01:VRID), bring it up, and return its ifindex.
    pub fn create_macvlan(
        &mut self,
        name: &str,
        parent: u32,
        mac: [u8; 6],
        mode: MacvlanMode,
    ) -> Result<u32, Errno> {
        let seq = self.next_seq();
        let mut buf = [0u8; REQ_BUF];
        let len = write_new_macvlan(&mut buf, seq, name, parent, mac, mode)?;
        self.transact(&buf[..len], seq, |_| {})?;
        let link = self.link_by_name(name)?;
        self.set_link_up(link.ifindex, true)?;
        Ok(link.ifindex)
    }

    /// Set IFF_UP on or off.
    pub fn set_link_up(&mut self, ifindex: u32, up: bool) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut buf = [0u8; REQ_BUF];
        let len = write_set_link_up(&mut buf, seq, ifindex, up)?;
        self.transact(&buf[..len], seq, |_| {})
    }

    fn route_msg(&mut self, ty: u16, flags: u16, r: &RouteAttrs) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut buf = [0u8; REQ_BUF];
        let len = write_route_msg(&mut buf, ty, flags, seq, r)?;
        self.transact(&buf[..len], seq, |_| {})
    }

    /// Add `r`, or replace the route with its destination, table and metric (so adding it
    /// again is not an error).
    pub fn add_route(&mut self, r: &RouteAttrs) -> Result<(), Errno> {
        self.route_msg(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, r)
    }

    /// Remove `r`. `Err(ESRCH)` if it was not there.
    pub fn del_route(&mut self, r: &RouteAttrs) -> Result<(), Errno> {
        self.route_msg(RTM_DELROUTE, 0, r)
    }

    /// Add rule `r`. `Err(EEXIST)` when the same rule (priority included) is there already:
    /// NLM_F_EXCL, as `ip rule add` sends, since without it the kernel adds a second copy.
    pub fn add_rule(&mut self, r: &RuleAttrs<'_>) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut buf = [0u8; REQ_BUF];
        let len = rule_msg(&mut buf, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, seq, r)?;
        self.transact(&buf[..len], seq, |_| {})
    }

    /// Remove rule `r`. `Err(ENOENT)` if it was not there.
    pub fn del_rule(&mut self, r: &RuleAttrs<'_>) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut buf = [0u8; REQ_BUF];
        let len = rule_msg(&mut buf, RTM_DELRULE, 0, seq, r)?;
        self.transact(&buf[..len], seq, |_| {})
    }

    /// Delete a link (a macvlan we created).
    pub fn delete_link(&mut self, ifindex: u32) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut buf = [0u8; REQ_BUF];
        let len = write_del_link(&mut buf, seq, ifindex)?;
        self.transact(&buf[..len], seq, |_| {})
    }
}

/// Subscription to link and IPv4/IPv6 address events; register it with the loop.
pub struct RtnlEvents {
    fd: OwnedFd,
    buf: Box<[u8]>,
    pub tracker: LinkTracker,
}

impl RtnlEvents {
    /// Non-blocking socket in RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR.
    pub fn open() -> Result<Self, Errno> {
        let fd = netlink_socket(
            RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
            true,
            None,
        )?;
        Ok(RtnlEvents {
            fd,
            buf: vec![0u8; RECV_BUF].into_boxed_slice(),
            tracker: LinkTracker::new(),
        })
    }

    /// Have the kernel drop its echo of the addresses added through the request socket
    /// with port `portid` (`sys::bpf::address_echo_filter`): the daemon's own VIPs, whose
    /// news it ignores anyway, so a lease refresh no longer wakes it once per VIP.
    pub fn ignore_address_echoes(&self, portid: u32) -> Result<(), Errno> {
        super::bpf::attach(
            self.fd.as_raw_fd(),
            &super::bpf::address_echo_filter(portid),
        )
    }

    /// Read one datagram and report its events. `Ok(false)` when nothing is pending.
    pub fn recv(&mut self, f: impl FnMut(RtnlEvent)) -> Result<bool, Errno> {
        let mut f = f;
        let n = match nlsock::recv_from_kernel(self.fd.as_fd(), &mut self.buf, libc::MSG_DONTWAIT) {
            Ok(n) => n,
            Err(Errno::EAGAIN) => return Ok(false),
            // Dropped by the kernel (ENOBUFS) or too big to read whole (EMSGSIZE): events
            // were lost either way, so the daemon re-reads links and addresses.
            Err(Errno::ENOBUFS | Errno::EMSGSIZE) => {
                f(RtnlEvent::Overrun);
                return Ok(true);
            }
            Err(e) => return Err(e),
        };
        self.tracker.feed(&self.buf[..n], f);
        Ok(true)
    }
}

impl AsFd for RtnlEvents {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for RtnlEvents {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Why writing a sysctl failed: which file, and the errno.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysctlError {
    pub path: heapless::String<64>,
    pub errno: Errno,
}

impl core::fmt::Display for SysctlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "writing {}: {}", self.path, self.errno)
    }
}

/// `/proc/sys/net/<proto>/conf/<ifname>/<key>`, or `EINVAL` for a name that would leave
/// the directory.
fn conf_path(proto: &str, ifname: &str, key: &str) -> Result<heapless::String<64>, SysctlError> {
    use core::fmt::Write as _;
    let mut path = heapless::String::<64>::new();
    // Interface names may contain '.' (vrrp.50), but "." and ".." would leave the directory.
    let ok_name = !ifname.is_empty()
        && ifname.len() <= 15
        && !ifname.contains('/')
        && ifname != "."
        && ifname != ".."
        && !key.contains('/');
    let built = write!(path, "/proc/sys/net/{proto}/conf/{ifname}/{key}").is_ok();
    if !ok_name || !built {
        return Err(SysctlError {
            path,
            errno: Errno::EINVAL,
        });
    }
    Ok(path)
}

/// Whether `ifname` forwards IPv6 (`/proc/sys/net/ipv6/conf/<ifname>/forwarding` is not
/// 0): the kernel sets the Router flag of its Neighbor Advertisements on that interface by
/// it (RFC 4861 7.2.4).
pub fn ipv6_forwarding(ifname: &str) -> Result<bool, SysctlError> {
    let path = conf_path("ipv6", ifname, "forwarding")?;
    let mut buf = [0u8; 8];
    match super::file::read_head(path.as_str(), &mut buf) {
        Ok(n) => Ok(buf[..n].first().is_some_and(|&b| b != b'0')),
        Err(errno) => Err(SysctlError { path, errno }),
    }
}

/// Write `value` to `/proc/sys/net/ipv4/conf/<ifname>/<key>`.
pub fn write_ipv4_conf(ifname: &str, key: &str, value: &str) -> Result<(), SysctlError> {
    let path = conf_path("ipv4", ifname, key)?;
    std::fs::write(path.as_str(), value.as_bytes()).map_err(|e| SysctlError {
        path: path.clone(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

/// The ARP settings a VMAC setup needs. Linux answers ARP for any local address on any
/// interface (the weak host model), so without these the parent would answer for the VIP
/// with its own MAC and neighbours would flap between the two MACs:
/// - parent `arp_ignore=1`: answer only for addresses configured on the parent itself, so
///   the VIP (on the macvlan) is answered only by the macvlan, with the virtual MAC;
/// - parent `arp_filter=1`: and only when the reply would be routed out of the parent;
/// - macvlan `arp_ignore=1`: the virtual MAC never answers for the parent's own address;
/// - macvlan `arp_announce=2`: ARP requests sent from the macvlan use its own address
///   (the VIP) as sender, never the parent's, so neighbours do not bind it to the VMAC.
pub fn write_vmac_arp_sysctls(vmac: &str, parent: &str) -> Result<(), SysctlError> {
    write_ipv4_conf(parent, "arp_ignore", "1")?;
    write_ipv4_conf(parent, "arp_filter", "1")?;
    write_ipv4_conf(vmac, "arp_ignore", "1")?;
    write_ipv4_conf(vmac, "arp_announce", "2")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_path_refuses_names_that_escape_the_directory() {
        assert_eq!(
            write_ipv4_conf("../x", "arp_ignore", "1")
                .unwrap_err()
                .errno,
            Errno::EINVAL
        );
        assert_eq!(
            write_ipv4_conf("", "arp_ignore", "1").unwrap_err().errno,
            Errno::EINVAL
        );
    }
}
