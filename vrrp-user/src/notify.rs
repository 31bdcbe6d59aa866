//! Notify scripts and the notify FIFO, as keepalived 2.2.7 does them.
//!
//! On a transition of an instance or sync group ("owner"), in this order:
//! 1. the state's own script (`notify_master|backup|fault|stop`), with only
//!    its own arguments;
//! 2. the generic `notify` script, with its arguments plus
//!    `INSTANCE|GROUP name STATE priority` (priority 0 for groups);
//! 3. a line on the FIFO: `INSTANCE "VI_1" MASTER 100`.
//!
//! Scripts never block the caller: each owner has one queue (a channel and a
//! task) that runs its scripts one after the other, waiting up to
//! [`SCRIPT_WAIT`] for each, so an owner's scripts see its transitions in
//! order. A script still running after that is left running and reaped
//! whenever it ends. Failures (missing script, refused by
//! `enable_script_security`, non-zero exit) are logged, never fatal.
//!
//! The FIFO line is written at once, like keepalived, which launches the
//! scripts and writes the FIFO without waiting for them.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::process::Child;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::command::{self, CommandError, Outcome, RunAs};
use crate::config::{self, GlobalDefs};

/// How long an owner's queue waits for one script before starting the next.
pub const SCRIPT_WAIT: Duration = Duration::from_secs(30);
/// How long [`Notifier::stop`] waits for the STOP scripts (keepalived: 1 s).
pub const STOP_WAIT: Duration = Duration::from_secs(1);
/// How long [`Notifier::shutdown`] lets the queues drain before killing.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(2);
/// How long killed scripts get to be reaped at shutdown.
const REAP_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notify scripts: {0}")]
    User(#[from] CommandError),
    #[error("notify: no tokio runtime to run scripts on")]
    NoRuntime,
    #[error("notify_fifo {}: mkfifo: {source}", path.display())]
    Mkfifo { path: PathBuf, source: nix::Error },
    #[error("notify_fifo {}: stat: {source}", path.display())]
    Stat { path: PathBuf, source: io::Error },
    #[error("notify_fifo {}: exists and is not a FIFO", path.display())]
    NotFifo { path: PathBuf },
    #[error("notify_fifo {}: open(O_RDWR|O_NONBLOCK|O_NOFOLLOW): {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyState {
    Master,
    Backup,
    Fault,
    Stop,
}

impl NotifyState {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyState::Master => "MASTER",
            NotifyState::Backup => "BACKUP",
            NotifyState::Fault => "FAULT",
            NotifyState::Stop => "STOP",
        }
    }

    /// The config keyword of this state's own script.
    fn keyword(self) -> &'static str {
        match self {
            NotifyState::Master => "notify_master",
            NotifyState::Backup => "notify_backup",
            NotifyState::Fault => "notify_fault",
            NotifyState::Stop => "notify_stop",
        }
    }

    fn script(self, scripts: &config::Notify) -> Option<&String> {
        match self {
            NotifyState::Master => scripts.master.as_ref(),
            NotifyState::Backup => scripts.backup.as_ref(),
            NotifyState::Fault => scripts.fault.as_ref(),
            NotifyState::Stop => scripts.stop.as_ref(),
        }
    }
}

impl std::fmt::Display for NotifyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose transition it is: a `vrrp_instance` or a `vrrp_sync_group`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Instance(String),
    Group(String),
}

impl Owner {
    /// The word notify scripts and the FIFO get.
    pub fn keyword(&self) -> &'static str {
        match self {
            Owner::Instance(_) => "INSTANCE",
            Owner::Group(_) => "GROUP",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Owner::Instance(n) | Owner::Group(n) => n,
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Instance(n) => write!(f, "vrrp_instance {n}"),
            Owner::Group(n) => write!(f, "vrrp_sync_group {n}"),
        }
    }
}

enum Job {
    Run {
        /// For logs: "vrrp_instance VI_1 notify_master".
        what: String,
        command: String,
        extra: Vec<String>,
    },
    /// Answered when the queue reaches it.
    Barrier(oneshot::Sender<()>),
}

