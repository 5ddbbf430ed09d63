//! `minivrrp import` on a corpus of keepalived configurations stored as data: each
//! `tests/import/<case>/` holds the input (`keepalived.conf`, or `keepalived` for OpenWrt's
//! UCI file), the expected UCI on stdout (`expected.uci`) and the expected notes on stderr
//! (`expected.stderr`, empty when everything is carried). The exit code follows: 0 without
//! notes, 1 with. Every produced config must also pass `minivrrp check`.
//!
//! `IMPORT_BLESS=1 cargo test --test pure import::` rewrites the expected files from the current
//! output (review the diff before committing it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn minivrrp(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minivrrp"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run minivrrp")
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/import")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("expected.uci").exists() || std::env::var_os("IMPORT_BLESS").is_some())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn input_of(case: &Path) -> &'static str {
    if case.join("keepalived.conf").exists() {
        "keepalived.conf"
    } else {
        "keepalived"
    }
}

#[test]
fn every_case_prints_its_expected_config_and_notes() {
    let cases = cases();
    assert!(cases.len() >= 8, "only {} cases", cases.len());
    let bless = std::env::var_os("IMPORT_BLESS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let out = minivrrp(case, &["import", input_of(case)]);
        let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
        let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
        if bless {
            std::fs::write(case.join("expected.uci"), &stdout).unwrap();
            std::fs::write(case.join("expected.stderr"), &stderr).unwrap();
            continue;
        }
        let want_uci = std::fs::read_to_string(case.join("expected.uci")).unwrap();
        let want_err = std::fs::read_to_string(case.join("expected.stderr")).unwrap();
        let want_code = if want_err.is_empty() { 0 } else { 1 };
        if stdout != want_uci {
            failures.push(format!(
                "{name}: stdout differs:\n--- want\n{want_uci}--- got\n{stdout}"
            ));
        }
        if stderr != want_err {
            failures.push(format!(
                "{name}: stderr differs:\n--- want\n{want_err}--- got\n{stderr}"
            ));
        }
        if out.status.code() != Some(want_code) {
            failures.push(format!(
                "{name}: exit {:?}, want {want_code}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_imported_config_passes_check() {
    let tmp = std::env::temp_dir().join(format!("minivrrp-import-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let out = minivrrp(&case, &["import", input_of(&case)]);
        // A case whose notes say minivrrp refuses the result is an error case by design.
        if String::from_utf8_lossy(&out.stderr).contains("minivrrp refuses the result") {
            continue;
        }
        let file = tmp.join(format!("{name}.uci"));
        std::fs::write(&file, &out.stdout).unwrap();
        let check = minivrrp(&case, &["check", "-f", file.to_str().unwrap()]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "{name}: imported config fails check:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn usage_errors_exit_2() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let missing = minivrrp(dir, &["import", "tests/import/no-such-file.conf"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(missing.stdout.is_empty());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-file.conf"));
    let no_arg = minivrrp(dir, &["import"]);
    assert_eq!(no_arg.status.code(), Some(2));
    let extra = minivrrp(dir, &["import", "a", "b"]);
    assert_eq!(extra.status.code(), Some(2));
}

/// Inputs too large for the corpus: 100,000 nested blocks (overflowed the stack), a file over
/// the 1 MiB limit, top level or included, and a FIFO. Each is refused with its file (and line
/// for an include) instead of crashing or reading forever.
#[test]
fn hostile_inputs_are_refused_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("minivrrp-import-limits-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let deep = dir.join("deep.conf");
    std::fs::write(&deep, "x {\n".repeat(100_000)).unwrap();
    let out = minivrrp(&dir, &["import", "deep.conf"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("deep.conf:33: {: blocks nested deeper than 32"),
        "{}",
        &err[..err.len().min(2000)]
    );

    let big = dir.join("big.conf");
    let mut text = "! padding\n".repeat(110_000);
    text.push_str("global_defs {\n router_id big\n}\n");
    std::fs::write(&big, &text).unwrap();
    let out = minivrrp(&dir, &["import", "big.conf"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("big.conf: larger than 1048576 bytes"), "{err}");
    std::fs::write(
        dir.join("main.conf"),
        "global_defs {\n}\ninclude big.conf\n",
    )
    .unwrap();
    let out = minivrrp(&dir, &["import", "main.conf"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("main.conf:3: include: ")
            && err.contains("big.conf: larger than 1048576 bytes; skipped"),
        "{err}"
    );

    let fifo = dir.join("fifo.conf");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a fresh path in our own temp dir.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::fs::write(dir.join("f.conf"), "include fifo.conf\n").unwrap();
    let out = minivrrp(&dir, &["import", "f.conf"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("f.conf:1: include: ") && err.contains("fifo.conf: not a regular file"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
