//! A deadline timer on CLOCK_MONOTONIC with nanosecond resolution.
//!
//! tokio's timers round to whole milliseconds, which showed up as ~1 ms of
//! extra takeover latency. The engine's deadlines are already absolute
//! CLOCK_MONOTONIC nanoseconds (the clock of the kernel's advert stamps), so
//! an absolute-time timerfd on that clock fires exactly when they say.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd},
    time::Duration,
};

use nix::sys::{
    time::TimeSpec,
    timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags},
};
use tokio::io::{unix::AsyncFd, Interest};

use crate::time::Mono;

struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

pub struct DeadlineTimer {
    fd: AsyncFd<Fd>,
}

fn io_err(call: &'static str) -> impl Fn(nix::Error) -> io::Error {
    move |e| io::Error::new(io::Error::from(e).kind(), format!("{call}: {e}"))
}

impl DeadlineTimer {
    pub fn new() -> io::Result<Self> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io_err("timerfd_create(CLOCK_MONOTONIC)"))?;
        // SAFETY: `Fd` owns the timerfd for as long as the AsyncFd owns `Fd`.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(fd), Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Self { fd })
    }

    /// Fires at `at` (at once if `at` has passed), or never with `None`.
    pub fn arm(&self, at: Option<Mono>) -> io::Result<()> {
        let timer = &self.fd.get_ref().0;
        match at {
            // A zero it_value would disarm: the earliest real instant is 1 ns.
            Some(at) => timer
                .set(
                    Expiration::OneShot(TimeSpec::from(Duration::from_nanos(at.as_nanos().max(1)))),
                    TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                )
                .map_err(io_err("timerfd_settime")),
            None => timer.unset().map_err(io_err("timerfd_settime(disarm)")),
        }
    }

    /// Waits for the armed deadline.
    pub async fn expired(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let fd: BorrowedFd<'_> = guard.get_inner().0.as_fd();
            match nix::unistd::read(fd.as_raw_fd(), &mut [0u8; 8]) {
                Ok(_) => return Ok(()),
                Err(nix::Error::EAGAIN) => guard.clear_ready(),
                Err(e) => return Err(io_err("read(timerfd)")(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_at_the_absolute_deadline_not_before() {
        let timer = DeadlineTimer::new().unwrap();
        let start = Mono::now();
        let at = start + Duration::from_micros(2_500);
        timer.arm(Some(at)).unwrap();
        timer.expired().await.unwrap();
        assert!(Mono::now() >= at, "fired early");
        // A deadline in the past fires at once.
        timer.arm(Some(Mono(1))).unwrap();
        tokio::time::timeout(Duration::from_secs(1), timer.expired())
            .await
            .expect("past deadline fires at once")
            .unwrap();
    }
}
