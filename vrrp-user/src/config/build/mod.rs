//! Reads the keyword tree into the model, keyword by keyword and in file order as
//! keepalived does, with its ranges, defaults and corrections. What keepalived reports while
//! reading is reported at the keyword's file:line; what it checks once everything is read
//! lives in `validate`.
//!
//! One module per block: `global` (global_defs), `instance` (vrrp_instance), `address`
//! (virtual and static addresses), `route` (virtual and static routes and rules), `tracker`
//! (vrrp_script, vrrp_track_process, track_file), `sync_group` (vrrp_sync_group), `lvs`
//! (the LVS part, checked but not run), with keepalived's number readers in `number`.

mod address;
mod global;
mod instance;
mod lvs;
mod number;
mod route;
mod sync_group;
mod tracker;

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

use super::diagnostic::{Diagnostics, Location};
use super::host::{Host, InterfaceKind, UserIds};
use super::lexer::Token;
use super::model::*;
use super::syntax::Node;
use crate::command::DEFAULT_SCRIPT_USER;

pub(crate) use instance::InstanceDraft;
use lvs::CheckScript;

/// Top-level sections of keepalived's other processes (TLS for checkers, BFD).
const OTHER_SECTIONS: &[&str] = &["SSL", "bfd_instance"];

/// Top-level VRRP sections keepalived knows that xvrrpd does not implement.
const UNAPPLIED_SECTIONS: &[&str] = &[
    "garp_group",
    "linkbeat_interfaces",
    "track_group",
    "interface_up_down_delays",
];

/// Root keywords of global_init_keywords (keepalived reads them at the top level).
const GLOBAL_ROOT_KEYWORDS: &[&str] = &[
    "linkbeat_use_polling",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "use_pid_dir",
    "instance",
    "child_wait_time",
];

/// keepalived's limit on a weight's magnitude (254 would jump 1 straight to 255).
const MAX_WEIGHT: i64 = 253;

/// A line as keepalived's reader meets it: a keyword (with its block) or a lone `}`.
#[derive(Debug, Clone)]
enum Item<'n> {
    Node(Cow<'n, Node>),
    Close(Location),
}

impl Item<'_> {
    fn into_owned(self) -> Item<'static> {
        match self {
            Item::Node(node) => Item::Node(Cow::Owned(node.into_owned())),
            Item::Close(at) => Item::Close(at),
        }
    }
}

/// Who a script runs as, once keepalived has resolved its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunIds {
    pub uid: u32,
    pub gid: u32,
}

/// Whose notify script it is (for removing it when keepalived would not run it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotifyOwner {
    Instance(String),
    Group(String),
    Fifo,
}

/// A notify command keepalived would run, and as whom.
#[derive(Debug, Clone)]
pub(crate) struct NotifyScript {
    pub owner: NotifyOwner,
    /// The keyword (`notify_master`, ..., `notify_fifo_script`).
    pub keyword: String,
    pub command: String,
    pub run_as: RunIds,
    pub at: Location,
}

