//! Every keyword: how it parses, its default, and what is reported (with its line).

#[path = "configs/fake_host.rs"]
mod fake_host;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use fake_host::{instance, load, messages};
use xvrrpd::config::*;

fn only(body: &str) -> (Instance, Vec<String>) {
    let loaded = load(&instance(body));
    let msgs = messages(&loaded);
    let instance = loaded
        .config
        .instances
        .into_iter()
        .next()
        .expect("instance kept");
    (instance, msgs)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn instance_defaults() {
    let (i, msgs) = only("");
    assert!(msgs.is_empty(), "{msgs:?}");
    assert_eq!(i.name, "VI_1");
    assert_eq!(i.defined_at, Location::new("k.conf", 1));
    assert_eq!(i.state, InitialState::Backup);
    assert_eq!(i.interface, "eth0");
    assert_eq!(i.virtual_router_id, 1);
    assert_eq!(i.priority, 100);
    assert_eq!(i.advert_int, Duration::from_secs(1));
    assert_eq!(i.advert_interval(), Duration::from_secs(1));
    assert_eq!(i.version, Version::V2);
    assert_eq!(i.authentication, None);
    assert_eq!(i.virtual_ipaddress.len(), 1);
    assert!(i.virtual_ipaddress_excluded.is_empty());
    assert_eq!(i.unicast_src_ip, None);
    assert!(i.unicast_peer.is_empty());
    assert!(!i.is_unicast());
    assert!(!i.nopreempt);
    assert_eq!(i.preempt_delay, Duration::ZERO);
    assert_eq!(i.garp_master_delay, Duration::from_secs(5));
    assert_eq!(i.garp_master_repeat, 5);
    assert_eq!(i.garp_master_refresh, None);
    assert_eq!(i.garp_master_refresh_repeat, 1);
    assert!(!i.has_trackers());
    assert_eq!(i.notify, Notify::default());
    assert_eq!(i.use_vmac, None);
    assert!(!i.vmac_xmit_base);
    assert!(!i.dont_track_primary);
    assert!(i.accept);
    assert!(!i.check_unicast_src);
    assert!(!i.v3_checksum_as_v2);
    assert_eq!(i.family(), Family::V4);
    assert_eq!(i.multicast_group(&GlobalDefs::default()), ip("224.0.0.18"));
    assert_eq!(i.reload_key(), (1, Family::V4, "eth0"));
}

#[test]
fn global_defaults() {
    let loaded = load("");
    assert_eq!(loaded.config, Config::default());
    let g = GlobalDefs::default();
    assert_eq!(g.vrrp_mcast_group4, Ipv4Addr::new(224, 0, 0, 18));
    assert_eq!(g.vrrp_mcast_group6, "ff02::12".parse::<Ipv6Addr>().unwrap());
    assert_eq!(g.vrrp_version, Version::V2);
    assert_eq!(g.vrrp_garp_master_delay, Duration::from_secs(5));
    assert_eq!(g.vrrp_garp_master_repeat, 5);
    assert_eq!(g.vrrp_garp_interval, Duration::ZERO);
    assert_eq!(g.vrrp_gna_interval, Duration::ZERO);
    assert!(!g.enable_script_security);
    assert_eq!(loaded.keepalived_exit_code(), 0);
}

#[test]
fn global_keywords() {
    let loaded = load(
        "global_defs {
            router_id node1
            vrrp_mcast_group4 224.0.0.19
            vrrp_mcast_group6 ff02::13
            vrrp_version 3
            vrrp_garp_master_delay 2
            vrrp_garp_master_repeat 3
            vrrp_garp_master_refresh 60
            vrrp_garp_master_refresh_repeat 2
            vrrp_garp_interval 0.001
            vrrp_gna_interval 0.002
            vrrp_check_unicast_src
            script_user nobody nogroup
            enable_script_security
            notify_fifo /run/keepalived.fifo
            notify_fifo_script \"/usr/local/bin/fifo.sh arg\"
            notification_email { root@localhost }
            smtp_server 127.0.0.1
        }\n",
    );
    // Alert mail is checked as keepalived checks it, and reported as not sent.
    let smtp = "xvrrpd sends no alert mail: keepalived's SMTP alerts are not implemented (use notify scripts to send mail)";
    assert_eq!(
        messages(&loaded),
        [
            format!("k.conf:17: notification_email: {smtp}"),
            "k.conf:18: smtp_server: alert mail is not sent (see k.conf:17)".to_string(),
        ]
    );
    assert_eq!(loaded.keepalived_exit_code(), 0);
    let g = &loaded.config.global;
    assert_eq!(g.router_id.as_deref(), Some("node1"));
    assert_eq!(g.vrrp_mcast_group4, Ipv4Addr::new(224, 0, 0, 19));
    assert_eq!(g.vrrp_mcast_group6, "ff02::13".parse::<Ipv6Addr>().unwrap());
    assert_eq!(g.vrrp_version, Version::V3);
    assert_eq!(g.vrrp_garp_master_delay, Duration::from_secs(2));
    assert_eq!(g.vrrp_garp_master_repeat, 3);
    assert_eq!(g.vrrp_garp_master_refresh, Some(Duration::from_secs(60)));
    assert_eq!(g.vrrp_garp_master_refresh_repeat, 2);
    assert_eq!(g.vrrp_garp_interval, Duration::from_millis(1));
    assert_eq!(g.vrrp_gna_interval, Duration::from_millis(2));
    assert!(g.vrrp_check_unicast_src);
    assert_eq!(
        g.script_user,
        Some(ScriptUser {
            user: "nobody".into(),
            group: Some("nogroup".into())
        })
    );
    assert!(g.enable_script_security);
    assert_eq!(g.notify_fifo, Some(PathBuf::from("/run/keepalived.fifo")));
    assert_eq!(
        g.notify_fifo_script.as_deref(),
        Some("/usr/local/bin/fifo.sh arg")
    );
}

#[test]
fn globals_feed_instance_defaults() {
    let text = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1 }\n}\n\
         global_defs {\n vrrp_version 3\n vrrp_garp_master_delay 7\n vrrp_garp_master_repeat 2\n vrrp_check_unicast_src\n}\n";
    let loaded = load(text);
    let i = &loaded.config.instances[0];
    assert_eq!(i.version, Version::V3);
    assert_eq!(i.garp_master_delay, Duration::from_secs(7));
    assert_eq!(i.garp_master_repeat, 2);
    assert!(i.check_unicast_src);
}

