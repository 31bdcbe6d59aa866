//! The advert recorder: `vrrp_rx` (XDP), `vrrp_rx_libxdp` (the same, as a
//! component of a libxdp multi-program dispatcher) and `vrrp_rx_tc` (tc
//! ingress, tcx or clsact), one core over a [`Packet`].
//!
//! Parses Ethernet → IPv4/IPv6 → protocol 112 → VRRP, applies the receive
//! checks the kernel's IP layer and keepalived apply (RFC 3768/5798), and
//! records each accepted advert in its instance's peer table with its kernel
//! arrival time. Only significant changes go to the EVENTS ring buffer, and
//! at most a budget of them per instance. The verdict is always "go on"
//! (XDP_PASS, TC_ACT_UNSPEC): the stack and any program after ours still
//! see every packet; we only watch.
//!
//! Cost: a routine advert takes one hash lookup (INSTANCES), one array
//! lookup (PEERS, inlined by the verifier), one clock read (the coarse
//! clock for adverts every second or slower, see PRECISE_CLOCK_BELOW_CS),
//! and checksums summed straight from packet memory, 4 bytes per load: no
//! copy, no helper. A source already recorded under the current
//! configuration skips the checks that depend on the source alone.
#![no_std]
#![no_main]
// Packet words are read with one BPF load each (see `ld!`): the verifier
// accepts unaligned packet loads on the hosts we run on, but Rust has no
// unaligned load that LLVM's BPF backend keeps whole (it splits it into
// bytes, which doubles the cost of a checksum).
#![feature(asm_experimental_arch)]

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_UNSPEC},
    btf_maps::{Array, HashMap, PerCpuArray, RingBuf},
    helpers::{
        bpf_csum_diff, bpf_ktime_get_coarse_ns, bpf_ktime_get_ns, bpf_loop, bpf_skb_pull_data,
    },
    macros::{btf_map, classifier, xdp},
    programs::{TcContext, XdpContext},
};
use vrrp_common::{
    event_kind, instance_flags, peer_flags, Counters, DropReason, InstanceConfig, InstanceKey,
    PeerEvent, PeerKey, PeerRecord, PeerTable, ETH_P_IP, ETH_P_IPV6, EVENTS_RING_BYTES,
    EVENT_BURST, EVENT_WINDOW_NS, FAMILY_IPV4, FAMILY_IPV6, IPPROTO_VRRP, MAX_INSTANCES,
    MAX_LOCAL_ADDRS, MAX_SOURCES, PEER_SLOTS, PRECISE_CLOCK_BELOW_CS, VRRP_TTL,
};

/// Instance configuration, written by userspace only.
#[btf_map]
static INSTANCES: HashMap<InstanceKey, InstanceConfig, { MAX_INSTANCES as usize }> = HashMap::new();

/// One peer table per instance, indexed by `InstanceConfig::table`; written
/// by the kernel only, so userspace rewriting a configuration loses nothing.
#[btf_map]
static PEERS: Array<PeerTable, { MAX_INSTANCES as usize }> = Array::new();

/// Configured unicast peers (value unused): allowed sources for instances
/// with CHECK_UNICAST_SRC, and never evicted from a peer table.
#[btf_map]
static SOURCES: HashMap<PeerKey, u8, { MAX_SOURCES as usize }> = HashMap::new();

#[btf_map]
static COUNTERS: PerCpuArray<Counters, 1> = PerCpuArray::new();

#[btf_map]
static EVENTS: RingBuf<PeerEvent, { EVENTS_RING_BYTES as usize }> = RingBuf::new();

/// Bumped by userspace after every change to INSTANCES (MAP_CONFIG_GEN).
#[btf_map]
static CONFIG_GEN: Array<u64, 1> = Array::new();

/// Per-CPU copies of instance configurations, one per VRID, valid while
/// CONFIG_GEN holds `gen`: a routine advert then reads its configuration
/// with two inlined array lookups instead of a hash lookup call.
#[btf_map]
static INSTANCE_CACHE: PerCpuArray<CachedInstance, 256> = PerCpuArray::new();

#[repr(C)]
pub struct CachedInstance {
    /// The instance key as one word (`key_word`), compared at once.
    key: u64,
    gen: u64,
    config: InstanceConfig,
}

#[inline(always)]
fn key_word(ifindex: u32, family: u8, vrid: u8) -> u64 {
    ifindex as u64 | (family as u64) << 32 | (vrid as u64) << 40
}

/// Per-CPU working memory of the slot scans (see `launder`).
#[btf_map]
static SCRATCH: PerCpuArray<Scratch, 1> = PerCpuArray::new();

#[repr(C)]
pub struct Scratch {
    /// A slot index in flight.
    slot: u64,
    /// The rank of that slot in the current scan.
    rank: u64,
}

const ETH_HLEN: usize = 14;
const IPV4_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const VRRP_HLEN: usize = 8;
const V2_AUTH_LEN: usize = 8;
const AUTH_TYPE_PASS: u8 = 1;
const VRRP_TYPE_ADVERT: u8 = 1;

/// `ld!(u32, p, off)`: one BPF load of a packet word at `p + off`, in
/// memory byte order, zero-extended to u64. The caller has bounds-checked
/// `p + off + size` against data_end, which the verifier checks again at
/// this load. `pure`: the compiler may merge equal loads, and never moves
/// one above the bounds check it depends on (asm is not speculated).
macro_rules! ld {
    ($size:ident, $p:expr, $off:literal) => {{
        let v: u64;
        // SAFETY: bounds checked by the caller (and by the verifier).
        unsafe {
            core::arch::asm!(concat!("{v} = *(", stringify!($size), " *)({p} + ", $off, ")"),
                v = lateout(reg) v, p = in(reg) $p,
                options(pure, readonly, nostack, preserves_flags))
        };
        v
    }};
}

