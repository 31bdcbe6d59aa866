//! `vrrp_sync_group`: members move together (pure; the daemon applies it).
//!
//! keepalived's rules (vrrp_sync.c), reproduced:
//! - FAULT: one member faulted faults them all; the group leaves FAULT when
//!   no member is faulted any more. The daemon does this by feeding every
//!   member the group's fault level ([`group_fault`]).
//! - BACKUP: a master member that falls back to backup (a better master
//!   appeared) takes the others out of master with it.
//! - MASTER: a member whose down timer expires only *wants* master; the
//!   group goes master when every member wants to or already is ("prefer
//!   backup state to avoid thrashing"). A member that becomes master by
//!   itself (the address owner at start-up) takes the others along.

use crate::{
    engine::{Input, Reason, State},
    notify::NotifyState,
};

/// A member's view for the group decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub state: State,
    pub wants_master: bool,
}

/// What the other members must do after `member` made a transition.
pub fn follow(
    members: &[Member],
    member: usize,
    from: State,
    to: State,
    reason: Reason,
) -> Vec<(usize, Input)> {
    if reason == Reason::SyncGroup {
        // Already a consequence of the group; do not echo it back.
        return Vec::new();
    }
    let input = match (from, to) {
        // keepalived's set_vrrp_backup releases every master member the same way.
        (State::Master, State::Backup) if reason == Reason::Deleted => Input::SyncRelease,
        (State::Master, State::Backup) => Input::SyncBackup,
        (_, State::Master) => Input::SyncMaster,
        _ => return Vec::new(),
    };
    let wanted = |m: &Member| match input {
        Input::SyncBackup | Input::SyncRelease => m.state == State::Master,
        _ => m.state == State::Backup,
    };
    members
        .iter()
        .enumerate()
        .filter(|(i, m)| *i != member && wanted(m))
        .map(|(i, _)| (i, input))
        .collect()
}

/// Members to move to master now: when every member either is master or
/// wants to be, and at least one is still waiting.
pub fn ready_for_master(members: &[Member]) -> Vec<usize> {
    let all_ready = members
        .iter()
        .all(|m| m.state == State::Master || (m.state == State::Backup && m.wants_master));
    if !all_ready {
        return Vec::new();
    }
    members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.state == State::Backup)
        .map(|(i, _)| i)
        .collect()
}

/// The group's fault level: any member's own fault.
pub fn group_fault(own_faults: impl IntoIterator<Item = bool>) -> bool {
    own_faults.into_iter().any(|f| f)
}

/// The group's state once its members have settled; `None` while they
/// disagree (in the middle of moving together) or have not started.
pub fn group_state(members: &[Member]) -> Option<NotifyState> {
    let all = |s: State| members.iter().all(|m| m.state == s);
    if members.iter().any(|m| m.state == State::Fault) {
        Some(NotifyState::Fault)
    } else if all(State::Stopped) {
        Some(NotifyState::Stop)
    } else if all(State::Master) {
        Some(NotifyState::Master)
    } else if all(State::Backup) {
        Some(NotifyState::Backup)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(state: State, wants_master: bool) -> Member {
        Member {
            state,
            wants_master,
        }
    }

    #[test]
    fn a_master_falling_back_takes_the_other_masters_along() {
        let members = [
            m(State::Backup, false),
            m(State::Master, false),
            m(State::Fault, false),
        ];
        let out = follow(
            &members,
            0,
            State::Master,
            State::Backup,
            Reason::HigherPriorityAdvert,
        );
        assert_eq!(out, vec![(1, Input::SyncBackup)]);
    }

    #[test]
    fn a_member_going_master_alone_takes_the_backups_along() {
        let members = [m(State::Master, false), m(State::Backup, false)];
        let out = follow(
            &members,
            0,
            State::Initialize,
            State::Master,
            Reason::AddressOwner,
        );
        assert_eq!(out, vec![(1, Input::SyncMaster)]);
    }

    #[test]
    fn group_moves_are_not_echoed() {
        let members = [m(State::Master, false), m(State::Backup, false)];
        assert!(follow(&members, 0, State::Backup, State::Master, Reason::SyncGroup).is_empty());
        // Other transitions (to FAULT: handled by the fault level) ask nothing.
        assert!(follow(&members, 0, State::Master, State::Fault, Reason::Fault).is_empty());
    }

    #[test]
    fn master_only_when_every_member_wants_it() {
        assert!(ready_for_master(&[m(State::Backup, true), m(State::Backup, false)]).is_empty());
        assert_eq!(
            ready_for_master(&[m(State::Backup, true), m(State::Backup, true)]),
            vec![0, 1]
        );
        assert_eq!(
            ready_for_master(&[m(State::Master, false), m(State::Backup, true)]),
            vec![1]
        );
        assert!(ready_for_master(&[m(State::Master, false), m(State::Master, false)]).is_empty());
        assert!(ready_for_master(&[m(State::Fault, false), m(State::Backup, true)]).is_empty());
    }

    #[test]
    fn group_state_is_settled_or_none() {
        assert_eq!(
            group_state(&[m(State::Master, false), m(State::Master, false)]),
            Some(NotifyState::Master)
        );
        assert_eq!(
            group_state(&[m(State::Master, false), m(State::Backup, false)]),
            None
        );
        assert_eq!(
            group_state(&[m(State::Fault, false), m(State::Backup, false)]),
            Some(NotifyState::Fault)
        );
        assert_eq!(
            group_state(&[m(State::Stopped, false), m(State::Stopped, false)]),
            Some(NotifyState::Stop)
        );
        assert!(group_fault([false, true]));
        assert!(!group_fault([false, false]));
    }
}
