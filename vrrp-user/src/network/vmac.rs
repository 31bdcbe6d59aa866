//! `use_vmac`: a macvlan on the parent interface carrying the VRRP virtual MAC
//! (00:00:5e:00:01:VRID, IPv6 00:00:5e:00:02:VRID), set up as keepalived does, so a
//! failover moves the MAC and peers need no ARP/ND cache update.
//!
//! keepalived's settings, and why:
//! - macvlan mode private: the vmac receives frames for its own MAC only.
//! - IPv4: on the vmac `arp_ignore=1` (no ARP answers for the parent's addresses),
//!   `accept_local=1` (hear the other router's adverts from a local-looking source),
//!   `rp_filter=0` (receive on an address-less interface), and `disable_ipv6=1` (every
//!   router's vmac has the same MAC, so the same EUI-64 link-local: DAD would clash);
//!   on the parent `arp_ignore=1`, `arp_filter=1` (VIPs answer only via the vmac).
//! - IPv6: `addr_gen_mode=1` (none) for the same DAD reason, then the parent's
//!   link-local (or `ipv6_source`) added to the vmac as the advert source.

use std::net::{IpAddr, Ipv6Addr};

use netlink_packet_route::link::LinkFlag;
use thiserror::Error;

use super::{
    fmt_mac,
    netlink::{write_sysctl, Link, Netlink, NetlinkError, Vip},
    Family, MacAddr,
};

/// `MACVLAN_MODE_PRIVATE` from linux/if_link.h.
const MACVLAN_MODE_PRIVATE: u32 = 1;

#[derive(Debug, Error)]
pub enum VmacError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("{name} exists and is a {kind} interface, not a macvlan: refusing to touch it")]
    NotAMacvlan { name: String, kind: String },
    #[error("RTM_NEWLINK macvlan {name} on ifindex {parent}: created but not found")]
    Vanished { name: String, parent: u32 },
}

/// The VRRP virtual MAC for `vrid` (RFC 5798 §7.3).
pub fn virtual_mac(vrid: u8, family: Family) -> MacAddr {
    let kind = match family {
        Family::V4 => 0x01,
        Family::V6 => 0x02,
    };
    [0x00, 0x00, 0x5e, 0x00, kind, vrid]
}

/// keepalived's default name `vrrp.<VRID>`; IPv6 gets `vrrp6.<VRID>` so an IPv4 and an
/// IPv6 instance with one VRID on one parent do not fight over a name.
pub fn default_name(vrid: u8, family: Family) -> String {
    match family {
        Family::V4 => format!("vrrp.{vrid}"),
        Family::V6 => format!("vrrp6.{vrid}"),
    }
}

/// What to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmacSpec {
    pub parent_ifindex: u32,
    pub name: String,
    pub vrid: u8,
    pub family: Family,
    /// IPv6 only: link-local to put on the vmac (`unicast_src_ip`); default is the
    /// parent's link-local, else one derived from the parent's MAC (EUI-64).
    pub ipv6_source: Option<Ipv6Addr>,
}

impl VmacSpec {
    pub fn new(parent_ifindex: u32, vrid: u8, family: Family) -> Self {
        VmacSpec {
            parent_ifindex,
            name: default_name(vrid, family),
            vrid,
            family,
            ipv6_source: None,
        }
    }
}

/// A vmac interface that is up and configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vmac {
    pub ifindex: u32,
    pub name: String,
    pub mac: MacAddr,
    pub parent_ifindex: u32,
    pub family: Family,
    /// False when an existing vmac (e.g. from a previous run) was adopted.
    pub created: bool,
    /// The parent's `arp_ignore` and `arp_filter` before this vmac set them
    /// (IPv4), to restore when the last vmac on the parent goes.
    pub parent_arp: Option<ParentArp>,
}

/// A parent interface's ARP sysctls as they were.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentArp {
    pub parent: String,
    pub arp_ignore: String,
    pub arp_filter: String,
}

impl ParentArp {
    fn read(parent: &str) -> Option<Self> {
        let get = |key: &str| {
            std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{parent}/{key}"))
                .ok()
                .map(|v| v.trim().to_owned())
        };
        Some(ParentArp {
            parent: parent.to_owned(),
            arp_ignore: get("arp_ignore")?,
            arp_filter: get("arp_filter")?,
        })
    }

