//! The rtnetlink codec (linux/rtnetlink.h, if_link.h, if_addr.h, fib_rules.h): requests for
//! addresses, links, routes, rules and macvlans built into caller buffers, the kernel's link
//! and address messages decoded in place, and [`LinkTracker`], which turns the kernel's
//! stateless link messages into transitions. Pure: no syscalls; the socket is `sys::rtnl`.
//!
//! Every length read from the kernel is checked before use: a malformed message ends the
//! parse of its datagram, it never panics.

use super::consts::{
    NLMSG_OVERRUN, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use super::{Attrs, Messages, MsgWriter, NlMsg};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use nix::errno::Errno;

// linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h (netlink.h ones: crate::netlink).
// Hand-defined: they are kernel ABI, and this keeps the code independent of which libc
// target exposes them.
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub(crate) const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub(crate) const RTM_GETADDR: u16 = 22;
pub(crate) const IFINFOMSG_LEN: usize = 16;
pub(crate) const IFADDRMSG_LEN: usize = 8;
pub(crate) const IFLA_ADDRESS: u16 = 1;
pub(crate) const IFLA_IFNAME: u16 = 3;
pub(crate) const IFLA_MTU: u16 = 4;
pub(crate) const IFLA_LINK: u16 = 5;
pub(crate) const IFLA_OPERSTATE: u16 = 16;
pub(crate) const IFLA_LINKINFO: u16 = 18;
pub(crate) const IFLA_INFO_KIND: u16 = 1;
pub(crate) const IFLA_INFO_DATA: u16 = 2;
pub(crate) const IFLA_MACVLAN_MODE: u16 = 1;
pub(crate) const IFA_ADDRESS: u16 = 1;
pub(crate) const IFA_LOCAL: u16 = 2;
pub(crate) const IFA_LABEL: u16 = 3;
pub(crate) const IFA_CACHEINFO: u16 = 6;
pub(crate) const IFA_FLAGS: u16 = 8;
pub const IFA_F_SECONDARY: u32 = 0x01;
pub const IFA_F_NODAD: u32 = 0x02;
pub const IFA_F_DADFAILED: u32 = 0x08;
pub const IFA_F_TENTATIVE: u32 = 0x40;
pub const IFF_UP: u32 = 0x1;
pub const IFF_RUNNING: u32 = 0x40;

/// Address requests per netlink batch ([`Rtnl::add_addresses`]): 64 KB of requests at
/// most, far below the socket's send buffer.
pub const ADDR_BATCH: usize = 128;

/// One address to add, for [`Rtnl::add_addresses`].
#[derive(Clone, Copy, Debug)]
pub struct AddrReq<'a> {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub attrs: AddrAttrs<'a>,
}

/// Write one address request (`RTM_NEWADDR` / `RTM_DELADDR` with `flags` besides
/// `NLM_F_REQUEST`) at the start of `buf`; returns its length.
pub(crate) fn write_addr_msg(
    buf: &mut [u8],
    ty: u16,
    flags: u16,
    seq: u32,
    req: &AddrReq<'_>,
) -> Result<usize, Errno> {
    let AddrAttrs {
        scope,
        label,
        lifetime_s,
    } = req.attrs;
    let mut m = MsgWriter::new(buf, ty, NLM_F_REQUEST | flags, seq);
    let (family, ifa_flags) = match req.addr {
        IpAddr::V4(_) => (libc::AF_INET as u8, 0u32),
        // A VIP moves between routers: duplicate address detection would keep it
        // tentative (unusable) for a second or more after each takeover.
        IpAddr::V6(_) => (libc::AF_INET6 as u8, IFA_F_NODAD),
    };
    let mut hdr = [0u8; IFADDRMSG_LEN];
    hdr[0] = family;
    hdr[1] = req.prefix;
    hdr[2] = ifa_flags as u8;
    hdr[3] = scope; // 0 = RT_SCOPE_UNIVERSE
    hdr[4..8].copy_from_slice(&req.ifindex.to_ne_bytes());
    m.header(&hdr);
    match req.addr {
        IpAddr::V4(a) => {
            // No IFA_BROADCAST: a VIP must not add a broadcast address.
            m.attr(IFA_LOCAL, &a.octets());
            m.attr(IFA_ADDRESS, &a.octets());
            if let Some(l) = label {
                // A C string: the kernel copies it into a NUL-terminated IFNAMSIZ buffer.
                let mut b = [0u8; 16];
                let n = l.len().min(15);
                b[..n].copy_from_slice(&l.as_bytes()[..n]);
                m.attr(IFA_LABEL, &b[..n + 1]);
            }
        }
        IpAddr::V6(a) => {
            m.attr(IFA_ADDRESS, &a.octets());
            m.attr(IFA_FLAGS, &ifa_flags.to_ne_bytes());
        }
    }
    if let Some(secs) = lifetime_s {
        m.attr(IFA_CACHEINFO, &cacheinfo(secs));
    }
    finish(m)
}

