//! The rules `xvrrpd check` takes from keepalived 2.2.7 (issue 15), one test per rule, on
//! a fake host (eth0, eth1, lo; users root and nobody; files outside /nonexistent exist).
//! The namespace test in config_vs_keepalived.rs compares the same rules with keepalived.

#[path = "configs/fake_host.rs"]
mod fake_host;

use std::time::Duration;

use fake_host::{instance, load, messages};
use xvrrpd::config::*;

fn exit(text: &str) -> i32 {
    load(text).keepalived_exit_code()
}

#[test]
fn exit_codes_rank_as_keepalived_ranks_them() {
    // A missing static-address interface alone is keepalived's "fatal" 4 ...
    let fatal = "static_ipaddress {\n 10.9.9.9/24\n}\n";
    let no_default_if =
        xvrrpd::config::load_str_with(fatal, std::path::Path::new("k.conf"), &OnlyEth1).unwrap();
    assert_eq!(no_default_if.keepalived_exit_code(), 4);
    // ... but a configuration error (5) outranks it, as keepalived keeps the later kind.
    let both = xvrrpd::config::load_str_with(
        &format!("{fatal}frobnicate\n"),
        std::path::Path::new("k.conf"),
        &OnlyEth1,
    )
    .unwrap();
    assert_eq!(both.keepalived_exit_code(), 5);
    // A security violation (6) outranks a configuration error.
    let script = format!(
        "vrrp_script s {{\n script /bin/true\n}}\n{}",
        instance("frobnicate\ntrack_script { s }")
    );
    assert_eq!(exit(&script), 6);
    // A missing parameter stops keepalived at once: 2, whatever else is wrong.
    assert_eq!(
        exit(&format!("{script}vrrp_instance X {{\n state\n}}\n")),
        2
    );
}

/// eth1 only: no eth0 for keepalived's default interface.
struct OnlyEth1;

impl Host for OnlyEth1 {
    fn interface(&self, name: &str) -> InterfaceKind {
        if name == "eth1" {
            InterfaceKind::Present
        } else {
            InterfaceKind::Missing
        }
    }
    fn user(&self, user: &str) -> Option<UserIds> {
        (user == "root").then_some(UserIds { uid: 0, gid: 0 })
    }
    fn group(&self, _group: &str) -> Option<u32> {
        None
    }
    fn file_exists(&self, _path: &std::path::Path) -> bool {
        true
    }
}

#[test]
fn after_keepalived_gives_up_findings_no_longer_count() {
    // No VRID in the first instance: keepalived stops, the second's problem is ours only.
    let text = format!(
        "vrrp_instance A {{\n interface eth0\n virtual_ipaddress {{ 10.0.0.9 }}\n}}\n{}",
        instance("state MASTER\npriority 100\nnopreempt")
    );
    let loaded = load(&text);
    let nopreempt = loaded
        .diagnostics
        .iter()
        .find(|d| d.keyword == "nopreempt")
        .expect("still reported");
    assert_eq!(nopreempt.keepalived, Verdict::Silent);
    assert_eq!(loaded.keepalived_exit_code(), 5);
    // A missing interface stops keepalived before its script checks: no violation.
    let text = format!(
        "vrrp_script s {{\n script /bin/true\n}}\n{}",
        instance("track_script { s }").replace("interface eth0", "interface eth9")
    );
    assert_eq!(exit(&text), 5);
}

