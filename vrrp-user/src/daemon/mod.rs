//! `xvrrpd run`: the daemon's event loop.
//!
//! One task, no locks. It sleeps until the earliest engine deadline, a ring
//! buffer event (a significant advert), a link event or a signal. Before
//! every timer it reads the kernel's peer records, so a daemon that wakes
//! late (starved, paused) still judges the master by when the kernel saw
//! its last advert, not by when we got around to looking.

pub mod control;
pub mod execute;
pub mod plan;
pub mod reload;
pub mod sim;
pub mod sync;
pub mod timer;
mod trackers;

use std::path::{Path, PathBuf};

use futures::StreamExt;
use thiserror::Error;
use tokio::{signal::unix, sync::mpsc};
use tracing::{error, info, warn};
use vrrp_common::PeerEvent;

use crate::{
    bpf::{BpfError, Recorder},
    config::{self, ConfigError},
    engine::ParamsError,
    network::netlink::{LinkEvents, Netlink, NetlinkError},
    notify::{Notifier, NotifyError},
    time::Mono,
    track::{EventReceiver, Status, TrackerId},
};
use control::{Controller, Event};
use execute::{ExecuteError, Executor};

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
    let recorder = Recorder::load(&opts.pin_dir)?;
    info!(pin_dir = %opts.pin_dir.display(), "XDP maps pinned");
    let notifier = Notifier::new(&config.global)?;
    let (mut executor, plans, groups) = Executor::start(&config, netlink, recorder, notifier)
        .await
        .map_err(DaemonError::Execute)?;
    let mut controller = Controller::new(&plans, &groups).map_err(DaemonError::Params)?;

    let (track_tx, track_rx) = mpsc::unbounded_channel();
    let result = match trackers::start(&config, &mut controller, &executor.netlink, track_tx).await
    {
        Ok((handles, statuses)) => {
            let r = event_loop(
                &mut controller,
                &mut executor,
                statuses,
                track_rx,
                &opts.config,
                &config,
            )
            .await;
            for h in handles {
                h.abort();
            }
            r
        }
        Err(e) => Err(e),
    };
    // Priority 0 from masters, VIPs removed, STOP notifies (waited for up
    // to 1 s each), then XDP detached with the recorder.
    let commands = controller.handle(Event::Shutdown, Mono::now());
    executor.execute(commands).await;
    executor.stop().await;
    info!("stopped");
    result
}

/// Receives events, asks the controller, hands its commands to the executor.
async fn event_loop(
    controller: &mut Controller,
    executor: &mut Executor,
    statuses: Vec<(TrackerId, Status)>,
    mut track_rx: EventReceiver,
    config_path: &Path,
    running: &config::Config,
) -> Result<(), DaemonError> {
    let io = |what| move |source| DaemonError::Io { what, source };
    let mut ring = executor
        .recorder
        .take_events_async()
        .map_err(io("registering the event ring buffer with epoll"))?;
    let mut links = LinkEvents::subscribe()?;
    let timer = timer::DeadlineTimer::new().map_err(io("creating the deadline timer"))?;
    let mut term = unix::signal(unix::SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    let mut int = unix::signal(unix::SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
    let mut hup = unix::signal(unix::SignalKind::hangup()).map_err(io("SIGHUP handler"))?;

    let mut primary_up = Vec::with_capacity(controller.len());
    for i in 0..controller.len() {
        let up = executor
            .netlink
            .link_by_index(controller.key(i).ifindex)
            .await
            .is_ok_and(|l| l.up);
        primary_up.push(up);
    }
    let start = Event::Start {
        primary_up,
        statuses,
    };
    executor
        .execute(controller.handle(start, Mono::now()))
        .await;

    loop {
        let deadline = controller.next_deadline();
        timer
            .arm(deadline)
            .map_err(io("arming the deadline timer"))?;
        let event = tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); return Ok(()); }
            _ = int.recv() => { info!("SIGINT: shutting down"); return Ok(()); }
            _ = hup.recv() => { reload(config_path, running); continue; }
            fired = timer.expired(), if deadline.is_some() => {
                fired.map_err(io("waiting for the deadline timer"))?;
                kernel_event(executor, true)
            }
            guard = ring.readable_mut() => {
                let mut guard = guard.map_err(io("polling the event ring buffer"))?;
                let mut woke = false;
                while let Some(item) = guard.get_inner_mut().next() {
                    woke |= item.len() >= std::mem::size_of::<PeerEvent>();
                }
                guard.clear_ready();
                if !woke {
                    continue;
                }
                kernel_event(executor, false)
            }
            Some(ev) = links.next() => Event::Link {
                ifindex: ev.ifindex,
                name: ev.name,
                up: ev.up,
                removed: ev.removed,
            },
            Some(ev) = track_rx.recv() => Event::Tracker { tracker: ev.tracker, status: ev.status },
        };
        let commands = controller.handle(event, Mono::now());
        executor.execute(commands).await;
    }
}

/// The kernel's peer records, read now.
fn kernel_event(executor: &Executor, timer: bool) -> Event {
    let records = executor.recorder.maps.all_peers().unwrap_or_else(|e| {
        error!(error = %e, "reading peer records");
        Vec::new()
    });
    Event::Kernel { records, timer }
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
