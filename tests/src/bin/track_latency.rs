//! `cargo xtask bench` (third part): how long each tracker kind takes to move
//! the VIP from the master to its peer, for xvrrpd and for keepalived measured
//! in the same run.
//!
//! Each trial builds a fresh lab with a pair of the same implementation:
//! node 0 (192.0.2.1) at priority 200 with the tracker, node 1 (192.0.2.2) at
//! priority 100, VRRPv2, advert_int 1. Once node 0 has held the VIP alone for
//! 2 s, the test waits a random fraction of a second (so the fault falls at a
//! random phase of the check and advert intervals) and causes the fault:
//!
//!   script (weight 0)      remove the file the script tests (FAULT)
//!   script (weight -150)   the same, but the priority drops to 50 (no FAULT)
//!   track_process          SIGKILL of the tracked process (FAULT)
//!   track_interface        `ip link set uplink0 down` (FAULT)
//!   track_file             the file becomes `-254` (FAULT)
//!
//!   latency = (node 1 holds the VIP, node 0 no longer does) − (fault caused)
//!
//! polled every 5 ms with `ip addr`. FAULT makes the master send priority 0,
//! so the peer takes over after Skew_Time (0.61 s at priority 100); a
//! priority drop is ignored by the peer (its own priority is higher), which
//! waits out Master_Down_Interval (3.61 s) from the last priority-200 advert.

use std::{
    fs,
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use tests::{
    vrrp_lab::{instance_config, Impl, Lab, VIP},
    Proc,
};

const MASTER_PRIORITY: u8 = 200;
const BACKUP_PRIORITY: u8 = 100;
const ADVERT_INT: Duration = Duration::from_secs(1);
const STEADY: Duration = Duration::from_secs(2);
const GIVE_UP: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(5);

static NEXT_NAME: AtomicU32 = AtomicU32::new(0);

// ---------------------------------------------------------------------------
// Scenarios

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    ScriptFault,
    ScriptDrop,
    Process,
    Interface,
    File,
}

#[derive(Clone, Copy)]
struct Scenario {
    label: &'static str,
    kind: Kind,
}

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        label: "script (weight 0)",
        kind: Kind::ScriptFault,
    },
    Scenario {
        label: "script (weight -150)",
        kind: Kind::ScriptDrop,
    },
    Scenario {
        label: "track_process",
        kind: Kind::Process,
    },
    Scenario {
        label: "track_interface",
        kind: Kind::Interface,
    },
    Scenario {
        label: "track_file (-254)",
        kind: Kind::File,
    },
];

/// RFC 3768: 3 × Advertisement_Interval + Skew_Time, Skew_Time = (256 − priority) / 256 s.
fn master_down_interval(priority: u8) -> Duration {
    ADVERT_INT * 3 + ADVERT_INT * (256 - priority as u32) / 256
}

impl Scenario {
    /// How often the tracker is polled; None when it is event-driven.
    fn check_interval(&self) -> Option<Duration> {
        match self.kind {
            Kind::ScriptFault | Kind::ScriptDrop => Some(Duration::from_secs(1)),
            Kind::Process | Kind::Interface | Kind::File => None,
        }
    }

    /// Check interval + advert interval; for the priority drop, check
    /// interval + Master_Down_Interval, since the peer ignores the lower
    /// priority adverts and waits for the master to look dead.
    fn budget(&self) -> Duration {
        let check = self.check_interval().unwrap_or(Duration::ZERO);
        match self.kind {
            Kind::ScriptDrop => check + master_down_interval(BACKUP_PRIORITY),
            _ => check + ADVERT_INT,
        }
    }
}

/// What the test does to the tracked thing.
enum Fault {
    RemoveFile(PathBuf),
    Kill(Proc),
    LinkDown,
    /// Atomically replaces `file` with `tmp`, already written.
    Replace {
        tmp: PathBuf,
        file: PathBuf,
    },
}

impl Fault {
    fn cause(&mut self, lab: &Lab) -> Result<()> {
        match self {
            Fault::RemoveFile(p) => fs::remove_file(p).context("removing the checked file")?,
            Fault::Kill(p) => {
                p.child.kill().context("killing the tracked process")?;
                p.child.wait()?;
            }
            Fault::LinkDown => {
                lab.nodes[0].ns.ip(&["link", "set", "uplink0", "down"])?;
            }
            Fault::Replace { tmp, file } => fs::rename(tmp, file).context("replacing the file")?,
        }
        Ok(())
    }
}

