//! VRRP packet encoding, decoding and checksums (RFC 3768 / RFC 5798).
//!
//! Wire format of the VRRP PDU (what follows the IP header):
//! ```text
//!  0                   1                   2                   3
//! |Version| Type  |    VRID       |   Priority    | Count IP Addrs|
//! v2: | Auth Type   | Adver Int (s) |          Checksum             |
//! v3: |Rsvd | Max Adver Int (cs, 12 bits)       |  Checksum         |
//! |                  IPv4 / IPv6 addresses ...                    |
//! v2 only: |          Authentication Data (8 bytes)               |
//! ```
//! Bytes after the PDU (Ethernet padding, keepalived's 28-byte `auth_hmac`
//! trailer) are tolerated and ignored: the checksum covers the PDU only.

mod checksum;
mod frame;
pub mod receive;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

pub use checksum::{internet_checksum, Checksum};
pub use frame::{
    build_frame, multicast_mac, parse_frame, parse_ip, FrameSpec, IpPacket, ParsedFrame,
};
use vrrp_common::DropReason;
/// IP protocol number of VRRP; TTL / hop limit adverts are sent with (multicast
/// adverts with another are dropped).
pub use vrrp_common::{IPPROTO_VRRP, VRRP_TTL};

/// The only VRRP packet type.
pub const VRRP_TYPE_ADVERTISEMENT: u8 = 1;
/// TOS / traffic class of adverts (network control).
pub const VRRP_TOS: u8 = 0xc0;
/// Default IPv4 multicast group (`vrrp_mcast_group4`).
pub const MCAST_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// Default IPv6 multicast group (`vrrp_mcast_group6`).
pub const MCAST_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Fixed header: version/type, VRID, priority, count, auth/interval, checksum.
pub const HEADER_LEN: usize = 8;
/// VRRPv2 authentication data, present whatever the auth type.
pub const V2_AUTH_DATA_LEN: usize = 8;
/// Length of keepalived's `auth_hmac` trailer, which may follow the PDU.
pub const AUTH_HMAC_TRAILER_LEN: usize = 28;
/// v3 interval field width: 12 bits of centiseconds (max 40.95 s).
pub const V3_MAX_INTERVAL_CS: u16 = 0x0fff;
/// v2 interval field: whole seconds in 8 bits.
pub const V2_MAX_INTERVAL_S: u16 = 255;

const AUTH_TYPE_NONE: u8 = 0;
const AUTH_TYPE_PASS: u8 = 1;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PacketError {
    // Decoding the PDU.
    #[error("VRRP PDU of {len} bytes is shorter than the {HEADER_LEN}-byte header")]
    TooShortForHeader { len: usize },
    #[error("VRRP version {0} is neither 2 nor 3")]
    UnknownVersion(u8),
    #[error("VRRP type {0} is not 1 (advertisement)")]
    NotAnAdvertisement(u8),
    #[error(
        "VRRP PDU of {len} bytes is shorter than the {needed} bytes its {count} addresses need"
    )]
    TooShortForAddresses {
        count: u8,
        needed: usize,
        len: usize,
    },
    #[error("VRRP checksum {found:#06x} is wrong (computed {computed:#06x})")]
    BadChecksum { found: u16, computed: u16 },
    #[error("advert interval is zero")]
    ZeroInterval,

    // Both directions.
    #[error("VRRPv2 is IPv4 only")]
    V2OverIpv6,
    #[error("VRRPv3 over IPv6 needs the pseudo-header (source and destination) for its checksum")]
    PseudoHeaderRequired,
    #[error("pseudo-header addresses {src} -> {dst} are not of the advert's address family")]
    PseudoHeaderFamily { src: IpAddr, dst: IpAddr },

    // Encoding.
    #[error("{0} addresses do not fit the 8-bit count")]
    TooManyAddresses(usize),
    #[error("address {0} is not of the advert's address family")]
    MixedFamilies(IpAddr),
    #[error("VRRPv2 interval {0} cs is not a whole number of seconds")]
    IntervalNotWholeSeconds(u16),
    #[error("interval {interval_cs} cs is outside 1..={max_cs} for VRRP{version:?}")]
    IntervalOutOfRange {
        version: Version,
        interval_cs: u16,
        max_cs: u16,
    },
    #[error("VRRPv3 has no authentication field")]
    AuthenticationInV3,

    // Frames (test fixtures).
    #[error("frame of {len} bytes is too short for {layer}")]
    FrameTooShort { layer: &'static str, len: usize },
    #[error("ethertype {0:#06x} is neither IPv4 nor IPv6")]
    NotIp(u16),
    #[error("IP version field {found} does not match the ethertype")]
    IpVersionMismatch { found: u8 },
    #[error("IPv4 header length {0} bytes is invalid")]
    BadIpv4HeaderLength(usize),
    #[error("IPv4 header checksum is wrong")]
    BadIpv4HeaderChecksum,
    #[error("IP length {ip_len} exceeds the {available} bytes present")]
    IpLengthBeyondFrame { ip_len: usize, available: usize },
    #[error("IPv4 total length {ip_len} is below its header length {header_len}")]
    IpLengthBelowHeader { ip_len: usize, header_len: usize },
    #[error("IPv4 fragment (VRRP is never fragmented)")]
    Fragment,
    #[error("IP protocol / next header {0} is not VRRP (112)")]
    NotVrrp(u8),
    #[error("IPv4 options of {0} bytes exceed 40")]
    Ipv4OptionsTooLong(usize),
}

