//! Where the daemon's log lines go, with keepalived's flags and meanings:
//!
//! - the system log (unless `-G/--no-syslog`): the journal over its native
//!   protocol when `/run/systemd/journal/socket` exists, else syslog on
//!   `/dev/log` with the facility of `-S/--log-facility` (default daemon),
//!   under the ident `Keepalived_vrrp`, so alerts written for keepalived's
//!   VRRP process (`journalctl -t Keepalived_vrrp`, rsyslog program-name
//!   filters) keep matching;
//! - stderr, with `-l/--log-console`, and whenever stderr is a terminal, a
//!   file or a pipe; it is left out only when stderr *is* the journal
//!   (`$JOURNAL_STREAM`) and the journal already gets every line natively;
//! - a file, with `-g/--log-file` (keepalived's format, "Mon Nov 30 20:36:19 2026: ...").
//!
//! Messages are keepalived's words alone; structured fields go to the
//! journal as fields (`XVRRPD_INSTANCE=VI_1`), and to syslog and the file
//! after the message only with `-D/--log-detail`.
//!
//! Nothing here blocks the thread that logs: stderr goes through
//! `tracing_appender::non_blocking`, the rest through a bounded queue to a
//! writer thread; when the queue is full, lines are dropped and counted.

use std::{
    fmt::Debug,
    io::Write as _,
    os::unix::{fs::OpenOptionsExt, net::UnixDatagram},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{self, SyncSender, TrySendError},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use thiserror::Error;
use tracing::{field::Field, Event, Level, Subscriber};
use tracing_subscriber::{layer::Context, prelude::*, Layer};

use super::localtime::LocalTime;

pub const DEFAULT_IDENT: &str = "Keepalived_vrrp";
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
pub const SYSLOG_SOCKET: &str = "/dev/log";
/// Test and relocation hooks for the two sockets above.
pub const JOURNAL_SOCKET_ENV: &str = "XVRRPD_JOURNAL_SOCKET";
pub const SYSLOG_SOCKET_ENV: &str = "XVRRPD_SYSLOG_SOCKET";
/// Lines waiting for the writer thread; past this they are dropped.
const QUEUE: usize = 4096;
/// The journal refuses larger datagrams (it wants a memfd then).
const MAX_MESSAGE: usize = 48 * 1024;

#[derive(Debug, Error)]
pub enum LogError {
    #[error("-S/--log-facility {0:?}: expected 0-7, local0-local7, user or daemon")]
    BadFacility(String),
    #[error("log file {}: {error}", path.display())]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("log socket: {0}")]
    Socket(std::io::Error),
    #[error("starting the log writer thread: {0}")]
    Thread(std::io::Error),
    #[error("installing the log subscriber: {0}")]
    Install(String),
}

/// A syslog facility number (LOG_DAEMON is 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(pub u8);

impl Default for Facility {
    fn default() -> Self {
        Facility(3)
    }
}

impl std::str::FromStr for Facility {
    type Err = LogError;

    /// keepalived's `-S`: 0-7 mean local0-local7; also `localN`, `user`, `daemon`.
    fn from_str(s: &str) -> Result<Self, LogError> {
        let local = |n: &str| {
            n.parse::<u8>()
                .ok()
                .filter(|n| *n <= 7)
                .map(|n| Facility(16 + n))
        };
        match s {
            "user" => Some(Facility(1)),
            "daemon" => Some(Facility(3)),
            _ => local(s).or_else(|| s.strip_prefix("local").and_then(local)),
        }
        .ok_or_else(|| LogError::BadFacility(s.to_owned()))
    }
}

#[derive(Debug, Clone)]
pub struct LogOptions {
    /// `-l`: always log to stderr.
    pub console: bool,
    /// `-D`: structured fields after the message in syslog and the file.
    pub detail: bool,
    pub facility: Facility,
    /// `-g`: also append to this file.
    pub file: Option<PathBuf>,
    /// `-G`: no journal, no syslog.
    pub no_syslog: bool,
    pub ident: String,
    /// `XVRRPD_LOG`-style directives; `None`: "info".
    pub filter: Option<String>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            console: false,
            detail: false,
            facility: Facility::default(),
            file: None,
            no_syslog: false,
            ident: DEFAULT_IDENT.into(),
            filter: None,
        }
    }
}

