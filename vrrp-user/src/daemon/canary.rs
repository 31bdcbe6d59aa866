//! The blind-recorder canary: does the stack see adverts the recorder
//! does not?
//!
//! A program placed in front of ours can hide adverts from the recorder
//! while the kernel still delivers them: a tc program that ends the chain
//! with TC_ACT_OK, a dispatcher component that stops on XDP_PASS. The
//! recorder then reports a silent segment and a backup would take over
//! from a live master. One raw protocol-112 socket per (interface,
//! family), bound to the interface, receives what the IP stack delivers;
//! it is never in the election's path: the advert thread drains it (a few
//! non-blocking reads) every [`PERIOD`] and when a backup's down timer is
//! due, puts each datagram through the recorder's own checks
//! (`packet::receive`, with the kernel's instance configurations), and
//! compares with the peer tables. An advert the stack received that the
//! recorder has no record of (or only an older one) is *missed*.
//!
//! Missed adverts make an episode: logged at error level when it starts
//! and when it ends, counted in the status and the metrics. While it lasts
//! the missed adverts are given to the controller as kernel records with
//! the time the stack received them, so the instance does not go MASTER
//! because the recorder is blind, and a master steps down for a better
//! one the stack hears. A recorder that sees everything never has a missed
//! advert, and then the canary changes nothing.
//!
//! Limits: the socket sees what netfilter's input hook lets through (an
//! nftables rule dropping protocol 112 hides adverts from it, never from
//! the recorder); a program that drops adverts for both the recorder and
//! the stack is indistinguishable from a dead master, as it is for
//! keepalived; the socket queues what its receive buffer holds (a few
//! hundred adverts) between drains.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv6Addr},
    os::fd::{AsRawFd, OwnedFd},
    time::Duration,
};

use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};
use thiserror::Error;
use vrrp_common::{
    InstanceConfig, InstanceKey, PeerKey, PeerRecord, FAMILY_IPV4, FAMILY_IPV6, IPPROTO_VRRP,
};

use crate::{
    packet::{
        receive::{self, Registry, Verdict},
        Family,
    },
    time::Mono,
};

/// How often the canary is read besides backups' due timers.
pub const PERIOD: Duration = Duration::from_secs(2);
/// A recorder record this much older than the stack's copy of an advert
/// still counts as that advert: the two clocks are read at different
/// points (XDP before the stack's timestamp, tc after it; the coarse clock
/// lags by a tick).
const SLACK: Duration = Duration::from_millis(50);
/// Datagrams read per drain at most (the receive buffer holds fewer).
/// Datagrams read per drain: the drain runs on the real-time thread, and a
/// flood of forged adverts must not keep it busy (RLIMIT_RTTIME).
const MAX_PER_DRAIN: usize = 128;

#[derive(Debug, Error)]
pub enum CanaryError {
    #[error("canary socket on {interface}: {call}: {source}")]
    Socket {
        interface: String,
        call: &'static str,
        #[source]
        source: io::Error,
    },
}

/// One raw socket of one (interface, family).
pub struct Canary {
    pub interface: String,
    pub ifindex: u32,
    pub family: Family,
    socket: OwnedFd,
}

/// An advert as the stack received it, checked as the recorder checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackAdvert {
    pub peer: PeerKey,
    /// When the stack received it (CLOCK_MONOTONIC, from the socket's
    /// receive timestamp).
    pub arrived: Mono,
    pub priority: u8,
    pub interval_cs: u16,
    pub version: u8,
    pub ttl: u8,
    pub multicast: bool,
}

impl StackAdvert {
    /// The advert as a kernel record, for the controller.
    pub fn record(&self) -> PeerRecord {
        PeerRecord {
            last_ns: self.arrived.as_nanos(),
            first_ns: self.arrived.as_nanos(),
            adverts: 1,
            interval_cs: self.interval_cs,
            priority: self.priority,
            version: self.version,
            ttl: self.ttl,
            multicast: u8::from(self.multicast),
            ..Default::default()
        }
    }
}

