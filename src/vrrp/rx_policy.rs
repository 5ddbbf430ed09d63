//! Receive policy: which parsed advertisements an instance may hear at all.
//!
//! A router's LAN is full of hosts nobody trusts. VRRP's only on-link proof is the TTL /
//! hop limit of 255 (RFC 5798 5.1.1.3, 5.1.2.3, 7.1; RFC 3768 7.1): a router decrements it, so
//! 255 means the sender is on this link. That proof holds only for adverts to the multicast
//! group; unicast adverts (keepalived's `unicast_peer`) may cross routers, so for them the
//! proof is the configured peer list instead (keepalived `check_unicast_src`). Everything
//! here is pure: the caller passes what the link layer said about the frame ([`FrameMeta`])
//! and the instance's rules ([`Policy`]); the answer is accept or one [`DropReason`].
//!
//! The same rules run first in the kernel as a BPF program (`sys::bpf`), so a flood never
//! reaches user space; this is the second line, which also covers what BPF cannot see
//! (configured peers, own addresses, the address list).

use core::net::IpAddr;

use super::frame::{AddrListMatch, RxAdvert};
use super::wire::{DropReason, VrrpRepr, VRRP_GROUP_V4, VRRP_GROUP_V6, VRRP_TTL};

/// How the link layer delivered a frame (AF_PACKET's `sll_pkttype`, in protocol terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// To our own MAC address.
    ToUs,
    Multicast,
    Broadcast,
    /// To another host's MAC (the interface is promiscuous: a bridge port, a capture).
    OtherHost,
}

/// What the link layer knows about a frame, beside its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    pub delivery: Delivery,
    /// The frame carried an 802.1Q/802.1ad tag (stripped by the kernel before we see it).
    pub vlan_tagged: bool,
}

/// One instance's receive rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy<'a> {
    /// The advert the instance sends: VRID, version, authentication, interval and address
    /// list, what RFC 5798 7.1 compares a received one with.
    pub wire: &'a VrrpRepr,
    /// Our own addresses on the link (the advert source we use): an advert from one of them
    /// is a reflection or a forgery.
    pub own: &'a [IpAddr],
    /// Configured unicast peers; empty = the instance runs multicast.
    pub unicast_peers: &'a [IpAddr],
    /// Unicast adverts must come from a configured peer (keepalived `check_unicast_src`).
    pub check_unicast_src: bool,
}

/// RFC 5798 5.1.1.2 / 5.1.2.2: the advert went to the VRRP group, not to one host.
pub fn to_group(dst: &IpAddr) -> bool {
    match dst {
        IpAddr::V4(a) => *a == VRRP_GROUP_V4,
        IpAddr::V6(a) => *a == VRRP_GROUP_V6,
    }
}

/// The checks that need only the link layer's facts: done before the frame is parsed or
/// matched to an instance, so a tagged or misaddressed frame never reaches one.
pub fn check_link(meta: &FrameMeta) -> Result<(), DropReason> {
    if meta.vlan_tagged {
        return Err(DropReason::VlanTagged);
    }
    if meta.delivery == Delivery::OtherHost {
        return Err(DropReason::OtherHost);
    }
    Ok(())
}

/// Whether `advert` (received as `meta` says) may reach the instance `policy` describes.
/// Order: link facts, the sender's identity, the transport mode and its on-link proof, then
/// RFC 5798 7.1's per-instance checks and the address list.
pub fn check(policy: &Policy<'_>, meta: &FrameMeta, advert: &RxAdvert) -> Result<(), DropReason> {
    check_link(meta)?;
    if policy.own.contains(&advert.ip.src) {
        return Err(DropReason::OwnAddress);
    }
    check_source(policy, advert)?;
    check_transport(policy, advert)?;
    let list = advert.validate_for(policy.wire)?;
    if advert.vrrp.addrs.is_empty() {
        return Err(DropReason::NoAddresses);
    }
    match list {
        AddrListMatch::Match => Ok(()),
        AddrListMatch::Mismatch => Err(DropReason::AddrListMismatch),
    }
}

