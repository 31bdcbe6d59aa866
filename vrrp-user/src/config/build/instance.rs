//! `vrrp_instance`: the keywords as written, checked as keepalived checks them while
//! reading, into an [`InstanceDraft`]. Defaults and the checks keepalived makes once the
//! whole file is read (`vrrp_complete_instance`) are `validate`'s.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::number::{self, MICROS};
use super::{true_false, Builder, NotifyOwner};
use crate::config::diagnostic::Location;
use crate::config::host::InterfaceKind;
use crate::config::lexer::Token;
use crate::config::model::*;
use crate::config::syntax::Node;

/// vrrp_instance keywords keepalived knows that change nothing xvrrpd does (yet).
const UNAPPLIED_INSTANCE_KEYWORDS: &[&str] = &[
    "native_ipv6",
    "skip_check_adv_addr",
    "debug",
    "kernel_rx_buf_size",
    "unicast_ttl",
    "linkbeat_use_polling",
    "old_unicast_checksum",
    "use_ipvlan",
    "use_vmac_addr",
    "vrf",
    "track_src_ip",
    "unicast_fault_no_peer",
    "notify_deleted",
    "notify_master_rx_lower_pri",
    "notify_priority_changes",
    "garp_extra_if",
    "vmac_garp_intvl",
];

/// Linux's interface names are at most 15 bytes (`IFNAMSIZ` - 1).
pub(crate) const MAX_IFNAME: usize = 15;

/// A `track_script`/`track_process`/`track_file` entry with the weight keepalived uses
/// (the tracker's own unless overridden) and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    pub track: TrackRef,
    pub weight: i32,
    pub at: Location,
}

/// An instance as written, before keepalived's defaults and later checks.
#[derive(Debug, Clone)]
pub(crate) struct InstanceDraft {
    pub name: String,
    pub defined_at: Location,
    /// Where each keyword was first written (for findings keepalived makes later).
    pub keyword_at: HashMap<String, Location>,
    pub interface_written: bool,
    /// A VRID was written but keepalived refused it (already reported there).
    pub vrid_invalid: bool,
    /// `state` as written (keepalived derives it from the priority when unset).
    pub state: Option<InitialState>,
    /// The interface, if keepalived keeps it (it drops a loopback or an over-long name).
    pub interface: Option<(String, Location)>,
    /// The interface does not exist: xvrrpd cannot run the instance.
    pub interface_missing: bool,
    pub vrid: Option<u8>,
    pub priority: Option<u8>,
    pub advert_int: Option<(f64, Location)>,
    pub version: Option<Version>,
    pub family: Option<Family>,
    pub auth_type: Option<AuthType>,
    /// `auth_type` was written, even if keepalived refused its value.
    pub auth_type_written: bool,
    pub auth_pass: Option<String>,
    pub vips: Vec<VirtualIp>,
    pub excluded_vips: Vec<VirtualIp>,
    pub routes: Vec<VirtualRoute>,
    pub rules: Vec<VirtualRule>,
    pub promote_secondaries: bool,
    pub src_ip: Option<IpAddr>,
    pub peers: Vec<IpAddr>,
    /// A unicast keyword was given (keepalived goes unicast only with peers).
    pub unicast_configured: bool,
    pub mcast_dst_ip: Option<(IpAddr, Location)>,
    pub nopreempt: bool,
    pub preempt_delay: Option<Duration>,
    pub garp_master_delay: Option<Duration>,
    pub garp_master_repeat: Option<u32>,
    pub garp_master_refresh: Option<Option<Duration>>,
    pub garp_master_refresh_repeat: Option<u32>,
    pub track_interface: Vec<(TrackInterface, Location)>,
    pub track_script: Vec<Tracked>,
    pub track_process: Vec<Tracked>,
    pub track_file: Vec<Tracked>,
    pub notify: Notify,
    pub use_vmac: Option<Option<String>>,
    pub vmac_xmit_base: bool,
    pub dont_track_primary: bool,
    pub accept: Option<bool>,
    pub check_unicast_src: bool,
    pub v3_checksum_as_v2: bool,
    pub strict_mode: Option<bool>,
    /// Keywords strict mode forbids, when written (for its checks).
    pub garp_lower_prio_delay: Option<Duration>,
    pub garp_lower_prio_repeat: Option<u32>,
    pub lower_prio_no_advert: Option<bool>,
    pub higher_prio_send_advert: Option<bool>,
    pub down_timer_adverts: Option<u32>,
}

