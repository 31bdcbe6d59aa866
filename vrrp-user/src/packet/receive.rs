//! The recorder's receive checks, restated in userspace over a whole frame:
//! the same checks as the XDP program `vrrp_rx`, in the same order, with
//! the same [`DropReason`]s. The XDP tests run both on the same frames
//! (valid, malformed, fuzzed) and require them to agree; it also says why a
//! captured frame would be dropped.
//!
//! What the XDP program knows beyond this is its peer tables: a valid
//! advert it cannot record (every slot protected) is `PeersFull` there and
//! accepted here.

use std::net::IpAddr;

use vrrp_common::{
    addr_bytes, family_of, instance_flags, DropReason, InstanceConfig, InstanceKey, PeerKey,
    FAMILY_IPV4, FAMILY_IPV6, MAX_LOCAL_ADDRS,
};

use super::{
    decode, decode_header, frame::ETH_HEADER_LEN, parse_ip, Advert, Auth, Family, PacketError,
    Version, IPPROTO_VRRP, VRRP_TTL,
};

/// What the kernel's maps say about instances and their unicast peers.
pub trait Registry {
    /// INSTANCES\[key\].
    fn instance(&self, key: &InstanceKey) -> Option<InstanceConfig>;
    /// Whether SOURCES holds `peer`.
    fn is_listed(&self, peer: &PeerKey) -> bool;
}

/// An advert that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub peer: PeerKey,
    pub advert: Advert,
    pub ttl: u8,
    pub multicast: bool,
    /// A configured unicast peer of a unicast instance.
    pub listed: bool,
}

/// What the recorder does with a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not IP protocol 112 (or too short to tell): not counted.
    NotVrrp,
    Dropped(DropReason),
    Accepted(Received),
}

/// The family of a protocol-112 frame, as the XDP program's first test sees it.
fn vrrp_family(frame: &[u8]) -> Option<Family> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    match ethertype {
        vrrp_common::ETH_P_IPV6 => {
            (*frame.get(ETH_HEADER_LEN + 6)? == IPPROTO_VRRP).then_some(Family::V6)
        }
        vrrp_common::ETH_P_IP => {
            (*frame.get(ETH_HEADER_LEN + 9)? == IPPROTO_VRRP).then_some(Family::V4)
        }
        _ => None,
    }
}

fn reason(e: PacketError) -> Verdict {
    match e.reason() {
        Some(r) => Verdict::Dropped(r),
        None => Verdict::NotVrrp,
    }
}

