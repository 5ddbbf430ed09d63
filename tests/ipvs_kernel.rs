//! IPVS against a real kernel. These tests only do something inside the test VM
//! (rootfs/vm/build-image.sh, driven by tests/vm/ipvs_vm.rs), whose /init exports
//! MINIVRRP_IN_VM=1; the VM script also sets MINIVRRP_IPVS_EXPECT to `absent` (before the
//! modules are loaded) or `present`. On a normal host every test returns at once.
//!
//! Each test prints `ipvsadm -Ln` between `--- ipvsadm <label> ---` and `--- end ---` so the
//! host side can check the table with an independent reader. Run with `--test-threads=1
//! --nocapture`: the IPVS table is global.

use std::net::IpAddr;
use std::process::Command;

use minivrrp::ipvs::*;
use minivrrp::sys::genl::IpvsClient;

fn expect(state: &str) -> bool {
    std::env::var("MINIVRRP_IN_VM").as_deref() == Ok("1")
        && std::env::var("MINIVRRP_IPVS_EXPECT").as_deref() == Ok(state)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(addr),
        port,
    }
}

fn ipvsadm(label: &str) {
    let out = Command::new("ipvsadm")
        .arg("-Ln")
        .output()
        .expect("run ipvsadm");
    println!("--- ipvsadm {label} ---");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    println!("--- end ---");
}

/// A fresh client over an empty table.
fn client() -> IpvsClient {
    let mut c = IpvsClient::open().expect("IPVS family resolves with ip_vs loaded");
    c.flush().expect("flush");
    c
}

/// One reconcile round against the kernel: dump, diff, apply, log; then check that a second
/// round has nothing to do. Returns the changes applied.
fn round(
    c: &mut IpvsClient,
    r: &mut Reconciler,
    vss: &[VirtualServer],
    up: impl Fn(usize, usize) -> bool,
) -> Vec<Change> {
    let desired = r.desired(vss, &up);
    for e in &desired.events {
        println!("event: {e}");
    }
    let changes = c.sync(&desired).expect("sync");
    for ch in &changes {
        println!("change: {ch}");
    }
    let again = reconcile(&r.desired(vss, &up), &c.table().expect("dump table"));
    assert!(again.is_empty(), "second round not empty: {again:?}");
    changes
}

fn web() -> VirtualServer {
    let mut vs = VirtualServer::new(Service::new(tcp("10.0.0.1", 80), Scheduler::Wrr));
    vs.real_servers = vec![
        RealServer {
            addr: ip("10.0.1.1"),
            port: 80,
            weight: 1,
            forwarding: Forwarding::DirectRoute,
            inhibit_on_failure: false,
        },
        RealServer {
            addr: ip("10.0.1.2"),
            port: 80,
            weight: 2,
            forwarding: Forwarding::DirectRoute,
            inhibit_on_failure: true,
        },
    ];
    vs
}

fn dns6() -> VirtualServer {
    let key = ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: ip("fd00::53"),
        port: 53,
    };
    let mut svc = Service::new(key, Scheduler::Sh);
    svc.persistence = Some(Persistence {
        timeout: 300,
        prefix: 64,
    });
    let mut vs = VirtualServer::new(svc);
    vs.real_servers = vec![RealServer {
        addr: ip("fd00::1:1"),
        port: 5353,
        weight: 3,
        forwarding: Forwarding::Masq,
        inhibit_on_failure: false,
    }];
    vs
}

fn fwmark() -> VirtualServer {
    let key = ServiceKey::Fwmark {
        family: Family::Ipv4,
        mark: 7,
    };
    let mut svc = Service::new(key, Scheduler::Wlc);
    svc.persistence = Some(Persistence {
        timeout: 60,
        prefix: 24,
    });
    let mut vs = VirtualServer::new(svc);
    vs.real_servers = vec![RealServer {
        addr: ip("10.0.2.1"),
        port: 0,
        weight: 1,
        forwarding: Forwarding::Tunnel,
        inhibit_on_failure: false,
    }];
    vs.sorry_server = Some(SorryServer {
        addr: ip("10.0.9.9"),
        port: 0,
        forwarding: Forwarding::DirectRoute,
    });
    vs
}

