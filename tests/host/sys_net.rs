//! Privileged tests of the system layer in private network namespaces:
//!
//! ```text
//!   ns A: e0 10.77.0.1/24 --- pa [br0 in ns S] pb --- e0 10.77.0.2/24 :ns B
//! ```
//! Each test builds its own three namespaces (names carry the pid and the test), removed by
//! a Drop guard even when the test fails. Test logic runs in a forked child that enters the
//! namespaces with setns(2); a socket stays in the namespace it was created in, so one child
//! can hold sockets on both sides. The child reports failures back through a pipe.

use crate::topo::*;
use minivrrp::sys::packet::{McastJoin, PacketSocket, PktType, RawIpSocket};
use minivrrp::sys::rtnl::{self, MacvlanMode, Rtnl, RtnlEvent, RtnlEvents};
use std::net::{IpAddr, Ipv4Addr};

#[test]
fn packet_socket_receives_vrrp_only_and_never_its_own_frames() {
    require!(root);
    let t = Topo::new("pkt");
    in_child(|| {
        enter(&t.a)?;
        let mut rx_a = PacketSocket::open(ifindex("e0")?, &minivrrp::sys::bpf::VRRP_FILTER, None)
            .map_err(|e| e.to_string())?;
        rx_a.join_vrrp_multicast().map_err(|e| e.to_string())?;
        enter(&t.b)?;
        let mut rx_b = PacketSocket::open(ifindex("e0")?, &minivrrp::sys::bpf::VRRP_FILTER, None)
            .map_err(|e| e.to_string())?;
        let tx_b = PacketSocket::open(ifindex("e0")?, &minivrrp::sys::bpf::VRRP_FILTER, None)
            .map_err(|e| e.to_string())?;

        let icmp = ipv4_frame(MCAST_V4, VMAC1, 1, [10, 77, 0, 2], [224, 0, 0, 18]);
        let vrrp4 = ipv4_frame(MCAST_V4, VMAC1, 112, [10, 77, 0, 2], [224, 0, 0, 18]);
        let vrrp6 = ipv6_frame(VMAC1, 112);
        let hbh6 = ipv6_frame(VMAC1, 0);
        for f in [&icmp, &vrrp4, &hbh6, &vrrp6] {
            check(tx_b.send(f) == Ok(Some(f.len())), "send from B")?;
        }
        let (m, got) = recv_within(&mut rx_a, 2000).ok_or("A received no VRRP frame")?;
        check(
            got == vrrp4,
            "first frame in A is the IPv4 VRRP one (ICMP filtered)",
        )?;
        check(m.pkttype == PktType::Multicast, "multicast pkttype")?;
        check(
            m.src_mac == VMAC1 && !m.truncated && !m.is_own(),
            "frame metadata",
        )?;
        let (_, got) = recv_within(&mut rx_a, 2000).ok_or("A received no IPv6 VRRP frame")?;
        check(
            got == vrrp6,
            "second frame is IPv6 VRRP (hop-by-hop one filtered)",
        )?;
        check(
            recv_within(&mut rx_a, 300).is_none(),
            "nothing else reaches A",
        )?;
        check(
            recv_within(&mut rx_b, 300).is_none(),
            "B's own sends are filtered on B",
        )?;

        // A sends: B receives it, A does not see its own frame.
        let from_a = ipv4_frame(MCAST_V4, VMAC1, 112, [10, 77, 0, 1], [224, 0, 0, 18]);
        check(rx_a.send(&from_a).is_ok(), "send from A")?;
        let (_, got) = recv_within(&mut rx_b, 2000).ok_or("B received nothing from A")?;
        check(got == from_a, "B got A's frame")?;
        check(
            recv_within(&mut rx_a, 300).is_none(),
            "A does not receive its own frame",
        )?;
        drop(tx_b);
        Ok(())
    });
}

