//! Types shared by the XDP recorder (`vrrp-ebpf`) and the daemon (`vrrp-user`).
//!
//! Every map key and value is `#[repr(C)]` with explicit padding so the kernel
//! and userspace agree on the layout, and so BTF shows named fields in
//! `bpftool map dump`. Changing any layout here must bump [`MAP_LAYOUT_VERSION`]:
//! pinned maps are reused by name and the kernel does not check their layout.
#![no_std]

/// Bumped on every layout change of a map key or value; part of the pin path.
pub const MAP_LAYOUT_VERSION: u32 = 3;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// EtherTypes the recorder and the GARP/NA sender use.
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
/// Priority of the address owner: it is master at once and ignores weights.
pub const PRIORITY_OWNER: u8 = 255;
/// Priority of the advert a master sends when it stops (RFC 3768 §6.4.3).
pub const PRIORITY_STOP: u8 = 0;
/// TTL / hop limit of adverts; multicast adverts with another are dropped.
pub const VRRP_TTL: u8 = 255;

/// Address families as stored in keys (the kernel's AF_* values).
pub const FAMILY_IPV4: u8 = 2;
pub const FAMILY_IPV6: u8 = 10;

/// Map names as the XDP object declares them (also their pin file names).
pub const MAP_INSTANCES: &str = "INSTANCES";
pub const MAP_PEERS: &str = "PEERS";
pub const MAP_SOURCES: &str = "SOURCES";
pub const MAP_COUNTERS: &str = "COUNTERS";
pub const MAP_EVENTS: &str = "EVENTS";
/// One u64, bumped by userspace after every change to INSTANCES: the XDP
/// program's per-CPU copies of instance configurations are valid while it
/// stays the same. Belongs to one loaded program; not pinned.
pub const MAP_CONFIG_GEN: &str = "CONFIG_GEN";
/// Name of the XDP program in the object.
pub const PROGRAM_NAME: &str = "vrrp_rx";
/// The empty XDP_PASS program shipped in the same object as a benchmark baseline.
pub const BASELINE_PROGRAM_NAME: &str = "xdp_pass_baseline";

/// Instances the kernel can hold (INSTANCES entries, PEERS tables).
pub const MAX_INSTANCES: u32 = 1024;
/// Allowed unicast sources over all instances.
pub const MAX_SOURCES: u32 = 4096;
/// Bytes in the event ring buffer (a power of two multiple of the page size).
pub const EVENTS_RING_BYTES: u32 = 64 * 1024;

/// Longest VRRP PDU the kernel checksums: header + 255 IPv6 addresses.
/// Longer claims are counted as `bad_length`.
pub const MAX_PDU_BYTES: usize = 8 + 255 * 16;

/// Peer slots per instance. Real segments have a handful of VRRP routers;
/// the rest of the table is room for junk to evict junk (see [`PeerTable`]).
pub const PEER_SLOTS: usize = 16;

/// A peer not heard for this many of its advert intervals is stale: its
/// slot is free for another source and userspace no longer reports it.
/// Three Master_Down_Intervals, each at most 4 intervals (3 + a skew below one).
pub const STALE_ADVERT_INTERVALS: u64 = 12;

/// Event budget per instance: at most [`EVENT_BURST`] events per
/// [`EVENT_WINDOW_NS`]; the rest are counted and summed up in the next
/// event that goes out, so a flood of new sources cannot fill the ring or
/// wake userspace for every packet. Legitimate traffic (a master woken for
/// every advert of a peer at 10 ms) stays far below it.
pub const EVENT_BURST: u32 = 32;
pub const EVENT_WINDOW_NS: u64 = 100_000_000;

/// Own addresses an instance can list (see [`InstanceConfig::local`]).
pub const MAX_LOCAL_ADDRS: usize = 8;

/// Nanoseconds after the last advert at which a peer advertising every
/// `interval_cs` centiseconds is stale. An interval of 0 (which no valid
/// advert carries) makes any age stale.
pub const fn stale_after_ns(interval_cs: u16) -> u64 {
    interval_cs as u64 * 10_000_000 * STALE_ADVERT_INTERVALS
}

