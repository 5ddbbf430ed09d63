//! luci-app-minivrrp against the daemon, without a browser: the configuration pages are built
//! from `resources/minivrrp/schema.js`, which must be exactly what this test generates from the
//! schema table (`src/config/schema.rs`), so the form and the daemon cannot drift (run with
//! `UPDATE_LUCI=1` to rewrite it after changing the table); every `rpc.declare` of the views is
//! granted by the app's ACL and listed by the rpcd plugin; the menu has a page per section type.

use std::path::{Path, PathBuf};
use std::process::Command;

use minivrrp::config::schema::{DefaultValue, Kind, OptionSpec, SectionSpec, SCHEMA};
use serde_json::{json, Value};

fn app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openwrt/luci-app-minivrrp")
}

fn resources() -> PathBuf {
    app().join("htdocs/luci-static/resources")
}

const SCHEMA_JS: &str = "minivrrp/schema.js";

/// Milliseconds as the decimal seconds the daemon reads.
fn secs(ms: u64) -> Value {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

/// How the page shows one option: the widget, LuCI's validator (`datatype`) for what LuCI can
/// check itself, and the choices a picker offers. Everything else (VIPs, routes, rules,
/// cross-option rules) is left to the daemon's own parser, run on the staged config before
/// LuCI applies it.
fn option_json(s: &SectionSpec, o: &OptionSpec) -> Value {
    let mut v = json!({
        "name": o.name,
        "list": o.list,
        "type": o.kind.describe().replace('`', "").replace("\\|", "|"),
        "help": o.help,
        "required": o.default == DefaultValue::Required,
        "default": match o.default { DefaultValue::Value(d) => json!(d), _ => Value::Null },
        "derived": match o.default { DefaultValue::Derived(d) => json!(d), _ => Value::Null },
    });
    let (kind, datatype, extra) = match o.kind {
        Kind::Bool => ("bool", None, json!({})),
        Kind::Uint { min, max } => (
            "uint",
            Some(format!("and(uinteger,range({min},{max}))")),
            json!({"min": min, "max": max}),
        ),
        Kind::Int { min, max } => (
            "int",
            Some(format!("and(integer,range({min},{max}))")),
            json!({"min": min, "max": max}),
        ),
        Kind::Seconds { min_ms, max_ms } => (
            "seconds",
            Some(format!(
                "and(ufloat,range({},{}))",
                secs(min_ms),
                secs(max_ms)
            )),
            json!({"min": secs(min_ms), "max": secs(max_ms)}),
        ),
        Kind::Ip => ("ip", Some("ipaddr(\"nomask\")".into()), json!({})),
        Kind::IpPrefix => ("ip_prefix", Some("ipaddr".into()), json!({})),
        Kind::Str { min, max } => (
            "string",
            Some(format!("rangelength({min},{max})")),
            json!({"min": min, "max": max}),
        ),
        Kind::Enum(words) => ("enum", None, json!({"values": words})),
        Kind::Ref(t) => ("ref", None, json!({"ref": t})),
        // The daemon's parser checks the address (the staged config is checked before apply).
        Kind::Email => ("email", None, json!({})),
        Kind::Tracked => ("tracked", None, json!({})),
        Kind::Vip => ("vip", None, json!({})),
        Kind::Route => ("route", None, json!({})),
        Kind::Rule => ("rule", None, json!({})),
        Kind::Netmask => ("netmask", None, json!({})),
        Kind::StatusRange => ("status_range", None, json!({})),
        Kind::HostPort => ("host_port", None, json!({})),
    };
    v["kind"] = json!(kind);
    v["datatype"] = json!(datatype);
    for (k, x) in extra.as_object().into_iter().flatten() {
        v[k] = x.clone();
    }
    // Pickers: an option naming a kernel device offers the router's devices; a tracker offers
    // the sections (or devices) it can name. Free text stays possible (a device that is not
    // up yet, a `weight W` suffix).
    let picks = match (s.stype, o.name, o.kind) {
        (_, "interface", _) => Some("device"),
        (_, "track_interface", _) => Some("device"),
        (_, "track_script", _) => Some("script"),
        (_, "track_check", _) => Some("check"),
        (_, _, Kind::Ref(t)) => Some(t),
        _ => None,
    };
    v["picks"] = json!(picks);
    v
}

fn schema_json() -> Value {
    Value::Array(
        SCHEMA
            .iter()
            .map(|s| {
                json!({
                    "type": s.stype,
                    "fixed_name": s.fixed_name,
                    "needs_name": s.needs_name,
                    "help": s.help,
                    "options": s.options.iter().map(|o| option_json(s, o)).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn schema_js() -> String {
    let body = serde_json::to_string_pretty(&schema_json()).expect("schema JSON");
    format!(
        "'use strict';\n'require baseclass';\n\n\
         // Generated from src/config/schema.rs by tests/pure/luci_app.rs; do not edit.\n\
         // After changing the schema: UPDATE_LUCI=1 cargo test --test pure luci_app::\n\n\
         return baseclass.extend({{\n\tsections: {}\n}});\n",
        body.replace('\n', "\n\t")
    )
}

#[test]
fn schema_js_is_generated_from_the_schema() {
    let path = resources().join(SCHEMA_JS);
    let want = schema_js();
    if std::env::var_os("UPDATE_LUCI").is_some() {
        std::fs::write(&path, &want).expect("write schema.js");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale: run UPDATE_LUCI=1 cargo test --test pure luci_app::",
        path.display()
    );
}

/// The JSON inside a committed schema.js (what the browser gets).
fn committed_schema() -> Value {
    let text = std::fs::read_to_string(resources().join(SCHEMA_JS)).expect("schema.js");
    let start = text.find("sections: ").expect("sections:") + "sections: ".len();
    let end = text.rfind("\n});").expect("end of module");
    serde_json::from_str(&text[start..end]).expect("schema.js holds JSON")
}

/// Every option on the pages is one of the schema with the same type, range and default, and
/// every schema option is on the pages.
#[test]
fn every_option_on_the_pages_is_in_the_schema_with_its_type_and_range() {
    let pages = committed_schema();
    let pages = pages.as_array().expect("an array of sections");
    assert_eq!(
        pages.len(),
        SCHEMA.len(),
        "one form section per section type"
    );
    for (page, spec) in pages.iter().zip(SCHEMA) {
        assert_eq!(page["type"], spec.stype);
        let opts = page["options"].as_array().expect("options");
        assert_eq!(opts.len(), spec.options.len(), "{}", spec.stype);
        for (o, want) in opts.iter().zip(spec.options) {
            let name = o["name"].as_str().expect("name");
            let have = spec.option(name).unwrap_or_else(|| {
                panic!("{}.{name} is on the page but not in the schema", spec.stype)
            });
            assert_eq!(name, want.name, "{}: option order", spec.stype);
            assert_eq!(o["list"], have.list, "{}.{name}", spec.stype);
            let range = |min: Value, max: Value| {
                assert_eq!(o["min"], min, "{}.{name} min", spec.stype);
                assert_eq!(o["max"], max, "{}.{name} max", spec.stype);
            };
            match have.kind {
                Kind::Uint { min, max } => {
                    assert_eq!(o["kind"], "uint");
                    range(json!(min), json!(max));
                    assert_eq!(
                        o["datatype"],
                        format!("and(uinteger,range({min},{max}))"),
                        "{}.{name}",
                        spec.stype
                    );
                }
                Kind::Int { min, max } => {
                    assert_eq!(o["kind"], "int");
                    range(json!(min), json!(max));
                }
                Kind::Seconds { min_ms, max_ms } => {
                    assert_eq!(o["kind"], "seconds");
                    let ms = |v: &Value| (v.as_f64().expect("seconds") * 1000.0).round() as u64;
                    assert_eq!((ms(&o["min"]), ms(&o["max"])), (min_ms, max_ms), "{name}");
                }
                Kind::Str { min, max } => {
                    assert_eq!(o["kind"], "string");
                    range(json!(min), json!(max));
                }
                Kind::Enum(words) => {
                    assert_eq!(o["kind"], "enum");
                    assert_eq!(o["values"], json!(words), "{}.{name}", spec.stype);
                }
                Kind::Bool => assert_eq!(o["kind"], "bool"),
                Kind::Ref(t) => assert_eq!(o["ref"], t),
                Kind::Ip => assert_eq!(o["datatype"], "ipaddr(\"nomask\")"),
                Kind::IpPrefix => assert_eq!(o["datatype"], "ipaddr"),
                _ => assert_eq!(o["datatype"], Value::Null, "{}.{name}", spec.stype),
            }
            match have.default {
                DefaultValue::Value(d) => assert_eq!(o["default"], d, "{}.{name}", spec.stype),
                DefaultValue::Required => assert_eq!(o["required"], true),
                _ => assert_eq!(o["default"], Value::Null, "{}.{name}", spec.stype),
            }
            assert_eq!(o["help"], have.help);
        }
    }
    // The form writes what its widgets hold; a picker for an interface where one is named.
    let instance = &pages[1]["options"];
    let interface = instance
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "interface")
        .unwrap();
    assert_eq!(interface["picks"], "device");
}

/// The views only use option names through the schema module: no option is spelled out in
/// the configuration view, so a renamed or removed option cannot linger there.
#[test]
fn the_config_view_names_no_option_itself() {
    let view = std::fs::read_to_string(resources().join("view/minivrrp/config.js")).unwrap();
    assert!(
        view.contains("'require minivrrp.schema as schema'"),
        "{view}"
    );
    for s in SCHEMA {
        for o in s.options {
            for q in ['\'', '"'] {
                let quoted = format!("{q}{}{q}", o.name);
                // Words of LuCI's own API, and `check`, the rpcd method.
                if matches!(
                    o.name,
                    "interface" | "type" | "enabled" | "status" | "name" | "check"
                ) {
                    continue;
                }
                assert!(
                    !view.contains(&quoted),
                    "config.js spells out option {quoted}: take it from the schema"
                );
            }
        }
    }
}

/// `rpc.declare({ object: 'minivrrp', method: 'NAME' ... })` of every view.
fn declared_methods() -> Vec<(String, String)> {
    let mut out = vec![];
    let mut stack = vec![resources()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for decl in text.split("rpc.declare(").skip(1) {
                let body = &decl[..decl.find('}').expect("declare body")];
                let field = |k: &str| {
                    let at = body
                        .find(&format!("{k}:"))
                        .unwrap_or_else(|| panic!("{k} in {body}"));
                    let rest = &body[at + k.len() + 1..];
                    let q = rest.find('\'').expect("a quoted value");
                    let rest = &rest[q + 1..];
                    rest[..rest.find('\'').unwrap()].to_string()
                };
                out.push((
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    format!("{}.{}", field("object"), field("method")),
                ));
            }
        }
    }
    out
}

#[test]
fn every_declared_call_is_granted_and_listed_by_the_plugin() {
    let acl: Value = serde_json::from_str(
        &std::fs::read_to_string(app().join("root/usr/share/rpcd/acl.d/luci-app-minivrrp.json"))
            .unwrap(),
    )
    .expect("the ACL is JSON");
    let group = &acl["luci-app-minivrrp"];
    let granted = |mode: &str| -> Vec<String> {
        group[mode]["ubus"]["minivrrp"]
            .as_array()
            .map(|a| a.iter().map(|m| m.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let (read, write) = (granted("read"), granted("write"));
    // A reader sees the status and nothing that changes the daemon.
    assert_eq!(read, vec!["status"], "read grants status only");
    assert!(!write.contains(&"status".to_string()) || read.contains(&"status".to_string()));
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs/usr/libexec/rpcd/minivrrp");
    let out = Command::new("sh")
        .arg(&plugin)
        .arg("list")
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).expect("the plugin lists JSON");
    let decls = declared_methods();
    assert!(decls.len() >= 8, "{decls:?}");
    for (file, m) in &decls {
        let (obj, method) = m.split_once('.').unwrap();
        if obj != "minivrrp" {
            continue;
        }
        assert!(
            read.iter().chain(&write).any(|g| g == method),
            "{file}: {m} is not granted by the ACL"
        );
        assert!(
            listed[method].is_object(),
            "{file}: {m} not listed: {listed}"
        );
    }
    // Nothing granted that the plugin does not have, nothing listed that is not granted.
    for m in read.iter().chain(&write) {
        assert!(
            listed[m.as_str()].is_object(),
            "ACL grants {m}, plugin lacks it"
        );
    }
    for m in listed.as_object().unwrap().keys() {
        assert!(
            read.contains(m) || write.contains(m),
            "{m} listed but not granted"
        );
    }
    assert_eq!(group["read"]["uci"], json!(["minivrrp"]));
    assert_eq!(group["write"]["uci"], json!(["minivrrp"]));
}

/// Services > VRRP has one page per section type, each the generated view.
#[test]
fn the_menu_has_a_page_per_section_type() {
    let menu: Value = serde_json::from_str(
        &std::fs::read_to_string(app().join("root/usr/share/luci/menu.d/luci-app-minivrrp.json"))
            .unwrap(),
    )
    .expect("the menu is JSON");
    assert_eq!(
        menu["admin/status/minivrrp"]["action"]["path"],
        "minivrrp/status"
    );
    for s in SCHEMA {
        let node = &menu[format!("admin/services/minivrrp/{}", s.stype)];
        assert_eq!(node["action"]["path"], "minivrrp/config", "{}", s.stype);
        assert_eq!(node["depends"]["acl"], json!(["luci-app-minivrrp"]));
    }
}
