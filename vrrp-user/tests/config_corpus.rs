//! The sample configurations in tests/configs: tutorial-style configs that must be accepted
//! with the expected model, invalid ones with the expected exit code and message, and
//! `check::run` end to end.

#[path = "configs/fake_host.rs"]
mod fake_host;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fake_host::FakeHost;
use xvrrpd::check::{self, CheckArgs};
use xvrrpd::config::*;

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    files
}

fn sample(name: &str) -> Loaded {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(name);
    load_with(&path, &FakeHost).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn every_valid_sample_is_accepted_cleanly() {
    let files = corpus("valid");
    assert!(files.len() >= 15);
    for file in files {
        let loaded = load_with(&file, &FakeHost).unwrap();
        assert!(
            !loaded.has_errors(),
            "{}: {:?}",
            file.display(),
            loaded.diagnostics
        );
        assert_eq!(
            loaded.keepalived_exit_code(),
            0,
            "{}: {:?}",
            file.display(),
            loaded.diagnostics
        );
        assert!(!loaded.config.instances.is_empty(), "{}", file.display());
    }
}

/// (file, exit code, expected `line: keyword: message` suffix of the first finding)
const INVALID: &[(&str, i32, &str)] = &[
    ("advert_int_fraction_v2.conf", 5, ":4: advert_int: VI_1: VRRPv2 advert_int 1.5s must be whole seconds; using 2s"),
    ("auth_pass_too_long.conf", 5, ":14: auth_pass: longer than 8 characters; truncated to 8 as keepalived does"),
    ("bad_interface.conf", 5, ":2: interface: VI_1: interface nosuch0 does not exist on this host"),
    ("bad_vip.conf", 5, ":4: virtual_ipaddress: VI_1: no virtual_ipaddress; at least one is sensible"),
    ("duplicate_vrid.conf", 5, ":8: virtual_router_id: VI_1 and VI_2 both use VRID 75 with IPv4 on interface eth0"),
    ("extra_brace.conf", 5, ":8: }: extra '}' without a matching '{'"),
    ("include_cycle.conf", 4, "include cycle)"),
    ("loopback_interface.conf", 5, ":2: interface: VI_1: cannot use loopback interface lo for VRRP"),
    ("missing_brace.conf", 5, ":1: {: block is never closed: missing '}'"),
    ("missing_include.conf", 4, "no-such-file.conf does not exist"),
    ("mixed_family.conf", 5, ":6: virtual_ipaddress: VI_1: fd00::1 is IPv6 but the instance is IPv4; ignored"),
    ("nopreempt_master.conf", 5, ":3: nopreempt: VI_1: nopreempt does not work with state MASTER (use state BACKUP on both nodes); ignored"),
    ("priority_zero.conf", 5, ":4: priority: 0 outside 1..255; using 100"),
    ("script_no_security.conf", 6, ":1: enable_script_security: SECURITY VIOLATION: scripts would run but enable_script_security is not set (keepalived -t exits 6): set it in global_defs, with script_user"),
    ("sync_group_one_member.conf", 5, ":8: vrrp_sync_group: G1 has 1 instance; a sync group needs at least two to do anything"),
    ("track_script_missing.conf", 5, ":5: track_script: VI_1: track script nope not found; ignored"),
    ("unicast_src_no_peer.conf", 5, ":4: unicast_peer: VI_1: unicast keyword without any unicast_peer; adverts will be multicast"),
    ("unknown_keyword.conf", 5, ":4: priorty: unknown keyword"),
    ("unknown_section.conf", 5, ":1: garbage_section: unknown keyword"),
    ("v3_auth.conf", 5, ":5: authentication: VI_1: VRRPv3 has no authentication; ignored"),
    ("vrid_missing.conf", 5, ":1: virtual_router_id: VI_1: virtual_router_id must be set"),
    ("vrid_out_of_range.conf", 5, ":3: virtual_router_id: 300 outside 1..255"),
];

#[test]
fn every_invalid_sample_is_rejected_with_its_code_and_message() {
    let files = corpus("invalid");
    assert_eq!(
        files.len(),
        INVALID.len(),
        "every invalid sample has an expectation"
    );
    for (name, code, message) in INVALID {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/configs/invalid")
            .join(name);
        let (got_code, first) = match load_with(&path, &FakeHost) {
            Ok(loaded) => (
                loaded.keepalived_exit_code(),
                loaded
                    .diagnostics
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ),
            Err(e) => (check::EXIT_FATAL, e.to_string()),
        };
        assert_eq!(got_code, *code, "{name}: {first}");
        assert!(first.ends_with(message), "{name}: {first}");
    }
}

#[test]
fn master_backup_pair_with_pass_auth() {
    let master = sample("valid/master_pass.conf");
    let backup = sample("valid/backup_pass.conf");
    let (m, b) = (&master.config.instances[0], &backup.config.instances[0]);
    assert_eq!(master.config.global.router_id.as_deref(), Some("LB1"));
    assert_eq!((m.state, m.priority), (InitialState::Master, 101));
    assert_eq!((b.state, b.priority), (InitialState::Backup, 100));
    assert_eq!(m.auth_data(), Some(*b"s3cret\0\0"));
    assert_eq!(m.auth_data(), b.auth_data());
    assert_eq!(m.virtual_ipaddress[0].prefix_len, 24);
    assert_eq!(m.reload_key(), b.reload_key());
}

#[test]
fn unicast_pair_with_nopreempt() {
    let a = sample("valid/unicast_nopreempt_a.conf")
        .config
        .instances
        .remove(0);
    let b = sample("valid/unicast_nopreempt_b.conf")
        .config
        .instances
        .remove(0);
    assert!(a.is_unicast() && a.nopreempt && b.nopreempt);
    assert_eq!(a.unicast_src_ip, Some(ip("10.1.1.1")));
    assert_eq!(a.unicast_peer, [ip("10.1.1.2")]);
    assert_eq!(b.unicast_peer, [ip("10.1.1.1")]);
    assert_eq!(a.advert_interval(), Duration::from_secs(2));
}

#[test]
fn script_tracking_sample() {
    let loaded = sample("valid/vrrp_script.conf");
    let s = &loaded.config.scripts["chk_haproxy"];
    assert_eq!(
        (s.interval, s.timeout),
        (Duration::from_secs(2), Duration::from_secs(1))
    );
    assert_eq!((s.rise, s.fall, s.weight), (2, 3, -20));
    assert_eq!(
        loaded.config.instances[0].track_script[0].name,
        "chk_haproxy"
    );
    assert!(loaded.config.runs_scripts());
}

#[test]
fn other_tracker_samples() {
    let p = sample("valid/track_process.conf");
    assert_eq!(p.config.track_processes["track_nginx"].process, "nginx");
    assert_eq!(p.config.instances[0].track_process[0].weight, Some(15));
    let i = sample("valid/track_interface.conf")
        .config
        .instances
        .remove(0);
    assert_eq!(i.track_interface[0].name, "lo");
    assert_eq!(i.track_interface[0].weight, -30);
    let f = sample("valid/track_file.conf");
    assert_eq!(
        f.config.track_files["maint"].init_file,
        Some(InitFile {
            value: 0,
            overwrite: true
        })
    );
}

#[test]
fn notify_sample() {
    let i = sample("valid/notify.conf").config.instances.remove(0);
    assert_eq!(
        i.notify.master.as_deref(),
        Some("/etc/keepalived/notify.sh MASTER")
    );
    assert_eq!(
        i.notify.notify.as_deref(),
        Some("/etc/keepalived/notify-all.sh")
    );
    assert_eq!(i.notify.commands().count(), 5);
}

#[test]
fn vips_sample() {
    let i = sample("valid/vips.conf").config.instances.remove(0);
    assert_eq!(i.virtual_ipaddress.len(), 3);
    assert_eq!(i.virtual_ipaddress[0].label.as_deref(), Some("eth0:1"));
    assert_eq!(i.virtual_ipaddress[0].dev.as_deref(), Some("eth0"));
    assert_eq!(i.virtual_ipaddress[1].broadcast, Some(ip("10.6.0.255")));
    assert_eq!(i.virtual_ipaddress[2].prefix_len, 32);
    assert_eq!(i.virtual_ipaddress_excluded.len(), 2);
}

#[test]
fn ipv6_v3_sample() {
    let i = sample("valid/ipv6_v3.conf").config.instances.remove(0);
    assert_eq!((i.family(), i.version), (Family::V6, Version::V3));
    assert_eq!(i.advert_int, Duration::from_millis(500));
}

#[test]
fn include_definition_layout_and_lvs_samples() {
    let inc = sample("valid/include_main.conf");
    let names: Vec<&str> = inc
        .config
        .instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["VI_INC_A", "VI_INC_B"]);
    assert_eq!(inc.files.len(), 3);
    let defs = sample("valid/definitions.conf").config.instances.remove(0);
    assert_eq!(
        (defs.virtual_router_id, defs.interface.as_str()),
        (61, "eth0")
    );
    assert_eq!(defs.virtual_ipaddress[0].address, ip("10.9.0.1"));
    let layout = sample("valid/layout.conf");
    assert_eq!(layout.config.global.router_id.as_deref(), Some("lay out"));
    assert_eq!(
        layout.config.instances[0]
            .authentication
            .as_ref()
            .unwrap()
            .auth_pass,
        "pa ss"
    );
    // The LVS part is checked as keepalived's checker reads it; this one is clean, and
    // only said not to run.
    let lvs = sample("valid/lvs_mixed.conf");
    assert_eq!(lvs.diagnostics.len(), 1, "{:?}", lvs.diagnostics);
    assert_eq!(lvs.diagnostics[0].keepalived, Verdict::Silent);
    let group = sample("valid/sync_group.conf");
    assert_eq!(group.config.sync_groups[0].members, ["VI_OUT", "VI_IN"]);
}