/// Optional attributes of an address being added (VIPs).
#[derive(Clone, Copy, Debug, Default)]
pub struct AddrAttrs<'a> {
    /// rtnetlink `RT_SCOPE_*` (0 = global).
    pub scope: u8,
    /// IPv4 address label (`ip addr add ... label`).
    pub label: Option<&'a str>,
    /// Valid and preferred lifetime in seconds; `None` = permanent.
    pub lifetime_s: Option<u32>,
}
pub const IFF_LOWER_UP: u32 = 0x10000;
pub(crate) const RTM_NEWROUTE: u16 = 24;
pub(crate) const RTM_DELROUTE: u16 = 25;
pub(crate) const RTMSG_LEN: usize = 12;
pub(crate) const RTA_DST: u16 = 1;
pub(crate) const RTA_OIF: u16 = 4;
pub(crate) const RTA_GATEWAY: u16 = 5;
pub(crate) const RTA_PRIORITY: u16 = 6;
pub(crate) const RTA_TABLE: u16 = 15;
/// `proto static` in `ip route`: a route an administrator (here: the config) asked for.
pub(crate) const RTPROT_STATIC: u8 = 4;
pub(crate) const RT_SCOPE_UNIVERSE: u8 = 0;
pub(crate) const RT_SCOPE_LINK: u8 = 253;
/// On delete: match a route of any scope.
pub(crate) const RT_SCOPE_NOWHERE: u8 = 255;
pub(crate) const RTN_UNICAST: u8 = 1;

/// A route as `ip route add DEST/PREFIX [via GW] [dev IF] [metric N] [table T]` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteAttrs {
    pub dest: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    /// Output interface; `None` lets the kernel find it from the gateway.
    pub oif: Option<u32>,
    /// `metric` (RTA_PRIORITY); 0 when not given, as in `ip route`.
    pub metric: u32,
    /// Routing table id (254 = main).
    pub table: u32,
}

// linux/fib_rules.h: policy routing rules (`ip rule`).
pub(crate) const RTM_NEWRULE: u16 = 32;
pub(crate) const RTM_DELRULE: u16 = 33;
/// `struct fib_rule_hdr`: family, dst_len, src_len, tos, table, res1, res2, action, flags (u32).
pub(crate) const FIB_RULE_HDR_LEN: usize = 12;
pub(crate) const FRA_DST: u16 = 1;
pub(crate) const FRA_SRC: u16 = 2;
pub(crate) const FRA_IIFNAME: u16 = 3;
pub(crate) const FRA_PRIORITY: u16 = 6;
pub(crate) const FRA_FWMARK: u16 = 10;
pub(crate) const FRA_TABLE: u16 = 15;
pub(crate) const FRA_FWMASK: u16 = 16;
pub(crate) const FRA_OIFNAME: u16 = 17;
pub(crate) const FR_ACT_TO_TBL: u8 = 1;
pub(crate) const FIB_RULE_INVERT: u32 = 0x2;

/// A policy rule as `ip rule add [not] [from P] [to P] [iif IF] [oif IF] [fwmark M[/K]]
/// priority N table T` gives it. Interfaces go by name: the kernel matches names, so a rule
/// may name an interface that does not exist yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleAttrs<'a> {
    pub ipv6: bool,
    pub invert: bool,
    pub src: Option<(IpAddr, u8)>,
    pub dst: Option<(IpAddr, u8)>,
    pub iif: Option<&'a str>,
    pub oif: Option<&'a str>,
    pub fwmark: Option<u32>,
    pub fwmask: Option<u32>,
    pub priority: u32,
    /// Routing table id (254 = main).
    pub table: u32,
}

/// `RTM_NEWRULE` / `RTM_DELRULE` for `r` into `buf`, as iproute2 builds it: the table in the
/// header when it fits in a byte and always in FRA_TABLE, the priority always given (a delete
/// then matches only our rule, never another one with the same selectors).
pub(crate) fn rule_msg(
    buf: &mut [u8],
    ty: u16,
    flags: u16,
    seq: u32,
    r: &RuleAttrs<'_>,
) -> Result<usize, Errno> {
    let mut m = MsgWriter::new(buf, ty, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
    let mut hdr = [0u8; FIB_RULE_HDR_LEN];
    hdr[0] = if r.ipv6 {
        libc::AF_INET6 as u8
    } else {
        libc::AF_INET as u8
    };
    hdr[1] = r.dst.map_or(0, |(_, p)| p);
    hdr[2] = r.src.map_or(0, |(_, p)| p);
    hdr[4] = u8::try_from(r.table).unwrap_or(0);
    hdr[7] = FR_ACT_TO_TBL;
    let rule_flags = if r.invert { FIB_RULE_INVERT } else { 0 };
    hdr[8..12].copy_from_slice(&rule_flags.to_ne_bytes());
    m.header(&hdr);
    for (kind, sel) in [(FRA_DST, r.dst), (FRA_SRC, r.src)] {
        match sel {
            Some((IpAddr::V4(a), _)) => m.attr(kind, &a.octets()),
            Some((IpAddr::V6(a), _)) => m.attr(kind, &a.octets()),
            None => {}
        }
    }
    if let Some(i) = r.iif {
        m.attr_str(FRA_IIFNAME, i);
    }
    if let Some(o) = r.oif {
        m.attr_str(FRA_OIFNAME, o);
    }
    m.attr_u32(FRA_PRIORITY, r.priority);
    if let Some(v) = r.fwmark {
        m.attr_u32(FRA_FWMARK, v);
    }
    if let Some(v) = r.fwmask {
        m.attr_u32(FRA_FWMASK, v);
    }
    m.attr_u32(FRA_TABLE, r.table);
    finish(m)
}
pub(crate) const RTMGRP_LINK: u32 = 0x1;
pub(crate) const RTMGRP_IPV4_IFADDR: u32 = 0x10;
pub(crate) const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// An interface name (IFNAMSIZ - 1 bytes at most).
pub type IfName = heapless::String<16>;

pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// The messages of a datagram, up to the first malformed length.
pub(crate) fn messages(buf: &[u8]) -> impl Iterator<Item = NlMsg<'_>> {
    Messages::new(buf).map_while(Result::ok)
}

