//! Writes the imported sections as UCI, in the schema table's section and option order (the
//! order `minivrrp check` prints), and remembers which keepalived statement each line came
//! from so a validation error can be reported where the user wrote the keyword.

use std::fmt::Write as _;

use super::note::Pos;
use crate::config::schema::SCHEMA;
use crate::config::uci::quote;

/// One option value and the keepalived statement it came from.
#[derive(Clone, Debug)]
pub struct OutOption {
    pub name: &'static str,
    pub value: String,
    pub pos: Pos,
    pub keyword: String,
}

/// A section to write. Only options that differ from minivrrp's default (or that keepalived
/// sets differently) are present.
#[derive(Clone, Debug)]
pub struct OutSection {
    pub stype: &'static str,
    pub name: String,
    pub pos: Pos,
    pub keyword: String,
    pub options: Vec<OutOption>,
}

impl OutSection {
    pub fn new(stype: &'static str, name: &str, pos: &Pos, keyword: &str) -> OutSection {
        OutSection {
            stype,
            name: name.to_string(),
            pos: pos.clone(),
            keyword: keyword.to_string(),
            options: Vec::new(),
        }
    }

    /// Sets an option (replacing an earlier value) or appends to a list.
    pub fn set(&mut self, name: &'static str, value: impl Into<String>, pos: &Pos, keyword: &str) {
        let is_list = SCHEMA
            .iter()
            .find(|s| s.stype == self.stype)
            .and_then(|s| s.option(name))
            .is_some_and(|o| o.list);
        if !is_list {
            self.options.retain(|o| o.name != name);
        }
        self.options.push(OutOption {
            name,
            value: value.into(),
            pos: pos.clone(),
            keyword: keyword.to_string(),
        });
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.value.as_str())
    }

    pub fn remove(&mut self, name: &str) {
        self.options.retain(|o| o.name != name);
    }
}

/// The written text with the origin of each line.
pub struct Written {
    pub text: String,
    /// Per output line (index = line - 1): the statement it came from.
    origins: Vec<Option<(Pos, String)>>,
}

impl Written {
    pub fn origin(&self, line: usize) -> Option<(&Pos, &str)> {
        self.origins
            .get(line.checked_sub(1)?)?
            .as_ref()
            .map(|(p, k)| (p, k.as_str()))
    }
}

pub fn write(sections: &[OutSection]) -> Written {
    let mut text = String::from("# Imported from keepalived by `minivrrp import`.\n");
    let mut origins = vec![None];
    for spec in SCHEMA {
        for s in sections.iter().filter(|s| s.stype == spec.stype) {
            text.push('\n');
            origins.push(None);
            let _ = writeln!(text, "config {} {}", s.stype, quote(&s.name));
            origins.push(Some((s.pos.clone(), s.keyword.clone())));
            for o in spec.options {
                for v in s.options.iter().filter(|v| v.name == o.name) {
                    let word = if o.list { "list" } else { "option" };
                    let _ = writeln!(text, "\t{word} {} {}", o.name, quote(&v.value));
                    origins.push(Some((v.pos.clone(), v.keyword.clone())));
                }
            }
        }
    }
    Written { text, origins }
}