#[test]
fn state_and_priority() {
    assert_eq!(only("state MASTER").0.priority, 255);
    assert_eq!(only("state MASTER").0.state, InitialState::Master);
    assert!(only("state MASTER").0.is_address_owner());
    assert_eq!(only("state MASTER\npriority 150").0.priority, 150);
    assert_eq!(only("priority 1").0.priority, 1);
    assert_eq!(only("priority 255").0.priority, 255);
    let (i, msgs) = only("priority 0");
    assert_eq!(i.priority, 100);
    assert_eq!(msgs, ["k.conf:5: priority: 0 outside 1..255; using 100"]);
    let (_, msgs) = only("priority 256");
    assert_eq!(msgs, ["k.conf:5: priority: 256 outside 1..255; using 100"]);
    let (_, msgs) = only("priority high");
    assert_eq!(
        msgs,
        ["k.conf:5: priority: invalid number 'high'; using 100"]
    );
    let (i, msgs) = only("state master");
    assert_eq!(i.state, InitialState::Backup);
    assert_eq!(
        msgs,
        ["k.conf:5: state: VI_1: unknown state 'master', using BACKUP"]
    );
    // keepalived derives the state from the priority when none is written.
    assert_eq!(only("priority 255").0.state, InitialState::Master);
    let (i, msgs) = only("state MASTER\nstate BACKUP");
    assert_eq!(i.state, InitialState::Master);
    assert_eq!(
        msgs,
        ["k.conf:6: state: VI_1: state already MASTER; BACKUP ignored"]
    );
}

#[test]
fn virtual_router_id_errors() {
    for (value, message) in [
        ("300", "k.conf:2: virtual_router_id: 300 outside 1..255"),
        ("0", "k.conf:2: virtual_router_id: 0 outside 1..255"),
        ("x", "k.conf:2: virtual_router_id: invalid number 'x'"),
    ] {
        let loaded = load(&format!(
            "vrrp_instance VI_1 {{\n virtual_router_id {value}\n interface eth0\n virtual_ipaddress {{ 10.0.0.1 }}\n}}\n"
        ));
        assert_eq!(messages(&loaded), [message]);
        assert!(loaded.has_errors());
        assert!(loaded.config.instances.is_empty());
        assert_eq!(loaded.keepalived_exit_code(), 5);
    }
    let loaded = load("vrrp_instance VI_1 {\n interface eth0\n}\n");
    assert_eq!(
        messages(&loaded)[0],
        "k.conf:1: virtual_router_id: VI_1: virtual_router_id must be set"
    );
    assert!(loaded.has_errors());
}

#[test]
fn interface_errors() {
    let loaded =
        load("vrrp_instance VI_1 {\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1 }\n}\n");
    assert_eq!(
        messages(&loaded),
        ["k.conf:1: interface: VI_1: no interface given"]
    );
    let loaded = load("vrrp_instance VI_1 {\n virtual_router_id 1\n interface eth9\n virtual_ipaddress { 10.0.0.1 }\n}\n");
    assert_eq!(
        messages(&loaded),
        ["k.conf:3: interface: VI_1: interface eth9 does not exist on this host"]
    );
    assert!(loaded.has_errors());
    let loaded = load("vrrp_instance VI_1 {\n virtual_router_id 1\n interface lo\n virtual_ipaddress { 10.0.0.1 }\n}\n");
    assert_eq!(
        messages(&loaded),
        ["k.conf:3: interface: VI_1: cannot use loopback interface lo for VRRP"]
    );
}

#[test]
fn missing_parameter_is_an_error() {
    // keepalived stops at the first one with exit 2; xvrrpd lists them all.
    let loaded = load(&instance("priority\nadvert_int"));
    assert_eq!(
        messages(&loaded),
        [
            "k.conf:5: priority: missing a parameter (keepalived stops reading here, exit 2)",
            "k.conf:6: advert_int: missing a parameter (keepalived stops reading here, exit 2)",
        ]
    );
    assert!(loaded.has_errors());
    assert_eq!(loaded.keepalived_exit_code(), 2);
    // Even after an error that alone gives 5, or a security violation that gives 6.
    let loaded = load(&format!(
        "vrrp_script s {{\n script /bin/true\n}}\n{}",
        instance("frobnicate\ntrack_script { s }\nstate")
    ));
    assert_eq!(loaded.keepalived_exit_code(), 2);
    // Keywords whose value keepalived checks itself do not stop it.
    let loaded = load("global_defs {\n router_id\n}\n");
    assert_eq!(loaded.keepalived_exit_code(), 5);
}

#[test]
fn unnamed_instance_is_an_error() {
    let loaded = load("vrrp_instance {\n interface eth0\n}\n");
    assert_eq!(
        messages(&loaded),
        ["k.conf:1: vrrp_instance: must have a name; block skipped"]
    );
}

#[test]
fn duplicate_instance_name_is_an_error() {
    let text = format!(
        "{}{}",
        instance(""),
        instance("").replace("virtual_router_id 1", "virtual_router_id 2")
    );
    let loaded = load(&text);
    assert_eq!(
        messages(&loaded),
        ["k.conf:7: vrrp_instance: vrrp instance VI_1 already defined; block skipped"]
    );
    assert_eq!(loaded.config.instances.len(), 1);
}

#[test]
fn advert_int_v2_rounds_to_whole_seconds() {
    assert_eq!(only("advert_int 3").0.advert_int, Duration::from_secs(3));
    let (i, msgs) = only("advert_int 1.5");
    assert_eq!(i.advert_int, Duration::from_secs(2));
    assert_eq!(
        msgs,
        ["k.conf:5: advert_int: VI_1: VRRPv2 advert_int 1.5s must be whole seconds; using 2s"]
    );
    let (i, msgs) = only("advert_int 0.2");
    assert_eq!(i.advert_int, Duration::from_secs(1));
    assert_eq!(msgs.len(), 1);
    let (i, msgs) = only("advert_int 0");
    assert_eq!(i.advert_int, Duration::from_secs(1));
    assert_eq!(msgs, ["k.conf:5: advert_int: 0 outside 0.01..255"]);
    let (_, msgs) = only("advert_int 256");
    assert_eq!(msgs, ["k.conf:5: advert_int: 256 outside 0.01..255"]);
}

