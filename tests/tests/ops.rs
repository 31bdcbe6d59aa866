//! Operating surfaces end to end: `xvrrpd status`, the Prometheus metrics,
//! keepalived's signal dumps, tolerated signals, systemd's notify protocol,
//! pid files, the journal and syslog, and keepalived's flags. Real daemons
//! in network namespaces, keepalived 2.2.7 as the peer where it matters.

use std::{
    fs,
    io::{Read, Write},
    os::unix::{fs::PermissionsExt, net::UnixDatagram},
    path::{Path, PathBuf},
    sync::mpsc,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tests::{
    vrrp_lab::{instance_config, Lab, VIP},
    Netns, Proc,
};

const METRICS_PORT: u16 = 9650;

/// Starts `xvrrpd run -f CONFIG ARGS...` on node `i` with extra environment.
fn start(lab: &Lab, i: usize, config: &str, args: &[&str], env: &[(&str, &Path)]) -> Result<Proc> {
    let conf = lab.dir.path(&format!("ops{i}.conf"));
    fs::write(&conf, config)?;
    let mut cmd = lab.nodes[i].ns.command(tests::xvrrpd_bin());
    cmd.arg("run").arg("-f").arg(&conf).args(args);
    cmd.env("XVRRPD_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    lab.nodes[i]
        .ns
        .spawn(cmd, &lab.dir.path(&format!("ops{i}.log")))
}

/// `xvrrpd status ARGS` in a namespace: (exit code, stdout, stderr).
fn status(ns: &Netns, args: &[&str]) -> Result<(i32, String, String)> {
    let out = ns
        .command(tests::xvrrpd_bin())
        .arg("status")
        .args(args)
        .output()
        .context("running xvrrpd status")?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn status_json(ns: &Netns) -> Result<Value> {
    let (code, out, err) = status(ns, &["--json"])?;
    if code != 0 {
        bail!("xvrrpd status --json exited {code}: {err}");
    }
    serde_json::from_str(&out).context("parsing xvrrpd status --json")
}

/// Polls `xvrrpd status --json` until `want` holds for VI_1.
fn wait_instance(ns: &Netns, within: Duration, want: impl Fn(&Value) -> bool) -> Result<Value> {
    let mut last = Value::Null;
    let ok = tests::wait_until(within, Duration::from_millis(100), || {
        if let Ok(v) = status_json(ns) {
            last = v;
            want(&last["instances"][0])
        } else {
            false
        }
    });
    if !ok {
        bail!("VI_1 never reached the wanted status; last:\n{last:#}");
    }
    Ok(last)
}

/// `GET /metrics` on the namespace's loopback, from a thread that joins
/// the namespace (setns moves only the calling thread).
fn scrape(ns: &Netns, port: u16) -> Result<String> {
    let netns = PathBuf::from("/run/netns").join(&ns.name);
    std::thread::spawn(move || -> Result<String> {
        let f = fs::File::open(&netns)?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("scrape thread panicked"))?
}

/// The body of a 200 response, parsed; every sample line must parse.
fn parse_metrics(response: &str) -> Result<prometheus_parse::Scrape> {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no end of headers")?;
    if !head.starts_with("HTTP/1.1 200 OK") {
        bail!("not a 200: {head}");
    }
    if !head.contains("Content-Type: text/plain; version=0.0.4") {
        bail!("not the Prometheus text format: {head}");
    }
    let lines: Vec<std::io::Result<String>> = body.lines().map(|l| Ok(l.to_owned())).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter())?;
    let sample_lines = body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    if scrape.samples.len() != sample_lines {
        bail!(
            "{} sample lines but the parser read {}:\n{body}",
            sample_lines,
            scrape.samples.len()
        );
    }
    Ok(scrape)
}

/// The value of the one sample of `metric` whose labels include `labels`.
fn metric(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = s
        .samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .collect();
    assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
    found[0]
}

fn is_counter(s: &prometheus_parse::Scrape, name: &str) -> bool {
    s.samples
        .iter()
        .any(|x| x.metric == name && matches!(x.value, prometheus_parse::Value::Counter(_)))
}

/// The process state letter from /proc (R, S, T, Z...), or None once gone.
fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn wait_file(path: &Path, within: Duration, want: impl Fn(&str) -> bool) -> Result<String> {
    let mut last = String::new();
    if tests::wait_until(within, Duration::from_millis(50), || {
        last = fs::read_to_string(path).unwrap_or_default();
        want(&last)
    }) {
        Ok(last)
    } else {
        bail!(
            "{}: not as wanted after {within:?}:\n{last}",
            path.display()
        )
    }
}

fn has(text: &str, want: &str) {
    assert!(text.contains(want), "{want:?} not in:\n{text}");
}

#[test]
fn status_metrics_and_dumps_follow_a_failing_script_with_keepalived_as_peer() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let ok = lab.dir.path("ok");
    fs::write(&ok, "")?;
    let chk = tests::write_script(
        &lab.dir.path("chk.sh"),
        &format!("test -e {}", ok.display()),
    )?;
    let config = format!(
        "vrrp_script chk {{\n  script \"{}\"\n  interval 1\n  weight -150\n}}\n{}",
        chk.display(),
        instance_config(200, "track_script {\n        chk\n    }")
    );
    let dumps = lab.dir.path("dumps");
    fs::create_dir_all(&dumps)?;
    let port = METRICS_PORT.to_string();
    let a = start(
        &lab,
        0,
        &config,
        &["--metrics", &port],
        &[("TMPDIR", &dumps)],
    )?;
    let ns = &lab.nodes[0].ns;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "xvrrpd should be master first\n{}",
        a.log_text()
    );
    // The peer joins once xvrrpd is master, so who wins is not a race.
    let b = lab.keepalived(1, &instance_config(100, ""))?;

    // --- As master.
    let s = wait_instance(ns, Duration::from_secs(5), |i| i["state"] == "MASTER")?;
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["pid"], a.pid());
    assert_eq!(
        s["config_file"],
        lab.dir.path("ops0.conf").display().to_string()
    );
    let i = &s["instances"][0];
    assert_eq!(s["instances"].as_array().map(Vec::len), Some(1));
    assert_eq!(i["name"], "VI_1");
    assert_eq!(i["interface"], "eth0");
    assert_eq!(i["vrid"], 51);
    assert_eq!(i["family"], "IPv4");
    assert_eq!(i["version"], 2);
    assert_eq!(i["base_priority"], 200);
    assert_eq!(i["effective_priority"], 200);
    assert_eq!(i["advert_interval_s"], 1.0);
    assert_eq!(i["unicast"], false);
    assert_eq!(i["source_address"], "192.0.2.1");
    assert_eq!(
        i["vips"],
        serde_json::json!([{"address": "192.0.2.100/24", "interface": "eth0", "scope": "global", "label": null}])
    );
    assert_eq!(i["master"], Value::Null, "no other master while we are");
    assert_eq!(
        i["trackers"],
        serde_json::json!([{"kind": "script", "name": "chk", "weight": -150, "reverse": false, "status": "up", "failing": false}])
    );
    assert_eq!(i["fault_reasons"], serde_json::json!([]));
    assert_eq!(i["sync_group"], Value::Null);
    assert_eq!(i["transitions"], 2, "INIT->BACKUP->MASTER");
    assert_eq!(i["last_transition"]["from"], "BACKUP");
    assert_eq!(i["last_transition"]["to"], "MASTER");
    assert_eq!(i["last_transition"]["reason"], "master down timer");
    assert_eq!(i["become_master"], 1);
    assert_eq!(i["release_master"], 0);
    assert!(i["adverts_sent"].as_u64() >= Some(1), "{i}");
    assert_eq!(i["priority_zero_sent"], 0);
    let attach = &s["kernel"]["attachments"][0];
    assert_eq!(attach["interface"], "eth0");
    // Attach mode auto on a free XDP hook records at tc ingress (tcx, or
    // clsact before 6.6) and leaves the hook to other programs.
    assert!(
        ["tcx", "tc"].contains(&attach["hook"].as_str().unwrap_or("")),
        "{attach}"
    );
    assert!(
        attach["mode"].as_str().unwrap_or("").contains("ingress"),
        "{attach}"
    );
    let m = parse_metrics(&scrape(ns, METRICS_PORT)?)?;
    let l = [("iname", "VI_1"), ("intf", "eth0"), ("vrid", "51")];
    assert_eq!(metric(&m, "xvrrpd_vrrp_state", &l), 2.0);
    assert_eq!(
        metric(
            &m,
            "xvrrpd_tracker_failing",
            &[("iname", "VI_1"), ("name", "chk")]
        ),
        0.0
    );

    // --- The script fails: 200 - 150 = 50 < 100, keepalived takes over.
    fs::remove_file(&ok)?;
    assert!(
        lab.wait_holder(1, Duration::from_secs(10)),
        "keepalived should take over\n{}\n{}",
        a.log_text(),
        b.log_text()
    );
    let s = wait_instance(ns, Duration::from_secs(5), |i| {
        i["state"] == "BACKUP" && i["master"]["priority"] == 100
    })?;
    let i = &s["instances"][0];
    assert_eq!(i["base_priority"], 200);
    assert_eq!(i["effective_priority"], 50);
    assert_eq!(i["trackers"][0]["status"], "down");
    assert_eq!(i["trackers"][0]["failing"], true);
    assert_eq!(i["master"]["address"], "192.0.2.2");
    assert_eq!(i["master"]["advert_interval_s"], 1.0);
    let age = i["master"]["age_s"].as_f64().unwrap_or(f64::MAX);
    assert!((0.0..3.0).contains(&age), "master advert age {age}");
    assert_eq!(i["transitions"], 3);
    assert_eq!(i["last_transition"]["from"], "MASTER");
    assert_eq!(i["last_transition"]["to"], "BACKUP");
    assert_eq!(i["last_transition"]["reason"], "higher priority advert");
    assert_eq!(i["become_master"], 1);
    assert_eq!(i["release_master"], 1);
    let received = i["adverts_received"].as_u64().unwrap_or(0);
    assert!(received >= 1, "{i}");
    assert!(s["kernel"]["counters"]["accepted"].as_u64() >= Some(received));
    let last_at = i["last_transition"]["at_unix"].as_f64().unwrap_or(0.0);

    // The table, for people.
    let (code, table, err) = status(ns, &[])?;
    assert_eq!(code, 0, "{err}");
    let row = table
        .lines()
        .find(|l| l.starts_with("VI_1 "))
        .unwrap_or_else(|| panic!("no VI_1 row:\n{table}"));
    for cell in [
        "BACKUP",
        "50 (base 200)",
        "eth0",
        "51 IPv4v2",
        "192.0.2.2 prio 100",
        "MASTER->BACKUP: higher priority advert",
    ] {
        assert!(row.contains(cell), "{cell:?} not in {row:?}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.contains("script") && l.contains("chk") && l.ends_with("FAILING")),
        "{table}"
    );

    // The metrics, parsed by a Prometheus text parser.
    let m = parse_metrics(&scrape(ns, METRICS_PORT)?)?;
    assert_eq!(metric(&m, "xvrrpd_vrrp_state", &l), 1.0);
    assert_eq!(metric(&m, "xvrrpd_vrrp_base_priority", &l), 200.0);
    assert_eq!(metric(&m, "xvrrpd_vrrp_effective_priority", &l), 50.0);
    assert_eq!(
        metric(
            &m,
            "xvrrpd_vrrp_master_priority",
            &[("iname", "VI_1"), ("master", "192.0.2.2")]
        ),
        100.0
    );
    assert_eq!(metric(&m, "xvrrpd_vrrp_transitions_total", &l), 3.0);
    assert_eq!(metric(&m, "xvrrpd_become_master_total", &l), 1.0);
    assert_eq!(metric(&m, "xvrrpd_release_master_total", &l), 1.0);
    assert!(metric(&m, "xvrrpd_advertisements_received_total", &l) >= received as f64);
    assert!(metric(&m, "xvrrpd_advertisements_sent_total", &l) >= 1.0);
    assert!(
        (metric(&m, "xvrrpd_vrrp_last_transition_timestamp_seconds", &l) - last_at).abs() < 0.05
    );
    let t = [("iname", "VI_1"), ("type", "script"), ("name", "chk")];
    assert_eq!(metric(&m, "xvrrpd_tracker_failing", &t), 1.0);
    assert_eq!(metric(&m, "xvrrpd_tracker_up", &t), 0.0);
    assert_eq!(metric(&m, "xvrrpd_tracker_weight", &t), -150.0);
    assert!(metric(&m, "xvrrpd_xdp_adverts_recorded_total", &[]) >= received as f64);
    assert!(metric(&m, "xvrrpd_xdp_vrrp_packets_total", &[]) >= received as f64);
    assert_eq!(
        metric(
            &m,
            "xvrrpd_xdp_adverts_dropped_total",
            &[("reason", "bad_ttl")]
        ),
        0.0
    );
    for c in [
        "xvrrpd_vrrp_transitions_total",
        "xvrrpd_advertisements_received_total",
        "xvrrpd_xdp_adverts_dropped_total",
    ] {
        assert!(is_counter(&m, c), "{c} is not typed counter");
    }

    // --- keepalived's dumps, where its tooling looks ($TMPDIR).
    a.signal(libc::SIGUSR1);
    a.signal(libc::SIGUSR2);
    a.signal(libc::SIGRTMIN() + 2);
    let data = wait_file(
        &dumps.join("keepalived.data"),
        Duration::from_secs(5),
        |t| t.contains("VRRP Instance"),
    )?;
    for want in [
        " VRRP Instance = VI_1\n   VRRP Version = 2\n   State = BACKUP\n   Master router = 192.0.2.2\n   Master priority = 100\n",
        "   Interface = eth0\n   Using src_ip = 192.0.2.1\n   Virtual Router ID = 51\n   Priority = 200\n   Effective priority = 50\n   Advert interval = 1 sec\n",
        "   Virtual IP (1):\n     192.0.2.100/24 dev eth0 scope global\n",
        "   Tracked scripts :\n     chk weight -150\n",
        " VRRP Script = chk\n   Status = BAD\n",
    ] {
        has(&data, want);
    }
    let stats = wait_file(
        &dumps.join("keepalived.stats"),
        Duration::from_secs(5),
        |t| t.contains("VRRP Instance"),
    )?;
    has(
        &stats,
        "VRRP Instance: VI_1\n  Advertisements:\n    Received: ",
    );
    has(&stats, "  Became master: 1\n  Released master: 1\n");
    let json = wait_file(
        &dumps.join("keepalived.json"),
        Duration::from_secs(5),
        |t| t.starts_with('['),
    )?;
    let j: Value = serde_json::from_str(&json)?;
    assert_eq!(j[0]["data"]["iname"], "VI_1");
    assert_eq!(j[0]["data"]["state"], 1);
    assert_eq!(j[0]["data"]["master_priority"], 100);
    assert_eq!(j[0]["data"]["effective_priority"], 50);
    assert_eq!(j[0]["stats"]["become_master"], 1);
    assert_eq!(j[0]["stats"]["release_master"], 1);
    for f in ["keepalived.data", "keepalived.stats", "keepalived.json"] {
        let mode = fs::metadata(dumps.join(f))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }

    // --- SIGRTMAX-1: stats written and cleared; the next SIGUSR2 counts from there.
    a.signal(libc::SIGRTMAX() - 1);
    wait_file(
        &dumps.join("keepalived.stats"),
        Duration::from_secs(5),
        |_| a.log_text().contains("Printing and clearing VRRP stats"),
    )?;
    a.signal(libc::SIGUSR2);
    wait_file(
        &dumps.join("keepalived.stats"),
        Duration::from_secs(5),
        |t| t.contains("  Became master: 0\n  Released master: 0\n"),
    )?;

    // --- Signals keepalived tolerates leave xvrrpd running, in its state.
    for sig in [
        libc::SIGPIPE,
        libc::SIGQUIT,
        libc::SIGALRM,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGVTALRM,
        libc::SIGPWR,
        libc::SIGRTMIN() + 5,
        libc::SIGRTMAX(),
    ] {
        a.signal(sig);
    }
    std::thread::sleep(Duration::from_millis(500));
    let state = proc_state(a.pid());
    assert!(
        matches!(state, Some('S' | 'R')),
        "xvrrpd is {state:?} after the signals\n{}",
        a.log_text()
    );
    lab.steady(1, Duration::from_secs(2))
        .map_err(anyhow::Error::msg)?;
    let s = status_json(ns)?;
    assert_eq!(
        s["instances"][0]["transitions"], 3,
        "a signal caused a transition"
    );
    assert_eq!(s["instances"][0]["state"], "BACKUP");
    has(
        &a.log_text(),
        "SIGQUIT received: ignored, as keepalived does",
    );
    assert_eq!(
        b.log_text().matches("Entering MASTER STATE").count(),
        1,
        "keepalived moved while xvrrpd got signals\n{}",
        b.log_text()
    );

    // --- SIGTERM: a clean exit, and the control socket goes with it.
    let mut a = a;
    let code = a
        .terminate(Duration::from_secs(10))
        .context("xvrrpd stops on SIGTERM")?;
    assert!(code.success(), "{code}\n{}", a.log_text());
    let (code, _, err) = status(ns, &[])?;
    assert_eq!(code, 1);
    has(
        &err,
        &format!(
            "no xvrrpd running: /run/xvrrpd/{}.sock: no such socket",
            ns.name
        ),
    );
    Ok(())
}

/// Reads datagrams from `socket` in the background until `until` matches one.
fn collect(socket: UnixDatagram, until: &'static str) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = socket.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = m == until;
            if tx.send(m).is_err() || done {
                return;
            }
        }
    });
    rx
}

