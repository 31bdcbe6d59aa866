//! Network I/O: VRRP sockets, gratuitous ARP / unsolicited NA, VIPs and links over netlink.
//!
//! Everything here is the *sending* and *configuring* edge of the daemon; adverts are
//! received by the XDP program, never read from a socket.
//!
//! - [`socket`]: raw IP protocol 112 sockets that send adverts (multicast or unicast).
//! - [`frames`]: whole multicast advert frames, batched with `sendmmsg` over AF_PACKET.
//! - [`garp`]: gratuitous ARP and unsolicited neighbour advertisements over AF_PACKET.
//! - [`netlink`]: links, addresses, VIPs and link-state events over rtnetlink.
//! - [`vmac`]: `use_vmac` macvlan interfaces with the VRRP virtual MAC.
//! - [`routes`]: `virtual_routes` and `virtual_rules` over rtnetlink.
//! - [`monitor`]: deletions of addresses, routes and rules (what the daemon holds).
//! - [`firewall`]: accept mode's nftables rules dropping traffic to the VIPs.

pub mod firewall;
pub mod frames;
pub mod garp;
pub mod monitor;
pub mod netlink;
pub mod routes;
pub mod socket;
pub mod vmac;

#[cfg(test)]
pub(crate) mod testns;

/// An Ethernet MAC address.
pub type MacAddr = [u8; 6];

/// The address family type shared with the packet codec.
pub use crate::packet::Family;

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(mac: &MacAddr) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}
