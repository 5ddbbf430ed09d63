//! The effective configuration in UCI syntax, every default filled in (`minivrrp check`).
//!
//! Options come out in schema-table order and are quoted as `uci export` quotes them, so the
//! output is itself a valid config that loads to the same [`Config`] (tested).

use std::fmt::Write as _;
use std::net::IpAddr;

use super::model::*;
use super::schema::{format_duration, SectionSpec, SCHEMA};
use super::uci::quote;

fn weight_suffix(name: &str, w: i32) -> String {
    format!("{name} weight {w}")
}

fn opt_str(v: &Option<String>) -> Vec<String> {
    v.iter().cloned().collect()
}

fn one(v: impl ToString) -> Vec<String> {
    vec![v.to_string()]
}

fn bool_val(b: bool) -> Vec<String> {
    one(if b { "1" } else { "0" })
}

fn host_port(a: IpAddr, p: Option<u16>) -> String {
    match (a, p) {
        (_, None) => a.to_string(),
        (IpAddr::V4(_), Some(p)) => format!("{a}:{p}"),
        (IpAddr::V6(_), Some(p)) => format!("[{a}]:{p}"),
    }
}

fn notify_values(n: &Notify, opt: &str) -> Option<Vec<String>> {
    Some(match opt {
        "notify_master" => opt_str(&n.master),
        "notify_backup" => opt_str(&n.backup),
        "notify_fault" => opt_str(&n.fault),
        "notify_stop" => opt_str(&n.stop),
        "notify" => opt_str(&n.any),
        "master_service" => n.master_services.clone(),
        "backup_service" => n.backup_services.clone(),
        "master_interface" => n.master_interfaces.clone(),
        _ => return None,
    })
}

fn globals_values(g: &Globals, opt: &str) -> Vec<String> {
    match opt {
        "enabled" => bool_val(g.enabled),
        "router_id" => one(&g.router_id),
        "log_level" => one(g.log_level.as_str()),
        "log_suppress" => one(format_duration(g.log_suppress)),
        "notify_timeout" => one(format_duration(g.notify_timeout)),
        "notify_max_running" => one(g.notify_max_running),
        "script_user" => g.script_user.iter().cloned().collect(),
        "enable_script_security" => bool_val(g.enable_script_security),
        "notify_pre_master" => opt_str(&g.notify_pre_master),
        "pre_master_timeout" => one(format_duration(g.pre_master_timeout)),
        "startup_delay" => one(format_duration(g.startup_delay)),
        "conntrackd_config" => one(&g.conntrackd_config),
        "notification_email" => g.notification_email.clone(),
        "notification_email_from" => one(&g.notification_email_from),
        "smtp_server" => g
            .smtp_server
            .iter()
            .map(|a| host_port(a.ip(), Some(a.port())))
            .collect(),
        "smtp_connect_timeout" => one(format_duration(g.smtp_connect_timeout)),
        "smtp_alert" => bool_val(g.smtp_alert),
        "sched_policy" => one(match g.sched_policy {
            crate::config::model::SchedPolicy::RoundRobin => "rr",
            crate::config::model::SchedPolicy::Fifo => "fifo",
            crate::config::model::SchedPolicy::Other => "other",
        }
        .to_string()),
        "sched_priority" => one(g.sched_priority.to_string()),
        "lock_memory" => bool_val(g.lock_memory),
        "oom_score_adj" => one(g.oom_score_adj.to_string()),
        _ => Vec::new(),
    }
}

