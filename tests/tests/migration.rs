//! The README's "Migrating from keepalived", end to end in namespaces: a keepalived
//! pair is checked, becomes keepalived + xvrrpd (backup first), then an xvrrpd pair,
//! fails over, and rolls one node back to keepalived. The same keepalived.conf serves
//! both daemons at every step, LVS and SMTP sections included.
//!
//! A watcher samples who holds the VIP every few milliseconds for the whole run: two
//! holders never for longer than a preemption handover, and no holder never for longer
//! than a takeover.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use tests::{
    vrrp_lab::{Lab, VIP},
    Proc,
};

/// A production-style keepalived.conf: mail alerts, an LVS virtual server, one VRRP
/// instance. `xvrrpd check` must accept it as it is.
fn keepalived_conf(router_id: &str, priority: u8) -> String {
    format!(
        r#"
global_defs {{
    router_id {router_id}
    notification_email {{
        ops@example.org
    }}
    notification_email_from keepalived@{router_id}.example.org
    smtp_server 127.0.0.1
    smtp_connect_timeout 30
}}

vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    smtp_alert
    authentication {{
        auth_type PASS
        auth_pass secret1
    }}
    virtual_ipaddress {{
        {VIP}/24
    }}
}}

virtual_server {VIP} 80 {{
    delay_loop 6
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.1 80 {{
        TCP_CHECK {{
            connect_timeout 3
        }}
    }}
}}
"#
    )
}

/// Longest the VIP may be on no node while it moves: the new master's takeover after
/// a priority-0 advert is its skew time (under a second), plus generous slack.
const MAX_VIP_GAP: Duration = Duration::from_secs(3);
/// Longest two nodes may both hold it. A preempting master adds the VIP as it sends its
/// first advert and the old master drops it when that advert arrives: milliseconds,
/// which ARP settles in the new master's favour (its GARP comes last). A split brain
/// lasts until something changes: seconds.
const MAX_HANDOVER_OVERLAP: Duration = Duration::from_millis(250);
const START: Duration = Duration::from_secs(10);

/// Who held the VIP, sampled for the whole run.
struct Watch {
    samples: Vec<(Instant, Vec<usize>)>,
}

impl Watch {
    /// The longest stretch of consecutive samples for which `pred` held, and when it began.
    fn longest(&self, pred: impl Fn(&[usize]) -> bool) -> Option<(Duration, Duration)> {
        let origin = self.samples.first()?.0;
        let mut longest: Option<(Duration, Duration)> = None;
        let mut run_start: Option<Instant> = None;
        // Before the first election nobody holds the VIP yet: that is no gap.
        let elected = self.samples.iter().skip_while(|(_, h)| h.is_empty());
        for (at, holders) in elected {
            match (pred(holders), run_start) {
                (true, None) => run_start = Some(*at),
                (false, Some(start)) => {
                    let run = at.duration_since(start);
                    if longest.is_none_or(|(l, _)| run > l) {
                        longest = Some((run, start.duration_since(origin)));
                    }
                    run_start = None;
                }
                _ => {}
            }
        }
        longest
    }

    fn check(&self) -> Result<(), String> {
        if let Some((run, at)) = self.longest(|h| h.len() > 1) {
            if run > MAX_HANDOVER_OVERLAP {
                return Err(format!(
                    "split brain: two holders for {run:?}, {at:?} into the run"
                ));
            }
        }
        if let Some((run, at)) = self.longest(|h| h.is_empty()) {
            if run > MAX_VIP_GAP {
                return Err(format!(
                    "VIP held by no node for {run:?}, {at:?} into the run"
                ));
            }
        }
        Ok(())
    }
}

fn check_config(lab: &Lab, node: usize, conf: &std::path::Path) -> Result<String> {
    let out = lab.nodes[node]
        .ns
        .command(tests::xvrrpd_bin())
        .arg("check")
        .arg("-f")
        .arg(conf)
        .output()
        .context("running xvrrpd check")?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "xvrrpd check -f {} on node {node}: {}\n{stderr}",
        conf.display(),
        out.status
    );
    Ok(stderr)
}

fn stop(p: &mut Proc, what: &str) {
    let status = p.terminate(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{what} did not stop cleanly on SIGTERM ({status:?}):\n{}",
        p.log_text()
    );
}

