//! Real-time scheduling for the advert path: keepalived's `vrrp_rt_priority`,
//! `vrrp_priority`, `vrrp_no_swap` and `vrrp_rlimit_rttime`.
//!
//! keepalived runs its whole VRRP process real-time when asked to; xvrrpd
//! does by default, but only for the two threads that must not wait: the
//! advert thread (timers, decisions, sends) at the configured priority and
//! the executor thread (VIPs, GARP/NA) one below it. Both set
//! SCHED_RESET_ON_FORK, so scripts and notifies start with normal
//! scheduling. Trackers, reloads and logs stay on a normal thread.

use std::io;

use tracing::{info, warn};

use crate::config::GlobalDefs;

/// SCHED_FIFO priority of the advert thread unless `vrrp_rt_priority` says
/// otherwise: below the kernel's threaded interrupt handlers (50), so the
/// NIC is still served first, and above every normal process.
pub const DEFAULT_RT_PRIORITY: u8 = 40;
/// keepalived's default RLIMIT_RTTIME (µs of CPU without a blocking call).
pub const DEFAULT_RLIMIT_RTTIME_US: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtSettings {
    /// SCHED_FIFO priority of the advert thread; 0 = normal scheduling.
    pub priority: u8,
    /// Hard RLIMIT_RTTIME in µs (the soft limit is half: a SIGXCPU warning first).
    pub rlimit_rttime_us: u32,
    /// mlockall: page faults must not stall the advert path.
    pub lock_memory: bool,
    /// `vrrp_priority`: nice value for the whole daemon.
    pub nice: Option<i8>,
}

impl RtSettings {
    pub fn from_global(g: &GlobalDefs) -> Self {
        let priority = g.vrrp_rt_priority.unwrap_or(DEFAULT_RT_PRIORITY);
        RtSettings {
            priority,
            rlimit_rttime_us: g.vrrp_rlimit_rttime.unwrap_or(DEFAULT_RLIMIT_RTTIME_US),
            lock_memory: priority > 0 || g.vrrp_no_swap,
            nice: g.vrrp_priority,
        }
    }

    /// The executor thread's priority: just below the advert thread's.
    pub fn executor_priority(&self) -> u8 {
        self.priority
            .saturating_sub(1)
            .max(u8::from(self.priority > 0))
    }
}

fn os_err(call: &'static str) -> impl Fn(nix::Error) -> io::Error {
    move |e| io::Error::new(io::Error::from(e).kind(), format!("{call}: {e}"))
}

/// Process-wide settings, applied before any thread starts (threads inherit
/// the nice value; rlimits and memory locks are per process). Failures are
/// logged: a daemon without them still works, just less well under load.
pub fn prepare_process(s: &RtSettings) {
    if let Some(nice) = s.nice {
        // SAFETY: setpriority has no memory preconditions.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, libc::c_int::from(nice)) };
        if rc != 0 {
            warn!(nice, error = %io::Error::last_os_error(), "setpriority (vrrp_priority)");
        } else {
            info!(nice, "process priority set (vrrp_priority)");
        }
    }
    if s.priority > 0 {
        let hard = u64::from(s.rlimit_rttime_us);
        let limit = nix::sys::resource::setrlimit(
            nix::sys::resource::Resource::RLIMIT_RTTIME,
            hard / 2,
            hard,
        );
        if let Err(e) = limit {
            warn!(error = %e, "setrlimit(RLIMIT_RTTIME) (vrrp_rlimit_rttime)");
        }
    }
    if s.lock_memory {
        use nix::sys::mman::{mlockall, MlockAllFlags};
        match mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
            Ok(()) => info!("memory locked (vrrp_no_swap)"),
            Err(e) => warn!(error = %e, "mlockall (vrrp_no_swap): pages may be swapped out"),
        }
    }
}

