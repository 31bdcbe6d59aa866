//! One running VRRP instance: the pure engine plus the I/O it drives.
//!
//! `feed_*` turn kernel records into engine inputs; `execute` carries out the
//! engine's actions (adverts, VIPs, GARP/NA bursts, logs).

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Duration};

use thiserror::Error;
use tracing::{debug, info, warn};
use vrrp_common::{
    instance_flags, InstanceConfig, InstanceKey, PeerKey, PeerRecord, FAMILY_IPV4, FAMILY_IPV6,
};

use crate::{
    bpf::{BpfError, Delivery, Maps, XdpInstance},
    config::{self, AuthType, GlobalDefs, InitialState},
    engine::{self, Action, AdvertSeen, GarpParams, Input, InstanceParams, Reason, State},
    network::{
        garp::{GarpSender, Pacing},
        netlink::{Netlink, NetlinkError, Vip},
        socket::{self, SenderConfig, SocketError, VrrpSender},
        vmac::{ensure_vmac, remove_vmac, Vmac, VmacError, VmacSpec},
    },
    packet::{self, Advert, Auth, Family, Version},
    time::Mono,
    track::{priority::Weighted, TrackerId},
};

#[derive(Debug, Error)]
pub enum InstanceError {
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
        source: crate::network::garp::GarpError,
    },
    #[error("instance {instance}: use_vmac: {source}")]
    Vmac {
        instance: String,
        #[source]
        source: VmacError,
    },
    #[error("instance {instance}: {source}")]
    Params {
        instance: String,
        #[source]
        source: engine::ParamsError,
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

pub struct RunningInstance {
    pub name: String,
    pub config: config::Instance,
    pub key: InstanceKey,
    pub engine: engine::Instance,
    xdp_config: InstanceConfig,
    sender: VrrpSender,
    garp: Arc<GarpSender>,
    /// The `use_vmac` macvlan, removed at stop if we created it.
    vmac: Option<Vmac>,
    vips: Vec<BoundVip>,
    /// Where adverts go: the group, or each unicast peer.
    destinations: Vec<IpAddr>,
    source: IpAddr,
    template: Advert,
    pseudo_header: bool,
    garp_pacing: Duration,
    /// Latest arrival already fed to the engine, per peer.
    fed: HashMap<PeerKey, u64>,
    /// What this instance tracks, weights resolved (set by the daemon).
    pub tracked: Vec<Weighted>,
    /// Index of its sync group in the daemon, if it is in one.
    pub group: Option<usize>,
    /// The instance's own interface is oper-up.
    pub link_up: bool,
    /// Trackers demanding FAULT now, for the log when that changes.
    pub faulted_by: Vec<TrackerId>,
    /// Priority from base + weights, as last computed.
    pub tracked_priority: u8,
    /// Fault level last given to the engine (`None`: not yet).
    pub fed_fault: Option<bool>,
}

/// A state change the engine made, for notifies and sync groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub reason: Reason,
    pub priority: u8,
}

