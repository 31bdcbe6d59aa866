//! Routes and rules as keepalived's `alloc_route` and `alloc_rule` read them:
//! `virtual_routes`/`virtual_rules` in an instance and `static_routes`/`static_rules` at
//! the top level. Checked so that `xvrrpd check` finds what `keepalived -t` finds; neither
//! is applied by xvrrpd yet (reported at the block).

use std::net::IpAddr;

use super::Builder;
use crate::config::host::InterfaceKind;
use crate::config::lexer::Token;
use crate::config::syntax::Node;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RouteBlock {
    /// `virtual_routes`/`virtual_rules` of an instance.
    Virtual,
    /// `static_routes`/`static_rules` (they also take `track_group`).
    Static,
}

/// Route types iproute2 knows (`ip route add TYPE PREFIX`).
const ROUTE_TYPES: &[&str] = &[
    "unicast",
    "local",
    "broadcast",
    "multicast",
    "throw",
    "unreachable",
    "prohibit",
    "blackhole",
    "nat",
    "anycast",
];
/// iproute2's `rt_scopes` names.
const SCOPES: &[&str] = &["global", "site", "link", "host", "nowhere"];
const PROTOCOLS: &[&str] = &[
    "unspec",
    "redirect",
    "kernel",
    "boot",
    "static",
    "gated",
    "ra",
    "mrt",
    "zebra",
    "bird",
    "dnrouted",
    "xorp",
    "ntk",
    "dhcp",
    "keepalived",
    "babel",
    "bgp",
    "isis",
    "ospf",
    "rip",
    "eigrp",
];
/// Route metrics that take a value, some with an optional `lock` before it.
const ROUTE_METRICS: &[&str] = &[
    "mtu",
    "hoplimit",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "realms",
    "rto_min",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "congctl",
    "pref",
    "ttl-propagate",
    "fastopen_no_cookie",
    "expires",
];

/// One address as keepalived's `parse_ipaddress` takes it (`/len` only where allowed).
fn address(text: &str, allow_prefix: bool) -> Option<IpAddr> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) if allow_prefix => (a, Some(l)),
        Some(_) => return None,
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match len.map(str::parse::<u8>) {
        None => Some(addr),
        Some(Ok(l)) if l <= max => Some(addr),
        Some(_) => None,
    }
}

