//! Fault-matrix benchmark: keepalived vs minivrrp through the same faults in the namespace lab
//! (tests/common/faults.rs), printed side by side. `cargo bench --bench faults` as root.
//! Prints figures, asserts nothing (the bounds are asserted by tests/lab/fault_matrix.rs).
//!
//! Faults (VRRPv3; r1 priority 150 is the master, r2 100 the backup, r3 50):
//! * kill -9 of the master's daemon, link left up (1 s adverts): does the dead router keep
//!   the VIP, and for how long;
//! * SIGSTOP of the master for 2 x Master_Down_Interval, then SIGCONT (0.5 s adverts);
//! * link flapping on the master every 200 ms for 10 s (0.5 s adverts);
//! * partition r1 | r2,r3 and heal (0.5 s adverts);
//! * 100 SIGHUP reloads in 5 s with an unchanged config (0.5 s adverts);
//! * a reload with a broken config (vrid 300);
//! * optionally (`BENCH_NETEM_SECS`, default 0 = skip): 5 % loss + 20 ms jitter (`tc netem`)
//!   on the backup's port with 0.1 s adverts, false takeovers per hour against the binomial
//!   expectation. Needs the kernel's sch_netem: the machine this was written on has none
//!   (nor tc actions or nftables), so this part has not been run yet.
//!
//! Then minivrrp's cost of dead-man VIPs: CPU time of a master holding `BENCH_VIPS` (20) VIPs
//! with 0.1 s adverts (lifetime 2 s, a refresh every 0.67 s) with and without `vip_lifetime`,
//! and the RTM_NEWADDR notifications `ip monitor address` sees per VIP per refresh.
//!
//! Knobs: `MINIVRRP_BIN` (default: the binary cargo built), `BENCH_IMPLS`
//! (`keepalived,minivrrp`), `BENCH_FAULTS` (`kill9,freeze,flap,split,reloads,broken`),
//! `BENCH_NETEM_SECS` (0), `BENCH_COST_SECS` (20), `BENCH_VIPS` (20).

#[path = "../common/mod.rs"]
mod common;

use common::faults;
use common::knobs::{env_list, env_num, minivrrp_bin};
use common::lab::{Impl, Lab};
use std::time::{Duration, Instant};

fn s(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Rows: (fault, measure, [value per implementation in `impls` order]).
struct Table {
    impls: Vec<&'static str>,
    rows: Vec<(String, String, Vec<String>)>,
}

impl Table {
    fn put(&mut self, fault: &str, measure: &str, imp: usize, v: String) {
        let n = self.impls.len();
        let row = match self
            .rows
            .iter_mut()
            .position(|(f, m, _)| f == fault && m == measure)
        {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows
                    .push((fault.into(), measure.into(), vec!["-".into(); n]));
                self.rows.last_mut().unwrap()
            }
        };
        row.2[imp] = v;
    }

    fn print(&self) {
        println!();
        print!("| fault | measure |");
        for i in &self.impls {
            print!(" {i} |");
        }
        println!();
        print!("|---|---|");
        for _ in &self.impls {
            print!("---|");
        }
        println!();
        for (f, m, vals) in &self.rows {
            print!("| {f} | {m} |");
            for v in vals {
                print!(" {v} |");
            }
            println!();
        }
    }
}

