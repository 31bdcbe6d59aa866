//! Restart and crash, with keepalived 2.2.7 as the peer:
//! - `xvrrpd restart` (in place, also the upgrade path) never moves the
//!   VIP: the peer never sees a gap of its Master_Down_Interval;
//! - after `kill -9`, `xvrrpd cleanup` (the unit's ExecStopPost) takes the
//!   VIP off the dead host and sends priority 0 within a second;
//! - without it, the next start releases what the crash left.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use tests::{
    capture::{realtime_ns, Capture},
    vrrp_lab::{instance_config, Lab, VIP},
    Proc,
};

fn entering(p: &Proc) -> usize {
    p.log_text().matches("Entering").count()
}

/// When (since the watch started) who held the VIP, if not node 0 alone.
type Sightings = Vec<(Duration, Vec<usize>)>;

/// Samples who holds the VIP every 5 ms until dropped; records anything
/// but "node 0 alone".
struct Watch {
    stop: Arc<AtomicBool>,
    bad: Arc<Mutex<Sightings>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start(lab: &Lab) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let bad = Arc::new(Mutex::new(Vec::new()));
        let names: Vec<String> = lab.nodes.iter().map(|n| n.ns.name.clone()).collect();
        let (s, b) = (stop.clone(), bad.clone());
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let holders: Vec<usize> = names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| {
                        tests::output(
                            std::process::Command::new("ip")
                                .args(["-n", n, "-o", "addr", "show", "dev", "eth0"]),
                        )
                        .is_ok_and(|o| o.contains(&format!(" {VIP}/")))
                    })
                    .map(|(i, _)| i)
                    .collect();
                if holders != vec![0] {
                    b.lock().unwrap().push((t0.elapsed(), holders));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Watch {
            stop,
            bad,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Sightings {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.bad.lock().unwrap().clone()
    }
}

#[test]
fn twenty_in_place_restarts_never_move_the_vip() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let capture = Capture::start(&lab.observer.ns.name, "eth0")?;
    let xv = lab.xvrrpd(0, &instance_config(200, ""))?;
    let ka = lab.keepalived(1, &instance_config(100, ""))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "{}",
        xv.log_text()
    );
    std::thread::sleep(Duration::from_secs(1));
    let (xv_entering, ka_entering) = (entering(&xv), entering(&ka));
    let watch = Watch::start(&lab);
    let from = realtime_ns();
    for i in 0..20 {
        let out = tests::output(lab.nodes[0].ns.command(tests::xvrrpd_bin()).arg("restart"))
            .with_context(|| format!("restart {i}:\n{}", xv.log_text()))?;
        assert!(out.contains("restarted in place"), "{out}");
        // The same process: the PID survives the re-exec.
        assert!(std::path::Path::new(&format!("/proc/{}", xv.pid())).exists());
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(1));
    let bad = watch.finish();
    assert!(bad.is_empty(), "the VIP left node 0: {bad:?}");
    assert_eq!(
        entering(&ka),
        ka_entering,
        "keepalived moved:\n{}",
        ka.log_text()
    );
    // No "Entering" line either: each restart resumed as master.
    assert_eq!(entering(&xv), xv_entering, "{}", xv.log_text());
    assert_eq!(
        xv.log_text().matches("resumed in MASTER STATE").count(),
        20,
        "{}",
        xv.log_text()
    );
    // The widest gap between node 0's adverts across the restarts.
    let adverts: Vec<i64> = capture
        .since(from)
        .iter()
        .filter(|a| a.src.to_string() == lab.nodes[0].addr)
        .map(|a| a.ts)
        .collect();
    let widest = adverts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    eprintln!(
        "20 in-place restarts: widest advert gap {:.1} ms (keepalived's Master_Down_Interval 3609 ms)",
        widest as f64 / 1e6
    );
    assert!(widest < 3_609_000_000, "gap {widest} ns");
    Ok(())
}

#[test]
fn after_kill_9_cleanup_releases_within_a_second() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let xv = lab.xvrrpd(0, &instance_config(200, ""))?;
    let ka = lab.keepalived(1, &instance_config(100, ""))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "{}",
        xv.log_text()
    );
    std::thread::sleep(Duration::from_secs(1));
    let killed = Instant::now();
    xv.signal(libc::SIGKILL);
    // What systemd's ExecStopPost does once the main process has died.
    let mut waited = 0;
    while std::path::Path::new(&format!("/proc/{}", xv.pid())).exists() && waited < 100 {
        std::thread::sleep(Duration::from_millis(5));
        waited += 1;
    }
    let out = tests::output(lab.nodes[0].ns.command(tests::xvrrpd_bin()).arg("cleanup"))?;
    assert!(out.contains("1 priority-0 adverts sent, 1 VIPs"), "{out}");
    assert!(
        tests::wait_until(Duration::from_secs(1), Duration::from_millis(5), || !lab
            .nodes[0]
            .ns
            .has_address("eth0", VIP)),
        "the VIP is still on the dead host"
    );
    let off = killed.elapsed();
    // keepalived takes over at its Skew_Time after the priority 0.
    assert!(
        lab.wait_holder(1, Duration::from_secs(2)),
        "keepalived did not take over:\n{}",
        ka.log_text()
    );
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "takeover took {:?}: no priority 0?",
        killed.elapsed()
    );
    eprintln!(
        "kill -9 to VIP off the dead host: {off:?}; to the peer holding it: {:?}",
        killed.elapsed()
    );
    // Nothing left: no pins, no state file.
    let pins = xvrrpd::bpf::pin::root().join(&lab.nodes[0].ns.name);
    assert!(!pins.exists(), "{} left", pins.display());
    let state = std::path::Path::new("/run/xvrrpd").join(format!("{}.state", lab.nodes[0].ns.name));
    assert!(!state.exists(), "{} left", state.display());
    Ok(())
}

#[test]
fn the_next_start_releases_what_a_crash_left() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(1)?;
    let xv = lab.xvrrpd(0, &instance_config(200, ""))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "{}",
        xv.log_text()
    );
    xv.signal(libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        lab.nodes[0].ns.has_address("eth0", VIP),
        "kill -9 leaves the VIP"
    );
    drop(xv);
    let again = lab.xvrrpd(0, &instance_config(200, ""))?;
    assert!(
        tests::wait_until(Duration::from_secs(5), Duration::from_millis(20), || again
            .log_text()
            .contains("released what a previous xvrrpd left behind")),
        "{}",
        again.log_text()
    );
    // Released at once, then won back by election as a backup would.
    assert!(
        tests::wait_until(Duration::from_secs(5), Duration::from_millis(20), || again
            .log_text()
            .contains("Entering BACKUP STATE (init)")),
        "{}",
        again.log_text()
    );
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "{}",
        again.log_text()
    );
    Ok(())
}
