//! `vrrp_sync_group`: members are resolved by `validate` once every instance is read.

use super::Builder;
use crate::config::model::*;
use crate::config::syntax::Node;

impl Builder<'_> {
    pub(super) fn sync_group(&mut self, node: &Node) -> Option<SyncGroup> {
        let name = self.name_arg(node)?;
        let mut members = Vec::new();
        let mut notify = Notify::default();
        let mut tracking_weight = false;
        for kw in self.block(node) {
            match kw.name() {
                "sync_group_tracking_weight" => tracking_weight = true,
                "group" => {
                    // Members may be spread over lines or share them.
                    for entry in self.block(kw) {
                        for token in std::iter::once(&entry.keyword).chain(&entry.args) {
                            members.push((token.text.clone(), token.at.clone()));
                        }
                    }
                }
                "notify" => notify.notify = self.command(kw),
                "notify_master" => notify.master = self.command(kw),
                "notify_backup" => notify.backup = self.command(kw),
                "notify_fault" => notify.fault = self.command(kw),
                "notify_stop" => notify.stop = self.command(kw),
                "smtp_alert" | "global_tracking" | "notify_priority_changes" => {
                    self.not_implemented(kw)
                }
                "track_interface" | "track_script" | "track_process" | "track_file" => self.d.lint(
                    kw.at(),
                    kw.name(),
                    "tracking in a sync group is not implemented by xvrrpd; track in the instances",
                ),
                other => self.unknown(kw, other),
            }
        }
        self.sync_group_lines.insert(name.clone(), members.clone());
        Some(SyncGroup {
            name,
            defined_at: node.at().clone(),
            members: members.into_iter().map(|(m, _)| m).collect(),
            notify,
            tracking_weight,
        })
    }
}
