//! Router Advertisements of the virtual router (`option ra`): the frame (RFC 4861 4.2) and
//! when to send it (RFC 4861 6.2.4 periodic and initial, 6.2.6 answers to solicitations).
//!
//! The RAs come from the virtual router's link-local address (the instance's first IPv6
//! VIP) and, with `use_vmac`, its virtual MAC, so every master of the group sends the same
//! source: a host's Default Router List holds one entry, the VIP, and a failover changes
//! nothing in it. Pure: the caller passes `now` and a random `jitter`, and sends the bytes.

use core::net::Ipv6Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Duration as WireDuration;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv6Message, Icmpv6Packet, Icmpv6Repr,
    IpProtocol, Ipv6Packet, Ipv6Repr, NdiscOption, NdiscOptionRepr, NdiscPrefixInfoFlags,
    NdiscPrefixInformation, NdiscRepr, NdiscRouterFlags, RawHardwareAddress, ETHERNET_HEADER_LEN,
    IPV6_HEADER_LEN,
};

use super::announce::{ALL_NODES, ALL_NODES_MAC};
use super::wire::EmitError;
use crate::base::{Duration, Instant};

/// What the virtual router advertises (RFC 4861 6.2.1 AdvXxx variables), sent from the
/// instance's first IPv6 VIP, which validation keeps link-local.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaConfig {
    /// `ra_prefix`: /64 prefixes for SLAAC (Prefix Information options, L and A set).
    pub prefixes: Vec<Ipv6Addr>,
    /// MaxRtrAdvInterval; MinRtrAdvInterval is a third of it (RFC 4861 6.2.1 default).
    pub interval: Duration,
    /// AdvDefaultLifetime in seconds (0: not a default router).
    pub router_lifetime: u16,
    /// AdvValidLifetime / AdvPreferredLifetime of every prefix, seconds (0xffffffff: infinity).
    pub valid_lifetime: u32,
    pub preferred_lifetime: u32,
    /// AdvManagedFlag / AdvOtherConfigFlag.
    pub managed: bool,
    pub other: bool,
}

/// RFC 4861 7.1.2: ND messages go out (and must arrive) with hop limit 255.
const ND_HOP_LIMIT: u8 = 255;
/// AdvCurHopLimit (RFC 4861 6.2.1: the value of the Assigned Numbers, 64).
pub const CUR_HOP_LIMIT: u8 = 64;
/// RFC 4861 10: MAX_INITIAL_RTR_ADVERT_INTERVAL, MAX_INITIAL_RTR_ADVERTISEMENTS,
/// MIN_DELAY_BETWEEN_RAS, MAX_RA_DELAY_TIME.
pub const MAX_INITIAL_RTR_ADVERT_INTERVAL: Duration = Duration::from_secs(16);
pub const MAX_INITIAL_RTR_ADVERTISEMENTS: u8 = 3;
pub const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
pub const MAX_RA_DELAY_TIME: Duration = Duration::from_millis(500);
/// At most this many `ra_prefix` (an RA with them and the source link-layer address option
/// is 14 + 40 + 16 + 8 + 8 × 32 = 334 bytes).
pub const MAX_RA_PREFIXES: usize = 8;
/// Prefix Information option: 32 bytes (RFC 4861 4.6.2).
const PREFIX_OPT_LEN: usize = 32;

/// The length of an RA with `prefixes` Prefix Information options.
pub const fn ra_len(prefixes: usize) -> usize {
    ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + 16 + 8 + PREFIX_OPT_LEN * prefixes
}

fn prefix_info(ra: &RaConfig, prefix: Ipv6Addr) -> NdiscPrefixInformation {
    NdiscPrefixInformation {
        prefix_len: 64,
        flags: NdiscPrefixInfoFlags::ON_LINK | NdiscPrefixInfoFlags::ADDRCONF,
        valid_lifetime: WireDuration::from_secs(u64::from(ra.valid_lifetime)),
        preferred_lifetime: WireDuration::from_secs(u64::from(ra.preferred_lifetime)),
        prefix,
    }
}

