//! The controller: every decision the daemon makes, as a pure function of
//! its state, one [`Event`] and the time.
//!
//! It owns the engines and everything keepalived layers above them: the
//! fold of tracker statuses and link states into effective priority and
//! FAULT, the sync-group cascade, and the rule that kernel records are fed
//! before a timer for the same moment. It returns [`Command`]s in the order
//! they must be carried out; the executor does the I/O. No clocks, no
//! sockets, no tokio: `now` is taken once per event by the caller, which is
//! what lets a simulation run many controllers on one virtual clock.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use vrrp_common::{InstanceKey, PeerKey, PeerRecord};

use super::{
    plan::{GroupPlan, InstancePlan},
    sync::{self, Member},
};
use crate::{
    engine::{self, Action, AdvertSeen, GarpBurst, Input, Reason, State},
    notify::NotifyState,
    time::Mono,
    track::{priority, priority::Weighted, Status, TrackerId},
};

/// An instance's slot: its index in the plans the daemon started with, and
/// for instances a reload adds, a number never used before. Commands name
/// instances by slot, so a reload that reorders or removes instances never
/// makes a command in flight land on the wrong one.
pub type InstanceId = usize;
/// Index of a sync group in the current group plans (internal).
pub type GroupId = usize;

/// Cascades of sync-group moves are short (each member moves at most once
/// per cause); this bounds them anyway.
const MAX_SYNC_STEPS: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Start every instance. `primary_up[i]`: instance i's interface is
    /// oper-up; `statuses`: every tracker's state as first seen;
    /// `resume_master[i]`: instance i was master before an in-place restart.
    Start {
        primary_up: Vec<bool>,
        statuses: Vec<(TrackerId, Status)>,
        resume_master: Vec<bool>,
    },
    /// Peer records just read from the kernel, all the live peers of each
    /// instance in `read`; `timer`: the deadline timer fired (records are
    /// fed first, so a late timer sees fresh adverts).
    Kernel {
        records: Vec<(PeerKey, PeerRecord)>,
        read: Vec<InstanceKey>,
        timer: bool,
    },
    /// A tracker's status changed.
    Tracker { tracker: TrackerId, status: Status },
    /// A link changed state, appeared or went away.
    Link {
        ifindex: u32,
        name: String,
        up: bool,
        removed: bool,
    },
    /// A VIP, route or rule the instance tracks was deleted from the kernel
    /// while it held them (`what` says which, for the log).
    Deleted { instance: InstanceId, what: String },
    /// The instance's interface, re-created (or created late), is now used:
    /// the kernel records adverts under `key`, sent from `source`.
    Rebound {
        instance: InstanceId,
        key: InstanceKey,
        source: std::net::IpAddr,
    },
    /// Stop: masters send priority 0 and release their VIPs.
    Shutdown,
}

/// Whose notify scripts run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NotifyOwner {
    Instance(InstanceId),
    /// By name: groups are renumbered by a reload.
    Group(String),
}

/// What the executor must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    SendAdvert {
        instance: InstanceId,
        priority: u8,
    },
    AddVips(InstanceId),
    RemoveVips(InstanceId),
    GarpBurst {
        instance: InstanceId,
        burst: GarpBurst,
    },
    /// As master every advert heard matters: the kernel should wake us for each.
    WakeOnAny {
        instance: InstanceId,
        on: bool,
    },
    /// The master as a backup knows it (`None`: none, or we are it): the
    /// kernel keeps its record whatever floods the instance.
    MasterIs {
        instance: InstanceId,
        master: Option<std::net::IpAddr>,
    },
    /// A state change (logged, counted, shown in the status).
    Transition {
        instance: InstanceId,
        from: State,
        to: State,
        reason: Reason,
        priority: u8,
    },
    /// The instance's interface exists again as `ifindex`: open its sockets
    /// and register it with the recorder there, then report `Event::Rebound`.
    Rebind {
        instance: InstanceId,
        interface: String,
        ifindex: u32,
    },
    /// Run the owner's notify scripts (STOP ones are waited for).
    Notify {
        owner: NotifyOwner,
        state: NotifyState,
        priority: u8,
    },
    /// Something worth a log line that changes nothing by itself.
    Note(Note),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Trackers (or the link) now demand FAULT of this instance.
    FaultedBy {
        instance: InstanceId,
        by: Vec<TrackerId>,
    },
    PriorityChanged {
        instance: InstanceId,
        from: u8,
        to: u8,
    },
    TrackerChanged {
        tracker: TrackerId,
        status: Status,
    },
    LinkChanged {
        name: String,
        up: bool,
        removed: bool,
    },
    /// A sync-group member is moved along with another.
    Syncing {
        group: String,
        instance: InstanceId,
        with: InstanceId,
        master: bool,
    },
    /// Every member wants master: the group goes master together.
    GroupReady {
        group: String,
    },
    GroupState {
        group: String,
        state: NotifyState,
    },
    AdvertIgnored {
        instance: InstanceId,
        src: std::net::IpAddr,
        priority: u8,
        reason: engine::IgnoreReason,
    },
    IntervalAdopted {
        instance: InstanceId,
        from: std::time::Duration,
        to: std::time::Duration,
    },
    /// A sync cascade did not settle within [`MAX_SYNC_STEPS`].
    CascadeStopped,
    /// Something the instance tracks was deleted while it was master.
    Deleted {
        instance: InstanceId,
        what: String,
    },
    /// The instance's interface is gone (deleted or renamed); it waits in
    /// FAULT for an interface of its name.
    InterfaceLost {
        instance: InstanceId,
        name: String,
    },
    /// The instance runs on its interface again (re-created, or created
    /// after the start with `dynamic_interfaces`).
    InterfaceFound {
        instance: InstanceId,
        name: String,
        ifindex: u32,
    },
    /// The network stack received adverts of this instance that the
    /// recorder did not record: a program in front of it hides them (see
    /// `canary`). Their copies are used instead while this lasts.
    RecorderBlind {
        key: InstanceKey,
        source: std::net::IpAddr,
    },
    /// The episode [`Note::RecorderBlind`] began is over: the recorder
    /// records what the stack receives (`stack_receives`), or the stack
    /// receives nothing either.
    RecorderSeesAgain {
        key: InstanceKey,
        missed: u64,
        stack_receives: bool,
    },
}

