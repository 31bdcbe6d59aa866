//! `vrrp_instance`: keywords as written (an [`InstanceDraft`]), then keepalived's
//! defaults and corrections once the block is read.

use std::net::IpAddr;
use std::time::Duration;

use super::{Builder, PendingRefs};
use crate::config::diagnostic::Location;
use crate::config::host::InterfaceKind;
use crate::config::model::*;
use crate::config::syntax::Node;

/// vrrp_instance keywords keepalived knows that xvrrpd does not implement.
const OTHER_INSTANCE_KEYWORDS: &[&str] = &[
    "smtp_alert",
    "native_ipv6",
    "strict_mode",
    "skip_check_adv_addr",
    "debug",
    "lvs_sync_daemon_interface",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "kernel_rx_buf_size",
    "unicast_ttl",
    "virtual_routes",
    "virtual_rules",
    "track_bfd",
    "promote_secondaries",
    "linkbeat_use_polling",
    "old_unicast_checksum",
    "use_ipvlan",
    "track_src_ip",
    "unicast_fault_no_peer",
    "notify_deleted",
    "notify_master_rx_lower_pri",
    "notify_priority_changes",
    "no_accept_on_fault",
    "mcast_ttl",
    "vmac_xmit_base_vip",
];

impl Builder<'_> {
    // ---- vrrp_instance ----------------------------------------------------------------

    pub(super) fn instance(&mut self, node: &Node, global: &GlobalDefs) -> Option<Instance> {
        let name = self.name_arg(node)?;
        let mut draft = InstanceDraft::default();
        for kw in self.block(node) {
            self.instance_keyword(kw, &mut draft);
        }
        self.finish_instance(node, name, draft, global)
    }

    fn instance_keyword(&mut self, kw: &Node, i: &mut InstanceDraft) {
        match kw.name() {
            "state" => {
                if let Some(state) = self.arg(kw, 0) {
                    i.state = match state.text.as_str() {
                        "MASTER" => InitialState::Master,
                        "BACKUP" => InitialState::Backup,
                        other => {
                            self.d.warn(
                                &state.at,
                                "state",
                                format!("unknown state '{other}', using BACKUP"),
                            );
                            InitialState::Backup
                        }
                    };
                }
            }
            "interface" => {
                if let Some(name) = self.arg(kw, 0) {
                    i.interface = Some((name.text.clone(), name.at.clone()));
                }
            }
            "virtual_router_id" => {
                i.vrid_written = true;
                if let Some(token) = self.arg(kw, 0) {
                    match token.text.parse::<i64>() {
                        Ok(v) if (1..=255).contains(&v) => i.vrid = Some(v as u8),
                        Ok(v) => self.d.error(
                            &token.at,
                            "virtual_router_id",
                            format!("{v} outside 1..255"),
                        ),
                        Err(_) => self.d.error(
                            &token.at,
                            "virtual_router_id",
                            format!("invalid number '{}'", token.text),
                        ),
                    }
                }
            }
            "priority" => {
                if let Some(v) = self.int_arg(kw, 1, 255) {
                    i.priority = Some(v as u8);
                }
            }
            "advert_int" => {
                if let Some(v) = self.secs_arg(kw, 0.01, 255.0) {
                    i.advert_int = Some((v, kw.at().clone()));
                }
            }
            "version" => {
                if let Some(v) = self.int_arg(kw, 2, 3) {
                    if v == 2 && i.family == Some(Family::V6) {
                        self.d.warn(
                            kw.at(),
                            "version",
                            "VRRPv2 conflicts with the instance's IPv6 addresses; using 3",
                        );
                    } else {
                        i.version = Some(if v == 3 { Version::V3 } else { Version::V2 });
                    }
                }
            }
            "authentication" => self.authentication(kw, i),
            "virtual_ipaddress" => {
                for entry in self.block(kw) {
                    if let Some(vip) = self.vip(entry) {
                        if self.same_family(entry, &mut i.family, &vip.address, "virtual_ipaddress")
                        {
                            i.vips.push(vip);
                        }
                    }
                }
            }
            "virtual_ipaddress_excluded" => {
                // Excluded addresses are not advertised, so they may be of either family.
                for entry in self.block(kw) {
                    if let Some(vip) = self.vip(entry) {
                        i.excluded_vips.push(vip);
                    }
                }
            }
            "unicast_src_ip" | "mcast_src_ip" => {
                if kw.name() == "unicast_src_ip" {
                    i.unicast_keyword_at.get_or_insert(kw.at().clone());
                }
                if let Some(addr) = self.arg(kw, 0).and_then(|t| self.ip(kw, t, "address")) {
                    if self.same_family(kw, &mut i.family, &addr, kw.name()) {
                        i.src_ip = Some(addr);
                    }
                }
            }
            "unicast_peer" => {
                for peer in self.block(kw) {
                    let Some(addr) = self.ip(peer, &peer.keyword, "unicast peer address") else {
                        continue;
                    };
                    self.peer_options(peer);
                    if self.same_family(peer, &mut i.family, &addr, "unicast_peer") {
                        i.peers.push(addr);
                    }
                }
            }
            "nopreempt" => i.nopreempt = true,
            "preempt" => i.nopreempt = false,
            "preempt_delay" => {
                if let Some(v) = self.secs_arg(kw, 0.0, 1000.0) {
                    i.preempt_delay = Some(Duration::from_secs_f64(v));
                }
            }
            "garp_master_delay" => {
                if let Some(v) = self.int_arg(kw, 0, 255) {
                    i.garp_master_delay = Some(Duration::from_secs(v.unsigned_abs()));
                }
            }
            "garp_master_repeat" => {
                if let Some(v) = self.int_arg(kw, 0, 255) {
                    i.garp_master_repeat = Some(self.at_least_one(kw, v));
                }
            }
            "garp_master_refresh" => {
                if let Some(v) = self.int_arg(kw, 0, i64::from(u32::MAX)) {
                    i.garp_master_refresh =
                        Some((v > 0).then(|| Duration::from_secs(v.unsigned_abs())));
                }
            }
            "garp_master_refresh_repeat" => {
                if let Some(v) = self.int_arg(kw, 0, 255) {
                    i.garp_master_refresh_repeat = Some(self.at_least_one(kw, v));
                }
            }
            "track_interface" => {
                for entry in self.block(kw) {
                    let (weight, reverse) = self.weight_args(entry, 0);
                    let name = entry.name().to_string();
                    if i.track_interface.iter().any(|t| t.0.name == name) {
                        self.d.warn(
                            entry.at(),
                            "track_interface",
                            format!("{name} tracked twice; ignoring the repeat"),
                        );
                        continue;
                    }
                    self.check_interface(entry.at(), "track_interface", &name);
                    let track = TrackInterface {
                        name,
                        weight: weight.unwrap_or(0),
                        reverse,
                    };
                    i.track_interface.push((track, entry.at().clone()));
                }
            }
            "track_script" => i.track_script.extend(self.track_refs(kw)),
            "track_process" => i.track_process.extend(self.track_refs(kw)),
            "track_file" => i.track_file.extend(self.track_refs(kw)),
            "notify" => i.notify.notify = self.command(kw),
            "notify_master" => i.notify.master = self.command(kw),
            "notify_backup" => i.notify.backup = self.command(kw),
            "notify_fault" => i.notify.fault = self.command(kw),
            "notify_stop" => i.notify.stop = self.command(kw),
            "use_vmac" => i.use_vmac = Some(kw.arg(0).map(|t| t.text.clone())),
            "vmac_xmit_base" => i.vmac_xmit_base = true,
            "dont_track_primary" => i.dont_track_primary = true,
            "accept" => i.accept = true,
            "no_accept" => i.accept = false,
            "check_unicast_src" => {
                i.check_unicast_src = true;
                i.unicast_keyword_at.get_or_insert(kw.at().clone());
            }
            "v3_checksum_as_v2" => {
                i.v3_checksum_as_v2 = true;
                self.d.lint(
                    kw.at(),
                    "v3_checksum_as_v2",
                    "xvrrpd extension: keepalived 2.2 does not know this keyword",
                );
            }
            name if OTHER_INSTANCE_KEYWORDS.contains(&name) => self.not_implemented(kw),
            name => self.unknown(kw, name),
        }
    }

    fn at_least_one(&mut self, kw: &Node, value: i64) -> u32 {
        if value == 0 {
            self.d
                .warn(kw.at(), kw.name(), "must be greater than 0; using 1");
            return 1;
        }
        value as u32
    }

    /// Records the instance family on first use; reports and rejects a mismatch.
    fn same_family(
        &mut self,
        node: &Node,
        family: &mut Option<Family>,
        addr: &IpAddr,
        keyword: &str,
    ) -> bool {
        let this = Family::of(addr);
        match *family {
            None => {
                *family = Some(this);
                true
            }
            Some(f) if f == this => true,
            Some(f) => {
                self.d.warn(
                    node.at(),
                    keyword,
                    format!("{addr} is {this} but the instance is {f}; ignored"),
                );
                false
            }
        }
    }

    fn peer_options(&mut self, peer: &Node) {
        let mut args = peer.args.iter();
        while let Some(option) = args.next() {
            match option.text.as_str() {
                "min_ttl" | "max_ttl" => {
                    if let Some(value) = args.next() {
                        self.int(peer, value, 0, 255);
                    }
                }
                other => self.d.warn(
                    &option.at,
                    "unicast_peer",
                    format!("unknown option '{other}'"),
                ),
            }
        }
    }

    fn authentication(&mut self, kw: &Node, i: &mut InstanceDraft) {
        let mut auth_type = None;
        let mut auth_pass: Option<String> = None;
        for entry in self.block(kw) {
            match entry.name() {
                "auth_type" => {
                    if let Some(t) = self.arg(entry, 0) {
                        auth_type = match t.text.as_str() {
                            "PASS" => Some(AuthType::Pass),
                            "AH" => Some(AuthType::Ah),
                            other => {
                                self.d.warn(
                                    &t.at,
                                    "auth_type",
                                    format!("unknown authentication type '{other}'"),
                                );
                                None
                            }
                        };
                    }
                }
                "auth_pass" => {
                    if let Some(p) = self.arg(entry, 0) {
                        let mut pass = p.text.clone();
                        if pass.len() > MAX_AUTH_PASS_LEN {
                            self.d.warn(
                                &p.at,
                                "auth_pass",
                                "longer than 8 characters; truncated to 8 as keepalived does",
                            );
                            let mut end = MAX_AUTH_PASS_LEN;
                            while !pass.is_char_boundary(end) {
                                end -= 1;
                            }
                            pass.truncate(end);
                        }
                        auth_pass = Some(pass);
                    }
                }
                name => self.unknown(entry, name),
            }
        }
        i.authentication = Some((auth_type, auth_pass, kw.at().clone()));
    }

    /// `IP[/len] [brd X] [dev IF] [label L] [scope S] ...`
    fn track_refs(&mut self, kw: &Node) -> Vec<(TrackRef, Location)> {
        let mut refs = Vec::new();
        for entry in self.block(kw) {
            let (weight, reverse) = self.weight_args(entry, 0);
            refs.push((
                TrackRef {
                    name: entry.name().to_string(),
                    weight,
                    reverse,
                },
                entry.at().clone(),
            ));
        }
        refs
    }

    fn finish_instance(
        &mut self,
        node: &Node,
        name: String,
        i: InstanceDraft,
        g: &GlobalDefs,
    ) -> Option<Instance> {
        let at = node.at();
        let Some(vrid) = i.vrid else {
            // An invalid value was reported where it was written.
            if !i.vrid_written {
                self.d.error(
                    at,
                    "virtual_router_id",
                    format!("{name}: virtual_router_id must be set"),
                );
            }
            return None;
        };
        let Some((interface, interface_at)) = i.interface else {
            self.d
                .error(at, "interface", format!("{name}: no interface given"));
            return None;
        };
        match self.host.interface(&interface) {
            InterfaceKind::Present => {}
            InterfaceKind::Missing => {
                self.d.error(
                    &interface_at,
                    "interface",
                    format!("{name}: interface {interface} does not exist on this host"),
                );
                return None;
            }
            InterfaceKind::Loopback => {
                self.d.error(
                    &interface_at,
                    "interface",
                    format!("{name}: cannot use loopback interface {interface} for VRRP"),
                );
                return None;
            }
        }
        let family = i.family.unwrap_or(Family::V4);
        let configured_version = i.version.unwrap_or(g.vrrp_version);
        let version = if family == Family::V6 {
            if configured_version == Version::V2 && (i.version.is_some() || self.global_version_set)
            {
                self.d.lint(
                    at,
                    "version",
                    format!("{name}: VRRPv2 has no IPv6; using version 3"),
                );
            }
            Version::V3
        } else {
            configured_version
        };
        let priority = i.priority.unwrap_or(match i.state {
            InitialState::Master => OWNER_PRIORITY,
            InitialState::Backup => DEFAULT_PRIORITY,
        });
        let advert_int = match i.advert_int {
            Some((secs, at)) => self.round_advert_int(&name, secs, version, &at),
            None => DEFAULT_ADVERT_INT,
        };
        let authentication = match i.authentication {
            None => None,
            Some((_, _, auth_at)) if version == Version::V3 => {
                self.d.warn(
                    &auth_at,
                    "authentication",
                    format!("{name}: VRRPv3 has no authentication; ignored"),
                );
                None
            }
            Some((None, _, _)) => None,
            Some((Some(_), None, auth_at)) => {
                self.d.warn(
                    &auth_at,
                    "authentication",
                    format!("{name}: auth_type given without auth_pass; ignored"),
                );
                None
            }
            Some((Some(auth_type), Some(auth_pass), _)) => Some(Authentication {
                auth_type,
                auth_pass,
            }),
        };
        let mut nopreempt = i.nopreempt;
        if nopreempt && priority == OWNER_PRIORITY {
            self.d.warn(
                at,
                "nopreempt",
                format!("{name}: priority 255 always preempts; nopreempt ignored"),
            );
            nopreempt = false;
        } else if nopreempt && i.state == InitialState::Master {
            self.d.warn(
                at,
                "nopreempt",
                format!("{name}: nopreempt does not work with state MASTER (use state BACKUP on both nodes); ignored"),
            );
            nopreempt = false;
        }
        let mut preempt_delay = i.preempt_delay.unwrap_or(Duration::ZERO);
        if nopreempt && !preempt_delay.is_zero() {
            self.d.warn(
                at,
                "preempt_delay",
                format!("{name}: preempt_delay has no effect with nopreempt; ignored"),
            );
            preempt_delay = Duration::ZERO;
        }
        if let (Some(unicast_at), true) = (&i.unicast_keyword_at, i.peers.is_empty()) {
            self.d.warn(
                unicast_at,
                "unicast_peer",
                format!(
                    "{name}: unicast keyword without any unicast_peer; adverts will be multicast"
                ),
            );
        }
        if i.vips.is_empty() {
            self.d.warn(
                at,
                "virtual_ipaddress",
                format!("{name}: no virtual_ipaddress; at least one is expected"),
            );
        }
        let mut track_interface = Vec::new();
        for (track, track_at) in i.track_interface {
            if track.name == interface {
                self.d.warn(
                    &track_at,
                    "track_interface",
                    format!(
                        "{name}: {} is the instance's own interface, tracked anyway; ignored",
                        track.name
                    ),
                );
            } else if priority == OWNER_PRIORITY && track.weight != 0 {
                self.owner_ignores(&name, "track_interface", &track.name, &track_at);
            } else {
                track_interface.push(track);
            }
        }
        let use_vmac = i
            .use_vmac
            .map(|named| named.unwrap_or_else(|| format!("vrrp.{vrid}")));
        self.pending_refs.push(PendingRefs {
            instance: name.clone(),
            script: i.track_script,
            process: i.track_process,
            file: i.track_file,
        });
        Some(Instance {
            name,
            defined_at: at.clone(),
            state: i.state,
            interface,
            virtual_router_id: vrid,
            priority,
            advert_int,
            version,
            authentication,
            virtual_ipaddress: i.vips,
            virtual_ipaddress_excluded: i.excluded_vips,
            unicast_src_ip: i.src_ip,
            unicast_peer: i.peers,
            nopreempt,
            preempt_delay,
            garp_master_delay: i.garp_master_delay.unwrap_or(g.vrrp_garp_master_delay),
            garp_master_repeat: i.garp_master_repeat.unwrap_or(g.vrrp_garp_master_repeat),
            garp_master_refresh: i.garp_master_refresh.unwrap_or(g.vrrp_garp_master_refresh),
            garp_master_refresh_repeat: i
                .garp_master_refresh_repeat
                .unwrap_or(g.vrrp_garp_master_refresh_repeat),
            track_interface,
            // Filled in by `validate` once every tracker is known.
            track_script: Vec::new(),
            track_process: Vec::new(),
            track_file: Vec::new(),
            notify: i.notify,
            use_vmac,
            vmac_xmit_base: i.vmac_xmit_base,
            dont_track_primary: i.dont_track_primary,
            accept: i.accept,
            check_unicast_src: i.check_unicast_src || g.vrrp_check_unicast_src,
            v3_checksum_as_v2: i.v3_checksum_as_v2,
        })
    }

    pub(crate) fn owner_ignores(
        &mut self,
        instance: &str,
        keyword: &str,
        tracked: &str,
        at: &Location,
    ) {
        self.d.warn(
            at,
            keyword,
            format!("{instance}: priority 255 (address owner) ignores weights; {tracked} ignored"),
        );
    }

    fn round_advert_int(
        &mut self,
        name: &str,
        secs: f64,
        version: Version,
        at: &Location,
    ) -> Duration {
        match version {
            Version::V2 => {
                let rounded = secs.round().max(1.0);
                if rounded != secs {
                    self.d.warn(
                        at,
                        "advert_int",
                        format!("{name}: VRRPv2 advert_int {secs}s must be whole seconds; using {rounded}s"),
                    );
                }
                Duration::from_secs_f64(rounded)
            }
            Version::V3 => {
                let centis = (secs * 100.0).round();
                let max = MAX_V3_ADVERT_INT.as_secs_f64();
                if secs > max {
                    self.d.warn(
                        at,
                        "advert_int",
                        format!("{name}: VRRPv3 advert_int {secs}s above {max}s; using {max}s"),
                    );
                    return MAX_V3_ADVERT_INT;
                }
                if (centis / 100.0 - secs).abs() > 1e-9 {
                    self.d.warn(
                        at,
                        "advert_int",
                        format!("{name}: VRRPv3 advert_int {secs}s is not a multiple of 10 ms; rounding"),
                    );
                }
                Duration::from_millis(centis.max(1.0) as u64 * 10)
            }
        }
    }
}

