//! keepalived's signals beyond the daemon's own (TERM, INT, HUP, XCPU):
//! the dump signals, and every other signal keepalived ignores, so that no
//! signal an operator or a tool sends out of keepalived habit kills xvrrpd
//! without its priority-0 advert and VIP removal.
//!
//! keepalived's VRRP process handles HUP, INT, TERM, USR1, USR2, XCPU,
//! CHLD, SIGRTMIN+2 (JSON) and SIGRTMAX-1 (stats and clear), and ignores
//! every other signal but KILL, STOP, ILL, FPE, SEGV and BUS (lib/signals.c).
//! xvrrpd catches those others with a handler that only logs, instead of
//! ignoring them: a caught signal is reset to its default in the scripts
//! the daemon starts, an ignored one would be inherited by them.

use std::time::Duration;

use futures::{stream::SelectAll, StreamExt};
use thiserror::Error;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

use super::dump::{self, StatsBaseline};
use crate::report::ReportHandle;

#[derive(Debug, Error)]
pub enum SignalError {
    #[error("installing a handler for {name}: {error}")]
    Handler { name: String, error: std::io::Error },
    #[error("installing a handler for {name}: {error}")]
    Sigaction { name: String, error: nix::Error },
}

/// keepalived's SIGJSON.
pub fn sigjson() -> i32 {
    libc::SIGRTMIN() + 2
}

/// keepalived's SIGSTATS_CLEAR.
pub fn sigstats_clear() -> i32 {
    libc::SIGRTMAX() - 1
}

/// `keepalived --signum=NAME`: the signal number for a function.
pub fn signum(name: &str) -> Option<i32> {
    match name {
        "STOP" => Some(libc::SIGTERM),
        "RELOAD" => Some(libc::SIGHUP),
        "DATA" => Some(libc::SIGUSR1),
        "STATS" => Some(libc::SIGUSR2),
        "STATS_CLEAR" => Some(sigstats_clear()),
        "JSON" => Some(sigjson()),
        _ => None,
    }
}

/// "SIGQUIT", "SIGRTMIN+5".
pub fn name(sig: i32) -> String {
    if sig >= libc::SIGRTMIN() && sig <= libc::SIGRTMAX() {
        return format!("SIGRTMIN+{}", sig - libc::SIGRTMIN());
    }
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// Signals the daemon acts on, here or in its event loop.
fn handled(sig: i32) -> bool {
    [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGXCPU,
        libc::SIGCHLD,
        libc::SIGPIPE,
        sigjson(),
        sigstats_clear(),
    ]
    .contains(&sig)
}

/// Signals whose default action is already harmless, or that must keep it.
fn left_alone(sig: i32) -> bool {
    [
        // keepalived leaves these at their default too.
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGSEGV,
        libc::SIGBUS,
        // Default: nothing happens (CONT continues whatever we do).
        libc::SIGCONT,
        libc::SIGWINCH,
        libc::SIGURG,
    ]
    .contains(&sig)
    // glibc's own (NPTL) signals below SIGRTMIN.
    || (sig > 31 && sig < libc::SIGRTMIN())
}

/// The signals caught only to be logged.
pub fn tolerated() -> Vec<i32> {
    (1..=libc::SIGRTMAX())
        .filter(|&s| !handled(s) && !left_alone(s))
        .collect()
}

/// SIGPIPE: a closed socket or pipe must give EPIPE, not kill the daemon.
/// (Rust's runtime ignores it already; this does not rely on that.)
pub fn ignore_sigpipe() -> Result<(), SignalError> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN installs no code of ours.
    unsafe { sigaction(Signal::SIGPIPE, &ignore) }
        .map(|_| ())
        .map_err(|source| SignalError::Sigaction {
            name: "SIGPIPE".into(),
            error: source,
        })
}

extern "C" fn nothing(_: libc::c_int) {}

type Stream<T> = futures::stream::BoxStream<'static, T>;

/// The handlers for [`tolerated`] signals. From [`Tolerated::install`] on,
/// those signals no longer kill; [`Tolerated::serve`] logs them.
pub struct Tolerated {
    streams: SelectAll<Stream<i32>>,
}

impl Tolerated {
    /// Must be called within a tokio runtime.
    pub fn install() -> Result<Self, SignalError> {
        Ok(Tolerated {
            streams: tolerate()?,
        })
    }

    pub fn serve(mut self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while let Some(sig) = self.streams.next().await {
                info!("{} received: ignored, as keepalived does", name(sig));
            }
        })
    }
}

fn tolerate() -> Result<SelectAll<Stream<i32>>, SignalError> {
    let mut streams = SelectAll::new();
    for sig in tolerated() {
        match signal(SignalKind::from_raw(sig)) {
            Ok(s) => streams.push(
                futures::stream::unfold(s, move |mut s| async move {
                    s.recv().await.map(|()| (sig, s))
                })
                .boxed(),
            ),
            Err(_) => {
                // tokio's table stops one short of SIGRTMAX: a silent handler.
                use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
                let quiet = SigAction::new(
                    SigHandler::Handler(nothing),
                    SaFlags::SA_RESTART,
                    SigSet::empty(),
                );
                let raw = nix::sys::signal::Signal::try_from(sig);
                let result = match raw {
                    // SAFETY: the handler does nothing, so it is async-signal-safe.
                    Ok(s) => unsafe { sigaction(s, &quiet) }.map(|_| ()),
                    Err(_) => raw_sigaction(sig),
                };
                result.map_err(|source| SignalError::Sigaction {
                    name: name(sig),
                    error: source,
                })?;
            }
        }
    }
    Ok(streams)
}

