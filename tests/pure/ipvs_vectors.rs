//! Byte-level tests of the IPVS netlink codec against the ipvsadm <-> Linux 6.1 captures in
//! tests/vectors/ipvs-netlink.md (parsed at test time). Our requests must equal ipvsadm's
//! apart from nlmsg_seq/nlmsg_pid (offsets 8-15); our decoder must read the kernel's replies.

use std::collections::HashMap;
use std::net::IpAddr;

use minivrrp::ipvs::consts::*;
use minivrrp::ipvs::msg::{self, classify, Reply};
use minivrrp::ipvs::nl::{self, Messages};
use minivrrp::ipvs::*;

const FAMILY: u16 = 0x20;
const SEQ: u32 = 0x6b02_4b8e;

/// ipvsadm's messages, carried in the repository (tests/vectors/ipvs-netlink.md).
fn vectors() -> HashMap<u32, Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/ipvs-netlink.md");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut out = HashMap::new();
    let mut current: Option<u32> = None;
    let mut in_hex = false;
    let mut bytes = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("### V") {
            current = rest.trim().parse().ok();
            continue;
        }
        if line.starts_with("```hex") {
            in_hex = true;
            bytes.clear();
            continue;
        }
        if in_hex && line.starts_with("```") {
            in_hex = false;
            if let Some(v) = current.take() {
                out.insert(v, std::mem::take(&mut bytes));
            }
            continue;
        }
        if in_hex {
            let data = line.split_once(": ").map_or("", |(_, d)| d);
            for h in data.split_whitespace() {
                bytes.push(u8::from_str_radix(h, 16).expect("hex byte"));
            }
        }
    }
    assert!(out.len() >= 35, "parsed only {} vectors", out.len());
    out
}

/// Compares two netlink requests, ignoring nlmsg_seq and nlmsg_pid (offsets 8..16).
fn assert_same_request(ours: &[u8], theirs: &[u8], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        if (8..16).contains(&i) {
            continue;
        }
        assert_eq!(
            a, b,
            "{what}: byte {i:#06x} differs (ours {a:#04x}, ipvsadm {b:#04x})"
        );
    }
}

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: v4(addr),
        port,
    }
}

fn udp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: v4(addr),
        port,
    }
}

fn encode(op: &Op) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = msg::encode_op(&mut buf, FAMILY, SEQ, op).unwrap();
    buf[..n].to_vec()
}

fn one_msg(bytes: &[u8]) -> nl::NlMsg<'_> {
    let mut it = Messages::new(bytes);
    let m = it.next().unwrap().unwrap();
    assert!(it.next().is_none());
    m
}

#[test]
fn getfamily_request_equals_ipvsadm_v1() {
    let v = vectors();
    let mut buf = [0u8; 64];
    let n = nl::encode_get_family(&mut buf, SEQ, "IPVS").unwrap();
    assert_same_request(&buf[..n], &v[&1], "V1");
}

#[test]
fn getfamily_reply_gives_family_id_32_then_ack_v2_v3() {
    let v = vectors();
    let m = one_msg(&v[&2]);
    assert_eq!(nl::decode_family_id(&m), Ok(32));
    let ack = one_msg(&v[&3]);
    assert_eq!(classify(&ack), Ok(Reply::Ack));
    assert_eq!(ack.error().unwrap().1, m.seq, "ACK echoes the request seq");
}

#[test]
fn new_service_tcp_rr_equals_v6_and_ack_v7() {
    let v = vectors();
    let op = Op::AddService(Service::new(tcp("10.0.0.1", 80), Scheduler::Rr));
    assert_same_request(&encode(&op), &v[&6], "V6");
    assert_eq!(classify(&one_msg(&v[&7])), Ok(Reply::Ack));
}

#[test]
fn new_dest_masq_weight_3_equals_v8() {
    let v = vectors();
    let d = Dest::new(v4("10.0.0.2"), 80, 3, Forwarding::Masq);
    assert_same_request(&encode(&Op::AddDest(tcp("10.0.0.1", 80), d)), &v[&8], "V8");
}