#[test]
fn systemd_notify_journal_pid_files_and_keepalived_flags() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(1)?;
    let ns = &lab.nodes[0].ns;
    // Nothing runs yet: said plainly.
    let (code, _, err) = status(ns, &[])?;
    assert_eq!(code, 1);
    has(
        &err,
        &format!(
            "no xvrrpd running: /run/xvrrpd/{}.sock: no such socket",
            ns.name
        ),
    );

    let notify_path = lab.dir.path("notify");
    let notifications = collect(UnixDatagram::bind(&notify_path)?, "STOPPING=1");
    let journal_path = lab.dir.path("journal");
    let journal = UnixDatagram::bind(&journal_path)?;
    journal.set_read_timeout(Some(Duration::from_millis(200)))?;
    // `@ID` lines: -i picks the priority.
    let config = format!(
        "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    @lab-a priority 150\n    @^lab-a priority 99\n    advert_int 1\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n"
    );
    let (pid_file, vrrp_pid_file, checkers_pid_file) = (
        lab.dir.path("run/keepalived.pid"),
        lab.dir.path("run/vrrp.pid"),
        lab.dir.path("run/checkers.pid"),
    );
    let (p, r, c) = (
        pid_file.display().to_string(),
        vrrp_pid_file.display().to_string(),
        checkers_pid_file.display().to_string(),
    );
    // keepalived's usual DAEMON_ARGS, as a keepalived unit would pass them.
    let args = [
        "-n", "-l", "-D", "-P", "-R", "-B", "-S", "3", "-i", "lab-a", "-p", &p, "-r", &r, "-c", &c,
    ];
    let watchdog_usec = PathBuf::from("1000000");
    let mut a = start(
        &lab,
        0,
        &config,
        &args,
        &[
            ("NOTIFY_SOCKET", &notify_path),
            ("WATCHDOG_USEC", &watchdog_usec),
            ("XVRRPD_JOURNAL_SOCKET", &journal_path),
        ],
    )?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "a lone node becomes master\n{}",
        a.log_text()
    );
    let s = wait_instance(ns, Duration::from_secs(5), |i| i["state"] == "MASTER")?;
    assert_eq!(
        s["instances"][0]["base_priority"], 150,
        "-i lab-a picks the @lab-a line"
    );
    // Pid files: keepalived's format, the one process in both.
    for f in [&pid_file, &vrrp_pid_file] {
        assert_eq!(
            fs::read_to_string(f)?,
            format!("{}\n", a.pid()),
            "{}",
            f.display()
        );
        assert_eq!(fs::metadata(f)?.permissions().mode() & 0o777, 0o644);
    }
    assert!(!checkers_pid_file.exists(), "xvrrpd runs no checker");
    // Watchdog pings at half of WATCHDOG_USEC.
    std::thread::sleep(Duration::from_millis(1600));

    // The journal got keepalived's words, with the ident, facility and fields.
    let mut entries = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = journal.recv(&mut buf) {
        entries.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let master = entries
        .iter()
        .find(|e| e.starts_with("MESSAGE=(VI_1) Entering MASTER STATE\n"))
        .unwrap_or_else(|| panic!("no MASTER entry in {entries:#?}"));
    for field in [
        "PRIORITY=6\n",
        "SYSLOG_IDENTIFIER=Keepalived_vrrp\n",
        "SYSLOG_FACILITY=19\n",
        "XVRRPD_INSTANCE=VI_1\n",
        "XVRRPD_PRIORITY=150\n",
    ] {
        has(master, field);
    }
    has(master, &format!("SYSLOG_PID={}\n", a.pid()));
    // -l: stderr as well.
    has(&a.log_text(), "(VI_1) Entering MASTER STATE");

    let code = a
        .terminate(Duration::from_secs(10))
        .context("xvrrpd stops")?;
    assert!(code.success(), "{code}\n{}", a.log_text());
    assert!(
        !pid_file.exists() && !vrrp_pid_file.exists(),
        "pid files left behind"
    );
    // -D: keepalived's last words.
    has(&a.log_text(), "Stopped - used (self/children) ");

    let got: Vec<String> = notifications.try_iter().collect();
    let pos = |pred: &dyn Fn(&String) -> bool| got.iter().position(pred);
    let ready = pos(&|m| m.starts_with("READY=1\nSTATUS=")).expect("READY=1 sent");
    assert!(
        got[ready].contains(&format!("MAINPID={}", a.pid())),
        "{got:?}"
    );
    let first_watchdog = pos(&|m| m == "WATCHDOG=1").expect("WATCHDOG=1 sent");
    assert!(ready < first_watchdog, "watchdog before READY: {got:?}");
    assert!(
        got.iter().filter(|m| *m == "WATCHDOG=1").count() >= 2,
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|m| m.ends_with("STATUS=1 MASTER") || m == "STATUS=1 MASTER"),
        "status never said 1 MASTER: {got:?}"
    );
    assert_eq!(
        got.last().map(String::as_str),
        Some("STOPPING=1"),
        "{got:?}"
    );
    Ok(())
}

