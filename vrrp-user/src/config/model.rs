//! The VRRP part of keepalived.conf, resolved: defaults filled in, references checked.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::diagnostic::Location;
pub use crate::command::ScriptUser;
/// One address family and one VRRP version type for config, engine and wire.
pub use crate::packet::{Family, Version};

pub const DEFAULT_MCAST_GROUP4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
pub const DEFAULT_MCAST_GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
pub const DEFAULT_PRIORITY: u8 = 100;
/// The address owner's priority: becomes master at once and ignores track weights.
pub use vrrp_common::PRIORITY_OWNER as OWNER_PRIORITY;
pub const DEFAULT_ADVERT_INT: Duration = Duration::from_secs(1);
pub const DEFAULT_GARP_MASTER_DELAY: Duration = Duration::from_secs(5);
pub const DEFAULT_GARP_MASTER_REPEAT: u32 = 5;
/// Adverts missed before the master is declared down (the RFC's 3).
pub const DEFAULT_DOWN_TIMER_ADVERTS: u32 = 3;
/// VRRPv3 carries the interval in 12 bits of centiseconds.
pub const MAX_V3_ADVERT_INT: Duration = Duration::from_millis(40_950);
/// VRRP PASS authentication carries at most 8 bytes.
pub const MAX_AUTH_PASS_LEN: usize = 8;
/// keepalived's nftables table and chain priority for accept mode's drop rules.
pub const DEFAULT_NFTABLES_TABLE: &str = "keepalived";
pub const DEFAULT_NFTABLES_PRIORITY: i32 = -1;
/// `RTPROT_KEEPALIVED`: the protocol of tracked routes and rules, by which
/// deletions are recognised.
pub const RTPROT_KEEPALIVED: u8 = 18;

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Config {
    pub global: GlobalDefs,
    pub instances: Vec<Instance>,
    pub scripts: BTreeMap<String, VrrpScript>,
    pub track_processes: BTreeMap<String, TrackProcess>,
    pub track_files: BTreeMap<String, TrackFile>,
    pub sync_groups: Vec<SyncGroup>,
    /// `static_ipaddress`, `static_routes`, `static_rules`: added at start, put
    /// back when deleted (unless `no_track`), removed at stop, as keepalived does.
    pub static_addresses: Vec<VirtualIp>,
    pub static_routes: Vec<VirtualRoute>,
    pub static_rules: Vec<VirtualRule>,
}