/// nix's Signal has no real-time signals: sigaction through libc.
fn raw_sigaction(sig: i32) -> Result<(), nix::Error> {
    // SAFETY: act is fully initialised; the handler does nothing.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = nothing as extern "C" fn(libc::c_int) as usize;
        act.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut act.sa_mask);
        if libc::sigaction(sig, &act, std::ptr::null_mut()) != 0 {
            return Err(nix::Error::last());
        }
    }
    Ok(())
}

/// Which dump a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dump {
    Data,
    Stats { clear: bool },
    Json,
}

/// SIGUSR1, SIGUSR2, SIGRTMAX-1 and SIGRTMIN+2: keepalived's dumps. From
/// [`DumpSignals::install`] on, these signals are caught (and queued);
/// [`DumpSignals::serve`] writes each dump with a fresh report.
pub struct DumpSignals {
    streams: SelectAll<Stream<Dump>>,
}

impl DumpSignals {
    /// Must be called within a tokio runtime.
    pub fn install() -> Result<Self, SignalError> {
        Ok(DumpSignals {
            streams: dump_streams()?,
        })
    }

    pub fn serve(self, reports: ReportHandle) -> tokio::task::JoinHandle<()> {
        serve_dumps(self.streams, reports)
    }
}

fn dump_streams() -> Result<SelectAll<Stream<Dump>>, SignalError> {
    let mut streams = SelectAll::new();
    for (sig, which) in [
        (libc::SIGUSR1, Dump::Data),
        (libc::SIGUSR2, Dump::Stats { clear: false }),
        (sigstats_clear(), Dump::Stats { clear: true }),
        (sigjson(), Dump::Json),
    ] {
        let s = signal(SignalKind::from_raw(sig)).map_err(|source| SignalError::Handler {
            name: name(sig),
            error: source,
        })?;
        streams.push(
            futures::stream::unfold(s, move |mut s| async move {
                s.recv().await.map(|()| (which, s))
            })
            .boxed(),
        );
    }
    Ok(streams)
}

fn serve_dumps(
    mut streams: SelectAll<Stream<Dump>>,
    reports: ReportHandle,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut baseline = StatsBaseline::default();
        let pid = std::process::id();
        while let Some(which) = streams.next().await {
            // keepalived's log lines, so whoever watches for them still sees them.
            match which {
                Dump::Data => info!("Printing VRRP data for process({pid}) on signal"),
                Dump::Stats { clear } => info!(
                    "Printing {}VRRP stats for process({pid}) on signal",
                    if clear { "and clearing " } else { "" }
                ),
                Dump::Json => info!("Printing VRRP as json for process({pid}) on signal"),
            }
            let Ok(Some(report)) =
                tokio::time::timeout(Duration::from_secs(5), reports.get()).await
            else {
                warn!("no report from the advert thread: dump not written");
                continue;
            };
            let (file, text) = match which {
                Dump::Data => (dump::DATA_FILE, dump::render_data(&report)),
                Dump::Stats { clear } => {
                    let text = dump::render_stats(&report, &baseline);
                    if clear {
                        baseline.clear(&report);
                    }
                    (dump::STATS_FILE, text)
                }
                Dump::Json => (dump::JSON_FILE, dump::render_json(&report)),
            };
            let dir = dump::dump_dir();
            match tokio::task::spawn_blocking(move || dump::write_file(&dir, file, &text)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!("{e}"),
                Err(e) => warn!("writing {file}: {e}"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_numbers_are_keepalived_s() {
        assert_eq!(signum("DATA"), Some(10));
        assert_eq!(signum("STATS"), Some(12));
        assert_eq!(signum("RELOAD"), Some(1));
        assert_eq!(signum("STOP"), Some(15));
        assert_eq!(signum("JSON"), Some(libc::SIGRTMIN() + 2));
        assert_eq!(signum("STATS_CLEAR"), Some(libc::SIGRTMAX() - 1));
        assert_eq!(signum("TDUMP"), None);
        assert_eq!(name(libc::SIGQUIT), "SIGQUIT");
        assert_eq!(name(sigjson()), "SIGRTMIN+2");
    }

    #[test]
    fn tolerated_signals_are_keepalived_s_ignored_ones() {
        let t = tolerated();
        for s in [
            libc::SIGQUIT,
            libc::SIGALRM,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGPWR,
            libc::SIGRTMAX(),
            libc::SIGRTMIN(),
        ] {
            assert!(t.contains(&s), "{}", name(s));
        }
        for s in [
            libc::SIGKILL,
            libc::SIGSEGV,
            libc::SIGTERM,
            libc::SIGUSR1,
            libc::SIGCHLD,
            sigjson(),
        ] {
            assert!(!t.contains(&s), "{}", name(s));
        }
    }
}
