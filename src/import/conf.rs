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

/// `*`, `?` and `[...]` matching of one path component, as glob(3) does.
fn glob_match(pattern: &[char], name: &[char]) -> bool {
    match pattern.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|i| glob_match(&pattern[1..], &name[i..])),
        Some('?') => !name.is_empty() && glob_match(&pattern[1..], &name[1..]),
        Some('[') => {
            let Some(end) = pattern.iter().skip(1).position(|&c| c == ']') else {
                return name.first() == Some(&'[') && glob_match(&pattern[1..], &name[1..]);
            };
            let set = &pattern[1..end + 1];
            let (negate, set) = match set.first() {
                Some('!' | '^') => (true, &set[1..]),
                _ => (false, set),
            };
            let Some(&c) = name.first() else {
                return false;
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
            hit != negate && glob_match(&pattern[end + 2..], &name[1..])
        }
        Some(&p) => name.first() == Some(&p) && glob_match(&pattern[1..], &name[1..]),
    }
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
            self.note(
                pos,
                "include",
                format!("{pattern}: nested deeper than {MAX_INCLUDE_DEPTH} includes; skipped"),
            );
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
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(text) => self.lex_file(&f, &text, depth + 1, out),
                Err(e) => self.note(pos, "include", format!("{}: {e}", f.display())),
            }
        }
    }
}

struct Parser<'t, 'n> {
    toks: &'t [Token],
    at: usize,
    notes: &'n mut Vec<Note>,
}

impl Parser<'_, '_> {
    /// Statements until a `}` (when `open` is the position of the `{`) or the end.
    fn block(&mut self, open: Option<&Pos>) -> Vec<Node> {
        let mut nodes = Vec::new();
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
                    self.block(Some(&pos));
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
        if let Some(pos) = open {
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
                Some(self.block(Some(&p)))
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
    Reader { notes }.lex_file(path, text, 0, &mut toks);
    Parser {
        toks: &toks,
        at: 0,
        notes,
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
