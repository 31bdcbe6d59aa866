//! The LVS part of keepalived.conf (`virtual_server`, `virtual_server_group`,
//! `real_server` and its checkers), which xvrrpd does not run: a light check that finds
//! what keepalived's checker process finds when it reads it (`check_parser.c`,
//! `check_data.c`), so that `xvrrpd check` predicts `keepalived -t` for the whole file.
//! Run `keepalived --check` (the LVS side alone) for the health checks themselves.

use std::net::IpAddr;

use super::number::MICROS;
use super::{true_false, Builder, RunIds};
use crate::config::diagnostic::{Location, Severity, Verdict};
use crate::config::host::ScriptFile;
use crate::config::lexer::Token;
use crate::config::syntax::Node;

const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos",
];
/// `persistence_timeout`'s maximum (31 days).
const LVS_MAX_TIMEOUT: u64 = 86_400 * 31;
const IPVS_WEIGHT_MAX: u64 = i32::MAX as u64;

/// A script of the LVS part, checked for keepalived's checker SECURITY VIOLATION.
#[derive(Debug, Clone)]
pub(super) struct CheckScript {
    pub command: String,
    pub run_as: RunIds,
    pub at: Location,
}

#[derive(Debug, Default)]
pub(super) struct Lvs {
    servers: Vec<VirtualServer>,
    /// virtual_server_group name → (has address ranges, has fwmarks)
    groups: Vec<(String, bool, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Service {
    Address { port: u16 },
    Fwmark,
    Group(String),
}

#[derive(Debug)]
struct VirtualServer {
    at: Location,
    /// IPv4 or not, when known from the service address (real servers must match).
    ipv4: Option<bool>,
    label: String,
    service: Service,
    protocol: Option<String>,
    scheduler: bool,
    forwarding: Option<String>,
    persistence: bool,
    ops: bool,
    ha_suspend: bool,
    quorum: u64,
    hysteresis: u64,
    weight: u64,
    real_servers: Vec<RealServer>,
    sorry_server: Option<(IpAddr, u16, Option<String>)>,
}

#[derive(Debug)]
struct RealServer {
    address: IpAddr,
    port: u16,
    weight: Option<u64>,
    forwarding: Option<String>,
}

/// An address and optional port as `inet_stosockaddr` takes them (port 0 means none).
fn service_address(address: &str, port: Option<&str>) -> Option<(IpAddr, u16)> {
    let end = address.find(['-', '/']).unwrap_or(address.len());
    let ip: IpAddr = address[..end].parse().ok()?;
    let port = match port {
        None => 0,
        Some(p) if p.bytes().all(|b| b == b'0') => 0,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0)?,
    };
    Some((ip, port))
}

impl Builder<'_> {
    pub(super) fn virtual_server(&mut self, node: &Node, lvs: &mut Lvs) {
        self.d.lint(
            node.at(),
            node.name(),
            "LVS is not run by xvrrpd (keepalived's checker runs it); checked only",
        );
        let Some(first) = self.arg(node, 0) else {
            return;
        };
        let second = node.arg(1);
        let mut ipv4 = None;
        let (service, label) = match first.text.as_str() {
            "group" => {
                let Some(name) = second else {
                    self.d.missing_parameter(node.at(), node.name());
                    return;
                };
                (
                    Service::Group(name.text.clone()),
                    format!("group {}", name.text),
                )
            }
            "fwmark" => {
                let mark =
                    second.and_then(|m| self.unsigned("virtual_server", m, 0, u64::from(u32::MAX)));
                let Some(mark) = mark else {
                    self.d
                        .warn(node.at(), "virtual_server", "invalid fwmark; block skipped");
                    return;
                };
                (Service::Fwmark, format!("FWM {mark}"))
            }
            address => match service_address(address, second.map(|t| t.text.as_str())) {
                Some((ip, port)) => {
                    ipv4 = Some(ip.is_ipv4());
                    (Service::Address { port }, format!("[{ip}]:{port}"))
                }
                None => {
                    self.d.warn(
                        node.at(),
                        "virtual_server",
                        format!(
                            "invalid virtual server address {address}{}; block skipped",
                            second
                                .map(|p| format!(" port {}", p.text))
                                .unwrap_or_default()
                        ),
                    );
                    return;
                }
            },
        };
        let mut vs = VirtualServer {
            at: node.at().clone(),
            ipv4,
            label,
            service,
            protocol: None,
            scheduler: false,
            forwarding: None,
            persistence: false,
            ops: false,
            ha_suspend: false,
            quorum: 1,
            hysteresis: 0,
            weight: 1,
            real_servers: Vec::new(),
            sorry_server: None,
        };
        self.block_keywords(node, |b, kw| b.virtual_server_keyword(kw, &mut vs));
        lvs.servers.push(vs);
    }

