//! Script checks (keepalived `vrrp_script` / MISC_CHECK): run a command every interval;
//! exit code 0 is success, anything else, a signal or a timeout is a failure. A script still
//! running at its timeout is killed (SIGKILL to its process group) and counted as failed.

use super::schedule::{Attempt, Health, Runner, Schedule};
use super::{push, Action, Actions, ExitStatus, Input, Reason};
use crate::base::Instant;

/// How much of a script's stdout/stderr is kept for the log.
pub const OUTPUT_CAP: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptSpec {
    /// Program and arguments (split at config load; `argv[0]` is looked up in PATH if it has
    /// no '/').
    pub argv: Vec<String>,
    /// Run as this uid/gid (resolved at config load with `sys::process::lookup_user`).
    pub user: Option<(u32, u32)>,
    pub schedule: Schedule,
    pub weight: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Child {
    None,
    Running,
    /// Timed out and SIGKILLed; waiting for the reap before the next run.
    Killed,
}

#[derive(Clone, Debug)]
pub struct ScriptCheck {
    runner: Runner,
    child: Child,
    output: heapless::Vec<u8, OUTPUT_CAP>,
    truncated: bool,
}

impl ScriptCheck {
    pub fn new(spec: &ScriptSpec, seed: u64, now: Instant) -> Self {
        ScriptCheck {
            runner: Runner::new(spec.schedule, spec.weight, seed, now),
            child: Child::None,
            output: heapless::Vec::new(),
            truncated: false,
        }
    }

    pub fn health(&self) -> Health {
        self.runner.health()
    }

    pub fn weight(&self) -> i32 {
        self.runner.weight()
    }

    pub fn last_attempt(&self) -> Option<Attempt> {
        self.runner.last()
    }

    /// The first [`OUTPUT_CAP`] bytes the current/last run wrote, and whether more was cut.
    pub fn output(&self) -> (&[u8], bool) {
        (&self.output, self.truncated)
    }

    /// True while a child of this check exists (running or killed but not yet reaped).
    pub fn has_child(&self) -> bool {
        self.child != Child::None
    }

    /// `None` while a killed child awaits its reap: the next run starts from `Exited`.
    pub fn poll_at(&self) -> Option<Instant> {
        match self.child {
            Child::Killed => None,
            _ => Some(self.runner.poll_at()),
        }
    }

    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Actions {
        let mut out = Actions::new();
        match (self.child, input) {
            (Child::Running, Input::Tick) if self.runner.expired(now) => {
                push(&mut out, Action::Kill);
                self.child = Child::Killed;
                self.report(now, Reason::Timeout, &mut out);
            }
            (Child::None, Input::Tick) => self.maybe_start(now, &mut out),
            (Child::Running, Input::SpawnFailed(e)) => {
                self.child = Child::None;
                self.report(now, Reason::SpawnFailed(e), &mut out);
            }
            (Child::Running | Child::Killed, Input::Output(bytes)) => {
                let room = OUTPUT_CAP - self.output.len();
                let take = bytes.len().min(room);
                let _ = self.output.extend_from_slice(&bytes[..take]);
                self.truncated |= take < bytes.len();
            }
            (Child::Running, Input::Exited(status)) => {
                self.child = Child::None;
                let reason = match status {
                    ExitStatus::Code(0) => Reason::Ok,
                    ExitStatus::Code(c) => Reason::ExitCode(c),
                    ExitStatus::Signal(s) => Reason::Signal(s),
                };
                self.report(now, reason, &mut out);
            }
            (Child::Killed, Input::Exited(_)) => {
                // Already counted as a timeout; if the next run is overdue, start it now.
                self.child = Child::None;
                self.maybe_start(now, &mut out);
            }
            _ => {}
        }
        out
    }

    fn maybe_start(&mut self, now: Instant, out: &mut Actions) {
        if self.runner.due(now) {
            self.runner.begin(now);
            self.child = Child::Running;
            self.output.clear();
            self.truncated = false;
            push(out, Action::Spawn);
        }
    }

    fn report(&mut self, now: Instant, reason: Reason, out: &mut Actions) {
        if let Some(r) = self.runner.finish(now, reason) {
            push(out, Action::Report(r));
        }
    }
}
