//! libxdp's multi-program dispatcher protocol (xdp-tools,
//! lib/libxdp/protocol.org, dispatcher version 2), so the recorder shares
//! an interface's XDP hook with xdp-filter, xdp-loader and every other
//! libxdp user instead of taking it.
//!
//! A dispatcher is an XDP program that calls up to ten component programs
//! in turn; each component is a program extension (BPF_PROG_TYPE_EXT) in
//! place of one of its stubs, kept attached by a bpf_link pinned under
//! `/sys/fs/bpf/xdp/dispatch-IFINDEX-DID/`. A dispatcher never changes:
//! joining or leaving means loading a new one with the new list, linking
//! every component into it, pinning, and swapping it in on the interface
//! with `XDP_FLAGS_REPLACE` (which fails if anyone changed the interface
//! meanwhile), then unpinning the old one. Every step runs under libxdp's
//! lock (flock on the pin directory). The components of others are carried
//! over with the run priority, chain-call actions and flags the old
//! dispatcher recorded for them; nothing of theirs is detached.

use std::{
    fs, io,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    path::{Path, PathBuf},
};

use aya::{
    programs::{Extension, ProgramFd, Xdp},
    EbpfLoader,
};
use thiserror::Error;
use tracing::{debug, warn};

use super::{
    netlink::{self, xdp_flags, NetlinkError, XdpState},
    sys::{self, ProgInfo, SysError},
};

/// Our run priority: libxdp runs components in ascending order, its default
/// is 50 and xdp-filter's 10. Before them, so a filter cannot hide adverts
/// from the recorder (the recorder passes every packet on).
pub const RUN_PRIORITY: u32 = 5;
/// Name the dispatcher program carries; libxdp looks for exactly this.
pub const DISPATCHER_NAME: &str = "xdp_dispatcher";
/// Name of our component program in the object.
pub const COMPONENT_NAME: &str = "vrrp_rx_libxdp";

const MAGIC: u8 = 236;
const VERSION: u8 = 2;
const SLOTS: usize = 10;
/// The stubs' return value; always a chain-call action.
const STUB_RETVAL_BIT: u32 = 1 << 31;
const XDP_PASS: u32 = 2;
const BPF_F_RDONLY_PROG: u32 = 1 << 7;
const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

#[derive(Debug, Error)]
pub enum LibxdpError {
    #[error("{0}")]
    Sys(#[from] SysError),
    #[error("{0}")]
    Netlink(#[from] NetlinkError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the libxdp dispatcher on interface {ifindex} is version {version}; xvrrpd speaks version {VERSION}")]
    Version { ifindex: u32, version: u8 },
    #[error("the libxdp dispatcher on interface {ifindex} has all {SLOTS} slots taken")]
    Full { ifindex: u32 },
    #[error("loading an XDP dispatcher: {0}")]
    Load(String),
    #[error("program extensions (BPF_PROG_TYPE_EXT) are refused by this kernel: {0}")]
    NoExtensions(String),
    #[error(
        "interface {ifindex} changed while the dispatcher was being replaced; tried {tries} times"
    )]
    Raced { ifindex: u32, tries: u32 },
}

/// libxdp's `struct xdp_dispatcher_config`, version 2.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub magic: u8,
    pub dispatcher_version: u8,
    pub num_progs_enabled: u8,
    pub is_xdp_frags: u8,
    pub chain_call_actions: [u32; SLOTS],
    pub run_prios: [u32; SLOTS],
    pub program_flags: [u32; SLOTS],
}

// SAFETY: repr(C), integers only, no padding (4 + 3 × 40 bytes).
unsafe impl aya::Pod for Config {}
const _: () = assert!(std::mem::size_of::<Config>() == 124);

impl Config {
    fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < std::mem::size_of::<Config>() {
            return None;
        }
        let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let array = |base: usize| std::array::from_fn(|k| word(base + 4 * k));
        Some(Config {
            magic: b[0],
            dispatcher_version: b[1],
            num_progs_enabled: b[2],
            is_xdp_frags: b[3],
            chain_call_actions: array(4),
            run_prios: array(4 + 40),
            program_flags: array(4 + 80),
        })
    }
}

