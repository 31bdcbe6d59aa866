//! Captures real keepalived 2.2.7 adverts as pcap fixtures for the XDP tests.
//!
//! `cargo run -p tests --bin capture-fixtures` rewrites tests/fixtures/*.pcap:
//! keepalived runs in one namespace, tcpdump in the peer namespace.

use std::{path::Path, thread, time::Duration};

use anyhow::{bail, Result};
use tests::{keepalived, veth, Netns, TempDir};

struct Case {
    file: &'static str,
    filter: &'static str,
    config: &'static str,
}

const CASES: &[Case] = &[
    Case {
        file: "keepalived-v2-ipv4-pass.pcap",
        filter: "ip proto 112",
        config: r#"
vrrp_instance VI_V2 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret1
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"#,
    },
    Case {
        file: "keepalived-v3-ipv4.pcap",
        filter: "ip proto 112",
        config: r#"
global_defs {
    vrrp_version 3
}
vrrp_instance VI_V3 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 120
    advert_int 1
    virtual_ipaddress {
        192.0.2.101/24
        192.0.2.102/24
    }
}
"#,
    },
    Case {
        file: "keepalived-v3-ipv6.pcap",
        filter: "ip6 proto 112",
        config: r#"
vrrp_instance VI_V6 {
    state BACKUP
    interface eth0
    virtual_router_id 53
    priority 110
    advert_int 1
    virtual_ipaddress {
        2001:db8::100/64
    }
}
"#,
    },
];

fn main() -> Result<()> {
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for case in CASES {
        let tmp = TempDir::new("capture")?;
        let a = Netns::new()?;
        let b = Netns::new()?;
        veth(&a, "eth0", &b, "eth0")?;
        a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"])?;
        a.ip(&[
            "-6",
            "addr",
            "add",
            "2001:db8::1/64",
            "dev",
            "eth0",
            "nodad",
        ])?;
        b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"])?;
        // Give IPv6 link-local addresses time to leave tentative state.
        thread::sleep(Duration::from_secs(2));
        let pcap = out_dir.join(case.file);
        let mut dump = b.command("tcpdump");
        dump.args(["-i", "eth0", "-U", "-c", "3", "-w"])
            .arg(&pcap)
            .arg(case.filter);
        let mut tcpdump = b.spawn(dump, &tmp.path("tcpdump.log"))?;
        thread::sleep(Duration::from_millis(500));
        let _ka = keepalived(&a, &tmp, "ka", case.config)?;
        let done = tests::wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            matches!(tcpdump.child.try_wait(), Ok(Some(_)))
        });
        if !done {
            bail!(
                "no adverts captured for {}: {}",
                case.file,
                tcpdump.log_text()
            );
        }
        println!("captured {}", pcap.display());
    }
    Ok(())
}
