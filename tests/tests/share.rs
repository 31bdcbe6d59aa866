//! Sharing the NIC with other XDP and tc programs, keepalived 2.2.7 as the
//! peer: xdp-filter (Debian's xdp-tools) before and after xvrrpd, a
//! foreign plain XDP program, the nftables protocol-112 drop in every
//! attach mode, and a program in front of the recorder that hides adverts
//! from it (the blind-recorder canary).
//!
//! Where the recorder lands depends on the kernel: with program
//! extensions it joins a libxdp dispatcher xdp-filter put there; without
//! (this machine's kernel refuses BPF_PROG_TYPE_EXT, and libxdp itself
//! then loads xdp-filter alone on the hook) it records at tc ingress. The
//! tests assert what must hold either way and which of the two it was.
//!
//! xdp-filter pins its maps and programs at fixed paths shared by every
//! network namespace (/sys/fs/bpf/xdp-filter/, programs by interface
//! name), so its tests take a lock and use an interface name of their own.

use std::{
    fs,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::PathBuf,
    sync::Mutex,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tests::{
    keepalived_command, output, vrrp_lab::peers_json, wait_until, xvrrpd_bin, Netns, Proc, Segment,
    TempDir,
};

const VIP: &str = "192.0.2.100";
const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";
const OBSERVER: &str = "192.0.2.200";
/// Master_Down_Interval of a priority-100 backup at advert_int 1.
const MDI: Duration = Duration::from_micros(3_609_375);
const DROP_VRRP: &[&str] = &[
    "add table inet xvshare",
    "add chain inet xvshare input { type filter hook input priority 0; }",
    "add rule inet xvshare input meta l4proto 112 drop",
];

/// One xdp-filter user at a time, in this process and across processes.
static XDP_FILTER: Mutex<()> = Mutex::new(());

struct FilterLock {
    _file: fs::File,
    _guard: std::sync::MutexGuard<'static, ()>,
}

fn xdp_filter_lock() -> Result<FilterLock> {
    let guard = XDP_FILTER.lock().unwrap_or_else(|e| e.into_inner());
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/lock/xvrrpd-tests-xdp-filter.lock")
        .context("opening the xdp-filter test lock")?;
    // SAFETY: a valid descriptor; flock has no memory preconditions.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!("flock: {}", std::io::Error::last_os_error());
    }
    Ok(FilterLock {
        _file: file,
        _guard: guard,
    })
}

/// A bridged segment: xvrrpd on node A, keepalived on node B, and an
/// observer; each host's interface is `ifname`, unique to this test so
/// xdp-filter's per-name pins cannot meet another run's.
struct Share {
    _segment: Segment,
    a: Netns,
    b: Netns,
    observer: Netns,
    dir: TempDir,
    ifname: String,
}

impl Share {
    fn new(tag: &str) -> Result<Self> {
        let ifname = format!("{tag}{}", std::process::id() % 100_000);
        let mut segment = Segment::new()?;
        let host = |segment: &mut Segment, addr: &str| -> Result<Netns> {
            let ns = Netns::new()?;
            segment.attach(&ns, &ifname)?;
            ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", &ifname])?;
            Ok(ns)
        };
        let a = host(&mut segment, A)?;
        let b = host(&mut segment, B)?;
        let observer = host(&mut segment, OBSERVER)?;
        Ok(Self {
            _segment: segment,
            a,
            b,
            observer,
            dir: TempDir::new(tag)?,
            ifname,
        })
    }

    fn config(&self, priority: u8) -> String {
        format!(
            r#"
vrrp_instance VI_1 {{
    state BACKUP
    interface {}
    virtual_router_id 51
    priority {priority}
    advert_int 1
    authentication {{
        auth_type PASS
        auth_pass secret1
    }}
    virtual_ipaddress {{
        {VIP}/24
    }}
}}
"#,
            self.ifname
        )
    }

