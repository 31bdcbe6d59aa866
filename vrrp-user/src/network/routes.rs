//! Routes and policy rules over rtnetlink: `virtual_routes` and `virtual_rules`
//! as keepalived installs them while master.
//!
//! [`Route`] and [`Rule`] are what the kernel is sent, interfaces already
//! resolved to indexes (routes) or names (rules, which the kernel matches by
//! name). Adding is idempotent like VIPs: a route or rule already there is
//! adopted; deleting an absent one is success. [`Route::matches`] and
//! [`Rule::matches`] recognise a kernel deletion notice as ours the way
//! keepalived's `route_is_ours` and `compare_rule` do.

use std::net::IpAddr;

use futures::StreamExt;
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::{
    route::{
        RouteAddress, RouteAttribute, RouteFlag, RouteHeader, RouteMessage, RouteProtocol,
        RouteScope, RouteType,
    },
    rule::{RuleAction, RuleAttribute, RuleFlag, RuleMessage},
    AddressFamily, RouteNetlinkMessage,
};

use super::{
    netlink::{AddOutcome, DelOutcome, Netlink, NetlinkError},
    Family,
};

/// `RTN_*` route types.
pub mod kind {
    pub const UNICAST: u8 = 1;
    pub const BLACKHOLE: u8 = 6;
    pub const UNREACHABLE: u8 = 7;
    pub const PROHIBIT: u8 = 8;
    pub const THROW: u8 = 9;
}

/// `FR_ACT_*` rule actions.
pub mod action {
    pub const TO_TABLE: u8 = 1;
    pub const GOTO: u8 = 2;
    pub const NOP: u8 = 3;
    pub const BLACKHOLE: u8 = 6;
    pub const UNREACHABLE: u8 = 7;
    pub const PROHIBIT: u8 = 8;
}

/// `RT_TABLE_MAIN`.
pub const MAIN_TABLE: u32 = 254;

/// An address with a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Net {
    pub addr: IpAddr,
    pub len: u8,
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A route as the kernel is asked to add it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub kind: u8,
    pub destination: Net,
    /// `from` (IPv6 source routing).
    pub from: Option<Net>,
    /// `src`: preferred source.
    pub pref_src: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// `None`: universe, as keepalived sends it.
    pub scope: Option<u8>,
    pub table: u32,
    pub metric: Option<u32>,
    pub tos: u8,
    /// keepalived's 18 unless configured otherwise (untracked routes only).
    pub protocol: u8,
    pub onlink: bool,
    /// Next to a matching route of another gateway: before it (keepalived's
    /// default), fail (`add`), or after it (`append`).
    pub how: AddHow,
}

/// `ip route prepend` (NLM_F_CREATE), `add` (| NLM_F_EXCL), `append` (| NLM_F_APPEND).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddHow {
    Prepend,
    Add,
    Append,
}

impl Route {
    pub fn family(&self) -> Family {
        Family::of(&self.destination.addr)
    }

    fn message(&self) -> RouteMessage {
        let mut msg = RouteMessage::default();
        let h = &mut msg.header;
        h.address_family = address_family(self.family());
        h.destination_prefix_length = self.destination.len;
        h.tos = self.tos;
        h.protocol = RouteProtocol::from(self.protocol);
        h.scope = RouteScope::from(self.scope.unwrap_or(0));
        h.kind = RouteType::from(self.kind);
        if self.onlink {
            h.flags.push(RouteFlag::Onlink);
        }
        if self.table < 256 {
            h.table = self.table as u8;
        } else {
            h.table = RouteHeader::RT_TABLE_UNSPEC;
            msg.attributes.push(RouteAttribute::Table(self.table));
        }
        msg.attributes
            .push(RouteAttribute::Destination(route_address(
                self.destination.addr,
            )));
        if let Some(from) = self.from {
            msg.header.source_prefix_length = from.len;
            msg.attributes
                .push(RouteAttribute::Source(route_address(from.addr)));
        }
        if let Some(src) = self.pref_src {
            msg.attributes
                .push(RouteAttribute::PrefSource(route_address(src)));
        }
        if let Some(gw) = self.gateway {
            msg.attributes
                .push(RouteAttribute::Gateway(route_address(gw)));
        }
        if let Some(oif) = self.oif {
            msg.attributes.push(RouteAttribute::Oif(oif));
        }
        if let Some(metric) = self.metric {
            msg.attributes.push(RouteAttribute::Priority(metric));
        }
        msg
    }

