//! Replays every scenario in `tests/conformance/<scenario>/`:
//!
//! - `params.json`: the instance configuration (fields of `vrrp::instance::Params`; times in
//!   seconds; omitted fields take `Params::new` defaults);
//! - `events.jsonl`: timestamped inputs, one per line (`t` in seconds);
//! - `expected.jsonl`: every action the instance must produce, with its time, in order.
//!
//! Timers are not listed as events: like the daemon, the runner asks `next_deadline()` and
//! delivers `Input::Timer` at that instant whenever it falls before the next event (an event
//! `{"input":"end"}` just runs the clock). Run one scenario with
//! `CONFORMANCE=<name> cargo test --test pure vrrp_conformance:: -- --nocapture`.

use crate::common;

use common::scenarios::{differ, jsonl, replay_all};
use std::fs;
use std::net::IpAddr;
use std::path::Path;

use minivrrp::base::{Duration, Instant};
use minivrrp::vrrp::instance::{
    Action, Advert, Input, Instance, Params, StartHint, State, SyncCommand, Version,
};
use minivrrp::vrrp::priority::Adjustment;
use serde_json::{json, Map, Value};

fn secs(v: &Value) -> Result<Duration, String> {
    let s = v
        .as_f64()
        .ok_or_else(|| format!("expected seconds, got {v}"))?;
    Ok(Duration::from_micros((s * 1e6).round() as u64))
}

fn instant(v: &Value) -> Result<Instant, String> {
    Ok(Instant::ZERO + secs(v)?)
}

fn t_json(t: Instant) -> Value {
    json!(t.total_micros() as f64 / 1e6)
}

fn apply_params(p: &mut Params, obj: &Map<String, Value>) -> Result<(), String> {
    for (k, v) in obj {
        let bad = || format!("bad value for {k}: {v}");
        match k.as_str() {
            "version" => {
                p.version = match v.as_u64() {
                    Some(2) => Version::V2,
                    Some(3) => Version::V3,
                    _ => return Err(bad()),
                }
            }
            "priority" => {
                p.priority = v
                    .as_u64()
                    .and_then(|x| u8::try_from(x).ok())
                    .ok_or_else(bad)?
            }
            "advert_int" => p.advert_int = secs(v)?,
            "preempt" => p.preempt = v.as_bool().ok_or_else(bad)?,
            "preempt_delay" => p.preempt_delay = secs(v)?,
            "primary" => p.primary = v.as_str().and_then(|s| s.parse().ok()).ok_or_else(bad)?,
            "start" => {
                p.start = match v.as_str() {
                    Some("backup") => StartHint::Backup,
                    Some("master") => StartHint::Master,
                    _ => return Err(bad()),
                }
            }
            "garp_repeat" => {
                p.garp_repeat = v
                    .as_u64()
                    .and_then(|x| u8::try_from(x).ok())
                    .ok_or_else(bad)?
            }
            "garp_delay" => p.garp_delay = secs(v)?,
            "garp_refresh" => p.garp_refresh = secs(v)?,
            "startup_delay" => p.startup_delay = secs(v)?,
            "link_down_delay" => p.link_down_delay = secs(v)?,
            "link_up_delay" => p.link_up_delay = secs(v)?,
            // null: no pre-master hook.
            "pre_master_timeout" => {
                p.pre_master_timeout = if v.is_null() { None } else { Some(secs(v)?) }
            }
            "garp_refresh_repeat" => {
                p.garp_refresh_repeat = v
                    .as_u64()
                    .and_then(|x| u8::try_from(x).ok())
                    .ok_or_else(bad)?
            }
            "comment" => {}
            _ => return Err(format!("unknown parameter {k}")),
        }
    }
    Ok(())
}