    fn xvrrpd(&self, priority: u8, attach: Option<&str>) -> Result<Proc> {
        let conf = self.dir.path("xvrrpd.conf");
        fs::write(&conf, self.config(priority))?;
        let mut cmd = self.a.command(xvrrpd_bin());
        cmd.arg("run")
            .arg("-f")
            .arg(&conf)
            .env("XVRRPD_LOG", "info");
        if let Some(mode) = attach {
            cmd.args(["--attach", mode]);
        }
        let log = self
            .dir
            .path(&format!("xvrrpd-{}.log", attach.unwrap_or("auto")));
        let p = self.a.spawn(cmd, &log)?;
        if !wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            p.log_text().contains("recorder attached")
        }) {
            bail!("xvrrpd did not attach:\n{}", p.log_text());
        }
        Ok(p)
    }

    fn keepalived(&self, priority: u8) -> Result<Proc> {
        let cmd = keepalived_command(&self.b, &self.dir, "ka", &self.config(priority))?;
        self.b
            .spawn(cmd, &self.dir.path(&format!("ka-{priority}.log")))
    }

    fn a_holds(&self) -> bool {
        self.a.has_address(&self.ifname, VIP)
    }

    fn b_holds(&self) -> bool {
        self.b.has_address(&self.ifname, VIP)
    }

    /// Waits until exactly A (`true`) or exactly B holds the VIP.
    fn wait_holder(&self, a: bool, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(20), || {
            self.a_holds() == a && self.b_holds() != a
        })
    }

    /// Checks every 100 ms for `d` that B alone holds the VIP.
    fn b_steady(&self, d: Duration) -> Result<()> {
        for _ in 0..d.as_millis() / 100 {
            if self.a_holds() || !self.b_holds() {
                bail!("VIP on A: {}, on B: {}", self.a_holds(), self.b_holds());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// The ID and name of the XDP program on A's interface.
    fn xdp_program(&self) -> Result<Option<(u64, String)>> {
        let json = self.a.ip(&["-j", "link", "show", "dev", &self.ifname])?;
        let v: Value = serde_json::from_str(&json)?;
        let prog = &v[0]["xdp"]["prog"];
        Ok(prog["id"]
            .as_u64()
            .map(|id| (id, prog["name"].as_str().unwrap_or("").to_owned())))
    }

    fn status(&self) -> Result<Value> {
        let out = output(self.a.command(xvrrpd_bin()).args(["status", "--json"]))?;
        Ok(serde_json::from_str(&out)?)
    }

    /// Whether UDP datagrams from `from` reach a socket on A (a probe
    /// xdp-filter's rule for the observer's address must drop).
    fn ping_a(&self, from: &Netns) -> bool {
        udp_reaches(from, &self.a).unwrap_or(false)
    }

    fn xdp_filter(&self, args: &[&str]) -> Result<String> {
        output(self.a.command("xdp-filter").args(args))
    }

    /// B's adverts as A's kernel recorded them.
    fn recorded_adverts(&self) -> u64 {
        peers_json(&self.a)
            .ok()
            .and_then(|v| {
                v["peers"]
                    .as_array()?
                    .iter()
                    .find(|p| p["source"] == B)
                    .and_then(|p| p["adverts"].as_u64())
            })
            .unwrap_or(0)
    }
}

/// The attachment of A's interface in `xvrrpd status`.
fn attachment(status: &Value) -> Value {
    status["kernel"]["attachments"][0].clone()
}

/// Whether this kernel accepts program extensions (libxdp's dispatcher needs them).
fn extensions_work(share: &Share) -> Result<bool> {
    let out = output(
        share
            .a
            .command("xdp-loader")
            .args(["status", &share.ifname]),
    )?;
    Ok(out.contains("xdp_dispatcher"))
}

/// Stops a daemon with SIGTERM and checks it exits 0.
fn stop(p: &mut Proc, what: &str) -> Result<()> {
    match p.terminate(Duration::from_secs(10)) {
        Some(s) if s.success() => Ok(()),
        other => bail!("{what} did not exit cleanly ({other:?}):\n{}", p.log_text()),
    }
}

#[test]
fn xdp_filter_loaded_first_keeps_filtering_while_xvrrpd_records_elects_and_leaves() -> Result<()> {
    tests::require_root!();
    let _lock = xdp_filter_lock()?;
    let s = Share::new("xfa")?;
    s.xdp_filter(&["load", &s.ifname])?;
    s.xdp_filter(&["ip", OBSERVER, "--mode", "src"])?;
    let result = (|| -> Result<()> {
        let filter = s.xdp_program()?.context("xdp-filter attached nothing")?;
        let dispatcher = extensions_work(&s)?;
        assert!(
            !s.ping_a(&s.observer),
            "xdp-filter does not drop the observer"
        );
        assert!(s.ping_a(&s.b), "xdp-filter drops the peer");

        let mut ka = s.keepalived(150)?;
        assert!(
            s.wait_holder(false, Duration::from_secs(10)),
            "{}",
            ka.log_text()
        );
        let mut x = s.xvrrpd(100, None)?;
        // The recorder runs beside xdp-filter and records keepalived.
        assert!(
            wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
                s.recorded_adverts() >= 2
            }),
            "keepalived not recorded: {:?}\n{}",
            peers_json(&s.a),
            x.log_text()
        );
        let att = attachment(&s.status()?);
        if dispatcher {
            assert_eq!(att["hook"], "libxdp", "{att}");
            assert_eq!(att["of"], 2, "xdp-filter and the recorder: {att}");
            assert_eq!(
                att["position"], 1,
                "priority 5 runs before xdp-filter's 10: {att}"
            );
        } else {
            assert_eq!(
                s.xdp_program()?,
                Some(filter.clone()),
                "auto replaced xdp-filter on the XDP hook"
            );
            assert!(att["hook"] == "tcx" || att["hook"] == "tc", "{att}");
            assert!(
                x.log_text()
                    .contains("the XDP hook holds program xdpfilt_alw_all"),
                "{}",
                x.log_text()
            );
        }
        let peers = peers_json(&s.a)?;
        assert_eq!(peers["attachments"][0]["hook"], att["hook"], "{peers}");
        s.b_steady(Duration::from_secs(2))?;

        // Fail over to xvrrpd (keepalived's priority-0 advert), and back
        // (keepalived preempts with its higher priority).
        stop(&mut ka, "keepalived")?;
        assert!(
            s.wait_holder(true, Duration::from_secs(3)),
            "{}",
            x.log_text()
        );
        let _ka = s.keepalived(150)?;
        assert!(
            s.wait_holder(false, Duration::from_secs(10)),
            "xvrrpd did not yield to keepalived:\n{}",
            x.log_text()
        );

        stop(&mut x, "xvrrpd")?;
        // xdp-filter is still there and still filtering.
        let after = s
            .xdp_program()?
            .context("XDP hook empty after xvrrpd stopped")?;
        let status = output(s.a.command("xdp-loader").args(["status", &s.ifname]))?;
        assert!(status.contains("xdpfilt_alw_all"), "{status}");
        if !dispatcher {
            assert_eq!(after, filter, "xdp-filter's program changed");
        }
        assert!(
            !status.contains("vrrp_rx"),
            "recorder left behind:\n{status}"
        );
        assert!(!s.ping_a(&s.observer), "xdp-filter stopped filtering");
        assert!(s.ping_a(&s.b));
        Ok(())
    })();
    let _ = s.xdp_filter(&["unload", &s.ifname]);
    result
}

