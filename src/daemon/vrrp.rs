//! The VRRP part of the daemon: interfaces, packet sockets, instances, virtual addresses and
//! announcements. It turns the pure state machines' actions (`vrrp::instance::Action`) into
//! frames and rtnetlink requests, and received frames into state machine inputs.
//!
//! Per interface: one AF_PACKET socket (BPF-filtered to VRRP), the IP-level group joins
//! (so IGMP/MLD reports make snooping switches forward adverts) and the IPv4 ident counter.
//! Per instance: the state machine, its interface, its optional macvlan (use_vmac) and raw
//! socket (unicast peers). The loop timer `Part::Vrrp.timer(i)` is always armed at instance
//! `i`'s `next_deadline()`; one more, [`VIP_REFRESH_TIMER`], at the earliest VIP lease
//! refresh of any master (`vrrp::vip_lease`).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use log::{debug, error, info, warn};
use nix::errno::Errno;
use smoltcp::wire::EthernetAddress;

use super::event_loop::{Ctx, Inbox, Read};
use super::ids::Part;
use crate::base::ratelimit::{RateLimiter, Verdict};
use crate::base::{Duration, Instant};
use crate::config::model::{self, Config, VrrpVersion};
use crate::sys::bpf;
use crate::sys::packet::{KernelStats, McastJoin, PacketSocket, PktType, RawIpSocket, RecvFrame};
use crate::sys::poll::Interest;
use crate::sys::rtnl::{self, MacvlanMode, Rtnl, RtnlEvent};
use crate::vrrp::announce::{emit_garp, emit_unsolicited_na};
use crate::vrrp::frame::{
    emit_advert_v4, emit_advert_v6, emit_vrrp, parse_frame, virtual_mac, InstanceWire, RxContext,
};
use crate::vrrp::instance::{
    Action, Advert, Input, Instance, Params, StartHint, State, SyncCommand,
};
use crate::vrrp::priority::Adjustment;
use crate::vrrp::rx_policy::{self, Delivery, FrameMeta, Policy};
use crate::vrrp::sync_group::{self, SyncGroup};
use crate::vrrp::vip_lease::VipLease;
use crate::vrrp::wire::{
    self, AddrList, Auth, ChecksumMode, DropCounters, DropReason, Family, VrrpRepr,
};

/// Largest frame we read: VRRP frames are at most 14 + 40 + 8 + 20 * 16 bytes; anything
/// longer than this buffer is not VRRP and is dropped as truncated.
const RX_BUF: usize = 1536;
/// Enough for any frame we build (an advert with 20 IPv6 addresses is 382 bytes).
const TX_BUF: usize = 512;
/// How deep a sync group may ripple (member A moves B, which reports back to A...).
const SYNC_DEPTH: u8 = 4;
/// Receive buffer per instance on a packet socket: a burst of 32 adverts at the ~2.3 KB
/// the kernel charges per small frame. Only frames the BPF filter admits are queued.
const RCVBUF_PER_INSTANCE: usize = 32 * 2304;
/// Floor of a packet socket's receive buffer.
const RCVBUF_MIN: usize = 64 * 1024;
/// Test hook: `MINIVRRP_RX_FILTER=protocol-only` attaches the protocol-only BPF program, so
/// a lab test can show that the user-space receive policy (the second line) drops what the
/// per-interface kernel filter would have dropped first.
const RX_FILTER_ENV: &str = "MINIVRRP_RX_FILTER";
/// Index of the VIP lease refresh timer in the VRRP part's timer space: above any instance
/// index (instances are bounded by the config limits far below it).
pub const VIP_REFRESH_TIMER: u32 = 0x0FFF_FFFF;

/// What the VRRP part asks the loop to queue: decoded from a frame, handled after timers
/// and signals. An advert names its instance by the stable key (interface, VRID, family),
/// never by position: a SIGHUP handled between the read and the handling may reorder,
/// add or remove instances ([`Vrrp::instance_for`]).
#[derive(Clone, Debug)]
pub enum VrrpEvent {
    Advert { key: InstanceKey, advert: Advert },
}

/// What identifies an instance on the wire (RFC 5798 7.1: the VRID on the interface the
/// advert arrived on, per address family). Interface indices into `Vrrp::ifaces` are stable:
/// that table only grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceKey {
    pub iface: u16,
    pub vrid: u8,
    pub family: Family,
}

/// A transition, kept for the parts that react to it (notify scripts, status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub inst: u16,
    pub to: State,
    pub priority: u8,
}

/// Who a dropped frame is counted for: an instance, or an interface when no instance could
/// be told (malformed, tagged, unknown VRID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DropOwner {
    Inst(u16),
    Iface(u16),
}

/// Link facts of one interface, refreshed from rtnetlink.
struct Iface {
    name: String,
    /// `None` while the interface does not exist.
    ifindex: Option<u32>,
    up: bool,
    mac: [u8; 6],
    primary4: Option<Ipv4Addr>,
    link_local6: Option<Ipv6Addr>,
    sock: Option<PacketSocket>,
    /// Kept alive for their group membership (IGMP/MLD reports), never read.
    _join4: Option<McastJoin>,
    _join6: Option<McastJoin>,
    /// IPv4 identification of our adverts: counts up from 1 as keepalived's does.
    ip_ident: u16,
    /// Frames dropped before they could be matched to an instance (malformed, tagged, for
    /// another host, unknown VRID).
    drops: DropCounters,
    /// The kernel's PACKET_STATISTICS, summed over reads and socket re-opens.
    kernel: KernelStats,
}

impl Iface {
    fn new(name: &str) -> Iface {
        Iface {
            name: name.to_string(),
            ifindex: None,
            up: false,
            mac: [0; 6],
            primary4: None,
            link_local6: None,
            sock: None,
            _join4: None,
            _join6: None,
            ip_ident: 0,
            drops: DropCounters::new(),
            kernel: KernelStats::default(),
        }
    }
}

struct Inst {
    cfg: model::Instance,
    fsm: Instance,
    iface: usize,
    /// The address list as it goes on the wire (and is compared on receive).
    addrs: AddrList,
    auth: Auth,
    checksum: ChecksumMode,
    /// ifindex of our macvlan (use_vmac) while it exists.
    vmac: Option<u32>,
    unicast: Option<RawIpSocket>,
    /// Whether the VIPs are on the interface now (so we never remove what we did not add).
    vips_installed: bool,
    /// When the VIPs were last (re)installed with a finite lifetime; `None` while they are
    /// not installed or are permanent (`vip_lifetime 0`).
    vip_refreshed: Option<Instant>,
    /// The interface was usable (up with a source address) when last told to the fsm.
    link_ok: bool,
    adj: Adjustment,
    /// Adverts for this instance dropped by the receive policy, per reason.
    drops: DropCounters,
}

