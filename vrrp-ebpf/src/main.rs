//! `vrrp_rx`: the XDP advert recorder.
//!
//! Parses Ethernet → IPv4/IPv6 → protocol 112 → VRRP, applies the cheap
//! receive checks of RFC 3768/5798 (as keepalived applies them) and records
//! each accepted advert in PEERS with its kernel arrival time. Only
//! significant changes go to the EVENTS ring buffer. The verdict is always
//! XDP_PASS: the stack still sees every packet; we only watch.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{xdp_action, BPF_NOEXIST},
    btf_maps::{HashMap, PerCpuArray, RingBuf},
    helpers::{bpf_ktime_get_ns, bpf_xdp_load_bytes},
    macros::{btf_map, xdp},
    programs::XdpContext,
};
use vrrp_common::{
    event_kind, instance_flags, Counters, InstanceConfig, InstanceKey, PeerEvent, PeerKey,
    PeerRecord, EVENTS_RING_BYTES, FAMILY_IPV4, FAMILY_IPV6, IPPROTO_VRRP, MAX_INSTANCES,
    MAX_PDU_BYTES, MAX_PEERS, MAX_SOURCES,
};

#[btf_map]
static INSTANCES: HashMap<InstanceKey, InstanceConfig, { MAX_INSTANCES as usize }> = HashMap::new();

#[btf_map]
static PEERS: HashMap<PeerKey, PeerRecord, { MAX_PEERS as usize }> = HashMap::new();

/// Allowed unicast sources (value unused) for instances with CHECK_UNICAST_SRC.
#[btf_map]
static SOURCES: HashMap<PeerKey, u8, { MAX_SOURCES as usize }> = HashMap::new();

#[btf_map]
static COUNTERS: PerCpuArray<Counters, 1> = PerCpuArray::new();

/// Per-CPU working set of one packet. Kept in a map rather than on the stack:
/// BPF frames are limited to 512 bytes, and variable-offset reads (auth data,
/// checksum words) from `pdu` are checked by the verifier by value range,
/// where the same reads from packet memory are defeated by LLVM's rewriting
/// of bounds checks.
#[btf_map]
static SCRATCH: PerCpuArray<Scratch, 1> = PerCpuArray::new();

#[repr(C)]
pub struct Scratch {
    /// The advert's peer key; `addr` is the IP source.
    peer: PeerKey,
    /// The record the advert produces.
    seen: PeerRecord,
    /// IP destination (IPv4 in the first 4 bytes).
    dst: [u8; 16],
    ip: IpInfo,
    /// Copy of the VRRP PDU (bpf_xdp_load_bytes).
    pdu: [u8; PDU_BUF],
}

/// Power of two ≥ MAX_PDU_BYTES, so offsets can be masked into range.
const PDU_BUF: usize = 4096;
const _: () = assert!(PDU_BUF >= MAX_PDU_BYTES && PDU_BUF.is_power_of_two());

#[btf_map]
static EVENTS: RingBuf<PeerEvent, { EVENTS_RING_BYTES as usize }> = RingBuf::new();

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const IPV6_HLEN: usize = 40;
const VRRP_HLEN: usize = 8;
const V2_AUTH_LEN: usize = 8;

#[xdp]
pub fn vrrp_rx(ctx: XdpContext) -> u32 {
    // Everything that is not protocol 112 leaves after two loads and compares.
    if is_vrrp(&ctx) {
        record(&ctx);
    }
    xdp_action::XDP_PASS
}

#[inline(always)]
fn is_vrrp(ctx: &XdpContext) -> bool {
    let (start, end) = (ctx.data(), ctx.data_end());
    match bytes::<2>(start, end, 12).map(be16) {
        Some(ETH_P_IP) => bytes::<1>(start, end, ETH_HLEN + 9) == Some([IPPROTO_VRRP]),
        Some(ETH_P_IPV6) => bytes::<1>(start, end, ETH_HLEN + 6) == Some([IPPROTO_VRRP]),
        _ => false,
    }
}

