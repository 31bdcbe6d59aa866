//! Whole Ethernet frames carrying an advert, for test fixtures (XDP
//! `BPF_PROG_TEST_RUN`, socket tests). The daemon itself sends through raw IP
//! sockets and never builds frames.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vrrp_common::{ETH_P_IP, ETH_P_IPV6};

use super::{
    decode, encode, internet_checksum, Advert, Family, PacketError, IPPROTO_VRRP, VRRP_TOS,
    VRRP_TTL,
};

pub(super) const ETH_HEADER_LEN: usize = 14;
const IPV4_MIN_HEADER_LEN: usize = 20;
const IPV4_MAX_OPTIONS_LEN: usize = 40;
const IPV6_HEADER_LEN: usize = 40;

/// How to wrap an advert into a frame. Start from [`FrameSpec::new`] and
/// change fields to craft odd or malformed frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    pub src_mac: [u8; 6],
    /// Defaults to the multicast MAC of `dst_ip` (01:00:5e:00:00:12,
    /// 33:33:00:00:00:12 for the VRRP groups), else a fixed unicast MAC.
    pub dst_mac: [u8; 6],
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    /// TTL / hop limit; 255 is the only valid value for multicast.
    pub ttl: u8,
    /// TOS / traffic class.
    pub tos: u8,
    /// Raw IPv4 options; padded with zeros (End of Options) to a multiple of
    /// 4 bytes. Ignored for IPv6.
    pub ipv4_options: Vec<u8>,
    /// Bytes after the VRRP PDU inside the IP payload (and counted in the IP
    /// length), like keepalived's `auth_hmac` trailer.
    pub trailer: Vec<u8>,
    /// Pad the frame with zeros to this length after the IP packet, as a NIC
    /// pads short frames to 60 bytes. 0 = no padding.
    pub pad_frame_to: usize,
    /// Compute a v3 checksum without the pseudo-header (`v3_checksum_as_v2`).
    pub v3_checksum_as_v2: bool,
}

impl FrameSpec {
    /// A frame from `src_ip` to `dst_ip` with the values a conforming sender uses.
    pub fn new(src_ip: IpAddr, dst_ip: IpAddr) -> Self {
        FrameSpec {
            src_mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
            dst_mac: multicast_mac(dst_ip).unwrap_or([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]),
            src_ip,
            dst_ip,
            ttl: VRRP_TTL,
            tos: VRRP_TOS,
            ipv4_options: Vec::new(),
            trailer: Vec::new(),
            pad_frame_to: 0,
            v3_checksum_as_v2: false,
        }
    }

    /// A frame from `src_ip` to the VRRP multicast group of its family.
    pub fn multicast(src_ip: IpAddr) -> Self {
        Self::new(src_ip, Family::of(&src_ip).multicast_group())
    }
}

/// The Ethernet multicast MAC for a multicast IP (RFC 1112 §6.4, RFC 2464 §7),
/// `None` for a unicast one.
pub fn multicast_mac(ip: IpAddr) -> Option<[u8; 6]> {
    match ip {
        IpAddr::V4(v4) if v4.is_multicast() => {
            let o = v4.octets();
            Some([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
        }
        IpAddr::V6(v6) if v6.is_multicast() => {
            let o = v6.octets();
            Some([0x33, 0x33, o[12], o[13], o[14], o[15]])
        }
        _ => None,
    }
}

/// Ethernet + IPv4 (any IHL, correct header checksum) or IPv6 + VRRP PDU.
pub fn build_frame(spec: &FrameSpec, advert: &Advert) -> Result<Vec<u8>, PacketError> {
    let pseudo = (!spec.v3_checksum_as_v2).then_some((spec.src_ip, spec.dst_ip));
    let mut payload = encode(advert, pseudo)?;
    payload.extend_from_slice(&spec.trailer);

    let mut frame = Vec::with_capacity(ETH_HEADER_LEN + 60 + payload.len());
    frame.extend_from_slice(&spec.dst_mac);
    frame.extend_from_slice(&spec.src_mac);
    match (spec.src_ip, spec.dst_ip) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            frame.extend_from_slice(&ETH_P_IP.to_be_bytes());
            let mut options = spec.ipv4_options.clone();
            options.resize(options.len().div_ceil(4) * 4, 0);
            if options.len() > IPV4_MAX_OPTIONS_LEN {
                return Err(PacketError::Ipv4OptionsTooLong(spec.ipv4_options.len()));
            }
            let header_len = IPV4_MIN_HEADER_LEN + options.len();
            let total_len = (header_len + payload.len()) as u16;
            let mut header = Vec::with_capacity(header_len);
            header.push(0x40 | (header_len / 4) as u8);
            header.push(spec.tos);
            header.extend_from_slice(&total_len.to_be_bytes());
            header.extend_from_slice(&[0, 0, 0, 0]); // id, flags, fragment offset
            header.push(spec.ttl);
            header.push(IPPROTO_VRRP);
            header.extend_from_slice(&[0, 0]); // header checksum, below
            header.extend_from_slice(&src.octets());
            header.extend_from_slice(&dst.octets());
            header.extend_from_slice(&options);
            let checksum = internet_checksum(&header);
            header[10..12].copy_from_slice(&checksum.to_be_bytes());
            frame.extend_from_slice(&header);
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            frame.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
            // version 6, traffic class, flow label 0
            let first_word = (6u32 << 28) | (u32::from(spec.tos) << 20);
            frame.extend_from_slice(&first_word.to_be_bytes());
            frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            frame.push(IPPROTO_VRRP);
            frame.push(spec.ttl);
            frame.extend_from_slice(&src.octets());
            frame.extend_from_slice(&dst.octets());
        }
        (src, dst) => return Err(PacketError::PseudoHeaderFamily { src, dst }),
    }
    frame.extend_from_slice(&payload);
    if frame.len() < spec.pad_frame_to {
        frame.resize(spec.pad_frame_to, 0);
    }
    Ok(frame)
}

