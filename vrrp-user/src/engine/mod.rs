//! The pure VRRP state machine, one per instance.
//!
//! No sockets, no clocks, no tasks: the daemon feeds [`Input`]s with the
//! current [`Mono`](crate::time::Mono) time and carries out the returned
//! [`Action`]s, calling `handle(Input::Timer, now)` at
//! [`Instance::next_deadline`]. This is what lets the RFC timings be tested
//! to the nanosecond on a simulated clock.
//!
//! Contract with the daemon: feed every advert record read from the kernel
//! before a `Timer` for the same moment, and pass the kernel arrival time in
//! [`AdvertSeen::arrived`]; records may come out of order (older ones are
//! ignored as stale, never shorten or stretch a timer).
//!
//! - [`params`]: what an instance is configured with.
//! - [`timers`]: Skew_Time and Master_Down_Interval.
//! - [`instance`]: the state machine.

pub mod instance;
pub mod params;
pub mod timers;

pub use instance::{
    Action, AdvertSeen, GarpBurst, GarpCause, IgnoreReason, Input, Instance, Reason, State,
};
pub use params::{
    GarpParams, InstanceParams, ParamsError, DEFAULT_PRIORITY, PRIORITY_OWNER, PRIORITY_STOP,
};

#[cfg(test)]
mod tests;
