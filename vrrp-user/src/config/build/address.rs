//! Addresses: `virtual_ipaddress` entries (`IP[/len] [brd X] [dev IF] [label L] [scope S]`).

use std::net::IpAddr;

use super::Builder;
use crate::config::model::*;
use crate::config::syntax::Node;

const KNOWN_SCOPES: &[&str] = &["global", "site", "link", "host", "nowhere"];
/// VIP options keepalived accepts that do not change how xvrrpd adds the address.
const VIP_FLAGS: &[&str] = &[
    "no_track",
    "home",
    "nodad",
    "noprefixroute",
    "autojoin",
    "mngtmpaddr",
];
const VIP_VALUE_OPTIONS: &[&str] = &["preferred_lft", "track_group"];

impl Builder<'_> {
    pub(super) fn vip(&mut self, entry: &Node) -> Option<VirtualIp> {
        let text = &entry.keyword.text;
        let (addr_text, len_text) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text.as_str(), None),
        };
        let Ok(address) = addr_text.parse::<IpAddr>() else {
            self.d.warn(
                entry.at(),
                "virtual_ipaddress",
                format!("invalid IP address '{text}'; skipped"),
            );
            return None;
        };
        let max = host_prefix_len(Family::of(&address));
        let prefix_len = match len_text.map(str::parse::<u8>) {
            None => max,
            Some(Ok(len)) if len <= max => len,
            Some(_) => {
                self.d.warn(
                    entry.at(),
                    "virtual_ipaddress",
                    format!("invalid prefix length in '{text}'; using /{max}"),
                );
                max
            }
        };
        let mut vip = VirtualIp {
            address,
            prefix_len,
            broadcast: None,
            dev: None,
            label: None,
            scope: None,
        };
        let mut args = entry.args.iter();
        while let Some(option) = args.next() {
            let name = option.text.as_str();
            if VIP_FLAGS.contains(&name) {
                continue;
            }
            let is_value_option = matches!(name, "brd" | "broadcast" | "dev" | "label" | "scope")
                || VIP_VALUE_OPTIONS.contains(&name);
            if !is_value_option {
                self.d.warn(
                    &option.at,
                    "virtual_ipaddress",
                    format!("unknown option '{name}' for {text}; ignored"),
                );
                continue;
            }
            let Some(value) = args.next() else {
                self.d.warn(
                    &option.at,
                    "virtual_ipaddress",
                    format!("'{name}' needs a value"),
                );
                continue;
            };
            match name {
                "brd" | "broadcast" => match value.text.parse::<IpAddr>() {
                    Ok(b) => vip.broadcast = Some(b),
                    // `brd +`/`brd -` ask the kernel to compute or omit it.
                    Err(_) if matches!(value.text.as_str(), "+" | "-") => {}
                    Err(_) => self.d.warn(
                        &value.at,
                        "virtual_ipaddress",
                        format!("invalid broadcast address '{}'", value.text),
                    ),
                },
                "dev" => {
                    self.check_interface(&value.at, "virtual_ipaddress", &value.text);
                    vip.dev = Some(value.text.clone());
                }
                "label" => vip.label = Some(value.text.clone()),
                "scope" => {
                    let known = KNOWN_SCOPES.contains(&value.text.as_str())
                        || value.text.parse::<u8>().is_ok();
                    if known {
                        vip.scope = Some(value.text.clone());
                    } else {
                        self.d.warn(
                            &value.at,
                            "virtual_ipaddress",
                            format!("invalid scope '{}' for {text}; ignored", value.text),
                        );
                    }
                }
                _ => {}
            }
        }
        Some(vip)
    }
}