fn instance_values(c: &Config, i: &Instance, opt: &str) -> Vec<String> {
    if let Some(v) = notify_values(&i.notify, opt) {
        return v;
    }
    match opt {
        "interface" => one(&i.interface),
        "vrid" => one(i.vrid),
        "priority" => one(i.priority),
        "version" => one(match i.version {
            VrrpVersion::V2 => "2",
            VrrpVersion::V3 => "3",
        }),
        "advert_int" => one(format_duration(i.advert_int)),
        "preempt" => bool_val(i.preempt),
        "smtp_alert" => bool_val(i.smtp_alert),
        "notify_pre_master" => opt_str(&i.notify_pre_master),
        "conntrackd" => bool_val(i.conntrackd.is_some()),
        "pre_master_timeout" => one(format_duration(i.pre_master_timeout)),
        "preempt_delay" => one(format_duration(i.preempt_delay)),
        "link_down_delay" => one(format_duration(i.link_down_delay)),
        "link_up_delay" => one(format_duration(i.link_up_delay)),
        "state" => one(match i.initial_state {
            InitialState::Master => "MASTER",
            InitialState::Backup => "BACKUP",
        }),
        "auth_type" => one(match i.auth {
            Auth::None => "none",
            Auth::Pass(_) => "pass",
        }),
        "auth_pass" => match &i.auth {
            Auth::Pass(p) => one(p),
            Auth::None => Vec::new(),
        },
        // Keys are never printed (keepalived masks its passwords the same way): a key read
        // from a file shows the path, an inline one `***`, which does not load again.
        "auth_hmac_key" => i
            .auth_hmac
            .iter()
            .flat_map(|a| a.keys.iter())
            .map(
                |k| match i.auth_hmac_files.iter().find(|(id, _)| *id == k.id()) {
                    Some((id, path)) => format!("{id} file:{path}"),
                    None => format!("{} ***", k.id()),
                },
            )
            .collect(),
        "auth_hmac_active_key" => i
            .auth_hmac
            .iter()
            .map(|a| a.active_key.to_string())
            .collect(),
        "auth_hmac_mode" => i
            .auth_hmac
            .iter()
            .map(|a| a.mode.as_str().to_string())
            .collect(),
        "auth_hmac_anti_replay" => i
            .auth_hmac
            .iter()
            .map(|a| a.anti_replay.as_str().to_string())
            .collect(),
        "auth_hmac_time_window" => i
            .auth_hmac
            .iter()
            .map(|a| a.time_window.to_string())
            .collect(),
        "vip" | "vip_excluded" => i
            .vips
            .iter()
            .filter(|v| v.excluded == (opt == "vip_excluded"))
            .map(|v| {
                let mut s = format!("{}/{}", v.addr, v.prefix_len);
                if let Some(d) = &v.dev {
                    s.push_str(&format!(" dev {d}"));
                }
                if let Some(l) = &v.label {
                    s.push_str(&format!(" label {l}"));
                }
                if let Some((name, _)) = VIP_SCOPES.iter().find(|(_, n)| *n == v.scope && *n != 0) {
                    s.push_str(&format!(" scope {name}"));
                }
                s
            })
            .collect(),
        "route" => i.routes.iter().map(|r| r.to_string()).collect(),
        "backup_route" => i.backup_routes.iter().map(|r| r.to_string()).collect(),
        "rule" => i.rules.iter().map(|r| r.to_string()).collect(),
        "backup_rule" => i.backup_rules.iter().map(|r| r.to_string()).collect(),
        "unicast_src" => i.unicast_src.iter().map(|a| a.to_string()).collect(),
        "unicast_peer" => i.unicast_peers.iter().map(|a| a.to_string()).collect(),
        "track_script" => i
            .track_scripts
            .iter()
            .map(|t| weight_suffix(&c.scripts[t.script].name, t.weight))
            .collect(),
        "track_interface" => i
            .track_interfaces
            .iter()
            .map(|t| weight_suffix(&t.name, t.weight))
            .collect(),
        "track_file" => i
            .track_files
            .iter()
            .map(|t| weight_suffix(&t.path, t.weight))
            .collect(),
        "track_check" => i
            .track_checks
            .iter()
            .map(|t| weight_suffix(&c.checks[t.check].name, t.weight))
            .collect(),
        "use_vmac" => bool_val(i.use_vmac),
        "vmac_name" => one(&i.vmac_name),
        "garp_repeat" => one(i.garp_repeat),
        "garp_delay" => one(format_duration(i.garp_delay)),
        "garp_refresh" => one(i.garp_refresh.map_or("0".into(), format_duration)),
        "vip_lifetime" => one(i.vip_lifetime),
        "ra" => bool_val(i.ra.is_some()),
        _ if opt.starts_with("ra_") => i.ra.as_ref().map_or_else(Vec::new, |r| ra_values(r, opt)),
        "v3_checksum" => one(match i.v3_checksum {
            V3Checksum::Pseudo => "pseudo",
            V3Checksum::Rfc9568 => "rfc9568",
        }),
        _ => Vec::new(),
    }
}

