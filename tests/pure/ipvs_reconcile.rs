//! The pure desired-state computation and reconciler: health, inhibit_on_failure, quorum with
//! hysteresis, sorry server, idempotence, ownership and shutdown cleanup.

use std::net::IpAddr;

use minivrrp::ipvs::reconcile::simulate;
use minivrrp::ipvs::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip("10.0.0.1"),
        port,
    }
}

fn rs(addr: &str, weight: u32, inhibit: bool) -> RealServer {
    RealServer {
        addr: ip(addr),
        port: 80,
        weight,
        forwarding: Forwarding::DirectRoute,
        inhibit_on_failure: inhibit,
    }
}

fn web() -> VirtualServer {
    let mut vs = VirtualServer::new(Service::new(key(80), Scheduler::Wrr));
    vs.real_servers = vec![rs("10.0.1.1", 1, false), rs("10.0.1.2", 2, false)];
    vs
}

/// Reconciles, applies to the simulated kernel, and checks that a second pass has nothing
/// to do (idempotence after every step).
fn step(
    r: &mut Reconciler,
    vss: &[VirtualServer],
    kernel: &mut Vec<KernelService>,
    up: impl Fn(usize, usize) -> bool,
) -> (Vec<Change>, Desired) {
    let desired = r.desired(vss, &up);
    let changes = reconcile(&desired, kernel);
    simulate(kernel, &changes);
    let again = reconcile(&r.desired(vss, &up), kernel);
    assert!(again.is_empty(), "second pass not empty: {again:?}");
    (changes, desired)
}

