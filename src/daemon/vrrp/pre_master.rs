//! The pre-master hook (`notify_pre_master`, e.g. `conntrackd -c`): the process side of the
//! state machine's hold (`vrrp::instance`, "The pre-master hold"). The state machine decides
//! when the hook starts, when the hold ends and when the hook must die; this file starts it
//! through the [`Southbound`] (the notify commands' spawner: own session, `script_user`,
//! the `MINIVRRP_*` context), kills it, and turns its exit into `Input::PreMasterDone`.
//!
//! The loop never waits for the hook: its exit arrives as SIGCHLD, reaped by the runtime and
//! offered to [`Vrrp::on_child_exit`]; its timeout is the state machine's own deadline, on
//! the instance's loop timer. It does not queue behind the instance's notify commands nor
//! count against `notify_max_running`: it gates the addresses and must start at once.

use core::fmt::Write;

use log::{info, warn};

use super::Vrrp;
use crate::base::Instant;
use crate::check::notify::split_command;
use crate::check::ExitStatus;
use crate::config::schema::format_duration;
use crate::daemon::event_loop::Ctx;
use crate::daemon::kernel::{ChildOf, Southbound};
use crate::vrrp::instance::{Input, State, Transition};

/// A running hook: its process and when it started (for the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Hook {
    pub pid: i32,
    pub since: Instant,
}

/// The hook's environment: the notify commands' context of the MASTER transition, plus
/// `TYPE` and `NAME` as the hotplug hook gets them.
fn hook_env(name: &str, t: Option<&Transition>) -> Vec<String> {
    let mut env = vec!["TYPE=INSTANCE".to_string(), format!("NAME={name}")];
    let prev = match t.map(|t| t.from) {
        Some(State::Backup) => "BACKUP",
        Some(State::Master) => "MASTER",
        Some(State::Fault) => "FAULT",
        Some(State::Init) | None => "INIT",
    };
    env.push(format!("MINIVRRP_PREV_STATE={prev}"));
    let mut reason = String::from("MINIVRRP_REASON=");
    if let Some(t) = t {
        let _ = write!(reason, "{}", t.reason);
    }
    env.push(reason);
    env.push(format!(
        "MINIVRRP_MASTER={}",
        t.and_then(|t| t.master)
            .map(|a| a.to_string())
            .unwrap_or_default()
    ));
    env.push(format!(
        "MINIVRRP_PRIORITY={}",
        t.map(|t| t.priority.to_string()).unwrap_or_default()
    ));
    env
}

impl<S: Southbound> Vrrp<S> {
    /// `Action::RunPreMaster`: start instance `i`'s hook. A hook that cannot start holds
    /// nothing: the hold ends as soon as this input is done ([`Self::feed`]).
    pub(super) fn run_pre_master(&mut self, i: usize, now: Instant) {
        // A dual-stack instance runs one hook, its IPv4 router's: the IPv6 router's hold ends
        // with that one's ([`Self::release_twin`]), or at once if it already ended.
        let owner = self.owner(i);
        if owner != i {
            let o = &self.insts[owner].fsm;
            if o.state() == State::Master && !o.pre_master_held() {
                self.insts[i].end_hold = true;
            }
            return;
        }
        let inst = &mut self.insts[i];
        // conntrackd's commit is the daemon's own command, run as the daemon's user (root):
        // `script_user` is for the user's hook.
        let user = if inst.cfg.conntrackd.is_some() {
            None
        } else {
            self.script_user
        };
        let name = inst.cfg.name.as_str();
        // Validation split it the same way, so only a reload race could leave it unsplittable.
        let argv = inst
            .cfg
            .pre_master_command()
            .as_deref()
            .and_then(split_command)
            .unwrap_or_default();
        if let Some(old) = inst.hook.take() {
            // Cannot happen (the state machine stops a hook before it leaves MASTER); do not
            // leave one behind if it does.
            let _ = self.south.kill(old.pid);
        }
        let env = hook_env(name, inst.last_transition.as_deref());
        let argv_ref: Vec<&str> = argv.iter().map(String::as_str).collect();
        let env_ref: Vec<&str> = env.iter().map(String::as_str).collect();
        if argv_ref.is_empty() {
            inst.end_hold = true;
            return;
        }
        match self
            .south
            .spawn(ChildOf::PreMaster(name), &argv_ref, &env_ref, user)
        {
            Ok(pid) => {
                info!(target: name,
                    "pre_master hook started (pid {pid}); VIPs held until it exits or {} pass",
                    format_duration(inst.cfg.pre_master_timeout));
                inst.hook = Some(Hook { pid, since: now });
            }
            Err(e) => {
                warn!(target: name, "pre_master hook {:?} cannot run: {e}; taking the VIPs now", &argv_ref[..]);
                inst.end_hold = true;
            }
        }
    }

    /// The IPv4 router of a dual-stack instance is MASTER and its hold is over (the hook
    /// exited, failed to start, timed out, or a reload removed it): the IPv6 router, held
    /// for that same hook, takes its VIPs too.
    pub(super) fn release_twin(&mut self, ctx: &mut Ctx, i: usize, now: Instant) {
        if self.owner(i) != i {
            return;
        }
        let Some(twin) = self.insts[i].pair else {
            return;
        };
        let o = &self.insts[i].fsm;
        let released = o.state() == State::Master && !o.pre_master_held();
        if released
            && self
                .insts
                .get(twin)
                .is_some_and(|t| t.fsm.pre_master_held())
        {
            self.feed(ctx, twin, Input::PreMasterDone, now);
        }
    }

    /// `Action::StopPreMaster`: the hold ended without the hook (timeout) or the instance
    /// left MASTER; kill the hook with its process group. The runtime reaps it.
    pub(super) fn stop_pre_master(&mut self, i: usize, now: Instant) {
        let inst = &mut self.insts[i];
        let Some(hook) = inst.hook.take() else {
            return;
        };
        let ran = format_duration(now.saturating_duration_since(hook.since));
        if inst.fsm.state() == State::Master {
            warn!(target: &inst.cfg.name,
                "pre_master hook (pid {}) still running after {ran} s: killed, taking the VIPs", hook.pid);
        } else {
            warn!(target: &inst.cfg.name,
                "pre_master hook (pid {}) killed after {ran} s: left MASTER ({}), VIPs never installed",
                hook.pid, inst.fsm.state());
        }
        if let Err(e) = self.south.kill(hook.pid) {
            warn!(target: &inst.cfg.name, "kill pre_master hook {}: {e}", hook.pid);
        }
    }

    /// A child was reaped: `true` if it was a running pre-master hook, whose instance then
    /// takes its VIPs (whatever the exit status; a failure is logged).
    pub fn on_child_exit(
        &mut self,
        ctx: &mut Ctx,
        pid: i32,
        status: ExitStatus,
        now: Instant,
    ) -> bool {
        let Some(i) = self
            .insts
            .iter()
            .position(|s| s.hook.is_some_and(|h| h.pid == pid))
        else {
            return false;
        };
        let inst = &mut self.insts[i];
        let since = inst.hook.take().map_or(now, |h| h.since);
        let ran = format_duration(now.saturating_duration_since(since));
        if status == ExitStatus::Code(0) {
            info!(target: &inst.cfg.name, "pre_master hook done after {ran} s: taking the VIPs");
        } else {
            warn!(target: &inst.cfg.name,
                "pre_master hook ended with {status:?} after {ran} s: taking the VIPs anyway");
        }
        self.feed(ctx, i, Input::PreMasterDone, now);
        true
    }
}