impl Config {
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// The sync group `instance` belongs to, if any.
    pub fn sync_group_of(&self, instance: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.members.iter().any(|m| m == instance))
    }

    /// Whether any script (tracking or notify) would be run.
    pub fn runs_scripts(&self) -> bool {
        !self.scripts.is_empty()
            || self.global.notify_fifo_script.is_some()
            || self.instances.iter().any(|i| i.notify.any())
            || self.sync_groups.iter().any(|g| g.notify.any())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalDefs {
    pub router_id: Option<String>,
    pub vrrp_mcast_group4: Ipv4Addr,
    pub vrrp_mcast_group6: Ipv6Addr,
    /// Version for instances that do not set `version` (IPv6 instances always use 3).
    #[serde(serialize_with = "version_number")]
    pub vrrp_version: Version,
    #[serde(serialize_with = "secs")]
    pub vrrp_garp_master_delay: Duration,
    pub vrrp_garp_master_repeat: u32,
    #[serde(serialize_with = "opt_secs")]
    pub vrrp_garp_master_refresh: Option<Duration>,
    pub vrrp_garp_master_refresh_repeat: u32,
    /// Pause between gratuitous ARPs.
    #[serde(serialize_with = "secs")]
    pub vrrp_garp_interval: Duration,
    /// Pause between unsolicited neighbour advertisements.
    #[serde(serialize_with = "secs")]
    pub vrrp_gna_interval: Duration,
    pub vrrp_check_unicast_src: bool,
    /// `vrrp_strict`: RFC rules enforced (instances inherit it as `strict_mode`).
    pub vrrp_strict: bool,
    pub script_user: Option<ScriptUser>,
    pub enable_script_security: bool,
    pub notify_fifo: Option<PathBuf>,
    pub notify_fifo_script: Option<String>,
    /// `vrrp_rt_priority`: SCHED_FIFO priority of the advert thread; `None`
    /// uses xvrrpd's default, `Some(0)` turns real-time scheduling off.
    pub vrrp_rt_priority: Option<u8>,
    /// `vrrp_priority`: nice value of the daemon.
    pub vrrp_priority: Option<i8>,
    /// `vrrp_no_swap`: lock the daemon in memory (xvrrpd does by default
    /// while real-time scheduling is on).
    pub vrrp_no_swap: bool,
    /// `vrrp_rlimit_rttime`: RLIMIT_RTTIME in microseconds (hard; the soft
    /// limit is half, as keepalived sets it).
    pub vrrp_rlimit_rttime: Option<u32>,
    /// `vrrp_startup_delay`: no instance may become master before this long
    /// after the daemon starts (its down timers run from then at the earliest).
    #[serde(serialize_with = "secs")]
    pub vrrp_startup_delay: Duration,
    /// `dynamic_interfaces`: an instance whose interface is missing waits for
    /// it in FAULT instead of failing the start.
    pub dynamic_interfaces: bool,
    /// `nftables [TABLE]`: the nftables table for the drop rules of instances
    /// without accept mode (keepalived's default name is `keepalived`).
    pub nftables_table: String,
    /// `nftables_priority`: the priority of that table's input and output chains.
    pub nftables_priority: i32,
    /// `vrrp_down_timer_adverts`: the default of instances' `down_timer_adverts`.
    pub vrrp_down_timer_adverts: u32,
    /// `vrrp_garp_lower_prio_delay`/`_repeat`: instances' defaults (keepalived
    /// falls back to `vrrp_garp_master_delay`/`_repeat`).
    #[serde(serialize_with = "opt_secs")]
    pub vrrp_garp_lower_prio_delay: Option<Duration>,
    pub vrrp_garp_lower_prio_repeat: Option<u32>,
    /// `vrrp_lower_prio_no_advert`, `vrrp_higher_prio_send_advert`: instances' defaults.
    pub vrrp_lower_prio_no_advert: bool,
    pub vrrp_higher_prio_send_advert: bool,
    /// `xvrrpd_attach` (an xvrrpd extension): where the recorder may attach;
    /// `None` is `auto` unless `xvrrpd run --attach` says otherwise.
    pub xvrrpd_attach: Option<crate::bpf::AttachMode>,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        Self {
            router_id: None,
            vrrp_mcast_group4: DEFAULT_MCAST_GROUP4,
            vrrp_mcast_group6: DEFAULT_MCAST_GROUP6,
            vrrp_version: Version::V2,
            vrrp_garp_master_delay: DEFAULT_GARP_MASTER_DELAY,
            vrrp_garp_master_repeat: DEFAULT_GARP_MASTER_REPEAT,
            vrrp_garp_master_refresh: None,
            vrrp_garp_master_refresh_repeat: 1,
            vrrp_garp_interval: Duration::ZERO,
            vrrp_gna_interval: Duration::ZERO,
            vrrp_check_unicast_src: false,
            vrrp_strict: false,
            script_user: None,
            enable_script_security: false,
            notify_fifo: None,
            notify_fifo_script: None,
            vrrp_rt_priority: None,
            vrrp_priority: None,
            vrrp_no_swap: false,
            vrrp_rlimit_rttime: None,
            vrrp_startup_delay: Duration::ZERO,
            dynamic_interfaces: false,
            nftables_table: DEFAULT_NFTABLES_TABLE.to_string(),
            nftables_priority: DEFAULT_NFTABLES_PRIORITY,
            vrrp_down_timer_adverts: DEFAULT_DOWN_TIMER_ADVERTS,
            vrrp_garp_lower_prio_delay: None,
            vrrp_garp_lower_prio_repeat: None,
            vrrp_lower_prio_no_advert: false,
            vrrp_higher_prio_send_advert: false,
            xvrrpd_attach: None,
        }
    }
}

