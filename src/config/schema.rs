//! The one schema table: every section type and option with its type, range, default and help.
//!
//! This table drives validation (`validate.rs` parses every value through [`Kind::parse`] and
//! takes ranges and defaults only from here), the effective config `minivrrp check` prints
//! (options in table order) and the option reference in docs/options.md ([`options_markdown`]), so the
//! three cannot drift apart.

use core::time::Duration;
use std::fmt::Write as _;
use std::net::IpAddr;

/// What an option's value must look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `1/0`, `yes/no`, `on/off`, `true/false`, `enabled/disabled` (what OpenWrt scripts accept).
    Bool,
    /// Unsigned integer in `min..=max`.
    Uint { min: u64, max: u64 },
    /// Signed integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// Decimal seconds (`1`, `0.5`, `3.25`), millisecond resolution, in `min_ms..=max_ms`.
    Seconds { min_ms: u64, max_ms: u64 },
    /// An IPv4 or IPv6 address.
    Ip,
    /// An address with an optional `/prefix`.
    IpPrefix,
    /// A VIP: `ADDR[/PREFIX] [dev IF] [label LABEL] [scope global|site|link|host]`.
    Vip,
    /// A route: `DEST[/PREFIX]|default [via GW] [dev IF] [metric N] [table T]`.
    Route,
    /// A policy rule: `[not] [from P] [to P] [iif IF] [oif IF] [fwmark M[/K]] priority N table T`.
    Rule,
    /// A netmask: dotted IPv4 mask or a prefix length.
    Netmask,
    /// Free text of `min..=max` characters.
    Str { min: usize, max: usize },
    /// One of the listed words.
    Enum(&'static [&'static str]),
    /// The name of a section of the given type.
    Ref(&'static str),
    /// `NAME` or `NAME weight W` (W in -253..253): a tracked object with an optional weight.
    Tracked,
    /// An HTTP status code or range: `200` or `200-299`.
    StatusRange,
    /// `ADDRESS` or `ADDRESS:PORT` (IPv6 with a port as `[ADDRESS]:PORT`).
    HostPort,
    /// An e-mail address `local@domain` (RFC 5321 4.1.2 dot-atom local part, a host name or
    /// an address literal `[ADDR]`), at most 254 characters.
    Email,
}

/// A default value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// Optional, nothing when absent.
    None,
    /// Must be given.
    Required,
    /// This value (parsed like a configured one).
    Value(&'static str),
    /// Computed from other options; the text says how (for the options reference).
    Derived(&'static str),
}

#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: Kind,
    /// Written with `list` (an `option` is accepted as a one-item list).
    pub list: bool,
    pub default: DefaultValue,
    pub help: &'static str,
}

#[derive(Clone, Copy, Debug)]
pub struct SectionSpec {
    pub stype: &'static str,
    /// `Some(name)` when the section must carry exactly that name (`globals`).
    pub fixed_name: Option<&'static str>,
    /// Sections other sections refer to by name must be named.
    pub needs_name: bool,
    pub help: &'static str,
    pub options: &'static [OptionSpec],
}

impl SectionSpec {
    pub fn option(&self, name: &str) -> Option<&'static OptionSpec> {
        self.options.iter().find(|o| o.name == name)
    }
}

/// A parsed value of some [`Kind`].
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Bool(bool),
    Uint(u64),
    Int(i64),
    Seconds(Duration),
    Ip(IpAddr),
    IpPrefix(IpAddr, Option<u8>),
    /// Address, prefix, dev, label, scope.
    Vip(IpAddr, Option<u8>, Option<String>, Option<String>, u8),
    Route(super::model::Route),
    /// The rule, and whether its family was given (`from`, `to`, `inet`, `inet6`); when not,
    /// validation gives it the instance's family.
    Rule(super::model::Rule, bool),
    /// Prefix length.
    Netmask(u8),
    Str(String),
    Enum(&'static str),
    Ref(String),
    Tracked(String, Option<i64>),
    StatusRange(u16, u16),
    HostPort(IpAddr, Option<u16>),
}

pub const TRACK_WEIGHT_MIN: i64 = -253;
pub const TRACK_WEIGHT_MAX: i64 = 253;

fn parse_uint(s: &str) -> Option<u64> {
    // Plain decimal only: "+5", " 5" or "0x5" are not what a user means in a router config.
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `DEST[/PREFIX]|default [via GW] [dev IF] [metric N] [table T]`, the words of `ip route`.
/// `default` takes the family of `via` (IPv4 without one; validation matches it to the
/// instance).
fn parse_route(s: &str) -> Result<super::model::Route, String> {
    use super::model::{Route, ROUTE_TABLE_MAIN};
    let mut words = s.split_whitespace();
    let first = words.next().unwrap_or("");
    let (dest, prefix) = if first == "default" {
        (IpAddr::from([0u8; 4]), Some(0))
    } else {
        match Kind::IpPrefix.parse(first)? {
            Val::IpPrefix(a, p) => (a, p),
            _ => return Err(format!("'{first}' is not a destination")),
        }
    };
    let mut r = Route {
        dest,
        prefix_len: prefix.unwrap_or_else(|| max_prefix(&dest)),
        via: None,
        dev: None,
        metric: 0,
        table: ROUTE_TABLE_MAIN,
    };
    while let Some(w) = words.next() {
        let Some(v) = words.next() else {
            return Err(format!("'{w}' needs a value"));
        };
        match w {
            "via" => {
                r.via = Some(
                    v.parse()
                        .map_err(|_| format!("via '{v}' is not an IPv4 or IPv6 address"))?,
                )
            }
            "dev" if (1..=15).contains(&v.len()) && !v.contains(['/', ':']) => {
                r.dev = Some(v.to_string())
            }
            "dev" => return Err(format!("'{v}' is not an interface name")),
            "metric" => {
                r.metric = parse_uint(v)
                    .and_then(|m| u32::try_from(m).ok())
                    .ok_or_else(|| format!("metric '{v}' is not an integer 0..4294967295"))?
            }
            // 0 (unspec), 253 (default), 255 (local) are the kernel's own tables.
            "table" => {
                r.table = match v {
                    "main" => ROUTE_TABLE_MAIN,
                    _ => parse_uint(v)
                        .and_then(|t| u32::try_from(t).ok())
                        .filter(|t| !matches!(t, 0 | 253 | 255))
                        .ok_or_else(|| {
                            format!("table '{v}' is not `main` or an id 1..4294967295 other than 253 and 255")
                        })?,
                }
            }
            _ => {
                return Err(format!(
                    "'{w}' is not via, dev, metric or table (DEST[/PREFIX] [via GW] [dev IF] [metric N] [table T])"
                ))
            }
        }
    }
    match r.via {
        Some(g) if first == "default" && g.is_ipv6() => r.dest = IpAddr::from([0u16; 8]),
        Some(g) if g.is_ipv6() != r.dest.is_ipv6() => {
            return Err(format!("via {g} is not of the family of {}", r.dest))
        }
        _ => {}
    }
    // The kernel refuses a destination with host bits set (`ip route` says "Invalid prefix").
    if host_bits_set(r.dest, r.prefix_len) {
        return Err(format!(
            "{}/{} has host bits set (write the network address)",
            r.dest, r.prefix_len
        ));
    }
    Ok(r)
}

/// Whether `addr/prefix` has bits set below the prefix: the kernel would mask them (rules) or
/// refuse them (routes), so a config that writes them does not say what it means.
fn host_bits_set(addr: IpAddr, prefix: u8) -> bool {
    match addr {
        IpAddr::V4(a) => u32::from(a).checked_shl(u32::from(prefix)).unwrap_or(0) != 0,
        IpAddr::V6(a) => u128::from(a).checked_shl(u32::from(prefix)).unwrap_or(0) != 0,
    }
}

/// A 32-bit number in decimal or `0x` hex (firewall marks are usually written in hex).
fn parse_u32_any(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) if !h.is_empty() && h.len() <= 8 => u32::from_str_radix(h, 16).ok(),
        Some(_) => None,
        None => parse_uint(s).and_then(|v| u32::try_from(v).ok()),
    }
}

