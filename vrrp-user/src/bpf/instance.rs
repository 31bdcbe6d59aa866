//! What the XDP program must know about one instance, from what the
//! configuration says: [`XdpInstance`] → [`InstanceConfig`].

use std::{net::IpAddr, time::Duration};

use thiserror::Error;
use vrrp_common::{addr_bytes, instance_flags, InstanceConfig, MAX_LOCAL_ADDRS};

use crate::packet::{Auth, Family, Version};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum XdpConfigError {
    #[error("{what} {addr} is not an {family} address")]
    FamilyMismatch {
        what: &'static str,
        addr: IpAddr,
        family: Family,
    },
    #[error("VRRPv2 runs over IPv4 only")]
    V2OverIpv6,
    #[error("VRRPv2 advert interval {0:?} is not whole seconds in 1..=255")]
    V2Interval(Duration),
    #[error("VRRPv3 has no authentication")]
    AuthInV3,
    #[error("multicast group {0} is not a multicast address")]
    GroupNotMulticast(IpAddr),
    #[error("a unicast instance needs one of our own addresses (unicast_src_ip or the interface's) for adverts to be addressed to")]
    NoLocalAddress,
    #[error("{count} own addresses given; the kernel holds at most {max}")]
    TooManyLocal { count: usize, max: usize },
}

/// How adverts reach the instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// To `group` (`vrrp_mcast_group4/6`), TTL / hop limit 255.
    Multicast { group: IpAddr },
    /// To one of our own addresses, from `peers` (`unicast_peer`), which are
    /// never evicted from the peer table; with `check_source` (keepalived's
    /// `check_unicast_src` / `vrrp_check_unicast_src`) adverts from anyone
    /// else are dropped.
    Unicast {
        peers: Vec<IpAddr>,
        check_source: bool,
    },
}

/// One instance as the receive path sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpInstance {
    pub version: Version,
    pub family: Family,
    /// Our advert interval; a v2 advert with another is dropped.
    pub advert_int: Duration,
    /// v2 authentication; adverts with another type or password are dropped.
    pub auth: Auth,
    pub delivery: Delivery,
    /// Our own addresses on the instance's interface, the advert source
    /// first: a unicast advert must be addressed to one of them, and an
    /// advert from one of them is dropped.
    pub local: Vec<IpAddr>,
    /// v3 over IPv4: checksum without the pseudo-header.
    pub v3_checksum_as_v2: bool,
    /// IPv6 multicast: drop adverts whose source is not link-local. On by
    /// default (RFC 5798 §5.1.2.1 has adverts sent from the link-local
    /// address); keepalived itself does not check it, so a peer configured
    /// with a global `mcast_src_ip` needs it off.
    pub link_local_source: bool,
}

impl XdpInstance {
    /// A multicast instance: what `vrrp_instance` is without `unicast_peer`.
    pub fn multicast(
        version: Version,
        group: IpAddr,
        advert_int: Duration,
        auth: Auth,
        local: Vec<IpAddr>,
    ) -> Self {
        let family = Family::of(&group);
        Self {
            version,
            family,
            advert_int,
            auth,
            delivery: Delivery::Multicast { group },
            local,
            v3_checksum_as_v2: false,
            link_local_source: family == Family::V6,
        }
    }

    /// A unicast instance: adverts from `peers` to one of `local`.
    pub fn unicast(
        version: Version,
        family: Family,
        peers: Vec<IpAddr>,
        check_source: bool,
        advert_int: Duration,
        auth: Auth,
        local: Vec<IpAddr>,
    ) -> Self {
        Self {
            version,
            family,
            advert_int,
            auth,
            delivery: Delivery::Unicast {
                peers,
                check_source,
            },
            local,
            v3_checksum_as_v2: false,
            link_local_source: false,
        }
    }

    /// The configured unicast peers (none for multicast).
    pub fn unicast_peers(&self) -> &[IpAddr] {
        match &self.delivery {
            Delivery::Unicast { peers, .. } => peers,
            Delivery::Multicast { .. } => &[],
        }
    }