#[test]
fn set_dest_weight_0_equals_v10() {
    let v = vectors();
    let d = Dest::new(v4("10.0.0.2"), 80, 0, Forwarding::Masq);
    assert_same_request(
        &encode(&Op::EditDest(tcp("10.0.0.1", 80), d)),
        &v[&10],
        "V10",
    );
}

#[test]
fn service_dump_request_reply_and_done_v11_v12_v13() {
    let v = vectors();
    let mut buf = [0u8; 64];
    let n = msg::encode_get_services(&mut buf, FAMILY, SEQ).unwrap();
    assert_same_request(&buf[..n], &v[&11], "V11");
    let m = one_msg(&v[&12]);
    assert_eq!(m.flags & NLM_F_MULTI, NLM_F_MULTI);
    assert_eq!(
        msg::decode_service(&m),
        Ok(Service::new(tcp("10.0.0.1", 80), Scheduler::Rr))
    );
    assert_eq!(classify(&one_msg(&v[&13])), Ok(Reply::Done));
}

#[test]
fn dest_dump_request_and_reply_v14_v15() {
    let v = vectors();
    let mut buf = [0u8; 128];
    let n = msg::encode_get_dests(&mut buf, FAMILY, SEQ, &tcp("10.0.0.1", 80)).unwrap();
    assert_same_request(&buf[..n], &v[&14], "V14");
    let (d, conns) = msg::decode_dest(&one_msg(&v[&15]), Family::Ipv4).unwrap();
    assert_eq!(d, Dest::new(v4("10.0.0.2"), 80, 0, Forwarding::Masq));
    assert_eq!(conns, DestConns::default());
}

#[test]
fn del_dest_equals_v16_and_v18() {
    let v = vectors();
    // ipvsadm sends its defaults (DR, weight 1) when deleting; the kernel matches on addr:port.
    let d = Dest::new(v4("10.0.0.2"), 80, 1, Forwarding::DirectRoute);
    assert_same_request(
        &encode(&Op::DelDest(tcp("10.0.0.1", 80), d)),
        &v[&16],
        "V16",
    );
    let d = Dest::new(v4("10.0.0.9"), 80, 1, Forwarding::DirectRoute);
    assert_same_request(
        &encode(&Op::DelDest(tcp("10.0.0.1", 80), d)),
        &v[&18],
        "V18",
    );
}

#[test]
fn duplicate_service_error_names_the_virtual_server_eexist_v17() {
    let v = vectors();
    let m = one_msg(&v[&17]);
    assert_eq!(classify(&m), Ok(Reply::Error(libc::EEXIST)));
    let op = Op::AddService(Service::new(tcp("10.0.0.1", 80), Scheduler::Rr));
    let text = op.error(libc::EEXIST).to_string();
    assert!(text.contains("TCP 10.0.0.1:80"), "{text}");
    assert!(text.contains("already exists"), "{text}");
    assert!(text.contains("EEXIST"), "{text}");
}

#[test]
fn missing_dest_error_names_service_and_real_server_enoent_v19() {
    let v = vectors();
    let m = one_msg(&v[&19]);
    assert_eq!(classify(&m), Ok(Reply::Error(libc::ENOENT)));
    // The error echoes the whole request: its header carries the request's seq.
    assert_eq!(m.error().unwrap().1, m.seq);
    let d = Dest::new(v4("10.0.0.9"), 80, 1, Forwarding::DirectRoute);
    let text = Op::DelDest(tcp("10.0.0.1", 80), d)
        .error(libc::ENOENT)
        .to_string();
    assert!(text.contains("10.0.0.9:80"), "{text}");
    assert!(text.contains("TCP 10.0.0.1:80"), "{text}");
    assert!(text.contains("real server not found"), "{text}");
    assert!(text.contains("ENOENT"), "{text}");
    let esrch = Op::DelService(tcp("10.0.0.1", 80))
        .error(libc::ESRCH)
        .to_string();
    assert!(
        esrch.contains("virtual server not found") && esrch.contains("ESRCH"),
        "{esrch}"
    );
}

