//! keepalived's signal dumps, rendered from the [`DaemonReport`] and
//! written where keepalived writes them, so existing tooling keeps
//! working: SIGUSR1 → `keepalived.data`, SIGUSR2 → `keepalived.stats`
//! (SIGRTMAX-1: the same, then the counts start again from zero),
//! SIGRTMIN+2 → `keepalived.json`, all in `$TMPDIR` (if absolute) else `/tmp`.
//!
//! The layout is keepalived 2.2.7's (vrrp_data.c, vrrp_print.c,
//! vrrp_json.c) wherever the report has the data; what xvrrpd does not
//! have per instance (packet and authentication error counts: the XDP
//! recorder counts those per reason for the whole host) is left out rather
//! than printed as zero.

use std::{
    collections::HashMap,
    fmt::Write as _,
    io::Write as _,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use serde::Serialize;
use thiserror::Error;

use super::{localtime::LocalTime, metrics::state_number};
use crate::report::{DaemonReport, InstanceReport, TrackerReport};

pub const DATA_FILE: &str = "keepalived.data";
pub const STATS_FILE: &str = "keepalived.stats";
pub const JSON_FILE: &str = "keepalived.json";

#[derive(Debug, Error)]
pub enum DumpError {
    #[error("writing {}: {what}: {error}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        error: std::io::Error,
    },
}

/// keepalived's `tmp_dir`: `$TMPDIR` if it is absolute, else `/tmp`.
pub fn dump_dir() -> PathBuf {
    match std::env::var_os("TMPDIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        _ => PathBuf::from("/tmp"),
    }
}

/// Writes `contents` to `dir/name` as keepalived's `fopen_safe` does: into a
/// new 0600 file beside it, then renamed over the target, so nobody who
/// pre-created or holds the old file open can read the dump, and a symlink
/// planted there is replaced, not followed.
pub fn write_file(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, DumpError> {
    let path = dir.join(name);
    let io = |what, p: &Path| {
        let p = p.to_owned();
        move |source| DumpError::Io {
            path: p,
            what,
            error: source,
        }
    };
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = dir.join(format!("{name}.{}{nanos:09}{attempt}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => {
                attempt += 1;
            }
            Err(e) => return Err(io("creating a temporary file", &tmp)(e)),
        }
    };
    let written = file
        .write_all(contents.as_bytes())
        .map_err(io("write", &tmp))
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(io("rename", &path)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| path)
}

/// keepalived's "192.0.2.100/24 dev eth0 scope global", with " set" while the VIP is up.
fn vip_line(i: &InstanceReport, v: &crate::report::VipReport) -> String {
    let mut s = format!("{} dev {} scope {}", v.address, v.interface, v.scope);
    if let Some(label) = &v.label {
        let _ = write!(s, " label {label}");
    }
    if i.state == "MASTER" {
        s.push_str(" set");
    }
    s
}

fn seconds_and_stamp(unix: f64) -> String {
    format!("{unix:.6} ({})", LocalTime::from_unix(unix).ctime_us())
}

