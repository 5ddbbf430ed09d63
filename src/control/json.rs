//! `status --json`: the status document as one JSON object, written by hand (a JSON library
//! would add tens of KB to a binary whose flash budget is counted in KB, for one writer).
//! The shape is the README's "JSON status" section; `tests/lab/control_lab.rs` parses it.

use core::fmt::Write;

use super::status::*;

/// A JSON string literal (RFC 8259 section 7 escapes).
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes `{"k": v, ...}` with commas placed for the caller.
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }
    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        string(self.out, k);
        self.out.push(':');
        self.out
    }
    fn str(&mut self, k: &str, v: &str) {
        let o = self.key(k);
        string(o, v);
    }
    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(k, v),
            None => self.key(k).push_str("null"),
        }
    }
    fn num(&mut self, k: &str, v: impl core::fmt::Display) {
        let o = self.key(k);
        let _ = write!(o, "{v}");
    }
    fn opt_num(&mut self, k: &str, v: Option<impl core::fmt::Display>) {
        match v {
            Some(v) => self.num(k, v),
            None => self.key(k).push_str("null"),
        }
    }
    fn bool(&mut self, k: &str, v: bool) {
        self.key(k).push_str(if v { "true" } else { "false" });
    }
    fn opt_bool(&mut self, k: &str, v: Option<bool>) {
        match v {
            Some(v) => self.bool(k, v),
            None => self.key(k).push_str("null"),
        }
    }
    fn array<T>(&mut self, k: &str, items: &[T], mut each: impl FnMut(&mut String, &T)) {
        let o = self.key(k);
        o.push('[');
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            each(o, it);
        }
        o.push(']');
    }
    fn end(self) {
        self.out.push('}');
    }
}

/// Drop counters as one object, reason -> count.
fn drops(out: &mut String, list: &[Counter]) {
    let mut o = Obj::new(out);
    for c in list {
        o.num(&c.name, c.value);
    }
    o.end();
}

fn counters(out: &mut String, c: &InstanceCounters) {
    let mut o = Obj::new(out);
    o.num("adverts_sent", c.adverts_sent);
    o.num("adverts_received", c.adverts_received);
    o.num("adverts_discarded", c.adverts_discarded);
    o.num("priority_zero_sent", c.priority_zero_sent);
    o.num("priority_zero_received", c.priority_zero_received);
    o.num("transitions", c.transitions);
    o.num("vips_restored", c.vips_restored);
    o.num("ra_sent", c.ra_sent);
    o.num("rs_received", c.rs_received);
    o.num("rs_rate_limited", c.rs_rate_limited);
    o.end();
}

fn instance(out: &mut String, i: &InstanceStatus) {
    let mut o = Obj::new(out);
    o.str("name", &i.name);
    o.str("state", &i.state);
    o.str("interface", &i.interface);
    o.num("vrid", i.vrid);
    o.num("version", i.version);
    o.num("since_ms", i.since_ms);
    o.str("reason", &i.reason);
    let master = i.master.map(|a| a.to_string());
    o.opt_str("master", master.as_deref());
    o.num("base_priority", i.base_priority);
    o.opt_num("priority_override", i.priority_override);
    o.num("effective_priority", i.effective_priority);
    o.array("trackers", &i.trackers, |out, t| {
        let mut o = Obj::new(out);
        o.str("kind", &t.kind);
        o.str("name", &t.name);
        o.num("weight", t.weight);
        o.str("state", &t.state);
        o.num("contribution", t.contribution);
        o.bool("fault", t.fault);
        o.end();
    });
    o.array("vips", &i.vips, |out, v| string(out, v));
    o.bool("vips_installed", i.vips_installed);
    o.bool("pre_master_running", i.pre_master_running);
    o.num("advert_int_ms", i.advert_int_ms);
    o.num("timer_late_worst_us", i.timer_late_worst_us);
    drops(o.key("drops"), &i.drops);
    o.num("master_advert_int_ms", i.master_advert_int_ms);
    counters(o.key("counters"), &i.counters);
    match &i.auth_hmac {
        Some(a) => {
            let mut h = Obj::new(o.key("auth_hmac"));
            h.str("mode", &a.mode);
            h.num("active_key", a.active_key);
            h.array("key_ids", &a.key_ids, |out, id| {
                out.push_str(&id.to_string())
            });
            h.str("anti_replay", &a.anti_replay);
            h.num("time_window_s", a.time_window_s);
            drops(h.key("outcomes"), &a.outcomes);
            h.end();
        }
        None => o.key("auth_hmac").push_str("null"),
    }
    o.array("families", &i.families, |out, f| {
        let mut o = Obj::new(out);
        o.str("family", &f.family);
        o.str("state", &f.state);
        let master = f.master.map(|a| a.to_string());
        o.opt_str("master", master.as_deref());
        o.bool("vips_installed", f.vips_installed);
        o.end();
    });
    o.end();
}