#[test]
fn del_service_equals_v20() {
    let v = vectors();
    assert_same_request(
        &encode(&Op::DelService(tcp("10.0.0.1", 80))),
        &v[&20],
        "V20",
    );
}

#[test]
fn flush_and_get_info_equal_v21_v4_and_ack_v22() {
    let v = vectors();
    let mut buf = [0u8; 32];
    let n = msg::encode_simple(&mut buf, FAMILY, SEQ, IPVS_CMD_FLUSH).unwrap();
    assert_same_request(&buf[..n], &v[&21], "V21");
    let n = msg::encode_simple(&mut buf, FAMILY, SEQ, IPVS_CMD_GET_INFO).unwrap();
    assert_same_request(&buf[..n], &v[&4], "V4");
    assert_eq!(classify(&one_msg(&v[&22])), Ok(Reply::Ack));
}

#[test]
fn persistent_udp_wrr_service_equals_v23_and_edit_v24() {
    let v = vectors();
    let mut s = Service::new(udp("10.0.0.1", 53), Scheduler::Wrr);
    s.persistence = Some(Persistence {
        timeout: 300,
        prefix: 24,
    });
    assert_same_request(&encode(&Op::AddService(s)), &v[&23], "V23");
    let s = Service::new(udp("10.0.0.1", 53), Scheduler::Rr);
    assert_same_request(&encode(&Op::EditService(s)), &v[&24], "V24");
}

#[test]
fn direct_route_dest_equals_v25() {
    let v = vectors();
    let d = Dest::new(v4("10.0.0.3"), 53, 5, Forwarding::DirectRoute);
    assert_same_request(
        &encode(&Op::AddDest(udp("10.0.0.1", 53), d)),
        &v[&25],
        "V25",
    );
}

#[test]
fn fwmark_service_equals_v26_and_ack_v27() {
    let v = vectors();
    let key = ServiceKey::Fwmark {
        family: Family::Ipv4,
        mark: 7,
    };
    let op = Op::AddService(Service::new(key, Scheduler::Wlc));
    assert_same_request(&encode(&op), &v[&26], "V26");
    assert_eq!(classify(&one_msg(&v[&27])), Ok(Reply::Ack));
}

#[test]
fn ipv6_service_and_dest_equal_v28_v29() {
    let v = vectors();
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "2001:db8::1".parse().unwrap(),
        port: 443,
    };
    assert_same_request(
        &encode(&Op::AddService(Service::new(key, Scheduler::Rr))),
        &v[&28],
        "V28",
    );
    let d = Dest::new("2001:db8::2".parse().unwrap(), 8443, 1, Forwarding::Masq);
    assert_same_request(&encode(&Op::AddDest(key, d)), &v[&29], "V29");
}

#[test]
fn three_services_in_one_datagram_v30() {
    let v = vectors();
    let services: Vec<Service> = Messages::new(&v[&30])
        .map(|m| msg::decode_service(&m.unwrap()).unwrap())
        .collect();
    let v6 = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "2001:db8::1".parse().unwrap(),
        port: 443,
    };
    let fwm = ServiceKey::Fwmark {
        family: Family::Ipv4,
        mark: 7,
    };
    assert_eq!(
        services,
        vec![
            Service::new(udp("10.0.0.1", 53), Scheduler::Rr),
            Service::new(v6, Scheduler::Rr),
            Service::new(fwm, Scheduler::Wlc),
        ]
    );
}

