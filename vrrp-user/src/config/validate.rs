//! What keepalived checks once the whole file is read (`vrrp_complete_init`), in its
//! order: script security, the minimal instance configuration, sync groups, each instance's
//! defaults and corrections (`vrrp_complete_instance`), VRID conflicts. keepalived names no
//! file:line for these. Where it gives up (a missing interface, no VRID, a VRRPv3 instance
//! without VIPs, a VRID conflict) later findings are still reported, but no longer count
//! towards `keepalived -t`'s exit code. Then our own advice about weights and shared VIPs.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use super::build::{Builder, InstanceDraft, NotifyOwner};
use super::diagnostic::{Location, Severity, Verdict};
use super::host::ScriptFile;
use super::model::*;
use crate::command::split_command;

pub(crate) fn validate(config: &mut Config, b: &mut Builder<'_>) {
    let mut drafts = std::mem::take(&mut b.drafts);
    // A missing interface was reported where it was named (exit 5 already); keepalived
    // then says "Non-existent interface specified" and checks nothing more.
    if b.missing_interface.is_some() {
        b.d.keepalived_stopped = true;
    }
    if !drafts.is_empty() {
        script_security(config, b, &mut drafts);
    }
    let runnable = minimal_configuration(&drafts, b);
    sync_groups(config, b, &drafts);
    for draft in drafts.into_iter().filter(|d| runnable.contains(&d.name)) {
        if let Some(instance) = complete_instance(draft, config, b) {
            config.instances.push(instance);
        }
    }
    sync_group_tracking(config, b);
    vrid_conflicts(config, b);
    shared_vips(config, b);
    weights_that_cannot_fail_over(config, b);
}

