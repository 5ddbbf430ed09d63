//! Announcements a new master sends so hosts and switches learn where the virtual addresses
//! live (RFC 5798 6.4.1 / 6.4.2 "broadcast a gratuitous ARP request" and "send an unsolicited
//! ND Neighbor Advertisement"), byte-identical to keepalived 2.2.7's.

use core::net::Ipv6Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Address, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags,
    NdiscRepr, RawHardwareAddress, ETHERNET_HEADER_LEN, IPV6_HEADER_LEN,
};

use super::wire::EmitError;

/// Ethernet + ARP for IPv4 over Ethernet, unpadded.
pub const GARP_LEN: usize = 42;
/// Ethernet + IPv6 + NA (24) + target link-layer address option (8).
pub const UNA_LEN: usize = 86;
/// RFC 4861 7.2.4: unsolicited advertisements go to all-nodes.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Ethernet address of ff02::1.
pub const ALL_NODES_MAC: EthernetAddress = EthernetAddress([0x33, 0x33, 0, 0, 0, 0x01]);
/// RFC 4861 7.1.2: ND messages must arrive with hop limit 255.
const ND_HOP_LIMIT: u8 = 255;

/// A gratuitous ARP for `vip` claimed by `src_mac` (RFC 5798 6.4.1): an ARP *request* with
/// sender IP = target IP = the VIP and target MAC ff:ff:ff:ff:ff:ff, to broadcast. That is
/// what keepalived sends; the request form updates caches of hosts that ignore gratuitous
/// replies. Returns the length written ([`GARP_LEN`]).
pub fn emit_garp(
    buf: &mut [u8],
    src_mac: EthernetAddress,
    vip: Ipv4Address,
) -> Result<usize, EmitError> {
    let out = buf.get_mut(..GARP_LEN).ok_or(EmitError::BufferTooSmall)?;
    let mut eth = EthernetFrame::new_unchecked(out);
    eth.set_dst_addr(EthernetAddress::BROADCAST);
    eth.set_src_addr(src_mac);
    eth.set_ethertype(EthernetProtocol::Arp);
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: src_mac,
        source_protocol_addr: vip,
        target_hardware_addr: EthernetAddress::BROADCAST,
        target_protocol_addr: vip,
    };
    arp.emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
    Ok(GARP_LEN)
}

