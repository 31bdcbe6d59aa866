//! Where the recorder runs on an interface, chosen so that it shares the
//! NIC with other XDP and tc programs ([`AttachMode`]), and how it reports
//! that place ([`Placement`]), read back from the kernel each time so it
//! stays true as others come and go.
//!
//! - `auto` (default): a libxdp dispatcher already on the XDP hook is
//!   joined (run priority [`RUN_PRIORITY`](super::libxdp::RUN_PRIORITY),
//!   before xdp-filter's 10 and libxdp's default 50); otherwise the XDP
//!   hook is left to others and the recorder runs at tc ingress: tcx
//!   (kernel ≥ 6.6, first in its list), else a clsact filter. Both still
//!   run before netfilter. `auto` never takes the XDP hook for itself and
//!   never detaches or replaces a program it did not load (a dispatcher it
//!   joins is swapped for one holding the same programs plus ours, as
//!   libxdp's protocol has every member do).
//! - `xdp`: the XDP hook only: joins a dispatcher, or puts one with only
//!   the recorder on a free hook (so libxdp tools can join later); on a
//!   kernel without program extensions, the program alone (native, else
//!   generic), which nobody can share. A hook held by another program is
//!   an error.
//! - `tc`: tc ingress only (tcx, else clsact).

use std::{fmt, str::FromStr};

use aya::programs::{tc::SchedClassifier, TcAttachType};
use serde::{Deserialize, Serialize};

use super::{
    libxdp,
    netlink::{self, NetlinkError},
    sys,
};

/// How the recorder may attach (`xvrrpd run --attach`, `global_defs { xvrrpd_attach }`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    #[default]
    Auto,
    Xdp,
    Tc,
}

impl AttachMode {
    pub const NAMES: [&'static str; 3] = ["auto", "xdp", "tc"];
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachMode::Auto => "auto",
            AttachMode::Xdp => "xdp",
            AttachMode::Tc => "tc",
        })
    }
}

impl FromStr for AttachMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(AttachMode::Auto),
            "xdp" => Ok(AttachMode::Xdp),
            "tc" => Ok(AttachMode::Tc),
            other => Err(format!(
                "unknown attach mode {other:?}: expected auto, xdp or tc"
            )),
        }
    }
}

/// The hook the recorder runs in on one interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "hook", rename_all = "lowercase")]
pub enum Hook {
    /// Alone on the XDP hook.
    Xdp { native: bool },
    /// A component of a libxdp dispatcher, at this run priority.
    Libxdp { native: bool, priority: u32 },
    /// tcx ingress (kernel ≥ 6.6).
    Tcx,
    /// A clsact ingress filter at this tc priority.
    Tc { priority: u16 },
}

/// Where the recorder runs on an interface, and among how many programs
/// of that hook (1-based; `None` where the kernel does not say).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub interface: String,
    pub hook: Hook,
    pub position: Option<(usize, usize)>,
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, x) if x != 11 => "st",
        (2, x) if x != 12 => "nd",
        (3, x) if x != 13 => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

impl Placement {
    /// The hook in a word or two, e.g. "tcx ingress".
    pub fn hook_words(&self) -> String {
        let mode = |native: bool| if native { "native" } else { "generic" };
        match &self.hook {
            Hook::Xdp { native } => format!("xdp {} (exclusive)", mode(*native)),
            Hook::Libxdp { native, priority } => {
                format!(
                    "xdp {} via libxdp dispatcher, priority {priority}",
                    mode(*native)
                )
            }
            Hook::Tcx => "tcx ingress".into(),
            Hook::Tc { priority } => format!("tc clsact ingress, filter priority {priority}"),
        }
    }

    /// e.g. "xdp native via libxdp dispatcher, priority 5, 1st of 2".
    pub fn describe(&self) -> String {
        match self.position {
            Some((_, 1)) if matches!(self.hook, Hook::Xdp { .. }) => self.hook_words(),
            Some((at, 1)) => format!("{}, {} (alone)", self.hook_words(), ordinal(at)),
            Some((at, of)) => format!("{}, {} of {of}", self.hook_words(), ordinal(at)),
            None => self.hook_words(),
        }
    }

