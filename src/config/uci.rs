//! UCI file parser: reads what OpenWrt's libuci reads and what `uci commit`/`uci export` write.
//!
//! The result is a generic tree (sections with a type, an optional name, and options/lists that
//! remember their line) with no knowledge of minivrrp's schema; `validate` gives it meaning.
//!
//! Grammar, as libuci's `file.c` parses it:
//! - statements `package NAME`, `config TYPE [NAME]`, `option NAME VALUE`, `list NAME VALUE`
//!   (libuci also accepts the one-letter forms `p`, `c`, `o`, `l`);
//! - words are separated by spaces or tabs; a word is made of adjacent pieces that concatenate:
//!   `'single quoted'` (no escapes), `"double quoted"` (a backslash takes the next character
//!   literally) and unquoted text (same backslash rule). So `'it'\''s'` is `it's`, which is how
//!   `uci commit` writes a quote inside a value;
//! - a backslash at the end of a line, or a newline inside quotes, continues the value on the
//!   next line;
//! - `#` outside quotes starts a comment up to the end of the line; `;` ends a statement;
//! - a later `config` with the name of an earlier section reopens it: options replace earlier
//!   values, `list` items append (libuci's `uci_set`/`uci_add_list` semantics);
//! - an `option` whose value is empty (`option x ''`) deletes the option, as `uci_set` does.
//!
//! Where libuci is lax in its default (non-strict) mode we are strict, because a silently
//! ignored word in a router's config is worse than a clear error: extra words after a statement
//! ("too many arguments"), a missing option value, and a named section redefined with a different
//! type are errors (libuci's strict mode rejects the last two as well).

use std::fmt;

/// A parsed UCI file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UciFile {
    /// The `package` statement's name, if the file has one (files in /etc/config usually don't).
    pub package: Option<String>,
    pub sections: Vec<Section>,
}

/// One `config TYPE ['NAME']` block, after merging same-named blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub stype: String,
    /// `None` for an anonymous section.
    pub name: Option<String>,
    /// Line of the (first) `config` statement.
    pub line: usize,
    /// Position among all sections of the same type (what `uci show` prints as `@type[N]`).
    pub index: usize,
    pub options: Vec<UciOption>,
}

/// An `option` or the collected `list` items of one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UciOption {
    pub name: String,
    /// Line of the statement that last set it (first list item for lists).
    pub line: usize,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Single(String),
    List(Vec<ListItem>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListItem {
    pub value: String,
    pub line: usize,
}

/// A syntax error with its position (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

impl Section {
    /// How messages address the section: its name, or `@type[N]` like `uci show`.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("@{}[{}]", self.stype, self.index),
        }
    }

    pub fn get(&self, name: &str) -> Option<&UciOption> {
        self.options.iter().find(|o| o.name == name)
    }
}

impl UciOption {
    /// All values: one for an option, every item for a list.
    pub fn values(&self) -> Vec<(&str, usize)> {
        match &self.value {
            Value::Single(v) => vec![(v.as_str(), self.line)],
            Value::List(items) => items.iter().map(|i| (i.value.as_str(), i.line)).collect(),
        }
    }
}

/// A word of a statement with where it started.
struct Word {
    text: String,
    line: usize,
    col: usize,
}

struct Cursor<'a> {
    chars: &'a [char],
    pos: usize,
    line: usize,
    col: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r' | '\x0b' | '\x0c')) {
            self.bump();
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }
}

