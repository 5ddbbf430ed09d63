//! The host tier: the kernel interfaces the daemon uses (packet sockets, netlink, the loop on
//! real file descriptors, process spawning, packaging tools) on this machine, as root. Tests
//! that need root or a tool print SKIP without them (a failure under `CI=true`).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;
mod checks_support;
mod topo;

mod checks_netns;
mod checks_script;
mod daemon_checks;
mod log_streams;
mod loop_bench;
mod loop_net;
mod openwrt_package;
mod sys_net;
