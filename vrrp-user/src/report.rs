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
    /// The address adverts are sent from.
    pub source_address: String,
    pub vips: Vec<VipReport>,
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
pub struct VipReport {
    /// "ADDR/LEN".
    pub address: String,
    /// The interface it is added to (`dev`, else the instance's).
    pub interface: String,
    /// `scope` as `ip` names it ("global", "host", "link", "site" or a number).
    pub scope: String,
    pub label: Option<String>,
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
    /// Adverts the network stack received that the recorder did not.
    #[serde(default)]
    pub blind: BlindReport,
}

/// What the blind-recorder canary found: a program in front of the
/// recorder hid adverts the stack still received.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BlindReport {
    /// Episodes since the start (one per instance and spell).
    pub episodes: u64,
    /// Adverts the stack received and the recorder missed (those the canary read).
    pub missed_adverts: u64,
    /// Instances in an episode now.
    pub instances: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentReport {
    pub interface: String,
    /// Where and how, in words: e.g. "tcx ingress, 1st of 2", "xdp native
    /// via libxdp dispatcher, priority 5, 2nd of 3", "tc clsact ingress,
    /// filter priority 49152, 1st (alone)", "xdp native (exclusive)".
    pub mode: String,
    /// "xdp", "libxdp", "tcx" or "tc".
    #[serde(default)]
    pub hook: String,
    /// 1-based place among the programs of that hook, when the kernel says.
    #[serde(default)]
    pub position: Option<usize>,
    /// How many programs that hook runs.
    #[serde(default)]
    pub of: Option<usize>,
}