    /// The map value. Its `table` and `generation` are the map owner's
    /// ([`Maps::set_instance`](super::Maps::set_instance) fills them in).
    pub fn config(&self) -> Result<InstanceConfig, XdpConfigError> {
        let family = self.family;
        let same_family = |what: &'static str, addr: &IpAddr| {
            if Family::of(addr) == family {
                Ok(())
            } else {
                Err(XdpConfigError::FamilyMismatch {
                    what,
                    addr: *addr,
                    family,
                })
            }
        };
        let mut config = InstanceConfig {
            version: self.version.number(),
            ..Default::default()
        };
        match self.version {
            Version::V2 => {
                if family == Family::V6 {
                    return Err(XdpConfigError::V2OverIpv6);
                }
                let secs = self.advert_int.as_secs();
                if self.advert_int.subsec_nanos() != 0 || !(1..=255).contains(&secs) {
                    return Err(XdpConfigError::V2Interval(self.advert_int));
                }
                config.v2_interval_s = secs as u8;
                match self.auth {
                    Auth::Pass(data) => {
                        config.auth_type = self.auth.type_number();
                        config.auth_data = data;
                    }
                    Auth::None | Auth::Other(_) => config.auth_type = self.auth.type_number(),
                }
            }
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(XdpConfigError::AuthInV3);
                }
            }
        }
        match &self.delivery {
            Delivery::Multicast { group } => {
                same_family("multicast group", group)?;
                if !group.is_multicast() {
                    return Err(XdpConfigError::GroupNotMulticast(*group));
                }
                config.group = addr_bytes(*group);
                if family == Family::V6 && self.link_local_source {
                    config.flags |= instance_flags::LINK_LOCAL_SOURCE;
                }
            }
            Delivery::Unicast {
                peers,
                check_source,
            } => {
                for p in peers {
                    same_family("unicast peer", p)?;
                }
                if self.local.is_empty() {
                    return Err(XdpConfigError::NoLocalAddress);
                }
                config.flags |= instance_flags::UNICAST;
                if *check_source {
                    config.flags |= instance_flags::CHECK_UNICAST_SRC;
                }
            }
        }
        if self.v3_checksum_as_v2 && self.version == Version::V3 && family == Family::V4 {
            config.flags |= instance_flags::CHECKSUM_AS_V2;
        }
        if self.local.len() > MAX_LOCAL_ADDRS {
            return Err(XdpConfigError::TooManyLocal {
                count: self.local.len(),
                max: MAX_LOCAL_ADDRS,
            });
        }
        for (slot, addr) in config.local.iter_mut().zip(&self.local) {
            same_family("own address", addr)?;
            *slot = addr_bytes(*addr);
        }
        config.local_count = self.local.len() as u8;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn multicast_v2_pass() {
        let c = XdpInstance::multicast(
            Version::V2,
            v4("224.0.0.18"),
            Duration::from_secs(2),
            Auth::password(b"secret1"),
            vec![v4("192.0.2.2")],
        )
        .config()
        .unwrap();
        assert_eq!((c.version, c.v2_interval_s, c.auth_type), (2, 2, 1));
        assert_eq!(&c.auth_data, b"secret1\0");
        assert_eq!(c.flags, 0);
        assert_eq!(&c.group[..4], &[224, 0, 0, 18]);
        assert_eq!(c.local_count, 1);
        assert_eq!(&c.local[0][..4], &[192, 0, 2, 2]);
    }

    #[test]
    fn ipv6_multicast_requires_link_local_sources_by_default() {
        let mut i = XdpInstance::multicast(
            Version::V3,
            v4("ff02::12"),
            Duration::from_millis(50),
            Auth::None,
            vec![v4("fe80::2")],
        );
        let c = i.config().unwrap();
        assert_eq!(c.flags, instance_flags::LINK_LOCAL_SOURCE);
        assert_eq!(
            c.group,
            "ff02::12".parse::<std::net::Ipv6Addr>().unwrap().octets()
        );
        i.link_local_source = false;
        assert_eq!(i.config().unwrap().flags, 0);
    }

    #[test]
    fn unicast_flags() {
        let mut i = XdpInstance::unicast(
            Version::V3,
            Family::V4,
            vec![v4("192.0.2.1")],
            true,
            Duration::from_secs(1),
            Auth::None,
            vec![v4("192.0.2.2")],
        );
        i.v3_checksum_as_v2 = true;
        let c = i.config().unwrap();
        assert_eq!(
            c.flags,
            instance_flags::UNICAST
                | instance_flags::CHECK_UNICAST_SRC
                | instance_flags::CHECKSUM_AS_V2
        );
        assert_eq!(i.unicast_peers(), &[v4("192.0.2.1")]);
    }

    #[test]
    fn bad_combinations_are_named() {
        let base = XdpInstance::multicast(
            Version::V2,
            v4("224.0.0.18"),
            Duration::from_secs(1),
            Auth::None,
            vec![],
        );
        let with = |f: fn(&mut XdpInstance)| {
            let mut i = base.clone();
            f(&mut i);
            i.config().unwrap_err()
        };
        assert_eq!(
            with(|i| i.advert_int = Duration::from_millis(1500)),
            XdpConfigError::V2Interval(Duration::from_millis(1500))
        );
        assert_eq!(
            with(|i| i.delivery = Delivery::Multicast {
                group: "192.0.2.9".parse().unwrap()
            }),
            XdpConfigError::GroupNotMulticast("192.0.2.9".parse().unwrap())
        );
        assert_eq!(
            with(|i| {
                i.version = Version::V3;
                i.auth = Auth::password(b"x");
            }),
            XdpConfigError::AuthInV3
        );
        assert_eq!(
            with(|i| i.delivery = Delivery::Unicast {
                peers: vec![],
                check_source: false
            }),
            XdpConfigError::NoLocalAddress
        );
        assert!(matches!(
            with(|i| i.local = vec!["fe80::1".parse().unwrap()]),
            XdpConfigError::FamilyMismatch {
                what: "own address",
                ..
            }
        ));
        assert!(matches!(
            with(|i| i.local = vec!["192.0.2.1".parse().unwrap(); MAX_LOCAL_ADDRS + 1]),
            XdpConfigError::TooManyLocal { .. }
        ));
        assert_eq!(
            with(|i| {
                i.family = Family::V6;
                i.delivery = Delivery::Multicast {
                    group: "ff02::12".parse().unwrap(),
                };
            }),
            XdpConfigError::V2OverIpv6
        );
    }
}