/// Which instance an advert belongs to: the receiving interface, the family
/// and the VRID. Userspace registers one entry per configured instance.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InstanceKey {
    pub ifindex: u32,
    pub family: u8,
    pub vrid: u8,
    pub _pad: [u8; 2],
}

impl InstanceKey {
    pub const fn new(ifindex: u32, family: u8, vrid: u8) -> Self {
        Self {
            ifindex,
            family,
            vrid,
            _pad: [0; 2],
        }
    }
}

/// Flags of [`InstanceConfig::flags`].
pub mod instance_flags {
    /// v3 over IPv4: checksum without the pseudo-header (keepalived's `v3_checksum_as_v2`).
    pub const CHECKSUM_AS_V2: u8 = 1 << 0;
    /// The instance is unicast: multicast adverts are dropped, and vice versa.
    pub const UNICAST: u8 = 1 << 1;
    /// Drop unicast adverts whose source is not in the SOURCES map.
    pub const CHECK_UNICAST_SRC: u8 = 1 << 2;
    /// We are master: every accepted advert is significant and wakes userspace.
    pub const WAKE_ON_ANY: u8 = 1 << 3;
    /// [`InstanceConfig::master`](super::InstanceConfig::master) holds the
    /// current master's address: its record is never evicted.
    pub const MASTER_KNOWN: u8 = 1 << 4;
    /// IPv6 multicast adverts must come from a link-local address, as
    /// RFC 5798 §5.1.2.1 has them sent.
    pub const LINK_LOCAL_SOURCE: u8 = 1 << 5;
}

/// What the kernel needs to accept or drop an advert for one instance.
/// Written by userspace only (the kernel never writes it, so rewriting it
/// loses nothing the kernel recorded). Addresses are 16 bytes, IPv4 in the
/// first 4 and the rest zero, as in [`PeerKey::addr`].
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceConfig {
    /// 2 or 3.
    pub version: u8,
    /// [`instance_flags`].
    pub flags: u8,
    /// v2 only: 0 none, 1 PASS. Adverts with another auth type are dropped.
    pub auth_type: u8,
    /// v2 only: our advert interval in seconds; adverts with another are dropped.
    pub v2_interval_s: u8,
    /// Index of the instance's [`PeerTable`] in PEERS. Assigned by the map
    /// owner when the instance is registered.
    pub table: u32,
    /// v2 PASS password, zero padded.
    pub auth_data: [u8; 8],
    /// Valid entries in `local`.
    pub local_count: u8,
    /// Bumped by the map owner on every change of this configuration or of
    /// the instance's SOURCES entries. A recorded peer whose source checks
    /// (martian, own, link-local, listed) ran under another generation is
    /// checked again; under this one they are skipped for its adverts.
    pub generation: u8,
    pub _pad: [u8; 6],
    /// Multicast instances: the group adverts must be sent to.
    pub group: [u8; 16],
    /// Our own addresses on the instance's interface: a unicast advert must
    /// be addressed to one, and an advert from one is dropped (ours,
    /// reflected, or forged), as the kernel drops such a martian source.
    pub local: [[u8; 16]; MAX_LOCAL_ADDRS],
    /// The current master, with [`instance_flags::MASTER_KNOWN`].
    pub master: [u8; 16],
}

/// One peer of one instance, as the kernel saw it: the instance key plus the
/// advert's source address (IPv4 in the first 4 bytes, rest zero).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PeerKey {
    pub ifindex: u32,
    pub family: u8,
    pub vrid: u8,
    pub _pad: [u8; 2],
    pub addr: [u8; 16],
}

impl PeerKey {
    /// The key of a stored address as a peer of `instance`.
    pub const fn in_instance(instance: InstanceKey, addr: [u8; 16]) -> Self {
        Self {
            ifindex: instance.ifindex,
            family: instance.family,
            vrid: instance.vrid,
            _pad: [0; 2],
            addr,
        }
    }

    pub const fn instance(&self) -> InstanceKey {
        InstanceKey::new(self.ifindex, self.family, self.vrid)
    }
}

