//! ICMP echo checks: echo request/reply encoding (RFC 792 for IPv4, RFC 4443 4.1/4.2 for
//! IPv6) and the check that sends one echo per attempt and waits for the matching reply.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Identifier          |        Sequence Number        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Data ...
//! +-+-+-+-+-
//! ```

use super::schedule::{Attempt, Health, Runner, Schedule};
use super::{push, Action, Actions, Input, Reason};
use crate::base::Instant;
use core::net::IpAddr;
use smoltcp::wire::{Icmpv4Message, Icmpv4Packet, Icmpv6Message};

/// Echo header length.
pub const HEADER_LEN: usize = 8;

/// Write an echo request into `buf`; returns its length, or `None` if `buf` is too small.
/// For IPv6 the checksum is left 0: it covers a pseudo-header with the source address, which
/// only the kernel knows, and Linux fills it for every ICMPv6 socket.
pub fn build_echo_request(
    buf: &mut [u8],
    v6: bool,
    ident: u16,
    seq: u16,
    payload: &[u8],
) -> Option<usize> {
    let len = HEADER_LEN + payload.len();
    let pkt = buf.get_mut(..len)?;
    pkt[0] = if v6 {
        u8::from(Icmpv6Message::EchoRequest)
    } else {
        u8::from(Icmpv4Message::EchoRequest)
    };
    pkt[1] = 0;
    pkt[2..4].copy_from_slice(&[0, 0]);
    pkt[4..6].copy_from_slice(&ident.to_be_bytes());
    pkt[6..8].copy_from_slice(&seq.to_be_bytes());
    pkt[8..].copy_from_slice(payload);
    if !v6 {
        Icmpv4Packet::new_unchecked(pkt).fill_checksum();
    }
    Some(len)
}

/// Why a received ICMP message is not an echo reply for us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoParseError {
    TooShort,
    /// Another ICMP type (a request we see on a raw socket, unreachable, ...).
    NotEchoReply(u8),
    BadChecksum,
}

/// An echo reply's identifier and sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoReply {
    pub ident: u16,
    pub seq: u16,
}

/// Parse an ICMP message (no IP header). The IPv4 checksum is verified; the ICMPv6 one was
/// already verified by the kernel, which drops bad ones.
pub fn parse_echo_reply(msg: &[u8], v6: bool) -> Result<EchoReply, EchoParseError> {
    if msg.len() < HEADER_LEN {
        return Err(EchoParseError::TooShort);
    }
    let want = if v6 {
        u8::from(Icmpv6Message::EchoReply)
    } else {
        u8::from(Icmpv4Message::EchoReply)
    };
    if msg[0] != want || msg[1] != 0 {
        return Err(EchoParseError::NotEchoReply(msg[0]));
    }
    // The echo fields sit at the same offsets in both versions.
    let p = Icmpv4Packet::new_unchecked(msg);
    if !v6 && !p.verify_checksum() {
        return Err(EchoParseError::BadChecksum);
    }
    Ok(EchoReply {
        ident: p.echo_ident(),
        seq: p.echo_seq_no(),
    })
}

/// A PING_CHECK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpSpec {
    pub dst: IpAddr,
    /// Echo identifier; the daemon gives each ICMP check its own so replies on a shared
    /// raw socket can be told apart.
    pub ident: u16,
    pub schedule: Schedule,
    pub weight: i32,
}

/// Sends one echo per attempt and succeeds on the reply with the same ident/seq from `dst`.
#[derive(Clone, Debug)]
pub struct IcmpCheck {
    spec: IcmpSpec,
    runner: Runner,
    seq: u16,
    waiting: bool,
}

impl IcmpCheck {
    pub fn new(spec: &IcmpSpec, seed: u64, now: Instant) -> Self {
        IcmpCheck {
            spec: spec.clone(),
            runner: Runner::new(spec.schedule, spec.weight, seed, now),
            // Start from a seed-derived sequence so a restart does not reuse recent numbers.
            seq: (seed >> 16) as u16,
            waiting: false,
        }
    }

    pub fn dst(&self) -> IpAddr {
        self.spec.dst
    }

    pub fn ident(&self) -> u16 {
        self.spec.ident
    }

    pub fn health(&self) -> Health {
        self.runner.health()
    }

    pub fn weight(&self) -> i32 {
        self.runner.weight()
    }

    pub fn last_attempt(&self) -> Option<Attempt> {
        self.runner.last()
    }

    pub fn poll_at(&self) -> Instant {
        self.runner.poll_at()
    }

    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Actions {
        let mut out = Actions::new();
        match input {
            Input::Tick => {
                if self.runner.expired(now) {
                    self.end(now, Reason::Timeout, &mut out);
                } else if !self.waiting && self.runner.due(now) {
                    self.runner.begin(now);
                    self.seq = self.seq.wrapping_add(1);
                    self.waiting = true;
                    push(
                        &mut out,
                        Action::SendEcho {
                            dst: self.spec.dst,
                            ident: self.spec.ident,
                            seq: self.seq,
                        },
                    );
                }
            }
            // A reply to an older (timed-out) request or to someone else is not ours.
            Input::EchoReply { from, ident, seq }
                if self.waiting
                    && from == self.spec.dst
                    && ident == self.spec.ident
                    && seq == self.seq =>
            {
                self.end(now, Reason::Ok, &mut out);
            }
            Input::SendFailed(e) if self.waiting => self.end(now, Reason::SendFailed(e), &mut out),
            _ => {}
        }
        out
    }

    fn end(&mut self, now: Instant, reason: Reason, out: &mut Actions) {
        self.waiting = false;
        if let Some(r) = self.runner.finish(now, reason) {
            push(out, Action::Report(r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071, written out as the oracle the encoder is checked against.
    fn checksum(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for c in data.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn echo_request_v4_has_valid_checksum_and_roundtrips_as_reply() {
        let mut buf = [0u8; 64];
        let n = build_echo_request(&mut buf, false, 0x1234, 7, b"minivrrp").unwrap();
        assert_eq!(n, 16);
        assert_eq!(&buf[..8], &[8, 0, buf[2], buf[3], 0x12, 0x34, 0, 7]);
        assert_eq!(&buf[8..n], b"minivrrp");
        assert_eq!(checksum(&buf[..n]), 0);
        // Turn it into the reply a host would send: type 0, checksum fixed up.
        buf[0] = 0;
        buf[2..4].copy_from_slice(&[0, 0]);
        let c = checksum(&buf[..n]);
        buf[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            parse_echo_reply(&buf[..n], false),
            Ok(EchoReply {
                ident: 0x1234,
                seq: 7
            })
        );
        buf[9] ^= 1;
        assert_eq!(
            parse_echo_reply(&buf[..n], false),
            Err(EchoParseError::BadChecksum)
        );
    }

    #[test]
    fn echo_v6_types_and_rejects() {
        let mut buf = [0u8; 16];
        let n = build_echo_request(&mut buf, true, 1, 2, &[]).unwrap();
        assert_eq!((n, buf[0]), (8, 128));
        assert_eq!(
            parse_echo_reply(&buf[..n], true),
            Err(EchoParseError::NotEchoReply(128))
        );
        buf[0] = 129;
        assert_eq!(
            parse_echo_reply(&buf[..n], true),
            Ok(EchoReply { ident: 1, seq: 2 })
        );
        assert_eq!(
            parse_echo_reply(&buf[..4], true),
            Err(EchoParseError::TooShort)
        );
        assert!(build_echo_request(&mut buf[..7], true, 1, 2, &[]).is_none());
    }
}