fn run_fault(t: &mut Table, k: usize, imp: &Impl, fault: &str) {
    let lab = Lab::with_routers(&format!("bf{fault}"), if fault == "split" { 3 } else { 2 });
    let cap = lab.capture(fault);
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    match fault {
        "kill9" => match faults::kill9(&lab, imp, 1.0, Duration::from_secs(15)) {
            Ok(r) => {
                t.put(
                    "kill -9 of the master, link up (1 s adverts)",
                    "VIP left the dead router after",
                    k,
                    r.vip_gone
                        .map_or(format!("never (still there after {})", s(r.watched)), s),
                );
                t.put(
                    "kill -9 of the master, link up (1 s adverts)",
                    "backup holds the VIP after",
                    k,
                    r.takeover.map_or("never".into(), s),
                );
                t.put(
                    "kill -9 of the master, link up (1 s adverts)",
                    "client reaches the VIP",
                    k,
                    yes(r.reachable),
                );
            }
            Err(e) => eprintln!("{} kill9: {e}", imp.name()),
        },
        "freeze" => match faults::freeze(&lab, &cap, imp, 0.5) {
            Ok(r) => {
                let f = "SIGSTOP master 2 x MDI, SIGCONT (0.5 s adverts)";
                t.put(f, "backup took over while frozen", k, yes(r.took_over));
                t.put(
                    f,
                    "frozen master's VIP gone after",
                    k,
                    r.frozen_vip_gone.map_or("kept".into(), s),
                );
                t.put(f, "two masters after SIGCONT for", k, s(r.two_masters_for));
                t.put(
                    f,
                    "masters / VIP holders at the end",
                    k,
                    format!("{} / {:?}", r.masters_at_end, r.holders_after),
                );
            }
            Err(e) => eprintln!("{} freeze: {e}", imp.name()),
        },
        "flap" => match faults::flap(
            &lab,
            &cap,
            imp,
            0.5,
            Duration::from_millis(200),
            Duration::from_secs(10),
        ) {
            Ok(r) => {
                let f = "master link flapping every 200 ms for 10 s";
                t.put(
                    f,
                    "masters / VIP holders after",
                    k,
                    format!("{} / {:?}", r.masters_at_end, r.holders_after),
                );
                t.put(
                    f,
                    "transitions logged r1 / r2",
                    k,
                    format!("{} / {}", r.transitions_r1, r.transitions_r2),
                );
                t.put(f, "daemons alive", k, yes(r.alive));
            }
            Err(e) => eprintln!("{} flap: {e}", imp.name()),
        },
        "split" => match faults::split_and_heal(&lab, &cap, imp, 0.5) {
            Ok(r) => {
                let f = "partition r1 / r2+r3, then heal (0.5 s adverts)";
                t.put(
                    f,
                    "VIP holders while split",
                    k,
                    format!("{:?}", r.holders_split),
                );
                t.put(
                    f,
                    "masters on the r2/r3 side",
                    k,
                    r.masters_main_side.to_string(),
                );
                t.put(f, "two masters after the heal for", k, s(r.two_masters_for));
                t.put(
                    f,
                    "masters / VIP holders after",
                    k,
                    format!("{} / {:?}", r.masters_at_end, r.holders_after),
                );
            }
            Err(e) => eprintln!("{} split: {e}", imp.name()),
        },
        "reloads" => match faults::reloads(&lab, &cap, imp, 0.5, 100, Duration::from_secs(5)) {
            Ok(r) => {
                let f = "100 SIGHUP in 5 s, config unchanged (0.5 s adverts)";
                t.put(f, "transitions", k, r.transitions.to_string());
                t.put(
                    f,
                    "largest advert gap (1.5 intervals = 0.75 s)",
                    k,
                    s(r.max_gap),
                );
                t.put(
                    f,
                    "backup adverts (takeovers)",
                    k,
                    r.backup_adverts.to_string(),
                );
                t.put(f, "daemons alive", k, yes(r.alive));
            }
            Err(e) => eprintln!("{} reloads: {e}", imp.name()),
        },
        "broken" => match faults::broken_reload(&lab, &cap, imp, 0.5) {
            Ok(r) => {
                let f = "reload with a broken config (vrid 300)";
                t.put(f, "daemon still running", k, yes(r.alive));
                t.put(f, "keeps running as master", k, yes(r.keeps_running_config));
                t.put(f, "error names FILE:LINE", k, yes(r.error_with_file_line));
                eprintln!("{} broken reload log line: {}", imp.name(), r.error_line);
            }
            Err(e) => eprintln!("{} broken: {e}", imp.name()),
        },
        other => eprintln!("unknown fault {other}"),
    }
}

