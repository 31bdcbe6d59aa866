//! Deletions of addresses, routes and rules, as rtnetlink reports them: what
//! keepalived watches to notice that a VIP, virtual route or virtual rule it
//! holds has been removed behind its back.
//!
//! A connection of its own, subscribed to the IPv4 and IPv6 address, route
//! and rule groups. Only deletions are yielded; routes and rules only with
//! keepalived's protocol (18), which is how keepalived marks what it tracks.

use std::{
    net::IpAddr,
    pin::Pin,
    task::{Context, Poll},
};

use futures::{channel::mpsc::UnboundedReceiver, Stream, StreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    address::AddressAttribute,
    route::{RouteMessage, RouteProtocol},
    rule::{RuleAttribute, RuleMessage},
    RouteNetlinkMessage,
};
use netlink_sys::{AsyncSocket, SocketAddr};

use super::netlink::NetlinkError;

/// `RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE | RTMGRP_IPV6_IFADDR |
/// RTMGRP_IPV6_ROUTE` and `RTNLGRP_IPV6_RULE` (group 19, bit 18).
const GROUPS: u32 = 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | (1 << 18);

/// `RTPROT_KEEPALIVED`.
const TRACKED_PROTOCOL: u8 = 18;

/// Something deleted from the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deletion {
    Address { ifindex: u32, addr: IpAddr },
    Route(RouteMessage),
    Rule(RuleMessage),
}

/// Stream of [`Deletion`]s.
pub struct Deletions {
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    conn: tokio::task::JoinHandle<()>,
    _handle: rtnetlink::Handle,
}

impl Drop for Deletions {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

impl Deletions {
    /// Subscribes in the calling thread's network namespace; needs a tokio runtime.
    pub fn subscribe() -> Result<Self, NetlinkError> {
        let (mut conn, handle, messages) =
            rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        conn.socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(0, GROUPS))
            .map_err(NetlinkError::Subscribe)?;
        Ok(Deletions {
            messages,
            conn: tokio::spawn(conn),
            _handle: handle,
        })
    }
}

/// The deletion a notification reports, if it is one that can be ours.
pub fn deletion(msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<Deletion> {
    match msg.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => {
            // IFA_LOCAL is the address itself (IFA_ADDRESS the peer on p-t-p links).
            let mut local = None;
            let mut address = None;
            for attr in &m.attributes {
                match attr {
                    AddressAttribute::Local(a) => local = Some(*a),
                    AddressAttribute::Address(a) => address = Some(*a),
                    _ => {}
                }
            }
            Some(Deletion::Address {
                ifindex: m.header.index,
                addr: local.or(address)?,
            })
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(m)) => (m.header.protocol
            == RouteProtocol::from(TRACKED_PROTOCOL))
        .then_some(Deletion::Route(m)),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRule(m)) => {
            let protocol = m.attributes.iter().find_map(|a| match a {
                RuleAttribute::Protocol(p) => Some(*p),
                _ => None,
            });
            // Older kernels send no protocol: then any rule may be ours.
            protocol
                .is_none_or(|p| p == RouteProtocol::from(TRACKED_PROTOCOL))
                .then_some(Deletion::Rule(m))
        }
        _ => None,
    }
}

impl Stream for Deletions {
    type Item = Deletion;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Deletion>> {
        loop {
            match self.messages.poll_next_unpin(cx) {
                Poll::Ready(Some((msg, _))) => {
                    if let Some(d) = deletion(msg) {
                        return Poll::Ready(Some(d));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