/// What the queue tasks share.
struct Shared {
    run_as: RunAs,
    security: bool,
    /// Turns true at shutdown: whoever waits on a script kills its group.
    kill: watch::Receiver<bool>,
    /// Queue tasks and background waiters, for shutdown.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn track(&self, handle: JoinHandle<()>) {
        let mut tasks = lock(&self.tasks);
        tasks.retain(|h| !h.is_finished());
        tasks.push(handle);
    }

    /// Shutdown has begun, or the Notifier was dropped.
    fn killing(&self) -> bool {
        *self.kill.borrow() || self.kill.has_changed().is_err()
    }
}

/// The notify FIFO. The O_RDWR descriptor is kept for the daemon's life: an
/// O_RDWR open never waits for a reader, writes never fail with EPIPE when
/// the reader goes away, and lines stay buffered until one comes back.
struct Fifo {
    path: PathBuf,
    file: File,
    /// We made it, so we remove it at shutdown (as keepalived does).
    created: bool,
}

/// Runs notify scripts and writes the notify FIFO; see the module docs.
pub struct Notifier {
    shared: Arc<Shared>,
    runtime: Handle,
    queues: Mutex<HashMap<Owner, mpsc::UnboundedSender<Job>>>,
    kill_tx: watch::Sender<bool>,
    fifo: Option<Fifo>,
    fifo_script: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not stop notifications.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resolves when shutdown asks to kill (or the Notifier is gone).
async fn kill_requested(kill: &mut watch::Receiver<bool>) {
    let _ = kill.wait_for(|k| *k).await;
}

impl Notifier {
    /// Scripts run as `script_user` (else `keepalived_script`, else root);
    /// with `enable_script_security` each program is checked right before it
    /// would run. With `notify_fifo` the FIFO is created if missing (0644,
    /// owned by the script user, like keepalived), `notify_fifo_script` is
    /// started with the FIFO's path as its last argument, and the FIFO is
    /// opened for writing.
    ///
    /// Must be called within a tokio runtime; scripts run on it. Dropping the
    /// Notifier without [`Notifier::shutdown`] kills its running scripts.
    pub fn new(global: &GlobalDefs) -> Result<Notifier, NotifyError> {
        let runtime = Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        let run_as = command::resolve_user(None, global.script_user.as_ref())?;
        let (kill_tx, kill) = watch::channel(false);
        let shared = Arc::new(Shared {
            run_as,
            security: global.enable_script_security,
            kill,
            tasks: Mutex::new(Vec::new()),
        });
        let mut notifier = Notifier {
            shared,
            runtime,
            queues: Mutex::new(HashMap::new()),
            kill_tx,
            fifo: None,
            fifo_script: None,
        };
        let Some(path) = &global.notify_fifo else {
            if let Some(script) = &global.notify_fifo_script {
                warn!("notify_fifo_script {script}: no notify_fifo; not started");
            }
            return Ok(notifier);
        };
        let created = create_fifo(path, &notifier.shared.run_as)?;
        if let Some(script) = &global.notify_fifo_script {
            notifier.fifo_script = notifier.start_fifo_script(script, path);
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|source| NotifyError::Open {
                path: path.clone(),
                source,
            });
        let file = match file {
            Ok(file) => file,
            Err(e) => {
                if created {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        };
        notifier.fifo = Some(Fifo {
            path: path.clone(),
            file,
            created,
        });
        Ok(notifier)
    }

    /// Start `notify_fifo_script` with the FIFO path appended; a failure is
    /// a warning. Its waiter kills and reaps it at shutdown.
    fn start_fifo_script(&self, script: &str, fifo: &Path) -> Option<JoinHandle<()>> {
        let what = "notify_fifo_script";
        let mut argv = self.prepare(what, script)?;
        argv.push(fifo.display().to_string());
        let _guard = self.runtime.enter();
        let mut child = match command::spawn(&argv, &self.shared.run_as) {
            Ok(child) => child,
            Err(e) => {
                warn!("{what}: {e}");
                return None;
            }
        };
        let mut kill = self.shared.kill.clone();
        Some(self.runtime.spawn(async move {
            tokio::select! {
                outcome = command::wait(&mut child) => {
                    warn!("{what} {}: ended ({outcome})", argv[0]);
                }
                _ = kill_requested(&mut kill) => command::kill_and_reap(&mut child).await,
            }
        }))
    }

    /// Split `script` and, with script security, check its program; `None`
    /// (after a warning) when it must not run.
    fn prepare(&self, what: &str, script: &str) -> Option<Vec<String>> {
        prepare(&self.shared, what, script)
    }

    /// Report a transition: queue the scripts (see the module docs) and
    /// write the FIFO line. Never blocks. `priority` is the effective
    /// priority (groups always report 0, as keepalived).
    pub fn notify(
        &self,
        owner: &Owner,
        scripts: &config::Notify,
        state: NotifyState,
        priority: u8,
    ) {
        self.notify_queued(owner, scripts, state, priority);
    }

    /// [`Notifier::notify`]; whether any script was queued.
    fn notify_queued(
        &self,
        owner: &Owner,
        scripts: &config::Notify,
        state: NotifyState,
        priority: u8,
    ) -> bool {
        let priority = match owner {
            Owner::Instance(_) => priority,
            Owner::Group(_) => 0,
        };
        let mut queued = false;
        if let Some(command) = state.script(scripts) {
            queued |= self.enqueue(
                owner,
                Job::Run {
                    what: format!("{owner} {}", state.keyword()),
                    command: command.clone(),
                    extra: Vec::new(),
                },
            );
        }
        if let Some(command) = &scripts.notify {
            queued |= self.enqueue(
                owner,
                Job::Run {
                    what: format!("{owner} notify"),
                    command: command.clone(),
                    extra: vec![
                        owner.keyword().to_string(),
                        owner.name().to_string(),
                        state.as_str().to_string(),
                        priority.to_string(),
                    ],
                },
            );
        }
        self.write_fifo(owner, state, priority);
        queued
    }

    /// The STOP transition: like [`Notifier::notify`], then wait until the
    /// owner's queue has run the STOP scripts, at most [`STOP_WAIT`].
    pub async fn stop(&self, owner: &Owner, scripts: &config::Notify, priority: u8) {
        if !self.notify_queued(owner, scripts, NotifyState::Stop, priority) {
            return;
        }
        let (tx, rx) = oneshot::channel();
        if !self.enqueue(owner, Job::Barrier(tx)) {
            return;
        }
        if tokio::time::timeout(STOP_WAIT, rx).await.is_err() {
            info!(
                "{owner}: STOP scripts still running after {}s; not waiting for them",
                STOP_WAIT.as_secs()
            );
        }
    }

    /// Put `job` on `owner`'s queue, starting the queue if needed.
    fn enqueue(&self, owner: &Owner, job: Job) -> bool {
        let mut queues = lock(&self.queues);
        let mut job = job;
        // Twice at most: a queue whose task died is replaced once.
        for _ in 0..2 {
            let tx = queues.entry(owner.clone()).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                let task = self.runtime.spawn(run_queue(self.shared.clone(), rx));
                self.shared.track(task);
                tx
            });
            match tx.send(job) {
                Ok(()) => return true,
                Err(mpsc::error::SendError(back)) => {
                    job = back;
                    queues.remove(owner);
                }
            }
        }
        warn!("{owner}: notify queue unavailable; scripts not run");
        false
    }

