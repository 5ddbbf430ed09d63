//! `cargo bench --bench vrrp`: prints the cost of `Instance::handle()` per advertisement and
//! the wall time of simulated router-hours. Prints figures only; nothing timed is asserted.

#[path = "../pure/sim.rs"]
mod sim;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant as Wall;

use minivrrp::base::{Duration, Instant};
use minivrrp::vrrp::instance::{Advert, Input, Instance, Params, StartHint, State};
use sim::{Net, Sim};

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

/// Median nanoseconds per `handle()` call over `rounds` batches of `batch` calls.
fn per_advert_ns(mut inst: Instance, adv: Advert, rounds: usize, batch: u64) -> (f64, State) {
    let mut samples = Vec::with_capacity(rounds);
    let mut now = Instant::from_secs(1);
    for _ in 0..rounds {
        let start = Wall::now();
        for _ in 0..batch {
            now += Duration::from_millis(1);
            let out = inst.handle(now, black_box(Input::AdvertReceived(adv)));
            black_box(out);
        }
        samples.push(start.elapsed().as_nanos() as f64 / batch as f64);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    (samples[samples.len() / 2], inst.state())
}

fn router_hour(n: usize) -> (f64, u64) {
    let params: Vec<Params> = (0..n)
        .map(|i| {
            let mut p = Params::new(ip(i as u8 + 1), 100 + 10 * i as u8);
            p.advert_int = Duration::from_secs(1);
            p
        })
        .collect();
    let net = Net {
        loss_permille: 0,
        delay: Duration::from_micros(200),
        jitter: Duration::from_micros(100),
    };
    let mut sim = Sim::new(42, params, net);
    let start = Wall::now();
    sim.start_all();
    let mut ok = |_: &Sim| Ok(());
    if let Err(e) = sim.run_until(Instant::from_secs(3600), &mut ok) {
        println!("simulation reported: {e}");
    }
    (start.elapsed().as_secs_f64(), sim.steps)
}

fn main() {
    let rounds = 301;
    let batch = 2_000;

    // BACKUP accepting a higher-priority master's advert (resets Master_Down_Timer).
    let mut b = Instance::new(Params::new(ip(2), 100));
    b.handle(Instant::ZERO, Input::Startup);
    let higher = Advert {
        src: ip(1),
        priority: 200,
        advert_int: Duration::from_secs(1),
    };
    let (ns, st) = per_advert_ns(b, higher, rounds, batch);
    println!("handle(advert) BACKUP accepting higher priority: {ns:.1} ns median (state {st})");

    // MASTER discarding a lower-priority advert.
    let mut p = Params::new(ip(2), 200);
    p.start = StartHint::Master;
    let mut m = Instance::new(p);
    m.handle(Instant::ZERO, Input::Startup);
    let lower = Advert {
        src: ip(1),
        priority: 100,
        advert_int: Duration::from_secs(1),
    };
    let (ns, st) = per_advert_ns(m, lower, rounds, batch);
    println!("handle(advert) MASTER discarding lower priority: {ns:.1} ns median (state {st})");

    for n in [2usize, 5] {
        let (secs, steps) = router_hour(n);
        println!(
            "simulated hour, {n} routers, 1 s adverts: {:.1} ms wall ({steps} events, {:.1} ms per router-hour)",
            secs * 1e3,
            secs * 1e3 / n as f64
        );
    }
}
