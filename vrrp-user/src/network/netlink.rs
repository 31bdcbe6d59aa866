//! Links, addresses, VIPs and link-state events over rtnetlink.
//!
//! [`Netlink`] owns a request connection (spawned on the current tokio runtime, so it
//! lives in the network namespace of the thread that created it). [`LinkEvents`] is a
//! separate connection subscribed to `RTMGRP_LINK` for `track_interface` and FAULT.
//!
//! VIP changes are idempotent, because the daemon must converge whatever state a
//! previous run or an admin left: adding a present address adopts it, deleting an
//! absent one is success.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    pin::Pin,
    task::{Context, Poll},
};

use futures::{channel::mpsc::UnboundedReceiver, Stream, StreamExt, TryStreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::{
    address::{AddressAttribute, AddressFlag, AddressHeaderFlag, AddressMessage, AddressScope},
    link::{LinkAttribute, LinkFlag, LinkInfo, LinkMessage},
    AddressFamily, RouteNetlinkMessage,
};
use netlink_sys::{AsyncSocket, SocketAddr};
use thiserror::Error;

use super::MacAddr;

pub use netlink_packet_route::link::State as OperState;

/// `RTMGRP_LINK`: multicast group of RTM_NEWLINK / RTM_DELLINK notifications.
const RTMGRP_LINK: u32 = 1;

#[derive(Debug, Error)]
pub enum NetlinkError {
    #[error("socket(AF_NETLINK, NETLINK_ROUTE): {0}")]
    Socket(#[source] io::Error),
    #[error("bind(AF_NETLINK, RTMGRP_LINK): {0}")]
    Subscribe(#[source] io::Error),
    #[error("no such interface: {0}")]
    NoSuchInterface(String),
    /// The kernel answered the request with an errno.
    #[error("{op} {target}: {source}")]
    Kernel {
        op: &'static str,
        target: String,
        #[source]
        source: io::Error,
    },
    /// rtnetlink failed otherwise (connection gone, unparsable reply).
    #[error("{op} {target}: {source}")]
    Request {
        op: &'static str,
        target: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("{op} {target}: {why}")]
    InvalidVip {
        op: &'static str,
        target: String,
        why: &'static str,
    },
    #[error("{op}: cannot parse the reply: {reason}")]
    Decode { op: &'static str, reason: String },
    #[error("write {path}: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl NetlinkError {
    pub(crate) fn from_rtnl(
        op: &'static str,
        target: impl Into<String>,
        e: rtnetlink::Error,
    ) -> Self {
        match e {
            rtnetlink::Error::NetlinkError(msg) if msg.code.is_some() => NetlinkError::Kernel {
                op,
                target: target.into(),
                source: msg.to_io(),
            },
            source => NetlinkError::Request {
                op,
                target: target.into(),
                source: Box::new(source),
            },
        }
    }

    /// The errno the kernel answered, if that is what this is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// What we know of a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    /// `None` for links without an Ethernet address (lo has 00:..:00, tun has none).
    pub mac: Option<MacAddr>,
    /// keepalived's `IF_ISUP`: IFF_UP and IFF_RUNNING (the kernel's oper-up).
    pub up: bool,
    /// IFF_UP alone (administratively up).
    pub admin_up: bool,
    pub oper_state: Option<OperState>,
    /// `IFLA_INFO_KIND`, e.g. `macvlan`, `veth`; `None` for physical NICs.
    pub kind: Option<String>,
    /// `IFLA_LINK`: the lower device (macvlan parent, veth peer index).
    pub parent: Option<u32>,
    pub mtu: Option<u32>,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Self {
        let flags = &msg.header.flags;
        let admin_up = flags.contains(&LinkFlag::Up);
        let mut link = Link {
            ifindex: msg.header.index,
            name: String::new(),
            mac: None,
            up: admin_up && flags.contains(&LinkFlag::Running),
            admin_up,
            oper_state: None,
            kind: None,
            parent: None,
            mtu: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => link.name = name.clone(),
                LinkAttribute::Address(a) => link.mac = a.as_slice().try_into().ok(),
                LinkAttribute::OperState(s) => link.oper_state = Some(*s),
                LinkAttribute::Link(l) => link.parent = Some(*l),
                LinkAttribute::Mtu(m) => link.mtu = Some(*m),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(kind) = info {
                            link.kind = Some(kind.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// An address on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddress {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    /// IPv4 label (`eth0:vip`); for unlabelled addresses the kernel reports the ifname.
    pub label: Option<String>,
    pub brd: Option<Ipv4Addr>,
    /// RT_SCOPE_*: 0 global, 200 site, 253 link, 254 host.
    pub scope: u8,
    pub secondary: bool,
    /// IPv6 DAD not finished (or failed): not usable as a source yet.
    pub tentative: bool,
}

impl IfAddress {
    fn from_message(msg: &AddressMessage) -> Option<Self> {
        let mut local = None;
        let mut address = None;
        let mut label = None;
        let mut brd = None;
        let mut secondary = msg.header.flags.contains(&AddressHeaderFlag::Secondary);
        let mut tentative = msg.header.flags.iter().any(|f| {
            matches!(
                f,
                AddressHeaderFlag::Tentative | AddressHeaderFlag::Dadfailed
            )
        });
        for attr in &msg.attributes {
            match attr {
                AddressAttribute::Local(a) => local = Some(*a),
                AddressAttribute::Address(a) => address = Some(*a),
                AddressAttribute::Label(l) => label = Some(l.clone()),
                AddressAttribute::Broadcast(b) => brd = Some(*b),
                AddressAttribute::Flags(flags) => {
                    secondary |= flags.contains(&AddressFlag::Secondary);
                    tentative |= flags
                        .iter()
                        .any(|f| matches!(f, AddressFlag::Tentative | AddressFlag::Dadfailed));
                }
                _ => {}
            }
        }
        // IFA_LOCAL is the local address; IFA_ADDRESS is the peer on point-to-point links.
        Some(IfAddress {
            ifindex: msg.header.index,
            addr: local.or(address)?,
            prefix: msg.header.prefix_len,
            label,
            brd,
            scope: u8::from(msg.header.scope),
            secondary,
            tentative,
        })
    }
}

/// A virtual IP as keepalived's `virtual_ipaddress` line describes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Vip {
    pub addr: IpAddr,
    /// keepalived's default is /32 or /128.
    pub prefix: u8,
    /// `brd X` (IPv4 only). `None` sends no IFA_BROADCAST, as keepalived.
    pub brd: Option<Ipv4Addr>,
    /// `label L` (IPv4 only; the kernel has no IPv6 labels).
    pub label: Option<String>,
    /// `scope S` as RT_SCOPE_* (IPv4; the kernel derives IPv6 scope from the address).
    pub scope: Option<u8>,
}

impl Vip {
    /// A host VIP: /32 or /128, no brd, label or scope.
    pub fn host(addr: IpAddr) -> Self {
        Vip {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
            brd: None,
            label: None,
            scope: None,
        }
    }
}

impl std::fmt::Display for Vip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Outcome of [`Netlink::add_vip`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// The address was already there (ours from a previous run, or an admin's): adopted.
    AlreadyPresent,
}

/// Outcome of [`Netlink::del_vip`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelOutcome {
    Removed,
    /// Nothing to remove (already gone, or the interface itself is gone).
    Absent,
}

/// A request connection to rtnetlink in the creating thread's network namespace.
#[derive(Debug)]
pub struct Netlink {
    handle: rtnetlink::Handle,
    conn: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

fn target(ifindex: u32) -> String {
    format!("ifindex {ifindex}")
}

impl Netlink {
    /// Opens the socket and spawns its connection task; needs a tokio runtime.
    pub fn new() -> Result<Self, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        Ok(Netlink {
            handle,
            conn: tokio::spawn(conn),
        })
    }

    /// The underlying rtnetlink handle, for requests this type does not wrap.
    pub fn handle(&self) -> &rtnetlink::Handle {
        &self.handle
    }

    pub async fn link_by_name(&self, name: &str) -> Result<Link, NetlinkError> {
        let request = self.handle.link().get().match_name(name.to_owned());
        self.one_link(request, name.to_owned()).await
    }

    pub async fn link_by_index(&self, ifindex: u32) -> Result<Link, NetlinkError> {
        let request = self.handle.link().get().match_index(ifindex);
        self.one_link(request, target(ifindex)).await
    }

    async fn one_link(
        &self,
        request: rtnetlink::LinkGetRequest,
        what: String,
    ) -> Result<Link, NetlinkError> {
        let mut links = request.execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(Link::from_message(&msg)),
            Ok(None) => Err(NetlinkError::NoSuchInterface(what)),
            Err(e) => match NetlinkError::from_rtnl("RTM_GETLINK", what.clone(), e) {
                e if e.errno() == Some(libc::ENODEV) => Err(NetlinkError::NoSuchInterface(what)),
                e => Err(e),
            },
        }
    }

    /// Every link in the namespace.
    pub async fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        self.handle
            .link()
            .get()
            .execute()
            .map_ok(|msg| Link::from_message(&msg))
            .try_collect()
            .await
            .map_err(|e| NetlinkError::from_rtnl("RTM_GETLINK", "all links", e))
    }

    /// Addresses of one link, in kernel order (IPv4 primaries first).
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<IfAddress>, NetlinkError> {
        let msgs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetlinkError::from_rtnl("RTM_GETADDR", target(ifindex), e))?;
        Ok(msgs.iter().filter_map(IfAddress::from_message).collect())
    }

    /// The interface's primary IPv4 address and first usable link-local IPv6 address:
    /// keepalived's advert sources. Primary means non-secondary and unlabelled, global
    /// scope preferred: the kernel lists host-scope addresses *before* the real primary.
    /// Resolve it before adding VIPs, as keepalived does at start.
    pub async fn source_addresses(
        &self,
        ifindex: u32,
        ifname: &str,
    ) -> Result<(Option<Ipv4Addr>, Option<Ipv6Addr>), NetlinkError> {
        Ok(pick_sources(&self.addresses(ifindex).await?, ifname))
    }

    /// Adds `vip` to `ifindex`. An address already present counts as success.
    /// IPv6 VIPs are added with IFA_F_NODAD (as keepalived), so they are usable at once.
    pub async fn add_vip(&self, ifindex: u32, vip: &Vip) -> Result<AddOutcome, NetlinkError> {
        // Checked here: rtnetlink's broadcast derivation overflows on a bad prefix.
        let max = if vip.addr.is_ipv4() { 32 } else { 128 };
        if vip.prefix > max {
            return Err(NetlinkError::InvalidVip {
                op: "RTM_NEWADDR",
                target: format!("{vip} on ifindex {ifindex}"),
                why: "prefix length out of range",
            });
        }
        let mut request = self.handle.address().add(ifindex, vip.addr, vip.prefix);
        let msg = request.message_mut();
        // rtnetlink derives a broadcast address; keepalived sends one only for `brd`.
        msg.attributes
            .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
        if vip.addr.is_ipv4() {
            if let Some(brd) = vip.brd {
                msg.attributes.push(AddressAttribute::Broadcast(brd));
            }
            if let Some(label) = &vip.label {
                msg.attributes.push(AddressAttribute::Label(label.clone()));
            }
            if let Some(scope) = vip.scope {
                msg.header.scope = AddressScope::from(scope);
            }
        } else {
            msg.header.flags.push(AddressHeaderFlag::Nodad);
        }
        match request.execute().await {
            Ok(()) => Ok(AddOutcome::Added),
            Err(e) => match NetlinkError::from_rtnl(
                "RTM_NEWADDR",
                format!("{vip} on ifindex {ifindex}"),
                e,
            ) {
                e if e.errno() == Some(libc::EEXIST) => Ok(AddOutcome::AlreadyPresent),
                e => Err(e),
            },
        }
    }

    /// Removes `vip` from `ifindex`. An absent address (or interface) counts as success.
    pub async fn del_vip(&self, ifindex: u32, vip: &Vip) -> Result<DelOutcome, NetlinkError> {
        let mut msg = AddressMessage::default();
        msg.header.index = ifindex;
        msg.header.prefix_len = vip.prefix;
        msg.header.family = match vip.addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        // Matched by local address and prefix, not label: whatever labels it, it goes.
        msg.attributes.push(AddressAttribute::Local(vip.addr));
        msg.attributes.push(AddressAttribute::Address(vip.addr));
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(DelOutcome::Removed),
            Err(e) => match NetlinkError::from_rtnl(
                "RTM_DELADDR",
                format!("{vip} on ifindex {ifindex}"),
                e,
            ) {
                e if matches!(e.errno(), Some(libc::EADDRNOTAVAIL | libc::ENODEV)) => {
                    Ok(DelOutcome::Absent)
                }
                e => Err(e),
            },
        }
    }

    /// Sets a link administratively up or down.
    pub async fn set_link_up(&self, ifindex: u32, up: bool) -> Result<(), NetlinkError> {
        let request = self.handle.link().set(ifindex);
        let request = if up { request.up() } else { request.down() };
        request
            .execute()
            .await
            .map_err(|e| NetlinkError::from_rtnl("RTM_NEWLINK(IFF_UP)", target(ifindex), e))
    }

    /// Deletes a link.
    pub async fn del_link(&self, ifindex: u32) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .del(ifindex)
            .execute()
            .await
            .map_err(|e| NetlinkError::from_rtnl("RTM_DELLINK", target(ifindex), e))
    }
}

/// Chooses keepalived's advert sources among a link's addresses: the primary IPv4
/// address (non-secondary, unlabelled, global scope preferred: the kernel lists
/// host-scope addresses *before* the real primary) and the first non-tentative IPv6
/// link-local.
pub fn pick_sources(addrs: &[IfAddress], ifname: &str) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    let v4 = addrs
        .iter()
        .filter(|a| !a.secondary && a.label.as_deref().is_none_or(|l| l == ifname))
        .filter_map(|a| match a.addr {
            IpAddr::V4(v4) => Some((v4, a.scope)),
            IpAddr::V6(_) => None,
        })
        .min_by_key(|(_, scope)| *scope) // RT_SCOPE_UNIVERSE is 0; the first wins ties
        .map(|(v4, _)| v4);
    let v6 = addrs.iter().find_map(|a| match a.addr {
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 && !a.tentative => Some(v6),
        _ => None,
    });
    (v4, v6)
}