    fn virtual_server_keyword(&mut self, kw: &Node, vs: &mut VirtualServer) -> bool {
        match kw.name() {
            "ip_family" => {
                if let Some(f) = self.arg(kw, 0) {
                    if !matches!(f.text.as_str(), "inet" | "inet6") {
                        self.d.warn(
                            kw.at(),
                            "ip_family",
                            format!("unknown address family {}", f.text),
                        );
                    }
                }
            }
            "retry" => {
                self.unsigned_arg(kw, 1, u64::from(u32::MAX));
            }
            "delay_before_retry" | "warmup" => {
                self.secs_arg(kw, 0, u64::MAX / 2);
            }
            "connect_timeout" | "delay_loop" => {
                self.secs_arg(kw, 1, u64::from(u32::MAX));
            }
            "lb_algo" | "lvs_sched" => {
                if let Some(s) = self.arg(kw, 0) {
                    if SCHEDULERS.contains(&s.text.as_str()) {
                        vs.scheduler = true;
                    } else {
                        self.d.warn(
                            kw.at(),
                            kw.name(),
                            format!("invalid LVS scheduler '{}'; ignored", s.text),
                        );
                    }
                }
            }
            "hashed" | "ops" | "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback"
            | "mh-port" | "mh-fallback" => {
                if kw.name() == "ops" {
                    vs.ops = true;
                }
            }
            "lb_kind" | "lvs_method" => {
                vs.forwarding = self.forwarding(kw, "virtual").or(vs.forwarding.take())
            }
            "persistence_engine" => {
                self.arg(kw, 0);
            }
            "persistence_timeout" => match kw.arg(0) {
                None => vs.persistence = true,
                Some(t) => {
                    if self
                        .unsigned("persistence_timeout", t, 1, LVS_MAX_TIMEOUT)
                        .is_some()
                    {
                        vs.persistence = true;
                    }
                }
            },
            "persistence_granularity" => {
                if self.arg(kw, 0).is_some() {
                    vs.persistence = true;
                }
            }
            "protocol" => {
                if let Some(p) = self.arg(kw, 0) {
                    let upper = p.text.to_ascii_uppercase();
                    if matches!(upper.as_str(), "TCP" | "UDP" | "SCTP") {
                        vs.protocol = Some(upper);
                    } else {
                        self.d.warn(
                            kw.at(),
                            "protocol",
                            format!("unknown protocol {}; ignored", p.text),
                        );
                    }
                }
            }
            "ha_suspend" => vs.ha_suspend = true,
            "inhibit_on_failure" | "alpha" | "omega" | "virtualhost" | "snmp_name" => {}
            "smtp_alert" => self.lvs_smtp_alert(kw),
            "quorum_up" | "quorum_down" => self.check_notify(kw),
            "quorum" => {
                if let Some(t) = self.arg(kw, 0) {
                    vs.quorum = match self.unsigned("quorum", t, 1, u64::from(u32::MAX)) {
                        Some(q) => q,
                        None => {
                            self.d
                                .warn(kw.at(), "quorum", "quorum must be at least 1; using 1");
                            1
                        }
                    };
                }
            }
            "hysteresis" => {
                if let Some(h) = self.unsigned_arg(kw, 0, u64::from(u32::MAX)) {
                    vs.hysteresis = h;
                }
            }
            "weight" => {
                if let Some(w) = self.unsigned_arg(kw, 1, IPVS_WEIGHT_MAX) {
                    vs.weight = w;
                }
            }
            "sorry_server" => {
                if let Some(a) = self.arg(kw, 0) {
                    match service_address(&a.text, kw.arg(1).map(|t| t.text.as_str())) {
                        Some((ip, port)) => vs.sorry_server = Some((ip, port, None)),
                        None => self.d.warn(
                            kw.at(),
                            "sorry_server",
                            format!("invalid sorry server address {}; skipped", a.text),
                        ),
                    }
                }
            }
            "sorry_server_inhibit" => {
                if vs.sorry_server.is_none() {
                    self.d.warn(
                        kw.at(),
                        kw.name(),
                        "sorry_server_inhibit before or without sorry_server; ignored",
                    );
                }
            }
            "sorry_server_lvs_method" => {
                let method = self.forwarding(kw, "sorry");
                match &mut vs.sorry_server {
                    Some((_, _, fwd)) => *fwd = method.or(fwd.take()),
                    None => self.d.warn(
                        kw.at(),
                        kw.name(),
                        "sorry_server_lvs_method without sorry_server",
                    ),
                }
            }
            "real_server" => self.real_server(kw, vs),
            _ => return false,
        }
        true
    }