/// A Router Advertisement (RFC 4861 4.2) from `src` (the virtual link-local address) at
/// `src_mac` to all-nodes, hop limit 255: Cur Hop Limit 64, the M and O flags of `ra`,
/// `router_lifetime` seconds (0 in the final RA), reachable and retransmission times
/// unspecified (0), a source link-layer address option and one Prefix Information option
/// per prefix (on-link and autonomous). Returns the length written ([`ra_len`]).
pub fn emit_ra(
    buf: &mut [u8],
    src_mac: EthernetAddress,
    src: Ipv6Addr,
    ra: &RaConfig,
    router_lifetime: u16,
) -> Result<usize, EmitError> {
    let prefixes = &ra.prefixes[..ra.prefixes.len().min(MAX_RA_PREFIXES)];
    let total = ra_len(prefixes.len());
    let out = buf.get_mut(..total).ok_or(EmitError::BufferTooSmall)?;
    let mut flags = NdiscRouterFlags::empty();
    if ra.managed {
        flags |= NdiscRouterFlags::MANAGED;
    }
    if ra.other {
        flags |= NdiscRouterFlags::OTHER;
    }
    // smoltcp's RA carries one Prefix Information option: the first goes in the Repr, the
    // others are written after it, before the checksum is taken over the whole message.
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
        hop_limit: CUR_HOP_LIMIT,
        flags,
        router_lifetime: WireDuration::from_secs(u64::from(router_lifetime)),
        reachable_time: WireDuration::from_millis(0),
        retrans_time: WireDuration::from_millis(0),
        lladdr: Some(RawHardwareAddress::from(src_mac)),
        mtu: None,
        prefix_info: prefixes.first().map(|p| prefix_info(ra, *p)),
    });
    let icmp_len = total - ETHERNET_HEADER_LEN - IPV6_HEADER_LEN;
    let mut eth = EthernetFrame::new_unchecked(out);
    eth.set_dst_addr(ALL_NODES_MAC);
    eth.set_src_addr(src_mac);
    eth.set_ethertype(EthernetProtocol::Ipv6);
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: ALL_NODES,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp_len,
        hop_limit: ND_HOP_LIMIT,
    };
    let mut ip_pkt = Ipv6Packet::new_unchecked(eth.payload_mut());
    ip.emit(&mut ip_pkt);
    let payload = ip_pkt
        .payload_mut()
        .get_mut(..icmp_len)
        .ok_or(EmitError::BufferTooSmall)?;
    let mut at = icmp.buffer_len();
    for p in prefixes.iter().skip(1) {
        let opt = NdiscOptionRepr::PrefixInformation(prefix_info(ra, *p));
        let slot = payload
            .get_mut(at..at + PREFIX_OPT_LEN)
            .ok_or(EmitError::BufferTooSmall)?;
        opt.emit(&mut NdiscOption::new_unchecked(slot));
        at += PREFIX_OPT_LEN;
    }
    icmp.emit(
        &src,
        &ALL_NODES,
        &mut Icmpv6Packet::new_unchecked(payload),
        &ChecksumCapabilities::default(),
    );
    Ok(total)
}

/// When the virtual router advertises, while MASTER (RFC 4861 6.2.4, 6.2.6), and what it
/// counted. `jitter` arguments are uniform random numbers from the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaTimer {
    /// The next multicast RA; `None` while not advertising.
    next: Option<Instant>,
    /// Initial RAs still to come after the next one (RFC 4861 6.2.4).
    initial_left: u8,
    last_sent: Option<Instant>,
    /// RAs sent.
    pub sent: u32,
    /// Router Solicitations received while advertising.
    pub rs_received: u32,
    /// Of those, the ones that did not bring an RA forward: one was due sooner, or the
    /// last went out less than MIN_DELAY_BETWEEN_RAS ago (RFC 4861 6.2.6).
    pub rs_rate_limited: u32,
}

