//! The advert thread: timers, decisions and advert sends, on SCHED_FIFO.
//!
//! It owns the controller, the advert sockets and a handle on the kernel's
//! peer records, and sleeps in one epoll on three descriptors: the deadline
//! timerfd, the XDP event ring buffer and an eventfd for input from the
//! normal thread (tracker and link changes, shutdown). Everything it does
//! is a syscall or two: a map read, a send, a map flag. Anything slower
//! (VIPs over netlink, GARP/NA bursts, notify scripts, log lines) goes to
//! the executor thread, in order, over a channel that never blocks. It
//! also reads the blind-recorder canaries (see `canary`): every
//! `canary::PERIOD`, and before a backup acts on its down timer.

use std::{
    collections::HashMap,
    os::fd::AsFd,
    sync::{mpsc, Arc},
    thread,
};

use aya::maps::{MapData, RingBuf};
use nix::sys::{
    epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout},
    eventfd::{EfdFlags, EventFd},
};
use thiserror::Error;
use tokio::sync::{mpsc::UnboundedSender, oneshot};
use vrrp_common::{InstanceKey, PeerEvent};

use super::{
    advert::AdvertIo,
    canary::{self, BlindWatch, CachedRegistry, Canary, Change},
    control::{Command, Controller, Event, InstanceId, InstanceView, Note},
    plan::{GroupPlan, InstancePlan},
    realtime,
    reload::{self, ReloadDiff},
    timer::DeadlineTimer,
};
use crate::{
    bpf::Maps,
    config,
    engine::State,
    network::frames::FrameSender,
    notify::NotifyState,
    time::Mono,
    track::{Status, TrackerId},
};

#[derive(Debug, Error)]
pub enum RtError {
    #[error("advert thread: {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("advert thread: {call}: {source}")]
    Sys {
        call: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("advert thread panicked")]
    Panicked,
}

/// The controller's view, taken on the advert thread.
#[derive(Debug, Clone)]
pub struct RtSnapshot {
    pub instances: Vec<InstanceView>,
    pub groups: Vec<Option<NotifyState>>,
    /// Blind-recorder episodes (see `canary`).
    pub blind: BlindWatch,
}

/// A reload, as the normal thread hands it to the advert thread.
pub struct ReloadRequest {
    pub config: config::Config,
    pub diff: ReloadDiff,
    pub slots: reload::Slots,
    /// Trackers that cannot run; they count for no instance.
    pub disabled: Vec<TrackerId>,
    pub done: oneshot::Sender<ReloadOutcome>,
}

/// The executor's part of a reload, done: what the advert thread swaps in.
pub struct Applied {
    /// The instances that run from now on, in the file's order.
    pub plans: Vec<InstancePlan>,
    pub assigned: Vec<(InstanceId, bool)>,
    pub groups: Vec<GroupPlan>,
    /// Interface state of each (used for the new ones).
    pub primary_up: Vec<bool>,
    /// Advert sockets of the new instances.
    pub adverts: Vec<(InstanceId, AdvertIo)>,
    /// Canaries of interfaces the new instances brought.
    pub canaries: Vec<Canary>,
    /// Instances of the file that could not start (interface missing...).
    pub failed: Vec<String>,
    pub disabled: Vec<TrackerId>,
    pub done: oneshot::Sender<ReloadOutcome>,
}

/// What the normal thread learns when a reload has been applied.
#[derive(Debug, Clone)]
pub struct ReloadOutcome {
    pub plans: Vec<InstancePlan>,
    pub groups: Vec<GroupPlan>,
    pub slots: Vec<InstanceId>,
    pub failed: Vec<String>,
}

