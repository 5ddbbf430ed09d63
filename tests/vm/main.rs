//! The VM tier: tests that boot a kernel in qemu (the IPVS VM of `rootfs/vm/`, two emulated
//! MIPS routers) and run payloads or the router build inside it.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod ipvs_daemon_vm;
mod ipvs_vm;
mod malta_lab;
