//! The XDP recorder on crafted, captured and fuzzed frames, through
//! BPF_PROG_TEST_RUN.
//!
//! Each test loads its own copy of the program with its own pinned maps, so
//! tests run in parallel. BPF_PROG_TEST_RUN presents frames as received on
//! the loopback device, so instances are registered on ifindex 1. Every
//! frame is also given to `packet::receive::check`, the userspace statement
//! of the same checks, and the two must agree on the verdict and the reason.

use std::{
    net::IpAddr,
    path::Path,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use tests::pcap;
use vrrp_common::{
    event_kind, peer_flags, Counters, DropReason, InstanceKey, PeerEvent, PeerKey, PeerTable,
    COUNTER_NAMES, EVENT_BURST, FAMILY_IPV4, FAMILY_IPV6, PEER_SLOTS,
};
use xvrrpd::{
    bpf::{pin, Recorder, XdpInstance},
    packet::{
        self,
        receive::{self, StaticRegistry, Verdict},
        Advert, Auth, Family, FrameSpec, Version,
    },
    time::Mono,
};

const XDP_PASS: u32 = 2;
const LO: u32 = 1;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The peer whose adverts the tests send, and our own addresses.
fn src4() -> IpAddr {
    ip("192.0.2.1")
}
fn own4() -> IpAddr {
    ip("192.0.2.2")
}
fn src6() -> IpAddr {
    ip("fe80::1")
}
fn own6() -> IpAddr {
    ip("fe80::2")
}
fn vip4() -> IpAddr {
    ip("192.0.2.100")
}

/// A recorder plus what was registered in it, as `receive::check` sees it.
struct Lab {
    rec: Recorder,
    registry: StaticRegistry,
}

impl Lab {
    fn new() -> Self {
        assert!(
            tests::is_root(),
            "the XDP tests load programs: run them as root (cargo xtask test)"
        );
        let name = format!(
            "xdptest-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let rec = Recorder::load(&pin::dir(Some(&name)).unwrap())
            .expect("loading the XDP object (built by `cargo xtask build-ebpf`)");
        Lab {
            rec,
            registry: StaticRegistry::default(),
        }
    }

    fn with(vrid: u8, instance: &XdpInstance) -> Self {
        let mut lab = Lab::new();
        lab.register(vrid, instance);
        lab
    }

    fn register(&mut self, vrid: u8, instance: &XdpInstance) -> InstanceKey {
        let key = key(instance.family, vrid);
        self.rec.maps.register(key, instance).unwrap();
        let config = self.rec.maps.instance(key).unwrap().expect("registered");
        self.registry.instances.retain(|(k, _)| *k != key);
        self.registry.instances.push((key, config));
        self.registry.sources.retain(|p| p.instance() != key);
        for p in instance.unicast_peers() {
            self.registry
                .sources
                .push(PeerKey::for_source(key, *p).unwrap());
        }
        key
    }

    /// Runs one frame; the verdict is always XDP_PASS.
    fn run(&mut self, frame: &[u8]) {
        let (verdict, _) = self.rec.test_run(frame, 1).expect("BPF_PROG_TEST_RUN");
        assert_eq!(verdict, XDP_PASS, "the recorder never drops a frame");
    }

    fn counters(&self) -> Counters {
        self.rec.maps.counters().unwrap()
    }

    fn tables(&self) -> Vec<PeerTable> {
        self.registry
            .instances
            .iter()
            .map(|(k, _)| self.rec.maps.peer_table(*k).unwrap().expect("registered"))
            .collect()
    }

    /// Runs `frame`, checks the counters add up, that a rejected frame
    /// changed no table, and that `receive::check` agrees. Returns what the
    /// kernel did: `None` for a frame it did not count.
    fn judge(&mut self, frame: &[u8]) -> Option<Result<(), DropReason>> {
        let before = self.counters();
        let tables = self.tables();
        self.run(frame);
        let after = self.counters();
        let kernel = outcome(&before, &after);
        if !matches!(kernel, Some(Ok(()))) {
            assert!(
                tables == self.tables(),
                "a frame the kernel did not accept ({kernel:?}) changed a peer table: {}",
                hex(frame)
            );
        }
        let user = receive::check(frame, LO, &self.registry);
        let agree = match (&kernel, &user) {
            (None, Verdict::NotVrrp) => true,
            (Some(Ok(())), Verdict::Accepted(_)) => true,
            (Some(Err(k)), Verdict::Dropped(u)) => k == u,
            // The kernel's table can be full of protected peers; userspace has no table.
            (Some(Err(DropReason::PeersFull)), Verdict::Accepted(_)) => true,
            _ => false,
        };
        assert!(
            agree,
            "XDP says {kernel:?}, packet::receive says {user:?} for {}",
            hex(frame)
        );
        kernel
    }

    /// The drop reason of `frame` (after `judge`), or `None` if accepted.
    fn reason(&mut self, frame: &[u8]) -> Option<DropReason> {
        self.judge(frame)
            .expect("a protocol-112 frame is counted")
            .err()
    }

    fn peer(&self, family: Family, vrid: u8, src: IpAddr) -> Option<vrrp_common::PeerRecord> {
        self.rec
            .maps
            .peer(&PeerKey::for_source(key(family, vrid), src).unwrap())
            .unwrap()
    }
}

fn key(family: Family, vrid: u8) -> InstanceKey {
    let f = match family {
        Family::V4 => FAMILY_IPV4,
        Family::V6 => FAMILY_IPV6,
    };
    InstanceKey::new(LO, f, vrid)
}

fn hex(frame: &[u8]) -> String {
    frame.iter().map(|b| format!("{b:02x}")).collect()
}

/// What one frame did to the counters: nothing (not VRRP), accepted, or
/// exactly one drop reason; anything else fails the invariant
/// `vrrp_packets = accepted + drops`.
fn outcome(before: &Counters, after: &Counters) -> Option<Result<(), DropReason>> {
    let packets = after.vrrp_packets - before.vrrp_packets;
    let accepted = after.accepted - before.accepted;
    let drops: Vec<DropReason> = DropReason::ALL
        .iter()
        .copied()
        .filter(|r| after.drops(*r) != before.drops(*r))
        .collect();
    for r in &drops {
        assert_eq!(
            after.drops(*r) - before.drops(*r),
            1,
            "{r:?} moved by more than one"
        );
    }
    match (packets, accepted, drops.as_slice()) {
        (0, 0, []) => None,
        (1, 1, []) => Some(Ok(())),
        (1, 0, [r]) => Some(Err(*r)),
        _ => panic!("counters do not add up: before {before:?}, after {after:?}"),
    }
}

fn v2_pass() -> XdpInstance {
    XdpInstance::multicast(
        Version::V2,
        ip("224.0.0.18"),
        Duration::from_secs(1),
        Auth::password(b"secret1"),
        vec![own4()],
    )
}

fn v3(family: Family) -> XdpInstance {
    let (group, own) = match family {
        Family::V4 => (ip("224.0.0.18"), own4()),
        Family::V6 => (ip("ff02::12"), own6()),
    };
    XdpInstance::multicast(
        Version::V3,
        group,
        Duration::from_secs(1),
        Auth::None,
        vec![own],
    )
}

fn unicast_v2(check_source: bool, peers: Vec<IpAddr>) -> XdpInstance {
    XdpInstance::unicast(
        Version::V2,
        Family::V4,
        peers,
        check_source,
        Duration::from_secs(1),
        Auth::None,
        vec![own4()],
    )
}

fn advert_v2(vrid: u8, priority: u8) -> Advert {
    Advert {
        version: Version::V2,
        vrid,
        priority,
        interval_cs: 100,
        addrs: vec![vip4()],
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

/// How far before the true arrival a coarse stamp may lie: a tick, more
/// when the timekeeping tick runs late (a loaded VM); generously bounded.
fn coarse_slack() -> u64 {
    25 * coarse_tick().max(1_000_000)
}

/// The coarse clock's tick.
fn coarse_tick() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into the timespec we own.
    unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn drained_events(ring: &mut aya::maps::RingBuf<aya::maps::MapData>) -> Vec<PeerEvent> {
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
    tests::require_root!();
    let mut lab = Lab::with(51, &v2_pass());
    let before = Mono::now().as_nanos();
    assert_eq!(
        lab.reason(&frame(&FrameSpec::multicast(src4()), &advert_v2(51, 150))),
        None
    );
    let after = Mono::now().as_nanos();
    let peer = lab.peer(Family::V4, 51, src4()).expect("recorded");
    assert_eq!(peer.priority, 150);
    assert_eq!(peer.interval_cs, 100);
    assert_eq!(peer.version, 2);
    assert_eq!(peer.addr_count, 1);
    assert_eq!(peer.auth_type, 1);
    assert_eq!(&peer.auth_data[..7], b"secret1");
    assert_eq!(peer.ttl, 255);
    assert_eq!(peer.multicast, 1);
    assert_eq!(peer.adverts, 1);
    // A 1 s interval is stamped with the coarse clock: a little early.
    assert_eq!(peer.flags, peer_flags::COARSE_TIME);
    assert!(
        peer.last_ns + coarse_slack() >= before && peer.last_ns <= after,
        "{before} <= {} <= {after}",
        peer.last_ns
    );
    lab.run(&frame(&FrameSpec::multicast(src4()), &advert_v2(51, 150)));
    let again = lab.peer(Family::V4, 51, src4()).unwrap();
    assert_eq!(again.adverts, 2);
    assert_eq!(again.first_ns, peer.first_ns);
    assert!(again.last_ns > peer.last_ns, "strictly increasing");
    assert_eq!(
        lab.counters(),
        Counters {
            vrrp_packets: 2,
            accepted: 2,
            ..Default::default()
        }
    );
}

#[test]
fn v3_ipv4_and_ipv6_adverts_are_recorded() {
    tests::require_root!();
    let mut lab = Lab::new();
    lab.register(52, &v3(Family::V4));
    lab.register(53, &v3(Family::V6));
    let mut a4 = advert_v3(52, 120, vec![vip4(), ip("192.0.2.101")]);
    a4.interval_cs = 5; // 50 ms: the precise clock
    let before = Mono::now().as_nanos();
    assert_eq!(lab.reason(&frame(&FrameSpec::multicast(src4()), &a4)), None);
    let after = Mono::now().as_nanos();
    assert_eq!(
        lab.reason(&frame(
            &FrameSpec::multicast(src6()),
            &advert_v3(53, 110, vec![ip("2001:db8::100")]),
        )),
        None
    );
    let p4 = lab.peer(Family::V4, 52, src4()).expect("v3 IPv4");
    assert_eq!(
        (p4.priority, p4.interval_cs, p4.addr_count, p4.version),
        (120, 5, 2, 3)
    );
    assert_eq!(p4.flags & peer_flags::COARSE_TIME, 0);
    assert!(p4.last_ns >= before && p4.last_ns <= after);
    let p6 = lab.peer(Family::V6, 53, src6()).expect("v3 IPv6");
    assert_eq!((p6.priority, p6.interval_cs, p6.addr_count), (110, 100, 1));
    assert_eq!(lab.counters().accepted, 2);
}

/// Frames captured from keepalived 2.2.7 (tests/src/bin/capture_fixtures.rs).
#[test]
fn keepalived_captures_are_accepted() {
    tests::require_root!();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let cases: [(&str, u8, XdpInstance, u8); 3] = [
        ("keepalived-v2-ipv4-pass.pcap", 51, v2_pass(), 150),
        ("keepalived-v3-ipv4.pcap", 52, v3(Family::V4), 120),
        ("keepalived-v3-ipv6.pcap", 53, v3(Family::V6), 110),
    ];
    for (file, vrid, instance, priority) in cases {
        let frames = pcap::frames(&dir.join(file)).unwrap();
        assert!(!frames.is_empty(), "{file} holds no frames");
        let mut lab = Lab::with(vrid, &instance);
        for f in &frames {
            assert_eq!(lab.reason(f), None, "{file}");
        }
        let parsed = packet::parse_frame(&frames[0]).expect("fixture parses");
        let peer = lab
            .peer(instance.family, vrid, parsed.src_ip)
            .unwrap_or_else(|| panic!("{file}: keepalived's advert not recorded"));
        assert_eq!(peer.priority, priority, "{file}");
        assert_eq!(peer.interval_cs, 100, "{file}");
        assert_eq!(peer.adverts, frames.len() as u64, "{file}");
    }
}

#[test]
fn tolerated_variants_are_accepted() {
    tests::require_root!();
    let a = advert_v2(51, 100);
    let mut options = FrameSpec::multicast(src4());
    options.ipv4_options = vec![0x94, 0x04, 0, 0]; // router alert
    let mut long_options = FrameSpec::multicast(src4());
    long_options.ipv4_options = vec![1; 40]; // 40 bytes of NOP: IHL 15
    let mut padded = FrameSpec::multicast(src4());
    padded.pad_frame_to = 60;
    let mut hmac = FrameSpec::multicast(src4());
    hmac.trailer = vec![0xab; 28];
    let many_vips = Advert {
        addrs: (0..40).map(|i| IpAddr::from([198, 51, 100, i])).collect(),
        ..advert_v2(51, 100)
    };
    let mut lab = Lab::with(51, &v2_pass());
    for (what, spec, advert) in [
        ("IPv4 options", options, a.clone()),
        ("40 bytes of IPv4 options", long_options, a.clone()),
        ("Ethernet padding", padded, a.clone()),
        ("28-byte trailer", hmac, a.clone()),
        ("40 VIPs", FrameSpec::multicast(src4()), many_vips),
        (
            "238 VIPs",
            FrameSpec::multicast(src4()),
            Advert {
                addrs: (0..238u32)
                    .map(|i| IpAddr::from((0xc633_6400u32 + i).to_be_bytes()))
                    .collect(),
                ..advert_v2(51, 100)
            },
        ),
    ] {
        assert_eq!(lab.reason(&frame(&spec, &advert)), None, "{what}");
    }
    // A long IPv6 PDU: 200 addresses, 3.2 KB, the most that fits the one
    // page BPF_PROG_TEST_RUN (and a driver without multi-buffer XDP) gives
    // the program; beyond, the frame is cut there and counted as truncated.
    let mut lab = Lab::with(53, &v3(Family::V6));
    let all = advert_v3(
        53,
        100,
        (0..200u16)
            .map(|i| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i]))
            .collect(),
    );
    assert_eq!(
        lab.reason(&frame(&FrameSpec::multicast(src6()), &all)),
        None
    );
}

#[test]
fn non_vrrp_and_short_frames_pass_uncounted() {
    tests::require_root!();
    let mut lab = Lab::with(51, &v2_pass());
    let good = frame(&FrameSpec::multicast(src4()), &advert_v2(51, 100));
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
        ("cut before the IPv4 protocol byte", good[..14 + 9].to_vec()),
    ] {
        assert_eq!(lab.judge(&f), None, "{what}");
        assert_eq!(lab.counters(), Counters::default(), "{what}");
    }
}

/// Sets the IPv4 header checksum of `f` right after an edit of the header.
fn fix_ip_checksum(f: &mut [u8]) {
    let ihl = usize::from(f[14] & 0x0f) * 4;
    if ihl < 20 || 14 + ihl > f.len() {
        return;
    }
    f[14 + 10] = 0;
    f[14 + 11] = 0;
    let sum = packet::internet_checksum(&f[14..14 + ihl]);
    f[14 + 10..14 + 12].copy_from_slice(&sum.to_be_bytes());
}

/// Every IPv4 drop reason, each from a frame that differs from a valid one
/// in one respect.
fn ipv4_malformed() -> Vec<(&'static str, Vec<u8>, DropReason)> {
    let spec = FrameSpec::multicast(src4());
    let good = frame(&spec, &advert_v2(51, 100));
    const VRRP: usize = 14 + 20;
    let edit = |f: fn(&mut Vec<u8>), fix: bool| {
        let mut g = good.clone();
        f(&mut g);
        if fix {
            fix_ip_checksum(&mut g);
        }
        g
    };
    let with_spec = |f: fn(&mut FrameSpec), a: Advert| {
        let mut s = spec.clone();
        f(&mut s);
        frame(&s, &a)
    };
    let with_advert = |f: fn(&mut Advert)| {
        let mut a = advert_v2(51, 100);
        f(&mut a);
        frame(&spec, &a)
    };
    let from = |src: &str| frame(&FrameSpec::multicast(ip(src)), &advert_v2(51, 100));
    // 238 VIPs: a 968-byte PDU, summed as 3 blocks of 256 bytes, one of
    // 128, one of 64 and a tail of 8.
    let long = Advert {
        addrs: (0..238u32)
            .map(|i| IpAddr::from((0xc633_6400u32 + i).to_be_bytes()))
            .collect(),
        ..advert_v2(51, 100)
    };
    let long_frame = frame(&spec, &long);
    let corrupt_at = |at: usize| {
        let mut f = long_frame.clone();
        f[VRRP + at] ^= 0x10;
        f
    };
    vec![
        (
            "cut inside the IPv4 header",
            good[..14 + 12].to_vec(),
            DropReason::Truncated,
        ),
        (
            "IP version 5",
            edit(|g| g[14] = 0x55, true),
            DropReason::BadIpHeader,
        ),
        (
            "IHL below 5",
            edit(|g| g[14] = 0x44, true),
            DropReason::BadIpHeader,
        ),
        (
            "IHL beyond the frame",
            edit(|g| g[14] = 0x4f, false),
            DropReason::BadIpHeader,
        ),
        (
            "bad IPv4 header checksum",
            edit(|g| g[14 + 10] ^= 0x40, false),
            DropReason::BadIpChecksum,
        ),
        (
            "total length below the IHL",
            edit(|g| g[14 + 3] = 16, true),
            DropReason::BadIpHeader,
        ),
        (
            "total length beyond the frame",
            edit(|g| g[14 + 3] += 8, true),
            DropReason::Truncated,
        ),
        (
            "IPv4 fragment",
            edit(|g| g[14 + 6] = 0x20, true),
            DropReason::Fragment,
        ),
        (
            "cut in the VRRP header",
            good[..VRRP + 4].to_vec(),
            DropReason::Truncated,
        ),
        (
            "IP length leaves no VRRP header",
            edit(|g| g[14 + 3] = 24, true),
            DropReason::Truncated,
        ),
        (
            "version 4",
            edit(|g| g[VRRP] = 0x41, false),
            DropReason::BadVersion,
        ),
        (
            "type 2",
            edit(|g| g[VRRP] = 0x22, false),
            DropReason::BadType,
        ),
        (
            "unknown VRID",
            with_advert(|a| a.vrid = 99),
            DropReason::UnknownVrid,
        ),
        (
            "v3 advert for a v2 instance",
            frame(&spec, &advert_v3(51, 100, vec![vip4()])),
            DropReason::BadVersion,
        ),
        (
            "unicast advert for a multicast instance",
            frame(&FrameSpec::new(src4(), own4()), &advert_v2(51, 100)),
            DropReason::ModeMismatch,
        ),
        (
            "another multicast group (224.0.0.99)",
            with_spec(
                |s| s.dst_ip = "224.0.0.99".parse().unwrap(),
                advert_v2(51, 100),
            ),
            DropReason::WrongDestination,
        ),
        ("source 0.0.0.0", from("0.0.0.0"), DropReason::MartianSource),
        (
            "source 127.0.0.1",
            from("127.0.0.1"),
            DropReason::MartianSource,
        ),
        (
            "multicast source",
            from("224.0.0.5"),
            DropReason::MartianSource,
        ),
        (
            "broadcast source",
            from("255.255.255.255"),
            DropReason::MartianSource,
        ),
        ("our own source", from("192.0.2.2"), DropReason::OwnSource),
        (
            "TTL 254",
            with_spec(|s| s.ttl = 254, advert_v2(51, 100)),
            DropReason::BadTtl,
        ),
        (
            "address count beyond the PDU",
            edit(|g| g[VRRP + 3] = 5, false),
            DropReason::BadLength,
        ),
        (
            "cut in the auth data (IP length kept)",
            good[..good.len() - 3].to_vec(),
            DropReason::Truncated,
        ),
        (
            "bad checksum",
            edit(|g| g[VRRP + 7] ^= 0x5a, false),
            DropReason::BadChecksum,
        ),
        (
            "bad checksum in a 256-byte block",
            corrupt_at(600),
            DropReason::BadChecksum,
        ),
        (
            "bad checksum in the 128-byte block",
            corrupt_at(800),
            DropReason::BadChecksum,
        ),
        (
            "bad checksum in the 64-byte block",
            corrupt_at(920),
            DropReason::BadChecksum,
        ),
        (
            "bad checksum in the 8-byte tail",
            corrupt_at(964),
            DropReason::BadChecksum,
        ),
        (
            "advert_int 2 against 1",
            with_advert(|a| a.interval_cs = 200),
            DropReason::IntervalMismatch,
        ),
        (
            "wrong password",
            with_advert(|a| a.auth = Auth::password(b"guess")),
            DropReason::AuthMismatch,
        ),
        (
            "no auth for a PASS instance",
            with_advert(|a| a.auth = Auth::None),
            DropReason::AuthMismatch,
        ),
        (
            "auth type 2",
            with_advert(|a| a.auth = Auth::Other(2)),
            DropReason::AuthMismatch,
        ),
    ]
}

#[test]
fn malformed_ipv4_adverts_are_counted_by_reason() {
    tests::require_root!();
    let mut lab = Lab::with(51, &v2_pass());
    for (what, f, want) in ipv4_malformed() {
        assert_eq!(lab.reason(&f), Some(want), "{what}");
    }
    let tables = lab.tables();
    assert!(
        tables[0].slots.iter().all(|s| !s.record.in_use()),
        "a dropped advert was recorded"
    );
}

#[test]
fn a_zero_interval_is_refused() {
    tests::require_root!();
    // v2: interval 0 with a valid checksum.
    let mut lab = Lab::with(51, &v2_pass());
    let mut f = frame(&FrameSpec::multicast(src4()), &advert_v2(51, 100));
    let vrrp = 14 + 20;
    f[vrrp + 5] = 0;
    f[vrrp + 6] = 0;
    f[vrrp + 7] = 0;
    let sum = packet::internet_checksum(&f[vrrp..]);
    f[vrrp + 6..vrrp + 8].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(lab.reason(&f), Some(DropReason::IntervalMismatch));
    // v3: interval 0 (encode refuses it, so patch and re-checksum).
    let mut lab = Lab::with(52, &v3(Family::V4));
    let mut f = frame(
        &FrameSpec::multicast(src4()),
        &advert_v3(52, 100, vec![vip4()]),
    );
    f[vrrp + 4] = 0;
    f[vrrp + 5] = 0;
    f[vrrp + 6] = 0;
    f[vrrp + 7] = 0;
    let mut sum = packet::Checksum::new();
    sum.add_pseudo_header(src4(), ip("224.0.0.18"), 12)
        .add_bytes(&f[vrrp..]);
    f[vrrp + 6..vrrp + 8].copy_from_slice(&sum.finish().to_be_bytes());
    assert_eq!(lab.reason(&f), Some(DropReason::IntervalMismatch));
}

fn ipv6_malformed() -> Vec<(&'static str, Vec<u8>, DropReason)> {
    let a = advert_v3(53, 100, vec![ip("2001:db8::100")]);
    let spec = FrameSpec::multicast(src6());
    let good = frame(&spec, &a);
    let with_spec = |f: fn(&mut FrameSpec)| {
        let mut s = spec.clone();
        f(&mut s);
        frame(&s, &a)
    };
    let mut corrupt = good.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x01;
    let mut version = good.clone();
    version[14] = 0x4c;
    let mut long = good.clone();
    long[14 + 5] += 4; // payload length beyond the frame
    vec![
        (
            "cut inside the IPv6 header",
            good[..14 + 30].to_vec(),
            DropReason::Truncated,
        ),
        (
            "IP version 4 in an IPv6 frame",
            version,
            DropReason::BadIpHeader,
        ),
        (
            "payload length beyond the frame",
            long,
            DropReason::Truncated,
        ),
        ("hop limit 1", with_spec(|s| s.ttl = 1), DropReason::BadTtl),
        (
            "global source",
            with_spec(|s| s.src_ip = "2001:db8::1".parse().unwrap()),
            DropReason::NotLinkLocal,
        ),
        (
            "source ::1",
            with_spec(|s| s.src_ip = "::1".parse().unwrap()),
            DropReason::MartianSource,
        ),
        (
            "our own source",
            with_spec(|s| s.src_ip = "fe80::2".parse().unwrap()),
            DropReason::OwnSource,
        ),
        (
            "another group (ff02::99)",
            with_spec(|s| s.dst_ip = "ff02::99".parse().unwrap()),
            DropReason::WrongDestination,
        ),
        (
            "unicast to a multicast instance",
            with_spec(|s| s.dst_ip = "fe80::2".parse().unwrap()),
            DropReason::ModeMismatch,
        ),
        ("bad checksum", corrupt, DropReason::BadChecksum),
    ]
}

#[test]
fn malformed_ipv6_adverts_are_counted_by_reason() {
    tests::require_root!();
    let mut lab = Lab::with(53, &v3(Family::V6));
    for (what, f, want) in ipv6_malformed() {
        assert_eq!(lab.reason(&f), Some(want), "{what}");
    }
    assert!(lab.tables()[0].slots.iter().all(|s| !s.record.in_use()));
    // IPv6 always checksums the pseudo-header: the as-v2 flag does not apply.
    let mut flagged = v3(Family::V6);
    flagged.v3_checksum_as_v2 = true;
    let mut lab = Lab::with(53, &flagged);
    let a = advert_v3(53, 100, vec![ip("2001:db8::100")]);
    assert_eq!(lab.reason(&frame(&FrameSpec::multicast(src6()), &a)), None);
    // A global source is fine once the instance says so.
    let mut any = v3(Family::V6);
    any.link_local_source = false;
    let mut lab = Lab::with(53, &any);
    let mut spec = FrameSpec::multicast(ip("2001:db8::1"));
    spec.ttl = 255;
    assert_eq!(lab.reason(&frame(&spec, &a)), None);
}

#[test]
fn v3_checksum_as_v2_follows_the_instance_flag() {
    tests::require_root!();
    let a = advert_v3(52, 100, vec![vip4()]);
    let mut as_v2 = FrameSpec::multicast(src4());
    as_v2.v3_checksum_as_v2 = true;
    let standard = frame(&FrameSpec::multicast(src4()), &a);
    let compat = frame(&as_v2, &a);
    let mut flagged = v3(Family::V4);
    flagged.v3_checksum_as_v2 = true;
    for (what, instance, f, want) in [
        ("compat frame, flagged", &flagged, &compat, None),
        (
            "standard frame, flagged",
            &flagged,
            &standard,
            Some(DropReason::BadChecksum),
        ),
        (
            "compat frame, standard",
            &v3(Family::V4),
            &compat,
            Some(DropReason::BadChecksum),
        ),
        ("standard frame, standard", &v3(Family::V4), &standard, None),
    ] {
        let mut lab = Lab::with(52, instance);
        assert_eq!(lab.reason(f), want, "{what}");
    }
}

#[test]
fn unicast_adverts_must_be_for_us_and_from_a_listed_peer() {
    tests::require_root!();
    let mut lab = Lab::with(51, &unicast_v2(true, vec![src4()]));
    let mut a = advert_v2(51, 100);
    a.auth = Auth::None;
    let stranger = ip("192.0.2.66");
    for (what, spec, want) in [
        ("from the listed peer", FrameSpec::new(src4(), own4()), None),
        (
            "to another host",
            FrameSpec::new(src4(), ip("192.0.2.99")),
            Some(DropReason::WrongDestination),
        ),
        (
            "to the subnet broadcast",
            FrameSpec::new(src4(), ip("192.0.2.255")),
            Some(DropReason::WrongDestination),
        ),
        (
            "from a stranger",
            FrameSpec::new(stranger, own4()),
            Some(DropReason::UnlistedSource),
        ),
        (
            "multicast",
            FrameSpec::multicast(src4()),
            Some(DropReason::ModeMismatch),
        ),
        // Unicast relies on TTL settings (keepalived's min/max_ttl), not 255.
        (
            "TTL 64",
            FrameSpec {
                ttl: 64,
                ..FrameSpec::new(src4(), own4())
            },
            None,
        ),
    ] {
        assert_eq!(lab.reason(&frame(&spec, &a)), want, "{what}");
    }
    assert!(lab.peer(Family::V4, 51, stranger).is_none());
    assert_eq!(
        lab.peer(Family::V4, 51, src4()).unwrap().flags & peer_flags::LISTED,
        peer_flags::LISTED
    );
    // Listing the stranger later: the kernel asks SOURCES again.
    let key = key(Family::V4, 51);
    lab.rec.maps.set_sources(key, &[src4(), stranger]).unwrap();
    lab.registry
        .sources
        .push(PeerKey::for_source(key, stranger).unwrap());
    lab.registry.instances[0].1 = lab.rec.maps.instance(key).unwrap().unwrap();
    assert_eq!(
        lab.reason(&frame(&FrameSpec::new(stranger, own4()), &a)),
        None
    );
    // And delisting the first peer makes its next advert unlisted, though recorded.
    lab.rec.maps.set_sources(key, &[stranger]).unwrap();
    lab.registry.sources.retain(|p| p.source() != src4());
    lab.registry.instances[0].1 = lab.rec.maps.instance(key).unwrap().unwrap();
    assert_eq!(
        lab.reason(&frame(&FrameSpec::new(src4(), own4()), &a)),
        Some(DropReason::UnlistedSource)
    );
}

/// The program keeps per-CPU copies of configurations; a change must apply
/// to the very next advert.
#[test]
fn configuration_changes_apply_to_the_next_advert() {
    tests::require_root!();
    let mut lab = Lab::with(51, &v2_pass());
    let advert = frame(&FrameSpec::multicast(src4()), &advert_v2(51, 100));
    for _ in 0..3 {
        assert_eq!(lab.reason(&advert), None);
    }
    let mut slower = v2_pass();
    slower.advert_int = Duration::from_secs(2);
    lab.register(51, &slower);
    assert_eq!(lab.reason(&advert), Some(DropReason::IntervalMismatch));
    lab.register(51, &v2_pass());
    assert_eq!(lab.reason(&advert), None);
    let mut other_password = v2_pass();
    other_password.auth = Auth::password(b"other");
    lab.register(51, &other_password);
    assert_eq!(lab.reason(&advert), Some(DropReason::AuthMismatch));
    lab.rec.maps.remove_instance(key(Family::V4, 51)).unwrap();
    lab.registry.instances.clear();
    assert_eq!(lab.reason(&advert), Some(DropReason::UnknownVrid));
    // Back, with an empty table: the source is new again.
    lab.register(51, &v2_pass());
    assert_eq!(lab.reason(&advert), None);
    assert_eq!(lab.peer(Family::V4, 51, src4()).unwrap().adverts, 1);
}

#[test]
fn only_significant_changes_reach_the_ring_buffer() {
    tests::require_root!();
    let mut lab = Lab::with(51, &v2_pass());
    let mut ring = lab.rec.take_events().unwrap();
    let spec = FrameSpec::multicast(src4());

    lab.run(&frame(&spec, &advert_v2(51, 150)));
    let ev = drained_events(&mut ring);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].kind, ev[0].priority), (event_kind::NEW_PEER, 150));
    assert_eq!(
        ev[0].key,
        PeerKey::for_source(key(Family::V4, 51), src4()).unwrap()
    );

    for _ in 0..5 {
        lab.run(&frame(&spec, &advert_v2(51, 150)));
    }
    assert!(
        drained_events(&mut ring).is_empty(),
        "routine adverts only touch the map"
    );

    lab.run(&frame(&spec, &advert_v2(51, 90)));
    let ev = drained_events(&mut ring);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].kind, ev[0].priority, ev[0].previous_priority),
        (event_kind::PRIORITY_CHANGED, 90, 150)
    );

    lab.run(&frame(&spec, &advert_v2(51, 0)));
    let ev = drained_events(&mut ring);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].kind, ev[0].priority), (event_kind::PRIORITY_ZERO, 0));

    // As master, every advert heard is significant. The daemon's advert
    // thread sets the flag through a handle opened from the pins: the
    // program must see the change at the next advert, whatever it cached.
    let mut pinned = xvrrpd::bpf::Maps::open_pinned(lab.rec.pin_dir()).unwrap();
    pinned.set_wake_on_any(key(Family::V4, 51), true).unwrap();
    lab.run(&frame(&spec, &advert_v2(51, 0)));
    let ev = drained_events(&mut ring);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, event_kind::WHILE_MASTER);
    assert!(ev[0].arrived_ns > 0);
    pinned.set_wake_on_any(key(Family::V4, 51), false).unwrap();
    lab.run(&frame(&spec, &advert_v2(51, 0)));
    assert!(
        drained_events(&mut ring).is_empty(),
        "the flag is off again"
    );
}

