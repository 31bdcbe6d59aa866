//! What the load benchmarks (`starve`, `scale`) share: CPU hogs (stress-ng),
//! CPU pinning, the CPU time of a daemon's process tree, a notify FIFO
//! reader that counts state changes, and Ctrl-C handling that lets the labs'
//! guards clean up.

use std::{
    collections::HashMap,
    fs,
    io::Read,
    os::{
        fd::AsFd,
        unix::{fs::OpenOptionsExt, process::CommandExt},
    },
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use nix::{
    poll::{poll, PollFd, PollFlags},
    sched::CpuSet,
};

// ---------------------------------------------------------------------------
// Interrupts

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// SIGINT, SIGTERM and SIGHUP set a flag instead of killing the process, so
/// the benchmark can unwind and its guards remove namespaces, daemons and
/// CPU hogs. Long waits below check the flag.
pub fn catch_interrupts() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { sigaction(signal, &action) }.with_context(|| format!("sigaction({signal})"))?;
    }
    Ok(())
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// An error once an interrupt arrived.
pub fn check_interrupt() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps `d`, in short steps; an error as soon as an interrupt arrives.
pub fn sleep(d: Duration) -> Result<()> {
    let deadline = Instant::now() + d;
    loop {
        check_interrupt()?;
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// [`crate::wait_until`] that gives up with an error on an interrupt.
pub fn wait_until(timeout: Duration, step: Duration, mut f: impl FnMut() -> bool) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        check_interrupt()?;
        if f() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        thread::sleep(step);
    }
}

// ---------------------------------------------------------------------------
// CPUs

/// The CPUs this process may run on, in order.
pub fn usable_cpus() -> Result<Vec<usize>> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .context("sched_getaffinity")?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Makes `cmd` start on `cpus` only; its threads and children inherit that.
pub fn pin_to_cpus(cmd: &mut Command, cpus: &[usize]) {
    let mut set = CpuSet::new();
    for &c in cpus {
        // An out-of-range CPU is refused by sched_setaffinity below.
        let _ = set.set(c);
    }
    // SAFETY: the closure only makes one syscall (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
                .map_err(std::io::Error::from)
        });
    }
}