/// `[inet|inet6] [not] [from PREFIX|all] [to PREFIX|all] [iif IF] [oif IF] [fwmark M[/MASK]]
/// priority N table T`, the words of `ip rule` (and keepalived's `virtual_rules`: `lookup`,
/// `pref`, `preference`, `order` and `dev` are accepted as their synonyms).
///
/// `priority` is required: without it the kernel numbers the rule itself, so adding it again
/// after a crash would make a second copy instead of finding the first.
fn parse_rule(s: &str) -> Result<(super::model::Rule, bool), String> {
    use super::model::{Family, Rule, ROUTE_TABLE_MAIN};
    const SYNTAX: &str =
        "[not] [from P] [to P] [iif IF] [oif IF] [fwmark M[/MASK]] priority N table T";
    let mut family: Option<Family> = None;
    let mut r = Rule {
        family: Family::Ipv4,
        invert: false,
        from: None,
        to: None,
        iif: None,
        oif: None,
        fwmark: None,
        priority: 0,
        table: 0,
    };
    let (mut priority, mut table) = (None, None);
    let mut set_family = |f: Family, why: &str| -> Result<(), String> {
        match family {
            Some(g) if g != f => Err(format!(
                "{why} is {} but the rule is already {}",
                f.name(),
                g.name()
            )),
            _ => {
                family = Some(f);
                Ok(())
            }
        }
    };
    let mut words = s.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "not" => {
                r.invert = true;
                continue;
            }
            "inet" => {
                set_family(Family::Ipv4, "inet")?;
                continue;
            }
            "inet6" => {
                set_family(Family::Ipv6, "inet6")?;
                continue;
            }
            _ => {}
        }
        let Some(v) = words.next() else {
            return Err(format!("'{w}' needs a value"));
        };
        let ifname = |v: &str| {
            if (1..=15).contains(&v.len()) && !v.contains(['/', ':']) {
                Ok(Some(v.to_string()))
            } else {
                Err(format!("'{v}' is not an interface name"))
            }
        };
        match w {
            "from" | "to" => {
                let sel = if v == "all" {
                    None
                } else {
                    let Val::IpPrefix(a, p) = Kind::IpPrefix.parse(v)? else {
                        return Err(format!("{w} '{v}' is not an address"));
                    };
                    let p = p.unwrap_or_else(|| max_prefix(&a));
                    if host_bits_set(a, p) {
                        return Err(format!("{w} {a}/{p} has host bits set (write the network address)"));
                    }
                    set_family(Family::of(&a), &format!("{w} {a}"))?;
                    Some((a, p))
                };
                if w == "from" {
                    r.from = sel;
                } else {
                    r.to = sel;
                }
            }
            "iif" | "dev" => r.iif = ifname(v)?,
            "oif" => r.oif = ifname(v)?,
            "fwmark" => {
                let (m, k) = match v.split_once('/') {
                    Some((m, k)) => (m, Some(k)),
                    None => (v, None),
                };
                let bad = || format!("fwmark '{v}' is not MARK or MARK/MASK (decimal or 0x hex, 32 bits)");
                let m = parse_u32_any(m).ok_or_else(bad)?;
                let k = match k {
                    Some(k) => Some(parse_u32_any(k).ok_or_else(bad)?),
                    None => None,
                };
                r.fwmark = Some((m, k));
            }
            "priority" | "preference" | "pref" | "order" => {
                priority = Some(
                    parse_uint(v)
                        .and_then(|p| u32::try_from(p).ok())
                        .filter(|p| *p != 0)
                        .ok_or_else(|| {
                            format!("priority '{v}' is not an integer 1..4294967295 (0 is the kernel's local rule)")
                        })?,
                )
            }
            "table" | "lookup" => {
                table = Some(match v {
                    "main" => ROUTE_TABLE_MAIN,
                    "default" => 253,
                    "local" => 255,
                    _ => parse_uint(v)
                        .and_then(|t| u32::try_from(t).ok())
                        .filter(|t| *t != 0)
                        .ok_or_else(|| {
                            format!("table '{v}' is not main, default, local or an id 1..4294967295")
                        })?,
                })
            }
            _ => return Err(format!("'{w}' is not a rule word ({SYNTAX})")),
        }
    }
    r.priority = priority.ok_or_else(|| {
        format!("needs `priority N`: without one the kernel numbers the rule itself, and adding it again would make a second copy ({SYNTAX})")
    })?;
    r.table =
        table.ok_or_else(|| format!("needs `table T`, the table the rule looks up ({SYNTAX})"))?;
    if let Some(f) = family {
        r.family = f;
    }
    Ok((r, family.is_some()))
}

fn parse_int(s: &str) -> Option<i64> {
    match s.strip_prefix('-') {
        Some(rest) => i64::try_from(parse_uint(rest)?).ok()?.checked_neg(),
        None => i64::try_from(parse_uint(s)?).ok(),
    }
}

/// Decimal seconds to milliseconds: "1" → 1000, "0.25" → 250; at most 3 decimals.
pub fn parse_seconds_ms(s: &str) -> Option<u64> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let w = if whole.is_empty() {
        0
    } else {
        parse_uint(whole)?
    };
    if s.ends_with('.') {
        return None;
    }
    let mut f = 0u64;
    for i in 0..3 {
        f = f * 10 + frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
    }
    w.checked_mul(1000)?.checked_add(f)
}

/// Milliseconds as the shortest decimal seconds: 1000 → "1", 100 → "0.1", 3610 → "3.61".
pub fn format_seconds_ms(ms: u64) -> String {
    let (w, f) = (ms / 1000, ms % 1000);
    if f == 0 {
        return w.to_string();
    }
    let mut frac = format!("{f:03}");
    while frac.ends_with('0') {
        frac.pop();
    }
    format!("{w}.{frac}")
}

pub fn format_duration(d: Duration) -> String {
    format_seconds_ms(d.as_millis() as u64)
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "yes" | "on" | "true" | "enabled" => Some(true),
        "0" | "no" | "off" | "false" | "disabled" => Some(false),
        _ => None,
    }
}

