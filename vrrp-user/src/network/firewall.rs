//! Accept mode: keepalived's nftables rules that drop traffic to (and from)
//! the VIPs of an instance without accept mode while it is master (RFC 5798
//! §6.4.3: a master not in accept mode does not accept packets addressed to
//! the VIPs it does not own).
//!
//! As keepalived with its default `nftables` firewall: one table per family
//! (`ip keepalived`, `ip6 keepalived`, or the `nftables` keyword's name), a set
//! `vips`, an input chain dropping `daddr @vips` and an output chain dropping
//! `saddr @vips`, at priority `nftables_priority` (-1). IPv6 lets neighbour
//! discovery through so the VIPs stay resolvable. The table is set up on first
//! use (any table of that name left by an earlier run is replaced), VIPs are
//! added to the set when their instance becomes master and removed when it
//! leaves, and the tables are deleted at stop.
//!
//! The rules go through `nft -f -` (nftables is a dependency of the package):
//! batches are atomic, and nothing here is on the advert path.

use std::{net::IpAddr, process::Stdio};

use thiserror::Error;
use tokio::io::AsyncWriteExt;

use super::Family;

#[derive(Debug, Error)]
pub enum FirewallError {
    #[error("running nft: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft -f - ({what}): {stderr}")]
    Nft { what: String, stderr: String },
}

/// The drop rules of one daemon.
#[derive(Debug)]
pub struct Firewall {
    table: String,
    priority: i32,
    /// Tables set up so far (IPv4, IPv6).
    ready: [bool; 2],
}

fn slot(family: Family) -> usize {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

fn nft_family(family: Family) -> &'static str {
    match family {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    }
}

impl Firewall {
    pub fn new(table: &str, priority: i32) -> Self {
        Firewall {
            table: table.to_owned(),
            priority,
            ready: [false; 2],
        }
    }

    /// The script that (re)creates the table of `family`.
    fn setup_script(&self, family: Family) -> String {
        let (fam, table, prio) = (nft_family(family), &self.table, self.priority);
        let (addr, kind, nd) = match family {
            Family::V4 => ("ip", "ipv4_addr", ""),
            Family::V6 => (
                "ip6",
                "ipv6_addr",
                "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept; ",
            ),
        };
        // `add` then `delete` removes a table left by an earlier run without
        // failing when there is none.
        format!(
            "add table {fam} {table}\n\
             delete table {fam} {table}\n\
             table {fam} {table} {{\n\
             \tset vips {{ type {kind}; }}\n\
             \tchain in {{ type filter hook input priority {prio}; policy accept; {nd}{addr} daddr @vips drop; }}\n\
             \tchain out {{ type filter hook output priority {prio}; policy accept; {nd}{addr} saddr @vips drop; }}\n\
             }}\n"
        )
    }

    /// Drops traffic to and from `addrs` from now on.
    pub async fn add(&mut self, addrs: &[IpAddr]) -> Result<(), FirewallError> {
        self.elements("add", addrs).await
    }

    /// Accepts traffic to and from `addrs` again; absent ones are fine.
    pub async fn remove(&mut self, addrs: &[IpAddr]) -> Result<(), FirewallError> {
        for family in [Family::V4, Family::V6] {
            if !self.ready[slot(family)] {
                continue;
            }
            // One at a time: deleting an absent element fails the whole batch.
            for addr in addrs.iter().filter(|a| Family::of(a) == family) {
                let script = format!(
                    "delete element {} {} vips {{ {addr} }}\n",
                    nft_family(family),
                    self.table
                );
                match nft(&script, "removing a VIP").await {
                    Err(FirewallError::Nft { stderr, .. })
                        if stderr.contains("No such file or directory") => {}
                    other => other?,
                }
            }
        }
        Ok(())
    }

    async fn elements(&mut self, verb: &str, addrs: &[IpAddr]) -> Result<(), FirewallError> {
        for family in [Family::V4, Family::V6] {
            let list: Vec<String> = addrs
                .iter()
                .filter(|a| Family::of(a) == family)
                .map(|a| a.to_string())
                .collect();
            if list.is_empty() {
                continue;
            }
            let mut script = String::new();
            if !self.ready[slot(family)] {
                script.push_str(&self.setup_script(family));
            }
            script.push_str(&format!(
                "{verb} element {} {} vips {{ {} }}\n",
                nft_family(family),
                self.table,
                list.join(", ")
            ));
            nft(&script, "adding VIPs to the drop set").await?;
            self.ready[slot(family)] = true;
        }
        Ok(())
    }

    /// Deletes the tables this firewall set up (at stop, as keepalived does).
    pub async fn shutdown(&mut self) -> Result<(), FirewallError> {
        for family in [Family::V4, Family::V6] {
            if std::mem::take(&mut self.ready[slot(family)]) {
                let script = format!("delete table {} {}\n", nft_family(family), self.table);
                nft(&script, "deleting the table").await?;
            }
        }
        Ok(())
    }
}

/// Runs `nft -f -` with `script` on stdin.
async fn nft(script: &str, what: &str) -> Result<(), FirewallError> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(FirewallError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(FirewallError::Spawn)?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(FirewallError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FirewallError::Nft {
            what: what.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::testns::TestNs;

    #[test]
    fn drop_set_follows_the_vips_and_the_table_goes_at_stop() {
        crate::testing::require_root!();
        let ns = TestNs::new();
        let listed = |ns: &TestNs| {
            let out = std::process::Command::new("ip")
                .args(["netns", "exec", &ns.name, "nft", "list", "ruleset"])
                .output()
                .expect("nft list ruleset");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        ns.run(|| async {
            let mut fw = Firewall::new("keepalived", -1);
            let v4: IpAddr = "192.0.2.100".parse().unwrap();
            let v6: IpAddr = "2001:db8::100".parse().unwrap();
            fw.add(&[v4, v6]).await.unwrap();
            fw.add(&[v4]).await.unwrap();
            fw.remove(&[v6]).await.unwrap();
            fw.remove(&[v6]).await.unwrap();
        });
        let rules = listed(&ns);
        assert!(rules.contains("table ip keepalived"), "{rules}");
        assert!(rules.contains("ip daddr @vips drop"), "{rules}");
        assert!(rules.contains("ip saddr @vips drop"), "{rules}");
        assert!(rules.contains("192.0.2.100"), "{rules}");
        assert!(rules.contains("table ip6 keepalived"), "{rules}");
        assert!(!rules.contains("2001:db8::100"), "{rules}");
        assert!(rules.contains("nd-neighbor-solicit"), "{rules}");
        ns.run(|| async {
            let mut fw = Firewall::new("keepalived", -1);
            // A table left by an earlier run is replaced, not added to.
            fw.add(&["192.0.2.7".parse().unwrap()]).await.unwrap();
            let rules = String::from_utf8_lossy(
                &std::process::Command::new("nft")
                    .args(["list", "set", "ip", "keepalived", "vips"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .into_owned();
            assert!(
                rules.contains("192.0.2.7") && !rules.contains("192.0.2.100"),
                "{rules}"
            );
            fw.shutdown().await.unwrap();
        });
        let rules = listed(&ns);
        assert!(!rules.contains("table ip keepalived"), "{rules}");
    }
}