    fn write_fifo(&self, owner: &Owner, state: NotifyState, priority: u8) {
        let Some(fifo) = &self.fifo else {
            return;
        };
        let line = format!(
            "{} \"{}\" {} {}\n",
            owner.keyword(),
            owner.name(),
            state.as_str(),
            priority
        );
        // Lines up to PIPE_BUF are written whole or not at all.
        match (&fifo.file).write(line.as_bytes()) {
            Ok(n) if n == line.len() => {}
            Ok(n) => warn!(
                "notify_fifo {}: only {n} of {} bytes written",
                fifo.path.display(),
                line.len()
            ),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => warn!(
                "notify_fifo {}: full (no reader?); dropped: {}",
                fifo.path.display(),
                line.trim_end()
            ),
            Err(e) => warn!("notify_fifo {}: write: {e}", fifo.path.display()),
        }
    }

    /// Stop: let the queues drain for up to [`SHUTDOWN_DRAIN`], then kill
    /// (SIGKILL to the process group) and reap every script still running,
    /// including `notify_fifo_script`, and remove the FIFO if we made it.
    pub async fn shutdown(self) {
        let Notifier {
            shared,
            queues,
            kill_tx,
            fifo,
            fifo_script,
            ..
        } = self;
        // No more jobs: each queue task ends after what it has.
        drop(queues);
        let drained = drain(&shared, tokio::time::Instant::now() + SHUTDOWN_DRAIN).await;
        let _ = kill_tx.send(true);
        if !drained && !drain(&shared, tokio::time::Instant::now() + REAP_WAIT).await {
            let left = std::mem::take(&mut *lock(&shared.tasks));
            warn!(
                "notify: {} script waiters did not finish; abandoned",
                left.len()
            );
            for task in left {
                task.abort();
            }
        }
        if let Some(task) = fifo_script {
            if tokio::time::timeout(REAP_WAIT, task).await.is_err() {
                warn!(
                    "notify_fifo_script: not reaped after {}s",
                    REAP_WAIT.as_secs()
                );
            }
        }
        if let Some(fifo) = fifo {
            if fifo.created {
                if let Err(e) = std::fs::remove_file(&fifo.path) {
                    warn!("notify_fifo {}: unlink: {e}", fifo.path.display());
                }
            }
        }
        drop(kill_tx);
    }
}

/// Wait for the tracked tasks (including any started meanwhile) until
/// `deadline`; whether all finished.
async fn drain(shared: &Shared, deadline: tokio::time::Instant) -> bool {
    loop {
        let mut tasks = std::mem::take(&mut *lock(&shared.tasks));
        if tasks.is_empty() {
            return true;
        }
        while let Some(mut task) = tasks.pop() {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tasks.push(task);
                lock(&shared.tasks).append(&mut tasks);
                return false;
            }
        }
    }
}