/// What happened to one instance so far (for the status, metrics and
/// keepalived's stats dump).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceStats {
    pub transitions: u64,
    pub become_master: u64,
    /// Left MASTER (for BACKUP, FAULT or STOP).
    pub release_master: u64,
    pub adverts_sent: u64,
    pub priority_zero_sent: u64,
    /// Adverts the engine was given (kernel records; routine adverts are
    /// counted by the kernel, not here).
    pub adverts_fed: u64,
    /// Priority-0 adverts among them (the kernel always wakes us for one).
    pub priority_zero_received: u64,
    pub last_transition: Option<TransitionRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionRecord {
    pub from: State,
    pub to: State,
    pub reason: Reason,
    pub at: Mono,
}

/// One instance as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    pub slot: InstanceId,
    pub state: State,
    pub base_priority: u8,
    pub effective_priority: u8,
    /// The master as the engine knows it (our own address while master).
    pub master_addr: Option<std::net::IpAddr>,
    /// Each tracker with its weight as this instance counts it, and its status.
    pub trackers: Vec<(Weighted, Option<Status>)>,
    pub faulted_by: Vec<TrackerId>,
    /// The instance's own interface is down (and counts).
    pub link_down: bool,
    pub group: Option<GroupId>,
    pub stats: InstanceStats,
}

/// One instance as the controller runs it.
#[derive(Debug, Clone)]
struct Controlled {
    slot: InstanceId,
    key: InstanceKey,
    engine: engine::Instance,
    base_priority: u8,
    tracked: Vec<Weighted>,
    group: Option<GroupId>,
    dont_track_primary: bool,
    /// The instance's interface by name (links are matched by name, so a
    /// re-created one is found again).
    interface: String,
    /// Its interface exists and the instance is bound to it (`key.ifindex`).
    present: bool,
    /// An interface of the instance's name appeared as this ifindex and is
    /// being bound, with its latest oper state.
    pending: Option<(u32, bool)>,
    /// The instance's own interface is oper-up.
    link_up: bool,
    /// Trackers demanding FAULT now, for the log when that changes.
    faulted_by: Vec<TrackerId>,
    /// Priority from base + weights, as last computed.
    tracked_priority: u8,
    /// Fault level last given to the engine (`None`: not yet).
    fed_fault: Option<bool>,
    /// Latest kernel arrival already fed to the engine, per peer.
    fed: HashMap<PeerKey, u64>,
    stats: InstanceStats,
    /// The master last named to the kernel.
    told_master: Option<std::net::IpAddr>,
}

impl Controlled {
    /// A missing interface faults the instance even with `dont_track_primary`
    /// (keepalived downs every instance of a lost interface).
    fn primary_down(&self) -> bool {
        !self.present || (!self.link_up && !self.dont_track_primary)
    }

