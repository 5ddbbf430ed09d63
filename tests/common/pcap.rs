//! A small reader for classic libpcap files (what `tcpdump -w` writes) and a classifier for the
//! few frame kinds the VRRP lab cares about. Test-only: it allocates freely and returns errors as
//! strings, because a malformed capture is a broken test, not input to survive.
//!
//! File format (libpcap "classic"): a 24-byte global header whose magic tells byte order and
//! timestamp resolution, then records of a 16-byte header (ts_sec, ts_frac, incl_len, orig_len)
//! followed by incl_len bytes of frame.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// LINKTYPE_ETHERNET: the only link type the classifier understands.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// One captured frame. `ts` is the capture time as time since the UNIX epoch (the kernel stamps
/// frames with CLOCK_REALTIME, so it compares directly with `SystemTime::now()`).
#[derive(Clone, Debug)]
pub struct Frame {
    pub ts: Duration,
    pub data: Vec<u8>,
    /// Length on the wire (can exceed `data.len()` when the snap length cut the frame).
    pub orig_len: u32,
}

/// A parsed capture file.
#[derive(Clone, Debug)]
pub struct Pcap {
    pub linktype: u32,
    pub snaplen: u32,
    pub frames: Vec<Frame>,
}

/// Parses a whole pcap file. A record cut short at the end of the buffer is ignored rather than
/// reported: that is what a file still being written by `tcpdump -U` looks like.
pub fn parse(buf: &[u8]) -> Result<Pcap, String> {
    if buf.len() < 24 {
        return Err(format!(
            "pcap: {} bytes, shorter than the global header",
            buf.len()
        ));
    }
    let magic_le = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    // The magic is written in the writer's byte order, so reading it little-endian tells both
    // the order and the resolution (0xa1b2c3d4 = microseconds, 0xa1b23c4d = nanoseconds).
    let (big_endian, nanos) = match magic_le {
        0xa1b2_c3d4 => (false, false),
        0xa1b2_3c4d => (false, true),
        0xd4c3_b2a1 => (true, false),
        0x4d3c_b2a1 => (true, true),
        m => {
            return Err(format!(
                "pcap: unknown magic {m:#010x} (pcapng is not supported)"
            ))
        }
    };
    let rd32 = |off: usize| -> u32 {
        let b = [buf[off], buf[off + 1], buf[off + 2], buf[off + 3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let snaplen = rd32(16);
    let linktype = rd32(20) & 0x0fff_ffff; // upper bits may carry FCS info
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= buf.len() {
        let sec = rd32(off) as u64;
        let frac = rd32(off + 4) as u64;
        let incl = rd32(off + 8) as usize;
        let orig_len = rd32(off + 12);
        let start = off + 16;
        if start + incl > buf.len() {
            break; // partially written record
        }
        let ts = if nanos {
            Duration::from_secs(sec) + Duration::from_nanos(frac)
        } else {
            Duration::from_secs(sec) + Duration::from_micros(frac)
        };
        frames.push(Frame {
            ts,
            data: buf[start..start + incl].to_vec(),
            orig_len,
        });
        off = start + incl;
    }
    Ok(Pcap {
        linktype,
        snaplen,
        frames,
    })
}

/// Reads and parses a pcap file.
pub fn read_file(path: &std::path::Path) -> Result<Pcap, String> {
    let buf = std::fs::read(path).map_err(|e| format!("pcap: read {}: {e}", path.display()))?;
    parse(&buf)
}

/// Writes a classic little-endian microsecond pcap (for tests of the reader and for saving
/// synthetic captures).
pub fn write_le(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    for f in frames {
        out.extend_from_slice(&(f.ts.as_secs() as u32).to_le_bytes());
        out.extend_from_slice(&f.ts.subsec_micros().to_le_bytes());
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.orig_len.to_le_bytes());
        out.extend_from_slice(&f.data);
    }
    out
}

pub type Mac = [u8; 6];

/// Formats a MAC the way `ip link` prints it.
pub fn mac_str(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A VRRP advertisement as seen on the wire (RFC 3768 5.1 for v2, RFC 5798 5.1 for v3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    /// v2: advert interval in seconds; v3: max advert interval in centiseconds.
    pub interval: u16,
    pub src_ip: IpAddr,
    pub src_mac: Mac,
    pub addrs: Vec<IpAddr>,
}

/// What the lab cares to recognise in a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Vrrp(Advert),
    /// ARP (request or reply) whose sender IP equals its target IP: an announcement.
    Garp {
        sender_ip: Ipv4Addr,
        sender_mac: Mac,
    },
    /// Neighbor Advertisement not answering a solicitation (S flag clear).
    UnsolicitedNa {
        target: Ipv6Addr,
        src_mac: Mac,
    },
    EchoRequest {
        src: IpAddr,
        dst: IpAddr,
    },
    EchoReply {
        src: IpAddr,
        dst: IpAddr,
    },
    Other,
}

const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_VRRP: u8 = 112;

fn be16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

/// Classifies an Ethernet frame. Anything truncated or unknown is `Kind::Other`.
pub fn classify(frame: &[u8]) -> Kind {
    classify_opt(frame).unwrap_or(Kind::Other)
}

fn classify_opt(f: &[u8]) -> Option<Kind> {
    let src_mac: Mac = f.get(6..12)?.try_into().ok()?;
    let mut etype = be16(f, 12)?;
    let mut off = 14;
    if etype == ETH_P_8021Q {
        etype = be16(f, 16)?;
        off = 18;
    }
    let p = f.get(off..)?;
    match etype {
        ETH_P_ARP => classify_arp(p),
        ETH_P_IP => classify_ipv4(p, src_mac),
        ETH_P_IPV6 => classify_ipv6(p, src_mac),
        _ => None,
    }
}

fn classify_arp(p: &[u8]) -> Option<Kind> {
    // Ethernet/IPv4 ARP only: htype 1, ptype 0x0800, hlen 6, plen 4.
    if be16(p, 0)? != 1 || be16(p, 2)? != ETH_P_IP || *p.get(4)? != 6 || *p.get(5)? != 4 {
        return None;
    }
    let sender_mac: Mac = p.get(8..14)?.try_into().ok()?;
    let spa: [u8; 4] = p.get(14..18)?.try_into().ok()?;
    let tpa: [u8; 4] = p.get(24..28)?.try_into().ok()?;
    if spa == tpa {
        Some(Kind::Garp {
            sender_ip: Ipv4Addr::from(spa),
            sender_mac,
        })
    } else {
        Some(Kind::Other)
    }
}

fn classify_ipv4(p: &[u8], src_mac: Mac) -> Option<Kind> {
    let vihl = *p.first()?;
    if vihl >> 4 != 4 {
        return None;
    }
    let ihl = ((vihl & 0x0f) as usize) * 4;
    let total = be16(p, 2)? as usize;
    let proto = *p.get(9)?;
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(p.get(12..16)?).ok()?);
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(p.get(16..20)?).ok()?);
    let body = p.get(ihl..total.min(p.len()))?;
    match proto {
        IPPROTO_VRRP => classify_vrrp(body, IpAddr::V4(src), src_mac, false),
        IPPROTO_ICMP => match *body.first()? {
            8 => Some(Kind::EchoRequest {
                src: src.into(),
                dst: dst.into(),
            }),
            0 => Some(Kind::EchoReply {
                src: src.into(),
                dst: dst.into(),
            }),
            _ => Some(Kind::Other),
        },
        _ => Some(Kind::Other),
    }
}