/// A flood of new sources spends the instance's event budget, is counted,
/// and the next event that goes out says how many were held back.
#[test]
fn a_flood_of_new_sources_is_held_to_the_event_budget() {
    tests::require_root!();
    let mut lab = Lab::with(51, &v2_pass());
    let mut ring = lab.rec.take_events().unwrap();
    let flood = 500;
    for n in 0..flood {
        lab.run(&junk_v4(n, 50));
    }
    let ev = drained_events(&mut ring);
    let c = lab.counters();
    assert_eq!(c.accepted, flood as u64);
    assert!(
        ev.len() <= 2 * EVENT_BURST as usize,
        "{} events for {flood} new sources",
        ev.len()
    );
    assert_eq!(c.events_suppressed, (flood as usize - ev.len()) as u64);
    assert_eq!(
        lab.rec
            .maps
            .peer_table(key(Family::V4, 51))
            .unwrap()
            .unwrap()
            .events_suppressed,
        c.events_suppressed
    );
    // After the window the next advert, even a routine one, carries the tally.
    std::thread::sleep(Duration::from_nanos(
        vrrp_common::EVENT_WINDOW_NS + 10_000_000,
    ));
    lab.run(&junk_v4(flood - 1, 50));
    let ev = drained_events(&mut ring);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, event_kind::CATCH_UP);
    assert!(ev[0].suppressed > 0);
}