/// One program in a dispatcher.
pub struct Component {
    pub fd: OwnedFd,
    pub info: ProgInfo,
    pub run_prio: u32,
    /// XDP actions that go on to the next program (the stub bit excluded).
    pub chain_call_actions: u32,
    pub program_flags: u32,
}

/// The dispatcher an interface runs, with its components.
pub struct Installed {
    pub ifindex: u32,
    pub fd: OwnedFd,
    pub info: ProgInfo,
    pub native: bool,
    pub config: Config,
    pub components: Vec<Component>,
}

impl Installed {
    fn pin_dir(&self) -> PathBuf {
        pin_dir(self.ifindex, self.info.id)
    }
}

/// What an interface's XDP hook holds.
pub enum Hook {
    Free,
    Dispatcher(Installed),
    /// A libxdp dispatcher this version of the protocol cannot join.
    OtherDispatcher {
        id: u32,
        version: u8,
    },
    /// Any other program (attached alone, by libxdp's fallback or by
    /// anything else).
    Program {
        info: ProgInfo,
        native: bool,
    },
    /// Only an offloaded program: nothing runs in the stack's hooks.
    Offloaded,
}

/// `$LIBXDP_BPFFS/xdp`, default `/sys/fs/bpf/xdp`: where libxdp pins
/// dispatchers, and whose flock is its lock.
pub fn bpffs_dir() -> PathBuf {
    std::env::var_os("LIBXDP_BPFFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(super::pin::BPFFS))
        .join("xdp")
}

fn pin_dir(ifindex: u32, prog_id: u32) -> PathBuf {
    bpffs_dir().join(format!("dispatch-{ifindex}-{prog_id}"))
}

/// libxdp's lock: an exclusive flock on the pin directory, held while the
/// hook is read and changed.
pub struct Lock {
    _dir: fs::File,
}

impl Lock {
    pub fn acquire() -> Result<Self, LibxdpError> {
        let dir = bpffs_dir();
        let io_err = |what, source| LibxdpError::Io {
            what,
            path: dir.clone(),
            source,
        };
        super::pin::prepare_dir(dir.parent().unwrap_or(Path::new(super::pin::BPFFS)))
            .map_err(|e| io_err("preparing bpffs for", io::Error::other(e.to_string())))?;
        match fs::create_dir(&dir) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| io_err("chmod", e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("creating", e)),
        }
        let file = fs::File::open(&dir).map_err(|e| io_err("opening", e))?;
        // SAFETY: a valid descriptor; flock has no memory preconditions.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io_err("flock", io::Error::last_os_error()));
        }
        Ok(Self { _dir: file })
    }
}

/// What `ifindex`'s XDP hook holds. Call under the [`Lock`].
pub fn inspect(ifindex: u32) -> Result<Hook, LibxdpError> {
    let state: XdpState = netlink::xdp_state(ifindex)?;
    let Some((id, native)) = state.program() else {
        return Ok(if state.hw.is_some() {
            Hook::Offloaded
        } else {
            Hook::Free
        });
    };
    // Gone if replaced between the two calls: the caller reads again.
    let fd = sys::prog_fd_by_id(id)?;
    let info = sys::prog_info(fd.as_fd())?;
    let Some(config) = dispatcher_config(&info)? else {
        return Ok(Hook::Program { info, native });
    };
    if config.dispatcher_version != VERSION {
        return Ok(Hook::OtherDispatcher {
            id,
            version: config.dispatcher_version,
        });
    }
    let mut installed = Installed {
        ifindex,
        fd,
        info,
        native,
        config,
        components: Vec::new(),
    };
    let dir = installed.pin_dir();
    for i in 0..usize::from(config.num_progs_enabled).min(SLOTS) {
        let fd = sys::obj_get(&dir.join(format!("prog{i}-prog")))?;
        let info = sys::prog_info(fd.as_fd())?;
        installed.components.push(Component {
            fd,
            info,
            run_prio: config.run_prios[i],
            chain_call_actions: config.chain_call_actions[i] & !STUB_RETVAL_BIT,
            program_flags: config.program_flags[i],
        });
    }
    Ok(Hook::Dispatcher(installed))
}