#[test]
fn raw_ip_socket_sends_unicast_with_ttl_255_and_tos_c0() {
    require!(root);
    let t = Topo::new("raw");
    in_child(|| {
        enter(&t.a)?;
        let mut rx_a = PacketSocket::open(ifindex("e0")?, &minivrrp::sys::bpf::VRRP_FILTER, None)
            .map_err(|e| e.to_string())?;
        enter(&t.b)?;
        let raw = RawIpSocket::ipv4().map_err(|e| e.to_string())?;
        raw.bind_device("e0").map_err(|e| e.to_string())?;
        let payload = [0x31u8, 7, 100, 0, 0, 100, 0, 0];
        let dst = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
        check(
            raw.send_to(&payload, dst, 0).map_err(|e| e.to_string())? == Some(8),
            "sent",
        )?;
        let (m, f) = recv_within(&mut rx_a, 3000).ok_or("A received no unicast VRRP")?;
        check(m.pkttype == PktType::Host, "unicast to this host")?;
        check(f.len() >= 14 + 20 + 8, "length")?;
        check(f[14 + 1] == 0xc0, "TOS 0xc0")?;
        check(f[14 + 8] == 255, "TTL 255 (RFC 5798 5.1.1.3)")?;
        check(f[14 + 9] == 112, "protocol 112")?;
        check(f[14 + 12..14 + 16] == [10, 77, 0, 2], "source is B")?;
        check(f[14 + 20..14 + 28] == payload, "payload intact")?;
        Ok(())
    });
}

#[test]
fn vrrp_group_membership_shows_in_igmp_and_maddr() {
    require!(root);
    let t = Topo::new("igmp");
    in_child(|| {
        enter(&t.a)?;
        let idx = ifindex("e0")?;
        let _v4 = McastJoin::ipv4(idx).map_err(|e| format!("join v4: {e}"))?;
        let _v6 = McastJoin::ipv6(idx).map_err(|e| format!("join v6: {e}"))?;
        let igmp = std::fs::read_to_string("/proc/self/net/igmp").map_err(|e| e.to_string())?;
        // 224.0.0.18 in the kernel's host-order hex.
        check(
            igmp.contains("120000E0"),
            &format!("224.0.0.18 in /proc/net/igmp:\n{igmp}"),
        )?;
        let igmp6 = std::fs::read_to_string("/proc/self/net/igmp6").map_err(|e| e.to_string())?;
        check(
            igmp6.contains("ff020000000000000000000000000012"),
            "ff02::12 in /proc/net/igmp6",
        )?;
        let maddr = run(&["ip", "maddr", "show", "dev", "e0"])?;
        check(
            maddr.contains("01:00:5e:00:00:12"),
            &format!("ip maddr:\n{maddr}"),
        )?;
        check(
            maddr.contains("33:33:00:00:00:12"),
            "ip maddr v6 link address",
        )?;
        Ok(())
    });
}