fn max_prefix(a: &IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

impl Kind {
    /// Parses and range-checks one value; the error text completes "OPTION: ...".
    pub fn parse(&self, s: &str) -> Result<Val, String> {
        // No value has a use for one, and CR/LF in a string would forge log lines or add
        // SMTP commands to an alert.
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(format!(
                "contains a control character (U+{:04X}), which no value may",
                c as u32
            ));
        }
        match *self {
            Kind::Bool => parse_bool(s)
                .map(Val::Bool)
                .ok_or_else(|| format!("'{s}' is not a boolean (use 1 or 0)")),
            Kind::Uint { min, max } => match parse_uint(s) {
                Some(v) if (min..=max).contains(&v) => Ok(Val::Uint(v)),
                Some(_) => Err(format!("{s} is out of range {min}..{max}")),
                None => Err(format!("'{s}' is not a whole number")),
            },
            Kind::Int { min, max } => match parse_int(s) {
                Some(v) if (min..=max).contains(&v) => Ok(Val::Int(v)),
                Some(_) => Err(format!("{s} is out of range {min}..{max}")),
                None => Err(format!("'{s}' is not a whole number")),
            },
            Kind::Seconds { min_ms, max_ms } => match parse_seconds_ms(s) {
                Some(v) if (min_ms..=max_ms).contains(&v) => {
                    Ok(Val::Seconds(Duration::from_millis(v)))
                }
                Some(_) => Err(format!(
                    "{s} s is out of range {}..{} s",
                    format_seconds_ms(min_ms),
                    format_seconds_ms(max_ms)
                )),
                None => Err(format!(
                    "'{s}' is not a number of seconds (e.g. 1 or 0.5, at most 3 decimals)"
                )),
            },
            Kind::Ip => s
                .parse::<IpAddr>()
                .map(Val::Ip)
                .map_err(|_| format!("'{s}' is not an IPv4 or IPv6 address")),
            Kind::IpPrefix => {
                let (a, p) = match s.split_once('/') {
                    Some((a, p)) => (a, Some(p)),
                    None => (s, None),
                };
                let addr: IpAddr = a
                    .parse()
                    .map_err(|_| format!("'{a}' is not an IPv4 or IPv6 address"))?;
                let prefix = match p {
                    None => None,
                    Some(p) => match parse_uint(p) {
                        Some(v) if v <= u64::from(max_prefix(&addr)) => Some(v as u8),
                        _ => {
                            return Err(format!(
                                "prefix length '/{p}' is out of range 0..{}",
                                max_prefix(&addr)
                            ))
                        }
                    },
                };
                Ok(Val::IpPrefix(addr, prefix))
            }
            Kind::Vip => {
                let mut words = s.split_whitespace();
                let Some(Val::IpPrefix(addr, prefix)) =
                    Some(Kind::IpPrefix.parse(words.next().unwrap_or(""))?)
                else {
                    return Err(format!("'{s}' is not an address"));
                };
                let (mut dev, mut label, mut scope) = (None, None, 0);
                while let Some(w) = words.next() {
                    let Some(v) = words.next() else {
                        return Err(format!("'{w}' needs a value"));
                    };
                    match w {
                        "dev" if (1..=15).contains(&v.len()) && !v.contains(['/', ':']) => {
                            dev = Some(v.to_string())
                        }
                        "dev" => return Err(format!("'{v}' is not an interface name")),
                        "label" if addr.is_ipv4() && (1..=15).contains(&v.len()) => {
                            label = Some(v.to_string())
                        }
                        "label" => {
                            return Err(format!(
                                "label '{v}': IPv4 only, 1..15 characters (IFNAMSIZ)"
                            ))
                        }
                        "scope" => {
                            scope = super::model::VIP_SCOPES
                                .iter()
                                .find(|(n, _)| *n == v)
                                .map(|(_, s)| *s)
                                .ok_or_else(|| {
                                    format!("scope '{v}' is not one of global, site, link, host")
                                })?
                        }
                        _ => {
                            return Err(format!(
                                "'{w}' is not dev, label or scope (ADDR[/PREFIX] [dev IF] [label L] [scope S])"
                            ))
                        }
                    }
                }
                Ok(Val::Vip(addr, prefix, dev, label, scope))
            }
            Kind::Route => parse_route(s).map(Val::Route),
            Kind::Rule => parse_rule(s).map(|(r, given)| Val::Rule(r, given)),
            Kind::Netmask => {
                if let Some(v) = parse_uint(s) {
                    return if v <= 128 {
                        Ok(Val::Netmask(v as u8))
                    } else {
                        Err(format!("prefix length {s} is out of range 0..128"))
                    };
                }
                match s.parse::<std::net::Ipv4Addr>() {
                    Ok(m) => {
                        let bits = u32::from(m);
                        let len = bits.leading_ones();
                        if bits.checked_shl(len).unwrap_or(0) == 0 {
                            Ok(Val::Netmask(len as u8))
                        } else {
                            Err(format!("'{s}' is not a contiguous netmask"))
                        }
                    }
                    Err(_) => Err(format!(
                        "'{s}' is not a netmask (255.255.255.0 or a prefix length)"
                    )),
                }
            }
            Kind::Email => parse_email(s).map(|()| Val::Str(s.to_string())),
            Kind::Str { min, max } => {
                let n = s.chars().count();
                if n < min || n > max {
                    Err(format!("'{s}' must be {min}..{max} characters long"))
                } else {
                    Ok(Val::Str(s.to_string()))
                }
            }
            Kind::Enum(words) => words
                .iter()
                .find(|w| **w == s)
                .map(|w| Val::Enum(w))
                .ok_or_else(|| format!("'{s}' is not one of {}", words.join("|"))),
            Kind::Ref(_) => {
                if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    Ok(Val::Ref(s.to_string()))
                } else {
                    Err(format!("'{s}' is not a section name"))
                }
            }
            Kind::Tracked => {
                let words: Vec<&str> = s.split_whitespace().collect();
                match words.as_slice() {
                    [name] => Ok(Val::Tracked((*name).to_string(), None)),
                    [name, "weight", w] => match parse_int(w) {
                        Some(v) if (TRACK_WEIGHT_MIN..=TRACK_WEIGHT_MAX).contains(&v) => {
                            Ok(Val::Tracked((*name).to_string(), Some(v)))
                        }
                        _ => Err(format!(
                            "weight '{w}' is out of range {TRACK_WEIGHT_MIN}..{TRACK_WEIGHT_MAX}"
                        )),
                    },
                    _ => Err(format!("'{s}' is not 'NAME' or 'NAME weight W'")),
                }
            }
            Kind::StatusRange => {
                let (lo, hi) = match s.split_once('-') {
                    Some((a, b)) => (a, b),
                    None => (s, s),
                };
                match (parse_uint(lo), parse_uint(hi)) {
                    (Some(a), Some(b)) if (100..=599).contains(&a) && (a..=599).contains(&b) => {
                        Ok(Val::StatusRange(a as u16, b as u16))
                    }
                    _ => Err(format!(
                        "'{s}' is not an HTTP status or range (e.g. 200 or 200-299)"
                    )),
                }
            }
            Kind::HostPort => {
                let bad = || format!("'{s}' is not ADDRESS, ADDRESS:PORT or [IPV6]:PORT");
                if let Ok(a) = s.parse::<IpAddr>() {
                    return Ok(Val::HostPort(a, None));
                }
                let (a, p) = if let Some(rest) = s.strip_prefix('[') {
                    rest.split_once("]:").ok_or_else(bad)?
                } else {
                    s.rsplit_once(':').ok_or_else(bad)?
                };
                let addr: IpAddr = a.parse().map_err(|_| bad())?;
                match parse_uint(p) {
                    Some(v) if (1..=65535).contains(&v) => Ok(Val::HostPort(addr, Some(v as u16))),
                    _ => Err(bad()),
                }
            }
        }
    }

    /// The type column of the options reference.
    pub fn describe(&self) -> String {
        match *self {
            Kind::Bool => "bool".into(),
            Kind::Uint { min, max } => format!("integer {min}..{max}"),
            Kind::Int { min, max } => format!("integer {min}..{max}"),
            Kind::Seconds { min_ms, max_ms } => format!(
                "seconds {}..{}",
                format_seconds_ms(min_ms),
                format_seconds_ms(max_ms)
            ),
            Kind::Ip => "IP address".into(),
            Kind::IpPrefix => "IP address[/prefix]".into(),
            Kind::Vip => "`ADDR[/PREFIX] [dev IF] [label L] [scope S]`".into(),
            Kind::Route => {
                "`DEST[/PREFIX]\\|default [via GW] [dev IF] [metric N] [table T]`".into()
            }
            Kind::Rule => {
                "`[not] [from P] [to P] [iif IF] [oif IF] [fwmark M[/K]] priority N table T`".into()
            }
            Kind::Netmask => "netmask or prefix length".into(),
            Kind::Str { min, max } => format!("string ({min}..{max} chars)"),
            Kind::Enum(words) => words.join(" \\| "),
            Kind::Ref(t) => format!("`{t}` section name"),
            Kind::Tracked => "`NAME [weight W]`".into(),
            Kind::StatusRange => "status or range".into(),
            Kind::HostPort => "`ADDR[:PORT]`".into(),
            Kind::Email => "e-mail address".into(),
        }
    }
}

/// RFC 5321 4.1.2: `Local-part "@" Domain`, with a dot-atom local part (no quoted strings)
/// and a domain of letter/digit/hyphen labels or an address literal. Nothing else can reach
/// the SMTP envelope or the `From:` header.
fn parse_email(s: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("'{s}' is not an e-mail address ({why})"));
    if s.len() > 254 {
        return bad("longer than 254 characters");
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return bad("no @");
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local.is_empty()
        || local.len() > 64
        || local
            .split('.')
            .any(|w| w.is_empty() || !w.chars().all(atext))
    {
        return bad("local part");
    }
    if let Some(lit) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ip = lit.strip_prefix("IPv6:").unwrap_or(lit);
        return match ip.parse::<IpAddr>() {
            Ok(_) => Ok(()),
            Err(_) => bad("address literal"),
        };
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if domain.is_empty() || !domain.split('.').all(label_ok) {
        return bad("domain");
    }
    Ok(())
}

const fn opt(
    name: &'static str,
    kind: Kind,
    default: DefaultValue,
    help: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        list: false,
        default,
        help,
    }
}

const fn list(
    name: &'static str,
    kind: Kind,
    default: DefaultValue,
    help: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        list: true,
        default,
        help,
    }
}

const fn uint(min: u64, max: u64) -> Kind {
    Kind::Uint { min, max }
}

const fn secs(min_ms: u64, max_ms: u64) -> Kind {
    Kind::Seconds { min_ms, max_ms }
}

const fn text(max: usize) -> Kind {
    Kind::Str { min: 1, max }
}

use DefaultValue::{Derived, Required, Value as Dv};

const CMD: Kind = text(1024);
/// A procd service or netifd interface name (`master_service`...): letters, digits, `_.-`.
const ROLE_NAME: Kind = text(32);
const WEIGHT: Kind = Kind::Int {
    min: TRACK_WEIGHT_MIN,
    max: TRACK_WEIGHT_MAX,
};
const PORT: Kind = uint(1, 65535);
const NONE: DefaultValue = DefaultValue::None;

pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];
pub const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf",
];
pub const FORWARDING: &[&str] = &["nat", "dr", "tun"];
pub const SCHED_POLICIES: &[&str] = &["rr", "fifo", "other"];

