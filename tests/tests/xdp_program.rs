//! The XDP recorder on crafted and captured frames, through BPF_PROG_TEST_RUN.
//!
//! Each test loads its own copy of the program with its own pinned maps, so
//! tests run in parallel. BPF_PROG_TEST_RUN presents frames as received on
//! the loopback device, so instances are registered on ifindex 1.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
    sync::atomic::{AtomicU32, Ordering},
};

use tests::pcap;
use vrrp_common::{
    event_kind, instance_flags, Counters, InstanceConfig, InstanceKey, PeerEvent, PeerKey,
    FAMILY_IPV4, FAMILY_IPV6,
};
use xvrrpd::{
    bpf::{pin, Recorder},
    packet::{self, Advert, Auth, FrameSpec, Version},
    time::Mono,
};

const XDP_PASS: u32 = 2;
const LO: u32 = 1;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn recorder() -> Recorder {
    assert!(
        tests::is_root(),
        "the XDP tests load programs: run them as root (cargo xtask test)"
    );
    let name = format!(
        "xdptest-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Recorder::load(&pin::dir(Some(&name)).unwrap())
        .expect("loading the XDP object (built by `cargo xtask build-ebpf`)")
}

fn v2_config(pass: Option<&str>) -> InstanceConfig {
    let mut c = InstanceConfig {
        version: 2,
        v2_interval_s: 1,
        ..Default::default()
    };
    if let Some(p) = pass {
        c.auth_type = 1;
        c.auth_data[..p.len()].copy_from_slice(p.as_bytes());
    }
    c
}

fn v3_config() -> InstanceConfig {
    InstanceConfig {
        version: 3,
        ..Default::default()
    }
}

const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const VIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));

fn advert_v2(vrid: u8, priority: u8) -> Advert {
    Advert {
        version: Version::V2,
        vrid,
        priority,
        interval_cs: 100,
        addrs: vec![VIP4],
        auth: Auth::password(b"secret1"),
    }
}

fn advert_v3(vrid: u8, priority: u8, addrs: Vec<IpAddr>) -> Advert {
    Advert {
        version: Version::V3,
        vrid,
        priority,
        interval_cs: 100,
        addrs,
        auth: Auth::None,
    }
}

fn frame(spec: &FrameSpec, advert: &Advert) -> Vec<u8> {
    packet::build_frame(spec, advert).expect("building a test frame")
}

fn peer_key(family: u8, vrid: u8, src: IpAddr) -> PeerKey {
    PeerKey::for_source(InstanceKey::new(LO, family, vrid), src).expect("family matches")
}

/// Runs one frame and asserts the verdict is always XDP_PASS.
fn run(rec: &mut Recorder, frame: &[u8]) {
    let (verdict, _) = rec.test_run(frame, 1).expect("BPF_PROG_TEST_RUN");
    assert_eq!(verdict, XDP_PASS, "the recorder never drops a frame");
}

/// Runs `frame` on a fresh recorder with one v2 PASS instance (VRID 51) and
/// returns the counters; asserts nothing was recorded unless `accepted`.
fn counters_after(frame: &[u8], config: InstanceConfig, family: u8) -> Counters {
    let mut rec = recorder();
    rec.maps
        .set_instance(InstanceKey::new(LO, family, 51), config)
        .unwrap();
    run(&mut rec, frame);
    let c = rec.maps.counters().unwrap();
    if c.accepted == 0 {
        assert!(
            rec.maps.all_peers().unwrap().is_empty(),
            "a dropped advert was recorded"
        );
    }
    c
}

fn only(c: Counters, expect: Counters) {
    assert_eq!(c, expect, "counters");
}

fn drained_events(
    rec: &mut Recorder,
    ring: &mut aya::maps::RingBuf<aya::maps::MapData>,
) -> Vec<PeerEvent> {
    let _ = rec;
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        out.push(bytemuck::pod_read_unaligned(
            &item[..std::mem::size_of::<PeerEvent>()],
        ));
    }
    out
}

