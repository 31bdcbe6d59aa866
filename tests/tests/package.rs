//! The Debian package on this very machine: lintian, `dpkg -i`, every file where the
//! unit and the man pages say, `systemd-analyze verify`, `xvrrpd check` through the
//! installed binary, then `dpkg --purge` and nothing left.
//!
//! `cargo xtask test` builds the package first and passes it as `$XVRRPD_DEB`
//! (else target/debian/xvrrpd_VERSION-1_amd64.deb from `cargo xtask package`).
//! The machine is left as found, also when an assertion fails: a guard purges the
//! package. The service is never started: the test checks that no xvrrpd process runs
//! from /usr/sbin, and where systemd runs it denies starts through policy-rc.d as
//! Debian's tools expect, unless a policy is already in place.

use std::{
    collections::BTreeSet,
    fs,
    os::unix::{fs::PermissionsExt, io::AsRawFd},
    path::{Path, PathBuf},
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use tests::{veth, Netns};

const PACKAGE: &str = "xvrrpd";
const BINARY: &str = "/usr/sbin/xvrrpd";
const UNIT: &str = "/usr/lib/systemd/system/xvrrpd.service";
const EXAMPLE: &str = "/usr/share/doc/xvrrpd/examples/keepalived.conf";
const LVS_EXAMPLE: &str = "/usr/share/doc/xvrrpd/examples/keepalived-lvs.service";
const KEEPALIVED_CONF: &str = "/etc/keepalived/keepalived.conf";
const WANTS: &str = "/etc/systemd/system/multi-user.target.wants";
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";
/// Where a package's files and dpkg's and deb-systemd-helper's records of it live.
const SEARCHED_FOR_LEFTOVERS: &[&str] = &["/etc", "/usr", "/var/lib/dpkg/info", "/var/lib/systemd"];

#[test]
fn package_installs_where_its_unit_and_pages_say_and_purges_clean() -> Result<()> {
    tests::require_root!();
    let deb = package_file()?;
    // Two worktrees' suites can run at once on this machine: one installs at a time.
    let _lock = lock("/run/lock/xvrrpd-package-test.lock")?;
    assert_eq!(
        installed_status()?,
        None,
        "package {PACKAGE} is already on this machine; this test installs and purges its own \
         build and leaves other installs alone: `dpkg --purge {PACKAGE}` first"
    );

    // lintian as Debian's archive would run it: errors and warnings fail.
    let lintian = Command::new("lintian")
        .args(["--fail-on", "error,warning"])
        .arg(&deb)
        .output()
        .context("running lintian")?;
    assert!(
        lintian.status.success(),
        "lintian: {}{}",
        text(&lintian.stdout),
        text(&lintian.stderr)
    );

    let before = leftovers()?;
    let expect_enabled = postinst_should_enable();
    let _no_start = DenyServiceStarts::install()?;
    let mut installed = Installed::new(&deb)?;
    let dpkg_out = installed.output.clone();

    // The postinst's decision, and no daemon started by it.
    assert_eq!(
        Path::new(WANTS).join("xvrrpd.service").exists(),
        expect_enabled,
        "xvrrpd.service enabled state after install (config present and keepalived not \
         in use: {expect_enabled}); dpkg said:\n{dpkg_out}"
    );
    if !expect_enabled {
        assert!(
            dpkg_out.contains("xvrrpd: not started:"),
            "the postinst should say why it did not start xvrrpd:\n{dpkg_out}"
        );
    }
    assert_eq!(
        processes_running(BINARY),
        Vec::<i32>::new(),
        "installing must not start the daemon"
    );

    // The unit: its commands and environment file exist, its man pages resolve.
    let unit = fs::read_to_string(UNIT).with_context(|| format!("reading {UNIT}"))?;
    let mut commands = 0;
    for (key, value) in unit_settings(&unit) {
        match key {
            "ExecStart" | "ExecStartPre" | "ExecStopPost" => {
                let program = value.split_whitespace().next().unwrap_or_default();
                assert_eq!(program, BINARY, "{key} in {UNIT}");
                commands += 1;
            }
            "EnvironmentFile" => {
                let file = value.trim_start_matches('-');
                assert!(
                    Path::new(file).is_file(),
                    "{UNIT}: EnvironmentFile {file} missing"
                );
                let content = fs::read_to_string(file)?;
                assert!(
                    content.contains("XVRRPD_CONFIG=") && content.contains("DAEMON_ARGS="),
                    "{file} sets what the unit uses:\n{content}"
                );
            }
            "Documentation" => {
                for page in value.split_whitespace() {
                    let (name, section) = man_reference(page)
                        .with_context(|| format!("{UNIT}: Documentation={page}"))?;
                    assert_man_page(name, section)?;
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        commands, 3,
        "ExecStartPre (check), ExecStart and ExecStopPost (cleanup) in {UNIT}"
    );
    assert!(
        is_executable(Path::new(BINARY)),
        "{BINARY} is not executable"
    );
    // The unit, and the example that runs keepalived's LVS checker beside it.
    for (unit, name) in [(UNIT, "xvrrpd"), (LVS_EXAMPLE, "keepalived-lvs")] {
        let verify = Command::new("systemd-analyze")
            .args(["verify", unit])
            .output()
            .context("running systemd-analyze verify")?;
        let complaints: Vec<&str> = std::str::from_utf8(&verify.stderr)?
            .lines()
            .filter(|l| l.contains(name))
            .collect();
        assert!(
            verify.status.success() && complaints.is_empty(),
            "systemd-analyze verify {unit} ({}): {}",
            verify.status,
            text(&verify.stderr)
        );
    }

    // Every page the package promises, and every file the main page lists.
    for (name, section) in [
        ("xvrrpd", "8"),
        ("xvrrpd-check", "8"),
        ("xvrrpd-run", "8"),
        ("xvrrpd-record", "8"),
        ("xvrrpd-peers", "8"),
        ("xvrrpd.conf", "5"),
    ] {
        assert_man_page(name, section)?;
    }
    let listed = man_files_section("/usr/share/man/man8/xvrrpd.8.gz")?;
    for path in [UNIT, "/etc/default/xvrrpd", EXAMPLE, KEEPALIVED_CONF] {
        assert!(
            listed.iter().any(|l| l == path),
            "xvrrpd(8) FILES does not list {path}: {listed:?}"
        );
    }
    for path in &listed {
        // The configuration is the administrator's and pins exist while the daemon runs.
        if path == KEEPALIVED_CONF || path.starts_with("/sys/") {
            continue;
        }
        assert!(
            Path::new(path).exists(),
            "xvrrpd(8) lists {path}, which is not installed"
        );
    }

    // The completions, where each shell looks, and bash's actually completes.
    for path in [
        "/usr/share/bash-completion/completions/xvrrpd",
        "/usr/share/zsh/vendor-completions/_xvrrpd",
        "/usr/share/fish/vendor_completions.d/xvrrpd.fish",
    ] {
        assert!(Path::new(path).is_file(), "{path} missing");
    }
    let completed = tests::output(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/xvrrpd; \
         COMP_WORDS=(xvrrpd ch); COMP_CWORD=1; COMP_LINE='xvrrpd ch'; COMP_POINT=9; \
         _xvrrpd xvrrpd ch xvrrpd; echo \"${COMPREPLY[*]}\"",
    ]))?;
    assert_eq!(completed.trim(), "check", "bash completion of `xvrrpd ch`");

    let version = tests::output(Command::new(BINARY).arg("--version"))?;
    assert_eq!(
        version.trim(),
        format!("xvrrpd {}", env!("CARGO_PKG_VERSION")),
        "{BINARY} --version"
    );

    // `xvrrpd check` through the installed binary, on the example it ships, on a host
    // that has the example's interface; then a broken copy is refused with file:line.
    let host = Netns::new()?;
    let other = Netns::new()?;
    veth(&host, "eth0", &other, "eth1")?;
    let check = |file: &str| -> Result<Output> {
        host.command(BINARY)
            .args(["check", "-f", file])
            .output()
            .context("running xvrrpd check")
    };
    let good = check(EXAMPLE)?;
    assert!(
        good.status.success(),
        "xvrrpd check -f {EXAMPLE}: {}\n{}",
        good.status,
        text(&good.stderr)
    );
    let dir = tests::TempDir::new("package")?;
    let broken = dir.path("keepalived.conf");
    let example = fs::read_to_string(EXAMPLE)?;
    fs::write(
        &broken,
        example.replace("virtual_router_id 51", "virtual_router_id 300"),
    )?;
    let line = example
        .lines()
        .position(|l| l.contains("virtual_router_id 51"))
        .context("the example sets virtual_router_id 51")?
        + 1;
    let bad = check(broken.to_str().context("temp path is UTF-8")?)?;
    let stderr = text(&bad.stderr);
    assert_eq!(bad.status.code(), Some(5), "broken config: {stderr}");
    assert!(
        stderr.contains(&format!("{}:{line}", broken.display()))
            && stderr.contains("virtual_router_id"),
        "the error should name {}:{line} and the keyword: {stderr}",
        broken.display()
    );

    // Purge, and nothing of the package is left anywhere it could have written.
    installed.purge()?;
    assert_eq!(
        installed_status()?,
        None,
        "dpkg still knows {PACKAGE} after purge"
    );
    let after = leftovers()?;
    let left: Vec<_> = after.difference(&before).collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    Ok(())
}

/// The .deb under test: `$XVRRPD_DEB`, else the one `cargo xtask package` writes.
fn package_file() -> Result<PathBuf> {
    let deb = std::env::var_os("XVRRPD_DEB")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
                "../target/debian/xvrrpd_{}-1_amd64.deb",
                env!("CARGO_PKG_VERSION")
            ))
        });
    if !deb.is_file() {
        bail!(
            "{} not found: run `cargo xtask package` (or `cargo xtask test`, which builds it)",
            deb.display()
        );
    }
    Ok(deb)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An exclusive flock held until dropped (the file itself stays; it is empty).