#[test]
fn advert_int_v3_uses_10ms_steps_up_to_40_95s() {
    let (i, msgs) = only("version 3\nadvert_int 0.05");
    assert!(msgs.is_empty(), "{msgs:?}");
    assert_eq!(i.version, Version::V3);
    assert_eq!(i.advert_int, Duration::from_millis(50));
    let (i, msgs) = only("version 3\nadvert_int 0.015");
    assert_eq!(i.advert_int, Duration::from_millis(20));
    assert_eq!(msgs.len(), 1);
    let (i, msgs) = only("version 3\nadvert_int 41");
    assert_eq!(i.advert_int, Duration::from_millis(40_950));
    assert_eq!(
        msgs,
        ["k.conf:6: advert_int: VI_1: VRRPv3 advert_int 41s above 40.95s; using 40.95s"]
    );
    assert_eq!(
        only("version 3\nadvert_int 40.95").0.advert_int,
        Duration::from_millis(40_950)
    );
}

#[test]
fn version_keyword() {
    assert_eq!(only("version 3").0.version, Version::V3);
    assert_eq!(only("version 2").0.version, Version::V2);
    let (i, msgs) = only("version 4");
    assert_eq!(i.version, Version::V2);
    assert_eq!(msgs, ["k.conf:5: version: 4 outside 2..3"]);
}

#[test]
fn ipv6_instance_is_forced_to_v3() {
    let text = "vrrp_instance V6 {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress { fd00::1 }\n}\n";
    let i = load(text).config.instances.remove(0);
    assert_eq!(i.family(), Family::V6);
    assert_eq!(i.version, Version::V3);
    assert_eq!(i.virtual_ipaddress[0].prefix_len, 128);
    assert_eq!(i.multicast_group(&GlobalDefs::default()), ip("ff02::12"));
    // keepalived only logs that the first IPv6 VIP should be link-local.
    let link_local = "k.conf:1: virtual_ipaddress: V6: the first IPv6 VIP should be link-local";
    // Written before the address: keepalived is silent, we note it.
    let loaded = load(&text.replace(" interface eth0\n", " interface eth0\n version 2\n"));
    assert_eq!(loaded.config.instances[0].version, Version::V3);
    assert_eq!(
        messages(&loaded),
        [
            "k.conf:1: version: V6: VRRPv2 has no IPv6; using version 3",
            link_local
        ]
    );
    assert_eq!(loaded.keepalived_exit_code(), 0);
    // Written after it: keepalived reports the conflict.
    let loaded = load(&text.replace("fd00::1 }\n", "fd00::1 }\n version 2\n"));
    assert_eq!(
        messages(&loaded),
        [
            link_local,
            "k.conf:5: version: V6: version 2 conflicts with the configured or deduced version; ignored"
        ]
    );
    assert_eq!(loaded.keepalived_exit_code(), 5);
    // Under strict mode the link-local VIP is a requirement.
    let loaded = load(&format!("global_defs {{ vrrp_strict }}\n{text}"));
    assert_eq!(loaded.keepalived_exit_code(), 5);
}

#[test]
fn authentication() {
    let (i, msgs) = only("authentication {\n auth_type PASS\n auth_pass secret\n}");
    assert!(msgs.is_empty());
    assert_eq!(
        i.authentication,
        Some(Authentication {
            auth_type: AuthType::Pass,
            auth_pass: "secret".into()
        })
    );
    assert_eq!(i.auth_data(), Some(*b"secret\0\0"));
    let (i, _) = only("authentication {\n auth_type AH\n auth_pass x\n}");
    assert_eq!(i.authentication.unwrap().auth_type, AuthType::Ah);
    assert_eq!(
        only("authentication { auth_type AH\nauth_pass x }")
            .0
            .auth_data(),
        None
    );

    let (i, msgs) = only("authentication {\n auth_type PASS\n auth_pass 1234567890\n}");
    assert_eq!(i.authentication.unwrap().auth_pass, "12345678");
    assert_eq!(
        msgs,
        ["k.conf:7: auth_pass: longer than 8 characters; truncated to 8 as keepalived does"]
    );

    let (i, msgs) = only("authentication {\n auth_type PASS\n}");
    assert_eq!(i.authentication, None);
    assert_eq!(
        msgs,
        ["k.conf:5: authentication: VI_1: auth_type given without auth_pass; ignored"]
    );

    let (_, msgs) = only("authentication {\n auth_type MD5\n auth_pass x\n}");
    assert_eq!(
        msgs,
        ["k.conf:6: auth_type: VI_1: unknown authentication type 'MD5'"]
    );

    let (i, msgs) = only("version 3\nauthentication {\n auth_type PASS\n auth_pass x\n}");
    assert_eq!(i.authentication, None);
    assert_eq!(
        msgs,
        ["k.conf:6: authentication: VI_1: VRRPv3 has no authentication; ignored"]
    );
}

#[test]
fn virtual_ipaddress_entries() {
    let text =
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n\
        10.0.0.1/24 brd 10.0.0.255 dev eth1 label eth1:1 scope link\n\
        10.0.0.2\n\
        10.0.0.3/24 dev eth0 label eth0:3 no_track\n\
     }\n virtual_ipaddress_excluded {\n 10.9.0.1/16\n fd00::9\n }\n}\n";
    let loaded = load(text);
    assert!(messages(&loaded).is_empty(), "{:?}", messages(&loaded));
    let i = &loaded.config.instances[0];
    assert_eq!(
        i.virtual_ipaddress[0],
        VirtualIp {
            address: ip("10.0.0.1"),
            prefix_len: 24,
            broadcast: Some(ip("10.0.0.255")),
            dev: Some("eth1".into()),
            label: Some("eth1:1".into()),
            scope: Some("link".into()),
            no_track: false,
        }
    );
    assert!(i.virtual_ipaddress[2].no_track);
    assert_eq!(i.virtual_ipaddress[1].prefix_len, 32);
    assert_eq!(i.virtual_ipaddress[1].dev, None);
    assert_eq!(i.virtual_ipaddress[2].label.as_deref(), Some("eth0:3"));
    assert_eq!(i.virtual_ipaddress_excluded.len(), 2);
    assert_eq!(i.virtual_ipaddress_excluded[1].prefix_len, 128);
    assert_eq!(i.virtual_ipaddress_excluded[1].family(), Family::V6);
}