    /// Writes the values back, as keepalived does when its last vmac on the
    /// parent goes.
    pub fn restore(&self) -> Result<(), VmacError> {
        sysctl_if("ipv4/conf/{}/arp_ignore", &self.parent, &self.arp_ignore)?;
        sysctl_if("ipv4/conf/{}/arp_filter", &self.parent, &self.arp_filter)
    }
}

/// Creates the vmac, or adopts an existing macvlan of that name with the right MAC and
/// parent. A macvlan with the wrong MAC or parent is replaced (keepalived does the
/// same); any other kind of interface with that name is an error.
pub async fn ensure_vmac(nl: &Netlink, spec: &VmacSpec) -> Result<Vmac, VmacError> {
    let mac = virtual_mac(spec.vrid, spec.family);
    let parent = nl.link_by_index(spec.parent_ifindex).await?;

    let existing = match nl.link_by_name(&spec.name).await {
        Ok(link) => Some(link),
        Err(NetlinkError::NoSuchInterface(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let (link, created) = match existing {
        Some(link) if is_our_vmac(&link, spec.parent_ifindex, mac) => (link, false),
        Some(link) if link.kind.as_deref() == Some("macvlan") => {
            tracing::info!(
                "vmac {}: replacing macvlan with MAC {:?} on ifindex {:?}",
                spec.name,
                link.mac.as_ref().map(fmt_mac),
                link.parent
            );
            nl.del_link(link.ifindex).await?;
            (create(nl, spec, mac).await?, true)
        }
        Some(link) => {
            return Err(VmacError::NotAMacvlan {
                name: spec.name.clone(),
                kind: link.kind.unwrap_or_else(|| "physical".into()),
            })
        }
        None => (create(nl, spec, mac).await?, true),
    };

    // Applied on adoption too: a previous run may have died half-way.
    let mut parent_arp = None;
    match spec.family {
        Family::V4 => {
            for (key, value) in [
                ("ipv4/conf/{}/arp_ignore", "1"),
                ("ipv4/conf/{}/accept_local", "1"),
                ("ipv4/conf/{}/rp_filter", "0"),
                // keepalived sets it on its vmacs, so removing one VIP keeps the rest.
                ("ipv4/conf/{}/promote_secondaries", "1"),
                ("ipv6/conf/{}/disable_ipv6", "1"),
            ] {
                sysctl_if(key, &link.name, value)?;
            }
            parent_arp = ParentArp::read(&parent.name);
            sysctl_if("ipv4/conf/{}/arp_ignore", &parent.name, "1")?;
            sysctl_if("ipv4/conf/{}/arp_filter", &parent.name, "1")?;
        }
        Family::V6 => {
            sysctl_if("ipv6/conf/{}/addr_gen_mode", &link.name, "1")?;
            let source = match spec.ipv6_source {
                Some(src) => src,
                None => match nl.source_addresses(parent.ifindex, &parent.name).await?.1 {
                    Some(ll) => ll,
                    None => eui64_link_local(parent.mac.unwrap_or_default()),
                },
            };
            let vip = Vip {
                prefix: 64,
                ..Vip::host(IpAddr::V6(source))
            };
            nl.add_vip(link.ifindex, &vip).await?;
        }
    }
    nl.set_link_up(link.ifindex, true).await?;

    Ok(Vmac {
        ifindex: link.ifindex,
        name: link.name,
        mac,
        parent_ifindex: spec.parent_ifindex,
        family: spec.family,
        created,
        parent_arp,
    })
}

/// Deletes the vmac on stop. Already gone is success; an interface of that name that is
/// no longer our macvlan is left alone. The parent's ARP sysctls are the caller's to
/// restore ([`ParentArp::restore`]) once no vmac of ours is left on it.
pub async fn remove_vmac(nl: &Netlink, vmac: &Vmac) -> Result<(), VmacError> {
    let link = match nl.link_by_index(vmac.ifindex).await {
        Ok(link) => link,
        Err(NetlinkError::NoSuchInterface(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if link.name != vmac.name || !is_our_vmac(&link, vmac.parent_ifindex, vmac.mac) {
        tracing::warn!(
            "vmac {}: ifindex {} is now {} ({:?}), not removing it",
            vmac.name,
            vmac.ifindex,
            link.name,
            link.kind
        );
        return Ok(());
    }
    match nl.del_link(vmac.ifindex).await {
        Err(e) if e.errno() == Some(libc::ENODEV) => Ok(()),
        other => Ok(other?),
    }
}

fn is_our_vmac(link: &Link, parent: u32, mac: MacAddr) -> bool {
    link.kind.as_deref() == Some("macvlan") && link.mac == Some(mac) && link.parent == Some(parent)
}

async fn create(nl: &Netlink, spec: &VmacSpec, mac: MacAddr) -> Result<Link, VmacError> {
    let mut request = nl
        .handle()
        .link()
        .add()
        .macvlan(spec.name.clone(), spec.parent_ifindex, MACVLAN_MODE_PRIVATE)
        .address(mac.to_vec());
    // Create it down: sysctls (addr_gen_mode above all) must be in place before it is up.
    let header = &mut request.message_mut().header;
    header.flags.retain(|f| *f != LinkFlag::Up);
    header.change_mask.retain(|f| *f != LinkFlag::Up);
    request.execute().await.map_err(|e| {
        let target = format!("{} on ifindex {}", spec.name, spec.parent_ifindex);
        NetlinkError::from_rtnl("RTM_NEWLINK(macvlan)", target, e)
    })?;
    match nl.link_by_name(&spec.name).await {
        Ok(link) => Ok(link),
        Err(NetlinkError::NoSuchInterface(_)) => Err(VmacError::Vanished {
            name: spec.name.clone(),
            parent: spec.parent_ifindex,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Writes `net/<key>` with `{}` replaced by the interface name.
fn sysctl_if(key: &str, ifname: &str, value: &str) -> Result<(), VmacError> {
    Ok(write_sysctl(
        &format!("net/{}", key.replace("{}", ifname)),
        value,
    )?)
}

/// fe80::/64 with the modified EUI-64 interface identifier of `mac` (RFC 4291 App. A).
pub fn eui64_link_local(mac: MacAddr) -> Ipv6Addr {
    let [a, b, c, d, e, f] = mac;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        a ^ 0x02,
        b,
        c,
        0xff,
        0xfe,
        d,
        e,
        f,
    ])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::network::{
        garp::GarpSender,
        testns::{Capture, VethPair},
    };

    #[test]
    fn macs_names_and_eui64() {
        assert_eq!(virtual_mac(51, Family::V4), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac(255, Family::V6), [0, 0, 0x5e, 0, 2, 255]);
        assert_eq!(default_name(51, Family::V4), "vrrp.51");
        assert_eq!(default_name(51, Family::V6), "vrrp6.51");
        assert_eq!(
            eui64_link_local([0x00, 0x00, 0x5e, 0x00, 0x02, 0x33]),
            "fe80::200:5eff:fe00:233".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn ipv4_vmac_created_adopted_used_and_removed() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        let cap = Capture::open(&pair.b, &pair.b_if);
        let a_if = pair.a_if.clone();
        let (first, second) = pair.a.run(move || async move {
            let nl = Netlink::new().unwrap();
            let parent = nl.link_by_name(&a_if).await.unwrap().ifindex;
            let spec = VmacSpec::new(parent, 51, Family::V4);
            let first = ensure_vmac(&nl, &spec).await.unwrap();
            let second = ensure_vmac(&nl, &spec).await.unwrap();
            let garp = GarpSender::open(&first.name, first.mac).unwrap();
            garp.send_garp("192.0.2.100".parse().unwrap()).unwrap();
            (first, second)
        });
        assert!(first.created);
        assert_eq!(first.name, "vrrp.51");
        assert_eq!(first.mac, [0, 0, 0x5e, 0, 1, 51]);
        assert!(!second.created, "second ensure adopts");
        assert_eq!(second.ifindex, first.ifindex);

        let shown = pair.a.ip(&["-d", "link", "show", "dev", "vrrp.51"]);
        assert!(shown.contains("link/ether 00:00:5e:00:01:33"), "{shown}");
        assert!(shown.contains("macvlan mode private"), "{shown}");
        assert!(shown.contains(&format!("vrrp.51@{}", pair.a_if)), "{shown}");
        assert!(shown.contains(",UP"), "{shown}");
        for (key, want) in [
            ("net/ipv4/conf/vrrp.51/arp_ignore", "1"),
            ("net/ipv4/conf/vrrp.51/accept_local", "1"),
            ("net/ipv4/conf/vrrp.51/rp_filter", "0"),
            ("net/ipv6/conf/vrrp.51/disable_ipv6", "1"),
            (&format!("net/ipv4/conf/{}/arp_ignore", pair.a_if), "1"),
            (&format!("net/ipv4/conf/{}/arp_filter", pair.a_if), "1"),
        ] {
            assert_eq!(pair.a.sysctl_get(key), want, "{key}");
        }

        let garp = cap
            .expect(Duration::from_secs(3), |f| {
                f.len() >= 42 && f[12..14] == [8, 6]
            })
            .expect("GARP from the vmac");
        assert_eq!(garp[6..12], first.mac, "Ethernet source is the virtual MAC");
        assert_eq!(garp[22..28], first.mac, "ARP sender MAC is the virtual MAC");

        pair.a.run(move || async move {
            let nl = Netlink::new().unwrap();
            remove_vmac(&nl, &first).await.unwrap();
            remove_vmac(&nl, &first).await.unwrap();
        });
        assert!(pair.a.try_ip(&["link", "show", "dev", "vrrp.51"]).is_err());
        assert!(pair.a.try_ip(&["link", "show", "dev", &pair.a_if]).is_ok());
    }

    #[test]
    fn ipv6_vmac_has_parent_link_local_only() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        let a_if = pair.a_if.clone();
        let vmac = pair.a.run(move || async move {
            let nl = Netlink::new().unwrap();
            let parent = nl.link_by_name(&a_if).await.unwrap().ifindex;
            ensure_vmac(&nl, &VmacSpec::new(parent, 51, Family::V6))
                .await
                .unwrap()
        });
        assert_eq!(vmac.name, "vrrp6.51");
        let shown = pair.a.ip(&["link", "show", "dev", "vrrp6.51"]);
        assert!(shown.contains("link/ether 00:00:5e:00:02:33"), "{shown}");
        let parent_ll = pair.a.ip(&[
            "-6", "-br", "addr", "show", "dev", &pair.a_if, "scope", "link",
        ]);
        let parent_ll = parent_ll
            .split_whitespace()
            .nth(2)
            .expect("parent link-local");
        // Give addrconf a moment: with addr_gen_mode=none nothing else may appear.
        std::thread::sleep(Duration::from_millis(300));
        let vmac_addrs = pair.a.ip(&["-6", "-br", "addr", "show", "dev", "vrrp6.51"]);
        let addrs: Vec<_> = vmac_addrs.split_whitespace().skip(2).collect();
        assert_eq!(addrs, [parent_ll], "{vmac_addrs}");
    }

    #[test]
    fn conflicting_names() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        pair.a.ip(&[
            "link", "add", "link", &pair.a_if, "name", "vrrp.52", "type", "macvlan", "mode",
            "bridge",
        ]);
        pair.a
            .ip(&["link", "set", "vrrp.52", "address", "02:00:00:00:00:52"]);
        pair.a.ip(&[
            "link", "add", "vrrp.53", "type", "veth", "peer", "name", "xvp53",
        ]);
        let a_if = pair.a_if.clone();
        let (replaced, refused) = pair.a.run(move || async move {
            let nl = Netlink::new().unwrap();
            let parent = nl.link_by_name(&a_if).await.unwrap().ifindex;
            let replaced = ensure_vmac(&nl, &VmacSpec::new(parent, 52, Family::V4))
                .await
                .unwrap();
            let refused = ensure_vmac(&nl, &VmacSpec::new(parent, 53, Family::V4))
                .await
                .unwrap_err();
            (replaced, refused)
        });
        assert!(replaced.created);
        let shown = pair.a.ip(&["-d", "link", "show", "dev", "vrrp.52"]);
        assert!(shown.contains("link/ether 00:00:5e:00:01:34"), "{shown}");
        assert!(shown.contains("macvlan mode private"), "{shown}");
        assert!(
            matches!(&refused, VmacError::NotAMacvlan { kind, .. } if kind == "veth"),
            "{refused}"
        );
        assert!(
            pair.a.try_ip(&["link", "show", "dev", "vrrp.53"]).is_ok(),
            "veth kept"
        );
    }
}