fn dests(kernel: &[KernelService], k: ServiceKey) -> Vec<(IpAddr, u32)> {
    let mut v: Vec<_> = kernel
        .iter()
        .find(|s| s.service.key == k)
        .map(|s| s.dests.iter().map(|d| (d.addr, d.weight)).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn empty_kernel_gets_service_then_healthy_real_servers() {
    let mut r = Reconciler::new();
    let mut kernel = Vec::new();
    let (changes, _) = step(&mut r, &[web()], &mut kernel, |_, _| true);
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[0].op, Op::AddService(web().service));
    assert_eq!(changes[0].reason, Reason::NewVirtualServer);
    assert!(changes[1..]
        .iter()
        .all(|c| matches!(c.op, Op::AddDest(..)) && c.reason == Reason::RealServerUp));
    assert_eq!(
        dests(&kernel, key(80)),
        vec![(ip("10.0.1.1"), 1), (ip("10.0.1.2"), 2)]
    );
}

#[test]
fn failed_real_server_is_removed_and_restored_on_recovery() {
    let mut r = Reconciler::new();
    let mut kernel = Vec::new();
    step(&mut r, &[web()], &mut kernel, |_, _| true);
    let (changes, _) = step(&mut r, &[web()], &mut kernel, |_, i| i != 1);
    assert_eq!(changes.len(), 1);
    assert!(matches!(changes[0].op, Op::DelDest(_, d) if d.addr == ip("10.0.1.2")));
    assert_eq!(changes[0].reason, Reason::RealServerDown);
    assert_eq!(dests(&kernel, key(80)), vec![(ip("10.0.1.1"), 1)]);
    let (changes, _) = step(&mut r, &[web()], &mut kernel, |_, _| true);
    assert_eq!(changes.len(), 1);
    assert!(
        matches!(changes[0].op, Op::AddDest(_, d) if d.addr == ip("10.0.1.2") && d.weight == 2)
    );
    assert_eq!(changes[0].reason, Reason::RealServerUp);
}

#[test]
fn inhibit_on_failure_sets_weight_0_and_restores_weight() {
    let mut vs = web();
    vs.real_servers[1].inhibit_on_failure = true;
    let vss = [vs];
    let mut r = Reconciler::new();
    let mut kernel = Vec::new();
    step(&mut r, &vss, &mut kernel, |_, _| true);
    let (changes, _) = step(&mut r, &vss, &mut kernel, |_, i| i != 1);
    assert_eq!(changes.len(), 1);
    assert!(matches!(changes[0].op, Op::EditDest(_, d) if d.weight == 0));
    assert_eq!(changes[0].reason, Reason::RealServerInhibited);
    assert_eq!(
        dests(&kernel, key(80)),
        vec![(ip("10.0.1.1"), 1), (ip("10.0.1.2"), 0)]
    );
    let (changes, _) = step(&mut r, &vss, &mut kernel, |_, _| true);
    assert!(
        matches!(changes[..], [Change { op: Op::EditDest(_, d), reason: Reason::RealServerUp }] if d.weight == 2)
    );
}

#[test]
fn inhibited_server_starting_down_is_added_with_weight_0() {
    let mut vs = web();
    vs.real_servers[0].inhibit_on_failure = true;
    let mut r = Reconciler::new();
    let mut kernel = Vec::new();
    let (changes, _) = step(&mut r, &[vs], &mut kernel, |_, i| i != 0);
    assert!(changes
        .iter()
        .any(|c| c.reason == Reason::RealServerInhibited
            && matches!(c.op, Op::AddDest(_, d) if d.weight == 0)));
}

#[test]
fn sorry_server_goes_in_when_all_fail_and_out_when_one_recovers() {
    let mut vs = web();
    vs.sorry_server = Some(SorryServer {
        addr: ip("10.0.9.9"),
        port: 8080,
        forwarding: Forwarding::Masq,
    });
    let vss = [vs];
    let mut r = Reconciler::new();
    let mut kernel = Vec::new();
    let (changes, _) = step(&mut r, &vss, &mut kernel, |_, _| true);
    assert!(!changes
        .iter()
        .any(|c| matches!(c.reason, Reason::SorryServerIn { .. })));

    let (changes, desired) = step(&mut r, &vss, &mut kernel, |_, _| false);
    assert_eq!(desired.events.len(), 1);
    assert!(!desired.events[0].up);
    assert!(changes.iter().any(|c| c.reason
        == Reason::SorryServerIn {
            alive_weight: 0,
            quorum: 1
        }
        && matches!(c.op, Op::AddDest(_, d) if d.addr == ip("10.0.9.9") && d.port == 8080 && d.weight == 1)));
    assert_eq!(dests(&kernel, key(80)), vec![(ip("10.0.9.9"), 1)]);

    let (changes, desired) = step(&mut r, &vss, &mut kernel, |_, i| i == 0);
    assert!(desired.events[0].up);
    // The recovered server goes in before the sorry server comes out: never an empty pool.
    let add = changes
        .iter()
        .position(|c| matches!(c.op, Op::AddDest(..)))
        .unwrap();
    let del = changes
        .iter()
        .position(|c| c.reason == Reason::SorryServerOut)
        .unwrap();
    assert!(add < del);
    assert_eq!(dests(&kernel, key(80)), vec![(ip("10.0.1.1"), 1)]);
}

#[test]
fn quorum_is_on_alive_weight_with_hysteresis() {
    let mut vs = VirtualServer::new(Service::new(key(80), Scheduler::Wlc));
    vs.real_servers = vec![
        rs("10.0.1.1", 2, false),
        rs("10.0.1.2", 2, false),
        rs("10.0.1.3", 2, false),
    ];
    vs.quorum = 4;
    vs.hysteresis = 1;
    vs.sorry_server = Some(SorryServer {
        addr: ip("10.0.9.9"),
        port: 80,
        forwarding: Forwarding::DirectRoute,
    });
    let vss = [vs];
    let mut r = Reconciler::new();
    let mut kernel = Vec::new();
    step(&mut r, &vss, &mut kernel, |_, _| true); // alive 6
    assert_eq!(r.quorum_up(&key(80)), Some(true));
    step(&mut r, &vss, &mut kernel, |_, i| i != 2); // alive 4 >= 4-1: holds
    assert_eq!(r.quorum_up(&key(80)), Some(true));
    let (c, d) = step(&mut r, &vss, &mut kernel, |_, i| i == 0); // alive 2 < 3: lost
    assert_eq!(r.quorum_up(&key(80)), Some(false));
    assert_eq!(d.events.len(), 1);
    // The sorry server replaces the pool, the still-alive server included (as keepalived).
    assert_eq!(dests(&kernel, key(80)), vec![(ip("10.0.9.9"), 1)]);
    assert!(c.iter().any(|c| c.reason
        == Reason::QuorumLost {
            alive_weight: 2,
            quorum: 4
        }
        && matches!(c.op, Op::DelDest(_, d) if d.addr == ip("10.0.1.1"))));
    step(&mut r, &vss, &mut kernel, |_, i| i != 2); // alive 4 < 4+1: still lost
    assert_eq!(r.quorum_up(&key(80)), Some(false));
    assert_eq!(dests(&kernel, key(80)), vec![(ip("10.0.9.9"), 1)]);
    let (c, d) = step(&mut r, &vss, &mut kernel, |_, _| true); // alive 6 >= 5: regained
    assert_eq!(r.quorum_up(&key(80)), Some(true));
    assert!(d.events[0].up);
    assert!(c.iter().any(|c| c.reason == Reason::SorryServerOut));
    assert_eq!(dests(&kernel, key(80)).len(), 3);
}

#[test]
fn quorum_starts_up_only_at_quorum_plus_hysteresis() {
    let mut vs = web(); // weights 1 + 2
    vs.quorum = 2;
    vs.hysteresis = 1;
    let mut r = Reconciler::new();
    let d = r.desired(&[vs.clone()], |_, i| i == 1); // alive 2 < 3
    assert!(!d.services[0].quorum_up);
    // Starting down is reported (for quorum_down notifications), starting up is not.
    assert_eq!(d.events.len(), 1);
    assert!(!d.events[0].up);
    let mut r = Reconciler::new();
    let d = r.desired(&[vs], |_, _| true); // alive 3
    assert!(d.services[0].quorum_up);
    assert!(d.events.is_empty());
}

#[test]
fn zero_alive_weight_always_loses_quorum_even_with_large_hysteresis() {
    let mut vs = web();
    vs.quorum = 1;
    vs.hysteresis = 5; // quorum - hysteresis saturates at 0
    vs.real_servers[0].weight = 6;
    let mut r = Reconciler::new();
    assert!(r.desired(&[vs.clone()], |_, _| true).services[0].quorum_up);
    let d = r.desired(&[vs], |_, _| false);
    assert!(!d.services[0].quorum_up);
    assert_eq!(d.events.len(), 1);
}

#[test]
fn quorum_loss_without_sorry_server_keeps_alive_servers() {
    let mut vs = web();
    vs.quorum = 3;
    let vss = [vs];
    let mut r = Reconciler::new();
    let mut kernel = Vec::new();
    step(&mut r, &vss, &mut kernel, |_, _| true);
    let (c, d) = step(&mut r, &vss, &mut kernel, |_, i| i == 1); // alive 2 < 3
    assert!(!d.events[0].up);
    assert_eq!(c.len(), 1, "only the failed server leaves: {c:?}");
    assert_eq!(dests(&kernel, key(80)), vec![(ip("10.0.1.2"), 2)]);
}

#[test]
fn changed_scheduler_persistence_and_weight_are_edited_in_place() {
    let mut r = Reconciler::new();
    let mut kernel = Vec::new();
    step(&mut r, &[web()], &mut kernel, |_, _| true);
    let mut vs = web();
    vs.service.scheduler = Scheduler::Sh;
    vs.service.persistence = Some(Persistence {
        timeout: 300,
        prefix: 24,
    });
    vs.real_servers[0].weight = 5;
    let (changes, _) = step(&mut r, &[vs.clone()], &mut kernel, |_, _| true);
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].op, Op::EditService(vs.service));
    assert_eq!(changes[0].reason, Reason::VirtualServerChanged);
    assert!(matches!(changes[1].op, Op::EditDest(_, d) if d.weight == 5));
    assert_eq!(changes[1].reason, Reason::RealServerChanged);
}