fn parse_input(ev: &Value, current: &Params) -> Result<Option<Input>, String> {
    let kind = ev["input"].as_str().ok_or("event without \"input\"")?;
    let u8_of = |k: &str| -> Result<u8, String> {
        ev[k]
            .as_u64()
            .and_then(|x| u8::try_from(x).ok())
            .ok_or_else(|| format!("bad {k} in {ev}"))
    };
    Ok(Some(match kind {
        "startup" => Input::Startup,
        "shutdown" => Input::Shutdown,
        "end" => return Ok(None),
        "advert" => Input::AdvertReceived(Advert {
            src: ev["src"]
                .as_str()
                .and_then(|s| s.parse::<IpAddr>().ok())
                .ok_or_else(|| format!("bad src in {ev}"))?,
            priority: u8_of("priority")?,
            advert_int: secs(&ev["advert_int"])?,
        }),
        "interface_up" => Input::InterfaceUp,
        "pre_master_done" => Input::PreMasterDone,
        "announce" => Input::Announce,
        "interface_down" => Input::InterfaceDown,
        "trackers" => Input::Trackers(Adjustment {
            delta: ev["delta"].as_i64().unwrap_or(0) as i32,
            fault: ev["fault"].as_bool().unwrap_or(false),
        }),
        "config" => {
            let mut p = *current;
            let obj = ev["params"].as_object().ok_or("config without params")?;
            apply_params(&mut p, obj)?;
            Input::ConfigChange(p)
        }
        "sync" => Input::Sync(match ev["command"].as_str() {
            Some("fault") => SyncCommand::Fault,
            Some("release_fault") => SyncCommand::ReleaseFault,
            Some("backup") => SyncCommand::Backup,
            Some("master") => SyncCommand::Master,
            _ => return Err(format!("bad sync command in {ev}")),
        }),
        other => return Err(format!("unknown input {other}")),
    }))
}

fn state_str(s: State) -> String {
    s.to_string()
}

fn action_json(t: Instant, a: &Action) -> Value {
    match a {
        Action::SendAdvert { priority } => {
            json!({"t": t_json(t), "action": "send_advert", "priority": priority})
        }
        Action::AddVips => json!({"t": t_json(t), "action": "add_vips"}),
        Action::RemoveVips => json!({"t": t_json(t), "action": "remove_vips"}),
        Action::Announce { count } => json!({"t": t_json(t), "action": "announce", "count": count}),
        Action::Notify(s) => json!({"t": t_json(t), "action": "notify", "state": state_str(*s)}),
        Action::RunPreMaster => json!({"t": t_json(t), "action": "run_pre_master"}),
        Action::StopPreMaster => json!({"t": t_json(t), "action": "stop_pre_master"}),
        Action::Transition { from, to, reason } => json!({
            "t": t_json(t), "action": "transition",
            "from": state_str(*from), "to": state_str(*to), "reason": reason.to_string()
        }),
    }
}

/// Normalise times to whole microseconds so 3.609375 and 3.6093750 compare equal.
fn normalise(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(t) = v.get("t").and_then(Value::as_f64) {
        v["t"] = json!((t * 1e6).round() as u64);
    }
    v
}

fn run_timers(inst: &mut Instance, until: Instant, out: &mut Vec<Value>) {
    // Bounded: a broken timer that never advances must not hang the test.
    for _ in 0..100_000 {
        match inst.next_deadline() {
            Some(d) if d <= until => {
                for a in inst.handle(d, Input::Timer) {
                    out.push(action_json(d, &a));
                }
            }
            _ => return,
        }
    }
    panic!("timer did not advance");
}

fn run_scenario(dir: &Path) -> Result<(), String> {
    let ptext = fs::read_to_string(dir.join("params.json")).map_err(|e| e.to_string())?;
    let pv: Value = serde_json::from_str(&ptext).map_err(|e| e.to_string())?;
    let obj = pv.as_object().ok_or("params.json is not an object")?;
    let primary = obj
        .get("primary")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or("params.json needs primary")?;
    let mut params = Params::new(primary, 100);
    apply_params(&mut params, obj)?;
    let mut inst = Instance::new(params);

    let mut actual = Vec::new();
    for ev in jsonl(&dir.join("events.jsonl"))? {
        let t = instant(&ev["t"])?;
        run_timers(&mut inst, t, &mut actual);
        if let Some(input) = parse_input(&ev, inst.params())? {
            for a in inst.handle(t, input) {
                actual.push(action_json(t, &a));
            }
        }
    }
    let expected = jsonl(&dir.join("expected.jsonl"))?;
    let a: Vec<Value> = actual.iter().map(normalise).collect();
    let e: Vec<Value> = expected.iter().map(normalise).collect();
    if a != e {
        return Err(differ("actions", &expected, &actual));
    }
    Ok(())
}

#[test]
fn conformance_scenarios_replay() {
    replay_all("conformance", "params.json", "CONFORMANCE", run_scenario);
}
