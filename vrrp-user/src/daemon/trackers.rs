//! The trackers an instance uses (scripts, processes, files, interfaces):
//! started at start-up, and on a reload only where their definition
//! changed, so a reload never resets a script's rise/fall count.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use tokio::task::JoinHandle;
use tracing::{error, info};

use super::DaemonError;
use crate::{
    command, config,
    network::netlink::Netlink,
    track::{file, process, script, EventSender, Status, TrackerId},
};

/// How often /proc is scanned for newly started tracked processes (exits
/// are seen at once through pidfds).
const PROCESS_SCAN_INTERVAL: Duration = Duration::from_secs(1);

/// Every tracker some instance of `config` uses.
pub fn used(config: &config::Config) -> HashSet<TrackerId> {
    config
        .instances
        .iter()
        .flat_map(|i| super::plan::tracked_items(i, config, false))
        .map(|w| w.tracker)
        .collect()
}

/// What makes a running script task obsolete: everything but its weight
/// and `reverse`, which only the instances read.
fn script_run(s: &config::VrrpScript) -> impl PartialEq {
    (
        s.script.clone(),
        s.interval,
        s.timeout,
        s.rise,
        s.fall,
        s.user.clone(),
        s.init_fail,
    )
}

/// The globals every script runs under.
fn script_run_global(g: &config::GlobalDefs) -> impl PartialEq {
    (g.script_user.clone(), g.enable_script_security)
}

pub struct Trackers {
    tx: EventSender,
    scripts: HashMap<String, (config::VrrpScript, JoinHandle<()>)>,
    processes: Option<(Vec<config::TrackProcess>, JoinHandle<()>)>,
    files: Option<(Vec<config::TrackFile>, JoinHandle<()>)>,
    interfaces: HashSet<String>,
    /// Scripts that cannot run (security check, unknown user): they do not
    /// count for any instance, as keepalived disables them.
    pub disabled: HashSet<TrackerId>,
    /// The configuration the running trackers were started from.
    global: config::GlobalDefs,
}

impl Trackers {
    pub fn new(tx: EventSender) -> Self {
        Trackers {
            tx,
            scripts: HashMap::new(),
            processes: None,
            files: None,
            interfaces: HashSet::new(),
            disabled: HashSet::new(),
            global: config::GlobalDefs::default(),
        }
    }

    /// Brings the running trackers in line with `config`: starts what is
    /// new or changed, stops what is no longer used, leaves the rest alone.
    /// Returns the first state of each tracker it started.
    pub async fn apply(
        &mut self,
        config: &config::Config,
        netlink: &Netlink,
    ) -> Result<Vec<(TrackerId, Status)>, DaemonError> {
        let used = used(config);
        let mut statuses = Vec::new();
        let global_changed = script_run_global(&self.global) != script_run_global(&config.global);

        // Scripts: one task each.
        let wanted: HashMap<&str, &config::VrrpScript> = config
            .scripts
            .values()
            .filter(|s| used.contains(&TrackerId::Script(s.name.clone())))
            .map(|s| (s.name.as_str(), s))
            .collect();
        let stale: Vec<String> = self
            .scripts
            .iter()
            .filter(|(name, (old, _))| {
                wanted
                    .get(name.as_str())
                    .is_none_or(|new| global_changed || script_run(old) != script_run(new))
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some((_, handle)) = self.scripts.remove(&name) {
                handle.abort();
            }
        }
        for (name, script) in wanted {
            let id = TrackerId::Script(name.to_owned());
            if self.scripts.contains_key(name) {
                continue;
            }
            self.disabled.remove(&id);
            let run_as = match command::resolve_user(
                script.user.as_ref(),
                config.global.script_user.as_ref(),
            ) {
                Ok(r) => r,
                Err(e) => {
                    error!("vrrp_script {name}: {e}; script disabled");
                    self.disabled.insert(id);
                    continue;
                }
            };
            match script::spawn(
                script,
                run_as,
                config.global.enable_script_security,
                self.tx.clone(),
            ) {
                Ok(h) => {
                    statuses.push((id, Status::Up(!script.init_fail)));
                    self.scripts.insert(name.to_owned(), (script.clone(), h));
                }
                Err(e) => {
                    error!("{e}; script disabled");
                    self.disabled.insert(id);
                }
            }
        }

        // Processes and files: one task for all of a kind.
        let processes: Vec<config::TrackProcess> = config
            .track_processes
            .values()
            .filter(|p| used.contains(&TrackerId::Process(p.name.clone())))
            .cloned()
            .collect();
        if self.processes.as_ref().map(|(p, _)| p) != Some(&processes) {
            if let Some((_, h)) = self.processes.take() {
                h.abort();
            }
            if !processes.is_empty() {
                let (initial, handle) =
                    process::start(&processes, PROCESS_SCAN_INTERVAL, self.tx.clone())
                        .map_err(|e| DaemonError::Tracker(e.to_string()))?;
                statuses.extend(initial.into_iter().map(|ev| (ev.tracker, ev.status)));
                self.processes = Some((processes, handle));
            }
        }
        let files: Vec<config::TrackFile> = config
            .track_files
            .values()
            .filter(|f| used.contains(&TrackerId::File(f.name.clone())))
            .cloned()
            .collect();
        if self.files.as_ref().map(|(f, _)| f) != Some(&files) {
            if let Some((_, h)) = self.files.take() {
                h.abort();
            }
            if !files.is_empty() {
                let (initial, handle) = file::start(&files, self.tx.clone())
                    .map_err(|e| DaemonError::Tracker(e.to_string()))?;
                statuses.extend(initial.into_iter().map(|ev| (ev.tracker, ev.status)));
                self.files = Some((files, handle));
            }
        }

        // Interfaces: link events cover them; a newly tracked one needs its
        // current state.
        for id in &used {
            if let TrackerId::Interface(name) = id {
                if self.interfaces.insert(name.clone()) {
                    let up = netlink
                        .link_by_name(name)
                        .await
                        .map(|l| l.up)
                        .unwrap_or(false);
                    statuses.push((id.clone(), Status::Up(up)));
                }
            }
        }
        self.interfaces
            .retain(|n| used.contains(&TrackerId::Interface(n.clone())));
        self.global = config.global.clone();
        for (id, status) in &statuses {
            info!(tracker = %id, ?status, "tracking");
        }
        Ok(statuses)
    }

    pub fn stop(&mut self) {
        for (_, (_, h)) in self.scripts.drain() {
            h.abort();
        }
        if let Some((_, h)) = self.processes.take() {
            h.abort();
        }
        if let Some((_, h)) = self.files.take() {
            h.abort();
        }
    }
}
