//! `xvrrpd check` against `keepalived -t` (keepalived 2.2.7 is the reference) on every
//! configuration in tests/configs and tests/corpus.
//!
//! Each file runs in a network namespace that has the interfaces it names (veth links:
//! this kernel kind has no dummy module) and in a private mount namespace where the
//! script directories are empty tmpfs holding only the scripts the file's header asks for,
//! so the outcome depends on the file, not on the machine. Both tools run the same way;
//! the test compares exit codes and the file:line of every finding keepalived locates,
//! prints a table and the agreement rate, and requires ≥ 95 %. Every file where they
//! differ must be in [`KNOWN_DIFFERENCES`] with its reason, and every entry there must
//! still differ.
//!
//! Corpus file header lines (comments to keepalived):
//! - `# xvrrpd-test: interfaces eth0 eth1` (default: eth0 eth1)
//! - `# xvrrpd-test: script /etc/keepalived/check.sh [MODE]` (an executable `exit 0`
//!   script, root-owned, mode 0755 unless given)
//!
//! Root only (namespaces, mounts); skipped with a note otherwise or without keepalived.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Files where `xvrrpd check` deliberately or knowingly answers differently, and why.
/// Paths are relative to vrrp-user/tests.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "configs/invalid/missing_include.conf",
        "keepalived notes a missing include and exits 0; xvrrpd refuses to run a \
         configuration with a part missing (exit 4)",
    ),
    (
        "configs/invalid/include_cycle.conf",
        "keepalived reads the cycle until it runs out of file descriptors and exits 0; \
         xvrrpd reports the cycle (exit 4)",
    ),
    (
        "corpus/repro/script_user_non_root.conf",
        "keepalived -t kills itself with SIGTERM (143) when it checks a script that runs as \
         a non-root user: check_script_secure compares main_pid, which -t leaves unset, with \
         its parent's pid (a keepalived bug). xvrrpd exits as keepalived's checks would: \
         SECURITY VIOLATION (6)",
    ),
];

/// The agreement the corpus must keep.
const MIN_AGREEMENT: f64 = 0.95;

/// Directories that may be replaced by an empty tmpfs for a run (they exist on Debian
/// with keepalived installed, and nothing either tool needs lives there).
const SCRIPT_DIRS: &[&str] = &[
    "/etc/keepalived",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/libexec",
];

