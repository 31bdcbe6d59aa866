//! `xvrrpd record`: the recorder alone, without the state machine.
//!
//! Attaches `vrrp_rx`, registers the given instances and logs each
//! significant advert the kernel queues, until SIGINT or SIGTERM; then
//! detaches and removes its pins, leaving nothing behind.

use std::{net::IpAddr, time::Duration};

use anyhow::{bail, Context, Result};
use clap::Args;
use tokio::signal::unix;
use tracing::{info, warn};
use vrrp_common::{
    event_kind, InstanceKey, PeerEvent, PeerKey, FAMILY_IPV4, FAMILY_IPV6, MAX_LOCAL_ADDRS,
};
use xvrrpd::{
    bpf::{Delivery, Recorder, XdpInstance},
    network::netlink,
    packet::{Auth, Family, Version},
    status,
};

use crate::PinArgs;

#[derive(Args)]
pub struct RecordArgs {
    /// Interface to attach to (repeatable).
    #[arg(short = 'i', long = "interface", required = true)]
    interfaces: Vec<String>,
    /// Where the recorder may attach: auto, xdp or tc (as `run --attach`).
    #[arg(long, default_value_t = xvrrpd::bpf::AttachMode::Auto)]
    attach: xvrrpd::bpf::AttachMode,
    /// VRID to record on every given interface (repeatable).
    #[arg(long = "vrid", required = true, value_parser = clap::value_parser!(u8).range(1..=255))]
    vrids: Vec<u8>,
    /// VRRP version of the instances.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    version: u8,
    /// Record IPv6 adverts (implies version 3).
    #[arg(long)]
    ipv6: bool,
    /// v2: our advert interval in seconds (adverts with another are dropped).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=255))]
    advert_int: u8,
    /// v2: PASS password (8 characters at most).
    #[arg(long)]
    auth_pass: Option<String>,
    /// Multicast group adverts are sent to (default 224.0.0.18 / ff02::12).
    #[arg(long)]
    group: Option<IpAddr>,
    /// The instances are unicast (multicast adverts are dropped).
    #[arg(long)]
    unicast: bool,
    /// With --unicast: accept only these sources (repeatable).
    #[arg(long = "peer")]
    peers: Vec<IpAddr>,
    /// Our own addresses (repeatable; default: the interface's): unicast
    /// adverts must be sent to one, adverts from one are dropped.
    #[arg(long = "local")]
    local: Vec<IpAddr>,
    /// IPv6 multicast: also accept adverts from a source that is not link-local.
    #[arg(long)]
    any_source: bool,
    /// v3 over IPv4: checksum without the pseudo-header.
    #[arg(long)]
    checksum_as_v2: bool,
    #[command(flatten)]
    pin: PinArgs,
}

impl RecordArgs {
    fn family(&self) -> Family {
        if self.ipv6 {
            Family::V6
        } else {
            Family::V4
        }
    }

    /// The instance for one interface, whose own addresses are `local`.
    fn instance(&self, local: Vec<IpAddr>) -> Result<XdpInstance> {
        let family = self.family();
        let version = if self.ipv6 || self.version == 3 {
            Version::V3
        } else {
            Version::V2
        };
        let auth = match &self.auth_pass {
            None => Auth::None,
            Some(_) if version != Version::V2 => {
                bail!("--auth-pass: authentication exists only in VRRP version 2")
            }
            Some(pass) if pass.len() > 8 => {
                bail!("--auth-pass: {} bytes, PASS allows 8 at most", pass.len())
            }
            Some(pass) => Auth::password(pass.as_bytes()),
        };
        let advert_int = Duration::from_secs(u64::from(self.advert_int));
        let mut instance = if self.unicast {
            XdpInstance::unicast(
                version,
                family,
                self.peers.clone(),
                !self.peers.is_empty(),
                advert_int,
                auth,
                local,
            )
        } else {
            let group = self.group.unwrap_or(family.multicast_group());
            XdpInstance::multicast(version, group, advert_int, auth, local)
        };
        if let Delivery::Multicast { group } = &instance.delivery {
            if Family::of(group) != family {
                bail!("--group {group}: not an {family} address");
            }
        }
        instance.v3_checksum_as_v2 = self.checksum_as_v2;
        instance.link_local_source &= !self.any_source;
        instance.config().context("the instance")?;
        Ok(instance)
    }

