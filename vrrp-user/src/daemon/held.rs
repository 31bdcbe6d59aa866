//! What the daemon holds on the host, written down so that nothing is left
//! behind when it dies, and nothing is lost when it restarts in place.
//!
//! - The **state file** (`/run/xvrrpd/NAME.state`) lists, per instance,
//!   whether its VIPs are on the host, which they are, the vmac we created,
//!   and the priority-0 advert to send. The executor rewrites it whenever
//!   that changes. `xvrrpd cleanup` (the systemd unit's `ExecStopPost`, so
//!   it also runs after a crash or `kill -9`) and the next start read it to
//!   release what a dead daemon held: priority 0 sent, VIPs and vmacs
//!   removed, pins gone.
//! - The **handover file** (`/run/xvrrpd/NAME.handover`) carries each
//!   instance's state across an in-place restart (`xvrrpd restart`): the
//!   daemon re-executes its binary with the same PID, leaving VIPs and vmacs
//!   where they are, and the new image resumes as master where the old one
//!   was, within its peers' Master_Down_Interval.

use std::{
    collections::HashMap,
    io,
    net::IpAddr,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{info, warn};

use crate::{
    bpf::pin,
    network::{
        netlink::{Netlink, Vip},
        socket::{SenderConfig, VrrpSender},
        vmac::{remove_vmac, Vmac},
    },
    packet::Family,
};

/// Where state and handover files live.
pub const RUN_DIR: &str = "/run/xvrrpd";
/// A handover older than this is stale (the restart did not happen).
pub const HANDOVER_FRESH: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum HeldError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("xvrrpd (pid {pid}) is still running for {}; stop it first", path.display())]
    StillRunning { pid: u32, path: PathBuf },
}

/// The state and handover files of the daemon pinned at `pin_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub state: PathBuf,
    pub handover: PathBuf,
    pub pin_dir: PathBuf,
}

