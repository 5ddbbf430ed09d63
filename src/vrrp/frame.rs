//! Whole advertisement frames: Ethernet + IPv4/IPv6 + VRRP, built with smoltcp's wire types,
//! and the receive-side checks of RFC 5798 7.1 / RFC 3768 7.1 (the stateless ones in
//! [`parse_frame`], the per-instance ones in [`RxAdvert::validate_for`]).
//!
//! What goes on the wire matches keepalived 2.2.7 byte for byte (see
//! `tests/vectors/`): TOS 0xc0, TTL 255, DF clear, the IP ID the caller counts.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet,
    ETHERNET_HEADER_LEN, IPV4_HEADER_LEN, IPV6_HEADER_LEN,
};

use super::auth::TRAILER_LEN;
use super::instance::Advert;
use super::wire::{
    ChecksumMode, DropReason, EmitError, Family, Packet, Version, VrrpRepr, IPPROTO_VRRP,
    VRRP_GROUP_V4, VRRP_GROUP_V6, VRRP_TOS, VRRP_TTL,
};

/// Ethernet address of 224.0.0.18.
const VRRP_MAC_V4: EthernetAddress = EthernetAddress(super::wire::VRRP_MAC_V4);
/// Ethernet address of ff02::12.
const VRRP_MAC_V6: EthernetAddress = EthernetAddress(super::wire::VRRP_MAC_V6);

/// RFC 5798 7.3: the virtual router MAC, 00-00-5E-00-01-{VRID} for IPv4 and
/// 00-00-5E-00-02-{VRID} for IPv6.
pub fn virtual_mac(vrid: u8, family: Family) -> EthernetAddress {
    let kind = match family {
        Family::Ipv4 => 0x01,
        Family::Ipv6 => 0x02,
    };
    EthernetAddress([0x00, 0x00, 0x5e, 0x00, kind, vrid])
}

/// Length of the IP packet (header + VRRP) that carries `repr` in `family`.
pub fn advert_ip_len(repr: &VrrpRepr, family: Family) -> usize {
    let ip = match family {
        Family::Ipv4 => IPV4_HEADER_LEN,
        Family::Ipv6 => IPV6_HEADER_LEN,
    };
    ip + repr.buffer_len()
}

/// Length of the whole Ethernet frame that carries `repr` in `family` (no padding: the
/// NIC pads short frames, as it does for keepalived's).
pub fn advert_frame_len(repr: &VrrpRepr, family: Family) -> usize {
    ETHERNET_HEADER_LEN + advert_ip_len(repr, family)
}

/// Write only the VRRP message, for a raw IP socket where the kernel builds the IP header
/// (unicast peers). `src`/`dst` are the IP addresses the kernel will use: the checksum
/// covers them when the pseudo-header is in play. Returns the length written.
pub fn emit_vrrp(
    buf: &mut [u8],
    repr: &VrrpRepr,
    src: &IpAddr,
    dst: &IpAddr,
    mode: ChecksumMode,
) -> Result<usize, EmitError> {
    let family = Family::of(src);
    if Family::of(dst) != family {
        return Err(EmitError::FamilyMismatch);
    }
    repr.check_emit(family)?;
    let len = repr.buffer_len();
    let out = buf.get_mut(..len).ok_or(EmitError::BufferTooSmall)?;
    repr.emit(&mut Packet::new_unchecked(out), src, dst, mode);
    Ok(len)
}

