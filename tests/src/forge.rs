//! Forged adverts on the wire, for the fault and forgery suite: frames are
//! built once with [`xvrrpd::packet::build_frame`], then varied in place
//! (source address, VRID) with the checksums updated incrementally, and sent
//! from a namespace through an AF_PACKET socket, a batch per `sendmmsg`, at
//! a paced rate of up to some 100k frames per second.
//!
//! Everything random here comes from a [`Rng`] with a printed seed, so a
//! failing run can be repeated (`FORGE_SEED=...`).

use std::{
    fs, io,
    net::{IpAddr, Ipv4Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use xvrrpd::packet::{build_frame, Advert, FrameSpec};

/// Source MAC of every forged frame, so an observer can leave them out
/// (see [`crate::capture::Capture::start_ignoring`]).
pub const FORGER_MAC: [u8; 6] = [0x02, 0x66, 0x66, 0x66, 0x66, 0x66];

/// Frames per `sendmmsg`: small enough that a burst fits the receiving
/// CPU's backlog (netdev_max_backlog, 1000) across the bridge's copies.
const BATCH: usize = 32;

const ETH_HEADER_LEN: usize = 14;

/// One forged advert and where its variable fields sit.
#[derive(Clone, Debug)]
pub struct Template {
    frame: Vec<u8>,
    /// Offset of the IPv4 header.
    ip: usize,
    /// Offset of the VRRP PDU.
    vrrp: usize,
    /// The VRRP checksum covers the pseudo-header (v3 without
    /// `v3_checksum_as_v2`), so it changes with the source address.
    pseudo: bool,
}

impl Template {
    /// `advert` wrapped as `spec` says, from [`FORGER_MAC`]. IPv4 only: the
    /// variations rewrite an IPv4 header.
    pub fn new(spec: &FrameSpec, advert: &Advert) -> Result<Self> {
        if !spec.src_ip.is_ipv4() {
            bail!("forged floods are IPv4 only (source {})", spec.src_ip);
        }
        let spec = FrameSpec {
            src_mac: FORGER_MAC,
            ..spec.clone()
        };
        let frame = build_frame(&spec, advert).context("building the forged frame")?;
        let ip = ETH_HEADER_LEN;
        let vrrp = ip + usize::from(frame[ip] & 0x0f) * 4;
        let pseudo = advert.version == xvrrpd::packet::Version::V3 && !spec.v3_checksum_as_v2;
        Ok(Self {
            frame,
            ip,
            vrrp,
            pseudo,
        })
    }

    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// Writes the template into `buf` (the template's length) with another
    /// source address and VRID, both checksums kept right.
    pub fn write_varied(&self, buf: &mut [u8], src: Ipv4Addr, vrid: u8) {
        buf.copy_from_slice(&self.frame);
        let (ip, vrrp) = (self.ip, self.vrrp);
        let old_src = [
            u16::from_be_bytes([buf[ip + 12], buf[ip + 13]]),
            u16::from_be_bytes([buf[ip + 14], buf[ip + 15]]),
        ];
        let o = src.octets();
        let new_src = [
            u16::from_be_bytes([o[0], o[1]]),
            u16::from_be_bytes([o[2], o[3]]),
        ];
        buf[ip + 12..ip + 16].copy_from_slice(&o);
        let ip_sum = u16::from_be_bytes([buf[ip + 10], buf[ip + 11]]);
        let ip_sum = update_checksum(ip_sum, &old_src, &new_src);
        buf[ip + 10..ip + 12].copy_from_slice(&ip_sum.to_be_bytes());

        let old_head = u16::from_be_bytes([buf[vrrp], buf[vrrp + 1]]);
        buf[vrrp + 1] = vrid;
        let new_head = u16::from_be_bytes([buf[vrrp], buf[vrrp + 1]]);
        let mut vrrp_sum = u16::from_be_bytes([buf[vrrp + 6], buf[vrrp + 7]]);
        vrrp_sum = update_checksum(vrrp_sum, &[old_head], &[new_head]);
        if self.pseudo {
            vrrp_sum = update_checksum(vrrp_sum, &old_src, &new_src);
        }
        buf[vrrp + 6..vrrp + 8].copy_from_slice(&vrrp_sum.to_be_bytes());
    }
}

/// RFC 1624 eqn. 3: the checksum after 16-bit words `old` became `new`.
fn update_checksum(checksum: u16, old: &[u16], new: &[u16]) -> u16 {
    let mut sum = u32::from(!checksum);
    for (&m, &m_new) in old.iter().zip(new) {
        sum += u32::from(!m) + u32::from(m_new);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// xorshift64*: reproducible from its seed, and fast enough to vary every
/// frame of a flood.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from `FORGE_SEED` if set, else from the clock and the PID;
    /// the seed is printed so a failing run can be repeated.
    pub fn from_env(what: &str) -> Self {
        let seed = std::env::var("FORGE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32)
            });
        eprintln!("{what}: random seed {seed} (FORGE_SEED={seed} repeats it)");
        Self::new(seed)
    }

    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0; the bias is negligible for small n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `from..to`.
    pub fn duration(&mut self, from: Duration, to: Duration) -> Duration {
        let span = (to - from).as_micros() as u64;
        from + Duration::from_micros(self.below(span.max(1)))
    }

    /// A source in 10.0.0.0/8: never martian, never one of the lab's
    /// addresses (192.0.2.0/24), and almost never the same twice.
    pub fn source(&mut self) -> Ipv4Addr {
        let n = self.next_u64() as u32;
        Ipv4Addr::from(0x0a00_0000 | (n & 0x00ff_ffff))
    }
}

/// The rate the flood cases ask for: `FORGE_PPS`, else 100,000 frames per
/// second (what the probe sent). Raise it to see how far a host goes.
pub fn flood_rate() -> u64 {
    std::env::var("FORGE_PPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(100_000)
}

/// What a flood sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct FloodReport {
    /// Frames the kernel took.
    pub sent: u64,
    /// Frames it refused (ENOBUFS: the device or backlog was full).
    pub refused: u64,
    pub elapsed: Duration,
}

impl FloodReport {
    pub fn pps(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for FloodReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} frames in {:.2} s = {:.0} pps ({} refused by the kernel)",
            self.sent,
            self.elapsed.as_secs_f64(),
            self.pps(),
            self.refused
        )
    }
}

