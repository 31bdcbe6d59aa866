//! `cargo xtask bench` (second part): takeover time after `kill -9` of the
//! master, as the excess over Master_Down_Interval, for xvrrpd and for
//! keepalived measured in the same run.
//!
//! Each trial runs a pair of the same implementation on a bridged segment:
//! node 0 (192.0.2.1) at priority 200, node 1 (192.0.2.2) at priority 100.
//! An AF_PACKET socket in the observer namespace time-stamps every advert in
//! the kernel (SO_TIMESTAMPNS). Once node 0 holds the VIP and node 1 is a
//! steady backup, node 0 is killed with SIGKILL (every process of it, so
//! keepalived's VRRP child dies without sending priority 0). Then
//!
//!   takeover = first advert from 192.0.2.2 − last advert from 192.0.2.1
//!   excess   = takeover − Master_Down_Interval(priority 100)
//!
//! Master_Down_Interval counts from the master's last advert, so the excess
//! is what the backup adds: timer slack, scheduling, the send path.

use std::{
    net::Ipv4Addr,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use tests::{
    capture::{realtime_ns, Advert, Capture},
    descendants,
    vrrp_lab::{instance_config_with, Impl, Lab, VIP},
    Proc,
};

const OLD: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const NEW: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const MASTER_PRIORITY: u8 = 200;
const BACKUP_PRIORITY: u8 = 100;
const GOAL: Duration = Duration::from_millis(5);

// ---------------------------------------------------------------------------
// Settings and implementations

#[derive(Clone, Copy)]
struct Setting {
    label: &'static str,
    version: u8,
    /// advert_int in centiseconds.
    interval_cs: u32,
}

impl Setting {
    fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_cs as u64 * 10)
    }

    /// RFC 5798 / RFC 3768: 3 × interval + Skew_Time, Skew_Time = (256 − priority) × interval / 256.
    fn mdi(&self, priority: u8) -> Duration {
        let i = self.interval();
        i * 3 + i * (256 - priority as u32) / 256
    }

    fn advert_int(&self) -> String {
        if self.interval_cs.is_multiple_of(100) {
            format!("{}", self.interval_cs / 100)
        } else {
            format!("{}", self.interval_cs as f64 / 100.0)
        }
    }

    fn config(&self, priority: u8) -> String {
        instance_config_with(priority, &self.advert_int(), self.version, "")
    }
}

const SETTINGS: [Setting; 2] = [
    Setting {
        label: "v2 advert_int 1",
        version: 2,
        interval_cs: 100,
    },
    Setting {
        label: "v3 advert_int 0.05",
        version: 3,
        interval_cs: 5,
    },
];

// ---------------------------------------------------------------------------
// Processes

/// `kill -9` of a whole daemon: the parent is stopped first so it cannot
/// respawn or signal a child, then every process dies by SIGKILL. Nothing of
/// it runs a shutdown path (keepalived's VRRP child would send priority 0 if
/// it saw its parent go first).
fn kill9(p: &mut Proc) {
    let pid = p.pid();
    if let Ok(Some(_)) = p.child.try_wait() {
        return;
    }
    // SAFETY: kill has no memory preconditions; pids are our children or theirs.
    unsafe {
        libc::kill(pid, libc::SIGSTOP);
        for d in descendants(pid) {
            libc::kill(d, libc::SIGKILL);
        }
        libc::kill(pid, libc::SIGKILL);
    }
    let _ = p.child.wait();
}

