//! Validation: the generic UCI tree in, the typed [`Config`] or every error out.
//!
//! Pass 1 is schema-driven and knows nothing about VRRP: unknown sections/options, `list` vs
//! `option`, each value parsed by its [`Kind`], required options. Pass 2 builds the typed model
//! section type by section type and checks what spans options and sections: references,
//! address families, duplicate VRIDs, version-specific rules and capacities.

use core::time::Duration;
use std::net::IpAddr;

use super::error::ConfigError;
use super::limits::*;
use super::model::*;
use super::schema::{self, DefaultValue as Dflt, Kind, SectionSpec, Val};
use super::uci::{Section, UciFile};

struct Errors<'f> {
    file: &'f str,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    fn at(&mut self, line: usize, path: String, message: String) {
        self.list.push(ConfigError {
            file: self.file.to_string(),
            line,
            col: None,
            path: Some(path),
            message,
        });
    }
}

/// The schema's default of `opt`, parsed like a configured value.
fn schema_default(spec: &SectionSpec, opt: &str) -> Option<Val> {
    let o = spec.option(opt)?;
    match o.default {
        Dflt::Value(d) => o.kind.parse(d).ok(),
        _ => None,
    }
}

/// A section with its values parsed through the schema.
struct Sec<'a> {
    raw: &'a Section,
    spec: &'static SectionSpec,
    name: String,
    /// Successfully parsed values per option, with their lines.
    vals: Vec<(&'static str, Vec<(Val, usize)>)>,
    /// Options that were present but invalid (already reported): cross-checks skip them.
    bad: Vec<&'static str>,
}

impl Sec<'_> {
    fn path(&self, opt: &str) -> String {
        format!("{}.{opt}", self.name)
    }

    fn line(&self, opt: &str) -> usize {
        self.raw.get(opt).map_or(self.raw.line, |o| o.line)
    }

    fn configured(&self, opt: &str) -> Option<&[(Val, usize)]> {
        self.vals
            .iter()
            .find(|(n, _)| *n == opt)
            .map(|(_, v)| v.as_slice())
    }

    fn is_set(&self, opt: &str) -> bool {
        self.raw.get(opt).is_some()
    }

    fn is_bad(&self, opt: &str) -> bool {
        self.bad.contains(&opt)
    }

    /// The configured value, else the schema default (`None` if neither or if invalid).
    fn val(&self, opt: &str) -> Option<Val> {
        if let Some(v) = self.configured(opt).and_then(|v| v.first()) {
            return Some(v.0.clone());
        }
        if self.is_bad(opt) {
            return None;
        }
        schema_default(self.spec, opt)
    }

    /// For an option with a schema default: the configured value, else the default, also
    /// when the configured one was bad (that is reported already; the default stands in so
    /// the remaining checks can run). The defaults come from the schema table only.
    fn defaulted(&self, opt: &str) -> Val {
        let configured = self.configured(opt).and_then(|v| v.first());
        match configured
            .map(|v| v.0.clone())
            .or_else(|| schema_default(self.spec, opt))
        {
            Some(v) => v,
            None => {
                // Only an option name without a `Dflt::Value` gets here: a programming error
                // the unit tests of this file hit on every accessor call site.
                debug_assert!(false, "{}.{opt} has no schema default", self.spec.stype);
                Val::Uint(0)
            }
        }
    }

    fn d_uint(&self, opt: &str) -> u64 {
        match self.defaulted(opt) {
            Val::Uint(v) => v,
            _ => 0,
        }
    }

    fn d_int(&self, opt: &str) -> i64 {
        match self.defaulted(opt) {
            Val::Int(v) => v,
            _ => 0,
        }
    }

    fn d_secs(&self, opt: &str) -> Duration {
        match self.defaulted(opt) {
            Val::Seconds(d) => d,
            _ => Duration::ZERO,
        }
    }

    fn d_word(&self, opt: &str) -> &'static str {
        match self.defaulted(opt) {
            Val::Enum(w) => w,
            _ => "",
        }
    }

    fn d_string(&self, opt: &str) -> String {
        match self.defaulted(opt) {
            Val::Str(s) => s,
            _ => String::new(),
        }
    }

    fn d_bool(&self, opt: &str) -> bool {
        matches!(self.defaulted(opt), Val::Bool(true))
    }

    /// All values of a list (configured, else the default as a one-item list).
    fn vals(&self, opt: &str) -> Vec<(Val, usize)> {
        if let Some(v) = self.configured(opt) {
            return v.to_vec();
        }
        self.val(opt)
            .map(|v| vec![(v, self.raw.line)])
            .unwrap_or_default()
    }

    fn uint(&self, opt: &str) -> Option<u64> {
        match self.val(opt) {
            Some(Val::Uint(v)) => Some(v),
            _ => None,
        }
    }

    fn secs(&self, opt: &str) -> Option<Duration> {
        match self.val(opt) {
            Some(Val::Seconds(d)) => Some(d),
            _ => None,
        }
    }

    fn string(&self, opt: &str) -> Option<String> {
        match self.val(opt) {
            Some(Val::Str(s)) | Some(Val::Ref(s)) => Some(s),
            _ => None,
        }
    }

    fn word(&self, opt: &str) -> Option<&'static str> {
        match self.val(opt) {
            Some(Val::Enum(w)) => Some(w),
            _ => None,
        }
    }

    fn ip(&self, opt: &str) -> Option<IpAddr> {
        match self.val(opt) {
            Some(Val::Ip(a)) => Some(a),
            _ => None,
        }
    }
}

/// Pass 1 for one section: every option known, list/option form right, every value valid,
/// required options present.
fn parse_section<'a>(raw: &'a Section, spec: &'static SectionSpec, errs: &mut Errors) -> Sec<'a> {
    let mut sec = Sec {
        raw,
        spec,
        name: raw.display_name(),
        vals: Vec::new(),
        bad: Vec::new(),
    };
    if let Some(fixed) = spec.fixed_name {
        if raw.name.as_deref() != Some(fixed) {
            errs.at(
                raw.line,
                sec.name.clone(),
                format!(
                    "the {} section must be named '{fixed}' (config {} '{fixed}')",
                    spec.stype, spec.stype
                ),
            );
        }
    } else if spec.needs_name && raw.name.is_none() {
        errs.at(
            raw.line,
            sec.name.clone(),
            format!(
                "a {} section needs a name so it can be referred to (config {} 'NAME')",
                spec.stype, spec.stype
            ),
        );
    }
    for o in &raw.options {
        let Some(ospec) = spec.option(&o.name) else {
            if let Some(why) = schema::unsupported(spec.stype, &o.name) {
                errs.at(o.line, sec.path(&o.name), why.to_string());
                continue;
            }
            let known: Vec<&str> = spec.options.iter().map(|s| s.name).collect();
            errs.at(
                o.line,
                sec.path(&o.name),
                format!(
                    "unknown option for section type '{}' ({})",
                    spec.stype,
                    schema::suggest(&o.name, &known)
                ),
            );
            continue;
        };
        if !ospec.list && matches!(o.value, super::uci::Value::List(_)) {
            errs.at(
                o.line,
                sec.path(&o.name),
                format!(
                    "takes one value: write 'option {}', not 'list {}'",
                    o.name, o.name
                ),
            );
            sec.bad.push(ospec.name);
            continue;
        }
        let mut parsed = Vec::new();
        for (text, line) in o.values() {
            match ospec.kind.parse(text) {
                Ok(v) => parsed.push((v, line)),
                Err(m) => {
                    errs.at(line, sec.path(&o.name), m);
                    if !sec.bad.contains(&ospec.name) {
                        sec.bad.push(ospec.name);
                    }
                }
            }
        }
        if !parsed.is_empty() {
            sec.vals.push((ospec.name, parsed));
        }
    }
    for ospec in spec.options {
        if ospec.default == Dflt::Required && !sec.is_set(ospec.name) {
            errs.at(
                raw.line,
                sec.path(ospec.name),
                "required option is missing".to_string(),
            );
        }
    }
    sec
}

/// Validates a parsed UCI file. `file` only names the file in messages.
pub fn validate(file: &str, uci: &UciFile) -> Result<Config, Vec<ConfigError>> {
    let mut errs = Errors {
        file,
        list: Vec::new(),
    };

    // Pass 1.
    let mut by_type = parse_sections(uci, &mut errs);
    let mut take = |t: &str| {
        by_type
            .iter_mut()
            .find(|(k, _)| *k == t)
            .map(|(_, v)| core::mem::take(v))
            .unwrap_or_default()
    };
    let globals_secs = take("globals");
    let script_secs = take("script");
    let check_secs = take("check");
    let instance_secs = take("instance");
    let group_secs = take("sync_group");
    let vs_secs = take("virtual_server");
    let rs_secs = take("real_server");

    // Pass 2.
    check_capacities(
        &[
            (&instance_secs, MAX_INSTANCES, "MAX_INSTANCES"),
            (&script_secs, MAX_SCRIPTS, "MAX_SCRIPTS"),
            (&check_secs, MAX_CHECKS, "MAX_CHECKS"),
            (&group_secs, MAX_SYNC_GROUPS, "MAX_SYNC_GROUPS"),
            (&vs_secs, MAX_VIRTUAL_SERVERS, "MAX_VIRTUAL_SERVERS"),
            (&rs_secs, MAX_REAL_SERVERS, "MAX_REAL_SERVERS"),
        ],
        &mut errs,
    );
    let resolve = |names: &[String], want: &str, name: &str| resolve_name(uci, names, want, name);

    let globals = build_globals(&globals_secs, &mut errs);
    let scripts: Vec<Script> = script_secs
        .iter()
        .map(|s| build_script(s, &mut errs))
        .collect();
    let script_names: Vec<String> = scripts.iter().map(|s| s.name.clone()).collect();
    let checks: Vec<Check> = check_secs
        .iter()
        .map(|s| build_check(s, &mut errs))
        .collect();
    let check_names: Vec<String> = checks.iter().map(|c| c.name.clone()).collect();

    let mut instances = Vec::new();
    for s in &instance_secs {
        instances.push(build_instance(
            s,
            &scripts,
            &checks,
            &|kind, name| match kind {
                "script" => resolve(&script_names, "script", name),
                _ => resolve(&check_names, "check", name),
            },
            &mut errs,
        ));
        if let Some(i) = instances.last_mut() {
            // An instance without its own `smtp_alert` follows the global one (keepalived).
            i.smtp_alert = match s.val("smtp_alert") {
                Some(Val::Bool(b)) => b,
                _ => globals.smtp_alert,
            };
            // The pre-master hook and its timeout, the global ones when not set; with
            // `conntrackd` the hook is conntrackd's commit (Instance::pre_master_command).
            if i.conntrackd.is_some() {
                i.conntrackd = Some(globals.conntrackd_config.clone());
                if s.val("notify_pre_master").is_some() {
                    errs.at(
                        s.line("notify_pre_master"),
                        s.path("notify_pre_master"),
                        "conntrackd is set: its commit is the pre-master hook; run other work in notify_master".into(),
                    );
                }
            } else if s.val("notify_pre_master").is_none() {
                i.notify_pre_master = globals.notify_pre_master.clone();
            }
            if s.val("pre_master_timeout").is_none() {
                i.pre_master_timeout = globals.pre_master_timeout;
            }
        }
    }
    check_vrid_uniqueness(&instance_secs, &instances, &mut errs);
    let mut sync_groups = build_sync_groups(&group_secs, &mut instances, &resolve, &mut errs);
    build_group_trackers(
        &group_secs,
        &mut sync_groups,
        &scripts,
        &checks,
        &|kind, name| match kind {
            "script" => resolve(&script_names, "script", name),
            _ => resolve(&check_names, "check", name),
        },
        &mut errs,
    );

    let mut virtual_servers: Vec<VirtualServer> = vs_secs
        .iter()
        .map(|s| build_virtual_server(s, &check_names, &resolve, &mut errs))
        .collect();
    check_duplicate_services(&vs_secs, &virtual_servers, &mut errs);
    attach_real_servers(&rs_secs, &mut virtual_servers, &checks, &resolve, &mut errs);
    check_fwmark_families(&vs_secs, &virtual_servers, &mut errs);
    check_real_server_ports(&vs_secs, &virtual_servers, &checks, &mut errs);
    set_fwmark_families(&mut virtual_servers);

    if !errs.list.is_empty() {
        // File order reads best; the sort is stable, so one line's errors keep their order.
        errs.list.sort_by_key(|e| e.line);
        return Err(errs.list);
    }
    // Not `into_iter().map(Arc::new).collect()`: that reuses the instances' allocation in
    // place (560 bytes a slot) for a vector of pointers, keeping all of it for the daemon's life.
    let mut shared = Vec::with_capacity(instances.len());
    for i in instances {
        shared.push(std::sync::Arc::new(i));
    }
    Ok(Config {
        globals,
        instances: shared,
        scripts,
        checks,
        sync_groups,
        virtual_servers,
    })
}

