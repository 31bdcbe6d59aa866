//! `vrrp_sync_group`: members are resolved by `validate` once every instance is read, as
//! keepalived does.

use super::instance::Tracked;
use super::{Builder, NotifyOwner};
use crate::config::model::*;
use crate::config::syntax::Node;

impl Builder<'_> {
    pub(super) fn sync_group(&mut self, node: &Node, config: &Config) -> Option<SyncGroup> {
        let name = self.name_arg(node)?;
        if config.sync_groups.iter().any(|g| g.name == name) {
            self.d.warn(
                node.at(),
                "vrrp_sync_group",
                format!("vrrp sync group {name} already defined; block skipped"),
            );
            return None;
        }
        let mut members = None;
        let mut notify = Notify::default();
        let mut tracking_weight = false;
        let mut trackers = GroupTrackers::default();
        self.block_keywords(node, |b, kw| {
            match kw.name() {
                "sync_group_tracking_weight" => tracking_weight = true,
                "global_tracking" => {
                    b.d.warn(
                        kw.at(),
                        "global_tracking",
                        format!(
                            "{name}: global_tracking is deprecated; use sync_group_tracking_weight"
                        ),
                    );
                    tracking_weight = true;
                }
                "group" => {
                    if members.is_some() {
                        b.d.warn(
                            kw.at(),
                            "group",
                            format!("{name}: group list already given; ignored"),
                        );
                        return true;
                    }
                    // Members may be spread over lines or share them.
                    let mut list = Vec::new();
                    for entry in kw.children() {
                        for token in entry.words() {
                            list.push((token.text.clone(), token.at.clone()));
                        }
                    }
                    if list.is_empty() {
                        // Reported once the block is read, at its closing brace.
                        b.d.warn(kw.end(), "group", format!("{name}: empty group block"));
                    }
                    members = Some(list);
                }
                "notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                    if notify.slot_mut(kw.name()).is_some() {
                        b.d.warn(
                            kw.at(),
                            kw.name(),
                            format!("{name}: {} script already given; ignored", kw.name()),
                        );
                    } else {
                        let command = b.notify_command(kw, NotifyOwner::Group(name.clone()));
                        *notify.slot_mut(kw.name()) = command;
                    }
                }
                "smtp_alert" => b.alert_mail_not_sent(kw),
                "notify_priority_changes" => b.not_implemented(kw),
                "track_interface" | "track_script" | "track_process" | "track_file"
                | "track_bfd" => {
                    b.group_trackers(kw, &name, config, &mut trackers);
                }
                _ => return false,
            }
            true
        });
        let members = members.unwrap_or_default();
        self.sync_group_lines.insert(name.clone(), members.clone());
        Some(SyncGroup {
            name,
            defined_at: node.at().clone(),
            members: members.into_iter().map(|(m, _)| m).collect(),
            notify,
            tracking_weight,
            track_interface: trackers.interfaces.into_iter().map(|(t, _)| t).collect(),
            track_script: trackers.scripts.into_iter().map(|t| t.track).collect(),
            track_process: trackers.processes.into_iter().map(|t| t.track).collect(),
            track_file: trackers.files.into_iter().map(|t| t.track).collect(),
        })
    }

    /// Tracking in a sync group: checked as keepalived checks it; every member tracks
    /// what the group tracks (see `validate`).
    fn group_trackers(
        &mut self,
        kw: &Node,
        group: &str,
        config: &Config,
        trackers: &mut GroupTrackers,
    ) {
        self.value_block_args(kw);
        match kw.name() {
            "track_interface" => {
                for entry in kw.children() {
                    if let Some(t) = self.track_interface_entry(entry, group, &trackers.interfaces)
                    {
                        trackers.interfaces.push((t, entry.at().clone()));
                    }
                }
            }
            "track_bfd" => self.bfd_not_supported(kw),
            kind => {
                let what = kind.replace('_', " ");
                for entry in kw.children() {
                    let weight = |n: &str| match kind {
                        "track_script" => config.scripts.get(n).map(|s| (s.weight, s.reverse)),
                        "track_process" => {
                            config.track_processes.get(n).map(|p| (p.weight, p.reverse))
                        }
                        _ => config.track_files.get(n).map(|f| (f.weight, f.reverse)),
                    };
                    let list = match kind {
                        "track_script" => &mut trackers.scripts,
                        "track_process" => &mut trackers.processes,
                        _ => &mut trackers.files,
                    };
                    if let Some(found) = self.track_ref(entry, group, &what, list, &weight) {
                        list.push(found);
                    }
                }
            }
        }
    }
}

/// What a sync group block tracks, as written.
#[derive(Default)]
struct GroupTrackers {
    interfaces: Vec<(TrackInterface, crate::config::diagnostic::Location)>,
    scripts: Vec<Tracked>,
    processes: Vec<Tracked>,
    files: Vec<Tracked>,
}
