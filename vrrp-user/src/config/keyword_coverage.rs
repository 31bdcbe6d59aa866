//! No keyword is accepted silently: for every configuration in the test corpus, each
//! keyword (and each option of an address line) is either one xvrrpd applies or one
//! `xvrrpd check` says something about at its line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::diagnostic::Diagnostics;
use super::syntax::{self, Node};
use super::{lexer, AnyHost};

/// Keywords with an effect on what xvrrpd does, by the block they are written in.
const APPLIED: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "global_defs",
            "vrrp_instance",
            "vrrp_script",
            "vrrp_track_process",
            "track_file",
            "vrrp_sync_group",
        ],
    ),
    (
        "global_defs",
        &[
            // Shown by `check --dump`; keepalived itself uses it only in SMTP and SNMP.
            "router_id",
            "vrrp_mcast_group4",
            "vrrp_mcast_group6",
            "vrrp_version",
            "vrrp_garp_master_delay",
            "vrrp_garp_master_repeat",
            "vrrp_garp_master_refresh",
            "vrrp_garp_master_refresh_repeat",
            "vrrp_garp_interval",
            "vrrp_gna_interval",
            "vrrp_check_unicast_src",
            "script_user",
            "enable_script_security",
            "notify_fifo",
            "notify_fifo_script",
            "vrrp_notify_fifo",
            "vrrp_notify_fifo_script",
            "xvrrpd_attach",
        ],
    ),
    (
        "vrrp_instance",
        &[
            "state",
            "interface",
            "virtual_router_id",
            "priority",
            "advert_int",
            "version",
            "authentication",
            "virtual_ipaddress",
            "unicast_src_ip",
            "mcast_src_ip",
            "unicast_peer",
            "check_unicast_src",
            "nopreempt",
            "preempt",
            "preempt_delay",
            "garp_master_delay",
            "garp_master_repeat",
            "garp_master_refresh",
            "garp_master_refresh_repeat",
            "track_interface",
            "track_script",
            "track_process",
            "track_file",
            "notify",
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
            "use_vmac",
            "dont_track_primary",
            "accept",
            "v3_checksum_as_v2",
        ],
    ),
    ("authentication", &["auth_type", "auth_pass"]),
    (
        "vrrp_script",
        &[
            "script",
            "interval",
            "timeout",
            "weight",
            "rise",
            "fall",
            "user",
            "init_fail",
        ],
    ),
    (
        "vrrp_track_process",
        &[
            "process",
            "weight",
            "quorum",
            "quorum_max",
            "delay",
            "param_match",
            "full_command",
        ],
    ),
    ("track_file", &["file", "weight", "init_file"]),
    (
        "vrrp_sync_group",
        &[
            "group",
            "notify",
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
            "sync_group_tracking_weight",
        ],
    ),
];

/// Blocks whose lines are values, not keywords; their options are checked separately.
const VALUE_BLOCKS: &[&str] = &[
    "group",
    "unicast_peer",
    "track_interface",
    "track_script",
    "track_process",
    "track_file",
];

/// Address options xvrrpd applies.
const APPLIED_ADDRESS_OPTIONS: &[&str] = &["dev", "label", "scope", "brd", "broadcast"];

fn corpus() -> Vec<PathBuf> {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files = Vec::new();
    let mut pending = vec![tests.join("corpus"), tests.join("configs/valid")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "conf") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Every (file, line, keyword) that is neither applied nor reported.
fn silent(path: &Path) -> Vec<String> {
    let Ok(loaded) = super::load_with(path, &AnyHost) else {
        return Vec::new(); // unreadable: reported as a whole
    };
    let reported: BTreeSet<(PathBuf, u32)> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.file.clone(), d.line))
        .collect();
    let mut diags = Diagnostics::default();
    let lexed = lexer::lex_file(path, &mut diags).unwrap();
    let nodes = syntax::parse(lexed.lines, &mut diags);
    let mut missing = Vec::new();
    walk("", &nodes, &reported, &mut missing);
    missing
}

fn walk(context: &str, nodes: &[Node], reported: &BTreeSet<(PathBuf, u32)>, out: &mut Vec<String>) {
    let applied = APPLIED
        .iter()
        .find(|(c, _)| *c == context)
        .map(|(_, k)| *k)
        .unwrap_or_default();
    for node in nodes {
        let line = (node.at().file.clone(), node.at().line);
        let said = reported.contains(&line);
        if !applied.contains(&node.name()) {
            if !said {
                out.push(format!(
                    "{}: {} in {}",
                    node.at(),
                    node.name(),
                    context_name(context)
                ));
            }
            continue;
        }
        match node.name() {
            "virtual_ipaddress" => {
                for entry in node.children() {
                    for option in &entry.args {
                        let value = entry
                            .args
                            .iter()
                            .position(|a| a == option)
                            .and_then(|i| i.checked_sub(1))
                            .map(|i| entry.args[i].text.as_str());
                        let is_value = value.is_some_and(|v| APPLIED_ADDRESS_OPTIONS.contains(&v));
                        if !is_value
                            && !APPLIED_ADDRESS_OPTIONS.contains(&option.text.as_str())
                            && !reported.contains(&(option.at.file.clone(), option.at.line))
                        {
                            out.push(format!("{}: address option {}", option.at, option.text));
                        }
                    }
                }
            }
            name if VALUE_BLOCKS.contains(&name) => {}
            name => walk(name, node.children(), reported, out),
        }
    }
}

fn context_name(context: &str) -> &str {
    if context.is_empty() {
        "the top level"
    } else {
        context
    }
}

#[test]
fn no_keyword_of_the_corpus_is_accepted_silently() {
    let files = corpus();
    assert!(files.len() > 90, "only {} files", files.len());
    let silent: Vec<String> = files.iter().flat_map(|f| silent(f)).collect();
    assert!(
        silent.is_empty(),
        "accepted without an effect or a message:\n{}",
        silent.join("\n")
    );
}