#[test]
fn the_record_keeps_when_the_previous_priority_was_last_heard() {
    tests::require_root!();
    let mut lab = Lab::with(51, &v2_pass());
    let spec = FrameSpec::multicast(src4());
    let record = |lab: &Lab| lab.peer(Family::V4, 51, src4()).expect("recorded");

    lab.run(&frame(&spec, &advert_v2(51, 200)));
    assert_eq!(
        (record(&lab).prev_priority, record(&lab).prev_last_ns),
        (0, 0)
    );
    lab.run(&frame(&spec, &advert_v2(51, 200)));
    let last_at_200 = record(&lab).last_ns;
    // The drop to 50 keeps the last arrival at 200, through later adverts at 50.
    for _ in 0..3 {
        lab.run(&frame(&spec, &advert_v2(51, 50)));
        let r = record(&lab);
        assert_eq!(
            (r.priority, r.prev_priority, r.prev_last_ns),
            (50, 200, last_at_200)
        );
        assert!(r.last_ns > r.prev_last_ns);
    }
    let last_at_50 = record(&lab).last_ns;
    lab.run(&frame(&spec, &advert_v2(51, 200)));
    let r = record(&lab);
    assert_eq!(
        (r.priority, r.prev_priority, r.prev_last_ns),
        (200, 50, last_at_50)
    );
}

