//! `xvrrpd`: the command line. Errors become anyhow here, at the edge.

mod record;

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use xvrrpd::{bpf, check, status, time::Mono};

#[derive(Parser)]
#[command(
    name = "xvrrpd",
    version,
    about = "keepalived-compatible VRRP daemon with an XDP receive path",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// keepalived's spelling: check the configuration and exit (`-t -f FILE`).
    #[arg(short = 't', long = "config-test")]
    config_test: bool,
    /// keepalived's spelling: configuration file.
    #[arg(short = 'f', long = "use-file", value_name = "FILE")]
    file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Check a keepalived.conf and exit with keepalived's codes (0, 4, 5).
    Check {
        #[arg(short = 'f', long = "use-file", value_name = "FILE", default_value = check::DEFAULT_CONFIG)]
        file: PathBuf,
        /// Print the resolved configuration with every default filled in.
        #[arg(long)]
        dump: bool,
        /// With --dump: print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Attach the XDP recorder and record adverts for the given instances until SIGINT/SIGTERM.
    Record(record::RecordArgs),
    /// Show what the kernel recorded (peers and drop counters) of a running xvrrpd.
    Peers(PeersArgs),
}

#[derive(Args)]
struct PeersArgs {
    #[command(flatten)]
    pin: PinArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Which pin directory under /sys/fs/bpf/xvrrpd/ to use.
#[derive(Args, Clone)]
pub struct PinArgs {
    /// Pin directory name (default: the network namespace's name, `default` on the host).
    #[arg(long, value_name = "NAME")]
    pin_name: Option<String>,
    /// Full pin directory (overrides --pin-name).
    #[arg(long, value_name = "DIR")]
    pin_dir: Option<PathBuf>,
}

impl PinArgs {
    pub fn resolve(&self) -> Result<PathBuf> {
        match &self.pin_dir {
            Some(d) => Ok(d.clone()),
            None => Ok(bpf::pin::dir(self.pin_name.as_deref())?),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Some(Command::Check { file, dump, json }) => return check_exit(file, dump, json),
        None if cli.config_test => {
            let file = cli.file.unwrap_or_else(|| check::DEFAULT_CONFIG.into());
            return check_exit(file, false, false);
        }
        Some(Command::Record(args)) => record::run(args),
        Some(Command::Peers(args)) => peers(args),
        None => Err(anyhow::anyhow!(
            "nothing to do: use `xvrrpd check`, `xvrrpd record` or `xvrrpd peers` (see --help)"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xvrrpd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("XVRRPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn check_exit(file: PathBuf, dump: bool, json: bool) -> ExitCode {
    let args = check::CheckArgs { file, dump, json };
    let code = check::run(&args, &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn peers(args: PeersArgs) -> Result<()> {
    let dir = args.pin.resolve()?;
    let maps = bpf::Maps::open_pinned(&dir)?;
    let views = status::peer_views(&maps.all_peers()?, Mono::now());
    let counters = maps.counters()?;
    if args.json {
        let json = status::render_json(&views, &counters);
        println!("{}", serde_json::to_string_pretty(&json).context("encoding JSON")?);
    } else {
        print!("{}", status::render_table(&views, &counters));
    }
    Ok(())
}
