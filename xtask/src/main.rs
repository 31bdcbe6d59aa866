//! `cargo xtask`: set-up, builds, tests, demo and benchmarks for xvrrpd.
//!
//! Every command that needs a toolchain piece calls the idempotent `setup`
//! first, so a fresh machine needs nothing but `cargo xtask <command>`.

mod package;
mod setup;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "xvrrpd build and test tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install everything a fresh machine lacks (idempotent).
    Setup,
    /// Build the XDP object (target/ebpf/bpfel-unknown-none/release/vrrp-ebpf).
    BuildEbpf,
    /// Build the Debian package (target/debian/xvrrpd_*.deb) and check it with lintian.
    Package,
    /// Build everything and the package, then run every test (unit, XDP, namespace
    /// integration, interop, package install).
    Test {
        /// Extra arguments passed to `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Run a failover demo in a lab of network namespaces.
    Demo,
    /// Run the benchmarks: XDP cost per packet against an empty program, then
    /// takeover time after kill -9 (xvrrpd and keepalived, v2 1 s and v3 50 ms),
    /// then the time from a tracker fault to the VIP on the peer (every tracker kind),
    /// then the pair under CPU starvation, then the CPU of 255 instances.
    /// `cargo xtask bench starve -- --runs 1 --seconds 5` runs one part with its options.
    Bench {
        /// Only this part (default: all, in the order above).
        part: Option<BenchPart>,
        /// Options for that part's binary, after `--` (see `-- --help`).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

/// The parts of `cargo xtask bench`, each a binary of the `tests` crate.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BenchPart {
    /// XDP cost per packet (BPF_PROG_TEST_RUN).
    Xdp,
    /// Takeover time after kill -9 of the master.
    Takeover,
    /// Tracker fault to VIP on the peer.
    TrackLatency,
    /// False transitions and advert gaps under stress-ng (about 8 minutes).
    Starve,
    /// CPU of 255 instances at advert_int 0.01, as backup and as master (about 4 minutes).
    Scale,
}

impl BenchPart {
    const ALL: [BenchPart; 5] = [
        BenchPart::Xdp,
        BenchPart::Takeover,
        BenchPart::TrackLatency,
        BenchPart::Starve,
        BenchPart::Scale,
    ];

    fn binary(self) -> &'static str {
        match self {
            BenchPart::Xdp => "bench",
            BenchPart::Takeover => "takeover",
            BenchPart::TrackLatency => "track_latency",
            BenchPart::Starve => "starve",
            BenchPart::Scale => "scale",
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Task::Setup => setup::run(),
        Task::BuildEbpf => {
            setup::run()?;
            build_ebpf()
        }
        Task::Package => {
            setup::run()?;
            build_ebpf()?;
            package::build().map(|_| ())
        }
        Task::Test { args } => {
            setup::run()?;
            build_ebpf()?;
            // tests/tests/package.rs installs this very package.
            let deb = package::build()?;
            test(&args, &deb)
        }
        Task::Demo => {
            setup::run()?;
            build_ebpf()?;
            build_daemon(true)?;
            run_lab_binary("demo", &[])
        }
        Task::Bench { part, args } => {
            if part.is_none() && !args.is_empty() {
                bail!(
                    "options after `--` need a part: cargo xtask bench starve -- {}",
                    args.join(" ")
                );
            }
            setup::run()?;
            build_ebpf()?;
            build_daemon(true)?;
            let parts = match part {
                Some(p) => vec![p],
                None => BenchPart::ALL.to_vec(),
            };
            for p in parts {
                run_lab_binary(p.binary(), &args)?;
            }
            Ok(())
        }
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn build_ebpf() -> Result<()> {
    let ws = workspace();
    let path = format!(
        "{}:{}",
        setup::bpf_linker_bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("cargo");
    cmd.current_dir(ws.join("vrrp-ebpf"))
        .env("PATH", path)
        // A rustup-set toolchain from the outer cargo would override the pin.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args([
            &format!("+{}", setup::NIGHTLY),
            "build",
            "--release",
            "--locked",
            "--target-dir",
        ])
        .arg(ws.join("target/ebpf"));
    run(&mut cmd).context("building the XDP program (vrrp-ebpf)")?;
    println!(
        "XDP object: {}",
        ws.join("target/ebpf/bpfel-unknown-none/release/vrrp-ebpf")
            .display()
    );
    Ok(())
}

fn build_daemon(release: bool) -> Result<()> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace())
        .args(["build", "--package", "vrrp-user", "--bin", "xvrrpd"]);
    if release {
        cmd.arg("--release");
    }
    run(&mut cmd)
}

/// The demo and the benchmarks live in the `tests` crate, next to the lab
/// helpers. They run the release daemon, or the one `XVRRPD_BIN` names (to
/// compare a saved "before" binary with the current one).
fn run_lab_binary(name: &str, args: &[String]) -> Result<()> {
    let ws = workspace();
    let daemon = std::env::var_os("XVRRPD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target/release/xvrrpd"));
    run(Command::new("cargo")
        .current_dir(&ws)
        .env("XVRRPD_BIN", daemon)
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "tests",
            "--bin",
            name,
            "--",
        ])
        .args(args))
}

fn test(args: &[String], deb: &Path) -> Result<()> {
    if !nix_is_root() {
        bail!("the tests load XDP programs and create network namespaces: run `cargo xtask test` as root");
    }
    build_daemon(false)?;
    let ws = workspace();
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&ws)
        .env("XVRRPD_BIN", ws.join("target/debug/xvrrpd"))
        .env("XVRRPD_DEB", deb)
        .args(["test", "--workspace"])
        .args(args);
    run(&mut cmd)
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