fn scope_number(scope: &str) -> Option<u8> {
    match scope {
        "global" | "universe" => Some(0),
        "site" => Some(200),
        "link" => Some(253),
        "host" => Some(254),
        "nowhere" => Some(255),
        n => n.parse().ok(),
    }
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

fn packet_version(v: config::Version) -> Version {
    match v {
        config::Version::V2 => Version::V2,
        config::Version::V3 => Version::V3,
    }
}

impl RunningInstance {
    /// `sync_member`: the instance is in a `vrrp_sync_group` (it then goes
    /// master only with its group).
    pub async fn start(
        cfg: &config::Instance,
        global: &GlobalDefs,
        sync_member: bool,
        netlink: &Netlink,
    ) -> Result<Self, InstanceError> {
        let name = cfg.name.clone();
        let link = netlink
            .link_by_name(&cfg.interface)
            .await
            .map_err(|source| InstanceError::Interface {
                instance: name.clone(),
                interface: cfg.interface.clone(),
                source,
            })?;
        let family = match cfg.family() {
            config::Family::Ipv4 => Family::V4,
            config::Family::Ipv6 => Family::V6,
        };
        let version = packet_version(cfg.version);
        let socket_err = |source| InstanceError::Socket {
            instance: name.clone(),
            source,
        };
        let group = cfg.multicast_group(global);
        // Adverts leave from the parent's address; with use_vmac they leave
        // through the vmac, so they carry the virtual MAC as keepalived's do.
        let source = match cfg.unicast_src_ip {
            Some(s) => s,
            None => source_address(&cfg.interface, family)
                .await
                .map_err(socket_err)?
                .ok_or_else(|| InstanceError::NoSource {
                    instance: name.clone(),
                    interface: cfg.interface.clone(),
                    family,
                })?,
        };
        let vmac = match &cfg.use_vmac {
            None => None,
            Some(vmac_name) => {
                let mut spec = VmacSpec::new(link.ifindex, cfg.virtual_router_id, family);
                spec.name = vmac_name.clone();
                if let IpAddr::V6(a) = source {
                    spec.ipv6_source = Some(a);
                }
                let vmac =
                    ensure_vmac(netlink, &spec)
                        .await
                        .map_err(|source| InstanceError::Vmac {
                            instance: name.clone(),
                            source,
                        })?;
                info!(instance = %name, vmac = %vmac.name, mac = %crate::network::fmt_mac(&vmac.mac), "virtual MAC interface ready");
                Some(vmac)
            }
        };
        let send_interface = vmac
            .as_ref()
            .map_or(cfg.interface.as_str(), |v| v.name.as_str());
        let sender = VrrpSender::open(
            send_interface,
            family,
            &SenderConfig {
                src: Some(source),
                group: Some(group),
                join_group: !cfg.is_unicast(),
            },
        )
        .map_err(socket_err)?;
        let destinations = if cfg.is_unicast() {
            cfg.unicast_peer.clone()
        } else {
            vec![group]
        };

        let mut vips = Vec::new();
        for v in &cfg.virtual_ipaddress {
            let interface = v.dev.clone().unwrap_or_else(|| send_interface.to_owned());
            let ifindex = if let Some(vm) = vmac.as_ref().filter(|vm| vm.name == interface) {
                vm.ifindex
            } else if interface == cfg.interface {
                link.ifindex
            } else {
                netlink
                    .link_by_name(&interface)
                    .await
                    .map_err(|source| InstanceError::Interface {
                        instance: name.clone(),
                        interface: interface.clone(),
                        source,
                    })?
                    .ifindex
            };
            let brd = match v.broadcast {
                Some(IpAddr::V4(b)) => Some(b),
                _ => None,
            };
            vips.push(BoundVip {
                ifindex,
                interface,
                vip: Vip {
                    addr: v.address,
                    prefix: v.prefix_len,
                    brd,
                    label: v.label.clone(),
                    scope: v.scope.as_deref().and_then(scope_number),
                },
            });
        }

        let auth = match (&cfg.authentication, version) {
            (Some(a), Version::V2) if a.auth_type == AuthType::Pass => {
                Auth::password(a.auth_pass.as_bytes())
            }
            _ => Auth::None,
        };
        let advert_addrs: Vec<IpAddr> = cfg
            .virtual_ipaddress
            .iter()
            .filter(|v| Family::of(&v.address) == family)
            .map(|v| v.address)
            .collect();
        let interval_cs = (cfg.advert_int.as_millis() / 10).clamp(1, 4095) as u16;
        let template = Advert {
            version,
            vrid: cfg.virtual_router_id,
            priority: cfg.priority,
            interval_cs,
            addrs: advert_addrs,
            auth,
        };

        let mut params = InstanceParams::new(name.clone(), cfg.virtual_router_id, version, source);
        params.priority = cfg.priority;
        params.advert_interval = cfg.advert_int;
        params.preempt = !cfg.nopreempt;
        params.preempt_delay = cfg.preempt_delay;
        params.initial_state_master = cfg.state == InitialState::Master;
        params.sync_group = sync_member;
        let garp_pacing = match family {
            Family::V4 => global.vrrp_garp_interval,
            Family::V6 => global.vrrp_gna_interval,
        };
        params.garp = GarpParams {
            master_delay: cfg.garp_master_delay,
            master_repeat: cfg.garp_master_repeat,
            master_refresh: cfg.garp_master_refresh.unwrap_or(Duration::ZERO),
            master_refresh_repeat: cfg.garp_master_refresh_repeat,
            spacing: garp_pacing,
            ..GarpParams::default()
        };
        let engine = engine::Instance::new(params).map_err(|source| InstanceError::Params {
            instance: name.clone(),
            source,
        })?;

        let mac = vmac.as_ref().map(|v| v.mac).or(link.mac).unwrap_or([0; 6]);
        let garp = GarpSender::open(send_interface, mac).map_err(|source| InstanceError::Garp {
            instance: name.clone(),
            source,
        })?;

        let key = InstanceKey::new(
            link.ifindex,
            if family == Family::V4 {
                FAMILY_IPV4
            } else {
                FAMILY_IPV6
            },
            cfg.virtual_router_id,
        );
        let delivery = if cfg.is_unicast() {
            Delivery::Unicast {
                peers: cfg.unicast_peer.clone(),
                check_source: cfg.check_unicast_src || global.vrrp_check_unicast_src,
            }
        } else {
            Delivery::Multicast { group }
        };
        let xdp = XdpInstance {
            version,
            family,
            advert_int: cfg.advert_int,
            auth,
            delivery,
            local: vec![source],
            v3_checksum_as_v2: cfg.v3_checksum_as_v2,
            // Peers are expected to send as we do: from a link-local address
            // unless the configuration names another source.
            link_local_source: matches!(source, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80),
        };
        let xdp_config = xdp.config().map_err(|e| InstanceError::Bpf {
            instance: name.clone(),
            source: Box::new(e.into()),
        })?;
        // v3 checksums cover the pseudo-header, except v3_checksum_as_v2 over IPv4.
        let pseudo_header =
            version == Version::V3 && !(family == Family::V4 && cfg.v3_checksum_as_v2);

        Ok(Self {
            name,
            config: cfg.clone(),
            key,
            engine,
            xdp_config,
            sender,
            garp: Arc::new(garp),
            vmac,
            vips,
            destinations,
            source,
            template,
            pseudo_header,
            garp_pacing,
            fed: HashMap::new(),
            tracked: Vec::new(),
            group: None,
            link_up: true,
            faulted_by: Vec::new(),
            tracked_priority: cfg.priority,
            fed_fault: None,
        })
    }

    /// Registers the instance (and its allowed unicast sources) with the XDP program.
    pub fn register(&self, maps: &mut Maps) -> Result<(), InstanceError> {
        let bpf = |source| InstanceError::Bpf {
            instance: self.name.clone(),
            source: Box::new(source),
        };
        maps.set_instance(self.key, self.xdp_config).map_err(bpf)?;
        // The config validation rejects peers of the other family.
        for peer in self.config.unicast_peer.iter() {
            if let Some(k) = PeerKey::for_source(self.key, *peer) {
                maps.allow_source(k).map_err(bpf)?;
            }
        }
        Ok(())
    }

    /// As master every advert heard matters, so the kernel wakes us for each.
    fn set_wake_on_any(&mut self, maps: &mut Maps, on: bool) {
        let mut cfg = self.xdp_config;
        if on {
            cfg.flags |= instance_flags::WAKE_ON_ANY;
        } else {
            cfg.flags &= !instance_flags::WAKE_ON_ANY;
        }
        if cfg != self.xdp_config {
            match maps.set_instance(self.key, cfg) {
                Ok(()) => self.xdp_config = cfg,
                Err(e) => {
                    warn!(instance = %self.name, error = %e, "updating the XDP instance flags")
                }
            }
        }
    }

    /// Feeds every peer record newer than what the engine has seen, oldest first.
    pub fn feed_records(&mut self, records: &[(PeerKey, PeerRecord)], now: Mono) -> Vec<Action> {
        let mut actions = Vec::new();
        for seen in unseen_adverts(self.key, records, &mut self.fed) {
            actions.extend(self.engine.handle(Input::Advert(seen), now));
        }
        actions
    }

    /// The instance's own interface is down and counts (not `dont_track_primary`).
    pub fn primary_down(&self) -> bool {
        !self.link_up && !self.config.dont_track_primary
    }

    /// Carries out the engine's actions; returns the state changes among them.
    pub async fn execute(
        &mut self,
        actions: Vec<Action>,
        netlink: &Netlink,
        maps: &mut Maps,
    ) -> Vec<Transition> {
        let mut transitions = Vec::new();
        for action in actions {
            match action {
                Action::SendAdvert { priority } => self.send_advert(priority),
                Action::AddVips => {
                    for b in &self.vips {
                        if let Err(e) = netlink.add_vip(b.ifindex, &b.vip).await {
                            warn!(instance = %self.name, interface = %b.interface, vip = %b.vip.addr, error = %e, "adding VIP");
                        }
                    }
                }
                Action::RemoveVips => self.remove_vips(netlink).await,
                Action::SendGarpBurst(burst) => {
                    let garp = Arc::clone(&self.garp);
                    let vips: Vec<IpAddr> = self.vips.iter().map(|b| b.vip.addr).collect();
                    let pacing = Pacing {
                        repeat: burst.count,
                        garp_interval: if burst.spacing.is_zero() {
                            self.garp_pacing
                        } else {
                            burst.spacing
                        },
                        gna_interval: if burst.spacing.is_zero() {
                            self.garp_pacing
                        } else {
                            burst.spacing
                        },
                    };
                    let name = self.name.clone();
                    tokio::spawn(async move {
                        let report = garp.burst(&vips, pacing).await;
                        debug!(instance = %name, cause = ?burst.cause, ?report, "GARP/NA burst sent");
                    });
                }
                Action::Transition {
                    from,
                    to,
                    reason,
                    priority,
                } => {
                    info!(instance = %self.name, "{from:?} -> {to:?} ({reason:?}), priority {priority}");
                    self.set_wake_on_any(maps, to == State::Master);
                    transitions.push(Transition {
                        from,
                        to,
                        reason,
                        priority,
                    });
                }
                Action::AdvertIgnored {
                    src,
                    priority,
                    reason,
                } => {
                    debug!(instance = %self.name, %src, priority, ?reason, "advert ignored");
                }
                Action::MasterIntervalAdopted { from, to } => {
                    info!(instance = %self.name, ?from, ?to, "adopting the master's advert interval");
                }
            }
        }
        transitions
    }

    /// Final clean-up: VIPs off, and the vmac gone if we made it.
    pub async fn stop(&self, netlink: &Netlink) {
        self.remove_vips(netlink).await;
        if let Some(v) = self.vmac.as_ref().filter(|v| v.created) {
            if let Err(e) = remove_vmac(netlink, v).await {
                warn!(instance = %self.name, vmac = %v.name, error = %e, "removing the vmac");
            }
        }
    }

    pub async fn remove_vips(&self, netlink: &Netlink) {
        for b in &self.vips {
            if let Err(e) = netlink.del_vip(b.ifindex, &b.vip).await {
                warn!(instance = %self.name, interface = %b.interface, vip = %b.vip.addr, error = %e, "removing VIP");
            }
        }
    }

    fn send_advert(&self, priority: u8) {
        let mut advert = self.template.clone();
        advert.priority = priority;
        for &dst in &self.destinations {
            let pseudo = self.pseudo_header.then_some((self.source, dst));
            let pdu = match packet::encode(&advert, pseudo) {
                Ok(p) => p,
                Err(e) => {
                    warn!(instance = %self.name, error = %e, "encoding advert");
                    return;
                }
            };
            if let Err(e) = self.sender.send(&pdu, dst) {
                warn!(instance = %self.name, %dst, error = %e, "sending advert");
            }
        }
    }
}

/// The adverts in `records` for `instance` that arrived after what `fed`
/// says was already given to the engine, oldest first; updates `fed`.
///
/// A record holds the latest advert and, since the peer's last priority
/// change, when its previous priority was last heard. Both count: a backup
/// that wakes on a master's drop to a lower priority must learn when the
/// master was last heard at the old one, or its down timer would run from
/// an older advert and it would preempt early.
pub fn unseen_adverts(
    instance: InstanceKey,
    records: &[(PeerKey, PeerRecord)],
    fed: &mut HashMap<PeerKey, u64>,
) -> Vec<AdvertSeen> {
    let mut fresh = Vec::new();
    for (k, r) in records.iter().filter(|(k, _)| k.instance() == instance) {
        let seen_up_to = fed.get(k).copied().unwrap_or(0);
        let interval = Duration::from_millis(u64::from(r.interval_cs) * 10);
        let advert = |priority, at| AdvertSeen {
            src: k.source(),
            priority,
            interval,
            arrived: Mono(at),
        };
        if r.prev_last_ns > seen_up_to && r.prev_last_ns < r.last_ns {
            fresh.push(advert(r.prev_priority, r.prev_last_ns));
        }
        if r.last_ns > seen_up_to {
            fresh.push(advert(r.priority, r.last_ns));
            fed.insert(*k, r.last_ns);
        }
    }
    fresh.sort_by_key(|a| a.arrived);
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrrp_common::FAMILY_IPV4;

    #[test]
    fn a_drop_in_priority_still_reports_when_the_old_priority_was_last_heard() {
        let instance = InstanceKey::new(3, FAMILY_IPV4, 51);
        let other = InstanceKey::new(3, FAMILY_IPV4, 52);
        let peer = PeerKey::for_source(instance, "192.0.2.1".parse().unwrap()).unwrap();
        let elsewhere = PeerKey::for_source(other, "192.0.2.1".parse().unwrap()).unwrap();
        let record = |priority, last_ns, prev_priority, prev_last_ns| PeerRecord {
            priority,
            last_ns,
            prev_priority,
            prev_last_ns,
            interval_cs: 100,
            ..Default::default()
        };
        let mut fed = HashMap::new();
        // First sight: priority 200 at t=1 s.
        let got = unseen_adverts(
            instance,
            &[
                (peer, record(200, 1_000, 0, 0)),
                (elsewhere, record(9, 5_000, 0, 0)),
            ],
            &mut fed,
        );
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].priority, got[0].arrived), (200, Mono(1_000)));
        // Adverts at 200 until t=3 went unread; then several at 50.
        let got = unseen_adverts(instance, &[(peer, record(50, 6_000, 200, 3_000))], &mut fed);
        let seen: Vec<(u8, Mono)> = got.iter().map(|a| (a.priority, a.arrived)).collect();
        assert_eq!(seen, vec![(200, Mono(3_000)), (50, Mono(6_000))]);
        assert_eq!(got[0].interval, Duration::from_secs(1));
        // Nothing new: nothing fed again.
        assert!(
            unseen_adverts(instance, &[(peer, record(50, 6_000, 200, 3_000))], &mut fed).is_empty()
        );
        // A newer advert at 50 does not replay the old priority.
        let got = unseen_adverts(instance, &[(peer, record(50, 7_000, 200, 3_000))], &mut fed);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].arrived, Mono(7_000));
    }
}
