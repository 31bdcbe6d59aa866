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

/// How long a status, metrics or watchdog request waits for the advert thread.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs until SIGTERM/SIGINT; returns after a clean shutdown.
///
/// Three threads: this one (signals, trackers, link events, reloads), the
/// executor thread (VIPs, GARP/NA, notifies, logs) and the advert thread
/// (timers, decisions, adverts), the last two real-time by default.
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    // First: keepalived's signals are caught from here on, and a busy
    // metrics port stops the start before anything is attached.
    let mut ops = crate::ops::Ops::bind(&opts.ops)?;
    let config = load_config(&opts.config)?;
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
    let (executor, ready) = execute::spawn(
        config.clone(),
        opts.pin_dir.clone(),
        settings.executor_priority(),
    )?;
    // Dropping `ready` (its sender) on an early return stops the executor.
    let result = start_and_serve(&opts, &config, &settings, ready, xcpu, &mut ops).await;
    executor.join();
    info!("stopped");
    result
}

async fn start_and_serve(
    opts: &Options,
    config: &config::Config,
    settings: &RtSettings,
    ready: execute::Ready,
    xcpu: unix::Signal,
    ops: &mut crate::ops::Ops,
) -> Result<(), DaemonError> {
    let netlink = Netlink::new()?;
    let mut controller = Controller::new(&ready.plans, &ready.groups)
        .map_err(DaemonError::Params)?
        .with_master_window(MASTER_WINDOW);
    let (track_tx, track_rx) = mpsc::unbounded_channel();
    let (trackers, statuses) = trackers::start(config, &mut controller, &netlink, track_tx).await?;
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
    };
    let parts = RtParts {
        controller,
        adverts: ready.adverts,
        maps: ready.maps,
        ring: ready.ring,
    };
    let rt = RtThread::spawn(parts, start, ready.to_executor, settings.priority)
        .map_err(DaemonError::Rt)?;
    info!(
        rt_priority = settings.priority,
        instances = ready.plans.len(),
        "running"
    );
    let (reports, report_rx) = ReportHandle::new();
    let reporter = Reporter {
        fixed_config: opts.config.display().to_string(),
        router_id: config.global.router_id.clone(),
        started: std::time::SystemTime::now(),
        rt_priority: settings.priority,
        attachments: ready.attachments.clone(),
        reloads: crate::report::ReloadReport::default(),
        plans: ready.plans.clone(),
        groups: ready.groups.clone(),
        maps: bpf::Maps::open_pinned(&opts.pin_dir).ok(),
    };
    let result = match ops.serve(&reports) {
        Ok(()) => {
            event_loop(
                &rt,
                track_rx,
                xcpu,
                report_rx,
                reporter,
                &opts.config,
                config,
            )
            .await
        }
        Err(e) => Err(e.into()),
    };
    ops.stopping();
    drop(reports);
    for h in trackers {
        h.abort();
    }
    // Priority 0 from masters; the executor then removes the VIPs and runs
    // the STOP notifies as the advert thread's last commands arrive.
    let stopped = rt.stop().map_err(DaemonError::Rt);
    result.and(stopped)
}

/// Receives signals, link and tracker events; hands them to the advert thread.
async fn event_loop(
    rt: &RtThread,
    mut track_rx: EventReceiver,
    mut xcpu: unix::Signal,
    mut report_rx: ReportRequests,
    reporter: Reporter,
    config_path: &Path,
    running: &config::Config,
) -> Result<(), DaemonError> {
    let io = |what| move |source| DaemonError::Io { what, source };
    let mut links = LinkEvents::subscribe()?;
    let mut term = unix::signal(unix::SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    let mut int = unix::signal(unix::SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
    let mut hup = unix::signal(unix::SignalKind::hangup()).map_err(io("SIGHUP handler"))?;
    let mut watchdog = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); return Ok(()); }
            _ = int.recv() => { info!("SIGINT: shutting down"); return Ok(()); }
            _ = hup.recv() => reload(config_path, running),
            _ = xcpu.recv() => warn!("SIGXCPU: the advert thread is near its RLIMIT_RTTIME (vrrp_rlimit_rttime)"),
            _ = watchdog.tick() => {
                if rt.is_finished() {
                    error!("the advert thread ended unexpectedly; shutting down");
                    return Ok(());
                }
            }
            Some(ev) = links.next() => rt.send(RtInput::Link {
                ifindex: ev.ifindex,
                name: ev.name,
                up: ev.up,
                removed: ev.removed,
            }),
            Some(ev) = track_rx.recv() => rt.send(RtInput::Tracker { tracker: ev.tracker, status: ev.status }),
            Some(reply) = report_rx.recv() => {
                // A hung advert thread must not hang signals and events too.
                if let Ok(Some(snapshot)) = tokio::time::timeout(SNAPSHOT_TIMEOUT, rt.snapshot()).await {
                    let _ = reply.send(reporter.build(&snapshot));
                }
            }
        }
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
    let d = reload::diff(running, &new);
    if d.is_empty() {
        info!("reload: no change to the running instances");
    } else {
        warn!(
            changed = ?d.changed,
            added = ?d.added,
            removed = ?d.removed,
            shared = d.shared_changed,
            "reload: applying changed instances or global_defs in place is not supported yet; \
             the running configuration stays in force (restart xvrrpd to apply)"
        );
    }
}