#[test]
fn valid_v2_advert_is_recorded_with_every_field() {
    let mut rec = recorder();
    let key = InstanceKey::new(LO, FAMILY_IPV4, 51);
    rec.maps
        .set_instance(key, v2_config(Some("secret1")))
        .unwrap();
    let before = Mono::now();
    run(
        &mut rec,
        &frame(&FrameSpec::multicast(SRC4), &advert_v2(51, 150)),
    );
    let peer = rec
        .maps
        .peer(&peer_key(FAMILY_IPV4, 51, SRC4))
        .unwrap()
        .expect("recorded");
    assert_eq!(peer.priority, 150);
    assert_eq!(peer.interval_cs, 100);
    assert_eq!(peer.version, 2);
    assert_eq!(peer.addr_count, 1);
    assert_eq!(peer.auth_type, 1);
    assert_eq!(&peer.auth_data[..7], b"secret1");
    assert_eq!(peer.ttl, 255);
    assert_eq!(peer.multicast, 1);
    assert_eq!(peer.adverts, 1);
    assert!(peer.last_ns >= before.as_nanos() && peer.last_ns <= Mono::now().as_nanos());
    let c = rec.maps.counters().unwrap();
    only(
        c,
        Counters {
            vrrp_packets: 1,
            accepted: 1,
            ..Default::default()
        },
    );
    run(
        &mut rec,
        &frame(&FrameSpec::multicast(SRC4), &advert_v2(51, 150)),
    );
    let again = rec
        .maps
        .peer(&peer_key(FAMILY_IPV4, 51, SRC4))
        .unwrap()
        .unwrap();
    assert_eq!(again.adverts, 2);
    assert_eq!(again.first_ns, peer.first_ns);
    assert!(again.last_ns >= peer.last_ns);
}

#[test]
fn v3_ipv4_and_ipv6_adverts_are_recorded() {
    let mut rec = recorder();
    rec.maps
        .set_instance(InstanceKey::new(LO, FAMILY_IPV4, 52), v3_config())
        .unwrap();
    rec.maps
        .set_instance(InstanceKey::new(LO, FAMILY_IPV6, 53), v3_config())
        .unwrap();
    let src6: IpAddr = "fe80::1".parse().unwrap();
    let mut a4 = advert_v3(52, 120, vec![VIP4, "192.0.2.101".parse().unwrap()]);
    a4.interval_cs = 5; // 50 ms
    run(&mut rec, &frame(&FrameSpec::multicast(SRC4), &a4));
    run(
        &mut rec,
        &frame(
            &FrameSpec::multicast(src6),
            &advert_v3(53, 110, vec!["2001:db8::100".parse().unwrap()]),
        ),
    );
    let p4 = rec
        .maps
        .peer(&peer_key(FAMILY_IPV4, 52, SRC4))
        .unwrap()
        .expect("v3 IPv4");
    assert_eq!(
        (p4.priority, p4.interval_cs, p4.addr_count, p4.version),
        (120, 5, 2, 3)
    );
    let p6 = rec
        .maps
        .peer(&peer_key(FAMILY_IPV6, 53, src6))
        .unwrap()
        .expect("v3 IPv6");
    assert_eq!((p6.priority, p6.interval_cs, p6.addr_count), (110, 100, 1));
    assert_eq!(rec.maps.counters().unwrap().accepted, 2);
}

/// Frames captured from keepalived 2.2.7 (tests/src/bin/capture_fixtures.rs).
#[test]
fn keepalived_captures_are_accepted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let cases: [(&str, u8, u8, InstanceConfig, u8); 3] = [
        (
            "keepalived-v2-ipv4-pass.pcap",
            FAMILY_IPV4,
            51,
            v2_config(Some("secret1")),
            150,
        ),
        ("keepalived-v3-ipv4.pcap", FAMILY_IPV4, 52, v3_config(), 120),
        ("keepalived-v3-ipv6.pcap", FAMILY_IPV6, 53, v3_config(), 110),
    ];
    for (file, family, vrid, config, priority) in cases {
        let frames = pcap::frames(&dir.join(file)).unwrap();
        assert!(!frames.is_empty(), "{file} holds no frames");
        let mut rec = recorder();
        rec.maps
            .set_instance(InstanceKey::new(LO, family, vrid), config)
            .unwrap();
        for f in &frames {
            run(&mut rec, f);
        }
        let parsed = packet::parse_frame(&frames[0]).expect("fixture parses");
        let peer = rec
            .maps
            .peer(&peer_key(family, vrid, parsed.src_ip))
            .unwrap()
            .unwrap_or_else(|| {
                panic!(
                    "{file}: keepalived's advert not recorded: {:?}",
                    rec.maps.counters()
                )
            });
        assert_eq!(peer.priority, priority, "{file}");
        assert_eq!(peer.interval_cs, 100, "{file}");
        assert_eq!(peer.adverts, frames.len() as u64, "{file}");
        let c = rec.maps.counters().unwrap();
        assert_eq!(c.accepted, frames.len() as u64, "{file}: {c:?}");
    }
}

