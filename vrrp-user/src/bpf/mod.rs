//! Loading the recorder, attaching it beside other programs, pinning and
//! reading its maps.
//!
//! The objects are embedded at build time (see build.rs): the recorder's
//! (`vrrp_rx` for XDP, `vrrp_rx_libxdp` as a libxdp component, `vrrp_rx_tc`
//! for tc ingress, one set of maps) and a libxdp dispatcher's. Maps are
//! pinned under `/sys/fs/bpf/xvrrpd/v<layout>/<name>/` (see [`pin`]) so
//! `bpftool map dump pinned …` shows what the kernel recorded, and so
//! `xvrrpd peers` can read a running daemon's records. Where the recorder
//! runs on each interface is [`attach`]'s business.

pub mod attach;
pub mod instance;
pub mod libxdp;
pub mod netlink;
pub mod pin;
pub mod sys;

use std::{
    collections::{BTreeSet, HashMap as StdHashMap},
    net::IpAddr,
    path::{Path, PathBuf},
};

use aya::{
    maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, RingBuf},
    programs::{
        tc::{self, SchedClassifierLinkId, TcAttachOptions},
        xdp::XdpLinkId,
        Extension, LinkOrder, ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode,
    },
    Ebpf, EbpfError, EbpfLoader,
};
use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tracing::{debug, info, warn};
use vrrp_common::{
    Counters, InstanceConfig, InstanceKey, PeerKey, PeerRecord, PeerTable, BASELINE_PROGRAM_NAME,
    MAP_CONFIG_GEN, MAP_COUNTERS, MAP_EVENTS, MAP_INSTANCES, MAP_PEERS, MAP_SOURCES, MAX_INSTANCES,
    PROGRAM_NAME,
};

pub use attach::{AttachMode, Hook, Placement};
pub use instance::{Delivery, XdpConfigError, XdpInstance};

use crate::time::Mono;

#[cfg(xvrrpd_ebpf)]
static OBJECT: &[u8] = aya::include_bytes_aligned!(env!("XVRRPD_EBPF_OBJECT"));
#[cfg(not(xvrrpd_ebpf))]
static OBJECT: &[u8] = &[];
#[cfg(xvrrpd_ebpf)]
static DISPATCHER_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("XVRRPD_DISPATCHER_OBJECT"));
#[cfg(not(xvrrpd_ebpf))]
static DISPATCHER_OBJECT: &[u8] = &[];

/// The libxdp dispatcher object (see `vrrp-ebpf/src/bin/xdp-dispatcher.rs`).
pub(crate) fn dispatcher_object() -> Option<&'static [u8]> {
    (!DISPATCHER_OBJECT.is_empty()).then_some(DISPATCHER_OBJECT)
}

/// Programs of the recorder's object.
pub const TC_PROGRAM_NAME: &str = "vrrp_rx_tc";
const TC_BASELINE_NAME: &str = "tc_pass_baseline";
const COMPONENT_BASELINE_NAME: &str = "xdp_pass_component";

