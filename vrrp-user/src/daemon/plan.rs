//! `plan`: everything one instance needs, derived from its configuration in
//! one pure function.
//!
//! A `vrrp_instance` block takes three forms at run time: the engine's
//! [`InstanceParams`], the advert the sender puts on the wire, and the
//! [`InstanceConfig`] the XDP program checks adverts against. Each
//! conversion (interval, authentication, family, VIP scope) lives here once,
//! so the three can never disagree. The only facts from the host are the
//! interface's index and the advert source address ([`LinkFacts`]); the
//! executor looks those up before calling [`plan`].

use std::{net::IpAddr, time::Duration};

use thiserror::Error;
use vrrp_common::{InstanceKey, FAMILY_IPV4, FAMILY_IPV6};

use crate::{
    bpf::{Delivery, XdpConfigError, XdpInstance},
    config::{self, AuthType, InitialState},
    engine::{self, GarpParams, InstanceParams},
    network::{netlink::Vip, vmac::VmacSpec},
    packet::{Advert, Auth, Family, Version},
    track::priority::{self, Weighted},
};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PlanError {
    #[error("instance {instance}: {source}")]
    Params {
        instance: String,
        #[source]
        source: engine::ParamsError,
    },
    #[error("instance {instance}: {source}")]
    Xdp {
        instance: String,
        #[source]
        source: XdpConfigError,
    },
    #[error("instance {instance}: VIP {vip}: unknown scope {scope:?}")]
    Scope {
        instance: String,
        vip: IpAddr,
        scope: String,
    },
}

/// What the host tells us about an instance's interface before planning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    pub ifindex: u32,
    /// Advert source: `unicast_src_ip`, else the interface's address of the
    /// instance's family.
    pub source: IpAddr,
}

/// Where adverts go and how they are checksummed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdvertPlan {
    /// The advert at base priority; the sender only changes the priority.
    pub template: Advert,
    pub source: IpAddr,
    /// The multicast group, or each unicast peer.
    pub destinations: Vec<IpAddr>,
    /// The instance's multicast group (joined unless unicast).
    pub group: IpAddr,
    pub unicast: bool,
    /// v3 checksums cover the pseudo-header, except `v3_checksum_as_v2` over IPv4.
    pub pseudo_header: bool,
}

/// A VIP and the interface it is added to (by name: the executor resolves it
/// when it adds it, so a re-created interface gets it too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedVip {
    pub interface: String,
    pub vip: Vip,
    /// `virtual_ipaddress_excluded`: added and removed with the VIPs, not advertised.
    pub excluded: bool,
    /// `no_track`: deleting it by hand does not release the instance.
    pub no_track: bool,
}

/// Everything one instance needs at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstancePlan {
    pub name: String,
    /// The VRRP interface (the vmac's parent with `use_vmac`).
    pub interface: String,
    /// Which XDP instance entry the kernel records adverts under.
    pub key: InstanceKey,
    pub family: Family,
    pub engine: InstanceParams,
    pub advert: AdvertPlan,
    /// What the XDP program checks adverts against (the unicast peers it
    /// never evicts and, with `check_unicast_src`, the only ones it accepts).
    pub xdp: XdpInstance,
    /// The macvlan to create for `use_vmac`; adverts, VIPs and GARPs go through it.
    pub vmac: Option<VmacSpec>,
    /// The interface adverts leave from: the vmac, or the VRRP interface
    /// (also with `vmac_xmit_base`).
    pub send_interface: String,
    /// The interface GARPs/NAs leave from and VIPs go on by default: the vmac
    /// or the VRRP interface.
    pub vip_interface: String,
    /// VIPs, then excluded VIPs.
    pub vips: Vec<PlannedVip>,
    /// Installed while master, removed otherwise.
    pub routes: Vec<config::VirtualRoute>,
    pub rules: Vec<config::VirtualRule>,
    /// Traffic to the VIPs is dropped by the firewall while master (no
    /// accept mode): keepalived's nftables rules.
    pub drop_vip_traffic: bool,
    /// `promote_secondaries` on the VRRP interface while running.
    pub promote_secondaries: bool,
    /// What the instance tracks, weights resolved.
    pub tracked: Vec<Weighted>,
    /// Index of its (active) sync group, if any.
    pub group: Option<usize>,
    pub dont_track_primary: bool,
}