fn netns_pids(ns: &str) -> Vec<i32> {
    std::process::Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills whatever still runs on the nodes and removes the VIP a killed daemon left.
fn reset(lab: &Lab) {
    for n in &lab.nodes {
        for pid in netns_pids(&n.ns.name) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    tests::wait_until(Duration::from_secs(3), Duration::from_millis(20), || {
        lab.nodes.iter().all(|n| netns_pids(&n.ns.name).is_empty())
    });
    // (Stale keepalived pid files are removed by `tests::keepalived`.)
    for n in &lab.nodes {
        let _ =
            n.ns.ip(&["addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
    }
}

// ---------------------------------------------------------------------------
// One trial

struct Sample {
    takeover: Duration,
    excess_ns: i64,
    /// When, after the last advert, the kill happened.
    kill_phase: Duration,
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

fn log_tail(p: &Proc, lines: usize) -> String {
    let text = p.log_text();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn random_below(limit: Duration) -> Duration {
    let mut r = 0u64;
    // SAFETY: r is a valid 8-byte buffer.
    unsafe { libc::getrandom(&mut r as *mut u64 as *mut libc::c_void, 8, 0) };
    Duration::from_nanos(r % limit.as_nanos().max(1) as u64)
}

/// Both daemons log keepalived's words.
fn backup_ready_marker(_imp: Impl) -> &'static str {
    "Entering BACKUP STATE"
}

fn trial(lab: &Lab, cap: &Capture, imp: Impl, s: &Setting) -> Result<Sample> {
    let mdi = s.mdi(BACKUP_PRIORITY);
    let mut master = lab.start(0, imp, &s.config(MASTER_PRIORITY))?;
    if !lab.wait_holder(0, s.mdi(MASTER_PRIORITY) + Duration::from_secs(5)) {
        bail!(
            "node 0 did not become master: holders {:?}\n{}",
            lab.holders(VIP),
            log_tail(&master, 20)
        );
    }
    let backup_started = realtime_ns();
    let t0 = Instant::now();
    let mut backup = lab.start(1, imp, &s.config(BACKUP_PRIORITY))?;
    // Steady backup: its log says Backup, ≥ 3 adverts from node 0 since then,
    // at least 1 s since start, node 0 the only holder, and node 1 silent.
    let marker = backup_ready_marker(imp);
    let settle = Duration::from_secs(1).max(s.interval() * 3);
    let mut marked_at: Option<i64> = None;
    let steady = tests::wait_until(
        settle + s.interval() * 6 + Duration::from_secs(5),
        Duration::from_millis(10),
        || {
            if marked_at.is_none() && backup.log_text().contains(marker) {
                marked_at = Some(realtime_ns());
            }
            let Some(m) = marked_at else { return false };
            let since = cap.since(m);
            since.iter().filter(|a| a.src == OLD).count() >= 3 && t0.elapsed() >= settle
        },
    );
    if !steady {
        bail!(
            "node 1 did not settle as backup (marker {marker:?} seen: {})\nnode 1 log:\n{}",
            marked_at.is_some(),
            log_tail(&backup, 20)
        );
    }
    let noisy: Vec<Advert> = cap
        .since(backup_started)
        .into_iter()
        .filter(|a| a.src == NEW)
        .collect();
    if !noisy.is_empty() || lab.holders(VIP) != vec![0] {
        bail!(
            "not a steady state before the kill: {} adverts from node 1 (first {:?}), holders {:?}\nnode 1 log:\n{}",
            noisy.len(),
            noisy.first(),
            lab.holders(VIP),
            log_tail(&backup, 20)
        );
    }

    // Kill at a uniformly random phase of the advert interval (the steady
    // check above returns just after an advert arrived).
    thread::sleep(random_below(s.interval()));
    let killed = realtime_ns();
    kill9(&mut master);
    let _ = lab.nodes[0]
        .ns
        .ip(&["addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
    let limit = mdi * 3 + Duration::from_secs(2);
    let mut first_new = None;
    tests::wait_until(limit, Duration::from_millis(5), || {
        first_new = cap.since(killed).into_iter().find(|a| a.src == NEW);
        first_new.is_some()
    });
    let Some(first_new) = first_new else {
        bail!(
            "no advert from node 1 within {limit:?} of the kill\nnode 1 log:\n{}",
            log_tail(&backup, 20)
        );
    };
    if let Some(a) = cap
        .since(backup_started)
        .into_iter()
        .find(|a| a.src == NEW && a.ts < killed)
    {
        bail!(
            "node 1 advertised before the kill: {a:?}\nnode 1 log:\n{}",
            log_tail(&backup, 20)
        );
    }
    let last_old = cap
        .since(backup_started)
        .into_iter()
        .rfind(|a| a.src == OLD && a.ts <= first_new.ts)
        .context("no advert from node 0 before the takeover")?;
    if last_old.priority != MASTER_PRIORITY {
        bail!(
            "node 0's last advert had priority {} (not a crash); node 0 log:\n{}",
            last_old.priority,
            log_tail(&master, 10)
        );
    }
    if first_new.priority != BACKUP_PRIORITY || first_new.vrid != 51 {
        bail!("unexpected first advert from node 1: {first_new:?}");
    }
    // Let the new master run a little (catches a flapping backup), then stop it.
    thread::sleep(s.interval() * 3);
    let late_old: Vec<Advert> = cap
        .since(killed)
        .into_iter()
        .filter(|a| a.src == OLD)
        .collect();
    kill9(&mut backup);
    if late_old.iter().any(|a| a.ts > first_new.ts) {
        bail!("node 0 advertised after node 1 took over: {late_old:?}");
    }
    let takeover_ns = first_new.ts - last_old.ts;
    Ok(Sample {
        takeover: Duration::from_nanos(takeover_ns.max(0) as u64),
        excess_ns: takeover_ns - mdi.as_nanos() as i64,
        kill_phase: Duration::from_nanos((killed - last_old.ts).max(0) as u64),
    })
}

// ---------------------------------------------------------------------------

struct Row {
    imp: Impl,
    setting: Setting,
    excess_ns: Vec<i64>,
    failures: Vec<String>,
    trials: usize,
}

impl Row {
    fn median(&self) -> Option<i64> {
        tests::median(&self.excess_ns)
    }

    fn worst(&self) -> Option<i64> {
        self.excess_ns.iter().copied().max()
    }
}

fn fmt_ms(v: Option<i64>) -> String {
    v.map(|ns| format!("{:+.3} ms", ms(ns)))
        .unwrap_or_else(|| "-".to_owned())
}

fn main() -> Result<()> {
    let trials = tests::trials_arg("takeover", 10)?;
    let bin = tests::bench_preflight("takeover")?;
    println!(
        "takeover after kill -9 of the master: {trials} trials per row, xvrrpd = {}",
        bin.display()
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    for s in SETTINGS {
        let lab = Lab::new(2)?;
        let cap = Capture::start(&lab.observer.ns.name, "eth0")?;
        for imp in [Impl::Xvrrpd, Impl::Keepalived] {
            let mut row = Row {
                imp,
                setting: s,
                excess_ns: Vec::new(),
                failures: Vec::new(),
                trials,
            };
            for t in 1..=trials {
                let r = trial(&lab, &cap, imp, &s);
                reset(&lab);
                match r {
                    Ok(x) => {
                        println!(
                            "  {:<10} {:<18} trial {t:>2}: takeover {:>10.3} ms, excess {:+8.3} ms (killed {:.0} ms after the last advert)",
                            imp.name(),
                            s.label,
                            x.takeover.as_secs_f64() * 1e3,
                            ms(x.excess_ns),
                            x.kill_phase.as_secs_f64() * 1e3,
                        );
                        row.excess_ns.push(x.excess_ns);
                    }
                    Err(e) => {
                        println!(
                            "  {:<10} {:<18} trial {t:>2}: FAILED: {e:#}",
                            imp.name(),
                            s.label
                        );
                        row.failures.push(format!("{e:#}"));
                    }
                }
            }
            rows.push(row);
        }
        drop(cap);
        for n in &lab.nodes {
            xvrrpd::bpf::pin::remove_dir(&xvrrpd::bpf::pin::root().join(&n.ns.name));
        }
    }

    println!();
    println!(
        "{:<11} {:<19} {:>12} {:>14} {:>14} {:>7}",
        "impl", "setting", "MDI", "median excess", "worst excess", "trials"
    );
    for r in &rows {
        println!(
            "{:<11} {:<19} {:>9.3} ms {:>14} {:>14} {:>7}",
            r.imp.name(),
            r.setting.label,
            r.setting.mdi(BACKUP_PRIORITY).as_secs_f64() * 1e3,
            fmt_ms(r.median()),
            fmt_ms(r.worst()),
            format!("{}/{}", r.excess_ns.len(), r.trials),
        );
    }
    for s in SETTINGS {
        let find = |imp| {
            rows.iter()
                .find(|r| r.imp == imp && r.setting.label == s.label)
        };
        let (x, k) = (
            find(Impl::Xvrrpd).and_then(Row::median),
            find(Impl::Keepalived).and_then(Row::median),
        );
        let ratio = match (x, k) {
            (Some(x), Some(k)) if k > 0 => format!("{:.3}", x as f64 / k as f64),
            (Some(_), Some(k)) => {
                format!("n/a (keepalived median {:+.3} ms is not positive)", ms(k))
            }
            _ => "n/a (no successful trials)".to_owned(),
        };
        println!(
            "ratio xvrrpd/keepalived of median excess, {}: {ratio}",
            s.label
        );
    }
    let goal_ns = GOAL.as_nanos() as i64;
    let verdicts: Vec<String> = rows
        .iter()
        .filter(|r| r.imp == Impl::Xvrrpd)
        .map(|r| {
            let met = r.failures.is_empty() && r.worst().is_some_and(|w| w < goal_ns);
            format!(
                "{} {}",
                r.setting.label,
                if met { "met" } else { "NOT met" }
            )
        })
        .collect();
    println!(
        "goal: worst excess under 5 ms (xvrrpd: {})",
        verdicts.join(", ")
    );
    for r in rows.iter().filter(|r| !r.failures.is_empty()) {
        println!(
            "{} {}: {} failed trial(s); first: {}",
            r.imp.name(),
            r.setting.label,
            r.failures.len(),
            r.failures[0].lines().next().unwrap_or("")
        );
    }
    println!("({:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
}