#[test]
fn tolerated_variants_are_accepted() {
    let pass = v2_config(Some("secret1"));
    let a = advert_v2(51, 100);
    let mut options = FrameSpec::multicast(SRC4);
    options.ipv4_options = vec![0x94, 0x04, 0, 0]; // router alert
    let mut padded = FrameSpec::multicast(SRC4);
    padded.pad_frame_to = 60;
    let mut hmac = FrameSpec::multicast(SRC4);
    hmac.trailer = vec![0xab; 28];
    for (what, spec) in [
        ("IPv4 options", options),
        ("Ethernet padding", padded),
        ("28-byte trailer", hmac),
    ] {
        let c = counters_after(&frame(&spec, &a), pass, FAMILY_IPV4);
        assert_eq!(
            c,
            Counters {
                vrrp_packets: 1,
                accepted: 1,
                ..Default::default()
            },
            "{what}"
        );
    }
}

#[test]
fn non_vrrp_and_short_frames_pass_uncounted() {
    let good = frame(&FrameSpec::multicast(SRC4), &advert_v2(51, 100));
    let mut tcp = good.clone();
    tcp[14 + 9] = 6; // protocol TCP
    let arp = {
        let mut f = vec![0xffu8; 6];
        f.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        f.extend([0u8; 28]);
        f
    };
    for (what, f) in [
        ("TCP", tcp),
        ("ARP", arp),
        // BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header.
        ("Ethernet header only", good[..14].to_vec()),
        ("cut before the IPv4 protocol byte", good[..14 + 8].to_vec()),
    ] {
        let c = counters_after(&f, v2_config(Some("secret1")), FAMILY_IPV4);
        assert_eq!(c, Counters::default(), "{what}");
    }
}

#[test]
fn malformed_adverts_are_counted_by_reason() {
    let pass = v2_config(Some("secret1"));
    let spec = FrameSpec::multicast(SRC4);
    let good = frame(&spec, &advert_v2(51, 100));
    let vrrp = 14 + 20;
    let expect = |field: fn(&mut Counters)| {
        let mut c = Counters {
            vrrp_packets: 1,
            ..Default::default()
        };
        field(&mut c);
        c
    };

    let mut ttl = spec.clone();
    ttl.ttl = 254;
    let mut bad_version = good.clone();
    bad_version[vrrp] = 0x41;
    let mut bad_type = good.clone();
    bad_type[vrrp] = 0x22;
    let mut bad_sum = good.clone();
    bad_sum[vrrp + 7] ^= 0x5a;
    let mut fragment = good.clone();
    fragment[14 + 6] = 0x20; // more fragments
    let mut wrong_count = good.clone();
    wrong_count[vrrp + 3] = 5;
    let mut short_ihl = good.clone();
    short_ihl[14] = 0x44;
    let mut wrong_pass = advert_v2(51, 100);
    wrong_pass.auth = Auth::password(b"guess");
    let mut no_auth = advert_v2(51, 100);
    no_auth.auth = Auth::None;
    let mut slow = advert_v2(51, 100);
    slow.interval_cs = 200;
    let unicast_spec = FrameSpec::new(SRC4, "192.0.2.2".parse().unwrap());

    let cases: Vec<(&str, Vec<u8>, Counters)> = vec![
        (
            "TTL 254",
            frame(&ttl, &advert_v2(51, 100)),
            expect(|c| c.bad_ttl = 1),
        ),
        ("version 4", bad_version, expect(|c| c.bad_version = 1)),
        (
            "v3 advert for a v2 instance",
            frame(&spec, &advert_v3(51, 100, vec![VIP4])),
            expect(|c| c.bad_version = 1),
        ),
        ("type 2", bad_type, expect(|c| c.bad_type = 1)),
        ("bad checksum", bad_sum, expect(|c| c.bad_checksum = 1)),
        (
            "unknown VRID",
            frame(&spec, &advert_v2(52, 100)),
            expect(|c| c.unknown_vrid = 1),
        ),
        (
            "wrong password",
            frame(&spec, &wrong_pass),
            expect(|c| c.auth_mismatch = 1),
        ),
        (
            "no auth for a PASS instance",
            frame(&spec, &no_auth),
            expect(|c| c.auth_mismatch = 1),
        ),
        (
            "advert_int 2 against 1",
            frame(&spec, &slow),
            expect(|c| c.interval_mismatch = 1),
        ),
        (
            "unicast advert for a multicast instance",
            frame(&unicast_spec, &advert_v2(51, 100)),
            expect(|c| c.mode_mismatch = 1),
        ),
        ("IPv4 fragment", fragment, expect(|c| c.fragment = 1)),
        (
            "address count beyond the PDU",
            wrong_count,
            expect(|c| c.bad_length = 1),
        ),
        ("IHL below 5", short_ihl, expect(|c| c.truncated = 1)),
        (
            "cut inside the IPv4 header",
            good[..14 + 12].to_vec(),
            expect(|c| c.truncated = 1),
        ),
        (
            "cut in the VRRP header",
            good[..vrrp + 4].to_vec(),
            expect(|c| c.truncated = 1),
        ),
        (
            "cut in the auth data",
            good[..good.len() - 3].to_vec(),
            expect(|c| c.truncated = 1),
        ),
    ];
    for (what, f, want) in cases {
        let c = counters_after(&f, pass, FAMILY_IPV4);
        assert_eq!(c, want, "{what}");
    }
}

