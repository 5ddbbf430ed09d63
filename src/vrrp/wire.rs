//! The VRRP advertisement itself (the IP payload), VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798 as
//! updated by RFC 9568), in the smoltcp `wire` style: a zero-copy [`Packet`] view over a byte
//! buffer and a plain [`VrrpRepr`] with `parse`/`emit`/`buffer_len`. Validation of the message
//! lives in [`VrrpRepr::parse`]; the IP and Ethernet layers around it live in `frame.rs`.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::wire::{checksum, IpProtocol};

/// IP protocol number of VRRP (IANA). libc has no constant for it.
pub const IPPROTO_VRRP: u8 = 112;
/// RFC 5798 5.1.1.2: the IPv4 multicast group.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// RFC 5798 5.1.2.2: the IPv6 multicast group.
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Ethernet address of 224.0.0.18 (RFC 1112 6.4 mapping).
pub const VRRP_MAC_V4: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
/// Ethernet address of ff02::12 (RFC 2464 7 mapping).
pub const VRRP_MAC_V6: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x12];
/// RFC 5798 5.1.1.3 / 5.1.2.3: TTL / hop limit sent, and required on receive.
pub const VRRP_TTL: u8 = 255;
/// DSCP CS6 ("network control"), as keepalived sets: the whole TOS / traffic class byte.
pub const VRRP_TOS: u8 = 0xc0;
/// Most virtual addresses one advertisement may carry here. The wire allows 255, but a larger
/// list than this is a configuration nobody runs on a home router, and a fixed bound keeps the
/// receive path allocation-free.
pub const MAX_ADDRS: usize = 20;
/// Fixed part of every VRRP message (both versions).
pub const HEADER_LEN: usize = 8;
/// VRRPv2 authentication data trailing the address list (RFC 3768 5.3.10).
pub const AUTH_DATA_LEN: usize = 8;
/// The only message type (RFC 5798 5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// The v3 interval is a 12-bit field (RFC 5798 5.2.7).
pub const MAX_ADVER_INT_V3: u16 = 0x0fff;

/// The address list type every layer shares.
pub type AddrList = heapless::Vec<IpAddr, MAX_ADDRS>;

/// Protocol version. v2 exists only for IPv4 (RFC 3768); v3 for both families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: integer-second intervals, Skew_Time = (256 - Priority) / 256 s.
    V2,
    /// RFC 5798: centisecond intervals, Skew_Time scales with Master_Adver_Interval.
    V3,
}

impl Version {
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

pub use crate::base::Family;

/// Which data a VRRPv3-over-IPv4 checksum covers. RFC 5798 5.2.8 includes the IP pseudo-header
/// (keepalived and FRR do that); RFC 9568 (and Cisco, Juniper) cover only the VRRP message.
/// VRRPv2 never uses the pseudo-header and VRRPv3 over IPv6 always does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumMode {
    PseudoHeader,
    VrrpOnly,
}

/// VRRPv2 authentication (RFC 3768 5.3.6). v3 removed authentication, so v3 is always `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Auth {
    None,
    /// Type 1: a clear-text password, up to 8 bytes, zero-padded on the wire.
    Simple([u8; AUTH_DATA_LEN]),
}

impl Auth {
    /// A simple-text password from its configured string, zero-padded; `None` if longer
    /// than 8 bytes (the configuration layer reports that).
    pub fn simple(password: &[u8]) -> Option<Auth> {
        if password.len() > AUTH_DATA_LEN {
            return None;
        }
        let mut data = [0u8; AUTH_DATA_LEN];
        data[..password.len()].copy_from_slice(password);
        Some(Auth::Simple(data))
    }