/// Pass 1 over every section: sections grouped by type, in file order. (Plain vectors:
/// std's HashMap would seed its hasher from getrandom and add code for nothing at this size.)
fn parse_sections<'a>(uci: &'a UciFile, errs: &mut Errors) -> Vec<(&'static str, Vec<Sec<'a>>)> {
    let mut by_type: Vec<(&'static str, Vec<Sec>)> = Vec::new();
    for raw in &uci.sections {
        match schema::section(&raw.stype) {
            Some(spec) => {
                let sec = parse_section(raw, spec, errs);
                match by_type.iter_mut().find(|(t, _)| *t == spec.stype) {
                    Some((_, v)) => v.push(sec),
                    None => by_type.push((spec.stype, vec![sec])),
                }
            }
            None => {
                let known: Vec<&str> = schema::SCHEMA.iter().map(|s| s.stype).collect();
                errs.at(
                    raw.line,
                    raw.display_name(),
                    format!(
                        "unknown section type '{}' ({})",
                        raw.stype,
                        schema::suggest(&raw.stype, &known)
                    ),
                );
            }
        }
    }
    by_type
}

/// Capacities (`config::limits`): reported at the first section over the limit.
fn check_capacities(kinds: &[(&Vec<Sec>, usize, &str)], errs: &mut Errors) {
    for &(secs, max, cname) in kinds {
        if let Some(s) = secs.get(max) {
            errs.at(
                s.raw.line,
                s.name.clone(),
                format!(
                    "too many {} sections: {} (at most {max}, {cname})",
                    s.spec.stype,
                    secs.len()
                ),
            );
        }
    }
}

/// The index of section `name` among `names` (of type `want`); the error says when the name
/// exists as a section of another type ("is a check section, not a script").
fn resolve_name(uci: &UciFile, names: &[String], want: &str, name: &str) -> Result<usize, String> {
    if let Some(i) = names.iter().position(|n| n == name) {
        return Ok(i);
    }
    let other = uci
        .sections
        .iter()
        .find(|s| s.name.as_deref() == Some(name))
        .map(|s| &s.stype);
    Err(match other {
        Some(t) => format!("'{name}' is a {t} section, not a {want}"),
        None => format!("no {want} section named '{name}'"),
    })
}

/// Sync groups: members resolve to instances, an instance is in at most one group, at most
/// `MAX_SYNC_MEMBERS` members. Sets each member's `sync_group`.
fn build_sync_groups(
    group_secs: &[Sec],
    instances: &mut [Instance],
    resolve: &NameResolver,
    errs: &mut Errors,
) -> Vec<SyncGroup> {
    let instance_names: Vec<String> = instances.iter().map(|i| i.name.clone()).collect();
    let mut sync_groups = Vec::new();
    for (gi, s) in group_secs.iter().enumerate() {
        let mut members = Vec::new();
        // Family routers in the group: a dual-stack member brings two.
        let mut routers = 0;
        for (v, line) in s.vals("member") {
            let Val::Ref(name) = v else { continue };
            match resolve(&instance_names, "instance", &name) {
                Ok(i) => {
                    if let Some(other) = instances[i].sync_group {
                        let msg = if other == gi {
                            format!("instance '{name}' is listed twice")
                        } else {
                            format!(
                                "instance '{name}' is already in sync_group '{}'; an instance belongs to at most one group",
                                group_secs[other].name
                            )
                        };
                        errs.at(line, s.path("member"), msg);
                    } else if routers + instances[i].families().len() > MAX_SYNC_MEMBERS {
                        errs.at(
                            line,
                            s.path("member"),
                            if routers == members.len() && !instances[i].dual_stack {
                                format!(
                                    "too many members (at most {MAX_SYNC_MEMBERS}, MAX_SYNC_MEMBERS)"
                                )
                            } else {
                                format!(
                                    "too many members (at most {MAX_SYNC_MEMBERS}, MAX_SYNC_MEMBERS; an instance with IPv4 and IPv6 VIPs counts twice)"
                                )
                            },
                        );
                    } else {
                        routers += instances[i].families().len();
                        instances[i].sync_group = Some(gi);
                        members.push(i);
                    }
                }
                Err(m) => errs.at(line, s.path("member"), m),
            }
        }
        sync_groups.push(SyncGroup {
            name: s.name.clone(),
            anonymous: s.raw.name.is_none(),
            members,
            notify: notify_of(s, errs),
            track_scripts: Vec::new(),
            track_interfaces: Vec::new(),
            track_files: Vec::new(),
            track_checks: Vec::new(),
        });
    }
    sync_groups
}

/// Trackers on a sync group (keepalived `track_script` / `track_interface` / `track_file` in a
/// `vrrp_sync_group`): each one only faults, so every tracker's weight is 0 and a weight
/// written there is an error (a priority change of the whole group has no meaning: each
/// member is elected on its own interface).
fn build_group_trackers(
    group_secs: &[Sec],
    groups: &mut [SyncGroup],
    scripts: &[Script],
    checks: &[Check],
    resolve: &Resolver,
    errs: &mut Errors,
) {
    for (s, g) in group_secs.iter().zip(groups.iter_mut()) {
        for opt in [
            "track_script",
            "track_interface",
            "track_file",
            "track_check",
        ] {
            for (v, line) in s.vals(opt) {
                if let Val::Tracked(name, Some(w)) = v {
                    if w != 0 {
                        errs.at(
                            line,
                            s.path(opt),
                            format!("{name}: a sync group's tracker only faults the group; remove `weight {w}` (or track it on the members)"),
                        );
                    }
                }
            }
        }
        let t = build_trackers(s, scripts, checks, resolve, errs);
        g.track_scripts = t.track_scripts;
        g.track_interfaces = t.track_interfaces;
        g.track_files = t.track_files;
        g.track_checks = t.track_checks;
        for w in g.track_scripts.iter_mut().map(|t| &mut t.weight) {
            *w = 0;
        }
        for w in g.track_interfaces.iter_mut().map(|t| &mut t.weight) {
            *w = 0;
        }
        for w in g.track_files.iter_mut().map(|t| &mut t.weight) {
            *w = 0;
        }
        for w in g.track_checks.iter_mut().map(|t| &mut t.weight) {
            *w = 0;
        }
    }
}

/// Two sections for one kernel service cannot both be honoured (IPVS keys services by
/// protocol/address/port or fwmark).
fn check_duplicate_services(vs_secs: &[Sec], virtual_servers: &[VirtualServer], errs: &mut Errors) {
    for i in 0..virtual_servers.len() {
        let s = &vs_secs[i];
        let opt = if s.val("fwmark").is_some() {
            "fwmark"
        } else {
            "address"
        };
        if s.val(opt).is_none() {
            continue;
        }
        if let Some(j) = (0..i).find(|&j| virtual_servers[j].service == virtual_servers[i].service)
        {
            errs.at(
                s.line(opt),
                s.path(opt),
                format!(
                    "same IPVS service as virtual_server '{}'",
                    virtual_servers[j].name
                ),
            );
        }
    }
}

/// Each real_server section joins its virtual server; one address/port at most once.
fn attach_real_servers(
    rs_secs: &[Sec],
    virtual_servers: &mut [VirtualServer],
    checks: &[Check],
    resolve: &NameResolver,
    errs: &mut Errors,
) {
    let check_names: Vec<String> = checks.iter().map(|c| c.name.clone()).collect();
    let check_names = &check_names[..];
    let vs_names: Vec<String> = virtual_servers.iter().map(|v| v.name.clone()).collect();
    let mut script_checked = 0;
    for s in rs_secs {
        let Some(Val::Ref(vs_name)) = s.val("virtual_server") else {
            continue;
        };
        let vi = match resolve(&vs_names, "virtual_server", &vs_name) {
            Ok(i) => i,
            Err(m) => {
                errs.at(s.line("virtual_server"), s.path("virtual_server"), m);
                continue;
            }
        };
        let Some(rs) = build_real_server(s, &virtual_servers[vi], check_names, resolve, errs)
        else {
            continue;
        };
        if rs
            .check
            .is_some_and(|c| checks[c].kind == CheckKind::Script)
        {
            script_checked += 1;
            if script_checked == MAX_SCRIPT_CHECKED_SERVERS + 1 {
                let line = if s.is_set("check") {
                    s.line("check")
                } else {
                    s.raw.line
                };
                errs.at(
                    line,
                    s.path("check"),
                    format!("more than {MAX_SCRIPT_CHECKED_SERVERS} real servers with a script check (MAX_SCRIPT_CHECKED_SERVERS)"),
                );
            }
        }
        let vs = &mut virtual_servers[vi];
        if vs
            .real_servers
            .iter()
            .any(|r| r.address == rs.address && r.port == rs.port)
        {
            errs.at(
                s.line("address"),
                s.path("address"),
                format!(
                    "{} port {} is already a real server of '{}'",
                    rs.address, rs.port, vs.name
                ),
            );
        } else {
            vs.real_servers.push(rs);
        }
    }
}

/// A fwmark service is one address family in the kernel: its real servers must agree.
fn check_fwmark_families(vs_secs: &[Sec], virtual_servers: &[VirtualServer], errs: &mut Errors) {
    for (vi, vs) in virtual_servers.iter().enumerate() {
        if let Service::Fwmark { .. } = vs.service {
            let fams: Vec<Family> = vs
                .real_servers
                .iter()
                .map(|r| Family::of(&r.address))
                .collect();
            if fams.windows(2).any(|w| w[0] != w[1]) {
                errs.at(
                    vs_secs[vi].raw.line,
                    vs.name.clone(),
                    "real servers of one fwmark service must all be IPv4 or all IPv6".into(),
                );
            }
        }
    }
}

/// A check used by a real server may leave the port to the server; without either (and not
/// ICMP) there is nothing to connect to. (A tracked check's own target was verified by
/// `build_instance`.)
fn check_real_server_ports(
    vs_secs: &[Sec],
    virtual_servers: &[VirtualServer],
    checks: &[Check],
    errs: &mut Errors,
) {
    for (vi, vs) in virtual_servers.iter().enumerate() {
        for (ri, rs) in vs.real_servers.iter().enumerate() {
            let Some(ci) = rs.check else { continue };
            let c = &checks[ci];
            if !matches!(c.kind, CheckKind::Icmp | CheckKind::Script)
                && c.port.is_none()
                && rs.port == 0
            {
                errs.at(
                    vs_secs[vi].raw.line,
                    vs.name.clone(),
                    format!(
                        "real server {} (#{ri}) has no port and check '{}' sets none",
                        rs.address, c.name
                    ),
                );
            }
        }
    }
}

/// A fwmark service takes its family from its real servers (IPv4 when there are none).
fn set_fwmark_families(virtual_servers: &mut [VirtualServer]) {
    for vs in virtual_servers {
        if let Service::Fwmark { mark, .. } = vs.service {
            let family = vs
                .real_servers
                .first()
                .map_or(Family::Ipv4, |r| Family::of(&r.address));
            vs.service = Service::Fwmark { mark, family };
        }
    }
}

fn build_globals(secs: &[Sec], errs: &mut Errors) -> Globals {
    if let Some(second) = secs.get(1) {
        errs.at(
            second.raw.line,
            second.name.clone(),
            "only one globals section is allowed".into(),
        );
    }
    // Without a globals section every option takes its schema default.
    let empty = Section {
        stype: "globals".into(),
        name: Some("globals".into()),
        line: 0,
        index: 0,
        options: Vec::new(),
    };
    let none = Sec {
        raw: &empty,
        spec: schema::globals_spec(),
        name: "globals".into(),
        vals: Vec::new(),
        bad: Vec::new(),
    };
    let s = secs.first().unwrap_or(&none);
    Globals {
        router_id: s.d_string("router_id"),
        log_level: match s.d_word("log_level") {
            "error" => LogLevel::Error,
            "warn" => LogLevel::Warn,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => LogLevel::Info,
        },
        log_suppress: s.d_secs("log_suppress"),
        enabled: s.d_bool("enabled"),
        notify_timeout: s.d_secs("notify_timeout"),
        notify_max_running: s.d_uint("notify_max_running") as u32,
        script_user: s.string("script_user"),
        enable_script_security: s.d_bool("enable_script_security"),
        notify_pre_master: command_of(s, "notify_pre_master", errs),
        pre_master_timeout: s.d_secs("pre_master_timeout"),
        startup_delay: s.d_secs("startup_delay"),
        conntrackd_config: {
            let c = s.d_string("conntrackd_config");
            if c.contains(|ch: char| ch.is_whitespace() || ch == '\'' || ch == '"') {
                errs.at(
                    s.line("conntrackd_config"),
                    s.path("conntrackd_config"),
                    "a path without blanks or quotes".into(),
                );
            }
            c
        },
        notification_email: s
            .vals("notification_email")
            .into_iter()
            .filter_map(|(v, _)| match v {
                Val::Str(m) => Some(m),
                _ => None,
            })
            .collect(),
        notification_email_from: s.d_string("notification_email_from"),
        smtp_server: match s.val("smtp_server") {
            Some(Val::HostPort(a, p)) => Some(core::net::SocketAddr::new(a, p.unwrap_or(25))),
            _ => None,
        },
        smtp_connect_timeout: s.d_secs("smtp_connect_timeout"),
        smtp_alert: s.d_bool("smtp_alert"),
        sched_policy: match s.d_word("sched_policy") {
            "fifo" => SchedPolicy::Fifo,
            "other" => SchedPolicy::Other,
            _ => SchedPolicy::RoundRobin,
        },
        sched_priority: s.d_uint("sched_priority") as u8,
        lock_memory: s.d_bool("lock_memory"),
        oom_score_adj: s.d_int("oom_score_adj") as i32,
    }
}

fn build_script(s: &Sec, errs: &mut Errors) -> Script {
    let interval = s.d_secs("interval");
    Script {
        name: s.name.clone(),
        // Required: absent only in a config already rejected. Split into words, no shell.
        command: command_of(s, "command", errs).unwrap_or_default(),
        interval,
        // Schema: `Derived("interval")`.
        timeout: s.secs("timeout").unwrap_or(interval),
        weight: s.d_int("weight") as i32,
        fall: s.d_uint("fall") as u32,
        rise: s.d_uint("rise") as u32,
        user: s.string("user"),
    }
}

fn build_check(s: &Sec, errs: &mut Errors) -> Check {
    let kind = match s.word("type") {
        Some("http") => CheckKind::Http,
        Some("icmp") => CheckKind::Icmp,
        Some("script") => CheckKind::Script,
        _ => CheckKind::Tcp,
    };
    // The script options mean nothing to a network check, and a script check without a
    // command has nothing to run: both are mistakes worth a line number.
    for o in ["command", "timeout", "dynamic", "user"] {
        if s.is_set(o) && kind != CheckKind::Script {
            errs.at(
                s.line(o),
                s.path(o),
                format!("only for `type script` (this check is {})", kind.as_str()),
            );
        }
    }
    if kind == CheckKind::Script && !s.is_set("command") {
        errs.at(
            s.line("type"),
            s.path("command"),
            "a script check needs `command`".into(),
        );
    }
    let interval = s.d_secs("interval");
    let status = s
        .vals("status")
        .into_iter()
        .filter_map(|(v, _)| match v {
            Val::StatusRange(lo, hi) => Some(StatusRange { lo, hi }),
            _ => None,
        })
        .collect();
    Check {
        name: s.name.clone(),
        kind,
        address: s.ip("address"),
        port: s.uint("port").map(|p| p as u16),
        path: s.d_string("path"),
        host: s.string("host"),
        status,
        expect: s.string("expect"),
        max_response: s.d_uint("max_response") as u32,
        connect_timeout: s.d_secs("connect_timeout"),
        retry: s.d_uint("retry") as u32,
        delay_before_retry: s.d_secs("delay_before_retry"),
        interval,
        command: command_of(s, "command", errs),
        // Schema: `Derived("interval")`.
        timeout: s.secs("timeout").unwrap_or(interval),
        dynamic: s.d_bool("dynamic"),
        user: s.string("user"),
        weight: s.d_int("weight") as i32,
        fall: s.d_uint("fall") as u32,
        rise: s.d_uint("rise") as u32,
    }
}

/// The notify options of an instance or sync group. What the notifier could not run is an
/// error here, never a silently skipped script at the time of a transition: a command line
/// that does not split (open quote), one with more arguments than the notifier carries, and
/// a section name longer than the `NAME=` environment entry of the hotplug hook holds.
fn notify_of(s: &Sec, errs: &mut Errors) -> Notify {
    use crate::check::notify::{MAX_ARGS, MAX_NAME};
    let get = |o: &str| {
        if s.spec.option(o).is_some() {
            s.string(o)
        } else {
            None
        }
    };
    if s.name.len() > MAX_NAME {
        errs.at(
            s.raw.line,
            s.name.clone(),
            format!(
                "name is {} characters; notify commands and the hotplug hook get it as NAME=..., at most {MAX_NAME}",
                s.name.len()
            ),
        );
    }
    for o in [
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
        "notify",
    ] {
        let Some(line) = get(o) else { continue };
        // The generic `notify` gets TYPE NAME STATE PRIORITY appended.
        let room = if o == "notify" {
            MAX_ARGS - 4
        } else {
            MAX_ARGS
        };
        check_command(s, o, &line, room, errs);
    }
    Notify {
        master: get("notify_master"),
        backup: get("notify_backup"),
        fault: get("notify_fault"),
        stop: get("notify_stop"),
        any: get("notify"),
        master_services: role_names(s, "master_service", errs),
        backup_services: role_names(s, "backup_service", errs),
        master_interfaces: role_names(s, "master_interface", errs),
    }
}

/// Most names in one `master_service` / `backup_service` / `master_interface` list: each
/// costs a job per change of role in the instance's notify queue.
pub const MAX_ROLE_NAMES: usize = 8;

/// A list of procd service or netifd interface names. They become a path
/// (`/etc/init.d/NAME`) and a ubus object (`network.interface.NAME`): only letters, digits,
/// `_`, `.` and `-`, not starting with `.` or `-`; each once, one service not in both lists.
fn role_names(s: &Sec, o: &str, errs: &mut Errors) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (v, line) in s.vals(o) {
        let Val::Str(name) = v else { continue };
        let ok = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && !name.starts_with(['.', '-']);
        if !ok {
            errs.at(
                line,
                s.path(o),
                format!("'{name}' is not a service or interface name (letters, digits, _ . -)"),
            );
        } else if out.contains(&name) {
            errs.at(line, s.path(o), format!("'{name}' is listed twice"));
        } else if out.len() == MAX_ROLE_NAMES {
            errs.at(line, s.path(o), format!("at most {MAX_ROLE_NAMES} names"));
        } else if o == "backup_service"
            && s.vals("master_service")
                .iter()
                .any(|(v, _)| *v == Val::Str(name.clone()))
        {
            errs.at(
                line,
                s.path(o),
                format!("'{name}' is also a master_service: it cannot follow both roles"),
            );
        } else {
            out.push(name);
        }
    }
    out
}

