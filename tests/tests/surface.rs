//! keepalived's VRRP surface beyond VIPs (issue 13), with keepalived 2.2.7 as
//! the peer, checked on the wire and in the kernel: excluded VIPs, virtual
//! routes and rules follow the master; a VIP or route deleted by hand on the
//! master is handled as keepalived handles it; an interface deleted and
//! created again (or created after the start, with `dynamic_interfaces`)
//! recovers; accept mode's firewall; AH is refused at check time.

use std::{process::Command, time::Duration};

use anyhow::{Context, Result};
use tests::{
    vrrp_lab::{Lab, VIP},
    Netns, Proc,
};

const EXCLUDED4: &str = "198.51.100.10";
const EXCLUDED6: &str = "2001:db8:e::10";

/// One instance on eth0 with excluded VIPs, two routes and a rule.
fn full_config(priority: u8, extra: &str) -> String {
    format!(
        r#"
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    authentication {{
        auth_type PASS
        auth_pass secret1
    }}
    virtual_ipaddress {{
        {VIP}/24
    }}
    virtual_ipaddress_excluded {{
        {EXCLUDED4}/32
        {EXCLUDED6}/128
    }}
    virtual_routes {{
        198.51.100.0/24 via 192.0.2.254 dev eth0 metric 5
        blackhole 203.0.113.0/24 table 100 no_track
    }}
    virtual_rules {{
        from {VIP} table 100 priority 100
    }}
    {extra}
}}
"#
    )
}

/// What a master of [`full_config`] has in the kernel of `ns`, as iproute2 shows it.
#[derive(Debug, PartialEq, Eq)]
struct Held {
    vip: bool,
    excluded4: bool,
    excluded6: bool,
    route: bool,
    blackhole: bool,
    rule: bool,
}

impl Held {
    fn all() -> Self {
        Held {
            vip: true,
            excluded4: true,
            excluded6: true,
            route: true,
            blackhole: true,
            rule: true,
        }
    }

    fn none() -> Self {
        Held {
            vip: false,
            excluded4: false,
            excluded6: false,
            route: false,
            blackhole: false,
            rule: false,
        }
    }
}

fn held(ns: &Netns) -> Held {
    let addrs = ns.addresses("eth0").unwrap_or_default();
    let route = ns
        .ip(&["route", "show", "198.51.100.0/24"])
        .unwrap_or_default();
    let table = ns
        .ip(&["route", "show", "table", "100"])
        .unwrap_or_default();
    let rules = ns.ip(&["rule", "show"]).unwrap_or_default();
    Held {
        vip: addrs.iter().any(|a| a == VIP),
        excluded4: addrs.iter().any(|a| a == EXCLUDED4),
        excluded6: addrs.iter().any(|a| a == EXCLUDED6),
        // keepalived's protocol marks the routes it tracks.
        route: route.contains("via 192.0.2.254")
            && route.contains("proto keepalived")
            && route.contains("metric 5"),
        blackhole: table.contains("blackhole 203.0.113.0/24"),
        rule: rules
            .lines()
            .any(|l| l.starts_with("100:") && l.contains(&format!("from {VIP} lookup 100"))),
    }
}

fn wait_held(lab: &Lab, holder: usize, within: Duration) -> bool {
    tests::wait_until(within, Duration::from_millis(50), || {
        (0..lab.nodes.len()).all(|i| {
            let want = if i == holder {
                Held::all()
            } else {
                Held::none()
            };
            held(&lab.nodes[i].ns) == want
        })
    })
}