/// Blocking RTM_GETADDR dump of one link, for synchronous callers (socket setup).
/// Resolves in the calling thread's network namespace.
pub fn addresses_blocking(ifindex: u32) -> Result<Vec<IfAddress>, NetlinkError> {
    let op = "RTM_GETADDR";
    let kernel = |source| NetlinkError::Kernel {
        op,
        target: target(ifindex),
        source,
    };
    let mut socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE)
        .map_err(NetlinkError::Socket)?;
    socket.bind_auto().map_err(NetlinkError::Socket)?;
    let mut request =
        NetlinkMessage::from(RouteNetlinkMessage::GetAddress(AddressMessage::default()));
    request.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.header.sequence_number = 1;
    request.finalize();
    let mut buf = vec![0; request.buffer_len()];
    request.serialize(&mut buf);
    socket
        .send_to(&buf, &SocketAddr::new(0, 0), 0)
        .map_err(kernel)?;

    let mut addrs = Vec::new();
    loop {
        let (data, _) = socket.recv_from_full().map_err(kernel)?;
        let mut offset = 0;
        while offset < data.len() {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..]).map_err(
                |e| NetlinkError::Decode {
                    op,
                    reason: e.to_string(),
                },
            )?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m))
                    if m.header.index == ifindex =>
                {
                    addrs.extend(IfAddress::from_message(&m));
                }
                NetlinkPayload::Done(_) => return Ok(addrs),
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(kernel(e.to_io())),
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += (len + 3) & !3; // NLMSG_ALIGN
        }
    }
}

