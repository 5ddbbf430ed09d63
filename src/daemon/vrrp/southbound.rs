//! What the VRRP part asks of the kernel, as one trait: link facts, addresses, routes and rules, the macvlan of
//! `use_vmac`, the sockets adverts come and go through, and the pre-master hook's process. [`Linux`] is the real thing
//! (rtnetlink, AF_PACKET, raw IP sockets, sysctls); a test can put a recording fake in its
//! place and drive reloads, sync groups, link events and VIP handling without namespaces
//! (`tests/pure/daemon_conformance.rs`), the way `lvs::IpvsTable` stands between IPVS and genl.
//!
//! Errors are returned as the kernel gave them; what is worth a log line is decided by the
//! caller, except for the best-effort details a method documents (socket options, sysctls).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};

use log::{debug, warn};
use nix::errno::Errno;

use crate::base::{Duration, Family};
use crate::sys::packet::{KernelStats, McastJoin, PacketSocket, RawIpSocket, RecvFrame};
use crate::sys::rtnl::{
    self, AddrAttrs, AddrReq, MacvlanMode, RouteAttrs, Rtnl, RuleAttrs, SourceRule,
};
use crate::sys::{bpf, process};

/// An interface as the VRRP part needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    pub ifindex: u32,
    /// Administratively and operationally up.
    pub up: bool,
    pub mac: [u8; 6],
    /// The first IPv4 address: the v4 advert source (RFC 5798 5.1.1.2).
    pub primary4: Option<Ipv4Addr>,
    /// The IPv6 link-local address: the v6 advert source (RFC 5798 5.1.2.1).
    pub link_local6: Option<Ipv6Addr>,
}

/// The kernel side of the VRRP part.
pub trait Southbound {
    /// An interface's listening socket (and its multicast memberships): registered with the
    /// loop, read for adverts, and the socket whole frames (adverts, GARPs) are sent on.
    type Listener: AsRawFd;
    /// An instance's socket for adverts to unicast peers.
    type Unicast;

