//! `vrrp_track_process`: count the processes that match each tracker and
//! report whether the count is within `quorum ..= quorum_max`.
//!
//! # How processes are watched
//!
//! keepalived learns about forks, execs and exits from the netlink process
//! connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`). The connector's kernel
//! socket exists only in the initial network namespace, so inside any other
//! one (where xvrrpd normally runs) subscribing fails or no event ever
//! arrives, and keepalived's `track_process` does not work there. So we do
//! it differently:
//!
//! - **Exits** are event-driven: for every matching process we hold a pidfd
//!   (`pidfd_open(2)`, Linux 5.3+), registered with the tokio reactor. A pidfd
//!   becomes readable when its process exits, so a lost quorum is seen at
//!   once, whatever the scan interval.
//! - **New processes** are found by a rescan of `/proc` every `scan_interval`
//!   (the daemon passes 1 s). A scan reads only `/proc/PID/comm` for each pid
//!   unless some tracker matches on the command line; `cmdline` (which makes
//!   the kernel read the process's memory) is otherwise read only for the few
//!   pids whose name already matched. Scans run on the blocking pool and never
//!   overlap.
//! - Without pidfds (older kernels) the scan is the only source: exits are
//!   then seen within one `scan_interval`.
//!
//! # Matching (keepalived's rules, see [`matches`])
//!
//! By default `process` is compared exactly with `/proc/PID/comm`. comm holds
//! at most 15 bytes, so a longer name is compared with the basename of
//! `argv[0]` instead (keepalived would never match it). With `full_command`,
//! and as in keepalived also whenever parameters or `param_match` are given,
//! `process` is compared with the whole `argv[0]` (typically a full path) and
//! the remaining arguments with `parameters`:
//! - `exact` (the default): the arguments equal the parameters; with no
//!   parameters configured, the process must have no arguments;
//! - `initial`: the arguments start with the parameters;
//! - `partial`: like `initial`, but the last parameter may be a prefix of its
//!   argument (`process /usr/bin/app --config=/etc/app` matches
//!   `--config=/etc/app.conf`).
//!
//! Kernel threads and zombies (empty command line) and xvrrpd itself are
//! never counted.
//!
//! # Delay
//!
//! As keepalived: with `terminate_delay`, a lost quorum is reported only once
//! it has stayed lost that long; with `fork_delay`, a gained quorum only once
//! it has stayed gained that long (`delay` sets both). A change undone within
//! its delay is never reported.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::future::Future;
use std::io::{self, Read};
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::{EventSender, Status, TrackEvent, TrackerId};
use crate::config::TrackProcess;

/// `TASK_COMM_LEN - 1`: the kernel truncates comm to this many bytes.
pub const COMM_MAX: usize = 15;

const PROC: &str = "/proc";

/// Enough for any real `argv[0]` (PATH_MAX) plus parameters; bounds what a
/// scan copies out of a process with a huge command line.
const CMDLINE_MAX: u64 = 16 * 1024;

/// A zero interval would make tokio's interval panic and the scan spin.
const MIN_SCAN_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug, Error)]
pub enum ProcessError {
    #[error("reading {path}: {source}")]
    ProcScan {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("track_process must be started from within a tokio runtime")]
    NoRuntime,
}

/// How a tracker's parameters are compared with a process's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamMatch {
    /// No parameters and no `param_match`: only the name is compared.
    None,
    Exact,
    Initial,
    Partial,
}

impl ParamMatch {
    /// The rule a tracker uses. An unknown `param_match` word (the config
    /// builder accepts any) is treated as `exact`, the strictest rule.
    pub fn of(tracker: &TrackProcess) -> ParamMatch {
        match tracker.param_match.as_deref() {
            Some("initial") => ParamMatch::Initial,
            Some("partial") => ParamMatch::Partial,
            Some(_) => ParamMatch::Exact,
            None if tracker.parameters.is_empty() => ParamMatch::None,
            None => ParamMatch::Exact,
        }
    }
}

/// What a tracker's `process` is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameSource {
    Comm,
    Argv0Basename,
    Argv0,
}

fn name_source(tracker: &TrackProcess) -> NameSource {
    // keepalived: parameters or param_match imply full_command.
    if tracker.full_command || ParamMatch::of(tracker) != ParamMatch::None {
        NameSource::Argv0
    } else if tracker.process.len() > COMM_MAX {
        NameSource::Argv0Basename
    } else {
        NameSource::Comm
    }
}

