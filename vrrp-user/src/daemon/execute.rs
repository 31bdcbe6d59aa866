//! The executor: the only part of the daemon that does I/O for instances.
//!
//! [`Executor::start`] looks up each instance's interface and source
//! address, [`plan`](super::plan::plan)s it, creates its vmac, opens its
//! sockets and registers it with the XDP recorder. [`Executor::execute`]
//! carries out the controller's [`Command`]s: adverts, VIPs over netlink,
//! GARP/NA bursts, XDP flags, notify scripts and log lines.

use std::{net::IpAddr, sync::Arc, time::Duration};

use thiserror::Error;
use tracing::{debug, error, info, warn};
use vrrp_common::{instance_flags, InstanceConfig, InstanceKey};

use super::{
    control::{Command, InstanceId, Note, NotifyOwner},
    plan::{self, AdvertPlan, GroupPlan, InstancePlan, LinkFacts, PlanError},
};
use crate::{
    bpf::{BpfError, Maps, Recorder},
    config,
    network::{
        garp::{GarpError, GarpSender, Pacing},
        netlink::{Netlink, NetlinkError, Vip},
        socket::{self, SenderConfig, SocketError, VrrpSender},
        vmac::{ensure_vmac, remove_vmac, Vmac, VmacError},
    },
    notify::{Notifier, NotifyState, Owner},
    packet::{self, Family},
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

/// One instance's I/O.
struct InstanceIo {
    name: String,
    key: InstanceKey,
    xdp: InstanceConfig,
    advert: AdvertPlan,
    sender: VrrpSender,
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

pub struct Executor {
    instances: Vec<InstanceIo>,
    groups: Vec<GroupIo>,
    pub netlink: Netlink,
    pub recorder: Recorder,
    notifier: Notifier,
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
    pub async fn start(
        config: &config::Config,
        netlink: Netlink,
        mut recorder: Recorder,
        notifier: Notifier,
    ) -> Result<(Self, Vec<InstancePlan>, Vec<GroupPlan>), Box<ExecuteError>> {
        let mut plans = Vec::with_capacity(config.instances.len());
        let mut instances = Vec::with_capacity(config.instances.len());
        for (index, cfg) in config.instances.iter().enumerate() {
            let (plan, io) = start_instance(config, index, &netlink, &mut recorder).await?;
            let io = InstanceIo {
                notify: cfg.notify.clone(),
                ..io
            };
            // A VIP left by an earlier run is not ours until we are master.
            remove_vips(&io, &netlink).await;
            plans.push(plan);
            instances.push(io);
        }
        let groups = plan::groups(config);
        let group_io = plan::active_groups(config)
            .into_iter()
            .map(|g| GroupIo {
                name: g.name.clone(),
                notify: g.notify.clone(),
            })
            .collect();
        Ok((
            Executor {
                instances,
                groups: group_io,
                netlink,
                recorder,
                notifier,
            },
            plans,
            groups,
        ))
    }

    pub fn name(&self, i: InstanceId) -> &str {
        &self.instances[i].name
    }

    /// Carries out the controller's commands in order.
    pub async fn execute(&mut self, commands: Vec<Command>) {
        for command in commands {
            self.one(command).await;
        }
    }

    async fn one(&mut self, command: Command) {
        match command {
            Command::SendAdvert { instance, priority } => {
                send_advert(&self.instances[instance], priority)
            }
            Command::AddVips(i) => {
                let io = &self.instances[i];
                for b in &io.vips {
                    if let Err(e) = self.netlink.add_vip(b.ifindex, &b.vip).await {
                        warn!(instance = %io.name, interface = %b.interface, vip = %b.vip.addr, error = %e, "adding VIP");
                    }
                }
            }
            Command::RemoveVips(i) => remove_vips(&self.instances[i], &self.netlink).await,
            Command::GarpBurst { instance, burst } => {
                let io = &self.instances[instance];
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
            Command::WakeOnAny { instance, on } => {
                set_wake_on_any(&mut self.instances[instance], &mut self.recorder.maps, on)
            }
            Command::Transition {
                instance,
                from,
                to,
                reason,
                priority,
            } => {
                let name = &self.instances[instance].name;
                info!(instance = %name, "{from:?} -> {to:?} ({reason:?}), priority {priority}");
            }
            Command::Notify {
                owner,
                state,
                priority,
            } => {
                let (owner, scripts) = match owner {
                    NotifyOwner::Instance(i) => {
                        let io = &self.instances[i];
                        (Owner::Instance(io.name.clone()), &io.notify)
                    }
                    NotifyOwner::Group(g) => {
                        let io = &self.groups[g];
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
        let name = |i: InstanceId| self.instances[i].name.as_str();
        let group = |g: usize| self.groups[g].name.as_str();
        match note {
            Note::FaultedBy { instance, by } => {
                let by: Vec<String> = by.iter().map(|t| t.to_string()).collect();
                warn!(instance = %name(instance), "fault: {}", by.join(", "));
            }
            Note::PriorityChanged { instance, from, to } => {
                info!(instance = %name(instance), from, to, "effective priority changed")
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
                info!(group = %group(g), instance = %name(instance), "syncing to {to} with {}", name(with));
            }
            Note::GroupReady { group: g } => {
                info!(group = %group(g), "every member wants master: syncing to MASTER")
            }
            Note::GroupState { group: g, state } => {
                info!(group = %group(g), ?state, "sync group state")
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
        }
    }

    /// Final clean-up: VIPs off, vmacs we made removed, notifies drained,
    /// then XDP detached with the recorder.
    pub async fn stop(self) {
        for io in &self.instances {
            remove_vips(io, &self.netlink).await;
            if let Some(v) = io.vmac.as_ref().filter(|v| v.created) {
                if let Err(e) = remove_vmac(&self.netlink, v).await {
                    warn!(instance = %io.name, vmac = %v.name, error = %e, "removing the vmac");
                }
            }
        }
        self.notifier.shutdown().await;
        self.recorder.shutdown();
    }
}

/// Looks up the host facts, plans the instance and opens everything it uses.
async fn start_instance(
    config: &config::Config,
    index: usize,
    netlink: &Netlink,
    recorder: &mut Recorder,
) -> Result<(InstancePlan, InstanceIo), Box<ExecuteError>> {
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
    let family = plan::family(cfg);
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

    let mut vips = Vec::with_capacity(plan.vips.len());
    for v in &plan.vips {
        let ifindex = if let Some(vm) = vmac.as_ref().filter(|vm| vm.name == v.interface) {
            vm.ifindex
        } else if v.interface == plan.interface {
            link.ifindex
        } else {
            netlink
                .link_by_name(&v.interface)
                .await
                .map_err(interface_err(&v.interface))?
                .ifindex
        };
        vips.push(BoundVip {
            ifindex,
            interface: v.interface.clone(),
            vip: v.vip.clone(),
        });
    }

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
    recorder.attach(&plan.interface).map_err(bpf)?;
    recorder
        .maps
        .set_instance(plan.key, plan.xdp)
        .map_err(bpf)?;
    for &k in &plan.allowed_sources {
        recorder.maps.allow_source(k).map_err(bpf)?;
    }

    let io = InstanceIo {
        name,
        key: plan.key,
        xdp: plan.xdp,
        advert: plan.advert.clone(),
        sender,
        garp: Arc::new(garp),
        vmac,
        vips,
        garp_pacing: plan.engine.garp.spacing,
        notify: config::Notify::default(),
    };
    Ok((plan, io))
}

async fn remove_vips(io: &InstanceIo, netlink: &Netlink) {
    for b in &io.vips {
        if let Err(e) = netlink.del_vip(b.ifindex, &b.vip).await {
            warn!(instance = %io.name, interface = %b.interface, vip = %b.vip.addr, error = %e, "removing VIP");
        }
    }
}

fn send_advert(io: &InstanceIo, priority: u8) {
    let mut advert = io.advert.template.clone();
    advert.priority = priority;
    for &dst in &io.advert.destinations {
        let pseudo = io.advert.pseudo_header.then_some((io.advert.source, dst));
        let pdu = match packet::encode(&advert, pseudo) {
            Ok(p) => p,
            Err(e) => {
                warn!(instance = %io.name, error = %e, "encoding advert");
                return;
            }
        };
        if let Err(e) = io.sender.send(&pdu, dst) {
            warn!(instance = %io.name, %dst, error = %e, "sending advert");
        }
    }
}

fn set_wake_on_any(io: &mut InstanceIo, maps: &mut Maps, on: bool) {
    let mut cfg = io.xdp;
    if on {
        cfg.flags |= instance_flags::WAKE_ON_ANY;
    } else {
        cfg.flags &= !instance_flags::WAKE_ON_ANY;
    }
    if cfg != io.xdp {
        match maps.set_instance(io.key, cfg) {
            Ok(()) => io.xdp = cfg,
            Err(e) => warn!(instance = %io.name, error = %e, "updating the XDP instance flags"),
        }
    }
}