/// Write an IPv4 packet carrying `repr` from `src` to `dst` (224.0.0.18, or a unicast peer
/// with `IP_HDRINCL`). TOS 0xc0, TTL 255, DF clear and `ident` as given: keepalived numbers
/// its adverts 1, 2, 3... per socket, and smoltcp's `Ipv4Repr::emit` would force ident 0 and
/// DF, so the header is written field by field. Returns the length written.
pub fn emit_advert_ipv4(
    buf: &mut [u8],
    repr: &VrrpRepr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    mode: ChecksumMode,
) -> Result<usize, EmitError> {
    repr.check_emit(Family::Ipv4)?;
    let len = advert_ip_len(repr, Family::Ipv4);
    let out = buf.get_mut(..len).ok_or(EmitError::BufferTooSmall)?;
    let mut ip = Ipv4Packet::new_unchecked(out);
    ip.set_version(4);
    ip.set_header_len(IPV4_HEADER_LEN as u8);
    ip.set_dscp(VRRP_TOS >> 2);
    ip.set_ecn(VRRP_TOS & 0x03);
    ip.set_total_len(len as u16);
    ip.set_ident(ident);
    ip.clear_flags();
    ip.set_frag_offset(0);
    ip.set_hop_limit(VRRP_TTL);
    ip.set_next_header(IpProtocol::Unknown(IPPROTO_VRRP));
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.fill_checksum();
    repr.emit(
        &mut Packet::new_unchecked(ip.payload_mut()),
        &IpAddr::V4(src),
        &IpAddr::V4(dst),
        mode,
    );
    Ok(len)
}

/// Write an IPv6 packet carrying `repr` from `src` (the interface's link-local address,
/// RFC 5798 5.1.2.1) to `dst`: traffic class 0xc0, hop limit 255, `flow_label` as given
/// (the kernel picks a per-socket one for keepalived; 0 is fine for us). The checksum
/// always covers the pseudo-header (RFC 5798 5.2.8).
pub fn emit_advert_ipv6(
    buf: &mut [u8],
    repr: &VrrpRepr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    flow_label: u32,
) -> Result<usize, EmitError> {
    repr.check_emit(Family::Ipv6)?;
    let len = advert_ip_len(repr, Family::Ipv6);
    let out = buf.get_mut(..len).ok_or(EmitError::BufferTooSmall)?;
    let mut ip = Ipv6Packet::new_unchecked(out);
    ip.set_version(6);
    ip.set_traffic_class(VRRP_TOS);
    ip.set_flow_label(flow_label & 0x000f_ffff);
    ip.set_payload_len(repr.buffer_len() as u16);
    ip.set_next_header(IpProtocol::Unknown(IPPROTO_VRRP));
    ip.set_hop_limit(VRRP_TTL);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    repr.emit(
        &mut Packet::new_unchecked(ip.payload_mut()),
        &IpAddr::V6(src),
        &IpAddr::V6(dst),
        ChecksumMode::PseudoHeader,
    );
    Ok(len)
}

fn emit_ethernet(
    buf: &mut [u8],
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    ethertype: EthernetProtocol,
) -> Result<&mut [u8], EmitError> {
    if buf.len() < ETHERNET_HEADER_LEN {
        return Err(EmitError::BufferTooSmall);
    }
    let mut eth = EthernetFrame::new_unchecked(buf);
    eth.set_dst_addr(dst_mac);
    eth.set_src_addr(src_mac);
    eth.set_ethertype(ethertype);
    Ok(&mut eth.into_inner()[ETHERNET_HEADER_LEN..])
}

/// The complete multicast IPv4 advertisement frame, to 224.0.0.18 / 01:00:5e:00:00:12.
/// `src_mac` is the interface MAC (keepalived's default) or `virtual_mac(vrid, Ipv4)`;
/// `ip_ident` comes from the daemon's per-interface counter (start at 1 to match keepalived).
/// Returns the frame length.
pub fn emit_advert_v4(
    buf: &mut [u8],
    repr: &VrrpRepr,
    src_mac: EthernetAddress,
    src_ip: Ipv4Addr,
    ip_ident: u16,
    mode: ChecksumMode,
) -> Result<usize, EmitError> {
    let ip = emit_ethernet(buf, src_mac, VRRP_MAC_V4, EthernetProtocol::Ipv4)?;
    let n = emit_advert_ipv4(ip, repr, src_ip, VRRP_GROUP_V4, ip_ident, mode)?;
    Ok(ETHERNET_HEADER_LEN + n)
}