/// All VRRP instances of the running configuration.
pub struct Vrrp {
    rtnl: Rtnl,
    ifaces: Vec<Iface>,
    insts: Vec<Inst>,
    /// Sync groups: the pure group logic and its members' instance indices.
    groups: Vec<(SyncGroup, Vec<usize>)>,
    /// One warning per (instance or interface, drop reason) per interval, so one noisy
    /// reason cannot hide another.
    drop_log: RateLimiter<(DropOwner, DropReason), 64>,
    rx: Box<[u8; RX_BUF]>,
    tx: [u8; TX_BUF],
    transitions: heapless::Deque<Transition, 64>,
    /// globals.startup_delay, and the instant it ends once `start` has run: instances
    /// started before it (at daemon start) stay in INIT until then, later ones (reload) not.
    startup_delay: Duration,
    startup_until: Option<Instant>,
}

fn family_of(cfg: &model::Instance) -> Family {
    match cfg.family {
        model::Family::V4 => Family::Ipv4,
        model::Family::V6 => Family::Ipv6,
    }
}

/// Parameters of the pure state machine from the configuration and the interface's
/// source address (`primary`).
fn params(cfg: &model::Instance, primary: IpAddr) -> Params {
    let clamp_u8 = |v: u32| v.min(u8::MAX as u32) as u8;
    Params {
        version: cfg.version,
        priority: cfg.priority,
        advert_int: cfg.advert_int,
        preempt: cfg.preempt,
        preempt_delay: cfg.preempt_delay,
        primary,
        start: match cfg.initial_state {
            model::InitialState::Master => StartHint::Master,
            model::InitialState::Backup => StartHint::Backup,
        },
        garp_repeat: clamp_u8(cfg.garp_repeat),
        garp_delay: cfg.garp_delay,
        garp_refresh: cfg.garp_refresh.unwrap_or(Duration::ZERO),
        garp_refresh_repeat: 1,
        // Set only for the daemon's first start (Vrrp::start_inst).
        startup_delay: Duration::ZERO,
        link_down_delay: cfg.link_down_delay,
        link_up_delay: cfg.link_up_delay,
    }
}