#[test]
fn foreign_services_are_never_touched_and_foreign_dests_in_ours_are_removed() {
    let foreign = KernelService {
        service: Service::new(key(8080), Scheduler::Rr),
        dests: vec![Dest::new(ip("10.0.5.5"), 80, 1, Forwarding::Masq)],
    };
    let mut kernel = vec![foreign.clone()];
    let mut r = Reconciler::new();
    step(&mut r, &[web()], &mut kernel, |_, _| true);
    // A real server someone added by hand to our service is not in the configuration.
    let stray = Dest::new(ip("10.0.7.7"), 80, 1, Forwarding::Masq);
    kernel
        .iter_mut()
        .find(|k| k.service.key == key(80))
        .unwrap()
        .dests
        .push(stray);
    let (changes, _) = step(&mut r, &[web()], &mut kernel, |_, _| true);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].op, Op::DelDest(key(80), stray));
    assert_eq!(changes[0].reason, Reason::NotConfigured);
    assert!(changes.iter().all(|c| c.op.key() != key(8080)));
    assert!(kernel.contains(&foreign));
}

#[test]
fn shutdown_deletes_only_our_services_with_cleanup() {
    let mut keep = VirtualServer::new(Service::new(key(443), Scheduler::Rr));
    keep.cleanup = false;
    let vss = [web(), keep];
    let foreign = KernelService {
        service: Service::new(key(8080), Scheduler::Rr),
        dests: vec![],
    };
    let mut kernel = vec![foreign.clone()];
    let mut r = Reconciler::new();
    step(&mut r, &vss, &mut kernel, |_, _| true);
    let changes = cleanup(&vss, &kernel);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].op, Op::DelService(key(80)));
    assert_eq!(changes[0].reason, Reason::Shutdown);
    simulate(&mut kernel, &changes);
    let keys: Vec<_> = kernel.iter().map(|k| k.service.key).collect();
    assert_eq!(keys, vec![key(8080), key(443)]);
    // Nothing left to clean: a second shutdown pass is empty.
    assert!(cleanup(&vss, &kernel).is_empty());
}

#[test]
fn change_log_line_names_virtual_and_real_server_and_reason() {
    let mut r = Reconciler::new();
    let mut kernel = Vec::new();
    step(&mut r, &[web()], &mut kernel, |_, _| true);
    let (changes, _) = step(&mut r, &[web()], &mut kernel, |_, i| i != 0);
    let line = changes[0].to_string();
    assert_eq!(
        line,
        "delete real server 10.0.1.1:80 from TCP 10.0.0.1:80: real server is down"
    );
}