/// The complete multicast IPv6 advertisement frame, from the link-local `src_ll` to
/// ff02::12 / 33:33:00:00:00:12. Returns the frame length.
pub fn emit_advert_v6(
    buf: &mut [u8],
    repr: &VrrpRepr,
    src_mac: EthernetAddress,
    src_ll: Ipv6Addr,
    flow_label: u32,
) -> Result<usize, EmitError> {
    let ip = emit_ethernet(buf, src_mac, VRRP_MAC_V6, EthernetProtocol::Ipv6)?;
    let n = emit_advert_ipv6(ip, repr, src_ll, VRRP_GROUP_V6, flow_label)?;
    Ok(ETHERNET_HEADER_LEN + n)
}

/// How a packet was received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxContext {
    /// Received from a configured unicast peer: the TTL / hop limit is not checked, since
    /// unicast adverts may cross routers (keepalived does the same).
    pub unicast: bool,
}

impl RxContext {
    /// Leave the TTL / hop-limit rule to [`crate::vrrp::rx_policy::check`], which knows the
    /// instance (whether it has unicast peers) and the IP destination: whether 255 is
    /// required depends on both, so a frame-only parse cannot decide it.
    pub const TTL_BY_POLICY: RxContext = RxContext { unicast: true };
}

/// What the IP and Ethernet headers said about a received advertisement: the metadata
/// smoltcp keeps in an `IpRepr` beside the payload's `Repr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpMeta {
    /// IP source: the sending router's primary address (v4) or link-local (v6).
    pub src: IpAddr,
    /// IP destination (the group, or us for unicast).
    pub dst: IpAddr,
    /// IPv4 TTL / IPv6 hop limit as received.
    pub hop_limit: u8,
    /// Ethernet source, when parsed from a whole frame.
    pub src_mac: Option<EthernetAddress>,
    /// Which checksum matched (always `VrrpOnly` for v2, `PseudoHeader` for v3/IPv6).
    pub checksum_mode: ChecksumMode,
}

/// A received advertisement that passed the stateless checks: the message as values plus
/// where it came from. The one shape of a received advert, from the socket to the instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxAdvert {
    pub ip: IpMeta,
    pub vrrp: VrrpRepr,
    /// The authentication trailer after the message, when the payload is exactly
    /// [`TRAILER_LEN`] longer than the message (`vrrp::auth`).
    pub trailer: Option<RxTrailer>,
}

/// Where a received trailer and the message it signs are, for the instance to verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxTrailer {
    pub bytes: [u8; TRAILER_LEN],
    /// Offset of the VRRP message in the buffer the parse function was given.
    pub msg_at: usize,
    pub msg_len: usize,
}

impl RxTrailer {
    /// The signed message within `buf` (the buffer given to the parse function).
    pub fn msg<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.msg_at..self.msg_at + self.msg_len)
            .unwrap_or(&[])
    }
}

/// Whether the advertised address list equals the instance's (RFC 5798 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrListMatch {
    Match,
    /// Different lists: the RFC says the receiver MAY drop it and log; the receive policy
    /// (`rx_policy::check`) drops it, as keepalived 2.2.7 does.
    Mismatch,
}

impl RxAdvert {
    /// The per-instance checks of RFC 3768 7.1 / RFC 5798 7.1, in their order, against the
    /// advertisement the instance itself sends (`own`; its priority is not compared): VRID
    /// (the caller normally demuxes on it already), version, authentication (v2), advert
    /// interval (v2), then the address list, whose mismatch is reported for the receive policy
    /// (`rx_policy::check`) to act on.
    pub fn validate_for(&self, own: &VrrpRepr) -> Result<AddrListMatch, DropReason> {
        let rx = &self.vrrp;
        if rx.vrid != own.vrid {
            return Err(DropReason::VridMismatch);
        }
        if rx.version != own.version {
            return Err(DropReason::VersionMismatch);
        }
        if rx.version == Version::V2 {
            // RFC 3768 7.1: auth type must match the configured one, and for type 1 the
            // password too. Both are in `Auth`, so equality covers both.
            if rx.auth != own.auth {
                return Err(DropReason::AuthMismatch);
            }
            // RFC 3768 7.1: a different Adver Int is discarded (v3 instead adopts the
            // master's interval, RFC 5798 6.4.2, which the state machine does). Same version,
            // so the raw fields are in the same unit.
            if rx.adver_int != own.adver_int {
                return Err(DropReason::AdvertIntervalMismatch);
            }
        }
        let same_len = rx.addrs.len() == own.addrs.len();
        let all_in = rx.addrs.iter().all(|a| own.addrs.contains(a))
            && own.addrs.iter().all(|a| rx.addrs.contains(a));
        Ok(if same_len && all_in {
            AddrListMatch::Match
        } else {
            AddrListMatch::Mismatch
        })
    }

