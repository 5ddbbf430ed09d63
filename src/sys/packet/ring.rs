//! A packet socket's receive ring (PACKET_RX_RING, TPACKET_V3): the kernel writes frames
//! into memory shared with us, in blocks, and wakes the reader once per block: when the block
//! is full, or when its retire timeout (`tp_retire_blk_tov`) has passed since it was opened.
//!
//! Why: a backup receives every master's adverts (50 instances at 0.1 s are 500 frames a
//! second). With one `recvmsg` per frame it woke up for nearly every frame; with the ring it
//! wakes at most once per timeout and reads the frames from memory, without a syscall each.
//! The price is a delivery delay of up to the timeout. Each frame carries the kernel's
//! receive timestamp, which [`RxRing::next`] turns into a monotonic [`Instant`], so timers
//! armed from a frame (RFC 5798 6.4.2 Master_Down_Timer) count from its arrival, not from
//! the wake-up; the owner keeps the timeout well below the Skew_Time it must not eat into.
//!
//! Layout (linux/if_packet.h): a block starts with `tpacket_block_desc`; its `block_status`
//! says who owns it (kernel or user) and `num_pkts` how many frames it holds; each frame is a
//! `tpacket3_hdr`, then a `sockaddr_ll`, then the frame bytes at `tp_mac`.

use core::sync::atomic::{AtomicU32, Ordering};
use std::os::fd::RawFd;

use nix::errno::Errno;

use super::frame::{PktType, RecvFrame};
use crate::base::{Duration, Instant};
use crate::sys::clock;
use crate::sys::fd::setsockopt_raw;

const PACKET_RX_RING: libc::c_int = 5;
const PACKET_VERSION: libc::c_int = 10;
const TPACKET_V3: libc::c_int = 2;

const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;

/// Block size: a multiple of the page size. 8 KiB holds about 50 small adverts with their
/// headers, so a burst of 255 instances' adverts fills 5 blocks.
pub const BLOCK_SIZE: usize = 8192;
/// Blocks in the ring: 64 KiB in all, mapped (and so resident) for each listening interface.
pub const BLOCKS: usize = 8;
/// Required by the kernel's checks for TPACKET_V3 (frames are packed by `tp_next_offset`,
/// the frame size itself is not used): a multiple of 16 that divides the block size.
const FRAME_SIZE: usize = 2048;

/// `struct tpacket_req3`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TpacketReq3 {
    tp_block_size: u32,
    tp_block_nr: u32,
    tp_frame_size: u32,
    tp_frame_nr: u32,
    tp_retire_blk_tov: u32,
    tp_sizeof_priv: u32,
    tp_feature_req_word: u32,
}

/// `struct tpacket_block_desc` with its `tpacket_hdr_v1`, up to the fields read here.
mod block {
    /// u32: TP_STATUS_KERNEL or TP_STATUS_USER.
    pub const STATUS: usize = 8;
    /// u32: frames in the block.
    pub const NUM_PKTS: usize = 12;
    /// u32: offset of the first frame from the block's start.
    pub const FIRST_PKT: usize = 16;
}

/// `struct tpacket3_hdr` (48 bytes, aligned to 16), then the `sockaddr_ll`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Tpacket3Hdr {
    tp_next_offset: u32,
    tp_sec: u32,
    tp_nsec: u32,
    tp_snaplen: u32,
    tp_len: u32,
    tp_status: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_rxhash: u32,
    tp_vlan_tci: u32,
    tp_vlan_tpid: u16,
    tp_padding: u16,
    tp_padding2: [u8; 8],
}
const HDR_LEN: usize = 48;
const _: () = assert!(core::mem::size_of::<Tpacket3Hdr>() == HDR_LEN);
const SLL_LEN: usize = core::mem::size_of::<libc::sockaddr_ll>();

/// How long after its timestamp a frame may be read and still count from that timestamp.
/// Beyond this (the daemon was busy, or the wall clock was stepped forward between the
/// frame and the read, which shifts the conversion), the frame counts from
/// `read time - limit`: later than its arrival, so a timer armed from it errs late (as
/// reading on arrival always did), never early by more than this.
const AGE_SLACK: Duration = Duration::from_millis(10);

/// The mapped ring of one packet socket. Dropping it unmaps the memory; the kernel frees the
/// ring with the socket (or with [`RxRing::unmap`]).
pub struct RxRing {
    fd: RawFd,
    base: *mut u8,
    /// Block being read.
    cur: usize,
    /// Within the current block (valid while `open`): frames read, offset of the next one.
    read: u32,
    off: usize,
    open: bool,
    /// Monotonic and wall clock read when the current block was opened.
    clocks: (Instant, u64),
    max_age: Duration,
}

impl RxRing {
    /// Set up a TPACKET_V3 ring on packet socket `fd` whose blocks are handed over at the
    /// latest `delay` after they were opened (whole milliseconds, at least 1: the kernel's
    /// unit). The socket must have no ring yet; its frames now go to the ring only.
    pub fn map(fd: RawFd, delay: Duration) -> Result<RxRing, Errno> {
        setsockopt_raw(fd, libc::SOL_PACKET, PACKET_VERSION, &TPACKET_V3)?;
        let tov = delay.as_millis().clamp(1, 1000) as u32;
        let req = TpacketReq3 {
            tp_block_size: BLOCK_SIZE as u32,
            tp_block_nr: BLOCKS as u32,
            tp_frame_size: FRAME_SIZE as u32,
            tp_frame_nr: (BLOCK_SIZE / FRAME_SIZE * BLOCKS) as u32,
            tp_retire_blk_tov: tov,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt_raw(fd, libc::SOL_PACKET, PACKET_RX_RING, &req)?;
        // SAFETY: maps the ring the kernel just allocated for this socket, MAP_SHARED as the
        // packet socket's mmap requires; the size is exactly the ring's.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                BLOCK_SIZE * BLOCKS,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            let e = Errno::last();
            let _ = free_ring(fd);
            return Err(e);
        }
        Ok(RxRing {
            fd,
            base: base as *mut u8,
            cur: 0,
            read: 0,
            off: 0,
            open: false,
            clocks: (Instant::ZERO, 0),
            max_age: Duration::from_millis(u64::from(tov)) + AGE_SLACK,
        })
    }