pub(crate) struct Builder<'a> {
    pub d: &'a mut Diagnostics,
    pub host: &'a dyn Host,
    /// Whether vrrp_version was written in global_defs (for the IPv6 note).
    pub global_version_set: bool,
    /// Where each sync group member was written, for "does not exist" reports.
    pub sync_group_lines: BTreeMap<String, Vec<(String, Location)>>,
    /// Where the VRRP part first names an interface that does not exist: keepalived then
    /// stops before its checks after reading.
    pub missing_interface: Option<Location>,
    /// `dynamic_interfaces`: keepalived accepts missing interfaces and waits for them.
    pub dynamic_interfaces: bool,
    /// `default_interface` (keepalived's fallback for static addresses is eth0).
    pub default_interface: Option<String>,
    /// The instances read so far, in file order, before keepalived's checks after reading.
    pub drafts: Vec<InstanceDraft>,
    /// `enable_script_security`, known while reading (it decides the default user).
    pub script_security: bool,
    /// keepalived's default script user: unresolved yet, resolved, or failed (reported once).
    default_script_user: Option<Option<RunIds>>,
    /// Whether `script_user` was written in global_defs.
    script_user_set: bool,
    /// Who each vrrp_script runs as.
    pub script_run_as: BTreeMap<String, RunIds>,
    /// The notify scripts keepalived would run, in file order.
    pub notify_scripts: Vec<NotifyScript>,
    /// Scripts of the LVS part (MISC_CHECK, notify_up/down, quorum_up/down).
    check_scripts: Vec<CheckScript>,
    /// Where each top-level tracker is defined (kind, name): for telling "defined later"
    /// and "removed" apart from "not defined" when a reference does not resolve.
    tracker_definitions: Vec<(&'static str, String, Location)>,
    /// Lines of a block that a stray `}` ended early, to be read one level up.
    overflow: Vec<Item<'static>>,
    /// The same for each global_defs block (read before everything else).
    global_overflow: Vec<(Location, Vec<Item<'static>>)>,
    /// Where alert mail (SMTP) was first configured: said in full there only.
    first_alert_mail_keyword: Option<Location>,
    /// The priority keepalived gives the next rule written without one (IPv4, IPv6).
    pub next_rule_priority: (u32, u32),
}

impl<'a> Builder<'a> {
    pub(crate) fn new(d: &'a mut Diagnostics, host: &'a dyn Host) -> Self {
        Self {
            d,
            host,
            global_version_set: false,
            sync_group_lines: BTreeMap::new(),
            missing_interface: None,
            dynamic_interfaces: false,
            default_interface: None,
            drafts: Vec::new(),
            script_security: false,
            default_script_user: None,
            script_user_set: false,
            script_run_as: BTreeMap::new(),
            notify_scripts: Vec::new(),
            check_scripts: Vec::new(),
            tracker_definitions: Vec::new(),
            overflow: Vec::new(),
            global_overflow: Vec::new(),
            first_alert_mail_keyword: None,
            next_rule_priority: route::first_rule_priorities(),
        }
    }

    pub(crate) fn build(&mut self, nodes: &[Node]) -> Config {
        let mut config = Config::default();
        // Instances take global defaults wherever global_defs is written.
        for node in nodes.iter().filter(|n| n.name() == "global_defs") {
            self.global_defs(node, &mut config.global);
            let rest = std::mem::take(&mut self.overflow);
            self.global_overflow.push((node.at().clone(), rest));
        }
        for node in nodes {
            let kind = match node.name() {
                "vrrp_script" => "track script",
                "vrrp_track_process" => "track process",
                "track_file" | "vrrp_track_file" => "track file",
                _ => continue,
            };
            if let Some(name) = node.arg(0) {
                self.tracker_definitions
                    .push((kind, name.text.clone(), node.at().clone()));
            }
        }
        let mut lvs = lvs::Lvs::default();
        self.keywords(nodes, None, true, |b, node| {
            match node.name() {
                "global_defs" => {
                    // Read already; what a stray `}` pushed out of it is read here.
                    if let Some(i) = b.global_overflow.iter().position(|(at, _)| at == node.at()) {
                        let (_, rest) = b.global_overflow.remove(i);
                        b.overflow.extend(rest);
                    }
                }
                "vrrp_instance" => b.vrrp_instance(node, &mut config),
                "vrrp_script" => {
                    if let Some(script) = b.script(node) {
                        b.insert_unique(&mut config.scripts, script.name.clone(), script, node);
                    }
                }
                "vrrp_track_process" => {
                    if let Some(process) = b.track_process(node) {
                        let name = process.name.clone();
                        b.insert_unique(&mut config.track_processes, name, process, node);
                    }
                }
                "vrrp_track_file" | "track_file" => {
                    if let Some(file) = b.track_file(node) {
                        b.insert_unique(&mut config.track_files, file.name.clone(), file, node);
                    }
                }
                "vrrp_sync_group" => {
                    if let Some(group) = b.sync_group(node, &config) {
                        config.sync_groups.push(group);
                    }
                }
                "static_ipaddress" => {
                    let addrs = b.static_addresses(node);
                    config.static_addresses.extend(addrs);
                }
                "static_routes" => {
                    let routes = b.routes(node, route::RouteBlock::Static);
                    config.static_routes.extend(routes);
                }
                "static_rules" => {
                    let rules = b.rules(node, route::RouteBlock::Static);
                    config.static_rules.extend(rules);
                }
                "virtual_server" => b.virtual_server(node, &mut lvs),
                "virtual_server_group" => b.virtual_server_group(node, &mut lvs),
                name if OTHER_SECTIONS.contains(&name) => {
                    b.d.lint(
                        node.at(),
                        name,
                        "not part of VRRP; xvrrpd neither checks nor applies it",
                    );
                }
                name if UNAPPLIED_SECTIONS.contains(&name)
                    || GLOBAL_ROOT_KEYWORDS.contains(&name) =>
                {
                    b.not_implemented(node);
                }
                _ => return false,
            }
            true
        });
        self.check_lvs(&mut lvs);
        config
    }

    /// Runs `handle` on each keyword of `node`'s block in order, as keepalived reads it;
    /// reports a missing block.
    fn block_keywords(&mut self, node: &Node, handle: impl FnMut(&mut Self, &Node) -> bool) {
        if node.block.is_none() {
            self.d
                .warn(node.at(), node.name(), "expects a { ... } block");
        }
        self.keywords(node.children(), node.block_end.as_ref(), false, handle);
    }

    /// Runs `handle` on each keyword of a block in order, as keepalived's reader meets
    /// them. A keyword `handle` does not know is reported, and its own `{ ... }` is not
    /// skipped: keepalived reports the stray `{` and reads the lines inside as keywords of
    /// this same block; the stray block's `}` then ends *this* block, whose remaining
    /// lines and `}` keepalived reads one level up (left in `self.overflow` for the
    /// enclosing loop). At the top level such a `}` is an unknown keyword.
    fn keywords(
        &mut self,
        nodes: &[Node],
        end: Option<&Location>,
        top_level: bool,
        mut handle: impl FnMut(&mut Self, &Node) -> bool,
    ) {
        let mut stream: VecDeque<Item<'_>> =
            nodes.iter().map(|n| Item::Node(Cow::Borrowed(n))).collect();
        while let Some(item) = stream.pop_front() {
            let node = match item {
                Item::Close(at) if top_level => {
                    self.d.warn(&at, "}", "unknown keyword '}'");
                    continue;
                }
                Item::Close(_) => {
                    let mut rest: Vec<Item<'static>> =
                        stream.into_iter().map(Item::into_owned).collect();
                    if let Some(end) = end {
                        rest.push(Item::Close(end.clone()));
                    }
                    self.overflow.extend(rest);
                    return;
                }
                Item::Node(node) => node,
            };
            let known = handle(self, &node);
            // What a nested block left over is read at this level, before what follows.
            for item in std::mem::take(&mut self.overflow).into_iter().rev() {
                stream.push_front(item);
            }
            if known {
                continue;
            }
            self.d.warn(node.at(), node.name(), "unknown keyword");
            if let Some(children) = &node.block {
                let at = node.block_at.as_ref().unwrap_or(node.at());
                self.d.warn(
                    at,
                    "{",
                    format!(
                        "unexpected '{{' after unknown keyword {}: keepalived reads the block's lines as keywords of the enclosing block",
                        node.name()
                    ),
                );
                if let Some(close) = &node.block_end {
                    stream.push_front(Item::Close(close.clone()));
                }
                for child in children.iter().rev() {
                    stream.push_front(Item::Node(Cow::Owned(child.clone())));
                }
            }
        }
    }

    fn insert_unique<T>(
        &mut self,
        map: &mut BTreeMap<String, T>,
        name: String,
        value: T,
        node: &Node,
    ) {
        match map.entry(name) {
            // keepalived does not check: it looks trackers up by name and finds the first.
            std::collections::btree_map::Entry::Occupied(first) => self.d.lint(
                node.at(),
                node.name(),
                format!("{} already defined; the first is used", first.key()),
            ),
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(value);
            }
        }
    }

    /// `track_bfd`: keepalived fails over when a BFD session goes down; xvrrpd runs no
    /// BFD, so running would lose that failover: an error.
    fn bfd_not_supported(&mut self, node: &Node) {
        self.d.push(
            super::diagnostic::Severity::Error,
            super::diagnostic::Verdict::Silent,
            node.at(),
            node.name(),
            "BFD tracking is not supported by xvrrpd: no failover would follow a BFD session \
             going down; track the path with a vrrp_script instead, or stay on keepalived",
        );
    }

    fn not_implemented(&mut self, node: &Node) {
        self.d.lint(
            node.at(),
            node.name(),
            "keepalived keyword not implemented by xvrrpd; ignored",
        );
    }

    // ---- argument helpers -------------------------------------------------------------

    /// The argument at `index` of a keyword whose keepalived handler reads it
    /// unconditionally: without it keepalived stops reading (exit 2).
    fn arg<'n>(&mut self, node: &'n Node, index: usize) -> Option<&'n Token> {
        let arg = node.arg(index);
        if arg.is_none() {
            self.d.missing_parameter(node.at(), node.name());
        }
        arg
    }

    /// `read_unsigned` of the first argument (exit 2 when it is missing).
    fn unsigned_arg(&mut self, node: &Node, min: u64, max: u64) -> Option<u64> {
        let token = self.arg(node, 0)?;
        self.unsigned(node.name(), token, min, max)
    }

    /// `read_int` of the first argument (exit 2 when it is missing).
    fn int_arg(&mut self, node: &Node, min: i64, max: i64) -> Option<i64> {
        let token = self.arg(node, 0)?;
        self.signed(node.name(), token, min, max)
    }

    /// A decimal number of seconds (microsecond resolution) in the first argument.
    fn secs_arg(&mut self, node: &Node, min_micros: u64, max_micros: u64) -> Option<f64> {
        let token = self.arg(node, 0)?;
        self.decimal_micros(node.name(), token, min_micros, max_micros)
            .map(|m| m as f64 / number::MICROS as f64)
    }

    /// keepalived's `inet_stosockaddr`: an address, with any `-range` or `/mask` cut off.
    fn sockaddr(&mut self, token: &Token) -> Option<std::net::IpAddr> {
        let text = token.text.as_str();
        let end = text.find(['-', '/']).unwrap_or(text.len());
        text[..end].parse().ok()
    }

    fn name_arg(&mut self, node: &Node) -> Option<String> {
        match node.arg(0) {
            Some(name) if node.args.len() == 1 => Some(name.text.clone()),
            _ => {
                self.d
                    .error(node.at(), node.name(), "must have a name; block skipped");
                None
            }
        }
    }

    /// Whether `name` exists for the VRRP part; the caller reports a missing one, which
    /// stops keepalived before its checks after reading, unless `dynamic_interfaces` lets
    /// keepalived wait for it (then only xvrrpd, which needs it at start, says so).
    fn vrrp_interface(&mut self, name: &str, at: &Location) -> InterfaceKind {
        let kind = self.host.interface(name);
        if kind == InterfaceKind::Missing {
            if self.dynamic_interfaces {
                self.d.lint(
                    at,
                    "dynamic_interfaces",
                    format!(
                        "interface {name} does not exist yet: what uses it waits for it \
                         (dynamic_interfaces; an instance on it stays in FAULT until it appears)"
                    ),
                );
                return InterfaceKind::Present;
            }
            self.missing_interface.get_or_insert_with(|| at.clone());
        }
        kind
    }

    /// keepalived's default script user: `script_user`, else `keepalived_script` if it
    /// exists, else root; with `enable_script_security` a missing `keepalived_script` is
    /// an error (reported once, where it is first needed).
    fn default_run_as(&mut self, at: &Location, keyword: &str) -> Option<RunIds> {
        if let Some(known) = self.default_script_user {
            return known;
        }
        let resolved = match self.host.user(DEFAULT_SCRIPT_USER) {
            Some(UserIds { uid, gid }) => Some(RunIds { uid, gid }),
            None if self.script_security => {
                self.d.warn(
                    at,
                    keyword,
                    format!(
                        "no script_user and no user {DEFAULT_SCRIPT_USER}: with enable_script_security \
                         keepalived has no user to run scripts as"
                    ),
                );
                None
            }
            None => Some(RunIds { uid: 0, gid: 0 }),
        };
        self.default_script_user = Some(resolved);
        resolved
    }

    /// keepalived's `set_uid_gid`: a user and optional group that must exist.
    fn user_group(&self, user: &str, group: Option<&str>) -> Option<RunIds> {
        let ids = self.host.user(user)?;
        let gid = match group {
            Some(g) => self.host.group(g)?,
            None => ids.gid,
        };
        Some(RunIds { uid: ids.uid, gid })
    }

    /// `script_user USER [GROUP]` in global_defs: the default for every script after it.
    fn set_script_user(&mut self, kw: &Node, user: &Token) {
        self.script_user_set = true;
        let group = kw.arg(1).map(|t| t.text.as_str());
        let resolved = self.user_group(&user.text, group);
        if resolved.is_none() {
            self.d.warn(
                kw.at(),
                "script_user",
                format!(
                    "user {}{} does not exist; keepalived runs no script without its own user",
                    user.text,
                    group.map(|g| format!(" or group {g}")).unwrap_or_default()
                ),
            );
        }
        self.default_script_user = Some(resolved);
    }

    /// A notify command as keepalived reads the line: the first word is the command (quote
    /// it to pass arguments), further words are the user and group to run it as.
    fn notify_command(&mut self, kw: &Node, owner: NotifyOwner) -> Option<String> {
        let Some(command) = kw.arg(0) else {
            self.d.lint(
                kw.at(),
                kw.name(),
                "no command given; keepalived ignores it",
            );
            return None;
        };
        let run_as = match kw.arg(1) {
            Some(user) => {
                let group = kw.arg(2).map(|t| t.text.as_str());
                match self.user_group(&user.text, group) {
                    Some(ids) => {
                        self.d.lint(
                            kw.at(),
                            kw.name(),
                            format!(
                                "keepalived runs `{}` as user {}: words after the command name a \
                                 user and group (quote the command to pass arguments); xvrrpd runs \
                                 notify scripts as script_user",
                                command.text, user.text
                            ),
                        );
                        ids
                    }
                    None => {
                        self.d.lint(
                            kw.at(),
                            kw.name(),
                            format!(
                                "keepalived reads `{}` as the user to run `{}` as, finds no such \
                                 user and ignores this script: quote the command and its arguments",
                                user.text, command.text
                            ),
                        );
                        return None;
                    }
                }
            }
            None => self.default_run_as(kw.at(), kw.name())?,
        };
        self.notify_scripts.push(NotifyScript {
            owner,
            keyword: kw.name().to_string(),
            command: command.text.clone(),
            run_as,
            at: kw.at().clone(),
        });
        Some(command.text.clone())
    }
}

impl Builder<'_> {
    /// Why a tracker reference did not resolve, beyond "not defined".
    fn unresolved_hint(&self, what: &str, name: &str, at: &Location) -> &'static str {
        let defined = self
            .tracker_definitions
            .iter()
            .filter(|(kind, n, _)| *kind == what && n == name);
        let mut later = false;
        for (_, _, defined_at) in defined {
            if defined_at.file == at.file && defined_at.line < at.line {
                return ": it was removed (see above)";
            }
            later = true;
        }
        if later {
            ": it is defined after this instance, and keepalived resolves names in file order"
        } else {
            ""
        }
    }
}

/// `yes`/`no` and friends (keepalived's `check_true_false`).
fn true_false(word: &str) -> Option<bool> {
    match word {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        _ => None,
    }
}