fn unspecified(f: Family) -> IpAddr {
    match f {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// The interface a VIP goes on: its own `dev` (looked up when needed: VIPs move rarely),
/// else `default` (the instance's interface or VMAC).
fn vip_dev_ifindex(rtnl: &mut Rtnl, vip: &model::Vip, default: Option<u32>) -> Option<u32> {
    match &vip.dev {
        Some(d) => rtnl.link_by_name(d).ok().map(|l| l.ifindex),
        None => default,
    }
}

/// RFC 5798 6.4.2: `count` gratuitous ARPs (IPv4) or unsolicited NAs (IPv6) for one VIP.
fn announce_one(
    sock: &PacketSocket,
    tx: &mut [u8; TX_BUF],
    src_mac: EthernetAddress,
    addr: IpAddr,
    count: u8,
    name: &str,
) {
    let built = match addr {
        IpAddr::V4(a) => emit_garp(tx, src_mac, a),
        IpAddr::V6(a) => emit_unsolicited_na(tx, src_mac, a),
    };
    let Ok(n) = built else {
        return;
    };
    for _ in 0..count {
        if let Err(e) = sock.send(&tx[..n]) {
            warn!(target: name, "announce {addr}: {e}");
            break;
        }
    }
}

/// What changed between two configurations of one instance decides how a reload applies it.
fn needs_restart(old: &model::Instance, new: &model::Instance) -> bool {
    old.interface != new.interface
        || old.vrid != new.vrid
        || old.family != new.family
        || old.version != new.version
        || old.vips != new.vips
        || old.use_vmac != new.use_vmac
        || old.vmac_name != new.vmac_name
        || old.unicast_peers != new.unicast_peers
        || old.unicast_src != new.unicast_src
}

impl Vrrp {
    pub fn new(cfg: &Config) -> Result<Vrrp, String> {
        let rtnl = Rtnl::open().map_err(|e| format!("rtnetlink: {e}"))?;
        let mut v = Vrrp {
            rtnl,
            ifaces: Vec::new(),
            insts: Vec::new(),
            groups: Vec::new(),
            drop_log: RateLimiter::new(Duration::from_secs(
                cfg.globals.log_suppress.as_secs().max(1),
            )),
            rx: Box::new([0; RX_BUF]),
            tx: [0; TX_BUF],
            transitions: heapless::Deque::new(),
            startup_delay: cfg.globals.startup_delay,
            startup_until: None,
        };
        for c in &cfg.instances {
            let inst = v.make_inst(c);
            v.insts.push(inst);
        }
        v.build_groups(cfg);
        Ok(v)
    }

    fn build_groups(&mut self, cfg: &Config) {
        self.groups = cfg
            .sync_groups
            .iter()
            .map(|g| (SyncGroup::new(g.members.len()), g.members.clone()))
            .collect();
    }

    fn iface_index(&mut self, name: &str) -> usize {
        match self.ifaces.iter().position(|i| i.name == name) {
            Some(i) => i,
            None => {
                self.ifaces.push(Iface::new(name));
                self.ifaces.len() - 1
            }
        }
    }

    fn make_inst(&mut self, c: &model::Instance) -> Inst {
        let iface = self.iface_index(&c.interface);
        let family = family_of(c);
        let mut addrs = AddrList::new();
        for vip in c.vips.iter().filter(|v| !v.excluded) {
            // The config layer caps VIPs at MAX_VIPS = wire::MAX_ADDRS.
            let _ = addrs.push(vip.addr);
        }
        let auth = match &c.auth {
            model::Auth::Pass(p) => Auth::simple(p.as_bytes()).unwrap_or(Auth::None),
            model::Auth::None => Auth::None,
        };
        let checksum = match c.v3_checksum {
            model::V3Checksum::Pseudo => ChecksumMode::PseudoHeader,
            model::V3Checksum::Rfc9568 => ChecksumMode::VrrpOnly,
        };
        Inst {
            fsm: Instance::new(params(c, unspecified(family))),
            cfg: c.clone(),
            iface,
            addrs,
            auth,
            checksum,
            vmac: None,
            unicast: None,
            vips_installed: false,
            vip_refreshed: None,
            link_ok: false,
            adj: Adjustment::default(),
            drops: DropCounters::new(),
        }
    }

    /// Open sockets, clear what a crashed earlier run left behind, start every instance.
    pub fn start(&mut self, ctx: &mut Ctx, now: Instant) {
        if !self.startup_delay.is_zero() {
            info!(
                "startup_delay: instances stay in INIT for {}",
                crate::config::schema::format_duration(self.startup_delay)
            );
        }
        self.startup_until = Some(now + self.startup_delay);
        for i in 0..self.ifaces.len() {
            self.refresh_iface(ctx, i);
        }
        for i in 0..self.insts.len() {
            self.start_inst(ctx, i, now);
        }
    }

    fn start_inst(&mut self, ctx: &mut Ctx, i: usize, now: Instant) {
        self.remove_stale_vips(i);
        self.setup_inst_sockets(i);
        let primary = self.source_addr(i);
        let inst = &mut self.insts[i];
        inst.link_ok = primary.is_some() && self.ifaces[inst.iface].up;
        let mut prm = match primary {
            Some(p) => params(&inst.cfg, p),
            None => *inst.fsm.params(),
        };
        prm.startup_delay = self
            .startup_until
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        inst.fsm = Instance::new(prm);
        if inst.adj != Adjustment::default() {
            let adj = inst.adj;
            self.feed(ctx, i, Input::Trackers(adj), now);
        }
        self.feed(ctx, i, Input::Startup, now);
        if !self.insts[i].link_ok {
            self.feed(ctx, i, Input::InterfaceDown, now);
        }
    }

    /// A crashed run (kill -9, power loss with a persistent config) may have left our VIPs
    /// configured: remove them so no stale VIP answers while we are not master.
    fn remove_stale_vips(&mut self, i: usize) {
        let inst = &self.insts[i];
        let Some(ifindex) = self.ifaces[inst.iface].ifindex else {
            return;
        };
        if inst.cfg.use_vmac {
            if let Ok(l) = self.rtnl.link_by_name(&inst.cfg.vmac_name) {
                info!(target: &inst.cfg.name, "removing stale {} left by an earlier run", inst.cfg.vmac_name);
                let _ = self.rtnl.delete_link(l.ifindex);
            }
            return;
        }
        let mut stale: heapless::Vec<(IpAddr, u8), { wire::MAX_ADDRS }> = heapless::Vec::new();
        let _ = self.rtnl.for_each_address(Some(ifindex), |a| {
            if inst.cfg.vips.iter().any(|v| v.addr == a.addr) {
                let _ = stale.push((a.addr, a.prefix));
            }
        });
        for (addr, prefix) in stale {
            info!(target: &inst.cfg.name, "removing stale VIP {addr}/{prefix} left by an earlier run");
            let _ = self.rtnl.del_address(ifindex, addr, prefix);
        }
        // VIPs on other interfaces (`dev`): removed if present, whatever their prefix.
        for vip in inst.cfg.vips.iter().filter(|v| v.dev.is_some()) {
            if let Some(dev_index) = vip_dev_ifindex(&mut self.rtnl, vip, None) {
                if self
                    .rtnl
                    .del_address(dev_index, vip.addr, vip.prefix_len)
                    .is_ok()
                {
                    info!(target: &inst.cfg.name, "removing stale VIP {} left by an earlier run", vip.addr);
                }
            }
        }
    }

    fn setup_inst_sockets(&mut self, i: usize) {
        let inst = &mut self.insts[i];
        inst.unicast = None;
        if inst.cfg.unicast_peers.is_empty() {
            return;
        }
        let sock = match inst.cfg.family {
            model::Family::V4 => RawIpSocket::ipv4(),
            model::Family::V6 => RawIpSocket::ipv6(),
        };
        match sock {
            Ok(s) => {
                if let Err(e) = s.bind_device(&inst.cfg.interface) {
                    warn!(target: &inst.cfg.name, "unicast socket: bind to {}: {e}", inst.cfg.interface);
                }
                if let Some(src) = inst.cfg.unicast_src {
                    if let Err(e) = s.bind_source(src) {
                        warn!(target: &inst.cfg.name, "unicast socket: source {src}: {e}");
                    }
                }
                inst.unicast = Some(s);
            }
            Err(e) => error!(target: &inst.cfg.name, "unicast socket: {e}"),
        }
    }

    /// The advert source address and tie-break key (RFC 5798 5.1.1.2 / 5.1.2.2): the
    /// configured unicast_src, else the interface's primary IPv4 / IPv6 link-local.
    fn source_addr(&self, i: usize) -> Option<IpAddr> {
        let inst = &self.insts[i];
        if let Some(s) = inst.cfg.unicast_src {
            return Some(s);
        }
        let ifc = &self.ifaces[inst.iface];
        match inst.cfg.family {
            model::Family::V4 => ifc.primary4.map(IpAddr::V4),
            model::Family::V6 => ifc.link_local6.map(IpAddr::V6),
        }
    }

    /// Re-read an interface (at start, when it appears again, after an rtnetlink overrun)
    /// and (re)open its packet socket if its ifindex changed.
    fn refresh_iface(&mut self, ctx: &mut Ctx, idx: usize) {
        let name = self.ifaces[idx].name.clone();
        let link = match self.rtnl.link_by_name(&name) {
            Ok(l) => Some(l),
            Err(Errno::ENODEV) => None,
            Err(e) => {
                warn!("{name}: cannot read link: {e}");
                None
            }
        };
        let token = Part::Vrrp.token(idx as u32);
        let Some(link) = link else {
            if self.ifaces[idx].ifindex.is_some() {
                info!("{name}: interface is gone");
            } else {
                warn!("{name}: interface does not exist (yet): its instances stay in FAULT");
            }
            ctx.deregister(token);
            let ifc = &mut self.ifaces[idx];
            ifc.sock = None;
            ifc._join4 = None;
            ifc._join6 = None;
            ifc.ifindex = None;
            ifc.up = false;
            return;
        };
        let primary4 = self.rtnl.primary_ipv4(link.ifindex).ok().flatten();
        let ll6 = self.rtnl.ipv6_link_local(link.ifindex).ok().flatten();
        let ifc = &mut self.ifaces[idx];
        ifc.up = link.is_up();
        ifc.mac = link.mac.unwrap_or([0; 6]);
        ifc.primary4 = primary4;
        ifc.link_local6 = ll6;
        if ifc.ifindex == Some(link.ifindex) && ifc.sock.is_some() {
            return;
        }
        ctx.deregister(token);
        if let Some(old) = ifc.sock.take() {
            add_kernel_stats(&mut ifc.kernel, &old);
        }
        ifc.ifindex = Some(link.ifindex);
        let filter = self.rx_filter(idx);
        let rcvbuf = self.rcvbuf_for(idx);
        let ifc = &mut self.ifaces[idx];
        match PacketSocket::open(link.ifindex, &filter) {
            Ok(s) => {
                if let Err(e) = s.set_rcvbuf(rcvbuf) {
                    debug!("{name}: receive buffer {rcvbuf}: {e}");
                }
                if let Err(e) = s.join_vrrp_multicast() {
                    warn!("{name}: VRRP multicast MACs: {e}");
                }
                ifc._join4 = McastJoin::ipv4(link.ifindex)
                    .map_err(|e| warn!("{name}: join 224.0.0.18: {e}"))
                    .ok();
                ifc._join6 = McastJoin::ipv6(link.ifindex)
                    .map_err(|e| debug!("{name}: join ff02::12: {e}"))
                    .ok();
                if let Err(e) = ctx.register(token, &s, Interest::READABLE) {
                    error!("{name}: {e}");
                }
                ifc.sock = Some(s);
                info!("{name}: listening (ifindex {})", link.ifindex);
            }
            Err(e) => error!("{name}: packet socket: {e}"),
        }
    }

    /// Feed one input to instance `i` and carry out what it asks; then keep its loop timer
    /// at its next deadline and let its sync group follow.
    pub fn feed(&mut self, ctx: &mut Ctx, i: usize, input: Input, now: Instant) {
        self.feed_depth(ctx, i, input, now, 0);
    }

    fn feed_depth(&mut self, ctx: &mut Ctx, i: usize, input: Input, now: Instant, depth: u8) {
        let Some(inst) = self.insts.get_mut(i) else {
            return;
        };
        let actions = inst.fsm.handle(now, input);
        for a in actions {
            self.act(i, a, now);
        }
        self.arm_vip_refresh(ctx);
        let timer = Part::Vrrp.timer(i as u32);
        match self.insts[i].fsm.next_deadline() {
            Some(at) => {
                if let Err(e) = ctx.arm(timer, at) {
                    error!("{}: {e}", self.insts[i].cfg.name);
                }
            }
            None => {
                ctx.cancel(timer);
            }
        }
        if depth < SYNC_DEPTH {
            self.sync_follow(ctx, i, now, depth);
        }
    }

    /// RFC-less keepalived behaviour: members of a sync group move together.
    fn sync_follow(&mut self, ctx: &mut Ctx, i: usize, now: Instant, depth: u8) {
        let Some(g) = self.insts[i].cfg.sync_group else {
            return;
        };
        let Some((group, members)) = self.groups.get_mut(g) else {
            return;
        };
        let Some(k) = members.iter().position(|&m| m == i) else {
            return;
        };
        let (state, own_fault) = (self.insts[i].fsm.state(), self.insts[i].fsm.own_fault());
        // Resolve the group's member positions to instance indices before feeding them
        // (feeding borrows self mutably); fixed-size, so the steady state stays allocation-free.
        let targets: heapless::Vec<(usize, SyncCommand), { sync_group::MAX_MEMBERS }> = group
            .update(k, state, own_fault)
            .into_iter()
            .filter_map(|(m, cmd)| members.get(m).map(|&t| (t, cmd)))
            .collect();
        for (target, cmd) in targets {
            self.feed_depth(ctx, target, Input::Sync(cmd), now, depth + 1);
        }
    }

    fn act(&mut self, i: usize, a: Action, now: Instant) {
        match a {
            Action::SendAdvert { priority } => self.send_advert(i, priority),
            Action::AddVips => self.add_vips(i, now),
            Action::RemoveVips => self.remove_vips(i),
            Action::Announce { count } => self.announce(i, count),
            Action::Notify(state) => {
                let inst = &self.insts[i];
                let t = Transition {
                    inst: i as u16,
                    to: state,
                    priority: inst.fsm.priority(),
                };
                if self.transitions.is_full() {
                    self.transitions.pop_front();
                }
                let _ = self.transitions.push_back(t);
            }
            Action::Transition { from, to, reason } => {
                info!(target: &self.insts[i].cfg.name, "{from} -> {to} ({reason})");
            }
        }
    }

    fn src_mac(&self, i: usize) -> EthernetAddress {
        let inst = &self.insts[i];
        if inst.cfg.use_vmac {
            virtual_mac(inst.cfg.vrid, family_of(&inst.cfg))
        } else {
            EthernetAddress(self.ifaces[inst.iface].mac)
        }
    }

    /// RFC 5798 6.4.3 / RFC 3768 6.4.3: send one advertisement, multicast or to each
    /// unicast peer.
    fn send_advert(&mut self, i: usize, priority: u8) {
        let Some(src) = self.source_addr(i) else {
            return;
        };
        let src_mac = self.src_mac(i);
        let inst = &self.insts[i];
        let version = inst.cfg.version;
        let adver_int = match inst.cfg.version {
            VrrpVersion::V2 => inst.cfg.advert_int.as_secs() as u16,
            VrrpVersion::V3 => inst.cfg.advert_int_centis(),
        };
        let repr = VrrpRepr {
            version,
            vrid: inst.cfg.vrid,
            priority,
            adver_int,
            auth: if version == wire::Version::V2 {
                inst.auth
            } else {
                Auth::None
            },
            addrs: inst.addrs.clone(),
        };
        let mode = match (version, src) {
            (wire::Version::V2, _) => ChecksumMode::VrrpOnly,
            (_, IpAddr::V6(_)) => ChecksumMode::PseudoHeader,
            _ => inst.checksum,
        };
        let name = &inst.cfg.name;
        if let Some(sock) = &inst.unicast {
            for peer in &inst.cfg.unicast_peers {
                match emit_vrrp(&mut self.tx, &repr, &src, peer, mode) {
                    Ok(n) => match sock.send_to(
                        &self.tx[..n],
                        *peer,
                        self.ifaces[inst.iface].ifindex.unwrap_or(0),
                    ) {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            warn!(target: name, "advert to {peer} lost: socket buffer full")
                        }
                        Err(e) => warn!(target: name, "advert to {peer}: {e}"),
                    },
                    Err(e) => error!(target: name, "advert: {e:?}"),
                }
            }
            return;
        }
        let ifc = &mut self.ifaces[inst.iface];
        let Some(sock) = &ifc.sock else {
            return;
        };
        let built = match src {
            IpAddr::V4(s) => {
                ifc.ip_ident = ifc.ip_ident.wrapping_add(1);
                emit_advert_v4(&mut self.tx, &repr, src_mac, s, ifc.ip_ident, mode)
            }
            IpAddr::V6(s) => emit_advert_v6(&mut self.tx, &repr, src_mac, s, 0),
        };
        match built {
            Ok(n) => match sock.send(&self.tx[..n]) {
                Ok(Some(_)) => {}
                Ok(None) => warn!(target: name, "advert lost: socket buffer full"),
                Err(e) => warn!(target: name, "advert on {}: {e}", ifc.name),
            },
            Err(e) => error!(target: name, "advert: {e:?}"),
        }
    }

    /// The interface the VIPs live on: the macvlan in use_vmac mode (created on demand).
    fn vip_ifindex(&mut self, i: usize) -> Option<u32> {
        let inst = &self.insts[i];
        let parent = self.ifaces[inst.iface].ifindex?;
        if !inst.cfg.use_vmac {
            return Some(parent);
        }
        if let Some(v) = inst.vmac {
            return Some(v);
        }
        let mac = virtual_mac(inst.cfg.vrid, family_of(&inst.cfg)).0;
        let name = inst.cfg.vmac_name.clone();
        match self
            .rtnl
            .create_macvlan(&name, parent, mac, MacvlanMode::Private)
        {
            Ok(ifindex) => {
                // The parent must not answer ARP for the VIP with its own MAC, and the
                // macvlan must not answer for the parent's addresses (see sys::rtnl).
                let parent_name = &self.ifaces[inst.iface].name;
                if let Err(e) = rtnl::write_vmac_arp_sysctls(&name, parent_name) {
                    warn!(target: &inst.cfg.name, "{name}: arp sysctls: {e:?}");
                }
                // Replies from the VIP to a host on the VIP's subnet leave through the parent
                // (its prefix route came first); the parent's ARP request for that host would
                // carry the VIP as sender with the parent's MAC, and the host would rebind the
                // VIP to the parent's MAC. arp_announce=2 makes the parent use its own address.
                if let Err(e) = rtnl::write_ipv4_conf(parent_name, "arp_announce", "2") {
                    warn!(target: &inst.cfg.name, "{parent_name}: arp_announce: {e:?}");
                }
                info!(target: &self.insts[i].cfg.name, "created {name} with virtual MAC");
                self.insts[i].vmac = Some(ifindex);
                Some(ifindex)
            }
            Err(e) => {
                error!(target: &self.insts[i].cfg.name, "cannot create {name}: {e}");
                None
            }
        }
    }

    /// Install the VIPs, with the instance's lease when it has one (`vip_lifetime`), and
    /// note when, so [`Self::vip_refresh`] renews them in time. Also the refresh itself: a
    /// create + replace of a present address only resets its lifetime, and one that the
    /// kernel already expired (the loop stalled past the lifetime) is added back.
    /// A VIP with `dev` goes on that interface.
    fn add_vips(&mut self, i: usize, now: Instant) {
        let default = self.vip_ifindex(i);
        let inst = &mut self.insts[i];
        let lease = VipLease::new(inst.cfg.vip_lifetime);
        for vip in &inst.cfg.vips {
            let Some(ifindex) = vip_dev_ifindex(&mut self.rtnl, vip, default) else {
                if let Some(d) = &vip.dev {
                    error!(target: &inst.cfg.name, "add VIP {}: no interface {d}", vip.addr);
                }
                continue;
            };
            let attrs = rtnl::AddrAttrs {
                scope: vip.scope,
                label: vip.label.as_deref(),
                lifetime_s: lease.map(|l| l.lifetime_s),
            };
            match self
                .rtnl
                .add_address_with(ifindex, vip.addr, vip.prefix_len, attrs)
            {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => error!(target: &inst.cfg.name, "add VIP {}: {e}", vip.addr),
            }
        }
        inst.vips_installed = true;
        inst.vip_refreshed = lease.map(|_| now);
    }

    /// Dead-man VIPs (`vrrp::vip_lease`): renew the lease of every master whose refresh is
    /// due. Runs from [`VIP_REFRESH_TIMER`]; the loop fires due timers before it reads more
    /// packets, so a flood cannot push a refresh past its lifetime.
    fn vip_refresh(&mut self, ctx: &mut Ctx, now: Instant) {
        for i in 0..self.insts.len() {
            let inst = &self.insts[i];
            let (Some(last), Some(lease)) =
                (inst.vip_refreshed, VipLease::new(inst.cfg.vip_lifetime))
            else {
                // A reload to `vip_lifetime 0` makes the installed addresses permanent.
                if inst.vip_refreshed.is_some() {
                    self.add_vips(i, now);
                }
                continue;
            };
            if lease.next_refresh(last) > now {
                continue;
            }
            if now >= lease.expires(last) {
                warn!(target: &inst.cfg.name,
                    "VIP lease ran out {} ms ago (the daemon was stalled): adding the VIPs back",
                    (now - lease.expires(last)).as_millis());
            }
            self.add_vips(i, now);
        }
        self.arm_vip_refresh(ctx);
    }

    /// Keep [`VIP_REFRESH_TIMER`] at the earliest lease refresh due (none: cancelled).
    fn arm_vip_refresh(&mut self, ctx: &mut Ctx) {
        let timer = Part::Vrrp.timer(VIP_REFRESH_TIMER);
        let due = self
            .insts
            .iter()
            .filter_map(|s| {
                let lease = VipLease::new(s.cfg.vip_lifetime);
                match (s.vip_refreshed, lease) {
                    (Some(last), Some(l)) => Some(l.next_refresh(last)),
                    // Lease switched off by a reload: refresh now to make them permanent.
                    (Some(last), None) => Some(last),
                    _ => None,
                }
            })
            .min();
        match due {
            Some(at) => {
                if let Err(e) = ctx.arm(timer, at) {
                    error!("VIP refresh timer: {e}");
                }
            }
            None => {
                ctx.cancel(timer);
            }
        }
    }

    fn remove_vips(&mut self, i: usize) {
        let inst = &mut self.insts[i];
        if !inst.vips_installed {
            return;
        }
        inst.vips_installed = false;
        inst.vip_refreshed = None;
        let ifindex = if inst.cfg.use_vmac {
            inst.vmac
        } else {
            self.ifaces[inst.iface].ifindex
        };
        for vip in &inst.cfg.vips {
            let Some(ifindex) = vip_dev_ifindex(&mut self.rtnl, vip, ifindex) else {
                continue;
            };
            match self.rtnl.del_address(ifindex, vip.addr, vip.prefix_len) {
                Ok(()) | Err(Errno::EADDRNOTAVAIL) | Err(Errno::ENODEV) => {}
                Err(e) => warn!(target: &inst.cfg.name, "remove VIP {}: {e}", vip.addr),
            }
        }
    }

    /// RFC 5798 6.4.2: gratuitous ARP (IPv4) or unsolicited NA (IPv6) for every VIP, from
    /// the MAC the VIPs answer with.
    fn announce(&mut self, i: usize, count: u8) {
        let src_mac = self.src_mac(i);
        let inst = &self.insts[i];
        let Some(sock) = &self.ifaces[inst.iface].sock else {
            return;
        };
        for vip in &inst.cfg.vips {
            if let Some(dev) = &vip.dev {
                // A VIP on another interface is announced there, from that interface's MAC.
                let Ok(link) = self.rtnl.link_by_name(dev) else {
                    continue;
                };
                let Ok(other) = PacketSocket::open(link.ifindex, &crate::sys::bpf::DROP_ALL) else {
                    warn!(target: &inst.cfg.name, "announce {}: cannot open {dev}", vip.addr);
                    continue;
                };
                let mac = EthernetAddress(link.mac.unwrap_or([0; 6]));
                announce_one(&other, &mut self.tx, mac, vip.addr, count, &inst.cfg.name);
                continue;
            }
            announce_one(sock, &mut self.tx, src_mac, vip.addr, count, &inst.cfg.name);
        }
    }

    /// Read one frame from interface socket `idx`: link facts and RFC 5798 7.1 checks that
    /// need no instance (`rx_policy::check_link`, `parse_frame`), counted per interface; then
    /// the instance's receive policy (`rx_policy::check`), counted per instance.
    pub fn on_readable(
        &mut self,
        idx: usize,
        inbox: &mut Inbox<'_, super::runtime::Event>,
    ) -> Read {
        let Some(ifc) = self.ifaces.get_mut(idx) else {
            return Read::Drained;
        };
        let Some(sock) = ifc.sock.as_mut() else {
            return Read::Drained;
        };
        let frame = match sock.recv(&mut self.rx[..]) {
            Ok(Some(m)) => m,
            Ok(None) => return Read::Drained,
            Err(e) => {
                debug!("{}: recv: {e}", ifc.name);
                return Read::Drained;
            }
        };
        let meta = frame_meta(&frame);
        let parsed = if frame.truncated {
            Err(DropReason::FrameTruncated)
        } else {
            rx_policy::check_link(&meta)
                .and_then(|()| parse_frame(&self.rx[..frame.len], RxContext::TTL_BY_POLICY))
        };
        let adv = match parsed {
            Ok(a) => a,
            Err(reason) => {
                self.count_drop(DropOwner::Iface(idx as u16), reason, None);
                return Read::Again;
            }
        };
        let key = InstanceKey {
            iface: idx as u16,
            vrid: adv.vrid,
            family: Family::of(&adv.src),
        };
        let Some(i) = self.instance_for(key) else {
            self.count_drop(
                DropOwner::Iface(idx as u16),
                DropReason::VridMismatch,
                Some(adv.src),
            );
            return Read::Again;
        };
        if let Err(reason) = rx_policy::check(&self.rx_rules(i), &meta, &adv) {
            self.count_drop(DropOwner::Inst(i as u16), reason, Some(adv.src));
            return Read::Again;
        }
        let advert = Advert {
            src: adv.src,
            priority: adv.priority,
            advert_int: adv.advert_interval,
        };
        inbox.push(super::runtime::Event::Vrrp(VrrpEvent::Advert {
            key,
            advert,
        }));
        Read::Again
    }

    /// Instance `i`'s receive policy: its wire identity, our own source address, its
    /// unicast peers (the source must be one of them: keepalived's `check_unicast_src`).
    fn rx_rules(&self, i: usize) -> Policy<'_> {
        let inst = &self.insts[i];
        Policy {
            wire: InstanceWire {
                vrid: inst.cfg.vrid,
                version: inst.cfg.version,
                auth: inst.auth,
                advert_interval: inst.cfg.advert_int,
                addrs: &inst.addrs,
            },
            own: core::slice::from_ref(&inst.fsm.params().primary),
            unicast_peers: &inst.cfg.unicast_peers,
            check_unicast_src: true,
        }
    }

    /// Count a dropped frame for its owner and warn about it, at most once per interval per
    /// (owner, reason).
    fn count_drop(&mut self, owner: DropOwner, reason: DropReason, src: Option<IpAddr>) {
        let name = match owner {
            DropOwner::Inst(i) => {
                let inst = &mut self.insts[i as usize];
                inst.drops.record(reason);
                inst.cfg.name.as_str()
            }
            DropOwner::Iface(f) => {
                let ifc = &mut self.ifaces[f as usize];
                ifc.drops.record(reason);
                ifc.name.as_str()
            }
        };
        if let Verdict::Allow { suppressed } = self.drop_log.check((owner, reason), clock_hint()) {
            warn_drop(name, reason, src, suppressed);
        }
    }

    /// The kernel-side filter for interface `idx`: the VRIDs its instances run per family,
    /// unicast admitted only for families with unicast peers (see `bpf::vrrp_filter`).
    fn rx_filter(&self, idx: usize) -> bpf::Program {
        if std::env::var(RX_FILTER_ENV).as_deref() == Ok("protocol-only") {
            return bpf::VRRP_FILTER.iter().copied().collect();
        }
        let mut v4: heapless::Vec<u8, 256> = heapless::Vec::new();
        let mut v6: heapless::Vec<u8, 256> = heapless::Vec::new();
        let (mut uni4, mut uni6) = (false, false);
        for inst in self.insts.iter().filter(|s| s.iface == idx) {
            let (list, uni) = match family_of(&inst.cfg) {
                Family::Ipv4 => (&mut v4, &mut uni4),
                Family::Ipv6 => (&mut v6, &mut uni6),
            };
            if !list.contains(&inst.cfg.vrid) {
                let _ = list.push(inst.cfg.vrid);
            }
            *uni |= !inst.cfg.unicast_peers.is_empty();
        }
        bpf::vrrp_filter(&bpf::VrrpFilterSpec {
            v4_vrids: &v4,
            v6_vrids: &v6,
            v4_unicast: uni4,
            v6_unicast: uni6,
        })
    }

    /// Receive buffer for interface `idx`'s socket, sized for the instances on it.
    fn rcvbuf_for(&self, idx: usize) -> usize {
        let n = self.insts.iter().filter(|s| s.iface == idx).count();
        (n * RCVBUF_PER_INSTANCE).max(RCVBUF_MIN)
    }

    /// After a reload the VRIDs on an interface may have changed: swap its filter and size.
    fn refresh_rx_filters(&mut self) {
        for idx in 0..self.ifaces.len() {
            let (filter, rcvbuf) = (self.rx_filter(idx), self.rcvbuf_for(idx));
            let ifc = &self.ifaces[idx];
            if let Some(sock) = &ifc.sock {
                if let Err(e) = sock.set_filter(&filter) {
                    error!("{}: receive filter: {e}", ifc.name);
                }
                let _ = sock.set_rcvbuf(rcvbuf);
            }
        }
    }

    /// The instance with this key in the current table.
    fn instance_for(&self, key: InstanceKey) -> Option<usize> {
        self.insts.iter().position(|s| {
            s.iface == usize::from(key.iface)
                && s.cfg.vrid == key.vrid
                && family_of(&s.cfg) == key.family
        })
    }

    pub fn on_event(&mut self, ctx: &mut Ctx, ev: VrrpEvent, now: Instant) {
        match ev {
            // Matched now, not when read: a reload in between may have moved it.
            VrrpEvent::Advert { key, advert } => match self.instance_for(key) {
                Some(i) => self.feed(ctx, i, Input::AdvertReceived(advert), now),
                // Its instance left with a reload.
                None => self.count_drop(
                    DropOwner::Iface(key.iface),
                    DropReason::VridMismatch,
                    Some(advert.src),
                ),
            },
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx, i: usize, now: Instant) {
        if i == VIP_REFRESH_TIMER as usize {
            return self.vip_refresh(ctx, now);
        }
        self.feed(ctx, i, Input::Timer, now);
    }

    /// Link and address changes: RFC 5798 6.4 interface up/down events, and an interface
    /// that disappears and comes back (PPPoE, WireGuard, VLAN) under a new ifindex.
    pub fn on_link_event(&mut self, ctx: &mut Ctx, ev: &RtnlEvent, now: Instant) {
        let name: Option<&str> = match ev {
            RtnlEvent::LinkNew { name, .. }
            | RtnlEvent::LinkUp { name, .. }
            | RtnlEvent::LinkDown { name, .. }
            | RtnlEvent::LinkGone { name, .. } => Some(name.as_str()),
            RtnlEvent::AddrAdded(a) | RtnlEvent::AddrRemoved(a) => {
                // Only our interfaces' own addresses matter (the source address may change);
                // our VIPs coming and going are our own doing.
                let idx = self
                    .ifaces
                    .iter()
                    .position(|f| f.ifindex == Some(a.ifindex));
                if let Some(idx) = idx {
                    if !self
                        .insts
                        .iter()
                        .any(|s| s.cfg.vips.iter().any(|v| v.addr == a.addr))
                    {
                        self.refresh_and_update(ctx, idx, now);
                    }
                }
                return;
            }
            RtnlEvent::Overrun => {
                warn!("rtnetlink events overran: re-reading interfaces");
                for idx in 0..self.ifaces.len() {
                    self.refresh_and_update(ctx, idx, now);
                }
                return;
            }
        };
        let Some(name) = name else { return };
        if let Some(idx) = self.ifaces.iter().position(|f| f.name == name) {
            self.refresh_and_update(ctx, idx, now);
        }
    }

    fn refresh_and_update(&mut self, ctx: &mut Ctx, idx: usize, now: Instant) {
        self.refresh_iface(ctx, idx);
        for i in 0..self.insts.len() {
            if self.insts[i].iface != idx {
                continue;
            }
            let src = self.source_addr(i);
            let ok = self.ifaces[idx].up && src.is_some();
            let inst = &mut self.insts[i];
            if let Some(src) = src {
                if inst.fsm.params().primary != src {
                    let p = params(&inst.cfg, src);
                    info!(target: &inst.cfg.name, "source address is now {src}");
                    self.feed(ctx, i, Input::ConfigChange(p), now);
                }
            }
            let inst = &mut self.insts[i];
            if ok != inst.link_ok {
                inst.link_ok = ok;
                if !ok {
                    // The kernel removes addresses with the interface; macvlans go with it.
                    if self.ifaces[idx].ifindex.is_none() {
                        inst.vmac = None;
                    }
                }
                let input = if ok {
                    Input::InterfaceUp
                } else {
                    Input::InterfaceDown
                };
                self.feed(ctx, i, input, now);
            }
        }
    }

    /// Tracker results for instance `i` (effective priority or FAULT).
    pub fn set_trackers(&mut self, ctx: &mut Ctx, i: usize, adj: Adjustment, now: Instant) {
        let Some(inst) = self.insts.get_mut(i) else {
            return;
        };
        if inst.adj == adj {
            return;
        }
        inst.adj = adj;
        self.feed(ctx, i, Input::Trackers(adj), now);
    }

    /// Graceful stop (RFC 5798 6.4.3 Shutdown): a master sends priority 0 and removes its
    /// VIPs, so a backup takes over after Skew_Time instead of Master_Down_Interval.
    pub fn shutdown(&mut self, ctx: &mut Ctx, now: Instant) {
        for i in 0..self.insts.len() {
            self.stop_inst(ctx, i, now);
        }
    }

    fn stop_inst(&mut self, ctx: &mut Ctx, i: usize, now: Instant) {
        self.feed_depth(ctx, i, Input::Shutdown, now, SYNC_DEPTH);
        self.remove_vips(i);
        ctx.cancel(Part::Vrrp.timer(i as u32));
        if let Some(v) = self.insts[i].vmac.take() {
            let _ = self.rtnl.delete_link(v);
        }
    }

    /// Apply a new, already validated configuration. Instances whose settings did not change
    /// keep their state, timers and VIPs untouched; changes that the state machine can take
    /// (priority, interval, preemption...) are applied in place; the rest restart.
    pub fn reload(&mut self, ctx: &mut Ctx, cfg: &Config, now: Instant) {
        let mut old: Vec<Option<Inst>> = core::mem::take(&mut self.insts)
            .into_iter()
            .map(Some)
            .collect();
        // Timers are re-armed below for the new indices.
        for i in 0..old.len() {
            ctx.cancel(Part::Vrrp.timer(i as u32));
        }
        let mut fresh: Vec<usize> = Vec::new();
        let mut changed: Vec<usize> = Vec::new();
        for c in &cfg.instances {
            let prev = old
                .iter_mut()
                .find(|o| {
                    o.as_ref()
                        .is_some_and(|o| o.cfg.name == c.name && !needs_restart(&o.cfg, c))
                })
                .and_then(Option::take);
            match prev {
                Some(mut inst) => {
                    if inst.cfg != *c {
                        let new = self.make_inst(c);
                        inst.auth = new.auth;
                        inst.checksum = new.checksum;
                        inst.cfg = c.clone();
                        changed.push(self.insts.len());
                    }
                    inst.iface = self.iface_index(&c.interface);
                    self.insts.push(inst);
                }
                None => {
                    let inst = self.make_inst(c);
                    fresh.push(self.insts.len());
                    self.insts.push(inst);
                }
            }
        }
        // Instances gone from the config (or restarting with new identity) leave gracefully.
        let mut leaving: Vec<Inst> = old.into_iter().flatten().collect();
        for inst in leaving.iter_mut() {
            info!(target: &inst.cfg.name, "removed by reload");
        }
        self.retire(ctx, leaving, now);
        self.build_groups(cfg);
        for i in 0..self.insts.len() {
            if let Some(at) = self.insts[i].fsm.next_deadline() {
                let _ = ctx.arm(Part::Vrrp.timer(i as u32), at);
            }
        }
        self.arm_vip_refresh(ctx);
        for i in changed {
            if let Some(src) = self.source_addr(i) {
                let p = params(&self.insts[i].cfg, src);
                if p != *self.insts[i].fsm.params() {
                    info!(target: &self.insts[i].cfg.name, "reconfigured in place");
                    self.feed(ctx, i, Input::ConfigChange(p), now);
                }
            }
        }
        for idx in 0..self.ifaces.len() {
            if self.ifaces[idx].sock.is_none() {
                self.refresh_iface(ctx, idx);
            }
        }
        for i in fresh {
            self.start_inst(ctx, i, now);
        }
        self.close_unused_ifaces(ctx);
        self.refresh_rx_filters();
    }

    fn retire(&mut self, ctx: &mut Ctx, leaving: Vec<Inst>, now: Instant) {
        // Run them through the normal path at the end of the table, then drop them.
        let base = self.insts.len();
        let n = leaving.len();
        for mut inst in leaving {
            inst.cfg.sync_group = None;
            self.insts.push(inst);
        }
        for i in base..base + n {
            self.stop_inst(ctx, i, now);
        }
        self.insts.truncate(base);
    }

    fn close_unused_ifaces(&mut self, ctx: &mut Ctx) {
        for idx in 0..self.ifaces.len() {
            if !self.insts.iter().any(|s| s.iface == idx) && self.ifaces[idx].sock.is_some() {
                ctx.deregister(Part::Vrrp.token(idx as u32));
                let ifc = &mut self.ifaces[idx];
                if let Some(old) = ifc.sock.take() {
                    add_kernel_stats(&mut ifc.kernel, &old);
                }
                ifc._join4 = None;
                ifc._join6 = None;
                ifc.ifindex = None;
            }
        }
    }

    /// Transitions since the last call, oldest first (for notify scripts).
    pub fn take_transition(&mut self) -> Option<Transition> {
        self.transitions.pop_front()
    }

    pub fn instance_name(&self, i: usize) -> &str {
        self.insts
            .get(i)
            .map(|s| s.cfg.name.as_str())
            .unwrap_or("?")
    }

    pub fn instance_count(&self) -> usize {
        self.insts.len()
    }

    /// SIGUSR1: one line per instance and one per interface, each with its drop counters
    /// (the interface's: frames no instance could be told, and the kernel's own counts).
    pub fn dump(&mut self) {
        for inst in &self.insts {
            let c = inst.fsm.counters();
            info!(target: &inst.cfg.name,
                "{} prio {} on {} vrid {} vips {} master_adver_int {} ms rx {} tx {} discarded {} transitions {} dropped:{}",
                inst.fsm.state(), inst.fsm.priority(), inst.cfg.interface, inst.cfg.vrid,
                inst.cfg.vips.len(), inst.fsm.master_adver_interval().as_millis(),
                c.adverts_rx, c.adverts_tx, c.adverts_discarded, c.transitions,
                drop_list(&inst.drops).as_str());
        }
        for ifc in &mut self.ifaces {
            if let Some(sock) = &ifc.sock {
                add_kernel_stats(&mut ifc.kernel, sock);
            }
            info!(target: &ifc.name,
                "kernel_delivered {} kernel_overflow {} dropped:{}",
                ifc.kernel.delivered, ifc.kernel.overflow, drop_list(&ifc.drops).as_str());
        }
    }
}

/// Link facts of a received frame, in the receive policy's terms.
fn frame_meta(f: &RecvFrame) -> FrameMeta {
    FrameMeta {
        delivery: match f.pkttype {
            PktType::Host => Delivery::ToUs,
            PktType::Broadcast => Delivery::Broadcast,
            PktType::Multicast => Delivery::Multicast,
            // Our own frames never get here (filter + PacketSocket::recv); anything else
            // was not addressed to us.
            PktType::OtherHost | PktType::Outgoing | PktType::Other(_) => Delivery::OtherHost,
        },
        vlan_tagged: f.vlan_tagged,
    }
}

/// Add what the kernel counted on `sock` since the last read.
fn add_kernel_stats(total: &mut KernelStats, sock: &PacketSocket) {
    if let Ok(k) = sock.take_kernel_stats() {
        total.delivered = total.delivered.saturating_add(k.delivered);
        total.overflow = total.overflow.saturating_add(k.overflow);
    }
}

/// ` reason=n ...` for the non-zero counters, or ` none`.
fn drop_list(d: &DropCounters) -> heapless::String<512> {
    let mut line = heapless::String::<512>::new();
    for (reason, n) in d.iter().filter(|(_, n)| *n > 0) {
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!(" {}={}", reason.as_str(), n));
    }
    if line.is_empty() {
        let _ = line.push_str(" none");
    }
    line
}

