//! `xvrrpd`: the command line. Errors become anyhow here, at the edge.

mod generate_docs;
mod keepalived_flags;
mod record;

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};
use keepalived_flags::DaemonFlags;
use xvrrpd::{bpf, check, daemon::Outcome, ops, report, status, time::Mono};

#[derive(Parser)]
#[command(
    name = "xvrrpd",
    version,
    about = "keepalived-compatible VRRP daemon with an XDP receive path",
    args_conflicts_with_subcommands = true,
    disable_version_flag = true
)]
struct Cli {
    /// Print version (keepalived's -v; its -V is --dont-release-vrrp).
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    _version: (),
    #[command(subcommand)]
    command: Option<Command>,
    /// keepalived's spelling: check the configuration and exit (`-t -f FILE`).
    #[arg(short = 't', long = "config-test")]
    config_test: bool,
    /// keepalived's spelling: configuration file (runs the daemon unless -t).
    #[arg(short = 'f', long = "use-file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// keepalived's: print the number of the signal for STOP, RELOAD, DATA, STATS, STATS_CLEAR or JSON.
    #[arg(long = "signum", value_name = "SIGFUNC")]
    signum: Option<String>,
    #[command(flatten)]
    flags: DaemonFlags,
    #[command(flatten)]
    pin: PinArgs,
    #[command(flatten)]
    attach: AttachArgs,
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
        #[command(flatten)]
        attach: AttachArgs,
        #[command(flatten)]
        flags: Box<DaemonFlags>,
    },
    /// Ask the running daemon for its state: instances, priorities, trackers, masters, transitions.
    Status(StatusArgs),
    /// Attach the XDP recorder and record adverts for the given instances until SIGINT/SIGTERM.
    Record(record::RecordArgs),
    /// Show what the kernel recorded (peers and drop counters) of a running xvrrpd.
    Peers(PeersArgs),
    /// Restart or upgrade the running daemon in place without moving a VIP:
    /// it re-executes its binary (the one now on disk) with the same PID,
    /// leaves VIPs and vmacs where they are, and resumes as master where it
    /// was, before its peers' Master_Down_Interval runs out.
    Restart {
        #[command(flatten)]
        pin: PinArgs,
        /// Give up waiting for the new image after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Release what a daemon that died left on the host: priority 0 for the
    /// instances it was master of, its VIPs and vmacs, its pinned maps (the
    /// systemd unit runs this as ExecStopPost, so also after kill -9).
    Cleanup {
        #[command(flatten)]
        pin: PinArgs,
    },
    /// Write the man pages and shell completions of this command line (packaging).
    #[command(hide = true)]
    GenerateDocs(generate_docs::GenerateDocsArgs),
}

#[derive(Args)]
struct StatusArgs {
    /// Print the daemon's report as JSON.
    #[arg(long)]
    json: bool,
    /// The daemon's control socket (default /run/xvrrpd/<pin name>.sock).
    #[arg(long = "control", value_name = "PATH")]
    control: Option<PathBuf>,
    #[command(flatten)]
    pin: PinArgs,
}

