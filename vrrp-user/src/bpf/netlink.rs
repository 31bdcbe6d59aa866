//! Route netlink for the recorder's attachments, synchronous: which XDP
//! program an interface runs and in which mode, swapping a libxdp
//! dispatcher in and out the way libxdp does (`IFLA_XDP` with
//! `XDP_FLAGS_REPLACE`, so a concurrent change makes ours fail instead of
//! undoing it), and the clsact filters of an interface's ingress (a
//! recorder attached there reports its place among them).

use std::{io, os::fd::AsRawFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::{
    link::{LinkAttribute, LinkMessage, LinkXdp, XdpAttached},
    tc::{TcAttribute, TcHandle, TcMessage, TcOption},
    RouteNetlinkMessage,
};
use netlink_packet_utils::nla::Nla;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("{what} on interface {ifindex}: {source}")]
    Request {
        what: &'static str,
        ifindex: u32,
        #[source]
        source: io::Error,
    },
    #[error("{what} on interface {ifindex}: undecodable reply: {detail}")]
    Decode {
        what: &'static str,
        ifindex: u32,
        detail: String,
    },
}

/// XDP_FLAGS_* of `IFLA_XDP_FLAGS` (uapi/linux/if_link.h).
pub mod xdp_flags {
    pub const UPDATE_IF_NOEXIST: u32 = 1 << 0;
    pub const SKB_MODE: u32 = 1 << 1;
    pub const DRV_MODE: u32 = 1 << 2;
    pub const REPLACE: u32 = 1 << 4;
}

/// The XDP program an interface runs, as `IFLA_XDP` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpState {
    /// The driver-mode program, if any.
    pub drv: Option<u32>,
    /// The generic (skb) mode program, if any.
    pub skb: Option<u32>,
    /// Offloaded to the NIC: never ours, never touched.
    pub hw: Option<u32>,
}

impl XdpState {
    /// The program packets meet first in the stack's own hooks, and
    /// whether it runs in the driver.
    pub fn program(&self) -> Option<(u32, bool)> {
        self.drv
            .map(|id| (id, true))
            .or(self.skb.map(|id| (id, false)))
    }
}

/// One clsact ingress filter (tc priority, and the BPF program if it is a
/// `bpf` filter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressFilter {
    pub priority: u16,
    pub kind: String,
    pub bpf_prog_id: Option<u32>,
    /// `tcm_info` (priority and protocol) and `tcm_handle`, to delete it by.
    info: u32,
    handle: TcHandle,
}

const TCA_BPF_ID: u16 = 11;

struct Conn {
    socket: Socket,
    seq: u32,
}

impl Conn {
    fn new() -> Result<Self, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        Ok(Self { socket, seq: 0 })
    }

    /// Sends `message` and collects the replies until the ACK or DONE.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        let mut rx = vec![0u8; 64 * 1024];
        loop {
            let n = self.socket.recv(&mut &mut rx[..], 0)?;
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[offset..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink message of length 0",
                    ));
                }
                offset += len;
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(replies),
                        Some(code) => return Err(io::Error::from_raw_os_error(-code.get())),
                    },
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(m) => {
                        replies.push(m);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The XDP programs `ifindex` runs.
pub fn xdp_state(ifindex: u32) -> Result<XdpState, NetlinkError> {
    const WHAT: &str = "reading the XDP program (RTM_GETLINK)";
    let err = |source| NetlinkError::Request {
        what: WHAT,
        ifindex,
        source,
    };
    let mut conn = Conn::new()?;
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    let replies = conn
        .request(RouteNetlinkMessage::GetLink(msg), 0)
        .map_err(err)?;
    let Some(RouteNetlinkMessage::NewLink(link)) = replies.into_iter().next() else {
        return Err(NetlinkError::Decode {
            what: WHAT,
            ifindex,
            detail: "no link in the reply".into(),
        });
    };
    let mut state = XdpState::default();
    for attr in link.attributes {
        let LinkAttribute::Xdp(xdp) = attr else {
            continue;
        };
        let mut attached = XdpAttached::None;
        let mut prog = None;
        for x in xdp {
            match x {
                LinkXdp::Attached(a) => attached = a,
                LinkXdp::ProgId(id) => prog = Some(id),
                LinkXdp::DrvProgId(id) => state.drv = Some(id),
                LinkXdp::SkbProgId(id) => state.skb = Some(id),
                LinkXdp::HwProgId(id) => state.hw = Some(id),
                _ => {}
            }
        }
        // A single program is reported as PROG_ID with its mode.
        match (attached, prog) {
            (XdpAttached::Driver, Some(id)) => state.drv = Some(id),
            (XdpAttached::SocketBuffer, Some(id)) => state.skb = Some(id),
            (XdpAttached::Hardware, Some(id)) => state.hw = Some(id),
            _ => {}
        }
    }
    Ok(state)
}

/// Attaches `fd` (or detaches, with `None`) on `ifindex`'s XDP hook with
/// `flags`; with `expected`, only if the program there is still that one.
pub fn xdp_set(
    ifindex: u32,
    fd: Option<&impl AsRawFd>,
    flags: u32,
    expected: Option<&impl AsRawFd>,
) -> Result<(), NetlinkError> {
    let mut xdp = vec![
        LinkXdp::Fd(fd.map_or(-1, |f| f.as_raw_fd())),
        LinkXdp::Flags(flags),
    ];
    if let Some(e) = expected {
        xdp.push(LinkXdp::ExpectedFd(e.as_raw_fd() as u32));
    }
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::Xdp(xdp));
    Conn::new()?
        .request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
        .map(|_| ())
        .map_err(|source| NetlinkError::Request {
            what: "setting the XDP program (RTM_SETLINK)",
            ifindex,
            source,
        })
}

