//! One instance's advert output, as the advert thread uses it: the raw
//! socket and the adverts already encoded, so that sending is one syscall
//! per destination and nothing else.

use std::net::IpAddr;

use thiserror::Error;
use vrrp_common::{instance_flags, InstanceKey};

use super::plan::AdvertPlan;
use crate::{
    bpf::{BpfError, Maps, XdpInstance},
    network::socket::{SocketError, VrrpSender},
    packet::{self, build_frame, FrameSpec, PacketError},
};

#[derive(Debug, Error)]
pub enum AdvertError {
    #[error("instance {instance}: encoding the advert at priority {priority}: {source}")]
    Encode {
        instance: String,
        priority: u8,
        #[source]
        source: PacketError,
    },
    #[error("instance {instance}: sending to {dst}: {source}")]
    Send {
        instance: String,
        dst: IpAddr,
        #[source]
        source: SocketError,
    },
    #[error("instance {instance}: updating the XDP instance flags: {source}")]
    Flags {
        instance: String,
        #[source]
        source: Box<BpfError>,
    },
}

/// How a multicast advert leaves as a whole frame (see `network::frames`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramePath {
    /// The interface it leaves from (the vmac with `use_vmac`).
    pub ifindex: u32,
    /// Its MAC (the virtual MAC with `use_vmac`).
    pub mac: [u8; 6],
}

pub struct AdvertIo {
    pub name: String,
    key: InstanceKey,
    plan: AdvertPlan,
    sender: VrrpSender,
    /// Multicast adverts go out as prebuilt frames, batched per interface.
    frame_path: Option<FramePath>,
    frame: Vec<u8>,
    frame_priority: Option<u8>,
    /// The encoded PDUs (one per destination) at `encoded_priority`. Only
    /// the priority ever changes, so most sends reuse them.
    encoded: Vec<Vec<u8>>,
    encoded_priority: Option<u8>,
    /// What the kernel was last told: wake us for every advert, and who
    /// the master is.
    wake_on_any: bool,
    master: Option<IpAddr>,
}

impl AdvertIo {
    pub fn new(
        name: String,
        key: InstanceKey,
        plan: AdvertPlan,
        sender: VrrpSender,
        frame_path: Option<FramePath>,
    ) -> Self {
        let frame_path = frame_path.filter(|_| !plan.unicast);
        AdvertIo {
            name,
            key,
            plan,
            sender,
            frame_path,
            frame: Vec::new(),
            frame_priority: None,
            encoded: Vec::new(),
            encoded_priority: None,
            wake_on_any: false,
            master: None,
        }
    }

    pub fn key(&self) -> InstanceKey {
        self.key
    }

    fn encode(&mut self, priority: u8) -> Result<(), AdvertError> {
        let mut advert = self.plan.template.clone();
        advert.priority = priority;
        self.encoded.clear();
        for &dst in &self.plan.destinations {
            let pseudo = self.plan.pseudo_header.then_some((self.plan.source, dst));
            let pdu = packet::encode(&advert, pseudo).map_err(|source| AdvertError::Encode {
                instance: self.name.clone(),
                priority,
                source,
            })?;
            self.encoded.push(pdu);
        }
        self.encoded_priority = Some(priority);
        Ok(())
    }

    /// The interface this instance's adverts go out on as frames, if they do.
    pub fn frame_ifindex(&self) -> Option<u32> {
        self.frame_path.as_ref().map(|p| p.ifindex)
    }

    /// Builds (once per priority) the whole frame of the advert at `priority`.
    pub fn prepare_frame(&mut self, priority: u8) -> Result<(), AdvertError> {
        let Some(path) = &self.frame_path else {
            return Ok(());
        };
        if self.frame_priority == Some(priority) {
            return Ok(());
        }
        let mut advert = self.plan.template.clone();
        advert.priority = priority;
        let mut spec = FrameSpec::new(self.plan.source, self.plan.group);
        spec.src_mac = path.mac;
        spec.v3_checksum_as_v2 = !self.plan.pseudo_header;
        self.frame = build_frame(&spec, &advert).map_err(|source| AdvertError::Encode {
            instance: self.name.clone(),
            priority,
            source,
        })?;
        self.frame_priority = Some(priority);
        Ok(())
    }

    /// The frame [`prepare_frame`](Self::prepare_frame) built.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// The priority of that frame.
    pub fn frame_priority(&self) -> u8 {
        self.frame_priority.unwrap_or(self.plan.template.priority)
    }

    /// Sends the advert at `priority` to every destination; the first
    /// failure is returned after trying them all.
    pub fn send(&mut self, priority: u8) -> Result<(), AdvertError> {
        if self.encoded_priority != Some(priority) {
            self.encode(priority)?;
        }
        let mut first_error = None;
        for (pdu, &dst) in self.encoded.iter().zip(&self.plan.destinations) {
            if let Err(source) = self.sender.send(pdu, dst) {
                first_error.get_or_insert(AdvertError::Send {
                    instance: self.name.clone(),
                    dst,
                    source,
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn kernel(&self) -> impl Fn(BpfError) -> AdvertError + '_ {
        |source| AdvertError::Flags {
            instance: self.name.clone(),
            source: Box::new(source),
        }
    }

    /// A reload changed the advert (VIP list, interval, priority) or the
    /// receive checks: encode afresh at the next send, and give the kernel
    /// the new checks, keeping what it knows of the master and whether it
    /// wakes us for every advert.
    pub fn update(
        &mut self,
        plan: &AdvertPlan,
        xdp: &XdpInstance,
        maps: &mut Maps,
    ) -> Result<(), AdvertError> {
        if *plan != self.plan {
            self.plan = plan.clone();
            self.encoded_priority = None;
            self.frame_priority = None;
        }
        let new = xdp.config().map_err(|e| (self.kernel())(e.into()))?;
        let kept = instance_flags::WAKE_ON_ANY | instance_flags::MASTER_KNOWN;
        maps.update_instance(self.key, |c| {
            let old = *c;
            *c = new;
            c.flags |= old.flags & kept;
            c.master = old.master;
            // The kernel's table and the generation it counts from stay.
            c.table = old.table;
            c.generation = old.generation;
        })
        .map_err(self.kernel())?;
        maps.set_sources(self.key, xdp.unicast_peers())
            .map_err(self.kernel())
    }

    /// As master every advert heard matters: asks the kernel to wake us for each.
    pub fn set_wake_on_any(&mut self, maps: &mut Maps, on: bool) -> Result<(), AdvertError> {
        if on != self.wake_on_any {
            maps.set_wake_on_any(self.key, on).map_err(self.kernel())?;
            self.wake_on_any = on;
        }
        Ok(())
    }

    /// Tells the kernel who the master is, so no flood of sources can
    /// evict its record (`None`: none known, or we are it).
    pub fn set_master(
        &mut self,
        maps: &mut Maps,
        master: Option<IpAddr>,
    ) -> Result<(), AdvertError> {
        if master != self.master {
            maps.set_master(self.key, master).map_err(self.kernel())?;
            self.master = master;
        }
        Ok(())
    }
}
