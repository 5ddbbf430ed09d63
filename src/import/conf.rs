//! keepalived.conf syntax: a lexer and a block parser with `include` (glob patterns, relative
//! to the including file), comments (`#` and `!`), double-quoted strings and FILE:LINE
//! positions on every statement.
//!
//! keepalived reads a statement per line: the first word is the keyword, the rest its
//! arguments; a `{` (on the same line or alone on the next) opens a block that a `}` closes.
//! `{` and `}` are tokens of their own wherever they stand outside quotes, so the one-line
//! forms `track_script { chk_haproxy }` and `virtual_ipaddress {` parse alike.

use std::path::{Path, PathBuf};

use super::note::{Note, Pos};

/// One statement: `key args...` with an optional `{ ... }` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub key: String,
    pub args: Vec<String>,
    pub block: Option<Vec<Node>>,
    pub pos: Pos,
}

impl Node {
    pub fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }
}

/// Nested `include`s deeper than this are refused (a file including itself would never end).
const MAX_INCLUDE_DEPTH: usize = 8;
/// Files read through `include` in one import, all levels together: a file including itself
/// ten times would otherwise read 10^8 files.
pub const MAX_INCLUDED_FILES: usize = 256;
/// Largest file read (keepalived configurations are a few kilobytes).
pub const MAX_FILE_SIZE: u64 = 1 << 20;
/// Blocks nested deeper than this end the parse (the parser recurses per block).
pub const MAX_NESTING: usize = 32;
/// Files one `include` pattern may match.
const MAX_GLOB_MATCHES: usize = 256;

/// Reads a configuration file, refusing what keepalived refuses or what could never be a
/// configuration: anything but a regular file (`/dev/zero`, a FIFO), or more than
/// [`MAX_FILE_SIZE`] bytes.
pub fn read_config(path: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: opening a FIFO would otherwise wait for a writer. No effect on a
    // regular file.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let m = f.metadata().map_err(|e| e.to_string())?;
    if !m.is_file() {
        return Err("not a regular file".into());
    }
    let mut buf = Vec::new();
    // Bounded even if the file grows after the size check.
    f.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > MAX_FILE_SIZE {
        return Err(format!("larger than {MAX_FILE_SIZE} bytes"));
    }
    String::from_utf8(buf).map_err(|_| "not UTF-8 text".into())
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Open,
    Close,
}

struct Token {
    tok: Tok,
    pos: Pos,
}

/// Splits one line into tokens. Returns an error message for an unterminated quote.
fn lex_line(text: &str, pos: &Pos, out: &mut Vec<Token>) -> Result<(), String> {
    let mut chars = text.chars().peekable();
    let push = |out: &mut Vec<Token>, tok: Tok| {
        out.push(Token {
            tok,
            pos: pos.clone(),
        })
    };
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' | '\r' => {
                chars.next();
            }
            '#' | '!' => break,
            '{' => {
                chars.next();
                push(out, Tok::Open);
            }
            '}' => {
                chars.next();
                push(out, Tok::Close);
            }
            '"' => {
                chars.next();
                let mut w = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\')) => w.push(n),
                            Some(n) => {
                                w.push('\\');
                                w.push(n);
                            }
                            None => w.push('\\'),
                        },
                        _ => w.push(c),
                    }
                }
                if !closed {
                    return Err("unterminated quoted string".into());
                }
                push(out, Tok::Word(w));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if matches!(c, ' ' | '\t' | '\r' | '{' | '}' | '"' | '#' | '!') {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                push(out, Tok::Word(w));
            }
        }
    }
    Ok(())
}

/// The `[...]` class at the start of `pattern` against `c`: `(matched, pattern length)`, or
/// `None` when the class is not closed (then `[` is a plain character).
fn class(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let end = pattern.iter().skip(1).position(|&c| c == ']')?;
    let set = &pattern[1..end + 1];
    let (negate, set) = match set.first() {
        Some('!' | '^') => (true, &set[1..]),
        _ => (false, set),
    };
    let mut hit = false;
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == '-' {
            hit |= set[i] <= c && c <= set[i + 2];
            i += 3;
        } else {
            hit |= set[i] == c;
            i += 1;
        }
    }
    Some((hit != negate, end + 2))
}

