//! VRRP: wire format and the per-instance state machine.
pub mod announce;
pub mod auth;
pub mod frame;
pub mod ra;
pub mod rx_policy;
pub mod wire;

pub mod instance;
pub mod priority;
pub mod sync_group;
pub mod vip_lease;