/// Reads one word; `None` at the end of the statement. Stops before the terminator.
fn read_word(c: &mut Cursor<'_>) -> Result<Option<Word>, ParseError> {
    c.skip_blanks();
    match c.peek() {
        None | Some('\n') | Some(';') => return Ok(None),
        Some('#') => {
            // Comment: consume up to (not including) the newline.
            while !matches!(c.peek(), None | Some('\n')) {
                c.bump();
            }
            return Ok(None);
        }
        _ => {}
    }
    let (line, col) = (c.line, c.col);
    let mut text = String::new();
    // The first quote of this word that ran across a newline. libuci allows multi-line values,
    // so a forgotten closing quote only shows up at the end of the file; pointing there would
    // be useless, so the error points at this quote instead.
    let mut multiline_quote: Option<(usize, usize)> = None;
    let unterminated = |ql: usize, qc: usize, q: char, ml: Option<(usize, usize)>| {
        match ml {
        Some((l, c)) => ParseError {
            line: l,
            col: c,
            message: format!(
                "unterminated {q} quote: the value quoted here runs across lines to the end of the file"
            ),
        },
        None => ParseError {
            line: ql,
            col: qc,
            message: format!("unterminated {q} quote (reached end of file)"),
        },
    }
    };
    loop {
        match c.peek() {
            None | Some(' ' | '\t' | '\r' | '\n' | ';' | '#') => break,
            Some('\'') => {
                let (ql, qc) = (c.line, c.col);
                c.bump();
                loop {
                    match c.bump() {
                        None => return Err(unterminated(ql, qc, '\'', multiline_quote)),
                        Some('\'') => break,
                        Some(ch) => text.push(ch),
                    }
                }
                if c.line != ql && multiline_quote.is_none() {
                    multiline_quote = Some((ql, qc));
                }
            }
            Some('"') => {
                let (ql, qc) = (c.line, c.col);
                c.bump();
                loop {
                    match c.bump() {
                        None => return Err(unterminated(ql, qc, '"', multiline_quote)),
                        Some('"') => break,
                        Some('\\') => match c.bump() {
                            None => return Err(unterminated(ql, qc, '"', multiline_quote)),
                            Some('\n') => {}
                            Some(ch) => text.push(ch),
                        },
                        Some(ch) => text.push(ch),
                    }
                }
                if c.line != ql && multiline_quote.is_none() {
                    multiline_quote = Some((ql, qc));
                }
            }
            Some('\\') => {
                c.bump();
                match c.bump() {
                    // Backslash-newline (or at EOF) continues the word on the next line.
                    None | Some('\n') => {}
                    Some('\r') if c.peek() == Some('\n') => {
                        c.bump();
                    }
                    Some(ch) => text.push(ch),
                }
            }
            Some(ch) => {
                c.bump();
                text.push(ch);
            }
        }
    }
    Ok(Some(Word { text, line, col }))
}

/// Reads the words of one statement and consumes its terminator.
fn read_statement(c: &mut Cursor<'_>) -> Result<Vec<Word>, ParseError> {
    let mut words = Vec::new();
    while let Some(w) = read_word(c)? {
        words.push(w);
    }
    // Terminator: newline, ';' or EOF.
    if matches!(c.peek(), Some('\n' | ';')) {
        c.bump();
    }
    Ok(words)
}