#[test]
fn ipv6_hop_limit_and_checksum_are_checked() {
    let src6: IpAddr = "fe80::1".parse().unwrap();
    let a = advert_v3(51, 100, vec!["2001:db8::100".parse().unwrap()]);
    let mut hop = FrameSpec::multicast(src6);
    hop.ttl = 1;
    let c = counters_after(&frame(&hop, &a), v3_config(), FAMILY_IPV6);
    assert_eq!(
        c,
        Counters {
            vrrp_packets: 1,
            bad_ttl: 1,
            ..Default::default()
        }
    );
    // IPv6 always checksums the pseudo-header: the as-v2 flag does not apply.
    let flagged = InstanceConfig {
        flags: instance_flags::CHECKSUM_AS_V2,
        ..v3_config()
    };
    let good = frame(&FrameSpec::multicast(src6), &a);
    assert_eq!(counters_after(&good, flagged, FAMILY_IPV6).accepted, 1);
    let mut corrupt = good.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x01;
    let c = counters_after(&corrupt, v3_config(), FAMILY_IPV6);
    assert_eq!(
        c,
        Counters {
            vrrp_packets: 1,
            bad_checksum: 1,
            ..Default::default()
        }
    );
}

#[test]
fn v3_checksum_as_v2_follows_the_instance_flag() {
    let a = advert_v3(51, 100, vec![VIP4]);
    let mut as_v2 = FrameSpec::multicast(SRC4);
    as_v2.v3_checksum_as_v2 = true;
    let standard = frame(&FrameSpec::multicast(SRC4), &a);
    let compat = frame(&as_v2, &a);
    let flagged = InstanceConfig {
        flags: instance_flags::CHECKSUM_AS_V2,
        ..v3_config()
    };
    assert_eq!(counters_after(&compat, flagged, FAMILY_IPV4).accepted, 1);
    assert_eq!(
        counters_after(&standard, flagged, FAMILY_IPV4).bad_checksum,
        1
    );
    assert_eq!(
        counters_after(&compat, v3_config(), FAMILY_IPV4).bad_checksum,
        1
    );
    assert_eq!(
        counters_after(&standard, v3_config(), FAMILY_IPV4).accepted,
        1
    );
}

#[test]
fn unicast_sources_are_checked_when_listed() {
    let mut rec = recorder();
    let key = InstanceKey::new(LO, FAMILY_IPV4, 51);
    let config = InstanceConfig {
        flags: instance_flags::UNICAST | instance_flags::CHECK_UNICAST_SRC,
        ..v2_config(None)
    };
    rec.maps.set_instance(key, config).unwrap();
    rec.maps
        .allow_source(peer_key(FAMILY_IPV4, 51, SRC4))
        .unwrap();
    let mut a = advert_v2(51, 100);
    a.auth = Auth::None;
    let dst: IpAddr = "192.0.2.2".parse().unwrap();
    run(&mut rec, &frame(&FrameSpec::new(SRC4, dst), &a));
    let stranger: IpAddr = "192.0.2.66".parse().unwrap();
    run(&mut rec, &frame(&FrameSpec::new(stranger, dst), &a));
    run(&mut rec, &frame(&FrameSpec::multicast(SRC4), &a));
    let c = rec.maps.counters().unwrap();
    assert_eq!(
        c,
        Counters {
            vrrp_packets: 3,
            accepted: 1,
            unlisted_source: 1,
            mode_mismatch: 1,
            ..Default::default()
        }
    );
    assert!(rec
        .maps
        .peer(&peer_key(FAMILY_IPV4, 51, stranger))
        .unwrap()
        .is_none());
}

