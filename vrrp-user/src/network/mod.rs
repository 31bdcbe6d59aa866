//! Network I/O: VRRP sockets, gratuitous ARP / unsolicited NA, VIPs and links over netlink.
//!
//! Everything here is the *sending* and *configuring* edge of the daemon; adverts are
//! received by the XDP program, never read from a socket.
//!
//! - [`socket`]: raw IP protocol 112 sockets that send adverts (multicast or unicast).
//! - [`garp`]: gratuitous ARP and unsolicited neighbour advertisements over AF_PACKET.
//! - [`netlink`]: links, addresses, VIPs and link-state events over rtnetlink.
//! - [`vmac`]: `use_vmac` macvlan interfaces with the VRRP virtual MAC.

pub mod garp;
pub mod netlink;
pub mod socket;
pub mod vmac;

#[cfg(test)]
pub(crate) mod testns;

/// An Ethernet MAC address.
pub type MacAddr = [u8; 6];

/// Address family of a VRRP instance (one instance is either IPv4 or IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &std::net::IpAddr) -> Self {
        match addr {
            std::net::IpAddr::V4(_) => Family::V4,
            std::net::IpAddr::V6(_) => Family::V6,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(mac: &MacAddr) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}
