//! The operator's side against real daemons in the namespace lab: `status` (JSON, text,
//! metrics) of a master/backup pair, `maintenance`, `priority`, `reload`, `garp`, and the
//! control socket's refusals (file mode, SO_PEERCRED). Each daemon has its own socket in the
//! lab dir (`Lab::control_socket`); the CLI runs on the host, since namespaces share files.
//!
//! Run as root: `cargo test --test lab control_lab::` (needs tcpdump, ip). Without root: SKIP.

use crate::common;

use common::lab::{self, logs, Lab, Proc, VrrpSpec};
use common::pcap::Kind;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

const VIP: &str = "10.0.0.254";
const VIP_CIDR: &str = "10.0.0.254/24";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_minivrrp"))
}

/// `minivrrp ARGS --socket <node's socket>` on the host.
fn cli(lab: &Lab, node: &str, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .arg("--socket")
        .arg(lab.control_socket(node))
        .output()
        .expect("run minivrrp")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn status_json(lab: &Lab, node: &str) -> serde_json::Value {
    let o = cli(lab, node, &["status", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

fn state(lab: &Lab, node: &str) -> String {
    status_json(lab, node)["instances"][0]["state"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

fn spec(priority: u8) -> VrrpSpec {
    let mut s = VrrpSpec::new(50, priority, 3, 0.2, VIP_CIDR);
    s.extra_uci = vec![
        "option garp_delay '0'".into(),
        "option garp_repeat '1'".into(),
    ];
    s
}

/// r1 (150) master, r2 (100) backup, both up and settled. With `tracker`, r2 tracks a
/// script that always fails with weight -10 (effective priority 90).
fn pair(lab: &Lab, tracker: bool) -> (Proc, Proc) {
    let r1 = lab.spawn_minivrrp("r1", &bin(), &[spec(150)]);
    let r2 = if tracker {
        let mut s = spec(100);
        s.extra_uci
            .push("list track_script 'chk_down weight -10'".into());
        let uci = lab::minivrrp_uci("r2", &[s])
            + "config script 'chk_down'\n\toption command 'false'\n\toption interval '0.2'\n";
        lab.spawn_minivrrp_text("r2", &bin(), &uci, "minivrrp")
    } else {
        lab.spawn_minivrrp("r2", &bin(), &[spec(100)])
    };
    let (h, took) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(10));
    assert_eq!(h, vec!["r1"], "after {took:?}\n{}", logs(&[&r1, &r2]));
    assert!(
        lab::wait_until(Duration::from_secs(5), || state(lab, "r2") == "BACKUP").is_some(),
        "{}",
        logs(&[&r1, &r2])
    );
    (r1, r2)
}

/// Checks the Prometheus text exposition format (0.0.4) line by line: HELP/TYPE comments,
/// metric names, label syntax and escapes, numeric values; every sample's family declared
/// by a TYPE line before it; counters named `_total`. Returns (family, labels, value).
fn parse_prometheus(t: &str) -> Vec<(String, String, f64)> {
    fn name_ok(n: &str) -> bool {
        let mut c = n.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    }
    let mut types: Vec<(String, String)> = Vec::new();
    let mut samples = Vec::new();
    assert!(t.ends_with('\n'), "exposition must end with a newline");
    for line in t.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(name_ok(name), "{line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split(' ');
            let (name, kind) = (w.next().unwrap(), w.next().unwrap());
            assert!(name_ok(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(!types.iter().any(|(n, _)| n == name), "TYPE twice: {line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
            types.push((name.to_string(), kind.to_string()));
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
        let (name, rest) = match line.find('{') {
            Some(i) => (&line[..i], &line[i..]),
            None => line.split_at(line.find(' ').expect(line)),
        };
        assert!(name_ok(name), "{line}");
        // A histogram's samples are its name with _bucket (with `le`), _sum and _count.
        assert!(
            types.last().is_some_and(|(n, k)| n == name
                || (k == "histogram"
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|x| name.strip_suffix(x) == Some(n.as_str())))),
            "sample outside its family: {line}"
        );
        let (labels, value) = if let Some(body) = rest.strip_prefix('{') {
            // Scan label pairs k="v" with \\ \" \n escapes.
            let b = body.as_bytes();
            let mut i = 0;
            loop {
                let k0 = i;
                while b[i] != b'=' {
                    i += 1;
                }
                assert!(name_ok(&body[k0..i]), "label name in {line}");
                assert_eq!(b[i + 1], b'"', "{line}");
                i += 2;
                while b[i] != b'"' {
                    if b[i] == b'\\' {
                        assert!(matches!(b[i + 1], b'\\' | b'"' | b'n'), "escape in {line}");
                        i += 1;
                    }
                    assert_ne!(b[i], b'\n');
                    i += 1;
                }
                i += 1;
                match b[i] {
                    b',' => i += 1,
                    b'}' => break,
                    _ => panic!("label list in {line}"),
                }
            }
            (&body[..i], &body[i + 1..])
        } else {
            ("", rest)
        };
        let value = value.strip_prefix(' ').expect(line);
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        samples.push((name.to_string(), labels.to_string(), v));
    }
    samples
}

fn sample(s: &[(String, String, f64)], name: &str, labels: &str) -> Option<f64> {
    s.iter()
        .find(|(n, l, _)| n == name && l == labels)
        .map(|x| x.2)
}

#[test]
fn pair_status_json_text_metrics_reload_garp_and_refusals() {
    require!(root, "tcpdump");
    let lab = Lab::with_routers("ctlpair", 2);
    let cap = lab.capture("ctl");
    let (mut r1, r2) = pair(&lab, true);
    let procs = [&r1, &r2];

    // --- status --json on both: the documented fields with the right values.
    let m = status_json(&lab, "r1");
    let b = status_json(&lab, "r2");
    for (doc, st) in [(&m, "MASTER"), (&b, "BACKUP")] {
        let i = &doc["instances"][0];
        assert_eq!(i["name"], "vi50", "{doc}");
        assert_eq!(i["state"], st, "{doc}");
        assert_eq!(i["master"], "10.0.0.1", "{doc}");
        assert_eq!(i["vrid"], 50);
        assert_eq!(i["interface"], "br-lan");
        assert_eq!(i["advert_int_ms"], 200);
        assert_eq!(i["master_advert_int_ms"], 200);
        assert_eq!(i["vips"][0], VIP_CIDR);
        assert!(i["since_ms"].as_u64().is_some());
        assert!(!i["reason"].as_str().unwrap().is_empty());
        assert!(i["priority_override"].is_null());
        assert_eq!(doc["maintenance"], false);
    }
    let (mi, bi) = (&m["instances"][0], &b["instances"][0]);
    assert_eq!(mi["base_priority"], 150);
    assert_eq!(mi["effective_priority"], 150);
    assert_eq!(bi["base_priority"], 100);
    // r2's failing script: tracker contribution, check state, last result and latency.
    assert!(
        lab::wait_until(Duration::from_secs(5), || {
            status_json(&lab, "r2")["instances"][0]["effective_priority"] == 90
        })
        .is_some(),
        "{}",
        logs(&procs)
    );
    let b = status_json(&lab, "r2");
    let bi = &b["instances"][0];
    let t = &bi["trackers"][0];
    assert_eq!(t["kind"], "script", "{b}");
    assert_eq!(t["name"], "chk_down");
    assert_eq!(t["weight"], -10);
    assert_eq!(t["state"], "down");
    assert_eq!(t["contribution"], -10);
    let c = &b["checks"][0];
    assert_eq!(c["name"], "chk_down", "{b}");
    assert_eq!(c["kind"], "script");
    assert_eq!(c["state"], "down");
    assert!(c["last_result"].as_str().is_some(), "{b}");
    assert!(c["latency_us"].as_u64().is_some(), "{b}");
    assert_eq!(mi["vips_installed"], true);
    assert_eq!(bi["vips_installed"], false);
    assert!(mi["counters"]["adverts_sent"].as_u64().unwrap() > 0, "{m}");
    assert!(
        bi["counters"]["adverts_received"].as_u64().unwrap() > 0,
        "{b}"
    );
    assert_eq!(bi["counters"]["adverts_sent"], 0, "{b}");
    assert!(m["drops"].is_object());

    // --- the text form and NAME filtering.
    let o = cli(&lab, "r2", &["status"]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.contains("vi50 BACKUP for"), "{}", text(&o));
    assert!(t.contains("master 10.0.0.1"), "{}", text(&o));
    assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
    let o = cli(&lab, "r2", &["status", "nosuch"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // --- metrics: valid exposition format with the state, priorities and counters.
    let o = cli(&lab, "r1", &["metrics"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = parse_prometheus(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        sample(
            &s,
            "minivrrp_instance_state",
            "instance=\"vi50\",state=\"MASTER\""
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &s,
            "minivrrp_instance_state",
            "instance=\"vi50\",state=\"BACKUP\""
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &s,
            "minivrrp_instance_priority",
            "instance=\"vi50\",kind=\"effective\""
        ),
        Some(150.0)
    );
    assert!(sample(&s, "minivrrp_adverts_sent_total", "instance=\"vi50\"").unwrap() > 0.0);
    assert!(sample(&s, "minivrrp_drops_total", "reason=\"bad-ttl\"").is_some());
    let o = cli(&lab, "r2", &["metrics"]);
    let s = parse_prometheus(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        sample(
            &s,
            "minivrrp_check_up",
            "check=\"chk_down\",kind=\"script\""
        ),
        Some(0.0)
    );
    assert!(sample(
        &s,
        "minivrrp_check_latency_seconds",
        "check=\"chk_down\",kind=\"script\""
    )
    .is_some());
    assert_eq!(
        sample(
            &s,
            "minivrrp_tracker_contribution",
            "instance=\"vi50\",kind=\"script\",tracker=\"chk_down\""
        ),
        Some(-10.0)
    );
    assert_eq!(
        sample(
            &s,
            "minivrrp_instance_priority",
            "instance=\"vi50\",kind=\"effective\""
        ),
        Some(90.0)
    );

    // --- garp: one gratuitous ARP for the VIP from r1 on the wire, on request.
    std::thread::sleep(Duration::from_millis(300));
    let t0 = lab::now_realtime();
    let o = cli(&lab, "r1", &["garp", "vi50"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let vip: std::net::Ipv4Addr = VIP.parse().unwrap();
    let seen = cap.wait_for(
        t0,
        Duration::from_secs(3),
        |k| matches!(k, Kind::Garp { sender_ip, .. } if *sender_ip == vip),
    );
    assert!(seen.is_some(), "no GARP after `garp`\n{}", logs(&procs));
    // A BACKUP refuses (it does not own the address).
    let o = cli(&lab, "r2", &["garp", "vi50"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // --- reload: a broken config is refused with its errors, exit 1; the daemon runs on.
    let conf = lab.minivrrp_conf_path("r1");
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        good.replace("option priority '150'", "option priority '300'"),
    )
    .unwrap();
    let o = cli(&lab, "r1", &["reload"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("priority") && err.contains("out of range"),
        "{}",
        text(&o)
    );
    assert!(r1.running());
    assert_eq!(state(&lab, "r1"), "MASTER");
    std::fs::write(&conf, &good).unwrap();
    let o = cli(&lab, "r1", &["reload"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("unchanged"),
        "{}",
        text(&o)
    );

    // --- refusals: a non-root client cannot even connect (socket mode 0600) ...
    let sock = lab.control_socket("r1");
    let as_nobody = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .arg("--socket")
            .arg(&sock)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    let o = as_nobody(&["status"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ermission denied"),
        "{}",
        text(&o)
    );
    // ... and with the file opened up, SO_PEERCRED still refuses it, and counts it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = as_nobody(&["maintenance", "on"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("for root"),
        "{}",
        text(&o)
    );
    let m = status_json(&lab, "r1");
    assert_eq!(m["maintenance"], false);
    assert_eq!(m["control"]["refused_not_root"], 1, "{m}");

    // --- the socket goes away with the daemon.
    r1.terminate();
    assert!(r1.wait_exit(Duration::from_secs(5)));
    assert!(!sock.exists(), "socket left behind");
    drop(cap);
}

#[test]
fn maintenance_and_priority_override_move_the_vip() {
    require!(root, "tcpdump");
    let lab = Lab::with_routers("ctlmaint", 2);
    let (r1, r2) = pair(&lab, false);
    let procs = [&r1, &r2];
    let s = spec(100);
    // The backup takes over after Skew_Time from the priority-0 advert; allow a few
    // intervals for the CLI round trip and a loaded machine.
    let handover = s.skew_time() + Duration::from_secs(2);

    let o = cli(&lab, "r1", &["maintenance", "on"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (h, took) = lab.wait_holders(VIP, &["r2"], handover);
    assert_eq!(h, vec!["r2"], "after {took:?}\n{}", logs(&procs));
    // A figure, not an assertion: includes the CLI round trip and 20 ms polling of `ip`.
    println!(
        "maintenance on -> VIP on r2 after {:.0} ms (Skew_Time {:.0} ms)",
        took.as_secs_f64() * 1000.0,
        s.skew_time().as_secs_f64() * 1000.0
    );
    let m = status_json(&lab, "r1");
    assert_eq!(m["maintenance"], true);
    assert_eq!(m["instances"][0]["state"], "BACKUP");
    assert_eq!(m["instances"][0]["reason"], "maintenance mode");
    assert_eq!(m["instances"][0]["master"], "10.0.0.2", "{m}");
    assert_eq!(m["instances"][0]["counters"]["priority_zero_sent"], 1);

    // Survives SIGHUP: still BACKUP after a reload and several Master_Down_Intervals.
    r1.signal(libc::SIGHUP);
    std::thread::sleep(s.master_down_interval() * 3);
    assert_eq!(lab.holders(VIP), vec!["r2"], "{}", logs(&procs));
    assert_eq!(status_json(&lab, "r1")["maintenance"], true);

    // Off: r1 (150, preempt) takes back over from r2 (100).
    let o = cli(&lab, "r1", &["maintenance", "off"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let back = s.master_down_interval() * 2 + Duration::from_secs(2);
    let (h, took) = lab.wait_holders(VIP, &["r1"], back);
    assert_eq!(h, vec!["r1"], "after {took:?}\n{}", logs(&procs));

    // Priority override on the backup above the master's 150: it preempts.
    let o = cli(&lab, "r2", &["priority", "vi50", "200"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (h, took) = lab.wait_holders(VIP, &["r2"], back);
    assert_eq!(h, vec!["r2"], "after {took:?}\n{}", logs(&procs));
    let b = status_json(&lab, "r2");
    assert_eq!(b["instances"][0]["priority_override"], 200);
    assert_eq!(b["instances"][0]["effective_priority"], 200);
    assert_eq!(b["instances"][0]["base_priority"], 100);
    // Reset: r1 preempts back.
    let o = cli(&lab, "r2", &["priority", "vi50", "reset"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (h, took) = lab.wait_holders(VIP, &["r1"], back);
    assert_eq!(h, vec!["r1"], "after {took:?}\n{}", logs(&procs));
    // Unknown instance and bad values are refused with exit codes 1 and 2.
    let o = cli(&lab, "r2", &["priority", "nosuch", "10"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = cli(&lab, "r2", &["priority", "vi50", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // Every change is in the daemon's log.
    let log = r1.log_text() + &r2.log_text();
    for l in [
        "control: maintenance on",
        "control: maintenance off",
        "vi50: base priority overridden to 200",
        "vi50: priority override removed",
    ] {
        assert!(log.contains(l), "missing {l:?}\n{log}");
    }
}

/// Runs the rpcd plugin as rpcd does: `PLUGIN list`, `PLUGIN call METHOD` with the
/// arguments as JSON on stdin; every answer must be one JSON object.
fn rpcd(lab: &Lab, shell: &[&str], args: &[&str], stdin: &str) -> serde_json::Value {
    use std::io::Write;
    let plugin = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/rootfs/usr/libexec/rpcd/minivrrp"
    );
    let mut c = Command::new(shell[0]);
    c.args(&shell[1..])
        .arg(plugin)
        .args(args)
        .env("MINIVRRP", bin())
        .env("MINIVRRP_SOCKET", lab.control_socket("r1"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{shell:?} {args:?}: not JSON ({e}): {}", text(&o)));
    assert!(v.is_object(), "{v}");
    v
}

#[test]
fn rpcd_plugin_answers_list_and_call_with_json() {
    require!(root, "tcpdump");
    let lab = Lab::with_routers("ctlrpcd", 1);
    let r1 = lab.spawn_minivrrp("r1", &bin(), &[spec(150)]);
    let (h, _) = lab.wait_holders(VIP, &["r1"], Duration::from_secs(10));
    assert_eq!(h, vec!["r1"], "{}", logs(&[&r1]));
    // OpenWrt runs it with busybox ash; Debian's dash is the closest POSIX shell here.
    let mut shells: Vec<Vec<&str>> = vec![vec!["/bin/sh"]];
    if std::path::Path::new("/bin/busybox").exists() {
        shells.push(vec!["/bin/busybox", "sh"]);
    }
    for sh in &shells {
        let l = rpcd(&lab, sh, &["list"], "");
        for m in [
            "status",
            "maintenance_on",
            "maintenance_off",
            "reload",
            "priority",
            "priority_reset",
            "garp",
            "check",
        ] {
            assert!(l[m].is_object(), "{sh:?}: {l}");
        }
        // Arguments as rpcd writes them (spaces after colons) and as uhttpd adds the session.
        let r = rpcd(
            &lab,
            sh,
            &["call", "priority"],
            r#"{ "name": "vi50", "priority": 201, "ubus_rpc_session": "0123abcd" }"#,
        );
        assert_eq!(r["ok"], true, "{sh:?}: {r}");
        assert_eq!(
            status_json(&lab, "r1")["instances"][0]["effective_priority"],
            201
        );
        let r = rpcd(&lab, sh, &["call", "priority_reset"], r#"{"name":"vi50"}"#);
        assert_eq!(r["ok"], true, "{sh:?}: {r}");
        assert_eq!(
            status_json(&lab, "r1")["instances"][0]["priority_override"],
            serde_json::Value::Null
        );
        let r = rpcd(&lab, sh, &["call", "garp"], r#"{"name":"vi50"}"#);
        assert_eq!(r["ok"], true, "{sh:?}: {r}");
        // Names and priorities are checked before anything runs.
        for (m, args) in [
            ("garp", r#"{"name":"-x"}"#),
            ("garp", r#"{"name":"a;reboot"}"#),
            ("priority", r#"{"name":"vi50","priority":"1;x"}"#),
            ("priority", r#"{"name":"vi50"}"#),
        ] {
            let r = rpcd(&lab, sh, &["call", m], args);
            assert_eq!(r["ok"], false, "{sh:?} {m} {args}: {r}");
            assert_eq!(r["code"], 2, "{sh:?} {m} {args}: {r}");
        }
        let r = rpcd(
            &lab,
            sh,
            &["call", "priority"],
            r#"{"name":"vi50","priority":0}"#,
        );
        assert_eq!(r["ok"], false, "{sh:?}: {r}");
        let s = rpcd(&lab, sh, &["call", "status"], "{}");
        assert_eq!(s["instances"][0]["name"], "vi50", "{s}");
        assert_eq!(s["instances"][0]["state"], "MASTER", "{s}");
        let r = rpcd(&lab, sh, &["call", "reload"], "{}");
        assert_eq!(r["ok"], true, "{r}");
        let r = rpcd(&lab, sh, &["call", "nosuch"], "{}");
        assert_eq!(r["ok"], false, "{r}");
    }
    let r = rpcd(&lab, &["/bin/sh"], &["call", "maintenance_on"], "{}");
    assert_eq!(r["ok"], true, "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("maintenance on"),
        "{r}"
    );
    assert_eq!(status_json(&lab, "r1")["maintenance"], true);
    // A refused reload carries the config errors in the message, still valid JSON.
    let conf = lab.minivrrp_conf_path("r1");
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        good.replace("option vrid '50'", "option vrid '\"x\\'"),
    )
    .unwrap();
    let r = rpcd(&lab, &["/bin/sh"], &["call", "reload"], "{}");
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["code"], 1, "{r}");
    // ...and as objects LuCI shows under the option they name.
    let e = &r["errors"][0];
    assert_eq!(e["file"], conf.to_string_lossy().as_ref(), "{r}");
    assert!(e["line"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(e["section"], "vi50", "{r}");
    assert_eq!(e["option"], "vrid", "{r}");
    // Daemon down: status answers a JSON error, not nothing.
    drop(r1);
    let r = rpcd(&lab, &["/bin/sh"], &["call", "status"], "{}");
    assert_eq!(r["ok"], false, "{r}");
}

/// A package upgrade: procd starts the new binary while the old daemon is still leaving, so
/// the new one finds the control socket held. It takes the socket over as soon as the old
/// one has gone, and the old one's exit does not remove the new one's socket file (before,
/// the new daemon ran without a socket, and `minivrrp status` / `ubus call minivrrp status`
/// failed until its next restart).
#[test]
fn a_daemon_started_while_the_old_one_leaves_takes_the_control_socket_over() {
    require!(root, "tcpdump");
    let lab = Lab::with_routers("ctlup", 1);
    let uci = |vrid: u8| {
        let mut s = spec(150);
        s.vrid = vrid;
        s.name = format!("vi{vrid}");
        lab::minivrrp_uci("r1", &[s])
    };
    let mut old = lab.spawn_minivrrp_text("r1", &bin(), &uci(50), "old");
    assert!(
        lab::wait_until(Duration::from_secs(5), || cli(&lab, "r1", &["status"])
            .status
            .success())
        .is_some(),
        "{}",
        old.log_text()
    );
    let new = lab.spawn_minivrrp_text("r1", &bin(), &uci(51), "new");
    assert!(
        lab::wait_until(Duration::from_secs(5), || new
            .log_text()
            .contains("taking it over when that daemon leaves"))
        .is_some(),
        "{}",
        new.log_text()
    );
    assert_eq!(status_json(&lab, "r1")["pid"], old.pid());
    old.terminate();
    assert!(old.wait_exit(Duration::from_secs(5)));
    let took = lab::wait_until(Duration::from_secs(3), || {
        let o = cli(&lab, "r1", &["status", "--json"]);
        o.status.success()
            && serde_json::from_slice::<serde_json::Value>(&o.stdout)
                .is_ok_and(|v| v["pid"] == new.pid())
    });
    assert!(took.is_some(), "{}", logs(&[&old, &new]));
    // And it stays: the old daemon's exit left the file alone.
    std::thread::sleep(Duration::from_millis(500));
    assert!(lab.control_socket("r1").exists());
    assert_eq!(status_json(&lab, "r1")["pid"], new.pid());
    assert_eq!(status_json(&lab, "r1")["instances"][0]["name"], "vi51");
}
