//! keepalived statements to minivrrp sections.
//!
//! Defaults are written out only where keepalived's differ from minivrrp's (an instance with
//! `state MASTER` and no priority is 255 in keepalived, a virtual server without `protocol` is
//! UDP, a checker runs every 60 s, HTTP_GET retries after 3 s). Everything that cannot be
//! carried exactly becomes a [`Note`]; what keepalived itself silently normalises (a
//! `nopreempt` beside `state MASTER` is cleared, `auth_pass` is cut to 8 characters) is carried
//! as keepalived runs it.

use std::net::IpAddr;

use super::conf::Node;
use super::note::Pos;
use super::out::OutSection;
use super::Note;
use crate::config::validate::check_value;

const CHECKER_EMAIL: &str =
    "minivrrp sends e-mail alerts for VRRP state changes only, not for checkers; ignored";
const UNSUPPORTED: &str = "not supported by minivrrp; ignored";

/// Settings of `global_defs` that are defaults for every instance or script.
#[derive(Default)]
struct GlobalDefaults {
    version: Option<(String, Pos)>,
    garp_delay: Option<(String, Pos)>,
    garp_repeat: Option<(String, Pos)>,
    garp_refresh: Option<(String, Pos)>,
    script_user: Option<(String, Pos)>,
}

struct TrackFile {
    path: String,
    weight: i64,
}

/// keepalived name -> value, for the few scripts, instances and track files a config names.
/// A linear search over a handful of entries costs nothing here, while std's `HashMap`
/// (hashbrown, SipHash and its random seed) cost about 8 KB of every binary with `import`.
struct ByName<V>(Vec<(String, V)>);

impl<V> ByName<V> {
    fn new() -> Self {
        Self(Vec::new())
    }

    /// Sets the value of `name`, replacing an earlier one (a later definition wins).
    fn insert(&mut self, name: String, value: V) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 = value,
            None => self.0.push((name, value)),
        }
    }

    fn get(&self, name: &str) -> Option<&V> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

struct Mapper<'n> {
    notes: &'n mut Vec<Note>,
    out: Vec<OutSection>,
    /// Section names already given out (each output section name is unique).
    used_names: Vec<String>,
    defaults: GlobalDefaults,
    /// keepalived name -> minivrrp section name.
    scripts: ByName<String>,
    instances: ByName<String>,
    track_files: ByName<TrackFile>,
    /// `interface_up_down_delays`: interface -> (down, up, statement, used by an instance).
    link_delays: Vec<(String, String, String, Node, bool)>,
    /// The priorities keepalived gives the next IPv4 / IPv6 rule without one.
    next_rule_priority: (u32, u32),
}

/// keepalived numbers rules without a priority from here down, per family, in file order
/// (vrrp_iprule.c `RULE_START_PRIORITY`).
const KEEPALIVED_RULE_START_PRIORITY: u32 = 16384;

/// Whether `v` is a decimal number equal to zero ("0", "0.000", "-0", "0e3"), the forms
/// of keepalived's seconds values. Written out instead of `v.parse::<f64>()`, which links
/// std's float parser and its tables (about 16 KB) for this one comparison.
fn is_zero_number(v: &str) -> bool {
    let v = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (mantissa, exponent) = match v.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (v, None),
    };
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let dots = mantissa.bytes().filter(|&b| b == b'.').count();
    digits > 0
        && digits + dots == mantissa.len()
        && dots <= 1
        && mantissa.bytes().all(|b| b == b'0' || b == b'.')
        && exponent.is_none_or(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()))
}

/// A UCI section name (`[A-Za-z0-9_]+`) for a keepalived name, unique in the output.
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() {
        "unnamed".into()
    } else {
        s
    }
}

fn join(args: &[String]) -> String {
    args.join(" ")
}