#[test]
fn rtnl_adds_and_removes_vips_and_reads_link_facts() {
    require!(root);
    let t = Topo::new("addr");
    in_child(|| {
        enter(&t.a)?;
        let mut nl = Rtnl::open().map_err(|e| e.to_string())?;
        let link = nl
            .link_by_name("e0")
            .map_err(|e| format!("link_by_name: {e}"))?;
        check(link.ifindex == ifindex("e0")?, "ifindex")?;
        check(link.is_up(), "e0 is up")?;
        let mac = link.mac.ok_or("no MAC")?;
        let shown = run(&["ip", "-o", "link", "show", "dev", "e0"])?;
        let mac_s = mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        check(shown.contains(&mac_s), "MAC matches ip link")?;
        check(
            nl.link_by_name("nosuch0").is_err(),
            "unknown link is an error",
        )?;
        check(
            nl.primary_ipv4(link.ifindex).map_err(|e| e.to_string())?
                == Some(Ipv4Addr::new(10, 77, 0, 1)),
            "primary IPv4",
        )?;

        let vip = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 100));
        nl.add_address(link.ifindex, vip, 32, None)
            .map_err(|e| format!("add: {e}"))?;
        nl.add_address(link.ifindex, vip, 32, None)
            .map_err(|e| format!("re-add: {e}"))?;
        let shown = run(&["ip", "-o", "addr", "show", "dev", "e0"])?;
        check(
            shown.contains("inet 10.77.0.100/32"),
            &format!("VIP shown:\n{shown}"),
        )?;
        check(
            !shown.contains("10.77.0.100/32 brd"),
            "no broadcast on the VIP",
        )?;
        let mut seen = false;
        nl.for_each_address(Some(link.ifindex), |a| {
            seen |= a.addr == vip && a.prefix == 32
        })
        .map_err(|e| e.to_string())?;
        check(seen, "dump lists the VIP")?;
        nl.del_address(link.ifindex, vip, 32)
            .map_err(|e| format!("del: {e}"))?;
        let shown = run(&["ip", "-o", "addr", "show", "dev", "e0"])?;
        check(!shown.contains("10.77.0.100"), "VIP gone")?;
        check(
            nl.del_address(link.ifindex, vip, 32) == Err(nix::errno::Errno::EADDRNOTAVAIL),
            "deleting twice says EADDRNOTAVAIL",
        )?;

        // A lifetime goes into IFA_CACHEINFO as valid and preferred lifetime (both families);
        // a refresh (replace) resets it; the kernel removes the address when it runs out.
        let lease4 = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 101));
        let lease6 = IpAddr::V6("fd00:77::101".parse().unwrap());
        nl.add_address(link.ifindex, lease4, 32, Some(30))
            .map_err(|e| format!("add with lifetime: {e}"))?;
        nl.add_address(link.ifindex, lease6, 128, Some(30))
            .map_err(|e| format!("add v6 with lifetime: {e}"))?;
        for (family, addr) in [("-4", "10.77.0.101/32"), ("-6", "fd00:77::101/128")] {
            let shown = run(&["ip", "-o", family, "addr", "show", "dev", "e0"])?;
            let l = shown.lines().find(|l| l.contains(addr)).unwrap_or("");
            check(
                (l.contains("valid_lft 30sec") || l.contains("valid_lft 29sec"))
                    && (l.contains("preferred_lft 30sec") || l.contains("preferred_lft 29sec")),
                &format!("{addr} carries its 30 s lifetime:\n{shown}"),
            )?;
        }
        nl.add_address(link.ifindex, lease4, 32, Some(2))
            .map_err(|e| format!("refresh: {e}"))?;
        nl.add_address(link.ifindex, lease6, 128, Some(2))
            .map_err(|e| format!("refresh v6: {e}"))?;
        let t0 = std::time::Instant::now();
        let present = |a: &str| -> Result<bool, String> {
            Ok(run(&["ip", "-o", "addr", "show", "dev", "e0"])?.contains(a))
        };
        while present("10.77.0.101/32")? || present("fd00:77::101/128")? {
            check(t0.elapsed().as_secs_f64() < 4.0, "leased addresses expire")?;
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        check(
            t0.elapsed().as_secs_f64() > 1.5,
            &format!("not expired early ({:?})", t0.elapsed()),
        )?;
        // A refresh after expiry adds the address back.
        nl.add_address(link.ifindex, lease4, 32, Some(2))
            .map_err(|e| format!("late refresh: {e}"))?;
        check(present("10.77.0.101/32")?, "late refresh re-adds")?;
        nl.del_address(link.ifindex, lease4, 32)
            .map_err(|e| format!("del leased: {e}"))?;

        // IPv6: a control address added by `ip` is tentative (DAD runs here); ours is not.
        run(&["ip", "addr", "add", "fd00:77::200/64", "dev", "e0"])?;
        let vip6 = IpAddr::V6("fd00:77::100".parse().unwrap());
        nl.add_address(link.ifindex, vip6, 64, None)
            .map_err(|e| format!("add v6: {e}"))?;
        let shown = run(&["ip", "-o", "-6", "addr", "show", "dev", "e0"])?;
        let line = |a: &str| {
            shown
                .lines()
                .find(|l| l.contains(a))
                .unwrap_or("")
                .to_string()
        };
        check(
            line("fd00:77::200/64").contains("tentative"),
            &format!("DAD active:\n{shown}"),
        )?;
        let ours = line("fd00:77::100/64");
        check(
            !ours.is_empty() && !ours.contains("tentative"),
            &format!("nodad VIP:\n{shown}"),
        )?;
        check(ours.contains("nodad"), "shown with nodad")?;
        nl.del_address(link.ifindex, vip6, 64)
            .map_err(|e| format!("del v6: {e}"))?;

        // The link-local becomes usable once its DAD finishes (about a second).
        let mut ll = None;
        for _ in 0..40 {
            ll = nl
                .ipv6_link_local(link.ifindex)
                .map_err(|e| e.to_string())?;
            if ll.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let ll = ll.ok_or("no usable link-local")?;
        check(ll.segments()[0] == 0xfe80, "link-local prefix")?;
        Ok(())
    });
}