/// The configuration of a libxdp dispatcher, `None` for any other program:
/// its name, its one read-only map of one entry, and the magic byte, as
/// libxdp checks them.
fn dispatcher_config(info: &ProgInfo) -> Result<Option<Config>, LibxdpError> {
    if info.name != DISPATCHER_NAME || info.btf_id == 0 || info.map_ids.len() != 1 {
        return Ok(None);
    }
    let map = sys::map_fd_by_id(info.map_ids[0])?;
    let m = sys::map_info(map.as_fd())?;
    if m.key_size != 4 || m.max_entries != 1 || m.map_flags & BPF_F_RDONLY_PROG == 0 {
        return Ok(None);
    }
    let value = sys::map_lookup(map.as_fd(), 0, m.value_size)?;
    if value.first() != Some(&MAGIC) {
        return Ok(None);
    }
    let Some(mut config) = Config::from_bytes(&value) else {
        // A later version with a longer or shorter configuration.
        return Ok(Some(Config {
            magic: MAGIC,
            dispatcher_version: value.get(1).copied().unwrap_or(0),
            num_progs_enabled: 0,
            is_xdp_frags: 0,
            chain_call_actions: [0; SLOTS],
            run_prios: [0; SLOTS],
            program_flags: [0; SLOTS],
        }));
    };
    if config.dispatcher_version == VERSION
        && m.value_size as usize != std::mem::size_of::<Config>()
    {
        // libxdp 1.3 refuses such a map; so do we.
        config.dispatcher_version = 0;
    }
    Ok(Some(config))
}

/// One entry of a dispatcher being built.
enum Entry<'a> {
    Ours,
    Theirs(&'a Component),
}

impl Entry<'_> {
    fn run_prio(&self) -> u32 {
        match self {
            Entry::Ours => RUN_PRIORITY,
            Entry::Theirs(c) => c.run_prio,
        }
    }

    fn name(&self) -> &str {
        match self {
            Entry::Ours => COMPONENT_NAME,
            Entry::Theirs(c) => &c.info.name,
        }
    }
}

/// Our component: the recorder as a program extension, loaded against the
/// first dispatcher it joins and linked into every later one.
pub struct Ours<'a> {
    /// `None` to leave only (a clean-up after a killed run has no program).
    pub extension: Option<&'a mut Extension>,
    /// IDs of our maps: a component using one is ours (also one an earlier
    /// run of this daemon left, killed before it could leave).
    pub map_ids: &'a [u32],
}

impl Ours<'_> {
    fn owns(&self, info: &ProgInfo) -> bool {
        info.map_ids.iter().any(|m| self.map_ids.contains(m))
    }
}

/// A dispatcher loaded, its components linked and pinned, not yet attached.
struct Built {
    fd: ProgramFd,
    info: ProgInfo,
    dir: PathBuf,
    config: Config,
    /// Our index in it, if we are in it.
    ours: Option<usize>,
}

fn load_dispatcher(config: &Config) -> Result<(aya::Ebpf, ProgramFd), LibxdpError> {
    let object = super::dispatcher_object().ok_or_else(|| {
        LibxdpError::Load("xvrrpd was built without its dispatcher object".into())
    })?;
    let mut ebpf = EbpfLoader::new()
        .override_global("conf", config, true)
        .load(object)
        .map_err(|e| LibxdpError::Load(e.to_string()))?;
    let program: &mut Xdp = ebpf
        .program_mut(DISPATCHER_NAME)
        .ok_or_else(|| LibxdpError::Load(format!("no program {DISPATCHER_NAME} in the object")))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| LibxdpError::Load(e.to_string()))?;
    program
        .load()
        .map_err(|e| LibxdpError::Load(e.to_string()))?;
    let fd = program
        .fd()
        .and_then(|f| f.try_clone().map_err(Into::into))
        .map_err(|e| LibxdpError::Load(e.to_string()))?;
    Ok((ebpf, fd))
}