impl Builder<'_> {
    /// `virtual_routes { ... }` / `static_routes { ... }`.
    pub(super) fn routes(&mut self, node: &Node, block: RouteBlock) {
        self.value_block_args(node);
        for line in node.children() {
            let words: Vec<&Token> = line.words().collect();
            self.route(&words, block, node.name());
        }
        if block == RouteBlock::Static {
            self.d.lint(
                node.at(),
                node.name(),
                "checked, but not applied by xvrrpd (keepalived adds these at start)",
            );
        }
    }

    /// `virtual_rules { ... }` / `static_rules { ... }`.
    pub(super) fn rules(&mut self, node: &Node, block: RouteBlock) {
        self.value_block_args(node);
        for line in node.children() {
            let words: Vec<&Token> = line.words().collect();
            self.rule(&words, block, node.name());
        }
        if block == RouteBlock::Static {
            self.d.lint(
                node.at(),
                node.name(),
                "checked, but not applied by xvrrpd (keepalived adds these at start)",
            );
        }
    }

    fn route(&mut self, words: &[&Token], block: RouteBlock, kw: &str) {
        let at = words[0].at.clone();
        let problem = |b: &mut Self, message: String| b.d.warn(&at, kw, message);
        let mut family: Option<bool> = None; // Some(true) = IPv4
        let mut same_family = |b: &mut Self, addr: &IpAddr| -> bool {
            match family {
                None => {
                    family = Some(addr.is_ipv4());
                    true
                }
                Some(v4) if v4 == addr.is_ipv4() => true,
                Some(_) => {
                    problem(b, "cannot mix IPv4 and IPv6 addresses in a route".into());
                    false
                }
            }
        };
        let mut destination: Option<String> = None;
        let mut dev = false;
        let mut no_track = false;
        let mut i = 0;
        let value = |i: usize| words.get(i).map(|t| t.text.as_str());
        while i < words.len() {
            let word = words[i].text.as_str();
            match word {
                "inet" | "inet6" => {}
                "src" => {
                    i += 1;
                    match value(i).and_then(|v| address(v, false)) {
                        Some(a) if same_family(self, &a) => {}
                        Some(_) => return,
                        None => {
                            problem(
                                self,
                                format!("invalid route src address {}", value(i).unwrap_or("")),
                            );
                            return;
                        }
                    }
                }
                "as" => {
                    i += 1;
                    if value(i) == Some("to") {
                        i += 1;
                    }
                    problem(self, "\"as to\" is for MPLS only; ignored".into());
                }
                "via" | "gw" => {
                    if word == "gw" {
                        problem(self, "\"gw\" for routes is deprecated; use \"via\"".into());
                    }
                    i += 1;
                    if matches!(value(i), Some("inet" | "inet6")) {
                        i += 1;
                    }
                    match value(i).and_then(|v| address(v, false)) {
                        Some(a) if same_family(self, &a) => {}
                        Some(_) => return,
                        None => {
                            problem(
                                self,
                                format!("invalid route via address {}", value(i).unwrap_or("")),
                            );
                            return;
                        }
                    }
                }
                "from" => {
                    i += 1;
                    match value(i).and_then(|v| address(v, true)) {
                        Some(a) if a.is_ipv6() => {
                            if !same_family(self, &a) {
                                return;
                            }
                        }
                        Some(_) => {
                            problem(self, "route from address only supported with IPv6".into());
                            return;
                        }
                        None => {
                            problem(
                                self,
                                format!("invalid route from address {}", value(i).unwrap_or("")),
                            );
                            return;
                        }
                    }
                }
                "tos" | "dsfield" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    let ok = u8::from_str_radix(v.trim_start_matches("0x"), 16).is_ok();
                    if !ok {
                        problem(self, format!("TOS value {v} is invalid"));
                        return;
                    }
                }
                "table" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    if !self.host.routing_table(v) {
                        problem(self, format!("routing table {v} not found for route"));
                        return;
                    }
                }
                "protocol" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    if !(PROTOCOLS.contains(&v) || v.parse::<u8>().is_ok()) {
                        problem(self, format!("protocol {v} not found or invalid for route"));
                        return;
                    }
                    if !no_track && v != "keepalived" && v != "18" {
                        // keepalived tracks its routes by protocol.
                        problem(
                            self,
                            "a tracked route must have protocol keepalived; resetting protocol"
                                .into(),
                        );
                    }
                }
                "scope" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    if !(SCOPES.contains(&v) || v.parse::<u8>().is_ok()) {
                        problem(self, format!("scope {v} not found or invalid for route"));
                        return;
                    }
                }
                "metric" | "priority" | "preference" => {
                    i += 1;
                    if value(i).and_then(|v| v.parse::<u32>().ok()).is_none() {
                        problem(
                            self,
                            format!("invalid metric {} for route", value(i).unwrap_or("")),
                        );
                        return;
                    }
                }
                "dev" | "oif" => {
                    i += 1;
                    let name = value(i).unwrap_or("");
                    if self.vrrp_interface(name, &at) == InterfaceKind::Missing {
                        problem(
                            self,
                            format!("interface {name} for the route does not exist"),
                        );
                        return;
                    }
                    dev = true;
                }
                "onlink" | "add" | "prepend" | "append" => {}
                "no_track" => no_track = true,
                "or" => {
                    problem(
                        self,
                        "\"or\" for routes is deprecated; use \"nexthop\"".into(),
                    );
                    i += 1;
                    if value(i).and_then(|v| address(v, false)).is_none() {
                        problem(
                            self,
                            format!("invalid \"or\" address {}", value(i).unwrap_or("")),
                        );
                        return;
                    }
                }
                "nexthop" => {
                    // The rest of the line is next hops; keepalived checks them in detail.
                    self.d.lint(&at, kw, "next hops are not checked by xvrrpd");
                    break;
                }
                "encap" => {
                    self.d
                        .lint(&at, kw, "encapsulation is not checked by xvrrpd");
                    break;
                }
                "track_group" if block == RouteBlock::Static => {
                    i += 1;
                    self.d.lint(&at, kw, "track_group is not checked by xvrrpd");
                }
                metric if ROUTE_METRICS.contains(&metric) => {
                    i += 1;
                    if value(i) == Some("lock") {
                        i += 1;
                    }
                }
                _ => {
                    if word == "to" {
                        i += 1;
                    }
                    if value(i).is_some_and(|t| ROUTE_TYPES.contains(&t)) {
                        i += 1;
                    }
                    let dest = value(i).unwrap_or("");
                    let special = matches!(dest, "default" | "any" | "all" | "default6");
                    match address(dest, true) {
                        Some(a) if !same_family(self, &a) => return,
                        Some(_) => {}
                        None if special => {}
                        None => {
                            problem(self, format!("unknown route keyword {dest}"));
                            return;
                        }
                    }
                    destination = Some(dest.to_string());
                }
            }
            i += 1;
        }
        let Some(destination) = destination else {
            problem(self, "route must have a destination".into());
            return;
        };
        if !no_track && !dev {
            problem(
                self,
                format!("cannot track route {destination} without a dev: keepalived does not track it (add dev, or no_track)"),
            );
        }
    }

    fn rule(&mut self, words: &[&Token], block: RouteBlock, kw: &str) {
        let at = words[0].at.clone();
        let problem = |b: &mut Self, message: String| b.d.warn(&at, kw, message);
        let mut action = false;
        let mut table_option = false;
        let mut preference = false;
        let mut goto = false;
        let mut i = 0;
        let value = |i: usize| words.get(i).map(|t| t.text.as_str());
        while i < words.len() {
            let word = words[i].text.as_str();
            match word {
                "inet" | "inet6" | "not" | "l3mdev" | "no_track" => {
                    if word == "l3mdev" {
                        action = true;
                    }
                }
                "from" | "to" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    if v != "all" && address(v, true).is_none() {
                        problem(self, format!("invalid rule {word} address {v}"));
                        return;
                    }
                }
                "table" | "lookup" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    if !self.host.routing_table(v) {
                        problem(self, format!("routing table {v} not found for rule"));
                        return;
                    }
                    if v == "0" {
                        problem(self, "table 0 is not valid".into());
                        return;
                    }
                    if action {
                        problem(self, "more than one action for the rule".into());
                        return;
                    }
                    action = true;
                }
                "preference" | "order" | "priority" => {
                    i += 1;
                    if value(i).and_then(|v| v.parse::<u32>().ok()).is_none() {
                        problem(
                            self,
                            format!("invalid rule preference {}", value(i).unwrap_or("")),
                        );
                        return;
                    }
                    preference = true;
                }
                "realms"
                | "suppress_prefixlength"
                | "sup_pl"
                | "suppress_ifgroup"
                | "sup_group" => {
                    i += 1;
                    table_option = true;
                }
                "tos" | "dsfield" | "fwmark" | "tunnel-id" | "uidrange" | "protocol"
                | "ipproto" | "sport" | "dport" => i += 1,
                "dev" | "iif" | "oif" => {
                    i += 1;
                    let name = value(i).unwrap_or("");
                    if self.vrrp_interface(name, &at) == InterfaceKind::Missing {
                        problem(
                            self,
                            format!("interface {name} for the rule does not exist"),
                        );
                        return;
                    }
                }
                "track_group" if block == RouteBlock::Static => i += 1,
                _ => {
                    let verb = if word == "type" {
                        i += 1;
                        value(i).unwrap_or("")
                    } else {
                        word
                    };
                    match verb {
                        "goto" => {
                            i += 1;
                            if value(i).and_then(|v| v.parse::<u32>().ok()).is_none() {
                                problem(
                                    self,
                                    format!("invalid goto target {}", value(i).unwrap_or("")),
                                );
                                return;
                            }
                            goto = true;
                        }
                        "nop" | "blackhole" | "unreachable" | "prohibit" => {}
                        t if ROUTE_TYPES.contains(&t) => {
                            problem(self, format!("invalid rule action {t}"));
                            return;
                        }
                        other => {
                            problem(self, format!("unknown rule option {other}"));
                            return;
                        }
                    }
                    if action {
                        problem(self, "more than one action for the rule".into());
                        return;
                    }
                    action = true;
                }
            }
            i += 1;
        }
        if goto && !preference {
            problem(self, "a goto rule needs a preference".into());
            return;
        }
        if !action {
            problem(self, "no action given for the rule; ignored".into());
            return;
        }
        if table_option && goto {
            problem(
                self,
                "suppressor/realm given for a non-table action; skipped".into(),
            );
            return;
        }
        if !preference {
            problem(
                self,
                "rule has no preference: keepalived picks one for it (give a priority)".into(),
            );
        }
    }
}