impl PacketError {
    /// The recorder's drop counter for this error, where the XDP program
    /// checks the same thing (`None`: not a received advert's fault, or not
    /// a VRRP frame at all).
    pub fn reason(&self) -> Option<DropReason> {
        use PacketError::*;
        Some(match self {
            TooShortForHeader { .. } | FrameTooShort { .. } | IpLengthBeyondFrame { .. } => {
                DropReason::Truncated
            }
            UnknownVersion(_) | V2OverIpv6 => DropReason::BadVersion,
            NotAnAdvertisement(_) => DropReason::BadType,
            TooShortForAddresses { .. } => DropReason::BadLength,
            BadChecksum { .. } => DropReason::BadChecksum,
            ZeroInterval => DropReason::IntervalMismatch,
            IpVersionMismatch { .. } | BadIpv4HeaderLength(_) | IpLengthBelowHeader { .. } => {
                DropReason::BadIpHeader
            }
            BadIpv4HeaderChecksum => DropReason::BadIpChecksum,
            Fragment => DropReason::Fragment,
            PseudoHeaderRequired
            | PseudoHeaderFamily { .. }
            | TooManyAddresses(_)
            | MixedFamilies(_)
            | IntervalNotWholeSeconds(_)
            | IntervalOutOfRange { .. }
            | AuthenticationInV3
            | NotIp(_)
            | NotVrrp(_)
            | Ipv4OptionsTooLong(_) => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    pub fn from_number(number: u8) -> Option<Self> {
        match number {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

impl Family {
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    pub fn multicast_group(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(MCAST_GROUP_V4),
            Family::V6 => IpAddr::V6(MCAST_GROUP_V6),
        }
    }
}

/// VRRPv2 authentication. v3 adverts always carry `Auth::None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Type 0. The 8 data bytes are sent as zeros and ignored on receive.
    None,
    /// Type 1: the password, zero-padded to 8 bytes.
    Pass([u8; 8]),
    /// Any other type, e.g. 2 (IPsec AH, whose data lives in the AH header).
    Other(u8),
}

impl Auth {
    /// keepalived's `auth_pass`: at most 8 bytes are used, the rest is cut
    /// (keepalived warns and truncates likewise).
    pub fn password(password: &[u8]) -> Self {
        let mut data = [0u8; 8];
        let used = password.len().min(8);
        data[..used].copy_from_slice(&password[..used]);
        Auth::Pass(data)
    }

    pub fn type_number(&self) -> u8 {
        match self {
            Auth::None => AUTH_TYPE_NONE,
            Auth::Pass(_) => AUTH_TYPE_PASS,
            Auth::Other(number) => *number,
        }
    }

    /// Equality whose time does not depend on where the passwords differ.
    pub fn constant_time_eq(&self, other: &Auth) -> bool {
        match (self, other) {
            (Auth::Pass(ours), Auth::Pass(theirs)) => {
                ours.iter()
                    .zip(theirs)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            }
            (ours, theirs) => ours.type_number() == theirs.type_number(),
        }
    }
}

/// One VRRP advertisement, either version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement interval in centiseconds; for v2 whole seconds × 100.
    pub interval_cs: u16,
    pub addrs: Vec<IpAddr>,
    pub auth: Auth,
}

impl Advert {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.interval_cs) * 10)
    }

