//! systemd's notify protocol (`Type=notify`), spoken over `$NOTIFY_SOCKET`:
//! one datagram of `KEY=value` lines per message.
//!
//! Never blocks: the socket is non-blocking and a message that cannot be
//! sent at once is dropped (systemd re-reads STATUS on the next change, and
//! a missed WATCHDOG is followed by the next one long before the deadline).

use std::{
    os::unix::net::{SocketAddr, UnixDatagram},
    sync::Arc,
    time::Duration,
};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SdNotifyError {
    #[error("NOTIFY_SOCKET={path:?}: {reason}")]
    BadSocket { path: String, reason: String },
    #[error("NOTIFY_SOCKET={path}: {what}: {error}")]
    Io {
        path: String,
        what: &'static str,
        error: std::io::Error,
    },
    #[error("WATCHDOG_USEC={0:?}: not a positive number of microseconds")]
    BadWatchdog(String),
}

#[derive(Debug)]
struct Socket {
    socket: UnixDatagram,
    addr: SocketAddr,
    path: String,
}

/// Talks to the service manager. Cheap to clone; does nothing when the
/// daemon was not started by systemd (no `NOTIFY_SOCKET`).
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<Arc<Socket>>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    pub fn from_env() -> Result<Self, SdNotifyError> {
        let socket = std::env::var("NOTIFY_SOCKET").ok();
        let watchdog_usec = std::env::var("WATCHDOG_USEC").ok();
        let watchdog_pid = std::env::var("WATCHDOG_PID").ok();
        Self::new(
            socket.as_deref(),
            watchdog_usec.as_deref(),
            watchdog_pid.as_deref(),
            std::process::id(),
        )
    }

    /// The same from given values (`pid` is ours).
    pub fn new(
        socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        pid: u32,
    ) -> Result<Self, SdNotifyError> {
        let socket = match socket.filter(|s| !s.is_empty()) {
            None => None,
            Some(path) => Some(Arc::new(connect(path)?)),
        };
        // The watchdog is ours unless WATCHDOG_PID names another process
        // (it was meant for a parent that exec'd us, or for a child).
        let ours = watchdog_pid.is_none_or(|p| p.trim().parse::<u32>().ok() == Some(pid));
        let watchdog = match watchdog_usec.filter(|_| ours) {
            None => None,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(us) if us > 0 => Some(Duration::from_micros(us)),
                _ => return Err(SdNotifyError::BadWatchdog(v.to_owned())),
            },
        };
        Ok(Notifier { socket, watchdog })
    }

    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to send WATCHDOG=1: half of WatchdogSec, as sd_watchdog_enabled(3) advises.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.socket.as_ref()?;
        self.watchdog.map(|d| d / 2)
    }

    /// Sends `KEY=value` lines as one datagram.
    pub fn send(&self, message: &str) -> Result<(), SdNotifyError> {
        let Some(s) = &self.socket else {
            return Ok(());
        };
        s.socket
            .send_to_addr(message.as_bytes(), &s.addr)
            .map(|_| ())
            .map_err(|source| SdNotifyError::Io {
                path: s.path.clone(),
                what: "sendto",
                error: source,
            })
    }

    /// Instances run: `READY=1` with the first status line.
    pub fn ready(&self, status: &str) -> Result<(), SdNotifyError> {
        self.send(&format!(
            "READY=1\nSTATUS={}\nMAINPID={}",
            one_line(status),
            std::process::id()
        ))
    }

    pub fn status(&self, status: &str) -> Result<(), SdNotifyError> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    /// Before a reload: `RELOADING=1` with the time it started, as
    /// `Type=notify-reload` requires (systemd ≥ 253; older ones ignore it).
    /// Follow it with [`Notifier::reloaded`].
    pub fn reloading(&self) -> Result<(), SdNotifyError> {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()))
    }

    /// After a reload, whether it applied or not: `READY=1` and the new status.
    pub fn reloaded(&self, status: &str) -> Result<(), SdNotifyError> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    pub fn stopping(&self) -> Result<(), SdNotifyError> {
        self.send("STOPPING=1")
    }

    pub fn watchdog(&self) -> Result<(), SdNotifyError> {
        self.send("WATCHDOG=1")
    }
}