const GLOBALS: &[OptionSpec] = &[
    opt(
        "enabled",
        Kind::Bool,
        Dv("1"),
        "`0`: `/etc/init.d/minivrrp` starts nothing and logs why (the package installs its example config with `0`, so installing never takes an address). The daemon run by hand ignores it.",
    ),
    opt(
        "router_id",
        text(64),
        Dv("minivrrp"),
        "Name of this router in logs and notify scripts (keepalived `router_id`).",
    ),
    opt(
        "log_level",
        Kind::Enum(LOG_LEVELS),
        Dv("info"),
        "Least severe messages logged; `-v`/`-q` and `RUST_LOG` override it.",
    ),
    opt(
        "log_suppress",
        secs(0, 3_600_000),
        Dv("30"),
        "A repeated identical warning is logged at most once per this interval, with a count of the suppressed ones (0 = log every one).",
    ),
    opt(
        "notify_timeout",
        secs(100, 3_600_000),
        Dv("10"),
        "A notify command (or hotplug hook) still running after this many seconds is killed with its process group, so the next notification of its instance can run (keepalived's script timeout default).",
    ),
    opt(
        "notify_max_running",
        uint(1, 64),
        Dv("8"),
        "Notify commands running at once, over all instances and groups; the notifications of one instance always run one after another, in order.",
    ),
    opt(
        "script_user",
        text(32),
        NONE,
        "Run notify commands, and track scripts without their own `user`, as this user and its primary group (keepalived `script_user`; default: the daemon's user).",
    ),
    opt(
        "enable_script_security",
        Kind::Bool,
        Dv("0"),
        "When running as root, refuse (as a config error) scripts that would run as root and that a non-root user could change: the file or a directory above it writable by others or owned by a non-root user (keepalived `enable_script_security`).",
    ),
    opt(
        "notify_pre_master",
        CMD,
        NONE,
        "Default of the instance option `notify_pre_master`, for every instance without its own (an instance opts out with a command that does nothing, e.g. `true`).",
    ),
    opt(
        "pre_master_timeout",
        secs(100, 300_000),
        Dv("5"),
        "Default of the instance option `pre_master_timeout`.",
    ),
    opt(
        "conntrackd_config",
        text(255),
        Dv("/etc/conntrackd/conntrackd.conf"),
        "conntrackd's configuration, passed as `-C` to the commands of instances with `conntrackd` set.",
    ),
    opt(
        "startup_delay",
        secs(0, 3_600_000),
        Dv("0"),
        "After minivrrp starts, its instances stay in INIT this long (no adverts, no VIPs, others' adverts ignored), so a booting router does not take mastership before its links and services are up (keepalived `vrrp_startup_delay`).",
    ),
    list(
        "notification_email",
        Kind::Email,
        NONE,
        "Recipient of e-mail alerts (keepalived `notification_email`); one mail per state change of an instance with `smtp_alert`.",
    ),
    opt(
        "notification_email_from",
        Kind::Email,
        Dv("minivrrp@localhost"),
        "Sender address of e-mail alerts (envelope and `From:`).",
    ),
    opt(
        "smtp_server",
        Kind::HostPort,
        NONE,
        "SMTP server that relays e-mail alerts, `ADDR[:PORT]` (port 25 by default). Plain SMTP without authentication or TLS, as keepalived; a local relay is the usual choice.",
    ),
    opt(
        "smtp_connect_timeout",
        secs(100, 3_600_000),
        Dv("30"),
        "An SMTP connection not established within this time fails, and so does a mail whose whole exchange takes longer than 2 × this; the mail is counted as failed and dropped (the poll loop never waits for the server).",
    ),
    opt(
        "smtp_alert",
        Kind::Bool,
        Dv("0"),
        "Send an e-mail alert on every state change of every instance (default of the instance option `smtp_alert`); needs `smtp_server` and `notification_email`. At most 16 mails wait; more are dropped and counted.",
    ),
    opt(
        "sched_policy",
        Kind::Enum(SCHED_POLICIES),
        Dv("rr"),
        "Scheduling class of the daemon: `rr` (SCHED_RR, keepalived's with `vrrp_rt_priority`), `fifo` (SCHED_FIFO) or `other` (the normal class, no real-time). Default `rr`: on a busy router a normal process waits behind every CPU hog and every niced-up task, and a timer that fires 100 ms late at `advert_int 0.01` is a false takeover; a real-time class runs it as soon as it is due. Children (notify commands, hooks, check scripts) never inherit it: they start in the normal class (SCHED_RESET_ON_FORK).",
    ),
    opt(
        "sched_priority",
        uint(1, 99),
        Dv("10"),
        "Real-time priority with `sched_policy` `rr` or `fifo` (keepalived `vrrp_rt_priority`). Default 10: above every normal process and low-priority real-time helpers, below the kernel's threaded interrupt handlers (50 on PREEMPT_RT kernels), which deliver the adverts the daemon waits for, and its watchdog and migration threads (99).",
    ),
    opt(
        "lock_memory",
        Kind::Bool,
        Dv("1"),
        "Lock the daemon's memory (mlockall; keepalived `vrrp_no_swap`): its code is read in whole and kept resident, its small fixed heap is locked as it is used, so a takeover never waits for swap or for code evicted to flash under memory pressure. Costs the code's size in RAM (under 1 MB); memory reserved but never used stays unlocked and unallocated.",
    ),
    opt(
        "oom_score_adj",
        Kind::Int { min: -1000, max: 1000 },
        Dv("-900"),
        "The kernel's OOM killer score adjustment of the daemon (`/proc/self/oom_score_adj`). Default -900: out of memory, the kernel kills the services the virtual address protects before the daemon that moves it, while -1000 (never) is left to the administrator; the daemon's own memory is fixed at load.",
    ),
];