/// `v` unchanged, but unknown to the compiler. LLVM deletes a bounds check
/// it can prove from earlier ones (e.g. `p + 32 <= end` from `ip + ihl <= end`
/// and `ihl >= 52`), and a mask it can prove redundant, but the verifier
/// only trusts what it sees; a check against, or a mask of, an opaque value
/// stays in the program. One real instruction (a move onto itself): an
/// empty template leaves a line-info entry on no instruction of its own,
/// which the kernel refuses.
#[inline(always)]
fn opaque(v: usize) -> usize {
    let mut v = v;
    // SAFETY: `r = r`: the value unchanged.
    unsafe {
        core::arch::asm!("{0} = {0}", inout(reg) v, options(pure, nomem, nostack, preserves_flags))
    };
    v
}

/// The big-endian 16-bit field at `p + OFF`, as a length the verifier knows
/// is below 65536: verifiers before 6.3 (Debian 12 runs 6.1) know nothing
/// of a value after a byte swap, and refuse to add it to a packet pointer.
/// The mask makes the bound visible; `opaque` keeps the compiler, which
/// knows the swap's result fits, from dropping it.
macro_rules! be16_len {
    ($p:expr, $off:literal) => {
        opaque(u16::from_be(ld!(u16, $p, $off) as u16) as usize) & 0xffff
    };
}

#[inline(always)]
fn ld8(p: usize) -> u8 {
    // SAFETY: bounds checked by the caller (and by the verifier).
    unsafe { *(p as *const u8) }
}

/// Where a program finds its packet: the one thing the entry points differ
/// in. Each call reads the context afresh, as the verifier wants after a
/// helper that may move packet data.
trait Packet {
    fn data(&self) -> usize;
    fn data_end(&self) -> usize;
    /// The interface the packet arrived on (the instance key's ifindex).
    fn ifindex(&self) -> u32;
}

impl Packet for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: ctx.ctx is the program's xdp_md.
        unsafe { (*self.ctx).ingress_ifindex }
    }
}

impl Packet for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: the program's __sk_buff; at ingress its device is the
        // receiving interface.
        unsafe { (*self.skb.skb).ifindex }
    }
}

/// Attached on its own to an interface's XDP hook (`xvrrpd_attach xdp` on
/// a kernel without program extensions), and what the tests run.
#[xdp]
pub fn vrrp_rx(ctx: XdpContext) -> u32 {
    rx_xdp(&ctx)
}

/// The same, loaded as a program extension (BPF_PROG_TYPE_EXT) in place of
/// a stub of a libxdp dispatcher, beside other XDP programs. XDP_PASS is
/// its only chain-call action: the dispatcher goes on to the next program.
#[xdp]
pub fn vrrp_rx_libxdp(ctx: XdpContext) -> u32 {
    rx_xdp(&ctx)
}

#[inline(always)]
fn rx_xdp(ctx: &XdpContext) -> u32 {
    // Everything that is not protocol 112 leaves after two loads and compares.
    if let Some(family) = vrrp_family(ctx.data(), ctx.data_end()) {
        record(ctx, family);
    }
    xdp_action::XDP_PASS
}

/// The recorder at tc ingress (tcx, or a clsact filter in direct-action
/// mode): after XDP, before netfilter. TC_ACT_UNSPEC: no verdict, so the
/// programs after ours and the stack go on as if we were not there.
#[classifier]
pub fn vrrp_rx_tc(ctx: TcContext) -> i32 {
    let family = match vrrp_family(ctx.data(), ctx.data_end()) {
        Some(family) => family,
        None => {
            // Most drivers leave at least the headers in the linear part; a
            // frame too short there to tell is pulled in, off the common path.
            if !headers_outside_linear(&ctx) {
                return TC_ACT_UNSPEC;
            }
            // SAFETY: the program's own skb; pointers are re-read below.
            unsafe { bpf_skb_pull_data(ctx.skb.skb, (ETH_HLEN + IPV6_HLEN) as u32) };
            match vrrp_family(ctx.data(), ctx.data_end()) {
                Some(family) => family,
                None => return TC_ACT_UNSPEC,
            }
        }
    };
    // The checks read the whole advert by direct access: make it linear.
    let len = ctx.len() as usize;
    if ctx.data() + len > ctx.data_end() {
        // SAFETY: as above; `record` reads the pointers afresh.
        unsafe { bpf_skb_pull_data(ctx.skb.skb, len as u32) };
    }
    record(&ctx, family);
    TC_ACT_UNSPEC
}

/// An IPv4/IPv6 frame whose Ethernet and IP headers are not all in the
/// linear part of the skb.
#[inline(always)]
fn headers_outside_linear(ctx: &TcContext) -> bool {
    // SAFETY: the program's __sk_buff.
    let (protocol, len) = unsafe { ((*ctx.skb.skb).protocol, (*ctx.skb.skb).len) };
    let protocol = u16::from_be(protocol as u16);
    let linear = ctx.data_end().saturating_sub(ctx.data());
    (protocol == ETH_P_IP || protocol == ETH_P_IPV6)
        && linear < ETH_HLEN + IPV6_HLEN
        && (len as usize) > linear
}

