//! `global_defs`: the defaults instances inherit and the daemon-wide settings, with
//! keepalived 2.2.7's keyword list (as Debian builds it) and checks.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use super::number::MICROS;
use super::{true_false, Builder, NotifyOwner};
use crate::config::model::*;
use crate::config::syntax::Node;

/// Alert mail keywords: keepalived sends mail on state changes; xvrrpd does not.
const SMTP_KEYWORDS: &[&str] = &[
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_helo_name",
    "smtp_connect_timeout",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "no_email_faults",
];

/// VRRP behaviour keepalived has and xvrrpd does not apply (yet): reported, not silent.
const UNAPPLIED_VRRP_GLOBALS: &[&str] = &[
    "vrrp_skip_check_adv_addr",
    "vrrp_min_garp",
    "vrrp_garp_extra_if",
    "vrrp_vmac_garp_intvl",
    "disable_local_igmp",
    "vrrp_cpu_affinity",
    "max_auto_priority",
    "min_auto_priority_delay",
    "nftables_ifindex",
    "nftables_counters",
    "vrrp_notify_priority_changes",
    "fifo_write_vrrp_states_on_reload",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "log_unknown_vrids",
    "vmac_prefix",
    "vmac_addr_prefix",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "vrrp_process_name",
    "process_names",
    "process_name",
    "startup_script",
    "startup_script_timeout",
    "shutdown_script",
    "shutdown_script_timeout",
    "umask",
    "random_seed",
    "reload_check_config",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "include_check",
    "config_save_dir",
    "tmp_config_directory",
    "data_use_instance",
    "enable_snmp_vrrp",
    "enable_snmp_keepalived",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_traps",
    "snmp_socket",
    "enable_dbus",
    "dbus_service_name",
];

/// global_defs keywords of keepalived's checker and BFD processes: xvrrpd runs VRRP only.
const NON_VRRP_GLOBALS: &[&str] = &[
    "checker_process_name",
    "lvs_process_name",
    "bfd_process_name",
    "checker_log_all_failures",
    "lvs_timeouts",
    "lvs_flush",
    "lvs_flush_on_stop",
    "lvs_flush_onstop",
    "lvs_sync_daemon",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "checker_priority",
    "checker_no_swap",
    "checker_rt_priority",
    "checker_cpu_affinity",
    "checker_rlimit_rttime",
    "checker_rlimit_rtime",
    "bfd_priority",
    "bfd_no_swap",
    "bfd_rt_priority",
    "bfd_cpu_affinity",
    "bfd_rlimit_rttime",
    "bfd_rlimit_rtime",
    "enable_snmp_checker",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "rs_init_notifies",
    "no_checker_emails",
];