    /// `lb_kind NAT|DR|TUN [type ...]`.
    fn forwarding(&mut self, kw: &Node, what: &str) -> Option<String> {
        let method = self.arg(kw, 0)?;
        if matches!(method.text.as_str(), "NAT" | "DR" | "TUN") {
            Some(method.text.clone())
        } else {
            self.d.warn(
                kw.at(),
                kw.name(),
                format!(
                    "unknown routing method {} for the {what} server",
                    method.text
                ),
            );
            None
        }
    }

    fn real_server(&mut self, node: &Node, vs: &mut VirtualServer) {
        let Some(address) = self.arg(node, 0) else {
            return;
        };
        let port = node.arg(1).map(|t| t.text.as_str());
        let Some((ip, port)) = service_address(&address.text, port) else {
            self.d.warn(
                node.at(),
                "real_server",
                format!(
                    "invalid real server address/port {}/{}; skipped",
                    address.text,
                    port.unwrap_or("")
                ),
            );
            return;
        };
        let mut rs = RealServer {
            address: ip,
            port,
            weight: None,
            forwarding: None,
        };
        self.block_keywords(node, |b, kw| {
            match kw.name() {
                "weight" => {
                    if let Some(token) = b.arg(kw, 0) {
                        match b.unsigned("weight", token, 0, IPVS_WEIGHT_MAX) {
                            Some(w) => rs.weight = Some(w),
                            None => {
                                b.d.warn(kw.at(), "weight", "real server weight out of range")
                            }
                        }
                    }
                }
                "lvs_method" => rs.forwarding = b.forwarding(kw, "real").or(rs.forwarding.take()),
                "uthreshold" | "lthreshold" => {
                    b.unsigned_arg(kw, 0, u64::from(u32::MAX));
                }
                "inhibit_on_failure" | "alpha" => {
                    if let Some(v) = kw.arg(0) {
                        if true_false(&v.text).is_none() {
                            b.d.warn(
                                kw.at(),
                                kw.name(),
                                format!("invalid {} parameter {}", kw.name(), v.text),
                            );
                        }
                    }
                }
                "notify_up" | "notify_down" => b.check_notify(kw),
                "retry" => {
                    b.unsigned_arg(kw, 1, u64::from(u32::MAX));
                }
                "delay_before_retry" | "warmup" => {
                    b.secs_arg(kw, 0, u64::MAX / 2);
                }
                "connect_timeout" | "delay_loop" => {
                    b.secs_arg(kw, 1, u64::from(u32::MAX));
                }
                "smtp_alert" => b.lvs_smtp_alert(kw),
                "virtualhost" | "snmp_name" => {}
                checker if is_checker(checker) => b.checker(kw),
                _ => return false,
            }
            true
        });
        // keepalived's rs_end_handler: families must match unless tunnelled; a fwmark or
        // group service takes its family from its first real server.
        let tunnelled = rs.forwarding.as_deref() == Some("TUN");
        if !tunnelled && vs.ipv4.is_some_and(|v4| v4 != ip.is_ipv4()) {
            self.d.warn(
                node.end(),
                "real_server",
                format!("address family of virtual server and real server {ip} don't match; real server skipped"),
            );
            return;
        }
        if !tunnelled {
            vs.ipv4.get_or_insert(ip.is_ipv4());
        }
        vs.real_servers.push(rs);
    }