/// An empty XDP_PASS program in the same object: the baseline the benchmark
/// measures `vrrp_rx` against. Never attached.
#[xdp]
pub fn xdp_pass_baseline(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// The baseline of `vrrp_rx_libxdp`: an empty component of a dispatcher.
#[xdp]
pub fn xdp_pass_component(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// The baseline of `vrrp_rx_tc`: a tc program that gives no verdict.
#[classifier]
pub fn tc_pass_baseline(_ctx: TcContext) -> i32 {
    TC_ACT_UNSPEC
}

/// The family of a protocol-112 frame, `None` for anything else.
#[inline(always)]
fn vrrp_family(start: usize, end: usize) -> Option<u8> {
    if start + ETH_HLEN + 7 > end {
        return None;
    }
    let ethertype = u16::from_be(ld!(u16, start, 12) as u16);
    if ethertype == ETH_P_IPV6 {
        (ld8(start + ETH_HLEN + 6) == IPPROTO_VRRP).then_some(FAMILY_IPV6)
    } else if ethertype == ETH_P_IP && start + ETH_HLEN + 10 <= end {
        (ld8(start + ETH_HLEN + 9) == IPPROTO_VRRP).then_some(FAMILY_IPV4)
    } else {
        None
    }
}

#[inline(always)]
fn record(ctx: &impl Packet, family: u8) {
    // SAFETY: per-CPU slot, written only by this program on this CPU.
    let Some(c) = COUNTERS.get_ptr_mut(0).map(|p| unsafe { &mut *p }) else {
        return;
    };
    c.vrrp_packets += 1;
    match check_and_record(ctx, family, c) {
        Ok(()) => c.accepted += 1,
        Err(reason) => *c.drop_mut(reason) += 1,
    }
}

/// An address as the maps store it, read as two words: IPv4 in the low 4
/// bytes of `lo`, the rest zero.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Addr {
    lo: u64,
    hi: u64,
}

impl Addr {
    #[inline(always)]
    fn at(bytes: &[u8; 16]) -> Self {
        let p = bytes.as_ptr() as *const u64;
        // SAFETY: every stored address sits at an 8-aligned offset of an
        // 8-aligned map value (InstanceConfig is align(8); PeerSlot holds u64s).
        unsafe {
            Addr {
                lo: p.read(),
                hi: p.add(1).read(),
            }
        }
    }

    #[inline(always)]
    fn store(self, bytes: &mut [u8; 16]) {
        let p = bytes.as_mut_ptr() as *mut u64;
        // SAFETY: as in `at`.
        unsafe {
            p.write(self.lo);
            p.add(1).write(self.hi);
        }
    }

    #[inline(always)]
    fn bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        let lo = self.lo.to_le_bytes();
        let hi = self.hi.to_le_bytes();
        let mut i = 0;
        while i < 8 {
            b[i] = lo[i];
            b[i + 8] = hi[i];
            i += 1;
        }
        b
    }

    /// First byte on the wire.
    #[inline(always)]
    fn first(self) -> u8 {
        self.lo as u8
    }

    /// One's-complement word sum of the address (IPv4: its one word).
    #[inline(always)]
    fn word_sum(self) -> u64 {
        (self.lo & 0xffff_ffff) + (self.lo >> 32) + (self.hi & 0xffff_ffff) + (self.hi >> 32)
    }

    /// A source no host sends from (the kernel's martian sources).
    #[inline(always)]
    fn is_martian(self, family: u8) -> bool {
        if family == FAMILY_IPV4 {
            let b0 = self.first();
            b0 == 0 || b0 == 127 || b0 & 0xf0 == 0xe0 || self.lo == 0xffff_ffff
        } else {
            // ::, ::1 (the 1 is byte 15, the top byte of `hi`), ff00::/8.
            (self.lo == 0 && (self.hi == 0 || self.hi == 1 << 56)) || self.first() == 0xff
        }
    }

    /// fe80::/10.
    #[inline(always)]
    fn is_link_local(self) -> bool {
        self.lo & 0xc0ff == 0x80fe
    }
}

/// What the IP layer says about a protocol-112 packet.
struct Ip {
    /// Start of the VRRP PDU in packet memory.
    pdu: usize,
    /// IP payload length as the IP header states it.
    pdu_len: usize,
    src: Addr,
    dst: Addr,
    ttl: u8,
    multicast: bool,
}

/// IPv4 as `ip_rcv` checks it: version, IHL, header checksum, lengths; no fragments.
#[inline(always)]
fn parse_ipv4(ip: usize, end: usize) -> Result<Ip, DropReason> {
    if ip + IPV4_HLEN > end {
        return Err(DropReason::Truncated);
    }
    let b0 = ld8(ip);
    if b0 >> 4 != 4 || b0 & 0x0f < 5 {
        return Err(DropReason::BadIpHeader);
    }
    let ihl = (b0 & 0x0f) as usize * 4;
    if ip + ihl > end {
        return Err(DropReason::BadIpHeader);
    }
    let mut sum =
        ld!(u32, ip, 0) + ld!(u32, ip, 4) + ld!(u32, ip, 8) + ld!(u32, ip, 12) + ld!(u32, ip, 16);
    if ihl > IPV4_HLEN {
        sum += sum_options(ip + IPV4_HLEN, ihl - IPV4_HLEN, end).ok_or(DropReason::BadIpHeader)?;
    }
    if fold(sum) != 0xffff {
        return Err(DropReason::BadIpChecksum);
    }
    let total = be16_len!(ip, 2);
    if total < ihl {
        return Err(DropReason::BadIpHeader);
    }
    if ip + total > end {
        return Err(DropReason::Truncated);
    }
    if u16::from_be(ld!(u16, ip, 6) as u16) & 0x3fff != 0 {
        return Err(DropReason::Fragment);
    }
    let src = ld!(u32, ip, 12);
    let dst = ld!(u32, ip, 16);
    Ok(Ip {
        pdu: ip + ihl,
        pdu_len: total - ihl,
        src: Addr { lo: src, hi: 0 },
        dst: Addr { lo: dst, hi: 0 },
        ttl: ld8(ip + 8),
        multicast: dst as u8 & 0xf0 == 0xe0,
    })
}