    /// The interface called `name`, `Ok(None)` if it does not exist.
    fn link(&mut self, name: &str) -> Result<Option<LinkFacts>, Errno> {
        self.link_facts(name, &SourceRule::ANY)
    }
    /// [`Self::link`] with the advert sources chosen by `rule` (see
    /// [`Self::source_addresses`]): one link read and one address dump.
    fn link_facts(&mut self, name: &str, rule: &SourceRule<'_>)
        -> Result<Option<LinkFacts>, Errno>;
    /// The advert sources of `ifindex`: its primary IPv4 address and usable IPv6 link-local
    /// address (as in [`LinkFacts`]), from one address dump, chosen by `rule` (never a VIP;
    /// the ones in use kept while present). All an address event can change.
    fn source_addresses(
        &mut self,
        ifindex: u32,
        rule: &SourceRule<'_>,
    ) -> Result<(Option<Ipv4Addr>, Option<Ipv6Addr>), Errno>;
    /// The addresses on `ifindex` with their prefix lengths (at most `MAX_ADDRS` are
    /// looked at by the caller).
    fn addresses(&mut self, ifindex: u32, each: &mut dyn FnMut(IpAddr, u8)) -> Result<(), Errno>;
    /// Add `addr/prefix`, or replace it when present, with its scope and label; with a
    /// lifetime it expires unless added again in time (the dead-man VIPs of
    /// `vrrp::vip_lease`).
    fn add_address(
        &mut self,
        ifindex: u32,
        addr: IpAddr,
        prefix: u8,
        opts: &AddrAttrs<'_>,
    ) -> Result<(), Errno>;
    fn del_address(&mut self, ifindex: u32, addr: IpAddr, prefix: u8) -> Result<(), Errno>;
    /// [`Self::add_address`] for `n` addresses, the `i`-th being `req(i)` (the dead-man
    /// lease refresh of every due master at once; a function rather than a slice so the
    /// caller builds nothing per round); `failed(i, errno)` for each one the kernel refused.
    fn add_addresses<'a>(
        &mut self,
        n: usize,
        req: &dyn Fn(usize) -> AddrReq<'a>,
        failed: &mut dyn FnMut(usize, Errno),
    ) {
        for i in 0..n {
            let r = req(i);
            if let Err(e) = self.add_address(r.ifindex, r.addr, r.prefix, &r.attrs) {
                failed(i, e);
            }
        }
    }
    /// The netlink port address requests are sent from, so the daemon's event socket can
    /// leave out the kernel's echo of them; `None` when there is none.
    fn netlink_port(&self) -> Option<u32> {
        None
    }
    /// Add a route, or replace the one with its destination, table and metric.
    fn add_route(&mut self, route: &RouteAttrs) -> Result<(), Errno>;
    /// Remove a route (same gateway, interface, metric and table); `Err(ESRCH)` if absent.
    fn del_route(&mut self, route: &RouteAttrs) -> Result<(), Errno>;
    /// Add a policy rule; `Err(EEXIST)` when the same rule is there already.
    fn add_rule(&mut self, rule: &RuleAttrs<'_>) -> Result<(), Errno>;
    /// Remove a policy rule (same selectors, priority and table); `Err(ENOENT)` if absent.
    fn del_rule(&mut self, rule: &RuleAttrs<'_>) -> Result<(), Errno>;
    /// Create the `use_vmac` macvlan `name` on `parent` with the virtual MAC, and set the
    /// ARP sysctls that keep the parent from answering for the VIP (best effort, logged).
    /// Returns the new interface's index.
    fn create_vmac(
        &mut self,
        name: &str,
        parent: u32,
        parent_name: &str,
        mac: [u8; 6],
    ) -> Result<u32, Errno>;
    fn delete_link(&mut self, ifindex: u32) -> Result<(), Errno>;
    /// Whether interface `name` forwards IPv6: the Router flag of the unsolicited NAs
    /// (`vrrp::announce::emit_unsolicited_na`). `true` (as RFC 5798 6.4.2 says) when it
    /// cannot be read.
    fn ipv6_forwarding(&mut self, name: &str) -> bool {
        let _ = name;
        true
    }

    /// Listen for adverts on interface `ifindex` (called `name`) through the kernel filter
    /// `filter` (`sys::bpf`), with a receive buffer of `rcvbuf` bytes; the VRRP multicast
    /// MACs and groups joined (best effort, logged). With `rx_delay`, the kernel may hold
    /// frames back up to that long to hand several over in one wake-up, each with its
    /// arrival time ([`RecvFrame::at`]); where it cannot, frames come one by one (logged).
    fn open_listener(
        &mut self,
        ifindex: u32,
        name: &str,
        filter: &[bpf::Insn],
        rcvbuf: usize,
        rx_delay: Option<Duration>,
    ) -> Result<Self::Listener, Errno>;
    /// Swap a listener's kernel filter and receive buffer (the VRIDs on its interface changed
    /// with a reload).
    fn set_filter(
        &mut self,
        listener: &Self::Listener,
        filter: &[bpf::Insn],
        rcvbuf: usize,
    ) -> Result<(), Errno>;
    /// Change how long the kernel may hold frames back (see [`Self::open_listener`]); frames
    /// held at that moment may be lost.
    fn set_rx_delay(
        &mut self,
        listener: &mut Self::Listener,
        rx_delay: Option<Duration>,
    ) -> Result<(), Errno>;
    /// What the kernel counted on the listener since the last call (frames delivered,
    /// frames lost to a full buffer).
    fn take_kernel_stats(&mut self, listener: &Self::Listener) -> Result<KernelStats, Errno>;
    /// One received frame into `buf`; `Ok(None)` when nothing is pending.
    fn recv(
        &mut self,
        listener: &mut Self::Listener,
        buf: &mut [u8],
    ) -> Result<Option<RecvFrame>, Errno>;
    /// Send one whole Ethernet frame; `Ok(None)` when the socket buffer is full.
    fn send_frame(
        &mut self,
        listener: &Self::Listener,
        frame: &[u8],
    ) -> Result<Option<usize>, Errno>;
    /// Send one frame `count` times out of an interface nobody listens on (the GARPs of a VIP
    /// with its own `dev`).
    fn send_frame_on(&mut self, ifindex: u32, frame: &[u8], count: u8) -> Result<(), Errno>;

    /// A socket for VRRP messages to unicast peers, bound to `device` and, if given, to
    /// the source address `src` (binding failures are logged; the socket is still used).
    fn open_unicast(
        &mut self,
        family: Family,
        device: &str,
        src: Option<IpAddr>,
    ) -> Result<Self::Unicast, Errno>;
    /// Send one VRRP message (the kernel adds the IP header) to `peer` out of `ifindex`.
    fn send_unicast(
        &mut self,
        sock: &Self::Unicast,
        msg: &[u8],
        peer: IpAddr,
        ifindex: u32,
    ) -> Result<Option<usize>, Errno>;

    /// Start instance `name`'s pre-master hook `argv` with `env` added to the environment,
    /// as `user` when set, in a session of its own; never waits for it. Returns its pid, whose
    /// exit the runtime reaps and hands to `Vrrp::on_child_exit`.
    fn spawn_hook(
        &mut self,
        name: &str,
        argv: &[&str],
        env: &[&str],
        user: Option<(u32, u32)>,
    ) -> Result<i32, Errno>;
    /// Kill a hook started by [`Self::spawn_hook`] with its whole process group.
    fn kill_hook(&mut self, pid: i32) -> Result<(), Errno>;
}

/// The Linux kernel: rtnetlink, AF_PACKET with the BPF filter, raw IP sockets, sysctls.
pub struct Linux {
    rtnl: Rtnl,
}

impl Linux {
    pub fn open() -> Result<Linux, Errno> {
        Ok(Linux {
            rtnl: Rtnl::open()?,
        })
    }
}

/// A packet socket and the IP-level group joins that make IGMP/MLD snooping switches forward
/// adverts to us (kept alive for their membership, never read).
pub struct LinuxListener {
    sock: PacketSocket,
    _join4: Option<McastJoin>,
    _join6: Option<McastJoin>,
}

impl AsRawFd for LinuxListener {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl Southbound for Linux {
    type Listener = LinuxListener;
    type Unicast = RawIpSocket;

    fn link_facts(
        &mut self,
        name: &str,
        rule: &SourceRule<'_>,
    ) -> Result<Option<LinkFacts>, Errno> {
        let link = match self.rtnl.link_by_name(name) {
            Ok(l) => l,
            Err(Errno::ENODEV) => return Ok(None),
            Err(e) => return Err(e),
        };
        let (primary4, link_local6) = self
            .source_addresses(link.ifindex, rule)
            .unwrap_or_default();
        Ok(Some(LinkFacts {
            ifindex: link.ifindex,
            up: link.is_up(),
            mac: link.mac.unwrap_or([0; 6]),
            primary4,
            link_local6,
        }))
    }

    fn source_addresses(
        &mut self,
        ifindex: u32,
        rule: &SourceRule<'_>,
    ) -> Result<(Option<Ipv4Addr>, Option<Ipv6Addr>), Errno> {
        self.rtnl.source_addresses(ifindex, rule)
    }

    fn addresses(&mut self, ifindex: u32, each: &mut dyn FnMut(IpAddr, u8)) -> Result<(), Errno> {
        self.rtnl
            .for_each_address(Some(ifindex), |a| each(a.addr, a.prefix))
    }

    fn add_address(
        &mut self,
        ifindex: u32,
        addr: IpAddr,
        prefix: u8,
        opts: &AddrAttrs<'_>,
    ) -> Result<(), Errno> {
        self.rtnl.add_address_with(ifindex, addr, prefix, *opts)
    }

    fn del_address(&mut self, ifindex: u32, addr: IpAddr, prefix: u8) -> Result<(), Errno> {
        self.rtnl.del_address(ifindex, addr, prefix)
    }

    fn add_addresses<'a>(
        &mut self,
        n: usize,
        req: &dyn Fn(usize) -> AddrReq<'a>,
        failed: &mut dyn FnMut(usize, Errno),
    ) {
        if let Err(e) = self.rtnl.add_addresses(n, req, failed) {
            // The batch itself failed (send or read): which requests took effect is unknown,
            // so each is sent again on its own (a replace is harmless when repeated).
            debug!("address batch: {e}; sending one by one");
            for i in 0..n {
                let r = req(i);
                if let Err(e) = self.add_address(r.ifindex, r.addr, r.prefix, &r.attrs) {
                    failed(i, e);
                }
            }
        }
    }

    fn netlink_port(&self) -> Option<u32> {
        self.rtnl.port_id().ok()
    }

    fn add_route(&mut self, route: &RouteAttrs) -> Result<(), Errno> {
        self.rtnl.add_route(route)
    }

    fn del_route(&mut self, route: &RouteAttrs) -> Result<(), Errno> {
        self.rtnl.del_route(route)
    }

    fn add_rule(&mut self, rule: &RuleAttrs<'_>) -> Result<(), Errno> {
        self.rtnl.add_rule(rule)
    }

    fn del_rule(&mut self, rule: &RuleAttrs<'_>) -> Result<(), Errno> {
        self.rtnl.del_rule(rule)
    }

    fn ipv6_forwarding(&mut self, name: &str) -> bool {
        rtnl::ipv6_forwarding(name).unwrap_or_else(|e| {
            debug!("{name}: {e}; NAs claim a router as RFC 5798 6.4.2 says");
            true
        })
    }

    fn create_vmac(
        &mut self,
        name: &str,
        parent: u32,
        parent_name: &str,
        mac: [u8; 6],
    ) -> Result<u32, Errno> {
        let ifindex = self
            .rtnl
            .create_macvlan(name, parent, mac, MacvlanMode::Private)?;
        // The parent must not answer ARP for the VIP with its own MAC, and the macvlan must
        // not answer for the parent's addresses (see sys::rtnl).
        if let Err(e) = rtnl::write_vmac_arp_sysctls(name, parent_name) {
            warn!("{name}: arp sysctls: {e:?}");
        }
        // Replies from the VIP to a host on the VIP's subnet leave through the parent (its
        // prefix route came first); the parent's ARP request for that host would carry the
        // VIP as sender with the parent's MAC, and the host would rebind the VIP to the
        // parent's MAC. arp_announce=2 makes the parent use its own address.
        if let Err(e) = rtnl::write_ipv4_conf(parent_name, "arp_announce", "2") {
            warn!("{parent_name}: arp_announce: {e:?}");
        }
        Ok(ifindex)
    }

    fn delete_link(&mut self, ifindex: u32) -> Result<(), Errno> {
        self.rtnl.delete_link(ifindex)
    }

    fn open_listener(
        &mut self,
        ifindex: u32,
        name: &str,
        filter: &[bpf::Insn],
        rcvbuf: usize,
        rx_delay: Option<Duration>,
    ) -> Result<LinuxListener, Errno> {
        // Without a ring (an old kernel, no memory for it) frames come one by one.
        let sock = match PacketSocket::open(ifindex, filter, rx_delay) {
            Err(e) if rx_delay.is_some() => {
                warn!("{name}: receive ring: {e}; reading frames one by one");
                PacketSocket::open(ifindex, filter, None)?
            }
            r => r?,
        };
        if let Err(e) = sock.set_rcvbuf(rcvbuf) {
            debug!("{name}: receive buffer {rcvbuf}: {e}");
        }
        if let Err(e) = sock.join_vrrp_multicast() {
            warn!("{name}: VRRP multicast MACs: {e}");
        }
        let _join4 = McastJoin::ipv4(ifindex)
            .map_err(|e| warn!("{name}: join 224.0.0.18: {e}"))
            .ok();
        let _join6 = McastJoin::ipv6(ifindex)
            .map_err(|e| debug!("{name}: join ff02::12: {e}"))
            .ok();
        Ok(LinuxListener {
            sock,
            _join4,
            _join6,
        })
    }

    fn set_filter(
        &mut self,
        listener: &LinuxListener,
        filter: &[bpf::Insn],
        rcvbuf: usize,
    ) -> Result<(), Errno> {
        listener.sock.set_filter(filter)?;
        let _ = listener.sock.set_rcvbuf(rcvbuf);
        Ok(())
    }

    fn set_rx_delay(
        &mut self,
        listener: &mut LinuxListener,
        rx_delay: Option<Duration>,
    ) -> Result<(), Errno> {
        listener.sock.set_rx_delay(rx_delay).or_else(|e| {
            // Back to frames one by one rather than a socket that receives nothing.
            listener.sock.set_rx_delay(None)?;
            Err(e)
        })
    }

    fn take_kernel_stats(&mut self, listener: &LinuxListener) -> Result<KernelStats, Errno> {
        listener.sock.take_kernel_stats()
    }

    fn recv(
        &mut self,
        listener: &mut LinuxListener,
        buf: &mut [u8],
    ) -> Result<Option<RecvFrame>, Errno> {
        listener.sock.recv(buf)
    }

    fn send_frame(
        &mut self,
        listener: &LinuxListener,
        frame: &[u8],
    ) -> Result<Option<usize>, Errno> {
        listener.sock.send(frame)
    }

    fn send_frame_on(&mut self, ifindex: u32, frame: &[u8], count: u8) -> Result<(), Errno> {
        // Transmit only: its filter admits nothing, so nothing queues on it.
        let sock = PacketSocket::open(ifindex, &bpf::DROP_ALL, None)?;
        for _ in 0..count {
            sock.send(frame)?;
        }
        Ok(())
    }

    fn open_unicast(
        &mut self,
        family: Family,
        device: &str,
        src: Option<IpAddr>,
    ) -> Result<RawIpSocket, Errno> {
        let s = match family {
            Family::Ipv4 => RawIpSocket::ipv4(),
            Family::Ipv6 => RawIpSocket::ipv6(),
        }?;
        if let Err(e) = s.bind_device(device) {
            warn!("unicast socket: bind to {device}: {e}");
        }
        if let Some(src) = src {
            if let Err(e) = s.bind_source(src) {
                warn!("unicast socket: source {src}: {e}");
            }
        }
        Ok(s)
    }

    fn send_unicast(
        &mut self,
        sock: &RawIpSocket,
        msg: &[u8],
        peer: IpAddr,
        ifindex: u32,
    ) -> Result<Option<usize>, Errno> {
        sock.send_to(msg, peer, ifindex)
    }

    /// The notify commands' spawner (`sys::process`): output to /dev/null, own session.
    fn spawn_hook(
        &mut self,
        _name: &str,
        argv: &[&str],
        env: &[&str],
        user: Option<(u32, u32)>,
    ) -> Result<i32, Errno> {
        let opts = process::SpawnOptions {
            capture_output: false,
            user,
        };
        process::spawn(argv, env, &opts).map(|c| c.pid)
    }

    fn kill_hook(&mut self, pid: i32) -> Result<(), Errno> {
        process::kill(pid)
    }
}