impl Canary {
    /// Opens the socket (must run in the interface's network namespace).
    pub fn open(interface: &str, ifindex: u32, family: Family) -> Result<Self, CanaryError> {
        let err = |call| {
            let interface = interface.to_owned();
            move |source| CanaryError::Socket {
                interface,
                call,
                source,
            }
        };
        let domain = match family {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        };
        let socket = Socket::new(
            domain,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )
        .map_err(err("socket(SOCK_RAW, 112)"))?;
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(err("setsockopt(SO_BINDTODEVICE)"))?;
        socket
            .set_nonblocking(true)
            .map_err(err("fcntl(O_NONBLOCK)"))?;
        let fd = OwnedFd::from(socket);
        let nix_err = |call| {
            let interface = interface.to_owned();
            move |e: nix::Error| CanaryError::Socket {
                interface,
                call,
                source: io::Error::from(e),
            }
        };
        setsockopt(&fd, sockopt::ReceiveTimestampns, &true)
            .map_err(nix_err("setsockopt(SO_TIMESTAMPNS)"))?;
        if family == Family::V6 {
            setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true)
                .map_err(nix_err("setsockopt(IPV6_RECVPKTINFO)"))?;
            set_int(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)
                .map_err(err("setsockopt(IPV6_RECVHOPLIMIT)"))?;
        }
        Ok(Self {
            interface: interface.to_owned(),
            ifindex,
            family,
            socket: fd,
        })
    }

    /// The key part instances of this canary share.
    pub fn covers(&self, key: &InstanceKey) -> bool {
        key.ifindex == self.ifindex && key.family == map_family(self.family)
    }

    /// Reads what the stack queued since the last drain; returns the
    /// adverts that pass the recorder's checks for an instance `registry`
    /// holds.
    pub fn drain(&self, registry: &impl Registry) -> Vec<StackAdvert> {
        let mut out = Vec::new();
        // The largest advert: IPv6 header, VRRP header, 255 IPv6 addresses.
        let mut buf = [0u8; 14 + 40 + 8 + 255 * 16 + 64];
        let offset = 14 + if self.family == Family::V6 { 40 } else { 0 };
        for _ in 0..MAX_PER_DRAIN {
            let Some(received) = self.recv(&mut buf[offset..]) else {
                break;
            };
            let Some(frame) = self.frame(&mut buf, offset, &received) else {
                continue;
            };
            if let Verdict::Accepted(r) = receive::check(frame, self.ifindex, registry) {
                out.push(StackAdvert {
                    peer: r.peer,
                    arrived: received.arrived,
                    priority: r.advert.priority,
                    interval_cs: r.advert.interval_cs,
                    version: r.advert.version.number(),
                    ttl: r.ttl,
                    multicast: r.multicast,
                });
            }
        }
        out
    }

    /// One datagram, with the receive timestamp and (IPv6) the addresses
    /// and hop limit; `None` when the queue is empty.
    fn recv(&self, into: &mut [u8]) -> Option<Received> {
        // SAFETY: all-zero is a valid sockaddr_in6, msghdr and iovec.
        let mut src: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        let mut control = [0u64; 32];
        let mut iov = libc::iovec {
            iov_base: into.as_mut_ptr() as *mut libc::c_void,
            iov_len: into.len(),
        };
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = &mut src as *mut libc::sockaddr_in6 as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: msg points at live buffers of the sizes it states.
        let n = unsafe { libc::recvmsg(self.socket.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            // Empty (EAGAIN), or a transient error: the next drain reads on.
            return None;
        }
        let mut received = Received {
            len: n as usize,
            arrived: Mono::now(),
            src: (self.family == Family::V6).then(|| Ipv6Addr::from(src.sin6_addr.s6_addr)),
            dst: None,
            hop_limit: None,
        };
        // SAFETY: the kernel filled msg_control up to msg_controllen; the
        // CMSG macros walk it within those bounds.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let data = libc::CMSG_DATA(c);
                match ((*c).cmsg_level, (*c).cmsg_type) {
                    (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                        let ts = std::ptr::read_unaligned(data as *const libc::timespec);
                        received.arrived = realtime_to_mono(ts);
                    }
                    (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                        let info = std::ptr::read_unaligned(data as *const libc::in6_pktinfo);
                        received.dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                    }
                    (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                        let hops = std::ptr::read_unaligned(data as *const libc::c_int);
                        received.hop_limit = Some(hops as u8);
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Some(received)
    }

    /// The datagram as the frame the recorder's checks read: an Ethernet
    /// header in front, and for IPv6 (whose raw sockets give the payload
    /// only) the IPv6 header rebuilt from the source, the destination and
    /// hop limit the kernel reported.
    fn frame<'b>(&self, buf: &'b mut [u8], offset: usize, r: &Received) -> Option<&'b [u8]> {
        let end = offset + r.len;
        buf[..12].fill(0);
        match self.family {
            Family::V4 => {
                buf[12..14].copy_from_slice(&vrrp_common::ETH_P_IP.to_be_bytes());
                Some(&buf[..end])
            }
            Family::V6 => {
                let (src, dst, hops) = (r.src?, r.dst?, r.hop_limit?);
                buf[12..14].copy_from_slice(&vrrp_common::ETH_P_IPV6.to_be_bytes());
                let ip = &mut buf[14..54];
                ip[..4].copy_from_slice(&[0x60, 0, 0, 0]);
                ip[4..6].copy_from_slice(&(r.len as u16).to_be_bytes());
                ip[6] = IPPROTO_VRRP;
                ip[7] = hops;
                ip[8..24].copy_from_slice(&src.octets());
                ip[24..40].copy_from_slice(&dst.octets());
                Some(&buf[..end])
            }
        }
    }
}

