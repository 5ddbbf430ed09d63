//! The classic BPF program attached to each AF_PACKET socket, as plain data.
//!
//! It runs in the kernel for every frame on the interface, so only VRRP frames wake the
//! daemon: an advert flood of other traffic (or our own adverts, seen by the packet tap on
//! transmit) costs a few instructions in softirq and never a syscall.
//!
//! Offsets are from the start of the Ethernet header (SOCK_RAW packet socket):
//! ```text
//!  0      6      12    14                          14+9 (v4 protocol)   14+6 (v6 next header)
//!  | dst  | src  | type| IPv4: ver/ihl tos len id frag ttl proto ...  | IPv6: ... nh ...
//! ```

use nix::errno::Errno;
use std::os::fd::RawFd;

use crate::vrrp::{auth, wire};

// Classic BPF opcodes (linux/bpf_common.h, linux/filter.h). Hand-defined so the program is
// a `const` independent of which libc exposes them.
pub const BPF_LD: u16 = 0x00;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_W: u16 = 0x00;
pub const BPF_H: u16 = 0x08;
pub const BPF_B: u16 = 0x10;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_LEN: u16 = 0x80;
pub const BPF_JA: u16 = 0x00;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JGT: u16 = 0x20;
pub const BPF_JGE: u16 = 0x30;
pub const BPF_JSET: u16 = 0x40;
pub const BPF_K: u16 = 0x00;
/// Ancillary data area: loads at `SKF_AD_OFF + x` read skb metadata, not packet bytes.
pub const SKF_AD_OFF: u32 = (-0x1000i32) as u32;
pub const SKF_AD_PKTTYPE: u32 = 4;
/// 1 when the frame carried a VLAN tag: the kernel strips 802.1Q/802.1ad tags into skb
/// metadata before packet sockets see the frame, so the bytes alone cannot tell.
pub const SKF_AD_VLAN_TAG_PRESENT: u32 = 48;
/// The stripped tag's TCI (priority, DEI, VLAN ID).
pub const SKF_AD_VLAN_TAG: u32 = 44;
/// The VLAN ID bits of a TCI. ID 0 is a priority tag (802.1Q 9.6): the frame belongs to this
/// link, and the kernel hands it to IP untagged.
pub const VLAN_VID_MASK: u32 = 0x0fff;
/// `sll_pkttype` of a frame to another host's MAC (promiscuous interface).
pub const PACKET_OTHERHOST: u32 = 3;
/// `sll_pkttype` of a frame we transmitted, seen by the packet tap.
pub const PACKET_OUTGOING: u32 = 4;
pub const ETH_P_IP: u32 = 0x0800;
pub const ETH_P_IPV6: u32 = 0x86dd;
const IPPROTO_VRRP: u32 = wire::IPPROTO_VRRP as u32;
const VRRP_TTL: u32 = wire::VRRP_TTL as u32;

/// One instruction, layout-identical to `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// Bytes of an accepted frame handed to the socket (more than any VRRP frame; the kernel
/// clamps it to the frame length).
pub const ACCEPT_LEN: u32 = 0xffff;

/// Accept IPv4 protocol 112 (not fragmented) and IPv6 next header 112 (no extension
/// headers: VRRPv3 over IPv6 is sent without them, RFC 5798 5.1.2), never our own frames.
/// The protocol-only filter: [`vrrp_filter`] builds the one the daemon uses; this one is
/// kept for tests that need every VRRP frame in user space. Jump offsets are relative to
/// the next instruction.
pub const VRRP_FILTER: [Insn; 13] = [
    /* 0 */ stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE),
    /* 1 */
    jump(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 10, 0), // own frame -> 12 drop
    /* 2 */ stmt(BPF_LD | BPF_H | BPF_ABS, 12), // ethertype
    /* 3 */ jump(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 4), // not IPv4 -> 8
    /* 4 */ stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 9), // IPv4 protocol
    /* 5 */ jump(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_VRRP, 0, 6), // -> 12 drop
    /* 6 */ stmt(BPF_LD | BPF_H | BPF_ABS, 14 + 6), // flags + fragment offset
    // MF set or offset != 0: a fragment, which a 20-1044 byte advert never legitimately is.
    /* 7 */
    jump(BPF_JMP | BPF_JSET | BPF_K, 0x3fff, 4, 3), // -> 12 drop / 11 accept
    /* 8 */ jump(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 3), // not IPv6 -> 12 drop
    /* 9 */ stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 6), // IPv6 next header
    /* 10 */ jump(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_VRRP, 0, 1), // -> 11 / 12
    /* 11 */ stmt(BPF_RET | BPF_K, ACCEPT_LEN),
    /* 12 */ stmt(BPF_RET | BPF_K, 0),
];