/// IPv6 as `ipv6_rcv` checks it: version and payload length. keepalived
/// sends no extension headers (the next header is 112, see `vrrp_family`).
#[inline(always)]
fn parse_ipv6(ip: usize, end: usize) -> Result<Ip, DropReason> {
    if ip + IPV6_HLEN > end {
        return Err(DropReason::Truncated);
    }
    if ld8(ip) >> 4 != 6 {
        return Err(DropReason::BadIpHeader);
    }
    let payload = be16_len!(ip, 4);
    if ip + IPV6_HLEN + payload > end {
        return Err(DropReason::Truncated);
    }
    let dst = Addr {
        lo: ld!(u64, ip, 24),
        hi: ld!(u64, ip, 32),
    };
    Ok(Ip {
        pdu: ip + IPV6_HLEN,
        pdu_len: payload,
        src: Addr {
            lo: ld!(u64, ip, 8),
            hi: ld!(u64, ip, 16),
        },
        dst,
        ttl: ld8(ip + 7),
        multicast: dst.first() == 0xff,
    })
}

/// Folds a sum of words to 16 bits; 0xffff when the data (with its
/// checksum) is intact. The fold is byte-order blind, so words summed in
/// memory order need no swapping.
#[inline(always)]
fn fold(mut sum: u64) -> u64 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    (sum & 0xffff) + (sum >> 16)
}

/// Word sum of `len` (a multiple of 4, below 64) bytes at `p`; `None` if
/// they are not all in the packet.
#[inline(always)]
fn sum_tail(mut p: usize, len: usize, end: usize) -> Option<u64> {
    let end = opaque(end);
    let mut sum = 0u64;
    if len & 32 != 0 {
        if p + 32 > end {
            return None;
        }
        sum += ld!(u32, p, 0)
            + ld!(u32, p, 4)
            + ld!(u32, p, 8)
            + ld!(u32, p, 12)
            + ld!(u32, p, 16)
            + ld!(u32, p, 20)
            + ld!(u32, p, 24)
            + ld!(u32, p, 28);
        p += 32;
    }
    if len & 16 != 0 {
        if p + 16 > end {
            return None;
        }
        sum += ld!(u32, p, 0) + ld!(u32, p, 4) + ld!(u32, p, 8) + ld!(u32, p, 12);
        p += 16;
    }
    if len & 8 != 0 {
        if p + 8 > end {
            return None;
        }
        sum += ld!(u32, p, 0) + ld!(u32, p, 4);
        p += 8;
    }
    if len & 4 != 0 {
        if p + 4 > end {
            return None;
        }
        sum += ld!(u32, p, 0);
    }
    Some(sum)
}

/// `sum_tail` for `sum_blocks`: each block's address is computed from `p`
/// and `len` alike whether or not the block before was summed, so the
/// verifier's paths through the four blocks meet again after each (a
/// pointer advanced inside the branches keeps all 16 apart). A few
/// instructions more, so not on the common path.
#[inline(always)]
fn sum_tail_merged(p: usize, len: usize, end: usize) -> Option<u64> {
    let end = opaque(end);
    let mut sum = 0u64;
    if len & 32 != 0 {
        if p + 32 > end {
            return None;
        }
        sum += ld!(u32, p, 0)
            + ld!(u32, p, 4)
            + ld!(u32, p, 8)
            + ld!(u32, p, 12)
            + ld!(u32, p, 16)
            + ld!(u32, p, 20)
            + ld!(u32, p, 24)
            + ld!(u32, p, 28);
    }
    let q = p + (len & 32);
    if len & 16 != 0 {
        if q + 16 > end {
            return None;
        }
        sum += ld!(u32, q, 0) + ld!(u32, q, 4) + ld!(u32, q, 8) + ld!(u32, q, 12);
    }
    let q = p + (len & 48);
    if len & 8 != 0 {
        if q + 8 > end {
            return None;
        }
        sum += ld!(u32, q, 0) + ld!(u32, q, 4);
    }
    let q = p + (len & 56);
    if len & 4 != 0 {
        if q + 4 > end {
            return None;
        }
        sum += ld!(u32, q, 0);
    }
    Some(sum)
}

/// IPv4 options (rare: router alert): a subprogram, off the common path.
#[inline(never)]
fn sum_options(p: usize, len: usize, end: usize) -> Option<u64> {
    sum_tail(p, len, end)
}

/// Word sum of `len` (a multiple of 4, at most 4096) bytes at `p`.
#[inline(always)]
fn sum_words(p: usize, len: usize, end: usize) -> Option<u64> {
    if len < 64 {
        sum_tail(p, len, end)
    } else {
        sum_blocks(p, len, end)
    }
}