/// An AF_PACKET socket in a namespace, bound to one interface, that sends
/// whole Ethernet frames.
pub struct Forger {
    fd: OwnedFd,
}

impl Forger {
    /// Opens the socket in `/run/netns/<netns>` (a socket stays in the
    /// namespace it was made in, so it is made in a thread that entered it).
    pub fn open(netns: &str, interface: &str) -> Result<Self> {
        let path = format!("/run/netns/{netns}");
        let interface = interface.to_owned();
        thread::spawn(move || -> Result<Self> {
            let ns = fs::File::open(&path).with_context(|| format!("opening {path}"))?;
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("setns({path})"))?;
            Self::open_here(&interface)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the thread opening the forger's socket panicked"))?
    }

    fn open_here(interface: &str) -> Result<Self> {
        // Protocol 0: this socket only sends, and receives nothing.
        // SAFETY: plain syscalls on owned descriptors and local structs.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                bail!("socket(AF_PACKET): {}", io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
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
            sll.sll_ifindex = ifindex as i32;
            if libc::bind(
                fd.as_raw_fd(),
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            ) < 0
            {
                bail!(
                    "bind(AF_PACKET, {interface}): {}",
                    io::Error::last_os_error()
                );
            }
            // Straight to the driver: no qdisc, and no copy to this
            // namespace's own packet taps.
            let one: libc::c_int = 1;
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
            Ok(Self { fd })
        }
    }

