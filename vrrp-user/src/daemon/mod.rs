//! `xvrrpd run`: the daemon's event loop.
//!
//! One task, no locks. It sleeps until the earliest engine deadline, a ring
//! buffer event (a significant advert), a link event or a signal. Before
//! every timer it reads the kernel's peer records, so a daemon that wakes
//! late (starved, paused) still judges the master by when the kernel saw
//! its last advert, not by when we got around to looking.

pub mod instance;
pub mod timer;

use std::path::{Path, PathBuf};

use futures::StreamExt;
use thiserror::Error;
use tokio::signal::unix;
use tracing::{error, info, warn};
use vrrp_common::PeerEvent;

use crate::{
    bpf::{BpfError, Recorder},
    config::{self, ConfigError},
    engine::Input,
    network::netlink::{LinkEvents, Netlink, NetlinkError},
    time::Mono,
};
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

    let mut instances = Vec::new();
    for cfg in &config.instances {
        let inst = RunningInstance::start(cfg, &config.global, &netlink).await?;
        recorder.attach(&cfg.interface)?;
        inst.register(&mut recorder.maps)?;
        // A VIP left by an earlier run is not ours until we are master.
        inst.remove_vips(&netlink).await;
        instances.push(inst);
    }
    let result = event_loop(
        &mut instances,
        &mut recorder,
        &netlink,
        &opts.config,
        &config,
    )
    .await;

    // Shutdown: priority 0 from masters, VIPs removed, then XDP detached with the recorder.
    let now = Mono::now();
    for inst in &mut instances {
        let actions = inst.engine.handle(Input::Shutdown, now);
        inst.execute(actions, &netlink, &mut recorder.maps).await;
        inst.stop(&netlink).await;
    }
    recorder.shutdown();
    info!("stopped");
    result
}

async fn event_loop(
    instances: &mut [RunningInstance],
    recorder: &mut Recorder,
    netlink: &Netlink,
    config_path: &Path,
    running: &config::Config,
) -> Result<(), DaemonError> {
    let io = |what| move |source| DaemonError::Io { what, source };
    let mut ring = recorder
        .take_events_async()
        .map_err(io("registering the event ring buffer with epoll"))?;
    let mut links = LinkEvents::subscribe()?;
    let timer = timer::DeadlineTimer::new().map_err(io("creating the deadline timer"))?;
    let mut term = unix::signal(unix::SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    let mut int = unix::signal(unix::SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
    let mut hup = unix::signal(unix::SignalKind::hangup()).map_err(io("SIGHUP handler"))?;

    // Interfaces that are already down start the instance in FAULT.
    let now = Mono::now();
    for inst in instances.iter_mut() {
        let up = netlink
            .link_by_index(inst.key.ifindex)
            .await
            .map(|l| l.up)
            .unwrap_or(false);
        let mut actions = Vec::new();
        if !up {
            actions.extend(inst.engine.handle(Input::Fault(true), now));
        }
        actions.extend(inst.engine.handle(Input::Startup, now));
        inst.execute(actions, netlink, &mut recorder.maps).await;
    }

    loop {
        let deadline = instances
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
                tick(instances, recorder, netlink, true).await;
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
                    tick(instances, recorder, netlink, false).await;
                }
            }
            Some(ev) = links.next() => {
                let now = Mono::now();
                for inst in instances.iter_mut().filter(|i| i.key.ifindex == ev.ifindex) {
                    info!(instance = %inst.name, interface = %ev.name, up = ev.up, removed = ev.removed, "link changed");
                    let actions = inst.engine.handle(Input::Fault(!ev.up), now);
                    inst.execute(actions, netlink, &mut recorder.maps).await;
                }
            }
        }
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

/// Feeds fresh kernel records to every engine, then (on a timer) lets each
/// engine act on its deadlines.
async fn tick(
    instances: &mut [RunningInstance],
    recorder: &mut Recorder,
    netlink: &Netlink,
    timer: bool,
) {
    let records = match recorder.maps.all_peers() {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "reading peer records");
            Vec::new()
        }
    };
    let now = Mono::now();
    for inst in instances.iter_mut() {
        let mut actions = inst.feed_records(&records, now);
        if timer && inst.engine.next_deadline().is_some_and(|d| d <= now) {
            actions.extend(inst.engine.handle(Input::Timer, now));
        }
        inst.execute(actions, netlink, &mut recorder.maps).await;
    }
}
