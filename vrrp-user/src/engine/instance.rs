//! The per-instance state machine: RFC 3768 / RFC 5798 §6 with keepalived's
//! differences (VRRP-BEHAVIOUR.md), fed inputs and the time, returning actions.
//!
//! Time is `Mono` (CLOCK_MONOTONIC, the clock the XDP program stamps adverts
//! with). The master-down timer always counts from the *kernel arrival time*
//! of the advert that last reset it, never from when the daemon got round to
//! it: a starved daemon that reads a fresh advert record before acting on its
//! timer stays backup.
//!
//! keepalived behaviour reproduced here, each checked against its source
//! (vrrp.c `vrrp_state_backup` / `vrrp_state_master_rx`, vrrp_scheduler.c
//! `vrrp_init_state`, vrrp_track.c `vrrp_set_effective_priority`):
//! - `preempt_delay` starts at the first *lower-priority* advert seen while
//!   backup and is cancelled by any advert of priority ≥ ours; it restarts
//!   from nothing on every entry to BACKUP. (keepalived 1.x started it at
//!   startup; 2.x, the reference peer, does this.) Inside the delay a
//!   lower-priority advert resets the down timer like a higher one.
//! - `state MASTER` without priority 255 waits a shortened first down timer,
//!   `Master_Adver_Interval + Skew_min` (keepalived's `VRRP_TIMER_SKEW_MIN`),
//!   then behaves as BACKUP.
//! - A priority change while backup moves the pending down timer with it
//!   (the deadline is `basis + interval(current priority)`).
//! - The address owner (base priority 255) ignores priority changes.

use std::{net::IpAddr, time::Duration};

use super::{
    params::{InstanceParams, ParamsError, PRIORITY_OWNER, PRIORITY_STOP},
    timers,
};
use crate::{
    packet::{Family, Version},
    time::Mono,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Created, `Startup` not yet seen.
    Initialize,
    Backup,
    Master,
    Fault,
    /// After `Shutdown`: inert (keepalived's STOP notification).
    Stopped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Startup,
    Advert(AdvertSeen),
    /// `next_deadline()` has passed (or may have: spurious calls are harmless).
    Timer,
    /// New effective priority (base + tracking weights, clamped by the caller).
    SetPriority(u8),
    /// `true`: a tracked interface/script demands FAULT; `false`: it cleared.
    Fault(bool),
    /// Sync group: every member wants master (or is); go master now.
    SyncMaster,
    /// Sync group: another member left master for backup; follow it.
    SyncBackup,
    /// Instead of `Startup`, after an in-place restart of a master: master
    /// again at once, the VIPs already in place (no GARP burst, no notify).
    ResumeMaster,
    /// One of our VIPs, routes or rules was deleted while master (keepalived's
    /// `set_vrrp_backup`): send priority 0, release everything, and come back
    /// after Skew_Time unless another master appears.
    Release,
    /// Sync group: another member was released that way; the same for us.
    SyncRelease,
    Shutdown,
}

/// An advert that passed the packet checks (XDP or userspace), for this
/// instance's VRID and family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertSeen {
    pub src: IpAddr,
    pub priority: u8,
    pub interval: Duration,
    /// Kernel arrival time (`bpf_ktime_get_ns`).
    pub arrived: Mono,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    SendAdvert {
        priority: u8,
    },
    AddVips,
    RemoveVips,
    SendGarpBurst(GarpBurst),
    /// One per state change; the daemon logs it and runs the notify scripts.
    Transition {
        from: State,
        to: State,
        reason: Reason,
        priority: u8,
    },
    /// The advert changed nothing; for counters and debug logs.
    AdvertIgnored {
        src: IpAddr,
        priority: u8,
        reason: IgnoreReason,
    },
    /// v3 backup took the master's advertised interval (keepalived logs this).
    MasterIntervalAdopted {
        from: Duration,
        to: Duration,
    },
}