/// `sum_words` of PDUs of 64 bytes or more (many addresses), off the common
/// path: `bpf_csum_diff` over blocks of 256 bytes (in a `bpf_loop`
/// callback, which the verifier checks once, not once per block and path:
/// an inline loop cost 150,000 instructions of verification), then of 128
/// and 64 bytes, then the tail.
#[inline(never)]
fn sum_blocks(p: usize, len: usize, end: usize) -> Option<u64> {
    let end = opaque(end);
    let mut blocks = BlockSum {
        p,
        end,
        blocks: (len / 256) as u64,
        sum: 0,
        complete: 1,
    };
    // SAFETY: the callback reads packet memory it bounds-checks and writes
    // `blocks`, which outlives the call. 16 blocks cover the longest PDU.
    unsafe {
        bpf_loop(
            16,
            block_step as *mut c_void,
            &mut blocks as *mut BlockSum as *mut c_void,
            0,
        )
    };
    if blocks.complete == 0 {
        return None;
    }
    let mut sum = blocks.sum;
    let rest = p + (len & !255);
    if len & 128 != 0 {
        sum += csum_block::<128>(rest, end)?;
    }
    let q = rest + (len & 128);
    if len & 64 != 0 {
        sum += csum_block::<64>(q, end)?;
    }
    Some(sum + sum_tail_merged(rest + (len & 192), len & 63, end)?)
}

/// What `block_step` works on.
#[repr(C)]
struct BlockSum {
    p: usize,
    end: usize,
    /// Whole 256-byte blocks at `p`.
    blocks: u64,
    sum: u64,
    /// 0 once a block was found beyond the packet.
    complete: u64,
}

/// Adds the sum of block `step` to `ctx`; returns 1 to stop the loop.
extern "C" fn block_step(step: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is sum_blocks' `blocks`.
    let b = unsafe { &mut *(ctx as *mut BlockSum) };
    if step >= b.blocks {
        return 1;
    }
    match csum_block::<256>(b.p + (step as usize & 15) * 256, b.end) {
        Some(sum) => {
            b.sum += sum;
            0
        }
        None => {
            b.complete = 0;
            1
        }
    }
}

/// The kernel's one's-complement sum (`csum_partial`, memory order, so it
/// adds to ours) of `N` bytes at `p`, if they are in the packet.
#[inline(always)]
fn csum_block<const N: usize>(p: usize, end: usize) -> Option<u64> {
    if p + N > end {
        return None;
    }
    // SAFETY: `to` holds N bytes (checked above); `from` is empty.
    let sum = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, p as *mut u32, N as u32, 0) };
    // A negative return is an error (it is not: N is a multiple of 4 within the limit).
    u32::try_from(sum).ok().map(u64::from)
}

/// Whether `a` is among the instance's own addresses.
#[inline(always)]
fn is_local(cfg: &InstanceConfig, a: Addr) -> bool {
    let mut i = 0;
    while i < MAX_LOCAL_ADDRS {
        if i >= cfg.local_count as usize {
            return false;
        }
        if Addr::at(&cfg.local[i]) == a {
            return true;
        }
        i += 1;
    }
    false
}

/// The advert, checked: what a record is made of.
struct Advert {
    priority: u8,
    version: u8,
    addr_count: u8,
    auth_type: u8,
    interval_cs: u16,
    auth_data: u64,
}

/// The instance the frame's VRID names, looked up before any check: nothing
/// parsed then has to survive the helper call (it clobbers the argument
/// registers, and spilling costs more than the checks). `None` also when
/// the frame is too short to hold a VRID; the checks report either case
/// where they reach it.
#[inline(always)]
fn lookup_instance(
    ip: usize,
    end: usize,
    ifindex: u32,
    family: u8,
) -> Option<&'static InstanceConfig> {
    let pdu = if family == FAMILY_IPV4 {
        if ip + 1 > opaque(end) {
            return None;
        }
        ip + (ld8(ip) & 0x0f) as usize * 4
    } else {
        ip + IPV6_HLEN
    };
    if pdu + 2 > opaque(end) {
        return None;
    }
    let vrid = ld8(pdu + 1);
    let word = key_word(ifindex, family, vrid);
    let gen = *CONFIG_GEN.get(0)?;
    // SAFETY: per-CPU memory of this program, valid for this run.
    let cached = unsafe { &mut *INSTANCE_CACHE.get_ptr_mut(vrid as u32)? };
    if cached.gen == gen && cached.key == word {
        return Some(&cached.config);
    }
    let key = InstanceKey::new(ifindex, family, vrid);
    // Unknown VRIDs are not cached: they take the hash lookup every time.
    // SAFETY: the value is copied at once; userspace replaces it whole (RCU).
    let config = unsafe { &*INSTANCES.get_ptr(key)? };
    // Read before the lookup: if userspace changed the instance since, the
    // copy carries the older generation and the next advert fetches again.
    cached.gen = gen;
    cached.key = word;
    cached.config = *config;
    Some(&cached.config)
}