/// What [`parse_frame`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedFrame {
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub ttl: u8,
    pub tos: u8,
    pub advert: Advert,
}

/// The IP layer of a frame, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub family: Family,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// TOS / traffic class.
    pub tos: u8,
    /// IPv4 protocol / IPv6 next header.
    pub protocol: u8,
    /// The payload as long as the IP header says (Ethernet padding cut off).
    pub payload: &'a [u8],
}

/// Parses Ethernet + IPv4/IPv6 and checks the IP layer as the kernel's
/// `ip_rcv` / `ipv6_rcv` do, in the recorder's order: IPv4 version and
/// header length, header checksum, total length, then fragments (refused
/// for protocol 112 only: VRRP is never fragmented). No IPv6 extension headers.
pub fn parse_ip(frame: &[u8]) -> Result<IpPacket<'_>, PacketError> {
    if frame.len() < ETH_HEADER_LEN {
        return Err(PacketError::FrameTooShort {
            layer: "Ethernet",
            len: frame.len(),
        });
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let ip = &frame[ETH_HEADER_LEN..];
    match ethertype {
        ETH_P_IP => {
            if ip.len() < IPV4_MIN_HEADER_LEN {
                return Err(PacketError::FrameTooShort {
                    layer: "IPv4",
                    len: frame.len(),
                });
            }
            if ip[0] >> 4 != 4 {
                return Err(PacketError::IpVersionMismatch { found: ip[0] >> 4 });
            }
            let header_len = usize::from(ip[0] & 0x0f) * 4;
            if header_len < IPV4_MIN_HEADER_LEN || header_len > ip.len() {
                return Err(PacketError::BadIpv4HeaderLength(header_len));
            }
            if internet_checksum(&ip[..header_len]) != 0 {
                return Err(PacketError::BadIpv4HeaderChecksum);
            }
            let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            if total_len < header_len {
                return Err(PacketError::IpLengthBelowHeader {
                    ip_len: total_len,
                    header_len,
                });
            }
            if total_len > ip.len() {
                return Err(PacketError::IpLengthBeyondFrame {
                    ip_len: total_len,
                    available: ip.len(),
                });
            }
            if ip[9] == IPPROTO_VRRP && u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
                return Err(PacketError::Fragment);
            }
            Ok(IpPacket {
                family: Family::V4,
                src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
                dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
                ttl: ip[8],
                tos: ip[1],
                protocol: ip[9],
                payload: &ip[header_len..total_len],
            })
        }
        ETH_P_IPV6 => {
            if ip.len() < IPV6_HEADER_LEN {
                return Err(PacketError::FrameTooShort {
                    layer: "IPv6",
                    len: frame.len(),
                });
            }
            if ip[0] >> 4 != 6 {
                return Err(PacketError::IpVersionMismatch { found: ip[0] >> 4 });
            }
            let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if IPV6_HEADER_LEN + payload_len > ip.len() {
                return Err(PacketError::IpLengthBeyondFrame {
                    ip_len: IPV6_HEADER_LEN + payload_len,
                    available: ip.len(),
                });
            }
            let address = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&ip[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            Ok(IpPacket {
                family: Family::V6,
                src: address(8),
                dst: address(24),
                ttl: ip[7],
                tos: ((u16::from_be_bytes([ip[0], ip[1]]) >> 4) & 0xff) as u8,
                protocol: ip[6],
                payload: &ip[IPV6_HEADER_LEN..IPV6_HEADER_LEN + payload_len],
            })
        }
        other => Err(PacketError::NotIp(other)),
    }
}

/// Parses Ethernet + IPv4/IPv6 + VRRP, checking the IPv4 header checksum and
/// the VRRP checksum (v3 with the pseudo-header). No IPv6 extension headers.
pub fn parse_frame(frame: &[u8]) -> Result<ParsedFrame, PacketError> {
    let ip = parse_ip(frame)?;
    if ip.protocol != IPPROTO_VRRP {
        return Err(PacketError::NotVrrp(ip.protocol));
    }
    let advert = decode(ip.payload, ip.family, Some((ip.src, ip.dst)))?;
    Ok(ParsedFrame {
        src_ip: ip.src,
        dst_ip: ip.dst,
        ttl: ip.ttl,
        tos: ip.tos,
        advert,
    })
}
