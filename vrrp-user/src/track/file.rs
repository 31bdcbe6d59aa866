//! `vrrp_track_file`: the integer in a file, reported as [`Status::Value`].
//!
//! The file is read the way keepalived reads it (`strtol`, see
//! [`parse_value`]); a missing, unreadable or unparsable file counts as 0.
//!
//! Changes are seen through inotify on the file's *parent directory*, not on
//! the file itself: editors and `mv tmp file` replace the inode, and a file
//! may be deleted and created again, none of which a watch on the file would
//! follow. Files in one directory share the kernel's one watch. Reads happen
//! on `IN_CLOSE_WRITE`, `IN_MOVED_TO`, `IN_CREATE`, `IN_DELETE` and
//! `IN_MOVED_FROM` at once; a bare `IN_MODIFY` (a writer that keeps the file
//! open) is read [`SETTLE`] later, so the truncation that starts every
//! `echo 5 > file` is never reported as a transient 0 that could flap the
//! priority. Only changed values are sent.
//!
//! If the directory itself goes away (deleted, moved or unmounted), the files
//! count as 0 and the watch is retried every [`REWATCH_INTERVAL`].
//!
//! A symlinked file is read through the link, but only changes to the link's
//! own directory are seen.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use thiserror::Error;
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::io::Interest;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::{EventSender, Status, TrackEvent, TrackerId};
use crate::config::{InitFile, TrackFile};

/// How long after a bare `IN_MODIFY` the file is read (a close comes sooner).
pub const SETTLE: Duration = Duration::from_millis(100);

/// How often a lost directory watch is tried again.
pub const REWATCH_INTERVAL: Duration = Duration::from_secs(1);

/// strtol stops at the first non-digit; nothing sensible is longer.
const READ_MAX: u64 = 4096;

/// Bounds the work done per wake-up when the directory is very busy; the
/// rest is read on the next turn of the loop.
const MAX_BATCHES: usize = 64;