/// Waits until exactly `node` holds the VIP, then that it stays there for `hold`.
fn settle(lab: &Lab, node: usize, hold: Duration, step: &str, logs: &[&Proc]) {
    let logs = || {
        logs.iter()
            .map(|p| format!("--- {}\n{}", p.log.display(), p.log_text()))
            .collect::<String>()
    };
    assert!(
        lab.wait_holder(node, START),
        "{step}: node {node} should hold the VIP, holders {:?}\n{}",
        lab.holders(VIP),
        logs()
    );
    if let Err(e) = lab.steady(node, hold) {
        panic!("{step}: {e}\n{}", logs());
    }
}

#[test]
fn keepalived_pair_to_xvrrpd_pair_one_node_at_a_time_and_back() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let configs = [keepalived_conf("lb1", 150), keepalived_conf("lb2", 100)];
    let done = AtomicBool::new(false);

    let watch = thread::scope(|scope| -> Result<Watch> {
        let watcher = scope.spawn(|| {
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                samples.push((Instant::now(), lab.holders(VIP)));
                thread::sleep(Duration::from_millis(10));
            }
            Watch { samples }
        });
        // Stops the watcher even if `migrate` panics: the scope joins it
        // before the panic goes on, and it would otherwise sample forever.
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let result = {
            let _done = Done(&done);
            migrate(&lab, &configs)
        };
        let watch = watcher.join().expect("watcher thread");
        result.map(|()| watch)
    })?;
    assert!(watch.samples.len() > 100, "the watcher sampled too rarely");
    println!(
        "{} samples; longest with two holders {:?}, with none {:?} (run, when)",
        watch.samples.len(),
        watch.longest(|h| h.len() > 1),
        watch.longest(|h| h.is_empty())
    );
    watch.check().unwrap();
    Ok(())
}

fn migrate(lab: &Lab, configs: &[String; 2]) -> Result<()> {
    let hold = Duration::from_secs(4);

    // 0. Today: keepalived on both nodes, lb1 (priority 150) is master.
    let mut ka0 = lab.keepalived(0, &configs[0])?;
    let mut ka1 = lab.keepalived(1, &configs[1])?;
    settle(lab, 0, hold, "keepalived pair", &[&ka0, &ka1]);

    // 1. Check the files keepalived runs with, where they run (the interface must exist).
    for node in 0..2 {
        let conf = lab.dir.path(&format!("keepalived{node}.conf"));
        let warnings = check_config(lab, node, &conf)?;
        assert!(
            warnings.contains("virtual_server") && warnings.contains("LVS is not run by xvrrpd"),
            "the LVS section should be reported as not run: {warnings}"
        );
        assert!(
            warnings.contains("smtp_alert"),
            "smtp_alert should be reported as not implemented: {warnings}"
        );
    }

    // 2. The backup first: stop keepalived there, start xvrrpd with the same file.
    //    The master never notices.
    stop(&mut ka1, "keepalived on the backup");
    let xv1 = lab.xvrrpd(1, &configs[1])?;
    assert!(
        tests::wait_until(START, Duration::from_millis(50), || {
            lab.peers_json(1)
                .is_ok_and(|v| v["peers"][0]["priority"] == 150)
        }),
        "xvrrpd on the backup never recorded keepalived's adverts:\n{}",
        xv1.log_text()
    );
    settle(
        lab,
        0,
        hold,
        "keepalived master + xvrrpd backup",
        &[&ka0, &xv1],
    );

    // 3. Then the master: keepalived resigns (priority 0), xvrrpd on lb2 takes over;
    //    xvrrpd on lb1 starts and preempts back with its higher priority.
    stop(&mut ka0, "keepalived on the master");
    settle(lab, 1, Duration::ZERO, "lb1 stopped keepalived", &[&xv1]);
    let mut xv0 = lab.xvrrpd(0, &configs[0])?;
    settle(lab, 0, hold, "xvrrpd pair", &[&xv0, &xv1]);

    // 4. The xvrrpd pair fails over and back like the keepalived pair did.
    stop(&mut xv0, "xvrrpd on the master");
    settle(lab, 1, Duration::ZERO, "xvrrpd master stopped", &[&xv1]);
    let xv0 = lab.xvrrpd(0, &configs[0])?;
    settle(lab, 0, hold, "xvrrpd master back", &[&xv0, &xv1]);

    // 5. Rollback, one node at a time, the same way: lb2 goes back to keepalived.
    let mut xv1 = xv1;
    stop(&mut xv1, "xvrrpd on the backup");
    let ka1 = lab.keepalived(1, &configs[1])?;
    settle(
        lab,
        0,
        hold,
        "xvrrpd master + keepalived backup",
        &[&xv0, &ka1],
    );
    let log = ka1.log_text();
    assert!(
        !log.contains("Entering MASTER STATE"),
        "keepalived went master beside the xvrrpd master:\n{log}"
    );
    Ok(())
}
