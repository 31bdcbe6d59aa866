//! `vrrp_script` runner: runs the script every `interval` (never two at
//! once), kills its process group at `timeout`, counts exit 0 as success and
//! anything else (timeout, signal, spawn error) as failure, and reports the
//! good/bad state through rise/fall hysteresis, only when it changes.

use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use super::{EventSender, Status, TrackEvent, TrackerId};
use crate::command::{self, CommandError, Outcome, RunAs};
use crate::config::VrrpScript;

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("vrrp_script {name}: {source}")]
    Command {
        name: String,
        #[source]
        source: CommandError,
    },
}

/// keepalived's rise/fall counter (`vrrp_script_child_thread`): from bad,
/// `rise` consecutive successes make it good; from good, `fall` consecutive
/// failures make it bad. A result the other way resets the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    /// keepalived's `result`: 0..rise+fall-1, good when >= rise.
    result: u32,
}

impl Hysteresis {
    /// Starts good unless `init_fail`. `rise`/`fall` of 0 count as 1.
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> Self {
        let (rise, fall) = (rise.max(1), fall.max(1));
        Self {
            rise,
            fall,
            result: if init_fail { 0 } else { Self::top(rise, fall) },
        }
    }

    fn top(rise: u32, fall: u32) -> u32 {
        rise.saturating_add(fall) - 1
    }

    pub fn is_good(&self) -> bool {
        self.result >= self.rise
    }

    /// Count one run; `Some(new state)` when the state changes.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        let was = self.is_good();
        if success {
            if self.result < self.rise - 1 {
                self.result += 1;
            } else {
                // The rise-th success, or any success while good: back to the top.
                self.result = Self::top(self.rise, self.fall);
            }
        } else if self.result > self.rise {
            self.result -= 1;
        } else {
            // The fall-th failure, or any failure while bad: to the bottom.
            self.result = 0;
        }
        let now = self.is_good();
        (now != was).then_some(now)
    }
}

/// Start the runner for `script` as `run_as`; it reports
/// `TrackEvent { tracker: Script(name), status: Up(good) }` on `tx` when the
/// state changes (the initial state is good unless `init_fail`).
///
/// The command is split up front (an error names the script). With
/// `security` (`enable_script_security`) the program is resolved on PATH and
/// checked with [`command::check_security`] up front too.
///
/// The first run starts at once. The task ends when the receiver is dropped:
/// a running script then has its process group killed and is reaped. (If the
/// task is aborted instead, the group is killed too, and tokio reaps the
/// child in the background.) Must be called within a tokio runtime.
pub fn spawn(
    script: &VrrpScript,
    run_as: RunAs,
    security: bool,
    tx: EventSender,
) -> Result<tokio::task::JoinHandle<()>, ScriptError> {
    let name = script.name.clone();
    let err = |source| ScriptError::Command {
        name: name.clone(),
        source,
    };
    let mut argv = command::split_command(&script.script).map_err(err)?;
    if security {
        let program = command::secure_program(&argv[0], &run_as).map_err(err)?;
        if !argv[0].contains('/') {
            info!(
                "vrrp_script {name}: `{}` resolved by path search to {}; please give the full path",
                argv[0],
                program.display()
            );
        }
        // Run what was checked, not whatever PATH finds later.
        argv[0] = program.display().to_string();
    }
    let runner = Runner {
        name,
        argv,
        run_as,
        interval: script.interval.max(Duration::from_millis(1)),
        // A zero timeout would fail every run before it starts: use the
        // interval, the default.
        timeout: if script.timeout.is_zero() {
            script.interval
        } else {
            script.timeout
        },
        hysteresis: Hysteresis::new(script.rise, script.fall, script.init_fail),
        tx,
    };
    Ok(tokio::spawn(runner.run()))
}

struct Runner {
    name: String,
    argv: Vec<String>,
    run_as: RunAs,
    interval: Duration,
    timeout: Duration,
    hysteresis: Hysteresis,
    tx: EventSender,
}

/// One run's result, for the logs.
enum Run {
    Done(Outcome),
    SpawnFailed(CommandError),
}

