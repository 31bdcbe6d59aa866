//! The executor: the part of the daemon that does the slow I/O for instances.
//!
//! [`Executor::start`] looks up each instance's interface and source
//! address, [`plan`](super::plan::plan)s it, creates its vmac, opens its
//! sockets and registers it with the XDP recorder; the advert sockets go to
//! the advert thread ([`AdvertIo`]). [`Executor::execute`] carries out the
//! rest of the controller's [`Command`]s: VIPs, excluded VIPs, virtual routes
//! and rules over netlink, accept mode's firewall, GARP/NA bursts, notify
//! scripts and log lines. It runs on a thread of its own, real-time just
//! below the advert thread, so a VIP is never queued behind tracker work or a
//! reload ([`spawn`]).
//!
//! It also watches the kernel for deletions of what masters hold (keepalived
//! takes such an instance out of MASTER; the controller decides) and binds an
//! instance to its interface again when one of that name is created
//! ([`Command::Rebind`]), or for the first time when the interface was
//! missing at start (`dynamic_interfaces`).

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use futures::StreamExt;
use thiserror::Error;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tracing::{debug, error, info, warn};

use super::{
    advert::{AdvertIo, FramePath},
    canary::Canary,
    control::{Command, InstanceId, Note, NotifyOwner},
    held,
    plan::{self, GroupPlan, InstancePlan, LinkFacts, PlanError},
    realtime,
    rt::{Applied, ExecReload, RtInput, RtSender, ToExecutor},
    DaemonError,
};
use crate::{
    bpf::{AttachMode, BpfError, Maps, Placement, Recorder},
    config,
    engine::{Reason, State},
    network::{
        firewall::Firewall,
        garp::{GarpError, GarpSender, Pacing},
        monitor::{Deletion, Deletions},
        netlink::{Link, Netlink, NetlinkError, Vip},
        routes::{self, Net, Route, Rule},
        socket::{self, SenderConfig, SocketError, VrrpSender},
        vmac::{ensure_vmac, remove_vmac, ParentArp, Vmac, VmacError},
    },
    notify::{Notifier, NotifyState, Owner},
    packet::Family,
};

#[derive(Debug, Error)]
pub enum ExecuteError {
    #[error("instance {instance}: interface {interface}: {source}")]
    Interface {
        instance: String,
        interface: String,
        #[source]
        source: NetlinkError,
    },
    #[error("instance {instance}: interface {interface} has no {family:?} address to send adverts from (set unicast_src_ip)")]
    NoSource {
        instance: String,
        interface: String,
        family: Family,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("instance {instance}: {source}")]
    Socket {
        instance: String,
        #[source]
        source: SocketError,
    },
    #[error("instance {instance}: {source}")]
    Garp {
        instance: String,
        #[source]
        source: GarpError,
    },
    #[error("instance {instance}: use_vmac: {source}")]
    Vmac {
        instance: String,
        #[source]
        source: VmacError,
    },
    #[error("instance {instance}: {source}")]
    Bpf {
        instance: String,
        #[source]
        source: Box<BpfError>,
    },
}

/// A VIP or excluded VIP as it was added: where, so it is removed from there
/// and a deletion notice can be recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AddedVip {
    ifindex: u32,
    interface: String,
    vip: Vip,
    no_track: bool,
}

/// One instance's slow I/O.
struct InstanceIo {
    name: String,
    /// Its index in the running configuration (for planning it again).
    index: usize,
    plan: InstancePlan,
    /// Its VIPs, routes and rules are on the host (we are master).
    holding: bool,
    /// `None` while the instance's interface is missing.
    garp: Option<Arc<GarpSender>>,
    /// The `use_vmac` macvlan, removed at stop if we created it.
    vmac: Option<Vmac>,
    /// What AddVips put on the host, until RemoveVips takes it off.
    added: Vec<AddedVip>,
    routes: Vec<(Route, bool)>,
    rules: Vec<(Rule, bool)>,
    /// Addresses in the firewall's drop set.
    dropped: Vec<IpAddr>,
    garp_pacing: Duration,
    notify: config::Notify,
    /// The interface whose promote_secondaries we turned on.
    promoted: Option<String>,
}

impl InstanceIo {
    /// What this instance holds on the host, and its priority-0 advert.
    fn held(&self) -> held::HeldInstance {
        let advert = &self.plan.advert;
        let mut farewell_advert = advert.template.clone();
        farewell_advert.priority = 0;
        let farewell = advert
            .destinations
            .iter()
            .filter_map(|&dst| {
                let pseudo = advert.pseudo_header.then_some((advert.source, dst));
                crate::packet::encode(&farewell_advert, pseudo)
                    .ok()
                    .map(|pdu| (dst, pdu))
            })
            .collect();
        // Every planned VIP where it is (or would be) added: a crash in the
        // middle of adding them must not leave one behind.
        let vips =
            self.plan
                .vips
                .iter()
                .filter_map(|p| {
                    let ifindex =
                        self.added
                            .iter()
                            .find(|a| a.vip == p.vip && a.interface == p.interface)
                            .map(|a| a.ifindex)
                            .or_else(|| {
                                self.vmac
                                    .as_ref()
                                    .filter(|v| v.name == p.interface)
                                    .map(|v| v.ifindex)
                            })
                            .or((p.interface == self.plan.interface
                                && self.plan.key.ifindex != 0)
                                .then_some(self.plan.key.ifindex))?;
                    Some(held::HeldVip::new(ifindex, &p.vip))
                })
                .collect();
        held::HeldInstance {
            name: self.name.clone(),
            holding: self.holding,
            vips,
            vmac: self
                .vmac
                .as_ref()
                .filter(|v| v.created)
                .map(|v| held::HeldVmac {
                    ifindex: v.ifindex,
                    name: v.name.clone(),
                    parent_ifindex: v.parent_ifindex,
                    mac: v.mac,
                }),
            send_interface: self.plan.send_interface.clone(),
            ipv6: self.plan.family == Family::V6,
            source: advert.source,
            group: advert.group,
            farewell,
        }
    }
}

struct GroupIo {
    name: String,
    notify: config::Notify,
}

/// What [`Executor::start`] set up.
pub struct Started {
    pub executor: Executor,
    pub plans: Vec<InstancePlan>,
    pub groups: Vec<GroupPlan>,
    /// By slot (the instance's index at start-up); instances whose interface
    /// is missing (`dynamic_interfaces`) have none until it appears.
    pub adverts: HashMap<InstanceId, AdvertIo>,
    pub attachments: Vec<crate::report::AttachmentReport>,
    /// The blind-recorder canaries, one per (interface, family), for the advert thread.
    pub canaries: Vec<Canary>,
}

/// A rebind waiting for its interface to be usable (up, with an address).
#[derive(Clone, Debug)]
struct PendingRebind {
    interface: String,
    ifindex: u32,
    attempts: u32,
    at: tokio::time::Instant,
    /// What the last try failed with (a new reason is logged).
    last_error: String,
}

/// How often and how long a rebind waits for the interface's address.
const REBIND_RETRY: Duration = Duration::from_millis(250);
const REBIND_ATTEMPTS: u32 = 120;

pub struct Executor {
    /// By slot (see `control::InstanceId`).
    instances: HashMap<InstanceId, InstanceIo>,
    /// Where what we hold is written down (see `held`).
    paths: held::Paths,
    /// An in-place restart: leave what we hold where it is at the end.
    leaving: bool,
    /// When this image started (for the state file).
    started_unix: f64,
    groups: Vec<GroupIo>,
    pub netlink: Netlink,
    pub recorder: Recorder,
    notifier: Notifier,
    /// The configuration the instances run (a reload replaces it).
    config: config::Config,
    /// Where deletions and rebinds are reported (the advert thread).
    rt: Option<RtSender>,
    firewall: Firewall,
    /// The parents of our vmacs: their ARP settings before the first vmac.
    vmac_parents: HashMap<u32, ParentArp>,
    rebinds: HashMap<InstanceId, PendingRebind>,
    /// `static_ipaddress`/`static_routes`/`static_rules` as added.
    statics: Statics,
    /// `--attach`, over the configuration's `xvrrpd_attach`.
    attach: Option<AttachMode>,
    /// (ifindex, family) of the canaries handed to the advert thread.
    canaries: HashSet<(u32, Family)>,
}