/// libuci's `uci_validate_name`: section and option names are `[A-Za-z0-9_]+`.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Section types and package names may also contain `-`.
fn valid_type(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn err_at(w: &Word, message: String) -> ParseError {
    ParseError {
        line: w.line,
        col: w.col,
        message,
    }
}

/// Parses a whole file. Collects every error (recovering at the next statement), so a user fixes
/// a file in one pass.
pub fn parse(text: &str) -> Result<UciFile, Vec<ParseError>> {
    let chars: Vec<char> = text.chars().collect();
    let mut c = Cursor {
        chars: &chars,
        pos: 0,
        line: 1,
        col: 1,
    };
    let mut file = UciFile::default();
    let mut errors = Vec::new();
    // Index of the section that `option`/`list` statements go to.
    let mut current: Option<usize> = None;
    // After an error inside a section header, its options must not land in the previous one.
    let mut in_broken_section = false;

    while c.peek().is_some() {
        let words = match read_statement(&mut c) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                c.skip_line();
                continue;
            }
        };
        let Some(kw) = words.first() else { continue };
        let args = &words[1..];
        let result = match kw.text.as_str() {
            "package" | "p" => statement_package(&mut file, kw, args),
            "config" | "c" => match statement_config(&mut file, kw, args) {
                Ok(idx) => {
                    current = Some(idx);
                    in_broken_section = false;
                    Ok(())
                }
                Err(e) => {
                    current = None;
                    in_broken_section = true;
                    Err(e)
                }
            },
            "option" | "o" | "list" | "l" => {
                let list = kw.text.starts_with('l');
                match current {
                    Some(idx) => statement_option(&mut file.sections[idx], kw, args, list),
                    // The header error was already reported; don't add a second one per line.
                    None if in_broken_section => Ok(()),
                    None => Err(err_at(
                        kw,
                        format!("'{}' outside a section (no 'config' before it)", kw.text),
                    )),
                }
            }
            other => Err(err_at(
                kw,
                format!("invalid command '{other}' (expected package, config, option or list)"),
            )),
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }

    // `@type[N]` numbering counts every section of the type, named or not, as `uci show` does.
    let mut counts: Vec<(String, usize)> = Vec::new();
    for s in &mut file.sections {
        match counts.iter_mut().find(|(t, _)| *t == s.stype) {
            Some((_, n)) => {
                s.index = *n;
                *n += 1;
            }
            None => {
                s.index = 0;
                counts.push((s.stype.clone(), 1));
            }
        }
    }

    if errors.is_empty() {
        Ok(file)
    } else {
        Err(errors)
    }
}

fn too_many(args: &[Word], max: usize) -> Result<(), ParseError> {
    match args.get(max) {
        Some(w) => Err(err_at(
            w,
            format!(
                "too many arguments: unexpected '{}' (quote values that contain spaces)",
                w.text
            ),
        )),
        None => Ok(()),
    }
}

fn statement_package(file: &mut UciFile, kw: &Word, args: &[Word]) -> Result<(), ParseError> {
    let Some(name) = args.first() else {
        return Err(err_at(kw, "package without name".into()));
    };
    too_many(args, 1)?;
    if !valid_type(&name.text) {
        return Err(err_at(name, "invalid character in package name".into()));
    }
    match &file.package {
        Some(p) if *p != name.text => Err(err_at(
            name,
            format!(
                "second package '{}' in one file (already '{p}'); one file holds one package",
                name.text
            ),
        )),
        _ => {
            file.package = Some(name.text.clone());
            Ok(())
        }
    }
}

fn statement_config(file: &mut UciFile, kw: &Word, args: &[Word]) -> Result<usize, ParseError> {
    let Some(stype) = args.first() else {
        return Err(err_at(kw, "config without section type".into()));
    };
    if !valid_type(&stype.text) {
        return Err(err_at(
            stype,
            format!("invalid character in section type '{}'", stype.text),
        ));
    }
    let name = args.get(1).filter(|w| !w.text.is_empty());
    too_many(args, 2)?;
    let Some(name) = name else {
        file.sections.push(Section {
            stype: stype.text.clone(),
            name: None,
            line: kw.line,
            index: 0,
            options: Vec::new(),
        });
        return Ok(file.sections.len() - 1);
    };
    if !valid_name(&name.text) {
        return Err(err_at(
            name,
            format!(
                "invalid section name '{}' (letters, digits and _ only)",
                name.text
            ),
        ));
    }
    if let Some(idx) = file
        .sections
        .iter()
        .position(|s| s.name.as_deref() == Some(name.text.as_str()))
    {
        let earlier = &file.sections[idx];
        if earlier.stype != stype.text {
            return Err(err_at(
                stype,
                format!(
                    "section '{}' redefined as type '{}' (line {} made it '{}')",
                    name.text, stype.text, earlier.line, earlier.stype
                ),
            ));
        }
        // Same name and type: libuci merges the later block into the earlier section.
        return Ok(idx);
    }
    file.sections.push(Section {
        stype: stype.text.clone(),
        name: Some(name.text.clone()),
        line: kw.line,
        index: 0,
        options: Vec::new(),
    });
    Ok(file.sections.len() - 1)
}

