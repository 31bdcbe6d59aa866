//! The control socket: `xvrrpd status` asks the running daemon for its
//! [`DaemonReport`] over a root-only Unix socket.
//!
//! Protocol: the client sends one line naming a request (`report`), the
//! daemon answers with one JSON object (`{"report": {...}}` or
//! `{"error": "..."}`) and closes the connection.
//!
//! The socket lives in `/run/xvrrpd/` (0700) as `<pin name>.sock` (0600),
//! so daemons in different network namespaces never share one; only root
//! (or the daemon's own user) is served.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt},
    net::{UnixListener, UnixStream},
};
use tracing::{debug, warn};

use crate::report::{DaemonReport, ReportHandle};

/// Asks the running daemon for an in-place restart (`xvrrpd restart`).
#[derive(Debug, Clone)]
pub struct RestartHandle {
    tx: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Result<(), String>>>,
}

/// The daemon's end: a restart asked for, and where to say if it is refused.
pub type RestartRequests =
    tokio::sync::mpsc::Receiver<tokio::sync::oneshot::Sender<Result<(), String>>>;

impl RestartHandle {
    pub fn new() -> (Self, RestartRequests) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        (RestartHandle { tx }, rx)
    }

    /// `Ok` once the daemon is handing over (it re-executes right after).
    async fn request(&self) -> Result<(), String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(tx)
            .await
            .map_err(|_| "the daemon is shutting down".to_owned())?;
        // The daemon may be gone (re-executed) before it answers: that is
        // the restart happening.
        rx.await.unwrap_or(Ok(()))
    }
}

pub const RUN_DIR: &str = "/run/xvrrpd";

/// A client that sends nothing for this long is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `xvrrpd status` waits for the daemon's answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests are one short line.
const MAX_REQUEST: u64 = 256;

#[derive(Debug, Error)]
pub enum ControlError {
    #[error("control socket {path}: {what}: {error}")]
    Io {
        path: PathBuf,
        what: &'static str,
        error: std::io::Error,
    },
    #[error("no xvrrpd running: {}: {}", path.display(), io_words(error))]
    NotRunning {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: {}", path.display(), io_words(error))]
    Request {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: the daemon answered something else than a report: {detail}", path.display())]
    BadAnswer { path: PathBuf, detail: String },
    #[error("{}: the daemon says: {message}", path.display())]
    Refused { path: PathBuf, message: String },
}

/// An io::Error's words without "(os error N)".
fn io_words(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        NotFound => "no such socket".into(),
        PermissionDenied => "permission denied (the control socket is root's)".into(),
        TimedOut | WouldBlock => "no answer in time".into(),
        UnexpectedEof => "the daemon closed the connection without an answer".into(),
        _ => e.to_string(),
    }
}

/// The control socket of the daemon whose maps are pinned in `pin_dir`.
pub fn default_path(pin_dir: &Path) -> PathBuf {
    let name = pin_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "default".into());
    Path::new(RUN_DIR).join(format!("{name}.sock"))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Report(Box<DaemonReport>),
    /// The daemon is handing over to a new image of itself.
    Restarting,
    Error(String),
}

/// The bound socket; removed again when dropped (if it is still ours).
#[derive(Debug)]
pub struct ControlSocket {
    listener: Option<std::os::unix::net::UnixListener>,
    path: PathBuf,
    /// Device and inode of the socket we bound, so we never remove the
    /// socket of a daemon that replaced ours.
    identity: (u64, u64),
}

