//! `xvrrpd generate-docs` (hidden): the man pages and shell completions of this very
//! command line, so the package's documentation cannot drift from the flags it describes.
//!
//! Writes `OUT/man/xvrrpd.8`, one `OUT/man/xvrrpd-SUBCOMMAND.8` per visible subcommand,
//! and `OUT/completions/{xvrrpd.bash,_xvrrpd,xvrrpd.fish}`. `cargo xtask package`
//! runs it on the release binary; `xvrrpd.conf(5)` is written by hand (packaging/man/).

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use clap::Args;
use clap_complete::Shell;
use clap_mangen::{
    roff::{bold, italic, roman, Inline, Roff},
    Man,
};

#[derive(Args)]
pub struct GenerateDocsArgs {
    /// Directory to write `man/` and `completions/` into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// The pages' section: xvrrpd is a daemon and administration tool.
const SECTION: &str = "8";
const MANUAL: &str = "System Administration";

pub fn run(args: &GenerateDocsArgs, cmd: clap::Command) -> Result<()> {
    let mut completed = without_hidden(&cmd);
    let mut cmd = cmd.disable_help_subcommand(true);
    // Gives subcommands their `xvrrpd-check` page names and `xvrrpd check` synopses.
    cmd.build();
    let man_dir = args.out.join("man");
    let completion_dir = args.out.join("completions");
    for dir in [&man_dir, &completion_dir] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_file(&man_dir.join(format!("xvrrpd.{SECTION}")), |w| {
        main_page(&cmd, w)
    })?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = page(sub.clone());
        write_file(&man_dir.join(man.get_filename()), |w| {
            man.render(w)?;
            let mut r = Roff::new();
            see_also(&mut r, &format!("xvrrpd-{}", sub.get_name()));
            r.to_writer(w)
        })?;
    }
    for (shell, name) in [
        (Shell::Bash, "xvrrpd.bash"),
        (Shell::Zsh, "_xvrrpd"),
        (Shell::Fish, "xvrrpd.fish"),
    ] {
        write_file(&completion_dir.join(name), |w| {
            clap_complete::generate(shell, &mut completed, "xvrrpd", w);
            Ok(())
        })?;
    }
    println!(
        "wrote {} and {}",
        man_dir.display(),
        completion_dir.display()
    );
    Ok(())
}

/// The command line as completions should offer it: clap_complete lists hidden
/// subcommands and flags (this one, keepalived's no-op flags), which are not for typing.
fn without_hidden(cmd: &clap::Command) -> clap::Command {
    let mut visible = clap::Command::new(cmd.get_name().to_owned())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(
            cmd.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(without_hidden),
        );
    if cmd.is_args_conflicts_with_subcommands_set() {
        visible = visible.args_conflicts_with_subcommands(true);
    }
    if let Some(about) = cmd.get_about() {
        visible = visible.about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        visible = visible.version(version.to_owned());
    }
    visible
}

fn write_file(
    path: &Path,
    render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let mut buf = Vec::new();
    render(&mut buf).with_context(|| format!("rendering {}", path.display()))?;
    fs::write(path, buf).with_context(|| format!("writing {}", path.display()))
}

fn page(cmd: clap::Command) -> Man {
    let title = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_uppercase();
    Man::new(cmd)
        .title(title)
        .section(SECTION)
        .manual(MANUAL)
        .source(format!("xvrrpd {}", env!("CARGO_PKG_VERSION")))
}

/// xvrrpd(8): clap's synopsis, options and subcommand list around hand-written
/// sections that say what the flags cannot (what it is, signals, exit codes, files).
fn main_page(cmd: &clap::Command, w: &mut dyn Write) -> std::io::Result<()> {
    let man = page(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    description().to_writer(w)?;
    man.render_options_section(w)?;
    man.render_subcommands_section(w)?;
    reference().to_writer(w)?;
    man.render_version_section(w)
}

fn paragraph(roff: &mut Roff, text: impl Into<Vec<Inline>>) {
    roff.control("PP", []);
    roff.text(text);
}

/// A `.TP` entry: the term in bold, then its explanation.
fn term(roff: &mut Roff, name: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(name)]);
    roff.text([roman(text)]);
}

