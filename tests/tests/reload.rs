//! SIGHUP applies the file in place, with keepalived 2.2.7 as the peer:
//! unchanged instances never move, a new VIP appears on the master without a
//! transition, a removed instance is released, a priority change takes
//! effect, and a file with errors changes nothing.

use std::time::Duration;

use anyhow::Result;
use tests::{
    vrrp_lab::{Lab, VIP},
    Proc,
};

/// Two instances on eth0: VI_1 (VRID 51, the lab VIP plus `extra_vips`)
/// and, unless `without_vi2`, VI_2 (VRID 52, 192.0.2.102).
fn config(priority: u8, extra_vips: &str, without_vi2: bool) -> String {
    let vi2 = format!(
        "vrrp_instance VI_2 {{\n    interface eth0\n    virtual_router_id 52\n    priority {priority}\n    \
         advert_int 1\n    virtual_ipaddress {{\n        192.0.2.102/24\n    }}\n}}\n"
    );
    format!(
        "vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    priority {priority}\n    \
         advert_int 1\n    virtual_ipaddress {{\n        {VIP}/24\n{extra_vips}    }}\n}}\n{}",
        if without_vi2 { String::new() } else { vi2 }
    )
}

fn entering(p: &Proc) -> usize {
    p.log_text().matches("Entering").count()
}

/// Sends SIGHUP and waits for the reload to be reported done or failed.
fn reload(xv: &Proc, marker: &str) -> Result<()> {
    let before = xv.log_text().matches(marker).count();
    xv.signal(libc::SIGHUP);
    anyhow::ensure!(
        tests::wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            xv.log_text().matches(marker).count() > before
        }),
        "no {marker:?} after SIGHUP:\n{}",
        xv.log_text()
    );
    Ok(())
}

/// Both instances mastered by node 0, keepalived backing up on node 1.
fn pair(lab: &Lab) -> Result<(Proc, Proc)> {
    let xv = lab.xvrrpd(0, &config(200, "", false))?;
    let ka = lab.keepalived(1, &config(100, "", false))?;
    anyhow::ensure!(
        tests::wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            lab.holders(VIP) == vec![0] && lab.holders("192.0.2.102") == vec![0]
        }),
        "xvrrpd should hold both VIPs:\n{}",
        xv.log_text()
    );
    // keepalived settles as backup before we count its transitions.
    std::thread::sleep(Duration::from_secs(1));
    Ok((xv, ka))
}

#[test]
fn a_hundred_reloads_of_an_unchanged_file_move_nothing() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let (xv, ka) = pair(&lab)?;
    let (xv_before, ka_before) = (entering(&xv), entering(&ka));
    for _ in 0..100 {
        reload(&xv, "reload: no change")?;
        let h = (lab.holders(VIP), lab.holders("192.0.2.102"));
        assert_eq!(h, (vec![0], vec![0]), "a VIP moved during the reloads");
    }
    lab.steady(0, Duration::from_secs(3))
        .map_err(anyhow::Error::msg)?;
    assert_eq!(entering(&xv), xv_before, "xvrrpd moved:\n{}", xv.log_text());
    assert_eq!(
        entering(&ka),
        ka_before,
        "keepalived moved:\n{}",
        ka.log_text()
    );
    Ok(())
}

#[test]
fn a_reload_adds_a_vip_in_place_and_releases_a_removed_instance() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let (xv, ka) = pair(&lab)?;
    let conf = lab.dir.path("xvrrpd0.conf");
    let (xv_before, ka_before) = (entering(&xv), entering(&ka));

    // A new VIP for VI_1: on the master at once, no transition anywhere.
    std::fs::write(&conf, config(200, "        192.0.2.101/24\n", false))?;
    reload(&xv, "reload: done")?;
    assert!(
        tests::wait_until(Duration::from_secs(2), Duration::from_millis(20), || lab
            .holders("192.0.2.101")
            == vec![0]),
        "the new VIP is not on the master:\n{}",
        xv.log_text()
    );
    assert_eq!(entering(&xv), xv_before, "{}", xv.log_text());
    assert_eq!(entering(&ka), ka_before, "{}", ka.log_text());

    // VI_2 leaves the file: priority 0, its VIP released, keepalived takes
    // it within its Skew_Time; VI_1 stays where it is.
    std::fs::write(&conf, config(200, "        192.0.2.101/24\n", true))?;
    reload(&xv, "reload: done")?;
    assert!(
        tests::wait_until(Duration::from_secs(2), Duration::from_millis(20), || lab
            .holders("192.0.2.102")
            == vec![1]),
        "the removed instance's VIP did not move to keepalived:\nxvrrpd:\n{}\nkeepalived:\n{}",
        xv.log_text(),
        ka.log_text()
    );
    assert!(
        xv.log_text().contains("(VI_2) sent 0 priority"),
        "{}",
        xv.log_text()
    );
    lab.steady(0, Duration::from_secs(2))
        .map_err(anyhow::Error::msg)?;
    assert_eq!(lab.holders("192.0.2.101"), vec![0]);
    Ok(())
}

#[test]
fn a_reload_with_errors_changes_nothing_and_a_priority_change_applies() -> Result<()> {
    tests::require_root!();
    let lab = Lab::new(2)?;
    let (xv, ka) = pair(&lab)?;
    let conf = lab.dir.path("xvrrpd0.conf");
    let before = entering(&xv);

    // An error: reported at its file:line; everything stays as it was.
    std::fs::write(
        &conf,
        config(50, "", true).replace("virtual_router_id 51", "virtual_router_id 300"),
    )?;
    reload(&xv, "reload failed")?;
    let log = xv.log_text();
    assert!(
        log.contains("xvrrpd0.conf:3: virtual_router_id: 300 outside 1..255"),
        "{log}"
    );
    lab.steady(0, Duration::from_secs(2))
        .map_err(anyhow::Error::msg)?;
    assert_eq!(lab.holders("192.0.2.102"), vec![0]);
    assert_eq!(entering(&xv), before);

    // Priority 200 -> 50 in place: advertised at once; keepalived (100)
    // takes over once its down timer runs out, as for a tracker's weight.
    std::fs::write(&conf, config(50, "", false))?;
    reload(&xv, "reload: done")?;
    assert!(
        tests::wait_until(Duration::from_secs(6), Duration::from_millis(20), || lab
            .holders(VIP)
            == vec![1]),
        "keepalived did not take over after the priority drop:\n{}\n{}",
        xv.log_text(),
        ka.log_text()
    );
    assert!(xv
        .log_text()
        .contains("(VI_1) Changing effective priority from 200 to 50"));
    Ok(())
}
