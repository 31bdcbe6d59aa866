//! VRRP scenarios on a bridged segment: nodes running xvrrpd or keepalived,
//! and an observer that counts gratuitous ARPs.

use std::{collections::BTreeMap, fs, process::Command, time::Duration};

use anyhow::{Context, Result};

use crate::{keepalived_command, Netns, Proc, Segment, TempDir};

pub const VIP: &str = "192.0.2.100";

/// Which daemon runs on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    Xvrrpd,
    Keepalived,
}

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Xvrrpd => "xvrrpd",
            Impl::Keepalived => "keepalived",
        }
    }
}

/// One host on the segment, with `eth0` at 192.0.2.<n>/24.
pub struct Node {
    pub ns: Netns,
    pub addr: String,
    /// Its port on the segment's bridge (in `Segment::hub`).
    pub port: String,
}

impl Node {
    /// The MAC address of its eth0.
    pub fn mac(&self) -> Result<[u8; 6]> {
        let json = self.ns.ip(&["-j", "link", "show", "dev", "eth0"])?;
        let v: serde_json::Value = serde_json::from_str(&json)?;
        let text = v[0]["address"]
            .as_str()
            .with_context(|| format!("no address in {json}"))?;
        let mut mac = [0u8; 6];
        let bytes: Vec<&str> = text.split(':').collect();
        anyhow::ensure!(bytes.len() == 6, "odd MAC {text:?}");
        for (b, s) in mac.iter_mut().zip(bytes) {
            *b = u8::from_str_radix(s, 16).with_context(|| format!("odd MAC {text:?}"))?;
        }
        Ok(mac)
    }
}

pub struct Lab {
    pub segment: Segment,
    pub nodes: Vec<Node>,
    pub observer: Node,
    pub dir: TempDir,
}

impl Lab {
    pub fn new(nodes: usize) -> Result<Self> {
        let mut segment = Segment::new()?;
        let list = (1..=nodes)
            .map(|n| host(&mut segment, n))
            .collect::<Result<Vec<_>>>()?;
        let observer = host(&mut segment, 200)?;
        Ok(Self {
            segment,
            nodes: list,
            observer,
            dir: TempDir::new("lab")?,
        })
    }

    /// One more host on the segment, at 192.0.2.<n>, that runs no daemon
    /// (e.g. a third party forging adverts); removed when dropped.
    pub fn add_host(&mut self, n: usize) -> Result<Node> {
        host(&mut self.segment, n)
    }

    /// Starts `xvrrpd run` on node `i` with `config`.
    pub fn xvrrpd(&self, i: usize, config: &str) -> Result<Proc> {
        self.start_on(i, Impl::Xvrrpd, config, None)
    }

    /// Starts keepalived on node `i` with `config`.
    pub fn keepalived(&self, i: usize, config: &str) -> Result<Proc> {
        self.start_on(i, Impl::Keepalived, config, None)
    }

    /// Starts `imp` on node `i` with `config`.
    pub fn start(&self, i: usize, imp: Impl, config: &str) -> Result<Proc> {
        self.start_on(i, imp, config, None)
    }

    /// Starts `imp` on node `i` with `config`, and with `cpus` only on those
    /// CPUs: the affinity is set before exec, so every thread and child of
    /// the daemon inherits it.
    pub fn start_on(
        &self,
        i: usize,
        imp: Impl,
        config: &str,
        cpus: Option<&[usize]>,
    ) -> Result<Proc> {
        let ns = &self.nodes[i].ns;
        let (mut cmd, log) = match imp {
            Impl::Xvrrpd => {
                let conf = self.dir.path(&format!("xvrrpd{i}.conf"));
                fs::write(&conf, config)?;
                let mut cmd = ns.command(crate::xvrrpd_bin());
                cmd.arg("run")
                    .arg("-f")
                    .arg(&conf)
                    // XVRRPD_LAB_LOG=debug to see what the daemons ignore and why.
                    .env(
                        "XVRRPD_LOG",
                        std::env::var("XVRRPD_LAB_LOG").unwrap_or_else(|_| "info".into()),
                    );
                (cmd, self.dir.path(&format!("xvrrpd{i}.log")))
            }
            Impl::Keepalived => {
                let tag = format!("keepalived{i}");
                let cmd = keepalived_command(ns, &self.dir, &tag, config)?;
                (cmd, self.dir.path(&format!("{tag}.log")))
            }
        };
        if let Some(cpus) = cpus {
            crate::load::pin_to_cpus(&mut cmd, cpus);
        }
        ns.spawn(cmd, &log)
    }