impl ControlSocket {
    /// Creates the directory (0700) and binds the socket (0600). A socket
    /// left by a daemon that died is replaced; so is a live daemon's (it
    /// keeps running, but `status` now reaches this one), with a warning.
    pub fn bind(path: &Path) -> Result<Self, ControlError> {
        let io = |what| {
            move |source| ControlError::Io {
                path: path.to_owned(),
                what,
                error: source,
            }
        };
        if let Some(dir) = path.parent() {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io("creating its directory"))?;
            }
        }
        if std::fs::symlink_metadata(path).is_ok() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                warn!(
                    path = %path.display(),
                    "another xvrrpd answers on this control socket; `xvrrpd status` will reach this one from now on"
                );
            }
            std::fs::remove_file(path).map_err(io("removing the stale socket"))?;
        }
        // Bind with a umask that leaves no access to group and others, so
        // the socket is never reachable by them, not even for a moment.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
        let bound = std::os::unix::net::UnixListener::bind(path);
        nix::sys::stat::umask(old);
        let listener = bound.map_err(io("bind"))?;
        listener.set_nonblocking(true).map_err(io("O_NONBLOCK"))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io("chmod 0600"))?;
        let meta = std::fs::symlink_metadata(path).map_err(io("stat"))?;
        Ok(ControlSocket {
            listener: Some(listener),
            path: path.to_owned(),
            identity: (meta.dev(), meta.ino()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answers requests until the task is aborted. Must be called within a
    /// tokio runtime.
    pub fn serve(
        &mut self,
        reports: ReportHandle,
        restart: RestartHandle,
    ) -> Result<tokio::task::JoinHandle<()>, ControlError> {
        let listener = self.listener.take().expect("serve is called once");
        let listener = UnixListener::from_std(listener).map_err(|source| ControlError::Io {
            path: self.path.clone(),
            what: "registering with the runtime",
            error: source,
        })?;
        let path = self.path.clone();
        Ok(tokio::spawn(async move {
            let own_uid = nix::unistd::geteuid().as_raw();
            loop {
                let stream = match listener.accept().await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        warn!(path = %path.display(), "control socket: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Root, or the user the daemon runs as; the 0600 mode already
                // says so, this holds even if someone loosens it.
                let uid = stream.peer_cred().map(|c| c.uid()).ok();
                if uid != Some(0) && uid != Some(own_uid) {
                    debug!(?uid, "control socket: refusing a non-root client");
                    continue;
                }
                let (reports, restart) = (reports.clone(), restart.clone());
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &reports, &restart).await {
                        debug!("control socket client: {e}");
                    }
                });
            }
        }))
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn answer(
    stream: UnixStream,
    reports: &ReportHandle,
    restart: &RestartHandle,
) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read.take(MAX_REQUEST));
    tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let answer = match line.trim() {
        "report" => match reports.get().await {
            Some(r) => Answer::Report(Box::new(r)),
            None => Answer::Error("the daemon is shutting down".into()),
        },
        "restart" => match restart.request().await {
            Ok(()) => Answer::Restarting,
            Err(e) => Answer::Error(e),
        },
        other => Answer::Error(format!(
            "unknown request {other:?} (this daemon knows: report, restart)"
        )),
    };
    let mut body = serde_json::to_vec(&answer).map_err(std::io::Error::other)?;
    body.push(b'\n');
    write.write_all(&body).await?;
    write.shutdown().await
}

/// Sends one request line and reads the one answer line (empty if the
/// daemon closed the connection without answering).
fn ask(path: &Path, request_line: &[u8], timeout: Duration) -> Result<String, ControlError> {
    let request = |source| ControlError::Request {
        path: path.to_owned(),
        error: source,
    };
    let mut stream =
        std::os::unix::net::UnixStream::connect(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => {
                ControlError::NotRunning {
                    path: path.to_owned(),
                    error: source,
                }
            }
            _ => request(source),
        })?;
    stream.set_read_timeout(Some(timeout)).map_err(request)?;
    stream.write_all(request_line).map_err(request)?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(request)?;
    Ok(line)
}

