//! keepalived's command-line flags, accepted by `xvrrpd run` (and by
//! `xvrrpd -f FILE ...`) with keepalived's meanings, so `DAEMON_ARGS` from
//! a keepalived setup start xvrrpd unchanged. Flags for what xvrrpd does
//! not do are refused by name, not silently ignored.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use xvrrpd::ops::{
    control,
    logging::{self, Facility, LogOptions},
    metrics,
    pidfile::PidFile,
    OpsOptions,
};

#[derive(Args, Clone, Debug, Default)]
pub struct DaemonFlags {
    /// Log to stderr too (it always does when stderr is not the journal).
    #[arg(short = 'l', long = "log-console")]
    log_console: bool,
    /// Detailed log lines: structured fields after the message in syslog and the log file.
    #[arg(short = 'D', long = "log-detail")]
    log_detail: bool,
    /// Syslog facility: 0-7 (local0-local7), local0-local7, user or daemon (default).
    #[arg(short = 'S', long = "log-facility", value_name = "FACILITY")]
    log_facility: Option<String>,
    /// Also log to FILE, named as keepalived names it for its VRRP process
    /// (FILE's name with `_vrrp` before the extension; default $TMPDIR/keepalived_vrrp.log).
    #[arg(short = 'g', long = "log-file", value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    log_file: Option<PathBuf>,
    /// keepalived's: flush the log file on every write (xvrrpd always does).
    #[arg(long = "flush-log-file", hide = true)]
    _flush_log_file: bool,
    /// Log neither to the journal nor to syslog.
    #[arg(short = 'G', long = "no-syslog")]
    no_syslog: bool,
    /// Journal and syslog identifier.
    #[arg(long = "log-ident", value_name = "NAME", default_value = logging::DEFAULT_IDENT)]
    log_ident: String,
    /// Write the daemon's pid to FILE (keepalived's parent pid file); removed at exit.
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Write the daemon's pid to FILE (keepalived's VRRP process pid file); removed at exit.
    #[arg(short = 'r', long = "vrrp_pid", value_name = "FILE")]
    vrrp_pid_file: Option<PathBuf>,
    /// keepalived's checker and BFD pid files: xvrrpd runs neither process.
    #[arg(short = 'c', long = "checkers_pid", value_name = "FILE", hide = true)]
    _checkers_pid: Option<PathBuf>,
    #[arg(short = 'b', long = "bfd_pid", value_name = "FILE", hide = true)]
    _bfd_pid: Option<PathBuf>,
    /// Read `@ID` configuration lines as this node (default: the host name).
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    config_id: Option<String>,
    /// An include pattern that matches no file is an error.
    #[arg(short = 'e', long = "all-config")]
    all_config: bool,
    /// Run in the network namespace NAME (/run/netns/NAME).
    #[arg(short = 's', long = "namespace", value_name = "NAME")]
    namespace: Option<String>,
    /// umask for the files the daemon creates (octal).
    #[arg(short = 'u', long = "umask", value_name = "MASK")]
    umask: Option<String>,
    /// Allow a core dump if the daemon crashes (RLIMIT_CORE unlimited).
    #[arg(short = 'm', long = "core-dump")]
    core_dump: bool,
    /// Log the resolved configuration at start.
    #[arg(short = 'd', long = "dump-conf")]
    dump_conf: bool,

    /// The control socket `xvrrpd status` talks to (default /run/xvrrpd/<pin name>.sock).
    #[arg(long = "control", value_name = "PATH")]
    control: Option<PathBuf>,
    /// Serve Prometheus metrics on ADDR (PORT alone binds 127.0.0.1; default 127.0.0.1:9650).
    #[arg(long = "metrics", value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9650")]
    metrics: Option<String>,

    // keepalived's flags whose meaning xvrrpd always has: it never forks or
    // respawns, runs only VRRP, and has no BFD or IPVS to keep.
    #[arg(short = 'n', long = "dont-fork", hide = true)]
    _dont_fork: bool,
    #[arg(short = 'P', long = "vrrp", hide = true)]
    _vrrp_only: bool,
    #[arg(short = 'R', long = "dont-respawn", hide = true)]
    _dont_respawn: bool,
    #[arg(short = 'B', long = "no_bfd", hide = true)]
    _no_bfd: bool,
    #[arg(short = 'I', long = "dont-release-ipvs", hide = true)]
    _dont_release_ipvs: bool,
    #[arg(long = "all", hide = true)]
    _all: bool,

    // keepalived's flags for what xvrrpd does not do: refused by name.
    #[arg(short = 'C', long = "check", hide = true)]
    checker_only: bool,
    #[arg(short = 'x', long = "snmp", hide = true)]
    snmp: bool,
    #[arg(
        short = 'A',
        long = "snmp-agent-socket",
        value_name = "FILE",
        hide = true
    )]
    snmp_agent_socket: Option<String>,
    #[arg(short = 'V', long = "dont-release-vrrp", hide = true)]
    dont_release_vrrp: bool,
    #[arg(short = 'X', long = "release-vips", hide = true)]
    release_vips: bool,
    #[arg(short = 'a', long = "address-monitoring", hide = true)]
    address_monitoring: bool,
    #[arg(short = 'M', long = "core-dump-pattern", value_name = "PATN", num_args = 0..=1, default_missing_value = "core", hide = true)]
    core_dump_pattern: Option<String>,
    #[arg(short = 'T', long = "genhash", hide = true)]
    genhash: bool,
}

