//! `cargo xtask setup`: installs what a fresh machine lacks, and nothing twice.
//!
//! The recipe is ../shared/TOOLCHAIN.md: a date-pinned nightly with rust-src
//! for the eBPF crate, bpf-linker 0.13 linked against that nightly's own
//! libLLVM 22 (cached, so the second run is instant), cargo-deb for the package
//! (cached the same way), Debian packages for the tests and the demo, and bpffs
//! mounted.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::run as exec;

pub const NIGHTLY: &str = "nightly-2026-05-20";
const BPF_LINKER_VERSION: &str = "0.13.0";
/// Builds the .deb (`cargo xtask package`); pinned so the package's layout cannot change
/// under us.
const CARGO_DEB_VERSION: &str = "3.8.0";
/// The nightly's bundled LLVM, which bpf-linker must link to.
const LLVM_DYLIB: &str = "LLVM-22-rust-1.97.0-nightly";
/// Debian packages: the interop peer, map inspection, captures, load tools.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("keepalived", "keepalived"),
    ("bpftool", "bpftool"),
    ("tcpdump", "tcpdump"),
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("nsenter", "util-linux"),
    ("stress-ng", "stress-ng"),
    // A real third-party XDP program (libxdp dispatcher) to share the NIC with.
    ("xdp-filter", "xdp-tools"),
    // The Debian package check.
    ("lintian", "lintian"),
];

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    base.join("xvrrpd")
}

pub fn bpf_linker_bin_dir() -> PathBuf {
    cache_dir()
        .join(format!("bpf-linker-{BPF_LINKER_VERSION}"))
        .join("bin")
}

pub fn cargo_deb_bin_dir() -> PathBuf {
    cache_dir()
        .join(format!("cargo-deb-{CARGO_DEB_VERSION}"))
        .join("bin")
}

pub fn run() -> Result<()> {
    nightly()?;
    bpf_linker()?;
    cargo_deb()?;
    debian_packages()?;
    bpffs();
    Ok(())
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn nightly() -> Result<()> {
    let have_toolchain = output(Command::new("rustup").args(["toolchain", "list"]))
        .map(|l| l.lines().any(|t| t.starts_with(NIGHTLY)))
        .unwrap_or(false);
    if !have_toolchain {
        eprintln!("setup: installing Rust {NIGHTLY} (for the eBPF crate)");
        exec(Command::new("rustup").args([
            "toolchain",
            "install",
            NIGHTLY,
            "--profile",
            "minimal",
        ]))
        .with_context(|| format!("rustup toolchain install {NIGHTLY}"))?;
    }
    let have_src = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        NIGHTLY,
    ]))
    .map(|l| l.lines().any(|c| c.starts_with("rust-src")))
    .unwrap_or(false);
    if !have_src {
        eprintln!("setup: adding rust-src to {NIGHTLY} (build-std=core for bpfel-unknown-none)");
        exec(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", NIGHTLY]))
            .with_context(|| format!("rustup component add rust-src --toolchain {NIGHTLY}"))?;
    }
    Ok(())
}

fn bpf_linker() -> Result<()> {
    let bin = bpf_linker_bin_dir().join("bpf-linker");
    if bin.is_file()
        && output(Command::new(&bin).arg("--version"))
            .is_some_and(|v| v.contains(BPF_LINKER_VERSION))
    {
        return Ok(());
    }
    let sysroot =
        output(Command::new("rustc").args([&format!("+{NIGHTLY}"), "--print", "sysroot"]))
            .context("rustc +nightly --print sysroot")?;
    let lib = Path::new(sysroot.trim()).join("lib");
    if !lib.join(format!("lib{LLVM_DYLIB}.so")).is_file() {
        bail!(
            "{} has no lib{LLVM_DYLIB}.so: the pinned nightly changed; update LLVM_DYLIB in xtask/src/setup.rs",
            lib.display()
        );
    }
    eprintln!("setup: building bpf-linker {BPF_LINKER_VERSION} against {NIGHTLY}'s libLLVM (about 4 minutes, once)");
    let root = bin
        .parent()
        .and_then(Path::parent)
        .expect("bin dir has a parent");
    let rustflags = format!(
        "-L {0} -l dylib={LLVM_DYLIB} -C link-arg=-Wl,-rpath,{0}",
        lib.display()
    );
    exec(
        Command::new("cargo")
            .env("RUSTFLAGS", rustflags)
            .env_remove("RUSTUP_TOOLCHAIN")
            .args([
                &format!("+{NIGHTLY}"),
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--no-default-features",
                "--features",
                "llvm-22,no-llvm-linking",
                "--force",
                "--root",
            ])
            .arg(root),
    )
    .context("cargo install bpf-linker")
}

fn cargo_deb() -> Result<()> {
    let bin = cargo_deb_bin_dir().join("cargo-deb");
    if bin.is_file()
        && output(Command::new(&bin).arg("--version"))
            .is_some_and(|v| v.contains(CARGO_DEB_VERSION))
    {
        return Ok(());
    }
    eprintln!("setup: building cargo-deb {CARGO_DEB_VERSION} (about 4 minutes, once)");
    let root = bin
        .parent()
        .and_then(Path::parent)
        .expect("bin dir has a parent");
    exec(
        Command::new("cargo")
            .args([
                "install",
                "cargo-deb",
                "--version",
                CARGO_DEB_VERSION,
                "--locked",
                "--force",
                "--root",
            ])
            .arg(root),
    )
    .context("cargo install cargo-deb")
}

fn debian_packages() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .filter(|(binary, _)| !on_path(binary))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("setup: installing Debian packages: {}", missing.join(" "));
    let apt = |args: &[&str]| {
        exec(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(args),
        )
    };
    apt(&["update", "-q"]).context("apt-get update (run setup as root)")?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args).with_context(|| format!("apt-get install {}", missing.join(" ")))
}

fn on_path(binary: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(binary).is_file())
}

/// bpffs on /sys/fs/bpf, so pinned maps can be inspected with bpftool.
fn bpffs() {
    let mounted = std::fs::read_to_string("/proc/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf") && l.contains(" bpf "))
        })
        .unwrap_or(false);
    if !mounted {
        // Best effort: xvrrpd mounts it itself when it needs it.
        let _ = Command::new("mount")
            .args(["-t", "bpf", "bpf", "/sys/fs/bpf"])
            .status();
    }
}