    /// Whether a kernel route message is this route (keepalived's
    /// `route_is_ours`: table, family, prefix, metric, tos, interface, destination).
    pub fn matches(&self, msg: &RouteMessage) -> bool {
        let h = &msg.header;
        let mut table = u32::from(h.table);
        let mut metric = 0;
        let mut oif = None;
        let mut dst = None;
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Priority(p) => metric = *p,
                RouteAttribute::Oif(o) => oif = Some(*o),
                RouteAttribute::Destination(d) => dst = ip_of(d),
                _ => {}
            }
        }
        let family = address_family(self.family());
        let dst = dst.unwrap_or(match self.family() {
            Family::V4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        });
        h.address_family == family
            && table == self.table
            && h.destination_prefix_length == self.destination.len
            && metric == self.metric.unwrap_or(default_metric(self.family()))
            && h.tos == self.tos
            && (self.oif.is_none() || oif == self.oif)
            && dst == self.destination.addr
    }
}

impl std::fmt::Display for Route {
    /// As `ip route` would write it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            kind::BLACKHOLE => "blackhole ",
            kind::UNREACHABLE => "unreachable ",
            kind::PROHIBIT => "prohibit ",
            kind::THROW => "throw ",
            _ => "",
        };
        write!(f, "{kind}{}", self.destination)?;
        if let Some(from) = self.from {
            write!(f, " from {from}")?;
        }
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(oif) = self.oif {
            write!(f, " oif {oif}")?;
        }
        if let Some(src) = self.pref_src {
            write!(f, " src {src}")?;
        }
        if self.table != MAIN_TABLE {
            write!(f, " table {}", self.table)?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        Ok(())
    }
}

/// A policy rule as the kernel is asked to add it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    pub family: Family,
    pub from: Option<Net>,
    pub to: Option<Net>,
    pub priority: u32,
    pub action: u8,
    /// For `TO_TABLE`.
    pub table: u32,
    /// For `GOTO`.
    pub goto: Option<u32>,
    pub fwmark: Option<u32>,
    pub fwmask: Option<u32>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub invert: bool,
    pub tos: u8,
    pub protocol: Option<u8>,
}

impl Rule {
    fn message(&self) -> RuleMessage {
        let mut msg = RuleMessage::default();
        let h = &mut msg.header;
        h.family = address_family(self.family);
        h.tos = self.tos;
        h.action = RuleAction::from(self.action);
        if self.invert {
            h.flags.push(RuleFlag::Invert);
        }
        if self.action == action::TO_TABLE {
            if self.table < 256 {
                h.table = self.table as u8;
            } else {
                msg.attributes.push(RuleAttribute::Table(self.table));
            }
        }
        if let Some(from) = self.from {
            msg.header.src_len = from.len;
            msg.attributes.push(RuleAttribute::Source(from.addr));
        }
        if let Some(to) = self.to {
            msg.header.dst_len = to.len;
            msg.attributes.push(RuleAttribute::Destination(to.addr));
        }
        msg.attributes.push(RuleAttribute::Priority(self.priority));
        if let Some(mark) = self.fwmark {
            msg.attributes.push(RuleAttribute::FwMark(mark));
        }
        if let Some(mask) = self.fwmask {
            msg.attributes.push(RuleAttribute::FwMask(mask));
        }
        if let Some(iif) = &self.iif {
            msg.attributes.push(RuleAttribute::Iifname(iif.clone()));
        }
        if let Some(oif) = &self.oif {
            msg.attributes.push(RuleAttribute::Oifname(oif.clone()));
        }
        if let Some(goto) = self.goto {
            msg.attributes.push(RuleAttribute::Goto(goto));
        }
        if let Some(p) = self.protocol {
            msg.attributes
                .push(RuleAttribute::Protocol(RouteProtocol::from(p)));
        }
        msg
    }