#[test]
fn syslog_gets_keepalived_lines_with_facility_and_detail() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(1)?;
    let syslog_path = lab.dir.path("devlog");
    let syslog = UnixDatagram::bind(&syslog_path)?;
    syslog.set_read_timeout(Some(Duration::from_millis(200)))?;
    let no_journal = lab.dir.path("no-journal");
    let mut a = start(
        &lab,
        0,
        &instance_config(150, ""),
        &["-S", "local0", "-D"],
        &[
            ("XVRRPD_JOURNAL_SOCKET", &no_journal),
            ("XVRRPD_SYSLOG_SOCKET", &syslog_path),
        ],
    )?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "{}",
        a.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = syslog.recv(&mut buf) {
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    // local0 (16) * 8 + info (6) = 134; -D puts the fields after the words.
    let tag = format!(
        "Keepalived_vrrp[{}]: (VI_1) Entering MASTER STATE instance=VI_1 priority=150",
        a.pid()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<134>") && l.contains(&tag)),
        "{tag:?} not in {lines:#?}"
    );
    assert!(a
        .terminate(Duration::from_secs(10))
        .is_some_and(|c| c.success()));
    Ok(())
}

/// The daemon's flags that do not need root: refusals, --signum, -v.
#[test]
fn keepalived_flags_without_a_daemon() -> Result<()> {
    let run = |args: &[&str]| -> Result<(i32, String, String)> {
        let out = std::process::Command::new(tests::xvrrpd_bin())
            .args(args)
            .output()
            .context("running xvrrpd")?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    let (code, out, _) = run(&["--signum", "JSON"])?;
    assert_eq!(
        (code, out.trim()),
        (0, (libc::SIGRTMIN() + 2).to_string().as_str())
    );
    let (code, out, _) = run(&["--signum=DATA"])?;
    assert_eq!((code, out.trim()), (0, "10"));
    let (code, out, _) = run(&["-v"])?;
    assert_eq!(code, 0);
    assert!(out.starts_with("xvrrpd "), "{out}");
    for (flag, says) in [
        ("-x", "-x/--snmp: not supported by xvrrpd"),
        ("-C", "-C/--check: not supported by xvrrpd"),
        ("-V", "-V/--dont-release-vrrp: not supported by xvrrpd"),
    ] {
        let (code, _, err) = run(&["-f", "/nonexistent.conf", flag])?;
        assert_eq!(code, 1, "{flag}: {err}");
        has(&err, says);
        let (code, _, err) = run(&["run", "-f", "/nonexistent.conf", flag])?;
        assert_eq!(code, 1, "run {flag}: {err}");
        has(&err, says);
    }
    let (code, _, err) = run(&["run", "-f", "/x.conf", "-S", "local9"])?;
    assert_eq!(code, 1);
    has(&err, "-S/--log-facility \"local9\"");
    let (code, _, err) = run(&["run", "-f", "/x.conf", "--metrics", "nowhere"])?;
    assert_eq!(code, 1);
    has(&err, "--metrics \"nowhere\"");
    // Read the help as an operator would: the flags are documented.
    let (_, help, _) = run(&["run", "--help"])?;
    for flag in [
        "--log-console",
        "--log-facility",
        "--pid",
        "--vrrp_pid",
        "--metrics",
        "--control",
    ] {
        assert!(help.contains(flag), "{flag} missing from run --help");
    }
    Ok(())
}

/// `-s NAME`: started from the host, the daemon runs in the named namespace.
/// The interface exists only there, so a daemon left on the host would
/// refuse the configuration instead of touching the host's interfaces.
#[test]
fn namespace_flag_moves_the_daemon_into_the_namespace() -> Result<()> {
    tests::require_root!();
    let ns = Netns::new()?;
    let ifname = format!("xvs{}", std::process::id());
    ns.ip(&[
        "link",
        "add",
        &ifname,
        "type",
        "veth",
        "peer",
        "name",
        &format!("xvp{}", std::process::id()),
    ])?;
    // Both ends up, or the veth has no carrier and the instance faults.
    ns.ip(&["link", "set", &ifname, "up"])?;
    ns.ip(&["link", "set", &format!("xvp{}", std::process::id()), "up"])?;
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", &ifname])?;
    let dir = tests::TempDir::new("ops-ns")?;
    let conf = dir.path("x.conf");
    fs::write(
        &conf,
        instance_config(150, "").replace("interface eth0", &format!("interface {ifname}")),
    )?;
    let mut cmd = std::process::Command::new(tests::xvrrpd_bin());
    cmd.arg("run").arg("-f").arg(&conf).args(["-s", &ns.name]);
    let mut a = ns.spawn(cmd, &dir.path("x.log"))?;
    assert!(
        tests::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            ns.has_address(&ifname, VIP)
        }),
        "no VIP in the namespace\n{}",
        a.log_text()
    );
    let s = status_json(&ns)?;
    assert_eq!(s["instances"][0]["interface"], ifname.as_str());
    assert_eq!(s["pid"], a.pid());
    assert!(a
        .terminate(Duration::from_secs(10))
        .is_some_and(|c| c.success()));
    assert!(!ns.has_address(&ifname, VIP), "VIP left after stop");
    Ok(())
}
