//! Gratuitous ARP and unsolicited neighbour advertisements, as keepalived sends them.
//!
//! Both are whole Ethernet frames built here ([`build_garp`], [`build_unsolicited_na`],
//! pure and byte-testable) and sent on an AF_PACKET socket. We build the NA frame too,
//! rather than use an ICMPv6 raw socket, because:
//! - the source MAC is ours to choose (the virtual MAC on a `use_vmac` interface),
//! - it does not depend on the interface having a usable (non-tentative) IPv6 source,
//! - an ICMPv6 raw socket would receive every ICMPv6 packet; an AF_PACKET socket opened
//!   with protocol 0 receives nothing, so nothing ever queues,
//! - one code path for both families, and the frame on the wire is the frame we tested.
//!
//! Like keepalived, the NA's IPv6 source is the VIP itself (it is assigned by then).

use std::{
    io,
    mem::{size_of, zeroed},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsFd, AsRawFd, BorrowedFd},
    time::Duration,
};

use socket2::{Domain, Socket, Type};
use thiserror::Error;

use super::{fmt_mac, MacAddr};

pub const ETH_BROADCAST: MacAddr = [0xff; 6];
/// ff02::1 mapped to Ethernet (RFC 2464 §7).
pub const ETH_ALL_NODES: MacAddr = [0x33, 0x33, 0, 0, 0, 1];
pub const IPV6_ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

use vrrp_common::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6};
const IPPROTO_ICMPV6: u8 = 58;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_OPT_TARGET_LL_ADDR: u8 = 2;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_OVERRIDE: u8 = 0x20;

/// Ethernet + ARP, no padding (the NIC pads to 60 bytes, as for keepalived's frames).
pub const GARP_LEN: usize = 14 + 28;
/// Ethernet + IPv6 + NA (8 + 16) + target link-layer address option (8).
pub const NA_LEN: usize = 14 + 40 + 32;

#[derive(Debug, Error)]
pub enum GarpError {
    #[error("socket(AF_PACKET, SOCK_RAW, 0) for {ifname}: {source}")]
    Socket {
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
    #[error("sendto(AF_PACKET) {what} for {vip} on {ifname}: {source}")]
    Send {
        what: &'static str,
        vip: IpAddr,
        ifname: String,
        #[source]
        source: io::Error,
    },
}

/// A gratuitous ARP: broadcast ARP request with sender IP = target IP = `vip`, sender
/// MAC = `src_mac` and target MAC ff:ff:ff:ff:ff:ff (keepalived's choice).
pub fn build_garp(src_mac: MacAddr, vip: Ipv4Addr) -> [u8; GARP_LEN] {
    let mut f = [0u8; GARP_LEN];
    f[0..6].copy_from_slice(&ETH_BROADCAST);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    let arp = &mut f[14..];
    arp[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    arp[2..4].copy_from_slice(&ETH_P_IP.to_be_bytes());
    arp[4] = 6;
    arp[5] = 4;
    arp[6..8].copy_from_slice(&1u16.to_be_bytes()); // request
    arp[8..14].copy_from_slice(&src_mac);
    arp[14..18].copy_from_slice(&vip.octets());
    arp[18..24].copy_from_slice(&ETH_BROADCAST);
    arp[24..28].copy_from_slice(&vip.octets());
    f
}

/// An unsolicited neighbour advertisement for `vip` to ff02::1: hop limit 255, Override
/// set, Solicited clear, Router as given, target link-layer address option = `src_mac`.
pub fn build_unsolicited_na(src_mac: MacAddr, vip: Ipv6Addr, router: bool) -> [u8; NA_LEN] {
    let mut f = [0u8; NA_LEN];
    f[0..6].copy_from_slice(&ETH_ALL_NODES);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());

    let (ip6, icmp) = f[14..].split_at_mut(40);
    ip6[0] = 0x60; // version 6, traffic class 0, flow label 0
    ip6[4..6].copy_from_slice(&(icmp.len() as u16).to_be_bytes());
    ip6[6] = IPPROTO_ICMPV6;
    ip6[7] = 255; // RFC 4861: receivers drop NDP with any other hop limit
    ip6[8..24].copy_from_slice(&vip.octets());
    ip6[24..40].copy_from_slice(&IPV6_ALL_NODES.octets());

    icmp[0] = ND_NEIGHBOR_ADVERT;
    icmp[4] = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    icmp[8..24].copy_from_slice(&vip.octets());
    icmp[24] = ND_OPT_TARGET_LL_ADDR;
    icmp[25] = 1; // length in units of 8 octets
    icmp[26..32].copy_from_slice(&src_mac);

    let sum = icmpv6_checksum(&vip, &IPV6_ALL_NODES, icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    f
}

/// ICMPv6 checksum: pseudo-header (src, dst, upper-layer length, next header) + message.
fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum = 0u32;
    let mut add = |bytes: &[u8]| {
        for c in bytes.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, IPPROTO_ICMPV6]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether `ifname` forwards IPv6 (the NA Router flag), from
/// `/proc/sys/net/ipv6/conf/IF/forwarding` of the calling thread's namespace.
/// Unreadable (no IPv6) counts as not forwarding.
pub fn ipv6_forwarding(ifname: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{ifname}/forwarding"))
        .map(|s| s.trim() != "0")
        .unwrap_or(false)
}

/// How a burst is paced: keepalived's `garp_master_repeat`, `vrrp_garp_interval` and
/// `vrrp_gna_interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    /// Frames per VIP.
    pub repeat: u32,
    /// Gap after each gratuitous ARP.
    pub garp_interval: Duration,
    /// Gap after each unsolicited NA.
    pub gna_interval: Duration,
}

impl Default for Pacing {
    /// keepalived's defaults: 5 per VIP, no gap.
    fn default() -> Self {
        Self {
            repeat: 5,
            garp_interval: Duration::ZERO,
            gna_interval: Duration::ZERO,
        }
    }
}

/// What a burst did. A burst is best effort: one failed frame does not stop the rest.
#[derive(Debug, Default)]
pub struct BurstReport {
    pub sent: usize,
    pub errors: Vec<GarpError>,
}

/// Sends GARP / NA frames out of one interface with a given source MAC.
#[derive(Debug)]
pub struct GarpSender {
    socket: Socket,
    ifname: String,
    ifindex: u32,
    mac: MacAddr,
}

impl GarpSender {
    /// `mac` is the interface's MAC, or the virtual MAC for `use_vmac`. Must run in the
    /// interface's network namespace.
    pub fn open(ifname: &str, mac: MacAddr) -> Result<Self, GarpError> {
        let ifindex =
            nix::net::if_::if_nametoindex(ifname).map_err(|source| GarpError::NoSuchInterface {
                ifname: ifname.to_owned(),
                source,
            })?;
        // Protocol 0: the socket can send but is never handed a received frame.
        let socket = Socket::new(Domain::PACKET, Type::RAW, None)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|source| GarpError::Socket {
                ifname: ifname.to_owned(),
                source,
            })?;
        Ok(Self {
            socket,
            ifname: ifname.to_owned(),
            ifindex,
            mac,
        })
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// One gratuitous ARP for `vip`.
    pub fn send_garp(&self, vip: Ipv4Addr) -> Result<(), GarpError> {
        let frame = build_garp(self.mac, vip);
        self.send_frame(&frame, ETH_P_ARP, "gratuitous ARP", IpAddr::V4(vip))
    }