const INSTANCE: &[OptionSpec] = &[
    opt("interface", text(15), Required, "Interface the instance runs on (e.g. `br-lan`)."),
    opt("vrid", uint(1, 255), Required, "Virtual router ID; the same on every router of the group."),
    opt("priority", uint(1, 255), Dv("100"), "Election priority; highest wins. 255 means this router owns the addresses."),
    opt("version", Kind::Enum(&["2", "3"]), Dv("2"), "VRRP version: 2 (RFC 3768, IPv4 only) or 3 (RFC 5798, IPv4 and IPv6)."),
    opt("advert_int", secs(10, 255_000), Dv("1"), "Advertisement interval. Version 2: whole seconds 1..255. Version 3: 0.01..40.95 in steps of 0.01 (e.g. `0.1`)."),
    opt("preempt", Kind::Bool, Dv("1"), "A higher-priority backup takes over from a lower-priority master; `0` is keepalived's `nopreempt`."),
    opt("preempt_delay", secs(0, 1_000_000), Dv("0"), "Seconds a backup waits after start before it may preempt."),
    opt("link_down_delay", secs(0, 255_000), Dv("0"), "The interface going down is believed (FAULT) only when it stayed down this long; a link back within the delay causes no transition (keepalived `interface_up_down_delays`). Keep it below 2 × `advert_int`, or a backup takes over first."),
    opt("link_up_delay", secs(0, 255_000), Dv("0"), "The interface coming back up is believed (FAULT ends) only when it stayed up this long, e.g. while STP still blocks the port."),
    opt("state", Kind::Enum(&["MASTER", "BACKUP"]), Dv("BACKUP"), "Initial state hint; `MASTER` skips the first master-down wait. The election decides."),
    opt("auth_type", Kind::Enum(&["none", "pass", "ah"]), Dv("none"), "Version 2 authentication: `pass` sends `auth_pass` in clear. `ah` is not supported."),
    opt("auth_pass", text(8), NONE, "Password for `auth_type pass` (version 2 only), 1..8 characters."),
    list("auth_hmac_key", Kind::Str { min: 3, max: 300 }, NONE, "Authenticated adverts (keepalived 2.4 `auth_hmac` `key`): `ID VALUE`, ID 1..255, VALUE 32..64 bytes as `hex:...`, ASCII text, or `file:PATH` (a file holding either; a warning when group or others may read it). An advert then carries an HMAC-SHA256 trailer (28 bytes) verified by every peer with the same key under the same ID; receivers accept every configured ID, so keys rotate without an election. Not with `auth_type pass`. `check` and `status` never print a key."),
    opt("auth_hmac_active_key", uint(1, 255), Derived("the only `auth_hmac_key` when there is one"), "ID of the `auth_hmac_key` adverts are signed with (keepalived `active_key`)."),
    opt("auth_hmac_mode", Kind::Enum(&["enforce", "permissive", "receive-only"]), Dv("enforce"), "`enforce`: sign, and drop every advert without a valid trailer. `permissive`: sign, and accept adverts without a trailer too. `receive-only`: do not sign, verify a trailer when one comes. Roll out receive-only, then permissive, then enforce, one reload of every router each (keepalived `mode`)."),
    opt("auth_hmac_anti_replay", Kind::Enum(&["time", "monotonic"]), Dv("time"), "`time`: an advert's timestamp must be within `auth_hmac_time_window` of this router's clock (needs NTP) and its sequence must grow; `monotonic`: only the sequence must grow (keepalived `anti_replay`)."),
    opt("auth_hmac_time_window", secs(1000, 300_000), Derived("max(3 × `advert_int`, 5) seconds, at most 300"), "Freshness window of `anti_replay time`, whole seconds 1..300 (keepalived `time_window`). A warning is logged (rate-limited) when an accepted advert's clock is more than half the window away."),
    list("vip", Kind::Vip, Required, "Virtual address, IPv4 or IPv6 with optional `/prefix` (default /32 or /128). VIPs of both families (version 3 only) run the instance as two VRRPv3 routers with this VRID, one per family (IPv4 adverts with the IPv4 VIPs, IPv6 adverts with the IPv6 ones), kept in step: master, backup and fault together. `dev IF` puts it on another interface than the instance's (one instance moves WAN and LAN addresses together; its GARPs go out there), `label L` (IPv4, must start with the interface's name) and `scope global|site|link|host` as in `ip addr`."),
    list("vip_excluded", Kind::Vip, NONE, "Address configured on the master like a `vip` but not carried in adverts (keepalived `virtual_ipaddress_excluded`): more addresses than an advert holds, or the other address family (e.g. IPv6 addresses on a version 2 instance)."),
    // Routes that follow the instance's state.
    list("route", Kind::Route, NONE, "Route installed while this instance is MASTER and removed when it leaves MASTER or stops (keepalived `virtual_routes`), in `ip route` words: `default via 192.0.2.1 dev wan`, `10.9.0.0/16 via 10.0.0.9 metric 10 table 100`. Without `via` the destination is on the link (`dev`, default the instance's interface). IPv4 or IPv6, whatever the VIPs' family."),
    list("backup_route", Kind::Route, NONE, "Route installed while this instance is BACKUP and removed when it leaves BACKUP (becomes MASTER, goes to FAULT or stops), e.g. a default route via the master's LAN address so a backup router still reaches the Internet. Same syntax as `route`."),
    list("rule", Kind::Rule, NONE, "Policy routing rule installed while this instance is MASTER and removed when it leaves MASTER or stops (keepalived `virtual_rules`), in `ip rule` words: `from 10.0.1.0/24 priority 100 table 100`, `iif lan fwmark 0x1/0xff priority 101 table 200`. `from`/`to` take `PREFIX` or `all`; `lookup`, `pref` and `dev` are accepted for `table`, `priority` and `iif`. `priority` (1..4294967295) and `table` (`main`, `default`, `local` or an id) are required. The family comes from `from`/`to`, else `inet`/`inet6`, else the instance's."),
    list("backup_rule", Kind::Rule, NONE, "Policy routing rule installed while this instance is BACKUP and removed when it leaves BACKUP. Same syntax as `rule`."),
    opt("unicast_src", Kind::Ip, NONE, "Source address for unicast adverts (default: the interface's primary address); not on an instance with VIPs of both families."),
    list("unicast_peer", Kind::Ip, NONE, "Send adverts to this peer by unicast instead of multicast; same family as the VIPs (not on an instance with VIPs of both families)."),
    list("track_script", Kind::Tracked, NONE, "`script` section to track, optionally `weight W` to override the script's weight."),
    list("track_interface", Kind::Tracked, NONE, "Interface to track. Without a weight, link down means FAULT; with `weight W` the priority changes instead."),
    list("track_file", Kind::Tracked, NONE, "File holding an integer N; priority changes by N × W (`weight W`, default 1). Weight 0: any N ≠ 0 means FAULT."),
    list("track_check", Kind::Tracked, NONE, "Native `check` section to track, optionally `weight W` to override the check's weight."),
    opt("use_vmac", Kind::Bool, Dv("0"), "Run the instance on a macvlan with the VRRP virtual MAC (00:00:5e:00:01:VRID); not on an instance with VIPs of both families."),
    opt("vmac_name", text(15), Derived("`vrrp.VRID`"), "Name of the VMAC interface."),
    opt("garp_repeat", uint(0, 100), Dv("5"), "Gratuitous ARPs / unsolicited NAs sent on becoming master."),
    opt("garp_delay", secs(0, 3_600_000), Dv("5"), "Delay before the second burst of gratuitous ARPs after becoming master (0 = none)."),
    opt("garp_refresh", secs(0, 86_400_000), Dv("0"), "While master, repeat gratuitous ARPs at this interval (0 = off)."),
    opt("vip_lifetime", uint(0, 86_400), Derived("max(2, ⌈1.5 × (3 × `advert_int` + Skew_Time of priority 1)⌉): 6 for 1 s adverts, 2 for 0.1 s"), "While master, VIPs are installed with this kernel lifetime in seconds and refreshed at least every third of it (all masters in one batched round), so a master whose daemon dies or freezes loses them by itself (within the lifetime + 1 s). 0 = permanent addresses (keepalived's behaviour)."),
    opt("ra", Kind::Bool, Dv("0"), "While MASTER, send IPv6 Router Advertisements (RFC 4861 6.2) as the virtual router: from the first IPv6 VIP, which must then be link-local (e.g. `fe80::77/64`; RFC 5798 5.2.9), and with `use_vmac` from the virtual MAC; three at takeover, then every `ra_interval` (randomised down to a third of it), an answer to Router Solicitations (at most one per 3 s, RFC 4861 6.2.6). Never an RA with router lifetime 0 when the daemon stops or hands over (the next master advertises from the same address); one when a reload removes the instance or switches `ra` off. Hosts then keep one default router, the VIP, through every failover."),
    list("ra_prefix", Kind::IpPrefix, NONE, "IPv6 /64 prefix advertised for SLAAC (Prefix Information with the on-link and autonomous flags), e.g. `fd77::/64`; needs `ra`. Not link-local or multicast."),
    opt("ra_interval", secs(4_000, 1_800_000), Dv("600"), "MaxRtrAdvInterval in seconds (4..1800, RFC 4861 6.2.1): unsolicited RAs come every `ra_interval`/3 to `ra_interval`, randomised."),
    opt("ra_lifetime", uint(0, 9_000), Derived("3 × `ra_interval`, at most 9000"), "Router lifetime in seconds of the RAs (RFC 4861 6.2.1 AdvDefaultLifetime): 0 (hosts do not use the VIP as default router) or `ra_interval`..9000."),
    opt("ra_valid_lifetime", uint(0, 4_294_967_295), Dv("2592000"), "Valid lifetime of the advertised prefixes in seconds (4294967295 = infinity)."),
    opt("ra_preferred_lifetime", uint(0, 4_294_967_295), Dv("604800"), "Preferred lifetime of the advertised prefixes in seconds; at most `ra_valid_lifetime`."),
    opt("ra_managed", Kind::Bool, Dv("0"), "The RAs' Managed flag: addresses from DHCPv6."),
    opt("ra_other", Kind::Bool, Dv("0"), "The RAs' Other configuration flag: other settings (DNS) from DHCPv6."),
    opt("v3_checksum", Kind::Enum(&["pseudo", "rfc9568"]), Dv("pseudo"), "Version 3 over IPv4 only: `pseudo` includes the IPv4 pseudo-header in the checksum (keepalived, RFC 5798); `rfc9568` computes it over the VRRP message alone, for peers that leave the pseudo-header out."),
    opt("notify_pre_master", CMD, Derived("globals `notify_pre_master`"), "Command run on becoming MASTER, before the VIPs are taken (e.g. `conntrackd -c`): adverts start at once (RFC 5798 6.4.2), but the VIPs, gratuitous ARPs / unsolicited NAs, `route`s and `notify_master` wait until it exits (any status; non-zero is logged) or `pre_master_timeout` passes (it is then killed with its process group). Leaving MASTER meanwhile kills it and no VIP is installed; `status` shows `vips (held: pre_master running)` (JSON `pre_master_running`). Gets `TYPE`, `NAME` and the `MINIVRRP_*` variables of notify commands; runs as `script_user`."),
    opt("pre_master_timeout", secs(100, 300_000), Derived("globals `pre_master_timeout` (5)"), "Longest hold of `notify_pre_master` in seconds (0.1..300); then the hook is killed and the VIPs are installed anyway."),
    opt("notify_master", CMD, NONE, "Command run on becoming MASTER (after `notify_pre_master` when one is set)."),
    opt("notify_backup", CMD, NONE, "Command run on becoming BACKUP."),
    opt("notify_fault", CMD, NONE, "Command run on entering FAULT."),
    opt("notify_stop", CMD, NONE, "Command run when the instance stops."),
    opt("notify", CMD, NONE, "Command run on every change with arguments `INSTANCE NAME STATE PRIORITY` (keepalived style)."),
    list("master_service", ROLE_NAME, NONE, "procd service (`/etc/init.d/NAME`) started when this instance becomes MASTER and stopped when it leaves MASTER (BACKUP, FAULT, maintenance, daemon stop), e.g. `dnsmasq`. Runs in the instance's notify queue (in order, `notify_timeout` applies) once per change of role, before the notify commands; at start and after a reload a service found running where it must not is stopped once. Disable it at boot (`/etc/init.d/NAME disable`) so only minivrrp starts it. At most 8."),
    list("backup_service", ROLE_NAME, NONE, "procd service that runs exactly when this instance is not MASTER (the reverse of `master_service`): started in BACKUP, FAULT and at daemon stop, stopped on becoming MASTER. At most 8."),
    list("master_interface", ROLE_NAME, NONE, "netifd interface (a WireGuard tunnel, a PPPoE WAN) brought up with `ubus call network.interface.NAME up` when this instance becomes MASTER and down when it leaves MASTER, reconciled like `master_service` (an interface found up where it must not be is brought down once). At most 8."),
    opt("conntrackd", Kind::Bool, Dv("0"), "Connection-tracking sync with conntrackd (its primary-backup sequence, `globals.conntrackd_config`): on becoming MASTER the external cache is committed to the kernel (`conntrackd -c`) as the pre-master hook, so the VIPs appear only after it (bounded by `pre_master_timeout`; the global `notify_pre_master` is not used, an own one is an error), then the caches are flushed, resynchronised from the kernel and bulk-sent to the backup (`-f`, `-R`, `-B`); on becoming BACKUP the kernel's timers are shortened, the external cache flushed and a resync requested (`-t`, `-f external`, `-n`); in FAULT `-t`. Set it on one instance per router (e.g. one member of a sync group)."),
    opt("smtp_alert", Kind::Bool, Derived("globals `smtp_alert`"), "Send an e-mail alert on every state change of this instance (router id, instance, old and new state, reason)."),
];

const SCRIPT: &[OptionSpec] = &[
    opt("command", CMD, Required, "Command split into words like keepalived's (quotes, backslashes; no shell, so `&&` or `|` are plain arguments: write `/bin/sh -c '...'` for a shell); exit 0 means up."),
    opt("interval", secs(100, 3_600_000), Dv("1"), "Seconds between runs."),
    opt("timeout", secs(100, 3_600_000), Derived("`interval`"), "A run taking longer is killed and counts as a failure."),
    opt("weight", WEIGHT, Dv("0"), "Priority change: W > 0 adds W while up, W < 0 subtracts |W| while down; 0 means down = FAULT."),
    opt("fall", uint(1, 255), Dv("1"), "Consecutive failures before the script counts as down."),
    opt("rise", uint(1, 255), Dv("1"), "Consecutive successes before the script counts as up."),
    opt("user", text(32), NONE, "Run the command as this user (default: the daemon's user)."),
];

