//! What `check` asks of the machine it runs on: interfaces, users, script files.
//! A trait so that tests and `load_str` can read configurations without a host.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterfaceKind {
    Present,
    /// keepalived refuses loopback interfaces for VRRP.
    Loopback,
    Missing,
}

pub trait Host {
    fn interface(&self, name: &str) -> InterfaceKind;
    /// The uid of `user`, if the user exists.
    fn user_id(&self, user: &str) -> Option<u32>;
    fn file_exists(&self, path: &Path) -> bool;
    /// Why `enable_script_security` would refuse `program` run as root
    /// (writable by a non-root user), if it would.
    fn script_insecure(&self, _program: &str) -> Option<String> {
        None
    }
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

    fn user_id(&self, user: &str) -> Option<u32> {
        nix::unistd::User::from_name(user)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
    }

    fn file_exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn script_insecure(&self, program: &str) -> Option<String> {
        use crate::command::{secure_program, CommandError, RunAs};
        let root = RunAs {
            uid: 0,
            gid: 0,
            user: "root".into(),
        };
        match secure_program(program, &root) {
            // A missing program is reported on its own.
            Ok(_) | Err(CommandError::NotFound { .. }) => None,
            Err(e) => Some(e.to_string()),
        }
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

    fn user_id(&self, user: &str) -> Option<u32> {
        Some(if user == "root" { 0 } else { 1000 })
    }

    fn file_exists(&self, _path: &Path) -> bool {
        true
    }
}