    /// Sends one frame.
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: frame is a live buffer of the stated length.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
            )
        };
        if n < 0 {
            bail!("send(AF_PACKET): {}", io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends `frames` with one `sendmmsg`; returns how many the kernel took
    /// and whether it refused the next one for want of room (ENOBUFS).
    fn send_batch(&self, frames: &mut [Vec<u8>]) -> Result<(usize, bool)> {
        let mut iovs: Vec<libc::iovec> = frames
            .iter_mut()
            .map(|f| libc::iovec {
                iov_base: f.as_mut_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: an all-zero msghdr is valid; the iovec outlives the call.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = iov;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        // SAFETY: msgs and the buffers they point to are live for the call.
        let n =
            unsafe { libc::sendmmsg(self.fd.as_raw_fd(), msgs.as_mut_ptr(), msgs.len() as u32, 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) => Ok((0, true)),
                _ => Err(err).context("sendmmsg(AF_PACKET)"),
            };
        }
        Ok((n as usize, (n as usize) < frames.len()))
    }

    /// Sends frames made by `vary` (which rewrites a buffer holding the
    /// template) at `rate` frames per second until `duration` passes or
    /// `stop` is set. A refused frame is counted and skipped: junk lost on
    /// the way is still junk sent.
    pub fn flood(
        &self,
        template: &Template,
        rate: u64,
        duration: Duration,
        stop: &AtomicBool,
        mut vary: impl FnMut(&Template, &mut [u8]),
    ) -> Result<FloodReport> {
        let mut batch: Vec<Vec<u8>> = (0..BATCH).map(|_| template.frame().to_vec()).collect();
        let mut report = FloodReport::default();
        let start = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let elapsed = start.elapsed();
            if elapsed >= duration {
                break;
            }
            let due = (elapsed.as_secs_f64() * rate as f64) as u64;
            let done = report.sent + report.refused;
            if done >= due {
                // Ahead of the rate: wait for about one batch's worth.
                thread::sleep(Duration::from_secs_f64(BATCH as f64 / rate as f64 / 2.0));
                continue;
            }
            let count = ((due - done) as usize).min(BATCH);
            for frame in &mut batch[..count] {
                vary(template, frame);
            }
            let (sent, refused) = self.send_batch(&mut batch[..count])?;
            report.sent += sent as u64;
            if refused {
                report.refused += 1;
                // Let the receiving side drain its backlog.
                thread::sleep(Duration::from_micros(50));
            }
        }
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// Sends `count` frames spread evenly over `over` (a storm rather than a
    /// flood: each frame paced, none refused), each made by `make(i)`.
    pub fn spread(
        &self,
        count: usize,
        over: Duration,
        mut make: impl FnMut(usize) -> Vec<u8>,
    ) -> Result<FloodReport> {
        let start = Instant::now();
        let mut report = FloodReport::default();
        for i in 0..count {
            let at = over.mul_f64(i as f64 / count as f64);
            if let Some(wait) = at.checked_sub(start.elapsed()) {
                thread::sleep(wait);
            }
            self.send(&make(i))?;
            report.sent += 1;
        }
        report.elapsed = start.elapsed();
        Ok(report)
    }
}

/// `advert` wrapped as `spec` says, from [`FORGER_MAC`].
pub fn frame(spec: FrameSpec, advert: &Advert) -> Result<Vec<u8>> {
    let spec = FrameSpec {
        src_mac: FORGER_MAC,
        ..spec
    };
    build_frame(&spec, advert).context("building the forged frame")
}

/// The lab's advert (VRRPv2, VRID 51, interval 1 s, PASS "secret1", the lab
/// VIP) at `priority` from `src`, as keepalived would send it.
pub fn lab_advert(priority: u8) -> Advert {
    Advert {
        version: xvrrpd::packet::Version::V2,
        vrid: 51,
        priority,
        interval_cs: 100,
        addrs: vec![crate::vrrp_lab::VIP.parse().expect("the lab VIP parses")],
        auth: xvrrpd::packet::Auth::password(b"secret1"),
    }
}

/// A multicast frame of the lab's advert at `priority` from `src`.
pub fn lab_frame(src: Ipv4Addr, priority: u8) -> Result<Vec<u8>> {
    frame(FrameSpec::multicast(IpAddr::V4(src)), &lab_advert(priority))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvrrpd::packet::{Auth, Version};

    /// The in-place variation gives the very frame build_frame makes for
    /// that source and VRID, for v2 and for v3 (pseudo-header checksum).
    #[test]
    fn varied_frames_equal_built_ones() {
        let mut rng = Rng::new(7);
        for version in [Version::V2, Version::V3] {
            let advert = |vrid| Advert {
                version,
                vrid,
                priority: 100,
                interval_cs: 100,
                addrs: vec!["192.0.2.100".parse().unwrap()],
                auth: match version {
                    Version::V2 => Auth::password(b"secret1"),
                    Version::V3 => Auth::None,
                },
            };
            let spec = |src: Ipv4Addr| FrameSpec::multicast(IpAddr::V4(src));
            let template = Template::new(&spec(Ipv4Addr::new(10, 0, 0, 1)), &advert(51)).unwrap();
            let mut buf = template.frame().to_vec();
            for _ in 0..1000 {
                let (src, vrid) = (rng.source(), rng.below(256) as u8);
                template.write_varied(&mut buf, src, vrid);
                let built = frame(spec(src), &advert(vrid)).unwrap();
                assert_eq!(buf, built, "{version:?} from {src} VRID {vrid}");
                let parsed = xvrrpd::packet::parse_frame(&buf).unwrap();
                assert_eq!(parsed.src_ip, IpAddr::V4(src));
                assert_eq!(parsed.advert.vrid, vrid);
            }
        }
    }

    #[test]
    fn random_sources_are_in_ten_slash_eight() {
        let mut rng = Rng::new(1);
        let sources: std::collections::HashSet<Ipv4Addr> =
            (0..10_000).map(|_| rng.source()).collect();
        assert!(sources.iter().all(|s| s.octets()[0] == 10));
        assert!(sources.len() > 9_990, "{} distinct", sources.len());
    }
}