    fn new(slot: InstanceId, p: &InstancePlan) -> Result<Self, engine::ParamsError> {
        Ok(Controlled {
            slot,
            key: p.key,
            engine: engine::Instance::new(p.engine.clone())?,
            base_priority: p.engine.priority,
            tracked: p.tracked.clone(),
            group: p.group,
            dont_track_primary: p.dont_track_primary,
            interface: p.interface.clone(),
            present: p.key.ifindex != 0,
            pending: None,
            link_up: true,
            faulted_by: Vec::new(),
            tracked_priority: p.engine.priority,
            fed_fault: None,
            fed: HashMap::new(),
            stats: InstanceStats::default(),
            told_master: None,
        })
    }
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    /// Indexes into `Controller::instances`.
    members: Vec<usize>,
    /// Last state notified.
    state: Option<NotifyState>,
}

/// Every instance's engine plus the keepalived logic above them.
#[derive(Debug, Clone)]
pub struct Controller {
    instances: Vec<Controlled>,
    groups: Vec<Group>,
    statuses: HashMap<TrackerId, Status>,
    /// A master's periodic timers (adverts, GARP refreshes) due within this
    /// of a timer event run with it: sending up to this much early is
    /// harmless, and batching saves wake-ups when many instances run.
    /// Backup timers always wait for their exact deadline.
    master_window: Duration,
}

impl Controller {
    /// `plans[i].engine` must be valid (`plan` validates it).
    pub fn new(plans: &[InstancePlan], groups: &[GroupPlan]) -> Result<Self, engine::ParamsError> {
        let instances = plans
            .iter()
            .enumerate()
            .map(|(slot, p)| Controlled::new(slot, p))
            .collect::<Result<_, _>>()?;
        let groups = groups
            .iter()
            .map(|g| Group {
                name: g.name.clone(),
                members: g.members.clone(),
                state: None,
            })
            .collect();
        Ok(Controller {
            instances,
            groups,
            statuses: HashMap::new(),
            master_window: Duration::ZERO,
        })
    }

    /// See [`Controller::master_window`](Controller).
    pub fn with_master_window(mut self, window: Duration) -> Self {
        self.master_window = window;
        self
    }

    /// The backups whose down timer falls due by `by`: a timer event needs
    /// fresh kernel records for those only (masters' timers need none).
    pub fn backups_due_by(&self, by: Mono) -> Vec<InstanceKey> {
        self.instances
            .iter()
            .filter(|i| {
                i.engine.state() == State::Backup
                    && i.engine.next_deadline().is_some_and(|d| d <= by)
            })
            .map(|i| i.key)
            .collect()
    }

    /// The backups worth reading at a timer event at `now`: those due, and
    /// those due within half their Master_Down_Interval. Reading early only
    /// moves a down timer later (fresher records), never earlier, and with
    /// many instances it gathers their reads into few wake-ups.
    pub fn backups_to_read(&self, now: Mono) -> Vec<InstanceKey> {
        self.instances
            .iter()
            .filter(|i| {
                i.engine.state() == State::Backup
                    && i.engine
                        .next_deadline()
                        .is_some_and(|d| d <= now + i.engine.master_down_interval() / 2)
            })
            .map(|i| i.key)
            .collect()
    }

    /// The slot of each running instance, in config order.
    pub fn slots(&self) -> Vec<InstanceId> {
        self.instances.iter().map(|i| i.slot).collect()
    }