    /// One unsolicited NA for `vip`.
    pub fn send_na(&self, vip: Ipv6Addr, router: bool) -> Result<(), GarpError> {
        let frame = build_unsolicited_na(self.mac, vip, router);
        self.send_frame(&frame, ETH_P_IPV6, "unsolicited NA", IpAddr::V6(vip))
    }

    /// GARP for an IPv4 VIP, NA for an IPv6 one (Router flag from the forwarding sysctl).
    pub fn announce(&self, vip: IpAddr) -> Result<(), GarpError> {
        match vip {
            IpAddr::V4(v4) => self.send_garp(v4),
            IpAddr::V6(v6) => self.send_na(v6, ipv6_forwarding(&self.ifname)),
        }
    }

    /// `pacing.repeat` rounds over `vips` (round-robin, as keepalived), sleeping the
    /// family's interval after each frame but the last.
    pub async fn burst(&self, vips: &[IpAddr], pacing: Pacing) -> BurstReport {
        let mut report = BurstReport::default();
        let router = vips.iter().any(IpAddr::is_ipv6) && ipv6_forwarding(&self.ifname);
        let total = vips.len() * pacing.repeat as usize;
        let mut n = 0;
        for _ in 0..pacing.repeat {
            for vip in vips {
                let (result, gap) = match *vip {
                    IpAddr::V4(v4) => (self.send_garp(v4), pacing.garp_interval),
                    IpAddr::V6(v6) => (self.send_na(v6, router), pacing.gna_interval),
                };
                match result {
                    Ok(()) => report.sent += 1,
                    Err(e) => {
                        tracing::warn!("{e}");
                        report.errors.push(e);
                    }
                }
                n += 1;
                if n < total && !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
            }
        }
        report
    }

