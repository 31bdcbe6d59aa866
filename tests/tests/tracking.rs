//! Tracking, FAULT, notify and sync groups, end to end: real scripts,
//! processes, links and files in network namespaces, with xvrrpd or
//! keepalived 2.2.7 as the peer. Each scenario asserts who holds the VIP as
//! `ip addr` shows it, and what the scripts recorded.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Result;
use tests::{
    vrrp_lab::{instance_config, Impl, Lab, VIP},
    Proc, Segment,
};

fn logs(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| p.log_text())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// Waits for exactly node `holder` to hold the VIP, else fails with the logs.
fn expect_holder(lab: &Lab, holder: usize, within: Duration, why: &str, procs: &[&Proc]) {
    assert!(
        lab.wait_holder(holder, within),
        "{why}: holders {:?} after {within:?}\n{}",
        lab.holders(VIP),
        logs(procs)
    );
}

/// Processes whose parent is `pid` and that are zombies.
fn zombies_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ..." — comm may contain spaces.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 1 && fields[0] == "Z" && fields[1] == pid.to_string() {
            out.push(child);
        }
    }
    out
}

fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn check_script_moves_the_vip(peer: Impl) -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let ok = lab.dir.path("ok");
    fs::write(&ok, "")?;
    let runs = lab.dir.path("runs");
    let chk = tests::write_script(
        &lab.dir.path("chk.sh"),
        &format!(
            "if [ -e {ok} ]; then echo ok >> {runs}; exit 0; else echo fail >> {runs}; exit 1; fi",
            ok = ok.display(),
            runs = runs.display()
        ),
    )?;
    let tracked = format!(
        "vrrp_script chk {{\n  script \"{}\"\n  interval 1\n  weight -150\n  fall 2\n  rise 3\n}}\n{}",
        chk.display(),
        instance_config(200, "track_script {\n        chk\n    }")
    );
    let a = lab.xvrrpd(0, &tracked)?;
    let b = lab.start(1, peer, &instance_config(100, ""))?;
    expect_holder(
        &lab,
        0,
        Duration::from_secs(10),
        "priority 200 first",
        &[&a, &b],
    );

    // Failing: 200 - 150 = 50 < 100, after fall=2 failed runs. The runs
    // file is the clock here: log lines are written by a logging thread
    // and may lag behind on a loaded machine.
    fs::remove_file(&ok)?;
    let changes = |a: &Proc| a.log_text().matches("tracker changed").count();
    let trailing = |text: &str, what: &str| text.lines().rev().take_while(|l| *l == what).count();
    let runs_now = || fs::read_to_string(&runs).unwrap_or_default();
    assert!(
        tests::wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
            trailing(&runs_now(), "fail") >= 2
        }),
        "the script did not fail twice: {}",
        runs_now()
    );
    // The peer ignores the lower priority and waits out Master_Down_Interval
    // from the last advert at 200 (at most one interval before the drop):
    // never sooner than 2.6 s after the second failed run. Had xvrrpd
    // dropped after one failure, the peer would take over a second sooner.
    lab.steady(0, Duration::from_secs(2))
        .map_err(|e| anyhow::anyhow!("peer preempted before Master_Down_Interval: {e}"))?;
    assert_eq!(
        changes(&a),
        1,
        "one report for the failure:\n{}",
        a.log_text()
    );
    expect_holder(
        &lab,
        1,
        Duration::from_secs(6),
        "check failing: VIP to the peer",
        &[&a, &b],
    );
    assert!(
        a.log_text()
            .contains("(VI_1) Changing effective priority from"),
        "{}",
        a.log_text()
    );

    // Recovering: reported after rise=3 good runs, not before.
    fs::write(&ok, "")?;
    assert!(
        tests::wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
            trailing(&runs_now(), "ok") >= 2
        }),
        "the script did not succeed twice: {}",
        runs_now()
    );
    assert_eq!(changes(&a), 1, "reported after 2 good runs (rise 3)");
    assert!(
        tests::wait_until(
            Duration::from_secs(6),
            Duration::from_millis(10),
            || changes(&a) == 2
        ),
        "script recovery not reported\n{}",
        a.log_text()
    );
    assert!(trailing(&runs_now(), "ok") >= 3, "rise 3: {}", runs_now());
    expect_holder(
        &lab,
        0,
        Duration::from_secs(6),
        "check recovered: VIP back",
        &[&a, &b],
    );
    lab.steady(0, Duration::from_secs(2))
        .map_err(anyhow::Error::msg)?;
    assert!(zombies_of(a.pid()).is_empty(), "zombies left by xvrrpd");
    Ok(())
}

