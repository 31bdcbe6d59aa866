//! `cargo xtask demo`: a real failover between xvrrpd and keepalived 2.2.7 in
//! a lab of network namespaces. Prints a timeline; cleans up on exit.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tests::{
    vrrp_lab::{instance_config, Lab, VIP},
    wait_until, xvrrpd_bin,
};

fn main() -> Result<()> {
    if !tests::is_root() {
        bail!("the demo creates network namespaces: run it as root");
    }
    let start = Instant::now();
    let say = |what: &str| println!("[{:>6.2}s] {what}", start.elapsed().as_secs_f64());
    let lab = Lab::new(2)?;
    say(&format!(
        "lab: node0 {} (xvrrpd, priority 150) and node1 {} (keepalived 2.2.7, priority 100) on a bridge; VIP {VIP}",
        lab.nodes[0].addr, lab.nodes[1].addr
    ));
    let who = |lab: &Lab| match lab.holders(VIP).as_slice() {
        [0] => "xvrrpd (node0)".to_owned(),
        [1] => "keepalived (node1)".to_owned(),
        [] => "nobody".to_owned(),
        h => format!("{h:?} (split brain!)"),
    };

    let ka = lab.keepalived(1, &instance_config(100, ""))?;
    if !wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        lab.holders(VIP) == vec![1]
    }) {
        bail!("keepalived did not become master:\n{}", ka.log_text());
    }
    say(&format!("keepalived alone: VIP held by {}", who(&lab)));

    let mut xv = lab.xvrrpd(0, &instance_config(150, ""))?;
    if !wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        lab.holders(VIP) == vec![0]
    }) {
        bail!("xvrrpd did not preempt:\n{}", xv.log_text());
    }
    say(&format!(
        "xvrrpd started with a higher priority and preempted: VIP held by {}",
        who(&lab)
    ));

    std::thread::sleep(Duration::from_secs(2));
    let peers = tests::output(lab.nodes[0].ns.command(xvrrpd_bin()).arg("peers"))?;
    say("what node0's kernel recorder saw, and where it runs (xvrrpd peers):");
    print!("{peers}");

    say("SIGTERM to xvrrpd: it sends priority 0 and removes the VIP");
    let t = Instant::now();
    xv.terminate(Duration::from_secs(5));
    if !wait_until(Duration::from_secs(5), Duration::from_millis(5), || {
        lab.holders(VIP) == vec![1]
    }) {
        bail!("keepalived did not take over:\n{}", ka.log_text());
    }
    say(&format!(
        "failover in {:.0} ms: VIP held by {}",
        t.elapsed().as_secs_f64() * 1000.0,
        who(&lab)
    ));

    let xv = lab.xvrrpd(0, &instance_config(150, ""))?;
    let t = Instant::now();
    if !wait_until(Duration::from_secs(10), Duration::from_millis(5), || {
        lab.holders(VIP) == vec![0]
    }) {
        bail!("xvrrpd did not come back:\n{}", xv.log_text());
    }
    say(&format!(
        "xvrrpd restarted and took the VIP back after {:.2} s (its Master_Down_Interval): VIP held by {}",
        t.elapsed().as_secs_f64(),
        who(&lab)
    ));
    say("xvrrpd's transitions:");
    for line in xv.log_text().lines().filter(|l| l.contains("Entering")) {
        println!("    {line}");
    }
    say("done; tearing the lab down");
    Ok(())
}
