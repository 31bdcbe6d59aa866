//! xvrrpd: a keepalived-compatible VRRP daemon whose receive path is XDP.
//!
//! Data flow (see README): `bpf` loads the XDP recorder and reads its maps,
//! `config` reads keepalived.conf, `engine` is the pure per-instance state
//! machine, `network` does the I/O (adverts, GARP/NA, VIPs over netlink),
//! `daemon` wires them together.

pub mod bpf;
pub mod check;
pub mod command;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod network;
pub mod notify;
pub mod ops;
pub mod packet;
pub mod report;
pub mod status;
pub mod time;
pub mod track;

#[cfg(test)]
mod testing;
