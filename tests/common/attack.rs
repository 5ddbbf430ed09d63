//! A LAN attacker for the namespace lab: Ethernet frames built byte by byte (no minivrrp code
//! involved, so a bug in its emitter cannot hide one in its parser) and sent through an
//! AF_PACKET socket opened inside a lab node's namespace.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// 224.0.0.18 and its MAC (RFC 5798 5.1.1.2, RFC 1112 6.4).
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
pub const GROUP_MAC_V4: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];

/// Runs `f` on a thread inside network namespace `ns` (the namespace fixture's `run_in`).
pub use super::netns::run_in as in_netns;

/// A raw packet socket in a lab namespace, bound to one interface there.
pub struct Attacker {
    fd: OwnedFd,
    ifindex: i32,
    pub mac: [u8; 6],
}

impl Attacker {
    /// Opens the socket from a thread that entered namespace `ns` (`/run/netns/<ns>`): a
    /// socket stays in the namespace it was created in, so the test thread can use it.
    pub fn open(ns: &str, ifname: &str, mac: [u8; 6]) -> Attacker {
        let ifname = ifname.to_string();
        in_netns(ns, move || {
            // SAFETY: plain syscalls on a fresh fd.
            unsafe {
                let raw = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
                assert!(raw >= 0, "AF_PACKET socket");
                let name = std::ffi::CString::new(ifname).unwrap();
                let ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
                assert!(ifindex > 0, "no such interface");
                let fd = OwnedFd::from_raw_fd(raw);
                // Large send buffer: a flood should be limited by the link, not by us.
                let sz: libc::c_int = 4 << 20;
                libc::setsockopt(
                    raw,
                    libc::SOL_SOCKET,
                    libc::SO_SNDBUFFORCE,
                    (&sz as *const libc::c_int).cast(),
                    4,
                );
                Attacker { fd, ifindex, mac }
            }
        })
    }

    /// Sends one whole Ethernet frame; retries briefly when the queue is full so a flood
    /// goes out at the link's rate.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: sockaddr_ll is plain old data.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_ifindex = self.ifindex;
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&frame[..6]);
        for _ in 0..1000 {
            // SAFETY: frame and sa are valid for the lengths given.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&sa as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if n >= 0 {
                return;
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOBUFS) && e.raw_os_error() != Some(libc::EAGAIN) {
                panic!("attacker send: {e}");
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }
}

/// One's-complement sum of 16-bit words (RFC 1071), not yet inverted.
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// A VRRPv3-over-IPv4 advertisement (RFC 5798 5.1, 5.2) as a whole Ethernet frame, every
/// field given by the test.
#[derive(Clone, Debug)]
pub struct Advert {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// 802.1Q tag (VLAN id) between the MACs and the EtherType.
    pub vlan: Option<u16>,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub vrid: u8,
    pub priority: u8,
    /// Max Adver Int in centiseconds.
    pub adver_int_cs: u16,
    pub addrs: Vec<Ipv4Addr>,
    /// Break the VRRP checksum on purpose.
    pub bad_checksum: bool,
}

impl Advert {
    /// A priority-254 advert for `vrid` listing `vip`, to the group with TTL 255 from `src`:
    /// a valid advert that would win against any master below 254.
    pub fn winning(src_mac: [u8; 6], src: Ipv4Addr, vrid: u8, vip: Ipv4Addr) -> Advert {
        Advert {
            dst_mac: GROUP_MAC_V4,
            src_mac,
            vlan: None,
            src,
            dst: GROUP_V4,
            ttl: 255,
            vrid,
            priority: 254,
            adver_int_cs: 100,
            addrs: vec![vip],
            bad_checksum: false,
        }
    }

    pub fn frame(&self) -> Vec<u8> {
        // VRRP message (RFC 5798 5.1): ver 3 type 1, VRID, priority, count, rsvd + interval,
        // checksum over the IPv4 pseudo-header and the message (5.2.8), addresses.
        let mut vrrp = vec![
            0x31,
            self.vrid,
            self.priority,
            self.addrs.len() as u8,
            ((self.adver_int_cs >> 8) & 0x0f) as u8,
            self.adver_int_cs as u8,
            0,
            0,
        ];
        for a in &self.addrs {
            vrrp.extend_from_slice(&a.octets());
        }
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&self.src.octets());
        pseudo.extend_from_slice(&self.dst.octets());
        pseudo.extend_from_slice(&[0, 112]);
        pseudo.extend_from_slice(&(vrrp.len() as u16).to_be_bytes());
        let mut ck = fold(sum16(&vrrp, sum16(&pseudo, 0)));
        if self.bad_checksum {
            ck ^= 0x5a5a;
        }
        vrrp[6..8].copy_from_slice(&ck.to_be_bytes());
        let ip = ipv4_header(self.src, self.dst, self.ttl, 112, vrrp.len());
        let mut f = eth_header(self.dst_mac, self.src_mac, self.vlan, 0x0800);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&vrrp);
        f
    }
}

