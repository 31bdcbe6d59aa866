//! More xvrrpd-only scenarios: three nodes, unicast, nopreempt, PASS
//! mismatch and link down. Each asserts who holds the VIP as `ip addr` shows it.

use std::time::Duration;

use anyhow::Result;
use tests::vrrp_lab::{instance_config, Lab, VIP};

#[test]
fn three_nodes_elect_by_priority_and_fail_over_in_order() -> Result<()> {
    assert!(tests::is_root(), "run as root (cargo xtask test)");
    let lab = Lab::new(3)?;
    let mut a = lab.xvrrpd(0, &instance_config(200, ""))?;
    let b = lab.xvrrpd(1, &instance_config(150, ""))?;
    let c = lab.xvrrpd(2, &instance_config(100, ""))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "{:?}\n{}",
        lab.holders(VIP),
        a.log_text()
    );
    lab.steady(0, Duration::from_secs(3)).unwrap();
    a.terminate(Duration::from_secs(5)).expect("stops");
    assert!(
        lab.wait_holder(1, Duration::from_secs(5)),
        "priority 150 next: {:?}\n{}\n{}",
        lab.holders(VIP),
        b.log_text(),
        c.log_text()
    );
    lab.steady(1, Duration::from_secs(5)).unwrap();
    assert!(
        !c.log_text().contains("-> Master"),
        "priority 100 must not have become master:\n{}",
        c.log_text()
    );
    Ok(())
}

#[test]
fn unicast_pair_fails_over() -> Result<()> {
    assert!(tests::is_root(), "run as root (cargo xtask test)");
    let lab = Lab::new(2)?;
    let unicast = |me: usize, peer: usize| {
        format!(
            "unicast_src_ip {}\n    unicast_peer {{\n        {}\n    }}",
            lab.nodes[me].addr, lab.nodes[peer].addr
        )
    };
    let mut a = lab.xvrrpd(0, &instance_config(200, &unicast(0, 1)))?;
    let b = lab.xvrrpd(1, &instance_config(100, &unicast(1, 0)))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "{:?}\n{}",
        lab.holders(VIP),
        a.log_text()
    );
    lab.steady(0, Duration::from_secs(5)).unwrap();
    // Unicast adverts only: the observer sees none to the multicast group.
    let v = lab.peers_json(1)?;
    assert_eq!(v["peers"][0]["multicast"], false, "{v}");
    assert_eq!(v["peers"][0]["source"], lab.nodes[0].addr.as_str(), "{v}");
    a.terminate(Duration::from_secs(5)).expect("stops");
    assert!(
        lab.wait_holder(1, Duration::from_secs(5)),
        "{:?}\n{}",
        lab.holders(VIP),
        b.log_text()
    );
    Ok(())
}

#[test]
fn nopreempt_keeps_the_current_master() -> Result<()> {
    assert!(tests::is_root(), "run as root (cargo xtask test)");
    let lab = Lab::new(2)?;
    let low = lab.xvrrpd(1, &instance_config(100, "nopreempt"))?;
    assert!(
        lab.wait_holder(1, Duration::from_secs(10)),
        "{}",
        low.log_text()
    );
    // A higher priority with nopreempt set on it does not take over a live master.
    let high = lab.xvrrpd(0, &instance_config(200, "nopreempt"))?;
    lab.steady(1, Duration::from_secs(6)).unwrap();
    assert!(
        !high.log_text().contains("-> Master"),
        "nopreempt node preempted:\n{}",
        high.log_text()
    );
    Ok(())
}

#[test]
fn pass_mismatch_means_no_peering() -> Result<()> {
    assert!(tests::is_root(), "run as root (cargo xtask test)");
    let lab = Lab::new(2)?;
    let a = lab.xvrrpd(0, &instance_config(200, ""))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "{}",
        a.log_text()
    );
    let other = instance_config(100, "").replace("secret1", "other1");
    let b = lab.xvrrpd(1, &other)?;
    // The adverts are dropped by the kernel as auth mismatches, so b becomes master too.
    assert!(
        tests::wait_until(Duration::from_secs(8), Duration::from_millis(50), || lab
            .holders(VIP)
            == vec![0, 1]),
        "{:?}\n{}",
        lab.holders(VIP),
        b.log_text()
    );
    let v = lab.peers_json(1)?;
    assert!(v["counters"]["auth_mismatch"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["counters"]["accepted"], 0, "{v}");
    Ok(())
}

#[test]
fn link_down_moves_the_vip() -> Result<()> {
    assert!(tests::is_root(), "run as root (cargo xtask test)");
    let lab = Lab::new(2)?;
    let a = lab.xvrrpd(0, &instance_config(200, ""))?;
    let b = lab.xvrrpd(1, &instance_config(100, ""))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "{}",
        a.log_text()
    );
    lab.steady(0, Duration::from_secs(2)).unwrap();
    // Take the master's bridge port down: its eth0 loses carrier and it goes FAULT.
    lab.segment.hub.ip(&["link", "set", "p0", "down"])?;
    assert!(
        tests::wait_until(Duration::from_secs(8), Duration::from_millis(20), || {
            lab.nodes[1].ns.has_address("eth0", VIP) && !lab.nodes[0].ns.has_address("eth0", VIP)
        }),
        "{:?}\n{}\n{}",
        lab.holders(VIP),
        a.log_text(),
        b.log_text()
    );
    assert!(a.log_text().contains("-> Fault"), "{}", a.log_text());
    lab.segment.hub.ip(&["link", "set", "p0", "up"])?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "back after recovery: {:?}\n{}",
        lab.holders(VIP),
        a.log_text()
    );
    Ok(())
}