/// An empty XDP_PASS program in the same object: the baseline the benchmark
/// measures `vrrp_rx` against. Never attached.
#[xdp]
pub fn xdp_pass_baseline(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// Why an advert was not recorded; each maps to one counter.
#[derive(Clone, Copy)]
enum Drop {
    /// Not protocol 112 (or too short to tell): not counted at all.
    NotVrrp,
    Truncated,
    Fragment,
    BadTtl,
    BadVersion,
    BadType,
    BadLength,
    BadChecksum,
    UnknownVrid,
    AuthMismatch,
    IntervalMismatch,
    ModeMismatch,
    UnlistedSource,
    PeersFull,
}

#[inline(always)]
fn record(ctx: &XdpContext) {
    // SAFETY: per-CPU slots, written only by this program on this CPU.
    let Some(c) = COUNTERS.get_ptr_mut(0).map(|p| unsafe { &mut *p }) else {
        return;
    };
    let Some(scratch) = SCRATCH.get_ptr_mut(0).map(|p| unsafe { &mut *p }) else {
        return;
    };
    c.vrrp_packets += 1;
    let counter = match parse_and_record(ctx, scratch, c) {
        Ok(()) | Err(Drop::NotVrrp) => return,
        Err(Drop::Truncated) => &mut c.truncated,
        Err(Drop::Fragment) => &mut c.fragment,
        Err(Drop::BadTtl) => &mut c.bad_ttl,
        Err(Drop::BadVersion) => &mut c.bad_version,
        Err(Drop::BadType) => &mut c.bad_type,
        Err(Drop::BadLength) => &mut c.bad_length,
        Err(Drop::BadChecksum) => &mut c.bad_checksum,
        Err(Drop::UnknownVrid) => &mut c.unknown_vrid,
        Err(Drop::AuthMismatch) => &mut c.auth_mismatch,
        Err(Drop::IntervalMismatch) => &mut c.interval_mismatch,
        Err(Drop::ModeMismatch) => &mut c.mode_mismatch,
        Err(Drop::UnlistedSource) => &mut c.unlisted_source,
        Err(Drop::PeersFull) => &mut c.peers_full,
    };
    *counter += 1;
}

/// Reads `N` bytes at `offset` if they are inside the packet.
#[inline(always)]
fn bytes<const N: usize>(start: usize, end: usize, offset: usize) -> Option<[u8; N]> {
    let p = start + offset;
    if p + N > end {
        return None;
    }
    // SAFETY: bounds checked against data_end just above.
    Some(unsafe { core::ptr::read_unaligned(p as *const [u8; N]) })
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// What the IP layer tells us about a protocol-112 packet (addresses go to
/// the scratch peer key and `dst`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IpInfo {
    /// Offset of the VRRP PDU from the start of the frame.
    pdu_off: u32,
    /// IP payload length as the IP header states it.
    pdu_len: u32,
    family: u8,
    ttl: u8,
    multicast: u8,
    _pad: u8,
}

/// A subprogram (own stack frame) so the header copies do not count against
/// `vrrp_rx`'s 512 bytes.
#[inline(never)]
fn parse_ip(start: usize, end: usize, s: &mut Scratch) -> Result<(), Drop> {
    let ethertype = be16(bytes::<2>(start, end, 12).ok_or(Drop::NotVrrp)?);
    match ethertype {
        ETH_P_IP => {
            // The fixed IPv4 header must be there to even see the protocol.
            // is_vrrp saw protocol 112: a short header is a truncated advert.
            let hdr = bytes::<20>(start, end, ETH_HLEN).ok_or(Drop::Truncated)?;
            if hdr[9] != IPPROTO_VRRP {
                return Err(Drop::NotVrrp);
            }
            let ihl = ((hdr[0] & 0x0f) as usize) * 4;
            if ihl < 20 {
                return Err(Drop::Truncated);
            }
            let frag = be16([hdr[6], hdr[7]]) & 0x3fff;
            if frag != 0 {
                return Err(Drop::Fragment);
            }
            let total = be16([hdr[2], hdr[3]]) as usize;
            if total < ihl || start + ETH_HLEN + total > end {
                return Err(Drop::Truncated);
            }
            s.peer.addr = [0; 16];
            s.dst = [0; 16];
            s.peer.addr[0] = hdr[12];
            s.peer.addr[1] = hdr[13];
            s.peer.addr[2] = hdr[14];
            s.peer.addr[3] = hdr[15];
            s.dst[0] = hdr[16];
            s.dst[1] = hdr[17];
            s.dst[2] = hdr[18];
            s.dst[3] = hdr[19];
            s.ip = IpInfo {
                family: FAMILY_IPV4,
                pdu_off: (ETH_HLEN + ihl) as u32,
                pdu_len: (total - ihl) as u32,
                ttl: hdr[8],
                multicast: (hdr[16] & 0xf0 == 0xe0) as u8,
                _pad: 0,
            };
            Ok(())
        }
        ETH_P_IPV6 => {
            let hdr = bytes::<8>(start, end, ETH_HLEN).ok_or(Drop::Truncated)?;
            if start + ETH_HLEN + IPV6_HLEN > end {
                return Err(Drop::Truncated);
            }
            // keepalived sends no extension headers; anything else is not ours.
            if hdr[6] != IPPROTO_VRRP {
                return Err(Drop::NotVrrp);
            }
            let payload = be16([hdr[4], hdr[5]]) as usize;
            if start + ETH_HLEN + IPV6_HLEN + payload > end {
                return Err(Drop::Truncated);
            }
            s.peer.addr = bytes::<16>(start, end, ETH_HLEN + 8).ok_or(Drop::Truncated)?;
            s.dst = bytes::<16>(start, end, ETH_HLEN + 24).ok_or(Drop::Truncated)?;
            s.ip = IpInfo {
                family: FAMILY_IPV6,
                pdu_off: (ETH_HLEN + IPV6_HLEN) as u32,
                pdu_len: payload as u32,
                ttl: hdr[7],
                multicast: (s.dst[0] == 0xff) as u8,
                _pad: 0,
            };
            Ok(())
        }
        _ => Err(Drop::NotVrrp),
    }
}

/// One's-complement sum of the first `len` bytes of the scratch PDU, 16 bits
/// at a time (VRRP PDUs have an even length). A BPF subprogram of its own, to
/// keep the main program's stack frame under the 512-byte limit.
#[inline(never)]
fn sum_words(pdu: &[u8; PDU_BUF], len: usize, mut sum: u64) -> u64 {
    let mut i = 0usize;
    while i < MAX_PDU_BYTES {
        if i >= len {
            break;
        }
        let at = i & (PDU_BUF - 2);
        // SAFETY: the mask keeps at + 2 within the buffer (no panic path).
        sum += be16(unsafe { core::ptr::read_unaligned(pdu.as_ptr().add(at) as *const [u8; 2]) })
            as u64;
        i += 2;
    }
    sum
}

#[inline(always)]
fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Sum of the first `n` (4 or 16) bytes of an address, as 16-bit words.
#[inline(always)]
fn sum_bytes(b: &[u8; 16], n: usize) -> u64 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < 16 {
        if i < n {
            sum += be16([b[i], b[i + 1]]) as u64;
        }
        i += 2;
    }
    sum
}