impl Builder<'_> {
    pub(super) fn global_defs(&mut self, node: &Node, g: &mut GlobalDefs) {
        self.block_keywords(node, |b, kw| b.global_keyword(kw, g));
    }

    fn global_keyword(&mut self, kw: &Node, g: &mut GlobalDefs) -> bool {
        match kw.name() {
            "router_id" => match kw.arg(0) {
                Some(id) => g.router_id = Some(id.text.clone()),
                None => self
                    .d
                    .warn(kw.at(), "router_id", "router_id name missing; ignored"),
            },
            "vrrp_mcast_group4" => {
                if let Some(token) = self.arg(kw, 0) {
                    match self.sockaddr(token) {
                        Some(IpAddr::V4(a)) if a.is_multicast() => g.vrrp_mcast_group4 = a,
                        Some(IpAddr::V4(a)) => self.d.warn(
                            kw.at(),
                            kw.name(),
                            format!("{a} is not multicast; ignored"),
                        ),
                        Some(IpAddr::V6(a)) => {
                            self.d
                                .warn(kw.at(), kw.name(), format!("{a} is not IPv4; ignored"))
                        }
                        None => self.d.warn(
                            kw.at(),
                            kw.name(),
                            format!("cannot parse '{}'; ignored", token.text),
                        ),
                    }
                }
            }
            "vrrp_mcast_group6" => {
                if let Some(token) = self.arg(kw, 0) {
                    match self.sockaddr(token) {
                        // keepalived wants a link-local multicast group (ff02::/16).
                        Some(IpAddr::V6(a)) if a.segments()[0] & 0xff0f == 0xff02 => {
                            g.vrrp_mcast_group6 = a
                        }
                        Some(a) => self.d.warn(
                            kw.at(),
                            kw.name(),
                            format!("{a} is not an IPv6 link-local multicast group; ignored"),
                        ),
                        None => self.d.warn(
                            kw.at(),
                            kw.name(),
                            format!("cannot parse '{}'; ignored", token.text),
                        ),
                    }
                }
            }
            "vrrp_version" => {
                if let Some(v) = self.int_arg(kw, 2, 3) {
                    g.vrrp_version = if v == 3 { Version::V3 } else { Version::V2 };
                    self.global_version_set = true;
                }
            }
            "vrrp_garp_master_delay" => {
                if let Some(v) = self.unsigned_arg(kw, 0, u64::from(u32::MAX) / MICROS) {
                    g.vrrp_garp_master_delay = Duration::from_secs(v);
                }
            }
            "vrrp_garp_master_repeat" => {
                if let Some(v) = self.unsigned_arg(kw, 0, u64::from(u32::MAX)) {
                    g.vrrp_garp_master_repeat = self.at_least_one(kw, v);
                }
            }
            "vrrp_garp_master_refresh" => {
                if let Some(v) = self.unsigned_arg(kw, 0, u64::from(u32::MAX)) {
                    g.vrrp_garp_master_refresh = (v > 0).then(|| Duration::from_secs(v));
                }
            }
            "vrrp_garp_master_refresh_repeat" => {
                if let Some(v) = self.unsigned_arg(kw, 0, u64::from(u32::MAX)) {
                    g.vrrp_garp_master_refresh_repeat = self.at_least_one(kw, v);
                }
            }
            "vrrp_garp_interval" => {
                if let Some(v) = self.garp_interval(kw) {
                    g.vrrp_garp_interval = v;
                }
            }
            "vrrp_gna_interval" => {
                if let Some(v) = self.garp_interval(kw) {
                    g.vrrp_gna_interval = v;
                }
            }
            "vrrp_check_unicast_src" => g.vrrp_check_unicast_src = true,
            "vrrp_garp_lower_prio_delay" => {
                if let Some(v) = self.unsigned_arg(kw, 0, u64::from(u32::MAX) / MICROS) {
                    g.vrrp_garp_lower_prio_delay = Some(Duration::from_secs(v));
                }
            }
            "vrrp_garp_lower_prio_repeat" => {
                if let Some(v) = self.unsigned_arg(kw, 0, u64::from(u32::MAX)) {
                    g.vrrp_garp_lower_prio_repeat = Some(v as u32);
                }
            }
            "vrrp_down_timer_adverts" => {
                if let Some(v) = self.unsigned_arg(kw, 1, 100) {
                    g.vrrp_down_timer_adverts = v as u32;
                }
            }
            "vrrp_lower_prio_no_advert" | "vrrp_higher_prio_send_advert" => {
                let value = match kw.arg(0) {
                    None => Some(true),
                    Some(word) => {
                        let v = true_false(&word.text);
                        if v.is_none() {
                            self.d.warn(
                                kw.at(),
                                kw.name(),
                                format!("invalid value for {} specified", kw.name()),
                            );
                        }
                        v
                    }
                };
                if let Some(v) = value {
                    if kw.name() == "vrrp_lower_prio_no_advert" {
                        g.vrrp_lower_prio_no_advert = v;
                    } else {
                        g.vrrp_higher_prio_send_advert = v;
                    }
                }
            }
            "vrrp_strict" => g.vrrp_strict = true,
            "vrrp_startup_delay" => {
                if let Some(v) = self.secs_arg(kw, MICROS / 1000, u64::from(u32::MAX)) {
                    g.vrrp_startup_delay = Duration::from_secs_f64(v);
                }
            }
            "vrrp_iptables" => self.d.warn(
                kw.at(),
                kw.name(),
                "iptables not supported, using nftables instead (as keepalived 2.2.7 does): \
                 replace vrrp_iptables and vrrp_ipsets with nftables",
            ),
            "vrrp_ipsets" => self.d.warn(
                kw.at(),
                kw.name(),
                "ipsets are not supported by xvrrpd (keepalived 2.2.7 as Debian builds it does \
                 not know the keyword either); use nftables",
            ),
            "nftables" => {
                // keepalived: an optional table name, default `keepalived`.
                if let Some(name) = kw.arg(0) {
                    g.nftables_table = name.text.clone();
                }
            }
            "nftables_priority" => {
                if let Some(v) = self.int_arg(kw, i64::from(i32::MIN), i64::from(i32::MAX)) {
                    g.nftables_priority = v as i32;
                }
            }
            "script_user" => match kw.arg(0) {
                Some(user) => {
                    g.script_user = Some(ScriptUser {
                        user: user.text.clone(),
                        group: kw.arg(1).map(|t| t.text.clone()),
                    });
                    self.set_script_user(kw, user);
                }
                None => self
                    .d
                    .warn(kw.at(), "script_user", "no user name given; ignored"),
            },
            "enable_script_security" => {
                g.enable_script_security = true;
                self.script_security = true;
            }
            "vrrp_rt_priority" => {
                if let Some(v) = self.int_arg(kw, 0, 99) {
                    if v == 0 {
                        self.d.warn(
                            kw.at(),
                            kw.name(),
                            "0 turns xvrrpd's real-time advert thread off \
                             (keepalived would raise it to 1)",
                        );
                    }
                    g.vrrp_rt_priority = Some(v as u8);
                }
            }
            "vrrp_priority" => {
                if let Some(v) = self.int_arg(kw, -20, 19) {
                    g.vrrp_priority = Some(v as i8);
                }
            }
            "vrrp_no_swap" => g.vrrp_no_swap = true,
            "vrrp_rlimit_rttime" | "vrrp_rlimit_rtime" => {
                if let Some(v) = self.int_arg(kw, 1, i64::from(u32::MAX)) {
                    // keepalived halves it for the soft limit, which must not be 0.
                    g.vrrp_rlimit_rttime = Some((v as u32).max(2));
                }
            }
            "notify_fifo" | "vrrp_notify_fifo" => match kw.arg(0) {
                Some(path) if g.notify_fifo.is_none() => {
                    g.notify_fifo = Some(PathBuf::from(&path.text))
                }
                Some(path) => self.d.warn(
                    kw.at(),
                    kw.name(),
                    format!("notify_fifo already given; {} ignored", path.text),
                ),
                None => self.d.warn(kw.at(), kw.name(), "no fifo name given"),
            },
            "notify_fifo_script" | "vrrp_notify_fifo_script" => {
                if kw.arg(0).is_none() {
                    self.d.warn(kw.at(), kw.name(), "no script given");
                } else if g.notify_fifo_script.is_some() {
                    self.d.warn(kw.at(), kw.name(), "already given; ignored");
                } else {
                    g.notify_fifo_script = self.notify_command(kw, NotifyOwner::Fifo);
                }
            }
            "dynamic_interfaces" => {
                self.dynamic_interfaces = true;
                g.dynamic_interfaces = true;
                if let Some(option) = kw.arg(0) {
                    if option.text != "allow_if_changes" {
                        self.d.warn(
                            kw.at(),
                            kw.name(),
                            format!("unknown dynamic_interfaces option '{}'", option.text),
                        );
                    }
                }
            }
            "default_interface" => match kw.arg(0) {
                Some(name) => {
                    self.default_interface = Some(name.text.clone());
                    self.not_implemented(kw);
                }
                None => self.d.warn(
                    kw.at(),
                    kw.name(),
                    "default_interface requires an interface name",
                ),
            },
            "xvrrpd_attach" => {
                if let Some(token) = self.arg(kw, 0) {
                    match token.text.parse() {
                        Ok(mode) => g.xvrrpd_attach = Some(mode),
                        Err(e) => self.d.error(&token.at, kw.name(), e),
                    }
                }
                // keepalived does not know it: its -t exits 5 for this line.
                self.d.warn(
                    kw.at(),
                    kw.name(),
                    "xvrrpd extension that keepalived 2.2 does not know (keepalived -t reports \
                     an unknown keyword); in a file keepalived also reads, guard it with a \
                     config id: `@xvrrpd xvrrpd_attach ...`, and run xvrrpd with -i xvrrpd",
                );
            }
            name if SMTP_KEYWORDS.contains(&name) => self.smtp_keyword(kw),
            name if UNAPPLIED_VRRP_GLOBALS.contains(&name) => self.not_implemented(kw),
            name if NON_VRRP_GLOBALS.contains(&name) => self.d.lint(
                kw.at(),
                name,
                "setting of keepalived's checker or BFD process; xvrrpd runs VRRP only",
            ),
            _ => return false,
        }
        true
    }

    /// keepalived 2.2.7 takes 1 µs .. 4294.967295 s and rejects 0, although keepalived.conf(5)
    /// gives 0 as the default and its own sample configuration writes 0.
    fn garp_interval(&mut self, kw: &Node) -> Option<Duration> {
        let token = self.arg(kw, 0)?;
        if token
            .text
            .trim_start_matches('0')
            .trim_start_matches('.')
            .trim_start_matches('0')
            .is_empty()
        {
            self.d.warn(
                kw.at(),
                kw.name(),
                "0 is rejected by keepalived 2.2.7 (its minimum is 0.000001), although its man \
                 page documents 0 as the default and its sample configuration sets it; leave the \
                 keyword out for no pause. xvrrpd uses 0",
            );
            return Some(Duration::ZERO);
        }
        let micros = self.decimal_micros(kw.name(), token, 1, u64::from(u32::MAX))?;
        Some(Duration::from_micros(micros))
    }

    pub(super) fn at_least_one(&mut self, kw: &Node, value: u64) -> u32 {
        if value == 0 {
            self.d
                .warn(kw.at(), kw.name(), "must be greater than 0; using 1");
            return 1;
        }
        u32::try_from(value).unwrap_or(u32::MAX)
    }

    /// Alert mail: checked as keepalived checks it, and reported as not sent.
    fn smtp_keyword(&mut self, kw: &Node) {
        match kw.name() {
            // keepalived reads the block first, so it reports at the closing brace.
            "notification_email" if kw.children().is_empty() => {
                self.d
                    .warn(kw.end(), kw.name(), "empty notification_email block");
            }
            "notification_email_from" if kw.arg(0).is_none() => {
                self.d.warn(kw.at(), kw.name(), "address missing; ignored");
            }
            "smtp_server" => {
                if let Some(server) = self.arg(kw, 0) {
                    let port = kw
                        .arg(1)
                        .and_then(|p| p.text.parse::<u16>().ok())
                        .unwrap_or(25);
                    let resolves = server.text.parse::<IpAddr>().is_ok()
                        || (server.text.as_str(), port)
                            .to_socket_addrs()
                            .is_ok_and(|mut a| a.next().is_some());
                    if !resolves {
                        self.d.warn(
                            kw.at(),
                            kw.name(),
                            format!("invalid smtp server {}", server.text),
                        );
                    }
                }
            }
            "smtp_connect_timeout" => {
                if let Some(v) = self.unsigned_arg(kw, 0, u64::from(u32::MAX) / MICROS) {
                    self.at_least_one(kw, v);
                }
            }
            "smtp_alert" | "smtp_alert_vrrp" | "smtp_alert_checker" => {
                if let Some(value) = kw.arg(0) {
                    if true_false(&value.text).is_none() {
                        self.d.warn(
                            kw.at(),
                            kw.name(),
                            format!("invalid value '{}'", value.text),
                        );
                    }
                }
            }
            _ => {}
        }
        self.alert_mail_not_sent(kw);
    }

    /// Said once in full, then briefly for each further alert mail keyword.
    pub(super) fn alert_mail_not_sent(&mut self, kw: &Node) {
        let message = match &self.first_alert_mail_keyword {
            None => {
                self.first_alert_mail_keyword = Some(kw.at().clone());
                "xvrrpd sends no alert mail: keepalived's SMTP alerts are not implemented (use \
                 notify scripts to send mail)"
                    .to_string()
            }
            Some(first) => format!("alert mail is not sent (see {first})"),
        };
        self.d.lint(kw.at(), kw.name(), message);
    }
}
