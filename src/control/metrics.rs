//! `minivrrp metrics`: the status document in the Prometheus text exposition format
//! (version 0.0.4), for node_exporter's textfile collector. Every family has `# HELP` and
//! `# TYPE`; counters end in `_total`; label values are escaped as the format requires.

use core::fmt::Write;

use super::status::*;

/// Label value escaping of the exposition format: backslash, double quote, newline.
fn label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl core::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (n, (k, v)) in labels.iter().enumerate() {
                if n > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                label(self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

fn family<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Family { out }
}

const STATES: [&str; 4] = ["INIT", "BACKUP", "MASTER", "FAULT"];

/// Seconds with microsecond precision, without floating point.
fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// Per-instance counter families: (metric name, help, field).
type CounterField = fn(&InstanceCounters) -> u32;
const INSTANCE_COUNTERS: [(&str, &str, CounterField); 10] = [
    (
        "minivrrp_adverts_sent_total",
        "VRRP advertisements sent.",
        |c| c.adverts_sent,
    ),
    (
        "minivrrp_adverts_received_total",
        "VRRP advertisements received for the instance.",
        |c| c.adverts_received,
    ),
    (
        "minivrrp_adverts_discarded_total",
        "Advertisements the state machine discarded.",
        |c| c.adverts_discarded,
    ),
    (
        "minivrrp_priority_zero_sent_total",
        "Priority-0 advertisements sent (mastership released).",
        |c| c.priority_zero_sent,
    ),
    (
        "minivrrp_priority_zero_received_total",
        "Priority-0 advertisements received.",
        |c| c.priority_zero_received,
    ),
    (
        "minivrrp_transitions_total",
        "State transitions of the instance.",
        |c| c.transitions,
    ),
    (
        "minivrrp_vips_restored_total",
        "VIPs deleted under the master by another process or the kernel and added back.",
        |c| c.vips_restored,
    ),
    (
        "minivrrp_ra_sent_total",
        "Router Advertisements sent by the virtual router (option ra).",
        |c| c.ra_sent,
    ),
    (
        "minivrrp_rs_received_total",
        "Router Solicitations received while advertising.",
        |c| c.rs_received,
    ),
    (
        "minivrrp_rs_rate_limited_total",
        "Router Solicitations the RFC 4861 6.2.6 rate limit answered later or not at all.",
        |c| c.rs_rate_limited,
    ),
];

pub fn render(doc: &StatusDoc) -> String {
    let mut out = String::with_capacity(2048);
    family(
        &mut out,
        "minivrrp_up_seconds",
        "gauge",
        "Seconds since the daemon started.",
    )
    .sample("minivrrp_up_seconds", &[], seconds(doc.uptime_ms * 1000));
    family(
        &mut out,
        "minivrrp_maintenance",
        "gauge",
        "1 while maintenance mode keeps every instance BACKUP.",
    )
    .sample("minivrrp_maintenance", &[], u8::from(doc.maintenance));

    let mut f = family(
        &mut out,
        "minivrrp_instance_state",
        "gauge",
        "1 for the instance's current state, 0 for the others.",
    );
    for i in &doc.instances {
        for s in STATES {
            f.sample(
                "minivrrp_instance_state",
                &[("instance", &i.name), ("state", s)],
                u8::from(i.state == s),
            );
        }
    }
    let mut f = family(
        &mut out,
        "minivrrp_instance_priority",
        "gauge",
        "Priority: configured base, runtime override (when set) and effective.",
    );
    for i in &doc.instances {
        f.sample(
            "minivrrp_instance_priority",
            &[("instance", &i.name), ("kind", "base")],
            i.base_priority,
        );
        if let Some(o) = i.priority_override {
            f.sample(
                "minivrrp_instance_priority",
                &[("instance", &i.name), ("kind", "override")],
                o,
            );
        }
        f.sample(
            "minivrrp_instance_priority",
            &[("instance", &i.name), ("kind", "effective")],
            i.effective_priority,
        );
    }
    let mut f = family(
        &mut out,
        "minivrrp_vips_installed",
        "gauge",
        "1 while the instance's virtual addresses are configured on its interface.",
    );
    for i in &doc.instances {
        f.sample(
            "minivrrp_vips_installed",
            &[("instance", &i.name)],
            u8::from(i.vips_installed),
        );
    }
    let mut f = family(
        &mut out,
        "minivrrp_pre_master_running",
        "gauge",
        "1 while the instance is MASTER with its virtual addresses held for notify_pre_master.",
    );
    for i in &doc.instances {
        f.sample(
            "minivrrp_pre_master_running",
            &[("instance", &i.name)],
            u8::from(i.pre_master_running),
        );
    }
    let mut f = family(
        &mut out,
        "minivrrp_tracker_contribution",
        "gauge",
        "Priority change a tracked object applies now.",
    );
    for i in &doc.instances {
        for t in &i.trackers {
            f.sample(
                "minivrrp_tracker_contribution",
                &[
                    ("instance", &i.name),
                    ("kind", &t.kind),
                    ("tracker", &t.name),
                ],
                t.contribution,
            );
        }
    }
    for (name, help, get) in INSTANCE_COUNTERS {
        let mut f = family(&mut out, name, "counter", help);
        for i in &doc.instances {
            f.sample(name, &[("instance", &i.name)], get(&i.counters));
        }
    }
    let mut f = family(
        &mut out,
        "minivrrp_instance_adverts_dropped_total",
        "counter",
        "Adverts for an instance dropped by the receive policy, by reason.",
    );
    for i in &doc.instances {
        for c in &i.drops {
            let labels = [("instance", i.name.as_str()), ("reason", c.name.as_str())];
            f.sample("minivrrp_instance_adverts_dropped_total", &labels, c.value);
        }
    }
    let mut f = family(
        &mut out,
        "minivrrp_instance_auth_hmac_total",
        "counter",
        "Adverts an instance with auth_hmac verified, by outcome (clock_skew: accepted ones past half the window).",
    );
    for i in &doc.instances {
        for c in i.auth_hmac.iter().flat_map(|a| a.outcomes.iter()) {
            let labels = [("instance", i.name.as_str()), ("outcome", c.name.as_str())];
            f.sample("minivrrp_instance_auth_hmac_total", &labels, c.value);
        }
    }
    let mut f = family(
        &mut out,
        "minivrrp_drops_total",
        "counter",
        "Received VRRP frames that reached no instance, by reason.",
    );
    for c in &doc.drops {
        f.sample("minivrrp_drops_total", &[("reason", &c.name)], c.value);
    }
    let mut f = family(
        &mut out,
        "minivrrp_check_up",
        "gauge",
        "Check verdict: 1 up, 0 down (absent while unknown).",
    );
    for c in &doc.checks {
        let v = match c.state.as_str() {
            "up" => 1,
            "down" => 0,
            _ => continue,
        };
        f.sample(
            "minivrrp_check_up",
            &[("check", &c.name), ("kind", &c.kind)],
            v,
        );
    }
    let mut f = family(
        &mut out,
        "minivrrp_check_latency_seconds",
        "gauge",
        "Duration of the check's last attempt.",
    );
    for c in &doc.checks {
        if let Some(us) = c.latency_us {
            f.sample(
                "minivrrp_check_latency_seconds",
                &[("check", &c.name), ("kind", &c.kind)],
                seconds(us),
            );
        }
    }
    let mut f = family(
        &mut out,
        "minivrrp_virtual_server_up",
        "gauge",
        "1 while the virtual server has quorum.",
    );
    for v in &doc.virtual_servers {
        if let Some(up) = v.up {
            f.sample(
                "minivrrp_virtual_server_up",
                &[("virtual_server", &v.name)],
                u8::from(up),
            );
        }
    }
    let mut f = family(
        &mut out,
        "minivrrp_real_server_weight",
        "gauge",
        "IPVS weight of the real server as programmed in the kernel.",
    );
    for v in &doc.virtual_servers {
        for r in &v.real_servers {
            if r.in_kernel {
                f.sample(
                    "minivrrp_real_server_weight",
                    &[("virtual_server", &v.name), ("real_server", &r.address)],
                    r.weight,
                );
            }
        }
    }
    let mut f = family(
        &mut out,
        "minivrrp_timer_lateness_seconds",
        "histogram",
        "How late the daemon's timers fired after their deadlines.",
    );
    for (le, n) in doc.timers.cumulative() {
        let le = le.map_or("+Inf".to_string(), seconds);
        f.sample("minivrrp_timer_lateness_seconds_bucket", &[("le", &le)], n);
    }
    f.sample(
        "minivrrp_timer_lateness_seconds_sum",
        &[],
        seconds(doc.timers.sum_us),
    );
    f.sample(
        "minivrrp_timer_lateness_seconds_count",
        &[],
        doc.timers.total(),
    );
    let mut f = family(
        &mut out,
        "minivrrp_instance_timer_late_worst_seconds",
        "gauge",
        "The latest the instance's timer fired after its deadline.",
    );
    for i in &doc.instances {
        f.sample(
            "minivrrp_instance_timer_late_worst_seconds",
            &[("instance", &i.name)],
            seconds(i.timer_late_worst_us),
        );
    }
    let c = doc.control;
    let mut f = family(
        &mut out,
        "minivrrp_control_dropped_total",
        "counter",
        "Control socket clients dropped, refused or delayed (busy, throttled), by reason.",
    );
    for (reason, v) in [
        ("not_root", c.refused_not_root),
        ("busy", c.refused_busy),
        ("garbage", c.dropped_garbage),
        ("oversize", c.dropped_oversize),
        ("timeout", c.dropped_timeout),
        ("throttled", c.throttled),
    ] {
        f.sample("minivrrp_control_dropped_total", &[("reason", reason)], v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::json::tests::sample;

    #[test]
    fn one_state_is_set_and_labels_are_escaped() {
        let t = render(&sample());
        assert!(t.contains("minivrrp_instance_state{instance=\"vi1\",state=\"MASTER\"} 1\n"));
        assert!(t.contains("minivrrp_pre_master_running{instance=\"vi1\"} 0\n"));
        assert!(t.contains("minivrrp_instance_state{instance=\"vi1\",state=\"BACKUP\"} 0\n"));
        assert!(t.contains("tracker=\"chk\\nx\"} -10\n"), "{t}");
        assert!(
            t.contains("minivrrp_check_latency_seconds{check=\"web\",kind=\"check\"} 0.000190\n")
        );
        assert!(t.contains(
            "minivrrp_real_server_weight{virtual_server=\"vs1\",real_server=\"10.0.1.1:80\"} 1\n"
        ));
        assert!(t.contains("minivrrp_drops_total{reason=\"bad_ttl\"} 3\n"));
        // Cumulative buckets of the lateness histogram (40 µs and 1.5 ms).
        assert!(t.contains("minivrrp_timer_lateness_seconds_bucket{le=\"0.000100\"} 1\n"));
        assert!(t.contains("minivrrp_timer_lateness_seconds_bucket{le=\"0.005000\"} 2\n"));
        assert!(t.contains("minivrrp_timer_lateness_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(t.contains("minivrrp_timer_lateness_seconds_count 2\n"));
        assert!(
            t.contains("minivrrp_instance_timer_late_worst_seconds{instance=\"vi1\"} 0.001500\n")
        );
        assert!(t.contains(
            "minivrrp_instance_auth_hmac_total{instance=\"vi1\",outcome=\"bad_mac\"} 1\n"
        ));
        assert!(t.contains(
            "minivrrp_instance_adverts_dropped_total{instance=\"vi1\",reason=\"not-a-peer\"} 4\n"
        ));
    }
}