/// `state` only chooses the default priority (255 for MASTER) and whether to wait;
/// every instance starts as backup unless it is the address owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InitialState {
    Master,
    Backup,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance {
    pub name: String,
    pub defined_at: Location,
    pub state: InitialState,
    pub interface: String,
    pub virtual_router_id: u8,
    pub priority: u8,
    /// As configured after keepalived's rounding (whole seconds for v2, 10 ms for v3).
    #[serde(serialize_with = "secs")]
    pub advert_int: Duration,
    #[serde(serialize_with = "version_number")]
    pub version: Version,
    pub authentication: Option<Authentication>,
    pub virtual_ipaddress: Vec<VirtualIp>,
    /// Added and removed with the VIPs, never advertised (either family).
    pub virtual_ipaddress_excluded: Vec<VirtualIp>,
    /// Installed while master, removed otherwise.
    pub virtual_routes: Vec<VirtualRoute>,
    pub virtual_rules: Vec<VirtualRule>,
    /// Source address for adverts (`unicast_src_ip`, or its older name `mcast_src_ip`).
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peer: Vec<IpAddr>,
    pub nopreempt: bool,
    #[serde(serialize_with = "secs")]
    pub preempt_delay: Duration,
    #[serde(serialize_with = "secs")]
    pub garp_master_delay: Duration,
    pub garp_master_repeat: u32,
    #[serde(serialize_with = "opt_secs")]
    pub garp_master_refresh: Option<Duration>,
    pub garp_master_refresh_repeat: u32,
    /// GARPs when a lower-priority advert reaches the master, and again after the delay.
    #[serde(serialize_with = "secs")]
    pub garp_lower_prio_delay: Duration,
    pub garp_lower_prio_repeat: u32,
    /// As master, do not answer a lower-priority advert with an advert.
    pub lower_prio_no_advert: bool,
    /// As master, send an advert before yielding to a higher-priority one.
    pub higher_prio_send_advert: bool,
    /// Adverts missed before the master is declared down.
    pub down_timer_adverts: u32,
    /// `mcast_dst_ip`: this instance's multicast group instead of the global one.
    pub mcast_dst_ip: Option<IpAddr>,
    pub track_interface: Vec<TrackInterface>,
    pub track_script: Vec<TrackRef>,
    pub track_process: Vec<TrackRef>,
    pub track_file: Vec<TrackRef>,
    pub notify: Notify,
    /// Interface name of the VRRP MAC-VLAN (`vrrp.<VRID>` unless named).
    pub use_vmac: Option<String>,
    pub vmac_xmit_base: bool,
    pub dont_track_primary: bool,
    /// Accept packets to the VIPs while master (keepalived's default outside strict mode,
    /// and for the address owner).
    pub accept: bool,
    pub check_unicast_src: bool,
    /// VRRPv3 over IPv4: checksum without the pseudo-header, for routers that do so.
    pub v3_checksum_as_v2: bool,
    /// keepalived's strict mode (`strict_mode`, or the global `vrrp_strict`).
    pub strict_mode: bool,
    /// `promote_secondaries`: set the interface's sysctl while running, so
    /// removing a VIP that is the primary of its subnet keeps the others.
    pub promote_secondaries: bool,
}

impl Instance {
    /// The family of the instance: its first VIP's (or its unicast addresses' if it has none).
    pub fn family(&self) -> Family {
        self.virtual_ipaddress
            .first()
            .map(|v| Family::of(&v.address))
            .or_else(|| self.unicast_src_ip.as_ref().map(Family::of))
            .or_else(|| self.unicast_peer.first().map(Family::of))
            .unwrap_or(Family::V4)
    }

    /// Adverts go to the listed peers instead of the multicast group.
    pub fn is_unicast(&self) -> bool {
        !self.unicast_peer.is_empty()
    }

    pub fn advert_interval(&self) -> Duration {
        self.advert_int
    }

    /// Where adverts are sent when multicasting: `mcast_dst_ip`, else the global group.
    pub fn multicast_group(&self, global: &GlobalDefs) -> IpAddr {
        if let Some(group) = self.mcast_dst_ip {
            return group;
        }
        match self.family() {
            Family::V4 => IpAddr::V4(global.vrrp_mcast_group4),
            Family::V6 => IpAddr::V6(global.vrrp_mcast_group6),
        }
    }