/// What the normal thread tells the advert thread.
pub enum RtInput {
    Tracker {
        tracker: TrackerId,
        status: Status,
    },
    Link {
        ifindex: u32,
        name: String,
        up: bool,
        removed: bool,
    },
    /// Report the controller's view (status, metrics, dumps).
    Snapshot(oneshot::Sender<RtSnapshot>),
    /// SIGHUP: retire what goes, then let the executor prepare the rest.
    Reload(Box<ReloadRequest>),
    /// From the executor: the reload's I/O is ready.
    ReloadReady(Box<Applied>),
    /// In-place restart: stop without a word to the peers, and report each
    /// instance's state (by slot).
    Handover(oneshot::Sender<Vec<(InstanceId, State)>>),
    /// From the executor: something the instance holds was deleted.
    Deleted {
        instance: InstanceId,
        what: String,
    },
    /// From the executor: the instance is bound to its re-created interface.
    Rebound {
        instance: InstanceId,
        key: vrrp_common::InstanceKey,
        source: std::net::IpAddr,
        advert: Box<AdvertIo>,
    },
    Shutdown,
}

/// The executor's part of a reload.
pub struct ExecReload {
    pub config: config::Config,
    pub diff: ReloadDiff,
    pub slots: reload::Slots,
    pub disabled: Vec<TrackerId>,
    pub done: oneshot::Sender<ReloadOutcome>,
    /// Where to send [`Applied`].
    pub rt: RtSender,
}

/// What the advert thread hands to the executor thread.
pub enum ToExecutor {
    Command(Command),
    /// An advert-path failure, for the log (the advert thread never logs
    /// itself: a slow log sink must not stall it).
    Error(String),
    /// After the retired instances' last commands.
    Reload(Box<ExecReload>),
    /// In-place restart: the advert thread has stopped without releasing;
    /// leave VIPs and vmacs where they are.
    Leave,
    /// Where the executor reports deletions and re-bound interfaces (sent
    /// once, when the advert thread starts).
    Connect(RtSender),
}

/// The advert thread's belongings.
pub struct RtParts {
    pub controller: Controller,
    /// By slot.
    pub adverts: HashMap<InstanceId, AdvertIo>,
    pub maps: Maps,
    pub ring: RingBuf<MapData>,
    /// One per (interface, family) of the instances.
    pub canaries: Vec<Canary>,
}

/// Queues input for the advert thread and wakes it. Never blocks.
#[derive(Clone)]
pub struct RtSender {
    tx: mpsc::Sender<RtInput>,
    wake: Arc<EventFd>,
}

impl RtSender {
    pub fn send(&self, input: RtInput) {
        // A closed channel means the thread has ended; join() reports why.
        if self.tx.send(input).is_ok() {
            let _ = self.wake.write(1);
        }
    }
}

pub struct RtThread {
    sender: RtSender,
    handle: thread::JoinHandle<Result<(), RtError>>,
}

const TIMER: u64 = 0;
const RING: u64 = 1;
const WAKE: u64 = 2;

impl RtThread {
    /// Starts the thread; its first act is the controller's `start` event.
    pub fn spawn(
        parts: RtParts,
        start: Event,
        out: UnboundedSender<ToExecutor>,
        priority: u8,
    ) -> Result<Self, RtError> {
        let (tx, rx) = mpsc::channel();
        let wake = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC).map_err(
            |source| RtError::Sys {
                call: "eventfd",
                source,
            },
        )?;
        let sender = RtSender {
            tx,
            wake: Arc::new(wake),
        };
        let own = sender.clone();
        let handle = thread::Builder::new()
            .name("xvrrpd-adverts".into())
            .spawn(move || run(parts, start, rx, own, &out, priority))
            .map_err(|source| RtError::Io {
                what: "spawning the thread",
                source,
            })?;
        Ok(RtThread { sender, handle })
    }

    pub fn sender(&self) -> RtSender {
        self.sender.clone()
    }

    /// The controller's view, from the advert thread.
    pub async fn snapshot(&self) -> Option<RtSnapshot> {
        let (tx, rx) = oneshot::channel();
        self.send(RtInput::Snapshot(tx));
        rx.await.ok()
    }

    /// Queues `input` and wakes the thread. Never blocks.
    pub fn send(&self, input: RtInput) {
        self.sender.send(input)
    }

    /// Asks for a clean stop (priority 0 from masters) and waits for it.
    pub fn stop(self) -> Result<(), RtError> {
        self.send(RtInput::Shutdown);
        self.join()
    }

    /// Waits for the thread to end (after `Handover` or `Shutdown`).
    pub fn join(self) -> Result<(), RtError> {
        self.handle.join().map_err(|_| RtError::Panicked)?
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

struct Loop<'a> {
    parts: RtParts,
    out: &'a UnboundedSender<ToExecutor>,
    /// One AF_PACKET socket per interface multicast adverts leave from.
    frame_senders: HashMap<u32, FrameSender>,
    blind: BlindWatch,
    /// When the canaries are read next without a backup asking.
    next_canary: Mono,
}

