//! OpenWrt's `/etc/config/keepalived` (what LuCI writes) read as the keepalived statements
//! OpenWrt's init script generates from it, so one mapper serves both inputs.
//!
//! The init script's model: `globals` holds global_defs; an instance (`vrrp_instance`, found
//! by its `name` option) lists `virtual_ipaddress`, `unicast_peer`, `track_script` and
//! `track_interface` by the `name` of `ipaddress`, `peer`, `track_script` and
//! `track_interface` sections; `vrrp_script`, `vrrp_sync_group`, `virtual_server` (with
//! `real_server` and `url` sections by name) follow the same pattern. Statements carry the
//! line of the UCI option they came from.

use super::conf::Node;
use super::note::Pos;
use super::Note;
use crate::config::uci::{self, Section};

struct Reader<'a> {
    file: &'a str,
    sections: &'a [Section],
}

fn node(key: &str, args: Vec<String>, block: Option<Vec<Node>>, pos: Pos) -> Node {
    Node {
        key: key.to_string(),
        args,
        block,
        pos,
    }
}

impl Reader<'_> {
    fn pos(&self, line: usize) -> Pos {
        Pos {
            file: self.file.to_string(),
            line,
        }
    }

    fn get<'s>(&self, s: &'s Section, opt: &str) -> Option<(&'s str, Pos)> {
        let o = s.get(opt)?;
        let (v, line) = *o.values().first()?;
        Some((v, self.pos(line)))
    }

    fn values<'s>(&self, s: &'s Section, opt: &str) -> Vec<(&'s str, Pos)> {
        s.get(opt)
            .map(|o| {
                o.values()
                    .into_iter()
                    // config_get on a list gives the words of all items.
                    .flat_map(|(v, line)| v.split_whitespace().map(move |w| (w, line)))
                    .map(|(v, line)| (v, self.pos(line)))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn named(&self, stype: &str, name: &str) -> Vec<&Section> {
        self.sections
            .iter()
            .filter(|s| s.stype == stype)
            .filter(|s| {
                s.get("name")
                    .is_some_and(|o| o.values().first().map(|v| v.0) == Some(name))
            })
            .collect()
    }

    /// `option X 'v'` as statement `X v` (the init script's print_elems_indent).
    fn simple(&self, s: &Section, opts: &[&str], out: &mut Vec<Node>) {
        for o in opts {
            if let Some((v, pos)) = self.get(s, o) {
                if !v.is_empty() {
                    out.push(node(o, vec![v.to_string()], None, pos));
                }
            }
        }
    }

    /// Flags written as a bare keyword when set to anything (the init script's no_val_*).
    fn flags(&self, s: &Section, opts: &[&str], out: &mut Vec<Node>) {
        for o in opts {
            if let Some((v, pos)) = self.get(s, o) {
                if !v.is_empty() {
                    out.push(node(o, vec![], None, pos));
                }
            }
        }
    }

    fn section_pos(&self, s: &Section) -> Pos {
        self.pos(s.line)
    }

    fn globals(&self, s: &Section, notes: &mut Vec<Note>) -> Node {
        let mut body = Vec::new();
        let emails = self.values(s, "notification_email");
        if let Some((_, pos)) = emails.first() {
            let items = emails
                .iter()
                .map(|(v, p)| node(v, vec![], None, p.clone()))
                .collect();
            body.push(node("notification_email", vec![], Some(items), pos.clone()));
        }
        self.simple(
            s,
            &[
                "notification_email_from",
                "smtp_server",
                "smtp_connect_timeout",
                "router_id",
                "vrrp_mcast_group4",
                "vrrp_mcast_group6",
                "vrrp_startup_delay",
            ],
            &mut body,
        );
        if let Some((v, pos)) = self.get(s, "alt_config_file") {
            notes.push(Note::new(
                &pos,
                "alt_config_file",
                format!("keepalived reads {v} instead of this file: run `minivrrp import {v}`"),
            ));
        }
        node("global_defs", vec![], Some(body), self.section_pos(s))
    }

    fn ipaddress(&self, name: &str) -> Vec<Node> {
        self.named("ipaddress", name)
            .into_iter()
            .filter_map(|s| {
                let (addr, apos) = self.get(s, "address")?;
                let mut args = Vec::new();
                if let Some((dev, _)) = self.get(s, "device") {
                    let suffix = self.get(s, "label_suffix").map_or("vip", |v| v.0);
                    args.extend([
                        "dev".into(),
                        dev.into(),
                        "label".into(),
                        format!("{dev}:{suffix}"),
                    ]);
                    if let Some((scope, _)) = self.get(s, "scope") {
                        args.extend(["scope".into(), scope.into()]);
                    }
                }
                Some(node(addr, args, None, apos))
            })
            .collect()
    }

    fn track_elems(&self, stype: &str, name: &str, with_direction: bool) -> Vec<Node> {
        self.named(stype, name)
            .into_iter()
            .filter_map(|s| {
                let (value, pos) = self.get(s, "value")?;
                let mut args = Vec::new();
                if let Some((w, _)) = self.get(s, "weight") {
                    args.extend(["weight".into(), w.into()]);
                    if with_direction {
                        if let Some((d, _)) = self.get(s, "direction") {
                            if d == "reverse" || d == "noreverse" {
                                args.push(d.into());
                            }
                        }
                    }
                }
                Some(node(value, args, None, pos))
            })
            .collect()
    }

    fn list_block(
        &self,
        s: &Section,
        opt: &str,
        items: impl Fn(&str, &Pos) -> Vec<Node>,
        out: &mut Vec<Node>,
    ) {
        let names = self.values(s, opt);
        let Some((_, pos)) = names.first() else {
            return;
        };
        let body: Vec<Node> = names.iter().flat_map(|(n, p)| items(n, p)).collect();
        out.push(node(opt, vec![], Some(body), pos.clone()));
    }

    fn vrrp_instance(&self, s: &Section) -> Option<Node> {
        let (name, _) = self.get(s, "name")?;
        let mut body = Vec::new();
        if let (Some((t, tpos)), Some((p, ppos))) =
            (self.get(s, "auth_type"), self.get(s, "auth_pass"))
        {
            body.push(node(
                "authentication",
                vec![],
                Some(vec![
                    node("auth_type", vec![t.into()], None, tpos.clone()),
                    node("auth_pass", vec![p.into()], None, ppos),
                ]),
                tpos,
            ));
        }
        self.simple(
            s,
            &[
                "state",
                "interface",
                "mcast_src_ip",
                "unicast_src_ip",
                "virtual_router_id",
                "version",
                "priority",
                "advert_int",
                "preempt_delay",
                "debug",
                "lvs_sync_daemon_interface",
                "garp_master_delay",
                "garp_master_refresh",
                "garp_master_repeat",
                "garp_master_refresh_repeat",
            ],
            &mut body,
        );
        self.flags(
            s,
            &[
                "vmac_xmit_base",
                "native_ipv6",
                "accept",
                "dont_track_primary",
                "smtp_alert",
                "nopreempt",
                "use_vmac",
            ],
            &mut body,
        );
        for opt in ["virtual_ipaddress", "virtual_ipaddress_excluded"] {
            self.list_block(s, opt, |n, _| self.ipaddress(n), &mut body);
        }
        for opt in ["virtual_routes", "track_bfd"] {
            self.list_block(
                s,
                opt,
                |n, p| vec![node(n, vec![], None, p.clone())],
                &mut body,
            );
        }
        self.list_block(
            s,
            "track_script",
            |n, _| self.track_elems("track_script", n, true),
            &mut body,
        );
        self.list_block(
            s,
            "track_interface",
            |n, _| self.track_elems("track_interface", n, false),
            &mut body,
        );
        self.list_block(
            s,
            "unicast_peer",
            |n, _| {
                self.named("peer", n)
                    .into_iter()
                    .filter_map(|p| self.get(p, "address"))
                    .map(|(a, pos)| node(a, vec![], None, pos))
                    .collect()
            },
            &mut body,
        );
        Some(node(
            "vrrp_instance",
            vec![name.into()],
            Some(body),
            self.section_pos(s),
        ))
    }

    fn vrrp_script(&self, s: &Section) -> Option<Node> {
        let (name, _) = self.get(s, "name")?;
        let mut body = Vec::new();
        self.simple(
            s,
            &["script", "interval", "weight", "fall", "rise"],
            &mut body,
        );
        Some(node(
            "vrrp_script",
            vec![name.into()],
            Some(body),
            self.section_pos(s),
        ))
    }

    fn vrrp_sync_group(&self, s: &Section) -> Option<Node> {
        let (name, _) = self.get(s, "name")?;
        let mut body = Vec::new();
        self.list_block(
            s,
            "group",
            |n, p| vec![node(n, vec![], None, p.clone())],
            &mut body,
        );
        self.flags(s, &["smtp_alert", "global_tracking"], &mut body);
        Some(node(
            "vrrp_sync_group",
            vec![name.into()],
            Some(body),
            self.section_pos(s),
        ))
    }

    fn enabled(&self, s: &Section) -> bool {
        self.get(s, "enabled")
            .is_none_or(|(v, _)| !matches!(v, "0" | "no" | "off" | "false" | "disabled"))
    }

    fn real_server(&self, name: &str) -> Vec<Node> {
        self.named("real_server", name)
            .into_iter()
            .filter(|s| self.enabled(s))
            .filter_map(|s| {
                let (weight, wpos) = self.get(s, "weight")?;
                let (ip, _) = self.get(s, "ipaddr")?;
                let (port, _) = self.get(s, "port")?;
                let mut body = vec![node("weight", vec![weight.into()], None, wpos)];
                if let Some((check, cpos)) = self.get(s, "check") {
                    let mut cbody = Vec::new();
                    let known = match check {
                        "TCP_CHECK" => {
                            self.simple(s, &["connect_timeout", "connect_port"], &mut cbody);
                            true
                        }
                        "MISC_CHECK" => {
                            self.simple(s, &["misc_path"], &mut cbody);
                            true
                        }
                        "HTTP_GET" | "SSL_GET" => {
                            self.simple(
                                s,
                                &[
                                    "connect_timeout",
                                    "connect_port",
                                    "nb_get_retry",
                                    "delay_before_retry",
                                ],
                                &mut cbody,
                            );
                            for (u, _) in self.values(s, "url") {
                                for us in self.named("url", u) {
                                    if let (Some((path, ppos)), Some((digest, dpos))) =
                                        (self.get(us, "path"), self.get(us, "digest"))
                                    {
                                        cbody.push(node(
                                            "url",
                                            vec![],
                                            Some(vec![
                                                node("path", vec![path.into()], None, ppos.clone()),
                                                node("digest", vec![digest.into()], None, dpos),
                                            ]),
                                            ppos,
                                        ));
                                    }
                                }
                            }
                            true
                        }
                        _ => false,
                    };
                    if known {
                        body.push(node(check, vec![], Some(cbody), cpos));
                    }
                }
                Some(node(
                    "real_server",
                    vec![ip.into(), port.into()],
                    Some(body),
                    self.section_pos(s),
                ))
            })
            .collect()
    }

    fn virtual_server(&self, s: &Section) -> Option<Node> {
        if !self.enabled(s) {
            return None;
        }
        let (ip, _) = self.get(s, "ipaddr")?;
        let (port, _) = self.get(s, "port")?;
        let mut body = Vec::new();
        self.simple(
            s,
            &[
                "fwmark",
                "delay_loop",
                "lb_kind",
                "persistence_timeout",
                "persistence_granularity",
                "virtualhost",
                "protocol",
            ],
            &mut body,
        );
        // The init script writes lb_algo rr when none is set.
        let (algo, apos) = self
            .get(s, "lb_algo")
            .unwrap_or(("rr", self.section_pos(s)));
        body.push(node("lb_algo", vec![algo.into()], None, apos));
        if let (Some((ip, pos)), Some((p, _))) = (
            self.get(s, "sorry_server_ip"),
            self.get(s, "sorry_server_port"),
        ) {
            body.push(node("sorry_server", vec![ip.into(), p.into()], None, pos));
        }
        for (rs, _) in self.values(s, "real_server") {
            body.extend(self.real_server(rs));
        }
        Some(node(
            "virtual_server",
            vec![ip.into(), port.into()],
            Some(body),
            self.section_pos(s),
        ))
    }
}

/// Reads `/etc/config/keepalived` text as keepalived statements.
pub fn to_nodes(file: &str, text: &str, notes: &mut Vec<Note>) -> Vec<Node> {
    let parsed = match uci::parse(text) {
        Ok(p) => p,
        Err(errors) => {
            for e in errors {
                notes.push(Note::new(
                    &Pos {
                        file: file.to_string(),
                        line: e.line,
                    },
                    "uci",
                    format!("{}; nothing imported", e.message),
                ));
            }
            return Vec::new();
        }
    };
    let r = Reader {
        file,
        sections: &parsed.sections,
    };
    let mut nodes = Vec::new();
    // The init script's order: globals, instances' helpers by reference, then the blocks.
    for s in &parsed.sections {
        match s.stype.as_str() {
            "globals" => nodes.push(r.globals(s, notes)),
            "vrrp_script" => nodes.extend(r.vrrp_script(s)),
            "vrrp_instance" => nodes.extend(r.vrrp_instance(s)),
            "vrrp_sync_group" => nodes.extend(r.vrrp_sync_group(s)),
            "virtual_server" => nodes.extend(r.virtual_server(s)),
            "ipaddress" | "peer" | "track_script" | "track_interface" | "real_server" | "url" => {}
            "route" | "rule" | "bfd_instance" => {}
            other => notes.push(Note::new(
                &r.section_pos(s),
                other,
                "section type unknown to OpenWrt's keepalived init script; ignored",
            )),
        }
    }
    nodes
}