#[test]
fn strict_mode_checks() {
    let strict = |body: &str| {
        load(&format!(
            "global_defs {{\n vrrp_strict\n}}\n{}",
            instance(body)
        ))
    };
    let loaded = strict("state MASTER\npriority 100");
    let i = &loaded.config.instances[0];
    assert_eq!(
        i.state,
        InitialState::Backup,
        "MASTER must be the address owner"
    );
    assert!(i.strict_mode && !i.accept);
    assert_eq!(loaded.keepalived_exit_code(), 5);
    let loaded = strict("state MASTER\npriority 255");
    assert!(loaded.config.instances[0].accept, "the owner accepts");
    assert_eq!(loaded.keepalived_exit_code(), 0);
    let loaded = strict("authentication {\n auth_type PASS\n auth_pass x\n}");
    assert_eq!(loaded.config.instances[0].authentication, None);
    assert_eq!(loaded.keepalived_exit_code(), 5);
    let loaded = strict("preempt_delay 10");
    assert_eq!(loaded.config.instances[0].preempt_delay, Duration::ZERO);
    assert_eq!(loaded.keepalived_exit_code(), 5);
    let loaded = strict("accept");
    assert!(
        !loaded.config.instances[0].accept,
        "accept with VRRPv2 breaks RFC 3768"
    );
    assert_eq!(loaded.keepalived_exit_code(), 5);
    // keepalived 2.2.7 decides unicast after its strict check, so it never fires.
    assert_eq!(
        strict("unicast_peer {\n 10.0.0.2\n}").keepalived_exit_code(),
        0
    );
    // An instance can opt out.
    assert_eq!(
        strict("state MASTER\npriority 100\nstrict_mode off").keepalived_exit_code(),
        0
    );
    assert!(!strict("strict_mode off").config.instances[0].strict_mode);
}

#[test]
fn ah_authentication() {
    let ah = "authentication {\n auth_type AH\n auth_pass secret\n}";
    let loaded = load(&instance(&format!("state MASTER\npriority 150\n{ah}")));
    assert_eq!(loaded.config.instances[0].state, InitialState::Backup);
    assert_eq!(loaded.keepalived_exit_code(), 5);
    assert!(messages(&loaded)
        .iter()
        .any(|m| m.contains("initial state MASTER is incompatible with AH authentication")));
    // The address owner may start as master.
    let loaded = load(&instance(&format!("state MASTER\npriority 255\n{ah}")));
    assert_eq!(loaded.config.instances[0].state, InitialState::Master);
    assert_eq!(loaded.keepalived_exit_code(), 0);
    // Not over IPv6.
    let v6 = instance(ah).replace("10.0.0.1", "fe80::1");
    let loaded = load(&v6);
    assert_eq!(loaded.config.instances[0].authentication, None);
    // Refused, with what to use instead: running it would leave both nodes master.
    let loaded = load(&instance(ah));
    assert!(loaded.has_errors());
    assert!(messages(&loaded).iter().any(|m| m
        .contains("IPsec AH authentication is not supported by xvrrpd")
        && m.contains("auth_type PASS")));
}

#[test]
fn garp_intervals_of_zero_are_rejected_as_keepalived_2_2_7_does() {
    for keyword in ["vrrp_garp_interval", "vrrp_gna_interval"] {
        let loaded = load(&format!("global_defs {{\n {keyword} 0\n}}\n"));
        assert_eq!(loaded.keepalived_exit_code(), 5, "{keyword}");
        let said = messages(&loaded).join("\n");
        assert!(
            said.contains("man page documents 0 as the default"),
            "{said}"
        );
        assert_eq!(
            load(&format!("global_defs {{\n {keyword} 0.5\n}}\n")).keepalived_exit_code(),
            0
        );
        // keepalived allows long pauses (it only logs that they are large).
        let loaded = load(&format!("global_defs {{\n {keyword} 5\n}}\n"));
        assert_eq!(loaded.keepalived_exit_code(), 0);
    }
    let loaded = load("global_defs {\n vrrp_garp_interval 0.25\n vrrp_gna_interval 3\n}\n");
    assert_eq!(
        loaded.config.global.vrrp_garp_interval,
        Duration::from_millis(250)
    );
    assert_eq!(
        loaded.config.global.vrrp_gna_interval,
        Duration::from_secs(3)
    );
}

#[test]
fn an_unknown_block_is_read_as_keepalived_reads_it() {
    // The misspelt block's '}' ends the instance: priority is then an unknown top-level
    // keyword, and the instance's own '}' too.
    let text = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddres {\n 10.0.0.1\n }\n priority 150\n}\n";
    let loaded = load(text);
    assert_eq!(loaded.config.instances[0].priority, 100);
    assert_eq!(
        messages(&loaded)
            .into_iter()
            .filter(|m| m.contains(": unknown keyword"))
            .collect::<Vec<_>>(),
        [
            "k.conf:4: virtual_ipaddres: unknown keyword",
            "k.conf:5: 10.0.0.1: unknown keyword",
            "k.conf:7: priority: unknown keyword",
            "k.conf:8: }: unknown keyword '}'",
        ]
    );
}