/// A command run as configured (nothing appended: real server `notify_up`, virtual server
/// `quorum_up`...), checked the way the notifier splits it.
fn command_of(s: &Sec, o: &str, errs: &mut Errors) -> Option<String> {
    let line = s.string(o)?;
    check_command(s, o, &line, crate::check::notify::MAX_ARGS, errs);
    Some(line)
}

/// Option `o` holds `line`: it must split the way the notifier splits it, into 1..=`room`
/// arguments.
fn check_command(s: &Sec, o: &str, line: &str, room: usize, errs: &mut Errors) {
    match crate::check::notify::split_command(line) {
        None => errs.at(s.line(o), s.path(o), "unbalanced quote".into()),
        Some(v) if v.is_empty() => errs.at(s.line(o), s.path(o), "empty command".into()),
        Some(v) if v.len() > room => errs.at(
            s.line(o),
            s.path(o),
            format!("{} arguments, at most {room}", v.len()),
        ),
        Some(_) => {}
    }
}

/// Finds a section of a type by name in a list of built names: `(names, type, name)`.
type NameResolver<'r> = dyn Fn(&[String], &str, &str) -> Result<usize, String> + 'r;

type Resolver<'r> = dyn Fn(&str, &str) -> Result<usize, String> + 'r;

fn build_instance(
    s: &Sec,
    scripts: &[Script],
    checks: &[Check],
    resolve: &Resolver,
    errs: &mut Errors,
) -> Instance {
    let version = match s.d_word("version") {
        "3" => VrrpVersion::V3,
        _ => VrrpVersion::V2,
    };
    let vrid = s.uint("vrid").unwrap_or(0) as u8;
    let (family, dual_stack, vips) = build_vips(s, version, errs);
    let advert_int = check_advert_int(s, version, errs);
    let auth = build_auth(s, version, errs);
    let (auth_hmac, auth_hmac_files) = build_auth_hmac(s, advert_int, &auth, errs);
    let (unicast_src, unicast_peers) = build_unicast(s, family, errs);
    if dual_stack {
        check_dual_stack(s, errs);
    }
    let routes = build_routes(s, "route", family, errs);
    let backup_routes = build_routes(s, "backup_route", family, errs);
    let rules = build_rules(s, "rule", family, errs);
    let backup_rules = build_rules(s, "backup_rule", family, errs);
    let Trackers {
        track_scripts,
        track_interfaces,
        track_files,
        track_checks,
    } = build_trackers(s, scripts, checks, resolve, errs);

    let vmac_name = s
        .string("vmac_name")
        .unwrap_or_else(|| format!("vrrp.{vrid}"));
    let garp_refresh = Some(s.d_secs("garp_refresh")).filter(|d| !d.is_zero());
    let ra = build_ra(s, &vips, errs);

    Instance {
        name: s.name.clone(),
        anonymous: s.raw.name.is_none(),
        interface: s.string("interface").unwrap_or_default(),
        vrid,
        priority: s.d_uint("priority") as u8,
        version,
        advert_int,
        preempt: s.d_bool("preempt"),
        preempt_delay: s.d_secs("preempt_delay"),
        link_down_delay: s.d_secs("link_down_delay"),
        link_up_delay: s.d_secs("link_up_delay"),
        initial_state: match s.d_word("state") {
            "MASTER" => InitialState::Master,
            _ => InitialState::Backup,
        },
        auth,
        auth_hmac,
        auth_hmac_files,
        family,
        dual_stack,
        vips,
        routes,
        backup_routes,
        rules,
        backup_rules,
        unicast_src,
        unicast_peers,
        track_scripts,
        track_interfaces,
        track_files,
        track_checks,
        use_vmac: s.d_bool("use_vmac"),
        vmac_name,
        garp_repeat: s.d_uint("garp_repeat") as u32,
        garp_delay: s.d_secs("garp_delay"),
        garp_refresh,
        // Schema: `Derived` from the version and interval.
        vip_lifetime: s.uint("vip_lifetime").map_or_else(
            || crate::vrrp::vip_lease::lifetime_for(version, advert_int),
            |v| v as u32,
        ),
        ra,
        v3_checksum: match s.d_word("v3_checksum") {
            "rfc9568" => V3Checksum::Rfc9568,
            _ => V3Checksum::Pseudo,
        },
        notify: notify_of(s, errs),
        notify_pre_master: command_of(s, "notify_pre_master", errs),
        // The file comes from globals (set by the caller).
        conntrackd: s.d_bool("conntrackd").then(String::new),
        // Schema: `Derived` from globals (set by the caller when absent).
        pre_master_timeout: s.secs("pre_master_timeout").unwrap_or_default(),
        smtp_alert: false,
        sync_group: None,
    }
}

/// `ra` and its `ra_*` options (RFC 4861 6.2.1): the RAs come from the first IPv6 VIP, so
/// it must be link-local (RFC 4861 4.2: "Source Address MUST be the link-local address");
/// prefixes are /64s a host can form addresses in (RFC 4862 5.5.3), neither link-local nor
/// multicast; the router lifetime is 0 or MaxRtrAdvInterval..9000; preferred <= valid.
fn build_ra(s: &Sec, vips: &[Vip], errs: &mut Errors) -> Option<RaConfig> {
    if !s.d_bool("ra") {
        for o in [
            "ra_prefix",
            "ra_interval",
            "ra_lifetime",
            "ra_valid_lifetime",
            "ra_preferred_lifetime",
            "ra_managed",
            "ra_other",
        ] {
            if s.is_set(o) {
                errs.at(s.line(o), s.path(o), "needs `option ra '1'`".into());
            }
        }
        return None;
    }
    let first6 = vips.iter().find_map(|v| match v.addr {
        IpAddr::V6(a) => Some(a),
        IpAddr::V4(_) => None,
    });
    match first6 {
        Some(a) if a.is_unicast_link_local() => {}
        Some(a) => errs.at(
            s.line("ra"),
            s.path("ra"),
            format!("RAs are sent from the first IPv6 VIP, which must be link-local (list it first, e.g. 'fe80::1/64'); {a} is not"),
        ),
        None => errs.at(
            s.line("ra"),
            s.path("ra"),
            "needs a link-local IPv6 VIP as the first IPv6 `vip` (the RAs' source address)".into(),
        ),
    }
    let mut prefixes = Vec::new();
    for (v, line) in s.vals("ra_prefix") {
        let Val::IpPrefix(addr, len) = v else {
            continue;
        };
        let IpAddr::V6(p) = addr else {
            errs.at(line, s.path("ra_prefix"), format!("{addr} is not IPv6"));
            continue;
        };
        let bad = if len != Some(64) {
            Some("must be a /64 (SLAAC, RFC 4862 5.5.3)".to_string())
        } else if p.is_multicast() {
            Some("is multicast".into())
        } else if p.is_unicast_link_local() {
            Some("is link-local".into())
        } else if u128::from(p) & u128::from(u64::MAX) != 0 {
            Some(format!(
                "has host bits set (the prefix is {}/64)",
                core::net::Ipv6Addr::from(u128::from(p) & !u128::from(u64::MAX))
            ))
        } else if prefixes.contains(&p) {
            Some("is listed twice".into())
        } else if prefixes.len() == crate::vrrp::ra::MAX_RA_PREFIXES {
            Some(format!(
                "is one more than {} prefixes",
                crate::vrrp::ra::MAX_RA_PREFIXES
            ))
        } else {
            None
        };
        match bad {
            Some(why) => errs.at(
                line,
                s.path("ra_prefix"),
                format!("{p}/{} {why}", len.unwrap_or(128)),
            ),
            None => prefixes.push(p),
        }
    }
    let interval = s.d_secs("ra_interval");
    let max_s = interval.as_secs();
    // Schema: `Derived` 3 x MaxRtrAdvInterval, capped at 9000 (RFC 4861 6.2.1).
    let router_lifetime = s.uint("ra_lifetime").unwrap_or((3 * max_s).min(9_000));
    if router_lifetime != 0 && router_lifetime < max_s + u64::from(interval.subsec_millis() > 0) {
        errs.at(
            s.line("ra_lifetime"),
            s.path("ra_lifetime"),
            format!(
                "{router_lifetime} is below ra_interval; 0 or ra_interval..9000 (RFC 4861 6.2.1)"
            ),
        );
    }
    let valid = s.d_uint("ra_valid_lifetime") as u32;
    let preferred = s.d_uint("ra_preferred_lifetime") as u32;
    if preferred > valid {
        let o = if s.is_set("ra_preferred_lifetime") {
            "ra_preferred_lifetime"
        } else {
            "ra_valid_lifetime"
        };
        errs.at(
            s.line(o),
            s.path(o),
            format!("ra_preferred_lifetime {preferred} exceeds ra_valid_lifetime {valid} (RFC 4861 6.2.1)"),
        );
    }
    Some(RaConfig {
        prefixes,
        interval,
        router_lifetime: router_lifetime as u16,
        valid_lifetime: valid,
        preferred_lifetime: preferred,
        managed: s.d_bool("ra_managed"),
        other: s.d_bool("ra_other"),
    })
}