/// An instance as written, before defaults and cross-checks.
struct InstanceDraft {
    state: InitialState,
    interface: Option<(String, Location)>,
    vrid: Option<u8>,
    vrid_written: bool,
    priority: Option<u8>,
    advert_int: Option<(f64, Location)>,
    version: Option<Version>,
    family: Option<Family>,
    authentication: Option<(Option<AuthType>, Option<String>, Location)>,
    vips: Vec<VirtualIp>,
    excluded_vips: Vec<VirtualIp>,
    src_ip: Option<IpAddr>,
    peers: Vec<IpAddr>,
    /// First keyword that asks for unicast (keepalived warns when no peer follows).
    unicast_keyword_at: Option<Location>,
    nopreempt: bool,
    preempt_delay: Option<Duration>,
    garp_master_delay: Option<Duration>,
    garp_master_repeat: Option<u32>,
    garp_master_refresh: Option<Option<Duration>>,
    garp_master_refresh_repeat: Option<u32>,
    track_interface: Vec<(TrackInterface, Location)>,
    track_script: Vec<(TrackRef, Location)>,
    track_process: Vec<(TrackRef, Location)>,
    track_file: Vec<(TrackRef, Location)>,
    notify: Notify,
    use_vmac: Option<Option<String>>,
    vmac_xmit_base: bool,
    dont_track_primary: bool,
    accept: bool,
    check_unicast_src: bool,
    v3_checksum_as_v2: bool,
}

impl Default for InstanceDraft {
    fn default() -> Self {
        Self {
            state: InitialState::Backup,
            interface: None,
            vrid: None,
            vrid_written: false,
            priority: None,
            advert_int: None,
            version: None,
            family: None,
            authentication: None,
            vips: Vec::new(),
            excluded_vips: Vec::new(),
            src_ip: None,
            peers: Vec::new(),
            unicast_keyword_at: None,
            nopreempt: false,
            preempt_delay: None,
            garp_master_delay: None,
            garp_master_repeat: None,
            garp_master_refresh: None,
            garp_master_refresh_repeat: None,
            track_interface: Vec::new(),
            track_script: Vec::new(),
            track_process: Vec::new(),
            track_file: Vec::new(),
            notify: Notify::default(),
            use_vmac: None,
            vmac_xmit_base: false,
            dont_track_primary: false,
            // keepalived accepts traffic to the VIPs unless strict mode says otherwise.
            accept: true,
            check_unicast_src: false,
            v3_checksum_as_v2: false,
        }
    }
}
