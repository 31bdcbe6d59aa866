//! Effective priority and FAULT from the trackers' states (pure).
//!
//! VRRP-BEHAVIOUR.md: effective priority = base + Σ weights, clamped to
//! 1..254; base 255 ignores weights. A positive weight is added while the
//! tracked thing is up, a negative one while it is down; `reverse` flips
//! that. Weight 0: the failure means FAULT. A tracked file adds
//! value × weight (negated by `reverse`); a product ≤ −254 means FAULT, and
//! with weight 0 any non-zero value does.

use std::collections::HashMap;

use super::{Status, TrackerId};
use crate::config::{self, OWNER_PRIORITY};

/// A product at or below this puts the instance in FAULT (keepalived's rule
/// for `track_file`: "less than -253").
pub const FILE_FAULT_AT: i64 = -254;
/// The most a single tracker can move the priority.
const MAX_WEIGHT: i64 = 253;

/// One tracked thing as an instance sees it: the reference's weight when
/// given, else the tracker's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weighted {
    pub tracker: TrackerId,
    pub weight: i32,
    pub reverse: bool,
}

/// What the trackers do to one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    pub priority: u8,
    /// Trackers that demand FAULT right now (empty: no fault).
    pub faulted_by: Vec<TrackerId>,
}

impl Effect {
    pub fn fault(&self) -> bool {
        !self.faulted_by.is_empty()
    }
}

/// Folds the current statuses into an effective priority and fault.
/// A tracker without a status yet counts as up (value 0).
pub fn effect(base: u8, items: &[Weighted], statuses: &HashMap<TrackerId, Status>) -> Effect {
    let mut sum: i64 = 0;
    let mut faulted_by = Vec::new();
    for item in items {
        let status = statuses
            .get(&item.tracker)
            .copied()
            .unwrap_or(Status::Up(true));
        let weight = i64::from(item.weight);
        match status {
            Status::Up(up) => {
                // `good` is "up", or "down" with reverse.
                let good = up != item.reverse;
                if weight == 0 {
                    if !good {
                        faulted_by.push(item.tracker.clone());
                    }
                } else if (weight > 0) == good {
                    sum += weight;
                }
            }
            Status::Value(value) => {
                if weight == 0 {
                    // Weight 0: zero is OK, anything else a failure
                    // (or the other way round with reverse).
                    if (value != 0) != item.reverse {
                        faulted_by.push(item.tracker.clone());
                    }
                    continue;
                }
                let sign = if item.reverse { -1 } else { 1 };
                let product = value.saturating_mul(weight).saturating_mul(sign);
                if product <= FILE_FAULT_AT {
                    faulted_by.push(item.tracker.clone());
                } else {
                    sum += product.clamp(-MAX_WEIGHT, MAX_WEIGHT);
                }
            }
        }
    }
    let priority = if base == OWNER_PRIORITY {
        OWNER_PRIORITY
    } else {
        (i64::from(base) + sum).clamp(1, i64::from(OWNER_PRIORITY) - 1) as u8
    };
    Effect {
        priority,
        faulted_by,
    }
}

