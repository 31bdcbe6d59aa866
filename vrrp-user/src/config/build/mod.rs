//! Reads the keyword tree into the model, keyword by keyword, with keepalived's ranges,
//! defaults and corrections. Each correction keepalived reports is reported here too, at
//! the keyword's file:line; cross-object checks live in `validate`.
//!
//! One module per block: `global` (global_defs), `instance` (vrrp_instance), `address`
//! (virtual/static addresses), `tracker` (vrrp_script, vrrp_track_process,
//! vrrp_track_file), `sync_group` (vrrp_sync_group).

mod address;
mod global;
mod instance;
mod sync_group;
mod tracker;

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::diagnostic::{Diagnostics, Location};
use super::host::{Host, InterfaceKind};
use super::lexer::Token;
use super::model::*;
use super::syntax::Node;

/// Top-level sections of keepalived.conf outside the VRRP part: skipped with a note.
const OTHER_SECTIONS: &[&str] = &[
    "virtual_server",
    "virtual_server_group",
    "real_server",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "static_track_group",
    "garp_group",
    "bfd_instance",
    "linkbeat_interfaces",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "child_wait_time",
    "vrrp_track_bfd",
];

/// keepalived's limit on a weight's magnitude (254 would jump 1 straight to 255).
const MAX_WEIGHT: i64 = 253;

