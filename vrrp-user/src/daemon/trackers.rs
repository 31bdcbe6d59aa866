//! Starting the trackers an instance uses (scripts, processes, files) and
//! reading the first state of tracked interfaces.

use std::{collections::HashSet, time::Duration};

use tokio::task::JoinHandle;
use tracing::{error, info};

use super::{control::Controller, DaemonError};
use crate::{
    config,
    network::netlink::Netlink,
    track::{command, file, process, script, EventSender, Status, TrackerId},
};

/// How often /proc is scanned for newly started tracked processes (exits
/// are seen at once through pidfds).
const PROCESS_SCAN_INTERVAL: Duration = Duration::from_secs(1);

/// Starts every tracker some instance uses and returns their tasks and
/// initial states. A script that fails the security check, or whose user is
/// unknown, is disabled in `controller` (logged), as keepalived does.
pub async fn start(
    config: &config::Config,
    controller: &mut Controller,
    netlink: &Netlink,
    tx: EventSender,
) -> Result<(Vec<JoinHandle<()>>, Vec<(TrackerId, Status)>), DaemonError> {
    let mut handles = Vec::new();
    let mut statuses = Vec::new();
    let used: HashSet<TrackerId> = controller.used_trackers().cloned().collect();
    for script in config.scripts.values() {
        let id = TrackerId::Script(script.name.clone());
        if !used.contains(&id) {
            continue;
        }
        let run_as =
            match command::resolve_user(script.user.as_ref(), config.global.script_user.as_ref()) {
                Ok(r) => r,
                Err(e) => {
                    error!("vrrp_script {}: {e}; script disabled", script.name);
                    controller.disable_tracker(&id);
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
                statuses.push((id, Status::Up(!script.init_fail)));
                handles.push(h);
            }
            Err(e) => {
                error!("{e}; script disabled");
                controller.disable_tracker(&id);
            }
        }
    }
    let processes: Vec<_> = config
        .track_processes
        .values()
        .filter(|p| used.contains(&TrackerId::Process(p.name.clone())))
        .cloned()
        .collect();
    let files: Vec<_> = config
        .track_files
        .values()
        .filter(|f| used.contains(&TrackerId::File(f.name.clone())))
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
        statuses.extend(initial.into_iter().map(|ev| (ev.tracker, ev.status)));
        handles.push(handle);
    }
    for id in &used {
        if let TrackerId::Interface(name) = id {
            let up = netlink
                .link_by_name(name)
                .await
                .map(|l| l.up)
                .unwrap_or(false);
            statuses.push((id.clone(), Status::Up(up)));
        }
    }
    for (id, status) in &statuses {
        info!(tracker = %id, ?status, "tracking");
    }
    Ok((handles, statuses))
}