/// 5 % loss + 20 ms jitter on the backup's port: false takeovers per hour of 0.1 s adverts.
fn netem(t: &mut Table, k: usize, imp: &Impl, secs: f64) {
    let lab = Lab::with_routers("bfnetem", 2);
    let cap = lab.capture("netem");
    let r1 = lab.spawn_vrrp(imp, "r1", &[faults::spec(150, 0.1)]);
    let r2 = lab.spawn_vrrp(imp, "r2", &[faults::spec(100, 0.1)]);
    if faults::wait_holders(&lab, &["r1"], Duration::from_secs(8)).is_none() {
        eprintln!("{} netem: no election", imp.name());
        return;
    }
    std::thread::sleep(Duration::from_secs(1));
    // Egress of the switch port towards r2: r1's adverts to r2 are lost / delayed.
    let out = lab.exec_switch(&[
        "tc", "qdisc", "add", "dev", "vr2", "root", "netem", "loss", "5%", "delay", "20ms", "20ms",
    ]);
    if !out.status.success() {
        eprintln!("netem: {}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    let before = faults::transitions(imp, &r2.log_text());
    let t0 = common::lab::now_realtime();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let t1 = common::lab::now_realtime();
    let takeovers = cap
        .adverts(t0)
        .into_iter()
        .filter(|(ts, a, _)| *ts < t1 && a.src_mac == lab.node("r2").mac && a.priority > 0)
        .count();
    let moved = faults::transitions(imp, &r2.log_text()) - before;
    // r2 falsely becomes master when no advert arrives within its Master_Down_Interval,
    // 0.3 + 0.061 s: three adverts in a row lost (two lost leave a gap of at most 0.34 s
    // with 20 ms jitter). Per advert p^3 (1 - p); 36,000 adverts an hour.
    let p: f64 = 0.05;
    let expected = 36_000.0 * p.powi(3) * (1.0 - p);
    let f = "5 % loss + 20 ms jitter to the backup (0.1 s adverts)";
    t.put(
        f,
        &format!("backup transitions in {secs:.0} s (per hour)"),
        k,
        format!("{moved} ({:.1}/h)", moved as f64 / 2.0 * 3600.0 / secs),
    );
    t.put(f, "backup adverts sent", k, takeovers.to_string());
    t.put(
        f,
        "binomial expectation",
        k,
        format!("{expected:.1} false takeovers/h"),
    );
    drop((r1, r2));
}

/// minivrrp's cost of leased VIPs: CPU of a master with `vips` VIPs at 0.1 s adverts, with
/// and without `vip_lifetime`, and the netlink notifications per VIP per refresh.
fn lease_cost(t: &mut Table, k: usize, bin: &std::path::Path, secs: f64, vips: usize) {
    let lab = Lab::with_routers("bfcost", 1);
    for (label, extra) in [
        ("leased (default)", None),
        ("vip_lifetime 0", Some("option vip_lifetime '0'")),
    ] {
        let mut sp = faults::spec(150, 0.1);
        sp.vips = (0..vips)
            .map(|i| format!("10.0.{}.{}/24", 1 + i / 200, 1 + i % 200))
            .collect();
        if let Some(e) = extra {
            sp.extra_uci.push(e.into());
        }
        let uci = common::lab::minivrrp_uci("r1", &[sp]);
        let p = lab.spawn_minivrrp_text("r1", bin, &uci, &format!("cost-{}", extra.is_some()));
        let up = common::lab::wait_until(Duration::from_secs(5), || {
            lab.node_has_addr("r1", "10.0.1.1")
        });
        if up.is_none() {
            eprintln!("cost: no master\n{}", p.log_text());
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
        let mon = lab.spawn(
            "r1",
            &format!("mon-{}", extra.is_some()),
            &["ip", "monitor", "address"],
        );
        std::thread::sleep(Duration::from_millis(200));
        let c0 = p.cpu_ns();
        let w = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(secs));
        let cpu = (p.cpu_ns() - c0) as f64 / 1e6 / w.elapsed().as_secs_f64() * 60.0;
        let notes = mon
            .log_text()
            .lines()
            .filter(|l| l.contains(" inet "))
            .count();
        let refreshes = w.elapsed().as_secs_f64() / (2.0 / 3.0);
        t.put(
            &format!("cost: master with {vips} VIPs, 0.1 s adverts"),
            &format!("CPU ms per minute, {label}"),
            k,
            format!("{cpu:.0}"),
        );
        t.put(
            &format!("cost: master with {vips} VIPs, 0.1 s adverts"),
            &format!("RTM_NEWADDR seen per VIP per refresh, {label}"),
            k,
            if extra.is_some() {
                format!("{notes} in {:.0} s", w.elapsed().as_secs_f64())
            } else {
                format!("{:.2}", notes as f64 / vips as f64 / refreshes)
            },
        );
        drop(mon);
        drop(p);
        for i in 0..vips {
            lab.del_addr("r1", &format!("10.0.{}.{}/24", 1 + i / 200, 1 + i % 200));
        }
    }
}

fn main() {
    if !common::require_root("bench faults") {
        return;
    }
    for tool in ["tcpdump", "ip"] {
        if !common::require_tool("bench faults", tool) {
            return;
        }
    }
    let stale = Lab::cleanup_dead_runs();
    if !stale.is_empty() {
        eprintln!("removed namespaces of dead runs: {stale:?}");
    }
    let want = env_list("BENCH_IMPLS", "keepalived,minivrrp");
    let mut impls = Vec::new();
    if want.iter().any(|s| s == "keepalived") && common::require_tool("bench faults", "keepalived")
    {
        impls.push(Impl::Keepalived);
    }
    if want.iter().any(|s| s == "minivrrp") {
        impls.push(Impl::Minivrrp(minivrrp_bin()));
    }
    let mut t = Table {
        impls: impls.iter().map(|i| i.name()).collect(),
        rows: Vec::new(),
    };
    let started = Instant::now();
    let faults_wanted = env_list("BENCH_FAULTS", "kill9,freeze,flap,split,reloads,broken");
    for fault in &faults_wanted {
        for (k, imp) in impls.iter().enumerate() {
            eprintln!(
                "[{:>5.0} s] {} {fault}",
                started.elapsed().as_secs_f64(),
                imp.name()
            );
            run_fault(&mut t, k, imp, fault);
        }
    }
    let netem_secs = env_num("BENCH_NETEM_SECS", 0.0);
    if netem_secs > 0.0 && common::require_tool("bench faults", "tc") {
        for (k, imp) in impls.iter().enumerate() {
            eprintln!(
                "[{:>5.0} s] {} netem",
                started.elapsed().as_secs_f64(),
                imp.name()
            );
            netem(&mut t, k, imp, netem_secs);
        }
    }
    let cost_secs = env_num("BENCH_COST_SECS", 20.0);
    if cost_secs > 0.0 {
        if let Some(k) = impls.iter().position(|i| matches!(i, Impl::Minivrrp(_))) {
            eprintln!(
                "[{:>5.0} s] minivrrp lease cost",
                started.elapsed().as_secs_f64()
            );
            lease_cost(
                &mut t,
                k,
                &minivrrp_bin(),
                cost_secs,
                env_num("BENCH_VIPS", 20.0) as usize,
            );
        }
    }
    t.print();
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());
}