fn remove_pins(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Loads a dispatcher for `entries` (sorted as libxdp sorts them), links
/// each into it and pins the links and programs.
fn build(
    ifindex: u32,
    mut entries: Vec<Entry<'_>>,
    ours: &mut Ours<'_>,
) -> Result<Built, LibxdpError> {
    if entries.len() > SLOTS {
        return Err(LibxdpError::Full { ifindex });
    }
    // libxdp's order: run priority, then program name (then details that
    // only matter between programs of the same name).
    entries.sort_by(|a, b| a.run_prio().cmp(&b.run_prio()).then(a.name().cmp(b.name())));
    let mut config = Config {
        magic: MAGIC,
        dispatcher_version: VERSION,
        num_progs_enabled: entries.len() as u8,
        is_xdp_frags: 0,
        chain_call_actions: [0; SLOTS],
        run_prios: [0; SLOTS],
        program_flags: [0; SLOTS],
    };
    for (i, e) in entries.iter().enumerate() {
        let (actions, flags) = match e {
            Entry::Ours => (1 << XDP_PASS, 0),
            Entry::Theirs(c) => (c.chain_call_actions, c.program_flags & BPF_F_XDP_HAS_FRAGS),
        };
        config.chain_call_actions[i] = actions | STUB_RETVAL_BIT;
        config.run_prios[i] = e.run_prio();
        config.program_flags[i] = flags;
    }
    // Ours does not handle frags, so the dispatcher is loaded without them.
    let (_ebpf, fd) = load_dispatcher(&config)?;
    let info = sys::prog_info(fd.as_fd())?;
    let dir = pin_dir(ifindex, info.id);
    let io_err = |what, path: &Path, source| LibxdpError::Io {
        what,
        path: path.to_owned(),
        source,
    };
    fs::create_dir(&dir).map_err(|e| io_err("creating", &dir, e))?;
    let result = (|| {
        let mut our_index = None;
        for (i, e) in entries.iter().enumerate() {
            // libxdp replaces the dispatcher's main function when it holds one program.
            let function = if entries.len() == 1 {
                DISPATCHER_NAME.to_owned()
            } else {
                format!("prog{i}")
            };
            let link_path = dir.join(format!("prog{i}-link"));
            let prog_path = dir.join(format!("prog{i}-prog"));
            match e {
                Entry::Ours => {
                    our_index = Some(i);
                    let Some(ext) = ours.extension.as_deref_mut() else {
                        return Err(LibxdpError::Load(
                            "joining a dispatcher needs the component program".into(),
                        ));
                    };
                    let link_id = if ext.fd().is_err() {
                        let target = fd
                            .try_clone()
                            .map_err(|e| LibxdpError::Load(e.to_string()))?;
                        ext.load(target, &function)
                            .map_err(|e| LibxdpError::NoExtensions(e.to_string()))?;
                        ext.attach()
                    } else {
                        ext.attach_to_program(&fd, &function)
                    }
                    .map_err(|e| LibxdpError::NoExtensions(e.to_string()))?;
                    let link = ext
                        .take_link(link_id)
                        .map_err(|e| LibxdpError::Load(e.to_string()))?;
                    let link: aya::programs::links::FdLink = link.into();
                    link.pin(&link_path).map_err(|e| {
                        io_err("pinning", &link_path, io::Error::other(e.to_string()))
                    })?;
                    let prog_fd = ext.fd().map_err(|e| LibxdpError::Load(e.to_string()))?;
                    sys::obj_pin(prog_fd.as_fd(), &prog_path)?;
                }
                Entry::Theirs(c) => {
                    let btf_id = sys::func_btf_id(&info, &function)?;
                    let link = sys::link_extension(c.fd.as_fd(), fd.as_fd(), btf_id)?;
                    sys::obj_pin(link.as_fd(), &link_path)?;
                    sys::obj_pin(c.fd.as_fd(), &prog_path)?;
                }
            }
        }
        Ok(our_index)
    })();
    match result {
        Ok(ours) => Ok(Built {
            fd,
            info,
            dir,
            config,
            ours,
        }),
        Err(e) => {
            remove_pins(&dir);
            Err(e)
        }
    }
}

/// Where we ended up in a dispatcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Joined {
    pub dispatcher_id: u32,
    pub native: bool,
    /// 0-based.
    pub index: usize,
    pub count: usize,
}