#[inline(always)]
fn parse_and_record(ctx: &XdpContext, s: &mut Scratch, c: &mut Counters) -> Result<(), Drop> {
    let start = ctx.data();
    let end = ctx.data_end();
    parse_ip(start, end, s)?;
    let ip = s.ip;
    // Read back from map memory, the offset is unbounded to the verifier; the
    // mask (Ethernet + the longest IPv4 header = 74 < 128) bounds it.
    let pdu_off = ip.pdu_off as usize & 0x7f;
    let pdu_len = ip.pdu_len as usize;
    let multicast = ip.multicast != 0;

    let hdr = bytes::<VRRP_HLEN>(start, end, pdu_off).ok_or(Drop::Truncated)?;
    if pdu_len < VRRP_HLEN {
        return Err(Drop::Truncated);
    }
    let version = hdr[0] >> 4;
    if version != 2 && version != 3 {
        return Err(Drop::BadVersion);
    }
    if hdr[0] & 0x0f != 1 {
        return Err(Drop::BadType);
    }
    let vrid = hdr[1];
    let priority = hdr[2];
    let addr_count = hdr[3] as usize;

    // SAFETY: ctx.ctx is the program's xdp_md.
    let key = InstanceKey::new(unsafe { (*ctx.ctx).ingress_ifindex }, ip.family, vrid);
    // SAFETY: the map value is copied out at once.
    let inst: InstanceConfig = match unsafe { INSTANCES.get(&key) } {
        Some(c) => *c,
        None => return Err(Drop::UnknownVrid),
    };
    if inst.version != version {
        return Err(Drop::BadVersion);
    }
    let unicast = inst.flags & instance_flags::UNICAST != 0;
    if multicast == unicast {
        return Err(Drop::ModeMismatch);
    }
    if multicast && ip.ttl != 255 {
        return Err(Drop::BadTtl);
    }

    let addr_len = if ip.family == FAMILY_IPV4 { 4 } else { 16 };
    let auth_len = if version == 2 { V2_AUTH_LEN } else { 0 };
    let vrrp_len = VRRP_HLEN + addr_count * addr_len + auth_len;
    // Anything after vrrp_len (keepalived's auth_hmac trailer) is tolerated.
    if vrrp_len > pdu_len || vrrp_len > MAX_PDU_BYTES {
        return Err(Drop::BadLength);
    }
    // SAFETY: the destination holds PDU_BUF bytes and the length is masked below it.
    let copied = unsafe {
        bpf_xdp_load_bytes(
            ctx.ctx,
            pdu_off as u32,
            s.pdu.as_mut_ptr() as *mut _,
            (vrrp_len & (PDU_BUF - 1)) as u32,
        )
    };
    if copied != 0 {
        return Err(Drop::Truncated);
    }

    let mut auth_data = [0u8; 8];
    let auth_type;
    let interval_cs;
    if version == 2 {
        auth_type = hdr[4];
        interval_cs = hdr[5] as u16 * 100;
        if hdr[5] != inst.v2_interval_s {
            return Err(Drop::IntervalMismatch);
        }
        // v2 is IPv4 only: at ≤ 8 + 255 × 4 < 2048, so the mask changes nothing
        // but proves at + 8 ≤ PDU_BUF to the verifier.
        let at = (vrrp_len - V2_AUTH_LEN) & (PDU_BUF / 2 - 1);
        // SAFETY: see the mask above (and no panic path).
        auth_data = unsafe { core::ptr::read_unaligned(s.pdu.as_ptr().add(at) as *const [u8; 8]) };
        // One 64-bit compare: no early exit on the first differing byte.
        if auth_type != inst.auth_type
            || (auth_type == 1
                && u64::from_ne_bytes(auth_data) != u64::from_ne_bytes(inst.auth_data))
        {
            return Err(Drop::AuthMismatch);
        }
    } else {
        auth_type = 0;
        interval_cs = be16([hdr[4], hdr[5]]) & 0x0fff;
    }

    // Checksum: v2 over the PDU; v3 adds the pseudo-header unless configured as v2 (IPv4 only).
    let mut sum = 0u64;
    let as_v2 = ip.family == FAMILY_IPV4 && inst.flags & instance_flags::CHECKSUM_AS_V2 != 0;
    if version == 3 && !as_v2 {
        let n = if ip.family == FAMILY_IPV4 { 4 } else { 16 };
        sum += sum_bytes(&s.peer.addr, n) + sum_bytes(&s.dst, n);
        sum += IPPROTO_VRRP as u64 + vrrp_len as u64;
    }
    if fold(sum_words(&s.pdu, vrrp_len, sum)) != 0xffff {
        return Err(Drop::BadChecksum);
    }

    s.peer.ifindex = key.ifindex;
    s.peer.family = ip.family;
    s.peer.vrid = vrid;
    s.peer._pad = [0; 2];
    if unicast && inst.flags & instance_flags::CHECK_UNICAST_SRC != 0 {
        // SAFETY: value only tested for presence.
        if unsafe { SOURCES.get(&s.peer) }.is_none() {
            return Err(Drop::UnlistedSource);
        }
    }

    s.seen = PeerRecord {
        // SAFETY: no preconditions.
        last_ns: unsafe { bpf_ktime_get_ns() },
        first_ns: 0,
        adverts: 1,
        interval_cs,
        priority,
        version,
        addr_count: addr_count as u8,
        auth_type,
        ttl: ip.ttl,
        multicast: ip.multicast,
        auth_data,
        prev_last_ns: 0,
        prev_priority: 0,
        _pad: [0; 7],
    };
    record_peer(
        &s.peer,
        &s.seen,
        inst.flags & instance_flags::WAKE_ON_ANY != 0,
        c,
    )
}