    /// The address owner is master at once and ignores track weights.
    pub fn is_address_owner(&self) -> bool {
        self.priority == OWNER_PRIORITY
    }

    /// What identifies "the same instance" across a reload.
    pub fn reload_key(&self) -> (u8, Family, &str) {
        (self.virtual_router_id, self.family(), &self.interface)
    }

    /// The 8 auth-data bytes of a v2 PASS advert (password zero-padded).
    pub fn auth_data(&self) -> Option<[u8; MAX_AUTH_PASS_LEN]> {
        let auth = self.authentication.as_ref()?;
        if auth.auth_type != AuthType::Pass {
            return None;
        }
        let mut data = [0u8; MAX_AUTH_PASS_LEN];
        let pass = auth.auth_pass.as_bytes();
        let len = pass.len().min(MAX_AUTH_PASS_LEN);
        data[..len].copy_from_slice(&pass[..len]);
        Some(data)
    }

    pub fn has_trackers(&self) -> bool {
        !(self.track_interface.is_empty()
            && self.track_script.is_empty()
            && self.track_process.is_empty()
            && self.track_file.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AuthType {
    Pass,
    Ah,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authentication {
    pub auth_type: AuthType,
    /// At most 8 bytes (longer passwords are cut, as keepalived does).
    pub auth_pass: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualIp {
    pub address: IpAddr,
    /// /32 or /128 unless written.
    pub prefix_len: u8,
    pub broadcast: Option<IpAddr>,
    /// Interface to put the address on (the instance's interface when unset).
    pub dev: Option<String>,
    pub label: Option<String>,
    pub scope: Option<String>,
    /// `no_track`: deleting it by hand does not take the instance out of MASTER.
    pub no_track: bool,
}

impl VirtualIp {
    pub fn family(&self) -> Family {
        Family::of(&self.address)
    }
}

/// `track_interface` entry. Weight 0 means the interface going down puts us in FAULT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackInterface {
    pub name: String,
    pub weight: i32,
    pub reverse: bool,
}

/// A `track_script`/`track_process`/`track_file` entry naming a top-level tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackRef {
    pub name: String,
    /// Overrides the tracker's own weight when set.
    pub weight: Option<i32>,
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Notify {
    /// Gets `INSTANCE|GROUP name STATE priority` appended.
    pub notify: Option<String>,
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    pub stop: Option<String>,
}

impl Notify {
    pub fn any(&self) -> bool {
        self.notify.is_some()
            || self.master.is_some()
            || self.backup.is_some()
            || self.fault.is_some()
            || self.stop.is_some()
    }

    /// The command a notify keyword (`notify`, `notify_master`, ...) sets.
    pub fn slot_mut(&mut self, keyword: &str) -> &mut Option<String> {
        match keyword {
            "notify_master" => &mut self.master,
            "notify_backup" => &mut self.backup,
            "notify_fault" => &mut self.fault,
            "notify_stop" => &mut self.stop,
            _ => &mut self.notify,
        }
    }

    pub fn commands(&self) -> impl Iterator<Item = &str> {
        [
            &self.notify,
            &self.master,
            &self.backup,
            &self.fault,
            &self.stop,
        ]
        .into_iter()
        .filter_map(|c| c.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpScript {
    pub name: String,
    pub defined_at: Location,
    pub script: String,
    #[serde(serialize_with = "secs")]
    pub interval: Duration,
    /// Defaults to the interval.
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    pub weight: i32,
    pub reverse: bool,
    pub rise: u32,
    pub fall: u32,
    pub user: Option<ScriptUser>,
    /// Start in the failed state until the script first succeeds.
    pub init_fail: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackProcess {
    pub name: String,
    pub defined_at: Location,
    /// Matched against /proc/PID/comm (or the command line with `param_match`).
    pub process: String,
    pub parameters: Vec<String>,
    pub weight: i32,
    pub reverse: bool,
    pub quorum: u32,
    pub quorum_max: Option<u32>,
    /// How long a quorum must have been gained (`fork_delay`) or lost
    /// (`terminate_delay`) before it counts; `delay` sets both.
    #[serde(serialize_with = "secs")]
    pub fork_delay: Duration,
    #[serde(serialize_with = "secs")]
    pub terminate_delay: Duration,
    pub param_match: Option<String>,
    pub full_command: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackFile {
    pub name: String,
    pub defined_at: Location,
    pub file: PathBuf,
    /// The file's number is multiplied by this.
    pub weight: i32,
    pub reverse: bool,
    /// Create the file with this value at start-up (`init_file [VALUE] [overwrite]`).
    pub init_file: Option<InitFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitFile {
    pub value: i64,
    pub overwrite: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncGroup {
    pub name: String,
    pub defined_at: Location,
    pub members: Vec<String>,
    pub notify: Notify,
    /// `sync_group_tracking_weight`: members keep their tracker weights;
    /// without it a member's tracker failure faults the whole group.
    pub tracking_weight: bool,
    /// Trackers written in the group: every member tracks them, with their
    /// weights (keepalived adds them to each member).
    pub track_interface: Vec<TrackInterface>,
    pub track_script: Vec<TrackRef>,
    pub track_process: Vec<TrackRef>,
    pub track_file: Vec<TrackRef>,
}

/// An address with a prefix length (`10.0.0.0/8`, `default` is /0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The kind of a route (`ip route add TYPE PREFIX`) xvrrpd installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

/// A `virtual_routes` line, resolved: what `ip route add` would send.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct VirtualRoute {
    pub kind: RouteKind,
    pub destination: Prefix,
    /// `src`: the preferred source address.
    pub source: Option<IpAddr>,
    /// `from`: the source prefix (IPv6 only).
    pub from: Option<Prefix>,
    /// `via`/`gw`.
    pub via: Option<IpAddr>,
    /// `dev`/`oif`.
    pub dev: Option<String>,
    /// RT_SCOPE_*; `None` lets the kernel choose (as iproute2 does).
    pub scope: Option<u8>,
    /// Routing table id (main 254 unless given).
    pub table: u32,
    /// `metric`/`priority`/`preference`.
    pub metric: Option<u32>,
    pub tos: u8,
    /// RTPROT_*: keepalived's 18 for tracked routes.
    pub protocol: Option<u8>,
    pub onlink: bool,
    /// How it is added next to a matching route (`add`, `prepend`, `append`).
    pub how: RouteAdd,
    /// `no_track`: a deletion by hand leaves the instance as it is.
    pub no_track: bool,
}

/// keepalived prepends a route unless told `add` (fail if a matching route
/// exists) or `append` (after it), as `ip route prepend/add/append`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RouteAdd {
    Prepend,
    Add,
    Append,
}

impl VirtualRoute {
    pub fn family(&self) -> Family {
        self.destination.family()
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RuleAction {
    Table(u32),
    Goto(u32),
    Nop,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// A `virtual_rules` line, resolved: what `ip rule add` would send.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct VirtualRule {
    #[serde(serialize_with = "family_name")]
    pub family: Family,
    pub from: Option<Prefix>,
    pub to: Option<Prefix>,
    /// keepalived gives a rule without one a priority counting down from 16384.
    pub priority: u32,
    pub action: RuleAction,
    pub fwmark: Option<u32>,
    pub fwmask: Option<u32>,
    /// `iif`/`dev` and `oif`, by name.
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// `not`.
    pub invert: bool,
    pub tos: u8,
    pub protocol: Option<u8>,
    pub no_track: bool,
}

/// The prefix length of a single address of `family` (/32, /128).
pub fn host_prefix_len(family: Family) -> u8 {
    match family {
        Family::V4 => 32,
        Family::V6 => 128,
    }
}

fn family_name<S: Serializer>(f: &Family, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&f.to_string())
}

fn version_number<S: Serializer>(v: &Version, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u8(v.number())
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_data_is_zero_padded() {
        let mut instance = crate::config::load_str(
            "vrrp_instance A { interface eth0\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1 } }",
            std::path::Path::new("t.conf"),
        )
        .unwrap()
        .config
        .instances
        .remove(0);
        assert_eq!(instance.auth_data(), None);
        instance.authentication = Some(Authentication {
            auth_type: AuthType::Pass,
            auth_pass: "abc".into(),
        });
        assert_eq!(instance.auth_data(), Some(*b"abc\0\0\0\0\0"));
    }
}