#[test]
fn rtnl_events_report_link_down_up_new_and_gone() {
    require!(root);
    let t = Topo::new("ev");
    in_child(|| {
        enter(&t.a)?;
        let mut nl = Rtnl::open().map_err(|e| e.to_string())?;
        let mut ev = RtnlEvents::open().map_err(|e| e.to_string())?;
        nl.for_each_link(|l| ev.tracker.seed(l))
            .map_err(|e| e.to_string())?;
        let e0 = ifindex("e0")?;

        let mut wait_for = |want: &dyn Fn(&RtnlEvent) -> bool, what: &str| -> R {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let mut seen = vec![];
            while std::time::Instant::now() < deadline {
                if !readable(&ev, 200) {
                    continue;
                }
                let mut hit = false;
                while ev
                    .recv(|e| {
                        hit |= want(&e);
                        seen.push(e);
                    })
                    .map_err(|e| e.to_string())?
                {}
                if hit {
                    return Ok(());
                }
            }
            Err(format!("no {what}; saw {seen:?}"))
        };
        run(&["ip", "link", "set", "dev", "e0", "down"])?;
        wait_for(
            &|e| matches!(e, RtnlEvent::LinkDown { ifindex, .. } if *ifindex == e0),
            "LinkDown",
        )?;
        run(&["ip", "link", "set", "dev", "e0", "up"])?;
        wait_for(
            &|e| matches!(e, RtnlEvent::LinkUp { ifindex, .. } if *ifindex == e0),
            "LinkUp",
        )?;
        run(&["ip", "addr", "add", "10.77.0.50/32", "dev", "e0"])?;
        wait_for(
            &|e| matches!(e, RtnlEvent::AddrAdded(a) if a.addr == IpAddr::V4(Ipv4Addr::new(10, 77, 0, 50))),
            "AddrAdded",
        )?;
        run(&[
            "ip", "link", "add", "x1", "type", "veth", "peer", "name", "x2",
        ])?;
        wait_for(
            &|e| matches!(e, RtnlEvent::LinkNew { name, .. } if name == "x1"),
            "LinkNew x1",
        )?;
        let old = ifindex("x1")?;
        run(&["ip", "link", "del", "x1"])?;
        wait_for(
            &|e| matches!(e, RtnlEvent::LinkGone { name, .. } if name == "x1"),
            "LinkGone x1",
        )?;
        // Recreated under the same name: a new ifindex, reported as new again.
        run(&[
            "ip", "link", "add", "x1", "type", "veth", "peer", "name", "x2",
        ])?;
        wait_for(
            &|e| matches!(e, RtnlEvent::LinkNew { name, ifindex, .. } if name == "x1" && *ifindex != old),
            "LinkNew x1 with a new ifindex",
        )?;
        Ok(())
    });
}

#[test]
fn rtnl_creates_and_deletes_a_vmac_macvlan() {
    require!(root);
    let t = Topo::new("mvl");
    in_child(|| {
        enter(&t.a)?;
        let mut nl = Rtnl::open().map_err(|e| e.to_string())?;
        let parent = ifindex("e0")?;
        let vmac = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x32];
        let idx = nl
            .create_macvlan("vrrp.50", parent, vmac, MacvlanMode::Private)
            .map_err(|e| format!("create: {e}"))?;
        let shown = run(&["ip", "-d", "-o", "link", "show", "dev", "vrrp.50"])?;
        check(
            shown.contains("00:00:5e:00:01:32"),
            &format!("VMAC:\n{shown}"),
        )?;
        check(shown.contains("macvlan mode private"), "mode private")?;
        check(shown.contains("UP"), "brought up")?;
        check(
            nl.link_by_index(idx).map_err(|e| e.to_string())?.mac == Some(vmac),
            "mac",
        )?;
        rtnl::write_vmac_arp_sysctls("vrrp.50", "e0").map_err(|e| e.to_string())?;
        let rd = |p: &str| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        check(
            rd("/proc/sys/net/ipv4/conf/vrrp.50/arp_ignore") == "1",
            "vmac arp_ignore",
        )?;
        check(
            rd("/proc/sys/net/ipv4/conf/vrrp.50/arp_announce") == "2",
            "vmac arp_announce",
        )?;
        check(
            rd("/proc/sys/net/ipv4/conf/e0/arp_ignore") == "1",
            "parent arp_ignore",
        )?;
        check(
            rd("/proc/sys/net/ipv4/conf/e0/arp_filter") == "1",
            "parent arp_filter",
        )?;
        check(
            nl.create_macvlan("vrrp.50", parent, vmac, MacvlanMode::Bridge)
                == Err(nix::errno::Errno::EEXIST),
            "creating twice says EEXIST",
        )?;
        nl.delete_link(idx).map_err(|e| format!("delete: {e}"))?;
        check(
            run(&["ip", "link", "show", "dev", "vrrp.50"]).is_err(),
            "macvlan gone",
        )?;
        Ok(())
    });
}

