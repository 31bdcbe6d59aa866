//! Fills in the [`DaemonReport`] from the plans, the advert thread's
//! snapshot and the kernel's records and counters.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vrrp_common::{PeerKey, PeerRecord, COUNTER_NAMES};

use super::{
    control::InstanceView,
    plan::{GroupPlan, InstancePlan, PlannedVip},
    rt::RtSnapshot,
};
use crate::{
    bpf::Maps,
    engine::{Reason, State},
    notify::NotifyState,
    packet::{Family, Version},
    report::*,
    time::Mono,
    track::{Status, TrackerId},
};

/// What the report needs that does not change while the daemon runs.
pub struct Fixed<'a> {
    pub config_file: &'a str,
    pub router_id: Option<&'a str>,
    pub started: SystemTime,
    pub rt_priority: u8,
    pub attachments: &'a [AttachmentReport],
    pub reloads: &'a ReloadReport,
}

/// keepalived's word for a state.
pub fn state_word(state: State) -> &'static str {
    match state {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
        State::Stopped => "STOP",
    }
}

pub fn notify_word(state: NotifyState) -> &'static str {
    state.as_str()
}

pub fn reason_words(reason: Reason) -> &'static str {
    match reason {
        Reason::Startup => "startup",
        Reason::AddressOwner => "address owner",
        Reason::MasterDownTimer => "master down timer",
        Reason::PriorityZeroReceived => "priority 0 advert received",
        Reason::HigherPriorityAdvert => "higher priority advert",
        Reason::EqualPriorityHigherAddress => "equal priority, higher address",
        Reason::Fault => "fault",
        Reason::FaultCleared => "fault cleared",
        Reason::SyncGroup => "sync group",
        Reason::Resumed => "resumed after an in-place restart",
        Reason::Deleted => "a VIP, route or rule was deleted",
        Reason::Shutdown => "shutdown",
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn tracker(id: &TrackerId) -> (&'static str, &str) {
    match id {
        TrackerId::Script(n) => ("script", n),
        TrackerId::Interface(n) => ("interface", n),
        TrackerId::Process(n) => ("process", n),
        TrackerId::File(n) => ("file", n),
    }
}

fn status_words(status: Option<Status>) -> String {
    match status {
        None => "unknown".into(),
        Some(Status::Up(true)) => "up".into(),
        Some(Status::Up(false)) => "down".into(),
        Some(Status::Value(v)) => v.to_string(),
    }
}

/// Whether a tracker is in its bad state: down (or up, with `reverse`),
/// or a file value that lowers the priority or faults.
fn failing(weight: i32, reverse: bool, status: Option<Status>) -> bool {
    match status {
        None => false,
        Some(Status::Up(up)) => up == reverse,
        Some(Status::Value(v)) => {
            let sign: i64 = if reverse { -1 } else { 1 };
            if weight == 0 {
                (v != 0) != reverse
            } else {
                v.saturating_mul(i64::from(weight)).saturating_mul(sign) < 0
            }
        }
    }
}

/// `ip`'s word for an address scope (RT_SCOPE_*); IPv6 scopes follow the address.
pub fn scope_words(scope: Option<u8>, addr: std::net::IpAddr) -> String {
    let scope = scope.unwrap_or(match addr {
        std::net::IpAddr::V6(a) if a.is_loopback() => 254,
        std::net::IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => 253,
        _ => 0,
    });
    match scope {
        0 => "global".into(),
        200 => "site".into(),
        253 => "link".into(),
        254 => "host".into(),
        255 => "nowhere".into(),
        n => n.to_string(),
    }
}

fn vip(v: &PlannedVip) -> VipReport {
    VipReport {
        address: v.vip.to_string(),
        interface: v.interface.clone(),
        scope: scope_words(v.vip.scope, v.vip.addr),
        label: v.vip.label.clone(),
    }
}

#[allow(clippy::too_many_arguments)]
fn instance(
    plan: &InstancePlan,
    view: &InstanceView,
    groups: &[GroupPlan],
    records: &[(PeerKey, PeerRecord)],
    now: Mono,
    wall_now: SystemTime,
) -> InstanceReport {
    let mine: Vec<&(PeerKey, PeerRecord)> = records
        .iter()
        .filter(|(k, _)| k.instance() == plan.key)
        .collect();
    let master = match view.state {
        State::Backup | State::Fault => view
            .master_addr
            .filter(|a| *a != plan.advert.source)
            .and_then(|a| mine.iter().find(|(k, _)| k.source() == a))
            .map(|(k, r)| MasterReport {
                address: k.source().to_string(),
                priority: r.priority,
                age_s: now.saturating_since(Mono(r.last_ns)).as_secs_f64(),
                advert_interval_s: f64::from(r.interval_cs) / 100.0,
            }),
        _ => None,
    };
    let mut fault_reasons: Vec<String> = view.faulted_by.iter().map(|t| t.to_string()).collect();
    if view.link_down {
        fault_reasons.push(format!("interface {} down", plan.interface));
    }
    let last_transition = view.stats.last_transition.map(|t| {
        let ago = now.saturating_since(t.at);
        TransitionReport {
            from: state_word(t.from).into(),
            to: state_word(t.to).into(),
            reason: reason_words(t.reason).into(),
            at_unix: unix(wall_now.checked_sub(ago).unwrap_or(UNIX_EPOCH)),
            ago_s: ago.as_secs_f64(),
        }
    });
    InstanceReport {
        name: plan.name.clone(),
        interface: plan.interface.clone(),
        vrid: plan.key.vrid,
        family: match plan.family {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
        .into(),
        version: match plan.engine.version {
            Version::V2 => 2,
            Version::V3 => 3,
        },
        state: state_word(view.state).into(),
        base_priority: view.base_priority,
        effective_priority: view.effective_priority,
        advert_interval_s: plan.engine.advert_interval.as_secs_f64(),
        unicast: plan.advert.unicast,
        source_address: plan.advert.source.to_string(),
        vips: plan.vips.iter().map(vip).collect(),
        master,
        trackers: view
            .trackers
            .iter()
            .map(|(w, status)| {
                let (kind, name) = tracker(&w.tracker);
                TrackerReport {
                    kind: kind.into(),
                    name: name.into(),
                    weight: w.weight,
                    reverse: w.reverse,
                    status: status_words(*status),
                    failing: failing(w.weight, w.reverse, *status),
                }
            })
            .collect(),
        fault_reasons,
        sync_group: view
            .group
            .and_then(|g| groups.get(g))
            .map(|g| g.name.clone()),
        transitions: view.stats.transitions,
        last_transition,
        become_master: view.stats.become_master,
        release_master: view.stats.release_master,
        adverts_sent: view.stats.adverts_sent,
        priority_zero_sent: view.stats.priority_zero_sent,
        adverts_received: mine.iter().map(|(_, r)| r.adverts).sum(),
        priority_zero_received: view.stats.priority_zero_received,
    }
}

/// Where the recorder runs on each interface the instances use, read from
/// the kernel now (places change as other programs come and go); what was
/// noted at attach time where the kernel no longer shows it.
fn attachments(
    noted: &[AttachmentReport],
    plans: &[InstancePlan],
    maps: Option<&Maps>,
) -> Vec<AttachmentReport> {
    let map_ids: Vec<u32> = maps
        .and_then(|m| m.peers_map_id().ok())
        .into_iter()
        .collect();
    let mut out: Vec<AttachmentReport> = Vec::new();
    for p in plans {
        if out.iter().any(|a| a.interface == p.interface) {
            continue;
        }
        let live = if map_ids.is_empty() {
            None
        } else {
            crate::bpf::attach::find(&p.interface, p.key.ifindex, &map_ids)
                .first()
                .map(AttachmentReport::from)
        };
        if let Some(a) = live.or_else(|| noted.iter().find(|a| a.interface == p.interface).cloned())
        {
            out.push(a);
        }
    }
    out
}

/// Builds the report. `maps` may be `None` if the pins could not be
/// opened; kernel figures are then empty.
pub fn build(
    fixed: &Fixed<'_>,
    plans: &[InstancePlan],
    groups: &[GroupPlan],
    snapshot: &RtSnapshot,
    maps: Option<&Maps>,
) -> DaemonReport {
    let now = Mono::now();
    let wall_now = SystemTime::now();
    let records = maps.and_then(|m| m.all_peers().ok()).unwrap_or_default();
    let counters = maps
        .and_then(|m| m.counters().ok())
        .map(|c| {
            COUNTER_NAMES
                .iter()
                .zip(c.as_array())
                .map(|(n, v)| (n.to_string(), v))
                .collect()
        })
        .unwrap_or_default();
    DaemonReport {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        config_file: fixed.config_file.into(),
        router_id: fixed.router_id.map(str::to_owned),
        started_unix: unix(fixed.started),
        uptime_s: wall_now
            .duration_since(fixed.started)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64(),
        rt_priority: fixed.rt_priority,
        instances: plans
            .iter()
            .zip(&snapshot.instances)
            .map(|(p, v)| instance(p, v, groups, &records, now, wall_now))
            .collect(),
        sync_groups: groups
            .iter()
            .zip(&snapshot.groups)
            .map(|(g, state)| GroupReport {
                name: g.name.clone(),
                members: g.members.iter().map(|&m| plans[m].name.clone()).collect(),
                state: state.map(|s| notify_word(s).to_owned()),
            })
            .collect(),
        kernel: KernelReport {
            attachments: attachments(fixed.attachments, plans, maps),
            counters,
            blind: BlindReport {
                episodes: snapshot.blind.episodes_total,
                missed_adverts: snapshot.blind.missed_total,
                instances: plans
                    .iter()
                    .filter(|p| snapshot.blind.open.contains_key(&p.key))
                    .map(|p| p.name.clone())
                    .collect(),
            },
        },
        reloads: fixed.reloads.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracker_fails_when_it_works_against_the_instance() {
        // Up/down: down is bad whatever the weight does with it.
        assert!(failing(-10, false, Some(Status::Up(false))));
        assert!(failing(0, false, Some(Status::Up(false))));
        assert!(failing(10, false, Some(Status::Up(false))));
        assert!(!failing(-10, false, Some(Status::Up(true))));
        assert!(failing(-10, true, Some(Status::Up(true))));
        // Files: a negative product lowers, weight 0 faults on any value.
        assert!(failing(1, false, Some(Status::Value(-5))));
        assert!(!failing(1, false, Some(Status::Value(5))));
        assert!(failing(0, false, Some(Status::Value(3))));
        assert!(!failing(0, false, Some(Status::Value(0))));
        assert!(!failing(-10, false, None));
    }

    #[test]
    fn scopes_are_named_as_ip_names_them() {
        let v4: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(scope_words(None, v4), "global");
        assert_eq!(scope_words(Some(254), v4), "host");
        assert_eq!(scope_words(Some(253), v4), "link");
        assert_eq!(scope_words(None, "fe80::1".parse().unwrap()), "link");
        assert_eq!(scope_words(None, "2001:db8::1".parse().unwrap()), "global");
    }
}