/// Route attributes `(type without flag bits, payload)`, up to the first malformed one.
pub(crate) fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    Attrs::new(buf)
        .map_while(Result::ok)
        .map(|a| (a.kind, a.value))
}

/// Request buffer size: the largest request (a macvlan with its nested link info) is well
/// under 128 bytes.
pub(crate) const REQ_BUF: usize = 512;

/// Finishes a request; a full buffer is a programming error reported as EMSGSIZE.
pub(crate) fn finish(w: MsgWriter<'_>) -> Result<usize, Errno> {
    w.finish().map_err(|_| Errno::EMSGSIZE)
}

/// An ifinfomsg (family unspecified, type 0) for `ifindex` with `flags`/`change` masks.
/// `struct ifa_cacheinfo` (linux/if_addr.h): preferred and valid lifetime in seconds, then
/// two timestamps the kernel ignores on input. Preferred = valid: an IPv6 address past its
/// preferred lifetime is deprecated (no longer chosen as a source), which a VIP must not be.
pub(crate) fn cacheinfo(secs: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..4].copy_from_slice(&secs.to_ne_bytes());
    b[4..8].copy_from_slice(&secs.to_ne_bytes());
    b
}

pub(crate) fn ifinfomsg(ifindex: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut hdr = [0u8; IFINFOMSG_LEN];
    hdr[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    hdr[8..12].copy_from_slice(&flags.to_ne_bytes());
    hdr[12..16].copy_from_slice(&change.to_ne_bytes());
    hdr
}

/// Facts about one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub name: IfName,
    pub mac: Option<[u8; 6]>,
    /// IFF_* flags.
    pub flags: u32,
    pub mtu: u32,
    pub operstate: u8,
}

impl LinkInfo {
    /// Administratively up and with carrier: the state VRRP tracks (RFC 5798 6.4 "interface
    /// down" events come from here).
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0 && self.flags & IFF_RUNNING != 0
    }
}

/// How an interface's advert source is chosen among its addresses: the primary IPv4 address
/// (RFC 5798 5.1.1.1) and a usable IPv6 link-local address (5.1.2.1: the link-local address of
/// the interface the advert is sent from, never a virtual address). `skip` names addresses
/// that are never a source: the router's VIPs. The kernel lists the newest IPv6 address
/// first, so without it a master's link-local VIP became its source at the next address event,
/// and a peer advertising from its own copy of that VIP (FRR sends from its macvlan) was then
/// dropped as ourselves. `keep4`/`keep6` are the sources in use: they stay while the interface
/// still has them, so unrelated address events never move the source.
#[derive(Clone, Copy)]
pub struct SourceRule<'a> {
    pub keep4: Option<Ipv4Addr>,
    pub keep6: Option<Ipv6Addr>,
    pub skip: &'a dyn Fn(IpAddr) -> bool,
}

impl SourceRule<'_> {
    /// No source in use, nothing skipped.
    pub const ANY: SourceRule<'static> = SourceRule {
        keep4: None,
        keep6: None,
        skip: &|_| false,
    };
}

/// [`SourceRule`] applied to one address dump, address by address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourcePick {
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
    kept4: bool,
    kept6: bool,
}

impl SourcePick {
    /// One address of the dump, in the kernel's order.
    pub fn offer(&mut self, rule: &SourceRule<'_>, a: &AddrInfo) {
        if (rule.skip)(a.addr) {
            return;
        }
        match a.addr {
            IpAddr::V4(a4) if a.flags & IFA_F_SECONDARY == 0 => {
                self.kept4 |= rule.keep4 == Some(a4);
                self.v4 = self.v4.or(Some(a4));
            }
            IpAddr::V6(a6) => {
                let ll = a6.segments()[0] & 0xffc0 == 0xfe80;
                if ll && a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) == 0 {
                    self.kept6 |= rule.keep6 == Some(a6);
                    // The last one listed: the oldest, normally the kernel's own from link-up.
                    self.v6 = Some(a6);
                }
            }
            _ => {}
        }
    }

    /// The sources: the ones in use when still present, else the dump's choice.
    pub fn result(self, rule: &SourceRule<'_>) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
        (
            if self.kept4 { rule.keep4 } else { self.v4 },
            if self.kept6 { rule.keep6 } else { self.v6 },
        )
    }
}