#[test]
fn xdp_filter_loads_after_xvrrpd_and_both_keep_working() -> Result<()> {
    tests::require_root!();
    let _lock = xdp_filter_lock()?;
    let s = Share::new("xfb")?;
    let x = s.xvrrpd(100, None)?;
    let mut ka = s.keepalived(200)?;
    assert!(
        s.wait_holder(false, Duration::from_secs(10)),
        "{}",
        ka.log_text()
    );
    let result = (|| -> Result<()> {
        // The XDP hook is free for others: xdp-filter loads.
        s.xdp_filter(&["load", &s.ifname])
            .context("xdp-filter load after xvrrpd")?;
        s.xdp_filter(&["ip", OBSERVER, "--mode", "src"])?;
        assert!(!s.ping_a(&s.observer), "xdp-filter does not filter");
        assert!(s.ping_a(&s.b));
        let status = output(s.a.command("xdp-loader").args(["status", &s.ifname]))?;
        assert!(status.contains("xdpfilt_alw_all"), "{status}");

        // The recorder still records keepalived's adverts: xvrrpd stays backup.
        let before = s.recorded_adverts();
        s.b_steady(MDI * 2)
            .map_err(|e| anyhow::anyhow!("after xdp-filter loaded: {e}\n{}", x.log_text()))?;
        assert!(
            s.recorded_adverts() >= before + 5,
            "recording stopped after xdp-filter loaded: {before}\n{}",
            x.log_text()
        );
        let att = attachment(&s.status()?);
        assert!(
            ["tcx", "tc", "libxdp"].contains(&att["hook"].as_str().unwrap_or("")),
            "{att}"
        );
        // Fail over both ways.
        stop(&mut ka, "keepalived")?;
        assert!(
            s.wait_holder(true, Duration::from_secs(3)),
            "{}",
            x.log_text()
        );
        let _ka = s.keepalived(200)?;
        assert!(
            s.wait_holder(false, Duration::from_secs(10)),
            "xvrrpd did not yield to keepalived:\n{}",
            x.log_text()
        );
        assert!(!s.ping_a(&s.observer), "xdp-filter stopped filtering");
        Ok(())
    })();
    let _ = s.xdp_filter(&["unload", &s.ifname]);
    result
}

