//! Monotonic time as the kernel records it.
//!
//! The XDP program stamps adverts with `bpf_ktime_get_ns()`, which is
//! `CLOCK_MONOTONIC`. Userspace uses the same clock so a kernel timestamp and
//! "now" can be compared directly; the engine takes `Mono` as an input and
//! never reads a clock itself.

use std::{fmt, ops::Add, ops::Sub, time::Duration};

/// Nanoseconds of `CLOCK_MONOTONIC`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mono(pub u64);

impl Mono {
    /// Reads `CLOCK_MONOTONIC` (the clock `bpf_ktime_get_ns` uses).
    pub fn now() -> Self {
        use nix::time::{clock_gettime, ClockId};
        // CLOCK_MONOTONIC always exists on Linux; the call cannot fail.
        let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("clock_gettime(CLOCK_MONOTONIC)");
        Mono(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
    }

    pub fn from_nanos(ns: u64) -> Self {
        Mono(ns)
    }

    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Mono) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Mono {
    type Output = Mono;
    fn add(self, d: Duration) -> Mono {
        Mono(self.0.saturating_add(d.as_nanos() as u64))
    }
}

impl Sub<Duration> for Mono {
    type Output = Mono;
    fn sub(self, d: Duration) -> Mono {
        Mono(self.0.saturating_sub(d.as_nanos() as u64))
    }
}

impl fmt::Display for Mono {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Mono(5);
        assert_eq!(t - Duration::from_nanos(10), Mono(0));
        assert_eq!(Mono(3).saturating_since(t), Duration::ZERO);
        assert_eq!((t + Duration::from_micros(1)).as_nanos(), 1005);
    }

    #[test]
    fn now_is_monotonic() {
        let a = Mono::now();
        let b = Mono::now();
        assert!(b >= a);
        assert!(a.0 > 0);
    }
}