impl Paths {
    /// Named after the pin directory, so daemons in different network
    /// namespaces never share them.
    pub fn for_pin_dir(pin_dir: &Path) -> Self {
        let name = pin_dir
            .file_name()
            .map_or_else(|| "default".into(), |n| n.to_string_lossy().into_owned());
        let dir = Path::new(RUN_DIR);
        Paths {
            state: dir.join(format!("{name}.state")),
            handover: dir.join(format!("{name}.handover")),
            pin_dir: pin_dir.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldVip {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub brd: Option<std::net::Ipv4Addr>,
    pub label: Option<String>,
    pub scope: Option<u8>,
}

impl HeldVip {
    pub fn new(ifindex: u32, vip: &Vip) -> Self {
        HeldVip {
            ifindex,
            addr: vip.addr,
            prefix: vip.prefix,
            brd: vip.brd,
            label: vip.label.clone(),
            scope: vip.scope,
        }
    }

    pub fn vip(&self) -> Vip {
        Vip {
            addr: self.addr,
            prefix: self.prefix,
            brd: self.brd,
            label: self.label.clone(),
            scope: self.scope,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldVmac {
    pub ifindex: u32,
    pub name: String,
    pub parent_ifindex: u32,
    pub mac: [u8; 6],
}

/// One instance's hold on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldInstance {
    pub name: String,
    /// Its VIPs are on the host now.
    pub holding: bool,
    pub vips: Vec<HeldVip>,
    /// A vmac we created (and so must remove).
    pub vmac: Option<HeldVmac>,
    /// How to say goodbye: the interface adverts leave from, and the
    /// priority-0 advert already encoded, per destination.
    pub send_interface: String,
    pub ipv6: bool,
    pub source: IpAddr,
    pub group: IpAddr,
    pub farewell: Vec<(IpAddr, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostState {
    pub pid: u32,
    /// When this image started (an in-place restart keeps the PID; this
    /// tells the images apart).
    pub started_unix: f64,
    pub instances: Vec<HeldInstance>,
}

/// An instance's state across an in-place restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    pub written_unix: f64,
    /// Instance name → "MASTER", "BACKUP" or "FAULT".
    pub states: HashMap<String, String>,
}

pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Writes `value` to `path` atomically (temporary file, then rename), in a
/// root-only directory.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), HeldError> {
    let io_err = |source| HeldError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err)?;
    }
    let text = serde_json::to_vec_pretty(value).map_err(|source| HeldError::Json {
        path: path.to_owned(),
        source,
    })?;
    // Each file its own temporary: the state and handover files are
    // written from different threads.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(io_err)?;
    std::fs::rename(&tmp, path).map_err(io_err)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, HeldError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| HeldError::Json {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HeldError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

pub fn save_state(paths: &Paths, state: &HostState) -> Result<(), HeldError> {
    write_json(&paths.state, state)
}

pub fn load_state(paths: &Paths) -> Result<Option<HostState>, HeldError> {
    read_json(&paths.state)
}

pub fn remove_state(paths: &Paths) {
    let _ = std::fs::remove_file(&paths.state);
}

pub fn save_handover(paths: &Paths, states: HashMap<String, String>) -> Result<(), HeldError> {
    write_json(
        &paths.handover,
        &Handover {
            written_unix: now_unix(),
            states,
        },
    )
}

/// Reads and removes the handover file; `None` if there is none or it is
/// stale (a restart that never happened: the state file then decides).
pub fn take_handover(paths: &Paths) -> Result<Option<Handover>, HeldError> {
    let h: Option<Handover> = read_json(&paths.handover)?;
    let _ = std::fs::remove_file(&paths.handover);
    Ok(h.filter(|h| now_unix() - h.written_unix < HANDOVER_FRESH.as_secs_f64()))
}

/// Whether `pid` is a running xvrrpd other than this process (a zombie
/// killed but not yet reaped is not running).
fn running_xvrrpd(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
    let Some((head, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let comm = head.split_once('(').map_or("", |(_, c)| c);
    let state = rest.split_whitespace().next().unwrap_or("");
    pid != std::process::id() && comm == "xvrrpd" && !matches!(state, "Z" | "X")
}

/// What [`cleanup`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Released {
    pub farewells: usize,
    pub vips: usize,
    pub vmacs: usize,
}

/// Releases what a daemon that is no longer running held: priority 0 for
/// each instance that was master, its VIPs and the vmacs it created, then
/// the pins and the state file. Nothing to do without a state file.
pub async fn cleanup(paths: &Paths, netlink: &Netlink) -> Result<Released, HeldError> {
    let mut done = Released::default();
    let Some(state) = load_state(paths)? else {
        crate::bpf::release_leftover_attachments(&paths.pin_dir);
        pin::remove_dir(&paths.pin_dir);
        remove_dead_socket(&crate::ops::control::default_path(&paths.pin_dir));
        return Ok(done);
    };
    if running_xvrrpd(state.pid) {
        return Err(HeldError::StillRunning {
            pid: state.pid,
            path: paths.state.clone(),
        });
    }
    for inst in &state.instances {
        if inst.holding {
            let family = if inst.ipv6 { Family::V6 } else { Family::V4 };
            let config = SenderConfig {
                src: Some(inst.source),
                group: Some(inst.group),
                join_group: false,
            };
            match VrrpSender::open(&inst.send_interface, family, &config) {
                Ok(sender) => {
                    for (dst, pdu) in &inst.farewell {
                        match sender.send(pdu, *dst) {
                            Ok(()) => done.farewells += 1,
                            Err(e) => {
                                warn!(instance = %inst.name, error = %e, "sending priority 0")
                            }
                        }
                    }
                }
                Err(e) => warn!(instance = %inst.name, error = %e, "opening the advert socket"),
            }
        }
        // VIPs go whether or not we believed we held them: a crash in the
        // middle of adding them leaves some.
        for v in &inst.vips {
            if netlink
                .del_vip(v.ifindex, &v.vip())
                .await
                .is_ok_and(|o| o == crate::network::netlink::DelOutcome::Removed)
            {
                done.vips += 1;
            }
        }
        if let Some(v) = &inst.vmac {
            let vmac = Vmac {
                ifindex: v.ifindex,
                name: v.name.clone(),
                mac: v.mac,
                parent_ifindex: v.parent_ifindex,
                family: if inst.ipv6 { Family::V6 } else { Family::V4 },
                created: true,
                // Restoring the parent's ARP settings needs what they were;
                // a crash lost that, and keepalived leaves them too.
                parent_arp: None,
            };
            if remove_vmac(netlink, &vmac).await.is_ok() {
                done.vmacs += 1;
            }
        }
        info!(instance = %inst.name, "released what a stopped xvrrpd held");
    }
    crate::bpf::release_leftover_attachments(&paths.pin_dir);
    pin::remove_dir(&paths.pin_dir);
    remove_state(paths);
    let _ = std::fs::remove_file(&paths.handover);
    remove_dead_socket(&crate::ops::control::default_path(&paths.pin_dir));
    Ok(done)
}

/// Removes a control socket nobody listens on any more (a killed daemon
/// cannot unlink its own); one that answers is left alone.
fn remove_dead_socket(path: &Path) {
    if let Err(e) = std::os::unix::net::UnixStream::connect(path) {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            let _ = std::fs::remove_file(path);
        }
    }
}