#[derive(Debug, Error)]
pub enum BpfError {
    #[error("xvrrpd was built without its XDP object: run `cargo xtask build-ebpf`, then rebuild xvrrpd")]
    ObjectMissing,
    #[error("loading the XDP object (pins in {pin_dir}): {source}")]
    Load {
        pin_dir: PathBuf,
        #[source]
        source: Box<EbpfError>,
    },
    #[error("program {0} missing from the XDP object")]
    ProgramMissing(&'static str),
    #[error("map {0} missing from the XDP object")]
    MapMissing(&'static str),
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("opening pinned map {path}: {source} (is an xvrrpd running with this pin directory?)")]
    OpenPinned {
        path: PathBuf,
        #[source]
        source: MapError,
    },
    #[error("loading program {name} into the kernel: {source}")]
    ProgramLoad {
        name: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("attaching the recorder ({how}) to interface {interface}: {source}")]
    Attach {
        interface: String,
        how: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("interface {interface}: {source}")]
    Interface {
        interface: String,
        #[source]
        source: nix::Error,
    },
    #[error(
        "interface {interface}: the XDP hook holds {holder}, which xvrrpd never replaces; \
             run with the attach mode auto or tc (--attach, xvrrpd_attach) to record at tc ingress"
    )]
    XdpHookTaken { interface: String, holder: String },
    #[error("interface {interface}: {source}")]
    Libxdp {
        interface: String,
        #[source]
        source: libxdp::LibxdpError,
    },
    #[error("interface {interface}: {source}")]
    Netlink {
        interface: String,
        #[source]
        source: netlink::NetlinkError,
    },
    #[error("test run of {name}: {source}")]
    TestRun {
        name: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("reading /sys/devices/system/cpu/possible: {0}")]
    CpuCount(#[source] std::io::Error),
    #[error("all {MAX_INSTANCES} instance slots of the XDP maps are taken")]
    InstancesFull,
    #[error("instance (ifindex {}, family {}, VRID {}) is not registered", .0.ifindex, .0.family, .0.vrid)]
    NotRegistered(InstanceKey),
    #[error("{source_addr} is not of the instance's address family")]
    SourceFamily { source_addr: IpAddr },
    #[error(transparent)]
    Config(#[from] XdpConfigError),
    #[error(transparent)]
    Pin(#[from] pin::PinError),
}

/// Typed handles on the recorder's maps, from a loaded object or from pins.
///
/// INSTANCES (key → [`InstanceConfig`]) is written here only; PEERS (one
/// [`PeerTable`] per instance, at `InstanceConfig::table`) by the kernel
/// only, except that registering or removing an instance zeroes its table.
pub struct Maps {
    // Private: every change to INSTANCES must also bump CONFIG_GEN.
    instances: HashMap<MapData, InstanceKey, InstanceConfig>,
    peers: Array<MapData, PeerTable>,
    sources: HashMap<MapData, PeerKey, u8>,
    counters: PerCpuArray<MapData, Counters>,
    /// MAP_CONFIG_GEN: bumped after every change to INSTANCES so the
    /// program drops its cached copies. Pinned too: the daemon's advert
    /// thread changes flags through a handle opened from the pins.
    config_gen: Option<Array<MapData, u64>>,
    /// Table index of each instance registered through this handle, so
    /// reading one instance's peers is one lookup.
    tables: StdHashMap<InstanceKey, u32>,
}

fn typed<T>(name: &'static str, map: Map) -> Result<T, BpfError>
where
    T: TryFrom<Map, Error = MapError>,
{
    T::try_from(map).map_err(|source| BpfError::Map { name, source })
}

fn map_err(name: &'static str) -> impl Fn(MapError) -> BpfError {
    move |source| BpfError::Map { name, source }
}

impl Maps {
    fn take(ebpf: &mut Ebpf) -> Result<Self, BpfError> {
        let mut take = |name: &'static str| ebpf.take_map(name).ok_or(BpfError::MapMissing(name));
        Ok(Self {
            instances: typed(MAP_INSTANCES, take(MAP_INSTANCES)?)?,
            peers: typed(MAP_PEERS, take(MAP_PEERS)?)?,
            sources: typed(MAP_SOURCES, take(MAP_SOURCES)?)?,
            counters: typed(MAP_COUNTERS, take(MAP_COUNTERS)?)?,
            config_gen: Some(typed(MAP_CONFIG_GEN, take(MAP_CONFIG_GEN)?)?),
            tables: StdHashMap::new(),
        })
    }

    /// Opens the maps a running daemon pinned in `dir`.
    pub fn open_pinned(dir: &Path) -> Result<Self, BpfError> {
        let open = |name: &'static str| {
            let path = dir.join(name);
            MapData::from_pin(&path).map_err(|source| BpfError::OpenPinned { path, source })
        };
        Ok(Self {
            instances: typed(MAP_INSTANCES, Map::HashMap(open(MAP_INSTANCES)?))?,
            peers: typed(MAP_PEERS, Map::Array(open(MAP_PEERS)?))?,
            sources: typed(MAP_SOURCES, Map::HashMap(open(MAP_SOURCES)?))?,
            counters: typed(MAP_COUNTERS, Map::PerCpuArray(open(MAP_COUNTERS)?))?,
            // Absent only beside an older daemon; a reader then never writes.
            config_gen: open(MAP_CONFIG_GEN)
                .ok()
                .map(|m| typed(MAP_CONFIG_GEN, Map::Array(m)))
                .transpose()?,
            tables: StdHashMap::new(),
        })
    }

    /// The ID of the PEERS map: every program of this recorder uses it.
    pub fn peers_map_id(&self) -> Result<u32, BpfError> {
        use std::os::fd::AsFd;
        let fd = aya::maps::IterableMap::map(&self.peers).fd().as_fd();
        sys::map_info(fd).map(|i| i.id).map_err(|e| BpfError::Map {
            name: MAP_PEERS,
            source: MapError::SyscallError(aya::sys::SyscallError {
                call: "BPF_OBJ_GET_INFO_BY_FD",
                io_error: std::io::Error::other(e.to_string()),
            }),
        })
    }

    /// Tells the program its cached configurations are stale; after every
    /// change to INSTANCES.
    fn instances_changed(&mut self) -> Result<(), BpfError> {
        let Some(gen) = self.config_gen.as_mut() else {
            return Ok(());
        };
        let now = gen.get(&0, 0).map_err(map_err(MAP_CONFIG_GEN))?;
        gen.set(0, now.wrapping_add(1), 0)
            .map_err(map_err(MAP_CONFIG_GEN))
    }

    /// The configuration the kernel holds for `key`, if registered.
    pub fn instance(&self, key: InstanceKey) -> Result<Option<InstanceConfig>, BpfError> {
        match self.instances.get(&key, 0) {
            Ok(c) => Ok(Some(c)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(BpfError::Map {
                name: MAP_INSTANCES,
                source,
            }),
        }
    }

    /// Registers `instance` and its unicast peers under `key`.
    pub fn register(&mut self, key: InstanceKey, instance: &XdpInstance) -> Result<(), BpfError> {
        self.set_instance(key, instance.config()?)?;
        self.set_sources(key, instance.unicast_peers())
    }

    /// Registers (or updates) an instance so the kernel accepts its adverts.
    ///
    /// A new instance gets a free table, zeroed; an update keeps the table
    /// and what the kernel recorded in it (the `table` and `generation` of
    /// `config` are ignored: the generation is bumped on every change).
    pub fn set_instance(
        &mut self,
        key: InstanceKey,
        mut config: InstanceConfig,
    ) -> Result<(), BpfError> {
        match self.instance(key)? {
            Some(existing) => {
                config.table = existing.table;
                config.generation = existing.generation.wrapping_add(1);
            }
            None => {
                let used: BTreeSet<u32> = self
                    .instances
                    .iter()
                    .map(|r| r.map(|(_, c)| c.table))
                    .collect::<Result<_, _>>()
                    .map_err(map_err(MAP_INSTANCES))?;
                config.table = (0..MAX_INSTANCES)
                    .find(|t| !used.contains(t))
                    .ok_or(BpfError::InstancesFull)?;
                config.generation = 0;
                // Zeroed before the kernel can find it, so a new instance
                // never inherits a removed one's peers.
                self.peers
                    .set(config.table, PeerTable::default(), 0)
                    .map_err(map_err(MAP_PEERS))?;
            }
        }
        self.instances
            .insert(key, config, 0)
            .map_err(map_err(MAP_INSTANCES))?;
        self.tables.insert(key, config.table);
        self.instances_changed()
    }

    /// Changes a registered instance's configuration in place.
    pub fn update_instance(
        &mut self,
        key: InstanceKey,
        change: impl FnOnce(&mut InstanceConfig),
    ) -> Result<(), BpfError> {
        let mut config = self.instance(key)?.ok_or(BpfError::NotRegistered(key))?;
        change(&mut config);
        config.generation = config.generation.wrapping_add(1);
        self.instances
            .insert(key, config, 0)
            .map_err(map_err(MAP_INSTANCES))?;
        self.instances_changed()
    }

    /// Names the current master (`None`: none known, or we are it): its
    /// record is then never evicted, whatever floods the instance.
    pub fn set_master(&mut self, key: InstanceKey, master: Option<IpAddr>) -> Result<(), BpfError> {
        use vrrp_common::instance_flags::MASTER_KNOWN;
        if let Some(m) = master {
            if vrrp_common::family_of(&m) != key.family {
                return Err(BpfError::SourceFamily { source_addr: m });
            }
        }
        self.update_instance(key, |c| match master {
            Some(m) => {
                c.flags |= MASTER_KNOWN;
                c.master = vrrp_common::addr_bytes(m);
            }
            None => {
                c.flags &= !MASTER_KNOWN;
                c.master = [0; 16];
            }
        })
    }

    /// As master every advert heard matters: the kernel then wakes us for each.
    pub fn set_wake_on_any(&mut self, key: InstanceKey, on: bool) -> Result<(), BpfError> {
        use vrrp_common::instance_flags::WAKE_ON_ANY;
        self.update_instance(key, |c| {
            if on {
                c.flags |= WAKE_ON_ANY;
            } else {
                c.flags &= !WAKE_ON_ANY;
            }
        })
    }

    /// Unregisters an instance and forgets its peers and sources.
    pub fn remove_instance(&mut self, key: InstanceKey) -> Result<(), BpfError> {
        let config = self.instance(key)?;
        remove_ok_if_absent(MAP_INSTANCES, self.instances.remove(&key))?;
        self.tables.remove(&key);
        self.instances_changed()?;
        if let Some(config) = config {
            self.peers
                .set(config.table, PeerTable::default(), 0)
                .map_err(map_err(MAP_PEERS))?;
        }
        for s in self.sources_of(key)? {
            remove_ok_if_absent(MAP_SOURCES, self.sources.remove(&s))?;
        }
        Ok(())
    }

    fn sources_of(&self, key: InstanceKey) -> Result<Vec<PeerKey>, BpfError> {
        self.sources
            .keys()
            .filter(|k| k.as_ref().map_or(true, |k| k.instance() == key))
            .collect::<Result<_, _>>()
            .map_err(map_err(MAP_SOURCES))
    }

    /// Bumps the instance's generation so the kernel checks its recorded
    /// peers against SOURCES again.
    fn sources_changed(&mut self, key: InstanceKey) -> Result<(), BpfError> {
        if self.instance(key)?.is_none() {
            return Ok(());
        }
        self.update_instance(key, |_| ())
    }

    /// Adds a configured unicast peer (allowed with CHECK_UNICAST_SRC, never evicted).
    pub fn allow_source(&mut self, peer: PeerKey) -> Result<(), BpfError> {
        self.sources
            .insert(peer, 1, 0)
            .map_err(map_err(MAP_SOURCES))?;
        self.sources_changed(peer.instance())
    }

    /// Makes `peers` the instance's configured unicast peers.
    pub fn set_sources(&mut self, key: InstanceKey, peers: &[IpAddr]) -> Result<(), BpfError> {
        let wanted = peers
            .iter()
            .map(|p| PeerKey::for_source(key, *p).ok_or(BpfError::SourceFamily { source_addr: *p }))
            .collect::<Result<Vec<_>, _>>()?;
        let current = self.sources_of(key)?;
        for old in current.iter().filter(|k| !wanted.contains(k)) {
            remove_ok_if_absent(MAP_SOURCES, self.sources.remove(old))?;
        }
        for new in wanted.iter().filter(|k| !current.contains(k)) {
            self.sources
                .insert(*new, 1, 0)
                .map_err(map_err(MAP_SOURCES))?;
        }
        if wanted.len() != current.len() || wanted.iter().any(|k| !current.contains(k)) {
            self.sources_changed(key)?;
        }
        Ok(())
    }

    /// Remembers which table `key` uses, so that reading its peers through
    /// this handle is one lookup (a handle opened from the pins does not
    /// know the tables of instances registered elsewhere). Call again after
    /// the instance is registered anew.
    pub fn learn_table(&mut self, key: InstanceKey) -> Result<(), BpfError> {
        match self.instance(key)? {
            Some(c) => {
                self.tables.insert(key, c.table);
            }
            None => {
                self.tables.remove(&key);
            }
        }
        Ok(())
    }

    /// Every registered instance.
    pub fn instance_keys(&self) -> Result<Vec<InstanceKey>, BpfError> {
        self.instances
            .keys()
            .collect::<Result<_, _>>()
            .map_err(map_err(MAP_INSTANCES))
    }

    /// Where the programs using these maps run, on each interface an
    /// instance is registered on (see [`attach::find`]).
    pub fn placements(&self) -> Result<Vec<Placement>, BpfError> {
        let map_ids = [self.peers_map_id()?];
        let mut ifindexes: Vec<u32> = self.instance_keys()?.iter().map(|k| k.ifindex).collect();
        ifindexes.sort_unstable();
        ifindexes.dedup();
        Ok(ifindexes
            .into_iter()
            .flat_map(|i| attach::find(&crate::status::interface_name(i), i, &map_ids))
            .collect())
    }

    /// The raw peer table of one instance (stale and free slots included).
    pub fn peer_table(&self, key: InstanceKey) -> Result<Option<PeerTable>, BpfError> {
        let table = match self.tables.get(&key) {
            Some(t) => *t,
            None => match self.instance(key)? {
                Some(c) => c.table,
                None => return Ok(None),
            },
        };
        self.peers
            .get(&table, 0)
            .map(Some)
            .map_err(map_err(MAP_PEERS))
    }

    /// The live (not stale) peers of one instance: one map lookup when the
    /// instance was registered through this handle.
    pub fn peers_of(&self, key: InstanceKey) -> Result<Vec<(PeerKey, PeerRecord)>, BpfError> {
        Ok(match self.peer_table(key)? {
            Some(table) => live_peers(key, &table, Mono::now()),
            None => Vec::new(),
        })
    }

    /// The live peers of every instance: those registered through this
    /// handle (one lookup each), or, for a handle opened from pins, every
    /// registered instance.
    pub fn all_peers(&self) -> Result<Vec<(PeerKey, PeerRecord)>, BpfError> {
        let instances: Vec<(InstanceKey, u32)> = if self.tables.is_empty() {
            self.instances
                .iter()
                .map(|r| r.map(|(k, c)| (k, c.table)))
                .collect::<Result<_, _>>()
                .map_err(map_err(MAP_INSTANCES))?
        } else {
            self.tables.iter().map(|(k, t)| (*k, *t)).collect()
        };
        let now = Mono::now();
        let mut all = Vec::new();
        for (key, table) in instances {
            let table = self.peers.get(&table, 0).map_err(map_err(MAP_PEERS))?;
            all.extend(live_peers(key, &table, now));
        }
        Ok(all)
    }

    /// One peer's record, if the kernel holds one (stale or not).
    pub fn peer(&self, key: &PeerKey) -> Result<Option<PeerRecord>, BpfError> {
        Ok(self.peer_table(key.instance())?.and_then(|t| {
            t.slots
                .iter()
                .find(|s| s.record.in_use() && s.addr == key.addr)
                .map(|s| s.record)
        }))
    }

    /// Counters summed over CPUs.
    pub fn counters(&self) -> Result<Counters, BpfError> {
        let per_cpu = self.counters.get(&0, 0).map_err(map_err(MAP_COUNTERS))?;
        let mut total = Counters::default();
        for c in per_cpu.iter() {
            total.accumulate(c);
        }
        Ok(total)
    }

    /// Empties every map (used between test cases and when a stale pin is reused).
    pub fn clear(&mut self) -> Result<(), BpfError> {
        fn drain<K: aya::Pod, V: aya::Pod>(
            name: &'static str,
            map: &mut HashMap<MapData, K, V>,
        ) -> Result<(), BpfError> {
            let keys: Vec<K> = map.keys().filter_map(Result::ok).collect();
            for k in keys {
                remove_ok_if_absent(name, map.remove(&k))?;
            }
            Ok(())
        }
        drain(MAP_INSTANCES, &mut self.instances)?;
        self.instances_changed()?;
        drain(MAP_SOURCES, &mut self.sources)?;
        self.tables.clear();
        for t in 0..MAX_INSTANCES {
            self.peers
                .set(t, PeerTable::default(), 0)
                .map_err(map_err(MAP_PEERS))?;
        }
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| BpfError::CpuCount(e))?;
        let zeros = aya::maps::PerCpuValues::try_from(vec![Counters::default(); cpus])
            .map_err(BpfError::CpuCount)?;
        self.counters
            .set(0, zeros, 0)
            .map_err(map_err(MAP_COUNTERS))
    }
}

/// The kernel's instance configurations and sources, for the userspace
/// checks (the blind-recorder canary puts the stack's adverts through them).
impl crate::packet::receive::Registry for Maps {
    fn instance(&self, key: &InstanceKey) -> Option<InstanceConfig> {
        Maps::instance(self, *key).ok().flatten()
    }

    fn is_listed(&self, peer: &PeerKey) -> bool {
        self.sources.get(peer, 0).is_ok()
    }
}

/// The in-use, not stale slots of `table` as (key, record), at `now`.
pub fn live_peers(key: InstanceKey, table: &PeerTable, now: Mono) -> Vec<(PeerKey, PeerRecord)> {
    table
        .slots
        .iter()
        .filter(|s| s.record.in_use() && !s.record.is_stale(now.as_nanos()))
        .map(|s| (PeerKey::in_instance(key, s.addr), s.record))
        .collect()
}

fn remove_ok_if_absent(name: &'static str, r: Result<(), MapError>) -> Result<(), BpfError> {
    match r {
        Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
        Err(source) => Err(BpfError::Map { name, source }),
    }
}

fn run_test<P>(
    name: &'static str,
    program: &P,
    frame: &[u8],
    repeat: u32,
) -> Result<(i64, std::time::Duration), BpfError>
where
    P: for<'a> aya::programs::TestRun<
        Opts<'a> = aya::programs::TestRunOptions<'a>,
        Result = aya::programs::TestRunResult,
    >,
{
    let mut opts = aya::programs::TestRunOptions::new();
    opts.data_in = Some(frame);
    opts.repeat = repeat.max(1);
    let result = program
        .test_run(opts)
        .map_err(|source| BpfError::TestRun { name, source })?;
    // The kernel's u32 return value; tc verdicts are small negatives.
    Ok((i64::from(result.return_value as i32), result.duration))
}

/// What runs on one interface, to detach it again.
enum Link {
    Xdp(XdpLinkId),
    Tc(SchedClassifierLinkId),
    /// A component of the libxdp dispatcher; leaving follows the protocol.
    Libxdp,
}

struct Attached {
    interface: String,
    ifindex: u32,
    link: Link,
    placement: Placement,
}

/// Detaches what a killed run whose maps are pinned in `pin_dir` left
/// attached: clsact filters and libxdp dispatcher components outlive their
/// process (XDP and tcx links do not). They are told by the maps they use,
/// so this must run before the pins go. Returns how many were removed.
pub fn release_leftover_attachments(pin_dir: &Path) -> usize {
    let Ok(fd) = sys::obj_get(&pin_dir.join(MAP_PEERS)) else {
        return 0;
    };
    let Ok(info) = sys::map_info(std::os::fd::AsFd::as_fd(&fd)) else {
        return 0;
    };
    let map_ids = [info.id];
    let Ok(interfaces) = nix::net::if_::if_nameindex() else {
        return 0;
    };
    let mut removed = 0;
    for i in interfaces.iter() {
        let (ifindex, interface) = (i.index(), i.name().to_string_lossy());
        removed += remove_tc_filters_using(&interface, ifindex, &map_ids);
        let mut ours = libxdp::Ours {
            extension: None,
            map_ids: &map_ids,
        };
        match libxdp::leave(ifindex, &mut ours) {
            Ok(true) => {
                removed += 1;
                info!(%interface, "removed the dispatcher component a killed xvrrpd left")
            }
            Ok(false) => {}
            Err(e) => {
                warn!(%interface, error = %e, "removing the dispatcher component a killed xvrrpd left")
            }
        }
    }
    removed
}

/// Deletes the clsact ingress filters on `ifindex` whose programs use one of
/// `map_ids` (ours, left behind); returns how many went.
fn remove_tc_filters_using(interface: &str, ifindex: u32, map_ids: &[u32]) -> usize {
    let Ok(stale) = attach::stale_tc_filters(ifindex, map_ids, None) else {
        return 0;
    };
    let mut removed = 0;
    for f in stale {
        match netlink::delete_ingress_filter(ifindex, &f) {
            Ok(()) => {
                removed += 1;
                info!(%interface, priority = f.priority, "removed a clsact filter of ours left behind")
            }
            Err(e) => warn!(%interface, error = %e, "removing a clsact filter of ours left behind"),
        }
    }
    removed
}

/// The loaded recorder: programs, maps and the event ring buffer.
pub struct Recorder {
    ebpf: Ebpf,
    pub maps: Maps,
    events: Option<RingBuf<MapData>>,
    pin_dir: PathBuf,
    attached: Vec<Attached>,
    /// IDs of the maps every program of ours uses: how ours are told apart
    /// from the others on an interface.
    map_ids: Vec<u32>,
    /// Dispatchers the libxdp benchmarks run (kept loaded while measured).
    bench_dispatchers: Vec<(&'static str, Ebpf)>,
}

impl Recorder {
    /// Loads the object and pins its maps in `pin_dir` (created if needed);
    /// programs are loaded (verified) when first attached or run. Maps left
    /// pinned by an earlier run of the same layout are reused and emptied.
    pub fn load(pin_dir: &Path) -> Result<Self, BpfError> {
        if OBJECT.is_empty() {
            return Err(BpfError::ObjectMissing);
        }
        pin::prepare_dir(pin_dir)?;
        // A failed load must not leave half the maps pinned.
        Self::load_pinned(pin_dir).inspect_err(|_| pin::remove_dir(pin_dir))
    }

    fn load_pinned(pin_dir: &Path) -> Result<Self, BpfError> {
        let names = [
            MAP_INSTANCES,
            MAP_PEERS,
            MAP_SOURCES,
            MAP_COUNTERS,
            MAP_EVENTS,
            MAP_CONFIG_GEN,
        ];
        let paths: Vec<PathBuf> = names.iter().map(|n| pin_dir.join(n)).collect();
        let mut loader = EbpfLoader::new();
        for (name, path) in names.iter().zip(&paths) {
            loader.map_pin_path(name, path.as_path());
        }
        loader
            .extension(libxdp::COMPONENT_NAME)
            .extension(COMPONENT_BASELINE_NAME);
        let mut ebpf = loader.load(OBJECT).map_err(|source| BpfError::Load {
            pin_dir: pin_dir.to_owned(),
            source: Box::new(source),
        })?;
        let mut maps = Maps::take(&mut ebpf)?;
        maps.clear()?;
        let map_ids = vec![maps.peers_map_id()?];
        let events = ebpf
            .take_map(MAP_EVENTS)
            .ok_or(BpfError::MapMissing(MAP_EVENTS))
            .and_then(|m| typed::<RingBuf<MapData>>(MAP_EVENTS, m))?;
        Ok(Self {
            ebpf,
            maps,
            events: Some(events),
            pin_dir: pin_dir.to_owned(),
            attached: Vec::new(),
            map_ids,
            bench_dispatchers: Vec::new(),
        })
    }

    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// IDs of the maps our programs use (see [`attach::find`]).
    pub fn map_ids(&self) -> &[u32] {
        &self.map_ids
    }

    /// The XDP program `name`, loaded if it was not yet.
    fn xdp(&mut self, name: &'static str) -> Result<&mut Xdp, BpfError> {
        let program: &mut Xdp = self
            .ebpf
            .program_mut(name)
            .ok_or(BpfError::ProgramMissing(name))?
            .try_into()
            .map_err(|source| BpfError::ProgramLoad { name, source })?;
        if program.fd().is_err() {
            program
                .load()
                .map_err(|source| BpfError::ProgramLoad { name, source })?;
        }
        Ok(program)
    }

    /// The tc program `name`, loaded if it was not yet.
    fn classifier(&mut self, name: &'static str) -> Result<&mut SchedClassifier, BpfError> {
        let program: &mut SchedClassifier = self
            .ebpf
            .program_mut(name)
            .ok_or(BpfError::ProgramMissing(name))?
            .try_into()
            .map_err(|source| BpfError::ProgramLoad { name, source })?;
        if program.fd().is_err() {
            program
                .load()
                .map_err(|source| BpfError::ProgramLoad { name, source })?;
        }
        Ok(program)
    }

    /// A component program (loaded against its first dispatcher, by `libxdp`).
    fn extension(&mut self, name: &'static str) -> Result<&mut Extension, BpfError> {
        self.ebpf
            .program_mut(name)
            .ok_or(BpfError::ProgramMissing(name))?
            .try_into()
            .map_err(|source| BpfError::ProgramLoad { name, source })
    }

    /// Where the recorder runs on `interface` now, as the kernel says.
    pub fn placement(&self, interface: &str) -> Option<Placement> {
        let a = self.attached.iter().find(|a| a.interface == interface)?;
        let live = attach::find(interface, a.ifindex, &self.map_ids);
        Some(
            live.into_iter()
                .find(|p| {
                    std::mem::discriminant(&p.hook) == std::mem::discriminant(&a.placement.hook)
                })
                .unwrap_or_else(|| a.placement.clone()),
        )
    }

    /// Attaches the recorder to `interface` as `mode` allows (see
    /// [`attach`]), once per interface; returns where it runs.
    /// An interface deleted and created again under its name (a new index)
    /// gets the recorder again.
    pub fn attach(&mut self, interface: &str, mode: AttachMode) -> Result<Placement, BpfError> {
        let ifindex =
            nix::net::if_::if_nametoindex(interface).map_err(|source| BpfError::Interface {
                interface: interface.to_owned(),
                source,
            })?;
        if let Some(k) = self
            .attached
            .iter()
            .position(|a| a.interface == interface && a.ifindex != ifindex)
        {
            // The kernel detached it with the old interface; close our link.
            let stale = self.attached.remove(k);
            self.detach_one(stale);
        }
        if let Some(p) = self.placement(interface) {
            return Ok(p);
        }
        self.remove_stale_tc(interface, ifindex);
        let (link, placement, why) = match mode {
            AttachMode::Tc => {
                let (link, p) = self.attach_tc(interface, ifindex)?;
                (link, p, "attach mode tc".to_owned())
            }
            AttachMode::Xdp => self.attach_xdp(interface, ifindex)?,
            AttachMode::Auto => self.attach_auto(interface, ifindex)?,
        };
        let placement = attach::find(interface, ifindex, &self.map_ids)
            .into_iter()
            .find(|p| std::mem::discriminant(&p.hook) == std::mem::discriminant(&placement.hook))
            .unwrap_or(placement);
        info!(%interface, %mode, placement = %placement, reason = %why, "recorder attached: {placement}");
        self.attached.push(Attached {
            interface: interface.to_owned(),
            ifindex,
            link,
            placement: placement.clone(),
        });
        Ok(placement)
    }

    fn libxdp_err(interface: &str) -> impl Fn(libxdp::LibxdpError) -> BpfError + '_ {
        move |source| BpfError::Libxdp {
            interface: interface.to_owned(),
            source,
        }
    }

    /// Joins (or with `create`, puts on a free hook) a libxdp dispatcher.
    fn join_libxdp(
        &mut self,
        interface: &str,
        ifindex: u32,
        create: bool,
    ) -> Result<Option<Placement>, libxdp::LibxdpError> {
        let map_ids = self.map_ids.clone();
        let extension = match self.extension(libxdp::COMPONENT_NAME) {
            Ok(e) => e,
            Err(e) => return Err(libxdp::LibxdpError::Load(e.to_string())),
        };
        let mut ours = libxdp::Ours {
            extension: Some(extension),
            map_ids: &map_ids,
        };
        Ok(
            libxdp::join(ifindex, create, &mut ours)?.map(|j| Placement {
                interface: interface.to_owned(),
                hook: Hook::Libxdp {
                    native: j.native,
                    priority: libxdp::RUN_PRIORITY,
                },
                position: Some((j.index + 1, j.count)),
            }),
        )
    }

    /// What the XDP hook holds, in words, and whether it is a dispatcher we can join.
    fn xdp_hook(interface: &str, ifindex: u32) -> Result<(String, bool, bool), BpfError> {
        let _lock = libxdp::Lock::acquire().map_err(Self::libxdp_err(interface))?;
        let hook = libxdp::inspect(ifindex).map_err(Self::libxdp_err(interface))?;
        Ok(match hook {
            libxdp::Hook::Free => ("nothing".into(), false, true),
            libxdp::Hook::Offloaded => ("only an offloaded program".into(), false, true),
            libxdp::Hook::Dispatcher(d) => (
                format!(
                    "a libxdp dispatcher (id {}) with {} program(s)",
                    d.info.id,
                    d.components.len()
                ),
                true,
                false,
            ),
            libxdp::Hook::OtherDispatcher { id, version } => (
                format!("a libxdp dispatcher of version {version} (id {id})"),
                false,
                false,
            ),
            libxdp::Hook::Program { info, native } => (
                format!(
                    "program {} (id {}, {})",
                    info.name,
                    info.id,
                    if native { "native" } else { "generic" }
                ),
                false,
                false,
            ),
        })
    }

    fn attach_auto(
        &mut self,
        interface: &str,
        ifindex: u32,
    ) -> Result<(Link, Placement, String), BpfError> {
        let (holder, dispatcher, _) = Self::xdp_hook(interface, ifindex)?;
        if dispatcher {
            match self.join_libxdp(interface, ifindex, false) {
                Ok(Some(p)) => return Ok((Link::Libxdp, p, format!("the XDP hook held {holder}"))),
                Ok(None) => {}
                Err(e) => libxdp::warn_not_joined(interface, &e),
            }
        }
        let (link, p) = self.attach_tc(interface, ifindex)?;
        let why = if dispatcher {
            format!("the XDP hook holds {holder}, which could not be joined")
        } else {
            format!("the XDP hook holds {holder}; it is left to other programs")
        };
        Ok((link, p, why))
    }

    fn attach_xdp(
        &mut self,
        interface: &str,
        ifindex: u32,
    ) -> Result<(Link, Placement, String), BpfError> {
        let (holder, dispatcher, free) = Self::xdp_hook(interface, ifindex)?;
        if !dispatcher && !free {
            return Err(BpfError::XdpHookTaken {
                interface: interface.to_owned(),
                holder,
            });
        }
        match self.join_libxdp(interface, ifindex, free) {
            Ok(Some(p)) => {
                return Ok((
                    Link::Libxdp,
                    p,
                    format!("attach mode xdp; the hook held {holder}"),
                ))
            }
            Ok(None) => {
                return Err(BpfError::XdpHookTaken {
                    interface: interface.to_owned(),
                    holder: "a program that appeared meanwhile".into(),
                })
            }
            Err(libxdp::LibxdpError::NoExtensions(e)) if free => {
                warn!(%interface, error = %e, "this kernel refuses program extensions: the recorder takes the XDP hook alone, and no other XDP program can attach while it runs");
            }
            Err(e) => return Err(Self::libxdp_err(interface)(e)),
        }
        let program = self.xdp(PROGRAM_NAME)?;
        let (link, native) = match program.attach(interface, XdpMode::Driver) {
            Ok(link) => (link, true),
            Err(native) => {
                warn!(%interface, error = %native, "native XDP refused; falling back to generic (skb) mode");
                let link =
                    program
                        .attach(interface, XdpMode::Skb)
                        .map_err(|source| BpfError::Attach {
                            interface: interface.to_owned(),
                            how: "xdp",
                            source,
                        })?;
                (link, false)
            }
        };
        let p = Placement {
            interface: interface.to_owned(),
            hook: Hook::Xdp { native },
            position: Some((1, 1)),
        };
        Ok((
            Link::Xdp(link),
            p,
            "attach mode xdp; program extensions unavailable".into(),
        ))
    }

    /// tcx ingress, first in its list (kernel ≥ 6.6), else a clsact filter.
    fn attach_tc(&mut self, interface: &str, ifindex: u32) -> Result<(Link, Placement), BpfError> {
        let program = self.classifier(TC_PROGRAM_NAME)?;
        let tcx = program.attach_with_options(
            interface,
            TcAttachType::Ingress,
            TcAttachOptions::TcxOrder(LinkOrder::first()),
        );
        let tcx_error = match tcx {
            Ok(link) => {
                let p = Placement {
                    interface: interface.to_owned(),
                    hook: Hook::Tcx,
                    position: None,
                };
                return Ok((Link::Tc(link), p));
            }
            Err(e) => e,
        };
        debug!(%interface, error = %tcx_error, "tcx refused; using a clsact filter");
        match tc::qdisc_add_clsact(interface) {
            Ok(()) => {
                info!(%interface, "added a clsact qdisc (left in place at exit: others may use it)")
            }
            Err(tc::TcError::AlreadyAttached) => {}
            // The qdisc is there already (ours from an earlier run, or
            // another's): the kernel says EEXIST, worded differently by
            // version ("Exclusivity flag on, cannot modify" on 6.1).
            Err(tc::TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => {
                return Err(BpfError::Attach {
                    interface: interface.to_owned(),
                    how: "tc clsact",
                    source: ProgramError::from(e),
                })
            }
        }
        let link = program
            .attach_with_options(
                interface,
                TcAttachType::Ingress,
                TcAttachOptions::Netlink(tc::NlOptions::default()),
            )
            .map_err(|source| BpfError::Attach {
                interface: interface.to_owned(),
                how: "tc clsact",
                source,
            })?;
        // The priority the kernel chose is read back by `attach::find`.
        let _ = ifindex;
        let p = Placement {
            interface: interface.to_owned(),
            hook: Hook::Tc { priority: 0 },
            position: None,
        };
        Ok((Link::Tc(link), p))
    }

    /// Removes clsact filters an earlier run of ours left on `interface`
    /// (killed before it could: they outlive the process, and keep
    /// recording into the pinned maps this run reuses).
    fn remove_stale_tc(&self, interface: &str, ifindex: u32) {
        remove_tc_filters_using(interface, ifindex, &self.map_ids);
    }

    /// Detaches from every interface (leaving libxdp dispatchers by the
    /// protocol, their other programs in place). Also happens on drop.
    pub fn detach_all(&mut self) {
        let attached = std::mem::take(&mut self.attached);
        for a in attached {
            self.detach_one(a);
        }
    }

    /// Detaches one attachment, logging the outcome.
    fn detach_one(&mut self, a: Attached) {
        let interface = a.interface;
        let result = match a.link {
            Link::Xdp(link) => self.xdp(PROGRAM_NAME).and_then(|p| {
                p.detach(link).map_err(|source| BpfError::Attach {
                    interface: interface.clone(),
                    how: "xdp detach",
                    source,
                })
            }),
            Link::Tc(link) => self.classifier(TC_PROGRAM_NAME).and_then(|p| {
                p.detach(link).map_err(|source| BpfError::Attach {
                    interface: interface.clone(),
                    how: "tc detach",
                    source,
                })
            }),
            Link::Libxdp => {
                let map_ids = self.map_ids.clone();
                self.extension(libxdp::COMPONENT_NAME)
                    .and_then(|extension| {
                        let mut ours = libxdp::Ours {
                            extension: Some(extension),
                            map_ids: &map_ids,
                        };
                        libxdp::leave(a.ifindex, &mut ours)
                            .map(|_| ())
                            .map_err(Self::libxdp_err(&interface))
                    })
            }
        };
        match result {
            Ok(()) => info!(%interface, "recorder detached ({})", a.placement.hook_words()),
            Err(e) => warn!(%interface, error = %e, "detaching the recorder"),
        }
        if matches!(a.placement.hook, Hook::Tc { .. }) {
            // A clsact filter outlives us if its delete missed it (seen on
            // 6.1 after a restart): none that uses our maps may stay.
            self.remove_stale_tc(&interface, a.ifindex);
        }
    }

    /// Takes the event ring buffer (the daemon polls it).
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
        self.events.take()
    }

    /// Takes the event ring buffer, registered with tokio's epoll.
    pub fn take_events_async(&mut self) -> std::io::Result<AsyncFd<RingBuf<MapData>>> {
        let ring = self
            .take_events()
            .ok_or_else(|| std::io::Error::other("event ring buffer already taken"))?;
        // SAFETY: the ring buffer owns its fd for as long as the AsyncFd owns it.
        unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
    }

    /// Runs `vrrp_rx` `repeat` times on `frame` with BPF_PROG_TEST_RUN;
    /// returns the verdict and the kernel-measured mean duration per run.
    /// The ingress interface is the loopback (ifindex 1), as the kernel sets it.
    pub fn test_run(
        &mut self,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, std::time::Duration), BpfError> {
        self.test_run_program(Bench::Xdp, frame, repeat)
            .map(|(v, d)| (v as u32, d))
    }

    /// The same measurement for the empty XDP_PASS baseline in the object.
    pub fn test_run_baseline(
        &mut self,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, std::time::Duration), BpfError> {
        self.test_run_program(Bench::XdpBaseline, frame, repeat)
            .map(|(v, d)| (v as u32, d))
    }

    /// BPF_PROG_TEST_RUN of one of the recorder's forms or its baseline
    /// (verdict as the program returned it, mean duration per run). The
    /// libxdp forms run a dispatcher of one slot with the component in
    /// `prog0`, as a dispatcher calls a component beside others.
    pub fn test_run_program(
        &mut self,
        which: Bench,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(i64, std::time::Duration), BpfError> {
        match which {
            Bench::Xdp => run_test(PROGRAM_NAME, self.xdp(PROGRAM_NAME)?, frame, repeat),
            Bench::XdpBaseline => run_test(
                BASELINE_PROGRAM_NAME,
                self.xdp(BASELINE_PROGRAM_NAME)?,
                frame,
                repeat,
            ),
            Bench::Tc => run_test(
                TC_PROGRAM_NAME,
                self.classifier(TC_PROGRAM_NAME)?,
                frame,
                repeat,
            ),
            Bench::TcBaseline => run_test(
                TC_BASELINE_NAME,
                self.classifier(TC_BASELINE_NAME)?,
                frame,
                repeat,
            ),
            Bench::Libxdp | Bench::LibxdpBaseline => {
                let component = if which == Bench::Libxdp {
                    libxdp::COMPONENT_NAME
                } else {
                    COMPONENT_BASELINE_NAME
                };
                if !self.bench_dispatchers.iter().any(|(n, _)| *n == component) {
                    let dispatcher =
                        libxdp::bench_dispatcher(self.extension(component)?).map_err(|e| {
                            BpfError::Libxdp {
                                interface: "(benchmark)".into(),
                                source: e,
                            }
                        })?;
                    self.bench_dispatchers.push((component, dispatcher));
                }
                let (_, ebpf) = self
                    .bench_dispatchers
                    .iter_mut()
                    .find(|(n, _)| *n == component)
                    .expect("added above");
                let program: &mut Xdp = ebpf
                    .program_mut(libxdp::DISPATCHER_NAME)
                    .ok_or(BpfError::ProgramMissing(libxdp::DISPATCHER_NAME))?
                    .try_into()
                    .map_err(|source| BpfError::ProgramLoad {
                        name: libxdp::DISPATCHER_NAME,
                        source,
                    })?;
                run_test(libxdp::DISPATCHER_NAME, program, frame, repeat)
            }
        }
    }

    /// Detaches and removes the pins (the daemon's clean shutdown).
    pub fn shutdown(self) {
        drop(self)
    }
}

/// What [`Recorder::test_run_program`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bench {
    Xdp,
    XdpBaseline,
    Libxdp,
    LibxdpBaseline,
    Tc,
    TcBaseline,
}

/// Pins live as long as the recorder: a stopped daemon leaves nothing in bpffs.
impl Drop for Recorder {
    fn drop(&mut self) {
        self.detach_all();
        pin::remove_dir(&self.pin_dir);
    }
}
