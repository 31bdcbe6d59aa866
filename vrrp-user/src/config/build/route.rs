//! Routes and rules as keepalived's `alloc_route` and `alloc_rule` read them:
//! `virtual_routes`/`virtual_rules` in an instance and `static_routes`/`static_rules` at
//! the top level. Each line is checked as keepalived checks it and resolved into what
//! `ip route add` / `ip rule add` would send. xvrrpd installs the virtual ones while
//! master and the static ones while it runs; an option it cannot install is an error at
//! its line (the route or rule would be missing where keepalived has it).

use std::net::IpAddr;

use super::Builder;
use crate::config::diagnostic::{Location, Severity, Verdict};
use crate::config::host::InterfaceKind;
use crate::config::lexer::Token;
use crate::config::model::{
    Family, Prefix, RouteAdd, RouteKind, RuleAction, VirtualRoute, VirtualRule, RTPROT_KEEPALIVED,
};
use crate::config::syntax::Node;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RouteBlock {
    /// `virtual_routes`/`virtual_rules` of an instance.
    Virtual,
    /// `static_routes`/`static_rules` (they also take `track_group`).
    Static,
}

/// Route types iproute2 knows (`ip route add TYPE PREFIX`), and the kind xvrrpd installs
/// for each it supports.
const ROUTE_TYPES: &[(&str, Option<RouteKind>)] = &[
    ("unicast", Some(RouteKind::Unicast)),
    ("local", None),
    ("broadcast", None),
    ("multicast", None),
    ("throw", Some(RouteKind::Throw)),
    ("unreachable", Some(RouteKind::Unreachable)),
    ("prohibit", Some(RouteKind::Prohibit)),
    ("blackhole", Some(RouteKind::Blackhole)),
    ("nat", None),
    ("anycast", None),
];
/// iproute2's `rt_scopes` names.
const SCOPES: &[(&str, u8)] = &[
    ("global", 0),
    ("universe", 0),
    ("site", 200),
    ("link", 253),
    ("host", 254),
    ("nowhere", 255),
];
/// iproute2's `rt_protos` names.
const PROTOCOLS: &[(&str, u8)] = &[
    ("unspec", 0),
    ("redirect", 1),
    ("kernel", 2),
    ("boot", 3),
    ("static", 4),
    ("gated", 8),
    ("ra", 9),
    ("mrt", 10),
    ("zebra", 11),
    ("bird", 12),
    ("dnrouted", 13),
    ("xorp", 14),
    ("ntk", 15),
    ("dhcp", 16),
    ("keepalived", 18),
    ("babel", 42),
    ("bgp", 186),
    ("isis", 187),
    ("ospf", 188),
    ("rip", 189),
    ("eigrp", 192),
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

/// `RULE_START_PRIORITY`: keepalived numbers rules without a preference down from here.
const RULE_START_PRIORITY: u32 = 16384;

/// One address as keepalived's `parse_ipaddress` takes it (`/len` only where allowed);
/// without a length it is a host prefix.
fn prefix(text: &str, allow_prefix: bool) -> Option<Prefix> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) if allow_prefix => (a, Some(l)),
        Some(_) => return None,
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match len.map(str::parse::<u8>) {
        None => Some(Prefix { addr, len: max }),
        Some(Ok(len)) if len <= max => Some(Prefix { addr, len }),
        Some(_) => None,
    }
}

fn address(text: &str) -> Option<IpAddr> {
    prefix(text, false).map(|p| p.addr)
}

/// `default`/`any`/`all` (and `default6`): the whole address space of the family.
fn any_prefix(family: Family) -> Prefix {
    let addr = match family {
        Family::V4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    };
    Prefix { addr, len: 0 }
}

/// A TOS/dsfield value: hex as iproute2 writes it, with or without 0x.
fn tos(text: &str) -> Option<u8> {
    u8::from_str_radix(text.trim_start_matches("0x"), 16).ok()
}

/// The family of a route or rule: the first address decides, the rest must agree.
#[derive(Default)]
struct FamilyOf(Option<Family>);

impl FamilyOf {
    fn agrees(&mut self, addr: &IpAddr) -> bool {
        let f = Family::of(addr);
        match self.0 {
            None => {
                self.0 = Some(f);
                true
            }
            Some(had) => had == f,
        }
    }
}