fn statement_option(
    section: &mut Section,
    kw: &Word,
    args: &[Word],
    list: bool,
) -> Result<(), ParseError> {
    let what = if list { "list" } else { "option" };
    let Some(name) = args.first() else {
        return Err(err_at(kw, format!("{what} without name")));
    };
    if !valid_name(&name.text) {
        return Err(err_at(
            name,
            format!(
                "invalid {what} name '{}' (letters, digits and _ only)",
                name.text
            ),
        ));
    }
    let Some(value) = args.get(1) else {
        return Err(err_at(
            name,
            format!("missing value for {what} '{}'", name.text),
        ));
    };
    too_many(args, 2)?;
    let existing = section.options.iter().position(|o| o.name == name.text);
    if list {
        let item = ListItem {
            value: value.text.clone(),
            line: kw.line,
        };
        match existing {
            Some(i) => {
                let opt = &mut section.options[i];
                match &mut opt.value {
                    Value::List(items) => items.push(item),
                    // uci_add_list on a plain option turns it into a list keeping the old value.
                    Value::Single(old) => {
                        let old = ListItem {
                            value: core::mem::take(old),
                            line: opt.line,
                        };
                        opt.value = Value::List(vec![old, item]);
                    }
                }
            }
            None => section.options.push(UciOption {
                name: name.text.clone(),
                line: kw.line,
                value: Value::List(vec![item]),
            }),
        }
    } else if value.text.is_empty() {
        // uci_set with an empty value deletes the option.
        if let Some(i) = existing {
            section.options.remove(i);
        }
    } else {
        let opt = UciOption {
            name: name.text.clone(),
            line: kw.line,
            value: Value::Single(value.text.clone()),
        };
        match existing {
            Some(i) => section.options[i] = opt,
            None => section.options.push(opt),
        }
    }
    Ok(())
}

