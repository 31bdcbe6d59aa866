use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(text: &str) -> IpAddr {
    text.parse::<Ipv6Addr>().unwrap().into()
}

fn v2_advert(auth: Auth) -> Advert {
    Advert {
        version: Version::V2,
        vrid: 51,
        priority: 100,
        interval_cs: 100,
        addrs: vec![v4(192, 168, 200, 16)],
        auth,
    }
}

fn v3_advert(addrs: Vec<IpAddr>) -> Advert {
    Advert {
        version: Version::V3,
        vrid: 1,
        priority: 100,
        interval_cs: 100,
        addrs,
        auth: Auth::None,
    }
}

const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const DST4: IpAddr = IpAddr::V4(MCAST_GROUP_V4);

// Known answers: the checksums below were computed by hand (one's-complement
// sum of the 16-bit words) and cross-checked with an independent script.

#[test]
fn v2_known_answer_no_auth() {
    let pdu = encode(&v2_advert(Auth::None), None).unwrap();
    #[rustfmt::skip]
    let expected = [
        0x21, 51, 100, 1,   // v2 advert, VRID 51, prio 100, 1 address
        0x00, 0x01,         // auth none, 1 s
        0xf2, 0x10,         // 0x2133+0x6401+0x0001+0xc0a8+0xc810 = 0x20ded -> 0x0def -> !
        192, 168, 200, 16,
        0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(pdu, expected);
}

#[test]
fn v2_known_answer_pass() {
    let pdu = encode(&v2_advert(Auth::password(b"secret")), None).unwrap();
    assert_eq!(&pdu[4..8], &[0x01, 0x01, 0xb4, 0xc4]);
    assert_eq!(&pdu[12..], b"secret\0\0");
}

#[test]
fn v3_ipv4_known_answer_with_and_without_pseudo_header() {
    let advert = v3_advert(vec![v4(10, 0, 0, 100)]);
    let pdu = encode(&advert, Some((SRC4, DST4))).unwrap();
    assert_eq!(
        pdu,
        [0x31, 1, 100, 1, 0x00, 0x64, 0x75, 0xa5, 10, 0, 0, 100]
    );
    let as_v2 = encode(&advert, None).unwrap();
    assert_eq!(&as_v2[6..8], &[0x60, 0x35]);
}

#[test]
fn v3_ipv6_known_answer() {
    let advert = v3_advert(vec![v6("2001:db8::100")]);
    let pdu = encode(&advert, Some((v6("fe80::1"), v6("ff02::12")))).unwrap();
    assert_eq!(pdu.len(), 8 + 16);
    assert_eq!(&pdu[..8], &[0x31, 1, 100, 1, 0x00, 0x64, 0x3d, 0xc1]);
}

#[test]
fn round_trip_v2_ipv4() {
    for auth in [Auth::None, Auth::password(b"12345678"), Auth::Other(2)] {
        let advert = v2_advert(auth);
        let pdu = encode(&advert, None).unwrap();
        assert_eq!(decode(&pdu, Family::V4, None).unwrap(), advert);
        // v2 ignores the pseudo-header on both sides.
        assert_eq!(
            decode(&pdu, Family::V4, Some((SRC4, DST4))).unwrap(),
            advert
        );
    }
}

#[test]
fn round_trip_v3_ipv4_both_checksum_forms() {
    let advert = v3_advert(vec![v4(10, 0, 0, 100), v4(10, 0, 0, 101)]);
    let pdu = encode(&advert, Some((SRC4, DST4))).unwrap();
    assert_eq!(
        decode(&pdu, Family::V4, Some((SRC4, DST4))).unwrap(),
        advert
    );
    let as_v2 = encode(&advert, None).unwrap();
    assert_eq!(decode(&as_v2, Family::V4, None).unwrap(), advert);
    // The two forms are not interchangeable.
    assert!(matches!(
        decode(&as_v2, Family::V4, Some((SRC4, DST4))),
        Err(PacketError::BadChecksum { .. })
    ));
}

#[test]
fn round_trip_v3_ipv6() {
    let pseudo = Some((v6("fe80::1"), v6("ff02::12")));
    let advert = Advert {
        interval_cs: 5,
        ..v3_advert(vec![v6("2001:db8::1"), v6("fe80::100")])
    };
    let pdu = encode(&advert, pseudo).unwrap();
    assert_eq!(decode(&pdu, Family::V6, pseudo).unwrap(), advert);
    assert_eq!(advert.interval(), Duration::from_millis(50));
}

#[test]
fn zero_addresses_is_allowed() {
    let advert = v3_advert(vec![]);
    let pdu = encode(&advert, Some((SRC4, DST4))).unwrap();
    assert_eq!(pdu.len(), HEADER_LEN);
    assert_eq!(
        decode(&pdu, Family::V4, Some((SRC4, DST4))).unwrap(),
        advert
    );
}

#[test]
fn trailing_bytes_are_tolerated() {
    let advert = v2_advert(Auth::None);
    let mut pdu = encode(&advert, None).unwrap();
    pdu.extend_from_slice(&[0xaa; AUTH_HMAC_TRAILER_LEN]); // keepalived auth_hmac
    assert_eq!(decode(&pdu, Family::V4, None).unwrap(), advert);

    let advert = v3_advert(vec![v4(10, 0, 0, 100)]);
    let mut pdu = encode(&advert, Some((SRC4, DST4))).unwrap();
    pdu.extend_from_slice(&[0; 34]); // Ethernet padding
    assert_eq!(
        decode(&pdu, Family::V4, Some((SRC4, DST4))).unwrap(),
        advert
    );
}

#[test]
fn v3_reserved_bits_are_ignored() {
    let advert = v3_advert(vec![v4(10, 0, 0, 100)]);
    let mut pdu = encode(&advert, None).unwrap();
    pdu[4] |= 0xf0;
    // Fix the checksum for the changed word.
    pdu[6..8].fill(0);
    let sum = internet_checksum(&pdu);
    pdu[6..8].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(decode(&pdu, Family::V4, None).unwrap(), advert);
}

#[test]
fn auth_constant_time_eq() {
    assert!(Auth::password(b"abc").constant_time_eq(&Auth::password(b"abc")));
    assert!(!Auth::password(b"abc").constant_time_eq(&Auth::password(b"abd")));
    assert!(!Auth::password(b"").constant_time_eq(&Auth::None));
    assert!(Auth::None.constant_time_eq(&Auth::None));
    // Only 8 bytes count, as in keepalived.
    assert_eq!(Auth::password(b"123456789"), Auth::password(b"12345678"));
}

// Every decode error.

#[test]
fn decode_error_too_short_for_header() {
    assert_eq!(
        decode(&[0x21, 1, 100], Family::V4, None),
        Err(PacketError::TooShortForHeader { len: 3 })
    );
}

#[test]
fn decode_error_unknown_version() {
    let mut pdu = encode(&v2_advert(Auth::None), None).unwrap();
    pdu[0] = 0x41;
    assert_eq!(
        decode(&pdu, Family::V4, None),
        Err(PacketError::UnknownVersion(4))
    );
}

#[test]
fn decode_error_not_an_advertisement() {
    let mut pdu = encode(&v2_advert(Auth::None), None).unwrap();
    pdu[0] = 0x22;
    assert_eq!(
        decode(&pdu, Family::V4, None),
        Err(PacketError::NotAnAdvertisement(2))
    );
}

#[test]
fn decode_error_too_short_for_addresses() {
    let pdu = encode(&v2_advert(Auth::None), None).unwrap();
    // Missing the auth data.
    assert_eq!(
        decode(&pdu[..12], Family::V4, None),
        Err(PacketError::TooShortForAddresses {
            count: 1,
            needed: 20,
            len: 12
        })
    );
    // A count claiming more addresses than present.
    let mut pdu = pdu;
    pdu[3] = 5;
    assert!(matches!(
        decode(&pdu, Family::V4, None),
        Err(PacketError::TooShortForAddresses { count: 5, .. })
    ));
}

#[test]
fn decode_error_bad_checksum() {
    let mut pdu = encode(&v2_advert(Auth::None), None).unwrap();
    pdu[2] = 101; // priority changed after the checksum was computed
    assert_eq!(
        decode(&pdu, Family::V4, None),
        Err(PacketError::BadChecksum {
            found: 0xf210,
            computed: 0xf110 // the word 0x6401 became 0x6501
        })
    );
}

#[test]
fn decode_error_zero_interval() {
    let advert = v3_advert(vec![v4(10, 0, 0, 100)]);
    let mut pdu = encode(&advert, None).unwrap();
    pdu[4..8].fill(0);
    let sum = internet_checksum(&pdu);
    pdu[6..8].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(
        decode(&pdu, Family::V4, None),
        Err(PacketError::ZeroInterval)
    );
}

#[test]
fn decode_error_v2_over_ipv6() {
    let pdu = encode(&v2_advert(Auth::None), None).unwrap();
    assert_eq!(decode(&pdu, Family::V6, None), Err(PacketError::V2OverIpv6));
}

#[test]
fn decode_error_pseudo_header_required_for_ipv6() {
    let pseudo = Some((v6("fe80::1"), v6("ff02::12")));
    let pdu = encode(&v3_advert(vec![v6("2001:db8::1")]), pseudo).unwrap();
    assert_eq!(
        decode(&pdu, Family::V6, None),
        Err(PacketError::PseudoHeaderRequired)
    );
}

#[test]
fn decode_error_pseudo_header_family() {
    let pdu = encode(&v3_advert(vec![v4(10, 0, 0, 100)]), None).unwrap();
    assert_eq!(
        decode(&pdu, Family::V4, Some((v6("fe80::1"), DST4))),
        Err(PacketError::PseudoHeaderFamily {
            src: v6("fe80::1"),
            dst: DST4
        })
    );
}

// Every encode error.

#[test]
fn encode_errors() {
    let too_many = Advert {
        addrs: vec![v4(10, 0, 0, 1); 256],
        ..v2_advert(Auth::None)
    };
    assert_eq!(
        encode(&too_many, None),
        Err(PacketError::TooManyAddresses(256))
    );

    let mixed = v3_advert(vec![v4(10, 0, 0, 1), v6("::1")]);
    assert_eq!(
        encode(&mixed, None),
        Err(PacketError::MixedFamilies(v6("::1")))
    );

    let fractional = Advert {
        interval_cs: 150,
        ..v2_advert(Auth::None)
    };
    assert_eq!(
        encode(&fractional, None),
        Err(PacketError::IntervalNotWholeSeconds(150))
    );

    for interval_cs in [0, 25600] {
        let out_of_range = Advert {
            interval_cs,
            ..v2_advert(Auth::None)
        };
        assert!(matches!(
            encode(&out_of_range, None),
            Err(PacketError::IntervalOutOfRange {
                version: Version::V2,
                ..
            })
        ));
    }
    for interval_cs in [0, 4096] {
        let out_of_range = Advert {
            interval_cs,
            ..v3_advert(vec![])
        };
        assert!(matches!(
            encode(&out_of_range, None),
            Err(PacketError::IntervalOutOfRange {
                version: Version::V3,
                ..
            })
        ));
    }

    let auth_v3 = Advert {
        auth: Auth::password(b"x"),
        ..v3_advert(vec![])
    };
    assert_eq!(encode(&auth_v3, None), Err(PacketError::AuthenticationInV3));

    let v2_v6 = Advert {
        addrs: vec![v6("2001:db8::1")],
        ..v2_advert(Auth::None)
    };
    assert_eq!(encode(&v2_v6, None), Err(PacketError::V2OverIpv6));

    let v3_v6_no_pseudo = v3_advert(vec![v6("2001:db8::1")]);
    assert_eq!(
        encode(&v3_v6_no_pseudo, None),
        Err(PacketError::PseudoHeaderRequired)
    );
}

#[test]
fn v2_largest_interval() {
    let advert = Advert {
        interval_cs: 25500,
        ..v2_advert(Auth::None)
    };
    let pdu = encode(&advert, None).unwrap();
    assert_eq!(pdu[5], 255);
    assert_eq!(decode(&pdu, Family::V4, None).unwrap(), advert);
}

// Frames.

#[test]
fn frame_round_trip_ipv4_with_options_and_padding() {
    let advert = v2_advert(Auth::password(b"pw"));
    let mut spec = FrameSpec::multicast(SRC4);
    spec.ipv4_options = vec![0x94, 0x04, 0x00, 0x00, 0x01]; // router alert + 1 odd byte
    spec.pad_frame_to = 120;
    let frame = build_frame(&spec, &advert).unwrap();
    assert_eq!(frame.len(), 120);
    assert_eq!(&frame[..6], &[0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
    assert_eq!(&frame[12..14], &[0x08, 0x00]);
    assert_eq!(frame[14], 0x47, "IHL 7: 5 words + 8 bytes of options");
    assert_eq!(frame[15], VRRP_TOS);
    assert_eq!(internet_checksum(&frame[14..14 + 28]), 0);
    let parsed = parse_frame(&frame).unwrap();
    assert_eq!(
        parsed,
        ParsedFrame {
            src_ip: SRC4,
            dst_ip: DST4,
            ttl: 255,
            tos: VRRP_TOS,
            advert
        }
    );
}

#[test]
fn frame_round_trip_ipv4_v3_with_trailer() {
    let advert = v3_advert(vec![v4(10, 0, 0, 100)]);
    let mut spec = FrameSpec::multicast(SRC4);
    spec.trailer = vec![0x55; AUTH_HMAC_TRAILER_LEN];
    spec.ttl = 64;
    let frame = build_frame(&spec, &advert).unwrap();
    let ip_len = u16::from_be_bytes([frame[16], frame[17]]) as usize;
    assert_eq!(ip_len, 20 + 12 + AUTH_HMAC_TRAILER_LEN);
    let parsed = parse_frame(&frame).unwrap();
    assert_eq!(parsed.ttl, 64);
    assert_eq!(parsed.advert, advert);
}

#[test]
fn frame_round_trip_ipv6() {
    let src = v6("fe80::1");
    let advert = v3_advert(vec![v6("2001:db8::100")]);
    let frame = build_frame(&FrameSpec::multicast(src), &advert).unwrap();
    assert_eq!(&frame[..6], &[0x33, 0x33, 0, 0, 0, 0x12]);
    assert_eq!(&frame[12..14], &[0x86, 0xdd]);
    assert_eq!(frame.len(), 14 + 40 + 24);
    let parsed = parse_frame(&frame).unwrap();
    assert_eq!(parsed.src_ip, src);
    assert_eq!(parsed.dst_ip, v6("ff02::12"));
    assert_eq!(parsed.ttl, 255);
    assert_eq!(parsed.tos, VRRP_TOS);
    assert_eq!(parsed.advert, advert);
}

#[test]
fn frame_unicast_and_checksum_as_v2() {
    let dst = v4(10, 0, 0, 2);
    let mut spec = FrameSpec::new(SRC4, dst);
    assert_eq!(multicast_mac(dst), None);
    spec.v3_checksum_as_v2 = true;
    let advert = v3_advert(vec![v4(10, 0, 0, 100)]);
    let frame = build_frame(&spec, &advert).unwrap();
    // parse_frame insists on the RFC form; the PDU decodes as v2-style.
    assert!(matches!(
        parse_frame(&frame),
        Err(PacketError::BadChecksum { .. })
    ));
    assert_eq!(decode(&frame[34..], Family::V4, None).unwrap(), advert);
}

#[test]
fn frame_errors() {
    let advert = v2_advert(Auth::None);
    let good = build_frame(&FrameSpec::multicast(SRC4), &advert).unwrap();

    assert!(matches!(
        parse_frame(&good[..10]),
        Err(PacketError::FrameTooShort { .. })
    ));
    assert!(matches!(
        parse_frame(&good[..30]),
        Err(PacketError::FrameTooShort { .. })
    ));

    let mut arp = good.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(parse_frame(&arp), Err(PacketError::NotIp(0x0806)));

    let mut wrong_version = good.clone();
    wrong_version[14] = 0x65;
    assert_eq!(
        parse_frame(&wrong_version),
        Err(PacketError::IpVersionMismatch { found: 6 })
    );

    let mut short_ihl = good.clone();
    short_ihl[14] = 0x44;
    assert_eq!(
        parse_frame(&short_ihl),
        Err(PacketError::BadIpv4HeaderLength(16))
    );

    let mut bad_sum = good.clone();
    bad_sum[22] = 254; // TTL changed, header checksum stale
    assert_eq!(
        parse_frame(&bad_sum),
        Err(PacketError::BadIpv4HeaderChecksum)
    );

    let mut truncated = good.clone();
    truncated.truncate(good.len() - 4);
    assert!(matches!(
        parse_frame(&truncated),
        Err(PacketError::IpLengthBeyondFrame { .. })
    ));

    let mut spec = FrameSpec::multicast(SRC4);
    spec.ipv4_options = vec![1; 41];
    assert_eq!(
        build_frame(&spec, &advert),
        Err(PacketError::Ipv4OptionsTooLong(41))
    );

    let mixed = FrameSpec::new(SRC4, v6("ff02::12"));
    assert!(matches!(
        build_frame(&mixed, &v3_advert(vec![])),
        Err(PacketError::PseudoHeaderFamily { .. })
    ));

    // Not VRRP: protocol 51 (AH) with a fixed-up header checksum.
    let mut ah = good.clone();
    ah[23] = 51;
    ah[24..26].fill(0);
    let sum = internet_checksum(&ah[14..34]);
    ah[24..26].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(parse_frame(&ah), Err(PacketError::NotVrrp(51)));

    let ipv6 = build_frame(
        &FrameSpec::multicast(v6("fe80::1")),
        &v3_advert(vec![v6("2001:db8::1")]),
    )
    .unwrap();
    let mut hop_by_hop = ipv6.clone();
    hop_by_hop[20] = 0;
    assert_eq!(parse_frame(&hop_by_hop), Err(PacketError::NotVrrp(0)));
    let mut short_payload = ipv6.clone();
    short_payload[18..20].copy_from_slice(&100u16.to_be_bytes());
    assert!(matches!(
        parse_frame(&short_payload),
        Err(PacketError::IpLengthBeyondFrame { .. })
    ));
}

// Properties.

fn arb_v4() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o)))
}

