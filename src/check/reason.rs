//! Why a check attempt failed, small and `Copy` so reports never allocate.

use super::http::HttpError;

/// Why an attempt failed (or `Ok`). Small and `Copy` so reports never allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Ok,
    /// No result within `timeout`.
    Timeout,
    ConnectFailed(i32),
    SendFailed(i32),
    ReadFailed(i32),
    /// The peer closed before the check could decide.
    ClosedEarly,
    Http(HttpError),
    ExitCode(i32),
    Signal(i32),
    SpawnFailed(i32),
}

impl core::fmt::Display for Reason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Reason::Ok => f.write_str("ok"),
            Reason::Timeout => f.write_str("timeout"),
            Reason::ConnectFailed(e) => write!(f, "connect failed (errno {e})"),
            Reason::SendFailed(e) => write!(f, "send failed (errno {e})"),
            Reason::ReadFailed(e) => write!(f, "read failed (errno {e})"),
            Reason::ClosedEarly => f.write_str("connection closed early"),
            Reason::Http(h) => write!(f, "http: {h}"),
            Reason::ExitCode(c) => write!(f, "exit code {c}"),
            Reason::Signal(s) => write!(f, "killed by signal {s}"),
            Reason::SpawnFailed(e) => write!(f, "spawn failed (errno {e})"),
        }
    }
}