/// ff02::12 and its MAC (RFC 5798 5.1.2.2, RFC 2464 7).
pub const GROUP_V6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
pub const GROUP_MAC_V6: [u8; 6] = [0x33, 0x33, 0, 0, 0, 0x12];

/// A VRRPv3 advert over IPv6, built byte by byte like [`Advert`].
#[derive(Clone, Debug)]
pub struct Advert6 {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub src: std::net::Ipv6Addr,
    pub dst: std::net::Ipv6Addr,
    pub hop_limit: u8,
    pub vrid: u8,
    pub priority: u8,
    pub adver_int_cs: u16,
    pub addrs: Vec<std::net::Ipv6Addr>,
}

impl Advert6 {
    /// A priority-254 advert for `vrid` listing `vip`, to ff02::12 with hop limit 255.
    pub fn winning(
        src_mac: [u8; 6],
        src: std::net::Ipv6Addr,
        vrid: u8,
        vip: std::net::Ipv6Addr,
    ) -> Advert6 {
        Advert6 {
            dst_mac: GROUP_MAC_V6,
            src_mac,
            src,
            dst: GROUP_V6,
            hop_limit: 255,
            vrid,
            priority: 254,
            adver_int_cs: 100,
            addrs: vec![vip],
        }
    }

    pub fn frame(&self) -> Vec<u8> {
        let mut vrrp = vec![
            0x31,
            self.vrid,
            self.priority,
            self.addrs.len() as u8,
            ((self.adver_int_cs >> 8) & 0x0f) as u8,
            self.adver_int_cs as u8,
            0,
            0,
        ];
        for a in &self.addrs {
            vrrp.extend_from_slice(&a.octets());
        }
        // RFC 8200 8.1 pseudo-header: source, destination, upper-layer length, next header.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&self.src.octets());
        pseudo.extend_from_slice(&self.dst.octets());
        pseudo.extend_from_slice(&(vrrp.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 112]);
        let ck = fold(sum16(&vrrp, sum16(&pseudo, 0)));
        vrrp[6..8].copy_from_slice(&ck.to_be_bytes());
        let mut f = eth_header(self.dst_mac, self.src_mac, None, 0x86dd);
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(vrrp.len() as u16).to_be_bytes());
        f.push(112);
        f.push(self.hop_limit);
        f.extend_from_slice(&self.src.octets());
        f.extend_from_slice(&self.dst.octets());
        f.extend_from_slice(&vrrp);
        f
    }
}

/// Ethernet header, with an 802.1Q tag when `vlan` is set.
pub fn eth_header(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>, ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(id) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&(id & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// A 20-byte IPv4 header (TOS 0xc0, DF clear, ident 1) with its checksum.
pub fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, proto: u8, payload: usize) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[1] = 0xc0;
    h[2..4].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&1u16.to_be_bytes());
    h[8] = ttl;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let ck = fold(sum16(&h, 0));
    h[10..12].copy_from_slice(&ck.to_be_bytes());
    h
}

/// Junk of the kinds a LAN host can send cheaply, cycling through them with `i`:
/// broadcast UDP, ARP requests, multicast IPv6, VRRP with a bad checksum, VRRP for another
/// VRID, TTL-1 VRRP, truncated VRRP, VRRP in a VLAN. None of it may move the VIP.
pub fn junk(i: usize, src_mac: [u8; 6], src: Ipv4Addr, vrid: u8, vip: Ipv4Addr) -> Vec<u8> {
    let good = Advert::winning(src_mac, src, vrid, vip);
    match i % JUNK_KINDS {
        0 => {
            let mut f = eth_header([0xff; 6], src_mac, None, 0x0800);
            let udp = [
                0x30, 0x39, 0x00, 0x35, 0x00, 0x10, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
            ];
            f.extend_from_slice(&ipv4_header(src, Ipv4Addr::BROADCAST, 64, 17, udp.len()));
            f.extend_from_slice(&udp);
            f
        }
        1 => {
            let mut f = eth_header([0xff; 6], src_mac, None, 0x0806);
            f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
            f.extend_from_slice(&src_mac);
            f.extend_from_slice(&src.octets());
            f.extend_from_slice(&[0; 6]);
            f.extend_from_slice(&[10, 0, 0, (i % 200) as u8 + 1]);
            f
        }
        2 => {
            let mut f = eth_header([0x33, 0x33, 0, 0, 0, 1], src_mac, None, 0x86dd);
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 17, 1]);
            f.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64]);
            f.extend_from_slice(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0, 0]);
            f
        }
        3 => Advert {
            bad_checksum: true,
            ..good
        }
        .frame(),
        4 => Advert {
            vrid: vrid.wrapping_add(1 + (i % 7) as u8),
            ..good
        }
        .frame(),
        5 => Advert { ttl: 1, ..good }.frame(),
        6 => {
            let f = good.frame();
            f[..f.len() - 3].to_vec()
        }
        _ => Advert {
            vlan: Some(10),
            ..good
        }
        .frame(),
    }
}

/// How many kinds [`junk`] cycles through.
pub const JUNK_KINDS: usize = 8;
