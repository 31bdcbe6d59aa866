//! A virtual segment for controllers: N nodes, each a [`Controller`] built
//! from a keepalived.conf, on one virtual clock. What a node sends reaches
//! the others after a delay, unless lost or partitioned away; what reaches a
//! node is recorded as the XDP program records it (latest advert per
//! source, kernel arrival time, the previous priority) and wakes the node
//! on the same significant changes the kernel wakes the daemon for.
//!
//! Used by the simulation suite (`vrrp-user/tests/simulation.rs`) to run
//! keepalived's scenarios in milliseconds without root: the controller and
//! the engines are the daemon's own, only the wire and the clock are
//! simulated.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, HashSet},
    net::IpAddr,
    path::Path,
    time::Duration,
};

use vrrp_common::{PeerKey, PeerRecord};

use super::{
    control::{Command, Controller, Event, InstanceId, NotifyOwner},
    plan::{self, InstancePlan, LinkFacts},
    reload,
};
use crate::{
    config,
    engine::{Reason, State},
    notify::NotifyState,
    time::Mono,
    track::{Status, TrackerId},
};

/// Index of a node in [`Sim::nodes`].
pub type NodeId = usize;

/// A state change seen at a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub at: Mono,
    pub instance: InstanceId,
    pub from: State,
    pub to: State,
    pub reason: Reason,
}

/// An advert on the virtual wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wire {
    from: NodeId,
    segment: usize,
    vrid: u8,
    family: u8,
    version: u8,
    src: IpAddr,
    priority: u8,
    interval_cs: u16,
}

#[derive(Debug, Clone, PartialEq)]
enum Pending {
    Deliver { to: NodeId, advert: Wire },
    Inject { node: NodeId, event: Event },
    Kill(NodeId),
}

/// One instance's wire and VIPs at a node.
struct SimIo {
    plan: InstancePlan,
    segment: usize,
    holds_vips: bool,
    wake_on_any: bool,
}

pub struct Node {
    pub name: String,
    pub controller: Controller,
    /// The configuration running now (reloads replace it).
    pub config: config::Config,
    /// The plans of the running instances, in the file's order.
    pub plans: Vec<InstancePlan>,
    /// The slot of each, in the same order.
    pub slots: Vec<InstanceId>,
    /// The node's own address (every interface's).
    pub addr: IpAddr,
    /// Running: not stopped or killed.
    pub up: bool,
    /// Every state change, in order.
    pub changes: Vec<Change>,
    /// Adverts sent: (time, slot, priority).
    pub sent: Vec<(Mono, InstanceId, u8)>,
    /// Notifies requested, in order.
    pub notifies: Vec<(Mono, NotifyOwner, NotifyState, u8)>,
    /// Interfaces bound again: (time, slot, new ifindex).
    pub rebinds: Vec<(Mono, InstanceId, u32)>,
    /// How late the daemon acts on its timer (a starved or paused daemon);
    /// the kernel still stamps arrivals on time.
    pub timer_latency: Duration,
    records: HashMap<PeerKey, PeerRecord>,
    /// By slot; a retired instance keeps its entry (and its VIPs, if it
    /// never released them).
    io: HashMap<InstanceId, SimIo>,
    next_slot: InstanceId,
}

impl Node {
    /// The slot of the running instance named `name`.
    pub fn instance(&self, name: &str) -> InstanceId {
        self.plans
            .iter()
            .position(|p| p.name == name)
            .map(|k| self.slots[k])
            .unwrap_or_else(|| panic!("{}: no instance {name}", self.name))
    }

    pub fn state(&self, slot: InstanceId) -> State {
        self.controller
            .engine(slot)
            .map_or(State::Stopped, |e| e.state())
    }

    /// Whether the instance in `slot` has its VIPs on the node now.
    pub fn holds_vips(&self, slot: InstanceId) -> bool {
        self.io.get(&slot).is_some_and(|io| io.holds_vips)
    }

    /// (time, to-state) of each change of `instance`.
    pub fn timeline(&self, instance: InstanceId) -> Vec<(Mono, State)> {
        self.changes
            .iter()
            .filter(|c| c.instance == instance)
            .map(|c| (c.at, c.to))
            .collect()
    }
}

