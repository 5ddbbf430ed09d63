//! The import graph of `src/`, at file and folder level: printed, and the test fails on a cycle.
//!
//! A file depends on another when its code (not its comments, not its `#[cfg(test)]` tail)
//! names a path into it: `crate::a::b::Item`, `super::b::Item`, `self::b::Item`, or the
//! brace groups of `use crate::{a::X, b::{Y, Z}}`. A path that stops at a folder's `mod.rs`
//! depends on that `mod.rs` unless the named item is a re-export (`pub use child::Item`), which
//! is followed to the file that defines it, so a parent re-exporting a child's type is not a
//! cycle by itself. A `mod child;` line is ownership, not a use.
//!
//! Run `cargo test --test pure import_graph:: -- --nocapture` to see the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

struct Source {
    /// Module path -> the file's code with comments, strings and the test tail removed.
    code: BTreeMap<Module, String>,
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src/") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_of(rel: &Path) -> Module {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Removes comments, string and char literals (keeping line structure irrelevant), and
/// everything from the first `#[cfg(test)]` on (test modules sit at the end of a file).
fn code_only(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i + 1 < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // A char literal such as '"' or '{' (a lifetime has no closing quote there).
            i += 3;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // An escaped char literal: '\'', '\\', '\n', '\u{..}'.
            i += 2;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
        } else if b[i] == b'r' && b[i..].starts_with(b"r#\"") {
            let end = text[i + 3..].find("\"#").map_or(b.len(), |e| i + 3 + e + 2);
            i = end;
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

impl Source {
    fn load(src: &Path) -> Source {
        let mut files = Vec::new();
        collect(src, &mut files);
        let mut code = BTreeMap::new();
        for f in files {
            let rel = f.strip_prefix(src).expect("under src/");
            let text = std::fs::read_to_string(&f).expect("read a source file");
            code.insert(module_of(rel), code_only(&text));
        }
        Source { code }
    }

    fn is_module(&self, m: &[String]) -> bool {
        self.code.contains_key(m)
    }

    /// `pub use` re-exports of a module: item name -> the path it names.
    fn reexports(&self, m: &Module) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        let Some(code) = self.code.get(m) else {
            return out;
        };
        for stmt in code.split(';') {
            let s = stmt.trim();
            let Some(rest) = s
                .strip_prefix("pub use ")
                .or_else(|| s.strip_prefix("pub(crate) use "))
            else {
                continue;
            };
            for path in expand_use(rest) {
                let (path, alias) = match path.split_once(" as ") {
                    Some((p, a)) => (p.trim().to_string(), a.trim().to_string()),
                    None => {
                        let last = path.rsplit("::").next().unwrap_or("").to_string();
                        (path.clone(), last)
                    }
                };
                out.insert(alias, path.split("::").map(str::to_string).collect());
            }
        }
        out
    }

    /// The file a path used from module `from` lands in (`None`: outside the crate).
    fn resolve(&self, from: &Module, path: &[String], depth: u8) -> Option<Module> {
        let (mut base, rest): (Module, &[String]) = match path.first().map(String::as_str) {
            Some("crate") => (Vec::new(), &path[1..]),
            Some("self") => (from.clone(), &path[1..]),
            Some("super") => {
                let mut b = from.clone();
                let mut r = path;
                while r.first().map(String::as_str) == Some("super") {
                    b.pop();
                    r = &r[1..];
                }
                (b, r)
            }
            // A path relative to the current module: `child::Item` after `mod child;`.
            Some(first) if self.is_module(&[from.clone(), vec![first.to_string()]].concat()) => {
                (from.clone(), path)
            }
            _ => return None,
        };
        let mut i = 0;
        while i < rest.len() {
            let mut next = base.clone();
            next.push(rest[i].clone());
            if self.is_module(&next) {
                base = next;
                i += 1;
            } else {
                break;
            }
        }
        // Follow a re-export of the next name, if the module re-exports it.
        if let Some(item) = rest.get(i) {
            if depth < 8 {
                if let Some(target) = self.reexports(&base).get(item) {
                    if let Some(m) = self.resolve(&base, target, depth + 1) {
                        return Some(m);
                    }
                }
            }
        }
        Some(base)
    }
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand_use(s: &str) -> Vec<String> {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace() || *c == ' ')
        .collect();
    let s = s.trim();
    match s.find('{') {
        None => vec![s.to_string()],
        Some(open) => {
            let prefix = &s[..open];
            let close = s.rfind('}').filter(|&c| c > open).unwrap_or(s.len());
            let inner = &s[open + 1..close];
            let mut parts = Vec::new();
            let (mut depth, mut start) = (0, 0);
            for (k, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        parts.push(inner.get(start..k).unwrap_or(""));
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            parts.push(inner.get(start..).unwrap_or(""));
            parts
                .into_iter()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .flat_map(|p| {
                    if p == "self" {
                        vec![prefix.trim_end_matches("::").to_string()]
                    } else {
                        expand_use(&format!("{prefix}{p}"))
                    }
                })
                .collect()
        }
    }
}

/// Every path the code names that starts with `crate`, `self` or `super` (use statements,
/// expressions and types), plus `use child::...` of a declared child module.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for stmt in code.split(';') {
        let s = stmt.trim_start();
        let s = s
            .strip_prefix("pub(crate) ")
            .or_else(|| s.strip_prefix("pub "))
            .unwrap_or(s);
        if let Some(rest) = s.strip_prefix("use ") {
            for p in expand_use(rest) {
                let p = p.split(" as ").next().unwrap_or("").trim().to_string();
                out.push(p.split("::").map(str::to_string).collect());
            }
        }
    }
    let b = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let at_word = i == 0 || !is_ident(b[i - 1]) && b[i - 1] != b':';
        let head = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|h| b[i..].starts_with(h.as_bytes()));
        if at_word && head.is_some() {
            let start = i;
            while i < b.len() && (is_ident(b[i]) || b[i] == b':') {
                i += 1;
            }
            // `super::{a, b}` groups are expanded with the `use` statements above.
            let p = code[start..i].trim_end_matches(':');
            if p.contains("::") {
                out.push(p.split("::").map(str::to_string).collect());
            }
        } else {
            i += 1;
        }
    }
    out
}