#[derive(Debug, Error)]
pub enum FileError {
    #[error("track_file {name}: {} names no file", path.display())]
    NoFileName { name: String, path: PathBuf },
    #[error("track_file {name}: init_file {}: {source}", path.display())]
    InitFile {
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("inotify_init1: {0}")]
    Init(#[source] Errno),
    #[error("track_file {name}: inotify_add_watch({}): {source}", dir.display())]
    Watch {
        name: String,
        dir: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("registering the inotify fd with tokio: {0}")]
    Register(#[source] io::Error),
    #[error("track_file must be started from within a tokio runtime")]
    NoRuntime,
}

/// The number at the start of `text`, as C's `strtol(text, NULL, 10)` reads
/// it: leading whitespace, an optional sign, then digits; 0 if there are
/// none; saturating at the i64 range as strtol does at LONG_MIN/LONG_MAX.
pub fn parse_value(text: &str) -> i64 {
    let s = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut value: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        let d = i64::from(b - b'0');
        value = value.saturating_mul(10);
        value = if negative {
            value.saturating_sub(d)
        } else {
            value.saturating_add(d)
        };
    }
    value
}

/// The file's value now; anything that prevents reading it counts as 0.
pub fn read_value(path: &Path) -> i64 {
    let mut raw = Vec::new();
    // O_NONBLOCK: a FIFO at that path must not hang the tracker.
    let read = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .and_then(|f| f.take(READ_MAX).read_to_end(&mut raw));
    match read {
        Ok(_) => parse_value(&String::from_utf8_lossy(&raw)),
        Err(_) => 0,
    }
}

/// `init_file`: create the file with its value, or overwrite it if asked.
/// The directory must exist.
fn init_file(path: &Path, init: &InitFile) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    if init.overwrite {
        opts.create(true).truncate(true);
    } else {
        // create_new: never clobber a file that appeared meanwhile.
        opts.create_new(true);
    }
    match opts.open(path) {
        Ok(mut f) => f.write_all(format!("{}\n", init.value).as_bytes()),
        Err(e) if !init.overwrite && e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn watch_mask() -> AddWatchFlags {
    AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
}

/// Events after which the file is complete (or gone) and read at once.
fn settled_mask() -> AddWatchFlags {
    AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
}

/// AsyncFd needs AsRawFd, which nix's Inotify lacks.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

struct Tracked {
    name: String,
    id: TrackerId,
    /// Absolute, so a later chdir changes nothing.
    path: PathBuf,
    dir: PathBuf,
    file_name: OsString,
    /// None while the directory cannot be watched (retried).
    wd: Option<WatchDescriptor>,
    value: i64,
    /// A bare IN_MODIFY was seen: read at this instant.
    settle: Option<Instant>,
}

struct Files {
    files: Vec<Tracked>,
}

impl Files {
    fn new(files: &[TrackFile]) -> Result<Files, FileError> {
        let cwd = std::env::current_dir().ok();
        let mut tracked = Vec::with_capacity(files.len());
        for f in files {
            let path = match (&cwd, f.file.is_relative()) {
                (Some(cwd), true) => cwd.join(&f.file),
                _ => f.file.clone(),
            };
            let no_name = || FileError::NoFileName {
                name: f.name.clone(),
                path: f.file.clone(),
            };
            let file_name = path.file_name().ok_or_else(no_name)?.to_os_string();
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            tracked.push(Tracked {
                name: f.name.clone(),
                id: TrackerId::File(f.name.clone()),
                path,
                dir,
                file_name,
                wd: None,
                value: 0,
                settle: None,
            });
        }
        Ok(Files { files: tracked })
    }

    /// Watch every file's directory. At start (`strict`) only a missing
    /// directory is tolerated (it may be created later); other failures are
    /// errors. On retries every failure just waits for the next one.
    fn watch(&mut self, inotify: &Inotify, strict: bool) -> Result<Vec<usize>, FileError> {
        let mut watched = Vec::new();
        for (i, f) in self.files.iter_mut().enumerate() {
            if f.wd.is_some() {
                continue;
            }
            match inotify.add_watch(&f.dir, watch_mask()) {
                Ok(wd) => {
                    if !strict {
                        tracing::info!("{}: watching {} again", f.id, f.dir.display());
                    }
                    f.wd = Some(wd);
                    watched.push(i);
                }
                Err(Errno::ENOENT) if strict => tracing::warn!(
                    "{}: directory {} does not exist; the value is 0 until it does",
                    f.id,
                    f.dir.display()
                ),
                Err(source) if strict => {
                    return Err(FileError::Watch {
                        name: f.name.clone(),
                        dir: f.dir.clone(),
                        source,
                    })
                }
                Err(_) => {}
            }
        }
        Ok(watched)
    }

    fn unwatched(&self) -> bool {
        self.files.iter().any(|f| f.wd.is_none())
    }

    /// Which files to read now for these events; bare modifications only
    /// arm their settle timer.
    fn handle(&mut self, inotify: &Inotify, events: &[InotifyEvent], now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        for ev in events {
            if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                // Events were dropped: anything may have changed.
                tracing::warn!("track_file: inotify queue overflow; re-reading every file");
                due.extend(0..self.files.len());
                continue;
            }
            if ev.mask.intersects(
                AddWatchFlags::IN_DELETE_SELF
                    | AddWatchFlags::IN_MOVE_SELF
                    | AddWatchFlags::IN_IGNORED,
            ) {
                // The directory is gone or elsewhere: our paths no longer
                // lead into it. Drop the watch (a moved directory's would
                // linger) and retry by path.
                if ev.mask.contains(AddWatchFlags::IN_MOVE_SELF) {
                    let _ = inotify.rm_watch(ev.wd);
                }
                for (i, f) in self.files.iter_mut().enumerate() {
                    if f.wd == Some(ev.wd) {
                        tracing::warn!(
                            "{}: directory {} went away; retrying every {:?}",
                            f.id,
                            f.dir.display(),
                            REWATCH_INTERVAL
                        );
                        f.wd = None;
                        due.push(i);
                    }
                }
                continue;
            }
            let Some(name) = &ev.name else { continue };
            for (i, f) in self.files.iter_mut().enumerate() {
                if f.wd != Some(ev.wd) || f.file_name != *name {
                    continue;
                }
                if ev.mask.intersects(settled_mask()) {
                    due.push(i);
                } else if ev.mask.contains(AddWatchFlags::IN_MODIFY) {
                    // Not reset by later modifications: a busy writer is
                    // still read every SETTLE.
                    f.settle.get_or_insert(now + SETTLE);
                }
            }
        }
        due
    }

    fn settle_due(&self, now: Instant) -> Vec<usize> {
        self.files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.settle.is_some_and(|t| t <= now))
            .map(|(i, _)| i)
            .collect()
    }

    fn next_settle(&self) -> Option<Instant> {
        self.files.iter().filter_map(|f| f.settle).min()
    }