    fn checker(&mut self, node: &Node) {
        let name = node.name();
        let mut has_url = false;
        let mut misc_path: Option<(String, Location)> = None;
        let mut misc_user: Option<Option<RunIds>> = None;
        self.block_keywords(node, |b, kw| {
            let connection = !matches!(name, "MISC_CHECK" | "FILE_CHECK" | "BFD_CHECK");
            match kw.name() {
                "connect_ip" | "bindto" if connection => {
                    if let Some(a) = b.arg(kw, 0) {
                        if a.text.parse::<IpAddr>().is_err() {
                            b.d.warn(kw.at(), kw.name(), format!("invalid address {}", a.text));
                        }
                    }
                }
                "connect_port" | "bind_port" if connection => {
                    b.unsigned_arg(kw, 1, 65535);
                }
                "bind_if" if connection => {
                    b.arg(kw, 0);
                }
                "connect_timeout" if connection => {
                    b.secs_arg(kw, 1, u64::from(u32::MAX));
                }
                "fwmark" if connection => {
                    b.unsigned_arg(kw, 0, u64::from(u32::MAX));
                }
                "retry" if name != "FILE_CHECK" && name != "BFD_CHECK" => {
                    b.unsigned_arg(kw, 0, u64::from(u32::MAX));
                }
                "delay_before_retry" | "warmup" if name != "FILE_CHECK" && name != "BFD_CHECK" => {
                    b.secs_arg(kw, 0, u64::MAX / 2);
                }
                "delay_loop" if name != "FILE_CHECK" && name != "BFD_CHECK" => {
                    b.secs_arg(kw, 1, u64::MAX / 2);
                }
                "alpha" | "log_all_failures" if name != "FILE_CHECK" => {}
                "nb_get_retry" if matches!(name, "HTTP_GET" | "SSL_GET") => {
                    b.d.warn(kw.at(), kw.name(), "nb_get_retry is deprecated; use retry");
                    b.unsigned_arg(kw, 0, u64::from(u32::MAX));
                }
                "virtualhost" | "http_protocol" | "enable_sni" | "fast_recovery"
                    if matches!(name, "HTTP_GET" | "SSL_GET") => {}
                "url" if matches!(name, "HTTP_GET" | "SSL_GET") => {
                    has_url = true;
                    b.url(kw);
                }
                "misc_path" if name == "MISC_CHECK" => {
                    misc_path = kw.arg(0).map(|t| (t.text.clone(), kw.at().clone()));
                }
                "misc_timeout" if name == "MISC_CHECK" => {
                    b.unsigned_arg(kw, 0, u64::from(u32::MAX) / MICROS);
                }
                "misc_dynamic" if name == "MISC_CHECK" => {}
                "user" if name == "MISC_CHECK" => match kw.arg(0) {
                    None => {
                        b.d.warn(kw.at(), "user", "no user given for the misc checker script")
                    }
                    Some(u) => {
                        let ids = b.user_group(&u.text, kw.arg(1).map(|t| t.text.as_str()));
                        if ids.is_none() {
                            b.d.warn(
                                kw.at(),
                                "user",
                                format!(
                                    "user {} does not exist; misc checker script removed",
                                    u.text
                                ),
                            );
                        }
                        misc_user = Some(ids);
                    }
                },
                "helo_name" | "host" if name == "SMTP_CHECK" => {}
                "type" | "name" if name == "DNS_CHECK" => {
                    b.arg(kw, 0);
                }
                "payload" | "require_reply" | "min_reply_length" | "max_reply_length"
                    if name == "UDP_CHECK" => {}
                "track_file" | "weight" if name == "FILE_CHECK" => {}
                "name" | "alpha" if name == "BFD_CHECK" => {}
                _ => return false,
            }
            true
        });
        if matches!(name, "HTTP_GET" | "SSL_GET") && !has_url {
            self.d.warn(
                node.end(),
                name,
                "HTTP/SSL_GET checker has no urls; ignored",
            );
        }
        if name == "MISC_CHECK" {
            let Some((command, at)) = misc_path else {
                self.d.warn(
                    node.end(),
                    name,
                    "no script path given for MISC_CHECK; skipped",
                );
                return;
            };
            let run_as = match misc_user {
                Some(Some(ids)) => ids,
                Some(None) => return,
                None => match self.default_run_as(node.end(), name) {
                    Some(ids) => ids,
                    None => return,
                },
            };
            // keepalived takes the first word of misc_path as written, quoted or not.
            let command = crate::command::split_command(&command)
                .ok()
                .and_then(|argv| argv.into_iter().next())
                .unwrap_or(command);
            self.check_scripts.push(CheckScript {
                command,
                run_as,
                at,
            });
        }
    }

