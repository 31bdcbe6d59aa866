//! `xdp_dispatcher`: the multi-program XDP dispatcher of libxdp's protocol
//! (xdp-tools, lib/libxdp/protocol.org), version 2, so xvrrpd and libxdp
//! tools (xdp-filter, xdp-loader, …) share one interface's XDP hook.
//!
//! A dispatcher is never changed once loaded: whoever adds or removes a
//! program loads a new one with the new list in `conf`, attaches every
//! component (a BPF_PROG_TYPE_EXT program) in place of a stub, and swaps it
//! in atomically. libxdp recognises a dispatcher by its name, its one map
//! (this `conf`, read-only to programs) and the magic byte; it joins ours
//! with its own dispatcher object, and we join its with this one. Built like
//! libxdp's `xdp-dispatcher.c`: ten stubs, each a separate function the
//! verifier cannot see through, called while `num_progs_enabled` says so
//! and continued past while the result's bit is in `chain_call_actions`.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{xdp_action, xdp_md},
    helpers::bpf_xdp_adjust_tail,
    macros::xdp,
    programs::XdpContext,
};

/// Slots; libxdp's MAX_DISPATCHER_ACTIONS.
const SLOTS: usize = 10;
/// What an empty stub returns: the top bit of every chain-call mask, so an
/// unused or detached slot always continues the chain.
const STUB_RETVAL: i32 = 31;

/// libxdp's `struct xdp_dispatcher_config`, version 2 (124 bytes). libxdp
/// 1.0 to 1.5 (Debian 12 ships 1.3.1) use this version; 1.6 and later
/// write version 3 and refuse to add to a version 2 dispatcher.
#[repr(C)]
pub struct DispatcherConfig {
    pub magic: u8,
    pub dispatcher_version: u8,
    pub num_progs_enabled: u8,
    pub is_xdp_frags: u8,
    pub chain_call_actions: [u32; SLOTS],
    pub run_prios: [u32; SLOTS],
    pub program_flags: [u32; SLOTS],
}

/// Filled in by the loader before the program is loaded (a frozen,
/// read-only map then: the verifier prunes the unused slots).
#[no_mangle]
static conf: DispatcherConfig = DispatcherConfig {
    magic: 0,
    dispatcher_version: 0,
    num_progs_enabled: 0,
    is_xdp_frags: 0,
    chain_call_actions: [0; SLOTS],
    run_prios: [0; SLOTS],
    program_flags: [0; SLOTS],
};

/// The stubs components replace. Each keeps its context argument, touches
/// packet data as far as the verifier is concerned (`bpf_xdp_adjust_tail`
/// by 0, as libxdp's stubs do, so a component that changes packet data may
/// replace it), and returns a value the compiler and the verifier cannot know.
macro_rules! stubs {
    ($($name:ident),*) => {$(
        /// # Safety
        /// `ctx` is the program's context (the dispatcher passes its own).
        #[no_mangle]
        #[inline(never)]
        pub unsafe extern "C" fn $name(ctx: *mut xdp_md) -> i32 {
            let ret = core::hint::black_box(STUB_RETVAL);
            if ctx.is_null() {
                return xdp_action::XDP_ABORTED as i32;
            }
            // SAFETY: ctx is the program's context; a delta of 0 changes nothing.
            unsafe { bpf_xdp_adjust_tail(ctx, 0) };
            ret
        }
    )*};
}
stubs!(prog0, prog1, prog2, prog3, prog4, prog5, prog6, prog7, prog8, prog9);

#[inline(always)]
fn read<T: Copy>(field: &T) -> T {
    // SAFETY: a field of `conf`; volatile so the loads stay and the
    // verifier, not the compiler, decides with the loaded values.
    unsafe { core::ptr::read_volatile(field) }
}

#[xdp]
pub fn xdp_dispatcher(ctx: XdpContext) -> u32 {
    let ctx = ctx.ctx;
    let enabled = read(&conf.num_progs_enabled) as usize;
    macro_rules! slot {
        ($i:literal, $stub:ident) => {
            if enabled < $i + 1 {
                return xdp_action::XDP_PASS;
            }
            // SAFETY: our own context.
            let ret = unsafe { $stub(ctx) };
            if 1u32.wrapping_shl(ret as u32) & read(&conf.chain_call_actions[$i]) == 0 {
                return ret as u32;
            }
        };
    }
    slot!(0, prog0);
    slot!(1, prog1);
    slot!(2, prog2);
    slot!(3, prog3);
    slot!(4, prog4);
    slot!(5, prog5);
    slot!(6, prog6);
    slot!(7, prog7);
    slot!(8, prog8);
    slot!(9, prog9);
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