#[test]
fn not_available_without_ip_vs() {
    if !expect("absent") {
        return;
    }
    match IpvsClient::open() {
        Err(IpvsError::NotAvailable) => println!("not-available: {}", IpvsError::NotAvailable),
        Err(e) => panic!("expected NotAvailable, got {e}"),
        Ok(_) => panic!("expected NotAvailable, the IPVS family resolved"),
    }
}

#[test]
fn a_desired_state_creates_services_and_real_servers() {
    if !expect("present") {
        return;
    }
    let mut c = client();
    println!("family id {}", c.family_id());
    let mut r = Reconciler::new();
    let vss = [web(), dns6(), fwmark()];
    let changes = round(&mut c, &mut r, &vss, |_, _| true);
    assert_eq!(changes.len(), 3 + 4);
    let table = c.table().unwrap();
    assert_eq!(table.len(), 3);
    for vs in &vss {
        let k = table
            .iter()
            .find(|k| k.service.key == vs.service.key)
            .unwrap();
        assert_eq!(k.service, vs.service, "dumped service equals configured");
    }
    ipvsadm("create");
}

#[test]
fn a_failed_real_server_disappears_and_comes_back() {
    if !expect("present") {
        return;
    }
    let mut c = client();
    let mut r = Reconciler::new();
    let vss = [web()];
    round(&mut c, &mut r, &vss, |_, _| true);
    let ch = round(&mut c, &mut r, &vss, |_, i| i != 0);
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].reason, Reason::RealServerDown);
    assert_eq!(c.dests(&tcp("10.0.0.1", 80)).unwrap().len(), 1);
    ipvsadm("down");
    let ch = round(&mut c, &mut r, &vss, |_, _| true);
    assert_eq!(ch[0].reason, Reason::RealServerUp);
    assert_eq!(c.dests(&tcp("10.0.0.1", 80)).unwrap().len(), 2);
    ipvsadm("recovered");
}

#[test]
fn inhibit_on_failure_keeps_the_server_at_weight_0() {
    if !expect("present") {
        return;
    }
    let mut c = client();
    let mut r = Reconciler::new();
    let vss = [web()];
    round(&mut c, &mut r, &vss, |_, _| true);
    let ch = round(&mut c, &mut r, &vss, |_, i| i != 1);
    assert_eq!(ch[0].reason, Reason::RealServerInhibited);
    let d = c.dests(&tcp("10.0.0.1", 80)).unwrap();
    assert!(d.iter().any(|d| d.addr == ip("10.0.1.2") && d.weight == 0));
    ipvsadm("inhibited");
}

#[test]
fn quorum_loss_puts_the_sorry_server_in_and_recovery_takes_it_out() {
    if !expect("present") {
        return;
    }
    let mut c = client();
    let mut r = Reconciler::new();
    let vss = [fwmark()];
    round(&mut c, &mut r, &vss, |_, _| true);
    let ch = round(&mut c, &mut r, &vss, |_, _| false);
    assert!(ch
        .iter()
        .any(|c| matches!(c.reason, Reason::SorryServerIn { .. })));
    ipvsadm("quorum-lost");
    let ch = round(&mut c, &mut r, &vss, |_, _| true);
    assert!(ch.iter().any(|c| c.reason == Reason::SorryServerOut));
    ipvsadm("quorum-regained");
}

#[test]
fn lost_quorum_replaces_even_alive_servers_by_the_sorry_server() {
    if !expect("present") {
        return;
    }
    let mut c = client();
    let mut r = Reconciler::new();
    let mut vs = web();
    vs.quorum = 3;
    vs.sorry_server = Some(SorryServer {
        addr: ip("10.0.9.9"),
        port: 80,
        forwarding: Forwarding::Masq,
    });
    let vss = [vs];
    round(&mut c, &mut r, &vss, |_, _| true);
    // Only 10.0.1.1 (weight 1) is alive: 1 < 3. It leaves too; 10.0.1.2 (inhibit) stays at 0.
    let ch = round(&mut c, &mut r, &vss, |_, i| i == 0);
    assert!(ch
        .iter()
        .any(|c| matches!(c.reason, Reason::QuorumLost { .. })));
    ipvsadm("quorum-replaced");
    round(&mut c, &mut r, &vss, |_, _| true);
    assert_eq!(c.dests(&tcp("10.0.0.1", 80)).unwrap().len(), 2);
}