    fn url(&mut self, node: &Node) {
        let mut has_path = false;
        self.block_keywords(node, |b, kw| {
            match kw.name() {
                "path" => has_path = b.arg(kw, 0).is_some(),
                "digest" => {
                    if let Some(d) = b.arg(kw, 0) {
                        if d.text.len() != 32 || !d.text.bytes().all(|c| c.is_ascii_hexdigit()) {
                            b.d.warn(
                                kw.at(),
                                "digest",
                                format!("digest '{}' must be 32 hex digits", d.text),
                            );
                        }
                    }
                }
                "status_code" => {
                    for code in &kw.args {
                        let valid = code
                            .text
                            .split('-')
                            .all(|c| c.parse::<u16>().is_ok_and(|n| (100..=599).contains(&n)));
                        if !valid {
                            b.d.warn(
                                kw.at(),
                                "status_code",
                                format!("invalid HTTP status code '{}'", code.text),
                            );
                        }
                    }
                }
                "virtualhost" | "regex" | "regex_no_match" | "regex_options"
                | "regex_min_offset" | "regex_max_offset" | "regex_stack" => {}
                _ => return false,
            }
            true
        });
        if !has_path {
            self.d.warn(
                node.end(),
                "url",
                "HTTP/SSL_GET checker url has no path; ignored",
            );
        }
    }

    /// `notify_up`/`notify_down`/`quorum_up`/`quorum_down`: a script the checker runs.
    fn check_notify(&mut self, kw: &Node) {
        let Some(command) = kw.arg(0) else {
            return;
        };
        let run_as = match kw.arg(1) {
            Some(user) => match self.user_group(&user.text, kw.arg(2).map(|t| t.text.as_str())) {
                Some(ids) => ids,
                None => return,
            },
            None => match self.default_run_as(kw.at(), kw.name()) {
                Some(ids) => ids,
                None => return,
            },
        };
        let argv0 = crate::command::split_command(&command.text)
            .ok()
            .and_then(|argv| argv.into_iter().next())
            .unwrap_or_else(|| command.text.clone());
        self.check_scripts.push(CheckScript {
            command: argv0,
            run_as,
            at: kw.at().clone(),
        });
    }

    fn lvs_smtp_alert(&mut self, kw: &Node) {
        if let Some(v) = kw.arg(0) {
            if true_false(&v.text).is_none() {
                self.d.warn(
                    kw.at(),
                    "smtp_alert",
                    format!("invalid smtp_alert parameter {}", v.text),
                );
            }
        }
        self.alert_mail_not_sent(kw);
    }

