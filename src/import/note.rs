//! Where a keepalived statement was written, and what the import says about it.

use std::fmt;

/// Where a statement was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    pub file: String,
    pub line: usize,
}

/// One keyword that was not carried exactly: `FILE:LINE: keyword: what happened`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub pos: Pos,
    pub keyword: String,
    pub message: String,
}

impl Note {
    pub fn new(pos: &Pos, keyword: &str, message: impl Into<String>) -> Note {
        Note {
            pos: pos.clone(),
            keyword: keyword.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.pos.file, self.pos.line, self.keyword, self.message
        )
    }
}