#[test]
fn smtp_keywords_are_never_accepted_silently() {
    let text = "global_defs {\n notification_email {\n a@example.com\n }\n notification_email_from b@example.com\n smtp_server 127.0.0.1\n smtp_connect_timeout 30\n smtp_helo_name lb1\n smtp_alert\n}\n";
    let loaded = load(text);
    let said: Vec<u32> = loaded.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(said, [2, 5, 6, 7, 8, 9]);
    // Said in full once, then pointing there.
    assert!(loaded.diagnostics[0]
        .message
        .contains("sends no alert mail"));
    assert!(loaded.diagnostics[1..]
        .iter()
        .all(|d| d.message == "alert mail is not sent (see k.conf:2)"));
    assert_eq!(loaded.keepalived_exit_code(), 0);
    // keepalived's own checks of them still count.
    assert_eq!(exit("global_defs {\n smtp_connect_timeout 0\n}\n"), 5);
    let empty = load("global_defs {\n notification_email {\n }\n}\n");
    assert_eq!(empty.keepalived_exit_code(), 5);
    let finding = empty
        .diagnostics
        .iter()
        .find(|d| d.message.contains("empty"))
        .unwrap();
    assert_eq!(finding.line, 3, "reported where the empty block ends");
    assert!(messages(&load(&instance("smtp_alert")))
        .iter()
        .any(|m| m.contains("sends no alert mail")));
}

#[test]
fn routes_and_rules_are_checked_as_keepalived_reads_them() {
    let routes = |line: &str| load(&format!("static_routes {{\n {line}\n}}\n"));
    assert_eq!(
        routes("10.1.0.0/16 via 10.0.0.1 dev eth0").keepalived_exit_code(),
        0
    );
    assert_eq!(
        routes("10.1.0.0/16 via 10.0.0.1 dev eth0 no_track").keepalived_exit_code(),
        0
    );
    // Without a device keepalived cannot track the route and says so.
    assert_eq!(routes("10.1.0.0/16 via 10.0.0.1").keepalived_exit_code(), 5);
    assert_eq!(
        routes("10.1.0.0/16 via 10.0.0.1 no_track").keepalived_exit_code(),
        0
    );
    // The deprecated forms.
    assert_eq!(
        routes("10.1.0.0/16 gw 10.0.0.1 dev eth0").keepalived_exit_code(),
        5
    );
    assert_eq!(
        routes("10.1.0.0/16 via 10.0.0.1 or 10.0.0.2 dev eth0").keepalived_exit_code(),
        5
    );
    assert_eq!(
        routes("10.1.0.0/16 via 10.0.0.1 dev eth9").keepalived_exit_code(),
        5
    );
    assert_eq!(
        routes("blackhole 10.66.0.0/16 dev eth0").keepalived_exit_code(),
        0
    );
    assert_eq!(
        routes("10.1.0.0/16 frobnicate dev eth0").keepalived_exit_code(),
        5
    );
    let rules = |line: &str| load(&format!("static_rules {{\n {line}\n}}\n"));
    assert_eq!(
        rules("from 10.0.0.0/8 table 100 priority 100").keepalived_exit_code(),
        0
    );
    assert_eq!(
        rules("from 10.0.0.0/8 table 100").keepalived_exit_code(),
        5,
        "no preference"
    );
    assert_eq!(
        rules("from 10.0.0.0/8 priority 100").keepalived_exit_code(),
        5,
        "no action"
    );
    // The same check inside an instance, where the route is installed (untracked:
    // without a dev keepalived does not track it).
    let loaded = load(&instance("virtual_routes {\n 0.0.0.0/0 via 10.0.0.254\n}"));
    assert_eq!(loaded.keepalived_exit_code(), 5);
    let routes = &loaded.config.instances[0].virtual_routes;
    assert_eq!(routes.len(), 1);
    assert!(routes[0].no_track);
    assert_eq!(routes[0].via, Some("10.0.0.254".parse().unwrap()));
    // An option xvrrpd cannot install is an error (the master would lack the route).
    let loaded = load(&instance(
        "virtual_routes {\n 10.1.0.0/16 via 10.0.0.254 dev eth0 mtu 1400\n}",
    ));
    assert!(loaded.has_errors());
    assert!(
        loaded.config.instances.is_empty() || loaded.config.instances[0].virtual_routes.is_empty()
    );
}