/// The clsact ingress filters of `ifindex`, in the order tc runs them.
pub fn ingress_filters(ifindex: u32) -> Result<Vec<IngressFilter>, NetlinkError> {
    let mut msg = TcMessage::default();
    msg.header.index = ifindex as i32;
    // clsact's ingress: ffff:fff2.
    msg.header.parent = TcHandle {
        major: 0xffff,
        minor: 0xfff2,
    };
    let replies = Conn::new()?
        .request(RouteNetlinkMessage::GetTrafficFilter(msg), NLM_F_DUMP)
        .map_err(|source| NetlinkError::Request {
            what: "listing ingress filters (RTM_GETTFILTER)",
            ifindex,
            source,
        })?;
    let mut filters: Vec<IngressFilter> = Vec::new();
    for reply in replies {
        let RouteNetlinkMessage::NewTrafficFilter(f) = reply else {
            continue;
        };
        let priority = (f.header.info >> 16) as u16;
        let mut kind = String::new();
        let mut bpf_prog_id = None;
        for attr in &f.attributes {
            match attr {
                TcAttribute::Kind(k) => kind = k.clone(),
                TcAttribute::Options(options) => {
                    for o in options {
                        if let TcOption::Other(nla) = o {
                            bpf_prog_id = bpf_prog_id.or_else(|| bpf_id_of(nla));
                        }
                    }
                }
                _ => {}
            }
        }
        // A dump lists each priority's (tcf_proto) head without options
        // too; keep the entries that say what runs.
        if kind.is_empty() {
            continue;
        }
        if let Some(existing) = filters
            .iter_mut()
            .find(|e| e.priority == priority && e.bpf_prog_id.is_none() && e.kind == kind)
        {
            if bpf_prog_id.is_some() {
                existing.bpf_prog_id = bpf_prog_id;
                existing.handle = f.header.handle;
            }
            continue;
        }
        filters.push(IngressFilter {
            priority,
            kind,
            bpf_prog_id,
            info: f.header.info,
            handle: f.header.handle,
        });
    }
    filters.sort_by_key(|f| f.priority);
    Ok(filters)
}

/// TCA_BPF_ID in a `bpf` filter's options: netlink-packet-route keeps the
/// options of kinds it does not know as one attribute, the nest itself.
fn bpf_id_of(nla: &netlink_packet_utils::nla::DefaultNla) -> Option<u32> {
    let mut value = vec![0u8; nla.value_len()];
    nla.emit_value(&mut value);
    if nla.kind() == TCA_BPF_ID && value.len() == 4 {
        return Some(u32::from_ne_bytes([value[0], value[1], value[2], value[3]]));
    }
    netlink_packet_utils::nla::NlasIterator::new(&value[..])
        .filter_map(Result::ok)
        .find(|inner| inner.kind() == TCA_BPF_ID && inner.value().len() == 4)
        .map(|inner| {
            let v = inner.value();
            u32::from_ne_bytes([v[0], v[1], v[2], v[3]])
        })
}

/// Deletes one clsact ingress filter as [`ingress_filters`] listed it.
pub fn delete_ingress_filter(ifindex: u32, filter: &IngressFilter) -> Result<(), NetlinkError> {
    let mut msg = TcMessage::default();
    msg.header.index = ifindex as i32;
    msg.header.parent = TcHandle {
        major: 0xffff,
        minor: 0xfff2,
    };
    msg.header.info = filter.info;
    msg.header.handle = filter.handle;
    msg.attributes.push(TcAttribute::Kind(filter.kind.clone()));
    Conn::new()?
        .request(RouteNetlinkMessage::DelTrafficFilter(msg), NLM_F_ACK)
        .map(|_| ())
        .map_err(|source| NetlinkError::Request {
            what: "deleting an ingress filter (RTM_DELTFILTER)",
            ifindex,
            source,
        })
}