/// Sets `net.ipv4.conf.IF.promote_secondaries`, so removing a VIP that is the primary of
/// its subnet promotes the next one instead of flushing them all (keepalived does this).
pub fn set_promote_secondaries(ifname: &str, on: bool) -> Result<(), NetlinkError> {
    write_sysctl(
        &format!("net/ipv4/conf/{ifname}/promote_secondaries"),
        if on { "1" } else { "0" },
    )
}

/// Writes `/proc/sys/<key>`; resolves in the calling thread's network namespace.
pub(crate) fn write_sysctl(key: &str, value: &str) -> Result<(), NetlinkError> {
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).map_err(|source| NetlinkError::Sysctl { path, source })
}

/// A change of a link's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkEvent {
    pub ifindex: u32,
    pub name: String,
    /// IFF_UP && IFF_RUNNING; always false when `removed`.
    pub up: bool,
    pub removed: bool,
}

/// Stream of [`LinkEvent`]s from an `RTMGRP_LINK` subscription.
///
/// Only changes are yielded (the first sighting of a link always is): RTM_NEWLINK also
/// fires for MTU, stats or promiscuity changes that do not matter to VRRP. To avoid
/// missing a change, subscribe first, then read the current state with
/// [`Netlink::link_by_index`].
pub struct LinkEvents {
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    conn: tokio::task::JoinHandle<()>,
    _handle: rtnetlink::Handle,
    seen: HashMap<u32, (String, bool)>,
}