    /// Unmap and free the ring; the socket's frames go to its receive queue again.
    pub fn unmap(self) -> Result<(), Errno> {
        let fd = self.fd;
        drop(self);
        free_ring(fd)
    }

    fn status(&self, b: usize) -> &AtomicU32 {
        // SAFETY: `b < BLOCKS`, so the word lies inside the mapping, which lives as long as
        // self; it is 4-byte aligned (blocks are page aligned) and shared with the kernel,
        // hence the atomic access.
        unsafe { &*(self.base.add(b * BLOCK_SIZE + block::STATUS) as *const AtomicU32) }
    }

    fn block_u32(&self, b: usize, at: usize) -> u32 {
        // SAFETY: inside block `b` of the mapping; read only while the block is ours.
        unsafe { core::ptr::read_volatile(self.base.add(b * BLOCK_SIZE + at) as *const u32) }
    }

    /// The next frame, copied into `buf` (the frame is cut to `buf`'s length and marked
    /// truncated if longer); `None` when no handed-over block has frames left.
    pub fn next(&mut self, buf: &mut [u8]) -> Option<RecvFrame> {
        // Each pass either returns a frame or moves past a block: bounded by the ring.
        for _ in 0..=BLOCKS {
            if !self.open {
                // Acquire: the frames the kernel wrote before handing the block over.
                if self.status(self.cur).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                    return None;
                }
                self.open = true;
                self.read = 0;
                self.off = self.block_u32(self.cur, block::FIRST_PKT) as usize;
                self.clocks = clock::now_with_wall_micros();
            }
            if self.read < self.block_u32(self.cur, block::NUM_PKTS) {
                if let Some(f) = self.frame(buf) {
                    return Some(f);
                }
            }
            // Done with this block (or it is malformed): give it back to the kernel.
            self.status(self.cur)
                .store(TP_STATUS_KERNEL, Ordering::Release);
            self.open = false;
            self.cur = (self.cur + 1) % BLOCKS;
        }
        None
    }

    /// The frame at `self.off` of the current block, or `None` if its header does not fit
    /// the block (then the rest of the block is skipped).
    fn frame(&mut self, buf: &mut [u8]) -> Option<RecvFrame> {
        let off = self.off;
        if off + HDR_LEN + SLL_LEN > BLOCK_SIZE {
            return None;
        }
        // SAFETY: the header and the sockaddr_ll lie inside the block (checked above), which
        // the kernel handed to us; read_unaligned because we do not rely on its alignment.
        let (h, sll) = unsafe {
            let p = self.base.add(self.cur * BLOCK_SIZE + off);
            (
                core::ptr::read_unaligned(p as *const Tpacket3Hdr),
                core::ptr::read_unaligned(p.add(HDR_LEN) as *const libc::sockaddr_ll),
            )
        };
        let mac = off + usize::from(h.tp_mac);
        let snap = h.tp_snaplen as usize;
        if mac + snap > BLOCK_SIZE {
            return None;
        }
        let len = snap.min(buf.len());
        // SAFETY: `mac + len <= BLOCK_SIZE` inside our block; buf holds `len` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.base.add(self.cur * BLOCK_SIZE + mac),
                buf.as_mut_ptr(),
                len,
            );
        }
        self.read += 1;
        self.off = off + h.tp_next_offset as usize;
        let mut src_mac = [0u8; 6];
        if sll.sll_halen as usize >= 6 {
            src_mac.copy_from_slice(&sll.sll_addr[..6]);
        }
        Some(RecvFrame {
            len,
            truncated: (h.tp_len as usize) > len,
            pkttype: PktType::from_raw(sll.sll_pkttype),
            ifindex: sll.sll_ifindex.max(0) as u32,
            src_mac,
            vlan_tagged: super::frame::foreign_vlan(h.tp_status, h.tp_vlan_tci),
            at: Some(self.arrival(h.tp_sec, h.tp_nsec)),
        })
    }

    /// The kernel stamps frames with the wall clock: move the stamp onto the monotonic clock
    /// through the pair of readings taken when the block was opened, as an age in
    /// `0..=max_age`.
    fn arrival(&self, sec: u32, nsec: u32) -> Instant {
        let (mono, wall) = self.clocks;
        let stamp = u64::from(sec) * 1_000_000 + u64::from(nsec) / 1000;
        let age = Duration::from_micros(wall.saturating_sub(stamp)).min(self.max_age);
        mono - age
    }
}

// SAFETY: the mapping is owned by this value alone (nothing else holds the pointer) and is
// reached only through `&mut self` or `&self` methods; moving it to another thread moves
// that ownership, as with a Box.
unsafe impl Send for RxRing {}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, BLOCK_SIZE * BLOCKS);
        }
    }
}

/// PACKET_RX_RING with no blocks frees the socket's ring (it must be unmapped first).
fn free_ring(fd: RawFd) -> Result<(), Errno> {
    setsockopt_raw(
        fd,
        libc::SOL_PACKET,
        PACKET_RX_RING,
        &TpacketReq3::default(),
    )
}