/// A v2 advert for VRID 51 from 10.x.y.z, the n-th junk source.
fn junk_v4(n: u32, priority: u8) -> Vec<u8> {
    let src = IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    frame(&FrameSpec::multicast(src), &advert_v2(51, priority))
}

fn live_sources(lab: &Lab, key: InstanceKey) -> Vec<IpAddr> {
    lab.rec
        .maps
        .peers_of(key)
        .unwrap()
        .iter()
        .map(|(k, _)| k.source())
        .collect()
}

#[test]
fn a_higher_priority_peer_is_recorded_after_a_flood_and_stays() {
    tests::require_root!();
    let mut lab = Lab::with(51, &v2_pass());
    let key = key(Family::V4, 51);
    let flood = 3000;
    for n in 0..flood {
        lab.run(&junk_v4(n, 1 + (n % 200) as u8));
    }
    let c = lab.counters();
    assert_eq!(c.accepted, flood as u64, "{c:?}");
    assert_eq!(c.peers_evicted, (flood as usize - PEER_SLOTS) as u64);
    assert_eq!(live_sources(&lab, key).len(), PEER_SLOTS);
    // The real peer, priority 250, arrives and is recorded...
    let real = frame(&FrameSpec::multicast(src4()), &advert_v2(51, 250));
    assert_eq!(lab.reason(&real), None);
    assert!(live_sources(&lab, key).contains(&src4()));
    // ...and the flood goes on without evicting it: it is the highest priority.
    for n in flood..2 * flood {
        lab.run(&junk_v4(n, 1 + (n % 200) as u8));
    }
    assert!(live_sources(&lab, key).contains(&src4()));
    assert_eq!(lab.counters().peers_full, 0);
    assert_eq!(
        lab.rec.maps.peer_table(key).unwrap().unwrap().evicted,
        lab.counters().peers_evicted
    );
}

