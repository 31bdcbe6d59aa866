//! Shared by the config_* tests: a host with eth0, eth1 and loopback lo, users root and
//! nobody (no keepalived_script user), and every file present.

use std::path::Path;

use xvrrpd::config::{Host, InterfaceKind, Loaded, UserIds};

pub struct FakeHost;

impl Host for FakeHost {
    fn interface(&self, name: &str) -> InterfaceKind {
        match name {
            "eth0" | "eth1" => InterfaceKind::Present,
            "lo" => InterfaceKind::Loopback,
            _ => InterfaceKind::Missing,
        }
    }

    fn user(&self, user: &str) -> Option<UserIds> {
        match user {
            "root" => Some(UserIds { uid: 0, gid: 0 }),
            "nobody" => Some(UserIds {
                uid: 65534,
                gid: 65534,
            }),
            _ => None,
        }
    }

    fn group(&self, group: &str) -> Option<u32> {
        match group {
            "root" => Some(0),
            "nogroup" => Some(65534),
            _ => None,
        }
    }

    fn file_exists(&self, path: &Path) -> bool {
        !path.starts_with("/nonexistent")
    }
}

#[allow(dead_code)]
pub fn load(text: &str) -> Loaded {
    xvrrpd::config::load_str_with(text, Path::new("k.conf"), &FakeHost).expect("readable")
}

/// An instance with the required keywords around `body` (body starts on line 5).
#[allow(dead_code)]
pub fn instance(body: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {{ 10.0.0.1 }}\n{body}\n}}\n"
    )
}

/// The diagnostics as `file:line: keyword: message` strings.
#[allow(dead_code)]
pub fn messages(loaded: &Loaded) -> Vec<String> {
    loaded.diagnostics.iter().map(|d| d.to_string()).collect()
}