/// Flags of [`PeerRecord::flags`].
pub mod peer_flags {
    /// The source is a configured unicast peer (in SOURCES): never evicted.
    pub const LISTED: u8 = 1 << 0;
    /// `last_ns` was read from CLOCK_MONOTONIC_COARSE: the advert arrived
    /// up to one tick (`clock_getres(CLOCK_MONOTONIC_COARSE)`, 4 ms at
    /// HZ=250) after it. See [`PRECISE_CLOCK_BELOW_CS`](super::PRECISE_CLOCK_BELOW_CS).
    pub const COARSE_TIME: u8 = 1 << 1;
}

/// Adverts with an interval below this (in centiseconds) are stamped with
/// the precise clock (`bpf_ktime_get_ns`, ~30 ns here); slower ones with
/// the coarse one (~3 ns), whose tick is under 1/250 of their interval.
/// Both are CLOCK_MONOTONIC; the coarse one lags by less than a tick.
pub const PRECISE_CLOCK_BELOW_CS: u16 = 100;

/// The latest accepted advert of one peer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerRecord {
    /// Arrival of the latest advert, CLOCK_MONOTONIC (see
    /// [`peer_flags::COARSE_TIME`]); strictly increasing per peer; 0 marks a free slot.
    pub last_ns: u64,
    /// Arrival of the first advert recorded for this peer.
    pub first_ns: u64,
    /// Accepted adverts from this peer.
    pub adverts: u64,
    /// Arrival of the last advert at the priority before the current one
    /// (0 until the priority first changes). A backup that reads the record
    /// only after a drop to a lower priority still learns when the master
    /// was last heard at its old priority, so its down timer counts from
    /// there and not from some older advert it happened to read.
    pub prev_last_ns: u64,
    /// Advertised interval in centiseconds (v2 seconds × 100).
    pub interval_cs: u16,
    pub priority: u8,
    pub version: u8,
    /// Count of addresses the advert carried.
    pub addr_count: u8,
    /// v2 auth type as received (0 for v3).
    pub auth_type: u8,
    /// TTL / hop limit as received.
    pub ttl: u8,
    /// 1 if the advert was sent to a multicast group.
    pub multicast: u8,
    /// v2 auth data as received (zero for v3).
    pub auth_data: [u8; 8],
    /// The priority before the current one.
    pub prev_priority: u8,
    /// [`peer_flags`].
    pub flags: u8,
    /// [`InstanceConfig::generation`] when the source was last checked.
    pub checked_gen: u8,
    pub _pad: [u8; 5],
}

impl PeerRecord {
    /// Whether the slot holds a peer at all.
    pub const fn in_use(&self) -> bool {
        self.last_ns != 0
    }

    /// Not heard for [`STALE_ADVERT_INTERVALS`] of its own intervals at `now_ns`.
    pub const fn is_stale(&self, now_ns: u64) -> bool {
        now_ns.saturating_sub(self.last_ns) > stale_after_ns(self.interval_cs)
    }
}

/// One slot of a [`PeerTable`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerSlot {
    /// The peer's address (as [`PeerKey::addr`]); meaningful while the record is in use.
    pub addr: [u8; 16],
    pub record: PeerRecord,
}

/// The recent peers of one instance: PEERS\[[`InstanceConfig::table`]\].
///
/// Written by the kernel only (userspace zeroes it when the instance is
/// registered or removed). A fixed array, so one lookup serves every peer
/// of an instance, and so a flood for one instance can only ever touch its
/// own table. A new source takes a free slot, else a stale one, else evicts
/// a victim: never a LISTED peer, never the master userspace named, never the
/// highest-priority peer (ties: the one heard more often, then the older);
/// among the rest, peers heard only once go first, the least recently heard
/// first. So a flood of one-shot junk sources evicts only junk.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerTable {
    /// Slot of the latest matched advert; most adverts come from the master,
    /// so the next one is looked for there first.
    pub hint: u32,
    /// Events left in the current window ([`EVENT_BURST`]).
    pub event_tokens: u32,
    /// Start of the current event window.
    pub event_window_ns: u64,
    /// Events suppressed since the last one that went out.
    pub events_pending: u32,
    pub _pad: u32,
    /// Peers evicted to make room for a new source.
    pub evicted: u64,
    /// Stale peers whose slot was taken by a new source.
    pub expired: u64,
    /// Events suppressed by the budget, in total.
    pub events_suppressed: u64,
    pub slots: [PeerSlot; PEER_SLOTS],
}

