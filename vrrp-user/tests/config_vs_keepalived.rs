//! Runs `keepalived -t -f FILE` (keepalived 2.2.7 is the reference) on every sample in
//! tests/configs and checks that `xvrrpd check` accepts and rejects the same files with
//! the same exit code. Skipped, with a note, where keepalived is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use xvrrpd::check::{self, CheckArgs};

/// Where we reject on purpose what `keepalived -t` (without `-e`) lets through.
const DELIBERATE_DIFFERENCES: &[(&str, &str)] = &[
    (
        "invalid/missing_include.conf",
        "keepalived notes a missing include and exits 0",
    ),
    (
        "invalid/include_cycle.conf",
        "keepalived reads until it runs out of file descriptors and exits 0",
    ),
];

fn keepalived() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("keepalived"))
        .find(|candidate| candidate.is_file())
}

fn samples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    let mut files = Vec::new();
    for kind in ["valid", "invalid"] {
        for entry in std::fs::read_dir(root.join(kind)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "conf") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn keepalived_exit(keepalived: &Path, file: &Path) -> i32 {
    // -t logs to stderr only; -n keeps it in the foreground in every version.
    let output = Command::new(keepalived)
        .args(["-t", "-n", "-f"])
        .arg(file)
        .output()
        .expect("keepalived runs");
    output.status.code().unwrap_or(-1)
}

#[test]
fn xvrrpd_check_agrees_with_keepalived_t() {
    let Some(keepalived) = keepalived() else {
        println!("skipped: keepalived is not installed");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    let mut disagreements = Vec::new();
    let mut compared = 0;
    for file in samples() {
        let relative = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let theirs = keepalived_exit(&keepalived, &file);
        let args = CheckArgs {
            file: file.clone(),
            dump: false,
            json: false,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let ours = check::run(&args, &mut out, &mut err);
        compared += 1;
        if let Some((_, why)) = DELIBERATE_DIFFERENCES.iter().find(|(f, _)| *f == relative) {
            println!("{relative}: keepalived {theirs}, xvrrpd {ours} (deliberate: {why})");
            assert_eq!(
                theirs, 0,
                "{relative}: keepalived changed; revisit DELIBERATE_DIFFERENCES"
            );
            assert_ne!(ours, 0, "{relative}");
            continue;
        }
        println!("{relative}: keepalived {theirs}, xvrrpd {ours}");
        if theirs != ours {
            disagreements.push(format!(
                "{relative}: keepalived -t exits {theirs}, xvrrpd check {ours}\n{}",
                String::from_utf8_lossy(&err)
            ));
        }
    }
    assert!(compared > 30, "only {compared} samples");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
