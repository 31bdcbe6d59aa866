//! What a running daemon reports about itself: the one model behind
//! `xvrrpd status` (table and JSON), the Prometheus metrics and keepalived's
//! data, stats and JSON dumps. The daemon fills it in (`daemon::report`);
//! the renderers only read it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonReport {
    pub version: String,
    pub pid: u32,
    pub config_file: String,
    pub router_id: Option<String>,
    /// Unix time the daemon started, in seconds.
    pub started_unix: f64,
    pub uptime_s: f64,
    /// SCHED_FIFO priority of the advert thread (0: normal scheduling).
    pub rt_priority: u8,
    pub instances: Vec<InstanceReport>,
    pub sync_groups: Vec<GroupReport>,
    pub kernel: KernelReport,
    pub reloads: ReloadReport,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceReport {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    /// "IPv4" or "IPv6".
    pub family: String,
    /// 2 or 3.
    pub version: u8,
    /// keepalived's words: "INIT", "BACKUP", "MASTER", "FAULT", "STOP".
    pub state: String,
    pub base_priority: u8,
    pub effective_priority: u8,
    pub advert_interval_s: f64,
    pub unicast: bool,
    /// "ADDR/LEN" of every VIP.
    pub vips: Vec<String>,
    /// The current master as the kernel recorded its adverts (`None`
    /// while we are master, or before any advert was heard).
    pub master: Option<MasterReport>,
    pub trackers: Vec<TrackerReport>,
    /// Why the instance is in FAULT (trackers, or its interface).
    pub fault_reasons: Vec<String>,
    pub sync_group: Option<String>,
    pub transitions: u64,
    pub last_transition: Option<TransitionReport>,
    pub become_master: u64,
    pub release_master: u64,
    pub adverts_sent: u64,
    pub priority_zero_sent: u64,
    /// Adverts the kernel accepted for this instance, from every peer.
    pub adverts_received: u64,
    pub priority_zero_received: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterReport {
    pub address: String,
    pub priority: u8,
    /// Seconds since the kernel recorded its latest advert.
    pub age_s: f64,
    pub advert_interval_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackerReport {
    /// "script", "interface", "process" or "file".
    pub kind: String,
    pub name: String,
    pub weight: i32,
    pub reverse: bool,
    /// "up", "down", a file's number, or "unknown" before its first result.
    pub status: String,
    /// It currently lowers the priority or faults the instance.
    pub failing: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionReport {
    pub from: String,
    pub to: String,
    /// Why, in words (e.g. "master down timer", "higher priority advert").
    pub reason: String,
    pub at_unix: f64,
    pub ago_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    pub name: String,
    pub members: Vec<String>,
    /// "MASTER", "BACKUP", "FAULT", "STOP", or `None` while members move.
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KernelReport {
    /// How the recorder is attached on each interface.
    pub attachments: Vec<AttachmentReport>,
    /// The recorder's counters by name (vrrp_packets, accepted, and each drop reason).
    pub counters: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentReport {
    pub interface: String,
    /// e.g. "xdp native", "xdp generic", "tcx ingress".
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReloadReport {
    pub count: u64,
    pub last_unix: Option<f64>,
    pub last_ok: Option<bool>,
    pub last_error: Option<String>,
}

/// Asks the running daemon for a fresh report. Cheap to clone; every
/// server that shows the daemon's state (control socket, metrics, dumps)
/// holds one.
#[derive(Debug, Clone)]
pub struct ReportHandle {
    tx: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<DaemonReport>>,
}

/// The daemon's end: answer each request with a report.
pub type ReportRequests = tokio::sync::mpsc::Receiver<tokio::sync::oneshot::Sender<DaemonReport>>;

impl ReportHandle {
    pub fn new() -> (Self, ReportRequests) {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        (ReportHandle { tx }, rx)
    }

    /// `None` once the daemon is shutting down.
    pub async fn get(&self) -> Option<DaemonReport> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx.send(tx).await.ok()?;
        rx.await.ok()
    }
}