/// Makes the calling thread SCHED_FIFO at `priority` with
/// SCHED_RESET_ON_FORK (children start with normal scheduling).
pub fn make_current_thread_realtime(priority: u8) -> io::Result<()> {
    if priority == 0 {
        return Ok(());
    }
    let param = libc::sched_param {
        sched_priority: libc::c_int::from(priority),
    };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
    let rc = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    if rc != 0 {
        return Err(os_err("sched_setscheduler(SCHED_FIFO)")(nix::Error::last()));
    }
    Ok(())
}

/// Runs `f` with the calling thread at normal scheduling, then restores
/// SCHED_FIFO if it had it. For rare, CPU-heavy system calls on a real-time
/// thread (loading a BPF program runs the verifier for tens of ms): under
/// RLIMIT_RTTIME, that long without blocking kills the daemon.
pub fn at_normal_priority<T>(f: impl FnOnce() -> T) -> T {
    let (policy, priority) = current_thread_policy();
    let realtime = policy & !libc::SCHED_RESET_ON_FORK == libc::SCHED_FIFO;
    if realtime {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
    }
    let out = f();
    if realtime {
        if let Err(e) = make_current_thread_realtime(priority as u8) {
            warn!(error = %e, "restoring real-time scheduling after a slow call");
        }
    }
    out
}

/// The calling thread's scheduling policy and priority (for logs and tests).
pub fn current_thread_policy() -> (i32, i32) {
    // SAFETY: pid 0 is the calling thread; sched_getparam writes `param`.
    unsafe {
        let policy = libc::sched_getscheduler(0);
        let mut param = libc::sched_param { sched_priority: 0 };
        libc::sched_getparam(0, &mut param);
        (policy, param.sched_priority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_calls_run_at_normal_priority_and_fifo_comes_back() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        std::thread::spawn(|| {
            make_current_thread_realtime(3).unwrap();
            let inside = at_normal_priority(current_thread_policy);
            assert_eq!(inside.0 & !libc::SCHED_RESET_ON_FORK, libc::SCHED_OTHER);
            let after = current_thread_policy();
            assert_eq!(after.0 & !libc::SCHED_RESET_ON_FORK, libc::SCHED_FIFO);
            assert_eq!(after.1, 3);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn defaults_and_keepalived_keywords() {
        let g = GlobalDefs::default();
        let s = RtSettings::from_global(&g);
        assert_eq!(s.priority, DEFAULT_RT_PRIORITY);
        assert!(s.lock_memory);
        assert_eq!(s.rlimit_rttime_us, 10_000);
        assert_eq!(s.executor_priority(), DEFAULT_RT_PRIORITY - 1);
        let off = RtSettings::from_global(&GlobalDefs {
            vrrp_rt_priority: Some(0),
            ..GlobalDefs::default()
        });
        assert_eq!((off.priority, off.lock_memory), (0, false));
        assert_eq!(off.executor_priority(), 0);
        let one = RtSettings::from_global(&GlobalDefs {
            vrrp_rt_priority: Some(1),
            vrrp_no_swap: true,
            vrrp_rlimit_rttime: Some(20_000),
            ..GlobalDefs::default()
        });
        // The executor never drops to normal scheduling while RT is on.
        assert_eq!(one.executor_priority(), 1);
        assert_eq!(one.rlimit_rttime_us, 20_000);
    }

    #[test]
    fn a_realtime_thread_does_not_pass_it_to_its_children() {
        crate::testing::require_root!();
        let out = std::thread::spawn(|| {
            make_current_thread_realtime(10).unwrap();
            let (policy, prio) = current_thread_policy();
            // Spawned from this thread: the child's policy must be normal.
            let shell = std::process::Command::new("sh")
                .args(["-c", "chrt -p $$"])
                .output()
                .unwrap();
            (
                policy,
                prio,
                String::from_utf8_lossy(&shell.stdout).into_owned(),
            )
        })
        .join()
        .unwrap();
        assert_eq!(out.0 & !libc::SCHED_RESET_ON_FORK, libc::SCHED_FIFO);
        assert_eq!(out.1, 10);
        assert!(out.2.contains("SCHED_OTHER"), "{}", out.2);
    }
}