impl Runner {
    async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.interval);
        // A run longer than the interval delays the next one instead of
        // queueing catch-up runs.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_spawn_error: Option<String> = None;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = self.tx.closed() => break,
            }
            if self.tx.is_closed() {
                break;
            }
            let Some(run) = self.run_once().await else {
                break;
            };
            let success = matches!(run, Run::Done(o) if o.success());
            let what = match &run {
                Run::Done(Outcome::TimedOut) => {
                    format!("timed out after {}s", self.timeout.as_secs_f64())
                }
                Run::Done(o) => o.to_string(),
                Run::SpawnFailed(e) => e.to_string(),
            };
            debug!("vrrp_script {}: run: {what}", self.name);
            // A missing script fails every interval: say so once per cause.
            match &run {
                Run::SpawnFailed(e) => {
                    let text = e.to_string();
                    if last_spawn_error.as_deref() != Some(&text) {
                        warn!("vrrp_script {}: {text}", self.name);
                        last_spawn_error = Some(text);
                    }
                }
                Run::Done(_) => last_spawn_error = None,
            }
            if let Some(good) = self.hysteresis.record(success) {
                let verb = if good { "succeeded" } else { "failed" };
                info!("vrrp_script {}: {verb} ({what})", self.name);
                let event = TrackEvent {
                    tracker: TrackerId::Script(self.name.clone()),
                    status: Status::Up(good),
                };
                if self.tx.send(event).is_err() {
                    break;
                }
            }
        }
        debug!("vrrp_script {}: runner stopped", self.name);
    }

    /// Run the script once; `None` if the receiver went away meanwhile (the
    /// script's group was then killed and it was reaped).
    async fn run_once(&self) -> Option<Run> {
        let mut child = match command::spawn(&self.argv, &self.run_as) {
            Ok(child) => child,
            Err(e) => return Some(Run::SpawnFailed(e)),
        };
        tokio::select! {
            outcome = command::wait_or_kill(&mut child, self.timeout) => Some(Run::Done(outcome)),
            _ = self.tx.closed() => {
                command::kill_and_reap(&mut child).await;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::tests::{is_gone, our_zombies, read_pid, root, wait_until, TempDir};
    use crate::config::Location;
    use crate::track::EventReceiver;

    /// Feed `runs` (true = success) and collect the state after each.
    fn table(h: &mut Hysteresis, runs: &str) -> Vec<Option<bool>> {
        runs.chars().map(|c| h.record(c == 'S')).collect()
    }

    #[test]
    fn hysteresis_rise_2_fall_3() {
        let mut h = Hysteresis::new(2, 3, false);
        assert!(h.is_good());
        // Two failures are not enough; a success resets the count.
        assert_eq!(table(&mut h, "FFSFF"), [None; 5]);
        assert!(h.is_good());
        // The third consecutive failure makes it bad.
        assert_eq!(table(&mut h, "F"), [Some(false)]);
        assert!(!h.is_good());
        // Bad: one success is not enough, a failure resets, two rise it.
        assert_eq!(table(&mut h, "SFFS"), [None; 4]);
        assert_eq!(table(&mut h, "S"), [Some(true)]);
        assert_eq!(table(&mut h, "SSS"), [None; 3]);
        assert_eq!(table(&mut h, "FFF"), [None, None, Some(false)]);
        assert_eq!(table(&mut h, "FFFF"), [None; 4]);
    }

    #[test]
    fn hysteresis_init_fail_and_ones() {
        let mut h = Hysteresis::new(2, 3, true);
        assert!(!h.is_good());
        assert_eq!(table(&mut h, "FSS"), [None, None, Some(true)]);

        let mut h = Hysteresis::new(1, 1, false);
        assert_eq!(
            table(&mut h, "SFFSS"),
            [None, Some(false), None, Some(true), None]
        );
        let mut h = Hysteresis::new(1, 1, true);
        assert_eq!(table(&mut h, "FS"), [None, Some(true)]);
        // 0 is treated as 1 rather than panicking.
        let mut h = Hysteresis::new(0, 0, false);
        assert_eq!(table(&mut h, "FS"), [Some(false), Some(true)]);
    }

    fn vrrp_script(name: &str, cmd: &str, interval: Duration, timeout: Duration) -> VrrpScript {
        VrrpScript {
            name: name.into(),
            defined_at: Location::new("test.conf", 1),
            script: cmd.into(),
            interval,
            timeout,
            weight: 0,
            reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            init_fail: false,
        }
    }

    async fn next_event(rx: &mut EventReceiver) -> TrackEvent {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no event in 10 s")
            .expect("channel closed")
    }

    fn up(name: &str, good: bool) -> TrackEvent {
        TrackEvent {
            tracker: TrackerId::Script(name.into()),
            status: Status::Up(good),
        }
    }

    /// The test drives each run: run N creates `started.N`, then waits for
    /// `go.N` and exits with the code written in it.
    #[tokio::test]
    async fn rise_and_fall_counted_per_run() {
        let dir = TempDir::new("script");
        let d = dir.0.display();
        let body = format!(
            "#!/bin/sh\nn=$(( $(cat {d}/count) + 1 ))\necho $n > {d}/count\necho $$ > {d}/pid.$n\n\
             touch {d}/started.$n\nwhile [ ! -e {d}/go.$n ]; do sleep 0.01; done\nexit $(cat {d}/go.$n)\n"
        );
        std::fs::write(dir.path("count"), "0\n").unwrap();
        let path = dir.script("xvt_toggle", &body);
        let mut s = vrrp_script(
            "chk",
            &path.display().to_string(),
            Duration::from_millis(10),
            Duration::from_secs(20),
        );
        s.rise = 2;
        s.fall = 3;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = spawn(&s, root(), false, tx).unwrap();

        // Exit codes of runs 1..; the event expected right after each.
        let plan: [(i32, Option<bool>); 9] = [
            (1, None),
            (1, None),
            (0, None), // resets the fall count
            (1, None),
            (2, None),
            (1, Some(false)), // third failure in a row
            (0, None),
            (1, None), // resets the rise count
            (0, None),
        ];
        let mut plan = plan.to_vec();
        plan.push((0, Some(true)));
        for (i, (code, want)) in plan.iter().enumerate() {
            let n = i + 1;
            wait_until(|| dir.path(&format!("started.{n}")).exists()).await;
            // Never two at once: run n+1 has not started while n waits.
            tokio::time::sleep(Duration::from_millis(30)).await;
            assert!(!dir.path(&format!("started.{}", n + 1)).exists());
            std::fs::write(dir.path(&format!("go.{n}")), format!("{code}\n")).unwrap();
            // Run n is fully handled (event sent) once run n+1 starts.
            wait_until(|| dir.path(&format!("started.{}", n + 1)).exists()).await;
            let got = rx.try_recv().ok();
            assert_eq!(got, want.map(|good| up("chk", good)), "after run {n}");
        }

        // Dropping the receiver stops the runner and kills the waiting run.
        let waiting = read_pid(&dir.path(&format!("pid.{}", plan.len() + 1)));
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("runner did not stop")
            .unwrap();
        wait_until(|| is_gone(waiting)).await;
        wait_until(|| our_zombies("xvt_toggle").is_empty()).await;
    }

    #[tokio::test]
    async fn hanging_script_is_killed_at_timeout() {
        let dir = TempDir::new("script");
        let path = dir.script(
            "xvt_hangs",
            &format!(
                "#!/bin/sh\nsleep 100 &\necho $! > {}\necho $$ > {}\nsleep 100\n",
                dir.path("child.pid").display(),
                dir.path("script.pid").display()
            ),
        );
        let s = vrrp_script(
            "hang",
            &path.display().to_string(),
            Duration::from_secs(30),
            Duration::from_millis(400),
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let started = std::time::Instant::now();
        let task = spawn(&s, root(), false, tx).unwrap();
        // Timed out = failure: good → bad with fall 1.
        assert_eq!(next_event(&mut rx).await, up("hang", false));
        assert!(started.elapsed() < Duration::from_secs(5));
        let script = read_pid(&dir.path("script.pid"));
        let child = read_pid(&dir.path("child.pid"));
        wait_until(|| is_gone(script) && is_gone(child)).await;
        wait_until(|| our_zombies("xvt_hangs").is_empty()).await;
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("runner did not stop")
            .unwrap();
    }

    #[tokio::test]
    async fn missing_script_fails_and_init_fail_succeeds() {
        let dir = TempDir::new("script");
        let s = vrrp_script(
            "gone",
            &dir.path("missing.sh").display().to_string(),
            Duration::from_millis(20),
            Duration::from_secs(1),
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = spawn(&s, root(), false, tx).unwrap();
        assert_eq!(next_event(&mut rx).await, up("gone", false));
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();

        // init_fail: starts bad; the first success is reported.
        let mut s = vrrp_script(
            "t",
            "true",
            Duration::from_millis(20),
            Duration::from_secs(1),
        );
        s.init_fail = true;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = spawn(&s, root(), false, tx).unwrap();
        assert_eq!(next_event(&mut rx).await, up("t", true));
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn spawn_validates_up_front() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let s = vrrp_script(
            "bad",
            "/bin/check 'oops",
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let e = spawn(&s, root(), false, tx.clone()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "vrrp_script bad: command `/bin/check 'oops`: missing terminating '"
        );

        let dir = TempDir::new("script");
        let path = dir.script("check.sh", "#!/bin/sh\nexit 0\n");
        std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let s = vrrp_script(
            "insecure",
            &path.display().to_string(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let e = spawn(&s, root(), true, tx.clone()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "vrrp_script insecure: {}: {} is a world-writable directory; refusing to run it with enable_script_security",
                path.display(),
                dir.0.display()
            )
        );
        // Without security it is accepted.
        spawn(&s, root(), false, tx.clone()).unwrap().abort();
        // A bare name is resolved on PATH and checked.
        let s = vrrp_script(
            "sh",
            "sh -c 'exit 0'",
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        spawn(&s, root(), true, tx).unwrap().abort();
    }
}
