//! The daemon's one kernel seam, narrowed by concern: links ([`KernelLinks`]: facts, the link
//! dump, link and address events, the `use_vmac` macvlan), addresses ([`KernelAddrs`]),
//! routes and rules ([`KernelRoutes`]), VRRP packet I/O ([`PacketIo`]), child processes
//! ([`Spawner`]: pre-master hooks, notify jobs and script checks, started, killed and
//! reaped) and IPVS ([`KernelIpvs`]: the table the IPVS part reconciles). [`Southbound`] is
//! all six. The runtime owns one (inside its VRRP part, which uses most concerns) and lends
//! it to the parts that need one concern: the link dumps at start, after lost events and on
//! a reload, and the event reads (`runtime.rs`), the children of the notifier (`notify.rs`)
//! and of the check engine (`checks.rs`), the IPVS table (`lvs.rs`). [`Linux`] is the real
//! thing (rtnetlink, AF_PACKET, raw IP sockets, sysctls, fork/exec, generic netlink); a test
//! puts a recording fake in its place and replays start, link events, lost-event resyncs,
//! reloads and the order of notify jobs among VIP changes and adverts without namespaces
//! (`tests/pure/daemon_conformance.rs`).
//!
//! Outside the seam, each with a socket or file of its own: the health checks' network
//! probes (`checks.rs`: TCP and ICMP through `sys::{tcp, icmp}`), e-mail alerts (`mail.rs`
//! over `sys::tcp`), the control socket (`control_server.rs`), `track_file` reads
//! (`tracking.rs`), the loop's own fds, clock and signals (`event_loop.rs`), and
//! process-wide settings applied once (scheduling, file limits, pinned scripts).
//!
//! Errors are returned as the kernel gave them; what is worth a log line is decided by the
//! caller, except for the best-effort details a method documents (socket options, sysctls).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};

use log::{debug, warn};
use nix::errno::Errno;