impl Drop for LinkEvents {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

impl LinkEvents {
    /// Subscribes in the calling thread's network namespace; needs a tokio runtime.
    pub fn subscribe() -> Result<Self, NetlinkError> {
        let (mut conn, handle, messages) =
            rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        conn.socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(0, RTMGRP_LINK))
            .map_err(NetlinkError::Subscribe)?;
        Ok(LinkEvents {
            messages,
            conn: tokio::spawn(conn),
            _handle: handle,
            seen: HashMap::new(),
        })
    }

    /// Turns a notification into an event if it changes what we last reported.
    fn event_from(&mut self, msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<LinkEvent> {
        let (link, removed) = match msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => (m, false),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) => (m, true),
            _ => return None,
        };
        let link = Link::from_message(&link);
        if removed {
            self.seen.remove(&link.ifindex);
            return Some(LinkEvent {
                ifindex: link.ifindex,
                name: link.name,
                up: false,
                removed: true,
            });
        }
        let state = (link.name.clone(), link.up);
        if self.seen.get(&link.ifindex) == Some(&state) {
            return None;
        }
        self.seen.insert(link.ifindex, state);
        Some(LinkEvent {
            ifindex: link.ifindex,
            name: link.name,
            up: link.up,
            removed: false,
        })
    }
}