/// Sends a few UDP datagrams from `from` to A's address and reports
/// whether one arrived at a socket bound there.
fn udp_reaches(from: &Netns, to: &Netns) -> Result<bool> {
    use std::net::UdpSocket;
    let (tx, rx) = std::sync::mpsc::channel();
    let port = 40_000 + (std::process::id() % 20_000) as u16;
    let receiver = {
        let to_path = PathBuf::from(format!("/run/netns/{}", to.name));
        std::thread::spawn(move || -> Result<bool> {
            let file = fs::File::open(&to_path)?;
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)?;
            let socket = UdpSocket::bind((A, port))?;
            socket.set_read_timeout(Some(Duration::from_secs(2)))?;
            let _ = tx.send(());
            let mut buf = [0u8; 16];
            Ok(matches!(socket.recv(&mut buf), Ok(5) if &buf[..5] == b"probe"))
        })
    };
    rx.recv_timeout(Duration::from_secs(5))
        .context("the receiving socket did not open")?;
    in_netns(from, move || {
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        for _ in 0..5 {
            let _ = socket.send_to(b"probe", (A, port));
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    })?;
    receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver thread panicked"))?
}

/// A program handle of this test (closed on drop; an attachment by netlink outlives it).
struct Foreign {
    fd: OwnedFd,
}