/// `Cpus_allowed_list` of every thread of `pid` and of its descendants that
/// differs from `expected`, as "pid/tid: list"; empty when all match.
pub fn affinity_mismatches(pid: i32, expected: &[usize]) -> Vec<String> {
    let want = expected
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut out = Vec::new();
    for p in std::iter::once(pid).chain(crate::descendants(pid)) {
        let Ok(tasks) = fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Ok(status) = fs::read_to_string(t.path().join("status")) else {
                continue;
            };
            let list = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(str::trim)
                .unwrap_or("?");
            if list != want {
                out.push(format!("{p}/{}: {list}", t.file_name().to_string_lossy()));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// CPU hogs

/// `stress-ng --cpu N` at a given nice value, optionally pinned; killed
/// (with its workers) when dropped. It also stops by itself after its
/// duration, so even a SIGKILLed benchmark leaves no hog behind for long.
pub struct Stress {
    child: Child,
    duration: Duration,
    started: Instant,
}

impl Stress {
    pub fn start(
        workers: usize,
        nice: i32,
        duration: Duration,
        cpus: Option<&[usize]>,
        log: &Path,
    ) -> Result<Self> {
        let out = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new("nice");
        cmd.args(["-n", &nice.to_string(), "stress-ng", "--cpu"])
            .arg(workers.to_string())
            .arg("--timeout")
            .arg(format!("{}s", duration.as_secs().max(1)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if let Some(cpus) = cpus {
            pin_to_cpus(&mut cmd, cpus);
        }
        let child = cmd
            .spawn()
            .context("spawning nice stress-ng (cargo xtask setup installs stress-ng)")?;
        Ok(Self {
            child,
            duration,
            started: Instant::now(),
        })
    }

    /// Waits for stress-ng to finish by itself (its --timeout), for at most
    /// its duration plus 15 s; an error on an interrupt or a failure.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        let limit = self.duration + Duration::from_secs(15);
        loop {
            check_interrupt()?;
            if let Some(status) = self.child.try_wait().context("waiting for stress-ng")? {
                if !status.success() {
                    bail!("stress-ng failed ({status})");
                }
                return Ok(status);
            }
            if self.started.elapsed() > limit {
                bail!("stress-ng still runs {limit:?} after it started");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Stress {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id() as i32;
        // Stop the parent first so it cannot start new workers.
        // SAFETY: kill has no memory preconditions; the pids are ours.
        unsafe {
            libc::kill(pid, libc::SIGSTOP);
            for d in crate::descendants(pid) {
                libc::kill(d, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// CPU time

/// Clock ticks per second of the times in /proc/PID/stat (USER_HZ).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

/// utime + stime + cutime + cstime of one process (all its threads, and its
/// children it has reaped), in clock ticks; None once it is gone.
fn process_ticks(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may itself hold spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, cstime field 17.
    let field = |n: usize| fields.get(n - 3)?.parse::<i64>().ok();
    let sum = field(14)? + field(15)? + field(16)? + field(17)?;
    Some(sum.max(0) as u64)
}

/// The CPU time, in clock ticks, of `pid` and every live descendant. A
/// descendant that exits moves its time into its parent's cutime/cstime,
/// so differences of this sum over a window count it once.
pub fn tree_ticks(pid: i32) -> u64 {
    std::iter::once(pid)
        .chain(crate::descendants(pid))
        .filter_map(process_ticks)
        .sum()
}

/// Measures the CPU of a process tree between [`CpuMeter::start`] and [`CpuMeter::percent`].
pub struct CpuMeter {
    pid: i32,
    ticks: u64,
    at: Instant,
}

impl CpuMeter {
    pub fn start(pid: i32) -> Self {
        Self {
            pid,
            ticks: tree_ticks(pid),
            at: Instant::now(),
        }
    }

    /// Percent of one core used since `start` (user + sys, all threads and children).
    pub fn percent(&self) -> f64 {
        let ticks = tree_ticks(self.pid).saturating_sub(self.ticks);
        let seconds = self.at.elapsed().as_secs_f64();
        ticks as f64 / clock_ticks_per_second() as f64 / seconds * 100.0
    }
}

// ---------------------------------------------------------------------------
// Notify FIFO

/// A line of a daemon's notify FIFO: `INSTANCE "VI_1" MASTER 100`
/// (keepalived's format, which xvrrpd follows). keepalived 2.2 also writes
/// events that are not state changes, such as `MASTER_RX_LOWER_PRI`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub instance: String,
    pub state: String,
}

impl Notification {
    fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix("INSTANCE ")?;
        let rest = rest.strip_prefix('"')?;
        let (instance, rest) = rest.split_once('"')?;
        let state = rest.split_whitespace().next()?;
        Some(Self {
            instance: instance.to_owned(),
            state: state.to_owned(),
        })
    }

    /// A change of the instance's state, not an event in a state.
    pub fn is_state_change(&self) -> bool {
        matches!(self.state.as_str(), "MASTER" | "BACKUP" | "FAULT" | "STOP")
    }
}

/// A FIFO created at `path` for a daemon's `notify_fifo`, read by a thread
/// of ours; removed when dropped.
///
/// It is opened read-write so it never sees end-of-file while the daemon
/// (re)opens it, and the daemon's open for writing never blocks.
pub struct NotifyFifo {
    path: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NotifyFifo {
    pub fn create(path: &Path) -> Result<Self> {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .with_context(|| format!("mkfifo {}", path.display()))?;
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (lines.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut pending = Vec::new();
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                // Block until there is something to read, looking at `stop`
                // every 100 ms.
                let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
                if !matches!(poll(&mut fds, 100u16), Ok(n) if n > 0) {
                    continue;
                }
                match file.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=end).collect();
                            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                            l.lock().unwrap().push(text);
                        }
                    }
                    // A passing error (EAGAIN, EINTR): look again.
                    _ => {}
                }
            }
        });
        Ok(Self {
            path: path.to_owned(),
            lines,
            stop,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many lines have been read so far.
    pub fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// The state changes read after the first `from` lines.
    pub fn state_changes_after(&self, from: usize) -> Vec<Notification> {
        let lines = self.lines.lock().unwrap();
        lines[from.min(lines.len())..]
            .iter()
            .filter_map(|l| Notification::parse(l))
            .filter(Notification::is_state_change)
            .collect()
    }

    /// The last state reported for each instance.
    pub fn states(&self) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for n in self.state_changes_after(0) {
            out.insert(n.instance, n.state);
        }
        out
    }
}

impl Drop for NotifyFifo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = fs::remove_file(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Reporting

/// The machine's load average (/proc/loadavg), to note how noisy a run was.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// "min / median / max" of `v` formatted by `f`, or "-" when empty.
pub fn spread(v: &[i64], f: impl Fn(i64) -> String) -> String {
    match (v.iter().min(), crate::median(v), v.iter().max()) {
        (Some(&lo), Some(mid), Some(&hi)) => format!("{} / {} / {}", f(lo), f(mid), f(hi)),
        _ => "-".to_owned(),
    }
}

/// A numeric command-line value, with the flag it came from in the error.
pub fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T> {
    let value = value.with_context(|| format!("{flag} needs a number"))?;
    value
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag} needs a number, not {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_fifo_lines() {
        let n = Notification::parse("INSTANCE \"VI_1\" MASTER 200").unwrap();
        assert_eq!((n.instance.as_str(), n.state.as_str()), ("VI_1", "MASTER"));
        assert!(n.is_state_change());
        let event = Notification::parse("INSTANCE \"VI 2\" MASTER_RX_LOWER_PRI 200").unwrap();
        assert_eq!(event.instance, "VI 2");
        assert!(!event.is_state_change());
        assert_eq!(Notification::parse("GROUP \"G\" MASTER 0"), None);
    }

    #[test]
    fn cpu_time_of_this_process_matches_the_kernel_clock() {
        use nix::time::{clock_gettime, ClockId};
        let cpu = || Duration::from(clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).unwrap());
        let pid = std::process::id() as i32;
        let (ticks_before, cpu_before) = (tree_ticks(pid), cpu());
        // Burn 200 ms of CPU (not of wall time: the machine may be busy).
        let deadline = Instant::now() + Duration::from_secs(30);
        while cpu() - cpu_before < Duration::from_millis(200) && Instant::now() < deadline {
            std::hint::black_box(0u64);
        }
        let (ticks, used) = (tree_ticks(pid) - ticks_before, cpu() - cpu_before);
        let counted = Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64);
        // Both cover every thread of the process; /proc rounds to ticks.
        let slack = Duration::from_millis(30);
        assert!(
            counted + slack >= used && counted <= used + slack,
            "/proc counted {counted:?}, the CPU clock {used:?}"
        );
    }
}