/// MinRtrAdvInterval..MaxRtrAdvInterval, uniformly by `jitter`: the minimum is a third of
/// the maximum (RFC 4861 6.2.1 default 0.33 × Max), never below 3 s.
fn periodic(max: Duration, jitter: u16) -> Duration {
    let min = (max / 3).max(MIN_DELAY_BETWEEN_RAS).min(max);
    min + scaled(max - min, jitter)
}

/// `d` × `jitter` / 65535, in integer milliseconds (no float code on the router).
fn scaled(d: Duration, jitter: u16) -> Duration {
    let ms = d.as_millis() as u64;
    Duration::from_millis(ms.saturating_mul(u64::from(jitter)) / u64::from(u16::MAX))
}

impl RaTimer {
    /// Became MASTER: the first RA goes out now, then up to two more at most
    /// MAX_INITIAL_RTR_ADVERT_INTERVAL apart (RFC 4861 6.2.4), MIN_DELAY_BETWEEN_RAS at
    /// least (6.2.6 counts every multicast RA).
    pub fn start(&mut self, now: Instant) {
        self.next = Some(now);
        self.initial_left = MAX_INITIAL_RTR_ADVERTISEMENTS - 1;
    }

    /// Left MASTER (or `ra` switched off): no more RAs. The next master sends them from
    /// the same address, so hosts need no final one.
    pub fn stop(&mut self) {
        self.next = None;
        self.initial_left = 0;
    }

    pub fn running(&self) -> bool {
        self.next.is_some()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.next
    }

    /// True when an RA is due at `now`: the caller sends one, and the next is scheduled
    /// (`max` is MaxRtrAdvInterval).
    pub fn poll(&mut self, now: Instant, max: Duration, jitter: u16) -> bool {
        match self.next {
            Some(at) if at <= now => {}
            _ => return false,
        }
        self.sent = self.sent.wrapping_add(1);
        self.last_sent = Some(now);
        let mut gap = periodic(max, jitter);
        if self.initial_left > 0 {
            self.initial_left -= 1;
            gap = gap
                .min(MAX_INITIAL_RTR_ADVERT_INTERVAL)
                .max(MIN_DELAY_BETWEEN_RAS);
        }
        self.next = Some(now + gap);
        true
    }

    /// A Router Solicitation arrived (RFC 4861 6.2.6): the answer is a multicast RA after
    /// a random delay up to MAX_RA_DELAY_TIME, not sooner than MIN_DELAY_BETWEEN_RAS after
    /// the last one; one already scheduled before that answers it.
    pub fn on_solicit(&mut self, now: Instant, jitter: u16) {
        let Some(next) = self.next else {
            return;
        };
        self.rs_received = self.rs_received.wrapping_add(1);
        let delay = scaled(MAX_RA_DELAY_TIME, jitter);
        let mut at = now + delay;
        let mut limited = false;
        if let Some(last) = self.last_sent {
            if at < last + MIN_DELAY_BETWEEN_RAS {
                at = last + MIN_DELAY_BETWEEN_RAS;
                limited = true;
            }
        }
        if next <= at {
            limited = true;
        } else {
            self.next = Some(at);
        }
        if limited {
            self.rs_rate_limited = self.rs_rate_limited.wrapping_add(1);
        }
    }
}

