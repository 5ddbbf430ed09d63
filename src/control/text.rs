//! `status` for people: fits an 80-column serial console (every line is at most
//! [`WIDTH`] characters; long lists wrap onto indented lines).

use core::fmt::Write;

use super::status::*;

pub const WIDTH: usize = 80;

/// Milliseconds as `3.61 s`, `12 min`, `5 h` or `3 d`: short, no floats.
pub fn ago(ms: u64) -> String {
    match ms {
        0..=99_999 => format!("{}.{:02} s", ms / 1000, (ms % 1000) / 10),
        100_000..=5_999_999 => format!("{} min", ms / 60_000),
        6_000_000..=259_199_999 => format!("{} h", ms / 3_600_000),
        _ => format!("{} d", ms / 86_400_000),
    }
}

/// Appends `items` after `head`, wrapping at WIDTH onto lines indented by `indent`.
fn wrapped(out: &mut String, head: &str, items: &[String], indent: usize) {
    let mut line = String::from(head);
    for (n, it) in items.iter().enumerate() {
        let sep = if n == 0 { "" } else { " " };
        if line.len() + sep.len() + it.len() > WIDTH && !line.trim().is_empty() {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            line.push_str(it);
        } else {
            line.push_str(sep);
            line.push_str(it);
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// A line cut to WIDTH characters (names and reasons can be long).
fn line(out: &mut String, s: &str) {
    let cut: String = s.chars().take(WIDTH).collect();
    out.push_str(&cut);
    out.push('\n');
}

fn instance(out: &mut String, i: &InstanceStatus) {
    line(
        out,
        &format!(
            "{} {} for {}  {} vrid {} v{}",
            i.name,
            i.state,
            ago(i.since_ms),
            i.interface,
            i.vrid,
            i.version
        ),
    );
    line(out, &format!("  reason: {}", i.reason));
    let mut l = String::from("  master ");
    match i.master {
        Some(a) => {
            let _ = write!(l, "{a}");
        }
        None => l.push('-'),
    }
    let _ = write!(
        l,
        "  priority {} (base {}",
        i.effective_priority, i.base_priority
    );
    if let Some(o) = i.priority_override {
        let _ = write!(l, ", override {o}");
    }
    let _ = write!(
        l,
        ")  advert {} (master {})",
        ago(u64::from(i.advert_int_ms)),
        ago(u64::from(i.master_advert_int_ms))
    );
    line(out, &l);
    let vips = format!(
        "  vips ({}):",
        if i.vips_installed {
            "installed"
        } else if i.pre_master_running {
            "held: pre_master running"
        } else {
            "not installed"
        }
    );
    wrapped(out, &(vips + " "), &i.vips, 4);
    for f in &i.families {
        let master = f.master.map_or("-".to_string(), |a| a.to_string());
        let vips = if f.vips_installed {
            "installed"
        } else {
            "not installed"
        };
        line(
            out,
            &format!("  {} {}  master {master}  vips {vips}", f.family, f.state),
        );
    }
    for t in &i.trackers {
        line(
            out,
            &format!(
                "  track {} {}: {}, weight {}, {}{}",
                t.kind,
                t.name,
                t.state,
                t.weight,
                t.contribution,
                if t.fault { ", FAULT" } else { "" }
            ),
        );
    }
    let c = &i.counters;
    line(
        out,
        &format!(
            "  adverts sent {} rcvd {} discarded {}; prio 0 sent {} rcvd {}; changes {}",
            c.adverts_sent,
            c.adverts_received,
            c.adverts_discarded,
            c.priority_zero_sent,
            c.priority_zero_received,
            c.transitions
        ),
    );
    drop_lines(out, "  dropped: ", &i.drops);
    if let Some(a) = &i.auth_hmac {
        let ids: Vec<String> = a.key_ids.iter().map(|k| k.to_string()).collect();
        line(
            out,
            &format!(
                "  auth_hmac {} signing with key {} (keys {}), anti_replay {} window {} s",
                a.mode,
                a.active_key,
                ids.join(","),
                a.anti_replay,
                a.time_window_s
            ),
        );
        let outcomes: Vec<String> = a
            .outcomes
            .iter()
            .map(|c| format!("{} {}", c.name, c.value))
            .collect();
        wrapped(out, "  auth: ", &outcomes, 2);
    }
}

/// `prefix` then `reason count` pairs, wrapped, when any is non-zero.
fn drop_lines(out: &mut String, prefix: &str, list: &[Counter]) {
    let drops: Vec<String> = list
        .iter()
        .filter(|c| c.value > 0)
        .map(|c| format!("{} {}", c.name, c.value))
        .collect();
    if !drops.is_empty() {
        wrapped(out, prefix, &drops, 2);
    }
}

/// The whole document as text.
pub fn render(doc: &StatusDoc) -> String {
    let mut out = String::new();
    line(
        &mut out,
        &format!(
            "minivrrp {} ({}), pid {}, up {}{}",
            doc.version,
            doc.router_id,
            doc.pid,
            ago(doc.uptime_ms),
            if doc.maintenance {
                ", MAINTENANCE (all BACKUP)"
            } else {
                ""
            }
        ),
    );
    for i in &doc.instances {
        instance(&mut out, i);
    }
    if doc.timers.total() > 0 {
        let w = doc.timers.worst.as_micros() as u64;
        line(
            &mut out,
            &format!(
                "timers: {} fired, worst {}.{:02} ms late",
                doc.timers.total(),
                w / 1000,
                (w % 1000) / 10
            ),
        );
    }
    for c in &doc.checks {
        let mut l = format!("check {} ({}): {}", c.name, c.kind, c.state);
        if let Some(r) = &c.last_result {
            let _ = write!(l, ", last {r}");
        }
        if let Some(us) = c.latency_us {
            let _ = write!(l, " in {}.{:02} ms", us / 1000, (us % 1000) / 10);
        }
        if let Some(ms) = c.last_ms_ago {
            let _ = write!(l, ", {} ago", ago(ms));
        }
        if let Some(w) = c.weight {
            let _ = write!(l, ", weight {w}");
        }
        line(&mut out, &l);
    }
    for v in &doc.virtual_servers {
        let up = match v.up {
            Some(true) => "up",
            Some(false) => "DOWN",
            None => "ipvs unavailable",
        };
        line(&mut out, &format!("vs {} {}: {}", v.name, v.service, up));
        for r in &v.real_servers {
            let up = match r.up {
                Some(true) => "up",
                Some(false) => "down",
                None => "?",
            };
            line(
                &mut out,
                &format!(
                    "  {} weight {} {}{}",
                    r.address,
                    r.weight,
                    up,
                    if r.in_kernel { "" } else { " (not in kernel)" }
                ),
            );
        }
    }
    drop_lines(&mut out, "drops: ", &doc.drops);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::json::tests::sample;

    #[test]
    fn every_line_fits_80_columns_even_with_long_lists() {
        let mut d = sample();
        d.instances[0].vips = (0..20).map(|i| format!("fd00::{i:x}/64")).collect();
        d.instances[0].reason = "x".repeat(200);
        let t = render(&d);
        for l in t.lines() {
            assert!(l.chars().count() <= WIDTH, "{l:?}");
        }
        // Every VIP is still there after wrapping.
        for i in 0..20 {
            assert!(t.contains(&format!("fd00::{i:x}/64")), "{t}");
        }
    }

    #[test]
    fn shows_state_master_priority_and_counters() {
        let t = render(&sample());
        assert!(
            t.contains("vi1 MASTER for 2.50 s  br-lan vrid 50 v3"),
            "{t}"
        );
        assert!(
            t.contains("master 10.0.0.1  priority 190 (base 100, override 200)"),
            "{t}"
        );
        assert!(t.contains("track script chk"), "{t}");
        assert!(t.contains("adverts sent 7 rcvd 1"), "{t}");
        assert!(
            t.contains("check web (check): up, last ok in 0.19 ms"),
            "{t}"
        );
        assert!(t.contains("drops: bad_ttl 3"), "{t}");
        assert!(t.contains("  dropped: not-a-peer 4"), "{t}");
    }

    #[test]
    fn ago_is_short() {
        assert_eq!(ago(3610), "3.61 s");
        assert_eq!(ago(600_000), "10 min");
        assert_eq!(ago(7_200_000), "2 h");
        assert_eq!(ago(3 * 86_400_000), "3 d");
    }
}
