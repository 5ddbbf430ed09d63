//! IPVS over generic netlink: pure message encoding/decoding and reconciliation (issue 6).
//!
//! - [`nl`]: netlink/genl framing (headers, attributes, bounds-checked iteration).
//! - [`consts`]: hand-defined IPVS_* and netlink constants.
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
pub mod nl;
pub mod reconcile;

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