fn arb_v6() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o)))
}

fn arb_advert() -> impl Strategy<Value = (Advert, Option<(IpAddr, IpAddr)>, Family)> {
    let v2 = (
        any::<u8>(),
        any::<u8>(),
        1u16..=255,
        prop::collection::vec(arb_v4(), 0..20),
        prop_oneof![
            Just(Auth::None),
            any::<[u8; 8]>().prop_map(Auth::Pass),
            (2u8..=255).prop_map(Auth::Other)
        ],
    )
        .prop_map(|(vrid, priority, seconds, addrs, auth)| {
            let advert = Advert {
                version: Version::V2,
                vrid,
                priority,
                interval_cs: seconds * 100,
                addrs,
                auth,
            };
            (advert, None, Family::V4)
        });
    let v3_v4 = (
        any::<u8>(),
        any::<u8>(),
        1u16..=V3_MAX_INTERVAL_CS,
        prop::collection::vec(arb_v4(), 0..20),
        prop::option::of((arb_v4(), arb_v4())),
    )
        .prop_map(|(vrid, priority, interval_cs, addrs, pseudo)| {
            let advert = Advert {
                version: Version::V3,
                vrid,
                priority,
                interval_cs,
                addrs,
                auth: Auth::None,
            };
            (advert, pseudo, Family::V4)
        });
    let v3_v6 = (
        any::<u8>(),
        any::<u8>(),
        1u16..=V3_MAX_INTERVAL_CS,
        prop::collection::vec(arb_v6(), 0..10),
        (arb_v6(), arb_v6()),
    )
        .prop_map(|(vrid, priority, interval_cs, addrs, pseudo)| {
            let advert = Advert {
                version: Version::V3,
                vrid,
                priority,
                interval_cs,
                addrs,
                auth: Auth::None,
            };
            (advert, Some(pseudo), Family::V6)
        });
    prop_oneof![v2, v3_v4, v3_v6]
}