impl InstanceDraft {
    /// Where `keyword` was first written in the instance, else the instance's line.
    pub fn at(&self, keyword: &str) -> &Location {
        self.keyword_at.get(keyword).unwrap_or(&self.defined_at)
    }

    fn new(name: String, defined_at: Location) -> Self {
        Self {
            name,
            defined_at,
            keyword_at: HashMap::new(),
            interface_written: false,
            vrid_invalid: false,
            state: None,
            interface: None,
            interface_missing: false,
            vrid: None,
            priority: None,
            advert_int: None,
            version: None,
            family: None,
            auth_type: None,
            auth_type_written: false,
            auth_pass: None,
            vips: Vec::new(),
            excluded_vips: Vec::new(),
            routes: Vec::new(),
            rules: Vec::new(),
            promote_secondaries: false,
            src_ip: None,
            peers: Vec::new(),
            unicast_configured: false,
            mcast_dst_ip: None,
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
            accept: None,
            check_unicast_src: false,
            v3_checksum_as_v2: false,
            strict_mode: None,
            garp_lower_prio_delay: None,
            garp_lower_prio_repeat: None,
            lower_prio_no_advert: None,
            higher_prio_send_advert: None,
            down_timer_adverts: None,
        }
    }
}

impl Builder<'_> {
    /// A `vrrp_instance` block: its draft joins `config`'s once read (keepalived's checks
    /// after reading turn drafts into instances).
    pub(super) fn vrrp_instance(&mut self, node: &Node, config: &mut Config) {
        // keepalived wants exactly one word after the keyword.
        let Some(name) = self.name_arg(node) else {
            return;
        };
        if self.drafts.iter().any(|d| d.name == name) {
            self.d.error(
                node.at(),
                "vrrp_instance",
                format!("vrrp instance {name} already defined; block skipped"),
            );
            return;
        }
        let mut draft = InstanceDraft::new(name, node.at().clone());
        self.block_keywords(node, |b, kw| b.instance_keyword(kw, &mut draft, config));
        self.instance_end(node, &mut draft);
        self.drafts.push(draft);
    }

    /// keepalived's `vrrp_end_handler`, run at the block's closing brace.
    fn instance_end(&mut self, node: &Node, i: &mut InstanceDraft) {
        if i.unicast_configured
            && i.use_vmac.is_some()
            && i.interface.is_some()
            && !i.vmac_xmit_base
        {
            self.d.warn(
                node.end(),
                "use_vmac",
                format!(
                    "{}: unicast with use_vmac requires vmac_xmit_base; setting it",
                    i.name
                ),
            );
            i.vmac_xmit_base = true;
        }
    }

    fn instance_keyword(&mut self, kw: &Node, i: &mut InstanceDraft, config: &Config) -> bool {
        i.keyword_at
            .entry(kw.name().to_string())
            .or_insert_with(|| kw.at().clone());
        match kw.name() {
            "state" => {
                if let Some(state) = self.arg(kw, 0) {
                    match state.text.as_str() {
                        "MASTER" => i.state = Some(InitialState::Master),
                        "BACKUP" if i.state == Some(InitialState::Master) => self.d.warn(
                            kw.at(),
                            "state",
                            format!("{}: state already MASTER; BACKUP ignored", i.name),
                        ),
                        "BACKUP" => i.state = Some(InitialState::Backup),
                        other => {
                            self.d.warn(
                                &state.at,
                                "state",
                                format!("{}: unknown state '{other}', using BACKUP", i.name),
                            );
                            i.state = Some(InitialState::Backup);
                        }
                    }
                }
            }
            "interface" => {
                i.interface_written = true;
                if let Some(name) = self.arg(kw, 0) {
                    self.instance_interface(kw, name, i);
                }
            }
            "virtual_router_id" => {
                if let Some(token) = self.arg(kw, 0) {
                    match number::read_unsigned(&token.text, 1, 255) {
                        Ok(v) => i.vrid = Some(v as u8),
                        Err(problem) => {
                            self.d.error(&token.at, "virtual_router_id", problem);
                            i.vrid = None;
                            i.vrid_invalid = true;
                        }
                    }
                }
            }
            "priority" => {
                if let Some(token) = self.arg(kw, 0) {
                    match number::read_unsigned(&token.text, 1, u64::from(OWNER_PRIORITY)) {
                        Ok(v) => i.priority = Some(v as u8),
                        Err(problem) => {
                            self.d.warn(
                                &token.at,
                                "priority",
                                format!("{problem}; using {DEFAULT_PRIORITY}"),
                            );
                            i.priority = Some(DEFAULT_PRIORITY);
                        }
                    }
                }
            }
            "advert_int" => {
                if let Some(v) = self.secs_arg(kw, MICROS / 100, 255 * MICROS) {
                    i.advert_int = Some((v, kw.at().clone()));
                }
            }
            "version" => {
                if let Some(v) = self.int_arg(kw, 2, 3) {
                    let v = if v == 3 { Version::V3 } else { Version::V2 };
                    if i.version.is_some_and(|had| had != v)
                        || (v == Version::V2 && i.family == Some(Family::V6))
                    {
                        self.d.warn(
                            kw.at(),
                            "version",
                            format!("{}: version {} conflicts with the configured or deduced version; ignored", i.name, v.number()),
                        );
                    } else {
                        i.version = Some(v);
                    }
                }
            }
            "authentication" => {
                self.block_keywords(kw, |b, entry| b.authentication(entry, i));
            }
            "virtual_ipaddress" => {
                self.value_block_args(kw);
                for entry in kw.children() {
                    if let Some(vip) = self.vip(entry, false) {
                        self.instance_family(entry, i, &vip.address, "virtual_ipaddress");
                        if i.family == Some(vip.family()) {
                            i.vips.push(vip);
                        }
                    }
                }
            }
            "virtual_ipaddress_excluded" => {
                self.value_block_args(kw);
                // Excluded addresses are not advertised, so they may be of either family.
                for entry in kw.children() {
                    if let Some(vip) = self.vip(entry, false) {
                        i.excluded_vips.push(vip);
                    }
                }
            }
            "unicast_src_ip" | "mcast_src_ip" => {
                if kw.name() == "unicast_src_ip" {
                    i.unicast_configured = true;
                }
                if let Some(token) = self.arg(kw, 0) {
                    match self.sockaddr(token) {
                        Some(addr) => {
                            if self.instance_family(kw, i, &addr, kw.name()) {
                                i.src_ip = Some(addr);
                                self.stripped_mask(kw, token);
                            }
                        }
                        None => self.d.warn(
                            &token.at,
                            kw.name(),
                            format!(
                                "{}: malformed source address '{}'; skipped",
                                i.name, token.text
                            ),
                        ),
                    }
                }
            }
            "unicast_peer" => {
                i.unicast_configured = true;
                self.value_block_args(kw);
                for peer in kw.children() {
                    self.unicast_peer(peer, i);
                }
            }
            "check_unicast_src" => {
                i.unicast_configured = true;
                i.check_unicast_src = true;
            }
            "unicast_fault_no_peer" => {
                i.unicast_configured = true;
                self.not_implemented(kw);
            }
            "old_unicast_checksum" => {
                i.unicast_configured = true;
                self.not_implemented(kw);
            }
            "mcast_dst_ip" => {
                if let Some(token) = self.arg(kw, 0) {
                    match self.sockaddr(token) {
                        None => self.d.warn(
                            kw.at(),
                            kw.name(),
                            format!(
                                "({}) malformed mcast dest address {}; skipped",
                                i.name, token.text
                            ),
                        ),
                        Some(addr) if !self.instance_family(kw, i, &addr, "mcast_dst_ip") => {}
                        Some(addr) => {
                            let multicast = match addr {
                                IpAddr::V4(a) => a.is_multicast(),
                                IpAddr::V6(a) => a.segments()[0] & 0xff0f == 0xff02,
                            };
                            if multicast {
                                i.mcast_dst_ip = Some((addr, kw.at().clone()));
                            } else {
                                self.d.warn(
                                    kw.at(),
                                    kw.name(),
                                    format!(
                                        "({}) mcast_dst_ip {} not{} multicast; skipped",
                                        i.name,
                                        token.text,
                                        if addr.is_ipv6() { " link-local" } else { "" }
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            "nopreempt" => i.nopreempt = true,
            "preempt" => i.nopreempt = false,
            "preempt_delay" => match self.secs_arg(kw, 0, 1_000 * MICROS) {
                Some(v) => i.preempt_delay = Some(Duration::from_secs_f64(v)),
                None if kw.arg(0).is_some() => i.preempt_delay = Some(Duration::ZERO),
                None => {}
            },
            "garp_master_delay" => {
                if let Some(v) = self.unsigned_arg(kw, 0, u64::from(u32::MAX) / MICROS) {
                    i.garp_master_delay = Some(Duration::from_secs(v));
                }
            }
            "garp_master_repeat" => {
                if let Some(v) = self.unsigned_arg(kw, 0, u64::from(u32::MAX)) {
                    i.garp_master_repeat = Some(self.at_least_one(kw, v));
                }
            }
            "garp_master_refresh" => {
                if let Some(token) = self.arg(kw, 0) {
                    let v = self
                        .unsigned(kw.name(), token, 0, u64::from(u32::MAX))
                        .unwrap_or(0);
                    i.garp_master_refresh = Some((v > 0).then(|| Duration::from_secs(v)));
                }
            }
            "garp_master_refresh_repeat" => {
                if let Some(v) = self.unsigned_arg(kw, 0, u64::from(u32::MAX)) {
                    i.garp_master_refresh_repeat = Some(self.at_least_one(kw, v));
                }
            }
            "garp_lower_prio_delay" => {
                if let Some(v) = self.unsigned_arg(kw, 0, u64::from(u32::MAX) / MICROS) {
                    i.garp_lower_prio_delay = Some(Duration::from_secs(v));
                }
            }
            "garp_lower_prio_repeat" => {
                if let Some(v) = self.unsigned_arg(kw, 0, u64::from(u32::MAX)) {
                    i.garp_lower_prio_repeat = Some(v as u32);
                }
            }
            "lower_prio_no_advert" => {
                i.lower_prio_no_advert = self.optional_true_false(kw, &i.name);
            }
            "higher_prio_send_advert" => {
                i.higher_prio_send_advert = self.optional_true_false(kw, &i.name);
            }
            "strict_mode" => {
                if let Some(v) = self.optional_true_false(kw, &i.name) {
                    i.strict_mode = Some(v);
                }
            }
            "down_timer_adverts" => {
                if let Some(v) = self.unsigned_arg(kw, 1, 100) {
                    i.down_timer_adverts = Some(v as u32);
                }
            }
            "track_interface" => {
                self.value_block_args(kw);
                for entry in kw.children() {
                    if let Some(track) =
                        self.track_interface_entry(entry, &i.name, &i.track_interface)
                    {
                        i.track_interface.push((track, entry.at().clone()));
                    }
                }
            }
            "track_script" => {
                self.value_block_args(kw);
                for entry in kw.children() {
                    let weight = |n: &str| config.scripts.get(n).map(|s| (s.weight, s.reverse));
                    if let Some(found) =
                        self.track_ref(entry, &i.name, "track script", &i.track_script, &weight)
                    {
                        i.track_script.push(found);
                    }
                }
            }
            "track_process" => {
                self.value_block_args(kw);
                for entry in kw.children() {
                    let weight =
                        |n: &str| config.track_processes.get(n).map(|p| (p.weight, p.reverse));
                    if let Some(found) =
                        self.track_ref(entry, &i.name, "track process", &i.track_process, &weight)
                    {
                        i.track_process.push(found);
                    }
                }
            }
            "track_file" => {
                self.value_block_args(kw);
                for entry in kw.children() {
                    let weight = |n: &str| config.track_files.get(n).map(|f| (f.weight, f.reverse));
                    if let Some(found) =
                        self.track_ref(entry, &i.name, "track file", &i.track_file, &weight)
                    {
                        i.track_file.push(found);
                    }
                }
            }
            "notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                let slot = i.notify.slot_mut(kw.name());
                if slot.is_some() {
                    self.d.warn(
                        kw.at(),
                        kw.name(),
                        format!("{}: {} script already given; ignored", i.name, kw.name()),
                    );
                } else {
                    let command = self.notify_command(kw, NotifyOwner::Instance(i.name.clone()));
                    *i.notify.slot_mut(kw.name()) = command;
                }
            }
            "use_vmac" => self.use_vmac(kw, i),
            "vmac_xmit_base" => i.vmac_xmit_base = true,
            "dont_track_primary" => i.dont_track_primary = true,
            "accept" => i.accept = Some(true),
            "no_accept" => i.accept = Some(false),
            "promote_secondaries" => i.promote_secondaries = true,
            "smtp_alert" => {
                self.optional_true_false(kw, &i.name);
                self.alert_mail_not_sent(kw);
            }
            "lvs_sync_daemon_interface" => {
                if self.arg(kw, 0).is_some() {
                    self.d.warn(
                        kw.at(),
                        kw.name(),
                        format!("{}: lvs_sync_daemon_interface in a vrrp instance is deprecated; use the global lvs_sync_daemon", i.name),
                    );
                }
            }
            "linkbeat_use_polling" => {
                self.d.warn(
                    kw.at(),
                    kw.name(),
                    format!("{}: linkbeat_use_polling in a vrrp instance is deprecated; use a linkbeat_interfaces block (not implemented by xvrrpd, which follows link state by netlink events)", i.name),
                );
            }
            "v3_checksum_as_v2" => {
                i.v3_checksum_as_v2 = true;
                // keepalived does not know it: its -t exits 5 for this line.
                self.d.warn(
                    kw.at(),
                    "v3_checksum_as_v2",
                    "xvrrpd extension that keepalived 2.2 does not know (keepalived -t reports \
                     an unknown keyword)",
                );
            }
            "virtual_routes" => {
                let routes = self.routes(kw, super::route::RouteBlock::Virtual);
                i.routes.extend(routes);
            }
            "virtual_rules" => {
                let rules = self.rules(kw, super::route::RouteBlock::Virtual);
                i.rules.extend(rules);
            }
            "track_bfd" => {
                self.value_block_args(kw);
                self.bfd_not_supported(kw);
            }
            name if UNAPPLIED_INSTANCE_KEYWORDS.contains(&name) => self.not_implemented(kw),
            _ => return false,
        }
        true
    }

    fn instance_interface(&mut self, kw: &Node, name: &Token, i: &mut InstanceDraft) {
        if name.text.len() > MAX_IFNAME {
            self.d.warn(
                kw.at(),
                "interface",
                format!("interface name '{}' too long; ignored", name.text),
            );
            return;
        }
        match self.vrrp_interface(&name.text, &name.at) {
            InterfaceKind::Present => i.interface = Some((name.text.clone(), name.at.clone())),
            InterfaceKind::Missing => {
                i.interface_missing = true;
                self.d.push(
                    crate::config::diagnostic::Severity::Error,
                    crate::config::diagnostic::Verdict::ConfigError,
                    &name.at,
                    "interface",
                    format!(
                        "{}: interface {} does not exist on this host",
                        i.name, name.text
                    ),
                );
                i.interface = Some((name.text.clone(), name.at.clone()));
            }
            InterfaceKind::Loopback => {
                self.d.error(
                    &name.at,
                    "interface",
                    format!(
                        "{}: cannot use loopback interface {} for VRRP",
                        i.name, name.text
                    ),
                );
                i.interface = None;
            }
        }
    }

    /// A `{ ... }` value block must not have words between the keyword and the brace.
    pub(super) fn value_block_args(&mut self, kw: &Node) {
        if let Some(extra) = kw.arg(0) {
            self.d.warn(
                kw.at(),
                kw.name(),
                format!(
                    "block {} has extra parameters {} ...",
                    kw.name(),
                    extra.text
                ),
            );
        }
        if kw.block.is_none() {
            self.d.lint(kw.at(), kw.name(), "expects a { ... } block");
        }
    }

    /// Records the instance family on first use; reports and rejects a mismatch.
    fn instance_family(
        &mut self,
        node: &Node,
        i: &mut InstanceDraft,
        addr: &IpAddr,
        keyword: &str,
    ) -> bool {
        let this = Family::of(addr);
        match i.family {
            None => {
                i.family = Some(this);
                true
            }
            Some(f) if f == this => true,
            Some(f) => {
                self.d.warn(
                    node.at(),
                    keyword,
                    format!(
                        "{}: {addr} is {this} but the instance is {f}; ignored",
                        i.name
                    ),
                );
                false
            }
        }
    }

    /// keepalived cuts `/mask` and `-range` off unicast addresses and uses the address.
    fn stripped_mask(&mut self, node: &Node, token: &Token) {
        if token.text.contains(['/', '-']) {
            self.d.lint(
                &token.at,
                node.name(),
                format!(
                    "'{}': keepalived ignores the mask or range and uses the address",
                    token.text
                ),
            );
        }
    }

    fn unicast_peer(&mut self, peer: &Node, i: &mut InstanceDraft) {
        let token = &peer.keyword;
        let Some(addr) = self.sockaddr(token) else {
            self.d.warn(
                peer.at(),
                "unicast_peer",
                format!(
                    "{}: malformed unicast peer address '{}'; skipped",
                    i.name, token.text
                ),
            );
            return;
        };
        if !self.instance_family(peer, i, &addr, "unicast_peer") {
            return;
        }
        self.stripped_mask(peer, token);
        let (mut min_ttl, mut max_ttl) = (0, 255);
        let mut args = peer.args.iter();
        while let Some(option) = args.next() {
            let Some(value) = args.next() else {
                self.d.warn(
                    &option.at,
                    "unicast_peer",
                    format!("{}: {} is missing a value", i.name, option.text),
                );
                break;
            };
            let Some(ttl) = self.unsigned("unicast_peer", value, 0, 255) else {
                continue;
            };
            match option.text.as_str() {
                "min_ttl" => min_ttl = ttl,
                "max_ttl" => max_ttl = ttl,
                other => {
                    self.d.warn(
                        &option.at,
                        "unicast_peer",
                        format!("{}: unknown unicast_peer option {other}", i.name),
                    );
                    break;
                }
            }
            self.d.lint(
                &option.at,
                "unicast_peer",
                format!("{} is not applied by xvrrpd", option.text),
            );
        }
        if min_ttl > max_ttl {
            self.d.warn(
                peer.at(),
                "unicast_peer",
                format!(
                    "{}: min_ttl {min_ttl} > max_ttl {max_ttl}: every advert will be dropped",
                    i.name
                ),
            );
        }
        i.peers.push(addr);
    }

    fn authentication(&mut self, entry: &Node, i: &mut InstanceDraft) -> bool {
        match entry.name() {
            "auth_type" => {
                i.auth_type_written = true;
                if let Some(t) = self.arg(entry, 0) {
                    match t.text.as_str() {
                        "PASS" => i.auth_type = Some(AuthType::Pass),
                        "AH" => {
                            i.auth_type = Some(AuthType::Ah);
                            // Running without it would leave both nodes master.
                            self.d.push(
                                crate::config::diagnostic::Severity::Error,
                                crate::config::diagnostic::Verdict::Silent,
                                entry.at(),
                                "auth_type",
                                "IPsec AH authentication is not supported by xvrrpd: its adverts \
                                 would carry no AH header, an AH peer would ignore them and both \
                                 nodes would become master. Use auth_type PASS, or no \
                                 authentication block, on every node (keepalived deprecates AH)",
                            );
                        }
                        other => self.d.warn(
                            &t.at,
                            "auth_type",
                            format!("{}: unknown authentication type '{other}'", i.name),
                        ),
                    }
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
                    i.auth_pass = Some(pass);
                }
            }
            _ => return false,
        }
        true
    }

    fn use_vmac(&mut self, kw: &Node, i: &mut InstanceDraft) {
        let mut name = None;
        for arg in kw.args.iter().take(2) {
            if arg.text.contains(':') {
                self.d.lint(
                    &arg.at,
                    "use_vmac",
                    "a vmac MAC address is not applied by xvrrpd (it uses 00:00:5e:00:01:VRID)",
                );
            } else if name.is_some() {
                self.d
                    .warn(kw.at(), "use_vmac", "VMAC interface name already given");
            } else if arg.text.len() > MAX_IFNAME
                || arg.text.contains(['/', ':'])
                || arg.text == "."
                || arg.text == ".."
            {
                self.d.warn(
                    &arg.at,
                    "use_vmac",
                    format!(
                        "VMAC interface name '{}' too long or invalid; ignored",
                        arg.text
                    ),
                );
            } else if self
                .drafts
                .iter()
                .any(|d| d.use_vmac.as_ref().and_then(|n| n.as_deref()) == Some(arg.text.as_str()))
            {
                self.d.warn(
                    &arg.at,
                    "use_vmac",
                    format!(
                        "{}: another instance uses {}; name ignored",
                        i.name, arg.text
                    ),
                );
            } else {
                name = Some(arg.text.clone());
            }
        }
        i.use_vmac = Some(name);
    }

    /// A keyword with an optional `true`/`false` (absent means true).
    fn optional_true_false(&mut self, kw: &Node, owner: &str) -> Option<bool> {
        match kw.arg(0) {
            None => Some(true),
            Some(word) => {
                let value = true_false(&word.text);
                if value.is_none() {
                    self.d.warn(
                        kw.at(),
                        kw.name(),
                        format!("{owner}: invalid {} '{}'", kw.name(), word.text),
                    );
                }
                value
            }
        }
    }

    /// One `track_interface` line: `IF [weight N [reverse]]` (keepalived's alloc_track_if).
    pub(super) fn track_interface_entry(
        &mut self,
        entry: &Node,
        owner: &str,
        already: &[(TrackInterface, Location)],
    ) -> Option<TrackInterface> {
        let name = entry.name().to_string();
        if self.vrrp_interface(&name, entry.at()) == InterfaceKind::Missing {
            self.d.warn(
                entry.at(),
                "track_interface",
                format!("{owner}: tracked interface {name} does not exist on this host"),
            );
            return None;
        }
        if already.iter().any(|(t, _)| t.name == name) {
            self.d.warn(
                entry.at(),
                "track_interface",
                format!("{owner}: duplicate track_interface {name}; ignored"),
            );
            return None;
        }
        let (weight, reverse) = self.weight_option(entry, owner, &name, (0, false), 253)?;
        Some(TrackInterface {
            name,
            weight,
            reverse,
        })
    }

    /// One `track_script`/`track_process`/`track_file` line: `NAME [weight N [reverse]]`,
    /// resolved against the trackers defined so far, as keepalived does.
    pub(super) fn track_ref(
        &mut self,
        entry: &Node,
        owner: &str,
        what: &str,
        already: &[Tracked],
        own_weight: &dyn Fn(&str) -> Option<(i32, bool)>,
    ) -> Option<Tracked> {
        let name = entry.name().to_string();
        let Some(default) = own_weight(&name) else {
            let hint = self.unresolved_hint(what, &name, entry.at());
            self.d.warn(
                entry.at(),
                &what.replace(' ', "_"),
                format!("{owner}: {what} {name} not found{hint}; ignored"),
            );
            return None;
        };
        if already.iter().any(|t| t.track.name == name) {
            self.d.warn(
                entry.at(),
                &what.replace(' ', "_"),
                format!("{owner}: duplicate {what} {name}; ignored"),
            );
            return None;
        }
        // Scripts take -253..253 (±254 is cut); processes and files -254..254.
        let limit = if what == "track script" { 253 } else { 254 };
        let (weight, reverse) = self.weight_option(entry, owner, &name, default, limit)?;
        let written = entry.arg(0).is_some();
        Some(Tracked {
            track: TrackRef {
                name,
                weight: written.then_some(weight),
                reverse,
            },
            weight,
            at: entry.at().clone(),
        })
    }

    /// `weight N [reverse|noreverse]` after a tracked name; `None` drops the entry as
    /// keepalived does for an unknown option or a missing value.
    fn weight_option(
        &mut self,
        entry: &Node,
        owner: &str,
        name: &str,
        default: (i32, bool),
        limit: i64,
    ) -> Option<(i32, bool)> {
        let (mut weight, mut reverse) = default;
        let Some(option) = entry.arg(0) else {
            return Some(default);
        };
        if option.text != "weight" {
            self.d.warn(
                &option.at,
                entry.name(),
                format!(
                    "{owner}: unknown option '{}' for {name}; ignored",
                    option.text
                ),
            );
            return None;
        }
        let Some(value) = entry.arg(1) else {
            self.d.warn(
                &option.at,
                entry.name(),
                format!("{owner}: weight without a value for {name}; ignored"),
            );
            return None;
        };
        match self.signed(entry.name(), value, -254, 254) {
            Some(w) if w.abs() > limit => {
                let cut = w.signum() * limit;
                self.d.warn(
                    &value.at,
                    entry.name(),
                    format!("{owner}: weight for {name} cannot be {w}; using {cut}"),
                );
                weight = cut as i32;
            }
            Some(w) => weight = w as i32,
            None => {}
        }
        if let Some(flag) = entry.arg(2) {
            match flag.text.as_str() {
                "reverse" => reverse = true,
                "noreverse" => reverse = false,
                other => self.d.warn(
                    &flag.at,
                    entry.name(),
                    format!("{owner}: unknown weight option '{other}' for {name}; ignored"),
                ),
            }
        }
        Some((weight, reverse))
    }
}
