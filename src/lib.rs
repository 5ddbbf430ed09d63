//! minivrrp: VRRP (v2/v3, IPv4/IPv6), health checks and IPVS for routers.
//!
//! The folders are the layers. Everything except `sys` and `daemon` is pure: it takes
//! `(now, input)` and returns actions, never reads the clock and never touches a socket.
//!
//! - [`base`]: explicit time (`Instant`, no clock reads) and small shared helpers.
//! - [`config`]: the UCI parser, the one schema table, the typed model and its validation.
//! - [`vrrp`]: VRRP wire format (RFC 3768 / RFC 5798 / RFC 9568) and the instance state machine.
//! - [`check`]: health-check and tracker state machines (TCP, HTTP, ICMP, script, file).
//! - [`netlink`]: the netlink / generic-netlink codec (headers, attributes, bounds-checked
//!   parsing) shared by rtnetlink in `sys` and IPVS; pure, builds into caller buffers.
//! - [`ipvs`]: IPVS generic-netlink messages and the desired-vs-kernel reconciler.
//! - [`sys`]: the only layer that makes syscalls (sockets, netlink, signals, clock, processes).
//! - [`daemon`]: the single poll loop that connects the pure layers to `sys`.
//! - [`import`]: `minivrrp import`, keepalived configurations to minivrrp UCI (feature
//!   `import`, on by default).

pub mod base;
pub mod check;
pub mod config;
pub mod control;
pub mod daemon;
#[cfg(feature = "import")]
pub mod import;
pub mod ipvs;
pub mod netlink;
pub mod sys;
pub mod vrrp;
