//! The normal thread's part of a running daemon: it receives signals,
//! link and tracker events and hands them to the advert thread; it answers
//! status requests; and it orchestrates reloads and in-place restarts.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use futures::StreamExt;
use tokio::signal::unix;
use tracing::{error, info, warn};

use super::{
    control, held, load_config, plan, reload, report, rt,
    rt::{RtInput, RtThread},
    trackers::Trackers,
    DaemonError, Outcome, SNAPSHOT_TIMEOUT,
};
use crate::{
    bpf, config,
    network::netlink::{LinkEvents, Netlink},
    report::{ReportHandle, ReportRequests},
    track::EventReceiver,
};

/// How long a reload may take before it is reported as stuck.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The normal thread's state.
pub(super) struct Daemon {
    pub(super) rt: RtThread,
    pub(super) trackers: Trackers,
    pub(super) netlink: Netlink,
    /// The configuration in force (a failed reload leaves it).
    pub(super) running: config::Config,
    pub(super) config_path: PathBuf,
    pub(super) paths: held::Paths,
    /// The slot of each running instance, in the file's order.
    pub(super) slots: Vec<control::InstanceId>,
    pub(super) next_slot: control::InstanceId,
    pub(super) reporter: Reporter,
    /// Handed to the status and metrics servers.
    pub(super) reports: ReportHandle,
    /// systemd's notify socket (RELOADING=1 / READY=1 around a reload).
    pub(super) systemd: crate::ops::sd_notify::Notifier,
}

impl Daemon {
    /// Receives signals, link and tracker events; hands them to the advert thread.
    pub(super) async fn event_loop(
        &mut self,
        mut track_rx: EventReceiver,
        mut xcpu: unix::Signal,
        mut report_rx: ReportRequests,
        mut restart_rx: crate::ops::control::RestartRequests,
    ) -> Result<Outcome, DaemonError> {
        let io = |what| move |source| DaemonError::Io { what, source };
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
                Some(reply) = restart_rx.recv() => match self.handover().await {
                    Ok(()) => {
                        let _ = reply.send(Ok(()));
                        return Ok(Outcome::Reexec);
                    }
                    Err(e) => {
                        error!("in-place restart refused, running on: {e}");
                        let _ = reply.send(Err(e.to_string()));
                    }
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
pub(super) struct Reporter {
    pub(super) fixed_config: String,
    pub(super) router_id: Option<String>,
    pub(super) started: std::time::SystemTime,
    pub(super) rt_priority: u8,
    pub(super) attachments: Vec<crate::report::AttachmentReport>,
    pub(super) reloads: crate::report::ReloadReport,
    pub(super) plans: Vec<plan::InstancePlan>,
    pub(super) groups: Vec<plan::GroupPlan>,
    /// Our own handle on the pinned maps (counters, peer records).
    pub(super) maps: Option<bpf::Maps>,
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
