//! The one error type of configuration loading: where (file, line, section.option) and what.

use std::fmt;

/// One configuration problem, displayed as `FILE:LINE: SECTION.OPTION: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the error concerns the whole file (e.g. it can't be read).
    pub line: usize,
    /// Column, for syntax errors.
    pub col: Option<usize>,
    /// `vi1.priority`, `@instance[0].vip` or just the section; `None` for syntax errors.
    pub path: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(c) = self.col {
            write!(f, ":{c}")?;
        }
        write!(f, ": ")?;
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ConfigError {}