/// What one interface's kernel filter admits: the VRIDs its instances run, per family, and
/// whether any instance there has unicast peers (only then may a unicast advert, with any
/// TTL, reach user space).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VrrpFilterSpec<'a> {
    pub v4_vrids: &'a [u8],
    pub v6_vrids: &'a [u8],
    pub v4_unicast: bool,
    pub v6_unicast: bool,
    /// An instance there sends Router Advertisements (`option ra`): Router Solicitations
    /// (ICMPv6 type 133 with hop limit 255, RFC 4861 6.1.1) are admitted too.
    pub router_solicit: bool,
}

const IPPROTO_ICMPV6: u32 = 58;
/// ICMPv6 Router Solicitation (RFC 4861 4.1).
const ND_ROUTER_SOLICIT: u32 = 133;

/// Longest VRID list checked in the kernel per family; an interface with more instances of
/// one family admits every VRID of it (user space still drops unknown ones). Keeps every
/// conditional jump within its 8-bit offset.
pub const MAX_KERNEL_VRIDS: usize = 32;
/// Room for the largest program [`vrrp_filter`] builds (about 110 instructions).
pub const MAX_PROGRAM: usize = 128;
/// A built program.
pub type Program = heapless::Vec<Insn, MAX_PROGRAM>;

/// Ethernet + IPv4 header (20, no options) + VRRP header: the shortest advert frame.
const MIN_FRAME: u32 = 14 + 20 + wire::HEADER_LEN as u32;
/// Ethernet + IPv6 header + VRRP header + the most addresses we accept + v2 auth data + an
/// authentication trailer: the longest advert we would parse (shorter frames are padded to
/// 60 bytes, which fits).
const MAX_FRAME: u32 = 14
    + 40
    + (wire::HEADER_LEN + wire::MAX_ADDRS * 16 + wire::AUTH_DATA_LEN + auth::TRAILER_LEN) as u32;

/// Jump targets of the program builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Label {
    Next,
    Drop,
    Accept,
    Ipv6,
    Ttl4,
    Vrid4,
    Ttl6,
    Vrid6,
    Solicit,
    Untagged,
}
const LABELS: usize = 10;

/// A tiny assembler: instructions with symbolic jump targets, resolved at the end.
struct Asm {
    code: heapless::Vec<(Insn, Label, Label), MAX_PROGRAM>,
    at: [Option<usize>; LABELS],
}

impl Asm {
    fn stmt(&mut self, code: u16, k: u32) {
        let _ = self.code.push((stmt(code, k), Label::Next, Label::Next));
    }
    /// `if A == k goto jt else goto jf` (and the other BPF_JMP conditions).
    fn jump(&mut self, cond: u16, k: u32, jt: Label, jf: Label) {
        let _ = self
            .code
            .push((jump(BPF_JMP | cond | BPF_K, k, 0, 0), jt, jf));
    }
    /// Unconditional jump (32-bit offset in `k`).
    fn goto(&mut self, to: Label) {
        let _ = self.code.push((stmt(BPF_JMP | BPF_JA, 0), to, Label::Next));
    }
    fn label(&mut self, l: Label) {
        self.at[l as usize] = Some(self.code.len());
    }
    fn resolve(self) -> Program {
        let off = |i: usize, l: Label| -> u32 {
            let to = match l {
                Label::Next => i + 1,
                l => self.at[l as usize].unwrap_or(i + 1),
            };
            (to - (i + 1)) as u32
        };
        let mut out = Program::new();
        for (i, (mut insn, jt, jf)) in self.code.iter().copied().enumerate() {
            if insn.code == BPF_JMP | BPF_JA {
                insn.k = off(i, jt);
            } else if insn.code & 0x07 == BPF_JMP {
                insn.jt = off(i, jt) as u8;
                insn.jf = off(i, jf) as u8;
            }
            let _ = out.push(insn);
        }
        out
    }
}

