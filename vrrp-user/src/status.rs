//! What the kernel recorded, for people: `xvrrpd peers` as a table or JSON,
//! with where the recorder runs on each interface.

use std::{fmt::Write as _, net::IpAddr};

use serde::Serialize;
use vrrp_common::{Counters, PeerKey, PeerRecord, COUNTER_NAMES};

use crate::{bpf::Placement, time::Mono};

/// One recorded peer, ready to print.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PeerView {
    pub interface: String,
    pub ifindex: u32,
    pub vrid: u8,
    pub source: IpAddr,
    pub version: u8,
    pub priority: u8,
    /// Advertised interval in milliseconds.
    pub interval_ms: u32,
    /// Time since the kernel saw the latest advert, in milliseconds.
    pub age_ms: u64,
    pub adverts: u64,
    pub ttl: u8,
    pub multicast: bool,
    pub auth_type: u8,
}

/// Interface name for an index in the current network namespace, or `if<N>`.
pub fn interface_name(ifindex: u32) -> String {
    nix::net::if_::if_indextoname(ifindex).map_or_else(
        |_| format!("if{ifindex}"),
        |name| name.to_string_lossy().into_owned(),
    )
}

pub fn peer_views(peers: &[(PeerKey, PeerRecord)], now: Mono) -> Vec<PeerView> {
    let mut views: Vec<PeerView> = peers
        .iter()
        .map(|(k, r)| PeerView {
            interface: interface_name(k.ifindex),
            ifindex: k.ifindex,
            vrid: k.vrid,
            source: k.source(),
            version: r.version,
            priority: r.priority,
            interval_ms: r.interval_cs as u32 * 10,
            age_ms: now.saturating_since(Mono(r.last_ns)).as_millis() as u64,
            adverts: r.adverts,
            ttl: r.ttl,
            multicast: r.multicast != 0,
            auth_type: r.auth_type,
        })
        .collect();
    views.sort_by_key(|v| (v.ifindex, v.vrid, v.source));
    views
}

/// Where the recorder runs, one line per interface.
fn render_placements(out: &mut String, placements: &[Placement]) {
    if placements.is_empty() {
        let _ = writeln!(out, "recorder: not attached to any interface");
    }
    for p in placements {
        let _ = writeln!(out, "recorder on {}: {}", p.interface, p.describe());
    }
    out.push('\n');
}

pub fn render_table(views: &[PeerView], counters: &Counters, placements: &[Placement]) -> String {
    let mut out = String::new();
    render_placements(&mut out, placements);
    let _ = writeln!(
        out,
        "{:<12} {:>4} {:<28} {:>3} {:>4} {:>9} {:>10} {:>9}",
        "INTERFACE", "VRID", "SOURCE", "VER", "PRIO", "INTERVAL", "AGE", "ADVERTS"
    );
    for v in views {
        let _ = writeln!(
            out,
            "{:<12} {:>4} {:<28} {:>3} {:>4} {:>7}ms {:>8}ms {:>9}",
            v.interface,
            v.vrid,
            v.source.to_string(),
            v.version,
            v.priority,
            v.interval_ms,
            v.age_ms,
            v.adverts
        );
    }
    if views.is_empty() {
        let _ = writeln!(out, "(no adverts recorded)");
    }
    let _ = writeln!(out, "\ncounters:");
    for (name, value) in COUNTER_NAMES.iter().zip(counters.as_array()) {
        let _ = writeln!(out, "  {name:<18} {value}");
    }
    out
}

/// The JSON form: `{"attachments": [...], "peers": [...], "counters": {...}}`.
pub fn render_json(
    views: &[PeerView],
    counters: &Counters,
    placements: &[Placement],
) -> serde_json::Value {
    let counters: serde_json::Map<String, serde_json::Value> = COUNTER_NAMES
        .iter()
        .zip(counters.as_array())
        .map(|(n, v)| (n.to_string(), v.into()))
        .collect();
    let attachments: Vec<crate::report::AttachmentReport> =
        placements.iter().map(Into::into).collect();
    serde_json::json!({ "attachments": attachments, "peers": views, "counters": counters })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_decode_addresses_and_ages() {
        let key = PeerKey::for_source(
            vrrp_common::InstanceKey::new(1, vrrp_common::FAMILY_IPV4, 51),
            "192.0.2.1".parse().unwrap(),
        )
        .unwrap();
        let rec = PeerRecord {
            last_ns: 1_000_000_000,
            priority: 150,
            interval_cs: 100,
            version: 2,
            adverts: 7,
            ..Default::default()
        };
        let views = peer_views(&[(key, rec)], Mono(1_250_000_000));
        assert_eq!(views[0].source, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(views[0].age_ms, 250);
        assert_eq!(views[0].interval_ms, 1000);
        assert_eq!(views[0].interface, "lo");
        let placed = [Placement {
            interface: "eth0".into(),
            hook: crate::bpf::Hook::Tcx,
            position: Some((2, 2)),
        }];
        let table = render_table(&views, &Counters::default(), &placed);
        assert!(
            table.contains("192.0.2.1") && table.contains("150"),
            "{table}"
        );
        assert!(
            table.contains("recorder on eth0: tcx ingress, 2nd of 2"),
            "{table}"
        );
        let json = render_json(
            &views,
            &Counters {
                accepted: 3,
                ..Default::default()
            },
            &placed,
        );
        assert_eq!(json["counters"]["accepted"], 3);
        assert_eq!(json["peers"][0]["priority"], 150);
        assert_eq!(json["attachments"][0]["hook"], "tcx");
        assert_eq!(json["attachments"][0]["position"], 2);
        assert!(render_table(&[], &Counters::default(), &[]).contains("not attached"));
    }
}