    /// Which nodes hold `addr` on eth0.
    pub fn holders(&self, addr: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].ns.has_address("eth0", addr))
            .collect()
    }

    /// Waits until exactly node `i` holds the VIP.
    pub fn wait_holder(&self, i: usize, timeout: Duration) -> bool {
        crate::wait_until(timeout, Duration::from_millis(10), || {
            self.holders(VIP) == vec![i]
        })
    }

    /// Checks every 100 ms for `d` that exactly node `holder` holds the VIP.
    pub fn steady(&self, holder: usize, d: Duration) -> Result<(), String> {
        for _ in 0..d.as_millis() / 100 {
            let h = self.holders(VIP);
            if h != vec![holder] {
                return Err(format!("split brain or lost VIP: holders {h:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Instance lines for a unicast pair: node `me` advertises to node `peer`.
    pub fn unicast(&self, me: usize, peer: usize) -> String {
        format!(
            "unicast_src_ip {}\n    unicast_peer {{\n        {}\n    }}",
            self.nodes[me].addr, self.nodes[peer].addr
        )
    }

    /// `xvrrpd peers --json` as node `i`'s kernel recorded it.
    pub fn peers_json(&self, i: usize) -> Result<serde_json::Value> {
        peers_json(&self.nodes[i].ns)
    }

    /// Starts tcpdump on the observer, counting gratuitous ARPs for the VIP.
    pub fn watch_garp(&self) -> Result<Proc> {
        let mut cmd = self.observer.ns.command("tcpdump");
        cmd.args([
            "-i",
            "eth0",
            "-n",
            "-l",
            "-U",
            "arp",
            "and",
            "arp[24:4]",
            "=",
            "0xc0000264",
        ]);
        let p = self.observer.ns.spawn(cmd, &self.dir.path("garp.log"))?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(p)
    }
}

/// The recorder's counters in a namespace (`xvrrpd peers --json`), by name.
pub fn counters(ns: &Netns) -> Result<BTreeMap<String, u64>> {
    let json = peers_json(ns)?;
    let map = json["counters"]
        .as_object()
        .with_context(|| format!("no counters in {json}"))?;
    Ok(map
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect())
}

/// `after - before` per counter, for the counters that moved.
pub fn counter_deltas(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(*before.get(k).unwrap_or(&0))))
        .filter(|(_, d)| *d != 0)
        .collect()
}

/// What an xvrrpd of namespace `ns` leaves on the host once it is gone, if
/// anything: its pin directory, its control socket, state and handover
/// files, and any process still in the namespace.
pub fn leftovers(ns: &Netns) -> Vec<String> {
    let mut left = Vec::new();
    let pins = xvrrpd::bpf::pin::root().join(&ns.name);
    let held = xvrrpd::daemon::held::Paths::for_pin_dir(&pins);
    let socket = xvrrpd::ops::control::default_path(&pins);
    for path in [pins, held.state, held.handover, socket] {
        if path.exists() {
            left.push(path.display().to_string());
        }
    }
    if let Ok(pids) = crate::output(Command::new("ip").args(["netns", "pids", &ns.name])) {
        for pid in pids.split_whitespace() {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            left.push(format!("process {pid} ({})", comm.trim()));
        }
    }
    left
}

impl Lab {
    /// Ends a case: stops `daemons` with SIGTERM (as systemd would), checks
    /// that nothing is left in any namespace (see [`leftovers`]), removes the
    /// lab and the `extra` hosts and checks that their namespaces are gone.
    pub fn finish(self, daemons: Vec<Proc>, extra: Vec<Node>) -> Result<()> {
        for mut d in daemons {
            if d.terminate(Duration::from_secs(5)).is_none() {
                anyhow::bail!(
                    "{} did not stop on SIGTERM:\n{}",
                    d.log.display(),
                    d.log_text()
                );
            }
        }
        let mut left = Vec::new();
        let hosts = || self.nodes.iter().chain([&self.observer]).chain(&extra);
        for node in hosts() {
            left.extend(leftovers(&node.ns));
        }
        let names: Vec<String> = hosts()
            .map(|n| n.ns.name.clone())
            .chain([self.segment.hub.name.clone()])
            .collect();
        drop(extra);
        drop(self);
        let listed = crate::output(Command::new("ip").args(["netns", "list"]))?;
        for name in names {
            if listed.split_whitespace().any(|n| n == name) {
                left.push(format!("namespace {name}"));
            }
        }
        anyhow::ensure!(left.is_empty(), "left behind: {left:?}");
        Ok(())
    }
}

/// A host on `segment` with eth0 at 192.0.2.<n>/24.
fn host(segment: &mut Segment, n: usize) -> Result<Node> {
    let ns = Netns::new()?;
    let port = segment.attach(&ns, "eth0")?;
    let addr = format!("192.0.2.{n}");
    ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
    Ok(Node { ns, addr, port })
}

/// `xvrrpd peers --json` in a namespace.
pub fn peers_json(ns: &Netns) -> Result<serde_json::Value> {
    let out = crate::output(ns.command(crate::xvrrpd_bin()).args(["peers", "--json"]))?;
    Ok(serde_json::from_str(&out)?)
}

/// A keepalived-style config for one instance on eth0 with the lab VIP
/// (VRRPv2, advert_int 1, PASS authentication).
pub fn instance_config(priority: u8, extra: &str) -> String {
    instance_config_with(priority, "1", 2, extra)
}

/// The same with another advert_int and version (v3 carries no authentication).
pub fn instance_config_with(priority: u8, advert_int: &str, version: u8, extra: &str) -> String {
    let auth = if version == 2 {
        "authentication {\n        auth_type PASS\n        auth_pass secret1\n    }"
    } else {
        "version 3"
    };
    format!(
        r#"
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int {advert_int}
    {auth}
    virtual_ipaddress {{
        {VIP}/24
    }}
    {extra}
}}
"#
    )
}

/// Counts lines of `tcpdump` output that are ARP packets for the VIP.
pub fn garp_count(watch: &Proc) -> usize {
    watch.log_text().lines().filter(|l| l.contains(VIP)).count()
}

/// Runs nft commands in a namespace, one `nft` call each.
pub fn nft(ns: &Netns, commands: &[&str]) -> Result<()> {
    for c in commands {
        crate::run(ns.command("nft").arg(c))?;
    }
    Ok(())
}

pub fn sigstop(p: &Proc) {
    p.signal(libc::SIGSTOP);
}

pub fn sigcont(p: &Proc) {
    p.signal(libc::SIGCONT);
}