impl Mapper<'_> {
    fn note(&mut self, n: &Node, message: impl Into<String>) {
        self.notes.push(Note::new(&n.pos, &n.key, message));
    }

    fn unique(&mut self, want: &str) -> String {
        let base = sanitize(want);
        let mut name = base.clone();
        let mut i = 2;
        while self.used_names.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.used_names.push(name.clone());
        name
    }

    /// The statement's single argument, or a note.
    fn one_arg<'a>(&mut self, n: &'a Node) -> Option<&'a str> {
        match n.args.as_slice() {
            [a] => Some(a.as_str()),
            [] => {
                self.note(n, "needs a value; ignored");
                None
            }
            [a, rest @ ..] => {
                self.note(
                    n,
                    format!("extra words after '{a}' ignored: {}", join(rest)),
                );
                Some(a.as_str())
            }
        }
    }

    /// Sets `opt` when minivrrp's schema accepts the value, else notes why it was left out.
    fn put(&mut self, sec: &mut OutSection, opt: &'static str, value: &str, n: &Node) -> bool {
        match check_value(sec.stype, opt, value) {
            Ok(()) => {
                sec.set(opt, value, &n.pos, &n.key);
                true
            }
            Err(e) => {
                self.note(n, format!("'{value}': {e}; left out"));
                false
            }
        }
    }

    /// A command statement (`notify_up "/bin/x arg"`): keepalived's optional user and group
    /// after the quoted command are noted, not carried (minivrrp runs commands as
    /// `script_user`).
    fn command(&mut self, sec: &mut OutSection, opt: &'static str, n: &Node) {
        match n.args.as_slice() {
            [] => self.note(n, "needs a command; ignored"),
            [cmd, user @ ..] => {
                if !user.is_empty() {
                    self.note(
                        n,
                        format!(
                            "user '{}' is not carried (commands run as script_user)",
                            join(user)
                        ),
                    );
                }
                self.put(sec, opt, cmd, n);
            }
        }
    }

    /// keepalived 2.4's `auth_hmac` block, keyword for keyword (`key ID VALUE` becomes a
    /// `list auth_hmac_key 'ID VALUE'`). keepalived drops `authentication` beside it, so the
    /// import does too, with a note.
    fn auth_hmac(&mut self, sec: &mut OutSection, block: &Node) {
        for k in block.children() {
            let opt = match k.key.as_str() {
                "key" => {
                    match k.args.as_slice() {
                        [id, value] => {
                            self.put(sec, "auth_hmac_key", &format!("{id} {value}"), k);
                        }
                        _ => self.note(k, "needs an ID and a value; ignored"),
                    }
                    continue;
                }
                "active_key" => "auth_hmac_active_key",
                "mode" => "auth_hmac_mode",
                "anti_replay" => "auth_hmac_anti_replay",
                "time_window" => "auth_hmac_time_window",
                _ => {
                    self.unknown(k);
                    continue;
                }
            };
            self.put_arg(sec, opt, k);
        }
        if sec.get("auth_hmac_key").is_some() && sec.get("auth_type").is_some() {
            sec.remove("auth_type");
            sec.remove("auth_pass");
            self.note(
                block,
                "authentication dropped: auth_hmac replaces it (keepalived does the same)",
            );
        }
    }

    fn put_arg(&mut self, sec: &mut OutSection, opt: &'static str, n: &Node) {
        if let Some(v) = self.one_arg(n) {
            self.put(sec, opt, v, n);
        }
    }

    fn bool_arg(&mut self, n: &Node) -> Option<bool> {
        match n.args.first().map(|s| s.to_ascii_lowercase()).as_deref() {
            None => Some(true),
            Some("true" | "yes" | "on" | "1") => Some(true),
            Some("false" | "no" | "off" | "0") => Some(false),
            Some(other) => {
                self.note(n, format!("'{other}' is not a boolean; ignored"));
                None
            }
        }
    }

    fn unsupported(&mut self, n: &Node) {
        self.note(n, UNSUPPORTED);
    }

    fn unknown(&mut self, n: &Node) {
        self.note(n, "unknown keyword; ignored");
    }

    // ---- global_defs -------------------------------------------------------------------

    fn global_defs(&mut self, n: &Node, globals: &mut OutSection) {
        for c in n.children() {
            match c.key.as_str() {
                "router_id" => self.put_arg(globals, "router_id", c),
                "vrrp_version" => {
                    if let Some(v) = self.one_arg(c) {
                        self.defaults.version = Some((v.to_string(), c.pos.clone()));
                    }
                }
                "vrrp_garp_master_delay" => {
                    self.defaults.garp_delay = self.one_arg(c).map(|v| (v.into(), c.pos.clone()))
                }
                "vrrp_garp_master_repeat" => {
                    self.defaults.garp_repeat = self.one_arg(c).map(|v| (v.into(), c.pos.clone()))
                }
                "vrrp_garp_master_refresh" => {
                    self.defaults.garp_refresh = self.one_arg(c).map(|v| (v.into(), c.pos.clone()))
                }
                "script_user" => {
                    if let Some(u) = c.args.first() {
                        if c.args.len() > 1 {
                            self.note(
                                c,
                                "the group is not carried (scripts run with the user's own group)",
                            );
                        }
                        self.defaults.script_user = Some((u.clone(), c.pos.clone()));
                    } else {
                        self.note(c, "needs a user name; ignored");
                    }
                }
                "notification_email" => {
                    // `notification_email { a@x b@x }`: each address is a statement of the
                    // block (and its words, when several share a line).
                    for item in c.children() {
                        for addr in core::iter::once(&item.key).chain(&item.args) {
                            self.put(globals, "notification_email", addr, item);
                        }
                    }
                    for addr in &c.args {
                        self.put(globals, "notification_email", addr, c);
                    }
                }
                "notification_email_from" => self.put_arg(globals, "notification_email_from", c),
                "smtp_server" => match c.args.as_slice() {
                    [addr] => {
                        self.put(globals, "smtp_server", addr, c);
                    }
                    [addr, port] => {
                        let v = if addr.contains(':') {
                            format!("[{addr}]:{port}")
                        } else {
                            format!("{addr}:{port}")
                        };
                        self.put(globals, "smtp_server", &v, c);
                    }
                    _ => self.note(c, "needs an address and an optional port; ignored"),
                },
                "smtp_connect_timeout" => self.put_arg(globals, "smtp_connect_timeout", c),
                "smtp_alert" | "smtp_alert_vrrp" => {
                    if let Some(b) = self.bool_arg(c) {
                        self.put(globals, "smtp_alert", if b { "1" } else { "0" }, c);
                    }
                }
                "smtp_helo_name" => {
                    self.note(c, "minivrrp announces its router_id in HELO; ignored")
                }
                "smtp_alert_checker" => self.note(c, CHECKER_EMAIL),
                "enable_script_security" => self.note(
                    c,
                    "minivrrp does not refuse scripts writable by other users; ignored",
                ),
                "vrrp_startup_delay" => self.put_arg(globals, "startup_delay", c),
                // keepalived's VRRP process at SCHED_RR: minivrrp's default class.
                "vrrp_rt_priority" => self.put_arg(globals, "sched_priority", c),
                "vrrp_no_swap" => self.note(
                    c,
                    "minivrrp locks its memory by default (globals lock_memory)",
                ),
                _ => self.unsupported(c),
            }
        }
    }

    // ---- vrrp_script / vrrp_track_file --------------------------------------------------

    fn vrrp_script(&mut self, n: &Node) {
        let Some(kname) = n.args.first() else {
            self.note(n, "needs a name; ignored");
            return;
        };
        let name = self.unique(kname);
        self.scripts.insert(kname.clone(), name.clone());
        let mut sec = OutSection::new("script", &name, &n.pos, &n.key);
        let mut user_set = false;
        for c in n.children() {
            match c.key.as_str() {
                "script" => {
                    if c.args.is_empty() {
                        self.note(c, "needs a command; ignored");
                    } else {
                        self.put(&mut sec, "command", &join(&c.args), c);
                    }
                }
                "interval" => self.put_arg(&mut sec, "interval", c),
                "timeout" => self.put_arg(&mut sec, "timeout", c),
                "weight" => {
                    if c.args.len() > 1 {
                        self.note(c, format!("'{}' is not carried", join(&c.args[1..])));
                    }
                    if let Some(w) = c.args.first() {
                        self.put(&mut sec, "weight", w, c);
                    }
                }
                "rise" => self.put_arg(&mut sec, "rise", c),
                "fall" => self.put_arg(&mut sec, "fall", c),
                "user" => {
                    if c.args.len() > 1 {
                        self.note(
                            c,
                            "the group is not carried (the script runs with the user's own group)",
                        );
                    }
                    if let Some(u) = c.args.first() {
                        user_set = self.put(&mut sec, "user", u, c);
                    }
                }
                "init_fail" => self.note(c, "minivrrp starts every script as not yet run; ignored"),
                _ => self.unknown(c),
            }
        }
        if !user_set {
            if let Some((u, pos)) = self.defaults.script_user.clone() {
                sec.set("user", u, &pos, "script_user");
            }
        }
        if sec.get("command").is_none() {
            self.note(n, "has no script; the script section will not load");
        }
        self.out.push(sec);
    }

    fn vrrp_track_file(&mut self, n: &Node) {
        let Some(kname) = n.args.first() else {
            self.note(n, "needs a name; ignored");
            return;
        };
        let mut path = None;
        let mut weight = 1;
        for c in n.children() {
            match c.key.as_str() {
                "file" => path = self.one_arg(c).map(str::to_string),
                "weight" => match c.args.first().and_then(|w| w.parse().ok()) {
                    Some(w) => {
                        weight = w;
                        if c.args.len() > 1 {
                            self.note(c, format!("'{}' is not carried", join(&c.args[1..])));
                        }
                    }
                    None => self.note(c, "needs an integer weight; ignored"),
                },
                _ => self.unsupported(c),
            }
        }
        match path {
            Some(path) => {
                self.track_files
                    .insert(kname.clone(), TrackFile { path, weight });
            }
            None => self.note(n, "has no file; ignored"),
        }
    }

    fn interface_up_down_delays(&mut self, n: &Node) {
        for e in n.children() {
            let (down, up) = match e.args.as_slice() {
                [d] => (d.clone(), d.clone()),
                [d, u] => (d.clone(), u.clone()),
                _ => {
                    self.notes.push(Note::new(
                        &e.pos,
                        &n.key,
                        format!("{}: needs DOWN_DELAY [UP_DELAY]; ignored", e.key),
                    ));
                    continue;
                }
            };
            self.link_delays
                .push((e.key.clone(), down, up, e.clone(), false));
        }
    }

    // ---- vrrp_instance -------------------------------------------------------------------

    /// `NAME [weight W [reverse]]` entries of a track_* block, as `NAME weight W` items.
    fn tracked(&mut self, c: &Node, e: &Node) -> Option<(String, Option<String>)> {
        let name = e.key.clone();
        let mut weight = None;
        let mut rest = e.args.iter();
        while let Some(a) = rest.next() {
            match a.as_str() {
                "weight" => match rest.next() {
                    Some(w) => weight = Some(w.clone()),
                    None => {
                        self.notes.push(Note::new(
                            &e.pos,
                            &c.key,
                            format!("{name}: weight needs a value; ignored"),
                        ));
                    }
                },
                other => {
                    self.notes.push(Note::new(
                        &e.pos,
                        &c.key,
                        format!("{name}: '{other}' is not carried"),
                    ));
                }
            }
        }
        Some((name, weight))
    }

    fn track_item(
        &mut self,
        sec: &mut OutSection,
        opt: &'static str,
        c: &Node,
        e: &Node,
        name: &str,
        weight: Option<String>,
    ) {
        let value = match weight {
            Some(w) => format!("{name} weight {w}"),
            None => name.to_string(),
        };
        match check_value("instance", opt, &value) {
            Ok(()) => sec.set(opt, value, &e.pos, &c.key),
            Err(err) => self.notes.push(Note::new(
                &e.pos,
                &c.key,
                format!("'{value}': {err}; left out"),
            )),
        }
    }

    fn vip(
        &mut self,
        sec: &mut OutSection,
        iface: Option<&str>,
        c: &Node,
        e: &Node,
        family: &mut Option<bool>,
        opt: &'static str,
    ) {
        let addr = &e.key;
        let ip_part = addr.split('/').next().unwrap_or("");
        let Ok(ip) = ip_part.parse::<IpAddr>() else {
            self.notes.push(Note::new(
                &e.pos,
                &c.key,
                format!("'{addr}' is not an address; ignored"),
            ));
            return;
        };
        let v4 = ip.is_ipv4();
        match family {
            // Excluded addresses are not advertised: any family.
            _ if opt == "vip_excluded" => {}
            None => *family = Some(v4),
            Some(f) if *f != v4 => {
                self.notes.push(Note::new(
                    &e.pos,
                    &c.key,
                    format!("{addr}: other address family than the instance's first VIP; left out, as keepalived ignores it (virtual_ipaddress_excluded installs it without advertising)"),
                ));
                return;
            }
            Some(_) => {}
        }
        let mut spec = addr.clone();
        let mut args = e.args.iter();
        while let Some(a) = args.next() {
            if matches!(
                a.as_str(),
                "no_track" | "home" | "nodad" | "noprefixroute" | "autojoin"
            ) {
                self.notes.push(Note::new(
                    &e.pos,
                    &c.key,
                    format!("{addr}: '{a}' is not carried"),
                ));
                continue;
            }
            let value = args.next();
            match (a.as_str(), value) {
                ("dev", Some(d)) if Some(d.as_str()) == iface => {}
                ("scope", Some(s)) if s == "global" => {}
                (k @ ("dev" | "label" | "scope"), Some(v)) => {
                    spec.push_str(&format!(" {k} {v}"));
                }
                (k @ ("brd" | "broadcast" | "preferred_lft"), Some(v)) => self.notes.push(
                    Note::new(&e.pos, &c.key, format!("{addr}: {k} {v} is not carried")),
                ),
                (k, _) => {
                    self.notes.push(Note::new(
                        &e.pos,
                        &c.key,
                        format!("{addr}: '{k}' is not carried"),
                    ));
                    if value.is_none() {
                        break;
                    }
                }
            }
        }
        let same = |v: &str| v.split('/').next().and_then(|a| a.parse::<IpAddr>().ok()) == Some(ip);
        if sec
            .options
            .iter()
            .any(|o| (o.name == "vip" || o.name == "vip_excluded") && same(&o.value))
        {
            self.notes.push(Note::new(
                &e.pos,
                &c.key,
                format!("{addr}: listed twice; carried once"),
            ));
            return;
        }
        match check_value("instance", opt, &spec) {
            Ok(()) => sec.set(opt, spec, &e.pos, &c.key),
            Err(err) => self.notes.push(Note::new(
                &e.pos,
                &c.key,
                format!("'{spec}': {err}; left out"),
            )),
        }
    }

    fn vrrp_instance(&mut self, n: &Node) {
        let kname = match n.args.first() {
            Some(a) => a.clone(),
            None => {
                self.note(n, "needs a name; named after its position");
                format!("vi{}", self.instances.len() + 1)
            }
        };
        let name = self.unique(&kname);
        self.instances.insert(kname, name.clone());
        let mut sec = OutSection::new("instance", &name, &n.pos, &n.key);
        let iface = n
            .children()
            .iter()
            .find(|c| c.key == "interface")
            .and_then(|c| c.args.first().cloned());
        let mut state: Option<&Node> = None;
        let mut nopreempt: Option<&Node> = None;
        let mut preempt_delay: Option<&Node> = None;
        let mut family = None;
        let mut auth: Vec<&Node> = Vec::new();
        let mut auth_hmac: Option<&Node> = None;
        for c in n.children() {
            match c.key.as_str() {
                "interface" => self.put_arg(&mut sec, "interface", c),
                "virtual_router_id" => self.put_arg(&mut sec, "vrid", c),
                "priority" => self.put_arg(&mut sec, "priority", c),
                "advert_int" => self.put_arg(&mut sec, "advert_int", c),
                "version" => self.put_arg(&mut sec, "version", c),
                "state" => {
                    if let Some(s) = self.one_arg(c) {
                        if self.put(&mut sec, "state", s, c) {
                            state = Some(c);
                        }
                    }
                }
                "nopreempt" => nopreempt = Some(c),
                "preempt" => nopreempt = None,
                "preempt_delay" => {
                    self.put_arg(&mut sec, "preempt_delay", c);
                    preempt_delay = Some(c);
                }
                "authentication" => auth.extend(c.children()),
                "auth_hmac" => auth_hmac = Some(c),
                "virtual_ipaddress" => {
                    for e in c.children() {
                        self.vip(&mut sec, iface.as_deref(), c, e, &mut family, "vip");
                    }
                }
                "virtual_ipaddress_excluded" => {
                    for e in c.children() {
                        let mut any = None;
                        self.vip(&mut sec, iface.as_deref(), c, e, &mut any, "vip_excluded");
                    }
                }
                "unicast_src_ip" => self.put_arg(&mut sec, "unicast_src", c),
                "unicast_peer" => {
                    for e in c.children() {
                        if !e.args.is_empty() {
                            self.notes.push(Note::new(
                                &e.pos,
                                &c.key,
                                format!("{}: '{}' is not carried", e.key, join(&e.args)),
                            ));
                        }
                        match check_value("instance", "unicast_peer", &e.key) {
                            Ok(()) => sec.set("unicast_peer", e.key.clone(), &e.pos, &c.key),
                            Err(err) => self.notes.push(Note::new(
                                &e.pos,
                                &c.key,
                                format!("'{}': {err}; left out", e.key),
                            )),
                        }
                    }
                }
                "track_interface" => {
                    for e in c.children() {
                        if let Some((name, w)) = self.tracked(c, e) {
                            let w = w.filter(|w| w != "0");
                            self.track_item(&mut sec, "track_interface", c, e, &name, w);
                        }
                    }
                }
                "track_script" => {
                    for e in c.children() {
                        if let Some((kname, w)) = self.tracked(c, e) {
                            match self.scripts.get(&kname).cloned() {
                                Some(name) => {
                                    self.track_item(&mut sec, "track_script", c, e, &name, w)
                                }
                                None => self.notes.push(Note::new(
                                    &e.pos,
                                    &c.key,
                                    format!("{kname}: no vrrp_script of that name; ignored"),
                                )),
                            }
                        }
                    }
                }
                "track_file" => {
                    for e in c.children() {
                        if let Some((kname, w)) = self.tracked(c, e) {
                            match self
                                .track_files
                                .get(&kname)
                                .map(|t| (t.path.clone(), t.weight))
                            {
                                Some((path, tw)) => {
                                    let w = w.unwrap_or_else(|| tw.to_string());
                                    self.track_item(&mut sec, "track_file", c, e, &path, Some(w));
                                }
                                None => self.notes.push(Note::new(
                                    &e.pos,
                                    &c.key,
                                    format!("{kname}: no vrrp_track_file of that name; ignored"),
                                )),
                            }
                        }
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                    let opt = match c.key.as_str() {
                        "notify_master" => "notify_master",
                        "notify_backup" => "notify_backup",
                        "notify_fault" => "notify_fault",
                        "notify_stop" => "notify_stop",
                        _ => "notify",
                    };
                    if c.args.is_empty() {
                        self.note(c, "needs a command; ignored");
                    } else {
                        self.put(&mut sec, opt, &join(&c.args), c);
                    }
                }
                "garp_master_delay" => self.put_arg(&mut sec, "garp_delay", c),
                "garp_master_repeat" => self.put_arg(&mut sec, "garp_repeat", c),
                "garp_master_refresh" => self.put_arg(&mut sec, "garp_refresh", c),
                "use_vmac" => {
                    sec.set("use_vmac", "1", &c.pos, &c.key);
                    if let Some(v) = c.args.first() {
                        self.put(&mut sec, "vmac_name", v, c);
                    }
                }
                // Accept_Mode is not a minivrrp option: as master, Linux delivers traffic to
                // the VIPs either way (what `accept` asks for; `no_accept` would need a
                // firewall rule set).
                "accept" | "no_accept" => self.note(
                    c,
                    "Accept_Mode is not supported by minivrrp (as master, traffic to the VIPs is accepted); ignored",
                ),
                "smtp_alert" => {
                    if let Some(b) = self.bool_arg(c) {
                        self.put(&mut sec, "smtp_alert", if b { "1" } else { "0" }, c);
                    }
                }
                "virtual_routes" => {
                    for e in c.children() {
                        self.virtual_route(&mut sec, c, e);
                    }
                }
                "virtual_rules" => {
                    for e in c.children() {
                        self.virtual_rule(&mut sec, c, e);
                    }
                }
                "track_process"
                | "track_bfd"
                | "mcast_src_ip"
                | "dont_track_primary"
                | "native_ipv6"
                | "strict_mode"
                | "vmac_xmit_base"
                | "garp_master_refresh_repeat"
                | "lvs_sync_daemon_interface"
                | "debug"
                | "kernel_rx_buf_size"
                | "skip_check_adv_addr"
                | "check_unicast_src"
                | "unicast_ttl"
                | "down_timer_adverts"
                | "notify_deleted"
                | "notify_master_rx_lower_pri" => self.unsupported(c),
                _ => self.unknown(c),
            }
        }
        for a in auth {
            match a.key.as_str() {
                "auth_type" => match a.args.first().map(|s| s.to_ascii_uppercase()).as_deref() {
                    Some("PASS") => sec.set("auth_type", "pass", &a.pos, &a.key),
                    Some("AH") => self.note(a, "IPsec AH authentication is not supported by minivrrp; adverts are sent without authentication"),
                    _ => self.note(a, "needs PASS or AH; ignored"),
                },
                "auth_pass" => {
                    if let Some(p) = self.one_arg(a) {
                        // keepalived sends the first 8 characters (RFC 3768 5.3.6.1's field).
                        let p: String = p.chars().take(8).collect();
                        self.put(&mut sec, "auth_pass", &p, a);
                    }
                }
                _ => self.unknown(a),
            }
        }
        if sec.get("auth_type").is_none() {
            sec.remove("auth_pass");
        }
        if let Some(h) = auth_hmac {
            self.auth_hmac(&mut sec, h);
        }

        // keepalived derives a missing priority from the state and a missing state from the
        // priority (vrrp_complete_instance).
        let is_master_state = sec.get("state") == Some("MASTER");
        if sec.get("priority").is_none() && is_master_state {
            if let Some(s) = state {
                sec.set("priority", "255", &s.pos, "state");
            }
        }
        let owner = sec.get("priority") == Some("255");
        if sec.get("state").is_none() && owner {
            sec.set("state", "MASTER", &n.pos, &n.key);
        }
        let master = sec.get("state") == Some("MASTER") || owner;
        // keepalived clears nopreempt and preempt_delay for a router that starts as MASTER
        // or owns the addresses, and runs it preempting.
        if master {
            if preempt_delay.is_some() {
                sec.remove("preempt_delay");
            }
        } else if let Some(np) = nopreempt {
            sec.set("preempt", "0", &np.pos, &np.key);
        }

        // Version: the instance's, else global_defs' vrrp_version, else 3 for IPv6.
        if sec.get("version").is_none() {
            if let Some((v, pos)) = self.defaults.version.clone() {
                if check_value("instance", "version", &v).is_ok() {
                    sec.set("version", v, &pos, "vrrp_version");
                } else {
                    self.notes.push(Note::new(
                        &pos,
                        "vrrp_version",
                        format!("'{v}' is not 2 or 3; ignored"),
                    ));
                }
            } else if family == Some(false) {
                sec.set("version", "3", &n.pos, &n.key);
            }
        }
        // keepalived ignores authentication for version 3 (RFC 5798 has none).
        if sec.get("version") == Some("3") {
            sec.remove("auth_type");
            sec.remove("auth_pass");
        }
        if let Some(ifname) = iface.as_deref() {
            for k in 0..self.link_delays.len() {
                if self.link_delays[k].0 != ifname {
                    continue;
                }
                self.link_delays[k].4 = true;
                let (_, down, up, e, _) = self.link_delays[k].clone();
                for (opt, v) in [("link_down_delay", down), ("link_up_delay", up)] {
                    if is_zero_number(&v) {
                        continue;
                    }
                    match check_value("instance", opt, &v) {
                        Ok(()) => sec.set(opt, v, &e.pos, "interface_up_down_delays"),
                        Err(err) => self.notes.push(Note::new(
                            &e.pos,
                            "interface_up_down_delays",
                            format!("{}: '{v}': {err}; left out", e.key),
                        )),
                    }
                }
            }
        }
        for (opt, value) in [
            ("garp_delay", self.defaults.garp_delay.clone()),
            ("garp_repeat", self.defaults.garp_repeat.clone()),
            ("garp_refresh", self.defaults.garp_refresh.clone()),
        ] {
            if let Some((v, pos)) = value {
                if sec.get(opt).is_none() {
                    let kw = format!("vrrp_garp_master_{}", opt.trim_start_matches("garp_"));
                    match check_value("instance", opt, &v) {
                        Ok(()) => sec.set(opt, v, &pos, &kw),
                        Err(e) => {
                            self.notes
                                .push(Note::new(&pos, &kw, format!("'{v}': {e}; left out")))
                        }
                    }
                }
            }
        }
        self.out.push(sec);
    }

    /// One line of `virtual_routes`: `[src IP] [to] DEST via|gw GW [or GW2] [dev IF]
    /// [metric N] [table T] ...` becomes a `route` in `ip route` words; a route type other
    /// than unicast (blackhole...) is left out, a word minivrrp does not take is noted.
    fn virtual_route(&mut self, sec: &mut OutSection, c: &Node, e: &Node) {
        let words: Vec<&str> = core::iter::once(e.key.as_str())
            .chain(e.args.iter().map(String::as_str))
            .collect();
        let mut note = |m: String| self.notes.push(Note::new(&e.pos, &c.key, m));
        let mut k = 0;
        let mut dest = None;
        let mut spec = String::new();
        while k < words.len() {
            let w = words[k];
            let v = words.get(k + 1).copied();
            k += 2;
            match (w, v) {
                ("unicast", _) | ("to", _) if dest.is_none() => k -= 1,
                (t @ ("blackhole" | "unreachable" | "prohibit" | "throw"), _) if dest.is_none() => {
                    note(format!(
                        "{} route '{}' is not supported by minivrrp (unicast routes only); left out",
                        t,
                        words.join(" ")
                    ));
                    return;
                }
                ("src", Some(a)) if dest.is_none() => {
                    note(format!("{}: src {a} is not carried", words.join(" ")))
                }
                (d, _) if dest.is_none() => {
                    k -= 1;
                    dest = Some(d);
                    spec.push_str(if d == "0.0.0.0/0" || d == "::/0" {
                        "default"
                    } else {
                        d
                    });
                }
                ("via" | "gw", Some(g)) => spec.push_str(&format!(" via {g}")),
                ("dev", Some(d)) => spec.push_str(&format!(" dev {d}")),
                ("metric" | "preference" | "priority", Some(m)) => {
                    spec.push_str(&format!(" metric {m}"))
                }
                ("table", Some(t)) => spec.push_str(&format!(" table {t}")),
                ("no_track", _) => {
                    k -= 1;
                    note(format!("{}: no_track is not carried", words.join(" ")));
                }
                (w, Some(v)) => note(format!("{}: '{w} {v}' is not carried", words.join(" "))),
                (w, None) => note(format!("{}: '{w}' is not carried", words.join(" "))),
            }
        }
        match check_value("instance", "route", &spec) {
            Ok(()) => sec.set("route", spec, &e.pos, &c.key),
            Err(err) => self.notes.push(Note::new(
                &e.pos,
                &c.key,
                format!("'{}': {err}; left out", words.join(" ")),
            )),
        }
    }

    /// One line of `virtual_rules`: `[inet|inet6] [not] [from P] [to P] [iif|dev IF] [oif IF]
    /// [fwmark M[/K]] [priority|preference|order N] table|lookup T [no_track]` becomes a
    /// `rule`. A rule without a priority gets the one keepalived gives it (16384 counting
    /// down, per family); without `table`, or with a word minivrrp does not take (another
    /// action, `tos`, `uidrange`...), the rule is left out: carrying it without that word
    /// would match other traffic or do something else with it.
    fn virtual_rule(&mut self, sec: &mut OutSection, c: &Node, e: &Node) {
        let words: Vec<&str> = core::iter::once(e.key.as_str())
            .chain(e.args.iter().map(String::as_str))
            .collect();
        let line = words.join(" ");
        let mut spec: Vec<String> = Vec::new();
        let (mut ipv6, mut family_given, mut priority, mut table) = (false, false, false, false);
        // keepalived 2.2.7 steps over the word after `inet` / `inet6` and then refuses the
        // rule ("Unknown rule option"): measured, it installs nothing for such a line.
        let mut keepalived_refuses = false;
        let mut k = 0;
        while k < words.len() {
            let w = words[k];
            let v = words.get(k + 1).copied();
            match (w, v) {
                ("not", _) => {
                    spec.push("not".into());
                    k += 1;
                    continue;
                }
                ("inet" | "inet6", _) => {
                    ipv6 = w == "inet6";
                    family_given = true;
                    keepalived_refuses = true;
                    spec.push(w.into());
                    k += 1;
                    continue;
                }
                ("no_track", _) => {
                    self.notes.push(Note::new(
                        &e.pos,
                        &c.key,
                        format!("{line}: no_track is not carried"),
                    ));
                    k += 1;
                    continue;
                }
                ("from" | "to", Some(a)) => {
                    if a.contains(':') {
                        ipv6 = true;
                    }
                    family_given |= a != "all" && a != "any" && a != "default";
                    let a = if matches!(a, "any" | "default") {
                        "all"
                    } else {
                        a
                    };
                    spec.push(format!("{w} {a}"));
                }
                ("iif" | "dev", Some(i)) => spec.push(format!("iif {i}")),
                ("oif", Some(o)) => spec.push(format!("oif {o}")),
                ("fwmark", Some(m)) => spec.push(format!("fwmark {m}")),
                ("priority" | "preference" | "order" | "pref", Some(p)) => {
                    priority = true;
                    spec.push(format!("priority {p}"));
                }
                ("table" | "lookup", Some(t)) => {
                    table = true;
                    spec.push(format!("table {t}"));
                }
                _ => {
                    self.notes.push(Note::new(
                        &e.pos,
                        &c.key,
                        format!("'{line}': '{w}' is not supported by minivrrp rules (table lookups by from/to/iif/oif/fwmark only); left out"),
                    ));
                    return;
                }
            }
            k += 2;
        }
        if !table {
            self.notes.push(Note::new(
                &e.pos,
                &c.key,
                format!(
                    "'{line}': minivrrp rules look up a table, and this one names none; left out"
                ),
            ));
            return;
        }
        // keepalived's family when nothing says: IPv4, whatever the instance's.
        if !family_given {
            spec.insert(0, "inet".into());
        }
        if !priority {
            let next = if ipv6 {
                &mut self.next_rule_priority.1
            } else {
                &mut self.next_rule_priority.0
            };
            spec.push(format!("priority {next}"));
            // A rule keepalived refuses takes no number from the rules after it.
            if !keepalived_refuses {
                *next = next.saturating_sub(1);
            }
        }
        if keepalived_refuses {
            self.notes.push(Note::new(
                &e.pos,
                &c.key,
                format!("'{line}': keepalived 2.2.7 refuses a rule with inet/inet6 (it skips the word after it) and installs nothing; minivrrp installs it as written"),
            ));
        }
        let spec = spec.join(" ");
        match check_value("instance", "rule", &spec) {
            Ok(()) => sec.set("rule", spec, &e.pos, &c.key),
            Err(err) => self.notes.push(Note::new(
                &e.pos,
                &c.key,
                format!("'{line}': {err}; left out"),
            )),
        }
    }

    // ---- vrrp_sync_group -------------------------------------------------------------------

    fn vrrp_sync_group(&mut self, n: &Node) {
        let kname = n.args.first().cloned().unwrap_or_else(|| "group".into());
        let name = self.unique(&kname);
        let mut sec = OutSection::new("sync_group", &name, &n.pos, &n.key);
        for c in n.children() {
            match c.key.as_str() {
                "group" => {
                    for e in c.children() {
                        let mut members = vec![e.key.clone()];
                        members.extend(e.args.iter().cloned());
                        for m in members {
                            match self.instances.get(&m).cloned() {
                                Some(i) => sec.set("member", i, &e.pos, &c.key),
                                None => self.notes.push(Note::new(
                                    &e.pos,
                                    &c.key,
                                    format!("{m}: no vrrp_instance of that name; ignored"),
                                )),
                            }
                        }
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify" => {
                    let opt = match c.key.as_str() {
                        "notify_master" => "notify_master",
                        "notify_backup" => "notify_backup",
                        "notify_fault" => "notify_fault",
                        _ => "notify",
                    };
                    if c.args.is_empty() {
                        self.note(c, "needs a command; ignored");
                    } else {
                        self.put(&mut sec, opt, &join(&c.args), c);
                    }
                }
                "smtp_alert" => self.note(
                    c,
                    "a sync group sends no alerts of its own: set smtp_alert on its instances; ignored",
                ),
                "track_script" | "track_interface" | "track_file" => {
                    for e in c.children() {
                        self.group_tracker(&mut sec, c, e);
                    }
                }
                "track_process" | "track_bfd" => self.unsupported(c),
                "global_tracking" | "sync_group_tracking_weight" | "notify_stop" => {
                    self.unsupported(c)
                }
                _ => self.unknown(c),
            }
        }
        if sec.get("member").is_none() {
            self.note(n, "has no member instances; ignored");
            return;
        }
        self.out.push(sec);
    }

    /// A tracker of a sync group: minivrrp's only faults the group, as keepalived's does
    /// without `sync_group_tracking_weight` (a weight there is ignored, with a warning).
    fn group_tracker(&mut self, sec: &mut OutSection, c: &Node, e: &Node) {
        let Some((kname, w)) = self.tracked(c, e) else {
            return;
        };
        if let Some(w) = w.filter(|w| w != "0") {
            self.notes.push(Note::new(
                &e.pos,
                &c.key,
                format!("{kname}: weight {w} is not carried (a sync group's tracker only faults the group, as in keepalived without sync_group_tracking_weight)"),
            ));
        }
        let (opt, value) = match c.key.as_str() {
            "track_script" => match self.scripts.get(&kname).cloned() {
                Some(name) => ("track_script", name),
                None => {
                    let m = format!("{kname}: no vrrp_script of that name; ignored");
                    self.notes.push(Note::new(&e.pos, &c.key, m));
                    return;
                }
            },
            "track_file" => match self.track_files.get(&kname) {
                Some(t) => ("track_file", t.path.clone()),
                None => {
                    let m = format!("{kname}: no vrrp_track_file of that name; ignored");
                    self.notes.push(Note::new(&e.pos, &c.key, m));
                    return;
                }
            },
            _ => ("track_interface", kname),
        };
        match check_value("sync_group", opt, &value) {
            Ok(()) => sec.set(opt, value, &e.pos, &c.key),
            Err(err) => self.notes.push(Note::new(
                &e.pos,
                &c.key,
                format!("'{value}': {err}; left out"),
            )),
        }
    }

    // ---- virtual_server / real_server ------------------------------------------------------

    fn virtual_server(&mut self, n: &Node) {
        let mut sec;
        match n.args.as_slice() {
            [kw, mark] if kw == "fwmark" => {
                let name = self.unique(&format!("vs_fwmark_{mark}"));
                sec = OutSection::new("virtual_server", &name, &n.pos, &n.key);
                self.put(&mut sec, "fwmark", mark, n);
            }
            [kw, ..] if kw == "group" => {
                self.note(
                    n,
                    "virtual_server_group is not supported by minivrrp; ignored",
                );
                return;
            }
            [addr, rest @ ..] if rest.len() <= 1 => {
                let port = rest.first().map(String::as_str);
                let name = self.unique(&format!("vs_{addr}_{}", port.unwrap_or("0")));
                sec = OutSection::new("virtual_server", &name, &n.pos, &n.key);
                self.put(&mut sec, "address", addr, n);
                match port {
                    Some(p) => {
                        self.put(&mut sec, "port", p, n);
                    }
                    None => self.note(
                        n,
                        "a virtual server without a port (all ports) is not supported by minivrrp",
                    ),
                }
            }
            _ => {
                self.note(n, "needs ADDRESS PORT or fwmark N; ignored");
                return;
            }
        }
        let vs_name = sec.name.clone();
        let mut delay_loop: Option<(String, Pos)> = None;
        let mut protocol_set = sec.get("fwmark").is_some();
        let mut checker_defaults: Vec<&Node> = Vec::new();
        let mut vhost: Option<&Node> = None;
        let mut inhibit: Option<&Node> = None;
        let mut reals: Vec<&Node> = Vec::new();
        for c in n.children() {
            match c.key.as_str() {
                "delay_loop" => {
                    delay_loop = self.one_arg(c).map(|v| (v.to_string(), c.pos.clone()))
                }
                "lb_algo" | "lvs_sched" => self.put_arg(&mut sec, "scheduler", c),
                "lb_kind" | "lvs_method" => {
                    if let Some(v) = c.args.first() {
                        if c.args.len() > 1 {
                            self.note(c, format!("'{}' is not carried", join(&c.args[1..])));
                        }
                        self.put(&mut sec, "forwarding", &v.to_ascii_lowercase(), c);
                    }
                }
                "protocol" => {
                    if let Some(v) = self.one_arg(c) {
                        protocol_set |= self.put(&mut sec, "protocol", &v.to_ascii_lowercase(), c);
                    }
                }
                "persistence_timeout" => {
                    // Without a value keepalived uses 6 minutes.
                    let v = c.args.first().map_or("360", String::as_str);
                    self.put(&mut sec, "persistence_timeout", v, c);
                }
                "persistence_granularity" => self.put_arg(&mut sec, "persistence_netmask", c),
                "quorum" => self.put_arg(&mut sec, "quorum", c),
                "quorum_up" | "quorum_down" => {
                    let opt = if c.key == "quorum_up" {
                        "quorum_up"
                    } else {
                        "quorum_down"
                    };
                    self.command(&mut sec, opt, c);
                }
                "hysteresis" => self.put_arg(&mut sec, "hysteresis", c),
                "sorry_server" => match c.args.as_slice() {
                    [a] => {
                        self.put(&mut sec, "sorry_server", a, c);
                    }
                    [a, p] => {
                        let hp = if a.contains(':') {
                            format!("[{a}]:{p}")
                        } else {
                            format!("{a}:{p}")
                        };
                        self.put(&mut sec, "sorry_server", &hp, c);
                    }
                    _ => self.note(c, "needs ADDRESS [PORT]; ignored"),
                },
                "virtualhost" => vhost = Some(c),
                "inhibit_on_failure" => inhibit = Some(c),
                "connect_timeout" | "retry" | "nb_get_retry" | "delay_before_retry" => {
                    checker_defaults.push(c)
                }
                "real_server" => reals.push(c),
                "smtp_alert" => self.note(c, CHECKER_EMAIL),
                _ => self.unsupported(c),
            }
        }
        if !protocol_set {
            // keepalived 2.x: "no protocol set - defaulting to UDP" (the kernel's 0 is UDP).
            sec.set("protocol", "udp", &n.pos, &n.key);
        }
        self.out.push(sec);
        for (i, r) in reals.into_iter().enumerate() {
            self.real_server(
                &vs_name,
                i + 1,
                r,
                &delay_loop,
                &checker_defaults,
                vhost,
                inhibit,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn real_server(
        &mut self,
        vs: &str,
        index: usize,
        n: &Node,
        vs_delay_loop: &Option<(String, Pos)>,
        vs_checker: &[&Node],
        vs_vhost: Option<&Node>,
        vs_inhibit: Option<&Node>,
    ) {
        let name = self.unique(&format!("{vs}_rs{index}"));
        let mut sec = OutSection::new("real_server", &name, &n.pos, &n.key);
        sec.set("virtual_server", vs, &n.pos, &n.key);
        match n.args.as_slice() {
            [a] => {
                self.put(&mut sec, "address", a, n);
            }
            [a, p] => {
                self.put(&mut sec, "address", a, n);
                self.put(&mut sec, "port", p, n);
            }
            _ => self.note(n, "needs ADDRESS [PORT]"),
        }
        if let Some(i) = vs_inhibit {
            if self.bool_arg(i) == Some(true) {
                sec.set("inhibit_on_failure", "1", &i.pos, &i.key);
            }
        }
        let mut delay_loop = vs_delay_loop.clone();
        let mut checker_defaults: Vec<&Node> = vs_checker.to_vec();
        let mut vhost = vs_vhost;
        let mut checkers: Vec<&Node> = Vec::new();
        for c in n.children() {
            match c.key.as_str() {
                "weight" => self.put_arg(&mut sec, "weight", c),
                "inhibit_on_failure" => match self.bool_arg(c) {
                    Some(true) => sec.set("inhibit_on_failure", "1", &c.pos, &c.key),
                    Some(false) => sec.remove("inhibit_on_failure"),
                    None => {}
                },
                "lvs_method" => {
                    if let Some(v) = c.args.first() {
                        self.put(&mut sec, "forwarding", &v.to_ascii_lowercase(), c);
                    }
                }
                "delay_loop" => {
                    delay_loop = self.one_arg(c).map(|v| (v.to_string(), c.pos.clone()))
                }
                "connect_timeout" | "retry" | "nb_get_retry" | "delay_before_retry" => {
                    checker_defaults.push(c)
                }
                "virtualhost" => vhost = Some(c),
                "TCP_CHECK" | "HTTP_GET" | "PING_CHECK" | "MISC_CHECK" | "SSL_GET"
                | "SMTP_CHECK" | "DNS_CHECK" | "UDP_CHECK" | "BFD_CHECK" | "FILE_CHECK" => {
                    checkers.push(c)
                }
                "smtp_alert" => self.note(c, CHECKER_EMAIL),
                "notify_up" | "notify_down" => {
                    let opt = if c.key == "notify_up" {
                        "notify_up"
                    } else {
                        "notify_down"
                    };
                    self.command(&mut sec, opt, c);
                }
                _ => self.unsupported(c),
            }
        }
        let mut carried = false;
        for k in checkers {
            if carried {
                self.note(
                    k,
                    "minivrrp runs one check per real server; this one is ignored",
                );
                continue;
            }
            let kind = match k.key.as_str() {
                "TCP_CHECK" => "tcp",
                "HTTP_GET" => "http",
                "PING_CHECK" => "icmp",
                "MISC_CHECK" => "script",
                "SSL_GET" => {
                    self.note(k, "minivrrp has no TLS; the server is added unchecked");
                    continue;
                }
                _ => {
                    self.note(
                        k,
                        "not supported by minivrrp; the server is added unchecked",
                    );
                    continue;
                }
            };
            carried = true;
            let cname = self.unique(&format!("{name}_check"));
            let mut chk = OutSection::new("check", &cname, &k.pos, &k.key);
            chk.set("type", kind, &k.pos, &k.key);
            // keepalived checks every 60 s unless delay_loop says otherwise; minivrrp's
            // default is 5 s, so the interval is always written.
            let mut dl = delay_loop.clone();
            let mut options: Vec<&Node> = checker_defaults.clone();
            options.extend(k.children());
            let mut urls: Vec<&Node> = Vec::new();
            let mut retry_delay_set = false;
            let mut retry_set = false;
            for o in options {
                match o.key.as_str() {
                    "misc_path" if kind == "script" => {
                        if o.args.is_empty() {
                            self.note(o, "needs a command; ignored");
                        } else {
                            self.put(&mut chk, "command", &join(&o.args), o);
                        }
                    }
                    "misc_timeout" if kind == "script" => self.put_arg(&mut chk, "timeout", o),
                    "misc_dynamic" if kind == "script" => chk.set("dynamic", "1", &o.pos, &o.key),
                    "user" if kind == "script" => match o.args.as_slice() {
                        [u] => {
                            self.put(&mut chk, "user", u, o);
                        }
                        [u, g, ..] => {
                            self.put(&mut chk, "user", u, o);
                            self.note(o, format!("group {g} is not carried: the script runs with {u}'s primary group"));
                        }
                        [] => self.note(o, "needs a user name; ignored"),
                    },
                    "connect_timeout" if kind == "script" => self.note(
                        o,
                        "a script check is timed by misc_timeout (option timeout); ignored",
                    ),
                    "retry" | "nb_get_retry" if kind == "script" => {
                        retry_set = true;
                        self.put_arg(&mut chk, "retry", o);
                    }
                    "connect_ip" => self.put_arg(&mut chk, "address", o),
                    "connect_port" => self.put_arg(&mut chk, "port", o),
                    "connect_timeout" => self.put_arg(&mut chk, "connect_timeout", o),
                    "retry" | "nb_get_retry" => self.put_arg(&mut chk, "retry", o),
                    "delay_before_retry" => {
                        self.put_arg(&mut chk, "delay_before_retry", o);
                        retry_delay_set = true;
                    }
                    "delay_loop" => dl = self.one_arg(o).map(|v| (v.to_string(), o.pos.clone())),
                    "url" if kind == "http" => urls.push(o),
                    "virtualhost" if kind == "http" => vhost = Some(o),
                    _ => self.unsupported(o),
                }
            }
            let (interval, ipos, ikw) = match &dl {
                Some((v, p)) => (v.clone(), p.clone(), "delay_loop"),
                None => ("60".to_string(), k.pos.clone(), k.key.as_str()),
            };
            match check_value("check", "interval", &interval) {
                Ok(()) => chk.set("interval", interval, &ipos, ikw),
                Err(e) => self.notes.push(Note::new(
                    &ipos,
                    "delay_loop",
                    format!("'{interval}': {e}; left out"),
                )),
            }
            if kind == "script" {
                // keepalived's MISC_CHECK does not retry unless told; minivrrp's checks
                // retry once.
                if !retry_set {
                    chk.set("retry", "0", &k.pos, &k.key);
                }
                if chk.get("command").is_none() {
                    self.note(k, "has no misc_path; the server is added unchecked");
                    continue;
                }
            }
            if kind == "http" {
                if !retry_delay_set {
                    // keepalived's HTTP_GET waits 3 s before a retry, minivrrp 1 s.
                    chk.set("delay_before_retry", "3", &k.pos, &k.key);
                }
                if let Some(v) = vhost {
                    self.put_arg(&mut chk, "host", v);
                }
                for (ui, u) in urls.iter().enumerate() {
                    if ui > 0 {
                        self.note(u, "minivrrp checks one URL per check; this one is ignored");
                        continue;
                    }
                    for f in u.children() {
                        match f.key.as_str() {
                            "path" => self.put_arg(&mut chk, "path", f),
                            "status_code" => {
                                for s in &f.args {
                                    match check_value("check", "status", s) {
                                        Ok(()) => chk.set("status", s.clone(), &f.pos, &f.key),
                                        Err(e) => self.note(f, format!("'{s}': {e}; left out")),
                                    }
                                }
                            }
                            "virtualhost" => self.put_arg(&mut chk, "host", f),
                            "digest" => self.note(f, "minivrrp does not compare body digests; only the status is checked"),
                            _ => self.unsupported(f),
                        }
                    }
                }
            }
            sec.set("check", cname, &k.pos, &k.key);
            self.out.push(chk);
        }
        self.out.push(sec);
    }
}

/// Maps parsed keepalived statements to minivrrp sections, adding a note per keyword that
/// is not carried exactly.
pub fn map(nodes: &[Node], notes: &mut Vec<Note>) -> Vec<OutSection> {
    let mut m = Mapper {
        notes,
        out: Vec::new(),
        used_names: vec!["globals".to_string()],
        defaults: GlobalDefaults::default(),
        scripts: ByName::new(),
        instances: ByName::new(),
        track_files: ByName::new(),
        link_delays: Vec::new(),
        next_rule_priority: (
            KEEPALIVED_RULE_START_PRIORITY,
            KEEPALIVED_RULE_START_PRIORITY,
        ),
    };
    let first = nodes.first().map(|n| n.pos.clone()).unwrap_or(Pos {
        file: String::new(),
        line: 0,
    });
    let mut globals = OutSection::new("globals", "globals", &first, "global_defs");
    // keepalived resolves names across the whole file: definitions first, users after.
    for n in nodes.iter().filter(|n| n.key == "global_defs") {
        globals.pos = n.pos.clone();
        m.global_defs(n, &mut globals);
    }
    for n in nodes {
        match n.key.as_str() {
            "vrrp_script" => m.vrrp_script(n),
            "vrrp_track_file" => m.vrrp_track_file(n),
            _ => {}
        }
    }
    for n in nodes.iter().filter(|n| n.key == "interface_up_down_delays") {
        m.interface_up_down_delays(n);
    }
    for n in nodes.iter().filter(|n| n.key == "vrrp_instance") {
        m.vrrp_instance(n);
    }
    for i in 0..m.link_delays.len() {
        if !m.link_delays[i].4 {
            let e = m.link_delays[i].3.clone();
            m.notes.push(Note::new(
                &e.pos,
                "interface_up_down_delays",
                format!(
                    "{}: minivrrp debounces only an instance's own interface, and no instance runs on it; ignored",
                    e.key
                ),
            ));
        }
    }
    for n in nodes {
        match n.key.as_str() {
            "global_defs"
            | "vrrp_script"
            | "vrrp_track_file"
            | "vrrp_instance"
            | "interface_up_down_delays" => {}
            "vrrp_sync_group" => m.vrrp_sync_group(n),
            "virtual_server" => m.virtual_server(n),
            "static_ipaddress"
            | "static_routes"
            | "static_rules"
            | "virtual_server_group"
            | "vrrp_track_process"
            | "bfd_instance"
            | "linkbeat_use_polling"
            | "net_namespace"
            | "garp_group"
            | "track_group"
            | "instance"
            | "use_polling" => m.unsupported(n),
            _ => m.unknown(n),
        }
    }
    if !globals.options.is_empty() {
        m.out.insert(0, globals);
    }
    merge_dual_stack_groups(&mut m.out);
    m.out
}

/// keepalived can only run IPv4 and IPv6 VIPs of one virtual router as two `vrrp_instance`s
/// (one per family, the same VRID) in a `vrrp_sync_group`; minivrrp runs that as one
/// instance with both families (its two routers kept in step). A group is merged when it
/// is exactly that: two members and nothing else, on one interface with one VRID, VRRPv3,
/// one's VIPs all IPv4 and the other's all IPv6, every other option equal, and no notify
/// command (keepalived would run each member's: twice per change, minivrrp's once). The
/// merged instance keeps the IPv4 one's name and place.
fn merge_dual_stack_groups(out: &mut Vec<OutSection>) {
    let families = |sec: &OutSection| -> Option<bool> {
        let mut fam = None;
        for o in sec.options.iter().filter(|o| o.name == "vip") {
            let ip: IpAddr = o.value.split(['/', ' ']).next()?.parse().ok()?;
            match fam {
                None => fam = Some(ip.is_ipv4()),
                Some(f) if f != ip.is_ipv4() => return None,
                Some(_) => {}
            }
        }
        fam
    };
    let rest = |sec: &OutSection| -> Vec<(&'static str, String)> {
        sec.options
            .iter()
            .filter(|o| o.name != "vip")
            .map(|o| (o.name, o.value.clone()))
            .collect()
    };
    let mut g = 0;
    while g < out.len() {
        let group = &out[g];
        let members: Vec<&str> = group
            .options
            .iter()
            .filter(|o| o.name == "member")
            .map(|o| o.value.as_str())
            .collect();
        let find = |name: &str| {
            out.iter()
                .position(|s| s.stype == "instance" && s.name == name)
        };
        let pair = match (group.stype, members.as_slice()) {
            ("sync_group", [a, b]) if group.options.len() == 2 => find(a).zip(find(b)),
            _ => None,
        };
        let Some((a, b)) = pair else {
            g += 1;
            continue;
        };
        let (sa, sb) = (&out[a], &out[b]);
        let mergeable = sa.get("version") == Some("3")
            && rest(sa) == rest(sb)
            && !sa.options.iter().any(|o| {
                o.name.starts_with("notify")
                    || matches!(o.name, "unicast_src" | "unicast_peer" | "use_vmac")
            })
            && matches!(
                (families(sa), families(sb)),
                (Some(true), Some(false)) | (Some(false), Some(true))
            );
        if !mergeable {
            g += 1;
            continue;
        }
        let (v4, v6) = if families(sa) == Some(true) {
            (a, b)
        } else {
            (b, a)
        };
        let vips: Vec<_> = out[v6]
            .options
            .iter()
            .filter(|o| o.name == "vip")
            .cloned()
            .collect();
        // After the IPv4 VIPs (the first VIP names the instance's family in `check` output).
        let at = out[v4]
            .options
            .iter()
            .rposition(|o| o.name == "vip")
            .map_or(out[v4].options.len(), |i| i + 1);
        out[v4].options.splice(at..at, vips);
        // Remove the IPv6 instance and the group, the later index first.
        let (first, second) = if v6 < g { (v6, g) } else { (g, v6) };
        out.remove(second);
        out.remove(first);
        g = first;
    }
}

#[cfg(test)]
mod tests {
    use super::is_zero_number;

    /// The hand-written test agrees with `parse::<f64>() == 0.0` on the forms a keepalived
    /// delay takes, and on the malformed ones around them.
    #[test]
    fn zero_number_agrees_with_float_parse() {
        for v in [
            "0", "00", "0.0", "0.", ".0", "+0", "-0", "-0.000", "0e0", "0E+5", "0.0e-3", "1",
            "0.1", "10", "1e0", "", ".", "+", "-", "e", "0e", "0.0.0", "0x0", " 0", "0 ", "0s",
            "inf", "nan", "--0", "0e+-1", "5e-1",
        ] {
            let float = v.parse::<f64>().is_ok_and(|x| x == 0.0);
            assert_eq!(is_zero_number(v), float, "{v:?}");
        }
    }
}
