//! keepalived 2.2.7 in one namespace, `xvrrpd record` in the other, joined by
//! a veth: the recorder must show keepalived's priority and interval with a
//! fresh last-seen age, and keepalived's priority-0 advert when it stops.

use std::{process::Command, time::Duration};

use anyhow::Result;
use tests::{keepalived, veth, vrrp_lab::peers_json, wait_until, xvrrpd_bin, Netns, TempDir};

const CONFIG: &str = r#"
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 200
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret1
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"#;

#[test]
fn recorder_follows_a_real_keepalived() -> Result<()> {
    tests::require_root!();
    let tmp = TempDir::new("recorder")?;
    let ka_ns = Netns::new()?;
    let rec_ns = Netns::new()?;
    veth(&ka_ns, "eth0", &rec_ns, "eth0")?;
    ka_ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"])?;
    rec_ns.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"])?;

    let mut cmd = rec_ns.command(xvrrpd_bin());
    cmd.args([
        "record",
        "-i",
        "eth0",
        "--vrid",
        "51",
        "--auth-pass",
        "secret1",
    ]);
    let mut recorder = rec_ns.spawn(cmd, &tmp.path("xvrrpd.log"))?;
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            peers_json(&rec_ns).is_ok()
        }),
        "recorder did not start: {}",
        recorder.log_text()
    );
    let mut ka = keepalived(&ka_ns, &tmp, "ka", CONFIG)?;

    // keepalived (state MASTER, priority 200) becomes master after ~3.2 s and advertises every second.
    let mut seen = serde_json::Value::Null;
    let advertising = wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
        seen = peers_json(&rec_ns).unwrap_or_default();
        seen["peers"][0]["adverts"].as_u64().unwrap_or(0) >= 3
    });
    assert!(
        advertising,
        "no adverts recorded: {seen}\nkeepalived:\n{}",
        ka.log_text()
    );
    let peer = &seen["peers"][0];
    assert_eq!(peer["vrid"], 51);
    assert_eq!(peer["source"], "192.0.2.1");
    assert_eq!(peer["priority"], 200);
    assert_eq!(peer["interval_ms"], 1000);
    assert_eq!(peer["version"], 2);
    assert_eq!(peer["ttl"], 255);
    assert!(
        peer["age_ms"].as_u64().unwrap() < 1000,
        "last advert older than the interval: {peer}"
    );
    assert_eq!(seen["counters"]["bad_checksum"], 0);
    assert_eq!(seen["counters"]["auth_mismatch"], 0);

    // The same records through bpftool, with field names from BTF: the
    // instance's table index from INSTANCES, then that table from PEERS.
    let dir = xvrrpd::bpf::pin::root().join(&rec_ns.name);
    let instances = tests::output(
        Command::new("bpftool")
            .args(["-j", "map", "dump", "pinned"])
            .arg(dir.join("INSTANCES")),
    )?;
    let instances: serde_json::Value = serde_json::from_str(&instances)?;
    let table = instances[0]["formatted"]["value"]["table"]
        .as_u64()
        .unwrap_or_else(|| panic!("bpftool dump of INSTANCES: {instances}"));
    let index: Vec<String> = (table as u32)
        .to_le_bytes()
        .iter()
        .map(|b| b.to_string())
        .collect();
    let lookup = tests::output(
        Command::new("bpftool")
            .args(["-j", "map", "lookup", "pinned"])
            .arg(dir.join("PEERS"))
            .arg("key")
            .args(&index),
    )?;
    assert!(
        lookup.contains("\"priority\":200") && lookup.contains("last_ns"),
        "bpftool lookup: {lookup}"
    );

    // Stopping keepalived sends a priority-0 advert.
    assert!(
        ka.terminate(Duration::from_secs(10)).is_some(),
        "keepalived did not stop"
    );
    let resigned = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        seen = peers_json(&rec_ns).unwrap_or_default();
        seen["peers"][0]["priority"] == 0
    });
    assert!(resigned, "no priority-0 advert recorded: {seen}");
    assert!(
        recorder.log_text().contains("priority 0"),
        "the ring buffer woke the recorder for priority 0:\n{}",
        recorder.log_text()
    );

    // SIGTERM: detach, unpin, exit 0, no XDP program left on the interface.
    let status = recorder
        .terminate(Duration::from_secs(10))
        .expect("recorder stops on SIGTERM");
    assert!(
        status.success(),
        "exit status {status}: {}",
        recorder.log_text()
    );
    let link = rec_ns.ip(&["-d", "link", "show", "eth0"])?;
    assert!(!link.contains("xdp"), "XDP left attached: {link}");
    assert!(!dir.exists(), "pins left in {}", dir.display());
    Ok(())
}