/// `A` holds the VRID: go on if it is one of `vrids`, else drop. An empty list drops all
/// (no instance of that family); a list longer than [`MAX_KERNEL_VRIDS`] admits all.
fn vrid_chain(a: &mut Asm, vrids: &[u8]) {
    if vrids.len() > MAX_KERNEL_VRIDS {
        a.goto(Label::Accept);
        return;
    }
    for v in vrids {
        a.jump(BPF_JEQ, u32::from(*v), Label::Accept, Label::Next);
    }
    a.goto(Label::Drop);
}

/// The per-interface filter (RFC 5798 7.1 in the kernel, as far as a frame alone can tell):
/// not our own frame, not for another host, no VLAN tag other than a priority tag (VLAN ID
/// 0: ours, as the kernel's IP stack and keepalived take it), a sane length; IPv4 (no options,
/// not a fragment) or IPv6 (no extension headers) carrying protocol 112; to the VRRP group
/// with TTL / hop limit 255, or to us only when unicast peers are configured; a VRID some
/// instance on the interface runs. Everything else is dropped in softirq and never wakes
/// the daemon nor fills the socket's receive buffer.
pub fn vrrp_filter(spec: &VrrpFilterSpec<'_>) -> Program {
    use Label::*;
    let mut a = Asm {
        code: heapless::Vec::new(),
        at: [None; LABELS],
    };
    a.stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE);
    a.jump(BPF_JEQ, PACKET_OUTGOING, Drop, Next);
    a.jump(BPF_JEQ, PACKET_OTHERHOST, Drop, Next);
    a.stmt(
        BPF_LD | BPF_W | BPF_ABS,
        SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT,
    );
    a.jump(BPF_JEQ, 0, Untagged, Next);
    a.stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG);
    a.jump(BPF_JSET, VLAN_VID_MASK, Drop, Next);
    // Priority-tagged: the kernel stripped the one tag; a second (802.1ad) one would now be
    // the ethertype and fails the IPv4/IPv6 test below.
    a.label(Untagged);
    a.stmt(BPF_LD | BPF_W | BPF_LEN, 0);
    a.jump(BPF_JGT, MAX_FRAME, Drop, Next);
    a.jump(BPF_JGE, MIN_FRAME, Next, Drop);
    a.stmt(BPF_LD | BPF_H | BPF_ABS, 12); // ethertype
    a.jump(BPF_JEQ, ETH_P_IP, Next, Ipv6);

    // IPv4: version 4, IHL 5 (adverts carry no options), protocol 112, not a fragment.
    a.stmt(BPF_LD | BPF_B | BPF_ABS, 14);
    a.jump(BPF_JEQ, 0x45, Next, Drop);
    a.stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 9);
    a.jump(BPF_JEQ, IPPROTO_VRRP, Next, Drop);
    a.stmt(BPF_LD | BPF_H | BPF_ABS, 14 + 6);
    a.jump(BPF_JSET, 0x3fff, Drop, Next);
    a.stmt(BPF_LD | BPF_W | BPF_ABS, 14 + 16); // destination
    let not_group = if spec.v4_unicast { Vrid4 } else { Drop };
    a.jump(BPF_JEQ, u32::from(wire::VRRP_GROUP_V4), Ttl4, not_group);
    a.label(Ttl4);
    a.stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 8);
    a.jump(BPF_JEQ, VRRP_TTL, Next, Drop);
    a.label(Vrid4);
    a.stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 20 + 1);
    vrid_chain(&mut a, spec.v4_vrids);

    // IPv6: next header 112 (no extension headers), to ff02::12 with hop limit 255.
    a.label(Ipv6);
    a.jump(BPF_JEQ, ETH_P_IPV6, Next, Drop);
    a.stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 6);
    let not_vrrp = if spec.router_solicit { Solicit } else { Drop };
    a.jump(BPF_JEQ, IPPROTO_VRRP, Next, not_vrrp);
    let not_group = if spec.v6_unicast { Vrid6 } else { Drop };
    let g = wire::VRRP_GROUP_V6.octets();
    for w in 0..4 {
        let word = u32::from_be_bytes([g[4 * w], g[4 * w + 1], g[4 * w + 2], g[4 * w + 3]]);
        a.stmt(BPF_LD | BPF_W | BPF_ABS, 14 + 24 + 4 * w as u32);
        a.jump(BPF_JEQ, word, Next, not_group);
    }
    a.label(Ttl6);
    a.stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 7);
    a.jump(BPF_JEQ, VRRP_TTL, Next, Drop);
    a.label(Vrid6);
    a.stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 40 + 1);
    vrid_chain(&mut a, spec.v6_vrids);

    // A Router Solicitation (RFC 4861 4.1, 6.1.1): next header ICMPv6 (A still holds it),
    // type 133, hop limit 255. User space checks the rest (`vrrp::ra`).
    if spec.router_solicit {
        a.label(Solicit);
        a.jump(BPF_JEQ, IPPROTO_ICMPV6, Next, Drop);
        a.stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 40);
        a.jump(BPF_JEQ, ND_ROUTER_SOLICIT, Next, Drop);
        a.stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 7);
        a.jump(BPF_JEQ, VRRP_TTL, Accept, Drop);
    }

    a.label(Accept);
    a.stmt(BPF_RET | BPF_K, ACCEPT_LEN);
    a.label(Drop);
    a.stmt(BPF_RET | BPF_K, 0);
    a.resolve()
}

