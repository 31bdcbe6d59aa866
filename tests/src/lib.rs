//! A lab of network namespaces for the integration tests, the demo and the bench.
//!
//! Everything here creates its own namespaces (named `xv<pid>x<n>`, so runs
//! can overlap or follow a crash), links inside them only, and removes them
//! on drop — also when a test panics. Processes started in a namespace are
//! killed when their guard drops, and again when the namespace goes.

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

pub mod capture;
pub mod forge;
pub mod load;
pub mod pcap;
pub mod vrrp_lab;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace that exists as long as this value does.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Result<Self> {
        let name = format!(
            "xv{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n NS ARGS…`
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        output(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// A command run inside the namespace's network stack only (`nsenter --net`).
    /// Unlike `ip netns exec` it keeps the host's mount namespace, so bpffs
    /// pins are visible to bpftool and to other processes.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.name))
            .arg("--")
            .arg(program);
        c
    }

    /// Runs a shell command in the namespace and returns its stdout.
    pub fn sh(&self, script: &str) -> Result<String> {
        output(self.command("sh").args(["-c", script]))
    }

    /// Starts a long-running process in the namespace; its output goes to `log`.
    pub fn spawn(&self, mut cmd: Command, log: &Path) -> Result<Proc> {
        let out = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let program = format!("{cmd:?}");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("spawning {program}"))?;
        Ok(Proc {
            child,
            log: log.to_owned(),
        })
    }

    /// Addresses of an interface as `ip -j addr` reports them.
    pub fn addresses(&self, interface: &str) -> Result<Vec<String>> {
        let json = self.ip(&["-j", "addr", "show", "dev", interface])?;
        let v: serde_json::Value = serde_json::from_str(&json).context("parsing ip -j addr")?;
        let mut out = Vec::new();
        for link in v.as_array().into_iter().flatten() {
            for a in link["addr_info"].as_array().into_iter().flatten() {
                if let Some(local) = a["local"].as_str() {
                    out.push(local.to_owned());
                }
            }
        }
        Ok(out)
    }

    pub fn has_address(&self, interface: &str, addr: &str) -> bool {
        self.addresses(interface)
            .map(|a| a.iter().any(|x| x == addr))
            .unwrap_or(false)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever still runs inside, then remove the namespace.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    // SAFETY: kill has no memory preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        // A daemon killed with SIGKILL cannot unpin its maps; its pin
        // directory is named after this namespace.
        if let Ok(dir) = xvrrpd::bpf::pin::dir(Some(&self.name)) {
            xvrrpd::bpf::pin::remove_dir(&dir);
        }
        // ...nor remove its control socket, state and handover files.
        let _ = fs::remove_file(xvrrpd::ops::control::default_path(std::path::Path::new(
            &self.name,
        )));
        let held = xvrrpd::daemon::held::Paths::for_pin_dir(Path::new(&self.name));
        let _ = fs::remove_file(held.state);
        let _ = fs::remove_file(held.handover);
    }
}

/// Joins `a:a_if` and `b:b_if` with a veth pair created inside the namespaces.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    a.ip(&[
        "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ])?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}

/// A segment: one namespace holding a bridge, and hosts attached by veth.
pub struct Segment {
    pub hub: Netns,
    ports: u32,
}