impl Default for PeerTable {
    fn default() -> Self {
        Self {
            hint: 0,
            event_tokens: 0,
            event_window_ns: 0,
            events_pending: 0,
            _pad: 0,
            evicted: 0,
            expired: 0,
            events_suppressed: 0,
            slots: [PeerSlot::default(); PEER_SLOTS],
        }
    }
}

/// Why an event was queued to userspace.
pub mod event_kind {
    pub const NEW_PEER: u8 = 1;
    pub const PRIORITY_CHANGED: u8 = 2;
    pub const PRIORITY_ZERO: u8 = 3;
    pub const INTERVAL_CHANGED: u8 = 4;
    pub const WHILE_MASTER: u8 = 5;
    /// A routine advert, sent only because earlier events of the instance
    /// were suppressed ([`PeerEvent::suppressed`]): read its table.
    pub const CATCH_UP: u8 = 6;
}

/// A significant advert, queued in the EVENTS ring buffer so userspace wakes at once.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerEvent {
    pub key: PeerKey,
    pub arrived_ns: u64,
    /// [`event_kind`].
    pub kind: u8,
    pub priority: u8,
    pub previous_priority: u8,
    pub _pad: u8,
    pub interval_cs: u16,
    pub _pad2: [u8; 2],
    /// Events of this instance suppressed by the budget since the previous
    /// one went out; userspace should read the whole table when non-zero.
    pub suppressed: u32,
    pub _pad3: u32,
}

/// Why the recorder dropped an advert: one counter each in [`Counters`]
/// (same name). The XDP program and `packet::receive` in the daemon agree on
/// these, in this order of checks.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Header or PDU shorter than it must be, or the IP length beyond the frame.
    Truncated,
    /// IP version nibble not matching the EtherType, IPv4 IHL below 5 or
    /// beyond the frame, or a total length below the IHL.
    BadIpHeader,
    /// IPv4 header checksum wrong.
    BadIpChecksum,
    /// IPv4 fragment (VRRP is never fragmented).
    Fragment,
    /// VRRP version not 2/3, or not the instance's.
    BadVersion,
    /// VRRP type other than 1 (advertisement).
    BadType,
    /// No instance registered for (interface, family, VRID).
    UnknownVrid,
    /// Multicast advert for a unicast instance or the reverse.
    ModeMismatch,
    /// Multicast advert to another group than the instance's, or unicast
    /// advert to an address that is not ours.
    WrongDestination,
    /// Source a host never sends from: 0.0.0.0/8, 127/8, multicast,
    /// 255.255.255.255; ::, ::1, ff00::/8.
    MartianSource,
    /// Source is one of our own addresses.
    OwnSource,
    /// Multicast advert whose TTL / hop limit is not 255.
    BadTtl,
    /// IPv6 multicast advert from a source that is not link-local.
    NotLinkLocal,
    /// Address count inconsistent with the PDU length, or PDU too long.
    BadLength,
    /// VRRP checksum wrong.
    BadChecksum,
    /// v2 advert interval differs from the instance's; an interval of 0.
    IntervalMismatch,
    /// v2 auth type or PASS password differs from the instance's.
    AuthMismatch,
    /// Unicast source not among the instance's peers.
    UnlistedSource,
    /// Every slot of the instance's table is protected: the advert was
    /// valid but could not be recorded.
    PeersFull,
}

impl DropReason {
    pub const ALL: [DropReason; 19] = [
        DropReason::Truncated,
        DropReason::BadIpHeader,
        DropReason::BadIpChecksum,
        DropReason::Fragment,
        DropReason::BadVersion,
        DropReason::BadType,
        DropReason::UnknownVrid,
        DropReason::ModeMismatch,
        DropReason::WrongDestination,
        DropReason::MartianSource,
        DropReason::OwnSource,
        DropReason::BadTtl,
        DropReason::NotLinkLocal,
        DropReason::BadLength,
        DropReason::BadChecksum,
        DropReason::IntervalMismatch,
        DropReason::AuthMismatch,
        DropReason::UnlistedSource,
        DropReason::PeersFull,
    ];