    /// What the state machine takes from it (RFC 5798 6.4.2 / 6.4.3 "If an ADVERTISEMENT is
    /// received"): the sender, its priority and its interval.
    pub fn advert(&self) -> Advert {
        Advert {
            src: self.ip.src,
            priority: self.vrrp.priority,
            advert_int: self.vrrp.advert_interval(),
        }
    }
}

/// Parse a whole Ethernet frame from the AF_PACKET socket (trailing padding allowed) and do
/// the stateless receive checks. Never panics.
pub fn parse_frame(frame: &[u8], rx: RxContext) -> Result<RxAdvert, DropReason> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::FrameTruncated)?;
    let src_mac = eth.src_addr();
    let want = match eth.ethertype() {
        EthernetProtocol::Ipv4 => 4,
        EthernetProtocol::Ipv6 => 6,
        _ => return Err(DropReason::NotIp),
    };
    // The IP version must agree with the EtherType, or the frame is not what it claims.
    if eth.payload().first().map(|b| b >> 4) != Some(want) {
        return Err(DropReason::IpMalformed);
    }
    let mut advert = parse_ip_packet(eth.payload(), rx)?;
    advert.ip.src_mac = Some(src_mac);
    if let Some(t) = &mut advert.trailer {
        t.msg_at += ETHERNET_HEADER_LEN;
    }
    Ok(advert)
}

/// Parse an IP packet starting at its IPv4 or IPv6 header (a whole frame's payload, or what
/// a raw IPv4 socket delivers). Never panics.
pub fn parse_ip_packet(packet: &[u8], rx: RxContext) -> Result<RxAdvert, DropReason> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let ip = Ipv4Packet::new_checked(packet).map_err(|_| DropReason::IpMalformed)?;
            if !ip.verify_checksum() {
                return Err(DropReason::IpHeaderChecksum);
            }
            if ip.more_frags() || ip.frag_offset() != 0 {
                return Err(DropReason::IpFragment);
            }
            if ip.next_header() != IpProtocol::Unknown(IPPROTO_VRRP) {
                return Err(DropReason::NotVrrp);
            }
            let at = usize::from(ip.header_len());
            parse_vrrp(
                ip.payload(),
                IpAddr::V4(ip.src_addr()),
                IpAddr::V4(ip.dst_addr()),
                ip.hop_limit(),
                rx,
            )
            .map(|a| shift_trailer(a, at))
        }
        Some(6) => {
            let ip = Ipv6Packet::new_checked(packet).map_err(|_| DropReason::IpMalformed)?;
            if ip.next_header() != IpProtocol::Unknown(IPPROTO_VRRP) {
                return Err(DropReason::NotVrrp);
            }
            parse_vrrp(
                ip.payload(),
                IpAddr::V6(ip.src_addr()),
                IpAddr::V6(ip.dst_addr()),
                ip.hop_limit(),
                rx,
            )
            .map(|a| shift_trailer(a, IPV6_HEADER_LEN))
        }
        Some(_) => Err(DropReason::IpMalformed),
        None => Err(DropReason::IpMalformed),
    }
}

