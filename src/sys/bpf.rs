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

use crate::vrrp::wire::IPPROTO_VRRP;
use nix::errno::Errno;
use std::os::fd::RawFd;

// Classic BPF opcodes (linux/bpf_common.h, linux/filter.h). Hand-defined so the program is
// a `const` independent of which libc exposes them.
pub const BPF_LD: u16 = 0x00;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_W: u16 = 0x00;
pub const BPF_H: u16 = 0x08;
pub const BPF_B: u16 = 0x10;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JSET: u16 = 0x40;
pub const BPF_K: u16 = 0x00;
/// Ancillary data area: loads at `SKF_AD_OFF + x` read skb metadata, not packet bytes.
pub const SKF_AD_OFF: u32 = (-0x1000i32) as u32;
pub const SKF_AD_PKTTYPE: u32 = 4;
/// `sll_pkttype` of a frame we transmitted, seen by the packet tap.
pub const PACKET_OUTGOING: u32 = 4;
pub const ETH_P_IP: u32 = 0x0800;
pub const ETH_P_IPV6: u32 = 0x86dd;

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
/// Jump offsets are relative to the next instruction.
pub const VRRP_FILTER: [Insn; 13] = [
    /* 0 */ stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE),
    /* 1 */
    jump(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 10, 0), // own frame -> 12 drop
    /* 2 */ stmt(BPF_LD | BPF_H | BPF_ABS, 12), // ethertype
    /* 3 */ jump(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 4), // not IPv4 -> 8
    /* 4 */ stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 9), // IPv4 protocol
    /* 5 */ jump(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_VRRP as u32, 0, 6), // -> 12 drop
    /* 6 */ stmt(BPF_LD | BPF_H | BPF_ABS, 14 + 6), // flags + fragment offset
    // MF set or offset != 0: a fragment, which a 20-1044 byte advert never legitimately is.
    /* 7 */
    jump(BPF_JMP | BPF_JSET | BPF_K, 0x3fff, 4, 3), // -> 12 drop / 11 accept
    /* 8 */ jump(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 3), // not IPv6 -> 12 drop
    /* 9 */ stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 6), // IPv6 next header
    /* 10 */ jump(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_VRRP as u32, 0, 1), // -> 11 / 12
    /* 11 */ stmt(BPF_RET | BPF_K, ACCEPT_LEN),
    /* 12 */ stmt(BPF_RET | BPF_K, 0),
];

/// Drops everything: for sockets we only send on (a raw IP socket would otherwise queue
/// every VRRP packet the host receives, a second copy nobody reads).
pub const DROP_ALL: [Insn; 1] = [stmt(BPF_RET | BPF_K, 0)];

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
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => {
                    if i.k == SKF_AD_OFF + SKF_AD_PKTTYPE {
                        a = pkttype;
                    } else {
                        let k = i.k as usize;
                        let Some(b) = pkt.get(k..k + 4) else { return 0 };
                        a = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    }
                }
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
                c if c == BPF_JMP | BPF_JEQ | BPF_K => {
                    pc += if a == i.k { i.jt } else { i.jf } as usize;
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
}
