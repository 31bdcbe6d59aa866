//! Operating surfaces: what an operator (and systemd, Prometheus,
//! keepalived-era tooling) sees of a running daemon. Every surface renders
//! the one [`DaemonReport`](crate::report::DaemonReport), fetched through a
//! [`ReportHandle`]; none of them talks to the advert thread directly.
//!
//! - [`control`]: the root-only control socket behind `xvrrpd status`;
//! - [`metrics`]: Prometheus text format on `GET /metrics` (`--metrics ADDR`);
//! - [`dump`] and [`signals`]: keepalived's SIGUSR1/SIGUSR2/SIGRTMIN+2 dumps,
//!   SIGPIPE ignored, keepalived's ignored signals tolerated;
//! - [`sd_notify`]: `READY=1`, `STATUS=`, `WATCHDOG=1`, `RELOADING=1`, `STOPPING=1`;
//! - [`logging`]: journal, syslog, stderr and file, with keepalived's flags;
//! - [`pidfile`]: keepalived's `-p`/`-r` pid files.

pub mod control;
pub mod dump;
pub mod localtime;
pub mod logging;
pub mod metrics;
pub mod pidfile;
pub mod sd_notify;
pub mod signals;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use thiserror::Error;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::report::{state_summary, ReportHandle};
use control::{ControlError, ControlSocket};
use metrics::{MetricsError, MetricsServer};
use sd_notify::{Notifier, SdNotifyError};
use signals::{DumpSignals, SignalError, Tolerated};

#[derive(Debug, Error)]
pub enum OpsError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Signal(#[from] SignalError),
    #[error(transparent)]
    SdNotify(#[from] SdNotifyError),
}

/// What the operator asked for on the command line.
#[derive(Debug, Clone)]
pub struct OpsOptions {
    /// The control socket (`/run/xvrrpd/<pin name>.sock` by default).
    pub control: PathBuf,
    /// Serve Prometheus metrics here (off when `None`).
    pub metrics: Option<SocketAddr>,
}

/// How often STATUS= is brought up to date (and the advert thread checked)
/// when systemd has no watchdog asking for more.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// A report round trip slower than this counts as a dead advert thread.
const ALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The operating surfaces of one daemon. Bound first thing (so a busy port
/// or a bad NOTIFY_SOCKET stops the start before anything is attached, and
/// a SIGUSR1 during start-up is queued instead of killing), served once the
/// advert thread runs.
pub struct Ops {
    control: ControlSocket,
    metrics: Option<MetricsServer>,
    notifier: Notifier,
    dump_signals: Option<DumpSignals>,
    tolerated: Option<Tolerated>,
    tasks: Vec<JoinHandle<()>>,
}

impl Ops {
    /// Must be called within the daemon's tokio runtime.
    pub fn bind(opts: &OpsOptions) -> Result<Self, OpsError> {
        signals::ignore_sigpipe()?;
        let tolerated = Tolerated::install()?;
        let dump_signals = DumpSignals::install()?;
        let notifier = Notifier::from_env()?;
        let control = ControlSocket::bind(&opts.control)?;
        let metrics = opts.metrics.map(MetricsServer::bind).transpose()?;
        Ok(Ops {
            control,
            metrics,
            notifier,
            dump_signals: Some(dump_signals),
            tolerated: Some(tolerated),
            tasks: Vec::new(),
        })
    }

    /// systemd's notifier, for the reload path (`reloading()`/`reloaded()`).
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
    }

    /// Starts serving: control socket, metrics, dump signals, tolerated
    /// signals, and systemd's READY=1 / STATUS= / WATCHDOG=1. Call once the
    /// advert thread runs; must be called within the daemon's tokio runtime.
    pub fn serve(
        &mut self,
        reports: &ReportHandle,
        restart: &control::RestartHandle,
    ) -> Result<(), OpsError> {
        self.tasks
            .push(self.control.serve(reports.clone(), restart.clone())?);
        info!(path = %self.control.path().display(), "control socket ready (xvrrpd status)");
        if let Some(m) = &mut self.metrics {
            self.tasks.push(m.serve(reports.clone())?);
            info!(address = %m.local_addr(), "metrics at http://{}/metrics", m.local_addr());
        }
        if let Some(d) = self.dump_signals.take() {
            self.tasks.push(d.serve(reports.clone()));
        }
        if let Some(t) = self.tolerated.take() {
            self.tasks.push(t.serve());
        }
        self.tasks.push(tokio::spawn(systemd(
            self.notifier.clone(),
            reports.clone(),
        )));
        Ok(())
    }

    /// Before an in-place restart: the surfaces close and systemd hears
    /// RELOADING=1 (the new image, same PID, says READY=1).
    pub fn handing_over(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if let Err(e) = self.notifier.reloading() {
            warn!("{e}");
        }
    }

    /// At shutdown, before the instances release: STOPPING=1, and the
    /// surfaces close (the control socket is removed when `self` drops).
    pub fn stopping(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if let Err(e) = self.notifier.stopping() {
            warn!("{e}");
        }
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// READY=1 after the first report round trip (the advert thread runs and
/// answers), then STATUS= whenever the summary changes, and WATCHDOG=1 at
/// half of WatchdogSec, each one only after a fresh round trip: a hung or
/// dead advert thread stops the pings and systemd restarts the daemon.
async fn systemd(notifier: Notifier, reports: ReportHandle) {
    if !notifier.enabled() {
        return;
    }
    let alive = || async {
        tokio::time::timeout(ALIVE_TIMEOUT, reports.get())
            .await
            .ok()
            .flatten()
    };
    let Some(first) = alive().await else {
        warn!("the advert thread did not answer: READY=1 not sent");
        return;
    };
    let mut status = state_summary(&first);
    if let Err(e) = notifier.ready(&status) {
        warn!("{e}");
    }
    let every = notifier
        .watchdog_interval()
        .map_or(STATUS_EVERY, |w| w.min(STATUS_EVERY));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(report) = alive().await else {
            warn!("the advert thread did not answer in {ALIVE_TIMEOUT:?}: no WATCHDOG=1");
            continue;
        };
        let now = state_summary(&report);
        if now != status {
            status = now;
            if let Err(e) = notifier.status(&status) {
                warn!("{e}");
            }
        }
        if notifier.watchdog_interval().is_some() {
            if let Err(e) = notifier.watchdog() {
                warn!("{e}");
            }
        }
    }
}