/// Parse a bare VRRP message with the IP header's facts supplied separately (a raw IPv6
/// socket does not deliver the header: the hop limit comes from `IPV6_RECVHOPLIMIT`).
/// Checks in RFC 5798 7.1 order: TTL / hop limit, then [`VrrpRepr::parse`]. Never panics.
pub fn parse_vrrp(
    payload: &[u8],
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    rx: RxContext,
) -> Result<RxAdvert, DropReason> {
    // RFC 5798 7.1 / RFC 3768 7.1: TTL 255 proves the sender is on the link.
    if !rx.unicast && hop_limit != VRRP_TTL {
        return Err(DropReason::BadTtl);
    }
    let packet = Packet::new_checked(payload)?;
    // A payload exactly one trailer longer than its message carries one (padding never
    // reaches 28 bytes: the IP length excludes it); any other length fails in `parse`.
    let msg_len = packet.expected_len(Family::of(&src));
    let (msg, tail) = if payload.len() == msg_len + TRAILER_LEN {
        payload.split_at(msg_len)
    } else {
        (payload, &[][..])
    };
    let (vrrp, checksum_mode) =
        VrrpRepr::parse_with_tail(&Packet::new_unchecked(msg), tail, &src, &dst)?;
    let trailer = <[u8; TRAILER_LEN]>::try_from(tail)
        .ok()
        .map(|bytes| RxTrailer {
            bytes,
            msg_at: 0,
            msg_len,
        });
    Ok(RxAdvert {
        ip: IpMeta {
            src,
            dst,
            hop_limit,
            src_mac: None,
            checksum_mode,
        },
        vrrp,
        trailer,
    })
}

fn shift_trailer(mut a: RxAdvert, by: usize) -> RxAdvert {
    if let Some(t) = &mut a.trailer {
        t.msg_at += by;
    }
    a
}

/// Append a signed `trailer` to the message `emit_vrrp` wrote into `buf[..msg_len]` for
/// `src` -> `dst`; over IPv6 the checksum is computed again, since it covers the trailer.
/// Returns the new length.
pub fn append_trailer_vrrp(
    buf: &mut [u8],
    msg_len: usize,
    trailer: &[u8; TRAILER_LEN],
    src: &IpAddr,
    dst: &IpAddr,
) -> Result<usize, EmitError> {
    let len = msg_len + TRAILER_LEN;
    let out = buf.get_mut(..len).ok_or(EmitError::BufferTooSmall)?;
    out[msg_len..].copy_from_slice(trailer);
    if src.is_ipv6() {
        Packet::new_unchecked(out).fill_checksum(src, dst, ChecksumMode::PseudoHeader);
    }
    Ok(len)
}

/// The VRRP message inside a frame `emit_advert_v4` / `emit_advert_v6` wrote (what
/// `vrrp::auth::sign` signs).
pub fn frame_message(frame: &[u8]) -> &[u8] {
    let at = match frame.get(ETHERNET_HEADER_LEN).map(|b| b >> 4) {
        Some(4) => ETHERNET_HEADER_LEN + IPV4_HEADER_LEN,
        _ => ETHERNET_HEADER_LEN + IPV6_HEADER_LEN,
    };
    frame.get(at..).unwrap_or(&[])
}