struct Received {
    len: usize,
    arrived: Mono,
    src: Option<Ipv6Addr>,
    dst: Option<Ipv6Addr>,
    hop_limit: Option<u8>,
}

fn map_family(f: Family) -> u8 {
    match f {
        Family::V4 => FAMILY_IPV4,
        Family::V6 => FAMILY_IPV6,
    }
}

fn set_int(fd: &OwnedFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: a valid socket and a c_int option value of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &value as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A CLOCK_REALTIME receive timestamp on the CLOCK_MONOTONIC scale.
fn realtime_to_mono(ts: libc::timespec) -> Mono {
    use nix::time::{clock_gettime, ClockId};
    let (Ok(real), Ok(mono)) = (
        clock_gettime(ClockId::CLOCK_REALTIME),
        clock_gettime(ClockId::CLOCK_MONOTONIC),
    ) else {
        return Mono::now();
    };
    let ns = |sec: i64, nsec: i64| i128::from(sec) * 1_000_000_000 + i128::from(nsec);
    let age = (ns(real.tv_sec(), real.tv_nsec()) - ns(ts.tv_sec, ts.tv_nsec)).max(0);
    Mono((ns(mono.tv_sec(), mono.tv_nsec()) - age).max(0) as u64)
}

/// The stack's adverts the recorder missed: no record of their source, or
/// only one older than the stack's copy (by more than [`SLACK`]), in an
/// instance whose recorder has recorded nothing as recent as the stack's
/// latest copy. Only the latest missed advert of each source is kept.
pub fn missed(stack: &[StackAdvert], records: &[(PeerKey, PeerRecord)]) -> Vec<StackAdvert> {
    // A recorder that has recorded an advert of the instance as recent as
    // the stack's latest copy sees the segment: a source it has no record
    // of was evicted (a flood of sources), not hidden from it. Blind is a
    // recorder that records nothing the stack receives.
    let mut newest_stack: HashMap<InstanceKey, Mono> = HashMap::new();
    for s in stack {
        let at = newest_stack.entry(s.peer.instance()).or_insert(s.arrived);
        *at = (*at).max(s.arrived);
    }
    let sees = |instance: InstanceKey| {
        newest_stack.get(&instance).is_some_and(|&newest| {
            records
                .iter()
                .filter(|(k, _)| k.instance() == instance)
                .any(|(_, r)| Mono(r.last_ns) + SLACK >= newest)
        })
    };
    let seeing: Vec<InstanceKey> = newest_stack.keys().copied().filter(|&i| sees(i)).collect();
    let mut latest: HashMap<PeerKey, &StackAdvert> = HashMap::new();
    for s in stack
        .iter()
        .filter(|s| !seeing.contains(&s.peer.instance()))
    {
        let recorded = records
            .iter()
            .find(|(k, _)| *k == s.peer)
            .map(|(_, r)| Mono(r.last_ns));
        let seen = recorded.is_some_and(|at| at + SLACK >= s.arrived);
        if seen {
            continue;
        }
        match latest.get(&s.peer) {
            Some(l) if l.arrived >= s.arrived => {}
            _ => {
                latest.insert(s.peer, s);
            }
        }
    }
    let mut out: Vec<StackAdvert> = latest.into_values().cloned().collect();
    out.sort_by_key(|s| s.arrived);
    out
}

/// One instance's blind episode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Episode {
    pub since: Mono,
    /// The source of the first missed advert.
    pub source: IpAddr,
    pub missed: u64,
}