    /// Stops the instances in `slots` as at shutdown (priority 0 from a
    /// master, VIPs released, STOP notified); a reload then drops them.
    pub fn retire(&mut self, slots: &[InstanceId], now: Mono) -> Vec<Command> {
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            if slots.contains(&self.instances[i].slot) {
                self.drive(i, Input::Shutdown, now, &mut out);
            }
        }
        self.settle_groups(now, &mut out);
        out
    }

    /// Replaces the set of instances after a reload: `plans` in the new
    /// file's order, each with its slot and whether it keeps the running
    /// instance in that slot (state, timers, VIPs) or starts afresh.
    /// `primary_up` gives the interface state of each new one. Retired
    /// instances not in `assigned` are dropped.
    pub fn reconfigure(
        &mut self,
        plans: &[InstancePlan],
        groups: &[GroupPlan],
        assigned: &[(InstanceId, bool)],
        primary_up: &[bool],
        now: Mono,
    ) -> Result<Vec<Command>, engine::ParamsError> {
        let mut running: HashMap<InstanceId, Controlled> =
            self.instances.drain(..).map(|c| (c.slot, c)).collect();
        let mut pending = Vec::new();
        let mut fresh = Vec::new();
        for (k, (plan, &(slot, keep))) in plans.iter().zip(assigned).enumerate() {
            let kept = if keep { running.remove(&slot) } else { None };
            let c = match kept {
                Some(mut c) => {
                    pending.push((k, c.engine.reconfigure(plan.engine.clone())?));
                    c.base_priority = plan.engine.priority;
                    c.tracked = plan.tracked.clone();
                    c.group = plan.group;
                    c.dont_track_primary = plan.dont_track_primary;
                    c
                }
                None => {
                    fresh.push(k);
                    let mut c = Controlled::new(slot, plan)?;
                    c.link_up = primary_up.get(k).copied().unwrap_or(true);
                    c
                }
            };
            self.instances.push(c);
        }
        // A group keeps its last notified state if it is still there.
        let old_groups: HashMap<String, Option<NotifyState>> =
            self.groups.drain(..).map(|g| (g.name, g.state)).collect();
        self.groups = groups
            .iter()
            .map(|g| Group {
                name: g.name.clone(),
                members: g.members.clone(),
                state: old_groups.get(&g.name).copied().flatten(),
            })
            .collect();
        let mut out = Vec::new();
        for (k, actions) in pending {
            self.act(k, actions, now, &mut out);
        }
        // New priorities and tracker weights, then the new instances start
        // (already-failing trackers start them in FAULT, as at start-up).
        self.refresh(now, &mut out);
        for k in fresh {
            self.drive(k, Input::Startup, now, &mut out);
        }
        self.settle_groups(now, &mut out);
        Ok(out)
    }

    /// A tracker that cannot run (refused by the script security check, or
    /// its user is unknown) no longer counts for any instance, as keepalived
    /// disables it.
    pub fn disable_tracker(&mut self, id: &TrackerId) {
        for inst in &mut self.instances {
            inst.tracked.retain(|w| &w.tracker != id);
        }
    }

    /// Every tracker some instance uses.
    pub fn used_trackers(&self) -> impl Iterator<Item = &TrackerId> {
        self.instances
            .iter()
            .flat_map(|i| i.tracked.iter().map(|w| &w.tracker))
    }

    pub fn len(&self) -> usize {
        self.instances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    fn by_slot(&self, slot: InstanceId) -> Option<&Controlled> {
        self.instances.iter().find(|c| c.slot == slot)
    }

    /// The engine of the instance in `slot`.
    pub fn engine(&self, slot: InstanceId) -> Option<&engine::Instance> {
        self.by_slot(slot).map(|c| &c.engine)
    }

    /// Trackers demanding FAULT of the instance in `slot` now.
    pub fn faulted_by(&self, slot: InstanceId) -> &[TrackerId] {
        self.by_slot(slot).map_or(&[], |c| &c.faulted_by)
    }

    pub fn status(&self, id: &TrackerId) -> Option<Status> {
        self.statuses.get(id).copied()
    }

    /// Every instance as the status shows it.
    pub fn snapshot(&self) -> Vec<InstanceView> {
        self.instances
            .iter()
            .map(|i| InstanceView {
                slot: i.slot,
                state: i.engine.state(),
                base_priority: i.base_priority,
                effective_priority: i.engine.effective_priority(),
                master_addr: i.engine.master_addr(),
                trackers: i
                    .tracked
                    .iter()
                    .map(|w| (w.clone(), self.statuses.get(&w.tracker).copied()))
                    .collect(),
                faulted_by: i.faulted_by.clone(),
                link_down: i.primary_down(),
                group: i.group,
                stats: i.stats,
            })
            .collect()
    }

    /// Each sync group's settled state (`None` while its members move).
    pub fn group_states(&self) -> Vec<Option<NotifyState>> {
        self.groups.iter().map(|g| g.state).collect()
    }

    /// When the next `Kernel { timer: true }` event is due.
    pub fn next_deadline(&self) -> Option<Mono> {
        self.instances
            .iter()
            .filter_map(|i| i.engine.next_deadline())
            .min()
    }

    pub fn handle(&mut self, event: Event, now: Mono) -> Vec<Command> {
        let mut out = Vec::new();
        match event {
            Event::Start {
                primary_up,
                statuses,
                resume_master,
            } => {
                for (inst, up) in self.instances.iter_mut().zip(primary_up) {
                    inst.link_up = up;
                }
                self.statuses.extend(statuses);
                // Interfaces already down and trackers already failing start
                // the instance in FAULT; weights set the starting priority.
                self.refresh(now, &mut out);
                for i in 0..self.instances.len() {
                    let input = match resume_master.get(i) {
                        Some(true) => Input::ResumeMaster,
                        _ => Input::Startup,
                    };
                    self.drive(i, input, now, &mut out);
                }
                self.settle_groups(now, &mut out);
            }
            Event::Kernel {
                records,
                read,
                timer,
            } => self.tick(&records, &read, timer, now, &mut out),
            Event::Tracker { tracker, status } => {
                out.push(Command::Note(Note::TrackerChanged {
                    tracker: tracker.clone(),
                    status,
                }));
                self.statuses.insert(tracker, status);
                self.refresh(now, &mut out);
            }
            Event::Link {
                ifindex,
                name,
                up,
                removed,
            } => self.link(ifindex, name, up, removed, now, &mut out),
            Event::Deleted { instance, what } => {
                let Some(i) = self.instances.iter().position(|c| c.slot == instance) else {
                    return out;
                };
                // Only a master holds them; one that has moved on since ignores it.
                if self.instances[i].engine.state() != State::Master {
                    return out;
                }
                out.push(Command::Note(Note::Deleted { instance, what }));
                self.drive(i, Input::Release, now, &mut out);
                self.settle_groups(now, &mut out);
            }
            Event::Rebound {
                instance,
                key,
                source,
            } => {
                let Some(inst) = self.instances.iter_mut().find(|c| c.slot == instance) else {
                    return out;
                };
                let up = match inst.pending.take() {
                    Some((ifindex, up)) if ifindex == key.ifindex => up,
                    // Bound to an interface we have heard nothing more of.
                    _ => false,
                };
                inst.key = key;
                inst.present = true;
                inst.link_up = up;
                inst.fed.clear();
                inst.engine.set_primary_addr(source);
                out.push(Command::Note(Note::InterfaceFound {
                    instance,
                    name: inst.interface.clone(),
                    ifindex: key.ifindex,
                }));
                self.refresh(now, &mut out);
            }
            Event::Shutdown => {
                for i in 0..self.instances.len() {
                    self.drive(i, Input::Shutdown, now, &mut out);
                }
                self.settle_groups(now, &mut out);
            }
        }
        out
    }

    /// A link event: tracked interfaces by name, each instance's own
    /// interface by name too, so that one deleted and created again (a new
    /// ifindex) is bound again rather than left in FAULT.
    fn link(
        &mut self,
        ifindex: u32,
        name: String,
        up: bool,
        removed: bool,
        now: Mono,
        out: &mut Vec<Command>,
    ) {
        let id = TrackerId::Interface(name.clone());
        let tracked = self.statuses.contains_key(&id);
        let primary = self
            .instances
            .iter()
            .any(|i| (i.present && i.key.ifindex == ifindex) || i.interface == name);
        if !(tracked || primary) {
            // Links nobody watches change nothing.
            return;
        }
        out.push(Command::Note(Note::LinkChanged {
            name: name.clone(),
            up,
            removed,
        }));
        if tracked {
            self.statuses.insert(id, Status::Up(up && !removed));
        }
        for inst in &mut self.instances {
            let bound_here = inst.present && inst.key.ifindex == ifindex;
            if bound_here && (removed || name != inst.interface) {
                // Deleted, or renamed away from the name we run on.
                inst.present = false;
                inst.link_up = false;
                out.push(Command::Note(Note::InterfaceLost {
                    instance: inst.slot,
                    name: inst.interface.clone(),
                }));
            } else if bound_here {
                inst.link_up = up;
            } else if name == inst.interface && !removed {
                // Ours by name at a new index: bind to it (asked again on each
                // event until bound: the executor drops repeats).
                inst.pending = Some((ifindex, up));
                out.push(Command::Rebind {
                    instance: inst.slot,
                    interface: inst.interface.clone(),
                    ifindex,
                });
            } else if name == inst.interface && inst.pending.is_some_and(|(p, _)| p == ifindex) {
                // Gone again before it was bound.
                inst.pending = None;
            }
        }
        self.refresh(now, out);
    }

    /// Re-derives every instance's priority and fault level from the
    /// trackers and links, and feeds the engines what changed.
    fn refresh(&mut self, now: Mono, out: &mut Vec<Command>) {
        let mut own_fault = Vec::with_capacity(self.instances.len());
        for inst in self.instances.iter_mut() {
            let effect = priority::effect(inst.base_priority, &inst.tracked, &self.statuses);
            if effect.faulted_by != inst.faulted_by && effect.fault() {
                out.push(Command::Note(Note::FaultedBy {
                    instance: inst.slot,
                    by: effect.faulted_by.clone(),
                }));
            }
            own_fault.push(inst.primary_down() || effect.fault());
            inst.faulted_by = effect.faulted_by;
            inst.tracked_priority = effect.priority;
        }
        for i in 0..self.instances.len() {
            let priority = self.instances[i].tracked_priority;
            let current = self.instances[i].engine.effective_priority();
            if priority != current {
                out.push(Command::Note(Note::PriorityChanged {
                    instance: self.instances[i].slot,
                    from: current,
                    to: priority,
                }));
                self.drive(i, Input::SetPriority(priority), now, out);
            }
            let fault = match self.instances[i].group {
                Some(g) => sync::group_fault(self.groups[g].members.iter().map(|&m| own_fault[m])),
                None => own_fault[i],
            };
            if self.instances[i].fed_fault != Some(fault) {
                self.instances[i].fed_fault = Some(fault);
                self.drive(i, Input::Fault(fault), now, out);
            }
        }
        self.settle_groups(now, out);
    }

    /// Feeds fresh kernel records to every engine, then (on a timer) lets
    /// each engine act on its deadlines.
    fn tick(
        &mut self,
        records: &[(PeerKey, PeerRecord)],
        read: &[InstanceKey],
        timer: bool,
        now: Mono,
        out: &mut Vec<Command>,
    ) {
        // Each instance looks at its own records only (hundreds of
        // instances, each read at once, must not cost instances × records).
        let mut by_instance: HashMap<InstanceKey, Vec<(PeerKey, PeerRecord)>> = HashMap::new();
        for (k, r) in records {
            by_instance.entry(k.instance()).or_default().push((*k, *r));
        }
        let read: std::collections::HashSet<InstanceKey> = read.iter().copied().collect();
        let none = Vec::new();
        for i in 0..self.instances.len() {
            let inst = &mut self.instances[i];
            let mine = by_instance.get(&inst.key).unwrap_or(&none);
            let records_read = read.contains(&inst.key);
            if records_read {
                // Peers the kernel no longer holds (expired, evicted junk)
                // are forgotten here too, so a flood cannot grow this map.
                inst.fed.retain(|k, _| mine.iter().any(|(r, _)| r == k));
            }
            let mut actions = Vec::new();
            for seen in unseen_adverts(inst.key, mine, &mut inst.fed) {
                inst.stats.adverts_fed += 1;
                inst.stats.priority_zero_received += u64::from(seen.priority == 0);
                actions.extend(inst.engine.handle(Input::Advert(seen), now));
            }
            // A backup acts on its timer only after its records were read
            // for this very moment ("records before timer"): one left out
            // waits for the next event, which reads it.
            if timer && (records_read || inst.engine.state() != State::Backup) {
                let window = match inst.engine.state() {
                    State::Master => self.master_window,
                    _ => Duration::ZERO,
                };
                if let Some(due) = inst.engine.next_deadline().filter(|&d| d <= now + window) {
                    // A batched master timer runs as if exactly on time.
                    actions.extend(inst.engine.handle(Input::Timer, due.max(now)));
                }
            }
            self.act(i, actions, now, out);
        }
        self.settle_groups(now, out);
    }

    fn drive(&mut self, i: InstanceId, input: Input, now: Mono, out: &mut Vec<Command>) {
        let actions = self.instances[i].engine.handle(input, now);
        self.act(i, actions, now, out);
    }

    /// Turns one engine's actions into commands, then carries whatever its
    /// transitions ask of the other members of its sync group.
    fn act(&mut self, i: InstanceId, actions: Vec<Action>, now: Mono, out: &mut Vec<Command>) {
        let mut queue = VecDeque::from([(i, actions)]);
        let mut steps = 0;
        while let Some((i, actions)) = queue.pop_front() {
            steps += 1;
            if steps > MAX_SYNC_STEPS {
                out.push(Command::Note(Note::CascadeStopped));
                break;
            }
            for action in actions {
                let Some((from, to, reason)) = self.command(i, action, now, out) else {
                    continue;
                };
                let Some(g) = self.instances[i].group else {
                    continue;
                };
                let members = self.members(g);
                let pos = self.groups[g]
                    .members
                    .iter()
                    .position(|&m| m == i)
                    .unwrap_or(0);
                for (j, input) in sync::follow(&members, pos, from, to, reason) {
                    let target = self.groups[g].members[j];
                    out.push(Command::Note(Note::Syncing {
                        group: self.groups[g].name.clone(),
                        instance: self.instances[target].slot,
                        with: self.instances[i].slot,
                        master: input == Input::SyncMaster,
                    }));
                    let more = self.instances[target].engine.handle(input, now);
                    queue.push_back((target, more));
                }
            }
            self.tell_master(i, out);
        }
    }

    /// One engine action as commands; returns the transition if it was one.
    fn command(
        &mut self,
        i: InstanceId,
        action: Action,
        now: Mono,
        out: &mut Vec<Command>,
    ) -> Option<(State, State, Reason)> {
        let slot = self.instances[i].slot;
        let stats = &mut self.instances[i].stats;
        match action {
            Action::SendAdvert { priority } => {
                stats.adverts_sent += 1;
                if priority == engine::PRIORITY_STOP {
                    stats.priority_zero_sent += 1;
                }
                out.push(Command::SendAdvert {
                    instance: slot,
                    priority,
                })
            }
            Action::AddVips => out.push(Command::AddVips(slot)),
            Action::RemoveVips => out.push(Command::RemoveVips(slot)),
            Action::SendGarpBurst(burst) => out.push(Command::GarpBurst {
                instance: slot,
                burst,
            }),
            Action::AdvertIgnored {
                src,
                priority,
                reason,
            } => out.push(Command::Note(Note::AdvertIgnored {
                instance: slot,
                src,
                priority,
                reason,
            })),
            Action::MasterIntervalAdopted { from, to } => {
                out.push(Command::Note(Note::IntervalAdopted {
                    instance: slot,
                    from,
                    to,
                }))
            }
            Action::Transition {
                from,
                to,
                reason,
                priority,
            } => {
                stats.transitions += 1;
                stats.become_master += u64::from(to == State::Master);
                stats.release_master += u64::from(from == State::Master);
                stats.last_transition = Some(TransitionRecord {
                    from,
                    to,
                    reason,
                    at: now,
                });
                out.push(Command::Transition {
                    instance: slot,
                    from,
                    to,
                    reason,
                    priority,
                });
                out.push(Command::WakeOnAny {
                    instance: slot,
                    on: to == State::Master,
                });
                // A resumed master never stopped being one.
                if let Some(state) = notify_state(to).filter(|_| reason != Reason::Resumed) {
                    out.push(Command::Notify {
                        owner: NotifyOwner::Instance(slot),
                        state,
                        priority,
                    });
                }
                return Some((from, to, reason));
            }
        }
        None
    }

    /// Names the master to the kernel when it changed.
    fn tell_master(&mut self, i: usize, out: &mut Vec<Command>) {
        let inst = &mut self.instances[i];
        let master = match inst.engine.state() {
            State::Backup => inst.engine.master_addr(),
            _ => None,
        };
        if master != inst.told_master {
            inst.told_master = master;
            out.push(Command::MasterIs {
                instance: inst.slot,
                master,
            });
        }
    }

    fn members(&self, g: GroupId) -> Vec<Member> {
        self.groups[g]
            .members
            .iter()
            .map(|&m| Member {
                state: self.instances[m].engine.state(),
                wants_master: self.instances[m].engine.wants_master(),
            })
            .collect()
    }

    /// Moves groups whose members all want master, and notifies for groups
    /// that settled in a new state.
    fn settle_groups(&mut self, now: Mono, out: &mut Vec<Command>) {
        for g in 0..self.groups.len() {
            let ready = sync::ready_for_master(&self.members(g));
            if !ready.is_empty() {
                out.push(Command::Note(Note::GroupReady {
                    group: self.groups[g].name.clone(),
                }));
            }
            for j in ready {
                let target = self.groups[g].members[j];
                self.drive(target, Input::SyncMaster, now, out);
            }
            let state = sync::group_state(&self.members(g));
            if let Some(state) = state.filter(|s| Some(*s) != self.groups[g].state) {
                self.groups[g].state = Some(state);
                out.push(Command::Note(Note::GroupState {
                    group: self.groups[g].name.clone(),
                    state,
                }));
                // keepalived gives groups priority 0.
                out.push(Command::Notify {
                    owner: NotifyOwner::Group(self.groups[g].name.clone()),
                    state,
                    priority: 0,
                });
            }
        }
    }
}