#[test]
fn static_addresses() {
    assert_eq!(exit("static_ipaddress {\n 10.9.9.9/24 dev eth1\n}\n"), 0);
    // No dev: keepalived falls back to eth0, which the fake host has.
    assert_eq!(exit("static_ipaddress {\n 10.9.9.9/24\n}\n"), 0);
    assert_eq!(exit("static_ipaddress {\n 10.9.9.300/24 dev eth1\n}\n"), 5);
    assert_eq!(
        exit("static_ipaddress {\n fd00::9/64 dev eth1 scope link\n}\n"),
        5
    );
}

#[test]
fn the_lvs_part_is_checked_as_keepalived_s_checker_reads_it() {
    let vs = |body: &str| {
        load(&format!(
            "virtual_server 10.0.0.100 80 {{\n delay_loop 6\n lb_algo rr\n lb_kind DR\n protocol TCP\n{body}\n}}\n"
        ))
    };
    let rs = "real_server 10.0.1.1 80 {\n weight 1\n TCP_CHECK {\n connect_timeout 3\n }\n}";
    assert_eq!(vs(rs).keepalived_exit_code(), 0);
    assert_eq!(vs("").keepalived_exit_code(), 5, "no real servers");
    assert_eq!(vs(&format!("quorum 0\n{rs}")).keepalived_exit_code(), 5);
    assert_eq!(
        vs(&format!("persistence_timeout 0\n{rs}")).keepalived_exit_code(),
        5
    );
    assert_eq!(
        vs(&format!("persistence_timeout 300\n{rs}")).keepalived_exit_code(),
        0
    );
    assert_eq!(
        vs(&rs.replace("10.0.1.1", "10.0.1.300")).keepalived_exit_code(),
        5
    );
    assert_eq!(
        vs(&rs.replace("weight 1", "weigth 1")).keepalived_exit_code(),
        5
    );
    assert_eq!(
        vs(&format!("{rs}\n{}", rs)).keepalived_exit_code(),
        5,
        "duplicate"
    );
    assert_eq!(
        vs(&format!("nat_mask 255.255.255.0\n{rs}")).keepalived_exit_code(),
        5
    );
    let loaded = load(&format!(
        "virtual_server 10.0.0.100 80 {{\n lb_algo loadbalance\n lb_kind DR\n protocol TCP\n{rs}\n}}\n"
    ));
    assert_eq!(loaded.keepalived_exit_code(), 5, "no such scheduler");
    let fwmark = load(&format!(
        "virtual_server fwmark 1 {{\n lb_algo rr\n lb_kind DR\n protocol TCP\n{}\n}}\n",
        rs.replace(" 80 {", " 0 {")
    ));
    assert!(messages(&fwmark)
        .iter()
        .any(|m| m.contains("protocol given for a fwmark service is ignored")));
    // A check script makes keepalived's checker report a security violation.
    let misc = vs(&rs.replace(
        "TCP_CHECK {\n connect_timeout 3\n }",
        "MISC_CHECK {\n misc_path \"/usr/local/bin/check 10.0.1.1\"\n }",
    ));
    assert_eq!(misc.keepalived_exit_code(), 6);
    let http = vs(&rs.replace(
        "TCP_CHECK {\n connect_timeout 3\n }",
        "HTTP_GET {\n connect_timeout 3\n }",
    ));
    assert_eq!(http.keepalived_exit_code(), 5, "HTTP_GET without a url");
}