/// Which system log the daemon talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemLog {
    Journal(PathBuf),
    Syslog(PathBuf),
}

fn socket_path(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// The journal if its socket exists, else syslog if /dev/log does.
pub fn system_log() -> Option<SystemLog> {
    let journal = socket_path(JOURNAL_SOCKET_ENV, JOURNAL_SOCKET);
    if journal.exists() {
        return Some(SystemLog::Journal(journal));
    }
    let syslog = socket_path(SYSLOG_SOCKET_ENV, SYSLOG_SOCKET);
    syslog.exists().then_some(SystemLog::Syslog(syslog))
}

/// systemd sets `$JOURNAL_STREAM` to stderr's "device:inode" when stderr is
/// a journal stream; the variable may be inherited, so compare with stderr.
pub fn stderr_is_journal() -> bool {
    use std::os::fd::AsRawFd;
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(st) = nix::sys::stat::fstat(std::io::stderr().as_raw_fd()) else {
        return false;
    };
    v.to_string_lossy() == format!("{}:{}", st.st_dev, st.st_ino)
}

/// What `init` decided, for the first log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destinations {
    pub console: bool,
    pub system: Option<SystemLog>,
    pub file: Option<PathBuf>,
}

pub fn destinations(opts: &LogOptions) -> Destinations {
    let system = if opts.no_syslog { None } else { system_log() };
    let console = opts.console || system.is_none() || !stderr_is_journal();
    Destinations {
        console,
        system,
        file: opts.file.clone(),
    }
}