#[test]
fn check_script_moves_the_vip_with_rise_and_fall() -> Result<()> {
    check_script_moves_the_vip(Impl::Xvrrpd)
}

#[test]
fn check_script_moves_the_vip_with_keepalived_as_peer() -> Result<()> {
    check_script_moves_the_vip(Impl::Keepalived)
}

#[test]
fn hanging_script_is_killed_at_its_timeout_and_faults_the_instance() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let hang = lab.dir.path("hang");
    let pids = lab.dir.path("pids");
    // Hangs (with a child of its own) only once the test asks it to.
    let chk = tests::write_script(
        &lab.dir.path("hang.sh"),
        &format!(
            "[ -e {hang} ] || exit 0\nsleep 60 &\necho $$ $! >> {pids}\nwait",
            hang = hang.display(),
            pids = pids.display()
        ),
    )?;
    let tracked = format!(
        "vrrp_script hang {{\n  script \"{}\"\n  interval 2\n  timeout 1\n  weight 0\n}}\n{}",
        chk.display(),
        instance_config(200, "track_script {\n        hang\n    }")
    );
    let a = lab.xvrrpd(0, &tracked)?;
    let b = lab.xvrrpd(1, &instance_config(100, ""))?;
    expect_holder(
        &lab,
        0,
        Duration::from_secs(10),
        "priority 200 first",
        &[&a, &b],
    );

    fs::write(&hang, "")?;
    // Within one interval + timeout the run fails; FAULT sends priority 0,
    // so the peer takes over after Skew_Time.
    expect_holder(
        &lab,
        1,
        Duration::from_secs(2 + 1 + 3),
        "hanging check: FAULT moves the VIP",
        &[&a, &b],
    );
    assert!(
        a.log_text().contains("Entering FAULT STATE"),
        "{}",
        a.log_text()
    );
    // Every hung run, and the child it started, is killed and reaped.
    assert!(
        tests::wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
            let text = fs::read_to_string(&pids).unwrap_or_default();
            let all: Vec<i32> = text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            !all.is_empty() && all.iter().all(|&p| !alive(p))
        }),
        "hung script or its child still running: {}",
        fs::read_to_string(&pids).unwrap_or_default()
    );
    assert!(zombies_of(a.pid()).is_empty(), "zombies left by xvrrpd");

    fs::remove_file(&hang)?;
    expect_holder(
        &lab,
        0,
        Duration::from_secs(12),
        "check passes again: back",
        &[&a, &b],
    );
    Ok(())
}

fn tracked_process_moves_the_vip(peer: Impl) -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    // A private copy of sleep gives a comm nothing else on the host has.
    let name = format!("xvp{}", std::process::id() % 100_000);
    let bin = lab.dir.path(&name);
    fs::copy("/bin/sleep", &bin)?;
    let tracked = format!(
        "vrrp_track_process svc {{\n  process {name}\n  quorum 1\n  weight 0\n}}\n{}",
        instance_config(200, "track_process {\n        svc\n    }")
    );
    let mut service = lab.nodes[0].ns.spawn(
        {
            let mut c = lab.nodes[0].ns.command(&bin);
            c.arg("600");
            c
        },
        &lab.dir.path("svc.log"),
    )?;
    let a = lab.xvrrpd(0, &tracked)?;
    let b = lab.start(1, peer, &instance_config(100, ""))?;
    expect_holder(
        &lab,
        0,
        Duration::from_secs(10),
        "service up: priority 200",
        &[&a, &b],
    );

    // Exits are seen through a pidfd at once; FAULT sends priority 0.
    service.child.kill()?;
    service.child.wait()?;
    expect_holder(
        &lab,
        1,
        Duration::from_secs(3),
        "service killed: VIP to the peer",
        &[&a, &b],
    );
    // Started again: found by the next /proc scan, then preempts back.
    let _again = lab.nodes[0].ns.spawn(
        {
            let mut c = lab.nodes[0].ns.command(&bin);
            c.arg("600");
            c
        },
        &lab.dir.path("svc2.log"),
    )?;
    expect_holder(
        &lab,
        0,
        Duration::from_secs(10),
        "service back: VIP back",
        &[&a, &b],
    );
    assert!(zombies_of(a.pid()).is_empty(), "zombies left by xvrrpd");
    Ok(())
}