    const fn type_number(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Simple(_) => 1,
        }
    }
}

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $name:ident => $text:literal,)*) => {
        /// Every reason a received packet is discarded, one variant each, so the daemon can count
        /// them in [`DropCounters`] and the status output can name them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[$doc])* $name,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            pub const COUNT: usize = DropReason::ALL.len();

            /// Short stable name for logs and status output.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(DropReason::$name => $text,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet header.
    FrameTruncated => "frame-truncated",
    /// EtherType is neither IPv4 nor IPv6.
    NotIp => "not-ip",
    /// IPv4/IPv6 header truncated or inconsistent (bad version, IHL, total/payload length).
    IpMalformed => "ip-malformed",
    /// IPv4 header checksum wrong.
    IpHeaderChecksum => "ip-header-checksum",
    /// An IPv4 fragment: adverts are tiny and are never fragmented by a conforming sender.
    IpFragment => "ip-fragment",
    /// IP protocol / next header is not 112 (IPv6 extension headers included: VRRP senders use none).
    NotVrrp => "not-vrrp",
    /// RFC 5798 7.1 / RFC 3768 7.1: TTL / hop limit is not 255 (not checked for unicast peers).
    BadTtl => "bad-ttl",
    /// Shorter than the 8-byte VRRP header.
    Truncated => "truncated",
    /// RFC 5798 7.1: version field is neither 2 nor 3.
    BadVersion => "bad-version",
    /// VRRPv2 carried over IPv6 (RFC 3768 is IPv4 only).
    V2OverIpv6 => "v2-over-ipv6",
    /// RFC 5798 7.1: checksum wrong (for v3/IPv4: wrong in both modes).
    BadChecksum => "bad-checksum",
    /// RFC 5798 5.2.2: type is not ADVERTISEMENT.
    BadType => "bad-type",
    /// RFC 5798 7.1: the message length does not match the address count.
    LengthMismatch => "length-mismatch",
    /// More than [`MAX_ADDRS`] addresses.
    TooManyAddrs => "too-many-addrs",
    /// RFC 3768 5.3.6: auth type 2 (IP Authentication Header) is not supported.
    AuthAh => "auth-ah",
    /// RFC 3768 5.3.6: auth type other than 0, 1, 2.
    AuthUnknownType => "auth-unknown-type",
    /// RFC 3768 7.1: VRID not configured on this interface (the caller's demux).
    VridMismatch => "vrid-mismatch",
    /// The instance runs the other protocol version.
    VersionMismatch => "version-mismatch",
    /// RFC 3768 7.1: auth type or password differs from the instance's.
    AuthMismatch => "auth-mismatch",
    /// RFC 3768 7.1: VRRPv2 advert interval differs from the instance's.
    AdvertIntervalMismatch => "advert-interval-mismatch",
    /// The frame carried an 802.1Q/802.1ad tag: it belongs to another VLAN on the same wire,
    /// whose hosts are not on this instance's link (the kernel strips the tag before the
    /// packet socket sees the frame, so without this check it would pass as untagged).
    VlanTagged => "vlan-tagged",
    /// Link-layer destination is another host's MAC (`PACKET_OTHERHOST`: promiscuous mode,
    /// a bridge port): not addressed to us at all.
    OtherHost => "other-host",
    /// The IP source is our own address: a reflection or a forgery, never a peer.
    OwnAddress => "own-address",
    /// The IP source is unspecified (0.0.0.0/8, `::`): no router sends from there.
    UnspecifiedSource => "unspecified-source",
    /// The IP source is a loopback address (127/8, `::1`): it never arrives on a link.
    LoopbackSource => "loopback-source",
    /// The IP source is a multicast address (224/4, ff00::/8): a group never sends.
    MulticastSource => "multicast-source",
    /// The IP source is the limited broadcast address 255.255.255.255.
    BroadcastSource => "broadcast-source",
    /// The IP source is one of the instance's own VIPs, at a priority other than the
    /// address owner's (255) or a resignation (0): while we hold the VIP it is our own
    /// address, and only its owner sends from it (RFC 5798 3).
    OwnVipSource => "own-vip-source",
    /// Sent to one of our unicast addresses, but the instance runs multicast (no
    /// `unicast_peer`): RFC 5798 5.1.1.2 sends adverts to the group only.
    UnicastToMulticastInstance => "unicast-to-multicast-instance",
    /// Sent to the multicast group, but the instance talks to its `unicast_peer`s only.
    MulticastToUnicastInstance => "multicast-to-unicast-instance",
    /// Unicast advert whose source is not a configured `unicast_peer` (keepalived's
    /// `check_unicast_src`, always on here).
    NotAPeer => "not-a-peer",
    /// RFC 5798 5.2.7 / RFC 3768 5.3.7: Max Adver Int / Adver Int of 0.
    ZeroInterval => "zero-interval",
    /// RFC 5798 5.2.5 / RFC 3768 5.3.5: an advert must list at least one address.
    NoAddresses => "no-addresses",
    /// RFC 5798 7.1 / RFC 3768 7.1: the address list differs from ours (count or contents);
    /// dropped as keepalived 2.2.7 drops it.
    AddrListMismatch => "addr-list-mismatch",
    /// `auth_hmac` refused the advert (`vrrp::auth::AuthReject`: missing trailer, malformed,
    /// unknown key ID, bad MAC, stale, replayed; the instance's `auth_hmac` status counts
    /// each). One reason here, so the per-instance counters stay one word larger.
    AuthRejected => "auth-rejected",
}

/// Per-reason drop counters: plain `u32`s (no atomics: 32-bit MIPS/ARM targets), saturating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u32; DropReason::COUNT],
}

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters::new()
    }
}

impl DropCounters {
    pub const fn new() -> Self {
        DropCounters {
            counts: [0; DropReason::COUNT],
        }
    }