/// One log line on its way to the writer thread.
#[derive(Debug, Clone)]
struct Record {
    level: Level,
    message: String,
    fields: Vec<(&'static str, String)>,
    at: SystemTime,
}

enum Msg {
    Record(Record),
    /// Reply once everything queued before it is written.
    Flush(mpsc::Sender<()>),
}

#[derive(Default)]
struct Visitor {
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl tracing::field::Visit for Visitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.fields.push((field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.push((field.name(), text));
        }
    }
}

/// The layer that queues records for the writer thread.
struct Queue {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl<S: Subscriber> Layer<S> for Queue {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut v = Visitor::default();
        event.record(&mut v);
        let record = Record {
            level: *event.metadata().level(),
            message: v.message,
            fields: v.fields,
            at: SystemTime::now(),
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Record(record)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

fn truncated(s: &str) -> &str {
    if s.len() <= MAX_MESSAGE {
        return s;
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The message, and with `detail` its fields as `key=value` after it.
fn text(r: &Record, detail: bool) -> String {
    let mut s = r.message.clone();
    if detail {
        for (k, v) in &r.fields {
            s.push(' ');
            s.push_str(k);
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

/// A journal field name from a tracing field name: XVRRPD_ + upper case.
fn journal_name(field: &str) -> String {
    let mut n = String::from("XVRRPD_");
    n.extend(field.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    n
}

fn journal_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        // Binary-safe form: name, newline, little-endian length, value.
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value.as_bytes());
    } else {
        out.push(b'=');
        out.extend_from_slice(value.as_bytes());
    }
    out.push(b'\n');
}

/// The journal's native protocol: one datagram of fields per entry.
fn journal_entry(r: &Record, ident: &str, facility: Facility) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    journal_field(&mut out, "MESSAGE", truncated(&r.message));
    journal_field(&mut out, "PRIORITY", &severity(r.level).to_string());
    journal_field(&mut out, "SYSLOG_IDENTIFIER", ident);
    journal_field(&mut out, "SYSLOG_FACILITY", &facility.0.to_string());
    journal_field(&mut out, "SYSLOG_PID", &std::process::id().to_string());
    for (k, v) in &r.fields {
        journal_field(&mut out, &journal_name(k), truncated(v));
    }
    out
}

/// RFC 3164 as glibc's syslog() sends it to /dev/log.
fn syslog_line(r: &Record, ident: &str, facility: Facility, detail: bool) -> String {
    let unix =
        r.at.duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
    format!(
        "<{}>{} {ident}[{}]: {}",
        u32::from(facility.0) * 8 + u32::from(severity(r.level)),
        LocalTime::from_unix(unix).syslog(),
        std::process::id(),
        truncated(&text(r, detail))
    )
}

fn file_line(r: &Record, detail: bool) -> String {
    let unix =
        r.at.duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
    format!(
        "{}: {}\n",
        LocalTime::from_unix(unix).ctime(),
        text(r, detail)
    )
}

struct Writer {
    system: Option<(SystemLog, UnixDatagram)>,
    file: Option<std::fs::File>,
    ident: String,
    facility: Facility,
    detail: bool,
}

impl Writer {
    fn write(&mut self, r: &Record) {
        if let Some((target, socket)) = &self.system {
            // A log daemon that is restarting loses these lines: nobody to tell.
            let _ = match target {
                SystemLog::Journal(p) => {
                    socket.send_to(&journal_entry(r, &self.ident, self.facility), p)
                }
                SystemLog::Syslog(p) => socket.send_to(
                    syslog_line(r, &self.ident, self.facility, self.detail).as_bytes(),
                    p,
                ),
            };
        }
        if let Some(f) = &mut self.file {
            let _ = f.write_all(file_line(r, self.detail).as_bytes());
        }
    }
}

/// Keeps the writers alive; dropping it writes out what is queued.
pub struct LogGuard {
    _console: Option<tracing_appender::non_blocking::WorkerGuard>,
    queue: Option<SyncSender<Msg>>,
    pub destinations: Destinations,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(tx) = &self.queue {
            let (done, wait) = mpsc::channel();
            if tx.try_send(Msg::Flush(done)).is_ok() {
                let _ = wait.recv_timeout(Duration::from_secs(2));
            }
        }
    }
}

fn filter(opts: &LogOptions) -> tracing_subscriber::EnvFilter {
    opts.filter
        .as_deref()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"))
        // The route crate warns about every kernel attribute newer than itself.
        .add_directive(
            "netlink_packet_route=error"
                .parse()
                .expect("static directive"),
        )
}

/// Installs the global subscriber.
pub fn init(opts: &LogOptions) -> Result<LogGuard, LogError> {
    let destinations = destinations(opts);
    let (console, console_guard) = if destinations.console {
        let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            // Colour codes only for a terminal, not for journald or log files.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        (Some(layer), Some(guard))
    } else {
        (None, None)
    };
    let file = match &destinations.file {
        None => None,
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
                .map_err(|source| LogError::File {
                    path: path.clone(),
                    error: source,
                })?,
        ),
    };
    let system = match &destinations.system {
        None => None,
        Some(target) => Some((
            target.clone(),
            UnixDatagram::unbound().map_err(LogError::Socket)?,
        )),
    };
    let (queue_layer, queue) = if system.is_some() || file.is_some() {
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut writer = Writer {
            system,
            file,
            ident: opts.ident.clone(),
            facility: opts.facility,
            detail: opts.detail,
        };
        let seen = Arc::clone(&dropped);
        std::thread::Builder::new()
            .name("xvrrpd-log".into())
            .spawn(move || {
                for msg in rx {
                    match msg {
                        Msg::Record(r) => writer.write(&r),
                        Msg::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                    let lost = seen.swap(0, Ordering::Relaxed);
                    if lost > 0 {
                        writer.write(&Record {
                            level: Level::WARN,
                            message: format!("{lost} log messages dropped: the log was too slow"),
                            fields: Vec::new(),
                            at: SystemTime::now(),
                        });
                    }
                }
            })
            .map_err(LogError::Thread)?;
        (
            Some(Queue {
                tx: tx.clone(),
                dropped,
            }),
            Some(tx),
        )
    } else {
        (None, None)
    };
    tracing_subscriber::registry()
        .with(filter(opts))
        .with(console)
        .with(queue_layer)
        .try_init()
        .map_err(|e| LogError::Install(e.to_string()))?;
    Ok(LogGuard {
        _console: console_guard,
        queue,
        destinations,
    })
}

/// For `-D`: keepalived's last line, "Stopped - used (self/children) U/U user time, S/S system time".
pub fn stopped_line() -> String {
    use nix::sys::resource::{getrusage, UsageWho};
    let secs = |t: nix::sys::time::TimeVal| format!("{}.{:06}", t.tv_sec(), t.tv_usec());
    match (
        getrusage(UsageWho::RUSAGE_SELF),
        getrusage(UsageWho::RUSAGE_CHILDREN),
    ) {
        (Ok(me), Ok(kids)) => format!(
            "Stopped - used (self/children) {}/{} user time, {}/{} system time",
            secs(me.user_time()),
            secs(kids.user_time()),
            secs(me.system_time()),
            secs(kids.system_time())
        ),
        _ => "Stopped".into(),
    }
}

/// Where keepalived's `-g` without a file name logs: `$TMPDIR/keepalived_vrrp.log`.
pub fn default_log_file() -> PathBuf {
    super::dump::dump_dir().join("keepalived_vrrp.log")
}

/// keepalived inserts the process name before the extension: `-g /var/log/ka.log`
/// writes `/var/log/ka_vrrp.log` for the VRRP process.
pub fn vrrp_log_file(given: &Path) -> PathBuf {
    let name = given
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let renamed = match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{}_vrrp{}", &name[..dot], &name[dot..]),
        _ => format!("{name}_vrrp"),
    };
    given.with_file_name(renamed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(message: &str, fields: &[(&'static str, &str)]) -> Record {
        Record {
            level: Level::INFO,
            message: message.into(),
            fields: fields.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            at: UNIX_EPOCH + Duration::from_secs(1_796_070_979),
        }
    }

    #[test]
    fn facilities_parse_as_keepalived_s() {
        assert_eq!("daemon".parse::<Facility>().unwrap(), Facility(3));
        assert_eq!("user".parse::<Facility>().unwrap(), Facility(1));
        assert_eq!("0".parse::<Facility>().unwrap(), Facility(16));
        assert_eq!("local7".parse::<Facility>().unwrap(), Facility(23));
        assert_eq!(
            "local8".parse::<Facility>().unwrap_err().to_string(),
            "-S/--log-facility \"local8\": expected 0-7, local0-local7, user or daemon"
        );
    }

    #[test]
    fn journal_entries_carry_keepalived_words_and_fields() {
        let r = record(
            "(VI_1) Entering MASTER STATE",
            &[("instance", "VI_1"), ("why", "a\nb")],
        );
        let e = journal_entry(&r, DEFAULT_IDENT, Facility(3));
        let mut expect = b"MESSAGE=(VI_1) Entering MASTER STATE\nPRIORITY=6\nSYSLOG_IDENTIFIER=Keepalived_vrrp\nSYSLOG_FACILITY=3\n".to_vec();
        expect.extend_from_slice(format!("SYSLOG_PID={}\n", std::process::id()).as_bytes());
        expect.extend_from_slice(b"XVRRPD_INSTANCE=VI_1\nXVRRPD_WHY\n");
        expect.extend_from_slice(&3u64.to_le_bytes());
        expect.extend_from_slice(b"a\nb\n");
        assert_eq!(e, expect);
    }

    #[test]
    fn syslog_lines_are_rfc3164_with_the_ident() {
        let r = record("(VI_1) Entering BACKUP STATE", &[("priority", "100")]);
        let l = syslog_line(&r, DEFAULT_IDENT, Facility(16), false);
        // local0 (16) * 8 + info (6)
        assert!(l.starts_with("<134>"), "{l}");
        assert!(
            l.ends_with(&format!(
                "Keepalived_vrrp[{}]: (VI_1) Entering BACKUP STATE",
                std::process::id()
            )),
            "{l}"
        );
        let l = syslog_line(&r, DEFAULT_IDENT, Facility(3), true);
        assert!(
            l.starts_with("<30>") && l.ends_with("STATE priority=100"),
            "{l}"
        );
        let f = file_line(&r, false);
        assert!(f.ends_with(" 2026: (VI_1) Entering BACKUP STATE\n"), "{f}");
    }

    #[test]
    fn log_files_are_named_as_keepalived_names_them() {
        assert_eq!(
            vrrp_log_file(Path::new("/var/log/ka.log")),
            Path::new("/var/log/ka_vrrp.log")
        );
        assert_eq!(
            vrrp_log_file(Path::new("/tmp/ka")),
            Path::new("/tmp/ka_vrrp")
        );
    }

    #[test]
    fn oversized_messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_MESSAGE);
        let cut = truncated(&long);
        assert!(cut.len() <= MAX_MESSAGE && cut.len() > MAX_MESSAGE - 2);
    }
}