/// Episodes and counts, over every instance (kept by the advert thread).
#[derive(Clone, Debug, Default)]
pub struct BlindWatch {
    pub episodes_total: u64,
    pub missed_total: u64,
    pub open: HashMap<InstanceKey, Episode>,
}

/// What changed in a drain, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Started {
        key: InstanceKey,
        source: IpAddr,
    },
    Ended {
        key: InstanceKey,
        missed: u64,
        /// The stack still receives adverts (and the recorder records them again).
        recorder_sees: bool,
    },
}

impl BlindWatch {
    /// Records the missed adverts of a drain. `periodic`: the drain covered
    /// a whole [`PERIOD`], so an instance with stack adverts and none
    /// missed, or no stack adverts at all, ends its episode.
    pub fn update(
        &mut self,
        missed: &[StackAdvert],
        stack: &[StackAdvert],
        periodic: bool,
        now: Mono,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for m in missed {
            let key = m.peer.instance();
            self.missed_total += 1;
            match self.open.get_mut(&key) {
                Some(e) => e.missed += 1,
                None => {
                    self.episodes_total += 1;
                    self.open.insert(
                        key,
                        Episode {
                            since: now,
                            source: m.peer.source(),
                            missed: 1,
                        },
                    );
                    changes.push(Change::Started {
                        key,
                        source: m.peer.source(),
                    });
                }
            }
        }
        if periodic {
            let ended: Vec<InstanceKey> = self
                .open
                .keys()
                .filter(|k| !missed.iter().any(|m| m.peer.instance() == **k))
                .copied()
                .collect();
            for key in ended {
                if let Some(e) = self.open.remove(&key) {
                    changes.push(Change::Ended {
                        key,
                        missed: e.missed,
                        recorder_sees: stack.iter().any(|s| s.peer.instance() == key),
                    });
                }
            }
        }
        changes
    }
}

/// A registry of instance configurations read once per drain.
pub struct CachedRegistry<'a, R: Registry> {
    inner: &'a R,
    cache: std::cell::RefCell<HashMap<InstanceKey, Option<InstanceConfig>>>,
}

impl<'a, R: Registry> CachedRegistry<'a, R> {
    pub fn new(inner: &'a R) -> Self {
        Self {
            inner,
            cache: Default::default(),
        }
    }
}