/// `bpf(BPF_PROG_LOAD)` of `insns` as `prog_type`.
fn load_program(prog_type: u32, insns: &[u64]) -> Result<Foreign> {
    #[repr(C)]
    #[derive(Default)]
    struct LoadAttr {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
    }
    let license = b"GPL\0";
    let mut attr = LoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..7].copy_from_slice(b"foreign");
    // SAFETY: attr is a valid BPF_PROG_LOAD attribute of the size given.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            5, // BPF_PROG_LOAD
            &mut attr as *mut LoadAttr,
            std::mem::size_of::<LoadAttr>(),
        )
    };
    if fd < 0 {
        bail!("BPF_PROG_LOAD: {}", std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok(Foreign {
        fd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
    })
}

/// `r0 = value; exit`.
fn return_insns(value: i32) -> [u64; 2] {
    // BPF_ALU64 | BPF_MOV | BPF_K into r0, imm in the top 32 bits; BPF_JMP | BPF_EXIT.
    [0xb7 | (value as u32 as u64) << 32, 0x95]
}

/// Runs `f` on a thread inside `ns`'s network stack (ifindexes and
/// attachments are per namespace).
fn in_netns<T: Send + 'static>(
    ns: &Netns,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let path = PathBuf::from(format!("/run/netns/{}", ns.name));
    std::thread::spawn(move || {
        let file = fs::File::open(&path)?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .context("setns into the test namespace")?;
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("namespace thread panicked"))?
}

/// A tc program that passes every packet to the stack and ends the tc
/// chain (TC_ACT_OK), linked at the front of tcx ingress: it hides every
/// packet from the recorder, not from the stack.
fn consume_in_front(ns: &Netns, ifname: &str) -> Result<Foreign> {
    let ifname = ifname.to_owned();
    in_netns(ns, move || {
        const SCHED_CLS: u32 = 3;
        const BPF_TCX_INGRESS: u32 = 46;
        const BPF_F_BEFORE: u32 = 1 << 3;
        let prog = load_program(SCHED_CLS, &return_insns(0))?;
        let ifindex = nix::net::if_::if_nametoindex(ifname.as_str())?;
        #[repr(C)]
        #[derive(Default)]
        struct LinkAttr {
            prog_fd: u32,
            target_ifindex: u32,
            attach_type: u32,
            flags: u32,
            relative: u32,
            _pad: u32,
            expected_revision: u64,
        }
        let mut attr = LinkAttr {
            prog_fd: prog.fd.as_raw_fd() as u32,
            target_ifindex: ifindex,
            attach_type: BPF_TCX_INGRESS,
            flags: BPF_F_BEFORE,
            ..Default::default()
        };
        // SAFETY: attr is a valid BPF_LINK_CREATE attribute of the size given.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                28, // BPF_LINK_CREATE
                &mut attr as *mut LinkAttr,
                std::mem::size_of::<LinkAttr>(),
            )
        };
        if fd < 0 {
            bail!("BPF_LINK_CREATE(tcx): {}", std::io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nobody else owns.
        Ok(Foreign {
            fd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
        })
    })
}

#[test]
fn a_foreign_plain_xdp_program_stays_and_xvrrpd_records_through_its_fallback() -> Result<()> {
    tests::require_root!();
    let s = Share::new("xfc")?;
    // An XDP_PASS program that knows nothing of libxdp, attached the way
    // `ip link set dev X xdp` does (netlink, no bpf_link).
    let prog = load_program(6, &return_insns(2))?; // BPF_PROG_TYPE_XDP, XDP_PASS
    let pin = PathBuf::from(format!(
        "/sys/fs/bpf/xvrrpd-test-foreign-{}",
        std::process::id()
    ));
    pin_fd(&prog.fd, &pin)?;
    // nsenter, not `ip -n`: that one remounts /sys and loses bpffs.
    let attached = output(s.a.command("ip").args([
        "link",
        "set",
        "dev",
        &s.ifname,
        "xdpdrv",
        "pinned",
        pin.to_str().unwrap(),
    ]));
    let _ = fs::remove_file(&pin);
    attached?;
    let foreign = s
        .xdp_program()?
        .context("the foreign program is not attached")?;
    assert_eq!(foreign.1, "foreign");

    let mut ka = s.keepalived(150)?;
    assert!(
        s.wait_holder(false, Duration::from_secs(10)),
        "{}",
        ka.log_text()
    );
    let mut x = s.xvrrpd(100, None)?;
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
            s.recorded_adverts() >= 2
        }),
        "{}",
        x.log_text()
    );
    let att = attachment(&s.status()?);
    assert!(att["hook"] == "tcx" || att["hook"] == "tc", "{att}");
    assert!(
        x.log_text().contains("the XDP hook holds program foreign"),
        "{}",
        x.log_text()
    );
    s.b_steady(Duration::from_secs(2))?;
    // keepalived dies without a word: the recorder's silence is real, xvrrpd takes over.
    ka.signal(libc::SIGKILL);
    let _ = ka.child.wait();
    assert!(
        s.wait_holder(true, MDI + Duration::from_secs(2)),
        "{}",
        x.log_text()
    );
    stop(&mut x, "xvrrpd")?;
    assert_eq!(
        s.xdp_program()?,
        Some(foreign),
        "the foreign program was touched"
    );
    Ok(())
}

/// The `xdp` mode on a hook held by someone else refuses to start, naming it.
#[test]
fn the_xdp_mode_refuses_a_hook_someone_else_holds() -> Result<()> {
    tests::require_root!();
    let s = Share::new("xfe")?;
    let prog = load_program(6, &return_insns(2))?;
    let pin = PathBuf::from(format!(
        "/sys/fs/bpf/xvrrpd-test-foreign-e-{}",
        std::process::id()
    ));
    pin_fd(&prog.fd, &pin)?;
    let attached = output(s.a.command("ip").args([
        "link",
        "set",
        "dev",
        &s.ifname,
        "xdpgeneric",
        "pinned",
        pin.to_str().unwrap(),
    ]));
    let _ = fs::remove_file(&pin);
    attached?;
    let foreign = s.xdp_program()?;
    let conf = s.dir.path("xdp-mode.conf");
    fs::write(&conf, s.config(100))?;
    let out =
        s.a.command(xvrrpd_bin())
            .args(["run", "--attach", "xdp", "-f"])
            .arg(&conf)
            .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("interface {}", s.ifname))
            && err.contains("holds program foreign")
            && err.contains("never replaces"),
        "{err}"
    );
    assert_eq!(s.xdp_program()?, foreign);
    Ok(())
}

