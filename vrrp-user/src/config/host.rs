//! What `check` asks of the machine it runs on: interfaces, users, script files.
//! A trait so that tests and `load_str` can read configurations without a host.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::command::{self, RunAs};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterfaceKind {
    Present,
    /// keepalived refuses loopback interfaces for VRRP.
    Loopback,
    Missing,
}

/// A user's uid and primary gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserIds {
    pub uid: u32,
    pub gid: u32,
}

/// What keepalived's `check_script_secure` finds for the program of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptFile {
    /// `</dev/tcp/HOST/PORT`: the shell opens it; there is no program to check.
    FileOpen,
    /// No such file, not on PATH, or not reachable: keepalived disables the script.
    NotFound,
    Found {
        path: PathBuf,
        /// Executable by the user it runs as (keepalived silently disables it otherwise).
        executable: bool,
        /// It would run with root powers and someone else could change it: why.
        insecure: Option<String>,
    },
}

pub trait Host {
    fn interface(&self, name: &str) -> InterfaceKind;
    /// The uid and primary gid of `user`, if the user exists.
    fn user(&self, user: &str) -> Option<UserIds>;
    /// The gid of `group`, if it exists.
    fn group(&self, group: &str) -> Option<u32>;
    fn file_exists(&self, path: &Path) -> bool;
    /// What keepalived finds for `program` run as `uid`:`gid`: the file, searched on PATH
    /// when the name has no `/`.
    fn script_file(&self, program: &str, _uid: u32, _gid: u32) -> ScriptFile {
        if command::is_file_open_check(program) {
            return ScriptFile::FileOpen;
        }
        let path = PathBuf::from(program);
        if self.file_exists(&path) {
            ScriptFile::Found {
                path,
                executable: true,
                insecure: None,
            }
        } else {
            ScriptFile::NotFound
        }
    }
    /// The id of routing table `name` as iproute2 knows it (a number is its own id).
    fn routing_table(&self, name: &str) -> Option<u32> {
        builtin_table(name)
    }
}

/// A number, or one of the tables every kernel has.
fn builtin_table(name: &str) -> Option<u32> {
    match name {
        "unspec" => Some(0),
        "default" => Some(253),
        "main" => Some(254),
        "local" => Some(255),
        n => n.parse().ok(),
    }
}

/// iproute2's table names: rt_tables and rt_tables.d/*.conf under /etc/iproute2 (or the
/// distribution defaults under /usr/share/iproute2).
fn named_table(name: &str) -> Option<u32> {
    let mut files = Vec::new();
    for dir in ["/etc/iproute2", "/usr/share/iproute2"].map(Path::new) {
        files.push(dir.join("rt_tables"));
        if let Ok(entries) = std::fs::read_dir(dir.join("rt_tables.d")) {
            files.extend(
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "conf")),
            );
        }
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|text| {
            text.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                match (words.next(), words.next()) {
                    (Some(id), Some(n)) if !id.starts_with('#') && n == name => id.parse().ok(),
                    _ => None,
                }
            })
        })
}

/// The machine we run on.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemHost;

impl Host for SystemHost {
    fn interface(&self, name: &str) -> InterfaceKind {
        if nix::net::if_::if_nametoindex(name).is_err() {
            return InterfaceKind::Missing;
        }
        // IFF_LOOPBACK, read from sysfs (ifindex lookups do not give flags).
        let flags = std::fs::read_to_string(format!("/sys/class/net/{name}/flags"))
            .ok()
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
            .unwrap_or(0);
        if flags & libc::IFF_LOOPBACK as u32 != 0 {
            InterfaceKind::Loopback
        } else {
            InterfaceKind::Present
        }
    }

    fn user(&self, user: &str) -> Option<UserIds> {
        nix::unistd::User::from_name(user)
            .ok()
            .flatten()
            .map(|u| UserIds {
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
            })
    }

    fn group(&self, group: &str) -> Option<u32> {
        nix::unistd::Group::from_name(group)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    }

    fn file_exists(&self, path: &Path) -> bool {
        path.exists()
    }

    /// keepalived's `check_script_secure`: PATH search for bare names, the real file
    /// behind symlinks, executable by the user, and for root-powered scripts every
    /// directory on the way owned and writable by root alone.
    fn script_file(&self, program: &str, uid: u32, gid: u32) -> ScriptFile {
        if command::is_file_open_check(program) {
            return ScriptFile::FileOpen;
        }
        let run_as = RunAs {
            uid,
            gid,
            user: uid.to_string(),
        };
        let path = if program.contains('/') {
            PathBuf::from(program)
        } else {
            // keepalived's find_path: the first regular file on PATH this user may run.
            let found = std::env::split_paths(&command::script_path())
                .map(|dir| dir.join(program))
                .find(|candidate| {
                    std::fs::metadata(candidate)
                        .is_ok_and(|m| m.is_file() && command::is_executable(&m, &run_as))
                });
            match found {
                Some(path) => path,
                None => return ScriptFile::NotFound,
            }
        };
        let Ok(meta) = std::fs::metadata(&path) else {
            return ScriptFile::NotFound;
        };
        if std::fs::canonicalize(&path).is_err() {
            return ScriptFile::NotFound;
        }
        let executable = command::is_executable(&meta, &run_as);
        let mode = meta.mode();
        let root_powers = uid == 0
            || gid == 0
            || (meta.uid() == 0 && mode & 0o4100 == 0o4100)
            || (meta.gid() == 0 && mode & 0o2010 == 0o2010);
        let insecure = if executable && root_powers {
            command::path_insecurity(&path)
        } else {
            None
        };
        ScriptFile::Found {
            path,
            executable,
            insecure,
        }
    }

    fn routing_table(&self, name: &str) -> Option<u32> {
        builtin_table(name).or_else(|| named_table(name))
    }
}

/// Assumes every interface, user and file exists: for reading a configuration meant for
/// another machine. Users other than root get uid 1000.
#[derive(Debug, Default, Clone, Copy)]
pub struct AnyHost;

impl Host for AnyHost {
    fn interface(&self, _name: &str) -> InterfaceKind {
        InterfaceKind::Present
    }

    fn user(&self, user: &str) -> Option<UserIds> {
        let id = if user == "root" { 0 } else { 1000 };
        Some(UserIds { uid: id, gid: id })
    }

    fn group(&self, group: &str) -> Option<u32> {
        Some(if group == "root" { 0 } else { 1000 })
    }

    fn file_exists(&self, _path: &Path) -> bool {
        true
    }

    /// Names this machine does not know get table 1000: any table is assumed to exist.
    fn routing_table(&self, name: &str) -> Option<u32> {
        builtin_table(name)
            .or_else(|| named_table(name))
            .or(Some(1000))
    }
}
