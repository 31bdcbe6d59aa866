//! Trackers: the things whose health moves an instance's priority or puts it
//! in FAULT (VRRP-BEHAVIOUR.md "Tracking and priority").
//!
//! Each tracker kind runs as its own task and reports *changes* as
//! [`TrackEvent`]s on one channel; the daemon folds them into each instance's
//! effective priority and fault level ([`priority`]) and feeds the engine.
//! Nothing here blocks the engine: scripts run as child processes, processes
//! are watched with pidfds and a bounded /proc scan, files with inotify.
//!
//! Modules: `script` (`vrrp_script`: interval, timeout, rise/fall; processes
//! are run by [`crate::command`]), `process`
//! (`vrrp_track_process`), `file` (`vrrp_track_file`) and `priority`
//! (effective priority and fault from the trackers' states).

pub mod file;
pub mod priority;
pub mod process;
pub mod script;

/// Which tracker an event is about; names are the config's block names
/// (the interface name for `track_interface`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrackerId {
    Script(String),
    Interface(String),
    Process(String),
    File(String),
}

impl std::fmt::Display for TrackerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackerId::Script(n) => write!(f, "vrrp_script {n}"),
            TrackerId::Interface(n) => write!(f, "interface {n}"),
            TrackerId::Process(n) => write!(f, "track_process {n}"),
            TrackerId::File(n) => write!(f, "track_file {n}"),
        }
    }
}

/// A tracker's state as far as priorities are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Script succeeding (after rise/fall), interface up, process quorum met.
    Up(bool),
    /// The number in a tracked file (unreadable or unparsable counts as 0,
    /// as keepalived does).
    Value(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackEvent {
    pub tracker: TrackerId,
    pub status: Status,
}

pub type EventSender = tokio::sync::mpsc::UnboundedSender<TrackEvent>;
pub type EventReceiver = tokio::sync::mpsc::UnboundedReceiver<TrackEvent>;