/// Whether a process with this comm (trailing newline already stripped) and
/// command line (`argv`, NUL-split) counts for `tracker`. An empty command
/// line (kernel thread, zombie) never matches.
pub fn matches(tracker: &TrackProcess, comm: &str, cmdline: &[String]) -> bool {
    let Some((argv0, args)) = cmdline.split_first() else {
        return false;
    };
    let name_ok = match name_source(tracker) {
        NameSource::Comm => comm == tracker.process,
        NameSource::Argv0Basename => basename(argv0) == tracker.process,
        NameSource::Argv0 => *argv0 == tracker.process,
    };
    if !name_ok {
        return false;
    }
    let params = &tracker.parameters;
    match ParamMatch::of(tracker) {
        ParamMatch::None => true,
        ParamMatch::Exact => args == params.as_slice(),
        ParamMatch::Initial => args.starts_with(params),
        ParamMatch::Partial => match params.split_last() {
            None => true,
            Some((last, init)) => {
                args.starts_with(init)
                    && args
                        .get(init.len())
                        .is_some_and(|a| a.starts_with(last.as_str()))
            }
        },
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// keepalived's quorum rule: up while `quorum <= count <= quorum_max`.
pub fn quorum_met(count: u32, quorum: u32, quorum_max: Option<u32>) -> bool {
    count >= quorum && quorum_max.is_none_or(|max| count <= max)
}

/// Split `/proc/PID/cmdline` (NUL-terminated arguments) into arguments.
pub fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// What a scan must read, worked out once from the trackers.
#[derive(Debug, Default)]
struct Plan {
    /// Some tracker matches on `argv[0]`: read every process's cmdline.
    always_cmdline: bool,
    /// Names of the comm-matching trackers: read cmdline only on a hit.
    comm_names: HashSet<String>,
}

impl Plan {
    fn new(trackers: &[TrackProcess]) -> Plan {
        let mut plan = Plan::default();
        for t in trackers {
            match name_source(t) {
                NameSource::Comm => {
                    plan.comm_names.insert(t.process.clone());
                }
                NameSource::Argv0 | NameSource::Argv0Basename => plan.always_cmdline = true,
            }
        }
        plan
    }
}

/// Indices of the trackers that `pid` matches now; empty if it is gone,
/// unreadable or matches none.
fn examine(pid: i32, trackers: &[TrackProcess], plan: &Plan) -> Vec<usize> {
    let dir = Path::new(PROC).join(pid.to_string());
    let comm = if plan.comm_names.is_empty() {
        String::new()
    } else {
        match std::fs::read(dir.join("comm")) {
            Ok(raw) => {
                let raw = raw.strip_suffix(b"\n").unwrap_or(&raw);
                String::from_utf8_lossy(raw).into_owned()
            }
            // Exited since readdir, or not ours to read: not counted.
            Err(_) => return Vec::new(),
        }
    };
    // Even a comm hit needs cmdline, to tell kernel threads and zombies apart.
    if !plan.always_cmdline && !plan.comm_names.contains(&comm) {
        return Vec::new();
    }
    let cmdline = match read_cmdline(&dir.join("cmdline")) {
        Ok(c) => c,
        Err(_) => return Vec::new(),
    };
    trackers
        .iter()
        .enumerate()
        .filter(|(_, t)| matches(t, &comm, &cmdline))
        .map(|(i, _)| i)
        .collect()
}

fn read_cmdline(path: &Path) -> io::Result<Vec<String>> {
    let mut raw = Vec::new();
    std::fs::File::open(path)?
        .take(CMDLINE_MAX)
        .read_to_end(&mut raw)?;
    Ok(parse_cmdline(&raw))
}

/// One pass over /proc: every matching pid (but ours) with the indices of
/// the trackers it matches.
fn scan(trackers: &[TrackProcess], plan: &Plan) -> Result<BTreeMap<i32, Vec<usize>>, ProcessError> {
    let self_pid = std::process::id();
    let entries = std::fs::read_dir(PROC).map_err(|source| ProcessError::ProcScan {
        path: PathBuf::from(PROC),
        source,
    })?;
    let mut found = BTreeMap::new();
    for entry in entries {
        let Ok(entry) = entry else { continue };
        let Some(pid) = pid_of(&entry.file_name()) else {
            continue;
        };
        if u32::try_from(pid).is_ok_and(|p| p == self_pid) {
            continue;
        }
        let hits = examine(pid, trackers, plan);
        if !hits.is_empty() {
            found.insert(pid, hits);
        }
    }
    Ok(found)
}

fn pid_of(name: &OsStr) -> Option<i32> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(ret).map_err(|_| io::Error::other("pidfd_open: fd out of range"))?;
    // SAFETY: the kernel just gave us this fd (O_CLOEXEC); nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether the process behind a pidfd has exited (the fd polls readable).
fn pidfd_exited(fd: &OwnedFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, PollTimeout::ZERO).unwrap_or(0);
    ready > 0
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
}

struct Watched {
    /// Indices of the trackers this process counts for.
    trackers: Vec<usize>,
    /// None without pidfd support: the next scan notices the exit.
    pidfd: Option<AsyncFd<OwnedFd>>,
}

struct TrackerState {
    id: TrackerId,
    quorum: u32,
    quorum_max: Option<u32>,
    fork_delay: Duration,
    terminate_delay: Duration,
    /// What was last reported.
    reported: bool,
    /// The quorum differs from what was reported: report it at this instant.
    change_deadline: Option<Instant>,
}

struct Watcher {
    specs: Arc<[TrackProcess]>,
    plan: Arc<Plan>,
    trackers: Vec<TrackerState>,
    pids: BTreeMap<i32, Watched>,
    /// Cleared on ENOSYS: the kernel has no pidfd_open, scan only.
    pidfd_supported: bool,
    scan_failing: bool,
}

impl Watcher {
    fn new(specs: &[TrackProcess]) -> Watcher {
        let trackers = specs
            .iter()
            .map(|t| TrackerState {
                id: TrackerId::Process(t.name.clone()),
                quorum: t.quorum,
                quorum_max: t.quorum_max,
                fork_delay: t.fork_delay,
                terminate_delay: t.terminate_delay,
                reported: false,
                change_deadline: None,
            })
            .collect();
        Watcher {
            specs: specs.into(),
            plan: Arc::new(Plan::new(specs)),
            trackers,
            pids: BTreeMap::new(),
            pidfd_supported: true,
            scan_failing: false,
        }
    }

    /// Replace the set of watched processes by a scan's result.
    fn apply_scan(&mut self, found: BTreeMap<i32, Vec<usize>>) {
        self.pids.retain(|pid, _| found.contains_key(pid));
        for (pid, hits) in found {
            // A held pidfd that already polls readable belongs to an exited
            // process whose pid has been reused: watch the new one instead.
            let stale = self.pids.get(&pid).map(|w| {
                w.pidfd
                    .as_ref()
                    .is_some_and(|fd| pidfd_exited(fd.get_ref()))
            });
            match (stale, self.pids.get_mut(&pid)) {
                (Some(false), Some(w)) => w.trackers = hits,
                _ => {
                    self.pids.remove(&pid);
                    self.watch(pid, hits);
                }
            }
        }
    }

    /// Start counting `pid` for `hits` (if any), with a pidfd if possible.
    fn watch(&mut self, pid: i32, hits: Vec<usize>) {
        if hits.is_empty() {
            return;
        }
        let mut pidfd = None;
        if self.pidfd_supported {
            match pidfd_open(pid) {
                // SAFETY: the OwnedFd moves into the AsyncFd, which alone
                // closes it, after deregistering.
                Ok(fd) => match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
                    Ok(fd) => pidfd = Some(fd),
                    Err(e) => tracing::warn!(
                        "track_process: registering pidfd of pid {pid}: {e}; its exit is seen by the scan only"
                    ),
                },
                // Gone since the scan read it: nothing to count.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return,
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                    tracing::warn!(
                        "track_process: pidfd_open is not supported by this kernel; \
                         process exits are seen by the /proc scan only"
                    );
                    self.pidfd_supported = false;
                }
                Err(e) => tracing::warn!(
                    "track_process: pidfd_open({pid}): {e}; its exit is seen by the scan only"
                ),
            }
        }
        self.pids.insert(
            pid,
            Watched {
                trackers: hits,
                pidfd,
            },
        );
    }

    /// `pid`'s pidfd fired: forget it, then look at the pid again in case it
    /// was already reused by another matching process.
    fn exited(&mut self, pid: i32) {
        self.pids.remove(&pid);
        let hits = examine(pid, &self.specs, &self.plan);
        self.watch(pid, hits);
    }

    fn counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.trackers.len()];
        for w in self.pids.values() {
            for &i in &w.trackers {
                if let Some(c) = counts.get_mut(i) {
                    *c = c.saturating_add(1);
                }
            }
        }
        counts
    }

    /// The status of every tracker now, without delay; marks them reported.
    fn initial(&mut self) -> Vec<TrackEvent> {
        let counts = self.counts();
        self.trackers
            .iter_mut()
            .zip(counts)
            .map(|(t, count)| {
                t.reported = quorum_met(count, t.quorum, t.quorum_max);
                t.change_deadline = None;
                TrackEvent {
                    tracker: t.id.clone(),
                    status: Status::Up(t.reported),
                }
            })
            .collect()
    }

    /// Changes to report at `now`, applying `fork_delay` to gains and
    /// `terminate_delay` to losses.
    fn evaluate(&mut self, now: Instant) -> Vec<TrackEvent> {
        let counts = self.counts();
        let mut events = Vec::new();
        for (t, count) in self.trackers.iter_mut().zip(counts) {
            let up = quorum_met(count, t.quorum, t.quorum_max);
            if up == t.reported {
                // Undone within its delay: the pending report is cancelled.
                t.change_deadline = None;
                continue;
            }
            let delay = if up { t.fork_delay } else { t.terminate_delay };
            if !delay.is_zero() {
                let deadline = *t.change_deadline.get_or_insert(now + delay);
                if now < deadline {
                    continue;
                }
                t.change_deadline = None;
            }
            t.reported = up;
            tracing::debug!(
                "{}: {count} processes, quorum {}",
                t.id,
                if up { "met" } else { "lost" }
            );
            events.push(TrackEvent {
                tracker: t.id.clone(),
                status: Status::Up(up),
            });
        }
        events
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.trackers.iter().filter_map(|t| t.change_deadline).min()
    }

    async fn run(mut self, scan_interval: Duration, tx: EventSender) {
        let period = scan_interval.max(MIN_SCAN_INTERVAL);
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let deadline = self.next_deadline();
            let wake = tokio::select! {
                _ = tx.closed() => return,
                _ = ticker.tick() => Wake::Scan,
                pid = wait_exit(&self.pids) => Wake::Exited(pid),
                _ = sleep_until_some(deadline) => Wake::Deadline,
            };
            match wake {
                Wake::Scan => self.rescan().await,
                Wake::Exited(pid) => self.exited(pid),
                Wake::Deadline => {}
            }
            for event in self.evaluate(Instant::now()) {
                if tx.send(event).is_err() {
                    return;
                }
            }
        }
    }

    async fn rescan(&mut self) {
        let (specs, plan) = (self.specs.clone(), self.plan.clone());
        // Reading /proc is blocking file I/O: keep it off the reactor threads.
        match tokio::task::spawn_blocking(move || scan(&specs, &plan)).await {
            Ok(Ok(found)) => {
                if self.scan_failing {
                    tracing::info!("track_process: reading {PROC} works again");
                    self.scan_failing = false;
                }
                self.apply_scan(found);
            }
            // Keep the last known processes rather than report them all gone.
            Ok(Err(e)) => {
                if !self.scan_failing {
                    tracing::warn!("track_process: {e}; keeping the last known processes");
                    self.scan_failing = true;
                }
            }
            Err(e) => tracing::warn!("track_process: /proc scan task failed: {e}"),
        }
    }
}

