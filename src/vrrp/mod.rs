//! VRRP: wire format and the per-instance state machine (issue 3).

pub mod instance;
pub mod priority;
pub mod sync_group;