fn description() -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["DESCRIPTION"]);
    r.text([
        bold("xvrrpd"),
        roman(
            " is a VRRP daemon (RFC 3768 version 2, RFC 5798 version 3, IPv4 and IPv6) that \
             reads the VRRP part of an existing ",
        ),
        italic("keepalived.conf"),
        roman(
            " and interoperates with keepalived peers. Its receive path is an XDP program: \
             adverts are parsed, checked and time-stamped in the network driver's receive \
             hook, before the network stack, so a busy stack, a firewall rule or a starved \
             daemon cannot make a live master look dead.",
        ),
    ]);
    paragraph(
        &mut r,
        [
            roman("Without a subcommand it behaves as keepalived: "),
            bold("xvrrpd -f"),
            roman(" "),
            italic("FILE"),
            roman(" runs the daemon and "),
            bold("xvrrpd -t -f"),
            roman(" "),
            italic("FILE"),
            roman(
                " checks the file. keepalived's -n, -l, -D and -P are accepted and change \
                 nothing: xvrrpd always stays in the foreground, logs to standard error and \
                 does VRRP only.",
            ),
        ],
    );
    paragraph(
        &mut r,
        [roman(
            "Sections of keepalived.conf that are not VRRP (virtual_server, SMTP \
             notification) are skipped with a warning; run keepalived's checker beside \
             xvrrpd for them (keepalived --check).",
        )],
    );
    r
}

fn reference() -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["SIGNALS"]);
    term(
        &mut r,
        "SIGTERM, SIGINT",
        "Send a priority 0 advert for every instance that is master, remove the virtual \
         addresses, detach the XDP program, remove the pinned maps and exit 0.",
    );
    term(
        &mut r,
        "SIGHUP",
        "Read and check the configuration file again. Errors are reported and the running \
         configuration is kept.",
    );

    r.control("SH", ["EXIT STATUS"]);
    r.text([roman(
        "xvrrpd check and xvrrpd -t use keepalived -t's codes:",
    )]);
    term(&mut r, "0", "The configuration is valid.");
    term(&mut r, "4", "The file could not be read.");
    term(
        &mut r,
        "5",
        "The configuration has errors, or warnings keepalived would also report.",
    );
    term(
        &mut r,
        "6",
        "With enable_script_security: a script a non-root user could change.",
    );
    paragraph(
        &mut r,
        [roman(
            "The daemon exits 0 after SIGTERM and 1 when it cannot start (the reason is on \
             standard error).",
        )],
    );

    r.control("SH", ["ENVIRONMENT"]);
    term(
        &mut r,
        "XVRRPD_LOG",
        "Log filter in tracing's syntax (default info), e.g. debug or xvrrpd::engine=trace.",
    );

    r.control("SH", ["FILES"]);
    term(
        &mut r,
        "/etc/keepalived/keepalived.conf",
        "The configuration read by default: keepalived's own file. See xvrrpd.conf(5) for \
         the keywords xvrrpd supports.",
    );
    term(
        &mut r,
        "/etc/default/xvrrpd",
        "Read by the systemd unit: XVRRPD_CONFIG (the file to run) and DAEMON_ARGS (extra \
         arguments to xvrrpd run).",
    );
    term(
        &mut r,
        "/usr/lib/systemd/system/xvrrpd.service",
        "The systemd unit. It conflicts with keepalived.service: one VRRP daemon per host.",
    );
    term(
        &mut r,
        "/usr/share/doc/xvrrpd/examples/keepalived.conf",
        "A commented example configuration.",
    );
    term(
        &mut r,
        "/sys/fs/bpf/xvrrpd/v3/NAMESPACE/",
        "Maps pinned while the daemon runs (PEERS, COUNTERS, INSTANCES), readable with \
         bpftool map dump pinned. NAMESPACE is the network namespace's name, default on \
         the host.",
    );
    see_also(&mut r, "xvrrpd");
    r
}

/// SEE ALSO: the other pages of the package and what they build on, without `page` itself.
fn see_also(r: &mut Roff, page: &str) {
    r.control("SH", ["SEE ALSO"]);
    let own = format!("{page}({SECTION})");
    let list: Vec<&str> = [
        "xvrrpd(8)",
        "xvrrpd-check(8)",
        "xvrrpd-run(8)",
        "xvrrpd-record(8)",
        "xvrrpd-peers(8)",
        "xvrrpd.conf(5)",
        "keepalived(8)",
        "keepalived.conf(5)",
        "bpftool-map(8)",
    ]
    .into_iter()
    .filter(|p| *p != own)
    .collect();
    r.text([roman(list.join(", "))]);
}