/// Attempts to swap in a dispatcher: a concurrent change of the interface
/// makes the replace fail, and the whole read-build-swap starts over.
const TRIES: u32 = 3;

/// Joins the dispatcher on `ifindex`, or (`create`) puts a new one with
/// only us on a free hook, native if the driver can, else generic.
/// Components of an earlier run of ours are dropped on the way.
pub fn join(
    ifindex: u32,
    create: bool,
    ours: &mut Ours<'_>,
) -> Result<Option<Joined>, LibxdpError> {
    let _lock = Lock::acquire()?;
    for _ in 0..TRIES {
        let old = match inspect(ifindex)? {
            Hook::Dispatcher(d) => Some(d),
            Hook::Free if create => None,
            _ => return Ok(None),
        };
        let mut entries = vec![Entry::Ours];
        if let Some(d) = &old {
            entries.extend(
                d.components
                    .iter()
                    .filter(|c| !ours.owns(&c.info))
                    .map(Entry::Theirs),
            );
        }
        let built = build(ifindex, entries, ours)?;
        let modes: &[bool] = match &old {
            Some(d) => &[d.native],
            None => &[true, false],
        };
        let mut last = None;
        for &native in modes {
            match swap(ifindex, &built, old.as_ref(), native) {
                Ok(()) => {
                    if let Some(d) = &old {
                        remove_pins(&d.pin_dir());
                    }
                    return Ok(Some(Joined {
                        dispatcher_id: built.info.id,
                        native,
                        index: built.ours.unwrap_or(0),
                        count: built.config.num_progs_enabled as usize,
                    }));
                }
                Err(e) => last = Some(e),
            }
        }
        remove_pins(&built.dir);
        match last {
            // Someone changed the hook meanwhile: read it again.
            Some(NetlinkError::Request { source, .. })
                if matches!(source.raw_os_error(), Some(libc::EEXIST | libc::EBUSY))
                    && old.is_some() =>
            {
                debug!(ifindex, "XDP hook changed during the swap; again");
                continue;
            }
            Some(e) => return Err(e.into()),
            None => unreachable!("at least one mode is tried"),
        }
    }
    Err(LibxdpError::Raced {
        ifindex,
        tries: TRIES,
    })
}

fn swap(
    ifindex: u32,
    new: &Built,
    old: Option<&Installed>,
    native: bool,
) -> Result<(), NetlinkError> {
    let mode = if native {
        xdp_flags::DRV_MODE
    } else {
        xdp_flags::SKB_MODE
    };
    match old {
        Some(old) => netlink::xdp_set(
            ifindex,
            Some(&new.fd.as_fd()),
            mode | xdp_flags::REPLACE,
            Some(&old.fd),
        ),
        None => netlink::xdp_set(
            ifindex,
            Some(&new.fd.as_fd()),
            mode | xdp_flags::UPDATE_IF_NOEXIST,
            None::<&OwnedFd>,
        ),
    }
}