#[derive(Args)]
struct PeersArgs {
    #[command(flatten)]
    pin: PinArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Where the recorder may attach on each interface.
#[derive(Args, Clone, Copy)]
struct AttachArgs {
    /// auto: join a libxdp dispatcher on the XDP hook, else tc ingress (tcx,
    /// else clsact), leaving the XDP hook to others; xdp: the XDP hook only
    /// (a libxdp dispatcher, joined or created); tc: tc ingress only.
    /// Default: global_defs' xvrrpd_attach, else auto.
    #[arg(long, value_name = "MODE")]
    attach: Option<bpf::AttachMode>,
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
    // The binary on disk now: an in-place restart re-executes it, so after
    // a package upgrade the new version takes over.
    let exe = std::env::current_exe();
    let cli = Cli::parse();
    if let Some(name) = &cli.signum {
        return signum(name);
    }
    let result = match cli.command {
        Some(Command::Check { file, dump, json }) => {
            let _log = console_logging();
            return check_exit(file, dump, json);
        }
        None if cli.config_test => {
            let _log = console_logging();
            let file = cli.file.unwrap_or_else(|| check::DEFAULT_CONFIG.into());
            return check_exit(file, false, false);
        }
        Some(Command::Run {
            file,
            pin,
            attach,
            flags,
        }) => run_daemon(file, &pin, attach, &flags),
        None => run_daemon(
            cli.file.unwrap_or_else(|| check::DEFAULT_CONFIG.into()),
            &cli.pin,
            cli.attach,
            &cli.flags,
        ),
        Some(Command::Record(args)) => {
            let _log = console_logging();
            record::run(args).map(|_| Outcome::Stopped)
        }
        Some(Command::Peers(args)) => {
            let _log = console_logging();
            peers(args).map(|_| Outcome::Stopped)
        }
        Some(Command::Status(args)) => show_status(args).map(|_| Outcome::Stopped),
        Some(Command::Restart { pin, timeout }) => {
            restart(&pin, std::time::Duration::from_secs(timeout)).map(|_| Outcome::Stopped)
        }
        Some(Command::Cleanup { pin }) => {
            let _log = console_logging();
            cleanup(&pin).map(|_| Outcome::Stopped)
        }
        Some(Command::GenerateDocs(args)) => {
            generate_docs::run(&args, Cli::command()).map(|_| Outcome::Stopped)
        }
    };
    match result {
        Ok(Outcome::Stopped) => ExitCode::SUCCESS,
        Ok(Outcome::Reexec) => {
            let err = reexec(exe);
            eprintln!("xvrrpd: in-place restart failed: {err:#}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xvrrpd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Replaces this process with `exe`, same PID and arguments; returns only
/// on failure.
fn reexec(exe: std::io::Result<PathBuf>) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let exe = match exe {
        Ok(e) => e,
        Err(e) => return anyhow::Error::new(e).context("finding the binary"),
    };
    let err = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .exec();
    anyhow::Error::new(err).context(format!("execve {}", exe.display()))
}

/// `xvrrpd restart`: asks the daemon over its control socket, then waits
/// for the new image to have written its state.
fn restart(pin: &PinArgs, timeout: std::time::Duration) -> Result<()> {
    use anyhow::bail;
    use xvrrpd::daemon::held;
    let pin_dir = pin.resolve()?;
    let paths = held::Paths::for_pin_dir(&pin_dir);
    let before = held::load_state(&paths)?.map_or(0.0, |s| s.started_unix);
    ops::control::request_restart(&ops::control::default_path(&pin_dir))?;
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        if let Ok(Some(now)) = held::load_state(&paths) {
            if now.started_unix > before {
                println!("xvrrpd (pid {}) restarted in place", now.pid);
                return Ok(());
            }
        }
    }
    bail!("the daemon did not come back within {timeout:?}; see its log")
}

/// `xvrrpd cleanup`: what a dead daemon held, released.
fn cleanup(pin: &PinArgs) -> Result<()> {
    use xvrrpd::daemon::held;
    let paths = held::Paths::for_pin_dir(&pin.resolve()?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let released = runtime.block_on(async {
        let netlink = xvrrpd::network::netlink::Netlink::new()?;
        anyhow::Ok(held::cleanup(&paths, &netlink).await?)
    })?;
    println!(
        "released: {} priority-0 adverts sent, {} VIPs and {} vmacs removed",
        released.farewells, released.vips, released.vmacs
    );
    Ok(())
}

/// stderr only, for the commands that are not the daemon. Lines are
/// written by a logging thread either way.
fn console_logging() -> Option<ops::logging::LogGuard> {
    ops::logging::init(&ops::logging::LogOptions {
        console: true,
        no_syslog: true,
        filter: std::env::var("XVRRPD_LOG").ok(),
        ..Default::default()
    })
    .ok()
}

/// `--signum=NAME`, as keepalived prints it.
fn signum(name: &str) -> ExitCode {
    match ops::signals::signum(name) {
        Some(n) => {
            println!("{n}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "xvrrpd: --signum {name:?}: expected STOP, RELOAD, DATA, STATS, STATS_CLEAR or JSON"
            );
            ExitCode::FAILURE
        }
    }
}

fn check_exit(file: PathBuf, dump: bool, json: bool) -> ExitCode {
    let args = check::CheckArgs { file, dump, json };
    let code = check::run(&args, &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Runs the daemon; its log lines are all written (the logging threads
/// flushed) when this returns, so an in-place restart loses none.
fn run_daemon(
    config: PathBuf,
    pin: &PinArgs,
    attach: AttachArgs,
    flags: &DaemonFlags,
) -> Result<Outcome> {
    flags.refuse_unsupported()?;
    // Before any thread exists: setns moves only the calling thread.
    flags.enter_namespace()?;
    // Lines are written by logging threads: a slow log sink (a full pipe to
    // journald, a stalled syslog) must never stall the advert or executor threads.
    let _log = ops::logging::init(&flags.log_options()?)?;
    flags.apply_process_settings()?;
    if flags.dump_conf() {
        log_config(&config);
    }
    let pin_dir = pin.resolve()?;
    let ops_options = flags.ops_options(&pin_dir)?;
    let pid_files = flags.pid_files()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let result = runtime.block_on(xvrrpd::daemon::run(xvrrpd::daemon::Options {
        config,
        pin_dir,
        ops: ops_options,
        attach: attach.attach,
    }));
    drop(runtime);
    drop(pid_files);
    if flags.detail() && matches!(result, Ok(Outcome::Stopped)) {
        tracing::info!("{}", ops::logging::stopped_line());
    }
    Ok(result?)
}

/// -d: the resolved configuration, line by line, into the log.
fn log_config(file: &std::path::Path) {
    let args = check::CheckArgs {
        file: file.to_owned(),
        dump: true,
        json: false,
    };
    let (mut out, mut diagnostics) = (Vec::new(), Vec::new());
    check::run(&args, &mut out, &mut diagnostics);
    for line in String::from_utf8_lossy(&out).lines() {
        tracing::info!("{line}");
    }
}

/// `xvrrpd status`: the daemon's report, from its control socket.
fn show_status(args: StatusArgs) -> Result<()> {
    let path = match args.control {
        Some(p) => p,
        None => ops::control::default_path(&args.pin.resolve()?),
    };
    let r = ops::control::request_report(&path)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).context("encoding JSON")?
        );
    } else {
        print!("{}", report::render_table(&r));
    }
    Ok(())
}

fn peers(args: PeersArgs) -> Result<()> {
    let dir = args.pin.resolve()?;
    let maps = bpf::Maps::open_pinned(&dir)?;
    let views = status::peer_views(&maps.all_peers()?, Mono::now());
    let counters = maps.counters()?;
    let placements = maps.placements()?;
    if args.json {
        let json = status::render_json(&views, &counters, &placements);
        println!(
            "{}",
            serde_json::to_string_pretty(&json).context("encoding JSON")?
        );
    } else {
        print!("{}", status::render_table(&views, &counters, &placements));
    }
    Ok(())
}