enum Wake {
    Scan,
    Exited(i32),
    Deadline,
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Resolves with the pid of a watched process that has exited.
fn wait_exit(pids: &BTreeMap<i32, Watched>) -> impl Future<Output = i32> + '_ {
    std::future::poll_fn(move |cx| {
        for (&pid, w) in pids {
            let Some(fd) = &w.pidfd else { continue };
            loop {
                match fd.poll_read_ready(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Ok(mut guard)) => {
                        if pidfd_exited(fd.get_ref()) {
                            return Poll::Ready(pid);
                        }
                        // Spurious wake-up: clear it and poll again so the
                        // reactor keeps our waker.
                        guard.clear_ready();
                    }
                    // The reactor is going away; let `exited` re-examine it.
                    Poll::Ready(Err(_)) => return Poll::Ready(pid),
                }
            }
        }
        Poll::Pending
    })
}

/// Start tracking `trackers`: scan /proc once now and return every tracker's
/// initial status (one event each, in order), plus the task that then sends
/// only changes on `tx`. The task ends when `tx` is closed (the receiver is
/// dropped). `scan_interval` is how often /proc is rescanned for new
/// processes (the daemon uses 1 s); exits are seen at once through pidfds.
pub fn start(
    trackers: &[TrackProcess],
    scan_interval: Duration,
    tx: EventSender,
) -> Result<(Vec<TrackEvent>, JoinHandle<()>), ProcessError> {
    start_with(trackers, scan_interval, tx, true)
}