/// Takes our components (this run's and any an earlier run left) out of
/// the dispatcher on `ifindex`; the others stay, in a new dispatcher, or
/// the hook is freed if none remain. Nothing happens if we are not there.
pub fn leave(ifindex: u32, ours: &mut Ours<'_>) -> Result<bool, LibxdpError> {
    let _lock = Lock::acquire()?;
    for _ in 0..TRIES {
        let Hook::Dispatcher(old) = inspect(ifindex)? else {
            return Ok(false);
        };
        if !old.components.iter().any(|c| ours.owns(&c.info)) {
            return Ok(false);
        }
        let rest: Vec<Entry<'_>> = old
            .components
            .iter()
            .filter(|c| !ours.owns(&c.info))
            .map(Entry::Theirs)
            .collect();
        let mode = if old.native {
            xdp_flags::DRV_MODE
        } else {
            xdp_flags::SKB_MODE
        };
        let result = if rest.is_empty() {
            netlink::xdp_set(
                ifindex,
                None::<&OwnedFd>,
                mode | xdp_flags::REPLACE,
                Some(&old.fd),
            )
        } else {
            let built = build(ifindex, rest, ours)?;
            let r = swap(ifindex, &built, Some(&old), old.native);
            if r.is_err() {
                remove_pins(&built.dir);
            }
            r
        };
        match result {
            Ok(()) => {
                remove_pins(&old.pin_dir());
                return Ok(true);
            }
            Err(NetlinkError::Request { source, .. })
                if matches!(source.raw_os_error(), Some(libc::EEXIST | libc::EBUSY)) =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(LibxdpError::Raced {
        ifindex,
        tries: TRIES,
    })
}

/// Our place in the dispatcher on `ifindex`, if we are in one.
pub fn placement(ifindex: u32, map_ids: &[u32]) -> Result<Option<(Joined, u32)>, LibxdpError> {
    let _lock = Lock::acquire()?;
    let Hook::Dispatcher(d) = inspect(ifindex)? else {
        return Ok(None);
    };
    let count = d.components.len();
    Ok(d.components
        .iter()
        .position(|c| c.info.map_ids.iter().any(|m| map_ids.contains(m)))
        .map(|index| {
            (
                Joined {
                    dispatcher_id: d.info.id,
                    native: d.native,
                    index,
                    count,
                },
                d.config.run_prios[index],
            )
        }))
}

/// A dispatcher of one slot with `component` in `prog0`, not attached
/// anywhere: what the benchmark runs with BPF_PROG_TEST_RUN.
pub fn bench_dispatcher(component: &mut Extension) -> Result<aya::Ebpf, LibxdpError> {
    let mut config = Config {
        magic: MAGIC,
        dispatcher_version: VERSION,
        num_progs_enabled: 1,
        is_xdp_frags: 0,
        chain_call_actions: [0; SLOTS],
        run_prios: [0; SLOTS],
        program_flags: [0; SLOTS],
    };
    config.chain_call_actions[0] = 1 << XDP_PASS | STUB_RETVAL_BIT;
    config.run_prios[0] = RUN_PRIORITY;
    let (ebpf, fd) = load_dispatcher(&config)?;
    if component.fd().is_err() {
        component
            .load(fd, "prog0")
            .map_err(|e| LibxdpError::NoExtensions(e.to_string()))?;
        let link = component
            .attach()
            .map_err(|e| LibxdpError::NoExtensions(e.to_string()))?;
        // Kept for the life of the program (and of the benchmark).
        std::mem::forget(component.take_link(link));
    } else {
        let link = component
            .attach_to_program(&fd, "prog0")
            .map_err(|e| LibxdpError::NoExtensions(e.to_string()))?;
        std::mem::forget(component.take_link(link));
    }
    Ok(ebpf)
}

/// Logs what a failed attempt leaves: nothing of ours is attached.
pub fn warn_not_joined(interface: &str, e: &LibxdpError) {
    warn!(%interface, error = %e, "could not join the libxdp dispatcher");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_bytes_decode_as_libxdp_writes_them() {
        let mut b = vec![0u8; 124];
        b[0] = MAGIC;
        b[1] = VERSION;
        b[2] = 2;
        b[4..8].copy_from_slice(&(STUB_RETVAL_BIT | 1 << XDP_PASS).to_ne_bytes());
        b[44..48].copy_from_slice(&10u32.to_ne_bytes());
        b[48..52].copy_from_slice(&50u32.to_ne_bytes());
        b[84..88].copy_from_slice(&BPF_F_XDP_HAS_FRAGS.to_ne_bytes());
        let c = Config::from_bytes(&b).unwrap();
        assert_eq!(c.num_progs_enabled, 2);
        assert_eq!(c.chain_call_actions[0], STUB_RETVAL_BIT | 4);
        assert_eq!(c.run_prios[..2], [10, 50]);
        assert_eq!(c.program_flags[0], BPF_F_XDP_HAS_FRAGS);
        assert!(Config::from_bytes(&b[..100]).is_none());
    }

    #[test]
    fn pins_follow_libxdp_names() {
        assert!(pin_dir(7, 42).ends_with("xdp/dispatch-7-42"));
    }
}