fn states(lab: &Lab) -> String {
    (0..lab.nodes.len())
        .map(|i| format!("node {i}: {:?}", held(&lab.nodes[i].ns)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// tcpdump on the observer, one verbose line per VRRP advert.
fn watch_adverts(lab: &Lab, tag: &str) -> Result<Proc> {
    let mut cmd = lab.observer.ns.command("tcpdump");
    cmd.args(["-i", "eth0", "-n", "-l", "-U", "-v", "ip proto 112"]);
    let p = lab
        .observer
        .ns
        .spawn(cmd, &lab.dir.path(&format!("{tag}.log")))?;
    std::thread::sleep(Duration::from_millis(300));
    Ok(p)
}

#[test]
fn excluded_vips_routes_and_rules_follow_the_master_both_ways() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let adverts = watch_adverts(&lab, "adverts")?;
    let mut xv = lab.xvrrpd(0, &full_config(200, ""))?;
    let mut ka = lab.keepalived(1, &full_config(100, ""))?;
    assert!(
        wait_held(&lab, 0, Duration::from_secs(10)),
        "xvrrpd should hold everything:\n{}\n{}",
        states(&lab),
        xv.log_text()
    );
    // On the wire: xvrrpd's adverts carry the VIP and never the excluded ones.
    let from_xvrrpd = || {
        adverts
            .log_text()
            .lines()
            .filter(|l| l.contains("192.0.2.1 > 224.0.0.18"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(
        tests::wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
            from_xvrrpd()
                .iter()
                .any(|l| l.contains("addrs: 192.0.2.100"))
        }),
        "no advert from xvrrpd seen:\n{}",
        adverts.log_text()
    );
    for line in from_xvrrpd() {
        assert!(!line.contains(EXCLUDED4), "excluded VIP advertised: {line}");
    }

    // xvrrpd stops: keepalived takes everything over, xvrrpd leaves nothing.
    xv.terminate(Duration::from_secs(10))
        .context("xvrrpd stops")?;
    assert!(
        wait_held(&lab, 1, Duration::from_secs(6)),
        "keepalived should hold everything:\n{}\n{}",
        states(&lab),
        ka.log_text()
    );
    // xvrrpd comes back with the higher priority and takes it all back.
    let xv = lab.xvrrpd(0, &full_config(200, ""))?;
    assert!(
        wait_held(&lab, 0, Duration::from_secs(10)),
        "xvrrpd should take everything back:\n{}\n{}\n{}",
        states(&lab),
        xv.log_text(),
        ka.log_text()
    );
    // And hands it over when it goes backup by priority (a failover, not a stop):
    // keepalived restarts at 250.
    ka.terminate(Duration::from_secs(10));
    let ka = lab.keepalived(1, &full_config(250, ""))?;
    assert!(
        wait_held(&lab, 1, Duration::from_secs(10)),
        "keepalived should preempt and hold everything:\n{}\n{}\n{}",
        states(&lab),
        xv.log_text(),
        ka.log_text()
    );
    Ok(())
}

fn entering(p: &Proc, state: &str) -> usize {
    p.log_text()
        .matches(&format!("Entering {state} STATE"))
        .count()
}

/// Deletes the VIP (then the tracked route) on the master `master`, running
/// `imp`, and checks what keepalived does: the master leaves MASTER with a
/// priority-0 advert and is back (with the VIP and route re-added) within its
/// skew time, before the peer can take over.
fn deletion_is_released_and_restored(master_is_xvrrpd: bool) -> Result<()> {
    let lab = Lab::new(2)?;
    let adverts = watch_adverts(&lab, "deletion")?;
    let (m, b) = if master_is_xvrrpd { (0, 1) } else { (1, 0) };
    let start = |i: usize, prio: u8| -> Result<Proc> {
        let conf = full_config(prio, "");
        // A second, untracked VIP: its deletion leaves the master alone.
        let conf = conf.replace(
            &format!("        {VIP}/24\n    }}"),
            &format!("        {VIP}/24\n        192.0.2.101/24 no_track\n    }}"),
        );
        if i == 0 {
            lab.xvrrpd(0, &conf)
        } else {
            lab.keepalived(1, &conf)
        }
    };
    let master = start(m, 200)?;
    let backup = start(b, 100)?;
    let master_ns = &lab.nodes[m].ns;
    assert!(
        wait_held(&lab, m, Duration::from_secs(10)) && master_ns.has_address("eth0", "192.0.2.101"),
        "node {m} should be master:\n{}\n{}",
        states(&lab),
        master.log_text()
    );
    std::thread::sleep(Duration::from_secs(1));
    let (m_backup, b_master) = (entering(&master, "BACKUP"), entering(&backup, "MASTER"));

    // An untracked VIP deleted: nothing happens, it stays deleted.
    master_ns.ip(&["addr", "del", "192.0.2.101/24", "dev", "eth0"])?;
    std::thread::sleep(Duration::from_secs(2));
    assert!(!master_ns.has_address("eth0", "192.0.2.101"));
    assert_eq!(
        entering(&master, "BACKUP"),
        m_backup,
        "no_track VIP released the master:\n{}",
        master.log_text()
    );

    for (what, delete) in [
        ("VIP", vec!["addr", "del", "192.0.2.100/24", "dev", "eth0"]),
        ("route", vec!["route", "del", "198.51.100.0/24"]),
    ] {
        let zeros = adverts.log_text().matches("prio 0").count();
        let before = entering(&master, "BACKUP");
        master_ns.ip(&delete)?;
        // Released (priority 0 on the wire) and back with everything.
        assert!(
            tests::wait_until(Duration::from_secs(3), Duration::from_millis(20), || {
                entering(&master, "BACKUP") > before
            }),
            "{what} deleted on node {m}: no BACKUP:\n{}",
            master.log_text()
        );
        assert!(
            wait_held(&lab, m, Duration::from_secs(3)),
            "{what} deleted on node {m}: not restored there:\n{}\n{}",
            states(&lab),
            master.log_text()
        );
        assert!(
            tests::wait_until(Duration::from_secs(2), Duration::from_millis(50), || {
                adverts.log_text().matches("prio 0").count() > zeros
            }),
            "{what} deleted on node {m}: no priority-0 advert on the wire:\n{}",
            adverts.log_text()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // The peer never took over.
    assert_eq!(
        entering(&backup, "MASTER"),
        b_master,
        "the backup took over:\n{}",
        backup.log_text()
    );
    Ok(())
}

#[test]
fn a_deleted_vip_or_route_on_xvrrpd_is_handled_as_keepalived_handles_it() -> Result<()> {
    tests::require_root!();
    deletion_is_released_and_restored(true)
}

#[test]
fn a_deleted_vip_or_route_on_keepalived_for_comparison() -> Result<()> {
    tests::require_root!();
    deletion_is_released_and_restored(false)
}

/// Attaches node `i` to the segment again through a new `eth0`.
fn recreate_eth0(lab: &mut Lab, i: usize) -> Result<()> {
    let ns = &lab.nodes[i].ns;
    lab.segment.attach(ns, "eth0")?;
    let addr = format!("{}/24", lab.nodes[i].addr);
    ns.ip(&["addr", "add", &addr, "dev", "eth0"])?;
    Ok(())
}

/// The kernel has the recorder on eth0 (at XDP or tc ingress), as
/// `xvrrpd peers` reads it back.
fn recorder_on_eth0(ns: &Netns) -> bool {
    tests::vrrp_lab::peers_json(ns).is_ok_and(|p| {
        p["attachments"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["interface"] == "eth0"))
    })
}

#[test]
fn a_recreated_interface_recovers_with_keepalived_as_peer() -> Result<()> {
    tests::require_root!();
    let mut lab = Lab::new(2)?;
    let xv = lab.xvrrpd(0, &full_config(200, ""))?;
    let ka = lab.keepalived(1, &full_config(100, ""))?;
    assert!(
        wait_held(&lab, 0, Duration::from_secs(10)),
        "{}",
        xv.log_text()
    );
    let old_index = lab.nodes[0].ns.ip(&["-j", "link", "show", "dev", "eth0"])?;
    lab.nodes[0].ns.ip(&["link", "del", "eth0"])?;
    // keepalived takes over once it misses xvrrpd's adverts.
    assert!(
        wait_held(&lab, 1, Duration::from_secs(6)),
        "keepalived should take over:\n{}\n{}",
        states(&lab),
        ka.log_text()
    );
    assert!(
        xv.log_text().contains("Entering FAULT STATE"),
        "{}",
        xv.log_text()
    );
    recreate_eth0(&mut lab, 0)?;
    assert_ne!(
        lab.nodes[0].ns.ip(&["-j", "link", "show", "dev", "eth0"])?,
        old_index
    );
    // Bound again (the recorder on the new eth0), back to BACKUP, then preempts by priority.
    assert!(
        wait_held(&lab, 0, Duration::from_secs(15)),
        "xvrrpd did not recover on the new eth0:\n{}\n{}\n{}",
        states(&lab),
        xv.log_text(),
        ka.log_text()
    );
    assert!(
        recorder_on_eth0(&lab.nodes[0].ns),
        "no recorder on the new eth0: {:?}",
        tests::vrrp_lab::peers_json(&lab.nodes[0].ns)
    );
    // keepalived's adverts reach the kernel recorder again on the new interface.
    let peers = lab.peers_json(0)?;
    assert_eq!(
        peers["peers"][0]["source"],
        lab.nodes[1].addr.as_str(),
        "{peers}"
    );
    lab.steady(0, Duration::from_secs(3))
        .map_err(anyhow::Error::msg)?;
    Ok(())
}

#[test]
fn dynamic_interfaces_waits_in_fault_for_a_missing_interface() -> Result<()> {
    tests::require_root!();
    let mut lab = Lab::new(2)?;
    lab.nodes[0].ns.ip(&["link", "del", "eth0"])?;
    let conf = format!(
        "global_defs {{\n    dynamic_interfaces\n}}\n{}",
        full_config(200, "")
    );
    let xv = lab.xvrrpd(0, &conf)?;
    let ka = lab.keepalived(1, &full_config(100, ""))?;
    assert!(
        wait_held(&lab, 1, Duration::from_secs(10)),
        "keepalived should be master while xvrrpd has no eth0:\n{}\n{}",
        states(&lab),
        xv.log_text()
    );
    assert!(
        xv.log_text().contains("Entering FAULT STATE"),
        "xvrrpd should run, in FAULT:\n{}",
        xv.log_text()
    );
    recreate_eth0(&mut lab, 0)?;
    assert!(
        wait_held(&lab, 0, Duration::from_secs(15)),
        "xvrrpd did not start on the new eth0:\n{}\n{}\n{}",
        states(&lab),
        xv.log_text(),
        ka.log_text()
    );
    Ok(())
}

#[test]
fn no_accept_drops_traffic_to_the_vips_while_master_as_keepalived_does() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let conf = |p| full_config(p, "no_accept");
    let mut xv = lab.xvrrpd(0, &conf(200))?;
    let mut ka = lab.keepalived(1, &conf(100))?;
    assert!(
        wait_held(&lab, 0, Duration::from_secs(10)),
        "{}",
        xv.log_text()
    );
    // Whether `to` answers a TCP SYN to a closed port (a reset comes back at
    // once) rather than dropping it (the connect times out).
    let ping = |to: &str| {
        lab.observer
            .ns
            .command("timeout")
            .args(["2", "bash", "-c", &format!("exec 3<>/dev/tcp/{to}/9")])
            .output()
            .is_ok_and(|o| o.status.code() != Some(124))
    };
    let ruleset = |i: usize| lab.nodes[i].ns.sh("nft list ruleset").unwrap_or_default();
    assert!(ping(&lab.nodes[0].addr), "the node's own address answers");
    assert!(!ping(VIP), "the VIP answered despite no_accept");
    let rules = ruleset(0);
    assert!(
        rules.contains("table ip keepalived")
            && rules.contains(VIP)
            && rules.contains("ip daddr @vips drop"),
        "{rules}"
    );
    // keepalived installs the same when it is master.
    xv.terminate(Duration::from_secs(10))
        .context("xvrrpd stops")?;
    assert!(
        wait_held(&lab, 1, Duration::from_secs(6)),
        "{}",
        ka.log_text()
    );
    let theirs = ruleset(1);
    assert!(
        theirs.contains("table ip keepalived") && theirs.contains(VIP),
        "keepalived's ruleset:\n{theirs}"
    );
    assert!(!ping(VIP), "keepalived's VIP answered despite no_accept");
    // xvrrpd stopped: its table is gone.
    assert!(
        !ruleset(0).contains("table ip keepalived"),
        "{}",
        ruleset(0)
    );
    ka.terminate(Duration::from_secs(10));
    Ok(())
}

#[test]
fn ah_is_refused_at_check_time_with_what_to_use_instead() -> Result<()> {
    tests::require_root!();
    let dir = tests::TempDir::new("ah")?;
    let conf = dir.path("ah.conf");
    std::fs::write(
        &conf,
        full_config(100, "").replace("auth_type PASS", "auth_type AH"),
    )?;
    let out = Command::new(tests::xvrrpd_bin())
        .args(["check", "-f"])
        .arg(&conf)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("auth_type")
            && stderr.contains("not supported")
            && stderr.contains("auth_type PASS"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ah.conf:"),
        "names the file and line: {stderr}"
    );
    // keepalived -t accepts it (exit 0): running with it unprotected would
    // leave both nodes master, so xvrrpd refuses to run it.
    let run = Command::new(tests::xvrrpd_bin())
        .args(["run", "-f"])
        .arg(&conf)
        .output()?;
    assert!(!run.status.success(), "xvrrpd run accepted AH");
    Ok(())
}

/// Global advert and GARP settings, as keepalived reads them, on the wire; keepalived
/// with the same file stays backup (it agrees on the group, version and interval).
#[test]
fn global_advert_and_garp_settings_on_the_wire_with_keepalived() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let config = |priority: u8| {
        format!(
            r#"
global_defs {{
    vrrp_mcast_group4 224.0.0.19
    vrrp_version 3
    vrrp_garp_master_repeat 2
    vrrp_garp_master_delay 2
    vrrp_garp_interval 0.2
    vrrp_startup_delay 3
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 0.5
    virtual_ipaddress {{
        {VIP}/24
    }}
}}
"#
        )
    };
    let adverts = watch_adverts(&lab, "globals")?;
    let garp = lab.watch_garp()?;
    let xv = lab.xvrrpd(0, &config(200))?;
    // vrrp_startup_delay: without it the first advert would go out at
    // Master_Down_Interval (about 1.6 s); with it not before 3 s.
    std::thread::sleep(Duration::from_millis(2500));
    let ours = |log: &str| {
        log.lines()
            .filter(|l| l.contains("192.0.2.1 > "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(
        ours(&adverts.log_text()).is_empty(),
        "advertised within the startup delay:\n{}",
        adverts.log_text()
    );
    assert!(
        lab.wait_holder(0, Duration::from_secs(5)),
        "{}",
        xv.log_text()
    );
    // To the configured group, as VRRPv3 at 50 centiseconds.
    std::thread::sleep(Duration::from_secs(1));
    let lines = ours(&adverts.log_text());
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(
            l.contains("> 224.0.0.19") && l.contains("VRRPv3") && l.contains("intvl 50cs"),
            "{l}"
        );
    }
    // vrrp_garp_master_repeat 2 at once, 2 more after vrrp_garp_master_delay, no refresh.
    std::thread::sleep(Duration::from_secs(3));
    let garps = tests::vrrp_lab::garp_count(&garp);
    assert_eq!(garps, 4, "{}", garp.log_text());
    let ka = lab.keepalived(1, &config(100))?;
    lab.steady(0, Duration::from_secs(4))
        .map_err(anyhow::Error::msg)?;
    assert_eq!(entering(&ka, "MASTER"), 0, "{}", ka.log_text());
    Ok(())
}

fn sysctl(ns: &Netns, key: &str) -> String {
    ns.sh(&format!("cat /proc/sys/net/ipv4/conf/{key}"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Instance options that act on the host: promote_secondaries set while running
/// and reset at stop, a vmac's parent ARP settings restored at stop, and
/// vmac_xmit_base sending adverts from the parent while GARPs carry the virtual MAC.
#[test]
fn instance_options_in_the_kernel_and_on_the_wire() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(1)?;
    let ns = &lab.nodes[0].ns;
    let before = (
        sysctl(ns, "eth0/promote_secondaries"),
        sysctl(ns, "eth0/arp_ignore"),
        sysctl(ns, "eth0/arp_filter"),
    );
    assert_eq!(before, ("0".into(), "0".into(), "0".into()));
    let config = format!(
        r#"
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority 200
    advert_int 1
    use_vmac
    vmac_xmit_base
    virtual_ipaddress {{
        {VIP}/24
    }}
}}
vrrp_instance VI_2 {{
    interface eth0
    virtual_router_id 52
    priority 200
    advert_int 1
    promote_secondaries
    virtual_ipaddress {{
        192.0.2.102/24
    }}
}}
"#
    );
    let mut dump = lab.observer.ns.command("tcpdump");
    dump.args(["-i", "eth0", "-n", "-e", "-l", "-U", "ip proto 112 or arp"]);
    let wire = lab.observer.ns.spawn(dump, &lab.dir.path("xmit.log"))?;
    std::thread::sleep(Duration::from_millis(300));
    let mut xv = lab.xvrrpd(0, &config)?;
    assert!(
        tests::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            ns.has_address("vrrp.51", VIP) && ns.has_address("eth0", "192.0.2.102")
        }),
        "{}",
        xv.log_text()
    );
    assert_eq!(sysctl(ns, "eth0/promote_secondaries"), "1");
    assert_eq!(sysctl(ns, "vrrp.51/promote_secondaries"), "1");
    assert_eq!(
        (sysctl(ns, "eth0/arp_ignore"), sysctl(ns, "eth0/arp_filter")),
        ("1".into(), "1".into())
    );
    std::thread::sleep(Duration::from_secs(2));
    let parent_mac = ns
        .ip(&["-br", "link", "show", "dev", "eth0"])?
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_owned();
    let log = wire.log_text();
    let advert = log
        .lines()
        .find(|l| l.contains("vrid 51"))
        .with_context(|| format!("no advert of VRID 51:\n{log}"))?;
    assert!(
        advert.starts_with(&parent_mac) || advert.contains(&format!(" {parent_mac} >")),
        "vmac_xmit_base: the advert should come from eth0's MAC {parent_mac}: {advert}"
    );
    let garp = log
        .lines()
        .find(|l| l.contains("ARP") && l.contains(VIP))
        .with_context(|| format!("no GARP for the VIP:\n{log}"))?;
    assert!(
        garp.contains("00:00:5e:00:01:33"),
        "the GARP should carry the virtual MAC: {garp}"
    );
    xv.terminate(Duration::from_secs(10))
        .context("xvrrpd stops")?;
    let after = (
        sysctl(ns, "eth0/promote_secondaries"),
        sysctl(ns, "eth0/arp_ignore"),
        sysctl(ns, "eth0/arp_filter"),
    );
    assert_eq!(after, before, "sysctls not restored at stop");
    Ok(())
}

/// `static_ipaddress`, `static_routes` and `static_rules` on a node, whatever its
/// state: (address, route, rule) present.
fn statics(ns: &Netns) -> (bool, bool, bool) {
    let addr = ns.has_address("eth0", "198.51.100.20");
    let route = ns
        .ip(&["route", "show", "198.51.100.128/25"])
        .is_ok_and(|r| r.contains("via 192.0.2.254") && r.contains("proto keepalived"));
    let rule = ns.ip(&["rule", "show"]).is_ok_and(|r| {
        r.lines()
            .any(|l| l.starts_with("200:") && l.contains("from 198.51.100.20 lookup 100"))
    });
    (addr, route, rule)
}

#[test]
fn static_addresses_routes_and_rules_are_kept_as_keepalived_keeps_them() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let config = |priority: u8| {
        format!(
            "static_ipaddress {{\n    198.51.100.20/32 dev eth0\n}}\n\
             static_routes {{\n    198.51.100.128/25 via 192.0.2.254 dev eth0\n}}\n\
             static_rules {{\n    from 198.51.100.20 table 100 priority 200\n}}\n{}",
            tests::vrrp_lab::instance_config(priority, "")
        )
    };
    let mut xv = lab.xvrrpd(0, &config(200))?;
    let mut ka = lab.keepalived(1, &config(100))?;
    let all = (true, true, true);
    assert!(
        tests::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            statics(&lab.nodes[0].ns) == all && statics(&lab.nodes[1].ns) == all
        }),
        "static blocks on both nodes, master and backup alike: {:?} {:?}\n{}",
        statics(&lab.nodes[0].ns),
        statics(&lab.nodes[1].ns),
        xv.log_text()
    );
    // Deleted by hand: put back. keepalived 2.2.7 puts the address back but, as
    // observed here, not the route (its reinstate_static_route is not reached);
    // xvrrpd puts back both, as keepalived's source intends.
    for i in [0, 1] {
        let ns = &lab.nodes[i].ns;
        ns.ip(&["route", "del", "198.51.100.128/25"])?;
        ns.ip(&["addr", "del", "198.51.100.20/32", "dev", "eth0"])?;
        let want = if i == 0 { all } else { (true, false, true) };
        assert!(
            tests::wait_until(
                Duration::from_secs(3),
                Duration::from_millis(50),
                || statics(ns) == want
            ),
            "node {i} did not put its statics back: {:?}",
            statics(ns)
        );
    }
    // Removed at stop, by both.
    xv.terminate(Duration::from_secs(10))
        .context("xvrrpd stops")?;
    ka.terminate(Duration::from_secs(10))
        .context("keepalived stops")?;
    for i in [0, 1] {
        let left = statics(&lab.nodes[i].ns);
        assert_eq!(left, (false, false, false), "node {i} after stop");
    }
    Ok(())
}
