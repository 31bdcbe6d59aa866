//! Checks across objects once everything is read: tracker references, sync groups, VRID
//! collisions, script security, and advice about weights that cannot cause a failover.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::build::Builder;
use super::diagnostic::{Location, Severity, Verdict};
use super::model::*;

use crate::command::DEFAULT_SCRIPT_USER;

pub(crate) fn validate(config: &mut Config, b: &mut Builder<'_>) {
    script_security(config, b);
    resolve_tracker_refs(config, b);
    sync_groups(config, b);
    vrid_collisions(config, b);
    shared_vips(config, b);
    weights_that_cannot_fail_over(config, b);
}

fn script_security(config: &mut Config, b: &mut Builder<'_>) {
    if !config.runs_scripts() {
        return;
    }
    let g = &config.global;
    let default_user = match &g.script_user {
        Some(user) => {
            if b.host.user_id(&user.user).is_none() {
                let at = first_script_location(config);
                b.d.warn(
                    &at,
                    "script_user",
                    format!("user {} does not exist", user.user),
                );
            }
            Some(user.user.clone())
        }
        None if b.host.user_id(DEFAULT_SCRIPT_USER).is_some() => {
            Some(DEFAULT_SCRIPT_USER.to_string())
        }
        None => None,
    };
    let is_root = |user: &Option<String>| match user {
        Some(user) => b.host.user_id(user) == Some(0),
        // Without a default user keepalived falls back to root.
        None => true,
    };
    let security = g.enable_script_security;
    let mut runs_as_root: Option<Location> = None;

    let mut removed = Vec::new();
    for script in config.scripts.values() {
        let user = script
            .user
            .as_ref()
            .map(|u| u.user.clone())
            .or(default_user.clone());
        if user.is_none() && security {
            b.d.warn(
                &script.defined_at,
                "vrrp_script",
                format!(
                    "{}: no script_user and no user {DEFAULT_SCRIPT_USER}; script removed",
                    script.name
                ),
            );
            removed.push(script.name.clone());
            continue;
        }
        if let Some(explicit) = &script.user {
            if b.host.user_id(&explicit.user).is_none() {
                b.d.warn(
                    &script.defined_at,
                    "user",
                    format!("{}: user {} does not exist", script.name, explicit.user),
                );
            }
        }
        if is_root(&user) {
            runs_as_root.get_or_insert(script.defined_at.clone());
        }
        let program = script.script.split_whitespace().next().unwrap_or_default();
        if security && is_root(&user) {
            if let Some(reason) = b.host.script_insecure(program) {
                b.d.warn(
                    &script.defined_at,
                    "script",
                    format!("{}: {reason}; the script is disabled", script.name),
                );
            }
        }
        if program.contains('/') && !b.host.file_exists(Path::new(program)) {
            b.d.warn(
                &script.defined_at,
                "script",
                format!(
                    "{}: {program} not found; keepalived disables this script",
                    script.name
                ),
            );
        }
    }
    for name in removed {
        config.scripts.remove(&name);
    }

    let notify_owners = config
        .instances
        .iter()
        .map(|i| (&i.notify, &i.defined_at))
        .chain(
            config
                .sync_groups
                .iter()
                .map(|s| (&s.notify, &s.defined_at)),
        );
    let mut notify_locations: Vec<Location> = notify_owners
        .filter(|(n, _)| n.any())
        .map(|(_, at)| at.clone())
        .collect();
    if g.notify_fifo_script.is_some() {
        notify_locations.push(first_script_location(config));
    }
    if let Some(at) = notify_locations.first() {
        if default_user.is_none() && security {
            b.d.warn(
                at,
                "notify",
                format!(
                    "no script_user and no user {DEFAULT_SCRIPT_USER} to run notify scripts as"
                ),
            );
        } else if is_root(&default_user) {
            runs_as_root.get_or_insert(at.clone());
        }
    }

    if let (Some(at), false) = (runs_as_root, security) {
        b.d.push(
            Severity::Warning,
            Verdict::Security,
            &at,
            "enable_script_security",
            "SECURITY VIOLATION: scripts would run as root but enable_script_security is not set",
        );
    }
}

fn first_script_location(config: &Config) -> Location {
    config
        .scripts
        .values()
        .map(|s| s.defined_at.clone())
        .chain(config.instances.iter().map(|i| i.defined_at.clone()))
        .next()
        .unwrap_or_else(|| Location::new("", 0))
}

