//! The IPVS table as values: what a virtual service and a real server (destination) are,
//! independent of the netlink encoding. The config layer maps its model onto these.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Transport protocol of an address/port virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => super::consts::IPPROTO_TCP,
            Protocol::Udp => super::consts::IPPROTO_UDP,
            Protocol::Sctp => super::consts::IPPROTO_SCTP,
        }
    }

    pub fn from_number(n: u16) -> Option<Self> {
        match n {
            super::consts::IPPROTO_TCP => Some(Protocol::Tcp),
            super::consts::IPPROTO_UDP => Some(Protocol::Udp),
            super::consts::IPPROTO_SCTP => Some(Protocol::Sctp),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

pub use crate::base::Family;

/// What identifies a virtual service in the kernel: the kernel looks services up by exactly
/// these fields (`ip_vs_service_find` / `ip_vs_svc_fwm_find`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    Addr {
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        family: Family,
        mark: u32,
    },
}

impl ServiceKey {
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// ipvsadm's notation: `TCP 10.0.0.1:80`, `TCP [2001:db8::1]:443`, `FWM 7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => write!(f, "{} {}", protocol.name(), SockAddr(*addr, *port)),
            ServiceKey::Fwmark {
                family: Family::Ipv4,
                mark,
            } => write!(f, "FWM {mark}"),
            ServiceKey::Fwmark {
                family: Family::Ipv6,
                mark,
            } => write!(f, "FWM {mark} IPv6"),
        }
    }
}

/// `addr:port` with brackets around IPv6 addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockAddr(pub IpAddr, pub u16);

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// Scheduling algorithms shipped with Linux (one `ip_vs_<name>` module each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Sed,
    Nq,
    Mh,
    Fo,
    Ovf,
    /// A scheduler this code has no name for, seen in a kernel dump (a foreign service, or a
    /// newer kernel). Never sent: reconcile replaces it with the configured one.
    Unknown,
}

impl Scheduler {
    pub const ALL: [Scheduler; 13] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Mh,
        Scheduler::Fo,
        Scheduler::Ovf,
    ];

    /// The kernel's name (IPVS_SVC_ATTR_SCHED_NAME and the module suffix).
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Mh => "mh",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Unknown => "?",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.name() == name)
    }
}

/// How packets reach a real server (keepalived `lb_kind`: NAT, DR, TUN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Forwarding {
    /// NAT (masquerading).
    Masq,
    /// Direct routing (MAC rewrite on the same L2 segment).
    DirectRoute,
    /// IP-in-IP tunnel.
    Tunnel,
    /// Local node; only ever seen in dumps (the kernel picks it for local addresses).
    Local,
}

impl Forwarding {
    pub fn code(self) -> u32 {
        use super::consts::*;
        match self {
            Forwarding::Masq => IP_VS_CONN_F_MASQ,
            Forwarding::DirectRoute => IP_VS_CONN_F_DROUTE,
            Forwarding::Tunnel => IP_VS_CONN_F_TUNNEL,
            Forwarding::Local => IP_VS_CONN_F_LOCALNODE,
        }
    }

    pub fn from_code(code: u32) -> Option<Self> {
        use super::consts::*;
        match code & IP_VS_CONN_F_FWD_MASK {
            IP_VS_CONN_F_MASQ => Some(Forwarding::Masq),
            IP_VS_CONN_F_DROUTE => Some(Forwarding::DirectRoute),
            IP_VS_CONN_F_TUNNEL => Some(Forwarding::Tunnel),
            IP_VS_CONN_F_LOCALNODE => Some(Forwarding::Local),
            _ => None,
        }
    }
}

/// Persistence (ipvsadm `-p timeout -M netmask`): clients within the netmask stick to the same
/// real server for `timeout` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Persistence {
    pub timeout: u32,
    /// Prefix length of the client netmask (32/128 = per client address).
    pub prefix: u8,
}