/// Which canaries a kernel event reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CanaryRead {
    None,
    /// Those of the backups whose down timer is due.
    Due,
    /// All of them, a whole period since the last time.
    Periodic,
}

impl Loop<'_> {
    fn dispatch(&mut self, event: Event) {
        self.dispatch_at(event, Mono::now());
    }

    /// With the `now` the event was built at: the records read for it and
    /// the timers it runs must agree on the moment, or a backup whose
    /// deadline falls between two clock reads would time out on records
    /// that were never read.
    fn dispatch_at(&mut self, event: Event, now: Mono) {
        let commands = self.parts.controller.handle(event, now);
        self.run_commands(commands);
    }

    fn run_commands(&mut self, commands: Vec<Command>) {
        // Multicast adverts are gathered and sent per interface at the end,
        // in one sendmmsg each (see `network::frames`).
        let mut batch: Vec<InstanceId> = Vec::new();
        for c in commands {
            match c {
                Command::SendAdvert { instance, priority } => {
                    let Some(advert) = self.parts.adverts.get_mut(&instance) else {
                        continue;
                    };
                    let framed = advert.frame_ifindex().is_some()
                        && match advert.prepare_frame(priority) {
                            Ok(()) => true,
                            Err(e) => {
                                let _ = self.out.send(ToExecutor::Error(e.to_string()));
                                false
                            }
                        };
                    if framed {
                        batch.push(instance);
                    } else if let Err(e) = advert.send(priority) {
                        let _ = self.out.send(ToExecutor::Error(e.to_string()));
                    }
                }
                Command::MasterIs { instance, master } => {
                    let Some(advert) = self.parts.adverts.get_mut(&instance) else {
                        continue;
                    };
                    if let Err(e) = advert.set_master(&mut self.parts.maps, master) {
                        let _ = self.out.send(ToExecutor::Error(e.to_string()));
                    }
                }
                Command::WakeOnAny { instance, on } => {
                    let Some(advert) = self.parts.adverts.get_mut(&instance) else {
                        continue;
                    };
                    if let Err(e) = advert.set_wake_on_any(&mut self.parts.maps, on) {
                        let _ = self.out.send(ToExecutor::Error(e.to_string()));
                    }
                }
                other => {
                    // Adverts before what follows them (the VIPs, the GARPs).
                    if !batch.is_empty() {
                        self.send_frames(std::mem::take(&mut batch));
                    }
                    let _ = self.out.send(ToExecutor::Command(other));
                }
            }
        }
        if !batch.is_empty() {
            self.send_frames(batch);
        }
    }

    /// Sends the prepared frames of `batch`, grouped by interface. An
    /// interface whose AF_PACKET socket cannot be had, or whose send
    /// fails, falls back to each instance's raw IP socket.
    fn send_frames(&mut self, batch: Vec<InstanceId>) {
        let mut by_interface: HashMap<u32, Vec<InstanceId>> = HashMap::new();
        for slot in batch {
            if let Some(ifindex) = self
                .parts
                .adverts
                .get(&slot)
                .and_then(|a| a.frame_ifindex())
            {
                by_interface.entry(ifindex).or_default().push(slot);
            }
        }
        for (ifindex, slots) in by_interface {
            if let std::collections::hash_map::Entry::Vacant(v) = self.frame_senders.entry(ifindex)
            {
                match FrameSender::open(ifindex) {
                    Ok(tx) => {
                        v.insert(tx);
                    }
                    Err(e) => {
                        let _ = self.out.send(ToExecutor::Error(format!(
                            "{e}; multicast adverts go through the IP socket"
                        )));
                    }
                }
            }
            let sent = match self.frame_senders.get(&ifindex) {
                Some(tx) => {
                    let frames: Vec<&[u8]> = slots
                        .iter()
                        .filter_map(|s| self.parts.adverts.get(s).map(|a| a.frame()))
                        .collect();
                    match tx.send_batch(&frames) {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = self.out.send(ToExecutor::Error(e.to_string()));
                            // Try again next time; a closed socket is reopened.
                            self.frame_senders.remove(&ifindex);
                            0
                        }
                    }
                }
                None => 0,
            };
            for slot in &slots[sent.min(slots.len())..] {
                let Some(advert) = self.parts.adverts.get_mut(slot) else {
                    continue;
                };
                let priority = advert.frame_priority();
                if let Err(e) = advert.send(priority) {
                    let _ = self.out.send(ToExecutor::Error(e.to_string()));
                }
            }
        }
    }

    /// The kernel's records where they can matter: the instances the ring
    /// events name, and the backups whose down timer is due. One map read
    /// per instance; masters' timers read nothing. The canaries read with
    /// them add the adverts the stack received and the recorder missed.
    fn kernel_event(&mut self, mut read: Vec<InstanceKey>, timer: bool, canaries: CanaryRead) {
        let now = Mono::now();
        if timer {
            read.extend(self.parts.controller.backups_to_read(now));
        }
        let due = if canaries == CanaryRead::Due {
            self.parts.controller.backups_due_by(now)
        } else {
            Vec::new()
        };
        let stack = self.read_canaries(canaries, &due);
        read.extend(stack.iter().map(|s| s.peer.instance()));
        read.sort_unstable_by_key(|k| (k.ifindex, k.family, k.vrid));
        read.dedup();
        let mut records = Vec::new();
        for key in &read {
            match self.parts.maps.peers_of(*key) {
                Ok(peers) => records.extend(peers),
                Err(e) => {
                    let _ = self
                        .out
                        .send(ToExecutor::Error(format!("reading peer records: {e}")));
                }
            }
        }
        if canaries != CanaryRead::None {
            let missed = canary::missed(&stack, &records);
            let periodic = canaries == CanaryRead::Periodic;
            for change in self.blind.update(&missed, &stack, periodic, now) {
                let note = match change {
                    Change::Started { key, source } => Note::RecorderBlind { key, source },
                    Change::Ended {
                        key,
                        missed,
                        recorder_sees,
                    } => Note::RecorderSeesAgain {
                        key,
                        missed,
                        stack_receives: recorder_sees,
                    },
                };
                let _ = self.out.send(ToExecutor::Command(Command::Note(note)));
            }
            records.extend(missed.iter().map(|m| (m.peer, m.record())));
        }
        if read.is_empty() && !timer {
            return;
        }
        self.dispatch_at(
            Event::Kernel {
                records,
                read,
                timer,
            },
            now,
        );
    }

    /// Drains the canaries `which` asks for.
    fn read_canaries(
        &mut self,
        which: CanaryRead,
        due: &[InstanceKey],
    ) -> Vec<canary::StackAdvert> {
        if which == CanaryRead::None {
            return Vec::new();
        }
        let registry = CachedRegistry::new(&self.parts.maps);
        self.parts
            .canaries
            .iter()
            .filter(|c| which == CanaryRead::Periodic || due.iter().any(|k| c.covers(k)))
            .flat_map(|c| c.drain(&registry))
            .collect()
    }

    /// First half of a reload: the instances that go stop as at shutdown,
    /// then the executor (after their last commands) prepares the rest.
    fn reload(&mut self, r: ReloadRequest, me: &RtSender) {
        let commands = self.parts.controller.retire(&r.slots.retired, Mono::now());
        self.run_commands(commands);
        let _ = self.out.send(ToExecutor::Reload(Box::new(ExecReload {
            config: r.config,
            diff: r.diff,
            slots: r.slots,
            disabled: r.disabled,
            done: r.done,
            rt: me.clone(),
        })));
    }

    /// One lookup per instance read from now on (see `Maps::learn_table`).
    fn learn_tables(&mut self) {
        let keys: Vec<InstanceKey> = self.parts.adverts.values().map(|a| a.key()).collect();
        for key in keys {
            if let Err(e) = self.parts.maps.learn_table(key) {
                let _ = self.out.send(ToExecutor::Error(e.to_string()));
            }
        }
    }

    /// Second half: swap in the new set of instances.
    fn apply(&mut self, a: Applied) {
        let mut plans = a.plans;
        for plan in &mut plans {
            plan.tracked.retain(|w| !a.disabled.contains(&w.tracker));
        }
        let keep: std::collections::HashSet<InstanceId> =
            a.assigned.iter().map(|(slot, _)| *slot).collect();
        self.parts.adverts.retain(|slot, _| keep.contains(slot));
        self.parts.adverts.extend(a.adverts);
        self.parts.canaries.extend(a.canaries);
        for (plan, (slot, kept)) in plans.iter().zip(&a.assigned) {
            if !*kept {
                continue;
            }
            if let Some(advert) = self.parts.adverts.get_mut(slot) {
                if let Err(e) = advert.update(&plan.advert, &plan.xdp, &mut self.parts.maps) {
                    let _ = self.out.send(ToExecutor::Error(e.to_string()));
                }
            }
        }
        self.learn_tables();
        let result = self.parts.controller.reconfigure(
            &plans,
            &a.groups,
            &a.assigned,
            &a.primary_up,
            Mono::now(),
        );
        match result {
            Ok(commands) => self.run_commands(commands),
            Err(e) => {
                let _ = self.out.send(ToExecutor::Error(format!("reload: {e}")));
            }
        }
        let _ = a.done.send(ReloadOutcome {
            slots: a.assigned.iter().map(|(slot, _)| *slot).collect(),
            plans,
            groups: a.groups,
            failed: a.failed,
        });
    }
}