fn strongly_connected(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's algorithm.
    struct T<'a> {
        e: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on: BTreeSet<String>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit(t: &mut T, v: &str) {
        t.index.insert(v.to_string(), t.next);
        t.low.insert(v.to_string(), t.next);
        t.next += 1;
        t.stack.push(v.to_string());
        t.on.insert(v.to_string());
        for w in t.e.get(v).cloned().unwrap_or_default() {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().expect("on the stack");
                t.on.remove(&w);
                let done = w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        e: edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    let nodes: BTreeSet<String> = edges
        .iter()
        .flat_map(|(a, bs)| std::iter::once(a.clone()).chain(bs.iter().cloned()))
        .collect();
    for n in nodes {
        if !t.index.contains_key(&n) {
            visit(&mut t, &n);
        }
    }
    t.out
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

#[test]
fn src_has_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let source = Source::load(&src);
    let mut files: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, code) in &source.code {
        // The crate roots only declare and wire the layers.
        if m.is_empty() {
            continue;
        }
        for p in paths_in(code) {
            let Some(t) = source.resolve(m, &p, 0) else {
                continue;
            };
            // Ancestors reached by a bare `super`/`crate` path (no item) and the file itself.
            if t == *m || t.is_empty() {
                continue;
            }
            files.entry(name(m)).or_default().insert(name(&t));
            if m[0] != t[0] {
                folders
                    .entry(m[0].clone())
                    .or_default()
                    .insert(t[0].clone());
            }
        }
    }
    println!("folders:");
    for (a, bs) in &folders {
        println!(
            "  {a} -> {}",
            bs.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    println!("files:");
    for (a, bs) in &files {
        println!(
            "  {a} -> {}",
            bs.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let folder_cycles = strongly_connected(&folders);
    let file_cycles = strongly_connected(&files);
    for c in &folder_cycles {
        println!("folder cycle: {}", c.join(" <-> "));
    }
    for c in &file_cycles {
        println!("file cycle: {}", c.join(" <-> "));
    }
    assert!(
        folder_cycles.is_empty() && file_cycles.is_empty(),
        "import cycles in src/: folders {folder_cycles:?}, files {file_cycles:?}"
    );
}
