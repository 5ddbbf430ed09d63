//! 802.1Q priority tags (VLAN ID 0, 802.1Q 9.6): a peer or switch that adds 802.1p priority
//! to VRRP frames leaves them on this link; the kernel hands them to IP untagged and
//! keepalived hears them. minivrrp must hear them too (BPF filter and user space), IPv4 and
//! IPv6, while keepalived hears minivrrp's through the same tagging.
//!
//! The lab switch tags every VRRP frame: a bridge nftables rule drops untagged VRRP between
//! ports, and a relay in the switch namespace re-sends each router's VRRP frames to the other
//! ports with a priority tag (priority 5, VLAN ID 0) inserted. (No act_vlan or 8021q module is
//! needed, so it runs in any container with nftables.)
//!
//! Root: `cargo test --test lab priority_tag_lab::` (keepalived, nft).

use crate::common;

use common::attack::in_netns;
use common::knobs::minivrrp_bin;
use common::lab::{self, Lab, Proc, VrrpSpec};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The switch's VRRP relay: every VRRP frame a router sends reaches the others priority-tagged.
struct Tagger {
    stop: Arc<AtomicBool>,
    tagged: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Tagger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn is_vrrp(f: &[u8]) -> bool {
    match f.get(12..14) {
        Some([0x08, 0x00]) => f.get(14 + 9) == Some(&112),
        Some([0x86, 0xdd]) => f.get(14 + 6) == Some(&112),
        _ => false,
    }
}

/// Inserts an 802.1Q tag after the MAC addresses: TPID 0x8100, priority 5, VLAN ID 0.
fn priority_tagged(f: &[u8]) -> Vec<u8> {
    let tci: u16 = 5 << 13;
    let mut t = Vec::with_capacity(f.len() + 4);
    t.extend_from_slice(&f[..12]);
    t.extend_from_slice(&0x8100u16.to_be_bytes());
    t.extend_from_slice(&tci.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

fn start_tagger(lab: &Lab, ports: &[&str]) -> Tagger {
    // Untagged VRRP no longer crosses the switch: only the relay's tagged copies do.
    for cmd in [
        &["nft", "add", "table", "bridge", "ptag"][..],
        &[
            "nft",
            "add chain bridge ptag forward { type filter hook forward priority 0; }",
        ][..],
        &["nft", "add rule bridge ptag forward ip protocol 112 drop"][..],
        &["nft", "add rule bridge ptag forward ip6 nexthdr 112 drop"][..],
    ] {
        let out = lab.exec_switch(cmd);
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names: Vec<String> = ports.iter().map(|s| s.to_string()).collect();
    let (fd, indexes) = in_netns(&lab.switch_ns, move || {
        // SAFETY: plain syscalls on a fresh fd, in this thread's namespace.
        unsafe {
            let raw = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                i32::from((libc::ETH_P_ALL as u16).to_be()),
            );
            assert!(raw >= 0, "AF_PACKET socket");
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 50_000,
            };
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            let idx: Vec<i32> = names
                .iter()
                .map(|n| {
                    let c = std::ffi::CString::new(n.as_str()).unwrap();
                    libc::if_nametoindex(c.as_ptr()) as i32
                })
                .collect();
            assert!(idx.iter().all(|i| *i > 0), "ports {names:?}");
            (OwnedFd::from_raw_fd(raw), idx)
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let tagged = Arc::new(AtomicU64::new(0));
    let (s, t) = (stop.clone(), tagged.clone());
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !s.load(Ordering::Relaxed) {
            // SAFETY: sockaddr_ll is plain old data; buffers valid for the lengths given.
            let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut sl = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            let n = unsafe {
                libc::recvfrom(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut sa as *mut libc::sockaddr_ll).cast(),
                    &mut sl,
                )
            };
            if n <= 0 || sa.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let f = &buf[..n as usize];
            if !indexes.contains(&sa.sll_ifindex) || !is_vrrp(f) {
                continue;
            }
            let out = priority_tagged(f);
            for &to in indexes.iter().filter(|i| **i != sa.sll_ifindex) {
                let mut d: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                d.sll_family = libc::AF_PACKET as u16;
                d.sll_ifindex = to;
                d.sll_halen = 6;
                d.sll_addr[..6].copy_from_slice(&out[..6]);
                // SAFETY: as above.
                unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        out.as_ptr().cast(),
                        out.len(),
                        0,
                        (&d as *const libc::sockaddr_ll).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    );
                }
                t.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    Tagger {
        stop,
        tagged,
        thread: Some(thread),
    }
}

/// Two instances per family: keepalived (r1) masters one, minivrrp (r2) the other; each is
/// backup of the other's. Both hearing the other's priority-tagged adverts keeps exactly one
/// holder per VIP.
#[test]
fn priority_tagged_adverts_are_heard_both_ways_v4_and_v6() {
    require!(root, "keepalived");
    require!("nft");
    let lab = Lab::with_routers("ptag", 2);
    let tagger = start_tagger(&lab, &["vr1", "vr2"]);
    let int = 0.1;
    let spec = |vrid: u8, prio: u8, vip: &str| {
        if vip.contains(':') {
            VrrpSpec::v6(vrid, prio, int, vip)
        } else {
            VrrpSpec::new(vrid, prio, 3, int, vip)
        }
    };
    let (k4, m4, k6, m6) = (
        "10.0.0.241/24",
        "10.0.0.242/24",
        "fd00::241/64",
        "fd00::242/64",
    );
    let r1 = [
        spec(61, 200, k4),
        spec(62, 100, m4),
        spec(63, 200, k6),
        spec(64, 100, m6),
    ];
    let r2 = [
        spec(61, 100, k4),
        spec(62, 200, m4),
        spec(63, 100, k6),
        spec(64, 200, m6),
    ];
    // keepalived first, alone master of everything; then minivrrp, which must take only its
    // own two VIPs back.
    let keepalived: Proc = lab.spawn_keepalived("r1", &r1);
    let (h, _) = lab.wait_holders("fd00::241", &["r1"], Duration::from_secs(15));
    assert_eq!(h, ["r1"], "{}", keepalived.log_text());
    let minivrrp: Proc = lab.spawn_minivrrp("r2", &minivrrp_bin(), &r2);
    let logs = || lab::logs(&[&keepalived, &minivrrp]);
    for (vip, owner) in [
        ("10.0.0.241", "r1"),
        ("10.0.0.242", "r2"),
        ("fd00::241", "r1"),
        ("fd00::242", "r2"),
    ] {
        let (h, _) = lab.wait_holders(vip, &[owner], Duration::from_secs(15));
        assert_eq!(h, [owner], "{vip}\n{}", logs());
    }
    // Steady: several Master_Down_Intervals later, still one holder each, no takeovers.
    std::thread::sleep(Duration::from_secs(2));
    for (vip, owner) in [
        ("10.0.0.241", "r1"),
        ("10.0.0.242", "r2"),
        ("fd00::241", "r1"),
        ("fd00::242", "r2"),
    ] {
        assert_eq!(lab.holders(vip), [owner], "{vip}\n{}", logs());
    }
    let m = minivrrp.log_text();
    assert!(
        !m.contains("vi61: BACKUP -> MASTER") && !m.contains("vi63: BACKUP -> MASTER"),
        "minivrrp did not hear keepalived's priority-tagged adverts\n{m}"
    );
    assert!(
        !m.contains("vlan-tagged"),
        "priority tags counted as another VLAN\n{m}"
    );
    assert!(
        tagger.tagged.load(Ordering::Relaxed) > 40,
        "the relay tagged nothing"
    );
    drop(tagger);
}