/// SIGUSR1: `keepalived.data`.
pub fn render_data(r: &DaemonReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "------< Global definitions >------");
    let _ = writeln!(o, " Daemon = xvrrpd {} (pid {})", r.version, r.pid);
    let _ = writeln!(o, " Configuration file = {}", r.config_file);
    if let Some(id) = &r.router_id {
        let _ = writeln!(o, " Router ID = {id}");
    }
    let _ = writeln!(o, " VRRP realtime priority = {}", r.rt_priority);
    let _ = writeln!(o, "------< VRRP Topology >------");
    for i in &r.instances {
        let _ = writeln!(o, " VRRP Instance = {}", i.name);
        let _ = writeln!(o, "   VRRP Version = {}", i.version);
        if let Some(g) = &i.sync_group {
            let _ = writeln!(o, "   Sync group = {g}");
        }
        if i.family == "IPv6" {
            let _ = writeln!(o, "   Using Native IPv6");
        }
        let _ = writeln!(o, "   State = {}", i.state);
        if i.state == "BACKUP" {
            if let Some(m) = &i.master {
                let _ = writeln!(o, "   Master router = {}", m.address);
                let _ = writeln!(o, "   Master priority = {}", m.priority);
                if i.version == 3 {
                    let _ = writeln!(o, "   Master advert int = {:.2} sec", m.advert_interval_s);
                }
            }
        }
        if i.unicast {
            let _ = writeln!(o, "   Flags:");
            let _ = writeln!(o, "     Using unicast");
        } else {
            let _ = writeln!(o, "   Flags: none");
        }
        let _ = writeln!(
            o,
            "   Number of interface and track script faults = {}",
            i.fault_reasons.len()
        );
        let last = i.last_transition.as_ref().map_or(0.0, |t| t.at_unix);
        let _ = writeln!(o, "   Last transition = {}", seconds_and_stamp(last));
        let _ = writeln!(o, "   Interface = {}", i.interface);
        let _ = writeln!(o, "   Using src_ip = {}", i.source_address);
        let _ = writeln!(o, "   Virtual Router ID = {}", i.vrid);
        let _ = writeln!(o, "   Priority = {}", i.base_priority);
        let _ = writeln!(o, "   Effective priority = {}", i.effective_priority);
        if i.version == 2 {
            let _ = writeln!(
                o,
                "   Advert interval = {} sec",
                i.advert_interval_s.round() as u64
            );
        } else {
            let _ = writeln!(
                o,
                "   Advert interval = {} milli-sec",
                (i.advert_interval_s * 1000.0).round() as u64
            );
        }
        if !i.vips.is_empty() {
            let _ = writeln!(o, "   Virtual IP ({}):", i.vips.len());
            for v in &i.vips {
                let _ = writeln!(o, "     {}", vip_line(i, v));
            }
        }
        for (kind, heading) in [
            ("interface", "Tracked interfaces :"),
            ("script", "Tracked scripts :"),
            ("file", "Tracked files :"),
            ("process", "Tracked processes :"),
        ] {
            let tracked: Vec<_> = i.trackers.iter().filter(|t| t.kind == kind).collect();
            if tracked.is_empty() {
                continue;
            }
            let _ = writeln!(o, "   {heading}");
            for t in tracked {
                let _ = writeln!(
                    o,
                    "     {} weight {}{}",
                    t.name,
                    t.weight,
                    if t.reverse { " reverse" } else { "" }
                );
            }
        }
        if !i.fault_reasons.is_empty() {
            let _ = writeln!(o, "   Fault reasons = {}", i.fault_reasons.join(", "));
        }
    }
    if !r.sync_groups.is_empty() {
        let _ = writeln!(o, "------< VRRP Sync groups >------");
        for g in &r.sync_groups {
            let _ = writeln!(
                o,
                " VRRP Sync Group = {}, {}",
                g.name,
                g.state.as_deref().unwrap_or("(changing)")
            );
            let _ = writeln!(o, "   VRRP member instances :");
            for m in &g.members {
                let _ = writeln!(o, "     {m}");
            }
        }
    }
    // One entry per script, with every instance that tracks it (keepalived's shape).
    struct Script<'a> {
        name: &'a str,
        status: &'a str,
        users: Vec<(&'a str, &'a TrackerReport)>,
    }
    let mut scripts: Vec<Script> = Vec::new();
    for i in &r.instances {
        for t in i.trackers.iter().filter(|t| t.kind == "script") {
            match scripts.iter_mut().find(|s| s.name == t.name) {
                Some(s) => s.users.push((&i.name, t)),
                None => scripts.push(Script {
                    name: &t.name,
                    status: &t.status,
                    users: vec![(&i.name, t)],
                }),
            }
        }
    }
    if !scripts.is_empty() {
        let _ = writeln!(o, "------< VRRP Scripts >------");
        for s in scripts {
            let _ = writeln!(o, " VRRP Script = {}", s.name);
            // keepalived: GOOD once the script has succeeded `rise` times.
            let good = if s.status == "up" { "GOOD" } else { "BAD" };
            let _ = writeln!(o, "   Status = {good}");
            let _ = writeln!(o, "   Tracking instances :");
            for (inst, t) in s.users {
                let reverse = if t.reverse { " reverse" } else { "" };
                let _ = writeln!(o, "     {inst}, weight {}{reverse}", t.weight);
            }
        }
    }
    let _ = writeln!(o, "------< XDP recorder >------");
    for a in &r.kernel.attachments {
        let _ = writeln!(o, " Interface {} = {}", a.interface, a.mode);
    }
    for (name, value) in &r.kernel.counters {
        let _ = writeln!(o, "   {name} = {value}");
    }
    o
}

/// What `keepalived.stats` counts per instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsCounts {
    pub advert_rcvd: u64,
    pub advert_sent: u64,
    pub become_master: u64,
    pub release_master: u64,
    pub pri_zero_rcvd: u64,
    pub pri_zero_sent: u64,
}

