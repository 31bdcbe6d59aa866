//! Types shared by the XDP recorder (`vrrp-ebpf`) and the daemon (`vrrp-user`).
//!
//! Every map key and value is `#[repr(C)]` with explicit padding so the kernel
//! and userspace agree on the layout, and so BTF shows named fields in
//! `bpftool map dump`. Changing any layout here must bump [`MAP_LAYOUT_VERSION`]:
//! pinned maps are reused by name and the kernel does not check their layout.
#![no_std]

/// Bumped on every layout change of a map key or value; part of the pin path.
pub const MAP_LAYOUT_VERSION: u32 = 2;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;

/// Address families as stored in keys (the kernel's AF_* values).
pub const FAMILY_IPV4: u8 = 2;
pub const FAMILY_IPV6: u8 = 10;

/// Map names as the XDP object declares them (also their pin file names).
pub const MAP_INSTANCES: &str = "INSTANCES";
pub const MAP_PEERS: &str = "PEERS";
pub const MAP_SOURCES: &str = "SOURCES";
pub const MAP_COUNTERS: &str = "COUNTERS";
pub const MAP_EVENTS: &str = "EVENTS";
/// Name of the XDP program in the object.
pub const PROGRAM_NAME: &str = "vrrp_rx";
/// The empty XDP_PASS program shipped in the same object as a benchmark baseline.
pub const BASELINE_PROGRAM_NAME: &str = "xdp_pass_baseline";

pub const MAX_INSTANCES: u32 = 1024;
pub const MAX_PEERS: u32 = 4096;
pub const MAX_SOURCES: u32 = 4096;
/// Bytes in the event ring buffer (a power of two multiple of the page size).
pub const EVENTS_RING_BYTES: u32 = 64 * 1024;

/// Longest VRRP PDU the kernel checksums: header + 255 IPv6 addresses.
/// Longer claims are counted as `bad_length`.
pub const MAX_PDU_BYTES: usize = 8 + 255 * 16;

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
}

/// What the kernel needs to accept or drop an advert for one instance.
#[repr(C)]
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
    /// v2 PASS password, zero padded.
    pub auth_data: [u8; 8],
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
    pub const fn instance(&self) -> InstanceKey {
        InstanceKey::new(self.ifindex, self.family, self.vrid)
    }
}

/// The latest accepted advert of one peer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerRecord {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) of the latest advert.
    pub last_ns: u64,
    /// Arrival of the first advert recorded for this peer.
    pub first_ns: u64,
    /// Accepted adverts from this peer.
    pub adverts: u64,
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
    /// Arrival of the last advert at the priority before the current one
    /// (0 until the priority first changes). A backup that reads the record
    /// only after a drop to a lower priority still learns when the master
    /// was last heard at its old priority, so its down timer counts from
    /// there and not from some older advert it happened to read.
    pub prev_last_ns: u64,
    /// The priority before the current one.
    pub prev_priority: u8,
    pub _pad: [u8; 7],
}

/// Why an event was queued to userspace.
pub mod event_kind {
    pub const NEW_PEER: u8 = 1;
    pub const PRIORITY_CHANGED: u8 = 2;
    pub const PRIORITY_ZERO: u8 = 3;
    pub const INTERVAL_CHANGED: u8 = 4;
    pub const WHILE_MASTER: u8 = 5;
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
}

/// Per-CPU counters; one entry (index 0) of a per-CPU array. Only protocol-112
/// packets are counted so other traffic pays nothing but the parse.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames with IP protocol 112 (IPv4 or IPv6).
    pub vrrp_packets: u64,
    /// Adverts accepted and recorded.
    pub accepted: u64,
    /// Header or PDU shorter than it must be (IP or VRRP layer).
    pub truncated: u64,
    /// IPv4 fragments of protocol 112 (VRRP is never fragmented).
    pub fragment: u64,
    /// Multicast advert whose TTL / hop limit is not 255.
    pub bad_ttl: u64,
    /// VRRP version not 2/3, or not the instance's.
    pub bad_version: u64,
    /// VRRP type other than 1 (advertisement).
    pub bad_type: u64,
    /// Address count inconsistent with the PDU length, or PDU too long.
    pub bad_length: u64,
    pub bad_checksum: u64,
    /// No instance registered for (interface, family, VRID).
    pub unknown_vrid: u64,
    /// v2 auth type or PASS password differs from the instance's.
    pub auth_mismatch: u64,
    /// v2 advert interval differs from the instance's.
    pub interval_mismatch: u64,
    /// Multicast advert for a unicast instance or the reverse.
    pub mode_mismatch: u64,
    /// Unicast source not among the instance's peers.
    pub unlisted_source: u64,
    /// PEERS full: the advert was valid but could not be recorded.
    pub peers_full: u64,
    /// EVENTS ring buffer full: the record was updated but userspace was not woken.
    pub events_lost: u64,
}

