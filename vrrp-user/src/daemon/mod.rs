//! `xvrrpd run`: the daemon.
//!
//! Three threads, data flowing one way:
//! - the normal thread (`service`): signals, trackers, link events, status,
//!   reloads and in-place restarts;
//! - the advert thread (`rt`, SCHED_FIFO): the pure `control`ler over one
//!   `engine` per instance, timers, kernel records, advert sends;
//! - the executor thread (`execute`, SCHED_FIFO one below): VIPs, GARP/NA,
//!   notify scripts and log lines.
//!
//! `plan` turns the configuration into what each instance needs; `held`
//! writes down what the daemon holds on the host, for crash clean-up and
//! in-place restarts; `sim` runs controllers on a virtual segment.

pub mod advert;
pub mod canary;
pub mod control;
pub mod execute;
pub mod held;
pub mod plan;
pub mod realtime;
pub mod reload;
pub mod report;
pub mod rt;
mod service;
pub mod sim;
pub mod sync;
pub mod timer;
mod trackers;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use thiserror::Error;
use tokio::{signal::unix, sync::mpsc};
use tracing::{info, warn};

use crate::{
    bpf::{self, BpfError},
    config::{self, ConfigError},
    engine::ParamsError,
    network::netlink::{Netlink, NetlinkError},
    notify::NotifyError,
    report::ReportHandle,
};
use control::{Controller, Event};
use execute::ExecuteError;
use realtime::RtSettings;
use rt::{RtError, RtParts, RtThread};
use service::{Daemon, Reporter};
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
    /// `--attach`: where the recorder may attach, over `xvrrpd_attach`.
    pub attach: Option<bpf::AttachMode>,
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
        attach: opts.attach,
        resume: resume.clone(),
        previous,
    };
    let (executor, ready) = execute::spawn(config.clone(), mode, settings.executor_priority())?;
    // Dropping `ready` (its sender) on an early return stops the executor.
    let starting = Starting {
        ready,
        xcpu,
        resume,
        paths,
    };
    let result = start_and_serve(&opts, &config, &settings, starting, &mut ops).await;
    executor.join();
    match result {
        Ok(Outcome::Reexec) => info!("handing over to a new image"),
        _ => info!("stopped"),
    }
    result
}

/// What the start-up hands over to the normal thread's service.
struct Starting {
    ready: execute::Ready,
    xcpu: unix::Signal,
    /// Instances that were master before an in-place restart.
    resume: std::collections::HashSet<String>,
    paths: held::Paths,
}

async fn start_and_serve(
    opts: &Options,
    config: &config::Config,
    settings: &RtSettings,
    starting: Starting,
    ops: &mut crate::ops::Ops,
) -> Result<Outcome, DaemonError> {
    let Starting {
        ready,
        xcpu,
        resume,
        paths,
    } = starting;
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
        canaries: ready.canaries,
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
    let (restart, restart_rx) = crate::ops::control::RestartHandle::new();
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
    let result = match ops.serve(&daemon.reports, &restart) {
        Ok(()) => {
            daemon
                .event_loop(track_rx, xcpu, report_rx, restart_rx)
                .await
        }
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(Outcome::Reexec) => ops.handing_over(),
        _ => ops.stopping(),
    }
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