const CHECK: &[OptionSpec] = &[
    opt(
        "type",
        Kind::Enum(&["tcp", "http", "icmp", "script"]),
        Required,
        "`tcp` connects, `http` sends a GET and checks the status, `icmp` pings, `script` runs `command` (real servers only: keepalived `MISC_CHECK`).",
    ),
    opt(
        "address",
        Kind::Ip,
        NONE,
        "Target address; when a real server uses the check its own address is the default.",
    ),
    opt(
        "port",
        PORT,
        NONE,
        "Target port (tcp, http); when absent the real server's port is used.",
    ),
    opt("path", text(1024), Dv("/"), "HTTP request path."),
    opt(
        "host",
        text(255),
        NONE,
        "HTTP `Host` header (default: the target address).",
    ),
    list(
        "status",
        Kind::StatusRange,
        Dv("200-299"),
        "Accepted HTTP status codes, e.g. `200` or `200-299`.",
    ),
    opt(
        "expect",
        text(256),
        NONE,
        "The HTTP response body must contain this text.",
    ),
    opt(
        "max_response",
        uint(64, 1_048_576),
        Dv("65536"),
        "Bytes of HTTP response read at most.",
    ),
    opt(
        "connect_timeout",
        secs(10, 60_000),
        Dv("5"),
        "Seconds to wait for a connection or a reply.",
    ),
    opt(
        "retry",
        uint(0, 100),
        Dv("1"),
        "Extra attempts before a run counts as failed.",
    ),
    opt(
        "delay_before_retry",
        secs(0, 3_600_000),
        Dv("1"),
        "Seconds between attempts of one run.",
    ),
    opt(
        "interval",
        secs(100, 3_600_000),
        Dv("5"),
        "Seconds between runs.",
    ),
    opt(
        "command",
        CMD,
        NONE,
        "`script` checks (required there): command (split into words, no shell, like `script`) run every `interval` (keepalived `misc_path`); exit 0 means up, anything else down, unless `dynamic`.",
    ),
    opt(
        "timeout",
        secs(100, 3_600_000),
        Derived("`interval`"),
        "`script` checks: a run taking longer is killed with its process group and counts as a failure (keepalived `misc_timeout`).",
    ),
    opt(
        "dynamic",
        Kind::Bool,
        Dv("0"),
        "`script` checks: the exit code also sets the real server's weight (keepalived `misc_dynamic`): 0 = up, weight unchanged; 1 = down; 2..255 = up with weight code - 2.",
    ),
    opt(
        "user",
        text(32),
        NONE,
        "`script` checks: run the command as this user and its primary group (keepalived MISC_CHECK `user`; default: globals `script_user`, else the daemon's user).",
    ),
    opt(
        "weight",
        WEIGHT,
        Dv("0"),
        "As tracker: priority change like a script's weight (0 = down means FAULT).",
    ),
    opt(
        "fall",
        uint(1, 255),
        Dv("1"),
        "Consecutive failures before down.",
    ),
    opt(
        "rise",
        uint(1, 255),
        Dv("1"),
        "Consecutive successes before up.",
    ),
];

const SYNC_GROUP: &[OptionSpec] = &[
    list("member", Kind::Ref("instance"), Required, "Instance in the group; they change state together. An instance belongs to at most one group."),
    opt("notify_master", CMD, NONE, "Command run when the group becomes MASTER."),
    opt("notify_backup", CMD, NONE, "Command run when the group becomes BACKUP."),
    opt("notify_fault", CMD, NONE, "Command run when the group enters FAULT."),
    opt("notify", CMD, NONE, "Command run on every group change with arguments `GROUP NAME STATE`."),
    list("master_service", ROLE_NAME, NONE, "procd service started when the group becomes MASTER and stopped when it leaves MASTER, as the instance option."),
    list("backup_service", ROLE_NAME, NONE, "procd service that runs exactly when the group is not MASTER, as the instance option."),
    list("master_interface", ROLE_NAME, NONE, "netifd interface up while the group is MASTER and down otherwise, as the instance option."),
    // Trackers of the whole group.
    list("track_script", Kind::Tracked, NONE, "`script` section whose failure puts every member in FAULT (keepalived `track_script` in a `vrrp_sync_group`). Only faults: a `weight` other than 0 is an error."),
    list("track_interface", Kind::Tracked, NONE, "Interface whose link down puts every member in FAULT."),
    list("track_file", Kind::Tracked, NONE, "File holding an integer; any value other than 0 puts every member in FAULT."),
    list("track_check", Kind::Tracked, NONE, "Native `check` section whose failure puts every member in FAULT."),
];

const VIRTUAL_SERVER: &[OptionSpec] = &[
    opt(
        "address",
        Kind::Ip,
        NONE,
        "Service address (with `port`); or use `fwmark`.",
    ),
    opt("port", PORT, NONE, "Service port, required with `address`."),
    opt(
        "protocol",
        Kind::Enum(&["tcp", "udp", "sctp"]),
        Dv("tcp"),
        "Service protocol.",
    ),
    opt(
        "fwmark",
        uint(1, 4_294_967_295),
        NONE,
        "Firewall mark service instead of address/port (exclusive with `address`).",
    ),
    opt(
        "scheduler",
        Kind::Enum(SCHEDULERS),
        Dv("wlc"),
        "IPVS scheduler.",
    ),
    opt(
        "forwarding",
        Kind::Enum(FORWARDING),
        Dv("nat"),
        "Packet forwarding: `nat` (masquerade), `dr` (direct routing), `tun` (IP-in-IP).",
    ),
    opt(
        "persistence_timeout",
        uint(0, 2_592_000),
        Dv("0"),
        "Seconds a client sticks to one real server (0 = off).",
    ),
    opt(
        "persistence_netmask",
        Kind::Netmask,
        NONE,
        "Clients in one network of this size share persistence.",
    ),
    opt(
        "quorum",
        uint(1, 65535),
        Dv("1"),
        "Sum of weights of alive real servers needed for the service to be up.",
    ),
    opt(
        "hysteresis",
        uint(0, 65535),
        Dv("0"),
        "Quorum hysteresis: up at quorum + hysteresis, down below quorum - hysteresis.",
    ),
    opt(
        "sorry_server",
        Kind::HostPort,
        NONE,
        "Server used when no real server is alive: `ADDR[:PORT]`.",
    ),
    opt(
        "check",
        Kind::Ref("check"),
        NONE,
        "Default check for the real servers.",
    ),
    opt(
        "cleanup",
        Kind::Bool,
        Dv("1"),
        "Remove the service from the kernel when minivrrp stops.",
    ),
    // Commands on quorum changes.
    opt("quorum_up", CMD, NONE, "Command run, as written, when the alive real servers' weights reach quorum again (keepalived `quorum_up`); the hotplug hook also gets `ACTION=NOTIFY_UP TYPE=VIRTUAL_SERVER`."),
    opt("quorum_down", CMD, NONE, "Command run, as written, when quorum is lost (keepalived `quorum_down`); hotplug `ACTION=NOTIFY_DOWN`."),
];

const REAL_SERVER: &[OptionSpec] = &[
    opt(
        "virtual_server",
        Kind::Ref("virtual_server"),
        Required,
        "The `virtual_server` section this server belongs to.",
    ),
    opt("address", Kind::Ip, Required, "Real server address."),
    opt(
        "port",
        PORT,
        Derived("the virtual server's port"),
        "Real server port.",
    ),
    opt(
        "weight",
        uint(0, 65535),
        Dv("1"),
        "IPVS weight (0 = no new connections).",
    ),
    opt(
        "check",
        Kind::Ref("check"),
        Derived("the virtual server's `check`"),
        "Health check for this server.",
    ),
    opt(
        "inhibit_on_failure",
        Kind::Bool,
        Dv("0"),
        "On failure set weight 0 instead of removing the server.",
    ),
    opt(
        "forwarding",
        Kind::Enum(FORWARDING),
        Derived("the virtual server's `forwarding`"),
        "Forwarding method for this server.",
    ),
    // Commands on health changes.
    opt("notify_up", CMD, NONE, "Command run, as written, when this server's check passes after failing (keepalived `notify_up`); the hotplug hook also gets `ACTION=NOTIFY_UP TYPE=REAL_SERVER`."),
    opt("notify_down", CMD, NONE, "Command run, as written, when this server's check fails (keepalived `notify_down`); hotplug `ACTION=NOTIFY_DOWN`."),
];

/// The globals section's spec (first in [`SCHEMA`]), for a file without a globals section.
pub fn globals_spec() -> &'static SectionSpec {
    &SCHEMA[0]
}