/// The tracked things of one instance, weights resolved. In a sync group
/// without `sync_group_tracking_weight` every weight counts as 0, as in
/// keepalived (a member's failure faults the whole group rather than
/// shifting one member's priority, which would split the group).
pub fn instance_items(
    instance: &config::Instance,
    config: &config::Config,
    ignore_weights: bool,
) -> Vec<Weighted> {
    let weight = |w: i32| if ignore_weights { 0 } else { w };
    let mut items: Vec<Weighted> = instance
        .track_interface
        .iter()
        .map(|t| Weighted {
            tracker: TrackerId::Interface(t.name.clone()),
            weight: weight(t.weight),
            reverse: t.reverse,
        })
        .collect();
    // A reference's own weight replaces the tracker's, with its own reverse.
    let mut push_ref =
        |r: &config::TrackRef, id: fn(String) -> TrackerId, own: Option<(i32, bool)>| {
            if let Some((own_weight, own_reverse)) = own {
                items.push(Weighted {
                    tracker: id(r.name.clone()),
                    weight: weight(r.weight.unwrap_or(own_weight)),
                    reverse: if r.weight.is_some() {
                        r.reverse
                    } else {
                        own_reverse || r.reverse
                    },
                });
            }
        };
    for r in &instance.track_script {
        let own = config.scripts.get(&r.name).map(|s| (s.weight, s.reverse));
        push_ref(r, TrackerId::Script, own);
    }
    for r in &instance.track_process {
        let own = config
            .track_processes
            .get(&r.name)
            .map(|p| (p.weight, p.reverse));
        push_ref(r, TrackerId::Process, own);
    }
    for r in &instance.track_file {
        let own = config
            .track_files
            .get(&r.name)
            .map(|f| (f.weight, f.reverse));
        push_ref(r, TrackerId::File, own);
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(name: &str, weight: i32, reverse: bool) -> Weighted {
        Weighted {
            tracker: TrackerId::Script(name.into()),
            weight,
            reverse,
        }
    }

    fn file(name: &str, weight: i32, reverse: bool) -> Weighted {
        Weighted {
            tracker: TrackerId::File(name.into()),
            weight,
            reverse,
        }
    }

    fn statuses(list: &[(&Weighted, Status)]) -> HashMap<TrackerId, Status> {
        list.iter().map(|(w, s)| (w.tracker.clone(), *s)).collect()
    }

    #[test]
    fn weights_follow_up_and_down_and_reverse() {
        // (weight, reverse, up) -> priority from base 100
        let table = [
            (10, false, true, 110),
            (10, false, false, 100),
            (-10, false, true, 100),
            (-10, false, false, 90),
            (10, true, true, 100),
            (10, true, false, 110),
            (-10, true, true, 90),
            (-10, true, false, 100),
        ];
        for (weight, reverse, up, expected) in table {
            let item = script("s", weight, reverse);
            let e = effect(
                100,
                std::slice::from_ref(&item),
                &statuses(&[(&item, Status::Up(up))]),
            );
            assert_eq!(
                e.priority, expected,
                "weight {weight} reverse {reverse} up {up}"
            );
            assert!(!e.fault());
        }
    }

    #[test]
    fn weight_zero_failure_is_fault() {
        let item = script("chk", 0, false);
        let e = effect(
            100,
            std::slice::from_ref(&item),
            &statuses(&[(&item, Status::Up(false))]),
        );
        assert_eq!(e.faulted_by, vec![TrackerId::Script("chk".into())]);
        assert_eq!(e.priority, 100);
        let e = effect(
            100,
            std::slice::from_ref(&item),
            &statuses(&[(&item, Status::Up(true))]),
        );
        assert!(!e.fault());
        // reverse: up is the failure
        let item = script("chk", 0, true);
        let e = effect(
            100,
            std::slice::from_ref(&item),
            &statuses(&[(&item, Status::Up(true))]),
        );
        assert!(e.fault());
    }

    #[test]
    fn clamped_to_1_254_and_owner_unaffected() {
        let a = script("a", 200, false);
        let b = script("b", -250, false);
        let up = statuses(&[(&a, Status::Up(true)), (&b, Status::Up(true))]);
        assert_eq!(effect(100, std::slice::from_ref(&a), &up).priority, 254);
        let down = statuses(&[(&b, Status::Up(false))]);
        assert_eq!(effect(100, std::slice::from_ref(&b), &down).priority, 1);
        assert_eq!(effect(255, std::slice::from_ref(&b), &down).priority, 255);
        // The owner still faults on a weight-0 failure.
        let z = script("z", 0, false);
        let e = effect(
            255,
            std::slice::from_ref(&z),
            &statuses(&[(&z, Status::Up(false))]),
        );
        assert!(e.fault());
        assert_eq!(e.priority, 255);
    }

    #[test]
    fn file_value_times_weight() {
        let f = file("f", 10, false);
        let at = |v: i64| {
            effect(
                100,
                std::slice::from_ref(&f),
                &statuses(&[(&f, Status::Value(v))]),
            )
        };
        assert_eq!(at(0).priority, 100);
        assert_eq!(at(2).priority, 120);
        assert_eq!(at(-3).priority, 70);
        assert!(!at(-25).fault());
        assert_eq!(at(-25).priority, 1);
        assert!(at(-26).fault(), "-260 <= -254");
        let r = file("f", 10, true);
        let e = effect(
            100,
            std::slice::from_ref(&r),
            &statuses(&[(&r, Status::Value(2))]),
        );
        assert_eq!(e.priority, 80);
        // Weight 0: non-zero is a failure.
        let z = file("f", 0, false);
        let e = effect(
            100,
            std::slice::from_ref(&z),
            &statuses(&[(&z, Status::Value(7))]),
        );
        assert!(e.fault());
        let e = effect(
            100,
            std::slice::from_ref(&z),
            &statuses(&[(&z, Status::Value(0))]),
        );
        assert!(!e.fault());
        // A huge value cannot overflow.
        let e = effect(
            100,
            std::slice::from_ref(&f),
            &statuses(&[(&f, Status::Value(i64::MAX))]),
        );
        assert_eq!(e.priority, 254);
        let e = effect(
            100,
            std::slice::from_ref(&f),
            &statuses(&[(&f, Status::Value(i64::MIN))]),
        );
        assert!(e.fault());
    }

    #[test]
    fn unknown_status_counts_as_up() {
        let a = script("a", -20, false);
        assert_eq!(effect(100, &[a], &HashMap::new()).priority, 100);
    }

    #[test]
    fn items_take_the_reference_weight_and_ignore_weights_in_sync_groups() {
        let text = r#"
global_defs { enable_script_security }
vrrp_script chk { script "/bin/true"
  weight -20 }
vrrp_track_file tf { file "/tmp/x" 
  weight 3 }
vrrp_instance A { interface eth0
 virtual_router_id 1
 virtual_ipaddress { 10.0.0.1 }
 track_interface { eth1 weight 5
   eth2 }
 track_script { chk weight 7 reverse }
 track_file { tf }
}"#;
        let config = crate::config::load_str_with(
            text,
            std::path::Path::new("t.conf"),
            &crate::config::AnyHost,
        )
        .unwrap()
        .config;
        let items = instance_items(&config.instances[0], &config, false);
        assert_eq!(
            items,
            vec![
                Weighted {
                    tracker: TrackerId::Interface("eth1".into()),
                    weight: 5,
                    reverse: false
                },
                Weighted {
                    tracker: TrackerId::Interface("eth2".into()),
                    weight: 0,
                    reverse: false
                },
                script("chk", 7, true),
                file("tf", 3, false),
            ]
        );
        let items = instance_items(&config.instances[0], &config, true);
        assert!(items.iter().all(|w| w.weight == 0));
    }
}