    /// The name of its counter in [`Counters`].
    pub const fn counter_name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadIpHeader => "bad_ip_header",
            DropReason::BadIpChecksum => "bad_ip_checksum",
            DropReason::Fragment => "fragment",
            DropReason::BadVersion => "bad_version",
            DropReason::BadType => "bad_type",
            DropReason::UnknownVrid => "unknown_vrid",
            DropReason::ModeMismatch => "mode_mismatch",
            DropReason::WrongDestination => "wrong_destination",
            DropReason::MartianSource => "martian_source",
            DropReason::OwnSource => "own_source",
            DropReason::BadTtl => "bad_ttl",
            DropReason::NotLinkLocal => "not_link_local",
            DropReason::BadLength => "bad_length",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::IntervalMismatch => "interval_mismatch",
            DropReason::AuthMismatch => "auth_mismatch",
            DropReason::UnlistedSource => "unlisted_source",
            DropReason::PeersFull => "peers_full",
        }
    }
}

/// Per-CPU counters; one entry (index 0) of a per-CPU array. Only protocol-112
/// packets are counted so other traffic pays nothing but the parse.
/// `vrrp_packets` = `accepted` + the sum of the drop counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames with IP protocol 112 (IPv4 or IPv6).
    pub vrrp_packets: u64,
    /// Adverts accepted and recorded.
    pub accepted: u64,
    // Drops, one per DropReason, in its order.
    pub truncated: u64,
    pub bad_ip_header: u64,
    pub bad_ip_checksum: u64,
    pub fragment: u64,
    pub bad_version: u64,
    pub bad_type: u64,
    pub unknown_vrid: u64,
    pub mode_mismatch: u64,
    pub wrong_destination: u64,
    pub martian_source: u64,
    pub own_source: u64,
    pub bad_ttl: u64,
    pub not_link_local: u64,
    pub bad_length: u64,
    pub bad_checksum: u64,
    pub interval_mismatch: u64,
    pub auth_mismatch: u64,
    pub unlisted_source: u64,
    pub peers_full: u64,
    // What happened to accepted adverts.
    /// Recorded peers evicted to make room for a new source.
    pub peers_evicted: u64,
    /// Stale peers whose slot a new source took.
    pub peers_expired: u64,
    /// Events held back by the per-instance budget (the record was updated).
    pub events_suppressed: u64,
    /// EVENTS ring buffer full: the record was updated but userspace was not woken.
    pub events_lost: u64,
}

/// Field names of [`Counters`] in order, for display.
pub const COUNTER_NAMES: [&str; COUNTER_COUNT] = [
    "vrrp_packets",
    "accepted",
    "truncated",
    "bad_ip_header",
    "bad_ip_checksum",
    "fragment",
    "bad_version",
    "bad_type",
    "unknown_vrid",
    "mode_mismatch",
    "wrong_destination",
    "martian_source",
    "own_source",
    "bad_ttl",
    "not_link_local",
    "bad_length",
    "bad_checksum",
    "interval_mismatch",
    "auth_mismatch",
    "unlisted_source",
    "peers_full",
    "peers_evicted",
    "peers_expired",
    "events_suppressed",
    "events_lost",
];
pub const COUNTER_COUNT: usize = 25;