/// Updates (or creates) the peer's record from `seen` and queues an event if
/// the change is significant. A subprogram: see `sum_words`.
#[inline(never)]
fn record_peer(
    peer: &PeerKey,
    seen: &PeerRecord,
    wake_on_any: bool,
    c: &mut Counters,
) -> Result<(), Drop> {
    let now = seen.last_ns;
    let priority = seen.priority;
    let event = match PEERS.get_ptr_mut(peer) {
        Some(rec) => {
            // SAFETY: the pointer comes from a successful lookup; concurrent
            // writers on other CPUs can only race benignly on plain integers.
            let rec = unsafe { &mut *rec };
            let previous = rec.priority;
            let old_interval = rec.interval_cs;
            let first_ns = rec.first_ns;
            let adverts = rec.adverts + 1;
            // Keep when the old priority was last heard, across any number
            // of adverts at the new one (see PeerRecord::prev_last_ns).
            let (prev_last_ns, prev_priority) = if priority != previous {
                (rec.last_ns, previous)
            } else {
                (rec.prev_last_ns, rec.prev_priority)
            };
            *rec = *seen;
            rec.first_ns = first_ns;
            rec.adverts = adverts;
            rec.prev_last_ns = prev_last_ns;
            rec.prev_priority = prev_priority;
            if priority == 0 && previous != 0 {
                Some((event_kind::PRIORITY_ZERO, previous))
            } else if priority != previous {
                Some((event_kind::PRIORITY_CHANGED, previous))
            } else if seen.interval_cs != old_interval {
                Some((event_kind::INTERVAL_CHANGED, previous))
            } else if wake_on_any {
                Some((event_kind::WHILE_MASTER, previous))
            } else {
                None
            }
        }
        None => {
            let mut rec = *seen;
            rec.first_ns = now;
            if PEERS.insert(peer, &rec, BPF_NOEXIST as u64).is_err() {
                return Err(Drop::PeersFull);
            }
            let kind = if priority == 0 {
                event_kind::PRIORITY_ZERO
            } else {
                event_kind::NEW_PEER
            };
            Some((kind, priority))
        }
    };

    c.accepted += 1;
    if let Some((kind, previous_priority)) = event {
        let ev = PeerEvent {
            key: *peer,
            arrived_ns: now,
            kind,
            priority,
            previous_priority,
            _pad: 0,
            interval_cs: seen.interval_cs,
            _pad2: [0; 2],
        };
        if EVENTS.output(&ev, 0).is_err() {
            c.events_lost += 1;
        }
    }
    Ok(())
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