/// Routes that follow the instance's state (`route`, `backup_route`): a `default` without
/// `via` takes the instance's family; the same route twice is an error (the second add would
/// replace the first, the first delete remove both).
fn build_routes(s: &Sec, option: &str, family: Family, errs: &mut Errors) -> Vec<Route> {
    let mut routes: Vec<Route> = Vec::new();
    for (v, line) in s.vals(option) {
        let Val::Route(mut r) = v else {
            continue;
        };
        if r.prefix_len == 0 && r.via.is_none() && family == Family::Ipv6 {
            r.dest = IpAddr::from([0u16; 8]);
        }
        let same = |x: &Route| {
            x.dest == r.dest
                && x.prefix_len == r.prefix_len
                && x.table == r.table
                && x.metric == r.metric
        };
        if routes.iter().any(same) {
            errs.at(
                line,
                s.path(option),
                format!(
                    "{}/{} (table {}, metric {}) is listed twice",
                    r.dest, r.prefix_len, r.table, r.metric
                ),
            );
            continue;
        }
        routes.push(r);
    }
    routes
}

/// Policy rules that follow the instance's state (`rule`, `backup_rule`): a rule without
/// `from`, `to`, `inet` or `inet6` takes the instance's family; the same rule twice is an
/// error (the kernel keeps one copy, so the first removal would take the other's too).
fn build_rules(s: &Sec, option: &str, family: Family, errs: &mut Errors) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    for (v, line) in s.vals(option) {
        let Val::Rule(mut r, family_given) = v else {
            continue;
        };
        if !family_given {
            r.family = family;
        }
        if rules.contains(&r) {
            errs.at(line, s.path(option), format!("'{r}' is listed twice"));
            continue;
        }
        rules.push(r);
    }
    rules
}

/// What an instance with VIPs of both families cannot have: each family's router would
/// need its own value (a unicast source, a macvlan per VMAC), so they are refused for now.
fn check_dual_stack(s: &Sec, errs: &mut Errors) {
    for o in ["unicast_src", "unicast_peer"] {
        if s.is_set(o) {
            errs.at(
                s.line(o),
                s.path(o),
                "not supported on an instance with IPv4 and IPv6 VIPs (use one instance per family in a sync_group)".into(),
            );
        }
    }
    if s.d_bool("use_vmac") {
        errs.at(
            s.line("use_vmac"),
            s.path("use_vmac"),
            "not supported on an instance with IPv4 and IPv6 VIPs (each family needs its own virtual MAC; use one instance per family in a sync_group)".into(),
        );
    }
}

/// VIPs: no duplicates, at most MAX_VIPS; version 2 is IPv4 only. VIPs of both families
/// make a dual-stack instance (`Instance::dual_stack`), VRRPv3 only; its `family` is IPv4.
fn build_vips(s: &Sec, version: VrrpVersion, errs: &mut Errors) -> (Family, bool, Vec<Vip>) {
    let mut families: Vec<Family> = Vec::new();
    let mut vips: Vec<Vip> = Vec::new();
    for (n, (v, line)) in s.vals("vip").into_iter().enumerate() {
        let Val::Vip(addr, prefix, dev, label, scope) = v else {
            continue;
        };
        // The kernel refuses a label that does not start with the interface's name.
        let on = dev
            .as_deref()
            .or(s.string("interface").as_deref())
            .map(str::to_string);
        if let (Some(l), Some(on)) = (&label, &on) {
            if !l.starts_with(on.as_str()) {
                errs.at(
                    line,
                    s.path("vip"),
                    format!("{addr}: label '{l}' must start with the interface name '{on}'"),
                );
            }
        }
        let fam = Family::of(&addr);
        if n == MAX_VIPS {
            errs.at(
                line,
                s.path("vip"),
                format!("more than {MAX_VIPS} VIPs (MAX_VIPS)"),
            );
        }
        if !families.contains(&fam) {
            families.push(fam);
        }
        if vips.iter().any(|x| x.addr == addr) {
            errs.at(line, s.path("vip"), format!("{addr} is listed twice"));
            continue;
        }
        let prefix_len = prefix.unwrap_or(if fam == Family::Ipv4 { 32 } else { 128 });
        vips.push(Vip {
            addr,
            prefix_len,
            dev,
            label,
            scope,
            excluded: false,
        });
    }
    let dual_stack = families.len() == 2;
    let family = if dual_stack {
        Family::Ipv4
    } else {
        families.first().copied().unwrap_or(Family::Ipv4)
    };
    // Not advertised, so neither the families rule nor the advert's address limit applies.
    for (v, line) in s.vals("vip_excluded") {
        let Val::Vip(addr, prefix, dev, label, scope) = v else {
            continue;
        };
        if vips.iter().any(|x| x.addr == addr) {
            errs.at(
                line,
                s.path("vip_excluded"),
                format!("{addr} is listed twice"),
            );
            continue;
        }
        let prefix_len = prefix.unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
        vips.push(Vip {
            addr,
            prefix_len,
            dev,
            label,
            scope,
            excluded: true,
        });
    }
    if dual_stack && version == VrrpVersion::V2 {
        errs.at(
            s.line("version"),
            s.path("version"),
            "VRRP version 2 is IPv4 only (RFC 3768); an instance with IPv4 and IPv6 VIPs runs one VRRPv3 router per family: set version '3'".into(),
        );
    } else if family == Family::Ipv6 && version == VrrpVersion::V2 {
        errs.at(
            s.line("version"),
            s.path("version"),
            "VRRP version 2 is IPv4 only (RFC 3768); set version '3' for IPv6 VIPs".into(),
        );
    }

    (family, dual_stack, vips)
}

/// RFC 3768 5.3.7 (v2: whole seconds in an 8-bit field) / RFC 5798 5.2.7 (v3: 12-bit
/// centiseconds, so at most 40.95 s).
fn check_advert_int(s: &Sec, version: VrrpVersion, errs: &mut Errors) -> Duration {
    let advert_int = s.d_secs("advert_int");
    if !s.is_bad("advert_int") {
        let ms = advert_int.as_millis() as u64;
        let bad = match version {
            VrrpVersion::V2 if ms % 1000 != 0 || ms > 255_000 => {
                Some("version 2 needs whole seconds 1..255")
            }
            VrrpVersion::V3 if ms % 10 != 0 || ms > 40_950 => {
                Some("version 3 needs 0.01..40.95 in steps of 0.01")
            }
            _ => None,
        };
        if let Some(why) = bad {
            errs.at(
                s.line("advert_int"),
                s.path("advert_int"),
                format!("{} s: {why}", schema::format_duration(advert_int)),
            );
        }
    }

    advert_int
}

/// RFC 3768 5.3.6 authentication: `pass` needs a password and version 2; AH is refused.
fn build_auth(s: &Sec, version: VrrpVersion, errs: &mut Errors) -> Auth {
    match (s.word("auth_type"), s.string("auth_pass")) {
        (Some("ah"), _) => {
            errs.at(
                s.line("auth_type"),
                s.path("auth_type"),
                "AH authentication is not supported".into(),
            );
            Auth::None
        }
        (Some("pass"), _) if version == VrrpVersion::V3 => {
            errs.at(
                s.line("auth_type"),
                s.path("auth_type"),
                "version 3 has no authentication (RFC 5798 removed it); use version '2' or auth_type 'none'".into(),
            );
            Auth::None
        }
        (Some("pass"), Some(p)) => Auth::Pass(p),
        (Some("pass"), None) => {
            if !s.is_bad("auth_pass") {
                errs.at(
                    s.line("auth_type"),
                    s.path("auth_pass"),
                    "auth_type 'pass' needs an auth_pass".into(),
                );
            }
            Auth::None
        }
        (_, Some(_)) => {
            let msg = if version == VrrpVersion::V3 {
                "version 3 has no authentication (RFC 5798 removed it); remove auth_pass"
            } else {
                "auth_pass needs auth_type 'pass'"
            };
            errs.at(s.line("auth_pass"), s.path("auth_pass"), msg.into());
            Auth::None
        }
        _ => Auth::None,
    }
}

/// keepalived 2.4 `auth_hmac` (`vrrp::auth`): keys by ID, the active one, mode, anti-replay
/// and window. Returns the settings and, per key read from a file, its ID and path (so
/// `check` can print the path instead of the key).
fn build_auth_hmac(
    s: &Sec,
    advert_int: Duration,
    legacy: &Auth,
    errs: &mut Errors,
) -> (Option<crate::vrrp::auth::AuthHmac>, Vec<(u8, String)>) {
    use crate::vrrp::auth::{self as va, AntiReplay, AuthHmac, AuthMode, HmacKey};
    const KEY: &str = "auth_hmac_key";
    let lines = s.configured(KEY).map(|v| v.to_vec()).unwrap_or_default();
    if lines.is_empty() {
        for o in [
            "auth_hmac_active_key",
            "auth_hmac_mode",
            "auth_hmac_anti_replay",
            "auth_hmac_time_window",
        ] {
            if s.is_set(o) {
                errs.at(
                    s.line(o),
                    s.path(o),
                    format!("{o} needs at least one auth_hmac_key"),
                );
            }
        }
        return (None, Vec::new());
    }
    if *legacy != Auth::None {
        errs.at(
            lines[0].1,
            s.path(KEY),
            "auth_hmac_key and auth_type 'pass' are mutually exclusive (the HMAC trailer replaces the clear-text password)".into(),
        );
    }
    let mut keys: Vec<HmacKey> = Vec::new();
    let mut files = Vec::new();
    for (v, line) in &lines {
        let Val::Str(text) = v else { continue };
        // ID, then the value: the rest of the line, so an ASCII key may hold spaces.
        let Some((id, value)) = text
            .trim()
            .split_once(char::is_whitespace)
            .map(|(i, v)| (i, v.trim()))
            .filter(|(_, v)| !v.is_empty())
        else {
            errs.at(
                *line,
                s.path(KEY),
                "expected `ID VALUE` (e.g. `1 hex:00112233...`)".into(),
            );
            continue;
        };
        let Some(id) = id.parse::<u8>().ok().filter(|i| *i >= 1) else {
            errs.at(*line, s.path(KEY), format!("key ID '{id}' must be 1..255"));
            continue;
        };
        let material = match value.strip_prefix("file:") {
            Some(path) => match read_key_file(path) {
                Ok(text) => {
                    files.push((id, path.to_string()));
                    decode_key(&text)
                }
                Err(e) => {
                    errs.at(*line, s.path(KEY), format!("key {id}: {path}: {e}"));
                    continue;
                }
            },
            None => decode_key(value),
        };
        let material = match material {
            Ok(m) => m,
            Err(e) => {
                errs.at(*line, s.path(KEY), format!("key {id}: {e}"));
                continue;
            }
        };
        if keys.iter().any(|k| k.id() == id) {
            errs.at(*line, s.path(KEY), format!("key ID {id} is given twice"));
            continue;
        }
        match HmacKey::new(id, &material) {
            Some(k) => keys.push(k),
            None => errs.at(
                *line,
                s.path(KEY),
                format!(
                    "key {id} is {} bytes; keys are {}..{} bytes",
                    material.len(),
                    va::KEY_MIN,
                    va::KEY_MAX
                ),
            ),
        }
        // The decoded copy is not a key: wipe it as the key's own drop would.
        let mut material = material;
        core::hint::black_box(material.as_mut_slice()).fill(0);
    }
    let active_key = match s.uint("auth_hmac_active_key") {
        Some(id) => {
            let id = id as u8;
            if !keys.iter().any(|k| k.id() == id) && lines.len() == keys.len() {
                errs.at(
                    s.line("auth_hmac_active_key"),
                    s.path("auth_hmac_active_key"),
                    format!("no auth_hmac_key has ID {id}"),
                );
            }
            id
        }
        None if keys.len() <= 1 => keys.first().map_or(0, |k| k.id()),
        None => {
            if !s.is_bad("auth_hmac_active_key") {
                errs.at(
                    lines[0].1,
                    s.path("auth_hmac_active_key"),
                    "several auth_hmac_keys: say which one signs with auth_hmac_active_key".into(),
                );
            }
            0
        }
    };
    let time_window = match s.secs("auth_hmac_time_window") {
        Some(d) if d.subsec_millis() != 0 => {
            errs.at(
                s.line("auth_hmac_time_window"),
                s.path("auth_hmac_time_window"),
                "whole seconds 1..300".into(),
            );
            va::default_window(advert_int)
        }
        Some(d) => d.as_secs() as u16,
        None => va::default_window(advert_int),
    };
    let cfg = AuthHmac {
        keys,
        active_key,
        mode: match s.d_word("auth_hmac_mode") {
            "permissive" => AuthMode::Permissive,
            "receive-only" => AuthMode::ReceiveOnly,
            _ => AuthMode::Enforce,
        },
        anti_replay: match s.d_word("auth_hmac_anti_replay") {
            "monotonic" => AntiReplay::Monotonic,
            _ => AntiReplay::Time,
        },
        time_window,
    };
    (Some(cfg), files)
}

