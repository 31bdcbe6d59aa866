//! Test helpers: throwaway network namespaces joined by a veth pair, code run inside
//! them, and an AF_PACKET capture. Never touches the host's own interfaces.
//!
//! `setns(CLONE_NEWNET)` is per thread, so [`TestNs::run`] runs the code under test on a
//! fresh thread that enters the namespace and builds its own current-thread runtime.
//! Sockets opened there stay in that namespace after the thread ends.

use std::{
    fs::File,
    future::Future,
    io,
    mem::{size_of, zeroed},
    os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use nix::sched::{setns, CloneFlags};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A named network namespace (`xvn-<pid>-<n>`), deleted on drop, panics included.
pub(crate) struct TestNs {
    pub name: String,
}

impl TestNs {
    pub fn new() -> Self {
        let name = format!(
            "xvn-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip netns add");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = TestNs { name };
        // No DAD: link-locals and test addresses are usable at once, not tentative.
        ns.sysctl_set("net/ipv6/conf/all/accept_dad", "0");
        ns.sysctl_set("net/ipv6/conf/default/accept_dad", "0");
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS`, panicking with stderr on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        self.try_ip(args)
            .unwrap_or_else(|e| panic!("ip -n {} {}: {e}", self.name, args.join(" ")))
    }

    pub fn try_ip(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Writes `/proc/sys/<key>` inside the namespace.
    pub fn sysctl_set(&self, key: &str, value: &str) {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.run(move || async move {
            std::fs::write(format!("/proc/sys/{key}"), value)
                .unwrap_or_else(|e| panic!("write /proc/sys/{key}: {e}"));
        })
    }

    /// Reads `/proc/sys/<key>` inside the namespace.
    pub fn sysctl_get(&self, key: &str) -> String {
        let key = key.to_owned();
        self.run(move || async move {
            std::fs::read_to_string(format!("/proc/sys/{key}"))
                .unwrap_or_else(|e| panic!("read /proc/sys/{key}: {e}"))
                .trim()
                .to_owned()
        })
    }

    /// Runs `f` on a new thread inside this namespace with a current-thread runtime;
    /// a panic inside is re-raised here.
    pub fn run<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        let thread = std::thread::spawn(move || {
            let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns({path}): {e}"));
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(f())
        });
        match thread.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        // Deleting the namespace also deletes the veth (and any macvlan) inside it.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Two namespaces joined by a veth pair (`xva0` in `a`, `xvb0` in `b`), both up.
pub(crate) struct VethPair {
    pub a: TestNs,
    pub b: TestNs,
    pub a_if: String,
    pub b_if: String,
}

impl VethPair {
    pub fn new() -> Self {
        let pair = VethPair {
            a: TestNs::new(),
            b: TestNs::new(),
            a_if: "xva0".into(),
            b_if: "xvb0".into(),
        };
        pair.a.ip(&[
            "link",
            "add",
            &pair.a_if,
            "type",
            "veth",
            "peer",
            "name",
            &pair.b_if,
            "netns",
            &pair.b.name,
        ]);
        pair.a.ip(&["link", "set", &pair.a_if, "up"]);
        pair.b.ip(&["link", "set", &pair.b_if, "up"]);
        // Until linkwatch marks the carrier up the qdisc drops everything, and the
        // IPv6 link-local is only added then: wait for both.
        for (ns, ifname) in [(&pair.a, &pair.a_if), (&pair.b, &pair.b_if)] {
            wait_for(Duration::from_secs(5), || {
                ns.ip(&["link", "show", "dev", ifname]).contains("state UP")
                    && ns
                        .ip(&["-6", "addr", "show", "dev", ifname, "scope", "link"])
                        .contains("fe80::")
            })
            .unwrap_or_else(|| panic!("{ifname} in {} never came up", ns.name));
        }
        pair
    }
}

/// Polls `cond` every 20 ms until true or `timeout`.
pub(crate) fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Some(());
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An AF_PACKET socket capturing every frame *received* on one interface.
pub(crate) struct Capture {
    fd: OwnedFd,
}

impl Capture {
    pub fn open(ns: &TestNs, ifname: &str) -> Self {
        let ifname = ifname.to_owned();
        ns.run(move || async move {
            let ifindex = nix::net::if_::if_nametoindex(ifname.as_str()).expect("ifindex");
            let proto = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: plain socket(2); the fd is owned right away.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
            assert!(fd >= 0, "socket(AF_PACKET): {}", io::Error::last_os_error());
            // SAFETY: fd is a fresh, valid descriptor.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: sockaddr_ll is plain data; all-zero is valid.
            let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            // SAFETY: binding a valid sockaddr_ll of the right length.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert_eq!(rc, 0, "bind(AF_PACKET): {}", io::Error::last_os_error());
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 50_000,
            };
            // SAFETY: valid timeval for SO_RCVTIMEO.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    size_of::<libc::timeval>() as u32,
                )
            };
            assert_eq!(rc, 0);
            Capture { fd }
        })
    }

    /// One received frame, or `None` after the 50 ms receive timeout.
    fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        // SAFETY: sockaddr_ll is plain data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        loop {
            // SAFETY: valid buffer and address storage of the stated sizes.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                return None;
            }
            if sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            buf.truncate(n as usize);
            return Some(buf);
        }
    }

    /// The first received frame matching `pred` within `timeout`.
    pub fn expect(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(f) = self.recv() {
                if pred(&f) {
                    return Some(f);
                }
            }
        }
        None
    }

    /// Every received frame matching `pred` during `window`.
    pub fn collect(&self, window: Duration, mut pred: impl FnMut(&[u8]) -> bool) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + window;
        let mut frames = Vec::new();
        while Instant::now() < deadline {
            if let Some(f) = self.recv() {
                if pred(&f) {
                    frames.push(f);
                }
            }
        }
        frames
    }
}

/// Internet checksum over the concatenation of `parts` (an independent oracle for the
/// code under test); 0 when the data already carries a correct checksum.
pub(crate) fn checksum(parts: &[&[u8]]) -> u16 {
    let data: Vec<u8> = parts.concat();
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