/// An unsolicited Neighbor Advertisement for `vip` at `src_mac` (RFC 5798 6.4.1 / 6.4.2,
/// RFC 4861 7.2.6): from the VIP itself to ff02::1, hop limit 255, Override set, Solicited
/// clear, with a target link-layer address option. Returns the length written ([`UNA_LEN`]).
///
/// `router` is the Router flag. RFC 5798 asks for it set; the caller sets it when the
/// interface forwards IPv6 (as keepalived does), because the kernel's own answers to
/// Neighbor Solicitations for the VIP carry the flag by that same sysctl: a host that saw
/// IsRouter go from TRUE to FALSE drops the VIP from its Default Router List (RFC 4861
/// 7.2.5), so our NAs must never disagree with the kernel's.
pub fn emit_unsolicited_na(
    buf: &mut [u8],
    src_mac: EthernetAddress,
    vip: Ipv6Addr,
    router: bool,
) -> Result<usize, EmitError> {
    let out = buf.get_mut(..UNA_LEN).ok_or(EmitError::BufferTooSmall)?;
    let mut eth = EthernetFrame::new_unchecked(out);
    eth.set_dst_addr(ALL_NODES_MAC);
    eth.set_src_addr(src_mac);
    eth.set_ethertype(EthernetProtocol::Ipv6);
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags: if router {
            NdiscNeighborFlags::ROUTER | NdiscNeighborFlags::OVERRIDE
        } else {
            NdiscNeighborFlags::OVERRIDE
        },
        target_addr: vip,
        lladdr: Some(RawHardwareAddress::from(src_mac)),
    });
    let ip = Ipv6Repr {
        src_addr: vip,
        dst_addr: ALL_NODES,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: ND_HOP_LIMIT,
    };
    let mut ip_pkt = Ipv6Packet::new_unchecked(eth.payload_mut());
    ip.emit(&mut ip_pkt);
    let payload = &mut ip_pkt.payload_mut()[..icmp.buffer_len()];
    icmp.emit(
        &vip,
        &ALL_NODES,
        &mut Icmpv6Packet::new_unchecked(payload),
        &ChecksumCapabilities::default(),
    );
    Ok(ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + icmp.buffer_len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1_MAC: EthernetAddress = EthernetAddress([0x02, 0x77, 0, 0, 0, 0x11]);

    // keepalived 2.2.7, vrrpv2-ipv4-garp.pcap frame 1.
    static GARP_FRAME: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x77, 0x00, 0x00, 0x00, 0x11, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x77, 0x00, 0x00, 0x00, 0x11, 0x0a, 0x4d,
        0x00, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x4d, 0x00, 0xfe,
    ];
    // keepalived 2.2.7, vrrpv3-ipv6-una.pcap frame 1.
    static UNA_FRAME: [u8; 86] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0x02, 0x77, 0x00, 0x00, 0x00, 0x11, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x54, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x00, 0x54, 0x80, 0x20, 0x00,
        0x00, 0x00, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x02, 0x54, 0x02, 0x01, 0x02, 0x77, 0x00, 0x00, 0x00, 0x11,
    ];

    #[test]
    fn gratuitous_arp_request_matches_keepalived_6_4_1() {
        let mut buf = [0u8; 64];
        let n = emit_garp(&mut buf, R1_MAC, Ipv4Address::new(10, 77, 0, 254)).unwrap();
        assert_eq!(n, GARP_LEN);
        assert_eq!(&buf[..n], &GARP_FRAME[..]);
    }

    #[test]
    fn unsolicited_na_override_only_matches_keepalived_6_4_2() {
        let mut buf = [0u8; 128];
        let vip = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x254);
        let n = emit_unsolicited_na(&mut buf, R1_MAC, vip, false).unwrap();
        assert_eq!(n, UNA_LEN);
        assert_eq!(&buf[..n], &UNA_FRAME[..]);
    }

    /// keepalived 2.2.7 on a forwarding interface: the same NA with the Router flag
    /// (byte 58: 0x20 -> 0xa0), so its ICMPv6 checksum is 0x8000 less (0x5480 -> 0xd47f in
    /// ones' complement).
    #[test]
    fn unsolicited_na_router_flag_set_on_forwarding_interface_6_4_2() {
        let mut expected = UNA_FRAME;
        expected[56] = 0xd4;
        expected[57] = 0x7f;
        expected[58] = 0xa0;
        let mut buf = [0u8; 128];
        let vip = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x254);
        let n = emit_unsolicited_na(&mut buf, R1_MAC, vip, true).unwrap();
        assert_eq!(&buf[..n], &expected[..]);

        // And smoltcp's parser (checksum checked) reads R and O set, S clear.
        let eth = EthernetFrame::new_checked(&buf[..n]).unwrap();
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        let repr = Icmpv6Repr::parse(
            &ip.src_addr(),
            &ip.dst_addr(),
            &icmp,
            &ChecksumCapabilities::default(),
        )
        .unwrap();
        match repr {
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                flags, target_addr, ..
            }) => {
                assert_eq!(
                    flags,
                    NdiscNeighborFlags::ROUTER | NdiscNeighborFlags::OVERRIDE
                );
                assert_eq!(target_addr, vip);
            }
            other => panic!("not an NA: {other:?}"),
        }
    }

    #[test]
    fn announcements_into_short_buffers_fail() {
        let mut buf = [0u8; 41];
        assert_eq!(
            emit_garp(&mut buf, R1_MAC, Ipv4Address::new(10, 0, 0, 1)),
            Err(EmitError::BufferTooSmall)
        );
        let mut buf = [0u8; 85];
        assert_eq!(
            emit_unsolicited_na(&mut buf, R1_MAC, Ipv6Addr::LOCALHOST, true),
            Err(EmitError::BufferTooSmall)
        );
    }
}