    /// Length of the PDU this advert encodes to (no trailer).
    pub fn pdu_len(&self, family: Family) -> usize {
        pdu_len(self.version, self.addrs.len(), family)
    }
}

fn pdu_len(version: Version, count: usize, family: Family) -> usize {
    let auth = match version {
        Version::V2 => V2_AUTH_DATA_LEN,
        Version::V3 => 0,
    };
    HEADER_LEN + count * family.addr_len() + auth
}

/// Encodes `advert` as a VRRP PDU.
///
/// `pseudo` = `Some((src, dst))` includes the pseudo-header in a v3 checksum;
/// `None` computes a v3 checksum over the PDU only, as v2 does
/// (keepalived's `v3_checksum_as_v2`, IPv4 only). v2 ignores `pseudo` but
/// checks its family.
pub fn encode(advert: &Advert, pseudo: Option<(IpAddr, IpAddr)>) -> Result<Vec<u8>, PacketError> {
    let family = advert
        .addrs
        .first()
        .map(Family::of)
        .or_else(|| pseudo.map(|(src, _)| Family::of(&src)))
        .unwrap_or(Family::V4);
    if let Some(&stray) = advert.addrs.iter().find(|a| Family::of(a) != family) {
        return Err(PacketError::MixedFamilies(stray));
    }
    check_pseudo(advert.version, family, pseudo)?;
    let count = u8::try_from(advert.addrs.len())
        .map_err(|_| PacketError::TooManyAddresses(advert.addrs.len()))?;

    let mut pdu = Vec::with_capacity(advert.pdu_len(family));
    pdu.push(advert.version.number() << 4 | VRRP_TYPE_ADVERTISEMENT);
    pdu.push(advert.vrid);
    pdu.push(advert.priority);
    pdu.push(count);
    match advert.version {
        Version::V2 => {
            if !advert.interval_cs.is_multiple_of(100) {
                return Err(PacketError::IntervalNotWholeSeconds(advert.interval_cs));
            }
            let seconds = advert.interval_cs / 100;
            if seconds == 0 || seconds > V2_MAX_INTERVAL_S {
                return Err(PacketError::IntervalOutOfRange {
                    version: Version::V2,
                    interval_cs: advert.interval_cs,
                    max_cs: V2_MAX_INTERVAL_S * 100,
                });
            }
            pdu.push(advert.auth.type_number());
            pdu.push(seconds as u8);
        }
        Version::V3 => {
            if advert.auth != Auth::None {
                return Err(PacketError::AuthenticationInV3);
            }
            if advert.interval_cs == 0 || advert.interval_cs > V3_MAX_INTERVAL_CS {
                return Err(PacketError::IntervalOutOfRange {
                    version: Version::V3,
                    interval_cs: advert.interval_cs,
                    max_cs: V3_MAX_INTERVAL_CS,
                });
            }
            // The 4 reserved bits are sent as zero.
            pdu.extend_from_slice(&advert.interval_cs.to_be_bytes());
        }
    }
    pdu.extend_from_slice(&[0, 0]); // checksum, filled below
    for addr in &advert.addrs {
        match addr {
            IpAddr::V4(v4) => pdu.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => pdu.extend_from_slice(&v6.octets()),
        }
    }
    if advert.version == Version::V2 {
        match advert.auth {
            Auth::Pass(data) => pdu.extend_from_slice(&data),
            Auth::None | Auth::Other(_) => pdu.extend_from_slice(&[0; V2_AUTH_DATA_LEN]),
        }
    }

    let checksum = pdu_checksum(advert.version, &pdu, pseudo);
    pdu[6..8].copy_from_slice(&checksum.to_be_bytes());
    Ok(pdu)
}

/// The fixed header's first fields, checked: what the receive path needs
/// before it knows the instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    pub count: u8,
}

