//! IPVS over generic netlink: pure message encoding/decoding and reconciliation.
//!
//! - [`nl`]: the shared netlink/genl codec, [`crate::netlink`] (re-exported under its old name).
//! - [`consts`]: hand-defined IPVS_* constants, plus the netlink ones re-exported.
//! - [`model`]: services, destinations, schedulers as values.
//! - [`msg`]: IPVS requests and dump decoding, plus [`Op`], one change to the kernel table.
//! - [`reconcile`]: configured virtual servers + health -> desired table -> minimal changes.
//! - [`error`]: [`IpvsError`], worded for the log.
//!
//! The socket side is `crate::sys::genl::IpvsClient`.

pub mod consts;
pub mod error;
pub mod model;
pub mod msg;
pub mod reconcile;

pub use crate::netlink as nl;

pub use error::IpvsError;
pub use model::{
    Dest, DestConns, Family, Forwarding, Persistence, Protocol, Scheduler, Service, ServiceKey,
    SockAddr,
};
pub use msg::Op;
pub use reconcile::{
    cleanup, reconcile, Change, Desired, KernelService, RealServer, Reason, Reconciler,
    SorryServer, VirtualServer,
};
