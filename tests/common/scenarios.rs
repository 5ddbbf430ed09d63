//! The replay harness of the scenario corpora (tests/conformance, tests/daemon_conformance):
//! every folder is a scenario of JSON lines, run in name order, one environment variable
//! picks a single one, and all failures are listed before the test fails.

use serde_json::Value;
use std::fs;
use std::path::Path;

/// A JSON-lines file, blank lines skipped; errors name the file (and the line).
pub fn jsonl(path: &Path) -> Result<Vec<Value>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}: {l}", path.display())))
        .collect()
}

/// The failure text of a scenario whose output differs: `what differ`, then both sides.
pub fn differ(what: &str, expected: &[Value], actual: &[Value]) -> String {
    let mut msg = format!("{what} differ\n--- expected\n");
    for v in expected {
        msg += &format!("{v}\n");
    }
    msg += "--- actual\n";
    for v in actual {
        msg += &format!("{v}\n");
    }
    msg
}

/// Runs `run` on every folder of `tests/<corpus>` that holds `marker` (or only the one named
/// by the environment variable `only_var`), printing ok/FAIL per scenario; fails when none
/// ran or any failed.
pub fn replay_all(
    corpus: &str,
    marker: &str,
    only_var: &str,
    mut run: impl FnMut(&Path) -> Result<(), String>,
) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(corpus);
    let only = std::env::var(only_var).ok();
    let mut dirs: Vec<_> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("tests/{corpus}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(marker).is_file())
        .collect();
    dirs.sort();
    let mut failed = Vec::new();
    let mut ran = 0;
    for dir in &dirs {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        ran += 1;
        match run(dir) {
            Ok(()) => eprintln!("ok   {name}"),
            Err(e) => {
                eprintln!("FAIL {name}: {e}");
                failed.push(name);
            }
        }
    }
    assert!(ran > 0, "no scenario found in tests/{corpus}");
    assert!(failed.is_empty(), "failed scenarios: {failed:?}");
}
