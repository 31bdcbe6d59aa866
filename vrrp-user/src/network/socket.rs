//! Raw IP protocol 112 sockets that send VRRP adverts.
//!
//! One [`VrrpSender`] per (interface, family). The kernel builds the IP header: we only
//! set the fields VRRP cares about (TTL / hop limit 255, TOS / traffic class 0xc0) and,
//! for IPv6, let it fill the VRRP checksum including the pseudo-header (`IPV6_CHECKSUM`).
//!
//! Adverts are *received* by XDP, not here. The socket still joins the VRRP group so a
//! real NIC's multicast MAC filter admits the adverts (XDP runs after that filter), and a
//! drop-all classic BPF filter keeps the socket from ever queueing what it receives.

use std::{
    io,
    mem::size_of,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6},
    os::fd::{AsFd, AsRawFd, BorrowedFd},
};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use thiserror::Error;

use super::{netlink, Family};

/// IANA protocol number of VRRP, as the socket API types it.
pub const IPPROTO_VRRP: i32 = vrrp_common::IPPROTO_VRRP as i32;
/// VRRP IPv4 multicast group (RFC 3768 / 5798), keepalived's `vrrp_mcast_group4` default.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// VRRP IPv6 multicast group, keepalived's `vrrp_mcast_group6` default.
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// Adverts leave with TTL / hop limit 255 so receivers can reject off-link forgeries.
const VRRP_TTL: u32 = 255;
/// DSCP CS6 (network control), as keepalived sends.
const VRRP_TOS: u32 = 0xc0;
/// Offset of the checksum in the VRRP header (ver/type, vrid, prio, count, intvl x2).
const VRRP_CHECKSUM_OFFSET: libc::c_int = 6;

/// `ret #0`: accept zero bytes of every packet, i.e. drop all.
const DROP_ALL: [libc::sock_filter; 1] = [libc::sock_filter {
    code: (libc::BPF_RET | libc::BPF_K) as u16,
    jt: 0,
    jf: 0,
    k: 0,
}];

#[derive(Debug, Error)]
pub enum SocketError {
    #[error("{call} on {ifname}: {source}")]
    Syscall {
        call: &'static str,
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("if_nametoindex({ifname}): {source}")]
    NoSuchInterface {
        ifname: String,
        #[source]
        source: nix::Error,
    },
    #[error("source address of {ifname}: {source}")]
    SourceLookup {
        ifname: String,
        #[source]
        source: super::netlink::NetlinkError,
    },
    #[error("sendto({dst}) on {ifname}: {source}")]
    Send {
        dst: IpAddr,
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("sendto({dst}) on {ifname}: sent {sent} of {len} bytes")]
    ShortSend {
        dst: IpAddr,
        ifname: String,
        sent: usize,
        len: usize,
    },
    #[error("{what} {addr} on {ifname} is not an {family} address")]
    FamilyMismatch {
        what: &'static str,
        addr: IpAddr,
        ifname: String,
        family: Family,
    },
}

/// How a [`VrrpSender`] is set up. `Default` is keepalived's multicast default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderConfig {
    /// `unicast_src_ip`. When `None`, an IPv4 sender binds to the interface's primary
    /// address (so the source, which the v3 checksum covers, is known and fixed); an IPv6
    /// sender leaves the choice of link-local source to the kernel, which also computes
    /// the checksum, so nothing can disagree.
    pub src: Option<IpAddr>,
    /// `vrrp_mcast_group4/6`; `None` means 224.0.0.18 / ff02::12.
    pub group: Option<IpAddr>,
    /// Join `group` on the interface (multicast instances). Unicast-only instances may
    /// skip it, as keepalived does.
    pub join_group: bool,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            src: None,
            group: None,
            join_group: true,
        }
    }
}

/// A raw protocol-112 socket bound to one interface, for one address family.
#[derive(Debug)]
pub struct VrrpSender {
    socket: Socket,
    ifname: String,
    ifindex: u32,
    family: Family,
    src: Option<IpAddr>,
    group: IpAddr,
}