/// Checks and reads the header of a PDU: length, version, type.
pub fn decode_header(pdu: &[u8]) -> Result<Header, PacketError> {
    if pdu.len() < HEADER_LEN {
        return Err(PacketError::TooShortForHeader { len: pdu.len() });
    }
    let version =
        Version::from_number(pdu[0] >> 4).ok_or(PacketError::UnknownVersion(pdu[0] >> 4))?;
    let packet_type = pdu[0] & 0x0f;
    if packet_type != VRRP_TYPE_ADVERTISEMENT {
        return Err(PacketError::NotAnAdvertisement(packet_type));
    }
    Ok(Header {
        version,
        vrid: pdu[1],
        priority: pdu[2],
        count: pdu[3],
    })
}

/// Decodes a VRRP PDU received over `family`. Trailing bytes after the PDU
/// are ignored. `pseudo` as for [`encode`]; v3 over IPv6 requires it.
pub fn decode(
    pdu: &[u8],
    family: Family,
    pseudo: Option<(IpAddr, IpAddr)>,
) -> Result<Advert, PacketError> {
    let Header { version, .. } = decode_header(pdu)?;
    check_pseudo(version, family, pseudo)?;
    let count = pdu[3];
    let needed = pdu_len(version, usize::from(count), family);
    if pdu.len() < needed {
        return Err(PacketError::TooShortForAddresses {
            count,
            needed,
            len: pdu.len(),
        });
    }
    let pdu = &pdu[..needed];

    let found = u16::from_be_bytes([pdu[6], pdu[7]]);
    if pdu_checksum(version, pdu, pseudo) != 0 {
        let mut zeroed = pdu.to_vec();
        zeroed[6..8].fill(0);
        return Err(PacketError::BadChecksum {
            found,
            computed: pdu_checksum(version, &zeroed, pseudo),
        });
    }

    let (interval_cs, auth_type) = match version {
        Version::V2 => (u16::from(pdu[5]) * 100, pdu[4]),
        // The top 4 bits are reserved: ignored on receive.
        Version::V3 => (
            u16::from_be_bytes([pdu[4], pdu[5]]) & V3_MAX_INTERVAL_CS,
            AUTH_TYPE_NONE,
        ),
    };
    if interval_cs == 0 {
        return Err(PacketError::ZeroInterval);
    }

    let addr_len = family.addr_len();
    let addrs_end = HEADER_LEN + usize::from(count) * addr_len;
    let addrs = pdu[HEADER_LEN..addrs_end]
        .chunks_exact(addr_len)
        .map(|raw| match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
            Family::V6 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(raw);
                IpAddr::V6(Ipv6Addr::from(octets))
            }
        })
        .collect();

    let auth = match (version, auth_type) {
        (Version::V3, _) | (Version::V2, AUTH_TYPE_NONE) => Auth::None,
        (Version::V2, AUTH_TYPE_PASS) => {
            let mut data = [0u8; V2_AUTH_DATA_LEN];
            data.copy_from_slice(&pdu[addrs_end..addrs_end + V2_AUTH_DATA_LEN]);
            Auth::Pass(data)
        }
        (Version::V2, other) => Auth::Other(other),
    };

    Ok(Advert {
        version,
        vrid: pdu[1],
        priority: pdu[2],
        interval_cs,
        addrs,
        auth,
    })
}

fn check_pseudo(
    version: Version,
    family: Family,
    pseudo: Option<(IpAddr, IpAddr)>,
) -> Result<(), PacketError> {
    if let Some((src, dst)) = pseudo {
        if Family::of(&src) != family || Family::of(&dst) != family {
            return Err(PacketError::PseudoHeaderFamily { src, dst });
        }
    }
    match (version, family, pseudo) {
        (Version::V2, Family::V6, _) => Err(PacketError::V2OverIpv6),
        (Version::V3, Family::V6, None) => Err(PacketError::PseudoHeaderRequired),
        _ => Ok(()),
    }
}

/// The checksum of `pdu` as the version wants it; 0 when `pdu` already holds
/// a correct one.
fn pdu_checksum(version: Version, pdu: &[u8], pseudo: Option<(IpAddr, IpAddr)>) -> u16 {
    let mut sum = Checksum::new();
    if let (Version::V3, Some((src, dst))) = (version, pseudo) {
        sum.add_pseudo_header(src, dst, pdu.len() as u32);
    }
    sum.add_bytes(pdu).finish()
}

#[cfg(test)]
mod tests;