/// What the static blocks put on the host, with `no_track` for each.
#[derive(Debug, Default)]
struct Statics {
    addrs: Vec<AddedVip>,
    routes: Vec<(Route, bool)>,
    rules: Vec<(Rule, bool)>,
}

/// The interface's advert source; a fresh IPv6 link-local is tentative for
/// a moment (DAD), so wait up to `patience` for one before giving up.
async fn source_address(
    interface: &str,
    family: Family,
    patience: Duration,
) -> Result<Option<IpAddr>, SocketError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(a) = socket::interface_address(interface, family)? {
            return Ok(Some(a));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Executor {
    /// Plans and sets up every instance of `config`. Returns the plans the
    /// controller is built from (same order as `config.instances`).
    /// `mode.resume`: names of the instances that were master before an
    /// in-place restart (their VIPs stay); `mode.previous`: what the image
    /// before held (the vmacs it created are ours to remove later).
    pub async fn start(
        config: &config::Config,
        netlink: Netlink,
        mut recorder: Recorder,
        notifier: Notifier,
        mode: StartMode,
    ) -> Result<Started, Box<ExecuteError>> {
        let StartMode {
            paths,
            attach,
            resume,
            previous,
        } = mode;
        let previous = previous.as_ref();
        let mut plans = Vec::with_capacity(config.instances.len());
        let mut instances = HashMap::new();
        let mut adverts = HashMap::new();
        let mut attachments: Vec<crate::report::AttachmentReport> = Vec::new();
        let mut vmac_parents = HashMap::new();
        let mut canary_keys = HashSet::new();
        let mut canaries = Vec::new();
        for index in 0..config.instances.len() {
            let (mut io, advert, placement) = start_instance(
                config,
                index,
                &netlink,
                &mut recorder,
                &mut vmac_parents,
                attach,
            )
            .await?;
            if let Some(placement) = &placement {
                note_attachment(&mut attachments, placement);
                canaries.extend(open_canary(&io.plan, &mut canary_keys));
            }
            if let (Some(vmac), Some(prev)) = (io.vmac.as_mut(), previous) {
                // Adopted from the image before us, which created it.
                vmac.created |= prev
                    .instances
                    .iter()
                    .any(|i| i.vmac.as_ref().is_some_and(|v| v.name == vmac.name));
            }
            if resume.contains(&io.name) {
                // Master before the in-place restart: what it holds is ours.
                io.holding = true;
            } else {
                // A VIP left by an earlier run is not ours until we are master.
                release_leftovers(&io, &netlink).await;
            }
            plans.push(io.plan.clone());
            if let Some(advert) = advert {
                adverts.insert(index, advert);
            }
            instances.insert(index, io);
        }
        let groups = plan::groups(config);
        let group_io = plan::active_groups(config)
            .into_iter()
            .map(|g| GroupIo {
                name: g.name.clone(),
                notify: g.notify.clone(),
            })
            .collect();
        let mut executor = Executor {
            instances,
            paths,
            leaving: false,
            started_unix: held::now_unix(),
            groups: group_io,
            netlink,
            recorder,
            notifier,
            firewall: Firewall::new(
                &config.global.nftables_table,
                config.global.nftables_priority,
            ),
            config: config.clone(),
            rt: None,
            vmac_parents,
            rebinds: HashMap::new(),
            statics: Statics::default(),
            attach,
            canaries: canary_keys,
        };
        executor.apply_statics().await;
        executor.save_held();
        Ok(Started {
            executor,
            plans,
            groups,
            adverts,
            attachments,
            canaries,
        })
    }

    /// Brings the static addresses, routes and rules in line with the
    /// configuration: adds what is missing, removes what is no longer in it.
    async fn apply_statics(&mut self) {
        let wanted_addrs: Vec<(String, Vip, bool)> = self
            .config
            .static_addresses
            .iter()
            .map(|v| {
                (
                    v.dev.clone().unwrap_or_else(|| "eth0".into()),
                    plan::vip_of(v),
                    v.no_track,
                )
            })
            .collect();
        let gone: Vec<AddedVip> = self
            .statics
            .addrs
            .iter()
            .filter(|a| {
                !wanted_addrs
                    .iter()
                    .any(|(i, v, _)| *i == a.interface && *v == a.vip)
            })
            .cloned()
            .collect();
        self.statics.addrs.retain(|a| !gone.contains(a));
        for a in gone {
            if let Err(e) = self.netlink.del_vip(a.ifindex, &a.vip).await {
                warn!(address = %a.vip, error = %e, "removing a static address");
            }
        }
        for (interface, vip, no_track) in wanted_addrs {
            if self
                .statics
                .addrs
                .iter()
                .any(|a| a.interface == interface && a.vip == vip)
            {
                continue;
            }
            let Some(ifindex) = resolve(&self.netlink, &interface, None).await else {
                warn!(%interface, address = %vip, "static address: the interface does not exist");
                continue;
            };
            match self.netlink.add_vip(ifindex, &vip).await {
                Ok(_) => self.statics.addrs.push(AddedVip {
                    ifindex,
                    interface,
                    vip,
                    no_track,
                }),
                Err(e) => warn!(address = %vip, error = %e, "adding a static address"),
            }
        }
        let mut wanted_routes = Vec::new();
        for spec in &self.config.static_routes {
            match kernel_route(&self.netlink, spec, None).await {
                Some(r) => wanted_routes.push((r, spec.no_track)),
                None => {
                    warn!(dev = ?spec.dev, "static route {}: its interface does not exist", spec.destination)
                }
            }
        }
        let (keep, drop): (Vec<_>, Vec<_>) = std::mem::take(&mut self.statics.routes)
            .into_iter()
            .partition(|(r, _)| wanted_routes.iter().any(|(w, _)| w == r));
        self.statics.routes = keep;
        for (r, _) in drop {
            if let Err(e) = self.netlink.del_route(&r).await {
                warn!(error = %e, "removing a static route");
            }
        }
        for (route, no_track) in wanted_routes {
            if self.statics.routes.iter().any(|(r, _)| *r == route) {
                continue;
            }
            match self.netlink.add_route(&route).await {
                Ok(_) => self.statics.routes.push((route, no_track)),
                Err(e) => warn!(error = %e, "adding a static route"),
            }
        }
        let wanted_rules: Vec<(Rule, bool)> = self
            .config
            .static_rules
            .iter()
            .map(|spec| (kernel_rule(spec), spec.no_track))
            .collect();
        let (keep, drop): (Vec<_>, Vec<_>) = std::mem::take(&mut self.statics.rules)
            .into_iter()
            .partition(|(r, _)| wanted_rules.iter().any(|(w, _)| w == r));
        self.statics.rules = keep;
        for (r, _) in drop {
            if let Err(e) = self.netlink.del_rule(&r).await {
                warn!(error = %e, "removing a static rule");
            }
        }
        for (rule, no_track) in wanted_rules {
            if self.statics.rules.iter().any(|(r, _)| *r == rule) {
                continue;
            }
            match self.netlink.add_rule(&rule).await {
                Ok(_) => self.statics.rules.push((rule, no_track)),
                Err(e) => warn!(error = %e, "adding a static rule"),
            }
        }
    }

    /// A static address, route or rule deleted by someone else is put back,
    /// as keepalived's `reinstate_static_*` do.
    async fn reinstate_static(&mut self, d: &Deletion) {
        match d {
            Deletion::Address { ifindex, addr } => {
                let found = self
                    .statics
                    .addrs
                    .iter()
                    .find(|a| !a.no_track && a.ifindex == *ifindex && a.vip.addr == *addr)
                    .cloned();
                if let Some(a) = found {
                    info!(address = %a.vip, interface = %a.interface, "static address deleted: putting it back");
                    if let Err(e) = self.netlink.add_vip(a.ifindex, &a.vip).await {
                        warn!(address = %a.vip, error = %e, "putting a static address back");
                    }
                }
            }
            Deletion::Route(msg) => {
                let found = self
                    .statics
                    .routes
                    .iter()
                    .find(|(r, no_track)| !no_track && r.matches(msg))
                    .map(|(r, _)| r.clone());
                if let Some(r) = found {
                    info!(route = %r, "static route deleted: putting it back");
                    if let Err(e) = self.netlink.add_route(&r).await {
                        warn!(route = %r, error = %e, "putting a static route back");
                    }
                }
            }
            Deletion::Rule(msg) => {
                let found = self
                    .statics
                    .rules
                    .iter()
                    .find(|(r, no_track)| !no_track && r.matches(msg))
                    .map(|(r, _)| r.clone());
                if let Some(r) = found {
                    info!(rule = %r, "static rule deleted: putting it back");
                    if let Err(e) = self.netlink.add_rule(&r).await {
                        warn!(rule = %r, error = %e, "putting a static rule back");
                    }
                }
            }
        }
    }

    /// Takes the static addresses, routes and rules off (at stop, as keepalived).
    async fn remove_statics(&mut self) {
        let statics = std::mem::take(&mut self.statics);
        for (r, _) in statics.rules {
            if let Err(e) = self.netlink.del_rule(&r).await {
                warn!(error = %e, "removing a static rule");
            }
        }
        for (r, _) in statics.routes {
            if let Err(e) = self.netlink.del_route(&r).await {
                warn!(error = %e, "removing a static route");
            }
        }
        for a in statics.addrs {
            if let Err(e) = self.netlink.del_vip(a.ifindex, &a.vip).await {
                warn!(address = %a.vip, error = %e, "removing a static address");
            }
        }
    }

    /// The instance in `slot`, if it still runs.
    fn io(&self, slot: InstanceId) -> Option<&InstanceIo> {
        self.instances.get(&slot)
    }

    pub fn name(&self, slot: InstanceId) -> &str {
        self.io(slot).map_or("?", |io| io.name.as_str())
    }

    /// Carries out the controller's commands in order.
    pub async fn execute(&mut self, commands: Vec<Command>) {
        for command in commands {
            self.one(command).await;
        }
    }

    async fn one(&mut self, command: Command) {
        match command {
            // The advert thread's own; never routed here.
            Command::SendAdvert { .. } | Command::WakeOnAny { .. } | Command::MasterIs { .. } => {
                debug!(?command, "advert-path command reached the executor")
            }
            Command::AddVips(i) => {
                // Written down first: a crash half-way still gets cleaned up.
                if let Some(io) = self.instances.get_mut(&i) {
                    io.holding = true;
                }
                self.save_held();
                self.take_over(i).await;
                self.save_held();
            }
            Command::RemoveVips(i) => {
                self.release(i).await;
                self.save_held();
            }
            Command::GarpBurst { instance, burst } => {
                let Some(io) = self.io(instance) else { return };
                let Some(garp) = io.garp.as_ref().map(Arc::clone) else {
                    return;
                };
                let vips: Vec<IpAddr> = io.plan.vips.iter().map(|v| v.vip.addr).collect();
                let spacing = if burst.spacing.is_zero() {
                    io.garp_pacing
                } else {
                    burst.spacing
                };
                let pacing = Pacing {
                    repeat: burst.count,
                    garp_interval: spacing,
                    gna_interval: spacing,
                };
                let name = io.name.clone();
                tokio::spawn(async move {
                    let report = garp.burst(&vips, pacing).await;
                    debug!(instance = %name, cause = ?burst.cause, ?report, "GARP/NA burst sent");
                });
            }
            Command::Rebind {
                instance,
                interface,
                ifindex,
            } => {
                let already = self
                    .rebinds
                    .get(&instance)
                    .is_some_and(|p| p.ifindex == ifindex);
                if !already {
                    self.rebinds.insert(
                        instance,
                        PendingRebind {
                            interface,
                            ifindex,
                            attempts: 0,
                            at: tokio::time::Instant::now(),
                            last_error: String::new(),
                        },
                    );
                    self.retry_rebinds().await;
                }
            }
            Command::Transition {
                instance,
                from,
                to,
                reason,
                priority,
            } => log_transition(self.name(instance), from, to, reason, priority),
            Command::Notify {
                owner,
                state,
                priority,
            } => {
                let (owner, scripts) = match owner {
                    NotifyOwner::Instance(i) => {
                        let Some(io) = self.io(i) else { return };
                        (Owner::Instance(io.name.clone()), &io.notify)
                    }
                    NotifyOwner::Group(g) => {
                        let Some(io) = self.groups.iter().find(|io| io.name == g) else {
                            return;
                        };
                        (Owner::Group(io.name.clone()), &io.notify)
                    }
                };
                // STOP scripts are waited for (up to 1 s), as keepalived does.
                if state == NotifyState::Stop {
                    self.notifier.stop(&owner, scripts, priority).await;
                } else {
                    self.notifier.notify(&owner, scripts, state, priority);
                }
            }
            Command::Note(note) => self.log(note),
        }
    }

    /// Becoming master: as keepalived, the firewall's drop rules first, then
    /// the VIPs and excluded VIPs, then the routes, then the rules.
    async fn take_over(&mut self, slot: InstanceId) {
        let Some(io) = self.instances.get_mut(&slot) else {
            return;
        };
        io.holding = true;
        let name = io.name.clone();
        if io.plan.drop_vip_traffic {
            let addrs: Vec<IpAddr> = io.plan.vips.iter().map(|v| v.vip.addr).collect();
            match self.firewall.add(&addrs).await {
                Ok(()) => io.dropped = addrs,
                Err(e) => {
                    warn!(instance = %name, error = %e, "accept mode: installing the drop rules")
                }
            }
        }
        for planned in io.plan.vips.clone() {
            if io
                .added
                .iter()
                .any(|a| a.vip == planned.vip && a.interface == planned.interface)
            {
                continue;
            }
            let Some(ifindex) = resolve(&self.netlink, &planned.interface, io.vmac.as_ref()).await
            else {
                warn!(instance = %name, interface = %planned.interface, vip = %planned.vip.addr, "adding VIP: the interface does not exist");
                continue;
            };
            match self.netlink.add_vip(ifindex, &planned.vip).await {
                Ok(_) => io.added.push(AddedVip {
                    ifindex,
                    interface: planned.interface.clone(),
                    vip: planned.vip.clone(),
                    no_track: planned.no_track,
                }),
                Err(e) => {
                    warn!(instance = %name, interface = %planned.interface, vip = %planned.vip.addr, error = %e, "adding VIP")
                }
            }
        }
        for spec in io.plan.routes.clone() {
            let Some(route) = kernel_route(&self.netlink, &spec, io.vmac.as_ref()).await else {
                warn!(instance = %name, dev = ?spec.dev, "adding route {}: its interface does not exist", spec.destination);
                continue;
            };
            if io.routes.iter().any(|(r, _)| *r == route) {
                continue;
            }
            match self.netlink.add_route(&route).await {
                Ok(_) => io.routes.push((route, spec.no_track)),
                Err(e) => warn!(instance = %name, error = %e, "adding route"),
            }
        }
        for spec in io.plan.rules.clone() {
            let rule = kernel_rule(&spec);
            if io.rules.iter().any(|(r, _)| *r == rule) {
                continue;
            }
            match self.netlink.add_rule(&rule).await {
                Ok(_) => io.rules.push((rule, spec.no_track)),
                Err(e) => warn!(instance = %name, error = %e, "adding rule"),
            }
        }
    }

    /// Leaving master: everything `take_over` added, in reverse order.
    async fn release(&mut self, slot: InstanceId) {
        let Some(io) = self.instances.get_mut(&slot) else {
            return;
        };
        // First: deletions from here on are ours, not an admin's.
        io.holding = false;
        release_io(io, &self.netlink, &mut self.firewall).await;
    }

    fn log(&self, note: Note) {
        let name = |i: InstanceId| self.name(i);
        match note {
            Note::FaultedBy { instance, by } => {
                let by: Vec<String> = by.iter().map(|t| t.to_string()).collect();
                warn!(instance = %name(instance), "fault: {}", by.join(", "));
            }
            Note::PriorityChanged { instance, from, to } => {
                info!(instance = %name(instance), "({}) Changing effective priority from {from} to {to}", name(instance))
            }
            Note::TrackerChanged { tracker, status } => {
                info!(tracker = %tracker, status = ?status, "tracker changed")
            }
            Note::LinkChanged { name, up, removed } => {
                info!(interface = %name, up, removed, "link changed")
            }
            Note::Syncing {
                group: g,
                instance,
                with,
                master,
            } => {
                let to = if master { "MASTER" } else { "BACKUP" };
                info!(group = %g, instance = %name(instance), with = %name(with), "VRRP_Group({g}) Syncing instances to {to} state");
            }
            Note::GroupReady { group: g } => {
                info!(group = %g, "VRRP_Group({g}) every member wants MASTER")
            }
            Note::GroupState { group: g, state } => {
                info!(group = %g, ?state, "VRRP_Group({g}) is {state}")
            }
            Note::AdvertIgnored {
                instance,
                src,
                priority,
                reason,
            } => {
                debug!(instance = %name(instance), %src, priority, ?reason, "advert ignored")
            }
            Note::IntervalAdopted { instance, from, to } => {
                info!(instance = %name(instance), ?from, ?to, "adopting the master's advert interval")
            }
            Note::CascadeStopped => error!("sync group moves did not settle; stopping the cascade"),
            Note::Deleted { instance, what } => {
                warn!(instance = %name(instance), "({}) {what} was deleted while master: leaving MASTER, as keepalived does", name(instance))
            }
            Note::InterfaceLost {
                instance,
                name: ifname,
            } => {
                warn!(instance = %name(instance), interface = %ifname, "Interface {ifname} deleted: waiting for it")
            }
            Note::InterfaceFound {
                instance,
                name: ifname,
                ifindex,
            } => {
                info!(instance = %name(instance), interface = %ifname, ifindex, "Interface {ifname} is back: running on it")
            }
            Note::RecorderBlind { key, source } => {
                let names = self.names_of(key);
                let interface = crate::status::interface_name(key.ifindex);
                let place = self
                    .recorder
                    .placement(&interface)
                    .map_or_else(|| "not attached".to_owned(), |p| p.describe());
                error!(
                    instance = %names, %interface, %source, recorder = %place,
                    "({names}) adverts from {source} reach the network stack on {interface} but not \
                     the recorder ({place}): a program that runs before it hides them. Using the \
                     stack's copies meanwhile, so no takeover happens on their account; look at \
                     what else is attached (xdp-loader status, bpftool net)"
                );
            }
            Note::RecorderSeesAgain {
                key,
                missed,
                stack_receives,
            } => {
                let names = self.names_of(key);
                let interface = crate::status::interface_name(key.ifindex);
                if stack_receives {
                    warn!(instance = %names, %interface, missed, "({names}) the recorder records the adverts the stack receives again ({missed} missed meanwhile)");
                } else {
                    warn!(instance = %names, %interface, missed, "({names}) no adverts reach the stack either any more; the recorder's view stands ({missed} missed meanwhile)");
                }
            }
        }
    }

    /// The names of the instances of `key`, joined (one in practice).
    fn names_of(&self, key: vrrp_common::InstanceKey) -> String {
        let mut names: Vec<&str> = self
            .instances
            .values()
            .filter(|io| io.plan.key == key)
            .map(|io| io.name.as_str())
            .collect();
        names.sort_unstable();
        if names.is_empty() {
            format!("VRID {}", key.vrid)
        } else {
            names.join(", ")
        }
    }

    /// A deletion notice: if it removed something a master instance holds
    /// (and tracks), the controller hears of it.
    fn deleted(&self, d: &Deletion) {
        for (&slot, io) in &self.instances {
            if !io.holding {
                continue;
            }
            let what = match d {
                Deletion::Address { ifindex, addr } => io
                    .added
                    .iter()
                    .find(|a| !a.no_track && a.ifindex == *ifindex && a.vip.addr == *addr)
                    .map(|a| format!("VIP {} on {}", a.vip.addr, a.interface)),
                Deletion::Route(msg) => io
                    .routes
                    .iter()
                    .find(|(r, no_track)| !no_track && r.matches(msg))
                    .map(|(r, _)| format!("route {r}")),
                Deletion::Rule(msg) => io
                    .rules
                    .iter()
                    .find(|(r, no_track)| !no_track && r.matches(msg))
                    .map(|(r, _)| format!("rule {r}")),
            };
            if let (Some(what), Some(rt)) = (what, &self.rt) {
                rt.send(RtInput::Deleted {
                    instance: slot,
                    what,
                });
            }
        }
    }

    /// Tries the rebinds that are due; those whose interface is not usable yet
    /// wait for the next try.
    async fn retry_rebinds(&mut self) {
        let now = tokio::time::Instant::now();
        let due: Vec<InstanceId> = self
            .rebinds
            .iter()
            .filter(|(_, p)| p.at <= now)
            .map(|(s, _)| *s)
            .collect();
        for slot in due {
            let Some(mut pending) = self.rebinds.remove(&slot) else {
                continue;
            };
            match self.rebind(slot, &pending).await {
                Ok(()) => {}
                Err(e) if pending.attempts < REBIND_ATTEMPTS => {
                    let error = e.to_string();
                    if error != pending.last_error {
                        info!(instance = %self.name(slot), "{error}; trying again while the interface comes up");
                        pending.last_error = error;
                    }
                    pending.attempts += 1;
                    pending.at = now + REBIND_RETRY;
                    self.rebinds.insert(slot, pending);
                }
                Err(e) => {
                    error!(instance = %self.name(slot), "{e}; the instance stays in FAULT until its interface changes again")
                }
            }
        }
    }

    /// Binds the instance to its interface as it exists now: plans it with
    /// the interface's index and address, creates its vmac, opens its
    /// sockets, attaches and registers it with the recorder, and hands the
    /// advert thread the new advert socket.
    async fn rebind(
        &mut self,
        slot: InstanceId,
        pending: &PendingRebind,
    ) -> Result<(), Box<ExecuteError>> {
        let Some(io) = self.instances.get(&slot) else {
            return Ok(());
        };
        let index = io.index;
        let interface_err = |source| {
            Box::new(ExecuteError::Interface {
                instance: io.name.clone(),
                interface: pending.interface.clone(),
                source,
            })
        };
        let link = self
            .netlink
            .link_by_name(&pending.interface)
            .await
            .map_err(interface_err)?;
        if link.ifindex != pending.ifindex {
            // Replaced again meanwhile: the link event for the newer one asks anew.
            return Ok(());
        }
        let old_key = io.plan.key;
        let bound = bind(
            &self.config,
            index,
            &link,
            false,
            &self.netlink,
            &mut self.recorder,
            &mut self.vmac_parents,
            self.attach,
        )
        .await?;
        if old_key.ifindex != 0 && old_key != bound.plan.key {
            if let Err(e) = self.recorder.maps.remove_instance(old_key) {
                debug!(error = %e, "unregistering the instance's old interface");
            }
        }
        let Some(io) = self.instances.get_mut(&slot) else {
            return Ok(());
        };
        let (key, source) = (bound.plan.key, bound.plan.advert.source);
        let advert = AdvertIo::new(
            io.name.clone(),
            key,
            bound.plan.advert.clone(),
            bound.sender,
            bound.frame_path,
        );
        io.garp = Some(Arc::new(bound.garp));
        io.vmac = bound.vmac;
        io.promoted = bound.promoted.or(io.promoted.take());
        io.garp_pacing = bound.plan.engine.garp.spacing;
        io.plan = bound.plan;
        // Anything added on the vanished interface went with it.
        io.added.retain(|a| a.ifindex != old_key.ifindex);
        if let Some(rt) = &self.rt {
            rt.send(RtInput::Rebound {
                instance: slot,
                key,
                source,
                advert: Box::new(advert),
            });
        }
        Ok(())
    }

    /// Final clean-up: VIPs off, vmacs we made removed, the firewall's
    /// tables deleted, sysctls we changed restored, notifies drained, then XDP
    /// detached with the recorder.
    pub async fn stop(mut self) {
        if self.leaving {
            // In-place restart: VIPs, routes, rules, vmacs, firewall and the
            // state file stay for the next image; the XDP program goes (the
            // next image loads its own).
            self.save_held();
        } else {
            let slots: Vec<InstanceId> = self.instances.keys().copied().collect();
            for slot in slots {
                if let Some(io) = self.instances.remove(&slot) {
                    self.drop_instance(io).await;
                }
            }
            self.remove_statics().await;
            if let Err(e) = self.firewall.shutdown().await {
                warn!(error = %e, "removing the accept-mode firewall tables");
            }
            held::remove_state(&self.paths);
        }
        self.notifier.shutdown().await;
        // Leaving a libxdp dispatcher may load a new one (the verifier).
        let recorder = self.recorder;
        realtime::at_normal_priority(|| recorder.shutdown());
    }

    /// Writes down what we hold now (see `held`); a failure is logged, and
    /// crash clean-up then relies on the next start removing leftover VIPs.
    fn save_held(&self) {
        let mut instances: Vec<(&InstanceId, &InstanceIo)> = self.instances.iter().collect();
        instances.sort_by_key(|(slot, _)| **slot);
        let state = held::HostState {
            pid: std::process::id(),
            started_unix: self.started_unix,
            instances: instances.into_iter().map(|(_, io)| io.held()).collect(),
        };
        if let Err(e) = held::save_state(&self.paths, &state) {
            warn!(error = %e, "writing the state file");
        }
    }

    /// An instance that no longer runs: everything it added off, its vmac
    /// gone if we made it (and the parent's ARP settings back once no vmac of
    /// ours is left on it), promote_secondaries back if we set it and no
    /// other instance needs it.
    async fn drop_instance(&mut self, mut io: InstanceIo) {
        io.holding = false;
        release_io(&mut io, &self.netlink, &mut self.firewall).await;
        release_leftovers(&io, &self.netlink).await;
        if let Some(v) = io.vmac.as_ref().filter(|v| v.created) {
            if let Err(e) = remove_vmac(&self.netlink, v).await {
                warn!(instance = %io.name, vmac = %v.name, error = %e, "removing the vmac");
            }
            let parent = v.parent_ifindex;
            let others = self.instances.values().any(|o| {
                o.vmac
                    .as_ref()
                    .is_some_and(|ov| ov.parent_ifindex == parent)
            });
            if !others {
                if let Some(arp) = self.vmac_parents.remove(&parent) {
                    if let Err(e) = arp.restore() {
                        warn!(interface = %arp.parent, error = %e, "restoring arp_ignore/arp_filter");
                    }
                }
            }
        }
        if let Some(ifname) = io.promoted.take() {
            let others = self
                .instances
                .values()
                .any(|o| o.promoted.as_deref() == Some(ifname.as_str()));
            if !others {
                if let Err(e) = crate::network::netlink::set_promote_secondaries(&ifname, false) {
                    warn!(interface = %ifname, error = %e, "resetting promote_secondaries");
                }
            }
        }
    }

    /// The executor's part of a reload (after the retired instances' last
    /// commands): drops what was retired, starts what is new, updates what
    /// is kept (VIPs added or removed on the spot while master), then hands
    /// the advert thread the result.
    async fn reload(&mut self, r: ExecReload) {
        for slot in &r.slots.retired {
            if let Some(io) = self.instances.remove(slot) {
                let key = io.plan.key;
                self.rebinds.remove(slot);
                self.drop_instance(io).await;
                // A replacement with the same key registers itself again below.
                if key.ifindex != 0 {
                    if let Err(e) = self.recorder.maps.remove_instance(key) {
                        warn!(error = %e, "reload: unregistering a retired instance");
                    }
                }
            }
        }
        self.config = r.config.clone();
        self.apply_statics().await;
        let mut plans = Vec::new();
        let mut assigned = Vec::new();
        let mut primary_up = Vec::new();
        let mut adverts = Vec::new();
        let mut canaries = Vec::new();
        let mut failed = Vec::new();
        for (k, &(slot, kept)) in r.slots.assigned.iter().enumerate() {
            let name = r.config.instances[k].name.clone();
            let started = if kept {
                self.update_instance(&r.config, k, slot).await
            } else {
                match start_instance(
                    &r.config,
                    k,
                    &self.netlink,
                    &mut self.recorder,
                    &mut self.vmac_parents,
                    self.attach,
                )
                .await
                {
                    Ok((io, advert, placement)) => {
                        release_leftovers(&io, &self.netlink).await;
                        if let Some(advert) = advert {
                            adverts.push((slot, advert));
                        }
                        if placement.is_some() {
                            canaries.extend(open_canary(&io.plan, &mut self.canaries));
                        }
                        let plan = io.plan.clone();
                        self.instances.insert(slot, io);
                        Some(plan)
                    }
                    Err(e) => {
                        error!("reload: {e}; instance {name} does not run");
                        None
                    }
                }
            };
            let Some(plan) = started else {
                failed.push(name);
                continue;
            };
            let up = plan.key.ifindex != 0
                && self
                    .netlink
                    .link_by_index(plan.key.ifindex)
                    .await
                    .is_ok_and(|l| l.up);
            primary_up.push(up);
            plans.push(plan);
            assigned.push((slot, kept));
        }
        // Sync groups whose members did not all start are renumbered from
        // what runs.
        let running: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        let groups = plan::groups(&r.config)
            .into_iter()
            .map(|g| GroupPlan {
                members: g
                    .members
                    .iter()
                    .filter_map(|&m| {
                        running
                            .iter()
                            .position(|n| *n == r.config.instances[m].name)
                    })
                    .collect(),
                ..g
            })
            .filter(|g| g.members.len() >= 2)
            .collect();
        self.groups = plan::active_groups(&r.config)
            .into_iter()
            .map(|g| GroupIo {
                name: g.name.clone(),
                notify: g.notify.clone(),
            })
            .collect();
        r.rt.send(RtInput::ReloadReady(Box::new(Applied {
            plans,
            assigned,
            groups,
            primary_up,
            adverts,
            canaries,
            failed,
            disabled: r.disabled,
            done: r.done,
        })));
    }

    /// A kept instance takes its new plan. Its identity (interface, VRID,
    /// addresses) is unchanged, so the host facts are its old ones. While
    /// master, what it adds changes on the spot, as keepalived does on reload.
    async fn update_instance(
        &mut self,
        config: &config::Config,
        index: usize,
        slot: InstanceId,
    ) -> Option<InstancePlan> {
        let io = self.instances.get(&slot)?;
        let facts = LinkFacts {
            ifindex: io.plan.key.ifindex,
            source: io.plan.advert.source,
        };
        let plan = match plan::plan(config, index, &facts) {
            Ok(p) => p,
            Err(e) => {
                error!("reload: {e}");
                return None;
            }
        };
        let io = self.instances.get_mut(&slot)?;
        io.index = index;
        io.notify = config.instances[index].notify.clone();
        io.garp_pacing = plan.engine.garp.spacing;
        let holding = io.holding;
        let old = std::mem::replace(&mut io.plan, plan.clone());
        if holding
            && (old.vips != plan.vips
                || old.routes != plan.routes
                || old.rules != plan.rules
                || old.drop_vip_traffic != plan.drop_vip_traffic)
        {
            // What is no longer wanted goes (forgotten first, so its deletion
            // is not taken for an admin's); what is new is added.
            let gone: Vec<AddedVip> = io
                .added
                .iter()
                .filter(|a| {
                    !plan
                        .vips
                        .iter()
                        .any(|p| p.vip == a.vip && p.interface == a.interface)
                })
                .cloned()
                .collect();
            io.added.retain(|a| !gone.contains(a));
            for a in gone {
                if let Err(e) = self.netlink.del_vip(a.ifindex, &a.vip).await {
                    warn!(instance = %io.name, vip = %a.vip, error = %e, "reload: removing VIP");
                }
            }
            let wanted_routes: Vec<Route> = {
                let mut v = Vec::new();
                for spec in &plan.routes {
                    v.extend(kernel_route(&self.netlink, spec, io.vmac.as_ref()).await);
                }
                v
            };
            let (keep, drop): (Vec<_>, Vec<_>) = std::mem::take(&mut io.routes)
                .into_iter()
                .partition(|(r, _)| wanted_routes.contains(r));
            io.routes = keep;
            for (r, _) in drop {
                if let Err(e) = self.netlink.del_route(&r).await {
                    warn!(instance = %io.name, error = %e, "reload: removing route");
                }
            }
            let wanted_rules: Vec<Rule> = plan.rules.iter().map(kernel_rule).collect();
            let (keep, drop): (Vec<_>, Vec<_>) = std::mem::take(&mut io.rules)
                .into_iter()
                .partition(|(r, _)| wanted_rules.contains(r));
            io.rules = keep;
            for (r, _) in drop {
                if let Err(e) = self.netlink.del_rule(&r).await {
                    warn!(instance = %io.name, error = %e, "reload: removing rule");
                }
            }
            let dropped = std::mem::take(&mut io.dropped);
            if let Err(e) = self.firewall.remove(&dropped).await {
                warn!(instance = %io.name, error = %e, "reload: accept mode");
            }
            // Adds what is missing (and the drop set afresh).
            self.take_over(slot).await;
        }
        Some(plan)
    }

    /// Carries out commands until the advert thread hangs up, watching the
    /// kernel for deletions of what masters hold, and retrying rebinds.
    async fn serve(&mut self, mut rx: UnboundedReceiver<ToExecutor>) {
        let mut deletions = match Deletions::subscribe() {
            Ok(d) => Some(d),
            Err(e) => {
                error!("{e}: deleted VIPs, routes and rules will not be noticed");
                None
            }
        };
        loop {
            let next_retry = self.rebinds.values().map(|p| p.at).min();
            tokio::select! {
                item = rx.recv() => {
                    let Some(item) = item else { return };
                    match item {
                        ToExecutor::Command(c) => self.one(c).await,
                        ToExecutor::Error(e) => warn!("{e}"),
                        ToExecutor::Reload(r) => {
                            self.reload(*r).await;
                            self.save_held();
                        }
                        ToExecutor::Connect(rt) => self.rt = Some(rt),
                        ToExecutor::Leave => self.leaving = true,
                    }
                }
                Some(d) = next_deletion(&mut deletions) => {
                    self.deleted(&d);
                    self.reinstate_static(&d).await;
                }
                _ = sleep_until(next_retry) => self.retry_rebinds().await,
            }
        }
    }
}

async fn next_deletion(deletions: &mut Option<Deletions>) -> Option<Deletion> {
    match deletions {
        Some(d) => d.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Takes off everything `take_over` put on (rules, routes, VIPs, drop rules).
async fn release_io(io: &mut InstanceIo, netlink: &Netlink, firewall: &mut Firewall) {
    for (rule, _) in std::mem::take(&mut io.rules) {
        if let Err(e) = netlink.del_rule(&rule).await {
            warn!(instance = %io.name, error = %e, "removing rule");
        }
    }
    for (route, _) in std::mem::take(&mut io.routes) {
        if let Err(e) = netlink.del_route(&route).await {
            warn!(instance = %io.name, error = %e, "removing route");
        }
    }
    for a in std::mem::take(&mut io.added) {
        if let Err(e) = netlink.del_vip(a.ifindex, &a.vip).await {
            warn!(instance = %io.name, interface = %a.interface, vip = %a.vip.addr, error = %e, "removing VIP");
        }
    }
    let dropped = std::mem::take(&mut io.dropped);
    if !dropped.is_empty() {
        if let Err(e) = firewall.remove(&dropped).await {
            warn!(instance = %io.name, error = %e, "accept mode: removing the drop rules");
        }
    }
}

/// What an earlier run (or an admin) left: the instance's VIPs, routes and
/// rules are not ours until we are master.
async fn release_leftovers(io: &InstanceIo, netlink: &Netlink) {
    if io.plan.key.ifindex == 0 {
        return;
    }
    for planned in &io.plan.vips {
        if let Some(ifindex) = resolve(netlink, &planned.interface, io.vmac.as_ref()).await {
            if let Err(e) = netlink.del_vip(ifindex, &planned.vip).await {
                warn!(instance = %io.name, interface = %planned.interface, vip = %planned.vip.addr, error = %e, "removing VIP");
            }
        }
    }
    for spec in &io.plan.routes {
        if let Some(route) = kernel_route(netlink, spec, io.vmac.as_ref()).await {
            if let Err(e) = netlink.del_route(&route).await {
                warn!(instance = %io.name, error = %e, "removing route");
            }
        }
    }
    for spec in &io.plan.rules {
        if let Err(e) = netlink.del_rule(&kernel_rule(spec)).await {
            warn!(instance = %io.name, error = %e, "removing rule");
        }
    }
}

/// The index of interface `name` now (the vmac's own when it is the vmac).
async fn resolve(netlink: &Netlink, name: &str, vmac: Option<&Vmac>) -> Option<u32> {
    if let Some(v) = vmac.filter(|v| v.name == name) {
        return Some(v.ifindex);
    }
    netlink.link_by_name(name).await.ok().map(|l| l.ifindex)
}

/// A `virtual_routes` entry as the kernel gets it (`None`: its dev is missing).
async fn kernel_route(
    netlink: &Netlink,
    spec: &config::VirtualRoute,
    vmac: Option<&Vmac>,
) -> Option<Route> {
    let oif = match &spec.dev {
        Some(dev) => Some(resolve(netlink, dev, vmac).await?),
        None => None,
    };
    let net = |p: config::Prefix| Net {
        addr: p.addr,
        len: p.len,
    };
    Some(Route {
        kind: match spec.kind {
            config::RouteKind::Unicast => routes::kind::UNICAST,
            config::RouteKind::Blackhole => routes::kind::BLACKHOLE,
            config::RouteKind::Unreachable => routes::kind::UNREACHABLE,
            config::RouteKind::Prohibit => routes::kind::PROHIBIT,
            config::RouteKind::Throw => routes::kind::THROW,
        },
        destination: net(spec.destination),
        from: spec.from.map(net),
        pref_src: spec.source,
        gateway: spec.via,
        oif,
        scope: spec.scope,
        table: spec.table,
        metric: spec.metric,
        tos: spec.tos,
        protocol: spec.protocol.unwrap_or(config::RTPROT_KEEPALIVED),
        onlink: spec.onlink,
        how: match spec.how {
            config::RouteAdd::Prepend => routes::AddHow::Prepend,
            config::RouteAdd::Add => routes::AddHow::Add,
            config::RouteAdd::Append => routes::AddHow::Append,
        },
    })
}

/// A `virtual_rules` entry as the kernel gets it.
fn kernel_rule(spec: &config::VirtualRule) -> Rule {
    let net = |p: config::Prefix| Net {
        addr: p.addr,
        len: p.len,
    };
    let (action, table, goto) = match spec.action {
        config::RuleAction::Table(t) => (routes::action::TO_TABLE, t, None),
        config::RuleAction::Goto(g) => (routes::action::GOTO, 0, Some(g)),
        config::RuleAction::Nop => (routes::action::NOP, 0, None),
        config::RuleAction::Blackhole => (routes::action::BLACKHOLE, 0, None),
        config::RuleAction::Unreachable => (routes::action::UNREACHABLE, 0, None),
        config::RuleAction::Prohibit => (routes::action::PROHIBIT, 0, None),
    };
    Rule {
        family: spec.family,
        from: spec.from.map(net),
        to: spec.to.map(net),
        priority: spec.priority,
        action,
        table,
        goto,
        fwmark: spec.fwmark,
        fwmask: spec.fwmask,
        iif: spec.iif.clone(),
        oif: spec.oif.clone(),
        invert: spec.invert,
        tos: spec.tos,
        protocol: spec.protocol,
    }
}

/// What binding an instance to an existing interface opened.
struct Bound {
    plan: InstancePlan,
    vmac: Option<Vmac>,
    sender: VrrpSender,
    garp: GarpSender,
    placement: Placement,
    /// The interface whose promote_secondaries we turned on.
    promoted: Option<String>,
    frame_path: Option<FramePath>,
}

/// Plans instance `index` on `link` and opens everything it uses there.
/// `patient`: wait (at start) for a tentative IPv6 link-local to be usable.
#[allow(clippy::too_many_arguments)] // each is one piece of the executor's state it binds with
async fn bind(
    config: &config::Config,
    index: usize,
    link: &Link,
    patient: bool,
    netlink: &Netlink,
    recorder: &mut Recorder,
    vmac_parents: &mut HashMap<u32, ParentArp>,
    attach: Option<AttachMode>,
) -> Result<Bound, Box<ExecuteError>> {
    let cfg = &config.instances[index];
    let name = cfg.name.clone();
    let socket_err = |source| {
        Box::new(ExecuteError::Socket {
            instance: name.clone(),
            source,
        })
    };
    let family = cfg.family();
    let patience = if patient {
        Duration::from_secs(5)
    } else {
        Duration::ZERO
    };
    let source = match cfg.unicast_src_ip {
        Some(s) => s,
        None => source_address(&cfg.interface, family, patience)
            .await
            .map_err(socket_err)?
            .ok_or_else(|| ExecuteError::NoSource {
                instance: name.clone(),
                interface: cfg.interface.clone(),
                family,
            })?,
    };
    let plan = plan::plan(
        config,
        index,
        &LinkFacts {
            ifindex: link.ifindex,
            source,
        },
    )
    .map_err(|e| Box::new(ExecuteError::Plan(e)))?;

    let vmac = match &plan.vmac {
        None => None,
        Some(spec) => {
            let vmac = ensure_vmac(netlink, spec)
                .await
                .map_err(|source| ExecuteError::Vmac {
                    instance: name.clone(),
                    source,
                })?;
            info!(instance = %name, vmac = %vmac.name, mac = %crate::network::fmt_mac(&vmac.mac), "virtual MAC interface ready");
            if let Some(arp) = &vmac.parent_arp {
                vmac_parents
                    .entry(vmac.parent_ifindex)
                    .or_insert_with(|| arp.clone());
            }
            Some(vmac)
        }
    };
    let sender = VrrpSender::open(
        &plan.send_interface,
        plan.family,
        &SenderConfig {
            src: Some(plan.advert.source),
            group: Some(plan.advert.group),
            join_group: !plan.advert.unicast,
        },
    )
    .map_err(socket_err)?;

    let mac = vmac.as_ref().map(|v| v.mac).or(link.mac).unwrap_or([0; 6]);
    let garp = GarpSender::open(&plan.vip_interface, mac).map_err(|source| ExecuteError::Garp {
        instance: name.clone(),
        source,
    })?;

    let promoted = if plan.promote_secondaries {
        promote_secondaries(&plan.interface)
    } else {
        None
    };

    let bpf = |source| {
        Box::new(ExecuteError::Bpf {
            instance: name.clone(),
            source: Box::new(source),
        })
    };
    let mode = attach.or(config.global.xvrrpd_attach).unwrap_or_default();
    let placement =
        realtime::at_normal_priority(|| recorder.attach(&plan.interface, mode)).map_err(bpf)?;
    recorder.maps.register(plan.key, &plan.xdp).map_err(bpf)?;
    // Multicast adverts leave as whole frames (see `network::frames`), from
    // the interface adverts are sent from: the vmac, or with vmac_xmit_base
    // its parent.
    let frame_path = match vmac.as_ref().filter(|v| v.name == plan.send_interface) {
        Some(v) => Some(FramePath {
            ifindex: v.ifindex,
            mac: v.mac,
        }),
        None => link.mac.map(|mac| FramePath {
            ifindex: link.ifindex,
            mac,
        }),
    };
    Ok(Bound {
        plan,
        vmac,
        sender,
        garp,
        placement,
        promoted,
        frame_path,
    })
}

/// Turns `promote_secondaries` on for `interface`; `Some` if we changed it
/// (and so must turn it off again at stop), as keepalived does.
fn promote_secondaries(interface: &str) -> Option<String> {
    let key = format!("/proc/sys/net/ipv4/conf/{interface}/promote_secondaries");
    let on = std::fs::read_to_string(&key).is_ok_and(|v| v.trim() == "1");
    if on {
        return None;
    }
    match crate::network::netlink::set_promote_secondaries(interface, true) {
        Ok(()) => Some(interface.to_owned()),
        Err(e) => {
            warn!(%interface, error = %e, "setting promote_secondaries");
            None
        }
    }
}

/// The unspecified address of `family`: the advert source of an instance
/// whose interface does not exist yet.
fn unspecified(family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Looks up the host facts, plans the instance and opens everything it uses.
/// With `dynamic_interfaces`, an instance whose interface does not exist yet
/// is planned without one (ifindex 0, no sockets, no advert I/O): it waits in
/// FAULT until a link of its name appears.
async fn start_instance(
    config: &config::Config,
    index: usize,
    netlink: &Netlink,
    recorder: &mut Recorder,
    vmac_parents: &mut HashMap<u32, ParentArp>,
    attach: Option<AttachMode>,
) -> Result<(InstanceIo, Option<AdvertIo>, Option<Placement>), Box<ExecuteError>> {
    let cfg = &config.instances[index];
    let name = cfg.name.clone();
    let link = match netlink.link_by_name(&cfg.interface).await {
        Ok(link) => Some(link),
        Err(NetlinkError::NoSuchInterface(_)) if config.global.dynamic_interfaces => None,
        Err(source) => {
            return Err(Box::new(ExecuteError::Interface {
                instance: name,
                interface: cfg.interface.clone(),
                source,
            }))
        }
    };
    let io = |plan: InstancePlan, garp: Option<GarpSender>, vmac, promoted| InstanceIo {
        name: name.clone(),
        index,
        holding: false,
        garp: garp.map(Arc::new),
        vmac,
        added: Vec::new(),
        routes: Vec::new(),
        rules: Vec::new(),
        dropped: Vec::new(),
        garp_pacing: plan.engine.garp.spacing,
        notify: cfg.notify.clone(),
        promoted,
        plan,
    };
    let Some(link) = link else {
        warn!(instance = %name, interface = %cfg.interface, "interface does not exist: waiting for it in FAULT (dynamic_interfaces)");
        let facts = LinkFacts {
            ifindex: 0,
            source: cfg.unicast_src_ip.unwrap_or(unspecified(cfg.family())),
        };
        let plan =
            plan::plan(config, index, &facts).map_err(|e| Box::new(ExecuteError::Plan(e)))?;
        return Ok((io(plan, None, None, None), None, None));
    };
    let bound = bind(
        config,
        index,
        &link,
        true,
        netlink,
        recorder,
        vmac_parents,
        attach,
    )
    .await?;
    let advert = AdvertIo::new(
        name.clone(),
        bound.plan.key,
        bound.plan.advert.clone(),
        bound.sender,
        bound.frame_path,
    );
    Ok((
        io(bound.plan, Some(bound.garp), bound.vmac, bound.promoted),
        Some(advert),
        Some(bound.placement),
    ))
}

fn note_attachment(attachments: &mut Vec<crate::report::AttachmentReport>, placement: &Placement) {
    if !attachments
        .iter()
        .any(|a| a.interface == placement.interface)
    {
        attachments.push(crate::report::AttachmentReport::from(placement));
    }
}

/// The canary of the instance's (interface, family), unless one is open
/// already. A failure is logged: the daemon runs on without it.
fn open_canary(plan: &InstancePlan, opened: &mut HashSet<(u32, Family)>) -> Option<Canary> {
    if !opened.insert((plan.key.ifindex, plan.family)) {
        return None;
    }
    match Canary::open(&plan.interface, plan.key.ifindex, plan.family) {
        Ok(c) => Some(c),
        Err(e) => {
            warn!(error = %e, "no blind-recorder canary on this interface: a program hiding adverts from the recorder would go unnoticed");
            None
        }
    }
}

/// What the executor thread hands back once everything is set up.
pub struct Ready {
    pub plans: Vec<InstancePlan>,
    pub groups: Vec<GroupPlan>,
    pub adverts: HashMap<InstanceId, AdvertIo>,
    /// A second handle on the pinned maps, for the advert thread.
    pub maps: Maps,
    pub ring: RingBuf<MapData>,
    /// Where the advert thread sends what it does not do itself.
    pub to_executor: UnboundedSender<ToExecutor>,
    /// How the recorder is attached, per interface.
    pub attachments: Vec<crate::report::AttachmentReport>,
    /// The blind-recorder canaries.
    pub canaries: Vec<Canary>,
}

/// The executor thread: sets everything up on its own runtime (so its
/// netlink connection is served there too, not on the normal thread), hands
/// back what the advert thread needs, then carries out commands until the
/// advert thread hangs up, and finally cleans up.
pub struct ExecutorThread {
    handle: std::thread::JoinHandle<()>,
}

impl ExecutorThread {
    pub fn join(self) {
        if self.handle.join().is_err() {
            tracing::error!("the executor thread panicked");
        }
    }
}

/// How the executor starts: fresh, or resuming after an in-place restart.
pub struct StartMode {
    pub paths: held::Paths,
    /// `--attach`, over the configuration's `xvrrpd_attach`.
    pub attach: Option<AttachMode>,
    /// Instances that were master before an in-place restart.
    pub resume: HashSet<String>,
    /// What the image before held.
    pub previous: Option<held::HostState>,
}

pub fn spawn(
    config: config::Config,
    mode: StartMode,
    priority: u8,
) -> Result<(ExecutorThread, Ready), DaemonError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name("xvrrpd-executor".into())
        .spawn(move || executor_thread(config, mode, priority, ready_tx))
        .map_err(|source| DaemonError::Io {
            what: "spawning the executor thread",
            source,
        })?;
    match ready_rx.recv() {
        Ok(Ok(ready)) => Ok((ExecutorThread { handle }, ready)),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(_) => {
            let _ = handle.join();
            Err(DaemonError::Io {
                what: "starting the executor thread",
                source: std::io::Error::other("it ended before it was ready"),
            })
        }
    }
}

fn executor_thread(
    config: config::Config,
    mode: StartMode,
    priority: u8,
    ready: std::sync::mpsc::SyncSender<Result<Ready, DaemonError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(source) => {
            let _ = ready.send(Err(DaemonError::Io {
                what: "starting the executor's runtime",
                source,
            }));
            return;
        }
    };
    runtime.block_on(async move {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut executor = match set_up(&config, mode, tx).await {
            Ok((executor, parts)) => {
                if ready.send(Ok(parts)).is_err() {
                    executor.stop().await;
                    return;
                }
                // Only now: loading the XDP object takes longer than
                // RLIMIT_RTTIME allows a real-time thread without sleeping.
                if let Err(e) = realtime::make_current_thread_realtime(priority) {
                    warn!("{e}: the executor runs with normal scheduling (needs CAP_SYS_NICE)");
                }
                executor
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        executor.serve(rx).await;
        executor.stop().await;
    });
}

async fn set_up(
    config: &config::Config,
    mode: StartMode,
    to_executor: UnboundedSender<ToExecutor>,
) -> Result<(Executor, Ready), DaemonError> {
    let netlink = Netlink::new()?;
    let pin_dir = mode.paths.pin_dir.clone();
    let mut recorder = Recorder::load(&pin_dir)?;
    info!(pin_dir = %pin_dir.display(), "XDP maps pinned");
    let maps = Maps::open_pinned(&pin_dir)?;
    let ring = recorder.take_events().ok_or_else(|| DaemonError::Io {
        what: "taking the event ring buffer",
        source: std::io::Error::other("already taken"),
    })?;
    let notifier = Notifier::new(&config.global)?;
    let started = Executor::start(config, netlink, recorder, notifier, mode)
        .await
        .map_err(DaemonError::Execute)?;
    let ready = Ready {
        plans: started.plans,
        groups: started.groups,
        adverts: started.adverts,
        maps,
        ring,
        to_executor,
        attachments: started.attachments,
        canaries: started.canaries,
    };
    Ok((started.executor, ready))
}

/// State changes in keepalived's words, so log-based alerts keep matching
/// ("(VI_1) Entering MASTER STATE"); the structured fields come alongside.
fn log_transition(name: &str, from: State, to: State, reason: Reason, priority: u8) {
    let why = crate::daemon::report::reason_words(reason);
    match (from, to, reason) {
        (State::Initialize, State::Backup, _) => {
            info!(instance = %name, priority, reason = why, "({name}) Entering BACKUP STATE (init)")
        }
        (State::Initialize, State::Fault, _) => {
            info!(instance = %name, priority, reason = why, "({name}) Entering FAULT STATE (init)")
        }
        (_, State::Master, Reason::Resumed) => {
            info!(instance = %name, priority, reason = why, "({name}) resumed in MASTER STATE after an in-place restart")
        }
        (_, State::Master, _) => {
            match reason {
                Reason::MasterDownTimer => {
                    info!(instance = %name, "({name}) Receive advertisement timeout")
                }
                Reason::PriorityZeroReceived => {
                    info!(instance = %name, "({name}) Backup received priority 0 advertisement")
                }
                _ => {}
            }
            info!(instance = %name, priority, reason = why, "({name}) Entering MASTER STATE")
        }
        (_, State::Backup, _) => {
            info!(instance = %name, priority, reason = why, "({name}) Entering BACKUP STATE")
        }
        (_, State::Fault, _) => {
            info!(instance = %name, priority, reason = why, "({name}) Entering FAULT STATE")
        }
        (from, State::Stopped, _) => {
            if from == State::Master {
                info!(instance = %name, "({name}) sent 0 priority");
            }
            info!(instance = %name, priority, reason = why, "({name}) Stopped")
        }
        (_, State::Initialize, _) => {}
    }
}