/// Drops everything: for sockets we only send on (a raw IP socket would otherwise queue
/// every VRRP packet the host receives, a second copy nobody reads).
pub const DROP_ALL: [Insn; 1] = [stmt(BPF_RET | BPF_K, 0)];

/// `RTM_NEWADDR` (linux/rtnetlink.h).
const RTM_NEWADDR: u16 = 20;

/// For the rtnetlink event socket: drop the kernel's echo of our own address requests
/// (`RTM_NEWADDR` whose `nlmsg_pid` is our request socket's port `portid`), keep the rest.
///
/// The only addresses the daemon adds are its VIPs, and it ignores news of them; the echo
/// of a dead-man lease refresh (one per VIP, every third of the lifetime) would otherwise
/// wake the daemon and cost a read per VIP for nothing. Netlink fields are in host byte
/// order while BPF loads are big-endian, hence the byte swaps of the constants. A
/// notification carries one message, whose header is at offset 0 (type at 4, pid at 12).
pub fn address_echo_filter(portid: u32) -> [Insn; 6] {
    let ty = u32::from(u16::from_be_bytes(RTM_NEWADDR.to_ne_bytes()));
    let pid = u32::from_be_bytes(portid.to_ne_bytes());
    [
        stmt(BPF_LD | BPF_H | BPF_ABS, 4),
        jump(BPF_JMP | BPF_JEQ | BPF_K, ty, 0, 2),
        stmt(BPF_LD | BPF_W | BPF_ABS, 12),
        jump(BPF_JMP | BPF_JEQ | BPF_K, pid, 1, 0),
        stmt(BPF_RET | BPF_K, u32::MAX),
        stmt(BPF_RET | BPF_K, 0),
    ]
}