#[inline(always)]
fn check_and_record(
    ctx: &impl Packet,
    family: u8,
    c: &mut Counters,
) -> Result<(), DropReason> {
    let ifindex = ctx.ifindex();
    let instance = lookup_instance(ctx.data() + ETH_HLEN, ctx.data_end(), ifindex, family);
    let end = ctx.data_end();
    let ip_start = ctx.data() + ETH_HLEN;
    let ip = if family == FAMILY_IPV4 {
        parse_ipv4(ip_start, end)?
    } else {
        parse_ipv6(ip_start, end)?
    };

    let pdu = ip.pdu;
    let end = opaque(end);
    if ip.pdu_len < VRRP_HLEN || pdu + VRRP_HLEN > end {
        return Err(DropReason::Truncated);
    }
    // Bytes 0..8 in memory order: version/type, VRID, priority, address
    // count, v2 auth type and interval (s) / v3 reserved bits and interval (cs), checksum.
    let head = ld!(u64, pdu, 0);
    let version = head as u8 >> 4;
    if version != 2 && version != 3 {
        return Err(DropReason::BadVersion);
    }
    if head as u8 & 0x0f != VRRP_TYPE_ADVERT {
        return Err(DropReason::BadType);
    }
    let cfg = instance.ok_or(DropReason::UnknownVrid)?;
    if cfg.version != version {
        return Err(DropReason::BadVersion);
    }
    let unicast = cfg.flags & instance_flags::UNICAST != 0;
    if ip.multicast == unicast {
        return Err(DropReason::ModeMismatch);
    }
    let for_us = if ip.multicast {
        Addr::at(&cfg.group) == ip.dst
    } else {
        is_local(cfg, ip.dst)
    };
    if !for_us {
        return Err(DropReason::WrongDestination);
    }

    // A source recorded at the hinted slot under this configuration passed
    // the source checks then; they depend on nothing else, so they are skipped.
    // SAFETY: the kernel is this table's only writer; concurrent CPUs race
    // benignly on plain integers (a lost update is redone by the peer's next advert).
    let table = PEERS.get_ptr_mut(cfg.table).map(|p| unsafe { &mut *p });
    let hint = match &table {
        Some(t) => t.hint as usize & (PEER_SLOTS - 1),
        None => 0,
    };
    let known = table.as_ref().is_some_and(|t| {
        let slot = &t.slots[hint];
        slot.record.in_use()
            && slot.record.checked_gen == cfg.generation
            && Addr::at(&slot.addr) == ip.src
    });
    if !known {
        if ip.src.is_martian(family) {
            return Err(DropReason::MartianSource);
        }
        if is_local(cfg, ip.src) {
            return Err(DropReason::OwnSource);
        }
    }
    if ip.multicast {
        if ip.ttl != VRRP_TTL {
            return Err(DropReason::BadTtl);
        }
        if !known
            && family == FAMILY_IPV6
            && cfg.flags & instance_flags::LINK_LOCAL_SOURCE != 0
            && !ip.src.is_link_local()
        {
            return Err(DropReason::NotLinkLocal);
        }
    }

    let addr_len = if family == FAMILY_IPV4 { 4 } else { 16 };
    let auth_len = if version == 2 { V2_AUTH_LEN } else { 0 };
    let addr_count = (head >> 24) as u8;
    let vrrp_len = VRRP_HLEN + addr_count as usize * addr_len + auth_len;
    // Anything after vrrp_len (keepalived's auth_hmac trailer) is tolerated.
    if vrrp_len > ip.pdu_len {
        return Err(DropReason::BadLength);
    }

    // Checksum: v2 over the PDU; v3 adds the pseudo-header unless configured as v2 (IPv4 only).
    let mut sum = sum_words(pdu, vrrp_len, end).ok_or(DropReason::Truncated)?;
    let as_v2 = family == FAMILY_IPV4 && cfg.flags & instance_flags::CHECKSUM_AS_V2 != 0;
    if version == 3 && !as_v2 {
        let len = vrrp_len as u64;
        sum += ip.src.word_sum() + ip.dst.word_sum();
        sum += if family == FAMILY_IPV4 {
            // 0, protocol, 16-bit length, as one word in memory order.
            (IPPROTO_VRRP as u64) << 8 | (len >> 8 & 0xff) << 16 | (len & 0xff) << 24
        } else {
            // 32-bit length, then 0, 0, 0, next header.
            ((len >> 8 & 0xff) << 16 | (len & 0xff) << 24) + ((IPPROTO_VRRP as u64) << 24)
        };
    }
    if fold(sum) != 0xffff {
        return Err(DropReason::BadChecksum);
    }

    let b4 = (head >> 32) as u8;
    let b5 = (head >> 40) as u8;
    let mut advert = Advert {
        priority: (head >> 16) as u8,
        version,
        addr_count,
        auth_type: 0,
        interval_cs: 0,
        auth_data: 0,
    };
    if version == 2 {
        advert.interval_cs = b5 as u16 * 100;
        if b5 == 0 || b5 != cfg.v2_interval_s {
            return Err(DropReason::IntervalMismatch);
        }
        advert.auth_type = b4;
        let at = pdu + vrrp_len - V2_AUTH_LEN;
        if at + V2_AUTH_LEN > opaque(end) {
            return Err(DropReason::Truncated);
        }
        advert.auth_data = ld!(u64, at, 0);
        // One 64-bit compare: no early exit on the first differing byte.
        if b4 != cfg.auth_type
            || (b4 == AUTH_TYPE_PASS && advert.auth_data != u64::from_ne_bytes(cfg.auth_data))
        {
            return Err(DropReason::AuthMismatch);
        }
    } else {
        advert.interval_cs = u16::from_be_bytes([b4, b5]) & 0x0fff;
        if advert.interval_cs == 0 {
            return Err(DropReason::IntervalMismatch);
        }
    }

    let Some(table) = table else {
        return Err(DropReason::PeersFull);
    };
    let key = InstanceKey::new(ifindex, family, (head >> 8) as u8);
    store(table, cfg, &key, &ip, &advert, known.then_some(hint), c)
}

/// Sentinel for "no slot".
const NO_SLOT: usize = PEER_SLOTS;