/// The first word of a command as keepalived splits it.
fn program(command: &str) -> String {
    split_command(command)
        .ok()
        .and_then(|argv| argv.into_iter().next())
        .unwrap_or_else(|| {
            command
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
}

/// keepalived's `check_vrrp_script_security`: every vrrp_script and notify script is
/// looked up as the user it runs as. Missing or (with enable_script_security) unsafe
/// tracking scripts are disabled with an error; notify scripts quietly; and any script
/// that exists makes `-t` report a SECURITY VIOLATION when enable_script_security is off.
fn script_security(config: &mut Config, b: &mut Builder<'_>, drafts: &mut [InstanceDraft]) {
    let security = b.script_security;
    let mut is_script: Option<Location> = None;
    let mut disabled = Vec::new();
    for script in config.scripts.values() {
        let Some(run_as) = b.script_run_as.get(&script.name).copied() else {
            continue;
        };
        let program = program(&script.script);
        let at = &script.defined_at;
        match b.host.script_file(&program, run_as.uid, run_as.gid) {
            ScriptFile::FileOpen => {}
            ScriptFile::NotFound => {
                b.d.warn_after(
                    at,
                    "script",
                    format!(
                        "{}: {program} not found or not accessible as uid {}: keepalived disables this script",
                        script.name, run_as.uid
                    ),
                );
                disabled.push(script.name.clone());
            }
            ScriptFile::Found {
                executable,
                insecure,
                path,
            } => {
                is_script.get_or_insert(at.clone());
                if let Some(why) = insecure {
                    if security {
                        b.d.warn_after(
                            at,
                            "script",
                            format!("{}: {why}: keepalived disables this script (enable_script_security)", script.name),
                        );
                        disabled.push(script.name.clone());
                    } else {
                        b.d.lint(
                            at,
                            "script",
                            format!(
                                "{}: {why}: a non-root user could change what runs as root",
                                script.name
                            ),
                        );
                    }
                } else if !executable {
                    b.d.lint(
                        at,
                        "script",
                        format!(
                            "{}: {} is not executable by uid {} gid {}: keepalived disables this script",
                            script.name,
                            path.display(),
                            run_as.uid,
                            run_as.gid
                        ),
                    );
                    disabled.push(script.name.clone());
                }
            }
        }
    }
    for name in &disabled {
        config.scripts.remove(name);
        for draft in drafts.iter_mut() {
            draft.track_script.retain(|t| &t.track.name != name);
        }
    }

    for notify in std::mem::take(&mut b.notify_scripts) {
        let program = program(&notify.command);
        let keep = match b
            .host
            .script_file(&program, notify.run_as.uid, notify.run_as.gid)
        {
            ScriptFile::FileOpen => true,
            ScriptFile::NotFound => {
                b.d.lint(
                    &notify.at,
                    &notify.keyword,
                    format!("{program} not found: keepalived drops this notify script quietly"),
                );
                false
            }
            ScriptFile::Found {
                executable,
                insecure,
                ..
            } => {
                is_script.get_or_insert(notify.at.clone());
                match insecure {
                    Some(why) if security => {
                        b.d.lint(
                            &notify.at,
                            &notify.keyword,
                            format!("{why}: keepalived drops this notify script (enable_script_security)"),
                        );
                        false
                    }
                    _ if !executable => {
                        b.d.lint(
                            &notify.at,
                            &notify.keyword,
                            format!("{program} is not executable by uid {}: keepalived drops this notify script", notify.run_as.uid),
                        );
                        false
                    }
                    _ => true,
                }
            }
        };
        if !keep {
            match &notify.owner {
                NotifyOwner::Instance(name) => {
                    if let Some(d) = drafts.iter_mut().find(|d| &d.name == name) {
                        *d.notify.slot_mut(&notify.keyword) = None;
                    }
                }
                NotifyOwner::Group(name) => {
                    if let Some(g) = config.sync_groups.iter_mut().find(|g| &g.name == name) {
                        *g.notify.slot_mut(&notify.keyword) = None;
                    }
                }
                NotifyOwner::Fifo => config.global.notify_fifo_script = None,
            }
        }
    }

    if let (Some(at), false) = (is_script, security) {
        b.d.push_unlocated(
            Severity::Warning,
            Verdict::Security,
            &at,
            "enable_script_security",
            "SECURITY VIOLATION: scripts would run but enable_script_security is not set \
             (keepalived -t exits 6): set it in global_defs, with script_user",
        );
    }
}

/// keepalived's `chk_min_cfg`: every instance needs a VRID and a usable interface; at the
/// first that lacks one keepalived stops. Returns the instances that can run.
fn minimal_configuration(drafts: &[InstanceDraft], b: &mut Builder<'_>) -> Vec<String> {
    let mut runnable = Vec::new();
    for draft in drafts {
        if draft.vrid.is_none() {
            // A refused value was reported where it was written.
            if !draft.vrid_invalid {
                b.d.error_after(
                    &draft.defined_at,
                    "virtual_router_id",
                    format!("{}: virtual_router_id must be set", draft.name),
                );
            }
            b.d.keepalived_stopped = true;
        } else if draft.interface.is_none() {
            if !draft.interface_written {
                b.d.error_after(
                    &draft.defined_at,
                    "interface",
                    format!("{}: no interface given", draft.name),
                );
            }
            b.d.keepalived_stopped = true;
        } else if !draft.interface_missing {
            runnable.push(draft.name.clone());
        }
    }
    runnable
}

/// keepalived's `vrrp_sync_set_group`, for every group in order.
fn sync_groups(config: &mut Config, b: &mut Builder<'_>, drafts: &[InstanceDraft]) {
    let mut member_of: BTreeMap<String, String> = BTreeMap::new();
    let mut kept = Vec::new();
    for mut group in std::mem::take(&mut config.sync_groups) {
        let written = b.sync_group_lines.remove(&group.name).unwrap_or_default();
        if written.is_empty() {
            b.d.warn_after(
                &group.defined_at,
                "vrrp_sync_group",
                format!("{} has no virtual router(s); removed", group.name),
            );
            continue;
        }
        let mut members = Vec::new();
        let mut group_state_master = None;
        for (member, at) in written {
            let Some(draft) = drafts.iter().find(|d| d.name == member) else {
                b.d.warn_after(
                    &at,
                    "group",
                    format!("{}: instance {member} does not exist; ignored", group.name),
                );
                continue;
            };
            if let Some(other) = member_of.get(&member) {
                b.d.warn_after(
                    &at,
                    "group",
                    format!(
                        "{}: instance {member} is already in sync group {other}; ignored",
                        group.name
                    ),
                );
                continue;
            }
            // keepalived: a group is master at start only if every member is an owner.
            let owner_master =
                draft.state == Some(InitialState::Master) && draft.priority == Some(OWNER_PRIORITY);
            if group_state_master == Some(true) && draft.state == Some(InitialState::Backup) {
                b.d.warn_after(
                    &group.defined_at,
                    "vrrp_sync_group",
                    format!("{} has members that are address owners and members that are not; this won't work", group.name),
                );
            }
            if group_state_master != Some(false) {
                group_state_master = Some(owner_master);
            }
            member_of.insert(member.clone(), group.name.clone());
            members.push(member);
        }
        match members.len() {
            0 => {
                b.d.warn_after(
                    &group.defined_at,
                    "vrrp_sync_group",
                    format!("{}: no instance of its group exists; removed", group.name),
                );
                continue;
            }
            1 => b.d.warn_after(
                &group.defined_at,
                "vrrp_sync_group",
                format!(
                    "{} has 1 instance; a sync group needs at least two to do anything",
                    group.name
                ),
            ),
            _ => {}
        }
        group.members = members;
        kept.push(group);
    }
    config.sync_groups = kept;
}

/// keepalived's `vrrp_complete_instance`: defaults, corrections and the checks that need
/// the whole instance. `None` when xvrrpd cannot run it; keepalived's verdict stops
/// counting where keepalived itself gives up.
fn complete_instance(d: InstanceDraft, config: &Config, b: &mut Builder<'_>) -> Option<Instance> {
    let g = &config.global;
    let name = d.name.clone();
    let at = d.defined_at.clone();
    // keepalived names no line for these; ours is where the keyword was written.
    let warn = |b: &mut Builder<'_>, kw: &str, message: String| {
        b.d.warn_after(d.at(kw), kw, format!("{name}: {message}"))
    };
    let strict = d.strict_mode.unwrap_or(g.vrrp_strict);
    let family = d.family.unwrap_or(Family::V4);
    let version = if family == Family::V6 {
        if d.version == Some(Version::V2) {
            if strict {
                warn(
                    b,
                    "version",
                    "VRRPv2 cannot carry IPv6; using version 3".into(),
                );
            } else {
                b.d.lint(
                    &at,
                    "version",
                    format!("{name}: VRRPv2 has no IPv6; using version 3"),
                );
            }
        } else if d.version.is_none() && b.global_version_set && g.vrrp_version == Version::V2 {
            b.d.lint(
                &at,
                "version",
                format!("{name}: VRRPv2 has no IPv6; using version 3"),
            );
        }
        Version::V3
    } else {
        d.version.unwrap_or(g.vrrp_version)
    };
    if d.vips.is_empty() {
        if version == Version::V3 || strict {
            b.d.error_after(
                &at,
                "virtual_ipaddress",
                format!("{name}: no virtual_ipaddress; VRRPv3 and strict mode require one"),
            );
            b.d.keepalived_stopped = true;
            return None;
        }
        warn(
            b,
            "virtual_ipaddress",
            "no virtual_ipaddress; at least one is sensible".into(),
        );
    }
    let priority = d.priority.unwrap_or(match d.state {
        Some(InitialState::Master) => OWNER_PRIORITY,
        _ => DEFAULT_PRIORITY,
    });
    let owner = priority == OWNER_PRIORITY;
    let mut state = d.state.unwrap_or(if owner {
        InitialState::Master
    } else {
        InitialState::Backup
    });
    if d.state.is_some() && strict && (state == InitialState::Master) != owner {
        warn(
            b,
            "state",
            "strict mode: state MASTER must match being the address owner (priority 255)".into(),
        );
        state = if owner {
            InitialState::Master
        } else {
            InitialState::Backup
        };
    }
    let authentication = match d.auth_type {
        None => {
            if d.auth_pass.is_some() && !d.auth_type_written {
                b.d.lint(
                    &at,
                    "authentication",
                    format!("{name}: auth_pass without auth_type: no authentication"),
                );
            }
            None
        }
        Some(_) if strict => {
            warn(
                b,
                "authentication",
                "strict mode does not support authentication; ignored".into(),
            );
            None
        }
        Some(_) if version == Version::V3 => {
            warn(
                b,
                "authentication",
                "VRRPv3 has no authentication; ignored".into(),
            );
            None
        }
        Some(_) if d.auth_pass.as_deref().unwrap_or_default().is_empty() => {
            warn(
                b,
                "authentication",
                "auth_type given without auth_pass; ignored".into(),
            );
            None
        }
        Some(AuthType::Ah) if family == Family::V6 => {
            warn(
                b,
                "authentication",
                "AH authentication cannot be used with IPv6; ignored".into(),
            );
            None
        }
        Some(auth_type) => {
            if auth_type == AuthType::Ah && state == InitialState::Master && !owner {
                // It needs an advert's AH sequence number before it may take over.
                warn(
                    b,
                    "state",
                    "initial state MASTER is incompatible with AH authentication; using BACKUP"
                        .into(),
                );
                state = InitialState::Backup;
            }
            Some(Authentication {
                auth_type,
                auth_pass: d.auth_pass.clone().unwrap_or_default(),
            })
        }
    };
    let unicast = !d.peers.is_empty();
    if d.unicast_configured && !unicast {
        let first = [
            "unicast_src_ip",
            "unicast_peer",
            "check_unicast_src",
            "unicast_fault_no_peer",
            "old_unicast_checksum",
        ]
        .iter()
        .filter_map(|k| d.keyword_at.get(*k))
        .min()
        .unwrap_or(&d.defined_at);
        b.d.warn_after(
            first,
            "unicast_peer",
            format!("{name}: unicast keyword without any unicast_peer; adverts will be multicast"),
        );
    }
    if family == Family::V6 && !unicast {
        if let Some(first) = d.vips.first() {
            let link_local =
                matches!(first.address, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
            if !link_local {
                if strict {
                    warn(
                        b,
                        "virtual_ipaddress",
                        "strict mode: the first IPv6 VIP must be link-local".into(),
                    );
                } else {
                    b.d.lint(
                        &at,
                        "virtual_ipaddress",
                        format!("{name}: the first IPv6 VIP should be link-local"),
                    );
                }
            }
        }
    }
    let mut nopreempt = d.nopreempt;
    if owner && nopreempt {
        warn(
            b,
            "nopreempt",
            "priority 255 always preempts; nopreempt ignored".into(),
        );
        nopreempt = false;
    }
    let mut preempt_delay = d.preempt_delay.unwrap_or(Duration::ZERO);
    if state == InitialState::Master {
        if nopreempt {
            warn(
                b,
                "nopreempt",
                "nopreempt does not work with state MASTER (use state BACKUP on both nodes); ignored".into(),
            );
            nopreempt = false;
        }
        if !preempt_delay.is_zero() {
            warn(
                b,
                "preempt_delay",
                "preempt_delay does not work with state MASTER; ignored".into(),
            );
            preempt_delay = Duration::ZERO;
        }
    }
    if !preempt_delay.is_zero() {
        if strict {
            warn(
                b,
                "preempt_delay",
                "preempt_delay is incompatible with strict mode; ignored".into(),
            );
            preempt_delay = Duration::ZERO;
        }
        if nopreempt {
            warn(
                b,
                "preempt_delay",
                "preempt_delay has no effect with nopreempt; ignored".into(),
            );
            preempt_delay = Duration::ZERO;
        }
    }
    let mut down_timer_adverts = d.down_timer_adverts.unwrap_or(g.vrrp_down_timer_adverts);
    if down_timer_adverts != DEFAULT_DOWN_TIMER_ADVERTS && strict {
        warn(
            b,
            "down_timer_adverts",
            "down_timer_adverts is incompatible with strict mode; reset".into(),
        );
        down_timer_adverts = DEFAULT_DOWN_TIMER_ADVERTS;
    }
    let mut accept = d.accept.unwrap_or(owner || !strict);
    if accept && !owner && strict && version == Version::V2 {
        warn(
            b,
            "accept",
            "accept mode with VRRPv2 does not comply with RFC 3768; reset".into(),
        );
        accept = false;
    }
    let mut mcast_dst_ip = d.mcast_dst_ip.as_ref().map(|(a, _)| *a);
    if unicast && mcast_dst_ip.is_some() {
        warn(
            b,
            "mcast_dst_ip",
            "multicast destination given with unicast; ignored".into(),
        );
        mcast_dst_ip = None;
    }
    // keepalived: strict mode sends no extra GARPs and no advert answering a
    // lower priority; otherwise the globals (which default to the GARP master
    // settings) apply.
    let garp_master_repeat = d.garp_master_repeat.unwrap_or(g.vrrp_garp_master_repeat);
    let mut garp_lower_prio_repeat = d.garp_lower_prio_repeat.unwrap_or(if strict {
        0
    } else {
        g.vrrp_garp_lower_prio_repeat
            .unwrap_or(g.vrrp_garp_master_repeat)
    });
    let mut garp_lower_prio_delay = d.garp_lower_prio_delay.unwrap_or(if strict {
        Duration::ZERO
    } else {
        g.vrrp_garp_lower_prio_delay
            .unwrap_or(g.vrrp_garp_master_delay)
    });
    let mut lower_prio_no_advert = d
        .lower_prio_no_advert
        .unwrap_or(strict || g.vrrp_lower_prio_no_advert);
    let mut higher_prio_send_advert = d
        .higher_prio_send_advert
        .unwrap_or(!strict && g.vrrp_higher_prio_send_advert);
    if strict {
        if d.garp_lower_prio_repeat.is_some_and(|r| r > 0) {
            warn(
                b,
                "garp_lower_prio_repeat",
                "strict mode requires no repeat gratuitous ARPs; reset".into(),
            );
            garp_lower_prio_repeat = 0;
        }
        if d.garp_lower_prio_delay.is_some_and(|d| !d.is_zero()) {
            warn(
                b,
                "garp_lower_prio_delay",
                "strict mode requires no delayed gratuitous ARPs; reset".into(),
            );
            garp_lower_prio_delay = Duration::ZERO;
        }
        if d.lower_prio_no_advert == Some(false) {
            warn(
                b,
                "lower_prio_no_advert",
                "strict mode requires lower_prio_no_advert; reset".into(),
            );
            lower_prio_no_advert = true;
        }
        if d.higher_prio_send_advert == Some(true) {
            warn(
                b,
                "higher_prio_send_advert",
                "strict mode requires higher_prio_send_advert off; reset".into(),
            );
            higher_prio_send_advert = false;
        }
    }
    let advert_int = match &d.advert_int {
        Some((secs, at)) => round_advert_int(b, &name, *secs, version, at),
        None => DEFAULT_ADVERT_INT,
    };
    let mut vmac_xmit_base = d.vmac_xmit_base;
    if vmac_xmit_base && d.use_vmac.is_none() {
        warn(
            b,
            "vmac_xmit_base",
            "vmac_xmit_base is only valid with use_vmac; ignored".into(),
        );
        vmac_xmit_base = false;
    } else if vmac_xmit_base && strict {
        warn(
            b,
            "vmac_xmit_base",
            "vmac_xmit_base is incompatible with strict mode; reset".into(),
        );
        vmac_xmit_base = false;
    }
    let (interface, _) = d
        .interface
        .clone()
        .expect("checked by minimal_configuration");
    let vrid = d.vrid.expect("checked by minimal_configuration");
    let mut track_interface = Vec::new();
    for (track, track_at) in d.track_interface.clone() {
        if track.name == interface {
            b.d.warn_after(
                &track_at,
                "track_interface",
                format!(
                    "{name}: {} is the instance's own interface; track_interface ignored",
                    track.name
                ),
            );
        } else {
            track_interface.push((track, track_at));
        }
    }
    let mut track_script = d.track_script.clone();
    let mut track_file = d.track_file.clone();
    // A sync group member without sync_group_tracking_weight, or the address owner,
    // cannot use weights: keepalived drops or zeroes them.
    let sync_without_weights = config
        .sync_group_of(&name)
        .is_some_and(|group| !group.tracking_weight);
    if sync_without_weights || owner {
        let why = if sync_without_weights {
            "its sync group (add sync_group_tracking_weight to keep them)"
        } else {
            "priority 255 (address owner)"
        };
        track_interface.retain_mut(|(t, at)| {
            if t.weight == 0 {
                return true;
            }
            b.d.warn_after(
                at,
                "track_interface",
                format!(
                    "{name}: weight of tracked interface {} ignored because of {why}",
                    t.name
                ),
            );
            t.weight = 0;
            sync_without_weights
        });
        track_script.retain(|t| {
            if t.weight == 0 {
                return true;
            }
            b.d.warn_after(
                &t.at,
                "track_script",
                format!(
                    "{name}: weighted track script {} ignored because of {why}",
                    t.track.name
                ),
            );
            false
        });
        track_file.retain_mut(|t| {
            if t.weight == 0 {
                return true;
            }
            if t.weight == 1 && t.track.weight.is_none() {
                b.d.warn_after(&t.at, "track_file", format!("{name}: weight of tracked file {} ignored because of {why}; write weight 0", t.track.name));
                t.track.weight = Some(0);
                t.weight = 0;
                return true;
            }
            b.d.warn_after(&t.at, "track_file", format!("{name}: tracked file {} with weight {} ignored because of {why}", t.track.name, t.weight));
            false
        });
    }
    let use_vmac = d
        .use_vmac
        .clone()
        .map(|named| named.unwrap_or_else(|| format!("vrrp.{vrid}")));
    let mut promote_secondaries = d.promote_secondaries;
    if promote_secondaries && use_vmac.is_some() {
        warn(
            b,
            "promote_secondaries",
            "promote_secondaries is automatically set for vmacs; ignoring".into(),
        );
        promote_secondaries = false;
    }
    let garp_master_delay = d.garp_master_delay.unwrap_or(g.vrrp_garp_master_delay);
    Some(Instance {
        name,
        defined_at: d.defined_at,
        state,
        interface,
        virtual_router_id: vrid,
        priority,
        advert_int,
        version,
        authentication,
        virtual_ipaddress: d.vips,
        virtual_ipaddress_excluded: d.excluded_vips,
        virtual_routes: d.routes,
        virtual_rules: d.rules,
        unicast_src_ip: d.src_ip,
        unicast_peer: d.peers,
        nopreempt,
        preempt_delay,
        garp_master_delay,
        garp_master_repeat,
        garp_lower_prio_delay,
        garp_lower_prio_repeat,
        lower_prio_no_advert,
        higher_prio_send_advert,
        down_timer_adverts,
        mcast_dst_ip,
        garp_master_refresh: d.garp_master_refresh.unwrap_or(g.vrrp_garp_master_refresh),
        garp_master_refresh_repeat: d
            .garp_master_refresh_repeat
            .unwrap_or(g.vrrp_garp_master_refresh_repeat),
        track_interface: track_interface.into_iter().map(|(t, _)| t).collect(),
        track_script: track_script.into_iter().map(|t| t.track).collect(),
        track_process: d.track_process.into_iter().map(|t| t.track).collect(),
        track_file: track_file.into_iter().map(|t| t.track).collect(),
        notify: d.notify,
        use_vmac,
        vmac_xmit_base,
        dont_track_primary: d.dont_track_primary,
        accept,
        check_unicast_src: d.check_unicast_src || g.vrrp_check_unicast_src,
        v3_checksum_as_v2: d.v3_checksum_as_v2,
        strict_mode: strict,
        promote_secondaries,
    })
}

/// keepalived's `sync_group_tracking_init`: what a sync group tracks, every member
/// tracks with the group's weight (the plan merges it into each member's trackers). A
/// group with an address owner cannot use weights: they become 0.
fn sync_group_tracking(config: &mut Config, b: &mut Builder<'_>) {
    let instances = &config.instances;
    for group in &mut config.sync_groups {
        let members: Vec<&Instance> = group
            .members
            .iter()
            .filter_map(|m| instances.iter().find(|i| &i.name == m))
            .collect();
        let has_owner = members.iter().any(|m| m.is_address_owner());
        let at = group.defined_at.clone();
        let name = group.name.clone();
        let clear = |b: &mut Builder<'_>, what: &str, tracked: &str, weight: &mut i32| {
            if has_owner && *weight != 0 {
                b.d.warn_after(
                    &at,
                    what,
                    format!(
                        "{name}: weighted {} {tracked} with a member of priority 255; weight set to 0",
                        what.replace('_', " ")
                    ),
                );
                *weight = 0;
            }
        };
        for t in &mut group.track_interface {
            clear(b, "track_interface", &t.name.clone(), &mut t.weight);
        }
        for (kind, list) in [
            ("track_script", &mut group.track_script),
            ("track_process", &mut group.track_process),
            ("track_file", &mut group.track_file),
        ] {
            for t in list.iter_mut() {
                let own = match kind {
                    "track_script" => config.scripts.get(&t.name).map(|s| s.weight),
                    "track_process" => config.track_processes.get(&t.name).map(|p| p.weight),
                    _ => config.track_files.get(&t.name).map(|f| f.weight),
                };
                let mut weight = t.weight.or(own).unwrap_or(0);
                let before = weight;
                clear(b, kind, &t.name.clone(), &mut weight);
                if weight != before {
                    t.weight = Some(0);
                }
            }
        }
        for member in &members {
            for t in &group.track_interface {
                if member
                    .track_interface
                    .iter()
                    .any(|m| m.name == t.name && m.weight != 0)
                    && t.weight != 0
                {
                    b.d.warn_after(
                        &at,
                        "track_interface",
                        format!(
                            "({}) track_interface {} is configured on VRRP instance and sync group. Remove vrrp instance or sync group config",
                            member.name, t.name
                        ),
                    );
                }
            }
            let both = [
                ("track_script", &group.track_script, &member.track_script),
                ("track_process", &group.track_process, &member.track_process),
                ("track_file", &group.track_file, &member.track_file),
            ];
            for (kind, in_group, in_member) in both {
                for t in in_group
                    .iter()
                    .filter(|t| in_member.iter().any(|m| m.name == t.name))
                {
                    b.d.lint(
                        &at,
                        kind,
                        format!(
                            "({}) {} {} is configured on VRRP instance and sync group: the group's weight is used (remove the instance's)",
                            member.name,
                            kind.replace('_', " "),
                            t.name
                        ),
                    );
                }
            }
        }
    }
}

/// keepalived rounds VRRPv2 intervals to whole seconds and VRRPv3 ones to 10 ms.
fn round_advert_int(
    b: &mut Builder<'_>,
    name: &str,
    secs: f64,
    version: Version,
    at: &Location,
) -> Duration {
    match version {
        Version::V2 => {
            let rounded = secs.round().max(1.0);
            if rounded != secs {
                b.d.warn_after(
                    at,
                    "advert_int",
                    format!(
                        "{name}: VRRPv2 advert_int {secs}s must be whole seconds; using {rounded}s"
                    ),
                );
            }
            Duration::from_secs_f64(rounded)
        }
        Version::V3 => {
            let max = MAX_V3_ADVERT_INT.as_secs_f64();
            if secs > max {
                b.d.warn_after(
                    at,
                    "advert_int",
                    format!("{name}: VRRPv3 advert_int {secs}s above {max}s; using {max}s"),
                );
                return MAX_V3_ADVERT_INT;
            }
            let centis = (secs * 100.0).round();
            if (centis / 100.0 - secs).abs() > 1e-9 {
                b.d.warn_after(
                    at,
                    "advert_int",
                    format!(
                        "{name}: VRRPv3 advert_int {secs}s is not a multiple of 10 ms; rounding"
                    ),
                );
            }
            Duration::from_millis(centis.max(1.0) as u64 * 10)
        }
    }
}

/// keepalived's `check_vrid_conflicts`: two multicast instances with the same VRID and
/// family on one interface (or two unicast ones from the same address to a shared peer)
/// are one router twice; keepalived stops there.
fn vrid_collisions_key(i: &Instance) -> (u8, Family, &str, bool) {
    (
        i.virtual_router_id,
        i.family(),
        i.interface.as_str(),
        i.is_unicast(),
    )
}

fn vrid_conflicts(config: &Config, b: &mut Builder<'_>) {
    let mut seen: HashMap<(u8, Family, &str, bool), &Instance> = HashMap::new();
    for instance in &config.instances {
        let Some(first) = seen.get(&vrid_collisions_key(instance)) else {
            seen.insert(vrid_collisions_key(instance), instance);
            continue;
        };
        let keepalived_sees_it = !instance.is_unicast()
            || (instance.unicast_src_ip.is_some()
                && instance.unicast_src_ip == first.unicast_src_ip
                && instance
                    .unicast_peer
                    .iter()
                    .any(|p| first.unicast_peer.contains(p)));
        let message = format!(
            "{} and {} both use VRID {} with {} on interface {}",
            first.name,
            instance.name,
            instance.virtual_router_id,
            instance.family(),
            instance.interface
        );
        if keepalived_sees_it {
            b.d.error_after(&instance.defined_at, "virtual_router_id", message);
            b.d.keepalived_stopped = true;
        } else {
            // keepalived tells unicast instances apart by their peers; xvrrpd's kernel
            // records are keyed by interface, family and VRID.
            b.d.push_unlocated(
                Severity::Error,
                Verdict::Silent,
                &instance.defined_at,
                "virtual_router_id",
                format!("{message}: xvrrpd cannot run two instances of one VRID on an interface"),
            );
        }
    }
}

fn shared_vips(config: &Config, b: &mut Builder<'_>) {
    // The same VIP under the same VRID on two interfaces is one router seen from two
    // nodes (a lab file); under two VRIDs the routers fight over it.
    let mut owner: BTreeMap<IpAddr, (&str, u8)> = BTreeMap::new();
    for instance in &config.instances {
        for vip in &instance.virtual_ipaddress {
            let this = (instance.name.as_str(), instance.virtual_router_id);
            if let Some((first, vrid)) = owner.insert(vip.address, this) {
                if vrid != instance.virtual_router_id {
                    b.d.lint(
                        &instance.defined_at,
                        "virtual_ipaddress",
                        format!(
                            "{} is also a VIP of {first}; whichever is master last wins it",
                            vip.address
                        ),
                    );
                }
            }
        }
    }
}

/// When both routers of a VRID are in this file (same VRID and VIPs on two interfaces: a lab
/// or namespace setup), a tracker can only move mastership if its weight bridges the gap.
fn weights_that_cannot_fail_over(config: &Config, b: &mut Builder<'_>) {
    let mut by_router: HashMap<(u8, Family), Vec<&Instance>> = HashMap::new();
    for instance in &config.instances {
        by_router
            .entry((instance.virtual_router_id, instance.family()))
            .or_default()
            .push(instance);
    }
    for peers in by_router.values() {
        let [a, b_inst] = peers.as_slice() else {
            continue;
        };
        let addresses = |i: &Instance| {
            i.virtual_ipaddress
                .iter()
                .map(|v| v.address)
                .collect::<Vec<_>>()
        };
        if addresses(a) != addresses(b_inst) {
            continue;
        }
        let (high, low) = if a.priority >= b_inst.priority {
            (a, b_inst)
        } else {
            (b_inst, a)
        };
        if high.is_address_owner() || !high.has_trackers() {
            continue;
        }
        let losable: i64 = tracker_weights(config, high)
            .map(|w| i64::from(w.unsigned_abs()))
            .sum();
        let gap = i64::from(high.priority) - i64::from(low.priority);
        if losable <= gap {
            b.d.lint(
                &high.defined_at,
                "weight",
                format!(
                    "{}: all its track weights together ({losable}) cannot bring priority {} below {}'s {}: no failover on tracker failure",
                    high.name, high.priority, low.name, low.priority
                ),
            );
        }
    }
}

/// The weight each tracker of `instance` applies (0 = FAULT on failure, not counted).
fn tracker_weights<'c>(
    config: &'c Config,
    instance: &'c Instance,
) -> impl Iterator<Item = i32> + 'c {
    let interfaces = instance.track_interface.iter().map(|t| t.weight);
    let scripts = instance.track_script.iter().map(|t| {
        t.weight
            .or_else(|| config.scripts.get(&t.name).map(|s| s.weight))
            .unwrap_or(0)
    });
    let processes = instance.track_process.iter().map(|t| {
        t.weight
            .or_else(|| config.track_processes.get(&t.name).map(|p| p.weight))
            .unwrap_or(0)
    });
    let files = instance.track_file.iter().map(|t| {
        t.weight
            .or_else(|| config.track_files.get(&t.name).map(|f| f.weight))
            .unwrap_or(0)
    });
    interfaces.chain(scripts).chain(processes).chain(files)
}