/// A source no host sends from (the kernel's martian sources).
pub fn is_martian(src: IpAddr) -> bool {
    match src {
        IpAddr::V4(a) => {
            let b0 = a.octets()[0];
            b0 == 0 || b0 == 127 || a.is_multicast() || a.is_broadcast()
        }
        IpAddr::V6(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast(),
    }
}

/// fe80::/10.
pub fn is_link_local(src: IpAddr) -> bool {
    matches!(src, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
}

/// Whether `addr` is among the instance's own addresses.
pub fn is_local(config: &InstanceConfig, addr: IpAddr) -> bool {
    let bytes = addr_bytes(addr);
    config
        .local
        .iter()
        .take(usize::from(config.local_count).min(MAX_LOCAL_ADDRS))
        .any(|l| *l == bytes)
}

/// Applies the recorder's checks to `frame` received on `ifindex`.
pub fn check(frame: &[u8], ifindex: u32, registry: &impl Registry) -> Verdict {
    let Some(family) = vrrp_family(frame) else {
        return Verdict::NotVrrp;
    };
    let ip = match parse_ip(frame) {
        Ok(ip) => ip,
        Err(e) => return reason(e),
    };
    let header = match decode_header(ip.payload) {
        Ok(h) => h,
        Err(e) => return reason(e),
    };
    let map_family = match family {
        Family::V4 => FAMILY_IPV4,
        Family::V6 => FAMILY_IPV6,
    };
    let key = InstanceKey::new(ifindex, map_family, header.vrid);
    let Some(config) = registry.instance(&key) else {
        return Verdict::Dropped(DropReason::UnknownVrid);
    };
    if config.version != header.version.number() {
        return Verdict::Dropped(DropReason::BadVersion);
    }
    let multicast = ip.dst.is_multicast();
    let unicast = config.flags & instance_flags::UNICAST != 0;
    if multicast == unicast {
        return Verdict::Dropped(DropReason::ModeMismatch);
    }
    let for_us = if multicast {
        family_of(&ip.dst) == map_family && addr_bytes(ip.dst) == config.group
    } else {
        is_local(&config, ip.dst)
    };
    if !for_us {
        return Verdict::Dropped(DropReason::WrongDestination);
    }
    if is_martian(ip.src) {
        return Verdict::Dropped(DropReason::MartianSource);
    }
    if is_local(&config, ip.src) {
        return Verdict::Dropped(DropReason::OwnSource);
    }
    if multicast {
        if ip.ttl != VRRP_TTL {
            return Verdict::Dropped(DropReason::BadTtl);
        }
        if family == Family::V6
            && config.flags & instance_flags::LINK_LOCAL_SOURCE != 0
            && !is_link_local(ip.src)
        {
            return Verdict::Dropped(DropReason::NotLinkLocal);
        }
    }
    let as_v2 = family == Family::V4 && config.flags & instance_flags::CHECKSUM_AS_V2 != 0;
    let pseudo = (header.version == Version::V3 && !as_v2).then_some((ip.src, ip.dst));
    let advert = match decode(ip.payload, family, pseudo) {
        Ok(a) => a,
        Err(e) => return reason(e),
    };
    if advert.version == Version::V2 {
        if advert.interval_cs != u16::from(config.v2_interval_s) * 100 {
            return Verdict::Dropped(DropReason::IntervalMismatch);
        }
        let matches = match advert.auth {
            Auth::Pass(data) => {
                config.auth_type == 1
                    && Auth::Pass(data).constant_time_eq(&Auth::Pass(config.auth_data))
            }
            other => other.type_number() == config.auth_type,
        };
        if !matches {
            return Verdict::Dropped(DropReason::AuthMismatch);
        }
    }
    let peer = PeerKey::in_instance(key, addr_bytes(ip.src));
    let listed = unicast && registry.is_listed(&peer);
    if unicast && config.flags & instance_flags::CHECK_UNICAST_SRC != 0 && !listed {
        return Verdict::Dropped(DropReason::UnlistedSource);
    }
    Verdict::Accepted(Received {
        peer,
        advert,
        ttl: ip.ttl,
        multicast,
        listed,
    })
}

/// A [`Registry`] held in memory (tests, and checking captured frames
/// against a configuration).
#[derive(Clone, Debug, Default)]
pub struct StaticRegistry {
    pub instances: Vec<(InstanceKey, InstanceConfig)>,
    pub sources: Vec<PeerKey>,
}

impl Registry for StaticRegistry {
    fn instance(&self, key: &InstanceKey) -> Option<InstanceConfig> {
        self.instances
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, c)| *c)
    }

    fn is_listed(&self, peer: &PeerKey) -> bool {
        self.sources.contains(peer)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        bpf::XdpInstance,
        packet::{build_frame, FrameSpec},
    };

    const LO: u32 = 1;

    fn registry(vrid: u8, instance: &XdpInstance) -> StaticRegistry {
        let family = match instance.family {
            Family::V4 => FAMILY_IPV4,
            Family::V6 => FAMILY_IPV6,
        };
        let key = InstanceKey::new(LO, family, vrid);
        StaticRegistry {
            instances: vec![(key, instance.config().unwrap())],
            sources: instance
                .unicast_peers()
                .iter()
                .map(|p| PeerKey::for_source(key, *p).unwrap())
                .collect(),
        }
    }

    fn v2_instance() -> XdpInstance {
        XdpInstance::multicast(
            Version::V2,
            "224.0.0.18".parse().unwrap(),
            Duration::from_secs(1),
            Auth::password(b"secret1"),
            vec!["192.0.2.2".parse().unwrap()],
        )
    }

    fn advert(priority: u8) -> Advert {
        Advert {
            version: Version::V2,
            vrid: 51,
            priority,
            interval_cs: 100,
            addrs: vec!["192.0.2.100".parse().unwrap()],
            auth: Auth::password(b"secret1"),
        }
    }

    fn verdict(spec: &FrameSpec, advert: &Advert) -> Verdict {
        check(
            &build_frame(spec, advert).unwrap(),
            LO,
            &registry(51, &v2_instance()),
        )
    }

    #[test]
    fn a_valid_advert_is_accepted_with_its_fields() {
        let src = "192.0.2.1".parse().unwrap();
        match verdict(&FrameSpec::multicast(src), &advert(150)) {
            Verdict::Accepted(r) => {
                assert_eq!(r.peer.source(), src);
                assert_eq!(r.advert, advert(150));
                assert_eq!((r.ttl, r.multicast, r.listed), (255, true, false));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_check_names_its_reason() {
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let spec = FrameSpec::multicast(src);
        let cases: Vec<(&str, FrameSpec, Advert, DropReason)> = vec![
            (
                "other group",
                FrameSpec::new(src, "224.0.0.99".parse().unwrap()),
                advert(100),
                DropReason::WrongDestination,
            ),
            (
                "own source",
                FrameSpec::multicast("192.0.2.2".parse().unwrap()),
                advert(100),
                DropReason::OwnSource,
            ),
            (
                "loopback source",
                FrameSpec::multicast("127.0.0.1".parse().unwrap()),
                advert(100),
                DropReason::MartianSource,
            ),
            (
                "unicast to a multicast instance",
                FrameSpec::new(src, "192.0.2.2".parse().unwrap()),
                advert(100),
                DropReason::ModeMismatch,
            ),
            (
                "TTL 64",
                FrameSpec {
                    ttl: 64,
                    ..spec.clone()
                },
                advert(100),
                DropReason::BadTtl,
            ),
            (
                "other VRID",
                spec.clone(),
                Advert {
                    vrid: 52,
                    ..advert(100)
                },
                DropReason::UnknownVrid,
            ),
            (
                "wrong password",
                spec.clone(),
                Advert {
                    auth: Auth::password(b"guess"),
                    ..advert(100)
                },
                DropReason::AuthMismatch,
            ),
            (
                "interval 2 s",
                spec.clone(),
                Advert {
                    interval_cs: 200,
                    ..advert(100)
                },
                DropReason::IntervalMismatch,
            ),
        ];
        for (what, spec, advert, want) in cases {
            assert_eq!(verdict(&spec, &advert), Verdict::Dropped(want), "{what}");
        }
    }

    #[test]
    fn ipv6_multicast_wants_link_local_sources() {
        let instance = XdpInstance::multicast(
            Version::V3,
            "ff02::12".parse().unwrap(),
            Duration::from_secs(1),
            Auth::None,
            vec!["fe80::2".parse().unwrap()],
        );
        let a = Advert {
            version: Version::V3,
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            addrs: vec!["2001:db8::1".parse().unwrap()],
            auth: Auth::None,
        };
        let run = |src: &str| {
            let f = build_frame(&FrameSpec::multicast(src.parse().unwrap()), &a).unwrap();
            check(&f, LO, &registry(51, &instance))
        };
        assert!(matches!(run("fe80::1"), Verdict::Accepted(_)));
        assert_eq!(
            run("2001:db8::7"),
            Verdict::Dropped(DropReason::NotLinkLocal)
        );
        assert_eq!(run("ff02::1"), Verdict::Dropped(DropReason::MartianSource));
    }

    #[test]
    fn frames_that_are_not_vrrp_are_not_counted() {
        let mut f = build_frame(
            &FrameSpec::multicast("192.0.2.1".parse().unwrap()),
            &advert(100),
        )
        .unwrap();
        let registry = registry(51, &v2_instance());
        assert_eq!(check(&f[..23], LO, &registry), Verdict::NotVrrp);
        f[14 + 9] = 6;
        assert_eq!(check(&f, LO, &registry), Verdict::NotVrrp);
    }
}