/// `*`, `?` and `[...]` matching of one path component, as glob(3) does. Iterative, going back
/// only to the last `*`: at most pattern × name steps, however many stars (recursion on each
/// `*` took over a minute for 11 of them).
fn glob_match(pattern: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    // After the last `*`: where the pattern resumes and the name position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match class(&pattern[p..], name[n]) {
                Some((true, len)) => Some(len),
                Some((false, _)) => None,
                None => (name[n] == '[').then_some(1),
            },
            Some(&c) => (c == name[n]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(len), _) => {
                p += len;
                n += 1;
            }
            (None, Some((sp, sn))) => {
                star = Some((sp, sn + 1));
                p = sp;
                n = sn + 1;
            }
            (None, None) => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == '*')
}

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The files a pattern names, sorted like glob(3) (wildcards in any component).
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for comp in pattern.components() {
        let s = comp.as_os_str().to_string_lossy();
        if !has_magic(&s) {
            for p in &mut found {
                p.push(comp);
            }
            continue;
        }
        let pat: Vec<char> = s.chars().collect();
        let mut next = Vec::new();
        for dir in &found {
            let read = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            };
            let Ok(entries) = std::fs::read_dir(read) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') || pat.first() == Some(&'.'))
                .filter(|n| glob_match(&pat, &n.chars().collect::<Vec<_>>()))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    found.retain(|p| p.is_file());
    found
}

struct Reader<'n> {
    notes: &'n mut Vec<Note>,
    /// Files read through `include` so far.
    included: usize,
    /// The include depth limit was reported.
    said_depth: bool,
}

impl Reader<'_> {
    fn note(&mut self, pos: &Pos, keyword: &str, message: impl Into<String>) {
        self.notes.push(Note::new(pos, keyword, message));
    }

    /// Tokens of `path` with its includes expanded in place.
    fn lex_file(&mut self, path: &Path, text: &str, depth: usize, out: &mut Vec<Token>) {
        let file = path.display().to_string();
        for (n, line) in text.lines().enumerate() {
            let pos = Pos {
                file: file.clone(),
                line: n + 1,
            };
            let mut toks = Vec::new();
            if let Err(e) = lex_line(line, &pos, &mut toks) {
                self.note(&pos, "syntax", format!("{e}; line skipped"));
                continue;
            }
            if matches!(toks.first(), Some(Token { tok: Tok::Word(w), .. }) if w == "include") {
                self.include(path, &pos, &toks[1..], depth, out);
                continue;
            }
            out.extend(toks);
        }
    }

    fn include(
        &mut self,
        from: &Path,
        pos: &Pos,
        args: &[Token],
        depth: usize,
        out: &mut Vec<Token>,
    ) {
        let [Token {
            tok: Tok::Word(pattern),
            ..
        }] = args
        else {
            self.note(
                pos,
                "include",
                "needs exactly one file name or pattern; skipped",
            );
            return;
        };
        if depth >= MAX_INCLUDE_DEPTH {
            // Said once: a file including itself reaches this from every copy.
            if !self.said_depth {
                self.said_depth = true;
                self.note(
                    pos,
                    "include",
                    format!("{pattern}: nested deeper than {MAX_INCLUDE_DEPTH} includes; this and every include as deep skipped"),
                );
            }
            return;
        }
        let pattern_path = Path::new(pattern);
        let full = if pattern_path.is_absolute() {
            pattern_path.to_path_buf()
        } else {
            from.parent().unwrap_or(Path::new("")).join(pattern_path)
        };
        let files = if has_magic(pattern) {
            glob(&full)
        } else {
            vec![full.clone()]
        };
        if files.is_empty() {
            self.note(
                pos,
                "include",
                format!("{}: no file matches", full.display()),
            );
            return;
        }
        if files.len() > MAX_GLOB_MATCHES {
            self.note(
                pos,
                "include",
                format!(
                    "{pattern}: matches {} files, more than {MAX_GLOB_MATCHES}; skipped",
                    files.len()
                ),
            );
            return;
        }
        for f in files {
            if self.included >= MAX_INCLUDED_FILES {
                // Said once: every later include is skipped too.
                if self.included == MAX_INCLUDED_FILES {
                    self.included += 1;
                    self.note(
                        pos,
                        "include",
                        format!(
                            "{}: more than {MAX_INCLUDED_FILES} included files in all; this and every later include skipped",
                            f.display()
                        ),
                    );
                }
                return;
            }
            self.included += 1;
            match read_config(&f) {
                Ok(text) => self.lex_file(&f, &text, depth + 1, out),
                Err(e) => self.note(pos, "include", format!("{}: {e}; skipped", f.display())),
            }
        }
    }
}

struct Parser<'t, 'n> {
    toks: &'t [Token],
    at: usize,
    notes: &'n mut Vec<Note>,
    /// Blocks open around the current one.
    depth: usize,
    /// The nesting limit ended the parse (the blocks it left open are not news).
    stopped: bool,
}