fn prepare(shared: &Shared, what: &str, script: &str) -> Option<Vec<String>> {
    let mut argv = match command::split_command(script) {
        Ok(argv) => argv,
        Err(e) => {
            warn!("{what}: {e}; not run");
            return None;
        }
    };
    if shared.security {
        match command::secure_program(&argv[0], &shared.run_as) {
            // Run what was checked, not whatever PATH finds later.
            Ok(program) => argv[0] = program.display().to_string(),
            Err(e) => {
                warn!("{what}: {e}; not run");
                return None;
            }
        }
    }
    Some(argv)
}

/// One owner's queue: run its jobs one at a time, in order.
async fn run_queue(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        match job {
            Job::Barrier(done) => {
                let _ = done.send(());
            }
            // Shutting down: what is left is not started.
            Job::Run { what, .. } if shared.killing() => {
                debug!("{what}: not run, shutting down");
            }
            Job::Run {
                what,
                command,
                extra,
            } => run_job(&shared, &what, &command, extra).await,
        }
    }
}

async fn run_job(shared: &Arc<Shared>, what: &str, script: &str, extra: Vec<String>) {
    let Some(mut argv) = prepare(shared, what, script) else {
        return;
    };
    argv.extend(extra);
    let mut child = match command::spawn(&argv, &shared.run_as) {
        Ok(child) => child,
        Err(e) => {
            warn!("{what}: {e}");
            return;
        }
    };
    let mut kill = shared.kill.clone();
    let waited = tokio::select! {
        waited = tokio::time::timeout(SCRIPT_WAIT, command::wait(&mut child)) => waited,
        _ = kill_requested(&mut kill) => {
            command::kill_and_reap(&mut child).await;
            info!("{what} {}: killed at shutdown", argv[0]);
            return;
        }
    };
    match waited {
        Ok(outcome) => log_outcome(what, &argv[0], outcome),
        Err(_) => {
            info!(
                "{what} {}: still running after {}s; starting the next script",
                argv[0],
                SCRIPT_WAIT.as_secs()
            );
            let what = what.to_string();
            let task = tokio::spawn(background_wait(child, kill, what, argv));
            shared.track(task);
        }
    }
}

/// Reap a script we stopped waiting for (or kill it at shutdown).
async fn background_wait(
    mut child: Child,
    mut kill: watch::Receiver<bool>,
    what: String,
    argv: Vec<String>,
) {
    tokio::select! {
        outcome = command::wait(&mut child) => log_outcome(&what, &argv[0], outcome),
        _ = kill_requested(&mut kill) => {
            command::kill_and_reap(&mut child).await;
            info!("{what} {}: killed at shutdown", argv[0]);
        }
    }
}