/// Field names of [`Counters`] in order, for display.
pub const COUNTER_NAMES: [&str; 16] = [
    "vrrp_packets",
    "accepted",
    "truncated",
    "fragment",
    "bad_ttl",
    "bad_version",
    "bad_type",
    "bad_length",
    "bad_checksum",
    "unknown_vrid",
    "auth_mismatch",
    "interval_mismatch",
    "mode_mismatch",
    "unlisted_source",
    "peers_full",
    "events_lost",
];

impl Counters {
    /// The counters in [`COUNTER_NAMES`] order.
    pub const fn as_array(&self) -> [u64; 16] {
        [
            self.vrrp_packets,
            self.accepted,
            self.truncated,
            self.fragment,
            self.bad_ttl,
            self.bad_version,
            self.bad_type,
            self.bad_length,
            self.bad_checksum,
            self.unknown_vrid,
            self.auth_mismatch,
            self.interval_mismatch,
            self.mode_mismatch,
            self.unlisted_source,
            self.peers_full,
            self.events_lost,
        ]
    }

    /// Adds another CPU's counters to these.
    pub fn accumulate(&mut self, other: &Counters) {
        let Counters {
            vrrp_packets,
            accepted,
            truncated,
            fragment,
            bad_ttl,
            bad_version,
            bad_type,
            bad_length,
            bad_checksum,
            unknown_vrid,
            auth_mismatch,
            interval_mismatch,
            mode_mismatch,
            unlisted_source,
            peers_full,
            events_lost,
        } = other;
        self.vrrp_packets += vrrp_packets;
        self.accepted += accepted;
        self.truncated += truncated;
        self.fragment += fragment;
        self.bad_ttl += bad_ttl;
        self.bad_version += bad_version;
        self.bad_type += bad_type;
        self.bad_length += bad_length;
        self.bad_checksum += bad_checksum;
        self.unknown_vrid += unknown_vrid;
        self.auth_mismatch += auth_mismatch;
        self.interval_mismatch += interval_mismatch;
        self.mode_mismatch += mode_mismatch;
        self.unlisted_source += unlisted_source;
        self.peers_full += peers_full;
        self.events_lost += events_lost;
    }
}

#[cfg(feature = "user")]
mod user {
    use super::*;
    use core::net::IpAddr;

    impl PeerKey {
        /// The key of `source` as a peer of `instance`; `None` if the families differ.
        pub fn for_source(instance: InstanceKey, source: IpAddr) -> Option<Self> {
            let mut addr = [0u8; 16];
            match (source, instance.family) {
                (IpAddr::V4(a), FAMILY_IPV4) => addr[..4].copy_from_slice(&a.octets()),
                (IpAddr::V6(a), FAMILY_IPV6) => addr = a.octets(),
                _ => return None,
            }
            Some(Self {
                ifindex: instance.ifindex,
                family: instance.family,
                vrid: instance.vrid,
                _pad: [0; 2],
                addr,
            })
        }

        /// The peer's address, decoded by family.
        pub fn source(&self) -> IpAddr {
            if self.family == FAMILY_IPV4 {
                IpAddr::from([self.addr[0], self.addr[1], self.addr[2], self.addr[3]])
            } else {
                IpAddr::from(self.addr)
            }
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
        PeerEvent,
        Counters
    );

    // Any implicit padding would make the Pod impls unsound; pin the sizes.
    const _: () = assert!(core::mem::size_of::<InstanceKey>() == 8);
    const _: () = assert!(core::mem::size_of::<InstanceConfig>() == 12);
    const _: () = assert!(core::mem::size_of::<PeerKey>() == 24);
    const _: () = assert!(core::mem::size_of::<PeerRecord>() == 56);
    const _: () = assert!(core::mem::size_of::<PeerEvent>() == 40);
    const _: () = assert!(core::mem::size_of::<Counters>() == 16 * 8);
}