/// Gratuitous ARPs / unsolicited NAs for every VIP, `count` of each,
/// `spacing` apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GarpBurst {
    pub count: u32,
    pub spacing: Duration,
    pub cause: GarpCause,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GarpCause {
    BecameMaster,
    /// `garp_master_delay` after becoming master.
    MasterDelay,
    /// `garp_master_refresh`.
    Refresh,
    /// A lower-priority advert reached us as master.
    LowerPriorityAdvert,
    /// `garp_lower_prio_delay` after that.
    LowerPriorityDelay,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Initialize → Backup.
    Startup,
    /// Priority 255 with `state MASTER`: master without waiting.
    AddressOwner,
    /// No advert good enough for Master_Down_Interval.
    MasterDownTimer,
    /// The master said it was leaving (priority 0) and Skew_Time passed.
    PriorityZeroReceived,
    HigherPriorityAdvert,
    EqualPriorityHigherAddress,
    Fault,
    FaultCleared,
    /// Moved with the other members of its sync group.
    SyncGroup,
    /// Master again after an in-place restart (`Input::ResumeMaster`).
    Resumed,
    /// A VIP, route or rule of ours was deleted while master.
    Deleted,
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    NotStarted,
    Stopped,
    InFault,
    /// Carries our own primary address: a loop or a duplicate address.
    OwnAddress,
    FamilyMismatch,
    /// v2 adverts must carry our interval (keepalived drops others).
    IntervalMismatch {
        ours: Duration,
        theirs: Duration,
    },
    ZeroInterval,
    /// Arrived before the event that set the current timers (read out of
    /// order, or predates our becoming master); newer information won.
    Stale,
    /// Backup with preemption: a lower-priority master is waited out.
    LowerPriority,
    /// Master: an advert that would be answered, but one was answered less
    /// than an advert interval ago.
    RateLimited,
}

/// How far before the moment we became master an advert's kernel timestamp
/// may lie and still count. Adverts every second or slower are stamped with
/// the coarse clock, up to one tick (10 ms at HZ=100) behind the moment they
/// arrived: a higher-priority master's advert that arrives just after our
/// takeover (after its records were read) can carry an earlier stamp, and
/// must still make us step down.
pub const ARRIVAL_SLACK: Duration = Duration::from_millis(10);