#[test]
fn virtual_ipaddress_errors() {
    let cases = [
        (
            "10.0.0.5/33",
            "k.conf:6: virtual_ipaddress: prefix length of 10.0.0.5/33: 33 outside 0..32; using /32",
        ),
        (
            "10.0.0.300",
            "k.conf:6: virtual_ipaddress: invalid IP address '10.0.0.300'; skipped",
        ),
        (
            "10.0.0.5 dev eth9",
            "k.conf:6: virtual_ipaddress: interface eth9 for address 10.0.0.5 does not exist; address skipped",
        ),
        (
            "10.0.0.5 scope galaxy",
            "k.conf:6: virtual_ipaddress: invalid scope 'galaxy' for 10.0.0.5; ignored",
        ),
        (
            "10.0.0.5 frob",
            "k.conf:6: virtual_ipaddress: unknown option 'frob' for address 10.0.0.5; ignored",
        ),
        (
            "10.0.0.5 label",
            "k.conf:6: virtual_ipaddress: no label value given for 10.0.0.5; address skipped",
        ),
        (
            "10.0.0.5 brd x",
            "k.conf:6: virtual_ipaddress: invalid broadcast address 'x'; address skipped",
        ),
        (
            "fd00::5",
            "k.conf:6: virtual_ipaddress: VI_1: fd00::5 is IPv6 but the instance is IPv4; ignored",
        ),
    ];
    for (entry, message) in cases {
        let (_, msgs) = only(&format!("virtual_ipaddress {{\n{entry}\n}}"));
        assert_eq!(msgs, [message], "{entry}");
    }
}

#[test]
fn no_vip_is_reported() {
    let loaded = load("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n}\n");
    assert_eq!(
        messages(&loaded),
        ["k.conf:1: virtual_ipaddress: VI_1: no virtual_ipaddress; at least one is sensible"]
    );
    assert!(!loaded.has_errors());
    assert_eq!(loaded.keepalived_exit_code(), 5);
    // VRRPv3 needs one: keepalived refuses the instance and stops there.
    let loaded =
        load("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n version 3\n}\n");
    assert!(loaded.has_errors());
    assert!(loaded.config.instances.is_empty());
}

#[test]
fn unicast() {
    let (i, msgs) = only(
        "unicast_src_ip 10.0.0.5\nunicast_peer {\n 10.0.0.6\n 10.0.0.7 min_ttl 250 max_ttl 255\n}",
    );
    assert_eq!(
        msgs,
        [
            "k.conf:8: unicast_peer: min_ttl is not applied by xvrrpd",
            "k.conf:8: unicast_peer: max_ttl is not applied by xvrrpd"
        ]
    );
    assert!(i.is_unicast());
    assert_eq!(i.unicast_src_ip, Some(ip("10.0.0.5")));
    assert_eq!(i.unicast_peer, [ip("10.0.0.6"), ip("10.0.0.7")]);

    let (i, msgs) = only("mcast_src_ip 10.0.0.5");
    assert!(msgs.is_empty());
    assert_eq!(i.unicast_src_ip, Some(ip("10.0.0.5")));
    assert!(!i.is_unicast());

    let (i, msgs) = only("unicast_src_ip 10.0.0.5");
    assert!(!i.is_unicast());
    assert_eq!(
        msgs,
        ["k.conf:5: unicast_peer: VI_1: unicast keyword without any unicast_peer; adverts will be multicast"]
    );
    let (_, msgs) = only("check_unicast_src");
    assert_eq!(msgs.len(), 1);

    let (i, msgs) = only("unicast_peer {\n fd00::6\n 10.0.0.6\n bogus\n}");
    assert_eq!(i.unicast_peer, [ip("10.0.0.6")]);
    assert_eq!(
        msgs,
        [
            "k.conf:6: unicast_peer: VI_1: fd00::6 is IPv6 but the instance is IPv4; ignored",
            "k.conf:8: unicast_peer: VI_1: malformed unicast peer address 'bogus'; skipped"
        ]
    );
    // keepalived cuts a mask or range off and stays unicast.
    let (i, msgs) =
        only("unicast_src_ip 10.0.0.5/24\nunicast_peer {\n 10.0.0.6/24\n 10.0.0.7-9\n}");
    assert!(i.is_unicast());
    assert_eq!(i.unicast_src_ip, Some(ip("10.0.0.5")));
    assert_eq!(i.unicast_peer, [ip("10.0.0.6"), ip("10.0.0.7")]);
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(msgs[0]
        .ends_with("'10.0.0.5/24': keepalived ignores the mask or range and uses the address"));
}

#[test]
fn family_comes_from_the_first_address_keyword() {
    let text = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n unicast_src_ip fd00::5\n unicast_peer { fd00::6 }\n virtual_ipaddress { 10.0.0.1 }\n}\n";
    let loaded = load(text);
    assert_eq!(
        messages(&loaded),
        [
            "k.conf:1: virtual_ipaddress: VI_1: no virtual_ipaddress; VRRPv3 and strict mode require one",
            "k.conf:6: virtual_ipaddress: VI_1: 10.0.0.1 is IPv4 but the instance is IPv6; ignored",
        ]
    );
    // The IPv6 instance has no VIP left, so neither keepalived nor xvrrpd runs it.
    assert!(loaded.config.instances.is_empty());
}

#[test]
fn preemption() {
    let (i, msgs) = only("nopreempt");
    assert!(i.nopreempt && msgs.is_empty());
    assert!(!only("nopreempt\npreempt").0.nopreempt);
    assert_eq!(
        only("preempt_delay 2.5").0.preempt_delay,
        Duration::from_millis(2500)
    );
    let (_, msgs) = only("preempt_delay 1001");
    assert_eq!(msgs, ["k.conf:5: preempt_delay: 1001 outside 0..1000"]);

    let (i, msgs) = only("state MASTER\npriority 100\nnopreempt");
    assert!(!i.nopreempt);
    assert_eq!(
        msgs,
        ["k.conf:7: nopreempt: VI_1: nopreempt does not work with state MASTER (use state BACKUP on both nodes); ignored"]
    );
    let (i, msgs) = only("priority 255\nnopreempt");
    assert!(!i.nopreempt);
    assert_eq!(
        msgs,
        ["k.conf:6: nopreempt: VI_1: priority 255 always preempts; nopreempt ignored"]
    );
    let (i, msgs) = only("nopreempt\npreempt_delay 5");
    assert_eq!(i.preempt_delay, Duration::ZERO);
    assert_eq!(
        msgs,
        ["k.conf:6: preempt_delay: VI_1: preempt_delay has no effect with nopreempt; ignored"]
    );
}