#[test]
fn the_master_and_listed_peers_survive_a_flood() {
    tests::require_root!();
    // Multicast: the master (priority 100) and a flood at priorities up to
    // 254, so the master is not the highest, from sources that each send
    // twice, so it is not the only peer heard more than once either. Named
    // by userspace, it stays; else it goes like any other.
    let master = ip("192.0.2.7");
    for named in [false, true] {
        let mut lab = Lab::with(51, &v2_pass());
        let key = key(Family::V4, 51);
        if named {
            lab.rec.maps.set_master(key, Some(master)).unwrap();
            lab.registry.instances[0].1 = lab.rec.maps.instance(key).unwrap().unwrap();
        }
        let from_master = frame(&FrameSpec::multicast(master), &advert_v2(51, 100));
        lab.run(&from_master);
        lab.run(&from_master);
        for n in 0..2000 {
            let junk = junk_v4(n, 101 + (n % 154) as u8);
            lab.run(&junk);
            lab.run(&junk);
        }
        assert_eq!(
            live_sources(&lab, key).contains(&master),
            named,
            "master named to the kernel: {named}"
        );
    }

    // Unicast: three listed peers, and junk to our address from anyone
    // (source checking off, so it is recorded).
    let listed = vec![ip("192.0.2.11"), ip("192.0.2.12"), ip("192.0.2.13")];
    let mut lab = Lab::with(51, &unicast_v2(false, listed.clone()));
    let key = key(Family::V4, 51);
    let mut a = advert_v2(51, 100);
    a.auth = Auth::None;
    for p in &listed {
        assert_eq!(lab.reason(&frame(&FrameSpec::new(*p, own4()), &a)), None);
    }
    for n in 0..2000u32 {
        let src = IpAddr::from([10, 9, (n >> 8) as u8, n as u8]);
        let mut junk = a.clone();
        junk.priority = 254;
        lab.run(&frame(&FrameSpec::new(src, own4()), &junk));
    }
    let live = live_sources(&lab, key);
    for p in &listed {
        assert!(live.contains(p), "{p} evicted: {live:?}");
    }
    assert!(lab.counters().peers_evicted > 1000);
}

