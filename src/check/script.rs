//! Script checks (keepalived `vrrp_script` / MISC_CHECK): run a command every interval;
//! exit code 0 is success, anything else, a signal or a timeout is a failure. A script still
//! running at its timeout is killed (SIGKILL to its process group) and counted as failed.
//!
//! With `dynamic` (keepalived `misc_dynamic`, real servers) the exit code also carries a
//! weight: 0 is success with the weight unchanged, 1 is a failure, 2..255 are a success with
//! weight code - 2, announced as [`Action::SetWeight`] when it changes.

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
    /// Exit codes 2..255 are successes that set the weight to code - 2 (keepalived
    /// `misc_dynamic`).
    pub dynamic: bool,
}

/// keepalived's `misc_dynamic` reading of an exit code: `(success, new weight)`.
fn dynamic_exit(code: i32) -> (bool, Option<u32>) {
    match code {
        0 => (true, None),
        2..=255 => (true, Some((code - 2) as u32)),
        _ => (false, None),
    }
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
    dynamic: bool,
    /// The weight the last dynamic exit code set; `None` until one did.
    weight_set: Option<u32>,
}

impl ScriptCheck {
    pub fn new(spec: &ScriptSpec, seed: u64, now: Instant) -> Self {
        ScriptCheck {
            runner: Runner::new(spec.schedule, spec.weight, seed, now),
            child: Child::None,
            output: heapless::Vec::new(),
            truncated: false,
            dynamic: spec.dynamic,
            weight_set: None,
        }
    }

    /// The weight the script's exit code set last (`dynamic` only; `None` before one did).
    pub fn weight_set(&self) -> Option<u32> {
        self.weight_set
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
                    ExitStatus::Code(c) if self.dynamic => match dynamic_exit(c) {
                        (true, w) => {
                            if w.is_some() && w != self.weight_set {
                                self.weight_set = w;
                                push(&mut out, Action::SetWeight(w.unwrap_or(0)));
                            }
                            Reason::Ok
                        }
                        (false, _) => Reason::ExitCode(c),
                    },
                    ExitStatus::Code(0) => Reason::Ok,
                    ExitStatus::Code(c) => Reason::ExitCode(c),
                    ExitStatus::Signal(s) => Reason::Signal(s),
                    ExitStatus::ExecFailed(e) => Reason::SpawnFailed(e),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::Duration;
    use crate::check::{Health, Schedule};

    fn spec(dynamic: bool) -> ScriptSpec {
        ScriptSpec {
            argv: vec!["/bin/true".into()],
            user: None,
            schedule: Schedule {
                interval: Duration::from_secs(1),
                timeout: Duration::from_millis(500),
                fall: 1,
                rise: 1,
                retry: 0,
                delay_before_retry: Duration::ZERO,
                initial: Health::Up,
                warmup: Duration::ZERO,
            },
            weight: 0,
            dynamic,
        }
    }

    /// One run ending with `status`, `secs` seconds after the start: the actions of the exit.
    fn run(c: &mut ScriptCheck, t0: Instant, secs: u64, status: ExitStatus) -> Actions {
        let t = t0 + Duration::from_secs(secs);
        assert_eq!(
            &c.handle(t, Input::Tick)[..],
            [Action::Spawn],
            "run at {secs} s"
        );
        c.handle(t + Duration::from_millis(10), Input::Exited(status))
    }

    fn reports(a: &Actions) -> Vec<(Health, Reason)> {
        a.iter()
            .filter_map(|a| match a {
                Action::Report(r) => Some((r.health, r.reason)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn misc_dynamic_exit_codes_set_health_and_weight() {
        let t0 = Instant::from_millis(1_000);
        let mut c = ScriptCheck::new(&spec(true), 0, t0);
        // 0: up, weight unchanged (none set yet): no action at all from an up server.
        assert!(run(&mut c, t0, 0, ExitStatus::Code(0)).is_empty());
        assert_eq!((c.health(), c.weight_set()), (Health::Up, None));
        // 12: up with weight 10.
        let a = run(&mut c, t0, 1, ExitStatus::Code(12));
        assert_eq!(&a[..], [Action::SetWeight(10)]);
        // The same code again: nothing new to say.
        assert!(run(&mut c, t0, 2, ExitStatus::Code(12)).is_empty());
        // 1: down, the weight stays what the script set.
        let a = run(&mut c, t0, 3, ExitStatus::Code(1));
        assert_eq!(reports(&a), [(Health::Down, Reason::ExitCode(1))]);
        assert_eq!(c.weight_set(), Some(10));
        // 255: up again with weight 253 (keepalived's example), in one exit.
        let a = run(&mut c, t0, 4, ExitStatus::Code(255));
        assert_eq!(a[0], Action::SetWeight(253));
        assert_eq!(reports(&a), [(Health::Up, Reason::Ok)]);
        // 2: weight 0, still up.
        assert_eq!(
            &run(&mut c, t0, 5, ExitStatus::Code(2))[..],
            [Action::SetWeight(0)]
        );
        // 0 keeps weight 0.
        assert!(run(&mut c, t0, 6, ExitStatus::Code(0)).is_empty());
        assert_eq!((c.health(), c.weight_set()), (Health::Up, Some(0)));
        // A signal is a failure whatever `dynamic` says.
        let a = run(&mut c, t0, 7, ExitStatus::Signal(9));
        assert_eq!(reports(&a), [(Health::Down, Reason::Signal(9))]);
    }

    #[test]
    fn without_dynamic_every_code_but_zero_is_a_failure() {
        let t0 = Instant::from_millis(1_000);
        let mut c = ScriptCheck::new(&spec(false), 0, t0);
        let a = run(&mut c, t0, 0, ExitStatus::Code(12));
        assert_eq!(reports(&a), [(Health::Down, Reason::ExitCode(12))]);
        assert_eq!(c.weight_set(), None);
        let a = run(&mut c, t0, 1, ExitStatus::Code(0));
        assert_eq!(reports(&a), [(Health::Up, Reason::Ok)]);
    }
}
