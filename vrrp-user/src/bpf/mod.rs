//! Loading the XDP recorder, pinning and reading its maps.
//!
//! The object is embedded at build time (see build.rs). Maps are pinned under
//! `/sys/fs/bpf/xvrrpd/v<layout>/<name>/` (see [`pin`]) so `bpftool map dump
//! pinned …` shows what the kernel recorded, and so `xvrrpd peers` can read a
//! running daemon's records.

pub mod instance;
pub mod pin;

use std::{
    collections::{BTreeSet, HashMap as StdHashMap},
    net::IpAddr,
    path::{Path, PathBuf},
};

use aya::{
    maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, RingBuf},
    programs::{ProgramError, Xdp, XdpMode},
    Ebpf, EbpfError, EbpfLoader,
};
use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tracing::{info, warn};
use vrrp_common::{
    Counters, InstanceConfig, InstanceKey, PeerKey, PeerRecord, PeerTable, BASELINE_PROGRAM_NAME,
    MAP_CONFIG_GEN, MAP_COUNTERS, MAP_EVENTS, MAP_INSTANCES, MAP_PEERS, MAP_SOURCES, MAX_INSTANCES,
    PROGRAM_NAME,
};

pub use instance::{Delivery, XdpConfigError, XdpInstance};

use crate::time::Mono;

#[cfg(xvrrpd_ebpf)]
static OBJECT: &[u8] = aya::include_bytes_aligned!(env!("XVRRPD_EBPF_OBJECT"));
#[cfg(not(xvrrpd_ebpf))]
static OBJECT: &[u8] = &[];

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
    #[error("program {PROGRAM_NAME} missing from the XDP object")]
    ProgramMissing,
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
    #[error("loading program {PROGRAM_NAME} into the kernel: {0}")]
    ProgramLoad(#[source] ProgramError),
    #[error("attaching XDP to interface {interface}: {source}")]
    Attach {
        interface: String,
        #[source]
        source: ProgramError,
    },
    #[error("test run of {PROGRAM_NAME}: {0}")]
    TestRun(#[source] ProgramError),
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

fn test_run(
    program: &mut Xdp,
    frame: &[u8],
    repeat: u32,
) -> Result<(u32, std::time::Duration), BpfError> {
    use aya::programs::{TestRun, TestRunOptions};
    let mut opts = TestRunOptions::new();
    opts.data_in = Some(frame);
    opts.repeat = repeat.max(1);
    let result = program.test_run(opts).map_err(BpfError::TestRun)?;
    Ok((result.return_value, result.duration))
}

/// How the program ended up attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    Native,
    Generic,
}

/// The loaded recorder: program, maps and the event ring buffer.
pub struct Recorder {
    ebpf: Ebpf,
    pub maps: Maps,
    events: Option<RingBuf<MapData>>,
    pin_dir: PathBuf,
    /// Interface name, its index when attached, and the link.
    attached: Vec<(String, u32, aya::programs::xdp::XdpLinkId)>,
}

impl Recorder {
    /// Loads the program and pins its maps in `pin_dir` (created if needed).
    /// Maps left pinned by an earlier run of the same layout are reused and emptied.
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
        let mut ebpf = loader.load(OBJECT).map_err(|source| BpfError::Load {
            pin_dir: pin_dir.to_owned(),
            source: Box::new(source),
        })?;
        let mut maps = Maps::take(&mut ebpf)?;
        maps.clear()?;
        let events = ebpf
            .take_map(MAP_EVENTS)
            .ok_or(BpfError::MapMissing(MAP_EVENTS))
            .and_then(|m| typed::<RingBuf<MapData>>(MAP_EVENTS, m))?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(BpfError::ProgramMissing)?
            .try_into()
            .map_err(BpfError::ProgramLoad)?;
        program.load().map_err(BpfError::ProgramLoad)?;
        Ok(Self {
            ebpf,
            maps,
            events: Some(events),
            pin_dir: pin_dir.to_owned(),
            attached: Vec::new(),
        })
    }

    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    fn program(&mut self) -> Result<&mut Xdp, BpfError> {
        self.ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(BpfError::ProgramMissing)?
            .try_into()
            .map_err(BpfError::ProgramLoad)
    }

    /// Attaches in native (driver) mode, falling back to generic with a log line.
    /// An interface deleted and created again under its name (a new index)
    /// gets the program again.
    pub fn attach(&mut self, interface: &str) -> Result<AttachMode, BpfError> {
        let ifindex = nix::net::if_::if_nametoindex(interface).unwrap_or(0);
        if let Some(k) = self.attached.iter().position(|(i, _, _)| i == interface) {
            if self.attached[k].1 == ifindex {
                return Ok(AttachMode::Native);
            }
            // The kernel detached it with the old interface; close our link.
            let (_, _, stale) = self.attached.remove(k);
            let _ = self.program().map(|p| p.detach(stale));
        }
        let program = self.program()?;
        let (link, mode) = match program.attach(interface, XdpMode::Driver) {
            Ok(link) => (link, AttachMode::Native),
            Err(native) => {
                warn!(%interface, error = %native, "native XDP refused; falling back to generic (skb) mode");
                let link =
                    program
                        .attach(interface, XdpMode::Skb)
                        .map_err(|source| BpfError::Attach {
                            interface: interface.to_owned(),
                            source,
                        })?;
                (link, AttachMode::Generic)
            }
        };
        info!(%interface, ?mode, "XDP recorder attached");
        self.attached.push((interface.to_owned(), ifindex, link));
        Ok(mode)
    }

    /// Detaches from every interface. Also happens on drop (the link fds close).
    pub fn detach_all(&mut self) {
        let attached = std::mem::take(&mut self.attached);
        for (interface, _, link) in attached {
            match self.program().map(|p| p.detach(link)) {
                Ok(Ok(())) => info!(%interface, "XDP recorder detached"),
                Ok(Err(e)) => warn!(%interface, error = %e, "detaching XDP"),
                Err(e) => warn!(%interface, error = %e, "detaching XDP"),
            }
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
        test_run(self.program()?, frame, repeat)
    }

    /// The same measurement for the empty XDP_PASS baseline in the object.
    pub fn test_run_baseline(
        &mut self,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, std::time::Duration), BpfError> {
        let program: &mut Xdp = self
            .ebpf
            .program_mut(BASELINE_PROGRAM_NAME)
            .ok_or(BpfError::ProgramMissing)?
            .try_into()
            .map_err(BpfError::ProgramLoad)?;
        if program.fd().is_err() {
            program.load().map_err(BpfError::ProgramLoad)?;
        }
        test_run(program, frame, repeat)
    }

    /// Detaches and removes the pins (the daemon's clean shutdown).
    pub fn shutdown(self) {
        drop(self)
    }
}

/// Pins live as long as the recorder: a stopped daemon leaves nothing in bpffs.
impl Drop for Recorder {
    fn drop(&mut self) {
        self.detach_all();
        pin::remove_dir(&self.pin_dir);
    }
}