struct Lock(fs::File);

fn lock(path: &str) -> Result<Lock> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {path}"))?;
    // SAFETY: flock on a descriptor we own; blocks until the other holder is done.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!("flock {path}: {}", std::io::Error::last_os_error());
    }
    Ok(Lock(file))
}

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: as above; closing the file would release it too.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// dpkg's status of the package, None when dpkg has no record of it at all.
fn installed_status() -> Result<Option<String>> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}", PACKAGE])
        .output()
        .context("running dpkg-query")?;
    let status = text(&out.stdout).trim().to_owned();
    // "un" (unknown, not installed) is what dpkg says of a purged package it still lists.
    Ok((out.status.success() && !status.is_empty() && !status.starts_with("un")).then_some(status))
}

/// Paths named after the package wherever a package, dpkg or deb-systemd-helper writes.
fn leftovers() -> Result<BTreeSet<String>> {
    let out = Command::new("find")
        .args(SEARCHED_FOR_LEFTOVERS)
        .args(["-xdev", "-name", "*xvrrpd*"])
        .output()
        .context("running find")?;
    // find reports unreadable or vanishing directories (others' builds) and goes on.
    Ok(text(&out.stdout).lines().map(str::to_owned).collect())
}

/// The postinst's rule: enable (and start) on first install only when the configured
/// file has content and keepalived is neither enabled nor running.
fn postinst_should_enable() -> bool {
    let config_present = fs::metadata(KEEPALIVED_CONF).is_ok_and(|m| m.len() > 0);
    let keepalived_enabled = Path::new(WANTS).join("keepalived.service").exists();
    let keepalived_active = systemd_running()
        && Command::new("systemctl")
            .args(["--quiet", "is-active", "keepalived.service"])
            .status()
            .is_ok_and(|s| s.success());
    config_present && !keepalived_enabled && !keepalived_active
}

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Where systemd runs and no policy is in place, a policy-rc.d that denies every start
/// (exit 101, which deb-systemd-invoke honours) for as long as this value lives.
struct DenyServiceStarts {
    created: bool,
}

