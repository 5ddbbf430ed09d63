//! minivrrp: VRRP (v2/v3, IPv4/IPv6), health checks and IPVS for routers.
//!
//! The folders are the layers, with no import cycle between folders or between files
//! (`tests/pure/import_graph.rs` prints the graph and fails on a cycle).
//!
//! Pure: take `(now, input)` and return actions, never read the clock, never touch a socket:
//! - [`base`]: explicit time (`Instant`, no clock reads) and small shared helpers.
//! - [`vrrp`]: VRRP wire format (RFC 3768 / RFC 5798 / RFC 9568) and the instance state machine.
//! - [`check`]: health-check and tracker state machines (TCP, HTTP, ICMP, script, file).
//! - [`netlink`]: the netlink / generic-netlink framing (headers, attributes, bounds-checked
//!   parsing) and the rtnetlink codec (`netlink::route`: requests, decoders, link-event
//!   tracking); builds into caller buffers. The sockets are in `sys`.
//! - [`ipvs`]: IPVS generic-netlink messages and the desired-vs-kernel reconciler.
//! - [`config`]: the UCI parser, the one schema table, the typed model and its validation
//!   (pure but for reading the file it is given).
//! - [`control`]: the control socket's protocol and the status document's renderings (JSON,
//!   text, Prometheus); `control::client` is the CLI's end of the socket, through `sys`.
//! - [`import`]: `minivrrp import`, keepalived configurations to minivrrp UCI (feature
//!   `import`, on by default; pure but for reading the files it is given).
//!
//! Not pure:
//! - [`sys`]: the only layer that makes syscalls (sockets, netlink, signals, clock, processes).
//! - [`daemon`]: the single poll loop and its parts (VRRP, checks, LVS, notify, mail, the
//!   control socket server), connecting the pure layers to `sys`.

// The promises the layers make, kept by the compiler for the shipped code (the library and the
// binary; integration tests are crates of their own and may unwrap): only `sys` talks to the
// kernel, so only `sys` may use `unsafe` (it allows it in `sys/mod.rs`), and every unsafe
// block says why it is sound; nothing panics on input, so no `unwrap`/`expect` outside tests
// (`cargo clippy` checks these; `tests/run.sh` runs it).
#![deny(unsafe_code, clippy::undocumented_unsafe_blocks)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

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
