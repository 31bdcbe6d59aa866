//! No keyword is accepted silently, in real files: for every configuration in the test
//! corpus, each keyword (and each option of an address line) is either one the keyword
//! table ([`super::keywords`]) says xvrrpd applies, or one `xvrrpd check` says something
//! about at its line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::diagnostic::Diagnostics;
use super::keywords::{applied_in, Block};
use super::syntax::{self, Node};
use super::{lexer, AnyHost};

/// Blocks whose lines are values, not keywords.
const VALUE_BLOCKS: &[&str] = &[
    "group",
    "unicast_peer",
    "track_interface",
    "track_script",
    "track_process",
    "track_file",
    "virtual_routes",
    "virtual_rules",
    "static_routes",
    "static_rules",
];

/// The table's block for keywords written inside `context`.
fn block_of(context: &str) -> Option<Block> {
    Some(match context {
        "" => Block::Top,
        "global_defs" => Block::GlobalDefs,
        "vrrp_instance" => Block::Instance,
        "authentication" => Block::Authentication,
        "vrrp_script" => Block::Script,
        "vrrp_track_process" => Block::TrackProcess,
        "track_file" | "vrrp_track_file" => Block::TrackFile,
        "vrrp_sync_group" => Block::SyncGroup,
        _ => return None,
    })
}

fn applied(context: &str, keyword: &str) -> bool {
    block_of(context).is_some_and(|b| applied_in(b).any(|k| k == keyword))
}

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
    let address_options: Vec<&str> = applied_in(Block::AddressOption).collect();
    for node in nodes {
        let line = (node.at().file.clone(), node.at().line);
        let said = reported.contains(&line);
        if !applied(context, node.name()) {
            if !said {
                out.push(format!(
                    "{}: {} in {}",
                    node.at(),
                    node.name(),
                    if context.is_empty() {
                        "the top level"
                    } else {
                        context
                    }
                ));
            }
            continue;
        }
        match node.name() {
            "virtual_ipaddress" | "virtual_ipaddress_excluded" | "static_ipaddress" => {
                for entry in node.children() {
                    for (k, option) in entry.args.iter().enumerate() {
                        // A value of an applied option (`dev eth1`) is not an option.
                        let is_value = k.checked_sub(1).is_some_and(|p| {
                            address_options.contains(&entry.args[p].text.as_str())
                        });
                        if !is_value
                            && !address_options.contains(&option.text.as_str())
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