#[test]
fn changed_scheduler_and_weights_are_applied_by_reconcile() {
    if !expect("present") {
        return;
    }
    let mut c = client();
    let mut r = Reconciler::new();
    round(&mut c, &mut r, &[web()], |_, _| true);
    let mut vs = web();
    vs.service.scheduler = Scheduler::Lc;
    vs.real_servers[0].weight = 7;
    let ch = round(&mut c, &mut r, &[vs], |_, _| true);
    assert_eq!(ch.len(), 2);
    ipvsadm("changed");
}

#[test]
fn shutdown_cleanup_leaves_foreign_services_alone() {
    if !expect("present") {
        return;
    }
    let mut c = client();
    // A service somebody else made (ipvsadm as an independent writer).
    let st = Command::new("ipvsadm")
        .args(["-A", "-t", "10.9.9.9:80", "-s", "rr"])
        .status()
        .unwrap();
    assert!(st.success());
    let mut r = Reconciler::new();
    let mut keep = dns6();
    keep.cleanup = false;
    let vss = [web(), keep];
    round(&mut c, &mut r, &vss, |_, _| true);
    let changes = c.shutdown(&vss).unwrap();
    assert_eq!(changes.len(), 1);
    for ch in &changes {
        println!("change: {ch}");
    }
    assert!(
        c.shutdown(&vss).unwrap().is_empty(),
        "second shutdown has nothing to do"
    );
    let left: Vec<_> = c.services().unwrap().iter().map(|s| s.key).collect();
    assert_eq!(left.len(), 2);
    assert!(left.contains(&tcp("10.9.9.9", 80)));
    ipvsadm("shutdown");
}

#[test]
fn kernel_errors_name_the_virtual_server() {
    if !expect("present") {
        return;
    }
    let mut c = client();
    let svc = Service::new(tcp("10.0.0.1", 80), Scheduler::Rr);
    c.apply_one(&Op::AddService(svc)).unwrap();
    let e = c.apply_one(&Op::AddService(svc)).unwrap_err();
    println!("error: {e}");
    assert!(matches!(e, IpvsError::Kernel { errno, .. } if errno == libc::EEXIST));
    assert!(e.to_string().contains("TCP 10.0.0.1:80"));
    let d = Dest::new(ip("10.0.0.9"), 80, 1, Forwarding::Masq);
    let e = c.apply_one(&Op::DelDest(svc.key, d)).unwrap_err();
    println!("error: {e}");
    assert!(matches!(e, IpvsError::Kernel { errno, .. } if errno == libc::ENOENT));
    assert!(e.to_string().contains("10.0.0.9:80"));
    let e = c
        .apply_one(&Op::EditService(Service::new(
            tcp("10.0.0.2", 80),
            Scheduler::Rr,
        )))
        .unwrap_err();
    println!("error: {e}");
    assert!(matches!(e, IpvsError::Kernel { errno, .. } if errno == libc::ESRCH));
}

#[test]
fn dumps_spanning_many_datagrams_are_read_completely() {
    if !expect("present") {
        return;
    }
    let mut c = client();
    // ~320 bytes per service: 150 services need several recv()s of NLM_F_MULTI parts.
    let ops: Vec<Op> = (0..150u16)
        .map(|i| Op::AddService(Service::new(tcp("10.0.3.1", 1000 + i), Scheduler::Rr)))
        .collect();
    c.apply(&ops).unwrap();
    let services = c.services().unwrap();
    assert_eq!(services.len(), 150);
    let dests: Vec<Op> = (0..100u8)
        .map(|i| {
            let d = Dest::new(IpAddr::from([10, 0, 4, i]), 80, 1, Forwarding::Masq);
            Op::AddDest(tcp("10.0.3.1", 1000), d)
        })
        .collect();
    c.apply(&dests).unwrap();
    assert_eq!(c.dests(&tcp("10.0.3.1", 1000)).unwrap().len(), 100);
    c.flush().unwrap();
    println!("dump: 150 services, 100 real servers read back");
}