/// PATH for both tools: bare script names resolve the same way for each.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn keepalived() -> Option<PathBuf> {
    [
        "/usr/sbin/keepalived",
        "/sbin/keepalived",
        "/usr/local/sbin/keepalived",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![
        tests_dir().join("configs/valid"),
        tests_dir().join("configs/invalid"),
        tests_dir().join("corpus"),
    ];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            // Included fragments live in subdirectories named `*.d` or `include`.
            if path.is_dir() && !is_fragment_dir(&path) {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "conf")
                && !is_fragment_dir(path.parent().unwrap())
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn is_fragment_dir(dir: &Path) -> bool {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.ends_with(".d") || name == "include" || name == "cycle"
}

/// What a file's header asks of the lab.
#[derive(Debug, Default)]
struct Lab {
    interfaces: Vec<String>,
    scripts: Vec<(String, String)>,
}

impl Lab {
    fn for_file(path: &Path) -> Lab {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lab = Lab::default();
        for line in text.lines() {
            let Some(directive) = line.trim().strip_prefix("# xvrrpd-test:") else {
                continue;
            };
            let mut words = directive.split_whitespace();
            match words.next() {
                Some("interfaces") => lab.interfaces.extend(words.map(String::from)),
                Some("script") => {
                    let path = words.next().expect("script needs a path").to_string();
                    let mode = words.next().unwrap_or("0755").to_string();
                    assert!(
                        SCRIPT_DIRS.iter().any(|d| Path::new(&path).starts_with(d)),
                        "{}: script {path} must live under one of {SCRIPT_DIRS:?}",
                        path
                    );
                    lab.scripts.push((path, mode));
                }
                other => panic!("{}: unknown directive {other:?}", path.display()),
            }
        }
        if lab.interfaces.is_empty() {
            lab.interfaces = vec!["eth0".into(), "eth1".into()];
        }
        lab
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A network namespace (`xvck-<pid>-<n>`) with veth links of the given names; deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(interfaces: &[String]) -> Netns {
        let name = format!(
            "xvck-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        for (i, interface) in interfaces.iter().enumerate() {
            let peer = format!("xvckp{i}");
            run_ok(Command::new("ip").args([
                "-n", &ns.name, "link", "add", interface, "type", "veth", "peer", "name", &peer,
            ]));
            run_ok(Command::new("ip").args(["-n", &ns.name, "link", "set", interface, "up"]));
            run_ok(Command::new("ip").args(["-n", &ns.name, "link", "set", &peer, "up"]));
        }
        ns
    }

    /// Runs `program args` in the namespace, with the script directories emptied and the
    /// lab's scripts in place; returns (exit code, stdout, stderr).
    fn run(&self, lab: &Lab, program: &Path, args: &[&str], cwd: &Path) -> (i32, String, String) {
        let mut prelude = String::from("set -e\n");
        for dir in SCRIPT_DIRS.iter().filter(|d| Path::new(d).is_dir()) {
            prelude.push_str(&format!("mount -t tmpfs -o mode=0755 xvck {dir}\n"));
        }
        for (path, mode) in &lab.scripts {
            let dir = Path::new(path).parent().unwrap().display().to_string();
            prelude.push_str(&format!(
                "mkdir -p '{dir}'\nprintf '#!/bin/sh\\nexit 0\\n' > '{path}'\nchmod {mode} '{path}'\n"
            ));
        }
        prelude.push_str("exec \"$@\"\n");
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "env", "-i"])
            .arg(format!("PATH={PATH}"))
            .args(["sh", "-c", &prelude, "sh"])
            .arg(program)
            .args(args)
            .current_dir(cwd)
            .output()
            .expect("ip netns exec runs");
        (
            // Killed by a signal: 128 + its number, as a shell shows it.
            out.status
                .code()
                .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0)),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (file name, line) of a finding.
type Spot = (String, u32);

#[derive(Debug)]
struct Outcome {
    exit: i32,
    /// Where the findings the tool locates were written.
    located: BTreeSet<Spot>,
    /// For the table: what the tool said.
    text: String,
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// keepalived prints `(FILE: Line N) message` or, for the main file on its first pass,
/// `(Line N) message`.
fn keepalived_outcome(exit: i32, stderr: &str, main: &Path) -> Outcome {
    let main_name = file_name(&main.to_string_lossy());
    let mut located = BTreeSet::new();
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix('(') else {
            continue;
        };
        let Some(close) = rest.find(')') else {
            continue;
        };
        let inside = &rest[..close];
        let (file, number) = match inside.rsplit_once(": Line ") {
            Some((file, number)) => (file_name(file), number),
            None => match inside.strip_prefix("Line ") {
                Some(number) => (main_name.clone(), number),
                None => continue,
            },
        };
        if let Ok(number) = number.trim().parse() {
            located.insert((file, number));
        }
    }
    let mut seen = BTreeSet::new();
    let text = stderr
        .lines()
        .filter(|l| seen.insert(l.to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    Outcome {
        exit,
        located,
        text,
    }
}

fn xvrrpd_outcome(exit: i32, stdout: &str, stderr: &str) -> Outcome {
    let report: serde_json::Value = serde_json::from_str(stdout).unwrap_or_else(|e| {
        panic!("xvrrpd check --json printed no JSON ({e}): {stdout}\n{stderr}")
    });
    assert_eq!(
        report["exit_code"], exit,
        "the JSON exit code is the process's"
    );
    let mut located = BTreeSet::new();
    for d in report["diagnostics"].as_array().unwrap() {
        if d["keepalived"] != "Silent" && d["keepalived_located"] == true {
            located.insert((
                file_name(d["file"].as_str().unwrap()),
                d["line"].as_u64().unwrap() as u32,
            ));
        }
    }
    Outcome {
        exit,
        located,
        text: stderr.trim_end().to_string(),
    }
}

/// keepalived stops at a missing parameter (exit 2) and never reports what follows; xvrrpd
/// lists everything, so then only keepalived's findings must be among xvrrpd's.
fn agree(keepalived: &Outcome, xvrrpd: &Outcome) -> bool {
    if keepalived.exit != xvrrpd.exit {
        return false;
    }
    if keepalived.exit == 2 {
        keepalived.located.is_subset(&xvrrpd.located)
    } else {
        keepalived.located == xvrrpd.located
    }
}

fn spots(set: &BTreeSet<Spot>) -> String {
    set.iter()
        .map(|(f, l)| format!("{f}:{l}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn xvrrpd_check_agrees_with_keepalived_t() {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root (network and mount namespaces)");
        return;
    }
    let Some(keepalived) = keepalived() else {
        println!("skipped: keepalived is not installed");
        return;
    };
    let xvrrpd = PathBuf::from(env!("CARGO_BIN_EXE_xvrrpd"));
    let files = corpus_files();
    assert!(files.len() >= 60, "only {} files", files.len());

    let mut agreed = 0;
    let mut exit_agreed = 0;
    let mut unexplained = Vec::new();
    let mut explained = Vec::new();
    println!("{:<58} {:>4} {:>4}  verdict", "file", "kad", "xv");
    for file in &files {
        let relative = file
            .strip_prefix(tests_dir())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let lab = Lab::for_file(file);
        let ns = Netns::new(&lab.interfaces);
        let cwd = file.parent().unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        let (code, _, err) = ns.run(&lab, &keepalived, &["-t", "-n", "-f", name], cwd);
        let theirs = keepalived_outcome(code, &err, file);
        let (code, out, err) = ns.run(&lab, &xvrrpd, &["check", "--json", "-f", name], cwd);
        let ours = xvrrpd_outcome(code, &out, &err);
        drop(ns);

        let same = agree(&theirs, &ours);
        agreed += usize::from(same);
        exit_agreed += usize::from(theirs.exit == ours.exit);
        let known = KNOWN_DIFFERENCES.iter().find(|(f, _)| *f == relative);
        let verdict = match (same, known) {
            (true, None) => "agree".to_string(),
            (false, Some((_, why))) => format!("differ (known: {why})"),
            (true, Some(_)) => "agree, but listed as a known difference".to_string(),
            (false, None) => "DIFFER".to_string(),
        };
        println!(
            "{relative:<58} {:>4} {:>4}  {verdict}",
            theirs.exit, ours.exit
        );
        if !same {
            let detail = format!(
                "{relative}: keepalived -t exits {} at [{}], xvrrpd check {} at [{}]\n--- keepalived:\n{}\n--- xvrrpd:\n{}\n",
                theirs.exit,
                spots(&theirs.located),
                ours.exit,
                spots(&ours.located),
                theirs.text,
                ours.text
            );
            if known.is_some() {
                explained.push(detail);
            } else {
                unexplained.push(detail);
            }
        }
        if same && known.is_some() {
            unexplained.push(format!(
                "{relative}: now agrees; remove it from KNOWN_DIFFERENCES\n"
            ));
        }
    }
    let rate = agreed as f64 / files.len() as f64;
    println!(
        "agreement: {agreed}/{} files ({:.1} %): exit code and every located finding; exit code alone {exit_agreed}/{} ({:.1} %)",
        files.len(),
        rate * 100.0,
        files.len(),
        exit_agreed as f64 / files.len() as f64 * 100.0
    );
    for detail in &explained {
        println!("{detail}");
    }
    assert!(unexplained.is_empty(), "{}", unexplained.join("\n"));
    assert!(
        rate >= MIN_AGREEMENT,
        "agreement {:.1} % below {:.0} %",
        rate * 100.0,
        MIN_AGREEMENT * 100.0
    );
}