use crate::base::{Duration, Family};
use crate::check::ExitStatus;
use crate::ipvs::reconcile::KernelService;
use crate::ipvs::{IpvsError, Op};
use crate::sys::genl::IpvsClient;
use crate::sys::packet::{KernelStats, McastJoin, PacketSocket, RawIpSocket, RecvFrame};
use crate::sys::process::Child;
use crate::sys::rtnl::{
    self, AddrAttrs, AddrReq, LinkInfo, MacvlanMode, RouteAttrs, Rtnl, RtnlEvent, RtnlEvents,
    RuleAttrs, SourceRule,
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

/// Links: their facts, the dump of every link, link and address events, and the links the
/// daemon makes (the `use_vmac` macvlan).
pub trait KernelLinks {
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
    /// Every link, from one dump.
    fn dump_links(&mut self, each: &mut dyn FnMut(&LinkInfo)) -> Result<(), Errno>;
    /// [`Self::dump_links`], and the event side takes the dump as its new picture, so the
    /// events read after it are told against what the dump showed: at start (only changes
    /// from then on become events) and after events were lost.
    fn reseed_link_events(&mut self, each: &mut dyn FnMut(&LinkInfo)) -> Result<(), Errno>;
    /// The fd link and address events are read from, for the loop to watch; `None` when the
    /// events are handed to the runtime some other way (a test's fake).
    fn link_events_fd(&self) -> Option<RawFd>;
    /// Read one batch of link and address events; `Ok(false)` when nothing was pending.
    /// Events the kernel dropped (its buffer was full) come as one `RtnlEvent::Overrun`.
    fn read_link_events(&mut self, each: &mut dyn FnMut(RtnlEvent)) -> Result<bool, Errno>;
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
}

/// Addresses on links: the VIPs, and the ones a start finds.
pub trait KernelAddrs {
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
}

/// Routes and policy rules (`track_route`, `virtual_routes`, `virtual_rules`).
pub trait KernelRoutes {
    /// Add a route, or replace the one with its destination, table and metric.
    fn add_route(&mut self, route: &RouteAttrs) -> Result<(), Errno>;
    /// Remove a route (same gateway, interface, metric and table); `Err(ESRCH)` if absent.
    fn del_route(&mut self, route: &RouteAttrs) -> Result<(), Errno>;
    /// Add a policy rule; `Err(EEXIST)` when the same rule is there already.
    fn add_rule(&mut self, rule: &RuleAttrs<'_>) -> Result<(), Errno>;
    /// Remove a policy rule (same selectors, priority and table); `Err(ENOENT)` if absent.
    fn del_rule(&mut self, rule: &RuleAttrs<'_>) -> Result<(), Errno>;
}

/// VRRP packet I/O: the sockets adverts come and go through.
pub trait PacketIo {
    /// An interface's listening socket (and its multicast memberships): registered with the
    /// loop, read for adverts, and the socket whole frames (adverts, GARPs) are sent on.
    type Listener: AsRawFd;
    /// An instance's socket for adverts to unicast peers.
    type Unicast;
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
}

/// Who a child is started for: Linux starts both alike, a recording fake tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildOf<'a> {
    /// Instance `name`'s `notify_pre_master` hook.
    PreMaster(&'a str),
    /// A notify job (script, role service, hotplug, ubus event) of the instance, sync group,
    /// virtual or real server `name`.
    Notify(&'a str),
}

/// Child processes: started without waiting, killed with their process group, reaped when
/// SIGCHLD says some exited.
pub trait Spawner {
    /// Start `argv` with `env` added to the environment, as `user` when set, in a session
    /// of its own, output to /dev/null; never waits for it (an exec failure arrives as the
    /// child's exit). Returns its pid.
    fn spawn(
        &mut self,
        of: ChildOf<'_>,
        argv: &[&str],
        env: &[&str],
        user: Option<(u32, u32)>,
    ) -> Result<i32, Errno>;
    /// A script check's child: `argv` as `user` when set, in a session of its own, its
    /// stdout and stderr through a non-blocking pipe ([`Child::output`]) the check reads.
    fn spawn_captured(&mut self, argv: &[&str], user: Option<(u32, u32)>) -> Result<Child, Errno>;
    /// Kill a child started by [`Self::spawn`] or [`Self::spawn_captured`] with its whole
    /// process group.
    fn kill(&mut self, pid: i32) -> Result<(), Errno>;
    /// One exited child of the daemon's (any part's), `None` when no more have exited.
    fn reap(&mut self) -> Option<(i32, ExitStatus)>;
    /// Child `pid`'s exit, if it exited (a shutdown waiting without the loop).
    fn reap_pid(&mut self, pid: i32) -> Option<ExitStatus>;
}

/// The kernel's IPVS table as the IPVS part (`lvs.rs`) needs it. `IpvsClient` (generic
/// netlink) is the real one; its unit tests substitute a simulated table.
pub trait IpvsTable {
    /// Every service with its destinations.
    fn table(&mut self) -> Result<Vec<KernelService>, IpvsError>;
    /// One change.
    fn apply_one(&mut self, op: &Op) -> Result<(), IpvsError>;
}

/// IPVS: the kernel's virtual server table, opened when the IPVS part starts and again on a
/// reload while it was unavailable (`ip_vs` loaded since).
pub trait KernelIpvs {
    /// `Err(IpvsError::NotAvailable)` when the kernel has no IPVS.
    fn open_ipvs(&mut self) -> Result<Box<dyn IpvsTable>, IpvsError>;
}

/// The kernel side of the daemon: every concern, as one object the runtime owns.
pub trait Southbound:
    KernelLinks + KernelAddrs + KernelRoutes + PacketIo + Spawner + KernelIpvs
{
}

impl<T: KernelLinks + KernelAddrs + KernelRoutes + PacketIo + Spawner + KernelIpvs> Southbound
    for T
{
}

/// The Linux kernel: rtnetlink, AF_PACKET with the BPF filter, raw IP sockets, sysctls,
/// fork/exec.
pub struct Linux {
    /// Requests and dumps.
    rtnl: Rtnl,
    /// The link and address event subscription, with its picture of the links.
    events: RtnlEvents,
}

impl Linux {
    pub fn open() -> Result<Linux, String> {
        let rtnl = Rtnl::open().map_err(|e| format!("rtnetlink: {e}"))?;
        let events = RtnlEvents::open().map_err(|e| format!("rtnetlink events: {e}"))?;
        // The kernel's echo of our own VIP adds (every lease refresh) is news to nobody.
        if let Ok(port) = rtnl.port_id() {
            if let Err(e) = events.ignore_address_echoes(port) {
                warn!("rtnetlink events: filter for our own address changes: {e}");
            }
        }
        Ok(Linux { rtnl, events })
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

impl KernelLinks for Linux {
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

    fn dump_links(&mut self, each: &mut dyn FnMut(&LinkInfo)) -> Result<(), Errno> {
        self.rtnl.for_each_link(each)
    }

    fn reseed_link_events(&mut self, each: &mut dyn FnMut(&LinkInfo)) -> Result<(), Errno> {
        let events = &mut self.events.tracker;
        self.rtnl.for_each_link(|l| {
            events.seed(l);
            each(l);
        })
    }

    fn link_events_fd(&self) -> Option<RawFd> {
        Some(self.events.as_raw_fd())
    }

    fn read_link_events(&mut self, each: &mut dyn FnMut(RtnlEvent)) -> Result<bool, Errno> {
        self.events.recv(each)
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

    fn ipv6_forwarding(&mut self, name: &str) -> bool {
        rtnl::ipv6_forwarding(name).unwrap_or_else(|e| {
            debug!("{name}: {e}; NAs claim a router as RFC 5798 6.4.2 says");
            true
        })
    }
}

impl KernelAddrs for Linux {
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
}

impl KernelRoutes for Linux {
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
}

impl PacketIo for Linux {
    type Listener = LinuxListener;
    type Unicast = RawIpSocket;

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
}

/// The daemon's children (`sys::process`): output to /dev/null, own session.
impl Spawner for Linux {
    fn spawn(
        &mut self,
        of: ChildOf<'_>,
        argv: &[&str],
        env: &[&str],
        user: Option<(u32, u32)>,
    ) -> Result<i32, Errno> {
        Processes.spawn(of, argv, env, user)
    }

    fn spawn_captured(&mut self, argv: &[&str], user: Option<(u32, u32)>) -> Result<Child, Errno> {
        Processes.spawn_captured(argv, user)
    }

    fn kill(&mut self, pid: i32) -> Result<(), Errno> {
        Processes.kill(pid)
    }

    fn reap(&mut self) -> Option<(i32, ExitStatus)> {
        Processes.reap()
    }

    fn reap_pid(&mut self, pid: i32) -> Option<ExitStatus> {
        Processes.reap_pid(pid)
    }
}

impl KernelIpvs for Linux {
    fn open_ipvs(&mut self) -> Result<Box<dyn IpvsTable>, IpvsError> {
        Genl.open_ipvs()
    }
}

/// IPVS over generic netlink alone, without the rest of [`Linux`] (tests of the IPVS part
/// against a real kernel).
pub struct Genl;

impl KernelIpvs for Genl {
    fn open_ipvs(&mut self) -> Result<Box<dyn IpvsTable>, IpvsError> {
        IpvsClient::open().map(|c| Box::new(c) as Box<dyn IpvsTable>)
    }
}

impl IpvsTable for IpvsClient {
    fn table(&mut self) -> Result<Vec<KernelService>, IpvsError> {
        IpvsClient::table(self)
    }

    fn apply_one(&mut self, op: &Op) -> Result<(), IpvsError> {
        IpvsClient::apply_one(self, op)
    }
}

/// Real child processes alone, without the rest of [`Linux`] (tests of the notifier and the
/// check engine).
pub struct Processes;

impl Spawner for Processes {
    fn spawn(
        &mut self,
        _of: ChildOf<'_>,
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

    fn spawn_captured(&mut self, argv: &[&str], user: Option<(u32, u32)>) -> Result<Child, Errno> {
        let opts = process::SpawnOptions {
            capture_output: true,
            user,
        };
        process::spawn(argv, &[], &opts)
    }

    fn kill(&mut self, pid: i32) -> Result<(), Errno> {
        process::kill(pid)
    }

    fn reap(&mut self) -> Option<(i32, ExitStatus)> {
        process::reap()
    }

    fn reap_pid(&mut self, pid: i32) -> Option<ExitStatus> {
        process::reap_pid(pid)
    }
}
