//! xvrrpd against xvrrpd on a bridged segment: election, failover, GARP.

use std::time::{Duration, Instant};

use anyhow::Result;
use tests::vrrp_lab::{garp_count, instance_config, Lab, VIP};

/// Master_Down_Interval for priority 100 at 1 s (v2): 3 + 156/256 s.
const MDI_100: Duration = Duration::from_micros(3_609_375);

#[test]
fn election_failover_on_kill_and_on_sigterm() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let garp = lab.watch_garp()?;
    let mut master = lab.xvrrpd(0, &instance_config(200, ""))?;
    // A VIP left on the backup by an earlier run is removed at start-up.
    lab.nodes[1]
        .ns
        .ip(&["addr", "add", &format!("{VIP}/24"), "dev", "eth0"])?;
    let backup = lab.xvrrpd(1, &instance_config(100, ""))?;

    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "priority 200 should win; holders {:?}\nnode0:\n{}\nnode1:\n{}",
        lab.holders(VIP),
        master.log_text(),
        backup.log_text()
    );
    assert!(
        tests::wait_until(
            Duration::from_secs(3),
            Duration::from_millis(50),
            || garp_count(&garp) >= 1
        ),
        "no gratuitous ARP seen by the observer: {}",
        garp.log_text()
    );
    // Steady state: no split brain.
    for _ in 0..20 {
        assert_eq!(lab.holders(VIP), vec![0], "split brain or lost VIP");
        std::thread::sleep(Duration::from_millis(100));
    }

    // SIGTERM on the master: priority 0, the backup takes over after Skew_Time (~0.6 s).
    let stopped = Instant::now();
    let status = master
        .terminate(Duration::from_secs(5))
        .expect("xvrrpd stops on SIGTERM");
    assert!(
        status.success(),
        "exit status {status}: {}",
        master.log_text()
    );
    assert!(
        lab.wait_holder(1, Duration::from_secs(3)),
        "backup did not take over after SIGTERM: {:?}\n{}",
        lab.holders(VIP),
        backup.log_text()
    );
    let took = stopped.elapsed();
    assert!(
        took < MDI_100,
        "priority 0 should make takeover faster than Master_Down_Interval: {took:?}"
    );
    assert!(
        master.log_text().contains("(VI_1) sent 0 priority"),
        "{}",
        master.log_text()
    );

    // The old master comes back with priority 200 and preempts.
    let mut master = lab.xvrrpd(0, &instance_config(200, ""))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "preempt back: {:?}\n{}",
        lab.holders(VIP),
        master.log_text()
    );

    // kill -9: no priority 0, the backup waits Master_Down_Interval.
    let killed = Instant::now();
    master.signal(libc::SIGKILL);
    let _ = master.child.wait();
    // A killed daemon cannot remove its VIP (keepalived neither); the backup must add it.
    let taken = tests::wait_until(Duration::from_secs(8), Duration::from_millis(10), || {
        lab.holders(VIP).contains(&1)
    });
    assert!(
        taken,
        "backup did not take over after kill -9: {:?}\n{}",
        lab.holders(VIP),
        backup.log_text()
    );
    let took = killed.elapsed();
    assert!(
        took >= MDI_100 - Duration::from_millis(1100),
        "took over too early: {took:?}"
    );
    assert!(
        took < MDI_100 + Duration::from_secs(2),
        "took over too late: {took:?}"
    );
    Ok(())
}