    /// Whether a kernel rule message is this rule (keepalived's `compare_rule`,
    /// on the fields xvrrpd sets).
    pub fn matches(&self, msg: &RuleMessage) -> bool {
        let h = &msg.header;
        let mut priority = None;
        let mut table = u32::from(h.table);
        let (mut src, mut dst, mut mark, mut mask) = (None, None, None, None);
        let (mut iif, mut oif, mut goto) = (None, None, None);
        for attr in &msg.attributes {
            match attr {
                RuleAttribute::Priority(p) => priority = Some(*p),
                RuleAttribute::Table(t) => table = *t,
                RuleAttribute::Source(a) => src = Some(*a),
                RuleAttribute::Destination(a) => dst = Some(*a),
                RuleAttribute::FwMark(m) => mark = Some(*m),
                RuleAttribute::FwMask(m) => mask = Some(*m),
                RuleAttribute::Iifname(n) => iif = Some(n.as_str()),
                RuleAttribute::Oifname(n) => oif = Some(n.as_str()),
                RuleAttribute::Goto(g) => goto = Some(*g),
                _ => {}
            }
        }
        let net = |a: Option<IpAddr>, len: u8| a.map(|addr| Net { addr, len });
        let invert = h.flags.contains(&RuleFlag::Invert);
        // The kernel reports a mark without a mask with mask 0xffffffff.
        let mask_ok = match self.fwmask {
            Some(m) => mask == Some(m),
            None => mask.is_none_or(|m| m == u32::MAX),
        };
        h.family == address_family(self.family)
            && priority == Some(self.priority)
            && u8::from(h.action) == self.action
            && (self.action != action::TO_TABLE || table == self.table)
            && (self.action != action::GOTO || goto == self.goto)
            && invert == self.invert
            && h.tos == self.tos
            && net(src, h.src_len) == self.from
            && net(dst, h.dst_len) == self.to
            && mark == self.fwmark
            && mask_ok
            && iif == self.iif.as_deref()
            && oif == self.oif.as_deref()
    }
}

impl std::fmt::Display for Rule {
    /// As `ip rule` would write it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:", self.priority)?;
        if self.invert {
            write!(f, " not")?;
        }
        match self.from {
            Some(from) => write!(f, " from {from}")?,
            None => write!(f, " from all")?,
        }
        if let Some(to) = self.to {
            write!(f, " to {to}")?;
        }
        if let Some(mark) = self.fwmark {
            write!(f, " fwmark {mark:#x}")?;
        }
        if let Some(iif) = &self.iif {
            write!(f, " iif {iif}")?;
        }
        if let Some(oif) = &self.oif {
            write!(f, " oif {oif}")?;
        }
        match self.action {
            action::TO_TABLE => write!(f, " lookup {}", self.table),
            action::GOTO => write!(f, " goto {}", self.goto.unwrap_or(0)),
            action::BLACKHOLE => write!(f, " blackhole"),
            action::UNREACHABLE => write!(f, " unreachable"),
            action::PROHIBIT => write!(f, " prohibit"),
            _ => write!(f, " nop"),
        }
    }
}

/// The metric the kernel gives a route added without one: IPv6 routes get
/// 1024 (IP6_RT_PRIO_USER). keepalived compares with 0 and so misses the
/// deletion of such an IPv6 route; xvrrpd notices it.
fn default_metric(family: Family) -> u32 {
    match family {
        Family::V4 => 0,
        Family::V6 => 1024,
    }
}