/// The notify state of an engine state (`Initialize` has none).
pub fn notify_state(state: State) -> Option<NotifyState> {
    match state {
        State::Master => Some(NotifyState::Master),
        State::Backup => Some(NotifyState::Backup),
        State::Fault => Some(NotifyState::Fault),
        State::Stopped => Some(NotifyState::Stop),
        State::Initialize => None,
    }
}

/// The adverts in `records` for `instance` that arrived after what `fed`
/// says was already given to the engine, oldest first; updates `fed`.
///
/// A record holds the latest advert and, since the peer's last priority
/// change, when its previous priority was last heard. Both count: a backup
/// that wakes on a master's drop to a lower priority must learn when the
/// master was last heard at the old one, or its down timer would run from
/// an older advert and it would preempt early.
pub fn unseen_adverts(
    instance: InstanceKey,
    records: &[(PeerKey, PeerRecord)],
    fed: &mut HashMap<PeerKey, u64>,
) -> Vec<AdvertSeen> {
    let mut fresh = Vec::new();
    for (k, r) in records.iter().filter(|(k, _)| k.instance() == instance) {
        let seen_up_to = fed.get(k).copied().unwrap_or(0);
        let interval = std::time::Duration::from_millis(u64::from(r.interval_cs) * 10);
        let advert = |priority, at| AdvertSeen {
            src: k.source(),
            priority,
            interval,
            arrived: Mono(at),
        };
        if r.prev_last_ns > seen_up_to && r.prev_last_ns < r.last_ns {
            fresh.push(advert(r.prev_priority, r.prev_last_ns));
        }
        if r.last_ns > seen_up_to {
            fresh.push(advert(r.priority, r.last_ns));
            fed.insert(*k, r.last_ns);
        }
    }
    fresh.sort_by_key(|a| a.arrived);
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vrrp_common::FAMILY_IPV4;

    #[test]
    fn a_drop_in_priority_still_reports_when_the_old_priority_was_last_heard() {
        let instance = InstanceKey::new(3, FAMILY_IPV4, 51);
        let other = InstanceKey::new(3, FAMILY_IPV4, 52);
        let peer = PeerKey::for_source(instance, "192.0.2.1".parse().unwrap()).unwrap();
        let elsewhere = PeerKey::for_source(other, "192.0.2.1".parse().unwrap()).unwrap();
        let record = |priority, last_ns, prev_priority, prev_last_ns| PeerRecord {
            priority,
            last_ns,
            prev_priority,
            prev_last_ns,
            interval_cs: 100,
            ..Default::default()
        };
        let mut fed = HashMap::new();
        // First sight: priority 200 at t=1 s.
        let got = unseen_adverts(
            instance,
            &[
                (peer, record(200, 1_000, 0, 0)),
                (elsewhere, record(9, 5_000, 0, 0)),
            ],
            &mut fed,
        );
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].priority, got[0].arrived), (200, Mono(1_000)));
        // Adverts at 200 until t=3 went unread; then several at 50.
        let got = unseen_adverts(instance, &[(peer, record(50, 6_000, 200, 3_000))], &mut fed);
        let seen: Vec<(u8, Mono)> = got.iter().map(|a| (a.priority, a.arrived)).collect();
        assert_eq!(seen, vec![(200, Mono(3_000)), (50, Mono(6_000))]);
        assert_eq!(got[0].interval, Duration::from_secs(1));
        // Nothing new: nothing fed again.
        assert!(
            unseen_adverts(instance, &[(peer, record(50, 6_000, 200, 3_000))], &mut fed).is_empty()
        );
        // A newer advert at 50 does not replay the old priority.
        let got = unseen_adverts(instance, &[(peer, record(50, 7_000, 200, 3_000))], &mut fed);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].arrived, Mono(7_000));
    }
}