fn ra_values(r: &RaConfig, opt: &str) -> Vec<String> {
    match opt {
        "ra_prefix" => r.prefixes.iter().map(|p| format!("{p}/64")).collect(),
        "ra_interval" => one(format_duration(r.interval)),
        "ra_lifetime" => one(r.router_lifetime),
        "ra_valid_lifetime" => one(r.valid_lifetime),
        "ra_preferred_lifetime" => one(r.preferred_lifetime),
        "ra_managed" => bool_val(r.managed),
        "ra_other" => bool_val(r.other),
        _ => Vec::new(),
    }
}

fn script_values(s: &Script, opt: &str) -> Vec<String> {
    match opt {
        "command" => one(&s.command),
        "interval" => one(format_duration(s.interval)),
        "timeout" => one(format_duration(s.timeout)),
        "weight" => one(s.weight),
        "fall" => one(s.fall),
        "rise" => one(s.rise),
        "user" => opt_str(&s.user),
        _ => Vec::new(),
    }
}

fn check_values(k: &Check, opt: &str) -> Vec<String> {
    match opt {
        "type" => one(k.kind.as_str()),
        "address" => k.address.iter().map(|a| a.to_string()).collect(),
        "port" => k.port.iter().map(|p| p.to_string()).collect(),
        "path" => one(&k.path),
        "host" => opt_str(&k.host),
        "status" => k
            .status
            .iter()
            .map(|r| {
                if r.lo == r.hi {
                    r.lo.to_string()
                } else {
                    format!("{}-{}", r.lo, r.hi)
                }
            })
            .collect(),
        "expect" => opt_str(&k.expect),
        "max_response" => one(k.max_response),
        "connect_timeout" => one(format_duration(k.connect_timeout)),
        "retry" => one(k.retry),
        "delay_before_retry" => one(format_duration(k.delay_before_retry)),
        "interval" => one(format_duration(k.interval)),
        // The script options only where they apply (elsewhere they are errors).
        "command" => opt_str(&k.command),
        "timeout" if k.kind == CheckKind::Script => one(format_duration(k.timeout)),
        "dynamic" if k.kind == CheckKind::Script => bool_val(k.dynamic),
        "user" => opt_str(&k.user),
        "weight" => one(k.weight),
        "fall" => one(k.fall),
        "rise" => one(k.rise),
        _ => Vec::new(),
    }
}

fn group_values(c: &Config, g: &SyncGroup, opt: &str) -> Vec<String> {
    if let Some(v) = notify_values(&g.notify, opt) {
        return v;
    }
    match opt {
        "member" => g
            .members
            .iter()
            .map(|m| c.instances[*m].name.clone())
            .collect(),
        // Weight 0 always (fault only): the bare name says it.
        "track_script" => g
            .track_scripts
            .iter()
            .map(|t| c.scripts[t.script].name.clone())
            .collect(),
        "track_interface" => g.track_interfaces.iter().map(|t| t.name.clone()).collect(),
        "track_file" => g.track_files.iter().map(|t| t.path.clone()).collect(),
        "track_check" => g
            .track_checks
            .iter()
            .map(|t| c.checks[t.check].name.clone())
            .collect(),
        _ => Vec::new(),
    }
}