/// Maps an `io::Error` to [`SocketError::Syscall`] naming the call and the interface.
trait Ctx<T> {
    fn ctx(self, call: &'static str, ifname: &str) -> Result<T, SocketError>;
}

impl<T> Ctx<T> for io::Result<T> {
    fn ctx(self, call: &'static str, ifname: &str) -> Result<T, SocketError> {
        self.map_err(|source| SocketError::Syscall {
            call,
            ifname: ifname.to_owned(),
            source,
        })
    }
}

/// `if_nametoindex(3)`; resolved in the calling thread's network namespace.
pub fn ifindex(ifname: &str) -> Result<u32, SocketError> {
    nix::net::if_::if_nametoindex(ifname).map_err(|source| SocketError::NoSuchInterface {
        ifname: ifname.to_owned(),
        source,
    })
}

/// The address keepalived would use as advert source on `ifname`: for IPv4 the primary
/// address, for IPv6 the first usable link-local (see [`netlink::pick_sources`]).
/// Resolve it before adding VIPs, as keepalived does at start.
pub fn interface_address(ifname: &str, family: Family) -> Result<Option<IpAddr>, SocketError> {
    let addrs = netlink::addresses_blocking(ifindex(ifname)?).map_err(|source| {
        SocketError::SourceLookup {
            ifname: ifname.to_owned(),
            source,
        }
    })?;
    let (v4, v6) = netlink::pick_sources(&addrs, ifname);
    Ok(match family {
        Family::V4 => v4.map(IpAddr::V4),
        Family::V6 => v6.map(IpAddr::V6),
    })
}

fn is_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// Needs a scope id (the interface) when used as a socket address.
fn needs_scope(ip: &Ipv6Addr) -> bool {
    is_link_local(ip) || (ip.is_multicast() && ip.segments()[0] & 0x000f <= 2)
}

impl VrrpSender {
    /// Opens and configures the socket. Must run in the interface's network namespace.
    pub fn open(ifname: &str, family: Family, config: &SenderConfig) -> Result<Self, SocketError> {
        let ifindex = ifindex(ifname)?;
        let group = config.group.unwrap_or(match family {
            Family::V4 => IpAddr::V4(VRRP_GROUP_V4),
            Family::V6 => IpAddr::V6(VRRP_GROUP_V6),
        });
        for (what, addr) in [("group", Some(group)), ("source", config.src)] {
            if let Some(addr) = addr {
                if Family::of(&addr) != family {
                    return Err(SocketError::FamilyMismatch {
                        what,
                        addr,
                        ifname: ifname.to_owned(),
                        family,
                    });
                }
            }
        }

        let domain = match family {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        };
        let socket = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
            .ctx("socket(SOCK_RAW, 112)", ifname)?;
        // Before anything else: a raw socket receives every protocol-112 packet of the
        // namespace, and nobody ever reads this one.
        socket
            .attach_filter(&DROP_ALL)
            .ctx("setsockopt(SO_ATTACH_FILTER)", ifname)?;
        // The kernel clamps 0 up to its minimum; belt and braces with the filter.
        socket
            .set_recv_buffer_size(0)
            .ctx("setsockopt(SO_RCVBUF)", ifname)?;
        socket
            .set_nonblocking(true)
            .ctx("fcntl(O_NONBLOCK)", ifname)?;
        drain(&socket);
        socket
            .bind_device(Some(ifname.as_bytes()))
            .ctx("setsockopt(SO_BINDTODEVICE)", ifname)?;

        let src = match family {
            Family::V4 => {
                socket.set_ttl(VRRP_TTL).ctx("setsockopt(IP_TTL)", ifname)?;
                socket
                    .set_multicast_ttl_v4(VRRP_TTL)
                    .ctx("setsockopt(IP_MULTICAST_TTL)", ifname)?;
                socket.set_tos(VRRP_TOS).ctx("setsockopt(IP_TOS)", ifname)?;
                socket
                    .set_multicast_loop_v4(false)
                    .ctx("setsockopt(IP_MULTICAST_LOOP)", ifname)?;
                set_multicast_if_v4(&socket, ifindex).ctx("setsockopt(IP_MULTICAST_IF)", ifname)?;
                let src = match config.src {
                    Some(src) => Some(src),
                    None => interface_address(ifname, Family::V4)?,
                };
                if let Some(IpAddr::V4(src)) = src {
                    socket
                        .bind(&SocketAddrV4::new(src, 0).into())
                        .ctx("bind(IPv4 source)", ifname)?;
                }
                if let (true, IpAddr::V4(group)) = (config.join_group, group) {
                    socket
                        .join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))
                        .ctx("setsockopt(IP_ADD_MEMBERSHIP)", ifname)?;
                }
                src
            }
            Family::V6 => {
                socket
                    .set_unicast_hops_v6(VRRP_TTL)
                    .ctx("setsockopt(IPV6_UNICAST_HOPS)", ifname)?;
                socket
                    .set_multicast_hops_v6(VRRP_TTL)
                    .ctx("setsockopt(IPV6_MULTICAST_HOPS)", ifname)?;
                socket
                    .set_tclass_v6(VRRP_TOS)
                    .ctx("setsockopt(IPV6_TCLASS)", ifname)?;
                socket
                    .set_multicast_loop_v6(false)
                    .ctx("setsockopt(IPV6_MULTICAST_LOOP)", ifname)?;
                socket
                    .set_multicast_if_v6(ifindex)
                    .ctx("setsockopt(IPV6_MULTICAST_IF)", ifname)?;
                // The kernel overwrites bytes 6..8 with the checksum over pseudo-header
                // and PDU, whatever the caller put there.
                setsockopt_int(
                    &socket,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_CHECKSUM,
                    VRRP_CHECKSUM_OFFSET,
                )
                .ctx("setsockopt(IPV6_CHECKSUM)", ifname)?;
                if let Some(IpAddr::V6(src)) = config.src {
                    let scope = if needs_scope(&src) { ifindex } else { 0 };
                    socket
                        .bind(&SocketAddrV6::new(src, 0, 0, scope).into())
                        .ctx("bind(IPv6 source)", ifname)?;
                }
                if let (true, IpAddr::V6(group)) = (config.join_group, group) {
                    socket
                        .join_multicast_v6(&group, ifindex)
                        .ctx("setsockopt(IPV6_ADD_MEMBERSHIP)", ifname)?;
                }
                config.src
            }
        };