#[test]
fn killing_a_tracked_process_moves_the_vip() -> Result<()> {
    tracked_process_moves_the_vip(Impl::Xvrrpd)
}

#[test]
fn killing_a_tracked_process_moves_the_vip_to_keepalived() -> Result<()> {
    tracked_process_moves_the_vip(Impl::Keepalived)
}

fn tracked_interface_moves_the_vip(peer: Impl) -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let ns = &lab.nodes[0].ns;
    // A veth pair inside the node (no dummy module on every kernel).
    let add_uplink = || -> Result<()> {
        ns.ip(&[
            "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink0p",
        ])?;
        ns.ip(&["link", "set", "uplink0p", "up"])?;
        ns.ip(&["link", "set", "uplink0", "up"])?;
        Ok(())
    };
    add_uplink()?;
    let a = lab.xvrrpd(
        0,
        &instance_config(200, "track_interface {\n        uplink0\n    }"),
    )?;
    let b = lab.start(1, peer, &instance_config(100, ""))?;
    expect_holder(
        &lab,
        0,
        Duration::from_secs(10),
        "uplink up: priority 200",
        &[&a, &b],
    );

    ns.ip(&["link", "set", "uplink0", "down"])?;
    expect_holder(
        &lab,
        1,
        Duration::from_secs(3),
        "uplink down: VIP to the peer",
        &[&a, &b],
    );
    ns.ip(&["link", "set", "uplink0", "up"])?;
    expect_holder(
        &lab,
        0,
        Duration::from_secs(10),
        "uplink up again: VIP back",
        &[&a, &b],
    );

    // Removal counts as down; a new link of that name is tracked again.
    ns.ip(&["link", "del", "uplink0"])?;
    expect_holder(
        &lab,
        1,
        Duration::from_secs(3),
        "uplink removed: VIP to the peer",
        &[&a, &b],
    );
    add_uplink()?;
    expect_holder(
        &lab,
        0,
        Duration::from_secs(10),
        "uplink re-created: VIP back",
        &[&a, &b],
    );
    assert!(zombies_of(a.pid()).is_empty(), "zombies left by xvrrpd");
    Ok(())
}

#[test]
fn tracked_interface_down_moves_the_vip() -> Result<()> {
    tracked_interface_moves_the_vip(Impl::Xvrrpd)
}

#[test]
fn tracked_interface_down_moves_the_vip_to_keepalived() -> Result<()> {
    tracked_interface_moves_the_vip(Impl::Keepalived)
}

