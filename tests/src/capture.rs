//! An observer's view of the wire: an AF_PACKET socket in a namespace that
//! time-stamps every IPv4 VRRP advert and gratuitous ARP in the kernel
//! (SO_TIMESTAMPNS), for the lab benchmarks (takeover time, advert gaps
//! under load, steady state) and the forgery suite (answers to a storm).
//!
//! The time stamp is taken when the frame is received, in the sender's send
//! path on a veth, so it stays exact while this process is starved: the
//! socket's receive buffer is made large enough to hold tens of seconds of
//! adverts, and the kernel's drop count is kept so a lossy capture is known.

use std::{
    fs, io,
    net::Ipv4Addr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

/// Receive buffer asked for (SO_RCVBUFFORCE; the kernel doubles it): about
/// a minute of two nodes' adverts at 10 ms while the reader is starved.
const RECEIVE_BUFFER: libc::c_int = 16 << 20;
/// How often the reader folds the kernel's drop counter into [`Capture::drops`].
const STATISTICS_EVERY: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug)]
pub struct Advert {
    /// Kernel receive time stamp, CLOCK_REALTIME, nanoseconds.
    pub ts: i64,
    pub src: Ipv4Addr,
    pub vrid: u8,
    pub priority: u8,
}

/// A gratuitous ARP (sender IP = target IP) seen on the wire.
#[derive(Clone, Copy, Debug)]
pub struct Garp {
    /// Kernel receive time stamp, CLOCK_REALTIME, nanoseconds.
    pub ts: i64,
    pub ip: Ipv4Addr,
}

/// CLOCK_REALTIME in nanoseconds, the clock of [`Advert::ts`].
pub fn realtime_ns() -> i64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .expect("CLOCK_REALTIME is always readable");
    t.tv_sec() * 1_000_000_000 + t.tv_nsec()
}

fn check(r: libc::c_int, what: &str) -> Result<libc::c_int> {
    if r < 0 {
        bail!("{what}: {}", io::Error::last_os_error());
    }
    Ok(r)
}

fn set_int_option(
    fd: &OwnedFd,
    level: i32,
    name: i32,
    value: libc::c_int,
    what: &str,
) -> Result<()> {
    // SAFETY: value is a live c_int of the stated size.
    check(
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                &value as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            )
        },
        what,
    )?;
    Ok(())
}

/// A classic BPF filter that drops frames from `mac` in the kernel, so a
/// flood from that MAC costs the capture nothing.
fn ignore_mac_filter(fd: &OwnedFd, mac: [u8; 6]) -> Result<()> {
    let high = u32::from(u16::from_be_bytes([mac[0], mac[1]]));
    let low = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let program = [
        // ldh [6]: the source MAC's first two bytes
        op(libc::BPF_LD | libc::BPF_H | libc::BPF_ABS, 0, 0, 6),
        // jeq #high, next, accept
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 3, high),
        // ld [8]: its last four
        op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 8),
        // jeq #low, drop, accept
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, low),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, 0xffff),
    ];
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog and the program it points to are live for the call.
    check(
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                &prog as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::sock_fprog>() as u32,
            )
        },
        "SO_ATTACH_FILTER",
    )?;
    Ok(())
}

/// Opens the socket in the current thread's network namespace, bound to `interface`.
fn packet_socket(interface: &str, ignore: Option<[u8; 6]>) -> Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain syscalls on owned descriptors and local structs.
    let fd = unsafe {
        let fd = check(
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                proto as i32,
            ),
            "socket(AF_PACKET)",
        )?;
        let fd = OwnedFd::from_raw_fd(fd);
        // Before bind, so no unfiltered frame is queued.
        if let Some(mac) = ignore {
            ignore_mac_filter(&fd, mac)?;
        }
        let name = std::ffi::CString::new(interface)?;
        let ifindex = libc::if_nametoindex(name.as_ptr());
        if ifindex == 0 {
            bail!(
                "if_nametoindex({interface}): {}",
                io::Error::last_os_error()
            );
        }
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        check(
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            ),
            "bind(AF_PACKET)",
        )?;
        fd
    };
    set_int_option(
        &fd,
        libc::SOL_SOCKET,
        libc::SO_TIMESTAMPNS,
        1,
        "SO_TIMESTAMPNS",
    )?;
    set_int_option(
        &fd,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        RECEIVE_BUFFER,
        "SO_RCVBUFFORCE",
    )?;
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: tv is a live timeval of the stated size.
    check(
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            )
        },
        "SO_RCVTIMEO",
    )?;
    Ok(fd)
}

/// Frames the kernel dropped since the last call (PACKET_STATISTICS resets it).
fn kernel_drops(fd: &OwnedFd) -> u64 {
    let mut stats = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: stats and len are live out-parameters of the stated size.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            &mut stats as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        0
    } else {
        stats.tp_drops as u64
    }
}

/// Parses an Ethernet frame; Some for an IPv4 VRRP advert.
pub fn parse(frame: &[u8], ts: i64) -> Option<Advert> {
    if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = (ip[0] & 0x0f) as usize * 4;
    if ip[0] >> 4 != 4 || ip[9] != 112 || ip.len() < ihl + 8 {
        return None;
    }
    let vrrp = &ip[ihl..];
    if vrrp[0] & 0x0f != 1 {
        return None; // not an ADVERTISEMENT
    }
    Some(Advert {
        ts,
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        vrid: vrrp[1],
        priority: vrrp[2],
    })
}