impl Counters {
    /// The counter of one drop reason.
    #[inline(always)]
    pub fn drop_mut(&mut self, reason: DropReason) -> &mut u64 {
        match reason {
            DropReason::Truncated => &mut self.truncated,
            DropReason::BadIpHeader => &mut self.bad_ip_header,
            DropReason::BadIpChecksum => &mut self.bad_ip_checksum,
            DropReason::Fragment => &mut self.fragment,
            DropReason::BadVersion => &mut self.bad_version,
            DropReason::BadType => &mut self.bad_type,
            DropReason::UnknownVrid => &mut self.unknown_vrid,
            DropReason::ModeMismatch => &mut self.mode_mismatch,
            DropReason::WrongDestination => &mut self.wrong_destination,
            DropReason::MartianSource => &mut self.martian_source,
            DropReason::OwnSource => &mut self.own_source,
            DropReason::BadTtl => &mut self.bad_ttl,
            DropReason::NotLinkLocal => &mut self.not_link_local,
            DropReason::BadLength => &mut self.bad_length,
            DropReason::BadChecksum => &mut self.bad_checksum,
            DropReason::IntervalMismatch => &mut self.interval_mismatch,
            DropReason::AuthMismatch => &mut self.auth_mismatch,
            DropReason::UnlistedSource => &mut self.unlisted_source,
            DropReason::PeersFull => &mut self.peers_full,
        }
    }

    /// The counter of one drop reason.
    pub fn drops(&self, reason: DropReason) -> u64 {
        let mut copy = *self;
        *copy.drop_mut(reason)
    }

    /// All drops together.
    pub fn total_drops(&self) -> u64 {
        let mut total = 0;
        let mut i = 0;
        while i < DropReason::ALL.len() {
            total += self.drops(DropReason::ALL[i]);
            i += 1;
        }
        total
    }

    /// The counters in [`COUNTER_NAMES`] order.
    pub const fn as_array(&self) -> [u64; COUNTER_COUNT] {
        let Counters {
            vrrp_packets,
            accepted,
            truncated,
            bad_ip_header,
            bad_ip_checksum,
            fragment,
            bad_version,
            bad_type,
            unknown_vrid,
            mode_mismatch,
            wrong_destination,
            martian_source,
            own_source,
            bad_ttl,
            not_link_local,
            bad_length,
            bad_checksum,
            interval_mismatch,
            auth_mismatch,
            unlisted_source,
            peers_full,
            peers_evicted,
            peers_expired,
            events_suppressed,
            events_lost,
        } = *self;
        [
            vrrp_packets,
            accepted,
            truncated,
            bad_ip_header,
            bad_ip_checksum,
            fragment,
            bad_version,
            bad_type,
            unknown_vrid,
            mode_mismatch,
            wrong_destination,
            martian_source,
            own_source,
            bad_ttl,
            not_link_local,
            bad_length,
            bad_checksum,
            interval_mismatch,
            auth_mismatch,
            unlisted_source,
            peers_full,
            peers_evicted,
            peers_expired,
            events_suppressed,
            events_lost,
        ]
    }

    /// Adds another CPU's counters to these.
    pub fn accumulate(&mut self, other: &Counters) {
        let mut mine = self.as_array();
        let theirs = other.as_array();
        let mut i = 0;
        while i < COUNTER_COUNT {
            mine[i] += theirs[i];
            i += 1;
        }
        *self = Counters::from_array(mine);
    }

    /// The inverse of [`Counters::as_array`].
    pub const fn from_array(a: [u64; COUNTER_COUNT]) -> Self {
        let [vrrp_packets, accepted, truncated, bad_ip_header, bad_ip_checksum, fragment, bad_version, bad_type, unknown_vrid, mode_mismatch, wrong_destination, martian_source, own_source, bad_ttl, not_link_local, bad_length, bad_checksum, interval_mismatch, auth_mismatch, unlisted_source, peers_full, peers_evicted, peers_expired, events_suppressed, events_lost] =
            a;
        Counters {
            vrrp_packets,
            accepted,
            truncated,
            bad_ip_header,
            bad_ip_checksum,
            fragment,
            bad_version,
            bad_type,
            unknown_vrid,
            mode_mismatch,
            wrong_destination,
            martian_source,
            own_source,
            bad_ttl,
            not_link_local,
            bad_length,
            bad_checksum,
            interval_mismatch,
            auth_mismatch,
            unlisted_source,
            peers_full,
            peers_evicted,
            peers_expired,
            events_suppressed,
            events_lost,
        }
    }
}

#[cfg(feature = "user")]
pub use user::{addr_bytes, addr_from_bytes, family_of};

#[cfg(feature = "user")]
mod user {
    use super::*;
    use core::net::IpAddr;

