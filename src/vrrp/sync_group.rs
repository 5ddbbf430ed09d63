//! Sync groups (keepalived `vrrp_sync_group`): member instances move together.
//!
//! - one member in FAULT (by its own interface or trackers) holds every other member in FAULT
//!   until no member has its own fault any more;
//! - one member leaving MASTER for BACKUP takes the other masters to BACKUP;
//! - one member becoming MASTER takes the other backups to MASTER;
//! - a member that wants mastership but waits for its group (an in-step router, see
//!   `Params::in_step`: one family of an instance with IPv4 and IPv6 VIPs) becomes MASTER
//!   only when every other member is MASTER or wants it too. So while one family still
//!   hears a master, both families stay BACKUP (keepalived's sync groups likewise "prefer
//!   backup to avoid thrashing" when a member's timer fires alone).
//!
//! Pure. After every `Instance::handle()` of a member, the daemon calls
//! [`SyncGroup::update`] with that member's `state()` and `own_fault()`, then feeds each
//! returned `(member, SyncCommand)` to that member as `Input::Sync(cmd)` and reports the
//! result back with `update` again. Commands only go to members whose last reported state
//! differs from the target, so the exchange settles after one round.

use crate::vrrp::instance::{State, SyncCommand};

/// Member slots per group; keepalived groups are small (a LAN and a WAN side, usually).
pub const MAX_MEMBERS: usize = 8;

/// Commands for other members: `(member index, command)`.
pub type Commands = heapless::Vec<(usize, SyncCommand), MAX_MEMBERS>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Member {
    state: State,
    own_fault: bool,
    /// Its Master_Down_Timer fired and it waits for the group (`Instance::wants_master`).
    wants_master: bool,
    /// We told this member to hold FAULT and have not released it.
    held: bool,
}

#[derive(Clone, Debug, Default)]
pub struct SyncGroup {
    members: heapless::Vec<Member, MAX_MEMBERS>,
}