    /// `--local`, or the interface's addresses of the family.
    fn local_addresses(&self, interface: &str, ifindex: u32) -> Result<Vec<IpAddr>> {
        if !self.local.is_empty() {
            return Ok(self.local.clone());
        }
        let family = self.family();
        let mut local: Vec<IpAddr> = netlink::addresses_blocking(ifindex)
            .with_context(|| format!("interface {interface}: reading its addresses"))?
            .into_iter()
            .map(|a| a.addr)
            .filter(|a| Family::of(a) == family)
            .collect();
        if local.len() > MAX_LOCAL_ADDRS {
            warn!(%interface, count = local.len(), "only the first {MAX_LOCAL_ADDRS} addresses count as ours");
            local.truncate(MAX_LOCAL_ADDRS);
        }
        Ok(local)
    }
}

pub fn run(args: RecordArgs) -> Result<()> {
    let map_family = if args.ipv6 { FAMILY_IPV6 } else { FAMILY_IPV4 };
    // Bad arguments fail before anything is loaded; the interfaces' own
    // addresses are read later, so an unspecified one stands in for them.
    let stand_in = match args.family() {
        Family::V4 => IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
    };
    args.instance(if args.local.is_empty() {
        vec![stand_in]
    } else {
        args.local.clone()
    })?;
    let pin_dir = args.pin.resolve()?;
    let mut recorder = Recorder::load(&pin_dir)?;
    info!(pin_dir = %pin_dir.display(), "maps pinned");
    let result = (|| {
        for interface in &args.interfaces {
            let ifindex = nix::net::if_::if_nametoindex(interface.as_str())
                .with_context(|| format!("interface {interface}: if_nametoindex"))?;
            let instance = args
                .instance(args.local_addresses(interface, ifindex)?)
                .with_context(|| format!("interface {interface}"))?;
            recorder.attach(interface, args.attach)?;
            for &vrid in &args.vrids {
                let key = InstanceKey::new(ifindex, map_family, vrid);
                for peer in instance.unicast_peers() {
                    peer_key(key, *peer)?;
                }
                recorder.maps.register(key, &instance)?;
                info!(%interface, vrid, version = instance.version.number(), local = ?instance.local, "instance registered");
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        runtime.block_on(log_events(&mut recorder))
    })();
    recorder.shutdown();
    result
}

fn peer_key(instance: InstanceKey, addr: IpAddr) -> Result<PeerKey> {
    PeerKey::for_source(instance, addr)
        .with_context(|| format!("--peer {addr}: family differs from the instance's"))
}

async fn log_events(recorder: &mut Recorder) -> Result<()> {
    let mut ring = recorder
        .take_events_async()
        .context("registering the event ring buffer with epoll")?;
    let mut term =
        unix::signal(unix::SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int =
        unix::signal(unix::SignalKind::interrupt()).context("installing SIGINT handler")?;
    info!("recording; SIGINT or SIGTERM to stop");
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: detaching"); return Ok(()); }
            _ = int.recv() => { info!("SIGINT: detaching"); return Ok(()); }
            guard = ring.readable_mut() => {
                let mut guard = guard.context("polling the event ring buffer")?;
                while let Some(item) = guard.get_inner_mut().next() {
                    if item.len() >= std::mem::size_of::<PeerEvent>() {
                        let ev: PeerEvent = bytemuck::pod_read_unaligned(&item[..std::mem::size_of::<PeerEvent>()]);
                        log_event(&ev);
                    }
                }
                guard.clear_ready();
            }
        }
    }
}

fn log_event(ev: &PeerEvent) {
    let kind = match ev.kind {
        event_kind::NEW_PEER => "new peer",
        event_kind::PRIORITY_CHANGED => "priority changed",
        event_kind::PRIORITY_ZERO => "priority 0 (peer resigned)",
        event_kind::INTERVAL_CHANGED => "interval changed",
        event_kind::WHILE_MASTER => "advert while master",
        event_kind::CATCH_UP => "events were held back",
        _ => "unknown event",
    };
    info!(
        interface = %status::interface_name(ev.key.ifindex),
        vrid = ev.key.vrid,
        source = %ev.key.source(),
        priority = ev.priority,
        previous_priority = ev.previous_priority,
        interval_ms = ev.interval_cs as u32 * 10,
        suppressed_before = ev.suppressed,
        "{kind}"
    );
}