#[test]
fn raw_ipv6_socket_sends_unicast_with_hop_limit_255() {
    require!(root);
    let t = Topo::new("raw6");
    run(&[
        "ip",
        "-n",
        &t.a,
        "addr",
        "add",
        "fd00:77::1/64",
        "dev",
        "e0",
        "nodad",
    ])
    .unwrap();
    run(&[
        "ip",
        "-n",
        &t.b,
        "addr",
        "add",
        "fd00:77::2/64",
        "dev",
        "e0",
        "nodad",
    ])
    .unwrap();
    in_child(|| {
        enter(&t.a)?;
        let mut rx_a = PacketSocket::open(ifindex("e0")?, &minivrrp::sys::bpf::VRRP_FILTER, None)
            .map_err(|e| e.to_string())?;
        enter(&t.b)?;
        let raw = RawIpSocket::ipv6().map_err(|e| e.to_string())?;
        let payload = [0x31u8, 7, 100, 0, 0, 100, 0, 0];
        let dst = IpAddr::V6("fd00:77::1".parse().unwrap());
        check(
            raw.send_to(&payload, dst, 0).map_err(|e| e.to_string())? == Some(8),
            "sent",
        )?;
        // The first frames may be neighbour discovery (ICMPv6, filtered): wait for ours.
        let (m, f) = recv_within(&mut rx_a, 3000).ok_or("A received no unicast VRRP")?;
        check(m.pkttype == PktType::Host, "unicast to this host")?;
        check(f.len() >= 14 + 40 + 8, "length")?;
        check(f[14 + 6] == 112, "next header 112, no extension headers")?;
        check(f[14 + 7] == 255, "hop limit 255 (RFC 5798 5.1.2.3)")?;
        let tclass = ((f[14] & 0x0f) << 4) | (f[15] >> 4);
        check(tclass == 0xc0, "traffic class 0xc0")?;
        check(f[14 + 40..14 + 48] == payload, "payload intact")?;
        Ok(())
    });
}

#[test]
fn rtnl_reads_one_interfaces_addresses_in_one_dump_of_that_interface_only() {
    require!(root);
    let t = Topo::new("srcs");
    in_child(|| {
        enter(&t.a)?;
        // 1000 addresses on another interface: a host-wide dump would carry them all.
        let batch = std::env::temp_dir().join(format!("mv-srcs-{}.batch", std::process::id()));
        let text: String = (0..1000)
            .map(|k| format!("addr add 10.99.{}.{}/32 dev lo\n", k / 250, k % 250 + 1))
            .collect();
        std::fs::write(&batch, text).map_err(|e| e.to_string())?;
        let ran = run(&["ip", "-batch", batch.to_str().unwrap_or("")]);
        let _ = std::fs::remove_file(&batch);
        ran?;
        run(&["ip", "addr", "add", "10.77.0.9/24", "dev", "e0"])?;
        let mut nl = Rtnl::open().map_err(|e| e.to_string())?;
        let e0 = ifindex("e0")?;
        let start = std::time::Instant::now();
        let (v4, _v6) = nl
            .source_addresses(e0, &rtnl::SourceRule::ANY)
            .map_err(|e| e.to_string())?;
        let one = start.elapsed();
        let msgs = nl.last_reply_messages();
        check(
            v4 == Some(Ipv4Addr::new(10, 77, 0, 1)),
            &format!("primary IPv4, not the secondary 10.77.0.9: {v4:?}"),
        )?;
        let start = std::time::Instant::now();
        nl.for_each_address(None, |_| {})
            .map_err(|e| e.to_string())?;
        let all = start.elapsed();
        let all_msgs = nl.last_reply_messages();
        eprintln!(
            "addresses of e0: {msgs} messages in {one:?}; every address: {all_msgs} messages in {all:?}"
        );
        check(all_msgs > 1000, "the host-wide dump carries lo's 1000")?;
        // e0: 2 IPv4 + its IPv6 addresses; the kernel filtered the rest (strict checking).
        check(
            msgs < 10,
            &format!("one interface's dump carried {msgs} messages"),
        )
    });
}