/// `xvrrpd restart`: asks the running daemon to restart in place. `Ok` when
/// it is handing over (or already gone to do so); the caller then watches
/// for the new image.
pub fn request_restart(path: &Path) -> Result<(), ControlError> {
    let line = ask(path, b"restart\n", Duration::from_secs(30))?;
    match serde_json::from_str::<Answer>(&line) {
        // End of file: the daemon re-executed before it could answer.
        Err(_) if line.is_empty() => Ok(()),
        Ok(Answer::Restarting) => Ok(()),
        Ok(Answer::Error(message)) => Err(ControlError::Refused {
            path: path.to_owned(),
            message,
        }),
        Ok(Answer::Report(_)) | Err(_) => Err(ControlError::BadAnswer {
            path: path.to_owned(),
            detail: line.trim().chars().take(200).collect(),
        }),
    }
}

/// `xvrrpd status`: the running daemon's report, over its control socket.
pub fn request_report(path: &Path) -> Result<DaemonReport, ControlError> {
    let line = ask(path, b"report\n", CLIENT_TIMEOUT)?;
    if line.is_empty() {
        return Err(ControlError::Request {
            path: path.to_owned(),
            error: std::io::ErrorKind::UnexpectedEof.into(),
        });
    }
    match serde_json::from_str::<Answer>(&line) {
        Ok(Answer::Report(r)) => Ok(*r),
        Ok(Answer::Error(message)) => Err(ControlError::Refused {
            path: path.to_owned(),
            message,
        }),
        Ok(Answer::Restarting) => Err(ControlError::BadAnswer {
            path: path.to_owned(),
            detail: "a restart answer to a report request".into(),
        }),
        Err(e) => Err(ControlError::BadAnswer {
            path: path.to_owned(),
            detail: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xvrrpd-control-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn the_path_is_named_after_the_pin_directory() {
        assert_eq!(
            default_path(Path::new("/sys/fs/bpf/xvrrpd/v2/default")),
            Path::new("/run/xvrrpd/default.sock")
        );
        assert_eq!(
            default_path(Path::new("/sys/fs/bpf/xvrrpd/v2/lab-1")),
            Path::new("/run/xvrrpd/lab-1.sock")
        );
    }

    #[test]
    fn nobody_running_is_said_plainly() {
        let dir = scratch("none");
        let path = dir.join("x.sock");
        let e = request_report(&path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("no xvrrpd running: {}: no such socket", path.display())
        );
        // A socket file nobody listens on: connection refused.
        std::fs::create_dir_all(&dir).unwrap();
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let e = request_report(&path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("no xvrrpd running: {}: connection refused", path.display())
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_report_travels_and_the_socket_is_private_and_removed() {
        let dir = scratch("serve");
        let path = dir.join("run").join("t.sock");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (handle, mut requests) = ReportHandle::new();
            // The daemon's side: answer every request with the sample.
            tokio::spawn(async move {
                while let Some(reply) = requests.recv().await {
                    let _ = reply.send(sample());
                }
            });
            let mut socket = ControlSocket::bind(&path).unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
            let (restart, _restarts) = RestartHandle::new();
            let server = socket.serve(handle, restart).unwrap();
            let p = path.clone();
            let got = tokio::task::spawn_blocking(move || request_report(&p))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got, sample());
            // An unknown request gets an error, not silence.
            let p = path.clone();
            let raw = tokio::task::spawn_blocking(move || {
                let mut s = std::os::unix::net::UnixStream::connect(p).unwrap();
                s.write_all(b"reboot\n").unwrap();
                let mut line = String::new();
                BufReader::new(s).read_line(&mut line).unwrap();
                line
            })
            .await
            .unwrap();
            assert!(raw.contains("unknown request \\\"reboot\\\""), "{raw}");
            server.abort();
        });
        drop(rt);
        // A second daemon takes the path over; the first one's exit leaves it.
        let first = ControlSocket::bind(&path).unwrap();
        let second = ControlSocket::bind(&path).unwrap();
        drop(first);
        assert!(
            path.exists(),
            "the first daemon removed the second one's socket"
        );
        drop(second);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