impl Builder<'_> {
    /// `virtual_routes { ... }` / `static_routes { ... }`.
    pub(super) fn routes(&mut self, node: &Node, block: RouteBlock) -> Vec<VirtualRoute> {
        self.value_block_args(node);
        let mut routes = Vec::new();
        for line in node.children() {
            let words: Vec<&Token> = line.words().collect();
            routes.extend(self.route(&words, block, node.name()));
        }
        routes
    }

    /// `virtual_rules { ... }` / `static_rules { ... }`.
    pub(super) fn rules(&mut self, node: &Node, block: RouteBlock) -> Vec<VirtualRule> {
        self.value_block_args(node);
        let mut rules = Vec::new();
        for line in node.children() {
            let words: Vec<&Token> = line.words().collect();
            rules.extend(self.rule(&words, block, node.name()));
        }
        rules
    }

    /// What xvrrpd cannot install: an error, since the route or rule would be missing
    /// where keepalived has it.
    fn not_installable(&mut self, at: &Location, kw: &str, block: RouteBlock, what: String) {
        let place = match block {
            RouteBlock::Virtual => "on the master",
            RouteBlock::Static => "on this host",
        };
        self.d.push(
            Severity::Error,
            Verdict::Silent,
            at,
            kw,
            format!("{what} is not supported by xvrrpd: it would be missing {place} (keepalived installs it); remove it or stay on keepalived"),
        );
    }

    fn route(&mut self, words: &[&Token], block: RouteBlock, kw: &str) -> Option<VirtualRoute> {
        let at = words[0].at.clone();
        let problem = |b: &mut Self, message: String| b.d.warn(&at, kw, message);
        let mut family = FamilyOf::default();
        let mut route = VirtualRoute {
            kind: RouteKind::Unicast,
            destination: any_prefix(Family::V4),
            source: None,
            from: None,
            via: None,
            dev: None,
            scope: None,
            table: 254,
            metric: None,
            tos: 0,
            protocol: None,
            onlink: false,
            how: RouteAdd::Prepend,
            no_track: false,
        };
        let mut destination: Option<(String, Option<Prefix>)> = None;
        let mut installable = true;
        let mut i = 0;
        let value = |i: usize| words.get(i).map(|t| t.text.as_str());
        while i < words.len() {
            let word = words[i].text.as_str();
            match word {
                "inet" | "inet6" => {}
                "src" => {
                    i += 1;
                    match value(i).and_then(address) {
                        Some(a) if family.agrees(&a) => route.source = Some(a),
                        Some(_) => {
                            problem(self, "cannot mix IPv4 and IPv6 addresses in a route".into());
                            return None;
                        }
                        None => {
                            problem(
                                self,
                                format!("invalid route src address {}", value(i).unwrap_or("")),
                            );
                            return None;
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
                    match value(i).and_then(address) {
                        Some(a) if family.agrees(&a) => route.via = Some(a),
                        Some(_) => {
                            problem(self, "cannot mix IPv4 and IPv6 addresses in a route".into());
                            return None;
                        }
                        None => {
                            problem(
                                self,
                                format!("invalid route via address {}", value(i).unwrap_or("")),
                            );
                            return None;
                        }
                    }
                }
                "from" => {
                    i += 1;
                    match value(i).and_then(|v| prefix(v, true)) {
                        Some(p) if p.addr.is_ipv6() => {
                            if !family.agrees(&p.addr) {
                                problem(
                                    self,
                                    "cannot mix IPv4 and IPv6 addresses in a route".into(),
                                );
                                return None;
                            }
                            route.from = Some(p);
                        }
                        Some(_) => {
                            problem(self, "route from address only supported with IPv6".into());
                            return None;
                        }
                        None => {
                            problem(
                                self,
                                format!("invalid route from address {}", value(i).unwrap_or("")),
                            );
                            return None;
                        }
                    }
                }
                "tos" | "dsfield" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    match tos(v) {
                        Some(t) => route.tos = t,
                        None => {
                            problem(self, format!("TOS value {v} is invalid"));
                            return None;
                        }
                    }
                }
                "table" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    match self.host.routing_table(v) {
                        Some(t) => route.table = t,
                        None => {
                            problem(self, format!("routing table {v} not found for route"));
                            return None;
                        }
                    }
                }
                "protocol" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    let number = PROTOCOLS
                        .iter()
                        .find(|(n, _)| *n == v)
                        .map(|(_, p)| *p)
                        .or_else(|| v.parse::<u8>().ok());
                    match number {
                        Some(p) => route.protocol = Some(p),
                        None => {
                            problem(self, format!("protocol {v} not found or invalid for route"));
                            return None;
                        }
                    }
                }
                "scope" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    let number = SCOPES
                        .iter()
                        .find(|(n, _)| *n == v)
                        .map(|(_, s)| *s)
                        .or_else(|| v.parse::<u8>().ok());
                    match number {
                        Some(s) => route.scope = Some(s),
                        None => {
                            problem(self, format!("scope {v} not found or invalid for route"));
                            return None;
                        }
                    }
                }
                "metric" | "priority" | "preference" => {
                    i += 1;
                    match value(i).and_then(|v| v.parse::<u32>().ok()) {
                        Some(m) => route.metric = Some(m),
                        None => {
                            problem(
                                self,
                                format!("invalid metric {} for route", value(i).unwrap_or("")),
                            );
                            return None;
                        }
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
                        return None;
                    }
                    route.dev = Some(name.to_string());
                }
                "onlink" => route.onlink = true,
                "add" => route.how = RouteAdd::Add,
                "prepend" => route.how = RouteAdd::Prepend,
                "append" => route.how = RouteAdd::Append,
                "no_track" => route.no_track = true,
                "or" => {
                    problem(
                        self,
                        "\"or\" for routes is deprecated; use \"nexthop\"".into(),
                    );
                    i += 1;
                    if value(i).and_then(address).is_none() {
                        problem(
                            self,
                            format!("invalid \"or\" address {}", value(i).unwrap_or("")),
                        );
                        return None;
                    }
                    self.not_installable(
                        &at,
                        kw,
                        block,
                        "a route with alternative gateways (or)".into(),
                    );
                    installable = false;
                }
                "nexthop" => {
                    // The rest of the line is next hops.
                    self.not_installable(&at, kw, block, "a multipath route (nexthop)".into());
                    installable = false;
                    break;
                }
                "encap" => {
                    self.not_installable(&at, kw, block, "route encapsulation (encap)".into());
                    installable = false;
                    break;
                }
                "track_group" if block == RouteBlock::Static => {
                    i += 1;
                    self.d.lint(
                        &at,
                        kw,
                        "track_group is not applied by xvrrpd: no instance tracks this route",
                    );
                }
                metric if ROUTE_METRICS.contains(&metric) => {
                    i += 1;
                    if value(i) == Some("lock") {
                        i += 1;
                    }
                    self.not_installable(&at, kw, block, format!("route option {metric}"));
                    installable = false;
                }
                _ => {
                    if word == "to" {
                        i += 1;
                    }
                    if let Some((name, kind)) = value(i)
                        .and_then(|t| ROUTE_TYPES.iter().find(|(n, _)| *n == t))
                        .copied()
                    {
                        match kind {
                            Some(kind) => route.kind = kind,
                            None => {
                                self.not_installable(&at, kw, block, format!("route type {name}"));
                                installable = false;
                            }
                        }
                        i += 1;
                    }
                    let dest = value(i).unwrap_or("");
                    let special = matches!(dest, "default" | "any" | "all" | "default6");
                    match prefix(dest, true) {
                        Some(p) if !family.agrees(&p.addr) => {
                            problem(self, "cannot mix IPv4 and IPv6 addresses in a route".into());
                            return None;
                        }
                        Some(p) => destination = Some((dest.to_string(), Some(p))),
                        None if special => {
                            if dest == "default6" {
                                family.agrees(&any_prefix(Family::V6).addr);
                            }
                            destination = Some((dest.to_string(), None));
                        }
                        None => {
                            problem(self, format!("unknown route keyword {dest}"));
                            return None;
                        }
                    }
                }
            }
            i += 1;
        }
        let Some((written, dest)) = destination else {
            problem(self, "route must have a destination".into());
            return None;
        };
        route.destination = dest.unwrap_or_else(|| any_prefix(family.0.unwrap_or(Family::V4)));
        if !route.no_track {
            if route.protocol.is_some_and(|p| p != RTPROT_KEEPALIVED) {
                // keepalived tracks its routes by protocol.
                problem(
                    self,
                    "a tracked route must have protocol keepalived; resetting protocol".into(),
                );
            }
            route.protocol = Some(RTPROT_KEEPALIVED);
            if route.dev.is_none() {
                problem(
                    self,
                    format!("cannot track route {written} without a dev: keepalived does not track it (add dev, or no_track)"),
                );
                route.no_track = true;
            }
        }
        installable.then_some(route)
    }

    fn rule(&mut self, words: &[&Token], block: RouteBlock, kw: &str) -> Option<VirtualRule> {
        let at = words[0].at.clone();
        let problem = |b: &mut Self, message: String| b.d.warn(&at, kw, message);
        let mut family = FamilyOf::default();
        let mut action: Option<RuleAction> = None;
        let mut rule = VirtualRule {
            family: Family::V4,
            from: None,
            to: None,
            priority: 0,
            action: RuleAction::Nop,
            fwmark: None,
            fwmask: None,
            iif: None,
            oif: None,
            invert: false,
            tos: 0,
            protocol: None,
            no_track: false,
        };
        let mut table_option = false;
        let mut preference: Option<u32> = None;
        let mut goto = false;
        let mut installable = true;
        let mut i = 0;
        let value = |i: usize| words.get(i).map(|t| t.text.as_str());
        let mut set_action = |b: &mut Self, a: RuleAction| -> bool {
            if action.is_some() {
                b.d.warn(&at, kw, "more than one action for the rule");
                return false;
            }
            action = Some(a);
            true
        };
        while i < words.len() {
            let word = words[i].text.as_str();
            match word {
                "inet" => {
                    family.agrees(&any_prefix(Family::V4).addr);
                }
                "inet6" => {
                    family.agrees(&any_prefix(Family::V6).addr);
                }
                "not" => rule.invert = true,
                "no_track" => rule.no_track = true,
                "l3mdev" => {
                    self.not_installable(&at, kw, block, "rule option l3mdev".into());
                    installable = false;
                    if !set_action(self, RuleAction::Nop) {
                        return None;
                    }
                }
                "from" | "to" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    let p = if v == "all" {
                        None
                    } else {
                        match prefix(v, true) {
                            Some(p) => Some(p),
                            None => {
                                problem(self, format!("invalid rule {word} address {v}"));
                                return None;
                            }
                        }
                    };
                    if let Some(p) = p {
                        if !family.agrees(&p.addr) {
                            problem(self, "rule specification has mixed IPv4 and IPv6".into());
                            return None;
                        }
                    }
                    if word == "from" {
                        rule.from = p;
                    } else {
                        rule.to = p;
                    }
                }
                "table" | "lookup" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    let Some(table) = self.host.routing_table(v) else {
                        problem(self, format!("routing table {v} not found for rule"));
                        return None;
                    };
                    if table == 0 {
                        problem(self, "table 0 is not valid".into());
                        return None;
                    }
                    if !set_action(self, RuleAction::Table(table)) {
                        return None;
                    }
                }
                "preference" | "order" | "priority" => {
                    i += 1;
                    match value(i).and_then(|v| v.parse::<u32>().ok()) {
                        Some(p) => preference = Some(p),
                        None => {
                            problem(
                                self,
                                format!("invalid rule preference {}", value(i).unwrap_or("")),
                            );
                            return None;
                        }
                    }
                }
                "tos" | "dsfield" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    match tos(v) {
                        Some(t) => rule.tos = t,
                        None => {
                            problem(self, format!("TOS value {v} is invalid"));
                            return None;
                        }
                    }
                }
                "fwmark" => {
                    i += 1;
                    let v = value(i).unwrap_or("");
                    let number = |s: &str| match s.strip_prefix("0x") {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => s.parse::<u32>().ok(),
                    };
                    let (mark, mask) = match v.split_once('/') {
                        Some((m, k)) => (number(m), number(k).map(Some)),
                        None => (number(v), Some(None)),
                    };
                    match (mark, mask) {
                        (Some(mark), Some(mask)) => {
                            rule.fwmark = Some(mark);
                            rule.fwmask = mask;
                        }
                        _ => {
                            problem(self, format!("invalid rule fwmark {v}"));
                            return None;
                        }
                    }
                }
                "protocol" => {
                    i += 1;
                    match value(i).and_then(|v| v.parse::<u8>().ok()) {
                        Some(p) => rule.protocol = Some(p),
                        None => {
                            problem(self, format!("invalid protocol {}", value(i).unwrap_or("")));
                            return None;
                        }
                    }
                }
                "realms"
                | "suppress_prefixlength"
                | "sup_pl"
                | "suppress_ifgroup"
                | "sup_group" => {
                    i += 1;
                    table_option = true;
                    self.not_installable(&at, kw, block, format!("rule option {word}"));
                    installable = false;
                }
                "tunnel-id" | "uidrange" | "ipproto" | "sport" | "dport" => {
                    i += 1;
                    self.not_installable(&at, kw, block, format!("rule option {word}"));
                    installable = false;
                }
                "dev" | "iif" | "oif" => {
                    i += 1;
                    let name = value(i).unwrap_or("");
                    if self.vrrp_interface(name, &at) == InterfaceKind::Missing {
                        problem(
                            self,
                            format!("interface {name} for the rule does not exist"),
                        );
                        return None;
                    }
                    if word == "oif" {
                        rule.oif = Some(name.to_string());
                    } else {
                        rule.iif = Some(name.to_string());
                    }
                }
                "track_group" if block == RouteBlock::Static => {
                    i += 1;
                    self.d.lint(
                        &at,
                        kw,
                        "track_group is not applied by xvrrpd: no instance tracks this rule",
                    );
                }
                _ => {
                    let verb = if word == "type" {
                        i += 1;
                        value(i).unwrap_or("")
                    } else {
                        word
                    };
                    let a = match verb {
                        "goto" => {
                            i += 1;
                            match value(i).and_then(|v| v.parse::<u32>().ok()) {
                                Some(target) => {
                                    goto = true;
                                    RuleAction::Goto(target)
                                }
                                None => {
                                    problem(
                                        self,
                                        format!("invalid goto target {}", value(i).unwrap_or("")),
                                    );
                                    return None;
                                }
                            }
                        }
                        "nop" => RuleAction::Nop,
                        "blackhole" => RuleAction::Blackhole,
                        "unreachable" => RuleAction::Unreachable,
                        "prohibit" => RuleAction::Prohibit,
                        t if ROUTE_TYPES.iter().any(|(n, _)| *n == t) => {
                            problem(self, format!("invalid rule action {t}"));
                            return None;
                        }
                        other => {
                            problem(self, format!("unknown rule option {other}"));
                            return None;
                        }
                    };
                    if !set_action(self, a) {
                        return None;
                    }
                }
            }
            i += 1;
        }
        if goto && preference.is_none() {
            problem(self, "a goto rule needs a preference".into());
            return None;
        }
        let Some(action) = action else {
            problem(self, "no action given for the rule; ignored".into());
            return None;
        };
        if table_option && goto {
            problem(
                self,
                "suppressor/realm given for a non-table action; skipped".into(),
            );
            return None;
        }
        rule.action = action;
        rule.family = family.0.unwrap_or(Family::V4);
        if !rule.no_track {
            if rule.protocol.is_some_and(|p| p != RTPROT_KEEPALIVED) {
                problem(
                    self,
                    "a tracked rule must have protocol keepalived; resetting protocol".into(),
                );
            }
            rule.protocol = Some(RTPROT_KEEPALIVED);
        }
        rule.priority = match preference {
            Some(p) => p,
            None => {
                // keepalived numbers them down from 16384 per family, in file order.
                let next = match rule.family {
                    Family::V4 => &mut self.next_rule_priority.0,
                    Family::V6 => &mut self.next_rule_priority.1,
                };
                let p = *next;
                *next = next.saturating_sub(1);
                problem(
                    self,
                    format!("rule has no preference: keepalived gives it {p} (give a priority)"),
                );
                p
            }
        };
        installable.then_some(rule)
    }
}

/// The first priority keepalived gives rules without one, per family.
pub(super) fn first_rule_priorities() -> (u32, u32) {
    (RULE_START_PRIORITY, RULE_START_PRIORITY)
}
