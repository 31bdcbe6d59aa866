//! Top-level trackers: `vrrp_script`, `vrrp_track_process`, `vrrp_track_file`.

use std::path::PathBuf;
use std::time::Duration;

use super::{Builder, MAX_WEIGHT};
use crate::config::lexer::Token;
use crate::config::model::*;
use crate::config::syntax::Node;

impl Builder<'_> {
    // ---- trackers ---------------------------------------------------------------------

    pub(super) fn script(&mut self, node: &Node) -> Option<VrrpScript> {
        let name = self.name_arg(node)?;
        let mut script = None;
        let mut interval = None;
        let mut timeout = None;
        let mut weight = 0;
        let mut reverse = false;
        let mut rise = 1;
        let mut fall = 1;
        let mut user = None;
        let mut init_fail = false;
        for kw in self.block(node) {
            match kw.name() {
                "script" => script = self.command(kw),
                "interval" => {
                    if let Some(v) = self.secs_arg(kw, 0.0, f64::from(u32::MAX)) {
                        if v == 0.0 {
                            self.d
                                .warn(kw.at(), "interval", "must be greater than 0; using 1");
                        }
                        interval = Some(Duration::from_secs_f64(if v == 0.0 { 1.0 } else { v }));
                    }
                }
                "timeout" => {
                    if let Some(v) = self.secs_arg(kw, 0.0, f64::from(u32::MAX)) {
                        timeout = Some(Duration::from_secs_f64(v));
                    }
                }
                "weight" => {
                    if let Some(token) = self.arg(kw, 0) {
                        if let Some(w) = self.script_weight(kw, token) {
                            weight = w;
                        }
                        reverse = kw.arg(1).is_some_and(|t| t.text == "reverse");
                    }
                }
                "rise" => {
                    if let Some(v) = self.int_arg(kw, 1, i64::from(i32::MAX)) {
                        rise = v as u32;
                    }
                }
                "fall" => {
                    if let Some(v) = self.int_arg(kw, 1, i64::from(i32::MAX)) {
                        fall = v as u32;
                    }
                }
                "user" => {
                    if let Some(u) = self.arg(kw, 0) {
                        user = Some(ScriptUser {
                            user: u.text.clone(),
                            group: kw.arg(1).map(|t| t.text.clone()),
                        });
                    }
                }
                "init_fail" => init_fail = true,
                name => self.unknown(kw, name),
            }
        }
        let Some(script) = script else {
            self.d.warn(
                node.at(),
                "vrrp_script",
                format!("{name}: no script given; removed"),
            );
            return None;
        };
        let interval = interval.unwrap_or(Duration::from_secs(1));
        Some(VrrpScript {
            name,
            defined_at: node.at().clone(),
            script,
            interval,
            timeout: timeout.filter(|t| !t.is_zero()).unwrap_or(interval),
            weight,
            reverse,
            rise,
            fall,
            user,
            init_fail,
        })
    }

    /// A script's own weight: keepalived refuses anything beyond ±253.
    fn script_weight(&mut self, kw: &Node, token: &Token) -> Option<i32> {
        self.int(kw, token, -MAX_WEIGHT, MAX_WEIGHT)
            .map(|w| w as i32)
    }

    pub(super) fn track_process(&mut self, node: &Node) -> Option<TrackProcess> {
        let name = self.name_arg(node)?;
        let mut process = None;
        let mut parameters = Vec::new();
        let mut weight = 0;
        let mut reverse = false;
        let mut quorum = 1;
        let mut quorum_max = None;
        let mut delay = Duration::ZERO;
        let mut param_match = None;
        let mut full_command = false;
        for kw in self.block(node) {
            match kw.name() {
                "process" => {
                    if let Some(p) = self.arg(kw, 0) {
                        process = Some(p.text.clone());
                        parameters = kw.args[1..].iter().map(|t| t.text.clone()).collect();
                    }
                }
                "weight" => {
                    if let Some(token) = self.arg(kw, 0) {
                        if let Some(w) = self.script_weight(kw, token) {
                            weight = w;
                        }
                        reverse = kw.arg(1).is_some_and(|t| t.text == "reverse");
                    }
                }
                "quorum" => {
                    if let Some(v) = self.int_arg(kw, 1, 65535) {
                        quorum = v as u32;
                    }
                }
                "quorum_max" => {
                    if let Some(v) = self.int_arg(kw, 0, 65535) {
                        quorum_max = Some(v as u32);
                    }
                }
                "delay" | "terminate_delay" | "fork_delay" => {
                    if let Some(v) = self.secs_arg(kw, 0.0, 3600.0) {
                        if kw.name() == "delay" {
                            delay = Duration::from_secs_f64(v);
                        }
                    }
                }
                "param_match" => param_match = kw.arg(0).map(|t| t.text.clone()),
                "full_command" => full_command = true,
                name => self.unknown(kw, name),
            }
        }
        let Some(process) = process else {
            self.d.warn(
                node.at(),
                "vrrp_track_process",
                format!("{name}: no process given; removed"),
            );
            return None;
        };
        if quorum_max.is_some_and(|max| max < quorum) {
            self.d.warn(
                node.at(),
                "quorum_max",
                format!("{name}: quorum_max below quorum"),
            );
        }
        Some(TrackProcess {
            name,
            defined_at: node.at().clone(),
            process,
            parameters,
            weight,
            reverse,
            quorum,
            quorum_max,
            delay,
            param_match,
            full_command,
        })
    }

    pub(super) fn track_file(&mut self, node: &Node) -> Option<TrackFile> {
        let name = self.name_arg(node)?;
        let mut file = None;
        let mut weight = 1;
        let mut reverse = false;
        let mut init_file = None;
        for kw in self.block(node) {
            match kw.name() {
                "file" => file = self.arg(kw, 0).map(|t| PathBuf::from(&t.text)),
                "weight" => {
                    if let Some(token) = self.arg(kw, 0) {
                        if let Some(w) = self.int(kw, token, -254, 254) {
                            weight = w as i32;
                        }
                        reverse = kw.arg(1).is_some_and(|t| t.text == "reverse");
                    }
                }
                "init_file" => {
                    let mut init = InitFile {
                        value: 0,
                        overwrite: false,
                    };
                    for arg in &kw.args {
                        if arg.text == "overwrite" {
                            init.overwrite = true;
                        } else if let Some(v) = self.int(kw, arg, -254, 254) {
                            init.value = v;
                        }
                    }
                    init_file = Some(init);
                }
                name => self.unknown(kw, name),
            }
        }
        let Some(file) = file else {
            self.d.warn(
                node.at(),
                node.name(),
                format!("{name}: no file given; removed"),
            );
            return None;
        };
        Some(TrackFile {
            name,
            defined_at: node.at().clone(),
            file,
            weight,
            reverse,
            init_file,
        })
    }
}