/// One warning line for a dropped advert (rate-limited by the caller).
fn warn_drop(owner: &str, reason: DropReason, src: Option<IpAddr>, suppressed: u32) {
    match src {
        Some(src) => warn!(target: owner,
            "advert from {src} dropped: {} ({suppressed} more suppressed)", reason.as_str()),
        None => warn!(target: owner,
            "frame dropped: {} ({suppressed} more suppressed)", reason.as_str()),
    }
}

/// The rate limiter needs a time; the exact instant of a log line does not matter, so the
/// receive path uses the loop's clock reading rather than passing `now` through the inbox.
fn clock_hint() -> Instant {
    crate::sys::clock::now()
}

// --- Operator control (daemon/control.rs): read-only views for status. ---

/// One instance as `minivrrp status` shows it.
pub struct InstanceView<'a> {
    pub cfg: &'a model::Instance,
    pub fsm: &'a Instance,
    /// The VIPs are on the interface now (added by us).
    pub vips_installed: bool,
    /// Adverts for this instance dropped by the receive policy, by reason.
    pub drops: &'a DropCounters,
}

impl Vrrp {
    pub fn instance_view(&self, i: usize) -> Option<InstanceView<'_>> {
        self.insts.get(i).map(|s| InstanceView {
            cfg: &s.cfg,
            fsm: &s.fsm,
            vips_installed: s.vips_installed,
            drops: &s.drops,
        })
    }

    /// Frames that reached no instance (malformed, unknown VRID, our own...), by reason,
    /// summed over interfaces.
    pub fn iface_drops(&self) -> DropCounters {
        let mut drops = DropCounters::new();
        for ifc in &self.ifaces {
            drops.add(&ifc.drops);
        }
        drops
    }
}