/// A virtual service as configured or as dumped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Service {
    pub key: ServiceKey,
    pub scheduler: Scheduler,
    pub persistence: Option<Persistence>,
}

impl Service {
    pub fn new(key: ServiceKey, scheduler: Scheduler) -> Self {
        Service {
            key,
            scheduler,
            persistence: None,
        }
    }
}

/// A real server (destination) of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dest {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    pub forwarding: Forwarding,
    /// Connection upper/lower thresholds; 0 = none.
    pub u_thresh: u32,
    pub l_thresh: u32,
}

impl Dest {
    pub fn new(addr: IpAddr, port: u16, weight: u32, forwarding: Forwarding) -> Self {
        Dest {
            addr,
            port,
            weight,
            forwarding,
            u_thresh: 0,
            l_thresh: 0,
        }
    }

    /// The kernel identifies a destination inside a service by address and port only.
    pub fn same_server(&self, other: &Dest) -> bool {
        self.addr == other.addr && self.port == other.port
    }

    pub fn sockaddr(&self) -> SockAddr {
        SockAddr(self.addr, self.port)
    }
}

/// Connection counters the kernel reports with each dumped destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestConns {
    pub active: u32,
    pub inactive: u32,
    pub persistent: u32,
}

/// `union nf_inet_addr` as IPVS carries it: always 16 bytes, IPv4 in the first 4.
pub fn addr_to_nf(addr: &IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

/// Reads a `union nf_inet_addr` for the given family. The kernel sends 16 bytes; a 4-byte IPv4
/// value is accepted too (older kernels sized it by family).
pub fn addr_from_nf(family: Family, bytes: &[u8]) -> Option<IpAddr> {
    match family {
        Family::Ipv4 => {
            let b = bytes.get(..4)?;
            Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
        }
        Family::Ipv6 => {
            let b: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
    }
}

/// IPv4 prefix length to the mask IPVS wants (in network order on the wire).
pub fn prefix_to_mask_v4(prefix: u8) -> [u8; 4] {
    let p = prefix.min(32) as u32;
    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    mask.to_be_bytes()
}

/// The number of leading one bits of a mask in network order (a non-contiguous mask counts
/// up to its first zero, which is what it means for persistence grouping in practice).
pub fn mask_v4_to_prefix(mask: [u8; 4]) -> u8 {
    u32::from_be_bytes(mask).leading_ones() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_netmask_and_prefix_convert_both_ways() {
        assert_eq!(prefix_to_mask_v4(24), [255, 255, 255, 0]);
        assert_eq!(prefix_to_mask_v4(32), [255; 4]);
        assert_eq!(prefix_to_mask_v4(0), [0; 4]);
        assert_eq!(prefix_to_mask_v4(40), [255; 4]);
        for p in 0..=32 {
            assert_eq!(mask_v4_to_prefix(prefix_to_mask_v4(p)), p);
        }
    }

    #[test]
    fn service_keys_print_like_ipvsadm() {
        let k = ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "2001:db8::1".parse().unwrap(),
            port: 443,
        };
        assert_eq!(k.to_string(), "TCP [2001:db8::1]:443");
        let f = ServiceKey::Fwmark {
            family: Family::Ipv4,
            mark: 7,
        };
        assert_eq!(f.to_string(), "FWM 7");
    }

    #[test]
    fn every_scheduler_name_round_trips() {
        for s in Scheduler::ALL {
            assert_eq!(Scheduler::from_name(s.name()), Some(s));
        }
        assert_eq!(Scheduler::from_name("twos"), None);
    }

    #[test]
    fn nf_inet_addr_is_16_bytes_with_ipv4_first() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b = addr_to_nf(&a);
        assert_eq!(&b[..4], &[10, 0, 0, 1]);
        assert_eq!(&b[4..], &[0; 12]);
        assert_eq!(addr_from_nf(Family::Ipv4, &b), Some(a));
        assert_eq!(addr_from_nf(Family::Ipv6, &b[..8]), None);
    }
}