impl DaemonFlags {
    /// keepalived flags xvrrpd cannot honour, named with the reason.
    pub fn refuse_unsupported(&self) -> Result<()> {
        let refused = [
            (
                self.checker_only,
                "-C/--check",
                "xvrrpd is VRRP only; run keepalived --check beside it for LVS health checks",
            ),
            (self.genhash, "-T/--genhash", "use keepalived's genhash"),
            (
                self.snmp,
                "-x/--snmp",
                "xvrrpd has no SNMP agent; use --metrics (Prometheus) or xvrrpd status --json",
            ),
            (
                self.snmp_agent_socket.is_some(),
                "-A/--snmp-agent-socket",
                "xvrrpd has no SNMP agent",
            ),
            (
                self.dont_release_vrrp,
                "-V/--dont-release-vrrp",
                "xvrrpd releases its VIPs when it stops",
            ),
            (self.release_vips, "-X/--release-vips", "not supported"),
            (
                self.address_monitoring,
                "-a/--address-monitoring",
                "not supported",
            ),
            (
                self.core_dump_pattern.is_some(),
                "-M/--core-dump-pattern",
                "xvrrpd does not change the host's core_pattern; use -m and set it yourself",
            ),
        ];
        for (given, flag, why) in refused {
            if given {
                bail!("{flag}: not supported by xvrrpd: {why}");
            }
        }
        Ok(())
    }

    /// -s: join /run/netns/NAME. Only this thread moves, so it must run
    /// before any other thread (logging, tokio) is started.
    pub fn enter_namespace(&self) -> Result<()> {
        let Some(name) = &self.namespace else {
            return Ok(());
        };
        if name.is_empty() || name.contains('/') {
            bail!("-s/--namespace {name:?}: not a namespace name");
        }
        let path = PathBuf::from("/run/netns").join(name);
        let file = std::fs::File::open(&path)
            .with_context(|| format!("-s/--namespace {name}: opening {}", path.display()))?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("-s/--namespace {name}: setns"))?;
        Ok(())
    }

    pub fn log_options(&self) -> Result<LogOptions> {
        let facility = match &self.log_facility {
            Some(f) => f.parse::<Facility>()?,
            None => Facility::default(),
        };
        let file = self.log_file.as_ref().map(|f| {
            if f.as_os_str().is_empty() {
                logging::default_log_file()
            } else {
                logging::vrrp_log_file(f)
            }
        });
        Ok(LogOptions {
            console: self.log_console,
            detail: self.log_detail,
            facility,
            file,
            no_syslog: self.no_syslog,
            ident: self.log_ident.clone(),
            filter: std::env::var("XVRRPD_LOG").ok(),
        })
    }

    pub fn detail(&self) -> bool {
        self.log_detail
    }

    pub fn dump_conf(&self) -> bool {
        self.dump_conf
    }

    /// umask, core dumps, config id, -e: process settings before the daemon reads anything.
    pub fn apply_process_settings(&self) -> Result<()> {
        if let Some(mask) = &self.umask {
            let bits = u32::from_str_radix(mask.trim_start_matches("0o"), 8)
                .ok()
                .filter(|b| *b <= 0o777)
                .with_context(|| {
                    format!("-u/--umask {mask:?}: expected an octal mask like 0077")
                })?;
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(bits));
        }
        if self.core_dump {
            use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};
            setrlimit(Resource::RLIMIT_CORE, RLIM_INFINITY, RLIM_INFINITY)
                .context("-m/--core-dump: setrlimit(RLIMIT_CORE)")?;
        }
        if let Some(id) = &self.config_id {
            xvrrpd::config::set_config_id(id);
        }
        xvrrpd::config::set_all_config(self.all_config);
        Ok(())
    }

    /// -p and -r: written now, removed when the returned files drop.
    pub fn pid_files(&self) -> Result<Vec<PidFile>> {
        let mut files = Vec::new();
        for path in [&self.pid_file, &self.vrrp_pid_file].into_iter().flatten() {
            if files.iter().any(|f: &PidFile| f.path() == path) {
                continue;
            }
            files.push(PidFile::create(path)?);
        }
        Ok(files)
    }

    pub fn ops_options(&self, pin_dir: &std::path::Path) -> Result<OpsOptions> {
        let metrics: Option<SocketAddr> = self
            .metrics
            .as_deref()
            .map(metrics::parse_listen)
            .transpose()?;
        Ok(OpsOptions {
            control: self
                .control
                .clone()
                .unwrap_or_else(|| control::default_path(pin_dir)),
            metrics,
        })
    }
}
