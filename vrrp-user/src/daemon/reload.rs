//! What a reload changes: the running configuration against the one just
//! read (pure; instances are matched by name, as keepalived does).
//!
//! Each instance of the new file is one of:
//! - **kept**: same configuration, or changes that apply in place
//!   (priority, VIPs, trackers, notify scripts, preemption, GARP settings,
//!   advert interval): its state, timers and VIPs carry on;
//! - **replaced**: what it *is* changed (interface, VRID, family, version,
//!   addresses, authentication, vmac): the old one stops as at shutdown
//!   (priority 0, VIPs released) and a new one starts;
//! - **added**: new name.
//!
//! Instances only in the running configuration are removed: priority 0,
//! VIPs released.

use std::collections::HashMap;

use super::control::InstanceId;
use crate::config::{self, Instance};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing that matters differs.
    Unchanged,
    /// Applied in place; the instance keeps its state.
    Update,
    /// Stopped and started again.
    Replace,
    Add,
}

/// The reload, instance by instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadDiff {
    /// One entry per instance of the new file, in its order.
    pub instances: Vec<(String, Change)>,
    /// Only in the running configuration.
    pub removed: Vec<String>,
    /// `global_defs`, a tracker definition or a sync group differs.
    pub shared_changed: bool,
}

impl ReloadDiff {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
            && !self.shared_changed
            && self.instances.iter().all(|(_, c)| *c == Change::Unchanged)
    }

    pub fn names(&self, change: Change) -> Vec<&str> {
        self.instances
            .iter()
            .filter(|(_, c)| *c == change)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// Where an instance is written in the file does not change what it does.
fn same_instance(a: &Instance, b: &Instance) -> bool {
    let mut a = a.clone();
    a.defined_at = b.defined_at.clone();
    a == *b
}

/// What an instance *is*: changing any of it restarts the instance.
fn same_identity(
    a: &Instance,
    b: &Instance,
    ga: &config::GlobalDefs,
    gb: &config::GlobalDefs,
) -> bool {
    a.interface == b.interface
        && a.virtual_router_id == b.virtual_router_id
        && a.family() == b.family()
        && a.version == b.version
        && a.unicast_src_ip == b.unicast_src_ip
        && a.unicast_peer == b.unicast_peer
        && a.use_vmac == b.use_vmac
        && a.vmac_xmit_base == b.vmac_xmit_base
        && a.authentication == b.authentication
        && a.v3_checksum_as_v2 == b.v3_checksum_as_v2
        && a.check_unicast_src == b.check_unicast_src
        && a.multicast_group(ga) == b.multicast_group(gb)
        && ga.vrrp_check_unicast_src == gb.vrrp_check_unicast_src
}

pub fn diff(running: &config::Config, new: &config::Config) -> ReloadDiff {
    // Tracker and group blocks are compared without the instances.
    let shared = |c: &config::Config| {
        let mut c = c.clone();
        c.instances.clear();
        serde_json::to_value(&c).ok()
    };
    let shared_changed = shared(running) != shared(new);
    let instances = new
        .instances
        .iter()
        .map(|n| {
            let change = match running.instance(&n.name) {
                None => Change::Add,
                Some(r) if !same_identity(r, n, &running.global, &new.global) => Change::Replace,
                // Shared blocks feed the plan (tracker weights, GARP pacing).
                Some(r) if same_instance(r, n) && !shared_changed => Change::Unchanged,
                Some(_) => Change::Update,
            };
            (n.name.clone(), change)
        })
        .collect();
    let removed = running
        .instances
        .iter()
        .filter(|r| new.instance(&r.name).is_none())
        .map(|r| r.name.clone())
        .collect();
    ReloadDiff {
        instances,
        removed,
        shared_changed,
    }
}

/// The slots of a reload: which running instances stop, and the slot of
/// each instance of the new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slots {
    /// Running instances that stop (removed or replaced).
    pub retired: Vec<InstanceId>,
    /// Per instance of the new file: its slot, and whether it keeps the
    /// running instance's state (kept) or starts afresh.
    pub assigned: Vec<(InstanceId, bool)>,
    /// The next slot never used.
    pub next: InstanceId,
}

