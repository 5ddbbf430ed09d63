//! `minivrrp import`: a keepalived configuration becomes a minivrrp UCI configuration.
//!
//! Two inputs, told apart by content: keepalived.conf ([`conf`], with its includes) and
//! OpenWrt's `/etc/config/keepalived` ([`openwrt`], read the way OpenWrt's init script turns
//! it into a keepalived.conf). Both become the same tree of keepalived statements, which
//! [`map`] carries over to minivrrp's sections; [`out`] writes them as UCI. Every keyword that
//! cannot be carried exactly becomes a [`Note`] naming its file and line.
//!
//! Pure except for reading the input files (the config layer reads its file the same way).

pub mod conf;
pub mod map;
mod note;
pub mod openwrt;
pub mod out;

use std::path::Path;

use crate::config::Config;
pub use note::{Note, Pos};

/// The imported configuration and what could not be carried.
#[derive(Debug)]
pub struct Imported {
    /// A minivrrp UCI config.
    pub uci: String,
    /// In input order of the statements they concern.
    pub notes: Vec<Note>,
}

/// OpenWrt UCI is recognised by its first statement (`config TYPE` or `package NAME`), which
/// is never a keepalived.conf keyword.
pub fn is_uci(text: &str) -> bool {
    text.lines()
        .map(str::trim_start)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().next())
        .is_some_and(|w| w == "config" || w == "package")
}

/// Imports `text`, read from `path` (which names it in notes and anchors relative includes).
pub fn import_str(path: &Path, text: &str) -> Imported {
    let mut notes = Vec::new();
    let nodes = if is_uci(text) {
        openwrt::to_nodes(&path.display().to_string(), text, &mut notes)
    } else {
        conf::parse(path, text, &mut notes)
    };
    let sections = map::map(&nodes, &mut notes);
    let written = out::write(&sections);
    // The output must load: whatever validation still refuses (a rule across options) is
    // reported at the keepalived statement that produced the option.
    if let Err(errors) = Config::parse_str("imported", &written.text) {
        for e in errors {
            let (pos, keyword) = written
                .origin(e.line)
                .map(|(p, k)| (p.clone(), k.to_string()))
                .unwrap_or_else(|| {
                    (
                        Pos {
                            file: path.display().to_string(),
                            line: 0,
                        },
                        "config".into(),
                    )
                });
            notes.push(Note::new(
                &pos,
                &keyword,
                match &e.path {
                    Some(p) => format!("minivrrp refuses the result: {p}: {}", e.message),
                    None => format!("minivrrp refuses the result: {}", e.message),
                },
            ));
        }
    }
    notes.sort_by(|a, b| {
        (
            a.pos.file != path.display().to_string(),
            &a.pos.file,
            a.pos.line,
        )
            .cmp(&(
                b.pos.file != path.display().to_string(),
                &b.pos.file,
                b.pos.line,
            ))
    });
    Imported {
        uci: written.text,
        notes,
    }
}

/// Reads and imports a file. `Err` only when the file cannot be read (a usage error).
pub fn import_file(path: &Path) -> Result<Imported, String> {
    let text = conf::read_config(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(import_str(path, &text))
}
