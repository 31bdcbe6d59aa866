//! One instance's advert output, as the advert thread uses it: the raw
//! socket and the adverts already encoded, so that sending is one syscall
//! per destination and nothing else.

use std::net::IpAddr;

use thiserror::Error;
use vrrp_common::{instance_flags, InstanceConfig, InstanceKey};

use super::plan::AdvertPlan;
use crate::{
    bpf::{BpfError, Maps},
    network::socket::{SocketError, VrrpSender},
    packet::{self, PacketError},
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

pub struct AdvertIo {
    pub name: String,
    key: InstanceKey,
    /// What the kernel holds for the instance (WAKE_ON_ANY toggles).
    xdp: InstanceConfig,
    plan: AdvertPlan,
    sender: VrrpSender,
    /// The encoded PDUs (one per destination) at `encoded_priority`. Only
    /// the priority ever changes, so most sends reuse them.
    encoded: Vec<Vec<u8>>,
    encoded_priority: Option<u8>,
}

impl AdvertIo {
    pub fn new(
        name: String,
        key: InstanceKey,
        xdp: InstanceConfig,
        plan: AdvertPlan,
        sender: VrrpSender,
    ) -> Self {
        AdvertIo {
            name,
            key,
            xdp,
            plan,
            sender,
            encoded: Vec::new(),
            encoded_priority: None,
        }
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

    /// A reload changed the advert (VIP list, interval, priority): encode
    /// afresh at the next send, and give the kernel the new checks, keeping
    /// whether it wakes us for every advert.
    pub fn update(
        &mut self,
        plan: &AdvertPlan,
        xdp: InstanceConfig,
        maps: &mut Maps,
    ) -> Result<(), AdvertError> {
        if *plan != self.plan {
            self.plan = plan.clone();
            self.encoded_priority = None;
        }
        let wake = self.xdp.flags & instance_flags::WAKE_ON_ANY;
        self.register(
            maps,
            InstanceConfig {
                flags: xdp.flags | wake,
                ..xdp
            },
        )
    }

    /// Gives the kernel `cfg` for this instance, if it differs from what it has.
    fn register(&mut self, maps: &mut Maps, cfg: InstanceConfig) -> Result<(), AdvertError> {
        if cfg != self.xdp {
            maps.set_instance(self.key, cfg)
                .map_err(|source| AdvertError::Flags {
                    instance: self.name.clone(),
                    source: Box::new(source),
                })?;
            self.xdp = cfg;
        }
        Ok(())
    }

    /// As master every advert heard matters: asks the kernel to wake us for each.
    pub fn set_wake_on_any(&mut self, maps: &mut Maps, on: bool) -> Result<(), AdvertError> {
        let mut cfg = self.xdp;
        if on {
            cfg.flags |= instance_flags::WAKE_ON_ANY;
        } else {
            cfg.flags &= !instance_flags::WAKE_ON_ANY;
        }
        self.register(maps, cfg)
    }
}