/// What the pending master-down timer was started by; its length is derived
/// from the current priority and interval whenever it is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DownTimer {
    /// `down_timer_adverts × MAI + Skew_Time`.
    MasterDown,
    /// Priority-0 advert: Skew_Time only.
    Skew,
    /// `state MASTER` (not owner) at startup: `MAI + Skew_min`.
    InitialMaster,
    /// The address owner waiting out `vrrp_startup_delay`: master as soon as it ends.
    Owner,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BackupTimers {
    /// Arrival of the advert (or the event) that last set the down timer.
    basis: Mono,
    kind: DownTimer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MasterTimers {
    since: Mono,
    next_advert: Mono,
    garp_delay: Option<Mono>,
    garp_refresh: Option<Mono>,
    lower_prio_garp: Option<Mono>,
    /// Arrival of the last advert we answered (a lower priority or a
    /// priority 0 one): answers are rate-limited to one per advert interval,
    /// so a flood of forged adverts cannot be amplified.
    answered: Option<Mono>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Initialize,
    Backup(BackupTimers),
    Master(MasterTimers),
    Fault,
    Stopped,
}

/// One VRRP instance. The daemon must feed the adverts it has read (ring
/// buffer / map) before a `Timer` for the same moment: a fresh arrival is what
/// keeps a late timer from declaring a live master dead.
#[derive(Clone, Debug)]
pub struct Instance {
    params: InstanceParams,
    phase: Phase,
    effective_priority: u8,
    /// Own interval, or in v3 the one the current master advertises.
    master_adver_interval: Duration,
    /// Level of the last `Fault` input; remembered before `Startup`.
    faulted: bool,
    /// End of the running `preempt_delay`, if one runs.
    preempt_until: Option<Mono>,
    /// `preempt_until` again, until a timer has run at or after it. The
    /// daemon reads the kernel's records before each timer, and a record
    /// holds only a peer's latest advert: waking when the delay ends is
    /// what shows the last advert that arrived inside it, which (as in
    /// keepalived) still resets the down timer.
    preempt_wake: Option<Mono>,
    master_addr: Option<IpAddr>,
    /// Sync group member whose down timer expired: ready to go master with
    /// the group. Cleared by any advert that holds us in backup.
    wants_master: bool,
    /// End of `vrrp_startup_delay`: no down timer expires before it.
    startup_until: Option<Mono>,
}

impl Instance {
    pub fn new(params: InstanceParams) -> Result<Self, ParamsError> {
        params.validate()?;
        Ok(Instance {
            effective_priority: params.priority,
            master_adver_interval: params.advert_interval,
            params,
            phase: Phase::Initialize,
            faulted: false,
            preempt_until: None,
            preempt_wake: None,
            master_addr: None,
            wants_master: false,
            startup_until: None,
        })
    }

    /// The interface came back with another address: the tie-break and the
    /// own-advert check use it from now on.
    pub fn set_primary_addr(&mut self, addr: IpAddr) {
        self.params.primary_addr = addr;
    }

    pub fn params(&self) -> &InstanceParams {
        &self.params
    }

    /// A reload changed what the instance is configured with, but not what
    /// it is (VRID, version, family, address): state and timers carry on.
    /// The base priority goes through `SetPriority` like any other change
    /// (the caller folds it with the trackers), so it is not touched here.
    /// A changed advert interval applies from the next advert or down timer.
    /// Becoming the address owner (255) applies at once.
    pub fn reconfigure(&mut self, params: InstanceParams) -> Result<Vec<Action>, ParamsError> {
        params.validate()?;
        debug_assert_eq!(
            (
                params.vrid,
                params.version,
                params.family,
                params.primary_addr
            ),
            (
                self.params.vrid,
                self.params.version,
                self.params.family,
                self.params.primary_addr
            ),
            "identity changes restart the instance"
        );
        if params.advert_interval != self.params.advert_interval
            && !matches!(self.phase, Phase::Backup(_))
        {
            // A backup keeps the interval its master advertises (v3).
            self.master_adver_interval = params.advert_interval;
        }
        if params.preempt_delay.is_zero() {
            self.preempt_until = None;
            self.preempt_wake = None;
        }
        let becomes_owner = params.is_address_owner() && !self.params.is_address_owner();
        self.params = params;
        let mut actions = Vec::new();
        if becomes_owner {
            // The owner ignores SetPriority, so take 255 here.
            self.effective_priority = PRIORITY_OWNER;
            if let Phase::Master(_) = self.phase {
                actions.push(Action::SendAdvert {
                    priority: PRIORITY_OWNER,
                });
            }
        }
        Ok(actions)
    }

    pub fn state(&self) -> State {
        match self.phase {
            Phase::Initialize => State::Initialize,
            Phase::Backup(_) => State::Backup,
            Phase::Master(_) => State::Master,
            Phase::Fault => State::Fault,
            Phase::Stopped => State::Stopped,
        }
    }

    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }

    /// Master_Down_Interval at the current priority and interval.
    pub fn master_down_interval(&self) -> Duration {
        timers::master_down_interval(
            self.params.version,
            self.effective_priority,
            self.master_adver_interval,
            self.params.down_timer_adverts,
        )
    }

    pub fn skew_time(&self) -> Duration {
        timers::skew_time(
            self.params.version,
            self.effective_priority,
            self.master_adver_interval,
        )
    }

    /// The current master as far as we know: the source of the last advert
    /// that held us in backup, our own address while master.
    pub fn master_addr(&self) -> Option<IpAddr> {
        self.master_addr
    }

    /// Sync group member: its down timer expired and it waits for the rest
    /// of the group (see `InstanceParams::sync_group`).
    pub fn wants_master(&self) -> bool {
        self.wants_master && matches!(self.phase, Phase::Backup(_))
    }

    /// When `handle(Input::Timer, _)` next has work; `None` = no timer.
    pub fn next_deadline(&self) -> Option<Mono> {
        match self.phase {
            Phase::Backup(backup) => {
                let down = self.down_deadline(backup);
                Some(self.preempt_wake.map_or(down, |w| w.min(down)))
            }
            Phase::Master(master) => [
                Some(master.next_advert),
                master.garp_delay,
                master.garp_refresh,
                master.lower_prio_garp,
            ]
            .into_iter()
            .flatten()
            .min(),
            Phase::Initialize | Phase::Fault | Phase::Stopped => None,
        }
    }

    pub fn handle(&mut self, input: Input, now: Mono) -> Vec<Action> {
        let mut actions = Vec::new();
        match input {
            Input::Startup => self.on_startup(now, &mut actions),
            Input::Advert(seen) => self.on_advert(seen, now, &mut actions),
            Input::Timer => self.on_timer(now, &mut actions),
            Input::SetPriority(priority) => self.on_set_priority(priority, &mut actions),
            Input::Fault(faulted) => self.on_fault(faulted, now, &mut actions),
            Input::SyncMaster => {
                if let Phase::Backup(_) = self.phase {
                    self.enter_master(now, Reason::SyncGroup, &mut actions);
                }
            }
            Input::SyncBackup => {
                if let Phase::Master(_) = self.phase {
                    actions.push(Action::RemoveVips);
                    self.enter_backup(now, DownTimer::MasterDown, Reason::SyncGroup, &mut actions);
                }
            }
            Input::ResumeMaster => self.on_resume(now, &mut actions),
            Input::Release | Input::SyncRelease => {
                if let Phase::Master(_) = self.phase {
                    let reason = match input {
                        Input::Release => Reason::Deleted,
                        _ => Reason::SyncGroup,
                    };
                    actions.push(Action::SendAdvert {
                        priority: PRIORITY_STOP,
                    });
                    actions.push(Action::RemoveVips);
                    // "We want a quick transition back to master."
                    self.enter_backup(now, DownTimer::Skew, reason, &mut actions);
                }
            }
            Input::Shutdown => self.on_shutdown(&mut actions),
        }
        actions
    }

    fn on_resume(&mut self, now: Mono, actions: &mut Vec<Action>) {
        if self.phase != Phase::Initialize {
            return;
        }
        if self.faulted {
            self.enter_fault(actions);
            return;
        }
        // The advert first: the peers' down timers have been running since
        // the old image's last one. AddVips is idempotent and restores a
        // VIP removed during the restart.
        actions.push(Action::SendAdvert {
            priority: self.effective_priority,
        });
        actions.push(Action::AddVips);
        let timers = MasterTimers {
            since: now,
            next_advert: now + self.params.advert_interval,
            garp_delay: None,
            garp_refresh: (!self.params.garp.master_refresh.is_zero()
                && self.params.garp.master_refresh_repeat > 0)
                .then(|| now + self.params.garp.master_refresh),
            lower_prio_garp: None,
            answered: None,
        };
        self.master_addr = Some(self.params.primary_addr);
        self.transition(Phase::Master(timers), Reason::Resumed, actions);
    }

    fn on_startup(&mut self, now: Mono, actions: &mut Vec<Action>) {
        if self.phase != Phase::Initialize {
            return;
        }
        if !self.params.startup_delay.is_zero() {
            self.startup_until = Some(now + self.params.startup_delay);
        }
        if self.faulted {
            self.enter_fault(actions);
        } else if self.owner_wants_master() && self.startup_until.is_some() {
            // keepalived puts the owner in BACKUP silently with a down timer
            // that ends with the delay.
            self.phase = Phase::Backup(BackupTimers {
                basis: now,
                kind: DownTimer::Owner,
            });
        } else if self.owner_wants_master() {
            self.enter_master(now, Reason::AddressOwner, actions);
        } else {
            let kind = match self.params.initial_state_master {
                true => DownTimer::InitialMaster,
                false => DownTimer::MasterDown,
            };
            self.enter_backup(now, kind, Reason::Startup, actions);
        }
    }

    fn on_advert(&mut self, seen: AdvertSeen, now: Mono, actions: &mut Vec<Action>) {
        let ignore = |reason| Action::AdvertIgnored {
            src: seen.src,
            priority: seen.priority,
            reason,
        };
        let reject = match self.phase {
            Phase::Initialize => Some(IgnoreReason::NotStarted),
            Phase::Stopped => Some(IgnoreReason::Stopped),
            Phase::Fault => Some(IgnoreReason::InFault),
            Phase::Backup(_) | Phase::Master(_) => self.sanity_check(&seen),
        };
        if let Some(reason) = reject {
            actions.push(ignore(reason));
            return;
        }
        match self.phase {
            Phase::Backup(backup) => {
                if seen.arrived < backup.basis {
                    actions.push(ignore(IgnoreReason::Stale));
                } else {
                    self.backup_rx(seen, actions);
                }
            }
            Phase::Master(master) => {
                if seen.arrived + ARRIVAL_SLACK < master.since {
                    actions.push(ignore(IgnoreReason::Stale));
                } else {
                    self.master_rx(seen, now, actions);
                }
            }
            Phase::Initialize | Phase::Fault | Phase::Stopped => {}
        }
    }

    /// Checks that depend on the instance, not the state.
    fn sanity_check(&self, seen: &AdvertSeen) -> Option<IgnoreReason> {
        if Family::of(&seen.src) != self.params.family {
            return Some(IgnoreReason::FamilyMismatch);
        }
        if seen.src == self.params.primary_addr {
            return Some(IgnoreReason::OwnAddress);
        }
        if seen.interval.is_zero() {
            return Some(IgnoreReason::ZeroInterval);
        }
        match self.params.version {
            Version::V2 if seen.interval != self.params.advert_interval => {
                Some(IgnoreReason::IntervalMismatch {
                    ours: self.params.advert_interval,
                    theirs: seen.interval,
                })
            }
            Version::V2 | Version::V3 => None,
        }
    }

    fn backup_rx(&mut self, seen: AdvertSeen, actions: &mut Vec<Action>) {
        if seen.priority == PRIORITY_STOP {
            // The master is leaving: take over after Skew_Time only.
            self.wants_master = false;
            self.phase = Phase::Backup(BackupTimers {
                basis: seen.arrived,
                kind: DownTimer::Skew,
            });
            return;
        }
        let ours = self.effective_priority;
        let delay = self.params.preempt_delay;
        let inside_preempt_delay =
            !delay.is_zero() && self.preempt_until.is_none_or(|until| until > seen.arrived);
        if self.params.preempt && seen.priority < ours && !inside_preempt_delay {
            actions.push(Action::AdvertIgnored {
                src: seen.src,
                priority: seen.priority,
                reason: IgnoreReason::LowerPriority,
            });
            return;
        }

        self.adopt_interval(seen.interval, actions);
        self.wants_master = false;
        self.phase = Phase::Backup(BackupTimers {
            basis: seen.arrived,
            kind: DownTimer::MasterDown,
        });
        self.master_addr = Some(seen.src);
        if !delay.is_zero() {
            if seen.priority >= ours {
                self.preempt_until = None;
                self.preempt_wake = None;
            } else if self.preempt_until.is_none() {
                self.preempt_until = Some(seen.arrived + delay);
                // Just before the end: an advert arriving exactly at the
                // end is already outside the delay.
                self.preempt_wake = Some(seen.arrived + delay - Duration::from_nanos(1));
            }
        }
    }

    fn master_rx(&mut self, seen: AdvertSeen, now: Mono, actions: &mut Vec<Action>) {
        let ours = self.effective_priority;
        let theirs_wins = seen.priority != PRIORITY_STOP
            && (seen.priority > ours
                || (seen.priority == ours
                    && addr_number(seen.src) > addr_number(self.params.primary_addr)));
        if !theirs_wins {
            // What follows answers the advert; at most once per interval.
            let Phase::Master(master) = &mut self.phase else {
                return;
            };
            let interval = self.params.advert_interval;
            if master
                .answered
                .is_some_and(|at| seen.arrived < at + interval)
            {
                actions.push(Action::AdvertIgnored {
                    src: seen.src,
                    priority: seen.priority,
                    reason: IgnoreReason::RateLimited,
                });
                return;
            }
            master.answered = Some(seen.arrived);
        }
        if seen.priority == PRIORITY_STOP {
            // Someone left; assert ourselves at once so backups do not elect.
            actions.push(Action::SendAdvert {
                priority: self.effective_priority,
            });
            return;
        }
        if theirs_wins {
            let reason = match seen.priority > ours {
                true => Reason::HigherPriorityAdvert,
                false => Reason::EqualPriorityHigherAddress,
            };
            if self.params.higher_prio_send_advert {
                actions.push(Action::SendAdvert { priority: ours });
            }
            self.adopt_interval(seen.interval, actions);
            actions.push(Action::RemoveVips);
            self.master_addr = Some(seen.src);
            self.enter_backup(seen.arrived, DownTimer::MasterDown, reason, actions);
            return;
        }

        // keepalived's "forcing a new election": the other side must hear a
        // better master now (unless lower_prio_no_advert), and hosts must
        // learn our MAC again.
        if !self.params.lower_prio_no_advert {
            actions.push(Action::SendAdvert { priority: ours });
        }
        let (repeat, delay) = (
            self.params.garp.lower_prio_repeat,
            self.params.garp.lower_prio_delay,
        );
        if repeat > 0 {
            actions.push(self.garp_burst(repeat, GarpCause::LowerPriorityAdvert));
            if !delay.is_zero() {
                let at = now + delay;
                if let Phase::Master(master) = &mut self.phase {
                    master.lower_prio_garp = Some(at);
                }
            }
        }
    }

    fn on_timer(&mut self, now: Mono, actions: &mut Vec<Action>) {
        match self.phase {
            Phase::Backup(backup) => {
                if self.preempt_wake.is_some_and(|w| now >= w) {
                    self.preempt_wake = None;
                }
                if now < self.down_deadline(backup) {
                    return;
                }
                if self.params.sync_group {
                    // Wait for the group; keep a timer running so we notice
                    // again if the group still is not ready (keepalived
                    // re-arms the down timer here too).
                    self.wants_master = true;
                    self.phase = Phase::Backup(BackupTimers {
                        basis: now,
                        kind: DownTimer::MasterDown,
                    });
                } else {
                    let reason = match backup.kind {
                        DownTimer::Skew => Reason::PriorityZeroReceived,
                        DownTimer::Owner => Reason::AddressOwner,
                        DownTimer::MasterDown | DownTimer::InitialMaster => Reason::MasterDownTimer,
                    };
                    self.enter_master(now, reason, actions);
                }
            }
            Phase::Master(mut master) => {
                let interval = self.params.advert_interval;
                if now >= master.next_advert {
                    actions.push(Action::SendAdvert {
                        priority: self.effective_priority,
                    });
                    master.next_advert = next_period(master.next_advert, interval, now);
                }
                let garp = self.params.garp;
                if master.garp_delay.is_some_and(|at| now >= at) {
                    master.garp_delay = None;
                    actions.push(self.garp_burst(garp.master_repeat, GarpCause::MasterDelay));
                }
                if let Some(at) = master.garp_refresh.filter(|at| now >= *at) {
                    master.garp_refresh = Some(next_period(at, garp.master_refresh, now));
                    actions.push(self.garp_burst(garp.master_refresh_repeat, GarpCause::Refresh));
                }
                if master.lower_prio_garp.is_some_and(|at| now >= at) {
                    master.lower_prio_garp = None;
                    actions.push(
                        self.garp_burst(garp.lower_prio_repeat, GarpCause::LowerPriorityDelay),
                    );
                }
                self.phase = Phase::Master(master);
            }
            Phase::Initialize | Phase::Fault | Phase::Stopped => {}
        }
    }

    fn on_set_priority(&mut self, priority: u8, actions: &mut Vec<Action>) {
        if self.params.is_address_owner() {
            return;
        }
        // 0 would read as "master leaving" on the wire, 255 as an owner.
        let priority = priority.clamp(1, PRIORITY_OWNER - 1);
        if priority == self.effective_priority {
            return;
        }
        self.effective_priority = priority;
        match self.phase {
            Phase::Master(_) => actions.push(Action::SendAdvert { priority }),
            // Backup: the down deadline is derived, so it moves by itself.
            Phase::Initialize | Phase::Backup(_) | Phase::Fault | Phase::Stopped => {}
        }
    }

    fn on_fault(&mut self, faulted: bool, now: Mono, actions: &mut Vec<Action>) {
        self.faulted = faulted;
        match (faulted, self.phase) {
            (true, Phase::Master(_)) => {
                actions.push(Action::SendAdvert {
                    priority: PRIORITY_STOP,
                });
                actions.push(Action::RemoveVips);
                self.enter_fault(actions);
            }
            (true, Phase::Backup(_)) => self.enter_fault(actions),
            (false, Phase::Fault) => {
                self.master_adver_interval = self.params.advert_interval;
                if self.owner_wants_master() {
                    self.enter_master(now, Reason::AddressOwner, actions);
                } else {
                    self.enter_backup(now, DownTimer::MasterDown, Reason::FaultCleared, actions);
                }
            }
            // Before Startup the level is remembered; otherwise no change.
            (true, Phase::Initialize | Phase::Fault | Phase::Stopped)
            | (false, Phase::Initialize | Phase::Backup(_) | Phase::Master(_) | Phase::Stopped) => {
            }
        }
    }

    fn on_shutdown(&mut self, actions: &mut Vec<Action>) {
        match self.phase {
            Phase::Stopped => return,
            Phase::Master(_) => {
                actions.push(Action::SendAdvert {
                    priority: PRIORITY_STOP,
                });
                actions.push(Action::RemoveVips);
            }
            Phase::Initialize | Phase::Backup(_) | Phase::Fault => {}
        }
        self.transition(Phase::Stopped, Reason::Shutdown, actions);
    }

    fn enter_backup(
        &mut self,
        basis: Mono,
        kind: DownTimer,
        reason: Reason,
        actions: &mut Vec<Action>,
    ) {
        // keepalived zeroes preempt_time on every entry to BACKUP.
        self.preempt_until = None;
        self.preempt_wake = None;
        self.wants_master = false;
        self.transition(Phase::Backup(BackupTimers { basis, kind }), reason, actions);
    }

    fn enter_master(&mut self, now: Mono, reason: Reason, actions: &mut Vec<Action>) {
        // Advert first, so the old master drops the VIPs before our GARPs.
        actions.push(Action::SendAdvert {
            priority: self.effective_priority,
        });
        actions.push(Action::AddVips);
        let garp = &self.params.garp;
        if garp.master_repeat > 0 {
            actions.push(self.garp_burst(garp.master_repeat, GarpCause::BecameMaster));
        }
        let after = |delay: Duration| (!delay.is_zero()).then(|| now + delay);
        let timers = MasterTimers {
            since: now,
            next_advert: now + self.params.advert_interval,
            garp_delay: after(garp.master_delay).filter(|_| garp.master_repeat > 0),
            garp_refresh: after(garp.master_refresh).filter(|_| garp.master_refresh_repeat > 0),
            lower_prio_garp: None,
            answered: None,
        };
        self.master_addr = Some(self.params.primary_addr);
        self.transition(Phase::Master(timers), reason, actions);
    }

    fn enter_fault(&mut self, actions: &mut Vec<Action>) {
        self.transition(Phase::Fault, Reason::Fault, actions);
    }

    fn transition(&mut self, to: Phase, reason: Reason, actions: &mut Vec<Action>) {
        let from = self.state();
        self.phase = to;
        actions.push(Action::Transition {
            from,
            to: self.state(),
            reason,
            priority: self.effective_priority,
        });
    }

    fn owner_wants_master(&self) -> bool {
        self.params.is_address_owner() && self.params.initial_state_master
    }

    fn down_deadline(&self, backup: BackupTimers) -> Mono {
        let version = self.params.version;
        let span = match backup.kind {
            DownTimer::MasterDown => self.master_down_interval(),
            DownTimer::Skew => self.skew_time(),
            DownTimer::InitialMaster => {
                self.master_adver_interval
                    + timers::min_skew_time(version, self.master_adver_interval)
            }
            DownTimer::Owner => Duration::ZERO,
        };
        // keepalived runs down timers from the end of vrrp_startup_delay at the earliest.
        let basis = match self.startup_until {
            Some(until) if until > backup.basis => until,
            _ => backup.basis,
        };
        basis + span
    }

    fn adopt_interval(&mut self, advertised: Duration, actions: &mut Vec<Action>) {
        // v2 intervals were checked equal to ours; only v3 adopts (RFC 5798 §6.4.2).
        if self.params.version == Version::V3 && advertised != self.master_adver_interval {
            actions.push(Action::MasterIntervalAdopted {
                from: self.master_adver_interval,
                to: advertised,
            });
            self.master_adver_interval = advertised;
        }
    }

    fn garp_burst(&self, count: u32, cause: GarpCause) -> Action {
        Action::SendGarpBurst(GarpBurst {
            count,
            spacing: self.params.garp.spacing,
            cause,
        })
    }
}

/// The next tick of a periodic timer that was due at `due`: one period on,
/// or one period from `now` if the daemon woke so late that it would already
/// be past (no catch-up bursts).
fn next_period(due: Mono, period: Duration, now: Mono) -> Mono {
    let next = due + period;
    if next > now {
        next
    } else {
        now + period
    }
}

/// Addresses compared "as numbers" for the equal-priority tie-break.
fn addr_number(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}
