//! More xvrrpd-only scenarios: three nodes, unicast, nopreempt, PASS
//! mismatch and link down. Each asserts who holds the VIP as `ip addr` shows it.

use std::time::Duration;

use anyhow::Result;
use tests::vrrp_lab::{instance_config, Lab, VIP};

#[test]
fn three_nodes_elect_by_priority_and_fail_over_in_order() -> Result<()> {
    tests::require_root!();
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
        !c.log_text().contains("Entering MASTER STATE"),
        "priority 100 must not have become master:\n{}",
        c.log_text()
    );
    Ok(())
}

#[test]
fn unicast_pair_fails_over() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let mut a = lab.xvrrpd(0, &instance_config(200, &lab.unicast(0, 1)))?;
    let b = lab.xvrrpd(1, &instance_config(100, &lab.unicast(1, 0)))?;
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
    tests::require_root!();
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
        !high.log_text().contains("Entering MASTER STATE"),
        "nopreempt node preempted:\n{}",
        high.log_text()
    );
    Ok(())
}

#[test]
fn pass_mismatch_means_no_peering() -> Result<()> {
    tests::require_root!();
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
    tests::require_root!();
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
    assert!(
        a.log_text().contains("Entering FAULT STATE"),
        "{}",
        a.log_text()
    );
    lab.segment.hub.ip(&["link", "set", "p0", "up"])?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "back after recovery: {:?}\n{}\n{}\nB's kernel: {:#}",
        lab.holders(VIP),
        a.log_text(),
        b.log_text(),
        lab.peers_json(1).unwrap_or_default()
    );
    Ok(())
}

#[test]
fn use_vmac_sends_from_the_virtual_mac() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let mut dump = lab.observer.ns.command("tcpdump");
    dump.args(["-i", "eth0", "-e", "-n", "-l", "-U", "arp or ip proto 112"]);
    let watch = lab
        .observer
        .ns
        .spawn(dump, &lab.dir.path("vmac-dump.log"))?;
    std::thread::sleep(Duration::from_millis(300));
    let mut a = lab.xvrrpd(0, &instance_config(200, "use_vmac"))?;
    let b = lab.xvrrpd(1, &instance_config(100, ""))?;
    let on_vmac = || lab.nodes[0].ns.has_address("vrrp.51", VIP);
    assert!(
        tests::wait_until(Duration::from_secs(10), Duration::from_millis(20), on_vmac),
        "VIP not on vrrp.51:\n{}",
        a.log_text()
    );
    let link = lab.nodes[0].ns.ip(&["-d", "link", "show", "vrrp.51"])?;
    assert!(
        link.contains("00:00:5e:00:01:33") && link.contains("macvlan"),
        "{link}"
    );
    // The backup hears the master through the vmac and stays backup.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !b.log_text().contains("Entering MASTER STATE"),
        "{}",
        b.log_text()
    );
    assert!(!lab.nodes[1].ns.has_address("eth0", VIP));
    let seen = watch.log_text();
    assert!(
        seen.lines()
            .any(|l| l.starts_with("00:00:5e:00:01:33") || l.contains(" 00:00:5e:00:01:33 >")),
        "no frame from the virtual MAC seen by the observer:\n{seen}"
    );
    a.terminate(Duration::from_secs(5)).expect("stops");
    assert!(
        lab.nodes[0].ns.ip(&["link", "show", "vrrp.51"]).is_err(),
        "vmac left behind"
    );
    assert!(
        lab.wait_holder(1, Duration::from_secs(5)),
        "{}",
        b.log_text()
    );
    Ok(())
}