/// Assigns slots: kept instances keep theirs; added and replaced ones get
/// new ones from `next`. `running` maps names to the slots they run in.
pub fn assign(diff: &ReloadDiff, running: &HashMap<String, InstanceId>, next: InstanceId) -> Slots {
    let mut next = next;
    let mut retired: Vec<InstanceId> = diff
        .removed
        .iter()
        .filter_map(|n| running.get(n).copied())
        .collect();
    let assigned = diff
        .instances
        .iter()
        .map(|(name, change)| match (change, running.get(name)) {
            (Change::Unchanged | Change::Update, Some(&slot)) => (slot, true),
            (Change::Replace, Some(&slot)) => {
                retired.push(slot);
                next += 1;
                (next - 1, false)
            }
            _ => {
                next += 1;
                (next - 1, false)
            }
        })
        .collect();
    retired.sort_unstable();
    Slots {
        retired,
        assigned,
        next,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn load(text: &str) -> config::Config {
        config::load_str(text, Path::new("/etc/keepalived/keepalived.conf"))
            .unwrap()
            .config
    }

    fn inst(name: &str, vrid: u8, priority: u8) -> String {
        format!(
            "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n priority {priority}\n \
             virtual_ipaddress {{\n 192.0.2.{vrid}\n }}\n}}\n"
        )
    }

    #[test]
    fn instances_are_matched_by_name_and_classified() {
        let running = load(&format!(
            "{}{}{}{}",
            inst("A", 1, 100),
            inst("B", 2, 100),
            inst("C", 3, 100),
            inst("E", 5, 100)
        ));
        // B moves in the file; C changes priority; E changes VRID; A goes; D comes.
        let new = load(&format!(
            "\n\n{}{}{}{}",
            inst("C", 3, 150),
            inst("B", 2, 100),
            inst("D", 4, 100),
            inst("E", 6, 100)
        ));
        let d = diff(&running, &new);
        assert_eq!(
            d.instances,
            vec![
                ("C".to_string(), Change::Update),
                ("B".to_string(), Change::Unchanged),
                ("D".to_string(), Change::Add),
                ("E".to_string(), Change::Replace),
            ]
        );
        assert_eq!(d.removed, vec!["A"]);
        assert!(!d.shared_changed);
        assert!(!d.is_empty());

        let running_slots: HashMap<String, InstanceId> = [("A", 0), ("B", 1), ("C", 2), ("E", 3)]
            .into_iter()
            .map(|(n, s)| (n.to_string(), s))
            .collect();
        let slots = assign(&d, &running_slots, 4);
        assert_eq!(slots.retired, vec![0, 3]);
        assert_eq!(
            slots.assigned,
            vec![(2, true), (1, true), (4, false), (5, false)]
        );
        assert_eq!(slots.next, 6);
    }

    #[test]
    fn the_same_file_is_no_change() {
        let text = format!("global_defs {{\n router_id r1\n}}\n{}", inst("A", 1, 100));
        let d = diff(&load(&text), &load(&text));
        assert!(d.is_empty());
        assert_eq!(d.names(Change::Unchanged), vec!["A"]);
    }

    #[test]
    fn shared_blocks_update_every_kept_instance() {
        let a = load(&format!(
            "global_defs {{\n vrrp_garp_interval 0.1\n}}\n{}",
            inst("A", 1, 100)
        ));
        let b = load(&format!(
            "global_defs {{\n vrrp_garp_interval 0.2\n}}\n{}",
            inst("A", 1, 100)
        ));
        let d = diff(&a, &b);
        assert!(d.shared_changed);
        assert_eq!(d.names(Change::Update), vec!["A"]);
        // A new multicast group is a new identity.
        let c = load(&format!(
            "global_defs {{\n vrrp_mcast_group4 224.0.0.19\n}}\n{}",
            inst("A", 1, 100)
        ));
        assert_eq!(diff(&a, &c).names(Change::Replace), vec!["A"]);
    }
}