/// Sets up node 0's tracked object; returns node 0's configuration and the fault.
fn prepare(kind: Kind, lab: &Lab) -> Result<(String, Fault)> {
    Ok(match kind {
        Kind::ScriptFault | Kind::ScriptDrop => {
            let ok = lab.dir.path("ok");
            fs::write(&ok, "")?;
            let chk = tests::write_script(
                &lab.dir.path("chk.sh"),
                &format!("[ -e {} ] && exit 0\nexit 1", ok.display()),
            )?;
            let weight = if kind == Kind::ScriptFault { 0 } else { -150 };
            let config = format!(
                "vrrp_script chk {{\n  script \"{}\"\n  interval 1\n  weight {weight}\n  fall 1\n  rise 1\n}}\n{}",
                chk.display(),
                instance_config(MASTER_PRIORITY, "track_script {\n        chk\n    }")
            );
            (config, Fault::RemoveFile(ok))
        }
        Kind::Process => {
            // A private copy of sleep gives a comm nothing else on the host has.
            let name = format!(
                "xvl{}t{}",
                std::process::id() % 100_000,
                NEXT_NAME.fetch_add(1, Ordering::Relaxed)
            );
            let bin = lab.dir.path(&name);
            fs::copy("/bin/sleep", &bin)?;
            let ns = &lab.nodes[0].ns;
            let mut cmd = ns.command(&bin);
            cmd.arg("600");
            let service = ns.spawn(cmd, &lab.dir.path("svc.log"))?;
            let config = format!(
                "vrrp_track_process svc {{\n  process {name}\n  quorum 1\n  weight 0\n}}\n{}",
                instance_config(MASTER_PRIORITY, "track_process {\n        svc\n    }")
            );
            (config, Fault::Kill(service))
        }
        Kind::Interface => {
            // A veth pair inside the node (no dummy module on every kernel).
            let ns = &lab.nodes[0].ns;
            ns.ip(&[
                "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink0p",
            ])?;
            ns.ip(&["link", "set", "uplink0p", "up"])?;
            ns.ip(&["link", "set", "uplink0", "up"])?;
            let config =
                instance_config(MASTER_PRIORITY, "track_interface {\n        uplink0\n    }");
            (config, Fault::LinkDown)
        }
        Kind::File => {
            let file = lab.dir.path("weight");
            fs::write(&file, "0\n")?;
            let tmp = lab.dir.path("weight.new");
            fs::write(&tmp, "-254\n")?;
            let config = format!(
                "vrrp_track_file tf {{\n  file \"{}\"\n  weight 1\n}}\n{}",
                file.display(),
                instance_config(MASTER_PRIORITY, "track_file {\n        tf\n    }")
            );
            (config, Fault::Replace { tmp, file })
        }
    })
}

// ---------------------------------------------------------------------------
// One trial

fn log_tail(p: &Proc, lines: usize) -> String {
    let text = p.log_text();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn logs(a: &Proc, b: &Proc) -> String {
    format!(
        "node 0 log:\n{}\nnode 1 log:\n{}",
        log_tail(a, 15),
        log_tail(b, 15)
    )
}

fn random_below(limit: Duration) -> Duration {
    let mut r = 0u64;
    // SAFETY: r is a valid 8-byte buffer.
    unsafe { libc::getrandom(&mut r as *mut u64 as *mut libc::c_void, 8, 0) };
    Duration::from_nanos(r % limit.as_nanos().max(1) as u64)
}

/// A tracker the implementation cannot run in this lab.
#[derive(Debug)]
struct Unsupported(&'static str);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unsupported here: {}", self.0)
    }
}

impl std::error::Error for Unsupported {}

/// keepalived's track_process listens to the kernel's process events
/// connector, which exists in the initial network namespace only: in a lab
/// node it logs this, counts no process and stays in FAULT.
fn unsupported(imp: Impl, p: &Proc) -> Option<&'static str> {
    (imp == Impl::Keepalived && p.log_text().contains("Failed to set/clear process event listen"))
        .then_some(
            "keepalived's track_process needs the proc connector, which only the initial network namespace has",
        )
}

fn trial(imp: Impl, sc: &Scenario) -> Result<Duration> {
    let lab = Lab::new(2)?;
    let (config, mut fault) = prepare(sc.kind, &lab)?;
    let a = lab.start(0, imp, &config)?;
    let b = lab.start(1, imp, &instance_config(BACKUP_PRIORITY, ""))?;
    let started = tests::wait_until(
        master_down_interval(MASTER_PRIORITY) + Duration::from_secs(7),
        Duration::from_millis(10),
        || lab.holders(VIP) == vec![0] || unsupported(imp, &a).is_some(),
    );
    if let Some(why) = unsupported(imp, &a) {
        return Err(Unsupported(why).into());
    }
    if !started {
        bail!(
            "node 0 did not become the only holder: holders {:?}\n{}",
            lab.holders(VIP),
            logs(&a, &b)
        );
    }
    if let Err(e) = lab.steady(0, STEADY) {
        bail!("node 0 not steady before the fault: {e}\n{}", logs(&a, &b));
    }
    // A random phase of the check and advert intervals.
    thread::sleep(random_below(Duration::from_secs(1)));
    let node1 = &lab.nodes[1].ns;
    let t0 = Instant::now();
    fault.cause(&lab)?;
    let moved = tests::wait_until(GIVE_UP, POLL, || {
        node1.has_address("eth0", VIP) && lab.holders(VIP) == vec![1]
    });
    let latency = t0.elapsed();
    if !moved {
        bail!(
            "the VIP did not move to node 1 within {GIVE_UP:?}: holders {:?}\n{}",
            lab.holders(VIP),
            logs(&a, &b)
        );
    }
    Ok(latency)
}