/// Whether `frame` (Ethernet) is a Router Solicitation (RFC 4861 4.1) that passes the
/// validity checks of RFC 4861 6.1.1 a router can make from the bytes: hop limit 255,
/// ICMPv6 checksum, code 0, at least 8 octets. (The options are not read: the answer is a
/// multicast RA whatever they say.)
pub fn is_router_solicitation(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if eth.ethertype() != EthernetProtocol::Ipv6 {
        return false;
    }
    let Ok(ip) = Ipv6Packet::new_checked(eth.payload()) else {
        return false;
    };
    if ip.next_header() != IpProtocol::Icmpv6 || ip.hop_limit() != ND_HOP_LIMIT {
        return false;
    }
    let Ok(icmp) = Icmpv6Packet::new_checked(ip.payload()) else {
        return false;
    };
    icmp.msg_type() == Icmpv6Message::RouterSolicit
        && icmp.msg_code() == 0
        && ip.payload().len() >= 8
        && icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMAC: EthernetAddress = EthernetAddress([0x00, 0x00, 0x5e, 0x00, 0x02, 0x4d]);
    const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x77);

    fn cfg(prefixes: &[Ipv6Addr]) -> RaConfig {
        RaConfig {
            prefixes: prefixes.to_vec(),
            interval: Duration::from_secs(600),
            router_lifetime: 1800,
            valid_lifetime: 2_592_000,
            preferred_lifetime: 604_800,
            managed: false,
            other: true,
        }
    }

    /// An RA for `fd77::/64` with the Other flag, written out field by field from RFC 4861
    /// 4.2 / 4.6.1 / 4.6.2.
    #[rustfmt::skip]
    static RA_FRAME: [u8; 110] = [
        // Ethernet: 33:33:00:00:00:01 <- 00:00:5e:00:02:4d, IPv6
        0x33, 0x33, 0, 0, 0, 1, 0x00, 0x00, 0x5e, 0x00, 0x02, 0x4d, 0x86, 0xdd,
        // IPv6: payload 56, ICMPv6, hop limit 255, fe80::77 -> ff02::1
        0x60, 0, 0, 0, 0, 56, 58, 255,
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x77,
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        // RA: type 134, code 0, checksum, cur hop limit 64, flags O, lifetime 1800,
        // reachable 0, retrans 0
        134, 0, 0x00, 0x00, 64, 0x40, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0,
        // Source link-layer address option
        1, 1, 0x00, 0x00, 0x5e, 0x00, 0x02, 0x4d,
        // Prefix information: /64, L+A, valid 2592000, preferred 604800, fd77::
        3, 4, 64, 0xc0, 0x00, 0x27, 0x8d, 0x00, 0x00, 0x09, 0x3a, 0x80, 0, 0, 0, 0,
        0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn router_advertisement_fields_as_rfc_4861_4_2() {
        let mut buf = [0u8; 512];
        let fd77 = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0);
        let n = emit_ra(&mut buf, VMAC, LL, &cfg(&[fd77]), 1800).unwrap();
        assert_eq!(n, 110);
        let mut want = RA_FRAME;
        // The checksum is checked by smoltcp's parse below (and scapy's in the lab).
        want[56..58].copy_from_slice(&buf[56..58]);
        assert_eq!(&buf[..n], &want[..]);
        let eth = EthernetFrame::new_checked(&buf[..n]).unwrap();
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        let repr = Icmpv6Repr::parse(&LL, &ALL_NODES, &icmp, &Default::default()).unwrap();
        assert!(matches!(
            repr,
            Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert { hop_limit: 64, .. })
        ));
    }

    #[test]
    fn every_prefix_gets_an_option_and_the_checksum_covers_them() {
        let mut buf = [0u8; 512];
        let p: Vec<Ipv6Addr> = (1..=3)
            .map(|i| Ipv6Addr::new(0xfd77, i, 0, 0, 0, 0, 0, 0))
            .collect();
        let mut c = cfg(&p);
        c.managed = true;
        let n = emit_ra(&mut buf, VMAC, LL, &c, 0).unwrap();
        assert_eq!(n, ra_len(3));
        // Router lifetime 0 (the final RA), M and O set.
        assert_eq!(&buf[58..62], &[64, 0xc0, 0, 0]);
        let eth = EthernetFrame::new_checked(&buf[..n]).unwrap();
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(&LL, &ALL_NODES));
        for (k, want) in p.iter().enumerate() {
            let at = 14 + 40 + 16 + 8 + 32 * k;
            assert_eq!(buf[at], 3, "prefix option {k}");
            assert_eq!(&buf[at + 16..at + 32], &want.octets());
        }
        let mut small = [0u8; 100];
        assert_eq!(
            emit_ra(&mut small, VMAC, LL, &c, 0),
            Err(EmitError::BufferTooSmall)
        );
    }

    #[test]
    fn three_initial_ras_then_periodic_6_2_4() {
        let max = Duration::from_secs(600);
        let mut t = RaTimer::default();
        assert!(!t.poll(Instant::ZERO, max, 0));
        let t0 = Instant::from_secs(100);
        t.start(t0);
        assert!(t.poll(t0, max, u16::MAX));
        // The initial ones: 16 s apart at most (the longest jitter).
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(16)));
        let t1 = t0 + Duration::from_secs(16);
        assert!(!t.poll(t1 - Duration::from_millis(1), max, 0));
        assert!(t.poll(t1, max, u16::MAX));
        let t2 = t1 + Duration::from_secs(16);
        assert!(t.poll(t2, max, u16::MAX));
        // Then MinRtrAdvInterval..MaxRtrAdvInterval.
        assert_eq!(t.next_deadline(), Some(t2 + max));
        let t3 = t2 + max;
        assert!(t.poll(t3, max, 0));
        assert_eq!(t.next_deadline(), Some(t3 + Duration::from_secs(200)));
        assert_eq!(t.sent, 4);
        t.stop();
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn solicitations_are_answered_at_most_every_3_s_6_2_6() {
        let max = Duration::from_secs(600);
        let mut t = RaTimer::default();
        // Not advertising: not counted.
        t.on_solicit(Instant::ZERO, 0);
        assert_eq!(t.rs_received, 0);
        let t0 = Instant::from_secs(10);
        t.start(t0);
        assert!(t.poll(t0, max, 0));
        let t1 = t0 + Duration::from_secs(1);
        // Within 3 s of the last RA: answered at last + 3 s.
        t.on_solicit(t1, 0);
        assert_eq!(t.next_deadline(), Some(t0 + MIN_DELAY_BETWEEN_RAS));
        // A flood: nothing comes sooner, every one is counted as limited.
        for k in 0..1000 {
            t.on_solicit(t1 + Duration::from_millis(k), u16::MAX);
        }
        assert_eq!(t.next_deadline(), Some(t0 + MIN_DELAY_BETWEEN_RAS));
        assert_eq!((t.rs_received, t.rs_rate_limited), (1001, 1001));
        let t3 = t0 + MIN_DELAY_BETWEEN_RAS;
        assert!(t.poll(t3, max, 0));
        // Long after: within MAX_RA_DELAY_TIME.
        let t4 = t3 + Duration::from_secs(5);
        t.on_solicit(t4, u16::MAX);
        assert_eq!(t.next_deadline(), Some(t4 + MAX_RA_DELAY_TIME));
        assert_eq!(t.rs_rate_limited, 1001);
    }

    #[test]
    fn router_solicitations_are_recognised_6_1_1() {
        // fe80::100 -> ff02::2, hop limit 255, RS with a source link-layer address option.
        let mut f = vec![
            0x33, 0x33, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 100, 0x86, 0xdd, 0x60, 0, 0, 0, 0, 16, 58,
            255,
        ];
        f.extend_from_slice(&Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x100).octets());
        f.extend_from_slice(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2).octets());
        f.extend_from_slice(&[133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x02, 0, 0, 0, 0, 100]);
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x100);
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
        let mut icmp = Icmpv6Packet::new_unchecked(&mut f[54..]);
        icmp.fill_checksum(&src, &dst);
        assert!(is_router_solicitation(&f));
        let mut bad = f.clone();
        bad[21] = 64; // hop limit
        assert!(!is_router_solicitation(&bad));
        let mut bad = f.clone();
        bad[60] ^= 1; // checksum
        assert!(!is_router_solicitation(&bad));
        assert!(!is_router_solicitation(&f[..40]));
    }
}
