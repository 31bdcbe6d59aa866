//! `xvrrpd run`: the daemon's event loop.
//!
//! One task, no locks. It sleeps until the earliest engine deadline, a ring
//! buffer event (a significant advert), a link event or a signal. Before
//! every timer it reads the kernel's peer records, so a daemon that wakes
//! late (starved, paused) still judges the master by when the kernel saw
//! its last advert, not by when we got around to looking.

pub mod instance;
pub mod sync;
pub mod timer;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    path::{Path, PathBuf},
    time::Duration,
};

use futures::StreamExt;
use thiserror::Error;
use tokio::{signal::unix, sync::mpsc, task::JoinHandle};
use tracing::{error, info, warn};
use vrrp_common::PeerEvent;

use crate::{
    bpf::{BpfError, Recorder},
    command,
    config::{self, ConfigError},
    engine::{Action, Input, State},
    network::netlink::{LinkEvents, Netlink, NetlinkError},
    notify::{Notifier, NotifyError, NotifyState, Owner},
    time::Mono,
    track::{file, priority, process, script, EventReceiver, EventSender, Status, TrackerId},
};
use sync::Member;

/// How often /proc is scanned for newly started tracked processes (exits
/// are seen at once through pidfds).
const PROCESS_SCAN_INTERVAL: Duration = Duration::from_secs(1);
pub use instance::{InstanceError, RunningInstance};

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{file}: configuration has errors, not starting:\n{errors}")]
    Invalid { file: PathBuf, errors: String },
    #[error("{0}: no vrrp_instance to run")]
    NoInstances(PathBuf),
    #[error(transparent)]
    Bpf(#[from] Box<BpfError>),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),

    #[error(transparent)]
    Instance(Box<InstanceError>),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error("starting trackers: {0}")]
    Tracker(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl From<BpfError> for DaemonError {
    fn from(e: BpfError) -> Self {
        DaemonError::Bpf(Box::new(e))
    }
}

impl From<InstanceError> for DaemonError {
    fn from(e: InstanceError) -> Self {
        DaemonError::Instance(Box::new(e))
    }
}

pub struct Options {
    pub config: PathBuf,
    pub pin_dir: PathBuf,
}

fn load_config(path: &Path) -> Result<config::Config, DaemonError> {
    let loaded = config::load(path)?;
    for w in loaded.warnings() {
        warn!("{w}");
    }
    if loaded.has_errors() {
        let errors = loaded
            .errors()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        return Err(DaemonError::Invalid {
            file: path.to_owned(),
            errors,
        });
    }
    if loaded.config.instances.is_empty() {
        return Err(DaemonError::NoInstances(path.to_owned()));
    }
    Ok(loaded.config)
}

/// Runs until SIGTERM/SIGINT; returns after a clean shutdown.
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    let config = load_config(&opts.config)?;
    let netlink = Netlink::new()?;
    let mut recorder = Recorder::load(&opts.pin_dir)?;
    info!(pin_dir = %opts.pin_dir.display(), "XDP maps pinned");

    // A group left with fewer than two members (reported by the config
    // check) does nothing.
    let active_groups: Vec<&config::SyncGroup> = config
        .sync_groups
        .iter()
        .filter(|g| g.members.len() >= 2)
        .collect();
    let mut instances = Vec::new();
    for cfg in &config.instances {
        let group = active_groups
            .iter()
            .position(|g| g.members.contains(&cfg.name));
        let mut inst =
            RunningInstance::start(cfg, &config.global, group.is_some(), &netlink).await?;
        recorder.attach(&cfg.interface)?;
        inst.register(&mut recorder.maps)?;
        // A VIP left by an earlier run is not ours until we are master.
        inst.remove_vips(&netlink).await;
        let ignore_weights = group.is_some_and(|g| !active_groups[g].tracking_weight);
        inst.tracked = priority::instance_items(cfg, &config, ignore_weights);
        inst.group = group;
        instances.push(inst);
    }
    let groups = active_groups
        .iter()
        .map(|g| Group {
            name: g.name.clone(),
            // `instances` follows `config.instances` one to one.
            members: g
                .members
                .iter()
                .filter_map(|m| config.instances.iter().position(|i| &i.name == m))
                .collect(),
            notify: g.notify.clone(),
            state: None,
        })
        .collect::<Vec<_>>();
    let notifier = Notifier::new(&config.global)?;
    let mut daemon = Daemon {
        instances,
        groups,
        statuses: HashMap::new(),
        recorder,
        netlink,
        notifier,
    };
    let (track_tx, track_rx) = mpsc::unbounded_channel();
    let trackers = daemon.start_trackers(&config, track_tx).await;
    let result = match trackers {
        Ok(handles) => {
            let r = daemon.event_loop(track_rx, &opts.config, &config).await;
            for h in handles {
                h.abort();
            }
            r
        }
        Err(e) => Err(e),
    };
    daemon.shutdown().await;
    info!("stopped");
    result
}