fn classify_ipv6(p: &[u8], src_mac: Mac) -> Option<Kind> {
    if *p.first()? >> 4 != 6 {
        return None;
    }
    let plen = be16(p, 4)? as usize;
    let next = *p.get(6)?;
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(p.get(8..24)?).ok()?);
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(p.get(24..40)?).ok()?);
    // No extension-header walk: VRRP and NDISC frames from keepalived carry none.
    let body = p.get(40..(40 + plen).min(p.len()))?;
    match next {
        IPPROTO_VRRP => classify_vrrp(body, IpAddr::V6(src), src_mac, true),
        IPPROTO_ICMPV6 => match *body.first()? {
            128 => Some(Kind::EchoRequest {
                src: src.into(),
                dst: dst.into(),
            }),
            129 => Some(Kind::EchoReply {
                src: src.into(),
                dst: dst.into(),
            }),
            136 => {
                // RFC 4861 4.4: flags R|S|O in the top bits of byte 4; unsolicited = S clear.
                let flags = *body.get(4)?;
                let target = Ipv6Addr::from(<[u8; 16]>::try_from(body.get(8..24)?).ok()?);
                if flags & 0x40 == 0 {
                    Some(Kind::UnsolicitedNa { target, src_mac })
                } else {
                    Some(Kind::Other)
                }
            }
            _ => Some(Kind::Other),
        },
        _ => Some(Kind::Other),
    }
}

fn classify_vrrp(b: &[u8], src_ip: IpAddr, src_mac: Mac, v6: bool) -> Option<Kind> {
    let vt = *b.first()?;
    let version = vt >> 4;
    if vt & 0x0f != 1 || !(version == 2 || version == 3) {
        return Some(Kind::Other);
    }
    let vrid = *b.get(1)?;
    let priority = *b.get(2)?;
    let count = *b.get(3)? as usize;
    let interval = if version == 2 {
        *b.get(5)? as u16
    } else {
        be16(b, 4)? & 0x0fff
    };
    let alen = if v6 { 16 } else { 4 };
    let mut addrs = Vec::with_capacity(count);
    for i in 0..count {
        let a = b.get(8 + i * alen..8 + (i + 1) * alen)?;
        addrs.push(if v6 {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(a).ok()?))
        } else {
            IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(a).ok()?))
        });
    }
    Some(Kind::Vrrp(Advert {
        version,
        vrid,
        priority,
        interval,
        src_ip,
        src_mac,
        addrs,
    }))
}

/// A frame with its classification, for searching captures.
#[derive(Clone, Debug)]
pub struct Seen {
    pub ts: Duration,
    pub kind: Kind,
}

/// Classifies every frame of a capture.
pub fn classify_all(p: &Pcap) -> Vec<Seen> {
    p.frames
        .iter()
        .map(|f| Seen {
            ts: f.ts,
            kind: if p.linktype == LINKTYPE_ETHERNET {
                classify(&f.data)
            } else {
                Kind::Other
            },
        })
        .collect()
}

/// Parses a hex string (whitespace ignored) into bytes; for building test frames.
pub fn from_hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => panic!("from_hex: not a hex digit: {}", b as char),
        })
        .collect();
    assert!(digits.len() % 2 == 0, "from_hex: odd number of digits");
    digits.chunks(2).map(|c| c[0] << 4 | c[1]).collect()
}