fn track_file_moves_the_vip(peer: Impl) -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let file = lab.dir.path("weight");
    fs::write(&file, "0\n")?;
    let tracked = format!(
        "vrrp_track_file tf {{\n  file \"{}\"\n  weight 1\n}}\n{}",
        file.display(),
        instance_config(200, "track_file {\n        tf\n    }")
    );
    let a = lab.xvrrpd(0, &tracked)?;
    let b = lab.start(1, peer, &instance_config(100, ""))?;
    expect_holder(
        &lab,
        0,
        Duration::from_secs(10),
        "file 0: priority 200",
        &[&a, &b],
    );

    // -150 × 1: priority 50, the peer preempts after Master_Down_Interval.
    fs::write(&file, "-150\n")?;
    expect_holder(
        &lab,
        1,
        Duration::from_secs(6),
        "file -150: VIP to the peer",
        &[&a, &b],
    );
    assert!(
        a.log_text()
            .contains("Changing effective priority from 200 to 50"),
        "priority 50 expected:\n{}",
        a.log_text()
    );
    fs::write(&file, "0\n")?;
    expect_holder(
        &lab,
        0,
        Duration::from_secs(10),
        "file 0 again: VIP back",
        &[&a, &b],
    );

    // ≤ -254 means FAULT (priority 0 sent, so the peer takes over at once).
    let tmp = lab.dir.path("weight.new");
    fs::write(&tmp, "-254\n")?;
    fs::rename(&tmp, &file)?;
    expect_holder(
        &lab,
        1,
        Duration::from_secs(3),
        "file -254: FAULT",
        &[&a, &b],
    );
    assert!(
        a.log_text().contains("Entering FAULT STATE"),
        "{}",
        a.log_text()
    );
    assert!(zombies_of(a.pid()).is_empty(), "zombies left by xvrrpd");
    Ok(())
}

#[test]
fn track_file_value_moves_the_vip() -> Result<()> {
    track_file_moves_the_vip(Impl::Xvrrpd)
}

#[test]
fn track_file_value_moves_the_vip_to_keepalived() -> Result<()> {
    track_file_moves_the_vip(Impl::Keepalived)
}

/// A notify setup whose scripts append their argv (one line per call,
/// arguments joined by '|') to `calls`, and a FIFO read into `fifo.out`.
struct NotifySetup {
    config: String,
    calls: PathBuf,
    fifo: PathBuf,
    fifo_out: PathBuf,
    fault_file: PathBuf,
}

impl Drop for NotifySetup {
    /// Ends the `cat` reader even if no daemon ever opened the FIFO.
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.fifo);
    }
}

fn notify_setup(lab: &Lab, tag: &str) -> Result<NotifySetup> {
    let calls = lab.dir.path(&format!("{tag}.calls"));
    let rec = tests::write_script(
        &lab.dir.path(&format!("{tag}-rec.sh")),
        &format!(
            "line=\"$1\"; shift; for a in \"$@\"; do line=\"$line|$a\"; done; echo \"$line\" >> {}",
            calls.display()
        ),
    )?;
    let fifo = lab.dir.path(&format!("{tag}.fifo"));
    let fifo_out = lab.dir.path(&format!("{tag}.fifo.out"));
    let fault_file = lab.dir.path(&format!("{tag}.fault"));
    let rec = rec.display();
    let config = format!(
        r#"
global_defs {{
    notify_fifo {fifo}
}}
vrrp_track_file fault {{
    file "{fault}"
    weight 0
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 200
    advert_int 1
    virtual_ipaddress {{
        {VIP}/24
    }}
    track_file {{
        fault
    }}
    notify_master "{rec} master 'two words'"
    notify_backup "{rec} backup"
    notify_fault "{rec} fault"
    notify_stop "{rec} stop"
    notify "{rec} generic"
}}
"#,
        fifo = fifo.display(),
        fault = fault_file.display(),
    );
    fs::write(&fault_file, "0\n")?;
    // The reader is started first; the daemon opens the FIFO read-write,
    // so the reader sees EOF only once the daemon has gone.
    tests::run(std::process::Command::new("mkfifo").arg(&fifo))?;
    let reader = format!("cat {} >> {} &", fifo.display(), fifo_out.display());
    std::process::Command::new("sh")
        .args(["-c", &reader])
        .status()?;
    Ok(NotifySetup {
        config,
        calls,
        fifo,
        fifo_out,
        fault_file,
    })
}