impl DenyServiceStarts {
    fn install() -> Result<Self> {
        if !systemd_running() || Path::new(POLICY_RC_D).exists() {
            return Ok(Self { created: false });
        }
        fs::write(
            POLICY_RC_D,
            "#!/bin/sh\n# xvrrpd's package test: no service starts while it installs.\nexit 101\n",
        )
        .with_context(|| format!("writing {POLICY_RC_D}"))?;
        fs::set_permissions(POLICY_RC_D, fs::Permissions::from_mode(0o755))?;
        Ok(Self { created: true })
    }
}

impl Drop for DenyServiceStarts {
    fn drop(&mut self) {
        if self.created {
            let _ = fs::remove_file(POLICY_RC_D);
        }
    }
}

/// The package installed by this test; purged when dropped if the test did not.
struct Installed {
    /// What dpkg and the maintainer scripts printed.
    output: String,
    purged: bool,
}

impl Installed {
    fn new(deb: &Path) -> Result<Self> {
        // Built before dpkg runs, so a failed install is purged as far as it got.
        let mut this = Self {
            output: String::new(),
            purged: false,
        };
        this.output = dpkg(&["-i".as_ref(), deb.as_os_str()])?;
        Ok(this)
    }

    fn purge(&mut self) -> Result<()> {
        dpkg(&["--purge".as_ref(), PACKAGE.as_ref()])?;
        self.purged = true;
        Ok(())
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if !self.purged {
            let _ = dpkg(&["--purge".as_ref(), PACKAGE.as_ref()]);
        }
    }
}