        Ok(Self {
            socket,
            ifname: ifname.to_owned(),
            ifindex,
            family,
            src,
            group,
        })
    }

    /// Sends one VRRP PDU (no IP header) to `dst`: the group or a unicast peer.
    ///
    /// Non-blocking: a full socket buffer is an error (`EAGAIN`) rather than a stall of
    /// the caller; a late advert is worth less than an on-time next one.
    pub fn send(&self, pdu: &[u8], dst: IpAddr) -> Result<(), SocketError> {
        let addr: SockAddr = match dst {
            IpAddr::V4(ip) if self.family == Family::V4 => SocketAddrV4::new(ip, 0).into(),
            IpAddr::V6(ip) if self.family == Family::V6 => {
                let scope = if needs_scope(&ip) { self.ifindex } else { 0 };
                SocketAddrV6::new(ip, 0, 0, scope).into()
            }
            _ => {
                return Err(SocketError::FamilyMismatch {
                    what: "destination",
                    addr: dst,
                    ifname: self.ifname.clone(),
                    family: self.family,
                })
            }
        };
        let sent = self
            .socket
            .send_to(pdu, &addr)
            .map_err(|source| SocketError::Send {
                dst,
                ifname: self.ifname.clone(),
                source,
            })?;
        if sent != pdu.len() {
            return Err(SocketError::ShortSend {
                dst,
                ifname: self.ifname.clone(),
                sent,
                len: pdu.len(),
            });
        }
        Ok(())
    }

    /// Sends to the configured multicast group.
    pub fn send_multicast(&self, pdu: &[u8]) -> Result<(), SocketError> {
        self.send(pdu, self.group)
    }

    /// The bound source address: `unicast_src_ip`, or for IPv4 the primary address found
    /// at open. Use it for the v3/IPv4 checksum pseudo-header. `None` for IPv6 without
    /// `unicast_src_ip` (the kernel picks and checksums) or an IPv4 interface without
    /// an address.
    pub fn source(&self) -> Option<IpAddr> {
        self.src
    }

    pub fn group(&self) -> IpAddr {
        self.group
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn family(&self) -> Family {
        self.family
    }
}

