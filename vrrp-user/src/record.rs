//! `xvrrpd record`: the recorder alone, without the state machine.
//!
//! Attaches `vrrp_rx`, registers the given instances and logs each
//! significant advert the kernel queues, until SIGINT or SIGTERM; then
//! detaches and removes its pins, leaving nothing behind.

use std::net::IpAddr;

use anyhow::{bail, Context, Result};
use clap::Args;
use tokio::signal::unix;
use tracing::info;
use vrrp_common::{
    event_kind, instance_flags, InstanceConfig, InstanceKey, PeerEvent, PeerKey, FAMILY_IPV4,
    FAMILY_IPV6,
};
use xvrrpd::{bpf::Recorder, status};

use crate::PinArgs;

#[derive(Args)]
pub struct RecordArgs {
    /// Interface to attach to (repeatable).
    #[arg(short = 'i', long = "interface", required = true)]
    interfaces: Vec<String>,
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
    #[arg(long, default_value_t = 1)]
    advert_int: u8,
    /// v2: PASS password (8 characters at most).
    #[arg(long)]
    auth_pass: Option<String>,
    /// The instances are unicast (multicast adverts are dropped).
    #[arg(long)]
    unicast: bool,
    /// With --unicast: accept only these sources (repeatable).
    #[arg(long = "peer")]
    peers: Vec<IpAddr>,
    /// v3 over IPv4: checksum without the pseudo-header.
    #[arg(long)]
    checksum_as_v2: bool,
    #[command(flatten)]
    pin: PinArgs,
}

impl RecordArgs {
    fn instance_config(&self) -> Result<(u8, InstanceConfig)> {
        let family = if self.ipv6 { FAMILY_IPV6 } else { FAMILY_IPV4 };
        let version = if self.ipv6 { 3 } else { self.version };
        let mut flags = 0;
        if self.unicast {
            flags |= instance_flags::UNICAST;
        }
        if self.unicast && !self.peers.is_empty() {
            flags |= instance_flags::CHECK_UNICAST_SRC;
        }
        if self.checksum_as_v2 {
            flags |= instance_flags::CHECKSUM_AS_V2;
        }
        let mut auth_data = [0u8; 8];
        let mut auth_type = 0;
        if let Some(pass) = &self.auth_pass {
            if version != 2 {
                bail!("--auth-pass: authentication exists only in VRRP version 2");
            }
            if pass.len() > 8 {
                bail!("--auth-pass: {} bytes, PASS allows 8 at most", pass.len());
            }
            auth_data[..pass.len()].copy_from_slice(pass.as_bytes());
            auth_type = 1;
        }
        Ok((
            family,
            InstanceConfig {
                version,
                flags,
                auth_type,
                v2_interval_s: self.advert_int,
                auth_data,
            },
        ))
    }
}

pub fn run(args: RecordArgs) -> Result<()> {
    let (family, config) = args.instance_config()?;
    let pin_dir = args.pin.resolve()?;
    let mut recorder = Recorder::load(&pin_dir)?;
    info!(pin_dir = %pin_dir.display(), "maps pinned");
    let result = (|| {
        for interface in &args.interfaces {
            let ifindex = nix::net::if_::if_nametoindex(interface.as_str())
                .with_context(|| format!("interface {interface}: if_nametoindex"))?;
            recorder.attach(interface)?;
            for &vrid in &args.vrids {
                let key = InstanceKey::new(ifindex, family, vrid);
                recorder.maps.set_instance(key, config)?;
                for peer in &args.peers {
                    recorder.maps.allow_source(peer_key(key, *peer)?)?;
                }
                info!(%interface, vrid, version = config.version, "instance registered");
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
        _ => "unknown event",
    };
    info!(
        interface = %status::interface_name(ev.key.ifindex),
        vrid = ev.key.vrid,
        source = %ev.key.source(),
        priority = ev.priority,
        previous_priority = ev.previous_priority,
        interval_ms = ev.interval_cs as u32 * 10,
        "{kind}"
    );
}