/// Runs dpkg, waiting up to two minutes for a lock another apt or dpkg holds.
fn dpkg(args: &[&std::ffi::OsStr]) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = Command::new("dpkg")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(args)
            .output()
            .context("running dpkg")?;
        let stderr = text(&out.stderr);
        if out.status.success() {
            return Ok(format!("{}{stderr}", text(&out.stdout)));
        }
        if stderr.contains("lock") && Instant::now() < deadline {
            thread::sleep(Duration::from_secs(2));
            continue;
        }
        bail!(
            "dpkg {args:?} failed ({}): {}{stderr}",
            out.status,
            text(&out.stdout)
        );
    }
}

/// `Key=value` lines of a unit file, comments and sections skipped.
fn unit_settings(unit: &str) -> Vec<(&str, &str)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with(';') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// `man:NAME(SECTION)` as systemd writes it.
fn man_reference(uri: &str) -> Result<(&str, &str)> {
    let page = uri.strip_prefix("man:").context("not a man: URI")?;
    let (name, rest) = page.split_once('(').context("no (section)")?;
    Ok((name, rest.trim_end_matches(')')))
}

/// `man -w` finds the page in the package's man directory, and it renders.
fn assert_man_page(name: &str, section: &str) -> Result<()> {
    let path = tests::output(Command::new("man").args(["-w", section, name]))
        .with_context(|| format!("man -w {section} {name}"))?;
    let path = path.trim();
    assert_eq!(
        path,
        format!("/usr/share/man/man{section}/{name}.{section}.gz"),
        "{name}({section})"
    );
    let rendered = Command::new("man")
        .args(["-P", "cat", section, name])
        .env("MANWIDTH", "80")
        .output()?;
    assert!(
        rendered.status.success() && text(&rendered.stdout).contains("NAME"),
        "man {section} {name} does not render: {}",
        text(&rendered.stderr)
    );
    Ok(())
}

/// The paths of a page's FILES section (`.TP` terms; bold or italic).
fn man_files_section(page: &str) -> Result<Vec<String>> {
    let source = tests::output(Command::new("zcat").arg(page))?;
    let mut in_files = false;
    let mut paths = Vec::new();
    for line in source.lines() {
        if let Some(heading) = line.strip_prefix(".SH") {
            in_files = heading.trim().trim_matches('"') == "FILES";
            continue;
        }
        if !in_files {
            continue;
        }
        let plain = line
            .replace("\\fB", "")
            .replace("\\fI", "")
            .replace("\\fR", "")
            .replace("\\fP", "")
            .replace("\\-", "-");
        let plain = plain
            .trim_start_matches(".B ")
            .trim_start_matches(".I ")
            .trim();
        if plain.starts_with('/') && !plain.contains(' ') {
            paths.push(plain.to_owned());
        }
    }
    if paths.is_empty() {
        bail!("{page}: no FILES section with paths");
    }
    Ok(paths)
}

/// Pids whose executable is `path`.
fn processes_running(path: &str) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == Path::new(path))
        })
        .collect()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