    pub fn record(&mut self, reason: DropReason) {
        let c = &mut self.counts[reason as usize];
        *c = c.saturating_add(1);
    }

    pub fn get(&self, reason: DropReason) -> u32 {
        self.counts[reason as usize]
    }

    /// Adds `other`'s counts to ours (a sum over interfaces or instances).
    pub fn add(&mut self, other: &DropCounters) {
        for (c, o) in self.counts.iter_mut().zip(other.counts.iter()) {
            *c = c.saturating_add(*o);
        }
    }

    pub fn total(&self) -> u32 {
        self.counts.iter().fold(0u32, |a, c| a.saturating_add(*c))
    }

    /// Every reason with its count, zeros included, in [`DropReason::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u32)> + '_ {
        DropReason::ALL.iter().map(move |r| (*r, self.get(*r)))
    }
}

/// Why an advertisement could not be emitted (caller bugs or configuration the layer above
/// should have rejected; never input-derived).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitError {
    BufferTooSmall,
    /// An address in the list, or the source/destination, is of the other family.
    FamilyMismatch,
    /// VRRPv2 over IPv6, or authentication on v3.
    VersionMismatch,
    /// Interval does not fit the field (v2: 1..=255 s, v3: 1..=4095 cs).
    BadInterval,
}

/// A zero-copy view of a VRRP message.
///
/// VRRPv3 (RFC 5798 5.1, RFC 9568 5.1):
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |(rsvd) |     Max Adver Int     |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// +                                                               +
/// |                       IPvX Address(es)                        |
/// +                                                               +
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// VRRPv2 (RFC 3768 5.1), IPv4 only:
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Auth Type   |   Adver Int   |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address (1)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                            .........                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address (n)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (1)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (2)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    pub type Field = core::ops::Range<usize>;

    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v2: auth type; v3: high nibble reserved, low nibble the top of Max Adver Int.
    pub const AUTH_TYPE: usize = 4;
    /// v2: Adver Int (seconds).
    pub const ADVER_INT_V2: usize = 5;
    /// v3: 4 reserved bits + 12-bit Max Adver Int (centiseconds).
    pub const RSVD_MAX_ADVER_INT: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const ADDRS: usize = 8;
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer, checking it holds at least the fixed header, so every fixed-field
    /// getter is safe. The address list is checked against the count by [`VrrpRepr::parse`],
    /// which knows the family.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, DropReason> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    pub fn check_len(&self) -> Result<(), DropReason> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(DropReason::Truncated)
        } else {
            Ok(())
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Length of the message this version, family and count say it has.
    pub fn expected_len(&self, family: Family) -> usize {
        let mut len = HEADER_LEN + usize::from(self.addr_count()) * family.addr_len();
        if self.version() == 2 {
            len += AUTH_DATA_LEN;
        }
        len
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    pub fn addr_count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// v2 only.
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }

    /// v2 only: seconds.
    pub fn adver_int_v2(&self) -> u8 {
        self.buffer.as_ref()[field::ADVER_INT_V2]
    }

    /// v3 only: centiseconds; the reserved bits are ignored on receive (RFC 5798 5.2.7).
    pub fn max_adver_int(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::RSVD_MAX_ADVER_INT];
        u16::from_be_bytes([b[0], b[1]]) & MAX_ADVER_INT_V3
    }

    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The `index`-th address of the list (panics past the buffer: check the length first).
    pub fn addr(&self, family: Family, index: usize) -> IpAddr {
        let start = field::ADDRS + index * family.addr_len();
        let b = &self.buffer.as_ref()[start..start + family.addr_len()];
        match family {
            Family::Ipv4 => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
            Family::Ipv6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(b);
                IpAddr::V6(Ipv6Addr::from(o))
            }
        }
    }

    /// v2 only: the 8 authentication bytes after the address list.
    pub fn auth_data(&self) -> [u8; AUTH_DATA_LEN] {
        let start = field::ADDRS + usize::from(self.addr_count()) * Family::Ipv4.addr_len();
        let mut d = [0u8; AUTH_DATA_LEN];
        d.copy_from_slice(&self.buffer.as_ref()[start..start + AUTH_DATA_LEN]);
        d
    }

    /// Whether the checksum is right under `mode` for a message sent from `src` to `dst`.
    /// RFC 5798 5.2.8 / RFC 3768 5.3.8: the one's complement sum over the covered data,
    /// checksum field included, is all ones.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr, mode: ChecksumMode) -> bool {
        self.verify_checksum_with(&[], src, dst, mode)
    }

    /// [`Packet::verify_checksum`] over the message followed by `tail`: an IPv6 transport
    /// checksum covers the whole payload, an authentication trailer included
    /// (`vrrp::auth`). The message length is even, so the two sums join without a shift.
    pub fn verify_checksum_with(
        &self,
        tail: &[u8],
        src: &IpAddr,
        dst: &IpAddr,
        mode: ChecksumMode,
    ) -> bool {
        let data = self.buffer.as_ref();
        let len = data.len() + tail.len();
        checksum::combine(&[
            pseudo_sum(src, dst, len, mode),
            checksum::data(data),
            checksum::data(tail),
        ]) == !0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_version_type(&mut self, version: u8, msg_type: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = (version << 4) | (msg_type & 0x0f);
    }

    pub fn set_vrid(&mut self, value: u8) {
        self.buffer.as_mut()[field::VRID] = value;
    }

    pub fn set_priority(&mut self, value: u8) {
        self.buffer.as_mut()[field::PRIORITY] = value;
    }

    pub fn set_addr_count(&mut self, value: u8) {
        self.buffer.as_mut()[field::COUNT] = value;
    }

    pub fn set_auth_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::AUTH_TYPE] = value;
    }

    pub fn set_adver_int_v2(&mut self, value: u8) {
        self.buffer.as_mut()[field::ADVER_INT_V2] = value;
    }

    /// v3: writes the reserved bits as zero (RFC 5798 5.2.6).
    pub fn set_max_adver_int(&mut self, value: u16) {
        let v = (value & MAX_ADVER_INT_V3).to_be_bytes();
        self.buffer.as_mut()[field::RSVD_MAX_ADVER_INT].copy_from_slice(&v);
    }

    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_addr(&mut self, index: usize, addr: &IpAddr) {
        let start = field::ADDRS + index * Family::of(addr).addr_len();
        let buf = self.buffer.as_mut();
        match addr {
            IpAddr::V4(a) => buf[start..start + 4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => buf[start..start + 16].copy_from_slice(&a.octets()),
        }
    }

    pub fn set_auth_data(&mut self, data: &[u8; AUTH_DATA_LEN]) {
        let start = field::ADDRS + usize::from(self.addr_count()) * Family::Ipv4.addr_len();
        self.buffer.as_mut()[start..start + AUTH_DATA_LEN].copy_from_slice(data);
    }

    /// Compute and store the checksum over the whole buffer (which must be exactly the message).
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr, mode: ChecksumMode) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let sum =
            checksum::combine(&[pseudo_sum(src, dst, data.len(), mode), checksum::data(data)]);
        self.set_checksum(!sum);
    }
}