impl StatsCounts {
    fn of(i: &InstanceReport) -> Self {
        StatsCounts {
            advert_rcvd: i.adverts_received,
            advert_sent: i.adverts_sent,
            become_master: i.become_master,
            release_master: i.release_master,
            pri_zero_rcvd: i.priority_zero_received,
            pri_zero_sent: i.priority_zero_sent,
        }
    }

    fn since(self, base: StatsCounts) -> Self {
        StatsCounts {
            advert_rcvd: self.advert_rcvd.saturating_sub(base.advert_rcvd),
            advert_sent: self.advert_sent.saturating_sub(base.advert_sent),
            become_master: self.become_master.saturating_sub(base.become_master),
            release_master: self.release_master.saturating_sub(base.release_master),
            pri_zero_rcvd: self.pri_zero_rcvd.saturating_sub(base.pri_zero_rcvd),
            pri_zero_sent: self.pri_zero_sent.saturating_sub(base.pri_zero_sent),
        }
    }
}

/// Remembers where SIGRTMAX-1 ("stats clear") last left the counts: the
/// stats dumps count from there, while the daemon's own counters (status,
/// metrics) keep counting, as Prometheus counters must.
#[derive(Debug, Default)]
pub struct StatsBaseline {
    cleared: HashMap<String, StatsCounts>,
}

impl StatsBaseline {
    pub fn counts(&self, i: &InstanceReport) -> StatsCounts {
        StatsCounts::of(i).since(self.cleared.get(&i.name).copied().unwrap_or_default())
    }

    pub fn clear(&mut self, r: &DaemonReport) {
        self.cleared = r
            .instances
            .iter()
            .map(|i| (i.name.clone(), StatsCounts::of(i)))
            .collect();
    }
}

/// SIGUSR2: `keepalived.stats`.
pub fn render_stats(r: &DaemonReport, baseline: &StatsBaseline) -> String {
    let mut o = String::new();
    for i in &r.instances {
        let c = baseline.counts(i);
        let _ = writeln!(o, "VRRP Instance: {}", i.name);
        let _ = writeln!(o, "  Advertisements:");
        let _ = writeln!(o, "    Received: {}", c.advert_rcvd);
        let _ = writeln!(o, "    Sent: {}", c.advert_sent);
        let _ = writeln!(o, "  Became master: {}", c.become_master);
        let _ = writeln!(o, "  Released master: {}", c.release_master);
        let _ = writeln!(o, "  Priority Zero:");
        let _ = writeln!(o, "    Received: {}", c.pri_zero_rcvd);
        let _ = writeln!(o, "    Sent: {}", c.pri_zero_sent);
    }
    o
}

#[derive(Serialize)]
struct JsonInstance {
    data: JsonData,
    stats: JsonStats,
}

/// Field names and order as keepalived's vrrp_json.c writes them.
#[derive(Serialize)]
struct JsonData {
    iname: String,
    ifp_ifname: String,
    master_priority: u8,
    last_transition: f64,
    vrid: u8,
    base_priority: u8,
    effective_priority: u8,
    vipset: bool,
    adver_int: f64,
    master_adver_int: f64,
    state: u8,
    version: u8,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vips: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    track_ifp: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    track_script: Vec<String>,
}

#[derive(Serialize)]
struct JsonStats {
    advert_rcvd: u64,
    advert_sent: u64,
    become_master: u64,
    release_master: u64,
    pri_zero_rcvd: u64,
    pri_zero_sent: u64,
}