#[test]
fn garp_keywords() {
    let (i, msgs) = only("garp_master_delay 3\ngarp_master_repeat 2\ngarp_master_refresh 30\ngarp_master_refresh_repeat 4");
    assert!(msgs.is_empty());
    assert_eq!(i.garp_master_delay, Duration::from_secs(3));
    assert_eq!(i.garp_master_repeat, 2);
    assert_eq!(i.garp_master_refresh, Some(Duration::from_secs(30)));
    assert_eq!(i.garp_master_refresh_repeat, 4);
    assert_eq!(only("garp_master_refresh 0").0.garp_master_refresh, None);
    let (i, msgs) = only("garp_master_repeat 0\ngarp_master_refresh_repeat 0");
    assert_eq!((i.garp_master_repeat, i.garp_master_refresh_repeat), (1, 1));
    assert_eq!(
        msgs,
        [
            "k.conf:5: garp_master_repeat: must be greater than 0; using 1",
            "k.conf:6: garp_master_refresh_repeat: must be greater than 0; using 1"
        ]
    );
}

#[test]
fn track_interface() {
    let (i, msgs) = only("track_interface {\n eth1 weight -20 reverse\n}");
    assert!(msgs.is_empty(), "{msgs:?}");
    assert_eq!(
        i.track_interface,
        [TrackInterface {
            name: "eth1".into(),
            weight: -20,
            reverse: true
        }]
    );
    assert_eq!(
        only("track_interface { eth1 }").0.track_interface[0].weight,
        0
    );

    let (i, msgs) = only("track_interface {\n eth0 weight 10\n}");
    assert!(i.track_interface.is_empty());
    assert_eq!(
        msgs,
        ["k.conf:6: track_interface: VI_1: eth0 is the instance's own interface; track_interface ignored"]
    );
    let (_, msgs) = only("track_interface {\n eth1\n eth1 weight 5\n}");
    assert_eq!(
        msgs,
        ["k.conf:7: track_interface: VI_1: duplicate track_interface eth1; ignored"]
    );
    let loaded = load(&instance("track_interface {\n eth7\n}"));
    assert_eq!(
        messages(&loaded),
        ["k.conf:6: track_interface: VI_1: tracked interface eth7 does not exist on this host"]
    );
    assert_eq!(loaded.keepalived_exit_code(), 5);
    let (i, msgs) = only("track_interface {\n eth1 weight 254\n}");
    assert_eq!(i.track_interface[0].weight, 253);
    assert_eq!(
        msgs,
        ["k.conf:6: eth1: VI_1: weight for eth1 cannot be 254; using 253"]
    );
    let (_, msgs) = only("track_interface {\n eth1 weight 300\n}");
    assert_eq!(msgs, ["k.conf:6: eth1: 300 outside -254..254"]);
    let (_, msgs) = only("track_interface {\n eth1 weight\n}");
    assert_eq!(
        msgs,
        ["k.conf:6: eth1: VI_1: weight without a value for eth1; ignored"]
    );
    let (i, msgs) = only("track_interface {\n eth1 heavy\n}");
    assert!(i.track_interface.is_empty());
    assert_eq!(
        msgs,
        ["k.conf:6: eth1: VI_1: unknown option 'heavy' for eth1; ignored"]
    );
}

#[test]
fn owner_ignores_weighted_trackers() {
    let (i, msgs) = only("priority 255\ntrack_interface {\n eth1 weight -20\n}");
    assert!(i.track_interface.is_empty());
    assert_eq!(msgs[0], "k.conf:7: track_interface: VI_1: weight of tracked interface eth1 ignored because of priority 255 (address owner)");
}

const SECURE: &str = "global_defs {\n enable_script_security\n script_user root\n}\n";

#[test]
fn vrrp_script_keywords_and_defaults() {
    let text = format!(
        "{SECURE}vrrp_script chk {{\n script \"/usr/bin/check arg\"\n interval 2\n timeout 3\n weight -20 reverse\n rise 4\n fall 5\n user nobody\n init_fail\n}}\n\
         vrrp_script plain {{\n script /bin/true\n interval 3\n}}\n"
    );
    let loaded = load(&text);
    assert!(messages(&loaded).is_empty(), "{:?}", messages(&loaded));
    let chk = &loaded.config.scripts["chk"];
    assert_eq!(chk.script, "/usr/bin/check arg");
    assert_eq!(chk.defined_at, Location::new("k.conf", 5));
    assert_eq!(chk.interval, Duration::from_secs(2));
    assert_eq!(chk.timeout, Duration::from_secs(3));
    assert_eq!(
        (chk.weight, chk.reverse, chk.rise, chk.fall),
        (-20, true, 4, 5)
    );
    assert_eq!(chk.user.as_ref().unwrap().user, "nobody");
    assert!(chk.init_fail);
    let plain = &loaded.config.scripts["plain"];
    assert_eq!(plain.interval, Duration::from_secs(3));
    assert_eq!(
        plain.timeout,
        Duration::from_secs(3),
        "timeout defaults to the interval"
    );
    assert_eq!(
        (plain.weight, plain.rise, plain.fall, plain.init_fail),
        (0, 1, 1, false)
    );
    let minimal = load(&format!("{SECURE}vrrp_script m {{ script /bin/true }}\n"));
    assert_eq!(minimal.config.scripts["m"].interval, Duration::from_secs(1));
}

#[test]
fn vrrp_script_errors() {
    let loaded = load(&format!(
        "{SECURE}vrrp_script chk {{\n interval 0\n rise 0\n weight 300\n}}\n"
    ));
    assert_eq!(
        messages(&loaded),
        [
            "k.conf:6: interval: must be greater than 0; using 1",
            "k.conf:7: rise: 0 outside 1..2147483647",
            "k.conf:8: weight: 300 outside -253..253",
            "k.conf:9: vrrp_script: chk: no script given; removed",
        ]
    );
    assert!(loaded.config.scripts.is_empty());
}