/// [`start`], optionally without pidfds (as on a kernel without them).
fn start_with(
    trackers: &[TrackProcess],
    scan_interval: Duration,
    tx: EventSender,
    use_pidfd: bool,
) -> Result<(Vec<TrackEvent>, JoinHandle<()>), ProcessError> {
    // AsyncFd and spawn would panic outside a runtime.
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| ProcessError::NoRuntime)?;
    for t in trackers {
        if let Some(word) = t.param_match.as_deref() {
            if !matches!(word, "exact" | "initial" | "partial") {
                tracing::warn!(
                    "track_process {}: unknown param_match {word:?}; using exact",
                    t.name
                );
            }
        }
    }
    let mut watcher = Watcher::new(trackers);
    watcher.pidfd_supported = use_pidfd;
    if trackers.is_empty() {
        // Nothing to scan for; the task only waits for the channel to close.
        let task = runtime.spawn(async move { tx.closed().await });
        return Ok((Vec::new(), task));
    }
    let found = scan(&watcher.specs, &watcher.plan)?;
    // Entering the runtime lets AsyncFd find the reactor from a plain thread too.
    let _guard = runtime.enter();
    watcher.apply_scan(found);
    let initial = watcher.initial();
    let task = runtime.spawn(watcher.run(scan_interval, tx));
    Ok((initial, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Location;
    use std::process::{Child, Command};
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::sync::mpsc;
    use tokio::time::timeout;

    fn tracker(name: &str, process: &str) -> TrackProcess {
        TrackProcess {
            name: name.to_string(),
            defined_at: Location::new("test.conf", 1),
            process: process.to_string(),
            parameters: Vec::new(),
            weight: 0,
            reverse: false,
            quorum: 1,
            quorum_max: None,
            fork_delay: Duration::ZERO,
            terminate_delay: Duration::ZERO,
            param_match: None,
            full_command: false,
        }
    }

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn matching_rules() {
        let plain = tracker("t", "nginx");
        let long = tracker("t", "averyveryverylongname");
        let full = TrackProcess {
            full_command: true,
            ..tracker("t", "/usr/sbin/nginx")
        };
        let exact = TrackProcess {
            parameters: argv(&["-g", "daemon off;"]),
            ..tracker("t", "/usr/sbin/nginx")
        };
        let exact_none = TrackProcess {
            param_match: Some("exact".into()),
            ..tracker("t", "/usr/sbin/nginx")
        };
        let initial = TrackProcess {
            param_match: Some("initial".into()),
            ..exact.clone()
        };
        let partial = TrackProcess {
            param_match: Some("partial".into()),
            parameters: argv(&["-c", "/etc/app"]),
            ..tracker("t", "/usr/bin/app")
        };
        let bogus = TrackProcess {
            param_match: Some("fuzzy".into()),
            ..exact.clone()
        };
        let nginx = argv(&["/usr/sbin/nginx", "-g", "daemon off;"]);
        let nginx_more = argv(&["/usr/sbin/nginx", "-g", "daemon off;", "-q"]);
        #[rustfmt::skip]
        let table: Vec<(&str, &TrackProcess, &str, Vec<String>, bool)> = vec![
            ("comm equal", &plain, "nginx", nginx.clone(), true),
            ("comm differs", &plain, "nginx2", nginx.clone(), false),
            ("comm is not a prefix match", &plain, "ngin", nginx.clone(), false),
            ("argv0 irrelevant for comm", &plain, "nginx", argv(&["whatever"]), true),
            ("kernel thread", &plain, "nginx", vec![], false),
            ("long name: argv0 basename", &long, "averyveryverylo", argv(&["/opt/averyveryverylongname", "x"]), true),
            ("long name: bare argv0", &long, "averyveryverylo", argv(&["averyveryverylongname"]), true),
            ("long name: truncated comm is not enough", &long, "averyveryverylo", argv(&["/opt/averyveryverylo"]), false),
            ("full path equal", &full, "nginx", nginx.clone(), true),
            ("full path vs bare argv0", &full, "nginx", argv(&["nginx"]), false),
            ("full_command ignores args", &full, "x", nginx_more.clone(), true),
            ("exact params", &exact, "nginx", nginx.clone(), true),
            ("exact: extra arg", &exact, "nginx", nginx_more.clone(), false),
            ("exact: missing arg", &exact, "nginx", argv(&["/usr/sbin/nginx", "-g"]), false),
            ("params imply full path", &exact, "nginx", argv(&["nginx", "-g", "daemon off;"]), false),
            ("exact, none configured: no args", &exact_none, "nginx", argv(&["/usr/sbin/nginx"]), true),
            ("exact, none configured: has args", &exact_none, "nginx", nginx.clone(), false),
            ("initial: equal", &initial, "nginx", nginx.clone(), true),
            ("initial: more args", &initial, "nginx", nginx_more.clone(), true),
            ("initial: fewer args", &initial, "nginx", argv(&["/usr/sbin/nginx", "-g"]), false),
            ("initial: whole args only", &initial, "nginx", argv(&["/usr/sbin/nginx", "-g", "daemon off; x"]), false),
            ("partial: last is prefix", &partial, "app", argv(&["/usr/bin/app", "-c", "/etc/app.conf", "-v"]), true),
            ("partial: earlier must be whole", &partial, "app", argv(&["/usr/bin/app", "-cc", "/etc/app"]), false),
            ("partial: too few args", &partial, "app", argv(&["/usr/bin/app", "-c"]), false),
            ("unknown param_match = exact", &bogus, "nginx", nginx_more.clone(), false),
            ("unknown param_match = exact, equal", &bogus, "nginx", nginx.clone(), true),
        ];
        for (what, t, comm, cmdline, want) in table {
            assert_eq!(matches(t, comm, &cmdline), want, "{what}");
        }
    }

    #[test]
    fn cmdline_parsing() {
        assert_eq!(parse_cmdline(b""), Vec::<String>::new());
        assert_eq!(parse_cmdline(b"sleep\x0030\x00"), argv(&["sleep", "30"]));
        assert_eq!(parse_cmdline(b"a\x00\x00b\x00"), argv(&["a", "", "b"]));
        // setproctitle() rewrites may drop the final NUL.
        assert_eq!(parse_cmdline(b"worker: main"), argv(&["worker: main"]));
    }

    #[test]
    fn quorum_rules() {
        #[rustfmt::skip]
        let table = [
            (0, 1, None, false), (1, 1, None, true), (5, 1, None, true),
            (1, 2, None, false), (2, 2, None, true),
            (1, 1, Some(1), true), (2, 1, Some(1), false),
            (2, 2, Some(3), true), (3, 2, Some(3), true), (4, 2, Some(3), false),
            // keepalived's quorum_max 0: up only while nothing runs.
            (0, 0, Some(0), true), (1, 0, Some(0), false),
        ];
        for (count, quorum, max, want) in table {
            assert_eq!(
                quorum_met(count, quorum, max),
                want,
                "{count} in {quorum}..{max:?}"
            );
        }
    }

    #[test]
    fn scan_never_counts_ourselves() {
        let comm = std::fs::read_to_string("/proc/self/comm").expect("own comm");
        let specs = [tracker("self", comm.trim_end())];
        let found = scan(&specs, &Plan::new(&specs)).expect("scan /proc");
        let me = i32::try_from(std::process::id()).expect("pid fits i32");
        assert!(!found.contains_key(&me));
    }

    static COUNTER: AtomicU32 = AtomicU32::new(0);

    /// A copy of /bin/sleep under a unique name, so its comm is ours alone.
    struct Sleeper {
        dir: PathBuf,
        bin: PathBuf,
        name: String,
    }

    impl Sleeper {
        fn new() -> Sleeper {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("xvtrk{}x{n}", std::process::id());
            assert!(name.len() <= COMM_MAX);
            let dir =
                std::env::temp_dir().join(format!("xvrrpd-trackproc-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let bin = dir.join(&name);
            std::fs::copy("/bin/sleep", &bin).expect("copy /bin/sleep");
            Sleeper { dir, bin, name }
        }

        fn spawn(&self) -> Child {
            // Another test thread forking while the copy was open for writing
            // can make exec fail with ETXTBSY for a moment: retry.
            for _ in 0..100 {
                match Command::new(&self.bin).arg("30").spawn() {
                    Ok(child) => {
                        self.wait_exec(&child);
                        return child;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => panic!("spawning {}: {e}", self.bin.display()),
                }
            }
            panic!("spawning {}: text file busy", self.bin.display());
        }

        /// spawn() returns once exec has begun, but the kernel sets comm
        /// and the argument area a little later: wait until a scan would
        /// see the new program.
        fn wait_exec(&self, child: &Child) {
            let dir = PathBuf::from(format!("/proc/{}", child.id()));
            for _ in 0..200 {
                let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
                let cmdline = read_cmdline(&dir.join("cmdline")).unwrap_or_default();
                if comm.trim_end() == self.name && cmdline.len() == 2 {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            panic!("{} did not start", self.bin.display());
        }

        fn tracker(&self, name: &str) -> TrackProcess {
            tracker(name, &self.name)
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn stop(child: &mut Child) {
        let _ = child.kill();
        let _ = child.wait();
    }

    fn up(name: &str, up: bool) -> TrackEvent {
        TrackEvent {
            tracker: TrackerId::Process(name.to_string()),
            status: Status::Up(up),
        }
    }

    async fn next(
        rx: &mut mpsc::UnboundedReceiver<TrackEvent>,
        within: Duration,
    ) -> Option<TrackEvent> {
        timeout(within, rx.recv()).await.ok().flatten()
    }

    #[tokio::test]
    async fn exit_is_seen_through_the_pidfd() {
        let s = Sleeper::new();
        let mut child = s.spawn();
        let full = TrackProcess {
            parameters: argv(&["30"]),
            ..tracker("full", &s.bin.to_string_lossy())
        };
        let wrong_args = TrackProcess {
            parameters: argv(&["31"]),
            ..full.clone()
        };
        let wrong_args = TrackProcess {
            name: "wrong".into(),
            ..wrong_args
        };
        let specs = [s.tracker("comm"), full, wrong_args];
        let (tx, mut rx) = mpsc::unbounded_channel();
        // A long scan interval: only the pidfd can report the exit quickly.
        let (initial, task) = start(&specs, Duration::from_secs(10), tx).expect("start");
        assert_eq!(
            initial,
            vec![up("comm", true), up("full", true), up("wrong", false)]
        );

        let killed = Instant::now();
        let _ = child.kill();
        let mut got = Vec::new();
        while got.len() < 2 {
            match next(&mut rx, Duration::from_secs(2)).await {
                Some(e) => got.push(e),
                None => break,
            }
        }
        let elapsed = killed.elapsed();
        let _ = child.wait();
        got.sort_by(|a, b| a.tracker.cmp(&b.tracker));
        assert_eq!(got, vec![up("comm", false), up("full", false)]);
        assert!(
            elapsed < Duration::from_millis(500),
            "exit seen after {elapsed:?}"
        );
        assert_eq!(next(&mut rx, Duration::from_millis(200)).await, None);

        drop(rx);
        timeout(Duration::from_secs(2), task)
            .await
            .expect("task ends once the receiver is gone")
            .expect("task did not panic");
    }

    #[tokio::test]
    async fn new_process_is_found_by_the_scan() {
        let s = Sleeper::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (initial, task) =
            start(&[s.tracker("p")], Duration::from_millis(200), tx).expect("start");
        assert_eq!(initial, vec![up("p", false)]);

        let spawned = Instant::now();
        let mut child = s.spawn();
        let got = next(&mut rx, Duration::from_secs(3)).await;
        let elapsed = spawned.elapsed();
        assert_eq!(got, Some(up("p", true)));
        assert!(
            elapsed < Duration::from_millis(1000),
            "found after {elapsed:?}"
        );

        stop(&mut child);
        assert_eq!(
            next(&mut rx, Duration::from_secs(2)).await,
            Some(up("p", false))
        );
        task.abort();
    }

    #[tokio::test]
    async fn without_pidfds_the_scan_sees_exits() {
        let s = Sleeper::new();
        let mut child = s.spawn();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (initial, task) =
            start_with(&[s.tracker("p")], Duration::from_millis(200), tx, false).expect("start");
        assert_eq!(initial, vec![up("p", true)]);
        stop(&mut child);
        assert_eq!(
            next(&mut rx, Duration::from_secs(2)).await,
            Some(up("p", false))
        );
        let mut child = s.spawn();
        assert_eq!(
            next(&mut rx, Duration::from_secs(2)).await,
            Some(up("p", true))
        );
        stop(&mut child);
        assert_eq!(
            next(&mut rx, Duration::from_secs(2)).await,
            Some(up("p", false))
        );
        task.abort();
    }

    #[tokio::test]
    async fn no_trackers_no_scan() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (initial, task) = start(&[], Duration::from_secs(1), tx).expect("start");
        assert!(initial.is_empty());
        drop(rx);
        timeout(Duration::from_secs(2), task)
            .await
            .expect("task ends once the receiver is gone")
            .expect("task did not panic");
    }

    #[tokio::test]
    async fn quorum_max_counts_live_processes() {
        let s = Sleeper::new();
        let mut a = s.spawn();
        let mut b = s.spawn();
        let one_only = TrackProcess {
            quorum_max: Some(1),
            ..s.tracker("one")
        };
        let two = TrackProcess {
            quorum: 2,
            ..s.tracker("two")
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (initial, task) = start(&[one_only, two], Duration::from_secs(10), tx).expect("start");
        assert_eq!(initial, vec![up("one", false), up("two", true)]);

        stop(&mut a);
        let mut got = vec![
            next(&mut rx, Duration::from_secs(2)).await,
            next(&mut rx, Duration::from_secs(2)).await,
        ];
        got.sort_by_key(|e| e.as_ref().map(|e| e.tracker.clone()));
        assert_eq!(got, vec![Some(up("one", true)), Some(up("two", false))]);

        stop(&mut b);
        assert_eq!(
            next(&mut rx, Duration::from_secs(2)).await,
            Some(up("one", false))
        );
        task.abort();
    }

    #[tokio::test]
    async fn terminate_delay_postpones_a_lost_quorum() {
        let s = Sleeper::new();
        let mut child = s.spawn();
        let delayed = TrackProcess {
            terminate_delay: Duration::from_millis(500),
            ..s.tracker("d")
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (initial, task) = start(&[delayed], Duration::from_secs(10), tx).expect("start");
        assert_eq!(initial, vec![up("d", true)]);

        let killed = Instant::now();
        stop(&mut child);
        let got = next(&mut rx, Duration::from_secs(3)).await;
        let elapsed = killed.elapsed();
        assert_eq!(got, Some(up("d", false)));
        assert!(
            elapsed >= Duration::from_millis(500),
            "reported after {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_millis(1500),
            "reported after {elapsed:?}"
        );
        task.abort();

        // `delay` (both): lost and regained within it, nothing is reported.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let delayed = TrackProcess {
            fork_delay: Duration::from_millis(800),
            terminate_delay: Duration::from_millis(800),
            ..s.tracker("d")
        };
        let mut child = s.spawn();
        let (initial, task) = start(&[delayed], Duration::from_millis(100), tx).expect("start");
        assert_eq!(initial, vec![up("d", true)]);
        stop(&mut child);
        let mut child = s.spawn();
        assert_eq!(next(&mut rx, Duration::from_millis(1200)).await, None);
        stop(&mut child);
        assert_eq!(
            next(&mut rx, Duration::from_secs(3)).await,
            Some(up("d", false))
        );
        task.abort();
    }

    #[tokio::test]
    async fn fork_delay_postpones_a_gained_quorum() {
        let s = Sleeper::new();
        let delayed = TrackProcess {
            fork_delay: Duration::from_millis(600),
            ..s.tracker("f")
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (initial, task) = start(&[delayed], Duration::from_millis(100), tx).expect("start");
        assert_eq!(initial, vec![up("f", false)]);
        let started = Instant::now();
        let mut child = s.spawn();
        let got = next(&mut rx, Duration::from_secs(3)).await;
        let elapsed = started.elapsed();
        assert_eq!(got, Some(up("f", true)));
        assert!(
            elapsed >= Duration::from_millis(600),
            "reported after {elapsed:?}"
        );
        // A loss is reported at once (no terminate_delay).
        stop(&mut child);
        assert_eq!(
            next(&mut rx, Duration::from_secs(2)).await,
            Some(up("f", false))
        );
        task.abort();
    }
}
