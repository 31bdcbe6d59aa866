//! Reads the keyword tree into the model, keyword by keyword, with keepalived's ranges,
//! defaults and corrections. Each correction keepalived reports is reported here too, at
//! the keyword's file:line; cross-object checks live in `validate`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::diagnostic::{Diagnostics, Location};
use super::host::{Host, InterfaceKind};
use super::lexer::Token;
use super::model::*;
use super::syntax::Node;

/// Top-level sections of keepalived.conf outside the VRRP part: skipped with a note.
const OTHER_SECTIONS: &[&str] = &[
    "virtual_server",
    "virtual_server_group",
    "real_server",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "static_track_group",
    "garp_group",
    "bfd_instance",
    "linkbeat_interfaces",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "child_wait_time",
    "vrrp_track_bfd",
];

/// global_defs keywords keepalived knows that do not concern xvrrpd's VRRP.
const OTHER_GLOBAL_KEYWORDS: &[&str] = &[
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_helo_name",
    "smtp_connect_timeout",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "checker_log_all_failures",
    "lvs_id",
    "lvs_sync_daemon",
    "lvs_flush",
    "lvs_flush_onstop",
    "lvs_timeouts",
    "vrrp_skip_check_adv_addr",
    "vrrp_strict",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert",
    "vrrp_iptables",
    "vrrp_ipsets",
    "nftables",
    "nftables_priority",
    "nftables_ifindex",
    "nftables_counters",
    "vrrp_priority",
    "checker_priority",
    "bfd_priority",
    "vrrp_no_swap",
    "checker_no_swap",
    "bfd_no_swap",
    "vrrp_rt_priority",
    "checker_rt_priority",
    "bfd_rt_priority",
    "vrrp_rlimit_rtime",
    "checker_rlimit_rtime",
    "bfd_rlimit_rtime",
    "vrrp_cpu_affinity",
    "checker_cpu_affinity",
    "bfd_cpu_affinity",
    "enable_dbus",
    "dbus_service_name",
    "enable_snmp_vrrp",
    "enable_snmp_checker",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_traps",
    "snmp_socket",
    "dynamic_interfaces",
    "vrrp_startup_delay",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs",
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "bfd_process_name",
    "default_interface",
    "max_auto_priority",
    "min_auto_priority_delay",
    "instance",
    "net_namespace",
    "namespace_with_ipsets",
    "use_pid_dir",
    "umask",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "notify_fifo_dont_block",
    "vrrp_min_garp",
    "vrrp_notify_priority_changes",
    "random_seed",
    "disable_local_igmp",
    "vrrp_iptables_nolock",
    "reload_check_config",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "config_save_dir",
    "data_use_instance",
    "json_version",
    "tmp_config_directory",
    "vrrp_owner_ignore_adverts",
    "vrrp_max_auto_priority",
];

/// global_defs keywords that change VRRP behaviour but that xvrrpd does not implement yet.
const UNIMPLEMENTED_VRRP_GLOBALS: &[&str] = &[
    "vrrp_strict",
    "vrrp_skip_check_adv_addr",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert",
    "vrrp_startup_delay",
    "max_auto_priority",
    "dynamic_interfaces",
    "default_interface",
    "vrrp_min_garp",
];

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

const KNOWN_SCOPES: &[&str] = &["global", "site", "link", "host", "nowhere"];
/// VIP options keepalived accepts that do not change how xvrrpd adds the address.
const VIP_FLAGS: &[&str] = &[
    "no_track",
    "home",
    "nodad",
    "noprefixroute",
    "autojoin",
    "mngtmpaddr",
];
const VIP_VALUE_OPTIONS: &[&str] = &["preferred_lft", "track_group"];

/// keepalived's limit on a weight's magnitude (254 would jump 1 straight to 255).
const MAX_WEIGHT: i64 = 253;