#[test]
fn a_flood_of_one_shot_sources_evicts_only_one_shot_sources() {
    tests::require_root!();
    let mut lab = Lab::with(51, &v2_pass());
    let key = key(Family::V4, 51);
    // Two peers heard regularly, below the top priority.
    let regular = [ip("192.0.2.21"), ip("192.0.2.22")];
    for _ in 0..3 {
        for p in &regular {
            lab.run(&frame(&FrameSpec::multicast(*p), &advert_v2(51, 90)));
        }
    }
    lab.run(&frame(&FrameSpec::multicast(src4()), &advert_v2(51, 200)));
    for n in 0..5000 {
        lab.run(&junk_v4(n, 100));
    }
    let live = live_sources(&lab, key);
    for p in regular.iter().chain([src4()].iter()) {
        assert!(live.contains(p), "{p} evicted by one-shot junk: {live:?}");
    }
}

#[test]
fn stale_peers_expire_and_their_slots_are_reused() {
    tests::require_root!();
    // v3 at 10 ms: stale after 12 intervals, 120 ms.
    let mut lab = Lab::with(52, &v3(Family::V4));
    let key = key(Family::V4, 52);
    let mut a = advert_v3(52, 100, vec![vip4()]);
    a.interval_cs = 1;
    let from = |n: u8| frame(&FrameSpec::multicast(IpAddr::from([10, 0, 0, n])), &a);
    for n in 1..=PEER_SLOTS as u8 {
        assert_eq!(lab.reason(&from(n)), None);
    }
    assert_eq!(live_sources(&lab, key).len(), PEER_SLOTS);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        live_sources(&lab, key).is_empty(),
        "stale peers are not reported"
    );
    for n in 101..=103 {
        assert_eq!(lab.reason(&from(n)), None);
    }
    let c = lab.counters();
    assert_eq!((c.peers_expired, c.peers_evicted), (3, 0));
    assert_eq!(live_sources(&lab, key).len(), 3);
}