impl<R: Registry> Registry for CachedRegistry<'_, R> {
    fn instance(&self, key: &InstanceKey) -> Option<InstanceConfig> {
        *self
            .cache
            .borrow_mut()
            .entry(*key)
            .or_insert_with(|| self.inner.instance(key))
    }

    fn is_listed(&self, peer: &PeerKey) -> bool {
        self.inner.is_listed(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(vrid: u8, src: &str) -> PeerKey {
        PeerKey::for_source(InstanceKey::new(2, FAMILY_IPV4, vrid), src.parse().unwrap()).unwrap()
    }

    fn stack(vrid: u8, src: &str, at_ms: u64) -> StackAdvert {
        StackAdvert {
            peer: peer(vrid, src),
            arrived: Mono(at_ms * 1_000_000),
            priority: 200,
            interval_cs: 100,
            version: 2,
            ttl: 255,
            multicast: true,
        }
    }

    fn record(at_ms: u64) -> PeerRecord {
        PeerRecord {
            last_ns: at_ms * 1_000_000,
            priority: 200,
            interval_cs: 100,
            ..Default::default()
        }
    }

    #[test]
    fn only_adverts_newer_than_the_record_are_missed() {
        let records = [(peer(51, "192.0.2.1"), record(2_000))];
        // Older than the record, or within the slack: the recorder saw them.
        let seen = [stack(51, "192.0.2.1", 1_000), stack(51, "192.0.2.1", 2_030)];
        assert!(missed(&seen, &records).is_empty());
        // Newer: missed; of one source only the latest is kept.
        let later = [
            stack(51, "192.0.2.1", 3_000),
            stack(51, "192.0.2.1", 4_000),
            stack(52, "192.0.2.9", 3_500),
        ];
        let m = missed(&later, &records);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].peer, peer(52, "192.0.2.9"), "no record at all");
        assert_eq!(m[1].arrived, Mono(4_000_000_000));
        let r = m[1].record();
        assert_eq!(
            (r.last_ns, r.priority, r.interval_cs),
            (4_000_000_000, 200, 100)
        );
    }

    #[test]
    fn a_recorder_that_records_as_recent_an_advert_is_not_blind_to_evicted_sources() {
        // A flood: the recorder's table holds the newest junk, not older junk
        // the stack also received; that is eviction, not blindness.
        let records = [(peer(51, "192.0.2.200"), record(5_000))];
        let seen = [stack(51, "192.0.2.7", 4_990), stack(51, "192.0.2.8", 5_000)];
        assert!(missed(&seen, &records).is_empty());
        // The recorder's newest record is older than the stack's newest copy:
        // blind, and every source it lacks is missed.
        let later = [stack(51, "192.0.2.7", 6_000), stack(51, "192.0.2.8", 7_000)];
        assert_eq!(missed(&later, &records).len(), 2);
    }

    #[test]
    fn an_episode_starts_once_counts_and_ends_on_a_clean_period() {
        let mut w = BlindWatch::default();
        let a = stack(51, "192.0.2.1", 1_000);
        let key = a.peer.instance();
        let one = std::slice::from_ref(&a);
        let c = w.update(one, one, false, Mono(1));
        assert_eq!(
            c,
            vec![Change::Started {
                key,
                source: a.peer.source()
            }]
        );
        // More missed adverts: counted, no new episode; a timer drain ends nothing.
        assert!(w.update(one, one, false, Mono(2)).is_empty());
        assert!(w.update(&[], &[], false, Mono(3)).is_empty());
        assert_eq!((w.episodes_total, w.missed_total), (1, 2));
        // A period in which the recorder had everything the stack had.
        let c = w.update(&[], one, true, Mono(4));
        assert_eq!(
            c,
            vec![Change::Ended {
                key,
                missed: 2,
                recorder_sees: true
            }]
        );
        assert!(w.open.is_empty());
        // The next miss is a new episode.
        w.update(one, one, true, Mono(5));
        assert_eq!(w.episodes_total, 2);
    }
}