/// A `vrrp_sync_group` at run time.
struct Group {
    name: String,
    /// Indexes into `Daemon::instances`.
    members: Vec<usize>,
    notify: config::Notify,
    /// Last state notified.
    state: Option<NotifyState>,
}

struct Daemon {
    instances: Vec<RunningInstance>,
    groups: Vec<Group>,
    /// Latest status of every tracker, by name.
    statuses: HashMap<TrackerId, Status>,
    recorder: Recorder,
    netlink: Netlink,
    notifier: Notifier,
}

/// Cascades of sync-group moves are short (each member moves at most once
/// per cause); this bounds them anyway.
const MAX_SYNC_STEPS: usize = 1024;

impl Daemon {
    /// Starts every tracker and records their initial states. A script that
    /// fails the security check is disabled (logged), as keepalived does.
    async fn start_trackers(
        &mut self,
        config: &config::Config,
        tx: EventSender,
    ) -> Result<Vec<JoinHandle<()>>, DaemonError> {
        let mut handles = Vec::new();
        let used_ids: HashSet<TrackerId> = self
            .instances
            .iter()
            .flat_map(|i| i.tracked.iter().map(|w| w.tracker.clone()))
            .collect();
        let used = |id: &TrackerId| used_ids.contains(id);
        for script in config.scripts.values() {
            let id = TrackerId::Script(script.name.clone());
            if !used(&id) {
                continue;
            }
            let run_as = match command::resolve_user(
                script.user.as_ref(),
                config.global.script_user.as_ref(),
            ) {
                Ok(r) => r,
                Err(e) => {
                    error!("vrrp_script {}: {e}; script disabled", script.name);
                    self.disable(&id);
                    continue;
                }
            };
            match script::spawn(
                script,
                run_as,
                config.global.enable_script_security,
                tx.clone(),
            ) {
                Ok(h) => {
                    self.statuses.insert(id, Status::Up(!script.init_fail));
                    handles.push(h);
                }
                Err(e) => {
                    error!("{e}; script disabled");
                    self.disable(&id);
                }
            }
        }
        let processes: Vec<_> = config
            .track_processes
            .values()
            .filter(|p| used(&TrackerId::Process(p.name.clone())))
            .cloned()
            .collect();
        let files: Vec<_> = config
            .track_files
            .values()
            .filter(|f| used(&TrackerId::File(f.name.clone())))
            .cloned()
            .collect();
        let tracker_err = |e: &dyn std::fmt::Display| DaemonError::Tracker(e.to_string());
        let started = [
            (!processes.is_empty())
                .then(|| {
                    process::start(&processes, PROCESS_SCAN_INTERVAL, tx.clone())
                        .map_err(|e| tracker_err(&e))
                })
                .transpose()?,
            (!files.is_empty())
                .then(|| file::start(&files, tx.clone()).map_err(|e| tracker_err(&e)))
                .transpose()?,
        ];
        for (initial, handle) in started.into_iter().flatten() {
            for ev in initial {
                self.statuses.insert(ev.tracker, ev.status);
            }
            handles.push(handle);
        }
        let interfaces: Vec<String> = self
            .instances
            .iter()
            .flat_map(|i| i.tracked.iter())
            .filter_map(|w| match &w.tracker {
                TrackerId::Interface(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        for name in interfaces {
            let up = self
                .netlink
                .link_by_name(&name)
                .await
                .map(|l| l.up)
                .unwrap_or(false);
            self.statuses
                .insert(TrackerId::Interface(name), Status::Up(up));
        }
        for (id, status) in &self.statuses {
            info!(tracker = %id, ?status, "tracking");
        }
        Ok(handles)
    }

    /// A tracker that cannot run no longer counts for any instance.
    fn disable(&mut self, id: &TrackerId) {
        for inst in &mut self.instances {
            inst.tracked.retain(|w| &w.tracker != id);
        }
    }

    async fn event_loop(
        &mut self,
        mut track_rx: EventReceiver,
        config_path: &Path,
        running: &config::Config,
    ) -> Result<(), DaemonError> {
        let io = |what| move |source| DaemonError::Io { what, source };
        let mut ring = self
            .recorder
            .take_events_async()
            .map_err(io("registering the event ring buffer with epoll"))?;
        let mut links = LinkEvents::subscribe()?;
        let timer = timer::DeadlineTimer::new().map_err(io("creating the deadline timer"))?;
        let mut term =
            unix::signal(unix::SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
        let mut int = unix::signal(unix::SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
        let mut hup = unix::signal(unix::SignalKind::hangup()).map_err(io("SIGHUP handler"))?;

        // Interfaces that are already down, and trackers already failing,
        // start the instance in FAULT; weights set the starting priority.
        for i in 0..self.instances.len() {
            let ifindex = self.instances[i].key.ifindex;
            self.instances[i].link_up = self
                .netlink
                .link_by_index(ifindex)
                .await
                .map(|l| l.up)
                .unwrap_or(false);
        }
        let now = Mono::now();
        self.refresh(now).await;
        for i in 0..self.instances.len() {
            self.drive(i, Input::Startup, now).await;
        }
        self.settle_groups(now).await;

        loop {
            let deadline = self
                .instances
                .iter()
                .filter_map(|i| i.engine.next_deadline())
                .min();
            timer
                .arm(deadline)
                .map_err(io("arming the deadline timer"))?;
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: shutting down"); return Ok(()); }
                _ = int.recv() => { info!("SIGINT: shutting down"); return Ok(()); }
                _ = hup.recv() => reload(config_path, running),
                fired = timer.expired(), if deadline.is_some() => {
                    fired.map_err(io("waiting for the deadline timer"))?;
                    self.tick(true).await;
                }
                guard = ring.readable_mut() => {
                    let mut guard = guard.map_err(io("polling the event ring buffer"))?;
                    let mut woke = false;
                    while let Some(item) = guard.get_inner_mut().next() {
                        if item.len() >= std::mem::size_of::<PeerEvent>() {
                            woke = true;
                        }
                    }
                    guard.clear_ready();
                    if woke {
                        self.tick(false).await;
                    }
                }
                Some(ev) = links.next() => {
                    let id = TrackerId::Interface(ev.name.clone());
                    let tracked = self.statuses.contains_key(&id);
                    let primary = self.instances.iter().any(|i| i.key.ifindex == ev.ifindex);
                    if tracked || primary {
                        info!(interface = %ev.name, up = ev.up, removed = ev.removed, "link changed");
                    }
                    if tracked {
                        self.statuses.insert(id, Status::Up(ev.up && !ev.removed));
                    }
                    for inst in self.instances.iter_mut().filter(|i| i.key.ifindex == ev.ifindex) {
                        inst.link_up = ev.up && !ev.removed;
                    }
                    if tracked || primary {
                        self.refresh(Mono::now()).await;
                    }
                }
                Some(ev) = track_rx.recv() => {
                    info!(tracker = %ev.tracker, status = ?ev.status, "tracker changed");
                    self.statuses.insert(ev.tracker, ev.status);
                    self.refresh(Mono::now()).await;
                }
            }
        }
    }

    /// Re-derives every instance's priority and fault level from the
    /// trackers and links, and feeds the engines what changed.
    async fn refresh(&mut self, now: Mono) {
        let mut own_fault = Vec::with_capacity(self.instances.len());
        for inst in &mut self.instances {
            let effect = priority::effect(inst.config.priority, &inst.tracked, &self.statuses);
            if effect.faulted_by != inst.faulted_by && !effect.faulted_by.is_empty() {
                let by: Vec<String> = effect.faulted_by.iter().map(|t| t.to_string()).collect();
                warn!(instance = %inst.name, "fault: {}", by.join(", "));
            }
            inst.faulted_by = effect.faulted_by.clone();
            inst.tracked_priority = effect.priority;
            own_fault.push(inst.primary_down() || effect.fault());
        }
        for i in 0..self.instances.len() {
            let priority = self.instances[i].tracked_priority;
            if priority != self.instances[i].engine.effective_priority() {
                info!(instance = %self.instances[i].name, from = self.instances[i].engine.effective_priority(), to = priority, "effective priority changed");
                self.drive(i, Input::SetPriority(priority), now).await;
            }
            let fault = match self.instances[i].group {
                Some(g) => sync::group_fault(self.groups[g].members.iter().map(|&m| own_fault[m])),
                None => own_fault[i],
            };
            if self.instances[i].fed_fault != Some(fault) {
                self.instances[i].fed_fault = Some(fault);
                self.drive(i, Input::Fault(fault), now).await;
            }
        }
        self.settle_groups(now).await;
    }

    /// Feeds fresh kernel records to every engine, then (on a timer) lets each
    /// engine act on its deadlines.
    async fn tick(&mut self, timer: bool) {
        let records = match self.recorder.maps.all_peers() {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "reading peer records");
                Vec::new()
            }
        };
        let now = Mono::now();
        for i in 0..self.instances.len() {
            let mut actions = self.instances[i].feed_records(&records, now);
            let engine = &mut self.instances[i].engine;
            if timer && engine.next_deadline().is_some_and(|d| d <= now) {
                actions.extend(engine.handle(Input::Timer, now));
            }
            self.act(i, actions).await;
        }
        self.settle_groups(now).await;
    }

    async fn drive(&mut self, i: usize, input: Input, now: Mono) {
        let actions = self.instances[i].engine.handle(input, now);
        self.act(i, actions).await;
    }

    /// Carries out one engine's actions, then whatever its transitions ask of
    /// the other members of its sync group, and runs the notifies.
    async fn act(&mut self, i: usize, actions: Vec<Action>) {
        let mut queue = VecDeque::from([(i, actions)]);
        let mut steps = 0;
        while let Some((i, actions)) = queue.pop_front() {
            steps += 1;
            if steps > MAX_SYNC_STEPS {
                error!("sync group moves did not settle; stopping the cascade");
                break;
            }
            let now = Mono::now();
            let transitions = self.instances[i]
                .execute(actions, &self.netlink, &mut self.recorder.maps)
                .await;
            for t in transitions {
                self.notify_instance(i, t.to, t.priority).await;
                if let Some(g) = self.instances[i].group {
                    let members = self.members(g);
                    let pos = self.groups[g]
                        .members
                        .iter()
                        .position(|&m| m == i)
                        .unwrap_or(0);
                    for (j, input) in sync::follow(&members, pos, t.from, t.to, t.reason) {
                        let target = self.groups[g].members[j];
                        info!(group = %self.groups[g].name, instance = %self.instances[target].name, ?input, "syncing with {}", self.instances[i].name);
                        let more = self.instances[target].engine.handle(input, now);
                        queue.push_back((target, more));
                    }
                }
            }
        }
    }

    fn members(&self, g: usize) -> Vec<Member> {
        self.groups[g]
            .members
            .iter()
            .map(|&m| Member {
                state: self.instances[m].engine.state(),
                wants_master: self.instances[m].engine.wants_master(),
            })
            .collect()
    }

    /// Moves groups whose members all want master, and runs the group
    /// notifies for groups that settled in a new state.
    async fn settle_groups(&mut self, now: Mono) {
        for g in 0..self.groups.len() {
            let ready = sync::ready_for_master(&self.members(g));
            if !ready.is_empty() {
                info!(group = %self.groups[g].name, "every member wants master: syncing to MASTER");
            }
            for j in ready {
                let target = self.groups[g].members[j];
                self.drive(target, Input::SyncMaster, now).await;
            }
            let state = sync::group_state(&self.members(g));
            if let Some(state) = state.filter(|s| Some(*s) != self.groups[g].state) {
                self.groups[g].state = Some(state);
                info!(group = %self.groups[g].name, ?state, "sync group state");
                let owner = Owner::Group(self.groups[g].name.clone());
                // keepalived gives groups priority 0.
                self.notify(&owner, &self.groups[g].notify, state, 0).await;
            }
        }
    }

    async fn notify_instance(&self, i: usize, to: State, priority: u8) {
        let inst = &self.instances[i];
        let state = match to {
            State::Master => NotifyState::Master,
            State::Backup => NotifyState::Backup,
            State::Fault => NotifyState::Fault,
            State::Stopped => NotifyState::Stop,
            State::Initialize => return,
        };
        let owner = Owner::Instance(inst.name.clone());
        self.notify(&owner, &inst.config.notify, state, priority)
            .await;
    }

    /// Queues the notifies; STOP ones are waited for (up to 1 s), as keepalived does.
    async fn notify(
        &self,
        owner: &Owner,
        scripts: &config::Notify,
        state: NotifyState,
        priority: u8,
    ) {
        if state == NotifyState::Stop {
            self.notifier.stop(owner, scripts, priority).await;
        } else {
            self.notifier.notify(owner, scripts, state, priority);
        }
    }

    /// Priority 0 from masters, VIPs removed, STOP notifies (waited for up
    /// to 1 s each), then XDP detached with the recorder.
    async fn shutdown(mut self) {
        let now = Mono::now();
        for i in 0..self.instances.len() {
            self.drive(i, Input::Shutdown, now).await;
        }
        self.settle_groups(now).await;
        for inst in &self.instances {
            inst.stop(&self.netlink).await;
        }
        self.notifier.shutdown().await;
        self.recorder.shutdown();
    }
}

/// SIGHUP. Never disturbs the running instances: a file with errors is
/// reported and ignored; a changed instance is reported, and applying it
/// needs a restart (in-place reload is not implemented yet).
fn reload(path: &Path, running: &config::Config) {
    info!(file = %path.display(), "SIGHUP: re-reading the configuration");
    let new = match load_config(path) {
        Ok(c) => c,
        Err(e) => {
            error!("reload failed, the running configuration stays in force: {e}");
            return;
        }
    };
    // Where an instance is written in the file does not change what it does.
    let same = |a: &config::Instance, b: &config::Instance| {
        let mut a = a.clone();
        a.defined_at = b.defined_at.clone();
        a == *b
    };
    let mut changed: Vec<&str> = new
        .instances
        .iter()
        .filter(|n| !running.instances.iter().any(|r| same(n, r)))
        .map(|n| n.name.as_str())
        .collect();
    changed.extend(
        running
            .instances
            .iter()
            .filter(|r| !new.instances.iter().any(|n| n.name == r.name))
            .map(|r| r.name.as_str()),
    );
    if changed.is_empty() && new.global == running.global {
        info!("reload: no change to the running instances");
    } else {
        warn!(
            changed = ?changed,
            "reload: applying changed instances or global_defs in place is not supported yet; \
             the running configuration stays in force (restart xvrrpd to apply)"
        );
    }
}