/// Every malformed kind and a valid frame of each family, through both
/// implementations, on every instance kind.
#[test]
fn xdp_and_packet_receive_agree_on_every_case() {
    tests::require_root!();
    let mut lab = Lab::new();
    lab.register(51, &v2_pass());
    lab.register(52, &v3(Family::V4));
    lab.register(53, &v3(Family::V6));
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for (what, f, _) in ipv4_malformed().into_iter().chain(ipv6_malformed()) {
        cases.push((what.to_owned(), f));
    }
    cases.push((
        "valid v2".into(),
        frame(&FrameSpec::multicast(src4()), &advert_v2(51, 100)),
    ));
    cases.push((
        "valid v3 IPv4".into(),
        frame(
            &FrameSpec::multicast(src4()),
            &advert_v3(52, 100, vec![vip4()]),
        ),
    ));
    cases.push((
        "valid v3 IPv6".into(),
        frame(
            &FrameSpec::multicast(src6()),
            &advert_v3(53, 100, vec![ip("2001:db8::1")]),
        ),
    ));
    let mut seen = std::collections::BTreeSet::new();
    for (what, f) in &cases {
        // `judge` asserts the agreement; twice, as a known source takes the short path.
        let first = lab.judge(f);
        let second = lab.judge(f);
        assert_eq!(first, second, "{what}");
        if let Some(Err(r)) = first {
            seen.insert(r);
        }
    }
    lab.register(54, &unicast_v2(true, vec![src4()]));
    let mut a = advert_v2(54, 100);
    a.auth = Auth::None;
    for spec in [
        FrameSpec::new(src4(), own4()),
        FrameSpec::new(ip("192.0.2.66"), own4()),
        FrameSpec::new(src4(), ip("192.0.2.99")),
    ] {
        if let Some(Err(r)) = lab.judge(&frame(&spec, &a)) {
            seen.insert(r);
        }
    }
    let missing: Vec<_> = DropReason::ALL
        .iter()
        .filter(|r| **r != DropReason::PeersFull && !seen.contains(r))
        .collect();
    assert!(missing.is_empty(), "no case for {missing:?}");
}