pub(crate) struct Builder<'a> {
    pub d: &'a mut Diagnostics,
    pub host: &'a dyn Host,
    /// Whether vrrp_version was written in global_defs (for the IPv6 note).
    pub global_version_set: bool,
    /// Tracker references per instance, resolved by `validate` once all trackers are read.
    pub pending_refs: Vec<PendingRefs>,
    /// Where each sync group member was written, for "does not exist" reports.
    pub sync_group_lines: BTreeMap<String, Vec<(String, Location)>>,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(d: &'a mut Diagnostics, host: &'a dyn Host) -> Self {
        Self {
            d,
            host,
            global_version_set: false,
            pending_refs: Vec::new(),
            sync_group_lines: BTreeMap::new(),
        }
    }

    pub(crate) fn build(&mut self, nodes: &[Node]) -> Config {
        let mut config = Config::default();
        // Instances take global defaults wherever global_defs is written.
        for node in nodes.iter().filter(|n| n.name() == "global_defs") {
            self.global_defs(node, &mut config.global);
        }
        for node in nodes {
            match node.name() {
                "global_defs" => {}
                "vrrp_instance" => {
                    if let Some(instance) = self.instance(node, &config.global) {
                        if config.instance(&instance.name).is_some() {
                            // Its tracker references were queued; they belong to no one.
                            self.pending_refs.pop();
                            self.d.error(
                                node.at(),
                                "vrrp_instance",
                                format!("vrrp instance {} already defined", instance.name),
                            );
                        } else {
                            config.instances.push(instance);
                        }
                    }
                }
                "vrrp_script" => {
                    if let Some(script) = self.script(node) {
                        self.insert_unique(&mut config.scripts, script.name.clone(), script, node);
                    }
                }
                "vrrp_track_process" => {
                    if let Some(process) = self.track_process(node) {
                        let name = process.name.clone();
                        self.insert_unique(&mut config.track_processes, name, process, node);
                    }
                }
                "vrrp_track_file" | "track_file" => {
                    if let Some(file) = self.track_file(node) {
                        self.insert_unique(&mut config.track_files, file.name.clone(), file, node);
                    }
                }
                "vrrp_sync_group" => {
                    if let Some(group) = self.sync_group(node) {
                        config.sync_groups.push(group);
                    }
                }
                name if OTHER_SECTIONS.contains(&name) => {
                    self.d.lint(
                        node.at(),
                        name,
                        "not part of VRRP; xvrrpd skips this section",
                    );
                }
                name => self.unknown(node, name),
            }
        }
        config
    }

    fn insert_unique<T>(
        &mut self,
        map: &mut BTreeMap<String, T>,
        name: String,
        value: T,
        node: &Node,
    ) {
        match map.entry(name) {
            std::collections::btree_map::Entry::Occupied(first) => self.d.warn(
                node.at(),
                node.name(),
                format!("{} already defined; keeping the first", first.key()),
            ),
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(value);
            }
        }
    }

    fn unknown(&mut self, node: &Node, name: &str) {
        let skipped = if node.block.is_some() {
            " (block skipped)"
        } else {
            ""
        };
        self.d
            .warn(node.at(), name, format!("unknown keyword{skipped}"));
    }

    fn not_implemented(&mut self, node: &Node) {
        self.d.lint(
            node.at(),
            node.name(),
            "keepalived keyword not implemented by xvrrpd; ignored",
        );
    }

    // ---- argument helpers -------------------------------------------------------------

    /// The argument at `index`; reports keepalived's "missing a parameter" when absent.
    fn arg<'n>(&mut self, node: &'n Node, index: usize) -> Option<&'n Token> {
        let arg = node.arg(index);
        if arg.is_none() {
            self.d.error(node.at(), node.name(), "missing a parameter");
        }
        arg
    }

    /// The block of a keyword that needs one; reports its absence.
    fn block<'n>(&mut self, node: &'n Node) -> &'n [Node] {
        if node.block.is_none() {
            self.d
                .warn(node.at(), node.name(), "expects a { ... } block");
        }
        node.children()
    }

    fn int(&mut self, node: &Node, token: &Token, min: i64, max: i64) -> Option<i64> {
        match token.text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(n) => {
                self.d
                    .warn(&token.at, node.name(), format!("{n} outside {min}..{max}"));
                None
            }
            Err(_) => {
                self.d.warn(
                    &token.at,
                    node.name(),
                    format!("invalid number '{}'", token.text),
                );
                None
            }
        }
    }

    fn int_arg(&mut self, node: &Node, min: i64, max: i64) -> Option<i64> {
        let token = self.arg(node, 0)?;
        self.int(node, token, min, max)
    }

    /// Seconds, fractions allowed, within `min..=max`.
    fn secs_arg(&mut self, node: &Node, min: f64, max: f64) -> Option<f64> {
        let token = self.arg(node, 0)?;
        match token.text.parse::<f64>() {
            Ok(v) if v.is_finite() && (min..=max).contains(&v) => Some(v),
            Ok(_) => {
                self.d.warn(
                    &token.at,
                    node.name(),
                    format!("{} outside {min}..{max}", token.text),
                );
                None
            }
            Err(_) => {
                self.d.warn(
                    &token.at,
                    node.name(),
                    format!("invalid number '{}'", token.text),
                );
                None
            }
        }
    }

    fn ip(&mut self, node: &Node, token: &Token, what: &str) -> Option<IpAddr> {
        let parsed = token.text.parse::<IpAddr>().ok();
        if parsed.is_none() {
            self.d.warn(
                &token.at,
                node.name(),
                format!("invalid {what} '{}'; skipped", token.text),
            );
        }
        parsed
    }

    /// The rest of the line as one command (`notify_master "/x a b"` or `notify_master /x a b`).
    fn command(&mut self, node: &Node) -> Option<String> {
        self.arg(node, 0)?;
        let words: Vec<&str> = node.args.iter().map(|t| t.text.as_str()).collect();
        Some(words.join(" "))
    }

    fn name_arg(&mut self, node: &Node) -> Option<String> {
        match node.arg(0) {
            Some(name) => Some(name.text.clone()),
            None => {
                self.d
                    .error(node.at(), node.name(), "must have a name; block skipped");
                None
            }
        }
    }

    /// `weight N [reverse]` starting at argument `from`; returns (weight, reverse).
    fn weight_args(&mut self, node: &Node, from: usize) -> (Option<i32>, bool) {
        let mut weight = None;
        let mut reverse = false;
        let mut i = from;
        while let Some(token) = node.arg(i) {
            match token.text.as_str() {
                "weight" => {
                    i += 1;
                    match node.arg(i) {
                        Some(value) => weight = self.weight(node, value),
                        None => self.d.warn(&token.at, node.name(), "weight needs a value"),
                    }
                }
                "reverse" => reverse = true,
                "noreverse" => reverse = false,
                other => self.d.warn(
                    &token.at,
                    node.name(),
                    format!("unexpected '{other}' (expected weight N [reverse])"),
                ),
            }
            i += 1;
        }
        (weight, reverse)
    }

    fn weight(&mut self, node: &Node, token: &Token) -> Option<i32> {
        let value = self.int(node, token, -254, 254)?;
        if value.abs() > MAX_WEIGHT {
            let clamped = value.signum() * MAX_WEIGHT;
            self.d.warn(
                &token.at,
                node.name(),
                format!("weight {value} must be within -253..253; using {clamped}"),
            );
            return i32::try_from(clamped).ok();
        }
        i32::try_from(value).ok()
    }

    fn check_interface(&mut self, at: &Location, keyword: &str, name: &str) -> InterfaceKind {
        let kind = self.host.interface(name);
        if kind == InterfaceKind::Missing {
            self.d.warn(
                at,
                keyword,
                format!("interface {name} does not exist on this host"),
            );
        }
        kind
    }
}

/// Tracker references of one instance, resolved once every tracker has been read.
pub(crate) struct PendingRefs {
    pub instance: String,
    pub script: Vec<(TrackRef, Location)>,
    pub process: Vec<(TrackRef, Location)>,
    pub file: Vec<(TrackRef, Location)>,
}
