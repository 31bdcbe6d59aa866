//! No input makes the reader panic: arbitrary bytes, and soup made of keepalived's own
//! tokens (which reaches far deeper into the keyword handlers than random bytes do).

#[path = "configs/fake_host.rs"]
mod fake_host;

use std::path::Path;

use fake_host::FakeHost;
use proptest::prelude::*;
use xvrrpd::config::{load_str, load_str_with};

const VOCABULARY: &[&str] = &[
    "{",
    "}",
    "{",
    "}",
    "\n",
    "\n",
    "\n",
    "\"",
    "#",
    "!",
    "$X=",
    "$X",
    "${X}",
    "@host",
    "include",
    "global_defs",
    "vrrp_instance",
    "VI_1",
    "VI_2",
    "vrrp_script",
    "chk",
    "vrrp_track_process",
    "vrrp_track_file",
    "track_file",
    "vrrp_sync_group",
    "group",
    "virtual_server",
    "real_server",
    "state",
    "MASTER",
    "BACKUP",
    "interface",
    "eth0",
    "lo",
    "eth9",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "authentication",
    "auth_type",
    "PASS",
    "AH",
    "auth_pass",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "unicast_src_ip",
    "mcast_src_ip",
    "unicast_peer",
    "nopreempt",
    "preempt",
    "preempt_delay",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "track_interface",
    "track_script",
    "track_process",
    "weight",
    "reverse",
    "notify",
    "notify_master",
    "notify_stop",
    "use_vmac",
    "accept",
    "no_accept",
    "check_unicast_src",
    "v3_checksum_as_v2",
    "script",
    "interval",
    "timeout",
    "rise",
    "fall",
    "user",
    "init_fail",
    "process",
    "quorum",
    "quorum_max",
    "delay",
    "file",
    "init_file",
    "overwrite",
    "enable_script_security",
    "script_user",
    "vrrp_version",
    "vrrp_mcast_group4",
    "vrrp_garp_interval",
    "brd",
    "dev",
    "label",
    "scope",
    "10.0.0.1",
    "10.0.0.1/24",
    "10.0.0.1/99",
    "fd00::1",
    "fd00::1/200",
    "::",
    "0",
    "1",
    "-1",
    "2",
    "3",
    "40.96",
    "0.001",
    "255",
    "256",
    "-254",
    "254",
    "1e309",
    "NaN",
    "inf",
    "-0",
    "99999999999999999999",
    "ééé",
    "\u{0}",
    "/bin/true",
    "root",
    "nobody",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VOCABULARY), 0..300).prop_map(|tokens| {
        let mut text = String::new();
        for t in tokens {
            text.push_str(t);
            text.push(' ');
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = load_str(&text, Path::new("/nonexistent/fuzz.conf"));
    }

    #[test]
    fn token_soup_never_panics(text in soup()) {
        let _ = load_str(&text, Path::new("/nonexistent/fuzz.conf"));
        let _ = load_str_with(&text, Path::new("/nonexistent/fuzz.conf"), &FakeHost);
    }

    /// A valid instance followed by soup: the instance path runs to the end every time.
    #[test]
    fn soup_inside_an_instance_never_panics(body in soup()) {
        let text = format!(
            "vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 1\n{body}\n}}\nvrrp_script chk {{\n{body}\n}}\n"
        );
        let loaded = load_str_with(&text, Path::new("/nonexistent/fuzz.conf"), &FakeHost);
        if let Ok(loaded) = loaded {
            // The model is always serializable for `check --dump --json`.
            prop_assert!(serde_json::to_string(&loaded.config).is_ok());
        }
    }
}