#[cfg(test)]
mod timer_tests {
    use std::{path::Path, time::Duration};

    use super::*;
    use crate::daemon::plan::{self, LinkFacts};

    fn controller() -> (Controller, InstanceKey) {
        let c = crate::config::load_str(
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n \
             virtual_ipaddress {\n 192.0.2.10\n }\n}\n",
            Path::new("/etc/keepalived/keepalived.conf"),
        )
        .unwrap()
        .config;
        let facts = LinkFacts {
            ifindex: 2,
            source: "192.0.2.2".parse().unwrap(),
        };
        let p = plan::plan(&c, 0, &facts).unwrap();
        let key = p.key;
        (Controller::new(&[p], &[]).unwrap(), key)
    }

    #[test]
    fn a_backup_acts_on_its_timer_only_with_its_records_read() {
        let (mut c, key) = controller();
        let t0 = Mono(1_000_000_000);
        c.handle(
            Event::Start {
                primary_up: vec![true],
                statuses: vec![],
                resume_master: vec![false],
            },
            t0,
        );
        let due = c.next_deadline().unwrap();
        let late = due + Duration::from_millis(1);
        assert_eq!(c.backups_due_by(late), vec![key]);
        // Timer fired, but this instance's records were not read: no move.
        let out = c.handle(
            Event::Kernel {
                records: vec![],
                read: vec![],
                timer: true,
            },
            late,
        );
        assert!(
            !out.iter().any(|c| matches!(c, Command::Transition { .. })),
            "{out:?}"
        );
        assert_eq!(c.engine(0).unwrap().state(), State::Backup);
        // Read, and nothing fresh: the master is gone, we take over.
        let out = c.handle(
            Event::Kernel {
                records: vec![],
                read: vec![key],
                timer: true,
            },
            late,
        );
        assert!(out.iter().any(|c| matches!(
            c,
            Command::Transition {
                to: State::Master,
                ..
            }
        )));
    }
}
