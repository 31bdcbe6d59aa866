//! `global_defs`: the defaults instances inherit and the daemon-wide settings.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Builder;
use crate::config::model::*;
use crate::config::syntax::Node;

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

impl Builder<'_> {
    pub(super) fn global_defs(&mut self, node: &Node, g: &mut GlobalDefs) {
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
}