/// Records the advert in `table`: in the source's slot (`known`: the hinted
/// one, checked), or in a free, stale or evicted one; queues an event if
/// the change is significant.
#[inline(always)]
fn store(
    table: &mut PeerTable,
    cfg: &InstanceConfig,
    key: &InstanceKey,
    ip: &Ip,
    advert: &Advert,
    known: Option<usize>,
    c: &mut Counters,
) -> Result<(), DropReason> {
    let src = ip.src;
    let unicast = cfg.flags & instance_flags::UNICAST != 0;
    let (mut found, listed) = match known {
        Some(i) => (
            i,
            table.slots[i & (PEER_SLOTS - 1)].record.flags & peer_flags::LISTED != 0,
        ),
        None => {
            let found = launder(find(table, &src));
            // Listed: SOURCES decides, unless the slot's answer is of this generation.
            let slot = &table.slots[found & (PEER_SLOTS - 1)].record;
            let listed = if found != NO_SLOT && slot.checked_gen == cfg.generation {
                slot.flags & peer_flags::LISTED != 0
            } else if unicast {
                let peer = PeerKey::in_instance(*key, src.bytes());
                // SAFETY: only tested for presence.
                unsafe { SOURCES.get(peer) }.is_some()
            } else {
                false
            };
            (found, listed)
        }
    };
    if unicast && cfg.flags & instance_flags::CHECK_UNICAST_SRC != 0 && !listed {
        return Err(DropReason::UnlistedSource);
    }

    let coarse = advert.interval_cs >= PRECISE_CLOCK_BELOW_CS;
    // SAFETY: no preconditions.
    let mut now = unsafe {
        if coarse {
            bpf_ktime_get_coarse_ns()
        } else {
            bpf_ktime_get_ns()
        }
    };
    let event = if found != NO_SLOT {
        let rec = &mut table.slots[found & (PEER_SLOTS - 1)].record;
        let previous = rec.priority;
        let kind = if advert.priority == 0 && previous != 0 {
            event_kind::PRIORITY_ZERO
        } else if advert.priority != previous {
            event_kind::PRIORITY_CHANGED
        } else if advert.interval_cs != rec.interval_cs {
            event_kind::INTERVAL_CHANGED
        } else if cfg.flags & instance_flags::WAKE_ON_ANY != 0 {
            event_kind::WHILE_MASTER
        } else {
            0
        };
        if advert.priority != previous {
            // Keep when the old priority was last heard, across any number
            // of adverts at the new one (see PeerRecord::prev_last_ns).
            rec.prev_last_ns = rec.last_ns;
            rec.prev_priority = previous;
        }
        rec.adverts += 1;
        fill(rec, ip, advert, listed, coarse, cfg.generation);
        // Strictly increasing, so each advert is news to userspace, also two
        // in one coarse tick or after a switch between the clocks.
        if now <= rec.last_ns {
            now = rec.last_ns + 1;
        }
        rec.last_ns = now;
        (kind, previous)
    } else {
        let room = launder(make_room(table, cfg, now, c));
        if room == NO_SLOT {
            return Err(DropReason::PeersFull);
        }
        found = room & (PEER_SLOTS - 1);
        let slot = &mut table.slots[found & (PEER_SLOTS - 1)];
        src.store(&mut slot.addr);
        let rec = &mut slot.record;
        *rec = PeerRecord::default();
        rec.first_ns = now;
        rec.adverts = 1;
        fill(rec, ip, advert, listed, coarse, cfg.generation);
        rec.last_ns = now;
        let kind = if advert.priority == 0 {
            event_kind::PRIORITY_ZERO
        } else {
            event_kind::NEW_PEER
        };
        (kind, advert.priority)
    };
    // Written only now: a rejected advert leaves the table as it was.
    if known.is_none() {
        table.hint = found as u32;
    }

    let (mut kind, previous_priority) = event;
    if kind == 0 && table.events_pending != 0 {
        kind = event_kind::CATCH_UP;
    }
    if kind != 0 {
        let ev = PeerEvent {
            key: PeerKey::in_instance(*key, src.bytes()),
            arrived_ns: now,
            kind,
            priority: advert.priority,
            previous_priority,
            _pad: 0,
            interval_cs: advert.interval_cs,
            _pad2: [0; 2],
            suppressed: 0,
            _pad3: 0,
        };
        emit(table, ev, c);
    }
    Ok(())
}

#[inline(always)]
fn fill(
    rec: &mut PeerRecord,
    ip: &Ip,
    advert: &Advert,
    listed: bool,
    coarse: bool,
    generation: u8,
) {
    rec.interval_cs = advert.interval_cs;
    rec.priority = advert.priority;
    rec.version = advert.version;
    rec.addr_count = advert.addr_count;
    rec.auth_type = advert.auth_type;
    rec.ttl = ip.ttl;
    rec.multicast = ip.multicast as u8;
    rec.auth_data = advert.auth_data.to_ne_bytes();
    rec.flags = if listed { peer_flags::LISTED } else { 0 }
        | if coarse { peer_flags::COARSE_TIME } else { 0 };
    rec.checked_gen = generation;
}

/// Queues `ev` within the instance's event budget; over budget the event is
/// counted, and the next one that goes out says how many were held back.
#[inline(always)]
fn emit(table: &mut PeerTable, mut ev: PeerEvent, c: &mut Counters) {
    if ev.arrived_ns.wrapping_sub(table.event_window_ns) >= EVENT_WINDOW_NS {
        table.event_window_ns = ev.arrived_ns;
        table.event_tokens = EVENT_BURST;
    }
    if table.event_tokens == 0 {
        if ev.kind != event_kind::CATCH_UP {
            table.events_pending += 1;
            table.events_suppressed += 1;
            c.events_suppressed += 1;
        }
        return;
    }
    table.event_tokens -= 1;
    ev.suppressed = table.events_pending;
    table.events_pending = 0;
    if EVENTS.output(ev, 0).is_err() {
        c.events_lost += 1;
    }
}