    /// The hook kind as the status JSON names it.
    pub fn hook_name(&self) -> &'static str {
        match self.hook {
            Hook::Xdp { .. } => "xdp",
            Hook::Libxdp { .. } => "libxdp",
            Hook::Tcx => "tcx",
            Hook::Tc { .. } => "tc",
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Whether the program with `id` uses one of `map_ids` (is ours).
fn uses_maps(id: u32, map_ids: &[u32]) -> bool {
    sys::prog_fd_by_id(id)
        .and_then(|fd| sys::prog_info(std::os::fd::AsFd::as_fd(&fd)))
        .is_ok_and(|info| info.map_ids.iter().any(|m| map_ids.contains(m)))
}

/// Where our programs (those using `map_ids`) run on `interface`, read
/// from the kernel: the XDP hook, a libxdp dispatcher on it, tcx ingress,
/// clsact ingress. Normally one place; an interface can show more while
/// an earlier run's leftovers are still there.
pub fn find(interface: &str, ifindex: u32, map_ids: &[u32]) -> Vec<Placement> {
    let mut found = Vec::new();
    let place = |hook, position| Placement {
        interface: interface.to_owned(),
        hook,
        position,
    };
    if let Ok(state) = netlink::xdp_state(ifindex) {
        if let Some((id, native)) = state.program() {
            if uses_maps(id, map_ids) {
                found.push(place(Hook::Xdp { native }, Some((1, 1))));
            } else if let Ok(Some((joined, priority))) = libxdp::placement(ifindex, map_ids) {
                found.push(place(
                    Hook::Libxdp {
                        native: joined.native,
                        priority,
                    },
                    Some((joined.index + 1, joined.count)),
                ));
            }
        }
    }
    if let Ok((_, programs)) = SchedClassifier::query_tcx(interface, TcAttachType::Ingress) {
        let count = programs.len();
        if let Some(i) = programs.iter().position(|p| {
            p.map_ids()
                .ok()
                .flatten()
                .is_some_and(|ids| ids.iter().any(|m| map_ids.contains(m)))
        }) {
            found.push(place(Hook::Tcx, Some((i + 1, count))));
        }
    }
    if let Ok(filters) = netlink::ingress_filters(ifindex) {
        let count = filters.len();
        for (i, f) in filters.iter().enumerate() {
            if f.bpf_prog_id.is_some_and(|id| uses_maps(id, map_ids)) {
                found.push(place(
                    Hook::Tc {
                        priority: f.priority,
                    },
                    Some((i + 1, count)),
                ));
            }
        }
    }
    found
}

/// Our clsact ingress filters on `ifindex` other than `keep` (a priority):
/// what an earlier run, killed before it could remove them, left.
pub fn stale_tc_filters(
    ifindex: u32,
    map_ids: &[u32],
    keep: Option<u16>,
) -> Result<Vec<netlink::IngressFilter>, NetlinkError> {
    Ok(netlink::ingress_filters(ifindex)?
        .into_iter()
        .filter(|f| Some(f.priority) != keep)
        .filter(|f| f.bpf_prog_id.is_some_and(|id| uses_maps(id, map_ids)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        for name in AttachMode::NAMES {
            assert_eq!(name.parse::<AttachMode>().unwrap().to_string(), name);
        }
        let e = "native".parse::<AttachMode>().unwrap_err();
        assert!(e.contains("auto, xdp or tc"), "{e}");
        assert_eq!(AttachMode::default(), AttachMode::Auto);
    }

    #[test]
    fn placements_say_hook_and_position() {
        let p = |hook, position| Placement {
            interface: "eth0".into(),
            hook,
            position,
        };
        assert_eq!(
            p(
                Hook::Libxdp {
                    native: true,
                    priority: 5
                },
                Some((2, 3))
            )
            .to_string(),
            "xdp native via libxdp dispatcher, priority 5, 2nd of 3"
        );
        assert_eq!(
            p(Hook::Tcx, Some((1, 2))).to_string(),
            "tcx ingress, 1st of 2"
        );
        assert_eq!(
            p(Hook::Tcx, Some((1, 1))).to_string(),
            "tcx ingress, 1st (alone)"
        );
        assert_eq!(
            p(Hook::Tc { priority: 49152 }, Some((3, 3))).to_string(),
            "tc clsact ingress, filter priority 49152, 3rd of 3"
        );
        assert_eq!(
            p(Hook::Xdp { native: false }, Some((1, 1))).to_string(),
            "xdp generic (exclusive)"
        );
        assert_eq!(ordinal(11), "11th");
        assert_eq!(ordinal(22), "22nd");
    }
}