/// Attach `prog` to `fd` (SO_ATTACH_FILTER). The kernel copies the program.
pub fn attach(fd: RawFd, prog: &[Insn]) -> Result<(), Errno> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    crate::sys::fd::setsockopt_raw(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the subset of classic BPF our programs use, with the kernel's
    /// rule that a load past the end of the packet ends the program with 0 (drop).
    fn run(prog: &[Insn], pkt: &[u8], pkttype: u32) -> u32 {
        run_meta(prog, pkt, pkttype, None)
    }

    /// `vlan`: the TCI of the tag the kernel stripped, if any.
    fn run_meta(prog: &[Insn], pkt: &[u8], pkttype: u32, vlan: Option<u16>) -> u32 {
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => {
                    if i.k == SKF_AD_OFF + SKF_AD_PKTTYPE {
                        a = pkttype;
                    } else if i.k == SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT {
                        a = vlan.is_some() as u32;
                    } else if i.k == SKF_AD_OFF + SKF_AD_VLAN_TAG {
                        a = u32::from(vlan.unwrap_or(0));
                    } else {
                        let k = i.k as usize;
                        let Some(b) = pkt.get(k..k + 4) else { return 0 };
                        a = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    }
                }
                c if c == BPF_LD | BPF_W | BPF_LEN => a = pkt.len() as u32,
                c if c == BPF_LD | BPF_H | BPF_ABS => {
                    let k = i.k as usize;
                    let Some(b) = pkt.get(k..k + 2) else { return 0 };
                    a = u16::from_be_bytes([b[0], b[1]]) as u32;
                }
                c if c == BPF_LD | BPF_B | BPF_ABS => {
                    let Some(b) = pkt.get(i.k as usize) else {
                        return 0;
                    };
                    a = *b as u32;
                }
                c if c == BPF_JMP | BPF_JA => pc += i.k as usize,
                c if c == BPF_JMP | BPF_JEQ | BPF_K => {
                    pc += if a == i.k { i.jt } else { i.jf } as usize;
                }
                c if c == BPF_JMP | BPF_JGT | BPF_K => {
                    pc += if a > i.k { i.jt } else { i.jf } as usize;
                }
                c if c == BPF_JMP | BPF_JGE | BPF_K => {
                    pc += if a >= i.k { i.jt } else { i.jf } as usize;
                }
                c if c == BPF_JMP | BPF_JSET | BPF_K => {
                    pc += if a & i.k != 0 { i.jt } else { i.jf } as usize;
                }
                c if c == BPF_RET | BPF_K => return i.k,
                c => panic!("opcode {c:#x} not in the interpreter"),
            }
        }
    }

    const HOST: u32 = 0;
    const MULTICAST: u32 = 2;

    /// A netlink header (host byte order, as the kernel writes it) and a few payload bytes.
    fn nlmsg(ty: u16, pid: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&24u32.to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&7u32.to_ne_bytes());
        m.extend_from_slice(&pid.to_ne_bytes());
        m.extend_from_slice(&[2, 32, 0, 0, 3, 0, 0, 0]);
        m
    }

    #[test]
    fn address_echo_filter_drops_only_our_own_address_adds() {
        const RTM_DELADDR: u16 = 21;
        const RTM_NEWLINK: u16 = 16;
        let ours = 0x1234_5678;
        let prog = address_echo_filter(ours);
        assert_eq!(run(&prog, &nlmsg(RTM_NEWADDR, ours), HOST), 0, "our echo");
        for (ty, pid) in [
            (RTM_NEWADDR, 0),      // added by the kernel (e.g. an IPv6 link-local)
            (RTM_NEWADDR, 0x1234), // added by another process (`ip addr add`)
            (RTM_DELADDR, ours),   // our removal: kept, as before
            (RTM_NEWLINK, ours),   // links always pass
            (RTM_NEWLINK, 0),
        ] {
            assert_eq!(
                run(&prog, &nlmsg(ty, pid), HOST),
                u32::MAX,
                "type {ty} pid {pid:#x}"
            );
        }
    }

    fn v4(proto: u8, frag: u16) -> Vec<u8> {
        let mut f = vec![
            0x01, 0x00, 0x5e, 0, 0, 0x12, 0, 0, 0x5e, 0, 1, 1, 0x08, 0x00,
        ];
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[8] = 255;
        ip[9] = proto;
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x31, 1, 100, 1, 0, 100, 0, 0, 10, 0, 0, 1]);
        f
    }

    fn v6(next: u8) -> Vec<u8> {
        let mut f = vec![0x33, 0x33, 0, 0, 0, 0x12, 0, 0, 0x5e, 0, 2, 1, 0x86, 0xdd];
        let mut ip = [0u8; 40];
        ip[0] = 0x60;
        ip[6] = next;
        ip[7] = 255;
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x31, 1, 100, 1, 0, 100, 0, 0]);
        f
    }

    #[test]
    fn accepts_ipv4_protocol_112() {
        assert_eq!(run(&VRRP_FILTER, &v4(112, 0), MULTICAST), ACCEPT_LEN);
        assert_eq!(
            run(&VRRP_FILTER, &v4(112, 0x4000), HOST),
            ACCEPT_LEN,
            "DF is fine"
        );
    }

    #[test]
    fn accepts_ipv6_next_header_112() {
        assert_eq!(run(&VRRP_FILTER, &v6(112), MULTICAST), ACCEPT_LEN);
    }

    #[test]
    fn drops_our_own_outgoing_frames() {
        assert_eq!(run(&VRRP_FILTER, &v4(112, 0), PACKET_OUTGOING), 0);
        assert_eq!(run(&VRRP_FILTER, &v6(112), PACKET_OUTGOING), 0);
    }

    #[test]
    fn drops_other_ip_protocols_and_ethertypes() {
        assert_eq!(run(&VRRP_FILTER, &v4(1, 0), HOST), 0, "ICMP");
        assert_eq!(run(&VRRP_FILTER, &v4(17, 0), HOST), 0, "UDP");
        assert_eq!(run(&VRRP_FILTER, &v6(58), MULTICAST), 0, "ICMPv6");
        let mut arp = v4(112, 0);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(
            run(&VRRP_FILTER, &arp, HOST),
            0,
            "ARP with a 112 at the offset"
        );
    }

    #[test]
    fn drops_ipv6_with_extension_headers() {
        // Hop-by-hop options first: VRRP is not the next header, so not ours (5.1.2).
        assert_eq!(run(&VRRP_FILTER, &v6(0), MULTICAST), 0);
    }

    #[test]
    fn drops_ipv4_fragments() {
        assert_eq!(
            run(&VRRP_FILTER, &v4(112, 0x2000), HOST),
            0,
            "more fragments"
        );
        assert_eq!(run(&VRRP_FILTER, &v4(112, 0x0001), HOST), 0, "non-first");
    }

    #[test]
    fn drops_truncated_frames_without_reading_past_the_end() {
        assert_eq!(run(&VRRP_FILTER, &v4(112, 0)[..20], HOST), 0);
        assert_eq!(run(&VRRP_FILTER, &[0u8; 13], HOST), 0);
        assert_eq!(run(&VRRP_FILTER, &[], HOST), 0);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        for (pc, i) in VRRP_FILTER.iter().enumerate() {
            if i.code & 0x07 == BPF_JMP {
                assert!(pc + 1 + (i.jt as usize) < VRRP_FILTER.len());
                assert!(pc + 1 + (i.jf as usize) < VRRP_FILTER.len());
            }
        }
        assert_eq!(VRRP_FILTER.last().map(|i| i.code), Some(BPF_RET | BPF_K));
        assert_eq!(
            core::mem::size_of::<Insn>(),
            core::mem::size_of::<libc::sock_filter>()
        );
        assert_eq!(run(&DROP_ALL, &v4(112, 0), HOST), 0);
    }

    /// A v3 advert for `vrid` to the group (or `dst`), TTL `ttl`.
    fn v4_advert(vrid: u8, ttl: u8, dst: [u8; 4]) -> Vec<u8> {
        let mut f = v4(112, 0);
        f[14 + 8] = ttl;
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f[14 + 20 + 1] = vrid;
        f
    }

    fn v6_advert(vrid: u8, hop: u8, dst_last: u8) -> Vec<u8> {
        let mut f = v6(112);
        f[14 + 7] = hop;
        let mut dst = [0u8; 16];
        dst[0] = 0xff;
        dst[1] = 0x02;
        dst[15] = dst_last;
        f[14 + 24..14 + 40].copy_from_slice(&dst);
        f[14 + 40 + 1] = vrid;
        f
    }

    const GROUP4: [u8; 4] = [224, 0, 0, 18];
    const MULTICAST_ONLY: VrrpFilterSpec<'static> = VrrpFilterSpec {
        v4_vrids: &[50, 51],
        v6_vrids: &[50],
        v4_unicast: false,
        v6_unicast: false,
        router_solicit: false,
    };

    /// fe80::100 -> ff02::2, a Router Solicitation with hop limit `hops`.
    fn router_solicit(hops: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 40 + 16];
        f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14] = 0x60;
        f[14 + 5] = 16;
        f[14 + 6] = 58;
        f[14 + 7] = hops;
        f[14 + 8] = 0xfe;
        f[14 + 9] = 0x80;
        f[14 + 23] = 1;
        f[14 + 24] = 0xff;
        f[14 + 25] = 0x02;
        f[14 + 39] = 2;
        f[14 + 40] = 133;
        f
    }

    #[test]
    fn built_filter_admits_router_solicitations_only_with_ra() {
        let p = vrrp_filter(&MULTICAST_ONLY);
        assert_eq!(run(&p, &router_solicit(255), MULTICAST), 0);
        let p = vrrp_filter(&VrrpFilterSpec {
            router_solicit: true,
            ..MULTICAST_ONLY
        });
        assert_eq!(run(&p, &router_solicit(255), MULTICAST), ACCEPT_LEN);
        assert_eq!(run(&p, &router_solicit(64), MULTICAST), 0, "RFC 4861 6.1.1");
        let mut na = router_solicit(255);
        na[14 + 40] = 136;
        assert_eq!(run(&p, &na, MULTICAST), 0);
        // Adverts as before.
        assert_eq!(run(&p, &v6_advert(50, 255, 0x12), MULTICAST), ACCEPT_LEN);
        assert_eq!(run(&p, &v6_advert(51, 255, 0x12), MULTICAST), 0);
    }

    #[test]
    fn built_filter_admits_configured_vrids_to_the_group_with_ttl_255() {
        let p = vrrp_filter(&MULTICAST_ONLY);
        assert_eq!(run(&p, &v4_advert(50, 255, GROUP4), MULTICAST), ACCEPT_LEN);
        assert_eq!(run(&p, &v4_advert(51, 255, GROUP4), MULTICAST), ACCEPT_LEN);
        assert_eq!(run(&p, &v6_advert(50, 255, 0x12), MULTICAST), ACCEPT_LEN);
        // Padded to Ethernet's 60-byte minimum.
        let mut padded = v4_advert(50, 255, GROUP4);
        padded.resize(60, 0);
        assert_eq!(run(&p, &padded, MULTICAST), ACCEPT_LEN);
    }

    #[test]
    fn built_filter_drops_ttl_below_255_to_the_group_even_to_our_mac_7_1() {
        let p = vrrp_filter(&MULTICAST_ONLY);
        assert_eq!(run(&p, &v4_advert(50, 64, GROUP4), HOST), 0);
        assert_eq!(run(&p, &v4_advert(50, 254, GROUP4), MULTICAST), 0);
        assert_eq!(run(&p, &v6_advert(50, 1, 0x12), MULTICAST), 0);
        // With unicast peers the group still needs 255; only unicast skips it.
        let uni = VrrpFilterSpec {
            v4_unicast: true,
            v6_unicast: true,
            router_solicit: false,
            ..MULTICAST_ONLY
        };
        let p = vrrp_filter(&uni);
        assert_eq!(run(&p, &v4_advert(50, 64, GROUP4), HOST), 0);
        assert_eq!(run(&p, &v4_advert(50, 64, [10, 0, 0, 1]), HOST), ACCEPT_LEN);
        assert_eq!(run(&p, &v6_advert(50, 64, 0x01), HOST), ACCEPT_LEN);
    }

    #[test]
    fn built_filter_drops_unicast_without_unicast_peers() {
        let p = vrrp_filter(&MULTICAST_ONLY);
        assert_eq!(run(&p, &v4_advert(50, 255, [10, 0, 0, 1]), HOST), 0);
        assert_eq!(run(&p, &v6_advert(50, 255, 0x01), HOST), 0);
    }

    #[test]
    fn built_filter_drops_unknown_vrids() {
        let p = vrrp_filter(&MULTICAST_ONLY);
        assert_eq!(run(&p, &v4_advert(52, 255, GROUP4), MULTICAST), 0);
        assert_eq!(run(&p, &v6_advert(51, 255, 0x12), MULTICAST), 0);
        let none = vrrp_filter(&VrrpFilterSpec::default());
        assert_eq!(run(&none, &v4_advert(50, 255, GROUP4), MULTICAST), 0);
        // Beyond the kernel's list length every VRID of the family passes to user space.
        let many: Vec<u8> = (1..=40).collect();
        let p = vrrp_filter(&VrrpFilterSpec {
            v4_vrids: &many,
            ..VrrpFilterSpec::default()
        });
        assert_eq!(run(&p, &v4_advert(200, 255, GROUP4), MULTICAST), ACCEPT_LEN);
    }

    /// 802.1Q 9.6: VLAN ID 0 is a priority tag, the frame is this link's (the kernel hands it
    /// to IP untagged; keepalived hears it). IPv4 and IPv6, any priority.
    #[test]
    fn built_filter_accepts_priority_tagged_adverts() {
        let p = vrrp_filter(&VrrpFilterSpec {
            v4_vrids: &[50],
            v6_vrids: &[50],
            ..VrrpFilterSpec::default()
        });
        for tci in [0x0000, 0xe000, 0x2000] {
            let v4 = v4_advert(50, 255, GROUP4);
            assert_eq!(
                run_meta(&p, &v4, MULTICAST, Some(tci)),
                ACCEPT_LEN,
                "{tci:#x}"
            );
            let v6 = v6_advert(50, 255, 0x12);
            assert_eq!(
                run_meta(&p, &v6, MULTICAST, Some(tci)),
                ACCEPT_LEN,
                "{tci:#x}"
            );
        }
        // A second tag inside the priority tag (QinQ) is another VLAN's frame.
        let mut qinq = v4_advert(50, 255, GROUP4);
        qinq[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        assert_eq!(run_meta(&p, &qinq, MULTICAST, Some(0)), 0);
        // A VLAN ID is still a foreign VLAN, in either family.
        let v6 = v6_advert(50, 255, 0x12);
        assert_eq!(run_meta(&p, &v6, MULTICAST, Some(0x0001)), 0);
    }

    #[test]
    fn built_filter_drops_tagged_other_host_own_and_odd_lengths() {
        let p = vrrp_filter(&MULTICAST_ONLY);
        let f = v4_advert(50, 255, GROUP4);
        assert_eq!(run_meta(&p, &f, MULTICAST, Some(10)), 0, "VLAN tag");
        assert_eq!(
            run_meta(&p, &f, MULTICAST, Some(0xe00a)),
            0,
            "VLAN 10 with priority 7"
        );
        assert_eq!(run(&p, &f, PACKET_OTHERHOST), 0, "other host");
        assert_eq!(run(&p, &f, PACKET_OUTGOING), 0, "our own");
        let mut long = f.clone();
        long.resize(MAX_FRAME as usize + 1, 0);
        assert_eq!(run(&p, &long, MULTICAST), 0, "too long");
        assert_eq!(
            run(&p, &f[..MIN_FRAME as usize - 1], MULTICAST),
            0,
            "too short"
        );
        let mut opts = f.clone();
        opts[14] = 0x46;
        assert_eq!(run(&p, &opts, MULTICAST), 0, "IPv4 options");
        let mut frag = f.clone();
        frag[14 + 6] = 0x20;
        assert_eq!(run(&p, &frag, MULTICAST), 0, "fragment");
        let mut udp = f;
        udp[14 + 9] = 17;
        assert_eq!(run(&p, &udp, MULTICAST), 0, "UDP");
    }

    #[test]
    fn built_filter_jumps_stay_inside_the_largest_program() {
        let all: Vec<u8> = (1..=MAX_KERNEL_VRIDS as u8).collect();
        let p = vrrp_filter(&VrrpFilterSpec {
            v4_vrids: &all,
            v6_vrids: &all,
            v4_unicast: true,
            v6_unicast: true,
            router_solicit: false,
        });
        assert!(p.len() < MAX_PROGRAM, "{} instructions", p.len());
        for (pc, i) in p.iter().enumerate() {
            if i.code == BPF_JMP | BPF_JA {
                assert!(pc + 1 + (i.k as usize) < p.len());
            } else if i.code & 0x07 == BPF_JMP {
                assert!(pc + 1 + (i.jt as usize) < p.len());
                assert!(pc + 1 + (i.jf as usize) < p.len());
            }
        }
        assert_eq!(run(&p, &v4_advert(32, 255, GROUP4), MULTICAST), ACCEPT_LEN);
        assert_eq!(run(&p, &v6_advert(1, 255, 0x12), MULTICAST), ACCEPT_LEN);
    }
}