/// SIGRTMIN+2: `keepalived.json`. Its counters count from the start
/// (SIGRTMAX-1 only restarts the stats dump's; keepalived's clears both).
pub fn render_json(r: &DaemonReport) -> String {
    let list: Vec<JsonInstance> = r
        .instances
        .iter()
        .map(|i| JsonInstance {
            data: JsonData {
                iname: i.name.clone(),
                ifp_ifname: i.interface.clone(),
                master_priority: i.master.as_ref().map_or(0, |m| m.priority),
                last_transition: i.last_transition.as_ref().map_or(0.0, |t| t.at_unix),
                vrid: i.vrid,
                base_priority: i.base_priority,
                effective_priority: i.effective_priority,
                vipset: i.state == "MASTER",
                adver_int: i.advert_interval_s,
                master_adver_int: i
                    .master
                    .as_ref()
                    .map_or(i.advert_interval_s, |m| m.advert_interval_s),
                state: state_number(&i.state).unwrap_or(0),
                version: i.version,
                vips: i.vips.iter().map(|v| vip_line(i, v)).collect(),
                track_ifp: i
                    .trackers
                    .iter()
                    .filter(|t| t.kind == "interface")
                    .map(|t| t.name.clone())
                    .collect(),
                track_script: i
                    .trackers
                    .iter()
                    .filter(|t| t.kind == "script")
                    .map(|t| t.name.clone())
                    .collect(),
            },
            stats: JsonStats {
                advert_rcvd: i.adverts_received,
                advert_sent: i.adverts_sent,
                become_master: i.become_master,
                release_master: i.release_master,
                pri_zero_rcvd: i.priority_zero_received,
                pri_zero_sent: i.priority_zero_sent,
            },
        })
        .collect();
    let mut s = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn data_dump_has_keepalived_lines() {
        let d = render_data(&sample());
        for want in [
            "------< VRRP Topology >------\n VRRP Instance = VI_1\n   VRRP Version = 2\n   State = BACKUP\n   Master router = 192.0.2.2\n   Master priority = 100\n   Flags: none\n",
            "   Interface = eth0\n   Using src_ip = 192.0.2.1\n   Virtual Router ID = 51\n   Priority = 200\n   Effective priority = 50\n   Advert interval = 1 sec\n   Virtual IP (1):\n     192.0.2.100/24 dev eth0 scope global\n   Tracked scripts :\n     chk weight -150\n",
            " VRRP Instance = VI_2\n   VRRP Version = 3\n   Sync group = G\n   Using Native IPv6\n   State = MASTER\n   Flags:\n     Using unicast\n",
            "   Advert interval = 500 milli-sec\n",
            "------< VRRP Sync groups >------\n VRRP Sync Group = G, MASTER\n   VRRP member instances :\n     VI_2\n",
            "------< VRRP Scripts >------\n VRRP Script = chk\n   Status = BAD\n   Tracking instances :\n     VI_1, weight -150\n",
            " Router ID = lb1\n",
            "   bad_ttl = 3\n",
        ] {
            assert!(d.contains(want), "{want:?} missing from\n{d}");
        }
        let last = d
            .lines()
            .find(|l| l.starts_with("   Last transition = 1796070180.500000 ("))
            .unwrap();
        assert!(last.ends_with(")"), "{last}");
    }

    #[test]
    fn stats_dump_counts_from_the_last_clear() {
        let mut r = sample();
        let mut base = StatsBaseline::default();
        let s = render_stats(&r, &base);
        assert!(s.starts_with(
            "VRRP Instance: VI_1\n  Advertisements:\n    Received: 340\n    Sent: 120\n  Became master: 1\n  Released master: 1\n  Priority Zero:\n    Received: 1\n    Sent: 0\nVRRP Instance: VI_2\n"
        ), "{s}");
        base.clear(&r);
        r.instances[0].adverts_received += 5;
        let s = render_stats(&r, &base);
        assert!(
            s.contains("VRRP Instance: VI_1\n  Advertisements:\n    Received: 5\n    Sent: 0\n"),
            "{s}"
        );
    }

    #[test]
    fn json_dump_has_keepalived_fields() {
        let v: serde_json::Value = serde_json::from_str(&render_json(&sample())).unwrap();
        let d = &v[0]["data"];
        assert_eq!(d["iname"], "VI_1");
        assert_eq!(d["ifp_ifname"], "eth0");
        assert_eq!(d["state"], 1);
        assert_eq!(d["vrid"], 51);
        assert_eq!(d["master_priority"], 100);
        assert_eq!(d["effective_priority"], 50);
        assert_eq!(d["vips"][0], "192.0.2.100/24 dev eth0 scope global");
        assert_eq!(d["track_script"][0], "chk");
        assert_eq!(v[0]["stats"]["advert_rcvd"], 340);
        assert_eq!(v[1]["data"]["state"], 2);
        assert_eq!(v[1]["data"]["vipset"], true);
        assert!(v[1]["data"].get("vips").is_none());
    }

    #[test]
    fn files_are_private_and_replace_what_was_there() {
        let dir = std::env::temp_dir().join(format!("xvrrpd-dump-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A symlink planted at the target is replaced, never written through.
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(DATA_FILE)).unwrap();
        let p = write_file(&dir, DATA_FILE, "dump\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "dump\n");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            2,
            "no temporary file left"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