proptest! {
    #[test]
    fn prop_round_trip((advert, pseudo, family) in arb_advert(), trailer in prop::collection::vec(any::<u8>(), 0..40)) {
        let mut pdu = encode(&advert, pseudo).unwrap();
        prop_assert_eq!(pdu.len(), advert.pdu_len(family));
        prop_assert_eq!(pdu_checksum(advert.version, &pdu, pseudo), 0);
        pdu.extend_from_slice(&trailer);
        prop_assert_eq!(decode(&pdu, family, pseudo).unwrap(), advert);
    }

    #[test]
    fn prop_frame_round_trip((advert, pseudo, _family) in arb_advert()) {
        let src = pseudo.map(|(src, _)| src).unwrap_or(SRC4);
        let frame = build_frame(&FrameSpec::multicast(src), &advert).unwrap();
        prop_assert_eq!(parse_frame(&frame).unwrap().advert, advert);
    }

    #[test]
    fn prop_single_bit_flip_is_caught(
        (advert, pseudo, family) in arb_advert(),
        bit in any::<prop::sample::Index>(),
    ) {
        let mut pdu = encode(&advert, pseudo).unwrap();
        let bit = bit.index(pdu.len() * 8);
        pdu[bit / 8] ^= 1 << (bit % 8);
        // The one's-complement sum changes with any single-bit change, so a
        // flip is always an error, never a silently different advert.
        prop_assert!(decode(&pdu, family, pseudo).is_err(), "flip of bit {} decoded", bit);
    }

    #[test]
    fn prop_decode_arbitrary_bytes_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        v6_family in any::<bool>(),
        pseudo in prop::option::of((arb_v4(), arb_v4())),
    ) {
        let family = if v6_family { Family::V6 } else { Family::V4 };
        let _ = decode(&bytes, family, pseudo);
        let _ = decode(&bytes, family, None);
        let _ = parse_frame(&bytes);
    }

    #[test]
    fn prop_parse_frame_mutated_never_panics(
        (advert, pseudo, _family) in arb_advert(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let src = pseudo.map(|(src, _)| src).unwrap_or(SRC4);
        let mut frame = build_frame(&FrameSpec::multicast(src), &advert).unwrap();
        for (at, value) in flips {
            let at = at.index(frame.len());
            frame[at] = value;
        }
        let cut = cut.index(frame.len() + 1);
        let _ = parse_frame(&frame[..cut]);
    }
}