/// Every section type, in the order `check` prints them and docs/options.md documents them.
pub static SCHEMA: &[SectionSpec] = &[
    SectionSpec {
        stype: "globals",
        fixed_name: Some("globals"),
        needs_name: true,
        help: "Daemon-wide settings; at most one section, named `globals`.",
        options: GLOBALS,
    },
    SectionSpec {
        stype: "instance",
        fixed_name: None,
        needs_name: false,
        help: "A VRRP instance (keepalived `vrrp_instance`).",
        options: INSTANCE,
    },
    SectionSpec {
        stype: "script",
        fixed_name: None,
        needs_name: true,
        help:
            "A tracking script (keepalived `vrrp_script`), named so `track_script` can refer to it.",
        options: SCRIPT,
    },
    SectionSpec {
        stype: "check",
        fixed_name: None,
        needs_name: true,
        help: "A native health check, used by `track_check` or by real servers.",
        options: CHECK,
    },
    SectionSpec {
        stype: "sync_group",
        fixed_name: None,
        needs_name: false,
        help: "Instances that change state together (keepalived `vrrp_sync_group`).",
        options: SYNC_GROUP,
    },
    SectionSpec {
        stype: "virtual_server",
        fixed_name: None,
        needs_name: true,
        help: "An IPVS service (keepalived `virtual_server`).",
        options: VIRTUAL_SERVER,
    },
    SectionSpec {
        stype: "real_server",
        fixed_name: None,
        needs_name: false,
        help: "A real server of a virtual server (keepalived `real_server`).",
        options: REAL_SERVER,
    },
];

/// keepalived.conf keywords a keepalived user will try, and what to write here instead.
/// Options that were once in the table and are refused with a reason and what to do,
/// rather than as unknown: (section type, option, message).
pub const UNSUPPORTED: &[(&str, &str, &str)] = &[(
    "instance",
    "accept",
    "not supported: RFC 5798 Accept_Mode is not implemented (as master, Linux delivers \
     traffic addressed to the VIPs either way, like keepalived without vrrp_strict); \
     delete this line",
)];

/// The reason `option` of section type `stype` is refused, if it is a known unsupported one.
pub fn unsupported(stype: &str, option: &str) -> Option<&'static str> {
    UNSUPPORTED
        .iter()
        .find(|(t, o, _)| *t == stype && *o == option)
        .map(|(_, _, m)| *m)
}

pub const KEEPALIVED_HINTS: &[(&str, &str)] = &[
    ("vrrp_instance", "config instance"),
    ("vrrp_script", "config script"),
    ("vrrp_sync_group", "config sync_group"),
    ("global_defs", "config globals 'globals'"),
    ("vrrp_rt_priority", "option sched_priority"),
    ("vrrp_no_swap", "option lock_memory '1'"),
    ("virtual_router_id", "option vrid"),
    ("virtual_ipaddress", "list vip"),
    ("nopreempt", "option preempt '0'"),
    ("authentication", "option auth_type / option auth_pass"),
    ("auth_hmac", "list auth_hmac_key / option auth_hmac_active_key, auth_hmac_mode, auth_hmac_anti_replay, auth_hmac_time_window"),
    ("unicast_src_ip", "option unicast_src"),
    ("vrrp_version", "option version"),
    ("garp_master_delay", "option garp_delay"),
    ("garp_master_repeat", "option garp_repeat"),
    ("garp_master_refresh", "option garp_refresh"),
    ("script", "option command"),
    ("group", "list member"),
    ("lb_algo", "option scheduler"),
    ("lb_kind", "option forwarding"),
    ("persistence_granularity", "option persistence_netmask"),
    ("delay_loop", "option interval of the check section"),
    ("virtualhost", "option host"),
    ("status_code", "list status"),
];

/// Levenshtein distance, for "did you mean" on misspelt names (short strings only).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A hint for an unknown name: keepalived's spelling, a near miss, or the list of known names.
pub fn suggest(unknown: &str, known: &[&str]) -> String {
    if let Some((_, ours)) = KEEPALIVED_HINTS.iter().find(|(k, _)| *k == unknown) {
        return format!("that is keepalived syntax; write {ours}");
    }
    if let Some(close) = known
        .iter()
        .filter(|k| edit_distance(unknown, k) <= 2)
        .min_by_key(|k| edit_distance(unknown, k))
    {
        return format!("did you mean '{close}'?");
    }
    format!("known: {}", known.join(", "))
}

