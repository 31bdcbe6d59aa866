//! Loading the XDP recorder, pinning and reading its maps.
//!
//! The object is embedded at build time (see build.rs). Maps are pinned under
//! `/sys/fs/bpf/xvrrpd/v<layout>/<name>/` (see [`pin`]) so `bpftool map dump
//! pinned …` shows what the kernel recorded, and so `xvrrpd peers` can read a
//! running daemon's records.

pub mod pin;

use std::path::{Path, PathBuf};

use aya::{
    maps::{HashMap, Map, MapData, MapError, PerCpuArray, RingBuf},
    programs::{ProgramError, Xdp, XdpMode},
    Ebpf, EbpfError, EbpfLoader,
};
use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tracing::{info, warn};
use vrrp_common::{
    Counters, InstanceConfig, InstanceKey, PeerKey, PeerRecord, BASELINE_PROGRAM_NAME,
    MAP_COUNTERS, MAP_EVENTS, MAP_INSTANCES, MAP_PEERS, MAP_SOURCES, PROGRAM_NAME,
};

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
    #[error(transparent)]
    Pin(#[from] pin::PinError),
}

/// Typed handles on the recorder's maps, from a loaded object or from pins.
pub struct Maps {
    pub instances: HashMap<MapData, InstanceKey, InstanceConfig>,
    pub peers: HashMap<MapData, PeerKey, PeerRecord>,
    pub sources: HashMap<MapData, PeerKey, u8>,
    pub counters: PerCpuArray<MapData, Counters>,
}

fn typed<T>(name: &'static str, map: Map) -> Result<T, BpfError>
where
    T: TryFrom<Map, Error = MapError>,
{
    T::try_from(map).map_err(|source| BpfError::Map { name, source })
}

impl Maps {
    fn take(ebpf: &mut Ebpf) -> Result<Self, BpfError> {
        let mut take = |name: &'static str| ebpf.take_map(name).ok_or(BpfError::MapMissing(name));
        Ok(Self {
            instances: typed(MAP_INSTANCES, take(MAP_INSTANCES)?)?,
            peers: typed(MAP_PEERS, take(MAP_PEERS)?)?,
            sources: typed(MAP_SOURCES, take(MAP_SOURCES)?)?,
            counters: typed(MAP_COUNTERS, take(MAP_COUNTERS)?)?,
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
            peers: typed(MAP_PEERS, Map::HashMap(open(MAP_PEERS)?))?,
            sources: typed(MAP_SOURCES, Map::HashMap(open(MAP_SOURCES)?))?,
            counters: typed(MAP_COUNTERS, Map::PerCpuArray(open(MAP_COUNTERS)?))?,
        })
    }

    /// Registers (or updates) an instance so the kernel accepts its adverts.
    pub fn set_instance(
        &mut self,
        key: InstanceKey,
        config: InstanceConfig,
    ) -> Result<(), BpfError> {
        self.instances
            .insert(key, config, 0)
            .map_err(|source| BpfError::Map {
                name: MAP_INSTANCES,
                source,
            })
    }

    /// Unregisters an instance and forgets its peers.
    pub fn remove_instance(&mut self, key: InstanceKey) -> Result<(), BpfError> {
        remove_ok_if_absent(MAP_INSTANCES, self.instances.remove(&key))?;
        for peer in self.peers_of(key)? {
            remove_ok_if_absent(MAP_PEERS, self.peers.remove(&peer.0))?;
        }
        let sources: Vec<PeerKey> = self
            .sources
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.instance() == key)
            .collect();
        for s in sources {
            remove_ok_if_absent(MAP_SOURCES, self.sources.remove(&s))?;
        }
        Ok(())
    }

    /// Allows a unicast source for an instance with CHECK_UNICAST_SRC.
    pub fn allow_source(&mut self, peer: PeerKey) -> Result<(), BpfError> {
        self.sources
            .insert(peer, 1, 0)
            .map_err(|source| BpfError::Map {
                name: MAP_SOURCES,
                source,
            })
    }

    /// Every recorded peer.
    pub fn all_peers(&self) -> Result<Vec<(PeerKey, PeerRecord)>, BpfError> {
        self.peers
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| BpfError::Map {
                name: MAP_PEERS,
                source,
            })
    }

    /// The recorded peers of one instance.
    pub fn peers_of(&self, key: InstanceKey) -> Result<Vec<(PeerKey, PeerRecord)>, BpfError> {
        let mut all = self.all_peers()?;
        all.retain(|(k, _)| k.instance() == key);
        Ok(all)
    }

    /// One peer's record, if the kernel has one.
    pub fn peer(&self, key: &PeerKey) -> Result<Option<PeerRecord>, BpfError> {
        match self.peers.get(key, 0) {
            Ok(r) => Ok(Some(r)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(BpfError::Map {
                name: MAP_PEERS,
                source,
            }),
        }
    }

    /// Counters summed over CPUs.
    pub fn counters(&self) -> Result<Counters, BpfError> {
        let per_cpu = self.counters.get(&0, 0).map_err(|source| BpfError::Map {
            name: MAP_COUNTERS,
            source,
        })?;
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
        drain(MAP_PEERS, &mut self.peers)?;
        drain(MAP_SOURCES, &mut self.sources)?;
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| BpfError::CpuCount(e))?;
        let zeros = aya::maps::PerCpuValues::try_from(vec![Counters::default(); cpus])
            .map_err(BpfError::CpuCount)?;
        self.counters
            .set(0, zeros, 0)
            .map_err(|source| BpfError::Map {
                name: MAP_COUNTERS,
                source,
            })
    }
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