/// A `vrrp_sync_group` of at least two members, as the controller runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPlan {
    pub name: String,
    /// Indexes into the planned instances.
    pub members: Vec<usize>,
}

/// The advert interval as the wire carries it, in centiseconds (the encoder
/// writes whole seconds for v2). The config has already rounded it as
/// keepalived does.
pub fn interval_cs(advert_int: Duration) -> u16 {
    (advert_int.as_millis() / 10).clamp(1, 4095) as u16
}

/// The v2 interval the kernel requires of received adverts, in seconds.
pub fn v2_interval_s(advert_int: Duration) -> u8 {
    advert_int.as_secs().clamp(1, 255) as u8
}

/// `scope` of a `virtual_ipaddress` line as RT_SCOPE_* (iproute2's names or a number).
pub fn scope_number(scope: &str) -> Option<u8> {
    match scope {
        "global" | "universe" => Some(0),
        "site" => Some(200),
        "link" => Some(253),
        "host" => Some(254),
        "nowhere" => Some(255),
        n => n.parse().ok(),
    }
}

/// An address line as the kernel gets it (`plan` refuses an unknown scope).
pub fn vip_of(v: &config::VirtualIp) -> Vip {
    Vip {
        addr: v.address,
        prefix: v.prefix_len,
        brd: match v.broadcast {
            Some(IpAddr::V4(b)) => Some(b),
            _ => None,
        },
        label: v.label.clone(),
        scope: v.scope.as_deref().and_then(scope_number),
    }
}

/// The advert's authentication: PASS only exists in v2.
fn auth(cfg: &config::Instance, version: Version) -> Auth {
    match (&cfg.authentication, version) {
        (Some(a), Version::V2) if a.auth_type == AuthType::Pass => {
            Auth::password(a.auth_pass.as_bytes())
        }
        _ => Auth::None,
    }
}

fn af(family: Family) -> u8 {
    match family {
        Family::V4 => FAMILY_IPV4,
        Family::V6 => FAMILY_IPV6,
    }
}