#[test]
fn only_significant_changes_reach_the_ring_buffer() {
    let mut rec = recorder();
    let key = InstanceKey::new(LO, FAMILY_IPV4, 51);
    rec.maps
        .set_instance(key, v2_config(Some("secret1")))
        .unwrap();
    let mut ring = rec.take_events().unwrap();
    let spec = FrameSpec::multicast(SRC4);

    run(&mut rec, &frame(&spec, &advert_v2(51, 150)));
    let ev = drained_events(&mut rec, &mut ring);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].kind, ev[0].priority), (event_kind::NEW_PEER, 150));
    assert_eq!(ev[0].key, peer_key(FAMILY_IPV4, 51, SRC4));

    for _ in 0..5 {
        run(&mut rec, &frame(&spec, &advert_v2(51, 150)));
    }
    assert!(
        drained_events(&mut rec, &mut ring).is_empty(),
        "routine adverts only touch the map"
    );

    run(&mut rec, &frame(&spec, &advert_v2(51, 90)));
    let ev = drained_events(&mut rec, &mut ring);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].kind, ev[0].priority, ev[0].previous_priority),
        (event_kind::PRIORITY_CHANGED, 90, 150)
    );

    run(&mut rec, &frame(&spec, &advert_v2(51, 0)));
    let ev = drained_events(&mut rec, &mut ring);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].kind, ev[0].priority), (event_kind::PRIORITY_ZERO, 0));

    // As master, every advert heard is significant.
    rec.maps
        .set_instance(
            key,
            InstanceConfig {
                flags: instance_flags::WAKE_ON_ANY,
                ..v2_config(Some("secret1"))
            },
        )
        .unwrap();
    run(&mut rec, &frame(&spec, &advert_v2(51, 0)));
    let ev = drained_events(&mut rec, &mut ring);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, event_kind::WHILE_MASTER);
    assert!(ev[0].arrived_ns > 0);
}

#[test]
fn the_record_keeps_when_the_previous_priority_was_last_heard() {
    let mut rec = recorder();
    let key = InstanceKey::new(LO, FAMILY_IPV4, 51);
    rec.maps
        .set_instance(key, v2_config(Some("secret1")))
        .unwrap();
    let spec = FrameSpec::multicast(SRC4);
    let peer = peer_key(FAMILY_IPV4, 51, SRC4);
    let record = |rec: &Recorder| rec.maps.peer(&peer).unwrap().expect("recorded");

    run(&mut rec, &frame(&spec, &advert_v2(51, 200)));
    assert_eq!(
        (record(&rec).prev_priority, record(&rec).prev_last_ns),
        (0, 0)
    );
    run(&mut rec, &frame(&spec, &advert_v2(51, 200)));
    let last_at_200 = record(&rec).last_ns;
    // The drop to 50 keeps the last arrival at 200, through later adverts at 50.
    for _ in 0..3 {
        run(&mut rec, &frame(&spec, &advert_v2(51, 50)));
        let r = record(&rec);
        assert_eq!(
            (r.priority, r.prev_priority, r.prev_last_ns),
            (50, 200, last_at_200)
        );
        assert!(r.last_ns > r.prev_last_ns);
    }
    let last_at_50 = record(&rec).last_ns;
    run(&mut rec, &frame(&spec, &advert_v2(51, 200)));
    let r = record(&rec);
    assert_eq!(
        (r.priority, r.prev_priority, r.prev_last_ns),
        (200, 50, last_at_50)
    );
}

#[test]
fn maps_are_pinned_for_bpftool_and_removed_with_the_recorder() {
    let rec = recorder();
    let dir = rec.pin_dir().to_owned();
    for name in ["INSTANCES", "PEERS", "SOURCES", "COUNTERS", "EVENTS"] {
        assert!(
            dir.join(name).exists(),
            "{name} pinned in {}",
            dir.display()
        );
    }
    let out = std::process::Command::new("bpftool")
        .args(["-j", "map", "dump", "pinned"])
        .arg(dir.join("COUNTERS"))
        .output()
        .expect("bpftool (installed by cargo xtask setup)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bpftool map dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("bad_checksum"),
        "BTF field names in bpftool output: {text}"
    );
    drop(rec);
    assert!(!dir.exists(), "pins removed with the recorder");
}