    pub(super) fn virtual_server_group(&mut self, node: &Node, lvs: &mut Lvs) {
        self.d.lint(
            node.at(),
            node.name(),
            "LVS is not run by xvrrpd (keepalived's checker runs it); checked only",
        );
        let Some(name) = self.arg(node, 0) else {
            return;
        };
        let name = name.text.clone();
        let (mut addresses, mut fwmarks) = (false, false);
        for entry in node.children() {
            let words: Vec<&Token> = entry.words().collect();
            if words[0].text == "fwmark" {
                let mark = words
                    .get(1)
                    .and_then(|m| self.unsigned("fwmark", m, 0, u64::from(u32::MAX)));
                if mark.is_none() {
                    self.d.warn(
                        entry.at(),
                        "fwmark",
                        format!("({name}): invalid fwmark; ignored"),
                    );
                    continue;
                }
                if let Some(family) = words.get(2) {
                    if !matches!(family.text.as_str(), "inet" | "inet6") {
                        self.d.warn(
                            entry.at(),
                            "fwmark",
                            format!("({name}): unknown fwmark family {}; ignored", family.text),
                        );
                        continue;
                    }
                }
                fwmarks = true;
                continue;
            }
            let text = words[0].text.as_str();
            let port = words.get(1).map(|p| p.text.as_str());
            if service_address(text, port).is_none() {
                self.d.warn(
                    entry.at(),
                    "virtual_server_group",
                    format!("invalid virtual server group address {text}; skipped"),
                );
                continue;
            }
            if let Some((_, mask)) = text.split_once('/') {
                let max = if text.contains(':') { 128 } else { 32 };
                if !mask.parse::<u32>().is_ok_and(|m| m > 0 && m <= max) {
                    self.d.warn(
                        entry.at(),
                        "virtual_server_group",
                        format!("invalid netmask in {text}; skipped"),
                    );
                    continue;
                }
            }
            addresses = true;
        }
        if !addresses && !fwmarks {
            self.d.warn(
                node.end(),
                "virtual_server_group",
                format!("virtual server group {name} has no entries; removed"),
            );
            return;
        }
        lvs.groups.push((name, addresses, fwmarks));
    }