/// Uncomplemented sum of the pseudo-header, or 0 when the mode does not cover it. A family
/// mix of src/dst cannot come from a real IP header; it contributes nothing.
fn pseudo_sum(src: &IpAddr, dst: &IpAddr, len: usize, mode: ChecksumMode) -> u16 {
    if mode == ChecksumMode::VrrpOnly {
        return 0;
    }
    let proto = IpProtocol::Unknown(IPPROTO_VRRP);
    let len = len as u32;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_header_v4(s, d, proto, len),
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_header_v6(s, d, proto, len),
        _ => 0,
    }
}

/// A VRRP advertisement as values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpRepr {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// The interval field in the version's own unit: v2 seconds (Adver Int, 8 bits),
    /// v3 centiseconds (Max Adver Int, 12 bits). [`VrrpRepr::advert_interval`] converts.
    pub adver_int: u16,
    /// v2 only; always `Auth::None` for v3.
    pub auth: Auth,
    pub addrs: AddrList,
}

impl VrrpRepr {
    /// Parse and validate a message received from `src` to `dst` (the IP header's addresses,
    /// which give the family and the pseudo-header). Returns the checksum mode that matched.
    ///
    /// Checks in RFC 5798 7.1 / RFC 3768 7.1 order, as far as they need no instance state:
    /// version, checksum, type, length against count, then what this implementation supports
    /// (address count, authentication type). The checksum covers the whole IP payload, so it
    /// can be checked before the count is trusted.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) -> Result<(VrrpRepr, ChecksumMode), DropReason> {
        Self::parse_with_tail(packet, &[], src, dst)
    }

    /// [`VrrpRepr::parse`] of a message followed in the IP payload by `tail` (an
    /// authentication trailer, `vrrp::auth`): the IPv6 checksum covers it, the IPv4 one
    /// (both modes, both versions) does not, as keepalived 2.4 computes them.
    pub fn parse_with_tail<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        tail: &[u8],
        src: &IpAddr,
        dst: &IpAddr,
    ) -> Result<(VrrpRepr, ChecksumMode), DropReason> {
        packet.check_len()?;
        let family = Family::of(src);
        if Family::of(dst) != family {
            return Err(DropReason::IpMalformed);
        }
        // RFC 5798 7.1: version. Both are parsed; the instance decides which it accepts.
        let version = match packet.version() {
            2 => Version::V2,
            3 => Version::V3,
            _ => return Err(DropReason::BadVersion),
        };
        if version == Version::V2 && family == Family::Ipv6 {
            return Err(DropReason::V2OverIpv6);
        }
        // RFC 5798 7.1 / RFC 9568 5.2.8: checksum. v3 over IPv4 is sent both ways in the
        // field, so accept either and report which one it was.
        let mode = match (version, family) {
            (Version::V2, _) => {
                if !packet.verify_checksum(src, dst, ChecksumMode::VrrpOnly) {
                    return Err(DropReason::BadChecksum);
                }
                ChecksumMode::VrrpOnly
            }
            (Version::V3, Family::Ipv6) => {
                if !packet.verify_checksum_with(tail, src, dst, ChecksumMode::PseudoHeader) {
                    return Err(DropReason::BadChecksum);
                }
                ChecksumMode::PseudoHeader
            }
            (Version::V3, Family::Ipv4) => {
                if packet.verify_checksum(src, dst, ChecksumMode::PseudoHeader) {
                    ChecksumMode::PseudoHeader
                } else if packet.verify_checksum(src, dst, ChecksumMode::VrrpOnly) {
                    ChecksumMode::VrrpOnly
                } else {
                    return Err(DropReason::BadChecksum);
                }
            }
        };
        // RFC 5798 5.2.2: unknown types are discarded.
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(DropReason::BadType);
        }
        // RFC 5798 7.1: the packet holds the complete message, fixed fields, address list
        // and (v2) authentication data, and nothing else.
        if packet.buffer.as_ref().len() != packet.expected_len(family) {
            return Err(DropReason::LengthMismatch);
        }
        let count = usize::from(packet.addr_count());
        if count > MAX_ADDRS {
            return Err(DropReason::TooManyAddrs);
        }
        let (adver_int, auth) = match version {
            // RFC 3768 5.3.6: 0 none, 1 simple text password, 2 IP AH (removed from the
            // protocol by RFC 5798 and not implemented by keepalived's default build).
            Version::V2 => {
                let auth = match packet.auth_type() {
                    0 => Auth::None,
                    1 => Auth::Simple(packet.auth_data()),
                    2 => return Err(DropReason::AuthAh),
                    _ => return Err(DropReason::AuthUnknownType),
                };
                (u16::from(packet.adver_int_v2()), auth)
            }
            Version::V3 => (packet.max_adver_int(), Auth::None),
        };
        // RFC 3768 5.3.7 / RFC 5798 5.2.7: an interval of 0 is no interval. A backup that
        // learned it (v3, RFC 5798 6.4.2) would compute Master_Down_Interval = 0 and take
        // over the moment the advert was processed; nothing could re-emit it either.
        if adver_int == 0 {
            return Err(DropReason::ZeroInterval);
        }
        let mut addrs = AddrList::new();
        for i in 0..count {
            // Cannot fail: count <= MAX_ADDRS was checked above.
            let _ = addrs.push(packet.addr(family, i));
        }
        Ok((
            VrrpRepr {
                version,
                vrid: packet.vrid(),
                priority: packet.priority(),
                adver_int,
                auth,
                addrs,
            },
            mode,
        ))
    }

    /// Length of the emitted message for `family`.
    pub fn buffer_len(&self) -> usize {
        let family = self.addrs.first().map_or(Family::Ipv4, Family::of);
        let mut len = HEADER_LEN + self.addrs.len() * family.addr_len();
        if self.version == Version::V2 {
            len += AUTH_DATA_LEN;
        }
        len
    }

    /// The advertisement interval as a duration.
    pub fn advert_interval(&self) -> core::time::Duration {
        match self.version {
            Version::V2 => core::time::Duration::from_secs(u64::from(self.adver_int)),
            Version::V3 => core::time::Duration::from_millis(u64::from(self.adver_int) * 10),
        }
    }

    /// Check this repr can be sent in `family`: every address of that family, v2 only over
    /// IPv4 and without an interval beyond its 8 bits, v3 without authentication and an
    /// interval within 12 bits. An interval of 0 is rejected too: it would make a receiver's
    /// Master_Down_Interval zero.
    pub fn check_emit(&self, family: Family) -> Result<(), EmitError> {
        if self.addrs.iter().any(|a| Family::of(a) != family) {
            return Err(EmitError::FamilyMismatch);
        }
        match self.version {
            Version::V2 => {
                if family != Family::Ipv4 {
                    return Err(EmitError::VersionMismatch);
                }
                if self.adver_int == 0 || self.adver_int > 255 {
                    return Err(EmitError::BadInterval);
                }
            }
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(EmitError::VersionMismatch);
                }
                if self.adver_int == 0 || self.adver_int > MAX_ADVER_INT_V3 {
                    return Err(EmitError::BadInterval);
                }
            }
        }
        Ok(())
    }

    /// Write the message into `packet`, whose buffer must be exactly `buffer_len()` long
    /// (the checksum covers the whole buffer), then fill the checksum for `src` -> `dst`.
    /// `mode` matters only for v3 over IPv4; v2 never and v3/IPv6 always use the
    /// pseudo-header. Call [`VrrpRepr::check_emit`] first; this writes what it is given.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: &IpAddr,
        dst: &IpAddr,
        mode: ChecksumMode,
    ) {
        packet.set_version_type(self.version.number(), TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        packet.set_addr_count(self.addrs.len() as u8);
        for (i, a) in self.addrs.iter().enumerate() {
            packet.set_addr(i, a);
        }
        let mode = match self.version {
            Version::V2 => {
                packet.set_auth_type(self.auth.type_number());
                packet.set_adver_int_v2(self.adver_int.min(255) as u8);
                match &self.auth {
                    Auth::None => packet.set_auth_data(&[0; AUTH_DATA_LEN]),
                    Auth::Simple(d) => packet.set_auth_data(d),
                }
                ChecksumMode::VrrpOnly
            }
            Version::V3 => {
                packet.set_max_adver_int(self.adver_int);
                match src {
                    IpAddr::V6(_) => ChecksumMode::PseudoHeader,
                    IpAddr::V4(_) => mode,
                }
            }
        };
        packet.fill_checksum(src, dst, mode);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 11));
    const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 254));
    const R1_LL: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0x77, 0xff, 0xfe00, 0x11));
    const GROUP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));
    const VIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x254));

    // keepalived 2.2.7, vrrpv2-ipv4-advert.pcap frame 1, VRRP part.
    static V2_BYTES: [u8; 20] = [
        0x21, 0x01, 0x96, 0x01, 0x00, 0x01, 0x3d, 0xb1, 0x0a, 0x4d, 0x00, 0xfe, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    // vrrpv3-ipv4-advert.pcap frame 1, VRRP part (pseudo-header checksum).
    static V3_V4_BYTES: [u8; 12] = [
        0x31, 0x01, 0x96, 0x01, 0x00, 0x0a, 0x42, 0xc1, 0x0a, 0x4d, 0x00, 0xfe,
    ];
    // vrrpv3-ipv6-advert.pcap frame 1, VRRP part.
    static V3_V6_BYTES: [u8; 24] = [
        0x31, 0x01, 0x96, 0x01, 0x00, 0x64, 0x3b, 0x27, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x54,
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

    fn emit_to_vec(r: &VrrpRepr, src: &IpAddr, dst: &IpAddr, mode: ChecksumMode) -> Vec<u8> {
        let mut buf = vec![0xaa; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]), src, dst, mode);
        buf
    }

    #[test]
    fn v2_advert_parses_and_reemits_rfc3768_5_1() {
        let p = Packet::new_checked(&V2_BYTES[..]).unwrap();
        let (r, mode) = VrrpRepr::parse(&p, &R1, &GROUP).unwrap();
        assert_eq!(r, repr(Version::V2, 1, VIP));
        assert_eq!(mode, ChecksumMode::VrrpOnly);
        assert_eq!(r.advert_interval(), core::time::Duration::from_secs(1));
        assert_eq!(
            emit_to_vec(&r, &R1, &GROUP, ChecksumMode::PseudoHeader),
            V2_BYTES
        );
    }

    #[test]
    fn v3_ipv4_advert_with_pseudo_header_rfc5798_5_2_8() {
        let p = Packet::new_checked(&V3_V4_BYTES[..]).unwrap();
        let (r, mode) = VrrpRepr::parse(&p, &R1, &GROUP).unwrap();
        assert_eq!(r, repr(Version::V3, 10, VIP));
        assert_eq!(mode, ChecksumMode::PseudoHeader);
        assert_eq!(r.advert_interval(), core::time::Duration::from_millis(100));
        assert_eq!(
            emit_to_vec(&r, &R1, &GROUP, ChecksumMode::PseudoHeader),
            V3_V4_BYTES
        );
    }

    #[test]
    fn v3_ipv4_advert_without_pseudo_header_rfc9568_5_2_8() {
        let r = repr(Version::V3, 100, VIP);
        let bytes = emit_to_vec(&r, &R1, &GROUP, ChecksumMode::VrrpOnly);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert!(!p.verify_checksum(&R1, &GROUP, ChecksumMode::PseudoHeader));
        let (back, mode) = VrrpRepr::parse(&p, &R1, &GROUP).unwrap();
        assert_eq!(back, r);
        assert_eq!(mode, ChecksumMode::VrrpOnly);
    }

    #[test]
    fn v3_ipv6_advert_always_with_pseudo_header_rfc5798_5_2_8() {
        let p = Packet::new_checked(&V3_V6_BYTES[..]).unwrap();
        let (r, mode) = VrrpRepr::parse(&p, &R1_LL, &GROUP6).unwrap();
        assert_eq!(r, repr(Version::V3, 100, VIP6));
        assert_eq!(mode, ChecksumMode::PseudoHeader);
        // The mode argument cannot turn the pseudo-header off for IPv6.
        assert_eq!(
            emit_to_vec(&r, &R1_LL, &GROUP6, ChecksumMode::VrrpOnly),
            V3_V6_BYTES
        );
        // The same bytes checksummed without the pseudo-header are not accepted over IPv6.
        let only = emit_to_vec(&r, &R1, &GROUP, ChecksumMode::VrrpOnly);
        let p = Packet::new_checked(&only[..]).unwrap();
        assert_eq!(
            VrrpRepr::parse(&p, &R1_LL, &GROUP6),
            Err(DropReason::BadChecksum)
        );
    }

    #[test]
    fn zero_interval_is_dropped_5_2_7() {
        // Found by the vrrp_frame fuzz target: it parsed, a v3 backup would learn a
        // Master_Down_Interval of 0 from it, and it could not be emitted again.
        for (version, mode) in [
            (Version::V2, ChecksumMode::VrrpOnly),
            (Version::V3, ChecksumMode::PseudoHeader),
        ] {
            let mut b = emit_to_vec(&repr(version, 1, VIP), &R1, &GROUP, mode);
            let mut p = Packet::new_unchecked(&mut b[..]);
            match version {
                Version::V2 => p.set_adver_int_v2(0),
                Version::V3 => p.set_max_adver_int(0),
            }
            p.fill_checksum(&R1, &GROUP, mode);
            let p = Packet::new_checked(&b[..]).unwrap();
            assert_eq!(
                VrrpRepr::parse(&p, &R1, &GROUP),
                Err(DropReason::ZeroInterval),
                "{version:?}"
            );
        }
    }

    #[test]
    fn corrupted_checksum_is_dropped_7_1() {
        let mut b = V3_V4_BYTES;
        b[7] ^= 1;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            VrrpRepr::parse(&p, &R1, &GROUP),
            Err(DropReason::BadChecksum)
        );
        // A different source changes the pseudo-header, so the keepalived checksum fails
        // and the bytes are not a valid VRRP-only checksum either.
        let p = Packet::new_checked(&V3_V4_BYTES[..]).unwrap();
        let other = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 12));
        assert_eq!(
            VrrpRepr::parse(&p, &other, &GROUP),
            Err(DropReason::BadChecksum)
        );
    }

    /// Re-checksum a mutated message so the check under test is the one that fails.
    fn refill(b: &mut [u8], src: &IpAddr, dst: &IpAddr, mode: ChecksumMode) {
        Packet::new_unchecked(b).fill_checksum(src, dst, mode);
    }

    #[test]
    fn unknown_version_is_dropped_7_1() {
        let mut b = V3_V4_BYTES;
        b[0] = 0x41;
        refill(&mut b, &R1, &GROUP, ChecksumMode::PseudoHeader);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            VrrpRepr::parse(&p, &R1, &GROUP),
            Err(DropReason::BadVersion)
        );
    }

    #[test]
    fn v2_over_ipv6_is_dropped() {
        let mut b = V3_V6_BYTES;
        b[0] = 0x21;
        refill(&mut b, &R1_LL, &GROUP6, ChecksumMode::PseudoHeader);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            VrrpRepr::parse(&p, &R1_LL, &GROUP6),
            Err(DropReason::V2OverIpv6)
        );
    }

    #[test]
    fn unknown_type_is_dropped_5_2_2() {
        let mut b = V3_V4_BYTES;
        b[0] = 0x32;
        refill(&mut b, &R1, &GROUP, ChecksumMode::PseudoHeader);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(VrrpRepr::parse(&p, &R1, &GROUP), Err(DropReason::BadType));
    }

    #[test]
    fn count_not_matching_length_is_dropped_7_1() {
        let mut b = V3_V4_BYTES;
        b[3] = 2;
        refill(&mut b, &R1, &GROUP, ChecksumMode::PseudoHeader);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            VrrpRepr::parse(&p, &R1, &GROUP),
            Err(DropReason::LengthMismatch)
        );
        // Trailing bytes after the list are a mismatch too.
        let mut long = [0u8; 16];
        long[..12].copy_from_slice(&V3_V4_BYTES);
        refill(&mut long, &R1, &GROUP, ChecksumMode::PseudoHeader);
        let p = Packet::new_checked(&long[..]).unwrap();
        assert_eq!(
            VrrpRepr::parse(&p, &R1, &GROUP),
            Err(DropReason::LengthMismatch)
        );
    }

    #[test]
    fn more_than_max_addrs_is_dropped() {
        let n = MAX_ADDRS + 1;
        let mut b = vec![0u8; HEADER_LEN + 4 * n];
        b[..8].copy_from_slice(&V3_V4_BYTES[..8]);
        b[3] = n as u8;
        refill(&mut b, &R1, &GROUP, ChecksumMode::PseudoHeader);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            VrrpRepr::parse(&p, &R1, &GROUP),
            Err(DropReason::TooManyAddrs)
        );
    }

    #[test]
    fn max_addrs_round_trip() {
        let mut r = repr(Version::V3, 100, VIP);
        r.addrs.clear();
        for i in 0..MAX_ADDRS {
            r.addrs
                .push(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8)))
                .unwrap();
        }
        let b = emit_to_vec(&r, &R1, &GROUP, ChecksumMode::PseudoHeader);
        assert_eq!(b.len(), HEADER_LEN + 4 * MAX_ADDRS);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(VrrpRepr::parse(&p, &R1, &GROUP).unwrap().0, r);
    }

    #[test]
    fn v2_auth_ah_is_rejected_with_own_reason_rfc3768_5_3_6() {
        let mut b = V2_BYTES;
        b[4] = 2;
        refill(&mut b, &R1, &GROUP, ChecksumMode::VrrpOnly);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(VrrpRepr::parse(&p, &R1, &GROUP), Err(DropReason::AuthAh));
        b[4] = 7;
        refill(&mut b, &R1, &GROUP, ChecksumMode::VrrpOnly);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            VrrpRepr::parse(&p, &R1, &GROUP),
            Err(DropReason::AuthUnknownType)
        );
    }

    #[test]
    fn v2_simple_password_round_trip_rfc3768_5_3_6_1() {
        let mut r = repr(Version::V2, 3, VIP);
        r.auth = Auth::simple(b"secret").unwrap();
        let b = emit_to_vec(&r, &R1, &GROUP, ChecksumMode::VrrpOnly);
        assert_eq!(b[4], 1);
        assert_eq!(&b[12..20], b"secret\0\0");
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(VrrpRepr::parse(&p, &R1, &GROUP).unwrap().0, r);
        assert_eq!(Auth::simple(b"123456789"), None);
    }

    #[test]
    fn v3_reserved_bits_ignored_on_receive_and_zero_on_send_5_2_6() {
        let mut b = V3_V4_BYTES;
        b[4] |= 0xf0;
        refill(&mut b, &R1, &GROUP, ChecksumMode::PseudoHeader);
        let p = Packet::new_checked(&b[..]).unwrap();
        let (r, _) = VrrpRepr::parse(&p, &R1, &GROUP).unwrap();
        assert_eq!(r.adver_int, 10);
        let mut p = Packet::new_unchecked([0u8; 8]);
        p.set_max_adver_int(0xffff);
        assert_eq!(p.into_inner()[4..6], [0x0f, 0xff]);
    }

    #[test]
    fn short_buffer_is_truncated() {
        assert_eq!(
            Packet::new_checked(&V2_BYTES[..7]).err(),
            Some(DropReason::Truncated)
        );
    }

    #[test]
    fn check_emit_rejects_what_the_wire_cannot_carry() {
        assert_eq!(
            repr(Version::V2, 1, VIP6).check_emit(Family::Ipv6),
            Err(EmitError::VersionMismatch)
        );
        assert_eq!(
            repr(Version::V3, 1, VIP6).check_emit(Family::Ipv4),
            Err(EmitError::FamilyMismatch)
        );
        assert_eq!(
            repr(Version::V2, 256, VIP).check_emit(Family::Ipv4),
            Err(EmitError::BadInterval)
        );
        assert_eq!(
            repr(Version::V3, 4096, VIP).check_emit(Family::Ipv4),
            Err(EmitError::BadInterval)
        );
        assert_eq!(
            repr(Version::V3, 4095, VIP).check_emit(Family::Ipv4),
            Ok(())
        );
    }

    #[test]
    fn drop_counters_count_per_reason() {
        let mut c = DropCounters::new();
        c.record(DropReason::BadTtl);
        c.record(DropReason::BadTtl);
        c.record(DropReason::AdvertIntervalMismatch);
        assert_eq!(c.get(DropReason::BadTtl), 2);
        assert_eq!(c.get(DropReason::AdvertIntervalMismatch), 1);
        assert_eq!(c.get(DropReason::NotIp), 0);
        assert_eq!(c.total(), 3);
        assert_eq!(c.iter().count(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
