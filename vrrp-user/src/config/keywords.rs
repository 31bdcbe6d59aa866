//! Every VRRP-side keyword of keepalived.conf(5) (2.2.7), and what xvrrpd does with it:
//! applied with keepalived's semantics (and the test that shows it), or reported by
//! `xvrrpd check` as not supported at its file:line. There is no third kind: nothing is
//! accepted and then ignored.
//!
//! The sections are the man page's: the top level, `global_defs` (including the keywords
//! of keepalived's other processes, which xvrrpd reports), static addresses, routes and
//! rules, track groups, linkbeat and up/down delays, `vrrp_script`, `vrrp_track_process`,
//! `track_file`, `vrrp_sync_group`, `garp_group`, `vrrp_instance` and the options of its
//! address, route, rule and unicast peer lines, and the parameter syntax (`$NAME`,
//! `~SEQ`, ...). Tests in this module walk every row (a configuration using the keyword
//! must be applied or get a "not supported" finding at its line), check that each named
//! test exists, check that the man page has no VRRP keyword missing here, and keep
//! packaging/man/xvrrpd.conf.5's keyword list generated from this table.

/// Where a keyword is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Block {
    Top,
    GlobalDefs,
    Instance,
    Authentication,
    Script,
    TrackProcess,
    TrackFile,
    SyncGroup,
    /// An option of a `virtual_ipaddress` (or excluded, or static) address line.
    AddressOption,
    /// An option of a `virtual_routes`/`static_routes` line.
    RouteOption,
    /// An option of a `virtual_rules`/`static_rules` line.
    RuleOption,
    /// An option of a `unicast_peer` line.
    PeerOption,
    /// Parameter syntax: definitions, sequences, includes.
    Syntax,
}

impl Block {
    pub fn title(self) -> &'static str {
        match self {
            Block::Top => "top level",
            Block::GlobalDefs => "global_defs",
            Block::Instance => "vrrp_instance",
            Block::Authentication => "authentication (in vrrp_instance)",
            Block::Script => "vrrp_script",
            Block::TrackProcess => "vrrp_track_process",
            Block::TrackFile => "track_file",
            Block::SyncGroup => "vrrp_sync_group",
            Block::AddressOption => {
                "address lines (virtual_ipaddress, virtual_ipaddress_excluded, static_ipaddress)"
            }
            Block::RouteOption => "route lines (virtual_routes, static_routes)",
            Block::RuleOption => "rule lines (virtual_rules, static_rules)",
            Block::PeerOption => "unicast_peer lines",
            Block::Syntax => "parameter syntax",
        }
    }
}

