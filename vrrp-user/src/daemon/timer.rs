//! A deadline timer on CLOCK_MONOTONIC with nanosecond resolution, for the
//! advert thread's epoll loop.
//!
//! The engine's deadlines are absolute CLOCK_MONOTONIC nanoseconds (the
//! clock of the kernel's advert stamps), so an absolute-time timerfd on that
//! clock fires exactly when they say (tokio's timers round to whole
//! milliseconds, which showed up as ~1 ms of extra takeover latency).

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd},
    time::Duration,
};

use nix::sys::{
    time::TimeSpec,
    timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags},
};

use crate::time::Mono;

pub struct DeadlineTimer {
    fd: TimerFd,
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
        Ok(Self { fd })
    }

    /// Fires at `at` (at once if `at` has passed), or never with `None`.
    pub fn arm(&self, at: Option<Mono>) -> io::Result<()> {
        match at {
            // A zero it_value would disarm: the earliest real instant is 1 ns.
            Some(at) => self
                .fd
                .set(
                    Expiration::OneShot(TimeSpec::from(Duration::from_nanos(at.as_nanos().max(1)))),
                    TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                )
                .map_err(io_err("timerfd_settime")),
            None => self.fd.unset().map_err(io_err("timerfd_settime(disarm)")),
        }
    }

    /// Consumes an expiry; `false` if the timer had not fired (a spurious wake).
    pub fn take_expiry(&self) -> io::Result<bool> {
        match nix::unistd::read(self.fd.as_fd().as_raw_fd(), &mut [0u8; 8]) {
            Ok(_) => Ok(true),
            Err(nix::Error::EAGAIN) => Ok(false),
            Err(e) => Err(io_err("read(timerfd)")(e)),
        }
    }
}

impl AsFd for DeadlineTimer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_readable(timer: &DeadlineTimer, ms: u16) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(timer.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(ms)).unwrap() == 1
    }

    #[test]
    fn fires_at_the_absolute_deadline_not_before() {
        let timer = DeadlineTimer::new().unwrap();
        let start = Mono::now();
        let at = start + Duration::from_micros(2_500);
        timer.arm(Some(at)).unwrap();
        assert!(wait_readable(&timer, 1000));
        assert!(timer.take_expiry().unwrap());
        assert!(Mono::now() >= at, "fired early");
        // Consumed: nothing more to read.
        assert!(!timer.take_expiry().unwrap());
        // A deadline in the past fires at once; None disarms.
        timer.arm(Some(Mono(1))).unwrap();
        assert!(wait_readable(&timer, 1000));
        assert!(timer.take_expiry().unwrap());
        timer
            .arm(Some(Mono::now() + Duration::from_millis(5)))
            .unwrap();
        timer.arm(None).unwrap();
        assert!(!wait_readable(&timer, 20));
    }
}
