//! `xvrrpd run`: the daemon's event loop.
//!
//! One task, no locks. It sleeps until the earliest engine deadline, a ring
//! buffer event (a significant advert), a link event or a signal. Before
//! every timer it reads the kernel's peer records, so a daemon that wakes
//! late (starved, paused) still judges the master by when the kernel saw
//! its last advert, not by when we got around to looking.

pub mod advert;
pub mod control;
pub mod execute;
pub mod held;
pub mod plan;
pub mod realtime;
pub mod reload;
pub mod report;
pub mod rt;
pub mod sim;
pub mod sync;
pub mod timer;
mod trackers;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use futures::StreamExt;
use thiserror::Error;
use tokio::{signal::unix, sync::mpsc};
use tracing::{error, info, warn};

use crate::{
    bpf::{self, BpfError},
    config::{self, ConfigError},
    engine::ParamsError,
    network::netlink::{LinkEvents, Netlink, NetlinkError},
    notify::NotifyError,
    report::{ReportHandle, ReportRequests},
    track::EventReceiver,
};
use control::{Controller, Event};
use execute::ExecuteError;
use realtime::RtSettings;
use rt::{RtError, RtInput, RtParts, RtThread};
use trackers::Trackers;

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
    Execute(Box<ExecuteError>),
    #[error(transparent)]
    Params(ParamsError),
    #[error(transparent)]
    Rt(RtError),
    #[error("reload: {0}")]
    Reload(String),
    #[error(transparent)]
    Held(held::HeldError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error("starting trackers: {0}")]
    Tracker(String),
    #[error(transparent)]
    Ops(#[from] crate::ops::OpsError),
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

pub struct Options {
    pub config: PathBuf,
    pub pin_dir: PathBuf,
    /// Control socket, metrics.
    pub ops: crate::ops::OpsOptions,
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

/// Master timers due within this of each other are served by one wake-up
/// (see `Controller::with_master_window`).
const MASTER_WINDOW: Duration = Duration::from_millis(1);

/// How the daemon ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// SIGTERM/SIGINT: priority 0 sent, VIPs released.
    Stopped,
    /// In-place restart asked for (`xvrrpd restart`): VIPs and vmacs left
    /// where they are and the handover file written; the caller re-executes
    /// the binary, which resumes.
    Reexec,
}

/// The signal `xvrrpd restart` sends (keepalived uses none above SIGRTMIN+2
/// but SIGRTMAX-1 and SIGRTMAX).
pub fn restart_signal() -> i32 {
    libc::SIGRTMIN() + 5
}

/// How long a status, metrics or watchdog request waits for the advert thread.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs until SIGTERM/SIGINT or an in-place restart.
///
/// Three threads: this one (signals, trackers, link events, reloads), the
/// executor thread (VIPs, GARP/NA, notifies, logs) and the advert thread
/// (timers, decisions, adverts), the last two real-time by default.
pub async fn run(opts: Options) -> Result<Outcome, DaemonError> {
    // First: keepalived's signals are caught from here on, and a busy
    // metrics port stops the start before anything is attached.
    let mut ops = crate::ops::Ops::bind(&opts.ops)?;
    let config = load_config(&opts.config)?;
    let paths = held::Paths::for_pin_dir(&opts.pin_dir);
    let handover = held::take_handover(&paths).unwrap_or_else(|e| {
        warn!("{e}; starting afresh");
        None
    });
    let previous = held::load_state(&paths).unwrap_or_else(|e| {
        warn!("{e}");
        None
    });
    if handover.is_none() && previous.is_some() {
        // A daemon died without cleaning up (kill -9, a crash): release
        // what it held before anything else.
        let netlink = Netlink::new()?;
        match held::cleanup(&paths, &netlink).await {
            Ok(r) => info!(
                farewells = r.farewells,
                vips = r.vips,
                vmacs = r.vmacs,
                "released what a previous xvrrpd left behind"
            ),
            Err(e) => return Err(DaemonError::Held(e)),
        }
    }
    let resume: std::collections::HashSet<String> = handover
        .map(|h| {
            h.states
                .into_iter()
                .filter(|(_, s)| s == "MASTER")
                .map(|(n, _)| n)
                .collect()
        })
        .unwrap_or_default();
    if !resume.is_empty() {
        info!(instances = ?resume, "resuming as master after an in-place restart");
    }
    let settings = RtSettings::from_global(&config.global);
    // RLIMIT_RTTIME's soft limit sends SIGXCPU, whose default action kills:
    // handle it before any thread turns real-time.
    let xcpu = unix::signal(unix::SignalKind::from_raw(libc::SIGXCPU)).map_err(|source| {
        DaemonError::Io {
            what: "SIGXCPU handler",
            source,
        }
    })?;
    realtime::prepare_process(&settings);
    let mode = execute::StartMode {
        paths: paths.clone(),
        resume: resume.clone(),
        previous,
    };
    let (executor, ready) = execute::spawn(config.clone(), mode, settings.executor_priority())?;
    // Dropping `ready` (its sender) on an early return stops the executor.
    let result = start_and_serve(
        &opts, &config, &settings, ready, xcpu, &resume, paths, &mut ops,
    )
    .await;
    executor.join();
    match result {
        Ok(Outcome::Reexec) => info!("handing over to a new image"),
        _ => info!("stopped"),
    }
    result
}

async fn start_and_serve(
    opts: &Options,
    config: &config::Config,
    settings: &RtSettings,
    ready: execute::Ready,
    xcpu: unix::Signal,
    resume: &std::collections::HashSet<String>,
    paths: held::Paths,
    ops: &mut crate::ops::Ops,
) -> Result<Outcome, DaemonError> {
    let netlink = Netlink::new()?;
    let mut controller = Controller::new(&ready.plans, &ready.groups)
        .map_err(DaemonError::Params)?
        .with_master_window(MASTER_WINDOW);
    let (track_tx, track_rx) = mpsc::unbounded_channel();
    let mut trackers = Trackers::new(track_tx);
    let statuses = match trackers.apply(config, &netlink).await {
        Ok(s) => s,
        Err(e) => {
            trackers.stop();
            return Err(e);
        }
    };
    for id in &trackers.disabled {
        controller.disable_tracker(id);
    }
    let mut primary_up = Vec::with_capacity(ready.plans.len());
    for plan in &ready.plans {
        let up = netlink
            .link_by_index(plan.key.ifindex)
            .await
            .is_ok_and(|l| l.up);
        primary_up.push(up);
    }
    let start = Event::Start {
        primary_up,
        statuses,
        resume_master: ready
            .plans
            .iter()
            .map(|p| resume.contains(&p.name))
            .collect(),
    };
    let slots = controller.slots();
    let parts = RtParts {
        controller,
        adverts: ready.adverts,
        maps: ready.maps,
        ring: ready.ring,
    };
    let rt = match RtThread::spawn(parts, start, ready.to_executor, settings.priority) {
        Ok(rt) => rt,
        Err(e) => {
            trackers.stop();
            return Err(DaemonError::Rt(e));
        }
    };
    info!(
        rt_priority = settings.priority,
        instances = ready.plans.len(),
        "running"
    );
    let (reports, report_rx) = ReportHandle::new();
    let mut daemon = Daemon {
        next_slot: slots.len(),
        slots,
        rt,
        trackers,
        netlink,
        running: config.clone(),
        config_path: opts.config.clone(),
        paths,
        reporter: Reporter {
            fixed_config: opts.config.display().to_string(),
            router_id: config.global.router_id.clone(),
            started: std::time::SystemTime::now(),
            rt_priority: settings.priority,
            attachments: ready.attachments.clone(),
            reloads: crate::report::ReloadReport::default(),
            plans: ready.plans.clone(),
            groups: ready.groups.clone(),
            maps: bpf::Maps::open_pinned(&opts.pin_dir).ok(),
        },
        reports,
        systemd: ops.notifier().clone(),
    };
    let result = match ops.serve(&daemon.reports) {
        Ok(()) => daemon.event_loop(track_rx, xcpu, report_rx).await,
        Err(e) => Err(e.into()),
    };
    ops.stopping();
    daemon.trackers.stop();
    match result {
        // The advert thread has ended without a word to the peers, and the
        // executor leaves VIPs and vmacs in place.
        Ok(Outcome::Reexec) => daemon
            .rt
            .join()
            .map_err(DaemonError::Rt)
            .map(|_| Outcome::Reexec),
        // Priority 0 from masters; the executor then removes the VIPs and
        // runs the STOP notifies as the advert thread's last commands arrive.
        other => {
            let stopped = daemon.rt.stop().map_err(DaemonError::Rt);
            other.and(stopped).map(|_| Outcome::Stopped)
        }
    }
}

/// How long a reload may take before it is reported as stuck.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The normal thread's state.
struct Daemon {
    rt: RtThread,
    trackers: Trackers,
    netlink: Netlink,
    /// The configuration in force (a failed reload leaves it).
    running: config::Config,
    config_path: PathBuf,
    paths: held::Paths,
    /// The slot of each running instance, in the file's order.
    slots: Vec<control::InstanceId>,
    next_slot: control::InstanceId,
    reporter: Reporter,
    /// Handed to the status and metrics servers.
    reports: ReportHandle,
    /// systemd's notify socket (RELOADING=1 / READY=1 around a reload).
    systemd: crate::ops::sd_notify::Notifier,
}

impl Daemon {
    /// Receives signals, link and tracker events; hands them to the advert thread.
    async fn event_loop(
        &mut self,
        mut track_rx: EventReceiver,
        mut xcpu: unix::Signal,
        mut report_rx: ReportRequests,
    ) -> Result<Outcome, DaemonError> {
        let io = |what| move |source| DaemonError::Io { what, source };
        let mut restart = unix::signal(unix::SignalKind::from_raw(restart_signal()))
            .map_err(io("restart signal handler"))?;
        let mut links = LinkEvents::subscribe()?;
        let mut term =
            unix::signal(unix::SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
        let mut int = unix::signal(unix::SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
        let mut hup = unix::signal(unix::SignalKind::hangup()).map_err(io("SIGHUP handler"))?;
        let mut watchdog = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: shutting down"); return Ok(Outcome::Stopped); }
                _ = int.recv() => { info!("SIGINT: shutting down"); return Ok(Outcome::Stopped); }
                _ = restart.recv() => match self.handover().await {
                    Ok(()) => return Ok(Outcome::Reexec),
                    Err(e) => error!("in-place restart refused, running on: {e}"),
                },
                _ = hup.recv() => self.reload().await,
                _ = xcpu.recv() => warn!("SIGXCPU: the advert thread is near its RLIMIT_RTTIME (vrrp_rlimit_rttime)"),
                _ = watchdog.tick() => {
                    if self.rt.is_finished() {
                        error!("the advert thread ended unexpectedly; shutting down");
                        return Ok(Outcome::Stopped);
                    }
                }
                Some(ev) = links.next() => self.rt.send(RtInput::Link {
                    ifindex: ev.ifindex,
                    name: ev.name,
                    up: ev.up,
                    removed: ev.removed,
                }),
                Some(ev) = track_rx.recv() => self.rt.send(RtInput::Tracker { tracker: ev.tracker, status: ev.status }),
                Some(reply) = report_rx.recv() => {
                    // A hung advert thread must not hang signals and events too.
                    if let Ok(Some(snapshot)) = tokio::time::timeout(SNAPSHOT_TIMEOUT, self.rt.snapshot()).await {
                        let _ = reply.send(self.reporter.build(&snapshot));
                    }
                }
            }
        }
    }

    /// In-place restart: the new image must be able to run this file, so
    /// it is checked first; then the advert thread stops without a word to
    /// the peers and the state of each instance is written down.
    async fn handover(&mut self) -> Result<(), DaemonError> {
        info!("in-place restart asked for");
        load_config(&self.config_path)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.rt.send(RtInput::Handover(tx));
        let states = tokio::time::timeout(RELOAD_TIMEOUT, rx)
            .await
            .map_err(|_| DaemonError::Reload("the advert thread did not hand over in time".into()))?
            .map_err(|_| DaemonError::Reload("the advert thread ended".into()))?;
        let names: std::collections::HashMap<control::InstanceId, &str> = self
            .slots
            .iter()
            .zip(&self.reporter.plans)
            .map(|(s, p)| (*s, p.name.as_str()))
            .collect();
        let states = states
            .into_iter()
            .filter_map(|(slot, state)| {
                let name = names.get(&slot)?;
                Some((name.to_string(), report::state_word(state).to_owned()))
            })
            .collect();
        // From here on there is no way back: the advert thread has ended.
        if let Err(e) = held::save_handover(&self.paths, states) {
            error!("{e}: the new image will start afresh");
        }
        Ok(())
    }

    /// SIGHUP: re-reads the file and applies it in place. A file with
    /// errors changes nothing. Unchanged instances keep their state, timers
    /// and VIPs; changed ones are updated in place or restarted (see
    /// `reload`); new ones start; removed ones send priority 0 and release
    /// their VIPs.
    async fn reload(&mut self) {
        let path = self.config_path.clone();
        info!(file = %path.display(), "Reloading");
        if let Err(e) = self.systemd.reloading() {
            warn!("{e}");
        }
        let result = self.try_reload(&path).await;
        // READY=1 again, with the state the reload left.
        let status = match tokio::time::timeout(SNAPSHOT_TIMEOUT, self.rt.snapshot()).await {
            Ok(Some(snapshot)) => crate::report::state_summary(&self.reporter.build(&snapshot)),
            _ => String::new(),
        };
        if let Err(e) = self.systemd.reloaded(&status) {
            warn!("{e}");
        }
        let r = &mut self.reporter.reloads;
        r.count += 1;
        r.last_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs_f64());
        match result {
            Ok(()) => {
                r.last_ok = Some(true);
                r.last_error = None;
            }
            Err(e) => {
                error!("reload failed, the running configuration stays in force: {e}");
                r.last_ok = Some(false);
                r.last_error = Some(e.to_string());
            }
        }
    }

    async fn try_reload(&mut self, path: &Path) -> Result<(), DaemonError> {
        let new = load_config(path)?;
        let diff = reload::diff(&self.running, &new);
        if diff.is_empty() {
            info!("reload: no change to the running instances");
            self.running = new;
            return Ok(());
        }
        info!(
            updated = ?diff.names(reload::Change::Update),
            replaced = ?diff.names(reload::Change::Replace),
            added = ?diff.names(reload::Change::Add),
            removed = ?diff.removed,
            "reload: applying"
        );
        let running_slots = self
            .reporter
            .plans
            .iter()
            .zip(&self.slots)
            .map(|(p, s)| (p.name.clone(), *s))
            .collect();
        let slots = reload::assign(&diff, &running_slots, self.next_slot);
        let statuses = self.trackers.apply(&new, &self.netlink).await?;
        let (done, outcome) = tokio::sync::oneshot::channel();
        self.rt.send(RtInput::Reload(Box::new(rt::ReloadRequest {
            config: new.clone(),
            diff,
            slots: slots.clone(),
            disabled: self.trackers.disabled.iter().cloned().collect(),
            done,
        })));
        let outcome = tokio::time::timeout(RELOAD_TIMEOUT, outcome)
            .await
            .map_err(|_| DaemonError::Reload("the advert thread did not apply it in time".into()))?
            .map_err(|_| DaemonError::Reload("the advert thread ended".into()))?;
        // Trackers started for the new file report their first state.
        for (tracker, status) in statuses {
            self.rt.send(RtInput::Tracker { tracker, status });
        }
        self.next_slot = slots.next;
        self.slots = outcome.slots;
        self.reporter.plans = outcome.plans;
        self.reporter.groups = outcome.groups;
        self.running = new;
        if !outcome.failed.is_empty() {
            return Err(DaemonError::Reload(format!(
                "instances that could not start: {}",
                outcome.failed.join(", ")
            )));
        }
        info!("reload: done");
        Ok(())
    }
}

/// Everything the status report needs besides the advert thread's snapshot.
struct Reporter {
    fixed_config: String,
    router_id: Option<String>,
    started: std::time::SystemTime,
    rt_priority: u8,
    attachments: Vec<crate::report::AttachmentReport>,
    reloads: crate::report::ReloadReport,
    plans: Vec<plan::InstancePlan>,
    groups: Vec<plan::GroupPlan>,
    /// Our own handle on the pinned maps (counters, peer records).
    maps: Option<bpf::Maps>,
}

impl Reporter {
    fn build(&self, snapshot: &rt::RtSnapshot) -> crate::report::DaemonReport {
        let fixed = report::Fixed {
            config_file: &self.fixed_config,
            router_id: self.router_id.as_deref(),
            started: self.started,
            rt_priority: self.rt_priority,
            attachments: &self.attachments,
            reloads: &self.reloads,
        };
        report::build(
            &fixed,
            &self.plans,
            &self.groups,
            snapshot,
            self.maps.as_ref(),
        )
    }
}
