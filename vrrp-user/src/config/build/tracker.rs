//! Top-level trackers as keepalived reads them: `vrrp_script`, `vrrp_track_process` and
//! `track_file` (or its old name `vrrp_track_file`).

use std::path::PathBuf;
use std::time::Duration;

use super::number::MICROS;
use super::{Builder, MAX_WEIGHT};
use crate::config::model::*;
use crate::config::syntax::Node;

impl Builder<'_> {
    pub(super) fn script(&mut self, node: &Node) -> Option<VrrpScript> {
        // keepalived takes the word after the keyword as the name; a missing one stops it.
        let name = self.arg(node, 0)?.text.clone();
        let mut script = None;
        let mut interval = Duration::from_secs(1);
        let mut timeout = None;
        let mut weight = 0;
        let mut reverse = false;
        let mut rise = 1;
        let mut fall = 1;
        let mut user = None;
        let mut run_as = None;
        let mut removed = false;
        let mut init_fail = false;
        self.block_keywords(node, |b, kw| {
            match kw.name() {
                "script" => script = b.script_command(kw, &name),
                "interval" => {
                    if let Some(v) = b.unsigned_arg(kw, 0, u64::from(u32::MAX) / MICROS) {
                        interval = Duration::from_secs(b.at_least_one(kw, v).into());
                    }
                }
                "timeout" => {
                    if let Some(v) = b.unsigned_arg(kw, 0, u64::from(u32::MAX) / MICROS) {
                        timeout = Some(Duration::from_secs(b.at_least_one(kw, v).into()));
                    }
                }
                "weight" => {
                    if let Some(w) = b.int_arg(kw, -MAX_WEIGHT, MAX_WEIGHT) {
                        weight = w as i32;
                    }
                    match kw.arg(1).map(|t| t.text.as_str()) {
                        Some("reverse") => reverse = true,
                        Some(other) => b.d.warn(
                            kw.at(),
                            "weight",
                            format!("vrrp_script {name}: unknown weight option {other}"),
                        ),
                        None => {}
                    }
                }
                "rise" | "fall" => {
                    if let Some(token) = b.arg(kw, 0) {
                        let v = b.unsigned(kw.name(), token, 1, i32::MAX as u64).unwrap_or(1) as u32;
                        if kw.name() == "rise" {
                            rise = v;
                        } else {
                            fall = v;
                        }
                    }
                }
                "user" => {
                    if let Some(u) = b.arg(kw, 0) {
                        let group = kw.arg(1).map(|t| t.text.clone());
                        match b.user_group(&u.text, group.as_deref()) {
                            Some(ids) => {
                                run_as = Some(ids);
                                removed = false;
                            }
                            None => {
                                b.d.warn(
                                    kw.at(),
                                    "user",
                                    format!("vrrp_script {name}: user {} does not exist; script removed", u.text),
                                );
                                removed = true;
                            }
                        }
                        user = Some(ScriptUser {
                            user: u.text.clone(),
                            group,
                        });
                    }
                }
                "init_fail" => init_fail = true,
                _ => return false,
            }
            true
        });
        // keepalived's end-of-block handler (reported at the closing brace).
        let Some(script) = script else {
            self.d.warn(
                node.end(),
                "vrrp_script",
                format!("{name}: no script given; removed"),
            );
            return None;
        };
        if removed {
            return None;
        }
        let run_as = match run_as {
            Some(ids) => ids,
            None => match self.default_run_as(node.end(), "vrrp_script") {
                Some(ids) => ids,
                None => {
                    self.d.warn(
                        node.end(),
                        "vrrp_script",
                        format!("{name}: no default user to run it as; script removed"),
                    );
                    return None;
                }
            },
        };
        self.script_run_as.entry(name.clone()).or_insert(run_as);
        Some(VrrpScript {
            name,
            defined_at: node.at().clone(),
            script,
            interval,
            // keepalived's default timeout is the interval.
            timeout: timeout.unwrap_or(interval),
            weight,
            reverse,
            rise,
            fall,
            user,
            init_fail,
        })
    }

    /// `script "CMD ARGS"`: keepalived takes the word after the keyword as the whole
    /// command; unquoted further words are dropped.
    fn script_command(&mut self, kw: &Node, name: &str) -> Option<String> {
        let command = kw.arg(0)?;
        if kw.args.len() > 1 {
            let dropped: Vec<&str> = kw.args[1..].iter().map(|t| t.text.as_str()).collect();
            self.d.lint(
                kw.at(),
                "script",
                format!(
                    "vrrp_script {name}: keepalived runs only `{}` and drops `{}`: quote the whole \
                     command (xvrrpd does as keepalived)",
                    command.text,
                    dropped.join(" ")
                ),
            );
        }
        Some(command.text.clone())
    }

    pub(super) fn track_process(&mut self, node: &Node) -> Option<TrackProcess> {
        let name = self.arg(node, 0)?.text.clone();
        let mut process: Option<String> = None;
        let mut parameters = Vec::new();
        let mut weight = 0;
        let mut reverse = false;
        let mut quorum = 1;
        let mut quorum_max: Option<u32> = None;
        let mut fork_delay = Duration::ZERO;
        let mut terminate_delay = Duration::ZERO;
        let mut param_match = None;
        let mut full_command = false;
        self.block_keywords(node, |b, kw| {
            match kw.name() {
                "process" => {
                    if let Some(p) = b.arg(kw, 0) {
                        if process.is_some() {
                            b.d.warn(
                                kw.at(),
                                "process",
                                format!("track process {name}: process already given; ignored"),
                            );
                        } else {
                            process = Some(p.text.clone());
                            parameters = kw.args[1..].iter().map(|t| t.text.clone()).collect();
                            if !parameters.is_empty() {
                                param_match.get_or_insert_with(|| "exact".to_string());
                                full_command = true;
                            }
                        }
                    }
                }
                "weight" => match kw.arg(0) {
                    None => b.d.warn(
                        kw.at(),
                        "weight",
                        format!("track process {name}: no weight given; ignored"),
                    ),
                    Some(_) if weight != 0 => b.d.warn(
                        kw.at(),
                        "weight",
                        format!("track process {name}: weight already given; ignored"),
                    ),
                    Some(token) => {
                        if let Some(w) = b.signed("weight", token, -254, 254) {
                            weight = w as i32;
                            match kw.arg(1).map(|t| t.text.as_str()) {
                                Some("reverse") => reverse = true,
                                Some(other) => b.d.warn(
                                    kw.at(),
                                    "weight",
                                    format!("track process {name}: unknown weight option {other}"),
                                ),
                                None => {}
                            }
                        }
                    }
                },
                "quorum" => {
                    if let Some(v) = b.unsigned_arg(kw, 1, 65535) {
                        if quorum_max.is_some_and(|max| v > u64::from(max)) {
                            b.d.warn(
                                kw.at(),
                                "quorum",
                                "quorum is greater than quorum_max; ignored",
                            );
                        } else {
                            quorum = v as u32;
                        }
                    }
                }
                "quorum_max" => {
                    if let Some(v) = b.unsigned_arg(kw, 0, 65535) {
                        let v = v as u32;
                        if (v > 0 || quorum > 1) && v < quorum {
                            b.d.warn(
                                kw.at(),
                                "quorum_max",
                                "quorum_max is less than quorum; ignored",
                            );
                        } else {
                            quorum_max = Some(v);
                            if v == 0 {
                                quorum = 0;
                            }
                        }
                    }
                }
                "delay" | "terminate_delay" | "fork_delay" => {
                    if let Some(v) = b.secs_arg(kw, 1, 3600 * MICROS) {
                        // As keepalived: `delay` sets both.
                        let v = Duration::from_secs_f64(v);
                        if kw.name() != "fork_delay" {
                            terminate_delay = v;
                        }
                        if kw.name() != "terminate_delay" {
                            fork_delay = v;
                        }
                    }
                }
                "param_match" => match kw.arg(0).map(|t| t.text.as_str()) {
                    None => {
                        param_match = Some("exact".to_string());
                        full_command = true;
                    }
                    Some(m @ ("initial" | "partial")) => {
                        param_match = Some(m.to_string());
                        full_command = true;
                    }
                    Some(other) => b.d.warn(
                        kw.at(),
                        "param_match",
                        format!("invalid param_match type {other}; ignored"),
                    ),
                },
                "full_command" => full_command = true,
                _ => return false,
            }
            true
        });
        let Some(process) = process else {
            self.d.warn(
                node.end(),
                node.name(),
                format!("track process {name}: no process given; removed"),
            );
            return None;
        };
        Some(TrackProcess {
            name,
            defined_at: node.at().clone(),
            process,
            parameters,
            weight,
            reverse,
            quorum,
            quorum_max,
            fork_delay,
            terminate_delay,
            param_match,
            full_command,
        })
    }

    pub(super) fn track_file(&mut self, node: &Node) -> Option<TrackFile> {
        let name = self.arg(node, 0)?.text.clone();
        if node.name() == "vrrp_track_file" {
            self.d.lint(
                node.at(),
                node.name(),
                "vrrp_track_file is deprecated; use track_file",
            );
        }
        let mut file: Option<PathBuf> = None;
        let mut weight = 1;
        let mut reverse = false;
        let mut init_file = None;
        self.block_keywords(node, |b, kw| {
            match kw.name() {
                "file" => match kw.arg(0) {
                    None => b.d.warn(kw.at(), "file", "track file: file name missing"),
                    Some(f) if file.is_some() => b.d.warn(
                        kw.at(),
                        "file",
                        format!("track file {name}: file already given; {} ignored", f.text),
                    ),
                    Some(f) => file = Some(PathBuf::from(&f.text)),
                },
                "weight" => match kw.arg(0) {
                    None => b.d.warn(
                        kw.at(),
                        "weight",
                        format!("track file {name}: no weight given; ignored"),
                    ),
                    Some(_) if weight != 1 => b.d.warn(
                        kw.at(),
                        "weight",
                        format!("track file {name}: weight already given; ignored"),
                    ),
                    Some(token) => {
                        weight = b.signed("weight", token, -254, 254).unwrap_or(1) as i32;
                        match kw.arg(1).map(|t| t.text.as_str()) {
                            Some("reverse") => reverse = true,
                            Some(other) => b.d.warn(
                                kw.at(),
                                "weight",
                                format!("track file {name}: unknown weight option {other}"),
                            ),
                            None => {}
                        }
                    }
                },
                "init_file" => {
                    let mut init = InitFile {
                        value: 0,
                        overwrite: false,
                    };
                    for arg in &kw.args {
                        let word = arg.text.trim_start();
                        if word.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                            match word.parse::<i64>() {
                                Ok(v) if (-254..=254).contains(&v) => init.value = v,
                                Ok(v) => {
                                    b.d.warn(
                                        &arg.at,
                                        "init_file",
                                        format!(
                                            "track file {name}: init value {v} outside -254..254"
                                        ),
                                    );
                                    init.value = v;
                                }
                                Err(_) => b.d.warn(
                                    &arg.at,
                                    "init_file",
                                    format!(
                                        "track file {name}: init value {} is invalid",
                                        arg.text
                                    ),
                                ),
                            }
                        } else if word == "overwrite" {
                            init.overwrite = true;
                        } else {
                            b.d.warn(
                                &arg.at,
                                "init_file",
                                format!("unknown track file init option {word}"),
                            );
                        }
                    }
                    init_file = Some(init);
                }
                _ => return false,
            }
            true
        });
        let Some(file) = file else {
            self.d.warn(
                node.end(),
                node.name(),
                format!("track file {name}: no file given; ignored"),
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