/// The receive ring (`sys::packet::ring`): frames sent 1 ms apart reach the reader in blocks,
/// so it wakes up far fewer times than there are frames, every frame arrives once and in
/// order, and each carries its arrival time on the monotonic clock, though it was read up to
/// the ring's hold later.
#[test]
fn packet_ring_hands_frames_over_in_blocks_in_order_with_arrival_times() {
    require!(root);
    const N: usize = 40;
    let hold = std::time::Duration::from_millis(4);
    let t = Topo::new("ring");
    in_child(|| {
        use minivrrp::sys::clock;
        enter(&t.a)?;
        let mut rx =
            PacketSocket::open(ifindex("e0")?, &minivrrp::sys::bpf::VRRP_FILTER, Some(hold))
                .map_err(|e| format!("ring: {e}"))?;
        check(rx.has_ring(), "ring set up")?;
        rx.join_vrrp_multicast().map_err(|e| e.to_string())?;
        enter(&t.b)?;
        let tx = PacketSocket::open(ifindex("e0")?, &minivrrp::sys::bpf::VRRP_FILTER, None)
            .map_err(|e| e.to_string())?;
        let sender = std::thread::spawn(move || {
            let mut sent = Vec::new();
            for i in 0..N {
                // The last address byte numbers the frame.
                let f = ipv4_frame(
                    MCAST_V4,
                    VMAC1,
                    112,
                    [10, 77, 0, i as u8 + 2],
                    [224, 0, 0, 18],
                );
                // Bracket the send: under load this thread can be preempted between reading
                // the clock and the syscall, so the arrival is checked against both ends.
                let before = clock::now();
                let _ = tx.send(&f);
                sent.push((before, clock::now()));
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            sent
        });
        let mut buf = [0u8; 2048];
        let mut got = Vec::new();
        let mut wakeups = 0;
        while got.len() < N && readable(&rx, 3000) {
            wakeups += 1;
            let read_at = clock::now();
            while let Some(f) = rx.recv(&mut buf).map_err(|e| e.to_string())? {
                got.push((buf[14 + 15], f.at, read_at));
            }
        }
        let sent = sender.join().map_err(|_| "sender panicked")?;
        check(got.len() == N, &format!("{} of {N} frames", got.len()))?;
        for (i, (num, at, read_at)) in got.iter().enumerate() {
            check(*num as usize == i + 2, &format!("frame {i} in order"))?;
            let at = at.ok_or("ring frames carry their arrival time")?;
            let (lo, hi) = (
                sent[i].0 - std::time::Duration::from_millis(1),
                sent[i].1 + std::time::Duration::from_millis(5),
            );
            check(
                at >= lo && at <= hi && at <= *read_at,
                &format!(
                    "frame {i}: arrival {at} near its send {}..{} (read {read_at})",
                    sent[i].0, sent[i].1
                ),
            )?;
        }
        let held = got
            .iter()
            .map(|(_, at, read_at)| read_at.saturating_duration_since(at.unwrap_or(*read_at)))
            .max()
            .unwrap_or_default();
        check(
            held >= std::time::Duration::from_millis(1),
            &format!("frames were held (longest {held:?}), yet count from their arrival"),
        )?;
        check(
            wakeups <= N / 2,
            &format!("{wakeups} wake-ups for {N} frames 1 ms apart with a 4 ms hold"),
        )?;
        // A reload may change the hold or drop the ring: the same socket keeps receiving,
        // through a new ring and then one frame at a time.
        let tx = PacketSocket::open(ifindex("e0")?, &minivrrp::sys::bpf::VRRP_FILTER, None)
            .map_err(|e| e.to_string())?;
        for (delay, ring) in [
            (Some(std::time::Duration::from_millis(2)), true),
            (None, false),
        ] {
            rx.set_rx_delay(delay)
                .map_err(|e| format!("set_rx_delay({delay:?}): {e}"))?;
            check(rx.has_ring() == ring, "ring as asked")?;
            let f = ipv4_frame(MCAST_V4, VMAC1, 112, [10, 77, 0, 99], [224, 0, 0, 18]);
            check(tx.send(&f) == Ok(Some(f.len())), "send after the change")?;
            let (m, got) = recv_within(&mut rx, 2000)
                .ok_or(format!("nothing received with hold {delay:?}"))?;
            check(got == f, "the frame intact")?;
            check(m.at.is_some() == ring, "arrival time only from the ring")?;
            check(recv_within(&mut rx, 100).is_none(), "nothing else")?;
        }
        Ok(())
    });
}