/// Parses an Ethernet frame; Some for a gratuitous ARP (request or reply
/// whose sender and target IP are the same).
pub fn parse_garp(frame: &[u8], ts: i64) -> Option<Garp> {
    if frame.len() < 14 + 28 || frame[12..14] != [0x08, 0x06] {
        return None;
    }
    let arp = &frame[14..];
    // Ethernet / IPv4 only.
    if arp[0..2] != [0, 1] || arp[2..4] != [0x08, 0x00] || arp[4] != 6 || arp[5] != 4 {
        return None;
    }
    let sender = &arp[14..18];
    let target = &arp[24..28];
    if sender != target {
        return None;
    }
    Some(Garp {
        ts,
        ip: Ipv4Addr::new(sender[0], sender[1], sender[2], sender[3]),
    })
}

fn capture_loop(
    fd: OwnedFd,
    adverts: Arc<Mutex<Vec<Advert>>>,
    garps: Arc<Mutex<Vec<Garp>>>,
    stop: Arc<AtomicBool>,
    drops: Arc<AtomicU64>,
) {
    let mut buf = [0u8; 2048];
    let mut control = [0u64; 32];
    let mut statistics_at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if statistics_at.elapsed() >= STATISTICS_EVERY {
            drops.fetch_add(kernel_drops(&fd), Ordering::Relaxed);
            statistics_at = Instant::now();
        }
        // SAFETY: every pointer refers to a live local buffer of the stated size.
        let (n, ts, pkttype) = unsafe {
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr() as *mut libc::c_void,
                iov_len: buf.len(),
            };
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_name = &mut sll as *mut _ as *mut libc::c_void;
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = std::mem::size_of_val(&control);
            let n = libc::recvmsg(fd.as_raw_fd(), &mut msg, 0);
            if n < 0 {
                continue; // timeout (checks `stop`) or EINTR
            }
            let mut ts = None;
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let t: libc::timespec =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                    ts = Some(t.tv_sec * 1_000_000_000 + t.tv_nsec);
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
            (n as usize, ts, sll.sll_pkttype)
        };
        if pkttype == libc::PACKET_OUTGOING {
            continue;
        }
        let ts = ts.unwrap_or_else(realtime_ns);
        let frame = &buf[..n.min(buf.len())];
        if let Some(a) = parse(frame, ts) {
            adverts.lock().unwrap().push(a);
        } else if let Some(g) = parse_garp(frame, ts) {
            garps.lock().unwrap().push(g);
        }
    }
    drops.fetch_add(kernel_drops(&fd), Ordering::Relaxed);
}

/// Adverts seen on one interface of a namespace, until dropped.
pub struct Capture {
    adverts: Arc<Mutex<Vec<Advert>>>,
    garps: Arc<Mutex<Vec<Garp>>>,
    stop: Arc<AtomicBool>,
    drops: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts capturing on `interface` of the namespace `/run/netns/<netns>`.
    pub fn start(netns: &str, interface: &str) -> Result<Self> {
        Self::start_with(netns, interface, None)
    }

    /// The same, leaving out every frame from `mac` in the kernel (a flood
    /// of forged frames from it would otherwise keep the reader busy).
    pub fn start_ignoring(netns: &str, interface: &str, mac: [u8; 6]) -> Result<Self> {
        Self::start_with(netns, interface, Some(mac))
    }

    fn start_with(netns: &str, interface: &str, ignore: Option<[u8; 6]>) -> Result<Self> {
        let adverts = Arc::new(Mutex::new(Vec::new()));
        let garps = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let path = format!("/run/netns/{netns}");
        let interface = interface.to_owned();
        let (a, g, s, d) = (adverts.clone(), garps.clone(), stop.clone(), drops.clone());
        let thread = thread::spawn(move || {
            let setup = || -> Result<OwnedFd> {
                let ns = fs::File::open(&path).with_context(|| format!("opening {path}"))?;
                // setns affects only this thread (CLONE_NEWNET is per-thread).
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .with_context(|| format!("setns({path})"))?;
                packet_socket(&interface, ignore)
            };
            match setup() {
                Ok(fd) => {
                    let _ = ready_tx.send(Ok(()));
                    capture_loop(fd, a, g, s, d);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .context("capture thread did not start")??;
        Ok(Self {
            adverts,
            garps,
            stop,
            drops,
            thread: Some(thread),
        })
    }

    /// Adverts received at or after `ts` (CLOCK_REALTIME ns).
    pub fn since(&self, ts: i64) -> Vec<Advert> {
        self.between(ts, i64::MAX)
    }

    /// Adverts received in `from..=to` (CLOCK_REALTIME ns), in arrival order.
    pub fn between(&self, from: i64, to: i64) -> Vec<Advert> {
        self.adverts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.ts >= from && a.ts <= to)
            .copied()
            .collect()
    }

    /// Gratuitous ARPs received in `from..=to` (CLOCK_REALTIME ns), in arrival order.
    pub fn garps_between(&self, from: i64, to: i64) -> Vec<Garp> {
        self.garps
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.ts >= from && g.ts <= to)
            .copied()
            .collect()
    }

    /// Forgets what was received before `ts`, to bound memory on long runs.
    pub fn forget_before(&self, ts: i64) {
        self.adverts.lock().unwrap().retain(|a| a.ts >= ts);
        self.garps.lock().unwrap().retain(|g| g.ts >= ts);
    }

    /// Frames the kernel dropped for want of buffer space so far (counted
    /// every 100 ms while frames arrive).
    pub fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