/// One address of an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrInfo {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    /// IFA_F_* flags (the 32-bit IFA_FLAGS attribute when present).
    pub flags: u32,
    pub scope: u8,
}

impl AddrInfo {
    pub fn is_tentative(&self) -> bool {
        self.flags & IFA_F_TENTATIVE != 0
    }
}

/// Decode an RTM_NEWLINK/RTM_DELLINK payload. `None` if malformed or nameless.
pub fn decode_link(payload: &[u8]) -> Option<LinkInfo> {
    let ifindex = u32_at(payload, 4)?;
    let flags = u32_at(payload, 8)?;
    let mut info = LinkInfo {
        ifindex,
        name: IfName::new(),
        mac: None,
        flags,
        mtu: 0,
        operstate: 0,
    };
    let mut named = false;
    for (ty, data) in attrs(payload.get(IFINFOMSG_LEN..)?) {
        match ty {
            IFLA_IFNAME => {
                let raw = data.split(|b| *b == 0).next().unwrap_or(&[]);
                let s = core::str::from_utf8(raw).ok()?;
                info.name = IfName::try_from(s).ok()?;
                named = true;
            }
            IFLA_ADDRESS if data.len() == 6 => {
                let mut m = [0u8; 6];
                m.copy_from_slice(data);
                info.mac = Some(m);
            }
            IFLA_MTU => info.mtu = u32_at(data, 0).unwrap_or(0),
            IFLA_OPERSTATE => info.operstate = data.first().copied().unwrap_or(0),
            _ => {}
        }
    }
    named.then_some(info)
}

/// Decode an RTM_NEWADDR/RTM_DELADDR payload. `None` if malformed.
pub fn decode_addr(payload: &[u8]) -> Option<AddrInfo> {
    let family = *payload.first()? as i32;
    let prefix = *payload.get(1)?;
    let mut flags = *payload.get(2)? as u32;
    let scope = *payload.get(3)?;
    let ifindex = u32_at(payload, 4)?;
    let mut local = None;
    let mut address = None;
    for (ty, data) in attrs(payload.get(IFADDRMSG_LEN..)?) {
        let ip = match (family, data.len()) {
            (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            ))),
            (libc::AF_INET6, 16) => {
                let mut o = [0u8; 16];
                o.copy_from_slice(data);
                Some(IpAddr::V6(Ipv6Addr::from(o)))
            }
            _ => None,
        };
        match ty {
            IFA_LOCAL => local = ip,
            IFA_ADDRESS => address = ip,
            IFA_FLAGS => flags = u32_at(data, 0).unwrap_or(flags),
            _ => {}
        }
    }
    // IPv4: IFA_LOCAL is our address (IFA_ADDRESS is the peer on point-to-point links).
    // IPv6 puts ours in IFA_ADDRESS.
    let addr = local.or(address)?;
    Some(AddrInfo {
        ifindex,
        addr,
        prefix,
        flags,
        scope,
    })
}

/// macvlan modes (linux/if_link.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacvlanMode {
    /// No traffic between macvlans of one parent: the usual choice for a VMAC.
    Private = 1,
    Vepa = 2,
    /// macvlans of one parent talk to each other directly.
    Bridge = 4,
}

/// `RTM_GETLINK` dump of every link.
pub fn write_link_dump(buf: &mut [u8], seq: u32) -> Result<usize, Errno> {
    let mut m = MsgWriter::new(buf, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq);
    m.header(&ifinfomsg(0, 0, 0));
    finish(m)
}