impl AsFd for VrrpSender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Discards whatever arrived between `socket()` and the filter being attached.
fn drain(socket: &Socket) {
    let mut buf = [0u8; 64];
    // SAFETY: recv into a valid buffer of the given length on an owned fd.
    while unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
        )
    } >= 0
    {}
}

/// `IP_MULTICAST_IF` by index (`ip_mreqn`): the interface may have no IPv4 address yet.
fn set_multicast_if_v4(socket: &Socket, ifindex: u32) -> io::Result<()> {
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as libc::c_int,
    };
    setsockopt(socket, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreqn)
}

fn setsockopt_int(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    setsockopt(socket, level, name, &value)
}

fn setsockopt<T>(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a valid, initialised T for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::{net::IpAddr, time::Duration};

    use super::*;
    use crate::network::testns::{checksum, Capture, VethPair};

    /// A VRRPv2 advert: VRID 51, priority 100, one address 192.0.2.100, interval 1 s.
    fn v2_pdu() -> Vec<u8> {
        let mut pdu = vec![
            0x21, 51, 100, 1, 0, 1, 0, 0, 192, 0, 2, 100, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let c = checksum(&[&pdu]);
        pdu[6..8].copy_from_slice(&c.to_be_bytes());
        pdu
    }

    /// A VRRPv3 IPv6 advert with a zero checksum, for the kernel to fill.
    fn v3_pdu_v6() -> Vec<u8> {
        let mut pdu = vec![0x31, 51, 100, 1, 0, 100, 0, 0];
        pdu.extend_from_slice(&"2001:db8::100".parse::<Ipv6Addr>().unwrap().octets());
        pdu
    }

    #[test]
    fn ipv4_multicast_and_unicast_adverts_on_the_wire() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        pair.a
            .ip(&["addr", "add", "192.0.2.1/24", "dev", &pair.a_if]);
        pair.b
            .ip(&["addr", "add", "192.0.2.2/24", "dev", &pair.b_if]);
        // Neither may pass for the primary: the kernel lists a host-scope address first,
        // and a labelled secondary is a VIP.
        let a_if = pair.a_if.as_str();
        pair.a.ip(&[
            "addr",
            "add",
            "198.51.100.7/32",
            "dev",
            a_if,
            "scope",
            "host",
        ]);
        let label = format!("{a_if}:vip");
        pair.a.ip(&[
            "addr",
            "add",
            "192.0.2.100/24",
            "dev",
            a_if,
            "label",
            &label,
        ]);
        let cap = Capture::open(&pair.b, &pair.b_if);

        let a_if = pair.a_if.clone();
        let (src, group) = pair.a.run(move || async move {
            assert_eq!(
                interface_address(&a_if, Family::V4).unwrap(),
                Some("192.0.2.1".parse().unwrap())
            );
            let s = VrrpSender::open(&a_if, Family::V4, &SenderConfig::default()).unwrap();
            s.send_multicast(&v2_pdu()).unwrap();
            s.send(&v2_pdu(), "192.0.2.2".parse().unwrap()).unwrap();
            (s.source(), s.group())
        });
        assert_eq!(src, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(group, IpAddr::V4(VRRP_GROUP_V4));

        for (dst, dst_mac) in [
            ([224, 0, 0, 18], Some([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12])),
            ([192, 0, 2, 2], None),
        ] {
            let f = cap
                .expect(Duration::from_secs(5), |f| {
                    f.len() >= 34 && f[12..14] == [0x08, 0x00] && f[23] == 112 && f[30..34] == dst
                })
                .unwrap_or_else(|| panic!("no advert to {dst:?} captured"));
            if let Some(mac) = dst_mac {
                assert_eq!(f[0..6], mac, "multicast MAC");
            }
            let ihl = usize::from(f[14] & 0x0f) * 4;
            assert_eq!(f[15], 0xc0, "TOS");
            assert_eq!(f[22], 255, "TTL");
            assert_eq!(f[26..30], [192, 0, 2, 1], "source");
            assert_eq!(&f[14 + ihl..], &v2_pdu()[..], "payload");
        }
    }

    #[test]
    fn ipv6_advert_has_hop_limit_tclass_and_kernel_checksum() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        let cap = Capture::open(&pair.b, &pair.b_if);
        let a_if = pair.a_if.clone();
        let src = pair.a.run(move || async move {
            let src = interface_address(&a_if, Family::V6).unwrap();
            let s = VrrpSender::open(&a_if, Family::V6, &SenderConfig::default()).unwrap();
            s.send_multicast(&v3_pdu_v6()).unwrap();
            src
        });
        let Some(IpAddr::V6(src)) = src else {
            panic!("no link-local on veth: {src:?}")
        };
        let f = cap
            .expect(Duration::from_secs(5), |f| {
                f.len() >= 54 && f[12..14] == [0x86, 0xdd] && f[20] == 112
            })
            .expect("no IPv6 advert captured");
        assert_eq!(f[0..6], [0x33, 0x33, 0, 0, 0, 0x12], "multicast MAC");
        let tclass = ((f[14] & 0x0f) << 4) | (f[15] >> 4);
        assert_eq!(tclass, 0xc0, "traffic class");
        assert_eq!(f[21], 255, "hop limit");
        assert_eq!(f[22..38], src.octets(), "source is the link-local");
        assert_eq!(f[38..54], VRRP_GROUP_V6.octets(), "destination");
        let pdu = &f[54..];
        assert_eq!(pdu.len(), v3_pdu_v6().len());
        assert_ne!(pdu[6..8], [0, 0], "kernel filled the checksum");
        let len = (pdu.len() as u32).to_be_bytes();
        let pseudo = [&f[22..54], &len[..], &[0, 0, 0, 112][..], pdu];
        assert_eq!(checksum(&pseudo), 0, "checksum covers the pseudo-header");
    }

    #[test]
    fn joins_the_group_but_never_queues() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        pair.a
            .ip(&["addr", "add", "192.0.2.1/24", "dev", &pair.a_if]);
        pair.b
            .ip(&["addr", "add", "192.0.2.2/24", "dev", &pair.b_if]);
        let (a_if, b_if) = (pair.a_if.clone(), pair.b_if.clone());
        // Keep A's sender open (its fd outlives the namespace thread) while B floods it.
        let sender = pair.a.run(move || async move {
            VrrpSender::open(&a_if, Family::V4, &SenderConfig::default()).unwrap()
        });
        let maddr = pair.a.ip(&["maddr", "show", "dev", &pair.a_if]);
        assert!(maddr.contains("224.0.0.18"), "group not joined: {maddr}");
        assert!(maddr.contains("01:00:5e:00:00:12"), "MAC filter: {maddr}");
        pair.b.run(move || async move {
            let s = VrrpSender::open(&b_if, Family::V4, &SenderConfig::default()).unwrap();
            for _ in 0..50 {
                s.send_multicast(&v2_pdu()).unwrap();
                s.send(&v2_pdu(), "192.0.2.1".parse().unwrap()).unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        let mut buf = [0u8; 256];
        // SAFETY: recv into a valid buffer on an fd we own.
        let n = unsafe {
            libc::recv(
                sender.as_fd().as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        let err = io::Error::last_os_error();
        assert_eq!(n, -1, "the sender socket queued a packet");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn errors_name_the_call_and_interface() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        let a_if = pair.a_if.clone();
        pair.a.run(move || async move {
            let e =
                VrrpSender::open("xvn-nope0", Family::V4, &SenderConfig::default()).unwrap_err();
            assert!(
                e.to_string().starts_with("if_nametoindex(xvn-nope0)"),
                "{e}"
            );
            let config = SenderConfig {
                src: Some("198.51.100.7".parse().unwrap()),
                ..SenderConfig::default()
            };
            let e = VrrpSender::open(&a_if, Family::V4, &config).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("bind(IPv4 source) on {a_if}: ")),
                "{e}"
            );
            let s = VrrpSender::open(&a_if, Family::V6, &SenderConfig::default()).unwrap();
            let e = s.send(&[0; 8], "192.0.2.9".parse().unwrap()).unwrap_err();
            assert!(matches!(e, SocketError::FamilyMismatch { .. }), "{e}");
        });
    }
}