/// BACKUP at start, MASTER, FAULT, BACKUP again, STOP; returns the recorded
/// calls and FIFO lines.
fn notify_sequence(lab: &Lab, n: &NotifySetup, daemon: &mut Proc) -> Result<(String, String)> {
    expect_holder(lab, 0, Duration::from_secs(10), "alone: master", &[daemon]);
    let has = |s: &str| fs::read_to_string(&n.calls).unwrap_or_default().contains(s);
    assert!(
        tests::wait_until(Duration::from_secs(3), Duration::from_millis(20), || has(
            "generic|INSTANCE|VI_1|MASTER|200"
        )),
        "{}",
        daemon.log_text()
    );
    fs::write(&n.fault_file, "1\n")?;
    assert!(
        tests::wait_until(Duration::from_secs(5), Duration::from_millis(20), || has(
            "generic|INSTANCE|VI_1|FAULT|200"
        )),
        "{}",
        daemon.log_text()
    );
    fs::write(&n.fault_file, "0\n")?;
    assert!(
        tests::wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            fs::read_to_string(&n.calls)
                .unwrap_or_default()
                .matches("generic|INSTANCE|VI_1|BACKUP|200")
                .count()
                == 2
        }),
        "{}",
        daemon.log_text()
    );
    // Let the fault-cleared BACKUP settle before stopping (no second master).
    std::thread::sleep(Duration::from_millis(500));
    daemon.terminate(Duration::from_secs(10));
    assert!(
        tests::wait_until(Duration::from_secs(3), Duration::from_millis(20), || has(
            "generic|INSTANCE|VI_1|STOP|200"
        )),
        "{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    Ok((
        fs::read_to_string(&n.calls)?,
        fs::read_to_string(&n.fifo_out).unwrap_or_default(),
    ))
}

#[test]
fn notify_scripts_get_keepalived_s_exact_arguments() -> Result<()> {
    tests::require_root!();
    // Node 0 runs keepalived, node 1 xvrrpd, each alone on its own segment
    // view (the peer is not started), with the same notify configuration.
    let lab = Lab::new(1)?;
    let k = notify_setup(&lab, "keepalived")?;
    let mut keepalived = lab.keepalived(0, &k.config)?;
    let (k_calls, k_fifo) = notify_sequence(&lab, &k, &mut keepalived)?;
    drop(keepalived);

    let x = notify_setup(&lab, "xvrrpd")?;
    let mut xvrrpd = lab.xvrrpd(0, &x.config)?;
    let (x_calls, x_fifo) = notify_sequence(&lab, &x, &mut xvrrpd)?;

    let expected_calls = "\
backup
generic|INSTANCE|VI_1|BACKUP|200
master|two words
generic|INSTANCE|VI_1|MASTER|200
fault
generic|INSTANCE|VI_1|FAULT|200
backup
generic|INSTANCE|VI_1|BACKUP|200
stop
generic|INSTANCE|VI_1|STOP|200
";
    let expected_fifo = "\
INSTANCE \"VI_1\" BACKUP 200
INSTANCE \"VI_1\" MASTER 200
INSTANCE \"VI_1\" FAULT 200
INSTANCE \"VI_1\" BACKUP 200
INSTANCE \"VI_1\" STOP 200
";
    // keepalived starts the state's script and `notify` without waiting for
    // either, so which of the two appends first is a race there; each
    // stream on its own is ordered. xvrrpd runs them in order, so its
    // interleaving must be exactly the expected one.
    let streams = |calls: &str| -> (Vec<String>, Vec<String>) {
        calls
            .lines()
            .map(str::to_owned)
            .partition(|l| l.starts_with("generic|"))
    };
    assert_eq!(
        streams(&k_calls),
        streams(expected_calls),
        "keepalived's calls differ from the expectation:\n{k_calls}"
    );
    assert_eq!(
        x_calls,
        expected_calls,
        "xvrrpd's notify argv differ from keepalived's\n{}",
        xvrrpd.log_text()
    );
    assert_eq!(k_fifo, expected_fifo, "keepalived's FIFO lines");
    assert_eq!(
        x_fifo,
        expected_fifo,
        "xvrrpd FIFO lines\n{}",
        xvrrpd.log_text()
    );
    Ok(())
}