impl Parser<'_, '_> {
    /// Statements until a `}` (when `open` is the position of the `{`) or the end.
    fn block(&mut self, open: Option<&Pos>) -> Vec<Node> {
        let mut nodes = Vec::new();
        if self.depth > MAX_NESTING {
            if let Some(pos) = open {
                self.notes.push(Note::new(
                    pos,
                    "{",
                    format!(
                        "blocks nested deeper than {MAX_NESTING}; the rest of the input is ignored"
                    ),
                ));
            }
            self.at = self.toks.len();
            self.stopped = true;
            return nodes;
        }
        while self.at < self.toks.len() {
            let t = &self.toks[self.at];
            match &t.tok {
                Tok::Close => {
                    self.at += 1;
                    if open.is_some() {
                        return nodes;
                    }
                    self.notes
                        .push(Note::new(&t.pos, "}", "closes no block; ignored"));
                }
                Tok::Open => {
                    self.at += 1;
                    self.notes.push(Note::new(
                        &t.pos,
                        "{",
                        "block without a keyword; its contents are ignored",
                    ));
                    let pos = t.pos.clone();
                    self.depth += 1;
                    self.block(Some(&pos));
                    self.depth -= 1;
                }
                Tok::Word(_) => {
                    let n = self.statement();
                    // `@NAME` lines apply only under `keepalived -i NAME`, `$NAME=` defines a
                    // substitution: neither has a meaning minivrrp could keep.
                    if n.key.starts_with('@') {
                        self.notes.push(Note::new(
                            &n.pos,
                            &n.key,
                            "conditional configuration (keepalived -i) is not carried; line ignored",
                        ));
                    } else if n.key.starts_with('$') {
                        self.notes.push(Note::new(
                            &n.pos,
                            &n.key,
                            "keepalived variables are not carried; line ignored",
                        ));
                    } else {
                        nodes.push(n);
                    }
                }
            }
        }
        if let Some(pos) = open.filter(|_| !self.stopped) {
            self.notes.push(Note::new(
                pos,
                "{",
                "block not closed before the end of the file",
            ));
        }
        nodes
    }

    fn statement(&mut self) -> Node {
        let first = &self.toks[self.at];
        let pos = first.pos.clone();
        let mut words = Vec::new();
        while let Some(Token {
            tok: Tok::Word(w),
            pos: p,
        }) = self.toks.get(self.at)
        {
            if *p != pos {
                break;
            }
            words.push(w.clone());
            self.at += 1;
        }
        let block = match self.toks.get(self.at) {
            Some(Token {
                tok: Tok::Open,
                pos: p,
            }) => {
                let p = p.clone();
                self.at += 1;
                self.depth += 1;
                let b = self.block(Some(&p));
                self.depth -= 1;
                Some(b)
            }
            _ => None,
        };
        let mut words = words.into_iter();
        Node {
            key: words.next().unwrap_or_default(),
            args: words.collect(),
            block,
            pos,
        }
    }
}

/// Parses keepalived.conf text read from `path` (includes are read relative to it).
pub fn parse(path: &Path, text: &str, notes: &mut Vec<Note>) -> Vec<Node> {
    let mut toks = Vec::new();
    Reader {
        notes,
        included: 0,
        said_depth: false,
    }
    .lex_file(path, text, 0, &mut toks);
    Parser {
        toks: &toks,
        at: 0,
        notes,
        depth: 0,
        stopped: false,
    }
    .block(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> (Vec<Node>, Vec<String>) {
        let mut notes = Vec::new();
        let nodes = parse(Path::new("k.conf"), text, &mut notes);
        (nodes, notes.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn blocks_comments_and_quotes() {
        let (n, notes) = parse_str(
            "! comment\nvrrp_script chk { # trailing\n  script \"/bin/pidof haproxy\"\n}\nvrrp_instance VI_1\n{\n track_script { chk }\n}\n",
        );
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].key, "vrrp_script");
        assert_eq!(n[0].args, ["chk"]);
        assert_eq!(n[0].children()[0].args, ["/bin/pidof haproxy"]);
        assert_eq!(n[0].children()[0].pos.line, 3);
        assert_eq!(n[1].args, ["VI_1"]);
        let ts = &n[1].children()[0];
        assert_eq!(
            (ts.key.as_str(), ts.children()[0].key.as_str()),
            ("track_script", "chk")
        );
        assert_eq!(ts.pos.line, 7);
    }

    #[test]
    fn unbalanced_braces_and_quotes_are_noted_with_their_line() {
        let (_, notes) = parse_str("a {\n b \"x\n}\n}\nc {\n");
        assert_eq!(
            notes,
            [
                "k.conf:2: syntax: unterminated quoted string; line skipped",
                "k.conf:4: }: closes no block; ignored",
                "k.conf:5: {: block not closed before the end of the file",
            ]
        );
    }

    #[test]
    fn glob_patterns() {
        let m = |p: &str, n: &str| {
            glob_match(
                &p.chars().collect::<Vec<_>>(),
                &n.chars().collect::<Vec<_>>(),
            )
        };
        assert!(m("*.conf", "a.conf"));
        assert!(!m("*.conf", "a.conf.bak"));
        assert!(m("vi_[0-9].conf", "vi_3.conf"));
        assert!(!m("vi_[!0-9].conf", "vi_3.conf"));
        assert!(m("?.c", "x.c"));
    }
}