    /// keepalived's `validate_check_config` and checker script security: findings after
    /// reading (no file:line in keepalived's messages).
    pub(super) fn check_lvs(&mut self, lvs: &mut Lvs) {
        if lvs.servers.is_empty() {
            return;
        }
        for vs in &mut lvs.servers {
            let at = vs.at.clone();
            let label = vs.label.clone();
            let warn = |b: &mut Self, message: String| {
                b.d.warn_after(
                    &at,
                    "virtual_server",
                    format!("virtual server {label}: {message}"),
                )
            };
            if vs.real_servers.is_empty() {
                warn(self, "has no real servers; ignored".into());
                continue;
            }
            let group = match &vs.service {
                Service::Group(name) => lvs
                    .groups
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .map(|(_, a, f)| (*a, *f)),
                _ => None,
            };
            let fwmark_only = match &vs.service {
                Service::Fwmark => true,
                Service::Group(_) => group.is_some_and(|(a, f)| !a && f),
                Service::Address { .. } => false,
            };
            if vs.ha_suspend && (vs.service == Service::Fwmark || group.is_some_and(|(_, f)| f)) {
                warn(self, "cannot use ha_suspend with fwmarks; cleared".into());
            }
            let by_address = match &vs.service {
                Service::Address { .. } => true,
                Service::Group(_) => group.is_some_and(|(a, _)| a),
                Service::Fwmark => false,
            };
            if by_address {
                if vs.protocol.is_none() {
                    warn(self, "no protocol set; keepalived defaults to UDP".into());
                    vs.protocol = Some("UDP".into());
                }
                if vs.ops && vs.protocol.as_deref() != Some("UDP") {
                    warn(self, "one packet scheduling requires UDP; reset".into());
                }
                if let Service::Address { port: 0 } = vs.service {
                    if !vs.persistence {
                        warn(
                            self,
                            "zero port only valid for persistent services; setting persistence"
                                .into(),
                        );
                    }
                }
            }
            if vs.protocol.is_some() && fwmark_only {
                warn(
                    self,
                    "protocol given for a fwmark service is ignored".into(),
                );
            }
            if !vs.scheduler {
                warn(self, "no scheduler set; keepalived uses wlc".into());
            }
            let mut weight_sum = 0;
            let mut seen: Vec<(IpAddr, u16)> = Vec::new();
            let mut defaulted = false;
            for rs in &vs.real_servers {
                if seen.contains(&(rs.address, rs.port)) {
                    warn(
                        self,
                        format!(
                            "real server {}:{} is duplicated; second removed",
                            rs.address, rs.port
                        ),
                    );
                    continue;
                }
                seen.push((rs.address, rs.port));
                if rs.forwarding.is_none() && vs.forwarding.is_none() && !defaulted {
                    warn(self, "no forwarding method set; keepalived uses NAT".into());
                    defaulted = true;
                }
                weight_sum += rs.weight.unwrap_or(vs.weight);
            }
            if let Some((_, _, None)) = vs.sorry_server {
                if vs.forwarding.is_none() && !defaulted {
                    warn(self, "no forwarding method set; keepalived uses NAT".into());
                }
            }
            if vs.quorum > weight_sum {
                warn(
                    self,
                    format!(
                        "quorum {} exceeds the real servers' total weight {weight_sum}; reduced",
                        vs.quorum
                    ),
                );
                vs.quorum = weight_sum;
            }
            if vs.hysteresis >= vs.quorum {
                warn(
                    self,
                    format!(
                        "hysteresis {} >= quorum {}; reduced",
                        vs.hysteresis, vs.quorum
                    ),
                );
            }
            let forwarding = |rs: &RealServer| {
                rs.forwarding
                    .clone()
                    .or(vs.forwarding.clone())
                    .unwrap_or_else(|| "NAT".into())
            };
            match &vs.service {
                Service::Fwmark => {
                    for rs in vs
                        .real_servers
                        .iter()
                        .filter(|r| forwarding(r) != "NAT" && r.port != 0)
                    {
                        warn(
                            self,
                            format!(
                                "real server {} has a port; a fwmark service ignores it",
                                rs.address
                            ),
                        );
                    }
                }
                Service::Address { port } => {
                    for rs in vs
                        .real_servers
                        .iter()
                        .filter(|r| forwarding(r) != "NAT" && r.port != 0 && r.port != *port)
                    {
                        warn(
                            self,
                            format!(
                                "real server {}:{} port differs from the virtual server's; reset",
                                rs.address, rs.port
                            ),
                        );
                    }
                }
                Service::Group(_) => {}
            }
        }
        self.check_script_security();
    }

    /// keepalived's `check_check_script_security`: the checker process's SECURITY
    /// VIOLATION when it would run scripts without enable_script_security.
    fn check_script_security(&mut self) {
        let mut is_script = None;
        for script in &self.check_scripts {
            if let ScriptFile::Found { .. } =
                self.host
                    .script_file(&script.command, script.run_as.uid, script.run_as.gid)
            {
                is_script.get_or_insert(script.at.clone());
            } else {
                self.d.lint(
                    &script.at,
                    "misc_path",
                    format!(
                        "{} not found; keepalived's checker does not run it",
                        script.command
                    ),
                );
            }
        }
        if let (Some(at), false) = (is_script, self.script_security) {
            self.d.push_unlocated(
                Severity::Warning,
                Verdict::Security,
                &at,
                "enable_script_security",
                "SECURITY VIOLATION: the LVS checker would run scripts but enable_script_security is not set",
            );
        }
    }
}

fn is_checker(name: &str) -> bool {
    matches!(
        name,
        "TCP_CHECK"
            | "HTTP_GET"
            | "SSL_GET"
            | "MISC_CHECK"
            | "SMTP_CHECK"
            | "DNS_CHECK"
            | "UDP_CHECK"
            | "PING_CHECK"
            | "FILE_CHECK"
            | "BFD_CHECK"
    )
}