/// Quotes a value the way `uci export` does: single quotes, `'` written as `'\''`.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for ch in value.chars() {
        if ch == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(ch);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(f: &UciFile, sec: usize, opt: &str) -> String {
        match &f.sections[sec].get(opt).unwrap().value {
            Value::Single(s) => s.clone(),
            Value::List(_) => panic!("{opt} is a list"),
        }
    }

    fn list(f: &UciFile, sec: usize, opt: &str) -> Vec<String> {
        match &f.sections[sec].get(opt).unwrap().value {
            Value::List(items) => items.iter().map(|i| i.value.clone()).collect(),
            Value::Single(_) => panic!("{opt} is an option"),
        }
    }

    fn first_error(text: &str) -> (usize, usize, String) {
        let errs = parse(text).unwrap_err();
        (errs[0].line, errs[0].col, errs[0].message.clone())
    }

    /// Exactly what `uci commit` writes: a blank line, `config TYPE 'NAME'`, tab-indented
    /// options with single-quoted values, lists repeated, anonymous sections without a name.
    const UCI_COMMIT_OUTPUT: &str = "\nconfig globals 'globals'\n\toption router_id 'r1'\n\nconfig instance 'vi1'\n\toption interface 'br-lan'\n\toption priority '150'\n\tlist vip '10.0.0.254/24'\n\tlist vip '10.0.1.254/24'\n\toption notify_master '/usr/bin/logger '\\''it'\\''s master'\\'''\n\nconfig script\n\toption command 'pidof nginx'\n\nconfig script\n\toption command 'true'\n\n";

    #[test]
    fn reads_uci_commit_output() {
        let f = parse(UCI_COMMIT_OUTPUT).unwrap();
        assert_eq!(f.sections.len(), 4);
        assert_eq!(f.sections[1].stype, "instance");
        assert_eq!(f.sections[1].name.as_deref(), Some("vi1"));
        assert_eq!(f.sections[1].line, 5);
        assert_eq!(single(&f, 1, "priority"), "150");
        assert_eq!(f.sections[1].get("priority").unwrap().line, 7);
        assert_eq!(list(&f, 1, "vip"), ["10.0.0.254/24", "10.0.1.254/24"]);
        assert_eq!(
            single(&f, 1, "notify_master"),
            "/usr/bin/logger 'it's master'"
        );
        assert_eq!(f.sections[2].display_name(), "@script[0]");
        assert_eq!(f.sections[3].display_name(), "@script[1]");
        assert_eq!(single(&f, 3, "command"), "true");
    }

    #[test]
    fn quote_round_trips_through_parse() {
        for v in ["plain", "it's", "''", "a 'b' c", "back\\slash", "x\"y"] {
            let text = format!("config a\n\toption v {}\n", quote(v));
            let f = parse(&text).unwrap();
            if v.is_empty() {
                continue;
            }
            assert_eq!(single(&f, 0, "v"), v, "{text}");
        }
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn value_forms_table() {
        // (value as written in the file, value libuci reads)
        let table: &[(&str, &str)] = &[
            ("'150'", "150"),
            ("150", "150"),
            ("\"150\"", "150"),
            ("'it'\\''s'", "it's"),
            ("\"say \\\"hi\\\"\"", "say \"hi\""),
            ("\"a\\\\b\"", "a\\b"),
            ("'a\\b'", "a\\b"),
            ("ab'c d'\"e\"", "abc de"),
            ("a\\ b", "a b"),
            ("'x'#comment", "x"),
            ("'has # hash'", "has # hash"),
            ("'semi;colon'", "semi;colon"),
            ("'two\nlines'", "two\nlines"),
            ("\"cont\\\ninued\"", "continued"),
        ];
        for (written, read) in table {
            let text = format!("config t 'n'\n\toption v {written}\n");
            let f = parse(&text).unwrap_or_else(|e| panic!("{written}: {e:?}"));
            assert_eq!(single(&f, 0, "v"), *read, "written as {written}");
        }
    }

    #[test]
    fn comments_blank_lines_tabs_spaces_and_semicolons() {
        let text = "# top comment\n\n   config   t   'a'   # trailing\n  option x 1;option y 2\n\t\tlist z 'q' # c\n\n#config t 'b'\n";
        let f = parse(text).unwrap();
        assert_eq!(f.sections.len(), 1);
        assert_eq!(single(&f, 0, "x"), "1");
        assert_eq!(single(&f, 0, "y"), "2");
        assert_eq!(list(&f, 0, "z"), ["q"]);
    }

    #[test]
    fn short_keywords_and_package_line() {
        let f = parse("package minivrrp\nc t 'a'\no x 1\nl y 2\n").unwrap();
        assert_eq!(f.package.as_deref(), Some("minivrrp"));
        assert_eq!(single(&f, 0, "x"), "1");
        assert_eq!(list(&f, 0, "y"), ["2"]);
    }

    #[test]
    fn same_named_section_merges_into_the_earlier_one() {
        let text = "config t 'a'\n\toption x '1'\n\tlist l 'p'\nconfig t 'b'\nconfig t 'a'\n\toption x '2'\n\tlist l 'q'\n";
        let f = parse(text).unwrap();
        assert_eq!(f.sections.len(), 2);
        assert_eq!(single(&f, 0, "x"), "2");
        assert_eq!(f.sections[0].get("x").unwrap().line, 6);
        assert_eq!(list(&f, 0, "l"), ["p", "q"]);
        assert_eq!(f.sections[0].line, 1);
    }

    #[test]
    fn later_option_replaces_and_list_after_option_keeps_both() {
        let f = parse("config t\n option x 1\n option x 2\n option l a\n list l b\n").unwrap();
        assert_eq!(single(&f, 0, "x"), "2");
        assert_eq!(list(&f, 0, "l"), ["a", "b"]);
    }

    #[test]
    fn empty_option_value_deletes_like_uci_set() {
        let f = parse("config t\n option x 1\n option x ''\n").unwrap();
        assert!(f.sections[0].get("x").is_none());
    }

    #[test]
    fn anonymous_index_counts_named_sections_of_the_type_too() {
        let f = parse("config i 'vi1'\nconfig i\nconfig s\nconfig i\n").unwrap();
        assert_eq!(f.sections[1].display_name(), "@i[1]");
        assert_eq!(f.sections[2].display_name(), "@s[0]");
        assert_eq!(f.sections[3].display_name(), "@i[2]");
    }

    #[test]
    fn malformed_files_name_line_and_column() {
        let table: &[(&str, (usize, usize), &str)] = &[
            (
                "config t 'a'\n\toption x 'open\n",
                (2, 11),
                "unterminated ' quote",
            ),
            (
                "config t 'a'\n\n\toption x \"open\n",
                (3, 11),
                "unterminated \" quote",
            ),
            (
                "config t 'a'\n\toption x 'open\n\tlist y 'v'\n",
                (2, 11),
                "runs across lines",
            ),
            ("option x 1\n", (1, 1), "outside a section"),
            ("config t 'a'\n\toption x\n", (2, 9), "missing value"),
            ("config t 'a'\n\tlist x\n", (2, 7), "missing value"),
            ("config t 'a'\n\toption\n", (2, 2), "option without name"),
            ("config t\n  opton x 1\n", (2, 3), "invalid command 'opton'"),
            ("config\n", (1, 1), "config without section type"),
            ("config t 'a b'\n", (1, 10), "invalid section name"),
            ("config t a extra\n", (1, 12), "too many arguments"),
            ("config t\n\toption x a b\n", (2, 13), "too many arguments"),
            ("config t\n\toption x.y 1\n", (2, 9), "invalid option name"),
            ("config t 'a'\nconfig u 'a'\n", (2, 8), "redefined as type"),
            ("config t*\n", (1, 8), "invalid character in section type"),
            (
                "package a\npackage b\n",
                (2, 9),
                "second package 'b' in one file",
            ),
        ];
        for (text, (line, col), msg) in table {
            let (l, c, m) = first_error(text);
            assert_eq!((l, c), (*line, *col), "{text:?}: {m}");
            assert!(m.contains(msg), "{text:?}: got {m:?}, want {msg:?}");
        }
    }

    #[test]
    fn collects_every_error_not_just_the_first() {
        let errs = parse("option a 1\nconfig t\n\toption x\n\tbogus\n").unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 3, 4]);
    }

    #[test]
    fn options_after_a_broken_header_are_not_reported_again() {
        let errs = parse("config t 'a b'\n\toption x 1\n\toption y 2\n").unwrap_err();
        assert_eq!(errs.len(), 1);
    }

    /// Nothing panics on input: random byte soup made of the characters the grammar cares
    /// about goes through the parser and the validator without a panic.
    #[test]
    fn random_input_never_panics() {
        const ALPHABET: &[char] = &[
            'c', 'o', 'n', 'f', 'i', 'g', ' ', '\t', '\n', '\'', '"', '\\', '#', ';', 'l', 's',
            't', 'p', 'v', 'a', '1', '-', '.', ':', '/', '@', '\r', 'é',
        ];
        const WORDS: &[&str] = &[
            "config instance ",
            "option vrid ",
            "list vip ",
            "option priority ",
            "'10.0.0.1'",
            "config script 's'\n",
            "list track_script ",
            "config real_server\n",
            "package x\n",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..(next() % 60) {
                if next() % 3 == 0 {
                    text.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
                } else {
                    text.push(ALPHABET[(next() % ALPHABET.len() as u64) as usize]);
                }
            }
            let _ = crate::config::Config::parse_str("fuzz", &text);
        }
    }

    #[test]
    fn crlf_line_endings_are_accepted() {
        let f = parse("config t 'a'\r\n\toption x '1'\r\n").unwrap();
        assert_eq!(single(&f, 0, "x"), "1");
    }
}