/// Append a signed `trailer` to the frame `emit_advert_v4` / `emit_advert_v6` wrote into
/// `buf[..frame_len]`: the IP length grows by the trailer (IPv4 header checksum refilled);
/// over IPv6 the VRRP checksum is computed again over message and trailer. Returns the new
/// frame length.
pub fn append_trailer_frame(
    buf: &mut [u8],
    frame_len: usize,
    trailer: &[u8; TRAILER_LEN],
) -> Result<usize, EmitError> {
    let len = frame_len + TRAILER_LEN;
    let out = buf.get_mut(..len).ok_or(EmitError::BufferTooSmall)?;
    out[frame_len..].copy_from_slice(trailer);
    let ip = &mut out[ETHERNET_HEADER_LEN..];
    match ip.first().map(|b| b >> 4) {
        Some(4) => {
            let mut p = Ipv4Packet::new_unchecked(ip);
            p.set_total_len(p.total_len() + TRAILER_LEN as u16);
            p.fill_checksum();
        }
        Some(6) => {
            let mut p = Ipv6Packet::new_unchecked(ip);
            p.set_payload_len(p.payload_len() + TRAILER_LEN as u16);
            let (src, dst) = (IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()));
            Packet::new_unchecked(p.payload_mut()).fill_checksum(
                &src,
                &dst,
                ChecksumMode::PseudoHeader,
            );
        }
        _ => return Err(EmitError::FamilyMismatch),
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::wire::{AddrList, Auth};
    use core::time::Duration;

    const R1_MAC: EthernetAddress = EthernetAddress([0x02, 0x77, 0, 0, 0, 0x11]);
    const R1: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 11);
    const R1_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x77, 0xff, 0xfe00, 0x11);
    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 254));
    const VIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x254));

    // keepalived 2.2.7, vrrpv2-ipv4-advert.pcap frame 1 (IP ID 1).
    static V2_FRAME: [u8; 54] = [
        0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x02, 0x77, 0x00, 0x00, 0x00, 0x11, 0x08, 0x00, 0x45,
        0xc0, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x3a, 0x0a, 0x4d, 0x00, 0x0b,
        0xe0, 0x00, 0x00, 0x12, 0x21, 0x01, 0x96, 0x01, 0x00, 0x01, 0x3d, 0xb1, 0x0a, 0x4d, 0x00,
        0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    // vrrpv3-ipv4-advert.pcap frame 1 (IP ID 1, advert_int 0.1 s).
    static V3_V4_FRAME: [u8; 46] = [
        0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x02, 0x77, 0x00, 0x00, 0x00, 0x11, 0x08, 0x00, 0x45,
        0xc0, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x42, 0x0a, 0x4d, 0x00, 0x0b,
        0xe0, 0x00, 0x00, 0x12, 0x31, 0x01, 0x96, 0x01, 0x00, 0x0a, 0x42, 0xc1, 0x0a, 0x4d, 0x00,
        0xfe,
    ];
    // vrrpv3-ipv6-advert.pcap frame 1 (flow label 0x1b7d1 chosen by the kernel).
    static V3_V6_FRAME: [u8; 78] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x12, 0x02, 0x77, 0x00, 0x00, 0x00, 0x11, 0x86, 0xdd, 0x6c,
        0x01, 0xb7, 0xd1, 0x00, 0x18, 0x70, 0xff, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x77, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x11, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x31, 0x01, 0x96, 0x01, 0x00, 0x64,
        0x3b, 0x27, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x02, 0x54,
    ];

    fn repr(version: Version, adver_int: u16, addr: IpAddr) -> VrrpRepr {
        let mut addrs = AddrList::new();
        addrs.push(addr).unwrap();
        VrrpRepr {
            version,
            vrid: 1,
            priority: 150,
            adver_int,
            auth: Auth::None,
            addrs,
        }
    }

    const MC: RxContext = RxContext { unicast: false };

    #[test]
    fn v2_frame_parses_and_reemits_byte_identical() {
        let a = parse_frame(&V2_FRAME, MC).unwrap();
        assert_eq!(a.vrrp.version, Version::V2);
        assert_eq!((a.vrrp.vrid, a.vrrp.priority), (1, 150));
        assert_eq!(a.vrrp.advert_interval(), Duration::from_secs(1));
        assert_eq!(a.ip.src, IpAddr::V4(R1));
        assert_eq!(a.ip.src_mac, Some(R1_MAC));
        assert_eq!(&a.vrrp.addrs[..], &[VIP]);
        assert_eq!(a.ip.checksum_mode, ChecksumMode::VrrpOnly);
        let mut buf = [0u8; 128];
        let r = repr(Version::V2, 1, VIP);
        let n = emit_advert_v4(&mut buf, &r, R1_MAC, R1, 1, ChecksumMode::VrrpOnly).unwrap();
        assert_eq!(&buf[..n], &V2_FRAME[..]);
    }

    #[test]
    fn v3_ipv4_frame_parses_and_reemits_byte_identical() {
        let a = parse_frame(&V3_V4_FRAME, MC).unwrap();
        assert_eq!(a.vrrp.version, Version::V3);
        assert_eq!(a.vrrp.advert_interval(), Duration::from_millis(100));
        assert_eq!(a.ip.checksum_mode, ChecksumMode::PseudoHeader);
        let mut buf = [0u8; 128];
        let r = repr(Version::V3, 10, VIP);
        let n = emit_advert_v4(&mut buf, &r, R1_MAC, R1, 1, ChecksumMode::PseudoHeader).unwrap();
        assert_eq!(&buf[..n], &V3_V4_FRAME[..]);
    }

    #[test]
    fn v3_ipv6_frame_parses_and_reemits_byte_identical() {
        let a = parse_frame(&V3_V6_FRAME, MC).unwrap();
        assert_eq!(a.ip.src, IpAddr::V6(R1_LL));
        assert_eq!(&a.vrrp.addrs[..], &[VIP6]);
        assert_eq!(a.vrrp.advert_interval(), Duration::from_secs(1));
        let mut buf = [0u8; 128];
        let r = repr(Version::V3, 100, VIP6);
        let n = emit_advert_v6(&mut buf, &r, R1_MAC, R1_LL, 0x1b7d1).unwrap();
        assert_eq!(&buf[..n], &V3_V6_FRAME[..]);
    }

    #[test]
    fn v3_ipv4_rfc9568_frame_round_trips_and_reports_mode_5_2_8() {
        let mut buf = [0u8; 128];
        let r = repr(Version::V3, 100, VIP);
        let n = emit_advert_v4(&mut buf, &r, R1_MAC, R1, 7, ChecksumMode::VrrpOnly).unwrap();
        let a = parse_frame(&buf[..n], MC).unwrap();
        assert_eq!(a.ip.checksum_mode, ChecksumMode::VrrpOnly);
        assert_eq!(&a.vrrp.addrs[..], &[VIP]);
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        let mut padded = [0u8; 60];
        padded[..46].copy_from_slice(&V3_V4_FRAME);
        assert!(parse_frame(&padded, MC).is_ok());
    }

    #[test]
    fn ttl_below_255_is_dropped_unless_unicast_7_1() {
        let mut f = V3_V4_FRAME;
        f[22] = 254;
        // Refill the IPv4 header checksum so TTL is the check that fails.
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.fill_checksum();
        assert_eq!(parse_frame(&f, MC), Err(DropReason::BadTtl));
        assert!(parse_frame(&f, RxContext { unicast: true }).is_ok());
        let mut f6 = V3_V6_FRAME;
        f6[21] = 1;
        assert_eq!(parse_frame(&f6, MC), Err(DropReason::BadTtl));
    }

    #[test]
    fn ip_level_drops() {
        let mut f = V3_V4_FRAME;
        f[12] = 0x08;
        f[13] = 0x06;
        assert_eq!(parse_frame(&f, MC), Err(DropReason::NotIp));
        let mut f = V3_V4_FRAME;
        f[24] ^= 0xff;
        assert_eq!(parse_frame(&f, MC), Err(DropReason::IpHeaderChecksum));
        let mut f = V3_V4_FRAME;
        f[23] = 17;
        Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
        assert_eq!(parse_frame(&f, MC), Err(DropReason::NotVrrp));
        let mut f = V3_V4_FRAME;
        f[20] = 0x20; // MF
        Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
        assert_eq!(parse_frame(&f, MC), Err(DropReason::IpFragment));
        assert_eq!(parse_frame(&f[..10], MC), Err(DropReason::FrameTruncated));
        assert_eq!(parse_frame(&f[..30], MC), Err(DropReason::IpMalformed));
        // IPv6 EtherType around an IPv4 packet.
        let mut f = V3_V4_FRAME;
        f[12] = 0x86;
        f[13] = 0xdd;
        assert_eq!(parse_frame(&f, MC), Err(DropReason::IpMalformed));
    }

    #[test]
    fn v2_simple_password_must_match_rfc3768_7_1() {
        let mut r = repr(Version::V2, 1, VIP);
        r.auth = Auth::simple(b"vrrp").unwrap();
        let mut buf = [0u8; 64];
        let n = emit_advert_v4(&mut buf, &r, R1_MAC, R1, 1, ChecksumMode::VrrpOnly).unwrap();
        let a = parse_frame(&buf[..n], MC).unwrap();
        let vips = [VIP];
        let mut i = inst(Version::V2, 1, &vips);
        assert_eq!(a.validate_for(&i), Err(DropReason::AuthMismatch));
        i.auth = Auth::simple(b"vrrq").unwrap();
        assert_eq!(a.validate_for(&i), Err(DropReason::AuthMismatch));
        i.auth = Auth::simple(b"vrrp").unwrap();
        assert_eq!(a.validate_for(&i), Ok(AddrListMatch::Match));
    }

    #[test]
    fn virtual_mac_is_rfc5798_7_3() {
        assert_eq!(
            virtual_mac(7, Family::Ipv4),
            EthernetAddress([0, 0, 0x5e, 0, 1, 7])
        );
        assert_eq!(
            virtual_mac(255, Family::Ipv6),
            EthernetAddress([0, 0, 0x5e, 0, 2, 255])
        );
    }

    #[test]
    fn emit_into_short_buffer_fails() {
        let mut buf = [0u8; 45];
        let r = repr(Version::V3, 10, VIP);
        assert_eq!(
            emit_advert_v4(&mut buf, &r, R1_MAC, R1, 1, ChecksumMode::PseudoHeader),
            Err(EmitError::BufferTooSmall)
        );
        assert_eq!(
            emit_advert_v6(&mut buf, &repr(Version::V3, 10, VIP6), R1_MAC, R1_LL, 0),
            Err(EmitError::BufferTooSmall)
        );
    }

    #[test]
    fn unicast_payload_only_matches_frame_payload() {
        let mut buf = [0u8; 64];
        let r = repr(Version::V3, 10, VIP);
        let n = emit_vrrp(
            &mut buf,
            &r,
            &IpAddr::V4(R1),
            &IpAddr::V4(VRRP_GROUP_V4),
            ChecksumMode::PseudoHeader,
        )
        .unwrap();
        assert_eq!(&buf[..n], &V3_V4_FRAME[34..]);
    }

    /// The advert an instance with these settings sends (`secs` in the version's unit
    /// converted from seconds).
    fn inst(version: Version, secs: u64, addrs: &[IpAddr]) -> VrrpRepr {
        VrrpRepr {
            version,
            vrid: 1,
            priority: 100,
            adver_int: match version {
                Version::V2 => secs as u16,
                Version::V3 => (secs * 100) as u16,
            },
            auth: Auth::None,
            addrs: AddrList::from_slice(addrs).unwrap(),
        }
    }

    #[test]
    fn validate_for_checks_in_rfc3768_7_1_order() {
        let a = parse_frame(&V2_FRAME, MC).unwrap();
        let vips = [VIP];
        assert_eq!(
            a.validate_for(&inst(Version::V2, 1, &vips)),
            Ok(AddrListMatch::Match)
        );
        let mut i = inst(Version::V2, 1, &vips);
        i.vrid = 2;
        assert_eq!(a.validate_for(&i), Err(DropReason::VridMismatch));
        assert_eq!(
            a.validate_for(&inst(Version::V3, 1, &vips)),
            Err(DropReason::VersionMismatch)
        );
        let mut i = inst(Version::V2, 2, &vips);
        i.auth = Auth::simple(b"pw").unwrap();
        // Auth is checked before the interval.
        assert_eq!(a.validate_for(&i), Err(DropReason::AuthMismatch));
        assert_eq!(
            a.validate_for(&inst(Version::V2, 2, &vips)),
            Err(DropReason::AdvertIntervalMismatch)
        );
    }

    #[test]
    fn address_list_mismatch_is_reported_7_1() {
        let a = parse_frame(&V3_V4_FRAME, MC).unwrap();
        let other = [IpAddr::V4(Ipv4Addr::new(10, 77, 0, 253))];
        assert_eq!(
            a.validate_for(&inst(Version::V3, 1, &other)),
            Ok(AddrListMatch::Mismatch)
        );
        // v3: a different interval is not a drop (RFC 5798 6.4.2 adopts the master's).
        assert_eq!(
            a.validate_for(&inst(Version::V3, 3, &[VIP])),
            Ok(AddrListMatch::Match)
        );
        let two = [VIP, other[0]];
        assert_eq!(
            a.validate_for(&inst(Version::V3, 1, &two)),
            Ok(AddrListMatch::Mismatch)
        );
    }
}