fn resolve_tracker_refs(config: &mut Config, b: &mut Builder<'_>) {
    for pending in std::mem::take(&mut b.pending_refs) {
        let Some(index) = config
            .instances
            .iter()
            .position(|i| i.name == pending.instance)
        else {
            continue;
        };
        let owner = config.instances[index].is_address_owner();
        let mut keep = |refs: Vec<(TrackRef, Location)>,
                        kind: &str,
                        own_weight: &dyn Fn(&str) -> Option<i32>| {
            let mut kept = Vec::new();
            for (track, at) in refs {
                let Some(default_weight) = own_weight(&track.name) else {
                    b.d.warn(
                        &at,
                        kind,
                        format!(
                            "{}: {} {} not found; ignored",
                            pending.instance, kind, track.name
                        ),
                    );
                    continue;
                };
                if owner && track.weight.unwrap_or(default_weight) != 0 {
                    b.owner_ignores(&pending.instance, kind, &track.name, &at);
                    continue;
                }
                kept.push(track);
            }
            kept
        };
        let scripts = keep(pending.script, "track_script", &|n| {
            config.scripts.get(n).map(|s| s.weight)
        });
        let processes = keep(pending.process, "track_process", &|n| {
            config.track_processes.get(n).map(|p| p.weight)
        });
        let files = keep(pending.file, "track_file", &|n| {
            config.track_files.get(n).map(|f| f.weight)
        });
        let instance = &mut config.instances[index];
        instance.track_script = scripts;
        instance.track_process = processes;
        instance.track_file = files;
    }
}

fn sync_groups(config: &mut Config, b: &mut Builder<'_>) {
    let mut member_of: BTreeMap<String, String> = BTreeMap::new();
    for group in &mut config.sync_groups {
        let written = b.sync_group_lines.remove(&group.name).unwrap_or_default();
        let mut members = Vec::new();
        for (member, at) in written {
            if !config.instances.iter().any(|i| i.name == member) {
                b.d.warn(
                    &at,
                    "group",
                    format!("{}: instance {member} does not exist; ignored", group.name),
                );
                continue;
            }
            if let Some(other) = member_of.get(&member) {
                b.d.warn(
                    &at,
                    "group",
                    format!(
                        "{}: instance {member} is already in sync group {other}; ignored",
                        group.name
                    ),
                );
                continue;
            }
            member_of.insert(member.clone(), group.name.clone());
            members.push(member);
        }
        if members.len() < 2 {
            b.d.warn(
                &group.defined_at,
                "vrrp_sync_group",
                format!(
                    "{} has {} instance(s); a sync group needs at least two to do anything",
                    group.name,
                    members.len()
                ),
            );
        }
        group.members = members;
    }
    for group in config.sync_groups.iter().filter(|g| !g.tracking_weight) {
        for instance in config
            .instances
            .iter()
            .filter(|i| group.members.contains(&i.name))
        {
            if tracker_weights(config, instance).any(|w| w != 0) {
                b.d.warn(
                    &group.defined_at,
                    "vrrp_sync_group",
                    format!(
                        "{}: tracker weights of {} are ignored in a sync group \
                         (a failure puts the whole group in FAULT); \
                         add sync_group_tracking_weight to keep them",
                        group.name, instance.name
                    ),
                );
            }
        }
    }
}

fn vrid_collisions(config: &Config, b: &mut Builder<'_>) {
    let mut seen: HashMap<(u8, Family, &str), &Instance> = HashMap::new();
    for instance in &config.instances {
        if let Some(first) = seen.insert(instance.reload_key(), instance) {
            b.d.error(
                &instance.defined_at,
                "virtual_router_id",
                format!(
                    "{} and {} both use VRID {} with {} on interface {}",
                    instance.name,
                    first.name,
                    instance.virtual_router_id,
                    instance.family(),
                    instance.interface
                ),
            );
        }
    }
}

fn shared_vips(config: &Config, b: &mut Builder<'_>) {
    // The same VIP under the same VRID on two interfaces is one router seen from two
    // nodes (a lab file); under two VRIDs the routers fight over it.
    let mut owner: BTreeMap<std::net::IpAddr, (&str, u8)> = BTreeMap::new();
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
