//! Addresses as keepalived's `alloc_ipaddress` reads them: `virtual_ipaddress`,
//! `virtual_ipaddress_excluded` and `static_ipaddress` lines
//! (`IP[/len] [dev IF] [brd X] [label L] [scope S] [peer P] [flags...]`).

use std::net::IpAddr;

use super::instance::MAX_IFNAME;
use super::Builder;
use crate::config::host::InterfaceKind;
use crate::config::model::*;
use crate::config::syntax::Node;

/// iproute2's scope names (`/etc/iproute2/rt_scopes`), as keepalived accepts them.
const KNOWN_SCOPES: &[&str] = &["global", "site", "link", "host", "nowhere"];

/// Flags keepalived passes to the kernel; xvrrpd adds the address without them.
const ADDRESS_FLAGS: &[&str] = &["home", "-nodad", "mngtmpaddr", "noprefixroute", "autojoin"];

impl Builder<'_> {
    /// One address line. `None` when keepalived drops the address (it reports why).
    pub(super) fn vip(&mut self, entry: &Node, static_addr: bool) -> Option<VirtualIp> {
        let text = &entry.keyword.text;
        let kw = "virtual_ipaddress";
        let (addr_text, len_text) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text.as_str(), None),
        };
        // keepalived decides the family by the presence of ':'.
        let max: u8 = if addr_text.contains(':') { 128 } else { 32 };
        let mut prefix_len = max;
        if let Some(len) = len_text {
            match super::number::read_unsigned(len, 0, u64::from(max)) {
                Ok(l) => prefix_len = l as u8,
                Err(problem) => self.d.warn(
                    entry.at(),
                    kw,
                    format!("prefix length of {text}: {problem}; using /{max}"),
                ),
            }
        }
        let Ok(address) = addr_text.parse::<IpAddr>() else {
            self.d.warn(
                entry.at(),
                kw,
                format!("invalid IP address '{text}'; skipped"),
            );
            return None;
        };
        let mut vip = VirtualIp {
            address,
            prefix_len,
            broadcast: None,
            dev: None,
            label: None,
            scope: None,
            no_track: false,
        };
        let mut args = entry.args.iter();
        while let Some(option) = args.next() {
            let name = option.text.as_str();
            if ADDRESS_FLAGS.contains(&name) || (!static_addr && name == "use_vmac") {
                self.d.lint(
                    &option.at,
                    kw,
                    format!("address option {name} is not applied by xvrrpd"),
                );
                continue;
            }
            if name == "no_track" {
                vip.no_track = true;
                continue;
            }
            let takes_value = matches!(
                name,
                "dev" | "scope" | "broadcast" | "brd" | "label" | "peer" | "preferred_lft"
            ) || (static_addr && name == "track_group");
            if !takes_value {
                self.d.warn(
                    &option.at,
                    kw,
                    format!("unknown option '{name}' for address {text}; ignored"),
                );
                continue;
            }
            let Some(value) = args.next() else {
                self.d.warn(
                    &option.at,
                    kw,
                    format!("no {name} value given for {text}; address skipped"),
                );
                return None;
            };
            match name {
                "dev" => {
                    if vip.dev.is_some() {
                        self.d.warn(
                            &option.at,
                            kw,
                            format!("device given more than once for {text}; address skipped"),
                        );
                        return None;
                    }
                    if self.vrrp_interface(&value.text, &value.at) == InterfaceKind::Missing {
                        self.d.warn(
                            &value.at,
                            kw,
                            format!(
                                "interface {} for address {text} does not exist; address skipped",
                                value.text
                            ),
                        );
                        return None;
                    }
                    vip.dev = Some(value.text.clone());
                }
                "scope" => {
                    if KNOWN_SCOPES.contains(&value.text.as_str())
                        || value.text.parse::<u8>().is_ok()
                    {
                        vip.scope = Some(value.text.clone());
                    } else {
                        self.d.warn(
                            &value.at,
                            kw,
                            format!("invalid scope '{}' for {text}; ignored", value.text),
                        );
                    }
                }
                "broadcast" | "brd" => {
                    if address.is_ipv6() {
                        self.d.warn(
                            &option.at,
                            kw,
                            format!("broadcast for IPv6 address {text}; address skipped"),
                        );
                        return None;
                    }
                    match value.text.as_str() {
                        // The kernel computes ("+") or leaves out ("-") the broadcast.
                        "+" | "-" => {
                            if prefix_len > 30 {
                                self.d.warn(
                                    &value.at,
                                    kw,
                                    format!(
                                        "prefix /{prefix_len} too long for a broadcast address"
                                    ),
                                );
                            }
                        }
                        other => match other.parse::<std::net::Ipv4Addr>() {
                            Ok(b) => vip.broadcast = Some(IpAddr::V4(b)),
                            Err(_) => {
                                self.d.warn(
                                    &value.at,
                                    kw,
                                    format!("invalid broadcast address '{other}'; address skipped"),
                                );
                                return None;
                            }
                        },
                    }
                }
                "label" => {
                    if value.text.len() > MAX_IFNAME {
                        self.d.warn(
                            &value.at,
                            kw,
                            format!(
                                "label {} longer than {MAX_IFNAME} characters; address skipped",
                                value.text
                            ),
                        );
                        return None;
                    }
                    vip.label = Some(value.text.clone());
                }
                "peer" => {
                    self.d
                        .lint(&option.at, kw, "peer addresses are not applied by xvrrpd");
                    match value
                        .text
                        .split('/')
                        .next()
                        .unwrap_or_default()
                        .parse::<IpAddr>()
                    {
                        Ok(p) if p.is_ipv4() == address.is_ipv4() => {}
                        Ok(_) => self.d.warn(
                            &value.at,
                            kw,
                            format!(
                                "peer address {} does not match the address family",
                                value.text
                            ),
                        ),
                        Err(_) => self.d.warn(
                            &value.at,
                            kw,
                            format!("invalid peer address {}", value.text),
                        ),
                    }
                }
                "preferred_lft" | "track_group" => {
                    self.d.lint(
                        &option.at,
                        kw,
                        format!("address option {name} is not applied by xvrrpd"),
                    );
                    if name == "preferred_lft"
                        && value.text != "forever"
                        && self.unsigned(kw, value, 0, u64::from(u32::MAX)).is_none()
                    {
                        self.d.warn(
                            &value.at,
                            kw,
                            format!("preferred_lft {} is invalid", value.text),
                        );
                    }
                }
                _ => {}
            }
        }
        if static_addr && vip.dev.is_none() {
            // keepalived falls back to default_interface, else eth0.
            let default = self
                .default_interface
                .clone()
                .unwrap_or_else(|| "eth0".into());
            if self.host.interface(&default) == InterfaceKind::Missing {
                self.d.push(
                    crate::config::diagnostic::Severity::Error,
                    crate::config::diagnostic::Verdict::Fatal,
                    entry.at(),
                    "static_ipaddress",
                    format!("static address {text} needs a dev, or the default interface {default} must exist"),
                );
                return None;
            }
        }
        if address.is_ipv6() {
            if vip.scope.take().is_some() {
                self.d.warn(
                    entry.at(),
                    kw,
                    format!("a scope cannot be given for IPv6 address {text}; scope ignored"),
                );
            }
            if vip.label.take().is_some() {
                self.d.warn(
                    entry.at(),
                    kw,
                    format!("a label cannot be given for IPv6 address {text}; label ignored"),
                );
            }
        }
        Some(vip)
    }

    /// `static_ipaddress { ... }`: checked as keepalived checks it; each address gets its
    /// `dev`, or the default interface.
    pub(super) fn static_addresses(&mut self, node: &Node) -> Vec<VirtualIp> {
        self.value_block_args(node);
        let mut addrs = Vec::new();
        for entry in node.children() {
            if let Some(mut vip) = self.vip(entry, true) {
                if vip.dev.is_none() {
                    vip.dev = Some(
                        self.default_interface
                            .clone()
                            .unwrap_or_else(|| "eth0".into()),
                    );
                }
                addrs.push(vip);
            }
        }
        addrs
    }
}
