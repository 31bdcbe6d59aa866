//! What an instance is configured with: the engine's view of a
//! `vrrp_instance` block (the config layer fills it in and owns the defaults
//! of keepalived.conf).

use std::{net::IpAddr, time::Duration};

use crate::packet::{Family, Version, V2_MAX_INTERVAL_S, V3_MAX_INTERVAL_CS};

/// The owner's and the stop priority (255, 0) are defined once, in vrrp-common.
pub use vrrp_common::{PRIORITY_OWNER, PRIORITY_STOP};
/// keepalived's default `priority`.
pub const DEFAULT_PRIORITY: u8 = 100;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ParamsError {
    #[error("virtual_router_id 0 is invalid (1..=255)")]
    VridZero,
    #[error("priority 0 is reserved for the stop advert (1..=255)")]
    PriorityZero,
    #[error("VRRPv2 advert_int {0:?} is not whole seconds in 1..=255")]
    V2Interval(Duration),
    #[error("VRRPv3 advert_int {0:?} is not a multiple of 10 ms in 10 ms..=40.95 s")]
    V3Interval(Duration),
    #[error("VRRPv2 is IPv4 only")]
    V2OverIpv6,
    #[error("primary address {addr} is not of the instance's family {family:?}")]
    PrimaryAddrFamily { addr: IpAddr, family: Family },
    #[error("down_timer_adverts {0} is outside 1..=100")]
    DownTimerAdverts(u32),
}

/// Gratuitous ARP / unsolicited NA scheduling (keepalived's `garp_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GarpParams {
    /// `garp_master_delay`: a second burst this long after becoming master; zero = none.
    pub master_delay: Duration,
    /// `garp_master_repeat`: messages per VIP in the become-master bursts.
    pub master_repeat: u32,
    /// `garp_master_refresh`: periodic burst while master; zero = off.
    pub master_refresh: Duration,
    /// `garp_master_refresh_repeat`: messages per VIP in a refresh burst.
    pub master_refresh_repeat: u32,
    /// `garp_lower_prio_repeat`: burst when a lower-priority advert reaches
    /// the master; 0 = none.
    pub lower_prio_repeat: u32,
    /// `garp_lower_prio_delay`: a second such burst after this; zero = none.
    pub lower_prio_delay: Duration,
    /// `vrrp_garp_interval` (IPv4) or `vrrp_gna_interval` (IPv6): spacing
    /// between the messages of one burst, for the sender to pace by.
    pub spacing: Duration,
}

impl Default for GarpParams {
    /// keepalived's defaults, except `lower_prio_repeat`: keepalived inherits a
    /// global whose default varies by version; VRRP-BEHAVIOUR.md asks for a
    /// burst, so the become-master size is used.
    fn default() -> Self {
        GarpParams {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
            lower_prio_repeat: 5,
            lower_prio_delay: Duration::ZERO,
            spacing: Duration::ZERO,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceParams {
    pub name: String,
    pub vrid: u8,
    pub version: Version,
    pub family: Family,
    /// Base priority, 1..=255; 255 = address owner.
    pub priority: u8,
    /// Our `advert_int`. v2: whole seconds; v3: multiples of 10 ms.
    pub advert_interval: Duration,
    /// `false` = `nopreempt`.
    pub preempt: bool,
    /// `preempt_delay`; zero = none. See `Instance` for when it starts.
    pub preempt_delay: Duration,
    /// `state MASTER`.
    pub initial_state_master: bool,
    /// The source address of our adverts, compared with a peer's on a
    /// priority tie.
    pub primary_addr: IpAddr,
    /// `down_timer_adverts` (keepalived ≥ 2.2): adverts missed before the
    /// master is declared down; the RFC's 3.
    pub down_timer_adverts: u32,
    pub garp: GarpParams,
    /// Member of a `vrrp_sync_group`: an expired down timer only marks the
    /// instance as wanting master; the group goes master together
    /// (`Input::SyncMaster`) once every member wants to, as keepalived does
    /// ("prefer backup state to avoid thrashing").
    pub sync_group: bool,
    /// `vrrp_startup_delay`: no down timer expires before this long after
    /// `Startup` (keepalived counts them from the end of the delay).
    pub startup_delay: Duration,
    /// `lower_prio_no_advert`: as master, do not answer a lower-priority
    /// advert with an advert of our own.
    pub lower_prio_no_advert: bool,
    /// `higher_prio_send_advert`: as master, send an advert at our priority
    /// before yielding to a higher one.
    pub higher_prio_send_advert: bool,
}

impl InstanceParams {
    /// keepalived's defaults for everything but the identity.
    pub fn new(name: impl Into<String>, vrid: u8, version: Version, primary_addr: IpAddr) -> Self {
        InstanceParams {
            name: name.into(),
            vrid,
            version,
            family: Family::of(&primary_addr),
            priority: DEFAULT_PRIORITY,
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            initial_state_master: false,
            primary_addr,
            down_timer_adverts: 3,
            garp: GarpParams::default(),
            sync_group: false,
            startup_delay: Duration::ZERO,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
        }
    }

    pub fn is_address_owner(&self) -> bool {
        self.priority == PRIORITY_OWNER
    }

    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.vrid == 0 {
            return Err(ParamsError::VridZero);
        }
        if self.priority == PRIORITY_STOP {
            return Err(ParamsError::PriorityZero);
        }
        let interval = self.advert_interval;
        match self.version {
            Version::V2 => {
                let whole = interval.subsec_nanos() == 0;
                if !whole
                    || interval.as_secs() == 0
                    || interval.as_secs() > u64::from(V2_MAX_INTERVAL_S)
                {
                    return Err(ParamsError::V2Interval(interval));
                }
                if self.family == Family::V6 {
                    return Err(ParamsError::V2OverIpv6);
                }
            }
            Version::V3 => {
                let step = Duration::from_millis(10).as_nanos();
                let max = Duration::from_millis(10 * u64::from(V3_MAX_INTERVAL_CS));
                if interval.is_zero() || interval > max || !interval.as_nanos().is_multiple_of(step)
                {
                    return Err(ParamsError::V3Interval(interval));
                }
            }
        }
        if Family::of(&self.primary_addr) != self.family {
            return Err(ParamsError::PrimaryAddrFamily {
                addr: self.primary_addr,
                family: self.family,
            });
        }
        if !(1..=100).contains(&self.down_timer_adverts) {
            return Err(ParamsError::DownTimerAdverts(self.down_timer_adverts));
        }
        Ok(())
    }
}