    fn send_frame(
        &self,
        frame: &[u8],
        ethertype: u16,
        what: &'static str,
        vip: IpAddr,
    ) -> Result<(), GarpError> {
        // SAFETY: sockaddr_ll is plain data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        // skb->protocol of the frame; the socket itself was opened with protocol 0.
        sll.sll_protocol = ethertype.to_be();
        sll.sll_ifindex = self.ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[0..6]);
        // SAFETY: a valid buffer and sockaddr_ll of the stated lengths.
        let n = unsafe {
            libc::sendto(
                self.socket.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(GarpError::Send {
                what,
                vip,
                ifname: self.ifname.clone(),
                source: io::Error::last_os_error(),
            });
        }
        tracing::debug!(
            "sent {what} for {vip} on {} from {}",
            self.ifname,
            fmt_mac(&self.mac)
        );
        Ok(())
    }
}

impl AsFd for GarpSender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::network::testns::{checksum, Capture, VethPair};

    const MAC: MacAddr = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

    #[test]
    fn garp_frame_bytes() {
        let f = build_garp(MAC, Ipv4Addr::new(192, 0, 2, 100));
        #[rustfmt::skip]
        let expected: [u8; GARP_LEN] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 192, 0, 2, 100,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 192, 0, 2, 100,
        ];
        assert_eq!(f, expected);
    }

    #[test]
    fn na_frame_fields_and_checksum() {
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        for router in [false, true] {
            let f = build_unsolicited_na(MAC, vip, router);
            assert_eq!(f[0..6], ETH_ALL_NODES);
            assert_eq!(f[6..12], MAC);
            assert_eq!(f[12..14], [0x86, 0xdd]);
            assert_eq!(f[14] >> 4, 6);
            assert_eq!(u16::from_be_bytes([f[18], f[19]]), 32, "payload length");
            assert_eq!(f[20], 58, "next header");
            assert_eq!(f[21], 255, "hop limit");
            assert_eq!(f[22..38], vip.octets(), "source is the VIP");
            assert_eq!(f[38..54], IPV6_ALL_NODES.octets());
            let icmp = &f[54..];
            assert_eq!(icmp[0], 136);
            assert_eq!(icmp[1], 0);
            let flags = if router { 0xa0 } else { 0x20 };
            assert_eq!(icmp[4..8], [flags, 0, 0, 0], "R/S/O flags");
            assert_eq!(icmp[8..24], vip.octets(), "target");
            assert_eq!(icmp[24..32], [2, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
            let pseudo = [&f[22..54], &[0, 0, 0, 32, 0, 0, 0, 58][..], icmp];
            assert_eq!(checksum(&pseudo), 0, "ICMPv6 checksum");
        }
    }

    #[test]
    fn paced_burst_on_the_wire() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        pair.a
            .sysctl_set(&format!("net/ipv6/conf/{}/forwarding", pair.a_if), "1");
        let cap = Capture::open(&pair.b, &pair.b_if);
        let a_if = pair.a_if.clone();
        let v4 = Ipv4Addr::new(192, 0, 2, 100);
        let v6: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let pacing = Pacing {
            repeat: 3,
            garp_interval: Duration::from_millis(30),
            gna_interval: Duration::from_millis(30),
        };
        let (report, took) = pair.a.run(move || async move {
            let s = GarpSender::open(&a_if, MAC).unwrap();
            let start = Instant::now();
            let r = s.burst(&[IpAddr::V4(v4), IpAddr::V6(v6)], pacing).await;
            (r, start.elapsed())
        });
        assert_eq!(report.sent, 6);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(
            took >= Duration::from_millis(150),
            "5 gaps of 30 ms, took {took:?}"
        );

        let frames = cap.collect(Duration::from_millis(500), |f| {
            f.len() >= 14 && f[6..12] == MAC
        });
        let garps: Vec<_> = frames
            .iter()
            .filter(|f| f[12..14] == [0x08, 0x06])
            .collect();
        let nas: Vec<_> = frames
            .iter()
            .filter(|f| f[12..14] == [0x86, 0xdd])
            .collect();
        assert_eq!(garps.len(), 3, "GARPs seen in B");
        assert_eq!(nas.len(), 3, "NAs seen in B");
        for f in garps {
            assert_eq!(f[0..6], ETH_BROADCAST);
            assert_eq!(f[20..22], [0, 1], "ARP request");
            assert_eq!(f[28..32], v4.octets(), "sender IP");
            assert_eq!(f[38..42], v4.octets(), "target IP");
        }
        for f in nas {
            assert_eq!(f[0..6], ETH_ALL_NODES);
            assert_eq!(f[21], 255);
            assert_eq!(f[54], 136);
            assert_eq!(f[58], 0xa0, "Router (forwarding on) + Override");
            assert_eq!(f[62..78], v6.octets());
        }
    }

    #[test]
    fn missing_interface_is_named() {
        let e = GarpSender::open("xvn-nope0", MAC).unwrap_err();
        assert!(
            e.to_string().starts_with("if_nametoindex(xvn-nope0)"),
            "{e}"
        );
    }
}