    /// An address as the maps store it: IPv4 in the first 4 bytes, rest zero.
    pub fn addr_bytes(addr: IpAddr) -> [u8; 16] {
        match addr {
            IpAddr::V4(a) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.octets());
                b
            }
            IpAddr::V6(a) => a.octets(),
        }
    }

    /// The inverse of [`addr_bytes`] for `family` (FAMILY_IPV4 or FAMILY_IPV6).
    pub fn addr_from_bytes(family: u8, b: &[u8; 16]) -> IpAddr {
        if family == FAMILY_IPV4 {
            IpAddr::from([b[0], b[1], b[2], b[3]])
        } else {
            IpAddr::from(*b)
        }
    }

    /// The map family of an address.
    pub fn family_of(addr: &IpAddr) -> u8 {
        match addr {
            IpAddr::V4(_) => FAMILY_IPV4,
            IpAddr::V6(_) => FAMILY_IPV6,
        }
    }

    impl PeerKey {
        /// The key of `source` as a peer of `instance`; `None` if the families differ.
        pub fn for_source(instance: InstanceKey, source: IpAddr) -> Option<Self> {
            if family_of(&source) != instance.family {
                return None;
            }
            Some(Self::in_instance(instance, addr_bytes(source)))
        }

        /// The peer's address, decoded by family.
        pub fn source(&self) -> IpAddr {
            addr_from_bytes(self.family, &self.addr)
        }
    }

    macro_rules! pod {
        ($($t:ty),*) => {$(
            // SAFETY: repr(C), only integer fields and explicit padding arrays, no implicit padding.
            unsafe impl bytemuck::Zeroable for $t {}
            unsafe impl bytemuck::Pod for $t {}
            unsafe impl aya::Pod for $t {}
        )*};
    }
    pod!(
        InstanceKey,
        InstanceConfig,
        PeerKey,
        PeerRecord,
        PeerSlot,
        PeerTable,
        PeerEvent,
        Counters
    );

    // Any implicit padding would make the Pod impls unsound; pin the sizes.
    const _: () = assert!(core::mem::size_of::<InstanceKey>() == 8);
    const _: () = assert!(core::mem::size_of::<InstanceConfig>() == 184);
    const _: () = assert!(core::mem::size_of::<PeerKey>() == 24);
    const _: () = assert!(core::mem::size_of::<PeerRecord>() == 56);
    const _: () = assert!(core::mem::size_of::<PeerSlot>() == 72);
    const _: () = assert!(core::mem::size_of::<PeerTable>() == 48 + 72 * PEER_SLOTS);
    const _: () = assert!(core::mem::size_of::<PeerEvent>() == 48);
    const _: () = assert!(core::mem::size_of::<Counters>() == COUNTER_COUNT * 8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_counters_follow_the_reasons_in_order() {
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(COUNTER_NAMES[2 + i], reason.counter_name());
            let mut c = Counters::default();
            *c.drop_mut(*reason) = 7;
            assert_eq!(c.as_array()[2 + i], 7, "{reason:?}");
            assert_eq!(c.total_drops(), 7);
        }
    }

    #[test]
    fn counters_round_trip_and_accumulate() {
        let mut a = [0u64; COUNTER_COUNT];
        for (i, v) in a.iter_mut().enumerate() {
            *v = i as u64 + 1;
        }
        let c = Counters::from_array(a);
        assert_eq!(c.as_array(), a);
        let mut sum = c;
        sum.accumulate(&c);
        assert_eq!(sum.vrrp_packets, 2);
        assert_eq!(sum.events_lost, 2 * COUNTER_COUNT as u64);
    }

    #[test]
    fn staleness_scales_with_the_interval() {
        let r = PeerRecord {
            last_ns: 1_000_000_000,
            interval_cs: 100,
            ..Default::default()
        };
        assert!(r.in_use());
        assert!(!r.is_stale(1_000_000_000 + 12_000_000_000));
        assert!(r.is_stale(1_000_000_000 + 12_000_000_001));
        assert!(!r.is_stale(0), "a clock behind the record is not staleness");
    }
}