pub(crate) struct Builder<'a> {
    pub d: &'a mut Diagnostics,
    pub host: &'a dyn Host,
    /// Whether vrrp_version was written in global_defs (for the IPv6 note).
    pub global_version_set: bool,
    /// Tracker references per instance, resolved by `validate` once all trackers are read.
    pub pending_refs: Vec<PendingRefs>,
    /// Where each sync group member was written, for "does not exist" reports.
    pub sync_group_lines: BTreeMap<String, Vec<(String, Location)>>,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(d: &'a mut Diagnostics, host: &'a dyn Host) -> Self {
        Self {
            d,
            host,
            global_version_set: false,
            pending_refs: Vec::new(),
            sync_group_lines: BTreeMap::new(),
        }
    }

    pub(crate) fn build(&mut self, nodes: &[Node]) -> Config {
        let mut config = Config::default();
        // Instances take global defaults wherever global_defs is written.
        for node in nodes.iter().filter(|n| n.name() == "global_defs") {
            self.global_defs(node, &mut config.global);
        }
        for node in nodes {
            match node.name() {
                "global_defs" => {}
                "vrrp_instance" => {
                    if let Some(instance) = self.instance(node, &config.global) {
                        if config.instance(&instance.name).is_some() {
                            // Its tracker references were queued; they belong to no one.
                            self.pending_refs.pop();
                            self.d.error(
                                node.at(),
                                "vrrp_instance",
                                format!("vrrp instance {} already defined", instance.name),
                            );
                        } else {
                            config.instances.push(instance);
                        }
                    }
                }
                "vrrp_script" => {
                    if let Some(script) = self.script(node) {
                        self.insert_unique(&mut config.scripts, script.name.clone(), script, node);
                    }
                }
                "vrrp_track_process" => {
                    if let Some(process) = self.track_process(node) {
                        let name = process.name.clone();
                        self.insert_unique(&mut config.track_processes, name, process, node);
                    }
                }
                "vrrp_track_file" | "track_file" => {
                    if let Some(file) = self.track_file(node) {
                        self.insert_unique(&mut config.track_files, file.name.clone(), file, node);
                    }
                }
                "vrrp_sync_group" => {
                    if let Some(group) = self.sync_group(node) {
                        config.sync_groups.push(group);
                    }
                }
                name if OTHER_SECTIONS.contains(&name) => {
                    self.d.lint(
                        node.at(),
                        name,
                        "not part of VRRP; xvrrpd skips this section",
                    );
                }
                name => self.unknown(node, name),
            }
        }
        config
    }

    fn insert_unique<T>(
        &mut self,
        map: &mut BTreeMap<String, T>,
        name: String,
        value: T,
        node: &Node,
    ) {
        match map.entry(name) {
            std::collections::btree_map::Entry::Occupied(first) => self.d.warn(
                node.at(),
                node.name(),
                format!("{} already defined; keeping the first", first.key()),
            ),
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(value);
            }
        }
    }

    fn unknown(&mut self, node: &Node, name: &str) {
        let skipped = if node.block.is_some() {
            " (block skipped)"
        } else {
            ""
        };
        self.d
            .warn(node.at(), name, format!("unknown keyword{skipped}"));
    }

    fn not_implemented(&mut self, node: &Node) {
        self.d.lint(
            node.at(),
            node.name(),
            "keepalived keyword not implemented by xvrrpd; ignored",
        );
    }

    // ---- argument helpers -------------------------------------------------------------

    /// The argument at `index`; reports keepalived's "missing a parameter" when absent.
    fn arg<'n>(&mut self, node: &'n Node, index: usize) -> Option<&'n Token> {
        let arg = node.arg(index);
        if arg.is_none() {
            self.d.error(node.at(), node.name(), "missing a parameter");
        }
        arg
    }

    /// The block of a keyword that needs one; reports its absence.
    fn block<'n>(&mut self, node: &'n Node) -> &'n [Node] {
        if node.block.is_none() {
            self.d
                .warn(node.at(), node.name(), "expects a { ... } block");
        }
        node.children()
    }

    fn int(&mut self, node: &Node, token: &Token, min: i64, max: i64) -> Option<i64> {
        match token.text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(n) => {
                self.d
                    .warn(&token.at, node.name(), format!("{n} outside {min}..{max}"));
                None
            }
            Err(_) => {
                self.d.warn(
                    &token.at,
                    node.name(),
                    format!("invalid number '{}'", token.text),
                );
                None
            }
        }
    }

    fn int_arg(&mut self, node: &Node, min: i64, max: i64) -> Option<i64> {
        let token = self.arg(node, 0)?;
        self.int(node, token, min, max)
    }

    /// Seconds, fractions allowed, within `min..=max`.
    fn secs_arg(&mut self, node: &Node, min: f64, max: f64) -> Option<f64> {
        let token = self.arg(node, 0)?;
        match token.text.parse::<f64>() {
            Ok(v) if v.is_finite() && (min..=max).contains(&v) => Some(v),
            Ok(_) => {
                self.d.warn(
                    &token.at,
                    node.name(),
                    format!("{} outside {min}..{max}", token.text),
                );
                None
            }
            Err(_) => {
                self.d.warn(
                    &token.at,
                    node.name(),
                    format!("invalid number '{}'", token.text),
                );
                None
            }
        }
    }

    fn ip(&mut self, node: &Node, token: &Token, what: &str) -> Option<IpAddr> {
        let parsed = token.text.parse::<IpAddr>().ok();
        if parsed.is_none() {
            self.d.warn(
                &token.at,
                node.name(),
                format!("invalid {what} '{}'; skipped", token.text),
            );
        }
        parsed
    }

    /// The rest of the line as one command (`notify_master "/x a b"` or `notify_master /x a b`).
    fn command(&mut self, node: &Node) -> Option<String> {
        self.arg(node, 0)?;
        let words: Vec<&str> = node.args.iter().map(|t| t.text.as_str()).collect();
        Some(words.join(" "))
    }

    fn name_arg(&mut self, node: &Node) -> Option<String> {
        match node.arg(0) {
            Some(name) => Some(name.text.clone()),
            None => {
                self.d
                    .error(node.at(), node.name(), "must have a name; block skipped");
                None
            }
        }
    }

    /// `weight N [reverse]` starting at argument `from`; returns (weight, reverse).
    fn weight_args(&mut self, node: &Node, from: usize) -> (Option<i32>, bool) {
        let mut weight = None;
        let mut reverse = false;
        let mut i = from;
        while let Some(token) = node.arg(i) {
            match token.text.as_str() {
                "weight" => {
                    i += 1;
                    match node.arg(i) {
                        Some(value) => weight = self.weight(node, value),
                        None => self.d.warn(&token.at, node.name(), "weight needs a value"),
                    }
                }
                "reverse" => reverse = true,
                "noreverse" => reverse = false,
                other => self.d.warn(
                    &token.at,
                    node.name(),
                    format!("unexpected '{other}' (expected weight N [reverse])"),
                ),
            }
            i += 1;
        }
        (weight, reverse)
    }

    fn weight(&mut self, node: &Node, token: &Token) -> Option<i32> {
        let value = self.int(node, token, -254, 254)?;
        if value.abs() > MAX_WEIGHT {
            let clamped = value.signum() * MAX_WEIGHT;
            self.d.warn(
                &token.at,
                node.name(),
                format!("weight {value} must be within -253..253; using {clamped}"),
            );
            return i32::try_from(clamped).ok();
        }
        i32::try_from(value).ok()
    }

    fn check_interface(&mut self, at: &Location, keyword: &str, name: &str) -> InterfaceKind {
        let kind = self.host.interface(name);
        if kind == InterfaceKind::Missing {
            self.d.warn(
                at,
                keyword,
                format!("interface {name} does not exist on this host"),
            );
        }
        kind
    }

    // ---- global_defs ------------------------------------------------------------------

    fn global_defs(&mut self, node: &Node, g: &mut GlobalDefs) {
        for kw in self.block(node) {
            match kw.name() {
                "router_id" => {
                    if let Some(id) = self.arg(kw, 0) {
                        g.router_id = Some(id.text.clone());
                    }
                }
                "vrrp_mcast_group4" => {
                    if let Some(IpAddr::V4(a)) =
                        self.arg(kw, 0).and_then(|t| self.ip(kw, t, "address"))
                    {
                        g.vrrp_mcast_group4 = a;
                    }
                }
                "vrrp_mcast_group6" => {
                    if let Some(IpAddr::V6(a)) =
                        self.arg(kw, 0).and_then(|t| self.ip(kw, t, "address"))
                    {
                        g.vrrp_mcast_group6 = a;
                    }
                }
                "vrrp_version" => {
                    if let Some(v) = self.int_arg(kw, 2, 3) {
                        g.vrrp_version = if v == 3 { Version::V3 } else { Version::V2 };
                        self.global_version_set = true;
                    }
                }
                "vrrp_garp_master_delay" => {
                    if let Some(v) = self.int_arg(kw, 0, i64::from(u32::MAX)) {
                        g.vrrp_garp_master_delay = Duration::from_secs(v.unsigned_abs());
                    }
                }
                "vrrp_garp_master_repeat" => {
                    if let Some(v) = self.int_arg(kw, 0, i64::from(u32::MAX)) {
                        g.vrrp_garp_master_repeat = v as u32;
                    }
                }
                "vrrp_garp_master_refresh" => {
                    if let Some(v) = self.int_arg(kw, 0, i64::from(u32::MAX)) {
                        g.vrrp_garp_master_refresh =
                            (v > 0).then(|| Duration::from_secs(v.unsigned_abs()));
                    }
                }
                "vrrp_garp_master_refresh_repeat" => {
                    if let Some(v) = self.int_arg(kw, 1, i64::from(u32::MAX)) {
                        g.vrrp_garp_master_refresh_repeat = v as u32;
                    }
                }
                "vrrp_garp_interval" => {
                    if let Some(v) = self.secs_arg(kw, 0.0, 1.0) {
                        g.vrrp_garp_interval = Duration::from_secs_f64(v);
                    }
                }
                "vrrp_gna_interval" => {
                    if let Some(v) = self.secs_arg(kw, 0.0, 1.0) {
                        g.vrrp_gna_interval = Duration::from_secs_f64(v);
                    }
                }
                "vrrp_check_unicast_src" => g.vrrp_check_unicast_src = true,
                "script_user" => {
                    if let Some(user) = self.arg(kw, 0) {
                        g.script_user = Some(ScriptUser {
                            user: user.text.clone(),
                            group: kw.arg(1).map(|t| t.text.clone()),
                        });
                    }
                }
                "enable_script_security" => g.enable_script_security = true,
                "notify_fifo" | "vrrp_notify_fifo" => {
                    if let Some(path) = self.arg(kw, 0) {
                        g.notify_fifo = Some(PathBuf::from(&path.text));
                    }
                }
                "notify_fifo_script" | "vrrp_notify_fifo_script" => {
                    g.notify_fifo_script = self.command(kw);
                }
                name if UNIMPLEMENTED_VRRP_GLOBALS.contains(&name) => self.not_implemented(kw),
                name if OTHER_GLOBAL_KEYWORDS.contains(&name) => {}
                name => self.unknown(kw, name),
            }
        }
    }

    // ---- vrrp_instance ----------------------------------------------------------------

    fn instance(&mut self, node: &Node, global: &GlobalDefs) -> Option<Instance> {
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
    fn vip(&mut self, entry: &Node) -> Option<VirtualIp> {
        let text = &entry.keyword.text;
        let (addr_text, len_text) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text.as_str(), None),
        };
        let Ok(address) = addr_text.parse::<IpAddr>() else {
            self.d.warn(
                entry.at(),
                "virtual_ipaddress",
                format!("invalid IP address '{text}'; skipped"),
            );
            return None;
        };
        let max = host_prefix_len(Family::of(&address));
        let prefix_len = match len_text.map(str::parse::<u8>) {
            None => max,
            Some(Ok(len)) if len <= max => len,
            Some(_) => {
                self.d.warn(
                    entry.at(),
                    "virtual_ipaddress",
                    format!("invalid prefix length in '{text}'; using /{max}"),
                );
                max
            }
        };
        let mut vip = VirtualIp {
            address,
            prefix_len,
            broadcast: None,
            dev: None,
            label: None,
            scope: None,
        };
        let mut args = entry.args.iter();
        while let Some(option) = args.next() {
            let name = option.text.as_str();
            if VIP_FLAGS.contains(&name) {
                continue;
            }
            let is_value_option = matches!(name, "brd" | "broadcast" | "dev" | "label" | "scope")
                || VIP_VALUE_OPTIONS.contains(&name);
            if !is_value_option {
                self.d.warn(
                    &option.at,
                    "virtual_ipaddress",
                    format!("unknown option '{name}' for {text}; ignored"),
                );
                continue;
            }
            let Some(value) = args.next() else {
                self.d.warn(
                    &option.at,
                    "virtual_ipaddress",
                    format!("'{name}' needs a value"),
                );
                continue;
            };
            match name {
                "brd" | "broadcast" => match value.text.parse::<IpAddr>() {
                    Ok(b) => vip.broadcast = Some(b),
                    // `brd +`/`brd -` ask the kernel to compute or omit it.
                    Err(_) if matches!(value.text.as_str(), "+" | "-") => {}
                    Err(_) => self.d.warn(
                        &value.at,
                        "virtual_ipaddress",
                        format!("invalid broadcast address '{}'", value.text),
                    ),
                },
                "dev" => {
                    self.check_interface(&value.at, "virtual_ipaddress", &value.text);
                    vip.dev = Some(value.text.clone());
                }
                "label" => vip.label = Some(value.text.clone()),
                "scope" => {
                    let known = KNOWN_SCOPES.contains(&value.text.as_str())
                        || value.text.parse::<u8>().is_ok();
                    if known {
                        vip.scope = Some(value.text.clone());
                    } else {
                        self.d.warn(
                            &value.at,
                            "virtual_ipaddress",
                            format!("invalid scope '{}' for {text}; ignored", value.text),
                        );
                    }
                }
                _ => {}
            }
        }
        Some(vip)
    }

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

    // ---- trackers ---------------------------------------------------------------------

    fn script(&mut self, node: &Node) -> Option<VrrpScript> {
        let name = self.name_arg(node)?;
        let mut script = None;
        let mut interval = None;
        let mut timeout = None;
        let mut weight = 0;
        let mut reverse = false;
        let mut rise = 1;
        let mut fall = 1;
        let mut user = None;
        let mut init_fail = false;
        for kw in self.block(node) {
            match kw.name() {
                "script" => script = self.command(kw),
                "interval" => {
                    if let Some(v) = self.secs_arg(kw, 0.0, f64::from(u32::MAX)) {
                        if v == 0.0 {
                            self.d
                                .warn(kw.at(), "interval", "must be greater than 0; using 1");
                        }
                        interval = Some(Duration::from_secs_f64(if v == 0.0 { 1.0 } else { v }));
                    }
                }
                "timeout" => {
                    if let Some(v) = self.secs_arg(kw, 0.0, f64::from(u32::MAX)) {
                        timeout = Some(Duration::from_secs_f64(v));
                    }
                }
                "weight" => {
                    if let Some(token) = self.arg(kw, 0) {
                        if let Some(w) = self.script_weight(kw, token) {
                            weight = w;
                        }
                        reverse = kw.arg(1).is_some_and(|t| t.text == "reverse");
                    }
                }
                "rise" => {
                    if let Some(v) = self.int_arg(kw, 1, i64::from(i32::MAX)) {
                        rise = v as u32;
                    }
                }
                "fall" => {
                    if let Some(v) = self.int_arg(kw, 1, i64::from(i32::MAX)) {
                        fall = v as u32;
                    }
                }
                "user" => {
                    if let Some(u) = self.arg(kw, 0) {
                        user = Some(ScriptUser {
                            user: u.text.clone(),
                            group: kw.arg(1).map(|t| t.text.clone()),
                        });
                    }
                }
                "init_fail" => init_fail = true,
                name => self.unknown(kw, name),
            }
        }
        let Some(script) = script else {
            self.d.warn(
                node.at(),
                "vrrp_script",
                format!("{name}: no script given; removed"),
            );
            return None;
        };
        let interval = interval.unwrap_or(Duration::from_secs(1));
        Some(VrrpScript {
            name,
            defined_at: node.at().clone(),
            script,
            interval,
            timeout: timeout.filter(|t| !t.is_zero()).unwrap_or(interval),
            weight,
            reverse,
            rise,
            fall,
            user,
            init_fail,
        })
    }

    /// A script's own weight: keepalived refuses anything beyond ±253.
    fn script_weight(&mut self, kw: &Node, token: &Token) -> Option<i32> {
        self.int(kw, token, -MAX_WEIGHT, MAX_WEIGHT)
            .map(|w| w as i32)
    }

    fn track_process(&mut self, node: &Node) -> Option<TrackProcess> {
        let name = self.name_arg(node)?;
        let mut process = None;
        let mut parameters = Vec::new();
        let mut weight = 0;
        let mut reverse = false;
        let mut quorum = 1;
        let mut quorum_max = None;
        let mut delay = Duration::ZERO;
        let mut param_match = None;
        let mut full_command = false;
        for kw in self.block(node) {
            match kw.name() {
                "process" => {
                    if let Some(p) = self.arg(kw, 0) {
                        process = Some(p.text.clone());
                        parameters = kw.args[1..].iter().map(|t| t.text.clone()).collect();
                    }
                }
                "weight" => {
                    if let Some(token) = self.arg(kw, 0) {
                        if let Some(w) = self.script_weight(kw, token) {
                            weight = w;
                        }
                        reverse = kw.arg(1).is_some_and(|t| t.text == "reverse");
                    }
                }
                "quorum" => {
                    if let Some(v) = self.int_arg(kw, 1, 65535) {
                        quorum = v as u32;
                    }
                }
                "quorum_max" => {
                    if let Some(v) = self.int_arg(kw, 0, 65535) {
                        quorum_max = Some(v as u32);
                    }
                }
                "delay" | "terminate_delay" | "fork_delay" => {
                    if let Some(v) = self.secs_arg(kw, 0.0, 3600.0) {
                        if kw.name() == "delay" {
                            delay = Duration::from_secs_f64(v);
                        }
                    }
                }
                "param_match" => param_match = kw.arg(0).map(|t| t.text.clone()),
                "full_command" => full_command = true,
                name => self.unknown(kw, name),
            }
        }
        let Some(process) = process else {
            self.d.warn(
                node.at(),
                "vrrp_track_process",
                format!("{name}: no process given; removed"),
            );
            return None;
        };
        if quorum_max.is_some_and(|max| max < quorum) {
            self.d.warn(
                node.at(),
                "quorum_max",
                format!("{name}: quorum_max below quorum"),
            );
        }
        Some(TrackProcess {
            name,
            defined_at: node.at().clone(),
            process,
            parameters,
            weight,
            reverse,
            quorum,
            quorum_max,
            delay,
            param_match,
            full_command,
        })
    }

    fn track_file(&mut self, node: &Node) -> Option<TrackFile> {
        let name = self.name_arg(node)?;
        let mut file = None;
        let mut weight = 1;
        let mut reverse = false;
        let mut init_file = None;
        for kw in self.block(node) {
            match kw.name() {
                "file" => file = self.arg(kw, 0).map(|t| PathBuf::from(&t.text)),
                "weight" => {
                    if let Some(token) = self.arg(kw, 0) {
                        if let Some(w) = self.int(kw, token, -254, 254) {
                            weight = w as i32;
                        }
                        reverse = kw.arg(1).is_some_and(|t| t.text == "reverse");
                    }
                }
                "init_file" => {
                    let mut init = InitFile {
                        value: 0,
                        overwrite: false,
                    };
                    for arg in &kw.args {
                        if arg.text == "overwrite" {
                            init.overwrite = true;
                        } else if let Some(v) = self.int(kw, arg, -254, 254) {
                            init.value = v;
                        }
                    }
                    init_file = Some(init);
                }
                name => self.unknown(kw, name),
            }
        }
        let Some(file) = file else {
            self.d.warn(
                node.at(),
                node.name(),
                format!("{name}: no file given; removed"),
            );
            return None;
        };
        Some(TrackFile {
            name,
            defined_at: node.at().clone(),
            file,
            weight,
            reverse,
            init_file,
        })
    }

    fn sync_group(&mut self, node: &Node) -> Option<SyncGroup> {
        let name = self.name_arg(node)?;
        let mut members = Vec::new();
        let mut notify = Notify::default();
        let mut tracking_weight = false;
        for kw in self.block(node) {
            match kw.name() {
                "sync_group_tracking_weight" => tracking_weight = true,
                "group" => {
                    // Members may be spread over lines or share them.
                    for entry in self.block(kw) {
                        for token in std::iter::once(&entry.keyword).chain(&entry.args) {
                            members.push((token.text.clone(), token.at.clone()));
                        }
                    }
                }
                "notify" => notify.notify = self.command(kw),
                "notify_master" => notify.master = self.command(kw),
                "notify_backup" => notify.backup = self.command(kw),
                "notify_fault" => notify.fault = self.command(kw),
                "notify_stop" => notify.stop = self.command(kw),
                "smtp_alert" | "global_tracking" | "notify_priority_changes" => {
                    self.not_implemented(kw)
                }
                "track_interface" | "track_script" | "track_process" | "track_file" => self.d.lint(
                    kw.at(),
                    kw.name(),
                    "tracking in a sync group is not implemented by xvrrpd; track in the instances",
                ),
                other => self.unknown(kw, other),
            }
        }
        self.sync_group_lines.insert(name.clone(), members.clone());
        Some(SyncGroup {
            name,
            defined_at: node.at().clone(),
            members: members.into_iter().map(|(m, _)| m).collect(),
            notify,
            tracking_weight,
        })
    }
}

/// Tracker references of one instance, resolved once every tracker has been read.
pub(crate) struct PendingRefs {
    pub instance: String,
    pub script: Vec<(TrackRef, Location)>,
    pub process: Vec<(TrackRef, Location)>,
    pub file: Vec<(TrackRef, Location)>,
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