/// The test that shows a keyword at work, and where it looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// On the wire (adverts, GARPs, traffic), in network namespaces.
    Wire(&'static str),
    /// In the kernel (addresses, routes, rules, firewall, sysctls, XDP, scheduling).
    Kernel(&'static str),
    /// In the pure engine, controller or simulation, or the parser.
    Unit(&'static str),
}

impl Shown {
    pub fn test(self) -> &'static str {
        match self {
            Shown::Wire(t) | Shown::Kernel(t) | Shown::Unit(t) => t,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// xvrrpd does what keepalived does.
    Applied(Shown),
    /// `xvrrpd check` says at the keyword's line that xvrrpd does not do it (an error
    /// where running without it would lose availability compared with keepalived).
    NotSupported,
    /// Listed in keepalived.conf(5) for this block, but keepalived 2.2.7 does not know
    /// it there: reported as an unknown keyword at its line (exit 5, as keepalived -t).
    UnknownToKeepalived,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyword {
    pub block: Block,
    pub name: &'static str,
    /// A use of it, as written in its block (its first line holds the keyword).
    pub example: &'static str,
    pub support: Support,
}

const fn k(block: Block, name: &'static str, example: &'static str, support: Support) -> Keyword {
    Keyword {
        block,
        name,
        example,
        support,
    }
}

const fn wire(test: &'static str) -> Support {
    Support::Applied(Shown::Wire(test))
}

const fn kernel(test: &'static str) -> Support {
    Support::Applied(Shown::Kernel(test))
}

const fn unit(test: &'static str) -> Support {
    Support::Applied(Shown::Unit(test))
}

const NO: Support = Support::NotSupported;

use Block::*;

// Tests named below, by where they live: tests/tests/*.rs (namespaces, wire and
// kernel), vrrp-user/src (engine, network, config) and vrrp-user/tests (simulation,
// config).
const INTEROP: &str = "keepalived_master_xvrrpd_backup_v2_pass";
const SURFACE: &str = "excluded_vips_routes_and_rules_follow_the_master_both_ways";
const GLOBALS: &str = "global_advert_and_garp_settings_on_the_wire_with_keepalived";
const OPTIONS: &str = "instance_options_in_the_kernel_and_on_the_wire";
const ROUTES: &str = "routes_and_rules_in_the_kernel_and_their_deletions_recognised";
const STATICS: &str = "static_addresses_routes_and_rules_are_kept_as_keepalived_keeps_them";
const NOTIFY: &str = "notify_scripts_get_keepalived_s_exact_arguments";
const SYNC: &str = "sync_group_fails_over_together_with_keepalived_as_peer";
const SYNC_TRACKERS: &str = "sync_group_trackers_apply_to_every_member_with_their_weight";
const SCRIPT: &str = "check_script_moves_the_vip_with_keepalived_as_peer";
const PROCESS: &str = "killing_a_tracked_process_moves_the_vip_to_keepalived";
const FILE: &str = "track_file_value_moves_the_vip_to_keepalived";
const REALTIME: &str = "the_advert_path_is_real_time_and_scripts_are_not";
const RT_KEYWORDS: &str = "defaults_and_keepalived_keywords";
const DELETED: &str = "a_deleted_vip_or_route_on_xvrrpd_is_handled_as_keepalived_handles_it";

pub const KEYWORDS: &[Keyword] = &[
    // ---- top level ----
    k(Top, "global_defs", "global_defs {\n router_id r1\n}", wire("v3_ipv4_and_ipv6_interop")),
    k(Top, "vrrp_instance", "vrrp_instance VI_9 {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n 192.0.2.9\n }\n}", wire(INTEROP)),
    k(Top, "vrrp_script", "vrrp_script s9 {\n script /bin/true\n}", wire(SCRIPT)),
    k(Top, "vrrp_track_process", "vrrp_track_process p9 {\n process sshd\n}", wire(PROCESS)),
    k(Top, "track_file", "track_file f9 {\n file /tmp/xvrrpd-f9\n}", wire(FILE)),
    k(Top, "vrrp_track_file", "vrrp_track_file f8 {\n file /tmp/xvrrpd-f8\n}", wire(FILE)),
    k(Top, "vrrp_sync_group", "vrrp_sync_group G9 {\n group {\n VI_1\n VI_2\n }\n}", wire(SYNC)),
    k(Top, "static_ipaddress", "static_ipaddress {\n 198.51.100.20/32 dev eth0\n}", kernel(STATICS)),
    k(Top, "static_routes", "static_routes {\n 198.51.100.128/25 via 192.0.2.254 dev eth0\n}", kernel(STATICS)),
    k(Top, "static_rules", "static_rules {\n from 198.51.100.20 table 100 priority 200\n}", kernel(STATICS)),
    k(Top, "track_group", "track_group TG {\n group {\n VI_1\n }\n}", NO),
    k(Top, "garp_group", "garp_group {\n garp_interval 1\n interface eth0\n}", NO),
    k(Top, "linkbeat_interfaces", "linkbeat_interfaces {\n eth0\n}", NO),
    k(Top, "interface_up_down_delays", "interface_up_down_delays {\n eth0 1\n}", NO),
    k(Top, "linkbeat_use_polling", "linkbeat_use_polling", NO),
    k(Top, "net_namespace", "net_namespace blue", NO),
    k(Top, "net_namespace_ipvs", "net_namespace_ipvs blue", NO),
    k(Top, "namespace_with_ipsets", "namespace_with_ipsets", NO),
    k(Top, "instance", "instance i1", NO),
    k(Top, "use_pid_dir", "use_pid_dir", NO),
    k(Top, "child_wait_time", "child_wait_time 5", NO),
    // ---- global_defs ----
    k(GlobalDefs, "router_id", "router_id r1", unit("global_keywords")),
    k(GlobalDefs, "vrrp_mcast_group4", "vrrp_mcast_group4 224.0.0.19", wire(GLOBALS)),
    k(GlobalDefs, "vrrp_mcast_group6", "vrrp_mcast_group6 ff02::13", unit("multicast_groups_global_and_per_instance")),
    k(GlobalDefs, "vrrp_version", "vrrp_version 3", wire(GLOBALS)),
    k(GlobalDefs, "vrrp_garp_master_delay", "vrrp_garp_master_delay 2", wire(GLOBALS)),
    k(GlobalDefs, "vrrp_garp_master_repeat", "vrrp_garp_master_repeat 2", wire(GLOBALS)),
    k(GlobalDefs, "vrrp_garp_master_refresh", "vrrp_garp_master_refresh 60", unit("garp_refresh_is_periodic_and_delay_zero_disables_second_burst")),
    k(GlobalDefs, "vrrp_garp_master_refresh_repeat", "vrrp_garp_master_refresh_repeat 2", unit("garp_refresh_is_periodic_and_delay_zero_disables_second_burst")),
    k(GlobalDefs, "vrrp_garp_interval", "vrrp_garp_interval 0.2", wire(GLOBALS)),
    k(GlobalDefs, "vrrp_gna_interval", "vrrp_gna_interval 0.2", unit("paced_burst_on_the_wire")),
    k(GlobalDefs, "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_delay 2", unit("master_lower_priority_with_lower_prio_delay")),
    k(GlobalDefs, "vrrp_garp_lower_prio_repeat", "vrrp_garp_lower_prio_repeat 2", unit("master_lower_priority_with_lower_prio_delay")),
    k(GlobalDefs, "vrrp_down_timer_adverts", "vrrp_down_timer_adverts 5", unit("down_timer_adverts_lengthens_the_master_down_interval")),
    k(GlobalDefs, "vrrp_lower_prio_no_advert", "vrrp_lower_prio_no_advert", unit("lower_prio_no_advert_keeps_the_master_quiet")),
    k(GlobalDefs, "vrrp_higher_prio_send_advert", "vrrp_higher_prio_send_advert", unit("higher_prio_send_advert_answers_before_yielding")),
    k(GlobalDefs, "vrrp_check_unicast_src", "vrrp_check_unicast_src", kernel("unicast_adverts_must_be_for_us_and_from_a_listed_peer")),
    k(GlobalDefs, "vrrp_strict", "vrrp_strict", unit("strict_mode_checks")),
    k(GlobalDefs, "vrrp_startup_delay", "vrrp_startup_delay 3", wire(GLOBALS)),
    k(GlobalDefs, "nftables", "nftables keepalived", kernel("drop_set_follows_the_vips_and_the_table_goes_at_stop")),
    k(GlobalDefs, "nftables_priority", "nftables_priority -1", kernel("drop_set_follows_the_vips_and_the_table_goes_at_stop")),
    k(GlobalDefs, "dynamic_interfaces", "dynamic_interfaces", wire("dynamic_interfaces_waits_in_fault_for_a_missing_interface")),
    k(GlobalDefs, "script_user", "script_user root", unit("script_security_skips_insecure_scripts")),
    k(GlobalDefs, "enable_script_security", "enable_script_security", unit("script_security_skips_insecure_scripts")),
    k(GlobalDefs, "notify_fifo", "notify_fifo /run/xvrrpd-test.fifo", wire(NOTIFY)),
    k(GlobalDefs, "notify_fifo_script", "notify_fifo_script /bin/true", unit("fifo_script_reads_the_fifo_and_is_killed_at_shutdown")),
    k(GlobalDefs, "vrrp_notify_fifo", "vrrp_notify_fifo /run/xvrrpd-test.fifo", wire(NOTIFY)),
    k(GlobalDefs, "vrrp_notify_fifo_script", "vrrp_notify_fifo_script /bin/true", unit("fifo_script_reads_the_fifo_and_is_killed_at_shutdown")),
    k(GlobalDefs, "vrrp_rt_priority", "vrrp_rt_priority 50", kernel(REALTIME)),
    k(GlobalDefs, "vrrp_priority", "vrrp_priority -5", unit(RT_KEYWORDS)),
    k(GlobalDefs, "vrrp_no_swap", "vrrp_no_swap", unit(RT_KEYWORDS)),
    k(GlobalDefs, "vrrp_rlimit_rttime", "vrrp_rlimit_rttime 10000", unit(RT_KEYWORDS)),
    k(GlobalDefs, "vrrp_rlimit_rtime", "vrrp_rlimit_rtime 10000", unit(RT_KEYWORDS)),
    k(GlobalDefs, "default_interface", "default_interface eth0", NO),
    k(GlobalDefs, "vrrp_skip_check_adv_addr", "vrrp_skip_check_adv_addr", NO),
    k(GlobalDefs, "vrrp_min_garp", "vrrp_min_garp", NO),
    k(GlobalDefs, "vrrp_garp_extra_if", "vrrp_garp_extra_if 30", NO),
    k(GlobalDefs, "vrrp_vmac_garp_intvl", "vrrp_vmac_garp_intvl 30", NO),
    k(GlobalDefs, "vrrp_iptables", "vrrp_iptables", kernel("drop_set_follows_the_vips_and_the_table_goes_at_stop")),
    k(GlobalDefs, "vrrp_ipsets", "vrrp_ipsets", NO),
    k(GlobalDefs, "nftables_counters", "nftables_counters", NO),
    k(GlobalDefs, "nftables_ifindex", "nftables_ifindex", NO),
    k(GlobalDefs, "vrrp_notify_priority_changes", "vrrp_notify_priority_changes", NO),
    k(GlobalDefs, "max_auto_priority", "max_auto_priority", NO),
    k(GlobalDefs, "min_auto_priority_delay", "min_auto_priority_delay 1000", NO),
    k(GlobalDefs, "vrrp_cpu_affinity", "vrrp_cpu_affinity 1", NO),
    k(GlobalDefs, "fifo_write_vrrp_states_on_reload", "fifo_write_vrrp_states_on_reload", NO),
    k(GlobalDefs, "vrrp_rx_bufs_policy", "vrrp_rx_bufs_policy MTU", NO),
    k(GlobalDefs, "vrrp_rx_bufs_multiplier", "vrrp_rx_bufs_multiplier 3", NO),
    k(GlobalDefs, "log_unknown_vrids", "log_unknown_vrids", NO),
    k(GlobalDefs, "vmac_prefix", "vmac_prefix vrrp", NO),
    k(GlobalDefs, "vmac_addr_prefix", "vmac_addr_prefix vrrp", NO),
    k(GlobalDefs, "vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs 1048576", NO),
    k(GlobalDefs, "vrrp_netlink_cmd_rcv_bufs_force", "vrrp_netlink_cmd_rcv_bufs_force", NO),
    k(GlobalDefs, "vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs 1048576", NO),
    k(GlobalDefs, "vrrp_netlink_monitor_rcv_bufs_force", "vrrp_netlink_monitor_rcv_bufs_force", NO),
    k(GlobalDefs, "process_monitor_rcv_bufs", "process_monitor_rcv_bufs 1048576", NO),
    k(GlobalDefs, "process_monitor_rcv_bufs_force", "process_monitor_rcv_bufs_force", NO),
    k(GlobalDefs, "vrrp_process_name", "vrrp_process_name kv", NO),
    k(GlobalDefs, "process_names", "process_names", NO),
    k(GlobalDefs, "process_name", "process_name ka", NO),
    k(GlobalDefs, "startup_script", "startup_script /bin/true", NO),
    k(GlobalDefs, "startup_script_timeout", "startup_script_timeout 10", NO),
    k(GlobalDefs, "shutdown_script", "shutdown_script /bin/true", NO),
    k(GlobalDefs, "shutdown_script_timeout", "shutdown_script_timeout 10", NO),
    k(GlobalDefs, "umask", "umask 022", NO),
    k(GlobalDefs, "random_seed", "random_seed 1", NO),
    k(GlobalDefs, "reload_check_config", "reload_check_config", NO),
    k(GlobalDefs, "reload_time_file", "reload_time_file /tmp/xvrrpd-reload", NO),
    k(GlobalDefs, "reload_repeat", "reload_repeat", NO),
    k(GlobalDefs, "reload_file", "reload_file /tmp/xvrrpd-reload", NO),
    k(GlobalDefs, "include_check", "include_check", NO),
    k(GlobalDefs, "config_save_dir", "config_save_dir /tmp", NO),
    k(GlobalDefs, "tmp_config_directory", "tmp_config_directory /tmp", NO),
    k(GlobalDefs, "data_use_instance", "data_use_instance", NO),
    k(GlobalDefs, "enable_snmp_vrrp", "enable_snmp_vrrp", NO),
    k(GlobalDefs, "enable_snmp_keepalived", "enable_snmp_keepalived", NO),
    k(GlobalDefs, "enable_snmp_rfc", "enable_snmp_rfc", NO),
    k(GlobalDefs, "enable_snmp_rfcv2", "enable_snmp_rfcv2", NO),
    k(GlobalDefs, "enable_snmp_rfcv3", "enable_snmp_rfcv3", NO),
    k(GlobalDefs, "enable_traps", "enable_traps", NO),
    k(GlobalDefs, "snmp_socket", "snmp_socket udp:1.2.3.4:705", NO),
    k(GlobalDefs, "enable_dbus", "enable_dbus", NO),
    k(GlobalDefs, "dbus_service_name", "dbus_service_name org.keepalived", NO),
    k(GlobalDefs, "notification_email", "notification_email {\n ops@example.org\n}", NO),
    k(GlobalDefs, "notification_email_from", "notification_email_from ka@example.org", NO),
    k(GlobalDefs, "smtp_server", "smtp_server 192.0.2.25", NO),
    k(GlobalDefs, "smtp_helo_name", "smtp_helo_name lb1", NO),
    k(GlobalDefs, "smtp_connect_timeout", "smtp_connect_timeout 30", NO),
    k(GlobalDefs, "smtp_alert", "smtp_alert", NO),
    k(GlobalDefs, "smtp_alert_vrrp", "smtp_alert_vrrp", NO),
    k(GlobalDefs, "smtp_alert_checker", "smtp_alert_checker", NO),
    k(GlobalDefs, "no_email_faults", "no_email_faults", NO),
    // keepalived's checker and BFD processes: reported as not VRRP.
    k(GlobalDefs, "checker_process_name", "checker_process_name kc", NO),
    k(GlobalDefs, "bfd_process_name", "bfd_process_name kb", NO),
    k(GlobalDefs, "checker_log_all_failures", "checker_log_all_failures", NO),
    k(GlobalDefs, "lvs_sync_daemon", "lvs_sync_daemon eth0 VI_1", NO),
    k(GlobalDefs, "lvs_timeouts", "lvs_timeouts tcp 900", NO),
    k(GlobalDefs, "lvs_flush", "lvs_flush", NO),
    k(GlobalDefs, "lvs_flush_on_stop", "lvs_flush_on_stop", NO),
    k(GlobalDefs, "nftables_ipvs", "nftables_ipvs", NO),
    k(GlobalDefs, "nftables_ipvs_priority", "nftables_ipvs_priority 1", NO),
    k(GlobalDefs, "nftables_ipvs_start_fwmark", "nftables_ipvs_start_fwmark 1000", NO),
    k(GlobalDefs, "lvs_notify_fifo", "lvs_notify_fifo /run/l.fifo", NO),
    k(GlobalDefs, "lvs_notify_fifo_script", "lvs_notify_fifo_script /bin/true", NO),
    k(GlobalDefs, "checker_priority", "checker_priority 0", NO),
    k(GlobalDefs, "bfd_priority", "bfd_priority 0", NO),
    k(GlobalDefs, "checker_no_swap", "checker_no_swap", NO),
    k(GlobalDefs, "bfd_no_swap", "bfd_no_swap", NO),
    k(GlobalDefs, "checker_cpu_affinity", "checker_cpu_affinity 1", NO),
    k(GlobalDefs, "bfd_cpu_affinity", "bfd_cpu_affinity 1", NO),
    k(GlobalDefs, "checker_rt_priority", "checker_rt_priority 1", NO),
    k(GlobalDefs, "bfd_rt_priority", "bfd_rt_priority 1", NO),
    k(GlobalDefs, "checker_rlimit_rttime", "checker_rlimit_rttime 10000", NO),
    k(GlobalDefs, "bfd_rlimit_rttime", "bfd_rlimit_rttime 10000", NO),
    k(GlobalDefs, "enable_snmp_checker", "enable_snmp_checker", NO),
    k(GlobalDefs, "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs 1048576", NO),
    k(GlobalDefs, "lvs_netlink_cmd_rcv_bufs_force", "lvs_netlink_cmd_rcv_bufs_force", NO),
    k(GlobalDefs, "lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs 1048576", NO),
    k(GlobalDefs, "lvs_netlink_monitor_rcv_bufs_force", "lvs_netlink_monitor_rcv_bufs_force", NO),
    k(GlobalDefs, "rs_init_notifies", "rs_init_notifies", NO),
    k(GlobalDefs, "no_checker_emails", "no_checker_emails", NO),
    // ---- vrrp_script ----
    k(Script, "script", "script /bin/false", wire(SCRIPT)),
    k(Script, "interval", "interval 2", wire(SCRIPT)),
    k(Script, "timeout", "timeout 1", wire("hanging_script_is_killed_at_its_timeout_and_faults_the_instance")),
    k(Script, "weight", "weight -20", wire(SCRIPT)),
    k(Script, "rise", "rise 2", wire(SCRIPT)),
    k(Script, "fall", "fall 2", wire(SCRIPT)),
    k(Script, "user", "user root", unit("arguments_environment_and_user")),
    k(Script, "init_fail", "init_fail", unit("hysteresis_init_fail_and_ones")),
    // ---- vrrp_track_process ----
    k(TrackProcess, "process", "process nginx", wire(PROCESS)),
    k(TrackProcess, "weight", "weight 10", unit("items_take_the_reference_weight_and_ignore_weights_in_sync_groups")),
    k(TrackProcess, "quorum", "quorum 1", wire(PROCESS)),
    k(TrackProcess, "quorum_max", "quorum_max 4", unit("quorum_max_counts_live_processes")),
    k(TrackProcess, "fork_delay", "fork_delay 1", unit("fork_delay_postpones_a_gained_quorum")),
    k(TrackProcess, "terminate_delay", "terminate_delay 1", unit("terminate_delay_postpones_a_lost_quorum")),
    k(TrackProcess, "delay", "delay 1", unit("terminate_delay_postpones_a_lost_quorum")),
    k(TrackProcess, "full_command", "full_command", unit("matching_rules")),
    k(TrackProcess, "param_match", "param_match initial", unit("matching_rules")),
    // ---- track_file ----
    k(TrackFile, "file", "file /tmp/xvrrpd-f7", wire(FILE)),
    k(TrackFile, "weight", "weight -10", wire(FILE)),
    k(TrackFile, "init_file", "init_file 0 overwrite", unit("init_file_creates_and_overwrites")),
    // ---- vrrp_sync_group ----
    k(SyncGroup, "group", "group {\n VI_1\n VI_2\n }", wire(SYNC)),
    k(SyncGroup, "track_interface", "track_interface {\n eth1 weight -10\n }", unit(SYNC_TRACKERS)),
    k(SyncGroup, "track_script", "track_script {\n chk\n }", unit(SYNC_TRACKERS)),
    k(SyncGroup, "track_file", "track_file {\n tf\n }", unit(SYNC_TRACKERS)),
    k(SyncGroup, "track_process", "track_process {\n proc\n }", unit(SYNC_TRACKERS)),
    k(SyncGroup, "track_bfd", "track_bfd {\n b1\n }", NO),
    k(SyncGroup, "notify_master", "notify_master /bin/true", wire(NOTIFY)),
    k(SyncGroup, "notify_backup", "notify_backup /bin/true", wire(NOTIFY)),
    k(SyncGroup, "notify_fault", "notify_fault /bin/true", wire(NOTIFY)),
    k(SyncGroup, "notify_stop", "notify_stop /bin/true", wire(NOTIFY)),
    k(SyncGroup, "notify", "notify /bin/true", wire(NOTIFY)),
    k(SyncGroup, "notify_deleted", "notify_deleted", Support::UnknownToKeepalived),
    k(SyncGroup, "notify_priority_changes", "notify_priority_changes", NO),
    k(SyncGroup, "smtp_alert", "smtp_alert", NO),
    k(SyncGroup, "global_tracking", "global_tracking", unit("sync_group_ignores_tracker_weights_unless_told")),
    k(SyncGroup, "sync_group_tracking_weight", "sync_group_tracking_weight", unit("sync_group_ignores_tracker_weights_unless_told")),
    // ---- vrrp_instance ----
    k(Instance, "state", "state BACKUP", wire(INTEROP)),
    k(Instance, "interface", "interface eth1", wire(INTEROP)),
    k(Instance, "virtual_router_id", "virtual_router_id 52", wire(INTEROP)),
    k(Instance, "priority", "priority 150", wire(INTEROP)),
    k(Instance, "advert_int", "advert_int 2", wire(INTEROP)),
    k(Instance, "version", "version 3", wire("v3_ipv4_and_ipv6_interop")),
    k(Instance, "authentication", "authentication {\n auth_type PASS\n auth_pass secret\n }", wire(INTEROP)),
    k(Instance, "virtual_ipaddress", "virtual_ipaddress {\n 192.0.2.3/24\n }", wire(INTEROP)),
    k(Instance, "virtual_ipaddress_excluded", "virtual_ipaddress_excluded {\n 198.51.100.10\n }", kernel(SURFACE)),
    k(Instance, "virtual_routes", "virtual_routes {\n 198.51.100.0/24 via 192.0.2.254 dev eth0\n }", kernel(SURFACE)),
    k(Instance, "virtual_rules", "virtual_rules {\n from 192.0.2.1 table 100 priority 100\n }", kernel(SURFACE)),
    k(Instance, "unicast_src_ip", "unicast_src_ip 192.0.2.10", wire("unicast_pair_with_keepalived_fails_over_both_ways")),
    k(Instance, "unicast_peer", "unicast_peer {\n 192.0.2.11\n }", wire("unicast_pair_with_keepalived_fails_over_both_ways")),
    k(Instance, "mcast_src_ip", "mcast_src_ip 192.0.2.10", unit("unicast")),
    k(Instance, "mcast_dst_ip", "mcast_dst_ip 224.0.0.42", unit("multicast_groups_global_and_per_instance")),
    k(Instance, "check_unicast_src", "check_unicast_src", kernel("unicast_adverts_must_be_for_us_and_from_a_listed_peer")),
    k(Instance, "nopreempt", "nopreempt", wire("nopreempt_keeps_the_current_master")),
    k(Instance, "preempt", "preempt", unit("preemption")),
    k(Instance, "preempt_delay", "preempt_delay 10", unit("preempt_delay_holds_back_until_it_has_run_out")),
    k(Instance, "garp_master_delay", "garp_master_delay 2", unit("garp_master_delay_sends_a_second_burst")),
    k(Instance, "garp_master_repeat", "garp_master_repeat 2", unit("garp_master_delay_sends_a_second_burst")),
    k(Instance, "garp_master_refresh", "garp_master_refresh 60", unit("garp_refresh_is_periodic_and_delay_zero_disables_second_burst")),
    k(Instance, "garp_master_refresh_repeat", "garp_master_refresh_repeat 2", unit("garp_refresh_is_periodic_and_delay_zero_disables_second_burst")),
    k(Instance, "garp_lower_prio_delay", "garp_lower_prio_delay 2", unit("master_lower_priority_with_lower_prio_delay")),
    k(Instance, "garp_lower_prio_repeat", "garp_lower_prio_repeat 2", unit("master_lower_priority_with_lower_prio_delay")),
    k(Instance, "lower_prio_no_advert", "lower_prio_no_advert", unit("lower_prio_no_advert_keeps_the_master_quiet")),
    k(Instance, "higher_prio_send_advert", "higher_prio_send_advert", unit("higher_prio_send_advert_answers_before_yielding")),
    k(Instance, "down_timer_adverts", "down_timer_adverts 5", unit("down_timer_adverts_lengthens_the_master_down_interval")),
    k(Instance, "track_interface", "track_interface {\n eth1 weight -10\n }", wire("tracked_interface_down_moves_the_vip_to_keepalived")),
    k(Instance, "track_script", "track_script {\n chk\n }", wire(SCRIPT)),
    k(Instance, "track_process", "track_process {\n proc\n }", wire(PROCESS)),
    k(Instance, "track_file", "track_file {\n tf\n }", wire(FILE)),
    k(Instance, "track_bfd", "track_bfd {\n b1\n }", NO),
    k(Instance, "notify", "notify /bin/true", wire(NOTIFY)),
    k(Instance, "notify_master", "notify_master /bin/true", wire(NOTIFY)),
    k(Instance, "notify_backup", "notify_backup /bin/true", wire(NOTIFY)),
    k(Instance, "notify_fault", "notify_fault /bin/true", wire(NOTIFY)),
    k(Instance, "notify_stop", "notify_stop /bin/true", wire(NOTIFY)),
    k(Instance, "use_vmac", "use_vmac", wire("use_vmac_sends_from_the_virtual_mac")),
    k(Instance, "vmac_xmit_base", "vmac_xmit_base", wire(OPTIONS)),
    k(Instance, "promote_secondaries", "promote_secondaries", kernel(OPTIONS)),
    k(Instance, "dont_track_primary", "dont_track_primary", unit("dont_track_primary_ignores_the_link_state_but_not_its_loss")),
    k(Instance, "accept", "accept", unit("flags")),
    k(Instance, "no_accept", "no_accept", wire("no_accept_drops_traffic_to_the_vips_while_master_as_keepalived_does")),
    k(Instance, "strict_mode", "strict_mode on", unit("strict_mode_checks")),
    k(Instance, "v3_checksum_as_v2", "v3_checksum_as_v2", kernel("v3_checksum_as_v2_follows_the_instance_flag")),
    k(Instance, "use_vmac_addr", "use_vmac_addr", NO),
    k(Instance, "use_ipvlan", "use_ipvlan", NO),
    k(Instance, "vrf", "vrf blue", NO),
    k(Instance, "native_ipv6", "native_ipv6", NO),
    k(Instance, "track_src_ip", "track_src_ip", NO),
    k(Instance, "unicast_fault_no_peer", "unicast_fault_no_peer", NO),
    k(Instance, "unicast_ttl", "unicast_ttl 10", NO),
    k(Instance, "old_unicast_checksum", "old_unicast_checksum", NO),
    k(Instance, "garp_extra_if", "garp_extra_if 30", NO),
    k(Instance, "skip_check_adv_addr", "skip_check_adv_addr", NO),
    k(Instance, "debug", "debug 1", NO),
    k(Instance, "notify_master_rx_lower_pri", "notify_master_rx_lower_pri /bin/true", NO),
    k(Instance, "notify_priority_changes", "notify_priority_changes", NO),
    k(Instance, "notify_deleted", "notify_deleted", NO),
    k(Instance, "smtp_alert", "smtp_alert", NO),
    k(Instance, "kernel_rx_buf_size", "kernel_rx_buf_size 100000", NO),
    k(Instance, "linkbeat_use_polling", "linkbeat_use_polling", NO),
    // ---- authentication ----
    k(Authentication, "auth_type", "auth_type PASS\n auth_pass secret", wire(INTEROP)),
    k(Authentication, "auth_pass", "auth_pass secret\n auth_type PASS", wire(INTEROP)),
    // ---- address line options ----
    k(AddressOption, "dev", "192.0.2.4/24 dev eth1", kernel("add_and_del_vips_idempotently")),
    k(AddressOption, "brd", "192.0.2.4/24 brd 192.0.2.255", kernel("add_and_del_vips_idempotently")),
    k(AddressOption, "broadcast", "192.0.2.4/24 broadcast 192.0.2.255", kernel("add_and_del_vips_idempotently")),
    k(AddressOption, "label", "192.0.2.4/24 label eth0:4", kernel("add_and_del_vips_idempotently")),
    k(AddressOption, "scope", "192.0.2.4/24 scope link", kernel("add_and_del_vips_idempotently")),
    k(AddressOption, "no_track", "192.0.2.4/24 no_track", wire(DELETED)),
    k(AddressOption, "peer", "192.0.2.4/24 peer 192.0.2.5", NO),
    k(AddressOption, "home", "2001:db8::4/64 home", NO),
    k(AddressOption, "-nodad", "2001:db8::4/64 -nodad", NO),
    k(AddressOption, "mngtmpaddr", "2001:db8::4/64 mngtmpaddr", NO),
    k(AddressOption, "noprefixroute", "192.0.2.4/24 noprefixroute", NO),
    k(AddressOption, "autojoin", "224.0.1.4 autojoin", NO),
    k(AddressOption, "preferred_lft", "192.0.2.4/24 preferred_lft 0", NO),
    k(AddressOption, "use_vmac", "192.0.2.4/24 use_vmac", NO),
    // ---- route line options ----
    k(RouteOption, "via", "198.51.100.0/24 via 192.0.2.254 dev eth0", kernel(ROUTES)),
    k(RouteOption, "gw", "198.51.100.0/24 gw 192.0.2.254 dev eth0", kernel(ROUTES)),
    k(RouteOption, "src", "198.51.100.0/24 src 192.0.2.1 dev eth0", kernel(ROUTES)),
    k(RouteOption, "dev", "198.51.100.0/24 dev eth0", kernel(ROUTES)),
    k(RouteOption, "oif", "198.51.100.0/24 oif eth0", kernel(ROUTES)),
    k(RouteOption, "scope", "198.51.100.0/24 dev eth0 scope link", kernel(ROUTES)),
    k(RouteOption, "table", "198.51.100.0/24 dev eth0 table 100", kernel(ROUTES)),
    k(RouteOption, "metric", "198.51.100.0/24 dev eth0 metric 5", kernel(ROUTES)),
    k(RouteOption, "priority", "198.51.100.0/24 dev eth0 priority 5", kernel(ROUTES)),
    k(RouteOption, "preference", "198.51.100.0/24 dev eth0 preference 5", kernel(ROUTES)),
    k(RouteOption, "tos", "198.51.100.0/24 dev eth0 tos 0x10", kernel(ROUTES)),
    k(RouteOption, "dsfield", "198.51.100.0/24 dev eth0 dsfield 0x10", kernel(ROUTES)),
    k(RouteOption, "protocol", "198.51.100.0/24 dev eth0 protocol bird no_track", kernel(ROUTES)),
    k(RouteOption, "onlink", "198.51.100.0/24 via 192.0.2.254 dev eth0 onlink", kernel(ROUTES)),
    k(RouteOption, "blackhole", "blackhole 203.0.113.0/24 dev eth0", kernel(ROUTES)),
    k(RouteOption, "unreachable", "unreachable 203.0.113.0/24 dev eth0", kernel(ROUTES)),
    k(RouteOption, "prohibit", "prohibit 203.0.113.0/24 dev eth0", kernel(ROUTES)),
    k(RouteOption, "throw", "throw 203.0.113.0/24 dev eth0", kernel(ROUTES)),
    k(RouteOption, "from", "2001:db8:2::/64 from 2001:db8:3::/64 dev eth0", kernel(ROUTES)),
    k(RouteOption, "to", "to 198.51.100.0/24 dev eth0", kernel(ROUTES)),
    k(RouteOption, "no_track", "198.51.100.0/24 dev eth0 no_track", kernel(SURFACE)),
    k(RouteOption, "add", "198.51.100.0/24 dev eth0 add", kernel(ROUTES)),
    k(RouteOption, "prepend", "198.51.100.0/24 dev eth0 prepend", kernel(ROUTES)),
    k(RouteOption, "append", "198.51.100.0/24 dev eth0 append", kernel(ROUTES)),
    k(RouteOption, "inet6", "inet6 2001:db8:2::/64 dev eth0", kernel(ROUTES)),
    k(RouteOption, "nexthop", "198.51.100.0/24 dev eth0 nexthop via 192.0.2.254", NO),
    k(RouteOption, "encap", "198.51.100.0/24 dev eth0 encap mpls 100", NO),
    k(RouteOption, "mtu", "198.51.100.0/24 dev eth0 mtu 1400", NO),
    k(RouteOption, "realms", "198.51.100.0/24 dev eth0 realms 1", NO),
    k(RouteOption, "local", "local 203.0.113.0/24 dev eth0", NO),
    // ---- rule line options ----
    k(RuleOption, "from", "from 192.0.2.1 table 100 priority 100", kernel(ROUTES)),
    k(RuleOption, "to", "to 10.0.0.0/8 table 100 priority 100", kernel(ROUTES)),
    k(RuleOption, "table", "table 100 from 192.0.2.1 priority 100", kernel(ROUTES)),
    k(RuleOption, "lookup", "lookup 100 from 192.0.2.1 priority 100", kernel(ROUTES)),
    k(RuleOption, "priority", "priority 100 from 192.0.2.1 table 100", kernel(ROUTES)),
    k(RuleOption, "preference", "preference 100 from 192.0.2.1 table 100", kernel(ROUTES)),
    k(RuleOption, "order", "order 100 from 192.0.2.1 table 100", kernel(ROUTES)),
    k(RuleOption, "fwmark", "fwmark 0x10/0xff table 100 priority 100", kernel(ROUTES)),
    k(RuleOption, "iif", "iif eth0 table 100 priority 100", kernel(ROUTES)),
    k(RuleOption, "dev", "dev eth0 table 100 priority 100", kernel(ROUTES)),
    k(RuleOption, "oif", "oif eth0 table 100 priority 100", kernel(ROUTES)),
    k(RuleOption, "not", "not from 192.0.2.1 table 100 priority 100", kernel(ROUTES)),
    k(RuleOption, "tos", "tos 0x10 table 100 priority 100", kernel(ROUTES)),
    k(RuleOption, "goto", "goto 200 to 10.0.0.0/8 priority 100", kernel(ROUTES)),
    k(RuleOption, "nop", "nop to 10.0.0.0/8 priority 100", kernel(ROUTES)),
    k(RuleOption, "blackhole", "blackhole to 10.0.0.0/8 priority 100", kernel(ROUTES)),
    k(RuleOption, "unreachable", "unreachable to 10.0.0.0/8 priority 100", kernel(ROUTES)),
    k(RuleOption, "prohibit", "prohibit to 10.0.0.0/8 priority 100", kernel(ROUTES)),
    k(RuleOption, "protocol", "protocol 12 no_track table 100 priority 100", kernel(ROUTES)),
    k(RuleOption, "no_track", "no_track from 192.0.2.1 table 100 priority 100", kernel(ROUTES)),
    k(RuleOption, "suppress_prefixlength", "suppress_prefixlength 0 table 100 priority 100", NO),
    k(RuleOption, "realms", "realms 1 table 100 priority 100", NO),
    k(RuleOption, "uidrange", "uidrange 100-200 table 100 priority 100", NO),
    k(RuleOption, "l3mdev", "l3mdev priority 100", NO),
    k(RuleOption, "ipproto", "ipproto 17 table 100 priority 100", NO),
    k(RuleOption, "sport", "sport 10 table 100 priority 100", NO),
    k(RuleOption, "dport", "dport 10 table 100 priority 100", NO),
    k(RuleOption, "tunnel-id", "tunnel-id 5 table 100 priority 100", NO),
    // ---- unicast_peer line options ----
    k(PeerOption, "min_ttl", "192.0.2.11 min_ttl 250", NO),
    k(PeerOption, "max_ttl", "192.0.2.11 max_ttl 255", NO),
    // ---- parameter syntax ----
    k(Syntax, "include", "include /dev/null", unit("glob_includes_resolve_next_to_the_including_file_in_sorted_order")),
    k(Syntax, "$NAME", "$ADDR=192.0.2.1", unit("definitions_substitute_plain_and_braced")),
    k(Syntax, "@ID", "@no-such-host-id router_id x", unit("config_id_lines")),
    k(Syntax, "${_PWD}", "$P=${_PWD}", unit("predefined_definitions")),
    k(Syntax, "${_INSTANCE}", "$I=${_INSTANCE}", unit("predefined_definitions")),
    k(Syntax, "${_RANDOM}", "$R=${_RANDOM 1 2}", unit("predefined_definitions")),
    k(Syntax, "${_HASH}", "$H=${_HASH}", unit("predefined_definitions")),
    k(Syntax, "${_BANG}", "$B=${_BANG}", unit("predefined_definitions")),
    k(Syntax, "~SEQ", "~SEQ(N, 1, 2) include /dev/null", unit("sequence_blocks")),
    k(Syntax, "~LST", "~LST(N, a, b) include /dev/null", unit("list_blocks")),
];

/// Whether a finding tells the reader that xvrrpd does not do what the keyword asks.
#[cfg(test)]
pub(crate) fn says_unsupported(message: &str) -> bool {
    [
        "not implemented by xvrrpd",
        "not supported by xvrrpd",
        "not applied by xvrrpd",
        "sends no alert mail",
        "alert mail is not sent",
        "xvrrpd runs VRRP only",
        "not part of VRRP",
    ]
    .iter()
    .any(|p| message.contains(p))
}

/// The keywords applied in `block`.
pub fn applied_in(block: Block) -> impl Iterator<Item = &'static str> {
    KEYWORDS
        .iter()
        .filter(move |k| k.block == block && matches!(k.support, Support::Applied(_)))
        .map(|k| k.name)
}

/// packaging/man/xvrrpd.conf.5's keyword section, from the table.
pub fn man_section() -> String {
    let mut out = String::new();
    let mut blocks: Vec<Block> = KEYWORDS.iter().map(|k| k.block).collect();
    blocks.dedup();
    for block in blocks {
        out.push_str(&format!(".SS {}\n", block.title()));
        for (applied, title) in [
            (true, "Applied, as keepalived:"),
            (false, "Reported by xvrrpd check as not supported:"),
        ] {
            let names: Vec<&str> = KEYWORDS
                .iter()
                .filter(|k| k.block == block && matches!(k.support, Support::Applied(_)) == applied)
                .map(|k| k.name)
                .collect();
            if names.is_empty() {
                continue;
            }
            out.push_str(&format!(".TP\n{title}\n"));
            let escaped: Vec<String> = names
                .iter()
                .map(|n| format!("\\fB{}\\fR", n.replace('-', "\\-")))
                .collect();
            out.push_str(&escaped.join(", "));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::config::{load_str_with, AnyHost};

    const ORIGIN: &str = "/etc/keepalived/keywords.conf";

    const DEFINITIONS: &str = "vrrp_script chk {\n script /bin/true\n}\n\
        vrrp_track_process proc {\n process sshd\n}\n\
        track_file tf {\n file /tmp/xvrrpd-tf\n}\n";

    fn instance(name: &str, vrid: u8, body: &str) -> String {
        format!(
            "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n{body}\n virtual_ipaddress {{\n 192.0.2.{vrid}/24\n }}\n}}\n"
        )
    }

    /// A configuration using `kw`, and the line its keyword is on.
    fn config_for(kw: &Keyword) -> (String, u32) {
        let ex = kw.example;
        let (before, after): (String, String) = match kw.block {
            Top | Syntax => (DEFINITIONS.to_string(), instance("VI_1", 1, "")),
            GlobalDefs => ("global_defs {\n".into(), format!("}}\n{DEFINITIONS}{}", instance("VI_1", 1, ""))),
            Instance => (
                format!("{DEFINITIONS}vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 1\n"),
                " virtual_ipaddress {\n 192.0.2.1/24\n }\n}\n".into(),
            ),
            Authentication => (
                "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n authentication {\n".into(),
                " }\n virtual_ipaddress {\n 192.0.2.1/24\n }\n}\n".into(),
            ),
            Script => ("vrrp_script s2 {\n".into(), format!(" script /bin/true\n}}\n{}", instance("VI_1", 1, ""))),
            TrackProcess => ("vrrp_track_process p2 {\n".into(), format!(" process sshd\n}}\n{}", instance("VI_1", 1, ""))),
            TrackFile => ("track_file f2 {\n".into(), format!(" file /tmp/xvrrpd-f2\n}}\n{}", instance("VI_1", 1, ""))),
            SyncGroup => (
                format!("{DEFINITIONS}{}{}vrrp_sync_group G {{\n", instance("VI_1", 1, ""), instance("VI_2", 2, "")),
                if kw.name == "group" { "}\n".into() } else { " group {\n VI_1\n VI_2\n }\n}\n".into() },
            ),
            AddressOption => (
                "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1/24\n".into(),
                " }\n}\n".into(),
            ),
            RouteOption => (instance_prefix("virtual_routes"), " }\n}\n".into()),
            RuleOption => (instance_prefix("virtual_rules"), " }\n}\n".into()),
            PeerOption => (
                "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1/24\n }\n unicast_src_ip 192.0.2.10\n unicast_peer {\n".into(),
                " }\n}\n".into(),
            ),
        };
        let line = before.lines().count() as u32 + 1;
        (format!("{before}{ex}\n{after}"), line)
    }

    fn instance_prefix(block: &str) -> String {
        format!("vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {{\n 192.0.2.1/24\n }}\n {block} {{\n")
    }

    /// Every test function name in the workspace's sources.
    fn test_names() -> BTreeSet<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut names = BTreeSet::new();
        let mut pending = vec![
            root.join("vrrp-user/src"),
            root.join("vrrp-user/tests"),
            root.join("tests/tests"),
        ];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path: PathBuf = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for rest in text.split("fn ").skip(1) {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if rest[name.len()..].starts_with("()") {
                            names.insert(name);
                        }
                    }
                }
            }
        }
        names
    }

    #[test]
    fn every_keyword_is_applied_or_reported_at_its_line() {
        let tests = test_names();
        let mut problems = Vec::new();
        for kw in KEYWORDS {
            let (text, line) = config_for(kw);
            let loaded = load_str_with(&text, Path::new(ORIGIN), &AnyHost).unwrap();
            let at_line: Vec<&crate::config::Diagnostic> = loaded
                .diagnostics
                .iter()
                .filter(|d| d.line == line)
                .collect();
            let reported = at_line.iter().any(|d| says_unsupported(&d.message));
            match kw.support {
                Support::Applied(shown) => {
                    if reported {
                        problems.push(format!(
                            "{:?} {}: applied, but check says otherwise: {at_line:?}",
                            kw.block, kw.name
                        ));
                    }
                    if !tests.contains(shown.test()) {
                        problems.push(format!(
                            "{:?} {}: no test named {}",
                            kw.block,
                            kw.name,
                            shown.test()
                        ));
                    }
                }
                Support::UnknownToKeepalived => {
                    if !at_line.iter().any(|d| d.message == "unknown keyword") {
                        problems.push(format!(
                            "{:?} {}: not reported as unknown: {at_line:?}",
                            kw.block, kw.name
                        ));
                    }
                }
                Support::NotSupported => {
                    if !reported {
                        problems.push(format!(
                            "{:?} {}: not supported, but check says nothing of it at line {line}: {:?}\n{text}",
                            kw.block,
                            kw.name,
                            loaded.diagnostics
                        ));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_table_has_one_row_per_keyword_and_block() {
        let mut seen = BTreeSet::new();
        for kw in KEYWORDS {
            assert!(
                seen.insert((kw.block, kw.name)),
                "{:?} {} twice",
                kw.block,
                kw.name
            );
            assert!(
                kw.example
                    .contains(kw.name.trim_start_matches('$').trim_start_matches('@'))
                    || kw.block == Syntax,
                "{:?} {}: the example does not use it",
                kw.block,
                kw.name
            );
        }
    }

    /// keepalived.conf(5) of 2.2.7, rendered by zcat, when installed (it is, with
    /// keepalived, on every machine `cargo xtask setup` prepared).
    fn man_page() -> Option<String> {
        let out = std::process::Command::new("zcat")
            .arg("/usr/share/man/man5/keepalived.conf.5.gz")
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn every_vrrp_keyword_of_the_man_page_has_a_row() {
        let Some(page) = man_page() else {
            eprintln!("skipped: keepalived.conf(5) is not installed");
            return;
        };
        // The VRRP side: from GLOBAL CONFIGURATION to the end of the VRRP part, without
        // the BFD section.
        let mut section = String::new();
        let mut keep = false;
        for line in page.lines() {
            if let Some(title) = line.strip_prefix(".SH ") {
                keep = !matches!(
                    title.trim_matches('"'),
                    "NAME"
                        | "Note:"
                        | "DESCRIPTION"
                        | "PARAMETER SYNTAX"
                        | "SCRIPTS"
                        | "Quoted strings"
                        | "CONFIGURATION PARSER"
                        | "TOP HIERACHY"
                        | "BFD CONFIGURATION"
                        | "LVS CONFIGURATION"
                        | "Virtual server group(s)"
                        | "Virtual server(s)"
                        | "ADVANCED CONFIGURATION"
                        | "Conditional configuration and configuration id"
                        | "Parameter substitution"
                        | "Pre-defined definitions"
                        | "Sequence blocks"
                        | "List blocks"
                        | "KERNEL SETTINGS"
                        | "AUTHORS"
                        | "SEE ALSO"
                );
                continue;
            }
            if keep {
                section.push_str(line);
                section.push('\n');
            }
        }
        let named: BTreeSet<&str> = KEYWORDS.iter().map(|k| k.name).collect();
        // Bold words that are not keywords: headings and emphasis.
        let not_keywords = [
            "GLOBAL",
            "BFD",
            "VRRPD",
            "LVS",
            "Global",
            "Static",
            "NOT",
            "NOTE",
            "Note",
            "Important",
            "VRRP",
            // Inside garp_group, which is reported as a whole.
            "garp_interval",
            "gna_interval",
            "interfaces",
            // A value of vrrp_garp_extra_if.
            "all",
        ];
        let mut missing = BTreeSet::new();
        for bold in section.split("\\fB").skip(1) {
            let word: String = bold
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if word.len() > 1
                && !named.contains(word.as_str())
                && !not_keywords.contains(&word.as_str())
            {
                missing.insert(word);
            }
        }
        assert!(
            missing.is_empty(),
            "keywords of keepalived.conf(5) without a row: {missing:?}"
        );
    }

    #[test]
    fn the_man_page_lists_the_table() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/man/xvrrpd.conf.5");
        let page = std::fs::read_to_string(&path).unwrap();
        let (begin, end) = (".\\\" BEGIN KEYWORD TABLE\n", ".\\\" END KEYWORD TABLE\n");
        let (head, rest) = page.split_once(begin).expect("begin marker");
        let (_, tail) = rest.split_once(end).expect("end marker");
        let current = format!("{head}{begin}{}{end}{tail}", man_section());
        if std::env::var_os("XVRRPD_UPDATE_MAN").is_some() {
            std::fs::write(&path, &current).unwrap();
        }
        assert!(
            page == current,
            "packaging/man/xvrrpd.conf.5 is not generated from the keyword table: run \
             XVRRPD_UPDATE_MAN=1 cargo test -p vrrp-user --lib the_man_page_lists_the_table"
        );
    }
}