fn log_outcome(what: &str, program: &str, outcome: Outcome) {
    match outcome {
        Outcome::Exited(0) => debug!("{what} {program}: {outcome}"),
        Outcome::WaitFailed(_) => warn!("{what} {program}: {outcome}"),
        _ => info!("{what} {program}: {outcome}"),
    }
}

/// Make the FIFO if it is missing; whether we made it.
fn create_fifo(path: &Path, run_as: &RunAs) -> Result<bool, NotifyError> {
    use nix::sys::stat::Mode;
    match nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o644)) {
        Ok(()) => {
            let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
            if run_as.uid != uid.as_raw() || run_as.gid != gid.as_raw() {
                // The script user must be able to read it.
                if let Err(e) = nix::unistd::chown(
                    path,
                    Some(nix::unistd::Uid::from_raw(run_as.uid)),
                    Some(nix::unistd::Gid::from_raw(run_as.gid)),
                ) {
                    warn!(
                        "notify_fifo {}: chown to {}: {e}",
                        path.display(),
                        run_as.user
                    );
                }
            }
            Ok(true)
        }
        Err(nix::errno::Errno::EEXIST) => {
            let meta = std::fs::symlink_metadata(path).map_err(|source| NotifyError::Stat {
                path: path.to_path_buf(),
                source,
            })?;
            if !meta.file_type().is_fifo() {
                return Err(NotifyError::NotFifo {
                    path: path.to_path_buf(),
                });
            }
            Ok(false)
        }
        Err(source) => Err(NotifyError::Mkfifo {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::tests::{is_gone, our_zombies, read_pid, wait_until, TempDir};
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    /// A script appending `---` and its argv, one per line, to `out`.
    fn recorder(dir: &TempDir, name: &str, out: &Path, sleep: &str) -> String {
        let body = format!(
            "#!/bin/sh\n{sleep}\n{{ echo ---; printf '%s\\n' \"$@\"; }} >> {}\n",
            out.display()
        );
        dir.script(name, &body).display().to_string()
    }

    fn global() -> GlobalDefs {
        GlobalDefs {
            script_user: Some(config::ScriptUser {
                user: "root".into(),
                group: None,
            }),
            ..GlobalDefs::default()
        }
    }

    fn blocks(path: &Path) -> usize {
        std::fs::read_to_string(path)
            .map(|s| s.lines().filter(|l| *l == "---").count())
            .unwrap_or(0)
    }

    async fn wait_blocks(path: &Path, n: usize) -> String {
        wait_until(|| blocks(path) >= n).await;
        std::fs::read_to_string(path).unwrap()
    }

    #[tokio::test]
    async fn notify_scripts_get_exact_argv() {
        let dir = TempDir::new("notify");
        let out = dir.path("out");
        let rec = recorder(&dir, "xvt_rec", &out, "");
        let n = Notifier::new(&global()).unwrap();
        let scripts = config::Notify {
            notify: Some(format!("{rec} gen")),
            master: Some(format!("{rec} 'a b' c")),
            backup: Some(format!("{rec} gb")),
            ..Default::default()
        };
        let vi = Owner::Instance("VI_1".into());
        n.notify(&vi, &scripts, NotifyState::Master, 100);
        assert_eq!(
            wait_blocks(&out, 2).await,
            "---\na b\nc\n---\ngen\nINSTANCE\nVI_1\nMASTER\n100\n"
        );
        std::fs::remove_file(&out).unwrap();
        n.notify(
            &Owner::Group("G1".into()),
            &scripts,
            NotifyState::Backup,
            77,
        );
        assert_eq!(
            wait_blocks(&out, 2).await,
            "---\ngb\n---\ngen\nGROUP\nG1\nBACKUP\n0\n"
        );
        std::fs::remove_file(&out).unwrap();
        // No fault script: only the generic one.
        n.notify(&vi, &scripts, NotifyState::Fault, 90);
        assert_eq!(
            wait_blocks(&out, 1).await,
            "---\ngen\nINSTANCE\nVI_1\nFAULT\n90\n"
        );
        n.shutdown().await;
        wait_until(|| our_zombies("xvt_rec").is_empty()).await;
    }

    #[tokio::test]
    async fn order_per_owner_is_kept() {
        let dir = TempDir::new("notify");
        let out = dir.path("out");
        let slow = recorder(&dir, "xvt_slow", &out, "sleep 0.3");
        let rec = recorder(&dir, "xvt_rec", &out, "");
        let n = Notifier::new(&global()).unwrap();
        let scripts = config::Notify {
            notify: Some(format!("{rec} gen")),
            master: Some(format!("{slow} master")),
            backup: Some(format!("{rec} backup")),
            ..Default::default()
        };
        let vi = Owner::Instance("VI_1".into());
        n.notify(&vi, &scripts, NotifyState::Master, 100);
        n.notify(&vi, &scripts, NotifyState::Backup, 100);
        assert_eq!(
            wait_blocks(&out, 4).await,
            "---\nmaster\n---\ngen\nINSTANCE\nVI_1\nMASTER\n100\n\
             ---\nbackup\n---\ngen\nINSTANCE\nVI_1\nBACKUP\n100\n"
        );
        n.shutdown().await;
    }

    #[tokio::test]
    async fn missing_or_bad_scripts_do_not_stop_the_rest() {
        let dir = TempDir::new("notify");
        let out = dir.path("out");
        let rec = recorder(&dir, "xvt_rec", &out, "");
        let n = Notifier::new(&global()).unwrap();
        let vi = Owner::Instance("VI_1".into());
        let scripts = config::Notify {
            notify: Some(format!("{rec} gen")),
            master: Some(dir.path("missing.sh").display().to_string()),
            backup: Some("/bin/x 'unterminated".into()),
            fault: Some("/bin/false".into()),
            ..Default::default()
        };
        n.notify(&vi, &scripts, NotifyState::Master, 100);
        n.notify(&vi, &scripts, NotifyState::Backup, 100);
        n.notify(&vi, &scripts, NotifyState::Fault, 100);
        let text = wait_blocks(&out, 3).await;
        assert_eq!(
            text,
            "---\ngen\nINSTANCE\nVI_1\nMASTER\n100\n\
             ---\ngen\nINSTANCE\nVI_1\nBACKUP\n100\n\
             ---\ngen\nINSTANCE\nVI_1\nFAULT\n100\n"
        );
        n.shutdown().await;
    }

    #[tokio::test]
    async fn script_security_skips_insecure_scripts() {
        let dir = TempDir::new("notify");
        let out = dir.path("out");
        let rec = recorder(&dir, "xvt_rec", &out, "");
        let open = TempDir::new("notify-open");
        let bad = recorder(&open, "xvt_bad", &out, "");
        std::fs::set_permissions(&open.0, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut g = global();
        g.enable_script_security = true;
        let n = Notifier::new(&g).unwrap();
        let scripts = config::Notify {
            notify: Some(format!("{rec} gen")),
            master: Some(format!("{bad} bad")),
            ..Default::default()
        };
        n.notify(
            &Owner::Instance("VI_1".into()),
            &scripts,
            NotifyState::Master,
            100,
        );
        assert_eq!(
            wait_blocks(&out, 1).await,
            "---\ngen\nINSTANCE\nVI_1\nMASTER\n100\n"
        );
        n.shutdown().await;
    }

    #[tokio::test]
    async fn stop_waits_for_the_stop_scripts_at_most_1s() {
        let dir = TempDir::new("notify");
        let out = dir.path("out");
        let slow = recorder(&dir, "xvt_slow", &out, "sleep 0.3");
        let n = Notifier::new(&global()).unwrap();
        let vi = Owner::Instance("VI_1".into());
        let scripts = config::Notify {
            stop: Some(format!("{slow} stop")),
            ..Default::default()
        };
        n.stop(&vi, &scripts, 100).await;
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "---\nstop\n");

        let hang = dir.script(
            "xvt_stophang",
            &format!(
                "#!/bin/sh\necho $$ > {}\nexec sleep 100\n",
                dir.path("pid").display()
            ),
        );
        let scripts = config::Notify {
            stop: Some(hang.display().to_string()),
            ..Default::default()
        };
        let started = Instant::now();
        n.stop(&vi, &scripts, 100).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        let pid = read_pid(&dir.path("pid"));
        assert!(!is_gone(pid));
        // Shutdown kills and reaps what still runs, within its bounds.
        let started = Instant::now();
        n.shutdown().await;
        assert!(started.elapsed() < Duration::from_secs(5));
        wait_until(|| is_gone(pid)).await;
        wait_until(|| our_zombies("xvt_").is_empty()).await;
    }

    #[tokio::test]
    async fn fifo_lines() {
        let dir = TempDir::new("notify");
        let path = dir.path("fifo");
        let mut g = global();
        g.notify_fifo = Some(path.clone());
        let n = Notifier::new(&g).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_fifo());
        let none = config::Notify::default();
        n.notify(
            &Owner::Instance("VI_1".into()),
            &none,
            NotifyState::Master,
            100,
        );
        n.notify(&Owner::Group("G1".into()), &none, NotifyState::Master, 100);
        n.notify(
            &Owner::Instance("VI_2".into()),
            &none,
            NotifyState::Fault,
            0,
        );
        n.stop(&Owner::Instance("VI_1".into()), &none, 100).await;
        // The lines wait in the pipe for a reader.
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let len = reader.read(&mut buf).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&buf[..len]),
            "INSTANCE \"VI_1\" MASTER 100\nGROUP \"G1\" MASTER 0\n\
             INSTANCE \"VI_2\" FAULT 0\nINSTANCE \"VI_1\" STOP 100\n"
        );
        n.shutdown().await;
        // We made it, so it is removed.
        assert!(!path.exists());

        // A path that is not a FIFO is refused.
        let file = dir.path("file");
        std::fs::write(&file, "").unwrap();
        g.notify_fifo = Some(file.clone());
        assert!(matches!(
            Notifier::new(&g),
            Err(NotifyError::NotFifo { .. })
        ));
    }

    #[tokio::test]
    async fn fifo_script_reads_the_fifo_and_is_killed_at_shutdown() {
        let dir = TempDir::new("notify");
        let path = dir.path("fifo");
        let args = dir.path("args");
        let lines = dir.path("lines");
        let reader = dir.script(
            "xvt_fiforead",
            &format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\necho $$ > {}\nexec cat \"$2\" > {}\n",
                args.display(),
                dir.path("pid").display(),
                lines.display()
            ),
        );
        let mut g = global();
        g.notify_fifo = Some(path.clone());
        g.notify_fifo_script = Some(format!("{} tag", reader.display()));
        let n = Notifier::new(&g).unwrap();
        let none = config::Notify::default();
        n.notify(
            &Owner::Instance("VI_1".into()),
            &none,
            NotifyState::Backup,
            50,
        );
        let want = "INSTANCE \"VI_1\" BACKUP 50\n";
        wait_until(|| std::fs::read_to_string(&lines).is_ok_and(|s| s == want)).await;
        assert_eq!(
            std::fs::read_to_string(&args).unwrap(),
            format!("tag\n{}\n", path.display())
        );
        let pid = read_pid(&dir.path("pid"));
        assert!(!is_gone(pid));
        n.shutdown().await;
        wait_until(|| is_gone(pid)).await;
    }

    #[tokio::test]
    async fn full_fifo_drops_whole_lines_without_blocking() {
        let dir = TempDir::new("notify");
        let path = dir.path("fifo");
        let mut g = global();
        g.notify_fifo = Some(path.clone());
        let n = Notifier::new(&g).unwrap();
        let none = config::Notify::default();
        let vi = Owner::Instance("VI_1".into());
        // Far more than a pipe holds (64 KiB by default), with no reader.
        let started = Instant::now();
        for _ in 0..10_000 {
            n.notify(&vi, &none, NotifyState::Backup, 100);
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let mut text = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(len) => text.extend_from_slice(&buf[..len]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let text = String::from_utf8(text).unwrap();
        let lines = text.lines().count();
        assert!(lines > 100 && lines < 10_000, "{lines}");
        assert!(text.lines().all(|l| l == "INSTANCE \"VI_1\" BACKUP 100"));
        assert!(text.ends_with('\n'));
        n.shutdown().await;
    }

    #[tokio::test]
    async fn existing_fifo_is_kept() {
        let dir = TempDir::new("notify");
        let path = dir.path("fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut g = global();
        g.notify_fifo = Some(path.clone());
        let n = Notifier::new(&g).unwrap();
        n.shutdown().await;
        assert!(path.exists());
    }

    #[test]
    fn notifier_can_be_shared_between_tasks() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Notifier>();
    }

    #[test]
    fn new_outside_a_runtime_is_an_error() {
        assert!(matches!(
            Notifier::new(&global()),
            Err(NotifyError::NoRuntime)
        ));
    }
}
