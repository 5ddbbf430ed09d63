//! What the packet socket hands over for each received frame, whichever way it was read
//! (`recvmsg` in `mod.rs`, the TPACKET_V3 ring in `ring.rs`).

use crate::base::Instant;

/// `sll_pkttype` of a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PktType {
    Host,
    Broadcast,
    Multicast,
    OtherHost,
    /// A frame this host sent, looped back by the packet tap. Never an advert from a peer.
    Outgoing,
    Other(u8),
}

impl PktType {
    pub fn from_raw(t: u8) -> PktType {
        match t {
            0 => PktType::Host,
            1 => PktType::Broadcast,
            2 => PktType::Multicast,
            3 => PktType::OtherHost,
            4 => PktType::Outgoing,
            x => PktType::Other(x),
        }
    }
}

/// Metadata of one received frame; the bytes are in the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvFrame {
    /// Bytes stored in the buffer.
    pub len: usize,
    /// The frame was longer than the buffer (and is cut to `len`): drop it.
    pub truncated: bool,
    pub pkttype: PktType,
    pub ifindex: u32,
    /// Link-layer source address.
    pub src_mac: [u8; 6],
    /// The frame carried a VLAN tag with a VLAN ID (not a priority tag), which the kernel
    /// stripped (PACKET_AUXDATA `TP_STATUS_VLAN_VALID`): the BPF filter drops these first,
    /// this is the second line.
    pub vlan_tagged: bool,
    /// When the frame arrived, if the receive path knows (the ring's kernel timestamp);
    /// `None` when it was read as it arrived (`recvmsg`), so the reading time is its arrival.
    pub at: Option<Instant>,
}

/// `tp_status` bits of PACKET_AUXDATA and of a ring frame's header (linux/if_packet.h).
pub(super) const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
pub(super) const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// A frame whose stripped tag (`tp_status`, `tp_vlan_tci` of PACKET_AUXDATA or the ring's
/// header) names a VLAN: tagged, and not a priority tag (VLAN ID 0).
pub(super) fn foreign_vlan(tp_status: u32, tci: u32) -> bool {
    let tagged = tp_status & (TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID) != 0 || tci != 0;
    tagged && tci & crate::sys::bpf::VLAN_VID_MASK != 0
}