impl Stream for LinkEvents {
    type Item = LinkEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LinkEvent>> {
        loop {
            match self.messages.poll_next_unpin(cx) {
                Poll::Ready(Some((msg, _))) => {
                    if let Some(event) = self.event_from(msg) {
                        return Poll::Ready(Some(event));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{process::Command, time::Duration};

    use super::*;
    use crate::network::testns::{TestNs, VethPair};

    fn addr_line(ns: &TestNs, ifname: &str, needle: &str) -> Option<String> {
        ns.ip(&["addr", "show", "dev", ifname])
            .lines()
            .find(|l| l.contains(needle))
            .map(str::to_owned)
    }

    #[test]
    fn link_lookup() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        let a_if = pair.a_if.clone();
        let mac_text = pair.a.ip(&["-br", "link", "show", "dev", &pair.a_if]);
        let (by_name, by_index, missing) = pair.a.run(move || async move {
            let nl = Netlink::new().unwrap();
            let link = nl.link_by_name(&a_if).await.unwrap();
            let by_index = nl.link_by_index(link.ifindex).await.unwrap();
            let missing = nl.link_by_name("xvn-nope0").await.unwrap_err();
            (link, by_index, missing)
        });
        assert_eq!(by_name, by_index);
        assert_eq!(by_name.name, pair.a_if);
        assert!(by_name.up && by_name.admin_up);
        assert_eq!(by_name.oper_state, Some(OperState::Up));
        assert_eq!(by_name.kind.as_deref(), Some("veth"));
        let mac = super::super::fmt_mac(&by_name.mac.unwrap());
        assert!(mac_text.contains(&mac), "{mac} not in {mac_text}");
        assert!(
            matches!(missing, NetlinkError::NoSuchInterface(_)),
            "{missing}"
        );
    }

    #[test]
    fn add_and_del_vips_idempotently() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        pair.a
            .ip(&["addr", "add", "192.0.2.1/24", "dev", &pair.a_if]);
        let a_if = pair.a_if.clone();
        let label = format!("{}:vip", pair.a_if);
        let v4 = Vip {
            addr: "192.0.2.100".parse().unwrap(),
            prefix: 24,
            brd: Some("192.0.2.255".parse().unwrap()),
            label: Some(label.clone()),
            scope: None,
        };
        let host = Vip {
            scope: Some(254),
            ..Vip::host("198.51.100.7".parse().unwrap())
        };
        let v6 = Vip {
            prefix: 64,
            ..Vip::host("2001:db8::100".parse().unwrap())
        };

        let (v4_, host_, v6_) = (v4.clone(), host.clone(), v6.clone());
        let (ifindex, outcomes, sources) = pair.a.run(move || async move {
            let nl = Netlink::new().unwrap();
            let ifindex = nl.link_by_name(&a_if).await.unwrap().ifindex;
            let mut outcomes = vec![];
            for vip in [&v4_, &v4_, &host_, &v6_, &v6_] {
                outcomes.push(nl.add_vip(ifindex, vip).await.unwrap());
            }
            let sources = nl.source_addresses(ifindex, &a_if).await.unwrap();
            (ifindex, outcomes, sources)
        });
        use AddOutcome::*;
        assert_eq!(
            outcomes,
            [Added, AlreadyPresent, Added, Added, AlreadyPresent]
        );
        assert_eq!(sources.0, Some("192.0.2.1".parse().unwrap()), "primary v4");
        assert!(sources.1.is_some(), "link-local v6");

        let line = addr_line(&pair.a, &pair.a_if, "192.0.2.100").expect("v4 VIP present");
        assert!(line.contains("192.0.2.100/24 brd 192.0.2.255"), "{line}");
        assert!(line.trim_end().ends_with(&label), "label: {line}");
        let line = addr_line(&pair.a, &pair.a_if, "198.51.100.7").expect("host VIP");
        assert!(line.contains("198.51.100.7/32 scope host"), "{line}");
        assert!(!line.contains("brd"), "no brd unless asked: {line}");
        let line = addr_line(&pair.a, &pair.a_if, "2001:db8::100").expect("v6 VIP");
        assert!(line.contains("2001:db8::100/64"), "{line}");
        assert!(!line.contains("tentative"), "{line}");

        let outcomes = pair.a.run(move || async move {
            let nl = Netlink::new().unwrap();
            let mut outcomes = vec![];
            for vip in [&v4, &v4, &host, &v6, &v6] {
                outcomes.push(nl.del_vip(ifindex, vip).await.unwrap());
            }
            // A gone interface means a gone address.
            outcomes.push(nl.del_vip(999_999, &v4).await.unwrap());
            outcomes
        });
        use DelOutcome::*;
        assert_eq!(
            outcomes,
            [Removed, Absent, Removed, Removed, Absent, Absent]
        );
        let all = pair.a.ip(&["addr", "show", "dev", &pair.a_if]);
        assert!(
            !all.contains("192.0.2.100") && !all.contains("198.51.100.7"),
            "{all}"
        );
        assert!(!all.contains("2001:db8::100"), "{all}");
        assert!(all.contains("192.0.2.1/24"), "primary untouched: {all}");
    }

    #[test]
    fn bad_vip_errors_name_op_and_target() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        let a_if = pair.a_if.clone();
        let (bad_prefix, no_dev) = pair.a.run(move || async move {
            let nl = Netlink::new().unwrap();
            let ifindex = nl.link_by_name(&a_if).await.unwrap().ifindex;
            let vip = Vip {
                prefix: 33,
                ..Vip::host("192.0.2.100".parse().unwrap())
            };
            let bad_prefix = nl.add_vip(ifindex, &vip).await.unwrap_err();
            let vip = Vip::host("192.0.2.100".parse().unwrap());
            let no_dev = nl.add_vip(999_999, &vip).await.unwrap_err();
            (bad_prefix.to_string(), no_dev)
        });
        assert!(
            bad_prefix.starts_with("RTM_NEWADDR 192.0.2.100/33 on ifindex "),
            "{bad_prefix}"
        );
        assert_eq!(no_dev.errno(), Some(libc::ENODEV), "{no_dev}");
        assert!(
            no_dev
                .to_string()
                .starts_with("RTM_NEWADDR 192.0.2.100/32 on ifindex 999999: "),
            "{no_dev}"
        );
    }

    #[test]
    fn link_down_up_and_removal_events() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        let (ns, a_if) = (pair.a.name.clone(), pair.a_if.clone());
        let events = pair.a.run(move || async move {
            let mut events = LinkEvents::subscribe().unwrap();
            let nl = Netlink::new().unwrap();
            let ifindex = nl.link_by_name(&a_if).await.unwrap().ifindex;
            let ip = |args: &[&str]| {
                let ok = Command::new("ip")
                    .arg("-n")
                    .arg(&ns)
                    .args(args)
                    .status()
                    .unwrap();
                assert!(ok.success(), "ip {args:?}");
            };
            // Unrelated notifications (e.g. IPv6 addrconf) may come first: wait for the
            // wanted one, failing after 5 s.
            async fn wait(
                events: &mut LinkEvents,
                ifindex: u32,
                want: impl Fn(&LinkEvent) -> bool,
            ) -> LinkEvent {
                loop {
                    let ev = tokio::time::timeout(Duration::from_secs(5), events.next())
                        .await
                        .expect("no matching link event within 5 s")
                        .expect("event stream ended");
                    if ev.ifindex == ifindex && want(&ev) {
                        return ev;
                    }
                }
            }
            let mut seen = vec![];
            ip(&["link", "set", &a_if, "down"]);
            seen.push(wait(&mut events, ifindex, |e| !e.up).await);
            ip(&["link", "set", &a_if, "up"]);
            seen.push(wait(&mut events, ifindex, |e| e.up).await);
            ip(&["link", "del", &a_if]);
            seen.push(wait(&mut events, ifindex, |e| e.removed).await);
            seen
        });
        let name = pair.a_if.as_str();
        let got: Vec<_> = events
            .iter()
            .map(|e| (e.name.as_str(), e.up, e.removed))
            .collect();
        assert_eq!(
            got,
            [
                (name, false, false),
                (name, true, false),
                (name, false, true)
            ]
        );
    }
}