fn check(out: &mut String, c: &CheckStatus) {
    let mut o = Obj::new(out);
    o.str("name", &c.name);
    o.str("kind", &c.kind);
    o.str("state", &c.state);
    o.opt_str("last_result", c.last_result.as_deref());
    o.opt_num("latency_us", c.latency_us);
    o.opt_num("last_ms_ago", c.last_ms_ago);
    o.opt_num("weight", c.weight.map(u64::from));
    o.end();
}

fn virtual_server(out: &mut String, v: &VirtualServerStatus) {
    let mut o = Obj::new(out);
    o.str("name", &v.name);
    o.str("service", &v.service);
    o.opt_bool("up", v.up);
    o.array("real_servers", &v.real_servers, |out, r| {
        let mut o = Obj::new(out);
        o.str("address", &r.address);
        o.num("weight", r.weight);
        o.opt_bool("up", r.up);
        o.bool("in_kernel", r.in_kernel);
        o.end();
    });
    o.end();
}

/// The whole document, one line, no trailing newline.
pub fn render(doc: &StatusDoc) -> String {
    let mut out = String::with_capacity(1024);
    let mut o = Obj::new(&mut out);
    o.str("version", &doc.version);
    o.str("router_id", &doc.router_id);
    o.num("pid", doc.pid);
    o.num("uptime_ms", doc.uptime_ms);
    o.bool("maintenance", doc.maintenance);
    o.array("instances", &doc.instances, instance);
    o.array("checks", &doc.checks, check);
    o.array("virtual_servers", &doc.virtual_servers, virtual_server);
    drops(o.key("drops"), &doc.drops);
    let c = &doc.control;
    let mut co = Obj::new(o.key("control"));
    co.num("clients", c.clients);
    co.num("accepted", c.accepted);
    co.num("requests", c.requests);
    co.num("refused_not_root", c.refused_not_root);
    co.num("refused_busy", c.refused_busy);
    co.num("dropped_garbage", c.dropped_garbage);
    co.num("dropped_oversize", c.dropped_oversize);
    co.num("dropped_timeout", c.dropped_timeout);
    co.num("throttled", c.throttled);
    co.end();
    // Timers fired per lateness bucket ("le_us": upper bound, "over" above the last one).
    let t = &doc.timers;
    let mut to = Obj::new(o.key("timers"));
    to.num("fired", t.total());
    to.num("late_worst_us", t.worst.as_micros() as u64);
    to.num("late_sum_us", t.sum_us);
    to.array(
        "late_us",
        &t.counts.iter().enumerate().collect::<Vec<_>>(),
        |out, (i, c)| {
            let mut b = Obj::new(out);
            match crate::base::lateness::BOUNDS_US.get(*i) {
                Some(le) => b.num("le", *le),
                None => b.str("le", "+Inf"),
            }
            b.num("count", **c);
            b.end();
        },
    );
    to.end();
    o.end();
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A document with every field set, shared by the renderers' tests.
    pub(crate) fn sample() -> StatusDoc {
        StatusDoc {
            version: "0.1.0".into(),
            router_id: "r\"1".into(),
            pid: 42,
            uptime_ms: 12_345,
            maintenance: false,
            instances: vec![InstanceStatus {
                name: "vi1".into(),
                interface: "br-lan".into(),
                vrid: 50,
                version: 3,
                state: "MASTER".into(),
                since_ms: 2500,
                reason: "master down timer expired (3.61 s)".into(),
                master: Some("10.0.0.1".parse().unwrap()),
                base_priority: 100,
                priority_override: Some(200),
                effective_priority: 190,
                trackers: vec![TrackerStatus {
                    kind: "script".into(),
                    name: "chk\nx".into(),
                    weight: -10,
                    state: "down".into(),
                    contribution: -10,
                    fault: false,
                }],
                vips: vec!["10.0.0.254/24".into()],
                vips_installed: true,
                pre_master_running: false,
                advert_int_ms: 1000,
                timer_late_worst_us: 1_500,
                master_advert_int_ms: 1000,
                counters: InstanceCounters {
                    adverts_sent: 7,
                    adverts_received: 1,
                    adverts_discarded: 0,
                    priority_zero_sent: 0,
                    priority_zero_received: 0,
                    transitions: 2,
                    ..Default::default()
                },
                drops: vec![Counter {
                    name: "not-a-peer".into(),
                    value: 4,
                }],
                auth_hmac: Some(AuthStatus {
                    mode: "enforce".into(),
                    active_key: 2,
                    key_ids: vec![1, 2],
                    anti_replay: "time".into(),
                    time_window_s: 5,
                    outcomes: vec![
                        Counter {
                            name: "accepted".into(),
                            value: 9,
                        },
                        Counter {
                            name: "bad_mac".into(),
                            value: 1,
                        },
                    ],
                }),
                families: vec![FamilyStatus {
                    family: "ipv6".into(),
                    state: "BACKUP".into(),
                    master: Some("fe80::1".parse().unwrap()),
                    vips_installed: false,
                }],
            }],
            checks: vec![CheckStatus {
                name: "web".into(),
                kind: "check".into(),
                state: "up".into(),
                last_result: Some("ok".into()),
                latency_us: Some(190),
                last_ms_ago: Some(400),
                weight: Some(12),
            }],
            virtual_servers: vec![VirtualServerStatus {
                name: "vs1".into(),
                service: "10.0.0.254:80/tcp".into(),
                up: Some(true),
                real_servers: vec![RealServerStatus {
                    address: "10.0.1.1:80".into(),
                    weight: 1,
                    up: Some(true),
                    in_kernel: true,
                }],
            }],
            drops: vec![Counter {
                name: "bad_ttl".into(),
                value: 3,
            }],
            control: ControlStats::default(),
            timers: {
                let mut h = crate::base::lateness::Histogram::default();
                h.record(core::time::Duration::from_micros(40));
                h.record(core::time::Duration::from_micros(1_500));
                h
            },
        }
    }

    #[test]
    fn renders_valid_json_with_the_documented_fields() {
        let text = render(&sample());
        let v: serde_json::Value = serde_json::from_str(&text).expect(&text);
        assert_eq!(v["router_id"], "r\"1");
        let i = &v["instances"][0];
        assert_eq!(i["name"], "vi1");
        assert_eq!(i["state"], "MASTER");
        assert_eq!(i["master"], "10.0.0.1");
        assert_eq!(i["priority_override"], 200);
        assert_eq!(i["effective_priority"], 190);
        assert_eq!(i["trackers"][0]["name"], "chk\nx");
        assert_eq!(i["trackers"][0]["contribution"], -10);
        assert_eq!(i["counters"]["adverts_sent"], 7);
        assert_eq!(i["vips"][0], "10.0.0.254/24");
        assert_eq!(v["checks"][0]["latency_us"], 190);
        assert_eq!(v["checks"][0]["weight"], 12);
        assert_eq!(v["virtual_servers"][0]["real_servers"][0]["weight"], 1);
        assert_eq!(v["drops"]["bad_ttl"], 3);
        assert_eq!(i["timer_late_worst_us"], 1_500);
        assert_eq!(v["timers"]["fired"], 2);
        assert_eq!(v["timers"]["late_worst_us"], 1_500);
        assert_eq!(v["timers"]["late_us"][0]["le"], 100);
        assert_eq!(v["timers"]["late_us"][0]["count"], 1);
        assert_eq!(
            v["timers"]["late_us"][2]["count"], 1,
            "1.5 ms is in the 5 ms bucket"
        );
        assert_eq!(v["timers"]["late_us"][8]["le"], "+Inf");
        assert_eq!(v["instances"][0]["drops"]["not-a-peer"], 4);
        assert_eq!(v["control"]["refused_not_root"], 0);
        assert_eq!(i["families"][0]["family"], "ipv6");
        assert_eq!(i["families"][0]["state"], "BACKUP");
        assert_eq!(i["families"][0]["master"], "fe80::1");
        assert_eq!(i["families"][0]["vips_installed"], false);
        assert_eq!(i["auth_hmac"]["mode"], "enforce");
        assert_eq!(i["auth_hmac"]["key_ids"][1], 2);
        assert_eq!(i["auth_hmac"]["outcomes"]["bad_mac"], 1);
    }

    #[test]
    fn absent_values_are_null_and_control_chars_escaped() {
        let mut d = sample();
        d.instances[0].master = None;
        d.instances[0].priority_override = None;
        d.instances[0].name = "a\u{1}b".into();
        let text = render(&d);
        assert!(text.contains("\"master\":null"));
        assert!(text.contains("a\\u0001b"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["instances"][0]["priority_override"].is_null());
    }
}
