//! `cargo xtask package`: the Debian package, built with cargo-deb.
//!
//! The release binary embeds the XDP object (vrrp-user/build.rs), so the eBPF build
//! comes first. The binary then writes its own man pages and completions
//! (`xvrrpd generate-docs`) where `[package.metadata.deb]` in vrrp-user/Cargo.toml
//! expects them, cargo-deb assembles the .deb from that list without building again,
//! and lintian checks the result: errors and warnings fail the task.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{run, setup, workspace};

/// Builds target/debian/xvrrpd_VERSION_ARCH.deb and returns its path.
pub fn build() -> Result<PathBuf> {
    let ws = workspace();
    run(Command::new("cargo").current_dir(&ws).args([
        "build",
        "--release",
        "--locked",
        "--package",
        "vrrp-user",
        "--bin",
        "xvrrpd",
    ]))
    .context("building the release binary")?;
    let release = ws.join("target/release");
    let binary = release.join("xvrrpd");
    if !embeds_xdp_object(&binary)? {
        bail!(
            "{} was built without the XDP object: run `cargo xtask build-ebpf` first",
            binary.display()
        );
    }
    // Where [package.metadata.deb] in vrrp-user/Cargo.toml takes them from.
    let docs = ws.join("target/docs");
    // Stale pages of a removed subcommand must not be packaged.
    let _ = std::fs::remove_dir_all(&docs);
    run(Command::new(&binary)
        .arg("generate-docs")
        .arg("--out")
        .arg(&docs))
    .context("generating man pages and completions")?;

    let out_dir = ws.join("target/debian");
    let output = Command::new("cargo")
        .current_dir(&ws)
        .env("PATH", path_with(&setup::cargo_deb_bin_dir()))
        .args([
            "deb",
            "--no-build",
            "--locked",
            "--package",
            "vrrp-user",
            "--output",
        ])
        .arg(&out_dir)
        .output()
        .context("running cargo deb")?;
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("cargo deb failed: {}", output.status);
    }
    // cargo-deb prints the path of the package it wrote as its last line.
    let deb = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .rfind(|l| l.ends_with(".deb"))
        .map(PathBuf::from)
        .context("cargo deb printed no .deb path")?;
    lintian(&deb)?;
    println!("package: {}", deb.display());
    Ok(deb)
}

/// Whether the binary carries the XDP program: an embedded ELF object whose machine is
/// EM_BPF. build.rs only embeds it when `cargo xtask build-ebpf` has produced it, and a
/// binary without it refuses to start.
fn embeds_xdp_object(binary: &Path) -> Result<bool> {
    const ELF64_LE: &[u8] = b"\x7fELF\x02\x01";
    const EM_BPF: [u8; 2] = 247u16.to_le_bytes();
    let bytes = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    Ok(bytes
        .windows(20)
        .any(|w| w.starts_with(ELF64_LE) && w[18..20] == EM_BPF))
}

fn lintian(deb: &Path) -> Result<()> {
    run(Command::new("lintian")
        .args(["--fail-on", "error,warning", "--display-info", "--no-tag-display-limit"])
        .arg(deb))
    .context("lintian found errors or warnings in the package (see above; overrides go in packaging/debian/lintian-overrides with a reason)")
}

fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}