impl Segment {
    pub fn new() -> Result<Self> {
        let hub = Netns::new()?;
        hub.ip(&["link", "add", "br0", "type", "bridge"])?;
        // Multicast snooping would need IGMP joins to forward adverts; VRRP relies on flooding.
        hub.ip(&[
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        // A switch forwards what it gets: with br_netfilter loaded on the
        // host, the bridge would validate IPv4 headers (dropping a bad
        // checksum before any host sees it) and pass frames to iptables.
        hub.sh("for f in /proc/sys/net/bridge/bridge-nf-call-*; do \
             if [ -e \"$f\" ]; then echo 0 > \"$f\"; fi; done")?;
        hub.ip(&["link", "set", "br0", "up"])?;
        Ok(Self { hub, ports: 0 })
    }

    /// Attaches `host` to the bridge through its interface `interface`;
    /// returns the name of the bridge's port (in `hub`), which a test can
    /// take down to cut the host off with its own link left as it was.
    pub fn attach(&mut self, host: &Netns, interface: &str) -> Result<String> {
        let port = format!("p{}", self.ports);
        self.ports += 1;
        veth(&self.hub, &port, host, interface)?;
        self.hub.ip(&["link", "set", &port, "master", "br0"])?;
        Ok(port)
    }
}

/// A child process killed (SIGKILL) when dropped, unless already stopped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Result<Self> {
        let p = std::env::temp_dir().join(format!(
            "xvrrpd-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(Self(p))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Starts keepalived (VRRP only, foreground, console log) in `ns` with `config`.
pub fn keepalived(ns: &Netns, dir: &TempDir, tag: &str, config: &str) -> Result<Proc> {
    let cmd = keepalived_command(ns, dir, tag, config)?;
    ns.spawn(cmd, &dir.path(&format!("{tag}.log")))
}

/// The command [`keepalived`] spawns (its config written to `dir/<tag>.conf`),
/// for callers that adjust it first; its log belongs in `dir/<tag>.log`.
pub fn keepalived_command(ns: &Netns, dir: &TempDir, tag: &str, config: &str) -> Result<Command> {
    // A killed keepalived leaves its pid files; once a pid in them is reused,
    // the next keepalived refuses to start ("daemon is already running").
    for suffix in ["pid", "vrrp.pid"] {
        let _ = fs::remove_file(dir.path(&format!("{tag}.{suffix}")));
    }
    let conf = dir.path(&format!("{tag}.conf"));
    fs::write(&conf, config).with_context(|| format!("writing {}", conf.display()))?;
    let mut cmd = ns.command("keepalived");
    cmd.args([
        "--vrrp",
        "--dont-fork",
        "--log-console",
        "--log-detail",
        "--no-syslog",
    ])
    .arg("--use-file")
    .arg(&conf)
    .arg("--pid")
    .arg(dir.path(&format!("{tag}.pid")))
    .arg("--vrrp_pid")
    .arg(dir.path(&format!("{tag}.vrrp.pid")));
    Ok(cmd)
}

/// Every live process below `pid` (children, their children, …), from
/// /proc/PID/task/*/children.
pub fn descendants(pid: i32) -> Vec<i32> {
    let children = |pid: i32| {
        let mut out = Vec::new();
        if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                if let Ok(s) = fs::read_to_string(t.path().join("children")) {
                    out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
                }
            }
        }
        out
    };
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children(p) {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

/// The xvrrpd binary under test: `$XVRRPD_BIN`, else target/debug/xvrrpd.
pub fn xvrrpd_bin() -> PathBuf {
    std::env::var_os("XVRRPD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/xvrrpd"))
}

/// Polls `f` every `step` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, step: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(step);
    }
}

pub fn run(cmd: &mut Command) -> Result<()> {
    output(cmd).map(|_| ())
}

pub fn output(cmd: &mut Command) -> Result<String> {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!(
            "{cmd:?} failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// True when running as root (the network tests need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Namespace, XDP and interop tests need root. Without it (a plain
/// `cargo test` as a user) each says so in one line and returns; `cargo
/// xtask test`, which CI runs, refuses to start without root, so nothing
/// is skipped there.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            $crate::say_skipped();
            return $crate::Skipped::skipped();
        }
    };
}

/// What a skipped test returns: `()` or `Ok(())`.
pub trait Skipped {
    fn skipped() -> Self;
}

impl Skipped for () {
    fn skipped() -> Self {}
}

impl<E> Skipped for std::result::Result<(), E> {
    fn skipped() -> Self {
        Ok(())
    }
}

/// The one line a skipped test prints. Written to the stderr handle, not
/// through `eprintln!`, so the test harness's capture does not swallow it.
pub fn say_skipped() {
    use std::io::Write;
    let name = std::thread::current()
        .name()
        .unwrap_or("a namespace test")
        .to_owned();
    let _ = writeln!(
        std::io::stderr(),
        "skipped {name}: needs root (network namespaces, XDP); run `cargo xtask test`"
    );
}

/// `--trials N` (or `-n N`) for the lab benchmarks; `-h` prints the usage.
pub fn trials_arg(program: &str, default: usize) -> Result<usize> {
    let usage = format!(
        "{program} [--trials N]   (default {default}; root; XVRRPD_BIN selects the daemon)"
    );
    let mut trials = default;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--trials" | "-n" => {
                trials = args
                    .next()
                    .context("--trials needs a number")?
                    .parse()
                    .context("--trials needs a number")?;
            }
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?} ({usage})"),
        }
    }
    if trials == 0 {
        anyhow::bail!("--trials must be at least 1");
    }
    Ok(trials)
}

/// The median (the mean of the middle two for an even count).
pub fn median(samples: &[i64]) -> Option<i64> {
    let mut v = samples.to_vec();
    v.sort();
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    }
}

/// Writes an executable shell script at `path`.
pub fn write_script(path: &Path, body: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, format!("#!/bin/sh\n{body}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(path.to_owned())
}

/// What every lab benchmark needs first: root, and the daemon binary.
pub fn bench_preflight(what: &str) -> Result<PathBuf> {
    if !is_root() {
        anyhow::bail!("the {what} benchmark creates network namespaces: run it as root");
    }
    let bin = xvrrpd_bin();
    if !bin.exists() {
        anyhow::bail!(
            "{} not found (cargo build --release -p vrrp-user; set XVRRPD_BIN)",
            bin.display()
        );
    }
    Ok(bin)
}