/// Plans instance `index` of `config`.
pub fn plan(
    config: &config::Config,
    index: usize,
    facts: &LinkFacts,
) -> Result<InstancePlan, PlanError> {
    let cfg = &config.instances[index];
    let global = &config.global;
    let name = cfg.name.clone();
    let family = cfg.family();
    let version = cfg.version;
    let source = facts.source;
    let group_addr = cfg.multicast_group(global);
    let unicast = cfg.is_unicast();

    let vmac = cfg.use_vmac.as_ref().map(|vmac_name| {
        let mut spec = VmacSpec::new(facts.ifindex, cfg.virtual_router_id, family);
        spec.name = vmac_name.clone();
        if let IpAddr::V6(a) = source {
            spec.ipv6_source = Some(a);
        }
        spec
    });
    // With use_vmac, adverts leave through the vmac so they carry the
    // virtual MAC, as keepalived's do, unless vmac_xmit_base sends them from
    // the parent.
    let vip_interface = vmac
        .as_ref()
        .map_or_else(|| cfg.interface.clone(), |v| v.name.clone());
    let send_interface = if cfg.vmac_xmit_base {
        cfg.interface.clone()
    } else {
        vip_interface.clone()
    };

    let mut vips = Vec::with_capacity(cfg.virtual_ipaddress.len());
    let excluded = cfg.virtual_ipaddress_excluded.iter().map(|v| (v, true));
    for (v, excluded) in cfg
        .virtual_ipaddress
        .iter()
        .map(|v| (v, false))
        .chain(excluded)
    {
        if let Some(s) = v.scope.as_deref().filter(|s| scope_number(s).is_none()) {
            return Err(PlanError::Scope {
                instance: name.clone(),
                vip: v.address,
                scope: s.to_owned(),
            });
        }
        vips.push(PlannedVip {
            interface: v.dev.clone().unwrap_or_else(|| vip_interface.clone()),
            vip: vip_of(v),
            excluded,
            no_track: v.no_track,
        });
    }

    let auth = auth(cfg, version);
    let template = Advert {
        version,
        vrid: cfg.virtual_router_id,
        priority: cfg.priority,
        interval_cs: interval_cs(cfg.advert_int),
        // Adverts carry the VIPs of their own family only.
        addrs: cfg
            .virtual_ipaddress
            .iter()
            .filter(|v| Family::of(&v.address) == family)
            .map(|v| v.address)
            .collect(),
        auth,
    };
    let advert = AdvertPlan {
        template,
        source,
        destinations: if unicast {
            cfg.unicast_peer.clone()
        } else {
            vec![group_addr]
        },
        group: group_addr,
        unicast,
        pseudo_header: version == Version::V3 && !(family == Family::V4 && cfg.v3_checksum_as_v2),
    };

    let group = active_groups(config)
        .iter()
        .position(|g| g.members.contains(&cfg.name));
    let mut params = InstanceParams::new(name.clone(), cfg.virtual_router_id, version, source);
    params.priority = cfg.priority;
    params.advert_interval = cfg.advert_int;
    params.preempt = !cfg.nopreempt;
    params.preempt_delay = cfg.preempt_delay;
    params.initial_state_master = cfg.state == InitialState::Master;
    params.sync_group = group.is_some();
    params.startup_delay = global.vrrp_startup_delay;
    params.down_timer_adverts = cfg.down_timer_adverts;
    params.lower_prio_no_advert = cfg.lower_prio_no_advert;
    params.higher_prio_send_advert = cfg.higher_prio_send_advert;
    params.garp = GarpParams {
        master_delay: cfg.garp_master_delay,
        master_repeat: cfg.garp_master_repeat,
        master_refresh: cfg.garp_master_refresh.unwrap_or(Duration::ZERO),
        master_refresh_repeat: cfg.garp_master_refresh_repeat,
        lower_prio_repeat: cfg.garp_lower_prio_repeat,
        lower_prio_delay: cfg.garp_lower_prio_delay,
        spacing: match family {
            Family::V4 => global.vrrp_garp_interval,
            Family::V6 => global.vrrp_gna_interval,
        },
    };
    params.validate().map_err(|source| PlanError::Params {
        instance: name.clone(),
        source,
    })?;

    let key = InstanceKey::new(facts.ifindex, af(family), cfg.virtual_router_id);
    let delivery = if unicast {
        Delivery::Unicast {
            peers: cfg.unicast_peer.clone(),
            check_source: cfg.check_unicast_src || global.vrrp_check_unicast_src,
        }
    } else {
        Delivery::Multicast { group: group_addr }
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
    // Checked here so a bad combination is a plan error, not a failure later.
    xdp.config().map_err(|source| PlanError::Xdp {
        instance: name.clone(),
        source,
    })?;

    let ignore_weights = group.is_some_and(|g| !active_groups(config)[g].tracking_weight);
    Ok(InstancePlan {
        name,
        interface: cfg.interface.clone(),
        key,
        family,
        engine: params,
        advert,
        xdp,
        vmac,
        send_interface,
        vip_interface,
        vips,
        routes: cfg.virtual_routes.clone(),
        rules: cfg.virtual_rules.clone(),
        drop_vip_traffic: !cfg.accept && !cfg.is_address_owner(),
        promote_secondaries: cfg.promote_secondaries,
        tracked: tracked_items(cfg, config, ignore_weights),
        group,
        dont_track_primary: cfg.dont_track_primary,
    })
}

/// What an instance tracks: its own trackers, then its sync group's, which
/// every member tracks with the group's weight (keepalived's
/// `sync_group_tracking_init`): a tracker written in both takes the group's
/// weight unless the instance's is 0.
pub fn tracked_items(
    cfg: &config::Instance,
    config: &config::Config,
    ignore_weights: bool,
) -> Vec<Weighted> {
    let mut items = priority::instance_items(cfg, config, ignore_weights);
    let Some(group) = config.sync_group_of(&cfg.name) else {
        return items;
    };
    let as_instance = config::Instance {
        track_interface: group.track_interface.clone(),
        track_script: group.track_script.clone(),
        track_process: group.track_process.clone(),
        track_file: group.track_file.clone(),
        ..cfg.clone()
    };
    for g in priority::instance_items(&as_instance, config, false) {
        match items.iter_mut().find(|i| i.tracker == g.tracker) {
            Some(own) if own.weight != 0 => *own = g,
            Some(_) => {}
            None => items.push(g),
        }
    }
    items
}

/// Sync groups that run: a group left with fewer than two members (the
/// config check reports it) does nothing.
pub fn active_groups(config: &config::Config) -> Vec<&config::SyncGroup> {
    config
        .sync_groups
        .iter()
        .filter(|g| g.members.len() >= 2)
        .collect()
}

/// The active sync groups with their members as instance indexes.
pub fn groups(config: &config::Config) -> Vec<GroupPlan> {
    active_groups(config)
        .into_iter()
        .map(|g| GroupPlan {
            name: g.name.clone(),
            members: g
                .members
                .iter()
                .filter_map(|m| config.instances.iter().position(|i| &i.name == m))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, path::Path};

    use super::*;
    use crate::track::TrackerId;
    use vrrp_common::instance_flags;

    fn config(text: &str) -> config::Config {
        let loaded = config::load_str(text, Path::new("/etc/keepalived/keepalived.conf")).unwrap();
        assert!(
            !loaded.has_errors(),
            "{:?}",
            loaded.errors().collect::<Vec<_>>()
        );
        loaded.config
    }

    fn facts(source: &str) -> LinkFacts {
        LinkFacts {
            ifindex: 7,
            source: source.parse().unwrap(),
        }
    }

    #[test]
    fn a_v2_pass_instance_agrees_in_all_three_forms() {
        let c = config(
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 150\n \
             advert_int 3\n authentication {\n auth_type PASS\n auth_pass secret\n }\n \
             virtual_ipaddress {\n 192.0.2.10/24 brd 192.0.2.255 dev eth1 label eth1:vip scope link\n \
             192.0.2.11\n }\n}\n",
        );
        let p = plan(&c, 0, &facts("192.0.2.2")).unwrap();
        // Engine: the interval as a duration, base priority, the source as primary.
        assert_eq!(p.engine.advert_interval, Duration::from_secs(3));
        assert_eq!(p.engine.priority, 150);
        assert_eq!(p.engine.primary_addr, p.advert.source);
        // Wire: the same interval in centiseconds, the password, the VIPs.
        assert_eq!(p.advert.template.interval_cs, 300);
        assert_eq!(p.advert.template.auth, Auth::password(b"secret"));
        assert_eq!(
            p.advert.template.addrs,
            vec![
                "192.0.2.10".parse::<IpAddr>().unwrap(),
                "192.0.2.11".parse().unwrap()
            ]
        );
        assert!(!p.advert.pseudo_header);
        assert_eq!(p.advert.destinations, vec![p.advert.group]);
        // Kernel: the same interval in seconds and the same password.
        let k = p.xdp.config().unwrap();
        assert_eq!(k.v2_interval_s, 3);
        assert_eq!((k.version, k.auth_type), (2, 1));
        assert_eq!(&k.auth_data[..6], b"secret");
        // Multicast to the group; our own source is what the kernel drops.
        assert_eq!(k.group[..4], [224, 0, 0, 18]);
        assert_eq!((k.local_count, &k.local[0][..4]), (1, &[192, 0, 2, 2][..]));
        assert_eq!(p.key, InstanceKey::new(7, FAMILY_IPV4, 51));
        // VIPs: scope parsed once, brd and label kept, dev honoured.
        assert_eq!(p.vips[0].interface, "eth1");
        assert_eq!(p.vips[0].vip.scope, Some(253));
        assert_eq!(p.vips[0].vip.brd, Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert_eq!(p.vips[0].vip.label.as_deref(), Some("eth1:vip"));
        assert_eq!(
            (p.vips[1].interface.as_str(), p.vips[1].vip.prefix),
            ("eth0", 32)
        );
    }

    #[test]
    fn v3_intervals_and_checksums() {
        let c = config(
            "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n version 3\n advert_int 0.05\n \
             virtual_ipaddress {\n 192.0.2.10\n }\n}\n\
             vrrp_instance B {\n interface eth0\n virtual_router_id 6\n version 3\n v3_checksum_as_v2\n \
             virtual_ipaddress {\n 192.0.2.11\n }\n}\n\
             vrrp_instance C {\n interface eth0\n virtual_router_id 7\n advert_int 0.01\n \
             virtual_ipaddress {\n fe80::10\n }\n}\n",
        );
        let a = plan(&c, 0, &facts("192.0.2.2")).unwrap();
        assert_eq!(a.engine.advert_interval, Duration::from_millis(50));
        assert_eq!(a.advert.template.interval_cs, 5);
        assert!(a.advert.pseudo_header);
        let k = a.xdp.config().unwrap();
        assert_eq!(k.version, 3);
        assert_eq!(k.flags & instance_flags::CHECKSUM_AS_V2, 0);
        let b = plan(&c, 1, &facts("192.0.2.2")).unwrap();
        assert!(!b.advert.pseudo_header);
        assert_ne!(
            b.xdp.config().unwrap().flags & instance_flags::CHECKSUM_AS_V2,
            0
        );
        let v6 = plan(&c, 2, &facts("fe80::2")).unwrap();
        assert_eq!(v6.family, Family::V6);
        assert_eq!(v6.engine.version, Version::V3);
        assert_eq!(v6.key.family, FAMILY_IPV6);
        assert_eq!(v6.advert.template.interval_cs, 1);
        assert!(v6.advert.pseudo_header);
        assert_eq!(v6.advert.template.auth, Auth::None);
    }

    #[test]
    fn unicast_peers_are_the_destinations_and_the_allowed_sources() {
        let c = config(
            "vrrp_instance U {\n interface eth0\n virtual_router_id 9\n unicast_src_ip 10.0.0.1\n \
             unicast_peer {\n 10.0.0.2\n 10.0.0.3\n }\n check_unicast_src\n \
             virtual_ipaddress {\n 10.0.0.100\n }\n}\n",
        );
        let p = plan(&c, 0, &facts("10.0.0.1")).unwrap();
        assert!(p.advert.unicast);
        assert_eq!(p.advert.destinations.len(), 2);
        assert_eq!(
            p.xdp.unicast_peers(),
            &[
                "10.0.0.2".parse::<IpAddr>().unwrap(),
                "10.0.0.3".parse().unwrap()
            ]
        );
        let f = p.xdp.config().unwrap().flags;
        assert_ne!(f & instance_flags::UNICAST, 0);
        assert_ne!(f & instance_flags::CHECK_UNICAST_SRC, 0);
    }

    #[test]
    fn vmac_carries_adverts_and_vips() {
        let c = config(
            "vrrp_instance V {\n interface eth0\n virtual_router_id 12\n use_vmac\n \
             virtual_ipaddress {\n 192.0.2.10\n }\n}\n",
        );
        let p = plan(&c, 0, &facts("192.0.2.2")).unwrap();
        let vmac = p.vmac.as_ref().unwrap();
        assert_eq!(vmac.parent_ifindex, 7);
        assert_eq!(p.send_interface, vmac.name);
        assert_eq!(p.vips[0].interface, vmac.name);
        // The kernel still records adverts on the parent.
        assert_eq!(p.key.ifindex, 7);
        assert_eq!(p.interface, "eth0");
    }

    #[test]
    fn sync_group_membership_and_weights() {
        let c = config(
            "vrrp_script chk {\n script /bin/true\n weight -20\n}\n\
             vrrp_sync_group G {\n group {\n A\n B\n }\n}\n\
             vrrp_instance A {\n interface eth0\n virtual_router_id 1\n track_script {\n chk\n }\n \
             track_interface {\n eth1 weight -20\n }\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n\
             vrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n 192.0.2.2\n }\n}\n\
             vrrp_instance C {\n interface eth0\n virtual_router_id 3\n virtual_ipaddress {\n 192.0.2.3\n }\n}\n",
        );
        let a = plan(&c, 0, &facts("192.0.2.9")).unwrap();
        assert_eq!(a.group, Some(0));
        assert!(a.engine.sync_group);
        // keepalived ignores member weights unless sync_group_tracking_weight:
        // the config drops a weighted script and zeroes an interface's weight.
        assert_eq!(a.tracked.len(), 1);
        assert_eq!(a.tracked[0].tracker, TrackerId::Interface("eth1".into()));
        assert_eq!(a.tracked[0].weight, 0);
        let c3 = plan(&c, 2, &facts("192.0.2.9")).unwrap();
        assert_eq!(c3.group, None);
        assert_eq!(
            groups(&c),
            vec![GroupPlan {
                name: "G".into(),
                members: vec![0, 1]
            }]
        );
    }

    #[test]
    fn multicast_groups_global_and_per_instance() {
        let c = config(
            "global_defs {\n vrrp_mcast_group4 224.0.0.19\n vrrp_mcast_group6 ff02::13\n}\n\
             vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n\
             vrrp_instance B {\n interface eth0\n virtual_router_id 2\n mcast_dst_ip 224.0.0.42\n \
             virtual_ipaddress {\n 192.0.2.2\n }\n}\n\
             vrrp_instance C {\n interface eth0\n virtual_router_id 3\n virtual_ipaddress {\n fe80::3\n }\n}\n",
        );
        let group = |i: usize, src: &str| plan(&c, i, &facts(src)).unwrap().advert.destinations;
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(group(0, "192.0.2.9"), vec![ip("224.0.0.19")]);
        assert_eq!(group(1, "192.0.2.9"), vec![ip("224.0.0.42")]);
        assert_eq!(group(2, "fe80::9"), vec![ip("ff02::13")]);
    }

    #[test]
    fn excluded_vips_are_added_but_never_advertised() {
        let c = config(
            "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1\n }\n \
             virtual_ipaddress_excluded {\n 198.51.100.1\n 2001:db8::1 no_track\n }\n}\n",
        );
        let p = plan(&c, 0, &facts("192.0.2.9")).unwrap();
        assert_eq!(
            p.advert.template.addrs,
            vec!["192.0.2.1".parse::<IpAddr>().unwrap()]
        );
        let planned: Vec<(String, bool, bool)> = p
            .vips
            .iter()
            .map(|v| (v.vip.addr.to_string(), v.excluded, v.no_track))
            .collect();
        assert_eq!(
            planned,
            vec![
                ("192.0.2.1".to_string(), false, false),
                ("198.51.100.1".to_string(), true, false),
                ("2001:db8::1".to_string(), true, true),
            ]
        );
    }

    #[test]
    fn conversions() {
        assert_eq!(interval_cs(Duration::from_secs(1)), 100);
        assert_eq!(interval_cs(Duration::from_millis(40_950)), 4095);
        assert_eq!(interval_cs(Duration::from_millis(10)), 1);
        assert_eq!(v2_interval_s(Duration::from_secs(255)), 255);
        assert_eq!(v2_interval_s(Duration::from_secs(1)), 1);
        assert_eq!(scope_number("host"), Some(254));
        assert_eq!(scope_number("universe"), Some(0));
        assert_eq!(scope_number("17"), Some(17));
        assert_eq!(scope_number("galaxy"), None);
    }
}