/// `value` (below 32) written to map memory and read back, for the verifier
/// an unknown number in 0..32. A scan's result compared with or used as an
/// index makes the verifier track every constant the scan produced
/// precisely, which defeats its state pruning (a million instructions and
/// refused); a value read from map memory carries no such history.
#[inline(always)]
fn launder(value: usize) -> usize {
    let Some(w) = SCRATCH.get_ptr_mut(0) else {
        return NO_SLOT;
    };
    // SAFETY: per-CPU memory of this program; volatile so the compiler does
    // not forward the stored constant.
    unsafe {
        core::ptr::write_volatile(&mut (*w).slot, value as u64);
        core::ptr::read_volatile(&(*w).slot) as usize & 31
    }
}

/// The slot holding `src`, or NO_SLOT. A subprogram: only adverts that
/// miss the hint (new sources, a second peer) pay for the scan.
#[inline(never)]
fn find(table: &PeerTable, src: &Addr) -> usize {
    let mut i = 0;
    while i < PEER_SLOTS {
        let slot = &table.slots[i];
        if slot.record.in_use() && Addr::at(&slot.addr) == *src {
            return i;
        }
        i += 1;
    }
    NO_SLOT
}

/// A slot for a new source: free, else stale, else the victim of the
/// eviction policy described at `PeerTable`; NO_SLOT if every slot is
/// protected. The slot is not written here.
///
/// The scans run in a `bpf_loop` callback: the verifier then checks the
/// loop body once, where it would check 32 unrolled iterations for every
/// path that reaches here (180,000 instructions of verification).
#[inline(never)]
fn make_room(table: &mut PeerTable, cfg: &InstanceConfig, now: u64, c: &mut Counters) -> usize {
    let master = Addr::at(&cfg.master);
    let mut scan = RoomScan {
        table: table as *mut PeerTable,
        now,
        master_lo: master.lo,
        master_hi: master.hi,
        master_known: (cfg.flags & instance_flags::MASTER_KNOWN != 0) as u64,
        top: 0,
        top_rank: 0,
        victim: NO_SLOT as u64,
        victim_rank: u64::MAX,
        free: NO_SLOT as u64,
        stale: 0,
    };
    // SAFETY: the callback only reads the table and writes `scan`, which
    // outlives the call.
    unsafe {
        bpf_loop(
            2 * PEER_SLOTS as u32,
            room_step as *mut c_void,
            &mut scan as *mut RoomScan as *mut c_void,
            0,
        )
    };
    let free = scan.free as usize & 31;
    if free != NO_SLOT {
        if scan.stale != 0 {
            table.expired += 1;
            c.peers_expired += 1;
        }
        return free;
    }
    let victim = scan.victim as usize & 31;
    if victim != NO_SLOT {
        table.evicted += 1;
        c.peers_evicted += 1;
    }
    victim
}

/// What `room_step` works on and finds.
#[repr(C)]
struct RoomScan {
    table: *mut PeerTable,
    now: u64,
    master_lo: u64,
    master_hi: u64,
    master_known: u64,
    /// Pass 1: the highest-priority slot so far and its rank.
    top: u64,
    top_rank: u64,
    /// Pass 2: the best victim so far and its rank.
    victim: u64,
    victim_rank: u64,
    /// A free or stale slot (pass 1 stops there), else NO_SLOT.
    free: u64,
    stale: u64,
}

/// One step of `make_room`: steps 0..16 look at slot `step` for a free or
/// stale slot and the highest priority; steps 16..32 at slot `step - 16`
/// for the victim. Returns 1 to stop the loop.
extern "C" fn room_step(step: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is make_room's `scan`; its table pointer is a live map value.
    let scan = unsafe { &mut *(ctx as *mut RoomScan) };
    let table = unsafe { &*scan.table };
    let i = step as usize & (PEER_SLOTS - 1);
    let slot = &table.slots[i];
    let rec = &slot.record;
    if step < PEER_SLOTS as u64 {
        if !rec.in_use() || rec.is_stale(scan.now) {
            scan.free = i as u64;
            scan.stale = rec.in_use() as u64;
            return 1;
        }
        let rank = top_rank_of(rec);
        if rank >= scan.top_rank {
            scan.top = i as u64;
            scan.top_rank = rank;
        }
        return 0;
    }
    let addr = Addr::at(&slot.addr);
    let protected = i as u64 == scan.top
        || rec.flags & peer_flags::LISTED != 0
        || (scan.master_known != 0 && addr.lo == scan.master_lo && addr.hi == scan.master_hi);
    if !protected {
        // One-shot sources go first, the least recently heard first.
        let established = (rec.adverts > 1) as u64;
        let rank = established << 63 | rec.last_ns >> 1;
        if rank < scan.victim_rank {
            scan.victim = i as u64;
            scan.victim_rank = rank;
        }
    }
    0
}

/// Orders peers for "highest priority": priority, then heard more than once,
/// then the earlier first advert.
#[inline(always)]
fn top_rank_of(rec: &PeerRecord) -> u64 {
    let established = (rec.adverts > 1) as u64;
    (rec.priority as u64) << 56 | established << 55 | (!rec.first_ns >> 9)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