fn vs_values(c: &Config, v: &VirtualServer, opt: &str) -> Vec<String> {
    let (addr, port, proto, mark) = match v.service {
        Service::Addr {
            addr,
            port,
            protocol,
        } => (Some(addr), Some(port), Some(protocol), None),
        Service::Fwmark { mark, .. } => (None, None, None, Some(mark)),
    };
    match opt {
        "address" => addr.iter().map(|a| a.to_string()).collect(),
        "port" => port.iter().map(|p| p.to_string()).collect(),
        "protocol" => proto.iter().map(|p| p.word().to_string()).collect(),
        "fwmark" => mark.iter().map(|m| m.to_string()).collect(),
        "scheduler" => one(v.scheduler.word()),
        "forwarding" => one(v.forwarding.word()),
        "persistence_timeout" => one(v.persistence_timeout.map_or(0, |d| d.as_secs())),
        "persistence_netmask" => v
            .persistence_netmask
            .iter()
            .map(|n| n.to_string())
            .collect(),
        "quorum" => one(v.quorum),
        "hysteresis" => one(v.hysteresis),
        "sorry_server" => v
            .sorry_server
            .iter()
            .map(|(a, p)| host_port(*a, *p))
            .collect(),
        "check" => v.check.iter().map(|i| c.checks[*i].name.clone()).collect(),
        "cleanup" => bool_val(v.cleanup),
        "quorum_up" => opt_str(&v.quorum_up),
        "quorum_down" => opt_str(&v.quorum_down),
        _ => Vec::new(),
    }
}

fn rs_values(c: &Config, v: &VirtualServer, r: &RealServer, opt: &str) -> Vec<String> {
    match opt {
        "virtual_server" => one(&v.name),
        "address" => one(r.address),
        // A fwmark service's servers without a port keep none (port 0 is "any").
        "port" => (r.port != 0)
            .then(|| r.port.to_string())
            .into_iter()
            .collect(),
        "weight" => one(r.weight),
        "check" => r.check.iter().map(|i| c.checks[*i].name.clone()).collect(),
        "inhibit_on_failure" => bool_val(r.inhibit_on_failure),
        "notify_up" => opt_str(&r.notify_up),
        "notify_down" => opt_str(&r.notify_down),
        "forwarding" => one(r.forwarding.word()),
        _ => Vec::new(),
    }
}

fn section(
    out: &mut String,
    spec: &SectionSpec,
    name: Option<&str>,
    values: &dyn Fn(&str) -> Vec<String>,
) {
    match name {
        Some(n) => {
            let _ = writeln!(out, "\nconfig {} {}", spec.stype, quote(n));
        }
        None => {
            let _ = writeln!(out, "\nconfig {}", spec.stype);
        }
    }
    for o in spec.options {
        let keyword = if o.list { "list" } else { "option" };
        for v in values(o.name) {
            let _ = writeln!(out, "\t{keyword} {} {}", o.name, quote(&v));
        }
    }
}

impl Config {
    /// The effective configuration as a UCI file: every section, every option with its
    /// default filled in, in schema order.
    pub fn to_uci(&self) -> String {
        let mut out = String::new();
        for spec in SCHEMA {
            match spec.stype {
                "globals" => section(&mut out, spec, Some("globals"), &|o| {
                    globals_values(&self.globals, o)
                }),
                "instance" => {
                    for i in &self.instances {
                        let name = (!i.anonymous).then_some(i.name.as_str());
                        section(&mut out, spec, name, &|o| instance_values(self, i, o));
                    }
                }
                "script" => {
                    for s in &self.scripts {
                        section(&mut out, spec, Some(&s.name), &|o| script_values(s, o));
                    }
                }
                "check" => {
                    for k in &self.checks {
                        section(&mut out, spec, Some(&k.name), &|o| check_values(k, o));
                    }
                }
                "sync_group" => {
                    for g in &self.sync_groups {
                        let name = (!g.anonymous).then_some(g.name.as_str());
                        section(&mut out, spec, name, &|o| group_values(self, g, o));
                    }
                }
                "virtual_server" => {
                    for v in &self.virtual_servers {
                        section(&mut out, spec, Some(&v.name), &|o| vs_values(self, v, o));
                    }
                }
                "real_server" => {
                    for v in &self.virtual_servers {
                        for r in &v.real_servers {
                            let name = (!r.anonymous).then_some(r.name.as_str());
                            section(&mut out, spec, name, &|o| rs_values(self, v, r, o));
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }
}
