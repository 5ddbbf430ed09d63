//! `minivrrp check` end to end: every broken config under tests/configs/bad/ exits 1 and prints
//! the exact error line stored next to it; every good config exits 0 and prints the effective
//! config, which itself checks clean.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn minivrrp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minivrrp"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run minivrrp")
}

fn files(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
        .expect("config dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "uci"))
        .map(|p| p.strip_prefix(root).expect("relative").to_path_buf())
        .collect();
    v.sort();
    v
}

#[test]
fn every_bad_config_exits_1_with_its_expected_error_line() {
    let bad = files("tests/configs/bad");
    assert!(bad.len() >= 10, "only {} bad configs", bad.len());
    for path in bad {
        let p = path.to_str().expect("utf-8 path");
        let expected_file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(path.with_extension("expected"));
        let expected = std::fs::read_to_string(&expected_file)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_file.display()));
        let expected = expected.trim_end();
        let out = minivrrp(&["check", "-f", p]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{p}: stderr {stderr}");
        assert!(
            stderr.lines().any(|l| l == expected),
            "{p}: expected line\n  {expected}\nin stderr:\n{stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "{p}: printed a config despite errors"
        );
    }
}

#[test]
fn every_good_config_exits_0_and_prints_a_config_that_checks_clean() {
    let good = files("tests/configs/good");
    assert!(!good.is_empty());
    let tmp = std::env::temp_dir().join(format!("minivrrp-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    for path in good {
        let p = path.to_str().expect("utf-8 path");
        let out = minivrrp(&["check", "-f", p]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("\nconfig instance"), "{p}: {stdout}");
        // Every default is filled in: e.g. each instance prints its garp_repeat.
        assert_eq!(
            stdout.matches("\nconfig instance").count(),
            stdout.matches("\toption garp_repeat ").count(),
            "{p}"
        );
        // The effective config is itself a valid config printing the same thing again.
        let again = tmp.join(path.file_name().expect("name"));
        std::fs::write(&again, &stdout).expect("write effective config");
        let out2 = minivrrp(&["check", "-f", again.to_str().expect("utf-8")]);
        assert_eq!(out2.status.code(), Some(0), "{p} effective config rejected");
        let body = |s: &str| {
            s.split_once('\n')
                .map(|(_, b)| b.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            body(&String::from_utf8_lossy(&out2.stdout)),
            body(&stdout),
            "{p}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn shipped_default_config_checks_clean() {
    let out = minivrrp(&["check", "-f", "rootfs/etc/config/minivrrp"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\toption version '3'"));
}

#[test]
fn defaults_prints_the_embedded_config() {
    let out = minivrrp(&["defaults"]);
    assert_eq!(out.status.code(), Some(0));
    let shipped =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs/etc/config/minivrrp"))
            .expect("shipped config");
    assert_eq!(out.stdout, shipped);
}

#[test]
fn usage_errors_exit_2_and_version_exits_0() {
    assert_eq!(minivrrp(&["--bogus"]).status.code(), Some(2));
    assert_eq!(minivrrp(&["check", "extra"]).status.code(), Some(2));
    let v = minivrrp(&["--version"]);
    assert_eq!(v.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&v.stdout),
        format!("minivrrp {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = minivrrp(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit codes"));
}

#[test]
fn missing_file_is_a_config_error_naming_the_file() {
    let out = minivrrp(&["check", "-f", "tests/configs/does-not-exist.uci"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("tests/configs/does-not-exist.uci: cannot read:"));
}

#[test]
fn daemon_with_invalid_config_exits_1_before_starting() {
    let out = minivrrp(&["-f", "tests/configs/bad/priority-range.uci"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn all_errors_are_reported_not_just_the_first() {
    let dir = std::env::temp_dir().join(format!("minivrrp-cli-multi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let f = dir.join("multi.uci");
    std::fs::write(
        &f,
        "config instance 'a'\n\toption interface 'br-lan'\n\toption vrid '300'\n\toption priority '0'\n\tlist vip '10.0.0.1'\n\tlist track_script 'nope'\n",
    )
    .expect("write");
    let out = minivrrp(&["check", "-f", f.to_str().expect("utf-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(":3: a.vrid: 300 is out of range 1..255"),
        "{stderr}"
    );
    assert!(
        stderr.contains(":4: a.priority: 0 is out of range 1..255"),
        "{stderr}"
    );
    assert!(
        stderr.contains(":6: a.track_script: no script section named 'nope'"),
        "{stderr}"
    );
    assert!(stderr.contains("3 errors in the configuration"), "{stderr}");
}

/// RFC 5798 5.2.9: for IPv6 the first address is the virtual router's link-local one.
/// `check` accepts the config (exit 0) and warns on stderr, naming the file and instance;
/// with the link-local address first, no warning.
#[test]
fn check_warns_when_the_first_ipv6_vip_is_not_link_local() {
    let dir = std::env::temp_dir().join(format!("minivrrp-cli-ll-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let body = |first: &str, second: &str| {
        format!(
            "config instance 'lan6'\n\toption interface 'br-lan'\n\toption vrid '77'\n\
             \toption version '3'\n\tlist vip '{first}'\n\tlist vip '{second}'\n"
        )
    };
    let f = dir.join("ula-first.uci");
    std::fs::write(&f, body("fd77::254/64", "fe80::77/64")).expect("write");
    let out = minivrrp(&["check", "-f", f.to_str().expect("utf-8")]);
    let g = dir.join("ll-first.uci");
    std::fs::write(&g, body("fe80::77/64", "fd77::254/64")).expect("write");
    let good = minivrrp(&["check", "-f", g.to_str().expect("utf-8")]);
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("ula-first.uci: warning: instance 'lan6': the first IPv6 VIP fd77::254 is not link-local"),
        "{stderr}"
    );
    assert_eq!(good.status.code(), Some(0));
    assert!(
        good.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
}

/// `minivrrp options` is the reference on a router (no man pages on OpenWrt): every section
/// type and option of the schema, in the schema's order, every line within 80 columns for a
/// serial console; `options SECTION` only that section; an unknown one is a usage error.
#[test]
fn options_prints_every_section_and_option_of_the_schema_within_80_columns() {
    use minivrrp::config::schema::SCHEMA;
    let all = minivrrp(&["options"]);
    assert!(all.status.success(), "{all:?}");
    let text = String::from_utf8(all.stdout).unwrap();
    assert!(
        text.lines().all(|l| l.len() <= 80),
        "a line over 80 columns"
    );
    let mut at = 0;
    for s in SCHEMA {
        let head = format!("config {}\n", s.stype);
        at += text[at..]
            .find(&head)
            .unwrap_or_else(|| panic!("{head} missing or out of order"));
        for o in s.options {
            let line = format!("  {} {}\n", if o.list { "list" } else { "option" }, o.name);
            at += text[at..]
                .find(&line)
                .unwrap_or_else(|| panic!("{}.{} missing or out of order", s.stype, o.name));
        }
    }
    let one = minivrrp(&["options", "real_server"]);
    let one = String::from_utf8(one.stdout).unwrap();
    assert!(one.starts_with("config real_server\n") && !one.contains("config instance"));
    let bad = minivrrp(&["options", "instanc"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("did you mean 'instance'?"));
}