fn pin_fd(fd: &OwnedFd, path: &std::path::Path) -> Result<()> {
    #[repr(C)]
    struct PinAttr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
    }
    let name = std::ffi::CString::new(path.to_str().unwrap())?;
    let mut attr = PinAttr {
        pathname: name.as_ptr() as u64,
        bpf_fd: fd.as_raw_fd() as u32,
        file_flags: 0,
    };
    // SAFETY: attr is a valid BPF_OBJ_PIN attribute of the size given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            6, // BPF_OBJ_PIN
            &mut attr as *mut PinAttr,
            std::mem::size_of::<PinAttr>(),
        )
    };
    if r < 0 {
        bail!(
            "BPF_OBJ_PIN {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

#[test]
fn nftables_dropping_protocol_112_hides_nothing_from_the_recorder_in_any_mode() -> Result<()> {
    tests::require_root!();
    for mode in ["auto", "tc", "xdp"] {
        let s = Share::new("xfd")?;
        let mut ka = s.keepalived(200)?;
        assert!(
            s.wait_holder(false, Duration::from_secs(10)),
            "{}",
            ka.log_text()
        );
        let x = s.xvrrpd(100, Some(mode))?;
        let att = attachment(&s.status()?);
        let hook = att["hook"].as_str().unwrap_or("").to_owned();
        let expected: &[&str] = match mode {
            "tc" => &["tcx", "tc"],
            "xdp" => &["xdp", "libxdp"],
            _ => &["tcx", "tc", "libxdp"],
        };
        assert!(expected.contains(&hook.as_str()), "mode {mode}: {att}");
        s.b_steady(Duration::from_secs(2))?;
        tests::vrrp_lab::nft(&s.a, DROP_VRRP)?;
        let recorded = s.recorded_adverts();
        s.b_steady(MDI * 3).map_err(|e| {
            anyhow::anyhow!(
                "mode {mode} ({hook}), protocol 112 dropped by nftables: {e}\n{}",
                x.log_text()
            )
        })?;
        assert!(
            s.recorded_adverts() >= recorded + 3,
            "mode {mode}: the recorder stopped recording behind the firewall"
        );
        assert!(
            !x.log_text().contains("Entering MASTER STATE"),
            "mode {mode}: took over behind the firewall:\n{}",
            x.log_text()
        );
        // The stack sees nothing here: no blind-recorder alarm either.
        assert!(
            !x.log_text().contains("but not the recorder"),
            "{}",
            x.log_text()
        );
        // Detection still works through the firewall.
        stop(&mut ka, "keepalived")?;
        assert!(
            s.wait_holder(true, Duration::from_secs(3)),
            "mode {mode}: no takeover behind the firewall:\n{}",
            x.log_text()
        );
    }
    Ok(())
}

#[test]
fn a_program_hiding_adverts_from_the_recorder_is_detected_and_causes_no_takeover() -> Result<()> {
    tests::require_root!();
    let s = Share::new("xfz")?;
    let mut ka = s.keepalived(200)?;
    assert!(
        s.wait_holder(false, Duration::from_secs(10)),
        "{}",
        ka.log_text()
    );
    let x = s.xvrrpd(100, Some("tc"))?;
    s.b_steady(Duration::from_secs(2))?;
    if attachment(&s.status()?)["hook"] != "tcx" {
        // Legacy clsact only (kernel < 6.6): no tcx program can be put in front here.
        eprintln!("skipped: this kernel has no tcx");
        return Ok(());
    }
    let hider = consume_in_front(&s.a, &s.ifname)?;
    // Alarm within a canary period (2 s) of the next due timer.
    assert!(
        wait_until(
            MDI + Duration::from_secs(3),
            Duration::from_millis(100),
            || { x.log_text().contains("but not the recorder") }
        ),
        "no blind-recorder alarm:\n{}",
        x.log_text()
    );
    let line = x
        .log_text()
        .lines()
        .find(|l| l.contains("but not the recorder"))
        .unwrap_or_default()
        .to_owned();
    assert!(line.contains("ERROR") && line.contains(B), "{line}");
    assert!(line.contains("tcx ingress, 2nd of 2"), "{line}");
    // The master is alive: no takeover for three Master_Down_Intervals.
    s.b_steady(MDI * 3)
        .map_err(|e| anyhow::anyhow!("blind recorder: {e}\n{}", x.log_text()))?;
    assert!(
        !x.log_text().contains("Entering MASTER STATE"),
        "{}",
        x.log_text()
    );
    let status = s.status()?;
    let blind = &status["kernel"]["blind"];
    assert!(blind["episodes"].as_u64() >= Some(1), "{status}");
    assert!(blind["missed_adverts"].as_u64() >= Some(3), "{status}");
    assert_eq!(blind["instances"], serde_json::json!(["VI_1"]), "{status}");
    let placed = peers_json(&s.a)?;
    assert_eq!(placed["attachments"][0]["position"], 2, "{placed}");
    let text = output(s.a.command(xvrrpd_bin()).arg("status"))?;
    assert!(text.contains("RECORDER BLIND for VI_1"), "{text}");

    // The program goes: the recorder sees again, the episode ends.
    drop(hider);
    assert!(
        wait_until(Duration::from_secs(6), Duration::from_millis(100), || {
            x.log_text()
                .contains("records the adverts the stack receives again")
        }),
        "{}",
        x.log_text()
    );
    assert_eq!(
        s.status()?["kernel"]["blind"]["instances"],
        serde_json::json!([])
    );

    // Blind again, and the master really dies: the stack hears nothing
    // either, so the takeover happens.
    let _hider = consume_in_front(&s.a, &s.ifname)?;
    assert!(
        wait_until(
            MDI + Duration::from_secs(3),
            Duration::from_millis(100),
            || {
                s.status()
                    .is_ok_and(|v| v["kernel"]["blind"]["instances"] == serde_json::json!(["VI_1"]))
            }
        ),
        "{}",
        x.log_text()
    );
    ka.signal(libc::SIGKILL);
    let _ = ka.child.wait();
    assert!(
        s.wait_holder(true, MDI + Duration::from_secs(4)),
        "no takeover from a dead master behind a blind recorder:\n{}",
        x.log_text()
    );
    Ok(())
}

#[test]
fn xvrrpd_check_accepts_the_attach_keyword_as_an_extension() -> Result<()> {
    tests::require_root!();
    // An interface of its own for the instance, which check looks up.
    let ns = Netns::new()?;
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"])?;
    let dir = TempDir::new("xfk")?;
    let check = |body: &str| -> Result<(i32, String)> {
        let path = dir.path("k.conf");
        fs::write(&path, body)?;
        let out = ns
            .command(xvrrpd_bin())
            .args(["check", "-f"])
            .arg(&path)
            .output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        ))
    };
    let instance = "vrrp_instance V {\n interface v0\n virtual_router_id 9\n priority 100\n virtual_ipaddress {\n 192.0.2.9\n }\n}\n";
    let (code, text) = check(&format!("global_defs {{\n}}\n{instance}"))?;
    assert_eq!(code, 0, "the instance alone: {text}");
    let (code, text) = check(&format!(
        "global_defs {{\n xvrrpd_attach tc\n}}\n{instance}"
    ))?;
    // keepalived -t exits 5 for a keyword it does not know; so does check.
    assert_eq!(code, 5, "{text}");
    assert!(
        text.contains("xvrrpd extension") && text.contains("k.conf:2"),
        "{text}"
    );
    let (_, text) = check(&format!(
        "global_defs {{\n xvrrpd_attach sideways\n}}\n{instance}"
    ))?;
    assert!(
        text.contains("k.conf:2") && text.contains("expected auto, xdp or tc"),
        "{text}"
    );
    // Guarded by a config id keepalived does not run with: neither sees it.
    let (code, text) = check(&format!(
        "global_defs {{\n@xvrrpd xvrrpd_attach tc\n}}\n{instance}"
    ))?;
    assert_eq!(code, 0, "{text}");
    Ok(())
}
