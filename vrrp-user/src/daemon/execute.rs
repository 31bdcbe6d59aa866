//! The executor: the part of the daemon that does the slow I/O for instances.
//!
//! [`Executor::start`] looks up each instance's interface and source
//! address, [`plan`](super::plan::plan)s it, creates its vmac, opens its
//! sockets and registers it with the XDP recorder; the advert sockets go to
//! the advert thread ([`AdvertIo`]). [`Executor::execute`] carries out the
//! rest of the controller's [`Command`]s: VIPs over netlink, GARP/NA
//! bursts, notify scripts and log lines. It runs on a thread of its own,
//! real-time just below the advert thread, so a VIP is never queued behind
//! tracker work or a reload ([`spawn`]).

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    sync::Arc,
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use thiserror::Error;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tracing::{debug, error, info, warn};

use super::{
    advert::AdvertIo,
    canary::Canary,
    control::{Command, InstanceId, Note, NotifyOwner},
    held,
    plan::{self, GroupPlan, InstancePlan, LinkFacts, PlanError},
    realtime,
    rt::{Applied, ExecReload, RtInput, ToExecutor},
    DaemonError,
};
use crate::{
    bpf::{AttachMode, BpfError, Maps, Placement, Recorder},
    config,
    engine::{Reason, State},
    network::{
        garp::{GarpError, GarpSender, Pacing},
        netlink::{Netlink, NetlinkError, Vip},
        socket::{self, SenderConfig, SocketError, VrrpSender},
        vmac::{ensure_vmac, remove_vmac, Vmac, VmacError},
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

/// A VIP with the interface it lives on.
struct BoundVip {
    ifindex: u32,
    interface: String,
    vip: Vip,
}

impl BoundVip {
    fn same(&self, other: &BoundVip) -> bool {
        self.ifindex == other.ifindex && self.vip == other.vip
    }
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
        held::HeldInstance {
            name: self.name.clone(),
            holding: self.holding,
            vips: self
                .vips
                .iter()
                .map(|b| held::HeldVip::new(b.ifindex, &b.vip))
                .collect(),
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

/// One instance's slow I/O.
struct InstanceIo {
    name: String,
    plan: InstancePlan,
    /// Its VIPs are on the host (we are master).
    holding: bool,
    garp: Arc<GarpSender>,
    /// The `use_vmac` macvlan, removed at stop if we created it.
    vmac: Option<Vmac>,
    vips: Vec<BoundVip>,
    garp_pacing: Duration,
    notify: config::Notify,
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
    /// By slot (the instance's index at start-up).
    pub adverts: HashMap<InstanceId, AdvertIo>,
    pub attachments: Vec<crate::report::AttachmentReport>,
    /// The blind-recorder canaries, one per (interface, family), for the advert thread.
    pub canaries: Vec<Canary>,
}

pub struct Executor {
    /// By slot (see `control::InstanceId`).
    instances: HashMap<InstanceId, InstanceIo>,
    /// Where what we hold is written down (see `held`).
    paths: held::Paths,
    /// An in-place restart: leave VIPs and vmacs where they are at the end.
    leaving: bool,
    /// When this image started (for the state file).
    started_unix: f64,
    groups: Vec<GroupIo>,
    pub netlink: Netlink,
    pub recorder: Recorder,
    notifier: Notifier,
    /// `--attach`, over the configuration's `xvrrpd_attach`.
    attach: Option<AttachMode>,
    /// (ifindex, family) of the canaries handed to the advert thread.
    canaries: HashSet<(u32, Family)>,
}

/// The interface's advert source; a fresh IPv6 link-local is tentative for
/// a moment (DAD), so wait up to 5 s for one before giving up.
async fn source_address(interface: &str, family: Family) -> Result<Option<IpAddr>, SocketError> {
    for _ in 0..50 {
        if let Some(a) = socket::interface_address(interface, family)? {
            return Ok(Some(a));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(None)
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
        let mut canary_keys = HashSet::new();
        let mut canaries = Vec::new();
        for index in 0..config.instances.len() {
            let (mut io, advert, placement) =
                start_instance(config, index, &netlink, &mut recorder, attach).await?;
            note_attachment(&mut attachments, &placement);
            canaries.extend(open_canary(&io.plan, &mut canary_keys));
            if let (Some(vmac), Some(prev)) = (io.vmac.as_mut(), previous) {
                // Adopted from the image before us, which created it.
                vmac.created |= prev
                    .instances
                    .iter()
                    .any(|i| i.vmac.as_ref().is_some_and(|v| v.name == vmac.name));
            }
            if resume.contains(&io.name) {
                io.holding = true;
            } else {
                // A VIP left by an earlier run is not ours until we are master.
                remove_vips(&io, &netlink).await;
            }
            plans.push(io.plan.clone());
            adverts.insert(index, advert);
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
        let executor = Executor {
            instances,
            paths,
            leaving: false,
            started_unix: held::now_unix(),
            groups: group_io,
            netlink,
            recorder,
            notifier,
            attach,
            canaries: canary_keys,
        };
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
                let Some(io) = self.instances.get_mut(&i) else {
                    return;
                };
                io.holding = true;
                // Written down first: a crash half-way still gets cleaned up.
                self.save_held();
                let Some(io) = self.instances.get(&i) else {
                    return;
                };
                for b in &io.vips {
                    if let Err(e) = self.netlink.add_vip(b.ifindex, &b.vip).await {
                        warn!(instance = %io.name, interface = %b.interface, vip = %b.vip.addr, error = %e, "adding VIP");
                    }
                }
            }
            Command::RemoveVips(i) => {
                if let Some(io) = self.instances.get_mut(&i) {
                    io.holding = false;
                    remove_vips(io, &self.netlink).await;
                    self.save_held();
                }
            }
            Command::GarpBurst { instance, burst } => {
                let Some(io) = self.io(instance) else { return };
                let garp = Arc::clone(&io.garp);
                let vips: Vec<IpAddr> = io.vips.iter().map(|b| b.vip.addr).collect();
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

    /// Final clean-up: VIPs off, vmacs we made removed, notifies drained,
    /// then XDP detached with the recorder.
    pub async fn stop(mut self) {
        if self.leaving {
            // In-place restart: VIPs, vmacs and the state file stay for the
            // next image; the XDP program goes (the next image loads its own).
            self.save_held();
        } else {
            for (_, io) in std::mem::take(&mut self.instances) {
                self.drop_instance(io).await;
            }
            held::remove_state(&self.paths);
        }
        self.notifier.shutdown().await;
        self.recorder.shutdown();
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

    /// An instance that no longer runs: VIPs off, its vmac gone if we made it.
    async fn drop_instance(&mut self, io: InstanceIo) {
        remove_vips(&io, &self.netlink).await;
        if let Some(v) = io.vmac.as_ref().filter(|v| v.created) {
            if let Err(e) = remove_vmac(&self.netlink, v).await {
                warn!(instance = %io.name, vmac = %v.name, error = %e, "removing the vmac");
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
                self.drop_instance(io).await;
                // A replacement with the same key registers itself again below.
                if let Err(e) = self.recorder.maps.remove_instance(key) {
                    warn!(error = %e, "reload: unregistering a retired instance");
                }
            }
        }
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
                match start_instance(&r.config, k, &self.netlink, &mut self.recorder, self.attach)
                    .await
                {
                    Ok((io, advert, _placement)) => {
                        remove_vips(&io, &self.netlink).await;
                        adverts.push((slot, advert));
                        canaries.extend(open_canary(&io.plan, &mut self.canaries));
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
            let up = self
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
    /// addresses) is unchanged, so the host facts are its old ones.
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
        let vips = match bind_vips(&plan, &self.netlink, io.vmac.as_ref()).await {
            Ok(v) => v,
            Err(e) => {
                error!("reload: {e}; instance {} keeps its VIPs", io.name);
                return Some(io.plan.clone());
            }
        };
        let io = self.instances.get_mut(&slot)?;
        if io.holding {
            // Master: the VIP set changes now, as keepalived does on reload.
            for gone in io.vips.iter().filter(|b| !vips.iter().any(|n| n.same(b))) {
                if let Err(e) = self.netlink.del_vip(gone.ifindex, &gone.vip).await {
                    warn!(instance = %io.name, vip = %gone.vip, error = %e, "reload: removing VIP");
                }
            }
            for new in vips.iter().filter(|n| !io.vips.iter().any(|b| b.same(n))) {
                if let Err(e) = self.netlink.add_vip(new.ifindex, &new.vip).await {
                    warn!(instance = %io.name, vip = %new.vip, error = %e, "reload: adding VIP");
                }
            }
        }
        io.vips = vips;
        io.notify = config.instances[index].notify.clone();
        io.garp_pacing = plan.engine.garp.spacing;
        io.plan = plan.clone();
        Some(plan)
    }
}

/// Looks up the host facts, plans the instance and opens everything it uses.
async fn start_instance(
    config: &config::Config,
    index: usize,
    netlink: &Netlink,
    recorder: &mut Recorder,
    attach: Option<AttachMode>,
) -> Result<(InstanceIo, AdvertIo, Placement), Box<ExecuteError>> {
    let cfg = &config.instances[index];
    let name = cfg.name.clone();
    let interface_err = |interface: &str| {
        let (instance, interface) = (name.clone(), interface.to_owned());
        move |source| {
            Box::new(ExecuteError::Interface {
                instance,
                interface,
                source,
            })
        }
    };
    let socket_err = |source| {
        Box::new(ExecuteError::Socket {
            instance: name.clone(),
            source,
        })
    };
    let link = netlink
        .link_by_name(&cfg.interface)
        .await
        .map_err(interface_err(&cfg.interface))?;
    let family = cfg.family();
    let source = match cfg.unicast_src_ip {
        Some(s) => s,
        None => source_address(&cfg.interface, family)
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

    let vips = bind_vips(&plan, netlink, vmac.as_ref()).await?;

    let mac = vmac.as_ref().map(|v| v.mac).or(link.mac).unwrap_or([0; 6]);
    let garp =
        GarpSender::open(&plan.send_interface, mac).map_err(|source| ExecuteError::Garp {
            instance: name.clone(),
            source,
        })?;

    let bpf = |source| {
        Box::new(ExecuteError::Bpf {
            instance: name.clone(),
            source: Box::new(source),
        })
    };
    let mode = attach.or(config.global.xvrrpd_attach).unwrap_or_default();
    let placement = recorder.attach(&plan.interface, mode).map_err(bpf)?;
    recorder.maps.register(plan.key, &plan.xdp).map_err(bpf)?;

    let advert = AdvertIo::new(name.clone(), plan.key, plan.advert.clone(), sender);
    let io = InstanceIo {
        name,
        holding: false,
        garp: Arc::new(garp),
        vmac,
        vips,
        garp_pacing: plan.engine.garp.spacing,
        notify: cfg.notify.clone(),
        plan,
    };
    Ok((io, advert, placement))
}

/// Resolves each VIP's interface: the vmac, or by name (the VRRP
/// interface, or a `dev`).
async fn bind_vips(
    plan: &InstancePlan,
    netlink: &Netlink,
    vmac: Option<&Vmac>,
) -> Result<Vec<BoundVip>, Box<ExecuteError>> {
    let mut vips = Vec::with_capacity(plan.vips.len());
    for v in &plan.vips {
        let ifindex = match vmac.filter(|vm| vm.name == v.interface) {
            Some(vm) => vm.ifindex,
            None => {
                netlink
                    .link_by_name(&v.interface)
                    .await
                    .map_err(|source| ExecuteError::Interface {
                        instance: plan.name.clone(),
                        interface: v.interface.clone(),
                        source,
                    })?
                    .ifindex
            }
        };
        vips.push(BoundVip {
            ifindex,
            interface: v.interface.clone(),
            vip: v.vip.clone(),
        });
    }
    Ok(vips)
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

async fn remove_vips(io: &InstanceIo, netlink: &Netlink) {
    for b in &io.vips {
        if let Err(e) = netlink.del_vip(b.ifindex, &b.vip).await {
            warn!(instance = %io.name, interface = %b.interface, vip = %b.vip.addr, error = %e, "removing VIP");
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

impl Executor {
    /// Carries out commands until the advert thread hangs up.
    async fn serve(&mut self, mut rx: UnboundedReceiver<ToExecutor>) {
        while let Some(item) = rx.recv().await {
            match item {
                ToExecutor::Command(c) => self.one(c).await,
                ToExecutor::Error(e) => warn!("{e}"),
                ToExecutor::Reload(r) => {
                    self.reload(*r).await;
                    self.save_held();
                }
                ToExecutor::Leave => self.leaving = true,
            }
        }
    }
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
