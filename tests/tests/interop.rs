//! xvrrpd with keepalived 2.2.7 as the other node, both roles.

use std::time::Duration;

use anyhow::Result;
use tests::vrrp_lab::{instance_config, Lab, VIP};

#[test]
fn keepalived_master_xvrrpd_backup_v2_pass() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let mut ka = lab.keepalived(0, &instance_config(200, ""))?;
    let xv = lab.xvrrpd(1, &instance_config(100, ""))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "keepalived should be master: {:?}\n{}",
        lab.holders(VIP),
        ka.log_text()
    );
    lab.steady(0, Duration::from_secs(8)).unwrap();
    // keepalived stops (priority 0): xvrrpd takes over.
    ka.terminate(Duration::from_secs(10))
        .expect("keepalived stops");
    assert!(
        lab.wait_holder(1, Duration::from_secs(4)),
        "xvrrpd did not take over: {:?}\n{}",
        lab.holders(VIP),
        xv.log_text()
    );
    // keepalived comes back with the higher priority and preempts.
    let ka = lab.keepalived(0, &instance_config(200, ""))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "keepalived did not preempt: {:?}\n{}\n{}",
        lab.holders(VIP),
        ka.log_text(),
        xv.log_text()
    );
    lab.steady(0, Duration::from_secs(3)).unwrap();
    Ok(())
}

#[test]
fn xvrrpd_master_keepalived_backup_v2_pass() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let mut xv = lab.xvrrpd(0, &instance_config(200, ""))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "xvrrpd should be master: {:?}\n{}",
        lab.holders(VIP),
        xv.log_text()
    );
    let ka = lab.keepalived(1, &instance_config(100, ""))?;
    // The bar: no split brain over 30 s of steady state.
    lab.steady(0, Duration::from_secs(30)).unwrap();
    let log = ka.log_text();
    assert!(
        !log.contains("Entering MASTER"),
        "keepalived went master while xvrrpd was: {log}"
    );
    xv.terminate(Duration::from_secs(5)).expect("xvrrpd stops");
    assert!(
        lab.wait_holder(1, Duration::from_secs(4)),
        "keepalived did not take over: {:?}\n{}",
        lab.holders(VIP),
        ka.log_text()
    );
    Ok(())
}

#[test]
fn v3_ipv4_and_ipv6_interop() -> Result<()> {
    tests::require_root!();
    for (family, vip, extra_global) in [
        ("IPv4", VIP, "vrrp_version 3"),
        ("IPv6", "2001:db8::100", ""),
    ] {
        let lab = Lab::new(2)?;
        for n in &lab.nodes {
            n.ns.sh("sysctl -qw net.ipv6.conf.eth0.accept_dad=0")?;
        }
        let config = |prio: u8| {
            format!(
                "global_defs {{\n {extra_global}\n}}\nvrrp_instance VI_6 {{\n state BACKUP\n interface eth0\n virtual_router_id 52\n priority {prio}\n advert_int 1\n version 3\n virtual_ipaddress {{\n {vip}\n }}\n}}\n"
            )
        };
        // Gratuitous ARP (IPv4) or unsolicited NA (IPv6, ICMPv6 type 136) for the VIP.
        let filter = if family == "IPv6" {
            "icmp6 and ip6[40] == 136"
        } else {
            "arp"
        };
        let mut dump = lab.observer.ns.command("tcpdump");
        dump.args(["-i", "eth0", "-n", "-l", "-U", filter]);
        let announced = lab.observer.ns.spawn(dump, &lab.dir.path("announce.log"))?;
        std::thread::sleep(Duration::from_millis(300));
        let xv = lab.xvrrpd(0, &config(200))?;
        let mut ka = lab.keepalived(1, &config(100))?;
        let holds = |i: usize| lab.nodes[i].ns.has_address("eth0", vip);
        assert!(
            tests::wait_until(
                Duration::from_secs(10),
                Duration::from_millis(20),
                || holds(0) && !holds(1)
            ),
            "{family}: xvrrpd should be master\n{}\n{}",
            xv.log_text(),
            ka.log_text()
        );
        for _ in 0..30 {
            assert!(
                holds(0) && !holds(1),
                "{family}: split brain\n{}",
                ka.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            tests::wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
                announced.log_text().contains(vip)
            }),
            "{family}: no GARP/NA for {vip} seen by the observer:\n{}",
            announced.log_text()
        );
        drop(xv);
        assert!(
            tests::wait_until(Duration::from_secs(6), Duration::from_millis(20), || holds(
                1
            )),
            "{family}: keepalived did not take over\n{}",
            ka.log_text()
        );
        ka.terminate(Duration::from_secs(5));
    }
    Ok(())
}

#[test]
fn unicast_pair_with_keepalived_fails_over_both_ways() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let mut xv = lab.xvrrpd(0, &instance_config(200, &lab.unicast(0, 1)))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "{}",
        xv.log_text()
    );
    let mut ka = lab.keepalived(1, &instance_config(100, &lab.unicast(1, 0)))?;
    lab.steady(0, Duration::from_secs(6)).unwrap();
    xv.terminate(Duration::from_secs(5)).expect("xvrrpd stops");
    assert!(
        lab.wait_holder(1, Duration::from_secs(4)),
        "keepalived did not take over: {}",
        ka.log_text()
    );
    let xv = lab.xvrrpd(0, &instance_config(200, &lab.unicast(0, 1)))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "xvrrpd did not preempt back:\n{}\n{}",
        xv.log_text(),
        ka.log_text()
    );
    // keepalived's unicast adverts (as master) reached xvrrpd's kernel recorder as unicast.
    let v = lab.peers_json(0)?;
    assert_eq!(v["peers"][0]["source"], lab.nodes[1].addr.as_str(), "{v}");
    assert_eq!(v["peers"][0]["multicast"], false, "{v}");
    ka.terminate(Duration::from_secs(5));
    Ok(())
}