/// `RTM_GETLINK` of one link, by index or (index 0) by name.
pub fn write_get_link(
    buf: &mut [u8],
    seq: u32,
    ifindex: u32,
    name: Option<&str>,
) -> Result<usize, Errno> {
    let mut m = MsgWriter::new(buf, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
    m.header(&ifinfomsg(ifindex, 0, 0));
    if let Some(n) = name {
        if n.is_empty() || n.len() > 15 {
            return Err(Errno::EINVAL);
        }
        m.attr_str(IFLA_IFNAME, n);
    }
    finish(m)
}

/// `RTM_GETADDR` dump, of interface `ifindex` only when the kernel checks strictly
/// (0: every interface).
pub fn write_addr_dump(buf: &mut [u8], seq: u32, ifindex: u32) -> Result<usize, Errno> {
    let mut m = MsgWriter::new(buf, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq);
    let mut hdr = [0u8; IFADDRMSG_LEN];
    hdr[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    m.header(&hdr);
    finish(m)
}

/// `RTM_NEWLINK` creating macvlan `name` on `parent` with `mac`.
pub fn write_new_macvlan(
    buf: &mut [u8],
    seq: u32,
    name: &str,
    parent: u32,
    mac: [u8; 6],
    mode: MacvlanMode,
) -> Result<usize, Errno> {
    if name.is_empty() || name.len() > 15 || name.contains('/') {
        return Err(Errno::EINVAL);
    }
    let mut m = MsgWriter::new(
        buf,
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        seq,
    );
    m.header(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    m.attr_u32(IFLA_LINK, parent);
    m.attr(IFLA_ADDRESS, &mac);
    m.nest_start(IFLA_LINKINFO);
    m.attr(IFLA_INFO_KIND, b"macvlan");
    m.nest_start(IFLA_INFO_DATA);
    m.attr_u32(IFLA_MACVLAN_MODE, mode as u32);
    m.nest_end();
    m.nest_end();
    finish(m)
}

/// `RTM_NEWLINK` setting IFF_UP on or off (ifi_change = IFF_UP: only that flag changes).
pub fn write_set_link_up(buf: &mut [u8], seq: u32, ifindex: u32, up: bool) -> Result<usize, Errno> {
    let mut m = MsgWriter::new(buf, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
    m.header(&ifinfomsg(ifindex, if up { IFF_UP } else { 0 }, IFF_UP));
    finish(m)
}

/// `RTM_DELLINK` of `ifindex`.
pub fn write_del_link(buf: &mut [u8], seq: u32, ifindex: u32) -> Result<usize, Errno> {
    let mut m = MsgWriter::new(buf, RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
    m.header(&ifinfomsg(ifindex, 0, 0));
    finish(m)
}

/// `RTM_NEWROUTE` / `RTM_DELROUTE` for `r` into `buf`; returns its length. A delete matches any scope and protocol but
/// the same gateway, interface, metric and table, so it never takes a route that only
/// shares the destination with ours.
pub fn write_route_msg(
    buf: &mut [u8],
    ty: u16,
    flags: u16,
    seq: u32,
    r: &RouteAttrs,
) -> Result<usize, Errno> {
    let mut m = MsgWriter::new(buf, ty, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
    let family = match r.dest {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    };
    let (protocol, scope) = match (ty, r.gateway) {
        (RTM_DELROUTE, _) => (0, RT_SCOPE_NOWHERE),
        (_, Some(_)) => (RTPROT_STATIC, RT_SCOPE_UNIVERSE),
        // No gateway: the destination is on the link (`ip route add X dev IF`).
        (_, None) => (RTPROT_STATIC, RT_SCOPE_LINK),
    };
    // struct rtmsg (linux/rtnetlink.h); tables above 255 only fit in RTA_TABLE.
    let mut hdr = [0u8; RTMSG_LEN];
    hdr[0] = family;
    hdr[1] = r.prefix;
    hdr[4] = u8::try_from(r.table).unwrap_or(0);
    hdr[5] = protocol;
    hdr[6] = scope;
    hdr[7] = RTN_UNICAST;
    m.header(&hdr);
    m.attr(RTA_TABLE, &r.table.to_ne_bytes());
    if r.prefix > 0 {
        match r.dest {
            IpAddr::V4(a) => m.attr(RTA_DST, &a.octets()),
            IpAddr::V6(a) => m.attr(RTA_DST, &a.octets()),
        }
    }
    match r.gateway {
        Some(IpAddr::V4(g)) => m.attr(RTA_GATEWAY, &g.octets()),
        Some(IpAddr::V6(g)) => m.attr(RTA_GATEWAY, &g.octets()),
        None => {}
    }
    if let Some(oif) = r.oif {
        m.attr(RTA_OIF, &oif.to_ne_bytes());
    }
    if r.metric != 0 {
        m.attr(RTA_PRIORITY, &r.metric.to_ne_bytes());
    }
    finish(m)
}

/// A link or address change, decoded from the event socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RtnlEvent {
    /// An interface we did not know (new, or renamed, or seen for the first time).
    /// An interface that disappears and comes back gets a new ifindex and shows up here again.
    LinkNew {
        name: IfName,
        ifindex: u32,
        up: bool,
    },
    /// A known interface became up (IFF_UP and IFF_RUNNING).
    LinkUp {
        name: IfName,
        ifindex: u32,
    },
    /// A known interface lost IFF_UP or carrier.
    LinkDown {
        name: IfName,
        ifindex: u32,
    },
    /// An interface was deleted (or renamed away from `name`).
    LinkGone {
        name: IfName,
        ifindex: u32,
    },
    AddrAdded(AddrInfo),
    AddrRemoved(AddrInfo),
    /// The kernel dropped events (socket buffer overflow, ENOBUFS): the state is unknown,
    /// the daemon must re-read links and addresses.
    Overrun,
}

/// Links tracked at once to tell "new" from "changed".
pub const MAX_LINKS: usize = 64;

/// Turns the kernel's stateless "here is the link now" messages into transitions. Pure: fed
/// with decoded messages, testable without a socket.
#[derive(Default)]
pub struct LinkTracker {
    links: heapless::Vec<(u32, IfName, bool), MAX_LINKS>,
}

impl LinkTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a link from an initial dump, without producing an event.
    pub fn seed(&mut self, l: &LinkInfo) {
        self.update(l, |_| {});
    }

    /// Feed an RTM_NEWLINK; calls `f` with 0, 1 or 2 events.
    pub fn update(&mut self, l: &LinkInfo, mut f: impl FnMut(RtnlEvent)) {
        let up = l.is_up();
        match self.links.iter().position(|e| e.0 == l.ifindex) {
            Some(i) => {
                let (_, name, was_up) = &mut self.links[i];
                if *name != l.name {
                    f(RtnlEvent::LinkGone {
                        name: name.clone(),
                        ifindex: l.ifindex,
                    });
                    *name = l.name.clone();
                    *was_up = up;
                    f(RtnlEvent::LinkNew {
                        name: l.name.clone(),
                        ifindex: l.ifindex,
                        up,
                    });
                } else if *was_up != up {
                    *was_up = up;
                    let (name, ifindex) = (l.name.clone(), l.ifindex);
                    f(if up {
                        RtnlEvent::LinkUp { name, ifindex }
                    } else {
                        RtnlEvent::LinkDown { name, ifindex }
                    });
                }
            }
            None => {
                // Full table: still report, just not remembered (repeated LinkNew is safe).
                let _ = self.links.push((l.ifindex, l.name.clone(), up));
                f(RtnlEvent::LinkNew {
                    name: l.name.clone(),
                    ifindex: l.ifindex,
                    up,
                });
            }
        }
    }

    /// Feed an RTM_DELLINK.
    pub fn remove(&mut self, l: &LinkInfo, mut f: impl FnMut(RtnlEvent)) {
        if let Some(i) = self.links.iter().position(|e| e.0 == l.ifindex) {
            self.links.swap_remove(i);
        }
        f(RtnlEvent::LinkGone {
            name: l.name.clone(),
            ifindex: l.ifindex,
        });
    }

    /// Decode one datagram from the event socket and feed it through.
    pub fn feed(&mut self, datagram: &[u8], mut f: impl FnMut(RtnlEvent)) {
        for m in messages(datagram) {
            match m.nl_type {
                RTM_NEWLINK => {
                    if let Some(l) = decode_link(m.payload) {
                        self.update(&l, &mut f);
                    }
                }
                RTM_DELLINK => {
                    if let Some(l) = decode_link(m.payload) {
                        self.remove(&l, &mut f);
                    }
                }
                RTM_NEWADDR => {
                    if let Some(a) = decode_addr(m.payload) {
                        f(RtnlEvent::AddrAdded(a));
                    }
                }
                RTM_DELADDR => {
                    if let Some(a) = decode_addr(m.payload) {
                        f(RtnlEvent::AddrRemoved(a));
                    }
                }
                NLMSG_OVERRUN => f(RtnlEvent::Overrun),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::consts::NLMSG_HDRLEN;

    fn addr(a: &str, flags: u32) -> AddrInfo {
        AddrInfo {
            ifindex: 2,
            addr: a.parse().unwrap(),
            prefix: 64,
            flags,
            scope: 0,
        }
    }

    /// One dump, newest IPv6 address first as the kernel lists them.
    fn pick(dump: &[AddrInfo], rule: &SourceRule<'_>) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
        let mut p = SourcePick::default();
        for a in dump {
            p.offer(rule, a);
        }
        p.result(rule)
    }

    /// RFC 5798 5.1.2.1: the source is the interface's own link-local, never a link-local VIP,
    /// even when the VIP is listed first (it is the newer address), and it stays put when a
    /// later address event lists another link-local.
    #[test]
    fn source_is_never_a_vip_and_stays_while_present() {
        let vip: IpAddr = "fe80::254".parse().unwrap();
        let skip = move |a: IpAddr| a == vip;
        let dump = [
            addr("fd77::99", 0),
            addr("fe80::254", 0),
            addr("fe80::1:2ff:fe03:405", 0),
            addr("10.0.0.1", 0),
            addr("10.0.0.254", IFA_F_SECONDARY),
        ];
        let rule = SourceRule {
            keep4: None,
            keep6: None,
            skip: &skip,
        };
        let ll: Ipv6Addr = "fe80::1:2ff:fe03:405".parse().unwrap();
        let v4: Ipv4Addr = "10.0.0.1".parse().unwrap();
        assert_eq!(pick(&dump, &rule), (Some(v4), Some(ll)));
        // Without the rule the VIP would have been chosen only if it were the sole one; with
        // ANY the oldest link-local (listed last) wins over a newer one.
        let newer = [addr("fe80::99", 0), addr("fe80::1:2ff:fe03:405", 0)];
        assert_eq!(pick(&newer, &SourceRule::ANY).1, Some(ll));
        // The source in use stays while listed, wherever the dump puts it.
        let keep: Ipv6Addr = "fe80::99".parse().unwrap();
        let sticky = SourceRule {
            keep4: Some(v4),
            keep6: Some(keep),
            skip: &skip,
        };
        assert_eq!(pick(&newer, &sticky).1, Some(keep));
        // Gone: the dump's choice.
        assert_eq!(pick(&dump, &sticky), (Some(v4), Some(ll)));
        // A VIP is never kept, even if it was the source before.
        let was_vip = SourceRule {
            keep4: None,
            keep6: Some("fe80::254".parse().unwrap()),
            skip: &skip,
        };
        assert_eq!(pick(&dump, &was_vip).1, Some(ll));
        // Only the VIP, or only tentative link-locals: no source.
        assert_eq!(pick(&[addr("fe80::254", 0)], &rule).1, None);
        assert_eq!(pick(&[addr("fe80::7", IFA_F_TENTATIVE)], &rule).1, None);
    }

    /// `not from 10.1.0.0/16 iif lan fwmark 0x1/0xff priority 100 table 300` as
    /// linux/fib_rules.h lays it out: the header, then one FRA_* attribute per word. The
    /// kernel's reading of these bytes is checked by `tests/lab/rules_lab.rs` (`ip rule show`).
    #[test]
    fn rule_message_is_fib_rule_hdr_and_fra_attributes() {
        let r = RuleAttrs {
            ipv6: false,
            invert: true,
            src: Some(("10.1.0.0".parse().unwrap(), 16)),
            dst: None,
            iif: Some("lan"),
            oif: None,
            fwmark: Some(1),
            fwmask: Some(0xff),
            priority: 100,
            table: 300,
        };
        let mut buf = [0u8; REQ_BUF];
        let n = rule_msg(&mut buf, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, 7, &r).unwrap();
        let mut want = Vec::new();
        // fib_rule_hdr: AF_INET, dst_len 0, src_len 16, tos 0, table 0 (300 > 255), res,
        // action FR_ACT_TO_TBL, flags FIB_RULE_INVERT.
        want.extend_from_slice(&[2, 0, 16, 0, 0, 0, 0, 1]);
        want.extend_from_slice(&2u32.to_ne_bytes());
        want.extend(attr(FRA_SRC, &[10, 1, 0, 0]));
        want.extend(attr(FRA_IIFNAME, b"lan\0"));
        want.extend(attr(FRA_PRIORITY, &100u32.to_ne_bytes()));
        want.extend(attr(FRA_FWMARK, &1u32.to_ne_bytes()));
        want.extend(attr(FRA_FWMASK, &0xffu32.to_ne_bytes()));
        want.extend(attr(FRA_TABLE, &300u32.to_ne_bytes()));
        assert_eq!(n, NLMSG_HDRLEN + want.len());
        assert_eq!(&buf[NLMSG_HDRLEN..n], &want[..]);
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        let flags = u16::from_ne_bytes([buf[6], buf[7]]);
        assert_eq!(ty, RTM_NEWRULE);
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        // IPv6, table in the header too.
        let r6 = RuleAttrs {
            ipv6: true,
            invert: false,
            src: None,
            dst: Some(("fd00:9::".parse().unwrap(), 64)),
            iif: None,
            oif: Some("wan"),
            fwmark: None,
            fwmask: None,
            priority: 5,
            table: 254,
        };
        let n = rule_msg(&mut buf, RTM_DELRULE, 0, 8, &r6).unwrap();
        assert_eq!(
            &buf[NLMSG_HDRLEN..NLMSG_HDRLEN + 8],
            &[10, 64, 0, 0, 254, 0, 0, 1]
        );
        let mut dst = [0u8; 16];
        dst[0..4].copy_from_slice(&[0xfd, 0, 0, 9]);
        let mut tail = attr(FRA_DST, &dst);
        tail.extend(attr(FRA_OIFNAME, b"wan\0"));
        tail.extend(attr(FRA_PRIORITY, &5u32.to_ne_bytes()));
        tail.extend(attr(FRA_TABLE, &254u32.to_ne_bytes()));
        assert_eq!(&buf[NLMSG_HDRLEN + FIB_RULE_HDR_LEN..n], &tail[..]);
    }

    fn nlmsg(ty: u16, payload: &[u8]) -> Vec<u8> {
        let len = (NLMSG_HDRLEN + payload.len()) as u32;
        let mut v = len.to_ne_bytes().to_vec();
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&0u16.to_ne_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn attr(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut v = ((4 + data.len()) as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(data);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn link_payload(ifindex: u32, flags: u32, name: &str) -> Vec<u8> {
        let mut p = vec![0u8; 4];
        p.extend_from_slice(&ifindex.to_ne_bytes());
        p.extend_from_slice(&flags.to_ne_bytes());
        p.extend_from_slice(&0u32.to_ne_bytes());
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        p.extend(attr(IFLA_IFNAME, &n));
        p.extend(attr(IFLA_ADDRESS, &[0, 0, 0x5e, 0, 1, 0x32]));
        p
    }

    fn events(t: &mut LinkTracker, dgram: &[u8]) -> Vec<RtnlEvent> {
        let mut v = vec![];
        t.feed(dgram, |e| v.push(e));
        v
    }

    fn name(s: &str) -> IfName {
        IfName::try_from(s).unwrap()
    }

    #[test]
    fn link_messages_become_new_down_up_gone_transitions() {
        let mut t = LinkTracker::new();
        let up = IFF_UP | IFF_RUNNING;
        assert_eq!(
            events(&mut t, &nlmsg(RTM_NEWLINK, &link_payload(5, up, "eth1"))),
            vec![RtnlEvent::LinkNew {
                name: name("eth1"),
                ifindex: 5,
                up: true
            }]
        );
        // Same state again (e.g. an MTU change): no event.
        assert!(events(&mut t, &nlmsg(RTM_NEWLINK, &link_payload(5, up, "eth1"))).is_empty());
        assert_eq!(
            events(
                &mut t,
                &nlmsg(RTM_NEWLINK, &link_payload(5, IFF_UP, "eth1"))
            ),
            vec![RtnlEvent::LinkDown {
                name: name("eth1"),
                ifindex: 5
            }]
        );
        assert_eq!(
            events(&mut t, &nlmsg(RTM_NEWLINK, &link_payload(5, up, "eth1"))),
            vec![RtnlEvent::LinkUp {
                name: name("eth1"),
                ifindex: 5
            }]
        );
        assert_eq!(
            events(&mut t, &nlmsg(RTM_DELLINK, &link_payload(5, 0, "eth1"))),
            vec![RtnlEvent::LinkGone {
                name: name("eth1"),
                ifindex: 5
            }]
        );
        // Back with a new ifindex: picked up again as new.
        assert_eq!(
            events(&mut t, &nlmsg(RTM_NEWLINK, &link_payload(9, 0, "eth1"))),
            vec![RtnlEvent::LinkNew {
                name: name("eth1"),
                ifindex: 9,
                up: false
            }]
        );
    }

    #[test]
    fn renamed_link_is_gone_under_old_name_and_new_under_new() {
        let mut t = LinkTracker::new();
        events(&mut t, &nlmsg(RTM_NEWLINK, &link_payload(3, 0, "a")));
        assert_eq!(
            events(&mut t, &nlmsg(RTM_NEWLINK, &link_payload(3, 0, "b"))),
            vec![
                RtnlEvent::LinkGone {
                    name: name("a"),
                    ifindex: 3
                },
                RtnlEvent::LinkNew {
                    name: name("b"),
                    ifindex: 3,
                    up: false
                },
            ]
        );
    }

    #[test]
    fn address_messages_decode_local_for_ipv4_and_flags_attr() {
        let mut p = vec![libc::AF_INET as u8, 24, 0, 0];
        p.extend_from_slice(&7u32.to_ne_bytes());
        p.extend(attr(IFA_ADDRESS, &[10, 9, 9, 9]));
        p.extend(attr(IFA_LOCAL, &[10, 0, 0, 1]));
        let mut t = LinkTracker::new();
        let ev = events(&mut t, &nlmsg(RTM_NEWADDR, &p));
        assert_eq!(
            ev,
            vec![RtnlEvent::AddrAdded(AddrInfo {
                ifindex: 7,
                addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                prefix: 24,
                flags: 0,
                scope: 0,
            })]
        );
        let mut p6 = vec![libc::AF_INET6 as u8, 64, 0, 0];
        p6.extend_from_slice(&7u32.to_ne_bytes());
        p6.extend(attr(
            IFA_ADDRESS,
            &Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).octets(),
        ));
        p6.extend(attr(
            IFA_FLAGS,
            &(IFA_F_NODAD | IFA_F_TENTATIVE).to_ne_bytes(),
        ));
        let a = decode_addr(&p6).unwrap();
        assert!(a.is_tentative());
        assert_eq!(a.flags & IFA_F_NODAD, IFA_F_NODAD);
    }

    #[test]
    fn malformed_kernel_input_never_panics() {
        let good = nlmsg(RTM_NEWLINK, &link_payload(5, 0, "eth1"));
        let mut t = LinkTracker::new();
        // Every truncation and every single-byte corruption of a valid message.
        for cut in 0..good.len() {
            t.feed(&good[..cut], |_| {});
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 3, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                t.feed(&bad, |_| {});
            }
        }
        // Lengths pointing far past the end.
        let mut huge = good.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(events(&mut t, &huge).is_empty());
        assert_eq!(decode_link(&[1, 2, 3]), None);
        assert_eq!(decode_addr(&[2, 24]), None);
        let mut p = vec![libc::AF_INET as u8, 24, 0, 0];
        p.extend_from_slice(&7u32.to_ne_bytes());
        p.extend(attr(IFA_LOCAL, &[10, 0, 0])); // wrong length for IPv4
        assert_eq!(decode_addr(&p), None);
    }

    #[test]
    fn builder_writes_nested_attributes_the_parser_reads_back() {
        let mut buf = [0u8; REQ_BUF];
        let mut m = MsgWriter::new(&mut buf, RTM_NEWLINK, NLM_F_REQUEST, 7);
        m.header(&ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, "vrrp1");
        m.nest_start(IFLA_LINKINFO);
        m.attr(IFLA_INFO_KIND, b"macvlan");
        m.nest_start(IFLA_INFO_DATA);
        m.attr_u32(IFLA_MACVLAN_MODE, 1);
        m.nest_end();
        m.nest_end();
        let len = finish(m).unwrap();
        let msgs: Vec<_> = messages(&buf[..len]).collect();
        assert_eq!(msgs.len(), 1);
        assert_eq!((msgs[0].nl_type, msgs[0].seq), (RTM_NEWLINK, 7));
        let top: Vec<_> = attrs(&msgs[0].payload[IFINFOMSG_LEN..]).collect();
        assert_eq!(top[0], (IFLA_IFNAME, &b"vrrp1\0"[..]));
        assert_eq!(top[1].0, IFLA_LINKINFO);
        let inner: Vec<_> = attrs(top[1].1).collect();
        assert_eq!(inner[0], (IFLA_INFO_KIND, &b"macvlan"[..]));
        let mode: Vec<_> = attrs(inner[1].1).collect();
        assert_eq!(mode[0], (IFLA_MACVLAN_MODE, &1u32.to_ne_bytes()[..]));
    }
}