pub fn section(stype: &str) -> Option<&'static SectionSpec> {
    SCHEMA.iter().find(|s| s.stype == stype)
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Appends `text` to `out` wrapped at 78 columns, every line indented by `indent` spaces.
fn push_wrapped(out: &mut String, text: &str, indent: usize) {
    let mut col = 0;
    for word in text.split_whitespace() {
        if col > indent && col + 1 + word.len() > 78 {
            out.push('\n');
            col = 0;
        }
        if col == 0 {
            out.extend(core::iter::repeat_n(' ', indent));
            col = indent;
        } else {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += word.len();
    }
    out.push('\n');
}

/// The option reference for a console (`minivrrp options [SECTION]`, 80 columns), generated
/// from [`SCHEMA`] like docs/options.md; `Err` names the known section types.
pub fn options_text(stype: Option<&str>) -> Result<String, String> {
    let sections: Vec<&SectionSpec> = match stype {
        None => SCHEMA.iter().collect(),
        Some(t) => match section(t) {
            Some(s) => vec![s],
            None => {
                let known: Vec<&str> = SCHEMA.iter().map(|s| s.stype).collect();
                return Err(format!(
                    "unknown section type '{t}': {}",
                    suggest(t, &known)
                ));
            }
        },
    };
    let mut out = String::new();
    for s in sections {
        let _ = writeln!(out, "config {}", s.stype);
        push_wrapped(&mut out, &s.help.replace('`', ""), 2);
        for o in s.options {
            let word = if o.list { "list" } else { "option" };
            let default = match o.default {
                DefaultValue::None => String::new(),
                DefaultValue::Required => ", required".to_string(),
                DefaultValue::Value(v) => format!(", default {v}"),
                DefaultValue::Derived(d) => format!(", default: {d}"),
            };
            let _ = writeln!(out, "  {word} {}", o.name);
            // The reference table's text without its Markdown.
            let text = format!("{}{default}. {}", o.kind.describe(), o.help);
            push_wrapped(&mut out, &text.replace("\\|", "|").replace('`', ""), 6);
        }
        out.push('\n');
    }
    Ok(out)
}

/// The option reference of `docs/options.md`, generated from [`SCHEMA`].
pub fn options_markdown() -> String {
    let mut out = String::new();
    out.push_str("Generated from the schema table (`src/config/schema.rs`); `minivrrp check -f FILE` prints a file with every default filled in.\n");
    out.push_str(
        "Booleans accept `1/0`, `yes/no`, `on/off`, `true/false`. Seconds are decimal (`0.5`).\n",
    );
    out.push_str("Tracker lists take `NAME` or `NAME weight W` with W in -253..253, e.g. `list track_script 'chk_nginx weight -10'`.\n\n");
    for s in SCHEMA {
        let _ = writeln!(out, "## config {}\n\n{}\n", s.stype, s.help);
        out.push_str("| option | type | default | description |\n|---|---|---|---|\n");
        for o in s.options {
            let default = match o.default {
                DefaultValue::None => "-".to_string(),
                DefaultValue::Required => "**required**".to_string(),
                DefaultValue::Value(v) => format!("`{v}`"),
                DefaultValue::Derived(d) => d.to_string(),
            };
            let name = if o.list {
                format!("`list {}`", o.name)
            } else {
                format!("`{}`", o.name)
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} |",
                o.kind.describe(),
                md_escape(&default),
                md_escape(o.help)
            );
        }
        out.push('\n');
    }
    out.push_str("## Exit codes\n\n");
    out.push_str("| code | meaning |\n|---|---|\n");
    out.push_str("| 0 | success (`check`: the config is valid) |\n");
    out.push_str("| 1 | the config is invalid (every error is printed as `FILE:LINE: SECTION.OPTION: message`) |\n");
    out.push_str("| 2 | usage error (unknown option or subcommand) |\n");
    out.push_str("| 3 | runtime failure (the daemon could not start or stopped on an error) |\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globals_spec_is_the_globals_section() {
        assert_eq!(globals_spec().stype, "globals");
    }

    #[test]
    fn route_in_ip_route_words() {
        use crate::config::model::Route;
        let Ok(Val::Route(r)) = Kind::Route.parse("default via 10.1.0.9 dev wan") else {
            panic!("default route")
        };
        assert_eq!(
            r,
            Route {
                dest: "0.0.0.0".parse().unwrap(),
                prefix_len: 0,
                via: Some("10.1.0.9".parse().unwrap()),
                dev: Some("wan".into()),
                metric: 0,
                table: 254,
            }
        );
        let Ok(Val::Route(r)) = Kind::Route.parse("default via fe80::1 dev wan") else {
            panic!("IPv6 default")
        };
        assert_eq!(r.dest, "::".parse::<IpAddr>().unwrap());
        let Ok(Val::Route(r)) = Kind::Route.parse("10.9.0.0/16 via 10.0.0.9 metric 10 table 100")
        else {
            panic!("metric and table")
        };
        assert_eq!((r.prefix_len, r.metric, r.table), (16, 10, 100));
        let Ok(Val::Route(r)) = Kind::Route.parse("192.0.2.7 dev lan table main") else {
            panic!("host route")
        };
        assert_eq!((r.prefix_len, r.via, r.table), (32, None, 254));
        assert!(
            Kind::Route.parse("10.9.0.1/16 via 10.0.0.9").is_err(),
            "host bits"
        );
        assert!(
            Kind::Route.parse("10.9.0.0/16 via fd00::1").is_err(),
            "family"
        );
        assert!(Kind::Route.parse("default via").is_err());
        assert!(
            Kind::Route.parse("default table 255").is_err(),
            "local table"
        );
        assert!(Kind::Route.parse("default proto kernel").is_err());
        assert!(Kind::Route.parse("default metric -1").is_err());
    }

    #[test]
    fn rule_in_ip_rule_words() {
        use crate::config::model::{Family, Rule};
        let Ok(Val::Rule(r, given)) = Kind::Rule
            .parse("not from 10.1.0.0/16 to all iif lan fwmark 0x10/0xff pref 100 lookup main")
        else {
            panic!("full rule")
        };
        assert!(given);
        assert_eq!(
            r,
            Rule {
                family: Family::Ipv4,
                invert: true,
                from: Some(("10.1.0.0".parse().unwrap(), 16)),
                to: None,
                iif: Some("lan".into()),
                oif: None,
                fwmark: Some((16, Some(255))),
                priority: 100,
                table: 254,
            }
        );
        // Printed the way it reads back.
        assert_eq!(
            r.to_string(),
            "not from 10.1.0.0/16 iif lan fwmark 0x10/0xff priority 100 table main"
        );
        assert_eq!(Kind::Rule.parse(&r.to_string()), Ok(Val::Rule(r, true)));
        let Ok(Val::Rule(r, given)) = Kind::Rule.parse("oif wan priority 5 table 300") else {
            panic!("no family")
        };
        assert!(!given, "the instance gives the family");
        assert_eq!((r.oif.as_deref(), r.table), (Some("wan"), 300));
        let Ok(Val::Rule(r, true)) = Kind::Rule.parse("to fd00:9::/64 priority 7 table 10") else {
            panic!("IPv6 by its address")
        };
        assert_eq!(r.family, Family::Ipv6);
        assert_eq!(r.to_string(), "to fd00:9::/64 priority 7 table 10");
        let Ok(Val::Rule(r, true)) = Kind::Rule.parse("inet6 iif lan priority 7 table 10") else {
            panic!("inet6")
        };
        assert_eq!(r.to_string(), "inet6 iif lan priority 7 table 10");
        for (bad, why) in [
            ("from 10.0.0.0/24 table 100", "needs `priority N`"),
            ("from 10.0.0.0/24 priority 100", "needs `table T`"),
            ("from 10.0.0.1/24 priority 1 table 1", "host bits"),
            (
                "from 10.0.0.0/24 to fd00::/64 priority 1 table 1",
                "IPv6 but the rule is already IPv4",
            ),
            (
                "inet6 from 10.0.0.0/8 priority 1 table 1",
                "IPv4 but the rule is already IPv6",
            ),
            ("from all priority 0 table 1", "priority '0'"),
            ("from all priority 1 table 0", "table '0'"),
            ("fwmark 0x1/zz priority 1 table 1", "fwmark '0x1/zz'"),
            (
                "from all priority 1 table 1 blackhole",
                "'blackhole' needs a value",
            ),
            (
                "from all priority 1 table 1 tos 4",
                "'tos' is not a rule word",
            ),
            (
                "iif a-very-long-ifname priority 1 table 1",
                "not an interface name",
            ),
        ] {
            let e = Kind::Rule.parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn vip_with_dev_label_and_scope() {
        assert_eq!(
            Kind::Vip.parse("10.1.0.1/24 dev wan label wan:vip scope link"),
            Ok(Val::Vip(
                "10.1.0.1".parse().unwrap(),
                Some(24),
                Some("wan".into()),
                Some("wan:vip".into()),
                253
            ))
        );
        assert_eq!(
            Kind::Vip.parse("fd00::1"),
            Ok(Val::Vip("fd00::1".parse().unwrap(), None, None, None, 0))
        );
        assert!(Kind::Vip.parse("10.1.0.1 dev").is_err());
        assert!(Kind::Vip.parse("10.1.0.1 scope moon").is_err());
        assert!(Kind::Vip.parse("10.1.0.1 brd 10.1.0.255").is_err());
        assert!(
            Kind::Vip.parse("fd00::1 label eth0:x").is_err(),
            "labels are IPv4 only"
        );
        assert!(Kind::Vip.parse("10.1.0.1 dev a-very-long-ifname").is_err());
    }

    #[test]
    fn every_default_value_parses_with_its_own_kind() {
        for s in SCHEMA {
            for o in s.options {
                if let DefaultValue::Value(v) = o.default {
                    assert!(
                        o.kind.parse(v).is_ok(),
                        "{}.{} default {v}",
                        s.stype,
                        o.name
                    );
                }
            }
        }
    }

    #[test]
    fn option_names_are_unique_and_uci_valid() {
        for s in SCHEMA {
            for (i, o) in s.options.iter().enumerate() {
                assert!(o
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
                assert!(
                    s.options[i + 1..].iter().all(|p| p.name != o.name),
                    "{}.{} twice",
                    s.stype,
                    o.name
                );
            }
        }
    }

    #[test]
    fn seconds_parse_and_format() {
        assert_eq!(parse_seconds_ms("1"), Some(1000));
        assert_eq!(parse_seconds_ms("0.1"), Some(100));
        assert_eq!(parse_seconds_ms(".5"), Some(500));
        assert_eq!(parse_seconds_ms("3.61"), Some(3610));
        assert_eq!(parse_seconds_ms("1.0001"), None);
        assert_eq!(parse_seconds_ms("1."), None);
        assert_eq!(parse_seconds_ms("-1"), None);
        assert_eq!(parse_seconds_ms(""), None);
        assert_eq!(parse_seconds_ms("1e3"), None);
        assert_eq!(format_seconds_ms(3610), "3.61");
        assert_eq!(format_seconds_ms(100), "0.1");
        assert_eq!(format_seconds_ms(5000), "5");
    }

    #[test]
    fn kinds_reject_with_a_reason() {
        let prio = uint(1, 255);
        assert_eq!(prio.parse("300").unwrap_err(), "300 is out of range 1..255");
        assert!(prio.parse("0x10").is_err());
        assert!(prio.parse("").is_err());
        assert_eq!(Kind::Bool.parse("yes"), Ok(Val::Bool(true)));
        assert!(Kind::Bool.parse("maybe").is_err());
        assert_eq!(
            Kind::IpPrefix.parse("fd00::1/64"),
            Ok(Val::IpPrefix("fd00::1".parse().unwrap(), Some(64)))
        );
        assert!(Kind::IpPrefix.parse("10.0.0.1/33").is_err());
        assert!(Kind::IpPrefix.parse("10.0.0.256").is_err());
        assert_eq!(Kind::Netmask.parse("255.255.255.0"), Ok(Val::Netmask(24)));
        assert!(Kind::Netmask.parse("255.0.255.0").is_err());
        assert_eq!(
            Kind::Tracked.parse("chk_nginx weight -10"),
            Ok(Val::Tracked("chk_nginx".into(), Some(-10)))
        );
        assert!(Kind::Tracked.parse("chk weight 300").is_err());
        assert!(Kind::Tracked.parse("chk -10").is_err());
        assert_eq!(
            Kind::StatusRange.parse("200-299"),
            Ok(Val::StatusRange(200, 299))
        );
        assert!(Kind::StatusRange.parse("299-200").is_err());
        assert_eq!(
            Kind::HostPort.parse("[fd00::1]:80"),
            Ok(Val::HostPort("fd00::1".parse().unwrap(), Some(80)))
        );
        assert_eq!(
            Kind::HostPort.parse("fd00::1"),
            Ok(Val::HostPort("fd00::1".parse().unwrap(), None))
        );
        assert_eq!(
            Kind::HostPort.parse("10.0.0.9:8080"),
            Ok(Val::HostPort("10.0.0.9".parse().unwrap(), Some(8080)))
        );
        assert!(Kind::Str { min: 1, max: 8 }.parse("123456789").is_err());
        let w = Kind::Int {
            min: -253,
            max: 253,
        };
        for huge in [
            "-9223372036854775808",
            "9999999999999999999",
            "-99999999999999999999",
        ] {
            assert!(w.parse(huge).is_err(), "{huge}");
        }
    }

    #[test]
    fn suggestions_for_unknown_names() {
        let known = ["priority", "preempt", "vrid"];
        assert_eq!(
            suggest("nopreempt", &known),
            "that is keepalived syntax; write option preempt '0'"
        );
        assert_eq!(suggest("priorty", &known), "did you mean 'priority'?");
        assert_eq!(suggest("colour", &known), "known: priority, preempt, vrid");
    }

    /// docs/options.md's reference must be exactly what the schema generates. Run with
    /// `UPDATE_DOCS=1` to rewrite the section after changing the table.
    #[test]
    fn docs_options_reference_matches_schema() {
        const BEGIN: &str = "<!-- options:begin -->\n";
        const END: &str = "<!-- options:end -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/options.md");
        let doc = std::fs::read_to_string(path).expect("docs/options.md");
        let start = doc.find(BEGIN).expect("options:begin marker") + BEGIN.len();
        let end = doc.find(END).expect("options:end marker");
        let want = options_markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let new = format!("{}{}{}", &doc[..start], want, &doc[end..]);
            std::fs::write(path, new).expect("write docs/options.md");
            return;
        }
        assert_eq!(
            &doc[start..end],
            want,
            "docs/options.md is stale: run UPDATE_DOCS=1 cargo test --lib options_reference"
        );
    }
}