/// Adds a second segment (eth1, 198.51.100.N/24) to every node.
fn second_segment(lab: &Lab) -> Result<Segment> {
    let mut seg = Segment::new()?;
    for (i, node) in lab.nodes.iter().enumerate() {
        seg.attach(&node.ns, "eth1")?;
        node.ns.ip(&[
            "addr",
            "add",
            &format!("198.51.100.{}/24", i + 1),
            "dev",
            "eth1",
        ])?;
    }
    Ok(seg)
}

const VIP2: &str = "198.51.100.100";

fn sync_group_config(priority: u8, recorder: Option<&Path>) -> String {
    let notify = recorder
        .map(|r| format!("notify {}", r.display()))
        .unwrap_or_default();
    format!(
        r#"
vrrp_sync_group G1 {{
    group {{
        VI_1
        VI_2
    }}
    {notify}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {VIP}/24
    }}
}}
vrrp_instance VI_2 {{
    state BACKUP
    interface eth1
    virtual_router_id 52
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {VIP2}/24
    }}
}}
"#
    )
}

fn holders2(lab: &Lab) -> Vec<usize> {
    (0..lab.nodes.len())
        .filter(|&i| lab.nodes[i].ns.has_address("eth1", VIP2))
        .collect()
}

fn sync_group_fails_over_together(peer: Impl) -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let _seg = second_segment(&lab)?;
    let calls = lab.dir.path("group.calls");
    let rec = tests::write_script(
        &lab.dir.path("group-rec.sh"),
        &format!("echo \"$*\" >> {}", calls.display()),
    )?;
    let a = lab.xvrrpd(0, &sync_group_config(200, Some(&rec)))?;
    let b = lab.start(1, peer, &sync_group_config(100, None))?;
    let both = |i: usize| lab.holders(VIP) == vec![i] && holders2(&lab) == vec![i];
    assert!(
        tests::wait_until(Duration::from_secs(10), Duration::from_millis(20), || both(
            0
        )),
        "node 0 should hold both: {:?} {:?}\n{}",
        lab.holders(VIP),
        holders2(&lab),
        logs(&[&a, &b])
    );
    // Only VI_2's link goes down; VI_1 follows it into FAULT.
    lab.nodes[0].ns.ip(&["link", "set", "eth1", "down"])?;
    // VI_1's peer takes over after Skew_Time (priority 0), VI_2's after
    // Master_Down_Interval (its master's link is down); the group waits for both.
    assert!(
        tests::wait_until(Duration::from_secs(6), Duration::from_millis(20), || both(
            1
        )),
        "node 1 should hold both: {:?} {:?}\n{}",
        lab.holders(VIP),
        holders2(&lab),
        logs(&[&a, &b])
    );
    assert!(
        a.log_text().contains("VI_1") && a.log_text().matches("Entering FAULT STATE").count() >= 2,
        "both instances in FAULT:\n{}",
        a.log_text()
    );
    lab.nodes[0].ns.ip(&["link", "set", "eth1", "up"])?;
    assert!(
        tests::wait_until(Duration::from_secs(12), Duration::from_millis(20), || both(
            0
        )),
        "node 0 should hold both again: {:?} {:?}\n{}",
        lab.holders(VIP),
        holders2(&lab),
        logs(&[&a, &b])
    );
    let recorded = fs::read_to_string(&calls).unwrap_or_default();
    for line in ["GROUP G1 MASTER 0", "GROUP G1 FAULT 0"] {
        assert!(recorded.contains(line), "missing {line:?} in:\n{recorded}");
    }
    assert!(zombies_of(a.pid()).is_empty(), "zombies left by xvrrpd");
    Ok(())
}

#[test]
fn sync_group_of_two_interfaces_fails_over_together() -> Result<()> {
    sync_group_fails_over_together(Impl::Xvrrpd)
}

#[test]
fn sync_group_fails_over_together_with_keepalived_as_peer() -> Result<()> {
    sync_group_fails_over_together(Impl::Keepalived)
}