#[test]
fn track_script_refs() {
    let text = format!(
        "{SECURE}vrrp_script chk {{ script /bin/true\n weight 5 }}\nvrrp_script two {{ script /bin/true }}\n{}vrrp_script later {{ script /bin/true }}\n",
        instance("track_script {\n chk\n two weight -10 reverse\n chk weight 3\n nope\n later\n}")
    );
    let loaded = load(&text);
    let i = &loaded.config.instances[0];
    assert_eq!(
        i.track_script,
        [
            TrackRef {
                name: "chk".into(),
                weight: None,
                reverse: false
            },
            TrackRef {
                name: "two".into(),
                weight: Some(-10),
                reverse: true
            }
        ]
    );
    // keepalived resolves names as it reads: a script defined after the instance is unknown.
    assert_eq!(
        messages(&loaded),
        [
            "k.conf:15: track_script: VI_1: duplicate track script chk; ignored",
            "k.conf:16: track_script: VI_1: track script nope not found; ignored",
            "k.conf:17: track_script: VI_1: track script later not found: it is defined after this instance, and keepalived resolves names in file order; ignored",
        ]
    );
}

#[test]
fn track_process() {
    let text = format!(
        "vrrp_track_process nginx {{\n process nginx -g daemon\n weight 10 reverse\n quorum 2\n quorum_max 4\n delay 1.5\n param_match initial\n full_command\n}}\n\
         vrrp_track_process bare {{\n process sshd\n}}\n{}",
        instance("track_process {\n nginx weight 15\n bare\n}")
    );
    let loaded = load(&text);
    assert!(messages(&loaded).is_empty(), "{:?}", messages(&loaded));
    let p = &loaded.config.track_processes["nginx"];
    assert_eq!(p.process, "nginx");
    assert_eq!(p.parameters, ["-g", "daemon"]);
    assert_eq!(
        (p.weight, p.reverse, p.quorum, p.quorum_max),
        (10, true, 2, Some(4))
    );
    // `delay` sets both, as keepalived.
    assert_eq!(p.fork_delay, Duration::from_millis(1500));
    assert_eq!(p.terminate_delay, Duration::from_millis(1500));
    assert_eq!(p.param_match.as_deref(), Some("initial"));
    assert!(p.full_command);
    let bare = &loaded.config.track_processes["bare"];
    assert_eq!(
        (bare.weight, bare.quorum, bare.quorum_max, bare.full_command),
        (0, 1, None, false)
    );
    assert_eq!(loaded.config.instances[0].track_process[0].weight, Some(15));

    let loaded = load("vrrp_track_process p {\n weight 3\n}\n");
    assert_eq!(
        messages(&loaded),
        ["k.conf:3: vrrp_track_process: track process p: no process given; removed"]
    );
}

#[test]
fn track_file() {
    let text = format!(
        "vrrp_track_file f {{\n file /run/f\n weight -3\n init_file 7 overwrite\n}}\ntrack_file g {{\n file /run/g\n}}\n{}",
        instance("track_file {\n f weight 2\n g\n}")
    );
    let loaded = load(&text);
    assert_eq!(
        messages(&loaded),
        ["k.conf:1: vrrp_track_file: vrrp_track_file is deprecated; use track_file"]
    );
    let f = &loaded.config.track_files["f"];
    assert_eq!(f.file, PathBuf::from("/run/f"));
    assert_eq!(f.weight, -3);
    assert_eq!(
        f.init_file,
        Some(InitFile {
            value: 7,
            overwrite: true
        })
    );
    let g = &loaded.config.track_files["g"];
    assert_eq!((g.weight, g.init_file.clone()), (1, None));
    assert_eq!(loaded.config.instances[0].track_file.len(), 2);
    let loaded = load("track_file f {\n weight 3\n}\n");
    assert_eq!(
        messages(&loaded),
        ["k.conf:3: track_file: track file f: no file given; ignored"]
    );
}

#[test]
fn notify_keywords_keep_the_command_line() {
    let (i, msgs) = only(
        "notify \"/bin/n all\"\nnotify_master \"/bin/n master\"\nnotify_backup /bin/n backup\nnotify_fault \"/bin/n fault\"\nnotify_stop \"/bin/n stop\"",
    );
    // Unquoted, keepalived reads the word after the command as the user to run it as.
    assert_eq!(
        msgs,
        [
            "k.conf:5: enable_script_security: SECURITY VIOLATION: scripts would run but enable_script_security is not set (keepalived -t exits 6): set it in global_defs, with script_user",
            "k.conf:7: notify_backup: keepalived reads `backup` as the user to run `/bin/n` as, finds no such user and ignores this script: quote the command and its arguments",
        ]
    );
    assert_eq!(i.notify.notify.as_deref(), Some("/bin/n all"));
    assert_eq!(i.notify.master.as_deref(), Some("/bin/n master"));
    assert_eq!(i.notify.backup, None);
    assert_eq!(i.notify.fault.as_deref(), Some("/bin/n fault"));
    assert_eq!(i.notify.stop.as_deref(), Some("/bin/n stop"));
    assert_eq!(i.notify.commands().count(), 4);
    // An existing user is kept as keepalived's choice, and said to be not applied.
    let (i, msgs) = only("notify_master /bin/n nobody");
    assert_eq!(i.notify.master.as_deref(), Some("/bin/n"));
    assert!(
        msgs.iter()
            .any(|m| m.contains("keepalived runs `/bin/n` as user nobody")),
        "{msgs:?}"
    );
}

#[test]
fn flags() {
    let (i, msgs) =
        only("use_vmac\nvmac_xmit_base\ndont_track_primary\nno_accept\nv3_checksum_as_v2");
    assert_eq!(i.use_vmac.as_deref(), Some("vrrp.1"));
    assert!(i.vmac_xmit_base && i.dont_track_primary && !i.accept && i.v3_checksum_as_v2);
    assert_eq!(
        msgs,
        ["k.conf:9: v3_checksum_as_v2: xvrrpd extension that keepalived 2.2 does not know (keepalived -t reports an unknown keyword)"]
    );
    assert_eq!(
        only("use_vmac vrrp_a").0.use_vmac.as_deref(),
        Some("vrrp_a")
    );
    assert!(only("no_accept\naccept").0.accept);
}