impl From<&crate::bpf::Placement> for AttachmentReport {
    fn from(p: &crate::bpf::Placement) -> Self {
        Self {
            interface: p.interface.clone(),
            mode: p.describe(),
            hook: p.hook_name().into(),
            position: p.position.map(|(at, _)| at),
            of: p.position.map(|(_, of)| of),
        }
    }
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

/// "3 MASTER, 1 BACKUP": how many instances are in each state, in
/// keepalived's state order (systemd's STATUS= line).
pub fn state_summary(report: &DaemonReport) -> String {
    const ORDER: [&str; 5] = ["MASTER", "BACKUP", "FAULT", "INIT", "STOP"];
    let mut counts: BTreeMap<usize, (String, usize)> = BTreeMap::new();
    for i in &report.instances {
        let rank = ORDER
            .iter()
            .position(|s| *s == i.state)
            .unwrap_or(ORDER.len());
        counts.entry(rank).or_insert_with(|| (i.state.clone(), 0)).1 += 1;
    }
    if counts.is_empty() {
        return "no instances".into();
    }
    counts
        .values()
        .map(|(state, n)| format!("{n} {state}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration for people: "0.4s", "12s", "3m12s", "2h03m", "4d02h".
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 10.0 {
        return format!("{s:.1}s");
    }
    let whole = s as u64;
    match whole {
        0..=59 => format!("{whole}s"),
        60..=3599 => format!("{}m{:02}s", whole / 60, whole % 60),
        3600..=86_399 => format!("{}h{:02}m", whole / 3600, whole % 3600 / 60),
        _ => format!("{}d{:02}h", whole / 86_400, whole % 86_400 / 3600),
    }
}

/// Rows of cells as left-aligned columns two spaces apart.
fn columns(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..width)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `xvrrpd status`: the report as a table for people.
pub fn render_table(r: &DaemonReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = write!(
        out,
        "xvrrpd {}, pid {}, up {}, {}",
        r.version,
        r.pid,
        human_duration(r.uptime_s),
        r.config_file
    );
    if let Some(id) = &r.router_id {
        let _ = write!(out, ", router_id {id}");
    }
    let sched = if r.rt_priority == 0 {
        "normal scheduling".to_owned()
    } else {
        format!("SCHED_FIFO {}", r.rt_priority)
    };
    let attach = r
        .kernel
        .attachments
        .iter()
        .map(|a| format!("{} {}", a.interface, a.mode))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(out, "\nadverts on {sched}; recorder on {attach}");
    let b = &r.kernel.blind;
    if !b.instances.is_empty() {
        let _ = writeln!(
            out,
            "RECORDER BLIND for {}: the stack receives adverts the recorder does not (a program in front of it hides them)",
            b.instances.join(", ")
        );
    }
    if b.episodes > 0 {
        let _ = writeln!(
            out,
            "blind-recorder episodes: {}, adverts missed by the recorder: {}",
            b.episodes, b.missed_adverts
        );
    }
    out.push('\n');

    let mut rows = vec![[
        "INSTANCE",
        "STATE",
        "PRIORITY",
        "INTERFACE",
        "VRID",
        "MASTER",
        "TRANSITIONS",
        "LAST TRANSITION",
    ]
    .map(String::from)
    .to_vec()];
    for i in &r.instances {
        let priority = if i.effective_priority == i.base_priority {
            i.base_priority.to_string()
        } else {
            format!("{} (base {})", i.effective_priority, i.base_priority)
        };
        let master = match (&i.master, i.state.as_str()) {
            (_, "MASTER") => "this node".to_owned(),
            (Some(m), _) => format!(
                "{} prio {}, {} ago",
                m.address,
                m.priority,
                human_duration(m.age_s)
            ),
            (None, _) => "-".to_owned(),
        };
        let last = i.last_transition.as_ref().map_or("-".to_owned(), |t| {
            format!(
                "{} ago {}->{}: {}",
                human_duration(t.ago_s),
                t.from,
                t.to,
                t.reason
            )
        });
        rows.push(vec![
            i.name.clone(),
            i.state.clone(),
            priority,
            i.interface.clone(),
            format!("{} {}v{}", i.vrid, i.family, i.version),
            master,
            i.transitions.to_string(),
            last,
        ]);
    }
    out.push_str(&columns(&rows));

    for i in &r.instances {
        if !i.trackers.is_empty() {
            let _ = writeln!(out, "\n{} trackers:", i.name);
            let rows: Vec<Vec<String>> = i
                .trackers
                .iter()
                .map(|t| {
                    vec![
                        format!("  {}", t.kind),
                        t.name.clone(),
                        format!(
                            "weight {}{}",
                            t.weight,
                            if t.reverse { " reverse" } else { "" }
                        ),
                        t.status.clone(),
                        if t.failing { "FAILING" } else { "ok" }.to_owned(),
                    ]
                })
                .collect();
            out.push_str(&columns(&rows));
        }
        if !i.fault_reasons.is_empty() {
            let _ = writeln!(out, "{} in FAULT: {}", i.name, i.fault_reasons.join(", "));
        }
    }
    if !r.sync_groups.is_empty() {
        let _ = writeln!(out);
        for g in &r.sync_groups {
            let _ = writeln!(
                out,
                "sync group {}: {} ({})",
                g.name,
                g.state.as_deref().unwrap_or("changing"),
                g.members.join(", ")
            );
        }
    }
    let get = |n: &str| r.kernel.counters.get(n).copied().unwrap_or(0);
    let rejected: Vec<String> = r
        .kernel
        .counters
        .iter()
        .filter(|(n, v)| **v > 0 && !matches!(n.as_str(), "vrrp_packets" | "accepted"))
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    let _ = write!(
        out,
        "\nkernel: {} VRRP packets, {} adverts recorded",
        get("vrrp_packets"),
        get("accepted")
    );
    if rejected.is_empty() {
        let _ = writeln!(out);
    } else {
        let _ = writeln!(out, "; not recorded: {}", rejected.join(", "));
    }
    if r.reloads.count > 0 {
        let outcome = match (r.reloads.last_ok, &r.reloads.last_error) {
            (Some(false), Some(e)) => format!("failed: {e}"),
            (Some(false), None) => "failed".to_owned(),
            _ => "ok".to_owned(),
        };
        let _ = writeln!(out, "reloads: {}, last {outcome}", r.reloads.count);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A report of a backup and a master, for the renderers' tests.
    pub fn sample() -> DaemonReport {
        DaemonReport {
            version: "0.1.0".into(),
            pid: 4242,
            config_file: "/etc/keepalived/keepalived.conf".into(),
            router_id: Some("lb1".into()),
            started_unix: 1_796_070_000.0,
            uptime_s: 192.0,
            rt_priority: 40,
            instances: vec![
                InstanceReport {
                    name: "VI_1".into(),
                    interface: "eth0".into(),
                    vrid: 51,
                    family: "IPv4".into(),
                    version: 2,
                    state: "BACKUP".into(),
                    base_priority: 200,
                    effective_priority: 50,
                    advert_interval_s: 1.0,
                    unicast: false,
                    source_address: "192.0.2.1".into(),
                    vips: vec![VipReport {
                        address: "192.0.2.100/24".into(),
                        interface: "eth0".into(),
                        scope: "global".into(),
                        label: None,
                    }],
                    master: Some(MasterReport {
                        address: "192.0.2.2".into(),
                        priority: 100,
                        age_s: 0.42,
                        advert_interval_s: 1.0,
                    }),
                    trackers: vec![TrackerReport {
                        kind: "script".into(),
                        name: "chk".into(),
                        weight: -150,
                        reverse: false,
                        status: "down".into(),
                        failing: true,
                    }],
                    fault_reasons: vec![],
                    sync_group: None,
                    transitions: 3,
                    last_transition: Some(TransitionReport {
                        from: "MASTER".into(),
                        to: "BACKUP".into(),
                        reason: "higher priority advert".into(),
                        at_unix: 1_796_070_180.5,
                        ago_s: 11.5,
                    }),
                    become_master: 1,
                    release_master: 1,
                    adverts_sent: 120,
                    priority_zero_sent: 0,
                    adverts_received: 340,
                    priority_zero_received: 1,
                },
                InstanceReport {
                    name: "VI_2".into(),
                    interface: "eth1".into(),
                    vrid: 52,
                    family: "IPv6".into(),
                    version: 3,
                    state: "MASTER".into(),
                    base_priority: 100,
                    effective_priority: 100,
                    advert_interval_s: 0.5,
                    unicast: true,
                    source_address: "fe80::1".into(),
                    vips: vec![],
                    master: None,
                    trackers: vec![],
                    fault_reasons: vec![],
                    sync_group: Some("G".into()),
                    transitions: 1,
                    last_transition: None,
                    become_master: 1,
                    release_master: 0,
                    adverts_sent: 7,
                    priority_zero_sent: 0,
                    adverts_received: 0,
                    priority_zero_received: 0,
                },
            ],
            sync_groups: vec![GroupReport {
                name: "G".into(),
                members: vec!["VI_2".into()],
                state: Some("MASTER".into()),
            }],
            kernel: KernelReport {
                attachments: vec![AttachmentReport {
                    interface: "eth0".into(),
                    mode: "xdp native via libxdp dispatcher, priority 5, 1st of 2".into(),
                    hook: "libxdp".into(),
                    position: Some(1),
                    of: Some(2),
                }],
                blind: BlindReport {
                    episodes: 1,
                    missed_adverts: 7,
                    instances: vec!["VI_1".into()],
                },
                counters: [
                    ("vrrp_packets", 400),
                    ("accepted", 340),
                    ("bad_ttl", 3),
                    ("fragment", 0),
                ]
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v))
                .collect(),
            },
            reloads: ReloadReport::default(),
        }
    }

    #[test]
    fn summary_counts_states_in_keepalived_order() {
        let mut r = sample();
        assert_eq!(state_summary(&r), "1 MASTER, 1 BACKUP");
        r.instances[0].state = "MASTER".into();
        assert_eq!(state_summary(&r), "2 MASTER");
        r.instances.clear();
        assert_eq!(state_summary(&r), "no instances");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(0.42), "0.4s");
        assert_eq!(human_duration(42.0), "42s");
        assert_eq!(human_duration(192.0), "3m12s");
        assert_eq!(human_duration(7380.0), "2h03m");
        assert_eq!(human_duration(360_000.0), "4d04h");
    }

    #[test]
    fn table_shows_state_priorities_master_trackers_and_transitions() {
        let t = render_table(&sample());
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("xvrrpd 0.1.0, pid 4242, up 3m12s"),
            "{t}"
        );
        assert!(
            t.contains("SCHED_FIFO 40; recorder on eth0 xdp native via libxdp dispatcher, priority 5, 1st of 2"),
            "{t}"
        );
        assert!(t.contains("RECORDER BLIND for VI_1"), "{t}");
        assert!(
            t.contains("blind-recorder episodes: 1, adverts missed by the recorder: 7"),
            "{t}"
        );
        let row = lines
            .iter()
            .find(|l| l.starts_with("VI_1 "))
            .expect("a row for VI_1");
        for cell in [
            "BACKUP",
            "50 (base 200)",
            "51 IPv4v2",
            "192.0.2.2 prio 100, 0.4s ago",
            "11s ago MASTER->BACKUP: higher priority advert",
        ] {
            assert!(row.contains(cell), "{cell:?} not in {row:?}");
        }
        let row2 = lines.iter().find(|l| l.starts_with("VI_2 ")).unwrap();
        assert!(row2.contains("this node"), "{row2}");
        // Columns line up: each row's STATE starts where the header's does.
        let col = lines
            .iter()
            .find(|l| l.starts_with("INSTANCE"))
            .unwrap()
            .find("STATE");
        assert_eq!(row.find("BACKUP"), col);
        assert!(t.contains("VI_1 trackers:"), "{t}");
        assert!(
            t.lines().any(|l| l.contains("script")
                && l.contains("chk")
                && l.contains("weight -150")
                && l.ends_with("FAILING")),
            "{t}"
        );
        assert!(t.contains("sync group G: MASTER (VI_2)"), "{t}");
        assert!(
            t.contains("400 VRRP packets, 340 adverts recorded; not recorded: bad_ttl 3\n"),
            "{t}"
        );
    }
}