/// A key value: `hex:` and an even number of hex digits, or ASCII text as it stands.
fn decode_key(text: &str) -> Result<Vec<u8>, String> {
    let Some(hex) = text.strip_prefix("hex:") else {
        return Ok(text.as_bytes().to_vec());
    };
    if hex.len() % 2 != 0 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err("hex: wants an even number of hex digits".into());
    }
    Ok((0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect())
}

/// A key file's text without its line ending; a warning when group or others may read it
/// (keepalived warns the same way: the file holds a secret).
fn read_key_file(path: &str) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > 256 {
        return Err("longer than any key file (256 bytes)".into());
    }
    if meta.permissions().mode() & 0o077 != 0 {
        log::warn!("auth_hmac key file {path} is readable by group or others (chmod 600 it)");
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// Unicast source and peers: the VIPs' family, no duplicates, at most MAX_UNICAST_PEERS.
fn build_unicast(s: &Sec, family: Family, errs: &mut Errors) -> (Option<IpAddr>, Vec<IpAddr>) {
    let unicast_src = s.ip("unicast_src");
    if let Some(a) = unicast_src {
        if Family::of(&a) != family {
            errs.at(
                s.line("unicast_src"),
                s.path("unicast_src"),
                format!(
                    "{a} is {} but the VIPs are {}",
                    Family::of(&a).name(),
                    family.name()
                ),
            );
        }
    }
    let mut unicast_peers = Vec::new();
    for (n, (v, line)) in s.vals("unicast_peer").into_iter().enumerate() {
        let Val::Ip(a) = v else { continue };
        if n == MAX_UNICAST_PEERS {
            errs.at(
                line,
                s.path("unicast_peer"),
                format!("more than {MAX_UNICAST_PEERS} unicast peers (MAX_UNICAST_PEERS)"),
            );
        }
        if Family::of(&a) != family {
            errs.at(
                line,
                s.path("unicast_peer"),
                format!(
                    "{a} is {} but the VIPs are {}",
                    Family::of(&a).name(),
                    family.name()
                ),
            );
        } else if unicast_peers.contains(&a) {
            errs.at(line, s.path("unicast_peer"), format!("{a} is listed twice"));
        } else {
            unicast_peers.push(a);
        }
    }

    (unicast_src, unicast_peers)
}

/// An instance's trackers, resolved to their sections.
struct Trackers {
    track_scripts: Vec<TrackScript>,
    track_interfaces: Vec<TrackInterface>,
    track_files: Vec<TrackFile>,
    track_checks: Vec<TrackCheck>,
}

/// Trackers: references resolve, interface names and file paths are valid, a tracked check
/// has its own target, at most MAX_TRACKERS in all.
fn build_trackers(
    s: &Sec,
    scripts: &[Script],
    checks: &[Check],
    resolve: &Resolver,
    errs: &mut Errors,
) -> Trackers {
    let mut n_trackers = 0usize;
    let mut count = |line: usize, opt: &str, errs: &mut Errors| {
        n_trackers += 1;
        if n_trackers == MAX_TRACKERS + 1 {
            errs.at(
                line,
                s.path(opt),
                format!("more than {MAX_TRACKERS} trackers in one instance (MAX_TRACKERS)"),
            );
        }
    };
    let tracked = |opt: &str| -> Vec<(String, Option<i64>, usize)> {
        s.vals(opt)
            .into_iter()
            .filter_map(|(v, line)| match v {
                Val::Tracked(n, w) => Some((n, w, line)),
                _ => None,
            })
            .collect()
    };
    let mut track_scripts = Vec::new();
    for (name, w, line) in tracked("track_script") {
        count(line, "track_script", errs);
        match resolve("script", &name) {
            Ok(i) => track_scripts.push(TrackScript {
                script: i,
                weight: w.map_or(scripts[i].weight, |w| w as i32),
            }),
            Err(m) => errs.at(line, s.path("track_script"), m),
        }
    }
    let mut track_interfaces = Vec::new();
    for (name, w, line) in tracked("track_interface") {
        count(line, "track_interface", errs);
        if !valid_ifname(&name) {
            errs.at(
                line,
                s.path("track_interface"),
                format!("'{name}' is not an interface name (at most 15 characters, no '/')"),
            );
            continue;
        }
        track_interfaces.push(TrackInterface {
            name,
            weight: w.unwrap_or(0) as i32,
        });
    }
    let mut track_files = Vec::new();
    for (path, w, line) in tracked("track_file") {
        count(line, "track_file", errs);
        if !path.starts_with('/') {
            errs.at(
                line,
                s.path("track_file"),
                format!("'{path}' is not an absolute path"),
            );
            continue;
        }
        track_files.push(TrackFile {
            path,
            weight: w.unwrap_or(1) as i32,
        });
    }
    let mut track_checks = Vec::new();
    for (name, w, line) in tracked("track_check") {
        count(line, "track_check", errs);
        match resolve("check", &name) {
            Ok(i) => {
                let c = &checks[i];
                if c.kind == CheckKind::Script {
                    errs.at(
                        line,
                        s.path("track_check"),
                        format!("check '{name}' is a script check, for real servers; track a `script` section instead"),
                    );
                } else if c.address.is_none() {
                    errs.at(
                        line,
                        s.path("track_check"),
                        format!("check '{name}' has no address; a tracked check needs one"),
                    );
                } else if c.kind != CheckKind::Icmp && c.port.is_none() {
                    errs.at(
                        line,
                        s.path("track_check"),
                        format!(
                            "check '{name}' has no port; a tracked {} check needs one",
                            c.kind.as_str()
                        ),
                    );
                }
                track_checks.push(TrackCheck {
                    check: i,
                    weight: w.map_or(c.weight, |w| w as i32),
                });
            }
            Err(m) => errs.at(line, s.path("track_check"), m),
        }
    }

    Trackers {
        track_scripts,
        track_interfaces,
        track_files,
        track_checks,
    }
}

/// Linux `dev_valid_name`: 1..15 bytes, not `.`/`..`, no `/`, `:` or whitespace.
fn valid_ifname(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n != "."
        && n != ".."
        && !n.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// Two instances with the same VRID on one interface and family would answer each other's
/// adverts as the same virtual router (RFC 5798 5.2.3: VRID is unique per LAN and family).
fn check_vrid_uniqueness(secs: &[Sec], instances: &[Instance], errs: &mut Errors) {
    for (i, a) in instances.iter().enumerate() {
        if secs[i].is_bad("vrid") || !secs[i].is_set("vrid") || a.vips.is_empty() {
            continue;
        }
        if let Some(b) = instances[..i].iter().enumerate().find(|(j, b)| {
            secs[*j].is_set("vrid")
                && !secs[*j].is_bad("vrid")
                && !b.vips.is_empty()
                && b.vrid == a.vrid
                && b.interface == a.interface
                && b.families().iter().any(|f| a.families().contains(f))
        }) {
            errs.at(
                secs[i].line("vrid"),
                secs[i].path("vrid"),
                format!(
                    "VRID {} is already used on {} for {} by instance '{}'",
                    a.vrid,
                    a.interface,
                    a.families()
                        .iter()
                        .find(|f| b.1.families().contains(f))
                        .unwrap_or(&a.family)
                        .name(),
                    b.1.name
                ),
            );
        }
    }
}

fn build_virtual_server(
    s: &Sec,
    check_names: &[String],
    resolve: &NameResolver,
    errs: &mut Errors,
) -> VirtualServer {
    // The schema only lets its enum words through, and every one of them maps
    // (`enum_words_map_to_the_model`); the fallbacks are never taken.
    let protocol = Protocol::from_word(s.d_word("protocol")).unwrap_or(Protocol::Tcp);
    let service = match (s.ip("address"), s.uint("port"), s.uint("fwmark")) {
        (Some(_), _, Some(_)) => {
            errs.at(
                s.line("fwmark"),
                s.path("fwmark"),
                "use either address/port or fwmark, not both".into(),
            );
            None
        }
        (Some(addr), Some(port), None) => Some(Service::Addr {
            addr,
            port: port as u16,
            protocol,
        }),
        (Some(_), None, None) => {
            if !s.is_bad("port") {
                errs.at(
                    s.line("address"),
                    s.path("port"),
                    "a service with an address needs a port".into(),
                );
            }
            None
        }
        (None, _, Some(mark)) => {
            if s.is_set("port") {
                errs.at(
                    s.line("port"),
                    s.path("port"),
                    "a fwmark service has no port".into(),
                );
            }
            Some(Service::Fwmark {
                mark: mark as u32,
                family: Family::Ipv4,
            })
        }
        (None, _, None) => {
            if !s.is_bad("address") && !s.is_bad("fwmark") {
                errs.at(
                    s.raw.line,
                    s.name.clone(),
                    "needs address and port, or fwmark".into(),
                );
            }
            None
        }
    };
    let quorum = s.d_uint("quorum") as u32;
    let hysteresis = s.d_uint("hysteresis") as u32;
    if hysteresis >= quorum && s.is_set("hysteresis") {
        errs.at(
            s.line("hysteresis"),
            s.path("hysteresis"),
            format!("hysteresis {hysteresis} must be less than quorum {quorum}"),
        );
    }
    let check = match s.string("check") {
        Some(n) => match resolve(check_names, "check", &n) {
            Ok(i) => Some(i),
            Err(m) => {
                errs.at(s.line("check"), s.path("check"), m);
                None
            }
        },
        None => None,
    };
    let sorry_server = match s.val("sorry_server") {
        Some(Val::HostPort(a, p)) => Some((a, p)),
        _ => None,
    };
    if let (Some((a, _)), Some(Service::Addr { addr, .. })) = (sorry_server, service) {
        if Family::of(&a) != Family::of(&addr) {
            errs.at(
                s.line("sorry_server"),
                s.path("sorry_server"),
                format!("{a} is not the service's address family"),
            );
        }
    }
    VirtualServer {
        name: s.name.clone(),
        service: service.unwrap_or(Service::Fwmark {
            mark: 0,
            family: Family::Ipv4,
        }),
        scheduler: Scheduler::from_word(s.d_word("scheduler")).unwrap_or(Scheduler::Wlc),
        forwarding: Forwarding::from_word(s.d_word("forwarding")).unwrap_or(Forwarding::Masq),
        persistence_timeout: s
            .uint("persistence_timeout")
            .filter(|t| *t > 0)
            .map(Duration::from_secs),
        persistence_netmask: match s.val("persistence_netmask") {
            Some(Val::Netmask(n)) => Some(n),
            _ => None,
        },
        quorum,
        hysteresis,
        sorry_server,
        check,
        cleanup: s.d_bool("cleanup"),
        quorum_up: command_of(s, "quorum_up", errs),
        quorum_down: command_of(s, "quorum_down", errs),
        real_servers: Vec::new(),
    }
}

fn build_real_server(
    s: &Sec,
    vs: &VirtualServer,
    check_names: &[String],
    resolve: &NameResolver,
    errs: &mut Errors,
) -> Option<RealServer> {
    let address = s.ip("address")?;
    if let Service::Addr { addr, .. } = vs.service {
        if Family::of(&address) != Family::of(&addr) {
            errs.at(
                s.line("address"),
                s.path("address"),
                format!(
                    "{address} is {} but virtual server '{}' is {}",
                    Family::of(&address).name(),
                    vs.name,
                    Family::of(&addr).name()
                ),
            );
        }
    }
    let port = match (s.uint("port"), vs.service) {
        (Some(p), _) => p as u16,
        (None, Service::Addr { port, .. }) => port,
        (None, Service::Fwmark { .. }) => 0,
    };
    let check = match s.string("check") {
        Some(n) => match resolve(check_names, "check", &n) {
            Ok(i) => Some(i),
            Err(m) => {
                errs.at(s.line("check"), s.path("check"), m);
                None
            }
        },
        None => vs.check,
    };
    Some(RealServer {
        name: s.name.clone(),
        anonymous: s.raw.name.is_none(),
        address,
        port,
        weight: s.d_uint("weight") as u32,
        check,
        inhibit_on_failure: s.d_bool("inhibit_on_failure"),
        notify_up: command_of(s, "notify_up", errs),
        notify_down: command_of(s, "notify_down", errs),
        forwarding: s
            .word("forwarding")
            .and_then(Forwarding::from_word)
            .unwrap_or(vs.forwarding),
    })
}

/// Checks one value against the schema, with the same rules a file gets (for tools that edit
/// one option, e.g. a LuCI page).
pub fn check_value(section: &str, option: &str, value: &str) -> Result<(), String> {
    let spec =
        schema::section(section).ok_or_else(|| format!("unknown section type '{section}'"))?;
    let o = spec
        .option(option)
        .ok_or_else(|| format!("unknown option '{option}'"))?;
    let k: Kind = o.kind;
    k.parse(value).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::super::{Config, DEFAULT_CONFIG};
    use super::*;

    const FULL: &str = include_str!("../../tests/configs/good/full.uci");

    fn ok(text: &str) -> Config {
        Config::parse_str("test", text).unwrap_or_else(|e| {
            panic!(
                "{}",
                e.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
    }

    #[test]
    fn sync_group_trackers_fault_only_and_routes_once() {
        let base = "config script 'chk'\n option command 'true'\n option weight '-5'\n\
            config instance 'lan'\n option interface 'eth0'\n option vrid '1'\n list vip '10.0.0.10'\n\
            list route 'default via 10.0.0.1'\n";
        let c = ok(&format!(
            "{base}config sync_group 'g'\n list member 'lan'\n list track_script 'chk'\n list track_interface 'wan weight 0'\n"
        ));
        let g = &c.sync_groups[0];
        assert_eq!(
            (g.track_scripts[0].script, g.track_scripts[0].weight),
            (0, 0)
        );
        assert_eq!(g.track_interfaces[0].name, "wan");
        let e = errors(&format!(
            "{base}config sync_group 'g'\n list member 'lan'\n list track_script 'chk weight -10'\n"
        ));
        assert!(e[0].contains("only faults the group"), "{e:?}");
        let e = errors(&format!("{base} list route 'default via 10.0.0.2'\n"));
        assert!(e[0].contains("listed twice"), "{e:?}");
    }

    #[test]
    fn script_checks_are_for_real_servers_with_a_command() {
        let base = "config check 'misc'\n option type 'script'\n option command '/usr/bin/chk.sh 10.0.1.1'\n option dynamic '1'\n option interval '2'\n\
            config virtual_server 'web'\n option address '10.0.0.1'\n option port '80'\n\
            config real_server\n option virtual_server 'web'\n option address '10.0.1.1'\n option check 'misc'\n";
        let c = ok(base);
        let k = &c.checks[0];
        assert_eq!(k.kind, CheckKind::Script);
        assert_eq!(k.command.as_deref(), Some("/usr/bin/chk.sh 10.0.1.1"));
        assert_eq!(
            (k.timeout, k.dynamic, k.user.as_deref()),
            (Duration::from_secs(2), true, None)
        );
        // `check` prints it back the same.
        assert_eq!(ok(&c.to_uci()), c);
        let e = errors("config check 'misc'\n option type 'script'\n");
        assert_eq!(e, ["f:2: misc.command: a script check needs `command`"]);
        let e = errors("config check 'c'\n option type 'tcp'\n option port '80'\n option dynamic '1'\n option user 'nobody'\n");
        assert_eq!(
            e,
            [
                "f:4: c.dynamic: only for `type script` (this check is tcp)",
                "f:5: c.user: only for `type script` (this check is tcp)"
            ]
        );
        let e = errors(&format!(
            "{base}config instance 'vi1'\n option interface 'eth0'\n option vrid '1'\n list vip '10.0.0.10'\n list track_check 'misc'\n"
        ));
        assert!(
            e[0].contains("is a script check, for real servers"),
            "{e:?}"
        );
    }

    #[test]
    fn rules_take_the_instance_family_and_are_listed_once() {
        let v6 = "config instance 'lan6'\n option interface 'eth0'\n option vrid '1'\n option version '3'\n list vip 'fd00::10'\n\
            list rule 'iif eth0 priority 10 table 100'\n list rule 'from 10.0.0.0/24 priority 11 table 100'\n\
            list backup_rule 'inet iif eth0 priority 10 table 101'\n";
        let c = ok(v6);
        let i = &c.instances[0];
        assert_eq!(
            (
                i.rules[0].family,
                i.rules[1].family,
                i.backup_rules[0].family
            ),
            (Family::Ipv6, Family::Ipv4, Family::Ipv4)
        );
        // `check` prints what reads back to the same model.
        let printed = c.to_uci();
        assert!(
            printed.contains("list rule 'inet6 iif eth0 priority 10 table 100'"),
            "{printed}"
        );
        assert_eq!(ok(&printed), c);
        let e = errors(&format!(
            "{v6} list rule 'inet6 iif eth0 pref 10 lookup 100'\n"
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "f:9: lan6.rule: 'inet6 iif eth0 priority 10 table 100' is listed twice"
            ),
            "{e:?}"
        );
        let e = errors(&format!(
            "{v6} list backup_rule 'from 10.0.0.0/24 table 5'\n"
        ));
        assert!(
            e[0].starts_with("f:9: lan6.backup_rule: needs `priority N`"),
            "{e:?}"
        );
    }

    #[test]
    fn router_advertisement_options_rfc_4861_6_2_1() {
        let v6 = "\toption version '3'\n\tlist vip 'fe80::77/64'\n\tlist vip 'fd77::254/64'\n\toption ra '1'\n";
        let c = ok(&instance(&format!("{v6}\tlist ra_prefix 'fd77::/64'\n")));
        let ra = c.instances[0].ra.clone().expect("ra");
        assert_eq!(
            ra.prefixes,
            vec!["fd77::".parse::<core::net::Ipv6Addr>().unwrap()]
        );
        assert_eq!(ra.interval, Duration::from_secs(600));
        assert_eq!(ra.router_lifetime, 1800, "3 x ra_interval");
        assert_eq!(
            (ra.valid_lifetime, ra.preferred_lifetime),
            (2_592_000, 604_800)
        );
        assert!(!ra.managed && !ra.other);
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        // The effective config loads back to the same.
        assert_eq!(ok(&c.to_uci()).instances[0].ra, Some(ra));

        // Errors name file:line, section and option.
        for (extra, want) in [
            (
                "\tlist ra_prefix 'fd77::/48'\n",
                "f:8: vi1.ra_prefix: fd77::/48 must be a /64",
            ),
            (
                "\tlist ra_prefix 'fe80::/64'\n",
                "f:8: vi1.ra_prefix: fe80::/64 is link-local",
            ),
            (
                "\tlist ra_prefix 'ff02::/64'\n",
                "f:8: vi1.ra_prefix: ff02::/64 is multicast",
            ),
            (
                "\tlist ra_prefix 'fd77::1/64'\n",
                "f:8: vi1.ra_prefix: fd77::1/64 has host bits set",
            ),
            ("\toption ra_interval '3'\n", "f:8: vi1.ra_interval:"),
            ("\toption ra_lifetime '9001'\n", "f:8: vi1.ra_lifetime:"),
            (
                "\toption ra_lifetime '100'\n",
                "f:8: vi1.ra_lifetime: 100 is below ra_interval",
            ),
            (
                "\toption ra_valid_lifetime '100'\n",
                "f:8: vi1.ra_valid_lifetime: ra_preferred_lifetime 604800 exceeds ra_valid_lifetime 100",
            ),
        ] {
            let e = one_error(&instance(&format!("{v6}{extra}")));
            assert!(e.starts_with(want), "{extra}: {e}");
        }
        // The lifetime is compared with the interval rounded up to whole seconds.
        let e = one_error(&instance(&format!(
            "{v6}\toption ra_interval '4.5'\n\toption ra_lifetime '4'\n"
        )));
        assert!(
            e.starts_with("f:9: vi1.ra_lifetime: 4 is below ra_interval"),
            "{e}"
        );
        for (interval, lifetime) in [("4.5", "5"), ("5", "5"), ("4.5", "0")] {
            let c = ok(&instance(&format!(
                "{v6}\toption ra_interval '{interval}'\n\toption ra_lifetime '{lifetime}'\n"
            )));
            assert_eq!(
                c.instances[0].ra.as_ref().map(|r| r.router_lifetime),
                lifetime.parse().ok()
            );
        }
        // `ra` needs a link-local first IPv6 VIP; the `ra_*` options need `ra`.
        let e = one_error(&instance(
            "\toption version '3'\n\tlist vip 'fd77::254/64'\n\tlist vip 'fe80::77/64'\n\toption ra '1'\n",
        ));
        assert!(
            e.starts_with("f:7: vi1.ra: RAs are sent from the first IPv6 VIP"),
            "{e}"
        );
        let e = one_error(&instance("\tlist vip '10.0.0.1'\n\toption ra '1'\n"));
        assert!(
            e.starts_with("f:5: vi1.ra: needs a link-local IPv6 VIP"),
            "{e}"
        );
        let e = one_error(&instance(
            "\tlist vip '10.0.0.1'\n\tlist ra_prefix 'fd77::/64'\n",
        ));
        assert!(
            e.starts_with("f:5: vi1.ra_prefix: needs `option ra '1'`"),
            "{e}"
        );
    }

    #[test]
    fn check_warns_when_the_first_ipv6_vip_is_not_link_local_rfc_5798_5_2_9() {
        let c = ok(&instance(
            "\toption version '3'\n\tlist vip 'fd77::254/64'\n\tlist vip 'fe80::77/64'\n",
        ));
        let w = c.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("first IPv6 VIP fd77::254 is not link-local"),
            "{w:?}"
        );
        let c = ok(&instance("\tlist vip '10.0.0.1'\n"));
        assert!(c.warnings().is_empty());
    }

    fn errors(text: &str) -> Vec<String> {
        match Config::parse_str("f", text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn instance(extra: &str) -> String {
        format!("config instance 'vi1'\n\toption interface 'br-lan'\n\toption vrid '50'\n{extra}")
    }

    fn one_error(text: &str) -> String {
        let e = errors(text);
        assert_eq!(e.len(), 1, "{e:?}");
        e[0].clone()
    }

    /// CR/LF in a string would add SMTP commands to an alert or forge a log line: refused in
    /// every value with file and line, whatever the option.
    #[test]
    fn control_characters_are_refused_in_every_value() {
        for (opt, value) in [
            ("router_id", "r1\r\nRCPT TO:<x@evil>"),
            ("notification_email_from", "a@x\r\nDATA"),
            ("notify_pre_master", "/bin/true\narg"),
            ("startup_delay", "1\u{1}"),
        ] {
            let text = format!("config globals 'globals'\n\toption {opt} '{value}'\n");
            let e = one_error(&text);
            assert!(
                e.starts_with("f:2: ") && e.contains(opt) && e.contains("control character"),
                "{opt}: {e}"
            );
        }
        let text = instance("\tlist vip '10.0.0.1'\n\toption notify_master 'logger\tx'\n");
        assert!(one_error(&text).contains("control character (U+0009)"));
    }

    /// SMTP addresses are addresses: nothing else reaches the envelope or `From:`.
    #[test]
    fn smtp_addresses_must_be_addresses() {
        for good in [
            "a@x",
            "root@router.lan",
            "first.last+vrrp@example.org",
            "ops@[10.0.0.1]",
            "ops@[IPv6:fd00::1]",
        ] {
            let t = format!("config globals 'globals'\n\toption notification_email_from '{good}'\n\tlist notification_email '{good}'\n");
            assert!(Config::parse_str("f", &t).is_ok(), "{good}");
        }
        for bad in [
            "nobody",
            "a@",
            "@x",
            "a b@x",
            "<a@x>",
            "a@x>",
            "a..b@x",
            "a@-x.org",
            "a@x_y.org",
            "\"a\"@x",
            "a@[1.2.3]",
        ] {
            let t = format!("config globals 'globals'\n\tlist notification_email '{bad}'\n");
            let e = one_error(&t);
            assert!(
                e.starts_with("f:2: ") && e.contains("not an e-mail address"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn enum_words_map_to_the_model() {
        use crate::config::model::UciWord;
        let words = |stype: &str, opt: &str| match schema::section(stype)
            .and_then(|s| s.option(opt))
            .map(|o| o.kind)
        {
            Some(Kind::Enum(w)) => w,
            other => panic!("{stype}.{opt}: {other:?}"),
        };
        for w in words("virtual_server", "protocol") {
            assert!(Protocol::from_word(w).is_some(), "{w}");
        }
        for w in words("virtual_server", "scheduler") {
            assert!(Scheduler::from_word(w).is_some(), "{w}");
        }
        for opt in ["virtual_server", "real_server"] {
            for w in words(opt, "forwarding") {
                assert!(Forwarding::from_word(w).is_some(), "{w}");
            }
        }
    }

    #[test]
    fn shipped_default_config_validates() {
        let c = ok(DEFAULT_CONFIG);
        assert_eq!(c.instances.len(), 1);
        let i = &c.instances[0];
        assert_eq!((i.vrid, i.version), (50, VrrpVersion::V3));
        assert_eq!(
            i.vips,
            [Vip {
                addr: "10.0.0.254".parse().unwrap(),
                prefix_len: 24,
                dev: None,
                label: None,
                scope: 0,
                excluded: false,
            }]
        );
        assert_eq!(c.globals.router_id, "openwrt");
    }

    #[test]
    fn role_names_are_checked_and_conntrackd_owns_the_pre_master_hook() {
        let inst = "config instance 'vi1'\n\toption interface 'eth0'\n\toption vrid '1'\n\tlist vip '10.0.0.1'\n";
        let err = |extra: &str| {
            let e = Config::parse_str("t", &format!("{inst}{extra}")).unwrap_err();
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(
            err("\tlist master_service '../x'\n").contains("is not a service or interface name")
        );
        assert!(
            err("\tlist master_service 'a'\n\tlist master_service 'a'\n").contains("listed twice")
        );
        assert!(
            err("\tlist master_service 'a'\n\tlist backup_service 'a'\n")
                .contains("also a master_service")
        );
        assert!(
            err("\toption conntrackd '1'\n\toption notify_pre_master 'true'\n")
                .contains("conntrackd is set")
        );
        // The global hook is not inherited by a conntrackd instance.
        let c = Config::parse_str(
            "t",
            &format!("config globals 'globals'\n\toption notify_pre_master 'true'\n{inst}\toption conntrackd '1'\n\tlist master_service 'dnsmasq'\n\tlist master_interface 'wg0'\n"),
        )
        .unwrap();
        let i = &c.instances[0];
        assert_eq!(i.notify_pre_master, None);
        assert_eq!(
            i.conntrackd.as_deref(),
            Some("/etc/conntrackd/conntrackd.conf")
        );
        assert_eq!(i.notify.master_services, ["dnsmasq"]);
        assert_eq!(i.notify.master_interfaces, ["wg0"]);
        // The effective config loads back to the same.
        assert_eq!(Config::parse_str("t", &c.to_uci()).unwrap(), c);
    }

    #[test]
    fn pre_master_hook_and_timeout_default_from_globals_and_are_bounded() {
        let c = ok(&instance("\tlist vip '10.0.0.1'\n"));
        assert_eq!(c.instances[0].notify_pre_master, None);
        assert_eq!(c.instances[0].pre_master_timeout, Duration::from_secs(5));
        let text = format!(
            "config globals 'globals'\n\toption notify_pre_master 'conntrackd -c'\n\
             \toption pre_master_timeout '2.5'\n{}\tlist vip '10.0.0.1'\n\
             config instance 'vi2'\n\toption interface 'br-lan'\n\toption vrid '51'\n\
             \toption notify_pre_master 'true'\n\toption pre_master_timeout '0.5'\n\
             \tlist vip '10.0.0.2'\n",
            instance("")
        );
        let c = ok(&text);
        let (a, b) = (&c.instances[0], &c.instances[1]);
        assert_eq!(a.notify_pre_master.as_deref(), Some("conntrackd -c"));
        assert_eq!(a.pre_master_timeout, Duration::from_millis(2500));
        assert_eq!(b.notify_pre_master.as_deref(), Some("true"));
        assert_eq!(b.pre_master_timeout, Duration::from_millis(500));
        // The printed effective config loads back to the same instances.
        let again = ok(&c.to_uci());
        assert_eq!(again.instances, c.instances);
        for bad in ["0", "301"] {
            let text = instance(&format!(
                "\toption pre_master_timeout '{bad}'\n\tlist vip '10.0.0.1'\n"
            ));
            assert!(Config::parse_str("t", &text).is_err(), "{bad} accepted");
        }
        let text = instance("\toption notify_pre_master 'a \"b'\n\tlist vip '10.0.0.1'\n");
        assert!(
            Config::parse_str("t", &text).is_err(),
            "unbalanced quote accepted"
        );
    }

    #[test]
    fn smtp_options_parse_with_keepalived_defaults_and_instance_inherits_global_alert() {
        let c = ok(&instance("\tlist vip '10.0.0.1'\n"));
        assert_eq!(c.globals.smtp_server, None);
        assert_eq!(c.globals.smtp_connect_timeout, Duration::from_secs(30));
        assert!(!c.globals.smtp_alert && !c.instances[0].smtp_alert);
        let text = format!(
            "config globals 'globals'\n\tlist notification_email 'a@x'\n\tlist notification_email 'b@x'\n\
             \toption notification_email_from 'r1@x'\n\toption smtp_server '10.0.0.25'\n\
             \toption smtp_alert '1'\n{}\tlist vip '10.0.0.1'\n\
             config instance 'vi2'\n\toption interface 'br-lan'\n\toption vrid '51'\n\
             \toption smtp_alert '0'\n\tlist vip '10.0.0.2'\n",
            instance("")
        );
        let c = ok(&text);
        assert_eq!(c.globals.notification_email, vec!["a@x", "b@x"]);
        assert_eq!(c.globals.notification_email_from, "r1@x");
        assert_eq!(c.globals.smtp_server, Some("10.0.0.25:25".parse().unwrap()));
        assert!(c.instances[0].smtp_alert, "inherits the global smtp_alert");
        assert!(!c.instances[1].smtp_alert, "its own smtp_alert wins");
        let c = ok(&format!(
            "config globals 'globals'\n\toption smtp_server '[fd00::25]:2525'\n{}",
            instance("\tlist vip '10.0.0.1'\n")
        ));
        assert_eq!(
            c.globals.smtp_server,
            Some("[fd00::25]:2525".parse().unwrap())
        );
    }

    #[test]
    fn defaults_fill_every_unset_option() {
        let c = ok(&instance("\tlist vip '10.0.0.1'\n"));
        assert_eq!(c.globals.router_id, "minivrrp");
        assert_eq!(c.globals.log_level, LogLevel::Info);
        let i = &c.instances[0];
        assert_eq!(i.priority, 100);
        assert_eq!(i.version, VrrpVersion::V2);
        assert_eq!(i.advert_int, Duration::from_secs(1));
        assert!(i.preempt);
        assert_eq!(i.preempt_delay, Duration::ZERO);
        assert_eq!(i.initial_state, InitialState::Backup);
        assert_eq!(i.auth, Auth::None);
        assert_eq!(i.vips[0].prefix_len, 32);
        assert!(!i.use_vmac);
        assert_eq!(i.vmac_name, "vrrp.50");
        assert_eq!((i.garp_repeat, i.garp_delay), (5, Duration::from_secs(5)));
        assert_eq!(i.garp_refresh, None);
        assert_eq!(i.v3_checksum, V3Checksum::Pseudo);
        assert_eq!(i.sync_group, None);
    }

    #[test]
    fn full_config_builds_the_typed_model() {
        let c = ok(FULL);
        assert_eq!(c.globals.log_level, LogLevel::Debug);
        let lan = &c.instances[0];
        assert_eq!(lan.advert_int_centis(), 50);
        assert!(!lan.preempt);
        assert_eq!(lan.initial_state, InitialState::Master);
        assert_eq!(lan.vips.len(), 2);
        assert_eq!(lan.vips[1].prefix_len, 32);
        // track_script without weight takes the script's weight.
        assert_eq!(
            lan.track_scripts,
            [TrackScript {
                script: 0,
                weight: -20
            }]
        );
        assert_eq!(lan.track_interfaces[0].weight, -50);
        assert_eq!(lan.track_interfaces[1].weight, 0);
        assert_eq!(lan.track_files[0].weight, 2);
        assert_eq!(
            lan.track_checks,
            [TrackCheck {
                check: 1,
                weight: -10
            }]
        );
        assert_eq!(lan.garp_refresh, Some(Duration::from_secs(60)));
        assert_eq!(lan.sync_group, Some(0));
        let lan6 = &c.instances[1];
        assert_eq!(lan6.family, Family::Ipv6);
        assert_eq!(lan6.vips[0].prefix_len, 64);
        assert_eq!(lan6.vmac_name, "vrrp6.51");
        assert_eq!(c.instances[2].auth, Auth::Pass("it's".into()));
        assert_eq!(c.scripts[0].timeout, Duration::from_millis(1500));
        let http = &c.checks[0];
        assert_eq!(http.kind, CheckKind::Http);
        assert_eq!(
            http.status,
            [
                StatusRange { lo: 200, hi: 200 },
                StatusRange { lo: 301, hi: 302 }
            ]
        );
        assert_eq!(c.checks[1].status, [StatusRange { lo: 200, hi: 299 }]);
        assert_eq!(c.sync_groups[0].members, [0, 1]);
        let web = &c.virtual_servers[0];
        assert_eq!(web.scheduler, Scheduler::Wrr);
        assert_eq!(web.persistence_netmask, Some(24));
        assert_eq!(web.persistence_timeout, Some(Duration::from_secs(300)));
        assert_eq!(
            web.sorry_server,
            Some(("10.0.0.9".parse().unwrap(), Some(8080)))
        );
        // Real servers inherit port, check and forwarding from the virtual server.
        let (w1, w2) = (&web.real_servers[0], &web.real_servers[1]);
        assert_eq!(
            (w1.port, w1.check, w1.forwarding),
            (80, Some(0), Forwarding::DirectRoute)
        );
        assert_eq!((w2.port, w2.forwarding), (8080, Forwarding::Masq));
        let marked = &c.virtual_servers[1];
        assert_eq!(
            marked.service,
            Service::Fwmark {
                mark: 42,
                family: Family::Ipv6
            }
        );
        assert_eq!(marked.real_servers[0].port, 0);
    }

    #[test]
    fn effective_config_round_trips_to_the_same_model() {
        for text in [FULL, DEFAULT_CONFIG] {
            let c = ok(text);
            let again = ok(&c.to_uci());
            assert_eq!(again, c);
        }
    }

    #[test]
    fn error_display_is_file_line_section_option_message() {
        assert_eq!(
            one_error(&instance(
                "\toption priority '300'\n\tlist vip '10.0.0.1'\n"
            )),
            "f:4: vi1.priority: 300 is out of range 1..255"
        );
        let anon = "config instance\n\toption interface 'x'\n\toption vrid '1'\n\tlist vip '10.0.0.1'\n\toption preempt 'maybe'\n";
        assert_eq!(
            one_error(anon),
            "f:5: @instance[0].preempt: 'maybe' is not a boolean (use 1 or 0)"
        );
    }

    #[test]
    fn every_error_is_collected() {
        let text = "config bogus\nconfig instance 'a'\n\toption vrid '0'\n\toption colour 'red'\n\tlist vip 'nope'\n";
        let e = errors(text);
        assert_eq!(e.len(), 5, "{e:?}");
        assert!(e[0].starts_with("f:1: @bogus[0]: unknown section type"));
        assert!(e
            .iter()
            .any(|l| l.starts_with("f:2: a.interface: required option is missing")));
    }

    #[test]
    fn advert_int_rules_per_version_rfc3768_5_3_7_and_rfc5798_5_2_7() {
        let v3 = |v: &str| {
            instance(&format!(
                "\toption version '3'\n\toption advert_int '{v}'\n\tlist vip '10.0.0.1'\n"
            ))
        };
        let v2 = |v: &str| {
            instance(&format!(
                "\toption advert_int '{v}'\n\tlist vip '10.0.0.1'\n"
            ))
        };
        assert_eq!(ok(&v3("0.01")).instances[0].advert_int_centis(), 1);
        assert_eq!(ok(&v3("40.95")).instances[0].advert_int_centis(), 4095);
        assert!(one_error(&v3("40.96")).contains("version 3 needs 0.01..40.95"));
        assert!(one_error(&v3("0.015")).contains("steps of 0.01"));
        assert!(one_error(&v3("0")).contains("out of range"));
        assert_eq!(
            ok(&v2("255")).instances[0].advert_int,
            Duration::from_secs(255)
        );
        assert!(one_error(&v2("1.5")).contains("whole seconds"));
        assert!(one_error(&v2("256")).contains("out of range"));
    }

    const KEY00: &str = "hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn auth_hmac_keys_in_three_forms_with_keepalived_defaults() {
        use crate::vrrp::auth::{AntiReplay, AuthMode};
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("mv-hmac-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key3");
        std::fs::write(&file, format!("{KEY00}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = ok(&instance(&format!(
            "\tlist vip '10.0.0.1'\n\tlist auth_hmac_key '1 {KEY00}'\n\tlist auth_hmac_key '2 an ASCII passphrase of 32 bytes!'\n\tlist auth_hmac_key '3 file:{}'\n\toption auth_hmac_active_key '2'\n",
            file.display()
        )));
        let a = c.instances[0].auth_hmac.as_ref().unwrap();
        assert_eq!(a.keys.iter().map(|k| k.id()).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(
            a.keys[0].same_material(&a.keys[2]),
            "hex inline and from a file agree"
        );
        assert_eq!(a.keys[1].len(), 32);
        assert_eq!(a.active_key, 2);
        assert_eq!(a.mode, AuthMode::Enforce);
        assert_eq!(a.anti_replay, AntiReplay::Time);
        assert_eq!(a.time_window, 5, "max(3 x 1 s, 5)");
        // `check` never prints a key: inline ones are masked, a file shows its path.
        let out = c.to_uci();
        assert!(!out.contains("000102"), "{out}");
        assert!(!out.contains("passphrase"), "{out}");
        assert!(out.contains("list auth_hmac_key '1 ***'"), "{out}");
        assert!(out.contains(&format!("list auth_hmac_key '3 file:{}'", file.display())));
        let c = ok(&instance(&format!(
            "\toption advert_int '4'\n\tlist vip '10.0.0.1'\n\tlist auth_hmac_key '9 {KEY00}'\n\toption auth_hmac_mode 'receive-only'\n\toption auth_hmac_anti_replay 'monotonic'\n"
        )));
        let a = c.instances[0].auth_hmac.as_ref().unwrap();
        assert_eq!(
            (a.active_key, a.mode, a.time_window),
            (9, AuthMode::ReceiveOnly, 12)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn auth_hmac_errors_name_their_line() {
        let vip = "\tlist vip '10.0.0.1'\n";
        let e = one_error(&instance(&format!(
            "\toption auth_type 'pass'\n\toption auth_pass 'x'\n{vip}\tlist auth_hmac_key '1 {KEY00}'\n"
        )));
        assert!(e.starts_with("f:7: vi1.auth_hmac_key: "), "{e}");
        assert!(e.contains("mutually exclusive"), "{e}");
        for (key, want) in [
            ("0 hex:00", "must be 1..255"),
            ("1 short", "key 1 is 5 bytes; keys are 32..64 bytes"),
            ("1 hex:0g", "even number of hex digits"),
            ("1 file:/nonexistent/key", "/nonexistent/key"),
            ("123", "expected `ID VALUE`"),
        ] {
            let e = one_error(&instance(&format!("{vip}\tlist auth_hmac_key '{key}'\n")));
            assert!(e.contains(want), "{key}: {e}");
        }
        let e = one_error(&instance(&format!(
            "{vip}\tlist auth_hmac_key '1 {KEY00}'\n\tlist auth_hmac_key '1 {KEY00}'\n"
        )));
        assert!(e.contains("given twice") && e.starts_with("f:6:"), "{e}");
        let e = one_error(&instance(&format!(
            "{vip}\tlist auth_hmac_key '1 {KEY00}'\n\tlist auth_hmac_key '2 {KEY00}'\n"
        )));
        assert!(e.contains("auth_hmac_active_key"), "{e}");
        let e = one_error(&instance(&format!(
            "{vip}\tlist auth_hmac_key '1 {KEY00}'\n\toption auth_hmac_active_key '2'\n"
        )));
        assert!(e.contains("no auth_hmac_key has ID 2"), "{e}");
        let e = one_error(&instance(&format!(
            "{vip}\toption auth_hmac_mode 'permissive'\n"
        )));
        assert!(e.contains("needs at least one auth_hmac_key"), "{e}");
        let e = one_error(&instance(&format!(
            "{vip}\tlist auth_hmac_key '1 {KEY00}'\n\toption auth_hmac_time_window '301'\n"
        )));
        assert!(e.contains("auth_hmac_time_window"), "{e}");
    }

    #[test]
    fn authentication_rules() {
        let e = one_error(&instance(
            "\toption auth_type 'pass'\n\tlist vip '10.0.0.1'\n",
        ));
        assert!(e.contains("auth_type 'pass' needs an auth_pass"), "{e}");
        let e = one_error(&instance("\toption auth_pass 'x'\n\tlist vip '10.0.0.1'\n"));
        assert!(e.contains("auth_pass needs auth_type 'pass'"), "{e}");
        let e = one_error(&instance(
            "\toption version '3'\n\toption auth_type 'pass'\n\toption auth_pass 'x'\n\tlist vip '10.0.0.1'\n",
        ));
        assert!(e.contains("version 3 has no authentication"), "{e}");
        let e = one_error(&instance(
            "\toption auth_type 'pass'\n\toption auth_pass '123456789'\n\tlist vip '10.0.0.1'\n",
        ));
        assert!(e.contains("1..8 characters"), "{e}");
    }

    #[test]
    fn vips_of_both_families_make_a_dual_stack_v3_instance() {
        let c = ok(&instance(
            "option version '3'\n list vip '10.0.0.254/24'\n list vip 'fd00::254/64'\n",
        ));
        let i = &c.instances[0];
        assert!(i.dual_stack);
        assert_eq!(i.family, Family::Ipv4);
        assert_eq!(i.families(), [Family::Ipv4, Family::Ipv6]);
        let c = ok(&instance("option version '3'\n list vip 'fd00::254/64'\n"));
        assert!(!c.instances[0].dual_stack);
        assert_eq!(c.instances[0].families(), [Family::Ipv6]);
        // An excluded VIP of the other family does not make it dual-stack.
        let c = ok(&instance(
            "list vip '10.0.0.254/24'\n list vip_excluded 'fd00::254/64'\n",
        ));
        assert!(!c.instances[0].dual_stack);
        let e = one_error(&instance(
            "option version '2'\n list vip '10.0.0.254/24'\n list vip 'fd00::254/64'\n",
        ));
        assert!(e.contains("set version '3'"), "{e}");
    }

    #[test]
    fn a_dual_stack_member_counts_twice_in_a_sync_group() {
        let mut text = String::new();
        for n in 0..5 {
            text.push_str(&format!(
                "config instance 'i{n}'\n option interface 'br-lan'\n option version '3'\n option vrid '{}'\n list vip '10.0.0.{}/24'\n list vip 'fd00::{}/64'\n",
                n + 1,
                n + 1,
                n + 1
            ));
        }
        text.push_str("config sync_group 'g'\n");
        for n in 0..5 {
            text.push_str(&format!(" list member 'i{n}'\n"));
        }
        let e = one_error(&text);
        assert!(e.contains("g.member") && e.contains("counts twice"), "{e}");
        // Four of them fill the group's eight routers.
        let four = text.replace(" list member 'i4'\n", "");
        assert_eq!(ok(&four).sync_groups[0].members, [0, 1, 2, 3]);
    }

    #[test]
    fn same_vrid_is_fine_on_another_interface_or_family() {
        let text = "config instance 'a'\n\toption interface 'br-lan'\n\toption vrid '5'\n\toption version '3'\n\tlist vip '10.0.0.1'\n\
config instance 'b'\n\toption interface 'br-lan'\n\toption vrid '5'\n\toption version '3'\n\tlist vip 'fd00::1'\n\
config instance 'c'\n\toption interface 'wan'\n\toption vrid '5'\n\tlist vip '10.0.0.2'\n";
        assert_eq!(ok(text).instances.len(), 3);
    }

    #[test]
    fn unicast_peers_must_match_the_vip_family() {
        let e = one_error(&instance(
            "\tlist vip '10.0.0.1'\n\tlist unicast_peer 'fd00::2'\n",
        ));
        assert!(
            e.starts_with("f:5: vi1.unicast_peer: fd00::2 is IPv6 but the VIPs are IPv4"),
            "{e}"
        );
    }

    #[test]
    fn capacities_are_enforced_at_load() {
        let mut vips = String::new();
        for n in 0..=MAX_VIPS {
            vips.push_str(&format!("\tlist vip '10.0.0.{}'\n", n + 1));
        }
        let e = one_error(&instance(&vips));
        assert!(e.contains("more than 20 VIPs (MAX_VIPS)"), "{e}");
        assert!(e.starts_with(&format!("f:{}:", 4 + MAX_VIPS)), "{e}");

        let mut many = String::new();
        for n in 0..=MAX_INSTANCES {
            many.push_str(&format!(
                "config instance 'i{n}'\n\toption interface 'eth{}'\n\toption vrid '1'\n\tlist vip '10.0.0.1'\n",
                n
            ));
        }
        let e = one_error(&many);
        assert!(
            e.contains("too many instance sections: 256 (at most 255, MAX_INSTANCES)"),
            "{e}"
        );

        let mut tr = String::from("\tlist vip '10.0.0.1'\n");
        for n in 0..=MAX_TRACKERS {
            tr.push_str(&format!("\tlist track_interface 'eth{n}'\n"));
        }
        assert!(one_error(&instance(&tr)).contains("MAX_TRACKERS"));

        // Script-checked real servers: one child each, so a bounded number.
        let mut rs = String::from(
            "config check 'misc'\n\toption type 'script'\n\toption command 'true'\n\
             config virtual_server 'web'\n\toption address '10.0.0.1'\n\toption port '80'\n\toption check 'misc'\n",
        );
        for n in 0..=MAX_SCRIPT_CHECKED_SERVERS {
            rs.push_str(&format!(
                "config real_server\n\toption virtual_server 'web'\n\toption address '10.0.{}.{}'\n",
                n / 200,
                n % 200 + 1
            ));
        }
        let e = one_error(&rs);
        assert!(
            e.contains(
                "more than 64 real servers with a script check (MAX_SCRIPT_CHECKED_SERVERS)"
            ),
            "{e}"
        );
        // The 65th section starts after 7 lines of check and virtual server, 3 lines each.
        assert!(
            e.starts_with(&format!("f:{}:", 8 + 3 * MAX_SCRIPT_CHECKED_SERVERS)),
            "{e}"
        );
    }

    #[test]
    fn named_sections_are_required_where_referenced() {
        let e = one_error("config script\n\toption command 'true'\n");
        assert!(e.contains("needs a name"), "{e}");
        let e = one_error("config globals 'main'\n");
        assert!(e.contains("must be named 'globals'"), "{e}");
    }

    #[test]
    fn tracked_check_needs_its_own_target() {
        let text = format!(
            "config check 'c'\n\toption type 'tcp'\n\toption address '10.0.0.9'\n{}",
            instance("\tlist vip '10.0.0.1'\n\tlist track_check 'c'\n")
        );
        assert!(one_error(&text).contains("check 'c' has no port"));
    }

    #[test]
    fn virtual_server_rules() {
        let e = one_error("config virtual_server 'v'\n\toption address '10.0.0.1'\n");
        assert!(
            e.contains("v.port: a service with an address needs a port"),
            "{e}"
        );
        let e = one_error("config virtual_server 'v'\n\toption scheduler 'rr'\n");
        assert!(e.contains("needs address and port, or fwmark"), "{e}");
        let e = one_error(
            "config virtual_server 'v'\n\toption fwmark '1'\n\toption quorum '2'\n\toption hysteresis '2'\n",
        );
        assert!(e.contains("hysteresis 2 must be less than quorum 2"), "{e}");
        let e = one_error(
            "config virtual_server 'v'\n\toption address '10.0.0.1'\n\toption port '80'\n\
config real_server\n\toption virtual_server 'v'\n\toption address 'fd00::1'\n",
        );
        assert!(
            e.contains("fd00::1 is IPv6 but virtual server 'v' is IPv4"),
            "{e}"
        );
        let e = one_error(
            "config virtual_server 'v'\n\toption address '10.0.0.1'\n\toption port '80'\n\
config real_server\n\toption virtual_server 'v'\n\toption address '10.0.0.2'\n\
config real_server\n\toption virtual_server 'v'\n\toption address '10.0.0.2'\n\toption port '80'\n",
        );
        assert!(
            e.contains("10.0.0.2 port 80 is already a real server of 'v'"),
            "{e}"
        );
    }

    #[test]
    fn check_value_uses_the_same_rules() {
        assert!(check_value("instance", "priority", "255").is_ok());
        assert_eq!(
            check_value("instance", "priority", "256").unwrap_err(),
            "256 is out of range 1..255"
        );
        assert!(check_value("instance", "nope", "1").is_err());
    }
}