impl SyncGroup {
    /// A group of `n` members (at most [`MAX_MEMBERS`]; extra members are ignored), all INIT.
    pub fn new(n: usize) -> SyncGroup {
        let mut members = heapless::Vec::new();
        for _ in 0..n.min(MAX_MEMBERS) {
            let _ = members.push(Member {
                state: State::Init,
                own_fault: false,
                wants_master: false,
                held: false,
            });
        }
        SyncGroup { members }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Forget what the group knew about member `idx` (its instance was re-created, e.g. by a
    /// restart): it starts again as INIT, not faulty, not held. Its next `update` re-applies
    /// any fault hold the other members still need.
    pub fn reset(&mut self, idx: usize) {
        if let Some(m) = self.members.get_mut(idx) {
            *m = Member {
                state: State::Init,
                own_fault: false,
                wants_master: false,
                held: false,
            };
        }
    }

    /// Report member `idx`'s state after it handled an input; returns what the other
    /// members must do. Out-of-range indices are ignored.
    pub fn update(&mut self, idx: usize, state: State, own_fault: bool) -> Commands {
        self.update_wanting(idx, state, own_fault, false)
    }

    /// [`Self::update`] for a member that may wait for the group before taking over
    /// (`wants_master`: `Instance::wants_master`).
    pub fn update_wanting(
        &mut self,
        idx: usize,
        state: State,
        own_fault: bool,
        wants_master: bool,
    ) -> Commands {
        let mut out = Commands::new();
        let Some(m) = self.members.get_mut(idx) else {
            return out;
        };
        let prev = m.state;
        m.state = state;
        m.own_fault = own_fault;
        m.wants_master = wants_master && state == State::Backup;

        let any_fault = self.members.iter().any(|m| m.own_fault);
        if any_fault {
            for (i, m) in self.members.iter_mut().enumerate() {
                if !m.own_fault && !m.held {
                    m.held = true;
                    let _ = out.push((i, SyncCommand::Fault));
                }
            }
            return out;
        }
        // No member faulty by itself: release every hold (the member that reported is free
        // too, it may have been held).
        for (i, m) in self.members.iter_mut().enumerate() {
            if m.held {
                m.held = false;
                let _ = out.push((i, SyncCommand::ReleaseFault));
            }
        }
        if !out.is_empty() {
            return out;
        }
        let target = match (prev, state) {
            (State::Master, State::Backup) => Some((State::Master, SyncCommand::Backup)),
            (_, State::Master) if prev != State::Master => {
                Some((State::Backup, SyncCommand::Master))
            }
            _ => None,
        };
        if let Some((from, cmd)) = target {
            for (i, m) in self.members.iter().enumerate() {
                if i != idx && m.state == from {
                    let _ = out.push((i, cmd));
                }
            }
            return out;
        }
        // Waiting members take over together, once no member is left that neither is
        // MASTER nor wants to be (one that still hears a master keeps them all BACKUP).
        let wanting = self.members.iter().any(|m| m.wants_master);
        let all_agree = self
            .members
            .iter()
            .all(|m| m.wants_master || m.state == State::Master);
        if wanting && all_agree {
            for (i, m) in self.members.iter_mut().enumerate() {
                if m.wants_master {
                    // Told once; its MASTER report follows.
                    m.wants_master = false;
                    let _ = out.push((i, SyncCommand::Master));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_fault_holds_all_then_releases() {
        let mut g = SyncGroup::new(3);
        for i in 0..3 {
            assert!(g.update(i, State::Backup, false).is_empty());
        }
        let c = g.update(1, State::Fault, true);
        assert_eq!(
            c.as_slice(),
            &[(0, SyncCommand::Fault), (2, SyncCommand::Fault)]
        );
        // The held members report FAULT: nothing more.
        assert!(g.update(0, State::Fault, false).is_empty());
        assert!(g.update(2, State::Fault, false).is_empty());
        // Member 1 recovers: holds are released.
        let c = g.update(1, State::Backup, false);
        assert_eq!(
            c.as_slice(),
            &[
                (0, SyncCommand::ReleaseFault),
                (2, SyncCommand::ReleaseFault)
            ]
        );
    }

    #[test]
    fn master_together_and_backup_together() {
        let mut g = SyncGroup::new(2);
        g.update(0, State::Backup, false);
        g.update(1, State::Backup, false);
        assert_eq!(
            g.update(0, State::Master, false).as_slice(),
            &[(1, SyncCommand::Master)]
        );
        assert!(g.update(1, State::Master, false).is_empty());
        assert_eq!(
            g.update(1, State::Backup, false).as_slice(),
            &[(0, SyncCommand::Backup)]
        );
        assert!(g.update(0, State::Backup, false).is_empty());
    }

    /// One family's router wants mastership (its Master_Down_Timer fired) while the other
    /// still hears a master: neither moves. When the other wants it too, both are told.
    #[test]
    fn waiting_members_take_over_only_together() {
        let mut g = SyncGroup::new(2);
        g.update_wanting(0, State::Backup, false, false);
        g.update_wanting(1, State::Backup, false, false);
        assert!(g.update_wanting(0, State::Backup, false, true).is_empty());
        // Member 1 hears its master again (no change): still nothing.
        assert!(g.update_wanting(1, State::Backup, false, false).is_empty());
        assert_eq!(
            g.update_wanting(1, State::Backup, false, true).as_slice(),
            &[(0, SyncCommand::Master), (1, SyncCommand::Master)]
        );
        // Their MASTER reports settle the exchange (member 1's record is still BACKUP when
        // member 0 reports, so it is told again; the instance ignores it as MASTER).
        assert_eq!(
            g.update_wanting(0, State::Master, false, false).as_slice(),
            &[(1, SyncCommand::Master)]
        );
        assert!(g.update_wanting(1, State::Master, false, false).is_empty());
    }

    /// A member that wants mastership joins a member already MASTER (e.g. one re-created by
    /// a reload while its partner kept mastership).
    #[test]
    fn a_waiting_member_joins_a_master() {
        let mut g = SyncGroup::new(2);
        g.update_wanting(0, State::Master, false, false);
        g.update_wanting(1, State::Backup, false, false);
        assert_eq!(
            g.update_wanting(1, State::Backup, false, true).as_slice(),
            &[(1, SyncCommand::Master)]
        );
    }

    /// Wanting is forgotten when the member leaves BACKUP (a fault), so a later master
    /// report of the other member does not pull it along on a stale wish.
    #[test]
    fn wanting_counts_only_in_backup() {
        let mut g = SyncGroup::new(2);
        g.update_wanting(0, State::Backup, false, false);
        g.update_wanting(1, State::Backup, false, false);
        assert_eq!(
            g.update_wanting(0, State::Fault, true, true).as_slice(),
            &[(1, SyncCommand::Fault)]
        );
        assert!(g.update_wanting(1, State::Fault, false, false).is_empty());
    }

    #[test]
    fn two_faults_release_only_when_both_clear() {
        let mut g = SyncGroup::new(3);
        for i in 0..3 {
            g.update(i, State::Backup, false);
        }
        g.update(0, State::Fault, true);
        g.update(1, State::Fault, true);
        // Member 0's own fault clears while 1 is still faulty: 0 is now held.
        assert_eq!(
            g.update(0, State::Fault, false).as_slice(),
            &[(0, SyncCommand::Fault)]
        );
        // Member 1 was held by 0's fault before its own: all three holds go.
        let c = g.update(1, State::Fault, false);
        assert_eq!(
            c.as_slice(),
            &[
                (0, SyncCommand::ReleaseFault),
                (1, SyncCommand::ReleaseFault),
                (2, SyncCommand::ReleaseFault)
            ]
        );
    }
}