// ---------------------------------------------------------------------------

struct Row {
    scenario: Scenario,
    imp: Impl,
    samples: Vec<Duration>,
    failures: Vec<String>,
    unsupported: Option<String>,
    trials: usize,
}

impl Row {
    fn median(&self) -> Option<Duration> {
        let ns: Vec<i64> = self.samples.iter().map(|d| d.as_nanos() as i64).collect();
        tests::median(&ns).map(|n| Duration::from_nanos(n as u64))
    }

    fn worst(&self) -> Option<Duration> {
        self.samples.iter().copied().max()
    }
}

fn fmt_s(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.3} s", d.as_secs_f64()))
        .unwrap_or_else(|| "-".to_owned())
}

fn main() -> Result<()> {
    let trials = tests::trials_arg("track_latency", 3)?;
    let bin = tests::bench_preflight("tracker latency")?;
    println!(
        "tracker fault to VIP on the peer: {trials} trials per row, xvrrpd = {}",
        bin.display()
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    for sc in SCENARIOS {
        let mut pair: Vec<Row> = [Impl::Xvrrpd, Impl::Keepalived]
            .into_iter()
            .map(|imp| Row {
                scenario: sc,
                imp,
                samples: Vec::new(),
                failures: Vec::new(),
                unsupported: None,
                trials,
            })
            .collect();
        // Alternate the implementations so a change of load hits both alike.
        for t in 1..=trials {
            for row in pair.iter_mut().filter(|r| r.unsupported.is_none()) {
                match trial(row.imp, &sc) {
                    Ok(d) => {
                        println!(
                            "  {:<10} {:<21} trial {t:>2}: {:>8.3} s",
                            row.imp.name(),
                            sc.label,
                            d.as_secs_f64()
                        );
                        row.samples.push(d);
                    }
                    Err(e) if e.is::<Unsupported>() => {
                        println!(
                            "  {:<10} {:<21} trial {t:>2}: {e} (row skipped)",
                            row.imp.name(),
                            sc.label
                        );
                        row.unsupported = Some(e.to_string());
                    }
                    Err(e) => {
                        println!(
                            "  {:<10} {:<21} trial {t:>2}: FAILED: {e:#}",
                            row.imp.name(),
                            sc.label
                        );
                        row.failures.push(format!("{e:#}"));
                    }
                }
            }
        }
        rows.extend(pair);
    }

    println!();
    println!(
        "{:<21} {:<11} {:>8} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "scenario", "impl", "check", "budget", "median", "worst", "within", "trials"
    );
    for r in &rows {
        let budget = r.scenario.budget();
        let within = match r.median() {
            Some(m) if m <= budget => "yes",
            Some(_) => "NO",
            None => "-",
        };
        println!(
            "{:<21} {:<11} {:>8} {:>7.3} s {:>9} {:>9} {:>7} {:>7}",
            r.scenario.label,
            r.imp.name(),
            r.scenario
                .check_interval()
                .map(|d| format!("{:.0} s", d.as_secs_f64()))
                .unwrap_or_else(|| "event".to_owned()),
            budget.as_secs_f64(),
            fmt_s(r.median()),
            fmt_s(r.worst()),
            within,
            if r.unsupported.is_some() {
                "n/a".to_owned()
            } else {
                format!("{}/{}", r.samples.len(), r.trials)
            },
        );
    }
    println!(
        "budget: check interval + advert interval ({} s); for the priority drop, check interval + Master_Down_Interval ({:.3} s)",
        ADVERT_INT.as_secs(),
        master_down_interval(BACKUP_PRIORITY).as_secs_f64()
    );
    for sc in SCENARIOS {
        let find = |imp| {
            rows.iter()
                .find(|r| r.imp == imp && r.scenario.kind == sc.kind)
                .and_then(Row::median)
        };
        let diff = match (find(Impl::Xvrrpd), find(Impl::Keepalived)) {
            (Some(x), Some(k)) => format!(
                "{:+.3} s (ratio {:.2})",
                x.as_secs_f64() - k.as_secs_f64(),
                x.as_secs_f64() / k.as_secs_f64()
            ),
            _ => "n/a (no successful trials)".to_owned(),
        };
        println!("xvrrpd − keepalived median, {}: {diff}", sc.label);
    }
    for r in &rows {
        if let Some(why) = &r.unsupported {
            println!("{} {}: {why}", r.imp.name(), r.scenario.label);
        }
    }
    for r in rows.iter().filter(|r| !r.failures.is_empty()) {
        println!(
            "{} {}: {} failed trial(s); first: {}",
            r.imp.name(),
            r.scenario.label,
            r.failures.len(),
            r.failures[0].lines().next().unwrap_or("")
        );
    }
    println!("({:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
}