/// xorshift64*: a small deterministic generator for the fuzz.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random and mutated frames: the verdict is always XDP_PASS, the counters
/// add up, a rejected frame changes no table, and `packet::receive` agrees.
fn fuzz(seed: u64, frames: usize) {
    let mut lab = Lab::new();
    lab.register(51, &v2_pass());
    lab.register(52, &v3(Family::V4));
    lab.register(53, &v3(Family::V6));
    lab.register(54, &unicast_v2(true, vec![src4()]));
    let mut unicast = advert_v2(54, 100);
    unicast.auth = Auth::None;
    let seeds: Vec<Vec<u8>> = vec![
        frame(&FrameSpec::multicast(src4()), &advert_v2(51, 100)),
        frame(
            &FrameSpec::multicast(src4()),
            &advert_v3(52, 100, vec![vip4()]),
        ),
        frame(
            &FrameSpec::multicast(src6()),
            &advert_v3(53, 100, vec![ip("2001:db8::1"), ip("2001:db8::2")]),
        ),
        frame(&FrameSpec::new(src4(), own4()), &unicast),
        {
            let mut s = FrameSpec::multicast(src4());
            s.ipv4_options = vec![0x94, 0x04, 0, 0];
            s.trailer = vec![0xab; 28];
            frame(&s, &advert_v2(51, 100))
        },
    ];
    let mut rng = Rng(seed | 1);
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..frames {
        let mut f = seeds[rng.below(seeds.len())].clone();
        match rng.below(10) {
            // A few random bytes anywhere (IP header, VRRP header, addresses, auth).
            0..=3 => {
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(f.len());
                    f[at] = rng.next() as u8;
                }
            }
            // One byte of the IP or VRRP header, then the IPv4 checksum fixed,
            // so the mutation reaches the later checks.
            4..=6 => {
                let at = 14 + rng.below(f.len().min(80) - 14);
                f[at] = rng.next() as u8;
                if f[12..14] == [0x08, 0x00] {
                    fix_ip_checksum(&mut f);
                }
            }
            // Cut or padded.
            7 => f.truncate(14 + rng.below(f.len() - 14)),
            8 => f.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
            // Pure noise behind a VRRP-looking IP header.
            _ => {
                let len = 14 + rng.below(200);
                f.truncate(len.min(f.len()));
                let keep = 14 + 10;
                for b in f.iter_mut().skip(keep) {
                    *b = rng.next() as u8;
                }
            }
        }
        if f.len() < 14 {
            continue;
        }
        let what = match lab.judge(&f) {
            None => "not counted".to_owned(),
            Some(Ok(())) => "accepted".to_owned(),
            Some(Err(r)) => r.counter_name().to_owned(),
        };
        *tally.entry(what).or_default() += 1;
        if i % 1000 == 999 {
            let c = lab.counters();
            assert_eq!(c.vrrp_packets, c.accepted + c.total_drops(), "{c:?}");
        }
    }
    println!("fuzz seed {seed:#x}: {tally:?}");
    assert!(
        tally.len() > 8,
        "the fuzz reached too few outcomes: {tally:?}"
    );
}

#[test]
fn fuzz_with_a_fixed_seed() {
    tests::require_root!();
    fuzz(0x5eed_0001_c0ff_ee00, 6000);
}

#[test]
fn fuzz_with_a_random_seed() {
    tests::require_root!();
    let seed = Mono::now().as_nanos() ^ u64::from(std::process::id()) << 32;
    println!("random fuzz seed {seed:#x} (rerun: fuzz({seed:#x}, 6000))");
    fuzz(seed, 6000);
}

#[test]
fn maps_are_pinned_for_bpftool_and_removed_with_the_recorder() {
    tests::require_root!();
    let mut lab = Lab::with(51, &v2_pass());
    lab.run(&frame(&FrameSpec::multicast(src4()), &advert_v2(51, 150)));
    let dir = lab.rec.pin_dir().to_owned();
    for name in ["INSTANCES", "PEERS", "SOURCES", "COUNTERS", "EVENTS"] {
        assert!(
            dir.join(name).exists(),
            "{name} pinned in {}",
            dir.display()
        );
    }
    let dump = |map: &str, extra: &[&str]| {
        let out = std::process::Command::new("bpftool")
            .args(["-j", "map"])
            .args(extra)
            .arg("pinned")
            .arg(dir.join(map))
            .args(if extra == ["lookup"] {
                &["key", "0", "0", "0", "0"][..]
            } else {
                &[][..]
            })
            .output()
            .expect("bpftool (installed by cargo xtask setup)");
        assert!(
            out.status.success(),
            "bpftool map {extra:?} {map}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let counters = dump("COUNTERS", &["dump"]);
    for name in COUNTER_NAMES {
        assert!(
            counters.contains(name),
            "{name} in bpftool output: {counters}"
        );
    }
    let instances = dump("INSTANCES", &["dump"]);
    assert!(
        instances.contains("\"table\"") && instances.contains("\"group\""),
        "{instances}"
    );
    let table = dump("PEERS", &["lookup"]);
    assert!(
        table.contains("\"slots\"")
            && table.contains("\"priority\":150")
            && table.contains("\"last_ns\""),
        "{}",
        &table[table.len().saturating_sub(3000)..]
    );
    let rec = lab.rec;
    drop(rec);
    assert!(!dir.exists(), "pins removed with the recorder");
}