    /// Read the files in `due` and return the changed values.
    fn reread(&mut self, mut due: Vec<usize>) -> Vec<TrackEvent> {
        due.sort_unstable();
        due.dedup();
        let mut events = Vec::new();
        for i in due {
            let Some(f) = self.files.get_mut(i) else {
                continue;
            };
            f.settle = None;
            let value = read_value(&f.path);
            if value != f.value {
                tracing::debug!("{}: {} -> {}", f.id, f.value, value);
                f.value = value;
                events.push(TrackEvent {
                    tracker: f.id.clone(),
                    status: Status::Value(value),
                });
            }
        }
        events
    }

    async fn run(mut self, fd: AsyncFd<InotifyFd>, tx: EventSender) {
        let mut rewatch =
            tokio::time::interval_at(Instant::now() + REWATCH_INTERVAL, REWATCH_INTERVAL);
        rewatch.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let settle = self.next_settle();
            let unwatched = self.unwatched();
            let due = tokio::select! {
                _ = tx.closed() => return,
                ready = fd.readable() => {
                    let (events, reread_all) = drain(ready);
                    let mut due = self.handle(&fd.get_ref().0, &events, Instant::now());
                    if reread_all {
                        due.extend(0..self.files.len());
                    }
                    due
                }
                _ = sleep_until_some(settle) => self.settle_due(Instant::now()),
                _ = rewatch.tick(), if unwatched => {
                    // Infallible when not strict.
                    self.watch(&fd.get_ref().0, false).unwrap_or_default()
                }
            };
            for event in self.reread(due) {
                if tx.send(event).is_err() {
                    return;
                }
            }
        }
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Read the queued inotify events. The flag asks for every file to be
/// re-read because reading failed (events may have been lost).
fn drain(ready: io::Result<AsyncFdReadyGuard<'_, InotifyFd>>) -> (Vec<InotifyEvent>, bool) {
    let mut guard = match ready {
        Ok(guard) => guard,
        Err(e) => {
            tracing::warn!("track_file: waiting for inotify: {e}");
            return (Vec::new(), true);
        }
    };
    let mut events = Vec::new();
    for _ in 0..MAX_BATCHES {
        match guard.try_io(|fd| fd.get_ref().0.read_events().map_err(io::Error::from)) {
            Ok(Ok(batch)) => events.extend(batch),
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => {
                tracing::warn!("track_file: read(inotify): {e}");
                // Clear so a persistent error cannot spin the loop; the
                // next event sets readiness again.
                guard.clear_ready();
                return (events, true);
            }
            // Queue empty; try_io cleared the readiness.
            Err(_would_block) => break,
        }
    }
    (events, false)
}

/// Start tracking `files`: apply `init_file`, watch the directories, and
/// return every file's initial value (one event each, in order), plus the
/// task that then sends only changed values on `tx`. The task ends when
/// `tx` is closed (the receiver is dropped).
pub fn start(
    files: &[TrackFile],
    tx: EventSender,
) -> Result<(Vec<TrackEvent>, JoinHandle<()>), FileError> {
    // AsyncFd and spawn would panic outside a runtime.
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| FileError::NoRuntime)?;
    for f in files {
        if let Some(init) = &f.init_file {
            init_file(&f.file, init).map_err(|source| FileError::InitFile {
                name: f.name.clone(),
                path: f.file.clone(),
                source,
            })?;
        }
    }
    let mut state = Files::new(files)?;
    let inotify =
        Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(FileError::Init)?;
    // Watch before the first read, so no change falls in between.
    state.watch(&inotify, true)?;
    // reread reports only values other than 0; the caller wants them all.
    let _changed = state.reread((0..state.files.len()).collect());
    let initial = state
        .files
        .iter()
        .map(|f| TrackEvent {
            tracker: f.id.clone(),
            status: Status::Value(f.value),
        })
        .collect::<Vec<_>>();
    let _guard = runtime.enter();
    // SAFETY: InotifyFd owns the fd and moves into the AsyncFd, which alone
    // closes it, after deregistering.
    let fd = unsafe { AsyncFd::register_with_interest(InotifyFd(inotify), Interest::READABLE) }
        .map_err(|e| FileError::Register(e.into_parts().1))?;
    let task = runtime.spawn(state.run(fd, tx));
    Ok((initial, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Location;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::sync::mpsc;
    use tokio::time::timeout;

    static COUNTER: AtomicU32 = AtomicU32::new(0);

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("xvrrpd-trackfile-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tracked(name: &str, file: &Path) -> TrackFile {
        TrackFile {
            name: name.to_string(),
            defined_at: Location::new("test.conf", 1),
            file: file.to_path_buf(),
            weight: 1,
            reverse: false,
            init_file: None,
        }
    }

    fn value(name: &str, v: i64) -> TrackEvent {
        TrackEvent {
            tracker: TrackerId::File(name.to_string()),
            status: Status::Value(v),
        }
    }

    async fn next(
        rx: &mut mpsc::UnboundedReceiver<TrackEvent>,
        within: Duration,
    ) -> Option<TrackEvent> {
        timeout(within, rx.recv()).await.ok().flatten()
    }

    const SOON: Duration = Duration::from_secs(2);
    const QUIET: Duration = Duration::from_millis(300);

    #[test]
    fn parse_value_is_strtol() {
        #[rustfmt::skip]
        let table = [
            ("5", 5), (" -3\n", -3), ("12abc", 12), ("abc", 0), ("", 0),
            ("+7", 7), ("-", 0), ("- 3", 0), ("\t\r\n 42 ", 42), ("0x10", 0),
            ("007", 7), ("3.9", 3), ("254\n255\n", 254),
            ("99999999999999999999", i64::MAX), ("-99999999999999999999", i64::MIN),
        ];
        for (text, want) in table {
            assert_eq!(parse_value(text), want, "{text:?}");
        }
    }

    #[test]
    fn missing_or_unreadable_file_is_zero() {
        let dir = TempDir::new();
        assert_eq!(read_value(&dir.join("absent")), 0);
        // A directory cannot be read as a file.
        assert_eq!(read_value(&dir.0), 0);
        std::fs::write(dir.join("v"), "-17\n").expect("write");
        assert_eq!(read_value(&dir.join("v")), -17);
    }

    #[tokio::test]
    async fn init_file_creates_and_overwrites() {
        let dir = TempDir::new();
        let created = TrackFile {
            init_file: Some(InitFile {
                value: 10,
                overwrite: false,
            }),
            ..tracked("created", &dir.join("created"))
        };
        let kept = TrackFile {
            init_file: Some(InitFile {
                value: 10,
                overwrite: false,
            }),
            ..tracked("kept", &dir.join("kept"))
        };
        let overwritten = TrackFile {
            init_file: Some(InitFile {
                value: -5,
                overwrite: true,
            }),
            ..tracked("overwritten", &dir.join("overwritten"))
        };
        std::fs::write(dir.join("kept"), "3\n").expect("write");
        std::fs::write(dir.join("overwritten"), "3\n").expect("write");
        let (tx, _rx) = mpsc::unbounded_channel();
        let (initial, task) = start(&[created, kept, overwritten], tx).expect("start");
        task.abort();
        assert_eq!(
            initial,
            vec![
                value("created", 10),
                value("kept", 3),
                value("overwritten", -5)
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("created")).expect("read"),
            "10\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("kept")).expect("read"),
            "3\n"
        );

        // A missing directory is an error naming the file.
        let lost = dir.join("no-such-dir").join("f");
        let missing = TrackFile {
            init_file: Some(InitFile {
                value: 1,
                overwrite: false,
            }),
            ..tracked("missing", &lost)
        };
        let (tx, _rx) = mpsc::unbounded_channel();
        let err = start(&[missing], tx).expect_err("missing directory");
        assert!(matches!(err, FileError::InitFile { .. }), "{err}");
        assert!(
            err.to_string().contains(&lost.display().to_string()),
            "{err}"
        );
        assert!(!dir.join("no-such-dir").exists());
    }

    #[tokio::test]
    async fn changes_are_reported_once_and_only_when_different() {
        let dir = TempDir::new();
        let a = dir.join("a");
        std::fs::write(&a, "5\n").expect("write");
        let files = [tracked("a", &a), tracked("b", &dir.join("b"))];
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (initial, task) = start(&files, tx).expect("start");
        assert_eq!(initial, vec![value("a", 5), value("b", 0)]);

        // In place (truncate, write, close): no transient 0.
        std::fs::write(&a, "7\n").expect("write");
        assert_eq!(next(&mut rx, SOON).await, Some(value("a", 7)));
        assert_eq!(next(&mut rx, QUIET).await, None);

        // The same value again: nothing.
        std::fs::write(&a, "7\n").expect("write");
        assert_eq!(next(&mut rx, QUIET).await, None);

        // An editor's rename over the file.
        std::fs::write(dir.join("a.tmp"), "9\n").expect("write");
        std::fs::rename(dir.join("a.tmp"), &a).expect("rename");
        assert_eq!(next(&mut rx, SOON).await, Some(value("a", 9)));

        // Deleted counts as 0; recreated is read again.
        std::fs::remove_file(&a).expect("remove");
        assert_eq!(next(&mut rx, SOON).await, Some(value("a", 0)));
        std::fs::write(&a, "3\n").expect("write");
        assert_eq!(next(&mut rx, SOON).await, Some(value("a", 3)));

        // Moved away counts as 0 too.
        std::fs::rename(&a, dir.join("a.old")).expect("rename");
        assert_eq!(next(&mut rx, SOON).await, Some(value("a", 0)));

        // A second file in the same directory shares the watch.
        std::fs::write(dir.join("b"), "-20").expect("write");
        assert_eq!(next(&mut rx, SOON).await, Some(value("b", -20)));
        assert_eq!(next(&mut rx, QUIET).await, None);

        drop(rx);
        timeout(SOON, task)
            .await
            .expect("task ends once the receiver is gone")
            .expect("task did not panic");
    }

    #[tokio::test]
    async fn a_writer_that_keeps_the_file_open_is_read_after_settling() {
        let dir = TempDir::new();
        let path = dir.join("held");
        std::fs::write(&path, "1\n").expect("write");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (initial, task) = start(&[tracked("held", &path)], tx).expect("start");
        assert_eq!(initial, vec![value("held", 1)]);

        let mut f = OpenOptions::new().write(true).open(&path).expect("open");
        let written = Instant::now();
        f.write_all(b"8\n").expect("write");
        assert_eq!(next(&mut rx, SOON).await, Some(value("held", 8)));
        assert!(written.elapsed() >= SETTLE, "read before settling");
        // Closing without a change says nothing more.
        drop(f);
        assert_eq!(next(&mut rx, QUIET).await, None);
        task.abort();
    }

    #[tokio::test]
    async fn a_recreated_directory_is_watched_again() {
        let dir = TempDir::new();
        let sub = dir.join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        let path = sub.join("f");
        std::fs::write(&path, "4\n").expect("write");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (initial, task) = start(&[tracked("f", &path)], tx).expect("start");
        assert_eq!(initial, vec![value("f", 4)]);

        std::fs::remove_dir_all(&sub).expect("rm -r");
        assert_eq!(next(&mut rx, SOON).await, Some(value("f", 0)));
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::write(&path, "6\n").expect("write");
        // Picked up by the retry, within REWATCH_INTERVAL.
        assert_eq!(
            next(&mut rx, REWATCH_INTERVAL + SOON).await,
            Some(value("f", 6))
        );
        std::fs::write(&path, "2\n").expect("write");
        assert_eq!(next(&mut rx, SOON).await, Some(value("f", 2)));
        task.abort();
    }

    #[tokio::test]
    async fn missing_directory_at_start_is_zero_until_it_exists() {
        let dir = TempDir::new();
        let path = dir.join("later").join("f");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (initial, task) = start(&[tracked("f", &path)], tx).expect("start");
        assert_eq!(initial, vec![value("f", 0)]);
        std::fs::create_dir(dir.join("later")).expect("mkdir");
        std::fs::write(&path, "11").expect("write");
        assert_eq!(
            next(&mut rx, REWATCH_INTERVAL + SOON).await,
            Some(value("f", 11))
        );
        task.abort();
    }

    #[test]
    fn queue_overflow_rereads_every_file() {
        let dir = TempDir::new();
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::write(&a, "1").expect("write");
        let mut files = Files::new(&[tracked("a", &a), tracked("b", &b)]).expect("files");
        let inotify =
            Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).expect("inotify_init1");
        files.watch(&inotify, true).expect("watch");
        assert!(files.reread(vec![0, 1]).contains(&value("a", 1)));
        let wd = files.files[0].wd.expect("watched");

        // Changed behind the watcher's back, then the queue overflowed.
        std::fs::write(&a, "2").expect("write");
        std::fs::write(&b, "3").expect("write");
        let overflow = InotifyEvent {
            wd,
            mask: AddWatchFlags::IN_Q_OVERFLOW,
            cookie: 0,
            name: None,
        };
        let due = files.handle(&inotify, &[overflow], Instant::now());
        assert_eq!(files.reread(due), vec![value("a", 2), value("b", 3)]);
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        let err = Files::new(&[tracked("root", Path::new("/"))])
            .err()
            .expect("error");
        assert!(matches!(err, FileError::NoFileName { .. }), "{err}");
    }
}