/// Deterministic xorshift64*: loss decisions must replay exactly from a seed.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub struct Sim {
    pub now: Mono,
    pub nodes: Vec<Node>,
    /// One-way delay of the wire.
    pub delay: Duration,
    /// Probability that an advert is lost on its way to one receiver.
    pub loss: f64,
    queue: BinaryHeap<Reverse<(Mono, u64, usize)>>,
    pending: HashMap<usize, Pending>,
    next_id: usize,
    seq: u64,
    rng: Rng,
    /// Pairs of nodes that cannot hear each other.
    cut: HashSet<(NodeId, NodeId)>,
    segments: Vec<String>,
}

/// Where the virtual clock starts (not zero, as CLOCK_MONOTONIC never is).
pub const EPOCH: Mono = Mono(1_000_000_000);

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Sim {
    pub fn new() -> Self {
        Sim {
            now: EPOCH,
            nodes: Vec::new(),
            delay: Duration::from_micros(100),
            loss: 0.0,
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            next_id: 0,
            seq: 0,
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            cut: HashSet::new(),
            segments: Vec::new(),
        }
    }

    /// Reseeds the loss decisions.
    pub fn seed(&mut self, seed: u64) {
        self.rng = Rng(seed | 1);
    }

    /// Time since the start of the simulation.
    pub fn at(&self, since_start: Duration) -> Mono {
        EPOCH + since_start
    }

    pub fn elapsed(&self) -> Duration {
        self.now.saturating_since(EPOCH)
    }

    fn segment(&mut self, interface: &str) -> usize {
        match self.segments.iter().position(|s| s == interface) {
            Some(i) => i,
            None => {
                self.segments.push(interface.to_owned());
                self.segments.len() - 1
            }
        }
    }

    /// Adds a node running `keepalived_conf` with source address `addr` on
    /// every interface. Interfaces of the same name share a segment. The
    /// node is not started yet: see [`Sim::start`].
    pub fn add_node(&mut self, name: &str, keepalived_conf: &str, addr: &str) -> NodeId {
        let loaded = config::load_str(
            keepalived_conf,
            Path::new("/etc/keepalived/keepalived.conf"),
        )
        .expect("sim configs have no includes");
        let errors: Vec<String> = loaded.errors().map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}: config errors: {errors:?}");
        let config = loaded.config;
        let addr: IpAddr = addr.parse().expect("node address");
        let plans = self.plans(&config, addr);
        let groups = plan::groups(&config);
        let controller = Controller::new(&plans, &groups).expect("valid params");
        let n = plans.len();
        let mut io = HashMap::new();
        for (slot, plan) in plans.iter().enumerate() {
            io.insert(slot, self.new_io(plan));
        }
        self.nodes.push(Node {
            name: name.to_owned(),
            controller,
            config,
            plans,
            slots: (0..n).collect(),
            addr,
            up: false,
            changes: Vec::new(),
            sent: Vec::new(),
            notifies: Vec::new(),
            rebinds: Vec::new(),
            timer_latency: Duration::ZERO,
            records: HashMap::new(),
            io,
            next_slot: n,
        });
        self.nodes.len() - 1
    }

    fn plans(&mut self, config: &config::Config, addr: IpAddr) -> Vec<InstancePlan> {
        (0..config.instances.len())
            .map(|i| {
                let inst = &config.instances[i];
                let segment = self.segment(&inst.interface);
                let facts = LinkFacts {
                    // Interface indexes only need to be stable per node.
                    ifindex: segment as u32 + 2,
                    source: inst.unicast_src_ip.unwrap_or(addr),
                };
                plan::plan(config, i, &facts).expect("sim config plans")
            })
            .collect()
    }

    fn new_io(&mut self, plan: &InstancePlan) -> SimIo {
        SimIo {
            plan: plan.clone(),
            segment: self.segment(&plan.interface),
            holds_vips: false,
            wake_on_any: false,
        }
    }

    /// Before `start`: `interface` does not exist on `node` yet (with
    /// `dynamic_interfaces`, its instances wait in FAULT): they are planned
    /// without an interface, as the executor plans them.
    pub fn without_interface(&mut self, node: NodeId, interface: &str) {
        let n = &mut self.nodes[node];
        for plan in n.plans.iter_mut().filter(|p| p.interface == interface) {
            plan.key.ifindex = 0;
        }
        for io in
            n.io.values_mut()
                .filter(|io| io.plan.interface == interface)
        {
            io.plan.key.ifindex = 0;
        }
        let groups = plan::groups(&n.config);
        n.controller = Controller::new(&n.plans, &groups).expect("valid params");
    }

    /// The interface index the instance in `slot` is bound to (0: none).
    pub fn ifindex(&self, node: NodeId, slot: InstanceId) -> u32 {
        self.nodes[node].io[&slot].plan.key.ifindex
    }

    /// SIGHUP with `keepalived_conf` as the new file, as the daemon does it:
    /// removed and replaced instances stop, kept ones carry on with their
    /// state, new ones start.
    pub fn reload(&mut self, node: NodeId, keepalived_conf: &str) -> reload::ReloadDiff {
        let loaded = config::load_str(
            keepalived_conf,
            Path::new("/etc/keepalived/keepalived.conf"),
        )
        .expect("sim configs have no includes");
        let errors: Vec<String> = loaded.errors().map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "reload: config errors: {errors:?}");
        let new = loaded.config;
        let n = &self.nodes[node];
        let diff = reload::diff(&n.config, &new);
        let running = n
            .plans
            .iter()
            .zip(&n.slots)
            .map(|(p, s)| (p.name.clone(), *s))
            .collect();
        let slots = reload::assign(&diff, &running, n.next_slot);
        let now = self.now;
        let retire = self.nodes[node].controller.retire(&slots.retired, now);
        for c in retire {
            self.command(node, c);
        }
        let addr = self.nodes[node].addr;
        let plans = self.plans(&new, addr);
        for (plan, &(slot, kept)) in plans.iter().zip(&slots.assigned) {
            let io = self.new_io(plan);
            let entry = self.nodes[node].io.entry(slot).or_insert(io);
            if kept {
                entry.plan = plan.clone();
            }
        }
        let groups = plan::groups(&new);
        let up = vec![true; plans.len()];
        let n = &mut self.nodes[node];
        let commands = n
            .controller
            .reconfigure(&plans, &groups, &slots.assigned, &up, now)
            .expect("valid params");
        n.slots = slots.assigned.iter().map(|a| a.0).collect();
        n.plans = plans;
        n.config = new;
        n.next_slot = slots.next;
        for c in commands {
            self.command(node, c);
        }
        diff
    }

    /// Starts `node` now, its links up and its trackers in `statuses`
    /// (trackers not listed start up, tracked files at 0).
    pub fn start(&mut self, node: NodeId, mut statuses: Vec<(TrackerId, Status)>) {
        let n = self.nodes[node].plans.len();
        self.nodes[node].up = true;
        let unlisted: Vec<TrackerId> = self.nodes[node]
            .controller
            .used_trackers()
            .filter(|id| !statuses.iter().any(|(s, _)| s == *id))
            .cloned()
            .collect();
        for id in unlisted {
            let status = match id {
                TrackerId::File(_) => Status::Value(0),
                _ => Status::Up(true),
            };
            statuses.push((id, status));
        }
        let event = Event::Start {
            primary_up: vec![true; n],
            statuses,
            resume_master: vec![false; n],
        };
        self.deliver(node, event);
    }

    /// SIGTERM: priority 0 from masters, VIPs released, then the node is gone.
    pub fn stop(&mut self, node: NodeId) {
        self.deliver(node, Event::Shutdown);
        self.nodes[node].up = false;
    }

    /// kill -9: the node falls silent at once and keeps whatever VIPs it held.
    pub fn kill(&mut self, node: NodeId) {
        self.nodes[node].up = false;
    }

    /// Schedules `event` for `node` at `at`.
    pub fn inject(&mut self, at: Mono, node: NodeId, event: Event) {
        self.schedule(at, Pending::Inject { node, event });
    }

    /// Schedules a forged advert (any source, any priority) arriving at
    /// `node`'s instance `vrid` on the segment of `interface` at `at`.
    pub fn forge(
        &mut self,
        at: Mono,
        node: NodeId,
        interface: &str,
        vrid: u8,
        src: &str,
        priority: u8,
    ) {
        let segment = self.segment(interface);
        let src: IpAddr = src.parse().expect("forged source");
        let n = &self.nodes[node];
        let Some(io) =
            n.io.values()
                .find(|io| io.segment == segment && io.plan.key.vrid == vrid)
        else {
            return;
        };
        let advert = Wire {
            from: usize::MAX,
            segment,
            vrid,
            family: io.plan.key.family,
            version: io.plan.xdp.version.number(),
            src,
            priority,
            interval_cs: io.plan.advert.template.interval_cs,
        };
        self.schedule(at, Pending::Deliver { to: node, advert });
    }

    /// Schedules a kill -9 of `node` at `at`.
    pub fn kill_at(&mut self, at: Mono, node: NodeId) {
        self.schedule(at, Pending::Kill(node));
    }

    /// Cuts the segment between the two sets of nodes.
    pub fn partition(&mut self, side_a: &[NodeId], side_b: &[NodeId]) {
        for &a in side_a {
            for &b in side_b {
                self.cut.insert((a, b));
                self.cut.insert((b, a));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    fn schedule(&mut self, at: Mono, p: Pending) {
        let id = self.next_id;
        self.next_id += 1;
        self.seq += 1;
        self.pending.insert(id, p);
        self.queue.push(Reverse((at, self.seq, id)));
    }

    /// When `node` next acts on its own timer.
    fn node_deadline(&self, node: NodeId) -> Option<Mono> {
        let n = &self.nodes[node];
        if !n.up {
            return None;
        }
        n.controller.next_deadline().map(|d| d + n.timer_latency)
    }

    /// Runs the simulation until `until` (inclusive).
    pub fn run_until(&mut self, until: Mono) {
        // Each step handles one event; a runaway would be a bug, not a scenario.
        for _ in 0..10_000_000 {
            let timer = (0..self.nodes.len())
                .filter_map(|n| self.node_deadline(n).map(|d| (d, n)))
                .min();
            let queued = self.queue.peek().map(|Reverse((at, _, _))| *at);
            let next = match (timer, queued) {
                (Some((t, _)), Some(q)) => t.min(q),
                (Some((t, _)), None) => t,
                (None, Some(q)) => q,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            match (timer, queued) {
                // Deliveries first at the same instant, as the kernel records
                // an arrival before a timer that fires at the same moment.
                (_, Some(q)) if q <= next => {
                    let Some(Reverse((_, _, id))) = self.queue.pop() else {
                        unreachable!("peeked")
                    };
                    let pending = self.pending.remove(&id).expect("scheduled");
                    self.process(pending);
                }
                (Some((_, node)), _) => {
                    let (records, read) = self.records(node);
                    self.deliver(
                        node,
                        Event::Kernel {
                            records,
                            read,
                            timer: true,
                        },
                    );
                }
                (None, None) | (None, Some(_)) => unreachable!("next exists"),
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Every record the node's kernel holds, and every instance (all read).
    fn records(&self, node: NodeId) -> (Vec<(PeerKey, PeerRecord)>, Vec<vrrp_common::InstanceKey>) {
        let n = &self.nodes[node];
        let records = n.records.iter().map(|(k, r)| (*k, *r)).collect();
        // The keys the instances run under now (a rebind changes them).
        let read = n
            .slots
            .iter()
            .filter_map(|slot| n.io.get(slot).map(|io| io.plan.key))
            .collect();
        (records, read)
    }

    fn process(&mut self, pending: Pending) {
        match pending {
            Pending::Deliver { to, advert } => self.receive(to, advert),
            Pending::Inject { node, event } => {
                if self.nodes[node].up {
                    self.deliver(node, event)
                }
            }
            Pending::Kill(node) => self.kill(node),
        }
    }

    /// What the XDP program does with an advert arriving at `node`.
    fn receive(&mut self, node: NodeId, w: Wire) {
        let now = self.now;
        let n = &mut self.nodes[node];
        if !n.up {
            return;
        }
        let Some(&slot) = n.slots.iter().find(|s| {
            let io = &n.io[*s];
            io.segment == w.segment && io.plan.key.vrid == w.vrid && io.plan.key.family == w.family
        }) else {
            return;
        };
        let plan = &n.io[&slot].plan;
        let v2_mismatch =
            w.version == 2 && plan.xdp.advert_int.as_millis() != u128::from(w.interval_cs) * 10;
        if plan.xdp.version.number() != w.version || v2_mismatch {
            return;
        }
        let Some(key) = PeerKey::for_source(plan.key, w.src) else {
            return;
        };
        let wake_on_any = n.io[&slot].wake_on_any;
        let wake = match n.records.get_mut(&key) {
            None => {
                n.records.insert(
                    key,
                    PeerRecord {
                        last_ns: now.0,
                        first_ns: now.0,
                        adverts: 1,
                        interval_cs: w.interval_cs,
                        priority: w.priority,
                        version: w.version,
                        ..PeerRecord::default()
                    },
                );
                true
            }
            Some(r) => {
                let previous = r.priority;
                let changed = previous != w.priority;
                if changed {
                    r.prev_last_ns = r.last_ns;
                    r.prev_priority = previous;
                }
                let interval_changed = r.interval_cs != w.interval_cs;
                r.last_ns = now.0;
                r.adverts += 1;
                r.priority = w.priority;
                r.interval_cs = w.interval_cs;
                changed || interval_changed || wake_on_any
            }
        };
        if wake {
            let (records, read) = self.records(node);
            self.deliver(
                node,
                Event::Kernel {
                    records,
                    read,
                    timer: false,
                },
            );
        }
    }

    /// Hands `event` to the node's controller and carries out its commands.
    fn deliver(&mut self, node: NodeId, event: Event) {
        let now = self.now;
        let commands = self.nodes[node].controller.handle(event, now);
        for c in commands {
            self.command(node, c);
        }
    }

    fn command(&mut self, node: NodeId, c: Command) {
        let now = self.now;
        match c {
            Command::SendAdvert { instance, priority } => {
                let n = &mut self.nodes[node];
                n.sent.push((now, instance, priority));
                let io = &n.io[&instance];
                let plan = &io.plan;
                let advert = Wire {
                    from: node,
                    segment: io.segment,
                    vrid: plan.key.vrid,
                    family: plan.key.family,
                    version: plan.xdp.version.number(),
                    src: plan.advert.source,
                    priority,
                    interval_cs: plan.advert.template.interval_cs,
                };
                for to in 0..self.nodes.len() {
                    if to == node || self.cut.contains(&(node, to)) {
                        continue;
                    }
                    if self.loss > 0.0 && self.rng.next_f64() < self.loss {
                        continue;
                    }
                    let at = now + self.delay;
                    self.schedule(at, Pending::Deliver { to, advert });
                }
            }
            Command::AddVips(i) => self.io(node, i).holds_vips = true,
            Command::RemoveVips(i) => self.io(node, i).holds_vips = false,
            Command::WakeOnAny { instance, on } => self.io(node, instance).wake_on_any = on,
            Command::Transition {
                instance,
                from,
                to,
                reason,
                ..
            } => self.nodes[node].changes.push(Change {
                at: now,
                instance,
                from,
                to,
                reason,
            }),
            Command::Notify {
                owner,
                state,
                priority,
            } => self.nodes[node]
                .notifies
                .push((now, owner, state, priority)),
            Command::Rebind {
                instance, ifindex, ..
            } => {
                // The executor binds to the new interface in a moment.
                let n = &mut self.nodes[node];
                n.rebinds.push((now, instance, ifindex));
                let io = n.io.get_mut(&instance).expect("commands name known slots");
                let key =
                    vrrp_common::InstanceKey::new(ifindex, io.plan.key.family, io.plan.key.vrid);
                io.plan.key = key;
                let source = io.plan.advert.source;
                self.inject(
                    now + Duration::from_millis(1),
                    node,
                    Event::Rebound {
                        instance,
                        key,
                        source,
                    },
                );
            }
            Command::GarpBurst { .. } | Command::MasterIs { .. } | Command::Note(_) => {}
        }
    }

    fn io(&mut self, node: NodeId, slot: InstanceId) -> &mut SimIo {
        self.nodes[node]
            .io
            .get_mut(&slot)
            .expect("commands name known slots")
    }

    /// Nodes whose instance `name` is master now.
    pub fn masters(&self, name: &str) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&n| {
                let node = &self.nodes[n];
                node.plans.iter().any(|p| p.name == name)
                    && node.up
                    && node.state(node.instance(name)) == State::Master
            })
            .collect()
    }

    /// Nodes holding the VIPs of instance `name` now (a killed node keeps them).
    pub fn vip_holders(&self, name: &str) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&n| {
                let node = &self.nodes[n];
                node.io
                    .values()
                    .any(|io| io.plan.name == name && io.holds_vips)
            })
            .collect()
    }
}