/// Sources no router on the link can have (the IP stack drops these as martians before
/// keepalived sees them), and our own VIPs: a forged source must not reach status, logs or
/// `MINIVRRP_MASTER`, nor win an election.
fn check_source(policy: &Policy<'_>, advert: &RxAdvert) -> Result<(), DropReason> {
    let src = advert.ip.src;
    let (unspecified, loopback, multicast, broadcast) = match src {
        IpAddr::V4(a) => (
            a.octets()[0] == 0,
            a.is_loopback(),
            a.is_multicast(),
            a.is_broadcast(),
        ),
        IpAddr::V6(a) => (a.is_unspecified(), a.is_loopback(), a.is_multicast(), false),
    };
    if unspecified {
        return Err(DropReason::UnspecifiedSource);
    }
    if loopback {
        return Err(DropReason::LoopbackSource);
    }
    if multicast {
        return Err(DropReason::MulticastSource);
    }
    if broadcast {
        return Err(DropReason::BroadcastSource);
    }
    // RFC 5798 3: the address owner (priority 255) advertises from the VIP, its own address,
    // and resigns from it with priority 0. And for IPv6 the first VIP is the virtual router's
    // link-local address (5.2.9): a master that keeps its VIPs on a macvlan with the virtual
    // MAC (FRR's vrrpd) sends its adverts from it, as 5.1.2.1 has it for the interface they
    // leave from, so a link-local VIP is a peer's normal source, not a forgery.
    let owner = matches!(advert.vrrp.priority, 0 | 255);
    let link_local = matches!(src, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
    if !owner && !link_local && policy.wire.addrs.contains(&src) {
        return Err(DropReason::OwnVipSource);
    }
    Ok(())
}

/// Multicast instances hear only the group, with TTL 255 (RFC 5798 7.1); unicast instances
/// hear only their peers, by unicast.
fn check_transport(policy: &Policy<'_>, advert: &RxAdvert) -> Result<(), DropReason> {
    let multicast = to_group(&advert.ip.dst);
    if policy.unicast_peers.is_empty() {
        if !multicast {
            return Err(DropReason::UnicastToMulticastInstance);
        }
    } else {
        if multicast {
            return Err(DropReason::MulticastToUnicastInstance);
        }
        if policy.check_unicast_src && !policy.unicast_peers.contains(&advert.ip.src) {
            return Err(DropReason::NotAPeer);
        }
    }
    // RFC 5798 7.1 / RFC 3768 7.1: TTL 255 for every advert to the group, whoever the
    // instance is; a unicast advert from a configured peer may have crossed routers.
    if multicast && advert.ip.hop_limit != VRRP_TTL {
        return Err(DropReason::BadTtl);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::frame::IpMeta;
    use crate::vrrp::wire::{AddrList, Auth, ChecksumMode, Version};
    use core::net::{Ipv4Addr, Ipv6Addr};

    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254));
    const US: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
    const GROUP: IpAddr = IpAddr::V4(VRRP_GROUP_V4);

    fn advert(src: IpAddr, dst: IpAddr, ttl: u8, addrs: &[IpAddr]) -> RxAdvert {
        let mut list = AddrList::new();
        for a in addrs {
            list.push(*a).unwrap();
        }
        RxAdvert {
            ip: IpMeta {
                src,
                dst,
                hop_limit: ttl,
                src_mac: None,
                checksum_mode: ChecksumMode::PseudoHeader,
            },
            vrrp: VrrpRepr {
                version: Version::V3,
                vrid: 50,
                priority: 254,
                adver_int: 100,
                auth: Auth::None,
                addrs: list,
            },
            trailer: None,
        }
    }

    const VIPS: [IpAddr; 1] = [VIP];
    const OWN: [IpAddr; 1] = [US];
    const PEERS: [IpAddr; 1] = [PEER];

    /// The advert our instance sends (VRID 50, v3, 1 s) with these VIPs.
    fn own(vips: &[IpAddr]) -> VrrpRepr {
        advert(US, GROUP, 255, vips).vrrp
    }

    fn multicast_policy(wire: &VrrpRepr) -> Policy<'_> {
        Policy {
            wire,
            own: &OWN,
            unicast_peers: &[],
            check_unicast_src: true,
        }
    }

    fn unicast_policy(wire: &VrrpRepr) -> Policy<'_> {
        Policy {
            unicast_peers: &PEERS,
            ..multicast_policy(wire)
        }
    }

    const MCAST: FrameMeta = FrameMeta {
        delivery: Delivery::Multicast,
        vlan_tagged: false,
    };
    const TO_US: FrameMeta = FrameMeta {
        delivery: Delivery::ToUs,
        vlan_tagged: false,
    };

    #[test]
    fn group_advert_with_ttl_255_is_accepted_5_1_1_3() {
        let a = advert(PEER, GROUP, 255, &VIPS);
        assert_eq!(check(&multicast_policy(&own(&VIPS)), &MCAST, &a), Ok(()));
    }

    #[test]
    fn group_advert_with_ttl_below_255_is_dropped_7_1() {
        for ttl in [0, 1, 64, 254] {
            let a = advert(PEER, GROUP, ttl, &VIPS);
            assert_eq!(
                check(&multicast_policy(&own(&VIPS)), &MCAST, &a),
                Err(DropReason::BadTtl)
            );
        }
    }

    #[test]
    fn group_advert_to_our_mac_still_needs_ttl_255_7_1() {
        // The TTL bypass: a TTL-64 advert sent to our MAC instead of the group MAC.
        let a = advert(STRANGER, GROUP, 64, &VIPS);
        assert_eq!(
            check(&multicast_policy(&own(&VIPS)), &TO_US, &a),
            Err(DropReason::BadTtl)
        );
    }

    #[test]
    fn ipv6_group_advert_needs_hop_limit_255_5_1_2_3() {
        let v6vip = [IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x254))];
        let w = own(&v6vip);
        let p = Policy {
            own: &[],
            ..multicast_policy(&w)
        };
        let ll = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2));
        let g = IpAddr::V6(VRRP_GROUP_V6);
        assert_eq!(check(&p, &MCAST, &advert(ll, g, 255, &v6vip)), Ok(()));
        assert_eq!(
            check(&p, &MCAST, &advert(ll, g, 1, &v6vip)),
            Err(DropReason::BadTtl)
        );
    }

    #[test]
    fn unicast_advert_to_multicast_instance_is_dropped_5_1_1_2() {
        let a = advert(PEER, US, 255, &VIPS);
        assert_eq!(
            check(&multicast_policy(&own(&VIPS)), &TO_US, &a),
            Err(DropReason::UnicastToMulticastInstance)
        );
    }

    #[test]
    fn multicast_advert_to_unicast_instance_is_dropped() {
        // Even from the peer's own address: a unicast instance never hears the group.
        let a = advert(PEER, GROUP, 255, &VIPS);
        assert_eq!(
            check(&unicast_policy(&own(&VIPS)), &MCAST, &a),
            Err(DropReason::MulticastToUnicastInstance)
        );
    }

    #[test]
    fn unicast_advert_from_a_non_peer_is_dropped_check_unicast_src() {
        let a = advert(STRANGER, US, 255, &VIPS);
        assert_eq!(
            check(&unicast_policy(&own(&VIPS)), &TO_US, &a),
            Err(DropReason::NotAPeer)
        );
        // keepalived without check_unicast_src would take it.
        let w = own(&VIPS);
        let lax = Policy {
            check_unicast_src: false,
            ..unicast_policy(&w)
        };
        assert_eq!(check(&lax, &TO_US, &a), Ok(()));
    }

    #[test]
    fn unicast_advert_from_a_peer_may_cross_routers() {
        let a = advert(PEER, US, 62, &VIPS);
        assert_eq!(check(&unicast_policy(&own(&VIPS)), &TO_US, &a), Ok(()));
    }

    #[test]
    fn advert_from_our_own_address_is_dropped() {
        let a = advert(US, GROUP, 255, &VIPS);
        assert_eq!(
            check(&multicast_policy(&own(&VIPS)), &MCAST, &a),
            Err(DropReason::OwnAddress)
        );
    }

    /// Sources no router can have, and our own VIP (unless from its owner), each under its
    /// own reason, IPv4 and IPv6.
    #[test]
    fn impossible_sources_are_dropped_each_under_its_reason() {
        let w = own(&VIPS);
        let p = multicast_policy(&w);
        for (src, why) in [
            (Ipv4Addr::UNSPECIFIED, DropReason::UnspecifiedSource),
            (Ipv4Addr::new(0, 1, 2, 3), DropReason::UnspecifiedSource),
            (Ipv4Addr::LOCALHOST, DropReason::LoopbackSource),
            (Ipv4Addr::new(127, 9, 9, 9), DropReason::LoopbackSource),
            (Ipv4Addr::new(224, 0, 0, 5), DropReason::MulticastSource),
            (Ipv4Addr::new(239, 1, 1, 1), DropReason::MulticastSource),
            (Ipv4Addr::BROADCAST, DropReason::BroadcastSource),
        ] {
            let a = advert(IpAddr::V4(src), GROUP, 255, &VIPS);
            assert_eq!(check(&p, &MCAST, &a), Err(why), "{src}");
        }
        assert_eq!(
            check(&p, &MCAST, &advert(VIP, GROUP, 255, &VIPS)),
            Err(DropReason::OwnVipSource)
        );
        // The address owner advertises from the VIP at 255 and resigns from it at 0.
        for prio in [255, 0] {
            let mut a = advert(VIP, GROUP, 255, &VIPS);
            a.vrrp.priority = prio;
            assert_eq!(check(&p, &MCAST, &a), Ok(()), "priority {prio}");
        }
        let vip6 = IpAddr::V6("fd00::254".parse().unwrap());
        let group6 = IpAddr::V6(VRRP_GROUP_V6);
        let vips6 = [vip6];
        let w6 = advert(IpAddr::V6("fe80::1".parse().unwrap()), group6, 255, &vips6).vrrp;
        let p6 = Policy {
            wire: &w6,
            own: &[],
            unicast_peers: &[],
            check_unicast_src: true,
        };
        for (src, why) in [
            (Ipv6Addr::UNSPECIFIED, DropReason::UnspecifiedSource),
            (Ipv6Addr::LOCALHOST, DropReason::LoopbackSource),
            ("ff02::5".parse().unwrap(), DropReason::MulticastSource),
            ("fd00::254".parse().unwrap(), DropReason::OwnVipSource),
        ] {
            let a = advert(IpAddr::V6(src), group6, 255, &vips6);
            assert_eq!(check(&p6, &MCAST, &a), Err(why), "{src}");
        }
        let ok = advert(IpAddr::V6("fe80::2".parse().unwrap()), group6, 255, &vips6);
        assert_eq!(check(&p6, &MCAST, &ok), Ok(()));
        // A link-local first VIP is where FRR's master advertises from (its macvlan).
        let ll_vip = IpAddr::V6("fe80::254".parse().unwrap());
        let vips_ll = [ll_vip, vip6];
        let w_ll = advert(
            IpAddr::V6("fe80::1".parse().unwrap()),
            group6,
            255,
            &vips_ll,
        )
        .vrrp;
        let p_ll = Policy {
            wire: &w_ll,
            own: &[],
            unicast_peers: &[],
            check_unicast_src: true,
        };
        let mut frr = advert(ll_vip, group6, 255, &vips_ll);
        frr.vrrp.priority = 200;
        assert_eq!(check(&p_ll, &MCAST, &frr), Ok(()));
    }

    #[test]
    fn vlan_tagged_frame_is_dropped_before_anything_else() {
        let tagged = FrameMeta {
            vlan_tagged: true,
            ..MCAST
        };
        let a = advert(PEER, GROUP, 255, &VIPS);
        assert_eq!(
            check(&multicast_policy(&own(&VIPS)), &tagged, &a),
            Err(DropReason::VlanTagged)
        );
        assert_eq!(check_link(&tagged), Err(DropReason::VlanTagged));
    }

    #[test]
    fn frame_for_another_host_is_dropped() {
        let other = FrameMeta {
            delivery: Delivery::OtherHost,
            vlan_tagged: false,
        };
        let a = advert(PEER, GROUP, 255, &VIPS);
        assert_eq!(
            check(&multicast_policy(&own(&VIPS)), &other, &a),
            Err(DropReason::OtherHost)
        );
        assert_eq!(check_link(&MCAST), Ok(()));
    }

    #[test]
    fn address_list_must_equal_ours_7_1() {
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 253));
        for list in [&[other][..], &[VIP, other][..]] {
            let a = advert(PEER, GROUP, 255, list);
            assert_eq!(
                check(&multicast_policy(&own(&VIPS)), &MCAST, &a),
                Err(DropReason::AddrListMismatch)
            );
        }
    }

    #[test]
    fn address_count_zero_is_malformed_5_2_5() {
        let a = advert(PEER, GROUP, 255, &[]);
        assert_eq!(
            check(&multicast_policy(&own(&VIPS)), &MCAST, &a),
            Err(DropReason::NoAddresses)
        );
    }

    #[test]
    fn instance_checks_of_7_1_still_apply() {
        let mut a = advert(PEER, GROUP, 255, &VIPS);
        a.vrrp.version = Version::V2;
        assert_eq!(
            check(&multicast_policy(&own(&VIPS)), &MCAST, &a),
            Err(DropReason::VersionMismatch)
        );
    }
}