/// STATUS= takes one line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
        .unwrap_or(0)
}

fn connect(path: &str) -> Result<Socket, SdNotifyError> {
    use std::os::linux::net::SocketAddrExt;
    let bad = |reason: &str| SdNotifyError::BadSocket {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let io = |what| {
        move |source| SdNotifyError::Io {
            path: path.to_owned(),
            what,
            error: source,
        }
    };
    let addr = if let Some(name) = path.strip_prefix('@') {
        SocketAddr::from_abstract_name(name.as_bytes()).map_err(io("abstract address"))?
    } else if path.starts_with('/') {
        SocketAddr::from_pathname(path).map_err(io("socket path"))?
    } else {
        // vsock: addresses are systemd ≥ 254's, for VMs; not for a VRRP host.
        return Err(bad("only a path or an abstract name (@...) is supported"));
    };
    let socket = UnixDatagram::unbound().map_err(io("socket"))?;
    socket.set_nonblocking(true).map_err(io("O_NONBLOCK"))?;
    Ok(Socket {
        socket,
        addr,
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> (UnixDatagram, String, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "xvrrpd-sdnotify-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let l = UnixDatagram::bind(&path).unwrap();
        l.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        (l, path.display().to_string(), dir)
    }

    fn recv(l: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = l.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn messages_arrive_as_one_datagram_each() {
        let (l, path, dir) = listener();
        let n = Notifier::new(Some(&path), Some("4000000"), None, 7).unwrap();
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(2)));
        n.ready("1 MASTER").unwrap();
        let m = recv(&l);
        assert!(m.starts_with("READY=1\nSTATUS=1 MASTER\nMAINPID="), "{m}");
        n.status("a\nb").unwrap();
        assert_eq!(recv(&l), "STATUS=a b");
        n.reloading().unwrap();
        let m = recv(&l);
        let usec: u64 = m
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(usec > 0);
        n.reloaded("2 BACKUP").unwrap();
        assert_eq!(recv(&l), "READY=1\nSTATUS=2 BACKUP");
        n.watchdog().unwrap();
        assert_eq!(recv(&l), "WATCHDOG=1");
        n.stopping().unwrap();
        assert_eq!(recv(&l), "STOPPING=1");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn abstract_sockets_work() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("xvrrpd-test-{}", std::process::id());
        let l = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
            .unwrap();
        l.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let n = Notifier::new(Some(&format!("@{name}")), None, None, 1).unwrap();
        n.watchdog().unwrap();
        assert_eq!(recv(&l), "WATCHDOG=1");
        assert_eq!(n.watchdog_interval(), None);
    }

    #[test]
    fn without_a_socket_nothing_happens_and_bad_values_are_named() {
        let n = Notifier::new(None, Some("1000"), None, 1).unwrap();
        assert!(!n.enabled());
        assert_eq!(n.watchdog_interval(), None);
        n.ready("x").unwrap();
        let e = Notifier::new(Some("/x"), Some("soon"), None, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "WATCHDOG_USEC=\"soon\": not a positive number of microseconds"
        );
        let e = Notifier::new(Some("vsock:2:1"), None, None, 1).unwrap_err();
        assert!(
            e.to_string().starts_with("NOTIFY_SOCKET=\"vsock:2:1\""),
            "{e}"
        );
        // Someone else's watchdog is not ours.
        let n = Notifier::new(Some("/x"), Some("1000000"), Some("99"), 1).unwrap();
        assert_eq!(n.watchdog_interval(), None);
        let n = Notifier::new(Some("/x"), Some("1000000"), Some("1"), 1).unwrap();
        assert_eq!(n.watchdog_interval(), Some(Duration::from_millis(500)));
    }
}
