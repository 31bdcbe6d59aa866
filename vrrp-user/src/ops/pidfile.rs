//! keepalived's pid files (`-p/--pid`, `-r/--vrrp_pid`): "PID\n", mode
//! 0644, written at start and removed at exit; a file naming a live
//! process means a daemon is already running, and this one does not start.
//!
//! xvrrpd is keepalived's parent and VRRP child in one process, so both
//! files, when asked for, hold the same pid. None is written by default:
//! keepalived's own default (/run/keepalived.pid) belongs to a keepalived
//! that may run beside xvrrpd for its LVS checker.

use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PidFileError {
    #[error("{}: daemon is already running (pid {pid})", path.display())]
    AlreadyRunning { path: PathBuf, pid: i32 },
    #[error("pid file {}: {what}: {error}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        error: std::io::Error,
    },
}

/// A written pid file, removed on drop if it still holds our pid.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

fn alive(pid: i32) -> bool {
    // EPERM: it exists but is not ours to signal; still alive.
    pid > 0
        && !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::Error::ESRCH)
        )
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl PidFile {
    pub fn create(path: &Path) -> Result<Self, PidFileError> {
        let pid = std::process::id();
        let io = |what| {
            move |source| PidFileError::Io {
                path: path.to_owned(),
                what,
                error: source,
            }
        };
        if let Some(old) = read_pid(path) {
            if old != pid as i32 && alive(old) {
                return Err(PidFileError::AlreadyRunning {
                    path: path.to_owned(),
                    pid: old,
                });
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("creating its directory"))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(io("open"))?;
        writeln!(f, "{pid}").map_err(io("write"))?;
        Ok(PidFile {
            path: path.to_owned(),
            pid,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // A successor may have written its own pid there already.
        if read_pid(&self.path) == Some(self.pid as i32) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_refused_while_alive_and_removed() {
        let dir = std::env::temp_dir().join(format!("xvrrpd-pid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("vrrp.pid");
        let f = PidFile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(f);
        assert!(!path.exists());
        // pid 1 is alive: a daemon is running.
        std::fs::write(&path, "1\n").unwrap();
        let e = PidFile::create(&path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: daemon is already running (pid 1)", path.display())
        );
        // A stale file (no such process) is taken over.
        std::fs::write(&path, format!("{}\n", i32::MAX)).unwrap();
        let f = PidFile::create(&path).unwrap();
        // Not ours any more: left in place.
        std::fs::write(&path, "1\n").unwrap();
        drop(f);
        assert!(path.exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