fn run(
    parts: RtParts,
    start: Event,
    rx: mpsc::Receiver<RtInput>,
    me: RtSender,
    out: &UnboundedSender<ToExecutor>,
    priority: u8,
) -> Result<(), RtError> {
    let wake = &*me.wake;
    if let Err(e) = realtime::make_current_thread_realtime(priority) {
        let _ = out.send(ToExecutor::Error(format!(
            "{e}: adverts are sent with normal scheduling (needs CAP_SYS_NICE)"
        )));
    }
    let sys = |call| move |source| RtError::Sys { call, source };
    let timer = DeadlineTimer::new().map_err(|source| RtError::Io {
        what: "timerfd",
        source,
    })?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(sys("epoll_create"))?;
    let readable = |data| EpollEvent::new(EpollFlags::EPOLLIN, data);
    epoll
        .add(timer.as_fd(), readable(TIMER))
        .map_err(sys("epoll_ctl(timerfd)"))?;
    epoll
        .add(parts.ring.as_fd(), readable(RING))
        .map_err(sys("epoll_ctl(ring buffer)"))?;
    epoll
        .add(wake.as_fd(), readable(WAKE))
        .map_err(sys("epoll_ctl(eventfd)"))?;

    let _ = out.send(ToExecutor::Connect(me.clone()));
    let mut lp = Loop {
        parts,
        out,
        frame_senders: HashMap::new(),
        blind: BlindWatch::default(),
        next_canary: Mono::now() + canary::PERIOD,
    };
    lp.learn_tables();
    lp.dispatch(start);
    let mut ready = [EpollEvent::empty(); 3];
    loop {
        let deadline = match lp.parts.controller.next_deadline() {
            Some(d) if lp.parts.canaries.is_empty() => Some(d),
            Some(d) => Some(d.min(lp.next_canary)),
            None if lp.parts.canaries.is_empty() => None,
            None => Some(lp.next_canary),
        };
        timer.arm(deadline).map_err(|source| RtError::Io {
            what: "arming the deadline timer",
            source,
        })?;
        let n = match epoll.wait(&mut ready, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(sys("epoll_wait")(e)),
        };
        let (mut fired, mut ring, mut named) = (false, false, Vec::new());
        for ev in &ready[..n] {
            match ev.data() {
                TIMER => {
                    fired |= timer.take_expiry().map_err(|source| RtError::Io {
                        what: "reading the deadline timer",
                        source,
                    })?
                }
                RING => {
                    while let Some(item) = lp.parts.ring.next() {
                        if item.len() >= std::mem::size_of::<PeerEvent>() {
                            let event: PeerEvent = bytemuck::pod_read_unaligned(
                                &item[..std::mem::size_of::<PeerEvent>()],
                            );
                            named.push(event.key.instance());
                            ring = true;
                        }
                    }
                }
                _ => {
                    // Counter reset; the inputs themselves are in the channel.
                    let _ = wake.read();
                }
            }
        }
        let canaries = if !lp.parts.canaries.is_empty() && Mono::now() >= lp.next_canary {
            lp.next_canary = Mono::now() + canary::PERIOD;
            CanaryRead::Periodic
        } else if fired && !lp.parts.canaries.is_empty() {
            CanaryRead::Due
        } else {
            CanaryRead::None
        };
        if fired || ring || canaries != CanaryRead::None {
            lp.kernel_event(named, fired, canaries);
        }
        while let Ok(input) = rx.try_recv() {
            let event = match input {
                RtInput::Tracker { tracker, status } => Event::Tracker { tracker, status },
                RtInput::Link {
                    ifindex,
                    name,
                    up,
                    removed,
                } => Event::Link {
                    ifindex,
                    name,
                    up,
                    removed,
                },
                RtInput::Reload(r) => {
                    lp.reload(*r, &me);
                    continue;
                }
                RtInput::ReloadReady(a) => {
                    lp.apply(*a);
                    continue;
                }
                RtInput::Deleted { instance, what } => Event::Deleted { instance, what },
                RtInput::Rebound {
                    instance,
                    key,
                    source,
                    advert,
                } => {
                    // The old socket (on the vanished interface) closes here.
                    lp.parts.adverts.insert(instance, *advert);
                    if let Err(e) = lp.parts.maps.learn_table(key) {
                        let _ = lp.out.send(ToExecutor::Error(e.to_string()));
                    }
                    Event::Rebound {
                        instance,
                        key,
                        source,
                    }
                }
                RtInput::Snapshot(reply) => {
                    let c = &lp.parts.controller;
                    let _ = reply.send(RtSnapshot {
                        instances: c.snapshot(),
                        groups: c.group_states(),
                        blind: lp.blind.clone(),
                    });
                    continue;
                }
                RtInput::Handover(reply) => {
                    let states = lp
                        .parts
                        .controller
                        .snapshot()
                        .iter()
                        .map(|v| (v.slot, v.state))
                        .collect();
                    let _ = lp.out.send(ToExecutor::Leave);
                    let _ = reply.send(states);
                    return Ok(());
                }
                RtInput::Shutdown => {
                    lp.dispatch(Event::Shutdown);
                    return Ok(());
                }
            };
            lp.dispatch(event);
        }
    }
}