#[test]
fn sync_group() {
    let text = format!(
        "{SECURE}{}{}vrrp_sync_group G {{\n group {{ VI_1\n VI_2 }}\n notify \"/bin/g\"\n notify_master /bin/gm\n notify_backup /bin/gb\n notify_fault /bin/gf\n notify_stop /bin/gs\n}}\n",
        instance(""),
        instance("")
            .replace("VI_1", "VI_2")
            .replace("router_id 1", "router_id 2")
            .replace("10.0.0.1", "10.0.0.2")
    );
    let loaded = load(&text);
    assert!(messages(&loaded).is_empty(), "{:?}", messages(&loaded));
    let g = &loaded.config.sync_groups[0];
    assert_eq!(g.members, ["VI_1", "VI_2"]);
    assert_eq!(g.notify.master.as_deref(), Some("/bin/gm"));
    assert_eq!(g.notify.notify.as_deref(), Some("/bin/g"));
    assert_eq!(
        loaded.config.sync_group_of("VI_2").map(|g| g.name.as_str()),
        Some("G")
    );
    assert!(loaded.config.instance("VI_2").is_some());
}

#[test]
fn sync_group_ignores_tracker_weights_unless_told() {
    let members = |group_extra: &str| {
        format!(
            "{}{}vrrp_sync_group G {{\n group {{ VI_1\n VI_2 }}\n{group_extra}\n}}\n",
            instance("track_interface {\n eth1 weight -20\n }"),
            instance("track_interface {\n eth1\n }")
                .replace("VI_1", "VI_2")
                .replace("router_id 1", "router_id 2")
                .replace("10.0.0.1", "10.0.0.2")
        )
    };
    // keepalived zeroes a member's interface weights (a failure then faults the group)
    // and drops its weighted scripts, unless the group keeps weights.
    let loaded = load(&members(""));
    assert_eq!(
        messages(&loaded),
        ["k.conf:6: track_interface: VI_1: weight of tracked interface eth1 ignored because of its sync group (add sync_group_tracking_weight to keep them)"]
    );
    assert_eq!(loaded.config.instances[0].track_interface[0].weight, 0);
    assert!(!loaded.config.sync_groups[0].tracking_weight);
    let loaded = load(&members("sync_group_tracking_weight"));
    assert!(messages(&loaded).is_empty(), "{:?}", messages(&loaded));
    assert_eq!(loaded.config.instances[0].track_interface[0].weight, -20);
    assert!(loaded.config.sync_groups[0].tracking_weight);
}

#[test]
fn sync_group_errors() {
    let text = format!(
        "{}vrrp_sync_group G {{\n group {{\n VI_1\n VI_9\n }}\n}}\nvrrp_sync_group H {{\n group {{\n VI_1\n }}\n}}\n",
        instance("")
    );
    let loaded = load(&text);
    assert_eq!(
        messages(&loaded),
        [
            "k.conf:7: vrrp_sync_group: G has 1 instance; a sync group needs at least two to do anything",
            "k.conf:10: group: G: instance VI_9 does not exist; ignored",
            "k.conf:13: vrrp_sync_group: H: no instance of its group exists; removed",
            "k.conf:15: group: H: instance VI_1 is already in sync group G; ignored",
        ]
    );
}

#[test]
fn vrid_collision_mirrors_keepalived() {
    let two = |second_vip: &str, second_if: &str| {
        format!(
            "{}{}",
            instance(""),
            instance("")
                .replace("VI_1", "VI_2")
                .replace("10.0.0.1", second_vip)
                .replace("interface eth0", &format!("interface {second_if}"))
        )
    };
    let loaded = load(&two("10.0.0.2", "eth0"));
    assert_eq!(
        messages(&loaded),
        ["k.conf:7: virtual_router_id: VI_1 and VI_2 both use VRID 1 with IPv4 on interface eth0"]
    );
    assert!(loaded.has_errors());
    // Another family or another interface is another virtual router.
    assert_eq!(load(&two("fd00::2", "eth0")).keepalived_exit_code(), 0);
    assert!(!load(&two("10.0.0.2", "eth1")).has_errors());
}

#[test]
fn weights_that_cannot_cause_failover_are_noted() {
    // Both routers of VRID 1 in one file (a lab setup): the gap is 50, the weight 20.
    let text = format!(
        "{}{}",
        instance("priority 150\ntrack_interface { eth1 weight -20 }"),
        instance("priority 100")
            .replace("VI_1", "VI_2")
            .replace("interface eth0", "interface eth1")
    );
    let loaded = load(&text);
    assert_eq!(
        messages(&loaded),
        ["k.conf:1: weight: VI_1: all its track weights together (20) cannot bring priority 150 below VI_2's 100: no failover on tracker failure"]
    );
    assert_eq!(loaded.keepalived_exit_code(), 0);
    let enough = text.replace("weight -20", "weight -60");
    assert!(messages(&load(&enough)).is_empty());
}