// ---- check::run end to end (uses this host's interfaces) --------------------------------

/// A non-loopback interface of this host, if there is one.
fn host_interface() -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| SystemHost.interface(n) == InterfaceKind::Present)
        .collect();
    names.sort();
    names.into_iter().next()
}

fn temp_config(name: &str, text: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("xvrrpd-check-{}-{name}.conf", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &CheckArgs) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = check::run(args, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn check_run_exit_codes_dump_and_json() {
    let Some(iface) = host_interface() else {
        println!("skipped: no non-loopback interface on this host");
        return;
    };
    let good = temp_config(
        "good",
        &format!("vrrp_instance VI_1 {{\n interface {iface}\n virtual_router_id 51\n virtual_ipaddress {{ 10.0.0.1 }}\n}}\n"),
    );
    let args = CheckArgs {
        file: good.clone(),
        dump: false,
        json: false,
    };
    assert_eq!(run(&args), (0, String::new(), String::new()));

    let (code, out, _) = run(&CheckArgs {
        dump: true,
        ..args.clone()
    });
    assert_eq!(code, 0);
    assert!(out.contains("instances VI_1 {"), "{out}");
    assert!(out.contains("  virtual_router_id 51\n"), "{out}");
    assert!(
        out.contains("  priority 100\n"),
        "defaults are shown: {out}"
    );
    assert!(out.contains("vrrp_mcast_group4 224.0.0.18"), "{out}");

    let (code, out, _) = run(&CheckArgs {
        dump: true,
        json: true,
        ..args.clone()
    });
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["instances"][0]["name"], "VI_1");
    assert_eq!(json["instances"][0]["advert_int"], 1.0);

    let bad = temp_config(
        "bad",
        &format!("vrrp_instance VI_1 {{\n interface {iface}\n virtual_router_id 300\n}}\n"),
    );
    let (code, _, err) = run(&CheckArgs {
        file: bad.clone(),
        dump: false,
        json: false,
    });
    assert_eq!(code, 5);
    assert_eq!(
        err,
        format!(
            "error: {}:3: virtual_router_id: 300 outside 1..255\n",
            bad.display()
        )
    );

    let warn_only = temp_config(
        "lint",
        &format!("global_defs {{\n smtp_server 127.0.0.1\n}}\nvrrp_instance VI_1 {{\n interface {iface}\n virtual_router_id 5\n virtual_ipaddress {{ 10.0.0.1 }}\n}}\n"),
    );
    let (code, _, err) = run(&CheckArgs {
        file: warn_only.clone(),
        dump: false,
        json: false,
    });
    assert_eq!(code, 0, "our own advice does not fail the check");
    assert!(err.starts_with("warning: "), "{err}");

    // --json alone: the findings and exit code, for pipelines.
    let (code, out, _) = run(&CheckArgs {
        file: warn_only.clone(),
        dump: false,
        json: true,
    });
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["exit_code"], 0);
    let finding = &report["diagnostics"][0];
    assert_eq!(finding["line"], 2);
    assert_eq!(finding["keyword"], "smtp_server");
    assert_eq!(finding["keepalived"], "Silent");
    assert_eq!(finding["keepalived_located"], false);
    let (code, out, _) = run(&CheckArgs {
        file: bad.clone(),
        dump: false,
        json: true,
    });
    assert_eq!(code, 5);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["exit_code"], 5);
    assert_eq!(report["diagnostics"][0]["keepalived"], "ConfigError");
    assert_eq!(report["diagnostics"][0]["keepalived_located"], true);

    for path in [good, bad, warn_only] {
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn check_run_missing_file_is_4() {
    let args = CheckArgs {
        file: "/nonexistent/keepalived.conf".into(),
        dump: false,
        json: false,
    };
    let (code, out, err) = run(&args);
    assert_eq!(code, 4);
    assert!(out.is_empty());
    assert!(
        err.starts_with("error: cannot read /nonexistent/keepalived.conf"),
        "{err}"
    );
    assert_eq!(check::DEFAULT_CONFIG, "/etc/keepalived/keepalived.conf");
    assert_eq!(
        CheckArgs::default().file,
        PathBuf::from(check::DEFAULT_CONFIG)
    );
}

#[test]
fn check_run_nonexistent_interface_and_loopback() {
    let missing = temp_config(
        "noif",
        "vrrp_instance VI_1 {\n interface xvrrpd-none0\n virtual_router_id 5\n virtual_ipaddress { 10.0.0.1 }\n}\n",
    );
    let (code, _, err) = run(&CheckArgs {
        file: missing.clone(),
        dump: false,
        json: false,
    });
    assert_eq!(code, 5, "keepalived -t exits 5 for unknown interfaces");
    assert!(
        err.contains(":2: interface: VI_1: interface xvrrpd-none0 does not exist on this host"),
        "{err}"
    );
    let lo = temp_config(
        "lo",
        "vrrp_instance VI_1 {\n interface lo\n virtual_router_id 5\n virtual_ipaddress { 10.0.0.1 }\n}\n",
    );
    let (code, _, err) = run(&CheckArgs {
        file: lo.clone(),
        dump: false,
        json: false,
    });
    assert_eq!(code, 5);
    assert!(err.contains("cannot use loopback interface lo"), "{err}");
    std::fs::remove_file(missing).unwrap();
    std::fs::remove_file(lo).unwrap();
}

#[test]
fn unicast_addresses_with_a_mask_stay_unicast_in_the_dump() {
    let Some(iface) = host_interface() else {
        println!("skipped: no non-loopback interface on this host");
        return;
    };
    let path = temp_config(
        "unicast-mask",
        &format!("vrrp_instance VI_1 {{\n interface {iface}\n virtual_router_id 91\n unicast_src_ip 192.168.0.91/24\n unicast_peer {{\n 192.168.0.92/24\n 192.168.0.93-95\n }}\n virtual_ipaddress {{ 192.168.0.90/24 }}\n}}\n"),
    );
    let (code, out, err) = run(&CheckArgs {
        file: path.clone(),
        dump: true,
        json: true,
    });
    std::fs::remove_file(path).unwrap();
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let instance = &json["instances"][0];
    assert_eq!(instance["unicast_src_ip"], "192.168.0.91");
    assert_eq!(
        instance["unicast_peer"],
        serde_json::json!(["192.168.0.92", "192.168.0.93"])
    );
    assert!(
        err.contains(
            "'192.168.0.92/24': keepalived ignores the mask or range and uses the address"
        ),
        "{err}"
    );
}