fn address_family(family: Family) -> AddressFamily {
    match family {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    }
}

fn route_address(addr: IpAddr) -> RouteAddress {
    match addr {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

impl Netlink {
    /// Adds `route` as keepalived does (prepended unless `add`/`append`); the
    /// same route already there is adopted.
    pub async fn add_route(&self, route: &Route) -> Result<AddOutcome, NetlinkError> {
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewRoute(route.message()));
        let how = match route.how {
            AddHow::Prepend => 0,
            AddHow::Add => NLM_F_EXCL,
            AddHow::Append => NLM_F_APPEND,
        };
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | how;
        let result = async {
            let mut response = self.handle().clone().request(req)?;
            while let Some(msg) = response.next().await {
                if let NetlinkPayload::Error(e) = msg.payload {
                    if e.code.is_some() {
                        return Err(rtnetlink::Error::NetlinkError(e));
                    }
                }
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(AddOutcome::Added),
            Err(e) => match NetlinkError::from_rtnl("RTM_NEWROUTE", route.to_string(), e) {
                e if e.errno() == Some(libc::EEXIST) => Ok(AddOutcome::AlreadyPresent),
                e => Err(e),
            },
        }
    }

    /// Deletes `route`; an absent one (or one whose interface is gone) is success.
    pub async fn del_route(&self, route: &Route) -> Result<DelOutcome, NetlinkError> {
        let mut msg = route.message();
        // As keepalived: any scope matches on delete.
        msg.header.scope = RouteScope::NoWhere;
        match self.handle().route().del(msg).execute().await {
            Ok(()) => Ok(DelOutcome::Removed),
            Err(e) => match NetlinkError::from_rtnl("RTM_DELROUTE", route.to_string(), e) {
                e if matches!(e.errno(), Some(libc::ESRCH | libc::ENOENT | libc::ENODEV)) => {
                    Ok(DelOutcome::Absent)
                }
                e => Err(e),
            },
        }
    }

    /// Adds `rule`; one already there is adopted.
    pub async fn add_rule(&self, rule: &Rule) -> Result<AddOutcome, NetlinkError> {
        let mut request = self.handle().rule().add();
        *request.message_mut() = rule.message();
        match request.execute().await {
            Ok(()) => Ok(AddOutcome::Added),
            Err(e) => match NetlinkError::from_rtnl("RTM_NEWRULE", rule.to_string(), e) {
                e if e.errno() == Some(libc::EEXIST) => Ok(AddOutcome::AlreadyPresent),
                e => Err(e),
            },
        }
    }

    /// Deletes `rule`; an absent one is success.
    pub async fn del_rule(&self, rule: &Rule) -> Result<DelOutcome, NetlinkError> {
        match self.handle().rule().del(rule.message()).execute().await {
            Ok(()) => Ok(DelOutcome::Removed),
            Err(e) => match NetlinkError::from_rtnl("RTM_DELRULE", rule.to_string(), e) {
                e if matches!(e.errno(), Some(libc::ENOENT | libc::ESRCH)) => {
                    Ok(DelOutcome::Absent)
                }
                e => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{process::Command, time::Duration};

    use futures::StreamExt;

    use super::*;
    use crate::network::{
        monitor::{Deletion, Deletions},
        testns::VethPair,
    };

    fn net(text: &str) -> Net {
        let (a, l) = text.split_once('/').unwrap();
        Net {
            addr: a.parse().unwrap(),
            len: l.parse().unwrap(),
        }
    }

    fn route(destination: &str) -> Route {
        Route {
            kind: kind::UNICAST,
            destination: net(destination),
            from: None,
            pref_src: None,
            gateway: None,
            oif: None,
            scope: None,
            table: MAIN_TABLE,
            metric: None,
            tos: 0,
            protocol: 18,
            onlink: false,
            how: AddHow::Prepend,
        }
    }

    fn rule(priority: u32, action: u8) -> Rule {
        Rule {
            family: Family::V4,
            from: None,
            to: None,
            priority,
            action,
            table: 0,
            goto: None,
            fwmark: None,
            fwmask: None,
            iif: None,
            oif: None,
            invert: false,
            tos: 0,
            protocol: Some(18),
        }
    }

    #[test]
    fn routes_and_rules_in_the_kernel_and_their_deletions_recognised() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        let ns = pair.a.name.clone();
        pair.a
            .ip(&["addr", "add", "192.0.2.1/24", "dev", &pair.a_if]);
        pair.a.ip(&[
            "addr",
            "add",
            "2001:db8:1::1/64",
            "dev",
            &pair.a_if,
            "nodad",
        ]);
        let a_if = pair.a_if.clone();
        let (shown, deleted) = pair.a.run(move || async move {
            let nl = Netlink::new().unwrap();
            let ifindex = nl.link_by_name(&a_if).await.unwrap().ifindex;
            let routes = vec![
                Route {
                    gateway: Some("192.0.2.254".parse().unwrap()),
                    oif: Some(ifindex),
                    pref_src: Some("192.0.2.1".parse().unwrap()),
                    table: 100,
                    metric: Some(7),
                    tos: 0x10,
                    ..route("198.51.100.0/24")
                },
                Route {
                    kind: kind::BLACKHOLE,
                    metric: Some(3),
                    ..route("203.0.113.0/24")
                },
                Route {
                    kind: kind::UNREACHABLE,
                    table: 101,
                    ..route("10.9.0.0/16")
                },
                Route {
                    kind: kind::PROHIBIT,
                    table: 101,
                    ..route("10.8.0.0/16")
                },
                Route {
                    kind: kind::THROW,
                    table: 101,
                    ..route("10.7.0.0/16")
                },
                Route {
                    gateway: Some("192.0.2.253".parse().unwrap()),
                    oif: Some(ifindex),
                    scope: Some(0),
                    onlink: true,
                    how: AddHow::Append,
                    ..route("10.6.0.0/16")
                },
                Route {
                    gateway: Some("2001:db8:1::fe".parse().unwrap()),
                    oif: Some(ifindex),
                    table: 102,
                    ..route("2001:db8:2::/64")
                },
            ];
            let rules = vec![
                Rule {
                    from: Some(net("192.0.2.1/32")),
                    table: 100,
                    ..rule(100, action::TO_TABLE)
                },
                Rule {
                    fwmark: Some(0x10),
                    fwmask: Some(0xff),
                    iif: Some(a_if.clone()),
                    invert: true,
                    ..rule(101, action::UNREACHABLE)
                },
                Rule {
                    to: Some(net("10.0.0.0/8")),
                    goto: Some(100),
                    ..rule(99, action::GOTO)
                },
                Rule {
                    family: Family::V6,
                    from: Some(net("2001:db8:1::/64")),
                    oif: Some(a_if.clone()),
                    table: 102,
                    tos: 0x10,
                    ..rule(102, action::TO_TABLE)
                },
                Rule {
                    to: Some(net("10.5.0.0/16")),
                    ..rule(103, action::BLACKHOLE)
                },
                Rule {
                    to: Some(net("10.4.0.0/16")),
                    ..rule(104, action::PROHIBIT)
                },
                Rule {
                    to: Some(net("10.3.0.0/16")),
                    ..rule(105, action::NOP)
                },
            ];
            for r in &routes {
                assert_eq!(nl.add_route(r).await.unwrap(), AddOutcome::Added, "{r}");
                assert_eq!(
                    nl.add_route(r).await.unwrap(),
                    AddOutcome::AlreadyPresent,
                    "{r}"
                );
            }
            for r in &rules {
                assert_eq!(nl.add_rule(r).await.unwrap(), AddOutcome::Added, "{r}");
            }
            let ip = |args: &[&str]| {
                let out = Command::new("ip")
                    .arg("-n")
                    .arg(&ns)
                    .args(args)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "ip {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            let shown = [
                ip(&["route", "show", "table", "all"]),
                ip(&["-6", "route", "show", "table", "102"]),
                ip(&["rule", "show"]),
                ip(&["-6", "rule", "show"]),
            ]
            .join("\n");
            // Deleted by hand, one at a time: each notice is recognised as that
            // route or rule and as no other.
            let mut deletions = Deletions::subscribe().unwrap();
            let mut deleted = Vec::new();
            let by_hand: Vec<Vec<&str>> = vec![
                vec![
                    "route",
                    "del",
                    "198.51.100.0/24",
                    "table",
                    "100",
                    "tos",
                    "0x10",
                    "metric",
                    "7",
                ],
                vec!["route", "del", "blackhole", "203.0.113.0/24"],
                vec!["route", "del", "unreachable", "10.9.0.0/16", "table", "101"],
                vec!["route", "del", "prohibit", "10.8.0.0/16", "table", "101"],
                vec!["route", "del", "throw", "10.7.0.0/16", "table", "101"],
                vec!["route", "del", "10.6.0.0/16"],
                vec!["-6", "route", "del", "2001:db8:2::/64", "table", "102"],
                vec!["rule", "del", "priority", "100"],
                vec!["rule", "del", "priority", "101"],
                vec!["rule", "del", "priority", "99"],
                vec!["-6", "rule", "del", "priority", "102"],
                vec!["rule", "del", "priority", "103"],
                vec!["rule", "del", "priority", "104"],
                vec!["rule", "del", "priority", "105"],
            ];
            for args in by_hand {
                ip(&args);
                let d = tokio::time::timeout(Duration::from_secs(3), deletions.next())
                    .await
                    .unwrap_or_else(|_| panic!("no deletion notice for {args:?}"))
                    .unwrap();
                let matched: Vec<String> = match &d {
                    Deletion::Route(m) => routes
                        .iter()
                        .filter(|r| r.matches(m))
                        .map(|r| r.to_string())
                        .collect(),
                    Deletion::Rule(m) => rules
                        .iter()
                        .filter(|r| r.matches(m))
                        .map(|r| r.to_string())
                        .collect(),
                    Deletion::Address { .. } => vec![],
                };
                deleted.push((args.join(" "), matched));
            }
            (shown, deleted)
        });
        for want in [
            "198.51.100.0/24 tos 0x10 via 192.0.2.254 dev",
            "table 100 proto keepalived src 192.0.2.1 metric 7",
            "blackhole 203.0.113.0/24 proto keepalived metric 3",
            "unreachable 10.9.0.0/16 table 101 proto keepalived",
            "prohibit 10.8.0.0/16 table 101 proto keepalived",
            "throw 10.7.0.0/16 table 101 proto keepalived",
            "10.6.0.0/16 via 192.0.2.253 dev",
            "onlink",
            "2001:db8:2::/64 via 2001:db8:1::fe dev",
            "100:\tfrom 192.0.2.1 lookup 100 proto keepalived",
            "101:\tnot from all fwmark 0x10/0xff iif",
            "unreachable",
            "99:\tfrom all to 10.0.0.0/8 goto 100 proto keepalived",
            "102:\tfrom 2001:db8:1::/64 tos 0x10 oif",
            "lookup 102 proto keepalived",
            "103:\tfrom all to 10.5.0.0/16 blackhole",
            "104:\tfrom all to 10.4.0.0/16 prohibit",
            "105:\tfrom all to 10.3.0.0/16 nop",
        ] {
            assert!(shown.contains(want), "{want:?} not in:\n{shown}");
        }
        for (args, matched) in deleted {
            assert_eq!(matched.len(), 1, "{args}: matched {matched:?}");
        }
    }
}