#[test]
fn dest_dumps_udp_dr_ipv6_and_fwmark_v31_to_v35() {
    let v = vectors();
    let mut buf = [0u8; 128];
    let n = msg::encode_get_dests(&mut buf, FAMILY, SEQ, &udp("10.0.0.1", 53)).unwrap();
    assert_same_request(&buf[..n], &v[&31], "V31");
    let (d, _) = msg::decode_dest(&one_msg(&v[&32]), Family::Ipv4).unwrap();
    assert_eq!(d, Dest::new(v4("10.0.0.3"), 53, 5, Forwarding::DirectRoute));

    let v6 = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "2001:db8::1".parse().unwrap(),
        port: 443,
    };
    let n = msg::encode_get_dests(&mut buf, FAMILY, SEQ, &v6).unwrap();
    assert_same_request(&buf[..n], &v[&33], "V33");
    let (d, _) = msg::decode_dest(&one_msg(&v[&34]), Family::Ipv6).unwrap();
    assert_eq!(
        d,
        Dest::new("2001:db8::2".parse().unwrap(), 8443, 1, Forwarding::Masq)
    );

    let fwm = ServiceKey::Fwmark {
        family: Family::Ipv4,
        mark: 7,
    };
    let n = msg::encode_get_dests(&mut buf, FAMILY, SEQ, &fwm).unwrap();
    assert_same_request(&buf[..n], &v[&35], "V35");
}

#[test]
fn tunnel_dest_decodes_from_a_dump_with_fwd_method_2() {
    let v = vectors();
    // V32 with IPVS_DEST_ATTR_FWD_METHOD (value at 0x38) changed from DR (3) to TUN (2).
    let mut bytes = v[&32].clone();
    assert_eq!(bytes[0x38], 3);
    bytes[0x38] = 2;
    let (d, _) = msg::decode_dest(&one_msg(&bytes), Family::Ipv4).unwrap();
    assert_eq!(d.forwarding, Forwarding::Tunnel);
    // Our own NEW_DEST for a tunnel carries 2 at the same place as V25's 3.
    let t = Dest::new(v4("10.0.0.3"), 53, 5, Forwarding::Tunnel);
    let ours = encode(&Op::AddDest(udp("10.0.0.1", 53), t));
    let mut expect = v[&25].clone();
    expect[0x94] = 2;
    assert_same_request(&ours, &expect, "V25 as tunnel");
}

#[test]
fn persistent_service_dump_round_trips_through_decoder() {
    // A dump message has the same service nest as our NEW_SERVICE request (the decoder
    // ignores the NESTED flag), so a persistent service must decode to itself.
    let mut s = Service::new(udp("10.0.0.1", 53), Scheduler::Sh);
    s.persistence = Some(Persistence {
        timeout: 300,
        prefix: 24,
    });
    let bytes = encode(&Op::AddService(s));
    assert_eq!(msg::decode_service(&one_msg(&bytes)), Ok(s));
    let key = ServiceKey::Fwmark {
        family: Family::Ipv6,
        mark: 9,
    };
    let mut s6 = Service::new(key, Scheduler::Mh);
    s6.persistence = Some(Persistence {
        timeout: 60,
        prefix: 64,
    });
    let bytes = encode(&Op::AddService(s6));
    assert_eq!(msg::decode_service(&one_msg(&bytes)), Ok(s6));
}

#[test]
fn kernel_replies_cut_or_corrupted_never_panic() {
    let v = vectors();
    for id in [2u32, 3, 5, 12, 13, 15, 17, 19, 30, 32, 34] {
        let orig = &v[&id];
        let full = decode_everything(orig);
        for cut in 0..orig.len() {
            // A cut datagram can only lose entries, never invent them.
            assert!(
                decode_everything(&orig[..cut]) <= full,
                "V{id} cut at {cut}"
            );
        }
        // Deterministic byte corruption: every position gets a few hostile values.
        let mut bytes = orig.clone();
        for i in 0..bytes.len() {
            let keep = bytes[i];
            for x in [0x00, 0xff, 0x01, 0x80, keep ^ 0x04] {
                bytes[i] = x;
                // One corrupted byte can at most change how the datagram's entries decode.
                assert!(decode_everything(&bytes) <= 3, "V{id} byte {i} = {x:#x}");
            }
            bytes[i] = keep;
        }
    }
}

fn decode_everything(buf: &[u8]) -> usize {
    let mut decoded = 0;
    for m in Messages::new(buf).flatten() {
        let _ = classify(&m);
        let _ = nl::decode_family_id(&m);
        if msg::decode_service(&m).is_ok() {
            decoded += 1;
        }
        if msg::decode_dest(&m, Family::Ipv4).is_ok() {
            decoded += 1;
        }
    }
    decoded
}
