//! Detection that holds under a starved daemon and a host firewall: the XDP
//! hook sees adverts before the stack, so neither a paused backup nor an
//! nftables rule dropping protocol 112 makes a live master look dead.
//! keepalived is run through the same cases for comparison (its outcome is
//! printed, not asserted: dropping adverts is expected to split it).

use std::time::Duration;

use anyhow::{Context, Result};
use tests::vrrp_lab::{instance_config, nft, sigcont, sigstop, Lab, VIP};

/// Master_Down_Interval of the priority-100 backup at advert_int 1.
const MDI: Duration = Duration::from_micros(3_609_375);
const DROP_VRRP: &[&str] = &[
    "add table inet xvtest",
    "add chain inet xvtest input { type filter hook input priority 0; }",
    "add rule inet xvtest input meta l4proto 112 drop",
];

#[test]
fn paused_or_firewalled_xvrrpd_backup_stays_backup() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let master = lab.xvrrpd(0, &instance_config(200, ""))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "{}",
        master.log_text()
    );
    let backup = lab.xvrrpd(1, &instance_config(100, ""))?;
    lab.steady(0, Duration::from_secs(2))
        .map_err(anyhow::Error::msg)?;

    // (a) SIGSTOP the backup for 5 × Master_Down_Interval while the master advertises.
    sigstop(&backup);
    std::thread::sleep(MDI * 5);
    sigcont(&backup);
    lab.steady(0, Duration::from_secs(3))
        .map_err(|e| anyhow::anyhow!("after SIGCONT: {e}\n{}", backup.log_text()))?;
    assert!(
        !backup.log_text().contains("Entering MASTER STATE"),
        "paused backup took over:\n{}",
        backup.log_text()
    );

    // (b) Drop protocol 112 in the backup host's input hook for 3 × MDI.
    nft(&lab.nodes[1].ns, DROP_VRRP)?;
    lab.steady(0, MDI * 3).map_err(|e| {
        anyhow::anyhow!(
            "with protocol 112 dropped by nftables: {e}\n{}",
            backup.log_text()
        )
    })?;
    assert!(
        !backup.log_text().contains("Entering MASTER STATE"),
        "firewalled backup took over:\n{}",
        backup.log_text()
    );

    // And detection still works through the firewall: kill the master, the backup takes over.
    drop(master);
    assert!(
        tests::wait_until(
            MDI + Duration::from_secs(2),
            Duration::from_millis(20),
            || lab.holders(VIP).contains(&1)
        ),
        "backup did not take over behind the firewall:\n{}",
        backup.log_text()
    );
    Ok(())
}

#[test]
fn keepalived_in_the_same_cases_for_comparison() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let master = lab.keepalived(0, &instance_config(200, ""))?;
    assert!(
        lab.wait_holder(0, Duration::from_secs(10)),
        "{}",
        master.log_text()
    );
    let _backup = lab.keepalived(1, &instance_config(100, ""))?;
    lab.steady(0, Duration::from_secs(2))
        .map_err(anyhow::Error::msg)?;
    // keepalived forks a VRRP child: pause every process of the backup's namespace.
    let pids: Vec<i32> = tests::output(std::process::Command::new("ip").args([
        "netns",
        "pids",
        &lab.nodes[1].ns.name,
    ]))?
    .split_whitespace()
    .filter_map(|p| p.parse().ok())
    .collect();
    for &p in &pids {
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(p, libc::SIGSTOP) };
    }
    std::thread::sleep(MDI * 5);
    for &p in &pids {
        // SAFETY: as above.
        unsafe { libc::kill(p, libc::SIGCONT) };
    }
    let paused = lab.steady(0, Duration::from_secs(3));
    nft(&lab.nodes[1].ns, DROP_VRRP)?;
    let firewalled = lab.steady(0, MDI * 3);
    eprintln!(
        "keepalived, backup paused 5 x MDI: {:?}",
        paused.map(|_| "stayed backup")
    );
    eprintln!(
        "keepalived, protocol 112 dropped by nftables: {:?}",
        firewalled.as_ref().map(|_| "stayed backup")
    );
    // keepalived reads adverts from a socket behind netfilter: with them dropped it must take over.
    assert!(
        firewalled.is_err(),
        "keepalived was expected to lose adverts behind the firewall"
    );
    Ok(())
}

/// The advert thread runs SCHED_FIFO (xvrrpd's default priority), the
/// executor one below, the rest normally, and scripts never inherit
/// real-time scheduling; `vrrp_rt_priority 0` turns it all off.
#[test]
fn the_advert_path_is_real_time_and_scripts_are_not() -> Result<()> {
    tests::require_root!();
    let cases = [
        ("", "FIFO 40", "FIFO 39"),
        ("vrrp_rt_priority 0", "OTHER 0", "OTHER 0"),
    ];
    for (global, advert, executor) in cases {
        let lab = Lab::new(1)?;
        let out = lab.dir.path("policy.out");
        let script = tests::write_script(
            &lab.dir.path("policy.sh"),
            &format!("chrt -p $$ > {}", out.display()),
        )?;
        let config = format!(
            "global_defs {{\n {global}\n}}\n\
             vrrp_script chk {{\n script \"{}\"\n interval 1\n}}\n{}",
            script.display(),
            instance_config(200, "track_script {\n chk\n }")
        );
        let node = lab.xvrrpd(0, &config)?;
        assert!(
            lab.wait_holder(0, Duration::from_secs(10)),
            "{}",
            node.log_text()
        );
        assert!(tests::wait_until(
            Duration::from_secs(5),
            Duration::from_millis(50),
            || out.exists()
        ));
        let policy = |comm: &str| -> Result<String> {
            let task = std::fs::read_dir(format!("/proc/{}/task", node.pid()))?
                .flatten()
                .find(|t| {
                    std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == comm)
                })
                .with_context(|| format!("no thread {comm}"))?;
            let tid = task.file_name().to_string_lossy().into_owned();
            let chrt = tests::output(std::process::Command::new("chrt").args(["-p", &tid]))?;
            let kind = if chrt.contains("SCHED_FIFO") {
                "FIFO"
            } else {
                "OTHER"
            };
            let prio = chrt.trim().rsplit(' ').next().unwrap_or("?");
            Ok(format!("{kind} {prio}"))
        };
        assert_eq!(policy("xvrrpd-adverts")?, advert, "{global:?}");
        assert_eq!(policy("xvrrpd-executor")?, executor, "{global:?}");
        assert_eq!(policy("xvrrpd")?, "OTHER 0", "{global:?}");
        let child = std::fs::read_to_string(&out)?;
        assert!(child.contains("SCHED_OTHER"), "script ran with {child}");
    }
    Ok(())
}
