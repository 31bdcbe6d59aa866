//! `xvrrpd`: the command line. Errors become anyhow here, at the edge.

mod generate_docs;
mod record;

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};
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
    /// keepalived's spelling: configuration file (runs the daemon unless -t).
    #[arg(short = 'f', long = "use-file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// keepalived's flags, accepted for drop-in use: xvrrpd always runs in
    /// the foreground (-n), logs to stderr (-l, -D) and does VRRP only (-P).
    #[arg(short = 'n', long = "dont-fork", hide = true)]
    _dont_fork: bool,
    #[arg(short = 'l', long = "log-console", hide = true)]
    _log_console: bool,
    #[arg(short = 'D', long = "log-detail", hide = true)]
    _log_detail: bool,
    #[arg(short = 'P', long = "vrrp", hide = true)]
    _vrrp_only: bool,
    #[command(flatten)]
    pin: PinArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Check a keepalived.conf and exit with keepalived's codes (0, 4, 5, 6).
    Check {
        #[arg(short = 'f', long = "use-file", value_name = "FILE", default_value = check::DEFAULT_CONFIG)]
        file: PathBuf,
        /// Print the resolved configuration with every default filled in.
        #[arg(long)]
        dump: bool,
        /// Print JSON: the configuration with --dump, else the findings and exit code.
        #[arg(long)]
        json: bool,
    },
    /// Run the VRRP daemon (keepalived's `-f FILE -n -l -D` also does).
    Run {
        #[arg(short = 'f', long = "use-file", value_name = "FILE", default_value = check::DEFAULT_CONFIG)]
        file: PathBuf,
        #[command(flatten)]
        pin: PinArgs,
    },
    /// Attach the XDP recorder and record adverts for the given instances until SIGINT/SIGTERM.
    Record(record::RecordArgs),
    /// Show what the kernel recorded (peers and drop counters) of a running xvrrpd.
    Peers(PeersArgs),
    /// Write the man pages and shell completions of this command line (packaging).
    #[command(hide = true)]
    GenerateDocs(generate_docs::GenerateDocsArgs),
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
    // Lines are written by a logging thread: a slow log sink (a full pipe
    // to journald) must never stall the advert or executor threads.
    let _log_writer = init_tracing();
    let result = match cli.command {
        Some(Command::Check { file, dump, json }) => return check_exit(file, dump, json),
        None if cli.config_test => {
            let file = cli.file.unwrap_or_else(|| check::DEFAULT_CONFIG.into());
            return check_exit(file, false, false);
        }
        Some(Command::Run { file, pin }) => run_daemon(file, &pin),
        None if cli.file.is_some() => run_daemon(cli.file.unwrap_or_default(), &cli.pin),
        Some(Command::Record(args)) => record::run(args),
        Some(Command::Peers(args)) => peers(args),
        Some(Command::GenerateDocs(args)) => generate_docs::run(&args, Cli::command()),
        None => run_daemon(check::DEFAULT_CONFIG.into(), &cli.pin),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xvrrpd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("XVRRPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // The route crate warns about every kernel attribute newer than itself.
        .add_directive(
            "netlink_packet_route=error"
                .parse()
                .expect("static directive"),
        );
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Colour codes only for a terminal, not for journald or log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    guard
}

fn check_exit(file: PathBuf, dump: bool, json: bool) -> ExitCode {
    let args = check::CheckArgs { file, dump, json };
    let code = check::run(&args, &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn run_daemon(config: PathBuf, pin: &PinArgs) -> Result<()> {
    let pin_dir = pin.resolve()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(xvrrpd::daemon::run(xvrrpd::daemon::Options {
        config,
        pin_dir,
    }))?;
    Ok(())
}

fn peers(args: PeersArgs) -> Result<()> {
    let dir = args.pin.resolve()?;
    let maps = bpf::Maps::open_pinned(&dir)?;
    let views = status::peer_views(&maps.all_peers()?, Mono::now());
    let counters = maps.counters()?;
    if args.json {
        let json = status::render_json(&views, &counters);
        println!(
            "{}",
            serde_json::to_string_pretty(&json).context("encoding JSON")?
        );
    } else {
        print!("{}", status::render_table(&views, &counters));
    }
    Ok(())
}