#[test]
fn script_security() {
    let script = format!(
        "vrrp_script chk {{\n script /bin/true\n}}\n{}",
        instance("track_script { chk }")
    );
    let loaded = load(&script);
    assert_eq!(
        messages(&loaded),
        ["k.conf:1: enable_script_security: SECURITY VIOLATION: scripts would run but enable_script_security is not set (keepalived -t exits 6): set it in global_defs, with script_user"]
    );
    assert_eq!(loaded.keepalived_exit_code(), 6);
    assert!(!loaded.has_errors());
    // keepalived only checks scripts when there is an instance to run them for.
    let loaded = load("vrrp_script chk {\n script /bin/true\n}\n");
    assert!(messages(&loaded).is_empty(), "{:?}", messages(&loaded));
    // A missing script is disabled (exit 5), not a violation.
    let loaded = load(&script.replace("/bin/true", "/nonexistent/check"));
    assert_eq!(
        messages(&loaded),
        ["k.conf:1: script: chk: /nonexistent/check not found or not accessible as uid 0: keepalived disables this script"]
    );
    assert_eq!(loaded.keepalived_exit_code(), 5);
    assert!(loaded.config.instances[0].track_script.is_empty());
    // Nor is a file-open check: the shell opens it, there is no program.
    let loaded = load(&script.replace("/bin/true", "\"</dev/tcp/127.0.0.1/80\""));
    assert!(messages(&loaded).is_empty(), "{:?}", messages(&loaded));
    assert_eq!(
        loaded.config.scripts["chk"].script,
        "</dev/tcp/127.0.0.1/80"
    );
    // A missing notify script is dropped quietly by keepalived.
    let loaded = load(&instance("notify_master /nonexistent/n"));
    assert_eq!(loaded.keepalived_exit_code(), 0);
    assert_eq!(loaded.config.instances[0].notify.master, None);
    // Security on but nobody to run as (no script_user, no keepalived_script user).
    let loaded = load(&format!(
        "global_defs {{ enable_script_security }}\n{script}"
    ));
    assert_eq!(
        messages(&loaded),
        [
            "k.conf:4: vrrp_script: no script_user and no user keepalived_script: with enable_script_security keepalived has no user to run scripts as",
            "k.conf:4: vrrp_script: chk: no default user to run it as; script removed",
            "k.conf:9: track_script: VI_1: track script chk not found: it was removed (see above); ignored",
        ]
    );
    assert!(loaded.config.scripts.is_empty());
    assert_eq!(loaded.keepalived_exit_code(), 5);
    let loaded = load(&format!("global_defs {{ script_user ghost }}\n{script}"));
    assert_eq!(
        messages(&loaded)[0],
        "k.conf:1: script_user: user ghost does not exist; keepalived runs no script without its own user"
    );
    // Unquoted words after the command are dropped by keepalived.
    let loaded = load(&format!(
        "{SECURE}vrrp_script chk {{\n script /bin/check --quiet\n}}\n"
    ));
    assert_eq!(loaded.config.scripts["chk"].script, "/bin/check");
    assert_eq!(
        messages(&loaded),
        ["k.conf:6: script: vrrp_script chk: keepalived runs only `/bin/check` and drops `--quiet`: quote the whole command (xvrrpd does as keepalived)"]
    );
}

#[test]
fn unknown_keywords_warn_and_other_sections_are_checked() {
    let text = format!(
        "virtual_server 10.0.0.1 80 {{\n protocol TCP\n lb_algo rr\n lb_kind DR\n real_server 10.0.0.2 80 {{\n weight 1\n }}\n}}\nstatic_ipaddress {{\n 1.2.3.4/24 dev eth0\n}}\nfrobnicate {{\n x 1\n}}\n{}",
        instance("priorty 100\nsmtp_alert")
    );
    let loaded = load(&text);
    assert_eq!(
        messages(&loaded),
        [
            "k.conf:1: virtual_server: LVS is not run by xvrrpd (keepalived's checker runs it); checked only",
            // keepalived does not skip an unknown block: it reads its lines at this level.
            "k.conf:12: frobnicate: unknown keyword",
            "k.conf:12: {: unexpected '{' after unknown keyword frobnicate: keepalived reads the block's lines as keywords of the enclosing block",
            "k.conf:13: x: unknown keyword",
            "k.conf:14: }: unknown keyword '}'",
            "k.conf:19: priorty: unknown keyword",
            "k.conf:20: smtp_alert: xvrrpd sends no alert mail: keepalived's SMTP alerts are not implemented (use notify scripts to send mail)",
        ]
    );
    assert_eq!(loaded.config.instances.len(), 1);
    assert!(!loaded.has_errors());
    assert_eq!(
        loaded.keepalived_exit_code(),
        5,
        "keepalived -t rejects unknown keywords"
    );
    let verdicts: Vec<Verdict> = loaded.diagnostics.iter().map(|d| d.keepalived).collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Silent,
            Verdict::ConfigError,
            Verdict::ConfigError,
            Verdict::ConfigError,
            Verdict::ConfigError,
            Verdict::ConfigError,
            Verdict::Silent
        ]
    );
    // What keepalived's checker finds in the LVS part counts too.
    let loaded = load("virtual_server 10.0.0.1 80 {\n lb_knd DR\n}\n");
    assert_eq!(
        messages(&loaded),
        [
            "k.conf:1: virtual_server: LVS is not run by xvrrpd (keepalived's checker runs it); checked only",
            "k.conf:1: virtual_server: virtual server [10.0.0.1]:80: has no real servers; ignored",
            "k.conf:2: lb_knd: unknown keyword",
        ]
    );
}

#[test]
fn brace_errors_name_the_line() {
    let loaded = load(&format!("{}}}\n", instance("")));
    assert_eq!(
        messages(&loaded),
        ["k.conf:7: }: extra '}' without a matching '{'"]
    );
    assert!(loaded.has_errors());
    let loaded = load("vrrp_instance VI_1 {\n interface eth0\n");
    assert_eq!(
        messages(&loaded)[0],
        "k.conf:1: {: block is never closed: missing '}'"
    );
}

#[test]
fn diagnostic_display_and_fields() {
    let loaded = load(&instance("priority 300"));
    let d = &loaded.diagnostics[0];
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.file, PathBuf::from("k.conf"));
    assert_eq!(d.line, 5);
    assert_eq!(d.keyword, "priority");
    assert_eq!(d.message, "300 outside 1..255; using 100");
    assert_eq!(d.location().to_string(), "k.conf:5");
    assert_eq!(loaded.warnings().count(), 1);
    assert_eq!(loaded.errors().count(), 0);
}

#[test]
fn serializes_to_json() {
    let loaded = load(&instance("advert_int 2"));
    let json = serde_json::to_value(&loaded.config).unwrap();
    assert_eq!(json["instances"][0]["advert_int"], 2.0);
    assert_eq!(json["instances"][0]["priority"], 100);
    assert_eq!(json["global"]["vrrp_mcast_group4"], "224.0.0.18");
}

#[test]
fn check_reports_an_insecure_script_with_enable_script_security() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        return; // ownership checks need root-owned files to compare against
    }
    let dir = std::env::temp_dir().join(format!("xvrrpd-sec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let script = dir.join("chk.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = format!(
        "global_defs {{\n script_user root\n enable_script_security\n}}\nvrrp_script chk {{\n script \"{}\"\n}}\nvrrp_instance VI_1 {{\n interface lo\n virtual_router_id 1\n}}\n",
        script.display()
    );
    let loaded = xvrrpd::config::load_str_with(
        &text,
        std::path::Path::new("k.conf"),
        &xvrrpd::config::SystemHost,
    )
    .unwrap();
    let msgs = messages(&loaded);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        msgs.iter().any(|m| m.starts_with("k.conf:5: script: chk: ")
            && m.contains("world-writable")
            && m.contains("keepalived disables this script")),
        "{msgs:?}"
    );
}
